import os

import numpy as np
import pytest

# Fix CPU threads so test timings and saved notebook outputs are stable.
os.environ.setdefault("OMP_NUM_THREADS", "2")
# Offline: a timm `pretrained=True` fails in seconds instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def smoke_world():
    """The smoke-size ToyBirds world of seed 0 (rendered once, then from the cache)."""
    from zsl_lib.toyworld.dataset import ToyBirdsConfig, load_toybirds
    return load_toybirds(ToyBirdsConfig.for_mode("smoke", seed=0))


def assert_matches_golden(path, got: dict[str, np.ndarray]) -> None:
    """Compare outputs with a stored .npz; with ZSL_UPDATE_GOLDEN=1 rewrite it instead (and skip)."""
    if os.environ.get("ZSL_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        np.savez(path, **got)
        pytest.skip(f"golden file {path.name} rewritten")
    ref = np.load(path)
    assert set(ref.files) == set(got)
    for key in ref.files:
        np.testing.assert_allclose(got[key], ref[key], rtol=1e-4, atol=1e-5, err_msg=key)
