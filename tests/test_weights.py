"""The U-Net paper's weight map, carrying it through augmentation, and the weighted loss."""

import math

import keras
import numpy as np
import pytest

from helpers import augment, losses, models, weights


def two_cells(width_gap: int = 3) -> np.ndarray:
    """5 x 9 mask: cell | membrane (1) of ``width_gap`` columns | cell."""
    mask = np.zeros((5, 9), np.uint8)
    mask[:, 3:3 + width_gap] = 1
    return mask


def test_weight_map_matches_the_paper_formula_by_hand():
    # 45 pixels, 15 membrane, 30 cell: w_c = 45 / (2 * 15) = 1.5 and 45 / (2 * 30) = 0.75.
    # Every membrane column has d1 + d2 = 4 (e.g. column 3: 1 px to the left cell, 3 px to the
    # right one), so its border term is w0 exp(-16 / (2 sigma^2)) = 10 e^-2 for sigma = 2.
    w = weights.border_weight_map(two_cells(), w0=10.0, sigma=2.0)
    expected = np.full((5, 9), 0.75)
    expected[:, 3:6] = 1.5 + 10 * math.exp(-2)
    np.testing.assert_allclose(w, expected, rtol=1e-6)


def test_weight_map_parts_switch_off():
    mask = two_cells()
    np.testing.assert_allclose(weights.border_weight_map(mask, w0=0.0), weights.class_balance(mask))
    plain = weights.border_weight_map(mask, w0=10.0, sigma=2.0, balance=False)
    np.testing.assert_allclose(plain[0], [1, 1, 1] + [1 + 10 * math.exp(-2)] * 3 + [1, 1, 1], rtol=1e-6)


def test_wider_gaps_weigh_less_and_a_single_object_adds_nothing():
    narrow = weights.border_weight_map(two_cells(1), balance=False)
    wide = weights.border_weight_map(_wide(), balance=False)
    assert narrow[0, 3] > wide[0, 7] > 1.0
    one_cell = np.zeros((6, 6)); one_cell[:, 4:] = 1  # one object: no second-nearest cell
    np.testing.assert_allclose(weights.border_weight_map(one_cell, balance=False), 1.0)


def _wide() -> np.ndarray:
    mask = np.zeros((5, 15), np.uint8)
    mask[:, 3:12] = 1  # a 9-px membrane between two cells
    return mask


def test_foreground_objects_for_blobs_on_background():
    mask = np.zeros((5, 9), np.uint8)
    mask[:, :3] = 1
    mask[:, 6:] = 1  # two nuclei (1) with 3 px of background between them
    assert weights._object_labels(mask, "foreground").max() == 2
    w = weights.border_weight_map(mask, w0=10.0, sigma=2.0, objects="foreground", balance=False)
    np.testing.assert_allclose(w[0, 3:6], 1 + 10 * math.exp(-2), rtol=1e-6)
    np.testing.assert_allclose(w[0, :3], 1.0)


def test_weight_maps_of_a_stack_and_bad_input():
    stack = np.stack([two_cells()[..., None]] * 3)
    assert weights.weight_maps(stack).shape == (3, 5, 9)
    with pytest.raises(ValueError, match="weight_maps for a stack"):
        weights.border_weight_map(stack)
    with pytest.raises(ValueError, match="objects='cells'"):
        weights._object_labels(two_cells(), "cells")
    with pytest.raises(ValueError, match="sigma > 0"):
        weights.border_weight_map(two_cells(), sigma=0)


@pytest.mark.parametrize("pipeline", ["tf.data", "numpy"])
def test_get_augmented_keeps_weights_on_their_pixels(pipeline):
    if pipeline == "tf.data":
        pytest.importorskip("tensorflow", reason="needs TensorFlow, which Colab's TPU runtime (CI's tpu stack) lacks")
    rng = np.random.default_rng(0)
    x = rng.random((4, 48, 48, 1), dtype=np.float32)
    y = (rng.random((4, 48, 48, 1)) > 0.7).astype(np.float32)
    w = 1.0 + 5.0 * y[..., 0]  # a function of the mask: it must still be one after warping
    args = {**augment.DEFAULT_ARGS, **augment.ELASTIC, "rotation_range": 30.0}
    ds = augment.get_augmented(x, y, batch_size=4, crop_size=32, seed=3, data_gen_args=args,
                               pipeline=pipeline, weights=w)
    images, masks, batch_w = (np.asarray(part) for part in next(iter(ds)))
    assert images.shape == (4, 32, 32, 1) and masks.shape == (4, 32, 32, 1) and batch_w.shape == (4, 32, 32)
    np.testing.assert_array_equal(batch_w, 1.0 + 5.0 * masks[..., 0])
    plain = augment.get_augmented(x, y, batch_size=4, crop_size=32, seed=3, data_gen_args=args, pipeline=pipeline)
    plain_images, plain_masks = (np.asarray(part) for part in next(iter(plain)))
    np.testing.assert_allclose(plain_images, images, atol=1e-6)  # weights change nothing else
    np.testing.assert_array_equal(plain_masks, masks)


