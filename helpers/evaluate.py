"""Score membrane predictions: pixel scores, the threshold choice, and the ISBI 2012 scores of the cells.

Examples
--------
>>> t = choose_threshold(prob_val, y_val)                              # doctest: +SKIP
>>> table = evaluate_predictions(prob_test, y_test, threshold=t)       # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from helpers.metrics import dice_np, iou_np

__all__ = ["segmentation_table", "threshold_curve", "choose_threshold", "truth_segments", "predicted_segments",
           "segment_scores", "isbi_scores", "evaluate_predictions"]

_CURVE_THRESHOLDS = np.round(np.linspace(0.05, 0.95, 19), 6)
_ISBI_THRESHOLDS = np.round(np.arange(0.1, 1.0, 0.1), 6)  # 0.1, 0.2, ..., 0.9
_SCORE_NAMES = ("v_rand", "v_rand_split", "v_rand_merge", "v_info", "v_info_split", "v_info_merge")


def one_image(array, name: str) -> np.ndarray:
    """One image as ``(H, W)`` from ``(H, W)`` or ``(H, W, 1)``; a ValueError naming ``name`` otherwise.

    Examples
    --------
    >>> one_image(np.zeros((4, 5, 1)), "mask").shape
    (4, 5)
    """
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise ValueError(f"{name} has shape {array.shape}; expected one image (H, W) or (H, W, 1). "
                         f"Pass one image of a batch, e.g. {name}[0].")
    return array


def _images(array, name: str) -> list[np.ndarray]:
    """One (H, W) float32 array per image, from a stack (N, H, W[, 1]) or a list of images of any sizes."""
    if not isinstance(array, (list, tuple)):
        array = np.asarray(array)
        if array.ndim not in (3, 4) or array.ndim == 4 and array.shape[-1] != 1:
            raise ValueError(f"{name} has shape {array.shape}; expected (N, H, W) or (N, H, W, 1). Add a batch "
                             f"axis with {name}[None] for a single image.")
    return [one_image(item, f"{name}[{i}]").astype(np.float32, copy=False) for i, item in enumerate(array)]


def _prob_and_truth(prob, truth) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Pair probabilities with boolean truth masks (True = membrane), checking their sizes."""
    probs, truths = _images(prob, "prob"), _images(truth, "truth")
    if len(probs) != len(truths):
        raise ValueError(f"got {len(probs)} probability maps for {len(truths)} masks; pass one per image")
    for i, (p, t) in enumerate(zip(probs, truths)):
        if p.shape != t.shape:
            raise ValueError(f"image {i}: prob {p.shape} and truth {t.shape} differ in shape; predict at the "
                             f"masks' size (or resize the masks with helpers.data.resize(..., kind='mask'))")
    return probs, [t > 0.5 for t in truths]


