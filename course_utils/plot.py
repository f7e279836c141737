"""Plots that several lectures share: image grids, loss curves, 2-D latent maps, interpolation strips."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torchvision.utils import make_grid


def _as_images(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Images as a float CPU tensor (N, C, H, W); accepts (N, H, W) and flat (N, 784)."""
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    x = x.detach().float().cpu()
    if x.dim() == 2 and x.shape[1] == 784:
        x = x.view(-1, 1, 28, 28)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), (N, H, W) or (N, 784); got {tuple(x.shape)}")
    return x


def show_grid(images: torch.Tensor | np.ndarray, nrow: int = 8, title: str | None = None, ax: plt.Axes | None = None,
              value_range: tuple[float, float] | None = (0.0, 1.0), figsize: tuple[float, float] | None = None) -> plt.Axes:
    """Show a batch of images as one grid (torchvision.utils.make_grid)."""
    x = _as_images(images)
    grid = make_grid(x, nrow=nrow, padding=2, pad_value=1.0, normalize=value_range is not None,
                     value_range=value_range)
    if ax is None:
        rows = int(np.ceil(len(x) / nrow))
        _, ax = plt.subplots(figsize=figsize or (min(1.0 * nrow, 12), min(1.0 * rows, 12) + 0.4))
    ax.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray", interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title)
    return ax


def show_rows(rows: Mapping[str, torch.Tensor], n: int = 10, figsize: tuple[float, float] | None = None) -> plt.Figure:
    """Show named rows of images one above the other (e.g. {'input': x, 'PCA': a, 'AE': b})."""
    fig, axes = plt.subplots(len(rows), 1, figsize=figsize or (n * 0.9, 1.1 * len(rows)), squeeze=False)
    for ax, (name, imgs) in zip(axes[:, 0], rows.items()):
        show_grid(_as_images(imgs)[:n], nrow=n, ax=ax)
        ax.set_title(name, loc="left", fontsize=9)
    fig.tight_layout()
    return fig


def plot_losses(history: Mapping[str, Sequence[float]], title: str | None = None, ax: plt.Axes | None = None,
                logy: bool = False, xlabel: str = "epoch") -> plt.Axes:
    """Plot named loss curves against epochs (or steps)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    for name, values in history.items():
        ax.plot(np.arange(1, len(values) + 1), values, label=name, marker="o" if len(values) < 30 else None, ms=3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("loss")
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def latent_scatter(z: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray, title: str | None = None,
                   ax: plt.Axes | None = None, s: float = 4.0) -> plt.Axes:
    """Scatter 2-D codes coloured by digit label, with a 0-9 legend."""
    z = np.asarray(torch.as_tensor(z).detach().cpu())
    labels = np.asarray(torch.as_tensor(labels).detach().cpu())
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"latent_scatter needs codes of shape (N, 2); got {z.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.2))
    cmap = plt.get_cmap("tab10")
    for c in np.unique(labels):
        m = labels == c
        ax.scatter(z[m, 0], z[m, 1], s=s, color=cmap(int(c) % 10), label=str(int(c)), alpha=0.7)
    ax.legend(markerscale=3, fontsize=7, ncol=2, loc="best", framealpha=0.6)
    if title:
        ax.set_title(title)
    return ax


def interpolation_strip(frames: torch.Tensor | np.ndarray, title: str | None = None, ax: plt.Axes | None = None) -> plt.Axes:
    """Show an interpolation (or denoising) path as a single row of images."""
    x = _as_images(frames)
    return show_grid(x, nrow=len(x), title=title, ax=ax, figsize=(len(x) * 0.8, 1.3))


def lerp(a: torch.Tensor, b: torch.Tensor, steps: int = 10) -> torch.Tensor:
    """Linear interpolation from a to b in `steps` points (a and b stacked along a new first axis)."""
    t = torch.linspace(0, 1, steps, device=a.device).view(-1, *([1] * a.dim()))
    return (1 - t) * a.unsqueeze(0) + t * b.unsqueeze(0)
