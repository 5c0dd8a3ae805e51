"""Mg-MRN's ablation grid on ToyBirds: Table III, Fig. 3 and Fig. 4 of the paper, as rows of
`zsl_lib.ablate` (run with `python -m zsl_lib.ablate mgmrn`).

The Table III rows use the preset `paper_free_readout` (the paper with the released code's
free read-out of Eq. 10): on ToyBirds the tied read-out of the `paper` preset keeps H near 37 %,
far below the ESZSL probe, which would leave every ablation row at the same floor (chapter 7).
The `paper` and `official_code` full models are reference rows.

Region mining as Eq. (2) prints it (`paper_mean`) is degenerate: the region feature is the
stage map divided by N_p, so N_p cannot change the model beyond a scale and the paper's
Fig. 4 N_p sweep cannot show a systematic effect under it. The sweeps of L and N_p therefore
run under our non-degenerate region mining `part_tokens` (labelled ours), whose N_p pooled
region tokens each attend to a part of the map; `part_channels` is the second such variant.
L counts the last stages of the toy ResNet (grids 4 x 4, 8 x 8, 16 x 16 for L = 1, 2, 3).
"""
from __future__ import annotations

from ..ablate import Grid, Row
from .config import TABLE3_ROWS
from .experiment import FAMILY

BASE = "paper_free_readout"
TABLE3 = tuple(Row(f"table3_row{r}", f"row {r}: {label}", BASE, model, seeds=(0, 1) if r == 6 else (0,))
               for r, (label, model) in TABLE3_ROWS.items())
REFERENCES = (Row("paper_full", "full model, preset paper (tied read-out of Eq. 10)", "paper"),
              Row("official_code_full", "full model, preset official_code", "official_code"))
REGION_MINING = (Row("part_tokens", "full model, region mining part_tokens (ours)", BASE,
                     dict(rfm_mode="part_tokens"), ours=True),
                 Row("part_channels", "full model, region mining part_channels (ours)", BASE,
                     dict(rfm_mode="part_channels"), ours=True))
LEVELS = tuple(Row(f"part_tokens_L{levels}", f"part_tokens (ours), L = {levels}", BASE,
                   dict(rfm_mode="part_tokens", num_levels=levels), ours=True) for levels in (1, 2))
PARTS = tuple(Row(f"part_tokens_Np{parts}", f"part_tokens (ours), N_p = {parts}", BASE,
                  dict(rfm_mode="part_tokens", num_parts=parts), ours=True) for parts in (3, 7))

GRID = Grid("mgmrn", FAMILY, TABLE3 + REFERENCES + REGION_MINING + LEVELS + PARTS, reference="table3_row6",
            sections={
                "Table III": tuple(row.key for row in TABLE3 + REFERENCES),
                "region mining (ours)": ("table3_row6", "part_tokens", "part_channels"),
                "Fig. 3: AUSUC with and without MRM": ("table3_row4", "table3_row6"),
                "Fig. 4: L": ("part_tokens_L1", "part_tokens_L2", "part_tokens"),
                "Fig. 4: N_p": ("part_tokens_Np3", "part_tokens", "part_tokens_Np7"),
            })
