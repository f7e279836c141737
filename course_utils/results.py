"""One results protocol: report() prints a uniform RESULT line and fails the cell when a headline number regresses.

A lecture guards each headline number with a bound set from the spread it measured over several seeds:

    report("held-out -ELBO (nats)", nelbo, data="embedded MNIST, 1,000 test digits",
           at_most=pick(125, 100), spread=pick((112, 118), (95, 97)), seeds=3)

prints `RESULT | 02_vae | held-out -ELBO (nats) | 115.4 | embedded MNIST, 1,000 test digits |
<= 125 (3 seeds: 112-118, margin 7) | quick` and raises ResultError when the value misses the bound.
`course results` collects these lines from the executed lectures into the README's results table.

A bound is one-sided (`at_most=` or `at_least=`) or two-sided (both), for numbers that a bug can move the good way
(a KL term that is too small lowers a -ELBO). `say()` displays Markdown built from computed values, so that prose
that quotes a measured number quotes the number this run printed.

Bounds are set where the seed spreads were measured: quick mode on the embedded digits, which is what CI and the
test command run. In any other run (full mode, or digits from a MNIST folder or download) the value comes from
another distribution, so the line still prints, with the bound and whether it was met, but the cell goes on.
"""
from __future__ import annotations

import argparse
import difflib
import json
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path

from .mode import course_mode

PREFIX = "RESULT"
SEP = " | "
LECTURE_ENV = "COURSE_LECTURE"  # set by the runners (`course lectures`, the nbval run in conftest.py) per notebook
MARKERS = ("<!-- results:start -->", "<!-- results:end -->")
CALIBRATED = "quick mode on the embedded digits"  # where every bound's seed spread was measured
HEADER = ("lecture", "result", "value", "measured on", "bound (seed spread, margin)", "mode")


class ResultError(AssertionError):
    """A headline number missed its bound: the message says which number, by how much, and the seed spread."""


@dataclass(frozen=True)
class Result:
    """One RESULT line, as printed by report() and read back by collect(); every field is text."""

    lecture: str
    name: str
    value: str
    data: str
    bound: str
    mode: str

    def line(self) -> str:
        """The machine-readable line: RESULT | lecture | name | value | data | bound | mode."""
        return SEP.join((PREFIX, *(getattr(self, f.name) for f in fields(self))))

    @classmethod
    def parse(cls, line: str) -> "Result":
        """Read a line written by line(); ValueError when it is not one."""
        parts = [p.strip() for p in line.strip().split(SEP.strip())]
        if parts[0] != PREFIX or len(parts) != 1 + len(fields(cls)):
            raise ValueError(f"not a RESULT line with {len(fields(cls))} fields: {line!r}")
        return cls(*parts[1:])


def _fmt(x: float) -> str:
    """A number as the table shows it: 4 significant digits, thousands separated from 1,000 on."""
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def lecture_name(lecture: str | None = None) -> str:
    """The lecture's name: the argument, else $COURSE_LECTURE, else the Jupyter session's notebook, else 'unknown'."""
    if lecture:
        return lecture
    if os.environ.get(LECTURE_ENV):
        return os.environ[LECTURE_ENV]
    session = os.environ.get("JPY_SESSION_NAME", "")  # set by Jupyter Lab / Notebook for the kernel of a notebook
    return Path(session).stem if session.endswith(".ipynb") else "unknown"


def _bound_text(at_most: float | None, at_least: float | None, spread: tuple[float, float], seeds: int) -> str:
    """'<= 125 (3 seeds: 112-118, margin 7)', or for a two-sided bound '>= 108, <= 125 (3 seeds: 112-118, margin 4
    below, 7 above)'; ValueError when the bound is ill-posed or tighter than the spread."""
    if at_most is None and at_least is None:
        raise ValueError("report(): give a bound: exactly one of at_most= (lower is better) or at_least= (higher is "
                         "better), or both for a two-sided bound")
    lo, hi = sorted(float(s) for s in spread)
    if seeds < 2:
        raise ValueError(f"report(): a seed spread needs at least 2 seeds, got seeds={seeds}")
    if at_most is not None and at_least is not None and float(at_least) >= float(at_most):
        raise ValueError(f"report(): at_least={_fmt(float(at_least))} must be below at_most={_fmt(float(at_most))}")
    margins = {}
    if at_least is not None:
        margins["below"] = lo - float(at_least)
    if at_most is not None:
        margins["above"] = float(at_most) - hi
    for side, margin in margins.items():
        if margin < 0:
            bound = at_least if side == "below" else at_most
            raise ValueError(f"report(): the bound {_fmt(float(bound))} is tighter than the measured seed spread "
                             f"{_fmt(lo)}-{_fmt(hi)}; set it beyond the worst seed, with a margin")
    ops = ([f">= {_fmt(float(at_least))}"] if at_least is not None else []) + \
          ([f"<= {_fmt(float(at_most))}"] if at_most is not None else [])
    margin_text = (f"margin {_fmt(next(iter(margins.values())))}" if len(margins) == 1 else
                   f"margin {_fmt(margins['below'])} below, {_fmt(margins['above'])} above")
    return f"{', '.join(ops)} ({seeds} seeds: {_fmt(lo)}-{_fmt(hi)}, {margin_text})"


def _elsewhere() -> str:
    """'' when this run is where the bounds were set (quick mode, embedded digits); else how it differs, in words."""
    from . import data  # here, not at the top: the data module imports torch, `course results` does not need it

    differs = [f"{course_mode()} mode"] if course_mode() != "quick" else []
    if "folder" in data.sources_used():
        differs.append("on digits from a MNIST folder")
    return ", ".join(differs)


