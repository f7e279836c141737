"""inert(): the autograded notebook the formgrader shows holds nothing that runs, loads or fetches.

The formgrader's page is made here as the formgrader makes it (nbconvert, nbgrader's formgrade template,
nothing sanitised) and parsed: the hostile notebook of `hostile_pages` has scripts, handlers, frames and
remote sources on it, its inert copy none beyond the template's own. nbgrader's metadata and checksums
survive, so "No response" is decided as before; images are re-encoded or dropped; every piece is capped and
a huge notebook is made inert, and rendered by nbconvert, within stated times.
"""
from __future__ import annotations

import base64
import copy
import json
import time
from pathlib import Path

import nbformat
import pytest
from nbformat import v4

from tests import hostile_pages

from course_utils.grader import inert as I  # noqa: E402
from course_utils.grader import record  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
A = "a01_autoencoders"
RELEASE = REPO / "assignments" / A / f"{A}.ipynb"
URL = "http://127.0.0.1:9"
PNG = hostile_pages.PNG
SECONDS = 2.0               # inert() of the adversarial notebook
PAGE_SECONDS = 20.0         # nbconvert's formgrade page of its inert copy (the caps make ~10 s the worst case)


def formgrade_html(nb: nbformat.NotebookNode) -> str:
    """The page nbgrader's formgrader serves for this autograded notebook."""
    from nbconvert.exporters import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers

    exporter = HTMLExporter(template_name="formgrade", extra_template_basedirs=[handlers.template_path])
    resources = {"assignment_id": A, "notebook_id": A, "submission_id": "x", "index": 0, "total": 1,
                 "base_url": "", "student": "mallory", "last_name": None, "first_name": None, "notebook_path": ""}
    return exporter.from_notebook_node(nb, resources=resources)[0]


@pytest.fixture(scope="module")
def release() -> nbformat.NotebookNode:
    return nbformat.read(RELEASE, as_version=4)


@pytest.fixture(scope="module")
def baseline(release) -> str:
    """The formgrader's page of the release itself: the template's own scripts, styles and links."""
    return formgrade_html(I.inert(release))


