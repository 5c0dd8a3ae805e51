"""Mg-MRN: multi-granularity region mining and mutual refinement on a CNN's stages (2025).

This edition holds the blocks (`rfmb`, `scab`, `decoder`), the losses (`losses`) and the
assembled model (`model`), its presets `paper` / `official_code` and the Table III switches
(`config`), and the attention recorder (`recorder`); the configs for the training CLI, the
benchmark against the official code's step and the chapter follow.
"""
from .config import HEADS, RFM_MODES
from .decoder import VisualSemanticDecoder
from .config import MRM_MODES, PRESETS, TABLE3_ROWS, MgMRNConfig, preset, table3_row
from .model import MgMRN
from .recorder import AttentionRecorder
from .rfmb import DownsampleToGrid, RegionFeatureMining
from .scab import SCAB_MODES, SpatialChannelAttention, tokens

__all__ = ["MgMRN", "AttentionRecorder", "MgMRNConfig", "MRM_MODES", "PRESETS", "TABLE3_ROWS", "preset", "table3_row", "RegionFeatureMining", "DownsampleToGrid", "SpatialChannelAttention", "VisualSemanticDecoder",
           "tokens", "RFM_MODES", "SCAB_MODES", "HEADS"]
