"""Feedback HTML per student: what each hidden case checked and what differed, the notebook, manual grades.

A page is built here from plain data only: the results record (`record.py`), the autograded notebook made
inert (`inert.py`, whatever is on disk) and the gradebook (scores typed in the formgrader, comments). Nothing
of the hidden cases is on it beyond the record's case name, call and message, and never the run seed. Every
piece of student text (source, outputs, exception and case messages, markdown) is HTML-escaped: markdown is
rendered by mistune with raw HTML escaped, links with a harmful protocol dropped, images only from the cell's
own attachments; outputs show their text (an HTML output shows its source as text), images only as
re-encoded base64 PNG/JPEG/GIF. Math in markdown is typeset in the browser by MathJax 3 copied next to the
page (`mathjax/`, from the django-static-mathjax wheel, with MathJax's `safe` extension), so the page needs
no network: hand out the whole `feedback/<student>/<assignment>/` folder.

Rendering is bounded. Every piece of the notebook is cut by inert's caps (a markdown cell, a code cell, a
cell's outputs with its errors and tracebacks, the notebook); here each record text is cut to
MAX_MESSAGE_CHARS and at most MAX_CASE_LINES cases are listed. Math is kept away from markdown by
`math_spans`, a linear scan (each `$`, `$$` or `\\begin{env}` opener looks up its closer, at most
MAX_MATH_CHARS on, in a precomputed index), never by a regex that rescans the rest of the cell from every
unclosed opener (nbconvert's: 13.5 s for 108 KB of unclosed `\\begin{x}`). A page that takes more than
PAGE_SECONDS (checked before every cell and output) or grows past MAX_PAGE_CHARS is written instead as the
summary and the notebook as escaped plain text (at most MAX_PLAIN_CHARS), saying why; one that ran out of
time carries no fingerprint, so the next `write_feedback` tries it again.

A page carries a fingerprint of what it was made from; `write_feedback` rewrites the pages of every graded
student whose record, notebook or gradebook rows changed since (so students graded before an interrupted
run, or graded by hand since, get feedback at the next call).
"""
from __future__ import annotations

import hashlib
import html
import json
import os
import re
import secrets
import shutil
import time
from bisect import bisect_left
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any, Callable

import nbformat

from ..layout import atomic_write
from .gradebook import GRADEBOOK, open_gradebook
from .inert import CUT_CELL_ID, IMAGE_TYPES, clip, cut, image_b64, inert
from .record import RESULTS, autograded_path, read_record

FEEDBACK = Path("feedback")
MATHJAX_DIR = "mathjax"                              # next to the page
MATHJAX_FILES = ("tex-svg-full.js", "ui/safe.js")    # one-file TeX + SVG (no fonts to fetch), URL filter
TEXT_TYPES = ("text/plain", "text/html", "text/markdown", "text/latex", "application/json")
FORMAT = "2"                                         # part of the fingerprint: bump when the page changes
PAGE_SECONDS = 1.0         # to render one page (an honest a01 page takes 0.04 s); past it, the plain-text page
MAX_PAGE_CHARS = 10_000_000   # one page; past it, the plain-text page
MAX_PLAIN_CHARS = 1_000_000   # the notebook's text on a plain-text page (escaped: at most ~5 MB)
MAX_MESSAGE_CHARS = 1_000     # one note, case message, call or comment from the record or gradebook
MAX_CASE_LINES = 1_000        # cases listed on a page (a suite has tens)
MAX_MATH_CHARS = 10_000       # one math span kept away from markdown; a longer one is rendered as markdown
MARKDOWN_PLUGINS = ("strikethrough", "table", "url", "task_lists", "def_list")   # nbconvert's, math aside
MATH_TOKEN = re.compile(r"(?<!\\)\$\$?|\\(begin|end)\{([A-Za-z]*\*?)\}")
BLANK_LINE = re.compile(r"\n[ \t]*\n")
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
FINGERPRINT = re.compile(r'<meta name="course-feedback" content="([0-9a-f]{64})">')
STYLE = """
body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}
.pass{color:#176b2c}.fail{color:#b3261e}.pending{color:#8a5a00}
.cell{border-left:3px solid #ddd;margin:1rem 0;padding:.2rem .8rem}.cell.graded{border-color:#3b6bd6}
pre{background:#f6f8fa;padding:.5rem;overflow-x:auto;white-space:pre-wrap;word-break:break-word}
pre.err{background:#fdecea}.badge{font-weight:600}.comment{background:#fff8e1;padding:.3rem .6rem}
ul.cases{list-style:none;padding-left:1rem}img{max-width:100%}
"""
MATHJAX_CONFIG = """window.MathJax = {
  loader: {load: ['ui/safe']},
  tex: {inlineMath: [['$', '$'], ['\\\\(', '\\\\)']], processEscapes: true,
        packages: {'[-]': ['require', 'autoload']}},
  options: {ignoreHtmlClass: 'tex2jax_ignore', processHtmlClass: 'tex2jax_process', enableMenu: false},
  svg: {fontCache: 'global'}
};"""


