"""What grading leaves on disk per student: the results record and the autograded notebook (read by report/export).

    grading/results/<assignment>/<student>.json
        {"student", "assignment", "graded_at", "submission_sha256",
         "status": "ok"|"ok*"|"zero"|"refused"|"error", "notes": [...], "cases": [{"grade_id", "case", "draw",
         "passed", "points", "max_points", "message", "call"}], "cells": [{"index", "grade_id", "status"}],
         "usage": {"seconds", "kernel_peak_bytes", "grader_peak_bytes"} (optional)}
    autograded/<student>/<assignment>/<notebook>.ipynb
        the release's locked cells and the student's cells with their (capped) outputs, nbgrader metadata as
        nbgrader writes it, so the formgrader shows it; always made inert first (`inert.inert`: nothing in it
        runs or fetches in the TA's page)

Both are written atomically (a temporary file, then os.replace); the record is written last, so a record
means the student's gradebook rows are in. The run seed is never written here (only to the grader's log).
A record is read back only through `read_record`, which checks every field (`check_record`): a file that is
not a valid record (edited, truncated, written by an older version) reads as no record, so its student is
graded again instead of breaking a later command.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat

from ..layout import atomic_write
from .inert import inert

if TYPE_CHECKING:
    from .execute import Outcome

RESULTS = Path("grading") / "results"
STATUSES = ("ok", "ok*", "zero", "refused", "error")
MAX_RECORD_BYTES = 16 << 20        # a record file larger than this is not read
MAX_NOTEBOOK_BYTES = 32 << 20      # an autograded notebook larger than this is not written or read
_CASE = {"grade_id": str, "case": str, "draw": int, "passed": bool, "points": (int, float),
         "max_points": (int, float), "message": str, "call": str}


def record_path(root: Path, assignment: str, student: str) -> Path:
    """grading/results/<assignment>/<student>.json."""
    return Path(root) / RESULTS / assignment / f"{student}.json"


def autograded_path(root: Path, assignment: str, student: str, notebook: str) -> Path:
    """autograded/<student>/<assignment>/<notebook>.ipynb (nbgrader's layout)."""
    return Path(root) / "autograded" / student / assignment / f"{notebook}.ipynb"


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
    atomic_write(path, json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    return path


def read_record(root: Path, assignment: str, student: str) -> dict | None:
    """The student's record, or None when there is none or it is not a valid record (see `check_record`)."""
    path = record_path(root, assignment, student)
    try:
        if path.is_symlink() or path.stat().st_size > MAX_RECORD_BYTES:
            return None
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if check_record(rec) or rec["student"] != student or rec["assignment"] != assignment:
        return None
    return rec


def check_record(rec: Any) -> str | None:
    """None when rec is a well-formed record, else the first thing wrong with it."""
    if not isinstance(rec, dict):
        return "not an object"
    for key, kind in (("student", str), ("assignment", str), ("graded_at", str), ("submission_sha256", str),
                      ("status", str), ("notes", list), ("cases", list), ("cells", list)):
        if not isinstance(rec.get(key), kind):
            return f"{key} is missing or not a {kind.__name__}"
    if rec["status"] not in STATUSES:
        return f"unknown status {rec['status']!r}"
    if not all(isinstance(n, str) for n in rec["notes"]):
        return "a note is not text"
    for case in rec["cases"]:
        if not isinstance(case, dict) or any(not isinstance(case.get(k), t) or (t is not bool and isinstance(
                case.get(k), bool)) for k, t in _CASE.items()):
            return "a case result is malformed"
        if not 0 <= case["points"] <= case["max_points"] + 1e-9:
            return "a case scores outside its points"
    for cell in rec["cells"]:
        if not isinstance(cell, dict) or type(cell.get("index")) is not int or not isinstance(cell.get("status"), str):
            return "a cell status is malformed"
    if "usage" in rec and not isinstance(rec["usage"], dict):
        return "usage is not an object"
    return None


def notebook_text(nb: nbformat.NotebookNode) -> str:
    """The autograded notebook as text, at most MAX_NOTEBOOK_BYTES (else the cells without their outputs)."""
    text = nbformat.writes(nb)
    if len(text) > MAX_NOTEBOOK_BYTES:
        nb = nbformat.from_dict(json.loads(text))
        for cell in nb.cells:
            if cell.get("cell_type") == "code":
                cell.outputs = []
        text = nbformat.writes(nb)
    return text


def write_autograded(root: Path, assignment: str, student: str, notebook: str, nb: nbformat.NotebookNode,
                     ta_cells: dict[str, str] | None = None) -> Path:
    """Write the autograded notebook, made inert, atomically (replacing an earlier one); `ta_cells` (grade_id ->
    markdown, e.g. a written answer's rubric) go in after the cell of that grade_id, for the formgrader."""
    path = autograded_path(root, assignment, student, notebook)
    nb = inert(nb)
    for gid, text in (ta_cells or {}).items():
        at = next((i for i, c in enumerate(nb.cells) if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == gid),
                  None)
        if at is not None:
            nb.cells.insert(at + 1, nbformat.v4.new_markdown_cell(text))
    atomic_write(path, nbformat.writes(nb))
    return path
