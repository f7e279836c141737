"""`course grade`, `course feedback`, `course export`: the TA's grading workflow on top of nbgrader.

Each student is autograded by its own `nbgrader autograde` process in a throw-away copy of the course
that holds only the release and that student's submission, with a copy of the gradebook; the kernel runs
through `sandbox.py` (namespaces, rlimits, uid nobody). When that process finishes, the student's rows are
copied into the real gradebook in one sqlite transaction, so an interrupted run never leaves half a
submission behind, and a per-assignment status file makes re-runs resume where they stopped.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from .cli import _print_table, course_root, tool_env
from .sandbox import MARKER

HERE = Path(__file__).resolve().parent
SANDBOX = HERE / "sandbox.py"
# Seed 004's scheme: homework points + leaderboard tiers (rank <= 10: 7, <= 20: 5, up to the baseline: 3,
# below it: 1); grades 1-5 at 35 / 50 / 70 / 85 % of (all homework points + the baseline tier), which
# reproduces every row of the seed's published grade table.
DEFAULT_SCHEME = {
    "homework_weights": {},          # assignment -> points it is worth (default: its nbgrader points)
    "leaderboard_tiers": [[10, 7], [20, 5]],
    "leaderboard_baseline_points": 3,
    "leaderboard_below_baseline_points": 1,
    "grade_thresholds": [0.35, 0.50, 0.70, 0.85],
}
_RUNNING: set[subprocess.Popen] = set()   # autograde processes in flight (killed on Ctrl-C)
_STOP = threading.Event()
_MERGE = threading.Lock()
ZIP_REGEXP = r"^(?P<student_id>[A-Za-z0-9][A-Za-z0-9.@+-]*?)(?:[_ ][^/]*)?\.ipynb$"


@dataclass
class Options:
    """Limits and switches for one grading run."""

    timeout: int = 120                 # seconds per cell
    memory: int = 6 << 30              # bytes of address space per kernel
    max_wall: int = 1800               # seconds per submission, all cells together
    max_output: int = 200_000          # characters of output kept per cell
    regrade: bool = False
    strict_sandbox: bool = False


@dataclass
class Result:
    """What happened to one student."""

    student: str
    status: str = "ok"
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cpu: float = 0.0                   # CPU seconds of nbgrader + kernel (only exact when jobs == 1)


def _hash_dir(path: Path) -> str:
    """Content hash of a submission folder."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _parse_size(text: str) -> int:
    """'6G', '512M', '1000000' -> bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    return int(float(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " "))


# ---------------------------------------------------------------- collect

def collect(root: Path, assignment: str, source: Path, regexp: str = ZIP_REGEXP) -> list[str]:
    """Copy submissions into submitted/<student>/<assignment>/; return the student ids found."""
    dest = root / "submitted"
    if source.is_dir() and any((d / assignment).is_dir() for d in source.iterdir() if d.is_dir()):
        students = sorted(d.name for d in source.iterdir() if (d / assignment).is_dir())
        for s in students:
            _replace_tree(source / s / assignment, dest / s / assignment)
        return students
    # A zip, or a folder of files named with the student id: nbgrader's zip_collect in a staging course.
    with tempfile.TemporaryDirectory(prefix="course-collect-") as tmp:
        stage = Path(tmp)
        shutil.copytree(root / "assignments" / assignment, stage / "assignments" / assignment)
        archive = stage / "downloaded" / assignment / "archive"
        archive.mkdir(parents=True)
        if source.is_dir():
            for f in source.iterdir():
                if f.is_file():
                    shutil.copy(f, archive / f.name)
        else:
            shutil.copy(source, archive / source.name)
        notebooks = sorted(p.stem for p in (stage / "assignments" / assignment).glob("*.ipynb"))
        (stage / "nbgrader_config.py").write_text(
            "c = get_config()\n"
            f"c.CourseDirectory.root = {str(stage)!r}\n"
            "c.CourseDirectory.release_directory = 'assignments'\n"
            f"c.CourseDirectory.db_url = 'sqlite:///' + {str(stage / 'gradebook.db')!r}\n"
            "c.ZipCollectApp.collector_plugin = 'course_utils.nbgrader_ext.StudentFileCollector'\n"
            f"c.StudentFileCollector.named_regexp = {regexp!r}\n"
            f"c.StudentFileCollector.notebooks = {notebooks!r}\n")
        proc = subprocess.run([sys.executable, "-m", "nbgrader", "zip_collect", assignment, "--force"],
                              cwd=stage, env=tool_env(), capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"course grade: zip_collect failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        collected = stage / "submitted"
        students = sorted(d.name for d in collected.iterdir()) if collected.is_dir() else []
        for s in students:
            _replace_tree(collected / s / assignment, dest / s / assignment)
        return students


def _replace_tree(src: Path, dst: Path) -> None:
    """Make dst a copy of src unless it already is one (keeps the resume check honest)."""
    if dst.is_dir() and _hash_dir(dst) == _hash_dir(src):
        return
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, symlinks=False)


# ---------------------------------------------------------------- grade one student

def check_notebook(path: Path, release: Path | None = None) -> tuple[str | None, list[str]]:
    """(why the file cannot be graded or None, notes on tampering compared with the release)."""
    import nbformat

    if not path.exists():
        return "notebook missing", []
    if path.stat().st_size == 0:
        return "empty file", []
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as e:  # noqa: BLE001 - any parse failure is the student's
        return f"corrupt notebook ({type(e).__name__})", []
    if release is None or not release.exists():
        return None, []
    cells = lambda n: {c.metadata["nbgrader"]["grade_id"]: c for c in n.cells  # noqa: E731
                       if c.get("metadata", {}).get("nbgrader", {}).get("grade_id")}
    ref, got = cells(nbformat.read(str(release), as_version=4)), cells(nb)
    notes = []
    missing = [g for g in ref if g not in got]
    if missing and len(missing) == len(ref):
        notes.append("none of the assignment's cells (another notebook?)")
    elif missing:
        notes.append("cells deleted (put back): " + ", ".join(missing))
    edited = [g for g, c in ref.items() if g in got and c.metadata["nbgrader"].get("locked")
              and not c.metadata["nbgrader"].get("solution") and got[g].source != c.source]
    if edited:
        notes.append("locked cells edited (restored): " + ", ".join(edited))
    meta = [g for g, c in ref.items() if g in got and any(
        got[g].metadata["nbgrader"].get(k) != c.metadata["nbgrader"].get(k) for k in ("points", "grade", "locked"))]
    if meta:
        notes.append("grading metadata changed (restored): " + ", ".join(meta))
    return None, notes


def _sandbox_config(course: Path, main_config: Path, work: Path, report: Path, opt: Options) -> str:
    """nbgrader_config.py of the throw-away course: the real config, then our paths and limits."""
    return f'''
c = get_config()
_path = {str(main_config)!r}
exec(compile(open(_path).read(), _path, "exec"), {{"get_config": get_config, "__file__": _path}})
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import IgnorePattern, LimitOutput, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata
from course_utils.nbgrader_ext import GuardedExecute
c.CourseDirectory.root = {str(course)!r}
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "assignments"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.db_url = "sqlite:///" + {str(course / "gradebook.db")!r}
c.OverwriteCells.add_missing_cells = True   # a deleted test cell is put back and run
c.Execute.timeout = {opt.timeout}
c.Execute.interrupt_on_timeout = True
c.Autograde.autograde_preprocessors = [GuardedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
                                       SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
c.GuardedExecute.report_file = {str(report)!r}
c.GuardedExecute.workdir = {str(work)!r}
c.GuardedExecute.max_output_chars = {opt.max_output}
'''


def _kernelspec(folder: Path, work: Path, opt: Options) -> None:
    """A 'python3' kernelspec whose argv goes through the sandbox launcher."""
    keep = os.path.dirname(importlib.util.find_spec("course_utils").origin)
    argv = [sys.executable, "-I", str(SANDBOX), "--workdir", str(work), "--keep", keep, "--memory", str(opt.memory)]
    argv += ["--require-isolation"] if opt.strict_sandbox else []
    argv += ["--", sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps(
        {"argv": argv, "display_name": "Python 3 (sandboxed)", "language": "python",
         "interrupt_mode": "signal", "env": {"COURSE_OFFLINE": "1"}}))


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL a process and everything it started (kernels start their own sessions)."""
    import psutil

    try:
        parent = psutil.Process(proc.pid)
        procs = parent.children(recursive=True) + [parent]
    except psutil.NoSuchProcess:
        procs = []
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait()