@dataclass(frozen=True)
class CellGrade:
    """One graded cell of one submission as the gradebook holds it."""

    name: str
    max_score: float
    score: float | None          # None: waiting for manual grading
    by_hand: bool                # a TA's score (manual_score) is in
    comment: str | None          # the TA's comment, else the autograder's


def feedback_path(root: Path, assignment: str, student: str, notebook: str) -> Path:
    """feedback/<student>/<assignment>/<notebook>.html (nbgrader's layout)."""
    return Path(root) / FEEDBACK / student / assignment / f"{notebook}.html"


def read_grades(root: Path, assignment: str, students: list[str]) -> dict[str, dict[str, CellGrade]]:
    """student -> graded cell -> CellGrade, with comments keyed by their cell name ({} for no submission)."""
    from nbgrader.api import MissingEntry

    out: dict[str, dict[str, CellGrade]] = {}
    if not (Path(root) / GRADEBOOK).is_file():
        return {s: {} for s in students}
    with open_gradebook(root) as gb:
        for s in students:
            try:
                sub = gb.find_submission(assignment, s)
            except MissingEntry:
                out[s] = {}
                continue
            comments = {c.name: c.comment for nb in sub.notebooks for c in nb.comments}
            cells = {}
            for nb in sub.notebooks:
                for g in nb.grades:
                    pending = g.needs_manual_grade and g.manual_score is None
                    cells[g.name] = CellGrade(g.name, float(g.max_score), None if pending else float(g.score),
                                              g.manual_score is not None, comments.pop(g.name, None))
            cells.update({name: CellGrade(name, 0.0, None, False, text) for name, text in comments.items() if text})
            out[s] = cells
    return out


# ---------------------------------------------------------------- pieces of a page

class PageLimit(Exception):
    """A page went past MAX_PAGE_CHARS (or PAGE_SECONDS: PageTimeout); the message says which."""


class PageTimeout(PageLimit):
    """A page went past PAGE_SECONDS (another try may make it: the machine may have been busy)."""


class Deadline:
    """PAGE_SECONDS from now; `check` raises PageTimeout once they are up."""

    def __init__(self, seconds: float | None = None):
        self.seconds = PAGE_SECONDS if seconds is None else seconds
        self.end = time.monotonic() + self.seconds

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise PageTimeout(f"it took more than {self.seconds:g} s to render")


def esc(text: object) -> str:
    """HTML-escape any value (quotes too)."""
    return html.escape(str(text), quote=True)


def plain_text(value: object) -> str:
    """Notebook text (a string or a list of lines) without ANSI colour codes."""
    text = "".join(value) if isinstance(value, list) else str(value)
    return ANSI.sub("", text)


def message(value: object) -> str:
    """A text from the record or the gradebook, cut to MAX_MESSAGE_CHARS and escaped."""
    return esc(clip(value, MAX_MESSAGE_CHARS))


def data_uri(mime: str, payload: object) -> str | None:
    """A data: URI of a base64 image, re-encoded so nothing but base64 reaches the page; None if it is not one."""
    b64 = image_b64(mime, payload)
    return f"data:{mime};base64,{b64}" if b64 else None


