"""The Spatial-Channel Attention Block (SCAB, Eqs. 3-7): a finer stage refined by the coarser ones.

For stage l < L, on the common grid (B, C, H, W):

    s_l   = G_l(concat_ch[g_{l+1}, ..., g_L])          Eq. (3), G_l a 1x1 conv without bias
    a^c_l = sigmoid(W_2 ReLU(W_1 GAP(s_l)))             Eq. (5), reduction ratio 1 (the code)
    a^s_l = sigmoid(conv3x3(s_l))                        Eq. (4), C channels (the code), or 1 (CBAM-style)
    u_hat = s_l * a^c_l * a^s_l                          Eq. (6)
    u_l   = [tokens(g_l), tokens(u_hat)]                 Eq. (7), (B, 2HW, C)

`detach_coarse` (the released code; the paper is silent) stops gradients into the coarse
stages; `mode="concat_only"` is Table III's "w/o SCAB" (both masks fixed to 1, G_l kept).
The masks pass through the identity taps `spatial_mask` and `channel_mask`, where observers
hook them (`zsl_lib.recording`).
"""
from __future__ import annotations

import torch
import torch.nn as nn

SCAB_MODES = ("scab", "concat_only")


def tokens(x: torch.Tensor) -> torch.Tensor:
    """Row-major spatial flattening, Eq. (7)'s delta: (B, C, H, W) -> (B, HW, C)."""
    return x.flatten(2).transpose(1, 2)


class SpatialChannelAttention(nn.Module):
    """The SCAB of one stage l < L (Eqs. 3-7, above): `channels` is the common width C, `num_coarser`
    the number of coarser stages it reads (L - l); `spatial_channels` = 1 gives a CBAM-style
    one-channel spatial mask (7 x 7 kernel), the default C channels are the code's (3 x 3)."""

    def __init__(self, channels: int, num_coarser: int, mode: str = "scab", detach_coarse: bool = False,
                 spatial_channels: int | None = None):
        super().__init__()
        if mode not in SCAB_MODES:
            raise ValueError(f"scab mode {mode!r} is not one of {SCAB_MODES}")
        self.mode, self.detach_coarse = mode, detach_coarse
        self.fuse = nn.Conv2d(num_coarser * channels, channels, 1, bias=False)              # G_l
        nn.init.kaiming_uniform_(self.fuse.weight, a=1)
        self.channel = nn.Sequential(nn.Linear(channels, channels), nn.ReLU(), nn.Linear(channels, channels))
        one = spatial_channels == 1
        self.spatial = nn.Conv2d(channels, 1 if one else channels, 7 if one else 3, padding=3 if one else 1, bias=False)
        self.spatial_mask, self.channel_mask = nn.Identity(), nn.Identity()   # taps for observers

    def forward(self, g_l: torch.Tensor, coarser: list[torch.Tensor]) -> torch.Tensor:
        """g_l (B, C, H, W) and the coarser stages' grids -> u_l (B, 2HW, C)."""
        x = torch.cat(coarser, dim=1)                                        # (B, (L-l) C, H, W)
        s = self.fuse(x.detach() if self.detach_coarse else x)               # (B, C, H, W), Eq. (3)
        if self.mode == "scab":
            a_c = self.channel_mask(torch.sigmoid(self.channel(s.mean(dim=(2, 3)))))   # (B, C), Eq. (5)
            a_s = self.spatial_mask(torch.sigmoid(self.spatial(s)))          # (B, C or 1, H, W), Eq. (4)
            s = s * a_c[:, :, None, None] * a_s                              # Eq. (6)
        return torch.cat([tokens(g_l), tokens(s)], dim=1)                    # Eq. (7)
