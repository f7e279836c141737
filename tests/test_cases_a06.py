"""a06's hidden cases catch what issue 13 names: a contrastive loss without (or with a mis-squared) margin term,
and a normalized softmax head that forgets to normalise the class centroids. Each wrong notebook loses exactly
that part; every other part keeps its points."""

import pytest

from tests.wrong_notebooks import assert_only_part_loses, solution, with_definition

from course_utils.layout import course_root
from course_utils.grader.cases import load_suite
from course_utils.grader.check import cell_points

NAME = "a06_metric_learning"

WRONG = {
    "contrastive without the margin term": ("test_contrastive", '''
        def contrastive_loss(e1, e2, same, alpha=1.0):
            d = (e1 - e2).norm(dim=1)
            return same.to(d.dtype) * d**2
        '''),
    "contrastive with an unsquared hinge": ("test_contrastive", '''
        def contrastive_loss(e1, e2, same, alpha=1.0):
            d = (e1 - e2).norm(dim=1)
            y = same.to(d.dtype)
            return y * d**2 + (1 - y) * torch.clamp(alpha - d, min=0)
        '''),
    "contrastive with the squared distance inside the hinge": ("test_contrastive", '''
        def contrastive_loss(e1, e2, same, alpha=1.0):
            d2 = ((e1 - e2) ** 2).sum(1)
            y = same.to(d2.dtype)
            return y * d2 + (1 - y) * torch.clamp(alpha - d2, min=0) ** 2
        '''),
    "normalized softmax that does not normalise W": ("test_normface", '''
        class MarginHead(nn.Module):
            def __init__(self, dim, n_classes, margins=None, s=16.0):
                super().__init__()
                if margins is not None and tuple(margins) != (1.0, 0.0, 0.0):
                    raise ValueError("margins")
                self.W = nn.Parameter(torch.randn(n_classes, dim) * 0.1)
                self.b = nn.Parameter(torch.zeros(n_classes)) if margins is None else None
                self.margins, self.s = margins, s

            def forward(self, e, y):
                if self.margins is None:
                    return e @ self.W.T + self.b
                return self.s * F.normalize(e, dim=1) @ self.W.T
        '''),
    # a condition a draw once left to chance (issue 18): easy_margin was on in 40% of the draws
    "ArcFace that ignores easy_margin": ("test_arcface", '''
        def arcface_logits(cos, y, s=16.0, m=0.5, easy_margin=False):
            c = cos.gather(1, y[:, None]).clamp(-1 + 1e-7, 1 - 1e-7)
            phi = c * math.cos(m) - torch.sqrt(1 - c**2) * math.sin(m)
            target = torch.where(c > math.cos(math.pi - m), phi, c - m * math.sin(m))
            return s * cos.scatter(1, y[:, None], target)
        '''),
    "ArcFace's easy margin kept past pi - m": ("test_arcface", '''
        def arcface_logits(cos, y, s=16.0, m=0.5, easy_margin=False):
            c = cos.gather(1, y[:, None]).clamp(-1 + 1e-7, 1 - 1e-7)
            phi = c * math.cos(m) - torch.sqrt(1 - c**2) * math.sin(m)
            target = torch.where(c > math.cos(math.pi - m), phi, c - m * math.sin(m))
            if easy_margin:
                target = torch.where(c > 0, phi, target)
            return s * cos.scatter(1, y[:, None], target)
        '''),
    "contrastive with 1 - same (refused on bool labels)": ("test_contrastive", '''
        def contrastive_loss(e1, e2, same, alpha=1.0):
            d = (e1 - e2).norm(dim=1)
            return same * d**2 + (1 - same) * torch.clamp(alpha - d, min=0) ** 2
        '''),
}


def test_every_test_cell_has_cases():
    release = solution(NAME)
    assert sorted(load_suite(course_root() / "cases" / f"{NAME}.py").grade_ids()) == sorted(cell_points(release))


@pytest.mark.slow
@pytest.mark.parametrize("wrong", list(WRONG))
def test_wrong_part_loses_its_points(wrong):
    part, source = WRONG[wrong]
    assert_only_part_loses(NAME, with_definition(solution(NAME), source), part)