def math_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every `$..$`, `$$..$$` and `\\begin{env}..\\end{env}` in text, left to right, each at
    most MAX_MATH_CHARS long (`$..$` within one paragraph). Linear: every opener finds its closer by bisection
    in an index of the closers, so an unclosed opener costs one look-up, not a scan of the rest."""
    tokens = [(m.start(), m.end(), m.group(0) if m.group(0)[0] == "$" else f"{m.group(1)}:{m.group(2)}")
              for m in MATH_TOKEN.finditer(text)]
    where: dict[str, list[int]] = {}                 # token -> its indices in tokens
    for i, (_, _, token) in enumerate(tokens):
        where.setdefault(token, []).append(i)
    blanks = [m.start() for m in BLANK_LINE.finditer(text)]
    spans, i = [], 0
    while i < len(tokens):
        start, _, token = tokens[i]
        closer = token if token[0] == "$" else token.replace("begin:", "end:") if token.startswith("begin:") else ""
        later = where.get(closer, [])
        k = bisect_left(later, i + 1)
        if k < len(later):
            j = later[k]
            stop, b = tokens[j][1], bisect_left(blanks, start)
            if stop - start <= MAX_MATH_CHARS and (token != "$" or b == len(blanks) or blanks[b] >= tokens[j][0]):
                spans.append((start, stop))
                i = j + 1
                continue
        i += 1
    return spans


def markdown_renderer() -> Callable[[str, dict | None], str]:
    """A function (source, attachments) -> HTML: mistune with raw HTML escaped, safe links, images only from
    the cell's attachments, math kept as escaped text for MathJax (`math_spans`). One per page."""
    import mistune

    class SafeRenderer(mistune.HTMLRenderer):
        """mistune's HTML renderer that never passes student HTML, scripts or remote resources through."""

        attachments: dict = {}

        def image(self, text: str, url: str, title: str | None = None) -> str:
            att = self.attachments.get(url.removeprefix("attachment:"), {}) if url.startswith("attachment:") else {}
            src = next((u for m in IMAGE_TYPES if m in att and (u := data_uri(m, att[m]))), None)
            return f'<img src="{src}" alt="{esc(text)}">' if src else f"[image: {esc(text or url)}]"

    renderer = SafeRenderer(escape=True, allow_harmful_protocols=False)
    md = mistune.create_markdown(renderer=renderer, plugins=list(MARKDOWN_PLUGINS))

    def render(source: str, attachments: dict | None = None) -> str:
        renderer.attachments = attachments if isinstance(attachments, dict) else {}
        spans, key = math_spans(source), secrets.token_hex(8)
        parts, last = [], 0
        for n, (start, stop) in enumerate(spans):
            parts += [source[last:start], f"MATH{key}X{n}X"]
            last = stop
        out = md("".join(parts) + source[last:])
        return re.sub(f"MATH{key}X([0-9]+)X", lambda m: esc(source[slice(*spans[int(m.group(1))])]), out)

    return render


def render_markdown(source: str, attachments: dict | None = None,
                    render: Callable[[str, dict | None], str] | None = None) -> str:
    """A markdown cell as HTML (math left for MathJax)."""
    return f'<div class="md tex2jax_process">{(render or markdown_renderer())(source, attachments)}</div>'


