"""Shipped weights load only when their checksum matches; failures say how to fix them."""
import pytest
import torch

from course_utils.checkpoints import CheckpointError, load_checkpoint, save_checkpoint


def test_round_trip_and_checksum(tmp_path):
    state = {"w": torch.arange(6.0).view(2, 3), "net": {"bias": torch.ones(2)}}
    digest = save_checkpoint(state, "tiny", folder=tmp_path)
    assert digest == save_checkpoint(state, "tiny", folder=tmp_path), "saving must be byte-stable"
    loaded = load_checkpoint("tiny", digest, folder=tmp_path)
    assert torch.equal(loaded["w"], state["w"]) and torch.equal(loaded["net"]["bias"], torch.ones(2))


def test_corrupt_or_missing_checkpoint_is_refused(tmp_path):
    digest = save_checkpoint({"w": torch.zeros(3)}, "tiny", folder=tmp_path)
    path = tmp_path / "tiny.pt"
    path.write_bytes(path.read_bytes()[:-8] + b"garbage!")
    with pytest.raises(CheckpointError, match="corrupt or from another version"):
        load_checkpoint("tiny", digest, folder=tmp_path)
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint("absent", digest, folder=tmp_path)
