"""Intake of an LMS export: every hostile row of issue 11 next to normal submissions, judged file by file."""
import os
import stat
import struct
import unicodedata
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import pytest

from course_utils.grader.intake import Limits, collect, format_mapping, place, student_id, write_mapping

A = "a01_autoencoders"
GIB = 1 << 30


def notebook(text: str, version: int = 4) -> bytes:
    """A small valid notebook whose one cell names its author (so contents tell students apart)."""
    if version == 3:
        return b'{"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": []}'
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"work of {text}")]
    return nbformat.writes(nb).encode()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A deflated zip in memory."""
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def bomb(path: Path, size: int = GIB) -> None:
    """A small zip holding one entry of `size` zero bytes, written in 1 MiB chunks (never in memory)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z, z.open("bomb.ipynb", "w") as f:
        chunk = bytes(1 << 20)
        for _ in range(size >> 20):
            f.write(chunk)


def liar(data: bytes, claimed: int) -> bytes:
    """A one-entry zip whose local and central headers claim `claimed` uncompressed bytes."""
    raw = bytearray(zip_bytes({"liar.ipynb": data}))
    local = raw.find(b"PK\x03\x04")
    central = raw.find(b"PK\x01\x02")
    struct.pack_into("<I", raw, local + 22, claimed)
    struct.pack_into("<I", raw, central + 24, claimed)
    return bytes(raw)


# Normal students: name in the export -> content. Each must come out exactly as if it were alone.
NORMAL = {
    "alice_a01.ipynb": notebook("alice"),
    "bob_a01_autoencoders.ipynb": notebook("bob"),
    "carolsmith_12345_67890_a01_autoencoders.ipynb": notebook("carol"),          # Canvas
    "davejones_LATE_222_333_a01.ipynb": notebook("dave"),                        # Canvas, late
    "Erin Ray_555_assignsubmission_file_a01.ipynb": notebook("erin"),            # Moodle, flat
    "Frank Li_556_assignsubmission_file_/a01_autoencoders.ipynb": notebook("frank"),  # Moodle, in folders
    "Anna Maria_a01.ipynb": notebook("anna"),
    unicodedata.normalize("NFD", "Ümit Öz_a01.ipynb"): notebook("ümit"),        # macOS writes NFD
    "vzero_a01.ipynb": notebook("vzero"),
    "gina_a01.zip": zip_bytes({"a01_autoencoders.ipynb": notebook("gina"), "__MACOSX/._x": b"\0"}),
    "tess_2024-05-01-10-00-00_a01.ipynb": notebook("tess, first try"),
    "tess_2024-05-02-09-30-00_a01.ipynb": notebook("tess, final"),
    "setu_a01.ipynb": notebook("setu"),                                        # stored with mode 0o6777
    "nest_a01.zip": zip_bytes({"../evil_a01.ipynb": notebook("evil"), "a01.ipynb": notebook("nest")}),
}
EXPECTED = {"alice": "alice", "bob": "bob", "carolsmith": "carol", "davejones": "dave", "Erin Ray": "erin",
            "Frank Li": "frank", "Anna Maria": "anna", "Ümit Öz": "ümit", "vzero": "vzero", "gina": "gina",
            "tess": "tess, final", "setu": "setu", "nest": "nest"}
