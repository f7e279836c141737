"""The first code cell of every notebook: install the course from the student edition where it is missing (Colab, Binder).

Students install from the **student edition** (`course publish`), never from the full course repository, which
holds the solutions and the hidden cases. EDITION_URL below is the one place that names it; $COURSE_EDITION_URL,
when set, overrides it everywhere (`edition_url()`): the cells `python -m course_utils.bootstrap` writes, the
launch links of `course site`, and the URL `course publish` requires every bootstrap cell of the edition to carry.
"""
from __future__ import annotations

import os
from pathlib import Path

import nbformat

EDITION_URL = "https://github.com/genvit-course/genvit-student"  # the student edition's public repository
URL_VARIABLE = "COURSE_EDITION_URL"                                 # overrides it
TAG = "bootstrap"
NBGRADER = {"grade": False, "grade_id": TAG, "locked": True, "schema_version": 3, "solution": False, "task": False}


def edition_url() -> str:
    """The student edition's repository: $COURSE_EDITION_URL when set, else EDITION_URL."""
    return os.environ.get(URL_VARIABLE, "").strip() or EDITION_URL


def cell_source(repo_url: str | None = None) -> str:
    """The bootstrap cell's code: import course_utils, else pip-install the student edition from repo_url."""
    repo_url = repo_url or edition_url()
    return ("# Colab / Binder: install the course package (its student edition) when it is not installed.\n"
            "try:\n"
            "    import course_utils\n"
            "except ImportError:\n"
            "    import subprocess, sys\n"
            f'    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "git+{repo_url}"])')


def is_bootstrap(cell: nbformat.NotebookNode) -> bool:
    """True for a cell tagged as the bootstrap cell."""
    return TAG in cell.get("metadata", {}).get("tags", [])


def bootstrap_cell(nbgrader: bool, repo_url: str | None = None) -> nbformat.NotebookNode:
    """A fresh, unexecuted bootstrap cell; with nbgrader metadata of a locked, non-graded cell when asked."""
    metadata = {"tags": [TAG], **({"nbgrader": dict(NBGRADER)} if nbgrader else {})}
    cell = nbformat.v4.new_code_cell(cell_source(repo_url), metadata=metadata)
    cell.id = TAG
    return cell


def ensure_bootstrap(nb: nbformat.NotebookNode, nbgrader: bool, repo_url: str | None = None) -> bool:
    """Make the bootstrap cell the notebook's first code cell (replacing any old one); True when nb changed.

    An old bootstrap cell with the same nbgrader metadata only gets the new source: an executed lecture keeps
    its execution count and timings."""
    fresh, edited = bootstrap_cell(nbgrader, repo_url), False
    old = next((c for c in nb.cells if is_bootstrap(c)), None)
    if old is not None and old.cell_type == "code" and old.metadata.get("nbgrader") == fresh.metadata.get("nbgrader"):
        edited = old.source != fresh.source
        old.source, fresh = fresh.source, old
    cells = [c for c in nb.cells if not is_bootstrap(c)]
    first_code = next((i for i, c in enumerate(cells) if c.cell_type == "code"), len(cells))
    cells.insert(first_code, fresh)
    changed = edited or cells != nb.cells
    nb.cells = cells
    return changed


def ensure_file(path: Path, nbgrader: bool, repo_url: str | None = None) -> bool:
    """ensure_bootstrap on a notebook file, rewritten only when it changed; True when it did."""
    nb = nbformat.read(path, as_version=4)
    if not ensure_bootstrap(nb, nbgrader, repo_url):
        return False
    nbformat.write(nb, path)
    return True


def retarget(nb: nbformat.NotebookNode, repo_url: str) -> int:
    """Point every bootstrap cell of nb at repo_url, keeping its metadata; returns how many there are."""
    cells = [c for c in nb.cells if is_bootstrap(c)]
    for cell in cells:
        cell.source = cell_source(repo_url)
    return len(cells)


def first_code_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    """The notebook's first code cell, or None."""
    return next((c for c in nb.cells if c.cell_type == "code"), None)


def main() -> None:
    """Insert or update the bootstrap cell in every notebook of lectures/ and solutions/ (maintainers)."""
    from .layout import SOURCE, LECTURES, course_root

    root = course_root()
    for folder, nbgrader in ((LECTURES, False), (SOURCE, True)):
        for path in sorted((root / folder).rglob("*.ipynb")):
            if ".ipynb_checkpoints" not in path.parts and ensure_file(path, nbgrader):
                print(f"bootstrap cell written: {path.relative_to(root)}")
    print(f"bootstrap cells point at {edition_url()}; now run `course release`")


if __name__ == "__main__":
    main()
