"""Run one submission in a fresh sandboxed kernel and score it: the kernel computes, the grader judges.

`grade_submission` reads the submitted notebook, assembles what runs (`assemble`: the release's locked
cells by grade_id, deleted ones put back; the student's cells as written; test cells with their released,
visible source), executes it cell by cell in a `SandboxKernel` (its own namespaces, no network, a fresh
working folder at every start, so a restarted kernel finds nothing the student wrote before), then asks
every hidden case (`score.score`) with inputs drawn from a fresh secret seed. A kernel that dies or ignores
an interrupt is restarted in a new folder and the cells that ran are run again (bounded); the case in
flight fails. What comes back: per-case results, per-cell statuses, the autograded notebook (outputs
capped) and the scores of every grade cell for the gradebook.
"""
from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import logging
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from . import sandbox
from .cases import Answer, Suite
from .rules import judge_notebook, review_comments
from .score import CaseResult, score, totals
from .session import MAX_FRAME_BYTES, MAX_OUTPUT_CHARS, Kernel, Run

KERNEL_NAME = "course-sandbox"
UID_BASE = 1_500_000_000          # kernels run as root drop to a uid of their own in [UID_BASE, UID_BASE + 2**20)
TRUNCATED = "[output truncated at"


@dataclass(frozen=True)
class Limits:
    """Every limit of grading one submission (the defaults of `course grade`; each is a `--flag` of it)."""

    timeout: float = 120.0        # seconds per cell
    ask_timeout: float = 60.0     # seconds per probe (at most `timeout`)
    memory: int = 6 << 30         # bytes of memory of the whole sandbox (all its processes, tmpfs included)
    pids: int = sandbox.NPROC     # processes + threads of the whole sandbox
    disk: int = 512 << 20         # bytes of the kernel's working folder (a tmpfs of this size)
    inodes: int = 10_000          # files and folders in it
    file_size: int = 256 << 20    # bytes of one file the kernel writes
    tmp: int = 256 << 20          # bytes of the sandbox's private /tmp
    max_wall: float = 1800.0      # seconds per submission, restarts and replays included (a hard deadline)
    restarts: int = 5             # kernel restarts per submission; after that the rest scores nothing
    max_output: int = MAX_OUTPUT_CHARS    # characters kept per cell, errors included
    grader_memory: int = 3 << 30  # bytes the grader's own process for this submission may use


@dataclass
class Outcome:
    """Everything grading one submission produced (the grader's side; nothing here came from a pickled object)."""

    status: str                                   # ok | ok* | zero
    notes: list[str] = field(default_factory=list)
    cases: list[CaseResult] = field(default_factory=list)
    cells: list[dict] = field(default_factory=list)
    notebook: nbformat.NotebookNode | None = None  # the autograded notebook
    grades: dict[str, float | None] = field(default_factory=dict)   # grade_id -> auto_score (None: by hand)
    comments: dict[str, str | None] = field(default_factory=dict)   # solution grade_id -> auto comment
    seed: int = 0
    seconds: float = 0.0
    kernel_peak: int | None = None                # bytes: the sandbox's peak memory (None without a cgroup)


class Interrupted(Exception):
    """The run was stopped (Ctrl-C): this submission's work is thrown away whole."""


class SandboxError(RuntimeError):
    """The sandboxed kernel cannot start at all (the machine, not the submission)."""


# ---------------------------------------------------------------- the kernel

_LIVE: set["SandboxKernel"] = set()
_LIVE_LOCK = threading.Lock()


def stop_all() -> None:
    """Kill every sandboxed kernel of this process (on Ctrl-C; the workers see dead kernels and stop)."""
    with _LIVE_LOCK:
        kernels = list(_LIVE)
    for k in kernels:
        k.kill()


def course_package() -> str:
    """The folder of the installed course_utils package (mounted read-only in the sandbox)."""
    spec = importlib.util.find_spec("course_utils")
    return os.path.dirname(spec.origin)


