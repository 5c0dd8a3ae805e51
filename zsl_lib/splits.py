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
