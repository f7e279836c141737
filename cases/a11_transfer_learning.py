"""Hidden cases of a11_transfer_learning (grader side: never released, never sent to a student's kernel).

Every input is drawn from the run's secret seed; every reference is computed here, in float64, by PyTorch's own
optimisers on copies of the same small networks. Part 1 is graded on properties (a class-balanced, distinct, sorted
draw that a seed fixes and another seed changes), since any seeded draw is a right answer. Parts 2 and 3 are
behaviour probes: the parameters of the body and the head after the student's step are compared with one step of
the reference, and one probe hands the linear-probe step an optimizer (with momentum and weight decay) over the
*body*: the body moves exactly when the student's freezing let a gradient reach it. Each part is scored on its own:
`probe_step` may call the student's `freeze` and `finetune_step` the student's `param_groups`, but each pair is one
part, and no part calls a function of another part.

One probe hands the linear-probe step a body with BatchNorm (random running statistics) and Dropout: frozen
means in evaluation mode too, so the loss is the eval-mode loss and the running statistics do not move. A
refused split is asked beside a valid one, so that "raise always" scores nothing.
"""
import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_utils.grader.cases import Answer, Call, Peek, Suite, compare, normal, plain, sequential

SUITE = Suite("a11_transfer_learning")
F64 = torch.float64
TOL = {"atol": 1e-9, "rtol": 1e-7}


# ---------------------------------------------------------------- Part 1: few_shot_split

def _labels(rng, per_class_min: int) -> tuple[torch.Tensor, list[int]]:
    """A shuffled int64 label vector over 2-6 classes with gaps (e.g. 1, 4, 9), each at least per_class_min times."""
    classes = sorted(rng.choice(np.arange(12), size=int(rng.integers(2, 7)), replace=False).tolist())
    counts = rng.integers(per_class_min, per_class_min + 15, size=len(classes))
    labels = np.concatenate([np.full(n, c) for c, n in zip(classes, counts)])
    return torch.from_numpy(rng.permutation(labels).astype(np.int64)), classes


def _split_problem(out, labels: torch.Tensor, classes: list[int], k: int) -> str | None:
    """None when `out` is a valid split of labels with k per class, else what is wrong with it."""
    if not getattr(out, "tensor", False):
        return f"expected a torch.Tensor of indices, got {type(out).__name__}"
    if out.dtype != np.int64 or out.ndim != 1:
        return f"expected a 1-D int64 tensor, got dtype {out.dtype.name} and shape {tuple(out.shape)}"
    idx = np.asarray(out)
    if len(idx) != k * len(classes):
        return f"expected {k} indices for each of the {len(classes)} classes = {k * len(classes)}, got {len(idx)}"
    if idx.min() < 0 or idx.max() >= len(labels):
        return f"indices must lie in [0, {len(labels)}), got {idx.min()}..{idx.max()}"
    if len(set(idx.tolist())) != len(idx):
        return "an index appears twice: draw without replacement"
    if not (np.diff(idx) > 0).all():
        return "the indices must be sorted in increasing order"
    got = np.bincount(labels.numpy()[idx], minlength=max(classes) + 1)
    want = np.zeros_like(got)
    want[classes] = k
    if not (got == want).all():
        counts = {c: int(got[c]) for c in range(len(got)) if got[c] or c in classes}
        return f"expected {k} examples of each class {classes}; per-class counts of the labels chosen: {counts}"
    return None


@SUITE.case("test_few_shot_split", draws=3)
def split_is_class_balanced(rng):
    labels, classes = _labels(rng, per_class_min=int(rng.integers(1, 30)))
    k = int(rng.integers(1, int(torch.bincount(labels)[classes].min()) + 1))       # up to the rarest class, included
    return _valid_split(labels, classes, k, int(rng.integers(1 << 30)))


@SUITE.case("test_few_shot_split", draws=3, weight=2.0)
def split_is_a_seeded_random_draw(rng):
    """Three calls on one pool: the same seed twice must give the same indices, another seed other ones (with at
    least 40 examples per class, two seeded draws of k coincide with negligible probability)."""
    labels, classes = _labels(rng, per_class_min=40)
    k, seed = int(rng.integers(2, 8)), int(rng.integers(1 << 30))
    first: dict = {}

    def judge(same_seed: bool):
        def check(a: Answer) -> str | None:
            if problem := _split_problem(a.out, labels, classes, k):
                return problem
            before = first.get("answer")
            if before is None or not before.ok:
                return "the first call with this seed did not return indices"
            equal = (getattr(before.out, "shape", None) == a.out.shape
                     and bool((np.asarray(before.out) == np.asarray(a.out)).all()))
            if same_seed and not equal:
                return ("two calls with the same seed returned different indices: draw with a torch.Generator "
                        "seeded by `seed`")
            if not same_seed and equal:
                return "two different seeds returned the same indices: the examples must be drawn at random"
            return None
        return check

    other = seed + 1 + int(rng.integers(1000))
    return [Peek("few_shot_split", labels, k, seed, store=first),
            Call("few_shot_split", labels, k, seed, check=judge(True),
                 label=f"few_shot_split(labels, k={k}, seed) twice with the same seed: the same indices"),
            Call("few_shot_split", labels, k, other, check=judge(False),
                 label=f"few_shot_split(labels, k={k}, another seed): other indices")]