def kernel_env() -> dict[str, str]:
    """The environment handed to the launcher (which keeps only harmless variables for the kernel)."""
    env = {k: os.environ[k] for k in ("PATH", "LANG", "TZ") if k in os.environ}
    env.update(COURSE_OFFLINE="1", COURSE_MODE=os.environ.get("COURSE_MODE", "quick"),
               COURSE_THREADS=os.environ.get("COURSE_THREADS", "1"),
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"), PYDEVD_DISABLE_FILE_VALIDATION="1")
    return env


class SandboxKernel(Kernel):
    """A `session.Kernel` whose every start (restarts included) is a new sandbox in a new working folder."""

    def __init__(self, base: Path, support: Path | None, limits: Limits, stop: threading.Event | None = None,
                 name: str | None = None):
        super().__init__(kernel_name=KERNEL_NAME, env=kernel_env())
        self.base, self.support, self.limits, self.stop = base, support, limits, stop
        self.starts, self.folder, self.cpu, self.peak = 0, None, 0.0, None
        self.name = name or secrets.token_hex(8)         # the sandbox's cgroups: course-sandbox-<name>-<start>
        self.quota = False                               # the working folder is a tmpfs of limits.disk bytes

    def cgroup(self) -> str:
        return f"{self.name}-{self.starts}"

    def start(self) -> None:
        """Make a fresh working folder (release files only), write its kernelspec, start the kernel there."""
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpecManager

        if self.stop is not None and self.stop.is_set():
            raise Interrupted()
        self.starts += 1
        self.folder = folder = Path(tempfile.mkdtemp(prefix=f"k{self.starts}-", dir=self.base))
        work = folder / "work"
        work.mkdir()
        self.quota = sandbox.quota_mount(str(work), self.limits.disk, self.limits.inodes)
        if self.support is not None:
            shutil.copytree(self.support, work, ignore=shutil.ignore_patterns("*.ipynb", ".*"), symlinks=False,
                            dirs_exist_ok=True)
        (work / sandbox.MARKER).touch()
        lim = self.limits
        argv = sandbox.kernel_argv(str(work), [course_package()], lim.memory, UID_BASE + secrets.randbelow(1 << 20),
                                   cgroup=self.cgroup(), pids=lim.pids, fsize=lim.file_size, tmp_mb=lim.tmp >> 20)
        spec = folder / "kernels" / KERNEL_NAME
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps(
            {"argv": argv, "display_name": "Python 3 (sandboxed)", "language": "python", "interrupt_mode": "signal"}))
        self.km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=KernelSpecManager(
            kernel_dirs=[str(folder / "kernels")]), transport="ipc", ip=sandbox.socket_prefix(str(work)),
            connection_file=str(folder / "connection.json"), context=self.context)
        with _LIVE_LOCK:
            _LIVE.add(self)
        self.km.start_kernel(env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.kc = self.km.client(context=self.context)
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=self.startup_timeout)

    def shutdown(self) -> None:
        """Kill the kernel (its whole cgroup), keep its peak memory, delete its working folder (tmpfs and all)."""
        self.cpu += _tree_cpu(self.km)
        super().shutdown()
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if self.starts:
            peak = sandbox.cgroup_peak(self.cgroup())
            if peak is not None:
                self.peak = max(self.peak or 0, peak)
            sandbox.cgroup_release(self.cgroup())
        if self.folder is not None:
            if self.quota:
                sandbox.quota_umount(str(self.folder / "work"))
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def kill(self) -> None:
        """Kill the kernel process now (from another thread; the owner's next call sees it dead)."""
        try:
            self.km.kill_kernel()
        except Exception:  # noqa: BLE001 - already gone
            pass


def _tree_cpu(km: Any) -> float:
    """User + system CPU seconds of the launcher and everything under it (0 when it is gone)."""
    import psutil

    process = getattr(getattr(km, "provisioner", None), "process", None)
    try:
        root = psutil.Process(process.pid)
        procs = [root, *root.children(recursive=True)]
    except (AttributeError, psutil.Error):
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


# ---------------------------------------------------------------- what runs

def nbgrader_meta(cell: dict) -> dict:
    """The cell's nbgrader metadata ({} when it has none or it is not a dict)."""
    meta = cell.get("metadata", {}).get("nbgrader", {}) if isinstance(cell.get("metadata"), dict) else {}
    return meta if isinstance(meta, dict) else {}


