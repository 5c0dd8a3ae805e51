"""Mg-MRN's region-mining block: the degeneracy of Eq. (2), its consequences, the non-degenerate
variant, and the downsampling to the common grid."""
import pytest
import torch

from zsl_lib.mgmrn import DownsampleToGrid, RegionFeatureMining
from zsl_lib.recording import recorded


def features(dtype=torch.float64):
    torch.manual_seed(0)
    return torch.randn(2, 16, 8, 8, dtype=dtype).relu() * 3        # ReLU features, as a ResNet stage gives


def test_eq2_is_the_feature_map_divided_by_the_number_of_parts():
    f = features()
    for parts in (1, 3, 5, 7):
        rfmb = RegionFeatureMining(16, parts).double()
        out, regions = rfmb(f)
        a = rfmb.assignment(f)
        assert a.shape == (2, parts, 8, 8) and torch.allclose(a.sum(1), torch.ones(2, 8, 8, dtype=torch.float64))
        assert (out - f / parts).abs().max() < 1e-12 and regions is None   # 1.7e-16 in float64
    out32, _ = RegionFeatureMining(16, 5)(features(torch.float32))
    assert (out32 - features(torch.float32) / 5).abs().max() < 1e-5


def test_the_prototypes_and_smoothing_factors_never_learn():
    f = features()
    rfmb = RegionFeatureMining(16, 5).double()
    weights = torch.randn_like(f)
    (rfmb(f)[0] * weights).sum().backward()
    assert rfmb.prototypes.grad.abs().max() < 1e-10 and rfmb.smoothing.grad.abs().max() < 1e-10


def test_groupnorm_in_the_downsampling_removes_the_one_over_m():
    """So "paper_mean" and "none" (w/o RFMB) feed the same values to the rest of the model."""
    f = features()
    down = DownsampleToGrid(16, 32, halvings=1, groups=8).double()
    with torch.no_grad():
        paper, without = (down(RegionFeatureMining(16, 5, mode).double()(f)[0]) for mode in ("paper_mean", "none"))
    assert paper.shape == (2, 32, 4, 4)
    assert (paper - without).abs().max() < 1e-3                    # only GroupNorm's epsilon differs
    assert (paper - without).abs().max() > 0


def test_the_part_channels_variant_starts_near_the_identity_and_trains_its_prototypes():
    f = features(torch.float32)
    rfmb = RegionFeatureMining(16, 4, "part_channels")
    with recorded(rfmb.assignment_map) as masks:
        out, regions = rfmb(f)
    assert regions is None
    assert out.shape == f.shape
    assert (out - f).abs().max() < 0.05 * f.abs().max()             # P_m = I + N(0, 1e-3)
    (out * torch.randn_like(out)).sum().backward()
    assert rfmb.prototypes.grad.abs().max() > 1e-6 and rfmb.smoothing.grad.abs().max() > 1e-6
    assert masks[0].max() < 0.99                                   # normalised distances: no one-hot saturation


def test_the_part_tokens_variant_pools_one_token_per_part_and_trains_its_prototypes():
    f = features(torch.float64)
    rfmb = RegionFeatureMining(16, 4, "part_tokens", width=32).double()
    grid, tokens = rfmb(f)
    assert torch.equal(grid, f)                                     # the grid path is left alone
    assert tokens.shape == (2, 4, 32) and rfmb.num_region_tokens == 4
    a = rfmb.assignment(f)                                          # t_m by hand: mask-weighted mean of f
    pooled = (a.unsqueeze(2) * f.unsqueeze(1)).sum((3, 4)) / (a.sum((2, 3)).unsqueeze(-1) + 1e-5)   # (B, M, C_l)
    torch.testing.assert_close(tokens, rfmb.to_width(pooled))
    (tokens * torch.randn_like(tokens)).sum().backward()
    assert rfmb.prototypes.grad.abs().max() > 1e-6 and rfmb.smoothing.grad.abs().max() > 1e-6
    with pytest.raises(ValueError, match="needs the common width"):
        RegionFeatureMining(16, 4, "part_tokens")


def test_downsampling_shapes_and_errors():
    x = torch.randn(2, 8, 28, 28)
    assert DownsampleToGrid.halvings(28, 7) == 2 and DownsampleToGrid.halvings(7, 7) == 0
    assert DownsampleToGrid(8, 32, 2, groups=8)(x).shape == (2, 32, 7, 7)
    same = DownsampleToGrid(8, 32, 0, groups=8)
    assert same(torch.randn(2, 8, 7, 7)).shape == (2, 32, 7, 7) and len(same) == 3      # conv, GN, ReLU
    with pytest.raises(ValueError, match="cannot be halved onto a 7 x 7 grid"):
        DownsampleToGrid.halvings(20, 7)
    with pytest.raises(ValueError, match="rfm_mode 'mean' is not one of"):
        RegionFeatureMining(8, 3, "mean")
