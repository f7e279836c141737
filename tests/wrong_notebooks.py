"""Deliberately wrong submissions for the hidden-case tests: a solution notebook with one definition rewritten.

    nb = with_definition(solution("a06_metric_learning"), '''
    def contrastive_loss(e1, e2, same, alpha=1.0):
        ...
    ''')
    got = part_scores("a06_metric_learning", nb)      # grade_id -> points, graded by the hidden cases

The grading runs `course_utils.grader.check.run_suite` (the notebook in a plain local kernel, then every case)
with a fixed run seed, so a test is reproducible.
"""
from __future__ import annotations

import ast
import copy
import textwrap

import nbformat

from course_utils.cli import course_root
from course_utils.grader.cases import load_suite
from course_utils.grader.check import cell_points, run_suite
from course_utils.grader.score import totals

SEED = 20261202


def solution(name: str) -> nbformat.NotebookNode:
    """The solution notebook of an assignment."""
    return nbformat.read(course_root() / "solutions" / name / f"{name}.ipynb", as_version=4)


def with_definition(nb: nbformat.NotebookNode, source: str) -> nbformat.NotebookNode:
    """A copy of `nb` in which the top-level function or class that `source` defines replaces the solution's."""
    source = textwrap.dedent(source).strip("\n")
    name = ast.parse(source).body[0].name
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type != "code" or not cell.metadata.get("nbgrader", {}).get("solution"):
            continue
        for node in ast.parse(cell.source).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
                lines = cell.source.splitlines()
                start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
                cell.source = "\n".join(lines[:start] + source.splitlines() + lines[node.end_lineno:])
                return nb
    raise KeyError(f"no solution cell defines {name}")


def with_cell_appended(nb: nbformat.NotebookNode, grade_id: str, source: str) -> nbformat.NotebookNode:
    """A copy of `nb` with `source` added at the end of the solution cell `grade_id`."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            cell.source += "\n\n" + textwrap.dedent(source).strip("\n")
            return nb
    raise KeyError(grade_id)


def part_scores(name: str, nb: nbformat.NotebookNode) -> dict[str, float]:
    """grade_id -> points that the hidden cases give `nb` (every autograded test cell listed)."""
    points = cell_points(nb)
    got = totals(run_suite(load_suite(course_root() / "cases" / f"{name}.py"), nb, points, SEED))
    return {gid: got.get(gid, 0.0) for gid in points}


def assert_only_part_loses(name: str, nb: nbformat.NotebookNode, parts: list[str] | str) -> dict[str, float]:
    """Every part in `parts` scores less than its points; every other part keeps all of its points."""
    parts = [parts] if isinstance(parts, str) else parts
    full, got = cell_points(nb), part_scores(name, nb)
    lost = {p: got[p] for p in parts if got[p] >= full[p]}
    kept = {p: (got[p], full[p]) for p in full if p not in parts and got[p] != full[p]}
    assert not lost, f"wrong code kept its points: {lost}"
    assert not kept, f"correct parts lost points: {kept}"
    return got
