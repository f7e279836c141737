"""MNIST sources in order (folder, download, embedded), clear errors for bad folders, and the batch iterator."""
import gzip
import shutil

import numpy as np
import pytest
import torch

from course_utils import data
from course_utils.data import DataError, batches, mnist


@pytest.fixture(scope="module")
def embedded():
    return data.embedded_mnist()


def _idx(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture(scope="module")
def mnist_folder(tmp_path_factory, embedded):
    """A complete torchvision-format folder built from the embedded digits (tiled to MNIST's sizes)."""
    root = tmp_path_factory.mktemp("course_data")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    imgs = (embedded.x_train.squeeze(1).numpy() * 255).round().astype(np.uint8)
    labels = embedded.y_train.numpy().astype(np.uint8)
    for prefix, count in (("train", 60000), ("t10k", 10000)):
        idx = np.arange(count) % len(imgs)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(_idx(imgs[idx], 2051))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx(labels[idx], 2049))
    return root


def test_embedded_split_is_deterministic_and_balanced(embedded):
    assert embedded.x_train.shape == (4000, 1, 28, 28) and embedded.x_test.shape == (1000, 1, 28, 28)
    assert torch.bincount(embedded.y_test).tolist() == [100] * 10
    assert embedded.x_train.dtype == torch.float32 and 0 <= embedded.x_train.min() and embedded.x_train.max() <= 1
    again = data.embedded_mnist()
    assert torch.equal(again.x_test, embedded.x_test) and torch.equal(again.y_train, embedded.y_train)
    # train and test are disjoint images
    train_keys = {bytes(x.numpy().tobytes()) for x in embedded.x_train[:, 0, 10]}
    assert embedded.source.startswith("embedded")
    assert len(train_keys) > 100


def test_offline_auto_uses_embedded_and_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    d = mnist(root=tmp_path)
    assert "embedded" in d.source and "embedded" in capsys.readouterr().out
    assert data.online() is False


def test_folder_is_preferred_and_read_exactly(mnist_folder, embedded):
    d = mnist(root=mnist_folder, verbose=False)
    assert "MNIST folder" in d.source and d.x_train.shape == (60000, 1, 28, 28) and d.x_test.shape == (10000, 1, 28, 28)
    assert torch.allclose(d.x_train[:10], embedded.x_train[:10], atol=1 / 255)
    assert torch.equal(d.y_train[:4000], embedded.y_train)


def test_gzipped_folder_reads_too(mnist_folder, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (mnist_folder / "MNIST" / "raw").iterdir():
        with open(f, "rb") as src, gzip.open(raw / (f.name + ".gz"), "wb", compresslevel=1) as dst:
            shutil.copyfileobj(src, dst)
    assert mnist(root=tmp_path, verbose=False).x_test.shape == (10000, 1, 28, 28)


def test_partial_folder_names_the_missing_file(mnist_folder, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    shutil.copytree(mnist_folder / "MNIST" / "raw", raw)
    (raw / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.*missing"):
        mnist(root=tmp_path)


def test_truncated_file_names_the_file(mnist_folder, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    shutil.copytree(mnist_folder / "MNIST" / "raw", raw)
    bad = raw / "train-images-idx3-ubyte"
    bad.write_bytes(bad.read_bytes()[:1000])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*truncated"):
        mnist(root=tmp_path)
    bad.write_bytes(b"not an idx file at all")
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*bad header"):
        mnist(root=tmp_path)


def test_failed_download_falls_back_loudly(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(data, "online", lambda timeout=2.0: True)

    def fail(root):
        raise OSError("connection reset")
    monkeypatch.setattr(data, "_download", fail)
    d = mnist(root=tmp_path)
    assert "embedded" in d.source and "download failed" in capsys.readouterr().out
    with pytest.raises(RuntimeError, match="source='embedded'"):
        mnist(root=tmp_path, source="download")


def test_subsets_are_seeded(tmp_path):
    a = mnist(root=tmp_path, n_train=500, n_test=100, seed=3, verbose=False)
    b = mnist(root=tmp_path, n_train=500, n_test=100, seed=3, verbose=False)
    assert a.x_train.shape[0] == 500 and a.x_test.shape[0] == 100
    assert torch.equal(a.y_train, b.y_train)
    with pytest.raises(ValueError, match="source"):
        mnist(source="internet")


def test_batches_cover_every_index_once():
    x, y = torch.arange(103).float(), torch.arange(103)
    seen = torch.cat([yb for _, yb in batches(x, y, batch_size=10, generator=torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == list(range(103)) and seen.tolist() != list(range(103))
    assert [len(b[0]) for b in batches(x, batch_size=10, shuffle=False, drop_last=True)] == [10] * 10
    assert torch.equal(next(batches(x, y, batch_size=5, shuffle=False))[1], torch.arange(5))
    with pytest.raises(ValueError, match="different lengths"):
        next(batches(x, y[:5], batch_size=4))
