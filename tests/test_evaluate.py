"""Tests for helpers.evaluate: pixel table, threshold choice and the ISBI 2012 scores."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import entropy
from skimage.io import imread
from skimage.metrics import adapted_rand_error, variation_of_information

from helpers import evaluate, runs
from helpers.toolkit import scoring

COLUMNS = ["iou_membrane", "dice_membrane", "iou_cell", "dice_cell", "pixel_error"]


def grid_truth(h: int = 32, w: int = 32) -> np.ndarray:
    """A mask with membrane lines at rows 10, 21 and column 15: six cells."""
    y = np.zeros((h, w), "float32")
    y[[10, 21], :] = 1
    y[:, 15] = 1
    return y


# ----------------------------------------------------------------- pixel scores


def test_segmentation_table_hand_computed():
    truth = np.zeros((2, 4, 4, 1), "float32")
    truth[:, 0] = 1  # membrane: top row, 4 pixels
    prob = truth.copy()
    prob[0, 0, 3] = 0.2  # missed membrane pixel
    prob[0, 2, 2] = 0.7  # false membrane pixel
    table = evaluate.segmentation_table(prob, truth, names=["a", "b"])
    assert list(table.columns) == COLUMNS
    assert list(table.index) == ["a", "b", "mean"]
    # membrane: I = 3, U = 5 ; cell: I = 11, U = 13 ; 2 wrong pixels of 16
    expected_a = [3 / 5, 6 / 8, 11 / 13, 22 / 24, 2 / 16]
    np.testing.assert_allclose(table.loc["a"], expected_a)
    np.testing.assert_allclose(table.loc["b"], [1, 1, 1, 1, 0])
    np.testing.assert_allclose(table.loc["mean"], (np.array(expected_a) + [1, 1, 1, 1, 0]) / 2)


def test_segmentation_table_threshold_and_errors():
    truth = np.zeros((1, 4, 4), "float32")
    truth[0, 0] = 1
    prob = truth * 0.6
    assert evaluate.segmentation_table(prob, truth, 0.5).loc["0", "iou_membrane"] == 1.0
    assert evaluate.segmentation_table(prob, truth, 0.7).loc["0", "iou_membrane"] == 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        evaluate.segmentation_table(prob, np.zeros((1, 4, 5)))
    with pytest.raises(ValueError, match="names"):
        evaluate.segmentation_table(prob, truth, names=["a", "b"])


def test_choose_threshold_finds_the_only_separating_value():
    rng = np.random.default_rng(0)
    truth = (rng.random((3, 16, 16, 1)) > 0.7).astype("float32")
    # membrane at 0.62, cells at 0.58: only thresholds in [0.58, 0.62) separate them -> 0.60
    prob = np.where(truth > 0, 0.62, 0.58).astype("float32")
    curve = evaluate.threshold_curve(prob, truth)
    assert list(curve.columns) == ["threshold", "iou_membrane", "dice_membrane"]
    assert len(curve) == 19
    perfect = curve[curve["iou_membrane"] == 1.0]["threshold"].tolist()
    assert perfect == [pytest.approx(0.6)]
    assert evaluate.choose_threshold(prob, truth) == pytest.approx(0.6)


# ------------------------------------------------------------- segments and scores


def test_truth_segments_use_4_connectivity():
    y = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]], "float32")  # diagonal membrane
    labels = evaluate.truth_segments(y)
    assert labels.max() == 2  # 8-connectivity would merge the two corners
    assert np.all(labels[y == 1] == 0)
    assert evaluate.truth_segments(grid_truth()).max() == 6


def test_predicted_segments_thin_membranes_to_lines():
    y = grid_truth()
    y[:, 14:17] = 1  # a 3-pixel-wide vertical membrane
    seg = evaluate.predicted_segments(y, 0.5)
    assert seg.max() == 6
    assert seg.shape == y.shape
    assert np.all(y[seg == 0] == 1)  # lines only where membrane was predicted
    cell_rows = [r for r in range(32) if r not in (10, 21)]
    line_width = (seg[cell_rows, 14:17] == 0).sum(axis=1)
    assert np.all(line_width == 1)  # the 3-pixel membrane is thinned to a 1-pixel line


def test_segment_scores_hand_computed_merge_and_split():
    truth = np.array([[1, 1, 0, 2, 2]])
    merged = evaluate.segment_scores(truth, np.array([[1, 1, 1, 1, 1]]))
    # n_ij = (2, 2), a = (4,), b = (2, 2): 2*8 / (16 + 8); H(S) = 0 so I = 0
    assert merged["v_rand"] == pytest.approx(2 / 3)
    assert merged["v_rand_split"] == pytest.approx(1.0)
    assert merged["v_rand_merge"] == pytest.approx(0.5)
    assert merged["v_info"] == pytest.approx(0.0)
    split = evaluate.segment_scores(truth, np.array([[1, 2, 7, 3, 3]]))
    # n_ij = (1, 1, 2), a = (1, 1, 2), b = (2, 2): 2*6 / (6 + 8)
    # H(S) = 1.5 bits, H(T) = 1 bit, H(S,T) = 1.5 bits -> I = 1 -> V_info = 2 / 2.5
    assert split["v_rand"] == pytest.approx(6 / 7)
    assert split["v_info"] == pytest.approx(0.8)
    assert split["v_info_split"] == pytest.approx(1 / 1.5)
    assert split["v_info_merge"] == pytest.approx(1.0)


def test_predicted_lines_inside_cells_are_singletons():
    truth = np.array([[1, 1, 1, 1]])
    scores = evaluate.segment_scores(truth, np.array([[0, 0, 5, 5]]))
    # singletons: n_ij = (1, 1, 2), a = (1, 1, 2), b = (4,): 2*6 / (6 + 16) = 6/11
    # (treating label 0 as one segment would give 2/3)
    assert scores["v_rand"] == pytest.approx(6 / 11)
    same = evaluate.segment_scores(truth, np.array([[8, 9, 5, 5]]))
    assert same == pytest.approx(scores)


def test_segment_scores_ignore_truth_background_and_label_names():
    truth = evaluate.truth_segments(grid_truth())
    shuffled = np.where(truth > 0, 100 - truth, 42)  # other label ids, junk on membranes
    scores = evaluate.segment_scores(truth, shuffled)
    assert scores == pytest.approx(dict.fromkeys(scores, 1.0))
    assert np.isnan(evaluate.segment_scores(np.zeros((3, 3), int), truth[:3, :3])["v_rand"])


def test_segment_scores_agree_with_skimage_building_blocks():
    rng = np.random.default_rng(0)
    truth = evaluate.truth_segments(grid_truth())
    pred = rng.integers(1, 5, truth.shape) * (1 + (np.arange(32) >= 20))[None, :]  # no 0s
    s = evaluate.segment_scores(truth, pred)
    fg = truth > 0
    n = fg.sum()
    a = np.unique(pred[fg], return_counts=True)[1].astype(float)  # predicted sizes
    b = np.unique(truth[fg], return_counts=True)[1].astype(float)  # true sizes
    sum_ij2 = s["v_rand_split"] * np.sum(b**2)
    assert sum_ij2 / s["v_rand_merge"] == pytest.approx(np.sum(a**2))
    # skimage counts pairs without self-pairs: n_ij (n_ij - 1) instead of n_ij^2
    are, _, _ = adapted_rand_error(truth, pred)  # ignore_labels=(0,) by default
    pairs_f = (sum_ij2 - n) / ((np.sum(a**2) - n + np.sum(b**2) - n) / 2)
    assert 1 - are == pytest.approx(pairs_f)
    # information: skimage returns (H(pred|truth), H(truth|pred)) in bits
    h_s, h_t = entropy(a, base=2), entropy(b, base=2)
    h_s_given_t, h_t_given_s = variation_of_information(truth, pred, ignore_labels=(0,))
    mutual = h_s - h_s_given_t
    assert h_t - h_t_given_s == pytest.approx(mutual)
    assert s["v_info_split"] == pytest.approx(mutual / h_s)
    assert s["v_info_merge"] == pytest.approx(mutual / h_t)
    assert s["v_info"] == pytest.approx(2 * mutual / (h_s + h_t))
    # the default ignore_labels=() scores membranes as one more "cell": a different number
    h_s_given_t_all, _ = variation_of_information(truth, pred)
    assert h_s_given_t_all != pytest.approx(h_s_given_t)


# --------------------------------------------------------------------- ISBI scores


def two_level(cell: float, membrane: float) -> np.ndarray:
    """grid_truth's image with membrane at ``membrane`` and cells at ``cell``: perfect at thresholds in between."""
    return np.where(grid_truth() > 0, membrane, cell).astype("float32")


