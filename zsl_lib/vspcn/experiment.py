"""A VSPCN run on ToyBirds under the leakage-free protocol, with provenance.

1. Validation run: a model whose seen classes are `trainclasses1`, trained on `train`
   for as many epochs as the final run will make (so fewer steps: `train` is smaller
   than `trainval`); gamma is chosen on `val_seen` + `val_unseen`, once for each
   calibration of `zsl_lib.evaluate.CALIBRATIONS`.
2. Final run: a fresh model with all seen classes, trained on `trainval` for the same
   schedule, evaluated once on the test splits at those gammas. Its trained parameters
   are stored beside the result (`--out` with the suffix `.pt`) for the chapters' figures.

The headline numbers use "zscore_stacking", the calibration of the foundation's ESZSL
baseline, so the two are compared under one rule; the paper's Eq. (19) is reported
next to them with the prefix `eq19_`.

    python -m zsl_lib.vspcn.experiment --mode book --seed 0 --steps 1200 --out results/vspcn_book.json
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from .. import checkpoint, evaluate, provenance
from ..backbones import load_or_pretrain, sha256_file
from ..runtime import atomic_open
from ..semantics import attribute_word_vectors
from ..toyworld.dataset import ToyBirds, ToyBirdsConfig, load_toybirds
from ..train import TrainConfig, train
from .config import TABLE2_ROWS, VSPCNConfig, preset, table2_row
from .model import VSPCN

HEADLINE, PAPER = "zscore_stacking", "eq19"
SHARED = ("T1", "U_uncal", "S_uncal", "H_uncal", "_curve")   # the same under every calibration


def build(world: ToyBirds, cfg: VSPCNConfig, seen_classes, seed: int = 0) -> VSPCN:
    """VSPCN on the toy-pretrained ViT with ToyBirds' GloVe attribute vectors and
    per-class L2-normalised attribute vectors (as xlsa17's `att`)."""
    att = world.class_attributes / np.linalg.norm(world.class_attributes, axis=1, keepdims=True)
    torch.manual_seed(seed)
    return VSPCN(load_or_pretrain("toy_vit_p8_64"), torch.tensor(attribute_word_vectors(world.attribute_phrases)),
                 torch.tensor(att), torch.tensor(seen_classes), cfg)


def validation_schedule(world: ToyBirds, train_cfg: TrainConfig) -> TrainConfig:
    """The validation run's schedule: the final run's epochs on the smaller `train` split.

    With equal steps the validation model would see each image about 1.6 times as often
    as the final model, fit its seen classes harder, and so prefer a larger gamma than
    the final model needs."""
    ratio = len(world.splits["train"]) / len(world.splits["trainval"])
    return replace(train_cfg, steps=max(1, round(train_cfg.steps * ratio)))


def run(world: ToyBirds, cfg: VSPCNConfig, train_cfg: TrainConfig, log=print) -> dict:
    """Both runs of the protocol; returns the test report (fractions) and the choices made:
    the headline calibration's keys plain, the paper's Eq. (19) with the prefix `eq19_`."""
    sp = world.splits
    start = time.time()
    val_model = build(world, cfg, world.trainclasses1, train_cfg.seed)
    train(val_model, world.images[sp["train"]], world.labels[sp["train"]], validation_schedule(world, train_cfg),
          log=log)
    chosen = {name: evaluate.choose_gamma(val_model, world, name, train_cfg.device) for name in (HEADLINE, PAPER)}
    for name, result in chosen.items():
        log(f"validation ({name}): H {100 * result.H:.1f} at gamma {result.gamma:.4f} ({time.time() - start:.0f} s)")
    model = build(world, cfg, world.seen_classes, train_cfg.seed)
    history = train(model, world.images[sp["trainval"]], world.labels[sp["trainval"]], train_cfg, log=log)
    report = {}
    for name, prefix in ((HEADLINE, ""), (PAPER, "eq19_")):
        test = evaluate.evaluate(model, world, chosen[name].gamma, name, train_cfg.device)
        test["H_val"] = chosen[name].H
        report |= {prefix + k: v for k, v in test.items() if not (prefix and k in SHARED)}
    report.update(chance_T1=1.0 / len(world.unseen_classes),
                  loss_first=float(np.mean([h["total"] for h in history[:10]])),
                  loss_last=float(np.mean([h["total"] for h in history[-10:]])),
                  _model=model, _history=history)
    return report


def quick_run(world: ToyBirds, cfg: VSPCNConfig, train_cfg: TrainConfig, log=print):
    """A model trained on `trainval` and scored on the test splits without any gamma.

    T1 and AUSUC need no calibration, so short runs of the chapters compare on them
    honestly without a validation run. Returns (model, loss history, {T1, AUSUC} in %)."""
    model = build(world, cfg, world.seen_classes, train_cfg.seed)
    tv = world.splits["trainval"]
    history = train(model, world.images[tv], world.labels[tv], train_cfg, log=log)
    report = evaluate.evaluate(model, world, 0.0, HEADLINE, train_cfg.device)
    return model, history, {k: 100 * report[k] for k in ("T1", "AUSUC")}


def short_schedule(mode: str, seed: int = 0, device: str = "auto") -> tuple[ToyBirds, TrainConfig]:
    """The chapters' short comparisons: 60 steps of 32 images on the smoke world in "smoke"
    mode, 400 steps of 64 on the book-size world otherwise."""
    world = load_toybirds(ToyBirdsConfig.for_mode("smoke" if mode == "smoke" else "book", seed=seed))
    steps, batch = (60, 32) if mode == "smoke" else (400, 64)
    return world, TrainConfig(steps=steps, batch_size=batch, seed=seed, device=str(device), log_every=steps)


def compare_rows(world: ToyBirds, rows, train_cfg: TrainConfig, log=print) -> dict[int, dict]:
    """`quick_run` of several Table 2 rows on one schedule, printing each row's T1 and AUSUC:
    {row: {"model", "history", "T1", "AUSUC", "seconds"}}."""
    results = {}
    for row in rows:
        start = time.time()
        model, history, scores = quick_run(world, table2_row(row), train_cfg, log=lambda *_: None)
        results[row] = dict(model=model, history=history, seconds=time.time() - start, **scores)
        log(f"row {row} ({TABLE2_ROWS[row][0]}): T1 {scores['T1']:.1f} %, AUSUC {scores['AUSUC']:.2f} "
            f"({train_cfg.steps} steps, {results[row]['seconds']:.0f} s)")
    log(f"chance T1: {100 / len(world.unseen_classes):.1f} %")
    return results


def save_state(model: VSPCN, path: Path) -> str:
    """Write the trained (non-backbone) parameters atomically; returns their sha256."""
    with atomic_open(path, "wb") as f:
        torch.save(checkpoint.trainable_state(model), f)
    return sha256_file(path)


def load_trained(record: dict, state_path: Path) -> tuple[VSPCN, ToyBirds]:
    """The final model of a stored run and its world: rebuilt from the recorded world and
    preset, with the trained parameters of `state_path` (checked against the record's sha256)."""
    if sha256_file(state_path) != record["state_sha256"]:
        raise RuntimeError(f"{state_path} does not match the sha256 in its result file; re-run the command "
                           "in the result file's docstring to regenerate both")
    config = record["config"]
    world = load_toybirds(ToyBirdsConfig(**config["world"]))
    cfg = preset(config["preset"])
    model = build(world, cfg, world.seen_classes, config["train"]["seed"])
    checkpoint.load_trainable_state(model, torch.load(state_path, weights_only=True), str(state_path))
    return model.eval(), world


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zsl_lib.vspcn.experiment", description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["smoke", "book"], default="book")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="paper_default")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    sha, start = provenance.git_sha(), time.time()
    world = load_toybirds(ToyBirdsConfig.for_mode(args.mode, seed=args.seed))
    cfg = preset(args.preset)
    train_cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    report = run(world, cfg, train_cfg)
    state_sha = save_state(report["_model"], args.out.with_suffix(".pt"))
    metrics = {k: (round(v, 5) if k.endswith("gamma") or k.startswith("loss") else round(100 * v, 2))
               for k, v in report.items() if not k.startswith("_")}
    metrics["loss_curve"] = [round(float(np.mean([h["total"] for h in report["_history"][i:i + 25]])), 4)
                             for i in range(0, len(report["_history"]), 25)]
    config = {"mode": args.mode, "preset": args.preset, "model": asdict(cfg), "train": asdict(train_cfg),
              "validation_steps": validation_schedule(world, train_cfg).steps,
              "world": asdict(ToyBirdsConfig.for_mode(args.mode, seed=args.seed)),
              "calibration": {"headline": HEADLINE, "eq19_": PAPER}}
    record = provenance.run_record(f"vspcn_{args.mode}", config, [args.seed], metrics, time.time() - start, sha)
    record["state_sha256"] = state_sha
    provenance.save_json(args.out, record)
    print(metrics)


if __name__ == "__main__":
    main()
