"""VSPCN's ablation grid on ToyBirds: Table 2, Fig. 4 and Fig. 5 of the paper, as rows of
`zsl_lib.ablate` (run with `python -m zsl_lib.ablate vspcn`).

* Table 2: all eight rows on `paper_default`; rows 1 and 8 also on `code_exact` (the released
  code: a 13th random frozen block, the batch-mean adapter state, a visual prompt that never
  trains).
* Fig. 4 (a, b): the weights of Eq. (18). The paper's curves have no numbers that survive in
  its text, so the middle point is the released code's value: lambda_1 = 0.8 on L_CED, and
  lambda_2 = 0.18 on L_SKD, which the code writes as the product of two weights, 0.9 x 0.2.
  The sides are a factor of four below and above.
* Fig. 5: alpha_v (Eq. 5) and alpha_s (Eq. 7), the weights of the attention term against the
  learned bias, at the paper's CUB values 0.05 and 0.8 and one point on each side. With the
  code's zero-initialised SVPF query and key, the attention term stays exactly uniform, so
  alpha_v can only trade the plain mean of the image tokens against the bias-selected ones.
"""
from __future__ import annotations

from ..ablate import Grid, Row
from .config import TABLE2_ROWS, LossWeights, table2_switches
from .experiment import FAMILY

TABLE2 = tuple(Row(f"table2_row{r}", f"row {r}: {TABLE2_ROWS[r][0]}", "paper_default", table2_switches(r),
                   seeds=(0, 1) if r == 8 else (0,)) for r in TABLE2_ROWS)
CODE_EXACT = tuple(Row(f"code_exact_row{r}", f"row {r}: {TABLE2_ROWS[r][0]}, preset code_exact", "code_exact",
                       table2_switches(r)) for r in (1, 8))
LAMBDA_CED = tuple(Row(f"lambda_ced_{value}", f"lambda_1 (L_CED) = {value}", "paper_default",
                       dict(losses=LossWeights(lambda_ced=value))) for value in (0.2, 3.2))
LAMBDA_SKD = tuple(Row(f"lambda_skd_{value}", f"lambda_2 (L_SKD) = {value}", "paper_default",
                       dict(losses=LossWeights(lambda_skd=value))) for value in (0.045, 0.72))
ALPHA_V = tuple(Row(f"alpha_v_{value}", f"alpha_v = {value}", "paper_default", dict(alpha_v=value))
                for value in (0.0, 0.5))
ALPHA_S = tuple(Row(f"alpha_s_{value}", f"alpha_s = {value}", "paper_default", dict(alpha_s=value))
                for value in (0.5, 0.95))

GRID = Grid("vspcn", FAMILY, TABLE2 + CODE_EXACT + LAMBDA_CED + LAMBDA_SKD + ALPHA_V + ALPHA_S,
            reference="table2_row8",
            sections={
                "Table 2": tuple(row.key for row in TABLE2 + CODE_EXACT),
                "Fig. 4a: lambda_1 (L_CED)": ("lambda_ced_0.2", "table2_row8", "lambda_ced_3.2"),
                "Fig. 4b: lambda_2 (L_SKD)": ("lambda_skd_0.045", "table2_row8", "lambda_skd_0.72"),
                "Fig. 5a: alpha_v": ("alpha_v_0.0", "table2_row8", "alpha_v_0.5"),
                "Fig. 5b: alpha_s": ("alpha_s_0.5", "table2_row8", "alpha_s_0.95"),
            })
