"""results.report's two-sided bounds and results.say (Markdown from computed values)."""

import pytest

from course_utils import data, results
from course_utils.results import Result, ResultError, report, say

ELBO = dict(data="1,000 test digits", at_least=108.5, at_most=116, spread=(112.07, 112.5), seeds=5)


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setenv("COURSE_MODE", "quick")
    monkeypatch.setenv(results.LECTURE_ENV, "02_vae")
    monkeypatch.setattr(data, "_used", {"embedded"})


def test_a_two_sided_bound_prints_both_sides_and_both_margins(capsys):
    assert report("-ELBO (nats)", 112.4, **ELBO) == 112.4
    line = Result.parse(capsys.readouterr().out.strip())
    assert line.bound == ">= 108.5, <= 116 (5 seeds: 112.1-112.5, margin 3.57 below, 3.5 above)"
    report("accuracy", 0.95, data="d", at_least=0.92, spread=(0.94, 0.96), seeds=5)   # one-sided as before
    assert Result.parse(capsys.readouterr().out.strip()).bound == ">= 0.92 (5 seeds: 0.94-0.96, margin 0.02)"


def test_a_two_sided_bound_fails_on_either_side_and_says_by_how_much(capsys):
    with pytest.raises(ResultError, match=r"96.5 misses the bound >= 108.5, <= 116 .* by 12"):
        report("-ELBO (nats)", 96.5, **ELBO)           # a KL term that is too small: the number moves the "good" way
    with pytest.raises(ResultError, match=r"by 4\b"):
        report("-ELBO (nats)", 120, **ELBO)
    with pytest.raises(ResultError, match="non-finite"):
        report("-ELBO (nats)", float("nan"), **ELBO)
    assert "RESULT" not in capsys.readouterr().out


def test_two_sided_bounds_must_contain_the_spread_and_be_ordered():
    with pytest.raises(ValueError, match="tighter than the measured seed spread"):
        report("x", 112, data="d", at_least=112.2, at_most=116, spread=(112.07, 112.5), seeds=5)
    with pytest.raises(ValueError, match="tighter than the measured seed spread"):
        report("x", 112, data="d", at_least=108, at_most=112.4, spread=(112.07, 112.5), seeds=5)
    with pytest.raises(ValueError, match="must be below"):
        report("x", 112, data="d", at_least=116, at_most=108, spread=(112.07, 112.5), seeds=5)
    with pytest.raises(ValueError, match="exactly one of at_most.*or both"):
        report("x", 112, data="d", spread=(112.07, 112.5), seeds=5)


def test_a_two_sided_bound_outside_calibration_is_reported_not_enforced(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_MODE", "full")
    report("-ELBO (nats)", 96.5, **ELBO)
    assert "; missed, not enforced: this run is full mode" in Result.parse(capsys.readouterr().out.strip()).bound


def test_say_prints_the_text_outside_ipython(capsys):
    say("The ViT reaches {acc:.1%} on {n:,} digits.", acc=0.9651, n=1000)
    assert capsys.readouterr().out == "The ViT reaches 96.5% on 1,000 digits.\n"
    say("no fields {here}")                            # without values the text is taken as it is (an f-string)
    assert capsys.readouterr().out == "no fields {here}\n"


def test_say_displays_markdown_in_ipython(monkeypatch):
    """In a kernel the text is one display_data output with text/markdown, which Jupyter and the website render."""
    import IPython
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", shown.append)
    say("gap {d:+.1f} points", d=2.34)
    (obj,) = shown
    assert isinstance(obj, IPython.display.Markdown) and obj.data == "gap +2.3 points"
    assert obj._repr_markdown_() == "gap +2.3 points"
