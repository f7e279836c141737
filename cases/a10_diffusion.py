"""Hidden cases of a10_diffusion (grader side: never released, never sent to a student's kernel).

Every input is drawn from the run's secret seed; every expected value and gradient is computed here (torch.linspace,
torch.cumprod, the DDPM formulas in float64, autograd, the top-k Gumbel-max sampler run on the same small model).
l_simple and reverse_step get a model(x_t, t) through the notebook's locked `*_with_toy` functions (the probe can
only send data and small nn.Sequential models).

What a case exists to test is there in every run: q_sample on 2-D, 3-D and 4-D inputs (alpha_bar[t] broadcast
over every trailing axis), a reverse step at t = 1 (noise is still added there; only t = 0 adds none), and a
sampler driven by a causal model whose last logits depend on the tokens before the last (a sampler that feeds
the last token alone passed the position-wise toy model), over batches of two or more, two steps or more and a
top-k that filters.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

from course_utils.grader.cases import Call, Peek, Suite, compare, normal, plain, sequential

SUITE = Suite("a10_diffusion")


def _schedule(rng, T: int) -> torch.Tensor:
    """A random increasing beta schedule (float64), not the linear one."""
    return torch.from_numpy(np.sort(rng.uniform(1e-4, 0.08, T)))


def _batch_shape(rng, ndim: int | None = None) -> tuple[int, ...]:
    """(N, ...) of `ndim` dimensions (2 to 4 when None), N from 2."""
    ndim = ndim or int(rng.integers(2, 5))
    return (int(rng.integers(2, 7)),) + tuple(int(n) for n in rng.integers(1, 5, ndim - 1))


# ---------------------------------------------------------------- Part 1: the schedule

@SUITE.case("test_schedule", draws=3)
def linear_schedules(rng):
    T = int(rng.integers(21, 1001))
    return Call("linear_betas", T, expect=torch.linspace(1e-4 * 1000 / T, 0.02 * 1000 / T, T, dtype=torch.float64),
                atol=1e-15, rtol=1e-12, dtype=True, kind="tensor")


@SUITE.case("test_schedule")
def linear_schedule_with_other_ends(rng):
    T, start, end = int(rng.integers(2, 300)), float(rng.uniform(1e-5, 1e-3)), float(rng.uniform(1e-3, 1e-2))
    return Call("linear_betas", T, start, end,
                expect=torch.linspace(start * 1000 / T, end * 1000 / T, T, dtype=torch.float64), atol=1e-15,
                rtol=1e-12, dtype=True)


@SUITE.case("test_schedule", draws=2)
def cumulative_products(rng):
    betas = _schedule(rng, int(rng.integers(1, 400)))
    return Call("alpha_bar_of", betas, expect=torch.cumprod(1 - betas, 0), atol=1e-15, rtol=1e-12, dtype=True)


@SUITE.case("test_schedule")
def cumulative_products_keep_float32(rng):
    betas = _schedule(rng, int(rng.integers(5, 100))).float()
    return Call("alpha_bar_of", betas, expect=torch.cumprod(1 - betas, 0), atol=1e-7, rtol=1e-5, dtype=True)


# ---------------------------------------------------------------- Part 2: q(x_t | x_0)

def _q_sample(x0, t, eps, alpha_bar):
    ab = alpha_bar.to(x0.dtype)[t].view(-1, *[1] * (x0.dim() - 1))
    return ab.sqrt() * x0 + (1 - ab).sqrt() * eps


@SUITE.case("test_q_sample", draws=3, weight=2.0)
def jumps_of_random_shapes_with_gradients(rng):
    """x0 of 2, 3 and 4 dimensions, one t per example (the last step among them)."""
    calls = []
    for ndim in (2, 3, 4):
        T, shape = int(rng.integers(2, 300)), _batch_shape(rng, ndim)
        ab = torch.cumprod(1 - _schedule(rng, T), 0)
        x0, eps, cot = normal(rng, *shape), normal(rng, *shape), normal(rng, *shape)
        t = torch.from_numpy(rng.integers(0, T, shape[0]))
        t[0] = T - 1
        a, e = x0.clone().requires_grad_(), eps.clone().requires_grad_()
        ref = _q_sample(a, t, e, ab)
        grads = torch.autograd.grad((ref * cot).sum(), (a, e))
        calls.append(Call("q_sample", x0, t, eps, ab, expect=ref.detach(), grad=(0, 2), cotangent=cot,
                          expect_grad=grads, atol=1e-6, kind="tensor"))
    return calls


@SUITE.case("test_q_sample")
def jump_in_float64_at_both_ends(rng):
    T, shape = int(rng.integers(2, 50)), (4, int(rng.integers(1, 9)))
    ab = torch.cumprod(1 - _schedule(rng, T), 0)
    x0, eps = normal(rng, *shape, dtype=torch.float64), normal(rng, *shape, dtype=torch.float64)
    t = torch.tensor([0, T - 1, 0, T - 1])
    return Call("q_sample", x0, t, eps, ab, expect=_q_sample(x0, t, eps, ab), atol=1e-12, dtype=True)


# ---------------------------------------------------------------- Part 3: L_simple (scored on its own)

def _toy(w, b, x, t):
    return w * x + b.to(x.dtype)[t].view(-1, *[1] * (x.dim() - 1))


def _loss_and_grads(x_t, w, b, t, eps):
    """L_simple for the toy model on these x_t, and its gradients w.r.t. w and b."""
    w, b = w.clone().requires_grad_(), b.clone().requires_grad_()
    loss = F.mse_loss(_toy(w, b, x_t, t), eps)
    return (loss.detach(), *torch.autograd.grad(loss, (w, b)))


@SUITE.case("test_l_simple", draws=3)
def loss_and_gradients_for_a_time_dependent_model(rng):
    T, shape = int(rng.integers(2, 300)), _batch_shape(rng)
    ab = torch.cumprod(1 - _schedule(rng, T), 0)
    x0, eps = normal(rng, *shape), normal(rng, *shape)
    t = torch.from_numpy(rng.integers(0, T, shape[0]))
    w, b = torch.tensor(float(rng.uniform(-1, 1))), normal(rng, T)
    seen: dict = {}

    def judge(answer):
        own = seen["answer"].out if seen["answer"].ok else None
        candidates = [_q_sample(x0, t, eps, ab)]
        if isinstance(own, np.ndarray) and own.shape == tuple(shape) and own.dtype.kind == "f":
            candidates.append(torch.from_numpy(np.asarray(own, dtype=np.float32)))
        problems = []
        for x_t in candidates:
            loss, gw, gb = _loss_and_grads(x_t, w, b, t, eps)
            problems.append(compare(answer.out, plain(loss), 1e-6, 1e-5, "output")
                            or _grad_problem(answer, 0, gw) or _grad_problem(answer, 1, gb))
            if problems[-1] is None:
                return None
        return problems[0]
    return [Peek("q_sample", x0, t, eps, ab, store=seen),
            Call("l_simple_with_toy", w, b, x0, t, eps, ab, grad=(0, 1), check=judge, kind="tensor",
                 label=f"l_simple(model(x_t, t) = w * x_t + b[t], x0 <{'x'.join(map(str, shape))}>, ...)")]


def _grad_problem(answer, i: int, want: torch.Tensor) -> str | None:
    got = answer.grads[i] if answer.grads else None
    what = "the model's weight w" if i == 0 else "the model's time offsets b"
    if got is None:
        return f"no gradient reaches {what}: keep the graph (no .item(), .detach())"
    return compare(got, plain(want), 1e-6, 1e-5, f"gradient w.r.t. {what}")


# ---------------------------------------------------------------- Part 4: one reverse step (scored on its own)

def _reverse(w, b, x_t, t: int, z, betas, alpha_bar):
    beta, ab = float(betas[t]), float(alpha_bar[t])
    eps = _toy(w, b, x_t, torch.full((len(x_t),), t))
    mean = (x_t - beta / math.sqrt(1 - ab) * eps) / math.sqrt(1 - beta)
    return mean + math.sqrt(beta) * z if t > 0 else mean


def _reverse_case(rng, t_of) -> list[Call]:
    T, shape = int(rng.integers(2, 300)), _batch_shape(rng)
    betas = _schedule(rng, T)
    t = t_of(T)
    x_t, z = normal(rng, *shape), normal(rng, *shape)
    w, b = torch.tensor(float(rng.uniform(-1, 1))), normal(rng, T)
    seen: dict = {}

    def judge(answer):
        own = seen["answer"].out if seen["answer"].ok else None
        refs = [torch.cumprod(1 - betas, 0)]
        if isinstance(own, np.ndarray) and own.shape == (T,) and own.dtype.kind == "f":
            refs.append(torch.from_numpy(np.asarray(own, dtype=np.float64)))
        problems = []
        for ab in refs:
            try:
                problems.append(compare(answer.out, plain(_reverse(w, b, x_t, t, z, betas, ab)), 2e-5, 1e-5))
            except (ValueError, ZeroDivisionError):      # the student's alpha_bar has no valid step here
                continue
        return None if None in problems else problems[0]
    return [Peek("alpha_bar_of", betas, store=seen),
            Call("reverse_step_with_toy", w, b, x_t, t, z, betas, check=judge, kind="tensor",
                 label=f"reverse_step(model(x_t, t) = w * x_t + b[t], x_t <{'x'.join(map(str, shape))}>, t={t}, ...)")]


@SUITE.case("test_reverse_step", draws=3, weight=2.0)
def reverse_steps_with_noise(rng):
    return _reverse_case(rng, lambda T: int(rng.integers(2, T)) if T > 2 else 1)


@SUITE.case("test_reverse_step")
def step_one_still_adds_noise(rng):
    """t = 1 is not the last step: sigma_t z is added (t = 1 was drawn in about 2% of the draws above)."""
    return _reverse_case(rng, lambda T: 1)


@SUITE.case("test_reverse_step")
def last_step_adds_no_noise(rng):
    return _reverse_case(rng, lambda T: 0)


# ---------------------------------------------------------------- Part 5: DALL-E's mask and sampler

def _causality(answer, length: int) -> str | None:
    """The mask compared entry by entry, with what a wrong entry means."""
    if answer.out.dtype != np.float32:
        return f"expected a float32 mask, got dtype {answer.out.dtype.name}"
    m = np.asarray(answer.out, dtype=np.float64)
    if m.shape != (length, length):
        return f"expected shape ({length}, {length}), got {m.shape}"
    future = np.triu(np.ones((length, length), bool), 1)
    if not np.isneginf(m[future]).all():
        i, j = (int(v) for v in np.argwhere(future & ~np.isneginf(m))[0])
        return f"query {i} may attend to the later position {j}: the mask is not causal (-inf expected above the diagonal)"
    if (m[~future] != 0).any():
        i, j = (int(v) for v in np.argwhere(~future & (m != 0))[0])
        return f"entry ({i}, {j}) is {m[i, j]:g}: query {i} must attend to key {j} <= {i} unchanged (0 expected)"
    return None


@SUITE.case("test_causal_mask", draws=3)
def causal_masks(rng):
    length = int(rng.integers(1, 80))
    return Call("causal_mask", length, kind="tensor", check=lambda a: _causality(a, length))


def _generate(model, prefix: torch.Tensor, gumbel: torch.Tensor, top_k: int) -> torch.Tensor:
    """The reference sampler: last-position logits, top-k (ties kept), Gumbel-max, append."""
    seq = prefix
    with torch.no_grad():
        for s in range(gumbel.shape[1]):
            logits = model(seq)[:, -1]
            kth = logits.topk(top_k, dim=-1).values[:, -1:]
            token = (logits.masked_fill(logits < kth, float("-inf")) + gumbel[:, s]).argmax(-1, keepdim=True)
            seq = torch.cat([seq, token], 1)
    return seq[:, prefix.shape[1]:]


def _sampling_inputs(rng, K: int):
    """prefix (N, P) of word ids, Gumbel noise (N, n, K), vocabulary size; N >= 2 rows, n >= 2 steps."""
    N, n, P, words = int(rng.integers(2, 5)), int(rng.integers(2, 9)), int(rng.integers(1, 4)), 5
    prefix = torch.from_numpy(rng.integers(K, K + words, (N, P)))
    gumbel = -torch.log(-torch.log(torch.from_numpy(rng.uniform(1e-12, 1.0, (N, n, K)))))
    return prefix, gumbel, K + words


def _causal_model(rng, V: int, K: int, width: int = 3):
    """A small causal language model for both sides: the logits at position i depend on the tokens i - width + 1 to
    i (embeddings padded above, one convolution over positions): (N, L) ids -> (N, L, K) logits."""
    E = K + 4
    return sequential([["Embedding", V, E], ["Tanh"], ["Unflatten", 1, [1, -1]], ["ZeroPad2d", [0, 0, width - 1, 0]],
                       ["Conv2d", 1, 1, [width, E - K + 1]], ["Flatten", 1, 2]], rng, scale=1.0, dtype=torch.float64)


@SUITE.case("test_dalle_generate", draws=3, weight=2.0)
def sampling_from_a_small_model(rng):
    """A causal model that reads the tokens before the last, and a top-k that filters (1 <= top_k < K)."""
    K = int(rng.integers(3, 13))
    prefix, gumbel, V = _sampling_inputs(rng, K)
    spec, model = _causal_model(rng, V, K)
    top_k = int(rng.integers(1, K))
    return Call("dalle_generate", spec, prefix, gumbel, top_k, expect=_generate(model, prefix, gumbel, top_k),
                atol=0, dtype=True, kind="tensor")


@SUITE.case("test_dalle_generate")
def sampling_keeps_tied_logits(rng):
    # the same logits at every position, in 3 tied groups of codes; top_k ends inside the second group, so the
    # k-th largest logit is tied and every code of that group must stay in the race
    K = int(rng.integers(5, 10))
    prefix, gumbel, V = _sampling_inputs(rng, K)
    prefix, gumbel = prefix[:1].repeat(4, 1), -torch.log(-torch.log(torch.from_numpy(rng.uniform(1e-12, 1.0, (4, 6, K)))))
    spec, model = sequential([["Embedding", V, 4], ["Linear", 4, K]], rng, dtype=torch.float64)
    group = torch.from_numpy(rng.permutation(K)) % 3
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.copy_(group.double() / 4)
    spec["state"] = {k: v.clone() for k, v in model.state_dict().items()}
    top_k = int((group == 2).sum()) + 1
    return Call("dalle_generate", spec, prefix, gumbel, top_k, expect=_generate(model, prefix, gumbel, top_k),
                atol=0, dtype=True)


@SUITE.case("test_dalle_generate")
def one_step_without_filtering(rng):
    K = int(rng.integers(2, 9))
    prefix, gumbel, V = _sampling_inputs(rng, K)
    gumbel = gumbel[:, :1]
    spec, model = _causal_model(rng, V, K)
    return Call("dalle_generate", spec, prefix, gumbel, K, expect=_generate(model, prefix, gumbel, K), atol=0, dtype=True)
