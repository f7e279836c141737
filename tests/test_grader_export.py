"""`course export` at three stages of a term, on a gradebook built with nbgrader's API (no kernels)."""
import argparse
import csv
import json
import re
import shlex
from pathlib import Path

import pytest

from tests import gradebooks as gb

from course_utils.grader import export  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")  # nbgrader's add_submission
README = Path(__file__).resolve().parent.parent / "README.md"
# name -> [(grade cell, points, graded by hand)]
COURSE = {"a01_autoencoders": [("test_sizes", 4.0, False), ("test_unpool", 8.0, False), ("derivation", 4.0, True)],
          "a02_vae": [("test_elbo", 6.0, False), ("test_kl", 4.0, False)],
          "a03_vq_vae": [("test_codes", 10.0, False)]}


def readme_blocks() -> dict[str, list[str]]:
    """The fenced blocks (by language) of the README's section '5. Export and final grades'."""
    text = README.read_text().split("### 5. Export and final grades", 1)[1].split("\n### ", 1)[0]
    blocks: dict[str, list[str]] = {}
    for lang, body in re.findall(r"```(\w+)\n(.*?)```", text, re.S):
        blocks.setdefault(lang, []).append(body)
    return blocks


def course_export(argv: list[str]) -> int:
    """Run `course export ARGS` as the CLI does: the subcommand's parser, then run(args)."""
    parser = argparse.ArgumentParser(prog="course")
    export.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["export", *argv])
    return args.func(args)


@pytest.fixture(scope="module")
def empty_gradebook(tmp_path_factory) -> Path:
    """A new gradebook file, made once for the module."""
    return gb.new_gradebook(tmp_path_factory.mktemp("gradebook") / "gradebook.db")


@pytest.fixture()
def course(tmp_path, monkeypatch, empty_gradebook):
    """A course with every assignment's release folder and an empty gradebook (nothing released in it)."""
    gb.make_course(tmp_path, empty_gradebook, list(COURSE))
    monkeypatch.setenv("COURSE_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def release(root: Path, name: str) -> None:
    """`course release NAME` as the gradebook sees it."""
    gb.release(root, name, COURSE[name])


def autograde(root: Path, name: str, student: str, scores: dict[str, float], status: str = "ok") -> None:
    """What `course grade` leaves: auto scores (manual cells pending) and the student's results record."""
    gb.autograde(root, name, student, scores)
    record = root / "grading" / "results" / name / f"{student}.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"student": student, "assignment": name, "status": status, "graded_at": "2026-12-01",
                                  "submission_sha256": "0" * 64, "cells": [],
                                  "notes": ["kernel restarted once"] if status == "ok*" else [], "cases": []}))


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_before_anything_is_released_it_says_what_to_do(course, capsys):
    assert course_export([]) == 2
    (course / gb.GRADEBOOK).unlink()
    assert course_export([]) == 2
    assert "course release NAME" in capsys.readouterr().out
    assert not (course / "grading" / "final_grades.csv").exists()


def test_stage_1_one_graded_one_released_without_submissions_rest_unreleased(course, capsys):
    release(course, "a01_autoencoders")
    release(course, "a02_vae")
    autograde(course, "a01_autoencoders", "alice", {"test_sizes": 4, "test_unpool": 8})
    autograde(course, "a01_autoencoders", "bob", {"test_sizes": 4, "test_unpool": 0}, status="ok*")
    assert course_export([]) == 0
    out = capsys.readouterr().out
    a01 = read_csv(course / "grading" / "a01_autoencoders_grades.csv")
    assert [(r["student"], r["test_sizes"], r["test_unpool"], r["derivation"], r["total"], r["max"]) for r in a01] == [
        ("alice", "4.0", "8.0", "", "12.0", "16.0"), ("bob", "4.0", "0.0", "", "4.0", "16.0")]
    assert a01[1]["status"] == "ok* (manual grading pending)" and a01[1]["reason"] == "kernel restarted once"
    header = "student,test_elbo,test_kl,total,max,status,reason\n"
    assert (course / "grading" / "a02_vae_grades.csv").read_text() == header
    assert not (course / "grading" / "a03_vq_vae_grades.csv").exists()
    final = read_csv(course / "grading" / "final_grades.csv")
    assert list(final[0]) == ["student", "a01_autoencoders", "points_sum", "grade"]
    assert [(r["student"], r["points_sum"], r["grade"]) for r in final] == [("alice", "12.0", "4"), ("bob", "4.0", "1")]
    assert "not released yet: a03_vq_vae" in out and "derivation(m)/4" in out
    assert course_export(["a03_vq_vae"]) == 2
    assert "a03_vq_vae is not released yet" in capsys.readouterr().out


