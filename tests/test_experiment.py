"""The leakage-free protocol of zsl_lib.experiment: its validation learning curve, one forward pass per split, and the table of runs over worlds."""
import numpy as np
import pytest
import torch

from zsl_lib import evaluate, experiment, provenance
from zsl_lib.train import TrainConfig


class PixelReader(torch.nn.Module):
    """A tiny stand-in model: pooled pixels -> attributes -> dot product with every class vector."""

    def __init__(self, class_attributes, seen_classes):
        super().__init__()
        self.read = torch.nn.Linear(3 * 16, class_attributes.shape[1])
        self.register_buffer("class_attributes", torch.tensor(class_attributes))
        self.register_buffer("seen_classes", torch.as_tensor(seen_classes))

    def forward(self, x):
        z = self.read(torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1))   # (B, A)
        return z @ self.class_attributes.T                                          # (B, C)

    def training_losses(self, x, labels):
        total = torch.nn.functional.cross_entropy(self(x)[:, self.seen_classes], labels)
        return {"total": total}


def test_run_records_a_validation_curve_and_scores_each_split_once(smoke_world, monkeypatch):
    calls = []
    real = evaluate.class_scores
    def counted(model, images, *args, **kwargs):            # the number of images a call scores
        calls.append(len(images) if kwargs.get("indices") is None else len(kwargs["indices"]))
        return real(model, images, *args, **kwargs)

    monkeypatch.setattr(evaluate, "class_scores", counted)
    cfg = TrainConfig(steps=150, batch_size=32, lr=1e-2, device="cpu", log_every=1000)
    protocol_run = experiment.run(smoke_world, lambda seen: PixelReader(smoke_world.class_attributes, seen), cfg,
                                  log=lambda *_: None, own_calibration="stacking")
    # smoke world: 780 `train` images, 24 batches of 32 an epoch; the validation run makes
    # round(150 * 780 / 1200) = 98 steps, so four epochs end, after 24, 48, 72 and 96 steps
    curve = protocol_run.validation_curve
    assert [(p["epoch"], p["step"]) for p in curve] == [(1, 24), (2, 48), (3, 72), (4, 96)]
    assert all(0 <= p["H_val"] <= 1 for p in curve)
    # the curve's points and the chosen gammas score the validation images; the final model the test images once
    n_val = len(smoke_world.protocol("val")[0])            # 420 images (val_seen + val_unseen)
    n_test = len(smoke_world.protocol("test")[0])
    assert calls == [n_val] * (len(curve) + 1) + [n_test]
    assert {"T1", "H", "stacking_H", "stacking_gamma"} <= set(protocol_run.metrics)
    assert all(isinstance(v, (float, np.floating)) for v in protocol_run.metrics.values())   # numbers only
    assert set(protocol_run.phase_seconds) == {"validation", "final"} and min(protocol_run.phase_seconds.values()) > 0
    stored = experiment.stored_metrics(protocol_run)
    for name, ausuc in (("zscore_stacking", stored["AUSUC"]), ("stacking", stored["stacking_AUSUC"])):
        points = stored["seen_unseen"][name]
        assert points["U"][0] == 0 and points["S"][-1] == 0 and np.all(np.diff(points["gamma"]) > 0)
        # the stored points trace the exact curve: their area is the stored AUSUC up to the thinning
        assert np.trapezoid(points["S"], points["U"]) / 100 == pytest.approx(ausuc, abs=1.0)


def test_command_line_stores_a_run_with_provenance_and_a_curve_only_record(smoke_world, tmp_path):
    from dataclasses import dataclass

    from zsl_lib import families, provenance
    from zsl_lib.pixels import TOY

    @dataclass(frozen=True)
    class Options:
        name: str = "default"

    class FamilyPixelReader(PixelReader):                  # the model signature of a family: backbone unused
        def __init__(self, backbone, word_vectors, class_attributes, seen_classes, cfg):
            super().__init__(class_attributes.numpy(), seen_classes)

    recipe = dict(steps=60, batch_size=32, lr=1e-2, device="cpu", log_every=1000)
    family = families.Family("pixel", FamilyPixelReader, {"default": Options()}, "default", "toy_resnet_nopool_64",
                             recipe, {}, "stacking", families.RealInput(64, TOY, "none"))
    args = ["--mode", "smoke", "--seed", "0", "--out"]
    experiment.main(family, args + [str(tmp_path / "run.json")])
    record = provenance.load_json(tmp_path / "run.json")
    assert record["config"]["train"]["steps"] == 60 and record["config"]["validation_steps"] == 39
    assert record["config"]["model"] == {"name": "default"} and record["seeds"] == [0]
    assert [p["epoch"] for p in record["metrics"]["validation_curve"]] == [1]          # 39 steps of 24 an epoch
    assert (tmp_path / "run.pt").exists() and record["state_sha256"]
    experiment.main(family, args + [str(tmp_path / "curve.json"), "--curve-only", "--steps", "120"])
    curve = provenance.load_json(tmp_path / "curve.json")
    assert curve["name"] == "pixel_smoke_curve" and not (tmp_path / "curve.pt").exists()
    assert set(curve["metrics"]) == {"validation_curve"}
    assert [p["epoch"] for p in curve["metrics"]["validation_curve"]] == [1, 2, 3]      # 78 steps
    assert [p["step"] for p in curve["metrics"]["validation_curve"]] == [24, 48, 72]