def test_the_formgrader_page_of_a_hostile_notebook_holds_nothing_active(release, baseline):
    hostile = hostile_pages.hostile_notebook(release, URL)
    raw = hostile_pages.active(formgrade_html(hostile), baseline)
    assert len(raw) > 30 and any("iframe" in p for p in raw) and any("javascript:" in p for p in raw)  # the check bites
    page = formgrade_html(I.inert(hostile))
    assert hostile_pages.active(page, baseline) == []
    assert "&lt;script&gt;document.title=&#x27;PWNED&#x27;" in page or "&lt;script&gt;document.title='PWNED'" in page
    graded = [c.metadata.nbgrader.grade_id for c in release.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert "[text/html output, shown as text]" in page and all(f'id="{g}"' in page for g in graded)   # score boxes


@pytest.mark.parametrize("text", [
    "Plain text, **bold**, `code`, a list:\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |",
    r"Math: $\frac{a}{b} > 0$, $$\sum_j \rho_j$$ and \begin{align} x &= y \\ z &= w \end{align}",
    "Links: [docs](https://pytorch.org), [mail](mailto:a@b.c), [here](#section), <= and < 5 and a<3",
    "![figure](attachment:fig.png) and [a link](attachment:fig.png)",
    "YOUR ANSWER HERE",
])
def test_markdown_without_active_constructs_is_unchanged(text):
    assert I.inert_markdown(text, {"fig.png"}) == text


@pytest.mark.parametrize("text, inert", [
    ("<script>x</script>", "< script>x< /script>"),
    ('<img src=x onerror="y">', '< img src=x onerror="y">'),
    ("<!-- c --> <?php ?> <http://x.org>", "< !-- c --> < ?php ?> < http://x.org>"),
    ("[a](javascript:x) [b]( JaVa\tScRiPt:x) [c](&#106;avascript:x) [d](<javascript:x>)",
     "[a] (javascript:x) [b] ( JaVa\tScRiPt:x) [c] (&#106;avascript:x) [d] (< javascript:x>)"),
    ("[e](data:text/html,x) [f](vbscript:x) [g](//evil.org) [h](rel.html)",
     "[e] (data:text/html,x) [f] (vbscript:x) [g] (//evil.org) [h] (rel.html)"),
    ("[r]\n\n[r]: javascript:x", "[r]\n\n[r] : javascript:x"),
    ("![t](http://evil.org/t.png) ![u][v] ![m](attachment:missing.png)",
     "! [t](http://evil.org/t.png) ! [u][v] ! [m](attachment:missing.png)"),
    (r"\begin{x} unclosed \\[ and \\( too", r"\begin {x} unclosed \\ [ and \\ ( too"),
    ("$a<b$", "$a< b$"),                                   # TeX reads both the same
])
def test_markdown_constructs_get_one_space(text, inert):
    assert I.inert_markdown(text) == inert
    assert I.inert_markdown(inert) == inert


def test_many_math_openers_are_broken_past_the_limit():
    text = r"\begin{x}a\end{x}" * (I.MAX_MATH_OPENERS + 5)
    assert I.inert_markdown(text).count(r"\begin {x}") == 5


@pytest.mark.parametrize("path", sorted((REPO / "assignments").glob("*/*.ipynb")), ids=lambda p: p.stem)
def test_release_cells_keep_their_metadata_and_answer_cells_their_checksum(path):
    from nbgrader.utils import compute_checksum

    nb = nbformat.read(path, as_version=4)
    out = I.inert(nb)
    assert [c.metadata.get("nbgrader") for c in out.cells] == [c.metadata.get("nbgrader") for c in nb.cells]
    for old, new in zip(nb.cells, out.cells):
        meta = old.metadata.get("nbgrader", {})
        if meta.get("solution"):
            assert new.source == old.source and compute_checksum(new) == meta["checksum"]
        assert new.source.replace(" ", "") == old.source.replace(" ", "")    # at most a space, e.g. `a< s`
    assert out.metadata == {k: nb.metadata[k] for k in ("kernelspec", "language_info")}


def test_no_response_is_decided_as_before(release):
    """nbgrader's rule for answer and grade cells (stored checksum == checksum now: untouched) gives the same
    answer for every such cell after inert. (A locked instruction cell with `a<s` in its math gets a space, so
    its checksum changes; nbgrader checks those only in its own autograde, which never sees this notebook.)"""
    from nbgrader.utils import compute_checksum

    def untouched(nb: nbformat.NotebookNode) -> list[bool]:
        return [c.metadata.nbgrader.get("checksum") == compute_checksum(c) for c in nb.cells
                if c.metadata.get("nbgrader", {}).get("solution") or c.metadata.get("nbgrader", {}).get("grade")]

    nb = hostile_pages.hostile_notebook(release, URL)
    gid = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")][-1].metadata.nbgrader.grade_id
    stub = next(c.source for c in release.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)
    next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid).source = stub  # left alone
    assert untouched(I.inert(nb)) == untouched(nb) and any(untouched(nb)) and not all(untouched(nb))


def test_images_are_reencoded_or_dropped():
    wrapped = "\n".join(PNG[i:i + 20] for i in range(0, len(PNG), 20))
    assert I.image_b64("image/png", wrapped) == PNG and I.image_b64("image/png", [wrapped]) == PNG
    jpeg_as_png = base64.b64encode(b"\xff\xd8\xff\xe0" + b"\0" * 20).decode()
    assert I.image_b64("image/jpeg", jpeg_as_png) == jpeg_as_png
    for mime, bad in [("image/png", jpeg_as_png), ("image/png", '"><script>x</script>'), ("image/png", PNG + "!"),
                      ("image/svg+xml", PNG), ("image/png", 12), ("image/png", base64.b64encode(
                          b"\x89PNG\r\n\x1a\n" + b"\0" * (I.MAX_IMAGE_BYTES + 1)).decode())]:
        assert I.image_b64(mime, bad) is None
    cell = v4.new_markdown_cell("![a](attachment:a.png) ![b](attachment:b.png) ![c](attachment:bad name.png)")
    cell.attachments = {"a.png": {"image/png": wrapped, "text/html": "<b>"}, "b.png": {"image/png": jpeg_as_png},
                        "bad name.png": {"image/png": PNG}}
    out = I.inert(v4.new_notebook(cells=[cell])).cells[0]
    assert out.attachments == {"a.png": {"image/png": PNG}}
    assert out.source == "![a](attachment:a.png) ! [b](attachment:b.png) ! [c](attachment:bad name.png)"
    assert 'src="data:image/png;base64,' + PNG in formgrade_html(I.inert(v4.new_notebook(cells=[cell])))


