"""The final-grade scheme against every row of seed 004's grade table (fast, no gradebook)."""
import json

import pytest

from course_utils.grader import scheme as sc

# Seed 004 (slides "Értékelés"): hw01 2, hw02 5.5, hw03 8, hw09 3 points; photoz kaggle 7/5/3/1,
# the second kaggle ("happy") 11/9/7/2; "Max házi + (kaggle baseline + eps) = 28.5".
SEED_004 = {
    "homework_weights": {"hw01": 2, "hw02": 5.5, "hw03": 8, "hw09": 3},
    "leaderboards": {"photoz": {"tiers": [[10, 7], [20, 5]], "baseline": 3, "below_baseline": 1},
                     "happy": {"tiers": [[10, 11], [20, 9]], "baseline": 7, "below_baseline": 2}},
}
# githubName, hw01, hw02, hw03, hw09, happy_points, photoz_points, points_sum, grade: the seed's table verbatim.
TABLE = """
danielgrajzel 1.835 0.0 0.0 0.0 0.0 3.0 4.835 1
gichy 2.000 3.0 0.0 0.0 0.0 0.0 5.000 1
Zongi93 0.000 0.0 0.0 0.0 0.0 0.0 0.000 1
balint225 1.835 5.5 3.000 0.0 0.0 0.0 10.335 2
e-velin 2.000 0.0 0.000 0.0 9.0 0.0 11.000 2
ggalgoczi 2.000 2.0 2.165 0.0 0.0 7.0 13.165 2
CliffyH 2.000 5.5 6.000 3.0 0.0 3.0 19.500 3
ilxstatus 2.000 5.5 4.000 2.5 2.0 3.0 19.000 3
kazozoka 2.000 5.0 6.000 0.0 0.0 5.0 18.000 3
kissmate6 1.835 5.0 3.000 2.5 0.0 5.0 17.335 3
oresme 2.000 3.5 3.665 2.5 7.0 0.0 18.665 3
PentadD 2.000 5.5 3.0 2.5 7.0 3.0 23.000 4
Turcsi 1.835 5.0 6.0 0.0 7.0 3.0 22.835 4
kommancs96 1.835 5.0 8.0 3.0 0.0 5.0 22.835 4
masterdesky 1.500 5.0 6.0 0.0 7.0 1.0 20.500 4
zentaijanos 2.000 4.0 1.5 3.0 9.0 3.0 22.500 4
"""
ROWS = [line.split() for line in TABLE.strip().splitlines()]
HOMEWORK = ["hw01", "hw02", "hw03", "hw09"]
# nbgrader max points of each assignment: hw03 is scored out of 16 and scaled to its 8-point weight.
MAX_POINTS = {"hw01": 2.0, "hw02": 5.5, "hw03": 16.0, "hw09": 3.0}
# A (rank, above baseline) entry that earns each tier's points, None = not on the leaderboard.
PHOTOZ_RANK = {7.0: (4, True), 5.0: (13, True), 3.0: (27, True), 1.0: (35, False), 0.0: None}
HAPPY_RANK = {11.0: (1, True), 9.0: (20, True), 7.0: (21, True), 2.0: (None, False), 0.0: None}


@pytest.fixture(scope="module")
def seed_scheme(tmp_path_factory):
    """SEED_004 loaded through a scheme file, as `course export --scheme` does."""
    path = tmp_path_factory.mktemp("scheme") / "seed004.json"
    path.write_text(json.dumps(SEED_004))
    return sc.load_scheme(path)


@pytest.fixture(scope="module")
def graded(seed_scheme):
    """Final rows of the seed's 16 students from raw scores and leaderboard ranks."""
    scores = {r[0]: {a: float(v) * MAX_POINTS[a] / SEED_004["homework_weights"][a] for a, v in zip(HOMEWORK, r[1:5])}
              for r in ROWS}
    boards = {"photoz": {r[0]: PHOTOZ_RANK[float(r[6])] for r in ROWS if PHOTOZ_RANK[float(r[6])]},
              "happy": {r[0]: HAPPY_RANK[float(r[5])] for r in ROWS if HAPPY_RANK[float(r[5])]}}
    rows, ref = sc.final_grades(scores, MAX_POINTS, boards, seed_scheme)
    return {r.student: r for r in rows}, ref