def test_isbi_scores_perfect_prediction_is_one():
    y = grid_truth()
    scores = evaluate.isbi_scores(y, y, {"v_rand": 0.5, "v_info": 0.3})
    assert scores == {"v_rand": 1.0, "v_info": 1.0, "threshold_rand": 0.5, "threshold_info": 0.3}
    assert evaluate.isbi_scores(y, y, 0.5)["threshold_info"] == 0.5  # one number for both


def test_isbi_scores_merged_cells_score_lower():
    y = grid_truth()
    prob = y.copy()
    prob[3:6, 15] = 0.0  # gap in the membrane: the two top cells merge
    merged = evaluate.isbi_scores(prob, y, 0.5)
    assert merged["v_rand"] < 0.95
    assert merged["v_info"] < 1.0
    assert 0 <= merged["v_rand"] and 0 <= merged["v_info"]


def test_isbi_scores_use_the_given_threshold_not_the_best_on_the_image():
    y = grid_truth()
    prob = two_level(0.35, 0.45)  # perfect only for thresholds in [0.35, 0.45)
    assert evaluate.isbi_scores(prob, y, 0.4)["v_rand"] == pytest.approx(1.0)
    at_validation = evaluate.isbi_scores(prob, y, {"v_rand": 0.3, "v_info": 0.3})  # no seeds: all split
    assert at_validation["v_rand"] < 0.1 and at_validation["v_info"] < 0.5


