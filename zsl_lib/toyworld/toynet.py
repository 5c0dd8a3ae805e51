"""ToyNet: the pretraining world, to ToyBirds what ImageNet is to CUB.

ImageNet-1k gives a backbone features that already read the parts of birds because many of
its classes are birds, named by species only; xlsa17's Proposed Split then keeps CUB's
unseen classes out of ImageNet-1k, so that "unseen" stays unseen. ToyNet does the same at
toy scale:

* `N_BIRD_SPECIES` toy bird species of its own, drawn by ToyBirds' renderer (same parts,
  colours, textures, bill and tail shapes, eye rings, clutter, pose and occluders), grouped
  in genera of `GENUS_SIZE` species, each two attribute groups away from the genus' founder
  (which two varies), so that telling close species apart rewards reading every group, as
  telling two warblers apart does;
* ToyShapes' 256 object classes (shape x colour x texture), the non-bird objects.

Every image is labelled by its class only, never by attributes. No ToyNet species may be an
unseen species of a world the book uses: every ToyNet species differs from every unseen
species of the ToyBirds worlds with seeds `PROTECTED_WORLD_SEEDS` (default sizes) in at
least `MIN_GROUPS_FROM_UNSEEN` attribute groups (`leak_violations` checks it, and so do the
tests). What is kept out is every unseen species as a class; a single ToyNet image may still,
through its attribute noise, show an unseen species' dominant values (it takes secondary values
in the two groups that differ at once: rare), as one ImageNet photo may resemble a CUB unseen
species. Scene i of a stream is fixed by (seed, i).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from . import birds, shapes

N_BIRD_SPECIES = 1000
GENUS_SIZE = 4
PROTECTED_WORLD_SEEDS = tuple(range(10))
MIN_GROUPS_FROM_UNSEEN = 2
BIRD_FRACTION = 0.8           # the rest of the scenes are ToyShapes objects
SPECIES_SEED = 2026           # ToyNet's own species tables (not a ToyBirds world seed)
P_DOMINANT = (0.9, 0.98)      # how often a ToyNet bird shows its species' dominant value


def protected_unseen_profiles(seeds=PROTECTED_WORLD_SEEDS) -> np.ndarray:
    """Dominant profiles (n, G) of the unseen species of the protected ToyBirds worlds."""
    profiles = []
    for seed in seeds:
        species, unseen = birds.make_species(seed)
        profiles += [species[c].dominant for c in unseen]
    return np.array(profiles)


def leak_violations(dominant: np.ndarray, protected: np.ndarray) -> list[str]:
    """ToyNet species (rows of `dominant`, (S, G)) closer than MIN_GROUPS_FROM_UNSEEN groups to a
    protected unseen profile, as readable messages (empty when nothing leaks)."""
    differ = (dominant[:, None, :] != protected[None, :, :]).sum(-1)               # (S, P)
    return [f"ToyNet species {s} differs from protected unseen profile {p} in {differ[s, p]} group(s)"
            for s, p in zip(*np.nonzero(differ < MIN_GROUPS_FROM_UNSEEN))]


@lru_cache(maxsize=2)
def make_species(n_species: int = N_BIRD_SPECIES, seed: int = SPECIES_SEED,
                 max_tries: int = 100_000) -> tuple[birds.Species, ...]:
    """ToyNet's bird species: genera of GENUS_SIZE, each species two groups away from its founder,
    all pairwise at least two groups apart, none within MIN_GROUPS_FROM_UNSEEN of a protected
    unseen species (candidates that break a rule are redrawn; a founder whose genus cannot be
    completed is dropped)."""
    rng = np.random.default_rng([seed, 11])
    sizes = np.array([len(g.values) for g in birds.GROUPS])
    protected = protected_unseen_profiles()
    chosen: list[np.ndarray] = []

    def admissible(profile: np.ndarray) -> bool:
        if (profile[None] != protected).sum(-1).min() < MIN_GROUPS_FROM_UNSEEN:
            return False
        return not chosen or (profile[None] != np.array(chosen)).sum(-1).min() >= 2

    tries = 0
    while len(chosen) < n_species:
        founder, genus = rng.integers(0, sizes), []
        for _ in range(50 * GENUS_SIZE):
            tries += 1
            if tries > max_tries:
                raise RuntimeError(f"could not draw {n_species} ToyNet species in {max_tries} tries "
                                   f"(got {len(chosen)}); ask for fewer species")
            candidate = founder.copy()
            for g in rng.choice(len(sizes), 2, replace=False):
                candidate[g] = (candidate[g] + rng.integers(1, sizes[g])) % sizes[g]
            if admissible(candidate) and all((candidate != other).sum() >= 2 for other in genus):
                genus.append(candidate)
                if len(genus) == GENUS_SIZE:
                    break
        if len(genus) == GENUS_SIZE:
            chosen += genus[:n_species - len(chosen)]
    dominant = np.array(chosen)
    secondary = (dominant + rng.integers(1, sizes, size=dominant.shape)) % sizes
    p_dom = rng.uniform(*P_DOMINANT, size=dominant.shape).round(3)
    return tuple(birds.Species(f"toynet_{k:04d}", tuple(map(int, d)), tuple(map(int, s)), tuple(map(float, p)))
                 for k, (d, s, p) in enumerate(zip(dominant, secondary, p_dom)))


def num_classes(n_species: int = N_BIRD_SPECIES) -> int:
    """Bird species first (0 .. n_species - 1), then ToyShapes' classes."""
    return n_species + shapes.NUM_CLASSES


def render_scene(rng: np.random.Generator, size: int = 64, n_species: int = N_BIRD_SPECIES) -> tuple[np.ndarray, int]:
    """One labelled ToyNet image: a bird of a random ToyNet species (BIRD_FRACTION of the time) or a
    ToyShapes scene labelled by its largest object. Returns (image (size, size, 3) uint8, class)."""
    if rng.random() < BIRD_FRACTION:
        label = int(rng.integers(n_species))
        image, _ = birds.render_bird(rng, birds.sample_attributes(rng, make_species(n_species)[label]), size)
        return image, label
    image, labels = shapes.render_scene(rng, size)
    return image, n_species + labels["joint"]
