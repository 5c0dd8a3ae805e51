"""One training loop, readable top to bottom, for any model with `training_losses(x, labels)`.

The model trains on the images of one ToyBirds split with labels given as columns of
its seen classes (`model.seen_classes`); everything else (optimiser, schedule, seeds) is
in `TrainConfig`. Evaluation lives in `zsl_lib.evaluate`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from . import metrics
from .backbones import batch_to_input
from .runtime import resolve_device, seed_everything, warmup_cosine


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 300
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 10
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "auto"
    log_every: int = 25


def train(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, cfg: TrainConfig, log=print) -> list[dict]:
    """Train on uint8 images (N, H, W, 3) with class ids `labels` (N,); returns the loss history.

    Adam (L2-style weight decay, as the papers' code) with linear warm-up and cosine decay,
    gradient clipping, fp32 on the CPU and bf16 autocast on CUDA. A non-finite loss stops
    the run with the step and the term that went wrong.
    """
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    model.to(device).train()
    seen = model.seen_classes.cpu().numpy()
    try:
        targets, _ = metrics.columns(seen, labels, seen)
    except ValueError as err:
        raise ValueError(f"training labels include classes that are not the model's seen classes: {err}") from err
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, cfg.warmup_steps, cfg.steps))
    rng = np.random.default_rng(cfg.seed)
    order, cursor = rng.permutation(len(images)), 0
    history, start = [], time.time()
    for step in range(cfg.steps):
        if cursor + cfg.batch_size > len(order):                  # a new epoch
            order, cursor = rng.permutation(len(images)), 0
        batch = np.sort(order[cursor:cursor + cfg.batch_size])
        cursor += cfg.batch_size
        x = batch_to_input(images[batch], device)
        y = torch.from_numpy(targets[batch]).to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            terms = model.training_losses(x, y)
        bad = [k for k, v in terms.items() if not torch.isfinite(v)]
        if bad:
            raise FloatingPointError(f"step {step}: loss term(s) {bad} are not finite "
                                     f"({ {k: terms[k].item() for k in bad} }); lower the learning rate")
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        sched.step()
        history.append({k: round(v.item(), 5) for k, v in terms.items()})
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            log(f"step {step}/{cfg.steps} loss {history[-1]['total']:.4f} ({time.time() - start:.0f} s)")
    model.eval()
    return history
