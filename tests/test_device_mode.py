"""Device selection never touches CUDA unguarded; seeding is reproducible; COURSE_MODE is parsed strictly."""
import random

import numpy as np
import pytest
import torch

from course_utils import device as dev
from course_utils import mode


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(dev, "_cuda_available", lambda: True)
    assert dev.get_device("auto", verbose=False).type == "cuda"
    monkeypatch.setattr(dev, "_cuda_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda: True)
    assert dev.get_device("auto", verbose=False).type == "mps"
    monkeypatch.setattr(dev, "_mps_available", lambda: False)
    assert dev.get_device("auto", verbose=False).type == "cpu"


def test_asking_for_a_missing_device_says_what_to_do(monkeypatch):
    monkeypatch.setattr(dev, "_cuda_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda: False)
    with pytest.raises(RuntimeError, match="get_device\\('auto'\\)"):
        dev.get_device("cuda")
    with pytest.raises(RuntimeError, match="MPS"):
        dev.get_device("mps")
    with pytest.raises(ValueError, match="unknown device"):
        dev.get_device("tpu")


def test_broken_cuda_driver_falls_back_to_cpu(monkeypatch):
    def boom():
        raise RuntimeError("driver too old")
    monkeypatch.setattr(torch.cuda, "is_available", boom)
    assert dev._cuda_available() is False
    monkeypatch.setattr(dev, "_mps_available", lambda: False)
    assert dev.get_device("auto", verbose=False).type == "cpu"


def test_get_device_reports_its_choice(capsys, monkeypatch):
    monkeypatch.setattr(dev, "_cuda_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda: False)
    dev.get_device()
    assert "device: cpu" in capsys.readouterr().out


def test_seed_everything_reproduces_python_numpy_torch():
    def draw():
        gen = dev.seed_everything(123)
        return random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=gen).item()
    assert draw() == draw()
    dev.seed_everything(124)
    assert random.random() != draw()[0]


def test_set_threads_reads_env(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("COURSE_THREADS", "1")
        assert dev.set_threads() == 1 and torch.get_num_threads() == 1
        assert dev.set_threads(2) == 2
    finally:
        torch.set_num_threads(before)


def test_mode_switch(monkeypatch):
    monkeypatch.setenv("COURSE_MODE", "full")
    assert mode.course_mode() == "full" and mode.pick(1, 2) == 2
    monkeypatch.setenv("COURSE_MODE", "QUICK")
    assert mode.is_quick() and mode.pick(1, 2) == 1
    monkeypatch.setenv("COURSE_MODE", "fast")
    with pytest.raises(ValueError, match="'quick' or 'full'"):
        mode.course_mode()


def test_mode_default_follows_the_hardware(monkeypatch):
    monkeypatch.delenv("COURSE_MODE", raising=False)
    monkeypatch.setattr(mode, "_cuda_available", lambda: True)
    assert mode.course_mode() == "full"
    monkeypatch.setattr(mode, "_cuda_available", lambda: False)
    assert mode.course_mode() == "quick"


def test_pick_refuses_a_no_op(monkeypatch):
    monkeypatch.setenv("COURSE_MODE", "quick")
    for quick, full in ((20, 20), (None, None), (0.5, 0.5), ("adam", "adam"), ((1, 2), (1, 2))):
        with pytest.raises(ValueError, match="no-op.*each mode its own budget"):
            mode.pick(quick, full)
    assert mode.pick(None, 1000) is None and mode.pick((1, 2), (1, 3)) == (1, 2)
    assert torch.equal(mode.pick(torch.zeros(3), torch.zeros(3)), torch.zeros(3))  # tensors are not compared
