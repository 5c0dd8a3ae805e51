"""The model families the library can train, in one registry.

A family is everything the rest of the library needs to know about one model: how to make its
configuration (presets, per-dataset values, options), how to build it on ToyBirds, how it is
trained at book size, how it is calibrated, what its backbone expects on a real benchmark,
and where its ablation grid is declared. The command line (`zsl_lib.cli`, `zsl_lib.runconfig`),
the leakage-free protocol (`zsl_lib.experiment`), the ablation runner (`zsl_lib.ablate`) and the
real-data loader read families only from here, so a model is added in its own folder:

    from zsl_lib import families
    families.register(families.Family(name="linear", model_class=LinearHead, presets={"default": LinearConfig()},
                                      default_preset="default", toy_backbone="toy_vit_hybrid_64",
                                      recipe=dict(steps=300, batch_size=64, lr=1e-3), ...))

after which `model: linear` works in a run configuration. The model class is called as
`model_class(backbone, word_vectors (A, d_w), class_attributes (C, A), seen_classes, cfg)` and
must provide `seen_classes` (a buffer of class ids), `training_losses(x, labels)` (a dict with
"total"; labels are columns of the seen classes) and `forward(x)`, the scores of every class
(B, C). It may provide `own_update` to make its own optimiser steps (`zsl_lib.train`).

The two families of the book, VSPCN and Mg-MRN, register themselves in
`zsl_lib.vspcn.experiment` and `zsl_lib.mgmrn.experiment`; `get` imports those on first use.
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .pixels import Normalization

BUILT_IN = ("zsl_lib.vspcn.experiment", "zsl_lib.mgmrn.experiment")
_REGISTRY: dict[str, "Family"] = {}


@dataclass(frozen=True)
class RealInput:
    """What the family's backbone is fed on a real benchmark: the side of the cached square
    images, their pixel normalisation, and the training augmentation used unless the run
    configuration names one (a key of `zsl_lib.imagecache.AUGMENTATIONS`)."""
    image_size: int
    normalization: Normalization
    augment: str


@dataclass(frozen=True)
class Family:
    """One model family (see the module docstring).

    `presets` maps names to configuration dataclasses; `make_preset(name, dataset=None,
    **overrides)`, when given, is the family's own way to make one with a benchmark's values
    (CUB, SUN, AWA2) and overrides (without it a preset takes the overrides only);
    `recipe` holds the `TrainConfig` fields of a book-size ToyBirds run and `quick_steps` the
    steps and batch size of the chapters' short comparisons per mode ("smoke", "book");
    `own_calibration` is the family's own calibration, reported beside the headline one;
    `grid` is "module:attribute" of its ablation grid (`zsl_lib.ablate.Grid`)."""
    name: str
    model_class: type
    presets: dict[str, Any]
    default_preset: str
    toy_backbone: str
    recipe: dict
    quick_steps: dict[str, dict]
    own_calibration: str
    real_input: RealInput
    make_preset: Callable[..., Any] | None = None
    grid: str | None = None

    # --- configuration ------------------------------------------------------------------
    @property
    def config_class(self) -> type:
        return type(self.presets[self.default_preset])

    def preset(self, name: str, dataset: str | None = None, **overrides):
        """Preset `name`, with a benchmark's values (`dataset`: CUB, SUN, AWA2) and then `overrides`."""
        if self.make_preset is not None:
            return self.make_preset(name, dataset, **overrides)
        if name not in self.presets:
            raise ValueError(f"unknown {self.name} preset {name!r}; choose one of {sorted(self.presets)}")
        return replace(self.presets[name], **overrides)

    def option_sections(self) -> dict[str, type]:
        """Configuration fields that are dataclasses themselves (VSPCN's `losses`): options give
        them as mappings of their own fields."""
        base = self.presets[self.default_preset]
        return {f.name: type(getattr(base, f.name)) for f in dataclasses.fields(base)
                if dataclasses.is_dataclass(getattr(base, f.name))}

    def configure(self, preset: str, dataset: str | None = None, options: dict | None = None):
        """`preset` with plain options (e.g. {"adapter": False, "losses": {"mu_ed": 0.0}}): a mapping
        for a nested section changes only the fields it names."""
        base = self.preset(preset, dataset)
        sections = self.option_sections()
        resolved = {k: replace(getattr(base, k), **v) if k in sections and isinstance(v, dict) else v
                    for k, v in (options or {}).items()}
        return replace(base, **resolved)

    # --- models on ToyBirds -------------------------------------------------------------
    def build(self, world, cfg, seen_classes, seed: int = 0) -> torch.nn.Module:
        """The model on its toy-pretrained backbone with ToyBirds' GloVe attribute vectors."""
        from .backbones import load_or_pretrain
        from .semantics import attribute_word_vectors
        return assemble(self.model_class, lambda: load_or_pretrain(self.toy_backbone),
                        attribute_word_vectors(world.attribute_phrases), world.class_attributes,
                        seen_classes, cfg, seed)

    def short_schedule(self, mode: str, seed: int = 0, device: str = "auto"):
        """The chapters' short comparisons: the smoke world in "smoke" mode, the book-size world
        otherwise, trained with the recipe at `quick_steps[mode]`. Returns (world, TrainConfig)."""
        from .toyworld.dataset import ToyBirdsConfig, load_toybirds
        from .train import TrainConfig
        size = "smoke" if mode == "smoke" else "book"
        world = load_toybirds(ToyBirdsConfig.for_mode(size, seed=seed))
        quick = self.quick_steps[size]
        return world, TrainConfig(**(self.recipe | quick), seed=seed, device=str(device), log_every=quick["steps"])

    def load_trained(self, record: dict, state_path: Path):
        """The final model of a stored protocol run and its world: rebuilt from the recorded world
        and preset, with the trained parameters of `state_path` (checked against the record's sha256)."""
        from .experiment import load_state
        from .toyworld.dataset import ToyBirdsConfig, load_toybirds
        config = record["config"]
        world = load_toybirds(ToyBirdsConfig(**config["world"]))
        model = self.build(world, self.preset(config["preset"]), world.seen_classes, config["train"]["seed"])
        return load_state(model, record, state_path), world

    def ablation_grid(self):
        """The family's ablation grid (`zsl_lib.ablate.Grid`), imported when asked for."""
        if self.grid is None:
            raise ValueError(f"model family {self.name!r} declares no ablation grid")
        module, attribute = self.grid.split(":")
        return getattr(importlib.import_module(module), attribute)


