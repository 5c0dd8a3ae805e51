"""Pretraining a toy backbone on ToyNet, as an ImageNet backbone is pretrained before CUB.

One supervised loop: a backbone and one linear head over ToyNet's classes (its bird species,
then ToyShapes' objects), cross-entropy with label smoothing, AdamW with a linear warm-up
and cosine decay, gradient clipping. Images are rendered on the fly by a loader process
(scene i of the stream is fixed by (seed, i), so no image repeats and the stream restarts
exactly). A checkpoint is written atomically every `checkpoint_every` steps; `--resume`
continues from it exactly. At the end the backbone (without the head) is stored in fp16
with its sha256 and provenance in the registry the library loads from.

    python -m zsl_lib.pretraining toy_resnet_nopool_64 --out zsl_lib/artifacts
    python -m zsl_lib.pretraining toy_vit_hybrid_64 --out zsl_lib/artifacts

The hybrid ViT starts from the ResNet's weights (its frozen trunk is the ResNet's first three
stages), so the ResNet is pretrained first; the ViT's registry entry records which ResNet
weights (sha256) it was built on.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import provenance
from .backbones import (ARTIFACTS, INITIALISED_FROM, TOY_BACKBONES, artifact_path, load_or_pretrain, load_trunk,
                        read_registry, sha256_file, to_input)
from .runtime import atomic_open, cache_dir, warmup_cosine
from .toyworld import toynet


@dataclass(frozen=True)
class PretrainConfig:
    """The ToyNet pretraining recipe; `for_backbone` gives each toy backbone's shipped one."""
    steps: int = 3000
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 100
    label_smoothing: float = 0.1
    image_size: int = 64
    n_species: int = toynet.N_BIRD_SPECIES
    seed: int = 0
    eval_images: int = 2048
    log_every: int = 50
    checkpoint_every: int = 250

    @classmethod
    def for_backbone(cls, name: str, **overrides) -> "PretrainConfig":
        recipes = {"toy_resnet_nopool_64": dict(steps=4500, lr=2e-3, warmup_steps=200),
                   "toy_vit_hybrid_64": dict(steps=1200)}
        if name not in recipes:
            raise ValueError(f"no pretraining recipe for {name!r}; toy backbones: {TOY_BACKBONES}")
        return cls(**(recipes[name] | overrides))


class ToyNetStream(torch.utils.data.IterableDataset):
    """ToyNet scenes start, start + 1, ... (until `stop`), scene i fixed by (seed, i). Read it with at
    most one loader worker: the order of the scenes is what makes a resumed run exact."""

    def __init__(self, seed: int, image_size: int, n_species: int, start: int = 0, stop: int | None = None):
        self.seed, self.image_size, self.n_species, self.start, self.stop = seed, image_size, n_species, start, stop

    def __iter__(self):
        i = self.start
        while self.stop is None or i < self.stop:
            image, label = toynet.render_scene(np.random.default_rng([self.seed, i]), self.image_size, self.n_species)
            yield torch.from_numpy(image), label
            i += 1


class Classifier(nn.Module):
    """A backbone (pooled features, `num_classes=0`) and one linear head over ToyNet's classes."""

    def __init__(self, backbone: nn.Module, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.num_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))          # (B, classes)


def checkpoint_path(name: str, out_dir: Path) -> Path:
    """Where an unfinished pretraining of `name` into `out_dir` keeps its state."""
    return out_dir / f".{name}.pretraining.ckpt"


