"""A model trained and scored on ToyBirds under the leakage-free protocol, with provenance.

The protocol is the same for every model family (VSPCN, Mg-MRN):

1. Validation run: a model whose seen classes are `trainclasses1`, trained on `train`
   for as many epochs as the final run will make (so fewer steps: `train` is smaller
   than `trainval`); gamma is chosen on `val_seen` + `val_unseen`, once for each
   calibration of `zsl_lib.evaluate.CALIBRATIONS`.
2. Final run: a fresh model with all seen classes, trained on `trainval` for the same
   schedule, evaluated once on the test splits at those gammas. Its trained parameters
   are stored beside the result (`--out` with the suffix `.pt`) for the chapters' figures.

The headline numbers use "zscore_stacking", the calibration of the foundation's ESZSL
baseline, so all are compared under one rule; the family's own calibration (VSPCN's Eq. 19,
"eq19"; Mg-MRN's calibrated stacking, "stacking") is reported next to them with its name as
prefix (`eq19_H`, `stacking_H`, ...).
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from . import checkpoint, evaluate, metrics, provenance
from .backbones import sha256_file
from .runtime import atomic_open
from .toyworld.dataset import ToyBirds, ToyBirdsConfig, load_toybirds
from .train import TrainConfig, train

if TYPE_CHECKING:
    from .families import Family

HEADLINE, PAPER = "zscore_stacking", "eq19"      # PAPER: VSPCN's Eq. (19)
SHARED = ("T1", "U_uncal", "S_uncal", "H_uncal")   # the same under every calibration


def validation_schedule(world: ToyBirds, train_cfg: TrainConfig) -> TrainConfig:
    """The validation run's schedule: the final run's epochs on the smaller `train` split.

    With equal steps the validation model would see each image about 1.6 times as often
    as the final model, fit its seen classes harder, and so prefer a larger gamma than
    the final model needs. Step milestones shrink in the same ratio."""
    ratio = len(world.splits["train"]) / len(world.splits["trainval"])
    return replace(train_cfg, steps=max(1, round(train_cfg.steps * ratio)),
                   milestones=tuple(round(m * ratio) for m in train_cfg.milestones))


def validation_run(world: ToyBirds, build: Callable[[np.ndarray], torch.nn.Module], train_cfg: TrainConfig,
                   log=print) -> tuple[torch.nn.Module, list[dict]]:
    """The protocol's first run: a model of the `trainclasses1` seen classes trained on `train` for the
    final run's epochs (`validation_schedule`), and its learning curve, the validation H (headline
    calibration, best gamma) at each epoch end: [{"epoch", "step" (steps done), "H_val"}, ...].

    Its last model chooses gamma; the epoch count is fixed in advance. (The command line's
    `protocol: validation` also chooses the epoch: it keeps the best epoch by validation H, and the
    final run it prepares, `RunConfig.final`, trains for that many epochs.)"""
    val_cfg = validation_schedule(world, train_cfg)
    batches_per_epoch = len(world.splits["train"]) // val_cfg.batch_size
    curve = []

    def validation_point(model: torch.nn.Module, epoch: int) -> dict:
        H = evaluate.choose_gamma(model, world, HEADLINE, train_cfg.device, precision=train_cfg.precision).H
        curve.append({"epoch": epoch, "step": epoch * batches_per_epoch, "H_val": H})
        return {"H": H}

    model = build(world.trainclasses1)
    train(model, world.images[world.splits["train"]], world.labels[world.splits["train"]], val_cfg, log=log,
          on_epoch_end=validation_point, normalize=world.normalize)
    return model, curve


@dataclass
class ProtocolRun:
    """What `run` returns. `metrics`: the test report (fractions) and the choices made, the
    headline calibration's keys plain, those of the family's own calibration with its name as
    prefix; `model` and `history`: the final model and its loss terms per step;
    `validation_curve`: the validation run's learning curve (`validation_run`), which shows
    whether the budget has reached the level where H stops rising; `curves`: the test split's
    seen-unseen curve under each calibration; `phase_seconds`: the wall time of each run with
    its scoring ("validation", "final")."""
    metrics: dict[str, float]
    model: torch.nn.Module
    history: list[dict]
    validation_curve: list[dict]
    curves: dict[str, metrics.SeenUnseenCurve]
    phase_seconds: dict[str, float]


def run(world: ToyBirds, build: Callable[[np.ndarray], torch.nn.Module], train_cfg: TrainConfig,
        log=print, own_calibration: str = PAPER) -> ProtocolRun:
    """Both runs of the protocol, `build(seen_classes)` making each fresh model."""
    sp = world.splits
    start = time.time()
    val_model, curve = validation_run(world, build, train_cfg, log)
    val_scores = evaluate.split_scores(val_model, world, "val", train_cfg.device, train_cfg.precision)
    chosen = {name: evaluate.choose_gamma(val_model, world, name, scored=val_scores)
              for name in (HEADLINE, own_calibration)}
    for name, result in chosen.items():
        log(f"validation ({name}): H {100 * result.H:.1f} at gamma {result.gamma:.4f} ({time.time() - start:.0f} s)")
    validation_seconds = time.time() - start
    model = build(world.seen_classes)
    history = train(model, world.images[sp["trainval"]], world.labels[sp["trainval"]], train_cfg, log=log,
                    normalize=world.normalize)
    test_scores = evaluate.split_scores(model, world, "test", train_cfg.device, train_cfg.precision)
    report, curves = {}, {}
    for name, prefix in ((HEADLINE, ""), (own_calibration, own_calibration + "_")):
        test = evaluate.evaluate(model, world, chosen[name].gamma, name, scored=test_scores)
        curves[name] = test["_curve"]
        test = metrics.scalars(test) | {"H_val": chosen[name].H}
        report |= {prefix + k: v for k, v in test.items() if not (prefix and k in SHARED)}
    report.update(chance_T1=1.0 / len(world.unseen_classes),
                  loss_first=float(np.mean([h["total"] for h in history[:10]])),
                  loss_last=float(np.mean([h["total"] for h in history[-10:]])))
    return ProtocolRun(report, model, history, curve, curves,
                       {"validation": validation_seconds, "final": time.time() - start - validation_seconds})


def quick_run(world: ToyBirds, build: Callable[[np.ndarray], torch.nn.Module], train_cfg: TrainConfig, log=print):
    """A model trained on `trainval` and scored on the test splits without any gamma.

    T1 and AUSUC need no calibration, so short runs of the chapters compare on them
    honestly without a validation run. Returns (model, loss history, {T1, AUSUC} in %)."""
    model = build(world.seen_classes)
    tv = world.splits["trainval"]
    history = train(model, world.images[tv], world.labels[tv], train_cfg, log=log, normalize=world.normalize)
    report = evaluate.evaluate(model, world, 0.0, HEADLINE, train_cfg.device, precision=train_cfg.precision)
    return model, history, {k: 100 * report[k] for k in ("T1", "AUSUC")}


def save_state(model: torch.nn.Module, path: Path) -> str:
    """Write the trained parameters atomically; returns their sha256."""
    with atomic_open(path, "wb") as f:
        torch.save(checkpoint.trainable_state(model), f)
    return sha256_file(path)


def load_state(model: torch.nn.Module, record: dict, state_path: Path) -> torch.nn.Module:
    """Load a stored run's trained parameters (checked against the record's sha256) into `model`."""
    if sha256_file(state_path) != record["state_sha256"]:
        raise RuntimeError(f"{state_path} does not match the sha256 in its result file; re-run the command "
                           "in the result file's docstring to regenerate both")
    checkpoint.load_trainable_state(model, torch.load(state_path, weights_only=True), str(state_path))
    return model.eval()


def main(family: Family, argv=None) -> None:
    """The command line of `python -m zsl_lib.<family>.experiment`: one protocol run, written with
    provenance to `--out` (JSON) and its trained parameters beside it (`.pt`). The command line
    overrides the recipe's steps, batch size and learning rate."""
    recipe = family.recipe
    parser = argparse.ArgumentParser(prog=f"python -m zsl_lib.{family.name}.experiment",
                                     description=f"A {family.name} run on ToyBirds under the leakage-free protocol.")
    parser.add_argument("--mode", choices=["smoke", "book"], default="book")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default=family.default_preset)
    parser.add_argument("--steps", type=int, default=recipe["steps"])
    parser.add_argument("--batch-size", type=int, default=recipe["batch_size"])
    parser.add_argument("--lr", type=float, default=recipe["lr"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--curve-only", action="store_true",
                        help="only the validation run and its learning curve (no final run, no .pt): "
                             "to see where H levels off beyond the book's budget")
    args = parser.parse_args(argv)
    sha, start = provenance.git_sha(), time.time()
    world_cfg = ToyBirdsConfig.for_mode(args.mode, seed=args.seed)
    world = load_toybirds(world_cfg)
    cfg = family.preset(args.preset)
    train_cfg = TrainConfig(**(recipe | dict(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                                                     seed=args.seed)))
    config = {"mode": args.mode, "preset": args.preset, "model": asdict(cfg), "train": asdict(train_cfg),
              "validation_steps": validation_schedule(world, train_cfg).steps, "world": asdict(world_cfg),
              "calibration": calibration_record(family)}

    def build_seen(seen):
        return family.build(world, cfg, seen, args.seed)

    if args.curve_only:
        _, curve = validation_run(world, build_seen, train_cfg)
        stored = {"validation_curve": percent_curve(curve)}
        record = provenance.run_record(f"{family.name}_{args.mode}_curve", config, [args.seed], stored,
                                       time.time() - start, sha)
        provenance.save_json(args.out, record)
        print(stored)
        return
    protocol_run = run(world, build_seen, train_cfg, own_calibration=family.own_calibration)
    state_sha = save_state(protocol_run.model, args.out.with_suffix(".pt"))
    stored = stored_metrics(protocol_run)
    record = provenance.run_record(f"{family.name}_{args.mode}", config, [args.seed], stored, time.time() - start, sha)
    record["state_sha256"] = state_sha
    provenance.save_json(args.out, record)
    print(stored)


def calibration_record(family: Family) -> dict:
    """How a stored run names its calibrations: the headline one plain, the family's with its prefix."""
    return {"headline": HEADLINE, family.own_calibration + "_": family.own_calibration}


def stored_metrics(run: ProtocolRun) -> dict:
    """The metrics of a protocol run as stored and as the chapters print them: percent (rounded
    to 0.01) except gammas and losses, the final run's loss in means of 25 steps, the
    validation curve in percent, and the test split's seen-unseen curve under each
    calibration (`curve_points`)."""
    stored = {k: (round(v, 5) if k.endswith("gamma") or k.startswith("loss") else metrics.percent(v))
              for k, v in run.metrics.items()}
    stored["loss_curve"] = [round(float(np.mean([h["total"] for h in run.history[i:i + 25]])), 4)
                            for i in range(0, len(run.history), 25)]
    stored["validation_curve"] = percent_curve(run.validation_curve)
    stored["seen_unseen"] = {name: curve_points(curve) for name, curve in run.curves.items()}
    return stored


def curve_points(curve, points: int = 101) -> dict:
    """A seen-unseen curve as stored: about `points` of its points, evenly spaced along it, each
    with a gamma inside the interval where it holds and U, S in percent. Enough to draw U, S and
    H against gamma and S against U; AUSUC is stored exactly beside it."""
    k = np.unique(np.linspace(0, len(curve.S) - 1, points).round().astype(int))
    lower, upper = curve.lower[k], curve.upper[k]
    gamma = np.where(np.isinf(lower), upper, np.where(np.isinf(upper), lower, (lower + upper) / 2))
    return {"gamma": [round(float(g), 5) for g in gamma], "U": [metrics.percent(u) for u in curve.U[k]],
            "S": [metrics.percent(v) for v in curve.S[k]]}


def percent_curve(curve: list[dict]) -> list[dict]:
    """A validation curve as stored: H in percent, rounded."""
    return [dict(point, H_val=metrics.percent(point["H_val"])) for point in curve]


WORLD_COLUMNS = ("T1", "S_uncal", "H", "AUSUC")


def compare_over_worlds(probe: dict, extractor: str, runs: dict[int, dict], model: str) -> tuple[str, np.ndarray]:
    """A model's stored runs against the ESZSL probe on the same worlds: a printable table and
    the numbers, (worlds, columns, 2) with [..., 0] the probe and [..., 1] the model.

    `probe` is a `zsl_lib.probe` study record, `extractor` the probe's features ("pretrained_vit",
    "pretrained_cnn"), `runs` {world seed: a run record of this module's command line}. The
    columns (`WORLD_COLUMNS`) are T1, S without calibration, H at the validation gamma and
    AUSUC; the last lines give the mean and the sample standard deviation over worlds and the
    model's margin over the probe in units of the probe's standard deviation."""
    if len(runs) < 2:
        raise ValueError(f"compare_over_worlds needs runs on two worlds or more, got {sorted(runs)}: "
                         "a spread over one world does not exist")
    values = np.array([[[probe["metrics"]["per_seed"][extractor][probe["seeds"].index(seed)][k], run["metrics"][k]]
                        for k in WORLD_COLUMNS] for seed, run in runs.items()])       # (W, K, 2)
    head = f"{'world':>6s} | " + " | ".join(f"{k:^13s}" for k in WORLD_COLUMNS) + f" | {model} run"
    lines = [head, f"{'':6s} | " + " | ".join(f"{'ESZSL':>6s} {model[:6]:>6s}" for _ in WORLD_COLUMNS) + " |"]
    for (seed, run), row in zip(runs.items(), values):
        lines.append(f"{seed:6d} | " + " | ".join(f"{p:6.1f} {m:6.1f}" for p, m in row)
                     + f" | git {run['git_sha'][:7]}, {run['config']['train']['steps']} steps, {run['wall_time_s']:.0f} s")
    mean, std = metrics.mean_sd(values)
    lines.append(f"{'mean':>6s} | " + " | ".join(f"{p:6.1f} {m:6.1f}" for p, m in mean) + " |")
    lines.append(f"{'std':>6s} | " + " | ".join(f"{p:6.1f} {m:6.1f}" for p, m in std) + " |")
    lines.append(f"{'margin':>6s} | " + " | ".join(f"{(m - p) / s:+10.1f} sd" if s > 0 else f"{'-':>13s}"
                                                   for (p, m), s in zip(mean, std[:, 0])) + " |  (in probe sd)")
    lines.append(f"probe: git {probe['git_sha'][:7]}")
    return "\n".join(lines), values


def book_run_path(stem: str, world: int, results: Path = provenance.REPO_ROOT / "results") -> Path:
    """Where a book-size run on ToyBirds world `world` is stored: `<stem>.json` for world 0, the
    book's default world, and `<stem>_seed<world>.json` for the others (a world is named by the
    seed that draws it). The README's table of stored results gives the command behind each."""
    return results / (f"{stem}.json" if world == 0 else f"{stem}_seed{world}.json")


def stored_book_runs(stem: str, worlds=(0, 1, 2), results: Path = provenance.REPO_ROOT / "results") -> dict[int, dict]:
    """{world: record} of a book-size run stored for each of `worlds` (`book_run_path`); a record
    made on another world than its file name says is an error."""
    runs = {w: provenance.load_json(book_run_path(stem, w, results)) for w in worlds}
    for w, record in runs.items():
        if record["config"]["world"]["seed"] != w:
            raise ValueError(f"{book_run_path(stem, w, results)} holds a run on world "
                             f"{record['config']['world']['seed']}, not {w}: re-run it with --seed {w}")
    return runs


def stored_run_beside_probe(run: str = "vspcn_book", extractor: str = "pretrained_vit",
                            label: str = "VSPCN paper_default, book run") -> tuple[str, dict[str, dict]]:
    """A stored run (`results/<run>.json`) beside chapter 1's ESZSL probe on the same world and
    the same frozen backbone (`results/probe_book.json`, features `extractor`).

    Returns the printed comparison (with the run's provenance) and the two metric dicts
    {"book": run's, "probe": probe's}, in percent, gamma chosen on validation classes."""
    record = provenance.load_json(book_run_path(run, 0))
    study = provenance.load_json(provenance.REPO_ROOT / "results" / "probe_book.json")
    world = record["config"]["world"]["seed"]
    metrics_of = {"book": record["metrics"], "probe": study["metrics"]["per_seed"][extractor][study["seeds"].index(world)]}
    lines = [f"book run: {provenance.describe(record)}"]
    for name, m in ((label, metrics_of["book"]), (f"ESZSL probe, world {world}, same backbone", metrics_of["probe"])):
        lines.append(f"{name:36s} T1 {m['T1']:5.1f}  H {m['H']:5.1f}  AUSUC {m['AUSUC']:5.1f}   (%, gamma chosen on validation)")
    return "\n".join(lines), metrics_of

