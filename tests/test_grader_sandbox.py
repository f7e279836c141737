"""The kernel's jail: no network (not even the grading host's 127.0.0.1), no course files, a fresh folder per start."""
from __future__ import annotations

import http.server
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
    from course_utils.grader.execute import SandboxKernel

    base = Path(__import__("tempfile").mkdtemp(prefix="cg-test-"))
    kernel = SandboxKernel(base, None, 4 << 30)
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
