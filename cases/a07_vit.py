"""Hidden cases of a07_vit (grader side: never released, never sent to a student's kernel).

Every input is drawn from the run's secret seed; every expected value is computed here, in the grader's process,
by PyTorch's own layers (nn.MultiheadAttention, F.scaled_dot_product_attention, F.unfold, nn.LayerNorm) or by
brute-force loops over tokens and windows.

What a case exists to test is there in every run: batches of two or more (a per-example mask, class token or
window order that only works for one image), two heads or more, patches of 2 pixels or more over 2 or 3
channels, maps of several windows in both directions.
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_utils.grader.cases import Call, New, Peek, Suite, matches_any, normal

SUITE = Suite("a07_vit")
ATTENTION = ("torch.nn.MultiheadAttention", "torch.nn.modules.activation.MultiheadAttention",
             "torch.nn.functional.scaled_dot_product_attention", "torch.nn.functional.multi_head_attention_forward",
             "torch.nn.attention", "torch._native_multi_head_attention", "torch._scaled_dot_product_attention_math",
             "torch._scaled_dot_product_flash_attention", "torch._scaled_dot_product_flash_attention_for_cpu",
             "torch._scaled_dot_product_efficient_attention", "torch._scaled_dot_product_cudnn_attention",
             "torch._C._nn.scaled_dot_product_attention", "torch.ops.aten.scaled_dot_product_attention",
             "torch.ops.aten._scaled_dot_product_flash_attention_for_cpu", "torch.ops.aten._native_multi_head_attention",
             "torch.ops.aten._scaled_dot_product_attention_math", "torch.nn.Transformer", "torch.nn.TransformerEncoder",
             "torch.nn.TransformerEncoderLayer", "torch.nn.TransformerDecoder", "torch.nn.TransformerDecoderLayer",
             "torch.nn.modules.transformer")
SUITE.rule("test_attention", ATTENTION, "Q2 asks for multi-head attention written out, without PyTorch's attention "
           "(nn.MultiheadAttention, F.scaled_dot_product_attention, nn.Transformer* layers or their private variants).")
OFF = ("torch.nn.functional.scaled_dot_product_attention", "torch.nn.functional.multi_head_attention_forward",
       "torch.nn.MultiheadAttention", "torch.nn.modules.activation.MultiheadAttention",
       "torch._C._nn.scaled_dot_product_attention", "torch._native_multi_head_attention",
       "torch.ops.aten._scaled_dot_product_flash_attention_for_cpu", "torch.ops.aten._scaled_dot_product_attention_math",
       "torch.ops.aten._native_multi_head_attention")


# ---------------------------------------------------------------- Q1: patchify

@SUITE.case("test_patchify", draws=3)
def patches_of_random_images(rng):
    p, C = int(rng.choice([2, 3, 4, 7])), int(rng.integers(2, 4))       # the order inside a patch matters
    rows = int(rng.integers(1, 5))
    H, W = p * rows, p * (rows + int(rng.integers(1, 3)))               # non-square maps, a single row included
    x = normal(rng, int(rng.integers(2, 4)), C, H, W)
    return Call("patchify", x, p, expect=F.unfold(x, kernel_size=p, stride=p).transpose(1, 2), atol=0, kind="tensor")


@SUITE.case("test_patchify")
def patchify_keeps_the_graph(rng):
    x = normal(rng, 2, 3, 8, 12, dtype=torch.float64)
    cot = normal(rng, 2, 6, 48, dtype=torch.float64)
    ref = F.unfold(x, kernel_size=4, stride=4).transpose(1, 2)
    grad = F.fold(cot.transpose(1, 2), (8, 12), kernel_size=4, stride=4)       # the adjoint of unfold
    return Call("patchify", x, 4, expect=ref, grad=(0,), cotangent=cot, expect_grad=(grad,), atol=1e-12)


# ---------------------------------------------------------------- Q2: multi-head attention

def _mha_weights(rng, D: int, dtype) -> list[torch.Tensor]:
    """w_qkv (3D, D), b_qkv (3D,), w_out (D, D), b_out (D,), scaled like nn.MultiheadAttention's init."""
    s = 1 / math.sqrt(D)
    return [normal(rng, 3 * D, D, dtype=dtype) * s, normal(rng, 3 * D, dtype=dtype) / 3,
            normal(rng, D, D, dtype=dtype) * s, normal(rng, D, dtype=dtype) / 3]


