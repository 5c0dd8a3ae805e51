"""Backbones: toy-pretrained timm models for CPU chapters, real timm models for `MODE="full"`.

Two small timm architectures are registered with timm, so `timm.create_model` builds
them like any other model (`features_only=True` included):

* `toy_vit_convstem_64`: a VisionTransformer for 64 px images whose patch embedding is a
  small convolutional stem (three stride-2 3x3 convolutions, then a 1x1 projection)
  instead of one 8x8 linear projection: still an 8 x 8 grid of 64 tokens, width 192, depth
  6, 3 heads, but each token is built from overlapping 3x3 views of the pixels, which
  lets a small ViT trained on little data see parts a few pixels wide (Xiao et al.,
  "Early convolutions help transformers see better", 2021).
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
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn as nn
from timm.layers import PatchEmbed
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.resnet import BasicBlock, ResNet
from timm.models.vision_transformer import _create_vision_transformer

from . import provenance
from .pixels import TOY
from .runtime import cache_dir

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
REGISTRY = ARTIFACTS / "registry.json"
TOY_BACKBONES = ("toy_vit_convstem_64", "toy_resnet_nopool_64")
# Inputs are uint8 images scaled to [0, 1] and normalised with these.
TOY_MEAN, TOY_STD = TOY.mean, TOY.std
# timm reads this module-level name when the models below are registered.
default_cfgs = generate_default_cfgs({
    name: {"input_size": (3, 64, 64), "mean": TOY_MEAN, "std": TOY_STD, "num_classes": 0,
           "license": "same as this repository", "first_conv": first_conv, "classifier": classifier}
    for name, first_conv, classifier in (("toy_vit_convstem_64", "patch_embed.proj.0", "head"),
                                         ("toy_resnet_nopool_64", "conv1", "fc"))
})


class ConvStemPatchEmbed(PatchEmbed):
    """timm's PatchEmbed with `proj` replaced by a convolutional stem of the same total stride.

    3x3 stride-2 convolutions (3 -> 32 -> 64 -> 128 channels, each followed by a GELU) halve
    the image three times for patch size 8; a 1x1 convolution maps to the embedding width.
    No normalisation layer: BatchNorm's running statistics would drift whenever a frozen ViT
    runs in training mode, and a GroupNorm would make every token depend on the whole image.
    (B, 3, H, W) -> (B, N, D), as PatchEmbed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        halvings = int(np.log2(self.patch_size[0]))
        if 2 ** halvings != self.patch_size[0] or self.patch_size[0] != self.patch_size[1]:
            raise ValueError(f"a convolutional stem needs a square power-of-two patch size, got {self.patch_size}")
        widths = [self.proj.in_channels] + [min(32 * 2 ** k, 128) for k in range(halvings)]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.GELU()]
        layers.append(nn.Conv2d(widths[-1], self.proj.out_channels, 1))
        self.proj = nn.Sequential(*layers)


class NoPoolResNet(ResNet):
    """timm's ResNet without the stem's max-pool: every stage works at twice the resolution."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.maxpool = nn.Identity()
        self.feature_info = [dict(info, reduction=info["reduction"] // 2) if info["module"] != "act1" else info
                             for info in self.feature_info]


@register_model
def toy_vit_convstem_64(pretrained: bool = False, **kwargs) -> nn.Module:
    """ViT for 64 px toy images: convolutional stem to an 8 x 8 grid, width 192, depth 6, 3 heads."""
    args = dict(img_size=64, patch_size=8, embed_dim=192, depth=6, num_heads=3, embed_layer=ConvStemPatchEmbed)
    return _create_vision_transformer("toy_vit_convstem_64", pretrained=False, **dict(args, **kwargs))


@register_model
def toy_resnet_nopool_64(pretrained: bool = False, **kwargs) -> nn.Module:
    """ResNet-18 layout at quarter width (32, 64, 128, 256 channels) without the stem max-pool."""
    args = dict(block=BasicBlock, layers=(2, 2, 2, 2), channels=(32, 64, 128, 256), stem_width=32)
    return build_model_with_cfg(NoPoolResNet, "toy_resnet_nopool_64", pretrained=False, **dict(args, **kwargs))


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
    neither has them (about 80 CPU minutes at the default recipe). The file's sha256 must
    match the registry, so a damaged download or a half-written file is never used.
    """
    from .pretraining import PretrainConfig, pretrain
    if name not in TOY_BACKBONES:
        raise ValueError(f"unknown toy backbone {name!r}; choose one of {TOY_BACKBONES} "
                         "(real backbones come from timm.create_model(..., pretrained=True))")
    found = artifact_path(name)
    if found is None:
        log(f"no stored weights for {name}: pretraining on ToyNet into {cache_dir() / 'artifacts'}")
        cfg = PretrainConfig.for_backbone(name, **({} if pretrain_steps is None else {"steps": pretrain_steps}))
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
