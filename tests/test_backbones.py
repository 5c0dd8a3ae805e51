"""Toy backbones: timm registration, the shipped ToyNet weights and their sha256, the pretraining path."""
import shutil

import pytest
import timm
import torch

from zsl_lib import backbones, pretraining
from zsl_lib.backbones import TOY_BACKBONES, load_or_pretrain, sha256_file
from zsl_lib.pretraining import PretrainConfig, pretrain
from zsl_lib.toyworld import toynet


def test_registered_with_timm():
    vit = timm.create_model("toy_vit_hybrid_64", num_classes=0)
    assert vit.forward_features(torch.zeros(2, 3, 64, 64)).shape == (2, 1 + 64, 192)   # (B, 1 + N, D)
    assert vit.patch_embed.num_patches == 64 and vit.patch_embed.grid_size == (8, 8)
    cnn = timm.create_model("toy_resnet_nopool_64", features_only=True, out_indices=(1, 2, 3, 4))
    maps = cnn(torch.zeros(2, 3, 64, 64))
    # no stem max-pool: the last stage keeps a 4 x 4 grid, and feature_info says so
    assert [m.shape[1:] for m in maps] == [(32, 32, 32), (64, 16, 16), (128, 8, 8), (256, 4, 4)]
    assert cnn.feature_info.reduction() == [2, 4, 8, 16]


def test_hybrid_trunk_is_the_resnets_third_stage_and_stays_frozen():
    torch.manual_seed(0)
    cnn = timm.create_model("toy_resnet_nopool_64", num_classes=0)
    for m in cnn.modules():                              # non-trivial batch-norm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    vit = timm.create_model("toy_vit_hybrid_64", num_classes=0)
    backbones.load_trunk(vit, cnn)
    x = torch.randn(3, 3, 64, 64)
    expected = cnn.eval().forward_intermediates(x, intermediates_only=True)[3]       # layer3, (3, 128, 8, 8)
    vit.train()                                          # a frozen ViT trained with prompts runs in training mode
    torch.testing.assert_close(vit.patch_embed.backbone(x), expected)
    assert not any(p.requires_grad for p in vit.patch_embed.backbone.parameters())
    assert vit.patch_embed.proj.weight.requires_grad and vit.blocks[0].attn.qkv.weight.requires_grad


@pytest.mark.parametrize("name", TOY_BACKBONES)
def test_shipped_weights_match_registry(name):
    path, entry = backbones.artifact_path(name)
    assert path.parent == backbones.ARTIFACTS, "the weights must ship with the library"
    assert sha256_file(path) == entry["sha256"]
    assert path.stat().st_size <= 10 * 2**20
    assert entry["command"].startswith(f"python -m zsl_lib.pretraining {name}")
    assert entry["world"].startswith("ToyNet") and not entry["git_sha"].endswith("-dirty")
    source = backbones.INITIALISED_FROM.get(name)
    if source is not None:                               # built on the ResNet weights that ship beside it
        assert entry["initialised_from"] == {"name": source, "sha256": sha256_file(backbones.artifact_path(source)[0])}
        # ... and its frozen trunk still holds them: the shipped ResNet's stem and first three stages, bit for bit
        trunk, resnet = load_or_pretrain(name).patch_embed.backbone.state_dict(), load_or_pretrain(source).state_dict()
        assert trunk.keys() <= resnet.keys() and all(torch.equal(v, resnet[k]) for k, v in trunk.items())
    # pretraining learned to name ToyNet's 1,000 bird species (chance 0.1 %) and its objects (chance 0.4 %)
    assert entry["metrics"]["acc_birds"] > 0.3 and entry["metrics"]["acc_objects"] > 0.3


@pytest.mark.parametrize("name", TOY_BACKBONES)
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
    for f in ("registry.json", "toy_resnet_nopool_64.pt"):
        shutil.copy(backbones.ARTIFACTS / f, tmp_path / f)
    with open(tmp_path / "toy_resnet_nopool_64.pt", "r+b") as f:
        f.seek(2000)
        f.write(b"\x00\x01\x02\x03")
    monkeypatch.setattr(backbones, "ARTIFACTS", tmp_path)
    with pytest.raises(RuntimeError, match="damaged. Delete it and run `python -m zsl_lib.pretraining"):
        load_or_pretrain("toy_resnet_nopool_64")


def test_unknown_name_is_named():
    with pytest.raises(ValueError, match="unknown toy backbone 'vit_base'"):
        load_or_pretrain("vit_base")