def render_code(source: str) -> str:
    """Python source, highlighted and escaped by pygments."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    return f'<pre class="hl">{highlight(source, PythonLexer(), HtmlFormatter(nowrap=True))}</pre>'


def render_output(out: dict) -> str:
    """One output: text escaped, errors with their (visible) traceback, images re-encoded."""
    kind = out.get("output_type")
    if kind == "stream":
        return f'<pre class="out {esc(out.get("name", ""))}">{esc(plain_text(out.get("text", "")))}</pre>'
    if kind == "error":
        trace = plain_text("\n".join(map(str, out.get("traceback") or [])))
        return f'<pre class="err">{esc(trace or str(out.get("ename")) + ": " + str(out.get("evalue")))}</pre>'
    data = out.get("data") or {}
    for mime in IMAGE_TYPES:
        if mime in data and (src := data_uri(mime, data[mime])):
            return f'<img src="{src}" alt="output image">'
    for mime in TEXT_TYPES:
        if mime in data:
            value = data[mime] if isinstance(data[mime], (str, list)) else json.dumps(data[mime], indent=1)
            return f"<pre>{esc(plain_text(value))}</pre>"
    return f"<pre>[output of type {esc(', '.join(data) or kind)} not shown]</pre>" if data or kind else ""


def points(grade: CellGrade | None) -> str:
    """'3 / 4', or 'waiting for manual grading / 4'."""
    if grade is None:
        return ""
    got = "waiting for manual grading" if grade.score is None else f"{grade.score:g}"
    return f"{got} / {grade.max_score:g}" + (" (graded by hand)" if grade.by_hand else "")


def render_cases(cases: list[dict]) -> str:
    """One line per hidden case: passed or not, points, the call and what differed."""
    lines = []
    for c in cases:
        ok = bool(c.get("passed"))
        what = f" &mdash; {message(c.get('message'))}" if c.get("message") and not ok else ""
        lines.append(f'<li class="{"pass" if ok else "fail"}">{"&#10003;" if ok else "&#10007;"} '
                     f"{message(c.get('case'))}[{message(c.get('draw'))}] {float(c.get('points') or 0):.3g} / "
                     f"{float(c.get('max_points') or 0):.3g}: <code>{message(c.get('call', ''))}</code>{what}</li>")
    return f'<ul class="cases">{"".join(lines)}</ul>' if lines else ""


def summary(record: dict, grades: dict[str, CellGrade], questions: list[str]) -> str:
    """Header, total, notes and the table of questions with their case lines (at most MAX_CASE_LINES)."""
    by_cell: dict[str, list[dict]] = {}
    for c in [c for c in record.get("cases", []) if isinstance(c, dict)][:MAX_CASE_LINES]:
        by_cell.setdefault(str(c.get("grade_id")), []).append(c)
    names = questions or list(dict.fromkeys([*grades, *by_cell]))
    rows, total, full, pending = [], 0.0, 0.0, False
    for q in names:
        g = grades.get(q)
        if g is None and q in by_cell:
            cs = by_cell[q]
            g = CellGrade(q, sum(float(c.get("max_points") or 0) for c in cs),
                          sum(float(c.get("points") or 0) for c in cs), False, None)
        if g is None or (g.max_score == 0 and not by_cell.get(q)):
            continue
        total, full, pending = total + (g.score or 0.0), full + g.max_score, pending or g.score is None
        note = f'<div class="comment">{message(g.comment)}</div>' if g.comment else ""
        rows.append(f'<tr id="q-{message(q)}"><td>{message(q)}</td><td>{esc(points(g))}</td>'
                    f"<td>{render_cases(by_cell.get(q, []))}{note}</td></tr>")
    notes = "".join(f"<li>{message(n)}</li>" for n in record.get("notes", [])[:MAX_CASE_LINES])
    return (f"<h1>{message(record.get('assignment'))}: feedback for {message(record.get('student'))}</h1>"
            f"<p>Graded {message(record.get('graded_at', ''))}, status <b>{message(record.get('status', ''))}</b>. "
            f"Total <span class=\"badge\">{total:g} / {full:g}</span>"
            + (' <span class="pending">(manual grading pending)</span>' if pending else "") + "</p>"
            + (f"<p>Notes from grading:</p><ul>{notes}</ul>" if notes else "")
            + "<h2>Points per question</h2><p>Hidden cases call your code on inputs drawn at grading time; "
            "each line says what was called and, when it failed, what differed.</p>"
            + (f"<table><tr><th>question</th><th>points</th><th>cases and comments</th></tr>{''.join(rows)}</table>"
               if rows else "<p>No graded answers.</p>"))


def grade_id(cell: Any) -> str | None:
    """The cell's nbgrader grade_id (None when it has none)."""
    return ((cell.get("metadata") or {}).get("nbgrader") or {}).get("grade_id")


def cell_statuses(record: dict, nb: nbformat.NotebookNode) -> dict[int, str]:
    """Cell index in the inert notebook -> how the cell ended, where not "ok": by grade_id, else by the record's
    index (which holds up to the first cell inert left out)."""
    rows = [c for c in record.get("cells", []) if isinstance(c, dict)]
    by_id = {c["grade_id"]: str(c.get("status")) for c in rows if c.get("grade_id")}
    by_index = {c["index"]: str(c.get("status")) for c in rows if not c.get("grade_id") and type(c.get("index")) is int}
    cut_at = next((i for i, c in enumerate(nb.cells) if c.get("id") == CUT_CELL_ID), len(nb.cells))
    out = {}
    for i, cell in enumerate(nb.cells):
        gid = grade_id(cell)
        status = by_id.get(gid) if gid else by_index.get(i) if i < cut_at else None
        if status not in (None, "ok"):
            out[i] = status
    return out


def is_ta_cell(cell: dict) -> bool:
    """A cell `course grade` added for the TA (a rubric): markdown without nbgrader metadata, starting with the mark."""
    from ..rubric import TA_MARK

    return cell.get("cell_type") == "markdown" and not grade_id(cell) and plain_text(cell.get("source", "")) \
        .startswith(TA_MARK)


