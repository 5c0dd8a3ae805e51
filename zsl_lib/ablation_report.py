"""Reading a stored ablation grid: paired differences, the run-to-run spread, a verdict per row.

Every statistic is on one metric (H at the validation gamma unless told otherwise), in percent.

* **Run-to-run spread.** The grid's reference row (the full model) is run with two training
  seeds on each world. Two runs of one configuration on world w differ by d_w only through
  the seed, so the standard deviation of a single run is estimated as
  sigma = sqrt(mean_w d_w^2 / 2), with one degree of freedom per world.
* **Paired difference.** A row and the row it is compared with (`Row.versus`) ran on the same
  world with the same seed: Delta_w = x_row,w - x_versus,w. World-to-world differences cancel;
  what remains is the effect plus seed noise of standard deviation sqrt(2) sigma.
* **Verdict.** A mean difference no larger than sqrt(2) sigma (one paired difference's
  seed noise), or one whose worlds disagree in sign, is "within noise". Otherwise the row is
  "lower" or "higher" than its comparison; where the paper reports a direction (`Row.expect`),
  the verdict says "reproduced in direction" or "not reproduced".
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import ablate, metrics
from .ablate import Cell, Grid, Settings

WITHIN_NOISE, REPRODUCED, NOT_REPRODUCED = "within noise", "reproduced in direction", "not reproduced"
DIRECTION = {-1: "lower", 1: "higher", None: ""}


def load(grid: Grid, worlds=(0, 1, 2), mode: str = "book", out=ablate.RESULTS) -> dict[Cell, dict]:
    """The stored records of `grid` on `worlds` whose configuration matches the grid's today."""
    return ablate.stored_records(grid, ablate.cells(grid, worlds), Settings(mode=mode), out)


def changes(grid: Grid, key: str, versus: str) -> str:
    """What row `key` sets differently from row `versus`: "name=value" for each field of the
    model and training configuration (and the preset) that differs."""
    a, b = (ablate.cell_config(grid, Cell(grid.name, k, 0, 0), Settings()) for k in (key, versus))
    flat = {}
    for part in ("model", "train"):
        for name, value in a[part].items():
            if isinstance(value, dict):
                flat |= {f"{name}.{k}": (v, b[part][name][k]) for k, v in value.items() if v != b[part][name][k]}
            elif value != b[part][name]:
                flat[name] = (value, b[part][name])
    preset = [f"preset {a['preset']}"] if a["preset"] != b["preset"] else []
    return ", ".join(preset + [f"{name}={mine}" for name, (mine, _) in flat.items()])


def declaration(grid: Grid) -> pd.DataFrame:
    """The grid's rows as a table: what each changes from the row it is compared with, its
    training seeds, and the direction the paper reports for H."""
    return pd.DataFrame([{"row": row.key, "label": row.label, "versus": grid.versus(row.key),
                          "changes": changes(grid, row.key, grid.versus(row.key)) or "(the reference)",
                          "seeds": ", ".join(map(str, row.seeds)), "paper": DIRECTION[row.expect]}
                         for row in grid.rows]).set_index("row")


def long_table(grid: Grid, records: dict[Cell, dict], metrics=("H", "U", "S", "T1", "AUSUC")) -> pd.DataFrame:
    """One line per stored cell: row key and label, world, seed, and the metrics (percent)."""
    return pd.DataFrame([{"row": cell.row, "label": grid.row(cell.row).label, "world": cell.world,
                          "seed": cell.seed, **{m: record["metrics"][m] for m in metrics}}
                         for cell, record in records.items()])


def value(records: dict[Cell, dict], grid: Grid, row: str, world: int, metric: str, seed: int = 0) -> float | None:
    record = records.get(Cell(grid.name, row, world, seed))
    return None if record is None else record["metrics"][metric]


