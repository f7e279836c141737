"""How hidden cases are written, and how an answer is compared with the reference. Grader side only.

A hidden-case file `cases/<assignment>.py` (never released, never sent to a kernel) builds a `Suite`:

    SUITE = Suite("a01_autoencoders")

    @SUITE.case("test_max_unpool", draws=3)
    def unpool_random_planes(rng):
        x = normal(rng, 2, 3, 8, 6)
        pooled, idx = F.max_pool2d(x, 2, return_indices=True)
        values = normal(rng, *pooled.shape)
        return Call("max_unpool", values, idx, (8, 6),
                    expect=F.max_unpool2d(values, idx, 2, output_size=(8, 6)), atol=1e-6)

`rng` is a NumPy Generator seeded from the run's secret seed, the case's name and the draw, so the student's
code never sees the inputs before it is asked. The grader sends the `Call` (target name and inputs) to the
student's kernel, receives plain data (`wire`), and compares it here with `expect`, computed in this
process. Points of a test cell are shared among its cases by `weight`; a case scores only when every
`Call` it returns passes.

The comparison (`compare`) is type-exact: a bool never stands for a number, nor a number for a bool; the dtype
kind (bool / integer / floating), the shape, the exact dtype (float32 is not float64; `dtype=False` on a Call
where any float dtype is right) and tensor-or-array must be the reference's; nan and inf equal nothing. A
reference computed here that holds nan or inf is the case author's error (`CaseError`, which stops the run).
"""
from __future__ import annotations

import importlib.util
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import wire
from .rules import Finding, Rule, judge_notebook, loops_in, rule_violations  # noqa: F401  (the rules live in rules.py)

Check = Callable[["Answer"], "str | None"]


# ---------------------------------------------------------------- what a case asks

@dataclass
class Call:
    """Call `target(*args, **kwargs)` in the student's kernel and compare what comes back.

    expect       the reference output (a value, or a function of the Answer, e.g. of the student's own
                 parameters); None with `raises` or `check` only
    raises       an exception class (or its name) the call must raise
    grad         indices of tensor args made leaves; `expect_grad` holds d sum(out * cotangent) / d arg
                 (None = no gradient may reach that arg)
    state_of     indices of module args whose parameters after the call are compared with `expect_state`
    check        extra test in this process: Answer -> failure message or None
    disable      dotted names the kernel switches off during the call (the static `Suite.rule` is the enforcement)
    kind         the output's required Python type: "int", "float", "bool", "tensor", "array", "list", "tuple"
    dtype        False: any dtype of the reference's kind passes (output, gradients, parameters); default
                 (None = EXACT_DTYPE): the exact dtype
    """

    target: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    expect: Any = None
    atol: float = 1e-5
    rtol: float = 1e-4
    raises: type[BaseException] | str | None = None
    grad: tuple[int, ...] = ()
    cotangent: Any = None
    expect_grad: tuple = ()
    state_of: tuple[int, ...] = ()
    expect_state: tuple = ()
    check: Check | None = None
    disable: tuple[str, ...] = ()
    kind: str | None = None
    dtype: bool | None = None
    label: str = ""

    def __init__(self, target: str, *args: Any, **options: Any):
        self.target, self.args = target, args
        self.kwargs = options.pop("kwargs", {})
        for name, value in options.items():
            if name not in Call.__dataclass_fields__:
                raise TypeError(f"Call got an unknown option {name!r}")
            setattr(self, name, value)
        for name, f in Call.__dataclass_fields__.items():
            if not hasattr(self, name):
                setattr(self, name, f.default_factory() if callable(f.default_factory) else f.default)

    op = "call"

    def request(self) -> dict:
        """The plain-data request sent to the kernel (inputs only: no expected value, no reference code)."""
        req = {"op": self.op, "target": self.target, "args": wire.to_plain(list(self.args)),
               "kwargs": wire.to_plain(dict(self.kwargs)), "grad": list(self.grad),
               "state_of": list(self.state_of), "disable": list(self.disable)}
        if self.cotangent is not None:
            req["cotangent"] = wire.to_plain(self.cotangent)
        return req

    def describe(self) -> str:
        """How the call reads in feedback: target(shapes of inputs)."""
        return self.label or f"{self.target}({', '.join(_short(a) for a in self.args)})"

    def judge(self, answer: "Answer") -> str | None:
        """None when the answer is right, else what differed."""
        if self.raises is not None:
            want = self.raises if isinstance(self.raises, str) else self.raises.__name__
            if answer.ok:
                return f"expected {want} to be raised, but the call returned {wire.describe(answer.out)}"
            if want not in answer.mro:
                return f"expected {want}, got {answer.error}: {answer.message}"
            return self.check(answer) if self.check else None
        if not answer.ok:
            return f"raised {answer.error}: {answer.message}"
        if self.kind is not None and (problem := _kind(answer.out, self.kind)):
            return problem
        # a reference computed here must be finite (CaseError); one computed from the answer (the student's own
        # parameters) may not be, and then fails the answer
        expect = plain(self.expect(answer)) if callable(self.expect) else reference(self.expect)
        if expect is not None or not callable(self.check):
            if problem := compare(answer.out, expect, self.atol, self.rtol, "output", self.dtype):
                return problem
        for i, want in zip(self.grad, self.expect_grad):
            got = answer.grads[self.grad.index(i)] if answer.grads else None
            if want is None:
                if got is not None and np.any(np.asarray(got) != 0):
                    return f"a gradient reaches argument {i}, which must be cut off (detach / no_grad)"
                continue
            if got is None:
                return f"no gradient reaches argument {i}"
            if problem := compare(got, reference(want, f"expect_grad[{self.grad.index(i)}]"), self.atol, self.rtol,
                                  f"gradient wrt argument {i}", self.dtype):
                return problem
        for i, want in zip(self.state_of, self.expect_state):
            got = answer.states[self.state_of.index(i)] if answer.states else None
            if problem := compare(got, reference(want, "expect_state"), self.atol, self.rtol,
                                  f"parameters of argument {i} after the call", self.dtype):
                return problem
        return self.check(answer) if self.check else None


