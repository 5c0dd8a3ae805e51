"""Mg-MRN: multi-granularity region mining and mutual refinement on a CNN's stages (2025).

This edition holds the blocks (`rfmb`, `scab`, `decoder`), the losses (`losses`) and the
assembled model trained with one optimiser step on the summed loss (`model`); the presets
(`paper`, `official_code`), the Table III switches and the chapter follow.
"""
from .decoder import HEADS, VisualSemanticDecoder
from .model import MRM_MODES, MgMRN, MgMRNConfig
from .rfmb import RFM_MODES, DownsampleToGrid, RegionFeatureMining
from .scab import SCAB_MODES, SpatialChannelAttention, tokens

__all__ = ["MgMRN", "MgMRNConfig", "MRM_MODES", "RegionFeatureMining", "DownsampleToGrid", "SpatialChannelAttention", "VisualSemanticDecoder",
           "tokens", "RFM_MODES", "SCAB_MODES", "HEADS"]
