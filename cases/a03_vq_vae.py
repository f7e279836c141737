"""Hidden cases of a03_vq_vae (grader side: never released, never sent to a student's kernel).

Every input is drawn from the run's secret seed; every expected value is computed here. Each part is scored on
its own: the quantizer's values and gradients (Parts 2-4) are judged at the codes the student's own
vector_quantize picked, and those codes must be the nearest ones or the ones the student's nearest_code gives
(Part 1 scores nearest_code); the hard Gumbel-softmax's gradient may be the student's own relaxed one (Part 7
scores that). The notebook's locked "grader hooks" cell reaches one output of a tuple (`output_of`, so gradients of
each loss can be probed) and calls sample_gumbel with a seeded torch.Generator (`with_generator`).

What a case exists to test is there in every run: float32 and float64 inputs, 1-D, 2-D and 3-D logits for every
"along the last axis" part, codes left unused in a histogram, kernels of 3 and more for the causal mask (a 1x1
mask hides nothing), both mask types. An edge (a refused argument, a single code) is asked beside an ordinary
call, and the straight-through output must be rows of the codebook, so that no constant or identity passes.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

from course_utils.grader.cases import Call, New, Suite, compare, normal, plain

SUITE = Suite("a03_vq_vae")
F64 = torch.float64


def decided(call: Call, decide) -> Call:
    """`call`, judged by `decide(answer)` instead of its own comparison (earlier answers kept in a closure)."""
    call.judge = decide
    return call


def _raised(a) -> str | None:
    """The failure message of an answer that raised (None when it returned)."""
    return None if a.ok else f"raised {a.error}: {a.message}"


# ---------------------------------------------------------------- Part 1: nearest_code

def _vectors_and_codes(rng, dtype=torch.float32, offset: float = 0.0):
    """Codes spread in R^D and vectors near random codes (the nearest code is never a near tie)."""
    n, d, k = int(rng.integers(10, 300)), int(rng.integers(2, 9)), int(rng.integers(3, 41))
    codes = normal(rng, k, d, dtype=F64) * 2
    z = codes[torch.from_numpy(rng.integers(0, k, n))] + 0.5 * normal(rng, n, d, dtype=F64)
    d2 = ((z[:, None] - codes[None]) ** 2).sum(-1)
    two = d2.topk(2, largest=False).values
    keep = (two[:, 1] - two[:, 0]) > 1e-3 * (1 + two[:, 1])
    z = z[keep]
    return (z + offset).to(dtype), (codes + offset).to(dtype), d2[keep].argmin(1)


@SUITE.case("test_nearest_code", draws=2)
def nearest_code_random(rng):
    calls = []
    for dtype in (torch.float32, F64):
        z, codes, want = _vectors_and_codes(rng, dtype)
        calls.append(Call("nearest_code", z, codes, expect=want, atol=0, rtol=0))
    return calls


@SUITE.case("test_nearest_code")
def nearest_code_ignores_a_far_code_and_the_offset(rng):
    """A code far away is never chosen, and shifting every vector by the same large offset changes nothing."""
    z, codes, want = _vectors_and_codes(rng, F64, offset=float(rng.uniform(20, 60)))
    codes = torch.cat([codes, codes[:1] + 1000.0])
    return Call("nearest_code", z, codes, expect=want, atol=0, rtol=0, dtype=True)


# ---------------------------------------------------------------- Parts 2-4: vector_quantize

def _indices_ok(kept: dict, z, codes):
    """Judge of nearest_code(z, codes) asked after vector_quantize: its indices are the nearest codes, or the
    ones the student's nearest_code gives on the same inputs."""
    want = ((z.double()[:, None] - codes.double()[None]) ** 2).sum(-1).argmin(1)

    def decide(a):
        idx = plain(kept["idx"])
        if compare(idx, plain(want), 0, 0) is None:
            return None
        if a.ok and isinstance(a.out, np.ndarray) and compare(idx, a.out, 0, 0) is None:
            return None                        # your nearest_code's own choice: Part 1 scores it, not this part
        return compare(idx, plain(want), 0, 0, "indices (they are not the nearest codes, nor your nearest_code's)")
    return decided(Call("nearest_code", z, codes, label="nearest_code(z_e, codebook), beside vector_quantize's indices"),
                   decide)


