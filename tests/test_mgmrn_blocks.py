"""Mg-MRN's SCAB (Eqs. 3-7) and visual-semantic decoder (Eqs. 8-10) against hand computations."""
import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from zsl_lib.mgmrn import SpatialChannelAttention, VisualSemanticDecoder, tokens, word_vector_span
from zsl_lib.recording import recorded

B, C, H, W, A, DW, DK = 2, 8, 3, 3, 5, 6, 4


def grids(n, requires_grad=False):
    torch.manual_seed(0)
    return [torch.randn(B, C, H, W, requires_grad=requires_grad) for _ in range(n)]


def test_scab_equals_eqs_3_to_7_by_hand():
    g1, g2, g3 = grids(3)
    scab = SpatialChannelAttention(C, num_coarser=2)
    u = scab(g1, [g2, g3])
    assert u.shape == (B, 2 * H * W, C)
    s = torch.einsum("oc,bchw->bohw", scab.fuse.weight[:, :, 0, 0], torch.cat([g2, g3], 1))      # Eq. (3)
    lin1, lin2 = scab.channel[0], scab.channel[2]
    a_c = torch.sigmoid(lin2(torch.relu(lin1(s.mean((2, 3))))))                                    # Eq. (5)
    a_s = torch.sigmoid(torch.nn.functional.conv2d(s, scab.spatial.weight, padding=1))             # Eq. (4)
    u_hat = s * a_c[:, :, None, None] * a_s                                                          # Eq. (6)
    expected = torch.cat([g1.flatten(2).transpose(1, 2), u_hat.flatten(2).transpose(1, 2)], 1)     # Eq. (7)
    torch.testing.assert_close(u, expected)
    assert torch.equal(tokens(g1)[0, 4], g1[0, :, 1, 1])             # row-major: token 4 is position (1, 1)


def test_scab_options_concat_only_detach_and_one_channel_mask():
    g1, g2 = grids(2, requires_grad=True)
    plain = SpatialChannelAttention(C, 1, mode="concat_only")
    u = plain(g1, [g2])
    s = torch.einsum("oc,bchw->bohw", plain.fuse.weight[:, :, 0, 0], g2)
    torch.testing.assert_close(u[:, H * W:], tokens(s))               # "w/o SCAB": both masks fixed to 1

    code = SpatialChannelAttention(C, 1, detach_coarse=True)
    code(g1, [g2]).sum().backward()
    assert g2.grad is None and g1.grad is not None                   # the code's stop-gradient into coarse stages
    assert code.fuse.weight.grad.abs().sum() > 0

    cbam = SpatialChannelAttention(C, 1, spatial_channels=1)
    with recorded(cbam.spatial_mask) as spatial, recorded(cbam.channel_mask) as channel:
        cbam(g1, [g2])
    assert spatial[0].shape == (B, 1, H, W) and channel[0].shape == (B, C)
    with pytest.raises(ValueError, match="scab mode 'off' is not one of"):
        SpatialChannelAttention(C, 1, mode="off")


def decoder_inputs():
    torch.manual_seed(1)
    return torch.randn(A, DW), torch.randn(B, 7, C)


@pytest.mark.parametrize("scaled", [True, False])
def test_decoder_equals_eqs_8_to_10_by_hand(scaled):
    e, u = decoder_inputs()
    vsd = VisualSemanticDecoder(e, C, hidden=DK, scaled=scaled)
    with recorded(vsd.attention_map) as maps:
        z = vsd(u)
    assert z.shape == (B, A)
    q, k, v = vsd.q(e), vsd.k(u), vsd.v(u)
    tau = math.sqrt(DK) if scaled else 1.0
    attn = torch.softmax(torch.einsum("ad,bnd->ban", q, k) / tau, dim=-1)          # Eq. (8)
    p = vsd.out(torch.einsum("ban,bnd->bad", attn, v))                              # Eq. (9)
    z_hand = torch.stack([torch.stack([e[a] @ vsd.readout @ p[b, a] for a in range(A)]) for b in range(B)])
    torch.testing.assert_close(z, z_hand)                                           # Eq. (10), per attribute
    torch.testing.assert_close(maps[0], attn)                                        # what observers see


class OpRecorder(TorchDispatchMode):
    """The names of the aten operators run inside the block."""
    def __enter__(self):
        self.names = set()
        return super().__enter__()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(str(func))
        return func(*args, **(kwargs or {}))


def test_decoder_free_head_and_the_zero_word_vector_fix():
    e, u = decoder_inputs()
    free = VisualSemanticDecoder(e, C, hidden=DK, head="free")
    p = free.out(torch.softmax(free.q(e) @ free.k(u).transpose(1, 2) / math.sqrt(DK), -1) @ free.v(u))
    torch.testing.assert_close(free(u), (p * free.readout).sum(-1))
    assert free.readout.shape == (A, C)

    e[2] = 0                                                                        # like SUN's attribute 88
    fixed = VisualSemanticDecoder(e, C, hidden=DK)
    torch.testing.assert_close(fixed.attribute_vectors()[2], e[[0, 1, 3, 4]].mean(0))
    fixed(u).sum().backward()
    assert fixed.replacement.grad.abs().sum() > 0                                   # learnable
    torch.testing.assert_close(fixed.attribute_vectors()[[0, 1, 3, 4]], e[[0, 1, 3, 4]])   # the others kept
    with OpRecorder() as ops:                   # no boolean-mask write: on a GPU it waits for the host each step
        fixed(u)
    assert not {"aten.nonzero.default", "aten.index_put_.default", "aten.index_put.default"} & ops.names
    raw = VisualSemanticDecoder(e, C, hidden=DK, fix_zero_w2v=False)
    assert torch.all(raw(u)[:, 2] == 0)                                             # e_a = 0 reads out nothing
    with pytest.raises(ValueError, match="vsd_head 'linear' is not one of"):
        VisualSemanticDecoder(e, C, head="linear")


def test_tied_readout_under_uniform_attention_stays_in_the_span_of_the_word_vectors():
    """Word vectors that are sums of word vectors ("red crown" = red + crown) have rank below A.
    When every attribute attends the same tokens, Eq. (10)'s z_a = e_a^T W p equals E (W p), so z
    lies in the column space of E: the colour-to-part bindings outside it cannot be expressed.
    The free read-out has no such limit."""
    torch.manual_seed(2)
    colours, parts = torch.randn(3, DW), torch.randn(2, DW)
    e = torch.stack([c + p for p in parts for c in colours])                       # (6, DW), rank 4
    assert torch.linalg.matrix_rank(e) == 4
    u = torch.randn(B, 7, C)
    tied, free = (VisualSemanticDecoder(e, C, hidden=DK, head=head) for head in ("w2v_bilinear", "free"))
    for vsd in (tied, free):
        torch.nn.init.zeros_(vsd.q.weight), torch.nn.init.zeros_(vsd.q.bias)      # every query alike: uniform attention
    projector = word_vector_span(e).float()                                          # onto the column space of E, (A, A)
    assert torch.linalg.matrix_rank(projector) == 4
    torch.testing.assert_close(projector @ e, e, atol=1e-5, rtol=1e-5)
    z_tied, z_free = tied(u), free(u)
    torch.testing.assert_close(z_tied @ projector, z_tied, atol=1e-4, rtol=1e-4)
    assert (z_free - z_free @ projector).norm() > 0.1 * z_free.norm()
    # the binding constraint itself: red-crown - blue-crown equals red-wing - blue-wing
    torch.testing.assert_close(z_tied[:, 0] - z_tied[:, 1], z_tied[:, 3] - z_tied[:, 4], atol=1e-4, rtol=1e-4)
