"""Written answers: every hand-graded cell ends with its rubric, and its grade id names its question.

Rule: a written-answer cell of a solution notebook (nbgrader `grade` and `solution`, markdown) holds the model
answer, then its rubric, the last block of the cell:

    **Rubric (3 points).**
    - [1 point] (a) what earns this point ...
    - [0.5 points] (b) ...

one criterion a line (a longer one goes on over lines indented by two spaces), whose points add up to the cell's
points. nbgrader replaces a solution cell without `BEGIN SOLUTION` markers whole by "YOUR ANSWER HERE" in the
release, so neither the model answer nor the rubric reaches students (nor the student edition, which `course
publish` scans for both). The formgrader shows a TA the student's notebook, so `course grade` puts each rubric in
it, as a cell right after the student's answer (`ta_cells`; the feedback page leaves those cells out), and
`course rubric ASSIGNMENT` prints every rubric (`--answers`: with the model answer). The grade id is `p<N>_answer` for a
cell under a heading "Part N", `q<N>_answer` under "QN" or a numbered heading "N." (the question it answers).
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

TITLE = re.compile(r"^\*\*Rubric \((\d+(?:\.\d+)?) points?\)\.\*\*\s*$")
CRITERION = re.compile(r"^- \[(\d+(?:\.\d+)?) points?\] (\S.*)$")
HEADING = re.compile(r"^#{1,2} (.+)$")
QUESTION = ((re.compile(r"Part (\d+)\b"), "Part", "p"), (re.compile(r"Q(\d+)\b"), "Q", "q"),
            (re.compile(r"(\d+)\.\s"), "§", "q"))


@dataclass(frozen=True)
class Written:
    """One hand-graded answer cell of a solution notebook."""
    grade_id: str
    points: float
    question: str                         # as the assignment names it: 'Part 4', 'Q8', '§5'; '' under no heading
    expected_id: str                      # the grade id its question asks for
    answer: str                           # the model answer, without the rubric
    criteria: tuple[tuple[float, str], ...]
    errors: tuple[str, ...]               # what breaks the rule; empty when it holds


def question(heading: str) -> tuple[str, str]:
    """(label, grade id) of the question a heading opens: ('Part 4', 'p4_answer'); ('', '') for another heading."""
    for pattern, kind, letter in QUESTION:
        if match := pattern.match(heading.strip()):
            return (f"{kind} {match[1]}" if kind == "Part" else f"{kind}{match[1]}"), f"{letter}{match[1]}_answer"
    return "", ""


def split_rubric(source: str) -> tuple[str, float | None, list[tuple[float, str]], list[str]]:
    """(answer, points in the title, criteria, errors) of a written-answer cell's source."""
    lines = source.rstrip().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("**Rubric")]
    if len(starts) != 1:
        return source, None, [], [f"{len(starts)} rubric blocks (a line '**Rubric (N points).**'); want 1"]
    answer, block = "\n".join(lines[:starts[0]]).rstrip(), lines[starts[0]:]
    title = TITLE.match(block[0])
    errors = [] if title else [f"rubric title {block[0]!r} is not '**Rubric (N points).**'"]
    criteria: list[tuple[float, str]] = []
    for line in block[1:]:
        if match := CRITERION.match(line):
            criteria.append((float(match[1]), match[2]))
        elif line.startswith("  ") and criteria and line.strip():
            criteria[-1] = (criteria[-1][0], criteria[-1][1] + " " + line.strip())
        elif line.strip():
            errors.append(f"rubric line {line[:60]!r} is not '- [N point(s)] what earns them'")
    if not criteria:
        errors.append("the rubric has no criteria")
    return answer, float(title[1]) if title else None, criteria, errors


def written_answers(nb: nbformat.NotebookNode) -> list[Written]:
    """Every hand-graded answer cell of a solution notebook, with its question and what breaks the rule."""
    found, label, expected = [], "", ""
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "markdown" and not meta.get("solution"):
            for line in cell.source.splitlines():
                if match := HEADING.match(line):
                    label, expected = question(match[1])
        if not (meta.get("grade") and meta.get("solution")):
            continue
        points = float(meta.get("points", 0))
        answer, titled, criteria, errors = split_rubric(cell.source)
        total = sum(p for p, _ in criteria)
        if criteria and abs(total - points) > 1e-9:
            errors.append(f"criteria add up to {total:g} points, the cell is worth {points:g}")
        if titled is not None and titled != points:
            errors.append(f"the rubric's title says {titled:g} points, the cell is worth {points:g}")
        if cell.cell_type != "markdown":
            errors.append("a hand-graded answer cell must be markdown")
        if not expected:
            errors.append("no 'Part N', 'QN' or 'N.' heading above it names its question")
        elif meta.get("grade_id") != expected:
            errors.append(f"grade id {meta.get('grade_id')!r} does not name its question {label}: want {expected!r}")
        found.append(Written(meta.get("grade_id", ""), points, label, expected, answer, tuple(criteria),
                             tuple(errors)))
    return found


TA_MARK = "**Rubric, for the TA** (in the formgrader only; never on the student's feedback page)"


def ta_cells(solution: nbformat.NotebookNode) -> dict[str, str]:
    """grade_id -> the markdown of the rubric cell the formgrader shows after that written answer."""
    return {w.grade_id: "\n".join([f"{TA_MARK}: {w.points:g} points", "",
                                   *(f"- [{p:g} point{'s' if p != 1 else ''}] {c}" for p, c in w.criteria)])
            for w in written_answers(solution) if w.criteria}


def render(name: str, answers: list[Written], with_answers: bool = False) -> str:
    """The rubrics of one assignment as text for a TA."""
    out = []
    for w in answers:
        out.append(f"{name} {w.question} ({w.grade_id}, {w.points:g} points)")
        if with_answers:
            out += ["  model answer:", *("    " + line for line in w.answer.splitlines())]
        out += [f"  [{p:g}] {text}" for p, text in w.criteria]
        out += [f"  RULE BROKEN: {e}" for e in w.errors]
        out.append("")
    return "\n".join(out)


def cmd_rubric(args: argparse.Namespace) -> int:
    """Print the rubric of every written answer of the chosen assignments; exit 1 where the rule is broken."""
    from .layout import SOURCE, select, course_root

    broken = 0
    for folder in (p for p in select(course_root() / SOURCE, args.names, "*") if p.is_dir()):
        for path in sorted(folder.glob("*.ipynb")):
            answers = written_answers(nbformat.read(path, as_version=4))
            broken += sum(bool(w.errors) for w in answers)
            print(render(folder.name, answers, args.answers))
    return 1 if broken else 0


def add_command(sub: argparse._SubParsersAction) -> None:
    """Register `course rubric` (TAs: grading written answers in the formgrader)."""
    p = sub.add_parser("rubric", help="print the rubric of each written answer (for grading in the formgrader)")
    p.add_argument("names", nargs="*", help="assignment names or prefixes (default: all)")
    p.add_argument("--answers", action="store_true", help="print the model answers too")
    p.set_defaults(func=cmd_rubric)


def check_file(path: Path) -> list[str]:
    """'grade_id: error' for every broken rule of a solution notebook's written answers."""
    return [f"{w.grade_id}: {e}" for w in written_answers(nbformat.read(path, as_version=4)) for e in w.errors]
