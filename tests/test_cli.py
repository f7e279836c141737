"""The `course` command works from any folder: doctor, lectures (time table) and release."""
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


def course(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "course_utils.cli", *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=600)


def test_doctor_from_another_folder(tmp_path):
    proc = course("doctor", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for word in ("torch", "device", "mode", "data source", "source=solutions release=assignments"):
        assert word in proc.stdout
    assert not (tmp_path / "gradebook.db").exists()


@pytest.fixture
def tiny_course(tmp_path):
    """A course folder with one fast lecture and one assignment, found through $COURSE_ROOT."""
    (tmp_path / "lectures").mkdir()
    (tmp_path / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text())
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os\nprint(os.environ['COURSE_MODE'])")]
    nbformat.write(nb, tmp_path / "lectures" / "00_tiny.ipynb")
    bad = nbformat.v4.new_notebook()
    bad.cells = [nbformat.v4.new_code_cell("1 / 0")]
    nbformat.write(bad, tmp_path / "lectures" / "01_broken.ipynb")
    src = tmp_path / "solutions" / "t1"
    src.mkdir(parents=True)
    meta = dict(schema_version=3, task=False)
    sol = nbformat.v4.new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION")
    sol.metadata["nbgrader"] = dict(grade=False, grade_id="f", locked=False, solution=True, **meta)
    test = nbformat.v4.new_code_cell("assert f(1) == 2")
    test.metadata["nbgrader"] = dict(grade=True, grade_id="t", locked=True, points=1, solution=False, **meta)
    anb = nbformat.v4.new_notebook()
    anb.cells = [sol, test]
    nbformat.write(anb, src / "t1.ipynb")
    return tmp_path


def test_lectures_prints_a_time_table_and_flags_failures(tiny_course, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    proc = course("lectures", "--mode", "full", "--out", str(out), cwd="/", env={"COURSE_ROOT": str(tiny_course)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "| 00_tiny " in proc.stdout and "| full " in proc.stdout and "ZeroDivisionError" in proc.stdout
    executed = nbformat.read(out / "00_tiny.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"].strip() == "full"
    proc = course("lectures", "00", "--mode", "quick", "--inplace", cwd="/", env={"COURSE_ROOT": str(tiny_course)})
    assert proc.returncode == 0 and "1 lectures" in proc.stdout
    assert nbformat.read(tiny_course / "lectures" / "00_tiny.ipynb", as_version=4).cells[0].outputs
    proc = course("lectures", "99_nothing", cwd="/", env={"COURSE_ROOT": str(tiny_course)})
    assert proc.returncode != 0 and "no match" in proc.stderr


def test_release_generates_from_any_folder(tiny_course, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    config = (tiny_course / "nbgrader_config.py").read_text()
    (tiny_course / "nbgrader_config.py").write_text(config.replace(
        "HERE = os.path.dirname(os.path.abspath(__file__))", f"HERE = {str(tiny_course)!r}"))
    proc = course("release", cwd=elsewhere, env={"COURSE_ROOT": str(tiny_course)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    released = json.loads((tiny_course / "assignments" / "t1" / "t1.ipynb").read_text())
    text = json.dumps(released)
    assert "raise NotImplementedError" in text and "return 2 * x" not in text
    assert not list(elsewhere.iterdir()), "nothing may be written where the command was run"
