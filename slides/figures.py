"""Figures of the slide deck, drawn with matplotlib from the ISBI 2012 data or computed examples.

Each public ``fig_*`` function returns a :class:`matplotlib.figure.Figure`; :data:`FIGURES`
maps the file name used in ``slides.md`` (``figures/<name>.png``) to its function, and
:func:`make_figures` draws the ones a deck refers to.

Examples
--------
>>> from pathlib import Path
>>> from slides import figures
>>> paths = figures.make_figures(["maxpool.png"], Path("/tmp/figs"), data_dir=None)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import patches  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from scipy import ndimage  # noqa: E402
from skimage import filters, io, measure, morphology  # noqa: E402

# the code the notebooks run
from helpers import augment, data, evaluate, losses, metrics, models, plots, tiles, weights  # noqa: E402
from slides import examples  # noqa: E402



def _colour(index: int, tint: float = 0.0) -> tuple[float, float, float]:
    """Colour ``index`` of :data:`helpers.plots.PALETTE` (the one palette) as RGB in [0, 1], mixed with
    white by ``tint`` (0 = the colour itself, 1 = white) for the backgrounds of number tables."""
    return tuple((1 - tint) * channel / 255 + tint for channel in plots.PALETTE[index])


ORANGE, SKY, GREEN, YELLOW, BLUE, VERMILLION, PURPLE = (_colour(k) for k in range(1, 8))
GREY = (0.5, 0.5, 0.5)  # neutral: borders and reference lines, not a category
WINDOW_COLOURS = [to_hex(_colour(k, tint=0.7)) for k in (1, 2, 3, 7)]  # one per pooling window / input pixel


# --------------------------------------------------------------------------- data


def load_slice(data_dir: Path, index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Read one labelled ISBI slice as (image float in [0, 1], mask bool with True = membrane).

    Parameters
    ----------
    data_dir : Path
        Folder with ``train/image/<i>.png`` and ``train/label/<i>.png``.
    index : int
        Slice number, 0-29.

    Returns
    -------
    tuple of np.ndarray
        ``(image, mask)``, both 512x512.

    Examples
    --------
    >>> image, mask = load_slice(Path("../shared/data/isbi2012"))  # doctest: +SKIP
    """
    image_path = Path(data_dir) / "train" / "image" / f"{index}.png"
    label_path = Path(data_dir) / "train" / "label" / f"{index}.png"
    for path in (image_path, label_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found; set UNET_DATA_DIR (or --data-dir) to the ISBI 2012 folder "
                "that holds train/image and train/label"
            )
    image = io.imread(image_path).astype("float32") / 255.0
    mask = io.imread(label_path) == 0  # ISBI stores membrane as 0
    return image, mask


def _overlay(image: np.ndarray, truth: np.ndarray | None = None,
             pred: np.ndarray | None = None) -> np.ndarray:
    """A 2-D grey image with masks coloured in by :func:`helpers.plots.overlay`, as in the notebooks.

    Its colours (:data:`helpers.plots.OVERLAY_COLOURS`) mean one thing each: membrane in both yellow, in the
    ground truth only sky blue, in the prediction only vermillion; a true mask drawn alone green.
    """
    return plots.overlay(image[..., None], truth=truth, pred=pred)


def _show(ax: plt.Axes, image: np.ndarray, title: str, **kwargs) -> None:
    ax.imshow(image, cmap=kwargs.pop("cmap", "gray"), **kwargs)
    ax.set_title(title, fontsize=12)
    ax.axis("off")


def _grid(ax: plt.Axes, values: np.ndarray, title: str, colours: np.ndarray | None = None,
          fmt: str = "{:g}", fontsize: int = 14) -> None:
    """Draw a small matrix as a table of numbers, optionally with cell colours."""
    rows, cols = values.shape
    for r in range(rows):
        for c in range(cols):
            face = colours[r][c] if colours is not None else "white"
            ax.add_patch(patches.Rectangle((c, rows - 1 - r), 1, 1, facecolor=face, edgecolor="black"))
            ax.text(c + 0.5, rows - 0.5 - r, fmt.format(values[r, c]), ha="center", va="center",
                    fontsize=fontsize)
    ax.set_xlim(-0.05, cols + 0.05)
    ax.set_ylim(-0.05, rows + 0.05)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=13)
    ax.axis("off")


# --------------------------------------------------------------------------- introduction


def fig_cv_tasks(data_dir: Path) -> plt.Figure:
    """Classification, detection, semantic and instance segmentation on one EM crop."""
    image, mask = load_slice(data_dir, 0)
    crop = np.s_[100:292, 100:292]
    image, mask = image[crop], mask[crop]
    cells = measure.label(~mask, connectivity=1)
    inside = [region for region in measure.regionprops(cells)  # whole cells only
              if min(region.bbox[:2]) > 0 and max(region.bbox[2:]) < image.shape[0]]
    regions = sorted(inside, key=lambda region: region.area, reverse=True)

    fig, axes = plt.subplots(1, 4, figsize=(13, 3.8))
    _show(axes[0], image, 'Classification:\n"nerve tissue"')
    _show(axes[1], image, "Object detection:\nboxes around cells")
    for region in regions[:6]:
        top, left, bottom, right = region.bbox
        axes[1].add_patch(patches.Rectangle((left, top), right - left, bottom - top,
                                            fill=False, edgecolor=ORANGE, linewidth=2))
    _show(axes[2], _overlay(image, mask), "Semantic segmentation:\nevery pixel membrane or not")
    colours = plt.get_cmap("tab20")(np.arange(cells.max() + 1) % 20)[:, :3]
    instance = colours[cells]
    instance[cells == 0] = 0
    _show(axes[3], instance, "Instance segmentation:\neach cell its own label")
    fig.tight_layout()
    return fig


