"""What grading leaves on disk per student: the results record and the autograded notebook (read by report/export).

    grading/results/<assignment>/<student>.json
        {"student", "assignment", "graded_at", "submission_sha256", "status": "ok"|"ok*"|"zero"|"refused",
         "notes": [...], "cases": [{"grade_id", "case", "draw", "passed", "points", "max_points", "message",
         "call"}], "cells": [{"index", "grade_id", "status"}]}
    autograded/<student>/<assignment>/<notebook>.ipynb
        the release's locked cells and the student's cells with their (capped) outputs, nbgrader metadata as
        nbgrader writes it, so the formgrader shows it

Both are written atomically (a temporary file, then os.replace); the record is written last, so a record
means the student's gradebook rows are in. The run seed is never written here (only to the grader's log).
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import nbformat

from .execute import Outcome

RESULTS = Path("grading") / "results"
STATUSES = ("ok", "ok*", "zero", "refused")


def record_path(root: Path, assignment: str, student: str) -> Path:
    """grading/results/<assignment>/<student>.json."""
    return Path(root) / RESULTS / assignment / f"{student}.json"


def autograded_path(root: Path, assignment: str, student: str, notebook: str) -> Path:
    """autograded/<student>/<assignment>/<notebook>.ipynb (nbgrader's layout)."""
    return Path(root) / "autograded" / student / assignment / f"{notebook}.ipynb"


def _atomic_write(path: Path, text: str) -> None:
    """Write text to path through a temporary file in the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_record(student: str, assignment: str, sha256: str, outcome: Outcome | None, status: str | None = None,
                notes: list[str] | None = None) -> dict:
    """The record of one student (from a grading outcome, or a bare status such as "refused" with notes)."""
    status = status or outcome.status
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    return {"student": student, "assignment": assignment,
            "graded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "submission_sha256": sha256, "status": status,
            "notes": list(notes if notes is not None else outcome.notes),
            "cases": [asdict(r) for r in outcome.cases] if outcome else [],
            "cells": list(outcome.cells) if outcome else []}


def write_record(root: Path, record: dict) -> Path:
    """Write grading/results/<assignment>/<student>.json atomically."""
    path = record_path(root, record["assignment"], record["student"])
    _atomic_write(path, json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    return path


def read_record(root: Path, assignment: str, student: str) -> dict | None:
    """The student's record, or None when there is none (or it is unreadable)."""
    try:
        return json.loads(record_path(root, assignment, student).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_autograded(root: Path, assignment: str, student: str, notebook: str, nb: nbformat.NotebookNode) -> Path:
    """Write the autograded notebook atomically (replacing an earlier one)."""
    path = autograded_path(root, assignment, student, notebook)
    _atomic_write(path, nbformat.writes(nb))
    return path
