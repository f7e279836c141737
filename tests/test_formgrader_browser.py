"""nbgrader's real formgrader, in headless Chromium, shows a hostile submission without running or fetching anything.

A temporary course (the course's nbgrader_config.py and templates, a gradebook holding the a01 release) gets
two submissions of `hostile_pages.hostile_notebook`: mallory's written by `record.write_autograded` (inert),
eve's written as it is (the planted bug: no inert). Their gradebook rows come from `gradebook.record`, so no
kernel runs. A Jupyter server with nbgrader's extension serves the course on loopback with a token; every
payload sets `window.__pwned` / the title and requests a counting server on loopback. Mallory's page sets no
marker, the counter gets nothing, Chrome's performance log shows no request to any host but the
formgrader's, no link runs script, and "Full credit" on the written answer reaches the gradebook. Eve's page
does run or fetch, so the check can fail. Everything is bounded in time; the server is stopped in a finally.
"""
from __future__ import annotations

import http.server
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest

from tests import hostile_pages
from tests.browsers import headless_chromium

from course_utils.grader import gradebook, record  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")]
REPO = Path(__file__).resolve().parent.parent
A = "a01_autoencoders"
SERVER_START = 90           # seconds for the Jupyter server to answer
PAGE_WAIT = 5               # seconds a loaded page gets for late scripts, MathJax and requests


class Counter(http.server.BaseHTTPRequestHandler):
    """Counts every request (any method) and answers 200 with nothing."""

    hits: list[str] = []

    def _count(self) -> None:
        Counter.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_HEAD = do_OPTIONS = _count

    def log_message(self, *args) -> None:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def counter():
    """A counting HTTP server on loopback: (its URL, the list of paths requested)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", Counter.hits
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def course(tmp_path_factory, counter) -> tuple[Path, dict[str, int], str]:
    """The course folder, each student's submission notebook id, the written answer's grade_id."""
    root = tmp_path_factory.mktemp("formgrader")
    shutil.copy(REPO / "nbgrader_config.py", root)
    shutil.copytree(REPO / "course_utils" / "templates", root / "course_utils" / "templates")
    release = nbformat.read(REPO / "assignments" / A / f"{A}.ipynb", as_version=4)
    (root / "assignments" / A).mkdir(parents=True)
    nbformat.write(release, root / "assignments" / A / f"{A}.ipynb")
    (root / "grading").mkdir()
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]   # nbgrader's alembic
    metas = [(c.cell_type, c.metadata.get("nbgrader", {})) for c in release.cells]
    with gradebook.open_gradebook(root) as gb:
        gb.add_assignment(A)
        gb.add_notebook(A, A)
        for kind, m in metas:
            if m.get("grade"):
                gb.add_grade_cell(m["grade_id"], A, A, max_score=float(m["points"]), cell_type=kind)
            if m.get("solution"):
                gb.add_solution_cell(m["grade_id"], A, A)
    written = next(m["grade_id"] for kind, m in metas if kind == "markdown" and m.get("grade") and m.get("solution"))
    hostile = hostile_pages.hostile_notebook(release, counter[0])
    ids = {}
    for student in ("mallory", "eve"):
        grades = {m["grade_id"]: 0.0 for kind, m in metas if m.get("grade")} | {written: None}
        gradebook.record(root, A, student, A, grades, {})
        if student == "mallory":
            record.write_autograded(root, A, student, A, hostile)
        else:                                           # the planted bug: the notebook as the student made it
            path = record.autograded_path(root, A, student, A)
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps(hostile))
        with gradebook.open_gradebook(root) as gb:
            ids[student] = gb.find_submission_notebook(A, A, student).id
    return root, ids, written


@pytest.fixture(scope="module")
def formgrader(course, tmp_path_factory):
    """A Jupyter server with nbgrader's formgrader over the course, on loopback with a token: its base URL."""
    root = course[0]
    port, token = free_port(), secrets.token_hex(16)
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(log.parent / "runtime"))
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1",
             f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False", "--allow-root",
             f"--ServerApp.root_dir={root}"], cwd=root, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START
        while True:
            assert server.poll() is None, log.read_text()[-3000:]
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "the Jupyter server did not answer:\n" + log.read_text()[-3000:]
                time.sleep(0.5)
        yield url, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium with Chrome's performance log (every request the page makes)."""
    driver = headless_chromium(tmp_path_factory.mktemp("profile"), {"performance": "ALL"})
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def session(formgrader, browser):
    """The browser logged in to the formgrader with its token (the page's API calls need the login cookie)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, token = formgrader
    browser.get(f"{url}/login?next=/formgrader")
    field = browser.find_element(By.NAME, "password")
    field.send_keys(token)
    field.submit()
    WebDriverWait(browser, 60).until(lambda d: urlsplit(d.current_url).path.startswith("/formgrader"))
    return browser


def visit(driver, url: str) -> list[str]:
    """Open a submission's page, let it settle (MathJax, late scripts), return the URLs it requested."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("performance")                       # drop what came before
    driver.get(url)
    WebDriverWait(driver, 60).until(lambda d: d.execute_script("return document.readyState") == "complete")
    end = time.monotonic() + PAGE_WAIT
    while time.monotonic() < end and not driver.execute_script(
            "return !!(window.MathJax && MathJax.Hub && !MathJax.Hub.queue.pending && !MathJax.Hub.queue.running)"):
        time.sleep(0.2)
    time.sleep(PAGE_WAIT / 2)
    events = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
    return [m["params"]["request"]["url"] for m in events if m["method"] == "Network.requestWillBeSent"]


