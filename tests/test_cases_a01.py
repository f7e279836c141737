"""a01's hidden cases: the "without" rules of Parts 2 and 5 hold against renamed imports and names built at run
time, and wrong code that the former hidden tests let through loses exactly its part."""

import numpy as np
import pytest

from tests.wrong_notebooks import assert_only_part_loses, solution, with_cell_appended, with_definition

from course_utils.layout import course_root
from course_utils.grader.cases import load_suite, rule_violations
from course_utils.grader.check import cell_points, student_sources

NAME = "a01_autoencoders"

RENAMED_UNPOOL = '''
def max_unpool(values, indices, output_size):
    from torch.nn.functional import max_unpool2d as unpool
    return unpool(values, indices, 2, output_size=output_size)
'''
RENAMED_AUC = '''
def roc_auc(scores, labels) -> float:
    from sklearn.metrics import roc_auc_score as area
    return float(area(np.asarray(labels), np.asarray(scores)))
'''
# a reference captured at import time under a name built from pieces: no refused name in the source
UNPOOL_BUILT_NAME = '''
_unpool_ref = getattr(F, "max_un" + "pool2d")
'''
UNPOOL_THROUGH_BUILT_NAME = '''
def max_unpool(values, indices, output_size):
    h, w = output_size
    return _unpool_ref(values, indices, (h // values.shape[-2], w // values.shape[-1]), output_size=output_size)
'''
AUC_BUILT_NAME = '''
import importlib
_area_ref = getattr(importlib.import_module("sk" + "learn.metrics"), "roc_auc" + "_score")
'''
AUC_THROUGH_BUILT_NAME = '''
def roc_auc(scores, labels) -> float:
    return float(_area_ref(np.asarray(labels), np.asarray(scores)))
'''
LAST_SIZE_ONLY = '''
def trace_shapes(d, layers):
    sizes = []
    for kind, *args in layers:
        d = conv_out(d, *args) if kind == "conv" else conv_out(d, args[0], args[1]) if kind == "pool" else conv_transpose_out(d, *args)
        sizes.append(d)
    if sizes and sizes[-1] < 1:
        raise ValueError("size below 1")
    return sizes
'''
FLOAT32_UNPOOL = '''
def max_unpool(values, indices, output_size):
    n, c = values.shape[:2]
    out = torch.zeros(n, c, output_size[0] * output_size[1])
    out = out.scatter(2, indices.reshape(n, c, -1), values.reshape(n, c, -1).float())
    return out.view(n, c, *output_size)
'''
TIES_COUNT_ZERO = '''
def roc_auc(scores, labels) -> float:
    s = np.asarray(torch.as_tensor(scores), dtype=np.float64)
    y = np.asarray(torch.as_tensor(labels)).astype(bool)
    return float((s[y][:, None] > s[~y][None, :]).mean())
'''
IN_PLACE = '''
def project_to_ball(z, r=1.0):
    norms = z.norm(dim=1, keepdim=True)
    return z.mul_(torch.clamp(r / norms.clamp_min(1e-12), max=1.0))
'''

# conditions a draw once left to chance (issue 18): each loses its part under every run seed now
NO_OUTPUT_PADDING = '''
def conv_transpose_out(d, f, s=1, p=0, a=0):
    return (d - 1) * s - 2 * p + f
'''
TRACE_WITHOUT_OUTPUT_PADDING = '''
def trace_shapes(d, layers):
    sizes = []
    for kind, *args in layers:
        d = conv_out(d, *args[:3]) if kind != "tconv" else conv_transpose_out(d, *args[:3])
        if d < 1:
            raise ValueError("size below 1")
        sizes.append(d)
    return sizes
'''
ONTO_THE_SPHERE = '''
def project_to_ball(z, r=1.0):
    return r * z / z.norm(dim=1, keepdim=True).clamp_min(1e-12)
'''
BY_THE_LARGEST_NORM = '''
def project_to_ball(z, r=1.0):
    return z * min(1.0, r / float(z.norm(dim=1).max()))
'''
KL_OF_EACH_EXAMPLE = '''
def kl_sparsity(rho, activations):
    a = activations
    return (rho * torch.log(rho / a) + (1 - rho) * torch.log((1 - rho) / (1 - a))).mean(0).sum()
'''


