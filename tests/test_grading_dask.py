"""`course grade --engine dask`: the same sealed units as tasks of a Dask cluster of 2 worker processes, started
here on 127.0.0.1 by the engine itself.

The same batch graded by the local pool and by the cluster gives the same grades CSV and the same records,
case by case; a worker killed while it grades loses nothing and doubles nothing, and its unit and kernel die
with it; a submission that kills its worker every time is tried twice and ends `error` while the batch goes
on; a result delivered twice counts once; a result for a notebook that changed since is discarded; a worker
that cannot make the sandbox refuses, and the coordinator stops.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import socket
import sqlite3
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

distributed = pytest.importorskip("distributed")
import cloudpickle  # noqa: E402 - comes with distributed

from tests import hostile  # noqa: E402
from tests.hostile import course_cli, dump, released_copy  # noqa: E402

from course_utils.grader import commands, engines, execute, gradebook, unit  # noqa: E402

A = hostile.A01
LIMITS = ["--timeout", "30", "--jobs", "2"]
cloudpickle.register_pickle_by_value(sys.modules[__name__])   # `flaky` below runs on the workers


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail with TimeoutError when the block takes longer than `seconds`."""
    def expire(*_):
        raise TimeoutError(f"the test took longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dask")
    released_copy(root, [A])
    return root


@pytest.fixture(scope="module")
def cluster():
    """The engine's own local cluster: 2 one-thread worker processes on 127.0.0.1."""
    with deadline(120):
        pool = engines.DaskPool("local", 2)
    yield pool
    pool.stop()


def record(root: Path, student: str) -> dict:
    return json.loads((root / "grading" / "results" / A / f"{student}.json").read_text())


def points(rec: dict) -> float:
    return round(sum(c["points"] for c in rec["cases"]), 6)


def lines_of(out: str, student: str) -> list[str]:
    """The progress lines of one student."""
    return re.findall(rf"^\[\d+/\d+, \d+ failed, \d+ running\] {student}: .*$", out, re.M)


def test_the_engines_are_executors() -> None:
    assert isinstance(unit.LocalPool(1), engines.Executor)


def test_a_worker_without_namespaces_refuses(monkeypatch) -> None:
    monkeypatch.setattr(engines, "_namespaces_work", lambda: False)
    job = unit.Job("/nowhere", A, "alice", {}, "0" * 64, "t0")
    answer = engines.run_unit(dataclasses.asdict(job))
    assert answer["why"] == "" and socket.gethostname() in answer["result"]["fatal"]


def test_scheduler_needs_engine_dask(tmp_path: Path) -> None:
    proc = course_cli(tmp_path, "grade", A, "--scheduler", "tcp://127.0.0.1:1")
    assert proc.returncode != 0 and "--scheduler needs --engine dask" in proc.stderr


@pytest.mark.slow
def test_cluster_grades_exactly_as_the_local_pool(course: Path, cluster: engines.DaskPool, tmp_path: Path) -> None:
    """Graded locally, then again on the cluster: the same grades CSV and, case by case, the same records."""
    assert isinstance(cluster, engines.Executor) and cluster.jobs == 2
    a = hostile.Assignment(course, A)
    subs = {"correct": a.correct(), "partial": a.partial(), "blank": a.blank()}
    hostile.write_batch(tmp_path / "export", a, {s: (dump(nb), "", "") for s, nb in subs.items()})
    csv = course / "grading" / f"{A}_grades.csv"
    with deadline(400):
        t0 = time.time()
        local = course_cli(course, "grade", A, str(tmp_path / "export"), *LIMITS)
        t1 = time.time()
        assert local.returncode == 0, local.stdout[-4000:] + local.stderr[-4000:]
        before = csv.read_text(), {s: record(course, s) for s in subs}
        dask = course_cli(course, "grade", A, "--regrade", "--engine", "dask", "--scheduler", cluster.address,
                          *LIMITS)
        t2 = time.time()
    assert dask.returncode == 0, dask.stdout[-4000:] + dask.stderr[-4000:]
    print(f"{len(subs)} submissions: local pool {t1 - t0:.0f} s, dask {t2 - t1:.0f} s (commands included)")
    assert f"dask: 2 worker thread(s) at {cluster.address}; " in dask.stdout
    assert all(len(lines_of(dask.stdout, s)) == 1 for s in subs), dask.stdout
    assert csv.read_text() == before[0]
    for s in subs:
        rec, old = record(course, s), before[1][s]
        assert (rec["status"], rec["notes"], rec["cases"]) == (old["status"], old["notes"], old["cases"]), s
        assert rec["submission_sha256"] == old["submission_sha256"]
    assert record(course, "correct")["status"] == "ok"
    assert points(record(course, "correct")) == a.autograded_points


