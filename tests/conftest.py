import os

import pytest

# Fix CPU threads so test timings and saved notebook outputs are stable.
os.environ.setdefault("OMP_NUM_THREADS", "2")
# Offline: a timm `pretrained=True` fails in seconds instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Missing toy-backbone weights are an error here, not an hour of pretraining inside the suite
# (the chapters' kernels inherit this environment too).
os.environ["ZSL_ALLOW_PRETRAIN"] = "0"


@pytest.fixture(scope="session")
def smoke_world():
    """The smoke-size ToyBirds world of seed 0 (rendered once, then from the cache)."""
    from zsl_lib.toyworld.dataset import ToyBirdsConfig, load_toybirds
    return load_toybirds(ToyBirdsConfig.for_mode("smoke", seed=0))
