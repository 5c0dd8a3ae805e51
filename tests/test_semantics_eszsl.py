"""GloVe attribute vectors and the closed-form ESZSL probe."""
import numpy as np
import pytest

from zsl_lib.eszsl import ESZSL
from zsl_lib.semantics import load_glove
from zsl_lib.toyworld import birds


def test_phrase_vectors_are_means_of_real_glove_words():
    g = load_glove()
    assert len(g.words) == 400_000 and g.vectors.shape == (400_000, 50)
    np.testing.assert_allclose(g.phrase_vector("hooked beak"), (g.vector("hooked") + g.vector("beak")) / 2)
    V = g.phrase_vectors(birds.ATTRIBUTE_PHRASES)
    assert V.shape == (42, 50) and np.isfinite(V).all()
    # real semantics: colour words are each other's neighbours
    assert "blue" in [w for w, _ in g.nearest(g.vector("red"), k=10, exclude={"red"})]


def test_phrase_vectors_carry_structure():
    g = load_glove()
    def cos(a, b):
        u, v = g.phrase_vector(a), g.phrase_vector(b)
        return float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))
    assert cos("red crown", "red wings") > cos("red crown", "hooked beak")
    assert cos("striped wings", "spotted wings") > cos("striped wings", "small bird")


def test_unknown_word_is_named():
    with pytest.raises(KeyError, match="'zzqxv' is not among"):
        load_glove().phrase_vector("zzqxv beak")


def test_eszsl_solves_its_normal_equations():
    rng = np.random.default_rng(0)
    X, S = rng.normal(size=(40, 6)), rng.normal(size=(4, 5))
    y = rng.integers(0, 5, 40)
    m = ESZSL(alpha=0.3, beta=2.0).fit(X, y, S)
    Y = -np.ones((40, 5))
    Y[np.arange(40), y] = 1
    lhs = (X.T @ X + 0.3 * np.eye(6)) @ m.V @ (S @ S.T + 2.0 * np.eye(4))
    np.testing.assert_allclose(lhs, X.T @ Y @ S.T, atol=1e-9)


def test_eszsl_names_unseen_classes_from_attributes():
    # Features are a hidden linear image of the class attributes plus noise: a map fitted
    # on 15 seen classes must name the 5 unseen classes well above chance (20 %).
    rng = np.random.default_rng(1)
    A, C, d = 12, 20, 30
    S = rng.random((A, C))
    W = rng.normal(size=(A, d))
    labels = rng.integers(0, C, 2000)
    X = S[:, labels].T @ W + 0.3 * rng.normal(size=(2000, d))
    seen, unseen = np.arange(15), np.arange(15, 20)
    train = np.isin(labels, seen)
    m = ESZSL(1.0, 1.0).fit(X[train], labels[train], S[:, seen])
    pred = unseen[m.scores(X[~train], S[:, unseen]).argmax(1)]
    assert (pred == labels[~train]).mean() > 0.45   # 2.25x chance
