"""Ablation grids: many protocol runs, each stored on its own, resumable at any moment.

A grid (`Grid`) is a short declaration: a model family and its rows, each row a preset with
a few configuration changes (`Row`). A *cell* is one row on one ToyBirds world with one
training seed. Each cell runs the leakage-free protocol of `zsl_lib.experiment.run` (a
validation run that chooses gamma, then the final run scored once on the test splits) and
writes one JSON file with its provenance:

    results/ablations/<grid>/<row>_world<w>_seed<s>.json

    python -m zsl_lib.ablate vspcn --worlds 0 1 2 --jobs 2     # run what is missing
    python -m zsl_lib.ablate vspcn --status                     # what is stored, and its cost
    python -m zsl_lib.ablate vspcn --dataset CUB --root data/CUB --device cuda   # full scale (zsl_lib.ablate_full)

A cell whose file exists with the same configuration is skipped, so the runner can be
stopped at any moment and started again: it loses only the cells in flight, and those start
afresh, giving the same result (the runs are deterministic for a given number of threads).
`--jobs 2` runs two cells side by side, each on one thread, which on a 2-core CPU does
more work per hour than one cell on two threads.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

from . import experiment, families, provenance
from .provenance import REPO_ROOT
from .runtime import torch_threads

RESULTS = REPO_ROOT / "results" / "ablations"
# Bumped when a change of the library changes what a stored cell would compute for the same
# configuration; cells of another protocol version are run again.
PROTOCOL = 1


@dataclass(frozen=True)
class Row:
    """One configuration of a grid: `preset` (None: the family's default) with `model` overrides
    and `train` overrides of the family's book recipe, run with each of `seeds`.

    `versus` is the row it is compared with, world by world (None: the grid's reference);
    `expect` what the paper reports for H against that row: -1 lower, +1 higher, None no claim
    (a row the paper does not have, or whose sign differs between its datasets). `ours` marks a
    configuration that neither paper has, so that every table labels it."""
    key: str
    label: str
    preset: str | None = None
    model: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    seeds: tuple[int, ...] = (0,)
    versus: str | None = None
    expect: int | None = None
    ours: bool = False


@dataclass(frozen=True)
class Grid:
    """A family's rows, the row every other is compared with (`reference`, the full model), and
    `sections`: the paper's tables and figures, each a tuple of row keys in printing order.
    `build` replaces the family's ToyBirds builder with one that computes the same function
    faster (e.g. VSPCN's frozen trunk run once per image); None: `family.build`."""
    name: str
    family: families.Family
    rows: tuple[Row, ...]
    reference: str
    sections: dict[str, tuple[str, ...]]
    build: Callable | None = None

    def __post_init__(self):
        keys = [row.key for row in self.rows]
        if len(set(keys)) != len(keys):
            raise ValueError(f"grid {self.name}: row keys repeat: {keys}")
        for section, members in self.sections.items():
            unknown = set(members) - set(keys)
            if unknown:
                raise ValueError(f"grid {self.name}, section {section!r}: unknown rows {sorted(unknown)}")
        if self.reference not in keys:
            raise ValueError(f"grid {self.name}: reference row {self.reference!r} is not a row")
        for row in self.rows:
            if row.versus is not None and row.versus not in keys:
                raise ValueError(f"grid {self.name}, row {row.key}: versus {row.versus!r} is not a row")

    def versus(self, key: str) -> str:
        """The row that row `key` is compared with."""
        return self.row(key).versus or self.reference

    def preset(self, row: Row) -> str:
        """The preset row `row` runs: its own, else the family's default."""
        return row.preset or self.family.default_preset

    def row(self, key: str) -> Row:
        for row in self.rows:
            if row.key == key:
                return row
        raise ValueError(f"grid {self.name} has no row {key!r}; rows: {[r.key for r in self.rows]}")


@dataclass(frozen=True)
class Cell:
    grid: str
    row: str
    world: int
    seed: int


@dataclass(frozen=True)
class Settings:
    """What every cell of one invocation shares: the world size, an optional step count (tests
    and quick trials; stored in the configuration, so never mixed with book-size cells), the
    device, the threads of each cell, and whether to keep each final model's parameters."""
    mode: str = "book"
    steps: int | None = None
    device: str = "cpu"
    threads: int = 1
    save_weights: bool = False


def paper_direction(row: dict[str, float], versus: dict[str, float]) -> int | None:
    """The sign of a paper's H difference (row - versus) if every dataset agrees on it, else None."""
    signs = {(a > b) - (a < b) for a, b in ((row[d], versus[d]) for d in versus)}
    return signs.pop() if len(signs) == 1 and 0 not in signs else None


def grid_names() -> list[str]:
    """The model families that declare an ablation grid (`families.Family.grid`)."""
    return [name for name in families.names() if families.get(name).grid is not None]


def load_grid(name: str) -> Grid:
    """The ablation grid of model family `name`."""
    if name not in grid_names():
        raise SystemExit(f"unknown grid {name!r}; grids: {grid_names()}")
    return families.get(name).ablation_grid()


def cells(grid: Grid, worlds, rows=None) -> list[Cell]:
    """Every cell of `grid` on `worlds`, the reference row first, then in row order, worlds innermost
    (so that rows complete one after another)."""
    chosen = [grid.row(key) for key in rows] if rows else list(grid.rows)
    chosen.sort(key=lambda row: row.key != grid.reference)
    return [Cell(grid.name, row.key, world, seed) for row in chosen for seed in row.seeds for world in worlds]


def cell_path(out: Path, cell: Cell) -> Path:
    return out / cell.grid / f"{cell.row}_world{cell.world}_seed{cell.seed}.json"


def train_config(grid: Grid, row: Row, seed: int, settings: Settings):
    from .train import TrainConfig
    recipe = grid.family.recipe | row.train | ({"steps": settings.steps} if settings.steps else {})
    return TrainConfig(**recipe, seed=seed, device=settings.device, log_every=10_000)


def model_config(grid: Grid, row: Row):
    return grid.family.preset(grid.preset(row), **row.model)


def cell_config(grid: Grid, cell: Cell, settings: Settings) -> dict:
    """Everything that fixes a cell's result, as stored (JSON types) and compared on resuming."""
    from .toyworld.dataset import ToyBirdsConfig
    row = grid.row(cell.row)
    return json.loads(json.dumps({
        "protocol": PROTOCOL, "family": grid.family.name, "preset": grid.preset(row),
        "model": asdict(model_config(grid, row)), "train": asdict(train_config(grid, row, cell.seed, settings)),
        "world": asdict(ToyBirdsConfig.for_mode(settings.mode, seed=cell.world)),
        "calibration": experiment.calibration_record(grid.family)}))


def stored(path: Path, config: dict) -> dict | None:
    """The stored record of a cell if it was made with `config`, else None."""
    if not path.exists():
        return None
    record = provenance.load_json(path)
    return record if record["config"] == config else None


def run_cell(cell: Cell, settings: Settings, out: Path, sha: str | None) -> dict:
    """Run one cell and write its record atomically; returns the record."""
    with torch_threads(settings.threads):
        return compute_cell(cell, settings, out, sha)


def compute_cell(cell: Cell, settings: Settings, out: Path, sha: str | None) -> dict:
    """`run_cell` on the threads torch has now."""
    from .toyworld.dataset import ToyBirdsConfig, load_toybirds
    grid = load_grid(cell.grid)
    row = grid.row(cell.row)
    config = cell_config(grid, cell, settings)
    start, cpu_start = time.time(), time.process_time()
    world = load_toybirds(ToyBirdsConfig(**config["world"]))
    cfg, train_cfg = model_config(grid, row), train_config(grid, row, cell.seed, settings)

    builder = grid.build or grid.family.build

    def build(seen):
        return builder(world, cfg, seen, cell.seed)

    protocol_run = experiment.run(world, build, train_cfg, log=lambda *_: None,
                                  own_calibration=grid.family.own_calibration)
    record = provenance.run_record(f"{cell.grid}/{cell.row}", config, [cell.seed],
                                   experiment.stored_metrics(protocol_run), time.time() - start, sha)
    record.update(label=row.label, ours=row.ours, world=cell.world, build=builder.__qualname__,
                  cpu_time_s=round(time.process_time() - cpu_start, 1),
                  validation_steps=experiment.validation_schedule(world, train_cfg).steps)
    path = cell_path(out, cell)
    if settings.save_weights:
        record["state_sha256"] = experiment.save_state(protocol_run.model, path.with_suffix(".pt"))
    provenance.save_json(path, record)
    return record


def stored_records(grid: Grid, todo: list[Cell], settings: Settings, out: Path) -> dict[Cell, dict]:
    """The cells of `todo` stored under `out` with today's configuration, and their records."""
    records = {cell: stored(cell_path(out, cell), cell_config(grid, cell, settings)) for cell in todo}
    return {cell: record for cell, record in records.items() if record is not None}


def pending(grid: Grid, todo: list[Cell], settings: Settings, out: Path) -> list[Cell]:
    done = stored_records(grid, todo, settings, out)
    return [cell for cell in todo if cell not in done]


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def status(grid: Grid, todo: list[Cell], settings: Settings, out: Path, jobs: int) -> str:
    """Which cells are stored and what they cost. Wall time counts whatever else the machine was
    doing; the CPU time of a one-thread cell does not, so the grid's time on an otherwise idle
    machine with `jobs` one-thread cells side by side is estimated from it where it was recorded."""
    done = list(stored_records(grid, todo, settings, out).values())
    lines = [f"grid {grid.name}: {len(done)} of {len(todo)} cells stored in {out / grid.name}"]
    if done:
        wall = sum(r["wall_time_s"] for r in done) / len(done)
        lines.append(f"measured: {wall / 60:.1f} min of wall time a cell (with any other work on the machine, and any pause)")
        timed = [r["cpu_time_s"] for r in done if "cpu_time_s" in r]
        if timed:
            cpu = sum(timed) / len(timed)
            lines.append(f"{cpu / 60:.1f} min of CPU time a cell ({len(timed)} cells timed): the whole grid, "
                         f"{jobs} one-thread cells side by side on an idle machine, about {hours(cpu * len(todo) / jobs)}")
    return "\n".join(lines)


def end_with_parent(runner: int) -> None:
    """Ask Linux to end this worker when the runner (process id `runner`) ends, however it ends:
    a killed runner must not leave workers computing cells that nobody collects. A worker whose
    runner ended before this request exits at once. Elsewhere a no-op."""
    try:
        import ctypes
        import signal
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)     # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != runner:
        os._exit(1)


def run(grid: Grid, todo: list[Cell], settings: Settings, out: Path, jobs: int = 1, log=print) -> None:
    """Run every cell of `todo` that is not stored yet, `jobs` at a time, with a progress bar."""
    from tqdm import tqdm
    missing = pending(grid, todo, settings, out)
    sha = provenance.git_sha()
    if sha is None or sha.endswith("-dirty"):
        log(f"warning: the library's checkout is {'not under git' if sha is None else 'dirty'}; "
            "results of record are made from a clean commit")
    log(f"grid {grid.name}: {len(todo) - len(missing)} of {len(todo)} cells stored, {len(missing)} to run, "
        f"{jobs} at a time on {settings.threads} thread(s) each")
    bar = tqdm(total=len(todo), initial=len(todo) - len(missing), desc=grid.name, unit="cell", smoothing=0)

    def report(cell: Cell, record: dict) -> None:
        m = record["metrics"]
        bar.update(1)
        bar.write(f"{cell.row} world {cell.world} seed {cell.seed}: H {m['H']:.1f}, T1 {m['T1']:.1f}, "
                  f"AUSUC {m['AUSUC']:.1f} ({record['wall_time_s']:.0f} s)")

    if jobs == 1:
        for cell in missing:
            report(cell, run_cell(cell, settings, out, sha))
    else:
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=end_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            futures = {pool.submit(run_cell, cell, settings, out, sha): cell for cell in missing}
            for future in as_completed(futures):
                report(futures[future], future.result())
    bar.close()
    log(status(grid, todo, settings, out, jobs))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zsl_lib.ablate", description=__doc__.splitlines()[0])
    parser.add_argument("grid", choices=grid_names())
    parser.add_argument("--worlds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", nargs="+", help="only these rows (keys as in the grid's declaration)")
    parser.add_argument("--jobs", type=int, default=1, help="cells run side by side")
    parser.add_argument("--threads", type=int, help="threads of each cell (default: the CPU's cores / jobs)")
    parser.add_argument("--mode", choices=["smoke", "book"], default="book", help="the ToyBirds world size")
    parser.add_argument("--steps", type=int, help="final-run steps instead of the recipe's (quick trials)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--save-weights", action="store_true", help="keep each final model's parameters (.pt)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--status", action="store_true", help="print what is stored and its cost; run nothing")
    full = parser.add_argument_group("a real benchmark instead of ToyBirds (zsl_lib.ablate_full)")
    full.add_argument("--dataset", choices=["CUB", "SUN", "AWA2"])
    full.add_argument("--root", help="the folder given to `python -m zsl_lib data prepare DATASET --root`")
    full.add_argument("--seeds", type=int, nargs="+", help="training seeds of every row (default: the row's)")
    full.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="change every cell's configuration, as `python -m zsl_lib train --set`")
    args = parser.parse_args(argv)
    grid = load_grid(args.grid)
    if args.dataset:
        from . import ablate_full
        from .cli import exit_on_user_error
        if not args.root:
            parser.error("--dataset needs --root, the folder prepared by `python -m zsl_lib data prepare`")

        def full_scale() -> None:
            rows = [grid.row(key) for key in args.rows] if args.rows else list(grid.rows)
            if args.status:
                print(ablate_full.status(grid, rows, args.seeds, args.dataset, args.root, args.device, args.out,
                                         args.set))
            else:
                ablate_full.run(grid, rows, args.seeds, args.dataset, args.root, args.device, args.out, args.set)

        exit_on_user_error(full_scale)
        return
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    settings = Settings(args.mode, args.steps, args.device, threads, args.save_weights)
    todo = cells(grid, args.worlds, args.rows)
    if args.status:
        print(status(grid, todo, settings, args.out, args.jobs))
        return
    run(grid, todo, settings, args.out, args.jobs)


if __name__ == "__main__":
    main()
