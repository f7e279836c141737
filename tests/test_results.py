"""The results protocol: report() prints one parseable line or fails; `course results` builds and checks the table."""

import nbformat
import pytest

from course_utils import data, results
from course_utils.cli import main
from course_utils.results import MARKERS, Result, ResultError, collect, report, table

VAE = dict(data="embedded MNIST, 1,000 test digits", at_most=125, spread=(112, 118), seeds=3)


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setenv("COURSE_MODE", "quick")
    monkeypatch.setenv(results.LECTURE_ENV, "02_vae")
    monkeypatch.setattr(data, "_used", {"embedded"})  # as after mnist() on the embedded digits


def test_report_prints_one_uniform_line(capsys):
    assert report("held-out -ELBO (nats)", 115.43, **VAE) == 115.43
    line = capsys.readouterr().out.strip()
    assert line == ("RESULT | 02_vae | held-out -ELBO (nats) | 115.4 | embedded MNIST, 1,000 test digits | "
                    "<= 125 (3 seeds: 112-118, margin 7) | quick")
    assert Result.parse(line).line() == line
    report("test accuracy", 0.962, data="1,000 test digits", at_least=0.94, spread=(0.955, 0.965), seeds=5,
           lecture="07_vision_transformers")
    assert ">= 0.94 (5 seeds: 0.955-0.965, margin 0.015)" in capsys.readouterr().out


def test_a_missed_bound_fails_and_says_by_how_much(capsys):
    with pytest.raises(ResultError, match=r"02_vae: held-out -ELBO \(nats\) regressed: 131.2 misses the bound "
                                          r"<= 125 .* by 6.2"):
        report("held-out -ELBO (nats)", 131.2, **VAE)
    with pytest.raises(ResultError, match="non-finite"):
        report("held-out -ELBO (nats)", float("nan"), **VAE)
    with pytest.raises(ResultError, match="by 0.01"):
        report("accuracy", 0.93, data="d", at_least=0.94, spread=(0.95, 0.96), seeds=3)
    assert "RESULT" not in capsys.readouterr().out, "a failed result prints no line the table could pick up"


def test_bounds_are_enforced_only_where_they_were_set(monkeypatch, capsys):
    """Full mode or a MNIST folder draws other digits or trains longer: the line says met / missed, the cell goes on."""
    data._used.add("folder")
    assert report("held-out -ELBO (nats)", 131.2, **VAE) == 131.2
    line = Result.parse(capsys.readouterr().out.strip())
    assert line.bound == ("<= 125 (3 seeds: 112-118, margin 7); missed, not enforced: this run is on digits from a "
                          "MNIST folder, the bound was set in quick mode on the embedded digits")
    data._used.discard("folder")
    monkeypatch.setenv("COURSE_MODE", "full")
    report("held-out -ELBO (nats)", 100, **VAE)
    line = Result.parse(capsys.readouterr().out.strip())
    assert "; met, not enforced: this run is full mode," in line.bound and line.mode == "full"
    monkeypatch.setenv("COURSE_MODE", "quick")
    with pytest.raises(ResultError):
        report("held-out -ELBO (nats)", 131.2, **VAE)


def test_mnist_records_the_kind_of_source(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_used", set())
    e = data.mnist(source="embedded", verbose=False)
    assert data.sources_used() == {"embedded"}
    data.write_folder(e, tmp_path)
    data.mnist(source="folder", root=tmp_path, verbose=False)
    assert data.sources_used() == {"embedded", "folder"}


def test_ill_posed_bounds_are_refused():
    with pytest.raises(ValueError, match="exactly one of at_most"):
        report("x", 1.0, data="d", spread=(0, 2), seeds=3)
    with pytest.raises(ValueError, match="tighter than the measured seed spread 112-118"):
        report("x", 115, data="d", at_most=117, spread=(118, 112), seeds=3)
    with pytest.raises(ValueError, match="at least 2 seeds"):
        report("x", 115, data="d", at_most=125, spread=(112, 118), seeds=1)
    with pytest.raises(ValueError, match="must not contain"):
        report("a | b", 115, **VAE)


def test_lecture_name_detection(monkeypatch):
    assert results.lecture_name() == "02_vae" and results.lecture_name("09_detr") == "09_detr"
    monkeypatch.delenv(results.LECTURE_ENV)
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/s/course/lectures/04_gans.ipynb")
    assert results.lecture_name() == "04_gans"
    monkeypatch.delenv("JPY_SESSION_NAME")
    assert results.lecture_name() == "unknown"


def _executed(path, *texts, error=False):
    """A small executed notebook whose code cells printed the given stdout texts."""
    nb = nbformat.v4.new_notebook()
    for text in texts:
        cell = nbformat.v4.new_code_cell("...")
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        nb.cells.append(cell)
    nbformat.write(nb, path)


def _lines(lecture, *rows):
    return "".join(Result(lecture, name, value, "1,000 test digits", "<= 1 (3 seeds: 0.1-0.2, margin 0.8)",
                          "quick").line() + "\n" for name, value in rows)


@pytest.fixture
def lectures(tmp_path):
    folder = tmp_path / "lectures"
    folder.mkdir()
    _executed(folder / "02_vae.ipynb", "training...\n" + _lines("02_vae", ("nats", "115.4")) + "done\n",
              _lines("unknown", ("IWAE nats", "109.8")))
    _executed(folder / "00_refresher.ipynb", "no results here\n")
    _executed(folder / "07_vit.ipynb", _lines("07_vit", ("ViT accuracy", "0.962"), ("Swin accuracy", "0.956")))
    return folder


def test_collect_reads_the_outputs_in_order(lectures):
    found = collect(lectures)
    assert [(r.lecture, r.name, r.value) for r in found] == [
        ("02_vae", "nats", "115.4"), ("02_vae", "IWAE nats", "109.8"),
        ("07_vit", "ViT accuracy", "0.962"), ("07_vit", "Swin accuracy", "0.956")]
    text = table(found)
    assert text.splitlines()[0].startswith("| lecture | result | value |") and len(text.splitlines()) == 6
    assert "| `07_vit` | Swin accuracy | 0.956 | 1,000 test digits |" in text


def test_collect_refuses_a_line_from_another_lecture(lectures):
    _executed(lectures / "09_detr.ipynb", _lines("08_clip", ("mAP", "0.66")))
    with pytest.raises(ValueError, match="09_detr.ipynb prints a RESULT line for lecture '08_clip'"):
        collect(lectures)


def test_course_results_writes_and_checks_the_readme(lectures, tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Course\n\n## Measured run times and results\n\n{MARKERS[0]}\n| old | table |\n"
                      f"{MARKERS[1]}\n\nText after.\n")
    assert main(["results", "--lectures", str(lectures), "--check", str(readme)]) == 1
    assert "disagree" in capsys.readouterr().out
    assert main(["results", "--lectures", str(lectures), "--write", str(readme)]) == 0
    text = readme.read_text()
    assert "| old | table |" not in text and "Swin accuracy" in text and text.endswith("Text after.\n")
    assert main(["results", "--lectures", str(lectures), "--check", str(readme)]) == 0
    readme.write_text(text.replace("0.956", "0.957"))
    assert main(["results", "--lectures", str(lectures), "--check", str(readme)]) == 1
    assert "-| `07_vit` | Swin accuracy | 0.957" in capsys.readouterr().out
    readme.write_text("# no markers\n")
    with pytest.raises(ValueError, match="results:start"):
        main(["results", "--lectures", str(lectures), "--check", str(readme)])
