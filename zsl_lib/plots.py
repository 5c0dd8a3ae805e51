"""Figures the chapters share: loss curves of several runs, validation learning curves, and
attention over image patches."""
from __future__ import annotations

import numpy as np


def smooth(values, window: int) -> np.ndarray:
    """Running mean over `window` steps (shorter at the start)."""
    values = np.asarray(values, dtype=np.float64)
    csum = np.cumsum(np.insert(values, 0, 0.0))
    starts = np.maximum(np.arange(1, len(values) + 1) - window, 0)
    return (csum[1:] - csum[starts]) / (np.arange(1, len(values) + 1) - starts)


def loss_curves(ax, runs: dict[str, list[dict]], term: str = "total", window: int = 10) -> None:
    """One smoothed curve of a loss term per run (`runs`: name -> `train` history)."""
    for name, history in runs.items():
        ax.plot(smooth([h[term] for h in history], window), label=name)
    ax.set_xlabel("step")
    ax.set_ylabel(f"{term} loss (running mean of {window})")
    ax.legend(fontsize=8)


def validation_curves(ax, runs: dict[str, dict], budget_steps: int) -> None:
    """Validation H at each epoch end against the validation run's step, one line per stored run
    (`runs`: label -> a record of `zsl_lib.experiment` with `metrics.validation_curve`), and a
    dashed line at `budget_steps`, the validation run of the book recipe."""
    for label, record in runs.items():
        curve = record["metrics"]["validation_curve"]
        ax.plot([p["step"] for p in curve], [p["H_val"] for p in curve], marker="o", markersize=3, label=label)
    ax.axvline(budget_steps, color="grey", linestyle="--", linewidth=1, label="book recipe")
    ax.set_xlabel("step of the validation run")
    ax.set_ylabel("H on validation classes (%)")
    ax.legend(fontsize=8)


def patch_grid(weights) -> np.ndarray:
    """(N,) weights over a square grid of patches -> (n, n)."""
    weights = np.asarray(weights, dtype=np.float64).reshape(-1)
    side = int(round(np.sqrt(len(weights))))
    if side * side != len(weights):
        raise ValueError(f"{len(weights)} patch weights do not form a square grid")
    return weights.reshape(side, side)


def attention_overlay(ax, image: np.ndarray, weights, title: str | None = None, alpha: float = 0.6) -> None:
    """An image with attention over its patches drawn on top (each patch one flat cell)."""
    grid = patch_grid(weights)
    size = image.shape[0]
    ax.imshow(image, interpolation="nearest")
    ax.imshow(grid, cmap="inferno", alpha=alpha, extent=(0, size, size, 0), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)
