"""The chapter-10 helpers: the shuffled-attribute world, operating points, neighbours, the probe's map."""
import numpy as np
import pytest
import torch

from zsl_lib import families
from zsl_lib import qualitative as q
from zsl_lib.localisation import attribute_parts, shuffled_parts


def test_shuffled_world_permutes_only_the_class_attribute_columns(smoke_world):
    order = shuffled_parts(attribute_parts(), seed=0)
    view = q.ShuffledAttributes(smoke_world, order)
    np.testing.assert_array_equal(view.class_attributes[:, 3], smoke_world.class_attributes[:, order[3]])
    assert view.attribute_phrases == smoke_world.attribute_phrases
    np.testing.assert_array_equal(view.seen_classes, smoke_world.seen_classes)
    with pytest.raises(ValueError, match="permutation"):
        q.ShuffledAttributes(smoke_world, order[:-1])


def test_operating_point_and_confusion_strip_by_hand():
    # columns 0, 1 seen, 2, 3 unseen; four images, one per class
    scores = np.array([[1.0, 0.0, 0.5, 0.0],     # seen 0: right at gamma 0, -> unseen 2 at gamma 0.6
                       [1.0, 0.0, 0.0, 0.0],     # seen 1: named seen 0 (other seen)
                       [0.0, 0.2, 1.0, 0.0],     # unseen 2: right
                       [0.9, 0.0, 0.0, 0.5]])    # unseen 3: named seen 0 at gamma 0, right at gamma 0.6
    labels, seen_cols = np.arange(4), np.array([True, True, False, False])
    at_zero = q.operating_point(scores, labels, seen_cols, 0.0)
    assert (at_zero["U"], at_zero["S"]) == (50, 50)
    np.testing.assert_allclose(at_zero["strip"]["unseen"], [50, 0, 50])
    np.testing.assert_allclose(at_zero["strip"]["seen"], [50, 50, 0])
    moved = q.operating_point(scores, labels, seen_cols, 0.6)
    assert (moved["U"], moved["S"]) == (100, 0)
    # seen 1's scores: 1.0 - 0.6 on seen 0 still beats 0 on every unseen class
    np.testing.assert_allclose(moved["strip"]["seen"], [0, 50, 50])
    assert q.confused_pairs(scores, labels, seen_cols, 0.0) == [(3, 0, 1.0)]


def test_knn_accuracy():
    rng = np.random.default_rng(0)
    centres = np.array([[10.0, 0, 0], [0, 10.0, 0]])
    labels = np.repeat([0, 1], 8)
    assert q.knn_accuracy(centres[labels] + rng.normal(size=(16, 3)), labels, k=3) == 1.0
    # two identical points per class on a circle: a point's nearest neighbour is its twin, the next two
    # are of the other class, so 3-NN votes the other class and 1-NN the right one
    angles = np.repeat([0.0, 0.6, 1.2, 1.8], 2)
    points = np.c_[np.cos(angles), np.sin(angles)] + 1e-6 * np.arange(8)[:, None]
    alternating = np.repeat([0, 1, 0, 1], 2)
    assert q.knn_accuracy(points, alternating, k=1) == 1.0
    with pytest.raises(ValueError, match="neighbours"):
        q.knn_accuracy(points, alternating, k=8)


def test_probe_contributions_add_up_to_the_patch_half_of_the_score():
    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(3, 1 + 4, 5))                  # (B, 1 + N, D)
    readout = {"V": rng.normal(size=(10, 6)), "mu": rng.normal(size=10), "sd": rng.uniform(1, 2, size=10)}
    features = (q.probe_features(tokens) - readout["mu"]) / readout["sd"]                 # (B, 2D)
    np.testing.assert_allclose(q.probe_contributions(tokens, readout).mean(-1), features[:, 5:] @ readout["V"][5:])
    relevance = q.probe_relevance(tokens, readout)
    np.testing.assert_allclose(relevance.sum(-1), 1)


def test_mgmrn_attention_is_a_distribution_over_positions(smoke_world):
    model = families.get("mgmrn").build(smoke_world, families.get("mgmrn").preset("paper"),
                                      smoke_world.seen_classes, 0).eval()
    maps = q.mgmrn_attention(model, smoke_world.images[:3])
    assert len(maps) == model.num_stages
    for stage_map in maps:
        assert stage_map.shape[:2] == (3, len(smoke_world.attribute_names))
        np.testing.assert_allclose(stage_map.sum(-1), 1, atol=1e-9)
    # the finest stage adds the SCAB tokens' attention: more mass than the recorder's g_l part alone
    with q.MgMRNRecorder(model) as recorder, torch.no_grad():
        model(q.batch_to_input(smoke_world.images[:3]))
    assert recorder.attribute_maps(0).sum((-2, -1)).max() < 0.99


def test_gamma_widget_redraws_when_the_slider_moves():
    from zsl_lib import qualitative_plots as qp
    rng = np.random.default_rng(0)
    labels, seen_cols = np.repeat(np.arange(4), 5), np.array([True, True, False, False])
    scores = {"a": rng.normal(size=(20, 4)), "b": rng.normal(size=(20, 4))}
    box = qp.gamma_widget(scores, labels, seen_cols, {"a": 0.5, "b": 1.0}, value=0.0)
    slider, image = box.children
    first = image.value
    assert first[:4] == b"\x89PNG"
    slider.value = 2.0
    assert image.value[:4] == b"\x89PNG" and image.value != first
    with pytest.raises(ValueError, match="widen the range"):
        qp.gamma_widget(scores, labels, seen_cols, {"a": 0.5, "b": 1.0}, value=9.0)


@pytest.mark.parametrize("out", ["results/qualitative", "vspcn_shuffled.pt"])
def test_the_command_refuses_an_output_that_is_not_a_json_file(tmp_path, capsys, out):
    target = tmp_path / out
    if not target.suffix:
        target.mkdir(parents=True)                                  # an existing folder, as a user might pass
    with pytest.raises(SystemExit):
        q.main(["shuffled", "--family", "vspcn", "--out", str(target)])
    message = capsys.readouterr().err
    assert str(target) in message and "results/qualitative/vspcn_shuffled.json" in message
    assert not (tmp_path / "results" / "qualitative.pt").exists()
