"""A training run's whole configuration: one YAML file, `--set key=value` overrides, checked.

    model: vspcn                  # a registered model family (zsl_lib.families): vspcn | mgmrn
    preset: paper_default         # a preset of that family (vspcn: paper_default | code_exact;
                                  #   mgmrn: paper | paper_free_readout | official_code)
    model_options: {adapter: false, losses: {mu_ed: 0.0}}   # fields of the preset's config to change
    protocol: validation          # "validation": train on `train`, evaluate on the validation
                                  #   classes each epoch, keep the best epoch by H;
                                  # "final": train on `trainval`, evaluate on the test splits once
    calibration: zscore_stacking  # a name of zsl_lib.evaluate.CALIBRATIONS
    gamma: null                   # final protocol: the gamma the validation run chose
    backbone: vit_base_patch16_224.orig_in21k_ft_in1k   # real benchmarks (timm name); ToyBirds uses the
                                  #   toy ViT (vspcn) or the toy ResNet (mgmrn)
    pretrained: true
    data: {dataset: toybirds, size: book, seed: 0, root: null, word_vectors: null, augment: null}
    epochs: null                  # passes over the protocol's training split (`train` or `trainval`);
                                  #   when set, it fixes train.steps for either protocol
    steps_per_epoch: null         # sampler "episodes": steps between epoch ends (validation and
                                  #   checkpoint); null: training images // batch size
    train: {steps: 1200, batch_size: 64, ...}   # fields of zsl_lib.train.TrainConfig

Every error names the key, the value and what is allowed.
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import families
from .evaluate import CALIBRATIONS
from .imagecache import AUGMENTATIONS
from .train import TrainConfig
PROTOCOLS = ("validation", "final")
DATASETS = ("toybirds", "CUB", "SUN", "AWA2", "own")   # own: a dataset of yours (zsl_lib.realdata.own)
TOYBIRDS_SIZES = ("smoke", "book")
GLOVE_STAND_IN = "glove50"      # data.word_vectors: GloVe 6B 50-d phrase means instead of the papers' 300-d word2vec
# data.augment, the training augmentation of a real benchmark (zsl_lib.imagecache.AUGMENTATIONS):
#   "crop_flip": Mg-MRN's code, Resize 512 -> RandomCrop 448 -> flip, on the cached 448 px centre square;
#   "resized_crop_flip": a random-resized crop of 64-100 % of the area, and flips (the library's own);
#   "none": VSPCN's code (no augmentation).


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "toybirds"
    size: str = "book"          # ToyBirds world: "smoke" (20 images a class) or "book" (60)
    seed: int = 0               # ToyBirds world seed
    root: str | None = None     # real benchmarks: the folder given to `python -m zsl_lib data prepare`
    word_vectors: str | None = None   # real benchmarks: the .npy / .pkl attribute vectors (relative paths are
                                      # under `root`; null: w2v/<DATASET>_attribute.pkl, the papers' 300-d
                                      # word2vec sums), a .txt embedding file to compute them from, or
                                      # "glove50" for the offline GloVe 6B 50-d stand-in
    augment: str | None = None  # training augmentation, one of AUGMENTATIONS; null: the model's own
                                # (VSPCN: none; Mg-MRN: crop_flip); ToyBirds: none


@dataclass(frozen=True)
class RunConfig:
    model: str = "vspcn"
    preset: str = "paper_default"
    model_options: dict = field(default_factory=dict)
    protocol: str = "validation"
    calibration: str = "zscore_stacking"
    gamma: float | None = None
    backbone: str = "vit_base_patch16_224.orig_in21k_ft_in1k"   # timm name, real benchmarks only
    pretrained: bool = True
    epochs: float | None = None
    steps_per_epoch: int | None = None
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        family = families.get(self.model)
        _choice("preset", self.preset, family.presets)
        _known(f"model_options (fields of {family.config_class.__name__})", self.model_options, family.config_class)
        for key, section in family.option_sections().items():
            if isinstance(self.model_options.get(key), dict):
                _known(f"model_options.{key} (fields of {section.__name__})", self.model_options[key], section)
        _choice("protocol", self.protocol, PROTOCOLS)
        _choice("calibration", self.calibration, CALIBRATIONS)
        _choice("data.dataset", self.data.dataset, DATASETS)
        if self.data.dataset == "toybirds":
            _choice("data.size", self.data.size, TOYBIRDS_SIZES)
        elif not self.data.root:
            raise ValueError(f"data.root is empty: dataset {self.data.dataset} needs the folder prepared by "
                             f"`python -m zsl_lib data prepare {self.data.dataset} --root DIR`")
        toy = self.data.dataset == "toybirds"
        resolved = {"augment": self.data.augment or ("none" if toy else family.real_input.augment)}
        if not toy and self.data.word_vectors is None:
            resolved["word_vectors"] = f"w2v/{self.data.dataset}_attribute.pkl"
        object.__setattr__(self, "data", dataclasses.replace(self.data, **resolved))
        _choice("data.augment", self.data.augment, AUGMENTATIONS)
        if self.protocol == "validation" and self.calibration == "eq19":
            raise ValueError("calibration = 'eq19' with protocol = 'validation': Eq. (19)'s gamma is added to softmax "
                             "probabilities, which shrink with the number of candidate classes, so a gamma chosen "
                             "on the validation classes does not carry over to the test classes; use "
                             "calibration = 'zscore_stacking'")
        if self.epochs is not None and (self.epochs <= 0 or self.train.milestones):
            raise ValueError(f"epochs = {self.epochs}: must be positive, and train.milestones must be empty "
                             "(milestones are steps); set train.steps and train.milestones instead")
        if self.steps_per_epoch is not None and (self.steps_per_epoch < 1 or self.train.sampler != "episodes"):
            raise ValueError(f"steps_per_epoch = {self.steps_per_epoch}: must be a positive integer and needs "
                             "train.sampler = 'episodes' (an epoch of the 'epoch' sampler is one pass)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def resolved_steps(self, train_images: int) -> "RunConfig":
        """This configuration with train.steps fixed by `epochs` for a split of `train_images` images
        (unchanged when `epochs` is not set): an epoch is `steps_per_epoch` steps, or one pass.

        Mg-MRN's configs state train.steps and steps_per_epoch instead: an episodic epoch draws
        its batches afresh and is not a pass over the split, so the validation run on the smaller
        `train` split takes the same 30 epochs of 300 steps as the final run on `trainval`."""
        if self.epochs is None:
            return self
        per_epoch = self.steps_per_epoch or train_images // self.train.batch_size
        return dataclasses.replace(self, train=dataclasses.replace(self.train, steps=max(1, round(self.epochs * per_epoch))))

    def final(self, best: dict) -> "RunConfig":
        """The final run that follows this validation run, whose best epoch was `best` (its
        {"epoch", "gamma"}): trained on trainval for that many epochs and scored at that gamma, so
        that both the epoch and gamma are chosen on validation data."""
        if self.protocol != "validation":
            raise ValueError(f"protocol = {self.protocol!r}: a final run follows a validation run")
        if self.epochs is None and self.steps_per_epoch is not None:     # epochs of a stated length
            train = dataclasses.replace(self.train, steps=best["epoch"] * self.steps_per_epoch)
            return dataclasses.replace(self, protocol="final", gamma=best["gamma"], train=train)
        return dataclasses.replace(self, protocol="final", gamma=best["gamma"], epochs=best["epoch"])

    def word_vector_source(self) -> str | Path:
        """data.word_vectors as a path (relative ones under data.root), or GLOVE_STAND_IN."""
        source = self.data.word_vectors
        if source == GLOVE_STAND_IN:
            return source
        return Path(self.data.root).expanduser() / source


def _choice(key: str, value: Any, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{key} = {value!r} is not allowed; choose one of {sorted(allowed)}")


def _known(where: str, values: dict, config_class) -> None:
    names = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where}; allowed: {sorted(names)}")


def _fits(value: Any, hint: Any) -> bool:
    """Whether a YAML value has the kind a dataclass field's type hint asks for (an int is a
    float; a bool is not a number)."""
    if hint is Any:
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_fits(value, h) for h in typing.get_args(hint))
    origin = typing.get_origin(hint) or hint
    if origin is type(None):
        return value is None
    if isinstance(value, bool):
        return origin is bool
    if origin is float:
        return isinstance(value, (int, float))
    if origin in (list, tuple):
        return isinstance(value, (list, tuple))
    return isinstance(value, origin)


KIND_WORDS = {"int": "a whole number", "float": "a number", "str": "text", "bool": "true or false",
              "tuple": "a list", "list": "a list", "dict": "a mapping", "NoneType": "null"}


def _kind(hint: Any) -> str:
    """A type hint in a user's words: `float | None` -> 'a number or null'."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_kind(h) for h in typing.get_args(hint))
    hint = typing.get_origin(hint) or hint
    return KIND_WORDS.get(hint.__name__, hint.__name__)


