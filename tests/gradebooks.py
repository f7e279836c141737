"""Gradebooks for the fast grader tests, built with nbgrader's own API (no kernels, no `course release`)."""
from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path

from nbgrader.api import Gradebook

GRADEBOOK = Path("grading") / "gradebook.db"


def open_gradebook(root: Path) -> Gradebook:
    """The course's gradebook, as nbgrader and the formgrader open it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Gradebook("sqlite:///" + str(root / GRADEBOOK))


def new_gradebook(path: Path) -> Path:
    """An empty gradebook file (nbgrader builds its schema with alembic, seconds per file: make one, copy it)."""
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Gradebook("sqlite:///" + str(path)).close()
    return path


def make_course(root: Path, template: Path, assignments: list[str]) -> Path:
    """A course folder `course_root()` accepts: config, lectures/, release folders, a copy of an empty gradebook."""
    (root / "nbgrader_config.py").write_text("c = get_config()\n")
    (root / "lectures").mkdir()
    for name in assignments:
        (root / "assignments" / name).mkdir(parents=True)
    (root / GRADEBOOK).parent.mkdir()
    shutil.copy(template, root / GRADEBOOK)
    return root


def release(root: Path, name: str, cells: list[tuple[str, float, bool]], answers: tuple[str, ...] = ()) -> None:
    """What `course release` leaves: the assignment, its notebook, grade cells (name, points, by hand), answers."""
    with open_gradebook(root) as gb:
        gb.add_assignment(name)
        gb.add_notebook(name, name)
        for cell, points, manual in cells:
            gb.add_grade_cell(cell, name, name, max_score=points, cell_type="markdown" if manual else "code")
        for cell in {*answers, *(c for c, _, manual in cells if manual)}:
            gb.add_solution_cell(cell, name, name)


def autograde(root: Path, name: str, student: str, scores: dict[str, float],
              comments: dict[str, str] | None = None) -> None:
    """What `course grade` leaves in the gradebook: auto scores (other cells wait for a TA), auto comments."""
    with open_gradebook(root) as gb:
        gb.update_or_create_student(student)
        sub = gb.add_submission(name, student)
        for grade in sub.notebooks[0].grades:
            if grade.name in scores:
                grade.auto_score, grade.needs_manual_grade = scores[grade.name], False
        for comment in sub.notebooks[0].comments:
            comment.auto_comment = (comments or {}).get(comment.name)
        gb.db.commit()


def manual_grade(root: Path, name: str, student: str, cell: str, score: float, comment: str | None = None) -> None:
    """A score (and comment) typed into the formgrader."""
    with open_gradebook(root) as gb:
        grade = gb.find_grade(cell, name, name, student)
        grade.manual_score, grade.needs_manual_grade = score, False
        if comment is not None:
            gb.find_comment(cell, name, name, student).manual_comment = comment
        gb.db.commit()
