"""From uint8 pixels to what a backbone expects: per-channel normalisation, one object per convention."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Normalization:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W), (x / 255 - mean) / std per channel."""
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.permute(0, 3, 1, 2).float() / 255.0
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std


TOY = Normalization((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))          # the toy-pretrained backbones
IMAGENET = Normalization((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CLIP = Normalization((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