def assemble(model_class, backbone: Callable[[], torch.nn.Module], word_vectors: np.ndarray,
             class_attributes: np.ndarray, seen_classes, cfg, seed: int) -> torch.nn.Module:
    """`model_class(backbone, word vectors, class vectors, seen classes, cfg)` with per-class
    L2-normalised attribute vectors (as xlsa17's `att`) and the new weights drawn after
    `torch.manual_seed(seed)`; `backbone()` is called after seeding, so a backbone made inside
    it draws from the same stream on every run."""
    att = class_attributes / np.linalg.norm(class_attributes, axis=1, keepdims=True)
    torch.manual_seed(seed)
    return model_class(backbone(), torch.tensor(word_vectors), torch.tensor(att), torch.tensor(seen_classes), cfg)


def register(family: Family) -> Family:
    """Make `family` known by its name (registering a name twice is an error)."""
    if family.name in _REGISTRY and _REGISTRY[family.name] is not family:
        raise ValueError(f"a model family named {family.name!r} is already registered")
    _REGISTRY[family.name] = family
    return family


def unregister(name: str) -> None:
    """Forget a family registered with `register` (tests that add one remove it afterwards)."""
    _REGISTRY.pop(name, None)


def _load_built_in() -> None:
    for module in BUILT_IN:
        importlib.import_module(module)


def names() -> list[str]:
    """The registered families' names, sorted."""
    _load_built_in()
    return sorted(_REGISTRY)


def get(name: str) -> Family:
    """The family registered as `name`; an unknown name is one error listing the known ones."""
    _load_built_in()
    if name not in _REGISTRY:
        raise ValueError(f"model = {name!r} is not a registered model family; choose one of {sorted(_REGISTRY)}")
    return _REGISTRY[name]
