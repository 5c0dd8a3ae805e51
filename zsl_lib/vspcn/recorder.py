"""Recording what a VSPCN looks at, with forward hooks (no monkey-patching, no state in the modules).

    with AttentionRecorder(model) as rec:
        model(x)
    rec.token_to_patches("cls")    # (L, B, heads, N): each block's attention of CLS over patches
    rec.fusion["svpf"]             # (steps, B, 1, N): SVPF's mixed attention, per strong step

timm's attention uses a fused kernel that does not return its probabilities, so the
recorder hooks each block's `qkv` projection and recomputes softmax(q k^T * scale) from
its output, exactly as the block does (the tests check the recomputation against the
block's own output). The fusion modules' maps come from their `attention_map` taps
(`zsl_lib.recording`). Every forward pass overwrites the previous one's maps.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..recording import HookRecorder, keep_last
from .model import VSPCN

WEAK, STRONG = ("wvpf", "wspf"), ("svpf", "adapter", "sspf")


class AttentionRecorder(HookRecorder):
    """Context manager collecting backbone and fusion attention maps of the last forward pass."""

    def __init__(self, model: VSPCN):
        super().__init__()
        self.model = model
        self.blocks: list[torch.Tensor | None] = [None] * len(model.blocks)   # per block (B, heads, T, T)
        self._fusion = {name: [None] * len(modules) for name, modules in self._fusion_modules().items()}

    def _fusion_modules(self) -> dict[str, list[nn.Module]]:
        """The model's fusion modules by name (weak: one; strong: one per step), those it has."""
        m = self.model
        candidates = {name: [getattr(m, name, None)] for name in WEAK}
        candidates |= {name: [getattr(step, name) for step in m.strong_steps] for name in STRONG}
        found = {name: [x for x in modules if x is not None] for name, modules in candidates.items()}
        return {name: modules for name, modules in found.items() if modules}

    def hooks(self):
        for index, block in enumerate(self.model.blocks):
            yield block.attn.qkv, self._qkv_hook(block.attn, index)
        for name, modules in self._fusion_modules().items():
            for index, module in enumerate(modules):
                yield module.attention_map, keep_last(self._fusion[name], index)

    def _qkv_hook(self, attn, index: int):
        def hook(module, inputs, output):
            B, T, _ = output.shape
            q, k, _ = output.detach().reshape(B, T, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
            q, k = attn.q_norm(q), attn.k_norm(k)
            self.blocks[index] = torch.softmax(q @ k.transpose(-2, -1) * attn.scale, dim=-1)
        return hook

    @property
    def fusion(self) -> dict[str, torch.Tensor]:
        """The fusion modules' attention maps of the last forward pass, by module name: "wvpf" (B, 1, N),
        "wspf" (1, A), and per strong step "svpf" (steps, B, 1, N), "adapter" (steps, B, A, N),
        "sspf" (steps, B, 1, A)."""
        out = {}
        for name, maps in self._fusion.items():
            maps = self.recorded_slots(maps, name)
            out[name] = maps[0] if name in WEAK else torch.stack(maps)
        return out

    def token_index(self, token: str) -> int:
        """Position of a prefix token ("cls", "vp", "sp") in the blocks' sequence."""
        index = self.model.prefix_index
        if token not in index:
            raise ValueError(f"this model has no {token!r} token; it has {sorted(index)}")
        return index[token]

    def token_to_patches(self, token: str) -> torch.Tensor:
        """Attention of one token ("cls", "vp" or "sp") over the patch tokens, per block: (L, B, heads, N)."""
        i, patches = self.token_index(token), self.model.num_prefix_tokens
        return torch.stack([a[:, :, i, patches:] for a in self.recorded_slots(self.blocks, "the blocks")])
