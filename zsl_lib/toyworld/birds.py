"""ToyBirds: species, attributes and the bird renderer.

A species is a dominant and a secondary value for each attribute group (CUB-style
`has_<part>_<property>::<value>`); its class attribute vector is the probability of each
value, as CUB's are percentages. Every image samples each group from its species, so
images carry intra-class variation and attribute noise. Unseen species are new
combinations of values that seen species show, which is what makes the task zero-shot.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from . import draw as dr


@dataclass(frozen=True)
class AttributeGroup:
    name: str                 # e.g. "has_crown_color"
    part: str                 # the part whose pixels show it (for scoring attention maps)
    values: tuple[str, ...]
    phrases: tuple[str, ...]  # English phrase per value; its GloVe mean is the word vector


def _colour_group(name: str, part: str, noun: str) -> AttributeGroup:
    return AttributeGroup(name, part, dr.COLOR_NAMES, tuple(f"{c} {noun}" for c in dr.COLOR_NAMES))


GROUPS: tuple[AttributeGroup, ...] = (
    _colour_group("has_crown_color", "crown", "crown"),
    _colour_group("has_wing_color", "wing", "wings"),
    _colour_group("has_belly_color", "belly", "belly"),
    AttributeGroup("has_wing_pattern", "wing", ("solid", "striped", "spotted"),
                   ("plain wings", "striped wings", "spotted wings")),
    AttributeGroup("has_bill_shape", "bill", ("cone", "needle", "hooked"),
                   ("conical beak", "thin pointed beak", "hooked beak")),
    AttributeGroup("has_bill_color", "bill", ("black", "yellow", "orange"),
                   ("black beak", "yellow beak", "orange beak")),
    AttributeGroup("has_tail_shape", "tail", ("short", "long", "forked", "fan"),
                   ("short tail", "long tail", "forked tail", "fan tail")),
    AttributeGroup("has_eye_ring", "eye", ("yes", "no"), ("white eye ring", "plain dark eye")),
    AttributeGroup("has_size", "body", ("small", "medium", "large"), ("small bird", "medium bird", "large bird")),
)
ATTRIBUTE_NAMES: tuple[str, ...] = tuple(f"{g.name}::{v}" for g in GROUPS for v in g.values)
ATTRIBUTE_PHRASES: tuple[str, ...] = tuple(p for g in GROUPS for p in g.phrases)
GROUP_OFFSETS: tuple[int, ...] = tuple(np.cumsum([0] + [len(g.values) for g in GROUPS[:-1]]).tolist())
# Parts in drawing order; the part map stores 1 + index (0 is background / occluder).
PART_NAMES: tuple[str, ...] = ("tail", "legs", "body", "belly", "wing", "head", "crown", "eye", "bill")
ATTRIBUTE_PARTS: tuple[str, ...] = tuple(g.part for g in GROUPS for _ in g.values)
# A bird's scale is its size value's factor times a jitter of +-8 %. (An earlier version of
# ToyBirds used the factors 0.8 / 1.0 / 1.2 and a +-25 % jitter; the three sizes overlapped so
# much that even a perfect reader of a bird's scale could name the size of only 67 % of images.)
SIZE_FACTOR = {"small": 0.8, "medium": 1.0, "large": 1.25}
SIZE_JITTER = (0.92, 1.08)
_GENUS = {"cone": "Finch", "needle": "Warbler", "hooked": "Shrike"}


@dataclass(frozen=True)
class Species:
    """Per group: the dominant value index, the secondary one, and P(dominant)."""
    name: str
    dominant: tuple[int, ...]
    secondary: tuple[int, ...]
    p_dominant: tuple[float, ...]

    def attribute_vector(self) -> np.ndarray:
        """The class attribute vector: P(value) for every one of the A values, (A,)."""
        vec = np.zeros(len(ATTRIBUTE_NAMES), dtype=np.float32)
        for g, off in enumerate(GROUP_OFFSETS):
            vec[off + self.dominant[g]] = self.p_dominant[g]
            vec[off + self.secondary[g]] = 1.0 - self.p_dominant[g]
        return vec


def constraint_violations(dominant: np.ndarray, unseen: np.ndarray) -> list[str]:
    """Check ToyBirds' compositional constraints on dominant profiles (C, G) and unseen ids.

    1. every dominant value of an unseen species is dominant in at least two seen species;
    2. no two species share their full dominant profile;
    3. any two species differ in at least two groups.
    Returns human-readable violations (empty when the world is valid).
    """
    problems = []
    seen = np.setdiff1d(np.arange(len(dominant)), unseen)
    for c in unseen:
        for g, v in enumerate(dominant[c]):
            count = int((dominant[seen, g] == v).sum())
            if count < 2:
                problems.append(f"unseen species {c}: {GROUPS[g].name}::{GROUPS[g].values[v]} "
                                f"is dominant in {count} seen species (need >= 2)")
    differ = (dominant[:, None, :] != dominant[None, :, :]).sum(-1)
    i, j = np.triu_indices(len(dominant), k=1)
    for a, b in zip(i[differ[i, j] < 2], j[differ[i, j] < 2]):
        problems.append(f"species {a} and {b} differ in {differ[a, b]} group(s) (need >= 2)")
    return problems


def make_species(seed: int, n_species: int = 100, n_unseen: int = 25,
                 max_tries: int = 1000) -> tuple[list[Species], np.ndarray]:
    """Sample species and the unseen subset until the constraints hold. Returns (species, unseen ids)."""
    rng = np.random.default_rng([seed, 1])
    sizes = np.array([len(g.values) for g in GROUPS])
    for _ in range(max_tries):
        dominant = rng.integers(0, sizes, size=(n_species, len(GROUPS)))
        unseen = np.sort(rng.choice(n_species, n_unseen, replace=False))
        if not constraint_violations(dominant, unseen):
            break
    else:
        raise RuntimeError(f"no valid ToyBirds world after {max_tries} tries for seed={seed}, "
                           f"n_species={n_species}, n_unseen={n_unseen}; use fewer unseen species")
    secondary = (dominant + rng.integers(1, sizes, size=dominant.shape)) % sizes
    p_dom = rng.uniform(0.78, 0.92, size=dominant.shape).round(3)
    species = []
    for c in range(n_species):
        crown = GROUPS[0].values[dominant[c, 0]].capitalize()
        pattern = GROUPS[3].values[dominant[c, 3]]
        genus = _GENUS[GROUPS[4].values[dominant[c, 4]]]
        name = f"{c + 1:03d}.{crown}_crowned_{pattern.capitalize()}_{genus}"
        species.append(Species(name, tuple(map(int, dominant[c])), tuple(map(int, secondary[c])),
                               tuple(map(float, p_dom[c]))))
    return species, unseen


def sample_attributes(rng: np.random.Generator, sp: Species) -> tuple[int, ...]:
    """One image's value per group, drawn from its species."""
    return tuple(d if rng.random() < p else s for d, s, p in zip(sp.dominant, sp.secondary, sp.p_dominant))


