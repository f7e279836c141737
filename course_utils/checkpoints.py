"""Small trained weights shipped with the course (checkpoints/), saved and loaded with a SHA-256 check."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import torch

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"


class CheckpointError(RuntimeError):
    """A shipped checkpoint is missing or does not match its recorded checksum."""


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_checkpoint(state: dict[str, Any], name: str, folder: str | Path = CHECKPOINTS) -> str:
    """Save a dict of tensors / state_dicts as folder/name.pt (byte-stable) and return its SHA-256."""
    path = Path(folder) / f"{name}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path.write_bytes(buffer.getvalue())
    return sha256(path)


def load_checkpoint(name: str, expected_sha256: str, folder: str | Path = CHECKPOINTS,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load folder/name.pt after checking its SHA-256; a clear error says how to regenerate it otherwise."""
    path = Path(folder) / f"{name}.pt"
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is missing; restore it with `git checkout -- {path.name}` or "
                              f"re-create it by running the lecture with COURSE_MODE=full")
    digest = sha256(path)
    if digest != expected_sha256:
        raise CheckpointError(f"checkpoint {path} has SHA-256 {digest[:16]}..., expected {expected_sha256[:16]}...; "
                              f"the file is corrupt or from another version: restore it from git or re-create it "
                              f"with COURSE_MODE=full")
    return torch.load(path, map_location=map_location, weights_only=True)
