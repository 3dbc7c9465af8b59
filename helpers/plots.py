"""Figures for the workshop: images and masks, training curves, thresholds, tiles.

Every function returns a :class:`matplotlib.figure.Figure` and never calls ``plt.show()``.
The figures are made without pyplot, so nothing accumulates in pyplot's figure list. In a
notebook with the inline backend on (``%matplotlib inline``, which the workshop notebooks run in
their imports cell) a figure shows when it is the last expression of a cell, or with
``display(fig)``; save one with ``fig.savefig("name.png")``.

Overlays use the colour-blind-safe Okabe-Ito palette: membrane found by both ground truth and
prediction in **yellow**, membrane the model missed (ground truth only) in **sky blue**, and
membrane the model invented (prediction only) in **vermillion**. Blue-yellow stays distinct for
all common colour-vision deficiencies, and vermillion is much darker than yellow.

Masks of more than two classes (:func:`plot_classes`) use the Okabe-Ito colours in their own order,
class 0 black (:data:`helpers.files.CLASS_PALETTE`, also the colours of the class masks that
``predict`` writes), with a legend naming each class. Instance labels (:func:`plot_instances`)
get a colour per object and a white outline, so touching objects stay apart even where two
neighbours share a colour.

Examples
--------
>>> fig = plot_imgs(x_val[:3], y_val[:3], model.predict(x_val[:3]))   # doctest: +SKIP
>>> fig.savefig("predictions.png")                                    # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator

from helpers.files import CLASS_PALETTE
from helpers.runs import as_history

#: Okabe-Ito colours used for overlays.
BOTH = "#F0E442"        # yellow: membrane in truth and prediction
TRUTH_ONLY = "#56B4E9"  # sky blue: missed membrane
PRED_ONLY = "#D55E00"   # vermillion: false membrane
TRAIN_COLOUR, VAL_COLOUR = "#0072B2", "#E69F00"  # blue / orange curves

PANEL = 2.6  # inches per image panel

#: Opacity of the overlay colours in the figures: legible on the grey EM images, with the tissue
#: still faintly visible under them (the "original" column shows it unobscured).
OVERLAY_ALPHA = 0.75


def _batch(images: Any) -> np.ndarray:
    """Return images as float (N, H, W, C); accepts (H, W), (H, W, C), (N, H, W), (N, H, W, C).

    A 3-D array whose last axis has 1, 3 or 4 entries is one (H, W, C) image; any other 3-D
    array is a batch of gray images.
    """
    a = np.asarray(images, dtype=np.float32)
    if a.ndim == 2:
        return a[None, ..., None]
    if a.ndim == 3:
        return a[None] if a.shape[-1] in (1, 3, 4) else a[..., None]
    if a.ndim == 4:
        return a
    raise ValueError(f"Expected an image or a batch of images, got shape {a.shape}.")


def _show(ax, image: np.ndarray, title: str | None = None, **kwargs) -> None:
    """Draw one (H, W, C) image (gray when C == 1) without ticks."""
    if image.shape[-1] == 1:
        kwargs = {"cmap": "gray", "vmin": 0.0, "vmax": 1.0, **kwargs}
        image = image[..., 0]
    else:
        image = np.clip(image[..., :3], 0.0, 1.0)
    ax.imshow(image, **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def overlay(image: np.ndarray, truth: np.ndarray | None = None, pred: np.ndarray | None = None,
            alpha: float = 0.5) -> np.ndarray:
    """Colour binary masks onto an (H, W, C) image; returns an (H, W, 3) RGB array in [0, 1].

    With both masks: yellow = both, sky blue = truth only, vermillion = prediction only. With
    one mask it is drawn in its "only" colour.

    Examples
    --------
    >>> overlay(np.zeros((4, 4, 1)), truth=np.ones((4, 4, 1))).shape
    (4, 4, 3)
    """
    rgb = np.clip(image[..., :3] if image.shape[-1] >= 3 else np.repeat(image[..., :1], 3, -1), 0, 1)
    t = np.zeros(rgb.shape[:2], bool) if truth is None else np.asarray(truth).reshape(rgb.shape[:2]) > 0.5
    p = np.zeros(rgb.shape[:2], bool) if pred is None else np.asarray(pred).reshape(rgb.shape[:2]) > 0.5
    out = rgb.copy()
    for region, colour in ((t & p, BOTH), (t & ~p, TRUTH_ONLY), (~t & p, PRED_ONLY)):
        out[region] = (1 - alpha) * rgb[region] + alpha * np.array(to_rgb(colour))
    return out


def _legend(fig: Figure, truth: bool, pred: bool, names: tuple[str, str] | None = None) -> None:
    labels = []
    if truth and pred and names is not None:
        labels = [(BOTH, "membrane: both"), (TRUTH_ONLY, f"{names[0]} only"),
                  (PRED_ONLY, f"{names[1]} only")]
    elif truth and pred:
        labels = [(BOTH, "membrane: both"), (TRUTH_ONLY, "missed (truth only)"),
                  (PRED_ONLY, "false (prediction only)")]
    elif truth or pred:
        labels = [(TRUTH_ONLY if truth else PRED_ONLY, "membrane")]
    if labels:
        fig.legend(handles=[Patch(color=c, label=text) for c, text in labels],
                   loc="outside lower center", ncols=len(labels), fontsize=8, frameon=False)


def plot_imgs(images: Any, masks: Any = None, predictions: Any = None, n: int | None = None,
              threshold: float = 0.5, titles: Sequence[str] | None = None,
              overlay_alpha: float = OVERLAY_ALPHA, names: tuple[str, str] | None = None) -> Figure:
    """Show images with ground truth, prediction and an overlay, one row per image.

    Parameters
    ----------
    images
        (N, H, W, C), (N, H, W), (H, W, C) or (H, W); gray (C = 1) or RGB, values in [0, 1].
    masks
        Ground-truth masks (1 = membrane) of the same images, or ``None``.
    predictions
        Predicted membrane probabilities (shown as they are, 0 = black, 1 = white, with a colour
        bar), or ``None``.
    n
        Show only the first ``n`` images (default: all).
    threshold
        Probability above which a predicted pixel counts as membrane in the overlay.
    titles
        One label per image (e.g. slice names), written above its first panel (in place of
        the "original" column title).
    overlay_alpha
        Opacity of the overlay colours.
    names
        Column titles for ``masks`` and ``predictions`` instead of "ground truth" and
        "prediction", e.g. ``("Jaccard", "BCE")`` to compare one model's prediction (passed as
        ``masks``, binarised at 0.5) against another's; the legend then reads "Jaccard only"
        (sky blue) and "BCE only" (vermillion).

    Returns
    -------
    matplotlib.figure.Figure
        Columns: original, ground truth (if ``masks``), prediction (if ``predictions``, with a
        "P(membrane)" colour bar beside the column), overlay (if either); a legend explains the
        overlay colours.

    Examples
    --------
    >>> fig = plot_imgs(x_val, y_val, model.predict(x_val), n=3)   # doctest: +SKIP
    >>> fig = plot_imgs(x_val, pred_a > 0.5, pred_b, names=("model A", "model B"))  # doctest: +SKIP
    """
    x = _batch(images)
    y = None if masks is None else _batch(masks)
    p = None if predictions is None else _batch(predictions)
    n = len(x) if n is None else min(n, len(x))
    if n < 1:
        raise ValueError("plot_imgs needs at least one image (got none, or n < 1).")
    for name, other in (("masks", y), ("predictions", p)):
        if other is not None and len(other) < n:
            raise ValueError(f"{name} has {len(other)} entries for {n} images; pass one per image.")
    truth_name, pred_name = names if names is not None else ("ground truth", "prediction")
    columns = ["original"] + [truth_name] * (y is not None) + [pred_name] * (p is not None)
    columns += ["overlay"] * (y is not None or p is not None)
    fig = Figure(figsize=(PANEL * len(columns), PANEL * n + 0.4 + 0.6 * (p is not None)), layout="constrained")
    axes = fig.subplots(n, len(columns), squeeze=False)
    for i in range(n):
        panels = [x[i]] + ([y[i]] if y is not None else []) + ([p[i]] if p is not None else [])
        if len(columns) > len(panels):
            binary = None if p is None else p[i] > threshold
            panels.append(overlay(x[i], None if y is None else y[i], binary, overlay_alpha))
        for j, (ax, panel) in enumerate(zip(axes[i], panels)):
            label = titles[i] if titles is not None and j == 0 else columns[j] if i == 0 else None
            _show(ax, panel, label)
    if p is not None:
        column = 1 + (y is not None)
        fig.colorbar(axes[0, column].images[0], ax=list(axes[:, column]), location="bottom", shrink=0.8,
                     aspect=25, pad=0.01, label="P(membrane)")
    _legend(fig, y is not None, p is not None, names)
    return fig


def plot_history(history: Any, metrics: Sequence[str] | None = None,
                 baselines: Mapping[str, float | Mapping[str, float]] | None = None) -> Figure:
    """Plot training curves: one panel per metric, training and validation (``val_``) values.

    Parameters
    ----------
    history
        A ``keras.callbacks.History``, a dict ``{name: values}`` (as returned by
        :func:`helpers.train.fit`) or a pandas DataFrame (e.g. ``pd.read_csv("history.csv")``).
    metrics
        Names to plot without the ``val_`` prefix, e.g. ``["loss", "iou"]``; default: all.
    baselines
        Reference levels drawn as dotted horizontal lines, by metric: a number (labelled
        "baseline") or ``{label: value}``, e.g. the accuracy of answering "cell" everywhere,
        ``{"accuracy": {"train: all cell": 0.77, "validation: all cell": 0.80}}``. A label that
        starts with "train" or "val" gets that curve's colour, others grey.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per metric. Validation curves are drawn only where logged.

    Raises
    ------
    ValueError
        A metric that was not logged, or a baseline for a metric that is not plotted.

    Examples
    --------
    >>> fig = plot_history({"loss": [0.7, 0.5], "val_loss": [0.8, 0.6]})
    >>> len(fig.axes)
    1
    >>> fig = plot_history({"accuracy": [0.6, 0.8]}, baselines={"accuracy": 0.78})
    >>> [line.get_label() for line in fig.axes[0].lines]
    ['train', 'baseline']
    """
    data = {key: np.asarray(values) for key, values in as_history(history).items()}
    names = [k.removeprefix("val_") for k in data]
    names = list(dict.fromkeys(metrics if metrics is not None else names))
    missing = [m for m in names if m not in data and f"val_{m}" not in data]
    if missing or not names:
        raise ValueError(f"Nothing to plot for {missing or 'an empty history'}; logged: {sorted(data)}.")
    baselines = dict(baselines or {})
    stray = sorted(set(baselines) - set(names))
    if stray:
        raise ValueError(f"Baselines for {stray}, which are not plotted; plotted: {names}.")
    fig = Figure(figsize=(3.6 * len(names), 3.0), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        draw_curves(ax, data, name, baselines.get(name, {}))
    return fig


def draw_curves(ax, history: Mapping[str, Any], name: str,
                baselines: float | Mapping[str, float] | None = None) -> None:
    """Draw one metric's training and validation curves (and dotted baselines) into ``ax``.

    Shared by :func:`plot_history` and the live training view (:class:`helpers.live.LiveView`).

    Examples
    --------
    >>> ax = Figure().subplots()
    >>> draw_curves(ax, {"loss": [0.7, 0.5], "val_loss": [0.8, 0.6]}, "loss")
    >>> len(ax.lines)
    2
    """
    for key, label, colour in ((name, "train", TRAIN_COLOUR), (f"val_{name}", "validation", VAL_COLOUR)):
        if key in history:
            ax.plot(np.arange(1, len(history[key]) + 1), history[key], marker=".", label=label, color=colour)
    levels = baselines if baselines is not None else {}
    for label, value in (levels.items() if isinstance(levels, Mapping) else [("baseline", levels)]):
        colour = TRAIN_COLOUR if label.startswith("train") else VAL_COLOUR if label.startswith("val") else "0.45"
        ax.axhline(float(value), color=colour, linestyle=":", linewidth=1.5, label=label)
    ax.set(title=name, xlabel="epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8)


def plot_threshold_curve(table_or_thresholds: Any, scores: Any = None,
                         chosen: float | None = None) -> Figure:
    """Plot score(s) against the binarisation threshold, marking the chosen threshold.

    Parameters
    ----------
    table_or_thresholds
        A DataFrame with a ``threshold`` column (every other numeric column is drawn as a
        curve), or a sequence of thresholds.
    scores
        With thresholds: one score per threshold, or a dict ``{name: scores}``.
    chosen
        Threshold to mark with a vertical dashed line.

    Returns
    -------
    matplotlib.figure.Figure
        One axes.

    Examples
    --------
    >>> fig = plot_threshold_curve([0.3, 0.5, 0.7], {"IoU": [0.6, 0.7, 0.65]}, chosen=0.5)
    >>> len(fig.axes)
    1
    """
    if hasattr(table_or_thresholds, "columns"):
        table = table_or_thresholds
        if "threshold" not in table.columns:
            raise ValueError(f"The table needs a 'threshold' column; it has {list(table.columns)}.")
        thresholds = table["threshold"].to_numpy(float)
        curves = {c: table[c].to_numpy(float) for c in table.select_dtypes("number").columns
                  if c != "threshold"}
    else:
        if scores is None:
            raise ValueError("Pass scores with the thresholds, e.g. plot_threshold_curve(t, iou).")
        thresholds = np.asarray(table_or_thresholds, float)
        curves = dict(scores) if isinstance(scores, Mapping) else {"score": scores}
    fig = Figure(figsize=(4.5, 3.2), layout="constrained")
    ax = fig.subplots()
    for name, values in curves.items():
        ax.plot(thresholds, np.asarray(values, float), marker=".", label=name)
    if chosen is not None:
        ax.axvline(chosen, color="black", linestyle="--", linewidth=1, label=f"chosen {chosen:.2f}")
    ax.set(xlabel="threshold", ylabel="score", title="Score vs threshold")
    ax.legend(fontsize=8)
    return fig


def _grid(count: int, ncols: int | None, panel: float = PANEL) -> tuple[Figure, list]:
    """A figure with exactly ``count`` axes on a grid (unused grid cells are removed)."""
    ncols = max(1, min(count, ncols or math.ceil(math.sqrt(count))))
    nrows = math.ceil(count / ncols)
    fig = Figure(figsize=(panel * ncols, panel * nrows + 0.4), layout="constrained")
    axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[count:]:
        fig.delaxes(ax)
    return fig, axes[:count]


def plot_tiles(tiles: Any, ncols: int | None = None) -> Figure:
    """Show tiles (patches) on a grid, e.g. the output of :func:`helpers.tiles.get_patches`.

    Parameters
    ----------
    tiles
        (N, h, w, C) or (N, h, w) array.
    ncols
        Columns of the grid (default: about square).

    Returns
    -------
    matplotlib.figure.Figure
        One axes per tile, titled with its index.

    Examples
    --------
    >>> len(plot_tiles(np.zeros((5, 8, 8, 1)), ncols=3).axes)
    5
    """
    t = _batch(tiles)
    fig, axes = _grid(len(t), ncols, panel=1.6)
    for i, ax in enumerate(axes):
        _show(ax, t[i], str(i))
    return fig


def plot_augmented_batch(images: Any, masks: Any, n: int = 8, alpha: float = 0.6,
                         titles: Sequence[str] | None = None, original: tuple[Any, Any] | None = None) -> Figure:
    """Show augmented training pairs: each image with its mask overlaid (sky blue), each panel titled.

    Useful to check that image and mask received the same transform. Pass ``original`` (the
    untransformed pair) to show it first, so each augmented panel can be compared with it.

    Parameters
    ----------
    images, masks
        A batch, e.g. ``x, y = next(iter(get_augmented(...)))`` (arrays or tensors).
    n
        Number of pairs to show (at most the batch size); four panels per row.
    alpha
        Opacity of the mask colour.
    titles
        One title per shown pair, e.g. the transform each received. Default with ``original``:
        "augmented 1", "augmented 2", ...; without it none (the caller knows whether the batch
        holds untransformed pairs too).
    original
        ``(image, mask)`` before augmentation, shown first and titled "original".

    Returns
    -------
    matplotlib.figure.Figure
        One axes per pair (plus one for ``original``).

    Examples
    --------
    >>> x, y = next(iter(augment.get_augmented(x_train, y_train, batch_size=8)))  # doctest: +SKIP
    >>> fig = plot_augmented_batch(x, y)                                          # doctest: +SKIP
    >>> fig = plot_augmented_batch(np.zeros((3, 8, 8, 1)), np.zeros((3, 8, 8, 1)),
    ...                            original=(np.zeros((8, 8, 1)), np.zeros((8, 8, 1))))
    >>> [ax.get_title() for ax in fig.axes]
    ['original', 'augmented 1', 'augmented 2', 'augmented 3']
    """
    x, y = _batch(images), _batch(masks)
    count = min(n, len(x), len(y))
    if titles is None:
        titles = [f"augmented {i + 1}" if original is not None else "" for i in range(count)]
    titles = list(titles)
    if len(titles) < count:
        raise ValueError(f"{len(titles)} titles for {count} panels; pass one title per shown pair.")
    pairs = [(x[i], y[i], titles[i]) for i in range(count)]
    if original is not None:
        pairs.insert(0, (_batch(original[0])[0], _batch(original[1])[0], "original"))
    fig, axes = _grid(len(pairs), ncols=4)
    for ax, (image, mask, title) in zip(axes, pairs):
        _show(ax, overlay(image, truth=mask, alpha=alpha), title)
    _legend(fig, truth=True, pred=False)
    return fig


def shear_matrix(angle: float, height: int, width: int) -> np.ndarray:
    """The 3 x 3 shear about the image centre that :mod:`helpers.augment` draws for ``angle`` degrees.

    Maps an output pixel (x = column, y = row) to the input point it is read from, the
    convention of :func:`helpers.augment.warp_numpy`: ``[[cos s, 0], [-sin s, 1]]``, as Keras'
    ``ImageDataGenerator`` (and both augmentation pipelines) shear.

    Examples
    --------
    >>> np.allclose(shear_matrix(0, 8, 8), np.eye(3))
    True
    """
    s = math.radians(angle)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    to_centre = np.array([[1.0, 0.0, -cx], [0.0, 1.0, -cy], [0.0, 0.0, 1.0]])
    from_centre = np.array([[1.0, 0.0, cx], [0.0, 1.0, cy], [0.0, 0.0, 1.0]])
    shear = np.array([[math.cos(s), 0.0, 0.0], [-math.sin(s), 1.0, 0.0], [0.0, 0.0, 1.0]])
    return from_centre @ shear @ to_centre


def elongation(matrix: np.ndarray) -> float:
    """How much a transform stretches a circle: the long axis over the short axis of the ellipse it becomes.

    Examples
    --------
    >>> round(elongation(shear_matrix(50, 8, 8)), 2)
    2.75
    """
    singular = np.linalg.svd(np.asarray(matrix, float)[:2, :2], compute_uv=False)
    return float(singular[0] / singular[-1])


def plot_shear(image: Any, mask: Any, angles: Sequence[float] = (0.0, 5.0, 50.0), alpha: float = 0.6) -> Figure:
    """Show one image and its mask sheared by exact angles, as the augmentation would shear them.

    Each panel's title gives the angle and how elongated a round cell becomes (a circle turns
    into an ellipse that many times longer than wide), so a learner can judge which angles still
    look like plausible tissue.

    Parameters
    ----------
    image, mask
        One (H, W, C) or (H, W) image in [0, 1] and its mask (1 = membrane).
    angles
        Shear angles in degrees, e.g. ``(0, DEFAULT_ARGS["shear_range"], ORIGINAL_ARGS["shear_range"])``.
    alpha
        Opacity of the mask colour.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per angle; image bilinear, mask nearest-neighbour, reflect padding (as
        :func:`helpers.augment.get_augmented`).

    Examples
    --------
    >>> fig = plot_shear(np.random.rand(16, 16), np.zeros((16, 16)), angles=(0, 50))
    >>> [ax.get_title() for ax in fig.axes]
    ['shear 0°\\ncircle -> 1.0 : 1', 'shear 50°\\ncircle -> 2.7 : 1']
    """
    from helpers.augment import warp_numpy

    x, y = _batch(image)[:1], _batch(mask)[:1]
    height, width = x.shape[1:3]
    fig, axes = _grid(len(angles), ncols=len(angles))
    for ax, angle in zip(axes, angles):
        m = shear_matrix(float(angle), height, width)[None]
        sheared = warp_numpy(x, m, order=1, fill_mode="reflect")[0]
        sheared_mask = warp_numpy(y, m, order=0, fill_mode="reflect")[0]
        _show(ax, overlay(sheared, truth=sheared_mask, alpha=alpha),
              f"shear {float(angle):g}°\ncircle -> {elongation(m[0]):.1f} : 1")
    _legend(fig, truth=True, pred=False)
    return fig


def plot_probability(image: Any, prob: Any, threshold: float = 0.5) -> Figure:
    """Show one image, its membrane probability map and the binarised prediction overlaid.

    Parameters
    ----------
    image
        (H, W, C) or (H, W) image in [0, 1].
    prob
        (H, W, 1) or (H, W) probability of membrane.
    threshold
        Membrane where ``prob > threshold``.

    Returns
    -------
    matplotlib.figure.Figure
        Three image axes and a colour bar for the probability (viridis, colour-blind safe).

    Examples
    --------
    >>> fig = plot_probability(np.zeros((8, 8)), np.full((8, 8), 0.7))
    >>> len(fig.axes)
    4
    """
    x, p = _batch(image)[0], _batch(prob)[0]
    fig = Figure(figsize=(3 * PANEL + 0.6, PANEL + 0.4), layout="constrained")
    axes = fig.subplots(1, 3)
    _show(axes[0], x, "image")
    im = axes[1].imshow(p[..., 0], cmap="viridis", vmin=0.0, vmax=1.0)
    axes[1].set(xticks=[], yticks=[])
    axes[1].set_title("P(membrane)", fontsize=9)
    fig.colorbar(im, ax=axes[1], fraction=0.046)
    _show(axes[2], overlay(x, pred=p > threshold, alpha=OVERLAY_ALPHA), f"membrane (p > {threshold:g})")
    _legend(fig, truth=False, pred=True)
    return fig


def unet_blocks(model) -> list[dict[str, Any]]:
    """A U-Net's levels as blocks: the convolutions between two poolings or up-convolutions.

    Walks ``model.layers`` in order. A pooling layer goes one level down, a transposed
    convolution or upsampling one level up; the 3 x 3 convolutions in between form one block.
    A final 1 x 1 convolution is the output block. Every layer's parameters are counted in the
    block it feeds (an up-convolution's in the block above it), so the blocks' parameters add up
    to ``model.count_params()``.

    Parameters
    ----------
    model : keras.Model
        A U-Net built from Keras layers (keras-unet's, or :func:`helpers.models.build_unet`).

    Returns
    -------
    list of dict
        In model order, each ``{"kind": "block" | "output", "level": int (0 = full resolution),
        "shape": (height, width, channels) of its last layer, "convs": int, "params": int}``.

    Examples
    --------
    >>> model = models.custom_unet((32, 32, 1), filters=4, num_layers=2)   # doctest: +SKIP
    >>> [block["level"] for block in unet_blocks(model)]                   # doctest: +SKIP
    [0, 1, 2, 1, 0, 0]
    """
    blocks: list[dict[str, Any]] = []
    level, current, pending = 0, None, 0
    for layer in model.layers:
        kind, params = type(layer).__name__, int(layer.count_params())
        shape = tuple(layer.output.shape)[1:] if len(layer.output.shape) == 4 else None
        if kind in ("MaxPooling2D", "AveragePooling2D"):
            level, current = level + 1, None
        elif kind in ("Conv2DTranspose", "UpSampling2D"):
            level, current = level - 1, None
        if kind == "Conv2D" and shape is not None:
            is_output = tuple(layer.kernel_size) == (1, 1)
            if current is None or is_output:
                current = {"kind": "output" if is_output else "block", "level": level, "shape": shape,
                           "convs": 0, "params": pending}
                blocks.append(current)
                pending = 0
            current["shape"], current["convs"] = shape, current["convs"] + 1
            current["params"] += params
        elif current is not None and kind not in ("Conv2DTranspose", "UpSampling2D"):
            current["params"] += params
        else:
            pending += params
    if blocks:
        blocks[-1]["params"] += pending
    return blocks


def _compact(count: int) -> str:
    """12 -> '12', 36928 -> '37 k', 7759521 -> '7.8 M'."""
    return (f"{count / 1e6:.1f} M" if count >= 1e6 else f"{count / 1e3:.0f} k" if count >= 1e4 else
            f"{count / 1e3:.1f} k" if count >= 1e3 else str(count))


def _draw_u(model, blocks: list[dict[str, Any]]) -> Figure:
    """The U drawing of :func:`plot_architecture`: one box per block, pools, up-convolutions, skips."""
    from matplotlib.lines import Line2D

    deepest = max(b["level"] for b in blocks)
    bottom = next(i for i, b in enumerate(blocks) if b["level"] == deepest)
    fig = Figure(figsize=(max(6.0, 1.05 * len(blocks) + 0.6), 1.0 * deepest + 2.3), layout="constrained")
    ax = fig.subplots()
    width, height = 0.9, 0.66
    for i, block in enumerate(blocks):
        y = -block["level"]
        output = block["kind"] == "output"
        ax.add_patch(Rectangle((i - width / 2, y - height / 2), width, height, linewidth=1.2,
                               facecolor="#FFFFFF" if output else "#D9ECF7", edgecolor=TRAIN_COLOUR,
                               linestyle="--" if output else "-"))
        h, w, c = block["shape"]
        what = "1×1 conv\n(output)" if output else f"{block['convs']} × 3×3 conv"
        ax.text(i, y + 0.12, f"{h}×{w}×{c}", ha="center", va="center", fontsize=9, fontweight="bold")
        ax.text(i, y - 0.15, f"{what}\n{_compact(block['params'])} params" if not output else what,
                ha="center", va="center", fontsize=7, linespacing=1.05)
        if i:
            step = block["level"] - blocks[i - 1]["level"]
            colour = PRED_ONLY if step > 0 else "#009E73" if step < 0 else "0.3"
            ax.annotate("", xy=(i - width / 2, y), xytext=(i - 1 + width / 2, -blocks[i - 1]["level"]),
                        arrowprops=dict(arrowstyle="-|>", color=colour, linewidth=1.4))
    for j in range(bottom + 1, len(blocks)):
        level = blocks[j]["level"]
        source = max((i for i in range(bottom) if blocks[i]["level"] == level), default=None)
        if source is not None and blocks[j]["kind"] == "block":
            ax.annotate("", xy=(j - width / 2, -level + 0.2), xytext=(source + width / 2, -level + 0.2),
                        arrowprops=dict(arrowstyle="-|>", color="0.45", linestyle="--", linewidth=1.0))
    ax.set(xlim=(-0.6, len(blocks) - 0.4), ylim=(-deepest - 0.5, 0.5), aspect="equal")
    ax.set_axis_off()
    ax.set_title(f"{model.name}: {model.count_params():,} parameters. Each box: one level's output, "
                 f"height × width × channels", fontsize=9)
    handles = [Line2D([], [], color=PRED_ONLY, marker=">", label="max pool 2×2 (half the size)"),
               Line2D([], [], color="#009E73", marker=">",
                      label="up-conv 2×2 (double the size; parameters in the box it feeds)"),
               Line2D([], [], color="0.45", linestyle="--", marker=">", label="skip connection (concatenated)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    return fig


def plot_architecture(model, path: str | None = None, dpi: int = 60, layout: str = "u"):
    """Draw a U-Net as a compact "U" of its levels, or Keras' layer graph.

    The default ``layout="u"`` draws one box per level (its output size and channels, its
    convolutions and parameters) on the "U": down by max pooling, up by transposed convolutions,
    with the skip connections across. It fits a notebook's width and needs only matplotlib.
    ``layout="TB"`` or ``"LR"`` draws every layer with ``keras.utils.plot_model`` (top to
    bottom or left to right), which needs the Python package pydot and the Graphviz program
    ``dot``; where either is missing a short Markdown note with the fix is returned instead.

    Parameters
    ----------
    model
        A Keras model (a U-Net for ``layout="u"``: see :func:`unet_blocks`).
    path
        Where to write the PNG (optional for ``"u"``; a temporary file for the graph by default).
    dpi
        Resolution of the written PNG.
    layout
        ``"u"`` (default), ``"TB"`` or ``"LR"`` (passed to ``plot_model`` as ``rankdir``).

    Returns
    -------
    matplotlib.figure.Figure, IPython.display.Image or IPython.display.Markdown
        The U drawing; or the layer graph, or the note; each displays as the last expression of a
        cell.

    Raises
    ------
    ValueError
        An unknown ``layout``, or ``"u"`` for a model without 2-D convolutions.

    Examples
    --------
    >>> plot_architecture(model)                 # doctest: +SKIP
    <Figure size 1000x620 with 1 Axes>
    >>> plot_architecture(model, layout="LR")    # doctest: +SKIP
    <IPython.core.display.Image object>
    """
    if layout not in ("u", "TB", "LR"):
        raise ValueError(f"layout={layout!r}: use 'u' (the levels as a U), 'TB' or 'LR' (every layer).")
    if layout == "u":
        blocks = unet_blocks(model)
        if not blocks:
            raise ValueError(f"{model.name} has no Conv2D layers to draw as a U; try layout='TB'.")
        fig = _draw_u(model, blocks)
        if path:
            fig.savefig(path, dpi=dpi)
        return fig

    import shutil
    import tempfile

    import keras
    from IPython.display import Image, Markdown

    fix = ("install Graphviz (`sudo apt-get install graphviz`, `brew install graphviz`, or "
           "`conda install graphviz`) and the Python package pydot, then run this cell again")
    if shutil.which("dot") is None:
        return Markdown(f"**Note:** the layer graph needs the Graphviz program `dot`, which is "
                        f"not installed here; {fix}. The `summary()` above shows the same layers.")
    try:
        import pydot  # noqa: F401
    except ImportError:
        return Markdown(f"**Note:** the layer graph needs pydot; {fix}.")
    path = path or tempfile.mkstemp(suffix=".png")[1]
    try:
        keras.utils.plot_model(model, to_file=path, show_shapes=True, dpi=dpi, rankdir=layout)
    except (ImportError, OSError) as error:
        return Markdown(f"**Note:** could not draw the layer graph ({error}); {fix}.")
    return Image(filename=path)


def plot_resampling(masks: Mapping[str, Any], window: tuple[float, float, float, float] = (0.0, 0.25, 0.0, 0.25)
                    ) -> Figure:
    """Show the same window of several versions of one mask, e.g. bilinear vs nearest resizing.

    Each panel shows the pixel values with a colour scale from 0 (black) to 1 (yellow), so
    in-between values that bilinear interpolation invents (a pixel "half membrane") stand out.
    The title gives the mask's size and how many distinct values it holds.

    Parameters
    ----------
    masks
        ``{name: mask}``, each (H, W) or (H, W, 1); sizes may differ.
    window
        ``(top, bottom, left, right)`` as fractions of height and width, so masks of different
        sizes show the same area of the slice.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per mask and a colour bar.

    Examples
    --------
    >>> small = {"nearest": np.eye(8), "bilinear": np.full((8, 8), 0.5)}
    >>> len(plot_resampling(small).axes)
    3
    """
    top, bottom, left, right = window
    if not (0 <= top < bottom <= 1 and 0 <= left < right <= 1):
        raise ValueError(f"window {window} must be (top, bottom, left, right) fractions with "
                         f"0 <= top < bottom <= 1 and 0 <= left < right <= 1, e.g. (0, 0.25, 0, 0.25).")
    fig = Figure(figsize=(PANEL * len(masks) + 0.6, PANEL + 0.3), layout="constrained")
    axes = fig.subplots(1, len(masks), squeeze=False)[0]
    for ax, (name, mask) in zip(axes, masks.items()):
        m = _batch(mask)[0, ..., 0]
        h, w = m.shape
        crop = m[round(top * h):round(bottom * h), round(left * w):round(right * w)]
        im = ax.imshow(crop, cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set(xticks=[], yticks=[])
        ax.set_title(f"{name} {h}x{w}\n{np.unique(m).size} distinct values", fontsize=9)
    fig.colorbar(im, ax=list(axes), fraction=0.046, label="mask value (1 = membrane)")
    return fig


def plot_histories(histories: Mapping[str, Any], metrics: Sequence[str] = ("loss", "accuracy")) -> Figure:
    """Compare the training curves of several runs: one panel per metric, one colour per run.

    Validation values are drawn solid, training values dashed, in the run's colour.

    Parameters
    ----------
    histories
        ``{run name: history}``; each history as accepted by :func:`plot_history`.
    metrics
        Names without the ``val_`` prefix.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per metric.

    Examples
    --------
    >>> runs = {"a": {"loss": [0.7, 0.5], "val_loss": [0.8, 0.6]}, "b": {"loss": [0.6, 0.3]}}
    >>> len(plot_histories(runs, metrics=["loss"]).axes[0].lines)
    3
    """
    curves = {name: {key: np.asarray(values) for key, values in as_history(history).items()}
              for name, history in histories.items()}
    for name, data in curves.items():
        missing = [m for m in metrics if m not in data and f"val_{m}" not in data]
        if missing:
            raise ValueError(f"Run {name!r} logged no {missing}; it logged {sorted(data)}.")
    colours = [TRAIN_COLOUR, VAL_COLOUR, PRED_ONLY, "#009E73", "#CC79A7"]
    fig = Figure(figsize=(3.8 * len(metrics), 3.0), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics):
        for i, (name, data) in enumerate(curves.items()):
            colour = colours[i % len(colours)]
            for key, style, label in ((f"val_{metric}", "-", "validation"), (metric, "--", "train")):
                if key in data:
                    ax.plot(np.arange(1, len(data[key]) + 1), data[key], style, marker=".",
                            color=colour, label=f"{name} ({label})")
        ax.set(title=metric, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7)
    return fig


def _window(window: tuple[int, int, int, int] | None, height: int, width: int,
            example: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """``window`` (top, bottom, left, right) checked to lie inside the image; None = the whole image."""
    top, bottom, left, right = window or (0, height, 0, width)
    if not (0 <= top < bottom <= height and 0 <= left < right <= width):
        raise ValueError(f"window {window} must be (top, bottom, left, right) pixels inside the "
                         f"{height}x{width} image, e.g. {example}.")
    return top, bottom, left, right


def plot_seams(whole: Any, plain: Any, blended: Any, tile: int,
               window: tuple[int, int, int, int] | None = None) -> Figure:
    """Show where tiled predictions differ from a whole-image prediction: the seams.

    Top row: the probability maps from side-by-side tiles (``plain``) and from overlapping,
    blended tiles (``blended``). Bottom row: their absolute difference to ``whole``, the
    prediction of the whole image at once, on the same colour scale. Dashed lines mark the
    edges of the side-by-side tiles, where the seams appear.

    Parameters
    ----------
    whole, plain, blended
        Membrane probabilities of one image, (H, W) or (H, W, 1).
    tile
        Tile size of ``plain`` (its edges are drawn every ``tile`` pixels).
    window
        ``(top, bottom, left, right)`` in pixels to zoom into, e.g. around a tile corner;
        default: the whole image.

    Returns
    -------
    matplotlib.figure.Figure
        Four image axes and a colour bar for each row.

    Examples
    --------
    >>> p = np.random.rand(64, 64)
    >>> len(plot_seams(p, p, p, tile=32, window=(16, 48, 16, 48)).axes)
    6
    """
    maps = [_batch(a)[0, ..., 0] for a in (whole, plain, blended)]
    if len({m.shape for m in maps}) != 1:
        raise ValueError(f"whole, plain and blended must have the same size; got "
                         f"{[m.shape for m in maps]}.")
    height, width = maps[0].shape
    top, bottom, left, right = _window(window, height, width, example=(tile - 32, tile + 32, tile - 32, tile + 32))
    crop = [m[top:bottom, left:right] for m in maps]
    diffs = [np.abs(crop[1] - crop[0]), np.abs(crop[2] - crop[0])]
    vmax = max(float(max(d.max() for d in diffs)), 1e-6)
    fig = Figure(figsize=(2 * PANEL + 1.0, 2 * PANEL + 0.4), layout="constrained")
    axes = fig.subplots(2, 2)
    panels = [(crop[1], "side-by-side tiles", "gray", 1.0), (crop[2], "overlapping, blended", "gray", 1.0),
              (diffs[0], "|side-by-side - whole|", "magma", vmax), (diffs[1], "|blended - whole|", "magma", vmax)]
    for ax, (panel, title, cmap, top_value) in zip(axes.ravel(), panels):
        im = ax.imshow(panel, cmap=cmap, vmin=0.0, vmax=top_value, interpolation="nearest",
                       extent=(left - 0.5, right - 0.5, bottom - 0.5, top - 0.5))
        for edge in range(tile, max(height, width), tile):
            if left < edge < right:
                ax.axvline(edge - 0.5, color="#56B4E9", linestyle="--", linewidth=0.8)
            if top < edge < bottom:
                ax.axhline(edge - 0.5, color="#56B4E9", linestyle="--", linewidth=0.8)
        ax.set_title(f"{title}\nmax {panel.max():.3f}" if cmap == "magma" else title, fontsize=9)
        ax.set(xticks=[], yticks=[], xlim=(left - 0.5, right - 0.5), ylim=(bottom - 0.5, top - 0.5))
        if ax in axes[:, 1]:
            fig.colorbar(im, ax=list(axes[0] if cmap == "gray" else axes[1]), fraction=0.046,
                         label="P(membrane)" if cmap == "gray" else "absolute difference")
    return fig


def plot_compare(image: Any, truth: Any, a: Any, b: Any, names: tuple[str, str],
                 window: tuple[int, int, int, int] | None = None,
                 thresholds: tuple[float, float] | None = (0.5, 0.5)) -> Figure:
    """Compare two models' predictions of one image, like with like, and show where each is right.

    Panels, all cropped to ``window``: the image, the true membranes, model A's and model B's
    prediction, and a difference map. With ``thresholds`` the predictions are shown as binary
    masks (membrane white), each thresholded at its own value, e.g. the threshold chosen for
    that model on validation images. With ``thresholds=None`` both are shown as probability
    maps on one colour scale with a colour bar. The difference map always compares the
    thresholded masks (at 0.5 when ``thresholds`` is None): where they disagree, blue marks
    pixels model A gets right (and B wrong) against ``truth``, orange pixels model B gets right;
    the legend counts both. Elsewhere it shows the true membranes in light gray on white, so the
    coloured pixels can be placed.

    Parameters
    ----------
    image
        (H, W) or (H, W, 1) gray image in [0, 1].
    truth
        True mask of the image, (H, W) or (H, W, 1), 1 = membrane.
    a, b
        Membrane probabilities (or masks) of the same size from model A and model B.
    names
        Two short names, ``(name of A, name of B)``, used in titles and the legend.
    window
        ``(top, bottom, left, right)`` in pixels to zoom into; default: the whole image.
        Thin membranes are only visible in a crop of about 100-200 pixels.
    thresholds
        ``(threshold of A, threshold of B)``: membrane where the probability is above it; or
        ``None`` to show probability maps.

    Returns
    -------
    matplotlib.figure.Figure
        Five image axes (image, truth, A, B, difference), a colour bar when probability maps
        are shown, and a legend for the difference colours.

    Raises
    ------
    ValueError
        ``image``, ``truth``, ``a`` and ``b`` are not one image each or differ in size, ``names``
        or ``thresholds`` do not have two entries, or ``window`` lies outside the image.

    Examples
    --------
    >>> truth = np.zeros((64, 64)); truth[30:33] = 1
    >>> a, b = np.roll(truth, 1, axis=0), np.roll(truth, 4, axis=0)
    >>> fig = plot_compare(truth, truth, a, b, names=("A", "B"), window=(16, 48, 16, 48))
    >>> [ax.get_title() for ax in fig.axes[:4]]
    ['image', 'truth', 'A: p > 0.5', 'B: p > 0.5']
    >>> fig = plot_compare(truth, truth, a, b, names=("A", "B"), thresholds=None)
    >>> len(fig.axes)  # five panels and a colour bar
    6
    """
    maps = [np.asarray(m, dtype=np.float32) for m in (image, truth, a, b)]
    maps = [m[..., 0] if m.ndim == 3 and m.shape[-1] == 1 else m for m in maps]
    if any(m.ndim != 2 for m in maps) or len({m.shape for m in maps}) != 1:
        raise ValueError(f"image, truth, a and b must be one image each, (H, W) or (H, W, 1), of the same "
                         f"size; got {[m.shape for m in maps]} (pick one image of a batch, e.g. x_hold[0]).")
    if len(names) != 2 or (thresholds is not None and len(thresholds) != 2):
        raise ValueError(f"names {names!r} and thresholds {thresholds!r} need one entry per model, "
                         f"e.g. names=('BCE + Jaccard', 'BCE'), thresholds=(0.4, 0.5).")
    top, bottom, left, right = _window(window, *maps[0].shape,
                                       example=(0, min(maps[0].shape[0], 128), 0, min(maps[0].shape[1], 128)))
    x, t, pa, pb = (m[top:bottom, left:right] for m in maps)
    cut_a, cut_b = thresholds if thresholds is not None else (0.5, 0.5)
    ma, mb, t = pa > cut_a, pb > cut_b, t > 0.5
    a_right, b_right = (ma != mb) & (ma == t), (ma != mb) & (mb == t)
    diff = np.repeat(np.where(t, 0.75, 1.0)[..., None], 3, axis=-1)  # light gray: true membrane
    diff[a_right], diff[b_right] = to_rgb(TRAIN_COLOUR), to_rgb(VAL_COLOUR)
    if thresholds is None:
        shown = [(pa, f"{names[0]}: P(membrane)"), (pb, f"{names[1]}: P(membrane)")]
    else:
        shown = [(ma, f"{names[0]}: p > {cut_a:g}"), (mb, f"{names[1]}: p > {cut_b:g}")]
    cmap = "viridis" if thresholds is None else "gray"
    panels = [(x, "image", "gray"), (t, "truth", "gray")] + [(m, title, cmap) for m, title in shown]
    fig = Figure(figsize=(5 * PANEL + 0.8 * (thresholds is None), PANEL + 0.6), layout="constrained")
    axes = fig.subplots(1, 5)
    for ax, (panel, title, cmap) in zip(axes, panels):
        im = ax.imshow(panel.astype(np.float32), cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_title(title, fontsize=9)
    axes[4].imshow(diff, interpolation="nearest")
    axes[4].set_title("where they disagree", fontsize=9)
    for ax in axes:
        ax.set(xticks=[], yticks=[])
    if thresholds is None:
        fig.colorbar(im, ax=list(axes[2:4]), fraction=0.046, label="P(membrane)")
    labels = [(TRAIN_COLOUR, f"{names[0]} right, {names[1]} wrong: {a_right.sum()} px"),
              (VAL_COLOUR, f"{names[1]} right, {names[0]} wrong: {b_right.sum()} px"),
              ((0.75, 0.75, 0.75), "true membrane (where they agree)")]
    fig.legend(handles=[Patch(facecolor=c, edgecolor="black", linewidth=0.3, label=text) for c, text in labels],
               loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    return fig


def plot_weight_map(image: Any, mask: Any, weight_map: Any, size: int | None = 160) -> Figure:
    """Show an image, its mask and the U-Net paper's weight map (:mod:`helpers.weights`).

    Parameters
    ----------
    image, mask
        (H, W[, 1]) image in [0, 1] and its binary mask (1 = membrane).
    weight_map
        (H, W) weights, e.g. ``weights.border_weight_map(mask)``.
    size
        Show the top-left ``size`` x ``size`` corner (narrow gaps are too small to see in a whole
        512-px slice); None shows everything.

    Returns
    -------
    matplotlib.figure.Figure
        Three image axes and a colour bar for the weights (viridis, colour-blind safe).

    Examples
    --------
    >>> mask = np.zeros((8, 8)); mask[:, 3:5] = 1
    >>> len(plot_weight_map(mask, mask, 1 + 9 * mask).axes)
    4
    """
    x, m = _batch(image)[0], _batch(mask)[0]
    w = np.asarray(weight_map, dtype=np.float32).reshape(m.shape[:2])
    corner = (slice(0, size), slice(0, size))
    fig = Figure(figsize=(3 * PANEL + 0.6, PANEL + 0.4), layout="constrained")
    axes = fig.subplots(1, 3)
    _show(axes[0], x[corner], "image")
    _show(axes[1], m[corner], "mask (1 = membrane)", cmap="gray")
    im = axes[2].imshow(w[corner], cmap="viridis", vmin=0.0)
    axes[2].set(xticks=[], yticks=[])
    axes[2].set_title("weight map w(x)", fontsize=9)
    fig.colorbar(im, ax=axes[2], fraction=0.046)
    return fig


# ---------------------------------------------------------------------------------------------
# more than two classes, and objects


def class_colours(num_classes: int) -> list[tuple[float, float, float]]:
    """RGB colours (0-1) of the classes 0..K-1: the Okabe-Ito palette, class 0 black, repeated after 8.

    Examples
    --------
    >>> [tuple(round(channel, 2) for channel in colour) for colour in class_colours(3)]
    [(0.0, 0.0, 0.0), (0.9, 0.62, 0.0), (0.34, 0.71, 0.91)]
    """
    return [tuple(channel / 255 for channel in CLASS_PALETTE[k % len(CLASS_PALETTE)]) for k in range(num_classes)]


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
        Columns: image, ground truth (if ``truths``), prediction (if ``predictions``); class k in
        the colour of :func:`class_colours`, named in the legend.

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
    k = len(class_names)
    x = _batch(images)
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
            if masks is None:
                _show(axes[i, j], x[i], label)
            else:
                axes[i, j].imshow(colour_classes(masks[i], k), interpolation="nearest")
                axes[i, j].set(xticks=[], yticks=[])
                if label:
                    axes[i, j].set_title(label, fontsize=9)
    handles = [Patch(facecolor=colour, edgecolor="0.5", linewidth=0.5, label=name)
               for colour, name in zip(class_colours(k), class_names)]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(k, 6), fontsize=8, frameon=False)
    return fig


def colour_instances(image: np.ndarray, labels: np.ndarray, alpha: float = 0.45, seed: int = 0) -> np.ndarray:
    """An image with every object of ``labels`` tinted in a colour of its own and outlined in white.

    Colours are the seven Okabe-Ito colours (not black), given to the objects at random (``seed``),
    so neighbours may share one; the white outline keeps them apart.

    Parameters
    ----------
    image
        (H, W) or (H, W, C) in [0, 1].
    labels
        Instance labels (H, W), 0 = background (left untinted).
    alpha
        Opacity of the tint.
    seed
        Seed of the colour assignment.

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

    img = _batch(image)[0]
    rgb = np.clip(img[..., :3] if img.shape[-1] >= 3 else np.repeat(img[..., :1], 3, -1), 0, 1).astype(np.float64)
    labels = np.asarray(labels)
    labels = labels[..., 0] if labels.ndim == 3 and labels.shape[-1] == 1 else labels
    if labels.shape != rgb.shape[:2]:
        raise ValueError(f"labels {labels.shape} and image {rgb.shape[:2]} differ in size; pass the labels of "
                         f"this image.")
    labels = labels.astype(np.int64)
    colours = np.asarray(class_colours(len(CLASS_PALETTE))[1:])
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
        ``{title: instance labels (H, W)}``, e.g. ``{"true cells": truth, "found cells": found}``;
        each panel's title gets the number of objects.
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
    img = _batch(image)[0]
    height, width = img.shape[:2]
    top, bottom, left, right = _window(window, height, width, example=(0, min(height, 128), 0, min(width, 128)))
    fig = Figure(figsize=(PANEL * (1 + len(labels)), PANEL + 0.3), layout="constrained")
    axes = fig.subplots(1, 1 + len(labels), squeeze=False)[0]
    _show(axes[0], img[top:bottom, left:right], "image")
    for ax, (title, label_image) in zip(axes[1:], labels.items()):
        label_image = np.asarray(label_image)
        label_image = label_image[..., 0] if label_image.ndim == 3 and label_image.shape[-1] == 1 else label_image
        count = np.unique(label_image[label_image > 0]).size
        coloured = colour_instances(img, label_image, alpha)
        _show(ax, coloured[top:bottom, left:right], f"{title} ({count})")
    return fig
