"""Tests for helpers.losses: NumPy reference values, edge cases, gradients, saving."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from conftest import gradient
from helpers import losses, metrics

LOSSES = [losses.jaccard_loss, losses.dice_loss, losses.bce_jaccard_loss]


def np_jaccard_loss(t: np.ndarray, p: np.ndarray, smooth: float = 1.0) -> np.ndarray:
    axes = tuple(range(1, t.ndim))
    inter = (t * p).sum(axes)
    union = t.sum(axes) + p.sum(axes) - inter
    return 1 - (inter + smooth) / (union + smooth)


def np_dice_loss(t: np.ndarray, p: np.ndarray, smooth: float = 1.0) -> np.ndarray:
    axes = tuple(range(1, t.ndim))
    return 1 - (2 * (t * p).sum(axes) + smooth) / (t.sum(axes) + p.sum(axes) + smooth)


@pytest.fixture
def batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = (rng.random((3, 8, 8, 1)) > 0.7).astype("float32")
    p = rng.random((3, 8, 8, 1)).astype("float32")
    return y, p


def test_jaccard_and_dice_match_numpy_per_image(batch):
    y, p = batch
    np.testing.assert_allclose(losses.jaccard_loss(y, p), np_jaccard_loss(y, p), rtol=1e-5)
    np.testing.assert_allclose(losses.dice_loss(y, p), np_dice_loss(y, p), rtol=1e-5)


def test_bce_jaccard_is_mean_bce_per_image_plus_jaccard(batch):
    y, p = batch
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(
        losses.bce_jaccard_loss(y, p), bce + np_jaccard_loss(y, p), rtol=1e-4
    )


def test_one_value_per_image_not_per_pixel(batch):
    y, p = batch
    for loss in LOSSES:
        assert tuple(loss(y, p).shape) == (3,)


def test_known_values_disjoint_empty_identical():
    t = np.zeros((1, 4, 4, 1), "float32")
    t[0, :2] = 1  # 8 membrane pixels
    disjoint = 1 - t
    # disjoint: intersection 0, union 16 -> 1 - 1/17 ; dice: 1 - 1/17 too (|X|+|Y| = 16)
    assert float(losses.jaccard_loss(t, disjoint)[0]) == pytest.approx(16 / 17)
    assert float(losses.dice_loss(t, disjoint)[0]) == pytest.approx(16 / 17)
    empty = np.zeros_like(t)
    for loss in LOSSES:
        assert float(loss(empty, empty)[0]) == pytest.approx(0.0, abs=1e-6)
        assert float(loss(t, t)[0]) == pytest.approx(0.0, abs=1e-6)


def test_losses_lie_in_unit_interval(batch):
    y, p = batch
    for loss in (losses.jaccard_loss, losses.dice_loss):
        values = np.asarray(loss(y, p))
        assert np.all((values >= 0) & (values <= 1))
    assert np.all(np.asarray(losses.bce_jaccard_loss(y, p)) >= 0)


def test_gradients_are_finite_even_at_0_and_1():
    y = np.zeros((2, 8, 8, 1), "float32")
    y[0, 2:5] = 1  # second image: empty mask
    p = np.where(y > 0, 1.0, 0.0).astype("float32")  # saturated prediction
    for loss in LOSSES:
        grad = gradient(lambda v: keras.ops.mean(loss(y, v)), p)
        assert grad.shape == p.shape and np.all(np.isfinite(grad)), loss.__name__


def test_float16_predictions_are_summed_in_float32():
    # 300*300 = 90000 pixels: a float16 sum would overflow (max 65504) and give nan
    y = np.ones((1, 300, 300, 1), "float32")
    p = keras.ops.convert_to_tensor(y, dtype="float16")
    for loss in LOSSES:
        value = loss(y, p)
        assert keras.backend.standardize_dtype(value.dtype) == "float32"
        assert float(value[0]) == pytest.approx(0.0, abs=1e-4)


def test_int_masks_are_cast(batch):
    y, p = batch
    np.testing.assert_allclose(
        losses.jaccard_loss(y.astype("uint8"), p), losses.jaccard_loss(y, p), rtol=1e-6
    )


def test_saved_model_reloads_without_custom_objects(tmp_path, batch):
    y, _ = batch
    x = np.random.default_rng(1).random(y.shape).astype("float32")
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(1, 1, activation="sigmoid"),
    ])
    model.compile(
        optimizer="adam", loss=losses.bce_jaccard_loss,
        metrics=[metrics.iou, metrics.iou_thresholded], jit_compile=False,
    )
    model.fit(x, y, epochs=1, batch_size=3, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)

    reloaded = keras.models.load_model(path)  # no custom_objects
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)
    before = model.evaluate(x, y, verbose=0, return_dict=True)
    after = reloaded.evaluate(x, y, verbose=0, return_dict=True)
    assert set(after) == {"loss", "iou", "iou_thresholded"}
    for key in before:
        assert after[key] == pytest.approx(before[key], rel=1e-5)
    expected = np.mean(np.asarray(losses.bce_jaccard_loss(y, model.predict(x, verbose=0))))
    assert after["loss"] == pytest.approx(expected, rel=1e-4)
