"""`course workspace`: copy the released assignments (and lectures) into a folder where students work.

The committed release (`assignments/`, `lectures/`) stays untouched: running or validating a notebook there
would write outputs into files that git tracks and `course release` regenerates. A file that already exists
in the working folder is the student's work and is kept; `--force` replaces it with a fresh copy and keeps
the old one beside it as `<name>.backup-<YYYYmmdd-HHMMSS><suffix>`.
"""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

DEFAULT_DIR = "work"          # inside the course root; git-ignored


def sync(src: Path, dst: Path, force: bool = False, stamp: str | None = None) -> list[tuple[str, str]]:
    """Copy every file of src into dst; return (relative path, what happened) per file."""
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    done = []
    files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file() and not p.is_symlink()
                                               and ".ipynb_checkpoints" not in p.parts)
    for f in files:
        rel = Path(src.name) / f.relative_to(src) if src.is_dir() else Path(f.name)
        target = dst / rel
        if target.exists() and target.read_bytes() == f.read_bytes():
            done.append((str(rel), "unchanged"))
            continue
        if target.exists() and not force:
            done.append((str(rel), "kept (your work; --force replaces it)"))
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        action = "copied"
        if target.exists():
            backup = target.with_name(f"{target.stem}.backup-{stamp}{target.suffix}")
            target.rename(backup)
            action = f"replaced (your version kept as {backup.name})"
        shutil.copyfile(f, target)
        target.chmod(0o644)
        done.append((str(rel), action))
    return done


def cmd_workspace(args: argparse.Namespace) -> int:
    """Copy the chosen released assignments (and, with --lectures, the lectures) into the working folder."""
    from .layout import LECTURES, RELEASE, print_table, select, course_root

    root = course_root()
    dest = Path(args.to).expanduser() if args.to else root / DEFAULT_DIR
    sources = [p for p in select(root / RELEASE, args.names, "*") if p.is_dir()]
    if args.lectures:
        sources.append(root / LECTURES)
    if not sources:
        raise SystemExit(f"course workspace: nothing released in {root / RELEASE}; ask your TA, or run "
                         "`course release`")
    dest.mkdir(parents=True, exist_ok=True)
    rows = [row for src in sources for row in sync(src, dest, force=args.force)]
    print_table(rows, ("file", "what happened"))
    print(f"\nwork in {dest} (e.g. `jupyter lab {dest}`); the release in {root / RELEASE} stays as it is")
    return 0


def add_command(subparsers) -> None:
    """Register `course workspace`."""
    p = subparsers.add_parser("workspace", help="copy released assignments (and lectures) into a working "
                                                "folder; never overwrites your work without --force")
    p.add_argument("names", nargs="*", help="assignment names or prefixes (default: all released)")
    p.add_argument("--to", help=f"working folder (default: {DEFAULT_DIR}/ in the course folder, git-ignored)")
    p.add_argument("--lectures", action="store_true", help="copy lectures/ as well")
    p.add_argument("--force", action="store_true", help="replace changed files (the old ones are kept as backups)")
    p.set_defaults(func=cmd_workspace)
