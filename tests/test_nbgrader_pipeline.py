"""Every assignment: the committed release is what `course release` makes of solutions/, it leaks no answer and
no hidden case, and through the grader the solution earns every autograded point and the blank release none.

The releases are generated once, in-process, in a temporary course; the 2 x 10 gradings run two at a time
in sandboxed kernels (execute.grade_submission, the engine under `course grade`).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests import hostile

from course_utils.grader import execute  # noqa: E402
from course_utils.grader.cases import load_suite  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir()) if (ROOT / "solutions").is_dir() else []
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
LIMITS = execute.Limits(timeout=300, memory=5 << 30)


def has_cases(name: str) -> bool:
    return (ROOT / "cases" / f"{name}.py").is_file()


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """A temporary course with every assignment released from solutions/ by nbgrader (in this process)."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    root = tmp_path_factory.mktemp("release")
    shutil.copy(ROOT / "nbgrader_config.py", root)
    shutil.copytree(ROOT / "solutions", root / "solutions")
    (root / "grading").mkdir()
    path = os.environ["PATH"]
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + path       # nbgrader runs alembic
    try:
        config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
        api = NbGraderAPI(config=config)
        failed = {n: r.get("log", "")[-2000:] for n in ASSIGNMENTS if not (r := api.generate_assignment(n, force=True))["success"]}
    finally:
        os.environ["PATH"] = path
    assert not failed, failed
    return root


@pytest.fixture(scope="module")
def graded(generated: Path) -> dict[tuple[str, str], execute.Outcome]:
    """(assignment, 'solution' | 'blank') -> the grader's outcome, for every assignment with hidden cases."""
    jobs = []
    for name in ASSIGNMENTS:
        if not has_cases(name):
            continue
        a = hostile.Assignment(ROOT, name)
        suite = load_suite(ROOT / "cases" / f"{name}.py")
        execute.check_suite(suite, a.release)
        jobs += [(name, kind, nb, a, suite) for kind, nb in (("solution", a.correct()), ("blank", a.blank()))]

    def run(job):
        name, kind, nb, a, suite = job
        return (name, kind), execute.grade_submission(hostile.dump(nb), a.release, suite, LIMITS,
                                                      ROOT / "assignments" / name)
    with ThreadPoolExecutor(2) as pool:
        return dict(pool.map(run, jobs))


def test_there_are_eleven_assignments() -> None:
    assert len(ASSIGNMENTS) == 11, ASSIGNMENTS


@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_committed_release_is_what_course_release_generates(generated: Path, name: str) -> None:
    committed, made = ROOT / "assignments" / name, generated / "assignments" / name
    assert committed.is_dir(), f"assignments/{name} missing: run `course release {name}` and commit it"
    files = lambda d: sorted(str(p.relative_to(d)) for p in d.rglob("*")  # noqa: E731
                             if p.is_file() and ".ipynb_checkpoints" not in p.parts)
    assert files(committed) == files(made)
    for rel in files(made):
        a, b = committed / rel, made / rel
        if rel.endswith(".ipynb"):
            assert json.loads(a.read_text()) == json.loads(b.read_text()), \
                f"assignments/{name}/{rel} differs from what nbgrader generates: run `course release {name}`"
        else:
            assert a.read_bytes() == b.read_bytes()


def _answer_lines(source: dict) -> set[str]:
    """Lines that stand only inside solution / hidden-test blocks of the source notebook."""
    inside, outside = set(), set()
    for cell in source["cells"]:
        depth = 0
        for line in "".join(cell["source"]).splitlines():
            s = line.strip()
            if any(m in s for m in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS")):
                depth += 1
            elif any(m in s for m in ("END SOLUTION", "END HIDDEN TESTS")):
                depth -= 1
            elif len(s) > 25 and not s.startswith(("import ", "from ")):
                (inside if depth > 0 else outside).add(s)
    return inside - outside


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_release_leaks_no_answer_and_no_hidden_case(name: str) -> None:
    for path in sorted((ROOT / "assignments" / name).rglob("*.ipynb")):
        text = path.read_text()
        assert not [m for m in MARKERS if m in text], f"{path} holds nbgrader markers"
        source = json.loads((ROOT / "solutions" / name / path.name).read_text())
        released = {line.strip() for cell in json.loads(text)["cells"] for line in "".join(cell["source"]).splitlines()}
        leaked = sorted(_answer_lines(source) & released)
        if has_cases(name):
            leaked += [h for h in hostile.hidden_lines(ROOT / "cases" / f"{name}.py", path) if h in text]
        assert not leaked, f"{path} holds answer or hidden-case lines: {leaked[:3]}"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_autograded_and_manual_points(name: str) -> None:
    """Every assignment has autograded test cells and a written answer graded by hand."""
    a = hostile.Assignment(ROOT, name)
    assert a.autograded_points > 0 and a.tests
    assert sum(a.points.values()) > a.autograded_points, f"{name} has no manually graded answer"


@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_solution_full_marks_and_blank_zero(graded, name: str) -> None:
    if not has_cases(name):
        pytest.skip(f"cases/{name}.py does not exist yet (its hidden tests are still being moved out of solutions/)")
    a = hostile.Assignment(ROOT, name)
    solution, blank = graded[(name, "solution")], graded[(name, "blank")]
    failed = [(r.grade_id, r.case, r.draw, r.message[:200]) for r in solution.cases if not r.passed]
    assert not failed, f"{name}: the solution fails hidden cases (seed {solution.seed}): {failed[:5]}"
    assert sum(r.points for r in solution.cases) == pytest.approx(a.autograded_points)
    assert not [c for c in solution.cells if c["status"] != "ok"], solution.cells
    assert sum(r.points for r in blank.cases) == 0, [(r.case, r.message) for r in blank.cases if r.passed]
