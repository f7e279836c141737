"""Hidden cases of a01_autoencoders (grader side: never released, never sent to a student's kernel).

Every input is drawn from the run's secret seed; every expected value is computed here, in the grader's
process, by PyTorch / scikit-learn / SciPy or by a few lines of reference code.
"""
import numpy as np
import scipy.optimize
import sklearn.metrics
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_utils.grader.cases import Call, Suite, normal, sequential, uniform

SUITE = Suite("a01_autoencoders")
SUITE.rule("test_max_unpool", ["max_unpool2d", "max_unpool1d", "max_unpool3d", "MaxUnpool2d", "MaxUnpool1d",
                               "MaxUnpool3d"], "Part 2 asks for max_unpool without F.max_unpool2d / nn.MaxUnpool2d.")
SUITE.rule("test_roc_auc", ["sklearn", "roc_auc_score", "roc_curve", "auc", "torchmetrics"],
           "Part 5 asks for roc_auc without scikit-learn (or another library's AUC).")


# ---------------------------------------------------------------- Part 1: sizes

def _layer_sizes(d: int, f: int, s: int, p: int, a: int) -> tuple[int, int]:
    """What nn.Conv2d and nn.ConvTranspose2d really produce for these settings."""
    x = torch.zeros(1, 1, d, d)
    return nn.Conv2d(1, 1, f, s, p)(x).shape[-1], nn.ConvTranspose2d(1, 1, f, s, p, output_padding=a)(x).shape[-1]


