"""ToyBirds as a dataset: rendering, xlsa17-style splits, the validation protocol, a disk cache.

Splits, as index arrays into one image array (the xlsa17 `*_loc` convention, 0-based):

* `trainval`: about 80 % of every seen class's images; `test_seen`: the other 20 %;
  `test_unseen`: every image of the unseen classes.
* The validation protocol never touches the test splits. Of the seen classes,
  `n_val_unseen` are held out as pseudo-unseen (`valclasses1`), the rest are
  `trainclasses1`; `train` is trainval images of `trainclasses1` minus a held-out 20 %
  per class (`val_seen`), and `val_unseen` is every trainval image of `valclasses1`.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..pixels import TOY
from ..runtime import cache_dir
from ..splits import SplitProtocol, hold_out
from . import birds

MODES_IMAGES_PER_CLASS = {"smoke": 20, "book": 60}
SPLITS = ("trainval", "test_seen", "test_unseen", "train", "val_seen", "val_unseen")


@dataclass(frozen=True)
class ToyBirdsConfig:
    seed: int = 0
    n_species: int = 100
    n_unseen: int = 25
    images_per_class: int = 60
    image_size: int = 64
    test_seen_fraction: float = 0.2
    n_val_unseen: int = 15
    val_seen_fraction: float = 0.2

    @classmethod
    def for_mode(cls, mode: str, seed: int = 0, **overrides) -> "ToyBirdsConfig":
        """The world used by a chapter in `smoke` (20 images a class) or `book` (60) mode."""
        if mode not in MODES_IMAGES_PER_CLASS:
            raise ValueError(f"ToyBirds has sizes for MODE in {sorted(MODES_IMAGES_PER_CLASS)}, got {mode!r} "
                             "(MODE='full' runs on the real benchmarks)")
        return cls(seed=seed, images_per_class=MODES_IMAGES_PER_CLASS[mode], **overrides)

    def __post_init__(self):
        if not 32 <= self.image_size <= 224:
            raise ValueError(f"image_size={self.image_size}: ToyBirds renders 32 to 224 px")
        if not 0 < self.n_unseen < self.n_species or not 0 < self.n_val_unseen < self.n_species - self.n_unseen:
            raise ValueError(f"need 0 < n_unseen ({self.n_unseen}) < n_species ({self.n_species}) and "
                             f"0 < n_val_unseen ({self.n_val_unseen}) < seen classes")
        n_test = round(self.images_per_class * self.test_seen_fraction)
        if n_test < 1 or n_test >= self.images_per_class:
            raise ValueError(f"images_per_class={self.images_per_class} leaves no test-seen or trainval images")


def _renderer_fingerprint() -> str:
    """Hash of the drawing code: a change to how birds look invalidates every cached world."""
    h = hashlib.sha1()
    for module in ("draw.py", "birds.py"):
        h.update((Path(__file__).parent / module).read_bytes())
    return h.hexdigest()[:12]


class ToyBirds(SplitProtocol):
    """One ToyBirds world: images, labels, per-image attributes and part maps, and splits.

    Arrays (N images, C classes, A attributes):
      images (N, H, W, 3) uint8 · labels (N,) · attributes (N, A) uint8, the values the
      image was drawn with · part_maps (N, H, W) uint8, 1 + index into PART_NAMES, 0 for
      background · class_attributes (C, A) float32, P(value | class).
    """

    attribute_names = birds.ATTRIBUTE_NAMES
    normalize = TOY
    attribute_phrases = birds.ATTRIBUTE_PHRASES
    part_names = birds.PART_NAMES

    def __init__(self, config: ToyBirdsConfig, arrays: dict[str, np.ndarray]):
        self.config = config
        self.species, unseen = birds.make_species(config.seed, config.n_species, config.n_unseen)
        self.images, self.labels = arrays["images"], arrays["labels"]
        self.attributes, self.part_maps = arrays["attributes"], arrays["part_maps"]
        self.unseen_classes = unseen
        self.seen_classes = np.setdiff1d(np.arange(config.n_species), unseen)
        self.splits = {name: arrays[name] for name in SPLITS}
        self.trainclasses1, self.valclasses1 = arrays["trainclasses1"], arrays["valclasses1"]

    @property
    def class_names(self) -> list[str]:
        return [s.name for s in self.species]

    @cached_property
    def class_attributes(self) -> np.ndarray:
        return np.stack([s.attribute_vector() for s in self.species])  # (C, A)

    def patch_coverage(self, indices, grid: int, parts=None) -> np.ndarray:
        """Fraction of each patch of a `grid` x `grid` layout covered by the bird, or by the
        named `parts` only: (n, grid * grid), row-major like a ViT's patch tokens."""
        size = self.config.image_size
        if size % grid:
            raise ValueError(f"a {grid} x {grid} patch grid does not tile {size} px images")
        maps = np.asarray(self.part_maps[np.asarray(indices)])
        if parts is None:
            inside = maps > 0
        else:
            unknown = sorted(set(parts) - set(self.part_names))
            if unknown:
                raise ValueError(f"unknown parts {unknown}; ToyBirds parts are {self.part_names}")
            inside = np.isin(maps, [self.part_names.index(p) + 1 for p in parts])
        cell = size // grid
        return inside.reshape(len(maps), grid, cell, grid, cell).mean((2, 4)).reshape(len(maps), -1)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.splits.items())
        return (f"ToyBirds(seed={self.config.seed}, {self.config.n_species} species "
                f"({len(self.seen_classes)} seen / {len(self.unseen_classes)} unseen), "
                f"A={len(self.attribute_names)}, {self.config.image_size} px, {sizes})")


