"""`course export`: each released assignment's grades CSV and the final grades, at any stage of a term.

Everything is read from the gradebook first (only assignments it holds, so unreleased ones are skipped and
a released one without submissions gives a CSV with a header only), then every file is written atomically,
so `grading/final_grades.csv` always matches the gradebook of the last `course export` / `course grade`:
manual grades typed into the formgrader appear in it at the next export.
"""
from __future__ import annotations

import argparse
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from ..layout import atomic_write
from . import scheme as sc
from .gradebook import GRADEBOOK, open_gradebook
from .record import read_record

FINAL_CSV = Path("grading") / "final_grades.csv"


def grades_csv(root: Path, assignment: str) -> Path:
    """Where one assignment's per-question grades go."""
    return root / "grading" / f"{assignment}_grades.csv"


@dataclass
class AssignmentScores:
    """One assignment as the gradebook holds it."""

    name: str
    questions: dict[str, float] = field(default_factory=dict)       # grade cell -> max points, in notebook order
    manual: set[str] = field(default_factory=set)                    # cells graded by hand
    table: dict[str, dict[str, float | None]] = field(default_factory=dict)  # student -> cell -> points (None: pending)

    @property
    def max_points(self) -> float:
        """All points of the assignment."""
        return sum(self.questions.values())


def read_gradebook(root: Path) -> dict[str, AssignmentScores]:
    """Every assignment in the gradebook with its questions and submissions (empty when there is no gradebook)."""
    if not (root / GRADEBOOK).is_file():
        return {}
    out = {}
    with open_gradebook(root) as gb:
        for a in gb.assignments:
            s = AssignmentScores(a.name)
            for nb in a.notebooks:
                solutions = {c.name for c in nb.solution_cells}
                for cell in [*nb.grade_cells, *nb.task_cells]:
                    s.questions[cell.name] = float(cell.max_score)
                    if cell.name in solutions or cell in nb.task_cells:
                        s.manual.add(cell.name)
            for sub in a.submissions:
                s.table[sub.student_id] = {g.name: None if g.needs_manual_grade and g.manual_score is None
                                           else float(g.score) for nb in sub.notebooks for g in nb.grades}
            out[a.name] = s
    return out


def record_status(root: Path, assignment: str, student: str) -> tuple[str, str]:
    """(status, reasons) from the student's results record; ('', '') when it was not graded by `course grade`."""
    rec = read_record(root, assignment, student) or {}
    return str(rec.get("status", "")), "; ".join(map(str, rec.get("notes", [])))


def assignment_rows(root: Path, s: AssignmentScores) -> list[dict]:
    """One row per submission: points per question, total, max, status, reason."""
    rows = []
    for student in sorted(s.table):
        pts = s.table[student]
        status, reason = record_status(root, s.name, student)
        if any(pts.get(q) is None for q in s.questions):
            status = (status + " " if status else "") + "(manual grading pending)"
        rows.append({"student": student, **{q: pts.get(q) for q in s.questions},
                     "total": round(sum(v for v in pts.values() if v is not None), 3),
                     "max": s.max_points, "status": status, "reason": reason})
    return rows


def final_inputs(books: dict[str, AssignmentScores]) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """({student: {assignment: points}}, {assignment: max}) over the assignments with at least one submission."""
    scores: dict[str, dict[str, float]] = {}
    maxima = {}
    for name, s in sorted(books.items()):
        if not s.table:
            continue
        maxima[name] = s.max_points
        for student, pts in s.table.items():
            scores.setdefault(student, {})[name] = sum(v or 0.0 for v in pts.values())
    return scores, maxima


