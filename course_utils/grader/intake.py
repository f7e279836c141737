"""Intake: what an LMS exports -> one notebook per student, each file judged on its own.

Input layouts (`collect(source, ...)`): a zip, or a folder, whose top-level names are written by the LMS,
each either a file (`<name>.ipynb`, or a student's own `<name>.zip`) or a folder of one student's files;
and nbgrader's own layout `<student>/<assignment>/<notebook>.ipynb` (with an optional `timestamp.txt`).

The student id rule (`student_id`): the id is the top-level name as the LMS wrote it, NFC-normalised,
up to its first `_` (the separator Canvas and Moodle put after the name), or its stem when it has no `_`;
inner spaces and Unicode are kept, outer spaces dropped. Canvas `lastfirst_12345_67890_a01.ipynb` and
`lastfirst_LATE_12345_67890_a01.ipynb` -> `lastfirst`; Moodle `Anna Maria_12345_assignsubmission_file_a01.ipynb`
(or a folder `Anna Maria_12345_assignsubmission_file_/`) -> `Anna Maria`; `Ümit Öz_a01.ipynb` -> `Ümit Öz`.
An id that is empty, starts with `.`, is longer than 100 characters or holds `/`, `\\`, `:` or a control
character is refused. In nbgrader's layout the folder name is the id whole (checked the same way).
The numbers after the name are left out on purpose: Canvas and Moodle print them in different places, and
Moodle's participant number can change between assignments, while the name stays the same all term.

Crediting: only the top-level name (the one the LMS wrote) decides whose a file is. Everything inside it,
the files of a student's folder and the members of a student's zip (nested zips too), is credited to that
student and never to the names it holds: `mallory_a01.zip` holding `victim_a01.ipynb` is mallory's.

Duplicates: when several valid notebooks are credited to one id, the newest by the LMS timestamp wins (a
`YYYY-MM-DD-HH-MM-SS` stamp in the top-level name, or nbgrader's `timestamp.txt`; a zip entry's date is
not one, the uploader sets it); identical contents count once; otherwise every file of that id is refused.

Safety: names are only ever displayed, never used as paths (staged files get fresh names in `staging`);
unsafe entry names, symlinks and special files are refused; sizes, counts and compression ratios are
checked from the central directory before anything is extracted and enforced again while streaming in
1 MiB chunks; written files are 0o644 and folders 0o755. Anything a single file does gets a `Refused`
row with the reason, and the batch goes on.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import stat
import tempfile
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Callable

from ..layout import atomic_write

CHUNK = 1 << 20
MAX_ID = 100
NOTEBOOK, ARCHIVE = ".ipynb", ".zip"
METADATA = ("__MACOSX", ".ipynb_checkpoints", ".DS_Store", "Thumbs.db", "desktop.ini")
STAMP = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})[-T_ ](\d{2})[-:_](\d{2})[-:_](\d{2})(?!\d)")
UNREADABLE = (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError, OSError, ValueError)


@dataclass(frozen=True)
class Limits:
    """How much one export may unpack to; checked before extraction and again while streaming."""

    entry_bytes: int = 256 << 20        # one extracted file (a student's zip, say)
    notebook_bytes: int = 64 << 20      # one notebook
    total_bytes: int = 2 << 30          # everything extracted from one export together
    entries: int = 10_000               # members of one zip
    ratio: int = 200                    # uncompressed : compressed, for entries above ratio_from
    ratio_from: int = 1 << 20           # small entries cannot be bombs, whatever their ratio
    depth: int = 2                      # zips inside a student's zip inside the export


@dataclass(frozen=True)
class Accepted:
    """One student's notebook, staged and ready to place."""

    student: str
    source: str
    notebook: Path
    timestamp: datetime | None
    sha256: str


@dataclass(frozen=True)
class Refused:
    """A file that is not graded, and why."""

    source: str
    reason: str
    student: str | None = None


@dataclass
class Intake:
    """What collect() made of an export: one Accepted per student, a Refused row for everything else."""

    accepted: list[Accepted] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)


class IntakeError(ValueError):
    """The export as a whole cannot be read (not one of its files)."""


