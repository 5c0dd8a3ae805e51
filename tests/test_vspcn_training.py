"""A short VSPCN run on ToyBirds learns, and the training loop guards its inputs."""
import numpy as np
import pytest
import torch

from dataclasses import asdict

from zsl_lib import checkpoint, evaluate, metrics
from zsl_lib.backbones import batch_to_input
from zsl_lib.train import TrainConfig, train
from zsl_lib.vspcn import preset, table2_row
from zsl_lib.vspcn.experiment import build as build_vspcn
from zsl_lib.experiment import save_state
from zsl_lib.vspcn.experiment import load_trained


def build(world):
    return build_vspcn(world, preset("paper_default"), world.seen_classes, seed=0)


def test_short_run_lowers_the_loss_and_beats_chance(smoke_world):
    model = build(smoke_world)
    frozen = {k: v.clone() for k, v in model.vit.state_dict().items() if k not in ("cls_token", "pos_embed")}
    tv = smoke_world.splits["trainval"]
    history = train(model, smoke_world.images[tv], smoke_world.labels[tv],
                    TrainConfig(steps=60, batch_size=32, device="cpu"), log=lambda *_: None,
                    normalize=smoke_world.normalize)
    first, last = np.mean([h["total"] for h in history[:5]]), np.mean([h["total"] for h in history[-5:]])
    assert last < first - 0.3
    report = evaluate.evaluate(model, smoke_world, gamma=0.0, name="eq19", device="cpu")
    assert report["T1"] > 2 / len(smoke_world.unseen_classes)
    for k, v in model.vit.state_dict().items():
        if k in frozen:
            assert torch.equal(v, frozen[k]), k


def test_non_finite_loss_names_step_and_term(smoke_world, monkeypatch):
    model = build(smoke_world)
    real = model.training_losses

    def poisoned(x, y):
        terms = real(x, y)
        terms["skd"] = terms["skd"] * float("nan")
        return terms

    monkeypatch.setattr(model, "training_losses", poisoned)
    tv = smoke_world.splits["trainval"]
    with pytest.raises(FloatingPointError, match=r"step 0: loss term\(s\) \['skd'\] are not finite"):
        train(model, smoke_world.images[tv], smoke_world.labels[tv], TrainConfig(steps=2, device="cpu"),
              log=lambda *_: None, normalize=smoke_world.normalize)


def test_labels_outside_the_seen_classes_are_refused(smoke_world):
    model = build(smoke_world)
    unseen = smoke_world.splits["test_unseen"][:4]
    with pytest.raises(ValueError, match="not the model's seen classes"):
        train(model, smoke_world.images[unseen], smoke_world.labels[unseen], TrainConfig(steps=1, device="cpu"),
              normalize=smoke_world.normalize)


def test_stored_state_reloads_the_same_model_and_refuses_others(smoke_world, tmp_path):
    model = build(smoke_world)
    with torch.no_grad():                                        # stand-in for training
        for p in model.trainable_parameters().values():
            p.add_(0.01 * torch.randn_like(p))
    path = tmp_path / "run.pt"
    record = {"config": {"world": asdict(smoke_world.config), "preset": "paper_default", "train": {"seed": 0}},
              "state_sha256": save_state(model, path)}
    loaded, world = load_trained(record, path)
    x = batch_to_input(smoke_world.images[:3])
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model.eval()(x))
    assert np.array_equal(world.labels, smoke_world.labels)

    other = build_vspcn(smoke_world, table2_row(4), smoke_world.seen_classes)
    with pytest.raises(ValueError, match="does not fit this model"):
        checkpoint.load_trainable_state(other, torch.load(path, weights_only=True), str(path))
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(RuntimeError, match="does not match the sha256"):
        load_trained(record, path)


def test_named_calibrations(smoke_world):
    model = build(smoke_world)
    idx, candidates, seen = smoke_world.protocol("test")
    scores = evaluate.class_scores(model, smoke_world.images[idx], device="cpu",
                                   normalize=smoke_world.normalize)[:, candidates]
    labels, seen_cols = metrics.columns(candidates, smoke_world.labels[idx], seen)
    for name, transform, form in (("eq19", lambda s: s, "softmax_add_unseen"),
                                  ("zscore_stacking", metrics.standardize_rows, "subtract_seen")):
        report = evaluate.evaluate(model, smoke_world, 0.3, name, device="cpu")
        expected = metrics.gzsl(transform(scores), labels, seen_cols, 0.3, form)
        assert (report["U"], report["S"], report["H"]) == pytest.approx((expected.U, expected.S, expected.H))
    with pytest.raises(ValueError, match="unknown calibration 'softmax'"):
        evaluate.evaluate(model, smoke_world, 0.0, "softmax", device="cpu")


def test_validation_run_matches_the_final_runs_epochs(smoke_world):
    from zsl_lib.experiment import validation_schedule
    cfg = TrainConfig(steps=300, batch_size=32)
    val = validation_schedule(smoke_world, cfg)
    sp = smoke_world.splits
    assert val.steps * 32 / len(sp["train"]) == pytest.approx(300 * 32 / len(sp["trainval"]), rel=0.01)
    assert val.batch_size == 32 and val.lr == cfg.lr