@pytest.mark.parametrize("bad", [None, [0.3, 0.5], np.arange(0.1, 1, 0.1), {"v_rand": 0.5}, 1.5, "0.5"])
def test_isbi_scores_refuse_a_sweep_or_a_bad_threshold(bad):
    y = grid_truth()
    with pytest.raises(ValueError, match="thresholds=.*choose_isbi_thresholds"):
        evaluate.isbi_scores(y, y, bad)
    with pytest.raises(ValueError, match="isbi_thresholds="):
        evaluate.evaluate_predictions(y[None], y[None], 0.5, bad)


def test_isbi_curve_is_the_mean_over_images_at_each_threshold():
    y = np.stack([grid_truth(), grid_truth()])
    prob = np.stack([two_level(0.35, 0.45), two_level(0.65, 0.75)])
    curve = evaluate.isbi_curve(prob, y)
    assert list(curve.columns) == ["threshold", "v_rand", "v_info"]
    np.testing.assert_allclose(curve["threshold"], np.arange(1, 10) / 10)
    first = [evaluate.isbi_scores(prob[0], y[0], t)["v_rand"] for t in curve["threshold"]]
    second = [evaluate.isbi_scores(prob[1], y[1], t)["v_rand"] for t in curve["threshold"]]
    np.testing.assert_allclose(curve["v_rand"], (np.array(first) + second) / 2)
    assert list(evaluate.isbi_curve(prob, y, [0.4])["threshold"]) == [0.4]


def test_choose_isbi_thresholds_on_validation_and_score_held_out_there():
    """The protocol: a held-out slice whose own best threshold differs from validation's scores lower."""
    y = grid_truth()
    validation = np.stack([two_level(0.35, 0.45), two_level(0.32, 0.48)])  # perfect at 0.4 only
    chosen = evaluate.choose_isbi_thresholds(validation, np.stack([y, y]))
    assert chosen == {"v_rand": pytest.approx(0.4), "v_info": pytest.approx(0.4)}
    held_out = np.stack([two_level(0.35, 0.45), two_level(0.65, 0.75)])  # slice 1 is perfect at 0.7 only
    table = evaluate.evaluate_predictions(held_out, np.stack([y, y]), 0.5, chosen)
    assert table.loc["0", "v_rand"] == pytest.approx(1.0)
    assert table.loc["1", "v_rand"] < 0.1  # a per-slice sweep would report 1.0 here
    assert table.loc["mean", "v_rand"] < 0.6


def test_choose_isbi_thresholds_take_the_lowest_of_ties():
    y = grid_truth()[None]
    prob = two_level(0.15, 0.95)[None]  # perfect at every threshold 0.2 ... 0.9
    assert evaluate.isbi_curve(prob, y)["v_rand"].iloc[1:].eq(1.0).all()
    assert evaluate.choose_isbi_thresholds(prob, y) == {"v_rand": pytest.approx(0.2), "v_info": pytest.approx(0.2)}


def test_challenge_scores_take_one_threshold_for_the_whole_set():
    y = np.stack([grid_truth()] * 2)
    prob = np.stack([two_level(0.35, 0.45), two_level(0.65, 0.75)])  # each slice perfect at its own threshold
    scores = evaluate.challenge_scores(prob, y)
    assert set(scores) == {"v_rand", "v_info", "threshold_rand", "threshold_info"}
    assert scores["threshold_rand"] in (pytest.approx(0.4), pytest.approx(0.7))
    curve = evaluate.isbi_curve(prob, y)
    assert scores["v_rand"] == pytest.approx(curve["v_rand"].max()) and scores["v_rand"] < 0.9  # not 1.0
    assert scores["v_info"] == pytest.approx(curve["v_info"].max())
    at = {"v_rand": scores["threshold_rand"], "v_info": scores["threshold_info"]}
    table = evaluate.evaluate_predictions(prob, y, 0.5, at)
    assert table.loc["mean", "v_rand"] == pytest.approx(scores["v_rand"])