def _id_problem(name: str) -> str | None:
    """Why a (normalised) student id is refused, or None."""
    if not name:
        return "empty student id"
    if name.startswith("."):
        return f"student id {name!r} starts with '.' (a hidden file?)"
    if len(name) > MAX_ID:
        return f"student id longer than {MAX_ID} characters"
    if any(c in "/\\:" or unicodedata.category(c)[0] == "C" or unicodedata.category(c) in ("Zl", "Zp")
           for c in name):
        return f"student id {name!r} holds a path separator, ':' or a control character"
    return None


def _normal(name: str) -> str:
    """NFC form without outer spaces."""
    return unicodedata.normalize("NFC", name).strip()


def _head(filename: str) -> str:
    """The part of a name that the id rule keeps: NFC, up to the first '_' (else the stem), no outer spaces."""
    name = unicodedata.normalize("NFC", filename)
    return (name.split("_", 1)[0] if "_" in name else os.path.splitext(name)[0]).strip()


def student_id(filename: str) -> str | None:
    """The student id of a top-level name the LMS wrote (see the module docstring), or None if refused."""
    if "/" in filename or "\\" in filename:
        return None
    head = _head(filename)
    return None if _id_problem(head) else head


def _is_metadata(name: str) -> bool:
    """macOS, Windows and Jupyter files that travel along with uploads."""
    return any(part in METADATA or part.startswith("._") for part in name.split("/"))


def _stamp(name: str) -> datetime | None:
    """An LMS timestamp written in a name (UTC assumed), or None."""
    m = STAMP.search(name)
    if not m:
        return None
    try:
        return datetime(*map(int, m.groups()), tzinfo=timezone.utc)
    except ValueError:
        return None


def _unsafe(name: str) -> str | None:
    """Why an archive member name is unsafe, or None."""
    if "\\" in name:
        return "unsafe name (backslash)"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "unsafe name (absolute path or drive letter)"
    if ".." in name.split("/"):
        return "unsafe name ('..' climbs out of the folder)"
    if any(unicodedata.category(c) == "Cc" for c in name):
        return "unsafe name (control character)"
    return None


def _shown(text: str) -> str:
    """Text safe to print on a terminal: control characters escaped."""
    return "".join(c if unicodedata.category(c) not in ("Cc", "Cf") else c.encode("unicode_escape").decode()
                   for c in text)


def _member_name(info: zipfile.ZipInfo) -> str:
    """A member's name; UTF-8 names written without the UTF-8 flag are decoded as UTF-8, not cp437."""
    if info.flag_bits & 0x800 or info.filename.isascii():
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except UnicodeError:
        return info.filename


def _notebook_problem(path: Path) -> str | None:
    """Why a staged file is not a gradable nbformat-4 notebook, or None."""
    import nbformat

    try:
        raw = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "not a notebook: not JSON text"
    if not isinstance(raw, dict) or "cells" not in raw and "worksheets" not in raw:
        return "not a notebook: JSON without cells"
    if raw.get("nbformat") != 4:
        return f"not an nbformat 4 notebook (nbformat {raw.get('nbformat')!r}); open and save it in Jupyter"
    try:
        nbformat.validate(nbformat.from_dict(raw))
    except nbformat.ValidationError as err:
        return f"invalid nbformat 4 notebook: {str(err).splitlines()[0][:120]}"
    return None


class _TooBig(Exception):
    """Streaming went past a limit."""


@dataclass
class _Candidate:
    """A valid notebook credited to a student, before duplicates are settled."""

    student: str
    source: str
    path: Path
    timestamp: datetime | None
    sha256: str


