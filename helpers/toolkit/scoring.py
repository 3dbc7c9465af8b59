"""Scores and figures beyond two classes: K-class tables and maps, object tables, folder score tables.

* **More than two classes.** :func:`class_table` scores masks of K classes (class numbers, or a
  softmax output whose arg-max, :func:`class_map`, is the predicted class): IoU and Dice of every
  class and their mean over the classes. :func:`plot_classes` shows them in :data:`helpers.plots.PALETTE`.
* **Objects.** :func:`instance_table` matches instance labels at IoU >= 0.5
  (:func:`helpers.toolkit.instances.match`); :func:`plot_instances` colours each object.
* **Folders.** :func:`score_table` and :func:`score_table_json` are the binary scores the command line
  writes for your own images.

Examples
--------
>>> from helpers.toolkit import scoring
>>> table = scoring.class_table(prob, truth, ["background", "cell", "nucleus"])   # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from helpers.evaluate import one_image, segmentation_table
from helpers.plots import PALETTE, PANEL, as_images, check_window, show_image
from helpers.toolkit import instances

__all__ = ["output_activation", "check_outputs", "class_map", "class_names_for", "class_table", "instance_table",
           "score_table", "score_table_json", "class_colours", "colour_classes", "plot_classes",
           "colour_instances", "plot_instances"]


# ---------------------------------------------------------------------------------------------
# the model's output


def output_activation(model) -> str | None:
    """The name of the activation that makes a model's output, e.g. ``"sigmoid"`` or ``"softmax"``.

    Searched from the last layer backwards, skipping linear layers (the float32 cast appended under
    mixed precision); ``None`` when no layer has a non-linear activation.

    Examples
    --------
    >>> from helpers.models import build_unet
    >>> output_activation(build_unet((None, None, 1), filters=2, num_layers=1, num_classes=3))
    'softmax'
    """
    import keras

    for layer in reversed(getattr(model, "layers", [])):
        activation = getattr(layer, "activation", None)
        if activation is None:
            if getattr(layer, "trainable_weights", None):  # a layer with weights and no activation ends the output
                return None
            continue
        name = keras.activations.serialize(activation)
        name = name if isinstance(name, str) else getattr(activation, "__name__", str(activation))
        if name != "linear":
            return name
        if getattr(layer, "trainable_weights", None):  # a linear convolution: a logits output
            return None
    return None


def check_outputs(model, source: str = "The model") -> int:
    """The number of output channels K, checked to be one sigmoid channel or a softmax over K classes.

    Raises
    ------
    ValueError
        K > 1 channels that are not a softmax (e.g. several independent sigmoids, or logits): their
        arg-max would not be the most probable class.

    Examples
    --------
    >>> from helpers.models import build_unet
    >>> check_outputs(build_unet((None, None, 1), filters=2, num_layers=1, num_classes=3))
    3
    """
    channels = int(model.output_shape[-1])
    if channels > 1 and output_activation(model) != "softmax":
        raise ValueError(f"{source} predicts {channels} channels but its output is not a softmax over them, so "
                         f"the arg-max is not the most probable class. Masks are made from one sigmoid "
                         f"channel (binary) or a softmax over K classes (e.g. build_unet(num_classes=K)).")
    return channels


def class_map(prob: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """The predicted class of every pixel: the arg-max over K channels, or ``p > threshold`` for one.

    Parameters
    ----------
    prob : np.ndarray
        Probabilities ``(..., K)``: a softmax over K classes, or one sigmoid channel (K = 1).
    threshold : float, default 0.5
        Used for one channel only.

    Returns
    -------
    np.ndarray
        uint8 class numbers, ``prob``'s shape without its last axis.

    Examples
    --------
    >>> class_map(np.array([[[0.2, 0.5, 0.3], [0.7, 0.2, 0.1]]]))
    array([[1, 0]], dtype=uint8)
    """
    prob = np.asarray(prob)
    if prob.ndim < 1 or prob.shape[-1] < 1:
        raise ValueError(f"prob has shape {prob.shape}; expected probabilities with the classes on the last axis.")
    if prob.shape[-1] == 1:
        return (prob[..., 0] > threshold).astype(np.uint8)
    if prob.shape[-1] > 256:
        raise ValueError(f"prob has {prob.shape[-1]} channels; class masks hold at most 256 classes.")
    return np.argmax(prob, axis=-1).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# score tables


def _row_names(names: Sequence[str] | None, count: int) -> list[str]:
    names = [str(i) for i in range(count)] if names is None else [str(n) for n in names]
    if len(names) != count:
        raise ValueError(f"got {len(names)} names for {count} images; pass one per image")
    return names


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
    """One (H, W) int64 array of class numbers per image, from class numbers or K-channel probabilities."""

    def one(item, label: str) -> np.ndarray:
        item = np.asarray(item)
        if item.ndim == 3 and item.shape[-1] > 1:  # probabilities of the classes: arg-max
            if item.shape[-1] != num_classes:
                raise ValueError(f"{label} has {item.shape[-1]} channels for {num_classes} classes; pass the "
                                 f"probabilities of every class (a softmax output) or class numbers.")
            return class_map(item).astype(np.int64)
        item = one_image(item, label)
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


def _class_row(p: np.ndarray, t: np.ndarray, class_names: list[str], first: int) -> dict[str, float]:
    from helpers.toolkit.classes import class_dice_np, class_iou_np

    iou, dice = class_iou_np(p, t, len(class_names)), class_dice_np(p, t, len(class_names))
    row = {f"iou_{name}": value for name, value in zip(class_names, iou)}
    row.update({f"dice_{name}": value for name, value in zip(class_names, dice)})
    with np.errstate(all="ignore"):
        row["mean_iou"] = float(np.nanmean(iou[first:])) if np.isfinite(iou[first:]).any() else math.nan
        row["mean_dice"] = float(np.nanmean(dice[first:])) if np.isfinite(dice[first:]).any() else math.nan
    row["pixel_error"] = float(np.mean(p != t))
    return row


def class_table(pred, truth, class_names, names: Sequence[str] | None = None,
                include_background: bool = True) -> pd.DataFrame:
    """Per-image IoU and Dice of every class, their mean over the classes, and the pixel error.

    A class in neither the true nor the predicted mask of an image is left out of that image's
    scores (NaN) and of its means, so absent classes do not flatter the scores.

    Parameters
    ----------
    pred : array-like or list of arrays
        Probabilities ``(N, H, W, K)`` or class numbers ``(N, H, W[, 1])``, or a list of images.
    truth : array-like or list of arrays
        True class numbers 0..K-1.
    class_names : sequence of str
        One name per class, in the order of the class numbers; K = its length.
    names : sequence of str, optional
        Row labels for the images (default ``"0"``, ``"1"``, ...).
    include_background : bool, default True
        Whether class 0 counts in ``mean_iou`` and ``mean_dice``.

    Returns
    -------
    pandas.DataFrame
        Columns ``iou_<class>``, ``dice_<class>``, ``mean_iou``, ``mean_dice``, ``pixel_error``;
        a last ``"mean"`` row.

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
    if len(class_names) < 2:
        raise ValueError(f"class_names must name at least two classes, got {class_names}.")
    preds = _class_maps(pred, "pred", len(class_names))
    truths = _class_maps(truth, "truth", len(class_names))
    if len(preds) != len(truths):
        raise ValueError(f"got {len(preds)} predictions for {len(truths)} true masks; pass one per image")
    names = _row_names(names, len(preds))
    rows = []
    for name, p, t in zip(names, preds, truths):
        try:  # class_iou_np checks shapes and class numbers
            rows.append(_class_row(p, t, class_names, 0 if include_background else 1))
        except ValueError as error:
            raise ValueError(f"image {name}: {error}") from None
    table = pd.DataFrame(rows, index=pd.Index(names, name="image"))
    table.loc["mean"] = table.mean()
    return table


