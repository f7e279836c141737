"""`course site`: a static website of the course (Sphinx + MyST-NB) from the committed notebooks, never re-executed."""
from __future__ import annotations

import argparse
import html
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from .bootstrap import EDITION_URL, URL_VARIABLE, edition_url, retarget

SITE_CONFIG = "site"  # conf.py and css, in the repository
OUT = "build/site"    # the build copy of the sources goes next to it: build/site-src
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
MATHJAX_KEEP = ("tex-chtml.js", "input", "output/chtml.js", "output/chtml", "ui", "a11y", "adaptors")
# README sections the site takes at build time (one source): page -> (heading prefix, title on the site)
README_PAGES = {"results": ("## Measured run times and results", "Results"),
                "ta_guide": ("## For teaching assistants", "TA guide: grading a batch of submissions"),
                "grading": ("### 5. Export and final grades", "Grading scheme")}
STUDENT_PAGES = ("results",)  # a student edition (no solutions/, its README by `course publish`) has no TA pages


# ---- README sections
def _section_span(lines: list[str], heading: str) -> tuple[int, int]:
    """Line range (heading line, end) of the section whose heading starts with `heading`, code fences skipped."""
    level, start, fence = len(heading) - len(heading.lstrip("#")), None, False
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fence = not fence
        if fence or not re.match(r"#{1,6} ", line):
            continue
        if start is None and line.startswith(heading):
            start = i
        elif start is not None and len(line) - len(line.lstrip("#")) <= level:
            return start, i
    if start is None:
        raise SystemExit(f"course site: README.md has no section starting with {heading!r}; the site takes a page "
                         "from it: restore the heading or update README_PAGES in course_utils/site.py")
    return start, len(lines)


def readme_section(text: str, heading: str) -> str:
    """The body of the README section whose heading starts with `heading` (without the heading line)."""
    lines = text.splitlines()
    start, end = _section_span(lines, heading)
    return "\n".join(lines[start + 1:end]).strip() + "\n"


def replace_section(text: str, heading: str, replacement: str) -> str:
    """text with the section starting at `heading` (heading line included) replaced by `replacement`."""
    lines = text.splitlines()
    start, end = _section_span(lines, heading)
    return "\n".join([*lines[:start], replacement.rstrip("\n"), "", *lines[end:]]).strip() + "\n"


def promote_headings(markdown: str, by: int) -> str:
    """Raise every heading outside code fences by `by` levels (a README '### x' becomes '## x' on its own page)."""
    out, fence = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fence = not fence
        if not fence and re.match(r"#{2,6} ", line):
            line = line[by:] if line.startswith("#" * (by + 1)) else line
        out.append(line)
    return "\n".join(out) + "\n"


def link_names(markdown: str, targets: dict[str, str]) -> str:
    """Turn inline code naming a lecture or assignment (`01_autoencoders`) into a link to its page."""
    return re.sub(r"`([A-Za-z0-9_]+)`", lambda m: f"[`{m[1]}`]({targets[m[1]]})" if m[1] in targets else m[0],
                  markdown)


# ---- widget outputs: a finished tqdm bar instead of the "0%" fallback
def _html_text(value: str) -> str:
    """Plain text of a widget's HTML value (entities decoded, figure spaces as spaces)."""
    return html.unescape(re.sub(r"<[^>]+>", "", value)).replace("\u2007", " ").replace("\u200b", "").strip()


