"""The grader's pure parts: the wire format, comparison, rules, scoring (no kernel, seconds)."""
import json
import math

import numpy as np
import pytest
import torch

from course_utils.grader import wire
from course_utils.grader.cases import Answer, Call, Suite, compare, plain, rule_violations
from course_utils.grader.probe import _answer
from course_utils.grader.score import score, totals


def roundtrip(value):
    return wire.loads(wire.dumps(value))


def test_wire_roundtrip_keeps_types_and_bits():
    x = torch.randn(2, 3, dtype=torch.float64)
    got = roundtrip({"a": [1, 2.5, True, None, "s"], "t": (x, np.arange(4, dtype=np.int32)), "f": float("nan")})
    assert got["a"] == [1, 2.5, True, None, "s"] and type(got["a"][0]) is int
    assert isinstance(got["t"], tuple) and got["t"][0].tensor and not got["t"][1].tensor
    assert np.array_equal(got["t"][0], x.numpy()) and got["t"][1].dtype == np.int32
    assert math.isnan(got["f"])


@pytest.mark.parametrize("text", [
    '{"a": "AAAA", "dtype": "object", "shape": [1]}',              # dtype outside the whitelist
    '{"a": "AAAA", "dtype": "float64", "shape": [2]}',             # byte count does not match the shape
    '{"__reduce__": 1}', '[1, 2]', 'NaN', '{"f": 3}', '{"d": [[1, 2]]}',
    '{"l": ' * 40 + '[]' + '}' * 40,                                # too deep
])
def test_wire_refuses_what_is_not_plain_data(text):
    with pytest.raises(wire.WireError):
        wire.loads(text)


def test_decoded_values_are_plain_whatever_the_kernel_sent():
    class Liar(int):
        def __eq__(self, other):
            return True

    class Sneaky(torch.Tensor):
        pass

    # on the kernel side, subclasses are flattened to their data; the grader sees only plain types
    got = roundtrip([Liar(3), torch.ones(2).as_subclass(Sneaky)])
    assert type(got[0]) is int and got[0] != 14
    assert type(got[1]) is wire.Array and compare(got[1], plain(torch.zeros(2)), 1e-6, 0) is not None


