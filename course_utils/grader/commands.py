"""`course grade`, `course feedback`, `course export`: the TA's commands over the grader package.

`course grade A [EXPORT]` takes an LMS export through `intake` (or what is already in submitted/), grades
every student whose submission changed since it was graded (`unit`: one sealed unit per student, in a child
process of its own with a sandboxed kernel, `--jobs` at a time, here or on a Dask cluster: `engines`), and for
each student, in this process, once however often an engine delivers it: the unit's result checked, then the
gradebook rows in one transaction, the autograded notebook, the results record (written last: it marks the
student done, keyed by the submission's hash), the feedback page. A unit that fails in any way gives its
student an `error` record with the reason and the batch goes on. Ctrl-C stops the units; students finished so
far are kept, the ones in progress are thrown away whole, and the same command resumes. At the end the grades
table, the assignment's CSV and the final grades (`export`).
"""
from __future__ import annotations

import argparse
import dataclasses
import contextlib
import io
import re
import signal
import tempfile
import time
from pathlib import Path

import nbformat

from . import engines, execute, export, gradebook, intake, record, report, unit
from .unit import Course

JOBS = 1                          # students graded at once (at most one per two cores)
LIMITS = execute.Limits()         # the defaults of every limit flag


def parse_size(text: str) -> int:
    """'6G', '512M', '1000000' -> bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (write e.g. 6G or 512M)")
    return int(float(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " "))


# ---------------------------------------------------------------- one student

def finish(course: Course, job: unit.Job, result: dict | None, why: str) -> dict:
    """Write what one unit delivered, or its error; returns the record written. Never raises for a student.

    A valid result: gradebook rows (one transaction), the inert autograded notebook, the record (last), the
    feedback page. Anything else, or any failure while writing it: an `error` record with the reason (the
    gradebook keeps the student's earlier rows), and the student is graded again at the next run.
    """
    path = course.submission(job.student)
    digest = execute.sha256(path.read_bytes()) if path.is_file() and not path.is_symlink() else ""
    try:
        if result is not None and "fatal" in result:
            raise execute.SandboxError(str(result["fatal"])[:2000])
        if result is not None and "error" in result:
            why = f"the grader failed on this submission: {str(result['error'])[:2000]}"
            result = None
        if result is not None and (problem := unit.check(result, course, job)):
            why, result = f"the grader's result was refused: {problem}", None
        if result is not None and result["record"]["submission_sha256"] != digest:
            why, result = "the submission changed while it was graded; it is graded again at the next run", None
        if result is None:
            rec = unit.failed(job, digest, why)
            record.write_record(course.root, rec)
            return rec
        nb = nbformat.reads(result["notebook"], as_version=4)
        gradebook.record(course.root, course.name, job.student, course.notebook, result["grades"],
                         result["comments"], intake.read_timestamp(path.parent))
        record.write_autograded(course.root, course.name, job.student, course.notebook, nb, course.ta_cells)
        record.write_record(course.root, result["record"])
        rec = result["record"]
    except execute.SandboxError:
        raise
    except Exception as e:  # noqa: BLE001 - writing one student's result must not stop the batch
        rec = unit.failed(job, digest, f"the result could not be written ({type(e).__name__}: {str(e)[:500]})")
        record.write_record(course.root, rec)
        return rec
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            report.write_feedback(course.root, course.name, [job.student])
    except Exception as e:  # noqa: BLE001 - the grade stands; the page is made again by `course feedback`
        rec["notes"].append(f"feedback page not written ({type(e).__name__})")
    return rec


def up_to_date(course: Course, student: str) -> bool:
    """The student's record is for exactly the submitted file (and the gradebook holds the submission)."""
    rec = record.read_record(course.root, course.name, student)
    path = course.submission(student)
    if rec is None or rec.get("status") in ("refused", "error") or not path.is_file():
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
    from ..layout import course_root

    root = course_root()
    if args.scheduler and args.engine != "dask":
        raise SystemExit("course grade: --scheduler needs --engine dask")
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
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            report.write_feedback(root, course.name)  # students graded before an interrupted run, manual grades since
    except Exception as e:  # noqa: BLE001 - feedback is made again after each student and by `course feedback`
        print(f"feedback pages not refreshed ({type(e).__name__}: {str(e)[:200]})")
    limits = execute.Limits(**{f.name: getattr(args, f.name) for f in dataclasses.fields(execute.Limits)})
    status = run_batch(course, todo, limits, engines.start(args.engine, args.scheduler or "local",
                                                           max(1, args.jobs))) if todo else 0
    if status:
        return status
    return export.export(root, course.name)


def run_batch(course: Course, todo: list[str], limits: execute.Limits, pool: engines.Executor) -> int:
    """Grade the students on `pool`; finish each one here, once; Ctrl-C keeps the finished ones."""
    old = signal.signal(signal.SIGTERM, _raise_interrupt)
    secret = unit.course_secret(course.root)
    start, done, errors, reviews, merged = time.monotonic(), 0, 0, 0, set()
    try:
        for student in todo:
            pool.submit(unit.Job.make(course, student, limits, secret))
        while pool.busy():
            for job, result, why in pool.finished(timeout=1.0):
                if job.student in merged:  # delivered again: one job per student and batch, so it counts once
                    continue
                merged.add(job.student)
                try:
                    rec = finish(course, job, result, why)
                except execute.SandboxError as e:
                    raise SystemExit(f"course grade: {e}\n(the sandbox needs mount, PID and network namespaces: "
                                     "see the README, 'How untrusted code is run')") from None
                done += 1
                errors += rec["status"] == "error"
                reviews += len({c["grade_id"] for c in rec["cases"] if c.get("review")})
                total = sum(c["points"] for c in rec["cases"])
                full = sum(c["max_points"] for c in rec["cases"])
                seconds = rec.get("usage", {}).get("seconds")
                print(f"[{done}/{len(todo)}, {errors} failed, {pool.active()} running] {job.student}: "
                      + (f"{total:g}/{full:g} " if rec["status"] != "error" else "")
                      + rec["status"] + (f" in {seconds:.1f} s" if isinstance(seconds, (int, float)) else "")
                      + (f"; {'; '.join(rec['notes'])}" if rec["notes"] else ""), flush=True)
    except (KeyboardInterrupt, SystemExit) as e:
        pool.stop()
        if isinstance(e, SystemExit):
            raise
        print(f"interrupted: {done} students graded and kept; run the same command again to resume", flush=True)
        return 130
    finally:
        pool.stop()
        signal.signal(signal.SIGTERM, old)
    if todo:
        peak = unit.peak_memory() >> 20
        print(f"graded {done} students in {time.monotonic() - start:.0f} s with {pool.jobs} job(s); this "
              f"process's peak memory {peak} MiB" + (f"; {errors} with status error (graded again at the next run)"
                                                       if errors else "")
              + (f"; {reviews} parts marked NEEDS REVIEW (see the notes above and the formgrader's comments)"
                 if reviews else ""))
    return 0


def _raise_interrupt(*_) -> None:
    """SIGTERM handler: stop like Ctrl-C."""
    raise KeyboardInterrupt


SIZES = {"memory", "disk", "file_size", "tmp", "grader_memory"}
LIMIT_HELP = {
    "timeout": "seconds per cell", "ask_timeout": "seconds per hidden-case call",
    "memory": "memory of the whole sandbox, all its processes and its tmpfs together, e.g. 6G",
    "pids": "processes and threads of the whole sandbox", "disk": "size of the kernel's working folder",
    "inodes": "files and folders in the kernel's working folder", "file_size": "size of one file the kernel writes",
    "tmp": "size of the sandbox's /tmp", "max_wall": "seconds per submission, restarts and replays included "
    "(a hard deadline)", "restarts": "kernel restarts per submission", "max_output": "characters of output kept "
    "per cell, errors included", "grader_memory": "memory of the grader's own process per submission",
}


def cmd_feedback(args: argparse.Namespace) -> int:
    """Feedback pages of graded students (again, e.g. after manual grading)."""
    from ..layout import course_root

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
    for f in dataclasses.fields(execute.Limits):
        flag, default = "--" + f.name.replace("_", "-"), getattr(LIMITS, f.name)
        size = f.name in SIZES
        shown = f"{default >> 20}M" if size else f"{default:g}"
        p.add_argument(flag, type=parse_size if size else type(default), default=default,
                       help=f"{LIMIT_HELP[f.name]} (default {shown})")
    p.add_argument("--engine", choices=engines.ENGINES, default="local", help="where units run: child processes "
                   "here, or tasks of a Dask distributed cluster (default local)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="with --engine dask: the scheduler (tcp://host:8786), or "
                   "'local' (the default) for a cluster of --jobs worker processes on this machine")
    p.add_argument("--regrade", action="store_true", help="grade again students whose submission is unchanged")
    p.add_argument("--student", action="append", help="grade only this student (repeatable)")
    p.set_defaults(func=cmd_grade)
    p = subparsers.add_parser("feedback", help="feedback pages (HTML, offline math) for graded students")
    p.add_argument("assignment")
    p.add_argument("--student", action="append", help="only this student (repeatable)")
    p.set_defaults(func=cmd_feedback)
    export.add_parser(subparsers)
