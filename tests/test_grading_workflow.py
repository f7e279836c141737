"""`course grade` / `course feedback` on broken and hostile submissions, in a temporary copy of the course.

The hostile batch (every category of issue 7, >= 30 submissions) runs on the first assignment in
solutions/ (or a toy assignment when there is none); a reduced set (correct, blank, wrong, one
monkeypatch attack, one read-the-solutions attack) runs on every assignment. Expected scores are exact.
"""
from __future__ import annotations

import csv
import html
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hostile  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = sorted(p.name for p in (ROOT / "solutions").iterdir()
                     if p.is_dir() and (p / f"{p.name}.ipynb").is_file()) if (ROOT / "solutions").is_dir() else []
LIMITS = ["--timeout", "20", "--memory", "5G", "--jobs", "2"]


def _isolated() -> bool:
    """Whether the sandbox launcher can create namespaces here (else file isolation is not tested)."""
    import tempfile

    from course_utils import sandbox

    with tempfile.TemporaryDirectory(prefix="course-sandbox-probe-") as tmp:
        work = Path(tmp) / "work"  # a dedicated folder: the launcher refuses any other
        work.mkdir()
        (work / sandbox.MARKER).touch()
        probe = subprocess.run([sys.executable, "-I", sandbox.__file__, "--workdir", str(work),
                                "--require-isolation", "--", sys.executable, "-c", "print('ok')"],
                               capture_output=True, text=True)
    return probe.returncode == 0 and "ok" in probe.stdout


def test_sandbox_refuses_shared_folders(tmp_path: Path) -> None:
    """The launcher never runs in (or hands to nobody) a folder without the marker, such as /tmp."""
    from course_utils import sandbox

    for folder in ("/tmp", str(tmp_path)):
        proc = subprocess.run([sys.executable, "-I", sandbox.__file__, "--workdir", folder, "--",
                               sys.executable, "-c", "print('ran')"], capture_output=True, text=True)
        assert proc.returncode == 2 and "ran" not in proc.stdout, proc.stderr