def instance_table(pred_labels, truth_labels, names: Sequence[str] | None = None,
                   iou_threshold: float = 0.5) -> pd.DataFrame:
    """Per-image instance matching at IoU >= ``iou_threshold`` (:func:`helpers.toolkit.instances.match`).

    Parameters
    ----------
    pred_labels, truth_labels : sequence of np.ndarray
        Instance labels ``(H, W)`` (0 = background), one pair per image; a stack ``(N, H, W)`` works too.
    names : sequence of str, optional
        Row labels (default ``"0"``, ``"1"``, ...).
    iou_threshold : float, default 0.5

    Returns
    -------
    pandas.DataFrame
        Columns ``n_true``, ``n_pred``, ``tp``, ``fp``, ``fn``, ``precision``, ``recall``, ``f1``,
        ``mean_matched_iou``; a last ``"mean"`` row.

    Examples
    --------
    >>> truth = np.array([[1, 1, 0, 2, 2]]); pred = np.array([[1, 1, 0, 0, 0]])
    >>> instance_table([pred], [truth]).loc["mean", ["tp", "fn", "precision", "recall"]].tolist()
    [1.0, 1.0, 1.0, 0.5]
    """
    preds, truths = list(pred_labels), list(truth_labels)
    if len(preds) != len(truths):
        raise ValueError(f"got {len(preds)} predicted label images for {len(truths)} true ones; pass one per image")
    names = _row_names(names, len(preds))
    rows = [instances.match(p, t, iou_threshold) for p, t in zip(preds, truths)]
    table = pd.DataFrame(rows, index=pd.Index(names, name="image"))
    table.loc["mean"] = table.mean()
    return table


