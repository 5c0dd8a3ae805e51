"""VSPCN on any timm VisionTransformer (Jiang et al., CVPR 2025).

Token layout: [CLS | visual prompt | semantic prompt | N patches], each prompt present
only when its switch is on; `prefix_index` gives each prefix token's position and
`num_prefix_tokens` their number (as timm's VisionTransformer counts its CLS and register
tokens). The backbone is frozen (its CLS token and position
embedding stay trainable, as in the released code). Weak fusion (Eqs. 1-4) makes the
input prompts; the first K blocks run unchanged; before each later block a strong step
updates the prompts (SVPF, adapter, SSPF; Eqs. 5-10). Recognition uses the CLS token:
s_c(x) = z_cls . phi(a_c) (Eq. 12).

The model follows timm's contract: `forward_features(x)` returns the final-LayerNorm token
sequence (B, 1 + P + N, D), `forward_head(tokens, pre_logits=False)` the class scores (B, C)
(z_cls (B, D) with `pre_logits=True`), and `forward(x)` is the two in turn.
`prefix_outputs(tokens)` names the prefix tokens' outputs z_cls, z_vp, z_sp that the losses read.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block, VisionTransformer

from .config import VSPCNConfig
from .losses import total_loss
from .fusion import (SemanticAdapter, StrongSemanticPromptFusion, StrongVisualPromptFusion,
                     WeakSemanticPromptFusion, WeakVisualPromptFusion)


class StrongStep(nn.Module):
    """The fusion before one deep block: SVPF, then the adapter, then SSPF (the code's order)."""

    def __init__(self, cfg: VSPCNConfig, dim: int, num_patches: int, num_attributes: int):
        super().__init__()
        self.svpf = StrongVisualPromptFusion(dim, num_patches, cfg.alpha_v, cfg.rho_v, cfg.svpf_init) \
            if cfg.svpf else None
        self.adapter = SemanticAdapter(dim, cfg.beta) if cfg.sspf and cfg.adapter else None
        self.sspf = StrongSemanticPromptFusion(dim, num_attributes, cfg.alpha_s, cfg.sp_residual) \
            if cfg.sspf else None


def _random_block(vit: VisionTransformer) -> Block:
    """The code_exact 13th block: pretrained-shaped, randomly initialised, frozen."""
    ref = vit.blocks[0]
    block = Block(vit.embed_dim, ref.attn.num_heads, mlp_ratio=ref.mlp.fc1.out_features / vit.embed_dim,
                  qkv_bias=ref.attn.qkv.bias is not None)
    for m in block.modules():
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)
    return block