def report(name: str, value: float, *, data: str, spread: tuple[float, float], seeds: int,
           at_most: float | None = None, at_least: float | None = None, lecture: str | None = None) -> float:
    """Print one RESULT line for a headline number and raise ResultError when it misses its bound; return the value.

    name: what is measured, with its unit; data: what it was measured on; at_most / at_least: the bound (exactly
    one, or both for a two-sided bound); spread: (lowest, highest) value measured over `seeds` seeds, which the bound
    must contain.
    """
    for label, text in (("name", name), ("data", data), ("lecture", lecture or "")):
        if "|" in text or "\n" in text:
            raise ValueError(f"report(): {label}={text!r} must not contain '|' or a line break")
    bound_text = _bound_text(at_most, at_least, spread, seeds)
    value = float(value)
    over = value - at_most if at_most is not None and value > at_most else 0.0
    under = at_least - value if at_least is not None and value < at_least else 0.0
    missed = not math.isfinite(value) or over > 0 or under > 0
    elsewhere = _elsewhere()
    shown = bound_text if not elsewhere else (f"{bound_text}; {'missed' if missed else 'met'}, not enforced: "
                                              f"this run is {elsewhere}, the bound was set in {CALIBRATED}")
    result = Result(lecture_name(lecture), name, _fmt(value), data, shown, course_mode())
    if missed and not elsewhere:
        raise ResultError(f"{result.lecture}: {name} regressed: {result.value} misses the bound {bound_text} by "
                          f"{_fmt(over or under) if math.isfinite(value) else 'a non-finite value'} "
                          f"(measured on {data}, {result.mode} mode)")
    print(result.line())
    return value


def say(template: str, /, **values) -> None:
    """Display Markdown built from computed values: `say("The ViT reaches {acc:.1%}.", acc=acc)` (or an f-string).

    Prose that quotes a measured number goes through here, so the text shows the number this run computed: in
    Jupyter, in the executed notebook and on the website alike (a display_data output with text/markdown). Outside
    IPython the text is printed.
    """
    text = template.format(**values) if values else template
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - IPython comes with Jupyter
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        print(text)
        return
    display(Markdown(text))


def collect(folder: str | Path) -> list[Result]:
    """The RESULT lines printed in the outputs of the executed notebooks in folder, in notebook and cell order."""
    results = []
    for path in sorted(Path(folder).glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb.get("cells", []):
            for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
                if out.get("output_type") != "stream" or out.get("name") != "stdout":
                    continue
                text = out["text"] if isinstance(out["text"], str) else "".join(out["text"])
                for line in text.splitlines():
                    if not line.startswith(PREFIX + SEP):
                        continue
                    result = Result.parse(line)
                    if result.lecture not in (path.stem, "unknown"):
                        raise ValueError(f"{path.name} prints a RESULT line for lecture {result.lecture!r}: {line}")
                    results.append(Result(path.stem, *(getattr(result, f.name) for f in fields(Result)[1:])))
    return results


def table(results: list[Result]) -> str:
    """The README's results table (GitHub markdown), one row per RESULT line."""
    rows = [HEADER, tuple("---" for _ in HEADER)]
    rows += [(f"`{r.lecture}`", r.name, r.value, r.data, r.bound, r.mode) for r in results]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def _split(readme: str, path: str | Path = "README.md") -> tuple[str, str, str]:
    """(before, table, after) around the results markers; ValueError naming the markers when they are missing."""
    start, end = readme.find(MARKERS[0]), readme.find(MARKERS[1])
    if start < 0 or end < start:
        raise ValueError(f"{path} has no results table between {MARKERS[0]} and {MARKERS[1]}; add the two "
                         f"markers around the table in the section 'Measured run times and results'")
    start += len(MARKERS[0])
    return readme[:start], readme[start:end], readme[end:]


def readme_table(readme: str, path: str | Path = "README.md") -> str:
    """The text between the results markers of a README, stripped."""
    return _split(readme, path)[1].strip()


def with_table(readme: str, new_table: str, path: str | Path = "README.md") -> str:
    """The README text with the table between the results markers replaced."""
    before, _, after = _split(readme, path)
    return f"{before}\n{new_table.strip()}\n{after}"


def cmd_results(args: argparse.Namespace) -> int:
    """Print the results table from the executed lectures; --write puts it in the README, --check compares."""
    from .layout import LECTURES, course_root

    folder = Path(args.lectures) if args.lectures else course_root() / LECTURES
    text = table(collect(folder))
    print(text)
    if args.write:
        path = Path(args.write)
        path.write_text(with_table(path.read_text(encoding="utf-8"), text, path), encoding="utf-8")
        print(f"\nwrote the table into {path}")
    if args.check:
        path = Path(args.check)
        current = readme_table(path.read_text(encoding="utf-8"), path)
        if current != text:
            diff = difflib.unified_diff(current.splitlines(), text.splitlines(), f"{path} (README)",
                                        f"{folder} (notebooks)", lineterm="")
            print("\n" + "\n".join(diff) + f"\n\n{path} and the notebooks disagree; run `course results --write "
                  f"{path}` after executing the lectures")
            return 1
        print(f"\n{path} agrees with the RESULT lines of {folder}")
    return 0


def add_command(sub: argparse._SubParsersAction) -> None:
    """Register `course results` on the course command's subparsers."""
    p = sub.add_parser("results", help="collect the RESULT lines of the executed lectures into the README's table")
    p.add_argument("--lectures", help="folder of executed notebooks (default: the course's lectures/)")
    p.add_argument("--check", metavar="README", help="exit 1 when this README's results table differs")
    p.add_argument("--write", metavar="README", help="replace the table between the results markers of this README")
    p.set_defaults(func=cmd_results)
