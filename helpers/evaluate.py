"""Evaluate membrane predictions: pixel scores, threshold choice and the ISBI 2012 scores.

Pixel scores (:func:`segmentation_table`) compare the thresholded prediction with the mask:
IoU and Dice for the membrane class and for the cell class, and the pixel error. The ISBI 2012
challenge instead scores the *cells* the membranes separate (:func:`isbi_scores`), following
Arganda-Carreras et al. 2015, "Crowdsourcing the creation of image segmentation algorithms
for connectomics", Frontiers in Neuroanatomy 9:142:

1. ground-truth segments: 4-connected components of the cell class (``truth == 0``);
   membrane pixels get label 0 and are left out of the score (foreground restriction);
2. predicted segments: markers are the 4-connected components of ``prob <= t``; a watershed
   on the membrane probability grows them until they meet, leaving 1-pixel dividing lines
   (label 0) — the "border thinning". A predicted line pixel inside a true cell counts as a
   segment of its own (a singleton), as in the challenge's Fiji code;
3. from the contingency table ``p_ij`` (fraction of foreground pixels in predicted segment
   ``i`` and true segment ``j``, marginals ``s_i`` and ``t_j``):
   ``V_rand = 2 Σ p_ij² / (Σ s_i² + Σ t_j²)`` and
   ``V_info = 2 I(S; T) / (H(S) + H(T))``; both in [0, 1], 1 = perfect;
4. the best value over a sweep of thresholds ``t`` is reported, per image.

scikit-image has the building blocks (``skimage.metrics.adapted_rand_error`` and
``variation_of_information``) but not exactly these numbers: ``adapted_rand_error`` counts
pixel *pairs* (``n_ij (n_ij - 1)`` instead of ``n_ij²``) and treats predicted label 0 as one
segment; ``variation_of_information`` ignores nothing by default (``ignore_labels=()``), so
membrane pixels would be scored as one big extra "cell" unless ``ignore_labels=(0,)`` is passed.
We therefore build the contingency table with NumPy; the tests check it against scikit-image.
The segments of steps 1 and 2 are :func:`helpers.instances.from_boundary_mask` and
:func:`helpers.instances.from_boundaries`, the same functions that turn a membrane prediction into
cells anywhere else.

**More than two classes.** :func:`class_table` scores masks of K classes (class numbers, or a
softmax output whose arg-max is the predicted class): IoU and Dice of every class and their mean
over the classes. **Objects.** :func:`instance_table` matches instance labels at IoU >= 0.5 and
reports precision, recall, F1 and the mean IoU of the matched objects
(:func:`helpers.instances.match`).

Examples
--------
>>> from helpers import evaluate
>>> t = evaluate.choose_threshold(prob_val, y_val)                    # doctest: +SKIP
>>> table = evaluate.evaluate_predictions(prob_test, y_test, threshold=t)  # doctest: +SKIP
>>> table.loc["mean", ["iou_membrane", "v_rand", "v_info"]]           # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import math

import numpy as np
import pandas as pd

from helpers import instances
from helpers.metrics import class_dice_np, class_iou_np, dice_np, iou_np

__all__ = [
    "segmentation_table", "threshold_curve", "choose_threshold",
    "truth_segments", "predicted_segments", "segment_scores", "isbi_scores",
    "evaluate_predictions", "evaluate_model",
    "score_table", "score_table_json",
    "class_names_for", "class_table", "instance_table",
]

CURVE_THRESHOLDS = np.round(np.linspace(0.05, 0.95, 19), 6)
ISBI_THRESHOLDS = np.round(np.arange(0.1, 1.0, 0.1), 6)  # 0.1, 0.2, ..., 0.9


def _as_stack(array, name: str) -> np.ndarray:
    """Return a (N, H, W) float array from (N, H, W) or (N, H, W, 1)."""
    array = np.asarray(array)
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise ValueError(
            f"{name} has shape {array.shape}; expected (N, H, W) or (N, H, W, 1) — "
            "add a batch axis with x[None] for a single image"
        )
    return array.astype(np.float32, copy=False)


def _one_image(array, name: str) -> np.ndarray:
    """Return one image as (H, W) from (H, W) or (H, W, 1)."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise ValueError(f"{name} has shape {array.shape}; expected one image (H, W) or (H, W, 1)")
    return array


