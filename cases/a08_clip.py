"""Hidden cases of a08_clip (grader side: never released, never sent to a student's kernel).

Every input is drawn from the run's secret seed; every expected value and gradient is computed here in float64
by a few lines of reference code (F.normalize, logsumexp, softmax) and autograd.

What a case exists to test is there in every run: loss matrices of two rows or more (a 1x1 loss is 0 whatever
the code), ensembles of two templates or more, zero-shot scales below and above the clip at 100.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

from course_utils.grader.cases import Call, Peek, Suite, matches_any, normal

SUITE = Suite("a08_clip")


def _vjp(fn, args: tuple, wrt: tuple[int, ...], cot: torch.Tensor):
    """fn(*args) and d sum(fn * cot) / d args[i] for i in wrt."""
    leaves = [a.detach().clone().requires_grad_(i in wrt) for i, a in enumerate(args)]
    out = fn(*leaves)
    grads = torch.autograd.grad((out * cot).sum(), [leaves[i] for i in wrt])
    return out.detach(), grads


def _logits(image_emb, text_emb, log_scale):
    """min(e^t, 100) * cosine similarities."""
    return log_scale.exp().clamp(max=100.0) * (F.normalize(image_emb, dim=-1) @ F.normalize(text_emb, dim=-1).T)


def _rows(rng, n: int, d: int, dtype=torch.float64) -> torch.Tensor:
    """n embeddings of very different norms (normalisation must not be skipped)."""
    return normal(rng, n, d, dtype=dtype) * torch.from_numpy(rng.uniform(0.05, 20.0, (n, 1))).to(dtype)


# ---------------------------------------------------------------- 1. the logits

@SUITE.case("q1_test", draws=3, weight=2.0)
def logits_and_their_gradients(rng):
    n, m, d = int(rng.integers(1, 10)), int(rng.integers(1, 10)), int(rng.integers(2, 17))
    t = torch.tensor(float(rng.uniform(-1.0, math.log(100) - 0.2)), dtype=torch.float64)
    args = (_rows(rng, n, d), _rows(rng, m, d), t)
    cot = normal(rng, n, m, dtype=torch.float64)
    ref, grads = _vjp(_logits, args, (0, 1, 2), cot)
    return Call("clip_logits", *args, expect=ref, grad=(0, 1, 2), cotangent=cot, expect_grad=grads, atol=1e-9,
                rtol=1e-7, kind="tensor")


@SUITE.case("q1_test")
def scale_clipped_at_100(rng):
    n, m, d = int(rng.integers(2, 8)), int(rng.integers(2, 8)), int(rng.integers(2, 9))
    args = (_rows(rng, n, d), _rows(rng, m, d), torch.tensor(float(rng.uniform(4.7, 9.0)), dtype=torch.float64))
    cot = normal(rng, n, m, dtype=torch.float64)
    ref, grads = _vjp(_logits, args, (0, 1), cot)
    return Call("clip_logits", *args, expect=ref, grad=(0, 1), cotangent=cot, expect_grad=grads, atol=1e-7, rtol=1e-7)


@SUITE.case("q1_test")
def logits_in_float32(rng):
    n, m, d = int(rng.integers(2, 12)), int(rng.integers(2, 12)), int(rng.integers(2, 33))
    args = (_rows(rng, n, d, torch.float32), _rows(rng, m, d, torch.float32), torch.tensor(2.6592))
    return Call("clip_logits", *args, expect=_logits(*args), atol=2e-5, dtype=True)


# ---------------------------------------------------------------- 2. the symmetric loss

def _symmetric(logits):
    labels = torch.arange(len(logits))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


@SUITE.case("q2_test", draws=3, weight=2.0)
def loss_and_gradient_on_random_matrices(rng):
    n, s = int(rng.integers(2, 33)), float(rng.choice([0.5, 3.0, 10.0, 100.0]))
    logits = s * normal(rng, n, n, dtype=torch.float64)
    ref, (grad,) = _vjp(_symmetric, (logits,), (0,), torch.tensor(1.0, dtype=torch.float64))
    return Call("symmetric_clip_loss", logits, expect=ref, grad=(0,), expect_grad=(grad,), atol=1e-9, rtol=1e-7,
                kind="tensor")


@SUITE.case("q2_test")
def loss_is_stable_for_logits_of_1000(rng):
    n = int(rng.integers(2, 9))
    logits = 1000.0 * normal(rng, n, n, dtype=torch.float64)
    logits[0] = 1000.0 * torch.from_numpy(rng.choice([-1.0, 1.0], n))      # ties of huge logits in a row
    return Call("symmetric_clip_loss", logits, expect=_symmetric(logits), atol=1e-7, rtol=1e-9)


@SUITE.case("q2_test")
def loss_is_not_symmetric_in_its_two_halves(rng):
    # a matrix whose row and column cross-entropies differ a lot: swapping or doubling one half is caught
    n = int(rng.integers(3, 9))
    logits = normal(rng, n, n, dtype=torch.float64)
    logits[:, 0] += 8.0
    return Call("symmetric_clip_loss", logits, expect=_symmetric(logits), atol=1e-9, rtol=1e-9)


# ---------------------------------------------------------------- 3. prompt ensembling

def _ensemble(t):
    return F.normalize(F.normalize(t, dim=-1).mean(0), dim=-1)


@SUITE.case("q3_test", draws=3)
def ensembles_of_templates_of_different_norms(rng):
    K, C, d = int(rng.integers(2, 8)), int(rng.integers(1, 11)), int(rng.integers(2, 17))
    t = normal(rng, K, C, d, dtype=torch.float64) * torch.from_numpy(rng.uniform(0.01, 1000.0, (K, C, 1)))
    cot = normal(rng, C, d, dtype=torch.float64)
    ref, (grad,) = _vjp(_ensemble, (t,), (0,), cot)
    return Call("ensemble_prompts", t, expect=ref, grad=(0,), cotangent=cot, expect_grad=(grad,), atol=1e-9, rtol=1e-7,
                kind="tensor")


@SUITE.case("q3_test")
def ensemble_in_float32(rng):
    t = normal(rng, int(rng.integers(2, 6)), 10, int(rng.integers(4, 33)))
    return Call("ensemble_prompts", t, expect=_ensemble(t), atol=1e-6, dtype=True)


# ---------------------------------------------------------------- 4. zero-shot prediction (scored on its own)

def _predict(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return logits.argmax(1), logits.softmax(1)


def _zero_shot(rng, img, cls, t) -> list[Call]:
    """Accept predictions from the reference logits, or from the student's own clip_logits on the same inputs."""
    seen: dict = {}
    ref = _predict(_logits(img, cls, t))

    def judge(answer):
        out = answer.out
        if not (isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(o, np.ndarray) for o in out)):
            return "expected a pair of tensors (pred, probs)"
        if out[0].dtype != np.int64:
            return f"pred: expected int64 class indices, got dtype {out[0].dtype.name}"
        own = seen["answer"].out if seen["answer"].ok else None
        mine = _predict(torch.from_numpy(np.asarray(own))) if isinstance(own, np.ndarray) and own.shape == (
            len(img), len(cls)) and own.dtype.kind == "f" else None
        return matches_any(tuple(out), [ref, mine], 1e-9, 1e-7)
    return [Peek("clip_logits", img, cls, t, store=seen), Call("zero_shot_predict", img, cls, t, check=judge)]


@SUITE.case("q4_test", draws=3)
def zero_shot_with_prompts_of_different_norms(rng):
    """A scale below the clip and one beyond log 100 (clipped at 100)."""
    calls = []
    for low, high in ((-0.5, math.log(100) - 0.3), (math.log(100) + 0.3, 6.0)):
        N, C, d = int(rng.integers(1, 25)), int(rng.integers(2, 11)), int(rng.integers(2, 17))
        t = torch.tensor(float(rng.uniform(low, high)), dtype=torch.float64)
        calls += _zero_shot(rng, _rows(rng, N, d), _rows(rng, C, d), t)
    return calls


@SUITE.case("q4_test")
def zero_shot_where_the_norm_would_decide(rng):
    # the most similar class by cosine is not the one with the largest dot product
    d = int(rng.integers(3, 9))
    cls = F.normalize(normal(rng, 4, d, dtype=torch.float64), dim=1) * torch.tensor([[0.1], [1.0], [5.0], [50.0]],
                                                                                   dtype=torch.float64)
    img = cls[0] / cls[0].norm() + 0.05 * normal(rng, 6, d, dtype=torch.float64)
    return _zero_shot(rng, img, cls, torch.tensor(2.0, dtype=torch.float64))
