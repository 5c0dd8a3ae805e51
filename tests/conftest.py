import pytest


@pytest.fixture(scope="session")
def smoke_world():
    """The smoke-size ToyBirds world of seed 0 (rendered once, then from the cache)."""
    from zsl_lib.toyworld.dataset import ToyBirdsConfig, load_toybirds
    return load_toybirds(ToyBirdsConfig.for_mode("smoke", seed=0))
