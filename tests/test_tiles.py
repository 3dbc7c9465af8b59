"""Tests for helpers.tiles: cutting, reassembling, blending and tiled prediction."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from helpers.env import quick_mode
from helpers.models import build_unet
from helpers.tiles import (
    TileInfo,
    blend_window,
    get_patches,
    predict_tiled,
    reconstruct_from_patches,
    seam_error,
)


def _images(shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def _identity_model(channels: int = 1) -> keras.Model:
    """A 1x1 convolution with weight 1 and bias 0: output == input, bit for bit."""
    conv = keras.layers.Conv2D(channels, 1)
    model = keras.Sequential([keras.Input((None, None, channels)), conv])
    conv.set_weights([np.eye(channels, dtype="float32")[None, None], np.zeros(channels, "float32")])
    return model


@pytest.fixture(scope="module")
def small_unet() -> keras.Model:
    keras.utils.set_random_seed(1)
    return build_unet((None, None, 1), filters=4, num_layers=2, dropout=0.0)


# --- get_patches / reconstruct_from_patches -------------------------------------------------
@pytest.mark.parametrize(
    "shape",
    [(3, 32, 32, 1), (2, 37, 53, 3), (33, 31, 1), (1, 5, 7, 2), (4, 16, 16, 1), (1, 1, 1, 1)],
    ids=["square-batch", "non-square-rgb", "odd-single", "smaller-than-tile", "exact", "1px"],
)
@pytest.mark.parametrize("stride", [16, 11, 8, 1])
def test_patch_then_reconstruct_is_identity(shape, stride):
    images = _images(shape)
    patches, info = get_patches(images, size=16, stride=stride)
    assert patches.shape[1:] == (16, 16, shape[-1])
    n = shape[0] if len(shape) == 4 else 1
    assert patches.shape[0] == n * info.n_tiles
    out = reconstruct_from_patches(patches, info)
    assert out.shape == images.shape and out.dtype == np.float32
    assert np.array_equal(out, images)
    # also exact with a blending window (weights cancel in sum(w * x) / sum(w))
    blended = reconstruct_from_patches(patches, info, window=blend_window(16, 16 - stride))
    assert np.array_equal(blended, images)


def test_default_stride_is_size_and_grid_covers_image():
    patches, info = get_patches(np.zeros((100, 70, 1)), size=32)
    assert info.stride == 32
    assert info.padded_shape == (128, 96)  # 4 x 3 tiles
    assert info.positions[:4] == ((0, 0), (0, 32), (0, 64), (32, 0))
    assert patches.shape == (12, 32, 32, 1) and info.n_tiles == 12
    assert info.image_shape == (1, 100, 70, 1) and info.batched is False


def test_patches_hold_image_content_and_reflected_border():
    image = _images((2, 20, 13, 1))
    patches, info = get_patches(image, size=8, stride=6)
    tiles = patches.reshape(2, info.n_tiles, 8, 8, 1)  # image-major order
    for k, (y, x) in enumerate(info.positions):
        inside = image[:, y : y + 8, x : x + 8]
        np.testing.assert_array_equal(tiles[:, k, : inside.shape[1], : inside.shape[2]], inside)
    # width 13 is padded to 14 by mirroring without repeating the edge: column 13 == column 11
    assert info.padded_shape == (20, 14)
    for k, (y, x) in enumerate(info.positions):
        if x + 8 > 13:
            np.testing.assert_array_equal(tiles[:, k, :, 13 - x], image[:, y : y + 8, 11])


def test_overlaps_are_averaged_not_overwritten():
    _, info = get_patches(np.zeros((8, 24, 1)), size=16, stride=8)
    assert info.positions == ((0, 0), (0, 8))
    patches = np.stack([np.full((16, 16, 1), 0.0), np.full((16, 16, 1), 1.0)])
    out = reconstruct_from_patches(patches, info)[..., 0]
    np.testing.assert_array_equal(out[:, :8], 0.0)
    np.testing.assert_array_equal(out[:, 8:16], 0.5)  # keras-unet would overwrite with 1.0
    np.testing.assert_array_equal(out[:, 16:], 1.0)
    window = blend_window(16, 8)
    blended = reconstruct_from_patches(patches, info, window)[0, 8:16, 0]
    # in the overlap the second tile's share w2 / (w1 + w2) rises smoothly from ~0 to ~1
    expected = window[0, :8] / (window[0, :8] + window[0, 8:])
    np.testing.assert_allclose(blended, expected, atol=1e-7)
    assert blended[0] < 0.02 and blended[-1] > 0.98 and np.all(np.diff(blended) > 0)


def test_reconstruct_accepts_other_channel_counts_and_keeps_float64():
    images = np.random.default_rng(0).random((2, 19, 23, 1))
    patches, info = get_patches(images, size=8, stride=5)
    two = np.concatenate([patches, 1 - patches], axis=-1)
    out = reconstruct_from_patches(two, info)
    assert out.shape == (2, 19, 23, 2) and out.dtype == np.float64
    np.testing.assert_allclose(out[..., 1], 1 - images[..., 0], atol=1e-12)


def test_tileinfo_is_frozen():
    _, info = get_patches(np.zeros((10, 10, 1)), size=4)
    assert isinstance(info, TileInfo)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.size = 8


@pytest.mark.parametrize(
    "kwargs",
    [dict(size=8, stride=9), dict(size=8, stride=0), dict(size=0)],
    ids=["stride>size", "stride0", "size0"],
)
def test_get_patches_rejects_bad_tiling(kwargs):
    with pytest.raises(ValueError, match="stride"):
        get_patches(np.zeros((10, 10, 1)), **kwargs)


def test_bad_inputs_raise_value_error():
    with pytest.raises(ValueError, match=r"\(H, W, C\)"):
        get_patches(np.zeros((10, 10)), size=4)
    patches, info = get_patches(np.zeros((10, 10, 1)), size=4)
    with pytest.raises(ValueError, match="do not match"):
        reconstruct_from_patches(patches[:-1], info)
    with pytest.raises(ValueError, match="strictly positive"):
        reconstruct_from_patches(patches, info, window=np.zeros((4, 4)))
    with pytest.raises(ValueError, match="strictly positive"):
        reconstruct_from_patches(patches, info, window=np.ones((5, 5)))


# --- blend_window ----------------------------------------------------------------------------
@pytest.mark.parametrize("size, overlap", [(128, 32), (16, 5), (9, 4), (8, 8), (32, 1)])
def test_blend_window_positive_symmetric_smooth(size, overlap):
    w = blend_window(size, overlap)
    assert w.shape == (size, size)
    assert w.min() > 0 and w.max() <= 1
    np.testing.assert_array_equal(w, w.T)
    np.testing.assert_array_equal(w, w[::-1, ::-1])
    mid = size // 2
    profile = w[mid] / np.sqrt(w[mid, mid])  # w is the outer product of a 1-D profile
    np.testing.assert_allclose(np.outer(profile, profile), w, atol=1e-12)
    # a sin**2 ramp over `overlap` pixels changes by at most pi / (2 * overlap) per pixel
    assert np.abs(np.diff(profile)).max() <= np.pi / (2 * overlap) + 1e-12


def test_blend_window_flat_middle_and_partition_of_unity():
    size, overlap = 64, 16
    w = blend_window(size, overlap)
    np.testing.assert_array_equal(w[overlap:-overlap, overlap:-overlap], 1.0)
    profile = w[size // 2]
    # neighbours cut every size - overlap pixels: falling + rising ramp == 1
    np.testing.assert_allclose(profile[-overlap:] + profile[:overlap], 1.0, atol=1e-12)
    assert profile[0] < 0.01
    np.testing.assert_array_equal(blend_window(10, 0), np.ones((10, 10)))
    with pytest.raises(ValueError):
        blend_window(10, -1)


# --- predict_tiled ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(37, 53, 1), (31, 31, 1), (20, 9, 1), (2, 45, 33, 1)])
def test_predict_tiled_returns_input_size(small_unet, shape):
    out = predict_tiled(small_unet, _images(shape), tile=32, overlap=8)
    assert out.shape == shape and out.dtype == np.float32
    assert np.all((out > 0) & (out < 1))  # sigmoid probabilities


def test_predict_tiled_keeps_model_channels():
    keras.utils.set_random_seed(2)
    model = build_unet((None, None, 1), filters=4, num_layers=2, num_classes=3)
    out = predict_tiled(model, _images((41, 27, 1)), tile=16, overlap=4)
    assert out.shape == (41, 27, 3)
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)  # blended softmax still sums to 1


@pytest.mark.parametrize("overlap", [0, 8, 31])
@pytest.mark.parametrize("shape", [(37, 53, 1), (5, 70, 1), (2, 64, 64, 1)])
def test_predict_tiled_with_identity_model_returns_input_exactly(shape, overlap):
    image = _images(shape)
    assert np.array_equal(predict_tiled(_identity_model(), image, tile=32, overlap=overlap), image)


def test_predict_tiled_identity_rgb():
    image = _images((23, 40, 3))
    assert np.array_equal(predict_tiled(_identity_model(3), image, tile=16, overlap=4), image)


def test_overlap_zero_is_the_plain_side_by_side_stitch(small_unet):
    image = _images((64, 64, 1), seed=3)
    quads = np.stack([image[y : y + 32, x : x + 32] for y in (0, 32) for x in (0, 32)])
    pred = small_unet.predict(quads, verbose=0)
    stitched = np.block([[pred[0, ..., 0], pred[1, ..., 0]], [pred[2, ..., 0], pred[3, ..., 0]]])
    out = predict_tiled(small_unet, image, tile=32, overlap=0)
    np.testing.assert_allclose(out[..., 0], stitched, atol=1e-6)


@pytest.mark.parametrize("overlap", [32, 40, -1])
def test_predict_tiled_rejects_bad_overlap(overlap):
    with pytest.raises(ValueError, match="overlap"):
        predict_tiled(_identity_model(), np.zeros((40, 40, 1)), tile=32, overlap=overlap)


def test_predict_tiled_rejects_models_that_shrink_tiles():
    valid = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Conv2D(1, 3)])
    with pytest.raises(ValueError, match="same"):
        predict_tiled(valid, np.zeros((40, 40, 1)), tile=32, overlap=8)


def test_seam_error_finds_tile_edges():
    reference = np.zeros((64, 64))
    wrong_at_edge = reference.copy()
    wrong_at_edge[32, 5] = 1.0  # first row of the second tile row
    wrong_inside = reference.copy()
    wrong_inside[20, 20] = 1.0
    at_edge = seam_error(wrong_at_edge, reference, tile=32)
    inside = seam_error(wrong_inside, reference, tile=32)
    assert at_edge["edge_max_abs"] == 1.0 and inside["edge_max_abs"] == 0.0
    assert at_edge["max_abs"] == inside["max_abs"] == 1.0
    assert at_edge["mean_abs"] == pytest.approx(1 / 64**2)
    # edge rows 31, 32 and columns 31, 32: 4 * 64 - 4 pixels
    assert at_edge["edge_mean_abs"] == pytest.approx(1 / (4 * 64 - 4))


# --- measured seam test on a real ISBI slice -------------------------------------------------
@pytest.fixture(scope="module")
def isbi_slice(isbi_dir):
    """Slice 0 of the ISBI training stack: image (1, 512, 512, 1) in [0, 1], mask membrane = 1."""
    skio = pytest.importorskip("skimage.io")
    image = skio.imread(isbi_dir / "train" / "image" / "0.png").astype("float32") / 255.0
    label = skio.imread(isbi_dir / "train" / "label" / "0.png")
    assert image.shape == (512, 512)
    return image[None, :, :, None], (label == 0).astype("float32")[None, :, :, None]


def _seam_comparison(model, x, tag):
    """|tiled - whole-image| for overlap 0 and 32 (tile 128), measured at the plain grid's edges."""
    whole = model.predict(x, verbose=0)[0]
    results = {}
    for overlap in (0, 32):
        tiled = predict_tiled(model, x[0], tile=128, overlap=overlap)
        assert tiled.shape == whole.shape == (512, 512, 1)
        results[overlap] = seam_error(tiled, whole, tile=128, overlap=0)
        print(tag, "overlap", overlap, {k: round(v, 5) for k, v in results[overlap].items()})
    plain, blended = results[0], results[32]
    assert plain["edge_mean_abs"] > 3 * plain["mean_abs"]  # the plain stitch has seams
    assert blended["mean_abs"] < plain["mean_abs"] / 3
    assert blended["edge_max_abs"] < plain["edge_max_abs"] / 5
    assert blended["edge_mean_abs"] < plain["edge_mean_abs"] / 5
    return results