def run_spread(grid: Grid, records: dict[Cell, dict], worlds, metric: str = "H") -> tuple[float, int]:
    """sigma, the standard deviation of one run from the seed alone, and the number of worlds it
    rests on, from the reference row's two seeds (NaN with no pair stored)."""
    seeds = grid.row(grid.reference).seeds
    pairs = [(value(records, grid, grid.reference, w, metric, seeds[0]),
              value(records, grid, grid.reference, w, metric, seeds[1])) for w in worlds]
    differences = [b - a for a, b in pairs if a is not None and b is not None]
    if not differences:
        return math.nan, 0
    return math.sqrt(np.mean(np.square(differences)) / 2), len(differences)


def seed_pairs(grid: Grid, records: dict[Cell, dict], worlds, metric: str = "H") -> pd.DataFrame:
    """The reference row's metric for each of its seeds (columns) on each world (rows)."""
    return pd.DataFrame({f"seed {s}": [value(records, grid, grid.reference, w, metric, s) for w in worlds]
                         for s in grid.row(grid.reference).seeds}, index=[f"world {w}" for w in worlds], dtype=float)


def paper_table(grid: Grid, numbers: dict[int, dict[str, tuple]], metrics: tuple[str, ...], row_key: str) -> pd.DataFrame:
    """A paper's ablation table ({row number: {dataset: values in the order of `metrics`}}) with the
    grid's row labels (`row_key.format(row)` is a row's key), and per dataset H minus the last row."""
    datasets = list(next(iter(numbers.values())))
    table = pd.DataFrame({(d, m): {grid.row(row_key.format(r)).label: v[d][i] for r, v in numbers.items()}
                          for d in datasets for i, m in enumerate(metrics)})
    difference = f"H - row {max(numbers)}"
    for d in datasets:
        table[(d, difference)] = table[(d, "H")] - table[(d, "H")].iloc[-1]
    return table[[(d, m) for d in datasets for m in metrics + (difference,)]].round(1)


def verdict(mean_difference: float, agree: int, worlds: int, noise: float, expect: int | None) -> str:
    """The plain verdict of a paired comparison (see the module docstring)."""
    if math.isnan(noise) or abs(mean_difference) <= noise or agree < worlds:
        return WITHIN_NOISE
    direction = 1 if mean_difference > 0 else -1
    if expect is None:
        return "higher" if direction > 0 else "lower"
    return REPRODUCED if direction == expect else NOT_REPRODUCED


def summary(grid: Grid, records: dict[Cell, dict], worlds=(0, 1, 2), metric: str = "H",
            keys=None, probe: dict[int, float] | None = None) -> pd.DataFrame:
    """One line per row (`keys`, default all): the metric on each world (seed 0), mean and sample
    sd over worlds (only when every world is stored), the paired difference to its comparison row
    (mean, per world, how many worlds share the mean's sign; a world whose difference is exactly
    zero shares no sign), the paper's direction and the verdict. `probe` {world: probe H} adds the
    probe's mean beside them. A row with a world missing has no verdict ("incomplete")."""
    sigma, pairs = run_spread(grid, records, worlds, metric)
    noise = math.sqrt(2) * sigma
    lines = []
    for key in keys or [row.key for row in grid.rows]:
        row, versus = grid.row(key), grid.versus(key)
        own = [value(records, grid, key, w, metric) for w in worlds]
        other = [value(records, grid, versus, w, metric) for w in worlds]
        line = {"row": key, "label": row.label, **{f"world {w}": math.nan if x is None else x for w, x in zip(worlds, own)}}
        complete = None not in own
        line["mean"] = np.mean(own) if complete else math.nan
        line["sd"] = float(metrics.mean_sd(own)[1]) if complete and len(own) > 1 else math.nan
        if probe is not None:
            line["probe"] = np.mean([probe[w] for w in worlds])
        line["versus"] = versus
        if key == versus:
            line.update(delta=math.nan, deltas=(), agree="", paper=None, verdict="reference")
        elif None in own or None in other:
            line.update(delta=math.nan, deltas=(), agree="", paper=row.expect, verdict="incomplete")
        else:
            deltas = np.subtract(own, other)
            mean = float(deltas.mean())
            agree = int(np.sum((np.sign(deltas) == np.sign(mean)) & (deltas != 0)))   # a zero has no sign
            line.update(delta=mean, deltas=tuple(float(d) for d in deltas), agree=f"{agree}/{len(worlds)}",
                        paper=row.expect, verdict=verdict(mean, agree, len(worlds), noise, row.expect))
        lines.append(line)
    table = pd.DataFrame(lines)
    table.attrs.update(metric=metric, sigma=sigma, noise=noise, spread_worlds=pairs)
    return table


