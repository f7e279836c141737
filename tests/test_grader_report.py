"""Feedback pages from a hand-built results record + autograded notebook + gradebook (no kernels).

Student HTML/JS in outputs, markdown and case messages is shown as text; nothing of the hidden cases or the
run seed reaches the page; math is typeset by the MathJax copied next to it (no network); only stale pages
are rewritten. Rendering is bounded: adversarial notebooks and records
render within PAGE_BOUND seconds and MAX_PAGE_CHARS, a page past its time or size is plain text. The browser
check (headless Chromium) is marked slow.
"""
import base64
import html
import json
import re
import time
from pathlib import Path
from typing import Callable

import nbformat
import pytest

from tests import gradebooks as gb
from tests.browsers import headless_chromium

from course_utils.grader import report  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")  # nbgrader's add_submission
REPO = Path(__file__).resolve().parent.parent
A = "a01_autoencoders"
RELEASE = REPO / "assignments" / A / f"{A}.ipynb"
SEED = 7_316_024_883_190_575_123
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082")).decode()
STREAM = "<script>document.title='pwned-stream'</script>"
HTML_OUT = "<script>document.title='pwned-html'</script><b>bold</b>"
ERROR = "<script>document.title='pwned-error'</script>"
CASE = "<script>document.title='pwned-case'</script>"
ANSWER = r"""By the chain rule $\frac{\partial}{\partial \hat\rho_j} \mathrm{KL} = -\frac{\rho}{\hat\rho_j} +
\frac{1-\rho}{1-\hat\rho_j}$, and

$$\sum_{j=1}^{s_2} \rho \log \frac{\rho}{\hat{\rho}_j}$$

<script>document.title='pwned-md'</script> <img src=x onerror="document.title='pwned-img'">
![tracker](http://example.com/t.png) [click](javascript:document.title='pwned-link')"""


def release_cells(nb: nbformat.NotebookNode) -> tuple[list[tuple[str, float, bool]], tuple[str, ...]]:
    """Graded cells (name, points, by hand) and answer cells of a release notebook, for the gradebook."""
    metas = [(c.cell_type, c.metadata.get("nbgrader", {})) for c in nb.cells]
    graded = [(m["grade_id"], float(m["points"]), kind == "markdown") for kind, m in metas if m.get("grade")]
    return graded, tuple(m["grade_id"] for _, m in metas if m.get("solution"))


def autograded_notebook() -> nbformat.NotebookNode:
    """The release with a student's answers and hostile outputs, as `course grade` writes it."""
    nb = nbformat.read(RELEASE, as_version=4)
    cells = {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}
    cells["sizes"].source = "def conv_out(d, f, s=1, p=0):\n    print('<b>not bold</b>')\n    return (d - f) // s"
    cells["sizes"].outputs = [nbformat.v4.new_output("stream", name="stdout", text=STREAM + "\n")]
    cells["max_unpool"].outputs = [
        nbformat.v4.new_output("display_data", data={"text/html": HTML_OUT}),
        nbformat.v4.new_output("execute_result", data={"image/png": PNG, "text/plain": "<Figure>"}, execution_count=3),
        nbformat.v4.new_output("display_data", data={"image/png": '"><script>x</script>'}),
        nbformat.v4.new_output("error", ename="ValueError", evalue=ERROR,
                               traceback=["\x1b[0;31mValueError\x1b[0m: " + ERROR])]
    cells["p4_answer"].source = ANSWER
    return nb


def record(**extra) -> dict:
    """A results record in the documented format (+ keys a page must never show)."""
    case = {"grade_id": "test_max_unpool", "case": "unpool_random_planes", "draw": 1, "passed": False,
            "points": 0.0, "max_points": 1.0, "call": "max_unpool(tensor(2, 3, 4, 3), tensor(2, 3, 4, 3), (8, 6))",
            "message": "output: 3 of 96 values differ; worst at index (0, 1, 2, 3): got 0.5, expected 1.25 " + CASE}
    ok = {"grade_id": "test_sizes_formulas", "case": "conv_and_transpose_sizes", "draw": 0, "passed": True,
          "points": 1.0, "max_points": 1.0, "call": "conv_out(17, 3, 2, 1)", "message": ""}
    return {"student": "alice", "assignment": A, "graded_at": "2026-12-02T14:00:00+00:00",
            "submission_sha256": "ab" * 32, "status": "ok*", "notes": ["kernel restarted once"],
            "cases": [ok, case], "cells": [{"index": 9, "grade_id": "max_unpool", "status": "error"}], **extra}


