"""The workshop's figures; each returns a :class:`matplotlib.figure.Figure` (no pyplot, no ``plt.show()``)."""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator

from helpers.runs import as_history

#: The one colour palette (Okabe-Ito, colour-blind safe) as 8-bit RGB; class k gets ``PALETTE[k]``.
PALETTE: tuple[tuple[int, int, int], ...] = ((0, 0, 0), (230, 159, 0), (86, 180, 233), (0, 158, 115),
                                             (240, 228, 66), (0, 114, 178), (213, 94, 0), (204, 121, 167))
_ORANGE, _SKY, _GREEN, _YELLOW, _BLUE, _VERMILLION, _PINK = (tuple(c / 255 for c in rgb) for rgb in PALETTE[1:])
OVERLAY_COLOURS = {"both": _YELLOW, "missed": _SKY, "false": _VERMILLION, "truth": _GREEN, "prediction": _PINK}
_OVERLAY_TEXT = {"both": "membrane: both", "missed": "missed (truth only)", "false": "false (prediction only)",
                 "truth": "true membrane", "prediction": "predicted membrane"}  # one meaning per colour, everywhere
PROB_CMAP, VALUE_CMAP = "viridis", "magma"  # the one map of P(membrane); weights and differences (never P)
PANEL = 2.6  # inches per image panel
Window = tuple[int, int, int, int]  # (top, bottom, left, right) in pixels
OVERLAY_ALPHA = 0.75  # opacity of the overlay colours: the tissue stays faintly visible
_MASK_ALPHA = 0.6  # opacity of a mask drawn alone on its image


def as_images(images: Any) -> np.ndarray:
    """Images as float32 ``(N, H, W, C)`` from (H, W), (H, W, C) with C in 1, 3, 4, (N, H, W) or (N, H, W, C).

    Examples
    --------
    >>> as_images(np.zeros((2, 8, 8))).shape
    (2, 8, 8, 1)
    """
    a = np.asarray(images, dtype=np.float32)
    if a.ndim == 2:
        return a[None, ..., None]
    if a.ndim == 3:
        return a[None] if a.shape[-1] in (1, 3, 4) else a[..., None]
    if a.ndim == 4:
        return a
    raise ValueError(f"images has shape {a.shape}; pass an image or a batch of images (2 to 4 axes).")


def show_image(ax, image: np.ndarray, title: str | None = None, **kwargs) -> None:
    """Draw one (H, W, C) image into ``ax`` without ticks: gray in [0, 1] when C == 1, else RGB.

    Examples
    --------
    >>> show_image(Figure().subplots(), np.zeros((4, 4, 1)), "empty")
    """
    if image.shape[-1] == 1:
        kwargs = {"cmap": "gray", "vmin": 0.0, "vmax": 1.0, **kwargs}
        image = image[..., 0]
    ax.imshow(image if image.ndim == 2 else np.clip(image[..., :3], 0.0, 1.0), **kwargs)
    ax.set(xticks=[], yticks=[])
    ax.set_title(title or "", fontsize=9)


def check_window(window: Window | None, height: int, width: int) -> Window:
    """``window`` (top, bottom, left, right) in pixels, checked to lie inside the image; None = all of it.

    Examples
    --------
    >>> check_window(None, 64, 32)
    (0, 64, 0, 32)
    """
    top, bottom, left, right = window or (0, height, 0, width)
    if not (0 <= top < bottom <= height and 0 <= left < right <= width):
        raise ValueError(f"window {window} must be (top, bottom, left, right) pixels inside the {height}x{width} "
                         f"image, e.g. {(0, min(height, 128), 0, min(width, 128))}.")
    return top, bottom, left, right


def overlay(image: np.ndarray, truth: np.ndarray | None = None, pred: np.ndarray | None = None,
            alpha: float = 0.5) -> np.ndarray:
    """Colour masks onto an (H, W, C) image, as RGB, in :data:`OVERLAY_COLOURS` (one mask alone: green or purple).

    Examples
    --------
    >>> overlay(np.zeros((4, 4, 1)), truth=np.ones((4, 4, 1))).shape
    (4, 4, 3)
    """
    rgb = np.clip(image[..., :3] if image.shape[-1] >= 3 else np.repeat(image[..., :1], 3, -1), 0, 1)
    t = np.zeros(rgb.shape[:2], bool) if truth is None else np.asarray(truth).reshape(rgb.shape[:2]) > 0.5
    p = np.zeros(rgb.shape[:2], bool) if pred is None else np.asarray(pred).reshape(rgb.shape[:2]) > 0.5
    out, c = rgb.copy(), OVERLAY_COLOURS
    for region, colour in ((t & p, c["both"]), (t & ~p, c["truth" if pred is None else "missed"]),
                           (~t & p, c["prediction" if truth is None else "false"])):
        out[region] = (1 - alpha) * rgb[region] + alpha * np.array(colour)
    return out


