"""Attacks on the grader, graded as one batch by `course grade --jobs 2` in a temporary copy of the course.

Every row of issue 10's table and variations of each (tests/hostile.py builds them on a01): each attack
must score exactly what the reference it builds on scores in the same batch (the solution, the blank
release, fixed wrong values, half the answers), whatever it does to its own kernel.
"""
from __future__ import annotations

import http.server
import json
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from tests import hostile
from tests.hostile import course_cli, released_copy

A = hostile.A01
LIMITS = ["--timeout", "30", "--memory", "5G", "--jobs", "2"]
MEMORY = 5 << 30                  # the sandbox's limit above
GRADER_BOUND = 1 << 30            # bytes the grader's process for one student may reach (about 0.55 GiB is torch)
GROWTH_BOUND = 128 << 20          # bytes by which that process may grow beyond the smallest one of the batch
pytestmark = pytest.mark.slow


class Counting(http.server.BaseHTTPRequestHandler):
    """Counts every request that reaches the grading host's server."""

    hits = 0

    def do_GET(self):  # noqa: N802
        type(self).hits += 1
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@dataclass
class Batch:
    root: Path
    a: hostile.Assignment
    subs: dict
    records: dict
    out: str
    seconds: float

    def points(self, student: str) -> float:
        return round(sum(c["points"] for c in self.records[student]["cases"]), 6)


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()


@pytest.fixture(scope="module")
def batch(tmp_path_factory, server) -> Batch:
    root = tmp_path_factory.mktemp("attacks")
    released_copy(root, [A])
    a = hostile.Assignment(root, A)
    subs = hostile.a01_attacks(a, server.server_address[1])
    hostile.write_batch(root.parent / f"{root.name}-export", a, subs)
    t0 = time.time()
    proc = course_cli(root, "grade", A, str(root.parent / f"{root.name}-export"), *LIMITS)
    seconds = time.time() - t0
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-6000:]
    print(proc.stdout)
    print(f"{len(subs)} submissions in {seconds:.0f} s ({seconds / len(subs):.1f} s each, --jobs 2)")
    records = {s: json.loads((root / "grading" / "results" / A / f"{s}.json").read_text()) for s in subs}
    return Batch(root, a, subs, records, proc.stdout, seconds)


def test_references(batch: Batch) -> None:
    """The references span the range: the solution full, blank 0, wrong and half in between, all status ok."""
    full = batch.a.autograded_points
    assert batch.points("ref_correct") == full and batch.points("ref_blank") == 0
    assert 0 <= batch.points("ref_wrong") < batch.points("ref_partial") < full
    assert batch.points("ref_no_unpool") == full - batch.a.points["test_max_unpool"]
    assert all(batch.records[s]["status"] == "ok" for s in batch.subs if s.startswith("ref_"))


def test_every_attack_scores_exactly_its_reference(batch: Batch) -> None:
    """Each attack gets its reference's points; its notes say what happened."""
    bad = {}
    for student, (_, reference, word) in batch.subs.items():
        rec = batch.records[student]
        got, want = batch.points(student), batch.points(reference)
        if got != want or word not in "; ".join(rec["notes"]):
            bad[student] = (got, want, rec["status"], rec["notes"][:4])
    assert not bad, f"(got, expected, status, notes): {bad}"


def test_gradebook_holds_what_the_records_say(batch: Batch) -> None:
    """One submission per student; each test cell's auto_score is the sum of its cases' points."""
    con = sqlite3.connect(batch.root / "grading" / "gradebook.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = con.execute("SELECT sa.student_id, bc.name, g.auto_score FROM grade g JOIN submitted_notebook sn ON "
                       "g.notebook_id = sn.id JOIN submitted_assignment sa ON sn.assignment_id = sa.id JOIN base_cell "
                       "bc ON g.cell_id = bc.id").fetchall()
    con.close()
    got = {(s, cell): score for s, cell, score in rows if cell in batch.a.tests}
    for student, rec in batch.records.items():
        for cell in batch.a.tests:
            want = round(sum(c["points"] for c in rec["cases"] if c["grade_id"] == cell), 6)
            assert got[(student, cell)] == pytest.approx(want), (student, cell)


def test_no_network_from_the_kernel(batch: Batch, server) -> None:
    """urlopen of the grading host's 127.0.0.1 (and localhost) fails inside; the server saw nothing."""
    nb = nbformat.read(batch.root / "autograded" / "network" / A / batch.a.filename, as_version=4)
    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert printed.count("unreachable") == 3 and "REACHED" not in printed, printed
    assert Counting.hits == 0


