"""The localisation measures against hand computations on tiny made-up masks and attention."""
import numpy as np
import pytest

from zsl_lib import localisation as loc
from zsl_lib.toyworld import birds

# One 4 x 4 image on a 2 x 2 grid (cells of 2 x 2 px), two parts:
# part 1 (map value 1) fills the top-left cell; part 2 covers half of the top-right cell.
PART_MAP = np.array([[[1, 1, 2, 2],
                      [1, 1, 0, 0],
                      [0, 0, 0, 0],
                      [0, 0, 0, 0]]], dtype=np.uint8)
COVERAGE = loc.part_coverage(PART_MAP, grid=2, num_parts=2)          # (1, 2, 4)
PARTS = np.array([0, 1])                                             # attribute 0 -> part 1, attribute 1 -> part 2
UNIFORM = np.full((1, 2, 4), 0.25)


def one_hot(*cells):
    """Attention (1, A, 4) of attribute a all on cell cells[a]."""
    att = np.zeros((1, len(cells), 4))
    att[0, np.arange(len(cells)), cells] = 1.0
    return att


def test_part_coverage_by_hand():
    np.testing.assert_allclose(COVERAGE[0], [[1, 0, 0, 0], [0, 0.5, 0, 0]])
    np.testing.assert_allclose(loc.part_area(COVERAGE), [[0.25, 0.125]])


def test_part_coverage_matches_the_worlds_own(smoke_world):
    idx = smoke_world.splits["test_unseen"][:5]
    coverage = loc.part_coverage(smoke_world.part_maps[idx], grid=8)
    for p, name in enumerate(birds.PART_NAMES):
        np.testing.assert_allclose(coverage[:, p], smoke_world.patch_coverage(idx, 8, parts=[name]))


def test_a_perfect_pointer_scores_one_and_uniform_attention_the_area():
    perfect = one_hot(0, 1)
    np.testing.assert_allclose(loc.part_mass(perfect, COVERAGE)[0], [[1, 0], [0, 0.5]])
    np.testing.assert_allclose(loc.pointing(perfect, COVERAGE, PARTS), [[1, 1]])
    np.testing.assert_allclose(loc.mass_ratio(perfect, COVERAGE, PARTS), [1 / 0.25, 0.5 / 0.125])
    np.testing.assert_allclose(loc.part_mass(UNIFORM, COVERAGE)[0], [[0.25, 0.125]] * 2)
    np.testing.assert_allclose(loc.mass_ratio(UNIFORM, COVERAGE, PARTS), [1, 1])


def test_pointing_with_ties_scores_the_share_of_peak_cells_on_the_part():
    np.testing.assert_allclose(loc.pointing(UNIFORM, COVERAGE, PARTS), [[0.25, 0.25]])
    np.testing.assert_allclose(loc.pointing_chance(COVERAGE, PARTS), [[0.25, 0.25]])
    two_peaks = np.array([[[0.4, 0.4, 0.1, 0.1], [0.1, 0.1, 0.4, 0.4]]])
    np.testing.assert_allclose(loc.pointing(two_peaks, COVERAGE, PARTS), [[0.5, 0.0]])


def test_wrong_part_control_by_hand():
    # attribute 0 on its own part: its ratio on the other part (part 2) is 0;
    # attribute 1 all on cell 0: ratio 0 on its own part, 1 / 0.25 = 4 on the wrong one.
    att = one_hot(0, 0)
    np.testing.assert_allclose(loc.mass_ratio(att, COVERAGE, PARTS), [4, 0])
    np.testing.assert_allclose(loc.wrong_part_ratio(att, COVERAGE, PARTS), [0, 4])
    np.testing.assert_allclose(loc.wrong_part_ratio(UNIFORM, COVERAGE, PARTS), [1, 1])
    # pointing: attribute 0's peak (cell 0) does not show part 2; attribute 1's peak shows part 1.
    # chance on the wrong part: part 2 shows in 1 of 4 cells, part 1 in 1 of 4
    wrong, chance = loc.wrong_part_pointing(att, COVERAGE, PARTS)
    np.testing.assert_allclose(wrong, [0, 1])
    np.testing.assert_allclose(chance, [0.25, 0.25])


