"""Tests for helpers.metrics: Keras metrics against NumPy references, per-image vs pooled."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from helpers import metrics

KERAS_METRICS = [metrics.iou, metrics.iou_thresholded]


def mixed_batch() -> tuple[np.ndarray, np.ndarray]:
    """Three 4x4 images whose per-image IoUs are 1/2, 1 and 1 (empty/empty)."""
    truth = np.zeros((3, 4, 4, 1), "float32")
    pred = np.zeros((3, 4, 4, 1), "float32")
    truth[0, 0, 0] = 1
    pred[0, 0, :2] = 0.9  # 2 predicted pixels, 1 of them right: IoU 1/2, Dice 2/3
    truth[1] = 1
    pred[1] = 0.8  # all 16 right: IoU 1
    return truth, pred  # image 2: both empty -> IoU 1 by convention


def test_iou_np_and_dice_np_edge_cases():
    a = np.array([[1, 1], [0, 0]], bool)
    assert metrics.iou_np(a, a) == 1.0
    assert metrics.iou_np(a, ~a) == 0.0  # disjoint
    assert metrics.iou_np(np.zeros_like(a), np.zeros_like(a)) == 1.0  # empty/empty
    assert metrics.iou_np(a, np.zeros_like(a)) == 0.0
    b = np.array([[0, 1], [1, 0]], bool)
    assert metrics.iou_np(a, b) == pytest.approx(1 / 3)
    assert metrics.dice_np(a, b) == pytest.approx(1 / 2)
    assert metrics.dice_np(a, ~a) == 0.0
    assert metrics.dice_np(np.zeros_like(a), np.zeros_like(a)) == 1.0


def test_numpy_references_reject_shape_mismatch():
    with pytest.raises(ValueError, match="same image"):
        metrics.iou_np(np.zeros((4, 4)), np.zeros((4, 5)))


def test_mixed_batch_per_image_mean_differs_from_pooled():
    truth, pred = mixed_batch()
    t, p = truth > 0.5, pred > 0.5
    # per image: (1/2 + 1 + 1) / 3 ; pooled: (1 + 16 + 0) / (2 + 16 + 0)
    assert np.mean([metrics.iou_np(a, b) for a, b in zip(p, t)]) == pytest.approx(5 / 6)
    assert metrics.iou_np(p, t) == pytest.approx(17 / 18)  # the whole stack: pooled
    np.testing.assert_allclose(metrics.iou_thresholded(truth, pred), [0.5, 1.0, 1.0])


def test_keras_metric_logs_per_image_mean_across_batches():
    truth, pred = mixed_batch()
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Identity()])
    model.compile(loss="mse", metrics=KERAS_METRICS, jit_compile=False)
    # batch_size=2 splits the three images 2 + 1: the result must still weight images equally
    result = model.evaluate(pred, truth, batch_size=2, verbose=0, return_dict=True)
    assert result["iou_thresholded"] == pytest.approx(5 / 6, rel=1e-6)
    # soft IoU of image 0: 0.9 / (1 + 1.8 - 0.9); image 1: 0.8*16 / 16; image 2: empty -> 1
    assert result["iou"] == pytest.approx((0.9 / 1.9 + 0.8 + 1) / 3, rel=1e-5)


def test_keras_metrics_match_numpy_on_random_images():
    rng = np.random.default_rng(0)
    truth = (rng.random((4, 16, 16, 1)) > 0.6).astype("float32")
    pred = rng.random((4, 16, 16, 1)).astype("float32")
    t, p = truth > 0.5, pred > 0.5
    np.testing.assert_allclose(
        metrics.iou_thresholded(truth, pred), [metrics.iou_np(a, b) for a, b in zip(p, t)],
        rtol=1e-6)
    inter = (truth * pred).sum((1, 2, 3))
    soft = inter / (truth.sum((1, 2, 3)) + pred.sum((1, 2, 3)) - inter)
    np.testing.assert_allclose(metrics.iou(truth, pred), soft, rtol=1e-5)


def test_keras_metrics_edge_cases():
    t = np.zeros((1, 4, 4, 1), "float32")
    t[0, :2] = 1
    empty = np.zeros_like(t)
    for metric in KERAS_METRICS:
        assert float(metric(t, t)[0]) == pytest.approx(1.0)
        assert float(metric(t, 1 - t)[0]) == pytest.approx(0.0)
        assert float(metric(empty, empty)[0]) == pytest.approx(1.0)


def test_threshold_is_strictly_greater_than_half():
    t = np.ones((1, 2, 2, 1), "float32")
    assert float(metrics.iou_thresholded(t, 0.5 * t)[0]) == 0.0  # 0.5 is not membrane
    assert float(metrics.iou_thresholded(t, 0.51 * t)[0]) == 1.0


def test_float16_predictions_and_readable_names():
    t = np.ones((1, 300, 300, 1), "float32")  # 90000 pixels: overflow in a float16 sum
    p = keras.ops.convert_to_tensor(t, dtype="float16")
    for metric in KERAS_METRICS:
        assert float(metric(t, p)[0]) == pytest.approx(1.0)
    assert [m.__name__ for m in KERAS_METRICS] == ["iou", "iou_thresholded"]


def test_metrics_are_registered_serializable():
    for metric in KERAS_METRICS:
        name = keras.saving.get_registered_name(metric)
        assert name == f"helpers>{metric.__name__}"
        assert keras.saving.get_registered_object(name) is metric
