"""Golden test: a seeded VSPCN reproduces stored reference outputs (tests/data/vspcn_golden.npz).

Any change to the model's arithmetic shows up here. After an intended change, rewrite
the file with `ZSL_UPDATE_GOLDEN=1 pytest tests/test_vspcn_golden.py` and say why in the commit.
"""
from pathlib import Path

import numpy as np
import timm
import torch
from conftest import assert_matches_golden

import zsl_lib  # noqa: F401  registers the toy models
from zsl_lib.vspcn import VSPCN, preset

GOLDEN = Path(__file__).parent / "data" / "vspcn_golden.npz"


def outputs(preset_name: str) -> dict[str, np.ndarray]:
    torch.manual_seed(1234)
    backbone = timm.create_model("toy_vit_p8_64", num_classes=0)
    model = VSPCN(backbone, torch.randn(6, 12), torch.rand(10, 6), torch.arange(7), preset(preset_name)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = model.forward_features(x)
        scores = model.forward_head(feats)
        terms = model.training_losses(x, torch.tensor([1, 5]))
    out = {f"{preset_name}/{k}": v.numpy() for k, v in feats.items()}
    out[f"{preset_name}/scores"] = scores.numpy()
    out[f"{preset_name}/losses"] = np.array([terms[k].item() for k in sorted(terms)])
    return out


def test_outputs_match_the_golden_file():
    assert_matches_golden(GOLDEN, {**outputs("paper_default"), **outputs("code_exact")})
