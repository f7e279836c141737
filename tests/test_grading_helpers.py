"""The checks used in nbgrader test cells: exact verdicts, actionable messages, immune to patched torch."""
import pytest
import torch

from course_utils import grading as g


def test_check_close_passes_and_names_the_worst_entry():
    g.check_close("x", torch.tensor([1.0, 2.0]), [1.0, 2.0 + 1e-7])
    with pytest.raises(g.GradingError, match=r"x: 1 of 3 values differ; worst at index \(2,\): got 3.5, expected 3"):
        g.check_close("x", torch.tensor([1.0, 2.0, 3.5]), torch.tensor([1.0, 2.0, 3.0]))


def test_check_close_reports_shape_and_nan():
    with pytest.raises(g.GradingError, match=r"expected shape \(2, 2\), got \(4,\)"):
        g.check_close("w", torch.zeros(4), torch.zeros(2, 2))
    with pytest.raises(g.GradingError, match="got nan"):
        g.check_close("w", torch.tensor([float("nan")]), torch.tensor([1.0]))
    g.check_close("w", torch.tensor([float("nan")]), torch.tensor([float("nan")]))


def test_patched_torch_cannot_fake_a_pass(monkeypatch):
    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(torch, "isclose", lambda a, b, **k: torch.ones_like(a, dtype=torch.bool))
    with pytest.raises(g.GradingError):
        g.check_close("y", torch.tensor([0.0]), torch.tensor([1.0]))


def test_shape_type_finite_true_grad():
    g.check_shape("z", torch.zeros(3, 4), (3, 4))
    with pytest.raises(g.GradingError, match=r"expected shape \(4, 3\), got \(3, 4\)"):
        g.check_shape("z", torch.zeros(3, 4), (4, 3))
    with pytest.raises(g.GradingError, match="expected a Tensor, got list"):
        g.check_type("z", [1], torch.Tensor)
    with pytest.raises(g.GradingError, match="1 of 2 values are NaN or inf"):
        g.check_finite("z", torch.tensor([1.0, float("inf")]))
    with pytest.raises(g.GradingError, match="z: be positive"):
        g.check_true("z", False, "be positive")
    leaf = torch.ones(3, requires_grad=True)
    with pytest.raises(g.GradingError, match="no gradient"):
        g.check_grad("leaf", leaf)
    (leaf * 0).sum().backward()
    with pytest.raises(g.GradingError, match="exactly zero"):
        g.check_grad("leaf", leaf)


def test_seeded_is_stable():
    a = g.seeded(7, 2, 3)
    assert a.shape == (2, 3) and torch.equal(a, g.seeded(7, 2, 3)) and not torch.equal(a, g.seeded(8, 2, 3))
