"""ToyShapes: the non-bird objects of the pretraining world ToyNet (`toynet`), as ImageNet holds objects besides birds.

Scenes of one to three geometric objects on the same cluttered backgrounds as
ToyBirds, but with no birds in them. The label is the largest object's
shape x colour x texture (256 classes), with factorised shape / colour / texture
labels beside it. Two-tone objects (a core in another colour) make the colour label
a property of a part, not of the whole blob, as bird attributes are.
"""
from __future__ import annotations

import numpy as np

from . import draw as dr

SHAPES = ("circle", "square", "triangle", "star", "cross", "hexagon", "diamond", "crescent")
TEXTURES = ("solid", "striped", "spotted", "two_tone")
COLORS = dr.COLOR_NAMES
NUM_CLASSES = len(SHAPES) * len(COLORS) * len(TEXTURES)


def _regular(n: int, phase: float = 0.0) -> np.ndarray:
    t = np.arange(n) * 2 * np.pi / n + phase
    return np.stack([np.cos(t), np.sin(t)], 1)


def _star() -> np.ndarray:
    outer, inner = _regular(5, -np.pi / 2), 0.45 * _regular(5, -np.pi / 2 + np.pi / 5)
    return np.stack([outer, inner], 1).reshape(10, 2)


def _crescent() -> np.ndarray:
    t = np.linspace(-np.pi / 2, np.pi / 2, 16)
    outer = np.stack([np.cos(t), np.sin(t)], 1)
    inner = np.stack([0.35 * np.cos(t[::-1]), np.sin(t[::-1])], 1)
    return np.concatenate([outer, inner]) - np.array([0.3, 0.0])


OUTLINES: dict[str, np.ndarray] = {  # unit-radius polygons
    "circle": dr.ellipse(0, 0, 1, 1, n=32),
    "square": 0.85 * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float),
    "triangle": _regular(3, -np.pi / 2),
    "star": _star(),
    "cross": 0.9 * np.array([[-0.35, -1], [0.35, -1], [0.35, -0.35], [1, -0.35], [1, 0.35], [0.35, 0.35],
                             [0.35, 1], [-0.35, 1], [-0.35, 0.35], [-1, 0.35], [-1, -0.35], [-0.35, -0.35]]),
    "hexagon": _regular(6),
    "diamond": np.array([[0, -1], [0.55, 0], [0, 1], [-0.55, 0]], dtype=float),
    "crescent": _crescent(),
}


def class_index(shape: int, color: int, texture: int) -> int:
    return (shape * len(COLORS) + color) * len(TEXTURES) + texture


def render_scene(rng: np.random.Generator, size: int = 64) -> tuple[np.ndarray, dict[str, int]]:
    """One scene, (size, size, 3) uint8, and the labels of its largest object."""
    s2 = 2 * size
    canvas, _ = dr.new_canvas(rng, s2)
    n_objects = int(rng.integers(1, 4))
    # The first radius is the largest by construction; objects are drawn in random order.
    radii = [rng.uniform(0.22, 0.36) * s2] + list(rng.uniform(0.08, 0.16, n_objects - 1) * s2)
    objects = [(int(rng.integers(len(SHAPES))), int(rng.integers(len(COLORS))), int(rng.integers(len(TEXTURES))), r)
               for r in radii]
    for k in rng.permutation(n_objects):
        shape, color, texture, radius = objects[k]
        angle = rng.uniform(0, 2 * np.pi)
        center = tuple(rng.uniform(radius * 0.6, s2 - radius * 0.6, 2))
        points = dr.similarity(OUTLINES[SHAPES[shape]], radius, angle, False, center)
        rgb = dr.jitter_color(rng, COLORS[color])
        if TEXTURES[texture] == "two_tone":
            dr.fill_textured(canvas, points, rgb, "solid")
            core_color = COLORS[(color + int(rng.integers(1, len(COLORS)))) % len(COLORS)]
            core = dr.similarity(OUTLINES[SHAPES[shape]], radius * 0.5, angle, False, center)
            dr.fill_textured(canvas, core, dr.jitter_color(rng, core_color), "solid")
        else:
            dr.fill_textured(canvas, points, rgb, TEXTURES[texture], angle=angle, scale=radius * 0.35)
    shape, color, texture, _ = objects[0]
    labels = {"joint": class_index(shape, color, texture), "shape": shape, "color": color, "texture": texture}
    return dr.finish(rng, canvas, size), labels