@SUITE.case("test_sizes_formulas", draws=6)
def conv_and_transpose_sizes(rng):
    d, f, s = int(rng.integers(3, 40)), int(rng.integers(1, 6)), int(rng.integers(1, 4))
    p = int(rng.integers(0, f // 2 + 1))
    d = max(d, f)                           # the window fits
    a = int(rng.integers(0, s))
    conv, tconv = _layer_sizes(d, f, s, p, a)
    return [Call("conv_out", d, f, s, p, expect=conv, kind="int"),
            Call("conv_transpose_out", d, f, s, p, a, expect=tconv, kind="int")]


@SUITE.case("test_sizes_formulas")
def pooling_floor(rng):
    d = int(rng.integers(5, 30)) | 1        # odd: the floor matters
    return Call("conv_out", d, 2, 2, expect=nn.MaxPool2d(2, 2)(torch.zeros(1, 1, d, d)).shape[-1], kind="int")


KINDS = (("conv", 3, 1, 1), ("conv", 3, 2, 1), ("conv", 5, 1, 0), ("pool", 2, 2), ("tconv", 4, 2, 1, 0),
         ("tconv", 3, 2, 0, 1), ("tconv", 2, 2, 0, 0), ("conv", 3, 1, 2))


def _module(layer: tuple) -> nn.Module:
    """The PyTorch layer a trace_shapes tuple describes."""
    kind, *a = layer
    return {"conv": lambda: nn.Conv2d(1, 1, a[0], a[1], a[2]), "pool": lambda: nn.MaxPool2d(a[0], a[1]),
            "tconv": lambda: nn.ConvTranspose2d(1, 1, a[0], a[1], a[2], a[3])}[kind]()


@SUITE.case("test_trace_shapes", draws=4)
def random_stacks(rng):
    d = int(rng.integers(20, 70))
    layers = [KINDS[i] for i in rng.integers(0, len(KINDS), int(rng.integers(1, 7)))]
    h, want = torch.zeros(1, 1, d, d), []
    for layer in layers:
        h = _module(layer)(h)
        want.append(h.shape[-1])
    return Call("trace_shapes", d, [tuple(layer) for layer in layers], expect=want)


@SUITE.case("test_trace_shapes")
def empty_stack(rng):
    return Call("trace_shapes", int(rng.integers(5, 40)), [], expect=[])


@SUITE.case("test_trace_shapes")
def size_below_one_raises(rng):
    d = int(rng.integers(3, 6))
    return Call("trace_shapes", d, [("conv", 3, 1, 0)] * 3, raises=ValueError)


# ---------------------------------------------------------------- Part 2: max-unpooling

@SUITE.case("test_max_unpool", draws=2)
def unpool_even_windows(rng):
    n, c, h, w = int(rng.integers(1, 4)), int(rng.integers(1, 4)), 2 * int(rng.integers(2, 6)), 2 * int(rng.integers(2, 6))
    x = normal(rng, n, c, h, w)
    pooled, idx = F.max_pool2d(x, 2, return_indices=True)
    values = normal(rng, *pooled.shape)
    return Call("max_unpool", values, idx, (h, w), expect=F.max_unpool2d(values, idx, 2, output_size=(h, w)), atol=1e-6,
                disable=("torch.nn.functional.max_unpool2d",))


@SUITE.case("test_max_unpool")
def unpool_odd_planes_gradient(rng):
    x = normal(rng, 1, 2, 7, 9, dtype=torch.float64)
    pooled, idx = F.max_pool2d(x, 3, return_indices=True)      # 7x9 -> 2x3, windows 3x3
    values = normal(rng, *pooled.shape, dtype=torch.float64)
    cot = normal(rng, 1, 2, 7, 9, dtype=torch.float64)
    v = values.clone().requires_grad_()
    ref = F.max_unpool2d(v, idx, 3, output_size=(7, 9))
    (grad,) = torch.autograd.grad((ref * cot).sum(), v)
    return Call("max_unpool", values, idx, (7, 9), expect=ref.detach(), grad=(0,), cotangent=cot, expect_grad=(grad,),
                atol=1e-10, disable=("torch.nn.functional.max_unpool2d",))


# ---------------------------------------------------------------- Part 3: KL sparsity

def _kl_sparsity(rho: float, a: torch.Tensor) -> torch.Tensor:
    rh = a.mean(0)
    return (rho * torch.log(rho / rh) + (1 - rho) * torch.log((1 - rho) / (1 - rh))).sum()


@SUITE.case("test_kl_sparsity", draws=3)
def kl_value_and_gradient(rng):
    m, s = int(rng.integers(5, 60)), int(rng.integers(2, 20))
    acts = torch.sigmoid(normal(rng, m, s, dtype=torch.float64) - float(rng.uniform(0, 2)))
    rho = float(rng.uniform(0.02, 0.9))
    a = acts.clone().requires_grad_()
    ref = _kl_sparsity(rho, a)
    (grad,) = torch.autograd.grad(ref, a)
    return Call("kl_sparsity", rho, acts, expect=ref.detach(), grad=(1,), expect_grad=(grad,), atol=1e-9, rtol=1e-9)


@SUITE.case("test_kl_sparsity")
def kl_averages_over_batch(rng):
    rho = float(rng.uniform(0.1, 0.6))
    col = torch.tensor([[rho - 0.05], [rho + 0.05]], dtype=torch.float64)      # unit mean exactly rho
    return Call("kl_sparsity", rho, col, expect=torch.tensor(0.0, dtype=torch.float64), atol=1e-12)


# ---------------------------------------------------------------- Part 5: anomaly scores and ROC AUC

@SUITE.case("test_anomaly_scores", draws=2)
def scores_of_a_seeded_model(rng):
    spec, model = sequential([["Flatten"], ["Linear", 784, 6], ["Tanh"], ["Linear", 6, 784], ["Unflatten", 1, [1, 28, 28]]], rng)
    xs = torch.sigmoid(normal(rng, int(rng.integers(2, 7)), 1, 28, 28))
    with torch.no_grad():
        ref = ((torch.sigmoid(model(xs)) - xs) ** 2).flatten(1).mean(1)
    no_grad = lambda a: None if not a.out.grad else "compute the scores under torch.no_grad() (the result requires grad)"  # noqa: E731
    return Call("anomaly_scores", spec, xs, expect=ref, atol=1e-6, check=no_grad)


@SUITE.case("test_roc_auc", draws=3)
def auc_with_ties(rng):
    n = int(rng.integers(30, 600))
    y = (rng.random(n) < rng.uniform(0.1, 0.6)).astype(np.int64)
    y[0], y[1] = 0, 1
    s = rng.normal(y * rng.uniform(0, 1.5), 1.0)
    s = np.round(s, int(rng.integers(0, 3)))          # coarse scores: many ties
    return Call("roc_auc", s, y, expect=float(sklearn.metrics.roc_auc_score(y, s)), kind="float", atol=1e-9,
                disable=("sklearn.metrics.roc_auc_score",))


@SUITE.case("test_roc_auc")
def auc_of_tensors(rng):
    y = torch.from_numpy((rng.random(80) < 0.4).astype(np.int64))
    y[0], y[1] = 0, 1
    s = uniform(rng, 80, dtype=torch.float64)
    return Call("roc_auc", s, y, expect=float(sklearn.metrics.roc_auc_score(y.numpy(), s.numpy())), kind="float", atol=1e-9)


# ---------------------------------------------------------------- Part 6: projection onto the ball

@SUITE.case("test_project_to_ball", draws=2)
def projection_matches_a_constrained_minimiser(rng):
    n, d, r = int(rng.integers(3, 12)), int(rng.integers(2, 8)), float(rng.uniform(0.5, 3))
    z = normal(rng, n, d, dtype=torch.float64) * torch.from_numpy(rng.uniform(0.05, 3, (n, 1)))
    z[0] = 0.0                                          # a zero row stays zero
    want = []
    for row in z.numpy():
        res = scipy.optimize.minimize(lambda u: ((u - row) ** 2).sum(), np.zeros(d), method="SLSQP",
                                      constraints=[{"type": "ineq", "fun": lambda u: r ** 2 - (u ** 2).sum()}],
                                      options={"ftol": 1e-14})
        want.append(res.x)
    return Call("project_to_ball", z, r, expect=torch.tensor(np.array(want)), atol=1e-5)
