"""Every hand-graded answer of the 11 assignments has a rubric whose points add up to the cell's, a grade id that names
its question, and a release that shows students neither the model answer nor the rubric."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from course_utils import cli, rubric

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*/*.ipynb"))
# the question each assignment's written answer belongs to, as the README's seed table cites it
QUESTIONS = {"a01": "Part 4", "a02": "Part 5", "a03": "Part 10", "a04": "Q8", "a05": "Q5", "a06": "Q6", "a07": "Q8",
             "a08": "§5", "a09": "§5", "a10": "Part 6", "a11": "Part 4"}


def test_there_are_eleven_solution_notebooks():
    assert len(SOLUTIONS) == 11


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.parent.name)
def test_every_written_answer_has_a_rubric_that_adds_up_and_an_id_that_names_its_question(path):
    nb = nbformat.read(path, as_version=4)
    meta = [c.metadata.get("nbgrader", {}) for c in nb.cells]
    manual = [m for m in meta if m.get("grade") and m.get("solution")]
    answers = rubric.written_answers(nb)
    assert manual and len(answers) == len(manual)
    assert rubric.check_file(path) == [], f"run `course rubric {path.parent.name}` to see the rubric"
    for w in answers:
        assert sum(p for p, _ in w.criteria) == w.points and len(w.criteria) >= 2, w.grade_id
        assert all(p > 0 and text for p, text in w.criteria)
        assert w.grade_id == w.expected_id
    assert [w.question for w in answers] == [QUESTIONS[path.parent.name[:3]]]


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.parent.name)
def test_the_release_shows_neither_answer_nor_rubric(path):
    release = nbformat.read(ROOT / "assignments" / path.parent.name / path.name, as_version=4)
    cells = {c.metadata["nbgrader"]["grade_id"]: c for c in release.cells if "nbgrader" in c.metadata
             and "grade_id" in c.metadata["nbgrader"]}
    for w in rubric.written_answers(nbformat.read(path, as_version=4)):
        released = cells[w.grade_id]
        assert released.source == "YOUR ANSWER HERE" and released.metadata["nbgrader"]["points"] == w.points
    text = (ROOT / "assignments" / path.parent.name / path.name).read_text()
    assert "Rubric" not in text and "Model answer" not in text


def test_a_broken_rubric_says_what_is_wrong():
    def cell(source: str, grade_id: str, points: float) -> nbformat.NotebookNode:
        c = nbformat.v4.new_markdown_cell(source)
        c.metadata["nbgrader"] = {"grade": True, "solution": True, "locked": False, "grade_id": grade_id,
                                  "points": points, "schema_version": 3, "task": False}
        return c

    nb = nbformat.v4.new_notebook()
    good = "Answer.\n\n**Rubric (2 points).**\n- [1 point] (a) one thing\n- [1 point] (b) another,\n  on two lines"
    short = good.replace("[1 point] (b)", "[0.5 points] (b)")
    nb.cells = [nbformat.v4.new_markdown_cell("## Q3 · Written\nTask."), cell(good, "q3_answer", 2),
                nbformat.v4.new_markdown_cell("## Part 7: more"), cell(short, "q6_answer", 2),
                nbformat.v4.new_markdown_cell("## 4. Written"), cell("Only an answer.", "q4_answer", 1)]
    first, second, third = rubric.written_answers(nb)
    assert first.errors == () and first.criteria == ((1.0, "(a) one thing"), (1.0, "(b) another, on two lines"))
    assert first.answer == "Answer." and first.question == "Q3"
    assert second.question == "Part 7" and set(second.errors) == {
        "criteria add up to 1.5 points, the cell is worth 2",
        "grade id 'q6_answer' does not name its question Part 7: want 'p7_answer'"}
    assert third.question == "§4" and third.errors == ("0 rubric blocks (a line '**Rubric (N points).**'); want 1",)


def test_course_rubric_prints_the_rubric_for_a_ta(capsys):
    assert cli.main(["rubric", "a04", "--answers"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("a04_gan Q8 (q8_answer, 3 points)\n  model answer:\n    **1.** With $x=G(z)")
    assert out.count("\n  [1] ") == 3 and "RULE BROKEN" not in out


def test_the_formgrader_shows_the_rubric_after_the_answer_and_the_feedback_page_does_not(tmp_path):
    """`course grade` writes each rubric into the autograded notebook right after its answer cell (what the
    formgrader renders); the student's feedback page leaves those cells out, even on its plain-text fallback."""
    from course_utils.grader import record, report

    path = ROOT / "solutions" / "a01_autoencoders" / "a01_autoencoders.ipynb"
    solution = nbformat.read(path, as_version=4)
    cells = rubric.ta_cells(solution)
    release = nbformat.read(ROOT / "assignments" / "a01_autoencoders" / "a01_autoencoders.ipynb", as_version=4)
    assert set(cells) == {"p4_answer"} and "[1 point]" in cells["p4_answer"]
    out = record.write_autograded(tmp_path, "a01_autoencoders", "ann", "a01_autoencoders", release, cells)
    nb = nbformat.read(out, as_version=4)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    at = ids.index("p4_answer")
    assert nb.cells[at + 1].source == cells["p4_answer"] and report.is_ta_cell(nb.cells[at + 1])
    rec = record.make_record("ann", "a01_autoencoders", "0" * 64, None, "zero", ["empty"])
    html = report.render_page(rec, nb, {}, "fp", mathjax=False)
    assert rubric.TA_MARK not in html and "[1 point]" not in html.split("Your notebook as graded")[-1]
    assert rubric.TA_MARK not in report.notebook_as_text(nb)