HOSTILE = {
    "mallory_a01.zip": zip_bytes({"victim_a01.ipynb": notebook("mallory as victim"),
                                  "vzero_late.ipynb": notebook("mallory as vzero")}),
    "../../x_a01.ipynb": notebook("climber"),
    "/abs/x.ipynb": notebook("absolute"),
    "win\\x_a01.ipynb": notebook("backslash"),
    "C:/x_a01.ipynb": notebook("drive"),
    "dup_a01.ipynb": notebook("dup one"),
    "dup_second_try.ipynb": notebook("dup two"),
    "liar_a01.zip": liar(notebook("liar") + b" " * (4 << 20), claimed=1000),
    "notes_a01.pdf": b"%PDF-1.4 not a notebook",
    "junk_a01.ipynb": b"hello, not json",
    "old_a01.ipynb": notebook("old", version=3),
    "evil\x1b[2J_a01.ipynb": notebook("terminal escape"),
    "_a01.ipynb": notebook("no name"),
}


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """The one export: a zip (deep in a folder, to catch '../' writes) and the same files as a folder."""
    base = tmp_path_factory.mktemp("intake")
    deep = base / "a" / "b"
    deep.mkdir(parents=True)
    bomb(deep / "bomb_a01.zip")
    assert (deep / "bomb_a01.zip").stat().st_size < 2 << 20
    zpath = deep / "export.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_STORED) as z:
        for name, data in {**NORMAL, **HOSTILE}.items():
            info = zipfile.ZipInfo(name, (2024, 5, 3, 12, 0, 0))
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | (0o6777 if name.startswith("setu") else 0o644)) << 16
            z.writestr(info, data)
        link = zipfile.ZipInfo("symz_a01.ipynb")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(link, "../../solutions/a01_autoencoders/a01_autoencoders.ipynb")
        z.write(deep / "bomb_a01.zip", "bomb_a01.zip")
    folder = deep / "export_dir"
    for name, data in NORMAL.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    for name in ("mallory_a01.zip", "dup_a01.ipynb", "dup_second_try.ipynb", "notes_a01.pdf", "junk_a01.ipynb"):
        (folder / name).write_bytes(HOSTILE[name])
    (folder / "setu_a01.ipynb").chmod(0o6777 & ~0o6000 | 0o644)     # setuid cannot be set by tests as a user
    secret = base / "solution.ipynb"
    secret.write_bytes(notebook("THE SOLUTION"))
    (folder / "symf_a01.ipynb").symlink_to(secret)
    (folder / "symd_a01").symlink_to(base)
    return base, zpath, folder


