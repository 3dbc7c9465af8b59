"""From pixels to objects: instance labels from a U-Net's output, and how well they match the truth.

A U-Net classifies pixels; it "does not separate objects of the same type". An *instance-label
image* gives every object its own number (0 = background, 1..n = the objects). Three ways to get
one from a segmentation, for three kinds of images:

* **objects separated by boundaries** (cells separated by membranes, the ISBI data):
  :func:`from_boundaries` floods the boundary probability from the regions below a threshold (a
  marker watershed) until they meet, and :func:`from_boundary_mask` labels the regions of a true
  boundary mask. Both are the ISBI 2012 scores' own functions, :func:`helpers.evaluate.predicted_segments`
  and :func:`helpers.evaluate.truth_segments`, under the names this module uses;
* **blob-like objects on a background** (nuclei, cells on a dish): :func:`from_foreground` labels
  the connected foreground and splits touching blobs with a watershed on the distance to the
  background, dropping objects below a minimum size;
* **the three-class scheme**: train a 3-class U-Net on *background / object interior / object
  boundary* (:func:`to_three_classes` makes those masks from instance labels; ``python -m helpers
  train --instances-to-classes`` does it for a folder). Touching objects are then separated by a
  predicted boundary, and :func:`from_three_classes` turns the prediction back into instances.

:func:`match` scores instance labels against true ones: a predicted and a true object match when
their intersection over union (IoU) is at least 0.5, each object matching at most one other;
then precision, recall, F1 and the mean IoU of the matched pairs.

Labels use 4-connectivity (pixels sharing an edge) throughout, as the ISBI scores do.

Examples
--------
>>> import numpy as np
>>> truth = np.zeros((8, 12), int); truth[1:7, 1:6] = 1; truth[1:7, 6:11] = 2   # two touching boxes
>>> classes = to_three_classes(truth)                       # 0 background, 1 interior, 2 boundary
>>> cells = from_three_classes(classes, min_size=1)
>>> int(cells.max()), match(cells, truth)["f1"]
(2, 1.0)
"""

from __future__ import annotations

import numpy as np

from helpers.evaluate import one_image as _one_image
from helpers.evaluate import predicted_segments, truth_segments

__all__ = [
    "THREE_CLASSES", "from_boundaries", "from_boundary_mask", "from_foreground", "to_three_classes",
    "from_three_classes", "match_pairs", "match", "count",
]

#: The classes of the three-class scheme, in the order of their class numbers 0, 1, 2.
THREE_CLASSES = ("background", "interior", "boundary")

#: The membrane watershed of the ISBI scores (:mod:`helpers.evaluate`), for boundaries of any objects.
from_boundaries = predicted_segments
from_boundary_mask = truth_segments


def _label_image(array, name: str) -> np.ndarray:
    """An (H, W) int64 label image (0 = background) from integer, boolean or whole-number input."""
    array = _one_image(array, name)
    if array.dtype != bool and not np.issubdtype(array.dtype, np.integer):
        if not np.array_equal(array, np.round(array)):
            raise ValueError(f"{name} holds fractional values; expected an instance-label image (whole numbers, "
                             f"0 = background), e.g. from from_boundaries or from_three_classes.")
    labels = array.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise ValueError(f"{name} holds negative labels; use 0 for the background and 1, 2, ... for the objects.")
    return labels


