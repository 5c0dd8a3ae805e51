"""The command line: train from a configuration file, evaluate a checkpoint.

    python -m zsl_lib train --config configs/vspcn_toybirds.yaml [--set train.steps=100 ...] [--run-dir DIR] [--resume]
    torchrun --nproc_per_node 2 -m zsl_lib train --config ...      # several processes, one run
    python -m zsl_lib evaluate --checkpoint runs/vspcn_toybirds/best.pt [--gamma G]

A run folder holds `config.json` (the resolved configuration), `metrics.jsonl`,
`last.pt` (resume point), `best.pt` (best validation epoch, validation protocol) and
`result.json` (final scores with provenance).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from dataclasses import replace

from . import checkpoint, distributed, evaluate, provenance, runconfig
from .runtime import atomic_open, resolve_device
from .toyworld.dataset import ToyBirds, ToyBirdsConfig, load_toybirds
from .train import train


def load_world(cfg: runconfig.RunConfig) -> ToyBirds:
    if cfg.data.dataset != "toybirds":
        raise NotImplementedError(f"data.dataset = {cfg.data.dataset!r}: this version reads only ToyBirds; "
                                  "the real-benchmark loader (CUB, SUN, AWA2) is not part of it yet")
    return load_toybirds(ToyBirdsConfig.for_mode(cfg.data.size, seed=cfg.data.seed))


def build_model(cfg: runconfig.RunConfig, world: ToyBirds):
    """The configured model with the seen classes of its protocol."""
    from .vspcn import LossWeights, preset
    from .vspcn.experiment import build
    seen = world.trainclasses1 if cfg.protocol == "validation" else world.seen_classes
    options = dict(cfg.model_options)
    if "losses" in options:                                   # e.g. model_options={losses: {mu_ed: 0}}
        options["losses"] = LossWeights(**options["losses"])
    return build(world, preset(cfg.preset, **options), seen, cfg.train.seed)


def validation_scores(cfg: runconfig.RunConfig, world: ToyBirds):
    """The per-epoch evaluation of the validation protocol: best H over gamma, in percent."""
    def on_epoch_end(model, epoch: int) -> dict:
        best = evaluate.choose_gamma(model, world, cfg.calibration, cfg.train.device)
        return {"H": round(100 * best.H, 2), "U": round(100 * best.U, 2), "S": round(100 * best.S, 2),
                "gamma": round(best.gamma, 5)}
    return on_epoch_end


def test_scores(cfg: runconfig.RunConfig, world: ToyBirds, model) -> dict:
    """Test-split report in percent at the configured gamma (0 when none was chosen: labelled)."""
    report = evaluate.evaluate(model, world, cfg.gamma or 0.0, cfg.calibration, cfg.train.device)
    scores = {k: round(100 * v, 2) for k, v in report.items() if isinstance(v, float)}
    scores["gamma"] = cfg.gamma
    scores["gamma_source"] = "config (chosen on validation)" if cfg.gamma is not None else "none: gamma = 0"
    return scores


def command_train(args) -> None:
    cfg = runconfig.load(args.config, args.set)
    run_dir = Path(args.run_dir or Path("runs") / Path(args.config).stem)
    sha, start = provenance.git_sha(), time.time()
    world = load_world(cfg)
    model = build_model(cfg, world)
    split = world.splits["train" if cfg.protocol == "validation" else "trainval"]
    if cfg.protocol == "validation" and cfg.train.steps < len(split) // cfg.train.batch_size:
        raise ValueError(f"train.steps = {cfg.train.steps} ends before the first epoch "
                         f"({len(split) // cfg.train.batch_size} steps), so nothing would be evaluated; raise it")
    procs = distributed.setup(resolve_device(cfg.train.device).type)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not args.resume and procs.main:
        with atomic_open(run_dir / "config.json") as f:
            json.dump(cfg.to_dict(), f, indent=1)
    elif args.resume and json.loads((run_dir / "config.json").read_text()) != cfg.to_dict():
        raise ValueError(f"--resume: {run_dir / 'config.json'} differs from this configuration; "
                         "resume with the original --config and --set values")
    on_epoch_end = validation_scores(cfg, world) if cfg.protocol == "validation" else None
    history = train(model, world.images[split], world.labels[split], cfg.train, run_dir=run_dir,
                    resume=args.resume, on_epoch_end=on_epoch_end)
    if not procs.main:
        return
    if cfg.protocol == "validation":
        best = checkpoint.load(run_dir / "best.pt")
        metrics = {k: best[k] for k in ("epoch", "step", "H", "U", "S", "gamma")}
    else:
        metrics = test_scores(cfg, world, model)
    metrics["loss_first"], metrics["loss_last"] = history[0]["total"], history[-1]["total"]
    provenance.save_json(run_dir / "result.json",
                         provenance.run_record(run_dir.name, cfg.to_dict(), [cfg.train.seed], metrics,
                                               time.time() - start, sha))
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
    args = parser.parse_args(argv)
    args.func(args)
