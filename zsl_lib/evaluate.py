"""Scoring a trained model on a dataset's splits (ToyBirds or a real benchmark), with the foundation's metrics.

`class_scores` runs the model over images; `evaluate` turns the scores of the test
splits into T1, U / S / H (without calibration and at a gamma chosen on validation),
and AUSUC; `choose_gamma` picks gamma on the validation protocol (`val_seen` +
`val_unseen`, scored against `trainclasses1` + `valclasses1`) of a model trained on
`train` only.

A calibration is a score transform plus a form of `metrics.calibrate`:
- "eq19": the paper's Eq. (19), a softmax over all classes, then + gamma on unseen ones;
- "zscore_stacking": each image's scores z-scored over its candidate classes, then
  - gamma on seen ones (calibrated stacking; what the foundation's baseline uses);
- "stacking": - gamma on the raw seen scores (Mg-MRN's code; its scores are sums of
  scaled cosines, which do not depend on the number of candidate classes).
The validation protocol has 75 candidate classes and the test 100, so gamma must mean
the same thing on both: a softmax probability does not (it shrinks with the number of
classes), a z-score roughly does.

Scoring a split is the slow part; `split_scores` does it once, and `choose_gamma` /
`evaluate` take its result (`scored=`) to apply several calibrations to one forward pass.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from . import metrics
from .runtime import autocast_dtype, configure_cuda, resolve_device
from .splits import SplitProtocol

CALIBRATIONS = {"eq19": (False, "softmax_add_unseen"), "zscore_stacking": (True, "subtract_seen"),
                "stacking": (False, "subtract_seen")}


@torch.no_grad()
def class_scores(model: torch.nn.Module, images: np.ndarray, *, normalize: Callable[[torch.Tensor], torch.Tensor],
                 batch_size: int = 128, device: str = "auto", indices: np.ndarray | None = None,
                 precision: str = "auto") -> np.ndarray:
    """The model's scores of every class for uint8 images (N, H, W, 3), or for their rows `indices`: (n, C).

    `normalize` turns uint8 pixels into the backbone's input: the dataset's own (`world.normalize`).

    Images are read batch by batch, so a memory-mapped cache is never loaded whole (AWA2's test
    split is about 8 GB at 448 px). The forward runs under the autocast of `precision` ("auto":
    bf16 on CUDA, plain fp32 on the CPU) with the GPU's fast paths (`runtime.configure_cuda`).
    """
    dev = resolve_device(device)
    model.to(dev).eval()
    memory_format = configure_cuda(dev, model)
    dtype = autocast_dtype(precision, dev)
    rows = np.arange(len(images)) if indices is None else np.asarray(indices)
    out = []
    for start in range(0, len(rows), batch_size):
        x = normalize(torch.from_numpy(np.asarray(images[rows[start:start + batch_size]])).to(dev))
        if dev.type == "cuda":
            x = x.contiguous(memory_format=memory_format)
        with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out.append(model(x).float().cpu().numpy())
    return np.concatenate(out)


def calibration(name: str) -> tuple[bool, str]:
    """(standardise rows?, `metrics.calibrate` form) of a named calibration."""
    if name not in CALIBRATIONS:
        raise ValueError(f"unknown calibration {name!r}; choose one of {sorted(CALIBRATIONS)}")
    return CALIBRATIONS[name]


def split_scores(model: torch.nn.Module, world: SplitProtocol, stage: str, device: str = "auto",
                 precision: str = "auto"):
    """Raw scores of the images of a protocol stage ("val" or "test") over its candidate classes, their
    labels as columns, and the seen-column mask: ((n, K), (n,), (K,)). `precision` as in training
    (`TrainConfig.precision`), so a run trained in fp32 is also scored in fp32."""
    idx, candidates, seen = world.protocol(stage)
    scores = class_scores(model, world.images, device=device, normalize=world.normalize, indices=idx,
                          precision=precision)[:, candidates]
    labels, seen_cols = metrics.columns(candidates, world.labels[idx], seen)
    return scores, labels, seen_cols


def _calibrated(name: str, scored) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    standardize, form = calibration(name)
    scores, labels, seen_cols = scored
    return (metrics.standardize_rows(scores) if standardize else scores), labels, seen_cols, form


def choose_gamma(model: torch.nn.Module, world: SplitProtocol, name: str, device: str = "auto",
                 scored=None, precision: str = "auto") -> metrics.GZSLResult:
    """Best validation H and its gamma, for a model trained with `trainclasses1` as its seen classes
    (`scored`: this model's `split_scores(..., "val")`, if already computed)."""
    scores, labels, seen_cols, form = _calibrated(name, scored or split_scores(model, world, "val", device, precision))
    return metrics.seen_unseen_curve(scores, labels, seen_cols, form).best()


def evaluate(model: torch.nn.Module, world: SplitProtocol, gamma: float, name: str, device: str = "auto",
             scored=None, precision: str = "auto") -> dict:
    """Test-split report (fractions) of a model trained on `trainval`, at a given gamma
    (`scored`: this model's `split_scores(..., "test")`, if already computed)."""
    scores, labels, seen_cols, form = _calibrated(name, scored or split_scores(model, world, "test", device, precision))
    return metrics.gzsl_report(scores, labels, seen_cols, gamma, form)