def test_nothing_hidden_reaches_what_students_see(batch: Batch) -> None:
    """No line of the hidden cases and no run seed in any feedback page, autograded notebook or record."""
    hidden = hostile.hidden_lines(batch.root / "cases" / f"{A}.py", batch.root / "assignments" / A / batch.a.filename,
                                  batch.root / "solutions" / A / batch.a.filename)
    assert len(hidden) > 20
    seeds = set()
    for log in (batch.root / "grading" / "logs" / A).glob("*.log"):
        seeds |= set(re.findall(r"run seed (\d+)", log.read_text()))
    assert len(seeds) >= len(batch.subs) - 1
    shown = [*(batch.root / "feedback").rglob("*.html"), *(batch.root / "autograded").rglob("*.ipynb"),
             *(batch.root / "grading" / "results").rglob("*.json")]
    assert len([p for p in shown if p.suffix == ".html"]) == len(batch.subs)
    for path in shown:
        text = path.read_text()
        leaked = [h for h in hidden if h in text] + [s for s in seeds if s in text]
        assert not leaked, (path, leaked[:3])


def test_outputs_are_capped(batch: Batch) -> None:
    """100 MB printed by a cell: the autograded notebook keeps at most 200,000 characters of it."""
    assert (batch.root / "autograded" / "memory_flood" / A / batch.a.filename).stat().st_size < 2_000_000
    assert "memory limit" in "; ".join(batch.records["memory_flood"]["notes"])


def test_the_kernel_stays_inside_its_limits(batch: Batch) -> None:
    """Four 1.8 GB children under --memory 5G: the sandbox's peak (all processes together) is at most 5 GiB;
    the working folder fills up at its --disk size and its inode count, and the reference after it scores full."""
    peaks = {s: r["usage"]["kernel_peak_bytes"] for s, r in batch.records.items() if r.get("usage")}
    assert peaks and all(p is None or p <= MEMORY for p in peaks.values()), peaks
    assert peaks["fork_memory"] is None or peaks["fork_memory"] > 2 * (1800 << 20)   # it did try
    nb = nbformat.read(batch.root / "autograded" / "disk_fill" / A / batch.a.filename, as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "disk full: OSError" in printed and "inodes used up: OSError" in printed, printed[:2000]


def test_the_graders_memory_is_bounded(batch: Batch) -> None:
    """A flood of answer displays and 30 MB error outputs: the grader's process per student stays bounded, and
    the coordinator's own peak is printed and bounded too."""
    grader = {s: r["usage"]["grader_peak_bytes"] for s, r in batch.records.items() if r.get("usage")}
    assert max(grader.values()) <= GRADER_BOUND, grader
    assert max(grader.values()) - min(grader.values()) <= GROWTH_BOUND, grader
    coordinator = int(re.search(r"peak memory (\d+) MiB", batch.out).group(1))
    assert coordinator << 20 <= GRADER_BOUND, coordinator


def test_floods_leave_small_files(batch: Batch) -> None:
    """Errors count against the caps: the flooding submissions' notebooks and feedback pages stay small."""
    for student in ("error_flood", "answer_flood", "odd_displays", "surrogate_message"):
        nb = batch.root / "autograded" / student / A / batch.a.filename
        page = batch.root / "feedback" / student / A / batch.a.filename.replace(".ipynb", ".html")
        assert nb.stat().st_size < 2_000_000 and page.stat().st_size < 3_000_000, student
        nbformat.validate(nbformat.read(nb, as_version=4))


@pytest.fixture(scope="module")
def deadline(tmp_path_factory) -> Batch:
    """A submission whose restarts and replays would take minutes, graded under --max-wall 20."""
    root = tmp_path_factory.mktemp("deadline")
    released_copy(root, [A])
    a = hostile.Assignment(root, A)
    subs = hostile.a01_deadline_attacks(a)
    hostile.write_batch(root.parent / f"{root.name}-export", a, subs)
    t0 = time.time()
    proc = course_cli(root, "grade", A, str(root.parent / f"{root.name}-export"), "--max-wall", "20", "--jobs", "1")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-6000:]
    records = {s: json.loads((root / "grading" / "results" / A / f"{s}.json").read_text()) for s in subs}
    return Batch(root, a, subs, records, proc.stdout, time.time() - t0)


def test_max_wall_is_a_hard_deadline(deadline: Batch) -> None:
    """Restarts and replays count: the submission ends within --max-wall (plus the start grace), the reference
    graded after it scores full marks."""
    rec = deadline.records["replay_past_deadline"]
    seconds = rec.get("usage", {}).get("seconds")
    assert rec["status"] == "error" or seconds <= 30, rec            # 20 s, and a kernel start and stop
    assert "time limit" in "; ".join(rec["notes"]) or rec["status"] == "error", rec["notes"]
    assert deadline.points("ref_correct") == deadline.a.autograded_points
