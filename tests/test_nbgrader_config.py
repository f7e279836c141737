"""nbgrader_config.py: an exchange the formgrader can use, and MathJax that works without internet."""
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from traitlets.config.loader import PyFileConfigLoader

ROOT = Path(__file__).resolve().parents[1]
LOCAL_MATHJAX = "/static/jupyter_server_mathjax/MathJax.js"


@pytest.fixture
def course(tmp_path):
    """A copy of the course's nbgrader configuration (and its templates) in a fresh folder."""
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    shutil.copytree(ROOT / "course_utils" / "templates", tmp_path / "course_utils" / "templates")
    return tmp_path


def load(folder: Path):
    """The configuration exactly as nbgrader loads it."""
    return PyFileConfigLoader("nbgrader_config.py", path=str(folder)).load_config()


def test_exchange_in_the_course_folder_is_created_and_usable(course):
    from nbgrader.apps.api import NbGraderAPI

    cfg = load(course)
    assert cfg.Exchange.root == str(course / "exchange") and (course / "exchange").is_dir()
    api = NbGraderAPI(config=cfg)
    assert not api.exchange_missing and api.exchange_is_functional


def test_formgrader_and_feedback_templates_load_the_served_mathjax(course):
    from nbconvert.exporters import HTMLExporter

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("$\\mathbb{E}[x^2]$")]
    cfg = load(course)
    nbgrader = Path(cfg.HTMLExporter.extra_template_basedirs[-1]).parent
    cfg.HTMLExporter.extra_template_paths = [str(nbgrader / "static/node_modules/bootstrap/dist/css")]  # as nbgrader
    for template in ("feedback", "formgrade"):
        cfg.HTMLExporter.template_name = template
        resources = {"base_url": "", "index": 0, "total": 1, "notebook_id": "a01", "assignment_id": "a01",
                     "nbgrader": {"notebook": "a01", "score": 1, "max_score": 2, "late_penalty": 0}}
        html, _ = HTMLExporter(config=cfg).from_notebook_node(nb, resources=resources)
        assert LOCAL_MATHJAX in html and "base_url" in html, template
        assert 'src="https://cdnjs' not in html, "the CDN is only a fallback for pages opened from disk"
        assert "MathJax.Hub.Config" in html, "nbconvert's MathJax configuration is kept"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_jupyter_server_with_nbgrader_is_quiet_and_serves_mathjax(course, tmp_path_factory):
    """Start jupyter server headless for a few seconds: no exchange warning, MathJax served locally."""
    port, log = free_port(), tmp_path_factory.mktemp("log") / "server.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1",
             "--IdentityProvider.token=", "--ServerApp.open_browser=False", "--allow-root", f"--ServerApp.root_dir={course}"],
            cwd=course, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            assert server.poll() is None, log.read_text()[-3000:]
            try:
                urllib.request.urlopen(url + "/api/status", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        page = urllib.request.urlopen(url + "/formgrader/manage_assignments", timeout=30).read().decode()
        assert "Manage Assignments" in page and "warning-exchange" not in page
        mathjax = urllib.request.urlopen(url + LOCAL_MATHJAX, timeout=30)
        assert mathjax.status == 200 and b'MathJax.version="2.7' in mathjax.read()
        urllib.request.urlopen(url + "/formgrader/api/assignments", timeout=30).read()
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = log.read_text()
    assert "Unwritable directory" not in text and "does not exist" not in text, text[-3000:]
    assert (course / "exchange").is_dir()
