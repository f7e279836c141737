"""Hidden cases of a06_metric_learning (grader side: never released, never sent to a student's kernel).

Every input is drawn from the run's secret seed; every expected value (and gradient) is computed here by a few
lines of float64 reference code and autograd. The contrastive cases place negative pairs inside the margin,
outside it and exactly on it, so dropping or mis-squaring the hinge term loses the points.

What a case exists to test is there in every run: pair labels given as integers and as bools, ArcFace with
easy_margin off and on (each in its own case), and a refused margin asked beside a head that must work.
"""
import math

import torch
import torch.nn.functional as F

from course_utils.grader.cases import Call, New, Suite, normal, uniform

SUITE = Suite("a06_metric_learning")


def _vjp(fn, args: tuple, wrt: tuple[int, ...], cot: torch.Tensor):
    """fn(*args) and d sum(fn * cot) / d args[i] for i in wrt (reference side, autograd)."""
    leaves = [a.detach().clone().requires_grad_(i in wrt) if isinstance(a, torch.Tensor) and a.is_floating_point()
              else a for i, a in enumerate(args)]
    out = fn(*leaves)
    grads = torch.autograd.grad((out * cot).sum(), [leaves[i] for i in wrt])
    return out.detach(), grads


def _unit_rows(rng, n: int, d: int) -> torch.Tensor:
    """n random directions in R^d (float64)."""
    return F.normalize(normal(rng, n, d, dtype=torch.float64), dim=1)


# ---------------------------------------------------------------- Q1: contrastive loss

def _contrastive(e1, e2, same, alpha):
    d = (e1 - e2).norm(dim=1)
    y = same.to(d.dtype)
    return y * d**2 + (1 - y) * torch.clamp(alpha - d, min=0) ** 2


def _inside_and_outside(rng, as_bool: bool) -> Call:
    alpha = float(rng.uniform(0.3, 3.0))
    n_in, n_out, n_pos = int(rng.integers(4, 9)), int(rng.integers(2, 5)), int(rng.integers(2, 6))
    dist = torch.cat([torch.from_numpy(rng.uniform(0.05, 0.95, n_in)) * alpha,    # negatives inside the margin
                      torch.from_numpy(rng.uniform(1.05, 3.0, n_out)) * alpha,    # negatives beyond it
                      torch.from_numpy(rng.uniform(0.05, 2.0, n_pos)) * alpha])   # positives
    same = torch.cat([torch.zeros(n_in + n_out), torch.ones(n_pos)]).long()
    perm = torch.from_numpy(rng.permutation(len(dist)))
    dist, same = dist[perm], same[perm]
    d = int(rng.integers(2, 9))
    e1 = normal(rng, len(dist), d, dtype=torch.float64)
    e2 = e1 + dist[:, None] * _unit_rows(rng, len(dist), d)
    same_arg = same.bool() if as_bool else same
    cot = normal(rng, len(dist), dtype=torch.float64)
    ref, grads = _vjp(lambda a, b: _contrastive(a, b, same, alpha), (e1, e2), (0, 1), cot)
    return Call("contrastive_loss", e1, e2, same_arg, kwargs={"alpha": alpha}, expect=ref, grad=(0, 1), cotangent=cot,
                expect_grad=grads, atol=1e-9, rtol=1e-7, kind="tensor")


@SUITE.case("test_contrastive", draws=2, weight=1.5)
def negatives_inside_and_outside_the_margin(rng):
    return _inside_and_outside(rng, as_bool=False)


@SUITE.case("test_contrastive", draws=2, weight=1.5)
def negatives_inside_and_outside_the_margin_bool_labels(rng):
    return _inside_and_outside(rng, as_bool=True)


@SUITE.case("test_contrastive")
def negatives_exactly_at_and_next_to_the_margin(rng):
    alpha = float(rng.uniform(0.5, 2.0))
    d = int(rng.integers(2, 6))
    e1 = torch.zeros(5, d, dtype=torch.float64)
    e2 = torch.zeros(5, d, dtype=torch.float64)
    axis = int(rng.integers(0, d))
    e2[:, axis] = torch.tensor([alpha, alpha * (1 - 1e-3), alpha * (1 + 1e-3), 0.5 * alpha, alpha])
    same = torch.tensor([0, 0, 0, 0, 1])
    return Call("contrastive_loss", e1, e2, same, kwargs={"alpha": alpha}, expect=_contrastive(e1, e2, same, alpha),
                atol=1e-12, rtol=1e-9)


@SUITE.case("test_contrastive", weight=0.5)
def default_margin_is_one(rng):
    e1 = normal(rng, 6, 3) * 0.3
    e2 = normal(rng, 6, 3) * 0.3
    same = torch.tensor([0, 1, 0, 1, 0, 0])
    return Call("contrastive_loss", e1, e2, same, expect=_contrastive(e1, e2, same, 1.0), atol=1e-6)