def render_world(config: ToyBirdsConfig) -> dict[str, np.ndarray]:
    """Render every image and build the splits; image i depends only on (seed, i)."""
    species, unseen = birds.make_species(config.seed, config.n_species, config.n_unseen)
    n, size = config.n_species * config.images_per_class, config.image_size
    images = np.empty((n, size, size, 3), np.uint8)
    part_maps = np.empty((n, size, size), np.uint8)
    attributes = np.empty((n, len(birds.ATTRIBUTE_NAMES)), np.uint8)
    labels = np.repeat(np.arange(config.n_species), config.images_per_class)
    for i, c in enumerate(labels):
        rng = np.random.default_rng([config.seed, 2, i])
        values = birds.sample_attributes(rng, species[c])
        images[i], part_maps[i] = birds.render_bird(rng, values, size)
        attributes[i] = birds.values_to_binary(values)
    return {"images": images, "part_maps": part_maps, "attributes": attributes, "labels": labels,
            **make_splits(config, labels, unseen)}


def make_splits(config: ToyBirdsConfig, labels: np.ndarray, unseen: np.ndarray) -> dict[str, np.ndarray]:
    """xlsa17-style index splits and the leakage-free validation protocol."""
    rng = np.random.default_rng([config.seed, 3])
    seen = np.setdiff1d(np.arange(config.n_species), unseen)
    valclasses1 = np.sort(rng.choice(seen, config.n_val_unseen, replace=False))
    trainclasses1 = np.setdiff1d(seen, valclasses1)
    out = {k: [] for k in SPLITS}
    for c in range(config.n_species):
        idx = np.flatnonzero(labels == c)
        if c in unseen:
            out["test_unseen"].append(idx)
            continue
        idx = rng.permutation(idx)
        n_test = round(len(idx) * config.test_seen_fraction)
        test, trainval = idx[:n_test], idx[n_test:]
        out["test_seen"].append(test)
        out["trainval"].append(trainval)
        hold_out(out, trainval, c in valclasses1, config.val_seen_fraction)
    splits = {k: np.sort(np.concatenate(v)) for k, v in out.items()}
    return {**splits, "trainclasses1": trainclasses1, "valclasses1": valclasses1}


def cache_key(config: ToyBirdsConfig) -> str:
    blob = json.dumps({**asdict(config), "renderer": _renderer_fingerprint()}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def load_toybirds(config: ToyBirdsConfig | None = None, cache: bool = True, **kwargs) -> ToyBirds:
    """The ToyBirds world of `config` (or `ToyBirdsConfig(**kwargs)`), from the cache if it is there.

    The cache is one folder per configuration and renderer version under
    `<cache>/toybirds/`, holding one `.npy` per array (images and part maps are
    memory-mapped on load). It is written to a temporary folder and renamed, so an
    interrupted build never leaves a half-written world behind.
    """
    config = config or ToyBirdsConfig(**kwargs)
    if not cache:
        return ToyBirds(config, render_world(config))
    folder = cache_dir() / "toybirds" / cache_key(config)
    if not (folder / "meta.json").exists():
        arrays = render_world(config)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".building-"))
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", array)
        (tmp / "meta.json").write_text(json.dumps({"config": asdict(config), "renderer": _renderer_fingerprint()}))
        try:
            os.replace(tmp, folder)
        except OSError:  # another process finished the same world first
            shutil.rmtree(tmp, ignore_errors=True)
    arrays = {p.stem: np.load(p, mmap_mode="r" if p.stem in ("images", "part_maps") else None)
              for p in folder.glob("*.npy")}
    return ToyBirds(config, arrays)
