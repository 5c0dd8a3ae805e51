"""Choosing Mg-MRN's toy setting on validation classes, one change at a time.

Each variant is the `paper` preset under the toy recipe (`TOY_RECIPE`) with one change, of the
optimiser or of the model. It is trained as the protocol's validation run (seen classes
`trainclasses1`, the `train` split, the book run's number of epochs) on the book-size world, and
its learning curve is H on the validation classes at each epoch end (headline calibration, best
gamma). No test image is used, so a variant chosen here may then be run on the test split.

    python -m zsl_lib.mgmrn.recipe_scan --out results/mgmrn_recipe_scan.json

The file is rewritten after every variant, and variants already in it with the same
configuration are kept, so an interrupted scan continues where it stopped.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from .. import experiment, provenance
from ..toyworld.dataset import ToyBirdsConfig, load_toybirds
from ..train import TrainConfig
from .config import preset
from .experiment import BOOK_RECIPE, build


@dataclass(frozen=True)
class Variant:
    label: str
    preset: str = "paper"
    model: dict = field(default_factory=dict)        # MgMRNConfig overrides
    train: dict = field(default_factory=dict)        # TrainConfig overrides of BOOK_RECIPE
    freeze_backbone: bool = False                    # backbone weights fixed (BatchNorm statistics still update)


VARIANTS = (
    Variant("paper, the toy recipe (lr 0.03)"),
    Variant("paper, lr 0.01", train=dict(lr=0.01)),
    Variant("paper, lr 0.003", train=dict(lr=0.003)),
    Variant("paper, backbone frozen", freeze_backbone=True),
    Variant("paper, lambda_AR 0.1", model=dict(lambda_ar=0.1)),
    Variant("paper, one stage (no MgM)", model=dict(mgm=False)),
    Variant("paper, free read-out (preset paper_free_readout)", preset="paper_free_readout"),
    Variant("official_code", preset="official_code"),
)


def train_config(variant: Variant, seed: int) -> TrainConfig:
    """The book recipe with the variant's changes, on the CPU, as stored."""
    return TrainConfig(**(BOOK_RECIPE | variant.train), seed=seed, device="cpu")


def variant_config(variant: Variant, world_cfg: ToyBirdsConfig, seed: int) -> dict:
    """Everything that fixes a variant's result, as stored in JSON (and compared on resuming)."""
    return json.loads(json.dumps({"label": variant.label, "preset": variant.preset,
                                  "model": asdict(preset(variant.preset, **variant.model)),
                                  "train": asdict(train_config(variant, seed)),
                                  "freeze_backbone": variant.freeze_backbone, "world": asdict(world_cfg)}))


def validation_curve(variant: Variant, world, seed: int, log=print) -> list[dict]:
    """The validation run of one variant: [{"epoch", "step", "H_val" (percent)}, ...]."""
    cfg = preset(variant.preset, **variant.model)

    def build_seen(seen):
        model = build(world, cfg, seen, seed)
        if variant.freeze_backbone:
            model.backbone.requires_grad_(False)
        return model

    _, curve = experiment.validation_run(world, build_seen, replace(train_config(variant, seed), log_every=10_000),
                                         log=log)
    return experiment.percent_curve(curve)


def scan(out: Path, world_seed: int = 0, seed: int = 0, variants=VARIANTS, mode: str = "book", log=print) -> dict:
    """Run every variant not yet stored in `out` with the same configuration; returns the record."""
    world_cfg = ToyBirdsConfig.for_mode(mode, seed=world_seed)
    world = load_toybirds(world_cfg)
    done = {row["config"]["label"]: row for row in
            (provenance.load_json(out)["metrics"]["variants"] if out.exists() else [])}
    rows, sha = [], provenance.git_sha()
    for variant in variants:
        config = variant_config(variant, world_cfg, seed)
        if variant.label in done and done[variant.label]["config"] == config:
            rows.append(done[variant.label])
            continue
        start = time.time()
        curve = validation_curve(variant, world, seed, log=lambda *_: None)
        rows.append({"config": config, "validation_curve": curve, "wall_time_s": round(time.time() - start, 1),
                     "git_sha": sha, "threads": torch.get_num_threads()})
        log(f"{variant.label}: H_val per epoch {[p['H_val'] for p in curve]} ({time.time() - start:.0f} s)")
        record = provenance.run_record("mgmrn_recipe_scan", {"world": asdict(world_cfg), "recipe": BOOK_RECIPE},
                                       [seed], {"variants": rows}, sum(r["wall_time_s"] for r in rows), sha)
        provenance.save_json(out, record)
    return provenance.load_json(out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zsl_lib.mgmrn.recipe_scan", description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    scan(args.out, args.world, args.seed)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
