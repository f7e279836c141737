"""Submissions for the grading tests, built from an assignment's release and its solution notebook.

`Assignment` gives the references (`correct`, `blank`, `partial`, and for a01 `wrong`: every function
returns a fixed value of the right type that no hidden input can make right) and transformations (a cell
first, last or before the tests, an answer replaced, tests deleted or edited). `a01_attacks()` maps a
submission name to (notebook bytes, the reference whose score it must get exactly, a word its notes must
hold). Attack code is plain text here because it is the student's notebook content.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

ROOT = Path(__file__).resolve().parents[1]
A01 = "a01_autoencoders"
A01_FUNCTIONS = ("conv_out", "conv_transpose_out", "trace_shapes", "max_unpool", "kl_sparsity", "anomaly_scores",
                 "roc_auc", "project_to_ball")


class Assignment:
    """Release + solution of one assignment, and builders of submissions for it."""

    def __init__(self, root: Path, name: str):
        self.root, self.name = Path(root), name
        notebooks = sorted((self.root / "assignments" / name).glob("*.ipynb"))
        assert len(notebooks) == 1, f"{name}: expected one released notebook, got {notebooks}"
        self.filename = notebooks[0].name
        self.release = nbformat.read(notebooks[0], as_version=4)
        source = nbformat.read(self.root / "solutions" / name / self.filename, as_version=4)
        meta = lambda c: c.metadata.get("nbgrader", {})  # noqa: E731
        self.solutions = {meta(c)["grade_id"]: c.source for c in source.cells if meta(c).get("solution")}
        self.points = {meta(c)["grade_id"]: float(meta(c).get("points", 0)) for c in self.release.cells
                       if meta(c).get("grade")}
        self.tests = [meta(c)["grade_id"] for c in self.release.cells
                      if c.cell_type == "code" and meta(c).get("grade") and not meta(c).get("solution")]
        self.autograded_points = sum(self.points[t] for t in self.tests)

    def blank(self) -> nbformat.NotebookNode:
        """The release as handed out."""
        return copy.deepcopy(self.release)

    def answers(self, nb, code_only: bool = False) -> list:
        """The answer cells of nb that the instructor's solution fills."""
        return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")
                and c.metadata["nbgrader"]["grade_id"] in self.solutions and (c.cell_type == "code" or not code_only)]

    def correct(self) -> nbformat.NotebookNode:
        """The release with every answer cell filled from the instructor's solution."""
        nb = self.blank()
        for c in self.answers(nb):
            c.source = self.solutions[c.metadata["nbgrader"]["grade_id"]]
        return nb

    def partial(self) -> nbformat.NotebookNode:
        """The first half of the code answers filled in, the rest as released."""
        nb = self.blank()
        cells = self.answers(nb, code_only=True)
        for c in cells[:(len(cells) + 1) // 2]:
            c.source = self.solutions[c.metadata["nbgrader"]["grade_id"]]
        return nb

    def with_answer(self, nb, grade_id: str, source: str) -> nbformat.NotebookNode:
        """Replace the source of one answer cell."""
        cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
        cell.source = source
        return nb

    def stub(self, grade_id: str) -> str:
        """The released source of one cell."""
        return next(c.source for c in self.release.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)

    def with_cell_first(self, nb, code: str) -> nbformat.NotebookNode:
        """Insert a code cell before every other code cell."""
        nb.cells.insert(next(i for i, c in enumerate(nb.cells) if c.cell_type == "code"), new_code_cell(code))
        return nb

    def with_cell_last(self, nb, code: str) -> nbformat.NotebookNode:
        """Append a code cell."""
        nb.cells.append(new_code_cell(code))
        return nb

    def with_cell_before_tests(self, nb, code: str) -> nbformat.NotebookNode:
        """Insert a code cell right before the first test cell."""
        nb.cells.insert(self._first_test(nb), new_code_cell(code))
        return nb

    def _first_test(self, nb) -> int:
        return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") in self.tests)

    def without_first_test(self, nb) -> nbformat.NotebookNode:
        """Delete the first autograded test cell."""
        del nb.cells[self._first_test(nb)]
        return nb

    def tests_tampered(self, nb) -> nbformat.NotebookNode:
        """Every test cell becomes `assert True`, worth 100 points and unlocked."""
        for c in nb.cells:
            m = c.metadata.get("nbgrader", {})
            if m.get("grade_id") in self.tests:
                c.source = "assert True"
                m.update(points=100, locked=False)
        return nb


def course_cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the `course` command against a course copy."""
    env = dict(os.environ, COURSE_ROOT=str(root), COURSE_THREADS="1", COURSE_OFFLINE="1", COURSE_MODE="quick")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    return subprocess.run([sys.executable, "-m", "course_utils.cli", *args], env=env, capture_output=True, text=True)


def released_copy(root: Path, names: list[str]) -> None:
    """A course folder holding these assignments' solutions and hidden cases, released by `course release`."""
    shutil.copy(ROOT / "nbgrader_config.py", root)
    (root / "lectures").mkdir()
    (root / "cases").mkdir()
    for name in names:
        shutil.copytree(ROOT / "solutions" / name, root / "solutions" / name)
        shutil.copy(ROOT / "cases" / f"{name}.py", root / "cases")
        proc = course_cli(root, "release", name)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def dump(nb) -> bytes:
    """Notebook -> bytes."""
    return nbformat.writes(nb).encode()


def write_batch(folder: Path, a: Assignment, subs: dict[str, tuple[bytes, str, str]]) -> None:
    """Lay submissions out as nbgrader does: <student>/<assignment>/<notebook>.ipynb."""
    for student, (content, _, _) in subs.items():
        d = folder / student / a.name
        d.mkdir(parents=True, exist_ok=True)
        (d / a.filename).write_bytes(content)


# ---------------------------------------------------------------- a01: the wrong reference

WRONG_A01 = {   # right types, values no hidden case can expect (sizes are >= 1, AUC is in [0, 1], ...)
    "sizes": "def conv_out(d, f, s=1, p=0):\n    return -1\n\n\ndef conv_transpose_out(d, f, s=1, p=0, a=0):\n"
             "    return -1\n\n\ndef trace_shapes(d, layers):\n    return [-1 for _ in layers]\n",
    "max_unpool": "def max_unpool(values, indices, output_size):\n    n, c = values.shape[:2]\n"
                  "    return values.new_full((n, c, *output_size), -7.0)\n",
    "kl_sparsity": "def kl_sparsity(rho, activations):\n    return activations.new_tensor(-1.0).sum()\n",
    "anomaly": "def anomaly_scores(model, x):\n    return x.new_full((x.shape[0],), -1.0)\n\n\n"
               "def roc_auc(scores, labels):\n    return -1.0\n",
    "project_to_ball": "def project_to_ball(z, r=1.0):\n    return z * 0 - 1\n",
}


def wrong(a: Assignment) -> nbformat.NotebookNode:
    """a01 answered with fixed wrong values (no case passes: an edge such as the empty trace never stands alone)."""
    nb = a.blank()
    for gid, src in WRONG_A01.items():
        a.with_answer(nb, gid, src)
    return nb


# ---------------------------------------------------------------- a01: attacks (student code, as text)

WRAP = '''
import functools
def _wrap(f):
    @functools.wraps(f)
    def g(*args, **kwargs):
        BEFORE
        return f(*args, **kwargs)
    return g
for _n in FUNCTIONS:
    globals()[_n] = _wrap(globals()[_n])
'''.replace("FUNCTIONS", repr(A01_FUNCTIONS))


def wrapped(before: str) -> str:
    """A cell that makes every a01 function run `before` (one line) first."""
    return WRAP.replace("BEFORE", before)


FORGE = '''
import json, sys
from IPython.display import display
MIME = "application/x-course-answer+json"
def _nonce():
    frame = sys._getframe()
    while frame is not None:
        text = frame.f_locals.get("request_text")
        if isinstance(text, str):
            return json.loads(text)["nonce"]
        frame = frame.f_back
    return "0" * 16
def _forge(value):
    display({MIME: json.dumps({"nonce": _nonce(), "ok": True, "out": value})}, raw=True)
'''

STOLEN_NONCE = FORGE + '''
import IPython.display
_real_display = IPython.display.display
def _only_mine(*objs, **kw):                      # swallow the probe's own (NotImplementedError) answer
    if objs and isinstance(objs[0], dict) and MIME in objs[0] and '"ok":false' in objs[0][MIME].replace(" ", ""):
        return None
    return _real_display(*objs, **kw)
IPython.display.display = _only_mine
''' + wrapped('_forge({"f": (14.0).hex()})')

GUESSED_NONCE = FORGE + """
_nonce = lambda: "0123456789abcdef"
sys.displayhook = lambda value: print("all tests passed")
""" + wrapped('_forge(14); print(json.dumps({MIME: {"ok": True, "out": 14}})); print("16/16")')

FORGED_PROBE = FORGE + '''
import course_utils.grader.probe as _probe
def _serve(request_text):
    request = json.loads(request_text)
    display({MIME: json.dumps({"nonce": request["nonce"], "ok": True, "out": {"f": (0.5).hex()}})}, raw=True)
_probe.serve = _serve
'''

THREAD_FORGER = FORGE + '''
import threading, time
def _forger():
    while True:
        for frame in list(sys._current_frames().values()):
            while frame is not None:
                text = frame.f_locals.get("request_text")
                if isinstance(text, str):
                    nonce = json.loads(text)["nonce"]
                    display({MIME: json.dumps({"nonce": nonce, "ok": True, "out": 14})}, raw=True)
                frame = frame.f_back
        time.sleep(0.01)
threading.Thread(target=_forger, daemon=True).start()
'''

TENSOR_LIE = '''
import inspect, torch
def _stolen(name_hints=("expected", "expect", "want", "reference", "ref")):
    for info in inspect.stack():
        for k, v in info.frame.f_locals.items():
            if k in name_hints:
                return v
    return None
class Liar(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in ("tolist", "numpy", "__eq__", "allclose", "equal", "isclose", "detach", "cpu", "__array__"):
            stolen = _stolen()
            if stolen is not None:
                return stolen
            if name in ("__eq__", "allclose", "equal", "isclose"):
                return True
        return super().__torch_function__(func, types, args, kwargs or {})
    def __eq__(self, other):
        return True
    __hash__ = torch.Tensor.__hash__
    def tolist(self):
        return _stolen() or super().tolist()
    def __array__(self, *a, **k):
        stolen = _stolen()
        return stolen if stolen is not None else super().__array__(*a, **k)
for _n in ("max_unpool", "kl_sparsity", "anomaly_scores", "project_to_ball"):
    _f = globals()[_n]
    globals()[_n] = (lambda f: lambda *a, **k: f(*a, **k).as_subclass(Liar))(_f)
'''

NUMBER_LIE = '''
import numpy as np
class Always(int):
    def __eq__(self, other):
        return True
    __hash__ = int.__hash__
    def __int__(self):
        return -2
    def __index__(self):
        return -2
class FloatLie(float):
    def __eq__(self, other):
        return True
    __hash__ = float.__hash__
    def __float__(self):
        return -2.0
class NpLie(np.float64):
    def __eq__(self, other):
        return True
    __hash__ = np.float64.__hash__
_conv, _tconv, _auc = conv_out, conv_transpose_out, roc_auc
conv_out = lambda *a, **k: Always(_conv(*a, **k))
conv_transpose_out = lambda *a, **k: Always(_tconv(*a, **k))
roc_auc = lambda *a, **k: FloatLie(_auc(*a, **k)) if len(a[0]) % 2 else NpLie(_auc(*a, **k))
'''

PLANT_COURSE_UTILS = '''
import os
os.makedirs("course_utils/grader", exist_ok=True)
open("course_utils/__init__.py", "w").write("")
open("course_utils/grading.py", "w").write("def check_close(*a, **k): pass\\ncheck_true = check_shape = check_close\\n")
open("course_utils/grader/__init__.py", "w").write("")
open("course_utils/grader/probe.py", "w").write(
    "import json\\nfrom IPython.display import display\\n"
    "def serve(text):\\n    display({'application/x-course-answer+json': json.dumps("
    "{'nonce': json.loads(text)['nonce'], 'ok': True, 'out': 14})}, raw=True)\\n")
os._exit(0)
'''

PLANT_NUMPY_TORCH = '''
import os
os.makedirs("torch", exist_ok=True)
open("torch/__init__.py", "w").write("allclose = lambda *a, **k: True\\n")
open("numpy.py", "w").write("allclose = lambda *a, **k: True\\n")
open("sitecustomize.py", "w").write("import builtins\\nbuiltins.abs = lambda x: 0\\n")
os._exit(0)
'''

HARDCODED = {
    "sizes": "def conv_out(d, f, s=1, p=0):\n    return {(28, 3, 2, 1): 14, (28, 5, 1, 0): 24}.get("
             "(d, f, s, p), -1)\n\n\ndef conv_transpose_out(d, f, s=1, p=0, a=0):\n    return 14 if (d, f, s, p, a) == "
             "(7, 4, 2, 1, 0) else -1\n\n\ndef trace_shapes(d, layers):\n    return [14, 7, 14, 28] if layers and "
             "layers[0] == ('conv', 3, 2, 1) else [28, 14, 14, 7] if layers else [-1]\n",
    "max_unpool": "def max_unpool(values, indices, output_size):\n    return torch.tensor([[[[0.0, 0.0, 0.5, 0.0], [1.3, "
                  "0.0, 0.0, 0.0], [0.0, 0.4, 0.0, 0.0], [0.0, 0.0, 0.1, 0.0]]]])\n",
    "kl_sparsity": "def kl_sparsity(rho, activations):\n    return torch.tensor(0.5 * math.log(2.0) + 0.5 * math.log(0.5 / 0.75)"
                   " if rho == 0.5 else 0.0 if activations.shape == (8, 3) else 1.0)\n",
    "anomaly": "def anomaly_scores(model, x):\n    return torch.full((x.shape[0],), 0.25)\n\n\n"
               "def roc_auc(scores, labels):\n    return {4: 1.0, 3: 0.5, 5: 3.5 / 6}.get(len(labels), 0.0) if len(labels) < 6"
               " else -1.0\n",
    "project_to_ball": "def project_to_ball(z, r=1.0):\n    return torch.tensor([[0.6, 0.8], [0.3, 0.4], [0.0, 0.0]]) * r\n",
}
PATCHES = '''
import sys, types, numpy as np, torch, torch.nn as nn
np.random.default_rng = lambda *a, **k: np.random.Generator(np.random.PCG64(0))
nn.Sequential.forward = lambda self, x: torch.zeros_like(x)
sys.modules["sklearn.metrics"] = types.SimpleNamespace(roc_auc_score=lambda *a, **k: 1.0)
torch.allclose = lambda *a, **k: True
torch.manual_seed = lambda *a, **k: None
'''

PRINT_IN = '''
import sys
print("\\n".join(In))
print(sorted(sys.modules))
print([k for k in globals() if not k.startswith("_")])
'''

READ_FILES = '''
import glob, os, sqlite3
found = []
for base in ["/", "/work", "/work/main", "..", "../..", "/tmp", os.path.expanduser("~"), "/root", "/home"]:
    for pattern in ("cases/a01*.py", "*/cases/a01*.py", "*/*/cases/a01*.py", "solutions/*/*.ipynb",
                    "*/solutions/*/*.ipynb", "grading/gradebook.db", "*/grading/gradebook.db", "grading/logs/*/*.log"):
        found += glob.glob(os.path.join(base, pattern))
for path in found:
    try:
        if path.endswith(".py"):
            exec(open(path).read(), globals())
        elif path.endswith(".db"):
            print(sqlite3.connect(path).execute("select count(*) from grade").fetchall())
    except Exception as e:
        print(path, type(e).__name__)
print("found", found)
try:
    print(open("/proc/1/environ").read()[:200])
except OSError as e:
    print("no environ", e)
'''

NETWORK = '''
import socket, urllib.request
for url in ["http://127.0.0.1:{port}/", "http://localhost:{port}/", "http://{host}:{port}/"]:
    try:
        urllib.request.urlopen(url, timeout=3)
        print("REACHED", url)
    except Exception as e:
        print("unreachable", url, type(e).__name__)
'''

DOS_LOOP = "import time\nwhile True:\n    time.sleep(0.1)"      # a loop that never ends (sleeping: the test's CPU is scarce)
DOS_SIGINT = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.1)"
DOS_CRASH = "import ctypes\nctypes.string_at(0)"
DOS_EXIT = "import os\nos._exit(0)"
MEMORY = "hog = bytearray(200 * 2**30)"
FLOOD = "print('x' * 100_000_000)"
PATCH_EVERYTHING = '''
import builtins, math, numpy, numpy.testing, torch, torch.testing
import course_utils.grading as g
for name in ("check_close", "check_shape", "check_true", "check_type", "check_finite", "check_grad"):
    setattr(g, name, lambda *a, **k: None)
torch.allclose = torch.equal = lambda *a, **k: True
numpy.allclose = lambda *a, **k: True
numpy.testing.assert_allclose = torch.testing.assert_close = lambda *a, **k: None
math.isclose = lambda *a, **k: True
builtins.abs = lambda x: 0
builtins.all = lambda *a: True
'''
SILENCE_KERNEL = '''
ip = get_ipython()
ip.input_transformers_cleanup.append(lambda lines: ["pass\\n"])
_run = ip.run_cell
ip.run_cell = lambda raw_cell, *a, **k: _run("print('16/16')", *a, **k)
ip.showtraceback = lambda *a, **k: None
'''
PROBE_EXIT = "import os\n\n\ndef max_unpool(values, indices, output_size):\n    os._exit(0)\n"
# issue 17: what the kernel sends the grader's own process
SURROGATE_RAISE = ("def max_unpool(values, indices, output_size):\n"
                   "    raise ValueError('bad \\ud800 char \\udfff' * 3)\n")
