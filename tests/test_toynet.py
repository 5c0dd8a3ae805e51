"""ToyNet, the pretraining world: labels by class only, no leak of the book's unseen species, determinism."""
import numpy as np
import pytest

from zsl_lib.toyworld import birds, shapes, toynet


def test_no_toynet_species_is_near_an_unseen_species_of_the_protected_worlds():
    dominant = np.array([s.dominant for s in toynet.make_species()])
    protected = toynet.protected_unseen_profiles()
    assert len(protected) == 25 * len(toynet.PROTECTED_WORLD_SEEDS)
    # by hand, without leak_violations: the fewest groups between a ToyNet and a protected unseen species
    assert min((d != p).sum() for d in dominant for p in protected) >= 2


def test_an_impossible_request_fails_with_a_message():
    with pytest.raises(RuntimeError, match="could not draw 1000 ToyNet species in 50 genera"):
        toynet.make_species.__wrapped__(1000, max_tries=50)


def test_the_check_catches_a_planted_leak():
    protected = toynet.protected_unseen_profiles(seeds=(0,))
    leaked = protected[3].copy()
    leaked[0] = (leaked[0] + 1) % len(birds.GROUPS[0].values)     # one group away from an unseen species
    problems = toynet.leak_violations(np.stack([leaked, protected[5]]), protected)
    assert "ToyNet species 0 differs from protected unseen profile 3 in 1 group(s)" in problems
    assert any(p.startswith("ToyNet species 1 ") and "in 0 group(s)" in p for p in problems)


def test_every_group_is_the_only_difference_between_some_species():
    species = toynet.make_species()
    assert len(species) == toynet.N_BIRD_SPECIES
    dominant = np.array([s.dominant for s in species])
    assert len({tuple(d) for d in dominant}) == len(species)              # all distinct
    genus = np.array([s.name.split("_")[1] for s in species])
    deciding = {}
    for g in np.unique(genus):
        members = dominant[genus == g]
        differs = (members != members[0]).any(0)                          # groups that vary in the genus
        assert differs.sum() == (1 if len(members) > 1 else 0), g
        if differs.any():
            deciding[g] = birds.GROUPS[int(np.flatnonzero(differs)[0])].name
            assert species[int(np.flatnonzero(genus == g)[0])].name.endswith(deciding[g].removeprefix("has_"))
    # every group, small parts included, decides dozens of genera
    counts = {group.name: list(deciding.values()).count(group.name) for group in birds.GROUPS}
    assert min(counts.values()) >= 30, counts


def test_scenes_are_deterministic_and_labelled_by_class_only():
    a = toynet.render_scene(np.random.default_rng([0, 5]))
    b = toynet.render_scene(np.random.default_rng([0, 5]))
    assert np.array_equal(a[0], b[0]) and a[1] == b[1] and isinstance(a[1], int)
    labels = [toynet.render_scene(np.random.default_rng([1, i]), 32)[1] for i in range(200)]
    birds_share = np.mean(np.array(labels) < toynet.N_BIRD_SPECIES)
    assert abs(birds_share - toynet.BIRD_FRACTION) < 0.1
    assert max(labels) < toynet.num_classes() == toynet.N_BIRD_SPECIES + shapes.NUM_CLASSES
