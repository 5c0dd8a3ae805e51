"""Honest (G)ZSL metrics: per-class mean accuracy, T1, U / S / H, calibrated stacking, AUSUC.

Conventions used by every function here:

* `scores` is (n, K) over K candidate classes (columns), `labels` (n,) holds each
  image's true column, and `seen_cols` (K,) is True for the seen columns. An image is a
  seen-class image when its true column is seen. `columns()` builds these from class ids.
* Accuracy is the mean over classes of per-class top-1 (Xian et al.'s protocol), so a
  large class cannot hide a bad small one. A class with no images is left out of the mean
  (it has no accuracy), rather than counted as 0 or 1.
* Calibrated stacking (Chao et al. 2016) comes in the two forms the papers use, and both
  reduce to one decision per image: predict the best seen class when
  delta = best seen score - best unseen score >= gamma, else the best unseen class.
  - "subtract_seen" (PSVMA, Mg-MRN): score - gamma on the seen columns;
  - "softmax_add_unseen" (VSPCN, Eq. 19): softmax over all K columns, + gamma on unseen.
  A tie goes to the seen class (it comes first, as with argmax); within a group, to the
  lower column.
* Because S(gamma) and U(gamma) only change where gamma crosses an image's delta, the
  seen-unseen curve is computed exactly from the sorted deltas (no 0.01 grid).
* A result over worlds or seeds is reported as its mean and its *sample* standard deviation
  (n - 1 in the denominator), by `mean_sd`, everywhere in the book.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FORMS = ("subtract_seen", "softmax_add_unseen")


def columns(class_ids, labels, seen_classes) -> tuple[np.ndarray, np.ndarray]:
    """Map class ids to columns: (labels as column indices, seen_cols mask) for candidates `class_ids`."""
    class_ids = np.asarray(class_ids)
    position = {int(c): k for k, c in enumerate(class_ids)}
    missing = set(np.unique(labels).tolist()) - set(position)
    if missing:
        raise ValueError(f"labels {sorted(missing)[:5]} are not among the candidate classes")
    cols = np.array([position[int(y)] for y in labels], dtype=np.int64)
    return cols, np.isin(class_ids, np.asarray(seen_classes))


def per_class_accuracy(pred, labels, classes=None) -> float:
    """Mean over classes of the per-class top-1 accuracy; classes without images are skipped."""
    pred, labels = np.asarray(pred), np.asarray(labels)
    classes = np.unique(labels) if classes is None else np.asarray(classes)
    accs = [np.mean(pred[labels == c] == c) for c in classes if np.any(labels == c)]
    if not accs:
        raise ValueError("no images of any of the given classes: accuracy is undefined")
    return float(np.mean(accs))


def mean_sd(values, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample standard deviation (n - 1 in the denominator) of `values` along `axis`.

    With three worlds the sample sd is sqrt(3/2) = 1.22 times the population sd; it is the
    unbiased-variance estimate of how much one more world would move the result."""
    values = np.asarray(values, dtype=float)
    if values.shape[axis] < 2:
        raise ValueError(f"a spread needs two values or more along axis {axis}, got shape {values.shape}")
    return values.mean(axis), values.std(axis, ddof=1)


def scalars(report: dict) -> dict:
    """A report's numbers without its attachments (the keys that start with "_": a curve, scores)."""
    return {k: v for k, v in report.items() if not k.startswith("_")}


def percent(fraction: float, digits: int = 2) -> float:
    """A fraction as the percent the stored results and the chapters print, rounded to `digits`."""
    return round(100 * float(fraction), digits)


def harmonic_mean(u: float, s: float) -> float:
    return 0.0 if u + s == 0 else 2 * u * s / (u + s)


