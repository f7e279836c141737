"""`course workspace`: students work on a copy; the release stays untouched and their work is never overwritten."""
from pathlib import Path

import pytest

from course_utils.cli import main


@pytest.fixture
def course(tmp_path, monkeypatch):
    """A course folder with two released assignments and a lecture, found through $COURSE_ROOT."""
    root = tmp_path / "course"
    for name in ("a01_x", "a02_y"):
        (root / "assignments" / name).mkdir(parents=True)
        (root / "assignments" / name / f"{name}.ipynb").write_text(f"release of {name}")
    (root / "assignments" / "a01_x" / "data.csv").write_text("1,2")
    (root / "lectures").mkdir()
    (root / "lectures" / "00_intro.ipynb").write_text("lecture")
    (root / "nbgrader_config.py").write_text("c = get_config()\n")
    monkeypatch.setenv("COURSE_ROOT", str(root))
    return root


def test_copies_then_keeps_work_then_force_keeps_a_backup(course, tmp_path, capsys):
    work = tmp_path / "mywork"
    assert main(["workspace", "a01", "--to", str(work)]) == 0
    mine = work / "a01_x" / "a01_x.ipynb"
    assert mine.read_text() == "release of a01_x" and (work / "a01_x" / "data.csv").is_file()
    assert not (work / "a02_y").exists() and not (work / "lectures").exists()
    mine.write_text("my answers")
    (course / "assignments" / "a01_x" / "extra.py").write_text("new in the release")
    capsys.readouterr()
    assert main(["workspace", "--to", str(work), "--lectures"]) == 0
    out = capsys.readouterr().out
    assert mine.read_text() == "my answers" and "kept (your work" in out
    assert (work / "a01_x" / "extra.py").is_file() and (work / "a02_y" / "a02_y.ipynb").is_file()
    assert (work / "lectures" / "00_intro.ipynb").read_text() == "lecture"
    assert main(["workspace", "a01", "--to", str(work), "--force"]) == 0
    assert mine.read_text() == "release of a01_x"
    (backup,) = (work / "a01_x").glob("a01_x.backup-*.ipynb")
    assert backup.read_text() == "my answers"
    assert (course / "assignments" / "a01_x" / "a01_x.ipynb").read_text() == "release of a01_x"


def test_default_folder_is_work_in_the_course_and_git_ignored(course):
    assert main(["workspace"]) == 0
    assert (course / "work" / "a02_y" / "a02_y.ipynb").is_file()
    gitignore = (Path(__file__).resolve().parents[1] / ".gitignore").read_text().splitlines()
    assert "/work/" in gitignore


def test_unknown_assignment_says_what_exists(course):
    with pytest.raises(SystemExit, match="a01_x, a02_y"):
        main(["workspace", "a99"])