def widget_text(model_id: str, state: dict) -> str | None:
    """The final text of a saved tqdm bar (HBox of HTML, progress, HTML), or None for any other widget."""
    box = state.get(model_id, {})
    kids = [state.get(c.removeprefix("IPY_MODEL_"), {}) for c in box.get("state", {}).get("children", [])]
    names = [k.get("model_name") for k in kids]
    if box.get("model_name") != "HBoxModel" or names != ["HTMLModel", "FloatProgressModel", "HTMLModel"]:
        return None
    left, bar, right = (k["state"] for k in kids)
    desc = re.sub(r"\s*\d+%$", "", _html_text(left.get("value", ""))).rstrip(": ")
    n, total = bar.get("value", 0), bar.get("max", 0)
    last = _html_text(right.get("value", ""))
    if not total:
        return f"{desc}: {n:g} [{last}]" if desc else last
    frac = min(max(n / total, 0.0), 1.0)
    filled = "\u2588" * round(10 * frac) + " " * (10 - round(10 * frac))
    status = " (stopped early)" if bar.get("bar_style") == "danger" else ""
    counts = f"{n:g}/{total:g}"
    tail = last if last.startswith(counts) else f"{counts} (last update: {last})"
    return f"{desc + ': ' if desc else ''}{round(100 * frac):3d}%|{filled}| {tail}{status}"


def replace_widgets(nb: nbformat.NotebookNode) -> int:
    """Replace each widget view by a text output of its final state; drop the widget state. Returns the count."""
    state = nb.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    count = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view is None:
                continue
            text = widget_text(view.get("model_id", ""), state)
            if text is None:  # another widget: keep its own plain-text fallback, never the live view
                text = output["data"].get("text/plain", "")
                text = "".join(text) if isinstance(text, list) else text
            output["data"] = {"text/plain": text}
            count += 1
    return count


# ---- markdown as Jupyter reads it
def separate_display_math(markdown: str) -> str:
    """Put a blank line before each multi-line `$$` block: MyST, unlike Jupyter, lets no block interrupt a paragraph.

    Without it a line inside the block that starts with `+` or `-` becomes a list item and the math is torn apart.
    """
    out, inside, fence = [], False, False
    for line in markdown.split("\n"):
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            fence = not fence
        if not fence and stripped.startswith("$$") and stripped.count("$$") % 2 == 1:
            if not inside and out and out[-1].strip():
                out.append("")
            inside = not inside
        out.append(line)
    return "\n".join(out)


# ---- staging: a build copy of the notebooks and generated pages
def _copy_notebook(src: Path, dst: Path, repo_url: str) -> None:
    """Copy a notebook into the stage: widget views replaced by their final text, display math set apart,
    the bootstrap cell pointed at repo_url (the repository of the launch links)."""
    nb = nbformat.read(src, as_version=4)
    replace_widgets(nb)
    retarget(nb, repo_url)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = separate_display_math(cell.source)
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)


def _mathjax(dst: Path) -> None:
    """Copy MathJax 3 (the django-static-mathjax wheel's es5 build) into the stage: no CDN."""
    try:
        import mathjax
    except ImportError:
        raise SystemExit("course site: MathJax is missing; install the site tools: pip install -e '.[test]'") from None
    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    for rel in MATHJAX_KEEP:
        src = es5 / rel
        (shutil.copytree(src, dst / rel, dirs_exist_ok=True) if src.is_dir()
         else (dst / rel).parent.mkdir(parents=True, exist_ok=True) or shutil.copy2(src, dst / rel))


def _toctree(caption: str, entries: list[str]) -> str:
    """A MyST toctree block."""
    return "```{toctree}\n:caption: " + caption + "\n:maxdepth: 1\n\n" + "\n".join(entries) + "\n```\n"