class VSPCN(nn.Module):
    """Visual and semantic prompt collaboration on a frozen ViT.

    Args:
        backbone: a timm VisionTransformer with a class token and the class token's
            position in `pos_embed` (e.g. vit_base_patch16_224, toy_vit_hybrid_64).
        word_vectors: (A, d_w) attribute word vectors G (fixed).
        class_attributes: (C, A) class attribute vectors a_c of all classes.
        seen_classes: indices of the seen classes (the columns training uses).
        cfg: switches and constants (`zsl_lib.vspcn.config`).
    """

    def __init__(self, backbone: VisionTransformer, word_vectors: torch.Tensor, class_attributes: torch.Tensor,
                 seen_classes, cfg: VSPCNConfig):
        super().__init__()
        if getattr(backbone, "cls_token", None) is None or backbone.no_embed_class or backbone.num_reg_tokens:
            raise ValueError("VSPCN needs a ViT with a class token, its position in pos_embed and no "
                             "register tokens (e.g. timm vit_base_patch16_224 or toy_vit_hybrid_64)")
        self.cfg = cfg
        self.vit = backbone
        dim, num_patches = backbone.embed_dim, backbone.patch_embed.num_patches
        num_attributes = class_attributes.shape[1]
        if word_vectors.shape[0] != num_attributes:
            raise ValueError(f"{word_vectors.shape[0]} word vectors for {num_attributes} attributes")
        for p in backbone.parameters():
            p.requires_grad_(False)
        backbone.cls_token.requires_grad_(True)
        backbone.pos_embed.requires_grad_(True)
        self.blocks = list(backbone.blocks)
        if cfg.extra_random_block:
            self.extra_block = _random_block(backbone).requires_grad_(False)
            self.blocks.append(self.extra_block)
        depth = len(backbone.blocks)
        self.num_shallow = cfg.shallow_blocks(depth)
        if not 0 <= self.num_shallow < len(self.blocks):
            raise ValueError(f"num_shallow={self.num_shallow} must be in [0, {len(self.blocks)})")

        self.register_buffer("word_vectors", torch.as_tensor(word_vectors, dtype=torch.float32))
        self.register_buffer("class_attributes", torch.as_tensor(class_attributes, dtype=torch.float32))
        self.register_buffer("seen_classes", torch.as_tensor(seen_classes, dtype=torch.long))
        prompts = [name for name, present in (("vp", cfg.vp), ("sp", cfg.sp)) if present]
        self.prefix_index = {"cls": 0} | {name: 1 + i for i, name in enumerate(prompts)}   # position of each
        self.num_prefix_tokens = len(self.prefix_index)                                  # 1 + P
        self.prompt_pos_embed = nn.Parameter(torch.zeros(1, len(prompts), dim)) if prompts else None
        if cfg.vp:
            visual_prompt = trunc_normal_(torch.empty(1, dim), std=0.02)
            if cfg.train_visual_prompt:
                self.visual_prompt = nn.Parameter(visual_prompt)
            else:
                self.register_buffer("visual_prompt", visual_prompt)
            self.wvpf = WeakVisualPromptFusion(dim) if cfg.wvpf else None
            self.vp_classifier = nn.Linear(dim, len(self.seen_classes), bias=False)   # Phi, D x C_s
            trunc_normal_(self.vp_classifier.weight, std=0.01)
        if cfg.sp:
            self.semantic_prompt = nn.Parameter(torch.randn(1, dim))
            # W_g (d_w, D). Without weak or strong semantic fusion (Table 2 row 4) nothing reads S^0 = G W_g:
            # the weight is still drawn (the same random stream for every row) but frozen, so that no
            # trainable parameter goes without a gradient (DDP raises on one).
            self.word_projection = nn.Parameter(trunc_normal_(torch.empty(word_vectors.shape[1], dim), std=0.01),
                                                requires_grad=cfg.wspf or cfg.sspf)
            self.wspf = WeakSemanticPromptFusion(dim) if cfg.wspf else None
        self.strong_steps = nn.ModuleList(StrongStep(cfg, dim, num_patches, num_attributes)
                                          for _ in range(len(self.blocks) - self.num_shallow))
        self.attribute_projection = nn.Linear(num_attributes, dim)   # phi, Eq. (12)
        trunc_normal_(self.attribute_projection.weight, std=0.01)
        nn.init.zeros_(self.attribute_projection.bias)

    # ---- pieces -----------------------------------------------------------------------
    def attribute_tokens(self) -> torch.Tensor:
        """S^0 = G W_g, (A, D)."""
        return self.word_vectors @ self.word_projection

    def prototypes(self) -> torch.Tensor:
        """phi(a_c) for every class, (C, D)."""
        return self.attribute_projection(self.class_attributes)

    def input_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """X^0 = [CLS; P_v_hat; P_s_hat; F^0] + positions, (B, 1 + P + N, D); and S^0 or None."""
        vit = self.vit
        patches = vit.patch_embed(x)                                     # F^0 (B, N, D)
        batch = len(patches)
        tokens = [(vit.cls_token + vit.pos_embed[:, :1]).expand(batch, -1, -1)]
        prompts, s0 = [], None
        if self.cfg.vp:
            vp = self.wvpf(self.visual_prompt, patches) if self.wvpf is not None else \
                self.visual_prompt.expand(batch, 1, -1)                  # (B, 1, D)
            prompts.append(vp)
        if self.cfg.sp:
            s0 = self.attribute_tokens()                                 # (A, D)
            sp = self.wspf(self.semantic_prompt, s0) if self.wspf is not None else self.semantic_prompt
            prompts.append(sp.expand(batch, 1, -1))                      # (B, 1, D)
        if prompts:
            tokens.append(torch.cat(prompts, dim=1) + self.prompt_pos_embed)
        tokens.append(patches + vit.pos_embed[:, 1:])
        return vit.norm_pre(vit.pos_drop(torch.cat(tokens, dim=1))), s0

    def prefix_token(self, x: torch.Tensor, name: str) -> torch.Tensor:
        """The prefix token `name` ("cls", "vp", "sp") of a token sequence (B, T, D), as (B, 1, D)."""
        i = self.prefix_index[name]
        return x[:, i:i + 1]

    def strong_step(self, step: StrongStep, x: torch.Tensor, s: torch.Tensor | None):
        """Update the prompt tokens of X^l before the next block; returns (X~^l, S^l)."""
        patches = x[:, self.num_prefix_tokens:]                          # F^l (B, N, D)
        tokens = [x[:, :1]]
        if self.cfg.vp:
            vp = self.prefix_token(x, "vp")                              # (B, 1, D)
            tokens.append(step.svpf(vp, patches) if step.svpf is not None else vp)
        if self.cfg.sp:
            sp = self.prefix_token(x, "sp")                              # (B, 1, D)
            if step.sspf is not None:
                if step.adapter is not None:
                    s = step.adapter(s, patches)                         # S^l (B, A, D)
                sp = step.sspf(sp, s)
                if step.adapter is not None and self.cfg.adapter_batch_mean:
                    s = s.mean(0, keepdim=True).expand_as(s)             # the code's batch-shared state
            tokens.append(sp)
        tokens.append(patches)
        return torch.cat(tokens, dim=1), s

    # ---- timm-style API ---------------------------------------------------------------
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The final-LN output of every token, [z_cls | z_vp | z_sp | patches]: (B, 1 + P + N, D)."""
        tokens, s0 = self.input_tokens(x)
        s = None if s0 is None else s0.expand(len(x), -1, -1)           # S^{K-1} := S^0, (B, A, D)
        for index, block in enumerate(self.blocks):
            if index >= self.num_shallow:
                tokens, s = self.strong_step(self.strong_steps[index - self.num_shallow], tokens, s)
            tokens = block(tokens)
        return self.vit.norm(tokens)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """From `forward_features`' tokens (B, T, D): the dot-product scores of every class,
        s_c = z_cls . phi(a_c) (Eq. 12), (B, C); or z_cls (B, D) with `pre_logits`."""
        z_cls = x[:, self.prefix_index["cls"]]                           # (B, D)
        return z_cls if pre_logits else z_cls @ self.prototypes().T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def prefix_outputs(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """The prefix tokens' outputs by name, "cls", "vp", "sp" (those present), each (B, D), from
        `forward_features`' tokens (B, T, D)."""
        return {name: tokens[:, i] for name, i in self.prefix_index.items()}

    def training_losses(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every term of Eq. (18) for a batch; `labels` (B,) are seen-column indices (0..C_s-1)."""
        features = self.prefix_outputs(self.forward_features(x))
        prototypes = self.prototypes()                                   # (C, D)
        scores_seen = (features["cls"] @ prototypes.T)[:, self.seen_classes]   # (B, C_s)
        vp_logits = self.vp_classifier(features["vp"]) if self.cfg.vp else None
        return total_loss(features, scores_seen, vp_logits, prototypes[self.seen_classes[labels]], labels,
                          self.cfg.losses)

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        return {name: p for name, p in self.named_parameters() if p.requires_grad}


def svpf_drift(state: dict[str, torch.Tensor]) -> dict[str, float]:
    """How far the SVPF parameters of a trained VSPCN (its `state_dict`) moved from their zero start
    (Eq. 5, the released code's initialisation): the largest |entry| of W_q and W_k, and of the
    positional bias B_v, over all strong steps, with the number of steps."""
    def largest(suffixes: tuple[str, ...]) -> list[float]:
        return [state[k].abs().max().item() for k in state if k.startswith("strong_steps.") and k.endswith(suffixes)]
    bias = largest(("svpf.bias",))
    return {"qk": max(largest(("svpf.q.weight", "svpf.k.weight"))), "bias": max(bias), "steps": len(bias)}