def _legend(fig: Figure, truth: bool, pred: bool) -> None:
    """The legend of the overlay colours that the figure shows."""
    if keys := ["both", "missed", "false"] if truth and pred else ["truth"] * truth + ["prediction"] * pred:
        fig.legend(handles=[Patch(color=OVERLAY_COLOURS[key], label=_OVERLAY_TEXT[key]) for key in keys],
                   loc="outside lower center", ncols=len(keys), fontsize=8, frameon=False)


def plot_imgs(images: Any, masks: Any = None, predictions: Any = None, threshold: float = 0.5,
              titles: Sequence[str] | None = None) -> Figure:
    """Show images, ground truth, prediction (with a colour bar) and their overlay, one row per image.

    Parameters
    ----------
    images, masks, predictions
        Images (N, H, W[, C]) in [0, 1], true masks (1 = membrane), predicted probabilities; the last two optional.
    threshold, titles
        Membrane in the overlay where the probability is greater; one label per image, above its first panel.

    Examples
    --------
    >>> fig = plot_imgs(x_val[:3], y_val[:3], model.predict(x_val[:3]))   # doctest: +SKIP
    """
    x = as_images(images)
    y = None if masks is None else as_images(masks)
    p = None if predictions is None else as_images(predictions)
    n = len(x)
    for name, other in (("masks", y), ("predictions", p)):
        if other is not None and len(other) < n:
            raise ValueError(f"{name} has {len(other)} entries for {n} images; pass one per image.")
    shown = 1 + (y is not None) if p is not None and not np.isin(p, (0, 1)).all() else None  # a saved mask: None
    columns = ["original", "ground truth", "prediction" if shown else "predicted mask", "overlay"]
    columns = [c for c, on in zip(columns, (True, y is not None, p is not None, y is not None or p is not None)) if on]
    fig = Figure(figsize=(PANEL * len(columns), PANEL * n + 0.4 + 0.6 * (p is not None)), layout="constrained")
    axes = fig.subplots(n, len(columns), squeeze=False)
    for i in range(n):
        panels = [x[i]] + ([y[i]] if y is not None else []) + ([p[i]] if p is not None else [])
        if len(columns) > len(panels):
            binary = None if p is None else p[i] > threshold
            panels.append(overlay(x[i], None if y is None else y[i], binary, OVERLAY_ALPHA))
        for j, (ax, panel) in enumerate(zip(axes[i], panels)):
            title = titles[i] if titles is not None and j == 0 else columns[j] if i == 0 else None
            show_image(ax, panel, title, **({"cmap": PROB_CMAP} if j == shown else {}))
    if shown is not None:
        fig.colorbar(axes[0, shown].images[0], ax=list(axes[:, shown]), location="bottom", shrink=0.8,
                     aspect=25, pad=0.01, label="P(membrane)")
    _legend(fig, y is not None, p is not None)
    return fig


def _logged(history: Any, metrics: Sequence[str] | None, run: str = "the history") -> tuple[dict, list[str]]:
    """A history as ``{key: array}`` and the metrics to plot (default: all), checked to be logged."""
    data = {key: np.asarray(values) for key, values in as_history(history).items()}
    names = list(dict.fromkeys(metrics if metrics is not None else [k.removeprefix("val_") for k in data]))
    missing = [m for m in names if m not in data and f"val_{m}" not in data]
    if missing or not names:
        raise ValueError(f"metrics: {run} logged no {missing or 'metric'}; it logged {sorted(data)}.")
    return data, names


