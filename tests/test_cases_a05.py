"""a05's "without X" rules cannot be passed by a renamed import, a wrapper or a helper in another cell (the static
rule on the source), nor by a name built at run time (the entry points are switched off during the call).
Each wrong notebook loses exactly the part whose rule it breaks; every other part keeps its points."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wrong_notebooks import assert_only_part_loses, solution, with_cell_appended, with_definition  # noqa: E402

from course_utils.cli import course_root
from course_utils.grader.cases import load_suite
from course_utils.grader.check import cell_points

NAME = "a05_distillation"

RENAMED_IMPORT = '''
def softmax_t(logits, T):
    from torch.nn.functional import softmax as sm
    return sm(logits / T, dim=-1)
'''
HELPER_CALL = '''
def softmax_t(logits, T):
    return _probabilities(logits / T)
'''
HELPER_ELSEWHERE = '''
def _probabilities(u):
    return F.log_softmax(u, dim=-1).exp()
'''
NAME_BUILT_AT_RUN_TIME = '''
def softmax_t(logits, T):
    return getattr(torch, "soft" + "max")(logits / T, dim=-1)
'''
AUTOGRAD_GRADIENT = '''
def soft_ce_grad(z, v, T):
    leaf = z.detach().clone().requires_grad_()
    (g,) = torch.autograd.grad(soft_ce(leaf, v, T).sum(), leaf)
    return g
'''
AUTOGRAD_BUILT_AT_RUN_TIME = '''
def soft_ce_grad(z, v, T):
    leaf = getattr(z.detach().clone(), "requires_" + "grad_")()
    engine = getattr(torch, "auto" + "grad")
    return getattr(engine, "gr" + "ad")(soft_ce(leaf, v, T).sum(), leaf)[0]
'''


def wrong_notebooks():
    """name -> (wrong notebook, the part that must lose its points)."""
    nb = solution(NAME)
    helper = with_cell_appended(with_definition(nb, HELPER_CALL), "q2_code", HELPER_ELSEWHERE)
    return {"renamed import of F.softmax": (with_definition(nb, RENAMED_IMPORT), "test_softmax_t"),
            "log_softmax in a helper of another cell": (helper, "test_softmax_t"),
            "torch.softmax looked up by a built name": (with_definition(nb, NAME_BUILT_AT_RUN_TIME), "test_softmax_t"),
            "soft_ce_grad by autograd": (with_definition(nb, AUTOGRAD_GRADIENT), "test_gradient"),
            "autograd looked up by built names": (with_definition(nb, AUTOGRAD_BUILT_AT_RUN_TIME), "test_gradient")}


def test_every_test_cell_has_cases():
    assert sorted(load_suite(course_root() / "cases" / f"{NAME}.py").grade_ids()) == sorted(cell_points(solution(NAME)))


@pytest.mark.slow
@pytest.mark.parametrize("wrong", ["renamed import of F.softmax", "log_softmax in a helper of another cell",
                                   "torch.softmax looked up by a built name", "soft_ce_grad by autograd",
                                   "autograd looked up by built names"])
def test_rule_breaker_loses_the_part(wrong):
    nb, part = wrong_notebooks()[wrong]
    got = assert_only_part_loses(NAME, nb, part)
    if "built" not in wrong:
        assert got[part] == 0.0            # the static rule zeroes the part, with its reason in the feedback