def _reference_mha(x, w, heads, allowed=None):
    """nn.MultiheadAttention with these weights (per-head weights); with a mask, F.scaled_dot_product_attention."""
    B, n, D = x.shape
    mha = nn.MultiheadAttention(D, heads, batch_first=True).to(x.dtype)
    with torch.no_grad():
        mha.in_proj_weight.copy_(w[0])
        mha.in_proj_bias.copy_(w[1])
        mha.out_proj.weight.copy_(w[2])
        mha.out_proj.bias.copy_(w[3])
        if allowed is None:
            return mha(x, x, x, need_weights=True, average_attn_weights=False)
        q, k, v = (x @ w[0].T + w[1]).reshape(B, n, 3, heads, D // heads).permute(2, 0, 3, 1, 4)
        mask = allowed[:, None] if allowed.dim() == 3 else allowed
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(B, n, D)
        logits = (q @ k.transpose(-2, -1) / math.sqrt(D // heads)).masked_fill(~mask, float("-inf"))
        return out @ w[2].T + w[3], logits.softmax(-1)


@SUITE.case("test_attention", draws=3)
def attention_against_nn_multihead(rng):
    heads = int(rng.choice([2, 4, 8]))
    D, B, n = heads * int(rng.integers(1, 9)), int(rng.integers(2, 4)), int(rng.integers(2, 18))
    x, w = normal(rng, B, n, D), _mha_weights(rng, D, torch.float32)
    return Call("multi_head_attention", x, *w, heads, expect=_reference_mha(x, w, heads), atol=2e-5, disable=OFF)


@SUITE.case("test_attention", draws=2)
def attention_with_a_batch_of_masks(rng):
    """One (n, n) mask per example, B >= 2 (a (B, n, n) mask that is not unsqueezed to (B, 1, n, n) passed at B = 1)."""
    heads, B, n = int(rng.choice([1, 2, 3])), int(rng.integers(2, 5)), int(rng.integers(2, 12))
    D = heads * int(rng.integers(2, 6))
    x, w = normal(rng, B, n, D, dtype=torch.float64), _mha_weights(rng, D, torch.float64)
    allowed = torch.from_numpy(rng.random((B, n, n)) < 0.5) | torch.eye(n, dtype=torch.bool)
    allowed[0, 0] = torch.zeros(n, dtype=torch.bool)
    allowed[0, 0, n - 1] = True                       # a query that may attend to one key only
    return Call("multi_head_attention", x, *w, heads, kwargs={"allowed": allowed},
                expect=_reference_mha(x, w, heads, allowed), atol=1e-10, disable=OFF)


@SUITE.case("test_attention")
def attention_with_one_mask_for_the_batch(rng):
    heads, B, n, D = 2, 3, 9, 12
    x, w = normal(rng, B, n, D, dtype=torch.float64), _mha_weights(rng, D, torch.float64)
    allowed = torch.from_numpy(rng.random((n, n)) < 0.4) | torch.eye(n, dtype=torch.bool)
    return Call("multi_head_attention", x, *w, heads, allowed, expect=_reference_mha(x, w, heads, allowed),
                atol=1e-10, disable=OFF)


# ---------------------------------------------------------------- Q3: windows

def _windows(x: torch.Tensor, ws: int) -> torch.Tensor:
    """Windows by explicit slicing: image by image, row-major."""
    B, H, W, _ = x.shape
    return torch.stack([x[b, i:i + ws, j:j + ws] for b in range(B) for i in range(0, H, ws) for j in range(0, W, ws)])


def _window_shape(rng) -> tuple[int, int, int, int, int]:
    """B >= 2 images of 2 to 4 windows down and across (the window order shows), ws 1 to 5."""
    ws = int(rng.integers(1, 6))
    return int(rng.integers(2, 4)), ws * int(rng.integers(2, 5)), ws * int(rng.integers(2, 5)), int(rng.integers(1, 5)), ws


@SUITE.case("test_windows", draws=3)
def partition_random_maps(rng):
    B, H, W, C, ws = _window_shape(rng)
    x = normal(rng, B, H, W, C)
    return Call("window_partition", x, ws, expect=_windows(x, ws), atol=0, kind="tensor")


@SUITE.case("test_windows", draws=3)
def reverse_random_windows(rng):
    B, H, W, C, ws = _window_shape(rng)
    x = normal(rng, B, H, W, C)
    return Call("window_reverse", _windows(x, ws), ws, H, W, expect=x, atol=0, kind="tensor")


# ---------------------------------------------------------------- Q4: the shifted-window mask

def _neighbour_mask(H: int, W: int, ws: int, shift: int) -> torch.Tensor:
    """Allowed iff the two tokens of a rolled window are true neighbours in the original map (no wrap-around)."""
    n_w = (H // ws) * (W // ws)
    out = torch.zeros(n_w, ws * ws, ws * ws, dtype=torch.bool)
    for k in range(n_w):
        top, left = (k // (W // ws)) * ws, (k % (W // ws)) * ws
        cells = [((top + a + shift) % H, (left + b + shift) % W) for a in range(ws) for b in range(ws)]
        for i, (r1, c1) in enumerate(cells):
            for j, (r2, c2) in enumerate(cells):
                out[k, i, j] = abs(r1 - r2) < ws and abs(c1 - c2) < ws
    return out


def _region_labels(H: int, W: int, ws: int, shift: int) -> np.ndarray:
    """The paper's 9 region labels of the rolled map, (H, W)."""
    rows = np.digitize(np.arange(H), [H - ws, H - shift])
    cols = np.digitize(np.arange(W), [W - ws, W - shift])
    return rows[:, None] * 3 + cols[None, :]


def _mask_through(windows, H: int, W: int, ws: int, shift: int) -> torch.Tensor | None:
    """The region-label mask built with the student's own window_partition (given what it did to a map of
    token numbers), or None when that answer cannot be read as windows of token numbers."""
    n_w = (H // ws) * (W // ws)
    idx = np.asarray(windows, dtype=np.float64)
    if idx.shape != (n_w, ws, ws, 1) or not np.isfinite(idx).all() or (idx != np.round(idx)).any() \
            or idx.min() < 0 or idx.max() >= H * W:
        return None
    lab = torch.from_numpy(_region_labels(H, W, ws, shift).reshape(-1)[idx.astype(np.int64).reshape(n_w, -1)])
    return lab[:, :, None] == lab[:, None, :]


def _mask_case(H: int, W: int, ws: int, shift: int) -> list[Call]:
    seen: dict = {}
    peek = Peek("window_partition", torch.arange(H * W, dtype=torch.float32).reshape(1, H, W, 1), ws, store=seen)
    ref = _neighbour_mask(H, W, ws, shift)

    def judge(answer):
        if answer.out.dtype != bool:
            return f"expected a boolean mask, got dtype {answer.out.dtype.name}"
        own = _mask_through(seen["answer"].out, H, W, ws, shift) if seen["answer"].ok else None
        return matches_any(answer.out, [ref, own], 0, 0)
    return [peek, Call("shifted_window_mask", H, W, ws, shift, check=judge, kind="tensor")]


@SUITE.case("test_mask", draws=4)
def mask_against_true_neighbours(rng):
    ws = int(rng.integers(2, 8))
    return _mask_case(ws * int(rng.integers(2, 5)), ws * int(rng.integers(2, 5)), ws, int(rng.integers(1, ws)))


@SUITE.case("test_mask")
def mask_with_the_largest_shift(rng):
    ws = int(rng.integers(3, 7))
    return _mask_case(2 * ws, 3 * ws, ws, ws - 1)


# ---------------------------------------------------------------- Q5: the ViT input stage

def _embed_reference(state: dict, patches: torch.Tensor) -> torch.Tensor:
    """[cls; patches E^T + b] + pos, on the given parameters."""
    z = patches @ torch.as_tensor(state["embed.weight"]).T + torch.as_tensor(state["embed.bias"])
    cls = torch.as_tensor(state["cls"]).expand(len(z), -1, -1)
    return torch.cat([cls, z], dim=1) + torch.as_tensor(state["pos"])


def _embed_shapes(rng) -> tuple[int, int, int, int, int]:
    """patch, dim, image, channels, N."""
    patch = int(rng.choice([2, 4, 7]))
    image, channels, dim = patch * int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(2, 17))
    return patch, dim, image, channels, (image // patch) ** 2


@SUITE.case("test_patch_embed", draws=3, weight=2.0)
def embedding_with_given_parameters(rng):
    patch, dim, image, channels, n = _embed_shapes(rng)
    state = {"embed.weight": normal(rng, dim, channels * patch * patch) / patch, "embed.bias": normal(rng, dim),
             "cls": normal(rng, 1, 1, dim), "pos": normal(rng, 1, n + 1, dim)}
    patches = normal(rng, int(rng.integers(2, 4)), n, channels * patch * patch)    # the class token for each
    cot = normal(rng, len(patches), n + 1, dim)
    p = patches.clone().requires_grad_()
    ref = _embed_reference(state, p)
    (grad,) = torch.autograd.grad((ref * cot).sum(), p)
    return New("PatchEmbed", patch, dim, image, channels, seed=int(rng.integers(1 << 30)), state=state,
               inputs=(patches,), grad_inputs=(0,), cotangent=cot, expect=ref.detach(), expect_grad=(grad,), atol=1e-5,
               label=f"PatchEmbed({patch}, {dim}, {image}, {channels}) with given cls / pos / embed, forward")


@SUITE.case("test_patch_embed")
def embedding_with_its_own_initialisation(rng):
    patch, dim, image, channels, n = _embed_shapes(rng)
    patches = normal(rng, 2, n, channels * patch * patch)

    def own(answer):
        p = answer.params or {}
        want = {"embed.weight": (dim, channels * patch * patch), "embed.bias": (dim,), "cls": (1, 1, dim),
                "pos": (1, n + 1, dim)}
        got = {k: tuple(np.shape(v)) for k, v in p.items()}
        if got != want:
            raise ValueError(f"PatchEmbed must hold exactly {want}; it holds {got}")
        return _embed_reference({k: torch.from_numpy(np.asarray(v)) for k, v in p.items()}, patches)
    return New("PatchEmbed", patch, dim, image, channels, seed=int(rng.integers(1 << 30)), inputs=(patches,),
               expect=own, atol=1e-5, label=f"PatchEmbed({patch}, {dim}, {image}, {channels}), its own parameters")


@SUITE.case("test_patch_embed")
def class_token_and_positions_are_learned(rng):
    patch, dim, image, channels, n = _embed_shapes(rng)
    calls = []
    for name, shape in (("cls", (1, 1, dim)), ("pos", (1, n + 1, dim))):
        def learned(answer, name=name, shape=shape):
            if tuple(answer.out.shape) != shape:
                return f"{name}: expected shape {shape}, got {tuple(answer.out.shape)}"
            return None if answer.out.grad else f"{name} must be learned (an nn.Parameter that requires grad)"
        calls.append(New("PatchEmbed", patch, dim, image, channels, method="get_parameter", inputs=(name,),
                         check=learned, kind="tensor", label=f"PatchEmbed(...).get_parameter({name!r})"))
    return calls


# ---------------------------------------------------------------- Q6: relative position bias

def _relative_index(ws: int) -> torch.Tensor:
    """(dy + ws - 1) * (2 ws - 1) + (dx + ws - 1) for every (query, key) pair, by a loop over pairs."""
    cells = [(a, b) for a in range(ws) for b in range(ws)]
    return torch.tensor([[(yi - yj + ws - 1) * (2 * ws - 1) + (xi - xj + ws - 1) for (yj, xj) in cells]
                         for (yi, xi) in cells], dtype=torch.int64)


@SUITE.case("test_relative_bias", draws=3)
def index_against_a_loop_over_pairs(rng):
    ws = int(rng.integers(1, 9))
    return Call("relative_position_index", ws, expect=_relative_index(ws), atol=0, kind="tensor", dtype=True)


def _bias_call(rng, index: torch.Tensor, rows: int) -> Call:
    heads = int(rng.integers(1, 5))
    table, cot = normal(rng, rows, heads, dtype=torch.float64), normal(rng, heads, *index.shape, dtype=torch.float64)
    t = table.clone().requires_grad_()
    N = index.shape[0]
    ref = torch.stack([torch.stack([torch.stack([t[index[i, j], h] for j in range(N)]) for i in range(N)])
                       for h in range(heads)])
    (grad,) = torch.autograd.grad((ref * cot).sum(), t)
    return Call("relative_bias", table, index, expect=ref.detach(), grad=(0,), cotangent=cot, expect_grad=(grad,),
                atol=1e-12)


@SUITE.case("test_relative_bias", draws=2)
def bias_lookup_of_the_true_index(rng):
    ws = int(rng.integers(2, 6))
    return _bias_call(rng, _relative_index(ws), (2 * ws - 1) ** 2)


@SUITE.case("test_relative_bias")
def bias_lookup_of_any_index(rng):
    rows, N = int(rng.integers(2, 30)), int(rng.integers(1, 10))
    return _bias_call(rng, torch.from_numpy(rng.integers(0, rows, (N, N))), rows)


# ---------------------------------------------------------------- Q7: patch merging

def _merge_reference(x: torch.Tensor, res: int) -> torch.Tensor:
    """Token (r, c) of the merged map = [x(2r, 2c), x(2r+1, 2c), x(2r, 2c+1), x(2r+1, 2c+1)], by a loop."""
    B, _, C = x.shape
    g = x.reshape(B, res, res, C)
    half = res // 2
    return torch.stack([torch.cat([g[:, 2 * r, 2 * c], g[:, 2 * r + 1, 2 * c], g[:, 2 * r, 2 * c + 1],
                                   g[:, 2 * r + 1, 2 * c + 1]], -1) for r in range(half) for c in range(half)], 1)


def _merging_shapes(rng) -> tuple[int, int, int]:
    return int(rng.integers(2, 4)), 2 * int(rng.integers(1, 5)), int(rng.integers(1, 7))


@SUITE.case("test_patch_merging", draws=3)
def merge_groups_of_four(rng):
    B, res, C = _merging_shapes(rng)
    x = normal(rng, B, res * res, C)
    return New("PatchMerging", C, res, method="merge", inputs=(x,), expect=_merge_reference(x, res), atol=0,
               label=f"PatchMerging({C}, {res}).merge(<{B}x{res * res}x{C}>)")


@SUITE.case("test_patch_merging", draws=2, weight=2.0)
def merging_with_given_parameters(rng):
    B, res, C = _merging_shapes(rng)
    state = {"norm.weight": 1 + 0.3 * normal(rng, 4 * C), "norm.bias": 0.3 * normal(rng, 4 * C),
             "reduce.weight": normal(rng, 2 * C, 4 * C) / math.sqrt(4 * C)}
    x, cot = normal(rng, B, res * res, C), normal(rng, B, res * res // 4, 2 * C)
    xx = x.clone().requires_grad_()
    ref = F.layer_norm(_merge_reference(xx, res), (4 * C,), state["norm.weight"], state["norm.bias"]) @ state["reduce.weight"].T
    (grad,) = torch.autograd.grad((ref * cot).sum(), xx)
    return New("PatchMerging", C, res, state=state, inputs=(x,), grad_inputs=(0,), cotangent=cot,
               expect=ref.detach(), expect_grad=(grad,), atol=2e-5,
               label=f"PatchMerging({C}, {res}) with given norm / reduce, forward")
