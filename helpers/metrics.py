"""Segmentation metrics: Keras metric functions and their NumPy references.

Keras metrics (use in ``model.compile(metrics=[...])``; registered serializable, package
``"helpers"``):

- :func:`iou` — soft IoU of the probabilities, per image;
- :func:`iou_thresholded` — IoU after thresholding at 0.5;
- :func:`dice` — Dice after thresholding at 0.5.

Each returns one value per image and Keras averages those over all images of the epoch, so the
number in the training log is the **per-image mean**. Convention: an image whose true and
predicted masks are both empty scores 1 (nothing to find, nothing found).

NumPy references (used by :mod:`helpers.evaluate` and the tests): :func:`iou_np`,
:func:`dice_np` for one image, :func:`mean_iou_np` (per-image mean, what the Keras metrics
report); :func:`iou_np` of a whole stack pools all its pixels into one IoU.

Examples
--------
>>> from helpers import metrics
>>> model.compile("adam", "binary_crossentropy",
...               metrics=[metrics.iou, metrics.iou_thresholded, metrics.dice])  # doctest: +SKIP
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

__all__ = [
    "iou", "iou_thresholded", "dice",
    "iou_np", "dice_np", "mean_iou_np",
]

THRESHOLD = 0.5  # membrane where probability > THRESHOLD (package convention)


def _per_image_overlap(y_true, y_pred):
    """float32 per-image intersection ``Σ t·p`` and total ``Σ t + Σ p`` (sums over H, W, C)."""
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(ops.cast(y_true, y_pred.dtype), "float32")
    y_pred = ops.cast(y_pred, "float32")
    axes = tuple(range(1, len(y_pred.shape)))
    intersection = ops.sum(y_true * y_pred, axis=axes)
    total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    return intersection, total


def _ratio_or_one(numerator, denominator):
    """``numerator / denominator``, and 1 where the denominator is 0 (both masks empty)."""
    safe = ops.where(denominator > 0, denominator, ops.ones_like(denominator))
    return ops.where(denominator > 0, numerator / safe, ops.ones_like(numerator))


def _binarize(y_true, y_pred):
    """Threshold both tensors at :data:`THRESHOLD` (masks stay {0, 1})."""
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    return (ops.cast(y_true > THRESHOLD, "float32"), ops.cast(y_pred > THRESHOLD, "float32"))


@keras.saving.register_keras_serializable(package="helpers")
def iou(y_true, y_pred):
    """Soft IoU of each image: ``Σ t·p / (Σ t + Σ p - Σ t·p)`` on the probabilities.

    Per image, then averaged by Keras: not ``keras.metrics.IoU``, which pools a confusion matrix
    over every pixel of the epoch (see :func:`mean_iou_np` for why the two differ).

    Parameters
    ----------
    y_true : tensor
        True masks ``(batch, H, W, C)`` in {0, 1}.
    y_pred : tensor
        Predicted probabilities in [0, 1], same shape.

    Returns
    -------
    tensor
        float32, shape ``(batch,)``, in [0, 1]; 1 where both are all zero.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([[[[1.0], [0.0]]]])
    >>> float(iou(t, 0.5 * t)[0])     # intersection 0.5, union 1
    0.5
    """
    intersection, total = _per_image_overlap(y_true, y_pred)
    return _ratio_or_one(intersection, total - intersection)


@keras.saving.register_keras_serializable(package="helpers")
def iou_thresholded(y_true, y_pred):
    """IoU of each image after thresholding both masks at 0.5 (membrane where p > 0.5).

    Parameters
    ----------
    y_true : tensor
        True masks ``(batch, H, W, C)`` in {0, 1}.
    y_pred : tensor
        Predicted probabilities in [0, 1], same shape.

    Returns
    -------
    tensor
        float32, shape ``(batch,)``; 1 for an image where both masks are empty, 0 for
        disjoint masks.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([[[[1.0], [0.0]]]])
    >>> float(iou_thresholded(t, 0.6 * t)[0])
    1.0
    """
    intersection, total = _per_image_overlap(*_binarize(y_true, y_pred))
    return _ratio_or_one(intersection, total - intersection)


@keras.saving.register_keras_serializable(package="helpers")
def dice(y_true, y_pred):
    """Dice coefficient ``2|X∩Y| / (|X| + |Y|)`` of each image after thresholding at 0.5.

    Parameters
    ----------
    y_true : tensor
        True masks ``(batch, H, W, C)`` in {0, 1}.
    y_pred : tensor
        Predicted probabilities in [0, 1], same shape.

    Returns
    -------
    tensor
        float32, shape ``(batch,)``; 1 where both masks are empty.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([[[[1.0], [1.0]]]]); p = np.array([[[[0.9], [0.1]]]])
    >>> round(float(dice(t, p)[0]), 3)   # 2*1 / (2 + 1)
    0.667
    """
    intersection, total = _per_image_overlap(*_binarize(y_true, y_pred))
    return _ratio_or_one(2.0 * intersection, total)




# ---------------------------------------------------------------- NumPy references


def _check_pair(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    if pred.shape != truth.shape:
        raise ValueError(
            f"pred has shape {pred.shape} but truth has shape {truth.shape}; pass masks of the "
            "same image (squeeze or resize one of them)"
        )
    return pred, truth


def iou_np(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean masks of one image.

    Parameters
    ----------
    pred, truth : np.ndarray
        Boolean (or 0/1) masks of the same shape; ``True`` = the class being scored.

    Returns
    -------
    float
        ``|pred ∩ truth| / |pred ∪ truth|``; 1.0 when both are empty, 0.0 when disjoint.

    Examples
    --------
    >>> iou_np(np.array([1, 1, 0]), np.array([0, 1, 1]))
    0.3333333333333333
    >>> iou_np(np.zeros(3), np.zeros(3))
    1.0
    """
    pred, truth = _check_pair(pred, truth)
    union = np.logical_or(pred, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, truth).sum() / union)


