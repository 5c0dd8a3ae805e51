"""Mg-MRN's losses (Eqs. 11-13) and scores (Eq. 14), as small functions.

Every class score is a scaled cosine, kappa * cos(z_l, a_c), with the released code's
normalisation v / (||v|| + 1e-10) and kappa = 20 (CUB, AWA2) or 25 (SUN); the printed Eq. (11)
has squared norms (a typo) and no temperature. Scores and losses are computed in fp32 whatever
the autocast setting of the forward pass that produced z.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-10


def at_least_fp32(t: torch.Tensor) -> torch.Tensor:
    """t in fp32 if it is in a narrower float type (bf16, fp16 under autocast); fp64 stays fp64."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def unit(v: torch.Tensor) -> torch.Tensor:
    """v / (||v|| + 1e-10) along the last axis."""
    return v / (v.norm(dim=-1, keepdim=True) + EPS)


def cosine_scores(z: torch.Tensor, class_attributes: torch.Tensor, kappa: float) -> torch.Tensor:
    """kappa * cos(z, a_c): (B, A) x (C, A) -> (B, C), in fp32 also under autocast."""
    with torch.autocast(z.device.type, enabled=False):
        return kappa * unit(at_least_fp32(z)) @ unit(at_least_fp32(class_attributes)).T


def sce_loss(z: torch.Tensor, labels: torch.Tensor, seen_attributes: torch.Tensor, kappa: float) -> torch.Tensor:
    """Eq. (11): cross-entropy of the scaled cosines over the seen classes; labels index them."""
    return F.cross_entropy(cosine_scores(z, seen_attributes, kappa), labels)


def ar_loss(z: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Eq. (12) as the code computes it: squared error of the L2-normalised vectors, averaged
    over the batch and the attributes."""
    with torch.autocast(z.device.type, enabled=False):
        return (unit(at_least_fp32(z)) - unit(at_least_fp32(targets))).pow(2).mean()
