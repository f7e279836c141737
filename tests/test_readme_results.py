"""The README's results table is exactly what `course results` collects from the committed, executed lectures."""
from pathlib import Path

import pytest

from course_utils.results import collect, readme_table, table

ROOT = Path(__file__).resolve().parent.parent


def test_readme_results_table_matches_the_lectures():
    found = collect(ROOT / "lectures")
    if not found:
        pytest.skip("no committed lecture prints a RESULT line yet (course_utils.results.report); once one does, "
                    "README.md's results table must equal `course results` output")
    readme = ROOT / "README.md"
    assert readme_table(readme.read_text(encoding="utf-8"), readme) == table(found), (
        "README.md's results table differs from the lectures' RESULT lines: run `course results --write README.md`")
