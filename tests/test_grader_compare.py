"""cases.compare is type-exact (issue 17): a bool never stands for a number, dtype kinds and dtypes are the
reference's, nan and inf equal nothing; a reference holding nan is the case author's error, never the student's."""
import numpy as np
import pytest
import torch

from course_utils.grader.cases import Answer, Call, CaseError, compare, plain
from course_utils.grader.score import judge


def test_a_bool_never_stands_for_a_number():
    ones, true = plain(torch.ones(3)), plain(torch.ones(3, dtype=torch.bool))
    assert "bool" in compare(true, ones, 1e-6, 0)                              # all True for a float tensor
    assert "floating" in compare(ones, true, 0, 0)                             # and the other way round
    assert "bool" in compare(plain(torch.zeros(2) != 0), plain(torch.zeros(2)), 1e-6, 0)
    assert compare(True, 1, 0, 0) and compare(1, True, 0, 0) and compare(True, 1.0, 0, 0)
    assert compare(True, True, 0, 0) is None and compare(false := False, false, 0, 0) is None


def test_dtype_kind_and_exact_dtype():
    f64 = plain(torch.zeros(2, dtype=torch.float64))
    assert "float64" in compare(plain(torch.zeros(2)), f64, 1e-6, 0)          # exact by default
    assert compare(plain(torch.zeros(2)), f64, 1e-6, 0, dtype=False) is None  # a case may allow any float dtype
    assert "integer" in compare(plain(torch.zeros(2, dtype=torch.int64)), f64, 1, 0, dtype=False)
    assert compare(1, 1.0, 0, 0) and compare(1.0, 1, 0, 0)                   # int and float are different kinds
    assert compare(plain(torch.tensor([2.5])), 2.5, 0, 0) is None              # a 1-element tensor for a float
    assert compare(plain(torch.tensor([2])), 2.5, 1, 0)                        # not an integer one


def test_nan_and_inf_equal_nothing():
    nan = plain(torch.tensor([1.0, float("nan")]))
    inf = plain(torch.tensor([1.0, float("inf")]))
    assert "nan or inf" in compare(nan, nan, 1e-6, 0)
    assert "nan or inf" in compare(inf, inf, 1e-6, 0)
    assert compare(float("nan"), float("nan"), 1, 1) and compare(float("inf"), float("inf"), 1, 1)
    assert compare(plain(torch.tensor([1.0, 2.0])), nan, 1e-6, 0)             # nothing matches such a reference


def test_a_reference_holding_nan_stops_the_run():
    x = torch.tensor([1.0, 2.0])
    bad = Call("f", x, expect=torch.tensor([1.0, float("nan")]))
    with pytest.raises(CaseError, match="nan"):
        judge(bad, lambda req: Answer(True, out=plain(x)))
    grad = Call("f", x, grad=(0,), expect=x, expect_grad=(torch.tensor([float("inf"), 0.0]),))
    with pytest.raises(CaseError):
        grad.judge(Answer(True, out=plain(x), grads=[plain(x)]))


def test_a_reference_made_from_the_answer_may_hold_nan_and_fails():
    # expect computed from the student's own parameters: a nan there is the student's, and fails the answer
    x = torch.tensor([1.0, 2.0])
    call = Call("f", x, expect=lambda a: torch.from_numpy(np.asarray(a.params["w"])) * x)
    answer = Answer(True, out=plain(x), params={"w": plain(torch.tensor([float("nan"), 1.0]))})
    assert "nan" in judge(call, lambda req: answer)
