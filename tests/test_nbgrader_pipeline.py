"""The nbgrader pipeline, in a temp copy of the course, for every assignment in solutions/.

For each assignment: generate_assignment reproduces the committed release exactly; the release leaks no
solution code and no hidden test; autograding the source notebook gives full autograded marks; autograding
the blank release gives zero; each assignment has at least one manually graded answer.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir()) if (ROOT / "solutions").is_dir() else []
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def nbgrader(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=1800)
    assert proc.returncode == 0 and "ERROR" not in proc.stderr, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


@pytest.fixture(scope="session")
def course_for(tmp_path_factory):
    """Per assignment, a temp course: generate it, submit source ('solution') and release ('blank'), autograde."""
    done: dict[str, Path] = {}

    def prepare(name: str) -> Path:
        if name not in done:
            tmp = tmp_path_factory.mktemp(name)
            shutil.copy(ROOT / "nbgrader_config.py", tmp)
            shutil.copytree(ROOT / "solutions" / name, tmp / "solutions" / name)
            (tmp / "grading").mkdir()
            nbgrader("generate_assignment", name, "--force", cwd=tmp)
            for student, folder in (("solution", "solutions"), ("blank", "assignments")):
                shutil.copytree(tmp / folder / name, tmp / "submitted" / student / name)
            nbgrader("autograde", name, "--force", cwd=tmp)
            done[name] = tmp
        return done[name]
    return prepare


def _notebooks(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def _solution_lines(source: dict) -> set[str]:
    """Lines that only appear inside solution / hidden-test blocks of the source notebook."""
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


def test_there_are_assignments():
    assert ASSIGNMENTS, "solutions/ holds no assignment"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_committed_release_is_what_nbgrader_generates(course_for, name):
    course = course_for(name)
    committed, generated = ROOT / "assignments" / name, course / "assignments" / name
    assert committed.is_dir(), f"assignments/{name} missing: run `course release {name}` and commit it"
    files = lambda d: sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts)  # noqa: E731
    assert files(committed) == files(generated)
    for rel in files(generated):
        a, b = committed / rel, generated / rel
        if rel.endswith(".ipynb"):
            assert json.loads(a.read_text()) == json.loads(b.read_text()), \
                f"assignments/{name}/{rel} differs from generate_assignment's output: run `course release {name}`"
        else:
            assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_release_leaks_no_solution_or_hidden_test(name):
    for path in _notebooks(ROOT / "assignments" / name):
        text = path.read_text()
        for marker in MARKERS:
            assert marker not in text, f"{path} contains {marker!r}"
        source = json.loads((ROOT / "solutions" / name / path.relative_to(ROOT / "assignments" / name)).read_text())
        released = {line.strip() for cell in json.loads(text)["cells"] for line in "".join(cell["source"]).splitlines()}
        leaked = sorted(_solution_lines(source) & released)
        assert not leaked, f"{path} contains solution / hidden-test lines: {leaked[:3]}"


def _scores(course: Path, name: str, student: str) -> list[tuple[str, float, float, float]]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'grading' / 'gradebook.db'}") as gb:
        sub = gb.find_submission(name, student)
        return [(nb.name, nb.code_score, nb.notebook.max_code_score, nb.notebook.max_written_score)
                for nb in sub.notebooks]


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_solution_scores_full_autograded_marks(course_for, name):
    course = course_for(name)
    for nb, score, max_code, max_written in _scores(course, name, "solution"):
        assert max_code > 0, f"{name}/{nb} has no autograded points"
        assert score == pytest.approx(max_code), f"{name}/{nb}: the solution scores {score} of {max_code}"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_blank_release_scores_zero(course_for, name):
    course = course_for(name)
    for nb, score, _, _ in _scores(course, name, "blank"):
        assert score == 0, f"{name}/{nb}: the blank release scores {score}"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_has_a_manually_graded_answer(course_for, name):
    course = course_for(name)
    assert any(max_written > 0 for *_, max_written in _scores(course, name, "solution"))
