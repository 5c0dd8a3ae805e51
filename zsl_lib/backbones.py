"""Backbones: toy-pretrained timm models for CPU chapters, real timm models for `MODE="full"`.

Two small timm architectures are registered with timm, so `timm.create_model` builds
them like any other model (`features_only=True` included):

* `toy_vit_p8_64`: a VisionTransformer for 64 px images, patch 8 (64 tokens), width 192,
  depth 6, 3 heads.
* `toy_resnet_64`: a ResNet-18 layout at a quarter of the width (32-256 channels), four
  stages.

`load_or_pretrain(name)` returns one of them with weights pretrained on ToyShapes. The
weights ship with the library (fp16, with their sha256 in `artifacts/registry.json`);
when a file is missing it is pretrained once on the CPU into the cache folder. The
reproducing command is

    python -m zsl_lib.backbones pretrain toy_vit_p8_64 --out zsl_lib/artifacts
"""
from __future__ import annotations

import argparse
import hashlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.models import generate_default_cfgs, register_model
from timm.models.resnet import BasicBlock, _create_resnet
from timm.models.vision_transformer import _create_vision_transformer

from . import provenance
from .pixels import TOY
from .runtime import atomic_open, cache_dir, warmup_cosine
from .toyworld import shapes

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
REGISTRY = ARTIFACTS / "registry.json"
# Inputs are uint8 images scaled to [0, 1] and normalised with these.
TOY_MEAN, TOY_STD = TOY.mean, TOY.std
# timm reads this module-level name when the models below are registered.
default_cfgs = generate_default_cfgs({
    name: {"input_size": (3, 64, 64), "mean": TOY_MEAN, "std": TOY_STD, "num_classes": 0,
           "license": "same as this repository", "first_conv": first_conv, "classifier": classifier}
    for name, first_conv, classifier in (("toy_vit_p8_64", "patch_embed.proj", "head"),
                                         ("toy_resnet_64", "conv1", "fc"))
})


@register_model
def toy_vit_p8_64(pretrained: bool = False, **kwargs) -> nn.Module:
    """ViT for 64 px toy images: patch 8, width 192, depth 6, 3 heads (about 2.7 M parameters)."""
    args = dict(img_size=64, patch_size=8, embed_dim=192, depth=6, num_heads=3)
    return _create_vision_transformer("toy_vit_p8_64", pretrained=False, **dict(args, **kwargs))


@register_model
def toy_resnet_64(pretrained: bool = False, **kwargs) -> nn.Module:
    """ResNet-18 layout at quarter width (stages of 32, 64, 128, 256 channels), for 64 px images."""
    args = dict(block=BasicBlock, layers=(2, 2, 2, 2), channels=(32, 64, 128, 256), stem_width=32)
    return _create_resnet("toy_resnet_64", pretrained=False, **dict(args, **kwargs))


@dataclass
class PretrainConfig:
    """ToyShapes pretraining recipe (softmax over shape x colour x texture + factorised heads)."""
    steps: int = 600
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 30
    label_smoothing: float = 0.1
    image_size: int = 64
    seed: int = 0
    eval_images: int = 1024
    log_every: int = 25


class ShapesStream(torch.utils.data.IterableDataset):
    """An endless stream of freshly rendered ToyShapes scenes; scene i is fixed by (seed, i)."""

    def __init__(self, seed: int, image_size: int, start: int = 0, stop: int | None = None):
        self.seed, self.image_size, self.start, self.stop = seed, image_size, start, stop

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        i = self.start + wid
        while self.stop is None or i < self.stop:
            image, labels = shapes.render_scene(np.random.default_rng([self.seed, i]), self.image_size)
            yield torch.from_numpy(image), torch.tensor([labels[k] for k in ("joint", "shape", "color", "texture")])
            i += nw


# (B, H, W, 3) uint8 -> (B, 3, H, W) float, normalised as the toy backbones expect.
to_input = TOY


