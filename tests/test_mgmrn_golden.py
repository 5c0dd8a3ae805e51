"""Golden test: a seeded Mg-MRN reproduces stored reference outputs (tests/data/mgmrn_golden.npz).

Any change to the model's arithmetic shows up here. After an intended change, rewrite the
file with `ZSL_UPDATE_GOLDEN=1 pytest tests/test_mgmrn_golden.py` and say why in the commit.
"""
from pathlib import Path

import numpy as np
import timm
import torch
from conftest import assert_matches_golden

import zsl_lib  # noqa: F401  registers the toy models
from zsl_lib.mgmrn import MgMRN, preset

GOLDEN = Path(__file__).parent / "data" / "mgmrn_golden.npz"


def outputs(preset_name: str) -> dict[str, np.ndarray]:
    torch.manual_seed(1234)
    backbone = timm.create_model("toy_resnet_64", num_classes=0)
    model = MgMRN(backbone, torch.randn(6, 12), torch.rand(10, 6), torch.arange(7), preset(preset_name)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        z = model.forward_features(x)
        scores = model.forward_head(z)
        terms = model.training_losses(x, torch.tensor([1, 5]))
    out = {f"{preset_name}/z{l}": zl.numpy() for l, zl in enumerate(z, start=1)}
    out[f"{preset_name}/scores"] = scores.numpy()
    out[f"{preset_name}/losses"] = np.array([terms[k].item() for k in sorted(terms)])
    return out


def test_outputs_match_the_golden_file():
    assert_matches_golden(GOLDEN, {**outputs("paper"), **outputs("official_code")})
