"""VSPCN's losses, Eqs. (11)-(18), each a small function of tensors.

Notation: `scores_seen` (B, C_s) are the CLS scores s_c(x) over the seen classes,
`labels` (B,) the seen-column index of each image, `z_cls`, `z_vp`, `z_sp` (B, D) the
final-LN token outputs, `prototypes` (B, D) phi(a_y) of each image's class, and
`vp_logits` (B, C_s) the visual-prompt classifier phi(z_vp) = z_vp Phi.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import LossWeights


def kl(p_log: torch.Tensor, q_log: torch.Tensor) -> torch.Tensor:
    """KL(p || q) from log-probabilities over the last axis, averaged over the batch."""
    return F.kl_div(q_log, p_log, reduction="batchmean", log_target=True)


def distance(a: torch.Tensor, b: torch.Tensor, form: str = "l2") -> torch.Tensor:
    """Batch mean of ||a - b||_2 ("l2", the code) or of ||a - b||_2^2 ("mse", the paper's Eq. 14)."""
    d = (a - b).pow(2).sum(-1)
    return (d.sqrt() if form == "l2" else d).mean()


def base_loss(scores_seen, labels, z_cls, prototypes, w: LossWeights) -> dict[str, torch.Tensor]:
    """L_BASE = L_cls + lambda_sr L_sr (Eqs. 11, 13, 14)."""
    cls = F.cross_entropy(scores_seen, labels)
    sr = distance(z_cls, prototypes, w.sr_form)
    return {"cls": cls, "sr": sr, "base": cls + w.lambda_sr * sr}


def ced_loss(scores_seen, vp_logits, labels, cls_loss, w: LossWeights) -> dict[str, torch.Tensor]:
    """L_CED = mu_ED L_ED + mu_ce L_ce(phi(z_vp), y) (Eqs. 15-16).

    L_ED = log(1 + (L_cls + L_ce) / (KL(softmax(s) || softmax(phi(z_vp))) + eps)): lowering
    it lowers both cross-entropies and pushes the visual prompt's prediction away from
    the CLS token's, so the prompt learns something the CLS token does not already know.
    """
    ce = F.cross_entropy(vp_logits, labels)
    divergence = kl(F.log_softmax(scores_seen, -1), F.log_softmax(vp_logits, -1))
    ed = torch.log1p((cls_loss + ce) / (divergence + w.ed_eps))
    return {"ce_vp": ce, "kl_cls_vp": divergence, "ed": ed, "ced": w.mu_ed * ed + w.mu_ce * ce}


def skd_loss(z_sp, prototypes, w: LossWeights) -> dict[str, torch.Tensor]:
    """L_SKD (Eq. 17): a divergence between softmax(z_sp) and softmax(phi(a_y)) over the D
    feature axis, plus their Euclidean distance.

    "symmetric_kl" (the code's "JSD"): (KL(p||q) + KL(q||p)) / 2;
    "jsd": the Jensen-Shannon divergence, (KL(p||m) + KL(q||m)) / 2 with m = (p + q) / 2.
    """
    p, q = F.log_softmax(z_sp, -1), F.log_softmax(prototypes, -1)
    if w.skd_divergence == "symmetric_kl":
        div = 0.5 * kl(p, q) + 0.5 * kl(q, p)
    else:
        m = torch.logaddexp(p, q) - torch.log(torch.tensor(2.0, device=p.device))
        div = 0.5 * kl(p, m) + 0.5 * kl(q, m)
    euclid = distance(z_sp, prototypes, "l2")
    return {"skd_div": div, "skd_l2": euclid, "skd": div + euclid}


def total_loss(features: dict[str, torch.Tensor], scores_seen: torch.Tensor, vp_logits: torch.Tensor | None,
               prototypes: torch.Tensor, labels: torch.Tensor, w: LossWeights) -> dict[str, torch.Tensor]:
    """L = L_BASE + lambda_1 L_CED + lambda_2 L_SKD (Eq. 18); L_CED only with a visual prompt,
    L_SKD only with a semantic prompt. Returns every term, "total" included."""
    terms = base_loss(scores_seen, labels, features["cls"], prototypes, w)
    total = terms["base"]
    if vp_logits is not None:
        terms |= ced_loss(scores_seen, vp_logits, labels, terms["cls"], w)
        total = total + w.lambda_ced * terms["ced"]
    if "sp" in features:
        terms |= skd_loss(features["sp"], prototypes, w)
        total = total + w.lambda_skd * terms["skd"]
    terms["total"] = total
    return terms
