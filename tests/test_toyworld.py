"""ToyBirds: the attribute design, the compositional constraints, determinism, splits, cache."""
import numpy as np
import pytest

from zsl_lib.toyworld import birds, shapes
from zsl_lib.toyworld.dataset import SPLITS, ToyBirdsConfig, load_toybirds, make_splits


def test_attribute_design_is_cub_like():
    assert len(birds.GROUPS) >= 8 and len(birds.ATTRIBUTE_NAMES) >= 40
    assert len(birds.ATTRIBUTE_NAMES) == len(birds.ATTRIBUTE_PHRASES) == len(birds.ATTRIBUTE_PARTS)
    assert "has_bill_shape::hooked" in birds.ATTRIBUTE_NAMES
    assert all(name.startswith("has_") and "::" in name for name in birds.ATTRIBUTE_NAMES)
    assert set(birds.ATTRIBUTE_PARTS) <= set(birds.PART_NAMES)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_constraints_hold(seed):
    species, unseen = birds.make_species(seed)
    assert len(species) == 100 and len(unseen) == 25
    dominant = np.array([s.dominant for s in species])
    assert birds.constraint_violations(dominant, unseen) == []
    # checked independently of constraint_violations:
    seen = np.setdiff1d(np.arange(100), unseen)
    for c in unseen:
        for g in range(len(birds.GROUPS)):
            assert (dominant[seen, g] == dominant[c, g]).sum() >= 2
    assert len({tuple(d) for d in dominant}) == 100
    diffs = (dominant[:, None] != dominant[None]).sum(-1) + 99 * np.eye(100, dtype=int)
    assert diffs.min() >= 2


def test_constraint_checker_reports_each_violation():
    dominant = np.zeros((4, len(birds.GROUPS)), dtype=int)
    dominant[1, 0] = 1                    # species 0 and 1 differ in one group only
    dominant[2, :2] = 2                   # species 2 differs from 0 in two groups
    dominant[3, :] = 1                    # unseen species 3: its values are dominant in <= 1 seen species
    problems = birds.constraint_violations(dominant, np.array([3]))
    assert any("species 0 and 1 differ in 1 group" in p for p in problems)
    assert any("unseen species 3: has_crown_color::blue is dominant in 1 seen species" in p for p in problems)
    assert any("unseen species 3: has_belly_color::blue is dominant in 0 seen species" in p for p in problems)
    assert not any("species 0 and 2" in p for p in problems)


def test_class_attribute_vectors_are_probabilities():
    species, _ = birds.make_species(0)
    vec = species[5].attribute_vector()
    for g, off in zip(birds.GROUPS, birds.GROUP_OFFSETS):
        part = vec[off:off + len(g.values)]
        assert part.sum() == pytest.approx(1.0) and (part > 0).sum() == 2
        assert part.max() == pytest.approx(species[5].p_dominant[birds.GROUPS.index(g)])


def test_rendering_is_deterministic_and_varied():
    species, _ = birds.make_species(0)
    def draw(i, c=0):
        rng = np.random.default_rng([0, 2, i])
        return birds.render_bird(rng, birds.sample_attributes(rng, species[c]), 64)
    a, b = draw(7), draw(7)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0].shape == (64, 64, 3) and a[0].dtype == np.uint8 and a[1].shape == (64, 64)
    # the same species, another image: a different picture
    assert np.abs(draw(8)[0].astype(int) - a[0]).mean() > 10


@pytest.mark.parametrize("size", [32, 96, 224])
def test_other_image_sizes(size):
    species, _ = birds.make_species(0)
    rng = np.random.default_rng(1)
    image, parts = birds.render_bird(rng, birds.sample_attributes(rng, species[0]), size)
    assert image.shape == (size, size, 3) and parts.shape == (size, size)


def test_world_arrays_and_ground_truth(smoke_world):
    w = smoke_world
    n = 100 * 20
    assert w.images.shape == (n, 64, 64, 3) and w.part_maps.shape == (n, 64, 64)
    assert w.attributes.shape == (n, 42) and w.class_attributes.shape == (100, 42)
    # one value per group per image
    assert (w.attributes.sum(1) == len(birds.GROUPS)).all()
    # images sample their species: the dominant value shows up in about p of the images
    dominant = np.array([s.dominant for s in w.species])
    first_group = w.attributes[:, :8].argmax(1)
    agree = (first_group == dominant[w.labels, 0]).mean()
    p = np.mean([s.p_dominant[0] for s in w.species])
    assert abs(agree - p) < 0.03
    # every part is visible somewhere, and most pixels of a typical image are background
    seen_parts = np.unique(np.asarray(w.part_maps[:200]))
    assert set(range(1, len(birds.PART_NAMES) + 1)) <= set(seen_parts.tolist())
    assert 0.5 < (np.asarray(w.part_maps[:200]) == 0).mean() < 0.97


