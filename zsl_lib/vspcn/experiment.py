"""VSPCN on ToyBirds: the model builder, the chapters' short comparisons, and the protocol
run of `zsl_lib.experiment` from the command line:

    python -m zsl_lib.vspcn.experiment --mode book --seed 0 --out results/vspcn_book.json

`BOOK_RECIPE` is the book-size run's optimisation (Adam, batch 64, cosine decay): its number of
steps sits where the validation run's learning curve (validation H at each epoch end) has
levelled off, so that the ablation grids can afford dozens of such runs on a CPU: on book-size
world 0, validation H reaches 66.6 % in the fifth epoch of `train` and stays within 1.6 points
of it up to the sixteenth (`results/vspcn_book_curve.json`, a 900-step run), and the book run
stops after about five epochs (190 validation steps, 300 final steps).
"""
from __future__ import annotations

import functools
import time
from pathlib import Path

from .. import experiment
from ..backbones import load_or_pretrain
from ..memo import Memoised
from ..semantics import attribute_word_vectors
from ..toyworld.dataset import ToyBirds, ToyBirdsConfig, load_toybirds
from ..train import TrainConfig
from .config import TABLE2_ROWS, VSPCNConfig, preset, table2_row
from .model import VSPCN

BOOK_RECIPE = dict(steps=300, batch_size=64, lr=1e-3)


def build(world: ToyBirds, cfg: VSPCNConfig, seen_classes, seed: int = 0) -> VSPCN:
    """VSPCN on the toy-pretrained ViT with ToyBirds' GloVe attribute vectors and
    per-class L2-normalised attribute vectors (as xlsa17's `att`)."""
    return experiment.assemble(VSPCN, lambda: load_or_pretrain("toy_vit_hybrid_64"),
                               attribute_word_vectors(world.attribute_phrases), world.class_attributes,
                               seen_classes, cfg, seed)


@functools.lru_cache(maxsize=1)
def trunk_outputs(world_config: ToyBirdsConfig) -> dict:
    """The store of the frozen trunk's outputs on one world, shared by every model `build_memoised`
    makes on it in this process (only the latest world's, about 200 MB at book size)."""
    return {}


def build_memoised(world: ToyBirds, cfg: VSPCNConfig, seen_classes, seed: int = 0) -> VSPCN:
    """`build`, with the hybrid ViT's frozen trunk computing each image of `world` once
    (`zsl_lib.memo.Memoised`): the ablation grid's models. The function is the same; the
    outputs can differ from `build`'s in the last float bits (a batch of other images)."""
    model = build(world, cfg, seen_classes, seed)
    embed = model.vit.patch_embed
    embed.backbone = Memoised(embed.backbone, trunk_outputs(world.config))
    return model


def run(world: ToyBirds, cfg: VSPCNConfig, train_cfg: TrainConfig, log=print) -> dict:
    """`zsl_lib.experiment.run` with VSPCN models of configuration `cfg`."""
    return experiment.run(world, lambda seen: build(world, cfg, seen, train_cfg.seed), train_cfg, log)


def short_schedule(mode: str, seed: int = 0, device: str = "auto") -> tuple[ToyBirds, TrainConfig]:
    """The chapters' short comparisons: 60 steps of 32 images on the smoke world in "smoke"
    mode, 400 steps of 64 on the book-size world otherwise."""
    world = load_toybirds(ToyBirdsConfig.for_mode("smoke" if mode == "smoke" else "book", seed=seed))
    steps, batch = (60, 32) if mode == "smoke" else (400, 64)
    return world, TrainConfig(steps=steps, batch_size=batch, seed=seed, device=str(device), log_every=steps)


def compare_rows(world: ToyBirds, rows, train_cfg: TrainConfig, log=print) -> dict[int, dict]:
    """`zsl_lib.experiment.quick_run` of several Table 2 rows on one schedule, printing each row's T1 and AUSUC:
    {row: {"model", "history", "T1", "AUSUC", "seconds"}}."""
    results = {}
    for row in rows:
        start = time.time()
        model, history, scores = experiment.quick_run(
            world, lambda seen: build(world, table2_row(row), seen, train_cfg.seed), train_cfg, log=lambda *_: None)
        results[row] = dict(model=model, history=history, seconds=time.time() - start, **scores)
        log(f"row {row} ({TABLE2_ROWS[row][0]}): T1 {scores['T1']:.1f} %, AUSUC {scores['AUSUC']:.2f} "
            f"({train_cfg.steps} steps, {results[row]['seconds']:.0f} s)")
    log(f"chance T1: {100 / len(world.unseen_classes):.1f} %")
    return results


def load_trained(record: dict, state_path: Path) -> tuple[VSPCN, ToyBirds]:
    """The final model of a stored run and its world: rebuilt from the recorded world and
    preset, with the trained parameters of `state_path` (checked against the record's sha256)."""
    config = record["config"]
    world = load_toybirds(ToyBirdsConfig(**config["world"]))
    cfg = preset(config["preset"])
    model = build(world, cfg, world.seen_classes, config["train"]["seed"])
    return experiment.load_state(model, record, state_path), world


FAMILY = experiment.Family("vspcn", preset, build, BOOK_RECIPE, own_calibration=experiment.PAPER,
                           default_preset="paper_default")


def main(argv=None) -> None:
    experiment.main(FAMILY, argv)


if __name__ == "__main__":
    main()
