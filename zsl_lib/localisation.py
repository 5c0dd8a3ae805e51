"""Scoring per-attribute attention against ToyBirds' ground-truth part masks, with controls.

A model "attends" to attribute a of image b with a distribution over the N cells of a square
grid laid over the image: `attention` (B, A, N), each row non-negative and summing to one.
ToyBirds knows which part every pixel shows, so `part_coverage` turns the part maps into
`coverage` (B, P, N), the fraction of each cell that shows part p, and `attribute_parts`
gives the part each attribute describes, `parts` (A,) (the crown for "red crown", ...).

The measures, each defined where it is computed:

- `part_mass` (B, A, P): the attention of attribute a that lands on the pixels of part p;
  `part_area` (B, P): the same for uniform attention, the part's share of the image.
- `mass_ratio`: the attention on the attribute's own part over that part's area, pooled over
  images (sum of masses over sum of areas). 1 is what uniform attention scores.
- `pointing` (B, A): does the attention's peak cell show the attribute's part? (ties at the
  peak share the point); `pointing_chance` is what a uniformly random peak scores.
- `specificity` (B, A): the mass attribute a puts on its own part minus the mean mass that the
  attributes of the other parts put on that same part. It is 0 whenever all attributes attend
  alike, however much they favour the bird over the background: this is what separates
  attribute localisation from bird-versus-background attention. `specific_share` pools it as a
  share of the attention on the own parts (0 shared maps, 1 each part seen by its attributes only).
- `map_spread` (B,): how far each attribute's map is from the mean map of all attributes
  (total variation: 0 = every attribute attends alike, 1 - 1/A for A disjoint one-cell maps).

Controls, scored with the same functions:

- wrong part: the same attribute's attention scored on the bird's other parts
  (`wrong_part_ratio`, `wrong_part_pointing`); an attention that finds the bird but not the
  part scores about as well on the wrong parts as on the right one;
- a model trained with shuffled attributes (`shuffled_parts`: attribute a was supervised
  with the labels of another attribute, of another part): if attention follows supervision,
  its maps point to the part of the labels it was trained on, not the part its name says;
- an untrained model: what the architecture and the pretrained backbone give before any
  attribute supervision.

`localisation_report` computes all of it for one model's attention in one table.
"""
from __future__ import annotations

import numpy as np

from .toyworld.birds import ATTRIBUTE_PARTS, PART_NAMES


def attribute_parts(attribute_parts_names=ATTRIBUTE_PARTS, part_names=PART_NAMES) -> np.ndarray:
    """Index into `part_names` of the part each attribute describes, (A,)."""
    unknown = sorted(set(attribute_parts_names) - set(part_names))
    if unknown:
        raise ValueError(f"attribute parts {unknown} are not among the parts {list(part_names)}")
    return np.array([part_names.index(p) for p in attribute_parts_names])


def part_coverage(part_maps: np.ndarray, grid: int, num_parts: int = len(PART_NAMES)) -> np.ndarray:
    """Fraction of each cell of a `grid` x `grid` layout that shows each part, (B, P, N), cells row-major
    like a ViT's patch tokens. `part_maps` (B, H, W) holds 1 + part index, 0 for background."""
    part_maps = np.asarray(part_maps)
    size = part_maps.shape[-1]
    if part_maps.ndim != 3 or part_maps.shape[1] != size:
        raise ValueError(f"part_maps must be (B, H, W) with H == W, got {part_maps.shape}")
    if grid < 1 or size % grid:
        raise ValueError(f"a {grid} x {grid} grid does not tile {size} px part maps; use a divisor of {size}")
    cell = size // grid
    onehot = part_maps[:, None] == np.arange(1, num_parts + 1)[None, :, None, None]      # (B, P, H, W)
    return onehot.reshape(len(part_maps), num_parts, grid, cell, grid, cell).mean((3, 5)).reshape(
        len(part_maps), num_parts, grid * grid)                                       # (B, P, N)