def _drop_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Set objects of fewer than ``min_size`` pixels to 0 and renumber the rest 1..n."""
    from skimage.segmentation import relabel_sequential

    if min_size > 1 and labels.max() > 0:
        sizes = np.bincount(labels.ravel())
        small = sizes < min_size
        small[0] = False
        labels = np.where(small[labels], 0, labels)
    return relabel_sequential(labels)[0].astype(np.int32)


def count(labels: np.ndarray) -> int:
    """The number of objects in an instance-label image (distinct labels other than 0).

    Examples
    --------
    >>> count(np.array([[0, 3, 3], [7, 0, 0]]))
    2
    """
    labels = np.asarray(labels)
    return int(np.unique(labels[labels > 0]).size)


def from_foreground(prob: np.ndarray, threshold: float = 0.5, min_size: int = 10, split: bool = True,
                    split_depth: float = 2.0) -> np.ndarray:
    """Label blob-like objects: connected foreground, touching blobs split by a distance watershed.

    The foreground (``prob > threshold``) is cut into its 4-connected components. With ``split``,
    each component is split further where it narrows: the distance of every foreground pixel to
    the background has a peak in the middle of each blob, and a watershed from those peaks cuts a
    component at its "necks". Only peaks that stand at least ``split_depth`` pixels above the neck
    that joins them to a higher peak count (h-maxima), so a dent in one blob does not split it.
    Objects smaller than ``min_size`` pixels are dropped.

    Good for round objects that touch a little (nuclei); objects that overlap much, or elongated
    ones, are better separated by the three-class scheme (:func:`from_three_classes`).

    Parameters
    ----------
    prob : np.ndarray
        Foreground probabilities (or a binary mask) of one image, ``(H, W)`` or ``(H, W, 1)``.
    threshold : float
        Foreground where ``prob > threshold``.
    min_size : int
        Objects of fewer pixels are removed (set to 0).
    split : bool
        Split touching blobs; ``False`` gives the plain connected components.
    split_depth : float
        How much (in pixels of distance to the background) a blob's centre must rise above the
        neck joining it to a neighbour for the two to be split.

    Returns
    -------
    np.ndarray
        int32 ``(H, W)``: 0 = background, 1..n = objects.

    Examples
    --------
    >>> from skimage.draw import disk
    >>> mask = np.zeros((30, 50), bool)
    >>> for centre in ((15, 15), (15, 32)):                 # two discs that overlap a little
    ...     mask[disk(centre, 10, shape=mask.shape)] = True
    >>> count(from_foreground(mask, split=False)), count(from_foreground(mask))
    (1, 2)
    """
    from scipy import ndimage
    from skimage.measure import label
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    foreground = _one_image(prob, "prob").astype(np.float32) > threshold
    components = label(foreground, connectivity=1)
    if not split or components.max() == 0:
        return _drop_small(components, min_size)
    distance = ndimage.distance_transform_edt(foreground)
    peaks = h_maxima(distance, split_depth) > 0
    markers = label(peaks, connectivity=2)
    unmarked = np.setdiff1d(np.unique(components[foreground]), np.unique(components[peaks]))
    if unmarked.size:  # blobs too thin for a peak of that height: each keeps one marker of its own
        extra = np.isin(components, unmarked)
        markers[extra] = markers.max() + components[extra]
    labels = watershed(-distance, markers, mask=foreground, connectivity=1)
    return _drop_small(labels, min_size)


def _per_image(function, labels: np.ndarray, name: str) -> np.ndarray:
    """Apply ``function`` to each (H, W) image of an (H, W), (N, H, W) or (N, H, W, 1) array."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return function(labels)
    if labels.ndim == 4 and labels.shape[-1] == 1:
        return np.stack([function(image) for image in labels[..., 0]])[..., None]
    if labels.ndim == 3:
        return np.stack([function(image) for image in labels])
    raise ValueError(f"{name} has shape {labels.shape}; expected (H, W), (N, H, W) or (N, H, W, 1).")


def to_three_classes(labels: np.ndarray) -> np.ndarray:
    """Instance labels to the three-class scheme: 0 background, 1 object interior, 2 object boundary.

    The boundary is each object's outermost ring of pixels: those with a 4-neighbour outside the
    object (background or another object). Where two objects touch, both rings meet, so a U-Net
    trained on these classes learns to draw a line of "boundary" between touching objects, which
    :func:`from_three_classes` uses to separate them. Objects too thin to have an interior (at
    most 2 pixels across) become all boundary and cannot be recovered.

    Parameters
    ----------
    labels : np.ndarray
        Instance labels, ``(H, W)``, or a batch ``(N, H, W)`` or ``(N, H, W, 1)``; 0 = background,
        each object its own positive number.

    Returns
    -------
    np.ndarray
        uint8 class numbers of the same shape.

    Examples
    --------
    >>> truth = np.zeros((5, 8), int); truth[:, 1:4] = 1; truth[:, 4:7] = 2
    >>> to_three_classes(truth)[2]
    array([0, 2, 1, 2, 2, 1, 2, 0], dtype=uint8)
    """
    from skimage.segmentation import find_boundaries

    def one(image: np.ndarray) -> np.ndarray:
        image = _label_image(image, "labels")
        boundary = find_boundaries(image, connectivity=1, mode="inner") & (image > 0)
        return np.where(boundary, 2, (image > 0).astype(np.uint8)).astype(np.uint8)

    return _per_image(one, labels, "labels")