def test_the_curve_does_not_change_the_validation_model(smoke_world):
    """Evaluating at every epoch end must leave the training untouched: same weights as without it."""
    cfg = TrainConfig(steps=100, batch_size=32, lr=1e-2, device="cpu", log_every=1000)

    def build(seen):
        torch.manual_seed(0)
        return PixelReader(smoke_world.class_attributes, seen)
    with_curve, curve = experiment.validation_run(smoke_world, build, cfg, log=lambda *_: None)
    without = build(smoke_world.trainclasses1)
    sp = smoke_world.splits
    from zsl_lib.train import train
    train(without, smoke_world.images[sp["train"]], smoke_world.labels[sp["train"]],
          experiment.validation_schedule(smoke_world, cfg), log=lambda *_: None, normalize=smoke_world.normalize)
    assert len(curve) == 2
    for (name, a), b in zip(with_curve.state_dict().items(), without.state_dict().values()):
        assert torch.equal(a, b), name


def test_compare_over_worlds_pairs_each_world_with_its_probe_row():
    probe = {"seeds": [0, 1, 2], "git_sha": "0123456789", "metrics": {"per_seed": {"pretrained_cnn": [
        {"T1": 40.0, "S_uncal": 50.0, "H": 30.0, "AUSUC": 20.0},
        {"T1": 44.0, "S_uncal": 52.0, "H": 34.0, "AUSUC": 22.0},
        {"T1": 42.0, "S_uncal": 54.0, "H": 32.0, "AUSUC": 24.0}]}}}
    runs = {seed: {"git_sha": "abcdef0123", "wall_time_s": 400.0, "config": {"train": {"steps": 450}},
                   "metrics": {"T1": 50.0 + seed, "S_uncal": 70.0, "H": 40.0 + 2 * seed, "AUSUC": 30.0}}
            for seed in (2, 0)}
    text, values = experiment.compare_over_worlds(probe, "pretrained_cnn", runs, "Mg-MRN")
    assert values.shape == (2, 4, 2)
    np.testing.assert_allclose(values[0], [[42, 52], [54, 70], [32, 44], [24, 30]])   # world 2 first, as given
    np.testing.assert_allclose(values[1], [[40, 50], [50, 70], [30, 40], [20, 30]])
    # H: model mean 42, probe mean 31 with sd sqrt(2): margin 11 / 1.414 = 7.8 sd
    assert "+7.8 sd" in text.splitlines()[-2] and "git abcdef0, 450 steps" in text
    with pytest.raises(ValueError, match="two worlds or more"):
        experiment.compare_over_worlds(probe, "pretrained_cnn", {0: runs[0]}, "Mg-MRN")


def test_stored_book_runs_names_world_0_plainly_and_checks_each_world(tmp_path):
    for world, name in ((0, "run.json"), (1, "run_seed1.json"), (2, "run_seed2.json")):
        provenance.save_json(tmp_path / name, {"config": {"world": {"seed": world}}, "metrics": {"H": 10.0 * world}})
    runs = experiment.stored_book_runs("run", (0, 1, 2), tmp_path)
    assert list(runs) == [0, 1, 2] and [r["metrics"]["H"] for r in runs.values()] == [0.0, 10.0, 20.0]
    assert experiment.book_run_path("run", 2, tmp_path) == tmp_path / "run_seed2.json"
    provenance.save_json(tmp_path / "run_seed1.json", {"config": {"world": {"seed": 0}}, "metrics": {}})
    with pytest.raises(ValueError, match="run_seed1.json holds a run on world 0, not 1"):
        experiment.stored_book_runs("run", (0, 1), tmp_path)
    with pytest.raises(FileNotFoundError, match="run_seed3.json"):
        experiment.stored_book_runs("run", (3,), tmp_path)
