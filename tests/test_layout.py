"""The course layout: one object answers every path, and agrees with what nbgrader reads from nbgrader_config.py."""
from __future__ import annotations

from pathlib import Path

from course_utils.layout import Layout, atomic_write, course_root


def nbgrader_view(root: Path) -> dict[str, str]:
    """The folder settings and db_url as nbgrader itself loads the config."""
    from traitlets.config.loader import PyFileConfigLoader

    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    d = cfg.CourseDirectory
    return {"source": d.source_directory, "release": d.release_directory, "submitted": d.submitted_directory,
            "autograded": d.autograded_directory, "feedback": d.feedback_directory, "db": d.db_url}


def test_layout_agrees_with_nbgrader_config() -> None:
    root = course_root()
    lay, nb = Layout(root), nbgrader_view(root)
    assert lay.solutions == root / nb["source"] and lay.releases == root / nb["release"]
    assert lay.submitted == root / nb["submitted"] and lay.feedback == root / nb["feedback"]
    assert lay.autograded("s", "a", "n") == root / nb["autograded"] / "s" / "a" / "n.ipynb"
    assert nb["db"] == f"sqlite:///{lay.gradebook}"


def test_a_renamed_folder_is_followed(tmp_path: Path) -> None:
    (tmp_path / "lectures").mkdir()
    (tmp_path / "nbgrader_config.py").write_text('c = get_config()\nc.CourseDirectory.submitted_directory = "inbox"\n')
    lay = Layout(tmp_path)
    assert lay.submission("ann", "a01", "a01") == tmp_path / "inbox" / "ann" / "a01" / "a01.ipynb"
    assert lay.releases == tmp_path / "assignments"          # not set there: the course's default


def test_atomic_write_replaces_whole_files(tmp_path: Path) -> None:
    path = atomic_write(tmp_path / "d" / "f.txt", "one")
    atomic_write(path, b"two", mode=0o600)
    assert path.read_text() == "two" and oct(path.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in path.parent.iterdir()] == ["f.txt"]


def test_imports_point_down() -> None:
    """Nothing in the package imports the CLI; reading what grading left on disk loads no kernel machinery."""
    import re
    import subprocess
    import sys

    package = Path(__file__).resolve().parents[1] / "course_utils"
    importers = [str(p.relative_to(package)) for p in package.rglob("*.py") if p.name != "cli.py"
                 and re.search(r"from \.+cli import|import course_utils\.cli|from course_utils\.cli", p.read_text())]
    assert importers == []
    code = ("import sys, course_utils.grader.report, course_utils.grader.export, course_utils.grader.record\n"
            "print(sorted(m for m in ('course_utils.grader.execute', 'course_utils.grader.session', "
            "'course_utils.grader.sandbox', 'jupyter_client') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