def write_graded(root: Path, student: str, rec: dict, nb: nbformat.NotebookNode | None) -> None:
    """Put a record (and an autograded notebook) where `course grade` writes them."""
    path = root / "grading" / "results" / A / f"{student}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec))
    if nb is not None:
        out = root / "autograded" / student / A / f"{A}.ipynb"
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)


@pytest.fixture(scope="module")
def empty_gradebook(tmp_path_factory) -> Path:
    """A new gradebook file, made once for the module."""
    return gb.new_gradebook(tmp_path_factory.mktemp("gradebook") / "gradebook.db")


@pytest.fixture()
def course(tmp_path, empty_gradebook):
    """a01 released in the gradebook; alice autograded (5/16, derivation graded by hand) with hostile content."""
    gb.make_course(tmp_path, empty_gradebook, [A])
    graded, answers = release_cells(nbformat.read(RELEASE, as_version=4))
    gb.release(tmp_path, A, graded, answers)
    gb.autograde(tmp_path, A, "alice", {"test_sizes_formulas": 1, "test_trace_shapes": 2, "test_max_unpool": 0,
                                        "test_kl_sparsity": 2, "test_anomaly_scores": 0, "test_roc_auc": 0,
                                        "test_project_to_ball": 0}, {"anomaly": "No response."})
    gb.manual_grade(tmp_path, A, "alice", "p4_answer", 3,
                    "Right idea <script>document.title='pwned-comment'</script>; the sign of the second term?")
    write_graded(tmp_path, "alice", record(run_seed=SEED), autograded_notebook())
    return tmp_path


@pytest.fixture()
def page(course) -> tuple[Path, str]:
    """alice's feedback page, written once."""
    assert report.write_feedback(course, A) == 1
    path = report.feedback_path(course, A, "alice", A)
    return path, path.read_text()


def test_script_in_outputs_markdown_comments_and_case_messages_is_text(page):
    _, text = page
    assert len(re.findall(r"<script\b", text)) == 2          # the MathJax configuration and MathJax itself
    for payload in (STREAM, ERROR, CASE, "<script>document.title='pwned-html'</script>"):
        assert payload not in text and report.esc(payload) in text
    # markdown is made inert first (`< script>`: text), then rendered with raw HTML escaped
    assert "<script>document.title='pwned-md'" not in text and "&lt; script&gt;document.title='pwned-md'" in text
    assert "pwned-comment" in text and "<script>document.title='pwned-comment'" not in text
    assert "<img src=x" not in text and "&lt; img src=x onerror=" in text
    assert 'href="javascript:' not in text and not re.search(r'<img[^>]*src="(https?:)?//', text)
    assert "<b>bold</b>" not in text and "&lt;b&gt;bold&lt;/b&gt;" in text
    assert "\x1b[" not in text and f"data:image/png;base64,{PNG}" in text and "x</script>" not in text


def test_no_hidden_source_or_run_seed(page):
    _, text = page
    assert str(SEED) not in text and "run_seed" not in text
    released = RELEASE.read_text()
    hidden = [line.strip() for line in (REPO / "cases" / f"{A}.py").read_text().splitlines()
              if len(line.strip()) >= 30 and line.strip() not in released]
    assert len(hidden) > 20
    leaked = [line for line in hidden if line in text or report.esc(line) in text]
    assert leaked == []


