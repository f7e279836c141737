"""Execute lectures headless, one at a time, and say how long each took: `run_lectures` (the `course lectures`
command and `course checkpoint` call it; nothing here parses arguments).

Each lecture runs in a fresh local kernel over ZeroMQ `ipc` sockets (Unix socket files in a private temporary
folder, so no TCP port is opened and the kernel has nothing to warn about), with COURSE_LECTURE set to the
lecture's name (`course_utils.results` names its RESULT lines by it) and COURSE_MODE as asked.
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .layout import Layout, print_table, select


@dataclass
class Ran:
    """One executed lecture: how long it took, how it ended, where its executed copy went."""

    name: str
    mode: str
    seconds: float
    status: str                   # ok | timeout (...) | error: <last line>
    target: Path


def run_lecture(path: Path, target: Path | None, mode: str, timeout: int) -> Ran:
    """Execute one lecture; write it to target (its own path for in place) unless it failed in place."""
    import nbformat
    from jupyter_client import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    nb = nbformat.read(path, as_version=4)
    os.environ["COURSE_LECTURE"] = path.stem        # the kernel inherits it
    status = "ok"
    with tempfile.TemporaryDirectory(prefix="lec-") as sockets:
        km = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "k"))
        client = NotebookClient(nb, km=km, timeout=timeout, resources={"metadata": {"path": str(path.parent)}})
        start = time.perf_counter()
        try:
            client.execute()
        except CellTimeoutError:
            status = f"timeout (> {timeout} s per cell)"
        except CellExecutionError as err:
            status = f"error: {str(err).strip().splitlines()[-1][:80]}"
        seconds = time.perf_counter() - start
    target = target or path
    if status == "ok" or target != path:
        nbformat.write(nb, target)
    return Ran(path.stem, mode, seconds, status, target)


def run_lectures(root: Path, names: list[str], mode: str | None = None, inplace: bool = False,
                 out: Path | None = None, timeout: int = 1800) -> list[Ran]:
    """Execute the chosen lectures (all when names is empty) in order, printing a line each and a table at the end."""
    lay = Layout(root)
    if mode:
        os.environ["COURSE_MODE"] = mode
    from .mode import course_mode

    mode = course_mode()
    out_dir = None if inplace else Path(out or lay.build / "lectures")
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    ran = []
    for path in select(lay.lectures, names, "*.ipynb"):
        r = run_lecture(path, None if inplace else out_dir / path.name, mode, timeout)
        ran.append(r)
        print(f"{r.name}: {r.seconds:.1f} s, {r.status} -> {r.target}", flush=True)
    print()
    print_table([(r.name, r.mode, f"{r.seconds:.1f}", r.status) for r in ran], ("lecture", "mode", "seconds", "status"))
    failed = sum(r.status != "ok" for r in ran)
    print(f"\n{len(ran)} lectures, {sum(r.seconds for r in ran):.0f} s in all, {failed} failed")
    return ran
