"""Joint image/mask augmentation as a ``tf.data`` pipeline (or, without TensorFlow, a NumPy one).

``get_augmented`` replaces the workshop's ``ImageDataGenerator`` pair (one generator for
images, one for masks, zipped together). It accepts the same ``data_gen_args`` keys, returns a
``tf.data.Dataset`` that ``model.fit`` accepts under Keras 3, and runs entirely in the TensorFlow
graph, in parallel with training. Where TensorFlow is not installed (Colab's TPU runtimes: Keras
on JAX), it returns a ``keras.utils.PyDataset`` that makes the same kind of batches with NumPy and
SciPy in worker threads: the same transforms, padding and nearest-neighbour masks.

How one batch is made:

1. (optional) a random ``crop_size`` tile is cut from each full-resolution image/mask pair,
   the same window for both;
2. images are batched;
3. one random 3x3 transform per image is built from rotation, shear, zoom, shift and flips,
   all composed about the image centre;
4. the transforms are applied with ``tf.raw_ops.ImageProjectiveTransformV3``: bilinear for the
   images, nearest-neighbour with the *same* transforms for the masks, so masks stay exactly
   binary and line up pixel for pixel with their images;
5. (optional, ``elastic_std`` > 0) the U-Net paper's elastic deformation: a smooth random
   displacement field (Gaussian displacements on a coarse grid, interpolated bicubically) moves
   every output pixel before the transform; image and mask are resampled once, through the same
   field, the mask nearest-neighbour (:data:`ELASTIC` holds the paper's values).

Only TensorFlow ops are used (no Keras preprocessing layers: before Keras 3.14 they resample
masks bilinearly), so the behaviour is identical on Keras 3.10 and newer.

Padding policy
--------------
Rotating, shearing, zooming out or shifting an image brings in pixels from outside it. Those
pixels must not invent labels: a black border labelled "cell" (or "membrane") teaches the model
something false about the EM data. Image and mask are therefore padded the same way, with
``fill_mode="reflect"`` (default), ``"wrap"`` or ``"nearest"``, so each padded mask pixel carries
the true label of the image content that was mirrored (wrapped, repeated) into it.
``fill_mode="constant"`` (the keras-unet README's choice) is accepted for compatibility but
replaced by ``"reflect"`` with a warning.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Mapping

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # TensorFlow is imported only where the tf.data pipeline is used
    import tensorflow as tf

#: The original workshop's ``data_gen_args`` (notebook 1 and the benchmarks' "original" recipe), with
#: reflect padding instead of its black ``constant`` fill (see "Padding policy" above). The one
#: definition of these values: notebooks, slides, benchmarks and tests use it.
ORIGINAL_ARGS: dict[str, Any] = dict(
    rotation_range=15.0,
    width_shift_range=0.05,
    height_shift_range=0.05,
    shear_range=50.0,
    zoom_range=0.2,
    horizontal_flip=True,
    vertical_flip=True,
    fill_mode="reflect",
)

#: Moderate augmentation used when ``data_gen_args`` is None (small rotations, shifts, shears and
#: zooms, both flips); notebook 2 trains with it. Notebook 1 passes the original's stronger values,
#: :data:`ORIGINAL_ARGS` (rotation 15°, shifts 0.05, shear 50°, zoom 0.2).
DEFAULT_ARGS: dict[str, Any] = dict(
    rotation_range=10.0,
    width_shift_range=0.02,
    height_shift_range=0.02,
    shear_range=5.0,
    zoom_range=0.3,
    horizontal_flip=True,
    vertical_flip=True,
    fill_mode="reflect",
)

#: Everything off: ``get_augmented(..., data_gen_args=NO_AUGMENTATION)`` only batches.
NO_AUGMENTATION: dict[str, Any] = dict(
    rotation_range=0.0,
    width_shift_range=0.0,
    height_shift_range=0.0,
    shear_range=0.0,
    zoom_range=0.0,
    horizontal_flip=False,
    vertical_flip=False,
    fill_mode="reflect",
    elastic_std=0.0,
    elastic_grid=3,
)

#: The U-Net paper's elastic deformation (Ronneberger et al. 2015, section 3.1): random displacement
#: vectors on a coarse 3 x 3 grid, drawn from a Gaussian with 10 pixels standard deviation,
#: interpolated smoothly (bicubic) to every pixel. Add it to any ``data_gen_args``:
#: ``{**augment.DEFAULT_ARGS, **augment.ELASTIC}``. The grid spans each image of the batch: with
#: ``crop_size`` that is the tile, so for tiles a quarter of the slice's side scale ``elastic_std`` by 1/4.
ELASTIC: dict[str, Any] = dict(elastic_std=10.0, elastic_grid=3)

FILL_MODES = ("reflect", "wrap", "nearest")


def _parse_args(data_gen_args: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check ``data_gen_args`` and return a complete, normalised copy."""
    if data_gen_args is None:
        data_gen_args = DEFAULT_ARGS
    unknown = sorted(set(data_gen_args) - set(NO_AUGMENTATION))
    if unknown:
        raise ValueError(
            f"Unsupported data_gen_args key(s) {unknown}. Supported keys: "
            f"{sorted(NO_AUGMENTATION)}."
        )
    # Keys not given are switched off, as with ImageDataGenerator.
    args = {**NO_AUGMENTATION, **data_gen_args}

    for key in ("rotation_range", "shear_range"):
        if float(args[key]) < 0:
            raise ValueError(f"{key} must be >= 0 degrees, got {args[key]!r}.")
        args[key] = float(args[key])
    for key in ("width_shift_range", "height_shift_range"):
        if not 0 <= float(args[key]) < 1:
            raise ValueError(
                f"{key} must be a fraction of the image size in [0, 1), e.g. 0.02 for 2%; "
                f"got {args[key]!r}."
            )
        args[key] = float(args[key])

    if float(args["elastic_std"]) < 0:
        raise ValueError(f"elastic_std must be >= 0 pixels (0 = off), got {args['elastic_std']!r}.")
    args["elastic_std"] = float(args["elastic_std"])
    if int(args["elastic_grid"]) < 2:
        raise ValueError(f"elastic_grid must be >= 2 (points per side of the coarse grid), got {args['elastic_grid']!r}.")
    args["elastic_grid"] = int(args["elastic_grid"])

    zoom = args["zoom_range"]
    if np.isscalar(zoom):
        zoom = (1.0 - float(zoom), 1.0 + float(zoom))
    if len(zoom) != 2 or not 0 < float(zoom[0]) <= float(zoom[1]):
        raise ValueError(
            f"zoom_range must be a float z (meaning [1-z, 1+z], z < 1) or a pair "
            f"(low, high) with 0 < low <= high; got {args['zoom_range']!r}."
        )
    args["zoom_range"] = (float(zoom[0]), float(zoom[1]))

    fill_mode = str(args["fill_mode"]).lower()
    if fill_mode == "constant":
        warnings.warn(
            "fill_mode='constant' would pad images with black and masks with 0, i.e. label the "
            "padding as cell interior although no cell is there (an invented label). Using "
            "fill_mode='reflect' instead, which mirrors real image content and its true labels.",
            UserWarning,
            stacklevel=3,
        )
        fill_mode = "reflect"
    if fill_mode not in FILL_MODES:
        raise ValueError(
            f"fill_mode must be one of {FILL_MODES} (or 'constant', replaced by 'reflect'); "
            f"got {args['fill_mode']!r}."
        )
    args["fill_mode"] = fill_mode
    return args


