"""a08's hidden cases score each part on its own (issue 13: Q4 calls the student's clip_logits): a clip_logits
that forgets to normalise the text embeddings costs section 1 only, while zero_shot_predict built on it keeps
its points. Wrong zero-shot predictions, a one-sided loss and a detached graph each lose their own part."""

import pytest

from tests.wrong_notebooks import assert_only_part_loses, solution, with_definition

from course_utils.layout import course_root
from course_utils.grader.cases import load_suite
from course_utils.grader.check import cell_points

NAME = "a08_clip"

WRONG = {
    "clip_logits without normalising the texts (zero_shot_predict keeps its points)": ("q1_test", '''
        def clip_logits(image_emb, text_emb, log_scale):
            return log_scale.exp().clamp(max=100.0) * (F.normalize(image_emb, dim=-1) @ text_emb.T)
        '''),
    "clip_logits that cuts the graph": ("q1_test", '''
        def clip_logits(image_emb, text_emb, log_scale):
            I = F.normalize(image_emb, dim=-1).detach()
            T = F.normalize(text_emb, dim=-1).detach()
            return min(math.exp(float(log_scale)), 100.0) * (I @ T.T)
        '''),
    "a loss over the rows only": ("q2_test", '''
        def symmetric_clip_loss(logits):
            return F.cross_entropy(logits, torch.arange(logits.shape[0]))
        '''),
    "zero-shot by dot product, without normalising": ("q4_test", '''
        def zero_shot_predict(image_emb, class_emb, log_scale):
            logits = log_scale.exp().clamp(max=100.0) * (image_emb @ class_emb.T)
            return logits.argmax(dim=1), logits.softmax(dim=1)
        '''),
    # conditions a draw once left to chance (issue 18): each loses its part under every run seed now
    "zero-shot without the clip of the scale": ("q4_test", '''
        def zero_shot_predict(image_emb, class_emb, log_scale):
            logits = log_scale.exp() * (F.normalize(image_emb, dim=-1) @ F.normalize(class_emb, dim=-1).T)
            return logits.argmax(dim=1), logits.softmax(dim=1)
        '''),
    "ensemble normalised after the mean only": ("q3_test", '''
        def ensemble_prompts(text_emb):
            return F.normalize(text_emb.mean(0), dim=-1)
        '''),
}


def test_every_test_cell_has_cases():
    assert sorted(load_suite(course_root() / "cases" / f"{NAME}.py").grade_ids()) == sorted(cell_points(solution(NAME)))


@pytest.mark.slow
@pytest.mark.parametrize("wrong", list(WRONG))
def test_wrong_part_loses_its_points(wrong):
    part, source = WRONG[wrong]
    assert_only_part_loses(NAME, with_definition(solution(NAME), source), part)
