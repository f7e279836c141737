"""Hidden cases of a05_distillation (grader side: never released, never sent to a student's kernel).

Every input is drawn from the run's secret seed; expected values and gradients are computed here in float64.
The two "without X" rules are enforced on the submitted source (`SUITE.rule`, the API listed below, in the graded
functions and every helper of the student's they call, however it is reached: a renamed import, an alias in another
cell) and, as defence in depth, by switching the library entry points off while the student's function runs
(`disable`). The
gradient of Q3 is asked for on inputs that do not require grad, with autograd's entry points switched off.

What a case exists to test is there in every run: the distillation loss at alpha = 0, 1 and in between, finite
differences of 1-D, 2-D and 3-D inputs, and of a function curved enough that a forward difference
(f(z + eps) - f(z)) / eps misses the tolerance by a factor of 20 or more where the central one is 20 times
inside it (the network is redrawn until it is).
"""
import math

import torch

from course_utils.grader.cases import Call, CaseError, Suite, normal, sequential

SUITE = Suite("a05_distillation")

SOFTMAX_NAMES = ["torch.softmax", "torch.log_softmax", "torch._softmax", "torch._log_softmax", "torch._safe_softmax",
                 "torch._masked_softmax", "torch._softmax_backward_data", "torch._log_softmax_backward_data",
                 "torch.special.softmax", "torch.special.log_softmax", "torch.sparse.softmax", "torch.sparse.log_softmax",
                 "torch.Tensor.softmax", "torch.Tensor.log_softmax", "torch.nn.functional.softmax",
                 "torch.nn.functional.log_softmax", "torch.nn.functional.softmin", "torch.nn.functional.gumbel_softmax",
                 "torch.nn.functional.scaled_dot_product_attention", "torch.nn.functional.multi_head_attention_forward",
                 "torch.nn.Softmax", "torch.nn.LogSoftmax", "torch.nn.Softmax2d", "torch.nn.Softmin",
                 "torch.nn.MultiheadAttention", "torch.distributions.Categorical", "torch.distributions.OneHotCategorical",
                 "torch.distributions.RelaxedOneHotCategorical", "torch.distributions.utils.logits_to_probs",
                 "torch._C._VariableFunctions.softmax", "torch._C._VariableFunctions.log_softmax",
                 "torch._C._VariableFunctions._softmax", "torch._C._VariableFunctions._log_softmax", "torch.ops.aten._softmax", "torch.ops.aten.softmax",
                 "torch.ops.aten._log_softmax", "torch.ops.aten.log_softmax", "torch.ops.aten._safe_softmax",
                 "scipy.special.softmax", "scipy.special.log_softmax"]
AUTOGRAD_NAMES = ["torch.autograd", "torch._C._autograd", "torch._C._functions", "torch.func.grad",
                  "torch.func.grad_and_value", "torch.func.vjp", "torch.func.jvp", "torch.func.jacrev", "torch.func.jacfwd",
                  "torch.func.hessian", "torch.func.linearize", "functorch", "torch.Tensor.backward",
                  "torch.Tensor.requires_grad_", "torch.Tensor.requires_grad", "torch.Tensor.grad_fn",
                  "torch.Tensor.retain_grad", "torch.Tensor.register_hook", "torch.enable_grad", "torch.set_grad_enabled"]
SUITE.rule("test_softmax_t", SOFTMAX_NAMES,
           "Q1 asks for softmax_t without a library softmax (nor one in a helper it calls): write log-probabilities "
           "as u - logsumexp(u).")
SUITE.rule("test_gradient", AUTOGRAD_NAMES,
           "Q3 asks for soft_ce_grad and finite_difference_grad without autograd, in them or in the helpers they call "
           "(no backward, autograd, requires_grad, torch.func).")

NO_SOFTMAX = ("torch.softmax", "torch.log_softmax", "torch._softmax", "torch._log_softmax", "torch.special.softmax",
              "torch.special.log_softmax", "torch.sparse.softmax", "torch.nn.functional.softmax",
              "torch.nn.functional.log_softmax", "torch.nn.functional.softmin", "torch.nn.functional.gumbel_softmax",
              "torch.nn.functional.scaled_dot_product_attention", "torch.Tensor.softmax", "torch.Tensor.log_softmax",
              "scipy.special.softmax", "scipy.special.log_softmax", "torch.ops.aten._softmax",
              "torch.ops.aten._log_softmax", "torch.ops.aten._safe_softmax")
