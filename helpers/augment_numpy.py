"""The NumPy/SciPy augmentation pipeline (no TensorFlow, e.g. Colab's TPU runtimes) and the warps it shares."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

#: scipy.ndimage's names for TensorFlow's fill modes (TF "wrap" is scipy's "grid-wrap").
_SCIPY_MODES = {"reflect": "reflect", "wrap": "grid-wrap", "nearest": "nearest"}


def compose_transforms(xp: Any, uniform: Callable[[int, float, float], Any], height: Any, width: Any,
                       args: dict[str, Any]) -> Any:
    """Random 3x3 transforms ``centre @ rotation @ shift @ shear @ zoom @ flip @ centre^-1``, one per image.

    Parameters
    ----------
    xp, uniform
        ``numpy`` or ``tensorflow``; ``uniform(i, low, high)`` draws a batch for parameter ``i`` (0..7).

    Returns
    -------
    array
        ``(batch, 3, 3)``: output pixel (x = column, y = row) -> the input point it is read from.
    """
    deg = math.pi / 180.0
    theta = uniform(0, -args["rotation_range"], args["rotation_range"]) * deg
    shear = uniform(1, -args["shear_range"], args["shear_range"]) * deg
    zoom_x, zoom_y = uniform(2, *args["zoom_range"]), uniform(3, *args["zoom_range"])  # independent per axis
    shift_x = uniform(4, -args["width_shift_range"], args["width_shift_range"]) * width
    shift_y = uniform(5, -args["height_shift_range"], args["height_shift_range"]) * height
    zeros, ones = xp.zeros_like(theta), xp.ones_like(theta)
    flip_x = xp.where(uniform(6, 0.0, 1.0) < 0.5, -ones, ones) if args["horizontal_flip"] else ones
    flip_y = xp.where(uniform(7, 0.0, 1.0) < 0.5, -ones, ones) if args["vertical_flip"] else ones

    def matrices(rows: list[list[Any]]) -> Any:
        return xp.stack([xp.stack(row, axis=-1) for row in rows], axis=-2)

    cos, sin = xp.cos(theta), xp.sin(theta)
    rotation = matrices([[cos, -sin, zeros], [sin, cos, zeros], [zeros, zeros, ones]])
    shift = matrices([[ones, zeros, shift_x], [zeros, ones, shift_y], [zeros, zeros, ones]])
    # ImageDataGenerator's shear [[1, -sin s], [0, cos s]] in (row, column) order, here in (x, y).
    shear_m = matrices([[xp.cos(shear), zeros, zeros], [-xp.sin(shear), ones, zeros], [zeros, zeros, ones]])
    zoom_flip = matrices([[zoom_x * flip_x, zeros, zeros], [zeros, zoom_y * flip_y, zeros], [zeros, zeros, ones]])
    cx, cy = (width - 1.0) / 2.0, (height - 1.0) / 2.0  # flips about the grid's centre map x onto width - 1 - x
    to_centre = matrices([[ones, zeros, -cx * ones], [zeros, ones, -cy * ones], [zeros, zeros, ones]])
    from_centre = matrices([[ones, zeros, cx * ones], [zeros, ones, cy * ones], [zeros, zeros, ones]])
    return from_centre @ rotation @ shift @ shear_m @ zoom_flip @ to_centre


def random_matrices(rng: np.random.Generator, batch: int, height: int, width: int,
                    args: dict[str, Any]) -> np.ndarray:
    """One random 3x3 transform per image, drawn with ``rng`` (:func:`compose_transforms` in NumPy).

    Examples
    --------
    >>> from helpers.augment import NO_AUGMENTATION, _parse_args
    >>> np.allclose(random_matrices(np.random.default_rng(0), 2, 8, 8, _parse_args(NO_AUGMENTATION)), np.eye(3))
    True
    """
    return compose_transforms(np, lambda i, low, high: rng.uniform(low, high, batch), height, width, args)


def elastic_fields(rng: np.random.Generator, batch: int, height: int, width: int, std: float,
                   grid: int = 3) -> np.ndarray:
    """Smooth random displacements ``(batch, H, W, 2)`` (dx, dy): ``N(0, std)`` on a coarse grid, cubic in between.

    Examples
    --------
    >>> elastic_fields(np.random.default_rng(0), 2, 32, 48, std=10.0).shape
    (2, 32, 48, 2)
    """
    from scipy import ndimage

    coarse = rng.normal(0.0, std, (batch, grid, grid, 2))
    rows, cols = np.meshgrid(np.linspace(0, grid - 1, height), np.linspace(0, grid - 1, width), indexing="ij")
    return np.stack([np.stack([ndimage.map_coordinates(c[..., k], [rows, cols], order=3, mode="nearest")
                               for k in range(2)], axis=-1) for c in coarse]).astype(np.float32)


def warp_numpy(images: np.ndarray, matrices: np.ndarray, order: int, fill_mode: str,
               fields: np.ndarray | None = None) -> np.ndarray:
    """Resample ``(B, H, W, C)`` images: output pixel p is read from ``matrices[i] @ (p + fields[i][p])``.

    Parameters
    ----------
    order, fill_mode, fields
        1 bilinear (images) or 0 nearest (masks); ``"reflect"``, ``"wrap"`` or ``"nearest"``; displacements
        from :func:`elastic_fields`, or ``None`` (affine only).

    Examples
    --------
    >>> warp_numpy(np.ones((1, 4, 4, 1)), np.eye(3)[None], 1, "reflect").shape
    (1, 4, 4, 1)
    """
    from scipy import ndimage

    out = np.empty_like(images)
    rows, cols = np.mgrid[0:images.shape[1], 0:images.shape[2]].astype(np.float64)
    for i, m in enumerate(matrices):
        x, y = (cols, rows) if fields is None else (cols + fields[i, ..., 0], rows + fields[i, ..., 1])
        x_in, y_in = m[0, 0] * x + m[0, 1] * y + m[0, 2], m[1, 0] * x + m[1, 1] * y + m[1, 2]
        for c in range(images.shape[-1]):
            out[i, ..., c] = ndimage.map_coordinates(images[i, ..., c], [y_in, x_in], order=order,
                                                     mode=_SCIPY_MODES[fill_mode], prefilter=False)
    return out


def stack_weights(y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Append weight maps ``(N, H, W)`` or ``(N, H, W, 1)`` to the masks as their last channel.

    Raises
    ------
    ValueError
        ``weights`` not of the masks' N, H, W.

    Examples
    --------
    >>> stack_weights(np.zeros((2, 8, 8, 1)), np.ones((2, 8, 8))).shape
    (2, 8, 8, 2)
    """
    weights = np.asarray(weights, dtype=np.float32)
    weights = weights[..., None] if weights.ndim == 3 else weights
    if weights.shape != (*y.shape[:3], 1):
        raise ValueError(f"weights must be (N, H, W) like the masks {y.shape[:3]}, got {weights.shape}; "
                         "make them with helpers.weights.weight_maps(masks).")
    return np.concatenate([y, weights], axis=-1)


