"""ESZSL (Romera-Paredes & Torr, 2015): a closed-form linear map from features to attributes.

With features X (n, d), seen-class targets Y (n, z) in {-1, +1} and class signatures
S (A, z), ESZSL minimises ||X V S - Y||^2 + alpha ||V S||^2 + beta ||X V||^2 + ...,
whose minimiser is

    V = (X^T X + alpha I)^{-1} X^T Y S^T (S S^T + beta I)^{-1}        (d, A)

and a class c scores x by x V s_c. Any class with a signature can be scored, which is
what makes it zero-shot.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ESZSL:
    alpha: float = 1.0   # regularises the feature side
    beta: float = 1.0    # regularises the signature side
    V: np.ndarray | None = None

    def fit(self, X: np.ndarray, y_cols: np.ndarray, signatures: np.ndarray) -> "ESZSL":
        """X (n, d); y_cols (n,) column of each image's class in `signatures` (A, z)."""
        X = np.asarray(X, np.float64)
        S = np.asarray(signatures, np.float64)
        Y = -np.ones((len(X), S.shape[1]))
        Y[np.arange(len(X)), y_cols] = 1.0
        left = np.linalg.solve(X.T @ X + self.alpha * np.eye(X.shape[1]), X.T @ Y @ S.T)   # (d, A)
        self.V = np.linalg.solve(S @ S.T + self.beta * np.eye(S.shape[0]), left.T).T      # (d, A)
        return self

    def predict_attributes(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, np.float64) @ self.V              # (n, A)

    def scores(self, X: np.ndarray, signatures: np.ndarray) -> np.ndarray:
        return self.predict_attributes(X) @ np.asarray(signatures, np.float64)  # (n, z)
