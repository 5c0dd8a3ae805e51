"""The GZSL evaluation protocols shared by every dataset (ToyBirds and the real benchmarks).

A dataset has `splits` (index arrays: trainval, test_seen, test_unseen, train, val_seen,
val_unseen), `seen_classes`, `unseen_classes` and xlsa17's class-level validation split
`trainclasses1` / `valclasses1`, and `normalize`, the pixel normalisation of its backbones.
"""
from __future__ import annotations

import numpy as np


class SplitProtocol:
    def protocol(self, stage: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Images, candidate classes and seen classes of one GZSL evaluation.

        "val": `val_seen` + `val_unseen` against `trainclasses1` + `valclasses1` (seen:
        `trainclasses1`), for a model trained on `train`; "test": `test_seen` +
        `test_unseen` against all classes (seen first), for a model trained on `trainval`.
        """
        if stage == "val":
            return (np.r_[self.splits["val_seen"], self.splits["val_unseen"]],
                    np.r_[self.trainclasses1, self.valclasses1], self.trainclasses1)
        if stage == "test":
            return (np.r_[self.splits["test_seen"], self.splits["test_unseen"]],
                    np.r_[self.seen_classes, self.unseen_classes], self.seen_classes)
        raise ValueError(f"unknown protocol stage {stage!r}; choose 'val' or 'test'")


def hold_out(out: dict[str, list], trainval: np.ndarray, pseudo_unseen: bool, val_seen_fraction: float) -> None:
    """One seen class's part of the validation protocol, from its trainval images `trainval` in
    random order: all of them to `val_unseen` for a class of `valclasses1` (`pseudo_unseen`), else
    the first `val_seen_fraction` of them (at least one) to `val_seen` and the rest to `train`."""
    if pseudo_unseen:
        out["val_unseen"].append(trainval)
        return
    n_val = max(1, round(len(trainval) * val_seen_fraction))
    out["val_seen"].append(trainval[:n_val])
    out["train"].append(trainval[n_val:])


def validation_splits(labels: np.ndarray, trainval: np.ndarray, valclasses1: np.ndarray,
                      val_seen_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """`train`, `val_seen`, `val_unseen` of a real benchmark from its trainval images only, per
    class, seeded (ToyBirds draws the same split class by class while it draws its test split)."""
    rng = np.random.default_rng(seed)
    out = {"train": [], "val_seen": [], "val_unseen": []}
    for c in np.unique(labels[trainval]):
        hold_out(out, rng.permutation(trainval[labels[trainval] == c]), c in valclasses1, val_seen_fraction)
    return {k: np.sort(np.concatenate(v)) for k, v in out.items()}
