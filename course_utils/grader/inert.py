"""The autograded notebook holds only inert content: nothing a student wrote runs, loads or fetches in a TA's page.

nbgrader's formgrader shows autograded/<student>/<assignment>/<notebook>.ipynb in the TA's Jupyter server
(its origin, the TA's session) through nbconvert's classic template, `sanitize_html` off: raw HTML in
markdown, text/html, SVG and JavaScript outputs, image metadata and widget state reach that page as they
are. `inert(nb)` returns a copy in which nothing can; `record.write_autograded` writes only what it returns
and `report` renders only what it returns.

- Markdown and raw cells get one space inserted where a construct could load, run or link elsewhere: after
  a `<` that could open a tag, comment or autolink (`< b>` is text to markdown and HTML); between `!` and
  `[` of an image that is not one of the cell's own attachments, or names one a second time (`! [x](url)`:
  at most a link); between `]` and the `(` or `:` of a link or link definition whose URL, decoded as a
  browser decodes it, is not http(s), mailto, an #anchor or attachment:; after `\\begin` (or between
  `\\\\` and `[`/`(`) of a math opener with no closer after it, or past the first MAX_MATH_OPENERS of its
  kind in the cell (nbconvert scans from each such opener to the end of the cell: quadratic). TeX ignores
  these spaces, so math reads the same. Markdown without any of these constructs is left as it is,
  character for character, so nbgrader's checksum still tells an answer left alone ("No response") from an
  edited one. (A locked cell of the release with one, such as a01's `$a<s$`, changes by that space: nbgrader
  compares locked cells' checksums only in its own autograde, which never reads this notebook.)
- Outputs: streams, errors (name, value, traceback) and text/plain stay text; PNG, JPEG and GIF images are
  decoded strictly, checked by their magic bytes and re-encoded (else dropped); every other MIME type (HTML,
  SVG, JavaScript, Markdown, LaTeX, widgets, anything unknown) becomes text/plain showing its source.
  Output metadata (sizes, `isolated`) is dropped.
- Attachments: PNG/JPEG/GIF images only, re-encoded, under plain names (a missing one makes nbconvert fail).
- Metadata: a cell keeps its nbgrader metadata (the keys and types of nbgrader's schema v3, so the
  formgrader grades it as before), the notebook its kernelspec and language_info (plain values); widget
  state, tags and everything else are dropped. Cell ids and execution counts are checked.
- Sizes: every string is cut (the constants below) and the whole notebook is bounded, its text, its markdown
  and its images each (nbconvert's time is about linear in them): graded cells' sources are counted first,
  then the other cells' sources and attachments, then outputs; a cut says so where it is.
"""
from __future__ import annotations

import base64
import binascii
import html
import json
import re
from typing import Any

import nbformat
from nbformat import v4

MAX_MARKDOWN_CHARS = 20_000      # a markdown or raw cell (nbconvert: ~1 s for 20,000 characters of nothing but
                                 # headings; the longest markdown cell of the course's solutions has 3,000)
MAX_CODE_CHARS = 50_000          # a code cell's source (pygments highlights 50,000 characters in ~0.15 s)
MAX_CELL_OUTPUT_CHARS = 200_000  # the text of one cell's outputs together, errors and shown-as-text sources included
MAX_OUTPUTS = 100                # outputs per cell, the last a note on the rest when there are more
MAX_IMAGE_BYTES = 2_000_000      # one image, decoded (a matplotlib figure is ~50 KB)
MAX_FREE_CELLS = 200             # cells without nbgrader metadata (the student's own; nbconvert needs ~3 ms a cell);
                                 # graded cells are always kept, the rest stand in one note cell (CUT_CELL_ID)
MAX_NOTEBOOK_CHARS = 1_000_000   # sources and output text of the whole notebook (a solution notebook holds ~25,000;
                                 # nbconvert renders code and output at up to ~5 µs a character)
MAX_NOTEBOOK_MARKDOWN_CHARS = 100_000   # of which markdown and raw cells (a solution holds at most 13,000; nbconvert
                                        # needs up to ~55 µs a character, for markdown of nothing but headings)
