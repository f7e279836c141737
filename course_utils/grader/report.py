"""Feedback HTML per student: what each hidden case checked and what differed, the notebook, manual grades.

A page is built here from plain data only: the results record (`record.py`), the autograded notebook and
the gradebook (scores typed in the formgrader, comments). Nothing of the hidden cases is on it beyond the
record's case name, call and message, and never the run seed. Every piece of student text (source, outputs,
exception and case messages, markdown) is HTML-escaped: markdown is rendered with raw HTML escaped, links
with a harmful protocol dropped, images only from the cell's own attachments; outputs show their text (an
HTML output shows its source as text), images only as re-encoded base64 PNG/JPEG/GIF. Math in markdown is
typeset in the browser by MathJax 3 copied next to the page (`mathjax/`, from the django-static-mathjax
wheel, with MathJax's `safe` extension), so the page needs no network: hand out the whole
`feedback/<student>/<assignment>/` folder.

A page carries a fingerprint of what it was made from; `write_feedback` rewrites the pages of every graded
student whose record, notebook or gradebook rows changed since (so students graded before an interrupted
run, or graded by hand since, get feedback at the next call).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import html
import json
import os
import re
import shutil
from dataclasses import astuple, dataclass
from pathlib import Path

import nbformat

from .gradebook import GRADEBOOK, open_gradebook
from .record import RESULTS, autograded_path, read_record

FEEDBACK = Path("feedback")
MATHJAX_DIR = "mathjax"                              # next to the page
MATHJAX_FILES = ("tex-svg-full.js", "ui/safe.js")    # one-file TeX + SVG (no fonts to fetch), URL filter
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif")
TEXT_TYPES = ("text/plain", "text/html", "text/markdown", "text/latex", "application/json")
FORMAT = "1"                                         # part of the fingerprint: bump when the page changes
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

def esc(text: object) -> str:
    """HTML-escape any value (quotes too)."""
    return html.escape(str(text), quote=True)


def plain_text(value: object) -> str:
    """Notebook text (a string or a list of lines) without ANSI colour codes."""
    text = "".join(value) if isinstance(value, list) else str(value)
    return ANSI.sub("", text)


def data_uri(mime: str, payload: object) -> str | None:
    """A data: URI of a base64 image, re-encoded so nothing but base64 reaches the page; None if it is not one."""
    try:
        raw = base64.b64decode(re.sub(r"\s+", "", plain_text(payload)), validate=True)
    except (binascii.Error, ValueError):
        return None
    return f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}" if raw else None


def markdown_renderer(attachments: dict | None):
    """nbconvert's math-aware markdown with raw HTML escaped, safe links, images only from attachments."""
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    class SafeRenderer(IPythonRenderer):
        """IPythonRenderer that never passes student HTML, scripts or remote resources through."""

        def image(self, text: str, url: str, title: str | None = None) -> str:
            att = (attachments or {}).get(url.removeprefix("attachment:"), {}) if url.startswith("attachment:") else {}
            src = next((u for m in IMAGE_TYPES if m in att and (u := data_uri(m, att[m]))), None)
            return f'<img src="{src}" alt="{esc(text)}">' if src else f"[image: {esc(text or url)}]"

        def block_mermaidjs(self, code: str) -> str:
            return f"<pre>{esc(code)}</pre>"

    return MarkdownWithMath(renderer=SafeRenderer(escape=True, allow_harmful_protocols=False,
                                                  exclude_anchor_links=True))


def render_markdown(source: str, attachments: dict | None = None) -> str:
    """A markdown cell as HTML (math left for MathJax)."""
    return f'<div class="md tex2jax_process">{markdown_renderer(attachments).render(source)}</div>'


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
        what = f" &mdash; {esc(c.get('message'))}" if c.get("message") and not ok else ""
        lines.append(f'<li class="{"pass" if ok else "fail"}">{"&#10003;" if ok else "&#10007;"} '
                     f"{esc(c.get('case'))}[{esc(c.get('draw'))}] {float(c.get('points') or 0):.3g} / "
                     f"{float(c.get('max_points') or 0):.3g}: <code>{esc(c.get('call', ''))}</code>{what}</li>")
    return f'<ul class="cases">{"".join(lines)}</ul>' if lines else ""