@pytest.mark.slow
def test_a_worker_killed_mid_task_loses_nothing_and_doubles_nothing(course: Path, cluster: engines.DaskPool,
                                                                    tmp_path: Path) -> None:
    """The worker grading `sleeper` is killed while its kernel sleeps: the task runs again on another worker,
    every student is finished once, and the killed worker's unit and kernel end with it."""
    a = hostile.Assignment(course, A)
    subs = {"sleeper": a.with_cell_first(a.correct(), "import time\ntime.sleep(8)"), "steady": a.correct()}
    hostile.write_batch(tmp_path / "export", a, {s: (dump(nb), "", "") for s, nb in subs.items()})
    done: dict = {}
    grading = threading.Thread(target=lambda: done.update(proc=course_cli(
        course, "grade", A, str(tmp_path / "export"), "--engine", "dask", "--scheduler", cluster.address, *LIMITS)))
    log = course / "grading" / "logs" / A / "sleeper.log"
    with deadline(400):
        grading.start()
        pid = None
        while pid is None and grading.is_alive():
            time.sleep(0.5)
            for address, keys in cluster.client.processing().items():
                if any(str(k).startswith("grade-sleeper-") for k in keys) and log.is_file():
                    pid = cluster.client.run(os.getpid, workers=[address])[address]
        time.sleep(3)                                   # the unit is in its kernel now
        family = psutil.Process(pid).children(recursive=True)
        assert len(family) >= 3, family                 # forkserver, the unit, its sandbox
        os.kill(pid, signal.SIGKILL)
        grading.join()
    out = done["proc"].stdout
    assert done["proc"].returncode == 0, out[-4000:] + done["proc"].stderr[-4000:]
    gone, alive = psutil.wait_procs(family, timeout=30)
    assert not alive, alive
    assert [len(lines_of(out, s)) for s in subs] == [1, 1] and "graded 2 students" in out, out
    for s in subs:
        rec = record(course, s)
        assert rec["status"] == "ok" and points(rec) == a.autograded_points, rec["notes"]
    con = sqlite3.connect(course / "grading" / "gradebook.db")
    rows = con.execute("SELECT COUNT(*) FROM submitted_notebook sn JOIN submitted_assignment sa ON "
                       "sn.assignment_id = sa.id WHERE sa.student_id = 'sleeper'").fetchone()[0]
    con.close()
    assert rows == 1


@pytest.mark.slow
def test_a_cancelled_task_stops_its_unit(course: Path, cluster: engines.DaskPool) -> None:
    """Ctrl-C on the coordinator cancels the tasks: a unit running on a worker that lives on ends within seconds."""
    a = hostile.Assignment(course, A)
    hostile.write_batch(course / "submitted", a, {"napper": (dump(a.with_cell_first(a.correct(), "import time\n"
                                                                                    "time.sleep(120)")), "", "")})
    pool = engines.DaskPool(cluster.address, 2)
    log = course / "grading" / "logs" / A / "napper.log"
    with deadline(120):
        pool.submit(unit.Job.make(unit.Course(course, A), "napper", execute.Limits(), unit.course_secret(course)))
        while not (pool.active() and log.is_file()):
            time.sleep(0.5)
        time.sleep(3)
        workers = [psutil.Process(pid) for pid in cluster.client.run(os.getpid).values()]
        units = [p for w in workers for p in w.children(recursive=True) if p.ppid() != w.pid]
        assert units                                    # the unit (a forkserver child) and its sandbox
        pool.stop()
        gone, alive = psutil.wait_procs(units, timeout=20)
    assert not alive and not pool.busy()