def course_cli(root: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    """Run the `course` command against a course copy."""
    env = dict(os.environ, COURSE_ROOT=str(root), COURSE_THREADS="1", COURSE_OFFLINE="1", COURSE_MODE="quick")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    return subprocess.run([sys.executable, "-m", "course_utils.cli", *args], env=env, capture_output=True,
                          text=True, **kw)


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A released copy of the course (its solutions, or a toy assignment pair when there are none)."""
    root = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "nbgrader_config.py", root)
    (root / "lectures").mkdir()
    if ASSIGNMENTS:
        shutil.copytree(ROOT / "solutions", root / "solutions")
    else:
        hostile.make_toy_assignment(root, "t00_toy", "relu")
        hostile.make_toy_assignment(root, "t01_other", "relu2", "square2")
    for name in _names(root):  # one by one: an assignment that does not release fails only its own test
        course_cli(root, "release", name)
    return root


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path) as f:
        return {r["student"]: r for r in csv.DictReader(f)}


def _auto(row: dict[str, str], a: hostile.Assignment) -> float:
    return sum(float(row[t] or 0) for t in a.tests)


def _names(root: Path) -> list[str]:
    """Assignments of the course copy, a01 first; only released ones once the copy is released."""
    names = sorted(p.name for p in (root / "solutions").iterdir() if p.is_dir())
    if (root / "assignments").is_dir():
        names = [n for n in names if (root / "assignments" / n).is_dir()]
    return sorted(names, key=lambda n: (not n.startswith("a01"), n))


def check_batch(root: Path, a: hostile.Assignment, subs: dict, rows: dict[str, dict[str, str]]) -> None:
    """Every submission got exactly the expected autograded points and its reason is visible."""
    full = a.autograded_points
    wrong = _auto(rows["ref_wrong"], a)
    assert full > 0 and _auto(rows["ref_correct"], a) == full
    assert wrong < full, "the shifted ('wrong') solution passes every test: the tests check no values"
    expected = {"full": full, "zero": 0.0, "wrong": wrong}
    if "ref_partial" in rows:
        expected["partial"] = _auto(rows["ref_partial"], a)
        assert 0 < expected["partial"] < full, f"half the solution scores {expected['partial']} of {full}"
    bad = {s: (_auto(rows[s], a), expected[e], rows[s]["status"], rows[s]["reason"])
           for s, (_, e, _) in subs.items() if _auto(rows[s], a) != expected[e]}
    assert not bad, f"unexpected scores (got, expected, status, reason): {bad}"
    for s, (_, _, keyword) in subs.items():
        assert keyword in rows[s]["reason"], (s, keyword, rows[s]["reason"])


def test_hostile_batch(course: Path, tmp_path: Path) -> None:
    """>= 30 mixed submissions in one batch: exact scores, reasons, resumable, feedback hides hidden tests."""
    names = _names(course)
    a = hostile.Assignment(course, names[0])
    other = hostile.Assignment(course, names[1]) if len(names) > 1 else None
    subs = hostile.suite(a, other)
    if not _isolated():
        subs.pop("read_solutions")  # without namespaces the files are readable: see the README's table
    assert len(subs) >= 30
    hostile.write_batch(tmp_path / "batch", a, subs)
    t0 = time.time()
    proc = course_cli(course, "grade", a.name, str(tmp_path / "batch"), *LIMITS)
    wall = time.time() - t0
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    print(proc.stdout)
    print(f"{len(subs)} submissions in {wall:.0f} s: {wall / len(subs):.1f} s per submission")
    rows = _rows(course / "grading" / f"{a.name}_grades.csv")
    assert set(subs) <= set(rows)
    check_batch(course, a, subs, rows)
    # the table names every student and the status column
    assert all(s in proc.stdout for s in subs) and "| status" in proc.stdout

    # huge outputs were capped in what is stored
    for s in ("output_100mb", "output_flood"):
        assert (course / "autograded" / s / a.name / a.filename).stat().st_size < 2_000_000

    # feedback exists for graded students and quotes no hidden test line (sources or tracebacks)
    released = (course / "assignments" / a.name / a.filename).read_text()
    hidden = [h for h in _hidden_lines(course / "solutions" / a.name / a.filename) if json.dumps(h)[1:-1] not in released]
    assert hidden
    pages = list((course / "feedback").glob(f"*/{a.name}/*.html"))
    assert len(pages) >= 20
    for page in pages:
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
        leaked = [h for h in hidden if h in text]
        assert not leaked, (page, leaked)
    wrong_page = (course / "feedback" / "ref_wrong" / a.name / a.filename.replace(".ipynb", ".html")).read_text()
    assert "Traceback" in wrong_page or "Error" in wrong_page  # failures are still explained

    # the gradebook is consistent and a second run grades nobody again
    _assert_gradebook_consistent(course, a)
    again = course_cli(course, "grade", a.name, str(tmp_path / "batch"), *LIMITS)
    assert again.returncode == 0 and f"{len(subs)} submissions, 0 to grade" in again.stdout
    assert _rows(course / "grading" / f"{a.name}_grades.csv") == rows

    # final grades and histogram
    assert "grade 1:" in proc.stdout and (course / "grading" / "final_grades.csv").is_file()


def _hidden_lines(source: Path) -> list[str]:
    """Non-trivial lines that stand only between BEGIN/END HIDDEN TESTS in the instructor's notebook.

    A line that also stands outside the hidden regions (say `with torch.no_grad():` in a solution, which a
    correct student writes too) proves nothing when feedback shows it.
    """
    hidden, elsewhere, inside = [], set(), False
    for cell in json.loads(source.read_text())["cells"]:
        for line in "".join(cell["source"]).split("\n"):
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(line.strip()) > 12:
                hidden.append(line.strip())
            else:
                elsewhere.add(line.strip())
    return [h for h in hidden if h not in elsewhere]


def _assert_gradebook_consistent(root: Path, a: hostile.Assignment) -> None:
    """sqlite integrity holds and every submission has a score on every autograded test."""
    con = sqlite3.connect(root / "grading" / "gradebook.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    missing = con.execute(
        "SELECT sa.student_id, bc.name FROM grade g JOIN submitted_notebook sn ON g.notebook_id = sn.id "
        "JOIN submitted_assignment sa ON sn.assignment_id = sa.id JOIN base_cell bc ON g.cell_id = bc.id "
        "JOIN assignment asg ON asg.id = sa.assignment_id "
        "WHERE asg.name = ? AND bc.name IN (%s) AND g.auto_score IS NULL AND g.manual_score IS NULL"
        % ",".join("?" * len(a.tests)), (a.name, *a.tests)).fetchall()
    con.close()
    assert not missing, missing


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_run_leaves_gradebook_consistent(course: Path, tmp_path: Path, sig: int) -> None:
    """Kill (or Ctrl-C) `course grade` mid-batch: the gradebook stays consistent and a re-run completes it."""
    a = hostile.Assignment(course, _names(course)[0])
    subs = {f"{prefix}{int(sig)}": (hostile.dump(a.correct()), "full", "") for prefix in
            ["kill_a", "kill_b", "kill_c", "kill_d"]}
    hostile.write_batch(tmp_path / "batch", a, subs)
    env = dict(os.environ, COURSE_ROOT=str(course), COURSE_THREADS="1")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    proc = subprocess.Popen([sys.executable, "-m", "course_utils.cli", "grade", a.name, str(tmp_path / "batch"),
                             "--timeout", "60", "--jobs", "1"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    status = course / "grading" / f"{a.name}.status.json"
    deadline = time.time() + 600
    while time.time() < deadline:  # wait until one of these students is done, then interrupt mid-way
        if status.exists() and any(s in json.loads(status.read_text()) for s in subs):
            break
        time.sleep(0.5)
    time.sleep(2)  # the next student is being graded now
    family = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(sig)
    out = proc.communicate(timeout=120)[0]
    for p in family:  # after SIGKILL the nbgrader child and its kernel are orphans: clean up
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "interrupted" in out, out
    _assert_gradebook_consistent(course, a)
    done = json.loads(status.read_text())
    assert 1 <= len([s for s in subs if s in done]) < len(subs)
    rerun = course_cli(course, "grade", a.name, str(tmp_path / "batch"), "--timeout", "60")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    rows = _rows(course / "grading" / f"{a.name}_grades.csv")
    assert all(_auto(rows[s], a) == a.autograded_points for s in subs)
    _assert_gradebook_consistent(course, a)


@pytest.mark.parametrize("name", ASSIGNMENTS or ["t00_toy"])
def test_reduced_suite_every_assignment(course: Path, tmp_path: Path, name: str) -> None:
    """Correct = full, blank = 0, patched helpers = the unpatched wrong answer, reading solutions = 0."""
    names = _names(course)
    assert name in names, f"{name} could not be released (see `course release {name}`)"
    a = hostile.Assignment(course, name)
    subs = {f"{k}_{name}": v for k, v in hostile.suite(a, None, reduced=True).items()}
    if not _isolated():
        subs.pop(f"read_solutions_{name}")
    hostile.write_batch(tmp_path / "batch", a, subs)
    proc = course_cli(course, "grade", name, str(tmp_path / "batch"), *LIMITS)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    rows = {k.removesuffix(f"_{name}"): v for k, v in _rows(course / "grading" / f"{name}_grades.csv").items()
            if k.endswith(f"_{name}")}
    check_batch(course, a, {k.removesuffix(f"_{name}"): v for k, v in subs.items()}, rows)
    assert names


def test_zip_collect(course: Path, tmp_path: Path) -> None:
    """A zip of files named with the student id goes through nbgrader's zip_collect."""
    import zipfile

    a = hostile.Assignment(course, _names(course)[0])
    archive = tmp_path / "lms_export.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(f"zip_alice_{a.filename}", hostile.dump(a.correct()))
        z.writestr("zip_bob.ipynb", hostile.dump(a.blank()))
        z.writestr("readme.txt", "not a submission")
    proc = course_cli(course, "grade", a.name, str(archive), *LIMITS, "--regexp",
                      r"^zip_(?P<student_id>[a-z]+)(?:_.*)?\.ipynb$")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = _rows(course / "grading" / f"{a.name}_grades.csv")
    assert _auto(rows["alice"], a) == a.autograded_points and _auto(rows["bob"], a) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_formgrader_lists_assignments(course: Path) -> None:
    """JupyterLab with the nbgrader formgrader opens the course and lists its assignments."""
    port, token = _free_port(), "course-test-token"
    env = dict(os.environ, JUPYTER_PLATFORM_DIRS="1")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    server = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
                               f"--ServerApp.token={token}", "--ServerApp.ip=127.0.0.1", "--allow-root",
                               f"--ServerApp.root_dir={course}"], cwd=course, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/formgrader/api/assignments"
        deadline, body = time.time() + 180, None
        while time.time() < deadline and body is None:
            try:
                req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
                body = json.loads(urllib.request.urlopen(req, timeout=10).read())
            except OSError:
                time.sleep(1)
        assert body is not None, "formgrader did not answer"
        listed = {x["name"] for x in body}
        assert set(_names(course)) <= listed, listed
        lab = urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{port}/lab", headers={"Authorization": f"token {token}"}), timeout=30)
        assert lab.status == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
