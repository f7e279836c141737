"""MNIST sources in order (folder, download, embedded), the quick-mode budget, clear errors, and the batch iterator."""
import gzip
import shutil

import pytest
import torch

from course_utils import data
from course_utils.data import QUICK_PER_CLASS, SOURCE_ENV, DataError, batches, mnist


@pytest.fixture(autouse=True)
def quick_auto(monkeypatch):
    """Each test starts in quick mode with no forced source (conftest forces the embedded digits for lectures)."""
    monkeypatch.setenv("COURSE_MODE", "quick")
    monkeypatch.delenv(SOURCE_ENV, raising=False)


@pytest.fixture(scope="module")
def embedded():
    return data.embedded_mnist()


@pytest.fixture(scope="module")
def mnist_folder(tmp_path_factory, embedded):
    """A complete torchvision-format folder built from the embedded digits (tiled to MNIST's sizes)."""
    root = tmp_path_factory.mktemp("course_data")
    train, test = torch.arange(60000) % len(embedded.x_train), torch.arange(10000) % len(embedded.x_train)
    x, y = embedded.x_train, embedded.y_train
    data.write_folder(data.Digits(x[train], y[train], x[test], y[test], "tiled"), root)
    return root


@pytest.fixture(scope="module")
def shifted_folder(tmp_path_factory, embedded):
    """A valid folder of 12,000 train / 2,000 test digits: the embedded ones repeated, each copy shifted 1-2 px."""
    root = tmp_path_factory.mktemp("shifted")

    def copies(x: torch.Tensor, n: int) -> torch.Tensor:
        return torch.cat([torch.roll(x, shifts=k, dims=3 - k % 2) for k in range(1, n + 1)])

    e = embedded
    data.write_folder(data.Digits(copies(e.x_train, 3), e.y_train.repeat(3), copies(e.x_test, 2), e.y_test.repeat(2),
                                  "shifted"), root)
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


def test_folder_is_preferred_and_read_exactly(mnist_folder, embedded, monkeypatch):
    monkeypatch.setenv("COURSE_MODE", "full")
    d = mnist(root=mnist_folder, verbose=False)
    assert "MNIST folder" in d.source and d.x_train.shape == (60000, 1, 28, 28) and d.x_test.shape == (10000, 1, 28, 28)
    assert torch.allclose(d.x_train[:10], embedded.x_train[:10], atol=1 / 255)
    assert torch.equal(d.y_train[:4000], embedded.y_train)


def test_gzipped_folder_reads_too(mnist_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_MODE", "full")
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


def test_quick_mode_draws_the_same_budget_from_any_source(shifted_folder, embedded, capsys):
    n_train, n_test = QUICK_PER_CLASS
    d = mnist(root=shifted_folder)
    out = capsys.readouterr().out
    assert d.x_train.shape == embedded.x_train.shape == (10 * n_train, 1, 28, 28)
    assert d.x_test.shape == embedded.x_test.shape == (10 * n_test, 1, 28, 28)
    assert torch.bincount(d.y_train).tolist() == [n_train] * 10 and torch.bincount(d.y_test).tolist() == [n_test] * 10
    assert "MNIST folder" in d.source and "12,000 train / 2,000 test" in out and "4,000 train / 1,000 test" in out
    assert "per class" in d.budget and "seed 0" in d.budget and d.budget in out
    again = mnist(root=shifted_folder, verbose=False)
    assert torch.equal(again.x_train, d.x_train) and torch.equal(again.y_test, d.y_test)
    other = mnist(root=shifted_folder, seed=1, verbose=False)
    assert not torch.equal(other.x_train, d.x_train), "the subset is drawn with the seed"
    # the draw mixes the shifted copies (it is not the first 4,000 rows) and keeps the source's order
    assert not torch.equal(d.x_train[:100], data._load_folder(shifted_folder).x_train[:100])


def test_quick_mode_keeps_the_embedded_digits_as_they_are(embedded):
    d = mnist(source="embedded", verbose=False)
    assert torch.equal(d.x_train, embedded.x_train) and torch.equal(d.y_test, embedded.y_test)


def test_full_mode_uses_every_digit_of_a_folder_of_any_size(shifted_folder, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_MODE", "full")
    d = mnist(root=shifted_folder)
    assert d.x_train.shape[0] == 12000 and d.x_test.shape[0] == 2000
    assert "full mode: all digits" in capsys.readouterr().out


def test_bad_folders_are_refused_whatever_their_size(shifted_folder, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    shutil.copytree(shifted_folder / "MNIST" / "raw", raw)
    bad = raw / "train-images-idx3-ubyte"
    good = bad.read_bytes()
    bad.write_bytes(good[:-784])  # one image short of what the header promises
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*truncated"):
        mnist(root=tmp_path)
    bad.write_bytes(good[:4] + (11999).to_bytes(4, "big") + good[8:-784])  # a valid file, one image fewer than labels
    with pytest.raises(DataError, match="11,999 train images but 12,000 labels"):
        mnist(root=tmp_path)


def test_quick_budget_needs_enough_digits_of_each_class(tmp_path, embedded):
    keep = embedded.y_train != 3
    e = embedded
    data.write_folder(data.Digits(e.x_train[keep], e.y_train[keep], e.x_test, e.y_test, "no threes"), tmp_path)
    with pytest.raises(DataError, match="0 digits of class 3.*COURSE_MODE=full"):
        mnist(root=tmp_path)


def test_written_folder_reads_back_exactly(embedded, tmp_path):
    data.write_folder(embedded, tmp_path)
    back = data._load_folder(tmp_path)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(back, name), getattr(embedded, name)), name


def test_source_switch_forces_the_embedded_digits_over_a_cache(mnist_folder, monkeypatch):
    monkeypatch.setenv(SOURCE_ENV, "embedded")
    assert "embedded" in mnist(root=mnist_folder, verbose=False).source
    assert "MNIST folder" in mnist(root=mnist_folder, source="folder", verbose=False).source  # an argument wins
    monkeypatch.setenv(SOURCE_ENV, "cache")
    with pytest.raises(ValueError, match="COURSE_DATA_SOURCE='cache'.*embedded"):
        mnist(root=mnist_folder)


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
