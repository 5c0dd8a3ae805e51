"""Recording what Mg-MRN looks at, with forward hooks, like `zsl_lib.vspcn.AttentionRecorder`.

    with AttentionRecorder(model) as rec:
        model(x)
    rec.attribute_maps(stage)     # (B, A, H, W): each attribute's attention over the grid positions
    rec.regions[stage]            # (B, M, H_l, W_l): the RFMB's region masks (Eq. 1)

The decoder of stage l attends over [tokens(g_l), tokens(u_hat_l)] (2HW tokens; + M region tokens
under rfm_mode="part_tokens") for l < L and
over tokens(g_L) for the last stage; `attribute_maps` returns the part over g_l's own positions,
the natural candidate for the paper's attention figures (their exact fusion is unreleased).
"""
from __future__ import annotations

import math

import torch

from .model import MgMRN


class AttentionRecorder:
    """Context manager collecting the decoders' attribute-to-token attention and the region masks."""

    def __init__(self, model: MgMRN):
        self.model = model
        self.decoders: list[torch.Tensor | None] = [None] * len(model.decoders)   # per stage (B, A, N_l)
        self.regions: list[torch.Tensor | None] = [None] * len(model.decoders)    # per stage (B, M, H_l, W_l)
        self._handles = []

    def __enter__(self) -> "AttentionRecorder":
        for l, decoder in enumerate(self.model.decoders):
            self._handles.append(decoder.register_forward_hook(self._store(self.decoders, l, "last_attention")))
        for l, rfmb in enumerate(self.model.rfmb or []):
            self._handles.append(rfmb.register_forward_hook(self._store(self.regions, l, "last_assignment")))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @staticmethod
    def _store(target: list, index: int, attribute: str):
        def hook(module, inputs, output):
            target[index] = getattr(module, attribute)
        return hook

    def attribute_maps(self, stage: int) -> torch.Tensor:
        """Stage `stage` (0 = finest): attention of every attribute over its grid, (B, A, H, W)."""
        attn = self.decoders[stage]
        if attn is None:
            raise RuntimeError("no forward pass was recorded; call the model inside the `with` block")
        extra = self.model.cfg.num_parts if self.model.rfmb is not None and self.model.cfg.rfm_mode == "part_tokens" else 0
        last = stage == len(self.decoders) - 1 or self.model.scab is None
        positions = (attn.shape[-1] - extra) // (1 if last else 2)
        side = math.isqrt(positions)
        return attn[..., :positions].reshape(*attn.shape[:2], side, side)