def fig_isbi_data(data_dir: Path) -> plt.Figure:
    """One training slice, its label and the overlay."""
    image, mask = load_slice(data_dir, 0)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
    _show(axes[0], image, "EM slice 0 (512 x 512)")
    _show(axes[1], mask, f"Mask: membrane = 1 ({mask.mean():.0%} of pixels)")
    _show(axes[2], _overlay(image, mask), "Overlay (true membrane in green)")
    fig.tight_layout()
    return fig


def _pixel_features(image: np.ndarray) -> dict[str, np.ndarray]:
    """A small hand-made feature stack, like the one a Trainable-Weka-style tool computes."""
    return {
        "Gaussian σ=2": filters.gaussian(image, sigma=2),
        "gradient (Sobel)": filters.sobel(filters.gaussian(image, sigma=1)),
        "LoG σ=2": -filters.laplace(filters.gaussian(image, sigma=2), ksize=3),
        "ridges (Sato)": filters.sato(image, sigmas=[1, 2], black_ridges=True),
    }


def fig_pixel_pipeline(data_dir: Path) -> plt.Figure:
    """Per-pixel features + a linear per-pixel classifier fitted on slice 0, applied to slice 25."""
    crop = np.s_[:256, :256]  # a quarter slice keeps the build quick
    train_image, train_mask = (array[crop] for array in load_slice(data_dir, 0))
    test_image, test_mask = (array[crop] for array in load_slice(data_dir, 25))

    def design(image: np.ndarray) -> np.ndarray:
        stack = [image, *_pixel_features(image).values()]
        return np.stack([feature.ravel() for feature in stack] + [np.ones(image.size)], axis=1)

    weights, *_ = np.linalg.lstsq(design(train_image), train_mask.ravel().astype(float), rcond=None)
    score = (design(test_image) @ weights).reshape(test_image.shape)
    predicted = score > 0.5
    accuracy = (predicted == test_mask).mean()

    fig, axes = plt.subplots(1, 6, figsize=(15, 3.2))
    _show(axes[0], test_image, "input")
    for ax, (name, feature) in zip(axes[1:5], _pixel_features(test_image).items()):
        _show(ax, feature, name)
    _show(axes[5], _overlay(test_image, test_mask, predicted),
          f"classifier vs truth ({accuracy:.0%} of pixels)\nyellow found, blue missed,\n"
          "vermillion false membrane")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- architecture


UNET_ARGS = dict(input_shape=(128, 128, 1), num_classes=1, filters=64, dropout=0.2, use_batch_norm=False,
                 output_activation="sigmoid")
"""The U-Net on the architecture slide: notebook 1's model (keras-unet's ``custom_unet``), four levels."""


def unet_model() -> "keras.Model":
    """Build the U-Net of :data:`UNET_ARGS` with :func:`helpers.models.custom_unet`, as notebook 1 does."""
    args = dict(UNET_ARGS)
    return models.custom_unet(args.pop("input_shape"), **args)


def fig_unet_diagram(data_dir: Path | None = None) -> plt.Figure:
    """Notebook 1's U-Net as the notebook draws it: :func:`helpers.plots.plot_architecture`."""
    return plots.plot_architecture(unet_model())


def fig_conv_detector(data_dir: Path) -> plt.Figure:
    """A dark-ridge kernel applied with a Keras convolution to a real EM crop."""
    import keras

    image, mask = load_slice(data_dir, 0)
    crop = np.s_[200:328, 200:328]
    image, mask = image[crop], mask[crop]
    # A 7x7 "dark line" detector: negative Laplacian-of-Gaussian, so thin dark ridges light up.
    yy, xx = np.mgrid[-3:4, -3:4].astype("float32")
    sigma = 1.2
    r2 = (xx**2 + yy**2) / (2 * sigma**2)
    kernel = (1 - r2) * np.exp(-r2)
    kernel = -(kernel - kernel.mean())
    layer = keras.layers.Conv2D(1, 7, padding="same", use_bias=False)
    layer.build((1, *image.shape, 1))
    layer.set_weights([kernel[:, :, None, None]])
    response = keras.ops.convert_to_numpy(layer(image[None, :, :, None]))[0, :, :, 0]
    relu = np.maximum(response, 0)

    fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
    _show(axes[0], image, "EM crop (128 × 128)")
    limit = np.abs(kernel).max()
    axes[1].imshow(kernel, cmap="RdBu_r", vmin=-limit, vmax=limit)
    axes[1].set_title("7×7 kernel\n(dark-ridge detector)", fontsize=12)
    axes[1].axis("off")
    _show(axes[2], relu, "Conv2D output after ReLU", cmap=plots.VALUE_CMAP)
    _show(axes[3], mask, "membrane (ground truth)")
    fig.tight_layout()
    return fig


