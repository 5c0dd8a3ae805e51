"""The chapter-1 baseline: it learns, it beats its controls, and it never tunes on the test split."""
import copy

import numpy as np
import pytest

from zsl_lib import probe


@pytest.fixture(scope="module")
def vit_features(smoke_world):
    return probe.extract("pretrained_vit", smoke_world)


def test_probe_beats_chance_and_random_features(smoke_world, vit_features):
    pretrained = probe.eszsl_probe(vit_features, smoke_world)
    random_vit = probe.eszsl_probe(probe.extract("random_vit", smoke_world), smoke_world)
    assert pretrained["chance_T1"] == pytest.approx(1 / 25)
    assert pretrained["T1"] >= 2 * pretrained["chance_T1"]
    assert pretrained["T1"] > random_vit["T1"] + 0.05
    # the probe is seen-biased, so the validation gamma is positive: it trades S for U
    assert pretrained["gamma"] > 0
    assert pretrained["U"] > pretrained["U_uncal"] and pretrained["S"] < pretrained["S_uncal"]


def test_choices_do_not_depend_on_test_labels(smoke_world, vit_features):
    """Scrambling the labels of every test image must not move (alpha, beta) or gamma."""
    honest = probe.eszsl_probe(vit_features, smoke_world)
    scrambled = copy.copy(smoke_world)
    scrambled.labels = np.array(smoke_world.labels)
    sp = smoke_world.splits
    rng = np.random.default_rng(0)
    for split in ("test_seen", "test_unseen"):
        scrambled.labels[sp[split]] = rng.permutation(scrambled.labels[sp[split]])
    cheat = probe.eszsl_probe(vit_features, scrambled)
    assert (cheat["alpha"], cheat["beta"], cheat["gamma"]) == (honest["alpha"], honest["beta"], honest["gamma"])
    assert cheat["T1"] != honest["T1"]   # the test metrics did see the change


def test_public_reports_percent():
    out = probe.public({"T1": 0.123456, "gamma": 0.5, "alpha": 10.0, "beta": 0.1, "_curve": object()})
    assert out == {"T1": 12.35, "gamma": 0.5, "alpha": 10.0, "beta": 0.1}
