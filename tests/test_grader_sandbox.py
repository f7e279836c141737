"""The kernel's jail: no network (not even the grading host's 127.0.0.1), no course files, a fresh folder per start."""
from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from course_utils.grader import sandbox

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def host_server():
    """An HTTP server on the grading host's loopback; yields its port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def launch(workdir: Path, code: str, *extra: str) -> subprocess.CompletedProcess:
    """Run `python -c code` through the launcher."""
    return subprocess.run([sys.executable, "-I", sandbox.__file__, "--workdir", str(workdir), "--memory", str(4 << 30),
                           *extra, "--",
                           sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_launcher_refuses_folders_it_did_not_make(tmp_path: Path) -> None:
    """Never run in (or hand to the kernel's uid) a folder without the marker, such as /tmp."""
    for folder in ("/tmp", str(tmp_path)):
        proc = launch(Path(folder), "print('ran')")
        assert proc.returncode == 2 and "ran" not in proc.stdout, proc.stderr


PROBE = """
import os, socket, urllib.request
try:
    urllib.request.urlopen("http://127.0.0.1:{port}", timeout=5)
    print("host reached")
except OSError as e:
    print("host unreachable:", type(e).__name__)
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen()
socket.create_connection(server.getsockname(), timeout=5).close()
print("loopback works")
print("interfaces", sorted(name for _, name in socket.if_nameindex()))
print("uid", os.getuid())
for path in {paths!r}:
    print("exists" if os.path.exists(path) else "absent", path)
"""


def test_sandbox_has_loopback_only_and_no_course_files(tmp_path: Path, host_server: int) -> None:
    """urlopen of a server on the host's 127.0.0.1 fails inside; the sandbox's own loopback works."""
    work = tmp_path / "work"
    work.mkdir()
    (work / sandbox.MARKER).touch()
    (tmp_path / "secret.txt").write_text("next to the working folder on the host")
    secret = [str(ROOT / "solutions"), str(ROOT / "cases"), str(ROOT / "nbgrader_config.py"), str(tmp_path / "secret.txt")]
    assert all(Path(p).exists() for p in secret)
    import urllib.request

    assert urllib.request.urlopen(f"http://127.0.0.1:{host_server}", timeout=10).status == 200   # reachable here
    proc = launch(work, PROBE.format(port=host_server, paths=secret), "--keep", str(ROOT / "course_utils"))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "host unreachable: URLError" in out and "host reached" not in out, out
    assert "loopback works" in out and "interfaces ['lo']" in out, out
    assert "uid 0" not in out, out
    assert all(f"absent {p}" in out for p in secret), out


@pytest.mark.slow
def test_kernel_talks_over_ipc_and_restarts_in_a_fresh_folder(tmp_path: Path) -> None:
    """A sandboxed kernel answers over ipc sockets; after a restart, what the student planted is gone."""
    from course_utils.grader.execute import Limits, SandboxKernel

    base = Path(__import__("tempfile").mkdtemp(prefix="cg-test-"))
    kernel = SandboxKernel(base, None, Limits(memory=4 << 30))
    kernel.start()
    try:
        plant = ("import os\nos.makedirs('course_utils', exist_ok=True)\n"
                 "open('course_utils/__init__.py', 'w').write('PLANTED = True')\nopen('note.txt', 'w').write('x')\n"
                 "def add(a, b):\n    return a + b\n")
        assert kernel.run(plant, 60).status == "ok"
        answer = kernel.ask({"op": "call", "target": "add", "args": {"l": [2, 3]}}, 60)
        assert answer.ok and answer.out == 5
        assert kernel.run("import os; os._exit(0)", 60).status == "died"
        kernel.restart()
        run = kernel.run("import os, course_utils\nprint(sorted(os.listdir('.')), hasattr(course_utils, 'PLANTED'))", 60)
        assert run.status == "ok", run.evalue
        text = "".join(o.get("text", "") for o in run.outputs)
        assert "note.txt" not in text and "'course_utils'" not in text and text.strip().endswith("False"), text
    finally:
        kernel.shutdown()
        import shutil

        shutil.rmtree(base, ignore_errors=True)


FORK_HOG = """
import os, time
kids = []
for i in range(4):
    pid = os.fork()
    if pid == 0:
        block = bytearray(700 << 20)
        for j in range(0, len(block), 4096):
            block[j] = 1
        time.sleep(2)
        os._exit(0)
    kids.append(pid)
print("exits", sorted(os.waitstatus_to_exitcode(os.waitpid(k, 0)[1]) for k in kids))
"""
DISK_HOG = """
n = 0
try:
    for i in range(100):
        with open(f"f{i}.bin", "wb") as f:
            f.write(b"x" * (8 << 20))
        n += 8
except OSError as e:
    print("stopped at", n, "MB:", type(e).__name__)
"""
FORK_BOMB = """
import os, time
made = 0
try:
    for i in range(200):
        if os.fork() == 0:
            time.sleep(5)
            os._exit(0)
        made += 1
except OSError as e:
    print("forks", made, type(e).__name__)
"""


@pytest.mark.slow
@pytest.mark.skipif(not sandbox.cgroup_dirs("probe"), reason="no cgroup hierarchy on this machine")
def test_limits_hold_for_the_whole_sandbox_not_per_process(tmp_path: Path) -> None:
    """Four children of 700 MB under a 2 GB sandbox: the sandbox's peak stays at 2 GB and some child is killed;
    the working folder is a tmpfs of its --disk size; the process count holds for all processes together."""
    import tempfile

    from course_utils.grader.execute import Limits, SandboxKernel

    base = Path(tempfile.mkdtemp(prefix="cg-test-"))
    kernel = SandboxKernel(base, None, Limits(memory=2 << 30, disk=64 << 20, pids=40))
    kernel.start()
    try:
        run = kernel.run(FORK_HOG, 120)
        text = "".join(o.get("text", "") for o in run.outputs)
        assert run.status == "died" or "-9" in text, text          # the OOM killer took a child (or the kernel)
        name = kernel.cgroup()
        assert sandbox.cgroup_peak(name) <= 2 << 30
        kernel.restart()
        run = kernel.run(DISK_HOG, 120)
        text = "".join(o.get("text", "") for o in run.outputs)
        assert kernel.quota and "stopped at" in text and int(text.split()[2]) <= 64, text
        run = kernel.run(FORK_BOMB, 120)
        text = "".join(o.get("text", "") for o in run.outputs)
        assert "forks" in text and int(text.split()[1]) < 40, text
    finally:
        kernel.shutdown()
        import shutil

        shutil.rmtree(base, ignore_errors=True)
    assert not any(os.path.exists(d) for d in sandbox.cgroup_dirs(name))


@pytest.mark.slow
def test_the_sandbox_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    """Kill the launcher's parent: the launcher and everything in the sandbox are gone (PR_SET_PDEATHSIG)."""
    import signal
    import time

    work = tmp_path / "w"
    work.mkdir()
    (work / sandbox.MARKER).touch()
    pidfile = work / "pid"
    code = f"import os, time\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)"
    argv = [sys.executable, "-I", sandbox.__file__, "--workdir", str(work), "--memory", str(2 << 30), "--",
            sys.executable, "-c", code]
    parent = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time\n"
                               f"p = subprocess.Popen({argv!r})\nprint(p.pid, flush=True)\ntime.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    launcher = int(parent.stdout.readline())
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text():
            break
        time.sleep(0.1)
    assert pidfile.read_text(), "the sandboxed process did not start"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    for _ in range(50):
        if not os.path.exists(f"/proc/{launcher}") or open(f"/proc/{launcher}/stat").read().split()[2] == "Z":
            break
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{launcher}") or open(f"/proc/{launcher}/stat").read().split()[2] == "Z"
