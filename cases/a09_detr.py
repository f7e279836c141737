"""Hidden cases of a09_detr (grader side: never released, never sent to a student's kernel).

Every input is drawn from the run's secret seed; every expected value is computed here: GIoU from its definition
(with the assignment's eps, checked against torchvision.ops in tests/test_cases_a09.py), optimal assignments by
SciPy, the set loss by float64 reference code and autograd.

What a case exists to test is there in every run: assignments with fewer objects than predictions, with real
costs and with tied integer costs, and with no object at all; GIoU of empty sets beside an ordinary one.
"""
import numpy as np
import scipy.optimize
import torch
import torch.nn.functional as F

from course_utils.grader.cases import Call, Peek, Suite, matches_any, normal, uniform

SUITE = Suite("a09_detr")
SUITE.rule("q1_test", [], "Section 1 asks for GIoU without Python loops over boxes (broadcast instead).",
           no_loops_in=["generalized_box_iou"])
SUITE.rule("q1_test", ["torchvision"], "This assignment is written with torch alone: torchvision's box operations "
           "are what the tests compare with.")
OFF = ("torchvision.ops.generalized_box_iou", "torchvision.ops.box_iou", "torchvision.ops.boxes.generalized_box_iou",
       "torchvision.ops.boxes.box_iou", "torchvision.ops.boxes._box_inter_union")
EPS = 1e-7


def giou(a: torch.Tensor, b: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairwise (GIoU, IoU) of corner boxes, the assignment's definition."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    inter = (torch.min(a[:, None, 2:], b[None, :, 2:]) - torch.max(a[:, None, :2], b[None, :, :2])).clamp(min=0).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    hull = (torch.max(a[:, None, 2:], b[None, :, 2:]) - torch.min(a[:, None, :2], b[None, :, :2])).clamp(min=0).prod(-1)
    iou = inter / (union + eps)
    return iou - (hull - union) / (hull + eps), iou


def xyxy(b: torch.Tensor) -> torch.Tensor:
    """cxcywh -> corners (the notebook's cxcywh_to_xyxy)."""
    cx, cy, w, h = b.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def corner_boxes(rng, n: int, dtype=torch.float64) -> torch.Tensor:
    """n random corner boxes in [-1, 3]^2."""
    p = uniform(rng, n, 2, 2, low=-1.0, high=3.0, dtype=dtype)
    return torch.cat([p.min(1).values, p.max(1).values], 1)


def center_boxes(rng, n: int) -> torch.Tensor:
    """n random cxcywh boxes inside the unit square."""
    return uniform(rng, n, 4, low=0.1, high=0.6, dtype=torch.float64)


def _own_giou(seen: dict, n: int, m: int) -> torch.Tensor | None:
    """The GIoU matrix the student's own generalized_box_iou returned, when it is one."""
    a = seen["answer"]
    out = a.out[0] if a.ok and isinstance(a.out, (tuple, list)) and len(a.out) == 2 else None
    if not isinstance(out, np.ndarray) or out.shape != (n, m) or out.dtype.kind != "f":
        return None
    return torch.from_numpy(np.asarray(out, dtype=np.float64))


# ---------------------------------------------------------------- 1. generalized IoU

@SUITE.case("q1_test", draws=3, weight=2.0)
def giou_of_random_boxes(rng):
    a, b = corner_boxes(rng, int(rng.integers(1, 25))), corner_boxes(rng, int(rng.integers(1, 25)))
    return Call("generalized_box_iou", a, b, expect=giou(a, b), atol=1e-9, rtol=1e-7, disable=OFF)


@SUITE.case("q1_test", weight=2.0)
def giou_of_degenerate_boxes(rng):
    b = corner_boxes(rng, 6)
    x, y = float(rng.uniform(0, 1)), float(rng.uniform(0, 1))
    degenerate = torch.tensor([[x, y, x, y + 0.5], [x, y, x + 0.5, y], [x, y, x, y], [x, y, x, y],
                               [x + 5, y + 5, x + 6, y + 7]], dtype=torch.float64)   # zero width, height, points, far
    a = torch.cat([degenerate, b[:2]])
    b = torch.cat([b, degenerate[2:3], b[:2]])                                        # identical point; identical boxes
    return Call("generalized_box_iou", a, b, expect=giou(a, b), atol=1e-9, rtol=1e-7, disable=OFF,
                check=lambda ans: None if np.isfinite(ans.out[0]).all() else "GIoU must be finite on degenerate boxes")


@SUITE.case("q1_test")
def giou_with_an_empty_set(rng):
    a, b = corner_boxes(rng, int(rng.integers(1, 6))), corner_boxes(rng, int(rng.integers(1, 6)))
    empty = torch.zeros(0, 4, dtype=torch.float64)
    return [Call("generalized_box_iou", a, b, expect=giou(a, b), atol=1e-9, rtol=1e-7, disable=OFF),
            Call("generalized_box_iou", a, empty, expect=giou(a, empty), disable=OFF),
            Call("generalized_box_iou", empty, a, expect=giou(empty, a), disable=OFF)]


@SUITE.case("q1_test")
def giou_keeps_float32(rng):
    a, b = corner_boxes(rng, 5, torch.float32), corner_boxes(rng, 7, torch.float32)
    return Call("generalized_box_iou", a, b, expect=giou(a, b), atol=2e-6, dtype=True, disable=OFF)


# ---------------------------------------------------------------- 2. the matching cost (scored on its own)

def _cost(g, logits, boxes, labels, tgt, wc, wl, wg):
    return -wc * logits.softmax(-1)[:, labels] + wl * torch.cdist(boxes, tgt, p=1) - wg * g


@SUITE.case("q2_test", draws=4)
def cost_of_random_predictions(rng):
    Q, M, K = int(rng.integers(1, 9)), int(rng.integers(1, 6)), int(rng.integers(2, 12))
    logits, boxes = 2 * normal(rng, Q, K, dtype=torch.float64), center_boxes(rng, Q)
    labels, tgt = torch.from_numpy(rng.integers(0, K - 1, M)), center_boxes(rng, M)
    w = tuple(float(v) for v in rng.uniform(0.2, 5.0, 3))
    seen: dict = {}
    ref = _cost(giou(xyxy(boxes), xyxy(tgt))[0], logits, boxes, labels, tgt, *w)

    def judge(answer):
        own = _own_giou(seen, Q, M)
        return matches_any(answer.out, [ref, None if own is None else _cost(own, logits, boxes, labels, tgt, *w)], 1e-8, 1e-7)
    return [Peek("generalized_box_iou", xyxy(boxes), xyxy(tgt), store=seen),
            Call("matching_cost", logits, boxes, labels, tgt, *w, check=judge, kind="tensor")]


# ---------------------------------------------------------------- 3. the assignment

def _assignment_check(cost: np.ndarray, tol: float = 1e-9):
    Q, M = cost.shape
    best = cost[scipy.optimize.linear_sum_assignment(cost)].sum() if M else 0.0

    def check(answer):
        out = answer.out
        if not (isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(o, np.ndarray) for o in out)):
            return "expected a pair of int64 tensors (pred_idx, tgt_idx)"
        p, t = out
        if p.dtype != np.int64 or t.dtype != np.int64:
            return f"indices must be int64, got {p.dtype.name} and {t.dtype.name}"
        if p.shape != (M,) or t.shape != (M,):
            return f"expected {M} pairs, got shapes {p.shape} and {t.shape}"
        if sorted(t.tolist()) != list(range(M)) or len(set(p.tolist())) != M or not all(0 <= i < Q for i in p.tolist()):
            return f"predictions {p.tolist()} / objects {t.tolist()} are not a one-to-one assignment of all objects"
        if p.tolist() != sorted(p.tolist()):
            return f"the pairs must be sorted by prediction index, got {p.tolist()}"
        total = cost[p, t].sum() if M else 0.0
        return None if abs(total - best) <= tol else f"total cost {total:.6g}, the optimum is {best:.6g}"
    return check