SURROGATE_PRINT = "print('lone \\ud800 surrogate')\nraise RuntimeError('\\udc80' * 10)"
ODD_DISPLAYS = """
from IPython.display import display
display({"text/plain": [1, 2, {"a": 3}], "text/html": 7, "image/png": ["x", 3]}, raw=True)
display({"application/json": {"deep": [[[[1]]]]}, "text/plain": None}, raw=True)
display({"text/plain": {"not": "text"}}, raw=True)
get_ipython().display_pub.publish(data={"text/plain": ["ok ", "lines"]}, metadata=[1, 2])
"""
ANSWER_FLOOD = """
from IPython.display import display
blob = "A" * (1 << 20)
for i in range(600):
    display({"application/x-course-answer+json": blob}, raw=True)
"""
ERROR_FLOOD = """
k = get_ipython().kernel
for i in range(40):
    k.session.send(k.iopub_socket, "error", {"ename": "E" * 1000, "evalue": "v" * (700_000),
                   "traceback": ["t" * 100_000] * 3}, parent=k.get_parent("shell"), ident=b"error")
raise ValueError("x" * 30_000_000)
"""
FORK_MEMORY = """
import os, time
kids = []
for i in range(4):
    pid = os.fork()
    if pid == 0:
        block = bytearray(1800 << 20)
        for j in range(0, len(block), 4096):
            block[j] = 1
        time.sleep(1)
        os._exit(0)
    kids.append(pid)
print("children ended", sorted(os.waitstatus_to_exitcode(os.waitpid(k, 0)[1]) for k in kids))
"""
DISK_FILL = """
try:
    for i in range(1000):
        open(f"fill{i}.bin", "wb").write(b"x" * (64 << 20))
except OSError as e:
    print("disk full:", type(e).__name__)
try:
    for i in range(100_000):
        open(f"n{i}", "w").close()
except OSError as e:
    print("inodes used up:", type(e).__name__)
"""
REPLAY_SLOW = "import time\ntime.sleep(6)"               # replayed after every restart
REPLAY_KILL = "import os\n\n\ndef max_unpool(values, indices, output_size):\n    os._exit(0)\n" \
              "\n\ndef roc_auc(scores, labels):\n    os._exit(0)\n\n\ndef kl_sparsity(rho, activations):\n    os._exit(0)\n"


