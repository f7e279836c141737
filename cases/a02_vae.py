"""Hidden cases of a02_vae (grader side: never released, never sent to a student's kernel).

Every input is drawn from the run's secret seed; every expected value is computed here. Each part is scored on
its own: where a student's function may call another part's function (negative_elbo -> gaussian_kl,
CVAE.forward -> reparameterize), the case also asks the other function on the same inputs and accepts an
answer that is right given what the student's own helper returned. The notebook's locked "grader hooks" cell
reaches one output of a tuple (`output_of`, so gradients of the loss can be probed) and calls transfer_style on a
CVAE that holds weights sent by the grader (`with_cvae`).

What a case exists to test is there in every run: batches of two rows or more (a sum over the batch is not its
mean), both float32 and float64 where a case is about either, beta away from 1, target labels that differ from
the source labels in every row. The KL at the prior (0) is asked beside an ordinary KL.
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from course_utils.grader.cases import Call, New, Suite, compare, normal, plain, uniform

SUITE = Suite("a02_vae")
F64 = torch.float64


def decided(call: Call, decide) -> Call:
    """`call`, judged by `decide(answer)` instead of its own comparison (earlier answers kept in a closure)."""
    call.judge = decide
    return call


def _tuple_answer(a, n: int, what: str) -> str | None:
    """What is wrong with an answer that should be a tuple of n values (None when it is one)."""
    if not a.ok:
        return f"raised {a.error}: {a.message}"
    return None if isinstance(a.out, tuple) and len(a.out) == n else f"{what} must return a tuple of {n} values"


def _kl(mu: torch.Tensor, lv: torch.Tensor) -> torch.Tensor:
    """KL[N(mu, diag exp lv) || N(0, I)] per row, computed in float64, in mu's dtype."""
    dtype, mu, lv = mu.dtype, mu.double(), lv.double()
    return (0.5 * (lv.exp() + mu ** 2 - 1 - lv).sum(-1)).to(dtype)


# ---------------------------------------------------------------- Part 1: gaussian_kl

@SUITE.case("test_kl_values", draws=2)
def kl_against_torch_distributions(rng):
    n, k = int(rng.integers(2, 12)), int(rng.integers(2, 9))
    mu, lv = normal(rng, n, k, dtype=F64), 0.8 * normal(rng, n, k, dtype=F64)
    want = kl_divergence(Normal(mu, torch.exp(0.5 * lv)), Normal(0.0, 1.0)).sum(-1)
    return Call("gaussian_kl", mu, lv, expect=want, atol=1e-10, rtol=1e-10, dtype=True)


@SUITE.case("test_kl_values")
def kl_float32_batch(rng):
    n, k = int(rng.integers(20, 80)), int(rng.integers(2, 30))
    mu, lv = normal(rng, n, k), normal(rng, n, k)
    return Call("gaussian_kl", mu, lv, expect=_kl(mu, lv), atol=1e-4, rtol=1e-5)


@SUITE.case("test_kl_properties")
def kl_zero_at_the_prior(rng):
    n, k = int(rng.integers(2, 9)), int(rng.integers(1, 6))
    mu, lv = normal(rng, n, k), normal(rng, n, k)
    return [Call("gaussian_kl", torch.zeros(n, k), torch.zeros(n, k), expect=torch.zeros(n), atol=1e-7),
            Call("gaussian_kl", mu, lv, expect=_kl(mu, lv), atol=1e-4, rtol=1e-5)]


@SUITE.case("test_kl_properties")
def kl_from_logvar_directly(rng):
    """Log-variances far below -100: exp underflows in float32, so log(exp(logvar)) would give inf."""
    n, k = int(rng.integers(3, 10)), int(rng.integers(2, 6))
    mu, lv = normal(rng, n, k), normal(rng, n, k)
    lv[0] = torch.from_numpy(rng.uniform(-130, -105, k)).float()
    return Call("gaussian_kl", mu, lv, expect=_kl(mu, lv), atol=1e-3, rtol=1e-5)


@SUITE.case("test_kl_properties", draws=2)
def kl_gradients(rng):
    n, k = int(rng.integers(2, 8)), int(rng.integers(1, 5))
    mu, lv, cot = normal(rng, n, k, dtype=F64), normal(rng, n, k, dtype=F64), normal(rng, n, dtype=F64)
    return Call("gaussian_kl", mu, lv, expect=_kl(mu, lv), grad=(0, 1), cotangent=cot,
                expect_grad=(cot[:, None] * mu, cot[:, None] * 0.5 * (lv.exp() - 1)), atol=1e-10)