def score_table(preds: Sequence[np.ndarray], truths: Sequence[np.ndarray], names: Sequence[str],
                threshold: float = 0.5) -> pd.DataFrame:
    """Per-image IoU, Dice and pixel error of the foreground (value 1), with a ``"mean"`` row.

    Parameters
    ----------
    preds : sequence of np.ndarray
        Probabilities or binary masks ``(H, W)`` (foreground where ``> threshold``); sizes may differ.
    truths : sequence of np.ndarray
        True masks of the same shapes, 1 = foreground.
    names : sequence of str
        Row labels, one per image.
    threshold : float, default 0.5

    Returns
    -------
    pandas.DataFrame
        Columns ``iou``, ``dice``, ``pixel_error`` (the foreground columns of
        :func:`helpers.evaluate.segmentation_table`).

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
    """A table with a ``"mean"`` row as JSON-ready ``{"images": [...], "mean": {...}}`` (NaN -> None).

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


# ---------------------------------------------------------------------------------------------
# figures


def class_colours(num_classes: int) -> list[tuple[float, float, float]]:
    """RGB colours (0-1) of the classes 0..K-1: :data:`helpers.plots.PALETTE`, class 0 black, repeated after 8.

    Examples
    --------
    >>> [tuple(round(channel, 2) for channel in colour) for colour in class_colours(3)]
    [(0.0, 0.0, 0.0), (0.9, 0.62, 0.0), (0.34, 0.71, 0.91)]
    """
    return [tuple(channel / 255 for channel in PALETTE[k % len(PALETTE)]) for k in range(num_classes)]


def colour_classes(classes: np.ndarray, num_classes: int) -> np.ndarray:
    """Class numbers ``(H, W)`` as an RGB image ``(H, W, 3)`` in the colours of :func:`class_colours`.

    Examples
    --------
    >>> colour_classes(np.array([[0, 2]]), 3)[0, 1].round(3)
    array([0.337, 0.706, 0.914])
    """
    classes = np.asarray(classes)
    if classes.ndim == 3 and classes.shape[-1] == 1:
        classes = classes[..., 0]
    classes = classes.astype(np.int64)
    if classes.size and (classes.min() < 0 or classes.max() >= num_classes):
        raise ValueError(f"classes hold values {np.unique(classes)[:8].tolist()} but num_classes is {num_classes}; "
                         f"pass one name per class.")
    return np.asarray(class_colours(num_classes))[classes]


def _classes_of(array: np.ndarray, num_classes: int) -> np.ndarray:
    """(N, H, W) class numbers from class numbers (N, H, W[, 1]) or probabilities (N, H, W, K)."""
    array = np.asarray(array)
    if array.ndim == 4 and array.shape[-1] == num_classes and num_classes > 1:
        return np.argmax(array, axis=-1)
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"expected class numbers (N, H, W[, 1]) or probabilities (N, H, W, {num_classes}), "
                         f"got shape {array.shape}.")
    return np.rint(array).astype(np.int64)


def plot_classes(images: Any, truths: Any = None, predictions: Any = None, class_names: Sequence[str] = (),
                 n: int | None = None, titles: Sequence[str] | None = None) -> Figure:
    """Show images with their true and predicted classes, one row per image, and a legend of the classes.

    Parameters
    ----------
    images
        (N, H, W, C), (N, H, W), (H, W, C) or (H, W); values in [0, 1].
    truths
        True class numbers (N, H, W[, 1]), or ``None``.
    predictions
        Predicted probabilities (N, H, W, K) (shown as their arg-max) or class numbers, or ``None``.
    class_names
        One name per class, in the order of the class numbers (K names).
    n
        Show only the first ``n`` images (default: all).
    titles
        One label per image, written above its first panel.

    Returns
    -------
    matplotlib.figure.Figure
        Columns: image, ground truth, prediction; class k in the colour of :func:`class_colours`.

    Raises
    ------
    ValueError
        Fewer than two class names, class numbers beyond them, or fewer masks than images.

    Examples
    --------
    >>> truth = np.zeros((2, 8, 8), int); truth[:, 2:6, 2:6] = 1; truth[:, 3:5, 3:5] = 2
    >>> fig = plot_classes(np.zeros((2, 8, 8, 1)), truth, np.eye(3)[truth], ["background", "cell", "nucleus"])
    >>> [ax.get_title() for ax in fig.axes[:3]], [t.get_text() for t in fig.legends[0].get_texts()]
    (['image', 'ground truth', 'prediction'], ['background', 'cell', 'nucleus'])
    """
    class_names = [str(name) for name in class_names]
    if len(class_names) < 2:
        raise ValueError(f"class_names must name every class (at least two), got {class_names}.")
    k, x = len(class_names), as_images(images)
    panels = [("image", None)]
    if truths is not None:
        panels.append(("ground truth", _classes_of(truths, k)))
    if predictions is not None:
        panels.append(("prediction", _classes_of(predictions, k)))
    n = len(x) if n is None else min(n, len(x))
    if n < 1:
        raise ValueError("plot_classes needs at least one image (got none, or n < 1).")
    for title, masks in panels[1:]:
        if len(masks) < n:
            raise ValueError(f"{title} has {len(masks)} masks for {n} images; pass one per image.")
    fig = Figure(figsize=(PANEL * len(panels), PANEL * n + 0.5), layout="constrained")
    axes = fig.subplots(n, len(panels), squeeze=False)
    for i in range(n):
        for j, (title, masks) in enumerate(panels):
            label = titles[i] if titles is not None and j == 0 else title if i == 0 else None
            shown = x[i] if masks is None else colour_classes(masks[i], k)
            show_image(axes[i, j], shown, label, interpolation="nearest")
    handles = [Patch(facecolor=colour, edgecolor="0.5", linewidth=0.5, label=name)
               for colour, name in zip(class_colours(k), class_names)]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(k, 6), fontsize=8, frameon=False)
    return fig