def from_three_classes(classes: np.ndarray, min_size: int = 10) -> np.ndarray:
    """Instances from the three-class scheme: interiors as seeds, grown over the boundary pixels.

    Each 4-connected region of "interior" (class 1) is one object. A watershed grows the objects
    over the neighbouring "boundary" pixels (class 2) until they meet; the background (class 0)
    stops them. With probabilities the growth follows the interior probability (pixels most
    likely interior first), with class numbers it goes by distance. Objects smaller than
    ``min_size`` pixels are dropped; boundary pixels no interior reaches stay background.

    Parameters
    ----------
    classes : np.ndarray
        Class numbers ``(H, W)`` (or ``(H, W, 1)``) in {0, 1, 2}, or the probabilities of a 3-class
        softmax output ``(H, W, 3)``.
    min_size : int
        Objects of fewer pixels are removed.

    Returns
    -------
    np.ndarray
        int32 ``(H, W)``: 0 = background, 1..n = objects.

    Raises
    ------
    ValueError
        Not one image of class numbers 0..2 or 3 probabilities.

    Examples
    --------
    >>> classes = np.array([[2, 2, 2, 2, 2, 2],
    ...                     [2, 1, 2, 2, 1, 2],
    ...                     [2, 2, 2, 2, 2, 2]])
    >>> from_three_classes(classes, min_size=1)
    array([[1, 1, 1, 2, 2, 2],
           [1, 1, 1, 2, 2, 2],
           [1, 1, 1, 2, 2, 2]], dtype=int32)
    """
    from skimage.measure import label
    from skimage.segmentation import watershed

    classes = np.asarray(classes)
    if classes.ndim == 3 and classes.shape[-1] == 3:  # probabilities of the three classes
        elevation = 1.0 - classes[..., 1].astype(np.float32)
        classes = np.argmax(classes, axis=-1)
    else:
        classes = _one_image(classes, "classes")
        if classes.size and (classes.min() < 0 or classes.max() > 2):
            raise ValueError(f"classes holds values {np.unique(classes)[:8].tolist()}; expected the three classes "
                             f"0 (background), 1 (interior), 2 (boundary), or their probabilities (H, W, 3).")
        elevation = np.zeros(classes.shape, np.float32)
    seeds = label(classes == 1, connectivity=1)
    labels = watershed(elevation, seeds, mask=classes > 0, connectivity=1)
    return _drop_small(labels, min_size)