def read_submission(data: bytes) -> tuple[nbformat.NotebookNode | None, str | None]:
    """(notebook, None), or (None, why it cannot be graded)."""
    if not data.strip():
        return None, "empty file"
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception as e:  # noqa: BLE001 - any parse failure is the student's
        return None, f"corrupt notebook, not a readable .ipynb ({type(e).__name__})"
    if not isinstance(nb.get("cells"), list) or not all(isinstance(c, dict) and "cell_type" in c for c in nb.cells):
        return None, "corrupt notebook (no list of cells)"
    return nb, None


def assemble(release: nbformat.NotebookNode, submitted: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, list[str]]:
    """The notebook that runs: release order; locked cells from the release; answers and added cells the student's.

    A submitted cell is matched to a release cell by grade_id (first occurrence). Locked release cells
    (instructions, set-up, tests) always run as released, and are put back when deleted; answer cells keep
    the student's source with the release's metadata (a deleted code answer becomes an empty cell, a deleted
    written answer its released stub); the student's extra cells follow the release cell they followed, with
    any nbgrader metadata removed. Unmarked release cells are the student's to edit, so only the student's run.
    """
    ids = {nbgrader_meta(c).get("grade_id"): c for c in release.cells if nbgrader_meta(c).get("grade_id")}
    taken: dict[str, dict] = {}
    extras: dict[str | None, list] = {}
    anchor = None
    for cell in submitted.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if isinstance(gid, str) and gid in ids and gid not in taken:
            taken[gid], anchor = cell, gid
        elif cell.get("cell_type") in ("code", "markdown"):
            extra = nbformat.v4.new_code_cell(_text(cell.get("source"))) if cell["cell_type"] == "code" \
                else nbformat.v4.new_markdown_cell(_text(cell.get("source")))
            extras.setdefault(anchor, []).append(extra)
    notes, edited, deleted, answers_deleted = [], [], [], []
    nb = copy.deepcopy(release)
    nb.cells = list(extras.get(None, []))
    for rel in release.cells:
        gid, meta = nbgrader_meta(rel).get("grade_id"), nbgrader_meta(rel)
        if not gid:
            continue
        cell = copy.deepcopy(rel)
        cell.pop("outputs", None) if cell.cell_type != "code" else cell.update(outputs=[], execution_count=None)
        got = taken.get(gid)
        if meta.get("locked") or not meta.get("solution"):
            if got is None:
                deleted.append(gid)
            elif _text(got.get("source")) != rel.source:
                edited.append(gid)
        elif got is not None:
            cell.source = _text(got.get("source"))
        else:
            answers_deleted.append(gid)
            if cell.cell_type == "code":
                cell.source = ""
        nb.cells.append(cell)
        nb.cells += extras.get(gid, [])
    if ids and not taken:
        notes.append("none of the assignment's cells (another notebook, or cells copied without their metadata?)")
    else:
        if deleted:
            notes.append("locked cells deleted (put back): " + ", ".join(deleted))
        if answers_deleted:
            notes.append("answer cells deleted: " + ", ".join(answers_deleted))
    if edited:
        notes.append("locked cells edited (restored): " + ", ".join(edited))
    return nb, notes


def _text(source: Any) -> str:
    """A cell source as one string (nbformat allows a list of lines)."""
    if isinstance(source, list):
        return "".join(str(s) for s in source)
    return source if isinstance(source, str) else ""


def cell_points(release: nbformat.NotebookNode) -> dict[str, float]:
    """grade_id -> points of every autograded test cell (grade, not solution)."""
    return {m["grade_id"]: float(m.get("points", 0)) for m in map(nbgrader_meta, release.cells)
            if m.get("grade") and not m.get("solution")}


def student_sources(nb: nbformat.NotebookNode) -> list[str]:
    """The code the student wrote: every unlocked code cell of the assembled notebook."""
    return [c.source for c in nb.cells if c.cell_type == "code" and not nbgrader_meta(c).get("locked")]


