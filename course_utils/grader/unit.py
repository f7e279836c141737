"""One student, one sealed unit of work: one submission in, one result out, or that student's error alone.

`grade(job)` does everything grading one submission needs (the sandboxed kernel, the probe conversation, the
comparison, the record, the autograded notebook made inert) and returns plain JSON data; it writes nothing but the
student's log. `LocalPool` runs each job in a fresh child process (forked from a server that has the heavy
modules imported, so a start costs milliseconds), `jobs` at a time, and hands back what each child sent:

- the child's only message is read with a size bound (MAX_RESULT_BYTES) before it is parsed, then checked
  field by field (`check`); anything else (an exception in the child, a crash, no message, a message too large
  or malformed) becomes `failed(job, reason)`, a record with status `error`, and the batch goes on;
- the child is killed when it passes its hard deadline (the submission's `max_wall` plus START_GRACE) or its
  memory bound (`Limits.grader_memory`, polled); the sandbox dies with it (PR_SET_PDEATHSIG), and whatever it
  left (cgroups, tmpfs mounts, folders) is removed by the pool;
- the child ends itself when the pool's process is gone (the pool's end of its pipe closes), since a forkserver
  child outlives its parent otherwise.

The same `Job` in and result out is what a cluster engine runs (`engines`). Only the coordinator writes the
gradebook.
"""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import multiprocessing
import os
import resource
import secrets
import select
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from .. import rubric
from ..layout import Layout
from . import execute, record, sandbox
from .cases import Suite, load_suite
from .inert import inert

MAX_RESULT_BYTES = 64 << 20       # one child's message (the inert notebook is at most record.MAX_NOTEBOOK_BYTES)
MAX_SUBMISSION_BYTES = 64 << 20   # a submitted notebook larger than this is not read (intake caps it lower)
START_GRACE = 60.0                # seconds past max_wall for a kernel start, shutdown and the notebook
POLL = 0.25                       # seconds between checks of the children
PRELOAD = ["course_utils.grader.unit", "torch", "jupyter_client", "nbconvert", "numpy"]


class Course:
    """One assignment of the course as grading needs it: release notebook, hidden cases, folders."""

    def __init__(self, root: Path, assignment: str):
        from . import gradebook

        self.root, self.name, self.layout = Path(root), assignment, Layout(root)
        self.release_dir = self.layout.release(assignment)
        if not self.release_dir.is_dir():
            raise SystemExit(f"course grade: {assignment} is not released; run `course release {assignment}`")
        notebooks = sorted(self.release_dir.glob("*.ipynb"))
        if len(notebooks) != 1:
            raise SystemExit(f"course grade: {self.release_dir} must hold exactly one notebook, found {len(notebooks)}")
        self.notebook = notebooks[0].stem
        self.release = nbformat.read(notebooks[0], as_version=4)
        cases = self.layout.case_file(assignment)
        if not cases.is_file():
            raise SystemExit(f"course grade: no hidden cases at {cases}; write them (CONTRIBUTING.md, "
                             "'Hidden cases') and check them with `python -m course_utils.grader.check "
                             f"{assignment}`")
        self.suite: Suite = load_suite(cases)
        solution = self.layout.solutions / assignment / notebooks[0].name
        self.ta_cells = rubric.ta_cells(nbformat.read(solution, as_version=4)) if solution.is_file() else {}
        try:
            execute.check_suite(self.suite, self.release)
            gradebook.require_assignment(self.root, assignment, self.notebook)
        except (ValueError, LookupError) as e:
            raise SystemExit(f"course grade: {e}") from None

    def submission(self, student: str) -> Path:
        """submitted/<student>/<assignment>/<notebook>.ipynb."""
        return self.layout.submission(student, self.name, self.notebook)

    def students(self) -> list[str]:
        """Students with a folder in submitted/ for this assignment (symbolic links are never followed)."""
        base = self.layout.submitted
        if not base.is_dir():
            return []
        return sorted(d.name for d in base.iterdir() if not d.name.startswith(".") and d.is_dir()
                      and not d.is_symlink() and (d / self.name).is_dir() and not (d / self.name).is_symlink())


@dataclass(frozen=True)
class Job:
    """What one unit needs: where the course is, whose submission, under which limits, with which key."""

    root: str
    assignment: str
    student: str
    limits: dict                  # execute.Limits as a dict
    secret: str                   # hex key of the run seeds (never sent to a kernel)
    token: str                    # names this unit's cgroups and temporary folder

    @staticmethod
    def make(course: Course, student: str, limits: execute.Limits, secret: str) -> "Job":
        return Job(str(course.root), course.name, student, dataclasses.asdict(limits), secret, secrets.token_hex(6))


def course_secret(root: Path) -> str:
    """The course's grading key (`Layout.secret`: grading/.grading-secret, made once, readable by its owner only)."""
    path = Layout(root).secret
    try:
        text = path.read_text().strip()
        if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
            return text
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return path.read_text().strip()


