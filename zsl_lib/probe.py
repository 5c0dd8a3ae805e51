"""The linear-probe baseline of chapter 1: ESZSL on frozen features, tuned without the test split.

Protocol (the same for every feature extractor, so the comparison is fair):

1. Validation run: fit on `train` (seen classes `trainclasses1`), score `val_seen` and
   `val_unseen` against `trainclasses1` + `valclasses1`, and pick ESZSL's (alpha, beta)
   and the calibration gamma that maximise the validation H.
2. Final run: refit on all of `trainval` with that (alpha, beta); report on the test
   splits T1, U / S / H without calibration (gamma = 0) and with the validation gamma,
   and AUSUC. The best H over a test sweep is reported too, labelled as test-tuned.

Features are z-scored with statistics of the training images; scores are z-scored per
row (see `metrics.standardize_rows`).

    python -m zsl_lib.probe --mode book --seeds 0 1 2 --out results/probe_book.json
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from . import features, metrics, provenance
from .eszsl import ESZSL
from .toyworld.dataset import ToyBirds, ToyBirdsConfig, load_toybirds

GRID = 10.0 ** np.arange(-3, 4)
# The chapter's names -> `features.extract` specifications.
EXTRACTORS = {"pretrained_vit": "toy_vit_hybrid_64", "random_vit": "random:toy_vit_hybrid_64",
              "pretrained_cnn": "toy_resnet_nopool_64", "pixels": "pixels"}


def _zscore(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mu, sd = train.mean(0), train.std(0) + 1e-6
    return [(x - mu) / sd for x in (train, *others)]


def _scores(model: ESZSL, X: np.ndarray, world: ToyBirds, class_ids: np.ndarray) -> np.ndarray:
    return metrics.standardize_rows(model.scores(X, world.class_attributes[class_ids].T))


def eszsl_probe(features: np.ndarray, world: ToyBirds, form: str = "subtract_seen", grid=GRID) -> dict:
    """Run the two-stage protocol on one world; returns metrics (fractions) and the choices made."""
    sp, labels = world.splits, world.labels
    # 1. validation run: choose (alpha, beta) and gamma on pseudo-unseen seen classes
    val_idx, val_classes, _ = world.protocol("val")
    X_train, X_val = _zscore(features[sp["train"]], features[val_idx])
    y_train, _ = metrics.columns(world.trainclasses1, labels[sp["train"]], world.trainclasses1)
    y_val, seen_val = metrics.columns(val_classes, labels[val_idx], world.trainclasses1)
    best = None
    for alpha in grid:
        for beta in grid:
            model = ESZSL(alpha, beta).fit(X_train, y_train, world.class_attributes[world.trainclasses1].T)
            curve = metrics.seen_unseen_curve(_scores(model, X_val, world, val_classes), y_val, seen_val, form)
            result = curve.best()
            if best is None or result.H > best[0].H:
                best = (result, alpha, beta)
    val_result, alpha, beta = best
    # 2. final run on trainval, evaluated once on the test splits
    test_idx, class_ids, _ = world.protocol("test")
    X_tv, X_test = _zscore(features[sp["trainval"]], features[test_idx])
    y_tv, _ = metrics.columns(world.seen_classes, labels[sp["trainval"]], world.seen_classes)
    model = ESZSL(alpha, beta).fit(X_tv, y_tv, world.class_attributes[world.seen_classes].T)
    scores = _scores(model, X_test, world, class_ids)
    y_test, seen_cols = metrics.columns(class_ids, labels[test_idx], world.seen_classes)
    return {**metrics.gzsl_report(scores, y_test, seen_cols, val_result.gamma, form),
            "H_val": val_result.H, "alpha": float(alpha), "beta": float(beta),
            "chance_T1": 1.0 / len(world.unseen_classes),
            "_scores": scores, "_labels": y_test, "_seen_cols": seen_cols}


def extract(extractor: str, world: ToyBirds, device="cpu") -> np.ndarray:
    """Features of every image of `world` for one of EXTRACTORS."""
    if extractor not in EXTRACTORS:
        raise ValueError(f"unknown extractor {extractor!r}; choose one of {list(EXTRACTORS)}")
    return features.extract(EXTRACTORS[extractor], world.images, device)


def public(result: dict) -> dict:
    """The JSON-able part of a probe result, in percent (gamma and hyper-parameters as they are)."""
    return {k: (metrics.percent(v) if k not in ("gamma", "alpha", "beta") else round(v, 6))
            for k, v in metrics.scalars(result).items()}


def run_study(mode: str, seeds, extractors=EXTRACTORS, device="cpu", log=print) -> dict:
    """The chapter-1 comparison over world seeds; returns a provenance record with per-seed metrics."""
    start, sha = time.time(), provenance.git_sha()
    per_seed = {e: [] for e in extractors}
    for seed in seeds:
        world = load_toybirds(ToyBirdsConfig.for_mode(mode, seed=seed))
        for e in extractors:
            per_seed[e].append(public(eszsl_probe(extract(e, world, device), world)))
            log(f"seed {seed} {e}: " + ", ".join(f"{k} {per_seed[e][-1][k]}" for k in ("T1", "U", "S", "H")))
    config = {"mode": mode, "world": asdict(ToyBirdsConfig.for_mode(mode)), "extractors": {e: EXTRACTORS[e] for e in extractors},
              "probe": "ESZSL on z-scored features, (alpha, beta) and gamma chosen on the validation protocol",
              "grid": GRID.tolist(), "calibration": "subtract_seen on row-standardised scores"}
    return provenance.run_record(f"probe_{mode}", config, list(seeds),
                                 {"per_seed": per_seed}, time.time() - start, sha)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zsl_lib.probe", description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["smoke", "book"], default="book")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    provenance.save_json(args.out, run_study(args.mode, args.seeds))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
