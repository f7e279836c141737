"""Kernel-side runtime of the grader: answer one request, as plain data, then get out of the way.

After the student's notebook has been executed, the grader sends requests like

    __import__("course_utils.grader.probe", fromlist=["serve"]).serve('{"nonce": ..., "op": "call", ...}')

`serve` decodes the inputs (arrays become tensors, module specs become small torch modules built here
from a whitelist), calls the student's function or class found in the notebook's namespace, and
displays ONE answer under the MIME type `ANSWER_MIME`: the output, gradients and parameters encoded by
`wire`, or the exception's type name and message. Nothing here decides a score, and nothing the grader
keeps secret (reference code, expected values, the run seed) ever reaches this module: the student's code
may patch or replace all of it and gains nothing but a wrong or missing answer.

Request fields (all but `nonce`, `op` and `target` optional):
    op        "call" (call target(*args, **kwargs)), "new" (build class target(*args, **kwargs) under a
              seed, optionally load a state dict, then call its `method` on `inputs`), "value" (send a
              global's value)
    args, kwargs, inputs          wire-encoded; {"__module__": [...layers], "state": {...}} builds a module
                                  (in training mode; "grad": {name: tensor} pre-fills parameters' .grad, as
                                  an earlier backward would have left them),
                                  {"__optimizer__": "sgd"|"adam", "of": i, "lr": ..} an optimizer over arg i
    grad      indices of tensor args to make leaves; the answer holds d sum(out * cotangent) / d arg
    cotangent wire-encoded tensor (default: ones)
    state_of  indices of module args whose state dicts (after the call) are sent back, each parameter with its
              requires_grad flag
    disable   dotted names ("torch.nn.functional.max_unpool2d") switched off during the call
"""
from __future__ import annotations

import importlib
import json
import sys
from typing import Any

from . import wire

ANSWER_MIME = "application/x-course-answer+json"
LAYERS = ("Linear", "Conv2d", "ConvTranspose2d", "ReLU", "Tanh", "Sigmoid", "LeakyReLU", "Flatten", "Unflatten",
          "Identity", "GELU", "LayerNorm", "Embedding", "MaxPool2d", "BatchNorm1d", "BatchNorm2d", "Dropout",
          "ZeroPad2d")


def serve(request_text: str) -> None:
    """Answer one grader request (displayed under ANSWER_MIME)."""
    nonce = None
    try:
        request = json.loads(request_text)
        nonce = request["nonce"]
        answer = _answer(request, sys.modules["__main__"].__dict__)
    except BaseException as e:  # noqa: BLE001 - the student's code may raise anything, SystemExit included
        answer = {"ok": False, "error": type(e).__name__, "mro": [c.__name__ for c in type(e).__mro__],
                  "message": _text(e)}
    answer["nonce"] = nonce
    try:
        text = json.dumps(answer, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        text = json.dumps({"nonce": nonce, "ok": False, "error": "WireError", "mro": ["WireError"],
                           "message": f"the answer cannot be sent: {e}"})
    from IPython.display import display

    display({ANSWER_MIME: text}, raw=True)


def _text(e: BaseException) -> str:
    """str(e), bounded (it is the student's text; the grader escapes it)."""
    try:
        return str(e)[:500]
    except BaseException:  # noqa: BLE001
        return "(the exception's message cannot be printed)"


def _answer(request: dict, namespace: dict) -> dict:
    """Decode inputs, run the requested call, encode what came out."""
    import torch

    args = list(to_inputs(wire.from_plain(request.get("args", {"l": []}))))
    kwargs = to_inputs(wire.from_plain(request.get("kwargs", {"d": []})))
    args = [_optimizer(a, args) if isinstance(a, dict) and "__optimizer__" in a else a for a in args]
    for i in request.get("grad", []):
        args[i] = args[i].detach().clone().requires_grad_(True)
    target = request["target"]
    if request["op"] == "value":
        return {"ok": True, "out": wire.to_plain(namespace[target])}
    if target not in namespace:
        raise NameError(f"{target} is not defined in the notebook")
    fn = namespace[target]
    module = None
    with _disabled(request.get("disable", [])):
        if request["op"] == "new":
            torch.manual_seed(int(request.get("seed", 0)))
            module = fn(*args, **kwargs)
            if "state" in request:
                state = to_inputs(wire.from_plain(request["state"]))
                module.load_state_dict(state, strict=True)
            inputs = to_inputs(wire.from_plain(request.get("inputs", {"l": []})))
            grad_inputs = request.get("grad_inputs", [])
            inputs = [x.detach().clone().requires_grad_(True) if i in grad_inputs else x for i, x in enumerate(inputs)]
            out = getattr(module, request.get("method") or "forward")(*inputs) if request.get("method") != "" else None
            leaves = [inputs[i] for i in grad_inputs]
        elif request["op"] == "call":
            out = fn(*args, **kwargs)
            leaves = [args[i] for i in request.get("grad", [])]
        else:
            raise ValueError(f"unknown op {request['op']!r}")
    answer: dict[str, Any] = {"ok": True, "out": wire.to_plain(out)}
    if module is not None:
        answer["params"] = wire.to_plain({k: v for k, v in module.state_dict().items()})
    if leaves:
        answer["grads"] = wire.to_plain(_grads(out, leaves, request.get("cotangent")))
    if request.get("state_of"):
        answer["states"] = wire.to_plain([dict(args[i].state_dict(keep_vars=True)) for i in request["state_of"]])
    return answer


def _grads(out: Any, leaves: list, cotangent: Any) -> list:
    """d sum(out * cotangent) / d leaf for each leaf (None where no gradient reaches it)."""
    import torch

    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        return [None for _ in leaves]
    w = torch.ones_like(out) if cotangent is None else to_inputs(wire.from_plain(cotangent)).to(out.dtype)
    grads = torch.autograd.grad((out * w).sum(), leaves, allow_unused=True)
    return [g for g in grads]


def to_inputs(value: Any) -> Any:
    """Turn decoded plain data into the kernel's inputs: tensors, small modules, containers."""
    import numpy as np
    import torch

    if isinstance(value, np.ndarray):
        if getattr(value, "tensor", False):
            return torch.from_numpy(np.array(value)).requires_grad_(bool(getattr(value, "grad", False)))
        return np.array(value)
    if isinstance(value, list):
        return [to_inputs(v) for v in value]
    if isinstance(value, tuple):
        return tuple(to_inputs(v) for v in value)
    if isinstance(value, dict):
        if "__module__" in value:
            return build_module(value["__module__"], value.get("state"), value.get("grad"))
        return {k: to_inputs(v) for k, v in value.items()}
    return value


def build_module(layers: list, state: dict | None, grads: dict | None = None):
    """nn.Sequential from [[name, args...], ...] over the LAYERS whitelist, with the given state dict (and
    parameters' .grad pre-filled from `grads`)."""
    import numpy as np
    import torch
    from torch import nn

    mods = []
    for spec in layers:
        name, *params = spec
        if name not in LAYERS:
            raise ValueError(f"layer {name!r} is not in the probe whitelist")
        params = [tuple(p) if isinstance(p, list) else p for p in params]
        mods.append(getattr(nn, name)(*params))
    model = nn.Sequential(*mods).double() if state and any(
        np.asarray(v).dtype == np.float64 for v in state.values()) else nn.Sequential(*mods)
    if state is not None:
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=True)
    params = dict(model.named_parameters())
    for name, g in (grads or {}).items():
        params[name].grad = torch.from_numpy(np.array(g)).to(params[name].dtype)
    return model


