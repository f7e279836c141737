"""Gradebook merge: auto scores land per grade cell, manual grading survives a regrade, a failure changes nothing."""
from __future__ import annotations

import os
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from course_utils.grader import gradebook

A, NB = "a01_demo", "a01_demo"


CONFIG = "c = get_config()\nc.CourseDirectory.course_id = 'demo'\n"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A gradebook holding one released notebook: two test cells and one written answer (built once)."""
    from nbgrader.api import Gradebook

    folder = tmp_path_factory.mktemp("gradebook")
    (folder / "grading").mkdir()
    path = os.environ["PATH"]
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + path    # nbgrader runs alembic
    try:
        with Gradebook(gradebook.db_url(folder), "demo") as gb:
            gb.add_assignment(A)
            gb.add_notebook(NB, A)
            gb.add_grade_cell("test_a", NB, A, max_score=2, cell_type="code")
            gb.add_grade_cell("test_b", NB, A, max_score=3, cell_type="code")
            gb.add_grade_cell("answer", NB, A, max_score=4, cell_type="markdown")
            gb.add_solution_cell("answer", NB, A)
            gb.add_solution_cell("impl", NB, A)
    finally:
        os.environ["PATH"] = path
    return folder / gradebook.GRADEBOOK


@pytest.fixture
def root(tmp_path: Path, template: Path) -> Path:
    """A course folder with a fresh copy of the template gradebook."""
    (tmp_path / "nbgrader_config.py").write_text(CONFIG)
    (tmp_path / "grading").mkdir()
    shutil.copy(template, tmp_path / gradebook.GRADEBOOK)
    return tmp_path


def rows(root: Path, student: str) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(gradebook.db_url(root), "demo") as gb:
        sub = gb.find_submission(A, student)
        nb = sub.notebooks[0]
        return {"grades": {g.name: (g.auto_score, g.manual_score, g.needs_manual_grade) for g in nb.grades},
                "comments": {c.name: (c.auto_comment, c.manual_comment) for c in nb.comments},
                "timestamp": sub.timestamp}


def test_record_creates_the_submission_with_auto_scores_and_comments(root: Path) -> None:
    when = datetime(2026, 11, 3, 12, 30, tzinfo=timezone.utc)
    gradebook.record(root, A, "Ümit Öz", NB, {"test_a": 2.0, "test_b": 1.5, "answer": None},
                     {"impl": None, "answer": None}, when)
    got = rows(root, "Ümit Öz")
    assert got["grades"] == {"test_a": (2.0, None, False), "test_b": (1.5, None, False), "answer": (None, None, True)}
    assert got["timestamp"] == when.replace(tzinfo=None)
    assert gradebook.auto_scores(root, A, "Ümit Öz")["test_b"] == (1.5, None)
    gradebook.record(root, A, "blank", NB, {"test_a": 0.0}, {"impl": "No response.", "answer": "No response."})
    got = rows(root, "blank")
    assert got["grades"]["test_b"] == (0.0, None, False)          # a cell not named gets 0
    assert got["comments"]["impl"] == ("No response.", None)


def test_regrade_keeps_manual_scores_and_comments(root: Path) -> None:
    from nbgrader.api import Gradebook

    gradebook.record(root, A, "alice", NB, {"test_a": 2.0, "test_b": 0.0, "answer": None}, {})
    with Gradebook(gradebook.db_url(root), "demo") as gb:          # a TA grades in the formgrader
        gb.find_grade("answer", NB, A, "alice").manual_score = 3.5
        gb.find_grade("test_b", NB, A, "alice").manual_score = 1.0   # overrides the autograder
        gb.find_comment("answer", NB, A, "alice").manual_comment = "good derivation"
        gb.db.commit()
    gradebook.record(root, A, "alice", NB, {"test_a": 1.0, "test_b": 3.0, "answer": None}, {"answer": None})
    got = rows(root, "alice")
    assert got["grades"]["answer"] == (None, 3.5, True)
    assert got["grades"]["test_b"] == (3.0, 1.0, True)            # new auto score, the TA's override kept
    assert got["grades"]["test_a"] == (1.0, None, False)
    assert got["comments"]["answer"] == (None, "good derivation")
    with Gradebook(gradebook.db_url(root), "demo") as gb:
        assert len(gb.find_assignment(A).submissions) == 1


def test_a_failed_record_changes_nothing(root: Path) -> None:
    gradebook.record(root, A, "bob", NB, {"test_a": 2.0}, {})
    with pytest.raises(LookupError, match="no notebook"):
        gradebook.record(root, A, "bob", "other_notebook", {"test_a": 0.0}, {})
    assert rows(root, "bob")["grades"]["test_a"] == (2.0, None, False)
    with pytest.raises(LookupError):
        gradebook.record(root, A, "carol", "other_notebook", {"test_a": 0.0}, {})
    assert gradebook.auto_scores(root, A, "carol") == {}


def test_require_assignment_says_to_release_first(root: Path, tmp_path_factory) -> None:
    gradebook.require_assignment(root, A, NB)
    with pytest.raises(LookupError, match="course release a02_other"):
        gradebook.require_assignment(root, "a02_other", "a02_other")
    with pytest.raises(LookupError, match="no gradebook"):
        gradebook.require_assignment(tmp_path_factory.mktemp("empty"), A, NB)