def fig_maxpool(data_dir: Path | None = None) -> plt.Figure:
    """The 4x4 -> 2x2 max-pooling example, output computed by keras.layers.MaxPooling2D."""
    result = examples.max_pooling()
    window = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])
    colours = np.array(WINDOW_COLOURS, dtype=object)[window]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.6), gridspec_kw={"width_ratios": [2, 1.2]})
    _grid(axes[0], result["input"], "input 4 × 4", colours)
    out_colours = np.array(WINDOW_COLOURS, dtype=object).reshape(2, 2)
    out = result["output"]
    _grid(axes[1], out, "MaxPooling2D(2) → 2 × 2", out_colours)
    axes[1].set_ylim(-1, 3)
    fig.tight_layout()
    return fig


def fig_transposed_conv(data_dir: Path | None = None) -> plt.Figure:
    """Matrix (16x4) @ vector (4x1) = 16x1, reshaped to 4x4, equal to Conv2DTranspose."""
    result = examples.transposed_convolution()
    matrix, vector = result["matrix"], result["vector"]
    product = (matrix @ vector)
    column_colours = np.array(WINDOW_COLOURS, dtype=object)
    colours = np.where(matrix != 0, column_colours[None, :], "white")

    fig = plt.figure(figsize=(13, 6))
    spec = fig.add_gridspec(2, 6, width_ratios=[1.1, 1.3, 2.2, 0.6, 0.6, 2.0], height_ratios=[1, 1])
    ax = fig.add_subplot(spec[0, 0])
    _grid(ax, result["input"], "input 2×2", column_colours.reshape(2, 2), fontsize=13)
    ax = fig.add_subplot(spec[1, 0])
    _grid(ax, result["kernel"], "kernel 3×3", fontsize=13)
    ax = fig.add_subplot(spec[:, 2])
    _grid(ax, matrix, "kernel as a 16×4 matrix", colours, fontsize=10)
    ax = fig.add_subplot(spec[:, 3])
    _grid(ax, vector, "input\n4×1", column_colours[:, None], fontsize=10)
    ax = fig.add_subplot(spec[:, 4])
    _grid(ax, product, "product\n16×1", fontsize=10)
    ax = fig.add_subplot(spec[0, 5])
    _grid(ax, result["product"], "reshaped to 4×4", fontsize=12)
    ax = fig.add_subplot(spec[1, 5])
    same = np.allclose(result["product"], result["keras"], atol=1e-6)
    _grid(ax, result["keras"], f"Conv2DTranspose: {'identical' if same else 'DIFFERENT'}",
          fontsize=12)
    fig.text(0.215, 0.5, "→", fontsize=30, ha="center", va="center")
    fig.tight_layout()
    return fig


def fig_padding(data_dir: Path | None = None) -> plt.Figure:
    """4x4 image, zero-padded to 6x6, 3x3 convolution: 4x4 out (same) vs 2x2 (valid)."""
    result = examples.same_padding()
    padded_colours = np.full((6, 6), "0.9", dtype=object)  # light grey: the zero border
    padded_colours[1:5, 1:5] = "white"
    fig, axes = plt.subplots(1, 5, figsize=(14, 3.4), gridspec_kw={"width_ratios": [4, 3, 6, 4, 2]})
    _grid(axes[0], result["input"], "image 4×4", fontsize=12)
    _grid(axes[1], examples.PADDING_KERNEL, "kernel 3×3", fontsize=12)
    _grid(axes[2], result["padded"], "zero-padded to 6×6", padded_colours, fontsize=12)
    _grid(axes[3], result["same"], "3×3 conv → 4×4\n(= Keras 'same')", fontsize=12)
    _grid(axes[4], result["valid"], "'valid': 2×2", fontsize=12)
    axes[4].set_ylim(-1, 3)
    fig.tight_layout()
    return fig


def fig_valid_vs_same(data_dir: Path) -> plt.Figure:
    """The paper's 572 -> 388 overlap-tile (mirrored border) next to a same-padding 512 -> 512."""
    image, _ = load_slice(data_dir, 0)
    valid_out = examples.unet_output_size(572, "valid")
    same_out = examples.unet_output_size(512, "same")
    border = (572 - 512) // 2
    mirrored = np.pad(image, border, mode="reflect")

    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    _show(axes[0], mirrored, f"'valid': 572² input (mirrored border) → {valid_out}² output")
    axes[0].add_patch(patches.Rectangle((border - 0.5, border - 0.5), 512, 512, fill=False,
                                        edgecolor=GREY, linestyle="--", linewidth=1.5))
    start = (572 - valid_out) / 2
    axes[0].add_patch(patches.Rectangle((start, start), valid_out, valid_out, fill=False,
                                        edgecolor=VERMILLION, linewidth=2.5))
    _show(axes[1], image, f"'same': 512² input → {same_out}² output")
    axes[1].add_patch(patches.Rectangle((0, 0), same_out - 1, same_out - 1, fill=False,
                                        edgecolor=VERMILLION, linewidth=2.5))
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- training


AUGMENT_SEED = 3
"""Seed of the four transforms on the augmentation slide (any seed shows the same code at work)."""