def test_a_malformed_notebook_is_made_valid_and_renders():
    """What nbconvert refuses (the formgrader then fails on the page) or interpolates unescaped."""
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"widgets": {"x": 1}, "kernelspec": {"name": ["no"]}},
          "cells": [
              {"cell_type": "code", "id": 'x"><b>', "source": ["print(1)\n", "x"], "execution_count": "<b>1</b>",
               "metadata": {"tags": ["<b>"], "nbgrader": {"grade_id": 'a"><b>', "grade": True}},
               "outputs": [{"output_type": "stream", "name": "<b>", "text": 5}, "junk",
                           {"output_type": "display_data", "data": "junk"}, {"output_type": "pwn"},
                           {"output_type": "execute_result", "data": {"text/plain": ["a", "b"]},
                            "execution_count": True},
                           {"output_type": "error", "ename": None, "traceback": "not a list"}]},
              {"cell_type": "markdown", "source": "![m](attachment:missing.png)", "attachments": "junk"},
              {"cell_type": "heading", "source": "x"}, "junk", {"cell_type": "raw"}]}
    out = I.inert(nb)
    nbformat.validate(out)
    code = out.cells[0]
    assert code.id == "cell-0" and code.execution_count is None and code.metadata == {} and code.source == "print(1)\nx"
    assert [o.get("name") or o.output_type for o in code.outputs] == [
        "stdout", "stdout", "display_data", "stdout", "execute_result", "error"]
    assert out.metadata == {} and len(out.cells) == 3
    assert "cell-0" in formgrade_html(out)                   # no InvalidNotebook for the missing attachment


def test_only_nbgrader_and_kernel_metadata_is_kept():
    cell = v4.new_code_cell("x")
    meta = {"grade": True, "grade_id": "q1", "locked": False, "points": 2, "schema_version": 3, "solution": False,
            "checksum": "0" * 32, "cell_type": "code"}
    cell.metadata = {"nbgrader": {**meta, "extra": "<b>"}, "tags": ["t"], "jupyter": {"source_hidden": True}}
    nb = v4.new_notebook(cells=[cell], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"},
                                                 "language_info": {"name": "python", "codemirror_mode": {
                                                     "name": "ipython", "version": 3}}, "widgets": {"state": 1}})
    out = I.inert(nb)
    assert out.cells[0].metadata == {"nbgrader": meta}
    assert out.metadata == {"kernelspec": {"name": "python3", "display_name": "Python 3"},
                            "language_info": {"name": "python", "codemirror_mode": {"name": "ipython", "version": 3}}}
    for bad in ({"grade_id": "a b"}, {"grade_id": "q", "points": -1}, {"grade_id": "q", "checksum": "x"}):
        cell.metadata = {"nbgrader": bad}
        assert I.inert(v4.new_notebook(cells=[cell])).cells[0].metadata == {}


