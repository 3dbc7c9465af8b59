"""Joint image/mask augmentation for ``model.fit``: a ``tf.data`` pipeline, or NumPy without TensorFlow."""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from helpers.augment_numpy import AugmentedBatches, compose_transforms, split_weights, stack_weights

if TYPE_CHECKING:  # TensorFlow is imported only where the tf.data pipeline is used
    import tensorflow as tf

#: The original workshop's ``data_gen_args`` (notebook 1), with reflect padding instead of its black fill.
ORIGINAL_ARGS: dict[str, Any] = dict(rotation_range=15.0, width_shift_range=0.05, height_shift_range=0.05,
                                     shear_range=50.0, zoom_range=0.2, horizontal_flip=True, vertical_flip=True,
                                     fill_mode="reflect")

#: Moderate augmentation, used when ``data_gen_args`` is None (notebook 2).
DEFAULT_ARGS: dict[str, Any] = dict(rotation_range=10.0, width_shift_range=0.02, height_shift_range=0.02,
                                    shear_range=5.0, zoom_range=0.3, horizontal_flip=True, vertical_flip=True,
                                    fill_mode="reflect")

#: Everything off: ``get_augmented(..., data_gen_args=NO_AUGMENTATION)`` only batches.
NO_AUGMENTATION: dict[str, Any] = dict(rotation_range=0.0, width_shift_range=0.0, height_shift_range=0.0,
                                       shear_range=0.0, zoom_range=0.0, horizontal_flip=False, vertical_flip=False,
                                       fill_mode="reflect", elastic_std=0.0, elastic_grid=3)

#: The U-Net paper's elastic deformation: N(0, 10 px) on a 3 x 3 grid per image. ``{**DEFAULT_ARGS, **ELASTIC}``.
ELASTIC: dict[str, Any] = dict(elastic_std=10.0, elastic_grid=3)

_FILL_MODES = ("reflect", "wrap", "nearest")
#: The numbers in data_gen_args: their type, lowest value, the bound they must stay below (None: none) and unit.
_LIMITS = {"rotation_range": (float, 0, None, "degrees"), "shear_range": (float, 0, None, "degrees"),
           "width_shift_range": (float, 0, 1, "a fraction of the image width, e.g. 0.02 for 2%"),
           "height_shift_range": (float, 0, 1, "a fraction of the image height, e.g. 0.02 for 2%"),
           "elastic_std": (float, 0, None, "pixels, 0 = off"), "elastic_grid": (int, 2, None, "points per side")}


