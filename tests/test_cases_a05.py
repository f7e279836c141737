"""a05's "without X" rules cannot be passed by a renamed import, a wrapper or a helper in another cell (the static
rule on the source), nor by a name built at run time (the entry points are switched off during the call).
Each wrong notebook loses exactly the part whose rule it breaks; every other part keeps its points."""

import pytest

from tests.wrong_notebooks import assert_only_part_loses, solution, with_cell_appended, with_definition

from course_utils.layout import course_root
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

# wrong code that some draws once let through (issue 18): each loses its part under every run seed now
FORWARD_DIFFERENCE = '''
def finite_difference_grad(f, z, eps=1e-6):
    grad = torch.zeros_like(z)
    f0 = float(f(z))
    for k in range(z.numel()):
        step = torch.zeros(z.numel(), dtype=z.dtype)
        step[k] = eps
        grad.view(-1)[k] = (float(f(z + step.view_as(z))) - f0) / eps
    return grad
'''
FLAT_DIFFERENCES = '''
def finite_difference_grad(f, z, eps=1e-6):
    flat = z.reshape(-1)
    grad = torch.zeros_like(flat)
    for k in range(flat.numel()):
        step = torch.zeros_like(flat)
        step[k] = eps
        grad[k] = (float(f((flat + step).view_as(z))) - float(f((flat - step).view_as(z)))) / (2 * eps)
    return grad
'''
HARD_TERM_AT_TEMPERATURE_T = '''
def distillation_loss(student_logits, teacher_logits, labels, T, alpha):
    def log_probs(u):
        return u - torch.logsumexp(u, dim=-1, keepdim=True)
    log_p, log_q = log_probs(teacher_logits / T), log_probs(student_logits / T)
    soft = (log_p.exp() * (log_p - log_q)).sum(-1).mean()
    hard = -log_q.gather(1, labels[:, None]).mean()
    return alpha * T**2 * soft + (1 - alpha) * hard
'''
WRONG_CODE = {  # name -> (replacement definition, the part that must lose points)
    "finite differences forward, not central": (FORWARD_DIFFERENCE, "test_gradient"),
    "finite differences returned flat": (FLAT_DIFFERENCES, "test_gradient"),
    "distillation's hard term at temperature T": (HARD_TERM_AT_TEMPERATURE_T, "test_distillation_loss"),
}


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


@pytest.mark.slow
@pytest.mark.parametrize("wrong", list(WRONG_CODE))
def test_wrong_code_loses_its_part(wrong):
    source, part = WRONG_CODE[wrong]
    assert_only_part_loses(NAME, with_definition(solution(NAME), source), part)