def marker(driver) -> object:
    """What the payloads set (None, and a title without PWNED, when none ran)."""
    return driver.execute_script("return window.__pwned || (document.title.includes('PWNED') ? 'title' : null)")


def test_the_inert_submission_runs_and_fetches_nothing_and_can_be_graded(course, counter, formgrader, session):
    root, ids, written = course
    browser, url, hits = session, formgrader[0], counter[1]
    hits.clear()
    requests = visit(browser, f"{url}/formgrader/submissions/{ids['mallory']}/")
    assert browser.execute_script("return document.getElementById(arguments[0]) !== null", written), \
        browser.page_source[:3000]                      # the page is the formgrader's, with the score box
    assert marker(browser) is None and hits == []
    # the answer's math, \href, \style and \require among it, was typeset (MathJax's Safe extension) and did nothing
    assert browser.execute_script("return document.querySelectorAll('.MathJax, .MathJax_CHTML').length")
    elsewhere = [u for u in requests if urlsplit(u).scheme not in ("data", "blob", "about", "chrome")
                 and urlsplit(u).netloc != urlsplit(url).netloc]
    assert elsewhere == [] and any("/static/jupyter_server_mathjax/" in u for u in requests), requests
    assert browser.execute_script(
        "return [...document.querySelectorAll('a[href]')].filter(a => !/^(https?:|mailto:|#|attachment:)/i"
        ".test(a.getAttribute('href').trim()) && !a.href.startsWith(location.origin)).length") == 0
    browser.execute_script("document.getElementById(arguments[0]).closest('.nbgrader_cell')"
                           ".querySelector('.full-credit').click()", written)
    deadline = time.monotonic() + 30
    while gradebook.auto_scores(root, A, "mallory")[written][1] is None:
        assert time.monotonic() < deadline, "the formgrader's Full credit did not reach the gradebook"
        time.sleep(0.3)
    points = next(float(c.metadata.nbgrader.points) for c in nbformat.read(
        record.autograded_path(root, A, "mallory", A), as_version=4).cells
        if c.metadata.get("nbgrader", {}).get("grade_id") == written)
    assert gradebook.auto_scores(root, A, "mallory")[written][1] == points


def test_without_inert_the_same_submission_runs_or_fetches(course, counter, formgrader, session):
    """The planted bug is caught: the notebook as the student made it attacks the TA's page."""
    _, ids, _ = course
    browser, url, hits = session, formgrader[0], counter[1]
    hits.clear()
    requests = visit(browser, f"{url}/formgrader/submissions/{ids['eve']}/")
    assert marker(browser) is not None and hits, (marker(browser), hits)
    assert any(urlsplit(u).netloc == urlsplit(counter[0]).netloc for u in requests)
