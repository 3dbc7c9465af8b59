"""Binary segmentation metrics: Keras metrics (one value per image, registered) and NumPy references.

An image whose true and predicted masks are both empty scores 1. K-class metrics: :mod:`helpers.toolkit.classes`.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

__all__ = ["THRESHOLD", "iou", "iou_thresholded", "iou_np", "dice_np"]

THRESHOLD = 0.5  # membrane where probability > THRESHOLD (package convention)


def _overlap(y_true, y_pred, threshold: float | None = None):
    """float32 per-image intersection ``Σ t·p`` and total ``Σ t + Σ p``, optionally of thresholded masks."""
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    if threshold is not None:
        y_true, y_pred = y_true > threshold, y_pred > threshold
    y_true, y_pred = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
    axes = tuple(range(1, len(y_pred.shape)))
    intersection = ops.sum(y_true * y_pred, axis=axes)
    return intersection, ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)


def _ratio_or_one(numerator, denominator):
    """``numerator / denominator``, and 1 where the denominator is 0 (both masks empty)."""
    safe = ops.where(denominator > 0, denominator, ops.ones_like(denominator))
    return ops.where(denominator > 0, numerator / safe, ops.ones_like(numerator))


@keras.saving.register_keras_serializable(package="helpers")
def iou(y_true, y_pred):
    """Soft IoU of each image on the probabilities: ``Σ t·p / (Σ t + Σ p - Σ t·p)``.

    Parameters
    ----------
    y_true, y_pred : tensor
        True masks in {0, 1} and predicted probabilities, ``(batch, H, W, C)``.

    Returns
    -------
    tensor
        float32 ``(batch,)`` in [0, 1].

    Examples
    --------
    >>> float(iou(np.ones((1, 2, 2, 1)), np.full((1, 2, 2, 1), 0.5))[0])  # intersection 2, union 4
    0.5
    """
    intersection, total = _overlap(y_true, y_pred)
    return _ratio_or_one(intersection, total - intersection)


@keras.saving.register_keras_serializable(package="helpers")
def iou_thresholded(y_true, y_pred):
    """IoU of each image after thresholding both masks at :data:`THRESHOLD` (membrane where p > 0.5).

    Parameters
    ----------
    y_true, y_pred : tensor
        As in :func:`iou`.

    Returns
    -------
    tensor
        float32 ``(batch,)``; 0 for disjoint masks.

    Examples
    --------
    >>> float(iou_thresholded(np.ones((1, 2, 2, 1)), np.full((1, 2, 2, 1), 0.6))[0])
    1.0
    """
    intersection, total = _overlap(y_true, y_pred, THRESHOLD)
    return _ratio_or_one(intersection, total - intersection)


def _counts(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int]:
    """Pixels in both masks, and pixels in ``pred`` plus pixels in ``truth``."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    if pred.shape != truth.shape:
        raise ValueError(f"pred has shape {pred.shape} but truth has shape {truth.shape}; pass masks of the same "
                         "image (squeeze or resize one of them)")
    return int(np.logical_and(pred, truth).sum()), int(pred.sum() + truth.sum())


def iou_np(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean (or 0/1) masks of one shape; a stack pools all its pixels.

    Parameters
    ----------
    pred, truth : np.ndarray

    Returns
    -------
    float
        0.0 when disjoint.

    Raises
    ------
    ValueError
        If the shapes differ.

    Examples
    --------
    >>> iou_np(np.array([1, 1, 0]), np.array([0, 1, 1]))
    0.3333333333333333
    """
    both, total = _counts(pred, truth)
    return 1.0 if total == 0 else both / (total - both)


def dice_np(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice ``2|A∩B| / (|A| + |B|)`` of two boolean masks.

    Parameters
    ----------
    pred, truth : np.ndarray
        As in :func:`iou_np`.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If the shapes differ.

    Examples
    --------
    >>> dice_np(np.array([1, 1, 0]), np.array([0, 1, 1]))
    0.5
    """
    both, total = _counts(pred, truth)
    return 1.0 if total == 0 else 2 * both / total
