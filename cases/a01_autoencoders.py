"""Hidden cases of a01_autoencoders (grader side: never released, never sent to a student's kernel).

Every input is drawn from the run's secret seed; every expected value is computed here, in the grader's
process, by PyTorch / scikit-learn / SciPy or by a few lines of reference code. Part 1's `trace_shapes` may call
the student's `conv_out`: both are Part 1, so a bug in one costs only Part 1's points.

What a case exists to test is there in every run; only values are drawn: every size draw has a stride, a padding
and an output padding above their defaults (and a floor that matters), every random stack holds each kind of
layer, the projection's rows lie inside, outside and on the ball. An edge (an empty stack, a size below 1, a KL
of 0) is asked beside an ordinary call in the same case, so that "raise always" or "return 0" scores nothing.
"""
import numpy as np
import scipy.optimize
import sklearn.metrics
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_utils.grader.cases import Call, Suite, normal, sequential, uniform

SUITE = Suite("a01_autoencoders")
UNPOOL_NAMES = ["torch.nn.functional.max_unpool1d", "torch.nn.functional.max_unpool2d", "torch.nn.functional.max_unpool3d",
                "torch.nn.MaxUnpool1d", "torch.nn.MaxUnpool2d", "torch.nn.MaxUnpool3d", "torch._C._nn.max_unpool2d",
                "torch._C._nn.max_unpool3d", "torch.ops.aten.max_unpool2d", "torch.ops.aten.max_unpool3d"]
AUC_NAMES = ["sklearn", "torchmetrics", "torcheval", "scipy.stats.mannwhitneyu", "scipy.stats._mannwhitneyu"]
SUITE.rule("test_max_unpool", UNPOOL_NAMES,
           "Part 2 asks for max_unpool without F.max_unpool2d / nn.MaxUnpool2d (however they are reached).")
SUITE.rule("test_roc_auc", AUC_NAMES,
           "Part 5 asks for roc_auc without scikit-learn or another library's AUC (however it is reached).")
# defence in depth: the public names and the internals they call at run time (a reference captured under
# another name still ends in these); torch.ops entries switch the kernel itself off in PyTorch's dispatcher
UNPOOL_OFF = ("torch.nn.functional.max_unpool2d", "torch._C._nn.max_unpool2d", "torch.ops.aten.max_unpool2d")
AUC_OFF = ("sklearn.metrics.roc_auc_score", "sklearn.metrics._ranking._binary_roc_auc_score",
           "sklearn.metrics._ranking.roc_curve", "sklearn.metrics._ranking.confusion_matrix_at_thresholds",
           "sklearn.metrics._ranking._sort_inputs_and_compute_classification_thresholds",
           "sklearn.metrics._ranking._binary_clf_curve", "scipy.stats.mannwhitneyu",
           "scipy.stats._mannwhitneyu._mwu_input_validation")


# ---------------------------------------------------------------- Part 1: sizes

def _layer_sizes(d: int, f: int, s: int, p: int, a: int) -> tuple[int, int]:
    """What nn.Conv2d and nn.ConvTranspose2d really produce for these settings."""
    x = torch.zeros(1, 1, d, d)
    return nn.Conv2d(1, 1, f, s, p)(x).shape[-1], nn.ConvTranspose2d(1, 1, f, s, p, output_padding=a)(x).shape[-1]


