"""One switch, COURSE_MODE=quick|full, that notebooks use to scale data, epochs and model size."""
from __future__ import annotations

import os
from typing import TypeVar

from .device import _cuda_available

T = TypeVar("T")
MODES = ("quick", "full")


def course_mode() -> str:
    """The current mode: $COURSE_MODE if set, else full on a CUDA machine and quick on a CPU."""
    mode = os.environ.get("COURSE_MODE", "").strip().lower()
    if not mode:
        return "full" if _cuda_available() else "quick"
    if mode not in MODES:
        raise ValueError(f"COURSE_MODE={mode!r} is not a mode; set it to 'quick' or 'full' (or unset it)")
    return mode


def is_quick() -> bool:
    """True in quick mode (CI, 2-core laptops)."""
    return course_mode() == "quick"


def pick(quick: T, full: T) -> T:
    """Return the quick or the full value for the current mode, e.g. epochs = pick(3, 20)."""
    return quick if is_quick() else full
