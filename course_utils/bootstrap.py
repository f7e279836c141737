"""The first code cell of every notebook: install the course from its repository where it is missing (Colab, Binder)."""
from __future__ import annotations

from pathlib import Path

import nbformat

REPO_URL = "https://github.com/genvit-course/genvit"  # the course repository: launch links and the bootstrap cell
TAG = "bootstrap"
NBGRADER = {"grade": False, "grade_id": TAG, "locked": True, "schema_version": 3, "solution": False, "task": False}


def cell_source(repo_url: str = REPO_URL) -> str:
    """The bootstrap cell's code: import course_utils, else pip-install the course from repo_url."""
    return ("# Colab / Binder: install the course package from its repository when it is not installed.\n"
            "try:\n"
            "    import course_utils\n"
            "except ImportError:\n"
            "    import subprocess, sys\n"
            f'    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "git+{repo_url}"])')


def is_bootstrap(cell: nbformat.NotebookNode) -> bool:
    """True for a cell tagged as the bootstrap cell."""
    return TAG in cell.get("metadata", {}).get("tags", [])


def bootstrap_cell(nbgrader: bool, repo_url: str = REPO_URL) -> nbformat.NotebookNode:
    """A fresh, unexecuted bootstrap cell; with nbgrader metadata of a locked, non-graded cell when asked."""
    metadata = {"tags": [TAG], **({"nbgrader": dict(NBGRADER)} if nbgrader else {})}
    cell = nbformat.v4.new_code_cell(cell_source(repo_url), metadata=metadata)
    cell.id = TAG
    return cell


def ensure_bootstrap(nb: nbformat.NotebookNode, nbgrader: bool, repo_url: str = REPO_URL) -> bool:
    """Make the bootstrap cell the notebook's first code cell (replacing any old one); True when nb changed."""
    cells = [c for c in nb.cells if not is_bootstrap(c)]
    first_code = next((i for i, c in enumerate(cells) if c.cell_type == "code"), len(cells))
    cells.insert(first_code, bootstrap_cell(nbgrader, repo_url))
    changed = cells != nb.cells
    nb.cells = cells
    return changed


def ensure_file(path: Path, nbgrader: bool, repo_url: str = REPO_URL) -> bool:
    """ensure_bootstrap on a notebook file, rewritten only when it changed; True when it did."""
    nb = nbformat.read(path, as_version=4)
    if not ensure_bootstrap(nb, nbgrader, repo_url):
        return False
    nbformat.write(nb, path)
    return True


def first_code_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    """The notebook's first code cell, or None."""
    return next((c for c in nb.cells if c.cell_type == "code"), None)


def main() -> None:
    """Insert or update the bootstrap cell in every notebook of lectures/ and solutions/ (maintainers)."""
    from .cli import SOURCE, LECTURES, course_root

    root = course_root()
    for folder, nbgrader in ((LECTURES, False), (SOURCE, True)):
        for path in sorted((root / folder).rglob("*.ipynb")):
            if ".ipynb_checkpoints" not in path.parts and ensure_file(path, nbgrader):
                print(f"bootstrap cell written: {path.relative_to(root)}")


if __name__ == "__main__":
    main()