def _checked_kinds(where: str, values: dict, config_class) -> dict:
    """`values` with each checked against its field's type hint: one clear error for a value of
    the wrong kind, naming the key, the value and an example. A number YAML read as text
    (YAML 1.1 reads `1e-4` as a string; `1.0e-4` is a number) becomes the number."""
    hints = typing.get_type_hints(config_class)
    defaults = {f.name: f.default for f in dataclasses.fields(config_class)}
    checked = {}
    for key, value in values.items():
        if isinstance(value, str) and not _fits(value, hints[key]) and _fits(1.5, hints[key]):
            try:
                value = float(value)
            except ValueError:
                pass
        if not _fits(value, hints[key]):
            default = defaults[key]
            example = "" if default is dataclasses.MISSING else \
                f", e.g. {key}={json.dumps(list(default) if isinstance(default, tuple) else default)}"
            raise ValueError(f"{where}: {key} = {value!r} must be {_kind(hints[key])}{example}")
        checked[key] = value
    return checked


def from_dict(raw: dict, source: str = "config") -> RunConfig:
    """A RunConfig from nested plain values; unknown keys are errors that list the allowed ones."""
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: expected a mapping of keys to values, got {type(raw).__name__}")
    _known(source, raw, RunConfig)
    sections = {"data": DataConfig, "train": TrainConfig}
    values = {}
    for key, value in raw.items():
        if key in sections:
            if not isinstance(value, dict):
                raise ValueError(f"{source}: '{key}' must be a mapping, got {value!r}")
            where = f"{source}, section '{key}'"
            _known(where, value, sections[key])
            checked = _checked_kinds(where, value, sections[key])
            try:
                value = sections[key](**checked)
            except ValueError as err:       # a value the section's own check refuses (TrainConfig's)
                raise ValueError(f"{where}: {err}") from None
        values[key] = value
    values |= _checked_kinds(source, {k: v for k, v in values.items() if k not in sections}, RunConfig)
    return RunConfig(**values)


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply `key=value` strings (dotted keys for sections, YAML values) to a raw config."""
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: write key=value, e.g. --set train.steps=100")
        *parents, leaf = key.split(".")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"--set {item!r}: {part!r} is not a section")
        node[leaf] = yaml.safe_load(text)
    return raw


def load(path: str | Path, overrides: list[str] = ()) -> RunConfig:
    """Read a YAML run configuration and apply `--set` overrides."""
    path = Path(path)
    if not path.is_file():
        shipped = sorted(p.name for p in (Path(__file__).resolve().parent.parent / "configs").glob("*.yaml"))
        raise FileNotFoundError(f"no configuration file {path}; the repository ships configs/{{{', '.join(shipped)}}}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {err}") from None
    raw = apply_overrides(raw, list(overrides))
    if isinstance(raw, dict) and raw.get("epochs") is not None and "steps" in (raw.get("train") or {}):
        raise ValueError(f"{path}: both epochs = {raw['epochs']} and train.steps = {raw['train']['steps']} are set; "
                         "keep one (e.g. --set epochs=null --set train.steps=100)")
    try:
        return from_dict(raw, str(path))
    except TypeError as err:  # a value of the wrong kind for a dataclass field
        raise ValueError(f"{path}: {err}") from None