def augmented_examples(image: np.ndarray, mask: np.ndarray, args: dict, n: int = 4,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random transforms of one image and its mask, made by the notebooks' augmentation code.

    The pairs come from :func:`helpers.augment.get_augmented` with ``pipeline="numpy"``, which
    draws each transform with :func:`helpers.augment.random_matrices` (the same composition as the
    tf.data pipeline) and applies it with :func:`helpers.augment.warp_numpy`: bilinear for the
    image, nearest neighbour for the mask, the same padding for both.

    Parameters
    ----------
    image : np.ndarray
        HxW float image.
    mask : np.ndarray
        HxW bool (or 0/1) mask.
    args : dict
        ``data_gen_args``, e.g. :data:`helpers.augment.ORIGINAL_ARGS` (notebook 1).
    n : int
        Number of transforms.
    seed : int
        Seed of the random draws.

    Returns
    -------
    tuple of np.ndarray
        ``(images, masks)``, each ``(n, H, W)`` float32; the masks hold only 0 and 1.

    Examples
    --------
    >>> images, masks = augmented_examples(np.zeros((8, 8)), np.ones((8, 8)), augment.ORIGINAL_ARGS)
    >>> images.shape, np.unique(masks).tolist()
    ((4, 8, 8), [1.0])
    """
    x = np.repeat(np.asarray(image, "float32")[None, ..., None], n, axis=0)
    y = np.repeat(np.asarray(mask, "float32")[None, ..., None], n, axis=0)
    batches = augment.get_augmented(x, y, batch_size=n, data_gen_args=args, seed=seed,
                                    shuffle=False, pipeline="numpy")
    images, masks = batches[0]
    return images[..., 0], masks[..., 0]


def fig_augmentation(data_dir: Path) -> plt.Figure:
    """Random transforms of notebook 1's augmentation (``augment.ORIGINAL_ARGS``) of a real slice."""
    image, mask = load_slice(data_dir, 0)
    crop = np.s_[:256, :256]
    image, mask = image[crop], mask[crop]
    images, masks = augmented_examples(image, mask, augment.ORIGINAL_ARGS, n=4, seed=AUGMENT_SEED)
    columns = [("original", image, mask)]
    columns += [(f"random transform {i + 1}", *pair) for i, pair in enumerate(zip(images, masks))]
    fig, axes = plt.subplots(2, len(columns), figsize=(14, 6.4))
    for col, (title, aug_image, aug_mask) in enumerate(columns):
        _show(axes[0, col], aug_image, title)
        _show(axes[1, col], _overlay(aug_image, aug_mask),
              "its mask (nearest neighbour)" if col else "mask (green)")
    fig.suptitle("augment.ORIGINAL_ARGS (notebook 1): "
                 + examples.describe_augmentation(augment.ORIGINAL_ARGS), fontsize=13)
    fig.tight_layout()
    return fig


def fig_batch(data_dir: Path) -> plt.Figure:
    """One batch of 4 random, augmented 128-px crops, made as in notebook 2, with their masks."""
    pairs = [load_slice(data_dir, index) for index in data.SPLIT["train"]]
    x = np.stack([image for image, _ in pairs])[..., None]
    y = np.stack([mask for _, mask in pairs])[..., None].astype("float32")
    batches = augment.get_augmented(x, y, batch_size=4, data_gen_args=augment.DEFAULT_ARGS, seed=1,
                                    crop_size=128, pipeline="numpy")
    images, masks = batches[0]
    fig, axes = plt.subplots(2, 4, figsize=(10, 6.0))
    for col in range(4):
        _show(axes[0, col], images[col, ..., 0], f"pair {col + 1}")
        _show(axes[1, col], masks[col, ..., 0], "mask")
    fig.suptitle("one batch (batch size 4) of get_augmented(..., crop_size=128)\n"
                 "with notebook 2's augment.DEFAULT_ARGS", fontsize=13)
    fig.tight_layout()
    return fig


def fig_jaccard(data_dir: Path) -> plt.Figure:
    """Jaccard index of a real mask X and a deliberately shifted, thickened 'prediction' Y."""
    _, mask = load_slice(data_dir, 0)
    truth = mask[150:278, 150:278]
    shifted = np.zeros_like(truth)
    shifted[:, 3:] = truth[:, :-3]  # shift right by 3 px (no wrap-around)
    prediction = ndimage.binary_dilation(shifted, structure=morphology.disk(1))
    intersection = truth & prediction
    union = truth | prediction
    score = examples.jaccard(truth, prediction)

    picture = plots.overlay(np.ones((*truth.shape, 1)), truth, prediction, alpha=1.0)  # the notebooks' colours
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
    _show(axes[0], truth, f"X = truth, |X| = {truth.sum()}")
    pixels_right = (truth == prediction).mean()
    _show(axes[1], prediction, f"Y = prediction, |Y| = {prediction.sum()}\n"
                               f"{pixels_right:.0%} of pixels right")
    _show(axes[2], picture, f"yellow |X∩Y| = {intersection.sum()}, union {union.sum()}\n"
                            f"J = {intersection.sum()} / {union.sum()} = {score:.3f}")
    fig.tight_layout()
    return fig


CEILING_SIZE, CEILING_THRESHOLD = 128, 0.5
"""Notebook 1's IMAGE_SIZE and THRESHOLD: the size its masks are shrunk to, and the cut-off."""


def resolution_ceiling(masks: np.ndarray, size: int = CEILING_SIZE,
                       threshold: float = CEILING_THRESHOLD) -> dict:
    """True masks shrunk to ``size`` and enlarged back, scored as notebook 1, section 7, does.

    Shrinking uses nearest neighbour (as notebook 1's training masks), enlarging is bilinear and
    then thresholded (as its predictions), all with :func:`helpers.data.resize`; the score is
    :func:`helpers.evaluate.segmentation_table` against the original masks.

    Parameters
    ----------
    masks : np.ndarray
        ``(N, H, W)`` or ``(N, H, W, 1)`` true masks, 1 = membrane.
    size : int
        Side of the shrunken masks (notebook 1 trains at 128 x 128).
    threshold : float
        Cut-off applied to the enlarged masks.

    Returns
    -------
    dict
        ``small`` (N, size, size) the shrunken masks, ``back`` (N, H, W) bool the masks after the
        round trip, ``table`` the score table (a ``"mean"`` row last) and ``iou`` its mean
        membrane IoU: the best a perfect ``size``-pixel mask can score at full resolution.

    Examples
    --------
    >>> resolution_ceiling(np.zeros((1, 32, 32)), size=8)["back"].shape
    (1, 32, 32)
    """
    masks = np.asarray(masks, dtype=np.float32)
    if masks.ndim == 3:
        masks = masks[..., None]
    small = data.resize(masks, size, kind="mask")
    back = data.resize(small, masks.shape[1:3], kind="image")
    table = evaluate.segmentation_table(back, masks, threshold=threshold)
    return {"small": small[..., 0], "back": back[..., 0] > threshold, "table": table,
            "iou": float(table.loc["mean", "iou_membrane"])}


def fig_resolution_ceiling(data_dir: Path) -> plt.Figure:
    """Notebook 1's resolution ceiling: true masks through 128 px, scored at 512 px."""
    indices = data.SPLIT["validation"]
    pairs = [load_slice(data_dir, index) for index in indices]
    ceiling = resolution_ceiling(np.stack([mask for _, mask in pairs]))
    image, mask = pairs[0]
    window = np.s_[192:320, 192:320]  # 128 x 128 pixels of the first validation slice
    factor = mask.shape[0] // CEILING_SIZE
    small_window = np.s_[192 // factor:320 // factor, 192 // factor:320 // factor]
    back = ceiling["back"][0]
    iou_first = ceiling["table"].iloc[0]["iou_membrane"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.6))
    _show(axes[0], mask[window], f"true mask, slice {indices[0]} (512 px; detail)")
    _show(axes[1], ceiling["small"][0][small_window], f"shrunk to {CEILING_SIZE} px (nearest neighbour)",
          interpolation="nearest")
    _show(axes[2], _overlay(image[window], mask[window], back[window]),
          f"enlarged back (bilinear, > {CEILING_THRESHOLD:g}):\n"
          f"yellow kept, blue lost, vermillion added\n(membrane IoU of slice {indices[0]}: {iou_first:.3f})")
    fig.suptitle(f"membrane IoU at 512 px of the true masks through {CEILING_SIZE} px, validation slices "
                 f"{indices[0]}–{indices[-1]}: {ceiling['iou']:.3f} (data.resize, evaluate.segmentation_table)",
                 fontsize=13)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig


TILE, OVERLAP = 192, 64
"""Tiling of the slide's figure: 4 x 4 tiles, so the 512-px slice gets a reflected border."""


def tiling_demo(image: np.ndarray, tile: int = TILE, overlap: int = OVERLAP) -> dict:
    """Cut a slice into overlapping tiles and stitch them with :mod:`helpers.tiles`.

    The same calls as :func:`helpers.tiles.predict_tiled`: :func:`~helpers.tiles.get_patches`
    with stride ``tile - overlap`` (bottom and right border padded by reflection),
    :func:`~helpers.tiles.blend_window` and :func:`~helpers.tiles.reconstruct_from_patches`.

    Parameters
    ----------
    image : np.ndarray
        HxW float image.
    tile, overlap : int
        Tile side and overlap of neighbouring tiles in pixels.

    Returns
    -------
    dict
        ``info`` (the :class:`~helpers.tiles.TileInfo`), ``padded`` (the reflect-padded image
        the tiles were cut from), ``window`` (one tile's blending weights), ``profiles`` (the
        weight of each column of tiles along one row of the padded image, one row per column of
        tiles), ``two_valued`` (the stitch of tiles that each hold 0 or 1, in a checkerboard)
        and ``restored`` (the stitch of the image's own tiles: the image again).

    Examples
    --------
    >>> demo = tiling_demo(np.random.rand(100, 100), tile=48, overlap=16)
    >>> demo["padded"].shape, np.array_equal(demo["restored"], demo["padded"][:100, :100])
    ((112, 112), True)
    """
    stride = tile - overlap
    patches, info = tiles.get_patches(np.asarray(image, "float32")[..., None], tile, stride)
    padded = np.zeros(info.padded_shape, patches.dtype)
    for patch, (top, left) in zip(patches[..., 0], info.positions):
        padded[top : top + tile, left : left + tile] = patch
    window = tiles.blend_window(tile, overlap)
    lefts = sorted({left for _, left in info.positions})
    profiles = np.zeros((len(lefts), info.padded_shape[1]))
    for profile, left in zip(profiles, lefts):
        profile[left : left + tile] = window.max(axis=0)
    checker = np.array([(top // stride + left // stride) % 2 for top, left in info.positions])
    two_valued = np.broadcast_to(checker[:, None, None, None], patches.shape).astype("float32")
    return {
        "info": info,
        "padded": padded,
        "window": window,
        "profiles": profiles,
        "two_valued": tiles.reconstruct_from_patches(two_valued, info, window)[..., 0],
        "restored": tiles.reconstruct_from_patches(patches, info, window)[..., 0],
    }


def fig_tiling(data_dir: Path) -> plt.Figure:
    """Overlapping tiles on a reflect-padded slice, the sin² blending weights and a blended stitch."""
    image, _ = load_slice(data_dir, 0)
    demo = tiling_demo(image)
    info, (height, width) = demo["info"], image.shape
    padded_h, padded_w = info.padded_shape
    per_side = len(demo["profiles"])
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.7), gridspec_kw={"width_ratios": [1, 1, 1.3, 1]})
    _show(axes[0], demo["padded"], f"get_patches: {per_side}×{per_side} tiles of {TILE}², "
          f"overlap {OVERLAP}\nborder reflected: {width}² → {padded_w}²")
    cmap = plt.get_cmap("tab10")
    for top, left in info.positions:
        i, j = top // info.stride, left // info.stride
        axes[0].add_patch(patches.Rectangle((left + 2 * j, top + 2 * i), TILE - 4, TILE - 4,
                                            fill=False, edgecolor=cmap((i + j) % 10), lw=1.5))
    axes[0].add_patch(patches.Rectangle((-0.5, -0.5), width, height, fill=False, edgecolor="white",
                                        linestyle="--", lw=2))
    _show(axes[1], demo["window"], f"blend_window({TILE}, {OVERLAP}):\nsin² weight of one tile",
          cmap=plots.VALUE_CMAP, vmin=0, vmax=1)
    ax = axes[2]
    for k, profile in enumerate(demo["profiles"]):
        ax.plot(profile, color=cmap(k % 10), lw=1.5)
    ax.plot(demo["profiles"].sum(axis=0), "k--", lw=2, label="sum of the weights")
    ax.axvspan(width - 0.5, padded_w, color=GREY, alpha=0.25, label="reflected border")
    ax.set(xlim=(0, padded_w), ylim=(0, 1.3), xlabel="x along one row (pixels)", ylabel="weight")
    ax.set_title("the weights of neighbouring tiles\nadd up to 1 across each overlap", fontsize=12)
    ax.legend(loc="upper center", ncols=2, fontsize=9, frameon=False)
    _show(axes[3], demo["two_valued"], "reconstruct_from_patches of tiles\nof 0 and 1: "
          "Σ w·p / Σ w fades over the overlap", vmin=0, vmax=1)
    fig.tight_layout()
    return fig


def optimiser_paths(steps: int = 60) -> dict[str, np.ndarray]:
    """Run Keras SGD and Adam on the 1-D loss w⁴ - 3w² + w from two starting points.

    Parameters
    ----------
    steps : int
        Number of updates per run.

    Returns
    -------
    dict
        Name of the run -> array of the weight after each step (``steps + 1`` values).

    Examples
    --------
    >>> paths = optimiser_paths(5)  # doctest: +SKIP
    """
    import keras

    runs = {"SGD, start w = 2": (keras.optimizers.SGD(learning_rate=0.02), 2.0),
            "Adam, start w = 2": (keras.optimizers.Adam(learning_rate=0.1), 2.0),
            "SGD, second run (new start w = -0.3)": (keras.optimizers.SGD(learning_rate=0.02), -0.3)}
    paths = {}
    for name, (optimiser, start) in runs.items():
        weight = keras.Variable(start, dtype="float32")
        path = [start]
        for _ in range(steps):
            w = keras.ops.convert_to_numpy(weight)
            gradient = 4 * w**3 - 6 * w + 1  # d/dw of w^4 - 3w^2 + w
            optimiser.apply_gradients([(keras.ops.convert_to_tensor(gradient, "float32"), weight)])
            path.append(float(keras.ops.convert_to_numpy(weight)))
        paths[name] = np.array(path)
    return paths


def fig_optimisers(data_dir: Path | None = None) -> plt.Figure:
    """Loss curve with a local and a global minimum, and where each optimiser run ends."""
    def loss(w: np.ndarray) -> np.ndarray:
        return w**4 - 3 * w**2 + w

    w = np.linspace(-2.0, 2.1, 400)
    fig, ax = plt.subplots(figsize=(10, 4.6))
    ax.plot(w, loss(w), color="black", lw=2, label="loss")
    for (name, path), colour, marker in zip(optimiser_paths().items(), [BLUE, ORANGE, GREEN],
                                            ["o", "s", "^"]):
        ax.plot(path, loss(path), marker=marker, ms=4, lw=1, color=colour, alpha=0.8,
                label=f"{name}: ends at w = {path[-1]:.2f}, loss {loss(path[-1]):.2f}")
    ax.set_xlabel("weight w")
    ax.set_ylabel("loss")
    ax.legend(loc="upper center", fontsize=10)
    ax.set_ylim(-4.2, 8)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- notebook 2: loss and scores


TRAP_CONSTANTS = np.round(np.concatenate([np.linspace(0.02, 0.98, 49), [0.999]]), 6)
"""Constant predictions of the Jaccard-trap figure, up to notebook 2's 0.999."""


def constant_prediction_losses(masks: np.ndarray, constants=TRAP_CONSTANTS) -> dict[str, np.ndarray]:
    """Mean loss of a prediction that is the same probability everywhere, for each constant.

    The comparison of notebook 2, section 5 (its "trap" table), with the notebooks' own losses:
    :func:`helpers.losses.jaccard_loss`, Keras' binary cross-entropy and
    :func:`helpers.losses.bce_jaccard_loss`.

    Parameters
    ----------
    masks : np.ndarray
        ``(N, H, W)`` or ``(N, H, W, 1)`` true masks, 1 = membrane.
    constants : sequence of float
        The constant probabilities to try, in (0, 1).

    Returns
    -------
    dict
        ``constant``, ``Jaccard``, ``BCE`` and ``BCE + Jaccard``: one value per constant.

    Examples
    --------
    >>> curves = constant_prediction_losses(np.eye(4)[None], [0.25, 0.999])  # doctest: +SKIP
    """
    import keras

    masks = np.asarray(masks, dtype=np.float32)
    if masks.ndim == 3:
        masks = masks[..., None]
    curves: dict[str, list[float]] = {"Jaccard": [], "BCE": [], "BCE + Jaccard": []}
    for p in constants:
        constant = np.full_like(masks, p)
        curves["Jaccard"].append(float(np.mean(losses.jaccard_loss(masks, constant))))
        curves["BCE"].append(float(keras.ops.mean(keras.losses.binary_crossentropy(masks, constant))))
        curves["BCE + Jaccard"].append(float(np.mean(losses.bce_jaccard_loss(masks, constant))))
    return {"constant": np.asarray(constants, dtype=float), **{k: np.array(v) for k, v in curves.items()}}


def fig_jaccard_trap(data_dir: Path) -> plt.Figure:
    """Losses of constant predictions on training masks 0-3, as notebook 2's trap table."""
    masks = np.stack([load_slice(data_dir, index)[1] for index in data.SPLIT["train"][:4]])
    curves = constant_prediction_losses(masks)
    p = curves["constant"]
    fig, ax = plt.subplots(figsize=(11, 4.6))
    for name, colour in (("BCE", BLUE), ("Jaccard", ORANGE), ("BCE + Jaccard", GREEN)):
        best = int(np.argmin(curves[name]))
        ax.plot(p, curves[name], color=colour, lw=2,
                label=f"{name}: lowest at p = {p[best]:.3g} (loss {curves[name][best]:.3f})")
        ax.plot(p[best], curves[name][best], "o", color=colour, ms=9)
    ax.axvline(masks.mean(), color=GREY, ls=":", lw=1.5,
               label=f"membrane fraction of these masks: {masks.mean():.2f}")
    ax.set_xlabel("constant prediction p (the same probability of membrane for every pixel)")
    ax.set_ylabel("mean loss")
    ax.set_ylim(0, 2.5)
    ax.legend(loc="upper center", fontsize=10)
    ax.set_title("training masks of slices 0–3; losses.jaccard_loss, keras binary_crossentropy, "
                 "losses.bce_jaccard_loss", fontsize=12)
    fig.tight_layout()
    return fig


def membrane_gap_demo(mask: np.ndarray, half: int = 3, margin: int = 24) -> dict:
    """Open one gap in a true membrane so that two cells merge, and score it as notebook 2 does.

    The gap is the ``(2 half + 1)``-pixel square of membrane, between two cells and touching no
    third, that joins two cells whose smaller one is as large as possible. The gapped mask is
    scored as a prediction with :func:`helpers.metrics.iou_np` and
    :func:`helpers.evaluate.isbi_scores` (V_rand, V_info).

    Parameters
    ----------
    mask : np.ndarray
        ``(H, W)`` bool true mask, True = membrane.
    half : int
        Half the side of the square gap.
    margin : int
        Keep the gap's centre this far from the border (at least ``half + 1``).

    Returns
    -------
    dict
        ``truth_cells`` and ``pred_cells`` (label images), ``pred`` (bool mask with the gap),
        ``gap`` (row, column of its centre), ``gap_side`` (pixels), ``iou``, ``pixel_error``, ``v_rand``, ``v_info``.

    Examples
    --------
    >>> demo = membrane_gap_demo(mask)  # doctest: +SKIP
    """
    mask = np.asarray(mask, dtype=bool)
    margin = max(margin, half + 1)
    cells = evaluate.truth_segments(mask)
    sizes = np.bincount(cells.ravel())
    height, width = mask.shape
    best = None
    for row, col in zip(*np.nonzero(mask)):
        if not (margin <= row < height - margin and margin <= col < width - margin):
            continue
        around = cells[row - half - 1:row + half + 2, col - half - 1:col + half + 2]
        touching = np.unique(around[around > 0])
        if len(touching) == 2:
            score = int(min(sizes[touching[0]], sizes[touching[1]]))
            if best is None or score > best[0]:
                best = (score, row, col)
    if best is None:
        raise ValueError("no membrane square separates exactly two cells; try a larger crop")
    _, row, col = best
    pred = mask.copy()
    pred[row - half:row + half + 1, col - half:col + half + 1] = False
    scores = evaluate.isbi_scores(pred.astype(np.float32), mask, 0.5)  # a binary mask: any threshold in (0, 1)
    return {"truth_cells": cells, "pred_cells": evaluate.truth_segments(pred), "pred": pred,
            "gap": (int(row), int(col)), "gap_side": 2 * half + 1, "iou": metrics.iou_np(pred, mask),
            "pixel_error": float((pred != mask).mean()), "v_rand": scores["v_rand"],
            "v_info": scores["v_info"]}


def fig_membrane_gap(data_dir: Path) -> plt.Figure:
    """A true mask with one membrane gap: almost no change in IoU, a large one in V_rand."""
    index = data.SPLIT["validation"][0]
    image, mask = load_slice(data_dir, index)
    crop = np.s_[128:384, 128:384]
    image, mask = image[crop], mask[crop]
    demo = membrane_gap_demo(mask)
    truth_cells, pred_cells = demo["truth_cells"], demo["pred_cells"]
    colours = plt.get_cmap("tab20")(np.arange(truth_cells.max() + 1) % 20)[:, :3]
    # each predicted cell in the colour of the true cell it mostly covers: the merged pair shares one
    majority = np.zeros(pred_cells.max() + 1, dtype=int)
    for label_ in range(1, pred_cells.max() + 1):
        covered = truth_cells[(pred_cells == label_) & (truth_cells > 0)]
        majority[label_] = np.bincount(covered).argmax() if covered.size else 0

    def coloured(cells: np.ndarray, lookup: np.ndarray) -> np.ndarray:
        picture = colours[lookup[cells]]
        picture[cells == 0] = 0
        return picture

    fig, axes = plt.subplots(1, 3, figsize=(12, 4.6))
    _show(axes[0], _overlay(image, mask, demo["pred"]),
          f"slice {index} (detail): true membrane with\none gap of {demo['gap_side']} px (circled, blue)")
    _show(axes[1], coloured(truth_cells, np.arange(truth_cells.max() + 1)),
          f"true cells: {truth_cells.max()}")
    _show(axes[2], coloured(pred_cells, majority), f"cells the gapped membrane separates: "
                                                   f"{pred_cells.max()}\n(two have merged)")
    for ax in axes:
        ax.add_patch(patches.Circle(demo["gap"][::-1], 12, fill=False, edgecolor="red", linewidth=2))
    fig.suptitle(f"the gapped mask as a prediction: membrane IoU {demo['iou']:.3f}, pixel error "
                 f"{demo['pixel_error']:.4f}, but V_rand {demo['v_rand']:.3f} and V_info {demo['v_info']:.3f} "
                 "(helpers.evaluate)", fontsize=13)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig


def fig_weight_map(data_dir: Path) -> plt.Figure:
    """The U-Net paper's weight map of a real training mask: class balance plus the border term."""
    index = data.SPLIT["train"][0]
    image, mask = load_slice(data_dir, index)
    crop = np.s_[:192, :192]
    balance = weights.class_balance(mask)
    full = weights.border_weight_map(mask)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.4))
    _show(axes[0], _overlay(image[crop], mask[crop]), f"slice {index} (detail) and its membrane")
    top = float(full[crop].max())
    for ax, values, title in [(axes[1], balance, "class balance $w_c$ alone"),
                              (axes[2], full, f"$w_c$ + border term ($w_0$ = {weights.W0:g}, $\\sigma$ = {weights.SIGMA:g} px)")]:
        shown = ax.imshow(values[crop], cmap=plots.VALUE_CMAP, vmin=0, vmax=top)
        ax.set(xticks=[], yticks=[])
        ax.set_title(title, fontsize=11)
    fig.colorbar(shown, ax=list(axes[1:]), fraction=0.03, label="weight of the pixel in the loss")
    fig.suptitle("weights.border_weight_map: membrane between close cells weighs most "
                 f"(mean weight {full.mean():.2f}, maximum {full.max():.1f})", fontsize=13)
    return fig