def stage(root: Path, dst: Path, repo_url: str | None = None) -> dict[str, list[str]]:
    """Write the Sphinx source tree into dst: config, notebooks, pages from README. Returns the docnames by kind."""
    repo_url = repo_url or edition_url()
    pages = README_PAGES if (root / "solutions").is_dir() else {k: README_PAGES[k] for k in STUDENT_PAGES}
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(root / SITE_CONFIG, dst)
    lectures = sorted((root / "lectures").glob("*.ipynb"))
    assignments = sorted((root / "assignments").glob("*/*.ipynb"))
    if not lectures:
        raise SystemExit(f"course site: no notebooks in {root / 'lectures'}")
    for path in [*lectures, *assignments]:
        _copy_notebook(path, dst / path.relative_to(root), repo_url)
    _mathjax(dst / "_static" / "mathjax")
    docs = {"lectures": [str(p.relative_to(root).with_suffix("")) for p in lectures],
            "assignments": [str(p.relative_to(root).with_suffix("")) for p in assignments],
            "guides": list(pages)}
    readme = (root / "README.md").read_text()
    targets = {Path(d).name: d + ".ipynb" for d in docs["lectures"]}
    targets |= {Path(d).parent.name: d + ".ipynb" for d in docs["assignments"]}
    title = readme.splitlines()[0].lstrip("# ").strip()
    intro = readme.split("\n## ", 1)[0].split("\n", 1)[1].strip()
    index = [f"# {title}\n", intro + "\n",
             "## Syllabus\n", link_names(readme_section(readme, "## Syllabus"), targets),
             "## For students\n", readme_section(readme, "## For students"),
             _toctree("Lectures", docs["lectures"]), _toctree("Assignments", docs["assignments"]),
             _toctree("Results and grading", docs["guides"])]
    (dst / "index.md").write_text("\n".join(index))
    for page, (heading, page_title) in pages.items():
        level = len(heading) - len(heading.lstrip("#"))
        body = readme_section(readme, heading)
        if page == "ta_guide":  # the scheme has its own page
            scheme = README_PAGES["grading"][0]
            body = replace_section(body, scheme, f"{scheme}\n\nSee the [grading scheme](grading.md).")
        (dst / f"{page}.md").write_text(f"# {page_title}\n\n" + promote_headings(body, level - 1))
    return docs


def build(root: Path, out: Path, repo_url: str | None = None, branch: str = "main", jobs: int = 1) -> tuple[float, int]:
    """Stage and build the site into out with Sphinx (notebooks are not executed); returns (seconds, warnings).

    Launch links and bootstrap cells point at repo_url, by default the student edition (`edition_url()`)."""
    start = time.perf_counter()
    repo_url = repo_url or edition_url()
    src, doctrees = out.with_name(out.name + "-src"), out.with_name(out.name + "-doctrees")
    stage(root, src, repo_url)
    env = dict(os.environ, COURSE_SITE_REPO_URL=repo_url, COURSE_SITE_BRANCH=branch, PYTHONHASHSEED="0")
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-E", "-j", str(jobs),
           "-d", str(doctrees), str(src), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"course site: sphinx failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}{proc.stderr[-4000:]}")
    warnings = [line for line in proc.stderr.splitlines() if "WARNING" in line or "ERROR" in line]
    for line in warnings:
        print(line.replace(str(src) + "/", ""), file=sys.stderr)
    return time.perf_counter() - start, len(warnings)


def cmd_site(args: argparse.Namespace) -> int:
    """Build the course website into build/site/ and say how to serve it."""
    from .layout import course_root

    root = course_root()
    out = Path(args.out) if args.out else root / OUT
    seconds, warnings = build(root, out, args.repo_url, args.branch, args.jobs)
    print(f"site built in {seconds:.1f} s ({warnings} Sphinx warnings, printed above): {out / 'index.html'}")
    print(f"serve it: python -m http.server -d {out}  (then open http://localhost:8000)")
    return 0


def add_command(sub: argparse._SubParsersAction) -> None:
    """Register `course site` on the CLI's subparsers."""
    p = sub.add_parser("site", help="build the course website (Sphinx) into build/site/, offline")
    p.add_argument("--out", help=f"output folder (default: {OUT})")
    p.add_argument("--repo-url", help=f"repository of the launch links, the student edition (default: ${URL_VARIABLE}, "
                                      f"else {EDITION_URL})")
    p.add_argument("--branch", default="main", help="branch for launch links (default: main)")
    p.add_argument("--jobs", type=int, default=1, help="parallel Sphinx readers (default 1)")
    p.set_defaults(func=cmd_site)
