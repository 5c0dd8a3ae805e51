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

from .. import experiment, families
from ..memo import Memoised
from ..pixels import CLIP
from ..toyworld.dataset import ToyBirds, ToyBirdsConfig
from ..train import TrainConfig
from .config import PRESETS, TABLE2_ROWS, VSPCNConfig, preset, table2_row
from .model import VSPCN

BOOK_RECIPE = dict(steps=300, batch_size=64, lr=1e-3)
FAMILY = families.register(families.Family(
    name="vspcn", model_class=VSPCN, presets=PRESETS, make_preset=preset, default_preset="paper_default",
    toy_backbone="toy_vit_hybrid_64", recipe=BOOK_RECIPE,
    quick_steps={"smoke": dict(steps=60, batch_size=32), "book": dict(steps=400, batch_size=64)},
    own_calibration=experiment.PAPER,
    # the released code feeds its ViT CLIP-normalised 224 px images, without augmentation
    real_input=families.RealInput(224, CLIP, "none"), grid="zsl_lib.vspcn.ablations:GRID"))
# The chapters' names for the family's builders: `build(world, cfg, seen_classes, seed)` makes VSPCN on the
# toy-pretrained ViT; `short_schedule(mode, seed, device)` gives the short comparisons' world and
# schedule (60 steps of 32 images on the smoke world, 400 of 64 at book size); `load_trained(record,
# state_path)` rebuilds a stored run's final model.
build, short_schedule, load_trained = FAMILY.build, FAMILY.short_schedule, FAMILY.load_trained


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


def main(argv=None) -> None:
    experiment.main(FAMILY, argv)


if __name__ == "__main__":
    main()