def values_to_binary(values: tuple[int, ...]) -> np.ndarray:
    """Per-group value indices -> binary attribute vector (A,), one 1 per group."""
    vec = np.zeros(len(ATTRIBUTE_NAMES), dtype=np.uint8)
    vec[np.asarray(GROUP_OFFSETS) + np.asarray(values)] = 1
    return vec


# Bills are drawn 1.3 times the outlines of an earlier version of ToyBirds (scaled about their
# root at (0.40, -0.165)), so that at 64 px the three shapes differ by more than a pixel or two.
_BILL_ROOT = np.array([0.40, -0.165])
_BILLS = {name: _BILL_ROOT + 1.3 * (np.array(points) - _BILL_ROOT) for name, points in {
    "cone": [[0.40, -0.22], [0.55, -0.165], [0.40, -0.11]],
    "needle": [[0.41, -0.19], [0.68, -0.16], [0.41, -0.145]],
    "hooked": [[0.40, -0.22], [0.52, -0.21], [0.57, -0.15], [0.535, -0.10], [0.52, -0.15], [0.40, -0.12]],
}.items()}
_TAILS = {
    "short": np.array([[-0.27, -0.07], [-0.45, -0.06], [-0.45, 0.02], [-0.27, 0.03]]),
    "long": np.array([[-0.27, -0.06], [-0.68, -0.05], [-0.68, 0.01], [-0.27, 0.03]]),
    "forked": np.array([[-0.27, -0.07], [-0.60, -0.14], [-0.48, -0.02], [-0.60, 0.09], [-0.27, 0.03]]),
    "fan": np.array([[-0.27, -0.04], [-0.55, -0.19], [-0.62, -0.02], [-0.55, 0.15], [-0.27, 0.03]]),
}