def grade_student(root: Path, assignment: str, student: str, opt: Options) -> Result:
    """Autograde one student in a throw-away course and merge the outcome into the gradebook."""
    t0, cpu0 = time.time(), _children_cpu()
    res = Result(student)
    sub = root / "submitted" / student / assignment
    release = root / "assignments" / assignment
    names = sorted(p.name for p in release.glob("*.ipynb"))
    problems = {}
    for n in names:
        problems[n], notes = check_notebook(sub / n, release / n)
        res.notes += notes
    with tempfile.TemporaryDirectory(prefix=f"course-grade-{assignment}-") as tmp:
        tmp = Path(tmp)
        os.chmod(tmp, 0o700)
        course, work, report = tmp / "course", tmp / "work", tmp / "report.jsonl"
        (course / "submitted" / student).mkdir(parents=True)
        shutil.copytree(release, course / "assignments" / assignment)
        shutil.copytree(release, course / "source" / assignment, ignore=shutil.ignore_patterns("*.ipynb"))
        shutil.copytree(release, work, ignore=shutil.ignore_patterns("*.ipynb"))
        (work / MARKER).touch()  # the launcher only hands over a folder that carries this marker
        shutil.copytree(sub, course / "submitted" / student / assignment,
                        ignore=lambda d, fs: [f for f in fs if f.endswith(".ipynb") and problems.get(f)])
        _copy_db(root / "grading" / "gradebook.db", course / "gradebook.db")
        (course / "nbgrader_config.py").write_text(
            _sandbox_config(course, root / "nbgrader_config.py", work, report, opt))
        _kernelspec(tmp / "jupyter", work, opt)
        readable = [n for n in names if not problems[n]]
        res.notes += [f"{n}: {p}" for n, p in problems.items() if p]
        if readable:
            env = tool_env(JUPYTER_PATH=str(tmp / "jupyter"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
                           JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_PLATFORM_DIRS="1",
                           JUPYTER_ALLOW_INSECURE_WRITES="1", COURSE_OFFLINE="1")
            env.setdefault("COURSE_MODE", "quick")
            cmd = [sys.executable, "-m", "nbgrader", "autograde", assignment, "--student", student, "--force"]
            with open(tmp / "nbgrader.log", "w") as log:
                if _STOP.is_set():
                    raise KeyboardInterrupt
                proc = subprocess.Popen(cmd, cwd=course, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
                _RUNNING.add(proc)
                try:
                    rc = proc.wait(timeout=opt.max_wall)
                except subprocess.TimeoutExpired:
                    _kill_tree(proc)
                    rc = None
                    res.notes.append(f"stopped after {opt.max_wall} s (whole-submission limit)")
                except BaseException:
                    _kill_tree(proc)
                    raise
                finally:
                    _RUNNING.discard(proc)
                if _STOP.is_set():
                    raise KeyboardInterrupt
            logs = root / "grading" / "logs" / assignment
            logs.mkdir(parents=True, exist_ok=True)
            shutil.copy(tmp / "nbgrader.log", logs / f"{student}.log")
            if rc is None or rc != 0 or not (course / "autograded" / student / assignment).is_dir():
                if rc not in (None, 0):
                    res.notes.append("nbgrader failed: " + _last_error((tmp / "nbgrader.log").read_text()))
                readable = []
        events = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
        for kind, n in Counter(e["kind"] for e in events).items():
            res.notes.append(kind + (f" x{n}" if n > 1 else ""))
        details = sorted({d for e in events for d in re.findall(r"'([^']+)'", e.get("detail", ""))})
        if details:
            res.notes.append("patched: " + ", ".join(details)[:200])
        if not readable:  # nothing gradable: a zero submission, written through the same atomic merge
            _zero_submission(course / "gradebook.db", assignment, student)
            res.status = "zero"
        else:
            out = root / "autograded" / student / assignment
            if out.exists():
                shutil.rmtree(out)
            shutil.copytree(course / "autograded" / student / assignment, out,
                            ignore=shutil.ignore_patterns(".*"))
            res.status = "ok" if not res.notes else "ok*"
        with _MERGE:
            merge_submission(root / "grading" / "gradebook.db", course / "gradebook.db", assignment, student)
    res.seconds, res.cpu = time.time() - t0, _children_cpu() - cpu0
    return res


def _children_cpu() -> float:
    """User + system CPU seconds of all waited-for child processes so far."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _last_error(log: str) -> str:
    """The most telling line of an nbgrader log."""
    errors = [line for line in log.splitlines() if "ERROR" in line or "Error" in line]
    return (errors[-1] if errors else log.strip().splitlines()[-1] if log.strip() else "no output")[-200:]


def _copy_db(src: Path, dst: Path) -> None:
    """Consistent copy of a sqlite database (backup API)."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    a.close()
    b.close()


def _zero_submission(db: Path, assignment: str, student: str) -> None:
    """Record a submission with zero on every graded cell (unreadable or missing notebooks)."""
    import warnings

    from nbgrader.api import Gradebook, MissingEntry

    with warnings.catch_warnings(), Gradebook("sqlite:///" + str(db)) as gb:
        warnings.simplefilter("ignore")
        gb.update_or_create_student(student)
        try:
            gb.remove_submission(assignment, student)
        except MissingEntry:
            pass
        sub = gb.add_submission(assignment, student)
        for nb in sub.notebooks:
            for grade in nb.grades:
                grade.auto_score = 0
                grade.needs_manual_grade = False
        gb.db.commit()


SUBMISSION_ROWS = [  # (table, where-clause selecting one student's rows of one assignment)
    ("comment", "notebook_id IN (SELECT sn.id FROM {db}.submitted_notebook sn WHERE sn.assignment_id = ?)"),
    ("grade", "notebook_id IN (SELECT sn.id FROM {db}.submitted_notebook sn WHERE sn.assignment_id = ?)"),
    ("submitted_notebook", "assignment_id = ?"),
    ("submitted_assignment", "id = ?"),
]


def merge_submission(main_db: Path, copy_db: Path, assignment: str, student: str) -> None:
    """Replace one student's submission in the real gradebook by the one in the copy, in one transaction."""
    con = sqlite3.connect(main_db, isolation_level=None, timeout=60)
    try:
        con.execute("ATTACH DATABASE ? AS src", (str(copy_db),))
        con.execute("BEGIN IMMEDIATE")
        find = ("SELECT sa.id FROM {db}.submitted_assignment sa JOIN {db}.assignment a ON a.id = sa.assignment_id "
                "WHERE a.name = ? AND sa.student_id = ?")
        old = con.execute(find.format(db="main"), (assignment, student)).fetchone()
        new = con.execute(find.format(db="src"), (assignment, student)).fetchone()
        if old:
            for table, where in SUBMISSION_ROWS:
                con.execute(f"DELETE FROM main.{table} WHERE " + where.format(db="main"), (old[0],))
        con.execute("INSERT OR REPLACE INTO main.student SELECT * FROM src.student WHERE id = ?", (student,))
        if new:
            for table, where in reversed(SUBMISSION_ROWS):
                con.execute(f"INSERT INTO main.{table} SELECT * FROM src.{table} WHERE " + where.format(db="src"),
                            (new[0],))
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise
    finally:
        con.close()


# ---------------------------------------------------------------- scores, table, csv, final grades

def scores(root: Path, assignment: str) -> tuple[list[str], dict[str, dict[str, float | None]], dict[str, float]]:
    """(question names, {student: {question: points or None if ungraded}}, {question: max points})."""
    from nbgrader.api import Gradebook

    questions: dict[str, float] = {}
    table: dict[str, dict[str, float | None]] = {}
    with Gradebook("sqlite:///" + str(root / "grading" / "gradebook.db")) as gb:
        a = gb.find_assignment(assignment)
        for nb in a.notebooks:
            for cell in nb.grade_cells:
                questions[cell.name] = cell.max_score
        for sub in a.submissions:
            row: dict[str, float | None] = {}
            for nb in sub.notebooks:
                for g in nb.grades:
                    row[g.name] = None if g.needs_manual_grade else float(g.score)
            table[sub.student_id] = row
    return list(questions), table, questions


def load_status(root: Path, assignment: str) -> dict:
    """Per-student status of earlier runs (grading/<assignment>.status.json)."""
    path = root / "grading" / f"{assignment}.status.json"
    return json.loads(path.read_text()) if path.exists() else {}


def save_status(root: Path, assignment: str, status: dict) -> None:
    """Atomically rewrite the status file."""
    path = root / "grading" / f"{assignment}.status.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status, indent=1, sort_keys=True))
    os.replace(tmp, path)


def report(root: Path, assignment: str, csv_path: Path, manual_questions: set[str]) -> list[dict]:
    """Print the table (student, points per question, total, status) and write grades.csv."""
    questions, table, maxima = scores(root, assignment)
    status = load_status(root, assignment)
    rows = []
    for student in sorted(table):
        pts = table[student]
        total = sum(v for v in pts.values() if v is not None)
        st = status.get(student, {})
        reason = "; ".join(st.get("notes", [])) or ""
        pending = [q for q in questions if pts.get(q) is None]
        state = st.get("status", "?") + (" (manual grading pending)" if pending else "")
        rows.append({"student": student, **{q: pts.get(q) for q in questions}, "total": round(total, 3),
                     "max": sum(maxima.values()), "status": state, "reason": reason})
    header = ["student", *questions, "total", "max", "status", "reason"]
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    fmt = lambda v: "-" if v is None else f"{v:g}"  # noqa: E731
    label = lambda q: f"{q}{'(m)' if q in manual_questions else ''}/{maxima[q]:g}"  # noqa: E731
    _print_table([(r["student"], *[fmt(r[q]) for q in questions], f"{r['total']:g}", r["status"],
                   r["reason"][:70]) for r in rows],
                 ("student", *[label(q) for q in questions], f"total/{sum(maxima.values()):g}", "status", "reason"))
    print(f"wrote {csv_path}")
    return rows


def final_grades(root: Path, scheme: dict, leaderboard: dict[str, tuple[int | None, bool]],
                 out_csv: Path) -> dict[str, int]:
    """Seed-004 style final grades over all assignments (+ optional leaderboard) -> csv, histogram."""
    assignments = sorted(p.name for p in (root / "assignments").iterdir() if p.is_dir())
    per: dict[str, dict[str, float]] = {}
    max_hw = 0.0
    for a in assignments:
        try:
            _, table, maxima = scores(root, a)
        except Exception:  # noqa: BLE001 - assignment not in the gradebook yet
            continue
        full = sum(maxima.values()) or 1.0
        weight = float(scheme["homework_weights"].get(a, full))
        max_hw += weight
        for student, pts in table.items():
            per.setdefault(student, {})[a] = round(weight * sum(v or 0 for v in pts.values()) / full, 3)
    for student in leaderboard:
        per.setdefault(student, {})
    reference = max_hw + (scheme["leaderboard_baseline_points"] if leaderboard else 0)
    grades, rows = {}, []
    for student in sorted(per):
        lb = _leaderboard_points(leaderboard.get(student), scheme) if leaderboard else 0.0
        total = sum(per[student].values()) + lb
        grade = 1 + sum(total >= t * reference for t in scheme["grade_thresholds"])
        grades[student] = grade
        rows.append({"student": student, **{a: per[student].get(a, 0.0) for a in assignments},
                     "leaderboard": lb, "points_sum": round(total, 3), "grade": grade})
    with open(out_csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["student", *assignments, "leaderboard", "points_sum", "grade"])
        w.writeheader()
        w.writerows(rows)
    hist = Counter(grades.values())
    cuts = ", ".join(f"{g + 2}: >= {t * reference:.2f}" for g, t in enumerate(scheme["grade_thresholds"]))
    print(f"final grades (reference {reference:g} points; {cuts}) -> {out_csv}")
    for g in range(1, 6):
        print(f"  grade {g}: {'#' * hist.get(g, 0)} {hist.get(g, 0)}")
    return grades


def _leaderboard_points(entry: tuple[int | None, bool] | None, scheme: dict) -> float:
    """Points for a leaderboard rank: tiers, then the baseline tier, else below-baseline points."""
    if entry is None:
        return 0.0
    rank, above_baseline = entry
    if not above_baseline or rank is None:
        return float(scheme["leaderboard_below_baseline_points"])
    for limit, pts in scheme["leaderboard_tiers"]:
        if rank <= limit:
            return float(pts)
    return float(scheme["leaderboard_baseline_points"])


def read_leaderboard(path: Path) -> dict[str, tuple[int | None, bool]]:
    """CSV with columns student, rank, above_baseline (true/false)."""
    with open(path) as f:
        return {r["student"]: (int(r["rank"]) if r.get("rank") else None,
                               str(r.get("above_baseline", "true")).lower() in ("1", "true", "yes"))
                for r in csv.DictReader(f)}


# ---------------------------------------------------------------- feedback

def feedback(root: Path, assignment: str, students: list[str] | None = None) -> int:
    """nbgrader generate_feedback with hidden tests (sources and traceback lines) removed."""
    folder = root / "grading" / "feedback_config"  # nbgrader reads nbgrader_config.py from its working dir
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"_path = {str(root / 'nbgrader_config.py')!r}\n"
        "exec(compile(open(_path).read(), _path, 'exec'), {'get_config': get_config, '__file__': _path})\n"
        "from nbgrader.preprocessors import GetGrades\n"
        "from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor\n"
        "from course_utils.nbgrader_ext import StripHiddenTests\n"
        "c.GenerateFeedback.preprocessors = [GetGrades, StripHiddenTests, CSSHTMLHeaderPreprocessor]\n")
    graded = {p.parent.name for p in (root / "autograded").glob(f"*/{assignment}") if any(p.glob("*.ipynb"))}
    others = {p.parent.name for p in (root / "submitted").glob(f"*/{assignment}")} - graded
    wanted = graded & set(students) if students else graded
    if not wanted:
        print("feedback: nobody to write feedback for")
        return 0
    cmd = [sys.executable, "-m", "nbgrader", "generate_feedback", assignment, "--force"]
    if len(wanted) == 1:
        cmd.append(f"--student={next(iter(wanted))}")
    elif (graded - wanted) | others:  # one process for everyone, leaving out who is not asked for / not graded
        cmd.append("--CourseDirectory.student_id_exclude=" + ",".join(sorted((graded - wanted) | others)))
    proc = subprocess.run(cmd, cwd=folder, env=tool_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"feedback failed: {_last_error(proc.stdout + proc.stderr)}")
        return 1
    print(f"feedback for {len(wanted)} students in {root / 'feedback'}/<student>/{assignment}/")
    return 0


# ---------------------------------------------------------------- commands

def cmd_grade(args: argparse.Namespace) -> int:
    """Collect, autograde every student (resumable), feedback, table and grades.csv, final grades."""
    root = course_root()
    a = args.assignment
    if not (root / "grading" / "gradebook.db").exists() or not (root / "assignments" / a).is_dir():
        print(f"course grade: release {a} first (`course release {a}`): the gradebook needs its tests")
        return 2
    if args.submissions:
        students = collect(root, a, Path(args.submissions).resolve(), args.regexp)
    else:
        students = sorted(d.parent.name for d in (root / "submitted").glob(f"*/{a}") if d.is_dir())
    if args.student:
        students = [s for s in students if s in args.student]
    opt = Options(timeout=args.timeout, memory=args.memory, max_wall=args.max_wall,
                  regrade=args.regrade, strict_sandbox=args.strict_sandbox)
    status = load_status(root, a)
    todo = []
    for s in students:
        digest = _hash_dir(root / "submitted" / s / a)
        if not opt.regrade and status.get(s, {}).get("hash") == digest:
            continue
        todo.append((s, digest))
    print(f"{a}: {len(students)} submissions, {len(todo)} to grade, {len(students) - len(todo)} already graded")
    interrupted = False
    old = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    pool = ThreadPoolExecutor(max(1, args.jobs))
    try:
        futures = {pool.submit(grade_student, root, a, s, opt): (s, digest) for s, digest in todo}
        for i, fut in enumerate(as_completed(futures), 1):
            (s, digest), res = futures[fut], fut.result()
            status[s] = {"hash": digest, "status": res.status, "notes": res.notes,
                         "seconds": round(res.seconds, 1), "cpu_seconds": round(res.cpu, 1)}
            save_status(root, a, status)
            print(f"[{i}/{len(todo)}] {s}: {res.status} in {res.seconds:.1f} s {'; '.join(res.notes)}", flush=True)
    except KeyboardInterrupt:
        interrupted = True
        _STOP.set()
        for proc in list(_RUNNING):
            _kill_tree(proc)
        print("interrupted: graded students are saved; run the same command again to resume")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        signal.signal(signal.SIGTERM, old)
    if interrupted:
        return 130
    if todo and not args.no_feedback:
        feedback(root, a, [s for s, _ in todo])
    manual = _manual_questions(root, a)
    report(root, a, Path(args.csv) if args.csv else root / "grading" / f"{a}_grades.csv", manual)
    _final_grades_from_args(root, args, root / "grading" / "final_grades.csv")
    return 0


def _manual_questions(root: Path, assignment: str) -> set[str]:
    """grade_ids of manually graded cells (solution + grade) in the release."""
    out = set()
    for nb in (root / "assignments" / assignment).glob("*.ipynb"):
        for c in json.loads(nb.read_text())["cells"]:
            m = c.get("metadata", {}).get("nbgrader", {})
            if m.get("grade") and m.get("solution"):
                out.add(m["grade_id"])
    return out


def cmd_feedback(args: argparse.Namespace) -> int:
    """Feedback HTML for graded students, hidden tests removed."""
    return feedback(course_root(), args.assignment, args.student or None)


def cmd_export(args: argparse.Namespace) -> int:
    """Per-question grades.csv of one assignment (or all) and the final grades over all assignments."""
    root = course_root()
    names = [args.assignment] if args.assignment else sorted(p.name for p in (root / "assignments").iterdir())
    for a in names:
        report(root, a, root / "grading" / f"{a}_grades.csv", _manual_questions(root, a))
    _final_grades_from_args(root, args, Path(args.out) if args.out else root / "grading" / "final_grades.csv")
    return 0


def _final_grades_from_args(root: Path, args: argparse.Namespace, out_csv: Path) -> dict[str, int]:
    """final_grades() with the scheme (DEFAULT_SCHEME + --scheme) and --leaderboard of a command line."""
    scheme = {**DEFAULT_SCHEME, **(json.loads(Path(args.scheme).read_text()) if args.scheme else {})}
    lb = read_leaderboard(Path(args.leaderboard)) if args.leaderboard else {}
    return final_grades(root, scheme, lb, out_csv)


def add_commands(subparsers) -> None:
    """Add `grade`, `feedback` and `export` to the `course` command."""
    p = subparsers.add_parser("grade", help="autograde a folder or zip of submissions (sandboxed, resumable)")
    p.add_argument("assignment")
    p.add_argument("submissions", nargs="?", help="folder <student>/<assignment>/*.ipynb, or a zip / folder of "
                   "files named with the student id (default: what is already in submitted/)")
    p.add_argument("--student", action="append", help="grade only this student (repeatable)")
    p.add_argument("--regrade", action="store_true", help="grade again students already graded")
    p.add_argument("--timeout", type=int, default=120, help="seconds per cell (default 120)")
    p.add_argument("--memory", type=_parse_size, default=Options.memory, help="address space per kernel (default 6G)")
    p.add_argument("--max-wall", type=int, default=1800, help="seconds per submission in total (default 1800)")
    p.add_argument("--regexp", default=ZIP_REGEXP, help="file-name pattern for zips (named groups student_id, "
                   "optional file_id)")
    p.add_argument("--jobs", type=int, default=1, help="students graded at the same time (default 1)")
    p.add_argument("--strict-sandbox", action="store_true", help="refuse to run kernels without namespaces")
    p.add_argument("--no-feedback", action="store_true")
    p.add_argument("--csv", help="where to write the per-question csv (default grading/<assignment>_grades.csv)")
    p.add_argument("--scheme", help="JSON overriding the final-grade scheme (see DEFAULT_SCHEME)")
    p.add_argument("--leaderboard", help="CSV student,rank,above_baseline for the leaderboard component")
    p.set_defaults(func=cmd_grade)
    p = subparsers.add_parser("feedback", help="feedback HTML (hidden tests removed) for graded submissions")
    p.add_argument("assignment")
    p.add_argument("--student", action="append")
    p.set_defaults(func=cmd_feedback)
    p = subparsers.add_parser("export", help="grades.csv per assignment and final grades 1-5 with a histogram")
    p.add_argument("assignment", nargs="?")
    p.add_argument("--scheme")
    p.add_argument("--leaderboard")
    p.add_argument("--out")
    p.set_defaults(func=cmd_export)
