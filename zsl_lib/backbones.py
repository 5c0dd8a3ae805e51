"""Backbones: toy-pretrained timm models for CPU chapters, real timm models for `MODE="full"`.

Two small timm architectures are registered with timm, so `timm.create_model` builds
them like any other model (`features_only=True` included):

* `toy_vit_hybrid_64`: a hybrid VisionTransformer for 64 px images, as the ViT paper's
  "R50+ViT" models: its patch embedding is the first three stages of the toy ResNet below
  (pretrained, frozen, batch norms with fixed statistics), whose 8 x 8 map of 128 channels a
  1x1 convolution turns into 64 tokens of width 192, then 6 transformer blocks with 3 heads.
  Why hybrid: in a trial, a ViT of this size with a convolutional stem, trained from scratch
  on ToyNet, was still at its initial loss (7.2) after 300 steps of 128 images, while on top of
  the ResNet's stages the loss fell from 7.3 to 6.3 in 100 steps.
* `toy_resnet_nopool_64`: a ResNet-18 layout at a quarter of the width (32-256 channels)
  without the stem's max-pool, so 64 px images reach the four stages at 32, 16, 8 and 4
  pixels: the last stage keeps a 4 x 4 grid for Mg-MRN's region mining, and the first
  stage sees the bill and the eye ring at half resolution instead of a quarter.

`load_or_pretrain(name)` returns one of them with weights pretrained on ToyNet, the toy
world's ImageNet (`zsl_lib.toyworld.toynet`, `zsl_lib.pretraining`). The weights ship
with the library (fp16, with their sha256 and provenance in `artifacts/registry.json`);
when a file is missing it is pretrained once on the CPU into the cache folder.
"""
from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn as nn
from timm.layers import freeze_batch_norm_2d
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.resnet import BasicBlock, ResNet
from timm.models.vision_transformer import VisionTransformer
from timm.models.vision_transformer_hybrid import _create_vision_transformer_hybrid

from . import provenance
from .pixels import TOY
from .runtime import cache_dir

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
REGISTRY = ARTIFACTS / "registry.json"
TOY_BACKBONES = ("toy_resnet_nopool_64", "toy_vit_hybrid_64")
# A backbone whose pretraining starts from another's weights (the hybrid ViT's trunk is the ResNet's).
INITIALISED_FROM = {"toy_vit_hybrid_64": "toy_resnet_nopool_64"}
# Inputs are uint8 images scaled to [0, 1] and normalised with these.
TOY_MEAN, TOY_STD = TOY.mean, TOY.std
# timm reads this module-level name when the models below are registered.
default_cfgs = generate_default_cfgs({
    name: {"input_size": (3, 64, 64), "mean": TOY_MEAN, "std": TOY_STD, "num_classes": 0,
           "license": "same as this repository", "first_conv": first_conv, "classifier": classifier}
    for name, first_conv, classifier in (("toy_vit_hybrid_64", "patch_embed.backbone.conv1", "head"),
                                         ("toy_resnet_nopool_64", "conv1", "fc"))
})


def resnet_trunk() -> nn.Sequential:
    """The toy ResNet's stem and first three stages (64 px -> (B, 128, 8, 8)), named as in the ResNet
    so its weights load by name, frozen: no parameter trains, and every BatchNorm keeps fixed
    statistics, so the trunk computes the same function in training and evaluation mode."""
    net = NoPoolResNet(**RESNET_ARGS)
    trunk = nn.Sequential(OrderedDict((k, getattr(net, k)) for k in ("conv1", "bn1", "act1", "layer1", "layer2",
                                                                       "layer3")))
    return freeze_batch_norm_2d(trunk).requires_grad_(False)


def load_trunk(vit: VisionTransformer, resnet: nn.Module) -> None:
    """Copy a toy ResNet's weights into a hybrid ViT's (frozen) trunk."""
    trunk = vit.patch_embed.backbone
    state = {k: v for k, v in resnet.state_dict().items() if k.split(".")[0] in dict(trunk.named_children())
             and not k.endswith("num_batches_tracked")}
    trunk.load_state_dict(state)


