"""Recording what Mg-MRN looks at, with forward hooks, like `zsl_lib.vspcn.AttentionRecorder`.

    with AttentionRecorder(model) as rec:
        model(x)
    rec.attribute_maps(stage)     # (B, A, H, W): each attribute's attention over the grid positions
    rec.decoders[stage]           # (B, A, N_l): the decoder's attention over all its tokens (Eq. 8)
    rec.regions[stage]            # (B, M, H_l, W_l): the RFMB's region masks (Eq. 1)
    rec.spatial_masks[stage]      # (B, C or 1, H, W): the SCAB's spatial mask a^s_l (Eq. 4), stages < L
    rec.channel_masks[stage]      # (B, C): the SCAB's channel mask a^c_l (Eq. 5), stages < L

The decoder of stage l attends over [tokens(g_l), tokens(u_hat_l)] (2HW tokens; + M region tokens
under rfm_mode="part_tokens") for l < L and
over tokens(g_L) for the last stage; `attribute_maps` returns the part over g_l's own positions,
the natural candidate for the paper's attention figures (their exact fusion is unreleased).
The maps come from the blocks' identity taps (`zsl_lib.recording`); every forward pass
overwrites the previous one's.
"""
from __future__ import annotations

import math

import torch

from ..recording import HookRecorder, keep_last
from .model import MgMRN


class AttentionRecorder(HookRecorder):
    """Context manager collecting the decoders' attribute-to-token attention, the region masks and
    the SCAB masks of the last forward pass (a list per stage, finest first; None where a stage has
    no such block)."""

    def __init__(self, model: MgMRN):
        super().__init__()
        self.model = model
        stages = model.num_stages
        self.decoders: list[torch.Tensor | None] = [None] * stages        # per stage (B, A, N_l)
        self.regions: list[torch.Tensor | None] = [None] * stages         # per stage (B, M, H_l, W_l)
        self.spatial_masks: list[torch.Tensor | None] = [None] * stages   # per stage < L (B, C or 1, H, W)
        self.channel_masks: list[torch.Tensor | None] = [None] * stages   # per stage < L (B, C)

    def hooks(self):
        for l, decoder in enumerate(self.model.decoders):
            yield decoder.attention_map, keep_last(self.decoders, l)
        for l, rfmb in enumerate(self.model.rfmb or []):
            yield rfmb.assignment_map, keep_last(self.regions, l)
        for l, scab in enumerate(self.model.scab or []):
            yield scab.spatial_mask, keep_last(self.spatial_masks, l)
            yield scab.channel_mask, keep_last(self.channel_masks, l)

    def attribute_maps(self, stage: int) -> torch.Tensor:
        """Stage `stage` (0 = finest): attention of every attribute over its grid, (B, A, H, W)."""
        attn = self.recorded_slots(self.decoders, "the decoders")[stage]
        extra = self.model.rfmb[stage].num_region_tokens if self.model.rfmb is not None else 0
        last = stage == self.model.num_stages - 1 or self.model.scab is None
        positions = (attn.shape[-1] - extra) // (1 if last else 2)
        side = math.isqrt(positions)
        return attn[..., :positions].reshape(*attn.shape[:2], side, side)
