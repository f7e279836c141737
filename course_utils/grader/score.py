"""Score a suite: ask every case of every part, judge each answer here, share a cell's points by weight.

`score` knows nothing about kernels: it gets `ask(request) -> Answer` (a `session.Kernel.ask`, or a fake
in tests), the test cells' points, and what the rules found in the submitted source (`rules.Finding`s, or
plain texts). A case passes when every Call it drew was answered correctly; a part whose rule is broken scores
0 with the rule's text; a part the rules could not judge keeps the points of its cases, each result marked with
the line to review (`CaseResult.review`).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Callable

from .cases import Answer, Call, CaseError, Suite
from .rules import Finding


@dataclass
class CaseResult:
    """One case (one draw) of one part: passed or not, the points it carries, what differed."""

    grade_id: str
    case: str
    draw: int
    passed: bool
    points: float
    max_points: float
    message: str = ""
    call: str = ""
    review: str = ""                 # "NEEDS REVIEW: <line> (<why>)" when the rules could not judge the part


def score(suite: Suite, ask: Callable[[dict], Answer], cell_points: dict[str, float], run_seed: int,
          violations: dict[str, Finding | str] | None = None) -> list[CaseResult]:
    """Every case result; the points of each test cell shared among its cases (and draws) by weight.

    violations  grade_id -> a rules.Finding (a violation zeroes the part; a review keeps its points and marks its
                results) or a text (a violation)"""
    reviews = {g: str(f) for g, f in (violations or {}).items() if getattr(f, "review", False)}
    violations = {g: str(f) for g, f in (violations or {}).items() if g not in reviews}
    drawn = suite.draw(run_seed)
    weight = defaultdict(float)
    for case, _, _ in drawn:
        weight[case.grade_id] += case.weight
    results = []
    for case, k, calls in drawn:
        max_points = cell_points.get(case.grade_id, 0.0) * case.weight / weight[case.grade_id]
        if case.grade_id in violations:
            results.append(CaseResult(case.grade_id, case.name, k, False, 0.0, max_points,
                                      violations[case.grade_id], calls[0].describe()))
            continue
        problem, where = None, ""
        for call in calls:
            problem, where = judge(call, ask), call.describe()
            if problem:
                break
        results.append(CaseResult(case.grade_id, case.name, k, problem is None,
                                  max_points if problem is None else 0.0, max_points, problem or "", where,
                                  reviews.get(case.grade_id, "")))
    return results


def judge(call: Call, ask: Callable[[dict], Answer]) -> str | None:
    """Ask one call and judge its answer; any failure of the judging itself counts against the answer, except a
    CaseError (the case itself is wrong), which stops the run."""
    answer = ask(call.request())
    try:
        return call.judge(answer)
    except CaseError:
        raise
    except Exception as e:  # noqa: BLE001 - a malformed answer (odd types) must fail the case, not the run
        return f"the answer could not be checked ({type(e).__name__}: {e})"


def totals(results: list[CaseResult]) -> dict[str, float]:
    """Points per test cell (grade_id), rounded to 1e-6 so shares of a point add up exactly."""
    out: dict[str, float] = defaultdict(float)
    for r in results:
        out[r.grade_id] += r.points
    return {k: round(v, 6) for k, v in out.items()}