class _Collector:
    """Walks one export, streaming notebooks into staging and writing one row per file."""

    def __init__(self, assignment: str, staging: Path, limits: Limits):
        self.assignment, self.staging, self.limits = assignment, staging, limits
        self.written = 0
        self.found: list[_Candidate] = []
        self.refused: list[Refused] = []

    def refuse(self, source: str, reason: str, student: str | None = None) -> None:
        """Record a row for a file that is not taken."""
        self.refused.append(Refused(source, reason, student))

    # ------------------------------------------------------------ one file
    def take(self, source: str, name: str, student: str, stamp: datetime | None, size: int,
             open_: Callable[[], BinaryIO], depth: int) -> None:
        """Judge one file credited to `student`: a notebook is staged and validated, a zip is opened."""
        base = name.rsplit("/", 1)[-1]
        ext = os.path.splitext(base)[1].lower()
        if _is_metadata(name):
            return self.refuse(source, "ignored: operating-system or editor metadata", student)
        if ext not in (NOTEBOOK, ARCHIVE):
            return self.refuse(source, f"not a notebook ({ext or 'no extension'}); only .ipynb files "
                                       "(or .zip archives of them) are graded", student)
        if ext == ARCHIVE and depth >= self.limits.depth:
            return self.refuse(source, f"archive nested more than {self.limits.depth} deep", student)
        cap = self.limits.notebook_bytes if ext == NOTEBOOK else self.limits.entry_bytes
        if size > cap:
            return self.refuse(source, f"{size:,} bytes, over the {cap:,}-byte limit for a {ext} file", student)
        if self.written + size > self.limits.total_bytes:
            return self.refuse(source, f"the export would unpack to more than {self.limits.total_bytes:,} bytes",
                               student)
        fd, tmp = tempfile.mkstemp(suffix=ext, dir=self.staging)
        path = Path(tmp)
        try:
            os.fchmod(fd, 0o644)
            with os.fdopen(fd, "wb") as out, open_() as src:
                digest = self._stream(src, out, min(cap, size if size >= 0 else cap))
        except _TooBig as err:
            path.unlink()
            return self.refuse(source, str(err), student)
        except UNREADABLE as err:
            path.unlink()
            return self.refuse(source, f"unreadable ({type(err).__name__}: {_shown(str(err))[:100]})", student)
        if ext == ARCHIVE:
            try:
                self.zip(path, source + "!/", student, stamp, depth + 1)
            finally:
                path.unlink()
            return None
        problem = _notebook_problem(path)
        if problem:
            path.unlink()
            return self.refuse(source, problem, student)
        self.found.append(_Candidate(student, source, path, stamp, digest))
        return None

    def _stream(self, src: BinaryIO, out: BinaryIO, cap: int) -> str:
        """Copy in chunks, never past `cap` bytes or the export's total; return the SHA-256."""
        digest, n = hashlib.sha256(), 0
        while chunk := src.read(CHUNK):
            n += len(chunk)
            if n > cap:
                raise _TooBig(f"more than {cap:,} bytes while extracting (the header said less)")
            if self.written + len(chunk) > self.limits.total_bytes:
                raise _TooBig(f"the export unpacked to more than {self.limits.total_bytes:,} bytes")
            self.written += len(chunk)
            digest.update(chunk)
            out.write(chunk)
        return digest.hexdigest()

    # ------------------------------------------------------------ a zip
    def zip(self, path: Path, prefix: str, student: str | None, stamp: datetime | None, depth: int) -> None:
        """Every member of a zip; `student` None means the export itself (members credited by their top name)."""
        where = prefix[:-2] if prefix else path.name
        try:
            entries = _declared_entries(path)
            if entries > self.limits.entries:
                raise _TooBig(f"archive holds {entries:,} entries, over the limit of {self.limits.entries:,}")
            archive = zipfile.ZipFile(path)
        except (_TooBig, *UNREADABLE) as err:
            if student is None:
                raise IntakeError(f"{path}: not a readable zip ({err}); export the submissions again") from err
            return self.refuse(where, f"archive refused: {_shown(str(err))[:120]}", student)
        with archive:
            infos = sorted(archive.infolist(), key=_member_name)
            layout = self._nbgrader_folders([_member_name(i) for i in infos]) if student is None else set()
            stamps = self._zip_stamps(archive, infos, layout) if student is None else {}
            for info in infos:
                self._member(archive, info, prefix, student, stamp, depth, layout, stamps)

    def _member(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, prefix: str, student: str | None,
                stamp: datetime | None, depth: int, layout: set[str], stamps: dict[str, datetime]) -> None:
        """Check one member from the central directory, then hand it to take()."""
        name = _member_name(info)
        source = prefix + name
        unsafe = _unsafe(name)
        if unsafe:
            return self.refuse(source, unsafe, student)
        if info.is_dir():
            return None
        top = name.split("/", 1)[0]
        if student is None and _is_metadata(name):
            return self.refuse(source, "ignored: operating-system or editor metadata")
        if student is None:
            owner, problem = self._owner(top, top in layout)
            if owner is None:
                return self.refuse(source, problem)
            stamp = stamps.get(top) or _stamp(top)
            if top in layout and name == f"{top}/{self.assignment}/timestamp.txt":
                return None
        else:
            owner = student
        mode = info.external_attr >> 16
        if info.create_system == 3 and stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            kind = "symbolic link" if stat.S_ISLNK(mode) else "special file"
            return self.refuse(source, f"{kind} (never followed)", owner)
        if info.flag_bits & 0x1:
            return self.refuse(source, "encrypted entry", owner)
        if info.file_size > self.limits.ratio_from and \
                info.file_size > self.limits.ratio * max(info.compress_size, 1):
            ratio = info.file_size / max(info.compress_size, 1)
            return self.refuse(source, f"compression ratio {ratio:,.0f}:1 over the limit of "
                                       f"{self.limits.ratio}:1 (a zip bomb?)", owner)
        self.take(source, name, owner, stamp, info.file_size, lambda: archive.open(info), depth)
        return None

    def _owner(self, top: str, nbgrader_layout: bool) -> tuple[str | None, str]:
        """(student id of a top-level name or None, the reason when None)."""
        if nbgrader_layout:
            sid = _normal(top)
            problem = _id_problem(sid)
            return (None, problem) if problem else (sid, "")
        sid = student_id(top)
        return (sid, "") if sid else (None, f"no student id in the name: {_id_problem(_head(top))}")

    def _nbgrader_folders(self, names: list[str]) -> set[str]:
        """Top-level folders laid out as nbgrader's <student>/<assignment>/..."""
        return {n.split("/", 2)[0] for n in names if n.count("/") >= 2 and n.split("/")[1] == self.assignment}

    def _zip_stamps(self, archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], layout: set[str]
                    ) -> dict[str, datetime]:
        """nbgrader timestamp.txt files of the export, by top-level folder."""
        out = {}
        for info in infos:
            top = _member_name(info).split("/", 1)[0]
            if top in layout and _member_name(info) == f"{top}/{self.assignment}/timestamp.txt" \
                    and info.file_size <= 1024:
                try:
                    with archive.open(info) as f:
                        out[top] = _parse_stamp(f.read(1024))
                except (*UNREADABLE, TypeError):
                    continue
        return {k: v for k, v in out.items() if v}

    # ------------------------------------------------------------ a folder
    def folder(self, root: Path) -> None:
        """Every file below a folder export; symlinks and special files refused, never followed."""
        for top in sorted(os.scandir(root), key=lambda e: e.name):
            if _is_metadata(top.name):
                self.refuse(top.name, "ignored: operating-system or editor metadata")
                continue
            layout = top.is_dir(follow_symlinks=False) and (Path(top.path) / self.assignment).is_dir() \
                and not (Path(top.path) / self.assignment).is_symlink()
            owner, problem = self._owner(top.name, layout)
            stamp = _stamp(top.name)
            if layout:
                stamp = _parse_stamp(_read_small(Path(top.path) / self.assignment / "timestamp.txt")) or stamp
            if owner is None:
                self.refuse(top.name, problem)
                continue
            self._walk(top, top.name, owner, stamp, layout, seen=[0])

    def _walk(self, entry: os.DirEntry, source: str, owner: str, stamp: datetime | None, layout: bool,
              seen: list[int]) -> None:
        """One entry of a folder export, recursively, without following links."""
        seen[0] += 1
        if seen[0] > self.limits.entries:
            if seen[0] == self.limits.entries + 1:
                self.refuse(source, f"more than {self.limits.entries:,} files in one student's folder; "
                                    "the rest is skipped", owner)
            return None
        if entry.is_symlink():
            return self.refuse(source, "symbolic link (never followed)", owner)
        if entry.is_dir(follow_symlinks=False):
            for child in sorted(os.scandir(entry.path), key=lambda e: e.name):
                if layout and child.name == "timestamp.txt" and source.endswith("/" + self.assignment):
                    continue
                self._walk(child, f"{source}/{child.name}", owner, stamp, layout, seen)
            return None
        if not entry.is_file(follow_symlinks=False):
            return self.refuse(source, "special file (not a regular file)", owner)
        size = entry.stat(follow_symlinks=False).st_size
        self.take(source, source, owner, stamp, size, lambda: _open_nofollow(entry.path), depth=0)
        return None

    # ------------------------------------------------------------ duplicates
    def settle(self) -> Intake:
        """One notebook per student: the newest by LMS timestamp, identical copies once, else refused."""
        intake = Intake(refused=list(self.refused))
        by_student: dict[str, list[_Candidate]] = {}
        for c in self.found:
            by_student.setdefault(c.student, []).append(c)
        for student in sorted(by_student):
            group = sorted(by_student[student], key=lambda c: c.source)
            keep, why = _choose(group)
            for c in group:
                if c is keep:
                    intake.accepted.append(Accepted(c.student, c.source, c.path, c.timestamp, c.sha256))
                else:
                    intake.refused.append(Refused(c.source, why if keep is None else f"{why} ({keep.source})",
                                                  c.student))
        return intake


