"""a09's hidden cases: "no Python loops over boxes" is a rule on the submitted source (loops in GIoU or in a
helper it calls score 0), torchvision is refused, and sections 2 and 4 are scored on their own (issue 13: they
call the student's GIoU). Each wrong notebook loses exactly its part."""

import pytest
import torch
import torchvision

from tests.wrong_notebooks import assert_only_part_loses, solution, with_definition

from course_utils.layout import course_root
from course_utils.grader.cases import load_suite, rule_violations
from course_utils.grader.check import cell_points, student_sources

NAME = "a09_detr"
SUITE = load_suite(course_root() / "cases" / f"{NAME}.py")

LOOPED_GIOU = '''
    def generalized_box_iou(a, b, eps=1e-7):
        rows = []
        for i in range(len(a)):
            rows.append(pair(a[i:i + 1], b, eps))
        return torch.cat([r[0] for r in rows]), torch.cat([r[1] for r in rows])


    def pair(a, b, eps):
        area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
        area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        inter = (torch.min(a[:, None, 2:], b[None, :, 2:]) - torch.max(a[:, None, :2], b[None, :, :2])).clamp(min=0).prod(-1)
        union = area_a[:, None] + area_b[None, :] - inter
        hull = (torch.max(a[:, None, 2:], b[None, :, 2:]) - torch.min(a[:, None, :2], b[None, :, :2])).prod(-1)
        return inter / (union + eps) - (hull - union) / (hull + eps), inter / (union + eps)
    '''

WRONG = {
    "GIoU with a loop over boxes (right values, refused)": ("q1_test", LOOPED_GIOU),
    "GIoU through torchvision (refused)": ("q1_test", '''
        def generalized_box_iou(a, b, eps=1e-7):
            from torchvision.ops import box_iou, generalized_box_iou as tv_giou
            return tv_giou(a, b), box_iou(a, b)
        '''),
    "GIoU without clamping the intersection (sections 2 and 4 keep their points)": ("q1_test", '''
        def generalized_box_iou(a, b, eps=1e-7):
            area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
            area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
            inter = (torch.min(a[:, None, 2:], b[None, :, 2:]) - torch.max(a[:, None, :2], b[None, :, :2])).prod(-1)
            union = area_a[:, None] + area_b[None, :] - inter
            hull = (torch.max(a[:, None, 2:], b[None, :, 2:]) - torch.min(a[:, None, :2], b[None, :, :2])).prod(-1)
            iou = inter / (union + eps)
            return iou - (hull - union) / (hull + eps), iou
        '''),
    "matching cost with the L1 distance on corner boxes": ("q2_test", '''
        def matching_cost(logits, boxes, labels, tgt_boxes, w_class=1.0, w_l1=5.0, w_giou=2.0):
            a, b = cxcywh_to_xyxy(boxes), cxcywh_to_xyxy(tgt_boxes)
            return (-w_class * logits.softmax(-1)[:, labels] + w_l1 * torch.cdist(a, b, p=1)
                    - w_giou * generalized_box_iou(a, b)[0])
        '''),
    "assignment sorted by object instead of prediction": ("q3_test", '''
        def hungarian_match(cost):
            rows, cols = linear_sum_assignment(cost.detach().cpu().numpy())
            order = cols.argsort()
            return torch.as_tensor(rows[order], dtype=torch.int64), torch.as_tensor(cols[order], dtype=torch.int64)
        '''),
    "set loss averaged over predictions instead of objects": ("q4_test", '''
        def set_loss(logits, boxes, targets, indices, eos_coef=0.1, w_class=1.0, w_l1=5.0, w_giou=2.0):
            B, Q, K = logits.shape
            batch_i = torch.cat([torch.full_like(p, b) for b, (p, _) in enumerate(indices)])
            pred_i = torch.cat([p for p, _ in indices])
            target_classes = torch.full((B, Q), K - 1, dtype=torch.long)
            target_classes[batch_i, pred_i] = torch.cat([t["labels"][ti] for t, (_, ti) in zip(targets, indices)])
            weight = torch.ones(K, dtype=logits.dtype)
            weight[-1] = eos_coef
            loss_class = F.cross_entropy(logits.reshape(B * Q, K), target_classes.reshape(-1), weight=weight)
            matched = boxes[batch_i, pred_i]
            tgt = torch.cat([t["boxes"][ti] for t, (_, ti) in zip(targets, indices)]).to(boxes.dtype)
            giou = generalized_box_iou(cxcywh_to_xyxy(matched), cxcywh_to_xyxy(tgt))[0].diagonal()
            return w_class * loss_class + (w_l1 * (matched - tgt).abs().sum() + w_giou * (1 - giou).sum()) / (B * Q)
        '''),
    # edges now asked in every run (issue 18)
    "GIoU of an empty set in float32, whatever the boxes' dtype": ("q1_test", '''
        def generalized_box_iou(a, b, eps=1e-7):
            if len(a) == 0 or len(b) == 0:
                return torch.zeros(len(a), len(b)), torch.zeros(len(a), len(b))
            area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
            area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
            inter = (torch.min(a[:, None, 2:], b[None, :, 2:]) - torch.max(a[:, None, :2], b[None, :, :2])).clamp(min=0).prod(-1)
            union = area_a[:, None] + area_b[None, :] - inter
            hull = (torch.max(a[:, None, 2:], b[None, :, 2:]) - torch.min(a[:, None, :2], b[None, :, :2])).prod(-1)
            iou = inter / (union + eps)
            return iou - (hull - union) / (hull + eps), iou
        '''),
    "assignment of no objects as float indices": ("q3_test", '''
        def hungarian_match(cost):
            if cost.shape[1] == 0:
                return torch.zeros(0), torch.zeros(0)
            rows, cols = linear_sum_assignment(cost.detach().cpu().numpy())
            return torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)
        '''),
}


def test_every_test_cell_has_cases():
    assert sorted(SUITE.grade_ids()) == sorted(cell_points(solution(NAME)))


def test_reference_giou_is_torchvisions_up_to_eps():
    g = torch.Generator().manual_seed(0)
    p = torch.rand(40, 2, 2, generator=g, dtype=torch.float64) * 4 - 1
    boxes = torch.cat([p.min(1).values, p.max(1).values], 1)
    giou = SUITE.cases[0].build.__globals__["giou"]            # the cases' reference
    got, iou = giou(boxes[:25], boxes[25:])
    assert torch.allclose(got, torchvision.ops.generalized_box_iou(boxes[:25], boxes[25:]), atol=1e-6)
    assert torch.allclose(iou, torchvision.ops.box_iou(boxes[:25], boxes[25:]), atol=1e-6)


def test_rules_refuse_loops_and_torchvision_with_a_reason():
    assert rule_violations(SUITE.rules, student_sources(solution(NAME))) == {}
    for wrong, reason in (("GIoU with a loop over boxes (right values, refused)", "a for loop in `generalized_box_iou`"),
                          ("GIoU through torchvision (refused)", "uses `torchvision.ops.")):
        message = rule_violations(SUITE.rules, student_sources(with_definition(solution(NAME), WRONG[wrong][1])))
        assert reason in message["q1_test"], message


@pytest.mark.slow
@pytest.mark.parametrize("wrong", list(WRONG))
def test_wrong_part_loses_its_points(wrong):
    part, source = WRONG[wrong]
    assert_only_part_loses(NAME, with_definition(solution(NAME), source), part)