NO_AUTOGRAD = ("torch.autograd.grad", "torch.autograd.backward", "torch.Tensor.backward", "torch.Tensor.requires_grad_",
               "torch.autograd.functional.jacobian", "torch.autograd.functional.vjp", "torch.func.grad",
               "torch.func.grad_and_value", "torch.func.vjp", "torch.func.jacrev", "torch.func.jacfwd",
               "torch.autograd._engine_run_backward", "torch.autograd.graph._engine_run_backward")


def _probs(u: torch.Tensor) -> torch.Tensor:
    return torch.softmax(u, dim=-1)


def _logits(rng, *shape: int, scale: float | None = None) -> torch.Tensor:
    """float64 logits of a random spread."""
    return normal(rng, *shape, dtype=torch.float64) * (scale if scale is not None else float(rng.uniform(0.5, 5.0)))


def _temperature(rng, low: float = 0.2, high: float = 20.0) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _vjp(fn, x: torch.Tensor, cot: torch.Tensor):
    """fn(x) and d sum(fn(x) * cot) / dx (reference side)."""
    leaf = x.detach().clone().requires_grad_()
    out = fn(leaf)
    (grad,) = torch.autograd.grad((out * cot).sum(), leaf)
    return out.detach(), grad


# ---------------------------------------------------------------- Q1: temperature softmax

@SUITE.case("test_softmax_t", draws=4, weight=1.5)
def softmax_t_random_temperatures(rng):
    x = _logits(rng, int(rng.integers(1, 9)), int(rng.integers(2, 12)))
    T = _temperature(rng)
    cot = normal(rng, *x.shape, dtype=torch.float64)
    out, grad = _vjp(lambda t: _probs(t / T), x, cot)
    return Call("softmax_t", x, T, expect=out, grad=(0,), cotangent=cot, expect_grad=(grad,), atol=1e-10, rtol=1e-8,
                disable=NO_SOFTMAX, kind="tensor")


@SUITE.case("test_softmax_t")
def softmax_t_limits_of_the_temperature(rng):
    x = _logits(rng, int(rng.integers(2, 7)), int(rng.integers(3, 11)))
    n = x.shape[-1]
    return [Call("softmax_t", x, 1e7, expect=_probs(x / 1e7), atol=1e-12, disable=NO_SOFTMAX,
                 label=f"softmax_t(<{len(x)}x{n}>, T=1e7): nearly uniform"),
            Call("softmax_t", x, 1e-4, expect=_probs(x / 1e-4), atol=1e-12, disable=NO_SOFTMAX,
                 label=f"softmax_t(<{len(x)}x{n}>, T=1e-4): nearly one-hot, no overflow")]


@SUITE.case("test_softmax_t")
def softmax_t_huge_logits(rng):
    big = float(rng.uniform(5e3, 2e4))
    x = torch.tensor([[big, 0.0, -big], [-big, -big + 1.0, -2 * big], [big, big, 0.0]])
    return Call("softmax_t", x, 1.0, expect=_probs(x.double()).float(), atol=1e-6, disable=NO_SOFTMAX)


@SUITE.case("test_softmax_t")
def softmax_t_last_axis_of_any_shape(rng):
    n = int(rng.integers(3, 9))
    T = _temperature(rng, 0.5, 5.0)
    v, x3 = _logits(rng, n), _logits(rng, 2, 3, n)
    shift = _logits(rng, 2, 3, 1, scale=50.0)
    return [Call("softmax_t", v, T, expect=_probs(v / T), atol=1e-10, disable=NO_SOFTMAX),
            Call("softmax_t", x3 + shift, T, expect=_probs(x3 / T), atol=1e-10, disable=NO_SOFTMAX,
                 label="softmax_t(<2x3xN> + a shift per row): along the last axis, shift invariant")]


# ---------------------------------------------------------------- Q2: distillation loss

def _log_probs(u):
    return u - torch.logsumexp(u, dim=-1, keepdim=True)


def _distill(s, t, labels, T, alpha):
    lp, lq = _log_probs(t / T), _log_probs(s / T)
    soft = (lp.exp() * (lp - lq)).sum(-1).mean()
    hard = -_log_probs(s).gather(1, labels[:, None]).mean()
    return alpha * T * T * soft + (1 - alpha) * hard