def _indices_of(answer_out, n: int) -> torch.Tensor | str:
    """The code indices a student's vector_quantize returned, or what is wrong with them."""
    idx = answer_out
    if not isinstance(idx, np.ndarray) or idx.shape != (n,) or idx.dtype.kind not in "iu":
        return f"indices: expected an integer tensor of shape ({n},), got {idx!r:.80}"
    return torch.from_numpy(np.asarray(idx, np.int64))


def _vq_inputs(rng, dtype=F64):
    n, d, k = int(rng.integers(5, 60)), int(rng.integers(2, 7)), int(rng.integers(3, 16))
    return normal(rng, n, d, dtype=dtype), normal(rng, k, d, dtype=dtype)


def _vq_value_calls(z, codes, beta: float | None) -> list[Call]:
    args = (z, codes) + (() if beta is None else (beta,))
    b = 0.25 if beta is None else beta
    kept = {}

    def values(a):
        if problem := _raised(a):
            return problem
        if not isinstance(a.out, tuple) or len(a.out) != 4:
            return "vector_quantize must return a tuple (z_q_st, indices, codebook_loss, commitment_loss)"
        z_q, idx, l_cb, l_commit = a.out
        idx = _indices_of(idx, len(z))
        if isinstance(idx, str):
            return idx
        kept["idx"] = idx
        e = codes[idx]
        err = ((z.double() - e.double()) ** 2).sum(1).mean().to(z.dtype)
        return (compare(z_q, plain(e), 1e-6, 1e-5, "z_q_st (the chosen codes)")
                or compare(l_cb, plain(err), 1e-6, 1e-5, "codebook_loss")
                or compare(l_commit, plain(b * err), 1e-6, 1e-5, f"commitment_loss (beta = {b:g})"))
    return [decided(Call("vector_quantize", *args), values), _indices_ok(kept, z, codes)]


@SUITE.case("test_vq_values", draws=2)
def vq_values(rng):
    return [call for dtype in (torch.float32, F64)
            for call in _vq_value_calls(*_vq_inputs(rng, dtype), float(rng.uniform(0.05, 2)))]


@SUITE.case("test_vq_values")
def vq_default_beta(rng):
    return _vq_value_calls(*_vq_inputs(rng), None)


@SUITE.case("test_vq_values")
def vq_beta_zero(rng):
    return _vq_value_calls(*_vq_inputs(rng), 0.0)


def _output(k: int, z, codes, beta, **options) -> Call:
    """Output k of vector_quantize(z, codes, beta), with z and codes at argument positions 2 and 3."""
    names = ("z_q_st", "indices", "codebook_loss", "commitment_loss")
    return Call("output_of", "vector_quantize", k, z, codes, beta, label=f"vector_quantize(...)[{k}] ({names[k]})", **options)


def _rows_of(codes: torch.Tensor, like: torch.Tensor):
    """A check that asks for the shape and kind of `like` and rows that are rows of the codebook (which rows is
    another part's question)."""
    def check(a):
        if problem := compare(a.out, plain(like), np.inf, 0):
            return problem
        d2 = ((torch.from_numpy(np.asarray(a.out, np.float64))[:, None] - codes.double()[None]) ** 2).sum(-1)
        far = d2.min(1).values > 1e-10
        return f"output: {int(far.sum())} rows of z_q_st are not rows of the codebook" if far.any() else None
    return check


@SUITE.case("test_straight_through", draws=3)
def straight_through_copies_the_gradient(rng):
    """d sum(w * z_q_st) / d z_e = w exactly, whatever codes were chosen."""
    z, codes = _vq_inputs(rng)
    w = normal(rng, *z.shape, dtype=F64)
    return _output(0, z, codes, float(rng.uniform(0.1, 1)), grad=(2,), cotangent=w, expect_grad=(w,),
                   check=_rows_of(codes, z), atol=1e-12)


