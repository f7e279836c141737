"""`course publish OUT`: the student edition, the only copy of the course that students may reach.

Rule: the edition is built from an allow-list (EDITION: the lectures, the released assignments, the modules of
course_utils that a student's kernel and the `course` command use, the checkpoints, the website's sources,
environment.yml; plus a README, a pyproject and a .gitignore written here), never by deleting things from a copy
of the full course. Files are copied as committed: a released notebook that differed from the release would show
as edited locked cells when graded. So the bootstrap cells must already point at the edition's repository
(`bootstrap.edition_url()`; `python -m course_utils.bootstrap` and `course release` write them).

Before anything reaches OUT the build is scanned: a line of meaningful length (MIN_CHARS or more once whitespace is
collapsed; imports left out) that stands in a solution of solutions/ (a `### BEGIN SOLUTION` region, a solution
cell without markers as nbgrader clears it, a hidden-test region) or in cases/ is TA text, unless the course shows
it to students on purpose (the same line stands in a committed lecture or in the release). One such line in any
file of the build, a notebook or module importing a course_utils module the edition lacks, or a bootstrap cell
that installs from elsewhere refuses the edition: EditionError, the build removed, OUT left as it was.
"""
from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import tempfile
import textwrap
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .bootstrap import cell_source, edition_url, first_code_cell, is_bootstrap
from .layout import Layout
from .site import readme_section

STUDENT_MODULES = ("__init__", "bootstrap", "checkpoints", "cli", "data", "device", "grading", "layout", "lectures",
                   "mode", "plot", "results", "site", "train", "workspace")
TA_MODULES = ("grader", "publish", "rubric")  # cli.py offers their commands only where they are installed
EDITION = ("lectures/*.ipynb", "assignments/*/**/*", "checkpoints/*.pt", "site/conf.py", "site/_static/*",
           "environment.yml", *(f"course_utils/{m}.py" for m in STUDENT_MODULES))
SKIP_PARTS = (".ipynb_checkpoints", "__pycache__")
README_SECTIONS = ("## Syllabus", "## For students", "## Measured run times and results")
GITIGNORE = ".venv/\n__pycache__/\n*.egg-info/\n.ipynb_checkpoints/\nbuild/\nwork/\n"
MIN_CHARS = 20
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
IMPORT = re.compile(r"^\s*(?:from|import)\s+course_utils((?:\.\w+)*)", re.M)


class EditionError(Exception):
    """The edition would hold TA text or miss a module its notebooks import; nothing was written to OUT."""


@dataclass(frozen=True)
class Leak:
    """A line of TA text found in a file of the edition."""
    path: str    # in the edition
    line: str    # normalised
    origin: str  # where the course keeps it (solutions/... cell grade_id, cases/...:line)


@dataclass(frozen=True)
class Edition:
    """What `publish` wrote."""
    out: Path
    files: tuple[str, ...]
    size: int      # bytes
    secrets: int   # TA lines looked for
    shared: int    # solution or case lines that lectures or releases show on purpose (not secret)

    def summary(self) -> str:
        """One paragraph for the terminal."""
        return (f"student edition in {self.out}: {len(self.files)} files, {self.size / 2**20:.1f} MiB; scanned for "
                f"{self.secrets} lines of solutions and hidden cases: none found ({self.shared} lines they share "
                "with the lectures or the releases are public on purpose)")


# ---- text
def normal(line: str) -> str:
    """A line with its whitespace collapsed, as the scan compares it."""
    return " ".join(line.split())


def _strings(value: object) -> Iterator[str]:
    """Every string in a JSON value (keys included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)


def file_lines(path: Path) -> set[str]:
    """The normalised lines of a file: of every string in it for JSON (notebooks), else of its bytes as text."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # a binary file: any text inside it still shows as lines
    chunks: Iterable[str] = [text]
    if path.suffix in (".ipynb", ".json"):
        try:
            chunks = [*_strings(json.loads(text)), text]
        except ValueError:
            pass
    return {normal(line) for chunk in chunks for line in chunk.splitlines()}


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _meaningful(line: str) -> bool:
    return len(line) >= MIN_CHARS and not line.startswith(("import ", "from ")) and not any(m in line for m in MARKERS)


def solution_text(notebook: Path) -> tuple[dict[str, str], set[str]]:
    """(line -> its cell, for the lines nbgrader keeps from students) and the lines it releases, of one notebook."""
    inside, outside = {}, set()
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        lines = _source(cell).splitlines()
        where = f"{Path(*notebook.parts[-3:])}, cell {meta.get('grade_id', '?')}"
        marked = any(m in line for line in lines for m in MARKERS)
        depth = 1 if meta.get("solution") and not marked else 0  # nbgrader replaces an unmarked solution cell whole
        for line in lines:
            if any(m in line for m in MARKERS[0::2]):
                depth += 1
            elif any(m in line for m in MARKERS[1::2]):
                depth -= 1
            elif depth > 0:
                inside.setdefault(normal(line), where)
            else:
                outside.add(normal(line))
    return inside, outside