@SUITE.case("test_distillation_loss", draws=4, weight=1.5)
def distillation_random(rng):
    """alpha = 0 (the hard term alone), 1 (the soft term alone) and in between, at a temperature above 1."""
    calls = []
    for alpha in (0.0, 1.0, float(rng.uniform(0.1, 0.9))):
        b, n = int(rng.integers(2, 20)), int(rng.integers(2, 12))
        s, t = _logits(rng, b, n), _logits(rng, b, n)
        labels = torch.from_numpy(rng.integers(0, n, b))
        T = _temperature(rng, 1.5, 20.0)
        out, grad = _vjp(lambda u: _distill(u, t, labels, T, alpha), s, torch.tensor(1.0, dtype=torch.float64))
        calls.append(Call("distillation_loss", s, t, labels, T, alpha, expect=out, grad=(0,), expect_grad=(grad,),
                          atol=1e-9, rtol=1e-7, kind="tensor"))
    return calls


@SUITE.case("test_distillation_loss")
def distillation_t_squared_at_high_temperature(rng):
    # alpha = 1, T = 1000: T^2 KL is the exact value (about |z - v|^2 / 2N for centred logits), not ~0
    s, t = _logits(rng, 6, 10), _logits(rng, 6, 10)
    labels = torch.zeros(6, dtype=torch.long)
    return Call("distillation_loss", s, t, labels, 1000.0, 1.0, expect=_distill(s, t, labels, 1000.0, 1.0), atol=1e-9,
                rtol=1e-5)


@SUITE.case("test_distillation_loss")
def distillation_confident_logits(rng):
    big = float(rng.uniform(40.0, 80.0))
    s = torch.tensor([[big, 0.0, -big], [0.0, -big, big]])
    t = s.flip(-1)
    labels = torch.tensor([2, 1])
    ref = _distill(s.double(), t.double(), labels, 1.0, 0.5).float()
    return Call("distillation_loss", s, t, labels, 1.0, 0.5, expect=ref, rtol=1e-5, atol=1e-4)


# ---------------------------------------------------------------- Q3: the gradient, and finite differences

def _soft_ce(z, v, T):
    return -(_probs(v / T) * _log_probs(z / T)).sum(-1)


@SUITE.case("test_gradient", draws=2)
def soft_ce_value_and_autograd(rng):
    z = _logits(rng, int(rng.integers(1, 8)), int(rng.integers(2, 12)))
    v = _logits(rng, *z.shape)
    T = _temperature(rng, 0.5, 10.0)
    cot = normal(rng, z.shape[0], dtype=torch.float64)
    out, grad = _vjp(lambda u: _soft_ce(u, v, T), z, cot)
    return Call("soft_ce", z, v, T, expect=out, grad=(0,), cotangent=cot, expect_grad=(grad,), atol=1e-10, rtol=1e-8,
                kind="tensor")


@SUITE.case("test_gradient", draws=3, weight=1.5)
def soft_ce_grad_without_autograd(rng):
    z = _logits(rng, int(rng.integers(1, 8)), int(rng.integers(2, 12)))
    v = _logits(rng, *z.shape)
    T = _temperature(rng, 0.3, 30.0)
    return Call("soft_ce_grad", z, v, T, expect=(_probs(z / T) - _probs(v / T)) / T, atol=1e-12, rtol=1e-8,
                disable=NO_AUTOGRAD + NO_SOFTMAX, kind="tensor",
                label="soft_ce_grad(z, v, T) on inputs that do not require grad, autograd switched off")


@SUITE.case("test_gradient")
def soft_ce_grad_at_high_temperature(rng):
    z, v = _logits(rng, 4, 10), _logits(rng, 4, 10)
    T = float(rng.uniform(1e3, 1e4))
    return Call("soft_ce_grad", z, v, T, expect=(_probs(z / T) - _probs(v / T)) / T, atol=1e-16, rtol=1e-6,
                disable=NO_AUTOGRAD + NO_SOFTMAX)


def _scalar_net(rng, numel: int):
    """A smooth scalar function of a tensor with `numel` entries (1-element output), both sides."""
    return sequential([["Flatten", 0], ["Linear", numel, 6], ["Tanh"], ["Linear", 6, 1]], rng, scale=0.5,
                      dtype=torch.float64)


