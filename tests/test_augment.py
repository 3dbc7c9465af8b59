"""Tests for helpers.augment.get_augmented and helpers.augment_numpy (tiny synthetic data, CPU, a few seconds).

Every test runs on both pipelines: tf.data (where TensorFlow is installed) and the NumPy one used
without TensorFlow (Colab's TPU runtimes).
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from skimage.data import binary_blobs

from helpers import augment, augment_numpy, env
from helpers.augment import DEFAULT_ARGS, NO_AUGMENTATION

PIPELINES = [pytest.param("tf.data", marks=pytest.mark.skipif(not env.has_tensorflow(), reason="the tf.data pipeline needs TensorFlow, which Colab's TPU runtime (CI's tpu stack) lacks")),
             "numpy"]


@pytest.fixture(params=PIPELINES, autouse=True)
def pipeline(request) -> str:
    """Run the test on each pipeline (get_augmented below uses it)."""
    global PIPELINE
    PIPELINE = request.param
    return request.param


def get_augmented(*args, **kwargs):
    return augment.get_augmented(*args, pipeline=PIPELINE, **kwargs)

N, SIZE = 8, 32
STRONG = dict(DEFAULT_ARGS, rotation_range=45, shear_range=20, zoom_range=0.4)


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """Smooth grey images in [0, 1] and masks y = (x > 0.5), shape (8, 32, 32, 1)."""
    x = np.stack(
        [
            gaussian_filter(binary_blobs(SIZE, blob_size_fraction=0.3, rng=i).astype(float), 1.5)
            for i in range(N)
        ]
    )[..., None].astype(np.float32)
    return x, (x > 0.5).astype(np.float32)


def first_batch(ds) -> tuple[np.ndarray, np.ndarray]:
    images, masks = next(iter(ds))
    return np.asarray(images), np.asarray(masks)


def test_element_spec_shape_dtype(blobs, pipeline):
    x, y = blobs
    y2 = np.concatenate([y, 1 - y], axis=-1)  # masks may have their own channel count
    ds = get_augmented(x, y2, batch_size=4)
    if pipeline == "tf.data":
        import tensorflow as tf

        assert isinstance(ds, tf.data.Dataset)
        image_spec, mask_spec = ds.element_spec
        assert image_spec.shape == (4, SIZE, SIZE, 1) and image_spec.dtype == tf.float32
        assert mask_spec.shape == (4, SIZE, SIZE, 2) and mask_spec.dtype == tf.float32
    else:
        assert isinstance(ds, augment_numpy.AugmentedBatches) and isinstance(ds, keras.utils.PyDataset)
        assert ds.num_batches is None  # endless: fit needs steps_per_epoch, as with tf.data
    images, masks = first_batch(ds)
    assert images.shape == (4, SIZE, SIZE, 1) and masks.shape == (4, SIZE, SIZE, 2)
    assert images.dtype == np.float32 and masks.dtype == np.float32


def test_one_pass_without_repeat_keeps_every_image(blobs):
    x, y = blobs
    batches = list(get_augmented(x, y, batch_size=3, repeat=False))
    assert [len(b[0]) for b in batches] == [3, 3, 2]


def test_masks_stay_binary_under_strong_transforms(blobs):
    x, y = blobs
    _, masks = first_batch(get_augmented(x, y, batch_size=N, data_gen_args=STRONG))
    assert set(np.unique(masks)) == {0.0, 1.0}


def test_image_and_mask_get_the_same_transform(blobs):
    x, y = blobs
    images, masks = first_batch(get_augmented(x, y, batch_size=N, data_gen_args=STRONG))
    assert not np.allclose(images, x)  # something happened ...
    agreement = np.mean((images > 0.5) == (masks > 0.5))
    assert agreement > 0.97  # ... and it happened to both (only edge pixels may differ)


def test_no_augmentation_is_identity_up_to_order(blobs):
    x, y = blobs
    images, masks = first_batch(get_augmented(x, y, batch_size=N, data_gen_args=NO_AUGMENTATION))
    order = [int(np.argmin(np.abs(x - image).sum(axis=(1, 2, 3)))) for image in images]
    assert sorted(order) == list(range(N))
    np.testing.assert_array_equal(images, x[order])
    np.testing.assert_array_equal(masks, y[order])


def test_flips_only_give_exact_flipped_copies(blobs):
    x, y = blobs
    args = dict(NO_AUGMENTATION, horizontal_flip=True, vertical_flip=True)
    images, masks = first_batch(
        get_augmented(x, y, batch_size=N, data_gen_args=args, shuffle=False, repeat=False)
    )
    flips = {
        "none": lambda a: a,
        "lr": lambda a: a[:, ::-1],
        "ud": lambda a: a[::-1, :],
        "both": lambda a: a[::-1, ::-1],
    }
    used = set()
    for image, mask, x0, y0 in zip(images, masks, x, y):
        matches = [k for k, flip in flips.items() if np.array_equal(image, flip(x0))]
        assert len(matches) == 1
        np.testing.assert_array_equal(mask, flips[matches[0]](y0))
        used.add(matches[0])
    assert len(used) >= 3  # 8 coin pairs: the flips really are random


def test_width_shift_moves_columns_with_reflect_padding(blobs):
    x, y = blobs
    args = dict(NO_AUGMENTATION, width_shift_range=0.1)  # up to 3.2 px
    _, masks = first_batch(
        get_augmented(x, y, batch_size=N, data_gen_args=args, shuffle=False, repeat=False)
    )
    shifts = []
    for mask, y0 in zip(masks, y):
        padded = np.pad(y0, ((0, 0), (4, 4), (0, 0)), mode="symmetric")  # TF's REFLECT
        found = [s for s in range(-3, 4) if np.array_equal(mask, padded[:, 4 + s : 4 + s + SIZE])]
        assert found, "the mask is not a column shift of its input"
        shifts.append(found[0])
    assert len(set(shifts)) > 1


def test_same_seed_same_batch_different_seed_different(blobs):
    x, y = blobs
    a = first_batch(get_augmented(x, y, batch_size=4, seed=3, crop_size=24))
    b = first_batch(get_augmented(x, y, batch_size=4, seed=3, crop_size=24))
    c = first_batch(get_augmented(x, y, batch_size=4, seed=4, crop_size=24))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_constant_fill_warns_and_reflect_pads_with_real_content():
    ones = np.ones((4, SIZE, SIZE, 1), np.float32)
    args = dict(STRONG, zoom_range=(1.5, 1.5), width_shift_range=0.2, fill_mode="constant")
    with pytest.warns(UserWarning, match="invented label"):
        ds = get_augmented(ones, ones, batch_size=4, data_gen_args=args)
    images, masks = first_batch(ds)
    # Zoomed out by 1.5 a constant fill would leave zeros at the border; reflect leaves none.
    np.testing.assert_allclose(images, 1.0, atol=1e-5)
    np.testing.assert_array_equal(masks, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        get_augmented(ones, ones, data_gen_args=dict(args, fill_mode="reflect"))


@pytest.mark.parametrize(
    "args, match",
    [
        (dict(brightness_range=(0.5, 1.5)), "brightness_range.*Supported keys.*rotation_range"),
        (dict(fill_mode="mirror"), "fill_mode"),
        (dict(zoom_range=(1.2, 0.8)), "zoom_range"),
        (dict(width_shift_range=5), "fraction"),
    ],
)
def test_bad_data_gen_args_raise(blobs, args, match):
    x, y = blobs
    with pytest.raises(ValueError, match=match):
        get_augmented(x, y, data_gen_args=args)


def test_bad_shapes_raise(blobs):
    x, y = blobs
    with pytest.raises(ValueError, match="4-D"):
        get_augmented(x[..., 0], y)
    with pytest.raises(ValueError, match="same N, H, W"):
        get_augmented(x, y[:, :16])
    with pytest.raises(ValueError, match="same N, H, W"):
        get_augmented(x, y[:4])


def test_crop_size_shapes_and_too_large(blobs):
    x, y = blobs
    images, masks = first_batch(get_augmented(x, y, batch_size=4, crop_size=16))
    assert images.shape == (4, 16, 16, 1) and masks.shape == (4, 16, 16, 1)
    # the same window for image and mask: without transforms the mask is the thresholded image
    ds = get_augmented(x, y, batch_size=4, crop_size=(8, 24), data_gen_args=NO_AUGMENTATION)
    images, masks = first_batch(ds)
    assert images.shape == (4, 8, 24, 1)
    np.testing.assert_array_equal(masks, (images > 0.5).astype(np.float32))
    with pytest.raises(ValueError, match=r"\(64, 64\).*\(32, 32\)"):
        get_augmented(x, y, crop_size=64)


def test_model_fit_runs_two_steps(blobs):
    x, y = blobs
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 1)),
            keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    history = model.fit(get_augmented(x, y, batch_size=4), steps_per_epoch=2, epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_auto_chooses_tf_data_only_where_tensorflow_is_installed(blobs, monkeypatch):
    import importlib.util

    x, y = blobs
    expected = "_PrefetchDataset" if env.has_tensorflow() else "AugmentedBatches"
    assert type(augment.get_augmented(x, y, batch_size=2)).__name__ == expected
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorflow" else real(name, *a))
    assert isinstance(augment.get_augmented(x, y, batch_size=2), augment_numpy.AugmentedBatches)
    with pytest.raises(ValueError, match="pipeline='torch'"):
        augment.get_augmented(x, y, pipeline="torch")


def test_numpy_pipeline_matches_the_tf_transform(blobs):
    """The NumPy matrices and warp reproduce TensorFlow's projective transform of the same matrices."""
    tf = pytest.importorskip("tensorflow", reason="needs TensorFlow, which Colab's TPU runtime (CI's tpu stack) lacks")
    x, _ = blobs
    args = augment._parse_args(STRONG)
    matrices = augment_numpy.random_matrices(np.random.default_rng(1), N, SIZE, SIZE, args)
    ours = augment_numpy.warp_numpy(x, matrices, 1, "reflect")
    theirs = augment._warp(tf.constant(x), tf.constant(matrices, tf.float32), "BILINEAR", "reflect").numpy()
    inner = (slice(None), slice(2, -2), slice(2, -2))  # borders: the two pad one half-pixel differently
    assert np.abs(ours[inner] - theirs[inner]).mean() < 1e-3


