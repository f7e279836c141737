"""Checks for nbgrader test cells: failures say which shape, which value, and by how much.

Comparisons are done in plain Python on values copied out of the tensors, so a student who patches
torch.allclose or numpy.testing does not change what these checks conclude.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch


class GradingError(AssertionError):
    """A failed check; the message tells the student what to look at."""


def _values(x: Any) -> tuple[tuple[int, ...], list[float]]:
    """Shape and flat float values of a tensor, array or number (copied out of torch/numpy)."""
    if isinstance(x, torch.Tensor):
        t = x.detach().to("cpu", torch.float64)
        return tuple(t.shape), [float(v) for v in t.reshape(-1).tolist()]
    a = np.asarray(x, dtype=np.float64)
    return tuple(a.shape), [float(v) for v in a.reshape(-1).tolist()]


def check_type(name: str, value: Any, kind: type | tuple[type, ...]) -> None:
    """Fail unless value is an instance of kind."""
    if not isinstance(value, kind):
        want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise GradingError(f"{name}: expected a {want}, got {type(value).__name__}")


def check_shape(name: str, value: Any, shape: tuple[int, ...]) -> None:
    """Fail unless value has exactly this shape."""
    got = tuple(value.shape) if hasattr(value, "shape") else _values(value)[0]
    if tuple(got) != tuple(shape):
        raise GradingError(f"{name}: expected shape {tuple(shape)}, got {tuple(got)}")


def check_finite(name: str, value: Any) -> None:
    """Fail if any value is NaN or infinite."""
    _, vals = _values(value)
    bad = [i for i, v in enumerate(vals) if not math.isfinite(v)]
    if bad:
        raise GradingError(f"{name}: {len(bad)} of {len(vals)} values are NaN or inf (first at flat index {bad[0]})")


def check_close(name: str, actual: Any, expected: Any, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Fail unless actual matches expected elementwise within atol + rtol * |expected|, naming the worst entry."""
    a_shape, a = _values(actual)
    e_shape, e = _values(expected)
    if a_shape != e_shape:
        raise GradingError(f"{name}: expected shape {e_shape}, got {a_shape}")
    worst, worst_i = 0.0, -1
    for i, (x, y) in enumerate(zip(a, e)):
        if math.isnan(x) or math.isnan(y):
            if not (math.isnan(x) and math.isnan(y)):
                raise GradingError(f"{name}: got {x} where {y} was expected (flat index {i})")
            continue
        excess = abs(x - y) - (atol + rtol * abs(y))
        if excess > 0 and (worst_i < 0 or excess > worst):
            worst, worst_i = excess, i
    if worst_i >= 0:
        n_bad = sum(1 for x, y in zip(a, e) if abs(x - y) > atol + rtol * abs(y))
        where = f" at index {tuple(int(i) for i in np.unravel_index(worst_i, e_shape))}" if e_shape else ""
        raise GradingError(f"{name}: {n_bad} of {len(e)} values differ; worst{where}: got {a[worst_i]:.6g}, "
                           f"expected {e[worst_i]:.6g} (difference {abs(a[worst_i] - e[worst_i]):.3g}, "
                           f"tolerance {atol + rtol * abs(e[worst_i]):.3g})")


def check_true(name: str, condition: bool, hint: str) -> None:
    """Fail with the hint unless condition holds."""
    if not bool(condition):
        raise GradingError(f"{name}: {hint}")


def check_grad(name: str, tensor: torch.Tensor) -> None:
    """Fail unless a leaf tensor received a finite, non-zero gradient."""
    if tensor.grad is None:
        raise GradingError(f"{name}: no gradient reached it (is the graph cut by .detach(), .item() or numpy?)")
    check_finite(f"{name}.grad", tensor.grad)
    if float(tensor.grad.detach().abs().sum()) == 0.0:
        raise GradingError(f"{name}: the gradient is exactly zero everywhere")


def seeded(seed: int, *shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A standard-normal tensor from its own seeded generator (the same everywhere, on every machine)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=torch.float64).to(dtype)