def _as_nhwc(array: Any, name: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    if array.ndim != 4:
        raise ValueError(
            f"{name} must be 4-D (N, H, W, C); got shape {array.shape}. "
            f"Add a channel axis with {name}[..., None] for grey images or masks."
        )
    return array


def _random_transforms(
    seed: tf.Tensor, batch: tf.Tensor, height: tf.Tensor, width: tf.Tensor, args: dict[str, Any]
) -> tf.Tensor:
    """One random projective transform per image, as the (batch, 8) rows TF expects.

    Each 3x3 matrix maps an *output* pixel (x = column, y = row) to the input pixel it is read
    from. It is ``centre @ rotation @ shift @ shear @ zoom @ flip @ centre^-1``, the order
    ImageDataGenerator uses (flips last on the output).
    """
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, num=8)

    def uniform(i: int, low: float, high: float) -> tf.Tensor:
        return tf.random.stateless_uniform([batch], seeds[i], low, high)

    def sign(i: int, enabled: bool) -> tf.Tensor:
        """-1 (flip) or +1 with probability 1/2 each when enabled, else always +1."""
        if not enabled:
            return tf.ones([batch])
        return tf.where(uniform(i, 0.0, 1.0) < 0.5, -1.0, 1.0)

    deg = math.pi / 180.0
    width_f, height_f = tf.cast(width, tf.float32), tf.cast(height, tf.float32)
    theta = uniform(0, -args["rotation_range"], args["rotation_range"]) * deg
    shear = uniform(1, -args["shear_range"], args["shear_range"]) * deg
    zoom_x = uniform(2, *args["zoom_range"])  # independent per axis, as ImageDataGenerator
    zoom_y = uniform(3, *args["zoom_range"])
    shift_x = uniform(4, -args["width_shift_range"], args["width_shift_range"]) * width_f
    shift_y = uniform(5, -args["height_shift_range"], args["height_shift_range"]) * height_f
    flip_x = sign(6, args["horizontal_flip"])
    flip_y = sign(7, args["vertical_flip"])

    zeros, ones = tf.zeros([batch]), tf.ones([batch])

    def matrices(rows: list[list[tf.Tensor]]) -> tf.Tensor:
        """Stack a 3x3 nested list of (batch,) tensors into (batch, 3, 3)."""
        return tf.stack([tf.stack(row, axis=-1) for row in rows], axis=-2)

    cos, sin = tf.cos(theta), tf.sin(theta)
    rotation = matrices([[cos, -sin, zeros], [sin, cos, zeros], [zeros, zeros, ones]])
    shift = matrices([[ones, zeros, shift_x], [zeros, ones, shift_y], [zeros, zeros, ones]])
    # ImageDataGenerator's shear [[1, -sin s], [0, cos s]] in (row, column) order, here in (x, y).
    shear_m = matrices(
        [[tf.cos(shear), zeros, zeros], [-tf.sin(shear), ones, zeros], [zeros, zeros, ones]]
    )
    zoom = matrices([[zoom_x, zeros, zeros], [zeros, zoom_y, zeros], [zeros, zeros, ones]])
    flip = matrices([[flip_x, zeros, zeros], [zeros, flip_y, zeros], [zeros, zeros, ones]])

    # Centre of the pixel grid: flips about it map column x exactly onto width - 1 - x.
    cx, cy = (width_f - 1.0) / 2.0, (height_f - 1.0) / 2.0
    to_centre = tf.reshape(tf.stack([1.0, 0.0, -cx, 0.0, 1.0, -cy, 0.0, 0.0, 1.0]), [3, 3])
    from_centre = tf.reshape(tf.stack([1.0, 0.0, cx, 0.0, 1.0, cy, 0.0, 0.0, 1.0]), [3, 3])
    m = from_centre @ rotation @ shift @ shear_m @ zoom @ flip @ to_centre
    return tf.reshape(m, [batch, 9])[:, :8]


