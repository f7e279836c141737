"""Hidden cases of a04_gan (grader side: never released, never sent to a student's kernel).

Every input is drawn from the run's secret seed; every reference is computed here in float64. The training
steps are behaviour probes on small seeded networks: the parameters of both networks after the student's step
are compared with one SGD step of the reference, and two probes hand the step an optimizer over the network
that must not learn (G in the D step, D in the G step): that network moves exactly when a gradient reached it.

The network a step trains arrives with gradients left in its parameters' .grad (as an earlier backward leaves
them): a step that does not zero them first moves the network by those too. After a step every parameter of
both networks must require grad again (a G step freezes D, then sets it back). The VAE-GAN feature loss is
asked through a convolutional and a linear feature network in every draw.

Each part is scored on its own: d_step / g_step are also accepted when they match one step on the student's
own d_loss / g_loss (peeked at the same logits), and train_step when it matches the student's own d_step
followed by the student's own g_step.
"""
import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_utils.grader.cases import Answer, Call, New, Peek, Suite, compare, normal, plain, sequential, uniform

SUITE = Suite("a04_gan")
F64 = torch.float64
TOL = {"atol": 1e-9, "rtol": 1e-7}


def _t(value) -> torch.Tensor:
    """A decoded array as a float64 torch tensor."""
    return torch.from_numpy(np.array(value, dtype=np.float64))


def _logits(rng, n: int) -> torch.Tensor:
    return normal(rng, n, 1, dtype=F64) * float(rng.uniform(1.0, 10.0))


def _with_grads(fn, args: tuple):
    """fn(*args) and its gradient with respect to every arg (reference side)."""
    leaves = [a.detach().clone().requires_grad_() for a in args]
    out = fn(*leaves)
    return out.detach(), torch.autograd.grad(out, leaves)


def _j_d(real_logits, fake_logits):
    return 0.5 * (F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean())


def _j_g(fake_logits):
    return F.softplus(-fake_logits).mean()


# ---------------------------------------------------------------- Q1, Q2: the losses

@SUITE.case("test_d_loss", draws=3)
def d_loss_random_batches(rng):
    rl, fl = _logits(rng, int(rng.integers(1, 12))), _logits(rng, int(rng.integers(1, 12)))
    out, grads = _with_grads(_j_d, (rl, fl))
    return Call("d_loss", rl, fl, expect=out, grad=(0, 1), expect_grad=grads, kind="tensor", **TOL)


@SUITE.case("test_d_loss")
def d_loss_logits_of_200(rng):
    rl = torch.tensor([[-200.0], [200.0], [float(rng.uniform(-5, 5))]])
    fl = torch.tensor([[200.0], [-200.0]])
    out, grads = _with_grads(_j_d, (rl.double(), fl.double()))
    return Call("d_loss", rl, fl, expect=out.float(), grad=(0, 1), expect_grad=tuple(g.float() for g in grads),
                rtol=1e-5, atol=1e-6)


@SUITE.case("test_g_loss", draws=3)
def g_loss_random_batches(rng):
    fl = _logits(rng, int(rng.integers(1, 12)))
    out, (grad,) = _with_grads(_j_g, (fl,))
    return Call("g_loss", fl, expect=out, grad=(0,), expect_grad=(grad,), kind="tensor", **TOL)