TINY = dict(steps=4, batch_size=8, warmup_steps=1, eval_images=16, log_every=1, checkpoint_every=2, n_species=20)


@pytest.mark.parametrize("name", TOY_BACKBONES)
def test_pretraining_code_path(tmp_path, name):
    """A few steps of the real loop: weights, sha256 and a registry entry with provenance are written."""
    logs = []
    entry = pretrain(name, PretrainConfig(**TINY), tmp_path, log=logs.append)
    assert (tmp_path / f"{name}.pt").exists() and entry["sha256"] == sha256_file(tmp_path / f"{name}.pt")
    assert entry["config"]["steps"] == 4 and "git_sha" in entry and "environment" in entry
    assert len([line for line in logs if " step " in line]) == 4
    assert {"acc_birds", "acc_objects", "final_loss", "loss_curve"} <= set(entry["metrics"])
    assert backbones.read_registry(tmp_path / "registry.json")[name]["sha256"] == entry["sha256"]
    assert "--steps 4 --batch-size 8" in entry["command"]
    assert not list(tmp_path.glob(".*.ckpt")), "the resume checkpoint is removed once the weights are stored"


@pytest.mark.parametrize("name", TOY_BACKBONES)
def test_interrupted_pretraining_resumes_exactly(tmp_path, name):
    """Stop after the step-2 checkpoint, resume: the stored weights equal an uninterrupted run's."""
    cfg = PretrainConfig(**TINY)
    pretrain(name, cfg, tmp_path / "whole", log=lambda *_: None)

    class Stop(Exception):
        pass

    def stop_at_step_3(line):
        if " step 3/" in line:
            raise Stop
    with pytest.raises(Stop):
        pretrain(name, cfg, tmp_path / "parts", log=stop_at_step_3)
    assert (tmp_path / "parts" / f".{name}.pretraining.ckpt").exists()
    logs = []
    pretrain(name, cfg, tmp_path / "parts", resume=True, log=logs.append)
    assert logs[0] == f"resumed {name} at step 2"
    whole = torch.load(tmp_path / "whole" / f"{name}.pt", weights_only=True)
    parts = torch.load(tmp_path / "parts" / f"{name}.pt", weights_only=True)
    assert all(torch.equal(whole[k], parts[k]) for k in whole)


def test_no_pretraining_work_is_lost_by_mistake(tmp_path):
    name = "toy_resnet_nopool_64"
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        pretrain(name, PretrainConfig(**TINY), tmp_path, resume=True)

    def stop(line):
        if " step 3/" in line:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        pretrain(name, PretrainConfig(**TINY), tmp_path, log=stop)
    with pytest.raises(FileExistsError, match="holds an unfinished pretraining .* --resume"):
        pretrain(name, PretrainConfig(**TINY), tmp_path)
    with pytest.raises(ValueError, match="written by another recipe"):
        pretrain(name, PretrainConfig(**(TINY | {"lr": 5e-4})), tmp_path, resume=True)


@pytest.mark.parametrize("name", TOY_BACKBONES)
def test_pretraining_objective_can_be_learned(name):
    """The classifier and loss of the recipe fit a fixed batch of ToyNet scenes: the loss falls by half."""
    torch.manual_seed(0)
    stream = iter(pretraining.ToyNetStream(seed=3, image_size=64, n_species=toynet.N_BIRD_SPECIES))
    images, labels = map(torch.stack, zip(*[(x, torch.tensor(y)) for x, y in (next(stream) for _ in range(16))]))
    model = pretraining.Classifier(timm.create_model(name, num_classes=0), toynet.num_classes())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(25):
        loss = torch.nn.functional.cross_entropy(model(backbones.to_input(images)), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_missing_weights_are_pretrained_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSL_CACHE", str(tmp_path))
    monkeypatch.setattr(backbones, "ARTIFACTS", tmp_path / "nothing_shipped")
    monkeypatch.setenv("ZSL_ALLOW_PRETRAIN", "0")
    with pytest.raises(FileNotFoundError, match="ZSL_ALLOW_PRETRAIN=0 forbids .*`python -m zsl_lib.pretraining"):
        load_or_pretrain("toy_resnet_nopool_64", pretrain_steps=2, log=lambda *_: None)
    monkeypatch.setenv("ZSL_ALLOW_PRETRAIN", "1")
    model = load_or_pretrain("toy_resnet_nopool_64", pretrain_steps=2, log=lambda *_: None)
    assert (tmp_path / "artifacts" / "toy_resnet_nopool_64.pt").exists() and not model.training