MAX_NOTEBOOK_IMAGE_CHARS = 10_000_000   # base64 of the notebook's images and attachments (copied as they are)
MAX_MATH_OPENERS = 100           # math openers of one kind kept per cell (each may cost nbconvert one scan of the cell)
MAX_META_CHARS = 200             # a metadata string (kernel name, language), an exception's name
IMAGE_TYPES = {"image/png": (b"\x89PNG\r\n\x1a\n",), "image/jpeg": (b"\xff\xd8\xff",),
               "image/gif": (b"GIF87a", b"GIF89a")}
SAFE_URLS = ("http://", "https://", "mailto:", "#", "attachment:")
NOTEBOOK_METADATA = {"kernelspec": ("name", "display_name"), "language_info": ("name",)}   # kept; keys required
NBGRADER_TYPES = {"schema_version": int, "grade": bool, "locked": bool, "solution": bool, "task": bool,
                  "grade_id": str, "points": (int, float), "checksum": str, "cell_type": str}
GRADE_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")
CHECKSUM = re.compile(r"[0-9a-f]{32}")
CELL_TYPES = ("code", "markdown", "raw")
CELL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
CUT_CELL_ID = "cells-left-out"
NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")            # an attachment's name
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]")   # all but \t \n \r and ESC (ANSI colours)
TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
IMAGE = re.compile(r"!\[")
LINK = re.compile(r"\](?=[(:])")
KEPT_IMAGE = re.compile(r"!\[[^\[\]\\`<$\n]{0,500}\]\(attachment:([A-Za-z0-9._-]{1,100})\)")
MATH = (  # (opener, closer) as nbconvert's markdown parser finds them; closers as strictly as its inline rules
    (re.compile(r"\\\\(?=\[)"), re.compile(r"(?<!\\)\\\\\]")),
    (re.compile(r"\\\\(?=\()"), re.compile(r"(?<!\\)\\\\\)")),
    (re.compile(r"\\begin(?=\{([a-z]*\*?)\})"), re.compile(r"\\end\{([a-z]*\*?)\}")),
)


class Budget:
    """Characters left to a notebook (or a cell's outputs)."""

    def __init__(self, chars: int):
        self.left = chars

    def allow(self, limit: int) -> int:
        """How many characters a piece capped at `limit` may have now."""
        return max(0, min(limit, self.left))

    def spend(self, text: str) -> str:
        self.left -= len(text)
        return text


def cut(text: str, limit: int, size: int | None = None) -> str:
    """text (the start of one `size` long), or its first characters and a note of what was cut: at most
    `limit` characters (no room for the note: none, which happens only where an earlier cut has said so).
    Inert markdown stays inert: only a suffix goes, and the note starts a line and holds no `<`, `!`, `](`."""
    size = len(text) if size is None else size
    if size <= limit:
        return text
    note = f"\n[cut by the grader: {size:,} characters, {limit:,} shown]\n"
    return text[:limit - len(note)] + note if limit >= len(note) else text[:limit]