def test_stage_2_manual_grades_after_autograding_update_final_grades(course):
    release(course, "a01_autoencoders")
    release(course, "a02_vae")
    autograde(course, "a01_autoencoders", "alice", {"test_sizes": 4, "test_unpool": 8})
    assert course_export([]) == 0
    assert read_csv(course / "grading" / "final_grades.csv")[0]["points_sum"] == "12.0"
    gb.manual_grade(course, "a01_autoencoders", "alice", "derivation", 3)
    autograde(course, "a02_vae", "bob", {"test_elbo": 6, "test_kl": 4})
    assert course_export(["a01_autoencoders"]) == 0
    a01 = read_csv(course / "grading" / "a01_autoencoders_grades.csv")
    assert (a01[0]["derivation"], a01[0]["total"], a01[0]["status"]) == ("3.0", "15.0", "ok")
    final = {r["student"]: r for r in read_csv(course / "grading" / "final_grades.csv")}
    assert list(final["alice"]) == ["student", "a01_autoencoders", "a02_vae", "points_sum", "grade"]
    assert (final["alice"]["a01_autoencoders"], final["alice"]["a02_vae"], final["alice"]["points_sum"]) == (
        "15.0", "0.0", "15.0")
    assert (final["bob"]["a01_autoencoders"], final["bob"]["points_sum"]) == ("0.0", "10.0")
    assert read_csv(course / "grading" / "a02_vae_grades.csv") == []   # only the assignment asked for


def test_stage_3_every_readme_example_works_as_shown(course, capsys):
    for name in COURSE:
        release(course, name)
    autograde(course, "a01_autoencoders", "alice", {"test_sizes": 4, "test_unpool": 8})
    gb.manual_grade(course, "a01_autoencoders", "alice", "derivation", 4)
    autograde(course, "a02_vae", "alice", {"test_elbo": 6, "test_kl": 4})
    autograde(course, "a03_vq_vae", "alice", {"test_codes": 10})
    autograde(course, "a01_autoencoders", "bob", {"test_sizes": 4, "test_unpool": 0})
    autograde(course, "a02_vae", "bob", {"test_elbo": 3, "test_kl": 0})
    autograde(course, "a03_vq_vae", "bob", {"test_codes": 5})
    blocks = readme_blocks()
    (course / "leaderboard.csv").write_text(blocks["csv"][0])
    (course / "my_scheme.json").write_text(blocks["json"][0])
    commands = [line.split("#")[0] for line in blocks["bash"][0].splitlines() if line.startswith("course export")]
    assert len(commands) == 4
    finals = []
    for line in commands:
        assert course_export(shlex.split(line)[2:]) == 0, line
        finals.append({r["student"]: r for r in read_csv(course / "grading" / "final_grades.csv")})
    out = capsys.readouterr().out
    assert "grade 5: # 1" in out and "not released" not in out
    plain, one, board, scheme = finals
    assert plain == one
    assert (plain["alice"]["points_sum"], plain["alice"]["grade"], plain["bob"]["points_sum"]) == ("36.0", "5", "12.0")
    # leaderboard: alice rank 3 -> 7, bob 27 above the baseline -> 3, carol below it -> 1 (and no homework)
    assert {s: r["leaderboard"] for s, r in board.items()} == {"alice": "7.0", "bob": "3.0", "carol": "1.0"}
    assert (board["bob"]["points_sum"], board["carol"]["a01_autoencoders"], board["carol"]["grade"]) == (
        "15.0", "0.0", "1")
    # my_scheme.json: a01 worth 2 (alice 16/16 -> 2, bob 4/16 -> 0.5), a02 worth 5.5, a03 its 10 points
    assert (scheme["alice"]["a01_autoencoders"], scheme["bob"]["a01_autoencoders"], scheme["bob"]["a02_vae"]) == (
        "2.0", "0.5", "1.65")
    assert (scheme["alice"]["points_sum"], scheme["bob"]["points_sum"]) == ("17.5", "7.15")


def test_bad_options_write_nothing(course, capsys):
    release(course, "a01_autoencoders")
    autograde(course, "a01_autoencoders", "alice", {"test_sizes": 4, "test_unpool": 8})
    (course / "bad.json").write_text('{"grade_tresholds": [0.5]}')
    assert course_export(["--scheme", "bad.json"]) == 2
    assert course_export(["--leaderboard", "missing.csv"]) == 2
    out = capsys.readouterr().out
    assert "unknown keys ['grade_tresholds']" in out and "no such file missing.csv" in out
    assert not (course / "grading" / "final_grades.csv").exists()
