"""Mg-MRN assembled: the last L stages of a CNN, region mining, the common grid, mutual
refinement, one decoder per stage, and the scores of Eqs. (13)-(14).

Works on any timm CNN with `forward_intermediates` (ResNet-101 at 448 px for the papers'
setting, the toy ResNet by default). Stage l = 1 is the finest of the L stages used.

Mg-MRN's outputs are not timm's: what comes before the class scores is one attribute vector per
stage, not a feature tensor, so the methods are named for what they return instead of
`forward_features` / `forward_head`: `stage_attributes(x)` gives the predictions z_l (B, A), finest
first, `class_scores(z)` the scores of Eq. (14) (B, C), and `forward(x)` is the two in turn.
"""
from __future__ import annotations

import math
from contextlib import nullcontext

import torch
import torch.nn as nn

from .config import MgMRNConfig
from .decoder import VisualSemanticDecoder
from .losses import ar_loss, cosine_scores, sce_loss
from .rfmb import DownsampleToGrid, RegionFeatureMining
from .scab import SpatialChannelAttention, tokens


class MgMRN(nn.Module):
    """Multi-granularity region mining and mutual refinement on a CNN's last stages.

    Args:
        backbone: a timm CNN with `forward_intermediates` and `feature_info`.
        word_vectors: (A, d_w) attribute word vectors E, the decoders' queries (fixed).
        class_attributes: (C, A) class attribute vectors a_c of all classes.
        seen_classes: indices of the seen classes (the columns training uses).
        cfg: switches and constants (`zsl_lib.mgmrn.config`).
    """

    def __init__(self, backbone: nn.Module, word_vectors: torch.Tensor, class_attributes: torch.Tensor,
                 seen_classes, cfg: MgMRNConfig):
        super().__init__()
        self.cfg, self.backbone = cfg, backbone
        num_stages = cfg.num_stages
        stages = [dict(s) for s in backbone.feature_info[-num_stages:]]
        if len(stages) < num_stages:
            raise ValueError(f"num_levels={cfg.num_levels} but the backbone has {len(backbone.feature_info)} stages")
        # L = 5 reaches the stem. timm reports a ResNet's stem before its max-pool (reduction 2, 224 x 224
        # at 448 px); the paper's stem stage is the map after it (112 x 112), which the fifth
        # downsampling block halves three times instead of four.
        maxpool = getattr(backbone, "maxpool", None)
        self.pool_stem = (num_stages == len(backbone.feature_info) and isinstance(maxpool, nn.MaxPool2d))
        if self.pool_stem:
            stages[0]["reduction"] *= maxpool.stride if isinstance(maxpool.stride, int) else maxpool.stride[0]
        channels = [s["num_chs"] for s in stages]
        width = channels[-1]                                                  # C, the common width
        halvings = [round(math.log2(stages[-1]["reduction"] / s["reduction"])) for s in stages]
        groups = math.gcd(32, width)
        self.rfmb = nn.ModuleList(RegionFeatureMining(c, cfg.num_parts, cfg.rfm_mode, width) for c in channels) \
            if cfg.mgm else None
        self.down = nn.ModuleList(DownsampleToGrid(c, width, h, groups) for c, h in zip(channels, halvings)) \
            if cfg.mgm else None
        self.scab = nn.ModuleList(
            SpatialChannelAttention(width, num_stages - 1 - l, "scab" if cfg.mrm == "scab" else "concat_only",
                                    cfg.scab_detach_coarse, cfg.scab_spatial_channels)
            for l in range(num_stages - 1)) if cfg.mrm != "off" else None
        self.decoders = nn.ModuleList(
            VisualSemanticDecoder(word_vectors, width, cfg.decoder_hidden or width // 2, cfg.vsd_scaled, cfg.vsd_head,
                                  cfg.fix_zero_w2v) for _ in range(num_stages))
        self.register_buffer("class_attributes", class_attributes.float())   # (C_all, A)
        self.register_buffer("seen_classes", torch.as_tensor(seen_classes, dtype=torch.long))

    @property
    def num_stages(self) -> int:
        """The stages the model decodes, one decoder each (`MgMRNConfig.num_stages`)."""
        return len(self.decoders)

    def stage_attributes(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Predicted attribute vectors z_l (B, A), one per stage, finest first."""
        maps = self.backbone.forward_intermediates(x, intermediates_only=True)[-self.num_stages:]
        if self.pool_stem:
            maps[0] = self.backbone.maxpool(maps[0])                           # the stem after its max-pool
        if self.down is None:                                                  # mgm off: raw layer4 tokens
            return [self.decoders[0](tokens(maps[-1]))]
        mined = [rfmb(f) for f, rfmb in zip(maps, self.rfmb)]                   # (g_hat_l, region tokens or None)
        grids = [down(g_hat) for (g_hat, _), down in zip(mined, self.down)]     # g_l (B, C, H, W)
        memories = []
        for l, (g, (_, regions)) in enumerate(zip(grids, mined)):
            if self.scab is not None and l < len(grids) - 1:
                u = self.scab[l](g, grids[l + 1:])                             # (B, 2HW, C), Eqs. (3)-(7)
            else:
                u = tokens(g)                                                  # (B, HW, C)
            if regions is not None:                                            # + the stage's M region tokens
                u = torch.cat([u, regions], dim=1)
            memories.append(u)
        return [decoder(u) for decoder, u in zip(self.decoders, memories)]

    def class_scores(self, z: list[torch.Tensor]) -> torch.Tensor:
        """Eq. (14): the sum over stages of kappa * cos(z_l, a_c), for every class: (B, C_all)."""
        return sum(cosine_scores(zl, self.class_attributes, self.cfg.kappa) for zl in z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.class_scores(self.stage_attributes(x))

    def stage_loss(self, z: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(L_SCE, L_AR) of one stage's prediction; labels index the seen classes."""
        seen = self.class_attributes[self.seen_classes]                      # (C_s, A)
        return sce_loss(z, labels, seen, self.cfg.kappa), ar_loss(z, seen[labels])

    def training_losses(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eq. (13) as one objective: sum over stages of L_SCE + lambda_AR L_AR (without L_AR if use_ar is off)."""
        terms, total = {}, 0.0
        weight = self.cfg.lambda_ar if self.cfg.use_ar else 0.0
        for l, z in enumerate(self.stage_attributes(x), start=1):
            terms[f"sce_{l}"], terms[f"ar_{l}"] = self.stage_loss(z, labels)
            total = total + terms[f"sce_{l}"] + weight * terms[f"ar_{l}"]
        terms["total"] = total
        return terms

    @property
    def own_update(self):
        """The training loop's hook: the code's per-stage steps under `opt_mode="per_stage_steps"`,
        otherwise None (the loop makes one step on Eq. 13)."""
        return self.per_stage_steps if self.cfg.opt_mode == "per_stage_steps" else None

    def per_stage_steps(self, x: torch.Tensor, labels: torch.Tensor, optimizer: torch.optim.Optimizer,
                        grad_clip: float = 0.0, autocast=nullcontext) -> dict[str, torch.Tensor]:
        """The released code's update (`official_code`): for each stage in turn, a new forward at the
        current weights, that stage's loss only, zero_grad (to None), backward and an optimiser step
        (after clipping to `grad_clip` if > 0; the code does not clip). `autocast()` is the training
        loop's mixed-precision context: the forward runs inside it, backward and the step outside.

        This is alternating optimisation, not a step on Eq. (13): stage l's loss is evaluated after
        the updates of stages < l, and with the SCAB's stop-gradient the backbone below stage 1
        is stepped L times per batch, the last stage once. Returns each stage's loss at its own
        parameter state and their sum as "total" (what the code logs), as tensors: the training
        loop reads them once after the step and stops on a non-finite total."""
        weight = self.cfg.lambda_ar if self.cfg.use_ar else 0.0
        terms = {}
        for l in range(self.num_stages):
            with autocast():
                sce, ar = self.stage_loss(self.stage_attributes(x)[l], labels)
                loss = sce + weight * ar
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip > 0:
                torch.nn.utils.clip_grad_norm_([p for p in self.parameters() if p.grad is not None], grad_clip)
            optimizer.step()
            terms[f"stage_{l + 1}"] = loss.detach()
        terms["total"] = sum(terms.values())
        return terms
