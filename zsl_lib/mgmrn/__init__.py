"""Mg-MRN: multi-granularity region mining and mutual refinement on a CNN's stages (2025).

This edition holds the blocks: region mining and the downsampling to the common grid
(`rfmb`), the spatial-channel attention block (`scab`) and the visual-semantic decoder
(`decoder`); the assembled model, its losses and presets follow.
"""
from .decoder import HEADS, VisualSemanticDecoder
from .rfmb import RFM_MODES, DownsampleToGrid, RegionFeatureMining
from .scab import SCAB_MODES, SpatialChannelAttention, tokens

__all__ = ["RegionFeatureMining", "DownsampleToGrid", "SpatialChannelAttention", "VisualSemanticDecoder",
           "tokens", "RFM_MODES", "SCAB_MODES", "HEADS"]
