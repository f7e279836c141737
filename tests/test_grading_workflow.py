"""The TA's workflow end to end in a temporary copy of the course: an LMS export through `course grade`
(sandboxed kernels, --jobs 2), the table, grades CSV and final grades, feedback, the formgrader's view,
manual grades that survive a regrade, and a run interrupted (Ctrl-C or kill) and resumed.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import psutil
import pytest

from tests import hostile
from tests.hostile import course_cli, released_copy

A = hostile.A01
LIMITS = ["--timeout", "60", "--memory", "5G"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("workflow")
    released_copy(root, [A])
    return root


@pytest.fixture(scope="module")
def first_run(course: Path, tmp_path_factory) -> subprocess.CompletedProcess:
    """An LMS zip: four students (solution, blank, half, wrong) and a file that is not a notebook."""
    a = hostile.Assignment(course, A)
    export = tmp_path_factory.mktemp("lms") / "a01_export.zip"
    with zipfile.ZipFile(export, "w") as z:
        z.writestr(f"alice_{A}.ipynb", hostile.dump(a.correct()))
        z.writestr("bob_12345_a01.ipynb", hostile.dump(a.blank()))
        z.writestr("Ümit Öz_a01.ipynb", hostile.dump(a.partial()))
        z.writestr("dave_a01.ipynb", hostile.dump(hostile.wrong(a)))
        z.writestr("eve_a01.ipynb", b"{not json")
    dry = course_cli(course, "grade", A, str(export), "--dry-run")
    assert dry.returncode == 0 and "Ümit Öz" in dry.stdout and "nobody graded" in dry.stdout, dry.stdout + dry.stderr
    assert not (course / "submitted").exists() and not (course / "grading" / "results").exists()
    proc = course_cli(course, "grade", A, str(export), *LIMITS, "--jobs", "2")
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    print(proc.stdout)
    return proc


def rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, encoding="utf-8") as f:
        return {r["student"]: r for r in csv.DictReader(f)}


def auto(row: dict[str, str], a: hostile.Assignment) -> float:
    return round(sum(float(row[t] or 0) for t in a.tests), 6)


def test_batch_from_an_lms_export(course: Path, first_run) -> None:
    """Each student's points, the refused file with its reason, the CSVs, the mapping, a feedback page each."""
    a = hostile.Assignment(course, A)
    table = rows(course / "grading" / f"{A}_grades.csv")
    assert auto(table["alice"], a) == a.autograded_points and auto(table["bob"], a) == 0
    assert auto(table["Ümit Öz"], a) == 9 and auto(table["dave"], a) == 0       # fixed wrong values: no edge case alone
    assert "eve" not in table and "eve: refused" in first_run.stdout
    assert json.loads((course / "grading" / "results" / A / "eve.json").read_text())["status"] == "refused"
    mapping = (course / "grading" / f"{A}_intake.csv").read_text(encoding="utf-8")
    assert "bob_12345_a01.ipynb,bob,accepted" in mapping and "eve_a01.ipynb,eve,refused" in mapping
    assert "grade 1:" in first_run.stdout and (course / "grading" / "final_grades.csv").is_file()
    for s in ("alice", "bob", "Ümit Öz", "dave"):
        page = (course / "feedback" / s / A / f"{A}.html").read_text(encoding="utf-8")
        assert s in page and "test_max_unpool" in page
        record = json.loads((course / "grading" / "results" / A / f"{s}.json").read_text(encoding="utf-8"))
        assert record["status"] == "ok" and record["submission_sha256"] and record["cells"]


def test_formgrader_renders_the_autograded_notebook(course: Path, first_run) -> None:
    """nbgrader's formgrade template shows every grade cell of the autograded notebook with its score box."""
    from nbconvert.exporters import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers

    exporter = HTMLExporter(template_name="formgrade", extra_template_basedirs=[handlers.template_path])
    resources = {"assignment_id": A, "notebook_id": A, "submission_id": "x", "index": 0, "total": 1,
                 "base_url": "", "student": "alice", "last_name": None, "first_name": None, "notebook_path": ""}
    html, _ = exporter.from_filename(str(course / "autograded" / "alice" / A / f"{A}.ipynb"), resources=resources)
    a = hostile.Assignment(course, A)
    assert all(f'id="{gid}"' in html for gid in a.points), [g for g in a.points if f'id="{g}"' not in html]


def test_regrade_keeps_manual_grades(course: Path, first_run) -> None:
    """A score typed in the formgrader survives `--regrade`, and export counts it."""
    con = sqlite3.connect(course / "grading" / "gradebook.db")
    with con:
        con.execute("UPDATE grade SET manual_score = 3.5 WHERE id = (SELECT g.id FROM grade g JOIN base_cell bc ON "
                    "g.cell_id = bc.id JOIN submitted_notebook sn ON g.notebook_id = sn.id JOIN submitted_assignment sa "
                    "ON sn.assignment_id = sa.id WHERE sa.student_id = 'alice' AND bc.name = "
                    "'p4_answer')")
    con.close()
    proc = course_cli(course, "grade", A, *LIMITS, "--regrade", "--student", "alice")
    assert proc.returncode == 0 and "1 to grade" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
    row = rows(course / "grading" / f"{A}_grades.csv")["alice"]
    assert float(row["p4_answer"]) == 3.5 and float(row["total"]) == 19.5
    again = course_cli(course, "grade", A, *LIMITS)
    assert again.returncode == 0 and "4 submissions, 0 to grade, 4 already graded" in again.stdout, again.stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_run_resumes_and_every_graded_student_gets_feedback(course: Path, first_run, tmp_path: Path,
                                                                       sig: int) -> None:
    """Stop `course grade` after its first student: the gradebook stays consistent, that student has
    feedback, and the same command grades only the rest."""
    from course_utils.grader import report

    a = hostile.Assignment(course, A)
    subs = {f"stop{int(sig)}_{k}": (hostile.dump(a.correct()), "", "") for k in "ab"}
    hostile.write_batch(tmp_path / "batch", a, subs)
    env = dict(os.environ, COURSE_ROOT=str(course), COURSE_THREADS="1")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    proc = subprocess.Popen([sys.executable, "-m", "course_utils.cli", "grade", A, str(tmp_path / "batch"), *LIMITS],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    results = course / "grading" / "results" / A
    deadline = time.time() + 600
    while time.time() < deadline and not any((results / f"{s}.json").exists() for s in subs):
        time.sleep(0.3)
    time.sleep(1.0)                                       # the next student is being graded now
    family = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(sig)
    out = proc.communicate(timeout=120)[0]
    for p in family:                                      # after SIGKILL its kernels are orphans
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "interrupted" in out, out
    done = [s for s in subs if (results / f"{s}.json").exists()]
    assert 1 <= len(done) < len(subs), out
    con = sqlite3.connect(course / "grading" / "gradebook.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    report.write_feedback(course, A)                      # what the next run does first
    pages = [course / "feedback" / s / A / f"{A}.html" for s in done]
    assert all(p.is_file() for p in pages)                # every student graded before the interrupt
    pages[0].unlink()
    assert report.write_feedback(course, A) == 1 and pages[0].is_file()   # only the missing page is written
    rerun = course_cli(course, "grade", A, *LIMITS)
    assert rerun.returncode == 0 and f"{len(subs) - len(done)} to grade" in rerun.stdout, rerun.stdout[-3000:]
    table = rows(course / "grading" / f"{A}_grades.csv")
    assert all(auto(table[s], a) == a.autograded_points for s in subs)
    assert all((course / "feedback" / s / A / f"{A}.html").is_file() for s in subs)
