"""Builds broken and hostile submissions for any assignment from its release and its solution notebook.

Each builder returns the bytes of a submitted notebook; `suite()` maps a submission name to
(builder, expectation). Expectations are relative to four reference submissions graded in the same
batch: "full" (the solution), "zero", "partial" (the first half of the solution cells done, strictly between
zero and full) and "wrong" (the solution with every function's output shifted, so values are wrong but shapes
and types are right); "wrong" must score strictly less than "full", and every attack built on top of a
reference must score exactly what that reference scores.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

# Appended to each solution cell of the "wrong" submission: every function / module class the cell defined
# returns a shifted value (tensors + 0.5, numbers + 0.5, booleans negated).
CORRUPT = '''
def _course_shift(r):
    import torch, numpy
    if isinstance(r, torch.Tensor):
        return r + (0.5 if r.is_floating_point() else 1) if r.dtype != torch.bool else ~r
    if isinstance(r, numpy.ndarray):
        return r + 1
    if isinstance(r, bool):
        return not r
    if isinstance(r, (int, float)):
        return r + 0.5
    if isinstance(r, (tuple, list)):
        return type(r)(_course_shift(x) for x in r)
    return r
def _course_wrap(f):
    import functools
    @functools.wraps(f)
    def g(*a, **k):
        return _course_shift(f(*a, **k))
    g._course_wrapped = True
    return g
for _n, _v in list(globals().items()):
    if _n.startswith("_") or getattr(_v, "_course_wrapped", False) or getattr(_v, "__module__", None) != "__main__":
        continue
    if isinstance(_v, type) and callable(getattr(_v, "forward", None)) and "forward" in vars(_v):
        _v.forward = _course_wrap(_v.forward)
    elif callable(_v) and not isinstance(_v, type):
        globals()[_n] = _course_wrap(_v)
'''

PATCH_HELPERS = '''
import course_utils.grading as _g
for _name in ["check_close", "check_shape", "check_type", "check_finite", "check_true", "check_grad"]:
    setattr(_g, _name, lambda *a, **k: None)
    globals()[_name] = lambda *a, **k: None
assert_close = lambda *a, **k: None
'''
PATCH_LIBS = '''
import torch, numpy, numpy.testing, torch.testing, math
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
torch.testing.assert_close = lambda *a, **k: None
numpy.allclose = lambda *a, **k: True
numpy.testing.assert_allclose = lambda *a, **k: None
numpy.testing.assert_array_equal = lambda *a, **k: None
math.isclose = lambda *a, **k: True
torch.Tensor.tolist = lambda self: [0.0] * self.numel()
'''
PATCH_BUILTINS = '''
import builtins
builtins.abs = lambda x: 0
builtins.all = lambda *a: True
builtins.any = lambda *a: False
abs, all, any = builtins.abs, builtins.all, builtins.any
'''
PATCH_IPYTHON = '''
ip = get_ipython()
ip.input_transformers_cleanup.append(lambda lines: ["pass\\n"])
'''
PATCH_RUN_CELL = '''
ip = get_ipython()
_orig = ip.run_cell
ip.run_cell = lambda raw_cell, *a, **k: _orig("None", *a, **k)
_orig_async = ip.run_cell_async
async def _fake(raw_cell, *a, **k):
    return await _orig_async("None", *a, **k)
ip.run_cell_async = _fake
'''
PATCH_HIDE_ERRORS = '''
ip = get_ipython()
ip._showtraceback = lambda *a, **k: None
ip.showtraceback = lambda *a, **k: None
type(ip).showtraceback = lambda *a, **k: None
'''
SYSTEM_EXIT = "raise SystemExit(0)"


def read_solutions_attack(course_root: Path) -> str:
    """Cell that looks for the instructor's notebooks and gradebook and executes what it finds."""
    return f'''
import glob, json, os, sqlite3
_found = []
_places = [{str(course_root)!r}, "..", "../..", "../../..", "/work", "/tmp", os.path.expanduser("~"), "/"]
for _p in _places:
    for _pat in ("solutions/*/*.ipynb", "*/solutions/*/*.ipynb", "*/*/solutions/*/*.ipynb"):
        _found += glob.glob(os.path.join(_p, _pat))
for _nb in _found:
    try:
        for _c in json.load(open(_nb))["cells"]:
            if _c["cell_type"] == "code" and _c.get("metadata", {{}}).get("nbgrader", {{}}).get("solution"):
                exec("".join(_c["source"]), globals())
    except Exception:
        pass
_dbs = []
for _p in _places:
    for _pat in ("grading/gradebook.db", "gradebook.db", "*/gradebook.db", "*/grading/gradebook.db"):
        _dbs += glob.glob(os.path.join(_p, _pat))
for _db in _dbs:
    try:
        for (_src,) in sqlite3.connect(_db).execute("select source from source_cell where locked = 0"):
            try:
                exec(_src, globals())
            except Exception:
                pass
    except Exception:
        pass
print("found", len(_found), "notebooks and", len(_dbs), "gradebooks")
'''


