"""`course grade`, `course feedback`, `course export`: the TA's commands over the grader package.

`course grade A [EXPORT]` takes an LMS export through `intake` (or what is already in submitted/), grades
every student whose submission changed since it was graded (`execute`, one sandboxed kernel per student,
`--jobs` at a time), and for each student, in the main thread: the gradebook rows in one transaction, the
autograded notebook, the results record (written last: it marks the student done, keyed by the
submission's hash), the feedback page. Ctrl-C stops the kernels; students finished so far are kept, the
ones in progress are thrown away whole, and the same command resumes. At the end the grades table, the
assignment's CSV and the final grades (`export`).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import re
import signal
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timezone
from pathlib import Path

import nbformat

from . import execute, export, gradebook, intake, record, report
from .cases import Suite, load_suite

JOBS = 1                          # students graded at once (at most one per two cores)
LIMITS = execute.Limits()         # the defaults of --timeout, --memory, --max-wall


class Course:
    """One assignment of the course as grading needs it: release notebook, hidden cases, folders."""

    def __init__(self, root: Path, assignment: str):
        self.root, self.name = root, assignment
        self.release_dir = root / "assignments" / assignment
        if not self.release_dir.is_dir():
            raise SystemExit(f"course grade: {assignment} is not released; run `course release {assignment}`")
        notebooks = sorted(self.release_dir.glob("*.ipynb"))
        if len(notebooks) != 1:
            raise SystemExit(f"course grade: {self.release_dir} must hold exactly one notebook, found {len(notebooks)}")
        self.notebook = notebooks[0].stem
        self.release = nbformat.read(notebooks[0], as_version=4)
        cases = root / "cases" / f"{assignment}.py"
        if not cases.is_file():
            raise SystemExit(f"course grade: no hidden cases at {cases}; write them (CONTRIBUTING.md, "
                             "'Hidden cases') and check them with `python -m course_utils.grader.check "
                             f"{assignment}`")
        self.suite: Suite = load_suite(cases)
        try:
            execute.check_suite(self.suite, self.release)
            gradebook.require_assignment(root, assignment, self.notebook)
        except (ValueError, LookupError) as e:
            raise SystemExit(f"course grade: {e}") from None

    def submission(self, student: str) -> Path:
        """submitted/<student>/<assignment>/<notebook>.ipynb."""
        return self.root / "submitted" / student / self.name / f"{self.notebook}.ipynb"

    def students(self) -> list[str]:
        """Students with a folder in submitted/ for this assignment (symbolic links are never followed)."""
        base = self.root / "submitted"
        if not base.is_dir():
            return []
        return sorted(d.name for d in base.iterdir() if not d.name.startswith(".") and d.is_dir()
                      and not d.is_symlink() and (d / self.name).is_dir() and not (d / self.name).is_symlink())


def parse_size(text: str) -> int:
    """'6G', '512M', '1000000' -> bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (write e.g. 6G or 512M)")
    return int(float(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " "))


def read_timestamp(folder: Path) -> datetime | None:
    """The LMS timestamp that intake wrote (timestamp.txt), if any."""
    try:
        text = (folder / "timestamp.txt").read_text()[:100].strip().removesuffix(" UTC")
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc)
    except (OSError, ValueError):
        return None


def student_log(root: Path, assignment: str, student: str) -> logging.Logger:
    """grading/logs/<assignment>/<student>.log (the only place the run seed is written)."""
    path = root / "grading" / "logs" / assignment / f"{student}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    log = logging.getLogger(f"course.grade.{assignment}.{len(student)}.{student.encode().hex()}")
    log.handlers.clear()
    log.propagate = False
    log.setLevel(logging.INFO)
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    return log


# ---------------------------------------------------------------- one student

def grade_one(course: Course, student: str, limits: execute.Limits, stop: threading.Event) -> tuple[str, execute.Outcome]:
    """(submission hash, outcome) of one student; runs in a worker thread, writes nothing but the log."""
    path = course.submission(student)
    log = student_log(course.root, course.name, student)
    try:
        readable = path.is_file() and not path.is_symlink()
        data = path.read_bytes() if readable else b""
        outcome = execute.grade_submission(data, course.release, course.suite, limits, course.release_dir, log, stop)
        if not readable:
            outcome.notes = [f"no {path.name} in submitted/{student}/{course.name}/"]
        return execute.sha256(data), outcome
    finally:
        for h in list(log.handlers):
            h.close()
            log.removeHandler(h)