def test_points_cases_manual_grades_and_comments(page):
    _, text = page
    assert "Total <span class=\"badge\">8 / 20</span>" in text          # 1 + 2 + 2 autograded + 3 by hand
    assert "3 / 4 (graded by hand)" in text and "No response." in text
    assert "&#10003; conv_and_transpose_sizes[0] 1 / 1" in text
    assert "&#10007; unpool_random_planes[1] 0 / 1" in text and "got 0.5, expected 1.25" in text
    assert "this cell: error" in text and "kernel restarted once" in text and "ok*" in text


def test_math_is_typeset_by_local_files_only(page):
    path, text = page
    refs = re.findall(r'<(?:script|img|link|iframe|source|video|audio)\b[^>]*\b(?:src|href)="([^"]*)"', text)
    assert refs and all(r.startswith("data:image/") or (path.parent / r).is_file() for r in refs), refs
    assert not re.search(r"<(?!a )[^>]*\b(src|href)=\"(https?:)?//", text)    # nothing loaded (a link may point out)
    assert (path.parent / "mathjax" / "ui" / "safe.js").is_file()
    assert r"$\frac{\partial}{\partial \hat\rho_j} \mathrm{KL}" in text and "tex2jax_process" in text


def test_only_missing_or_stale_pages_are_written(course, page):
    path, _ = page
    assert report.write_feedback(course, A) == 0                        # nothing changed
    gb.manual_grade(course, A, "alice", "p4_answer", 4)
    assert report.write_feedback(course, A) == 1 and "4 / 4 (graded by hand)" in path.read_text()
    write_graded(course, "alice", record(notes=["graded again"]), None)
    write_graded(course, "bob", {**record(), "student": "bob", "status": "zero", "cases": [], "cells": [],
                                 "notes": ["corrupt notebook <script>x</script>"]}, None)
    assert report.write_feedback(course, A) == 2                        # alice's newer record, bob's first page
    assert "graded again" in path.read_text()
    bob = report.feedback_path(course, A, "bob", A).read_text()
    assert "No notebook could be graded" in bob and "&lt;script&gt;x&lt;/script&gt;" in bob
    assert report.write_feedback(course, A, ["alice", "carol"]) == 1    # named students: written again


@pytest.mark.slow
def test_math_renders_offline_and_no_script_runs_in_a_browser(page, tmp_path):
    """Headless Chromium opens the page from disk: MathJax typesets the math, nothing is fetched from a network,
    no student script runs (scripts/setup-browser installs Chromium)."""
    driver = headless_chromium(tmp_path / "profile", {"performance": "ALL"})
    from selenium.webdriver.support.ui import WebDriverWait

    path, _ = page
    try:
        driver.get(path.as_uri())
        WebDriverWait(driver, 60).until(lambda d: d.execute_script(
            "return document.querySelectorAll('mjx-container svg').length"))
        math = driver.execute_script("return document.querySelectorAll('.tex2jax_process mjx-container').length")
        outside = driver.execute_script("return document.querySelectorAll('pre mjx-container').length")
        assert math >= 2 and outside == 0
        assert driver.title == f"{A}: alice"                           # no pwned-* script ran
        requests = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
        urls = [m["params"]["request"]["url"] for m in requests if m["method"] == "Network.requestWillBeSent"]
        assert any(u.endswith("mathjax/ui/safe.js") for u in urls), urls
        assert all(u.startswith(("file:", "data:", "chrome:")) for u in urls), urls   # chrome: the new-tab page
    finally:
        driver.quit()


# ---------------------------------------------------------------- rendering is bounded

PAGE_BOUND = 2.0            # seconds to render one adversarial page (report.PAGE_SECONDS is 1 s; ~0.3 s more at most)