def tree(root: Path) -> set[str]:
    """Every path below root (files, folders, links)."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def run(source: Path, staging: Path, limits: Limits = Limits()):
    """collect() plus the lookups the assertions need."""
    intake = collect(source, A, staging, limits)
    accepted = {a.student: a for a in intake.accepted}
    content = {s: nbformat.reads(a.notebook.read_text(), as_version=4).cells[0].source.removeprefix("work of ")
               for s, a in accepted.items()}
    refused = {r.source: r for r in intake.refused}
    return intake, accepted, content, refused


@pytest.mark.parametrize("name, sid", [
    ("alice.ipynb", "alice"), ("alice_a01.ipynb", "alice"), ("bob-smith_attempt2.ipynb", "bob-smith"),
    ("Anna Maria_a01.ipynb", "Anna Maria"), ("Ümit Öz_a01.ipynb", "Ümit Öz"),
    (unicodedata.normalize("NFD", "Ümit Öz_a01.ipynb"), "Ümit Öz"),
    ("lastfirst_12345_67890_name.ipynb", "lastfirst"), ("lastfirst_LATE_12345_67890_name.ipynb", "lastfirst"),
    ("Full Name_12345_assignsubmission_file_name.ipynb", "Full Name"),
    ("Full Name_12345_assignsubmission_file_", "Full Name"), (" padded _a01.ipynb", "padded"),
    ("_a01.ipynb", None), (".hidden_a01.ipynb", None), ("a/b_a01.ipynb", None), ("a\\b_a01.ipynb", None),
    ("C:x_a01.ipynb", None), ("tab\there_a01.ipynb", None), ("esc\x1b_a01.ipynb", None), ("x" * 101 + "_a", None),
])
def test_student_id_rule(name, sid):
    assert student_id(name) == sid


def test_zip_export_every_row(export, tmp_path):
    base, zpath, _ = export
    before = tree(base)
    intake, accepted, content, refused = run(zpath, tmp_path / "staging")
    assert tree(base) == before, "collect wrote outside its staging folder"
    assert {s: content[s] for s in accepted} == EXPECTED
    assert accepted["tess"].timestamp == datetime(2024, 5, 2, 9, 30, tzinfo=timezone.utc)
    assert accepted["alice"].timestamp is None, "a zip entry's date is not an LMS timestamp"
    # mallory's upload credits mallory or nobody; victim and vzero keep their own (or no) submission
    assert "victim" not in accepted and "mallory" not in accepted
    assert refused["mallory_a01.zip!/victim_a01.ipynb"].student == "mallory"
    assert "no LMS timestamp" in refused["mallory_a01.zip!/vzero_late.ipynb"].reason
    for name in ("../../x_a01.ipynb", "/abs/x.ipynb", "win\\x_a01.ipynb", "C:/x_a01.ipynb",
                 "nest_a01.zip!/../evil_a01.ipynb"):
        assert refused[name].reason.startswith("unsafe name"), name
    assert "no LMS timestamp" in refused["dup_a01.ipynb"].reason and "dup" not in accepted
    assert "older submission" in refused["tess_2024-05-01-10-00-00_a01.ipynb"].reason
    assert "ratio" in refused["bomb_a01.zip!/bomb.ipynb"].reason
    assert "unreadable" in refused["liar_a01.zip!/liar.ipynb"].reason
    assert "not a notebook (.pdf)" in refused["notes_a01.pdf"].reason
    assert "not JSON" in refused["junk_a01.ipynb"].reason
    assert "nbformat 4" in refused["old_a01.ipynb"].reason
    assert "symbolic link" in refused["symz_a01.ipynb"].reason
    assert "control character" in refused["evil\x1b[2J_a01.ipynb"].reason
    assert "empty student id" in refused["_a01.ipynb"].reason
    assert "metadata" in refused["gina_a01.zip!/__MACOSX/._x"].reason
    assert all(r.reason for r in intake.refused)
    shown = format_mapping(intake)
    assert "\x1b" not in shown and "\\x1b[2J" in shown and "13 students accepted" in shown
    for p in (tmp_path / "staging").rglob("*"):
        assert stat.S_IMODE(p.lstat().st_mode) == (0o755 if p.is_dir() else 0o644), p
    assert sum(p.stat().st_size for p in (tmp_path / "staging").rglob("*")) < 1 << 20


def test_each_normal_student_as_if_alone(export, tmp_path):
    _, zpath, _ = export
    _, together, _, _ = run(zpath, tmp_path / "all")
    for i, (name, data) in enumerate(NORMAL.items()):
        alone_zip = tmp_path / f"alone{i}.zip"
        with zipfile.ZipFile(alone_zip, "w") as z:
            z.writestr(name, data)
            if name.startswith("tess_2024-05-02"):
                z.writestr("tess_2024-05-01-10-00-00_a01.ipynb", NORMAL["tess_2024-05-01-10-00-00_a01.ipynb"])
        _, alone, _, _ = run(alone_zip, tmp_path / f"s{i}")
        if name.startswith("tess_2024-05-01"):
            continue
        (sid, a), = alone.items()
        b = together[sid]
        assert (a.sha256, a.timestamp, a.source) == (b.sha256, b.timestamp, b.source), name


def test_folder_export_never_follows_links(export, tmp_path):
    base, _, folder = export
    before = tree(base)
    intake, accepted, content, refused = run(folder, tmp_path / "staging")
    assert tree(base) == before
    assert {s: content[s] for s in accepted} == {k: v for k, v in EXPECTED.items() if k != "tess"} | \
        {"tess": "tess, final"}
    assert "symbolic link" in refused["symf_a01.ipynb"].reason and "symf" not in accepted
    assert "symbolic link" in refused["symd_a01"].reason
    assert "THE SOLUTION" not in format_mapping(intake)
    assert not any("THE SOLUTION" in p.read_text() for p in (tmp_path / "staging").glob("*.ipynb"))


def test_nbgrader_layout_with_timestamps(tmp_path):
    src = tmp_path / "nb"
    for student, when in (("bob_smith", "2024-05-01 10:00:00.000000 UTC"), ("Zoë", None)):
        (src / student / A).mkdir(parents=True)
        (src / student / A / f"{A}.ipynb").write_bytes(notebook(student))
        if when:
            (src / student / A / "timestamp.txt").write_text(when)
    intake, accepted, content, refused = run(src, tmp_path / "staging")
    assert content == {"bob_smith": "bob_smith", "Zoë": "Zoë"}, "nbgrader's folder name is the id whole"
    assert accepted["bob_smith"].timestamp == datetime(2024, 5, 1, 10, tzinfo=timezone.utc)
    assert not intake.refused


def test_limits_while_streaming_and_counting(tmp_path):
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as z:
        z.writestr("crowd_a01.zip", zip_bytes({f"f{i}.txt": b"x" for i in range(30)}))
        for s in ("ann", "ben", "cat"):
            z.writestr(f"{s}_a01.ipynb", notebook(s) + b" " * 4000)
    _, accepted, _, refused = run(many, tmp_path / "s1", Limits(entries=20))
    assert "over the limit of 20" in refused["crowd_a01.zip"].reason and len(accepted) == 3
    nb_size = len(notebook("ann")) + 4000
    _, accepted, _, refused = run(many, tmp_path / "s2", Limits(total_bytes=2 * nb_size + 100))
    assert sorted(accepted) == ["ann", "ben"] and "more than" in refused["cat_a01.ipynb"].reason
    assert "over the" in run(many, tmp_path / "s3", Limits(notebook_bytes=1000))[3]["ann_a01.ipynb"].reason


def test_place_and_mapping(export, tmp_path):
    _, zpath, _ = export
    root = tmp_path / "course"
    other = root / "submitted" / "zed" / A / f"{A}.ipynb"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"zed's earlier work")
    stale = root / "submitted" / "alice" / A / "stale.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("from an earlier collect")
    intake = collect(zpath, A, tmp_path / "staging")
    place(intake, root, A)
    place(intake, root, A)
    for a in intake.accepted:
        placed = root / "submitted" / a.student / A / f"{A}.ipynb"
        assert placed.read_bytes() == a.notebook.read_bytes()
        assert stat.S_IMODE(placed.stat().st_mode) == 0o644
        assert stat.S_IMODE(placed.parent.stat().st_mode) == 0o755
    assert (root / "submitted" / "tess" / A / "timestamp.txt").read_text().startswith("2024-05-02 09:30:00")
    assert other.read_bytes() == b"zed's earlier work" and not stale.exists()
    assert sorted(os.listdir(root / "submitted")) == sorted(["zed", *EXPECTED]), "no other folder appears"
    write_mapping(intake, tmp_path / "map.csv")
    text = (tmp_path / "map.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == "source,student,status,reason,timestamp,sha256"
    assert len(text.splitlines()) == 1 + len(intake.accepted) + len(intake.refused)
    assert "Ümit Öz" in text


def test_course_collect_command(export, tmp_path, monkeypatch, capsys):
    from course_utils.cli import main

    _, zpath, _ = export
    root = tmp_path / "course"
    (root / "lectures").mkdir(parents=True)
    (root / "assignments" / A).mkdir(parents=True)
    (root / "nbgrader_config.py").write_text("c = get_config()\n")
    monkeypatch.setenv("COURSE_ROOT", str(root))
    assert main(["collect", A, str(zpath), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "| Anna Maria " in out and "dry run" in out and not (root / "submitted" / "alice").exists()
    assert (root / "grading" / f"{A}_intake.csv").is_file()
    assert main(["collect", A, str(zpath)]) == 0
    assert (root / "submitted" / "Ümit Öz" / A / f"{A}.ipynb").is_file()
    assert [p.name for p in (root / "grading").iterdir()] == [f"{A}_intake.csv"], "staging is cleaned up"
    with pytest.raises(SystemExit, match="not released"):
        main(["collect", "a99_nothing", str(zpath)])