def _valid_split(labels: torch.Tensor, classes: list[int], k: int, seed: int) -> Call:
    return Call("few_shot_split", labels, k, seed, check=lambda a: _split_problem(a.out, labels, classes, k),
                label=f"few_shot_split(labels of {len(labels)} over classes {classes}, k={k}, seed)")


@SUITE.case("test_few_shot_split", weight=0.5)
def split_too_few_examples_raises(rng):
    labels, classes = _labels(rng, per_class_min=3)
    rarest = int(torch.bincount(labels)[classes].min())
    return [_valid_split(labels, classes, rarest, int(rng.integers(1 << 30))),
            Call("few_shot_split", labels, rarest + 1 + int(rng.integers(3)), 0, raises=ValueError,
                 label=f"few_shot_split(labels, k larger than the {rarest} examples of the rarest class, 0): ValueError")]


@SUITE.case("test_few_shot_split", weight=0.5)
def split_k_below_one_raises(rng):
    labels, classes = _labels(rng, per_class_min=5)
    return [_valid_split(labels, classes, 1, int(rng.integers(1 << 30))),
            Call("few_shot_split", labels, -int(rng.integers(0, 3)), 0, raises=ValueError,
                 label="few_shot_split(labels, k <= 0, 0): ValueError")]


# ---------------------------------------------------------------- Parts 2 and 3: the steps

def _nets(rng, normalised: bool = False):
    """A small body (d -> h features) and head (h -> c logits) in float64: (spec, module) each, and a batch x, y.
    `normalised`: the body holds BatchNorm1d (with random running statistics) and Dropout."""
    d, h, c, n = int(rng.integers(3, 8)), int(rng.integers(4, 10)), int(rng.integers(2, 6)), int(rng.integers(4, 12))
    act = ["ReLU"] if rng.random() < 0.5 else ["Tanh"]
    extra = [["BatchNorm1d", h], act, ["Dropout", 0.5]] if normalised else [act]
    body = sequential([["Linear", d, h], *extra, ["Linear", h, h], act], rng, scale=0.6, dtype=F64)
    if normalised:
        spec, module = body
        with torch.no_grad():
            module[1].running_mean.copy_(normal(rng, h, dtype=F64))
            module[1].running_var.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, h)))
        spec["state"] = {k: v.clone() for k, v in module.state_dict().items()}
    head = sequential([["Linear", h, c]], rng, scale=0.6, dtype=F64)
    x = normal(rng, n, d, dtype=F64)
    y = torch.from_numpy(rng.integers(0, c, n).astype(np.int64))
    return body, head, x, y