def flaky(job: dict) -> dict:
    """The engine's task, with failures: `poison` kills its worker every time, `once` the first time; the
    notebook of `changed` is replaced while it is graded."""
    tries = Path(job["root"]) / "tries" / job["student"]
    tries.parent.mkdir(exist_ok=True)
    with tries.open("a") as f:
        f.write("x")
    if job["student"] == "poison" or (job["student"] == "once" and tries.stat().st_size == 1):
        os.kill(os.getpid(), signal.SIGKILL)
    answer = engines.run_unit(job)
    if job["student"] == "changed":
        path = Path(job["root"]) / "submitted" / job["student"] / job["assignment"] / f"{job['assignment']}.ipynb"
        path.write_bytes(path.read_bytes() + b"\n")     # still the same notebook, another hash
    return answer


class Twice:
    """An engine that delivers every ended unit twice."""

    def __init__(self, pool: engines.Executor):
        self.pool, self.jobs = pool, pool.jobs

    def submit(self, job: unit.Job) -> None:
        self.pool.submit(job)

    def busy(self) -> bool:
        return self.pool.busy()

    def active(self) -> int:
        return self.pool.active()

    def finished(self, timeout: float = 1.0) -> list:
        return [ended for ended in self.pool.finished(timeout) for _ in range(2)]

    def stop(self) -> None:
        self.pool.stop()


@pytest.mark.slow
def test_poison_is_tried_twice_duplicates_count_once_changed_notebooks_are_discarded(
        course: Path, cluster: engines.DaskPool, capsys) -> None:
    """Two batches, each delivered twice by its engine (one killer at a time, so no task is blamed for a
    worker that another one killed)."""
    a = hostile.Assignment(course, A)
    students = ["poison", "changed", "once"]
    hostile.write_batch(course / "submitted", a, {s: (dump(a.correct()), "", "") for s in students})
    with deadline(400):
        for batch in (students[:2], students[2:]):
            assert commands.run_batch(unit.Course(course, A), batch, execute.Limits(timeout=30),
                                      Twice(engines.DaskPool(cluster.address, 2, task=flaky))) == 0
    out = capsys.readouterr().out
    assert [len(lines_of(out, s)) for s in students] == [1, 1, 1], out
    assert "graded 2 students" in out and "2 with status error" in out and "graded 1 students" in out, out
    assert {s: (course / "tries" / s).read_text() for s in students} == {"poison": "xx", "changed": "x", "once": "xx"}
    poison, changed, once = (record(course, s) for s in students)
    assert poison["status"] == "error" and "2 workers died while grading it" in poison["notes"][0]
    assert changed["status"] == "error" and "changed while it was graded" in changed["notes"][0]
    assert once["status"] == "ok" and points(once) == a.autograded_points
    assert gradebook.auto_scores(course, A, "changed") == {} and gradebook.auto_scores(course, A, "poison") == {}


@pytest.mark.slow
def test_a_fatal_answer_stops_the_batch(course: Path, cluster: engines.DaskPool) -> None:
    """A worker that cannot make the sandbox: the coordinator stops and says which worker."""
    pool = engines.DaskPool(cluster.address, 2, task=lambda job: {"result": {"fatal": "on worker w1: no"}, "why": ""})
    with deadline(60), pytest.raises(SystemExit, match="on worker w1: no"):
        commands.run_batch(unit.Course(course, A), ["poison"], execute.Limits(), pool)