def _parse_args(data_gen_args: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check ``data_gen_args`` and return a complete, normalised copy (keys left out are off)."""
    given = DEFAULT_ARGS if data_gen_args is None else data_gen_args
    if unknown := sorted(set(given) - set(NO_AUGMENTATION)):
        raise ValueError(f"Unsupported data_gen_args key(s) {unknown}. Supported keys: {sorted(NO_AUGMENTATION)}.")
    args = {**NO_AUGMENTATION, **given}
    for key, (kind, low, below, unit) in _LIMITS.items():
        if float(args[key]) < low or (below is not None and float(args[key]) >= below):
            bound = f">= {low}" if below is None else f"in [{low}, {below})"
            raise ValueError(f"{key} must be {bound} ({unit}); got {args[key]!r}.")
        args[key] = kind(args[key])
    zoom = args["zoom_range"]
    zoom = (1.0 - float(zoom), 1.0 + float(zoom)) if np.isscalar(zoom) else zoom
    if len(zoom) != 2 or not 0 < float(zoom[0]) <= float(zoom[1]):
        raise ValueError(f"zoom_range must be a float z (meaning [1-z, 1+z], z < 1) or a pair (low, high) with "
                         f"0 < low <= high; got {args['zoom_range']!r}.")
    args["zoom_range"] = (float(zoom[0]), float(zoom[1]))
    fill_mode = str(args["fill_mode"]).lower()
    if fill_mode == "constant":
        warnings.warn("fill_mode='constant' would label the black padding as cell interior (an invented label); "
                      "using 'reflect', which mirrors real content and its labels.", UserWarning, stacklevel=3)
    args["fill_mode"] = "reflect" if fill_mode == "constant" else fill_mode
    if args["fill_mode"] not in _FILL_MODES:
        raise ValueError(f"fill_mode must be one of {_FILL_MODES} (or 'constant', replaced by 'reflect'); "
                         f"got {given['fill_mode']!r}.")
    return args


def _as_nhwc(array: Any, name: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    if array.ndim != 4:
        raise ValueError(f"{name} must be 4-D (N, H, W, C); got shape {array.shape}. "
                         f"Add a channel axis with {name}[..., None] for grey images or masks.")
    return array


def _crop_shape(crop_size: int | tuple[int, int] | None, height: int, width: int) -> tuple[int, int] | None:
    if crop_size is None:
        return None
    crop = tuple(int(v) for v in ((crop_size, crop_size) if np.isscalar(crop_size) else crop_size))
    if not (0 < crop[0] <= height and 0 < crop[1] <= width):
        raise ValueError(f"crop_size {crop} does not fit in the images of size {(height, width)} (height, width); "
                         f"choose a crop of at most that size.")
    return crop


def _fill_index(index: tf.Tensor, size: tf.Tensor, fill_mode: str) -> tf.Tensor:
    """Map integer pixel indices outside [0, size) inside, the way ``fill_mode`` pads (as TF does)."""
    import tensorflow as tf

    if fill_mode == "nearest":
        return tf.clip_by_value(index, 0, size - 1)
    if fill_mode == "wrap":
        return tf.math.floormod(index, size)
    period = tf.math.floormod(index, 2 * size)  # reflect: d c b a | a b c d | d c b a
    return tf.where(period >= size, 2 * size - 1 - period, period)


def _warp(images: tf.Tensor, matrices: tf.Tensor, interpolation: str, fill_mode: str,
          fields: tf.Tensor | None = None) -> tf.Tensor:
    """Resample a batch: output pixel p is read from input point ``matrices[i] @ (p + fields[i][p])``."""
    import tensorflow as tf

    shape = tf.shape(images)
    if fields is None:  # affine only: TensorFlow's own kernel, given the top two rows of each matrix
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=images, transforms=tf.reshape(matrices, [shape[0], 9])[:, :8], output_shape=shape[1:3],
            fill_value=0.0, interpolation=interpolation, fill_mode=fill_mode.upper())
    rows, cols = tf.meshgrid(tf.range(shape[1], dtype=tf.float32), tf.range(shape[2], dtype=tf.float32), indexing="ij")
    x, y, m = cols[None] + fields[..., 0], rows[None] + fields[..., 1], matrices[:, None, None]
    x_in, y_in = (m[..., r, 0] * x + m[..., r, 1] * y + m[..., r, 2] for r in (0, 1))
    index = tf.broadcast_to(tf.range(shape[0])[:, None, None], tf.shape(x_in))

    def gather(yy: tf.Tensor, xx: tf.Tensor) -> tf.Tensor:
        yy = _fill_index(tf.cast(yy, tf.int32), shape[1], fill_mode)
        xx = _fill_index(tf.cast(xx, tf.int32), shape[2], fill_mode)
        return tf.gather_nd(images, tf.stack([index, yy, xx], axis=-1))

    if interpolation == "NEAREST":
        return gather(tf.round(y_in), tf.round(x_in))
    x0, y0 = tf.floor(x_in), tf.floor(y_in)
    wx, wy = (x_in - x0)[..., None], (y_in - y0)[..., None]
    top = gather(y0, x0) * (1 - wx) + gather(y0, x0 + 1) * wx
    bottom = gather(y0 + 1, x0) * (1 - wx) + gather(y0 + 1, x0 + 1) * wx
    return top * (1 - wy) + bottom * wy


def _tf_maps(args: dict[str, Any], seed: int, crop: tuple[int, int] | None, channels: int):
    """The seeded tf.data maps: ``cut`` a random window of pair ``i``, ``augment`` (warp) batch ``i``."""
    import tensorflow as tf

    fold_in = tf.random.experimental.stateless_fold_in
    crop_seed, transform_seed, elastic_seed = (fold_in(tf.constant([seed, 0], dtype=tf.int64), k) for k in (1, 2, 3))

    def cut(i: tf.Tensor, pair: tuple[tf.Tensor, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        stacked = tf.concat(pair, axis=-1)  # image and mask stacked: one window for both
        stacked = tf.image.stateless_random_crop(stacked, [*crop, stacked.shape[-1]], seed=fold_in(crop_seed, i))
        return stacked[..., :channels], stacked[..., channels:]

    def augment(i: tf.Tensor, batch: tuple[tf.Tensor, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        images, masks = batch
        shape, seeds = tf.shape(images), tf.random.experimental.stateless_split(fold_in(transform_seed, i), 8)

        def uniform(k: int, low: float, high: float) -> tf.Tensor:
            return tf.random.stateless_uniform([shape[0]], seeds[k], low, high)

        matrices = compose_transforms(tf, uniform, tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32), args)
        fields, fill = None, args["fill_mode"]
        if args["elastic_std"] > 0:  # affine and elastic in one resampling
            grid = args["elastic_grid"]
            coarse = tf.random.stateless_normal([shape[0], grid, grid, 2], fold_in(elastic_seed, i))
            fields = tf.image.resize(args["elastic_std"] * coarse, shape[1:3], method="bicubic")
        return _warp(images, matrices, "BILINEAR", fill, fields), _warp(masks, matrices, "NEAREST", fill, fields)

    plain = tf.autograph.experimental.do_not_convert  # no AutoGraph: no Python control flow on tensors here
    return plain(cut), plain(augment)


def get_augmented(x: np.ndarray, y: np.ndarray, batch_size: int = 32, data_gen_args: Mapping[str, Any] | None = None,
                  seed: int = 0, crop_size: int | tuple[int, int] | None = None, shuffle: bool = True,
                  repeat: bool = True, pipeline: str = "auto",
                  weights: np.ndarray | None = None) -> tf.data.Dataset | AugmentedBatches:
    """Randomly transformed (image, mask) batches for ``model.fit``: the same transform for both, masks stay binary.

    Parameters
    ----------
    x, y, batch_size
        Images ``(N, H, W, C)`` in [0, 1] and masks ``(N, H, W, C_mask)``, cast to float32; images per batch.
    data_gen_args
        ImageDataGenerator's transform keys and ``elastic_std``, ``elastic_grid`` (all in :data:`NO_AUGMENTATION`);
        keys left out are off; ``None`` gives :data:`DEFAULT_ARGS`.
    seed, crop_size
        The same seed gives the same batches; a random ``(height, width)`` (or square) window cut from each pair.
    shuffle, repeat
        Shuffle every epoch; repeat forever (full batches; pass ``steps_per_epoch`` to fit) or make one pass.
    pipeline, weights
        ``"auto"`` (tf.data where TensorFlow is installed), ``"tf.data"`` or ``"numpy"`` (:class:`AugmentedBatches`);
        weight maps ``(N, H, W)`` (e.g. :func:`helpers.weights.weight_maps`), warped with the masks.

    Returns
    -------
    tf.data.Dataset or AugmentedBatches
        Batches ``(images, masks)`` (with ``weights``: ``(images, masks, weights)``), float32.

    Raises
    ------
    ValueError
        Bad ``data_gen_args``, shapes of ``x``, ``y`` or ``weights``, ``crop_size``, ``batch_size`` or ``pipeline``.

    Examples
    --------
    >>> x = np.random.rand(8, 64, 64, 1).astype("float32")
    >>> images, masks = next(iter(get_augmented(x, x > 0.5, batch_size=4, crop_size=32)))
    >>> tuple(images.shape), tuple(masks.shape)
    ((4, 32, 32, 1), (4, 32, 32, 1))
    """
    args, x, y = _parse_args(data_gen_args), _as_nhwc(x, "x"), _as_nhwc(y, "y")
    if x.shape[:3] != y.shape[:3]:
        raise ValueError(f"x and y must have the same N, H, W; got x {x.shape} and y {y.shape}. "
                         "Pass one mask per image, at the image's size.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    if pipeline not in ("auto", "tf.data", "numpy"):
        raise ValueError(f"pipeline={pipeline!r}: use 'auto', 'tf.data' or 'numpy'.")
    y = y if weights is None else stack_weights(y, weights)  # the masks' last channel until the end
    crop = _crop_shape(crop_size, *x.shape[1:3])
    if pipeline == "numpy" or (pipeline == "auto" and importlib.util.find_spec("tensorflow") is None):
        return AugmentedBatches(x, y, batch_size, args, seed=seed, crop=crop, shuffle=shuffle, repeat=repeat,
                                weights=weights is not None)
    import tensorflow as tf

    cut, augment = _tf_maps(args, seed, crop, x.shape[-1])
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True) if shuffle else ds
    ds = ds.repeat() if repeat else ds
    if crop is not None:
        ds = ds.enumerate().map(cut, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=repeat)
    ds = ds.enumerate().map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    if weights is not None:
        ds = ds.map(tf.autograph.experimental.do_not_convert(split_weights))
    return ds.prefetch(tf.data.AUTOTUNE)
