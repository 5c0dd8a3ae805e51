"""Mg-MRN assembled: losses against hand computations, shapes, where gradients go, and learning on ToyBirds."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from zsl_lib import evaluate
from zsl_lib.backbones import batch_to_input, load_or_pretrain
from zsl_lib.mgmrn.losses import ar_loss, cosine_scores, sce_loss
from zsl_lib.mgmrn.model import MgMRN, MgMRNConfig
from zsl_lib.mgmrn.recorder import AttentionRecorder
from zsl_lib.semantics import attribute_word_vectors
from zsl_lib.train import TrainConfig, train


def build(world, cfg=MgMRNConfig(decoder_hidden=128)):
    torch.manual_seed(0)
    return MgMRN(load_or_pretrain("toy_resnet_nopool_64"), torch.tensor(attribute_word_vectors(world.attribute_phrases)),
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
                                 MgMRNConfig(decoder_hidden=64, mrm="concat_only", vsd_head="free", vsd_scaled=False),
                                 MgMRNConfig(decoder_hidden=64, rfm_mode="part_tokens", num_parts=3)])
def test_shapes(smoke_world, cfg):
    model = build(smoke_world, cfg)
    x = batch_to_input(smoke_world.images[:3])
    with AttentionRecorder(model) as rec:
        z = model.stage_attributes(x)
    assert len(z) == cfg.num_levels and all(zl.shape == (3, 42) for zl in z)
    assert model(x).shape == (3, 100)
    memory = [attention.shape[-1] for attention in rec.decoders]          # tokens each decoder attended over
    grid = 16                                                              # the toy ResNet's last stage: 4 x 4
    parts = cfg.num_parts if cfg.rfm_mode == "part_tokens" else 0
    assert memory == [(2 * grid if cfg.mrm != "off" and l < cfg.num_levels - 1 else grid) + parts
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
                    TrainConfig(steps=80, batch_size=32, lr=1e-3, device="cpu"), log=lambda *_: None,
                    normalize=smoke_world.normalize)
    first, last = np.mean([h["total"] for h in history[:10]]), np.mean([h["total"] for h in history[-10:]])
    assert last < first - 0.5
    report = evaluate.evaluate(model, smoke_world, 0.0, "zscore_stacking", "cpu")
    assert report["T1"] > 2 / len(smoke_world.unseen_classes)            # twice chance on 25 unseen classes


def test_presets_differ_exactly_where_the_spec_says_and_table3_rows():
    from dataclasses import fields
    from zsl_lib.mgmrn import preset, table3_row
    paper, code = preset("paper"), preset("official_code")
    differ = {f.name for f in fields(MgMRNConfig) if getattr(paper, f.name) != getattr(code, f.name)}
    assert differ == {"scab_detach_coarse", "vsd_scaled", "vsd_head", "fix_zero_w2v", "opt_mode", "lambda_ar"}
    assert preset("paper_free_readout") == replace(paper, vsd_head="free")    # the paper but for Eq. (10)'s read-out
    assert preset("paper", "SUN").num_levels == 4 and preset("official_code", "SUN").num_levels == 3
    assert preset("paper", "CUB").num_parts == 7 and preset("official_code", "CUB").lambda_ar == 0.1
    assert not table3_row(1).mgm and not table3_row(1).use_ar and table3_row(5).mrm == "concat_only"
    with pytest.raises(ValueError, match="Table III has rows 1-6"):
        table3_row(7)


def test_table3_rows_3_and_4_are_the_same_function(smoke_world):
    """With RFMB (row 4) the model computes what it computes without (row 3), up to GroupNorm's epsilon."""
    from zsl_lib.mgmrn import table3_row
    without, with_rfmb = (build(smoke_world, replace(table3_row(r), decoder_hidden=64)).double() for r in (3, 4))
    extra = set(with_rfmb.state_dict()) - set(without.state_dict())
    assert extra and all(k.startswith("rfmb.") for k in extra)              # row 4 adds only the prototypes
    with_rfmb.load_state_dict(without.state_dict(), strict=False)          # the same weights everywhere else
    x = batch_to_input(smoke_world.images[:4]).double()
    with torch.no_grad():
        a, b = without.eval()(x), with_rfmb.eval()(x)
    assert (a - b).abs().max() < 1e-2 * a.abs().max()
    baseline = build(smoke_world, replace(table3_row(1), decoder_hidden=64))
    assert len(baseline.stage_attributes(x.float())) == baseline.num_stages == 1 and baseline.down is None
    assert baseline.cfg.num_levels == 3                                     # L as configured, unused without MgM


def test_the_codes_three_steps_per_batch_update_the_stages_unevenly(smoke_world):
    """official_code: stage l's loss, after the SCAB's stop-gradient, reaches layer2 and below in
    step 1, layer3 in step 2 and layer4 only in step 3; each decoder moves only in its own step."""
    from zsl_lib.mgmrn import preset
    model = build(smoke_world, preset("official_code", decoder_hidden=64))
    x, y = batch_to_input(smoke_world.images[:4]), torch.arange(4)
    with torch.no_grad():
        summed_at_start = model.training_losses(x, y)["total"].item()
    groups = ["backbone.layer2", "backbone.layer3", "backbone.layer4", "decoders.0", "decoders.1", "decoders.2"]

    def snapshot():
        return {g: torch.cat([p.detach().flatten().clone() for n, p in model.named_parameters() if n.startswith(g)])
                for g in groups}
    states = [snapshot()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    step = opt.step
    opt.step = lambda: (step(), states.append(snapshot()))               # a snapshot after every optimiser step
    losses = [v.item() for k, v in model.per_stage_steps(x, y, opt).items() if k != "total"]
    moved = [{g for g in groups if not torch.equal(a[g], b[g])} for a, b in zip(states, states[1:])]
    assert moved == [{"backbone.layer2", "decoders.0"},
                     {"backbone.layer2", "backbone.layer3", "decoders.1"},
                     {"backbone.layer2", "backbone.layer3", "backbone.layer4", "decoders.2"}]
    # three losses at three parameter states: their sum (what the code logs) is not Eq. (13) at the start
    assert len(losses) == 3 and abs(sum(losses) - summed_at_start) > 1e-4


@pytest.mark.parametrize("rfm_mode", ["paper_mean", "part_tokens"])
def test_the_recorder_returns_attribute_maps_and_region_masks(smoke_world, rfm_mode):
    model = build(smoke_world, MgMRNConfig(decoder_hidden=64, rfm_mode=rfm_mode))
    x = batch_to_input(smoke_world.images[:3])
    with AttentionRecorder(model) as rec:
        with pytest.raises(RuntimeError, match="no forward pass was recorded"):
            rec.attribute_maps(0)
        model(x)
    for stage in range(3):
        maps = rec.attribute_maps(stage)
        assert maps.shape == (3, 42, 4, 4)                                  # the toy ResNet's 4 x 4 grid
        full = rec.decoders[stage]
        torch.testing.assert_close(full.sum(-1), torch.ones(3, 42))         # a softmax over all tokens
        torch.testing.assert_close(maps.flatten(2), full[..., :16])         # g_l's positions come first
    assert [tuple(r.shape) for r in rec.regions] == [(3, 5, 16, 16), (3, 5, 8, 8), (3, 5, 4, 4)]
    assert not model.decoders[0]._forward_hooks                             # hooks removed on exit