class New(Call):
    """Build `target(*args, **kwargs)` (a class) under `seed`, optionally load `state`, call `method(*inputs)`.

    The answer's `params` holds the instance's state dict as data, so `expect` can be a function of it
    (`lambda a: reference_forward(a.params, x)`): the reference then runs on the student's own weights.
    """

    seed: int = 0
    state: Any = None
    inputs: tuple = ()
    method: str = "forward"
    grad_inputs: tuple[int, ...] = ()
    op = "new"

    def __init__(self, target: str, *args: Any, **options: Any):
        for name in ("seed", "state", "inputs", "method", "grad_inputs"):
            setattr(self, name, options.pop(name, getattr(New, name)))
        super().__init__(target, *args, **options)

    def request(self) -> dict:
        req = super().request()
        req.update(seed=int(self.seed), inputs=wire.to_plain(list(self.inputs)), method=self.method,
                   grad_inputs=list(self.grad_inputs))
        if self.state is not None:
            req["state"] = wire.to_plain(dict(self.state))
        return req

    def judge(self, answer: "Answer") -> str | None:
        # gradients of a New are with respect to its inputs
        self.grad = tuple(self.grad_inputs)
        return super().judge(answer)

    def describe(self) -> str:
        return self.label or f"{self.target}(...).{self.method}({', '.join(_short(a) for a in self.inputs)})"


class Value(Call):
    """Read a global's value from the notebook (e.g. a chosen hyper-parameter)."""

    op = "value"


class Peek(Call):
    """Ask for a value a later Call's reference depends on; never scored (its Answer lands in `store`).

    For a part that calls another of the student's functions: peek at what the student's own dependency
    returns, and let the later Call accept the output computed from it as well as the reference (`matches_any`),
    so that a bug in the dependency costs only the dependency's part.
    """

    def __init__(self, target: str, *args: Any, store: dict, **options: Any):
        super().__init__(target, *args, **options)
        self.store = store

    def judge(self, answer: "Answer") -> str | None:
        self.store["answer"] = answer
        return None


@dataclass
class Answer:
    """What the kernel answered, decoded to plain data (nothing in it is an object of the student's)."""

    ok: bool
    out: Any = None
    grads: list | None = None
    states: list | None = None
    params: dict | None = None
    error: str = ""
    mro: list[str] = field(default_factory=list)
    message: str = ""

    @classmethod
    def from_wire(cls, raw: dict) -> "Answer":
        """Decode the kernel's JSON answer (WireError when it is not one)."""
        if not isinstance(raw, dict) or type(raw.get("ok")) is not bool:
            raise wire.WireError("the answer is not an answer object")
        if not raw["ok"]:
            mro = raw.get("mro") if isinstance(raw.get("mro"), list) else []
            return cls(False, error=wire.clean(raw.get("error", "?"), 100), mro=[wire.clean(m, 100) for m in mro[:50]],
                       message=wire.clean(raw.get("message", ""), 500))
        get = lambda k: wire.from_plain(raw[k]) if k in raw else None  # noqa: E731
        return cls(True, out=get("out"), grads=get("grads"), states=get("states"), params=get("params"))