def finish(course: Course, student: str, digest: str, outcome: execute.Outcome) -> None:
    """Gradebook rows (one transaction), autograded notebook, results record (last), feedback page."""
    folder = course.submission(student).parent
    gradebook.record(course.root, course.name, student, course.notebook, outcome.grades, outcome.comments,
                     read_timestamp(folder))
    nb = outcome.notebook if outcome.notebook is not None else course.release
    record.write_autograded(course.root, course.name, student, course.notebook, nb)
    record.write_record(course.root, record.make_record(student, course.name, digest, outcome))
    with contextlib.redirect_stdout(io.StringIO()):
        report.write_feedback(course.root, course.name, [student])


def up_to_date(course: Course, student: str) -> bool:
    """The student's record is for exactly the submitted file (and the gradebook holds the submission)."""
    rec = record.read_record(course.root, course.name, student)
    path = course.submission(student)
    if rec is None or rec.get("status") == "refused" or not path.is_file():
        return False
    return rec.get("submission_sha256") == execute.sha256(path.read_bytes()) and \
        bool(gradebook.auto_scores(course.root, course.name, student))


# ---------------------------------------------------------------- the command

def take_export(course: Course, source: Path, dry_run: bool) -> intake.Intake:
    """Collect the LMS export, print and keep the file -> student table, place the notebooks (unless dry run)."""
    (course.root / "grading").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".collect-", dir=course.root / "grading") as tmp:
        try:
            taken = intake.collect(source, course.name, Path(tmp))
        except intake.IntakeError as e:
            raise SystemExit(f"course grade: {e}") from None
        print(intake.format_mapping(taken))
        table = course.root / "grading" / f"{course.name}_intake.csv"
        intake.write_mapping(taken, table)
        print(f"file -> student table written to {table}")
        if not dry_run:
            intake.place(taken, course.root, course.name)
    return taken


def record_refused(course: Course, taken: intake.Intake) -> list[str]:
    """A 'refused' record for each student whose files were all refused and who has nothing submitted."""
    accepted = {a.student for a in taken.accepted}
    out = []
    for r in taken.refused:
        if r.student and r.student not in accepted and not course.submission(r.student).is_file():
            record.write_record(course.root, record.make_record(r.student, course.name, "", None, "refused",
                                                                [f"{r.source}: {r.reason}"]))
            out.append(r.student)
    return out


def cmd_grade(args: argparse.Namespace) -> int:
    """Collect (optional), grade what changed (resumable), feedback, table, grades CSV, final grades."""
    from ..cli import course_root

    root = course_root()
    course = Course(root, args.assignment)
    taken = take_export(course, Path(args.export).resolve(), args.dry_run) if args.export else None
    students = course.students()
    if args.student:
        unknown = sorted(set(args.student) - set(students))
        if unknown and not args.dry_run:
            raise SystemExit(f"course grade: no submission of {', '.join(unknown)} in submitted/*/{course.name}/")
        students = [s for s in students if s in args.student]
    todo = [s for s in students if args.regrade or not up_to_date(course, s)]
    print(f"{course.name}: {len(students)} submissions, {len(todo)} to grade, {len(students) - len(todo)} already graded")
    if args.dry_run:
        print("dry run: " + ("nothing placed in submitted/, " if taken else "") + "nobody graded"
              + (f"; would grade: {', '.join(todo)}" if todo else ""))
        return 0
    if taken is not None:
        for s in record_refused(course, taken):
            print(f"{s}: refused ({'; '.join(r.reason for r in taken.refused if r.student == s)})")
    with contextlib.redirect_stdout(io.StringIO()):
        report.write_feedback(root, course.name)      # students graded before an interrupted run, manual grades since
    limits = execute.Limits(timeout=args.timeout, memory=args.memory, max_wall=args.max_wall)
    status = run_batch(course, todo, limits, max(1, args.jobs))
    if status:
        return status
    return export.export(root, course.name)


