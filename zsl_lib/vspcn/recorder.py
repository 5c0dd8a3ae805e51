"""Recording what a VSPCN looks at, with forward hooks (no monkey-patching).

    with AttentionRecorder(model) as rec:
        model(x)
    rec.token_to_patches("cls")    # (L, B, heads, N): each block's attention of CLS over patches
    rec.fusion["svpf"]             # (steps, B, 1, N): SVPF's mixed attention, per strong step

timm's attention uses a fused kernel that does not return its probabilities, so the
recorder hooks each block's `qkv` projection and recomputes softmax(q k^T * scale) from
its output, exactly as the block does (the tests check the recomputation against the
block's own output).
"""
from __future__ import annotations

import torch

from .model import VSPCN


class AttentionRecorder:
    """Context manager collecting backbone and fusion attention maps of the last forward pass."""

    def __init__(self, model: VSPCN):
        self.model = model
        self.blocks: list[torch.Tensor] = []          # per block (B, heads, T, T)
        self._handles = []

    def __enter__(self) -> "AttentionRecorder":
        for block in self.model.blocks:
            self._handles.append(block.attn.qkv.register_forward_hook(self._qkv_hook(block.attn)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _qkv_hook(self, attn):
        def hook(module, inputs, output):
            if len(self.blocks) == len(self.model.blocks):   # a new forward pass starts
                self.blocks.clear()
            B, T, _ = output.shape
            q, k, _ = output.detach().reshape(B, T, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
            q, k = attn.q_norm(q), attn.k_norm(k)
            self.blocks.append(torch.softmax(q @ k.transpose(-2, -1) * attn.scale, dim=-1))
        return hook

    @property
    def fusion(self) -> dict[str, torch.Tensor]:
        """The fusion modules' attention maps of the last forward pass, by module name."""
        m, out = self.model, {}
        if m.cfg.vp and m.wvpf is not None:
            out["wvpf"] = m.wvpf.last_attention                           # (B, 1, N)
        if m.cfg.sp and m.wspf is not None:
            out["wspf"] = m.wspf.last_attention                           # (1, A)
        for name in ("svpf", "adapter", "sspf"):
            maps = [getattr(step, name).last_attention for step in m.strong_steps if getattr(step, name) is not None]
            if maps:
                out[name] = torch.stack(maps)                             # (steps, B, ...)
        return out

    def token_index(self, token: str) -> int:
        cfg = self.model.cfg
        index = {"cls": 0}
        if cfg.vp:
            index["vp"] = 1
        if cfg.sp:
            index["sp"] = 1 + int(cfg.vp)
        if token not in index:
            raise ValueError(f"this model has no {token!r} token; it has {sorted(index)}")
        return index[token]

    def token_to_patches(self, token: str) -> torch.Tensor:
        """Attention of one token ("cls", "vp" or "sp") over the patch tokens, per block: (L, B, heads, N)."""
        p = int(self.model.cfg.vp) + int(self.model.cfg.sp)
        i = self.token_index(token)
        return torch.stack([a[:, :, i, 1 + p:] for a in self.blocks])
