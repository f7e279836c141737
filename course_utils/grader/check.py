"""For case authors: run an assignment's hidden cases against a notebook in a plain local kernel.

    python -m course_utils.grader.check a01_autoencoders                 # the solution: full marks expected
    python -m course_utils.grader.check a01_autoencoders --blank         # the release: 0 expected
    python -m course_utils.grader.check a01_autoencoders --notebook my.ipynb --seed 7

No sandbox here (use `course grade` for students' work): it executes the notebook's code cells except
its test cells, then asks every case and prints one line per case and the points per test cell.
"""
from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
from pathlib import Path

import nbformat

from .cases import Suite, load_suite
from .execute import Limits, cell_points, nbgrader_meta, student_sources  # noqa: F401  (for the case tests)
from .rules import judge_notebook
from .score import CaseResult, score, totals
from .session import Kernel

LIMITS = Limits()                 # the same per-cell and per-probe timeouts as `course grade`


def run_suite(suite: Suite, nb: nbformat.NotebookNode, points: dict[str, float], seed: int) -> list[CaseResult]:
    """Execute the notebook's non-test code cells in a local kernel, then score the suite."""
    return run_suite_seeds(suite, nb, points, [seed])[seed]


def run_suite_seeds(suite: Suite, nb: nbformat.NotebookNode, points: dict[str, float],
                    seeds: list[int]) -> dict[int, list[CaseResult]]:
    """Execute the notebook once, then score the suite under each run seed (seed -> results)."""
    with tempfile.TemporaryDirectory(prefix="course-check-") as tmp:
        kernel = Kernel(cwd=tmp)
        kernel.start()
        try:
            for i, cell in enumerate(nb.cells):
                meta = cell.get("metadata", {}).get("nbgrader", {})
                if cell.cell_type != "code" or meta.get("grade"):
                    continue
                run = kernel.run(cell.source, LIMITS.timeout)
                if run.status != "ok":
                    print(f"  cell {i} ({meta.get('grade_id', '?')}): {run.status} {run.ename} {run.evalue[:200]}")
            code = [(c.source, nbgrader_meta(c)) for c in nb.cells if c.cell_type == "code"]
            violations = judge_notebook(suite.rules, code, suite.targets())[0]
            return {seed: score(suite, lambda req: kernel.ask(req, LIMITS.ask_timeout), points, seed, violations)
                    for seed in seeds}
        finally:
            kernel.shutdown()


def main(argv: list[str] | None = None) -> int:
    """Print every case's result and the points per test cell; exit 1 when the expectation fails."""
    from ..layout import course_root

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("assignment")
    p.add_argument("--notebook", type=Path, help="notebook to check (default: the solution)")
    p.add_argument("--blank", action="store_true", help="check the released (blank) notebook; expect 0")
    p.add_argument("--seed", type=int, help="run seed (default: a fresh secret one)")
    a = p.parse_args(argv)
    root = course_root()
    name = a.assignment
    release = nbformat.read(root / "assignments" / name / f"{name}.ipynb", as_version=4)
    path = a.notebook or (root / ("assignments" if a.blank else "solutions") / name / f"{name}.ipynb")
    nb = nbformat.read(path, as_version=4)
    suite = load_suite(root / "cases" / f"{name}.py")
    points = cell_points(release)
    missing = sorted(set(points) - set(suite.grade_ids()))
    seed = a.seed if a.seed is not None else secrets.randbits(63)
    results = run_suite(suite, nb, points, seed)
    for r in results:
        mark = "pass" if r.passed else "FAIL"
        print(f"{mark} {r.grade_id:28s} {r.case}[{r.draw}] {r.points:.3g}/{r.max_points:.3g}  {r.call}  {r.message}")
    got = totals(results)
    print(f"seed {seed}")
    for gid, pts in points.items():
        print(f"  {gid:30s} {got.get(gid, 0.0):g} / {pts:g}")
    total, full = sum(got.values()), sum(points.values())
    print(f"total {total:g} / {full:g}" + (f"; test cells without cases: {missing}" if missing else ""))
    if a.notebook:
        return 0
    expected = 0.0 if a.blank else full
    return 0 if abs(total - expected) < 1e-6 and not missing else 1


if __name__ == "__main__":
    sys.exit(main())