def wrong_notebooks():
    """name -> (wrong notebook, the part that must lose its points)."""
    nb = solution(NAME)
    unpool_built = with_cell_appended(with_definition(nb, UNPOOL_THROUGH_BUILT_NAME), "max_unpool", UNPOOL_BUILT_NAME)
    auc_built = with_cell_appended(with_definition(nb, AUC_THROUGH_BUILT_NAME), "anomaly", AUC_BUILT_NAME)
    return {"renamed import of max_unpool2d": (with_definition(nb, RENAMED_UNPOOL), "test_max_unpool"),
            "renamed import of roc_auc_score": (with_definition(nb, RENAMED_AUC), "test_roc_auc"),
            "max_unpool2d captured under a built name": (unpool_built, "test_max_unpool"),
            "roc_auc_score captured under a built name": (auc_built, "test_roc_auc"),
            "trace_shapes checks only the last size": (with_definition(nb, LAST_SIZE_ONLY), "test_trace_shapes"),
            "max_unpool drops float64": (with_definition(nb, FLOAT32_UNPOOL), "test_max_unpool"),
            "roc_auc counts ties as 0": (with_definition(nb, TIES_COUNT_ZERO), "test_roc_auc"),
            "project_to_ball writes into z": (with_definition(nb, IN_PLACE), "test_project_to_ball"),
            "conv_transpose_out without the output padding (trace_shapes calls it)": (
                with_definition(nb, NO_OUTPUT_PADDING), ["test_sizes_formulas", "test_trace_shapes"]),
            "trace_shapes drops the output padding": (with_definition(nb, TRACE_WITHOUT_OUTPUT_PADDING), "test_trace_shapes"),
            "project_to_ball onto the sphere, rows inside included": (with_definition(nb, ONTO_THE_SPHERE),
                                                                      "test_project_to_ball"),
            "project_to_ball scales by the largest norm of the batch": (with_definition(nb, BY_THE_LARGEST_NORM),
                                                                        "test_project_to_ball"),
            "kl_sparsity averages the KL of each example": (with_definition(nb, KL_OF_EACH_EXAMPLE), "test_kl_sparsity")}


def suite():
    return load_suite(course_root() / "cases" / f"{NAME}.py")


def test_every_test_cell_has_cases():
    assert sorted(suite().grade_ids()) == sorted(cell_points(solution(NAME)))


def test_inputs_can_be_drawn_for_any_run_seed():
    """Random layer stacks once drew a size below 1 that crashed the case itself (about 1 run in 150)."""
    sizes = [c for c in suite().cases if c.grade_id in ("test_sizes_formulas", "test_trace_shapes")]
    for seed in range(500):
        rng = np.random.default_rng(seed)
        for case in sizes:
            case.build(rng)


def test_rules_refuse_renamed_imports_but_not_ordinary_names():
    rules = suite().rules
    assert rule_violations(rules, student_sources(solution(NAME))) == {}
    own_auc = "def roc_auc(scores, labels):\n    auc = 0.5  # a variable named like the quantity is fine\n    return auc\n"
    assert rule_violations(rules, [own_auc]) == {}
    broken = rule_violations(rules, [RENAMED_UNPOOL, RENAMED_AUC])
    assert set(broken) == {"test_max_unpool", "test_roc_auc"}
    assert "max_unpool2d" in broken["test_max_unpool"] and "roc_auc_score" in broken["test_roc_auc"]


@pytest.mark.slow
@pytest.mark.parametrize("wrong", list(wrong_notebooks()))
def test_wrong_code_loses_only_its_part(wrong):
    nb, part = wrong_notebooks()[wrong]
    got = assert_only_part_loses(NAME, nb, part)
    if "renamed" in wrong:
        assert got[part] == 0.0            # the static rule zeroes the part, with its reason in the feedback
