"""Plain data across the kernel boundary: values <-> JSON text, nothing else.

Both sides use this module. The grader encodes the inputs of a case and decodes what the student's
kernel answers; the kernel-side runtime (`probe.py`) does the reverse. Decoding builds only plain
values: None, bool, int, float, str, list, tuple, dict with str keys, and NumPy arrays made from raw
bytes of a whitelisted dtype. No pickle, no object the student's code wrote a method for, so nothing
that is decoded can "compare equal" to whatever it meets: a decoded value is data.

Encoding format (JSON):
    null / true / 1 / "text"                    the JSON scalars themselves (int and str as they are)
    {"f": "0x1.8p+1"}                           a float, as float.hex (exact; nan / inf included)
    {"l": [...]} / {"u": [...]}                 list / tuple
    {"d": [[key, value], ...]}                  dict with str keys (order kept)
    {"a": base64, "dtype": "float32", "shape": [2, 3], "tensor": true, "grad": false}
                                                an array (a torch.Tensor when "tensor" is true)
"""
from __future__ import annotations

import base64
import json
import math
from typing import Any

import numpy as np

DTYPES = ("float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool")
MAX_TEXT = 8 << 20           # bytes of JSON accepted from the kernel for one answer
MAX_DEPTH = 32               # nesting accepted (lists of lists of ...)
MAX_STR = 100_000            # characters of one decoded string


def clean(value: Any, limit: int) -> str:
    """Text from the kernel as valid UTF-8 of at most `limit` characters (lone surrogates replaced; a list of
    strings joined, as nbformat writes multi-line text; anything else str())."""
    if isinstance(value, list):
        value = "".join(v for v in value[:100_000] if isinstance(v, str))
    text = (value if isinstance(value, str) else str(value))[:limit]
    return text.encode("utf-8", "replace").decode("utf-8")


class WireError(ValueError):
    """The text is not a value this format can carry (malformed, too big, too deep, unknown dtype)."""


# ---------------------------------------------------------------- encode (any side)

def to_plain(value: Any, depth: int = 0) -> Any:
    """Encode a Python / NumPy / PyTorch value as a JSON-ready structure (raises WireError otherwise)."""
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    if value is None or type(value) in (bool, str):
        return value
    if type(value) is int:
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return {"f": float(value).hex()}
    if isinstance(value, (list, tuple)):
        return {"l" if isinstance(value, list) else "u": [to_plain(v, depth + 1) for v in value]}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise WireError("dict keys must be str")
        return {"d": [[str(k), to_plain(v, depth + 1)] for k, v in value.items()]}
    if isinstance(value, np.ndarray):
        return _array(value, tensor=False, grad=False)
    if _is_tensor(value):
        return _array(value.detach().cpu().numpy(), tensor=True, grad=bool(value.requires_grad))
    raise WireError(f"cannot send a value of type {type(value).__name__}")


def dumps(value: Any) -> str:
    """Encode a value as JSON text."""
    return json.dumps(to_plain(value), separators=(",", ":"), allow_nan=False)


def _is_tensor(value: Any) -> bool:
    """True for a torch.Tensor (without importing torch where it is not loaded)."""
    torch = __import__("sys").modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _array(a: np.ndarray, tensor: bool, grad: bool) -> dict:
    """One array as base64 of its C-ordered bytes."""
    a = np.ascontiguousarray(a)
    if a.dtype.name not in DTYPES:
        raise WireError(f"arrays of dtype {a.dtype.name} are not carried")
    return {"a": base64.b64encode(a.tobytes()).decode("ascii"), "dtype": a.dtype.name,
            "shape": list(a.shape), "tensor": tensor, "grad": grad}


# ---------------------------------------------------------------- decode (any side)

class Array(np.ndarray):
    """A decoded array; `.tensor` says whether it was a torch.Tensor on the other side."""

    tensor: bool = False
    grad: bool = False


def loads(text: str | bytes) -> Any:
    """Decode JSON text into plain values (WireError on anything else)."""
    if len(text) > MAX_TEXT:
        raise WireError(f"answer of {len(text):,} bytes is larger than {MAX_TEXT:,}")
    try:
        raw = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        raise WireError(f"not JSON: {e}") from None
    return from_plain(raw)


def _no_constant(name: str) -> None:
    """JSON's NaN / Infinity literals are refused (floats travel as hex)."""
    raise WireError(f"bare {name} is not allowed")


def from_plain(raw: Any, depth: int = 0) -> Any:
    """Build plain values from a decoded JSON structure."""
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    if raw is None or type(raw) in (bool, int):
        return raw
    if type(raw) is str:
        if len(raw) > MAX_STR:
            raise WireError("string too long")
        return raw
    if type(raw) is float:           # plain JSON float (only from hand-written text): accept as is
        return raw
    if type(raw) is not dict or len(raw) == 0:
        raise WireError(f"unexpected JSON value {str(raw)[:60]!r}")
    if "f" in raw and len(raw) == 1:
        if type(raw["f"]) is not str:
            raise WireError("float must be hex text")
        try:
            return float.fromhex(raw["f"])
        except ValueError:
            raise WireError(f"bad float {raw['f'][:40]!r}") from None
    if ("l" in raw or "u" in raw) and len(raw) == 1:
        items = raw.get("l", raw.get("u"))
        if type(items) is not list:
            raise WireError("list payload must be a JSON array")
        out = [from_plain(v, depth + 1) for v in items]
        return out if "l" in raw else tuple(out)
    if "d" in raw and len(raw) == 1:
        pairs = raw["d"]
        if type(pairs) is not list or not all(type(p) is list and len(p) == 2 and type(p[0]) is str for p in pairs):
            raise WireError("dict payload must be [[str, value], ...]")
        return {k: from_plain(v, depth + 1) for k, v in pairs}
    if "a" in raw:
        return _decode_array(raw)
    raise WireError(f"unknown value tag {sorted(raw)[:4]}")


def _decode_array(raw: dict) -> Array:
    """An Array from base64 bytes, checking dtype, shape and byte count."""
    dtype, shape = raw.get("dtype"), raw.get("shape")
    if dtype not in DTYPES:
        raise WireError(f"array dtype {dtype!r} is not carried")
    if type(shape) is not list or not all(type(n) is int and n >= 0 for n in shape) or len(shape) > 16:
        raise WireError("array shape must be a list of non-negative ints")
    if type(raw["a"]) is not str:
        raise WireError("array bytes must be base64 text")
    try:
        data = base64.b64decode(raw["a"], validate=True)
    except ValueError:
        raise WireError("array bytes are not valid base64") from None
    count = math.prod(shape)
    if len(data) != count * np.dtype(dtype).itemsize:
        raise WireError(f"array of shape {shape} and dtype {dtype} needs {count * np.dtype(dtype).itemsize} bytes, "
                        f"got {len(data)}")
    arr = np.frombuffer(data, dtype=dtype).reshape(shape).copy().view(Array)
    arr.tensor, arr.grad = bool(raw.get("tensor")), bool(raw.get("grad"))
    return arr


def describe(value: Any) -> str:
    """A short human description of a decoded value (for feedback): type, shape, dtype."""
    if isinstance(value, np.ndarray):
        kind = "tensor" if getattr(value, "tensor", False) else "array"
        return f"{kind} of shape {tuple(value.shape)} and dtype {value.dtype.name}"
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__} of length {len(value)}"
    return type(value).__name__
