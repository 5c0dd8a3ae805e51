"""Mg-MRN: multi-granularity region mining and mutual refinement on a CNN's stages (2025).

This edition holds the region-mining block and the downsampling to the common grid;
the SCAB, the visual-semantic decoder, the losses and the presets follow.
"""
from .rfmb import RFM_MODES, DownsampleToGrid, RegionFeatureMining

__all__ = ["RegionFeatureMining", "DownsampleToGrid", "RFM_MODES"]
