"""ToyNet: the pretraining world, to ToyBirds what ImageNet is to CUB.

ImageNet-1k gives a backbone features that already read the parts of birds because many of
its classes are birds, named by species only; xlsa17's Proposed Split then keeps CUB's
unseen classes out of ImageNet-1k, so that "unseen" stays unseen. ToyNet does the same at
toy scale:

* `N_BIRD_SPECIES` toy bird species of its own, drawn by ToyBirds' renderer (same parts,
  colours, textures, bill and tail shapes, eye rings, clutter, pose and occluders), grouped
  in *genera*: the species of a genus agree in every attribute group but one, their genus'
  deciding group, where each has its own value (up to `GENUS_SIZE` species). The deciding
  groups take turns over the nine groups, so every group, the small bill and eye ring as
  much as the wing colour, is the only way to tell some species apart, as an eye ring is the
  only way to tell some warblers apart. (A first design, whose species differed pairwise in
  two random groups, let a network name almost every species from colours alone: after 75
  minutes of pretraining its features read bill shape, tail shape and eye ring at chance.)
* ToyShapes' 256 object classes (shape x colour x texture), the non-bird objects.

Every image is labelled by its class only, never by attributes. No ToyNet species may be an
unseen species of a world the book uses: every ToyNet species differs from every unseen
species of the ToyBirds worlds with seeds `PROTECTED_WORLD_SEEDS` (default sizes) in at
least `MIN_GROUPS_FROM_UNSEEN` attribute groups (`leak_violations` checks it, and so do the
tests). What is kept out is every unseen species as a class; a single ToyNet image may still,
through its attribute noise, show an unseen species' dominant values (it takes secondary values
in at least two groups at once: rare), as one ImageNet photo may resemble a CUB unseen
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
    """ToyNet's bird species, genus by genus: a random founder profile and, for the genus' deciding
    group (groups take turns), up to GENUS_SIZE distinct values of that group, one species each.
    A species within MIN_GROUPS_FROM_UNSEEN groups of a protected unseen species, or equal to a
    species already drawn, is left out; a genus left with fewer than two species is redrawn.
    Species are named `toynet_g<genus>_<member>_<deciding group>`."""
    rng = np.random.default_rng([seed, 11])
    sizes = np.array([len(g.values) for g in birds.GROUPS])
    protected = protected_unseen_profiles()
    chosen: list[np.ndarray] = []
    names: list[str] = []
    genera = tries = 0
    while len(chosen) < n_species:
        tries += 1
        if tries > max_tries:
            raise RuntimeError(f"could not draw {n_species} ToyNet species in {max_tries} genera "
                               f"(got {len(chosen)}); ask for fewer species")
        deciding = genera % len(sizes)
        founder = rng.integers(0, sizes)
        members = []
        for value in rng.permutation(sizes[deciding])[:GENUS_SIZE]:
            profile = founder.copy()
            profile[deciding] = value
            far_from_unseen = (profile[None] != protected).sum(-1).min() >= MIN_GROUPS_FROM_UNSEEN
            new = not chosen or (profile[None] != np.array(chosen)).sum(-1).min() >= 1
            if far_from_unseen and new:
                members.append(profile)
        if len(members) >= 2:
            members = members[:n_species - len(chosen)]
            chosen += members
            names += [f"toynet_g{genera:03d}_{k}_{birds.GROUPS[deciding].name.removeprefix('has_')}"
                      for k in range(len(members))]
            genera += 1
    dominant = np.array(chosen)
    secondary = (dominant + rng.integers(1, sizes, size=dominant.shape)) % sizes
    p_dom = rng.uniform(*P_DOMINANT, size=dominant.shape).round(3)
    return tuple(birds.Species(name, tuple(map(int, d)), tuple(map(int, s)), tuple(map(float, p)))
                 for name, d, s, p in zip(names, dominant, secondary, p_dom))


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