def public_lines(root: Path) -> set[str]:
    """Lines the course shows students on purpose: the cell sources of the committed lectures and releases."""
    public, lay = set(), Layout(root)
    for path in [*sorted(lay.lectures.glob("*.ipynb")), *sorted(lay.releases.glob("*/*.ipynb"))]:
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            public.update(normal(line) for line in _source(cell).splitlines())
    return public


def secret_lines(root: Path) -> tuple[dict[str, str], int]:
    """(TA line -> where it comes from) of solutions/ and cases/, and how many the lectures or releases also show."""
    found: dict[str, str] = {}
    public, lay = public_lines(root), Layout(root)
    for notebook in sorted(lay.solutions.glob("*/*.ipynb")):
        inside, outside = solution_text(notebook)
        public |= outside
        for line, where in inside.items():
            found.setdefault(line, where)
    for case in sorted(lay.cases.glob("*.py")):
        for number, line in enumerate(case.read_text(encoding="utf-8").splitlines(), 1):
            found.setdefault(normal(line), f"cases/{case.name}:{number}")
    meaningful = {line: where for line, where in found.items() if _meaningful(line)}
    secrets = {line: where for line, where in meaningful.items() if line not in public}
    return secrets, len(meaningful) - len(secrets)


def scan(folder: Path, secrets: dict[str, str]) -> list[Leak]:
    """Every secret line that stands in a file under folder."""
    leaks = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = str(path.relative_to(folder))
        leaks += [Leak(rel, line, secrets[line]) for line in sorted(file_lines(path) & secrets.keys())]
    return leaks


def misdirected(folder: Path, url: str) -> list[str]:
    """The notebooks of folder whose first code cell is not the bootstrap cell installing from url."""
    wrong = []
    for path in sorted(folder.rglob("*.ipynb")):
        first = first_code_cell(nbformat.read(path, as_version=4))
        if first is None or not is_bootstrap(first) or first.source != cell_source(url):
            wrong.append(str(path.relative_to(folder)))
    return wrong


def _module_imports(path: Path) -> set[str]:
    """The course_utils modules a module of the package imports (relative or absolute, at any depth)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_utils."):
            names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names |= {a.name.split(".")[1] for a in node.names if a.name.startswith("course_utils.")}
    return names


def missing_modules(folder: Path) -> list[str]:
    """'file: course_utils.X' for each course_utils module that a notebook or a module of folder imports and folder
    lacks (the TA modules excepted: the CLI imports them only where they are installed)."""
    have = lambda name: (folder / "course_utils" / f"{name}.py").is_file()  # noqa: E731
    missing = []
    for path in sorted(folder.rglob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for dotted in IMPORT.findall(cell.source) if cell.cell_type == "code" else []:
                name = dotted.strip(".").split(".")[0]
                if name and not have(name):
                    missing.append(f"{path.relative_to(folder)}: course_utils.{name}")
    for path in sorted((folder / "course_utils").glob("*.py")):
        missing += [f"{path.relative_to(folder)}: course_utils.{name}" for name in _module_imports(path)
                    if not have(name) and name not in TA_MODULES]
    return sorted(set(missing))


# ---- the files written here
def _toml(value: object) -> str:
    """A TOML value for strings, lists of strings and flat tables of strings (JSON strings are TOML strings)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml(item)}" for key, item in value.items()) + " }"
    if isinstance(value, list):
        return "[\n" + "".join(f"    {_toml(item)},\n" for item in value) + "]"
    return json.dumps(value)


def pyproject(root: Path) -> str:
    """The edition's pyproject: the course's package metadata and dependencies, course_utils without its TA parts."""
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    project = config["project"]
    keys = ("name", "version", "description", "readme", "requires-python", "license", "dependencies")
    lines = ["# The student edition of the course, written by `course publish`.", "[build-system]",
             *(f"{k} = {_toml(v)}" for k, v in config["build-system"].items()), "", "[project]",
             *(f"{k} = {_toml(project[k])}" for k in keys if k in project), "", "[project.optional-dependencies]",
             *(f"{k} = {_toml(v)}" for k, v in project.get("optional-dependencies", {}).items()), "",
             "[project.scripts]", *(f"{k} = {_toml(v)}" for k, v in project["scripts"].items()), "",
             "[tool.setuptools]", 'packages = ["course_utils"]']
    return "\n".join(lines) + "\n"


