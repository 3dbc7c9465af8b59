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

**More than two classes** (a softmax output of K channels, true masks of class numbers 0..K-1):
the predicted class of a pixel is the arg-max over the channels. :class:`ClassIoU` and
:class:`ClassDice` score one class, :class:`MeanClassIoU` and :class:`MeanClassDice` the mean over
the classes; :func:`class_metrics` makes the set for a list of class names. Each scores every
image and averages over the images, leaving out an image where the scored class is in neither
mask (its score would be 0 / 0). NumPy references: :func:`class_iou_np`, :func:`class_dice_np`.
With one sigmoid channel the classes are 0 and 1 (``p > 0.5``).

Examples
--------
>>> from helpers import metrics
>>> model.compile("adam", "binary_crossentropy",
...               metrics=[metrics.iou, metrics.iou_thresholded, metrics.dice])  # doctest: +SKIP
>>> model.compile("adam", losses.ce_jaccard_loss,
...               metrics=metrics.class_metrics(["background", "cell", "nucleus"]))  # doctest: +SKIP
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

__all__ = [
    "iou", "iou_thresholded", "dice",
    "ClassIoU", "ClassDice", "MeanClassIoU", "MeanClassDice", "class_metrics",
    "iou_np", "dice_np", "mean_iou_np", "class_iou_np", "class_dice_np",
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


# ---------------------------------------------------------------- more than two classes


def _classes_of(y_true, y_pred):
    """int32 true and predicted class numbers, (batch, H, W) each.

    ``y_true`` holds class numbers ``(batch, H, W[, 1])`` or one-hot rows ``(batch, H, W, K)``;
    the predicted class is the arg-max of ``y_pred`` over its K channels (``p > 0.5`` for one).
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    channels = y_pred.shape[-1]
    if channels == 1:
        predicted = ops.cast(y_pred[..., 0] > THRESHOLD, "int32")
    else:
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
    if len(y_true.shape) == len(y_pred.shape):
        if y_true.shape[-1] == 1 or channels == 1:
            true = ops.cast(ops.round(ops.cast(y_true[..., 0], "float32")), "int32")
        else:
            true = ops.cast(ops.argmax(y_true, axis=-1), "int32")
    else:
        true = ops.cast(ops.round(ops.cast(y_true, "float32")), "int32")
    return true, predicted


def _class_overlap(y_true, y_pred, class_id: int):
    """Per-image intersection and union of one class's true and predicted pixels, float32 (batch,)."""
    true, predicted = _classes_of(y_true, y_pred)
    t = ops.cast(ops.equal(true, class_id), "float32")
    p = ops.cast(ops.equal(predicted, class_id), "float32")
    intersection = ops.sum(t * p, axis=(1, 2))
    return intersection, ops.sum(t, axis=(1, 2)) + ops.sum(p, axis=(1, 2))


def _class_scores(y_true, y_pred, class_ids, dice: bool):
    """(batch, len(class_ids)) scores and (batch, len(class_ids)) 0/1 "class present" weights."""
    scores, present = [], []
    for class_id in class_ids:
        intersection, total = _class_overlap(y_true, y_pred, class_id)
        denominator = total if dice else total - intersection
        numerator = 2.0 * intersection if dice else intersection
        scores.append(_ratio_or_one(numerator, denominator))
        present.append(ops.cast(denominator > 0, "float32"))
    return ops.stack(scores, axis=-1), ops.stack(present, axis=-1)


class _PerImageClassScore(keras.metrics.Metric):
    """Mean over images of a per-image value, each image counted with a 0/1 weight of its own."""

    def __init__(self, name: str, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def _values(self, y_true, y_pred):  # pragma: no cover - defined by subclasses
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add a batch; ``sample_weight`` is ignored (every image where the class occurs counts once)."""
        values, weights = self._values(y_true, y_pred)
        self.total.assign(self.total + ops.sum(values * weights))
        self.count.assign(self.count + ops.sum(weights))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)


@keras.saving.register_keras_serializable(package="helpers")
class ClassIoU(_PerImageClassScore):
    """IoU of one class after arg-max, per image, averaged over the images where the class occurs.

    An image counts when the class is in its true or its predicted mask; an image with the class in
    neither has no IoU (0 / 0) and is left out, so the metric says how well the class is found
    where it is (or is wrongly predicted), not how often it is absent.

    Parameters
    ----------
    class_id : int
        The class scored (its channel in the softmax output, its number in the masks).
    name : str, optional
        Name in the training log; default ``"iou_<class_id>"``.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.array([[[[0], [1], [1], [2]]]])                      # class numbers
    >>> prob = np.eye(3)[[[[0, 1, 2, 2]]]].astype("float32")           # one-hot predictions
    >>> metric = ClassIoU(1)
    >>> metric.update_state(truth, prob)
    >>> float(metric.result())
    0.5
    """

    def __init__(self, class_id: int, name: str | None = None, dtype=None):
        super().__init__(name=name or f"iou_{class_id}", dtype=dtype)
        self.class_id = int(class_id)

    _dice = False

    def _values(self, y_true, y_pred):
        scores, present = _class_scores(y_true, y_pred, [self.class_id], dice=self._dice)
        return scores[:, 0], present[:, 0]

    def get_config(self) -> dict:
        return {"class_id": self.class_id, "name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="helpers")
class ClassDice(ClassIoU):
    """Dice of one class after arg-max, per image, averaged over the images where the class occurs.

    Parameters
    ----------
    class_id : int
        The class scored.
    name : str, optional
        Default ``"dice_<class_id>"``.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.array([[[[0], [1], [1], [2]]]])
    >>> prob = np.eye(3)[[[[0, 1, 2, 2]]]].astype("float32")
    >>> metric = ClassDice(2)
    >>> metric.update_state(truth, prob)
    >>> round(float(metric.result()), 3)                  # 2 * 1 / (1 + 2)
    0.667
    """

    def __init__(self, class_id: int, name: str | None = None, dtype=None):
        super().__init__(class_id, name=name or f"dice_{class_id}", dtype=dtype)

    _dice = True


@keras.saving.register_keras_serializable(package="helpers")
class MeanClassIoU(_PerImageClassScore):
    """Mean IoU over the classes after arg-max, per image, averaged over the images.

    In each image the mean runs over the classes present in its true or predicted mask (a class in
    neither has no IoU). Not ``keras.metrics.MeanIoU``, which pools one confusion matrix over all
    pixels of the epoch, so large images and frequent classes dominate it.

    Parameters
    ----------
    num_classes : int
        K, the number of output channels (2 for a one-channel sigmoid output).
    include_background : bool, default True
        Whether class 0 counts in the mean.
    name : str, optional
        Default ``"mean_iou"``.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.array([[[[0], [1], [1], [2]]]])
    >>> prob = np.eye(3)[[[[0, 1, 2, 2]]]].astype("float32")
    >>> metric = MeanClassIoU(3)
    >>> metric.update_state(truth, prob)
    >>> round(float(metric.result()), 3)                  # (1 + 1/2 + 1/2) / 3
    0.667
    """

    _dice = False

    def __init__(self, num_classes: int, include_background: bool = True, name: str | None = None, dtype=None):
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2 (background and one class), got {num_classes}.")
        super().__init__(name=name or ("mean_dice" if self._dice else "mean_iou"), dtype=dtype)
        self.num_classes, self.include_background = int(num_classes), bool(include_background)

    def _values(self, y_true, y_pred):
        first = 0 if self.include_background else 1
        scores, present = _class_scores(y_true, y_pred, range(first, self.num_classes), dice=self._dice)
        n_present = ops.sum(present, axis=-1)
        return ops.divide_no_nan(ops.sum(scores * present, axis=-1), n_present), ops.cast(n_present > 0, "float32")

    def get_config(self) -> dict:
        return {"num_classes": self.num_classes, "include_background": self.include_background,
                "name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="helpers")
class MeanClassDice(MeanClassIoU):
    """Mean Dice over the classes after arg-max, per image, averaged over the images.

    Parameters
    ----------
    num_classes : int
        K.
    include_background : bool, default True
        Whether class 0 counts in the mean.
    name : str, optional
        Default ``"mean_dice"``.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.array([[[[0], [1], [1], [2]]]])
    >>> prob = np.eye(3)[[[[0, 1, 2, 2]]]].astype("float32")
    >>> metric = MeanClassDice(3, include_background=False)
    >>> metric.update_state(truth, prob)
    >>> round(float(metric.result()), 3)                  # (2/3 + 2/3) / 2
    0.667
    """

    _dice = True


def _slug(name: str) -> str:
    """A class name as it may appear in a metric name: lower case, runs of other characters as ``_``."""
    import re

    return re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_") or "class"


def class_metrics(class_names, include_background: bool = True) -> list[keras.metrics.Metric]:
    """The IoU of every class and their mean, as Keras metrics named after the classes.

    Parameters
    ----------
    class_names : sequence of str
        One name per class, in the order of the class numbers (K names for K output channels).
    include_background : bool, default True
        Whether class 0 counts in ``mean_iou``.

    Returns
    -------
    list of keras.metrics.Metric
        ``iou_<name>`` for every class (lower case, other characters as ``_``) and ``mean_iou``.

    Examples
    --------
    >>> [m.name for m in class_metrics(["background", "Cell interior", "boundary"])]
    ['iou_background', 'iou_cell_interior', 'iou_boundary', 'mean_iou']
    """
    names = [_slug(name) for name in class_names]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(f"class_names must name at least two classes, each differently, got {list(class_names)}.")
    return ([ClassIoU(k, name=f"iou_{name}") for k, name in enumerate(names)]
            + [MeanClassIoU(len(names), include_background=include_background)])


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


def _class_pair(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"pred {pred.shape} and truth {truth.shape} differ in shape; pass class numbers of "
                         f"the same image (arg-max a softmax output first, e.g. helpers.predict.class_map)")
    for name, array in (("pred", pred), ("truth", truth)):
        if array.size and (array.min() < 0 or array.max() >= num_classes):
            raise ValueError(f"{name} holds class {int(array.max())} but there are {num_classes} classes "
                             f"(0..{num_classes - 1}); pass one name per class")
    return pred.astype(np.int64).ravel(), truth.astype(np.int64).ravel()


def _class_counts(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per class: pixels in both, and pixels in the prediction plus pixels in the truth."""
    pred, truth = _class_pair(pred, truth, num_classes)
    both = np.bincount(truth[pred == truth], minlength=num_classes).astype(np.float64)
    total = (np.bincount(pred, minlength=num_classes) + np.bincount(truth, minlength=num_classes)).astype(np.float64)
    return both, total


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

    Examples
    --------
    >>> class_iou_np(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]), 4)
    array([1. , 0.5, 0.5, nan])
    """
    both, total = _class_counts(pred, truth, num_classes)
    union = total - both
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, both / union, np.nan)


def class_dice_np(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> np.ndarray:
    """Dice of every class of one image (or of a stack, pooled), from class numbers.

    Returns
    -------
    np.ndarray
        float64 ``(K,)``; NaN for a class in neither mask.

    Examples
    --------
    >>> class_dice_np(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]), 3).round(3)
    array([1.   , 0.667, 0.667])
    """
    both, total = _class_counts(pred, truth, num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 2 * both / total, np.nan)