def test_specificity_is_zero_for_alike_maps_and_positive_for_own_parts():
    bird_not_background = np.array([[[0.5, 0.5, 0, 0]] * 2])          # both attributes on the bird, alike
    assert (loc.mass_ratio(bird_not_background, COVERAGE, PARTS) > 1).all()
    np.testing.assert_allclose(loc.specificity(bird_not_background, COVERAGE, PARTS), [[0, 0]])
    assert loc.specific_share(bird_not_background, COVERAGE, PARTS) == 0
    # each on its own part: attribute 0 puts 1 on part 1, attribute 1 puts 0 there -> 1;
    # attribute 1 puts 0.5 on part 2, attribute 0 puts 0 there -> 0.5
    np.testing.assert_allclose(loc.specificity(one_hot(0, 1), COVERAGE, PARTS), [[1, 0.5]])
    assert loc.specific_share(one_hot(0, 1), COVERAGE, PARTS) == pytest.approx(1.0)     # (1 + 0.5) / (1 + 0.5)
    # attribute 0 alone on part 1, attribute 1 uniform: specificity (1 - 0.25, 0.125 - 0) over own masses (1, 0.125)
    mixed = np.array([[[1.0, 0, 0, 0], [0.25] * 4]])
    assert loc.specific_share(mixed, COVERAGE, PARTS) == pytest.approx(0.875 / 1.125)
    # swapped: attribute 0 puts 0 on part 1, attribute 1 puts 1 there -> -1; attribute 1 puts 0 on
    # part 2, attribute 0 puts 0.5 there -> -0.5
    np.testing.assert_allclose(loc.specificity(one_hot(1, 0), COVERAGE, PARTS), [[-1, -0.5]])


def test_map_spread_by_hand():
    assert loc.map_spread(UNIFORM)[0] == 0
    np.testing.assert_allclose(loc.map_spread(one_hot(0, 1)), [0.5])         # 1 - 1/A with A = 2
    np.testing.assert_allclose(loc.map_spread(one_hot(0, 1, 2, 3)), [0.75])


def test_report_gathers_the_measures():
    report = loc.localisation_report(one_hot(0, 1), COVERAGE, PARTS)
    np.testing.assert_allclose(report["ratio"], [4, 4])
    np.testing.assert_allclose(report["pointing"], [1, 1])
    assert report["spread"] == pytest.approx(0.5)


def test_as_distribution_keeps_positive_evidence():
    relevance = np.array([[[2.0, -1.0, 2.0, 0.0], [-1.0, -2.0, -3.0, -4.0]]])
    np.testing.assert_allclose(loc.as_distribution(relevance), [[[0.5, 0, 0.5, 0], [0.25] * 4]])


def test_bad_attention_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="sum to 1"):
        loc.part_mass(np.ones((1, 2, 4)), COVERAGE)
    with pytest.raises(ValueError, match="reshape"):
        loc.part_mass(np.ones((1, 2, 2, 2)) / 4, COVERAGE)
    with pytest.raises(ValueError, match="divisor of 4"):
        loc.part_coverage(PART_MAP, grid=3)


def test_ground_truth_masks_as_attention_localise_on_a_real_world(smoke_world):
    """Attention that is each attribute's part mask scores far above uniform on every measure;
    a map shared by all attributes (the whole bird) scores above 1 in ratio but 0 in specificity."""
    idx = smoke_world.splits["test_unseen"][:40]
    coverage = loc.part_coverage(smoke_world.part_maps[idx], grid=8)     # (B, P, 64)
    parts = loc.attribute_parts()
    keep = (coverage[:, parts].sum(-1) > 0).all(1)                        # images showing every part
    coverage = coverage[keep]
    oracle = coverage[:, parts] / coverage[:, parts].sum(-1, keepdims=True)        # (B, A, 64)
    report = loc.localisation_report(oracle, coverage, parts)
    assert (report["ratio"] > 2).all() and (report["ratio"] > report["wrong_ratio"]).all()
    assert (report["pointing"] == 1).all() and (report["pointing_chance"] < 0.5).all()
    assert (report["wrong_pointing"] < 1).all()
    assert (report["specificity"] > 0).all()
    bird = coverage.sum(1, keepdims=True).repeat(len(parts), 1)
    bird = bird / bird.sum(-1, keepdims=True)
    whole_bird = loc.localisation_report(bird, coverage, parts)
    assert (whole_bird["ratio"] > 1).all()
    np.testing.assert_allclose(whole_bird["specificity"], 0, atol=1e-12)
    assert whole_bird["spread"] == pytest.approx(0)


def test_shuffled_parts_moves_every_attribute_to_another_part():
    parts = loc.attribute_parts()
    order = loc.shuffled_parts(parts, seed=0)
    assert sorted(order) == list(range(len(parts)))
    assert (parts[order] != parts).all()
    assert not np.array_equal(order, loc.shuffled_parts(parts, seed=1))
    with pytest.raises(ValueError, match="more than half"):
        loc.shuffled_parts(np.array([0, 0, 0, 1]), max_tries=100)


def test_bootstrap_interval_holds_the_mean_and_narrows_with_more_images():
    rng = np.random.default_rng(0)
    few, many = rng.normal(1.0, 1.0, 20), rng.normal(1.0, 1.0, 2000)
    low, high = loc.bootstrap_interval(few)
    assert low < few.mean() < high
    low_many, high_many = loc.bootstrap_interval(many)
    assert high_many - low_many < (high - low) / 5
    assert loc.bootstrap_interval(np.zeros(5)) == (0.0, 0.0)
    with pytest.raises(ValueError, match="two images"):
        loc.bootstrap_interval(np.ones(1))