def test_isbi_scores_on_a_real_slice(isbi_dir):
    label = imread(isbi_dir / "train" / "label" / "25.png")[:128, :128]
    y = (label == 0).astype("float32")  # membrane = 1
    assert evaluate.isbi_scores(y, y, 0.5) == pytest.approx(
        {"v_rand": 1.0, "v_info": 1.0, "threshold_rand": 0.5, "threshold_info": 0.5})
    prob = y.copy()
    prob[:, 40:90] = 0.0  # erase membranes in a band: cells merge
    worse = evaluate.isbi_scores(prob, y, 0.5)
    assert worse["v_rand"] < 0.9 and worse["v_info"] < 1.0


# ------------------------------------------------------------------------ tables


def test_evaluate_predictions():
    truth = np.stack([grid_truth(), grid_truth().T])[..., None]
    prob = truth.copy()
    prob[1, 3:6, 10] = 0.0  # merge two cells in image 1
    table = evaluate.evaluate_predictions(prob, truth, isbi_thresholds={"v_rand": 0.5, "v_info": 0.5})
    assert list(table.columns) == COLUMNS + ["v_rand", "v_info"]
    assert table.loc["0", "v_rand"] == 1.0 and table.loc["1", "v_rand"] < 1.0
    assert table.loc["mean", "v_rand"] == pytest.approx(table.loc[["0", "1"], "v_rand"].mean())
    named = evaluate.evaluate_predictions(prob, truth, 0.5, 0.5, names=["a", "b"])
    assert list(named.index) == ["a", "b", "mean"]


def test_save_scores_writes_the_mean_row_with_nulls(tmp_path):
    import json

    truth = np.stack([grid_truth(), grid_truth()])
    prob = truth.copy()
    prob[1, 0, :4] = 1.0  # 4 false membrane pixels in image 1
    table = evaluate.segmentation_table(prob, truth)
    path = tmp_path / "scores.json"
    written = runs.save_scores(table, path, notebook="01", profile="quick", split="validation",
                               threshold=0.5, train_seconds=1.5)
    assert json.loads(path.read_text()) == written
    assert list(written) == ["notebook", "profile", "split", "threshold", "iou_membrane", "dice_membrane",
                             "iou_cell", "dice_cell", "pixel_error", "v_rand", "v_info", "train_seconds"]
    assert written["v_rand"] is None and written["v_info"] is None  # not computed: null
    assert written["pixel_error"] == pytest.approx(4 / 32 / 32 / 2)
    assert written["iou_membrane"] == pytest.approx(table.loc["mean", "iou_membrane"])
    again = runs.save_scores({"iou_membrane": np.float32(0.5), "v_rand": float("nan")}, path)
    assert again["iou_membrane"] == 0.5 and again["v_rand"] is None and again["split"] is None
    with pytest.raises(ValueError, match="mean"):
        runs.save_scores(table.drop(index="mean"), path)
    with pytest.raises(ValueError, match="holdout"):
        runs.save_scores(table, path, split="test")


def test_tables_accept_images_of_different_sizes():
    """Own images need not share a size: a list of arrays scores each image on its own."""
    small, large = np.zeros((4, 6)), np.zeros((9, 5, 1))
    small[1] = 1
    large[:, 2] = 1
    prob = [small * 0.9, large * 0.2]  # second image: membrane only above threshold 0.2
    table = evaluate.segmentation_table(prob, [small, large], threshold=0.5)
    assert table.loc["0", "iou_membrane"] == 1.0
    assert table.loc["1", "iou_membrane"] == 0.0
    assert table.loc["mean", "iou_membrane"] == 0.5
    assert evaluate.choose_threshold(prob, [small, large]) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="image 1"):
        evaluate.segmentation_table(prob, [small, np.zeros((3, 3))])


def test_score_table_and_its_json():
    """The command line's foreground scores: three columns of segmentation_table, per image and mean."""
    truth = np.zeros((4, 4), np.uint8)
    truth[1] = 1
    pred = truth.copy()
    pred[2, :2] = 1  # 2 false foreground pixels
    table = scoring.score_table([pred, truth], [truth, truth], ["a", "b"])
    assert list(table.columns) == ["iou", "dice", "pixel_error"] and list(table.index) == ["a", "b", "mean"]
    assert table.loc["a"].tolist() == pytest.approx([4 / 6, 8 / 10, 2 / 16])
    assert table.loc["b"].tolist() == [1.0, 1.0, 0.0]
    assert scoring.score_table([pred * 0.4], [truth], ["a"], threshold=0.5).loc["a", "iou"] == 0.0
    as_json = scoring.score_table_json(table)
    assert [row["image"] for row in as_json["images"]] == ["a", "b"]
    assert as_json["images"][0] == {"image": "a", **dict(zip(table.columns, table.loc["a"].tolist()))}
    assert as_json["mean"] == {k: float(v) for k, v in table.loc["mean"].items()}
    with pytest.raises(ValueError, match="names"):
        scoring.score_table([pred], [truth], ["a", "b"])
