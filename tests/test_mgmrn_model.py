"""Mg-MRN assembled: losses against hand computations, shapes, where gradients go, and learning on ToyBirds."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zsl_lib import evaluate
from zsl_lib.backbones import batch_to_input, load_or_pretrain
from zsl_lib.mgmrn.losses import ar_loss, cosine_scores, sce_loss
from zsl_lib.mgmrn.model import MgMRN, MgMRNConfig
from zsl_lib.semantics import attribute_word_vectors
from zsl_lib.train import TrainConfig, train


def build(world, cfg=MgMRNConfig(decoder_hidden=128)):
    torch.manual_seed(0)
    return MgMRN(load_or_pretrain("toy_resnet_64"), torch.tensor(attribute_word_vectors(world.attribute_phrases)),
                 torch.tensor(world.class_attributes), world.seen_classes, cfg)


def test_losses_by_hand():
    z = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    att = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    cos = torch.tensor([[0.6, 0.8, 1.4 / 2 ** 0.5], [1.0, 0.0, 1 / 2 ** 0.5]])   # e.g. (3, 4).(1, 1) / (5 sqrt 2)
    torch.testing.assert_close(cosine_scores(z, att, kappa=20.0), 20 * cos)
    labels = torch.tensor([1, 0])
    by_hand = -(torch.log_softmax(20 * cos, dim=1)[[0, 1], labels]).mean()
    torch.testing.assert_close(sce_loss(z, labels, att, 20.0), by_hand)
    # ||(0.6, 0.8) - (0, 1)||^2 = 0.4 and ||(1, 0) - (1, 0)||^2 = 0, averaged over 2 images x 2 attributes
    torch.testing.assert_close(ar_loss(z, att[labels]), torch.tensor(0.1))


@pytest.mark.parametrize("cfg", [MgMRNConfig(decoder_hidden=64), MgMRNConfig(decoder_hidden=64, num_levels=2),
                                 MgMRNConfig(decoder_hidden=64, mrm="off", rfm_mode="none"),
                                 MgMRNConfig(decoder_hidden=64, mrm="concat_only", vsd_head="free", vsd_scaled=False)])
def test_shapes(smoke_world, cfg):
    model = build(smoke_world, cfg)
    x = batch_to_input(smoke_world.images[:3])
    z = model.forward_features(x)
    assert len(z) == cfg.num_levels and all(zl.shape == (3, 42) for zl in z)
    assert model(x).shape == (3, 100)
    memory = [d.last_attention.shape[-1] for d in model.decoders]        # tokens each decoder attended over
    grid = 4                                                               # the toy ResNet's last stage: 2 x 2
    assert memory == [2 * grid if cfg.mrm != "off" and l < cfg.num_levels - 1 else grid
                      for l in range(cfg.num_levels)]
    with pytest.raises(ValueError, match="mrm 'all' is not one of"):
        MgMRNConfig(mrm="all")


def test_gradients_reach_every_block_but_the_degenerate_prototypes(smoke_world):
    model = build(smoke_world).double()
    x = batch_to_input(smoke_world.images[:4]).double()
    model.training_losses(x, torch.arange(4))["total"].backward()
    for name, p in model.named_parameters():
        grad = 0.0 if p.grad is None else p.grad.abs().max().item()
        if name.startswith("rfmb."):                                      # Eq. (2) = f / M: nothing to learn
            assert grad < 1e-10, name
        elif "replacement" not in name:
            assert grad > 0, name


def test_a_short_toybirds_run_lowers_the_loss_and_beats_chance(smoke_world):
    model = build(smoke_world)
    tv = smoke_world.splits["trainval"]
    history = train(model, smoke_world.images[tv], smoke_world.labels[tv],
                    TrainConfig(steps=80, batch_size=32, lr=1e-3, device="cpu"), log=lambda *_: None)
    first, last = np.mean([h["total"] for h in history[:10]]), np.mean([h["total"] for h in history[-10:]])
    assert last < first - 0.5
    report = evaluate.evaluate(model, smoke_world, 0.0, "zscore_stacking", "cpu")
    assert report["T1"] > 2 / len(smoke_world.unseen_classes)            # twice chance on 25 unseen classes