def _images(array, name: str) -> list[np.ndarray]:
    """One (H, W) float array per image, from a stack or from a list of images of any sizes."""
    if isinstance(array, (list, tuple)):
        return [_one_image(item, f"{name}[{i}]").astype(np.float32, copy=False) for i, item in enumerate(array)]
    return list(_as_stack(array, name))


def _prob_and_truth(prob, truth) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Pair probabilities with boolean truth masks (True = membrane), checking their sizes."""
    probs, truths = _images(prob, "prob"), _images(truth, "truth")
    if len(probs) != len(truths):
        raise ValueError(f"got {len(probs)} probability maps for {len(truths)} masks; pass one per image")
    for i, (p, t) in enumerate(zip(probs, truths)):
        if p.shape != t.shape:
            raise ValueError(
                f"image {i}: prob {p.shape} and truth {t.shape} differ in shape; predict at the masks' "
                "size (or resize the masks with helpers.data.resize(..., kind='mask'))"
            )
    return probs, [t > 0.5 for t in truths]


def segmentation_table(
    prob, truth, threshold: float = 0.5, names: Sequence[str] | None = None
) -> pd.DataFrame:
    """Per-image pixel scores and their mean.

    Membrane is predicted where ``prob > threshold``. Columns: ``iou_membrane``,
    ``dice_membrane``, ``iou_cell``, ``dice_cell`` (the same scores for the cell class) and
    ``pixel_error`` (fraction of pixels classified wrongly). An image with both masks empty for
    a class scores 1 for that class.

    Parameters
    ----------
    prob : array-like or list of arrays
        Membrane probabilities ``(N, H, W)`` or ``(N, H, W, 1)``, or a list of ``(H, W[, 1])``
        arrays when the images differ in size.
    truth : array-like or list of arrays
        True masks, same shapes, 1 = membrane.
    threshold : float, default 0.5
        Binarisation threshold.
    names : sequence of str, optional
        Row labels for the images (default ``"0"``, ``"1"``, ...).

    Returns
    -------
    pandas.DataFrame
        One row per image plus a final ``"mean"`` row (mean over images).

    Examples
    --------
    >>> import numpy as np
    >>> y = np.zeros((2, 8, 8)); y[:, 4] = 1
    >>> float(segmentation_table(y, y).loc["mean", "iou_membrane"])
    1.0
    """
    prob, truth = _prob_and_truth(prob, truth)
    names = [str(i) for i in range(len(prob))] if names is None else [str(n) for n in names]
    if len(names) != len(prob):
        raise ValueError(f"got {len(names)} names for {len(prob)} images; pass one per image")
    rows = []
    for p, t in zip(prob, truth):
        p = p > threshold
        rows.append({
            "iou_membrane": iou_np(p, t),
            "dice_membrane": dice_np(p, t),
            "iou_cell": iou_np(~p, ~t),
            "dice_cell": dice_np(~p, ~t),
            "pixel_error": float(np.mean(p != t)),
        })
    table = pd.DataFrame(rows, index=pd.Index(names, name="image"))
    table.loc["mean"] = table.mean()
    return table


def score_table(preds: Sequence[np.ndarray], truths: Sequence[np.ndarray], names: Sequence[str],
                threshold: float = 0.5) -> pd.DataFrame:
    """Per-image IoU, Dice and pixel error of the foreground (value 1), with a ``"mean"`` row.

    The scores of your own images (``python -m helpers train`` and ``evaluate``): the
    foreground columns of :func:`segmentation_table`, named ``iou``, ``dice``, ``pixel_error``.

    Parameters
    ----------
    preds
        Probabilities or binary masks, ``(H, W)`` each (foreground where ``> threshold``);
        images may differ in size.
    truths
        True masks of the same shapes, 1 = foreground.
    names
        Row labels, one per image.
    threshold
        Binarisation threshold.

    Raises
    ------
    ValueError
        Not one name per image, or prediction and truth of different sizes.

    Examples
    --------
    >>> y = np.zeros((8, 8)); y[4] = 1
    >>> score_table([y], [y], ["a"]).loc["mean"].tolist()
    [1.0, 1.0, 0.0]
    """
    table = segmentation_table(list(preds), list(truths), threshold, names)
    table = table[["iou_membrane", "dice_membrane", "pixel_error"]]
    table.columns = ["iou", "dice", "pixel_error"]
    return table


def score_table_json(table: pd.DataFrame) -> dict:
    """A table with a ``"mean"`` row as JSON-ready ``{"images": [...], "mean": {...}}``.

    Each image becomes ``{"image": <row label>, <column>: float, ...}``, in the table's order; a
    score that is not defined (NaN, e.g. a class in neither mask) becomes ``None`` (JSON null).

    Examples
    --------
    >>> y = np.zeros((8, 8)); y[4] = 1
    >>> score_table_json(score_table([y], [y], ["a"]))["images"]
    [{'image': 'a', 'iou': 1.0, 'dice': 1.0, 'pixel_error': 0.0}]
    """
    def number(value) -> float | None:
        value = float(value)
        return None if math.isnan(value) else value

    rows = [{"image": name, **{k: number(v) for k, v in row.items()}}
            for name, row in table.drop(index="mean").iterrows()]
    return {"images": rows, "mean": {k: number(v) for k, v in table.loc["mean"].items()}}


def class_names_for(num_classes: int, names=None) -> list[str]:
    """``names`` as a list, checked to name ``num_classes`` classes; default ``"class 0"``, ``"class 1"``, ...

    Raises
    ------
    ValueError
        Not one name per class, or a name used twice.

    Examples
    --------
    >>> class_names_for(3)
    ['class 0', 'class 1', 'class 2']
    """
    if names is None:
        return [f"class {k}" for k in range(num_classes)]
    names = [str(name) for name in names]
    if len(names) != num_classes or len(set(names)) != len(names):
        raise ValueError(f"need {num_classes} different class names, one per class in the order of the class "
                         f"numbers 0..{num_classes - 1}; got {names}.")
    return names


def _class_maps(array, name: str, num_classes: int) -> list[np.ndarray]:
    """One (H, W) int array of class numbers per image, from class numbers or K-channel probabilities.

    A list holds one image each: ``(H, W)`` or ``(H, W, 1)`` class numbers, or ``(H, W, K)``
    probabilities. An array is a batch: ``(N, H, W)`` or ``(N, H, W, 1)`` class numbers, or
    ``(N, H, W, K)`` probabilities.
    """
    from helpers.predict import class_map

    def one(item, label: str) -> np.ndarray:
        item = np.asarray(item)
        if item.ndim == 3 and item.shape[-1] > 1:  # probabilities of the classes: arg-max
            if item.shape[-1] != num_classes:
                raise ValueError(f"{label} has {item.shape[-1]} channels for {num_classes} classes; pass the "
                                 f"probabilities of every class (a softmax output) or class numbers.")
            return class_map(item).astype(np.int64)
        item = _one_image(item, label)
        if item.dtype.kind == "f" and not np.array_equal(item, np.round(item)):
            raise ValueError(f"{label} holds fractional values; pass class numbers 0..K-1, or the probabilities "
                             f"of all K classes (H, W, K).")
        return item.astype(np.int64)

    if isinstance(array, (list, tuple)):
        return [one(item, f"{name}[{i}]") for i, item in enumerate(array)]
    array = np.asarray(array)
    if array.ndim not in (2, 3, 4):
        raise ValueError(f"{name} has shape {array.shape}; expected a batch (N, H, W[, 1]) of class numbers, "
                         f"(N, H, W, K) of probabilities, or a list of images.")
    if array.ndim == 2:
        return [one(array, name)]
    return [one(item, f"{name}[{i}]") for i, item in enumerate(array)]


def class_table(pred, truth, class_names, names: Sequence[str] | None = None,
                include_background: bool = True) -> pd.DataFrame:
    """Per-image IoU and Dice of every class, their mean over the classes, and the pixel error.

    The predicted class of a pixel is the arg-max of the probabilities (a softmax output) or the
    class number given. Columns: ``iou_<class>`` and ``dice_<class>`` for every class,
    ``mean_iou`` and ``mean_dice`` (the mean over the classes of that image) and ``pixel_error``
    (fraction of pixels given the wrong class); the last row, ``"mean"``, is the mean over the
    images. A class in neither the true nor the predicted mask of an image is left out of that
    image's scores (NaN), and of the means: in a multi-class image most classes are often absent,
    and counting each absence as a perfect 1 would flatter the scores. (Binary tables,
    :func:`segmentation_table`, keep the package's older convention: both empty = 1.)

    Parameters
    ----------
    pred : array-like or list of arrays
        Probabilities ``(N, H, W, K)`` or class numbers ``(N, H, W, 1)``, or a list of ``(H, W, K)``
        or ``(H, W)`` arrays when the images differ in size.
    truth : array-like or list of arrays
        True class numbers 0..K-1, ``(N, H, W, 1)`` or a list of ``(H, W)``.
    class_names : sequence of str
        One name per class, in the order of the class numbers; K = its length.
    names : sequence of str, optional
        Row labels for the images (default ``"0"``, ``"1"``, ...).
    include_background : bool, default True
        Whether class 0 counts in ``mean_iou`` and ``mean_dice`` (its own columns are always there).

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    ValueError
        Images that differ in number or size, class numbers outside 0..K-1, or not one name per image.

    Examples
    --------
    >>> truth = np.array([[0, 1, 1, 2]]); pred = np.array([[0, 1, 2, 2]])
    >>> table = class_table([pred], [truth], ["background", "cell", "nucleus"])
    >>> table.loc["mean", ["iou_cell", "iou_nucleus", "mean_iou", "pixel_error"]].round(3).tolist()
    [0.5, 0.5, 0.667, 0.25]
    """
    class_names = [str(name) for name in class_names]
    num_classes = len(class_names)
    if num_classes < 2:
        raise ValueError(f"class_names must name at least two classes, got {class_names}.")
    preds, truths = _class_maps(pred, "pred", num_classes), _class_maps(truth, "truth", num_classes)
    if len(preds) != len(truths):
        raise ValueError(f"got {len(preds)} predictions for {len(truths)} true masks; pass one per image")
    names = [str(i) for i in range(len(preds))] if names is None else [str(n) for n in names]
    if len(names) != len(preds):
        raise ValueError(f"got {len(names)} names for {len(preds)} images; pass one per image")
    first = 0 if include_background else 1
    rows = []
    for i, (p, t) in enumerate(zip(preds, truths)):
        try:  # class_iou_np checks shapes and class numbers
            iou, dice = class_iou_np(p, t, num_classes), class_dice_np(p, t, num_classes)
        except ValueError as error:
            raise ValueError(f"image {names[i]}: {error}") from None
        row = {f"iou_{name}": value for name, value in zip(class_names, iou)}
        row.update({f"dice_{name}": value for name, value in zip(class_names, dice)})
        with np.errstate(all="ignore"):
            row["mean_iou"] = float(np.nanmean(iou[first:])) if np.isfinite(iou[first:]).any() else math.nan
            row["mean_dice"] = float(np.nanmean(dice[first:])) if np.isfinite(dice[first:]).any() else math.nan
        row["pixel_error"] = float(np.mean(p != t))
        rows.append(row)
    table = pd.DataFrame(rows, index=pd.Index(names, name="image"))
    table.loc["mean"] = table.mean()
    return table


def instance_table(pred_labels, truth_labels, names: Sequence[str] | None = None,
                   iou_threshold: float = 0.5) -> pd.DataFrame:
    """Per-image instance matching at IoU >= ``iou_threshold`` (:func:`helpers.instances.match`).

    Columns ``n_true``, ``n_pred``, ``tp``, ``fp``, ``fn``, ``precision``, ``recall``, ``f1`` and
    ``mean_matched_iou``; the last row, ``"mean"``, is the mean over the images (images without
    matched objects are left out of the mean of ``mean_matched_iou``).

    Parameters
    ----------
    pred_labels, truth_labels : sequence of np.ndarray
        Instance-label images ``(H, W)`` (0 = background), one pair per image; a stack
        ``(N, H, W)`` works too.
    names : sequence of str, optional
        Row labels (default ``"0"``, ``"1"``, ...).
    iou_threshold : float, default 0.5

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> truth = np.array([[1, 1, 0, 2, 2]]); pred = np.array([[1, 1, 0, 0, 0]])
    >>> instance_table([pred], [truth]).loc["mean", ["tp", "fn", "precision", "recall"]].tolist()
    [1.0, 1.0, 1.0, 0.5]
    """
    preds, truths = list(pred_labels), list(truth_labels)
    if len(preds) != len(truths):
        raise ValueError(f"got {len(preds)} predicted label images for {len(truths)} true ones; pass one per image")
    names = [str(i) for i in range(len(preds))] if names is None else [str(n) for n in names]
    if len(names) != len(preds):
        raise ValueError(f"got {len(names)} names for {len(preds)} images; pass one per image")
    rows = [instances.match(p, t, iou_threshold) for p, t in zip(preds, truths)]
    table = pd.DataFrame(rows, index=pd.Index(names, name="image"))
    table.loc["mean"] = table.mean()
    return table


def threshold_curve(prob, truth, thresholds=CURVE_THRESHOLDS) -> pd.DataFrame:
    """Mean (over images) membrane IoU and Dice for each binarisation threshold.

    Parameters
    ----------
    prob : array-like or list of arrays
        Membrane probabilities ``(N, H, W[, 1])``, or a list of ``(H, W[, 1])`` arrays of any
        sizes.
    truth : array-like or list of arrays
        True masks, same shapes, 1 = membrane.
    thresholds : sequence of float, default 0.05, 0.10, ..., 0.95

    Returns
    -------
    pandas.DataFrame
        Columns ``threshold``, ``iou_membrane``, ``dice_membrane``; one row per threshold.

    Examples
    --------
    >>> curve = threshold_curve(prob_val, y_val)          # doctest: +SKIP
    >>> curve.plot(x="threshold", y="iou_membrane")       # doctest: +SKIP
    """
    prob, truth = _prob_and_truth(prob, truth)
    rows = []
    for t in thresholds:
        pred = [p > t for p in prob]
        rows.append({
            "threshold": float(t),
            "iou_membrane": float(np.mean([iou_np(p, y) for p, y in zip(pred, truth)])),
            "dice_membrane": float(np.mean([dice_np(p, y) for p, y in zip(pred, truth)])),
        })
    return pd.DataFrame(rows)


def choose_threshold(prob_val, y_val, thresholds=CURVE_THRESHOLDS) -> float:
    """The threshold with the best mean membrane IoU on validation slices.

    Choose it on validation data, then report scores on the held-out slices with it — choosing
    it on the held-out slices would make their scores optimistic.

    Parameters
    ----------
    prob_val : array-like
        Membrane probabilities on the validation slices ``(N, H, W[, 1])``.
    y_val : array-like
        Their true masks, 1 = membrane.
    thresholds : sequence of float, default 0.05, 0.10, ..., 0.95

    Returns
    -------
    float
        The best threshold (the lowest one if several tie).

    Examples
    --------
    >>> t = choose_threshold(model.predict(x_val), y_val)   # doctest: +SKIP
    """
    curve = threshold_curve(prob_val, y_val, thresholds)
    return float(curve.loc[curve["iou_membrane"].idxmax(), "threshold"])


# ------------------------------------------------------------------ ISBI 2012 scores


def truth_segments(truth_image: np.ndarray) -> np.ndarray:
    """Label the true cells: 4-connected components of ``truth == 0`` (:func:`helpers.instances.from_boundary_mask`).

    Parameters
    ----------
    truth_image : np.ndarray
        One mask ``(H, W)`` (or ``(H, W, 1)``), 1 = membrane.

    Returns
    -------
    np.ndarray
        int label image ``(H, W)``: 0 = membrane, 1..K = cells.

    Examples
    --------
    >>> truth_segments(np.array([[0, 0, 1, 0]]))
    array([[1, 1, 0, 2]], dtype=int32)
    """
    return instances.from_boundary_mask(_one_image(truth_image, "truth_image"))


def predicted_segments(prob_image: np.ndarray, threshold: float) -> np.ndarray:
    """Split a membrane probability map into cells by a marker watershed (:func:`helpers.instances.from_boundaries`).

    Markers are the 4-connected components of ``prob <= threshold``; the watershed floods the
    probability from them and leaves 1-pixel lines (label 0) where two regions meet, so the
    predicted membranes are thinned to lines or removed.

    Parameters
    ----------
    prob_image : np.ndarray
        Membrane probabilities of one image ``(H, W)`` (or ``(H, W, 1)``).
    threshold : float
        Pixels with probability <= threshold seed the cells.

    Returns
    -------
    np.ndarray
        int label image ``(H, W)``: 0 = dividing line, 1..K = predicted cells.

    Examples
    --------
    >>> predicted_segments(np.array([[0.1, 0.9, 0.9, 0.1]]), 0.5)
    array([[1, 1, 0, 2]], dtype=int32)
    """
    return instances.from_boundaries(_one_image(prob_image, "prob_image"), threshold)


def _entropy(counts: np.ndarray) -> float:
    """Shannon entropy (bits) of the distribution given by ``counts``."""
    p = counts / counts.sum()
    return float(-np.sum(p * np.log2(p)))


def segment_scores(truth_labels: np.ndarray, pred_labels: np.ndarray) -> dict[str, float]:
    """Foreground-restricted Rand and information scores of two label images.

    Only pixels with ``truth_labels > 0`` count. Predicted label 0 (dividing lines) inside the
    foreground is scored as one singleton segment per pixel. With ``n_ij`` the number of pixels
    in predicted segment ``i`` and true segment ``j`` and ``a_i``, ``b_j`` its row and column
    sums: ``V_rand = 2 Σ n_ij² / (Σ a_i² + Σ b_j²)``, ``V_rand_split = Σ n_ij² / Σ b_j²``,
    ``V_rand_merge = Σ n_ij² / Σ a_i²``; ``V_info = 2 I / (H(S) + H(T))``,
    ``V_info_split = I / H(S)``, ``V_info_merge = I / H(T)`` (S predicted, T true).

    Parameters
    ----------
    truth_labels : np.ndarray
        int label image, 0 = ignored (membrane).
    pred_labels : np.ndarray
        int label image of the same shape, 0 = predicted boundary.

    Returns
    -------
    dict
        ``v_rand``, ``v_rand_split``, ``v_rand_merge``, ``v_info``, ``v_info_split``,
        ``v_info_merge``; all in [0, 1]. NaN when the truth has no foreground. An information
        ratio whose entropies are all 0 (a single segment on both sides) is 1.

    Examples
    --------
    >>> truth = np.array([[1, 1, 0, 2, 2]]); merged = np.array([[1, 1, 1, 1, 1]])
    >>> round(segment_scores(truth, merged)["v_rand"], 4)   # 2*8 / (16 + 8)
    0.6667
    """
    truth_labels, pred_labels = np.asarray(truth_labels), np.asarray(pred_labels)
    if truth_labels.shape != pred_labels.shape:
        raise ValueError(
            f"label images differ in shape: truth {truth_labels.shape}, pred {pred_labels.shape}"
        )
    foreground = truth_labels > 0
    if not foreground.any():
        return dict.fromkeys(
            ["v_rand", "v_rand_split", "v_rand_merge", "v_info", "v_info_split", "v_info_merge"],
            float("nan"),
        )
    t = truth_labels[foreground].astype(np.int64)
    s = pred_labels[foreground].astype(np.int64)
    lines = s == 0  # each line pixel becomes its own segment
    s[lines] = s.max() + 1 + np.arange(lines.sum())

    _, n_ij = np.unique(s * (t.max() + 1) + t, return_counts=True)  # joint counts
    _, a = np.unique(s, return_counts=True)  # predicted segment sizes
    _, b = np.unique(t, return_counts=True)  # true segment sizes
    n_ij, a, b = n_ij.astype(np.float64), a.astype(np.float64), b.astype(np.float64)

    sum_ij2, sum_a2, sum_b2 = np.sum(n_ij**2), np.sum(a**2), np.sum(b**2)
    h_s, h_t, h_st = _entropy(a), _entropy(b), _entropy(n_ij)
    mutual = max(h_s + h_t - h_st, 0.0)  # clip float round-off

    def ratio(num: float, den: float) -> float:
        return 1.0 if den <= 1e-12 else float(min(num / den, 1.0))

    return {
        "v_rand": float(2 * sum_ij2 / (sum_a2 + sum_b2)),
        "v_rand_split": float(sum_ij2 / sum_b2),
        "v_rand_merge": float(sum_ij2 / sum_a2),
        "v_info": ratio(2 * mutual, h_s + h_t),
        "v_info_split": ratio(mutual, h_s),
        "v_info_merge": ratio(mutual, h_t),
    }


def isbi_scores(prob_image, truth_image, thresholds=ISBI_THRESHOLDS) -> dict[str, float]:
    """ISBI 2012 V_rand and V_info of one image, each the best over a threshold sweep.

    For every threshold the probability map is split into cells by
    :func:`predicted_segments` and compared with :func:`truth_segments` by
    :func:`segment_scores`; as in the challenge, the maximum over thresholds is reported
    (V_rand and V_info may peak at different thresholds). Each threshold costs one watershed,
    roughly 0.1-1 s for a 512 x 512 slice on a laptop CPU.

    Parameters
    ----------
    prob_image : array-like
        Membrane probabilities of one image ``(H, W)`` or ``(H, W, 1)``.
    truth_image : array-like
        Its true mask, 1 = membrane.
    thresholds : sequence of float, default 0.1, 0.2, ..., 0.9

    Returns
    -------
    dict
        ``v_rand``, ``v_info`` (in [0, 1], higher is better), ``threshold`` (where V_rand
        peaks) and ``threshold_info`` (where V_info peaks).

    Examples
    --------
    >>> y = np.zeros((16, 16)); y[8] = 1                 # two cells split by a membrane
    >>> isbi_scores(y, y)["v_rand"]
    1.0
    """
    truth_labels = truth_segments(truth_image)
    prob_image = _one_image(prob_image, "prob_image").astype(np.float32)
    if prob_image.shape != truth_labels.shape:
        raise ValueError(
            f"prob {prob_image.shape} and truth {truth_labels.shape} differ in shape; pass "
            "one image each, at the same size"
        )
    scores = [segment_scores(truth_labels, predicted_segments(prob_image, t)) for t in thresholds]
    v_rand = [s["v_rand"] for s in scores]
    v_info = [s["v_info"] for s in scores]
    best_rand, best_info = int(np.nanargmax(v_rand)), int(np.nanargmax(v_info))
    return {
        "v_rand": float(v_rand[best_rand]),
        "v_info": float(v_info[best_info]),
        "threshold": float(thresholds[best_rand]),
        "threshold_info": float(thresholds[best_info]),
    }


def evaluate_predictions(
    prob,
    truth,
    threshold: float = 0.5,
    names: Sequence[str] | None = None,
    isbi_thresholds=ISBI_THRESHOLDS,
) -> pd.DataFrame:
    """Pixel scores and ISBI scores per image, with a ``"mean"`` row.

    Parameters
    ----------
    prob : array-like
        Membrane probabilities ``(N, H, W[, 1])``.
    truth : array-like
        True masks, same shape, 1 = membrane.
    threshold : float, default 0.5
        Binarisation threshold for the pixel scores (choose it with :func:`choose_threshold`
        on validation slices). The ISBI scores use their own sweep, ``isbi_thresholds``.
    names : sequence of str, optional
        Row labels for the images.
    isbi_thresholds : sequence of float, default 0.1, ..., 0.9

    Returns
    -------
    pandas.DataFrame
        Columns of :func:`segmentation_table` plus ``v_rand`` and ``v_info``.

    Examples
    --------
    >>> table = evaluate_predictions(model.predict(x_test), y_test, threshold=0.5)  # doctest: +SKIP
    """
    table = segmentation_table(prob, truth, threshold, names)
    prob, truth = _prob_and_truth(prob, truth)
    isbi = [isbi_scores(p, t, isbi_thresholds) for p, t in zip(prob, truth)]
    images = table.index[:-1]
    table.loc[images, "v_rand"] = [s["v_rand"] for s in isbi]
    table.loc[images, "v_info"] = [s["v_info"] for s in isbi]
    table.loc["mean", ["v_rand", "v_info"]] = table.loc[images, ["v_rand", "v_info"]].mean()
    return table


def evaluate_model(
    model, images, masks, threshold: float = 0.5, batch_size: int = 4,
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Predict ``images`` with ``model`` and score them with :func:`evaluate_predictions`.

    Parameters
    ----------
    model : keras.Model
        Maps ``(N, H, W, C)`` images to ``(N, H, W, 1)`` membrane probabilities.
    images : np.ndarray
        Images ``(N, H, W, C)``, float32 in [0, 1], at a size the model accepts.
    masks : np.ndarray
        True masks ``(N, H, W, 1)``, 1 = membrane.
    threshold : float, default 0.5
        Binarisation threshold for the pixel scores.
    batch_size : int, default 4
        Prediction batch size.
    names : sequence of str, optional
        Row labels for the images.

    Returns
    -------
    pandas.DataFrame
        Per-image and mean scores (see :func:`evaluate_predictions`).

    Examples
    --------
    >>> x_hold, y_hold = data.fixed_split(x, y)["holdout"]              # doctest: +SKIP
    >>> evaluate_model(model, x_hold, y_hold, threshold=t)              # doctest: +SKIP
    """
    prob = model.predict(images, batch_size=batch_size, verbose=0)
    return evaluate_predictions(prob, masks, threshold, names)

