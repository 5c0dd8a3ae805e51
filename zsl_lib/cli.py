"""The command line: train from a configuration file, evaluate a checkpoint.

    python -m zsl_lib train --config configs/vspcn_toybirds.yaml [--set train.steps=100 ...] [--run-dir DIR] [--resume]
    torchrun --nproc_per_node 2 -m zsl_lib train --config ...      # several processes, one run
    python -m zsl_lib evaluate --checkpoint runs/vspcn_toybirds/best.pt [--gamma G]
    python -m zsl_lib data prepare CUB --root ~/data        # once, after downloading the archives
    python -m zsl_lib data prepare own --root ~/mydata      # a dataset of your own (zsl_lib.realdata.own)

Expected problems (a missing file, an unknown key, a bad value) print one line naming the file or
value and the fix, and exit with status 2.

A run folder holds `config.json` (the resolved configuration), `metrics.jsonl`,
`last.pt` (resume point), `best.pt` (best validation epoch, validation protocol) and
`result.json` (final scores with provenance).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import timm

from . import checkpoint, distributed, evaluate, families, metrics, provenance, runconfig
from .imagecache import AUGMENTATIONS, Rows
from .realdata import own, wordvectors
from .realdata.dataset import load_benchmark
from .realdata.prepare import prepare
from .runtime import atomic_open, resolve_device
from .toyworld.dataset import ToyBirdsConfig, load_toybirds
from .train import train


# Errors that describe a problem of the user's files, keys or values (each names it and the fix).
EXPECTED = (FileNotFoundError, ValueError, KeyError, FloatingPointError)


def load_world(cfg: runconfig.RunConfig):
    """ToyBirds, or a real benchmark prepared under `data.root`."""
    if cfg.data.dataset == "toybirds":
        return load_toybirds(ToyBirdsConfig.for_mode(cfg.data.size, seed=cfg.data.seed))
    real_input = families.get(cfg.model).real_input
    return load_benchmark(Path(cfg.data.root) / f"{cfg.data.dataset}_index.json", real_input.image_size,
                          real_input.normalization, seed=cfg.data.seed)


def build_model(cfg: runconfig.RunConfig, world, log=print):
    """The configured model with the seen classes of its protocol: the toy backbone of its family
    on ToyBirds, else the timm backbone `cfg.backbone` with the preset's per-dataset values."""
    family = families.get(cfg.model)
    seen = world.trainclasses1 if cfg.protocol == "validation" else world.seen_classes
    if cfg.data.dataset == "toybirds":
        return family.build(world, family.configure(cfg.preset, options=cfg.model_options), seen, cfg.train.seed)
    benchmark = cfg.data.dataset if cfg.data.dataset != own.NAME else None   # own data: the preset's defaults
    model_cfg = family.configure(cfg.preset, benchmark, cfg.model_options)   # the user's options win
    word_vectors = attribute_vectors(cfg, world, log)
    # made after seeding (inside assemble), so a backbone with random frozen weights is the same in every process
    backbone = lambda: timm.create_model(cfg.backbone, pretrained=cfg.pretrained, num_classes=0)
    return families.assemble(family.model_class, backbone, word_vectors, world.class_attributes, seen, model_cfg,
                             cfg.train.seed)


def attribute_vectors(cfg: runconfig.RunConfig, world, log=print) -> np.ndarray:
    """(A, d) attribute vectors from `data.word_vectors`: a .npy/.pkl file (the papers' 300-d word2vec
    sums by default), phrase means from a .txt embedding file, or the labelled GloVe 50-d stand-in."""
    source = cfg.word_vector_source()
    if source != runconfig.GLOVE_STAND_IN and Path(source).suffix != ".txt":
        if not Path(source).is_file():
            raise FileNotFoundError(
                f"no attribute word vectors at {source} (data.word_vectors = {cfg.data.word_vectors!r}). Both papers "
                f"use 300-d word2vec vectors, one per attribute: put {world.name}_attribute.pkl from the w2v/ folder of "
                f"the papers' code (appendix A says where) into {Path(cfg.data.root) / 'w2v'}, or set data.word_vectors "
                f"to your file; --set data.word_vectors={runconfig.GLOVE_STAND_IN} trains with the offline GloVe 50-d "
                "stand-in instead")
        return wordvectors.load_vectors_file(source, world.class_attributes.shape[1])
    if world.attribute_names is None:
        raise FileNotFoundError(f"{world.name}: no attribute-name file was found by `data prepare`, so word vectors "
                                "cannot be computed; set data.word_vectors to the benchmark's .npy/.pkl vector file")
    if source == runconfig.GLOVE_STAND_IN:
        log("word vectors: GloVe 6B 50-d phrase means, a stand-in (both papers use 300-d word2vec sums)")
        return wordvectors.glove_vectors(world.attribute_names)
    return wordvectors.vectors_from_text(source, world.attribute_names)


def validation_scores(cfg: runconfig.RunConfig, world):
    """The per-epoch evaluation of the validation protocol: best H over gamma, in percent."""
    def on_epoch_end(model, epoch: int) -> dict:
        best = evaluate.choose_gamma(model, world, cfg.calibration, cfg.train.device,
                                    precision=cfg.train.precision)
        return {"H": metrics.percent(best.H), "U": metrics.percent(best.U), "S": metrics.percent(best.S),
                "gamma": round(best.gamma, 5)}
    return on_epoch_end


