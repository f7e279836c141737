"""Final grades 1-5 from homework points and leaderboard ranks: seed 004's scheme, pure functions.

Each assignment is worth `homework_weights[a]` points (default: its nbgrader points), scaled from what the
student scored; each leaderboard gives tier points by rank (rank <= 10: 7, <= 20: 5, above the baseline: 3,
below it: 1, absent: 0). The grade counts how many cut-offs the sum reaches, the cut-offs being fractions
of the reference = all homework points + the baseline points of every leaderboard in use. With seed 004's
weights and its two leaderboards (`SEED_004` in tests/test_grader_scheme.py) this reproduces every row of the
seed's grade table.
"""
from __future__ import annotations

import copy
import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_BOARD = "leaderboard"
DEFAULT_SCHEME: dict = {
    "homework_weights": {},                      # assignment -> points it is worth (default: its nbgrader points)
    "leaderboards": {DEFAULT_BOARD: {"tiers": [[10, 7], [20, 5]], "baseline": 3, "below_baseline": 1}},
    "grade_thresholds": [0.35, 0.50, 0.70, 0.85],  # fractions of the reference for grades 2, 3, 4, 5
}
EPS = 1e-9                                       # a sum equal to a cut-off reaches it despite float rounding

Entry = tuple[int | None, bool]                  # (rank or None, above the baseline)


@dataclass
class FinalRow:
    """One student's final grade and the points it is made of."""

    student: str
    homework: dict[str, float]
    leaderboards: dict[str, float] = field(default_factory=dict)
    total: float = 0.0
    grade: int = 1


def load_scheme(path: Path | None = None) -> dict:
    """DEFAULT_SCHEME with the keys of a JSON scheme file replacing its own; checked."""
    scheme = copy.deepcopy(DEFAULT_SCHEME)
    if path is not None:
        try:
            given = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"scheme {path}: cannot read it as JSON ({e})") from None
        unknown = set(given) - set(DEFAULT_SCHEME) if isinstance(given, dict) else {"(not an object)"}
        if unknown:
            raise ValueError(f"scheme {path}: unknown keys {sorted(unknown)}; "
                             f"use any of {sorted(DEFAULT_SCHEME)} (see DEFAULT_SCHEME)")
        scheme.update(given)
    check_scheme(scheme)
    return scheme


def check_scheme(scheme: dict) -> None:
    """Raise ValueError saying what to fix when a scheme is malformed."""
    t = scheme["grade_thresholds"]
    if len(t) != 4 or not 0 < t[0] < t[1] < t[2] < t[3] <= 1:
        raise ValueError(f"grade_thresholds must be 4 ascending fractions in (0, 1] (grades 2-5), got {t}")
    if not all(isinstance(w, (int, float)) and w >= 0 for w in scheme["homework_weights"].values()):
        raise ValueError("homework_weights must map assignment names to points >= 0")
    for name, board in scheme["leaderboards"].items():
        if set(board) != {"tiers", "baseline", "below_baseline"}:
            raise ValueError(f"leaderboard {name!r} needs exactly the keys tiers, baseline, below_baseline")
        limits = [limit for limit, _ in board["tiers"]]
        if limits != sorted(limits):
            raise ValueError(f"leaderboard {name!r}: tiers must be [rank limit, points] by ascending limit")


def homework_points(score: float, max_score: float, weight: float | None) -> float:
    """What an assignment is worth in the final sum: score scaled to the weight (default: unscaled)."""
    if weight is None or max_score <= 0:
        return float(score)
    return weight * score / max_score


def leaderboard_points(entry: Entry | None, board: dict) -> float:
    """Points for a leaderboard entry: tiers by rank, else baseline; below the baseline; absent 0."""
    if entry is None:
        return 0.0
    rank, above_baseline = entry
    if not above_baseline or rank is None:
        return float(board["below_baseline"])
    for limit, pts in board["tiers"]:
        if rank <= limit:
            return float(pts)
    return float(board["baseline"])


def read_leaderboard(path: Path) -> dict[str, Entry]:
    """CSV with columns student, rank, above_baseline (true/false; default true) -> {student: entry}."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and not {"student", "rank"} <= set(rows[0]):
        raise ValueError(f"leaderboard {path}: needs the columns student, rank, above_baseline; "
                         f"found {list(rows[0])}")
    out = {}
    for i, r in enumerate(rows, 2):
        try:
            rank = int(r["rank"]) if (r["rank"] or "").strip() else None
        except ValueError:
            raise ValueError(f"leaderboard {path}, line {i}: rank {r['rank']!r} is not a whole number") from None
        above = str(r.get("above_baseline") or "true").strip().lower() in ("1", "true", "yes")
        out[r["student"].strip()] = (rank, above)
    return out


def reference(scheme: dict, homework_max: dict[str, float], boards: list[str]) -> float:
    """The points the cut-offs are fractions of: every assignment's worth + the boards' baseline points."""
    weights = scheme["homework_weights"]
    hw = sum(float(weights.get(a, m)) for a, m in homework_max.items())
    return hw + sum(float(scheme["leaderboards"][b]["baseline"]) for b in boards)


def grade(total: float, ref: float, thresholds: list[float]) -> int:
    """1 + the number of cut-offs (fractions of ref) the total reaches."""
    return 1 + sum(total >= t * ref - EPS for t in thresholds)


def final_grades(scores: dict[str, dict[str, float]], homework_max: dict[str, float],
                 leaderboards: dict[str, dict[str, Entry]], scheme: dict) -> tuple[list[FinalRow], float]:
    """({student: {assignment: points scored}}, {assignment: max points}, {board: entries}) -> rows, reference."""
    unknown = set(leaderboards) - set(scheme["leaderboards"])
    if unknown:
        raise ValueError(f"leaderboards {sorted(unknown)} are not in the scheme; "
                         f"it defines {sorted(scheme['leaderboards'])}")
    weights = scheme["homework_weights"]
    ref = reference(scheme, homework_max, list(leaderboards))
    students = sorted(set(scores).union(*leaderboards.values()))
    rows = []
    for s in students:
        hw = {a: round(homework_points(scores.get(s, {}).get(a, 0.0), m, weights.get(a)), 3)
              for a, m in homework_max.items()}
        lb = {b: leaderboard_points(entries.get(s), scheme["leaderboards"][b]) for b, entries in leaderboards.items()}
        total = round(sum(hw.values()) + sum(lb.values()), 3)
        rows.append(FinalRow(s, hw, lb, total, grade(total, ref, scheme["grade_thresholds"])))
    return rows, ref


def histogram(rows: list[FinalRow], ref: float, thresholds: list[float]) -> str:
    """The cut-offs and one bar per grade 1-5, as printed by `course export`."""
    counts = Counter(r.grade for r in rows)
    cuts = ", ".join(f"{g + 2}: >= {t * ref:.2f}" for g, t in enumerate(thresholds))
    lines = [f"reference {ref:g} points; {cuts}"]
    lines += [f"  grade {g}: {'#' * counts.get(g, 0)} {counts.get(g, 0)}" for g in range(1, 6)]
    return "\n".join(lines)
