"""Where units run: one interface (`Executor`), two engines; the unit and the coordinator stay the same.

An engine takes `unit.Job`s and hands back each one as it ends: (job, result or None, why there is none).
`unit.LocalPool` runs the units in child processes of this machine. `DaskPool` sends each job as one task to a
Dask distributed cluster (`Client(address)`, or a `LocalCluster` of `jobs` one-thread worker processes on
127.0.0.1 for "local"), where `run_unit` grades it in a one-job `LocalPool` on the worker: the same child
process, hard deadline, memory bound and cleanup as at home. The engine moves work; the sandbox is still the
security boundary. A worker reads the submission and the hidden cases from the course folder (on a cluster, a
network file system that every worker mounts at the same path); the course key travels in the Job and never
reaches a kernel.

- a worker that cannot make the sandbox, or is a daemonic process (which may not start the unit's child: run
  workers with DASK_DISTRIBUTED__WORKER__DAEMON=False), answers `fatal` with its host name, and the
  coordinator stops;
- a worker lost mid-task: the scheduler runs the task on another worker; lost a second time (ALLOWED_FAILURES)
  the task ends in `distributed.KilledWorker`, that student gets an `error` record with the reason, and the
  batch goes on; a task that raised is run once more (`retries=1`). A worker holds only the tasks it runs
  (worker-saturation 1.0), so its death counts against those alone;
- a task whose result nobody waits for any more (Ctrl-C, the coordinator gone) stops its unit.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.util
import multiprocessing
import signal
import socket
import time
from typing import Any, Callable, Protocol, runtime_checkable

from . import sandbox, unit
from .unit import Job

ENGINES = ("local", "dask")
ALLOWED_FAILURES = 1              # worker deaths a task may cause and still run again (the scheduler's setting)
CONNECT_TIMEOUT = 30              # seconds to reach a scheduler
POLL = 0.25                       # seconds between looks at the futures


@runtime_checkable
class Executor(Protocol):
    """What `commands.run_batch` drives (`unit.LocalPool` is one): jobs in, ended units out."""

    jobs: int                     # units it can run at once

    def submit(self, job: Job) -> None: ...

    def busy(self) -> bool: ...

    def active(self) -> int: ...

    def finished(self, timeout: float = 1.0) -> list[tuple[Job, Any, str]]: ...

    def stop(self) -> None: ...


def start(engine: str, scheduler: str, jobs: int) -> Executor:
    """The engine `course grade --engine E --scheduler ADDRESS --jobs N` asks for; says where units run."""
    if engine == "local":
        return unit.LocalPool(jobs)
    pool = DaskPool(scheduler, jobs)
    link = pool.dashboard()
    print(f"dask: {pool.jobs} worker thread(s) at {pool.address}; "
          + (f"dashboard {link}" if link else "no dashboard (install bokeh for one)"), flush=True)
    return pool


# ---------------------------------------------------------------- on the worker

@functools.cache
def _namespaces_work() -> bool:
    return sandbox.namespaces_work()


def run_unit(job: dict) -> dict:
    """The Dask task: grade one job (a `Job` as a dict) in a one-job LocalPool here; {"result", "why"}."""
    job = Job(**job)
    host = socket.gethostname()
    if multiprocessing.current_process().daemon:
        return {"result": {"fatal": f"worker {host} is a daemonic process and may not start the grading child; "
                                    "start workers with DASK_DISTRIBUTED__WORKER__DAEMON=False"}, "why": ""}
    if not _namespaces_work():
        return {"result": {"fatal": f"worker {host} cannot create mount, PID and network namespaces"}, "why": ""}
    pool = unit.LocalPool(1)
    pool.clean(job)               # what an attempt on a worker killed here left (the retry keeps the job's token)
    pool.submit(job)
    try:
        while True:
            for _, result, why in pool.finished(timeout=1.0):
                if isinstance(result, dict) and "fatal" in result:
                    result = {"fatal": f"on worker {host}: {result['fatal']}"}
                return {"result": result, "why": why}
            if not _wanted():
                return {"result": None, "why": "stopped: nobody waits for this result"}
    finally:
        pool.stop()


def _wanted() -> bool:
    """False once the scheduler has released the running task (cancelled, or its client gone)."""
    try:
        from distributed import get_worker

        worker = get_worker()
        task = worker.state.tasks.get(worker.get_current_task())
    except (ImportError, ValueError, KeyError):
        return True               # not in a Dask task (called directly)
    return task is not None and task.state != "cancelled"


# ---------------------------------------------------------------- on the coordinator

def _tune(dask_scheduler: Any) -> None:
    """On the scheduler: ALLOWED_FAILURES, and no task waits on a worker (its death would count against it)."""
    dask_scheduler.allowed_failures = ALLOWED_FAILURES
    dask_scheduler.WORKER_SATURATION = 1.0


def _has_bokeh() -> bool:
    return importlib.util.find_spec("bokeh") is not None


class DaskPool:
    """Units as tasks of a Dask distributed cluster; `task` (default `run_unit`) runs on the worker."""

    def __init__(self, address: str, jobs: int, task: Callable[[dict], dict] = run_unit):
        try:
            import dask
            import distributed
        except ImportError:
            raise SystemExit("course grade: --engine dask needs Dask distributed (pip install -e '.[cluster]')") \
                from None
        dask.config.set({"distributed.worker.daemon": False})   # a local worker, also once restarted, starts units
        self.task, self.cluster, self.futures = task, None, {}
        try:
            if address == "local":
                old = signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is this process's to handle
                try:
                    self.cluster = distributed.LocalCluster(n_workers=max(1, jobs), threads_per_worker=1,
                                                            processes=True, host="127.0.0.1",
                                                            dashboard_address="127.0.0.1:0")
                finally:
                    signal.signal(signal.SIGINT, old)
                address = self.cluster.scheduler_address
            self.client = distributed.Client(address, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as e:
            if self.cluster:
                self.cluster.close()
            raise SystemExit(f"course grade: no Dask scheduler at {address} ({type(e).__name__}: {e})") from None
        self.address = address
        self.client.run_on_scheduler(_tune)
        self.jobs = sum(w["nthreads"] for w in self.client.scheduler_info()["workers"].values())

    def dashboard(self) -> str | None:
        """The scheduler's dashboard link, None without one (bokeh not installed)."""
        return self.client.dashboard_link if self.client.run_on_scheduler(_has_bokeh) else None

    def submit(self, job: Job) -> None:
        future = self.client.submit(self.task, dataclasses.asdict(job), key=f"grade-{job.student}-{job.token}",
                                    retries=1)
        self.futures[future] = job

    def busy(self) -> bool:
        return bool(self.futures)

    def active(self) -> int:
        """Units running on a worker now."""
        mine = {f.key for f in self.futures}
        return sum(key in mine for keys in self.client.processing().values() for key in keys)

    def finished(self, timeout: float = 1.0) -> list[tuple[Job, Any, str]]:
        """Units that ended since the last call: (job, result or None, why there is none)."""
        end = time.monotonic() + timeout
        while not (done := [f for f in self.futures if f.done()]) and time.monotonic() < end:
            time.sleep(POLL)
        return [self._take(f) for f in done]

    def _take(self, future: Any) -> tuple[Job, Any, str]:
        from distributed import KilledWorker

        job = self.futures.pop(future)
        try:
            answer = future.result()
            return job, answer["result"], answer["why"]
        except KilledWorker as e:
            return job, None, (f"stopped: {ALLOWED_FAILURES + 1} workers died while grading it (the last: "
                               f"{e.last_worker.address}); see their logs")
        except Exception as e:  # noqa: BLE001 - one task's failure is its student's error
            return job, None, f"the cluster did not grade it ({type(e).__name__}: {str(e)[:500]})"
        finally:
            future.release()

    def stop(self) -> None:
        """Cancel every task left (a running unit stops when its worker sees that); close the client and a local
        cluster. Idempotent."""
        if self.futures:
            self.client.cancel(list(self.futures), force=True)
            self.futures = {}
        self.client.close()
        if self.cluster:
            self.cluster.close()
