"""a11's hidden cases catch what the assignment teaches: a seeded, class-balanced few-shot draw (not the global
random generator, not the first k of each class), a body that stays frozen even when the optimizer holds its
parameters with momentum and weight decay, and one learning rate per parameter group. Each wrong notebook below is
wrong in one or two unrelated parts; exactly those lose points, every other part keeps all of its points."""
import functools

import pytest

from tests.wrong_notebooks import assert_only_part_loses, solution, with_definition

from course_utils.layout import course_root
from course_utils.grader.cases import load_suite
from course_utils.grader.check import cell_points

NAME = "a11_transfer_learning"


def _split(draw: str, ending: str = ".sort().values") -> str:
    """few_shot_split as in the solution, the examples of a class drawn by `draw`, the result ending in `ending`."""
    return f'''
def few_shot_split(labels, k, seed):
    if k < 1:
        raise ValueError("k must be at least 1")
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        if len(idx) < k:
            raise ValueError(f"class {{c}} has too few examples")
        chosen.append(idx[{draw}])
    return torch.cat(chosen){ending}
'''


def _step(signature: str, optimizer: str, before_step: str = "", returned: str = "loss.item()") -> str:
    """A training step `def signature:` that builds `optimizer` (or is given one), runs `before_step` after backward."""
    return f'''
def {signature}:
    {optimizer}
    loss = F.cross_entropy(head(body(x)), y)
    optimizer.zero_grad()
    loss.backward()
    {before_step or "pass"}
    optimizer.step()
    return {returned}
'''


SPLIT_GLOBAL_RNG = _split("torch.randperm(len(idx))[:k]")                  # ignores the seed
SPLIT_FIRST_K = _split(":k")                                               # not random
SPLIT_UNSORTED = _split("torch.randperm(len(idx), generator=g)[:k]", ending="")
FREEZE_EVAL_ONLY = '''
def freeze(module):
    return module.eval()
'''
PROBE_STEP_ZERO_GRADIENT = _step("probe_step(body, head, optimizer, x, y)", "pass",
                                 before_step="[p.grad.zero_() for p in body.parameters()]")
FINETUNE_ONE_RATE = _step("finetune_step(body, head, x, y, lr_body, lr_head)",
                          "optimizer = torch.optim.SGD([*body.parameters(), *head.parameters()], lr=lr_head)")
FINETUNE_LOSS_AFTER = _step("finetune_step(body, head, x, y, lr_body, lr_head)",
                            "optimizer = torch.optim.SGD(param_groups(body, head, lr_body, lr_head))",
                            returned="F.cross_entropy(head(body(x)), y).item()")
PARAM_GROUPS_COPIES = '''
def param_groups(body, head, lr_body, lr_head):
    return [{"params": [p.detach().clone() for p in body.parameters()], "lr": lr_body},
            {"params": [p.detach().clone() for p in head.parameters()], "lr": lr_head}]
'''
# freeze without eval mode: the hidden bodies once held no BatchNorm or Dropout, so it kept its points (issue 18)
FREEZE_WITHOUT_EVAL = '''
def freeze(module):
    for p in module.parameters():
        p.requires_grad_(False)
    return module
'''
FREEZE_BATCH_NORM_ONLY = FREEZE_WITHOUT_EVAL.replace("    return module", """    for m in module.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.eval()
    return module""")

WRONG = {  # name -> (replacement definitions, parts that must lose points)
    "split with the global generator; one learning rate for both groups":
        ([SPLIT_GLOBAL_RNG, FINETUNE_ONE_RATE], ["test_few_shot_split", "test_finetune_step"]),
    "first k of each class; freeze without requires_grad_(False)":
        ([SPLIT_FIRST_K, FREEZE_EVAL_ONLY], ["test_few_shot_split", "test_probe_step"]),
    "unsorted split; a zero gradient instead of a frozen body":
        ([SPLIT_UNSORTED, PROBE_STEP_ZERO_GRADIENT], ["test_few_shot_split", "test_probe_step"]),
    "param_groups of detached copies": ([PARAM_GROUPS_COPIES], ["test_finetune_step"]),
    "finetune_step returns the loss after the update": ([FINETUNE_LOSS_AFTER], ["test_finetune_step"]),
    "freeze without eval mode": ([FREEZE_WITHOUT_EVAL], ["test_probe_step"]),
    "freeze puts BatchNorm in eval mode, Dropout stays on": ([FREEZE_BATCH_NORM_ONLY], ["test_probe_step"]),
}


def test_every_test_cell_has_cases():
    assert sorted(load_suite(course_root() / "cases" / f"{NAME}.py").grade_ids()) == sorted(cell_points(solution(NAME)))


def test_points_match_the_intro_table():
    nb = solution(NAME)
    assert cell_points(nb) == {"test_few_shot_split": 3.0, "test_probe_step": 3.0, "test_finetune_step": 3.0}
    written = [c for c in nb.cells if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("grade")]
    assert [c.metadata["nbgrader"]["points"] for c in written] == [3]
    assert "9 autograded + 3 for the written answers = 12" in nb.cells[0].source


@pytest.mark.slow
def test_solution_scores_full_marks():
    assert_only_part_loses(NAME, solution(NAME), [])


@pytest.mark.slow
@pytest.mark.parametrize("wrong", list(WRONG))
def test_wrong_parts_lose_their_points_and_only_those(wrong):
    sources, parts = WRONG[wrong]
    assert_only_part_loses(NAME, functools.reduce(with_definition, sources, solution(NAME)), parts)
