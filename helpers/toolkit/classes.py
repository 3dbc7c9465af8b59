"""More than two classes: K-class losses, Keras metrics and NumPy scores.

Models end in a softmax over K channels; true masks hold class numbers 0..K-1 (``(batch, H, W, 1)``)
or are one-hot ``(batch, H, W, K)``. One sigmoid channel counts as the two classes ``[1 - p, p]``.
Losses and metrics are registered serializable (package ``"helpers"``): importing this module lets
``keras.models.load_model`` reload a model compiled with them.

Losses (one value per image): :func:`ce_loss` (categorical cross-entropy), :func:`multiclass_jaccard_loss`,
:func:`multiclass_dice_loss` (mean over the classes of each class's soft score), :func:`ce_jaccard_loss`,
:func:`ce_dice_loss`; :func:`loss_by_name` picks one by its binary counterpart's name. Metrics (after
arg-max, per image, averaged over the images where the class occurs): :class:`ClassIoU`,
:class:`MeanClassIoU`, :func:`class_metrics`. NumPy: :func:`class_iou_np`, :func:`class_dice_np`.

Examples
--------
>>> from helpers.toolkit import classes
>>> model.compile("adam", loss=classes.ce_jaccard_loss,
...               metrics=classes.class_metrics(["background", "cell", "nucleus"]))  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from helpers import losses
from helpers.metrics import THRESHOLD

__all__ = ["multiclass_jaccard_loss", "multiclass_dice_loss", "ce_loss", "ce_jaccard_loss", "ce_dice_loss",
           "MULTICLASS_LOSSES", "loss_by_name", "ClassIoU", "MeanClassIoU", "class_metrics", "class_iou_np",
           "class_dice_np"]


# ------------------------------------------------------------------------------------------ losses


def _one_hot_pair(y_true, y_pred):
    """float32 one-hot truth and probabilities, both ``(batch, H, W, K)``."""
    y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
    if y_pred.shape[-1] == 1:
        y_pred = ops.concatenate([1.0 - y_pred, y_pred], axis=-1)
    num_classes = y_pred.shape[-1]
    y_true = ops.convert_to_tensor(y_true)
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == num_classes:
        return ops.cast(y_true, "float32"), y_pred
    if len(y_true.shape) == len(y_pred.shape):
        y_true = y_true[..., 0]
    classes = ops.cast(ops.round(ops.cast(y_true, "float32")), "int32")
    return ops.one_hot(classes, num_classes, dtype="float32"), y_pred


def _class_overlap(y_true, y_pred, include_background: bool):
    """Per image and class: intersection ``Σ t·p`` and total ``Σ t + Σ p``, ``(batch, K)`` each."""
    y_true, y_pred = _one_hot_pair(y_true, y_pred)
    if not include_background:
        y_true, y_pred = y_true[..., 1:], y_pred[..., 1:]
    axes = tuple(range(1, len(y_pred.shape) - 1))
    intersection = ops.sum(y_true * y_pred, axis=axes)
    return intersection, ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)


@keras.saving.register_keras_serializable(package="helpers")
def multiclass_jaccard_loss(y_true, y_pred, include_background: bool = True, smooth: float = 1.0):
    """Soft Jaccard loss of K classes: 1 - the mean over the classes of each class's soft IoU.

    Parameters
    ----------
    y_true : tensor
        Class numbers ``(batch, H, W, 1)`` (or ``(batch, H, W)``) in 0..K-1, or one-hot ``(batch, H, W, K)``.
    y_pred : tensor
        Softmax probabilities ``(batch, H, W, K)``.
    include_background : bool, default True
        Whether class 0 is one of the classes averaged.
    smooth : float, default 1.0
        Added to every class's numerator and denominator (a class in neither mask scores 1).

    Returns
    -------
    tensor
        float32 ``(batch,)`` in [0, 1]; 0 for a perfect prediction.

    Examples
    --------
    >>> perfect = np.eye(3, dtype="float32")[None, None]
    >>> round(float(multiclass_jaccard_loss(np.array([[[[1], [2], [0]]]]), perfect)[0]), 3)  # all wrong
    0.667
    """
    intersection, total = _class_overlap(y_true, y_pred, include_background)
    return 1.0 - ops.mean((intersection + smooth) / (total - intersection + smooth), axis=-1)


@keras.saving.register_keras_serializable(package="helpers")
def multiclass_dice_loss(y_true, y_pred, include_background: bool = True, smooth: float = 1.0):
    """Soft Dice loss of K classes: 1 - the mean over the classes of each class's soft Dice.

    Parameters
    ----------
    y_true, y_pred : tensor
        Class numbers (or one-hot) and softmax probabilities, as in :func:`multiclass_jaccard_loss`.
    include_background : bool, default True
        Whether class 0 is one of the classes averaged.
    smooth : float, default 1.0
        Smoothing term.

    Returns
    -------
    tensor
        float32 ``(batch,)`` in [0, 1].

    Examples
    --------
    >>> t = np.array([[[[0], [1], [2]]]])
    >>> round(float(multiclass_dice_loss(t, np.full((1, 1, 3, 3), 1 / 3, "float32"))[0]), 3)
    0.444
    """
    intersection, total = _class_overlap(y_true, y_pred, include_background)
    return 1.0 - ops.mean((2.0 * intersection + smooth) / (total + smooth), axis=-1)


@keras.saving.register_keras_serializable(package="helpers")
def ce_loss(y_true, y_pred):
    """Categorical cross-entropy of each image (mean over its pixels), from class numbers or one-hot.

    Parameters
    ----------
    y_true, y_pred : tensor
        Class numbers (or one-hot) and softmax probabilities (not logits).

    Returns
    -------
    tensor
        float32 ``(batch,)``, >= 0.

    Examples
    --------
    >>> round(float(ce_loss(np.array([[[[0], [2]]]]), np.full((1, 1, 2, 4), 0.25, "float32"))[0]), 4)  # ln 4
    1.3863
    """
    y_true, y_pred = _one_hot_pair(y_true, y_pred)
    return ops.mean(ops.categorical_crossentropy(y_true, y_pred), axis=tuple(range(1, len(y_pred.shape) - 1)))


@keras.saving.register_keras_serializable(package="helpers")
def ce_jaccard_loss(y_true, y_pred, include_background: bool = True, smooth: float = 1.0):
    """:func:`ce_loss` plus :func:`multiclass_jaccard_loss`: BCE + Jaccard for K classes.

    Parameters
    ----------
    y_true, y_pred : tensor
        Class numbers (or one-hot) and softmax probabilities.
    include_background : bool, default True
        Whether class 0 counts in the Jaccard term.
    smooth : float, default 1.0
        Smoothing term of the Jaccard term.

    Returns
    -------
    tensor
        float32 ``(batch,)``; about 0 for a perfect prediction.

    Examples
    --------
    >>> round(float(ce_jaccard_loss(np.array([[[[0], [1], [2]]]]), np.eye(3, dtype="float32")[None, None])[0]), 4)
    0.0
    """
    return ce_loss(y_true, y_pred) + multiclass_jaccard_loss(y_true, y_pred, include_background, smooth)


@keras.saving.register_keras_serializable(package="helpers")
def ce_dice_loss(y_true, y_pred, include_background: bool = True, smooth: float = 1.0):
    """:func:`ce_loss` plus :func:`multiclass_dice_loss`.

    Parameters
    ----------
    y_true, y_pred : tensor
        Class numbers (or one-hot) and softmax probabilities.
    include_background : bool, default True
        Whether class 0 counts in the Dice term.
    smooth : float, default 1.0
        Smoothing term of the Dice term.

    Returns
    -------
    tensor
        float32 ``(batch,)``.

    Examples
    --------
    >>> round(float(ce_dice_loss(np.array([[[[0], [1]]]]), np.eye(2, dtype="float32")[None, None])[0]), 4)
    0.0
    """
    return ce_loss(y_true, y_pred) + multiclass_dice_loss(y_true, y_pred, include_background, smooth)


#: The K-class counterparts of the binary losses' names (:data:`helpers.losses.LOSS_NAMES`).
MULTICLASS_LOSSES = {"bce": ce_loss, "jaccard": multiclass_jaccard_loss, "bce_jaccard": ce_jaccard_loss,
                     "bce_dice": ce_dice_loss}


@keras.saving.register_keras_serializable(package="helpers", name="MultiClassLoss")
class _MultiClassLoss(keras.losses.Loss):
    """A K-class loss with ``include_background`` fixed (``model.compile`` cannot pass it), saved with it."""

    def __init__(self, kind: str = "bce_jaccard", include_background: bool = True, smooth: float = 1.0,
                 name: str | None = None, **kwargs):
        kwargs.pop("reduction", None)
        super().__init__(name=name or MULTICLASS_LOSSES[kind].__name__, **kwargs)
        self.kind, self.include_background, self.smooth = kind, bool(include_background), float(smooth)

    def call(self, y_true, y_pred):
        if self.kind == "bce":
            return ce_loss(y_true, y_pred)
        return MULTICLASS_LOSSES[self.kind](y_true, y_pred, self.include_background, self.smooth)

    def get_config(self) -> dict:
        return {"kind": self.kind, "include_background": self.include_background, "smooth": self.smooth,
                "name": self.name}


def loss_by_name(name: str, num_classes: int = 2, include_background: bool = True):
    """The loss called ``name`` for a model of ``num_classes`` classes, ready for ``model.compile``.

    Parameters
    ----------
    name : str
        A name of :data:`helpers.losses.LOSS_NAMES`; for more than two classes one of
        :data:`MULTICLASS_LOSSES` (``"bce"`` is then categorical cross-entropy).
    num_classes : int, default 2
        2 (one sigmoid channel): :func:`helpers.losses.by_name`; more: the K-class loss.
    include_background : bool, default True
        Whether class 0 counts in a K-class Jaccard or Dice term.

    Returns
    -------
    str, callable or keras.losses.Loss

    Raises
    ------
    ValueError
        For an unknown ``name``, or a binary-only one (the weighted losses) with ``num_classes > 2``.

    Examples
    --------
    >>> loss_by_name("bce_jaccard", num_classes=3).__name__
    'ce_jaccard_loss'
    """
    if num_classes <= 2:
        return losses.by_name(name)
    if name not in MULTICLASS_LOSSES:
        raise ValueError(f"name={name!r} is not a loss for {num_classes} classes; choose one of "
                         f"{', '.join(MULTICLASS_LOSSES)}.")
    if include_background:
        return MULTICLASS_LOSSES[name]
    return _MultiClassLoss(name, include_background=False)


# ------------------------------------------------------------------------------------- Keras metrics


def _classes_of(y_true, y_pred):
    """int32 true and predicted (arg-max; ``p > 0.5`` for one channel) class numbers, (batch, H, W) each."""
    y_pred, y_true = ops.convert_to_tensor(y_pred), ops.convert_to_tensor(y_true)
    if y_pred.shape[-1] == 1:
        predicted = ops.cast(y_pred[..., 0] > THRESHOLD, "int32")
    else:
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
    if len(y_true.shape) == len(y_pred.shape):
        if y_true.shape[-1] > 1 and y_pred.shape[-1] > 1:  # one-hot
            return ops.cast(ops.argmax(y_true, axis=-1), "int32"), predicted
        y_true = y_true[..., 0]
    return ops.cast(ops.round(ops.cast(y_true, "float32")), "int32"), predicted


def _class_ious(y_true, y_pred, class_ids):
    """(batch, len(class_ids)) IoUs and the (batch, len(class_ids)) 0/1 "class in either mask"."""
    true, predicted = _classes_of(y_true, y_pred)
    scores, present = [], []
    for class_id in class_ids:
        t = ops.cast(ops.equal(true, class_id), "float32")
        p = ops.cast(ops.equal(predicted, class_id), "float32")
        intersection = ops.sum(t * p, axis=(1, 2))
        union = ops.sum(t, axis=(1, 2)) + ops.sum(p, axis=(1, 2)) - intersection
        scores.append(ops.divide_no_nan(intersection, union))
        present.append(ops.cast(union > 0, "float32"))
    return ops.stack(scores, axis=-1), ops.stack(present, axis=-1)


class _PerImageMean(keras.metrics.Metric):
    """Mean over images of a per-image value, each image counted with a 0/1 weight of its own."""

    def __init__(self, name: str, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def _values(self, y_true, y_pred):  # pragma: no cover - defined by subclasses
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        values, weights = self._values(y_true, y_pred)  # sample_weight ignored: an image counts once
        self.total.assign(self.total + ops.sum(values * weights))
        self.count.assign(self.count + ops.sum(weights))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)


@keras.saving.register_keras_serializable(package="helpers")
class ClassIoU(_PerImageMean):
    """IoU of one class after arg-max, per image, averaged over the images where the class occurs.

    Parameters
    ----------
    class_id : int
        The class scored (its channel in the output, its number in the masks).
    name : str, optional
        Name in the training log; default ``"iou_<class_id>"``.

    Examples
    --------
    >>> metric = ClassIoU(1)
    >>> metric.update_state(np.array([[[[0], [1], [1], [2]]]]), np.eye(3)[[[[0, 1, 2, 2]]]])
    >>> float(metric.result())
    0.5
    """

    def __init__(self, class_id: int, name: str | None = None, dtype=None):
        super().__init__(name=name or f"iou_{class_id}", dtype=dtype)
        self.class_id = int(class_id)

    def _values(self, y_true, y_pred):
        scores, present = _class_ious(y_true, y_pred, [self.class_id])
        return scores[:, 0], present[:, 0]

    def get_config(self) -> dict:
        return {"class_id": self.class_id, "name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="helpers")
class MeanClassIoU(_PerImageMean):
    """Mean IoU over the classes in each image's true or predicted mask, after arg-max, averaged over images.

    Parameters
    ----------
    num_classes : int
        K, the number of output channels (2 for one sigmoid channel).
    include_background : bool, default True
        Whether class 0 counts in the mean.
    name : str, optional
        Default ``"mean_iou"``.

    Raises
    ------
    ValueError
        If ``num_classes < 2``.

    Examples
    --------
    >>> metric = MeanClassIoU(3)
    >>> metric.update_state(np.array([[[[0], [1], [1], [2]]]]), np.eye(3)[[[[0, 1, 2, 2]]]])
    >>> round(float(metric.result()), 3)                  # (1 + 1/2 + 1/2) / 3
    0.667
    """

    def __init__(self, num_classes: int, include_background: bool = True, name: str | None = None, dtype=None):
        if num_classes < 2:
            raise ValueError(f"num_classes={num_classes}: use at least 2 (background and one class).")
        super().__init__(name=name or "mean_iou", dtype=dtype)
        self.num_classes, self.include_background = int(num_classes), bool(include_background)

    def _values(self, y_true, y_pred):
        first = 0 if self.include_background else 1
        scores, present = _class_ious(y_true, y_pred, range(first, self.num_classes))
        n_present = ops.sum(present, axis=-1)
        return ops.divide_no_nan(ops.sum(scores * present, axis=-1), n_present), ops.cast(n_present > 0, "float32")

    def get_config(self) -> dict:
        return {"num_classes": self.num_classes, "include_background": self.include_background,
                "name": self.name, "dtype": self.dtype}


def class_metrics(class_names: Sequence[str], include_background: bool = True) -> list[keras.metrics.Metric]:
    """The IoU of every class and their mean, as Keras metrics named after the classes.

    Parameters
    ----------
    class_names : sequence of str
        One name per class, in the order of the class numbers.
    include_background : bool, default True
        Whether class 0 counts in ``mean_iou``.

    Returns
    -------
    list of keras.metrics.Metric
        ``iou_<name>`` for every class (lower case, other characters as ``_``) and ``mean_iou``.

    Raises
    ------
    ValueError
        If ``class_names`` has fewer than two names, or two that differ only in case or punctuation.

    Examples
    --------
    >>> [m.name for m in class_metrics(["background", "Cell interior", "boundary"])]
    ['iou_background', 'iou_cell_interior', 'iou_boundary', 'mean_iou']
    """
    names = [re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_") or "class" for name in class_names]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(f"class_names={list(class_names)}: name at least two classes, each differently.")
    return ([ClassIoU(k, name=f"iou_{name}") for k, name in enumerate(names)]
            + [MeanClassIoU(len(names), include_background=include_background)])


# ------------------------------------------------------------------------------------------- NumPy


def _class_counts(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per class: pixels in both, and pixels in the prediction plus pixels in the truth."""
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"pred {pred.shape} and truth {truth.shape} differ in shape; pass class numbers of "
                         f"the same image (arg-max a softmax output first)")
    for name, array in (("pred", pred), ("truth", truth)):
        if array.size and (array.min() < 0 or array.max() >= num_classes):
            raise ValueError(f"{name} holds class {int(array.max())} but num_classes={num_classes} "
                             f"(classes 0..{num_classes - 1}); pass one name per class")
    pred, truth = pred.astype(np.int64).ravel(), truth.astype(np.int64).ravel()
    both = np.bincount(truth[pred == truth], minlength=num_classes).astype(np.float64)
    total = np.bincount(pred, minlength=num_classes) + np.bincount(truth, minlength=num_classes)
    return both, total.astype(np.float64)


def class_iou_np(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> np.ndarray:
    """IoU of every class of one image (or of a stack, pooled), from class numbers.

    Parameters
    ----------
    pred, truth : np.ndarray
        Class numbers 0..K-1 of the same shape.
    num_classes : int
        K.

    Returns
    -------
    np.ndarray
        float64 ``(K,)``; NaN for a class in neither mask.

    Raises
    ------
    ValueError
        If the shapes differ or a class number is outside 0..K-1.

    Examples
    --------
    >>> class_iou_np(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]), 4)
    array([1. , 0.5, 0.5, nan])
    """
    both, total = _class_counts(pred, truth, num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > both, both / (total - both), np.nan)


def class_dice_np(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> np.ndarray:
    """Dice of every class, as :func:`class_iou_np` gives IoU (Dice = 2 IoU / (1 + IoU), NaN kept).

    Examples
    --------
    >>> class_dice_np(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]), 3).round(3)
    array([1.   , 0.667, 0.667])
    """
    iou = class_iou_np(pred, truth, num_classes)
    return 2 * iou / (1 + iou)