def _commit(root: Path) -> str:
    """The course's commit, marked when the checkout has uncommitted changes; 'unknown' outside git."""
    git = lambda *a: subprocess.run(["git", *a], cwd=root, capture_output=True, text=True)  # noqa: E731
    head = git("rev-parse", "--short", "HEAD")
    if head.returncode:
        return "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty else "")


def readme(root: Path, url: str) -> str:
    """The edition's README: how to start, then the course README's sections for students."""
    text = (root / "README.md").read_text(encoding="utf-8")
    title = text.splitlines()[0].lstrip("# ").strip()
    intro = ("The student edition of the course: the lectures (committed with their outputs), the assignments as "
             "released to students, the helper package `course_utils` with the `course` command, the shipped "
             "checkpoints and the sources of the course website. The solutions, the hidden test cases and the "
             f"grading tools stay with your instructor. Written by `course publish` from the course at commit "
             f"{_commit(root)}; its repository is {url}.")
    parts = [f"# {title}: student edition\n", textwrap.fill(intro, 110) + "\n", "## Start\n",
             "```bash\npython3 -m venv .venv && .venv/bin/pip install -e .\n"
             ".venv/bin/course workspace --lectures     # your own copies in work/\n"
             ".venv/bin/jupyter lab work/\n```\n",
             "On Colab or Binder the first code cell of every notebook installs the course from this repository.\n"]
    for heading in README_SECTIONS:
        body = readme_section(text, heading)  # says which heading is missing
        parts += [next(line for line in text.splitlines() if line.startswith(heading)) + "\n", body]
    return "\n".join(parts)


# ---- build, check, move
def _allowed(root: Path) -> list[Path]:
    """The files of the course that the allow-list takes, sorted."""
    files = {p for pattern in EDITION for p in root.glob(pattern)
             if p.is_file() and not p.is_symlink() and not set(SKIP_PARTS) & set(p.relative_to(root).parts)}
    return sorted(files)


def build(root: Path, stage: Path, url: str) -> None:
    """Write the edition into the empty folder stage: the allow-list as committed, README, pyproject, .gitignore."""
    for path in _allowed(root):
        target = stage / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    (stage / "README.md").write_text(readme(root, url), encoding="utf-8")
    (stage / "pyproject.toml").write_text(pyproject(root), encoding="utf-8")
    (stage / ".gitignore").write_text(GITIGNORE, encoding="utf-8")


def check(root: Path, stage: Path, url: str) -> tuple[int, int]:
    """Raise EditionError when stage holds TA text, misses an imported module or installs from elsewhere than url;
    else return the (secrets, shared) counts."""
    secrets, shared = secret_lines(root)
    leaks = scan(stage, secrets)
    if leaks:
        shown = "\n".join(f"  {k.path}: {k.line[:100]}  (from {k.origin})" for k in leaks[:20])
        raise EditionError(f"{len(leaks)} lines of solutions or hidden cases in the edition:\n{shown}"
                           + (f"\n  ... and {len(leaks) - 20} more" if len(leaks) > 20 else "")
                           + "\nTake them out of the course file named, or show them in a lecture if they are public.")
    missing = missing_modules(stage)
    if missing:
        raise EditionError("the edition lacks modules that its notebooks or modules import (add them to "
                           "publish.STUDENT_MODULES if they hold no TA text):\n  " + "\n  ".join(missing))
    wrong = misdirected(stage, url)
    if wrong:
        raise EditionError(f"bootstrap cells that do not install from {url}:\n  " + "\n  ".join(wrong) + "\nRun "
                           f"`COURSE_EDITION_URL={url} python -m course_utils.bootstrap` and `course release` (or set "
                           "EDITION_URL in course_utils/bootstrap.py), then commit the notebooks.")
    return len(secrets), shared


def _empty(out: Path) -> bool:
    """True when out is missing, or a folder holding nothing but a .git folder."""
    return not out.exists() or (out.is_dir() and all(p.name == ".git" for p in out.iterdir()))


def publish(root: Path, out: Path, url: str | None = None) -> Edition:
    """Build the student edition of the course at root, check it, and move it into out (new, or empty but .git)."""
    root, out, url = Path(root).resolve(), Path(out).resolve(), url or edition_url()
    if not _empty(out):
        raise EditionError(f"{out} is not empty: publish into a new folder, or empty it first (a .git folder may "
                           "stay, e.g. `git rm -r -q .` in a clone of the edition's repository)")
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.publish-", dir=out.parent))
    try:
        build(root, stage, url)
        secrets, shared = check(root, stage, url)
        files = tuple(sorted(str(p.relative_to(stage)) for p in stage.rglob("*") if p.is_file()))
        size = sum((stage / f).stat().st_size for f in files)
        out.mkdir(exist_ok=True)
        for entry in stage.iterdir():
            entry.rename(out / entry.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return Edition(out, files, size, secrets, shared)