def test_numpy_batches_are_a_function_of_seed_and_index(blobs):
    x, y = blobs
    batches = augment_numpy.AugmentedBatches(x, y, 3, augment._parse_args(STRONG), seed=5, crop=(16, 16))
    again = augment_numpy.AugmentedBatches(x, y, 3, augment._parse_args(STRONG), seed=5, crop=(16, 16))
    for index in (4, 0, 2):  # any order, as worker threads make them
        np.testing.assert_array_equal(batches[index][0], again[index][0])
    one_pass = augment_numpy.AugmentedBatches(x, y, 3, augment._parse_args(NO_AUGMENTATION), seed=0, repeat=False)
    assert len(one_pass) == 3 and sum(len(b[0]) for b in one_pass) == N
    with pytest.raises(IndexError):
        one_pass[3]


def test_elastic_deformation_keeps_masks_binary_and_aligned(blobs):
    x, y = blobs
    images, masks = first_batch(get_augmented(x, y, batch_size=N, data_gen_args={**NO_AUGMENTATION, **augment.ELASTIC}))
    assert set(np.unique(masks)) == {0.0, 1.0}
    order = [int(np.argmin(np.abs(x - image).sum(axis=(1, 2, 3)))) for image in images]
    assert not np.allclose(images, x[order])  # deformed ...
    assert np.mean((images > 0.5) == (masks > 0.5)) > 0.97  # ... image and mask alike


