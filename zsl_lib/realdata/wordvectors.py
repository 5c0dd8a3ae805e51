"""Attribute word vectors for the real benchmarks: the peers' files, or computed from a text file.

VSPCN and Mg-MRN read one vector per attribute (A x 300 on CUB). Three sources:

1. the `.npy` / `.pkl` files that TransZero, PSVMA and the papers' code distribute
   (`load_vectors_file`; a `.pkl` goes through an unpickler that builds plain numpy
   arrays and refuses anything else, so a file from the internet cannot run code);
2. a GloVe or word2vec *text* file the user gives (`vectors_from_text`): each attribute
   name is cleaned into a phrase (`clean_attribute_name`) and its vector is the mean of
   the vectors of the phrase's words that the file knows;
3. offline, GloVe 6B 50-d from PyPI (`glove_vectors`), the same recipe with 50 dimensions.
"""
from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path

import numpy as np

from ..semantics import load_glove


def clean_attribute_name(name: str) -> str:
    """An attribute name as a phrase of plain lower-case words.

    'has_bill_shape::curved_(up_or_down)' -> 'bill shape curved up or down' (CUB);
    'sailing/ boating' -> 'sailing boating' (SUN); 'black' -> 'black' (AWA2). A leading
    number (CUB's attributes.txt) and the prefix 'has' are dropped; separators become spaces.
    """
    text = re.sub(r"^\s*\d+\s+", "", name.strip()).lower()
    text = re.sub(r"^has_", "", text)
    words = re.split(r"[\s_:/()\-,&.]+", text)
    return " ".join(w for w in words if w)


class _ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays (and their dtypes) and refuses every other global."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name}: only numpy arrays are accepted")
        return super().find_class(module, name)


def load_vectors_file(path: str | Path, n_attributes: int) -> np.ndarray:
    """An (A, d) float32 matrix from a `.npy` or `.pkl` file, checked against the attribute count."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no attribute vector file at {path}; give the .npy/.pkl file of the "
                                "benchmark's attribute word vectors, or a GloVe/word2vec text file")
    if path.suffix == ".npy":
        vectors = np.load(path, allow_pickle=False)
    elif path.suffix == ".pkl":
        try:
            with open(path, "rb") as f:
                vectors = _ArraysOnly(f).load()
        except pickle.UnpicklingError as err:
            raise ValueError(f"{path}: {err}; convert the vectors to .npy") from None
    else:
        raise ValueError(f"{path}: attribute vectors must be .npy or .pkl (or a .txt embedding file)")
    if not isinstance(vectors, np.ndarray) or vectors.ndim != 2:
        raise ValueError(f"{path} holds {type(vectors).__name__} {getattr(vectors, 'shape', '')}, not an (A, d) matrix")
    if vectors.shape[0] != n_attributes:
        raise ValueError(f"{path} has vectors for {vectors.shape[0]} attributes but the split file has "
                         f"{n_attributes}; use the vector file of the same dataset")
    return vectors.astype(np.float32)


def _phrase_means(phrases: list[str], lookup) -> np.ndarray:
    """Mean word vector of each phrase; words the vocabulary lacks are skipped (zero row if all are)."""
    rows, empty = [], []
    for phrase in phrases:
        found = [v for v in (lookup(w) for w in phrase.split()) if v is not None]
        if not found:
            empty.append(phrase)
        rows.append(np.mean(found, axis=0) if found else None)
    dim = next(len(r) for r in rows if r is not None)
    if empty:
        warnings.warn(f"{len(empty)} attribute phrase(s) have no known word and get a zero vector: {empty[:5]}")
    return np.stack([r if r is not None else np.zeros(dim) for r in rows]).astype(np.float32)


def vectors_from_text(path: str | Path, names: list[str]) -> np.ndarray:
    """(A, d) phrase means from a GloVe / word2vec text file ('word v1 v2 ...' per line)."""
    path = Path(path)
    phrases = [clean_attribute_name(n) for n in names]
    wanted = {w for p in phrases for w in p.split()}
    table = {}
    with open(path, encoding="utf8", errors="replace") as f:
        for line in f:
            word, _, rest = line.rstrip().partition(" ")
            if word in wanted:
                table[word] = np.array(rest.split(), dtype=np.float32)
    if not table:
        raise ValueError(f"{path} knows none of the attribute words (e.g. {sorted(wanted)[:5]}); "
                         "is it a GloVe/word2vec text file?")
    return _phrase_means(phrases, table.get)


def glove_vectors(names: list[str]) -> np.ndarray:
    """(A, 50) from GloVe 6B 50-d (offline): the fallback when no 300-d vectors are at hand."""
    glove = load_glove()
    phrases = [clean_attribute_name(n) for n in names]
    return _phrase_means(phrases, lambda w: glove.vector(w) if w in glove.index else None)