def _optimizer(spec: dict, args: list):
    """torch.optim.SGD / Adam over the parameters of module arg `of`."""
    import torch

    kind = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[spec["__optimizer__"]]
    return kind(args[spec["of"]].parameters(), lr=spec["lr"], **spec.get("options", {}))


class _disabled:
    """Switch dotted names off while the student's call runs (defence in depth; the static rule judges the source).

    "torch.ops.<namespace>.<op>" switches the op's kernels off in PyTorch's dispatcher (every overload, on CPU and
    CUDA) as well as its attribute, so every route to it fails, a reference captured earlier included; any other
    name is replaced on its owner (a module or class) by a stand-in that raises. A name the installed library
    lacks is skipped (the case files list internals of several versions)."""

    def __init__(self, names: list[str]):
        self.names, self.saved, self.libraries = names, [], {}

    def __enter__(self):
        for dotted in self.names:
            if dotted.startswith("torch.ops.") and dotted.count(".") == 3:
                self._op(dotted)
                continue
            owner_name, attr = dotted.rsplit(".", 1)
            try:
                owner = importlib.import_module(owner_name) if owner_name in sys.modules or "." not in owner_name \
                    else _resolve(owner_name)
                value = getattr(owner, attr)
            except (ImportError, AttributeError):
                continue
            self.saved.append((owner, attr, value))
            setattr(owner, attr, _switched_off(dotted))
        return self

    def _op(self, dotted: str) -> None:
        """Register a raising kernel for every overload of the op (undone by destroying the library in __exit__)."""
        import warnings

        import torch

        _, _, namespace, op = dotted.split(".")
        try:
            owner = getattr(torch.ops, namespace)
            packet = getattr(owner, op)
        except (AttributeError, RuntimeError):
            return
        off = _switched_off(dotted)
        if namespace not in self.libraries:
            self.libraries[namespace] = torch.library.Library(namespace, "IMPL")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")           # "overriding a previously registered kernel"
            for overload in packet.overloads():
                for key in ("CPU", "CUDA"):
                    try:
                        self.libraries[namespace].impl(op if overload == "default" else f"{op}.{overload}", off, key)
                    except RuntimeError:
                        pass
        self.saved.append((owner, op, packet))
        setattr(owner, op, off)

    def __exit__(self, *exc):
        for owner, attr, value in reversed(self.saved):
            setattr(owner, attr, value)
        for library in self.libraries.values():
            library._destroy()
        return False


def _resolve(dotted: str):
    """The object a dotted name refers to (module attributes included)."""
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for p in parts[1:]:
        obj = getattr(obj, p) if hasattr(obj, p) else importlib.import_module(f"{obj.__name__}.{p}")
    return obj


def _switched_off(dotted: str):
    """A stand-in that refuses to run."""
    def off(*args, **kwargs):
        raise RuntimeError(f"this part must be written without {dotted}")
    return off