def sentence(line: pd.Series, metric: str = "H") -> str:
    """One line of a `summary` (of `metric`) as a clause a chapter's prose can glue after the
    row's name: its mean paired difference, how many worlds share its sign, and the verdict; or that the row
    is the reference, or not stored yet while a world is missing. A row within 0.05 points of its comparison on
    every world (a mean of +0.0, whose sign says nothing) is said to be so. It is Markdown (the comparison row's
    key is a code span): glue it as `IPython.display.Markdown` and paste it with `{glue:md}`."""
    if line["verdict"] == "reference":
        return "is the row the others are compared with"
    if line["verdict"] == "incomplete":
        return "is not stored on every world yet (its verdict follows when the grid has run it)"
    if max(abs(d) for d in line["deltas"]) < 0.05:
        return f"changes {metric} by less than 0.05 points against `{line['versus']}` on every world: {line['verdict']}"
    agree, worlds = line["agree"].split("/")
    return (f"changes {metric} by {line['delta']:+.1f} points on average against `{line['versus']}`, with the mean's sign "
            f"on {agree} of {worlds} worlds: {line['verdict']}")


def formatted(table: pd.DataFrame) -> pd.DataFrame:
    """A `summary` as a chapter shows it: one decimal, the paired differences per world as text,
    the paper's direction in words; indexed by label."""
    shown = table.copy()
    for column in shown.columns:
        if shown[column].dtype.kind == "f":
            shown[column] = shown[column].map(lambda x: "-" if pd.isna(x) else f"{x:.1f}")
    shown["delta"] = table["delta"].map(lambda x: "" if pd.isna(x) else f"{x:+.1f}")
    shown["deltas"] = table["deltas"].map(lambda ds: " / ".join(f"{d:+.1f}" for d in ds))
    shown["paper"] = table["paper"].map(lambda d: DIRECTION[None if pd.isna(d) else int(d)])
    return shown.drop(columns=["row"]).set_index("label")


def probe_h(probe_record: dict, extractor: str, worlds=(0, 1, 2), metric: str = "H") -> dict[int, float]:
    """{world: the ESZSL probe's metric} from a `zsl_lib.probe` study record (its seeds are worlds)."""
    per_seed = probe_record["metrics"]["per_seed"][extractor]
    return {w: per_seed[probe_record["seeds"].index(w)][metric] for w in worlds}


def headline(paper: dict[str, tuple], ours: dict[int, dict], model: str) -> pd.DataFrame:
    """The paper's headline (T1, U, S, H per dataset, the paper's numbers, gamma tuned on the test
    split) above ours on ToyBirds (each world's metrics and their mean, gamma chosen on validation
    classes), in percent, one row each."""
    metrics = ("T1", "U", "S", "H")
    rows = {f"{model}, the paper: {dataset}": dict(zip(metrics, values)) for dataset, values in paper.items()}
    rows |= {f"{model}, ours: ToyBirds world {world}": {k: m[k] for k in metrics} for world, m in ours.items()}
    rows[f"{model}, ours: ToyBirds, mean of the worlds"] = {k: float(np.mean([m[k] for m in ours.values()]))
                                                           for k in metrics}
    return pd.DataFrame(rows).T.round(1)