def _state(module: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _optimizer_spec(name: str, of: int, lr: float, **options) -> dict:
    return {"__optimizer__": name, "of": of, "lr": lr, "options": options}


def _build_optimizer(spec: dict, modules: tuple[nn.Module, nn.Module]) -> torch.optim.Optimizer:
    """The optimizer the kernel builds from the same spec (probe._optimizer), over the same module."""
    kind = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[spec["__optimizer__"]]
    return kind(modules[spec["of"]].parameters(), lr=spec["lr"], **spec["options"])


def _probe_step_ref(body: nn.Module, head: nn.Module, opt_spec: dict, x, y) -> tuple[float, list[dict]]:
    """Loss before the update and (body, head) states after one linear-probe step on copies of the networks."""
    body, head = copy.deepcopy(body), copy.deepcopy(head)
    opt = _build_optimizer(opt_spec, (body, head))
    for p in body.parameters():
        p.requires_grad_(False)
    body.eval()
    loss = F.cross_entropy(head(body(x)), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss.detach()), [_state(body), _state(head)]


def _probe_call(rng, opt_name: str, of: int, label: str, normalised: bool = False, **options) -> Call:
    (body_spec, body), (head_spec, head), x, y = _nets(rng, normalised)
    opt_spec = _optimizer_spec(opt_name, of, float(rng.uniform(0.05, 0.5)), **options)
    loss, states = _probe_step_ref(body, head, opt_spec, x, y)
    return Call("probe_step", body_spec, head_spec, opt_spec, x, y, expect=loss, state_of=(0, 1),
                expect_state=tuple(states), kind="float", label=label, **TOL)


@SUITE.case("test_probe_step", draws=2)
def probe_step_moves_only_the_head(rng):
    return _probe_call(rng, "sgd", 1, "probe_step(body, head, SGD over the head, x, y): loss before the update, "
                                      "the head after one step, the body unchanged")


@SUITE.case("test_probe_step", draws=2, weight=2.0)
def probe_step_body_in_the_optimizer_stays(rng):
    # the optimizer holds the BODY's parameters, with momentum and weight decay: the body moves exactly when a
    # gradient reached it (a zero gradient would still move it through the weight decay)
    return _probe_call(rng, "sgd", 0, "probe_step(body, head, SGD with momentum and weight decay over the BODY, x, y): "
                                      "the body must not move (frozen)", momentum=0.9, weight_decay=0.05)


@SUITE.case("test_probe_step", draws=2)
def probe_step_freezes_batch_norm_and_dropout(rng):
    # in training mode BatchNorm would normalise by the batch and update its running statistics, and Dropout would
    # zero features at random: the loss and the body's state both show whether freeze() switched to eval mode
    return _probe_call(rng, "sgd", 1, "probe_step(body with BatchNorm and Dropout, head, SGD over the head, x, y): "
                                      "the body in evaluation mode, its running statistics unchanged", normalised=True)


@SUITE.case("test_probe_step")
def probe_step_with_adam(rng):
    return _probe_call(rng, "adam", 1, "probe_step(body, head, Adam over the head, x, y): one Adam step of the head")


def _finetune_ref(body: nn.Module, head: nn.Module, x, y, lr_body: float, lr_head: float) -> tuple[float, list[dict]]:
    """Loss before the update and (body, head) states after one SGD step with two learning rates."""
    body, head = copy.deepcopy(body), copy.deepcopy(head)
    opt = torch.optim.SGD([{"params": list(body.parameters()), "lr": lr_body},
                           {"params": list(head.parameters()), "lr": lr_head}])
    loss = F.cross_entropy(head(body(x)), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss.detach()), [_state(body), _state(head)]


def _finetune_call(rng, lr_body: float, lr_head: float, label: str) -> Call:
    (body_spec, body), (head_spec, head), x, y = _nets(rng)
    loss, states = _finetune_ref(body, head, x, y, lr_body, lr_head)
    return Call("finetune_step", body_spec, head_spec, x, y, lr_body, lr_head, expect=loss, state_of=(0, 1),
                expect_state=tuple(states), kind="float", label=label, **TOL)


@SUITE.case("test_finetune_step", draws=2, weight=1.5)
def finetune_step_two_learning_rates(rng):
    lr_body, lr_head = float(rng.uniform(0.002, 0.05)), float(rng.uniform(0.1, 0.8))
    return _finetune_call(rng, lr_body, lr_head, f"finetune_step(body, head, x, y, lr_body={lr_body:.3g}, "
                                                 f"lr_head={lr_head:.3g}): both networks after one SGD step")


@SUITE.case("test_finetune_step")
def finetune_step_body_faster_than_head(rng):
    lr_body, lr_head = float(rng.uniform(0.3, 0.8)), float(rng.uniform(0.001, 0.01))   # the roles swapped
    return _finetune_call(rng, lr_body, lr_head, f"finetune_step(..., lr_body={lr_body:.3g}, lr_head={lr_head:.3g}): "
                                                 f"each network with its own rate")


@SUITE.case("test_finetune_step", weight=0.5)
def finetune_step_body_rate_zero(rng):
    lr_head = float(rng.uniform(0.1, 0.5))
    return _finetune_call(rng, 0.0, lr_head, f"finetune_step(..., lr_body=0, lr_head={lr_head:.3g}): the body stays")


@SUITE.case("test_finetune_step", draws=2)
def param_groups_are_the_live_parameters(rng):
    (body_spec, body), (head_spec, head), _, _ = _nets(rng)
    lr_body, lr_head = float(rng.uniform(1e-4, 1e-2)), float(rng.uniform(1e-2, 1.0))
    want = [{"params": [p.detach() for p in body.parameters()], "lr": lr_body},
            {"params": [p.detach() for p in head.parameters()], "lr": lr_head}]

    def judge(a: Answer) -> str | None:
        if problem := compare(a.out, want_plain, 0.0, 0.0, "param_groups(...)"):
            return problem
        if not all(getattr(t, "grad", False) for group in a.out for t in group["params"]):
            return ("the groups must hold the networks' own parameters (which require grad), not detached copies: "
                    "an optimizer built from copies would never change the networks")
        return None

    want_plain = plain(want)
    return Call("param_groups", body_spec, head_spec, lr_body, lr_head, check=judge, kind="list",
                label=f"param_groups(body, head, {lr_body:.3g}, {lr_head:.3g}): [body group, head group]")