def _choose(group: list[_Candidate]) -> tuple[_Candidate | None, str]:
    """(the candidate to keep or None, the reason the others are refused)."""
    if len(group) == 1:
        return group[0], ""
    if len({c.sha256 for c in group}) == 1:
        return group[0], "same content as the file kept"
    stamped = [c for c in group if c.timestamp]
    if len(stamped) == len(group):
        newest = max(c.timestamp for c in group)
        latest = [c for c in group if c.timestamp == newest]
        if len(latest) == 1:
            return latest[0], "an older submission; the newest by LMS timestamp is kept"
    return None, (f"{len(group)} different notebooks map to student {group[0].student!r} and no LMS timestamp "
                  "tells which is the newest; keep one in the export (or rename the others) and collect again")


def _declared_entries(path: Path) -> int:
    """Entry count from the end-of-central-directory record, read before the directory itself."""
    with open(path, "rb") as f:
        record = zipfile._EndRecData(f)  # noqa: SLF001 - the stdlib's own EOCD reader (handles zip64)
    if record is None:
        raise zipfile.BadZipFile("no end-of-central-directory record")
    return record[zipfile._ECD_ENTRIES_TOTAL]  # noqa: SLF001


def _parse_stamp(raw: bytes | None) -> datetime | None:
    """An nbgrader timestamp.txt (e.g. '2024-05-01 10:00:00.000000 UTC') as an aware UTC datetime."""
    if not raw:
        return None
    from nbgrader.utils import parse_utc

    try:
        when = parse_utc(raw.decode("utf-8", "replace").strip())
    except (ValueError, OverflowError, TypeError):
        return None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def read_timestamp(folder: Path) -> datetime | None:
    """The timestamp.txt of a submission folder (as `place` writes it, or nbgrader's own), None without one."""
    return _parse_stamp(_read_small(Path(folder) / "timestamp.txt"))