def clip(value: Any, limit: int, sep: str = "") -> str:
    """Notebook text (a string; a list of strings, joined by sep; anything else as JSON) without control
    characters, cut to `limit` (see `cut`), reading no more of a huge value than it keeps."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        parts, size = [], 0
        for v in value:
            if size <= limit:
                parts.append(v)
            size += len(v) + len(sep)
        text, size = sep.join(parts), max(0, size - len(sep))
    else:
        if not isinstance(value, str):
            try:
                value = json.dumps(value, indent=1, ensure_ascii=False, default=str)
            except (ValueError, RecursionError):
                value = "[not shown: not plain data]"
        text, size = value, len(value)
    text = CONTROL.sub("", text[:limit + 1].encode("utf-8", "replace").decode("utf-8"))
    return cut(text, limit, max(size, len(text)))


def image_b64(mime: str, payload: Any, room: int = MAX_IMAGE_BYTES * 4 // 3 + 4) -> str | None:
    """The base64 of a PNG/JPEG/GIF image, decoded strictly, checked by its magic bytes and re-encoded;
    None when it is not one, is over MAX_IMAGE_BYTES or would take more than `room` characters (judged
    before anything is decoded)."""
    limit = min(room, MAX_IMAGE_BYTES * 4 // 3 + 4)
    if isinstance(payload, list) and all(isinstance(p, str) for p in payload) and len(payload) <= limit:
        payload = "".join(payload) if sum(map(len, payload)) <= 2 * limit + 4096 else None
    if mime not in IMAGE_TYPES or not isinstance(payload, str) or len(payload) > 2 * limit + 4096:
        return None                                  # (base64 wrapped in lines is a little longer)
    try:
        raw = base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError, TypeError):
        return None
    if len(raw) > MAX_IMAGE_BYTES or not raw.startswith(IMAGE_TYPES[mime]):
        return None
    return base64.b64encode(raw).decode("ascii")


# ---------------------------------------------------------------- markdown

def _safe_url(text: str, start: int) -> bool:
    """Whether the link destination starting at text[start] (after `(` or `:`) is http(s), mailto, #, attachment:."""
    head = text[start:start + 400].lstrip()
    url = html.unescape(head[1:] if head.startswith("<") else head).replace("\\", "")
    url = re.sub(r"[\x00-\x20\x7f]+", "", url).lower()       # browsers drop tabs and newlines anywhere
    return url.startswith(SAFE_URLS)


def _kept_image(text: str, start: int, attachments: set[str], shown: set[str]) -> bool:
    """Whether the image at text[start] (`![`) is plainly `![alt](attachment:NAME)` of an attachment the cell
    has, not shown before in the cell (each is copied into the page once, however often it is named)."""
    m = KEPT_IMAGE.match(text, start)
    if not m or m.group(1) not in attachments or m.group(1) in shown:
        return False
    shown.add(m.group(1))
    return True


def _math_openers(text: str) -> list[int]:
    """Where a space goes to break a math opener: no closer after it, or past MAX_MATH_OPENERS of its kind."""
    spots = []
    for opener, closer in MATH:
        last: dict[str | None, int] = {}
        for m in closer.finditer(text):
            last[m.group(1) if m.groups() else None] = m.start()
        kept = 0
        for m in opener.finditer(text):
            closed = last.get(m.group(1) if m.groups() else None, -1) > m.end()
            if closed and kept < MAX_MATH_OPENERS:
                kept += 1
            else:
                spots.append(m.end())
    return spots


def inert_markdown(text: str, attachments: set[str] = frozenset()) -> str:
    """Markdown (or a raw cell) with a space wherever it could load, run or link elsewhere (see the module)."""
    spots = [m.end() for m in TAG_START.finditer(text)]
    shown: set[str] = set()
    spots += [m.start() + 1 for m in IMAGE.finditer(text) if not _kept_image(text, m.start(), attachments, shown)]
    spots += [m.end() for m in LINK.finditer(text) if not _safe_url(text, m.end() + 1)]
    spots += _math_openers(text)
    if not spots:
        return text
    parts, last = [], 0
    for at in sorted(set(spots)):
        parts += [text[last:at], " "]
        last = at
    return "".join(parts) + text[last:]


# ---------------------------------------------------------------- outputs

def _data(data: Any, execution_count: Any, kind: str, room: Budget, total: Budget,
          pictures: Budget) -> nbformat.NotebookNode:
    """A display_data/execute_result with text/plain and re-encoded images only (the rest shown as text)."""
    data = data if isinstance(data, dict) else {}
    images, texts = {}, []
    for mime, value in data.items():
        if mime in IMAGE_TYPES:
            b64 = image_b64(mime, value, pictures.left)
            if b64 is not None and len(b64) <= pictures.left:
                images[mime] = pictures.spend(b64)
            else:
                texts.append(f"[{clip(mime, MAX_META_CHARS)} output not shown: not a valid image, or too big]")
        elif mime == "text/plain":
            texts.insert(0, clip(value, room.left))
        else:
            texts.append(f"[{clip(mime, MAX_META_CHARS)} output, shown as text]\n{clip(value, room.left)}")
    plain = total.spend(room.spend(cut("\n\n".join(texts), total.allow(room.left))))
    out = {"text/plain": plain, **images} if plain or not images else images
    if kind == "execute_result":
        return v4.new_output(kind, data=out, execution_count=_count(execution_count))
    return v4.new_output("display_data", data=out)


