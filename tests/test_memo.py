"""Memoised frozen modules: each distinct input computed once, the same function as without."""
import numpy as np
import pytest
import torch

from zsl_lib.memo import Memoised


class CountingConv(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3).requires_grad_(False)
        self.samples_seen = 0

    def forward(self, x):
        self.samples_seen += len(x)
        return self.conv(x)


def test_each_distinct_sample_is_computed_once_and_outputs_match():
    torch.manual_seed(0)
    conv, store = CountingConv(), {}
    memo = Memoised(conv, store)
    x = torch.randn(6, 3, 8, 8)
    assert torch.equal(memo(x[:4]), conv.conv(x[:4]))
    assert conv.samples_seen == 4 and len(store) == 4
    again = memo(x[2:])                                   # two seen, two new
    assert conv.samples_seen == 6 and len(store) == 6
    assert torch.allclose(again, conv.conv(x[2:]), atol=1e-6)
    other = Memoised(conv, store)                         # a second model sharing the store computes nothing
    other(x[[5, 0]])
    assert conv.samples_seen == 6


def test_a_trainable_module_is_refused():
    with pytest.raises(ValueError, match="frozen"):
        Memoised(torch.nn.Linear(2, 2), {})


def test_vspcn_with_a_memoised_trunk_computes_the_same_loss_and_gradients(smoke_world):
    from zsl_lib.backbones import batch_to_input
    from zsl_lib.vspcn import preset
    from zsl_lib.vspcn.experiment import build, build_memoised, trunk_outputs
    x = batch_to_input(smoke_world.images[:8])
    labels = torch.arange(8) % len(smoke_world.seen_classes)
    plain, memoised = (make(smoke_world, preset("paper_default"), smoke_world.seen_classes, 0)
                       for make in (build, build_memoised))
    memoised(x)                                           # fill the store with these images first
    assert len(trunk_outputs(smoke_world.config)) >= 8
    losses = []
    for model in (plain, memoised):
        model.zero_grad()
        loss = model.training_losses(x, labels)["total"]
        loss.backward()
        losses.append((loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (loss_plain, grads_plain), (loss_memo, grads_memo) = losses
    assert loss_memo == pytest.approx(loss_plain, rel=1e-5)
    assert grads_plain.keys() == grads_memo.keys() and not any("patch_embed.backbone" in n for n in grads_plain)
    for name in grads_plain:
        np.testing.assert_allclose(grads_memo[name], grads_plain[name], rtol=1e-3, atol=1e-6, err_msg=name)