def _loss_gradient_calls(rng, k: int) -> list[Call]:
    """Ask the indices, then output k's gradients with respect to z_e and the codebook, judged at those indices."""
    z, codes = _vq_inputs(rng)
    beta, c = float(rng.uniform(0.1, 1.5)), float(rng.uniform(0.5, 2))
    kept = {}

    def indices(a):
        if problem := _raised(a):
            return problem
        idx = _indices_of(a.out, len(z))
        kept["idx"] = idx
        return idx if isinstance(idx, str) else None

    def gradients(a):
        if problem := _raised(a):
            return problem
        e, n = codes[kept["idx"]], len(z)
        if k == 2:          # codebook loss: reaches only the codebook, 2 (e_k - z_i) / N summed per code
            want = (None, torch.zeros_like(codes).index_add_(0, kept["idx"], 2 * c * (e - z) / n))
        else:               # commitment loss: reaches only z_e, 2 beta (z_i - e_k) / N
            want = (2 * c * beta * (z - e) / n, None)
        return Call("output_of", grad=(2, 3), expect_grad=want, check=lambda _: None, atol=1e-10).judge(a)
    return [decided(_output(1, z, codes, beta), indices),
            decided(_output(k, z, codes, beta, grad=(2, 3), cotangent=torch.tensor(c, dtype=F64)), gradients)]


@SUITE.case("test_stop_gradients", draws=2)
def codebook_loss_trains_only_the_codebook(rng):
    return _loss_gradient_calls(rng, 2)


@SUITE.case("test_stop_gradients", draws=2)
def commitment_loss_trains_only_the_encoder(rng):
    return _loss_gradient_calls(rng, 3)


@SUITE.case("test_stop_gradients")
def reconstruction_never_reaches_the_codebook(rng):
    z, codes = _vq_inputs(rng)
    return _output(0, z, codes, 0.25, grad=(3,), cotangent=normal(rng, *z.shape, dtype=F64), expect_grad=(None,),
                   check=_rows_of(codes, z))


# ---------------------------------------------------------------- Part 5: perplexity

def _perplexity(idx: np.ndarray, k: int) -> float:
    p = np.bincount(idx.reshape(-1), minlength=k) / idx.size
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def _perplexity_call(rng, shape: tuple[int, ...]) -> Call:
    """Random usage of 2 to k - 1 of k codes (some never used), indices of the given shape."""
    k = int(rng.integers(4, 40))
    used = rng.choice(k, int(rng.integers(2, k)), replace=False)
    idx = rng.choice(used, shape, p=rng.dirichlet(np.ones(len(used))))
    return Call("code_perplexity", torch.from_numpy(idx), k, expect=_perplexity(idx, k), kind="float", atol=1e-9)


@SUITE.case("test_perplexity", draws=2)
def perplexity_of_random_usage(rng):
    """A flat index vector and a (B, H, W) map of indices."""
    return [_perplexity_call(rng, (int(rng.integers(5, 200)),)),
            _perplexity_call(rng, tuple(int(s) for s in rng.integers(2, 9, 3)))]


@SUITE.case("test_perplexity")
def perplexity_of_one_code(rng):
    k = int(rng.integers(2, 20))
    idx = np.full(int(rng.integers(1, 30)), int(rng.integers(0, k)))
    return [Call("code_perplexity", torch.from_numpy(idx), k, expect=1.0, kind="float", atol=1e-9),
            _perplexity_call(rng, (int(rng.integers(5, 50)),))]


# ---------------------------------------------------------------- Parts 6-9: Gumbel-softmax

@SUITE.case("test_sample_gumbel", draws=2)
def gumbel_from_a_seeded_generator(rng):
    shape = tuple(int(s) for s in rng.integers(1, 9, int(rng.integers(1, 4))))
    seed = int(rng.integers(0, 2 ** 31))
    u = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
    return Call("with_generator", seed, "sample_gumbel", shape, expect=-torch.log(-torch.log(u)), atol=1e-5,
                label=f"sample_gumbel({shape}, torch.Generator().manual_seed(...))")


@SUITE.case("test_sample_gumbel")
def gumbel_moments_without_generator(rng):
    """generator=None: 100,000 draws have the Gumbel(0, 1) mean (Euler's constant) and variance (pi^2 / 6)."""
    n = 100_000

    def moments(a):
        g = np.asarray(a.out, np.float64)
        if g.shape != (n,):
            return f"output: expected shape ({n},), got {g.shape}"
        return (compare(float(g.mean()), 0.5772156649, 0.02, 0, "sample mean")
                or compare(float(g.var()), math.pi ** 2 / 6, 0.06, 0, "sample variance"))
    return Call("sample_gumbel", (n,), check=moments)