def colour_instances(image: np.ndarray, labels: np.ndarray, alpha: float = 0.45, seed: int = 0) -> np.ndarray:
    """An image with every object of ``labels`` tinted in a colour of its own and outlined in white.

    Parameters
    ----------
    image
        (H, W) or (H, W, C) in [0, 1].
    labels
        Instance labels (H, W), 0 = background (left untinted).
    alpha
        Opacity of the tint.
    seed
        Seed of the random colour assignment (the seven non-black :data:`helpers.plots.PALETTE` colours).

    Returns
    -------
    np.ndarray
        (H, W, 3) RGB in [0, 1].

    Examples
    --------
    >>> colour_instances(np.zeros((4, 4)), np.array([[0, 1, 1, 2]] * 4)).shape
    (4, 4, 3)
    """
    from skimage.segmentation import find_boundaries

    img = as_images(image)[0]
    rgb = np.clip(img[..., :3] if img.shape[-1] >= 3 else np.repeat(img[..., :1], 3, -1), 0, 1).astype(np.float64)
    labels = np.asarray(labels)
    labels = labels[..., 0] if labels.ndim == 3 and labels.shape[-1] == 1 else labels
    if labels.shape != rgb.shape[:2]:
        raise ValueError(f"labels {labels.shape} and image {rgb.shape[:2]} differ in size; pass the labels of "
                         f"this image.")
    labels = labels.astype(np.int64)
    colours = np.asarray(class_colours(len(PALETTE))[1:])
    assigned = colours[np.random.default_rng(seed).integers(0, len(colours), int(labels.max()) + 1)]
    inside = labels > 0
    out = rgb.copy()
    out[inside] = (1 - alpha) * rgb[inside] + alpha * assigned[labels[inside]]
    out[find_boundaries(labels, connectivity=1, mode="inner") & inside] = 1.0
    return out


def plot_instances(image: Any, labels: Mapping[str, Any], window: tuple[int, int, int, int] | None = None,
                   alpha: float = 0.45) -> Figure:
    """Show an image and one or more instance-label images of it, each object in a colour of its own.

    Parameters
    ----------
    image
        One image (H, W) or (H, W, C) in [0, 1].
    labels
        ``{title: instance labels (H, W)}``; each panel's title gets the number of objects.
    window
        ``(top, bottom, left, right)`` in pixels to zoom into; default: the whole image.
    alpha
        Opacity of the objects' colours.

    Returns
    -------
    matplotlib.figure.Figure
        The image, then one panel per label image (:func:`colour_instances`).

    Examples
    --------
    >>> cells = np.zeros((16, 16), int); cells[2:8, 2:8] = 1; cells[8:14, 2:8] = 2
    >>> fig = plot_instances(np.zeros((16, 16)), {"cells": cells})
    >>> [ax.get_title() for ax in fig.axes]
    ['image', 'cells (2)']
    """
    img = as_images(image)[0]
    height, width = img.shape[:2]
    top, bottom, left, right = check_window(window, height, width)
    fig = Figure(figsize=(PANEL * (1 + len(labels)), PANEL + 0.3), layout="constrained")
    axes = fig.subplots(1, 1 + len(labels), squeeze=False)[0]
    show_image(axes[0], img[top:bottom, left:right], "image")
    for ax, (title, label_image) in zip(axes[1:], labels.items()):
        label_image = np.asarray(label_image)
        label_image = label_image[..., 0] if label_image.ndim == 3 and label_image.shape[-1] == 1 else label_image
        count = np.unique(label_image[label_image > 0]).size
        coloured = colour_instances(img, label_image, alpha)
        show_image(ax, coloured[top:bottom, left:right], f"{title} ({count})")
    return fig
