"""The perception report: ridge read-out, balanced accuracy, decodability and the Bayes limit."""
import numpy as np
import pytest

from zsl_lib import perception
from zsl_lib.toyworld import birds


def test_balanced_accuracy_by_hand():
    truth = np.array([0, 0, 0, 0, 1, 1])
    pred = np.array([0, 0, 0, 0, 0, 1])       # value 0: 4/4, value 1: 1/2
    assert perception.balanced_accuracy(pred, truth) == pytest.approx((1.0 + 0.5) / 2)
    assert perception.balanced_accuracy(np.zeros(6, int), truth) == pytest.approx(0.5)   # majority guess = chance


def test_ridge_matches_the_normal_equations():
    rng = np.random.default_rng(0)
    X, Y, X_new = rng.normal(size=(40, 6)), rng.normal(size=(40, 3)), rng.normal(size=(5, 6))
    lam = 3.0
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    coef = np.linalg.solve(Xc.T @ Xc + lam * np.eye(6), Xc.T @ Yc)
    expected = (X_new - X.mean(0)) @ coef + Y.mean(0)
    np.testing.assert_allclose(perception.Ridge(X).fit_predict(Y, X_new, lam), expected, atol=1e-10)


def test_group_values_invert_the_binary_vector(smoke_world):
    idx = np.arange(10)
    values = perception.group_values(smoke_world, idx)
    for i in idx:
        np.testing.assert_array_equal(birds.values_to_binary(tuple(values[i])), smoke_world.attributes[i])


def test_decodability_is_perfect_on_true_attributes_and_chance_on_noise(smoke_world):
    truth = np.asarray(smoke_world.attributes, np.float64)                 # a perfect attribute "backbone"
    perfect = perception.decodability(truth, smoke_world)
    assert all(v == 1.0 for v in perfect.values()), perfect
    noise = np.random.default_rng(0).normal(size=(len(truth), 64))
    blind = perception.decodability(noise, smoke_world)
    for group in birds.GROUPS:
        assert abs(blind[group.name] - perception.chance(group)) < 0.15, (group.name, blind[group.name])


def test_bayes_reader_is_near_perfect_and_beats_a_reader_of_one_group(smoke_world):
    ceiling = perception.bayes_reader(smoke_world)
    assert ceiling["accuracy_all_classes"] > 0.95 and ceiling["T1"] > 0.95 and ceiling["H"] > 0.95
    # the same rule reading only the crown colour cannot name most species
    blinded = smoke_world.attributes.copy()
    blinded[:, len(birds.GROUPS[0].values):] = 0
    original = smoke_world.attributes
    try:
        smoke_world.attributes = blinded
        assert perception.bayes_reader(smoke_world)["accuracy_all_classes"] < 0.5
    finally:
        smoke_world.attributes = original


def test_ridge_strength_is_chosen_without_test_images(smoke_world):
    """Scrambling the attributes of every test image moves the test score, never the chosen strengths."""
    import copy
    features = np.asarray(smoke_world.attributes, np.float64) + np.random.default_rng(1).normal(
        scale=0.8, size=smoke_world.attributes.shape)
    honest = perception.ridge_strengths(features, smoke_world)
    scrambled = copy.copy(smoke_world)
    scrambled.attributes = np.array(smoke_world.attributes)
    test = smoke_world.splits["test_unseen"]
    scrambled.attributes[test] = scrambled.attributes[np.random.default_rng(0).permutation(test)]
    assert perception.ridge_strengths(features, scrambled) == honest
    assert perception.decodability(features, scrambled) != perception.decodability(features, smoke_world)
