"""A prepared benchmark (CUB, SUN, AWA2) with the interface ToyBirds has: images, labels, splits,
the validation protocol, attributes, and the pixel normalisation its model expects.

Images come from the uint8 cache (`zsl_lib.imagecache`), built the first time at the size the
model family asks for (`zsl_lib.families.RealInput`: 224 px for VSPCN, 448 px for Mg-MRN). The validation protocol is xlsa17's
class-level split: `trainclasses1` train, `valclasses1` are pseudo-unseen, and 20 % of each
`trainclasses1` class's trainval images are held out as `val_seen`; the test splits are
never touched. (xlsa17's image-level `train_loc` / `val_loc` overlap `test_seen_loc` on
SUN and AWA2 and are not used; `prepare` warns with the numbers.)
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..imagecache import build_cache
from ..pixels import Normalization
from ..runtime import cache_dir
from ..splits import SplitProtocol, validation_splits


class RealBenchmark(SplitProtocol):
    """One prepared benchmark; arrays as ToyBirds' (N images, C classes, A attributes)."""

    def __init__(self, index: dict, images: np.ndarray, normalize: Normalization,
                 val_seen_fraction: float = 0.2, seed: int = 0):
        self.name = index["dataset"]
        self.images = images                                                # (N, S, S, 3) uint8
        self.labels = np.asarray(index["labels"])                           # (N,)
        self.class_names = index["class_names"]
        self.class_attributes = np.asarray(index["class_attributes"], np.float32)   # (C, A)
        self.attribute_names = index["attribute_names"]
        self.normalize = normalize
        self.splits = {k: np.asarray(v) for k, v in index["splits"].items()}
        self.seen_classes = np.unique(self.labels[self.splits["trainval"]])
        self.unseen_classes = np.unique(self.labels[self.splits["test_unseen"]])
        self.trainclasses1 = np.asarray(index["trainclasses1"])
        self.valclasses1 = np.asarray(index["valclasses1"])
        self.splits |= validation_splits(self.labels, self.splits["trainval"], self.valclasses1,
                                         val_seen_fraction, seed)

    def __repr__(self) -> str:
        return (f"RealBenchmark({self.name}: {len(self.labels)} images of {self.images.shape[1]} px, "
                f"{len(self.seen_classes)} seen / {len(self.unseen_classes)} unseen classes, "
                f"{self.class_attributes.shape[1]} attributes)")


def load_benchmark(index_path: str | Path, image_size: int, normalize: Normalization, seed: int = 0,
                   log=print) -> RealBenchmark:
    """A benchmark from the index `prepare` wrote, with its images cached as `image_size` px squares
    and normalised by `normalize` (a model family's `real_input`)."""
    index_path = Path(index_path)
    if not index_path.is_file():
        raise FileNotFoundError(f"no benchmark index at {index_path}; run "
                                f"`python -m zsl_lib data prepare <DATASET> --root <folder>` first")
    index = json.loads(index_path.read_text())
    root = Path(index["images_root"])
    images = build_cache([root / f for f in index["files"]], image_size,
                         cache_dir() / f"{index['dataset']}_{image_size}px.npy", log=log)
    return RealBenchmark(index, images, normalize, seed=seed)