FD_TOL = {"atol": 1e-6, "rtol": 1e-5}


def _fd_call(spec: dict, z: torch.Tensor, eps: float, grad: torch.Tensor, what: str) -> Call:
    shape = "x".join(map(str, z.shape))
    return Call("finite_difference_grad", spec, z, eps, expect=grad, disable=NO_AUTOGRAD, **FD_TOL,
                label=f"finite_difference_grad(f, <{shape}>, {eps:g}), f {what} returning a one-element tensor")


@SUITE.case("test_gradient", draws=2, weight=1.5)
def finite_differences_of_a_network(rng):
    """z of 1, 2 and 3 dimensions."""
    calls = []
    for shape in [(int(rng.integers(2, 5)),), (int(rng.integers(1, 4)), int(rng.integers(2, 6))),
                  (2, 2, int(rng.integers(2, 4)))]:
        z = normal(rng, *shape, dtype=torch.float64)
        spec, net = _scalar_net(rng, z.numel())
        _, grad = _vjp(lambda u: net(u), z, torch.ones(1, dtype=torch.float64))
        calls.append(_fd_call(spec, z, float(rng.choice([1e-5, 1e-6])), grad, "a small tanh network"))
    return calls


def _differences(net, z: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(forward, central) differences of the scalar network at z, entry by entry."""
    fwd, cen = torch.zeros_like(z), torch.zeros_like(z)
    with torch.no_grad():
        f0 = float(net(z))
        for k in range(z.numel()):
            e = torch.zeros(z.numel(), dtype=z.dtype)
            e[k] = eps
            up, down = float(net(z + e.view_as(z))), float(net(z - e.view_as(z)))
            fwd.view(-1)[k], cen.view(-1)[k] = (up - f0) / eps, (up - down) / (2 * eps)
    return fwd, cen


@SUITE.case("test_gradient", weight=1.5)
def finite_differences_of_a_curved_function(rng):
    """eps = 1e-3 on a network drawn until a forward difference misses the tolerance by 20x or more (in some entry)
    while the central difference is within 1/20 of it (in every entry)."""
    eps = 1e-3
    z = normal(rng, 3, 4, dtype=torch.float64)
    for _ in range(1000):                       # about 2 draws on average, 7 at most over 100 seeds
        spec, net = sequential([["Flatten", 0], ["Linear", 12, 6], ["Tanh"], ["Linear", 6, 1]], rng, scale=0.6,
                               dtype=torch.float64)
        _, grad = _vjp(lambda u: net(u), z, torch.ones(1, dtype=torch.float64))
        fwd, cen = _differences(net, z, eps)
        tol = FD_TOL["atol"] + FD_TOL["rtol"] * grad.abs()
        if float(((fwd - grad).abs() / tol).max()) >= 20 and float(((cen - grad).abs() / tol).max()) <= 0.05:
            return _fd_call(spec, z, eps, grad, "a curved tanh network (a forward difference is not enough)")
    raise CaseError("no network curved enough was drawn in 1000 tries")


@SUITE.case("test_gradient")
def finite_differences_leave_z_alone(rng):
    # z is a leaf that requires grad here: changing it in place raises, as the instructions forbid
    z = normal(rng, 3, 4, dtype=torch.float64)
    spec, net = _scalar_net(rng, 12)
    _, grad = _vjp(lambda u: net(u), z, torch.ones(1, dtype=torch.float64))
    return Call("finite_difference_grad", spec, z, grad=(1,), expect=grad, atol=1e-6, rtol=1e-5, disable=NO_AUTOGRAD,
                label="finite_difference_grad(f, z) with the default eps, z must not be changed in place")


# ---------------------------------------------------------------- Q4: the high-temperature approximation

@SUITE.case("test_high_t", draws=3)
def high_t_grad_centres_both(rng):
    b, n = int(rng.integers(1, 8)), int(rng.integers(2, 12))
    z = _logits(rng, b, n) + _logits(rng, b, 1, scale=10.0)
    v = _logits(rng, b, n) + _logits(rng, b, 1, scale=10.0)
    T = _temperature(rng, 1.0, 500.0)
    zc, vc = z - z.mean(-1, keepdim=True), v - v.mean(-1, keepdim=True)
    return Call("high_t_grad", z, v, T, expect=(zc - vc) / (n * T * T), atol=1e-14, rtol=1e-8, kind="tensor")
