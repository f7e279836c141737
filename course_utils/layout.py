"""The course layout: the one place that knows where everything is. A leaf: it imports nothing of the course.

`course_root()` finds the course folder; `Layout(root)` answers every path the course uses. The folders that
nbgrader knows (solutions, releases, submissions, autograded notebooks, feedback, the gradebook) are read from
the course's `nbgrader_config.py`, so a course that renames one there is followed everywhere; the rest are
fixed here. Also the plumbing every command shares: `print_table` and `atomic_write`.

    lay = Layout(course_root())
    lay.submission("ann", "a01_autoencoders", "a01_autoencoders")   # submitted/ann/a01_autoencoders/....ipynb
"""
from __future__ import annotations

import os
import re
import tempfile
from functools import cached_property
from pathlib import Path

LECTURES, SOURCE, RELEASE = "lectures", "solutions", "assignments"   # nbgrader's defaults are overridden below
CONFIG = "nbgrader_config.py"
_NBGRADER_KEYS = {"source_directory": SOURCE, "release_directory": RELEASE, "submitted_directory": "submitted",
                  "autograded_directory": "autograded", "feedback_directory": "feedback"}


def course_root() -> Path:
    """The course folder: $COURSE_ROOT, else the checkout this package lives in, else a parent of the cwd.

    A course folder holds lectures/ and nbgrader_config.py (the full course) or assignments/ (the student edition)."""
    candidates = [Path(os.environ["COURSE_ROOT"])] if os.environ.get("COURSE_ROOT") else []
    candidates.append(Path(__file__).resolve().parent.parent)
    candidates += [Path.cwd(), *Path.cwd().parents]
    for path in candidates:
        if (path / LECTURES).is_dir() and ((path / CONFIG).is_file() or (path / RELEASE).is_dir()):
            return path.resolve()
    raise SystemExit("course: cannot find the course folder (a folder with lectures/ and nbgrader_config.py or "
                     "assignments/); run inside the course checkout or set COURSE_ROOT")


class Layout:
    """Every path of one course folder."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    @cached_property
    def _nbgrader(self) -> dict[str, str]:
        """Folder names and the gradebook path as nbgrader_config.py sets them (read as text, never executed)."""
        names = dict(_NBGRADER_KEYS)
        try:
            text = (self.root / CONFIG).read_text(encoding="utf-8")
        except OSError:
            return names
        for key in _NBGRADER_KEYS:
            if m := re.search(rf"^c\.CourseDirectory\.{key}\s*=\s*['\"]([^'\"/]+)['\"]", text, re.M):
                names[key] = m.group(1)
        return names

    # ------------------------------------------------------------ course material
    @property
    def lectures(self) -> Path:
        return self.root / LECTURES

    @property
    def solutions(self) -> Path:
        return self.root / self._nbgrader["source_directory"]

    @property
    def releases(self) -> Path:
        return self.root / self._nbgrader["release_directory"]

    def release(self, assignment: str) -> Path:
        return self.releases / assignment

    @property
    def cases(self) -> Path:
        return self.root / "cases"

    def case_file(self, assignment: str) -> Path:
        return self.cases / f"{assignment}.py"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def build(self) -> Path:
        return self.root / "build"

    # ------------------------------------------------------------ what grading reads and writes
    @property
    def submitted(self) -> Path:
        return self.root / self._nbgrader["submitted_directory"]

    def submission(self, student: str, assignment: str, notebook: str) -> Path:
        return self.submitted / student / assignment / f"{notebook}.ipynb"

    def autograded(self, student: str, assignment: str, notebook: str) -> Path:
        return self.root / self._nbgrader["autograded_directory"] / student / assignment / f"{notebook}.ipynb"

    @property
    def feedback(self) -> Path:
        return self.root / self._nbgrader["feedback_directory"]

    def feedback_page(self, student: str, assignment: str, notebook: str) -> Path:
        return self.feedback / student / assignment / f"{notebook}.html"

    @property
    def grading(self) -> Path:
        return self.root / "grading"

    @property
    def gradebook(self) -> Path:
        return self.grading / "gradebook.db"

    def results(self, assignment: str) -> Path:
        return self.grading / "results" / assignment

    def record(self, assignment: str, student: str) -> Path:
        return self.results(assignment) / f"{student}.json"

    def log(self, assignment: str, student: str) -> Path:
        return self.grading / "logs" / assignment / f"{student}.log"

    def intake_table(self, assignment: str) -> Path:
        return self.grading / f"{assignment}_intake.csv"

    def grades_csv(self, assignment: str) -> Path:
        return self.grading / f"{assignment}_grades.csv"

    @property
    def final_grades(self) -> Path:
        return self.grading / "final_grades.csv"

    @property
    def secret(self) -> Path:
        return self.grading / ".grading-secret"


def select(folder: Path, names: list[str], pattern: str) -> list[Path]:
    """Items of folder matching names (by prefix, e.g. '01' or '01_autoencoders'); all when names is empty."""
    items = sorted(p for p in Path(folder).glob(pattern) if not p.name.startswith("."))
    if not names:
        return items
    chosen = []
    for name in names:
        hits = [p for p in items if p.stem == name or p.name == name or p.name.startswith(name)]
        if not hits:
            raise SystemExit(f"course: no match for {name!r} in {folder}; choose from: "
                             f"{', '.join(p.stem for p in items)}")
        chosen += [h for h in hits if h not in chosen]
    return chosen


def print_table(rows: list[tuple], header: tuple) -> None:
    """Print a GitHub-markdown table (readable in a terminal, pasteable into the README)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    print(line(header))
    print("| " + " | ".join("-" * w for w in widths) + " |")
    for r in rows:
        print(line(r))


def atomic_write(path: Path, data: str | bytes, mode: int = 0o644) -> Path:
    """Write data to path through a temporary file in the same folder, then os.replace (readers see old or new)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
