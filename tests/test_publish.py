"""`course publish`: the student edition holds what a student needs, no solution or hidden-case text, refuses a
planted leak, and its lecture and released assignment run from it in a fresh venv (slow)."""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest

from course_utils import bootstrap, cli, publish, site

ROOT = Path(__file__).resolve().parents[1]
TA_ONLY = ("solutions", "cases", "tests", "grading", "submitted", "autograded", "feedback", "nbgrader_config.py",
           "course_utils/grader", "course_utils/publish.py", "course_utils/rubric.py", "course_utils/templates")
LECTURE, ASSIGNMENT = "00_probability_refresher", "a05_distillation"


@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> Path:
    """The edition published from the checkout into a folder that already holds a .git folder (kept)."""
    out = tmp_path_factory.mktemp("published") / "edition"
    (out / ".git").mkdir(parents=True)
    (out / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    publish.publish(ROOT, out)
    return out


def files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and ".git" not in p.parts}


def test_secret_lines_are_the_solutions_and_cases_but_not_what_lectures_show():
    secrets, shared = publish.secret_lines(ROOT)
    inside, outside = publish.solution_text(ROOT / "solutions" / "a01_autoencoders" / "a01_autoencoders.ipynb")
    kl = next(line for line in inside if line.startswith("return (rho * torch.log(rho / rho_hat)"))
    assert kl not in secrets, "lecture 01 derives this very line: public on purpose"
    written = next(line for line in inside if line.startswith("**1. Tanh units.**"))  # a written answer, unmarked
    assert "solutions/a01_autoencoders/a01_autoencoders.ipynb, cell " in secrets[written]
    assert not outside & secrets.keys() and shared > 0
    suite = 'SUITE = Suite("a01_autoencoders")'
    lines = (ROOT / "cases" / "a01_autoencoders.py").read_text().splitlines()
    assert secrets[suite] == f"cases/a01_autoencoders.py:{lines.index(suite) + 1}"
    assert not [line for line in secrets if line.startswith(("import ", "from ")) or len(line) < publish.MIN_CHARS]


def test_the_edition_is_the_allow_list(edition):
    got = files(edition)
    assert (edition / ".git" / "HEAD").is_file(), "a .git folder in OUT is kept"
    for path in TA_ONLY:
        assert not any(f == path or f.startswith(path + "/") for f in got), f"{path} reached the edition"
    lectures = {str(p.relative_to(ROOT)) for p in (ROOT / "lectures").glob("*.ipynb")}
    releases = {str(p.relative_to(ROOT)) for p in (ROOT / "assignments").rglob("*") if p.is_file()}
    modules = {f"course_utils/{m}.py" for m in publish.STUDENT_MODULES if (ROOT / "course_utils" / f"{m}.py").is_file()}
    assert len(lectures) == 12 and len(releases) == 11
    assert got == lectures | releases | modules | {
        "checkpoints/l10_dalle2.pt", "site/conf.py", "site/_static/course.css", "site/_static/favicon.svg",
        "environment.yml", "README.md", "pyproject.toml", ".gitignore"}
    for rel in lectures | releases | modules:
        assert (edition / rel).read_bytes() == (ROOT / rel).read_bytes(), f"{rel} is not copied as committed"


def test_no_solution_or_case_text_and_every_import_is_there(edition):
    secrets, _ = publish.secret_lines(ROOT)
    assert len(secrets) > 1000
    assert publish.scan(edition, secrets) == []
    for path in edition.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            text = path.read_bytes().decode("latin-1")
            assert not [m for m in publish.MARKERS if m in text], f"{path.name} holds an nbgrader marker"
    assert publish.missing_modules(edition) == []
    imports = publish._module_imports(edition / "course_utils" / "cli.py")
    assert {"bootstrap", "workspace", "grader", "publish"} <= imports  # the TA ones are behind installed()
    assert publish.misdirected(edition, bootstrap.edition_url()) == []
    imported = {m for p in edition.rglob("*.ipynb") for c in nbformat.read(p, as_version=4).cells
                if c.cell_type == "code" for m in publish.IMPORT.findall(c.source)}
    assert {".grading", ".checkpoints", ".results"} <= imported  # what the notebooks need is what was checked


def test_readme_pyproject_and_site_of_the_edition(edition, tmp_path):
    readme = (edition / "README.md").read_text()
    assert readme.startswith("# Generative models") and bootstrap.edition_url() in readme
    for heading in publish.README_SECTIONS:
        assert site.readme_section(readme, heading).strip()
    assert "For teaching assistants" not in readme
    config = __import__("tomllib").loads((edition / "pyproject.toml").read_text())
    assert config["tool"]["setuptools"]["packages"] == ["course_utils"]
    assert config["project"]["scripts"] == {"course": "course_utils.cli:main"}
    docs = site.stage(edition, tmp_path / "src")
    assert docs["guides"] == ["results"] and len(docs["lectures"]) == 12 and len(docs["assignments"]) == 11


