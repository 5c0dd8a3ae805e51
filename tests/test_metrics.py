"""Metrics against cases computed by hand (in the comments), and the exact sweep against brute force."""
import numpy as np
import pytest

from zsl_lib import metrics

# Columns 0, 1 are seen classes, 2, 3 unseen. Per image: best seen col, best unseen col, delta.
SEEN = np.array([True, True, False, False])
SCORES = np.array([
    [3.0, 1.0, 2.0, 0.0],   # a, class 0: seen 0 (3), unseen 2 (2), delta 1.0
    [2.0, 2.5, 0.0, 0.0],   # b, class 1: seen 1 (2.5), unseen 2 (0), delta 2.5
    [1.0, 0.0, 0.5, 0.2],   # c, class 2: seen 0 (1), unseen 2 (0.5), delta 0.5
    [0.0, 1.0, 3.0, 1.0],   # d, class 2: seen 1 (1), unseen 2 (3), delta -2.0
    [0.0, 1.5, 2.0, 1.0],   # e, class 3: seen 1 (1.5), unseen 2 (2), delta -0.5
])
LABELS = np.array([0, 1, 2, 2, 3])


def test_mean_sd_is_the_sample_standard_deviation():
    # 1, 2, 3, 4: mean 2.5, squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, over n - 1 = 3
    mean, sd = metrics.mean_sd([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and sd == pytest.approx(np.sqrt(5 / 3))
    mean, sd = metrics.mean_sd(np.array([[1.0, 10.0], [3.0, 10.0]]))          # per column
    np.testing.assert_allclose(mean, [2.0, 10.0])
    np.testing.assert_allclose(sd, [np.sqrt(2.0), 0.0])
    with pytest.raises(ValueError, match="two values or more"):
        metrics.mean_sd([7.0])


def test_per_class_accuracy_skips_classes_without_images():
    pred = np.array([0, 0, 1, 2])
    labels = np.array([0, 0, 1, 1])
    # class 0: 2/2, class 1: 1/2, class 2 has no images and is left out: (1 + 0.5) / 2
    assert metrics.per_class_accuracy(pred, labels, classes=[0, 1, 2]) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="no images"):
        metrics.per_class_accuracy(pred, labels, classes=[5])


def test_per_class_mean_is_not_the_image_mean():
    pred = np.array([0, 0, 0, 0, 1])
    labels = np.array([0, 0, 0, 0, 2])   # 4/5 images right, but class 2 is 0/1: (1 + 0) / 2
    assert metrics.per_class_accuracy(pred, labels) == pytest.approx(0.5)


def test_t1_uses_unseen_columns_only():
    # unseen images c, d, e among columns 2, 3: c -> 2 (right), d -> 2 (right), e -> 2 (wrong)
    # class 2: 2/2, class 3: 0/1 -> T1 = 0.5
    assert metrics.czsl_t1(SCORES, LABELS, SEEN) == pytest.approx(0.5)


def test_gzsl_at_gamma_zero_and_calibrated():
    # gamma 0: a->0 ok, b->1 ok, c->0 (delta 0.5 >= 0) wrong, d->2 ok, e->2 wrong
    # S = (1 + 1) / 2 = 1; U = (class 2: 1/2, class 3: 0/1) / 2 = 0.25; H = 2*.25/1.25 = 0.4
    r = metrics.gzsl(SCORES, LABELS, SEEN, gamma=0.0)
    assert (r.S, r.U, r.H) == pytest.approx((1.0, 0.25, 0.4))
    # gamma 0.75: c flips to unseen col 2 (right); a (delta 1) stays seen: S 1, U (1 + 0)/2 = .5, H 2/3
    r = metrics.gzsl(SCORES, LABELS, SEEN, gamma=0.75)
    assert (r.S, r.U, r.H) == pytest.approx((1.0, 0.5, 2 / 3))
    # gamma 1.5: a flips too (wrong): S = 0.5, U = 0.5, H = 0.5
    r = metrics.gzsl(SCORES, LABELS, SEEN, gamma=1.5)
    assert (r.S, r.U, r.H) == pytest.approx((0.5, 0.5, 0.5))


def test_tie_goes_to_the_seen_class():
    scores = np.array([[1.0, 0.0, 1.0, 0.0]])   # delta exactly 0
    assert metrics.predict(scores, SEEN, gamma=0.0)[0] == 0
    assert metrics.predict(scores, SEEN, gamma=1e-9)[0] == 2
    # within a group the lower column wins, as with argmax
    assert metrics.predict(np.array([[2.0, 2.0, 0.0, 0.0]]), SEEN)[0] == 0


def test_calibration_forms():
    s = np.array([[2.0, 0.0, 1.0, -1.0]])
    np.testing.assert_allclose(metrics.calibrate(s, SEEN, 0.5, "subtract_seen"), [[1.5, -0.5, 1.0, -1.0]])
    p = np.exp(s) / np.exp(s).sum()
    np.testing.assert_allclose(metrics.calibrate(s, SEEN, 0.5, "softmax_add_unseen"),
                               p + np.array([[0, 0, 0.5, 0.5]]))
    # softmax form: delta = p0 - p2 = 0.6439 - 0.2369 = 0.4070, so gamma 0.4 keeps seen, 0.41 flips
    assert metrics.predict(s, SEEN, 0.40, "softmax_add_unseen")[0] == 0
    assert metrics.predict(s, SEEN, 0.41, "softmax_add_unseen")[0] == 2
    # subtract form: delta = 2 - 1 = 1
    assert metrics.predict(s, SEEN, 0.99)[0] == 0 and metrics.predict(s, SEEN, 1.01)[0] == 2
    with pytest.raises(ValueError, match="calibration form"):
        metrics.calibrate(s, SEEN, 0.1, "add")


def test_curve_by_hand():
    # sorted deltas: d -2 (unseen, right), e -0.5 (unseen, wrong), c 0.5 (unseen, right),
    # a 1 (seen, right), b 2.5 (seen, right). Weights: a, b 1/2; c, d 1/4 (class 2 of 2 classes); e 1/2.
    curve = metrics.seen_unseen_curve(SCORES, LABELS, SEEN)
    np.testing.assert_allclose(curve.U, [0, 0.25, 0.25, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(curve.S, [1, 1, 1, 1, 0.5, 0])
    np.testing.assert_allclose(curve.lower, [-np.inf, -2, -0.5, 0.5, 1, 2.5])
    # H: 0, .4, .4, 2/3, .5, 0 -> best at point 3, gamma in (0.5, 1] -> middle 0.75
    assert metrics.select_gamma(curve) == pytest.approx(0.75)
    best = curve.best()
    assert (best.U, best.S, best.H) == pytest.approx((0.5, 1.0, 2 / 3))
    # AUSUC: trapezoids over U: 0.25 * 1 + 0 + 0.25 * 1 + 0 + 0 = 0.5
    assert curve.ausuc() == pytest.approx(0.5)


def test_plateau_picks_its_middle():
    # H is best on a run of two points: the chosen gamma is the middle of their union
    scores = np.array([[2.0, 0.0, 1.0, 0.0],    # class 0, delta 1 (seen right)
                       [0.0, 0.0, 1.0, 0.0],    # class 2, delta -1 (unseen right)
                       [0.0, 1.0, 0.0, 0.5]])   # class 2, delta 0.5 (its best unseen is col 3: wrong)
    labels = np.array([0, 2, 2])
    curve = metrics.seen_unseen_curve(scores, labels, SEEN)
    # the third image is never right, so flipping it changes nothing: H = 2/3 (S 1, U 1/2)
    # for gamma in (-1, 0.5] and in (0.5, 1]; the plateau is (-1, 1] and its middle 0
    assert metrics.select_gamma(curve) == pytest.approx(0.0)


@pytest.mark.parametrize("form", metrics.FORMS)
def test_exact_curve_matches_brute_force(form):
    rng = np.random.default_rng(0)
    n, k = 300, 12
    seen = np.arange(k) < 8
    labels = rng.integers(0, k, n)
    scores = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[labels] + 0.7 * seen
    curve = metrics.seen_unseen_curve(scores, labels, seen, form)
    # every point of the curve equals gzsl() at a gamma inside its interval
    for lo, hi, s, u in zip(curve.lower, curve.upper, curve.S, curve.U):
        gamma = hi - 1e-9 if np.isinf(lo) else (lo + 1e-9 if np.isinf(hi) else (lo + hi) / 2)
        r = metrics.gzsl(scores, labels, seen, gamma, form)
        assert (r.S, r.U) == pytest.approx((s, u), abs=1e-12)
    # and no gamma on a grid beats the exact best H
    grid = np.linspace(curve.lower[1] - 1, curve.upper[-2] + 1, 400)
    assert max(metrics.gzsl(scores, labels, seen, g, form).H for g in grid) <= curve.best().H + 1e-12
    # calibration trades S for U: S never rises and U never falls along the curve
    assert np.all(np.diff(curve.S) <= 1e-12) and np.all(np.diff(curve.U) >= -1e-12)


def test_columns_maps_class_ids():
    cols, seen_cols = metrics.columns([7, 3, 9], np.array([9, 7, 3]), seen_classes=[7, 3])
    np.testing.assert_array_equal(cols, [2, 0, 1])
    np.testing.assert_array_equal(seen_cols, [True, True, False])
    with pytest.raises(ValueError, match="not among the candidate"):
        metrics.columns([7, 3], np.array([5]), [7])


def test_standardize_rows():
    z = metrics.standardize_rows(np.array([[1.0, 2.0, 3.0], [10.0, 10.0, 40.0]]))
    np.testing.assert_allclose(z.mean(1), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(1), 1)