def test_reference_is_the_seeds_28_5(graded):
    assert graded[1] == pytest.approx(28.5)


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_every_row_of_the_seed_table(graded, row):
    got = graded[0][row[0]]
    assert got.homework == pytest.approx(dict(zip(HOMEWORK, map(float, row[1:5]))), abs=1e-9)
    assert got.leaderboards == {"happy": float(row[5]), "photoz": float(row[6])}
    assert got.total == pytest.approx(float(row[7]), abs=1e-9)
    assert got.grade == int(row[8])


def test_cut_offs_are_inclusive_and_max_is_36_5(seed_scheme):
    ref = sc.reference(seed_scheme, MAX_POINTS, ["photoz", "happy"])
    assert [sc.grade(t * ref, ref, seed_scheme["grade_thresholds"]) for t in (0.35, 0.5, 0.7, 0.85)] == [2, 3, 4, 5]
    assert sc.grade(0.35 * ref - 0.001, ref, seed_scheme["grade_thresholds"]) == 1
    best = sum(SEED_004["homework_weights"].values()) + 7 + 11
    assert best == 36.5 and sc.grade(best, ref, seed_scheme["grade_thresholds"]) == 5


def test_default_scheme_without_leaderboard_uses_nbgrader_points():
    rows, ref = sc.final_grades({"alice": {"a01": 16.0}, "bob": {"a01": 5.0}}, {"a01": 16.0}, {}, sc.load_scheme())
    assert ref == 16.0
    assert [(r.student, r.homework, r.leaderboards, r.grade) for r in rows] == [
        ("alice", {"a01": 16.0}, {}, 5), ("bob", {"a01": 5.0}, {}, 1)]


def test_leaderboard_only_student_and_csv(tmp_path):
    path = tmp_path / "lb.csv"
    path.write_text("student,rank,above_baseline\nalice,3,true\ncarol,,false\ndave,25,yes\n")
    entries = sc.read_leaderboard(path)
    assert entries == {"alice": (3, True), "carol": (None, False), "dave": (25, True)}
    rows, ref = sc.final_grades({"alice": {"a01": 16.0}}, {"a01": 16.0}, {sc.DEFAULT_BOARD: entries}, sc.load_scheme())
    assert ref == 19.0
    assert {r.student: r.leaderboards[sc.DEFAULT_BOARD] for r in rows} == {"alice": 7.0, "carol": 1.0, "dave": 3.0}
    assert {r.student: r.homework["a01"] for r in rows} == {"alice": 16.0, "carol": 0.0, "dave": 0.0}


def test_bad_input_says_what_to_do(tmp_path):
    bad = tmp_path / "s.json"
    bad.write_text(json.dumps({"grade_tresholds": [0.5]}))
    with pytest.raises(ValueError, match="unknown keys.*grade_tresholds"):
        sc.load_scheme(bad)
    bad.write_text(json.dumps({"grade_thresholds": [0.5, 0.4, 0.7, 0.8]}))
    with pytest.raises(ValueError, match="4 ascending fractions"):
        sc.load_scheme(bad)
    lb = tmp_path / "lb.csv"
    lb.write_text("name,place\nalice,1\n")
    with pytest.raises(ValueError, match="needs the columns student, rank"):
        sc.read_leaderboard(lb)
    lb.write_text("student,rank\nalice,first\n")
    with pytest.raises(ValueError, match="line 2: rank 'first'"):
        sc.read_leaderboard(lb)
    with pytest.raises(ValueError, match="not in the scheme"):
        sc.final_grades({}, {}, {"kaggle": {}}, sc.load_scheme())
