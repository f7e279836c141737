"""Every check can fail: a bug planted in a lecture's checked code makes its checked cell fail.

Each row of BUGS names a lecture's checked cell (by a marker: a piece of its source that occurs in exactly one code
cell), the cells it depends on (definitions and small data, never a training cell; `DEFS` runs only the imports,
functions and classes of a cell that also trains or plots), and a planted bug: one piece of source text replaced by
another, exactly once, in one of those cells. The test runs the cells from the committed notebook in a fresh
namespace in this process, first as they are (the check must pass), then with the bug (the check must raise, by its
own assert or error). Cells are found by content, not by index, so edits elsewhere in a lecture do not move them.
`python tests/test_planted_bugs.py` prints the table of bugs and the cells that catch them.
"""
from __future__ import annotations

import ast
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

LECTURES = Path(__file__).resolve().parents[1] / "lectures"
DEFS = "defs"          # run only the imports, functions and classes of the cell

pytestmark = pytest.mark.slow  # about a minute in all: each row runs its lecture's set-up, data and checks twice


@dataclass(frozen=True)
class Bug:
    lecture: str                       # the notebook's name prefix, "00"
    what: str                          # the planted bug, in words (the table's first column)
    cell: str                          # marker of the cell the bug is planted in
    old: str                           # source text replaced ...
    new: str                           # ... by this, exactly once
    check: str                         # marker of the checked cell that must catch it
    needs: tuple = ()                  # markers (or (marker, DEFS)) of the cells run before, in this order
    caught_before: bool = field(default=False, compare=False)   # whether the lecture's check caught it before issue 19


def notebook(lecture: str) -> tuple[str, list[str]]:
    """(file name, sources of the code cells) of a lecture."""
    (path,) = LECTURES.glob(f"{lecture}_*.ipynb")
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return path.name, ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                       for c in cells if c["cell_type"] == "code"]


def find(sources: list[str], marker: str) -> str:
    """The one code cell whose source contains marker."""
    hits = [s for s in sources if marker in s]
    assert len(hits) == 1, f"marker {marker!r} is in {len(hits)} code cells, not exactly one"
    return hits[0]


def definitions(source: str) -> str:
    """Only the imports, functions and classes of a cell (what a later cell can use without its training)."""
    keep = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    tree = ast.parse(source)
    return "\n\n".join(ast.get_source_segment(source, node) for node in tree.body if isinstance(node, keep))


def without_magics(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))


def run(bug: Bug, planted: bool) -> dict:
    """Execute the bug's cells in a fresh namespace, with or without the bug; return the namespace."""
    import matplotlib.pyplot as plt

    name, sources = notebook(bug.lecture)
    steps = [(m, "all") if isinstance(m, str) else m for m in bug.needs] + [(bug.check, "all")]
    assert bug.cell in [m for m, _ in steps], f"{bug.what}: the planted cell is not among the cells run"
    ns: dict = {"__name__": f"lecture_{bug.lecture}"}
    for marker, how in steps:
        source = find(sources, marker)
        if planted and marker == bug.cell:
            assert source.count(bug.old) == 1, f"{bug.what}: {bug.old!r} occurs {source.count(bug.old)} times"
            source = source.replace(bug.old, bug.new)
        source = without_magics(source)
        if how == DEFS:
            source = definitions(source)
        exec(compile(source, f"<{name}: cell with {marker!r}>", "exec"), ns)
        plt.close("all")
    return ns


BUGS = [
    Bug("00", "sum rule: p(z) taken with its two values swapped", "p_z = joint.sum((0, 1))",
        "p_z = joint.sum((0, 1))", "p_z = joint.sum((0, 1))[::-1]", check="p_z = joint.sum((0, 1))",
        needs=("device, gen = setup(seed=0)", "X, Y = img[:, :14].sum((1, 2))")),
    Bug("00", "likelihood p(x|y) normalised over the digits (it is p(y|x))", "p_z = joint.sum((0, 1))",
        "p_x_given_y = p_xy / p_y[None]", "p_x_given_y = p_xy / p_xy.sum(1, keepdims=True)",
        check="p_z = joint.sum((0, 1))", needs=("device, gen = setup(seed=0)", "X, Y = img[:, :14].sum((1, 2))")),
    Bug("02", "gaussian_kl, the KL of training, half as large (too small: it lowers the -ELBO)", "def gaussian_kl(",
        "return 0.5 * (logvar.exp()", "return 0.25 * (logvar.exp()", check="gaussian_kl == torch kl_divergence",
        needs=("LATENT = 20", "def gaussian_kl(")),
    Bug("02", "gaussian_kl with the sign of log sigma^2 flipped", "def gaussian_kl(",
        "- 1.0 - logvar)", "- 1.0 + logvar)", check="gaussian_kl == torch kl_divergence",
        needs=("LATENT = 20", "def gaussian_kl(")),
    Bug("02", "reparameterize scales eps by sigma^2 instead of sigma", "def gaussian_kl(",
        "torch.exp(0.5 * logvar) * torch.randn_like(mu)", "torch.exp(logvar) * torch.randn_like(mu)",
        check="gaussian_kl == torch kl_divergence", needs=("LATENT = 20", "def gaussian_kl(")),
    Bug("02", "importance-weighted bound without the 1/K (log-sum instead of log-mean)", "def iw_log_px(",
        "torch.logsumexp(log_w, 0) - math.log(k)", "torch.logsumexp(log_w, 0)", check="iw_prior = iw_log_px(IgnoresZ(",
        needs=("LATENT = 20", "def gaussian_kl(", "def neg_elbo_terms(", "def iw_log_px(")),
    Bug("02", "importance weights with the prior term's sign flipped", "def iw_log_px(",
        "log_w = log_px_z + Normal(0.0, 1.0)", "log_w = log_px_z - Normal(0.0, 1.0)",
        check="iw_prior = iw_log_px(IgnoresZ(",
        needs=("LATENT = 20", "def gaussian_kl(", "def neg_elbo_terms(", "def iw_log_px(")),
]


@pytest.fixture(autouse=True)
def _quiet_setup(monkeypatch):
    monkeypatch.setenv("COURSE_MODE", "quick")
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.setenv("COURSE_DATA_SOURCE", "embedded")
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.mark.parametrize("bug", BUGS, ids=lambda b: f"{b.lecture}-{b.what[:40]}")
def test_the_check_passes_as_committed_and_fails_with_the_planted_bug(bug, capsys):
    import torch

    threads = torch.get_num_threads()
    try:
        run(bug, planted=False)                          # the check holds for the lecture's own code
        with pytest.raises(Exception) as caught:         # its own assert, or the error the bug provokes in it
            run(bug, planted=True)
    finally:
        torch.set_num_threads(threads)                   # setup() in a lecture's first cell sets the thread count
    assert not isinstance(caught.value, (NameError, SyntaxError, KeyError)), \
        f"{bug.what}: failed for a reason unrelated to the check: {caught.value!r}"


def table() -> str:
    """The markdown table of planted bugs and the checks that catch them (for the README)."""
    rows = ["| lecture | planted bug | caught by (the checked cell) | caught before issue 19 |", "| --- | --- | --- | --- |"]
    for bug in BUGS:
        name, sources = notebook(bug.lecture)
        first = find(sources, bug.check).splitlines()
        label = next((line for line in first if line.startswith("print(")), first[1] if len(first) > 1 else first[0])
        rows.append(f"| `{name[:-6]}` | {bug.what} | `{bug.check}` | {'yes' if bug.caught_before else 'no'} |")
    return "\n".join(rows)


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    print(table())