# ---------------------------------------------------------------- comparison

def plain(value: Any) -> Any:
    """A reference value as the kernel's answer would decode (tensors -> wire.Array)."""
    return wire.from_plain(wire.to_plain(value))


EXACT_DTYPE = True       # the default of `dtype`: float32 is not float64, int32 is not int64 (a Call may say dtype=False)
KINDS = {"b": "bool", "i": "integer", "u": "integer", "f": "floating", "c": "complex"}


class CaseError(Exception):
    """A hidden case is wrong (its reference holds nan or inf): the author's error, never held against a student."""


def kind_of(value: Any) -> str | None:
    """The dtype kind of a decoded value: "bool", "integer", "floating" or "complex" (None for other values)."""
    if isinstance(value, np.ndarray):
        return KINDS.get(value.dtype.kind)
    for t, kind in ((bool, "bool"), (int, "integer"), (float, "floating"), (complex, "complex")):
        if isinstance(value, t):
            return kind
    return None


def finite(want: Any) -> bool:
    """True when no float inside the (decoded) value is nan or inf."""
    if isinstance(want, np.ndarray):
        return want.dtype.kind not in "fc" or bool(np.isfinite(want).all())
    if isinstance(want, float):
        return want == want and abs(want) != float("inf")
    if isinstance(want, (list, tuple)):
        return all(finite(w) for w in want)
    if isinstance(want, dict):
        return all(finite(w) for w in want.values())
    return True


def reference(value: Any, what: str = "expect") -> Any:
    """A grader-computed reference as decoded plain data (`plain`); CaseError when it holds nan or inf, which no
    answer can match."""
    want = plain(value)
    if not finite(want):
        raise CaseError(f"the case's {what} holds nan or inf: no answer can match it (fix the case's inputs)")
    return want


def compare(got: Any, want: Any, atol: float, rtol: float, where: str = "output", dtype: bool | None = None) -> str | None:
    """None when `got` matches `want` (decoded plain data on both sides), else the first difference.

    Type-exact: a bool never stands for a number nor a number for a bool (a bool tensor does not match a float
    one, True does not match 1, 1 does not match 1.0); the dtype kind (bool / integer / floating) of every array
    and number must be the reference's, the shape too, and a torch.Tensor is not a NumPy array. The exact dtype
    (float32 vs float64) is compared too unless `dtype=False` (None: `EXACT_DTYPE`); a case that computes its
    reference in float64 for a float32 input casts it back to the input's dtype. Without the exact dtype, a
    Python number also stands for a 0-d NumPy array of its kind; a 1-element array of its kind always stands for
    a Python number. nan and inf equal nothing, not even themselves: an answer holding one fails, and so does
    every answer against a reference that holds one. Lists and tuples stand for each other (`Call(kind=...)`
    asks for one); integers and bools match exactly, floats within atol + rtol * |reference|.
    """
    exact = EXACT_DTYPE if dtype is None else dtype
    if isinstance(want, np.ndarray):
        if not isinstance(got, np.ndarray):
            if want.ndim == 0 and not getattr(want, "tensor", False) and not exact and kind_of(got) == kind_of(want):
                got = np.asarray(got, want.dtype)
            else:
                return f"{where}: expected a {wire.describe(want)}, got {_describe(got)}"
        if getattr(want, "tensor", False) and not getattr(got, "tensor", False):
            return f"{where}: expected a torch.Tensor, got a NumPy array"
        if got.shape != want.shape:
            return f"{where}: expected shape {tuple(want.shape)}, got {tuple(got.shape)}"
        if kind_of(got) != kind_of(want):
            return f"{where}: expected dtype {want.dtype.name} ({kind_of(want)}), got {got.dtype.name} ({kind_of(got)})"
        if exact and got.dtype != want.dtype:
            return f"{where}: expected dtype {want.dtype.name}, got {got.dtype.name}"
        if want.dtype.kind == "b":
            bad = got != want
            if bad.any():
                idx = tuple(int(i) for i in np.argwhere(bad)[0])
                return f"{where}: {int(bad.sum())} of {bad.size} entries differ, first at {idx}"
            return None
        g, w = np.asarray(got, np.float64), np.asarray(want, np.float64)
        if not np.isfinite(g).all():
            return f"{where}: {int((~np.isfinite(g)).sum())} entries are nan or inf"
        if not np.isfinite(w).all():
            return f"{where}: the expected values hold nan or inf, which nothing matches"
        err = np.abs(g - w)
        bad = ~(err <= atol + rtol * np.abs(w))
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            return (f"{where}: {int(bad.sum())} of {bad.size} entries differ; first at {idx}: got {g[idx]:.6g}, "
                    f"expected {w[idx]:.6g} (max abs difference {err.max():.3g}, allowed {atol:g} + {rtol:g}*|expected|)")
        return None
    if isinstance(want, bool) or want is None or isinstance(want, str):
        return None if type(got) is type(want) and got == want else f"{where}: expected {want!r}, got {_show(got)}"
    if isinstance(want, (int, float)):
        kind = kind_of(want)
        if isinstance(got, np.ndarray) and got.size == 1 and kind_of(got) == kind:
            got = got.reshape(()).item()
        if type(got) not in (int, float) or kind_of(got) != kind:
            what = "an int" if kind == "integer" else "a float"
            return f"{where}: expected a number ({what}, like {want!r}), got {_describe(got)}"
        if not finite(want):
            return f"{where}: the expected value {want!r} equals nothing"
        if kind == "integer":
            return None if got == want else f"{where}: expected {want}, got {got}"
        if not abs(got - want) <= atol + rtol * abs(want):
            return f"{where}: expected {want:.6g}, got {got:.6g} (difference {abs(got - want):.3g})"
        return None
    if isinstance(want, (list, tuple)):
        if not isinstance(got, (list, tuple)):
            return f"{where}: expected a {type(want).__name__} of length {len(want)}, got {_describe(got)}"
        if len(got) != len(want):
            return f"{where}: expected length {len(want)}, got {len(got)}"
        for i, (g, w) in enumerate(zip(got, want)):
            if problem := compare(g, w, atol, rtol, f"{where}[{i}]", dtype):
                return problem
        return None
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return f"{where}: expected a dict, got {_describe(got)}"
        if set(got) != set(want):
            return f"{where}: expected keys {sorted(want)}, got {sorted(got)[:20]}"
        for k in want:
            if problem := compare(got[k], want[k], atol, rtol, f"{where}[{k!r}]", dtype):
                return problem
        return None
    raise TypeError(f"cannot compare with a reference of type {type(want).__name__}")


