"""Deliberately wrong submissions for the hidden-case tests: a solution notebook with one definition rewritten.

    nb = with_definition(solution("a06_metric_learning"), '''
    def contrastive_loss(e1, e2, same, alpha=1.0):
        ...
    ''')
    got = part_scores("a06_metric_learning", nb)      # run seed -> grade_id -> points, by the hidden cases

The grading runs `course_utils.grader.check.run_suite_seeds`: the notebook once in a plain local kernel, then
every case under each of a few fixed run seeds (`SEEDS`), so a test is reproducible and a wrong notebook must
lose its points under every seed: a case that exposes a bug only in some draws (a condition left to chance)
fails the test.
"""
from __future__ import annotations

import ast
import copy
import textwrap

import nbformat

from course_utils.layout import course_root
from course_utils.grader.cases import load_suite
from course_utils.grader.check import cell_points, run_suite_seeds
from course_utils.grader.score import totals

SEEDS = (20261202, 7, 1_000_003)      # run seeds: every wrong notebook is graded under each


def solution(name: str) -> nbformat.NotebookNode:
    """The solution notebook of an assignment."""
    return nbformat.read(course_root() / "solutions" / name / f"{name}.ipynb", as_version=4)


def solution_source(name: str, definition: str) -> str:
    """The source of the top-level function or class `definition` in the solution of assignment `name` (to rewrite
    one line of it with str.replace, instead of copying the solution into a test)."""
    for cell in solution(name).cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution"):
            for node in ast.parse(cell.source).body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == definition:
                    return "\n".join(cell.source.splitlines()[node.lineno - 1:node.end_lineno]) + "\n"
    raise KeyError(f"no solution cell of {name} defines {definition}")


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


def part_scores(name: str, nb: nbformat.NotebookNode, seeds: tuple[int, ...] = SEEDS) -> dict[int, dict[str, float]]:
    """run seed -> grade_id -> points that the hidden cases give `nb` (every autograded test cell listed)."""
    points = cell_points(nb)
    runs = run_suite_seeds(load_suite(course_root() / "cases" / f"{name}.py"), nb, points, list(seeds))
    return {seed: {gid: totals(results).get(gid, 0.0) for gid in points} for seed, results in runs.items()}


def assert_only_part_loses(name: str, nb: nbformat.NotebookNode, parts: list[str] | str,
                           seeds: tuple[int, ...] = SEEDS) -> dict[str, float]:
    """Under every run seed, every part in `parts` scores less than its points and every other part keeps all
    of its points; returns grade_id -> the most the part scored under any seed."""
    parts = [parts] if isinstance(parts, str) else parts
    full, runs = cell_points(nb), part_scores(name, nb, seeds)
    lost = {(seed, p): got[p] for seed, got in runs.items() for p in parts if got[p] >= full[p]}
    kept = {(seed, p): (got[p], full[p]) for seed, got in runs.items() for p in full if p not in parts and got[p] != full[p]}
    assert not lost, f"wrong code kept its points (run seed, part): {lost}"
    assert not kept, f"correct parts lost points (run seed, part): {kept}"
    return {p: max(got[p] for got in runs.values()) for p in full}
