"""VSPCN: visual and semantic prompt collaboration on a frozen ViT (CVPR 2025)."""
from .config import PRESETS, TABLE2_ROWS, LossWeights, VSPCNConfig, preset, table2_row
from .model import VSPCN, svpf_drift
from .recorder import AttentionRecorder

__all__ = ["VSPCN", "AttentionRecorder", "VSPCNConfig", "LossWeights", "PRESETS", "TABLE2_ROWS", "preset", "table2_row",
           "svpf_drift"]