def run_seed(secret: str, assignment: str, digest: str) -> int:
    """The seed of a submission's cases: a function of the course key, the assignment and the notebook's hash,
    so a regrade reproduces every case and changed code gets new inputs."""
    mac = hmac.new(bytes.fromhex(secret), f"{assignment}\0{digest}".encode(), hashlib.sha256).digest()
    return int.from_bytes(mac[:8], "big") >> 1


def student_log(root: Path, assignment: str, student: str) -> logging.Logger:
    """grading/logs/<assignment>/<student>.log (the only place the run seed is written)."""
    path = Layout(root).log(assignment, student)
    path.parent.mkdir(parents=True, exist_ok=True)
    log = logging.getLogger(f"course.grade.{assignment}.{len(student)}.{student.encode().hex()}")
    log.handlers.clear()
    log.propagate = False
    log.setLevel(logging.INFO)
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    return log


# ---------------------------------------------------------------- the unit itself (in the child)

def grade(job: Job, course: Course | None = None) -> dict:
    """Grade one submission; the result as plain data: {"record", "grades", "comments", "notebook", "usage"}."""
    course = course or Course(Path(job.root), job.assignment)
    limits = execute.Limits(**job.limits)
    path = course.submission(job.student)
    log = student_log(course.root, course.name, job.student)
    try:
        readable = path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_SUBMISSION_BYTES
        data = path.read_bytes() if readable else b""
        digest = execute.sha256(data)
        base = Path(tempfile.gettempdir()) / f"cg-{job.token}"
        base.mkdir(exist_ok=True)
        outcome = execute.grade_submission(data, course.release, course.suite, limits, course.release_dir, log,
                                           seed=run_seed(job.secret, course.name, digest), base=base,
                                           name=job.token)
        if not readable:
            outcome.notes = [f"no readable {path.name} (at most {MAX_SUBMISSION_BYTES >> 20} MB) in "
                             f"submitted/{job.student}/{course.name}/"]
    finally:
        for h in list(log.handlers):
            h.close()
            log.removeHandler(h)
    rec = record.make_record(job.student, course.name, digest, outcome)
    rec["usage"] = {"seconds": round(outcome.seconds, 3), "kernel_peak_bytes": outcome.kernel_peak,
                    "grader_peak_bytes": peak_memory()}
    nb = outcome.notebook if outcome.notebook is not None else course.release
    return {"record": rec, "grades": outcome.grades, "comments": outcome.comments,
            "notebook": record.notebook_text(inert(nb))}


def _child(job: Job, conn: Any) -> None:
    """Child process: grade, send ONE message (the result, or why there is none), exit."""
    threading.Thread(target=_end_with_pool, args=(conn,), daemon=True).start()
    try:
        result = grade(job)
    except execute.SandboxError as e:
        result = {"fatal": str(e)}
    except BaseException as e:  # noqa: BLE001 - anything at all is this student's error, never the batch's
        result = {"error": f"{type(e).__name__}: {e}"[:2000]}
    try:
        conn.send_bytes(json.dumps(result, ensure_ascii=True, allow_nan=True).encode("ascii"))
    except BaseException as e:  # noqa: BLE001
        conn.send_bytes(json.dumps({"error": f"the result could not be sent ({type(e).__name__})"}).encode())
    conn.close()


def _end_with_pool(conn: Any) -> None:
    """Exit at once when the pipe has no reader left: the pool's process was killed (or its cluster worker lost)."""
    watch = select.poll()
    watch.register(conn.fileno(), select.POLLERR)
    watch.poll()
    os._exit(1)


# ---------------------------------------------------------------- what the coordinator accepts

def check(result: Any, course: Course, job: Job) -> str | None:
    """None when a child's result is well-formed for this job, else what is wrong with it."""
    if not isinstance(result, dict) or set(result) != {"record", "grades", "comments", "notebook"}:
        return "the result is not a result object"
    rec = result["record"]
    if problem := record.check_record(rec):
        return f"the record is invalid: {problem}"
    if rec["student"] != job.student or rec["assignment"] != course.name:
        return "the record is for another submission"
    ids = {execute.nbgrader_meta(c).get("grade_id"): execute.nbgrader_meta(c) for c in course.release.cells}
    for gid, value in _items(result["grades"]):
        if gid not in ids or not (value is None or (type(value) in (int, float) and
                                                    0 <= value <= float(ids[gid].get("points", 0)) + 1e-6)):
            return f"grade {gid!r} is not a score of that cell"
    for gid, value in _items(result["comments"]):
        if gid not in ids or not (value is None or (isinstance(value, str) and len(value) <= 10_000)):
            return f"comment {gid!r} is not a comment of that cell"
    if not isinstance(result["notebook"], str) or len(result["notebook"]) > record.MAX_NOTEBOOK_BYTES:
        return "the autograded notebook is missing or too large"
    return None


def _items(value: Any) -> list[tuple[Any, Any]]:
    """The pairs of a dict, or one bad pair when it is not one."""
    return list(value.items()) if isinstance(value, dict) else [(None, None)]


