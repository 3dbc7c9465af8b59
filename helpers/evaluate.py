"""Score membrane predictions: pixel scores, the threshold choice, and the ISBI 2012 scores of the cells.

Examples
--------
>>> t, isbi_t = choose_threshold(prob_val, y_val), choose_isbi_thresholds(prob_val, y_val)  # doctest: +SKIP
>>> table = evaluate_predictions(prob_test, y_test, t, isbi_t)         # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from helpers.metrics import dice_np, iou_np

__all__ = ["segmentation_table", "threshold_curve", "choose_threshold", "truth_segments", "predicted_segments",
           "segment_scores", "isbi_curve", "choose_isbi_thresholds", "challenge_scores", "isbi_scores",
           "evaluate_predictions"]

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
    """Per image and the ``"mean"``: ``iou_membrane``, ``dice_membrane``, ``iou_cell``, ``dice_cell``, ``pixel_error``.

    Parameters
    ----------
    prob, truth, threshold, names
        Membrane probabilities ``(N, H, W[, 1])`` (or a list of ``(H, W[, 1])`` of any sizes), the true masks
        (1 = membrane), the threshold (membrane where ``prob > threshold``), row labels (default ``"0"``, ...).
        A class empty in both masks scores 1.

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
    """The threshold of the best mean membrane IoU of :func:`threshold_curve` (lowest of ties) on VALIDATION images.

    Examples
    --------
    >>> t = choose_threshold(model.predict(x_val), y_val)   # doctest: +SKIP
    """
    curve = threshold_curve(prob_val, y_val, thresholds)
    return float(curve.loc[curve["iou_membrane"].idxmax(), "threshold"])


