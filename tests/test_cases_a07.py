"""a07's hidden cases catch what issue 13 names: attention that wraps nn.MultiheadAttention (refused on the
source), and the new parts (class token and position embeddings, relative position index, patch merging) when
they are wrong. A wrong window_partition costs Q3 only: the shifted-window mask that calls it keeps its points."""

import pytest

from tests.wrong_notebooks import assert_only_part_loses, solution, solution_source, with_definition

from course_utils.layout import course_root
from course_utils.grader.cases import load_suite, rule_violations
from course_utils.grader.check import cell_points, student_sources

NAME = "a07_vit"

WRAPPED_ATTENTION = '''
    def multi_head_attention(x, w_qkv, b_qkv, w_out, b_out, heads, allowed=None):
        mha = nn.MultiheadAttention(x.shape[-1], heads, batch_first=True).to(x.dtype)
        with torch.no_grad():
            mha.in_proj_weight.copy_(w_qkv)
            mha.in_proj_bias.copy_(b_qkv)
            mha.out_proj.weight.copy_(w_out)
            mha.out_proj.bias.copy_(b_out)
        mask = None if allowed is None else ~(allowed.repeat_interleave(heads, 0) if allowed.dim() == 3 else allowed)
        return mha(x, x, x, attn_mask=mask, need_weights=True, average_attn_weights=False)
    '''
ATTENTION = solution_source(NAME, "multi_head_attention")

WRONG = {
    "attention wrapping nn.MultiheadAttention": ("test_attention", WRAPPED_ATTENTION),
    "attention wrapping it under a split name (switched off while it runs)": ("test_attention", WRAPPED_ATTENTION.replace(
        "nn.MultiheadAttention(", 'getattr(torch.nn, "Multihead" + "Attention")(')),
    "windows in column-major order (the mask that uses them keeps its points)": ("test_windows", '''
        def window_partition(x, ws):
            B, H, W, C = x.shape
            x = x.reshape(B, H // ws, ws, W // ws, ws, C).permute(0, 3, 1, 2, 4, 5)
            return x.reshape(-1, ws, ws, C)
        '''),
    "class token without its position embedding": ("test_patch_embed", '''
        class PatchEmbed(nn.Module):
            def __init__(self, patch=7, dim=64, image=28, channels=1):
                super().__init__()
                n = (image // patch) ** 2
                self.embed = nn.Linear(channels * patch * patch, dim)
                self.cls = nn.Parameter(torch.zeros(1, 1, dim))
                self.pos = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)

            def forward(self, patches):
                z = self.embed(patches) + self.pos[:, 1:]
                return torch.cat([self.cls.expand(len(z), -1, -1), z], dim=1)
        '''),
    "relative index with dx and dy swapped": ("test_relative_bias", '''
        def relative_position_index(ws):
            yx = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
            rel = (yx[:, :, None] - yx[:, None, :]).permute(1, 2, 0) + ws - 1
            return rel[..., 1] * (2 * ws - 1) + rel[..., 0]
        '''),
    "patch merging in row-major order inside each 2x2 group": ("test_patch_merging", '''
        class PatchMerging(nn.Module):
            def __init__(self, dim, res):
                super().__init__()
                self.res = res
                self.norm = nn.LayerNorm(4 * dim)
                self.reduce = nn.Linear(4 * dim, 2 * dim, bias=False)

            def merge(self, x):
                B, _, C = x.shape
                x = x.reshape(B, self.res, self.res, C)
                x = torch.cat([x[:, 0::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 0::2], x[:, 1::2, 1::2]], dim=-1)
                return x.reshape(B, -1, 4 * C)

            def forward(self, x):
                return self.reduce(self.norm(self.merge(x)))
        '''),
    # conditions a draw once left to chance (issue 18): each loses its part under every run seed now
    "a (B, n, n) mask not unsqueezed to (B, 1, n, n)": ("test_attention", ATTENTION.replace(
        """        if allowed.dim() == 3:
            allowed = allowed[:, None]
""", "")),
    "attention scaled by sqrt(D), not sqrt(D / heads)": ("test_attention", ATTENTION.replace("math.sqrt(d)", "math.sqrt(D)")),
    "patches with the channels last": ("test_patchify", '''
        def patchify(x, p):
            B, C, H, W = x.shape
            x = x.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 3, 5, 1)
            return x.reshape(B, (H // p) * (W // p), C * p * p)
        '''),
}


def test_every_test_cell_has_cases():
    assert sorted(load_suite(course_root() / "cases" / f"{NAME}.py").grade_ids()) == sorted(cell_points(solution(NAME)))


@pytest.mark.parametrize("alias", ["from torch.nn import MultiheadAttention as Att",
                                   "sdpa = getattr(F, 'scaled_dot_product_attention')",
                                   "layer = nn.TransformerEncoderLayer(8, 2)"])
def test_attention_rule_refuses_renamed_imports_and_strings(alias):
    suite = load_suite(course_root() / "cases" / f"{NAME}.py")
    nb = with_definition(solution(NAME), f"def multi_head_attention(x, *a, allowed=None):\n    {alias}\n    return x")
    assert "test_attention" in rule_violations(suite.rules, student_sources(nb))
    assert rule_violations(suite.rules, student_sources(solution(NAME))) == {}


@pytest.mark.slow
@pytest.mark.parametrize("wrong", list(WRONG))
def test_wrong_part_loses_its_points(wrong):
    part, source = WRONG[wrong]
    assert_only_part_loses(NAME, with_definition(solution(NAME), source), part)