def _output(out: Any, room: Budget, total: Budget, pictures: Budget) -> nbformat.NotebookNode:
    """One output made inert (see the module)."""
    out = out if isinstance(out, dict) else {}
    kind = out.get("output_type")

    def take(value: Any, sep: str = "") -> str:
        return total.spend(room.spend(clip(value, total.allow(room.left), sep)))

    if kind == "stream":
        name = out.get("name") if out.get("name") in ("stdout", "stderr") else "stdout"
        return v4.new_output("stream", name=name, text=take(out.get("text", "")))
    if kind == "error":
        trace = out.get("traceback") or ""
        if isinstance(trace, list):
            trace = [t if isinstance(t, str) else clip(t, MAX_META_CHARS) for t in trace]
        return v4.new_output("error", ename=take(clip(out.get("ename", ""), MAX_META_CHARS)),
                             evalue=take(out.get("evalue", "")), traceback=take(trace, "\n").split("\n"))
    if kind in ("display_data", "execute_result"):
        return _data(out.get("data"), out.get("execution_count"), kind, room, total, pictures)
    return v4.new_output("stream", name="stdout", text=take(f"[output of type {clip(kind, MAX_META_CHARS)} "
                                                            "not shown]"))


def _count(value: Any) -> int | None:
    """An execution count as nbformat has it (a non-negative int, or None)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


# ---------------------------------------------------------------- metadata

def nbgrader_metadata(cell: Any) -> dict | None:
    """The cell's nbgrader metadata, only the keys and types of nbgrader's schema; None when it has none or
    a value nbgrader would refuse (a grade_id not of its pattern, negative points, a malformed checksum)."""
    meta = cell.get("metadata") if isinstance(cell, dict) else None
    meta = meta.get("nbgrader") if isinstance(meta, dict) else None
    if not isinstance(meta, dict):
        return None
    kept = {k: meta[k] for k, t in NBGRADER_TYPES.items()
            if k in meta and isinstance(meta[k], t) and (t is bool or not isinstance(meta[k], bool))}
    valid = (GRADE_ID.fullmatch(kept.get("grade_id", "x")) and 0 <= kept.get("points", 0) < float("inf")
             and CHECKSUM.fullmatch(kept.get("checksum", "0" * 32)) and kept.get("cell_type", "raw") in CELL_TYPES)
    return kept if valid and kept else None


def _plain(value: Any, depth: int = 0) -> Any:
    """A metadata value of plain scalars (strings cut) and small dicts of them; None for anything else."""
    if isinstance(value, str):
        return clip(value, MAX_META_CHARS)
    if isinstance(value, (bool, int)) or (isinstance(value, float) and abs(value) < float("inf")):
        return value
    if isinstance(value, dict) and depth < 2:
        pairs = ((clip(k, MAX_META_CHARS), _plain(v, depth + 1)) for k, v in list(value.items())[:20])
        return {k: v for k, v in pairs if v is not None}
    return None


# ---------------------------------------------------------------- the notebook

def inert(nb: Any) -> nbformat.NotebookNode:
    """A copy of the notebook holding only inert content, within the module's caps (see the module)."""
    meta = nb.get("metadata") if isinstance(nb, dict) and isinstance(nb.get("metadata"), dict) else {}
    kept = {k: _plain(meta.get(k)) for k in NOTEBOOK_METADATA}
    out = v4.new_notebook(metadata={k: v for k, v in kept.items() if isinstance(v, dict)
                                    and all(isinstance(v.get(r), str) for r in NOTEBOOK_METADATA[k])})
    cells = nb.get("cells") if isinstance(nb, dict) and isinstance(nb.get("cells"), list) else []
    cells = [(i, c, nbgrader_metadata(c)) for i, c in enumerate(cells)
             if isinstance(c, dict) and c.get("cell_type") in CELL_TYPES]
    free = sum(grading is None for _, _, grading in cells)
    pairs, seen, ids = [], 0, set()

    def unique(cid: Any, fallback: str) -> str:
        cid = cid if isinstance(cid, str) and CELL_ID.fullmatch(cid) else fallback
        while cid in ids:
            cid += "-x"
        ids.add(cid)
        return cid

    for i, cell, grading in cells:
        seen += grading is None
        if grading is None and free > MAX_FREE_CELLS and seen >= MAX_FREE_CELLS:
            if seen == MAX_FREE_CELLS:           # the first cell left out: a note stands in its place
                pairs.append(({}, v4.new_markdown_cell(
                    f"[{free - seen + 1:,} cells without nbgrader metadata from here on are not shown: at most "
                    f"{MAX_FREE_CELLS} are]", id=unique(CUT_CELL_ID, CUT_CELL_ID))))
            continue
        new = {"code": v4.new_code_cell, "markdown": v4.new_markdown_cell, "raw": v4.new_raw_cell}[cell["cell_type"]]()
        new.metadata = {"nbgrader": grading} if grading else {}
        new.id = unique(cell.get("id"), f"cell-{i}")
        pairs.append((cell, new))
    total, markdown, pictures = (Budget(MAX_NOTEBOOK_CHARS), Budget(MAX_NOTEBOOK_MARKDOWN_CHARS),
                                 Budget(MAX_NOTEBOOK_IMAGE_CHARS))
    for cell, new in pairs:
        if not cell:                                   # the note on cells left out
            total.spend(markdown.spend(new.source))
    for graded in (True, False):                       # graded cells' sources first, then the others
        for cell, new in pairs:
            if bool(new.metadata) == graded and cell:
                _source(cell, new, total, markdown, pictures)
    for cell, new in pairs:                            # then outputs
        if new.cell_type == "code":
            room, outputs = Budget(MAX_CELL_OUTPUT_CHARS), cell.get("outputs")
            outputs = outputs if isinstance(outputs, list) else []
            new.execution_count = _count(cell.get("execution_count"))
            if len(outputs) > MAX_OUTPUTS:                # the last one kept: a note on the rest
                outputs = outputs[:MAX_OUTPUTS - 1] + [{"output_type": "stream", "name": "stdout", "text":
                                                        f"[{len(outputs) - MAX_OUTPUTS + 1:,} more outputs not shown]"}]
            new.outputs = [_output(o, room, total, pictures) for o in outputs]
    out.cells = [new for _, new in pairs]
    return out


def _source(cell: dict, new: nbformat.NotebookNode, total: Budget, markdown: Budget, pictures: Budget) -> None:
    """The new cell's source (and a markdown cell's attachments), cut and made inert."""
    source = cell.get("source", "")
    if new.cell_type == "code":
        new.source = total.spend(clip(source, total.allow(MAX_CODE_CHARS)))
        return
    names = set()
    if new.cell_type == "markdown" and isinstance(cell.get("attachments"), dict):
        kept = {}
        for name, bundle in list(cell["attachments"].items())[:100]:
            if not (isinstance(name, str) and NAME.fullmatch(name) and isinstance(bundle, dict)):
                continue
            for mime, value in bundle.items():
                if (b64 := image_b64(mime, value, pictures.left)) is not None and len(b64) <= pictures.left:
                    kept.setdefault(name, {})[mime] = pictures.spend(b64)
        names = set(kept)
        if kept:
            new.attachments = kept
    limit = markdown.allow(total.allow(MAX_MARKDOWN_CHARS))
    new.source = total.spend(markdown.spend(cut(inert_markdown(clip(source, limit), names), limit)))  # still inert
