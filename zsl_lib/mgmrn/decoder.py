"""The Visual-Semantic Decoder (VSD, Eqs. 8-10), one untied copy per stage.

Queries come from the fixed attribute word vectors E (A, d_w), keys and values from the
stage's tokens u_l (B, N, C); one head, no residual, no norm:

    Attn = softmax_tokens((E W^q)(u W^k)^T / tau)      Eq. (8); tau = sqrt(d_k) (paper), 1 (code)
    p    = (Attn u W^v) W^o                             Eq. (9), (B, A, C)
    z_a  = e_a^T W p_a      ("w2v_bilinear", Eq. 10)    or  <V_a, p_a>  ("free", the code), (B, A)

The code's forms are those of the authors' repository (NingWang2049/Mg-MRN), file
`model_mg_rfm_mr_scam.py`, stage 1 (stages 2 and 3 repeat it): the free read-out V is an
(A, C) parameter drawn from N(0, 1) at lines 57-58 and applied at line 121; the softmax of
line 114 has no 1 / sqrt(d_k).

`fix_zero_w2v` replaces all-zero word vectors (SUN's attribute 88) by a learnable vector
started at the mean of the others, for the queries and the read-out. Under mixed precision the
attention logits and their softmax are computed in fp32 (bf16 keeps 8 bits of mantissa, too few
for logits that a softmax exponentiates); the projections run in the autocast dtype. The
attention map passes through the identity tap `attention_map`, where observers hook it
(`zsl_lib.recording`, `zsl_lib.mgmrn.recorder.AttentionRecorder`).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from .config import HEADS
from .losses import at_least_fp32


def word_vector_span(word_vectors: torch.Tensor, rtol: float = 1e-4) -> torch.Tensor:
    """The orthogonal projector (A, A) onto the column space of E (A, d_w), the directions that
    singular values above rtol times the largest span (float32 word vectors leave numerical dust).

    Under the tied read-out z_a = e_a^T W p_a, attributes that attend alike (p_a = p) give
    z = E (W p), which this projector leaves unchanged: the attribute vectors such a decoder can
    predict. Phrase vectors that are sums of shared words ("red crown", "red wings") have rank
    below A, and the missing directions are the bindings of a colour to a part."""
    U, s, _ = torch.linalg.svd(word_vectors.double(), full_matrices=False)
    basis = U[:, s > rtol * s[0]]                                            # (A, rank)
    return basis @ basis.T


class VisualSemanticDecoder(nn.Module):
    """One stage's decoder (Eqs. 8-10, above): the attributes' word vectors E (A, d_w) attend over the
    stage's tokens. `hidden` is d_k; `scaled` divides the logits by sqrt(d_k) (the paper's form; the
    code's softmax has no scaling); `head` is the read-out, "w2v_bilinear" (Eq. 10) or "free" (the
    code's); `fix_zero_w2v` replaces all-zero word vectors by a learnable one."""

    def __init__(self, word_vectors: torch.Tensor, channels: int, hidden: int = 1024, scaled: bool = True,
                 head: str = "w2v_bilinear", fix_zero_w2v: bool = True):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"vsd_head {head!r} is not one of {HEADS}")
        num_attributes, dim_w = word_vectors.shape
        zero = word_vectors.abs().sum(1) == 0
        self.register_buffer("word_vectors", word_vectors.float())           # E (A, d_w), fixed
        self.register_buffer("zero_rows", zero if fix_zero_w2v else torch.zeros_like(zero))
        # their positions, found once here: a boolean-mask write in `forward` would make a GPU wait
        # for the host (it must count the mask's True entries) in every step
        self.register_buffer("zero_index", torch.nonzero(self.zero_rows).flatten(), persistent=False)
        self.replacement = (nn.Parameter(word_vectors[~zero].float().mean(0).expand(int(zero.sum()), -1).clone())
                            if fix_zero_w2v and zero.any() else None)
        self.q, self.k, self.v = nn.Linear(dim_w, hidden), nn.Linear(channels, hidden), nn.Linear(channels, hidden)
        self.out = nn.Linear(hidden, channels)
        self.tau = math.sqrt(hidden) if scaled else 1.0
        self.head = head
        if head == "w2v_bilinear":
            self.readout = nn.Parameter(nn.init.xavier_normal_(torch.empty(dim_w, channels)))     # W (d_w, C)
        else:
            self.readout = nn.Parameter(torch.randn(num_attributes, channels))                   # V (A, C)
        self.attention_map = nn.Identity()                                    # tap for observers

    def attribute_vectors(self) -> torch.Tensor:
        """E with its zero rows replaced (when fixed): (A, d_w)."""
        if self.replacement is None:
            return self.word_vectors
        return self.word_vectors.index_copy(0, self.zero_index, self.replacement.to(self.word_vectors.dtype))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Tokens u (B, N, C) -> predicted attributes z (B, A)."""
        e = self.attribute_vectors()                                         # (A, d_w)
        q, k = self.q(e), self.k(u)                                          # (A, d_k), (B, N, d_k)
        with torch.autocast(u.device.type, enabled=False):                   # logits and softmax in fp32
            attn = torch.softmax(at_least_fp32(q) @ at_least_fp32(k).transpose(1, 2) / self.tau, dim=-1)   # (B, A, N), Eq. (8)
        attn = self.attention_map(attn)
        p = self.out(attn @ self.v(u))                                       # (B, A, C), Eq. (9)
        if self.head == "free":
            return (p * self.readout).sum(-1)                                # (B, A)
        return torch.einsum("ad,dc,bac->ba", e, self.readout, p)             # e_a^T W p_a, Eq. (10)