def _warp(
    images: tf.Tensor, transforms: tf.Tensor, interpolation: str, fill_mode: str
) -> tf.Tensor:
    """Resample a batch: output pixel p is read from input point transforms[i] @ p."""
    import tensorflow as tf

    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation=interpolation,
        fill_mode=fill_mode.upper(),
    )


# ---------------------------------------------------------------------------------------------
# The NumPy pipeline (no TensorFlow): same transforms, made on the CPU in worker threads

#: scipy.ndimage's names for TensorFlow's fill modes (TF "reflect" repeats the edge pixel, as
#: scipy's "reflect" does; TF "wrap" is scipy's "grid-wrap").
_SCIPY_MODES = {"reflect": "reflect", "wrap": "grid-wrap", "nearest": "nearest"}


def random_matrices(rng: np.random.Generator, batch: int, height: int, width: int,
                    args: dict[str, Any]) -> np.ndarray:
    """One random 3x3 transform per image in (x = column, y = row) coordinates, NumPy version.

    The same composition as the tf.data pipeline, ``centre @ rotation @ shift @ shear @ zoom @
    flip @ centre^-1``, mapping an output pixel to the input point it is read from.

    Examples
    --------
    >>> m = random_matrices(np.random.default_rng(0), 2, 8, 8, _parse_args(NO_AUGMENTATION))
    >>> np.allclose(m, np.eye(3))
    True
    """
    def uniform(low: float, high: float) -> np.ndarray:
        return rng.uniform(low, high, batch)

    def sign(enabled: bool) -> np.ndarray:
        return np.where(uniform(0.0, 1.0) < 0.5, -1.0, 1.0) if enabled else np.ones(batch)

    deg = math.pi / 180.0
    theta = uniform(-args["rotation_range"], args["rotation_range"]) * deg
    shear = uniform(-args["shear_range"], args["shear_range"]) * deg
    zoom_x, zoom_y = uniform(*args["zoom_range"]), uniform(*args["zoom_range"])
    shift_x = uniform(-args["width_shift_range"], args["width_shift_range"]) * width
    shift_y = uniform(-args["height_shift_range"], args["height_shift_range"]) * height
    flip_x, flip_y = sign(args["horizontal_flip"]), sign(args["vertical_flip"])
    zeros, ones = np.zeros(batch), np.ones(batch)

    def matrices(rows: list[list[np.ndarray]]) -> np.ndarray:
        return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)

    cos, sin = np.cos(theta), np.sin(theta)
    rotation = matrices([[cos, -sin, zeros], [sin, cos, zeros], [zeros, zeros, ones]])
    shift = matrices([[ones, zeros, shift_x], [zeros, ones, shift_y], [zeros, zeros, ones]])
    shear_m = matrices([[np.cos(shear), zeros, zeros], [-np.sin(shear), ones, zeros], [zeros, zeros, ones]])
    zoom = matrices([[zoom_x, zeros, zeros], [zeros, zoom_y, zeros], [zeros, zeros, ones]])
    flip = matrices([[flip_x, zeros, zeros], [zeros, flip_y, zeros], [zeros, zeros, ones]])
    cx, cy = (width - 1.0) / 2.0, (height - 1.0) / 2.0
    to_centre = np.array([[1.0, 0.0, -cx], [0.0, 1.0, -cy], [0.0, 0.0, 1.0]])
    from_centre = np.array([[1.0, 0.0, cx], [0.0, 1.0, cy], [0.0, 0.0, 1.0]])
    return from_centre @ rotation @ shift @ shear_m @ zoom @ flip @ to_centre