def test_splits_follow_xlsa17_and_validation_never_touches_test(smoke_world):
    w, sp = smoke_world, smoke_world.splits
    assert set(SPLITS) == set(sp)
    seen, unseen = set(w.seen_classes.tolist()), set(w.unseen_classes.tolist())
    assert set(w.labels[sp["trainval"]].tolist()) == seen
    assert set(w.labels[sp["test_seen"]].tolist()) == seen
    assert set(w.labels[sp["test_unseen"]].tolist()) == unseen
    test = np.r_[sp["test_seen"], sp["test_unseen"]]
    assert len(np.intersect1d(sp["trainval"], test)) == 0
    assert len(sp["trainval"]) + len(test) == len(w.labels)
    # 20 % of each seen class is test-seen
    assert (np.bincount(w.labels[sp["test_seen"]], minlength=100)[w.seen_classes] == 4).all()
    # validation protocol: inside trainval, pseudo-unseen classes disjoint from the training classes
    val = np.r_[sp["train"], sp["val_seen"], sp["val_unseen"]]
    assert np.array_equal(np.sort(val), sp["trainval"])
    assert set(w.trainclasses1.tolist()) | set(w.valclasses1.tolist()) == seen
    assert not set(w.trainclasses1.tolist()) & set(w.valclasses1.tolist())
    assert set(w.labels[sp["val_unseen"]].tolist()) == set(w.valclasses1.tolist())
    assert set(w.labels[sp["train"]].tolist()) == set(w.labels[sp["val_seen"]].tolist()) == set(w.trainclasses1.tolist())


def test_splits_depend_on_the_seed_only():
    cfg = ToyBirdsConfig(seed=3, images_per_class=10)
    labels = np.repeat(np.arange(100), 10)
    unseen = birds.make_species(3)[1]
    a, b = make_splits(cfg, labels, unseen), make_splits(cfg, labels, unseen)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    c = make_splits(ToyBirdsConfig(seed=4, images_per_class=10), labels, birds.make_species(4)[1])
    assert not np.array_equal(a["test_seen"], c["test_seen"])


def test_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSL_CACHE", str(tmp_path))
    cfg = ToyBirdsConfig(seed=5, n_species=30, n_unseen=6, n_val_unseen=5, images_per_class=5)
    built = load_toybirds(cfg)
    assert len(list((tmp_path / "toybirds").iterdir())) == 1
    cached = load_toybirds(cfg)
    fresh = load_toybirds(cfg, cache=False)
    np.testing.assert_array_equal(cached.images, fresh.images)
    np.testing.assert_array_equal(cached.part_maps, built.part_maps)
    for k in SPLITS:
        np.testing.assert_array_equal(cached.splits[k], fresh.splits[k])


def test_bad_configs_are_named():
    with pytest.raises(ValueError, match="image_size=16"):
        ToyBirdsConfig(image_size=16)
    with pytest.raises(ValueError, match="MODE='full'"):
        ToyBirdsConfig.for_mode("full")
    with pytest.raises(ValueError, match="images_per_class=1"):
        ToyBirdsConfig(images_per_class=1)


def test_toyshapes_scenes():
    image, labels = shapes.render_scene(np.random.default_rng(0), 64)
    again, labels2 = shapes.render_scene(np.random.default_rng(0), 64)
    np.testing.assert_array_equal(image, again)
    assert labels == labels2 and 0 <= labels["joint"] < shapes.NUM_CLASSES == 256
    assert labels["joint"] == shapes.class_index(labels["shape"], labels["color"], labels["texture"])
    # the joint label spreads over many classes
    joint = [shapes.render_scene(np.random.default_rng(i), 32)[1]["joint"] for i in range(300)]
    assert len(set(joint)) > 150


def test_protocol_stages(smoke_world):
    w = smoke_world
    idx, candidates, seen = w.protocol("val")
    assert set(w.labels[idx].tolist()) == set(candidates.tolist()) == set(w.seen_classes.tolist())
    np.testing.assert_array_equal(seen, w.trainclasses1)
    idx, candidates, seen = w.protocol("test")
    np.testing.assert_array_equal(candidates[:75], w.seen_classes)     # seen first, then unseen
    assert len(idx) == len(w.splits["test_seen"]) + len(w.splits["test_unseen"])
    with pytest.raises(ValueError, match="unknown protocol stage 'train'"):
        w.protocol("train")


def test_patch_coverage_against_a_hand_count(smoke_world):
    w = smoke_world
    i = int(w.splits["test_unseen"][0])
    maps = np.asarray(w.part_maps[i])
    cover = w.patch_coverage([i], grid=8)                        # (1, 64)
    # patch (row 3, column 5) covers pixels 24..31 x 40..47
    assert cover.shape == (1, 64)
    assert cover[0, 3 * 8 + 5] == (maps[24:32, 40:48] > 0).mean()
    head = w.patch_coverage([i], grid=8, parts=["head"])
    assert head[0].sum() * 64 == (maps == w.part_names.index("head") + 1).sum()
    assert (head <= cover).all()
    with pytest.raises(ValueError, match="unknown parts"):
        w.patch_coverage([i], grid=8, parts=["beak"])
    with pytest.raises(ValueError, match="does not tile"):
        w.patch_coverage([i], grid=7)