def _assignment_call(cost: np.ndarray) -> Call:
    return Call("hungarian_match", torch.from_numpy(cost), check=_assignment_check(cost))


@SUITE.case("q3_test", draws=3)
def optimal_assignment(rng):
    """Fewer objects than predictions (2 or more of them), real costs, then integer costs (ties between optima)."""
    calls = []
    for tied in (False, True):
        Q = int(rng.integers(3, 9))
        cost = rng.uniform(-5, 5, (Q, int(rng.integers(2, Q))))
        calls.append(_assignment_call(np.round(cost) if tied else cost))
    return calls


@SUITE.case("q3_test")
def assignment_without_objects(rng):
    Q = int(rng.integers(2, 9))
    return [_assignment_call(rng.uniform(-5, 5, (Q, int(rng.integers(1, Q))))), _assignment_call(np.zeros((Q, 0)))]


@SUITE.case("q3_test")
def assignment_of_a_square_matrix_in_float32(rng):
    Q = int(rng.integers(2, 8))
    cost = torch.from_numpy(rng.uniform(0, 1, (Q, Q))).float()
    return Call("hungarian_match", cost, check=_assignment_check(cost.double().numpy(), 1e-5))


# ---------------------------------------------------------------- 4. the set loss (scored on its own)

def _set_loss(logits, boxes, targets, indices, g_matched, eos, wc, wl, wg):
    """The Hungarian loss, given the GIoU of each matched pair (in the order of `indices`)."""
    B, Q, K = logits.shape
    classes = torch.full((B, Q), K - 1, dtype=torch.long)
    for b, (p, t) in enumerate(indices):
        classes[b, p] = targets[b]["labels"][t]
    weight = torch.ones(K, dtype=logits.dtype)
    weight[-1] = eos
    loss_class = F.cross_entropy(logits.reshape(B * Q, K), classes.reshape(-1), weight=weight)
    matched = torch.cat([boxes[b, p] for b, (p, _) in enumerate(indices)])
    tgt = torch.cat([targets[b]["boxes"][t] for b, (_, t) in enumerate(indices)])
    n = max(len(tgt), 1)
    return wc * loss_class + wl * (matched - tgt).abs().sum() / n + wg * (1 - g_matched).sum() / n