def test_scores(cfg: runconfig.RunConfig, world, model) -> dict:
    """Test-split report in percent at the configured gamma (0 when none was chosen: labelled)."""
    report = evaluate.evaluate(model, world, cfg.gamma or 0.0, cfg.calibration, cfg.train.device,
                               precision=cfg.train.precision)
    scores = {k: metrics.percent(v) for k, v in metrics.scalars(report).items()}
    scores["gamma"] = cfg.gamma
    scores["gamma_source"] = "config (chosen on validation)" if cfg.gamma is not None else "none: gamma = 0"
    return scores


def train_run(cfg: runconfig.RunConfig, run_dir: Path, resume: bool = False, log=print) -> dict:
    """Train `cfg` in `run_dir` (continuing from its last.pt when `resume`) and write its result.json.
    Returns the run's metrics: the best epoch's validation scores (validation protocol) or the test
    scores at the configured gamma (final protocol), with the first and last training loss."""
    sha, start = provenance.git_sha(), time.time()
    device = resolve_device(cfg.train.device)           # a device this machine lacks fails before any work
    world = load_world(cfg)
    split = world.splits["train" if cfg.protocol == "validation" else "trainval"]
    cfg = cfg.resolved_steps(len(split))                # `epochs` of this protocol's training split
    model = build_model(cfg, world, log)
    epoch_steps = cfg.steps_per_epoch or len(split) // cfg.train.batch_size   # an episodic epoch has its stated length
    if cfg.protocol == "validation" and cfg.train.steps < epoch_steps:
        raise ValueError(f"train.steps = {cfg.train.steps} ends before the first epoch "
                         f"({epoch_steps} steps), so nothing would be evaluated; raise it")
    procs = distributed.setup(device.type)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume and procs.main:
        with atomic_open(run_dir / "config.json") as f:
            json.dump(cfg.to_dict(), f, indent=1)
    elif resume and json.loads((run_dir / "config.json").read_text()) != json.loads(json.dumps(cfg.to_dict())):
        raise ValueError(f"--resume: {run_dir / 'config.json'} differs from this configuration; "
                         "resume with the original --config and --set values")
    on_epoch_end = validation_scores(cfg, world) if cfg.protocol == "validation" else None
    history = train(model, Rows(world.images, split), world.labels[split], cfg.train, run_dir=run_dir,
                    resume=resume, on_epoch_end=on_epoch_end, transform=AUGMENTATIONS[cfg.data.augment],
                    normalize=world.normalize, steps_per_epoch=cfg.steps_per_epoch, log=log)
    if not procs.main:
        return {}
    if cfg.protocol == "validation":
        best = checkpoint.load(run_dir / "best.pt")
        result = {k: best[k] for k in ("epoch", "step", "H", "U", "S", "gamma")}
    else:
        result = test_scores(cfg, world, model)
    result["loss_first"], result["loss_last"] = history[0]["total"], history[-1]["total"]
    provenance.save_json(run_dir / "result.json",
                         provenance.run_record(run_dir.name, cfg.to_dict(), [cfg.train.seed], result,
                                               time.time() - start, sha))
    return result


def command_train(args) -> None:
    cfg = runconfig.load(args.config, args.set)
    metrics = train_run(cfg, Path(args.run_dir or Path("runs") / Path(args.config).stem), args.resume)
    if metrics:
        print(json.dumps(metrics))


def command_evaluate(args) -> None:
    path = Path(args.checkpoint)
    state = checkpoint.load(path)
    cfg_path = path.parent / "config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path} is missing: evaluate needs the run folder the checkpoint came from")
    cfg = runconfig.from_dict(json.loads(cfg_path.read_text()), str(cfg_path))
    if args.gamma is not None:
        cfg = replace(cfg, gamma=args.gamma)
    world = load_world(cfg)
    model = build_model(cfg, world)
    checkpoint.load_trainable_state(model, state["model"], str(path))
    scores = validation_scores(cfg, world)(model, -1) if cfg.protocol == "validation" else test_scores(cfg, world, model)
    print(json.dumps({"checkpoint": str(path), "step": state["step"], "protocol": cfg.protocol, **scores}))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zsl_lib", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a model from a configuration file")
    p.add_argument("--config", required=True, help="a YAML file, e.g. configs/vspcn_toybirds.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a configuration value, e.g. train.steps=100 (repeatable)")
    p.add_argument("--run-dir", help="where the run writes (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last.pt")
    p.set_defaults(func=command_train)
    p = sub.add_parser("evaluate", help="score a checkpoint on its protocol's evaluation splits")
    p.add_argument("--checkpoint", required=True, help="best.pt or last.pt of a run folder")
    p.add_argument("--gamma", type=float, help="final protocol: the calibration gamma (default: the config's)")
    p.set_defaults(func=command_evaluate)
    p = sub.add_parser("data", help="prepare a real benchmark from its official archives")
    p.add_argument("action", choices=["prepare"])
    p.add_argument("dataset", choices=["CUB", "SUN", "AWA2", own.NAME],
                   help=f"a benchmark, or '{own.NAME}': your own dataset in the layout of zsl_lib.realdata.own")
    p.add_argument("--root", required=True, help="the folder holding the unpacked images and xlsa17")
    p.set_defaults(func=lambda a: prepare(a.dataset, a.root))
    args = parser.parse_args(argv)
    exit_on_user_error(lambda: args.func(args))


def exit_on_user_error(action) -> None:
    """Call `action()`; a problem of the user's files or values (`EXPECTED`) prints its one-line
    message, without a traceback, and exits with status 2."""
    try:
        action()
    except EXPECTED as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