def test_compare_reports_which_value_and_by_how_much():
    want = plain(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert compare(plain(torch.tensor([[1.0, 2.0], [3.0, 4.0]])), want, 1e-6, 0) is None
    msg = compare(plain(torch.tensor([[1.0, 2.0], [3.0, 4.5]])), want, 1e-6, 0)
    assert "(1, 1)" in msg and "4.5" in msg and "0.5" in msg
    assert "shape" in compare(plain(torch.zeros(3)), want, 1e-6, 0)
    assert "torch.Tensor" in compare(plain(np.zeros((2, 2))), want, 1e-6, 0)
    assert compare(14, 14, 0, 0) is None and "expected 14" in compare(13, 14, 0, 0)
    assert "number" in compare("not a number", 14, 0, 0)
    assert "number" in compare(True, 1, 0, 0)


def test_rules_see_renamed_imports_and_literal_getattr_but_not_strings():
    src = ("from torch.nn.functional import max_unpool2d as mu\n"
           "import torch.nn.functional as F\n"
           "def f(x):\n    return getattr(F, 'max_unpool2d')(x)\n"
           "def g(x):\n    return mu(x)\n")
    suite = Suite("x")
    suite.rule("t", ["torch.nn.functional.max_unpool2d"], "No unpool.", targets=["f"])
    assert "torch.nn.functional.max_unpool2d" in rule_violations(suite.rules, [src])["t"]
    suite.rules[0].targets = ("g",)
    assert "torch.nn.functional.max_unpool2d" in rule_violations(suite.rules, [src])["t"]
    clean = "def g(x):\n    '''Not max_unpool2d.'''\n    return x.scatter(0, x, x)  # nor F.max_unpool2d\n"
    assert rule_violations(suite.rules, [clean]) == {}


def make_suite():
    suite = Suite("demo")

    @suite.case("t_add", draws=3)
    def add(rng):
        a, b = float(rng.normal()), float(rng.normal())
        return Call("add", a, b, expect=a + b)

    @suite.case("t_add", weight=2.0)
    def add_ints(rng):
        return Call("add", 2, 3, expect=5, kind="int")

    @suite.case("t_raise")
    def raises(rng):
        return Call("add", None, 1, raises=TypeError)
    return suite


def local_ask(namespace):
    """The probe runtime run in this process (as the kernel would), answers decoded as the grader does."""
    def ask(request):
        try:
            raw = _answer(json.loads(json.dumps(request)), namespace)
        except BaseException as e:  # noqa: BLE001
            raw = {"ok": False, "error": type(e).__name__, "mro": [c.__name__ for c in type(e).__mro__], "message": str(e)}
        return Answer.from_wire(json.loads(json.dumps(raw)))
    return ask


def test_score_shares_points_by_weight_and_draw():
    suite = make_suite()
    points = {"t_add": 5.0, "t_raise": 1.0}
    right = score(suite, local_ask({"add": lambda a, b: a + b}), points, run_seed=1)
    assert totals(right) == {"t_add": 5.0, "t_raise": 1.0}
    wrong = score(suite, local_ask({"add": lambda a, b: 5 if isinstance(a, int) else a - b}), points, run_seed=1)
    assert totals(wrong) == {"t_add": 2.0, "t_raise": 1.0}       # the weight-2 case of total weight 5
    assert all(r.message for r in wrong if not r.passed)


def test_rule_violation_zeroes_the_part_with_its_reason():
    suite = make_suite()
    res = score(suite, local_ask({"add": lambda a, b: a + b}), {"t_add": 5.0, "t_raise": 1.0}, 1,
                violations={"t_add": "No adding."})
    assert totals(res) == {"t_add": 0.0, "t_raise": 1.0}
    assert all(r.message == "No adding." for r in res if r.grade_id == "t_add")


def test_inputs_change_with_the_run_seed():
    suite = make_suite()
    first = [c[2][0].args for c in suite.draw(1)]
    assert first == [c[2][0].args for c in suite.draw(1)]
    assert first != [c[2][0].args for c in suite.draw(2)]


def test_gradient_probe_and_cut_gradient():
    x = torch.randn(3, dtype=torch.float64)
    ok = Call("f", x, grad=(0,), expect=2 * x, expect_grad=(torch.full((3,), 2.0, dtype=torch.float64),))
    cut = Call("f", x, grad=(0,), expect=2 * x, expect_grad=(None,))
    ask_flow = local_ask({"f": lambda t: 2 * t})
    ask_cut = local_ask({"f": lambda t: 2 * t.detach()})
    assert ok.judge(ask_flow(ok.request())) is None
    assert "no gradient" in ok.judge(ask_cut(ok.request()))
    assert "cut off" in cut.judge(ask_flow(cut.request()))
    assert cut.judge(ask_cut(cut.request())) is None


def test_no_loops_rule_follows_helpers_aliases_and_wrappers():
    suite = Suite("x")
    suite.rule("t", [], "No Python loops over boxes.", no_loops_in=["giou"])
    vectorised = "def giou(a, b):\n    return (a[:, None] - b[None]).abs().sum(-1)\n"
    assert rule_violations(suite.rules, [vectorised, "def other(x):\n    return [v for v in x]\n"]) == {}
    cases = {
        "def giou(a, b):\n    out = []\n    for i in range(len(a)):\n        out.append(a[i])\n    return out\n": "a for loop in `giou`",
        "def giou(a, b):\n    return torch.stack([pair(x, b) for x in a])\n": "a list comprehension in `giou`",
        "def helper(a):\n    while a:\n        a = a[1:]\n\ndef giou(a, b):\n    return helper(a)\n": "a while loop in `helper` (reached from `giou`)",
        "def slow(a, b):\n    return sum(x for x in a)\n\ngiou = functools.partial(slow)\n": "a generator expression in `slow` (reached from `giou`)",
        "def giou(a, b):\n    return list(map(f, a))\n": "a call of `map` in `giou`",
    }
    for src, want in cases.items():
        msg = rule_violations(suite.rules, [src])["t"]
        assert msg.startswith("No Python loops over boxes.") and want in msg, (src, msg)


def test_peek_lets_a_later_call_accept_the_students_own_dependency():
    from course_utils.grader.cases import Peek, matches_any

    x = torch.randn(4, dtype=torch.float64)
    seen: dict = {}
    peek = Peek("inner", x, store=seen)
    ask = local_ask({"inner": lambda t: t + 1.0, "outer": lambda t: 2 * (t + 1.0)})    # inner is wrong (+1)

    def outer_check(answer):
        own = seen["answer"].out if seen["answer"].ok else None
        return matches_any(answer.out, [2 * x, None if own is None else 2 * torch.from_numpy(np.asarray(own))], 1e-12, 0)

    outer = Call("outer", x, check=outer_check)
    assert peek.judge(ask(peek.request())) is None and seen["answer"].ok
    assert outer.judge(ask(outer.request())) is None                       # right for its own inner
    wrong = local_ask({"inner": lambda t: t + 1.0, "outer": lambda t: 3 * t})
    peek.judge(wrong(peek.request()))
    assert "differ" in outer.judge(wrong(outer.request()))                 # right for neither
    assert matches_any(plain(x), [None, x], 0, 0) is None