def render_notebook(nb: nbformat.NotebookNode, grades: dict[str, CellGrade], statuses: dict[int, str],
                    deadline: Deadline, room: int = MAX_PAGE_CHARS) -> str:
    """Every cell: markdown rendered safely, code highlighted with its outputs, graded cells marked. Raises
    PageLimit past the deadline or past `room` characters."""
    render = markdown_renderer()
    parts, size = ["<h2>Your notebook as graded</h2>"], 0
    for i, cell in enumerate(nb.cells):
        deadline.check()
        if is_ta_cell(cell):
            continue
        gid = grade_id(cell)
        g = grades.get(gid) if gid else None
        head = ""
        if g is not None and g.max_score:
            head += f'<div class="badge"><a href="#q-{esc(gid)}">{esc(gid)}</a>: {esc(points(g))}</div>'
        if g is not None and g.comment:
            head += f'<div class="comment">{message(g.comment)}</div>'
        if i in statuses:
            head += f'<div class="fail">this cell: {message(statuses[i])}</div>'
        if cell.cell_type == "markdown":
            body = render_markdown(plain_text(cell.source), cell.get("attachments"), render)
        elif cell.cell_type == "code":
            body = render_code(plain_text(cell.source))
            for o in cell.get("outputs", []):
                deadline.check()
                body += render_output(o)
        else:
            body = f"<pre>{esc(plain_text(cell.source))}</pre>"
        parts.append(f'<div class="cell{" graded" if g is not None and g.max_score else ""}">{head}{body}</div>')
        size += len(parts[-1])
        if size > room:
            raise PageLimit(f"it would be more than {MAX_PAGE_CHARS:,} characters long")
    return "".join(parts)


def notebook_as_text(nb: nbformat.NotebookNode, limit: int = MAX_PLAIN_CHARS) -> str:
    """The notebook's sources and text outputs as one plain text of at most `limit` characters."""
    parts, size = [], 0
    for i, cell in enumerate(nb.cells):
        if is_ta_cell(cell):
            continue
        pieces = [f"--- cell {i} ({cell.cell_type}{', ' + grade_id(cell) if grade_id(cell) else ''}) ---",
                  plain_text(cell.source)]
        for o in cell.get("outputs", []):
            text = o.get("text") or "\n".join(map(str, o.get("traceback") or [])) or (o.get("data") or {}).get(
                "text/plain", f"[{o.get('output_type')} output]")
            pieces.append(plain_text(text))
        parts.append("\n".join(pieces) + "\n")
        size += len(parts[-1])
        if size > limit:
            break
    return cut("".join(parts), limit)


def page(record: dict, fingerprint: str, head: str, body: str) -> str:
    """A page's HTML around its body."""
    from pygments.formatters import HtmlFormatter

    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta name="course-feedback" content="{fingerprint}">\n'
            f"<title>{message(record.get('assignment'))}: {message(record.get('student'))}</title>\n"
            f"<style>{STYLE}{HtmlFormatter().get_style_defs('.hl')}</style>\n{head}\n</head>\n"
            f'<body class="tex2jax_ignore">\n{body}\n</body></html>\n')


def render_page(record: dict, nb: nbformat.NotebookNode | dict | None, grades: dict[str, CellGrade],
                fingerprint: str, mathjax: bool) -> str:
    """The whole feedback page of one notebook (made inert first); past PAGE_SECONDS or MAX_PAGE_CHARS, the
    summary and the notebook as plain text, saying why."""
    deadline = Deadline()
    nb = inert(nb) if nb is not None else None
    cells = nb.cells if nb is not None else []
    questions = [g for c in cells if (g := grade_id(c)) and c.metadata.nbgrader.get("grade")]
    head = summary(record, grades, questions)
    if nb is None:
        return page(record, fingerprint, "", f"{head}\n<p>No notebook could be graded.</p>")
    scripts = (f"<script>{MATHJAX_CONFIG}</script>\n<script src=\"{MATHJAX_DIR}/{MATHJAX_FILES[0]}\" defer></script>"
               if mathjax else "")
    try:
        body = render_notebook(nb, grades, cell_statuses(record, nb), deadline, MAX_PAGE_CHARS - len(head))
        return page(record, fingerprint, scripts, f"{head}\n{body}")
    except PageLimit as why:
        text = (f'<p class="fail">Your notebook is shown as plain text below: {esc(why)}.</p>'
                f"<pre>{html.escape(notebook_as_text(nb), quote=False)}</pre>")
        return page(record, "retry" if isinstance(why, PageTimeout) else fingerprint, "", f"{head}\n{text}")


