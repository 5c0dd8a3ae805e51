"""Scoring a trained model on ToyBirds splits, with the foundation's metrics.

`class_scores` runs the model over images; `evaluate` turns the scores of the test
splits into T1, U / S / H (without calibration and at a gamma chosen on validation),
and AUSUC; `choose_gamma` picks gamma on the validation protocol (`val_seen` +
`val_unseen`, scored against `trainclasses1` + `valclasses1`) of a model trained on
`train` only.
"""
from __future__ import annotations

import numpy as np
import torch

from . import metrics
from .backbones import batch_to_input
from .runtime import resolve_device
from .toyworld.dataset import ToyBirds


@torch.no_grad()
def class_scores(model: torch.nn.Module, images: np.ndarray, batch_size: int = 128, device: str = "auto") -> np.ndarray:
    """The model's scores of every class for uint8 images (N, H, W, 3): (N, C)."""
    dev = resolve_device(device)
    model.to(dev).eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = batch_to_input(images[start:start + batch_size], dev)
        out.append(model(x).float().cpu().numpy())
    return np.concatenate(out)


def _columns(world: ToyBirds, stage: str, model, device):
    idx, candidates, seen = world.protocol(stage)
    scores = class_scores(model, world.images[idx], device=device)[:, candidates]
    labels, seen_cols = metrics.columns(candidates, world.labels[idx], seen)
    return scores, labels, seen_cols


def choose_gamma(model: torch.nn.Module, world: ToyBirds, form: str, device: str = "auto") -> metrics.GZSLResult:
    """Best validation H and its gamma, for a model trained with `trainclasses1` as its seen classes."""
    scores, labels, seen_cols = _columns(world, "val", model, device)
    return metrics.seen_unseen_curve(scores, labels, seen_cols, form).best()


def evaluate(model: torch.nn.Module, world: ToyBirds, gamma: float, form: str, device: str = "auto") -> dict:
    """Test-split report (fractions) of a model trained on `trainval`, at a given gamma."""
    scores, labels, seen_cols = _columns(world, "test", model, device)
    return metrics.gzsl_report(scores, labels, seen_cols, gamma, form)
