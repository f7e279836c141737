"""Trained weights shipped in checkpoints/: a tensor hash that reruns reproduce, their provenance, and regeneration.

A lecture declares a checkpoint by its name, l<NN>_<what> (lecture NN trains it), and saves it in full mode
when `course checkpoint l<NN>_<what>` runs it (regenerating(name) is then True):

    if regenerating("l10_dalle2"):
        save_checkpoint(CHECKPOINTS / "l10_dalle2.pt", {"clip": clip.state_dict(), "decoder": decoder.state_dict()},
                        config=CFG, seed=0, data=data)
    elif is_quick():
        state = load_checkpoint("l10_dalle2", DECODER_SHA256, map_location=device)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .mode import course_mode

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
FORMAT = "course-checkpoint/1"
REGENERATE_ENV = "COURSE_SAVE_CHECKPOINT"  # `course checkpoint NAME` sets it to NAME while it runs the lecture


class CheckpointError(RuntimeError):
    """A shipped checkpoint is missing or does not match its recorded checksum."""


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _flat(state: Mapping[str, Any], prefix: str = "") -> dict[str, torch.Tensor]:
    """Nested dicts of tensors as {'clip.proj.weight': tensor}; TypeError for anything that is not a tensor."""
    flat = {}
    for key, value in state.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flat(value, name + "."))
        elif isinstance(value, torch.Tensor):
            flat[name] = value
        else:
            raise TypeError(f"checkpoint entry {name!r} is a {type(value).__name__}, not a tensor: a checkpoint holds "
                            f"state_dicts only; put numbers and strings in config=")
    return flat


def tensor_sha256(state: Mapping[str, Any]) -> str:
    """SHA-256 of the tensors alone (sorted names, dtype, shape, raw bytes): equal for two identical trainings."""
    digest = hashlib.sha256()
    for name, t in sorted(_flat(state).items()):
        t = t.detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _commit() -> str:
    """The git commit of the course checkout, marked when tracked files have uncommitted changes."""
    root = CHECKPOINTS.parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head.stdout.strip() + (" + uncommitted changes" if dirty else "")


def provenance(*, config: Mapping[str, Any], seed: int, data: Any) -> dict[str, Any]:
    """What produced a checkpoint: commit, library versions, seed, threads, mode, data source, config; no time."""
    describe = getattr(data, "describe", None)
    return {
        "commit": _commit(),
        "versions": {"python": platform.python_version(), "torch": str(torch.__version__), "numpy": str(np.__version__)},
        "seed": seed,
        "threads": torch.get_num_threads(),
        "mode": course_mode(),
        "data": describe() if callable(describe) else str(data),
        "config": json.loads(json.dumps(dict(config), default=str)),  # plain JSON values: loadable weights_only
    }


def _nested_cpu(state: Mapping[str, Any]) -> dict[str, Any]:
    """A plain-dict copy of nested state_dicts with every tensor detached on the CPU."""
    return {k: _nested_cpu(v) if isinstance(v, Mapping) else v.detach().to("cpu").clone() for k, v in state.items()}


def _path(name_or_path: str | Path, folder: str | Path = CHECKPOINTS) -> Path:
    """A bare name ('l10_dalle2') means folder/name.pt; anything with a suffix or a folder is a path."""
    path = Path(name_or_path)
    return path if path.suffix or len(path.parts) > 1 else Path(folder) / f"{path}.pt"


def save_checkpoint(path: str | Path, state_dict: Mapping[str, Any], *, config: Mapping[str, Any], seed: int,
                    data: Any) -> str:
    """Save state_dicts with their provenance and tensor hash; print and return the hash to pin in the lecture."""
    _flat(state_dict)  # refuse non-tensor entries before writing anything
    path = _path(path)
    digest = tensor_sha256(state_dict)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, "state_dict": _nested_cpu(state_dict), "tensor_sha256": digest,
                "provenance": provenance(config=config, seed=seed, data=data)}, path)
    print(f"saved {path.name}: tensors SHA-256 {digest} (pin this value where the lecture loads it)")
    return digest


def describe(meta: Mapping[str, Any]) -> str:
    """One line of provenance: commit, versions, seed, threads, mode, data, config."""
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    return (f"commit {meta['commit']} | {versions} | seed {meta['seed']} | {meta['threads']} threads | "
            f"{meta['mode']} mode | data: {meta['data']} | config {json.dumps(meta['config'])}")


def load_checkpoint(name: str | Path, expected_sha256: str, folder: str | Path = CHECKPOINTS,
                    map_location: str | torch.device = "cpu", verbose: bool = True) -> dict[str, Any]:
    """Load a checkpoint after checking its tensor SHA-256 (files of the legacy format: the file's SHA-256).

    Returns the saved state_dicts (a legacy file: its whole dict) and prints the provenance.
    """
    path = _path(name, folder)
    fix = f"restore it with `git checkout -- checkpoints/{path.name}` or regenerate it with `course checkpoint {path.stem}`"
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is missing; {fix}")
    try:
        saved = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # a truncated zip, a pickle of something else: all mean the same to the reader
        raise CheckpointError(f"checkpoint {path} cannot be read ({err.__class__.__name__}): the file is corrupt or "
                              f"from another version; {fix}") from err
    if isinstance(saved, dict) and saved.get("format") == FORMAT:
        digest = tensor_sha256(saved["state_dict"])
        if digest != saved["tensor_sha256"]:
            raise CheckpointError(f"checkpoint {path}: its tensors hash to {digest[:16]}..., not the recorded "
                                  f"{saved['tensor_sha256'][:16]}...: the file is corrupt; {fix}")
        if digest != expected_sha256:
            raise CheckpointError(f"checkpoint {path} has tensors SHA-256 {digest[:16]}..., the lecture expects "
                                  f"{expected_sha256[:16]}...: it is from another version; {fix}, or pin the new "
                                  f"value in the lecture")
        if verbose:
            print(f"loaded {path.name} (tensors SHA-256 verified), trained by: {describe(saved['provenance'])}")
        return saved["state_dict"]
    digest = sha256(path)
    if digest != expected_sha256:
        raise CheckpointError(f"checkpoint {path} has SHA-256 {digest[:16]}..., expected {expected_sha256[:16]}...; "
                              f"the file is corrupt or from another version; {fix}")
    if verbose:
        print(f"loaded {path.name} (file SHA-256 verified; legacy format without provenance: regenerate it with "
              f"`course checkpoint {path.stem}`)")
    return saved


def regenerating(name: str) -> bool:
    """True while `course checkpoint NAME` runs the lecture that trains checkpoint NAME (in full mode)."""
    return os.environ.get(REGENERATE_ENV) == name


def lecture_of(name: str) -> str:
    """The lecture prefix that trains a checkpoint: 'l10_dalle2' -> '10'; ValueError for other names."""
    prefix = name.split("_", 1)[0]
    if not (len(prefix) == 3 and prefix[0] == "l" and prefix[1:].isdigit() and "_" in name):
        raise ValueError(f"checkpoint name {name!r} does not say its lecture: name it l<NN>_<what>, e.g. l10_dalle2")
    return prefix[1:]


def cmd_checkpoint(args: argparse.Namespace) -> int:
    """Regenerate a checkpoint: run its lecture in full mode, which saves it; print its hash and provenance."""
    from .layout import Layout, course_root
    from .lectures import run_lectures

    lay = Layout(course_root())
    target = lay.checkpoints / f"{args.name}.pt"
    before = target.stat().st_mtime_ns if target.is_file() else None
    os.environ[REGENERATE_ENV] = args.name
    ran = run_lectures(lay.root, [lecture_of(args.name)], "full", out=lay.build / "checkpoints", timeout=args.timeout)
    if any(r.status != "ok" for r in ran):
        return 1
    if not target.is_file() or target.stat().st_mtime_ns == before:
        print(f"course checkpoint: the lecture ran but did not write {target}; make it call save_checkpoint() "
              f"under `if regenerating({args.name!r}):` (see CONTRIBUTING.md)")
        return 1
    saved = torch.load(target, map_location="cpu", weights_only=True)
    print(f"\n{target}: tensors SHA-256 {saved['tensor_sha256']}\n{describe(saved['provenance'])}\n"
          f"pin the hash where the lecture loads it, re-execute the lecture in quick mode, commit both")
    return 0


def add_command(sub: argparse._SubParsersAction) -> None:
    """Register `course checkpoint NAME` on the course command's subparsers."""
    p = sub.add_parser("checkpoint", help="regenerate a shipped checkpoint by running its lecture in full mode")
    p.add_argument("name", help="checkpoint name, l<NN>_<what> (trained by lecture NN), e.g. l10_dalle2")
    p.add_argument("--timeout", type=int, default=7200, help="seconds allowed per cell (default 7200)")
    p.set_defaults(func=cmd_checkpoint)
