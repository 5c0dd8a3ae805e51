"""What a frozen backbone sees: per attribute group, how well a linear read-out of its features
names the value on images of classes it was never fitted on; and what a perfect reader would score.

Two measurements, both on one ToyBirds world:

* **Decodability** of each attribute group (crown colour, bill shape, ...). A ridge
  regression from z-scored frozen features to the group's one-hot value (one output per
  value, the largest wins) is fitted on the *seen* classes' images with each image's own
  drawn values, and scored on `test_unseen` images, so it measures attribute reading that
  transfers to new species, not species memory. The ridge strength is chosen per group on the
  validation protocol (fit on `train`, score `val_unseen`), never on the test split. The
  score is *balanced* accuracy, the mean over values of the recall of each value, so a
  reader that guesses uniformly scores 1 / (number of values) whatever the values' frequencies.
* **The Bayes limit**: a reader that knows every image's drawn values exactly and the
  world's species tables names the species by Bayes' rule (uniform prior),
  argmax_c prod_g P(value_g | c). Its accuracy (and T1) is the ceiling for naming species
  from attributes; the gap between it and a model is what the features or the model lose.

    python -m zsl_lib.perception --mode book --worlds 0 1 2 --out results/perception_book.json
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from . import metrics, provenance
from .features import extract
from .toyworld import birds
from .toyworld.dataset import ToyBirds, ToyBirdsConfig, load_toybirds

RIDGE_GRID = 10.0 ** np.arange(-1, 5)


def balanced_accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean over the values present in `truth` of the fraction predicted correctly."""
    return float(np.mean([np.mean(pred[truth == v] == v) for v in np.unique(truth)]))


class Ridge:
    """Ridge regression with an intercept, one SVD of the features for every strength and target.

    With the centred features X_c = U diag(s) W^T, the coefficients for strength lam and
    centred targets Y_c are W diag(s / (s^2 + lam)) U^T Y_c."""

    def __init__(self, X: np.ndarray):
        self.x_mean = X.mean(0)
        self.U, self.s, self.Wt = np.linalg.svd(X - self.x_mean, full_matrices=False)

    def fit_predict(self, Y: np.ndarray, X_new: np.ndarray, lam: float) -> np.ndarray:
        """Fit targets Y (n, k) of the training rows, predict rows X_new: (n_new, k)."""
        y_mean = Y.mean(0)
        coef = self.Wt.T @ ((self.s / (self.s ** 2 + lam))[:, None] * (self.U.T @ (Y - y_mean)))   # (d, k)
        return (X_new - self.x_mean) @ coef + y_mean


def group_values(world: ToyBirds, indices: np.ndarray) -> np.ndarray:
    """The drawn value of every group for the given images: (n, G) value indices."""
    attrs = np.asarray(world.attributes[np.asarray(indices)])
    return np.stack([attrs[:, off:off + len(g.values)].argmax(1) for g, off in zip(birds.GROUPS, birds.GROUP_OFFSETS)],
                    axis=1)


def standardised(features: np.ndarray, fit: np.ndarray, *rows: np.ndarray) -> list[np.ndarray]:
    """Rows of `features` z-scored with the mean and spread of the rows `fit` (first the fit rows)."""
    X = np.asarray(features, np.float64)
    mean, sd = X[fit].mean(0), X[fit].std(0) + 1e-6
    return [(X[idx] - mean) / sd for idx in (fit, *rows)]


def ridge_strengths(features: np.ndarray, world: ToyBirds, grid=RIDGE_GRID) -> dict[str, float]:
    """The validation protocol's choice of ridge strength for each group: features z-scored on
    `train`, ridge fitted on `train`, balanced accuracy on `val_unseen` (seen classes held out
    as pseudo-unseen). No test image is used."""
    sp = world.splits
    X_train, X_val = standardised(features, sp["train"], sp["val_unseen"])
    v_train, v_val = group_values(world, sp["train"]), group_values(world, sp["val_unseen"])
    ridge, out = Ridge(X_train), {}
    for g, group in enumerate(birds.GROUPS):
        onehot = np.eye(len(group.values))
        scores = [balanced_accuracy(ridge.fit_predict(onehot[v_train[:, g]], X_val, lam).argmax(1), v_val[:, g])
                  for lam in grid]
        out[group.name] = float(grid[int(np.argmax(scores))])
    return out