def _softmax_ref(logits, tau, g, cot):
    """The relaxed sample and d sum(cot * y) / d logits, by autograd on torch.softmax."""
    leaf = logits.clone().requires_grad_()
    y = torch.softmax((leaf + g) / tau, dim=-1)
    (grad,) = torch.autograd.grad((y * cot).sum(), leaf)
    return y.detach(), grad


NDIMS = (1, 2, 3)          # "along the last axis": a 1-D and a 3-D input expose dim=0 / dim=1 where 2-D does not


def _shape(rng, ndim: int, last: int = 9) -> tuple[int, ...]:
    """A shape of `ndim` dimensions: leading sizes 2 to 5, the last 2 to last - 1."""
    return tuple(int(s) for s in rng.integers(2, 6, ndim - 1)) + (int(rng.integers(2, last)),)


def _gumbel_inputs(rng, ndim: int):
    """logits, Gumbel noise and a cotangent of `ndim` dimensions."""
    shape = _shape(rng, ndim)
    return normal(rng, *shape, dtype=F64) * 2, normal(rng, *shape, dtype=F64), normal(rng, *shape, dtype=F64)


@SUITE.case("test_gumbel_softmax", draws=2)
def relaxed_sample_and_gradient(rng):
    calls = []
    for ndim in NDIMS:
        logits, g, cot = _gumbel_inputs(rng, ndim)
        tau = float(rng.uniform(0.2, 3))
        y, grad = _softmax_ref(logits, tau, g, cot)
        calls.append(Call("gumbel_softmax", logits, tau, g, expect=y, grad=(0,), cotangent=cot, expect_grad=(grad,),
                          atol=1e-10))
    return calls


@SUITE.case("test_gumbel_softmax")
def relaxed_sample_at_a_low_temperature(rng):
    """tau = 1e-3: nearly the one-hot of argmax(logits + g), without overflow (exp((l + g) / tau) alone would be inf).
    The reference is the stable softmax itself: two entries of logits + g closer than ~1e-2 share the mass."""
    logits, g, _ = _gumbel_inputs(rng, 3)
    return Call("gumbel_softmax", logits, 1e-3, g, expect=torch.softmax((logits + g) / 1e-3, -1), atol=1e-6)


@SUITE.case("test_gumbel_hard", draws=2)
def hard_sample_straight_through(rng):
    return [call for ndim in NDIMS for call in _hard_calls(rng, ndim)]


def _hard_calls(rng, ndim: int) -> list[Call]:
    """Forward: the one-hot of argmax(logits + g); gradient: the relaxed one (the reference's or the student's own)."""
    logits, g, cot = _gumbel_inputs(rng, ndim)
    tau = float(rng.uniform(0.3, 2))
    _, grad = _softmax_ref(logits, tau, g, cot)
    hard = F.one_hot((logits + g).argmax(-1), logits.shape[-1]).double()
    kept = {}

    def relaxed(a):
        kept["grad"] = a.grads[0] if a.ok and a.grads else None
        return None                                   # Part 7 scores the relaxed sample itself

    def straight_through(a):
        if problem := _raised(a):
            return problem
        if problem := compare(a.out, plain(hard), 1e-9, 0, "hard=True forward (one-hot)"):
            return problem
        got = a.grads[0] if a.grads else None
        if got is None:
            return "no gradient reaches the logits: return y_hard + y - y.detach()"
        if kept["grad"] is not None and compare(got, kept["grad"], 1e-10, 1e-8) is None:
            return None
        return compare(got, plain(grad), 1e-10, 1e-8, "gradient of the hard sample (must equal the relaxed one)")
    return [decided(Call("gumbel_softmax", logits, tau, g, grad=(0,), cotangent=cot), relaxed),
            decided(Call("gumbel_softmax", logits, tau, g, True, grad=(0,), cotangent=cot), straight_through)]


def _kl_uniform(logits: torch.Tensor) -> torch.Tensor:
    logq = torch.log_softmax(logits.double(), -1)
    return (logq.exp() * (logq + math.log(logits.shape[-1]))).sum(-1)