def summary(record: dict, grades: dict[str, CellGrade], questions: list[str]) -> str:
    """Header, total, notes and the table of questions with their case lines."""
    by_cell: dict[str, list[dict]] = {}
    for c in record.get("cases", []):
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
        note = f'<div class="comment">{esc(g.comment)}</div>' if g.comment else ""
        rows.append(f'<tr id="q-{esc(q)}"><td>{esc(q)}</td><td>{esc(points(g))}</td>'
                    f"<td>{render_cases(by_cell.get(q, []))}{note}</td></tr>")
    notes = "".join(f"<li>{esc(n)}</li>" for n in record.get("notes", []))
    return (f"<h1>{esc(record.get('assignment'))}: feedback for {esc(record.get('student'))}</h1>"
            f"<p>Graded {esc(record.get('graded_at', ''))}, status <b>{esc(record.get('status', ''))}</b>. "
            f"Total <span class=\"badge\">{total:g} / {full:g}</span>"
            + (' <span class="pending">(manual grading pending)</span>' if pending else "") + "</p>"
            + (f"<p>Notes from grading:</p><ul>{notes}</ul>" if notes else "")
            + "<h2>Points per question</h2><p>Hidden cases call your code on inputs drawn at grading time; "
            "each line says what was called and, when it failed, what differed.</p>"
            + (f"<table><tr><th>question</th><th>points</th><th>cases and comments</th></tr>{''.join(rows)}</table>"
               if rows else "<p>No graded answers.</p>"))


def render_notebook(nb: nbformat.NotebookNode, grades: dict[str, CellGrade], statuses: dict[int, str]) -> str:
    """Every cell: markdown rendered safely, code highlighted with its outputs, graded cells marked."""
    parts = ["<h2>Your notebook as graded</h2>"]
    for i, cell in enumerate(nb.cells):
        gid = (cell.get("metadata", {}).get("nbgrader") or {}).get("grade_id")
        g = grades.get(gid) if gid else None
        head = ""
        if g is not None and g.max_score:
            head += f'<div class="badge"><a href="#q-{esc(gid)}">{esc(gid)}</a>: {esc(points(g))}</div>'
        if g is not None and g.comment:
            head += f'<div class="comment">{esc(g.comment)}</div>'
        if statuses.get(i, "ok") != "ok":
            head += f'<div class="fail">this cell: {esc(statuses[i])}</div>'
        if cell.cell_type == "markdown":
            body = render_markdown(plain_text(cell.source), cell.get("attachments"))
        elif cell.cell_type == "code":
            body = render_code(plain_text(cell.source)) + "".join(render_output(o) for o in cell.get("outputs", []))
        else:
            body = f"<pre>{esc(plain_text(cell.source))}</pre>"
        parts.append(f'<div class="cell{" graded" if g is not None and g.max_score else ""}">{head}{body}</div>')
    return "".join(parts)


def render_page(record: dict, nb: nbformat.NotebookNode | None, grades: dict[str, CellGrade], fingerprint: str,
                mathjax: bool) -> str:
    """The whole feedback page of one notebook."""
    from pygments.formatters import HtmlFormatter

    questions = []
    if nb is not None:
        questions = [g for c in nb.cells if (g := (c.get("metadata", {}).get("nbgrader") or {}).get("grade_id"))
                     and (c.get("metadata", {}).get("nbgrader") or {}).get("grade")]
    statuses = {int(c["index"]): str(c.get("status")) for c in record.get("cells", []) if "index" in c}
    scripts = (f"<script>{MATHJAX_CONFIG}</script>\n<script src=\"{MATHJAX_DIR}/{MATHJAX_FILES[0]}\" defer></script>"
               if mathjax else "")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta name="course-feedback" content="{fingerprint}">\n'
            f"<title>{esc(record.get('assignment'))}: {esc(record.get('student'))}</title>\n"
            f"<style>{STYLE}{HtmlFormatter().get_style_defs('.hl')}</style>\n{scripts}\n</head>\n"
            f'<body class="tex2jax_ignore">\n{summary(record, grades, questions)}\n'
            + (render_notebook(nb, grades, statuses) if nb is not None else "<p>No notebook could be graded.</p>")
            + "\n</body></html>\n")


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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


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
            nb = nbformat.reads(data.decode("utf-8"), as_version=4) if data else None
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
