"""a10's hidden cases score each part on its own (issue 13: l_simple calls the student's q_sample): a wrong
q_sample costs Part 2 only, while l_simple built on it keeps its points. The new DALL-E part catches a mask that is
not causal and samplers that drop tied logits or read the wrong position. Each wrong notebook loses exactly its part."""

import pytest

from tests.wrong_notebooks import assert_only_part_loses, solution, with_definition

from course_utils.layout import course_root
from course_utils.grader.cases import load_suite
from course_utils.grader.check import cell_points

NAME = "a10_diffusion"
SUITE = load_suite(course_root() / "cases" / f"{NAME}.py")

SAMPLER = '''
    def dalle_generate(model, prefix, gumbel, top_k=8):
        seq = prefix
        with torch.no_grad():
            for s in range(gumbel.shape[1]):
                logits = model(seq)[:, -1]
                kth = logits.topk(top_k, dim=-1).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
                token = (logits + gumbel[:, s]).argmax(-1, keepdim=True)
                seq = torch.cat([seq, token], 1)
        return seq[:, prefix.shape[1]:]
    '''

WRONG = {
    "alpha_bar shifted by one step": ("test_schedule", '''
        def alpha_bar_of(betas):
            return torch.cat([torch.ones(1, dtype=betas.dtype), torch.cumprod(1 - betas, 0)[:-1]])
        '''),
    "q_sample without square roots (l_simple that calls it keeps its points)": ("test_q_sample", '''
        def q_sample(x0, t, eps, alpha_bar):
            ab = alpha_bar.to(x0.dtype)[t].view(-1, *[1] * (x0.dim() - 1))
            return ab * x0 + (1 - ab) * eps
        '''),
    "L_simple summed instead of averaged": ("test_l_simple", '''
        def l_simple(model, x0, t, eps, alpha_bar):
            return ((model(q_sample(x0, t, eps, alpha_bar), t) - eps) ** 2).sum()
        '''),
    "L_simple that cuts the graph": ("test_l_simple", '''
        def l_simple(model, x0, t, eps, alpha_bar):
            return torch.tensor(F.mse_loss(model(q_sample(x0, t, eps, alpha_bar), t), eps).item())
        '''),
    "reverse step that adds noise at t = 0": ("test_reverse_step", '''
        def reverse_step(model, x_t, t, z, betas):
            beta = betas[t].item()
            alpha_bar = torch.cumprod(1 - betas, 0)[t].item()
            eps = model(x_t, torch.full((len(x_t),), t, dtype=torch.long))
            return (x_t - beta / math.sqrt(1 - alpha_bar) * eps) / math.sqrt(1 - beta) + math.sqrt(beta) * z
        '''),
    "mask that hides the past instead of the future": ("test_causal_mask", '''
        def causal_mask(length):
            return torch.tril(torch.full((length, length), float("-inf")), -1)
        '''),
    "sampler that drops tied logits": ("test_dalle_generate", SAMPLER.replace(
        'logits = logits.masked_fill(logits < kth, float("-inf"))',
        'logits = torch.full_like(logits, float("-inf")).scatter(-1, logits.topk(top_k, dim=-1).indices, '
        'logits.topk(top_k, dim=-1).values)')),
    "sampler that reads the first position": ("test_dalle_generate", SAMPLER.replace("model(seq)[:, -1]", "model(seq)[:, 0]")),
    # conditions a draw once left to chance (issue 18): each loses its part under every run seed now
    "sampler that feeds the last token alone": ("test_dalle_generate", SAMPLER.replace("model(seq)[:, -1]",
                                                                                       "model(seq[:, -1:])[:, -1]")),
    "sampler that feeds the prefix only": ("test_dalle_generate", SAMPLER.replace("model(seq)[:, -1]", "model(prefix)[:, -1]")),
    "reverse step without noise at t <= 1": ("test_reverse_step", '''
        def reverse_step(model, x_t, t, z, betas):
            beta = betas[t].item()
            alpha_bar = torch.cumprod(1 - betas, 0)[t].item()
            eps = model(x_t, torch.full((len(x_t),), t, dtype=torch.long))
            mean = (x_t - beta / math.sqrt(1 - alpha_bar) * eps) / math.sqrt(1 - beta)
            return mean + math.sqrt(beta) * z if t > 1 else mean
        '''),
    "q_sample with the first example's t for the whole batch": ("test_q_sample", '''
        def q_sample(x0, t, eps, alpha_bar):
            ab = alpha_bar.to(x0.dtype)[t[0]]
            return ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        '''),
}


def test_every_test_cell_has_cases_and_no_rule_is_needed():
    assert sorted(SUITE.grade_ids()) == sorted(cell_points(solution(NAME)))
    assert SUITE.rules == []


@pytest.mark.slow
@pytest.mark.parametrize("wrong", list(WRONG))
def test_wrong_part_loses_its_points(wrong):
    part, source = WRONG[wrong]
    assert_only_part_loses(NAME, with_definition(solution(NAME), source), part)