# ---------------------------------------------------------------- Part 2: reparameterize

@SUITE.case("test_reparameterize_values", draws=2)
def reparameterize_with_eps(rng):
    shape = (int(rng.integers(1, 9)), int(rng.integers(1, 7)))
    mu, lv, eps = normal(rng, *shape, dtype=F64), normal(rng, *shape, dtype=F64), normal(rng, *shape, dtype=F64)
    return Call("reparameterize", mu, lv, eps, expect=mu + (0.5 * lv).exp() * eps, atol=1e-12, dtype=True)


@SUITE.case("test_reparameterize_values")
def reparameterize_samples_follow_q(rng):
    """Without eps: 40,000 samples per coordinate have the mean and standard deviation of N(mu, sigma^2)."""
    m, s = torch.from_numpy(rng.uniform(-2, 2, 2)).float(), torch.from_numpy(rng.uniform(0.2, 2.5, 2)).float()
    n = 40_000
    mu, lv = m.repeat(n, 1), (2 * s.log()).repeat(n, 1)

    def moments(a):
        z = np.asarray(a.out, np.float64)
        if z.shape != (n, 2):
            return f"output: expected shape {(n, 2)}, got {z.shape}"
        return (compare(z.mean(0), m.double().numpy(), 4 * 2.5 / n ** 0.5, 0, "sample mean")
                or compare(z.std(0), s.double().numpy(), 0.04, 0, "sample standard deviation"))
    return Call("reparameterize", mu, lv, check=moments, label="reparameterize(mu, logvar) without eps")


@SUITE.case("test_reparameterize_values")
def reparameterize_draws_fresh_noise(rng):
    mu, lv = normal(rng, 6, 3), normal(rng, 6, 3)
    seen = {}

    def first(a):
        seen["z"] = np.asarray(a.out) if a.ok else None
        return None if a.ok else f"raised {a.error}: {a.message}"

    def second(a):
        if not a.ok:
            return f"raised {a.error}: {a.message}"
        same = seen["z"] is not None and np.array_equal(np.asarray(a.out), seen["z"])
        return "two calls without eps returned the same sample: draw eps with torch.randn_like(mu)" if same else None
    return [decided(Call("reparameterize", mu, lv), first), decided(Call("reparameterize", mu, lv), second)]


@SUITE.case("test_reparameterize_grad", draws=2)
def reparameterize_gradients(rng):
    shape = (int(rng.integers(1, 7)), int(rng.integers(1, 5)))
    mu, lv, eps, cot = (normal(rng, *shape, dtype=F64) for _ in range(4))
    return Call("reparameterize", mu, lv, eps, expect=mu + (0.5 * lv).exp() * eps, grad=(0, 1), cotangent=cot,
                expect_grad=(cot, cot * 0.5 * (0.5 * lv).exp() * eps), atol=1e-12)


@SUITE.case("test_reparameterize_grad")
def reparameterize_gradient_without_eps(rng):
    """The sample is random, but z - mu = sigma * eps: d/d logvar = cotangent * (z - mu) / 2, read off the answer."""
    mu, lv, cot = normal(rng, 5, 3, dtype=F64), normal(rng, 5, 3, dtype=F64), normal(rng, 5, 3, dtype=F64)

    def grads(a):
        if problem := compare(a.out, plain(mu), np.inf, 0):                # the value is random: shape and type
            return problem
        if not a.grads or a.grads[1] is None:
            return "no gradient reaches logvar"
        return compare(a.grads[1], plain(cot * 0.5 * (torch.from_numpy(np.asarray(a.out)) - mu)), 1e-10, 1e-8,
                       "gradient wrt logvar (cotangent * (z - mu) / 2)")
    return Call("reparameterize", mu, lv, grad=(0, 1), cotangent=cot, expect_grad=(cot,), check=grads, atol=1e-12)


# ---------------------------------------------------------------- Part 3: negative_elbo