def _read_small(path: Path, limit: int = 1024) -> bytes | None:
    """Up to `limit` bytes of a regular file that is not a symlink, else None."""
    try:
        with _open_nofollow(str(path)) as f:
            return f.read(limit)
    except OSError:
        return None


def _open_nofollow(path: str) -> BinaryIO:
    """Open a regular file for reading, refusing a symlink even if it appeared after the scan."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError("not a regular file")
    return os.fdopen(fd, "rb")


def collect(source: Path, assignment: str, staging: Path, limits: Limits = Limits()) -> Intake:
    """Stage one notebook per student from an LMS export (zip, folder or nbgrader layout) into `staging`."""
    source, staging = Path(source), Path(staging)
    if not source.exists():
        raise IntakeError(f"{source}: no such file or folder; pass the LMS export (a .zip or a folder)")
    staging.mkdir(parents=True, exist_ok=True)
    staging.chmod(0o755)
    run = _Collector(assignment, staging, limits)
    if source.is_dir() and not source.is_symlink():
        run.folder(source)
    elif source.suffix.lower() == ARCHIVE:
        run.zip(source, "", None, None, 0)
    else:
        sid = student_id(source.name)
        if sid is None:
            run.refuse(source.name, "no student id in the name")
        else:
            run.take(source.name, source.name, sid, _stamp(source.name), source.stat().st_size,
                     lambda: _open_nofollow(str(source)), depth=0)
    return run.settle()


def place(intake: Intake, root: Path, assignment: str) -> None:
    """Write submitted/<student>/<assignment>/<assignment>.ipynb for each accepted student, atomically."""
    submitted = Path(root) / "submitted"
    work = submitted / ".intake"
    work.mkdir(parents=True, exist_ok=True)
    for a in intake.accepted:
        problem = _id_problem(a.student)
        if problem:
            raise IntakeError(f"refusing to place {a.source!r}: {problem}")
        target = submitted / a.student / assignment
        if (submitted / a.student).is_symlink() or target.is_symlink():
            raise IntakeError(f"{target} is a symbolic link; remove it and collect again")
        new = Path(tempfile.mkdtemp(dir=work))
        new.chmod(0o755)
        shutil.copyfile(a.notebook, new / f"{assignment}.ipynb")
        (new / f"{assignment}.ipynb").chmod(0o644)
        if a.timestamp:
            (new / "timestamp.txt").write_text(a.timestamp.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
            (new / "timestamp.txt").chmod(0o644)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.parent.chmod(0o755)
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(dir=work)) / "old"
            os.rename(target, old)
        os.rename(new, target)
        if old is not None:
            shutil.rmtree(old.parent)
    shutil.rmtree(work, ignore_errors=True)


ROW_HEADER = ("source", "student", "status", "reason", "timestamp", "sha256")


def _rows(intake: Intake) -> list[tuple[str, ...]]:
    """One row per file: accepted ones first (by student), then refused ones in the order found."""
    rows = [(a.source, a.student, "accepted", "", a.timestamp.isoformat() if a.timestamp else "", a.sha256)
            for a in intake.accepted]
    rows += [(r.source, r.student or "", "refused", r.reason, "", "") for r in intake.refused]
    return rows


def write_mapping(intake: Intake, path: Path) -> None:
    """The file -> student table as CSV (kept with the grades)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(ROW_HEADER)
    writer.writerows(_rows(intake))
    atomic_write(path, buf.getvalue())


