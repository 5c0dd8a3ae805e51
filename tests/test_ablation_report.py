"""The statistics of a stored grid, checked against hand computations on made-up records."""
import math

import pandas as pd
import pytest

from zsl_lib import ablate, ablation_report as report
from zsl_lib.ablate import Cell


def records_of(grid, values):
    """{(row, world, seed): H} -> records as the runner stores them (only the metrics matter here)."""
    return {Cell(grid.name, row, w, s): {"metrics": {"H": h, "T1": h, "U": h, "S": h, "AUSUC": h}}
            for (row, w, s), h in values.items()}


def test_spread_paired_differences_and_verdicts_by_hand():
    grid = ablate.load_grid("mgmrn")             # reference table3_row6 (seeds 0, 1); row 1 expected lower
    values = {("table3_row6", 0, 0): 60.0, ("table3_row6", 1, 0): 50.0, ("table3_row6", 2, 0): 55.0,
              ("table3_row6", 0, 1): 61.0, ("table3_row6", 1, 1): 49.0, ("table3_row6", 2, 1): 57.0,
              ("table3_row1", 0, 0): 50.0, ("table3_row1", 1, 0): 45.0, ("table3_row1", 2, 0): 47.0,   # -10, -5, -8
              ("table3_row2", 0, 0): 61.0, ("table3_row2", 1, 0): 49.5, ("table3_row2", 2, 0): 56.0,   # +1, -0.5, +1
              ("paper_full", 0, 0): 70.0, ("paper_full", 1, 0): 60.0, ("paper_full", 2, 0): 65.0,      # +10 each
              ("table3_row4", 0, 0): 60.0, ("table3_row4", 1, 0): 50.0, ("table3_row4", 2, 0): 55.0}     # level
    records = records_of(grid, values)
    sigma, pairs = report.run_spread(grid, records, (0, 1, 2))
    assert pairs == 3 and sigma == pytest.approx(math.sqrt((1 + 1 + 4) / 3 / 2))     # seed differences +1, -1, +2
    table = report.summary(grid, records, keys=["table3_row6", "table3_row1", "table3_row2", "paper_full",
                                                "table3_row3", "table3_row4"], probe={0: 50.0, 1: 40.0, 2: 45.0}).set_index("row")
    assert table.attrs["noise"] == pytest.approx(math.sqrt(2) * sigma)
    assert table.loc["table3_row6", "verdict"] == "reference"
    row1 = table.loc["table3_row1"]
    assert row1["delta"] == pytest.approx(-23 / 3) and row1["agree"] == "3/3" and row1["deltas"] == (-10.0, -5.0, -8.0)
    assert row1["mean"] == pytest.approx(142 / 3) and row1["sd"] == pytest.approx(2.5166, abs=1e-4)
    assert row1["verdict"] == report.REPRODUCED and row1["probe"] == pytest.approx(45.0)
    assert table.loc["table3_row2", "verdict"] == report.WITHIN_NOISE            # |0.5| < sqrt(2) sigma = 1.41
    assert table.loc["paper_full", "verdict"] == "higher"                        # the paper makes no claim
    assert table.loc["table3_row3", "verdict"] == "incomplete" and math.isnan(table.loc["table3_row3", "mean"])
    level_row = table.loc["table3_row4"]                                         # a zero difference has no sign
    assert level_row["deltas"] == (0.0, 0.0, 0.0) and level_row["agree"] == "0/3"
    assert level_row["verdict"] == report.WITHIN_NOISE
    assert report.sentence(row1) == ("changes H by -7.7 points on average against `table3_row6`, with the mean's sign "
                                     "on 3 of 3 worlds: reproduced in direction")
    assert report.sentence(table.loc["table3_row3"]).startswith("is not stored on every world yet")
    assert report.sentence(table.loc["table3_row6"]) == "is the row the others are compared with"
    level = pd.Series({"verdict": "within noise", "agree": "3/3", "delta": 0.0, "deltas": (0.0, 0.03, -0.04),
                       "versus": "table2_row8"})
    assert report.sentence(level, "AUSUC") == ("changes AUSUC by less than 0.05 points against `table2_row8` on every "
                                               "world: within noise")
    shown = report.formatted(table.reset_index())
    assert shown.loc[grid.row("table3_row1").label, "deltas"] == "-10.0 / -5.0 / -8.0"
    assert shown.loc[grid.row("table3_row1").label, "paper"] == "lower"


def test_verdict_rules():
    assert report.verdict(-3.0, 3, 3, 1.0, expect=-1) == report.REPRODUCED
    assert report.verdict(+3.0, 3, 3, 1.0, expect=-1) == report.NOT_REPRODUCED
    assert report.verdict(-3.0, 2, 3, 1.0, expect=-1) == report.WITHIN_NOISE      # worlds disagree in sign
    assert report.verdict(-0.9, 3, 3, 1.0, expect=-1) == report.WITHIN_NOISE      # smaller than the seed noise
    assert report.verdict(-3.0, 3, 3, math.nan, expect=None) == report.WITHIN_NOISE   # no spread measured yet


def test_paper_direction_needs_every_dataset_to_agree():
    assert ablate.paper_direction({"CUB": 70, "SUN": 40}, {"CUB": 75, "SUN": 41}) == -1
    assert ablate.paper_direction({"CUB": 70, "SUN": 42}, {"CUB": 75, "SUN": 41}) is None
    assert ablate.paper_direction({"CUB": 75, "SUN": 41}, {"CUB": 75, "SUN": 41}) is None


def test_paper_table_keeps_the_papers_order_and_differences_to_the_full_model():
    from zsl_lib.mgmrn.ablations import PAPER_TABLE3
    grid = ablate.load_grid("mgmrn")
    table = report.paper_table(grid, PAPER_TABLE3, ("T1", "U", "S", "H"), "table3_row{}")
    assert list(table.columns.get_level_values(0).unique()) == ["CUB", "AWA2", "SUN"]
    assert table.loc[grid.row("table3_row1").label, ("CUB", "H - row 6")] == pytest.approx(71.8 - 75.9)
    assert table.loc[grid.row("table3_row6").label, ("SUN", "H - row 6")] == 0


def test_the_papers_headline_stands_above_ours_with_our_mean():
    from zsl_lib.mgmrn.ablations import PAPER_TABLE1 as MGMRN_HEADLINE, PAPER_TABLE3
    from zsl_lib.vspcn.ablations import PAPER_TABLE1, PAPER_TABLE2
    assert all(PAPER_TABLE1[d][1:] == PAPER_TABLE2[8][d] for d in PAPER_TABLE1)     # Table 1 = Table 2 row 8
    assert MGMRN_HEADLINE == PAPER_TABLE3[6]
    ours = {0: {"T1": 70.0, "U": 60.0, "S": 50.0, "H": 54.5, "AUSUC": 1.0}, 1: {"T1": 72.0, "U": 62.0, "S": 52.0, "H": 56.5}}
    table = report.headline(PAPER_TABLE1, ours, "VSPCN")
    assert list(table.columns) == ["T1", "U", "S", "H"] and len(table) == 3 + 2 + 1
    assert table.loc["VSPCN, the paper: SUN"].tolist() == [75.3, 59.4, 49.1, 53.8]
    assert table.loc["VSPCN, ours: ToyBirds, mean of the worlds"].tolist() == [71.0, 61.0, 51.0, 55.5]