def render_bird(rng: np.random.Generator, values: tuple[int, ...], size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Draw one bird with the given attribute values on a cluttered background.

    Returns the image (size, size, 3) uint8 and its part map (size, size) uint8, where
    pixel value k > 0 means part PART_NAMES[k - 1] is visible there.
    """
    v = {g.name: g.values[i] for g, i in zip(GROUPS, values)}
    s2 = 2 * size
    canvas, draw = dr.new_canvas(rng, s2)
    parts = Image.new("L", (s2, s2), 0)
    pdraw = ImageDraw.Draw(parts)

    # Pose and framing nuisances: position +-25 % of the frame, scale (size value and jitter), tilt, flip.
    scale = 0.5 * s2 * SIZE_FACTOR[v["has_size"]] * rng.uniform(*SIZE_JITTER)
    tilted = rng.random() < 0.4
    angle = rng.uniform(-0.6, 0.6) if tilted else rng.uniform(-0.15, 0.15)
    flip = bool(rng.random() < 0.5)
    offset = (s2 * (0.5 + rng.uniform(-0.25, 0.25)), s2 * (0.5 + rng.uniform(-0.25, 0.25)))

    matrix, shift = dr.similarity_matrix(scale, angle, flip), np.asarray(offset)

    def place(points: np.ndarray) -> np.ndarray:
        return points @ matrix + shift

    wing_rgb = dr.jitter_color(rng, v["has_wing_color"])
    body_rgb = dr.shade(wing_rgb, 1.25)
    tail_rgb = dr.shade(wing_rgb, 0.8)
    leg_rgb = dr.jitter_color(rng, "black", 25)
    legs = [np.array([[x, 0.15], [x + 0.025, 0.15], [x + dx + 0.025, 0.34], [x + dx, 0.34]])
            for x, dx in ((-0.02, -0.02), (0.07, 0.01))]
    wing = dr.similarity(dr.ellipse(0, 0, 0.25, 0.11), 1.0, -0.15, False, (-0.05, -0.03))
    head = dr.ellipse(0.29, -0.17, 0.13, 0.13)
    shapes = [  # (part, polygon in the bird's frame, colour, texture)
        ("tail", _TAILS[v["has_tail_shape"]], tail_rgb, "solid"),
        *[("legs", leg, leg_rgb, "solid") for leg in legs],
        ("body", dr.ellipse(0, 0, 0.32, 0.19), body_rgb, "solid"),
        ("belly", dr.ellipse(0.05, 0.07, 0.24, 0.11, start=0.05, stop=np.pi - 0.05),
         dr.jitter_color(rng, v["has_belly_color"]), "solid"),
        ("wing", wing, wing_rgb, v["has_wing_pattern"]),
        ("head", head, body_rgb, "solid"),
        ("crown", dr.ellipse(0.29, -0.17, 0.14, 0.14, start=np.pi * 1.02, stop=np.pi * 1.98),
         dr.jitter_color(rng, v["has_crown_color"]), "solid"),
    ]
    eye_ring = v["has_eye_ring"] == "yes"
    # The ring is 0.04 of the bird's scale wide, over a pixel at 64 px (the 0.024 of an earlier
    # version was under one pixel and vanished in the downsampling).
    shapes.append(("eye", dr.ellipse(0.345, -0.175, 0.07, 0.07, n=16),
                   dr.jitter_color(rng, "white", 12) if eye_ring else body_rgb, "solid"))
    shapes.append(("eye", dr.ellipse(0.345, -0.175, 0.03, 0.03, n=10), (15, 15, 15), "solid"))
    shapes.append(("bill", _BILLS[v["has_bill_shape"]], dr.jitter_color(rng, v["has_bill_color"]), "solid"))

    for part, points, rgb, texture in shapes:
        placed = place(points)
        dr.fill_textured(canvas, placed, rgb, texture, angle=angle, scale=0.08 * scale, draw=draw)
        dr.polygon(pdraw, placed, PART_NAMES.index(part) + 1)

    if rng.random() < 0.25:  # an occluding branch or leaf across the frame
        c = rng.uniform(0.2, 0.8, 2) * s2
        band = np.array([[-1.0, -0.05], [1.0, -0.05], [1.0, 0.05], [-1.0, 0.05]]) * np.array([s2, s2 * rng.uniform(0.6, 1.2)])
        placed = dr.similarity(band, 1.0, rng.uniform(0, np.pi), False, tuple(c))
        dr.polygon(draw, placed, dr.jitter_color(rng, str(rng.choice(["brown", "green"]))))
        dr.polygon(pdraw, placed, 0)

    image = dr.finish(rng, canvas, size)
    # A part is kept at 1x where any of its 2x pixels shows it; later (on-top) parts win.
    pm = np.asarray(parts).reshape(size, 2, size, 2).max(axis=(1, 3))
    return image, pm.astype(np.uint8)