def batch_to_input(images: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 images (B, H, W, 3), in memory or memory-mapped -> normalised (B, 3, H, W) on `device`."""
    return to_input(torch.from_numpy(np.array(images)).to(device))


class PretrainHeads(nn.Module):
    """A backbone with four linear heads: joint (256), shape (8), colour (8), texture (4)."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        dim = backbone.num_features
        sizes = (shapes.NUM_CLASSES, len(shapes.SHAPES), len(shapes.COLORS), len(shapes.TEXTURES))
        self.heads = nn.ModuleList(nn.Linear(dim, n) for n in sizes)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        z = self.backbone(x)  # (B, D) pooled features
        return [head(z) for head in self.heads]


def pretrain_loss(logits: list[torch.Tensor], labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy of the joint head plus half of each factorised head's. labels: (B, 4)."""
    weights = (1.0, 0.5, 0.5, 0.5)
    return sum(w * F.cross_entropy(lg, labels[:, k], label_smoothing=label_smoothing)
               for k, (w, lg) in enumerate(zip(weights, logits)))


def pretrain(name: str, cfg: PretrainConfig, out_dir: Path, log=print) -> dict:
    """Pretrain `name` on ToyShapes, write `<name>.pt` (fp16 state dict) into out_dir, register it."""
    torch.manual_seed(cfg.seed)
    sha = provenance.git_sha()
    model = PretrainHeads(timm.create_model(name, num_classes=0))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, cfg.warmup_steps, cfg.steps))
    loader = torch.utils.data.DataLoader(ShapesStream(cfg.seed, cfg.image_size), batch_size=cfg.batch_size,
                                         num_workers=1, persistent_workers=True)
    start, losses = time.time(), []
    model.train()
    for step, (images, labels) in enumerate(loader):
        if step == cfg.steps:
            break
        loss = pretrain_loss(model(to_input(images)), labels, cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            log(f"{name} step {step}/{cfg.steps} loss {np.mean(losses[-cfg.log_every:]):.3f} "
                f"({time.time() - start:.0f} s)")
    metrics = evaluate_pretraining(model, cfg)
    metrics["final_loss"] = round(float(np.mean(losses[-25:])), 4)
    wall = time.time() - start
    log(f"{name}: held-out accuracy {metrics} in {wall:.0f} s")
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.backbone.state_dict().items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.pt"
    with atomic_open(path, "wb") as f:
        torch.save(state, f)
    entry = provenance.run_record(f"pretrain {name}", asdict(cfg), [cfg.seed], metrics, wall, sha)
    out_arg = "zsl_lib/artifacts" if out_dir.resolve() == ARTIFACTS else str(out_dir)
    entry.update(file=path.name, sha256=sha256_file(path),
                 command=f"python -m zsl_lib.backbones pretrain {name} --steps {cfg.steps} --out {out_arg}")
    registry = _read_registry(out_dir / "registry.json")
    registry[name] = entry
    provenance.save_json(out_dir / "registry.json", registry)
    return entry


@torch.no_grad()
def evaluate_pretraining(model: PretrainHeads, cfg: PretrainConfig) -> dict[str, float]:
    """Accuracy of each head on held-out scenes (a seed the training stream never uses)."""
    model.eval()
    loader = torch.utils.data.DataLoader(ShapesStream(cfg.seed + 10_000, cfg.image_size, 0, cfg.eval_images),
                                         batch_size=256)
    correct, total = np.zeros(4), 0
    for images, labels in loader:
        logits = model(to_input(images))
        correct += [(lg.argmax(1) == labels[:, k]).sum().item() for k, lg in enumerate(logits)]
        total += len(labels)
    return {f"acc_{k}": round(float(c) / total, 4) for k, c in zip(("joint", "shape", "color", "texture"), correct)}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_registry(path: Path) -> dict:
    return provenance.load_json(path) if path.exists() else {}


def artifact_path(name: str) -> tuple[Path, dict] | None:
    """Where the weights of `name` are, and their registry entry: shipped first, then the cache."""
    for folder in (ARTIFACTS, cache_dir() / "artifacts"):
        entry = _read_registry(folder / "registry.json").get(name)
        if entry is not None and (folder / entry["file"]).exists():
            return folder / entry["file"], entry
    return None


def load_or_pretrain(name: str, pretrain_steps: int | None = None, log=print) -> nn.Module:
    """A toy backbone with its ToyShapes weights, frozen-ready in eval mode, with `num_classes=0`.

    Looks for the shipped weights, then the cache; pretrains into the cache only if
    neither has them (20-30 CPU minutes at the default recipe). The file's sha256 must
    match the registry, so a damaged download or a half-written file is never used.
    """
    if name not in ("toy_vit_p8_64", "toy_resnet_64"):
        raise ValueError(f"unknown toy backbone {name!r}; choose 'toy_vit_p8_64' or 'toy_resnet_64' "
                         "(real backbones come from timm.create_model(..., pretrained=True))")
    found = artifact_path(name)
    if found is None:
        log(f"no stored weights for {name}: pretraining on ToyShapes into {cache_dir() / 'artifacts'}")
        cfg = PretrainConfig(**({} if pretrain_steps is None else {"steps": pretrain_steps}))
        pretrain(name, cfg, cache_dir() / "artifacts", log=log)
        found = artifact_path(name)
    path, entry = found
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise RuntimeError(f"{path} has sha256 {digest[:12]}..., the registry says {entry['sha256'][:12]}...: "
                           f"the file is damaged. Delete it and run `{entry['command']}` to rebuild it.")
    model = timm.create_model(name, num_classes=0)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.eval()


def random_init(name: str, seed: int = 0) -> nn.Module:
    """The same architecture with random weights: the control that shows pretraining matters."""
    torch.manual_seed(seed)
    return timm.create_model(name, num_classes=0).eval()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zsl_lib.backbones")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pretrain", help="pretrain a toy backbone on ToyShapes")
    p.add_argument("name", choices=["toy_vit_p8_64", "toy_resnet_64"])
    p.add_argument("--steps", type=int, default=PretrainConfig.steps)
    p.add_argument("--batch-size", type=int, default=PretrainConfig.batch_size)
    p.add_argument("--out", type=Path, default=cache_dir() / "artifacts")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    pretrain(args.name, PretrainConfig(steps=args.steps, batch_size=args.batch_size), args.out)


if __name__ == "__main__":
    main()