def test_elastic_fields_are_smooth_and_sized_by_std():
    fields = augment_numpy.elastic_fields(np.random.default_rng(0), 64, 48, 48, std=10.0)
    assert fields.shape == (64, 48, 48, 2)
    assert 8.0 < fields[:, 0, 0].std() < 12.0  # the lattice corners carry the drawn displacements
    assert np.abs(np.diff(fields, axis=1)).max() < 3.0  # neighbouring pixels move almost alike


def test_dense_warp_without_displacement_is_the_affine_warp(blobs):
    """The elastic path's resampling reproduces each pipeline's affine one when the field is zero."""
    x, _ = blobs
    args = augment._parse_args(STRONG)
    matrices = augment_numpy.random_matrices(np.random.default_rng(2), N, SIZE, SIZE, args)
    zero = np.zeros((N, SIZE, SIZE, 2), np.float32)
    for order in (0, 1):
        np.testing.assert_allclose(augment_numpy.warp_numpy(x, matrices, order, "reflect", zero),
                                   augment_numpy.warp_numpy(x, matrices, order, "reflect"), atol=1e-5)
    if env.has_tensorflow():
        import tensorflow as tf

        images, m = tf.constant(x), tf.constant(matrices, tf.float32)
        for mode in ("reflect", "nearest"):  # TF's own "wrap" kernel treats the seam its own way
            dense = augment._warp(images, m, "BILINEAR", mode, tf.constant(zero)).numpy()
            projective = augment._warp(images, m, "BILINEAR", mode).numpy()
            assert np.abs(dense - projective).max() < 1e-4, mode


@pytest.mark.parametrize("args, match", [(dict(elastic_std=-1), "elastic_std"), (dict(elastic_grid=1), "elastic_grid")])
def test_bad_elastic_args_raise(blobs, args, match):
    x, y = blobs
    with pytest.raises(ValueError, match=match):
        get_augmented(x, y, data_gen_args=args)