def check_suite(suite: Suite, release: nbformat.NotebookNode) -> None:
    """The suite scores exactly the release's autograded test cells (else a clear error for the author)."""
    points, ids = cell_points(release), set(suite.grade_ids())
    missing, unknown = sorted(set(points) - ids), sorted(ids - set(points))
    if missing or unknown:
        raise ValueError(f"cases/{suite.assignment}.py does not match the release: "
                         + (f"test cells without cases: {missing}; " if missing else "")
                         + (f"cases for cells the release lacks: {unknown}; " if unknown else "")
                         + "fix the case file or run `course release` again")


# ---------------------------------------------------------------- running cells and probes

class Runner:
    """Runs the assembled cells once, answers probes; on a kernel death: fresh kernel, cells run again."""

    def __init__(self, kernel: SandboxKernel, sources: list[str], limits: Limits, log: logging.Logger,
                 stop: threading.Event | None):
        self.kernel, self.sources, self.limits, self.log, self.stop = kernel, sources, limits, log, stop
        self.deadline = time.monotonic() + limits.max_wall
        self.replay: list[int] = []            # cells that ran to an end (ok or error): run again after a restart
        self.dead = False
        self.events: list[str] = []
        self.killers: set[str] = set()         # functions whose call killed (or wedged) the kernel: not asked again

    def left(self) -> float:
        """Seconds left of the submission's wall budget."""
        return self.deadline - time.monotonic()

    def _exec(self, code: str, timeout: float, max_chars: int) -> Run:
        """kernel.run, with anything the kernel's messages make the client raise counted as a death."""
        if self.stop is not None and self.stop.is_set():
            raise Interrupted()
        try:
            run = self.kernel.run(code, timeout, max_chars=max_chars)
        except Interrupted:
            raise
        except Exception as e:  # noqa: BLE001 - a malformed message from the kernel, a dead channel
            self.log.info("kernel client failed: %s: %s", type(e).__name__, e)
            run = Run(status="died")
        if self.stop is not None and self.stop.is_set():
            raise Interrupted()
        return run

    def run_cells(self) -> list[Run | None]:
        """Execute every cell once (None for cells not run: no time left, or restarts used up)."""
        runs: list[Run | None] = []
        for i, code in enumerate(self.sources):
            if self.dead or self.left() <= 0:
                runs.append(None)
                continue
            before = self.kernel.restarts
            run = self._exec(code, min(self.limits.timeout, self.left()), self.limits.max_output)
            runs.append(run)
            self.log.info("cell %d: %s %s", i, run.status, run.ename)
            if run.status in ("ok", "error"):
                self.replay.append(i)
            elif run.status == "died" or self.kernel.restarts != before:
                self.fresh(already=self.kernel.restarts != before and self.kernel.alive())
        return runs

    def fresh(self, already: bool = False) -> None:
        """A new kernel in a new folder with the cells that ran so far run again; `dead` when restarts are used up."""
        while True:
            if self.kernel.restarts >= self.limits.restarts + (1 if already else 0):
                self.dead = True
                self.events.append(f"gave up after {self.kernel.restarts} kernel restarts")
                return
            if self.left() <= 0:
                self.dead = True
                self.events.append("the submission's time limit (--max-wall) was used up")
                return
            if not already:
                try:
                    self.kernel.startup_timeout = min(60.0, max(self.left(), 1.0))
                    self.kernel.restart()
                except Interrupted:
                    raise
                except Exception as e:  # noqa: BLE001 - the student's code cannot reach a fresh start; count it
                    self.log.info("restart failed: %s", e)
                    continue
                self.log.info("kernel restarted (%d)", self.kernel.restarts)
            already = False
            for i in list(self.replay):
                if self.left() <= 0:
                    break
                before = self.kernel.restarts
                run = self._exec(self.sources[i], min(self.limits.timeout, self.left()), 20_000)
                if run.status == "died" or self.kernel.restarts != before:
                    self.replay.remove(i)            # it killed the kernel this time: not again
                    already = self.kernel.restarts != before and self.kernel.alive()
                    break
            else:
                return

    def ask(self, request: dict) -> Answer:
        """One probe (the grader's `ask` for score.score); a death restarts the kernel for the next case.

        A function whose call killed the kernel (or ignored the interrupt) is not called again: its later
        cases fail at once, so one broken function costs one restart, not one per case.
        """
        target = str(request.get("target", "?"))
        if self.dead:
            return Answer(False, error="KernelDied", message="the kernel died too often; later cases are not asked")
        if target in self.killers:
            return Answer(False, error="KernelDied", message=f"an earlier call of {target} killed the kernel; "
                                                            "it is not called again")
        if self.left() <= 0:
            return Answer(False, error="Timeout", message="the submission's time limit (--max-wall) was used up")
        if self.stop is not None and self.stop.is_set():
            raise Interrupted()
        before = self.kernel.restarts
        try:
            answer = self.kernel.ask(request, min(self.limits.ask_timeout, self.limits.timeout, self.left()))
        except Exception as e:  # noqa: BLE001 - see _exec
            answer = Answer(False, error="KernelDied",
                            message=f"the kernel's answer broke the connection ({type(e).__name__})")
        if self.stop is not None and self.stop.is_set():
            raise Interrupted()
        restarted = self.kernel.restarts != before
        if answer.error == "KernelDied" or restarted or not self.kernel.alive():
            self.killers.add(target)
            self.events.append(f"kernel died in a call of {target}" if not restarted
                               else f"a call of {target} ignored the interrupt")
            self.fresh(already=restarted and self.kernel.alive())
        return answer