def run_batch(course: Course, todo: list[str], limits: execute.Limits, jobs: int) -> int:
    """Grade the students with `jobs` workers; finish each one in this thread; Ctrl-C keeps the finished ones."""
    stop = threading.Event()
    old = signal.signal(signal.SIGTERM, _raise_interrupt)
    pool = ThreadPoolExecutor(jobs)
    start, done = time.monotonic(), 0
    try:
        pending: dict[Future, str] = {pool.submit(grade_one, course, s, limits, stop): s for s in todo}
        while pending:
            finished, _ = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for fut in finished:
                student = pending.pop(fut)
                try:
                    digest, outcome = fut.result()
                except execute.SandboxError as e:
                    raise SystemExit(f"course grade: {e}\n(the sandbox needs mount, PID and network namespaces: "
                                     "see the README, 'How untrusted code is run')") from None
                finish(course, student, digest, outcome)
                done += 1
                total = sum(r.points for r in outcome.cases)
                full = sum(r.max_points for r in outcome.cases)
                print(f"[{done}/{len(todo)}] {student}: {total:g}/{full:g} {outcome.status} in {outcome.seconds:.1f} s"
                      + (f"; {'; '.join(outcome.notes)}" if outcome.notes else ""), flush=True)
    except (KeyboardInterrupt, SystemExit) as e:
        stop.set()
        execute.stop_all()
        pool.shutdown(wait=True, cancel_futures=True)
        if isinstance(e, SystemExit):
            raise
        print(f"interrupted: {done} students graded and kept; run the same command again to resume", flush=True)
        return 130
    finally:
        pool.shutdown(wait=True)
        signal.signal(signal.SIGTERM, old)
    if todo:
        print(f"graded {done} students in {time.monotonic() - start:.0f} s with {jobs} job(s)")
    return 0


def _raise_interrupt(*_) -> None:
    """SIGTERM handler: stop like Ctrl-C."""
    raise KeyboardInterrupt


def cmd_feedback(args: argparse.Namespace) -> int:
    """Feedback pages of graded students (again, e.g. after manual grading)."""
    from ..cli import course_root

    report.write_feedback(course_root(), args.assignment, args.student or None)
    return 0


def add_commands(subparsers) -> None:
    """Add `grade`, `feedback` and `export` to the `course` command."""
    p = subparsers.add_parser("grade", help="grade submissions in sandboxed kernels against the hidden cases "
                              "(resumable), then feedback, grades CSV and final grades")
    p.add_argument("assignment")
    p.add_argument("export", nargs="?", help="the LMS export (.zip or folder, see `course collect`); default: "
                   "grade what is already in submitted/")
    p.add_argument("--dry-run", action="store_true", help="print the file -> student table and who would be "
                   "graded; place and grade nothing")
    p.add_argument("--jobs", type=int, default=JOBS, help=f"students graded at once (default {JOBS}; at most one "
                   "per two cores)")
    p.add_argument("--timeout", type=float, default=LIMITS.timeout,
                   help=f"seconds per cell (default {LIMITS.timeout:g})")
    p.add_argument("--memory", type=parse_size, default=LIMITS.memory,
                   help=f"address space per kernel, e.g. 6G (default {LIMITS.memory >> 30}G)")
    p.add_argument("--max-wall", type=float, default=LIMITS.max_wall,
                   help=f"seconds per submission, cells and hidden cases together (default {LIMITS.max_wall:g})")
    p.add_argument("--regrade", action="store_true", help="grade again students whose submission is unchanged")
    p.add_argument("--student", action="append", help="grade only this student (repeatable)")
    p.set_defaults(func=cmd_grade)
    p = subparsers.add_parser("feedback", help="feedback pages (HTML, offline math) for graded students")
    p.add_argument("assignment")
    p.add_argument("--student", action="append", help="only this student (repeatable)")
    p.set_defaults(func=cmd_feedback)
    export.add_parser(subparsers)
