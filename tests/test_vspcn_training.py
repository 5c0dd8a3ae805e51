"""A short VSPCN run on ToyBirds learns, and the training loop guards its inputs."""
import numpy as np
import pytest
import torch

from zsl_lib import evaluate
from zsl_lib.train import TrainConfig, train
from zsl_lib.vspcn import preset
from zsl_lib.vspcn.experiment import build as build_vspcn


def build(world):
    return build_vspcn(world, preset("paper_default"), world.seen_classes, seed=0)


def test_short_run_lowers_the_loss_and_beats_chance(smoke_world):
    model = build(smoke_world)
    frozen = {k: v.clone() for k, v in model.vit.state_dict().items() if k not in ("cls_token", "pos_embed")}
    tv = smoke_world.splits["trainval"]
    history = train(model, smoke_world.images[tv], smoke_world.labels[tv],
                    TrainConfig(steps=60, batch_size=32, device="cpu"), log=lambda *_: None)
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
              log=lambda *_: None)


def test_labels_outside_the_seen_classes_are_refused(smoke_world):
    model = build(smoke_world)
    unseen = smoke_world.splits["test_unseen"][:4]
    with pytest.raises(ValueError, match="not the model's seen classes"):
        train(model, smoke_world.images[unseen], smoke_world.labels[unseen], TrainConfig(steps=1, device="cpu"))