# ---------------------------------------------------------------- one submission

def grade_submission(data: bytes, release: nbformat.NotebookNode, suite: Suite, limits: Limits = Limits(),
                     support: Path | None = None, log: logging.Logger | None = None,
                     stop: threading.Event | None = None, seed: int | None = None, base: Path | None = None,
                     name: str | None = None) -> Outcome:
    """Grade one submitted notebook (its bytes) against the release and the hidden cases.

    `base` is where the kernels' folders go (default: the system's temporary folder), `name` what the
    sandboxes' cgroups are called (default: random), so that whoever runs this can clean up after a kill."""
    t0, cpu0 = time.monotonic(), time.thread_time()
    log = log or logging.getLogger("course.grader")
    points = cell_points(release)
    submitted, problem = read_submission(data)
    if submitted is None:
        return _zero(release, suite, points, problem)
    nb, notes = assemble(release, submitted)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    run_seed = secrets.randbits(63) if seed is None else seed
    log.info("run seed %d", run_seed)
    with tempfile.TemporaryDirectory(prefix="cg-", dir=base) as tmp:
        kernel = SandboxKernel(Path(tmp), support, limits, stop, name)
        try:
            try:
                kernel.start()
            except Interrupted:
                raise
            except Exception as e:
                raise SandboxError(f"the sandboxed kernel did not start: {type(e).__name__}: {e}") from e
            runner = Runner(kernel, [nb.cells[i].source for i in code], limits, log, stop)
            runs = runner.run_cells()
            violations, rule_notes = judge_notebook(suite.rules, [(nb.cells[i].source, nbgrader_meta(nb.cells[i]))
                                                                  for i in code], suite.targets(run_seed),
                                                    [r is not None and r.status == "ok" for r in runs])
            results = score(suite, runner.ask, points, run_seed, violations)
        finally:
            kernel.shutdown()
    cells = []
    for i, run in zip(code, runs):
        cells.append({"index": i, "grade_id": nbgrader_meta(nb.cells[i]).get("grade_id"),
                      "status": run.status if run is not None else "not run"})
        _put_outputs(nb.cells[i], run, limits)
    notes += _cell_notes(nb, cells, runs) + list(dict.fromkeys(runner.events))
    notes += rule_notes + [f"needs review: {gid}: `{f.line}` ({f.why})" if f.review else f"{gid}: {f}"
                           for gid, f in violations.items()]
    grades, comments = _grades(nb, release, totals(results), points, review_comments(violations))
    seconds = time.monotonic() - t0
    log.info("graded in %.1f s wall (CPU: kernel %.1f s, grader %.1f s), %d restarts; %s", seconds, kernel.cpu,
             time.thread_time() - cpu0, kernel.restarts, "; ".join(notes))
    return Outcome("ok*" if notes else "ok", notes, results, cells, nb, grades, comments, run_seed, seconds,
                   kernel.peak)