def split_weights(images: Any, masks: Any) -> tuple[Any, Any, Any]:
    """Split :func:`stack_weights`' last channel off again: ``(images, masks, weights)`` (NumPy or tensors)."""
    return images, masks[..., :-1], masks[..., -1]


class AugmentedBatches(keras.utils.PyDataset):
    """``(images, masks)`` batches made with NumPy/SciPy in worker threads; batch ``i`` depends only on ``seed``, ``i``.

    Parameters
    ----------
    x, y, batch_size, args, seed, crop, shuffle, repeat, weights
        As :func:`helpers.augment.get_augmented` (``args`` checked); with ``weights``, ``y``'s last channel.

    Examples
    --------
    >>> from helpers.augment import _parse_args
    >>> x = np.random.rand(8, 32, 32, 1).astype("float32")
    >>> AugmentedBatches(x, (x > 0.5).astype("float32"), 4, _parse_args(None))[0][0].shape
    (4, 32, 32, 1)
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, args: dict[str, Any],
                 seed: int = 0, crop: tuple[int, int] | None = None, shuffle: bool = True,
                 repeat: bool = True, workers: int | None = None, weights: bool = False):
        super().__init__(workers=workers or min(8, os.cpu_count() or 1), use_multiprocessing=False,
                         max_queue_size=16)
        self.x, self.y, self.batch_size, self.args = x, y, batch_size, args
        self.seed, self.crop, self.shuffle, self.repeat, self.weights = seed, crop, shuffle, repeat, weights

    @property
    def num_batches(self) -> int | None:
        """None (endless) when repeating, else one pass over the images."""
        return None if self.repeat else math.ceil(len(self.x) / self.batch_size)

    def __len__(self) -> int:
        return self.num_batches or 2**62

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
        n, b = len(self.x), self.batch_size
        if not self.repeat and not 0 <= index < self.num_batches:
            raise IndexError(index)
        positions = range(index * b, min((index + 1) * b, n if not self.repeat else (index + 1) * b))
        orders = {epoch: (np.random.default_rng([self.seed, 1, epoch]).permutation(n) if self.shuffle
                          else np.arange(n)) for epoch in {p // n for p in positions}}  # one shuffle per epoch
        picks = np.array([orders[p // n][p % n] for p in positions])
        rng = np.random.default_rng([self.seed, 2, index])
        images, masks = self.x[picks], self.y[picks]
        if self.crop is not None:
            (ch, cw), (h, w) = self.crop, images.shape[1:3]
            tops, lefts = rng.integers(0, h - ch + 1, len(picks)), rng.integers(0, w - cw + 1, len(picks))
            images = np.stack([im[t:t + ch, l:l + cw] for im, t, l in zip(images, tops, lefts)])
            masks = np.stack([m[t:t + ch, l:l + cw] for m, t, l in zip(masks, tops, lefts)])
        args, size = self.args, images.shape[1:3]
        matrices = random_matrices(rng, len(picks), *size, args)
        std, grid = args["elastic_std"], args["elastic_grid"]
        fields = elastic_fields(rng, len(picks), *size, std, grid) if std > 0 else None
        if fields is not None or not np.allclose(matrices, np.eye(3)):  # identity: nothing to resample
            images = warp_numpy(images, matrices, 1, args["fill_mode"], fields)
            masks = warp_numpy(masks, matrices, 0, args["fill_mode"], fields)
        return split_weights(images, masks) if self.weights else (images, masks)