# --------------------------------------------------------------------------- registry

FIGURES: dict[str, Callable[[Path | None], plt.Figure]] = {
    "cv_tasks.png": fig_cv_tasks,
    "isbi_data.png": fig_isbi_data,
    "pixel_pipeline.png": fig_pixel_pipeline,
    "unet_diagram.png": fig_unet_diagram,
    "conv_detector.png": fig_conv_detector,
    "maxpool.png": fig_maxpool,
    "transposed_conv.png": fig_transposed_conv,
    "padding.png": fig_padding,
    "valid_vs_same.png": fig_valid_vs_same,
    "augmentation.png": fig_augmentation,
    "batch.png": fig_batch,
    "jaccard.png": fig_jaccard,
    "tiling.png": fig_tiling,
    "optimisers.png": fig_optimisers,
    "resolution_ceiling.png": fig_resolution_ceiling,
    "jaccard_trap.png": fig_jaccard_trap,
    "membrane_gap.png": fig_membrane_gap,
    "weight_map.png": fig_weight_map,
}
"""File name (as used in slides.md) -> function drawing it."""


def make_figures(names: Iterable[str], out_dir: Path, data_dir: Path | None,
                 dpi: int = 110) -> list[Path]:
    """Draw the named figures into ``out_dir`` as PNG files.

    Parameters
    ----------
    names : iterable of str
        Keys of :data:`FIGURES`.
    out_dir : Path
        Folder to write into (created if needed).
    data_dir : Path or None
        ISBI 2012 folder for the figures that use real data.
    dpi : int
        Resolution of the PNG files.

    Returns
    -------
    list of Path
        The written files.

    Examples
    --------
    >>> make_figures(["maxpool.png"], Path("/tmp/figs"), None)  # doctest: +SKIP
    [PosixPath('/tmp/figs/maxpool.png')]
    """
    unknown = sorted(set(names) - set(FIGURES))
    if unknown:
        raise ValueError(f"slides refer to unknown figures {unknown}; "
                         f"add them to FIGURES in {Path(__file__).name} (known: {sorted(FIGURES)})")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in dict.fromkeys(names):
        fig = FIGURES[name](data_dir)
        path = out_dir / name
        fig.savefig(path, dpi=dpi, facecolor="white", bbox_inches="tight", pad_inches=0.1)
        plt.close(fig)
        written.append(path)
    return written


if __name__ == "__main__":  # draw every figure into build/slides/figures for a quick look
    isbi = Path(os.environ.get("UNET_DATA_DIR", Path(__file__).resolve().parents[2] / "shared/data/isbi2012"))
    make_figures(FIGURES, Path("build/slides/figures"), isbi)