def matches_any(got: Any, wants: list, atol: float, rtol: float, where: str = "output") -> str | None:
    """None when `got` matches one of the references `wants` (None entries skipped), else how it differs from the first."""
    wants = [w for w in wants if w is not None]
    problems = [compare(got, plain(w), atol, rtol, where) for w in wants]
    return None if any(p is None for p in problems) else problems[0]


KIND_NAMES = {"int": "a Python int", "float": "a Python float", "bool": "a Python bool", "tensor": "a torch.Tensor",
              "array": "a NumPy array", "list": "a list", "tuple": "a tuple"}


def _kind(value: Any, kind: str) -> str | None:
    """A failure message when the decoded value is not of the required Python type (exactly: True is not an int,
    1 is not a float, a NumPy array is not a tensor)."""
    ok = {"int": type(value) is int, "float": type(value) is float, "bool": type(value) is bool,
          "tensor": isinstance(value, np.ndarray) and getattr(value, "tensor", False),
          "array": isinstance(value, np.ndarray) and not getattr(value, "tensor", False),
          "list": type(value) is list, "tuple": type(value) is tuple}[kind]
    return None if ok else f"output: expected {KIND_NAMES[kind]}, got {_describe(value)}"


def _describe(value: Any) -> str:
    """A decoded value as feedback names it: type, shape and dtype of an array, the value of a scalar."""
    if isinstance(value, (np.ndarray, list, tuple, dict)):
        return wire.describe(value)
    return f"{type(value).__name__} {_show(value)}"


def _show(value: Any) -> str:
    """A short repr of a decoded value."""
    text = repr(value)
    return text if len(text) <= 80 else wire.describe(value)


def _short(value: Any) -> str:
    """An input as it reads in feedback: shapes for arrays, the value for small scalars."""
    if hasattr(value, "shape") and getattr(value, "ndim", 0) > 0:
        return "<" + "x".join(str(n) for n in value.shape) + ">"
    if isinstance(value, dict) and "__module__" in value:
        return "<model>"
    text = repr(value.item() if hasattr(value, "item") else value)
    return text if len(text) <= 30 else type(value).__name__


# ---------------------------------------------------------------- the suite of one assignment

@dataclass
class Case:
    """One hidden case: a function of a seeded rng returning a Call (or a list of Calls)."""

    grade_id: str
    name: str
    build: Callable[[np.random.Generator], Call | list[Call]]
    draws: int = 1
    weight: float = 1.0