def truth_segments(mask) -> np.ndarray:
    """The true cells (int32, 0 = membrane) of a boundary mask ``(H, W[, 1])``: 4-connected regions of ``mask <= 0.5``.

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
        Boundary probabilities of one image ``(H, W[, 1])``; the 4-connected regions of ``prob <= threshold``
        seed the cells. Returns int32 ``(H, W)``: 0 = dividing line, 1..n = cells.

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
        Returns ``v_rand``, ``v_info`` and their ``_split``, ``_merge`` parts in [0, 1] (1 = perfect; NaN
        when the truth has no foreground).

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


def _isbi_pair(thresholds, name: str = "thresholds") -> tuple[float, float]:
    """(V_rand's, V_info's) threshold from a dict ``{"v_rand": t1, "v_info": t2}`` or one number for both."""
    pair = (-1.0, -1.0)  # None, a sweep, a dict without both keys: refused below
    if isinstance(thresholds, dict) and {"v_rand", "v_info"} <= set(thresholds):
        pair = (thresholds["v_rand"], thresholds["v_info"])
    elif isinstance(thresholds, (int, float, np.number)):
        pair = (thresholds, thresholds)
    if not all(0.0 <= float(t) <= 1.0 for t in pair):
        raise ValueError(f"{name}={thresholds!r}: pass one threshold in [0, 1], or the dict "
                         f"{{'v_rand': t1, 'v_info': t2}} that choose_isbi_thresholds(prob_val, y_val) chooses on "
                         f"validation images (a held-out score never takes the best of a sweep on its own images)")
    return float(pair[0]), float(pair[1])


def isbi_curve(prob, truth, thresholds=None) -> pd.DataFrame:
    """A table (columns ``threshold``, ``v_rand``, ``v_info``) of the mean over images at each threshold.

    Parameters
    ----------
    prob, truth, thresholds
        As for :func:`threshold_curve`; the sweep of the watershed's seed threshold (default 0.1, ..., 0.9).

    Examples
    --------
    >>> y = np.zeros((1, 16, 16)); y[:, 8] = 1
    >>> float(isbi_curve(y, y, [0.5]).loc[0, "v_rand"])
    1.0
    """
    prob, truth = _prob_and_truth(prob, truth)
    thresholds = _ISBI_THRESHOLDS if thresholds is None else [float(t) for t in np.atleast_1d(thresholds)]
    labels = [truth_segments(t) for t in truth]
    rows = [pd.DataFrame([segment_scores(y, predicted_segments(p, t)) for p, y in zip(prob, labels)])
            for t in thresholds]
    return pd.DataFrame([{"threshold": float(t), "v_rand": float(np.nanmean(r["v_rand"])),
                          "v_info": float(np.nanmean(r["v_info"]))} for t, r in zip(thresholds, rows)])


def choose_isbi_thresholds(prob, truth, thresholds=None) -> dict[str, float]:
    """``{"v_rand": t1, "v_info": t2}``: each metric's best threshold of :func:`isbi_curve` on VALIDATION images.

    Examples
    --------
    >>> choose_isbi_thresholds(prob_val, y_val)            # doctest: +SKIP
    {'v_rand': 0.7, 'v_info': 0.5}
    """
    best = challenge_scores(prob, truth, thresholds)
    return {"v_rand": best["threshold_rand"], "v_info": best["threshold_info"]}


def challenge_scores(prob, truth, thresholds=None) -> dict[str, float]:
    """"The challenge's way": per metric ONE threshold for the whole set, the best of :func:`isbi_curve` on it.

    Optimistic (chosen on the images it scores): label it so, never as a held-out score.
    Returns ``v_rand``, ``v_info`` and their ``threshold_rand``, ``threshold_info``.

    Examples
    --------
    >>> y = np.zeros((2, 16, 16)); y[:, 8] = 1
    >>> challenge_scores(y, y)["v_rand"]
    1.0
    """
    curve = isbi_curve(prob, truth, thresholds)
    best = {m: curve.loc[curve[m].idxmax()] for m in ("v_rand", "v_info")}  # the lowest threshold if several tie
    return {"v_rand": float(best["v_rand"]["v_rand"]), "v_info": float(best["v_info"]["v_info"]),
            "threshold_rand": float(best["v_rand"]["threshold"]), "threshold_info": float(best["v_info"]["threshold"])}


def isbi_scores(prob_image, truth_image, thresholds) -> dict[str, float]:
    """ISBI 2012 ``v_rand``, ``v_info`` (and the ``threshold_rand``, ``threshold_info`` used) of one image.

    Parameters
    ----------
    prob_image, truth_image, thresholds
        Membrane probabilities ``(H, W[, 1])``, the true mask (1 = membrane), and ``{"v_rand": t1, "v_info":
        t2}`` from :func:`choose_isbi_thresholds` on validation images (or one number for both): no sweep here.

    Examples
    --------
    >>> y = np.zeros((16, 16)); y[8] = 1                 # two cells split by a membrane
    >>> isbi_scores(y, y, {"v_rand": 0.5, "v_info": 0.5})["v_rand"]
    1.0
    """
    t_rand, t_info = _isbi_pair(thresholds)
    truth_labels = truth_segments(one_image(truth_image, "truth_image"))
    prob_image = one_image(prob_image, "prob_image").astype(np.float32)
    if prob_image.shape != truth_labels.shape:
        raise ValueError(f"prob_image {prob_image.shape} and truth_image {truth_labels.shape} differ in shape; "
                         f"pass one image each, at the same size")
    rand = segment_scores(truth_labels, predicted_segments(prob_image, t_rand))
    info = rand if t_info == t_rand else segment_scores(truth_labels, predicted_segments(prob_image, t_info))
    return {"v_rand": rand["v_rand"], "v_info": info["v_info"], "threshold_rand": t_rand, "threshold_info": t_info}


def evaluate_predictions(prob, truth, threshold: float = 0.5, isbi_thresholds=None,
                         names: Sequence[str] | None = None) -> pd.DataFrame:
    """Per image and their ``"mean"``: :func:`segmentation_table`'s columns and ``v_rand``, ``v_info``.

    Parameters
    ----------
    prob, truth, threshold, isbi_thresholds, names
        As for :func:`segmentation_table` and :func:`isbi_scores`; both thresholds chosen on validation
        images (:func:`choose_threshold`, :func:`choose_isbi_thresholds`).

    Examples
    --------
    >>> table = evaluate_predictions(prob_test, y_test, threshold=t, isbi_thresholds=isbi_t)  # doctest: +SKIP
    """
    _isbi_pair(isbi_thresholds, "isbi_thresholds")
    table = segmentation_table(prob, truth, threshold, names)
    prob, truth = _prob_and_truth(prob, truth)
    isbi = [isbi_scores(p, t, isbi_thresholds) for p, t in zip(prob, truth)]
    images = table.index[:-1]
    table.loc[images, "v_rand"], table.loc[images, "v_info"] = [s["v_rand"] for s in isbi], [s["v_info"] for s in isbi]
    table.loc["mean", ["v_rand", "v_info"]] = table.loc[images, ["v_rand", "v_info"]].mean()
    return table
