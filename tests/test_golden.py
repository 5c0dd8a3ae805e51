"""Golden tests: seeded tiny models reproduce stored reference outputs (tests/data/*_golden.npz).

Any change to a model's arithmetic shows up here. After an intended change, rewrite the
files with `ZSL_UPDATE_GOLDEN=1 pytest tests/test_golden.py` and say why in the commit.
"""
import os
from pathlib import Path

import numpy as np
import pytest
import timm
import torch

from zsl_lib import families

DATA = Path(__file__).parent / "data"
PRESETS = {"vspcn": ("paper_default", "code_exact"), "mgmrn": ("paper", "official_code")}   # in the golden files


def outputs(family: str, preset_name: str) -> dict[str, np.ndarray]:
    """Features, scores and loss terms of a seeded model on a fixed random batch."""
    spec = families.get(family)
    torch.manual_seed(1234)
    model = spec.model_class(timm.create_model(spec.toy_backbone, num_classes=0), torch.randn(6, 12),
                             torch.rand(10, 6), torch.arange(7), spec.preset(preset_name)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        if family == "vspcn":                                   # the prefix tokens' outputs cls, vp, sp
            tokens = model.forward_features(x)
            feats, scores = model.prefix_outputs(tokens), model.forward_head(tokens)
        else:                                                   # the attribute vectors z_l per stage
            z = model.stage_attributes(x)
            feats, scores = {f"z{l}": zl for l, zl in enumerate(z, start=1)}, model.class_scores(z)
        terms = model.training_losses(x, torch.tensor([1, 5]))
    out = {f"{preset_name}/{k}": v.numpy() for k, v in feats.items()}
    out[f"{preset_name}/scores"] = scores.numpy()
    out[f"{preset_name}/losses"] = np.array([terms[k].item() for k in sorted(terms)])
    return out


@pytest.mark.parametrize("family", sorted(PRESETS))
def test_outputs_match_the_golden_file(family):
    path = DATA / f"{family}_golden.npz"
    got = {k: v for name in PRESETS[family] for k, v in outputs(family, name).items()}
    if os.environ.get("ZSL_UPDATE_GOLDEN"):
        np.savez(path, **got)
        pytest.skip(f"golden file {path.name} rewritten")
    ref = np.load(path)
    assert set(ref.files) == set(got)
    for key in ref.files:
        np.testing.assert_allclose(got[key], ref[key], rtol=1e-4, atol=1e-5, err_msg=key)