class Suite:
    """The hidden cases and rules of one assignment, keyed by the grade_id of the test cell they score."""

    def __init__(self, assignment: str):
        self.assignment, self.cases, self.rules = assignment, [], []
        self._targets: tuple[int, dict[str, tuple[str, ...]]] | None = None
        self._spare: tuple[int, int, list] | None = None    # (seed, number of cases, draw) kept by targets()

    def case(self, grade_id: str, *, draws: int = 1, weight: float = 1.0, name: str | None = None):
        """Decorator: register a case function `fn(rng) -> Call | list[Call]` for the test cell `grade_id`."""
        def register(fn):
            case_name = name or fn.__name__
            if any(c.name == case_name for c in self.cases):
                raise ValueError(f"two cases are named {case_name!r}")
            self.cases.append(Case(grade_id, case_name, fn, draws, weight))
            return fn
        return register

    def rule(self, grade_id: str, forbid: list[str] | tuple[str, ...], why: str,
             no_loops_in: list[str] | tuple[str, ...] = (), targets: list[str] | tuple[str, ...] = ()) -> None:
        """Register a "without X" rule (`rules.Rule`) for the part scored by `grade_id`: `forbid` holds dotted API
        names or module prefixes ("torch.nn.functional.max_unpool2d", "sklearn"), judged on the part's graded
        functions (`targets`, default: what its cases call) and all they reach; `no_loops_in` names functions that
        (with every function of the student's they call) may hold no Python loop or comprehension."""
        self.rules.append(Rule(grade_id, tuple(forbid), why, tuple(no_loops_in), tuple(targets)))

    def targets(self, seed: int = 0) -> dict[str, tuple[str, ...]]:
        """grade_id -> the names its cases call, what the rules judge (found by one draw the first time: the names
        do not depend on the seed; that draw is kept for the next `draw(seed)`, so the scoring does not repeat it)."""
        if self._targets is None or self._targets[0] != len(self.cases):
            drawn = self.draw(seed)
            self._spare = (seed, len(self.cases), drawn)
            found: dict[str, dict[str, None]] = {}
            for case, _, calls in drawn:
                found.setdefault(case.grade_id, {}).update(dict.fromkeys(c.target for c in calls))
            self._targets = (len(self.cases), {gid: tuple(names) for gid, names in found.items()})
        return self._targets[1]

    def grade_ids(self) -> list[str]:
        """Test cells that have cases, in the order they were registered."""
        return list(dict.fromkeys(c.grade_id for c in self.cases))

    def draw(self, run_seed: int) -> list[tuple[Case, int, list[Call]]]:
        """Every (case, draw, calls), with inputs drawn from the secret run seed."""
        if self._spare is not None and self._spare[:2] == (run_seed, len(self.cases)):
            out, self._spare = self._spare[2], None
            return out
        out = []
        for case in self.cases:
            for k in range(case.draws):
                rng = np.random.default_rng([run_seed, zlib.crc32(case.name.encode()), k])
                calls = case.build(rng)
                out.append((case, k, calls if isinstance(calls, list) else [calls]))
        return out


def load_suite(path: Path) -> Suite:
    """Import a hidden-case file and return its SUITE."""
    spec = importlib.util.spec_from_file_location(f"course_cases_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no hidden-case file at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    suite = getattr(module, "SUITE", None)
    if not isinstance(suite, Suite):
        raise TypeError(f"{path} must define SUITE = Suite(...)")
    return suite


# ---------------------------------------------------------------- input helpers for case files

def normal(rng: np.random.Generator, *shape: int, dtype: Any = None):
    """A torch tensor of standard normals drawn from rng (float32 unless dtype says otherwise)."""
    import torch

    return torch.from_numpy(rng.standard_normal(shape)).to(dtype or torch.float32)


def uniform(rng: np.random.Generator, *shape: int, low: float = 0.0, high: float = 1.0, dtype: Any = None):
    """A torch tensor of uniforms on [low, high) drawn from rng."""
    import torch

    return torch.from_numpy(rng.uniform(low, high, shape)).to(dtype or torch.float32)


def sequential(layers: list[list], rng: np.random.Generator, scale: float = 0.3, dtype: Any = None):
    """A small model for both sides: (spec for the kernel, torch module for the reference).

    `layers` uses the names of probe.LAYERS, e.g. [["Flatten"], ["Linear", 784, 6], ["Tanh"]]; weights are
    drawn from rng. The spec travels as an argument; the kernel builds the same module from it.
    """
    import torch

    from .probe import build_module

    model = build_module(layers, None)
    if dtype is not None:
        model = model.to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(scale * normal(rng, *p.shape, dtype=p.dtype))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    return {"__module__": layers, "state": state}, model
