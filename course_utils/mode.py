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


def _same(quick: object, full: object) -> bool:
    """True when the two values are equal (numbers, strings, None, tuples); multi-element arrays never compare."""
    try:
        return quick is full or bool(quick == full)
    except (TypeError, ValueError, RuntimeError):  # arrays / tensors: an element-wise == has no single truth value
        return False


def pick(quick: T, full: T) -> T:
    """Return the quick or the full value for the current mode, e.g. epochs = pick(3, 20); equal values are refused."""
    if _same(quick, full):
        raise ValueError(f"pick({quick!r}, {full!r}) is a no-op: both modes get the same value. Write the constant "
                         f"{quick!r} directly, or give each mode its own budget (full mode at least as large)")
    return quick if is_quick() else full