# ---------------------------------------------------------------- Q2: triplet loss

def _triplet(a, p, n, alpha):
    return torch.clamp(((a - p) ** 2).sum(1) - ((a - n) ** 2).sum(1) + alpha, min=0)


@SUITE.case("test_triplet", draws=3)
def triplets_easy_semi_hard_and_hard(rng):
    b, d = int(rng.integers(8, 30)), int(rng.integers(2, 7))
    alpha = float(rng.choice([0.0, 0.2, float(rng.uniform(0.05, 2.0))]))
    a = normal(rng, b, d, dtype=torch.float64)
    p = a + normal(rng, b, d, dtype=torch.float64) * torch.from_numpy(rng.uniform(0.1, 1.5, (b, 1)))
    n = a + normal(rng, b, d, dtype=torch.float64) * torch.from_numpy(rng.uniform(0.1, 1.5, (b, 1)))
    cot = normal(rng, b, dtype=torch.float64)
    ref, grads = _vjp(lambda *t: _triplet(*t, alpha), (a, p, n), (0, 1, 2), cot)
    return Call("triplet_loss", a, p, n, kwargs={"alpha": alpha}, expect=ref, grad=(0, 1, 2), cotangent=cot,
                expect_grad=grads, atol=1e-9, rtol=1e-7, kind="tensor")


@SUITE.case("test_triplet", weight=0.5)
def default_margin_is_point_two(rng):
    a, p, n = (normal(rng, 10, 3) * 0.4 for _ in range(3))
    return Call("triplet_loss", a, p, n, expect=_triplet(a, p, n, 0.2), atol=1e-6)


# ---------------------------------------------------------------- Q3: mining

def _labels(rng, n_classes: int, per_class_max: int) -> torch.Tensor:
    """Shuffled labels in which every class appears at least twice (class ids need not be contiguous)."""
    ids = rng.choice(20, n_classes, replace=False)
    y = [int(c) for c in ids for _ in range(int(rng.integers(2, per_class_max + 1)))]
    return torch.tensor(y)[torch.from_numpy(rng.permutation(len(y)))]


def _batch_hard(e, y, alpha):
    d = ((e[:, None] - e[None]) ** 2).sum(-1)
    same = y[:, None] == y[None]
    eye = torch.eye(len(y), dtype=torch.bool)
    pos = d.masked_fill(~same | eye, -float("inf")).amax(1)
    neg = d.masked_fill(same, float("inf")).amin(1)
    return torch.clamp(pos - neg + alpha, min=0).mean()


def _active_fraction(e, y, alpha) -> float:
    """Brute force over index triples (independent of the vectorised form)."""
    sq = lambda u, v: float(((u - v) ** 2).sum())  # noqa: E731
    active = total = 0
    for a in range(len(y)):
        for p in range(len(y)):
            if p == a or y[p] != y[a]:
                continue
            for n in range(len(y)):
                if y[n] != y[a]:
                    total += 1
                    active += sq(e[a], e[p]) - sq(e[a], e[n]) + alpha > 0
    return active / total


@SUITE.case("test_mining", draws=3)
def batch_hard_value_and_gradient(rng):
    y = _labels(rng, int(rng.integers(2, 5)), 4)
    e = normal(rng, len(y), int(rng.integers(2, 6)), dtype=torch.float64)
    alpha = float(rng.uniform(0.0, 1.5))
    ref, (grad,) = _vjp(lambda t: _batch_hard(t, y, alpha), (e,), (0,), torch.tensor(1.0, dtype=torch.float64))
    return Call("batch_hard_triplet_loss", e, y, kwargs={"alpha": alpha}, expect=ref, grad=(0,), expect_grad=(grad,),
                atol=1e-9, rtol=1e-7, kind="tensor")


@SUITE.case("test_mining", draws=3)
def active_fraction_random(rng):
    y = _labels(rng, int(rng.integers(2, 5)), 4)
    e = normal(rng, len(y), int(rng.integers(2, 6)), dtype=torch.float64)
    alpha = float(rng.uniform(0.0, 1.5))
    return Call("active_fraction", e, y, kwargs={"alpha": alpha}, expect=_active_fraction(e, y, alpha), kind="float",
                atol=1e-12)