@pytest.fixture(scope="module")
def adversarial(release) -> nbformat.NotebookNode:
    """The release with 1 MB of unclosed \\begin{x}, a 30 MB error, 10,000 extra cells (markdown nested deep,
    or nothing but headings), a 5 MB attachment, 150 outputs, dense ANSI colours."""
    nb = copy.deepcopy(release)
    answer = next(c for c in nb.cells if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("solution"))
    answer.source = (r"\begin{x} a " * 90_000)[:1_000_000]
    answer.attachments = {"big.png": {"image/png": base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 5_000_000).decode()}}
    code = next(c for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution"))
    code.outputs = [{"output_type": "error", "ename": "E" * 10_000, "evalue": "v" * 1_000_000,
                     "traceback": ["<b>" * 1000] * 10_000}]                       # 30 MB
    code.outputs += [{"output_type": "stream", "name": "stdout", "text": "x" * 10_000} for _ in range(150)]
    code.outputs += [{"output_type": "stream", "name": "stdout", "text": "\x1b[31mx\x1b[0m" * 100_000}]
    nested = "".join("  " * i + "- > x\n" for i in range(500)) + ">" * 5000 + "\n" + "*" * 20_000
    sources = [nested, "# h\n" * 10_000, "<b>"]
    nb.cells += [{"cell_type": "markdown", "metadata": {}, "source": sources[i % 3]} for i in range(10_000)]
    return nb


def test_caps_hold_on_an_adversarial_notebook(adversarial):
    t0 = time.perf_counter()
    out = I.inert(adversarial)
    seconds = time.perf_counter() - t0
    nbformat.validate(out)
    assert seconds < SECONDS, seconds
    text = nbformat.writes(out)
    assert len(text) < 2 * (I.MAX_NOTEBOOK_CHARS + I.MAX_NOTEBOOK_IMAGE_CHARS), len(text)
    free = [c for c in out.cells if "nbgrader" not in c.metadata]
    assert len(free) == I.MAX_FREE_CELLS and free[-1].id == I.CUT_CELL_ID and "9,801 cells" in free[-1].source
    assert sum(len(c.source) for c in out.cells if c.cell_type != "code") <= I.MAX_NOTEBOOK_MARKDOWN_CHARS
    for cell in out.cells:
        assert len(cell.source) <= (I.MAX_CODE_CHARS if cell.cell_type == "code" else I.MAX_MARKDOWN_CHARS)
        if cell.cell_type == "code":
            shown = sum(len(json.dumps(o)) for o in cell.outputs)
            assert len(cell.outputs) <= I.MAX_OUTPUTS and shown < I.MAX_CELL_OUTPUT_CHARS * 1.2, shown
    assert "cut by the grader" in text and "big.png" not in text          # 5 MB attachment over MAX_IMAGE_BYTES


def test_nbconvert_renders_the_inert_adversarial_notebook_in_bounded_time(adversarial):
    out = I.inert(adversarial)
    t0 = time.perf_counter()
    formgrade_html(out)
    seconds = time.perf_counter() - t0
    print(f"nbconvert's formgrade page of the inert adversarial notebook: {seconds:.1f} s")
    assert seconds < PAGE_SECONDS


@pytest.mark.parametrize("unit", [r"\begin{x} a ", r"\\[ a ", r"\\( a ", "[a](", "<a ", "*a _b ", "`a ``b ",
                                  "$a\\$ ", "![a](", "- > " * 3, r"\begin{x}\end{y}"])
def test_nbconvert_parses_inert_markdown_in_bounded_time(unit):
    """nbconvert's parser rescans the cell from every unclosed math opener (13 s for 108 KB): not after inert."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    source = I.inert(v4.new_notebook(cells=[v4.new_markdown_cell((unit * 100_000)[:1_000_000])])).cells[0].source
    t0 = time.perf_counter()
    markdown2html_mistune(source)
    assert time.perf_counter() - t0 < 1.0


def test_inert_is_idempotent(release, adversarial):
    for nb in (hostile_pages.hostile_notebook(release, URL), adversarial):
        once = I.inert(nb)
        assert I.inert(once) == once


def test_write_autograded_writes_the_inert_notebook(tmp_path, release):
    nb = hostile_pages.hostile_notebook(release, URL)
    path = record.write_autograded(tmp_path, A, "mallory", A, nb)
    written = nbformat.read(path, as_version=4)
    assert written == I.inert(nb) and not any("<script" in c.source for c in written.cells)