def _rec(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Summed binary cross-entropy from logits, per row, computed in float64 (in the logits' dtype):
    max(z, 0) - z x + log(1 + e^-|z|) for logits z."""
    x, z = x.double(), logits.double()
    return (z.clamp_min(0) - z * x + torch.log1p(torch.exp(-z.abs()))).sum(1).to(logits.dtype)


def _elbo_calls(x, logits, mu, lv, beta: float | None, atol: float) -> list[Call]:
    """negative_elbo judged on its own: rec against the reference, loss against rec + beta * (its own kl), and kl
    right, or equal to what the student's gaussian_kl gives on the same inputs."""
    rec, kl = _rec(x, logits), _kl(mu, lv)
    b = 1.0 if beta is None else beta
    args = (x, logits, mu, lv) + (() if beta is None else (beta,))
    kept = {}

    def elbo(a):
        if problem := _tuple_answer(a, 3, "negative_elbo (loss, rec, kl)"):
            return problem
        loss, rec_out, kl_out = a.out
        kept["kl"] = kl_out
        return (compare(rec_out, plain(rec), atol, 1e-5, "rec")
                or compare(kl_out, plain(kl), np.inf, 0, "kl")                     # shape (N,)
                or compare(loss, plain((rec.double() + b * torch.as_tensor(np.asarray(kl_out, np.float64))).mean().to(logits.dtype)),
                           atol, 1e-5, f"loss (the batch mean of rec + {b:g} * your kl)"))

    def kl_term(a):
        if compare(kept["kl"], plain(kl), 1e-4, 1e-5) is None:
            return None
        if a.ok and isinstance(a.out, np.ndarray) and compare(kept["kl"], a.out, 1e-5, 1e-5) is None:
            return None                        # your gaussian_kl's own value: Part 1 scores it, not this part
        return compare(kept["kl"], plain(kl), 1e-4, 1e-5, "kl (and it differs from your gaussian_kl on the same inputs)")
    return [decided(Call("negative_elbo", *args), elbo), decided(Call("gaussian_kl", mu, lv, label="gaussian_kl(mu, logvar), beside negative_elbo's kl"), kl_term)]


@SUITE.case("test_negative_elbo_values", draws=3)
def elbo_values(rng):
    n, d, k = int(rng.integers(2, 8)), int(rng.integers(5, 40)), int(rng.integers(1, 5))
    x = uniform(rng, n, d)
    beta = float(rng.choice([0.25, 4.0, rng.uniform(0.05, 0.8), rng.uniform(1.5, 3)]))      # never 1
    return _elbo_calls(x, 2 * normal(rng, n, d), normal(rng, n, k), normal(rng, n, k), beta, 1e-4)


@SUITE.case("test_negative_elbo_values")
def elbo_beta_defaults_to_one(rng):
    n, d, k = int(rng.integers(2, 6)), int(rng.integers(5, 20)), int(rng.integers(1, 4))
    return _elbo_calls(uniform(rng, n, d), 2 * normal(rng, n, d), normal(rng, n, k), normal(rng, n, k), None, 1e-4)


def _confident_logits(rng, n: int, d: int, dtype) -> torch.Tensor:
    """Logits of both signs, most of them far beyond +-100 (where PyTorch's BCE on probabilities clamps log at -100)."""
    mag = torch.from_numpy(rng.uniform(150, 1000, (n, d)))
    mag[:, 0] = torch.from_numpy(rng.uniform(0, 5, n))                     # a few ordinary ones
    sign = torch.from_numpy(rng.choice([-1.0, 1.0], (n, d)))
    return (sign * mag).to(dtype)


@SUITE.case("test_negative_elbo_stable_and_grad", draws=2)
def elbo_with_very_confident_logits(rng):
    """x in {0, 1} and 0.5; a wrong pixel at logit 500 costs 500 nats, not the 100 of a clamped log(sigmoid); in
    float32 and in float64."""
    n, d, k = int(rng.integers(2, 5)), int(rng.integers(6, 20)), int(rng.integers(1, 4))
    calls = []
    for dtype in (torch.float32, F64):
        x = torch.from_numpy(rng.choice([0.0, 1.0, 0.5], (n, d), p=[0.45, 0.45, 0.1])).to(dtype)
        calls += _elbo_calls(x, _confident_logits(rng, n, d, dtype), torch.zeros(n, k, dtype=dtype),
                             torch.zeros(n, k, dtype=dtype), float(rng.uniform(0.5, 2)), 1e-2)
    return calls


@SUITE.case("test_negative_elbo_stable_and_grad", draws=2)
def elbo_gradients(rng):
    """d loss / d logits = (sigmoid(l) - x) / N, also where |l| > 100; mu and logvar get beta / N times the KL's."""
    n, d, k = int(rng.integers(2, 6)), int(rng.integers(4, 12)), int(rng.integers(1, 4))
    x = torch.from_numpy(rng.choice([0.0, 1.0], (n, d))).double()
    logits = normal(rng, n, d, dtype=F64)
    logits[0] = _confident_logits(rng, 1, d, F64)[0]
    mu, lv, beta, c = normal(rng, n, k, dtype=F64), normal(rng, n, k, dtype=F64), float(rng.uniform(0.3, 3)), float(rng.uniform(0.5, 2))
    g_logits = c * (torch.sigmoid(logits) - x) / n
    g_mu, g_lv = c * beta * mu / n, c * beta * 0.5 * (lv.exp() - 1) / n
    kept = {}

    def loss_grads(a):
        if not a.ok:
            return f"raised {a.error}: {a.message}"
        if not a.grads or a.grads[0] is None:
            return "no gradient reaches the logits"
        if problem := compare(a.grads[0], plain(g_logits), 1e-10, 1e-8, "d loss / d logits"):
            return problem
        kept["mu_lv"] = a.grads[1:]
        return None

    def kl_grads(a):
        right = all(g is not None and compare(g, plain(w), 1e-10, 1e-8) is None for g, w in zip(kept["mu_lv"], (g_mu, g_lv)))
        own = a.ok and a.grads and all(g is not None and w is not None and compare(g, w, 1e-10, 1e-8) is None
                                       for g, w in zip(kept["mu_lv"], a.grads))
        if right or own:
            return None                        # your gaussian_kl's own gradient: Part 1 scores it, not this part
        got = kept["mu_lv"]
        return ("no gradient reaches mu or logvar" if any(g is None for g in got) else
                compare(got[0], plain(g_mu), 1e-10, 1e-8, "d loss / d mu") or compare(got[1], plain(g_lv), 1e-10, 1e-8, "d loss / d logvar"))
    loss = Call("output_of", "negative_elbo", 0, x, logits, mu, lv, beta, grad=(3, 4, 5),
                cotangent=torch.tensor(c, dtype=F64), label="negative_elbo(...)[0] (the loss), its gradients")
    own = Call("gaussian_kl", mu, lv, grad=(0, 1), cotangent=torch.full((n,), c * beta / n, dtype=F64),
               label="gaussian_kl(mu, logvar), its gradients beside the loss's")
    return [decided(loss, loss_grads), decided(own, kl_grads)]


# ---------------------------------------------------------------- Part 4: the conditional VAE

@SUITE.case("test_condition", draws=2)
def condition_values(rng):
    """The one-hot part in h's dtype: a float32 h and a float64 h."""
    calls = []
    for dtype in (torch.float32, F64):
        n, f, c = int(rng.integers(2, 9)), int(rng.integers(1, 6)), int(rng.integers(2, 12))
        h, y = normal(rng, n, f, dtype=dtype), torch.from_numpy(rng.integers(0, c, n))
        calls.append(Call("condition", h, y, c, expect=torch.cat([h, F.one_hot(y, c).to(dtype)], 1), atol=0))
    return calls


@SUITE.case("test_condition")
def condition_default_ten_classes(rng):
    n = int(rng.integers(2, 9))
    h, y = normal(rng, n, 3, dtype=F64), torch.from_numpy(rng.integers(0, 10, n))
    y[0] = 9
    return Call("condition", h, y, expect=torch.cat([h, F.one_hot(y, 10).double()], 1), atol=0, dtype=True)


def _cvae_state(rng, latent: int, hidden: int) -> dict:
    """Random weights for CVAE(latent, hidden) with the layer names of the notebook's skeleton."""
    shapes = {"enc.0": (hidden, 794), "enc_mu": (latent, hidden), "enc_logvar": (latent, hidden),
              "dec.0": (hidden, latent + 10), "dec.2": (784, hidden)}
    state = {}
    for name, (out, inp) in shapes.items():
        state[f"{name}.weight"] = normal(rng, out, inp) / inp ** 0.5
        state[f"{name}.bias"] = 0.1 * normal(rng, out)
    return state


def _encode(s: dict, x, y):
    h = F.relu(F.linear(torch.cat([x, F.one_hot(y, 10).float()], 1), s["enc.0.weight"], s["enc.0.bias"]))
    return F.linear(h, s["enc_mu.weight"], s["enc_mu.bias"]), F.linear(h, s["enc_logvar.weight"], s["enc_logvar.bias"])


def _decode(s: dict, z, y):
    h = F.relu(F.linear(torch.cat([z, F.one_hot(y, 10).float()], 1), s["dec.0.weight"], s["dec.0.bias"]))
    return F.linear(h, s["dec.2.weight"], s["dec.2.bias"])


def _cvae_inputs(rng):
    latent, hidden, n = int(rng.integers(1, 5)), int(rng.integers(4, 20)), int(rng.integers(2, 6))
    return latent, hidden, n, _cvae_state(rng, latent, hidden), uniform(rng, n, 784), torch.from_numpy(rng.integers(0, 10, n))


@SUITE.case("test_cvae")
def cvae_encode(rng):
    latent, hidden, n, state, x, y = _cvae_inputs(rng)
    return New("CVAE", latent, hidden, state=state, method="encode", inputs=(x, y), expect=_encode(state, x, y), atol=1e-5)


@SUITE.case("test_cvae")
def cvae_decode(rng):
    latent, hidden, n, state, _, y = _cvae_inputs(rng)
    z = normal(rng, n, latent)
    return New("CVAE", latent, hidden, state=state, method="decode", inputs=(z, y), expect=_decode(state, z, y), atol=1e-5)


@SUITE.case("test_cvae", draws=2)
def cvae_forward(rng):
    """forward(x, y, eps) = (decode(mu + sigma * eps, y), mu, logvar), with a graph back to the weights; the
    sample may come from the student's own reparameterize (Part 2 scores that one)."""
    latent, hidden, n, state, x, y = _cvae_inputs(rng)
    eps = normal(rng, n, latent)
    mu, lv = _encode(state, x, y)
    kept = {}

    def forward(a):
        if problem := _tuple_answer(a, 3, "forward (logits, mu, logvar)"):
            return problem
        if not a.out[0].grad:
            return "the logits do not require grad: forward must keep the graph to the weights (no torch.no_grad)"
        kept["logits"] = a.out[0]
        return compare(a.out[1], plain(mu), 1e-5, 1e-4, "mu") or compare(a.out[2], plain(lv), 1e-5, 1e-4, "logvar")

    def sample(a):
        want = _decode(state, mu + (0.5 * lv).exp() * eps, y)
        if compare(kept["logits"], plain(want), 1e-4, 1e-4) is None:
            return None
        if a.ok and isinstance(a.out, np.ndarray) and a.out.shape == tuple(eps.shape) and compare(
                kept["logits"], plain(_decode(state, torch.as_tensor(np.asarray(a.out, np.float32)), y)), 1e-4, 1e-4) is None:
            return None                        # decoded your own reparameterize's sample: Part 2 scores that
        return compare(kept["logits"], plain(want), 1e-4, 1e-4, "logits = decode(mu + exp(logvar / 2) * eps, y)")
    return [decided(New("CVAE", latent, hidden, state=state, inputs=(x, y, eps)), forward),
            decided(Call("reparameterize", mu.detach(), lv.detach(), eps,
                         label="reparameterize(mu, logvar, eps), beside forward's sample"), sample)]


@SUITE.case("test_transfer_style", draws=2)
def transfer_style_values(rng):
    latent, hidden, n, state, x, ys = _cvae_inputs(rng)
    yt = (ys + torch.from_numpy(rng.integers(1, 10, n))) % 10               # another label in every row
    with torch.no_grad():
        want = torch.sigmoid(_decode(state, _encode(state, x, ys)[0], yt))
    no_graph = lambda a: "wrap the computation in torch.no_grad() (the result requires grad)" if a.out.grad else None  # noqa: E731
    return Call("with_cvae", (latent, hidden), state, "transfer_style", x, ys, yt, expect=want, atol=1e-5,
                check=no_graph, label=f"transfer_style(CVAE({latent}, {hidden}), <{n}x784>, y_source, y_target)")