@SUITE.case("test_sizes_formulas", draws=6)
def conv_and_transpose_sizes(rng):
    """Stride >= 2, padding >= 1, output padding >= 1 and a remainder the floor drops, in every draw."""
    f, s = int(rng.integers(2, 6)), int(rng.integers(2, 4))
    p, a = int(rng.integers(1, f // 2 + 1)), int(rng.integers(1, s))
    d = int(rng.integers(f, 40))            # the window fits
    if (d - f + 2 * p) % s == 0:
        d += 1                              # the floor matters
    conv, tconv = _layer_sizes(d, f, s, p, a)
    return [Call("conv_out", d, f, s, p, expect=conv, kind="int"),
            Call("conv_transpose_out", d, f, s, p, a, expect=tconv, kind="int")]


@SUITE.case("test_sizes_formulas")
def pooling_floor(rng):
    d = int(rng.integers(5, 30)) | 1        # odd: the floor matters
    return Call("conv_out", d, 2, 2, expect=nn.MaxPool2d(2, 2)(torch.zeros(1, 1, d, d)).shape[-1], kind="int")


@SUITE.case("test_sizes_formulas")
def default_stride_and_padding(rng):
    d, f = int(rng.integers(8, 40)), int(rng.integers(2, 7))
    conv, tconv = _layer_sizes(d, f, 1, 0, 0)
    return [Call("conv_out", d, f, expect=conv, kind="int"), Call("conv_transpose_out", d, f, expect=tconv, kind="int")]


def _random_layer(rng, kind: str | None = None) -> tuple:
    """One ("conv", f, s, p) / ("pool", f, s) / ("tconv", f, s, p, a) layer with random settings (of a random kind
    unless `kind` says)."""
    kind = kind or ("conv", "pool", "tconv")[int(rng.integers(0, 3))]
    f, s = int(rng.integers(1, 6)), int(rng.integers(1, 4))
    if kind == "pool":
        return ("pool", max(f, 2), s)
    p = int(rng.integers(0, f // 2 + 1))
    return ("conv", f, s, p) if kind == "conv" else ("tconv", f, s, p, int(rng.integers(0, s)))


def _formula(d: int, layer: tuple) -> int:
    """The size after one layer, by the formulas of Part 1 (may be below 1)."""
    kind, f, s, *rest = layer
    p = rest[0] if rest else 0
    return (d - f + 2 * p) // s + 1 if kind != "tconv" else (d - 1) * s - 2 * p + f + rest[1]


def _module(layer: tuple) -> nn.Module:
    """The PyTorch layer a trace_shapes tuple describes."""
    kind, f, s, *rest = layer
    if kind == "pool":
        return nn.MaxPool2d(f, s)
    return nn.Conv2d(1, 1, f, s, rest[0]) if kind == "conv" else nn.ConvTranspose2d(1, 1, f, s, rest[0], rest[1])


def _valid_stack(rng, d: int, count: int, largest: int = 150, kinds: tuple[str, ...] = ()) -> list[tuple]:
    """`count` random layers that keep the size between 1 and `largest` (redrawn until they do), holding one layer
    of each of `kinds` (a transposed one with output padding) at random places."""
    while True:
        wanted = list(kinds) + [None] * (count - len(kinds))
        wanted = [wanted[i] for i in rng.permutation(len(wanted))]
        layers, size = [], d
        for kind in wanted:
            for _ in range(200):
                layer = _random_layer(rng, kind)
                if kind == "tconv":                 # with an output padding
                    layer = ("tconv", layer[1], max(layer[2], 2), layer[3], max(layer[4], 1))
                if 1 <= _formula(size, layer) <= largest:
                    layers.append(layer)
                    size = _formula(size, layer)
                    break
            else:
                break                       # no layer of this kind fits here: draw the stack again
        if len(layers) == count:
            return layers


def _traced(d: int, layers: list[tuple]) -> Call:
    """trace_shapes(d, layers) against the sizes PyTorch's own layers produce."""
    h, want = torch.zeros(1, 1, d, d), []
    for layer in layers:
        h = _module(layer)(h)
        want.append(h.shape[-1])
    return Call("trace_shapes", d, layers, expect=want)


@SUITE.case("test_trace_shapes", draws=4)
def random_stacks(rng):
    """3 to 6 layers, a conv, a pooling and a transposed conv with output padding among them."""
    d = int(rng.integers(12, 70))
    return _traced(d, _valid_stack(rng, d, int(rng.integers(3, 7)), kinds=("conv", "pool", "tconv")))


@SUITE.case("test_trace_shapes")
def empty_stack(rng):
    d = int(rng.integers(5, 40))
    return [Call("trace_shapes", d, [], expect=[]), _traced(d, _valid_stack(rng, d, 1))]


@SUITE.case("test_trace_shapes")
def size_below_one_raises(rng):
    d = int(rng.integers(3, 6))
    return [_traced(d + 4, [("conv", 3, 1, 0)] * 3), Call("trace_shapes", d, [("conv", 3, 1, 0)] * 3, raises=ValueError)]


@SUITE.case("test_trace_shapes", draws=2)
def size_below_one_midway_raises(rng):
    """A layer drives the size below 1 and a later transposed conv would bring it back: raise at that layer (a conv
    and a pooling window too big, each after the same valid layers, which are asked on their own first)."""
    start = d = int(rng.integers(6, 30))
    layers = _valid_stack(rng, d, int(rng.integers(1, 3)), largest=40)
    for layer in layers:
        d = _formula(d, layer)
    back_up = ("tconv", d + 4, 1, 0, 0)      # from a size <= 0 back to >= 3
    return [_traced(start, layers)] + [
        Call("trace_shapes", start, layers + [too_big, back_up], raises=ValueError)
        for too_big in (("conv", d + 1 + int(rng.integers(0, 3)), 1, 0), ("pool", d + 1, 1))]


# ---------------------------------------------------------------- Part 2: max-unpooling

@SUITE.case("test_max_unpool", draws=2)
def unpool_even_windows(rng):
    n, c, h, w = int(rng.integers(2, 4)), int(rng.integers(2, 4)), 2 * int(rng.integers(2, 6)), 2 * int(rng.integers(2, 6))
    x = normal(rng, n, c, h, w)
    pooled, idx = F.max_pool2d(x, 2, return_indices=True)
    values = normal(rng, *pooled.shape)
    return Call("max_unpool", values, idx, (h, w), expect=F.max_unpool2d(values, idx, 2, output_size=(h, w)), atol=1e-6,
                dtype=True, disable=UNPOOL_OFF)


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
                atol=1e-10, dtype=True, disable=UNPOOL_OFF)


@SUITE.case("test_max_unpool")
def unpool_into_odd_plane(rng):
    """2x2 windows on an odd plane: the last row and column were never pooled and stay zero (float64 kept)."""
    h, w = 2 * int(rng.integers(2, 5)) + 1, 2 * int(rng.integers(2, 5)) + 1
    x = normal(rng, 2, 1, h, w, dtype=torch.float64)
    pooled, idx = F.max_pool2d(x, 2, return_indices=True)
    values = normal(rng, *pooled.shape, dtype=torch.float64)
    return Call("max_unpool", values, idx, (h, w), expect=F.max_unpool2d(values, idx, 2, output_size=(h, w)),
                atol=1e-12, dtype=True, disable=UNPOOL_OFF)


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
    other = torch.tensor([[rho - 0.05], [rho + 0.15]], dtype=torch.float64)    # unit mean rho + 0.05
    return [Call("kl_sparsity", rho, col, expect=torch.tensor(0.0, dtype=torch.float64), atol=1e-12),
            Call("kl_sparsity", rho, other, expect=_kl_sparsity(rho, other), atol=1e-12)]


# ---------------------------------------------------------------- Part 5: anomaly scores and ROC AUC

@SUITE.case("test_anomaly_scores", draws=2)
def scores_of_a_seeded_model(rng):
    spec, model = sequential([["Flatten"], ["Linear", 784, 6], ["Tanh"], ["Linear", 6, 784], ["Unflatten", 1, [1, 28, 28]]], rng)
    xs = torch.sigmoid(normal(rng, int(rng.integers(2, 7)), 1, 28, 28))         # one score per image
    with torch.no_grad():
        ref = ((torch.sigmoid(model(xs)) - xs) ** 2).flatten(1).mean(1)
    no_grad = lambda a: None if not a.out.grad else "compute the scores under torch.no_grad() (the result requires grad)"  # noqa: E731
    return Call("anomaly_scores", spec, xs, expect=ref, atol=1e-6, check=no_grad)


def _auc_call(s, y) -> Call:
    """roc_auc(s, y) against scikit-learn's value, with the library switched off in the kernel."""
    ys, ss = (np.asarray(v) for v in (y, s))
    return Call("roc_auc", s, y, expect=float(sklearn.metrics.roc_auc_score(ys, ss)), kind="float", atol=1e-9,
                disable=AUC_OFF)


@SUITE.case("test_roc_auc", draws=2)
def auc_with_ties(rng):
    n = int(rng.integers(30, 600))
    y = (rng.random(n) < rng.uniform(0.1, 0.6)).astype(np.int64)
    y[0], y[1] = 0, 1
    s = np.round(rng.normal(y * rng.uniform(0, 1.5), 1.0), int(rng.integers(0, 2)))   # coarse scores: many ties
    s[1] = s[0]                                                                        # at least one across classes
    return _auc_call(s, y)


@SUITE.case("test_roc_auc")
def auc_without_ties(rng):
    n = int(rng.integers(20, 300))
    y = (rng.random(n) < 0.3).astype(np.int64)
    y[0], y[1] = 0, 1
    return _auc_call(rng.normal(y * 0.8, 1.0), y)


@SUITE.case("test_roc_auc")
def auc_of_tensors(rng):
    y = torch.from_numpy((rng.random(80) < 0.4).astype(np.int64))
    y[0], y[1] = 0, 1
    return _auc_call(uniform(rng, 80, dtype=torch.float64), y)


# ---------------------------------------------------------------- Part 6: projection onto the ball

def _ball_minimiser(z: torch.Tensor, r: float) -> torch.Tensor:
    """Row by row, argmin ||u - z|| subject to ||u|| <= r, by a general constrained optimiser (SLSQP)."""
    want = []
    for row in z.numpy():
        res = scipy.optimize.minimize(lambda u: ((u - row) ** 2).sum(), np.zeros(len(row)), method="SLSQP",
                                      constraints=[{"type": "ineq", "fun": lambda u: r ** 2 - (u ** 2).sum()}],
                                      options={"ftol": 1e-14})
        want.append(res.x)
    return torch.tensor(np.array(want))


def _rows_around_the_ball(rng, r: float, d: int) -> torch.Tensor:
    """Rows in random directions: a zero row, rows inside the ball, one on the sphere, rows outside, shuffled."""
    inside, outside = int(rng.integers(2, 5)), int(rng.integers(2, 5))
    norms = np.concatenate([[0.0], rng.uniform(0.05, 0.9, inside) * r, [r], rng.uniform(1.1, 4.0, outside) * r])
    rows = F.normalize(normal(rng, len(norms), d, dtype=torch.float64), dim=1) * torch.from_numpy(norms)[:, None]
    return rows[torch.from_numpy(rng.permutation(len(norms)))]


@SUITE.case("test_project_to_ball", draws=2)
def projection_matches_a_constrained_minimiser(rng):
    r = float(rng.uniform(0.5, 3))
    z = _rows_around_the_ball(rng, r, int(rng.integers(2, 8)))
    return Call("project_to_ball", z, r, expect=_ball_minimiser(z, r), atol=1e-5)


@SUITE.case("test_project_to_ball")
def projection_leaves_z_alone(rng):
    """z arrives as a tensor that requires grad: an in-place write to it raises (the caller's z must not change)."""
    r = float(rng.uniform(0.5, 2))
    z = _rows_around_the_ball(rng, r, int(rng.integers(2, 6)))
    return Call("project_to_ball", z, r, expect=_ball_minimiser(z, r), atol=1e-5, grad=(0,))