def check_attention(attention: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """`attention` as float64 (B, A, N) after checking it is a distribution per row on `coverage`'s grid."""
    attention = np.asarray(attention, dtype=np.float64)
    if attention.ndim != 3 or attention.shape[0] != coverage.shape[0] or attention.shape[2] != coverage.shape[2]:
        raise ValueError(f"attention {attention.shape} must be (B, A, N) with B, N of the coverage {coverage.shape}; "
                         "flatten a (B, A, H, W) map with .reshape(B, A, -1)")
    if (attention < 0).any() or not np.allclose(attention.sum(-1), 1.0, atol=1e-4):
        raise ValueError("each attention row must be non-negative and sum to 1; normalise it first "
                         "(e.g. `as_distribution` for a relevance map)")
    return attention


def as_distribution(relevance: np.ndarray) -> np.ndarray:
    """A signed relevance map (B, A, N) as a distribution: its positive part, normalised per row;
    a row without any positive value becomes uniform."""
    positive = np.clip(np.asarray(relevance, dtype=np.float64), 0, None)
    total = positive.sum(-1, keepdims=True)
    uniform = np.full_like(positive, 1.0 / positive.shape[-1])
    return np.where(total > 0, positive / np.where(total > 0, total, 1.0), uniform)


def part_mass(attention: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """Attention of each attribute on the pixels of each part, (B, A, P): sum over cells of
    attention times the cell's share of the part."""
    return np.einsum("ban,bpn->bap", check_attention(attention, coverage), coverage)


def part_area(coverage: np.ndarray) -> np.ndarray:
    """Each part's share of the image, (B, P): the mass uniform attention puts on it."""
    return np.asarray(coverage).mean(-1)


def mass_ratio(attention: np.ndarray, coverage: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """Per attribute, (A,): the attention on the attribute's part (`parts` (A,)) over the part's area,
    pooled over the images (sum of masses / sum of areas, so tiny parts of single images do not
    dominate). 1 means no more attention on the part than uniform attention; NaN for an
    attribute whose part shows in no image."""
    own = np.take_along_axis(part_mass(attention, coverage), np.asarray(parts)[None, :, None], 2)[..., 0]   # (B, A)
    area = part_area(coverage)[:, parts]                                                               # (B, A)
    with np.errstate(invalid="ignore", divide="ignore"):
        return own.sum(0) / area.sum(0)


def wrong_part_ratio(attention: np.ndarray, coverage: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """The wrong-part control, (A,): `mass_ratio` of each attribute's attention on every other part,
    averaged over those parts (parts that show in no image left out)."""
    mass, area = part_mass(attention, coverage).sum(0), part_area(coverage).sum(0)      # (A, P), (P,)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(area > 0, mass / area, np.nan)                                  # (A, P)
    ratio[np.arange(len(parts)), parts] = np.nan
    return np.nanmean(ratio, axis=1)


def peak_cells(attention: np.ndarray, rtol: float = 1e-6) -> np.ndarray:
    """The cells at each row's maximum, ties within `rtol` of it, as weights summing to 1: (B, A, N)."""
    attention = np.asarray(attention, dtype=np.float64)
    peak = attention >= attention.max(-1, keepdims=True) * (1 - rtol)
    return peak / peak.sum(-1, keepdims=True)


def pointing_table(attention: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """Does attribute a's peak cell show part p? (B, A, P) in [0, 1]; when several cells tie at the
    peak, the share of them that do."""
    shows = (np.asarray(coverage) > 0).astype(np.float64)                               # (B, P, N)
    return np.einsum("ban,bpn->bap", peak_cells(check_attention(attention, coverage)), shows)


def pointing(attention: np.ndarray, coverage: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """The pointing score, (B, A) in [0, 1]: 1 if the attention's peak cell shows any pixel of the
    attribute's part, 0 if not; when several cells tie at the peak, the share of them that do."""
    return np.take_along_axis(pointing_table(attention, coverage), np.asarray(parts)[None, :, None], 2)[..., 0]


def pointing_chance(coverage: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """What a peak drawn uniformly at random scores, (B, A): the share of cells that show the part."""
    return (np.asarray(coverage)[:, parts] > 0).mean(-1)


def wrong_part_pointing(attention: np.ndarray, coverage: np.ndarray, parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The wrong-part control of pointing, per attribute (A,): the pointing score on every other part,
    averaged over those parts and the images, and its chance level the same way."""
    parts = np.asarray(parts)
    other = np.arange(np.asarray(coverage).shape[1])[None, :] != parts[:, None]         # (A, P)
    table = pointing_table(attention, coverage).mean(0)                                  # (A, P)
    chance = (np.asarray(coverage) > 0).mean(-1).mean(0)                                 # (P,)
    return (table * other).sum(1) / other.sum(1), (chance[None, :] * other).sum(1) / other.sum(1)


def specificity(attention: np.ndarray, coverage: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """Attribute specificity, (B, A): the mass attribute a puts on its part p(a), minus the mean mass
    that the attributes of other parts put on p(a). 0 when all attributes attend alike (a
    bird-versus-background map included); positive when an attribute singles out its own part."""
    parts = np.asarray(parts)
    mass = part_mass(attention, coverage)[:, :, parts]                 # (B, A', A): mass of a' on p(a)
    own = np.einsum("baa->ba", mass)                                    # (B, A)
    other = parts[:, None] != parts[None, :]                            # (A', A): a' describes another part
    return own - (mass * other).sum(1) / other.sum(0)


def specific_share(attention: np.ndarray, coverage: np.ndarray, parts: np.ndarray) -> float:
    """The share of the attention that attributes put on their own parts which the attributes of other
    parts do not put there: the sum of `specificity` over the sum of the own-part masses, pooled
    over images and attributes. 0 for maps shared by all attributes, 1 when no other attribute
    looks at an attribute's part."""
    own = np.take_along_axis(part_mass(attention, coverage), np.asarray(parts)[None, :, None], 2)[..., 0]   # (B, A)
    return float(specificity(attention, coverage, parts).sum() / own.sum())


def map_spread(attention: np.ndarray) -> np.ndarray:
    """Mean total-variation distance between each attribute's map and the attributes' mean map, (B,):
    0 when every attribute attends alike, 1 - 1/A when the A maps sit on disjoint cells."""
    attention = np.asarray(attention, dtype=np.float64)
    return 0.5 * np.abs(attention - attention.mean(1, keepdims=True)).sum(-1).mean(-1)


def localisation_report(attention: np.ndarray, coverage: np.ndarray, parts: np.ndarray) -> dict[str, np.ndarray]:
    """Every measure of this module for one model's attention, per attribute (A,) except `spread`
    (a number): ratio, wrong_ratio, pointing, pointing_chance, wrong_pointing, wrong_pointing_chance,
    specificity, specific_share, spread."""
    wrong, wrong_chance = wrong_part_pointing(attention, coverage, parts)
    return {"ratio": mass_ratio(attention, coverage, parts),
            "wrong_ratio": wrong_part_ratio(attention, coverage, parts),
            "pointing": pointing(attention, coverage, parts).mean(0),
            "pointing_chance": pointing_chance(coverage, parts).mean(0),
            "wrong_pointing": wrong, "wrong_pointing_chance": wrong_chance,
            "specificity": specificity(attention, coverage, parts).mean(0),
            "specific_share": specific_share(attention, coverage, parts),
            "spread": float(map_spread(attention).mean())}


def bootstrap_interval(per_image: np.ndarray, level: float = 0.95, resamples: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of a per-image score (B,), images resampled with
    replacement: how much the mean depends on which images were drawn (not on the model's seed)."""
    per_image = np.asarray(per_image, dtype=np.float64)
    if per_image.ndim != 1 or len(per_image) < 2:
        raise ValueError(f"need a 1-D score of two images or more, got shape {per_image.shape}")
    rng = np.random.default_rng(seed)
    means = per_image[rng.integers(0, len(per_image), (resamples, len(per_image)))].mean(1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def shuffled_parts(parts: np.ndarray, seed: int = 0, max_tries: int = 100_000) -> np.ndarray:
    """A permutation `order` (A,) of the attributes with parts[order[a]] != parts[a] for every a: the
    shuffled-attribute control trains attribute a on the labels of attribute order[a], which
    always describes another part. Drawn at random (seeded) until that holds."""
    parts = np.asarray(parts)
    rng = np.random.default_rng([seed, 15])
    for _ in range(max_tries):
        order = rng.permutation(len(parts))
        if (parts[order] != parts).all():
            return order
    raise ValueError(f"no permutation moves every attribute to another part in {max_tries} tries: "
                     "one part holds more than half of the attributes")
