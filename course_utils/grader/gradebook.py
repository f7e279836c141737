"""Points per case land in nbgrader's gradebook, so the formgrader, manual grading, feedback and export work.

`record` writes one student's submission in ONE sqlite transaction: the student and the submission are
created when missing (nbgrader's own rows: a Grade per grade cell, a Comment per answer cell), each grade
cell's `auto_score` and each answer's auto comment are set, and manual scores, manual comments and extra
credit are never touched, so a regrade keeps what a TA typed in the formgrader. An interrupted run leaves
either the old rows or the new ones.
"""
from __future__ import annotations

import warnings
from datetime import datetime
from pathlib import Path

GRADEBOOK = Path("grading") / "gradebook.db"


def db_url(root: Path) -> str:
    """The gradebook's SQLAlchemy URL (the one nbgrader_config.py names)."""
    return "sqlite:///" + str(Path(root) / GRADEBOOK)


def course_id(root: Path) -> str:
    """CourseDirectory.course_id of the course's nbgrader_config.py (nbgrader's default when unset)."""
    from traitlets.config.loader import PyFileConfigLoader

    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    return str(cfg.CourseDirectory.get("course_id", "default_course"))


def open_gradebook(root: Path):
    """nbgrader's Gradebook of the course (a context manager)."""
    from nbgrader.api import Gradebook

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Gradebook(db_url(root), course_id(root))


def require_assignment(root: Path, assignment: str, notebook: str) -> None:
    """Raise a clear error when the release is not in the gradebook (nothing can be recorded then)."""
    from nbgrader.api import MissingEntry

    if not (Path(root) / GRADEBOOK).is_file():
        raise LookupError(f"no gradebook at {Path(root) / GRADEBOOK}: run `course release {assignment}` first")
    with open_gradebook(root) as gb:
        try:
            gb.find_notebook(notebook, assignment)
        except MissingEntry:
            raise LookupError(f"{assignment}/{notebook} is not in the gradebook: run `course release {assignment}` "
                              "first") from None


def record(root: Path, assignment: str, student: str, notebook: str, grades: dict[str, float | None],
           comments: dict[str, str | None], timestamp: datetime | None = None) -> None:
    """Set one student's auto scores and auto comments in one transaction; manual grading stays as it was.

    grades      grade_id -> auto_score for every grade cell (None: to be graded by hand); a grade cell not
                named here gets 0
    comments    grade_id -> auto comment ("No response." for an untouched answer, else None)
    """
    from nbgrader.api import Comment, Grade, MissingEntry, Student, SubmittedAssignment, SubmittedNotebook

    with open_gradebook(root) as gb:
        db = gb.db
        try:
            target = gb.find_assignment(assignment)
            person = db.get(Student, student)
            if person is None:
                person = Student(id=student)
                db.add(person)
            try:
                sub = gb.find_submission(assignment, student)
            except MissingEntry:
                with db.no_autoflush:                 # nbgrader's add_submission, without its commit
                    sub = SubmittedAssignment(assignment=target, student=person)
                    for nb in target.notebooks:
                        mirror = SubmittedNotebook(notebook=nb, assignment=sub)
                        for cell in nb.grade_cells:
                            Grade(cell=cell, notebook=mirror)
                        for cell in nb.solution_cells:
                            Comment(cell=cell, notebook=mirror)
                        for cell in nb.task_cells:
                            Comment(cell=cell, notebook=mirror)
                            Grade(cell=cell, notebook=mirror)
                    db.add(sub)
            if timestamp is not None:
                sub.timestamp = timestamp.replace(tzinfo=None) if timestamp.tzinfo else timestamp
            mine = [n for n in sub.notebooks if n.notebook.name == notebook]
            if not mine:
                raise LookupError(f"{assignment} has no notebook {notebook!r} in the gradebook")
            for grade in mine[0].grades:
                grade.auto_score = grades.get(grade.cell.name, 0.0)
                grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
            for comment in mine[0].comments:
                comment.auto_comment = comments.get(comment.cell.name)
            db.commit()
        except BaseException:
            db.rollback()
            raise


def auto_scores(root: Path, assignment: str, student: str) -> dict[str, tuple[float | None, float | None]]:
    """grade_id -> (auto_score, manual_score) of one student's submission ({} when there is none)."""
    from nbgrader.api import MissingEntry

    with open_gradebook(root) as gb:
        try:
            sub = gb.find_submission(assignment, student)
        except MissingEntry:
            return {}
        return {g.cell.name: (g.auto_score, g.manual_score) for nb in sub.notebooks for g in nb.grades}
