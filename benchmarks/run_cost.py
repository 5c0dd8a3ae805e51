"""The wall time of one book-size run, phase by phase, for each model with stored book runs.

A run is the leakage-free protocol of `zsl_lib.experiment.run`: a validation run that chooses
gamma, then the final run scored once on the test splits. The models are the family and preset
pairs whose book runs `results/` stores: VSPCN `paper_default` (`vspcn_book*.json`) and Mg-MRN
`paper`, `paper_free_readout` and `official_code` (`mgmrn_book*.json`).

Each run is built as `python -m zsl_lib.<family>.experiment --mode book` builds it, the family's
`build` and `BOOK_RECIPE` on the book-size world whose seed is also the training seed, and
trains on the CPU with `--threads` torch threads (one by default, as each cell of the ablation
grids runs). It really trains: a run takes from about 8 minutes (VSPCN) to about 22
(`official_code`) on one core. Recorded per run: the wall time of each phase (making the
world, the validation run, the final run, each run with its scoring) and in all, the steps of
each run, torch's threads and the world, and the run's H as a check against the stored book
run of the same world.

The ablation grids (`zsl_lib.ablate`) budget with this figure. After each run the script
prints the grid's cell count times it beside what the grid's stored cells of the same preset
took. VSPCN's grid memoises the frozen trunk (`vspcn.experiment.build_memoised`), so its cells
cost less than the book run measured here (by about `benchmarks/memo_trunk.py`'s ratios).

    python benchmarks/run_cost.py                       # all four runs, about an hour on one core
    python benchmarks/run_cost.py --runs mgmrn:paper_free_readout --threads 2

A trial on the smoke world with a few steps (`--mode smoke --steps 4`, options left out of
`--help`) checks the script in a minute; it prints its entries and stores nothing.

Writes benchmarks/results/run_cost.json after each run, one entry per run, merged with the
stored ones (`common.save_entries`).
"""
import argparse
import statistics
import time

import torch

from common import save_entries
from zsl_lib import ablate, experiment, families, metrics, provenance
from zsl_lib.runtime import torch_threads
from zsl_lib.toyworld.dataset import ToyBirdsConfig, load_toybirds
from zsl_lib.train import TrainConfig

RUNS = ("vspcn:paper_default", "mgmrn:paper", "mgmrn:paper_free_readout", "mgmrn:official_code")
GRID_WORLDS = (0, 1, 2)                      # the worlds `python -m zsl_lib.ablate` runs by default


def measure(run: str, world_seed: int, mode: str = "book", steps: int | None = None) -> dict:
    """One protocol run of `run` ("family:preset") on the world of `world_seed`, timed phase by
    phase; `steps` replaces the recipe's final-run steps (trials only)."""
    family_name, preset_name = run.split(":")
    family = families.get(family_name)
    start = time.time()
    world = load_toybirds(ToyBirdsConfig.for_mode(mode, seed=world_seed))
    world_seconds = time.time() - start
    cfg = family.preset(preset_name)
    train_cfg = TrainConfig(**(family.recipe | ({"steps": steps} if steps else {})), seed=world_seed, device="cpu",
                            log_every=10_000)
    protocol_run = experiment.run(world, lambda seen: family.build(world, cfg, seen, world_seed), train_cfg,
                                  log=lambda *_: None, own_calibration=family.own_calibration)
    seconds = {"world": world_seconds, **protocol_run.phase_seconds, "all": time.time() - start}
    return {"family": family_name, "preset": preset_name, "world": {"mode": mode, "seed": world_seed},
            "threads": torch.get_num_threads(),
            "steps": {"validation": experiment.validation_schedule(world, train_cfg).steps, "final": train_cfg.steps},
            "seconds": {phase: round(s, 1) for phase, s in seconds.items()},
            "H": metrics.percent(protocol_run.metrics["H"])}


def grid_budget(entry: dict) -> str:
    """The family's ablation grid priced at this run's cost, beside its stored cells of the same preset."""
    grid = ablate.load_grid(entry["family"])
    todo = ablate.cells(grid, GRID_WORLDS)
    cost = entry["seconds"]["all"]
    line = (f"grid {grid.name}: {len(todo)} cells x {cost / 60:.1f} min = {ablate.hours(len(todo) * cost)} "
            f"of {entry['threads']}-thread runs one after another")
    stored = ablate.stored_records(grid, todo, ablate.Settings(), ablate.RESULTS).values()
    same = [record for record in stored if record["config"]["preset"] == entry["preset"]]
    if not same:
        return line + f"; no stored cell of preset {entry['preset']} to compare with"
    line += (f"; its {len(same)} stored cells of preset {entry['preset']} took "
             f"{statistics.mean(r['wall_time_s'] for r in same) / 60:.1f} min of wall time each")
    cpu = [r["cpu_time_s"] for r in same if "cpu_time_s" in r]
    return line + (f", {statistics.mean(cpu) / 60:.1f} min of CPU time" if cpu else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=RUNS)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--world", type=int, default=0, help="the book-size world's seed, also the training seed")
    parser.add_argument("--mode", choices=["book", "smoke"], default="book", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    trial = args.mode != "book" or args.steps is not None
    sha = provenance.git_sha()
    with torch_threads(args.threads):
        for run in args.runs:
            entry = measure(run, args.world, args.mode, args.steps)
            print(run, entry)
            if trial:
                continue
            print(grid_budget(entry))
            print("wrote", save_entries("run_cost", vars(args), {run: entry}, {run: entry["seconds"]["all"]}, sha,
                                        seeds=(args.world,)))
    if trial:
        print("a trial (--mode smoke or --steps): nothing stored")


if __name__ == "__main__":
    main()