@SUITE.case("test_g_loss")
def g_loss_does_not_saturate(rng):
    # a generator that is losing badly (logit -200, -30) still gets a gradient of about -1/n per logit
    fl = torch.tensor([[-200.0], [-30.0], [float(rng.uniform(-3, 3))], [200.0]])
    out, (grad,) = _with_grads(_j_g, (fl.double(),))
    return Call("g_loss", fl, expect=out.float(), grad=(0,), expect_grad=(grad.float(),), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- Q3-Q5: the training steps

def _nets(rng):
    """A small G (nz -> 2) and D (2 -> 1 logit) in float64: (spec, module) each, and a batch of real and z."""
    nz, h, n = int(rng.integers(2, 5)), int(rng.integers(4, 12)), int(rng.integers(4, 12))
    g = sequential([["Linear", nz, h], ["ReLU"], ["Linear", h, 2]], rng, scale=0.5, dtype=F64)
    d = sequential([["Linear", 2, h], ["LeakyReLU", 0.2], ["Linear", h, 1]], rng, scale=0.5, dtype=F64)
    real = normal(rng, n, 2, dtype=F64) + torch.tensor([2.0, -1.0], dtype=F64)
    return g, d, real, normal(rng, n, nz, dtype=F64)


def _sgd(name: str, of: int, lr: float) -> dict:
    return {"__optimizer__": name, "of": of, "lr": lr}


def _stale(rng, spec: dict) -> dict:
    """The module spec with every parameter's .grad pre-filled, as an earlier backward would leave it."""
    return {**spec, "grad": {k: normal(rng, *v.shape, dtype=v.dtype) for k, v in spec["state"].items()}}


def _still_trainable(answer: Answer) -> str | None:
    """A failure message when a parameter of G or D no longer requires grad after the step."""
    frozen = [f"{net}.{k}" for net, state in zip("GD", answer.states or []) for k, v in state.items()
              if not getattr(v, "grad", False)]
    if frozen:
        return (f"after the step {', '.join(frozen[:4])} no longer require grad: a network frozen for the step "
                "must be set back to requires_grad_(True) before returning")
    return None


def _state(module: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _stepped(module: nn.Module, outputs, cotangents, lr: float) -> dict:
    """The module's state after one SGD step on d sum(outputs * cotangents) / d parameters."""
    params = list(module.parameters())
    grads = torch.autograd.grad(outputs, params, grad_outputs=cotangents)
    with torch.no_grad():
        return {k: p - lr * g for (k, p), g in zip(module.named_parameters(), grads)}


def _d_step_ref(G, D, real, z, lr, dlogits=None):
    """(loss, D's state) after one D step on J(D), or on the loss whose logit gradients are `dlogits`."""
    with torch.no_grad():
        fake = G(z)
    rl, fl = D(real), D(fake)
    loss = _j_d(rl, fl)
    if dlogits is None:
        dlogits = torch.autograd.grad(loss, (rl, fl), retain_graph=True)
    return float(loss.detach()), _stepped(D, (rl, fl), dlogits, lr)


def _g_step_ref(G, D, z, lr, dlogit=None):
    """(loss, G's state) after one G step on -log D(G(z)), or on the loss whose logit gradient is `dlogit`."""
    fl = D(G(z))
    loss = _j_g(fl)
    if dlogit is None:
        (dlogit,) = torch.autograd.grad(loss, fl, retain_graph=True)
    return float(loss.detach()), _stepped(G, fl, dlogit, lr)


def _peeked(store: dict, n_grads: int):
    """(value, [gradients]) the student's own loss answered in a Peek, or None."""
    a = store.get("answer")
    if a is None or not a.ok or a.grads is None or len(a.grads) != n_grads or any(g is None for g in a.grads):
        return None
    try:
        return float(np.asarray(a.out, dtype=np.float64).reshape(())), [_t(g) for g in a.grads]
    except (TypeError, ValueError):
        return None


def _matches(answer: Answer, candidates: list) -> str | None:
    """None when (output, states) match one candidate (out, [states]); else how they differ from the first."""
    problems = []
    for out, states in candidates:
        problem = (compare(answer.out, plain(out), TOL["atol"], TOL["rtol"], "returned loss")
                   or compare(answer.states, plain(states), TOL["atol"], TOL["rtol"], "parameters after the call"))
        if problem is None:
            return None
        problems.append(problem)
    return problems[0]


@SUITE.case("test_d_step", draws=2, weight=1.5)
def d_step_moves_d_once(rng):
    (g_spec, G), (d_spec, D), real, z = _nets(rng)
    lr = float(rng.uniform(0.05, 0.5))
    loss, d_after = _d_step_ref(G, D, real, z, lr)
    with torch.no_grad():
        rl, fl = D(real), D(G(z))
    seen: dict = {}

    def judge(a: Answer) -> str | None:
        candidates = [(loss, [_state(G), d_after])]
        if (own := _peeked(seen, 2)) is not None:              # one step on the student's own d_loss
            candidates.append((own[0], [_state(G), _d_step_ref(G, D, real, z, lr, tuple(own[1]))[1]]))
        return _matches(a, candidates) or _still_trainable(a)

    return [Peek("d_loss", rl, fl, grad=(0, 1), store=seen),
            Call("d_step", g_spec, _stale(rng, d_spec), _sgd("sgd", 1, lr), real, z, state_of=(0, 1), check=judge,
                 kind="float", label="d_step(G, D with stale gradients, SGD over D, real, z): loss before the update, "
                                     "D after one step, G unchanged")]


@SUITE.case("test_d_step")
def d_step_sends_no_gradient_to_g(rng):
    # opt_d holds G's parameters here: G moves exactly when the D step let a gradient reach G
    (g_spec, G), (d_spec, D), real, z = _nets(rng)
    loss, _ = _d_step_ref(G, D, real, z, 0.1)
    with torch.no_grad():
        rl, fl = D(real), D(G(z))
    seen: dict = {}

    def judge(a: Answer) -> str | None:
        own = _peeked(seen, 2)
        return (_matches(a, [(loss, [_state(G), _state(D)])] + ([(own[0], [_state(G), _state(D)])] if own else []))
                or _still_trainable(a))

    return [Peek("d_loss", rl, fl, grad=(0, 1), store=seen),
            Call("d_step", g_spec, d_spec, _sgd("sgd", 0, 0.1), real, z, state_of=(0, 1), check=judge, kind="float",
                 label="d_step(G, D, an optimizer over G's parameters, real, z): G must not move (detach the fakes)")]


@SUITE.case("test_g_step", draws=2, weight=1.5)
def g_step_moves_g_through_frozen_d(rng):
    (g_spec, G), (d_spec, D), real, z = _nets(rng)
    lr = float(rng.uniform(0.05, 0.5))
    loss, g_after = _g_step_ref(G, D, z, lr)
    with torch.no_grad():
        fl = D(G(z))
    seen: dict = {}

    def judge(a: Answer) -> str | None:
        candidates = [(loss, [g_after, _state(D)])]
        if (own := _peeked(seen, 1)) is not None:              # one step on the student's own g_loss
            candidates.append((own[0], [_g_step_ref(G, D, z, lr, own[1][0])[1], _state(D)]))
        return _matches(a, candidates) or _still_trainable(a)

    return [Peek("g_loss", fl, grad=(0,), store=seen),
            Call("g_step", _stale(rng, g_spec), d_spec, _sgd("sgd", 0, lr), z, state_of=(0, 1), check=judge,
                 kind="float", label="g_step(G with stale gradients, D, SGD over G, z): loss before the update, "
                                     "G after one step, D unchanged and trainable again")]


@SUITE.case("test_g_step", weight=1.5)
def g_step_freezes_d(rng):
    # opt_g holds D's parameters here: D moves exactly when the G step computed a gradient for D
    (g_spec, G), (d_spec, D), real, z = _nets(rng)
    loss, _ = _g_step_ref(G, D, z, 0.1)
    with torch.no_grad():
        fl = D(G(z))
    seen: dict = {}

    def judge(a: Answer) -> str | None:
        own = _peeked(seen, 1)
        return (_matches(a, [(loss, [_state(G), _state(D)])] + ([(own[0], [_state(G), _state(D)])] if own else []))
                or _still_trainable(a))

    return [Peek("g_loss", fl, grad=(0,), store=seen),
            Call("g_step", g_spec, d_spec, _sgd("sgd", 1, 0.1), z, state_of=(0, 1), check=judge, kind="float",
                 label="g_step(G, D, an optimizer over D's parameters, z): D must not move (frozen: requires_grad_(False))")]


class PeekAfter(Peek):
    """A Peek whose inputs are made, when it is asked, from what an earlier Peek answered."""

    def __init__(self, target: str, make_args, *, store: dict, **options):
        super().__init__(target, store=store, **options)
        self.make_args = make_args

    def request(self) -> dict:
        self.args = self.make_args()
        return super().request()


def _spec_from(spec: dict, state) -> dict:
    """The module spec with the state an answer sent back (the original state when there is none)."""
    if not isinstance(state, dict):
        return spec
    return {"__module__": spec["__module__"], "state": {k: _t(v) for k, v in state.items()}}


@SUITE.case("test_train_step", draws=2)
def train_step_d_then_g(rng):
    (g_spec, G), (d_spec, D), real, z = _nets(rng)
    lr = float(rng.uniform(0.05, 0.3))
    ld, d_after = _d_step_ref(G, D, real, z, lr)
    D1 = copy.deepcopy(D)
    D1.load_state_dict(d_after)
    lg, g_after = _g_step_ref(G, D1, z, lr)                    # against the D that was just updated
    after_d, after_g = {}, {}

    def g_step_args():
        a = after_d.get("answer")
        states = a.states if a is not None and a.ok and isinstance(a.states, list) and len(a.states) == 2 else [None, None]
        return (_spec_from(g_spec, states[0]), _spec_from(d_spec, states[1]), _sgd("sgd", 0, lr), z)

    def judge(a: Answer) -> str | None:
        if not all(type(v) is float for v in a.out):
            return f"output: expected two Python floats, got {[type(v).__name__ for v in a.out]}"
        candidates = [((ld, lg), [g_after, d_after])]
        first, second = after_d.get("answer"), after_g.get("answer")
        if first is not None and second is not None and first.ok and second.ok and second.states:
            candidates.append(((first.out, second.out), second.states))   # the student's d_step, then g_step
        return _matches(a, candidates)

    return [Peek("d_step", g_spec, d_spec, _sgd("sgd", 1, lr), real, z, state_of=(0, 1), store=after_d),
            PeekAfter("g_step", g_step_args, state_of=(0, 1), store=after_g),
            Call("train_step", g_spec, d_spec, _sgd("sgd", 0, lr), _sgd("sgd", 1, lr), real, z, state_of=(0, 1),
                 check=judge, kind="tuple",
                 label="train_step(G, D, SGD over G, SGD over D, real, z): D step, then G step against the new D")]


# ---------------------------------------------------------------- Q6: conditioning (cGAN)

class Generator(nn.Module):
    """Lecture 04's DCGAN generator: z (+ one-hot label) -> 7x7 -> 14x14 -> 28x28 image in [-1, 1]."""

    def __init__(self, nz: int = 32, ch: int = 32, n_classes: int = 0):
        super().__init__()
        self.n_classes = n_classes
        self.project = nn.Sequential(nn.Linear(nz + n_classes, 2 * ch * 7 * 7), nn.Unflatten(1, (2 * ch, 7, 7)),
                                     nn.BatchNorm2d(2 * ch), nn.ReLU())
        self.up = nn.Sequential(nn.ConvTranspose2d(2 * ch, ch, 4, 2, 1), nn.BatchNorm2d(ch), nn.ReLU(),
                                nn.ConvTranspose2d(ch, 1, 4, 2, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.n_classes:
            z = torch.cat([z, F.one_hot(labels, self.n_classes).to(z.dtype)], 1)
        return self.up(self.project(z))


class Discriminator(nn.Module):
    """Lecture 04's DCGAN discriminator with the projection term of a label (Miyato & Koyama 2018)."""

    def __init__(self, ch: int = 32, n_classes: int = 0):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, ch, 4, 2, 1), nn.LeakyReLU(0.2),
                                      nn.Conv2d(ch, 2 * ch, 4, 2, 1), nn.BatchNorm2d(2 * ch), nn.LeakyReLU(0.2),
                                      nn.Flatten())
        self.head = nn.Linear(2 * ch * 7 * 7, 1)
        self.embed = nn.Embedding(n_classes, 2 * ch * 7 * 7) if n_classes else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)
        out = self.head(h)
        if self.embed is not None:
            out = out + (self.embed(labels) * h).sum(1, keepdim=True)
        return out


def _randomised(module: nn.Module, rng) -> dict:
    """Draw every floating-point entry of the module's state from rng (running variances positive)."""
    state = module.state_dict()
    with torch.no_grad():
        for name, t in state.items():
            if t.is_floating_point():
                t.copy_(uniform(rng, *t.shape, low=0.5, high=2.0) if "running_var" in name else 0.3 * normal(rng, *t.shape))
    return {k: v.clone() for k, v in state.items()}


def _forward_probe(rng, target: str, ref: nn.Module, kwargs: dict, inputs: tuple, label: str) -> New:
    """New(target, **kwargs) loaded with ref's random state, called on inputs; output and d/d inputs[0]."""
    state = _randomised(ref, rng)
    leaf = inputs[0].clone().requires_grad_()
    out = ref(leaf, *inputs[1:])
    cot = normal(rng, *out.shape)
    (grad,) = torch.autograd.grad((out * cot).sum(), leaf)
    return New(target, kwargs=kwargs, seed=int(rng.integers(1 << 30)), state=state, inputs=inputs, grad_inputs=(0,),
               cotangent=cot, expect=out.detach(), expect_grad=(grad,), atol=1e-4, rtol=1e-4, kind="tensor", label=label)


@SUITE.case("test_cgan", draws=2, weight=1.5)
def generator_with_one_hot_labels(rng):
    nz, ch, k, n = int(rng.integers(2, 9)), int(rng.integers(1, 4)), int(rng.integers(2, 11)), int(rng.integers(3, 7))
    z, labels = normal(rng, n, nz), torch.from_numpy(rng.integers(0, k, n))
    return _forward_probe(rng, "Generator", Generator(nz, ch, k), {"nz": nz, "ch": ch, "n_classes": k}, (z, labels),
                          f"Generator(nz={nz}, ch={ch}, n_classes={k})(z, labels)")


@SUITE.case("test_cgan")
def generator_without_labels(rng):
    nz, ch, n = int(rng.integers(2, 9)), int(rng.integers(1, 4)), int(rng.integers(3, 7))
    return _forward_probe(rng, "Generator", Generator(nz, ch), {"nz": nz, "ch": ch}, (normal(rng, n, nz),),
                          f"Generator(nz={nz}, ch={ch})(z): unconditional")


@SUITE.case("test_cgan", draws=2, weight=1.5)
def discriminator_with_projection(rng):
    ch, k, n = int(rng.integers(1, 4)), int(rng.integers(2, 11)), int(rng.integers(3, 7))
    x, labels = torch.tanh(normal(rng, n, 1, 28, 28)), torch.from_numpy(rng.integers(0, k, n))
    return _forward_probe(rng, "Discriminator", Discriminator(ch, k), {"ch": ch, "n_classes": k}, (x, labels),
                          f"Discriminator(ch={ch}, n_classes={k})(x, labels)")


@SUITE.case("test_cgan")
def discriminator_without_labels(rng):
    ch, n = int(rng.integers(1, 4)), int(rng.integers(3, 7))
    return _forward_probe(rng, "Discriminator", Discriminator(ch), {"ch": ch}, (torch.tanh(normal(rng, n, 1, 28, 28)),),
                          f"Discriminator(ch={ch})(x): unconditional")


# ---------------------------------------------------------------- Q7: VAE-GAN's feature-wise reconstruction

def _llike(features, x, x_rec):
    return 0.5 * (features(x).detach() - features(x_rec)).pow(2).sum(1).mean()


@SUITE.case("test_llike", draws=3)
def llike_in_discriminator_features(rng):
    """Through a convolutional and a linear feature network."""
    n, side, c = int(rng.integers(2, 7)), 2 * int(rng.integers(3, 7)), int(rng.integers(2, 6))
    return [_llike_call(rng, n, side, layers) for layers in ([["Conv2d", 1, c, 4, 2, 1], ["LeakyReLU", 0.2], ["Flatten"]],
                                                             [["Flatten"], ["Linear", side * side, c * 4], ["Tanh"]])]


def _llike_call(rng, n: int, side: int, layers: list) -> Call:
    spec, feats = sequential(layers, rng, scale=0.5, dtype=F64)
    x, x_rec = torch.tanh(normal(rng, n, 1, side, side, dtype=F64)), torch.tanh(normal(rng, n, 1, side, side, dtype=F64))
    leaf = x_rec.clone().requires_grad_()
    out = _llike(feats, x, leaf)
    (grad,) = torch.autograd.grad(out, leaf)
    return Call("llike", spec, x, x_rec, expect=out.detach(), grad=(1, 2), expect_grad=(None, grad), kind="tensor",
                state_of=(0,), expect_state=(spec["state"],),
                label=f"llike(features, x, x_rec) on {n} images of {side}x{side}: value, gradient into x_rec only")