def softmax(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def calibrate(scores, seen_cols, gamma: float, form: str = "subtract_seen") -> np.ndarray:
    """Calibrated scores in either paper's form (see the module docstring)."""
    scores, seen_cols = np.asarray(scores, dtype=np.float64), np.asarray(seen_cols, bool)
    if form == "subtract_seen":
        return scores - gamma * seen_cols
    if form == "softmax_add_unseen":
        return softmax(scores) + gamma * ~seen_cols
    raise ValueError(f"unknown calibration form {form!r}; choose one of {FORMS}")


def _decisions(scores, seen_cols, form: str):
    """Per image: best seen column, best unseen column, and delta (in the form's units)."""
    s = calibrate(scores, seen_cols, 0.0, form)
    seen_idx, unseen_idx = np.flatnonzero(seen_cols), np.flatnonzero(~seen_cols)
    if len(seen_idx) == 0 or len(unseen_idx) == 0:
        raise ValueError("GZSL needs at least one seen and one unseen candidate column")
    best_seen = seen_idx[np.argmax(s[:, seen_idx], axis=1)]
    best_unseen = unseen_idx[np.argmax(s[:, unseen_idx], axis=1)]
    delta = s[np.arange(len(s)), best_seen] - s[np.arange(len(s)), best_unseen]
    return best_seen, best_unseen, delta


def predict(scores, seen_cols, gamma: float = 0.0, form: str = "subtract_seen") -> np.ndarray:
    """GZSL predictions (columns) with calibration gamma."""
    best_seen, best_unseen, delta = _decisions(scores, seen_cols, form)
    return np.where(delta >= gamma, best_seen, best_unseen)


def czsl_t1(scores, labels, seen_cols) -> float:
    """Conventional ZSL: argmax over the unseen columns only, per-class mean over unseen images."""
    seen_cols, labels = np.asarray(seen_cols, bool), np.asarray(labels)
    unseen_idx = np.flatnonzero(~seen_cols)
    mask = ~seen_cols[labels]
    pred = unseen_idx[np.argmax(np.asarray(scores)[mask][:, unseen_idx], axis=1)]
    return per_class_accuracy(pred, labels[mask])


@dataclass(frozen=True)
class GZSLResult:
    U: float
    S: float
    H: float
    gamma: float


def gzsl(scores, labels, seen_cols, gamma: float = 0.0, form: str = "subtract_seen") -> GZSLResult:
    """U (per-class mean over unseen-class images), S (over seen-class images), H, at one gamma."""
    seen_cols, labels = np.asarray(seen_cols, bool), np.asarray(labels)
    pred = predict(scores, seen_cols, gamma, form)
    is_seen_img = seen_cols[labels]
    s = per_class_accuracy(pred[is_seen_img], labels[is_seen_img])
    u = per_class_accuracy(pred[~is_seen_img], labels[~is_seen_img])
    return GZSLResult(u, s, harmonic_mean(u, s), gamma)


@dataclass(frozen=True)
class SeenUnseenCurve:
    """The exact seen-unseen curve: point k holds for every gamma in (lower[k], upper[k]]."""
    lower: np.ndarray   # (m+1,) -inf for the first point
    upper: np.ndarray   # (m+1,) +inf for the last point
    S: np.ndarray       # (m+1,) non-increasing in k
    U: np.ndarray       # (m+1,) non-decreasing in k
    form: str

    @property
    def H(self) -> np.ndarray:
        return np.where(self.S + self.U > 0, 2 * self.S * self.U / np.maximum(self.S + self.U, 1e-12), 0.0)

    def ausuc(self) -> float:
        """Area under the seen-unseen curve (S over U, trapezoid rule), from (0, S_max) to (U_max, 0)."""
        return float(np.trapezoid(self.S, self.U))

    def best(self) -> GZSLResult:
        """The best H over all gamma, with a gamma inside its plateau (see `select_gamma`)."""
        gamma = select_gamma(self)
        k = int(np.argmax(self.H))
        return GZSLResult(float(self.U[k]), float(self.S[k]), float(self.H[k]), gamma)


def seen_unseen_curve(scores, labels, seen_cols, form: str = "subtract_seen") -> SeenUnseenCurve:
    """S and U for every gamma at once, from the sorted per-image deltas."""
    seen_cols, labels = np.asarray(seen_cols, bool), np.asarray(labels)
    best_seen, best_unseen, delta = _decisions(scores, seen_cols, form)
    is_seen_img = seen_cols[labels]
    # Per-class mean accuracy as a weighted sum: image i weighs 1 / (n_class * n_classes in its group).
    weight = np.zeros(len(labels))
    for group in (is_seen_img, ~is_seen_img):
        classes, counts = np.unique(labels[group], return_counts=True)
        if len(classes) == 0:
            raise ValueError("the curve needs images of both seen and unseen classes")
        per_class = dict(zip(classes.tolist(), (1.0 / (counts * len(classes))).tolist()))
        weight[group] = [per_class[y] for y in labels[group].tolist()]
    seen_gain = weight * (is_seen_img & (best_seen == labels))       # counted while predicted seen
    unseen_gain = weight * (~is_seen_img & (best_unseen == labels))  # counted once predicted unseen
    order = np.argsort(delta, kind="stable")
    d = delta[order]
    flipped_seen, flipped_unseen = np.cumsum(seen_gain[order]), np.cumsum(unseen_gain[order])
    last = np.flatnonzero(np.r_[d[1:] != d[:-1], True])  # last image of each distinct delta
    S = np.r_[seen_gain.sum(), seen_gain.sum() - flipped_seen[last]]
    U = np.r_[0.0, flipped_unseen[last]]
    thresholds = d[last]
    # Point 0 (all predicted seen) holds for gamma <= d_1; point k for gamma in (d_k, d_{k+1}].
    lower = np.r_[-np.inf, thresholds]
    upper = np.r_[thresholds, np.inf]
    return SeenUnseenCurve(lower, upper, np.clip(S, 0, 1), np.clip(U, 0, 1), form)


def select_gamma(curve: SeenUnseenCurve) -> float:
    """The gamma of best H: the middle of the widest contiguous run of points that reach it.

    Choosing the middle of the plateau, not its edge, is what makes a gamma chosen on
    validation data transfer to the test split. Open-ended plateaus get a point one
    typical gap beyond the last finite threshold.
    """
    h = curve.H
    best = np.flatnonzero(np.isclose(h, h.max(), rtol=0, atol=1e-12))
    runs = np.split(best, np.flatnonzero(np.diff(best) > 1) + 1)
    run = max(runs, key=len)
    lo, hi = curve.lower[run[0]], curve.upper[run[-1]]
    finite = np.r_[curve.lower[1:], curve.upper[:-1]]
    step = float(np.median(np.diff(np.unique(finite)))) if len(np.unique(finite)) > 1 else 1.0
    if np.isinf(lo) and np.isinf(hi):
        return 0.0
    if np.isinf(lo):
        return float(hi - step)
    if np.isinf(hi):
        return float(lo + step)
    return float((lo + hi) / 2)


def standardize_rows(scores: np.ndarray) -> np.ndarray:
    """Z-score each image's scores over its candidate columns.

    Validation has fewer candidate classes than test; standardised rows keep a gamma
    chosen on one meaningful on the other.
    """
    scores = np.asarray(scores, dtype=np.float64)
    return (scores - scores.mean(1, keepdims=True)) / np.maximum(scores.std(1, keepdims=True), 1e-12)


def gzsl_report(scores, labels, seen_cols, gamma: float, form: str = "subtract_seen") -> dict:
    """Everything a results table shows, as fractions: T1; U / S / H without calibration and at
    `gamma` (chosen elsewhere, on validation data); AUSUC; and the best H of a sweep over these
    very images, labelled `H_test_tuned` because choosing gamma on them is optimistic."""
    curve = seen_unseen_curve(scores, labels, seen_cols, form)
    uncal, cal = gzsl(scores, labels, seen_cols, 0.0, form), gzsl(scores, labels, seen_cols, gamma, form)
    return {"T1": czsl_t1(scores, labels, seen_cols),
            "U_uncal": uncal.U, "S_uncal": uncal.S, "H_uncal": uncal.H,
            "U": cal.U, "S": cal.S, "H": cal.H, "gamma": gamma,
            "AUSUC": curve.ausuc(), "H_test_tuned": curve.best().H, "_curve": curve}