@SUITE.case("test_kl_uniform", draws=2)
def kl_uniform_values(rng):
    calls = []
    for ndim in NDIMS:
        logits = 4 * normal(rng, *_shape(rng, ndim, last=12), dtype=F64)
        calls.append(Call("kl_to_uniform", logits, expect=_kl_uniform(logits), atol=1e-10))
    return calls


@SUITE.case("test_kl_uniform")
def kl_uniform_huge_logits(rng):
    """One logit 1000 above the others: the KL is log K (no overflow)."""
    k, n = int(rng.integers(2, 10)), int(rng.integers(1, 5))
    logits = normal(rng, n, k, dtype=F64)
    logits[torch.arange(n), torch.from_numpy(rng.integers(0, k, n))] += 1000.0
    return Call("kl_to_uniform", logits, expect=torch.full((n,), math.log(k), dtype=F64), atol=1e-6)


# ---------------------------------------------------------------- Part 11: masked convolution

def _mask(kind: str, k: int) -> torch.Tensor:
    """The lecture's causal mask (k, k): rows above the centre, and the centre row left of (A) / up to (B) it."""
    m = torch.zeros(k, k)
    c = k // 2
    m[:c] = 1
    m[c, :c + (kind == "B")] = 1
    return m


def _layer_args(rng, kernels=(3, 5, 7, 13)):
    """kind, in and out channels, kernel size (3 and more: a 1x1 mask of type B hides nothing)."""
    kind, k = ("A", "B")[int(rng.integers(0, 2))], int(rng.choice(kernels))
    return kind, int(rng.integers(1, 4)), int(rng.integers(1, 4)), k


def _mask_check(kind: str, k: int):
    """The student's `mask` buffer, broadcast to the weight's shape, equals the reference mask."""
    def check(a):
        if "mask" not in (a.params or {}):
            return "no buffer named `mask`: register it with self.register_buffer(\"mask\", ...)"
        mask, weight = np.asarray(a.params["mask"]), np.asarray(a.params["weight"])
        try:
            got = np.broadcast_to(mask, weight.shape)
        except ValueError:
            return f"the mask of shape {mask.shape} does not broadcast to the weight's shape {weight.shape}"
        return compare(got, np.broadcast_to(_mask(kind, k).numpy(), weight.shape), 0, 0, f"mask {kind} ({k}x{k})")
    return check


@SUITE.case("test_masked_conv_mask", draws=3)
def mask_of_each_type(rng):
    _, cin, cout, k = _layer_args(rng, kernels=(1, 3, 5, 7, 13))
    return [New("MaskedConv2d", kind, cin, cout, k, seed=int(rng.integers(0, 1000)), method="",
                check=_mask_check(kind, k), label=f"MaskedConv2d({kind!r}, {cin}, {cout}, {k}).mask") for kind in "AB"]


@SUITE.case("test_masked_conv_mask")
def bad_arguments_raise(rng):
    kind, k = ("A", "B")[int(rng.integers(0, 2))], 2 * int(rng.integers(1, 4))
    return [New("MaskedConv2d", kind, 1, 1, k + 1, method="", check=_mask_check(kind, k + 1),
                label=f"MaskedConv2d({kind!r}, 1, 1, {k + 1}).mask"),
            New("MaskedConv2d", "C", 1, 1, 3, method="", raises=ValueError, label="MaskedConv2d('C', 1, 1, 3)"),
            New("MaskedConv2d", kind, 1, 1, k, method="", raises=ValueError, label=f"MaskedConv2d({kind!r}, 1, 1, {k})")]


