"""Tests for helpers.toolkit.instances: objects from boundaries, from blobs and from the three-class scheme,
and instance matching against hand-computed cases; plus the label files and the synthetic nuclei.

All data is made here with NumPy and skimage.draw; nothing needs a model.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import tifffile
from PIL import Image
from skimage.draw import disk

from helpers import evaluate
from helpers.toolkit import formats, instances, scoring
from helpers.toolkit.folders import synthetic_nuclei
from helpers.toolkit.instances import (from_boundaries, from_boundary_mask, from_foreground, from_three_classes,
                                       match, match_pairs, to_three_classes)


def discs(shape=(40, 70), centres=((20, 20), (20, 41)), radius=12) -> np.ndarray:
    """Instance labels of discs, drawn in order (a later disc covers an earlier one where they overlap)."""
    labels = np.zeros(shape, np.int32)
    for k, centre in enumerate(centres, start=1):
        labels[disk(centre, radius, shape=shape)] = k
    return labels


def same_objects(a: np.ndarray, b: np.ndarray, iou: float = 0.98) -> bool:
    """Whether two label images hold the same objects, whatever their numbers: every object matched,
    the same object pixels, and at most a few boundary pixels given to a touching neighbour."""
    scores = match(a, b)
    return bool(np.array_equal(a > 0, b > 0) and scores["f1"] == 1.0 and scores["mean_matched_iou"] >= iou)


# ------------------------------------------------------------------------ from boundaries (ISBI)


def test_from_boundaries_is_the_watershed_the_isbi_scores_use():
    rng = np.random.default_rng(0)
    prob = rng.random((24, 31)).astype(np.float32)
    for threshold in (0.3, 0.5, 0.7):
        np.testing.assert_array_equal(evaluate.predicted_segments(prob, threshold), from_boundaries(prob, threshold))
    truth = (rng.random((24, 31)) > 0.7).astype(np.float32)
    np.testing.assert_array_equal(evaluate.truth_segments(truth), from_boundary_mask(truth))
    # one implementation: the toolkit's names are the ISBI scores' own functions
    assert from_boundaries is evaluate.predicted_segments and from_boundary_mask is evaluate.truth_segments


def test_from_boundaries_grows_regions_over_the_membrane_and_leaves_lines():
    prob = np.full((9, 9), 0.1, np.float32)
    prob[:, 4] = 0.9  # a vertical membrane
    labels = from_boundaries(prob, 0.5)
    assert instances.count(labels) == 2 and labels.dtype == np.int32
    assert set(np.unique(labels[:, :4])) == {1} and set(np.unique(labels[:, 5:])) == {2}
    np.testing.assert_array_equal(labels[:, 4], 0)  # the 1-pixel dividing line
    gap = prob.copy()
    gap[4, 4] = 0.2  # one gap in the membrane merges the two cells
    assert instances.count(from_boundaries(gap, 0.5)) == 1


def test_from_boundary_mask_uses_4_connectivity():
    membrane = np.eye(5)  # a diagonal line separates the corners only with 4-connectivity
    assert instances.count(from_boundary_mask(membrane)) == 2
    assert from_boundary_mask(np.zeros((3, 3))).max() == 1


def test_segments_at_the_best_threshold_give_the_reported_v_rand():
    truth = np.zeros((32, 32), np.float32)
    truth[16, :] = truth[:, 10] = 1  # membranes make four cells
    prob = np.clip(truth * 0.8 + np.random.default_rng(1).normal(0, 0.1, truth.shape), 0, 1).astype(np.float32)
    chosen = evaluate.choose_isbi_thresholds(prob[None], truth[None])  # in practice: on validation images
    scores = evaluate.isbi_scores(prob, truth, chosen)
    cells = from_boundaries(prob, scores["threshold_rand"])
    assert evaluate.segment_scores(from_boundary_mask(truth), cells)["v_rand"] == scores["v_rand"]


# ------------------------------------------------------------------------ blobs


def test_from_foreground_splits_touching_discs_and_keeps_separate_ones():
    touching = discs() > 0
    assert instances.count(from_foreground(touching, split=False)) == 1  # connected: one blob
    split = from_foreground(touching)
    assert instances.count(split) == 2
    assert match(split, discs())["f1"] == 1.0
    apart = discs(centres=((20, 15), (20, 50)), radius=8) > 0
    assert instances.count(from_foreground(apart)) == 2


def test_from_foreground_keeps_one_object_for_a_dented_blob_and_thin_objects():
    blob = np.zeros((40, 40), bool)
    blob[disk((20, 20), 14, shape=blob.shape)] = True
    blob[18:22, 30:] = False  # a notch: not a neck between two objects
    assert instances.count(from_foreground(blob)) == 1
    line = np.zeros((10, 40), bool)
    line[5, 5:35] = True  # 1 pixel wide: no distance peak of depth 2, still one object
    assert instances.count(from_foreground(line, min_size=1)) == 1


def test_from_foreground_min_size_threshold_and_empty_input():
    prob = np.zeros((30, 30), np.float32)
    prob[2:12, 2:12] = 0.9  # 100 px
    prob[20:23, 20:23] = 0.9  # 9 px
    prob[25:28, 2:12] = 0.4  # below the threshold
    labels = from_foreground(prob, threshold=0.5, min_size=10)
    assert instances.count(labels) == 1 and labels.max() == 1 and labels[5, 5] == 1 and labels[21, 21] == 0
    assert instances.count(from_foreground(prob, threshold=0.3, min_size=1)) == 3
    assert from_foreground(np.zeros((8, 8))).max() == 0
    with pytest.raises(ValueError, match="one image"):
        from_foreground(np.zeros((2, 8, 8)))


# ------------------------------------------------------------------------ three classes


def test_to_three_classes_hand_computed():
    labels = np.zeros((5, 8), int)
    labels[:, 1:4] = 1
    labels[:, 4:7] = 2  # two touching 5 x 3 boxes
    classes = to_three_classes(labels)
    assert classes.dtype == np.uint8
    np.testing.assert_array_equal(classes[2], [0, 2, 1, 2, 2, 1, 2, 0])  # both rings meet between the boxes
    np.testing.assert_array_equal(classes[:, 0], 0)
    assert to_three_classes(np.zeros((4, 4), int)).max() == 0
    single = np.zeros((5, 5), int)
    single[2, 2] = 7  # one pixel: all boundary, no interior
    assert to_three_classes(single)[2, 2] == 2


def test_to_three_classes_batches_and_errors():
    batch = np.stack([discs(), discs()[:, ::-1]])
    classes = to_three_classes(batch)
    assert classes.shape == batch.shape
    np.testing.assert_array_equal(classes[1], to_three_classes(batch[1]))
    assert to_three_classes(batch[..., None]).shape == (*batch.shape, 1)
    with pytest.raises(ValueError, match="fractional"):
        to_three_classes(np.full((4, 4), 0.5))
    with pytest.raises(ValueError, match="negative"):
        to_three_classes(-np.ones((4, 4), int))


def test_three_classes_separate_touching_objects_that_connected_components_merge():
    labels = discs()
    classes = to_three_classes(labels)
    assert instances.count(from_foreground(classes > 0, split=False)) == 1
    assert same_objects(from_three_classes(classes, min_size=1), labels)
    probabilities = np.eye(3, dtype=np.float32)[classes] * 0.8 + 0.2 / 3  # a confident softmax output
    assert same_objects(from_three_classes(probabilities, min_size=1), labels)


@pytest.mark.parametrize("seed", range(6))
def test_three_classes_round_trip_on_synthetic_nuclei(seed):
    _, labels = synthetic_nuclei(3, size=64, seed=seed)
    for truth in labels:
        assert same_objects(from_three_classes(to_three_classes(truth), min_size=1), truth)


def test_from_three_classes_min_size_and_bad_input():
    classes = np.zeros((12, 12), np.uint8)
    classes[1:8, 1:8] = 2
    classes[2:7, 2:7] = 1  # 49 px with its ring
    classes[10, 10] = 1  # a 1-pixel "object"
    assert instances.count(from_three_classes(classes, min_size=2)) == 1
    assert instances.count(from_three_classes(classes, min_size=1)) == 2
    with pytest.raises(ValueError, match="three classes"):
        from_three_classes(np.full((4, 4), 3))


# ------------------------------------------------------------------------ matching, hand-computed


def test_match_perfect_with_other_numbers():
    truth = discs()
    pred = np.where(truth > 0, truth + 40, 0)  # the same objects, numbered 41 and 42
    assert match(pred, truth) == {"n_true": 2.0, "n_pred": 2.0, "tp": 2.0, "fp": 0.0, "fn": 0.0, "precision": 1.0,
                                  "recall": 1.0, "f1": 1.0, "mean_matched_iou": 1.0}


def test_match_hand_computed_partial_overlaps():
    truth = np.array([[1, 1, 1, 1, 0, 2, 2, 0, 3]])
    pred = np.array([[5, 5, 5, 0, 0, 0, 7, 0, 0]])  # IoU 3/4 with 1, exactly 1/2 with 2; 3 missed
    scores = match(pred, truth)
    assert (scores["tp"], scores["fp"], scores["fn"]) == (2.0, 0.0, 1.0)
    assert scores["precision"] == 1.0 and scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 * 2 / (2 + 3)) and scores["mean_matched_iou"] == pytest.approx(0.625)
    np.testing.assert_allclose(match_pairs(pred, truth), [[5, 1, 0.75], [7, 2, 0.5]])


def test_match_below_threshold_split_and_merge():
    truth = np.array([[1, 1, 1, 1, 1]])
    below = match(np.array([[2, 2, 0, 0, 0]]), truth)  # IoU 2/5 < 0.5: no match
    assert (below["tp"], below["fp"], below["fn"], below["f1"]) == (0.0, 1.0, 1.0, 0.0)
    assert math.isnan(below["mean_matched_iou"])
    assert match(np.array([[2, 2, 0, 0, 0]]), truth, iou_threshold=0.4)["tp"] == 1.0
    halves = match(np.array([[5, 5, 7, 7]]), np.array([[1, 1, 1, 1]]))  # a split: each half has IoU 1/2
    assert (halves["tp"], halves["fp"], halves["fn"]) == (1.0, 1.0, 0.0)  # one-to-one: one half matches
    assert halves["precision"] == 0.5 and halves["recall"] == 1.0 and halves["f1"] == pytest.approx(2 / 3)
    merged = match(np.array([[3, 3, 3, 3]]), np.array([[1, 1, 1, 2]]))  # a merge: IoU 3/4 and 1/4
    assert (merged["tp"], merged["fp"], merged["fn"]) == (1.0, 0.0, 1.0)


def test_match_assignment_maximises_the_matched_iou_below_one_half():
    truth = np.array([[1, 1, 1, 2, 2, 2]])
    pred = np.array([[8, 8, 8, 8, 9, 9]])  # 8: IoU 3/4 with 1, 1/6 with 2; 9: 2/3 with 2
    np.testing.assert_allclose(match_pairs(pred, truth, iou_threshold=0.1), [[8, 1, 0.75], [9, 2, 2 / 3]])


def test_match_empty_images():
    empty = np.zeros((4, 4), int)
    assert match(empty, empty)["f1"] == 1.0 and match(empty, empty)["precision"] == 1.0
    two = np.array([[1, 0, 2, 0]] * 4)
    missed = match(empty, two)
    assert (missed["precision"], missed["recall"], missed["f1"], missed["fn"]) == (0.0, 0.0, 0.0, 2.0)
    invented = match(two, empty)
    assert (invented["precision"], invented["recall"], invented["fp"]) == (0.0, 0.0, 2.0)


def test_match_bad_input():
    with pytest.raises(ValueError, match="differ in shape"):
        match(np.zeros((4, 4), int), np.zeros((4, 5), int))
    with pytest.raises(ValueError, match="iou_threshold"):
        match(np.zeros((4, 4), int), np.zeros((4, 4), int), iou_threshold=0)
    with pytest.raises(ValueError, match="fractional"):
        match(np.full((4, 4), 0.5), np.zeros((4, 4), int))


def test_instance_table_rows_and_mean():
    truth = [np.array([[1, 1, 0, 2, 2]]), np.array([[1, 1, 1, 0, 0]])]
    pred = [np.array([[1, 1, 0, 0, 0]]), np.array([[4, 4, 4, 0, 0]])]
    table = scoring.instance_table(pred, truth, ["a", "b"])
    assert list(table.index) == ["a", "b", "mean"]
    assert table.loc["a", "recall"] == 0.5 and table.loc["b", "f1"] == 1.0
    assert table.loc["mean", "recall"] == 0.75 and table.loc["mean", "tp"] == 1.0
    json = scoring.score_table_json(scoring.instance_table([np.zeros((2, 2), int)], [np.ones((2, 2), int)]))
    assert json["mean"]["mean_matched_iou"] is None  # NaN becomes JSON null
    with pytest.raises(ValueError, match="one per image"):
        scoring.instance_table(pred, truth[:1])


# ------------------------------------------------------------------------ synthetic nuclei, files, plots


def test_synthetic_nuclei_are_seeded_inside_the_image_and_touch():
    x, labels = synthetic_nuclei(4, size=64, seed=3)
    x2, labels2 = synthetic_nuclei(4, size=64, seed=3)
    np.testing.assert_array_equal(labels, labels2)
    np.testing.assert_array_equal(x, x2)
    assert x.shape == (4, 64, 64, 1) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert labels.shape == (4, 64, 64) and labels.dtype == np.int32
    assert all(5 <= instances.count(image) <= 10 for image in labels)
    assert not labels[:, [0, -1], :].any() and not labels[:, :, [0, -1]].any()  # none cut by the border
    assert x[labels > 0].mean() > x[labels == 0].mean() + 0.3  # nuclei are brighter than the background
    merged = sum(instances.count(from_foreground(image > 0, split=False)) for image in labels)
    assert merged < sum(instances.count(image) for image in labels)  # some nuclei touch
    with pytest.raises(ValueError, match="size"):
        synthetic_nuclei(1, size=16)


def test_label_files_round_trip(tmp_path):
    labels = discs()
    formats.write_labels(tmp_path / "a.tif", labels)
    stored = tifffile.imread(tmp_path / "a.tif")
    assert stored.dtype == np.uint16
    np.testing.assert_array_equal(formats.read_labels(tmp_path / "a.tif"), labels)
    many = np.arange(70000, dtype=np.int64).reshape(280, 250)
    formats.write_labels(tmp_path / "many.tif", many)
    assert tifffile.imread(tmp_path / "many.tif").dtype == np.uint32
    np.testing.assert_array_equal(formats.read_labels(tmp_path / "many.tif"), many)
    with pytest.raises(ValueError, match="tif"):
        formats.write_labels(tmp_path / "a.png", labels)
    with pytest.raises(ValueError, match="whole numbers"):
        formats.write_labels(tmp_path / "b.tif", labels - 1)
    assert not list(tmp_path.glob("*.tmp*"))


def test_read_labels_refuses_colour_and_fractions_naming_the_file(tmp_path):
    rgb = np.zeros((6, 6, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "colour.png")
    with pytest.raises(ValueError, match=r"colour\.png.*single-channel"):
        formats.read_labels(tmp_path / "colour.png")
    tifffile.imwrite(tmp_path / "prob.tif", np.full((4, 4), 0.3, np.float32))
    with pytest.raises(ValueError, match=r"prob\.tif.*whole numbers"):
        formats.read_labels(tmp_path / "prob.tif")
    gray = np.dstack([discs().astype(np.uint8)] * 3)
    Image.fromarray(gray).save(tmp_path / "gray_rgb.png")
    np.testing.assert_array_equal(formats.read_labels(tmp_path / "gray_rgb.png"), discs())


def test_plot_instances_counts_objects_and_outlines_them():
    image = np.random.default_rng(0).random((40, 70))
    fig = scoring.plot_instances(image, {"truth": discs(), "connected": from_foreground(discs() > 0, split=False)},
                               window=(0, 40, 0, 60))
    assert [ax.get_title() for ax in fig.axes] == ["image", "truth (2)", "connected (1)"]
    coloured = scoring.colour_instances(image, discs())
    assert coloured.shape == (40, 70, 3)
    from skimage.segmentation import find_boundaries

    outline = find_boundaries(discs(), connectivity=1, mode="inner") & (discs() > 0)
    assert outline.sum() > 50 and (coloured[outline] == 1.0).all()  # the objects' outlines are white
    np.testing.assert_allclose(coloured[0, 0], [image[0, 0]] * 3)  # background untouched
    with pytest.raises(ValueError, match="differ in size"):
        scoring.colour_instances(image, discs()[:30])