def pretrain(name: str, cfg: PretrainConfig, out_dir: Path, resume: bool = False, log=print) -> dict:
    """Pretrain `name` on ToyNet, write `<name>.pt` (fp16 backbone state dict) into `out_dir` and
    its entry in `out_dir/registry.json`; returns the entry.

    State is checkpointed atomically every `cfg.checkpoint_every` steps and after the last one;
    `resume=True` continues from it exactly (same scenes, same weights). Starting afresh over an
    unfinished run's checkpoint, or resuming one written by another recipe or on other trunk
    weights, is refused, so no work is lost by mistake."""
    sha = provenance.git_sha()
    ckpt = checkpoint_path(name, out_dir)
    if resume and not ckpt.exists():
        raise FileNotFoundError(f"nothing to resume: no unfinished pretraining of {name} at {ckpt}")
    if not resume and ckpt.exists():
        raise FileExistsError(f"{ckpt} holds an unfinished pretraining of {name}: continue it with --resume, "
                              "or delete the file to start again")
    torch.manual_seed(cfg.seed)
    model = Classifier(timm.create_model(name, num_classes=0), toynet.num_classes(cfg.n_species))
    source = INITIALISED_FROM.get(name)
    if source is not None:                       # the hybrid ViT's trunk: the pretrained ResNet's, frozen
        load_trunk(model.backbone, load_or_pretrain(source, log=log))
        source = {"name": source, "sha256": artifact_path(source)[1]["sha256"]}
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    no_decay = [p for n, p in trainable if p.ndim <= 1 or n.endswith(("pos_embed", "cls_token"))]
    decay = [p for n, p in trainable if not any(p is q for q in no_decay)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, cfg.warmup_steps, cfg.steps))
    step, elapsed, losses = 0, 0.0, []
    if resume:
        state = torch.load(ckpt, weights_only=False)
        if state["config"] != asdict(cfg) or state["initialised_from"] != source:
            raise ValueError(f"{ckpt} was written by another recipe or on other trunk weights "
                             f"({state['config']}, {state['initialised_from']}); pretrain with the same settings, "
                             "or delete it to start again")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step, elapsed, losses = state["step"], state["elapsed"], state["losses"]
        log(f"resumed {name} at step {step}")
    stream = ToyNetStream(cfg.seed, cfg.image_size, cfg.n_species, start=step * cfg.batch_size,
                          stop=cfg.steps * cfg.batch_size)
    loader = torch.utils.data.DataLoader(stream, batch_size=cfg.batch_size, num_workers=1)
    start = time.time() - elapsed
    model.train()
    for images, labels in loader:
        loss = F.cross_entropy(model(to_input(images)), labels, label_smoothing=cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(round(loss.item(), 4))
        step += 1
        if step % cfg.log_every == 0 or step == cfg.steps:
            log(f"{name} step {step}/{cfg.steps} loss {np.mean(losses[-cfg.log_every:]):.3f} "
                f"({time.time() - start:.0f} s)")
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            out_dir.mkdir(parents=True, exist_ok=True)
            with atomic_open(ckpt, "wb") as f:
                torch.save({"config": asdict(cfg), "initialised_from": source, "step": step,
                            "elapsed": time.time() - start, "losses": losses, "model": model.state_dict(),
                            "optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, f)
    train_seconds = time.time() - start
    metrics = held_out_accuracy(model, cfg)
    metrics["final_loss"] = round(float(np.mean(losses[-cfg.log_every:])), 4)
    metrics["loss_curve"] = [round(float(np.mean(losses[i:i + cfg.log_every])), 4)
                             for i in range(0, len(losses), cfg.log_every)]
    log(f"{name}: held-out accuracy birds {metrics['acc_birds']:.3f}, objects {metrics['acc_objects']:.3f} "
        f"after {train_seconds:.0f} s")
    return register(name, model.backbone, cfg, metrics, train_seconds, out_dir, sha, ckpt, source)


@torch.no_grad()
def held_out_accuracy(model: Classifier, cfg: PretrainConfig) -> dict[str, float]:
    """Top-1 accuracy over all ToyNet classes on scenes of a seed the training stream never uses,
    separately for birds (chance 1 / n_species) and objects."""
    model.eval()
    stream = ToyNetStream(cfg.seed + 10_000, cfg.image_size, cfg.n_species, 0, cfg.eval_images)
    correct, labels_all = [], []
    for images, labels in torch.utils.data.DataLoader(stream, batch_size=256):
        correct.append(model(to_input(images)).argmax(1) == labels)
        labels_all.append(labels)
    correct, labels = torch.cat(correct), torch.cat(labels_all)
    birds = labels < cfg.n_species
    return {"acc_birds": round(correct[birds].float().mean().item(), 4),
            "acc_objects": round(correct[~birds].float().mean().item(), 4)}


def register(name: str, backbone: nn.Module, cfg: PretrainConfig, metrics: dict, seconds: float, out_dir: Path,
             sha: str | None, ckpt: Path, initialised_from: dict | None) -> dict:
    """Store the backbone in fp16 atomically and record its sha256, recipe, starting weights and provenance."""
    state = {k: v.half() if v.is_floating_point() else v for k, v in backbone.state_dict().items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.pt"
    with atomic_open(path, "wb") as f:
        torch.save(state, f)
    entry = provenance.run_record(f"pretrain {name} on ToyNet", asdict(cfg), [cfg.seed], metrics, seconds, sha)
    out_arg = "zsl_lib/artifacts" if out_dir.resolve() == ARTIFACTS else str(out_dir)
    default = PretrainConfig.for_backbone(name)
    changed = "".join(f" --{k.replace('_', '-')} {getattr(cfg, k)}" for k in ("steps", "batch_size")
                      if getattr(cfg, k) != getattr(default, k))
    entry.update(file=path.name, sha256=sha256_file(path), world="ToyNet (zsl_lib.toyworld.toynet)",
                 initialised_from=initialised_from,
                 command=f"python -m zsl_lib.pretraining {name}{changed} --out {out_arg}")
    registry = read_registry(out_dir / "registry.json")
    registry[name] = entry
    provenance.save_json(out_dir / "registry.json", registry)
    ckpt.unlink(missing_ok=True)
    return entry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zsl_lib.pretraining", description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=TOY_BACKBONES)
    parser.add_argument("--steps", type=int, default=None, help="default: the backbone's recipe")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--out", type=Path, default=cache_dir() / "artifacts")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {k: v for k, v in (("steps", args.steps), ("batch_size", args.batch_size)) if v is not None}
    pretrain(args.name, PretrainConfig.for_backbone(args.name, **overrides), args.out, resume=args.resume,
             log=lambda line: print(line, flush=True))


if __name__ == "__main__":
    main()