def format_mapping(intake: Intake) -> str:
    """The file -> student table for a terminal (control characters in names escaped)."""
    rows = [(_shown(s), _shown(st) or "-", "ok" if status == "accepted" else reason)
            for s, st, status, reason, *_ in _rows(intake)]
    header = ("file", "student", "taken or why not")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    summary = f"{len(intake.accepted)} students accepted, {len(intake.refused)} files refused"
    return "\n".join([line(header), "| " + " | ".join("-" * w for w in widths) + " |", *map(line, rows), "",
                      summary])


def cmd_collect(args) -> int:
    """`course collect ASSIGNMENT EXPORT [--dry-run]`: print and keep the mapping, then place the notebooks."""
    from ..layout import course_root

    root = course_root()
    if not (root / "assignments" / args.assignment).is_dir():
        raise SystemExit(f"course collect: {args.assignment} is not released; run `course release {args.assignment}`")
    (root / "grading").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".collect-", dir=root / "grading") as tmp:
        try:
            intake = collect(Path(args.export), args.assignment, Path(tmp))
        except IntakeError as err:
            raise SystemExit(f"course collect: {err}") from err
        print(format_mapping(intake))
        csv_path = root / "grading" / f"{args.assignment}_intake.csv"
        write_mapping(intake, csv_path)
        print(f"mapping written to {csv_path}")
        if args.dry_run:
            print("dry run: nothing placed in submitted/")
        else:
            place(intake, root, args.assignment)
            print(f"placed {len(intake.accepted)} notebooks in {root / 'submitted'}/<student>/{args.assignment}/")
    return 0


def add_command(subparsers) -> None:
    """Register `course collect`."""
    p = subparsers.add_parser("collect", help="LMS export -> submitted/<student>/<assignment>/, with a "
                                              "file -> student table (grading/<assignment>_intake.csv)")
    p.add_argument("assignment", help="assignment name, e.g. a01_autoencoders")
    p.add_argument("export", help="the LMS export: a .zip, a folder, or nbgrader's <student>/<assignment>/ layout")
    p.add_argument("--dry-run", action="store_true", help="print and write the table, place nothing")
    p.set_defaults(func=cmd_collect)