def csv_text(header: list[str], rows: list[dict]) -> str:
    """CSV of dict rows (None as an empty field)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if v is None else v for k, v in r.items()})
    return buf.getvalue()


def parse_leaderboards(specs: list[str], scheme: dict) -> dict[str, dict[str, sc.Entry]]:
    """--leaderboard PATH (the scheme's only board) or NAME=PATH, repeatable -> {board: entries}."""
    boards = list(scheme["leaderboards"])
    out = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or Path(spec).is_file():
            if len(boards) != 1:
                raise ValueError(f"--leaderboard {spec}: the scheme has the leaderboards {boards}; "
                                 f"write --leaderboard NAME=FILE")
            name, path = boards[0], spec
        if name not in scheme["leaderboards"]:
            raise ValueError(f"--leaderboard {spec}: no leaderboard {name!r} in the scheme (it has {boards})")
        if not Path(path).is_file():
            raise ValueError(f"--leaderboard {spec}: no such file {path}")
        out[name] = sc.read_leaderboard(Path(path))
    return out


def export(root: Path, assignment: str | None = None, scheme_path: Path | None = None,
           leaderboard_specs: list[str] | None = None, out: Path | None = None) -> int:
    """Write the grades CSV of one assignment (or of all released ones) and the final grades; print both."""
    from ..layout import RELEASE, print_table

    try:
        scheme = sc.load_scheme(scheme_path)
        boards = parse_leaderboards(leaderboard_specs or [], scheme)
    except (ValueError, OSError) as e:
        print(f"course export: {e}")
        return 2
    books = read_gradebook(root)
    course = sorted(p.name for p in (root / RELEASE).iterdir() if p.is_dir()) if (root / RELEASE).is_dir() else []
    if assignment is not None and assignment not in books:
        print(f"course export: {assignment} is not released yet (not in {GRADEBOOK}); run `course release "
              f"{assignment}` first. Released: {', '.join(sorted(books)) or 'none'}")
        return 2
    if not books:
        print(f"course export: nothing released yet ({GRADEBOOK} holds no assignment); "
              "run `course release NAME` first")
        return 2
    scores, maxima = final_inputs(books)
    rows, ref = sc.final_grades(scores, maxima, boards, scheme)
    files = {}
    for name in [assignment] if assignment else sorted(books):
        s = books[name]
        arows = assignment_rows(root, s)
        files[grades_csv(root, name)] = csv_text(["student", *s.questions, "total", "max", "status", "reason"], arows)
        fmt = lambda v: "-" if v is None else f"{v:g}"  # noqa: E731
        print(f"\n{name}: {len(arows)} submissions" + ("" if arows else " (none yet: not in the final grades)"))
        if arows:
            print_table([(r["student"], *[fmt(r[q]) for q in s.questions], f"{r['total']:g}", r["status"],
                           r["reason"][:70]) for r in arows],
                         ("student", *[f"{q}{'(m)' if q in s.manual else ''}/{m:g}" for q, m in s.questions.items()],
                          f"total/{s.max_points:g}", "status", "reason"))
    final = out or root / FINAL_CSV
    header = ["student", *maxima, *boards, "points_sum", "grade"]
    files[final] = csv_text(header, [{"student": r.student, **r.homework, **r.leaderboards,
                                      "points_sum": r.total, "grade": r.grade} for r in rows])
    for path, text in files.items():
        atomic_write(path, text)
        print(f"wrote {path}")
    waiting = [a for a in course if a not in books]
    print(f"\nfinal grades over {', '.join(maxima) or 'no graded assignment yet'}"
          + (f" + leaderboards {', '.join(boards)}" if boards else "")
          + (f"; not released yet: {', '.join(waiting)}" if waiting else ""))
    print(sc.histogram(rows, ref, scheme["grade_thresholds"]))
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add `course export` to the `course` command."""
    p = subparsers.add_parser("export", help="grades CSV per released assignment and final grades 1-5 with a "
                              "histogram (works at any stage of the term)")
    p.add_argument("assignment", nargs="?", help="write only this assignment's grades CSV (default: every "
                   "released one); the final grades always cover all")
    p.add_argument("--scheme", type=Path, help="JSON overriding parts of the grade scheme (see README)")
    p.add_argument("--leaderboard", action="append", default=[], metavar="[NAME=]CSV",
                   help="leaderboard CSV (columns student, rank, above_baseline); NAME= picks one of the "
                   "scheme's leaderboards when it has several; repeatable")
    p.add_argument("--out", type=Path, help=f"final grades CSV (default {FINAL_CSV})")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """`course export` from parsed arguments."""
    from ..layout import course_root

    return export(course_root(), args.assignment, args.scheme, args.leaderboard, args.out)