RESNET_ARGS = dict(block=BasicBlock, layers=(2, 2, 2, 2), channels=(32, 64, 128, 256), stem_width=32)


class NoPoolResNet(ResNet):
    """timm's ResNet without the stem's max-pool: every stage works at twice the resolution."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.maxpool = nn.Identity()
        self.feature_info = [dict(info, reduction=info["reduction"] // 2) if info["module"] != "act1" else info
                             for info in self.feature_info]


@register_model
def toy_vit_hybrid_64(pretrained: bool = False, **kwargs) -> nn.Module:
    """Hybrid ViT for 64 px toy images: toy ResNet trunk -> 8 x 8 tokens of width 192, depth 6, 3 heads."""
    args = dict(img_size=64, patch_size=1, embed_dim=192, depth=6, num_heads=3)
    return _create_vision_transformer_hybrid("toy_vit_hybrid_64", resnet_trunk(), pretrained=False,
                                             **dict(args, **kwargs))


@register_model
def toy_resnet_nopool_64(pretrained: bool = False, **kwargs) -> nn.Module:
    """ResNet-18 layout at quarter width (32, 64, 128, 256 channels) without the stem max-pool."""
    return build_model_with_cfg(NoPoolResNet, "toy_resnet_nopool_64", pretrained=False, **dict(RESNET_ARGS, **kwargs))


# (B, H, W, 3) uint8 -> (B, 3, H, W) float, normalised as the toy backbones expect.
to_input = TOY


def batch_to_input(images: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 images (B, H, W, 3), in memory or memory-mapped -> normalised (B, 3, H, W) on `device`."""
    return to_input(torch.from_numpy(np.array(images)).to(device))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_registry(path: Path) -> dict:
    return provenance.load_json(path) if path.exists() else {}


def artifact_path(name: str) -> tuple[Path, dict] | None:
    """Where the weights of `name` are, and their registry entry: shipped first, then the cache."""
    for folder in (ARTIFACTS, cache_dir() / "artifacts"):
        entry = read_registry(folder / "registry.json").get(name)
        if entry is not None and (folder / entry["file"]).exists():
            return folder / entry["file"], entry
    return None


def load_or_pretrain(name: str, pretrain_steps: int | None = None, log=print) -> nn.Module:
    """A toy backbone with its ToyNet weights, frozen-ready in eval mode, with `num_classes=0`.

    Looks for the shipped weights, then the cache; pretrains into the cache only if
    neither has them (about 80 CPU minutes at the default recipe), unless the environment
    variable ZSL_ALLOW_PRETRAIN is "0" (the test suite sets it, so that missing weights
    fail in a second instead of pretraining for an hour). The file's sha256 must
    match the registry, so a damaged download or a half-written file is never used.
    """
    from .pretraining import PretrainConfig, checkpoint_path, pretrain
    if name not in TOY_BACKBONES:
        raise ValueError(f"unknown toy backbone {name!r}; choose one of {TOY_BACKBONES} "
                         "(real backbones come from timm.create_model(..., pretrained=True))")
    found = artifact_path(name)
    if found is None:
        out = cache_dir() / "artifacts"
        if os.environ.get("ZSL_ALLOW_PRETRAIN", "1") == "0":
            raise FileNotFoundError(f"no stored weights for {name} in {ARTIFACTS} or {out}, and ZSL_ALLOW_PRETRAIN=0 "
                                    "forbids pretraining them here (the test suite sets it). "
                                    f"Run `python -m zsl_lib.pretraining {name} --out zsl_lib/artifacts` first.")
        log(f"no stored weights for {name}: pretraining on ToyNet into {out}")
        cfg = PretrainConfig.for_backbone(name, **({} if pretrain_steps is None else {"steps": pretrain_steps}))
        pretrain(name, cfg, out, resume=checkpoint_path(name, out).exists(), log=log)
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