def decodability(features: np.ndarray, world: ToyBirds, grid=RIDGE_GRID) -> dict[str, float]:
    """Balanced accuracy per attribute group on `test_unseen`, as fractions: ridge fitted on the
    seen classes' `trainval` images (features z-scored on them), at the strength `ridge_strengths`
    chose on the validation protocol."""
    sp = world.splits
    strengths = ridge_strengths(features, world, grid)
    X_trainval, X_test = standardised(features, sp["trainval"], sp["test_unseen"])
    v_trainval, v_test = group_values(world, sp["trainval"]), group_values(world, sp["test_unseen"])
    ridge = Ridge(X_trainval)
    return {group.name: balanced_accuracy(
                ridge.fit_predict(np.eye(len(group.values))[v_trainval[:, g]], X_test, strengths[group.name]).argmax(1),
                v_test[:, g])
            for g, group in enumerate(birds.GROUPS)}


def chance(group: birds.AttributeGroup) -> float:
    """Balanced accuracy, in expectation, of a reader that guesses uniformly: 1 / (number of values)."""
    return 1.0 / len(group.values)


def bayes_reader(world: ToyBirds) -> dict[str, float]:
    """The ceiling: a reader that knows each test image's drawn values and names the species by
    Bayes' rule over the species tables (uniform prior). Returns, as fractions: per-class mean
    accuracy among all classes on the test images, T1 (unseen images among unseen classes), and
    U / S / H with no calibration (the reader has no bias towards seen classes to correct)."""
    test_idx, class_ids, seen = world.protocol("test")
    log_p = np.log(np.maximum(world.class_attributes[class_ids], 1e-12))             # (C, A)
    scores = np.asarray(world.attributes[test_idx], np.float64) @ log_p.T           # (n, C) log-likelihoods
    labels, seen_cols = metrics.columns(class_ids, world.labels[test_idx], seen)
    point = metrics.gzsl(scores, labels, seen_cols)
    return {"accuracy_all_classes": metrics.per_class_accuracy(scores.argmax(1), labels),
            "T1": metrics.czsl_t1(scores, labels, seen_cols), "U": point.U, "S": point.S, "H": point.H}


def study(mode: str, seeds, extractors, device="cpu", log=print) -> dict:
    """Decodability of every group for every extractor on each world seed, the Bayes limit, and
    chance; returns a provenance record (percent, rounded to 0.1)."""
    start, sha = time.time(), provenance.git_sha()
    per_world = []
    for seed in seeds:
        world = load_toybirds(ToyBirdsConfig.for_mode(mode, seed=seed))
        row = {"seed": seed, "bayes": {k: metrics.percent(v, 1) for k, v in bayes_reader(world).items()}, "groups": {}}
        for extractor in extractors:
            scores = decodability(extract(extractor, world.images, device), world)
            row["groups"][extractor] = {k: metrics.percent(v, 1) for k, v in scores.items()}
            log(f"world {seed} {extractor}: mean {np.mean(list(scores.values())) * 100:.1f} % | " +
                " ".join(f"{k.removeprefix('has_')} {100 * v:.0f}" for k, v in scores.items()))
        per_world.append(row)
    config = {"mode": mode, "world": asdict(ToyBirdsConfig.for_mode(mode)), "extractors": list(extractors),
              "read_out": "ridge one-vs-rest on z-scored features, fit on trainval (seen classes), "
                          "strength per group chosen on train -> val_unseen; balanced accuracy on test_unseen",
              "ridge_grid": RIDGE_GRID.tolist()}
    metrics_ = {"chance": {g.name: metrics.percent(chance(g), 1) for g in birds.GROUPS}, "per_world": per_world}
    return provenance.run_record(f"perception_{mode}", config, list(seeds), metrics_, time.time() - start, sha)


def summary(record: dict) -> dict[str, dict[str, float]]:
    """Mean over worlds of each extractor's decodability per group, plus the mean over groups ("mean")."""
    worlds = record["metrics"]["per_world"]
    out = {}
    for extractor in worlds[0]["groups"]:
        per_group = {g: float(np.mean([w["groups"][extractor][g] for w in worlds])) for g in worlds[0]["groups"][extractor]}
        out[extractor] = {**per_group, "mean": float(np.mean(list(per_group.values())))}
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zsl_lib.perception", description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["smoke", "book"], default="book")
    parser.add_argument("--worlds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--extractors", nargs="+", required=True,
                        help='"pixels", a toy backbone name, or "random:<name>"')
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    provenance.save_json(args.out, study(args.mode, args.worlds, args.extractors))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