def plot_history(history: Any, metrics: Sequence[str] | None = None,
                 baselines: Mapping[str, float | Mapping[str, float]] | None = None) -> Figure:
    """Plot training curves: one panel per metric, training and validation (``val_``) values.

    Parameters
    ----------
    history, metrics
        A Keras ``History``, dict or DataFrame (:func:`helpers.runs.as_history`); names without ``val_`` (default all).
    baselines
        Dotted levels by metric: a number or ``{label: value}`` (labels "train..."/"val..." take that colour).

    Raises
    ------
    ValueError
        A metric that was not logged, or a baseline for a metric that is not plotted.

    Examples
    --------
    >>> len(plot_history({"loss": [0.7, 0.5], "val_loss": [0.8, 0.6]}).axes)
    1
    """
    data, names = _logged(history, metrics)
    baselines = dict(baselines or {})
    if stray := sorted(set(baselines) - set(names)):
        raise ValueError(f"baselines for {stray}, which are not plotted; plotted: {names}.")
    fig = Figure(figsize=(3.6 * len(names), 3.0), layout="constrained")
    for ax, name in zip(fig.subplots(1, len(names), squeeze=False)[0], names):
        draw_curves(ax, data, name, baselines.get(name, {}))
    return fig


def draw_curves(ax, history: Mapping, name: str, baselines: float | Mapping[str, float] | None = None) -> None:
    """Draw one metric's training and validation curves (and dotted baselines) into ``ax``.

    Examples
    --------
    >>> draw_curves(Figure().subplots(), {"loss": [0.7, 0.5], "val_loss": [0.8, 0.6]}, "loss")
    """
    for key, label, colour in ((name, "train", _BLUE), (f"val_{name}", "validation", _ORANGE)):
        if key in history:
            ax.plot(np.arange(1, len(history[key]) + 1), history[key], marker=".", label=label, color=colour)
    levels = baselines if isinstance(baselines, Mapping) else {} if baselines is None else {"baseline": baselines}
    for label, value in levels.items():
        colour = _BLUE if label.startswith("train") else _ORANGE if label.startswith("val") else "0.45"
        ax.axhline(float(value), color=colour, linestyle=":", linewidth=1.5, label=label)
    ax.set(title=name, xlabel="epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8)


def plot_histories(histories: Mapping[str, Any], metrics: Sequence[str] = ("loss", "accuracy")) -> Figure:
    """Compare runs' training curves: one panel per metric, one colour per run (validation solid, train dashed).

    Examples
    --------
    >>> runs = {"a": {"loss": [0.7, 0.5], "val_loss": [0.8, 0.6]}, "b": {"loss": [0.6, 0.3]}}
    >>> len(plot_histories(runs, metrics=["loss"]).axes[0].lines)
    3
    """
    curves = {name: _logged(history, metrics, f"run {name!r}")[0] for name, history in histories.items()}
    colours = [_BLUE, _ORANGE, _VERMILLION, _GREEN, _PINK]
    fig = Figure(figsize=(3.8 * len(metrics), 3.0), layout="constrained")
    for ax, metric in zip(fig.subplots(1, len(metrics), squeeze=False)[0], metrics):
        for i, (name, data) in enumerate(curves.items()):
            for key, style, label in ((f"val_{metric}", "-", "validation"), (metric, "--", "train")):
                if key in data:
                    ax.plot(np.arange(1, len(data[key]) + 1), data[key], style, marker=".",
                            color=colours[i % len(colours)], label=f"{name} ({label})")
        ax.set(title=metric, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7)
    return fig


def plot_threshold_curve(table: Any, chosen: float | None = None) -> Figure:
    """Plot scores against the binarisation threshold, marking the chosen threshold.

    Parameters
    ----------
    table, chosen
        A DataFrame of thresholds (``threshold`` column) and scores (numeric columns), e.g. from
        :func:`helpers.evaluate.threshold_curve`; the threshold to mark with a dashed line.

    Examples
    --------
    >>> import pandas as pd
    >>> fig = plot_threshold_curve(pd.DataFrame({"threshold": [0.3, 0.5], "iou": [0.6, 0.7]}), chosen=0.5)
    """
    if "threshold" not in table.columns:
        raise ValueError(f"table needs a 'threshold' column; it has {list(table.columns)}.")
    fig = Figure(figsize=(4.5, 3.2), layout="constrained")
    ax = fig.subplots()
    for name in table.select_dtypes("number").columns.drop("threshold"):
        ax.plot(table["threshold"].to_numpy(float), table[name].to_numpy(float), marker=".", label=name)
    if chosen is not None:
        ax.axvline(chosen, color="black", linestyle="--", linewidth=1, label=f"chosen {chosen:.2f}")
    ax.set(xlabel="threshold", ylabel="score", title="Score vs threshold")
    ax.legend(fontsize=8)
    return fig


def _grid(count: int, ncols: int | None, panel: float = PANEL) -> tuple[Figure, list]:
    """A figure with exactly ``count`` axes on a grid (unused grid cells are removed)."""
    ncols = max(1, min(count, ncols or math.ceil(math.sqrt(count))))
    fig = Figure(figsize=(panel * ncols, panel * math.ceil(count / ncols) + 0.4), layout="constrained")
    axes = list(fig.subplots(math.ceil(count / ncols), ncols, squeeze=False).ravel())
    for ax in axes[count:]:
        fig.delaxes(ax)
    return fig, axes[:count]


def plot_tiles(tiles: Any, ncols: int | None = None) -> Figure:
    """Show tiles, e.g. from :func:`helpers.tiles.get_patches`, on a grid of ``ncols`` columns, titled by index.

    Examples
    --------
    >>> len(plot_tiles(np.zeros((5, 8, 8, 1)), ncols=3).axes)
    5
    """
    t = as_images(tiles)
    fig, axes = _grid(len(t), ncols, panel=1.6)
    for i, ax in enumerate(axes):
        show_image(ax, t[i], str(i))
    return fig


def plot_augmented_batch(images: Any, masks: Any, n: int = 8, titles: Sequence[str] | None = None,
                         original: tuple[Any, Any] | None = None) -> Figure:
    """Show augmented training pairs, each image with its mask overlaid, four panels per row.

    Parameters
    ----------
    images, masks, n
        A batch, e.g. ``next(iter(get_augmented(...)))``, and how many of its pairs to show.
    titles, original
        One title per pair (default "augmented 1", ... with ``original``, none without); ``(image, mask)``
        before augmentation, shown first as "original".

    Examples
    --------
    >>> fig = plot_augmented_batch(np.zeros((3, 8, 8, 1)), np.zeros((3, 8, 8, 1)))
    """
    x, y = as_images(images), as_images(masks)
    count = min(n, len(x), len(y))
    titles = list(titles if titles is not None else
                  [f"augmented {i + 1}" if original is not None else "" for i in range(count)])
    if len(titles) < count:
        raise ValueError(f"titles has {len(titles)} entries for {count} panels; pass one title per shown pair.")
    pairs = [(x[i], y[i], titles[i]) for i in range(count)]
    if original is not None:
        pairs.insert(0, (as_images(original[0])[0], as_images(original[1])[0], "original"))
    fig, axes = _grid(len(pairs), ncols=4)
    for ax, (image, mask, title) in zip(axes, pairs):
        show_image(ax, overlay(image, truth=mask, alpha=_MASK_ALPHA), title)
    _legend(fig, truth=True, pred=False)
    return fig


def _shear_matrix(angle: float, height: int, width: int) -> np.ndarray:
    """The 3 x 3 shear about the image centre the augmentation draws: output (x, y) -> input point."""
    s = math.radians(angle)
    centre = np.array([[1.0, 0.0, (width - 1) / 2], [0.0, 1.0, (height - 1) / 2], [0.0, 0.0, 1.0]])
    shear = np.array([[math.cos(s), 0.0, 0.0], [-math.sin(s), 1.0, 0.0], [0.0, 0.0, 1.0]])
    return centre @ shear @ np.linalg.inv(centre)


def _elongation(matrix: np.ndarray) -> float:
    """How much a transform stretches a circle: the long over the short axis of the resulting ellipse."""
    return float(np.linalg.cond(np.asarray(matrix, float)[:2, :2]))  # largest / smallest singular value


def plot_shear(image: Any, mask: Any, angles: Sequence[float] = (0.0, 5.0, 50.0)) -> Figure:
    """Show one image and its mask sheared as the augmentation shears them, and how that elongates a round cell.

    Parameters
    ----------
    image, mask, angles
        One (H, W[, C]) image in [0, 1], its mask (1 = membrane), and the shear angles in degrees.

    Examples
    --------
    >>> [ax.get_title() for ax in plot_shear(np.random.rand(16, 16), np.zeros((16, 16)), angles=(0, 50)).axes]
    ['shear 0°\\ncircle -> 1.0 : 1', 'shear 50°\\ncircle -> 2.7 : 1']
    """
    from helpers.augment_numpy import warp_numpy

    x, y = as_images(image)[:1], as_images(mask)[:1]
    fig, axes = _grid(len(angles), ncols=len(angles))
    for ax, angle in zip(axes, angles):
        m = _shear_matrix(float(angle), *x.shape[1:3])[None]
        sheared, sheared_mask = (warp_numpy(a, m, order=order, fill_mode="reflect")[0] for a, order in ((x, 1), (y, 0)))
        show_image(ax, overlay(sheared, truth=sheared_mask, alpha=_MASK_ALPHA),
                   f"shear {float(angle):g}°\ncircle -> {_elongation(m[0]):.1f} : 1")
    _legend(fig, truth=True, pred=False)
    return fig


def _three_panels(panels: list[tuple[np.ndarray, str]], map_at: int, vmax: float | None, cmap: str) -> Figure:
    """Three ``(image, title)`` panels in a row; the one at ``map_at`` in ``cmap`` (0 to ``vmax``) with a colour bar."""
    fig = Figure(figsize=(3 * PANEL + 0.6, PANEL + 0.4), layout="constrained")
    for i, (ax, (panel, title)) in enumerate(zip(fig.subplots(1, 3), panels)):
        show_image(ax, panel, title, **({"cmap": cmap, "vmax": vmax} if i == map_at else {}))
    fig.colorbar(fig.axes[map_at].images[0], ax=fig.axes[map_at], fraction=0.046)
    return fig


def plot_probability(image: Any, prob: Any, threshold: float = 0.5) -> Figure:
    """Show one image, its membrane probability (:data:`PROB_CMAP`, with a colour bar) and the thresholded overlay.

    Examples
    --------
    >>> len(plot_probability(np.zeros((8, 8)), np.full((8, 8), 0.7)).axes)
    4
    """
    x, p = as_images(image)[0], as_images(prob)[0]
    m = overlay(x, pred=p > threshold, alpha=OVERLAY_ALPHA)
    fig = _three_panels([(x, "image"), (p, "P(membrane)"), (m, f"membrane (p > {threshold:g})")], 1, 1.0, PROB_CMAP)
    _legend(fig, truth=False, pred=True)
    return fig


def plot_weight_map(image: Any, mask: Any, weight_map: Any, size: int | None = 160) -> Figure:
    """Show an image, its mask and its weight map (:mod:`helpers.weights`), the top-left ``size`` pixels.

    Examples
    --------
    >>> mask = np.zeros((8, 8)); mask[:, 3:5] = 1
    >>> len(plot_weight_map(mask, mask, 1 + 9 * mask).axes)
    4
    """
    x, m = as_images(image)[0], as_images(mask)[0]
    w = np.asarray(weight_map, dtype=np.float32).reshape(m.shape)
    panels = [(x, "image"), (m, "mask (1 = membrane)"), (w, "weight map w(x)")]
    return _three_panels([(panel[:size, :size], title) for panel, title in panels], 2, None, VALUE_CMAP)  # to w.max()


def unet_blocks(model) -> list[dict[str, Any]]:
    """A Keras U-Net's levels as blocks: the convolutions between two poolings or up-convolutions.

    Returns
    -------
    list of dict
        In model order: ``kind`` ("block" or "output"), ``level`` (0 = full size), ``shape`` (height, width,
        channels of its last layer), ``convs`` and ``params`` (every layer's count in the block it feeds).

    Examples
    --------
    >>> [b["level"] for b in unet_blocks(models.custom_unet((32, 32, 1), 4, num_layers=2))]  # doctest: +SKIP
    [0, 1, 2, 1, 0, 0]
    """
    blocks: list[dict[str, Any]] = []
    level, current, pending = 0, None, 0
    for layer in model.layers:
        kind, params = type(layer).__name__, int(layer.count_params())
        shape = tuple(layer.output.shape)[1:] if len(layer.output.shape) == 4 else None
        up = kind in ("Conv2DTranspose", "UpSampling2D")
        if kind in ("MaxPooling2D", "AveragePooling2D") or up:
            level, current = level + (-1 if up else 1), None
        if kind == "Conv2D" and shape is not None:
            is_output = tuple(layer.kernel_size) == (1, 1)
            if current is None or is_output:
                current = {"kind": "output" if is_output else "block", "level": level, "shape": shape,
                           "convs": 0, "params": pending}
                blocks.append(current)
                pending = 0
            current["shape"], current["convs"] = shape, current["convs"] + 1
        if current is not None and not up:
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


def _draw_blocks(ax, blocks: list[dict[str, Any]], width: float = 0.9, height: float = 0.66) -> None:
    """One box per block on its level, arrows between them, dashed skip connections across the U."""
    for i, block in enumerate(blocks):
        y, output = -block["level"], block["kind"] == "output"
        ax.add_patch(Rectangle((i - width / 2, y - height / 2), width, height, linewidth=1.2, edgecolor=_BLUE,
                               facecolor="#FFFFFF" if output else "#D9ECF7", linestyle="--" if output else "-"))
        what = "1×1 conv\n(output)" if output else f"{block['convs']} × 3×3 conv\n{_compact(block['params'])} params"
        ax.text(i, y + 0.12, "×".join(map(str, block["shape"])), ha="center", va="center", fontsize=9, weight="bold")
        ax.text(i, y - 0.15, what, ha="center", va="center", fontsize=7, linespacing=1.05)
        if i:
            step = block["level"] - blocks[i - 1]["level"]
            colour = _VERMILLION if step > 0 else _GREEN if step < 0 else "0.3"
            ax.annotate("", xy=(i - width / 2, y), xytext=(i - 1 + width / 2, -blocks[i - 1]["level"]),
                        arrowprops=dict(arrowstyle="-|>", color=colour, linewidth=1.4))
    bottom = next(i for i, b in enumerate(blocks) if b["level"] == max(b["level"] for b in blocks))
    for j in range(bottom + 1, len(blocks)):
        level = blocks[j]["level"]
        source = max((i for i in range(bottom) if blocks[i]["level"] == level), default=None)
        if source is not None and blocks[j]["kind"] == "block":
            ax.annotate("", xy=(j - width / 2, -level + 0.2), xytext=(source + width / 2, -level + 0.2),
                        arrowprops=dict(arrowstyle="-|>", color="0.45", linestyle="--", linewidth=1.0))


def _draw_u(name: str, blocks: list[dict[str, Any]]) -> Figure:
    """The U drawing of :func:`plot_architecture`, with its title and legend."""
    deepest = max(b["level"] for b in blocks)
    fig = Figure(figsize=(max(6.0, 1.05 * len(blocks) + 0.6), 1.0 * deepest + 2.3), layout="constrained")
    ax = fig.subplots()
    _draw_blocks(ax, blocks)
    ax.set(xlim=(-0.6, len(blocks) - 0.4), ylim=(-deepest - 0.5, 0.5), aspect="equal")
    ax.set_axis_off()
    ax.set_title(f"{name}: {sum(b['params'] for b in blocks):,} parameters. Each box: one level's output, "
                 f"height × width × channels", fontsize=9)
    arrows = [(_VERMILLION, "-", "max pool 2×2 (half the size)"), (_GREEN, "-", "up-conv 2×2 (double the size; "
              "parameters in the box it feeds)"), ("0.45", "--", "skip connection (concatenated)")]
    fig.legend(handles=[Line2D([], [], color=c, linestyle=style, marker=">", label=text) for c, style, text in arrows],
               loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    return fig


def _layer_graph(model, layout: str):
    """Keras' layer graph as an IPython Image, or a Markdown note with the fix where Graphviz or pydot is missing."""
    import keras
    from IPython.display import Image, Markdown

    fix = ("install Graphviz (`sudo apt-get install graphviz`, `brew install graphviz`, or `conda install graphviz`) "
           "and the Python package pydot, then run this cell again. The `summary()` above shows the same layers")
    try:
        import pydot  # noqa: F401

        if shutil.which("dot") is None:
            raise OSError("the Graphviz program `dot` is not installed here")
        path = tempfile.mkstemp(suffix=".png")[1]
        keras.utils.plot_model(model, to_file=path, show_shapes=True, dpi=60, rankdir=layout)
    except (ImportError, OSError) as error:
        return Markdown(f"**Note:** could not draw the layer graph ({error}); {fix}.")
    return Image(filename=path)


def plot_architecture(model, layout: str = "u"):
    """Draw a Keras U-Net as a "U" of its levels (a Figure), or its layer graph (an IPython Image, or a note).

    Parameters
    ----------
    model, layout
        A U-Net; ``"u"`` (one box per level: size, channels, convolutions, parameters), or ``"TB"`` / ``"LR"``:
        every layer by ``keras.utils.plot_model`` (needs pydot and Graphviz; else a Markdown note with the fix).

    Raises
    ------
    ValueError
        An unknown ``layout``, or ``"u"`` for a model without 2-D convolutions.

    Examples
    --------
    >>> fig = plot_architecture(models.custom_unet((128, 128, 1), filters=8))   # doctest: +SKIP
    """
    if layout not in ("u", "TB", "LR"):
        raise ValueError(f"layout={layout!r}: use 'u' (the levels as a U), 'TB' or 'LR' (every layer).")
    if layout != "u":
        return _layer_graph(model, layout)
    blocks = unet_blocks(model)
    if not blocks:
        raise ValueError(f"model {model.name} has no Conv2D layers to draw as a U; try layout='TB'.")
    return _draw_u(model.name, blocks)


def plot_resampling(masks: Mapping[str, Any], window: tuple[float, float, float, float] = (0, 0.25, 0, 0.25)) -> Figure:
    """Show the same window of several versions of one mask (e.g. resized bilinear vs nearest), values 0 to 1.

    Parameters
    ----------
    masks, window
        ``{name: mask}``, each (H, W[, 1]), sizes may differ (titles give size and distinct values);
        ``(top, bottom, left, right)`` as fractions of height and width.

    Examples
    --------
    >>> len(plot_resampling({"nearest": np.eye(8), "bilinear": np.full((8, 8), 0.5)}).axes)
    3
    """
    top, bottom, left, right = window
    if not (0 <= top < bottom <= 1 and 0 <= left < right <= 1):
        raise ValueError(f"window {window} must be (top, bottom, left, right) fractions with "
                         f"0 <= top < bottom <= 1 and 0 <= left < right <= 1, e.g. (0, 0.25, 0, 0.25).")
    fig = Figure(figsize=(PANEL * len(masks) + 0.6, PANEL + 0.3), layout="constrained")
    axes = fig.subplots(1, len(masks), squeeze=False)[0]
    for ax, (name, mask) in zip(axes, masks.items()):
        m = as_images(mask)[0]
        h, w = m.shape[:2]
        show_image(ax, m[round(top * h):round(bottom * h), round(left * w):round(right * w)],
                   f"{name} {h}x{w}\n{np.unique(m).size} distinct values", interpolation="nearest")  # gray, as masks
    fig.colorbar(axes[-1].images[0], ax=list(axes), fraction=0.046, label="mask value (1 = membrane)")
    return fig


def _same_size(maps: Sequence[Any], names: str, example: str) -> list[np.ndarray]:
    """One (H, W) float32 map per input, checked to be single images of one size."""
    maps = [np.asarray(m, dtype=np.float32) for m in maps]
    maps = [m[..., 0] if m.ndim == 3 and m.shape[-1] == 1 else m for m in maps]
    if any(m.ndim != 2 for m in maps) or len({m.shape for m in maps}) != 1:
        raise ValueError(f"{names} must be one image each, (H, W) or (H, W, 1), of the same size; got "
                         f"{[m.shape for m in maps]} (pick one image of a batch, e.g. {example}[0]).")
    return maps


def plot_seams(whole: Any, plain: Any, blended: Any, tile: int, window: Window | None = None) -> Figure:
    """Show tiled predictions (top) and their difference to the whole-image one (bottom): the seams at tile edges.

    Parameters
    ----------
    whole, plain, blended
        One image's membrane probabilities (H, W[, 1]): whole at once, side-by-side tiles, blended tiles.
    tile, window
        Tile size of ``plain`` (its edges are dashed); ``(top, bottom, left, right)`` pixels to zoom into.

    Examples
    --------
    >>> p = np.random.rand(64, 64)
    >>> len(plot_seams(p, p, p, tile=32, window=(16, 48, 16, 48)).axes)
    6
    """
    maps = _same_size((whole, plain, blended), "whole, plain and blended", "whole")
    height, width = maps[0].shape
    top, bottom, left, right = check_window(window, height, width)
    whole, plain, blended = (m[top:bottom, left:right] for m in maps)
    diffs = np.abs(plain - whole), np.abs(blended - whole)
    vmax = max(float(max(d.max() for d in diffs)), 1e-6)
    fig = Figure(figsize=(2 * PANEL + 1.0, 2 * PANEL + 0.4), layout="constrained")
    axes = fig.subplots(2, 2)
    panels = [(plain, "side-by-side tiles", PROB_CMAP, 1.0), (blended, "overlapping, blended", PROB_CMAP, 1.0),
              (diffs[0], "|side-by-side - whole|", VALUE_CMAP, vmax), (diffs[1], "|blended - whole|", VALUE_CMAP, vmax)]
    for ax, (panel, title, cmap, top_value) in zip(axes.ravel(), panels):
        show_image(ax, panel[..., None], f"{title}\nmax {panel.max():.3f}" if cmap == VALUE_CMAP else title,
                   cmap=cmap, vmax=top_value, interpolation="nearest",
                   extent=(left - 0.5, right - 0.5, bottom - 0.5, top - 0.5))
        for edge in range(tile, max(height, width), tile):
            if left < edge < right:
                ax.axvline(edge - 0.5, color="white", linestyle="--", linewidth=0.8)
            if top < edge < bottom:
                ax.axhline(edge - 0.5, color="white", linestyle="--", linewidth=0.8)
    for row, label in zip(axes, ("P(membrane)", "absolute difference")):
        fig.colorbar(row[1].images[0], ax=list(row), fraction=0.046, label=label)
    return fig


def plot_compare(image: Any, truth: Any, a: Any, b: Any, names: tuple[str, str], window: Window | None = None,
                 thresholds: tuple[float, float] = (0.5, 0.5)) -> Figure:
    """Show image, truth, the masks of models A and B, and where each is right and the other wrong (pixels counted).

    Parameters
    ----------
    image, truth, a, b
        One gray image (H, W[, 1]) in [0, 1], its true mask (1 = membrane), model A's and B's probabilities.
    names, thresholds, window
        ``(name of A, name of B)``, ``(threshold of A, threshold of B)``; ``(top, bottom, left, right)`` pixels
        to zoom into (thin membranes show in 100-200 pixels).

    Raises
    ------
    ValueError
        Not one image each of one size; ``names`` or ``thresholds`` without two entries; ``window`` outside.

    Examples
    --------
    >>> truth = np.zeros((64, 64)); truth[30:33] = 1
    >>> fig = plot_compare(truth, truth, np.roll(truth, 1, 0), np.roll(truth, 4, 0), names=("A", "B"))
    """
    maps = _same_size((image, truth, a, b), "image, truth, a and b", "x_hold")
    if len(names) != 2 or len(thresholds) != 2:
        raise ValueError(f"names {names!r} and thresholds {thresholds!r} need one entry per model, "
                         f"e.g. names=('BCE + Jaccard', 'BCE'), thresholds=(0.4, 0.5).")
    top, bottom, left, right = check_window(window, *maps[0].shape)
    x, t, pa, pb = (m[top:bottom, left:right] for m in maps)
    (cut_a, cut_b), t = thresholds, t > 0.5
    ma, mb = pa > cut_a, pb > cut_b
    a_right, b_right = (ma != mb) & (ma == t), (ma != mb) & (mb == t)
    diff = np.repeat(np.where(t, 0.75, 1.0)[..., None], 3, axis=-1)  # agree: light gray membrane, white cell
    diff[a_right], diff[b_right] = _BLUE, _ORANGE
    panels = [(x, "image"), (t, "truth"), (ma, f"{names[0]}: p > {cut_a:g}"), (mb, f"{names[1]}: p > {cut_b:g}"),
              (diff, "where they disagree")]
    fig = Figure(figsize=(5 * PANEL, PANEL + 0.6), layout="constrained")
    for ax, (panel, title) in zip(fig.subplots(1, 5), panels):
        show_image(ax, panel if panel.ndim == 3 else panel[..., None].astype(np.float32), title,
                   interpolation="nearest")
    labels = [(_BLUE, f"{names[0]} right, {names[1]} wrong: {a_right.sum()} px"),
              (_ORANGE, f"{names[1]} right, {names[0]} wrong: {b_right.sum()} px"),
              ((0.75, 0.75, 0.75), "true membrane (where they agree)")]
    fig.legend(handles=[Patch(facecolor=c, edgecolor="black", linewidth=0.3, label=text) for c, text in labels],
               loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    return fig