def adversarial_notebooks() -> dict[str, Callable[[], dict]]:
    """Notebooks built to make a renderer slow or a page huge (plain dicts: nbformat would refuse some)."""
    def nb(cells: list[dict]) -> dict:
        return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}

    def md(source: str, **extra) -> dict:
        return {"cell_type": "markdown", "metadata": {}, "source": source, **extra}

    def code(outputs: list[dict]) -> dict:
        return {"cell_type": "code", "metadata": {}, "source": "x", "execution_count": 1, "outputs": outputs}

    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 1_500_000).decode()     # 2 MB of base64
    return {
        "1 MB of unclosed begin": lambda: nb([md((r"\begin{x} a" + "\n") * 90_000)]),
        "1 MB of unclosed $ and $$": lambda: nb([md("$a $$b \\$ " * 100_000)]),
        "30 MB error": lambda: nb([code([{"output_type": "error", "ename": "E", "evalue": "v" * 1_000_000,
                                          "traceback": ["\x1b[31m<b>x</b>\x1b[0m" * 100] * 15_000}])]),
        "deep lists and quotes": lambda: nb([md("".join("  " * i + "- > " * 3 + "x\n" for i in range(20_000)))]),
        "10,000 cells": lambda: nb([md(f"**{i}** $x_{i}$") if i % 2 else code([{
            "output_type": "stream", "name": "stdout", "text": "y\n" * 50}]) for i in range(10_000)]),
        "huge attachments": lambda: nb([md("![a](attachment:a.png)" * 50, attachments={
            f"a{i}.png" if i else "a.png": {"image/png": png} for i in range(5)}) for _ in range(4)]),   # 40 MB
        "many images": lambda: nb([code([{"output_type": "display_data", "metadata": {},
                                          "data": {"image/png": png}}] * 15)]),                       # 30 MB
    }


@pytest.mark.parametrize("name", list(adversarial_notebooks()))
def test_an_adversarial_page_renders_in_bounded_time_and_size(name):
    nb = adversarial_notebooks()[name]()
    t0 = time.perf_counter()
    text = report.render_page(record(), nb, {}, "ab" * 32, True)
    seconds = time.perf_counter() - t0
    assert seconds < PAGE_BOUND and len(text) <= report.MAX_PAGE_CHARS, (seconds, len(text))
    assert text.count("<script") <= 2                                   # MathJax's, or none on a plain page


def test_an_adversarial_record_renders_in_bounded_size():
    huge = {**record(), "notes": ["<blink>" * 200_000] * 1000,
            "cases": [{**record()["cases"][1], "message": "m" * 1_000_000, "call": "c" * 1_000_000}] * 50_000}
    t0 = time.perf_counter()
    text = report.render_page(huge, None, {}, "ab" * 32, True)
    assert time.perf_counter() - t0 < PAGE_BOUND and len(text) <= report.MAX_PAGE_CHARS
    assert "<blink>" not in text and text.count("<li class=") == report.MAX_CASE_LINES


def test_a_page_past_its_time_is_plain_text_and_tried_again(monkeypatch, course):
    monkeypatch.setattr(report, "PAGE_SECONDS", 0.0)
    text = report.render_page(record(), autograded_notebook(), {}, "ab" * 32, True)
    assert "shown as plain text below: it took more than 0 s to render" in text and "<script" not in text
    assert 'content="retry"' in text                                   # no fingerprint: stale at the next run
    assert html.escape(HTML_OUT, quote=False) in text and "test_max_unpool" in text   # summary, notebook as text
    assert report.write_feedback(course, A) == 1
    assert report.current_fingerprint(report.feedback_path(course, A, "alice", A)) is None
    assert report.write_feedback(course, A) == 1                        # tried again


def test_a_page_past_its_size_is_plain_text(monkeypatch):
    monkeypatch.setattr(report, "MAX_PAGE_CHARS", 20_000)
    text = report.render_page(record(), autograded_notebook(), {}, "ab" * 32, True)
    assert "shown as plain text below: it would be more than 20,000 characters long" in text
    assert 'content="' + "ab" * 32 in text and "<script" not in text


def test_math_spans_are_found_in_linear_time():
    text = r"$a$ $$b$$ \begin{align}c\end{align} $ unclosed \begin{x} $d$ " + r"\begin{y}" * 200_000
    t0 = time.perf_counter()
    spans = report.math_spans(text)
    assert time.perf_counter() - t0 < 1.0
    assert [text[s:e] for s, e in spans][:3] == ["$a$", "$$b$$", r"\begin{align}c\end{align}"]
    assert report.math_spans("$a\n\nb$ $$c\n\nd$$") == [(7, 15)]      # inline math stays in its paragraph