# ---------------------------------------------------------------- files

def mathjax_source() -> Path | None:
    """The es5 folder of the installed MathJax 3 (django-static-mathjax), or None when it is not installed."""
    try:
        import mathjax
    except ImportError:
        return None
    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    return es5 if all((es5 / f).is_file() for f in MATHJAX_FILES) else None


def place_mathjax(src: Path, folder: Path) -> None:
    """MathJax next to a page: hard links to the installed files where possible, else copies."""
    for name in MATHJAX_FILES:
        dst = folder / MATHJAX_DIR / name
        if dst.is_file() and dst.stat().st_size == (src / name).stat().st_size:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.unlink(missing_ok=True)
        try:
            os.link(src / name, dst)
        except OSError:
            shutil.copyfile(src / name, dst)


def fingerprint(record: dict, nb_bytes: bytes, grades: dict[str, CellGrade], mathjax: bool) -> str:
    """What a page depends on, hashed: a page with another fingerprint is stale."""
    h = hashlib.sha256(f"{FORMAT}\0{mathjax}\0".encode())
    h.update(json.dumps(record, sort_keys=True, default=str).encode() + b"\0" + nb_bytes + b"\0")
    h.update(json.dumps(sorted(astuple(g) for g in grades.values()), default=str).encode())
    return h.hexdigest()


def current_fingerprint(path: Path) -> str | None:
    """The fingerprint an existing page was made from (None when there is no page)."""
    try:
        with open(path, encoding="utf-8") as f:
            m = FINGERPRINT.search(f.read(4096))
    except OSError:
        return None
    return m.group(1) if m else None


def write_page(path: Path, text: str) -> None:
    """Write a page atomically."""
    atomic_write(path, text)


def notebook_data(data: bytes) -> dict | None:
    """An autograded notebook's JSON (inert makes it a notebook, whatever it holds); None when there is none."""
    try:
        nb = json.loads(data.decode("utf-8", "replace")) if data else None
    except ValueError:
        nb = {"cells": [{"cell_type": "raw", "source": "[the autograded notebook is not valid JSON]"}]}
    return nb if isinstance(nb, dict) else None


def graded_students(root: Path, assignment: str) -> list[str]:
    """Students with a results record for the assignment."""
    return sorted(p.stem for p in (Path(root) / RESULTS / assignment).glob("*.json"))


def write_feedback(root: Path, assignment: str, students: list[str] | None = None) -> int:
    """Write the feedback pages that are missing or stale (all pages of the students named); return how many."""
    root = Path(root)
    graded = graded_students(root, assignment)
    if students:
        for s in sorted(set(students) - set(graded)):
            print(f"feedback: {s} has no results record for {assignment} (grade it first)")
        wanted = [s for s in graded if s in set(students)]
    else:
        wanted = graded
    mj = mathjax_source()
    if wanted and mj is None:
        print("feedback: MathJax 3 is not installed (pip install django-static-mathjax): math stays as TeX")
    grades = read_grades(root, assignment, wanted)
    written = 0
    for s in wanted:
        record = read_record(root, assignment, s)
        if record is None:
            print(f"feedback: the results record of {s} for {assignment} is unreadable; grade it again")
            continue
        notebooks = sorted(autograded_path(root, assignment, s, "x").parent.glob("*.ipynb"))
        pages = [(p.stem, p.read_bytes()) for p in notebooks] or [(assignment, b"")]
        for name, data in pages:
            nb = notebook_data(data)
            target = feedback_path(root, assignment, s, name)
            fp = fingerprint(record, data, grades[s], mj is not None)
            if not students and current_fingerprint(target) == fp:
                continue
            if mj is not None:
                place_mathjax(mj, target.parent)
            write_page(target, render_page(record, nb, grades[s], fp, mj is not None))
            written += 1
    print(f"feedback: {written} page(s) written in {root / FEEDBACK}/<student>/{assignment}/ "
          f"({len(wanted)} graded student(s) checked)")
    return written
