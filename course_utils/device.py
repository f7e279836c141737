"""Device selection, seeding and CPU thread count: the first cell of every notebook."""
from __future__ import annotations

import os
import random

import numpy as np
import torch


def _mps_available() -> bool:
    """True when Apple's Metal backend exists and is usable (guarded for older torch)."""
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _cuda_available() -> bool:
    """True when a CUDA device can be used (never raises, even without drivers)."""
    try:
        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001 - a broken driver install must not break a CPU notebook
        return False


def get_device(prefer: str = "auto", verbose: bool = True) -> torch.device:
    """Pick cuda, then mps, then cpu for "auto"; a named device is checked and used as asked."""
    prefer = (prefer or "auto").lower()
    if prefer not in {"auto", "cuda", "mps", "cpu"}:
        raise ValueError(f"get_device: unknown device {prefer!r}; use 'auto', 'cuda', 'mps' or 'cpu'")
    if prefer == "cuda" and not _cuda_available():
        raise RuntimeError("get_device('cuda'): no CUDA device is available; use get_device('auto') to fall back")
    if prefer == "mps" and not _mps_available():
        raise RuntimeError("get_device('mps'): the MPS backend is not available; use get_device('auto') to fall back")
    if prefer == "auto":
        prefer = "cuda" if _cuda_available() else "mps" if _mps_available() else "cpu"
    device = torch.device(prefer)
    if verbose:
        print(f"device: {describe_device(device)}")
    return device


def describe_device(device: torch.device) -> str:
    """A one-line human description of a device (GPU name, or CPU thread count)."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({torch.get_num_threads()} threads)"


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed python, numpy and torch (all devices); return a torch.Generator seeded the same way."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def set_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads to n, else $COURSE_THREADS, else the CPU count; return it."""
    if n is None:
        n = int(os.environ.get("COURSE_THREADS", "0")) or (os.cpu_count() or 1)
    n = max(1, int(n))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