@SUITE.case("test_mining")
def ties_on_an_integer_grid(rng):
    # integer embeddings and alpha = 0: many triplets have a loss of exactly 0 (not active: strictly positive)
    y = _labels(rng, 3, 3)
    e = torch.from_numpy(rng.integers(-1, 2, (len(y), 2))).double()
    return [Call("active_fraction", e, y, kwargs={"alpha": 0.0}, expect=_active_fraction(e, y, 0.0), kind="float",
                 atol=1e-12),
            Call("batch_hard_triplet_loss", e, y, kwargs={"alpha": 0.0}, expect=_batch_hard(e, y, 0.0), atol=1e-12)]


# ---------------------------------------------------------------- Q4: margin logits

def _cos_batch(rng, b: int, c: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosines in (-1, 1) with a few exact +-1 target entries, and labels."""
    cos = uniform(rng, b, c, low=-0.999, high=0.999, dtype=torch.float64)
    y = torch.from_numpy(rng.integers(0, c, b))
    cos[0, y[0]], cos[1, y[1]] = 1.0, -1.0
    return cos, y


def _with_target(cos, y, s, target):
    return s * cos.scatter(1, y[:, None], target)


def _cosface(cos, y, s, m):
    return _with_target(cos, y, s, cos.gather(1, y[:, None]) - m)


def _sphereface(cos, y, s, m):
    theta = torch.acos(cos.gather(1, y[:, None]).clamp(-1 + 1e-7, 1 - 1e-7))
    k = torch.floor(m * theta / math.pi)
    return _with_target(cos, y, s, (1 - 2 * torch.remainder(k, 2)) * torch.cos(m * theta) - 2 * k)


def _arcface(cos, y, s, m, easy_margin=False):
    c = cos.gather(1, y[:, None]).clamp(-1 + 1e-7, 1 - 1e-7)
    phi = c * math.cos(m) - torch.sqrt(1 - c**2) * math.sin(m)
    target = torch.where(c > 0, phi, c) if easy_margin else torch.where(c > math.cos(math.pi - m), phi, c - m * math.sin(m))
    return _with_target(cos, y, s, target)


def _margin_call(rng, target: str, ref, **kw) -> Call:
    """Value and gradient (w.r.t. cos: an in-place change of the input fails here) of one margin function."""
    cos, y = _cos_batch(rng, int(rng.integers(4, 12)), int(rng.integers(2, 8)))
    s = float(rng.uniform(1.0, 64.0))
    cot = normal(rng, *cos.shape, dtype=torch.float64)
    out, (grad,) = _vjp(lambda c: ref(c, y, s, **kw), (cos,), (0,), cot)
    return Call(target, cos, y, kwargs={"s": s, **kw}, expect=out, grad=(0,), cotangent=cot, expect_grad=(grad,),
                atol=1e-6, rtol=1e-6, kind="tensor")


@SUITE.case("test_cosface", draws=3)
def cosface_random(rng):
    return _margin_call(rng, "cosface_logits", _cosface, m=float(rng.uniform(0.05, 0.6)))


@SUITE.case("test_sphereface", draws=4)
def sphereface_random(rng):
    m = float(rng.choice([2.0, 4.0, float(rng.uniform(1.1, 4.5))]))
    return _margin_call(rng, "sphereface_logits", _sphereface, m=m)


@SUITE.case("test_sphereface")
def sphereface_monotone_over_theta(rng):
    m = float(rng.uniform(1.2, 4.5))
    theta = torch.linspace(0.0, math.pi, 50, dtype=torch.float64)
    cos = torch.stack([torch.cos(theta), torch.full_like(theta, float(rng.uniform(-0.9, 0.9)))], 1)
    y = torch.zeros(50, dtype=torch.long)
    return Call("sphereface_logits", cos, y, kwargs={"s": 1.0, "m": m}, expect=_sphereface(cos, y, 1.0, m), atol=1e-6)


@SUITE.case("test_arcface", draws=2)
def arcface_random(rng):
    return _margin_call(rng, "arcface_logits", _arcface, m=float(rng.uniform(0.1, 0.8)), easy_margin=False)


@SUITE.case("test_arcface", draws=2)
def arcface_easy_margin(rng):
    """Targets at cos = -1 (and any other below 0) keep their cosine instead of the linear extension."""
    return _margin_call(rng, "arcface_logits", _arcface, m=float(rng.uniform(0.1, 0.8)), easy_margin=True)


@SUITE.case("test_arcface")
def arcface_past_pi_minus_m(rng):
    m = float(rng.uniform(0.2, 0.7))
    theta = torch.cat([torch.from_numpy(rng.uniform(math.pi - m + 1e-3, math.pi - 1e-3, 12)),
                       torch.from_numpy(rng.uniform(1e-3, math.pi - m - 1e-3, 12))])
    cos = torch.stack([torch.cos(theta), torch.full_like(theta, -0.3)], 1).float()
    y = torch.zeros(24, dtype=torch.long)
    return Call("arcface_logits", cos, y, kwargs={"s": 2.0, "m": m}, expect=_arcface(cos.double(), y, 2.0, m).float(),
                atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------- Q5: normalized softmax (NormFace)

NORMALIZED = (1.0, 0.0, 0.0)


def _normface(e, W, s):
    return s * F.normalize(e, dim=1) @ F.normalize(W, dim=1).T


@SUITE.case("test_normface", draws=3, weight=1.5)
def normalized_logits_and_gradient(rng):
    dim, c, b = int(rng.integers(2, 10)), int(rng.integers(2, 9)), int(rng.integers(3, 10))
    W = normal(rng, c, dim) * uniform(rng, c, 1, low=0.05, high=5.0)          # centroids of very different norms
    e = normal(rng, b, dim) * uniform(rng, b, 1, low=0.05, high=20.0)         # features of very different norms
    y = torch.from_numpy(rng.integers(0, c, b))
    s = float(rng.uniform(4.0, 40.0))
    cot = normal(rng, b, c)
    out, (grad,) = _vjp(lambda t: _normface(t, W, s), (e,), (0,), cot)
    return New("MarginHead", dim, c, kwargs={"margins": NORMALIZED, "s": s}, state={"W": W}, inputs=(e, y),
               grad_inputs=(0,), cotangent=cot, expect=out, expect_grad=(grad,), atol=1e-5, rtol=1e-4, kind="tensor",
               label=f"MarginHead({dim}, {c}, margins=(1, 0, 0), s={s:.3g})(e, y)")


@SUITE.case("test_normface")
def plain_softmax_head_keeps_norms_and_bias(rng):
    dim, c, b = int(rng.integers(2, 8)), int(rng.integers(2, 8)), int(rng.integers(3, 8))
    W, bias, e = normal(rng, c, dim), normal(rng, c), normal(rng, b, dim) * 3
    y = torch.from_numpy(rng.integers(0, c, b))
    return New("MarginHead", dim, c, state={"W": W, "b": bias}, inputs=(e, y), expect=e @ W.T + bias, atol=1e-5,
               label=f"MarginHead({dim}, {c})(e, y), margins=None")


@SUITE.case("test_normface")
def fresh_head_has_the_lecture_parameters(rng):
    dim, c, b = int(rng.integers(3, 9)), int(rng.integers(2, 8)), 5
    e = normal(rng, b, dim)
    y = torch.from_numpy(rng.integers(0, c, b))

    def params(a):
        if a.params is None or set(a.params) != {"W"}:
            return f"a normalized head must have exactly one parameter W (no bias); it has {sorted(a.params or {})}"
        if tuple(a.params["W"].shape) != (c, dim):
            return f"W must have shape (n_classes, dim) = {(c, dim)}, got {tuple(a.params['W'].shape)}"
        return None

    def expect(a):
        return _normface(e, torch.from_numpy(a.params["W"]), 16.0) if a.params and "W" in a.params else None

    return New("MarginHead", dim, c, kwargs={"margins": NORMALIZED}, seed=int(rng.integers(1 << 30)), inputs=(e, y),
               expect=expect, check=params, atol=1e-4, rtol=1e-4,
               label=f"MarginHead({dim}, {c}, margins=(1, 0, 0))(e, y) with its own initial W, default s = 16")


@SUITE.case("test_normface", weight=0.5)
def zero_feature_gives_zero_logits(rng):
    dim, c = 4, 3
    W = normal(rng, c, dim)
    e = normal(rng, 3, dim)
    e[1] = 0.0
    y = torch.tensor([0, 1, 2])
    return New("MarginHead", dim, c, kwargs={"margins": NORMALIZED, "s": 10.0}, state={"W": W}, inputs=(e, y),
               expect=_normface(e, W, 10.0), atol=1e-5, label="MarginHead(...)(e, y) with an all-zero feature row")


@SUITE.case("test_normface", weight=0.5)
def other_margins_are_refused(rng):
    margins = (1.0, float(rng.uniform(0.1, 0.6)), 0.0)
    W, e, y = normal(rng, 3, 4), normal(rng, 5, 4), torch.from_numpy(rng.integers(0, 3, 5))
    return [New("MarginHead", 4, 3, kwargs={"margins": NORMALIZED, "s": 8.0}, state={"W": W}, inputs=(e, y),
                expect=_normface(e, W, 8.0), atol=1e-5, label="MarginHead(4, 3, margins=(1, 0, 0), s=8)(e, y)"),
            New("MarginHead", 4, 3, kwargs={"margins": margins}, method="", raises=ValueError,
                label=f"MarginHead(4, 3, margins={tuple(round(m, 3) for m in margins)})")]