def test_blending_removes_seams_on_isbi_slice(isbi_slice):
    """Tiled vs whole-image prediction on ISBI slice 0 (512 x 512), tile 128, random U-Net.

    Model: build_unet(filters=8, num_layers=3, dropout=0), keras seed 0, untrained. Numbers are
    |tiled - whole-image| in probability units; "edge" = the rows/columns next to the tile
    boundaries of the plain 128-px grid (127/128, 255/256, 383/384), where seams appear.
    Measured on the 2-core CPU (TF 2.19, Keras 3.10)::

        overlap  mean abs  max abs  edge mean  edge max
           0     0.00906   0.318    0.0917     0.318
          32     0.00105   0.025    0.00089    0.0131

    Overlap 32 with the raised-cosine blend is ~9x closer on average; at the seams the largest
    error is ~24x and the mean error ~100x smaller.
    """
    keras.utils.set_random_seed(0)
    model = build_unet((None, None, 1), filters=8, num_layers=3, dropout=0.0)
    _seam_comparison(model, isbi_slice[0], "random")


@pytest.mark.skipif(quick_mode(), reason="trains for a few steps; run with UNET_QUICK=0")
def test_blending_removes_seams_with_trained_unet(isbi_slice):
    """As above after 8 Adam steps (lr 3e-3, BCE, nine fixed 128-px crops of the same slice).

    Measured on the 2-core CPU (TF 2.19, Keras 3.10), UNET_QUICK=0::

        overlap  mean abs  max abs  edge mean  edge max
           0     0.00732   0.314    0.141      0.314
          32     0.00045   0.0156   0.00027    0.00915

    The blended result is ~16x closer on average; at the seams the largest error is ~34x and the
    mean error ~500x smaller.
    """
    x, y = isbi_slice
    keras.utils.set_random_seed(0)
    model = build_unet((None, None, 1), filters=8, num_layers=3, dropout=0.0)
    crops = [(a, b) for a in (0, 192, 384) for b in (0, 192, 384)]
    cx = np.concatenate([x[:, a : a + 128, b : b + 128] for a, b in crops])
    cy = np.concatenate([y[:, a : a + 128, b : b + 128] for a, b in crops])
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy",
                  jit_compile=False)
    history = model.fit(cx, cy, batch_size=9, epochs=8, shuffle=False, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    _seam_comparison(model, x, "trained")