def elastic_fields(rng: np.random.Generator, batch: int, height: int, width: int, std: float,
                   grid: int = 3) -> np.ndarray:
    """Smooth random displacement fields ``(batch, H, W, 2)`` in pixels, (dx, dy) per pixel.

    Displacements are drawn on a coarse ``grid x grid`` lattice spanning the image, from a
    Gaussian with standard deviation ``std`` pixels, and interpolated to every pixel with cubic
    splines: the U-Net paper's elastic deformation.

    Examples
    --------
    >>> fields = elastic_fields(np.random.default_rng(0), 2, 32, 48, std=10.0)
    >>> fields.shape
    (2, 32, 48, 2)
    """
    from scipy import ndimage

    coarse = rng.normal(0.0, std, (batch, grid, grid, 2))
    rows = np.linspace(0, grid - 1, height)[:, None].repeat(width, 1)
    cols = np.linspace(0, grid - 1, width)[None, :].repeat(height, 0)
    return np.stack([np.stack([ndimage.map_coordinates(c[..., k], [rows, cols], order=3, mode="nearest")
                               for k in range(2)], axis=-1) for c in coarse]).astype(np.float32)


def warp_numpy(images: np.ndarray, matrices: np.ndarray, order: int, fill_mode: str,
               fields: np.ndarray | None = None) -> np.ndarray:
    """Resample (B, H, W, C) images: output pixel p is read from input point ``matrices[i] @ p``.

    ``order=1`` is bilinear (images), ``order=0`` nearest-neighbour (masks). With ``fields``
    (from :func:`elastic_fields`) the point is ``matrices[i] @ (p + fields[i][p])``: the elastic
    deformation and the affine transform in one resampling.
    """
    from scipy import ndimage

    if fields is not None:
        height, width = images.shape[1:3]
        rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
        out = np.empty_like(images)
        for i, m in enumerate(matrices):
            x, y = cols + fields[i, ..., 0], rows + fields[i, ..., 1]
            x_in = m[0, 0] * x + m[0, 1] * y + m[0, 2]
            y_in = m[1, 0] * x + m[1, 1] * y + m[1, 2]
            for c in range(images.shape[-1]):
                out[i, ..., c] = ndimage.map_coordinates(images[i, ..., c], [y_in, x_in], order=order,
                                                         mode=_SCIPY_MODES[fill_mode], prefilter=False)
        return out
    swap = np.array([[0.0, 1.0], [1.0, 0.0]])  # (x, y) <-> (row, column)
    out = np.empty_like(images)
    for i, m in enumerate(matrices):
        linear = swap @ m[:2, :2] @ swap
        offset = swap @ m[:2, 2]
        for c in range(images.shape[-1]):
            ndimage.affine_transform(images[i, ..., c], linear, offset=offset, order=order,
                                     mode=_SCIPY_MODES[fill_mode], output=out[i, ..., c], prefilter=False)
    return out


