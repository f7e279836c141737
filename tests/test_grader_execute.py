"""What runs for a submission (no kernel, seconds): release cells by grade_id, the student's cells as written."""
from __future__ import annotations

import copy

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_utils.grader import execute
from course_utils.grader.cases import Call, Suite


def cell(kind: str, source: str, gid: str, **meta) -> nbformat.NotebookNode:
    c = new_code_cell(source) if kind == "code" else new_markdown_cell(source)
    c.metadata["nbgrader"] = {"grade_id": gid, "schema_version": 3, "grade": False, "solution": False,
                              "locked": False, "task": False, **meta}
    return c


@pytest.fixture
def release() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.cells = [cell("md", "# Intro", "intro", locked=True),
                cell("code", "import math", "setup", locked=True),
                cell("code", "def f(x):\n    raise NotImplementedError()", "impl", solution=True),
                cell("code", "assert f(1) == 2", "test_f", grade=True, locked=True, points=3),
                cell("md", "YOUR ANSWER HERE", "answer", grade=True, solution=True, points=2)]
    from nbgrader.utils import compute_checksum

    for c in nb.cells:
        c.metadata.nbgrader["checksum"] = compute_checksum(c)
    return nb


def answered(release) -> nbformat.NotebookNode:
    nb = copy.deepcopy(release)
    nb.cells[2].source = "def f(x):\n    return 2 * x"
    nb.cells[4].source = "Because $2x$."
    return nb


def sources(nb) -> list[str]:
    return [c.source for c in nb.cells]


def test_answers_run_as_written_and_locked_cells_as_released(release) -> None:
    sub = answered(release)
    sub.cells[3].source = "assert True"                                   # an edited test
    sub.cells[3].metadata.nbgrader["points"] = 100
    sub.cells.insert(3, new_code_cell("helper = 1"))                       # the student's own cell
    nb, notes = execute.assemble(release, sub)
    assert sources(nb) == ["# Intro", "import math", "def f(x):\n    return 2 * x", "helper = 1",
                           "assert f(1) == 2", "Because $2x$."]
    assert nb.cells[4].metadata.nbgrader["points"] == 3
    assert nb.cells[3].metadata == {}                                      # no nbgrader metadata on added cells
    assert notes == ["locked cells edited (restored): test_f"]


def test_deleted_cells_and_copied_metadata(release) -> None:
    sub = answered(release)
    del sub.cells[3]                                                       # the test cell
    del sub.cells[1]                                                       # the set-up cell
    fake = new_code_cell("x = 1")
    fake.metadata["nbgrader"] = {"grade_id": "impl", "grade": True, "points": 50, "locked": True}
    sub.cells.append(fake)                                                 # a second cell claiming impl
    nb, notes = execute.assemble(release, sub)
    assert sources(nb) == ["# Intro", "import math", "def f(x):\n    return 2 * x", "assert f(1) == 2",
                           "Because $2x$.", "x = 1"]
    assert "nbgrader" not in nb.cells[-1].metadata
    assert notes == ["locked cells deleted (put back): setup, test_f"]
    del sub.cells[1]                                                       # the answer itself: the copy takes its place
    nb, notes = execute.assemble(release, sub)
    assert nb.cells[2].source == "x = 1" and nb.cells[2].metadata.nbgrader == release.cells[2].metadata.nbgrader
    del sub.cells[-1]
    nb, notes = execute.assemble(release, sub)
    assert nb.cells[2].source == "" and "answer cells deleted: impl" in notes


def test_cells_copied_without_metadata_still_run(release) -> None:
    sub = new_notebook()
    sub.cells = [new_code_cell("def f(x):\n    return 2 * x")]
    nb, notes = execute.assemble(release, sub)
    assert sources(nb)[0] == "def f(x):\n    return 2 * x" and nb.cells[3].source == ""   # the stub is not run
    assert notes and "none of the assignment's cells" in notes[0]


@pytest.mark.parametrize("data, why", [(b"", "empty file"), (b"   \n", "empty file"), (b"{", "corrupt notebook"),
                                       (b"print('hello')\n", "corrupt notebook"), (b'{"cells": 3}', "corrupt"),
                                       (b"\xff\xfe", "corrupt notebook")])
def test_unreadable_files_are_named(data, why) -> None:
    nb, problem = execute.read_submission(data)
    assert nb is None and why in problem


def test_zero_outcome_and_grades_of_written_answers(release) -> None:
    suite = Suite("demo")
    suite.case("test_f", draws=2)(lambda rng: Call("f", 1, expect=2))
    suite.case("test_f", weight=2.0, name="big")(lambda rng: Call("f", 2, expect=4))
    execute.check_suite(suite, release)
    out = execute._zero(release, suite, execute.cell_points(release), "empty file")
    assert out.status == "zero" and out.notes == ["empty file"]
    assert [r.max_points for r in out.cases] == [0.75, 0.75, 1.5] and not any(r.passed for r in out.cases)
    assert out.grades == {"test_f": 0.0, "answer": 0.0}
    grades, comments = execute._grades(answered(release), release, {"test_f": 3.0}, execute.cell_points(release))
    assert grades == {"test_f": 3.0, "answer": None} and comments == {"impl": None, "answer": None}
    grades, comments = execute._grades(copy.deepcopy(release), release, {}, execute.cell_points(release))
    assert grades == {"test_f": 0.0, "answer": 0} and comments == {"impl": "No response.", "answer": "No response."}


def test_a_suite_that_does_not_match_the_release_is_refused(release) -> None:
    suite = Suite("demo")
    suite.case("test_other")(lambda rng: Call("f", 1, expect=2))
    with pytest.raises(ValueError, match=r"test cells without cases: \['test_f'\].*cells the release lacks"):
        execute.check_suite(suite, release)
