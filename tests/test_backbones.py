"""Toy backbones: timm registration, the shipped weights and their sha256, the pretraining path."""
import shutil

import pytest
import timm
import torch

from zsl_lib import backbones
from zsl_lib.backbones import PretrainConfig, load_or_pretrain, pretrain, sha256_file


def test_registered_with_timm():
    vit = timm.create_model("toy_vit_p8_64", num_classes=0)
    assert vit.forward_features(torch.zeros(2, 3, 64, 64)).shape == (2, 1 + 64, 192)   # (B, 1 + N, D)
    cnn = timm.create_model("toy_resnet_64", features_only=True, out_indices=(1, 2, 3, 4))
    maps = cnn(torch.zeros(2, 3, 64, 64))
    assert [m.shape[1:] for m in maps] == [(32, 16, 16), (64, 8, 8), (128, 4, 4), (256, 2, 2)]


@pytest.mark.parametrize("name", ["toy_vit_p8_64", "toy_resnet_64"])
def test_shipped_weights_match_registry(name):
    path, entry = backbones.artifact_path(name)
    assert path.parent == backbones.ARTIFACTS, "the weights must ship with the library"
    assert sha256_file(path) == entry["sha256"]
    assert path.stat().st_size <= 10 * 2**20
    assert entry["command"].startswith(f"python -m zsl_lib.backbones pretrain {name}")
    # pretraining learned the pretext task: far above chance on held-out scenes
    # (chance: joint 1/256, shape 1/8, colour 1/8, texture 1/4)
    m = entry["metrics"]
    assert m["acc_joint"] > 10 / 256 and m["acc_shape"] > 1.5 / 8
    assert m["acc_color"] > 4 / 8 and m["acc_texture"] > 2 / 4


@pytest.mark.parametrize("name", ["toy_vit_p8_64", "toy_resnet_64"])
def test_load_gives_the_stored_weights_in_eval_mode(name):
    model = load_or_pretrain(name)
    assert not model.training
    path, _ = backbones.artifact_path(name)
    stored = torch.load(path, weights_only=True)
    for k, v in model.state_dict().items():
        assert torch.equal(v, stored[k].float() if stored[k].is_floating_point() else stored[k]), k
    assert any(not torch.equal(v, w) for v, w in zip(model.state_dict().values(),
                                                     backbones.random_init(name).state_dict().values()))


def test_damaged_file_is_refused(tmp_path, monkeypatch):
    for f in ("registry.json", "toy_resnet_64.pt"):
        shutil.copy(backbones.ARTIFACTS / f, tmp_path / f)
    with open(tmp_path / "toy_resnet_64.pt", "r+b") as f:
        f.seek(2000)
        f.write(b"\x00\x01\x02\x03")
    monkeypatch.setattr(backbones, "ARTIFACTS", tmp_path)
    with pytest.raises(RuntimeError, match="damaged. Delete it and run `python -m zsl_lib.backbones pretrain"):
        load_or_pretrain("toy_resnet_64")


def test_unknown_name_is_named():
    with pytest.raises(ValueError, match="unknown toy backbone 'vit_base'"):
        load_or_pretrain("vit_base")


@pytest.mark.parametrize("name", ["toy_vit_p8_64", "toy_resnet_64"])
def test_pretraining_code_path(tmp_path, name):
    """A few steps of the real loop: weights, sha256 and a registry entry with provenance are written."""
    logs = []
    cfg = PretrainConfig(steps=3, batch_size=16, warmup_steps=1, eval_images=32, log_every=1)
    entry = pretrain(name, cfg, tmp_path, log=logs.append)
    assert (tmp_path / f"{name}.pt").exists() and entry["sha256"] == sha256_file(tmp_path / f"{name}.pt")
    assert entry["config"]["steps"] == 3 and "git_sha" in entry and "environment" in entry
    assert len([line for line in logs if " step " in line]) == 3
    assert set(entry["metrics"]) == {"acc_joint", "acc_shape", "acc_color", "acc_texture", "final_loss"}
    assert backbones._read_registry(tmp_path / "registry.json")[name]["sha256"] == entry["sha256"]


@pytest.mark.parametrize("name", ["toy_vit_p8_64", "toy_resnet_64"])
def test_pretraining_objective_can_be_learned(name):
    """The heads and loss of the recipe fit a fixed batch of scenes: the loss falls by half."""
    torch.manual_seed(0)
    stream = iter(backbones.ShapesStream(seed=3, image_size=64))
    images, labels = map(torch.stack, zip(*[next(stream) for _ in range(16)]))
    model = backbones.PretrainHeads(timm.create_model(name, num_classes=0))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(25):
        loss = backbones.pretrain_loss(model(backbones.to_input(images)), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_missing_weights_are_pretrained_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSL_CACHE", str(tmp_path))
    monkeypatch.setattr(backbones, "ARTIFACTS", tmp_path / "nothing_shipped")
    model = load_or_pretrain("toy_resnet_64", pretrain_steps=2, log=lambda *_: None)
    assert (tmp_path / "artifacts" / "toy_resnet_64.pt").exists() and not model.training