def _pydataset_base():
    import keras

    return keras.utils.PyDataset


class AugmentedBatches(_pydataset_base()):
    """``(images, masks)`` batches made with NumPy/SciPy: :func:`get_augmented` without TensorFlow.

    Batch ``i`` depends only on ``seed`` and ``i`` (shuffled order, crops, transforms), so worker
    threads may make batches in any order and the same seed gives the same batches.

    Examples
    --------
    >>> x = np.random.rand(8, 32, 32, 1).astype("float32")
    >>> batches = AugmentedBatches(x, (x > 0.5).astype("float32"), 4, _parse_args(None), seed=0)
    >>> batches[0][0].shape
    (4, 32, 32, 1)
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, args: dict[str, Any],
                 seed: int = 0, crop: tuple[int, int] | None = None, shuffle: bool = True,
                 repeat: bool = True, workers: int | None = None, weights: bool = False):
        import os

        super().__init__(workers=workers or min(8, os.cpu_count() or 1), use_multiprocessing=False,
                         max_queue_size=16)
        self.x, self.y, self.batch_size, self.args = x, y, batch_size, args
        self.seed, self.crop, self.shuffle, self.repeat = seed, crop, shuffle, repeat
        self.weights = weights  # y's last channel is a weight map: yield (x, y, w)

    @property
    def num_batches(self) -> int | None:
        """None (endless) when repeating, else one pass over the images."""
        return None if self.repeat else math.ceil(len(self.x) / self.batch_size)

    def __len__(self) -> int:
        return self.num_batches or 2**62

    def _order(self, epoch: int) -> np.ndarray:
        n = len(self.x)
        return np.random.default_rng([self.seed, 1, epoch]).permutation(n) if self.shuffle else np.arange(n)

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
        images, masks = self._pair(index)
        return (images, masks[..., :-1], masks[..., -1]) if self.weights else (images, masks)

    def _pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        n, b = len(self.x), self.batch_size
        if not self.repeat and not 0 <= index < self.num_batches:
            raise IndexError(index)
        positions = range(index * b, min((index + 1) * b, n if not self.repeat else (index + 1) * b))
        orders = {epoch: self._order(epoch) for epoch in {p // n for p in positions}}  # one shuffle per epoch
        picks = np.array([orders[p // n][p % n] for p in positions])
        rng = np.random.default_rng([self.seed, 2, index])
        images, masks = self.x[picks], self.y[picks]
        if self.crop is not None:
            (ch, cw), (h, w) = self.crop, images.shape[1:3]
            tops, lefts = rng.integers(0, h - ch + 1, len(picks)), rng.integers(0, w - cw + 1, len(picks))
            images = np.stack([im[t:t + ch, l:l + cw] for im, t, l in zip(images, tops, lefts)])
            masks = np.stack([m[t:t + ch, l:l + cw] for m, t, l in zip(masks, tops, lefts)])
        matrices = random_matrices(rng, len(picks), images.shape[1], images.shape[2], self.args)
        fields = None
        if self.args["elastic_std"] > 0:
            fields = elastic_fields(rng, len(picks), images.shape[1], images.shape[2], self.args["elastic_std"],
                                    self.args["elastic_grid"])
        elif np.allclose(matrices, np.eye(3)):
            return np.ascontiguousarray(images), np.ascontiguousarray(masks)
        return (warp_numpy(images, matrices, 1, self.args["fill_mode"], fields),
                warp_numpy(masks, matrices, 0, self.args["fill_mode"], fields))

    def __iter__(self):
        index = 0
        while self.num_batches is None or index < self.num_batches:
            yield self[index]
            index += 1


def _fill_index(index: tf.Tensor, size: tf.Tensor, fill_mode: str) -> tf.Tensor:
    """Map integer pixel indices outside [0, size) inside, the way ``fill_mode`` pads (as TF does)."""
    import tensorflow as tf

    if fill_mode == "nearest":
        return tf.clip_by_value(index, 0, size - 1)
    if fill_mode == "wrap":
        return tf.math.floormod(index, size)
    period = tf.math.floormod(index, 2 * size)  # reflect: d c b a | a b c d | d c b a
    return tf.where(period >= size, 2 * size - 1 - period, period)


def _warp_dense(images: tf.Tensor, matrices: tf.Tensor, fields: tf.Tensor, interpolation: str,
                fill_mode: str) -> tf.Tensor:
    """Resample a batch: output pixel p is read from input point ``matrices[i] @ (p + fields[i][p])``."""
    import tensorflow as tf

    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    rows, cols = tf.meshgrid(tf.range(height, dtype=tf.float32), tf.range(width, dtype=tf.float32), indexing="ij")
    x = cols[None] + fields[..., 0]
    y = rows[None] + fields[..., 1]
    m = matrices[:, None, None]
    x_in = m[..., 0, 0] * x + m[..., 0, 1] * y + m[..., 0, 2]
    y_in = m[..., 1, 0] * x + m[..., 1, 1] * y + m[..., 1, 2]
    index = tf.broadcast_to(tf.range(batch)[:, None, None], tf.shape(x_in))

    def gather(yy: tf.Tensor, xx: tf.Tensor) -> tf.Tensor:
        yy = _fill_index(tf.cast(yy, tf.int32), height, fill_mode)
        xx = _fill_index(tf.cast(xx, tf.int32), width, fill_mode)
        return tf.gather_nd(images, tf.stack([index, yy, xx], axis=-1))

    if interpolation == "NEAREST":
        return gather(tf.round(y_in), tf.round(x_in))
    x0, y0 = tf.floor(x_in), tf.floor(y_in)
    wx, wy = (x_in - x0)[..., None], (y_in - y0)[..., None]
    top = gather(y0, x0) * (1 - wx) + gather(y0, x0 + 1) * wx
    bottom = gather(y0 + 1, x0) * (1 - wx) + gather(y0 + 1, x0 + 1) * wx
    return top * (1 - wy) + bottom * wy


def _plain_tf(function):
    """Trace ``function`` as written: it has no Python control flow on tensors, so AutoGraph's source
    rewriting is not needed (it costs tracing time and, on Python 3.13, DeprecationWarnings from gast)."""
    import tensorflow as tf

    return tf.autograph.experimental.do_not_convert(function)


def get_augmented(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int = 32,
    data_gen_args: Mapping[str, Any] | None = None,
    seed: int = 0,
    crop_size: int | tuple[int, int] | None = None,
    shuffle: bool = True,
    repeat: bool = True,
    pipeline: str = "auto",
    weights: np.ndarray | None = None,
) -> tf.data.Dataset | AugmentedBatches:
    """Randomly transformed (image, mask) batches for ``model.fit``, made in the tf.data graph.

    Each image and its mask receive the same random rotation, shear, zoom, shift and flips.
    Images are resampled bilinearly, masks nearest-neighbour, so masks stay exactly binary.

    Padding policy: the area a transform brings in from outside the image is filled by
    ``fill_mode`` in image and mask alike -- ``"reflect"`` (default), ``"wrap"`` or
    ``"nearest"`` -- so padded mask pixels carry the true label of the mirrored content and no
    membrane or cell is invented. ``"constant"`` (keras-unet's README) would label a black border
    as cell; it is replaced by ``"reflect"`` with a ``UserWarning``.

    Parameters
    ----------
    x : np.ndarray
        Images, (N, H, W, C), cast to float32 (expected in [0, 1]).
    y : np.ndarray
        Masks, (N, H, W, C_mask) with the same N, H, W; cast to float32 ({0, 1}, 1 = membrane).
    batch_size : int
        Images per batch.
    data_gen_args : mapping, optional
        ImageDataGenerator / keras-unet keys: ``rotation_range`` (degrees),
        ``width_shift_range`` and ``height_shift_range`` (fractions of the size),
        ``shear_range`` (degrees), ``zoom_range`` (z for [1-z, 1+z], or a pair (low, high);
        drawn independently for x and y), ``horizontal_flip``, ``vertical_flip``,
        ``fill_mode``; ``elastic_std`` (pixels, 0 = off) and ``elastic_grid`` (coarse grid points
        per side) for the elastic deformation (:data:`ELASTIC`). Keys left out are off. None
        gives moderate defaults
        (:data:`DEFAULT_ARGS`); :data:`NO_AUGMENTATION` switches everything off.
    seed : int
        Seed for shuffling, crops and transforms. The same seed gives the same batches.
    crop_size : int or (int, int), optional
        If given, a random (height, width) tile is cut from each full-resolution pair before
        batching (the same window for image and mask).
    shuffle : bool
        Shuffle the images (again each epoch).
    repeat : bool
        Repeat forever; then pass ``steps_per_epoch`` to ``model.fit``. With ``repeat=True``
        every batch is full; with ``repeat=False`` one pass is made and the last batch may be
        smaller.
    pipeline : {"auto", "tf.data", "numpy"}
        ``"auto"``: tf.data where TensorFlow is installed, else the NumPy pipeline
        (:class:`AugmentedBatches`, e.g. on a Colab TPU runtime).
    weights : np.ndarray, optional
        Per-pixel weight maps, (N, H, W) or (N, H, W, 1), e.g. :func:`helpers.weights.weight_maps`.
        They are cropped and warped with the masks (nearest-neighbour, so each weight stays on
        its pixel) and come out as a third element, the ``sample_weight`` of a loss such as
        :class:`helpers.losses.WeightedBCE`.

    Returns
    -------
    tf.data.Dataset or AugmentedBatches
        Elements ``(images, masks)``, float32, shapes (B, H, W, C) and (B, H, W, C_mask)
        (H, W = ``crop_size`` when given); with ``weights``, ``(images, masks, weights)``,
        the weights (B, H, W). Both are iterable (``next(iter(ds))``) and accepted by
        ``model.fit``; ``np.asarray`` turns a batch into NumPy arrays.

    Raises
    ------
    ValueError
        For unknown ``data_gen_args`` keys, invalid values or ``fill_mode``, arrays that are not
        4-D or disagree in N, H, W, or a ``crop_size`` larger than the images.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.rand(8, 64, 64, 1).astype("float32")
    >>> y = (x > 0.5).astype("float32")
    >>> ds = get_augmented(x, y, batch_size=4, crop_size=32)
    >>> images, masks = next(iter(ds))
    >>> tuple(images.shape), tuple(masks.shape)
    ((4, 32, 32, 1), (4, 32, 32, 1))
    >>> # model.fit(ds, steps_per_epoch=50, epochs=10)
    """
    args = _parse_args(data_gen_args)
    x = _as_nhwc(x, "x")
    y = _as_nhwc(y, "y")
    if x.shape[:3] != y.shape[:3]:
        raise ValueError(
            f"x and y must have the same N, H, W; got x {x.shape} and y {y.shape}. "
            "Pass one mask per image, at the image's size."
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    if weights is not None:  # carried as the masks' last channel, split off at the end
        weights = np.asarray(weights, dtype=np.float32)
        weights = weights[..., None] if weights.ndim == 3 else weights
        if weights.shape != (*y.shape[:3], 1):
            raise ValueError(f"weights must be (N, H, W) like the masks {y.shape[:3]}, got {weights.shape}; "
                             "make them with helpers.weights.weight_maps(masks).")
        y = np.concatenate([y, weights], axis=-1)
    n, height, width, channels = x.shape
    if crop_size is not None:
        crop_h, crop_w = (crop_size, crop_size) if np.isscalar(crop_size) else crop_size
        crop_h, crop_w = int(crop_h), int(crop_w)
        if not (0 < crop_h <= height and 0 < crop_w <= width):
            raise ValueError(
                f"crop_size {(crop_h, crop_w)} does not fit in the images of size "
                f"{(height, width)} (height, width); choose a crop of at most that size."
            )
    if pipeline not in ("auto", "tf.data", "numpy"):
        raise ValueError(f"pipeline={pipeline!r}: use 'auto', 'tf.data' or 'numpy'.")
    if pipeline == "auto":
        import importlib.util

        pipeline = "tf.data" if importlib.util.find_spec("tensorflow") else "numpy"
    if pipeline == "numpy":
        crop = (crop_h, crop_w) if crop_size is not None else None
        return AugmentedBatches(x, y, batch_size, args, seed=seed, crop=crop, shuffle=shuffle, repeat=repeat,
                                weights=weights is not None)
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()

    base_seed = tf.constant([seed, 0], dtype=tf.int64)
    if crop_size is not None:
        crop_seed = tf.random.experimental.stateless_fold_in(base_seed, 1)

        def crop(i: tf.Tensor, pair: tuple[tf.Tensor, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
            pair = tf.concat(pair, axis=-1)  # image and mask stacked: one window for both
            pair = tf.image.stateless_random_crop(
                pair,
                [crop_h, crop_w, pair.shape[-1]],
                seed=tf.random.experimental.stateless_fold_in(crop_seed, i),
            )
            return pair[..., :channels], pair[..., channels:]

        ds = ds.enumerate().map(_plain_tf(crop), num_parallel_calls=tf.data.AUTOTUNE)

    ds = ds.batch(batch_size, drop_remainder=repeat)

    transform_seed = tf.random.experimental.stateless_fold_in(base_seed, 2)
    elastic_seed = tf.random.experimental.stateless_fold_in(base_seed, 3)

    def augment(i: tf.Tensor, batch: tuple[tf.Tensor, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        images, masks = batch
        shape = tf.shape(images)
        transforms = _random_transforms(
            tf.random.experimental.stateless_fold_in(transform_seed, i),
            shape[0], shape[1], shape[2], args,
        )
        if args["elastic_std"] > 0:  # affine and elastic in one resampling
            matrices = tf.reshape(tf.concat([transforms, tf.ones([shape[0], 1])], axis=1), [-1, 3, 3])
            grid = args["elastic_grid"]
            coarse = args["elastic_std"] * tf.random.stateless_normal(
                [shape[0], grid, grid, 2], tf.random.experimental.stateless_fold_in(elastic_seed, i))
            fields = tf.image.resize(coarse, shape[1:3], method="bicubic")
            return (_warp_dense(images, matrices, fields, "BILINEAR", args["fill_mode"]),
                    _warp_dense(masks, matrices, fields, "NEAREST", args["fill_mode"]))
        images = _warp(images, transforms, "BILINEAR", args["fill_mode"])
        masks = _warp(masks, transforms, "NEAREST", args["fill_mode"])
        return images, masks

    ds = ds.enumerate().map(_plain_tf(augment), num_parallel_calls=tf.data.AUTOTUNE)
    if weights is not None:
        ds = ds.map(_plain_tf(lambda images, masks: (images, masks[..., :-1], masks[..., -1])))
    return ds.prefetch(tf.data.AUTOTUNE)
