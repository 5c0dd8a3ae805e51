"""Frozen features for linear probes: a backbone's pooled tokens, or raw pixels as a control."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .backbones import batch_to_input, load_or_pretrain, random_init


@torch.no_grad()
def backbone_features(model: nn.Module, images: np.ndarray, batch_size: int = 256,
                      device: str | torch.device = "cpu") -> np.ndarray:
    """Frozen features of uint8 images (N, H, W, 3).

    A ViT gives [CLS ; mean of patch tokens] of its last (normalised) layer, (N, 2D);
    a CNN gives the global average of its last feature map, (N, C).
    """
    model = model.to(device).eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = batch_to_input(images[start:start + batch_size], device)
        tokens = model.forward_features(x)
        if tokens.ndim == 3:                                      # (B, prefix + N, D)
            prefix = getattr(model, "num_prefix_tokens", 1)
            feats = torch.cat([tokens[:, 0], tokens[:, prefix:].mean(1)], dim=1)  # (B, 2D)
        else:                                                      # (B, C, h, w)
            feats = tokens.mean(dim=(2, 3))                        # (B, C)
        out.append(feats.float().cpu().numpy())
    return np.concatenate(out)


def pixel_features(images: np.ndarray, size: int = 16) -> np.ndarray:
    """Raw pixels, area-downsampled to size x size, flattened: (N, size * size * 3)."""
    x = torch.tensor(np.asarray(images)).permute(0, 3, 1, 2).float() / 255.0
    return F.adaptive_avg_pool2d(x, size).flatten(1).numpy()


def extract(extractor: str, images: np.ndarray, device: str | torch.device = "cpu") -> np.ndarray:
    """Features of uint8 images (N, H, W, 3) for one extractor: "pixels" (16 x 16 raw pixels), a toy
    backbone's name (its shipped pretrained weights) or "random:<name>" (that architecture with
    random weights, seed 0: the control that shows what pretraining adds)."""
    if extractor == "pixels":
        return pixel_features(images)
    if extractor.startswith("random:"):
        return backbone_features(random_init(extractor.split(":", 1)[1]), images, device=device)
    return backbone_features(load_or_pretrain(extractor), images, device=device)
