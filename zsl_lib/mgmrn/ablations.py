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
L counts the last stages of the toy ResNet (grids 4 x 4, 8 x 8, 16 x 16 for L = 1, 2, 3); the
paper reports H rising with L up to 3 on CUB and AwA2, so L = 1 and 2 are expected lower. Its
best N_p differs between datasets (7, 3, 5), so the N_p rows carry no expected direction.
"""
from __future__ import annotations

from ..ablate import Grid, Row, paper_direction
from .config import TABLE3_ROWS
from .experiment import FAMILY

# The paper's Table III: T1, U, S, H (%) per row on CUB, AwA2 and SUN, with ResNet-101 (the paper's numbers).
PAPER_TABLE3 = {
    1: {"CUB": (76.6, 68.9, 75.1, 71.8), "AWA2": (65.8, 59.1, 81.4, 68.5), "SUN": (61.3, 45.0, 30.5, 36.3)},
    2: {"CUB": (77.0, 69.2, 77.0, 72.9), "AWA2": (66.2, 59.5, 82.4, 69.0), "SUN": (61.2, 45.5, 30.7, 36.6)},
    3: {"CUB": (80.1, 74.0, 75.1, 74.6), "AWA2": (68.0, 61.7, 82.3, 70.5), "SUN": (62.7, 49.1, 30.6, 37.7)},
    4: {"CUB": (81.1, 73.4, 76.6, 75.0), "AWA2": (69.6, 62.7, 85.2, 72.3), "SUN": (63.6, 49.2, 31.6, 38.5)},
    5: {"CUB": (80.1, 73.0, 76.4, 74.6), "AWA2": (69.6, 62.0, 85.2, 71.8), "SUN": (64.1, 49.3, 31.4, 38.3)},
    6: {"CUB": (81.5, 74.2, 77.8, 75.9), "AWA2": (71.5, 64.6, 84.7, 73.3), "SUN": (65.6, 52.0, 32.6, 40.1)},
}
# The paper's headline, its Table I's Mg-MRN row (ResNet-101), is Table III's row 6.
PAPER_TABLE1 = PAPER_TABLE3[6]
LOWER = -1   # the paper's Fig. 4: H rises with L up to 3 (CUB, AwA2) or 4 (SUN), then falls


def table3_direction(row: int) -> int | None:
    return paper_direction({d: v[3] for d, v in PAPER_TABLE3[row].items()}, {d: v[3] for d, v in PAPER_TABLE3[6].items()})


BASE = "paper_free_readout"
TABLE3 = tuple(Row(f"table3_row{r}", f"row {r}: {label}", BASE, model, seeds=(0, 1) if r == 6 else (0,),
                   expect=None if r == 6 else table3_direction(r)) for r, (label, model) in TABLE3_ROWS.items())
REFERENCES = (Row("paper_full", "full model, preset paper (tied read-out of Eq. 10)", "paper"),
              Row("official_code_full", "full model, preset official_code", "official_code"))
REGION_MINING = (Row("part_tokens", "full model, region mining part_tokens (ours)", BASE,
                     dict(rfm_mode="part_tokens"), ours=True),
                 Row("part_channels", "full model, region mining part_channels (ours)", BASE,
                     dict(rfm_mode="part_channels"), ours=True))
LEVELS = tuple(Row(f"part_tokens_L{levels}", f"part_tokens (ours), L = {levels}", BASE,
                   dict(rfm_mode="part_tokens", num_levels=levels), versus="part_tokens", expect=LOWER, ours=True)
               for levels in (1, 2))
PARTS = tuple(Row(f"part_tokens_Np{parts}", f"part_tokens (ours), N_p = {parts}", BASE,
                  dict(rfm_mode="part_tokens", num_parts=parts), versus="part_tokens", ours=True) for parts in (3, 7))

GRID = Grid("mgmrn", FAMILY, TABLE3 + REFERENCES + REGION_MINING + LEVELS + PARTS, reference="table3_row6",
            sections={
                "Table III": tuple(row.key for row in TABLE3 + REFERENCES),
                "region mining (ours)": ("table3_row6", "part_tokens", "part_channels"),
                "Fig. 3: AUSUC with and without MRM": ("table3_row4", "table3_row6"),
                "Fig. 4: L": ("part_tokens_L1", "part_tokens_L2", "part_tokens"),
                "Fig. 4: N_p": ("part_tokens_Np3", "part_tokens", "part_tokens_Np7"),
            })
