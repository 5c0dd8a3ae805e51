"""The Region Feature Mining Block (RFMB, Eqs. 1-2) and the downsampling D_l to the common grid.

Eq. (1) softly assigns every position of a stage's feature map f_l (B, C_l, H_l, W_l) to
M prototypes r_m with a softmax over m of -||f - r_m||^2 / beta_m, beta_m = 2 sigma_m^2 =
sigmoid(rho_m) (the released code's parametrisation, rho_m = 0 at the start). Eq. (2) then
averages the mask-weighted copies of f over the parts:

    g_hat = (1/M) sum_m a_m * f = f / M,

because the masks sum to one at every position. The block is a fixed rescaling: its
prototypes never receive a gradient, and the GroupNorm in D_l removes the 1/M as well
(chapter 7 shows both). `rfm_mode`:

- "paper_mean": Eq. (2) as printed (and as released), degenerate; kept for fidelity;
- "none": g_hat = f, the "w/o RFMB" ablation; the same function up to GroupNorm's epsilon;
- "part_tokens": a non-degenerate variant of ours (not in the paper or the code; label
  results "Mg-MRN + non-degenerate RFM"): the grid path is left as "none" (g_hat = f) and
  each part is pooled into a region token, t_m = sum_ij a_m f / (sum_ij a_m + 1e-5), mapped
  to the common width, tau_m = LN(P t_m) ((B, M, C), returned beside g_hat); the model
  appends the M tokens to the stage's decoder memory;
- "part_channels": a second non-degenerate variant of ours (label results the same way):
  g_hat = sum_m a_m * (P_m f), one 1x1 map P_m per part, initialised to the identity plus
  small noise.

Both variants compute the assignments on L2-normalised features, so the softmax does not
saturate (squared distances of raw ResNet features run into the thousands). The masks pass
through the identity tap `assignment_map`, where observers hook them (`zsl_lib.recording`).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import RFM_MODES


class RegionFeatureMining(nn.Module):
    """RFMB of one stage: f (B, C_l, H_l, W_l) -> (g_hat (B, C_l, H_l, W_l), region tokens (B, M, C)
    under "part_tokens", else None)."""

    def __init__(self, channels: int, num_parts: int = 5, mode: str = "paper_mean", width: int | None = None):
        super().__init__()
        if mode not in RFM_MODES:
            raise ValueError(f"rfm_mode {mode!r} is not one of {RFM_MODES}")
        self.mode, self.num_parts = mode, num_parts
        self.assignment_map = nn.Identity()                                 # tap for observers, (B, M, H, W)
        if mode == "none":                                                  # no parameters to carry
            return
        prototypes = torch.empty(num_parts, channels)
        nn.init.kaiming_normal_(prototypes)
        self.prototypes = nn.Parameter(prototypes.clamp_min(1e-5))          # (M, C_l), the code's init
        self.smoothing = nn.Parameter(torch.zeros(num_parts))               # rho_m; beta_m = sigmoid(rho_m)
        if mode == "part_channels":
            eye = torch.eye(channels).expand(num_parts, channels, channels)
            self.part_maps = nn.Parameter(eye + 1e-3 * torch.randn(num_parts, channels, channels))   # P_m
        if mode == "part_tokens":
            if width is None:
                raise ValueError("rfm_mode 'part_tokens' needs the common width C of the region tokens")
            self.to_width = nn.Sequential(nn.Linear(channels, width), nn.LayerNorm(width))          # LN(P t)

    def assignment(self, f: torch.Tensor) -> torch.Tensor:
        """Eq. (1): a (B, M, H, W), a softmax over the M parts at every position."""
        r = self.prototypes
        if self.mode != "paper_mean":             # the variants' fix: distances of unit vectors, in [0, 4]
            f, r = F.normalize(f, dim=1), F.normalize(r, dim=1)
        dist = (f.pow(2).sum(1, keepdim=True) + r.pow(2).sum(1).view(1, -1, 1, 1)
                - 2 * torch.einsum("bchw,mc->bmhw", f, r))                  # ||f - r_m||^2, (B, M, H, W)
        logits = -dist.clamp_min(0) / torch.sigmoid(self.smoothing).view(1, -1, 1, 1)
        return logits.softmax(dim=1)

    @property
    def num_region_tokens(self) -> int:
        """How many tokens the block adds to its stage's decoder memory: M under "part_tokens", else 0."""
        return self.num_parts if self.mode == "part_tokens" else 0

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.mode == "none":
            return f, None
        a = self.assignment_map(self.assignment(f))                         # (B, M, H, W)
        if self.mode == "paper_mean":             # Eq. (2): (1/M) sum_m a_m f = f (1/M) sum_m a_m, no (B, M, C, H, W)
            return f * a.mean(dim=1, keepdim=True), None
        if self.mode == "part_tokens":                                      # the grid path is "none"
            pooled = torch.einsum("bmhw,bchw->bmc", a, f) / (a.sum((2, 3)).unsqueeze(-1) + 1e-5)   # t_m, (B, M, C_l)
            return f, self.to_width(pooled)                                 # (B, M, C)
        mapped = torch.einsum("mdc,bchw->bmdhw", self.part_maps, f)         # P_m f, (B, M, C, H, W)
        return (a.unsqueeze(2) * mapped).sum(dim=1), None


class DownsampleToGrid(nn.Sequential):
    """D_l: [3x3 conv (no bias) -> GroupNorm(32) -> ReLU -> bilinear x0.5] per halving; the first
    conv maps C_l -> C. A stage already at the grid gets one unit without the resize."""

    def __init__(self, in_channels: int, out_channels: int, halvings: int, groups: int = 32):
        units = []
        for i in range(max(1, halvings)):
            units += [nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1, bias=False),
                      nn.GroupNorm(groups, out_channels), nn.ReLU(inplace=True)]
            if halvings:
                units.append(nn.Upsample(scale_factor=0.5, mode="bilinear", align_corners=True))
        super().__init__(*units)

    @staticmethod
    def halvings(size: int, grid: int) -> int:
        """How many halvings bring a `size` map to the `grid`; sizes must be grid * 2^k."""
        k = round(math.log2(size / grid))
        if grid * 2 ** k != size:
            raise ValueError(f"a {size} x {size} stage cannot be halved onto a {grid} x {grid} grid")
        return k