def segmentation_table(prob, truth, threshold: float = 0.5, names: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-image pixel scores and their mean (membrane where ``prob > threshold``).

    Parameters
    ----------
    prob, truth : array-like or list of arrays
        Membrane probabilities ``(N, H, W[, 1])`` (or a list of ``(H, W[, 1])`` of any sizes) and the
        true masks of the same shapes, 1 = membrane.
    threshold, names : float, sequence of str
        Binarisation threshold; row labels (default ``"0"``, ``"1"``, ...).

    Returns
    -------
    pandas.DataFrame
        Columns ``iou_membrane``, ``dice_membrane``, ``iou_cell``, ``dice_cell``, ``pixel_error``;
        one row per image and a last ``"mean"`` row. A class empty in both masks scores 1.

    Examples
    --------
    >>> y = np.zeros((2, 8, 8)); y[:, 4] = 1
    >>> float(segmentation_table(y, y).loc["mean", "iou_membrane"])
    1.0
    """
    prob, truth = _prob_and_truth(prob, truth)
    names = [str(i) for i in range(len(prob))] if names is None else [str(n) for n in names]
    if len(names) != len(prob):
        raise ValueError(f"got {len(names)} names for {len(prob)} images; pass one name per image")
    rows = []
    for p, t in zip(prob, truth):
        p = p > threshold
        rows.append({"iou_membrane": iou_np(p, t), "dice_membrane": dice_np(p, t), "iou_cell": iou_np(~p, ~t),
                     "dice_cell": dice_np(~p, ~t), "pixel_error": float(np.mean(p != t))})
    table = pd.DataFrame(rows, index=pd.Index(names, name="image"))
    table.loc["mean"] = table.mean()
    return table


def threshold_curve(prob, truth, thresholds=_CURVE_THRESHOLDS) -> pd.DataFrame:
    """A table of the mean (over images) ``iou_membrane`` and ``dice_membrane`` at each ``threshold``.

    Parameters
    ----------
    prob, truth, thresholds
        As for :func:`segmentation_table`; the thresholds (default 0.05, 0.10, ..., 0.95).

    Examples
    --------
    >>> curve = threshold_curve(prob_val, y_val)          # doctest: +SKIP
    """
    prob, truth = _prob_and_truth(prob, truth)
    rows = []
    for t in thresholds:
        pred = [p > t for p in prob]
        rows.append({"threshold": float(t),
                     "iou_membrane": float(np.mean([iou_np(p, y) for p, y in zip(pred, truth)])),
                     "dice_membrane": float(np.mean([dice_np(p, y) for p, y in zip(pred, truth)]))})
    return pd.DataFrame(rows)


def choose_threshold(prob_val, y_val, thresholds=_CURVE_THRESHOLDS) -> float:
    """The threshold (float) with the best mean membrane IoU on validation images (the lowest if several tie).

    Parameters
    ----------
    prob_val, y_val, thresholds
        Validation probabilities and masks, and the thresholds, as for :func:`threshold_curve`.

    Examples
    --------
    >>> t = choose_threshold(model.predict(x_val), y_val)   # doctest: +SKIP
    """
    curve = threshold_curve(prob_val, y_val, thresholds)
    return float(curve.loc[curve["iou_membrane"].idxmax(), "threshold"])


def truth_segments(mask) -> np.ndarray:
    """The true cells of one membrane (or any boundary) mask ``(H, W[, 1])``: 4-connected regions of ``mask <= 0.5``.

    Returns
    -------
    np.ndarray
        int32 ``(H, W)``: 0 = membrane, 1..n = cells.

    Examples
    --------
    >>> truth_segments(np.array([[0, 0, 1, 0]]))
    array([[1, 1, 0, 2]], dtype=int32)
    """
    from skimage.measure import label

    return label(one_image(mask, "mask") <= 0.5, connectivity=1).astype(np.int32)


def predicted_segments(prob, threshold: float = 0.5) -> np.ndarray:
    """Cells from a membrane probability: a watershed of ``prob`` that leaves 1-pixel dividing lines.

    Parameters
    ----------
    prob, threshold
        Membrane (or any boundary) probabilities of one image, ``(H, W[, 1])``; the 4-connected regions
        of ``prob <= threshold`` seed the cells.

    Returns
    -------
    np.ndarray
        int32 ``(H, W)``: 0 = dividing line, 1..n = cells.

    Examples
    --------
    >>> predicted_segments(np.array([[0.1, 0.9, 0.9, 0.1]]), 0.5)
    array([[1, 1, 0, 2]], dtype=int32)
    """
    from skimage.measure import label
    from skimage.segmentation import watershed

    prob = one_image(prob, "prob").astype(np.float32)
    markers = label(prob <= threshold, connectivity=1)
    return watershed(prob, markers, connectivity=1, watershed_line=True).astype(np.int32)


def segment_scores(truth_labels: np.ndarray, pred_labels: np.ndarray) -> dict[str, float]:
    """Rand and information scores of two label images, counting only pixels with ``truth_labels > 0``.

    Parameters
    ----------
    truth_labels, pred_labels : np.ndarray
        int labels of one image: 0 = ignored (membrane); 0 = dividing line, each pixel a segment of its own.

    Returns
    -------
    dict
        ``v_rand``, ``v_rand_split``, ``v_rand_merge``, ``v_info``, ``v_info_split``, ``v_info_merge``
        in [0, 1] (1 = perfect); NaN when the truth has no foreground.

    Examples
    --------
    >>> truth = np.array([[1, 1, 0, 2, 2]]); merged = np.array([[1, 1, 1, 1, 1]])
    >>> round(segment_scores(truth, merged)["v_rand"], 4)   # 2*8 / (16 + 8)
    0.6667
    """
    truth_labels, pred_labels = np.asarray(truth_labels), np.asarray(pred_labels)
    if truth_labels.shape != pred_labels.shape:
        raise ValueError(f"truth_labels {truth_labels.shape} and pred_labels {pred_labels.shape} differ in "
                         f"shape; pass the labels of one image each")
    foreground = truth_labels > 0
    if not foreground.any():
        return dict.fromkeys(_SCORE_NAMES, float("nan"))
    t = truth_labels[foreground].astype(np.int64)
    s = pred_labels[foreground].astype(np.int64)
    lines = s == 0  # each line pixel becomes its own segment
    s[lines] = s.max() + 1 + np.arange(lines.sum())
    _, n_ij = np.unique(s * (t.max() + 1) + t, return_counts=True)  # joint counts
    a, b = np.unique(s, return_counts=True)[1], np.unique(t, return_counts=True)[1]
    n_ij, a, b = n_ij.astype(np.float64), a.astype(np.float64), b.astype(np.float64)
    sum_ij2, sum_a2, sum_b2 = np.sum(n_ij**2), np.sum(a**2), np.sum(b**2)
    entropy = [float(-np.sum(c / c.sum() * np.log2(c / c.sum()))) for c in (a, b, n_ij)]  # bits
    h_s, h_t, mutual = entropy[0], entropy[1], max(entropy[0] + entropy[1] - entropy[2], 0.0)  # clip round-off

    def ratio(num: float, den: float) -> float:
        return 1.0 if den <= 1e-12 else float(min(num / den, 1.0))

    return {"v_rand": float(2 * sum_ij2 / (sum_a2 + sum_b2)), "v_rand_split": float(sum_ij2 / sum_b2),
            "v_rand_merge": float(sum_ij2 / sum_a2), "v_info": ratio(2 * mutual, h_s + h_t),
            "v_info_split": ratio(mutual, h_s), "v_info_merge": ratio(mutual, h_t)}


def isbi_scores(prob_image, truth_image, thresholds=_ISBI_THRESHOLDS) -> dict[str, float]:
    """ISBI 2012 V_rand and V_info of one image, each the best over a threshold sweep.

    Parameters
    ----------
    prob_image, truth_image, thresholds
        Membrane probabilities of one image ``(H, W[, 1])``, its true mask (1 = membrane), the sweep (0.1, ..., 0.9).

    Returns
    -------
    dict
        ``v_rand``, ``v_info`` (higher is better), ``threshold`` (where V_rand peaks) and
        ``threshold_info`` (where V_info peaks).

    Examples
    --------
    >>> y = np.zeros((16, 16)); y[8] = 1                 # two cells split by a membrane
    >>> isbi_scores(y, y)["v_rand"]
    1.0
    """
    truth_labels = truth_segments(one_image(truth_image, "truth_image"))
    prob_image = one_image(prob_image, "prob_image").astype(np.float32)
    if prob_image.shape != truth_labels.shape:
        raise ValueError(f"prob_image {prob_image.shape} and truth_image {truth_labels.shape} differ in shape; "
                         f"pass one image each, at the same size")
    scores = [segment_scores(truth_labels, predicted_segments(prob_image, t)) for t in thresholds]
    v_rand, v_info = [s["v_rand"] for s in scores], [s["v_info"] for s in scores]
    best_rand, best_info = int(np.nanargmax(v_rand)), int(np.nanargmax(v_info))
    return {"v_rand": float(v_rand[best_rand]), "v_info": float(v_info[best_info]),
            "threshold": float(thresholds[best_rand]), "threshold_info": float(thresholds[best_info])}


def evaluate_predictions(prob, truth, threshold: float = 0.5, names: Sequence[str] | None = None,
                         isbi_thresholds=_ISBI_THRESHOLDS) -> pd.DataFrame:
    """Pixel scores (:func:`segmentation_table`) and ISBI scores per image, with a ``"mean"`` row.

    Parameters
    ----------
    prob, truth, threshold, names, isbi_thresholds
        As for :func:`segmentation_table` (``threshold`` from :func:`choose_threshold`); the ISBI scores' sweep.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`segmentation_table` plus ``v_rand`` and ``v_info``.

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