def failed(job: Job, digest: str, reason: str) -> dict:
    """The record of a unit that delivered nothing usable: status error, with the reason."""
    return record.make_record(job.student, job.assignment, digest, None, "error", [reason])


# ---------------------------------------------------------------- the local pool

@dataclass
class _Running:
    job: Job
    process: Any
    conn: Any
    started: float
    deadline: float
    message: bytes | None = None
    why: str = ""


class LocalPool:
    """Up to `jobs` units at once, each in its own child process, with a hard deadline and a memory bound."""

    def __init__(self, jobs: int):
        self.jobs = max(1, jobs)
        self.ctx = multiprocessing.get_context("forkserver")
        self.ctx.set_forkserver_preload([m for m in PRELOAD if _importable(m)])
        self.running: list[_Running] = []
        self.waiting: list[Job] = []

    def submit(self, job: Job) -> None:
        self.waiting.append(job)

    def busy(self) -> bool:
        return bool(self.running or self.waiting)

    def active(self) -> int:
        """Units running now."""
        return len(self.running)

    def _start(self) -> None:
        while self.waiting and len(self.running) < self.jobs:
            job = self.waiting.pop(0)
            receive, send = self.ctx.Pipe(duplex=False)
            process = self.ctx.Process(target=_child, args=(job, send), daemon=True)
            process.start()
            send.close()
            now = time.monotonic()
            self.running.append(_Running(job, process, receive, now, now + job.limits["max_wall"] + START_GRACE))

    def finished(self, timeout: float = 1.0) -> list[tuple[Job, Any, str]]:
        """Units that ended since the last call: (job, parsed result or None, why there is none)."""
        self._start()
        end = time.monotonic() + timeout
        done: list[_Running] = []
        while not done and time.monotonic() < end:
            for r in self.running:
                self._watch(r)
                if r.why or not r.process.is_alive() or r.message is not None:
                    done.append(r)
            if not done:
                time.sleep(POLL)
        out = []
        for r in done:
            self.running.remove(r)
            if r.message is None and not r.why:
                self._read(r)
            if r.process.is_alive():
                r.process.kill()
            r.process.join(5)
            self.clean(r.job)
            result, why = None, r.why
            if r.message is not None and not why:
                try:
                    result = json.loads(r.message)
                except ValueError:
                    why = "the grader's result could not be read"
            elif not why:
                code = r.process.exitcode
                why = f"the grading process ended without a result (exit status {code})"
            out.append((r.job, result, why))
        self._start()
        return out

    def _watch(self, r: _Running) -> None:
        """Read a message if one is there; kill the child past its deadline or its memory bound."""
        if r.message is None and r.conn.poll(0):
            self._read(r)
        if r.message is not None or r.why:
            return
        if time.monotonic() > r.deadline:
            r.why = (f"stopped: the submission took longer than --max-wall {r.job.limits['max_wall']:g} s "
                     f"(+{START_GRACE:g} s to start and stop)")
        elif (rss := _rss(r.process.pid)) > r.job.limits["grader_memory"]:
            r.why = f"stopped: grading it used {rss >> 20} MiB, over the grader's {r.job.limits['grader_memory'] >> 20} MiB"
        if r.why:
            r.process.kill()

    def _read(self, r: _Running) -> None:
        try:
            if r.conn.poll(0):
                r.message = r.conn.recv_bytes(maxlength=MAX_RESULT_BYTES)
        except (OSError, EOFError) as e:
            r.why = f"the grader's result was larger than {MAX_RESULT_BYTES >> 20} MiB or broken ({type(e).__name__})"

    def clean(self, job: Job) -> None:
        """Remove what a killed unit may have left: its sandboxes' cgroups, tmpfs mounts and folders."""
        for start in range(1, int(job.limits["restarts"]) + 3):
            sandbox.cgroup_release(f"{job.token}-{start}")
        base = Path(tempfile.gettempdir()) / f"cg-{job.token}"
        for mount in reversed(_mounts_under(str(base))):
            sandbox.quota_umount(mount)
        shutil.rmtree(base, ignore_errors=True)

    def stop(self) -> None:
        """Kill every running unit (Ctrl-C); nothing of theirs is kept."""
        for r in self.running:
            r.process.kill()
            r.process.join(5)
            self.clean(r.job)
        self.running, self.waiting = [], []


def peak_memory() -> int:
    """This process's peak resident memory in bytes: VmHWM, which starts anew at exec (ru_maxrss would also count
    what the process that started `course grade` held when it forked)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) << 10
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10


def _importable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _rss(pid: int) -> int:
    """Resident memory of a process in bytes (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _mounts_under(folder: str) -> list[str]:
    """Mount points at or below folder (from /proc/self/mountinfo), outermost first."""
    try:
        lines = open("/proc/self/mountinfo").read().splitlines()
    except OSError:
        return []
    points = [line.split()[4] for line in lines if len(line.split()) > 4]
    return sorted((p for p in points if p == folder or p.startswith(folder + "/")), key=len)
