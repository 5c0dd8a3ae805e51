"""VSPCN's fusion modules, one per equation group of the paper (section 3).

All attentions are single-head with scale 1/sqrt(D), and image tokens enter them
through a stop-gradient (`detach`), as in the released code. Every module routes its
attention map through the identity tap `attention_map`, on which observers register forward
hooks (`zsl_lib.recording`, `zsl_lib.vspcn.recorder.AttentionRecorder`); no module stores it.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
from timm.layers import trunc_normal_


def attention(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(D)): (..., Lq, D) x (..., Lk, D) -> (..., Lq, Lk)."""
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)


def _linear(dim: int, bias: bool = True, std: float | None = None) -> nn.Linear:
    layer = nn.Linear(dim, dim, bias=bias)
    if std is not None:
        trunc_normal_(layer.weight, std=std)
        if bias:
            nn.init.zeros_(layer.bias)
    return layer


class WeakVisualPromptFusion(nn.Module):
    """WVPF, Eqs. (1)-(2): the visual prompt attends to the patch embeddings, no residual.

    P_v (1, D) -> P_v_hat (B, 1, D) = softmax(Q K^T / sqrt(D)) V with Q from LN(P_v) and
    K, V from LN(sg(F^0)). The LayerNorm has no affine parameters (the code's stay frozen
    at identity).
    """

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.q, self.k, self.v = _linear(dim), _linear(dim), _linear(dim)
        self.attention_map = nn.Identity()                               # tap for observers

    def forward(self, prompt: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
        # prompt (1, D); patches F^0 (B, N, D) without position embedding
        f = self.norm(patches.detach())
        q = self.q(self.norm(prompt)).expand(len(patches), -1, -1)   # (B, 1, D)
        attn = self.attention_map(attention(q, self.k(f)))              # (B, 1, N)
        return attn @ self.v(f)                                         # (B, 1, D)


class WeakSemanticPromptFusion(nn.Module):
    """WSPF, Eqs. (3)-(4): the semantic prompt attends to the attribute tokens S^0.

    One shared bias-free projection makes q, k and v (the code's choice), a trainable
    LayerNorm precedes it, an output projection follows; no residual. The result does
    not depend on the image.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.qkv = _linear(dim, bias=False)
        self.out = _linear(dim)
        self.attention_map = nn.Identity()                               # tap for observers

    def forward(self, prompt: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
        # prompt P_s (1, D); attributes S^0 (A, D)
        q, kv = self.qkv(self.norm(prompt)), self.qkv(self.norm(attributes))
        attn = self.attention_map(attention(q, kv))                      # (1, A)
        return self.out(attn @ kv)                                       # (1, D)


class StrongVisualPromptFusion(nn.Module):
    """SVPF, Eqs. (5)-(6): attention mixed with a learned per-patch bias, then a keep-weight.

    A = alpha_v softmax(Q K^T / sqrt(D)) + (1 - alpha_v) softmax(B_v),  B_v in R^{1 x N}
    f_vp~ = rho_v f_vp + (1 - rho_v) A V,  Q = f_vp W_q, K = sg(F) W_k, V = sg(F) W_v.
    With the code's zero initialisation W_q, W_k never receive a gradient, so the first
    term stays a uniform average over patches and only B_v selects where to look.
    """

    def __init__(self, dim: int, num_patches: int, alpha: float, rho: float, init: str = "zeros"):
        super().__init__()
        self.q, self.k, self.v = (_linear(dim, bias=False) for _ in range(3))
        for layer in (self.q, self.k, self.v):
            if init == "zeros":
                nn.init.zeros_(layer.weight)
            else:
                trunc_normal_(layer.weight, std=0.02)
        self.bias = nn.Parameter(torch.zeros(1, num_patches))
        self.alpha, self.rho = alpha, rho
        self.attention_map = nn.Identity()                               # tap for observers

    def forward(self, prompt: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
        # prompt f_vp (B, 1, D); patches F^l (B, N, D)
        f = patches.detach()
        attn = self.attention_map(self.alpha * attention(self.q(prompt), self.k(f))
                                  + (1 - self.alpha) * torch.softmax(self.bias, -1))   # (B, 1, N)
        return self.rho * prompt + (1 - self.rho) * attn @ self.v(f)     # (B, 1, D)


class SemanticAdapter(nn.Module):
    """Adapter, Eqs. (9)-(10): attribute tokens attend to the image tokens.

    S~ = softmax((S W_q + b)(sg(F) W_k + b)^T / sqrt(D)) (sg(F) W_v + b),
    S^l = beta S^{l-1} + (1 - beta) S~.
    """

    def __init__(self, dim: int, beta: float):
        super().__init__()
        self.q, self.k, self.v = (_linear(dim, std=0.01) for _ in range(3))
        self.beta = beta
        self.attention_map = nn.Identity()                               # tap for observers

    def forward(self, attributes: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
        # attributes S^{l-1} (B, A, D); patches F^l (B, N, D)
        f = patches.detach()
        attn = self.attention_map(attention(self.q(attributes), self.k(f)))   # (B, A, N)
        return self.beta * attributes + (1 - self.beta) * attn @ self.v(f)   # (B, A, D)


class StrongSemanticPromptFusion(nn.Module):
    """SSPF, Eqs. (7)-(8): the semantic prompt attends to the (adapted) attribute tokens.

    A = alpha_s softmax(Q K^T / sqrt(D)) + (1 - alpha_s) softmax(B_s),  B_s in R^{1 x A}
    f_sp~ = f_sp + A V (paper) or 2 f_sp + A V (released code, `residual="double"`).
    """

    def __init__(self, dim: int, num_attributes: int, alpha: float, residual: str = "double"):
        super().__init__()
        self.q, self.k, self.v = (_linear(dim, std=0.01) for _ in range(3))
        self.bias = nn.Parameter(torch.zeros(1, num_attributes))
        self.alpha = alpha
        self.keep = 2.0 if residual == "double" else 1.0
        self.attention_map = nn.Identity()                               # tap for observers

    def forward(self, prompt: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
        # prompt f_sp (B, 1, D); attributes S^l (B, A, D)
        attn = self.attention_map(self.alpha * attention(self.q(prompt), self.k(attributes))
                                  + (1 - self.alpha) * torch.softmax(self.bias, -1))   # (B, 1, A)
        return self.keep * prompt + attn @ self.v(attributes)             # (B, 1, D)
