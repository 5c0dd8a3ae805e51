"""Mg-MRN assembled: the last L stages of a CNN, region mining, the common grid, mutual
refinement, one decoder per stage, and the scores of Eqs. (13)-(14).

Works on any timm CNN with `forward_intermediates` (ResNet-101 at 448 px for the papers'
setting, the toy ResNet by default). Stage l = 1 is the finest of the L stages used.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from .decoder import VisualSemanticDecoder
from .losses import ar_loss, cosine_scores, sce_loss
from .rfmb import DownsampleToGrid, RegionFeatureMining
from .scab import SpatialChannelAttention, tokens

MRM_MODES = ("off", "concat_only", "scab")


@dataclass(frozen=True)
class MgMRNConfig:
    num_levels: int = 3                 # L: the last L stages of the backbone
    num_parts: int = 5                  # N_p: prototypes per stage (the code's 5)
    rfm_mode: str = "paper_mean"        # "paper_mean" (Eq. 2, degenerate) | "none" | "part_channels"
    mrm: str = "scab"                   # "off" | "concat_only" (w/o SCAB) | "scab"
    scab_detach_coarse: bool = False    # the code's stop-gradient into the coarse stages
    scab_spatial_channels: int | None = None   # None: C-channel spatial mask (the code); 1: CBAM-style
    decoder_hidden: int = 1024          # d_k
    vsd_scaled: bool = True             # softmax(QK^T / sqrt(d_k)) (paper) or unscaled (code)
    vsd_head: str = "w2v_bilinear"      # Eq. (10) as printed, or the code's "free" read-out
    fix_zero_w2v: bool = True
    kappa: float = 20.0                 # logit scale (25 on SUN)
    lambda_ar: float = 0.1              # weight of L_AR (1.0 on SUN, AWA2)

    def __post_init__(self):
        if self.mrm not in MRM_MODES:
            raise ValueError(f"mrm {self.mrm!r} is not one of {MRM_MODES}")


class MgMRN(nn.Module):
    def __init__(self, backbone: nn.Module, word_vectors: torch.Tensor, class_attributes: torch.Tensor,
                 seen_classes, cfg: MgMRNConfig):
        super().__init__()
        self.cfg, self.backbone = cfg, backbone
        stages = backbone.feature_info[-cfg.num_levels:]
        if len(stages) < cfg.num_levels:
            raise ValueError(f"num_levels={cfg.num_levels} but the backbone has {len(backbone.feature_info)} stages")
        channels = [s["num_chs"] for s in stages]
        width = channels[-1]                                                  # C, the common width
        halvings = [round(math.log2(stages[-1]["reduction"] / s["reduction"])) for s in stages]
        groups = math.gcd(32, width)
        self.rfmb = nn.ModuleList(RegionFeatureMining(c, cfg.num_parts, cfg.rfm_mode) for c in channels)
        self.down = nn.ModuleList(DownsampleToGrid(c, width, h, groups) for c, h in zip(channels, halvings))
        self.scab = nn.ModuleList(
            SpatialChannelAttention(width, cfg.num_levels - 1 - l, "scab" if cfg.mrm == "scab" else "concat_only",
                                    cfg.scab_detach_coarse, cfg.scab_spatial_channels)
            for l in range(cfg.num_levels - 1)) if cfg.mrm != "off" else None
        self.decoders = nn.ModuleList(
            VisualSemanticDecoder(word_vectors, width, cfg.decoder_hidden, cfg.vsd_scaled, cfg.vsd_head,
                                  cfg.fix_zero_w2v) for _ in range(cfg.num_levels))
        self.register_buffer("class_attributes", class_attributes.float())   # (C_all, A)
        self.register_buffer("seen_classes", torch.as_tensor(seen_classes, dtype=torch.long))

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Predicted attribute vectors z_l (B, A), one per stage, finest first."""
        maps = self.backbone.forward_intermediates(x, intermediates_only=True)[-self.cfg.num_levels:]
        grids = [down(rfmb(f)) for f, rfmb, down in zip(maps, self.rfmb, self.down)]     # g_l (B, C, H, W)
        memories = []
        for l, g in enumerate(grids):
            if self.scab is not None and l < len(grids) - 1:
                memories.append(self.scab[l](g, grids[l + 1:]))                # (B, 2HW, C), Eqs. (3)-(7)
            else:
                memories.append(tokens(g))                                     # (B, HW, C)
        return [decoder(u) for decoder, u in zip(self.decoders, memories)]

    def forward_head(self, z: list[torch.Tensor]) -> torch.Tensor:
        """Eq. (14): the sum over stages of kappa * cos(z_l, a_c), for every class: (B, C_all)."""
        return sum(cosine_scores(zl, self.class_attributes, self.cfg.kappa) for zl in z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def training_losses(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eq. (13) as one objective: sum over stages of L_SCE + lambda_AR L_AR; labels index the seen classes."""
        seen = self.class_attributes[self.seen_classes]                      # (C_s, A)
        terms, total = {}, 0.0
        for l, z in enumerate(self.forward_features(x), start=1):
            terms[f"sce_{l}"] = sce_loss(z, labels, seen, self.cfg.kappa)
            terms[f"ar_{l}"] = ar_loss(z, seen[labels])
            total = total + terms[f"sce_{l}"] + self.cfg.lambda_ar * terms[f"ar_{l}"]
        terms["total"] = total
        return terms
