"""The ablation grids at full scale: the rows of a `zsl_lib.ablate` grid on CUB, SUN or AWA2.

    python -m zsl_lib data prepare CUB --root data/CUB                     # once
    python -m zsl_lib.ablate vspcn --dataset CUB --root data/CUB --device cuda [--rows ...] [--seeds 0 1]
    python -m zsl_lib.ablate vspcn --dataset CUB --root data/CUB --status  # stored cells, GPU-hour estimate

A cell is one row with one training seed. It starts from the shipped configuration of its
family, dataset and preset (`configs/<family>_<dataset>_<preset>.yaml` where one ships, else
`configs/<family>_<dataset>.yaml` with the row's preset), applies the row's model options, and
runs two trainings:

1. the validation run: train on xlsa17's `train` split, evaluate the validation classes after
   every epoch, keep the epoch with the best H and its gamma;
2. the final run: train on `trainval` for that many epochs, then score the test splits once at
   that gamma.

So both the epoch and gamma are chosen on validation data. Each run keeps its folder under
`runs/ablations/<grid>_<dataset>/<row>_seed<s>/` and, when the runner is started again, a
finished run is reused and an interrupted one resumes from its last checkpoint. The cell's
record goes to `results/ablations/<grid>_<dataset>/<row>_seed<s>.json`; a cell stored with the
same configurations is skipped.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from . import cli, gpu_cost, provenance, runconfig
from .ablate import PROTOCOL, Grid, Row, stored
from .provenance import REPO_ROOT

CONFIGS = REPO_ROOT / "configs"
RUNS = REPO_ROOT / "runs" / "ablations"
FLOPS = REPO_ROOT / "benchmarks" / "results" / "step_flops.json"
SIZES = REPO_ROOT / "results" / "xlsa17_stats.json"
DATASETS = ("CUB", "SUN", "AWA2")


def config_path(family: str, dataset: str, preset: str) -> Path:
    """The shipped configuration a row of `preset` starts from."""
    own = CONFIGS / f"{family}_{dataset.lower()}_{preset}.yaml"
    return own if own.is_file() else CONFIGS / f"{family}_{dataset.lower()}.yaml"


def run_config(grid: Grid, row: Row, dataset: str, root: str, seed: int, device: str,
               overrides: list[str] = ()) -> runconfig.RunConfig:
    """The validation run of a cell: the shipped configuration with the row's preset, model
    options and training changes, the data root, the seed, the device, then `overrides`
    (`key=value` as for `python -m zsl_lib train --set`)."""
    preset = grid.preset(row)
    sets = [f"preset={preset}", f"data.root={root}", f"train.seed={seed}", f"train.device={device}",
            "protocol=validation", *overrides]
    cfg = runconfig.load(config_path(grid.family.name, dataset, preset), sets)
    options = {key: dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
               for key, value in row.model.items()}                          # e.g. LossWeights -> a mapping
    return dataclasses.replace(cfg, model_options={**cfg.model_options, **options},
                               train=dataclasses.replace(cfg.train, **row.train))


def cell_name(grid: Grid, dataset: str) -> str:
    return f"{grid.name}_{dataset}"


def cell_path(out: Path, grid: Grid, dataset: str, row: Row, seed: int) -> Path:
    return out / cell_name(grid, dataset) / f"{row.key}_seed{seed}.json"


def finished(run_dir: Path, cfg: runconfig.RunConfig) -> dict | None:
    """The metrics of a run stored in `run_dir` with configuration `cfg` (before its epochs are
    resolved to steps), or None if it has not finished."""
    result = run_dir / "result.json"
    if not result.is_file():
        return None
    record = provenance.load_json(result)
    written = json.loads((run_dir / "config.json").read_text())
    if cfg.epochs is not None:                          # the run resolved train.steps from `epochs`
        written["train"]["steps"] = cfg.train.steps
    return record["metrics"] if written == json.loads(json.dumps(cfg.to_dict())) else None


def train_or_reuse(cfg: runconfig.RunConfig, run_dir: Path, log=print) -> dict:
    """Run `cfg` in `run_dir`: reuse a finished run, resume an interrupted one, else start."""
    done = finished(run_dir, cfg)
    if done is not None:
        log(f"{run_dir}: finished before, reused")
        return done
    return cli.train_run(cfg, run_dir, resume=(run_dir / "last.pt").is_file(), log=log)


def cells(grid: Grid, rows: list[Row], seeds: list[int] | None) -> list[tuple[Row, int]]:
    """(row, seed) of every cell: each row with `seeds`, or with the row's own seeds."""
    return [(row, seed) for row in rows for seed in (seeds or row.seeds)]


