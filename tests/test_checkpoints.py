"""Checkpoints: the hash covers the tensors only (two identical trainings agree), provenance is recorded, the
shipped legacy file still loads, and `course checkpoint NAME` regenerates a checkpoint by running its lecture."""
import re
from pathlib import Path

import nbformat
import pytest
import torch

from course_utils import checkpoints
from course_utils.checkpoints import CheckpointError, load_checkpoint, save_checkpoint, tensor_sha256
from course_utils.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _train(seed: int, steps: int = 30) -> dict:
    """A tiny seeded regression: the same seed gives bit-identical weights."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x = torch.randn(64, 4)
    y = x.sum(1, keepdim=True)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        opt.step()
    return {"net": net.state_dict(), "step": torch.tensor(steps)}


def test_two_identical_trainings_hash_the_same(tmp_path, capsys):
    a = save_checkpoint(tmp_path / "a.pt", _train(0), config={"steps": 30}, seed=0, data="embedded digits")
    b = save_checkpoint(tmp_path / "b.pt", _train(0), config={"steps": 30, "note": "rerun"}, seed=0, data="other")
    assert a == b == tensor_sha256(_train(0)), "provenance, paths and run time are not hashed"
    assert save_checkpoint(tmp_path / "c.pt", _train(1), config={}, seed=1, data="d") != a
    assert f"tensors SHA-256 {a}" in capsys.readouterr().out
    assert tensor_sha256({"w": torch.zeros(2)}) != tensor_sha256({"v": torch.zeros(2)}) != \
        tensor_sha256({"w": torch.zeros(2, dtype=torch.float64)})


def test_load_verifies_and_prints_the_provenance(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COURSE_MODE", "full")
    state = _train(0)
    digest = save_checkpoint(tmp_path / "tiny.pt", state, config={"steps": 30, "shape": (4, 8)}, seed=0,
                             data="embedded digits")
    loaded = load_checkpoint("tiny", digest, folder=tmp_path)
    out = capsys.readouterr().out
    assert torch.equal(loaded["net"]["0.weight"], state["net"]["0.weight"]) and loaded["step"].item() == 30
    for shown in ("tensors SHA-256 verified", f"torch {torch.__version__}", "seed 0",
                  f"{torch.get_num_threads()} threads", "full mode", "data: embedded digits", '"shape": [4, 8]'):
        assert shown in out, shown
    assert re.search(r"commit ([0-9a-f]{40}|unknown)", out)
    assert load_checkpoint(tmp_path / "tiny.pt", digest, verbose=False)["step"].item() == 30


def test_tampered_corrupt_or_other_checkpoints_are_refused(tmp_path):
    path = tmp_path / "tiny.pt"
    digest = save_checkpoint(path, {"w": torch.zeros(3)}, config={}, seed=0, data="d")
    with pytest.raises(CheckpointError, match="another version.*course checkpoint tiny"):
        load_checkpoint(path, "0" * 64)
    saved = torch.load(path, weights_only=True)
    saved["state_dict"]["w"][0] = 1.0
    torch.save(saved, path)
    with pytest.raises(CheckpointError, match="not the recorded.*corrupt"):
        load_checkpoint(path, digest)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="corrupt or from another version"):
        load_checkpoint(path, digest)
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint("absent", digest, folder=tmp_path)
    with pytest.raises(TypeError, match="'meta' is a str.*config="):
        save_checkpoint(tmp_path / "x.pt", {"w": torch.zeros(1), "meta": "notes"}, config={}, seed=0, data="d")


def test_the_shipped_legacy_checkpoint_still_loads(capsys):
    source = "".join("".join(c["source"]) for c in nbformat.read(ROOT / "lectures" / "10_dalle_and_diffusion.ipynb",
                                                                  as_version=4).cells)
    pinned = re.findall(r'"([0-9a-f]{64})"', source)
    assert len(pinned) == 1, "lecture 10 pins one SHA-256 for checkpoints/l10_dalle2.pt"
    state = load_checkpoint("l10_dalle2", pinned[0])
    assert {"clip", "decoder"} <= set(state) and all(isinstance(v, torch.Tensor) for v in state["decoder"].values())
    assert "l10_dalle2.pt" in capsys.readouterr().out


def test_checkpoint_names_say_their_lecture():
    assert checkpoints.lecture_of("l10_dalle2") == "10"
    for bad in ("dalle2", "l1_x", "lxx_y", "l10"):
        with pytest.raises(ValueError, match="l<NN>_<what>"):
            checkpoints.lecture_of(bad)


TINY_LECTURE = '''
from pathlib import Path
import torch
from course_utils import is_quick
from course_utils.checkpoints import load_checkpoint, regenerating, save_checkpoint
torch.manual_seed(0)
state = {"w": torch.randn(3)}
if regenerating("l99_tiny"):
    assert not is_quick(), "checkpoints are regenerated in full mode"
    save_checkpoint(Path.cwd().parent / "checkpoints" / "l99_tiny.pt", state, config={"n": 3}, seed=0, data="none")
'''


@pytest.mark.slow
def test_course_checkpoint_runs_the_lecture_in_full_mode(tmp_path, monkeypatch, capsys):
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")
    (tmp_path / "lectures").mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(TINY_LECTURE)])
    nbformat.write(nb, tmp_path / "lectures" / "99_tiny.ipynb")
    monkeypatch.setenv("COURSE_ROOT", str(tmp_path))
    monkeypatch.setenv("COURSE_MODE", "quick")
    monkeypatch.delenv(checkpoints.REGENERATE_ENV, raising=False)
    assert main(["checkpoint", "l99_tiny"]) == 0
    torch.manual_seed(0)
    expected = tensor_sha256({"w": torch.randn(3)})
    assert f"tensors SHA-256 {expected}" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "checkpoints" / "l99_tiny.pt", expected, verbose=False)["w"].shape == (3,)
    (tmp_path / "lectures" / "98_nothing.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    assert main(["checkpoint", "l98_none"]) == 1
    assert "did not write" in capsys.readouterr().out
