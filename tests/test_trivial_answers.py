"""No graded part scores a point for an answer that does no work (no kernel: the answers are made up here).

Every assignment's hidden cases are drawn under a few run seeds and judged against answers a trivial
implementation would give: raise at every call, return None, 0, 0.0, True or [], return the first tensor it was
given, or a tensor of all True / zeros / ones shaped like the reference (a class builds nothing: the raising
answers stand for it; the others answer its method). Such an answer leaves every network it was handed as it was.
Every test cell must score 0 under every one: an edge case (an exception, an empty input, a value of zero) is
asked beside an ordinary call in the same case, so that "raise always" or "return 0" cannot pass it alone.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

from course_utils.layout import course_root
from course_utils.grader import wire
from course_utils.grader.cases import Answer, Call, New, load_suite, plain
from course_utils.grader.score import judge

ASSIGNMENTS = sorted(p.stem for p in (course_root() / "cases").glob("a[0-9][0-9]_*.py"))
SEEDS = (0, 1, 20261202)


def _raised(name: str, *bases: str) -> Callable[[Call, dict], Answer]:
    return lambda call, req: Answer(False, error=name, mro=[name, *bases, "Exception", "BaseException", "object"],
                                    message="trivial answer")


def _inputs(req: dict) -> list:
    """The decoded arguments of a request (a New's method inputs), in order."""
    values = wire.from_plain(req["inputs"] if req["op"] == "new" else req["args"])
    return list(values)


def _first_tensor(req: dict) -> tuple[int, Any] | tuple[None, None]:
    """(position, value) of the first tensor among the inputs."""
    for i, v in enumerate(_inputs(req)):
        if isinstance(v, np.ndarray):
            return i, v
    return None, None


def _template(call: Call, req: dict) -> Any:
    """The reference as decoded data, or (when it is computed from the answer, or there is none) the first tensor."""
    if call.expect is not None and not callable(call.expect):
        return plain(call.expect)
    return _first_tensor(req)[1]


def _like(ref: Any, fill: Any, dtype: Any = None) -> Any:
    """`ref` with every array replaced by one of its shape full of `fill` (its tensor flag kept), every number by
    `fill` (of the number's type)."""
    if isinstance(ref, np.ndarray):
        kind = dtype or (ref.dtype if ref.dtype.kind == "f" else np.float32)
        out = np.full(ref.shape, fill, dtype=kind).view(wire.Array)
        out.tensor = getattr(ref, "tensor", False)
        return out
    if isinstance(ref, (list, tuple)):
        return type(ref)(_like(r, fill, dtype) for r in ref)
    if isinstance(ref, dict):
        return {k: _like(v, fill, dtype) for k, v in ref.items()}
    if isinstance(ref, (bool, int, float)):                   # a number of the reference's type (True for all True)
        return fill if dtype is np.bool_ else type(ref)(fill)
    return ref


def _returned(value: Callable[[Call, dict], Any], identity: bool = False) -> Callable[[Call, dict], Answer]:
    """An answer returning `value(call, req)` and leaving every module argument as it was."""
    def answer(call: Call, req: dict) -> Answer:
        args = wire.from_plain(req["args"])
        states = [args[i].get("state") if isinstance(args[i], dict) else None for i in req.get("state_of", [])] or None
        grads = None
        leaves = req.get("grad_inputs", []) if req["op"] == "new" else req.get("grad", [])
        if identity and leaves:
            at, x = _first_tensor(req)
            cot = wire.from_plain(req["cotangent"]) if "cotangent" in req else None
            grads = [(cot if cot is not None else _like(x, 1.0)) if i == at else None for i in leaves]
        return Answer(True, out=value(call, req), grads=grads, states=states)
    return answer


STRATEGIES: dict[str, Callable[[Call, dict], Answer]] = {
    "raises ValueError": _raised("ValueError"),
    "raises NotImplementedError": _raised("NotImplementedError", "RuntimeError"),
    "returns None": _returned(lambda c, r: None),
    "returns 0": _returned(lambda c, r: 0),
    "returns 0.0": _returned(lambda c, r: 0.0),
    "returns True": _returned(lambda c, r: True),
    "returns []": _returned(lambda c, r: []),
    "returns its first tensor": _returned(lambda c, r: _first_tensor(r)[1], identity=True),
    "all True like the reference": _returned(lambda c, r: _like(_template(c, r), True, np.bool_)),
    "zeros like the reference": _returned(lambda c, r: _like(_template(c, r), 0.0)),
    "ones like the reference": _returned(lambda c, r: _like(_template(c, r), 1.0)),
}


def passing_parts(drawn: list, strategy: str) -> dict[str, list[str]]:
    """grade_id -> the cases (case[draw]) of a drawn suite that pass when every call is answered by `strategy`."""
    make = STRATEGIES[strategy]
    passed: dict[str, list[str]] = {}
    for case, k, calls in drawn:
        if all(judge(call, lambda req, call=call: make(call, req)) is None for call in calls):
            passed.setdefault(case.grade_id, []).append(f"{case.name}[{k}]")
    return passed


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_trivial_answers_score_nothing(name):
    suite = load_suite(course_root() / "cases" / f"{name}.py")
    got = {}
    for seed in SEEDS:
        drawn = suite.draw(seed)                  # drawn once, judged against every strategy in turn
        for strategy in STRATEGIES:
            if passed := passing_parts(drawn, strategy):
                got[f"{strategy}, run seed {seed}"] = passed
    assert not got, f"cases passed by trivial answers: {got}"


def test_strategies_answer_what_they_say():
    """The fakes themselves: an identity answer returns the tensor it got, with the cotangent as its gradient."""
    import torch

    x, cot = torch.arange(6.0).reshape(2, 3), 2 * torch.ones(2, 3)
    call = Call("f", 1, x, grad=(1,), cotangent=cot, expect=x, expect_grad=(cot,))
    assert call.judge(STRATEGIES["returns its first tensor"](call, call.request())) is None   # right for f = id
    zeros = STRATEGIES["zeros like the reference"](call, call.request()).out
    assert zeros.tensor and zeros.dtype == np.float32 and not zeros.any()
    new = New("M", 3, inputs=(x,), expect=x)
    assert STRATEGIES["returns its first tensor"](new, new.request()).out.shape == (2, 3)