def dice_np(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice coefficient ``2|A∩B| / (|A| + |B|)`` of two boolean masks of one image.

    Parameters
    ----------
    pred, truth : np.ndarray
        Boolean (or 0/1) masks of the same shape.

    Returns
    -------
    float
        In [0, 1]; 1.0 when both are empty, 0.0 when disjoint.

    Examples
    --------
    >>> dice_np(np.array([1, 1, 0]), np.array([0, 1, 1]))
    0.5
    """
    pred, truth = _check_pair(pred, truth)
    total = pred.sum() + truth.sum()
    return 1.0 if total == 0 else float(2 * np.logical_and(pred, truth).sum() / total)


def mean_iou_np(preds: np.ndarray, truths: np.ndarray) -> float:
    """Mean over images of the per-image IoU — what the Keras metric :func:`iou_thresholded` logs.

    Every image counts equally, however much membrane it holds; an image with both masks
    empty counts as 1. :func:`iou_np` of the whole stack instead pools all pixels into one IoU,
    weighting each image by its union, so images with much membrane dominate and an empty pair
    adds nothing. Both are legitimate; they differ whenever images differ in how much foreground
    they hold, so always say which one a number is. Below: pooled (1 + 4) / (2 + 4) = 0.833.

    Parameters
    ----------
    preds, truths : np.ndarray
        Boolean masks ``(N, ...)``; the first axis indexes images.

    Returns
    -------
    float

    Examples
    --------
    >>> a = np.array([[1, 0, 0, 0], [1, 1, 1, 1]], bool)
    >>> b = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool)
    >>> mean_iou_np(a, b)   # (1/2 + 1) / 2
    0.75
    >>> round(iou_np(a, b), 3)   # pooled
    0.833
    """
    preds, truths = _check_pair(preds, truths)
    return float(np.mean([iou_np(p, t) for p, t in zip(preds, truths)]))