def _zero(release: nbformat.NotebookNode, suite: Suite, points: dict[str, float], why: str) -> Outcome:
    """The outcome of a file that cannot be graded: every case failed with the reason, every cell 0."""
    results = []
    for case in suite.cases:
        weight = sum(c.weight * c.draws for c in suite.cases if c.grade_id == case.grade_id)
        share = points.get(case.grade_id, 0.0) * case.weight / weight
        results += [CaseResult(case.grade_id, case.name, k, False, 0.0, share, why, "") for k in range(case.draws)]
    grades = {m["grade_id"]: 0.0 for m in map(nbgrader_meta, release.cells) if m.get("grade")}
    comments = {m["grade_id"]: "No response." for m in map(nbgrader_meta, release.cells) if m.get("solution")}
    return Outcome("zero", [why], results, [], None, grades, comments)


def _put_outputs(cell: nbformat.NotebookNode, run: Run | None, limits: Limits) -> None:
    """The cell's outputs and execution count in the autograded notebook, with a line on how it ended."""
    cell.outputs = [nbformat.from_dict(o) for o in run.outputs] if run is not None else []
    cell.execution_count = run.execution_count if run is not None else None
    status = run.status if run is not None else "not run"
    name, why = {
        "timeout": ("CellTimeoutError", f"the cell did not finish within {limits.timeout:g} s and was stopped"),
        "died": ("DeadKernelError", "the kernel died in this cell (crash, os._exit or memory); a fresh kernel "
                                    "ran the cells before it again and went on"),
        "not run": ("NotRun", "not run: the submission's time or restart budget was used up"),
    }.get(status, (None, None))
    if name:
        cell.outputs.append(nbformat.v4.new_output("error", ename=name, evalue=why, traceback=[f"{name}: {why}"]))


def _cell_notes(nb: nbformat.NotebookNode, cells: list[dict], runs: list[Run | None]) -> list[str]:
    """Short notes for the table: timeouts, deaths, memory errors, truncated output (by grade_id or index)."""
    notes = []
    for rec, run in zip(cells, runs):
        where = rec["grade_id"] or f"cell {rec['index']}"
        if run is None:
            continue
        if run.status == "timeout":
            notes.append(f"timeout in {where}")
        elif run.status == "died":
            notes.append(f"kernel died in {where}")
        if run.ename == "MemoryError":
            notes.append(f"memory limit in {where}")
        if any(o.get("output_type") == "stream" and TRUNCATED in o.get("text", "") for o in run.outputs):
            notes.append(f"output truncated in {where}")
        if run.lost:
            notes.append(f"output truncated in {where} (a message over {MAX_FRAME_BYTES >> 20} MiB was dropped unread)")
    return notes


def _grades(nb: nbformat.NotebookNode, release: nbformat.NotebookNode, auto: dict[str, float],
            points: dict[str, float], reviews: dict[str, str] | None = None
            ) -> tuple[dict[str, float | None], dict[str, str | None]]:
    """auto_score of every grade cell (cases for tests; nbgrader's rule for written answers) and auto comments
    (an answer the rules could not judge: its "NEEDS REVIEW: <line> (<why>)" lines, for the TA in the formgrader)."""
    from nbgrader import utils

    grades: dict[str, float | None] = {}
    comments: dict[str, str | None] = {}
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        gid = meta.get("grade_id")
        if not gid or gid in grades or gid in comments:
            continue
        if meta.get("grade") and gid in points:
            grades[gid] = auto.get(gid, 0.0)
        elif meta.get("grade"):
            grades[gid] = utils.determine_grade(cell)[0]      # 0 when unchanged from the release, else by hand
        if meta.get("solution") or meta.get("task"):
            unchanged = meta.get("checksum") == utils.compute_checksum(cell)
            comments[gid] = "No response." if unchanged and not meta.get("task") else (reviews or {}).get(gid)
    return grades, comments


def sha256(data: bytes) -> str:
    """The submission's hash (the key of resume)."""
    return hashlib.sha256(data).hexdigest()