def test_get_augmented_rejects_weights_of_the_wrong_shape():
    x = np.zeros((2, 16, 16, 1), np.float32)
    with pytest.raises(ValueError, match="weight_maps"):
        augment.get_augmented(x, x, batch_size=2, weights=np.ones((2, 8, 8)))


def test_weighted_bce_by_hand_and_without_weights():
    t = np.array([[[[1.0], [0.0]], [[0.0], [1.0]]]], np.float32)
    p = np.array([[[[0.8], [0.4]], [[0.1], [0.3]]]], np.float32)
    w = np.array([[[2.0, 1.0], [1.0, 4.0]]], np.float32)
    bce = -np.log([[0.8, 0.6], [0.9, 0.3]])
    assert float(losses.WeightedBCE()(t, p, w)) == pytest.approx((bce * w[0]).mean(), rel=1e-5)
    assert float(losses.WeightedBCE()(t, p)) == pytest.approx(bce.mean(), rel=1e-5)
    with_jaccard = losses.WeightedBCE(jaccard=1.0)(t, p, w)
    expected = (bce * w[0]).mean() + float(losses.jaccard_loss(t, p)[0])
    assert float(with_jaccard) == pytest.approx(expected, rel=1e-5)


def test_weighted_training_runs_and_the_model_reloads(tmp_path):
    rng = np.random.default_rng(1)
    y = np.zeros((4, 32, 32, 1), np.float32)
    y[:, 14:18] = 1
    x = (0.3 + 0.5 * y + 0.05 * rng.random(y.shape)).astype(np.float32)
    ds = augment.get_augmented(x, y, batch_size=2, seed=0, data_gen_args=augment.NO_AUGMENTATION,
                               weights=weights.weight_maps(y, sigma=2.0))
    model = models.custom_unet((32, 32, 1), filters=4, num_layers=2, use_batch_norm=False)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=losses.WeightedBCE(jaccard=1.0))
    history = model.fit(ds, epochs=2, steps_per_epoch=3, validation_data=(x, y), verbose=0, shuffle=False)
    assert all(np.isfinite(history.history["loss"])) and "val_loss" in history.history
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    assert reloaded.loss.jaccard == 1.0 and reloaded.loss.name == "weighted_bce_jaccard"
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_losses_by_name():
    assert losses.by_name("bce") == "binary_crossentropy" and losses.by_name("bce_dice") is losses.bce_dice_loss
    assert losses.by_name("weighted_bce").jaccard == 0.0 and losses.by_name("weighted_bce_jaccard").jaccard == 1.0
    assert set(losses.WEIGHTED_LOSSES) <= set(losses.LOSS_NAMES)
    with pytest.raises(ValueError, match="name='dice' is not a loss; choose one of bce, jaccard"):
        losses.by_name("dice")


def test_docstring_examples():
    import doctest

    for module in (weights, losses):
        assert doctest.testmod(module).failed == 0, module.__name__


def test_guess_objects_tells_membranes_from_blobs():
    membranes = two_cells()
    assert weights.guess_objects([membranes]) == "background"
    blobs = np.zeros((12, 12), np.uint8)
    blobs[1:4, 1:4] = blobs[6:9, 6:9] = blobs[1:3, 8:11] = 1
    assert weights.guess_objects([blobs, blobs[..., None]]) == "foreground"


def test_train_folder_weights_the_borders_of_the_named_objects(tmp_path):
    from PIL import Image

    from helpers.toolkit import workflow

    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(); masks.mkdir()
    rng = np.random.default_rng(0)
    for index in range(5):
        mask = np.zeros((64, 64), np.uint8)
        mask[:, 20 + index:23 + index] = mask[30:33, :] = 1  # membranes around four cells
        Image.fromarray((np.clip(0.7 - 0.5 * mask + rng.normal(0, 0.05, mask.shape), 0, 1) * 255)
                        .astype(np.uint8)).save(images / f"s{index}.png")
        Image.fromarray(mask * 255).save(masks / f"s{index}.png")
    lines = []
    config = workflow.train_folder(images, masks, tmp_path / "run", epochs=1, steps=2, tile=32, filters=4,
                                   layers=2, batch_size=2, verbose=0, echo=lines.append)
    assert config["loss"] == "weighted_bce_jaccard" and config["border_objects"] == "background"
    assert any(line.startswith("border weights (U-Net paper") for line in lines)
    plain = workflow.train_folder(images, masks, tmp_path / "plain", loss="bce", epochs=1, steps=2, tile=32,
                                  filters=4, layers=2, batch_size=2, verbose=0, echo=lines.append)
    assert plain["border_objects"] is None
    with pytest.raises(ValueError, match="border.objects.*'cells'"):
        workflow.train_folder(images, masks, tmp_path / "bad", border_objects="cells")