@pytest.mark.parametrize("kind", ["solution line into a lecture", "case line into a module"])
def test_a_planted_leak_is_refused_and_nothing_is_left(tmp_path, monkeypatch, capsys, kind):
    secrets, _ = publish.secret_lines(ROOT)
    origin = "solutions/a02_vae" if kind.startswith("solution") else "cases/a03_vq_vae.py"
    line = next(s for s, where in sorted(secrets.items()) if where.startswith(origin))
    build = publish.build

    def planted(root, stage, url):
        build(root, stage, url)
        if kind.startswith("solution"):
            target = stage / "lectures" / f"{LECTURE}.ipynb"
            nb = nbformat.read(target, as_version=4)
            nb.cells.append(nbformat.v4.new_markdown_cell("A note.\n  " + line))
            nbformat.write(nb, target)
        else:
            target = stage / "course_utils" / "plot.py"
            target.write_text(target.read_text() + f"\n        {line}\n")

    monkeypatch.setattr(publish, "build", planted)
    out = tmp_path / "edition"
    assert cli.main(["publish", str(out)]) == 1
    err = capsys.readouterr().err
    assert "REFUSED" in err and "1 lines of solutions or hidden cases" in err and origin in err
    assert line[:60] in err
    assert not out.exists() and list(tmp_path.iterdir()) == [], "the build is removed and OUT never written"


def test_out_must_be_new_or_empty_and_the_url_is_checked(tmp_path, monkeypatch):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(publish.EditionError, match="is not empty"):
        publish.publish(ROOT, tmp_path / "full")
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"
    monkeypatch.setenv(bootstrap.URL_VARIABLE, "https://example.org/another-edition")
    with pytest.raises(publish.EditionError, match="do not install from https://example.org/another-edition"):
        publish.publish(ROOT, tmp_path / "elsewhere")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]


# ---- slow: a fresh venv with the edition installed, a lecture and a released assignment run from it
def _fresh_venv(path: Path) -> Path:
    """A venv of this interpreter seeing the project's site-packages (torch, jupyter) after its own; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    own = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         check=True, capture_output=True, text=True).stdout.strip()
    Path(own, "project-site-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


RUN = """
import sys, nbformat
from nbclient import NotebookClient
path, out, allow = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
nb = nbformat.read(path, as_version=4)
nb.cells.append(nbformat.v4.new_code_cell("import course_utils, sys; print(course_utils.__file__, sys.executable)"))
NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=allow,
               resources={"metadata": {"path": str(__import__("pathlib").Path(path).parent)}}).execute()
nbformat.write(nb, out)
"""


@pytest.mark.slow
def test_a_lecture_and_an_assignment_run_from_the_edition_in_a_fresh_venv(edition, tmp_path):
    python = _fresh_venv(tmp_path / "venv")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COURSE_ROOT", "VIRTUAL_ENV")}
    env.update(COURSE_MODE="quick", COURSE_OFFLINE="1", COURSE_DATA_SOURCE="embedded", COURSE_LECTURE=LECTURE)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-build-isolation", "--no-index", str(edition)], check=True, env=env)
    where = subprocess.run([str(python), "-c", "import course_utils; print(course_utils.__file__)"],
                           cwd=tmp_path, env=env, check=True, capture_output=True, text=True).stdout.strip()
    site_packages = str(tmp_path / "venv" / "lib")
    assert where.startswith(site_packages), f"course_utils comes from {where}, not the edition installed in the venv"
    course = str(tmp_path / "venv" / "bin" / "course")
    helps = subprocess.run([course, "--help"], env=env, capture_output=True, text=True, check=True).stdout
    assert helps.split("{")[1].split("}")[0].split(",") == ["doctor", "lectures", "workspace", "results", "checkpoint",
                                                            "site"], "the edition offers no TA command"
    work = subprocess.run([course, "workspace", ASSIGNMENT, "--lectures", "--to", str(tmp_path / "work")],
                          cwd=edition, env=env, capture_output=True, text=True)
    assert work.returncode == 0, work.stderr

    for notebook, allow in ((tmp_path / "work" / "lectures" / f"{LECTURE}.ipynb", "0"),
                            (tmp_path / "work" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", "1")):
        done = tmp_path / f"{notebook.stem}.executed.ipynb"
        proc = subprocess.run([str(python), "-c", RUN, str(notebook), str(done), allow], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        nb = nbformat.read(done, as_version=4)
        module, executable = nb.cells[-1].outputs[0]["text"].split()
        assert module.startswith(site_packages) and executable == str(python), (module, executable)
        errors = [o["ename"] for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
        if allow == "1":  # the release: only the answers are missing
            assert errors and set(errors) == {"NotImplementedError"}, errors
        else:
            assert errors == []