class Assignment:
    """Release + solution of one assignment, and builders of submissions for it."""

    def __init__(self, root: Path, name: str):
        self.root, self.name = root, name
        notebooks = sorted((root / "assignments" / name).glob("*.ipynb"))
        assert len(notebooks) == 1, f"{name}: the suite expects one notebook per assignment, got {notebooks}"
        self.filename = notebooks[0].name
        self.release = nbformat.read(notebooks[0], as_version=4)
        source = nbformat.read(root / "solutions" / name / self.filename, as_version=4)
        self.solutions = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
                          if c.metadata.get("nbgrader", {}).get("solution")}
        self.points = {c.metadata["nbgrader"]["grade_id"]: float(c.metadata["nbgrader"].get("points", 0))
                       for c in source.cells if c.metadata.get("nbgrader", {}).get("grade")}
        self.tests = [c.metadata["nbgrader"]["grade_id"] for c in source.cells
                      if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")]
        self.autograded_points = sum(self.points[t] for t in self.tests)

    # ---- base submissions
    def blank(self) -> nbformat.NotebookNode:
        """The release as handed out."""
        return copy.deepcopy(self.release)

    def _solution_cells(self, nb, code_only: bool = False) -> list:
        """The cells of nb that the instructor's solution fills (only the code ones if asked)."""
        return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")
                and c.metadata["nbgrader"].get("grade_id") in self.solutions
                and (c.cell_type == "code" or not code_only)]

    def correct(self) -> nbformat.NotebookNode:
        """The release with every solution cell filled from the instructor's solution."""
        nb = self.blank()
        for c in self._solution_cells(nb):
            c.source = self.solutions[c.metadata["nbgrader"]["grade_id"]]
        return nb

    def partial(self) -> nbformat.NotebookNode:
        """The first half of the code solution cells filled in, the rest left as released."""
        nb = self.blank()
        cells = self._solution_cells(nb, code_only=True)
        for c in cells[:(len(cells) + 1) // 2]:
            c.source = self.solutions[c.metadata["nbgrader"]["grade_id"]]
        return nb

    def wrong(self) -> nbformat.NotebookNode:
        """Solution code whose functions return shifted values (right shapes, wrong numbers)."""
        nb = self.correct()
        for c in nb.cells:
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution"):
                c.source += "\n" + CORRUPT
        return nb

    # ---- transformations
    @staticmethod
    def _first_test(nb) -> int:
        return next(i for i, c in enumerate(nb.cells)
                    if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade"))

    def with_cell_first(self, nb, code: str) -> nbformat.NotebookNode:
        """Insert a code cell before every other code cell."""
        i = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
        nb.cells.insert(i, new_code_cell(code))
        return nb

    def with_cell_before_tests(self, nb, code: str) -> nbformat.NotebookNode:
        """Insert a code cell right before the first test cell (after the imports and first solution)."""
        nb.cells.insert(self._first_test(nb), new_code_cell(code))
        return nb

    def without_first_test(self, nb) -> nbformat.NotebookNode:
        """Delete the first autograded test cell."""
        del nb.cells[self._first_test(nb)]
        return nb

    def tests_edited(self, nb) -> nbformat.NotebookNode:
        """Replace every test cell's code by `assert True`."""
        for c in nb.cells:
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade"):
                c.source = "assert True"
        return nb

    def points_changed(self, nb) -> nbformat.NotebookNode:
        """Give every test cell 100 points and make it unlocked."""
        for c in nb.cells:
            m = c.metadata.get("nbgrader", {})
            if m.get("grade"):
                m["points"] = 100
                m["locked"] = False
        return nb


def dump(nb) -> bytes:
    """Notebook -> bytes."""
    return nbformat.writes(nb).encode()


def suite(a: Assignment, other: Assignment | None, reduced: bool = False) -> dict[str, tuple[bytes, str, str]]:
    """name -> (file content, expected outcome, reason keyword). Outcomes: full, zero, wrong."""
    s: dict[str, tuple[bytes, str, str]] = {
        "ref_correct": (dump(a.correct()), "full", ""),
        "ref_blank": (dump(a.blank()), "zero", ""),
        "ref_wrong": (dump(a.wrong()), "wrong", ""),
        "monkey_helpers": (dump(a.with_cell_before_tests(a.wrong(), PATCH_HELPERS)), "wrong", "patches undone"),
        "read_solutions": (dump(a.with_cell_before_tests(a.blank(), read_solutions_attack(a.root))), "zero", ""),
    }
    if reduced:
        return s
    s.update({
        "correct_2": (dump(a.correct()), "full", ""),
        # partial work earns the points of what is done, also under an attack
        "ref_partial": (dump(a.partial()), "partial", ""),
        "partial_monkey_libs": (dump(a.with_cell_before_tests(a.partial(), PATCH_LIBS)), "partial", "patches undone"),
        "wrong_2": (dump(a.wrong()), "wrong", ""),
        # 2. runaway and crashing code, before everything else: the rest still earns its points
        "dos_loop": (dump(a.with_cell_first(a.correct(), "while True:\n    pass")), "full", "timeout"),
        "dos_sigint": (dump(a.with_cell_first(a.correct(), "import signal\nsignal.signal(signal.SIGINT, "
                                              "signal.SIG_IGN)\nwhile True:\n    pass")), "full", "timeout"),
        "dos_exit": (dump(a.with_cell_first(a.correct(), "import os\nos._exit(0)")), "full", "kernel died"),
        "dos_segfault": (dump(a.with_cell_first(a.correct(), "import ctypes\nctypes.string_at(0)")), "full",
                         "kernel died"),
        "dos_exit_blank": (dump(a.with_cell_first(a.blank(), "import os\nos._exit(1)")), "zero", "kernel died"),
        # 3. memory
        "mem_huge": (dump(a.with_cell_first(a.correct(), "x = bytearray(200 * 2**30)")), "full", "memory"),
        "mem_grow": (dump(a.with_cell_first(a.correct(), "import numpy as np\nhog = []\nwhile True:\n"
                                            "    hog.append(np.ones(2**27))")), "full", "memory"),
        # 4. broken files
        "file_corrupt": (b'{"cells": [{"cell_type": "code", "source": ', "zero", "corrupt"),
        "file_empty": (b"", "zero", "empty"),
        "file_other_assignment": (dump(other.correct() if other else _foreign(a)), "zero", ""),
        "file_not_notebook": (b"print('hello')\n", "zero", "corrupt"),
        # 5. tampering with tests
        "tamper_deleted_test": (dump(a.without_first_test(a.correct())), "full", ""),
        "tamper_deleted_wrong": (dump(a.without_first_test(a.wrong())), "wrong", ""),
        "tamper_assert_true": (dump(a.tests_edited(a.wrong())), "wrong", ""),
        "tamper_points": (dump(a.points_changed(a.wrong())), "wrong", ""),
        "tamper_points_blank": (dump(a.points_changed(a.blank())), "zero", ""),
        # 6. monkeypatching to pass
        "monkey_libs": (dump(a.with_cell_before_tests(a.wrong(), PATCH_LIBS)), "wrong", "patches undone"),
        "monkey_builtins": (dump(a.with_cell_before_tests(a.wrong(), PATCH_BUILTINS)), "wrong", "patches undone"),
        "monkey_transformer": (dump(a.with_cell_before_tests(a.wrong(), PATCH_IPYTHON)), "wrong", "patches undone"),
        "monkey_run_cell": (dump(a.with_cell_before_tests(a.wrong(), PATCH_RUN_CELL)), "wrong", "patches undone"),
        "monkey_hide_errors": (dump(a.with_cell_before_tests(a.wrong(), PATCH_HIDE_ERRORS)), "wrong",
                               "patches undone"),
        "monkey_system_exit": (dump(a.with_cell_before_tests(a.wrong(), SYSTEM_EXIT)), "wrong", ""),
        # 8. huge output
        "output_100mb": (dump(a.with_cell_first(a.correct(), "print('x' * 100_000_000)")), "full", "truncated"),
        "output_flood": (dump(a.with_cell_first(a.correct(), "for i in range(200_000):\n    print(i)")), "full",
                         "truncated"),
    })
    return s


def _foreign(a: Assignment) -> nbformat.NotebookNode:
    """A notebook of a different assignment (other grade ids) when the course has only one."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [new_code_cell("def f(x):\n    return x", metadata={"nbgrader": {
        "grade": False, "grade_id": "other_impl", "locked": False, "schema_version": 3, "solution": True,
        "task": False}})]
    nb.metadata = copy.deepcopy(a.release.metadata)
    return nb


def write_batch(folder: Path, a: Assignment, subs: dict[str, tuple[bytes, str, str]]) -> None:
    """Lay submissions out as <student>/<assignment>/<notebook>.ipynb."""
    for student, (content, _, _) in subs.items():
        d = folder / student / a.name
        d.mkdir(parents=True, exist_ok=True)
        (d / a.filename).write_bytes(content)


def json_cells(path: Path) -> list[dict]:
    """Cells of a notebook file (for assertions on autograded output)."""
    return json.loads(path.read_text())["cells"]


def make_toy_assignment(root: Path, name: str = "t00_toy", fn: str = "relu", sq: str = "square") -> None:
    """A two-question nbgrader source notebook (used when the course has no assignment yet)."""
    def cell(kind: str, src: str, **meta) -> nbformat.NotebookNode:
        c = nbformat.v4.new_code_cell(src) if kind == "code" else nbformat.v4.new_markdown_cell(src)
        c.metadata["nbgrader"] = {"schema_version": 3, "task": False, **meta}
        return c
    test = "from course_utils.grading import check_close, seeded\nimport torch\n"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        cell("md", f"# {name}", grade=False, solution=False, locked=True, grade_id="intro"),
        cell("code", "import torch\nfrom course_utils.grading import check_close, seeded",
             grade=False, solution=False, locked=True, grade_id="setup"),
        cell("code", f"def {sq}(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION",
             grade=False, solution=True, locked=False, grade_id=f"{sq}_impl"),
        cell("code", test + f"check_close('{sq}(3)', {sq}(3.0), 9.0)\n### BEGIN HIDDEN TESTS\nx = seeded(1, 4)\n"
             f"check_close('{sq} of a seeded tensor', {sq}(x), x * x)\n### END HIDDEN TESTS",
             grade=True, solution=False, locked=True, grade_id=f"test_{sq}", points=2),
        cell("code", f"def {fn}(t):\n    ### BEGIN SOLUTION\n    return t.clamp(min=0)\n    ### END SOLUTION",
             grade=False, solution=True, locked=False, grade_id=f"{fn}_impl"),
        cell("code", test + f"check_close('{fn}', {fn}(torch.tensor([-1.0, 2.0])), [0.0, 2.0])\n"
             f"### BEGIN HIDDEN TESTS\nx = seeded(2, 5, 3)\ncheck_close('{fn} of a seeded matrix', {fn}(x), "
             "[[max(v, 0.0) for v in row] for row in x.tolist()])\n### END HIDDEN TESTS",
             grade=True, solution=False, locked=True, grade_id=f"test_{fn}", points=3),
        cell("md", "The derivative of $x^2$ is $2x$.", grade=True, solution=True, locked=False,
             grade_id="why", points=2),
    ]
    folder = root / "solutions" / name
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{name}.ipynb")
