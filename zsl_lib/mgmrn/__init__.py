"""Mg-MRN: multi-granularity region mining and mutual refinement on a CNN's stages (2025).

The blocks (`rfmb`, `scab`, `decoder`), the losses (`losses`), the assembled model (`model`),
its presets `paper` / `paper_free_readout` / `official_code` and the Table III switches (`config`), the attention
recorder (`recorder`) and the ToyBirds runs (`experiment`). Training goes through
`zsl_lib.train` (configs/mgmrn_*.yaml for the command line); chapter 7 walks through it.
"""
from .config import HEADS, RFM_MODES
from .decoder import VisualSemanticDecoder, word_vector_span
from .config import MRM_MODES, PRESETS, TABLE3_ROWS, MgMRNConfig, preset, table3_row
from .model import MgMRN
from .recorder import AttentionRecorder
from .rfmb import DownsampleToGrid, RegionFeatureMining
from .scab import SCAB_MODES, SpatialChannelAttention, tokens

__all__ = ["MgMRN", "AttentionRecorder", "MgMRNConfig", "MRM_MODES", "PRESETS", "TABLE3_ROWS", "preset", "table3_row", "RegionFeatureMining", "DownsampleToGrid", "SpatialChannelAttention", "VisualSemanticDecoder",
           "tokens", "RFM_MODES", "SCAB_MODES", "HEADS", "word_vector_span"]