def match_pairs(pred: np.ndarray, truth: np.ndarray, iou_threshold: float = 0.5) -> np.ndarray:
    """The pairs of predicted and true objects that match: IoU >= ``iou_threshold``, one-to-one.

    Candidate pairs are those that overlap with IoU >= ``iou_threshold``. Above 0.5 each object can
    have at most one candidate; at exactly 0.5 or below an object may have several, and the pairs
    are chosen to maximise the sum of their IoUs (the Hungarian method), as StarDist's matching does.

    Parameters
    ----------
    pred, truth : np.ndarray
        Instance-label images of the same shape, ``(H, W)``; 0 = background.
    iou_threshold : float
        In (0, 1].

    Returns
    -------
    np.ndarray
        float64 ``(n_matches, 3)``: predicted label, true label, IoU; sorted by true label.

    Examples
    --------
    >>> truth = np.array([[1, 1, 1, 1, 0, 2, 2]])
    >>> pred = np.array([[5, 5, 5, 0, 0, 0, 7]])     # 5 covers 3/4 of object 1, 7 covers 1/2 of 2
    >>> match_pairs(pred, truth).tolist()
    [[5.0, 1.0, 0.75], [7.0, 2.0, 0.5]]
    """
    from scipy.optimize import linear_sum_assignment

    if not 0 < iou_threshold <= 1:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}; 0.5 is the usual choice.")
    pred, truth = _label_image(pred, "pred"), _label_image(truth, "truth")
    if pred.shape != truth.shape:
        raise ValueError(f"pred {pred.shape} and truth {truth.shape} differ in shape; pass instance labels of the "
                         f"same image.")
    p_ids, p_sizes = np.unique(pred[pred > 0], return_counts=True)
    t_ids, t_sizes = np.unique(truth[truth > 0], return_counts=True)
    both = (pred > 0) & (truth > 0)
    key = pred[both] * (int(truth.max()) + 1) + truth[both]
    pairs, inter = np.unique(key, return_counts=True)
    pair_p, pair_t = pairs // (int(truth.max()) + 1), pairs % (int(truth.max()) + 1)
    size_p = p_sizes[np.searchsorted(p_ids, pair_p)]
    size_t = t_sizes[np.searchsorted(t_ids, pair_t)]
    iou = inter / (size_p + size_t - inter)
    keep = iou >= iou_threshold - 1e-12
    pair_p, pair_t, iou = pair_p[keep], pair_t[keep], iou[keep]
    if pair_p.size == 0:
        return np.zeros((0, 3))
    rows, row_of = np.unique(pair_p, return_inverse=True)
    cols, col_of = np.unique(pair_t, return_inverse=True)
    scores = np.zeros((rows.size, cols.size))
    scores[row_of, col_of] = iou
    chosen_rows, chosen_cols = linear_sum_assignment(scores, maximize=True)
    chosen = scores[chosen_rows, chosen_cols] > 0
    result = np.column_stack([rows[chosen_rows[chosen]], cols[chosen_cols[chosen]],
                              scores[chosen_rows[chosen], chosen_cols[chosen]]]).astype(np.float64)
    return result[np.argsort(result[:, 1], kind="stable")]


def match(pred: np.ndarray, truth: np.ndarray, iou_threshold: float = 0.5) -> dict[str, float]:
    """How well predicted objects match the true ones, at IoU >= ``iou_threshold`` (one-to-one).

    A matched pair is a true positive (tp); a predicted object without a match is a false
    positive (fp), a true object without one a false negative (fn). Then
    ``precision = tp / n_pred``, ``recall = tp / n_true``, ``f1 = 2 tp / (n_pred + n_true)``. When
    there is nothing to find and nothing is found, all three are 1; when either side is empty,
    the undefined ratios are 0. ``mean_matched_iou`` is the mean IoU of the matched pairs (NaN
    without matches): how well the objects that were found are outlined.

    Parameters
    ----------
    pred, truth : np.ndarray
        Instance-label images of the same shape, ``(H, W)`` (or ``(H, W, 1)``); 0 = background.
    iou_threshold : float
        In (0, 1]; 0.5 makes the matching unique and is the usual choice.

    Returns
    -------
    dict
        ``n_true``, ``n_pred``, ``tp``, ``fp``, ``fn`` (counts, as floats), ``precision``,
        ``recall``, ``f1``, ``mean_matched_iou``.

    Examples
    --------
    >>> truth = np.array([[1, 1, 1, 1, 0, 2, 2, 0, 3]])
    >>> pred = np.array([[5, 5, 5, 0, 0, 0, 7, 0, 0]])
    >>> scores = match(pred, truth)
    >>> scores["tp"], scores["fn"], round(scores["f1"], 3), scores["mean_matched_iou"]
    (2.0, 1.0, 0.8, 0.625)
    """
    pairs = match_pairs(pred, truth, iou_threshold)
    n_pred, n_true = count(_label_image(pred, "pred")), count(_label_image(truth, "truth"))
    tp = len(pairs)

    def ratio(numerator: float, denominator: float) -> float:
        if denominator:
            return numerator / denominator
        return 1.0 if n_pred == n_true == 0 else 0.0

    return {"n_true": float(n_true), "n_pred": float(n_pred), "tp": float(tp), "fp": float(n_pred - tp),
            "fn": float(n_true - tp), "precision": ratio(tp, n_pred), "recall": ratio(tp, n_true),
            "f1": ratio(2 * tp, n_pred + n_true),
            "mean_matched_iou": float(pairs[:, 2].mean()) if tp else float("nan")}