def cell_config(validation: runconfig.RunConfig) -> dict:
    """What fixes a cell's result, as stored (JSON types) and compared on resuming."""
    return json.loads(json.dumps({"protocol": PROTOCOL, "validation": validation.to_dict()}))


def run_cell(grid: Grid, row: Row, dataset: str, root: str, seed: int, device: str, out: Path,
             runs: Path = RUNS, overrides: list[str] = (), log=print) -> dict:
    """Run (or finish) one cell and write its record atomically; returns the record."""
    validation = run_config(grid, row, dataset, root, seed, device, overrides)
    path = cell_path(out, grid, dataset, row, seed)
    record = stored(path, cell_config(validation))
    if record is not None:
        log(f"{path}: stored, skipped")
        return record
    sha, start = provenance.git_sha(), time.time()
    folder = runs / cell_name(grid, dataset) / f"{row.key}_seed{seed}"
    best = train_or_reuse(validation, folder / "validation", log)
    final = validation.final(best)
    metrics = train_or_reuse(final, folder / "final", log)
    record = provenance.run_record(f"{cell_name(grid, dataset)}/{row.key}", cell_config(validation), [seed],
                                   {**metrics, "validation": best}, time.time() - start, sha)
    record.update(label=row.label, ours=row.ours, dataset=dataset, final=final.to_dict())
    provenance.save_json(path, record)
    return provenance.load_json(path)                     # as stored: JSON types


def run(grid: Grid, rows: list[Row], seeds: list[int] | None, dataset: str, root: str, device: str,
        out: Path, overrides: list[str] = (), log=print) -> None:
    """Every cell of `rows` (each with `seeds`, or the row's own seeds) in turn, one GPU at a time."""
    for row, seed in cells(grid, rows, seeds):
        record = run_cell(grid, row, dataset, root, seed, device, out, overrides=overrides, log=log)
        m = record["metrics"]
        log(f"{row.key} seed {seed}: H {m['H']:.1f} (U {m['U']:.1f}, S {m['S']:.1f}) at the validation "
            f"gamma {m['gamma']} after {m['validation']['epoch']} epochs")


def cell_flop(cfg: runconfig.RunConfig, counted: dict, sizes: dict) -> float:
    """The work of one cell when the best validation epoch is the last one (an upper bound):
    the validation run's steps and its per-epoch scoring of the validation images, then the
    final run's steps and one scoring of the test images."""
    batch = cfg.train.batch_size
    validation_steps = cfg.resolved_steps(sizes["train_images"]).train.steps
    epochs = validation_steps // (cfg.steps_per_epoch or sizes["train_images"] // batch)
    final_steps = epochs * (cfg.steps_per_epoch or sizes["trainval"] // batch)
    train = (validation_steps + final_steps) * gpu_cost.step_flop(counted, batch)
    scoring = gpu_cost.score_flop(counted, epochs * (sizes["val_seen_images"] + sizes["val_unseen_images"])
                                  + sizes["test_seen"] + sizes["test_unseen"])
    return train + scoring


def gpu_hours(grid: Grid, todo: list[tuple[Row, int]], dataset: str, root: str = "data",
              overrides: list[str] = ()) -> float:
    """An estimate of the cells' cost on `dataset` in hours of the A100 of `gpu_cost`, from the
    stored FLOP counts of benchmarks/step_flops.py (every row counted at its family's full-model
    step at CUB's sizes: rows without a module cost less, the released Mg-MRN code's three-step
    update costs more) and the dataset's split sizes (results/xlsa17_stats.json)."""
    counted = provenance.load_json(FLOPS)["metrics"][grid.family.name]
    sizes = provenance.load_json(SIZES)["metrics"][dataset]
    flop = sum(cell_flop(run_config(grid, row, dataset, root, seed, "cuda", overrides), counted, sizes)
               for row, seed in todo)
    return gpu_cost.gpu_seconds(flop) / 3600


def status(grid: Grid, rows: list[Row], seeds: list[int] | None, dataset: str, root: str, device: str,
           out: Path, overrides: list[str] = ()) -> str:
    """Which cells are stored, and the estimated GPU cost of the whole grid."""
    todo = cells(grid, rows, seeds)
    done = [(row, seed) for row, seed in todo
            if stored(cell_path(out, grid, dataset, row, seed),
                      cell_config(run_config(grid, row, dataset, root, seed, device, overrides)))]
    return (f"grid {grid.name} on {dataset}: {len(done)} of {len(todo)} cells stored in "
            f"{out / cell_name(grid, dataset)}\nestimated cost of all {len(todo)} cells: "
            f"{gpu_hours(grid, todo, dataset, root, overrides):.1f} h of an A100 at "
            f"{gpu_cost.UTILISATION:.0%} of its bf16 peak (an estimate from counted FLOPs, not a measurement)")
