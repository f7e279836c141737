"""The probe's module specs (in process, no kernel): BatchNorm / Dropout / ZeroPad2d layers, gradients left over
from an earlier backward, and the requires_grad flag of every parameter sent back after a call."""
import json

import numpy as np
import torch

from course_utils.grader import probe, wire
from course_utils.grader.cases import Answer, sequential


def ask(request: dict, namespace: dict) -> Answer:
    return Answer.from_wire(json.loads(json.dumps(probe._answer(request, namespace))))


def test_layers_with_running_statistics_and_dropout_are_built_in_training_mode():
    spec, ref = sequential([["Linear", 3, 4], ["BatchNorm1d", 4], ["Dropout", 0.5], ["ZeroPad2d", [0, 0, 1, 0]]],
                           np.random.default_rng(0))
    model = probe.build_module(spec["__module__"], spec["state"])
    assert model.training and isinstance(model[1], torch.nn.BatchNorm1d) and "1.running_mean" in model.state_dict()
    model.eval()
    x = torch.randn(5, 3)
    assert torch.equal(model(x), ref.eval()(x))


def test_prefilled_gradients_and_requires_grad_flags():
    spec, _ = sequential([["Linear", 2, 1]], np.random.default_rng(1))
    spec["grad"] = {"0.weight": torch.ones(1, 2), "0.bias": torch.ones(1)}

    def step_without_zero_grad(model, lr):
        model(torch.ones(1, 2)).sum().backward()                       # adds to the pre-filled gradient
        with torch.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
        model[0].bias.requires_grad_(False)
        return None

    a = ask({"op": "call", "target": "step", "args": wire.to_plain([spec, 0.5]), "state_of": [0]},
            {"step": step_without_zero_grad})
    assert a.ok, a.message
    w0 = np.asarray(spec["state"]["0.weight"])
    assert np.allclose(a.states[0]["0.weight"], w0 - 0.5 * (1 + 1))  # the pre-filled 1 plus the new gradient 1
    assert a.states[0]["0.weight"].grad and not a.states[0]["0.bias"].grad
