"""The bootstrap cell: first code cell of every lecture and solution, idempotent insertion, and it really installs."""
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_utils import bootstrap

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "lectures").glob("*.ipynb")) + sorted((ROOT / "solutions").glob("*/*.ipynb"))


def _nb() -> nbformat.NotebookNode:
    """A small notebook: a title, two code cells."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_code_cell("print(x)")]
    return nb


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_starts_with_the_bootstrap_cell(path):
    nb = nbformat.read(path, as_version=4)
    first = bootstrap.first_code_cell(nb)
    fix = "run `python -m course_utils.bootstrap` and commit the notebooks (then `course release`)"
    assert first is not None and bootstrap.is_bootstrap(first), f"{path.name}: first code cell is not the bootstrap cell; {fix}"
    assert first.source == bootstrap.cell_source(), f"{path.name}: bootstrap cell is out of date; {fix}"
    # executed lectures run it too; where the course is installed it prints nothing
    assert first.outputs == [], f"{path.name}: the bootstrap cell printed something where the course is installed"
    assert sum(bootstrap.is_bootstrap(c) for c in nb.cells) == 1
    if "solutions" in path.parts:
        assert first.metadata["nbgrader"] == {**bootstrap.NBGRADER}
    else:
        assert "nbgrader" not in first.metadata


def test_released_assignments_start_with_the_bootstrap_cell():
    for path in sorted((ROOT / "assignments").glob("*/*.ipynb")):
        first = bootstrap.first_code_cell(nbformat.read(path, as_version=4))
        assert bootstrap.is_bootstrap(first) and first.source == bootstrap.cell_source(), path.name


def test_insertion_is_idempotent_and_goes_before_the_first_code_cell():
    nb = _nb()
    assert bootstrap.ensure_bootstrap(nb, nbgrader=True)
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "code", "code"]
    assert bootstrap.is_bootstrap(nb.cells[1]) and nb.cells[1].metadata["nbgrader"]["grade_id"] == "bootstrap"
    assert nb.cells[1].metadata["nbgrader"]["locked"] and not nb.cells[1].metadata["nbgrader"]["grade"]
    assert not bootstrap.ensure_bootstrap(nb, nbgrader=True)
    assert len(nb.cells) == 4
    nbformat.validate(nb)


def test_a_changed_url_updates_the_cell_in_place():
    nb = _nb()
    bootstrap.ensure_bootstrap(nb, nbgrader=False)
    nb.cells.insert(0, nb.cells.pop(1))  # a misplaced bootstrap cell moves back after the title
    assert bootstrap.ensure_bootstrap(nb, nbgrader=False, repo_url="https://example.org/fork")
    assert sum(bootstrap.is_bootstrap(c) for c in nb.cells) == 1
    assert nb.cells[1].source.endswith('"git+https://example.org/fork"])')
    assert "nbgrader" not in nb.cells[1].metadata


def test_an_executed_cell_keeps_its_execution_metadata_when_its_url_changes():
    nb = _nb()
    bootstrap.ensure_bootstrap(nb, nbgrader=True)
    nb.cells[1].execution_count, nb.cells[1].metadata["execution"] = 1, {"iopub.status.idle": "2026-12-02T19:26:14Z"}
    assert bootstrap.ensure_bootstrap(nb, nbgrader=True, repo_url="https://example.org/fork")
    assert nb.cells[1].execution_count == 1 and "execution" in nb.cells[1].metadata
    assert nb.cells[1].source == bootstrap.cell_source("https://example.org/fork")
    assert not bootstrap.ensure_bootstrap(nb, nbgrader=True, repo_url="https://example.org/fork")


def test_the_edition_url_is_the_constant_unless_the_variable_is_set(monkeypatch):
    monkeypatch.delenv(bootstrap.URL_VARIABLE, raising=False)
    assert bootstrap.edition_url() == bootstrap.EDITION_URL
    monkeypatch.setenv(bootstrap.URL_VARIABLE, " https://example.org/edition ")
    assert bootstrap.edition_url() == "https://example.org/edition"
    nb = _nb()
    bootstrap.ensure_bootstrap(nb, nbgrader=False)
    assert bootstrap.retarget(nb, bootstrap.edition_url()) == 1
    assert nb.cells[1].source.endswith('"git+https://example.org/edition"])')


def test_the_cell_installs_the_course_when_course_utils_is_missing(tmp_path):
    """Run the cell in an interpreter without course_utils, with pip faked: it calls pip with the repository."""
    fake = tmp_path / "fake"
    (fake / "subprocess").mkdir(parents=True)
    (fake / "subprocess" / "__init__.py").write_text(
        "def check_call(cmd):\n    print('CALLED', cmd[1:])\n    return 0\n")
    code = f"import sys; sys.path.insert(0, {str(fake)!r})\n" + bootstrap.cell_source()
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"'git+{bootstrap.edition_url()}'" in out.stdout and "'-m', 'pip', 'install'" in out.stdout


def test_the_cell_is_silent_where_the_course_is_installed():
    out = subprocess.run([sys.executable, "-c", bootstrap.cell_source("https://invalid.example/none")],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and out.stdout == "" and out.stderr == "", out.stderr