def _masked_conv(params: dict, x: torch.Tensor, kind: str, k: int) -> torch.Tensor:
    """The masked convolution with the student's weight and bias and the reference mask."""
    w, b = (torch.from_numpy(np.asarray(params[n], np.float32)) for n in ("weight", "bias"))
    return F.conv2d(x, w * _mask(kind, k), b, padding=k // 2)


def _later(kind: str, h: int, w: int, i: int, j: int) -> torch.Tensor:
    """(h, w) booleans: the input positions output (i, j) must not see (at or after it for A, after it for B)."""
    order = torch.arange(h * w).view(h, w)
    return order >= i * w + j if kind == "A" else order > i * w + j


def _dependence_probe(rng, kind: str) -> New:
    """Autograd probe: d out[n, o, i, j] / d x is zero at (i, j) and after it (type A), after it (type B), and equals
    the gradient of the masked convolution with the layer's own weights."""
    _, cin, cout, k = _layer_args(rng)
    n, h, w = int(rng.integers(1, 3)), int(rng.integers(4, 9)), int(rng.integers(4, 9))
    x = normal(rng, n, cin, h, w)
    s, o, i, j = int(rng.integers(0, n)), int(rng.integers(0, cout)), int(rng.integers(0, h)), int(rng.integers(0, w))
    cot = torch.zeros(n, cout, h, w)
    cot[s, o, i, j] = 1.0

    def check(a):
        g = a.grads[0] if a.grads else None
        if g is None:
            return "no gradient reaches the input"
        seen = np.abs(np.asarray(g)).sum((0, 1)) > 0
        bad = seen & _later(kind, h, w, i, j).numpy()
        if bad.any():
            r, c = (int(v) for v in np.argwhere(bad)[0])
            return f"not causal: the output at ({i}, {j}) changes with the input at ({r}, {c}) (type {kind})"
        leaf = x.clone().requires_grad_()
        (want,) = torch.autograd.grad((_masked_conv(a.params, leaf, kind, k) * cot).sum(), leaf)
        return compare(g, plain(want), 1e-5, 1e-4, "d output / d input")
    return New("MaskedConv2d", kind, cin, cout, k, seed=int(rng.integers(0, 1000)), inputs=(x,), grad_inputs=(0,),
               cotangent=cot, expect=lambda a: _masked_conv(a.params, x, kind, k), check=check, atol=1e-5)


@SUITE.case("test_masked_conv_causal", draws=2)
def output_depends_only_on_earlier_inputs(rng):
    return [_dependence_probe(rng, kind) for kind in "AB"]


def _perturbation_probe(rng, kind: str) -> list[New]:
    """Perturbation probe: change every input at position t and after (A) / after t (B); outputs up to t stay."""
    _, cin, cout, k = _layer_args(rng)
    h, w, seed = int(rng.integers(4, 9)), int(rng.integers(4, 9)), int(rng.integers(0, 1000))
    i, j = int(rng.integers(0, h)), int(rng.integers(0, w))
    x = normal(rng, 2, cin, h, w)
    changed = torch.where(_later(kind, h, w, i, j), x + 3 * normal(rng, 2, cin, h, w), x)
    upto = ~(torch.arange(h * w).view(h, w) > i * w + j)
    kept = {}

    def first(a):
        kept["out"] = np.asarray(a.out) if a.ok else None
        if problem := _raised(a):
            return problem
        return compare(a.out, plain(_masked_conv(a.params, x, kind, k)), 1e-5, 1e-4, "output")

    def second(a):
        if problem := _raised(a):
            return problem
        before, after = kept["out"], np.asarray(a.out)
        if before.shape != after.shape or before.ndim != 4:
            return f"output: expected shape {(2, cout, h, w)}, got {after.shape}"
        moved = np.abs(after - before).max((0, 1)) > 1e-5
        bad = moved & upto.numpy()
        if bad.any():
            r, c = (int(v) for v in np.argwhere(bad)[0])
            return f"not causal: changing inputs at and after ({i}, {j}) changed the output at ({r}, {c}) (type {kind})"
        return None
    make = lambda inp: New("MaskedConv2d", kind, cin, cout, k, seed=seed, inputs=(inp,))  # noqa: E731
    return [decided(make(x), first), decided(make(changed), second)]


@SUITE.case("test_masked_conv_causal")
def later_inputs_do_not_change_the_output(rng):
    return _perturbation_probe(rng, "A") + _perturbation_probe(rng, "B")


@SUITE.case("test_masked_conv_causal")
def mask_applied_at_every_call(rng):
    """Weights loaded without zeros under the mask (as after training steps): forward still masks them (both types)."""
    calls = []
    for kind in "AB":
        _, cin, cout, k = _layer_args(rng)
        state = {"weight": normal(rng, cout, cin, k, k), "bias": normal(rng, cout), "mask": _mask(kind, k)[None, None]}
        x = normal(rng, 1, cin, 6, 7)
        calls.append(New("MaskedConv2d", kind, cin, cout, k, state=state, inputs=(x,),
                         expect=F.conv2d(x, state["weight"] * state["mask"], state["bias"], padding=k // 2), atol=1e-5))
    return calls