def _batch(rng, sizes: list[int], Q: int, K: int):
    logits, boxes = 2 * normal(rng, len(sizes), Q, K, dtype=torch.float64), center_boxes(rng, len(sizes) * Q).reshape(-1, Q, 4)
    targets = [{"labels": torch.from_numpy(rng.integers(0, K - 1, m)), "boxes": center_boxes(rng, m)} for m in sizes]
    indices = []
    for m in sizes:                  # a fixed, not necessarily optimal matching: the loss must use the one it is given
        p = torch.from_numpy(rng.permutation(Q)[:m]).long()
        order = p.argsort()
        indices.append((p[order], torch.from_numpy(rng.permutation(m)).long()[order]))
    return logits, boxes, targets, indices


def _matched(boxes, targets, indices):
    return (torch.cat([boxes[b, p] for b, (p, _) in enumerate(indices)]),
            torch.cat([targets[b]["boxes"][t] for b, (_, t) in enumerate(indices)]))


@SUITE.case("q4_test", draws=3, weight=2.0)
def loss_with_a_given_matching(rng):
    Q, K = int(rng.integers(3, 8)), int(rng.integers(3, 12))
    sizes = [int(rng.integers(0, Q + 1)) for _ in range(int(rng.integers(1, 4)))]
    sizes[0] = max(sizes[0], 1)
    logits, boxes, targets, indices = _batch(rng, sizes, Q, K)
    w = (float(rng.uniform(0.05, 1.0)), *(float(v) for v in rng.uniform(0.2, 5.0, 3)))
    pred, tgt = _matched(boxes, targets, indices)
    ref = _set_loss(logits, boxes, targets, indices, giou(xyxy(pred), xyxy(tgt))[0].diagonal(), *w)
    seen: dict = {}

    def judge(answer):
        own = _own_giou(seen, len(tgt), len(tgt))
        mine = None if own is None else _set_loss(logits, boxes, targets, indices, own.diagonal(), *w)
        return matches_any(answer.out, [ref, mine], 1e-8, 1e-7)
    return [Peek("generalized_box_iou", xyxy(pred), xyxy(tgt), store=seen),
            Call("set_loss", logits, boxes, targets, indices, *w, check=judge, kind="tensor")]


@SUITE.case("q4_test", draws=2)
def gradients_reach_logits_and_matched_boxes_only(rng):
    # w_giou = 0: the gradient does not depend on the student's GIoU, only on this part's code
    Q, K, sizes = 5, 6, [int(rng.integers(1, 4)), 0, int(rng.integers(1, 5))]
    logits, boxes, targets, indices = _batch(rng, sizes, Q, K)
    w = (float(rng.uniform(0.05, 1.0)), float(rng.uniform(0.5, 2.0)), float(rng.uniform(0.5, 5.0)), 0.0)
    lg, bx = logits.clone().requires_grad_(), boxes.clone().requires_grad_()
    pred, tgt = _matched(bx, targets, indices)
    ref = _set_loss(lg, bx, targets, indices, giou(xyxy(pred), xyxy(tgt))[0].diagonal(), *w)
    grads = torch.autograd.grad(ref, (lg, bx))
    return Call("set_loss", logits, boxes, targets, indices, *w, expect=ref.detach(), grad=(0, 1), expect_grad=grads,
                atol=1e-8, rtol=1e-7)


class UnlessDependencyFails(Call):
    """A Call not held against its part when it raises what the student's (otherwise working) dependency raised
    on the input the part gives it: `store` holds that peek, `works` a peek of the dependency on ordinary input."""

    def __init__(self, target, *args, store: dict, works: dict, **options):
        super().__init__(target, *args, **options)
        self.store, self.works = store, works

    def judge(self, answer):
        dep = self.store["answer"]
        if not answer.ok and not dep.ok and self.works["answer"].ok and answer.error == dep.error:
            return None                 # your generalized_box_iou fails on empty sets: that costs section 1 only
        return super().judge(answer)


@SUITE.case("q4_test")
def loss_of_a_batch_without_objects(rng):
    Q, K = int(rng.integers(2, 7)), int(rng.integers(2, 12))
    logits, boxes, targets, indices = _batch(rng, [0, 0], Q, K)
    w = (float(rng.uniform(0.05, 1.0)), 1.0, 5.0, 2.0)
    ref = _set_loss(logits, boxes, targets, indices, torch.zeros(0, dtype=torch.float64), *w)
    seen, works = {}, {}
    empty, some = torch.zeros(0, 4, dtype=torch.float64), xyxy(center_boxes(rng, 2))
    return [Peek("generalized_box_iou", empty, empty, store=seen), Peek("generalized_box_iou", some, some, store=works),
            UnlessDependencyFails("set_loss", logits, boxes, targets, indices, *w, store=seen, works=works, expect=ref,
                                  atol=1e-9, rtol=1e-7)]