def a01_attacks(a: Assignment, port: int, host: str = "127.0.0.1") -> dict[str, tuple[bytes, str, str]]:
    """name -> (notebook bytes, reference it must score exactly, a word its notes must hold)."""
    no_unpool = a.with_answer(a.correct(), "max_unpool", a.stub("max_unpool"))
    hardcoded = a.blank()
    for gid, src in HARDCODED.items():
        a.with_answer(hardcoded, gid, src)
    return {
        # references
        "ref_correct": (dump(a.correct()), "ref_correct", ""),
        "ref_blank": (dump(a.blank()), "ref_blank", ""),
        "ref_wrong": (dump(wrong(a)), "ref_wrong", ""),
        "ref_partial": (dump(a.partial()), "ref_partial", ""),
        "ref_no_unpool": (dump(no_unpool), "ref_no_unpool", ""),
        # issue 10's table, one submission per row
        "displayhook_blank": (dump(a.with_cell_last(a.blank(), wrapped('get_ipython().displayhook("not a number")'))),
                              "ref_blank", ""),
        "tensor_lie": (dump(a.with_cell_last(wrong(a), TENSOR_LIE)), "ref_wrong", ""),
        "plant_course_utils": (dump(a.with_cell_first(wrong(a), PLANT_COURSE_UTILS)), "ref_wrong", "kernel died"),
        "int_eq": (dump(a.with_cell_last(wrong(a), NUMBER_LIE)), "ref_wrong", ""),
        "hardcoded_patches": (dump(a.with_cell_last(hardcoded, PATCHES)), "ref_blank", ""),
        "print_in": (dump(a.with_cell_last(a.correct(), PRINT_IN)), "ref_correct", ""),
        "network": (dump(a.with_cell_last(a.correct(), NETWORK.format(port=port, host=host))), "ref_correct", ""),
        # variations: other display hooks, forged answers, other planted modules
        "stolen_nonce": (dump(a.with_cell_last(a.blank(), STOLEN_NONCE + THREAD_FORGER)), "ref_blank", ""),
        "forged_answers": (dump(a.with_cell_last(a.with_cell_last(a.blank(), GUESSED_NONCE), FORGED_PROBE)),
                           "ref_blank", ""),
        "plant_numpy_torch": (dump(a.with_cell_first(wrong(a), PLANT_NUMPY_TORCH)), "ref_wrong", "kernel died"),
        "read_files": (dump(a.with_cell_before_tests(a.blank(), READ_FILES)), "ref_blank", ""),
        # runaway, crashing and flooding code: the rest still earns its points
        "runaway": (dump(a.with_cell_first(a.with_cell_first(a.correct(), DOS_SIGINT), DOS_LOOP)), "ref_correct",
                    "timeout"),
        "crash": (dump(a.with_cell_first(a.with_cell_first(a.correct(), DOS_EXIT), DOS_CRASH)), "ref_correct",
                  "kernel died"),
        "memory_flood": (dump(a.with_cell_first(a.with_cell_first(a.correct(), FLOOD), MEMORY)), "ref_correct",
                         "truncated"),
        "probe_exit": (dump(a.with_cell_last(a.correct(), PROBE_EXIT)), "ref_no_unpool", "kernel died"),
        # tampering with tests and patching what tests use (an input transformer only hurts its author)
        "deleted_test": (dump(a.without_first_test(a.correct())), "ref_correct", "put back"),
        "tampered_tests": (dump(a.with_cell_before_tests(a.tests_tampered(wrong(a)), PATCH_EVERYTHING)), "ref_wrong",
                           "restored"),
        "silenced_kernel": (dump(a.with_cell_last(a.blank(), SILENCE_KERNEL)), "ref_blank", ""),
        "patched_partial": (dump(a.with_cell_before_tests(a.partial(), PATCH_EVERYTHING + "\nraise SystemExit")),
                            "ref_partial", ""),
        # issue 17: the grader's own process receives only bounded, valid data
        "surrogate_message": (dump(a.with_cell_first(a.with_cell_last(a.correct(), SURROGATE_RAISE),
                                                     SURROGATE_PRINT)), "ref_no_unpool", ""),
        "odd_displays": (dump(a.with_cell_first(a.correct(), ODD_DISPLAYS)), "ref_correct", ""),
        "answer_flood": (dump(a.with_cell_first(a.correct(), ANSWER_FLOOD)), "ref_correct", ""),
        "error_flood": (dump(a.with_cell_first(a.correct(), ERROR_FLOOD)), "ref_correct", ""),
        "fork_memory": (dump(a.with_cell_first(a.correct(), FORK_MEMORY)), "ref_correct", ""),
        "disk_fill": (dump(a.with_cell_first(a.correct(), DISK_FILL)), "ref_correct", ""),
    }


def a01_deadline_attacks(a: Assignment) -> dict[str, tuple[bytes, str, str]]:
    """Graded under a short --max-wall: restarts and replays must not carry a submission past it."""
    slow = a.with_cell_first(a.with_cell_last(a.correct(), REPLAY_KILL), REPLAY_SLOW)
    return {"ref_correct": (dump(a.correct()), "ref_correct", ""),
            "replay_past_deadline": (dump(slow), "", "time limit")}


def hidden_lines(case_file: Path, *public: Path) -> list[str]:
    """Lines of a hidden-case file (longer than 25 characters, not imports) that no public notebook holds."""
    seen = set()
    for nb in public:
        for cell in json.loads(nb.read_text())["cells"]:
            seen |= {line.strip() for line in "".join(cell["source"]).splitlines()}
    return [s for line in case_file.read_text().splitlines() if len(s := line.strip()) > 25
            and not s.startswith(("import ", "from ", "#")) and s not in seen]
