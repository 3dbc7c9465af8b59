"""Train on a folder of your own images, segment a folder, score a folder: the command line's work.

Each function here is one ``python -m helpers`` subcommand without the argument parsing
(:mod:`helpers.cli` only parses the command line and calls them), so a script or notebook runs
the same steps with the same checks and writes the same files:

* :func:`train_folder` (``train``): tiles, a split by image, U-Net training, the threshold
  chosen on the validation images, and a run folder with ``model.keras``, ``history.csv``,
  ``config.json`` and ``metrics.json``;
* :func:`predict_folder` (``predict``): one ``<name>.png`` mask per input image, with the tile,
  overlap, threshold and channel conversion recorded in the run's ``config.json``;
* :func:`evaluate_folders` (``evaluate``): per-image and mean IoU, Dice and pixel error of masks
  paired by file name (plus the ISBI 2012 V_rand and V_info with ``isbi=True``).

**Channels.** ``channels=None`` keeps the images' own channel count (1 = gray, 3 = RGB) and
records ``channel_conversion: "none"``; prediction then refuses an input with a different channel
count. ``channels=1`` (or ``3``) converts every image to gray (or RGB) and records
``"rgb_to_gray"`` (or ``"gray_to_rgb"``), so prediction applies the same conversion.

**Errors** are ``FileNotFoundError``, ``ValueError`` or ``PermissionError`` naming the file and
the fix (in the command line's terms, e.g. ``--tile``); inputs and output folders are checked
before anything is written, and every file is written atomically.

Examples
--------
>>> from helpers import workflow
>>> config = workflow.train_folder("my/images", "my/masks", "runs/mine", epochs=20)   # doctest: +SKIP
>>> workflow.predict_folder("runs/mine/model.keras", "new/images", "new/masks")       # doctest: +SKIP
>>> table = workflow.evaluate_folders("new/masks", "new/true_masks")                  # doctest: +SKIP
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from helpers import files

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["train_folder", "predict_folder", "evaluate_folders", "read_for_model"]

#: Tile size and U-Net depth used when neither the caller nor config.json gives one.
DEFAULT_TILE = 128
DEFAULT_LAYERS = 4
LOSSES = ("bce", "jaccard", "bce_jaccard")
#: What the recorded ``channel_conversion`` means, keyed by ``channels``.
CONVERSIONS = {None: "none", 1: "rgb_to_gray", 3: "gray_to_rgb"}
CLASS_MEANING = {False: "training masks: value 1 (or 255) = foreground, 0 = background",
                 True: "training masks: value 0 = foreground (inverted by --invert-masks, e.g. ISBI membrane)"}
PREDICTED_MEANING = "model output = P(foreground); predicted masks: 255 = foreground, 0 = background"


def _print(line: str) -> None:
    print(line, flush=True)


def _progress(items: Iterable, desc: str):
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="image", disable=None, leave=False)  # off when not a terminal


def _versions() -> dict[str, str]:
    from helpers import __version__, env

    return {**env.versions(), "numpy": np.__version__, "helpers": __version__}


# ---------------------------------------------------------------------------------------------
# train


def _tiles(images: list[np.ndarray], tile: int) -> np.ndarray:
    """Cut every image (any size, also smaller than a tile) into ``tile`` x ``tile`` tiles."""
    from helpers.tiles import get_patches

    return np.concatenate([get_patches(image.astype(np.float32), tile)[0] for image in images])


def _predict_all(model, images: list[np.ndarray], tile: int, overlap: int) -> list[np.ndarray]:
    from helpers.tiles import predict_tiled

    return [predict_tiled(model, image, tile=tile, overlap=overlap)[..., 0] for image in images]


def train_folder(images: str | os.PathLike, masks: str | os.PathLike, out: str | os.PathLike, *,
                 epochs: int = 20, steps: int = 50, tile: int = DEFAULT_TILE, overlap: int | None = None,
                 filters: int = 16, layers: int = DEFAULT_LAYERS, dropout: float = 0.2,
                 loss: str = "bce_jaccard", val_fraction: float = 0.2, batch_size: int = 8,
                 learning_rate: float = 1e-4, channels: int | None = None, invert_masks: bool = False,
                 seed: int = 42, resume: bool = False, verbose: int = 2,
                 echo: Callable[[str], None] = _print) -> dict:
    """Train a U-Net on a folder of images and masks and write a run folder (``train``).

    Images and masks are cut into tiles, whole images are split into training and validation
    (:func:`helpers.data.split_by_image`), the model is trained with
    :func:`helpers.train.fit` (checkpoints ``best.keras``/``last.keras`` and ``history.csv`` in
    ``out``), and the best epoch's threshold is chosen on the validation images, predicted whole
    with blended tiles as :func:`predict_folder` will. ``out`` then holds ``model.keras``,
    ``config.json`` (everything :func:`predict_folder` needs) and ``metrics.json`` (validation
    scores per image).

    Parameters
    ----------
    images, masks
        Folders of images and of masks with the same file names (see
        :func:`helpers.data.load_folder`).
    out
        Run folder (created); a new run replaces an earlier run's model, config and metrics.
    epochs, steps, batch_size, learning_rate
        Total epochs (including earlier ones when resuming), batches per epoch, tiles per batch
        and the Adam learning rate.
    tile, overlap
        Tile size (divisible by ``2**layers``) and the overlap used at prediction (default
        ``tile // 4``).
    filters, layers, dropout
        Filters of the first U-Net level, pooling levels and spatial dropout rate.
    loss
        One of :data:`LOSSES`.
    val_fraction
        Fraction of the images held out for validation.
    channels
        ``None`` keeps the images' channels; 1 converts to gray, 3 to RGB (recorded).
    invert_masks
        The mask value 0 is the foreground (e.g. ISBI labels, 0 = membrane).
    seed
        Seed for the split, the weights and the augmentation.
    resume
        Continue from ``out/last.keras`` up to ``epochs``.
    verbose
        Keras ``fit`` verbosity (0, 1 or 2).
    echo
        Receives the progress lines (default: print).

    Returns
    -------
    dict
        What was written to ``config.json``.

    Raises
    ------
    FileNotFoundError
        Missing or empty folder, or ``resume`` without ``out/last.keras``.
    ValueError
        Bad tile, loss or channels; unpaired, corrupt or mismatched files (named); fewer than
        2 images; resuming with other channels than the first run.
    PermissionError
        ``out`` is not writable (checked before anything else).

    Examples
    --------
    >>> config = train_folder("my/images", "my/masks", "runs/mine", epochs=20, tile=128)   # doctest: +SKIP
    >>> config["threshold"], config["validation_images"]                                  # doctest: +SKIP
    (0.45, ['cell_3', 'cell_9'])
    """
    from helpers.data import load_folder, split_by_image

    out = files.check_writable(out)
    factor = 2 ** layers
    if tile % factor:
        suggestion = max(factor, tile // factor * factor)
        raise ValueError(f"--tile {tile} must be divisible by 2**layers = {factor} (each of the "
                         f"{layers} poolings halves it); use e.g. --tile {suggestion}.")
    if loss not in LOSSES:
        raise ValueError(f"--loss {loss!r} is not one of {', '.join(LOSSES)}.")
    if channels not in CONVERSIONS:
        raise ValueError(f"--channels {channels!r}: use None (auto, keep the images' channels), 1 (gray) or 3 (RGB).")
    overlap = tile // 4 if overlap is None else overlap
    if resume and not (out / "last.keras").is_file():
        raise FileNotFoundError(f"Cannot resume: {out / 'last.keras'} does not exist. Train without --resume "
                                f"first, or check --out.")

    data = load_folder(images, masks, channels=channels, invert_masks=invert_masks)
    train_idx, val_idx = split_by_image(len(data), val_fraction, seed)

    def pick(items: list, indices: list[int]) -> list:
        return [items[i] for i in indices]

    x_train, y_train = (_tiles(pick(part, train_idx), tile) for part in (data.images, data.masks))
    x_val, y_val = (_tiles(pick(part, val_idx), tile) for part in (data.images, data.masks))
    echo(f"{len(data)} images ({data.channels} channel(s)): {len(train_idx)} for training "
         f"({len(x_train)} tiles of {tile} px), {len(val_idx)} for validation: "
         f"{', '.join(pick(data.names, val_idx))}")

    from helpers import augment, evaluate, losses, metrics, models, train

    loss_function = {"bce": "binary_crossentropy", "jaccard": losses.jaccard_loss,
                     "bce_jaccard": losses.bce_jaccard_loss}[loss]
    model = None
    if not resume:
        for stale in ("model.keras", "config.json", "metrics.json"):  # never mix two runs in one folder
            (out / stale).unlink(missing_ok=True)
        model = train.compile_model(
            lambda: models.build_unet((None, None, data.channels), filters=filters, num_layers=layers,
                                      dropout=dropout),
            loss=loss_function, learning_rate=learning_rate, metrics=[metrics.iou], seed=seed)
    else:
        trained_on = models.load_model(out / "last.keras").input_shape[-1]
        if trained_on != data.channels:
            raise ValueError(f"{out / 'last.keras'} was trained on {trained_on}-channel images but the images now "
                             f"have {data.channels}; resume with the same --channels as the first run.")
    dataset = augment.get_augmented(x_train, y_train, batch_size=batch_size, seed=seed)
    started = time.perf_counter()
    train.fit(model, dataset, validation_data=(x_val, y_val), epochs=epochs, steps_per_epoch=steps,
              run_dir=out, resume=resume, verbose=verbose)
    seconds = time.perf_counter() - started

    # The best epoch (lowest val_loss) becomes model.keras; its threshold is chosen on the
    # validation images, predicted whole with blended tiles as `predict` will do.
    best = out / "best.keras" if (out / "best.keras").is_file() else out / "last.keras"
    model = models.load_model(best)
    val_images, val_masks = pick(data.images, val_idx), [m[..., 0] for m in pick(data.masks, val_idx)]
    probs = _predict_all(model, val_images, tile, overlap)
    threshold = evaluate.choose_threshold(probs, val_masks)
    table = evaluate.score_table(probs, val_masks, pick(data.names, val_idx), threshold)

    with files.atomic_path(out / "model.keras") as tmp:
        shutil.copyfile(best, tmp)
    files.write_json(out / "metrics.json", {"split": "validation", "threshold": threshold,
                                            **evaluate.score_table_json(table)})
    config = {
        "model": "model.keras", "checkpoint": best.name, "channels": data.channels,
        "channel_conversion": CONVERSIONS[channels], "tile": tile, "overlap": overlap,
        "num_layers": layers, "filters": filters, "threshold": threshold,
        "class_meaning": f"{CLASS_MEANING[invert_masks]}; {PREDICTED_MEANING}",
        "invert_masks": invert_masks, "loss": loss, "epochs": epochs, "seed": seed,
        "images": str(Path(images).resolve()), "masks": str(Path(masks).resolve()),
        "train_images": pick(data.names, train_idx), "validation_images": pick(data.names, val_idx),
        "train_seconds_last_session": round(seconds, 1), "versions": _versions()}
    files.write_json(out / "config.json", config)
    mean = table.loc["mean"]
    echo(f"validation ({len(val_idx)} images): threshold {threshold:.2f}, IoU {mean['iou']:.3f}, "
         f"Dice {mean['dice']:.3f}, pixel error {mean['pixel_error']:.3f}")
    echo(f"wrote {out / 'model.keras'}, history.csv, config.json, metrics.json")
    return config


# ---------------------------------------------------------------------------------------------
# predict


def _kind(channels: int) -> str:
    return {1: "gray", 3: "RGB"}.get(channels, f"{channels}-channel")


def read_for_model(path: str | os.PathLike, channels: int, conversion: str) -> np.ndarray:
    """Read an image the way the model was trained: convert channels only where recorded.

    Parameters
    ----------
    path
        The image file.
    channels
        The model's input channels (1 or 3).
    conversion
        The run's recorded ``channel_conversion`` (``"none"``, ``"rgb_to_gray"``, ``"gray_to_rgb"``).

    Raises
    ------
    ValueError
        The image's channel count differs from the model's and no conversion was recorded.

    Examples
    --------
    >>> read_for_model("new/rgb.png", channels=1, conversion="rgb_to_gray").shape   # doctest: +SKIP
    (45, 45, 1)
    """
    path = Path(path)
    image = files.read_image(path)
    if image.shape[-1] == channels:
        return image
    if conversion != "none":
        return files.read_image(path, channels=channels)
    raise ValueError(f"{path} is {_kind(image.shape[-1])} but the model was trained on {_kind(channels)} images "
                     f"with no channel conversion recorded. Convert the image to {_kind(channels)}, or retrain "
                     f"with --channels {channels} (converts {_kind(image.shape[-1])} to {_kind(channels)} at "
                     f"training and prediction).")


def _input_files(source: Path) -> list[Path]:
    if source.is_file():
        if source.suffix.lower() not in files.IMAGE_SUFFIXES:
            raise ValueError(f"{source} is not an image ({', '.join(files.IMAGE_SUFFIXES)}).")
        return [source]
    return list(files.list_images(source).values())


def predict_folder(model_path: str | os.PathLike, source: str | os.PathLike, output: str | os.PathLike, *,
                   threshold: float | None = None, tile: int | None = None, overlap: int | None = None,
                   probabilities: bool = False, echo: Callable[[str], None] = _print) -> list[Path]:
    """Write ``output/<name>.png`` ({0, 255}, the input's size) for every input image (``predict``).

    Unlike :func:`helpers.predict.segment_folder` (which takes a model in memory), this reads
    the run's ``config.json`` next to ``model_path`` for the threshold, tile, overlap and channel
    conversion, and reads every input before it writes anything.

    Parameters
    ----------
    model_path
        ``RUN_DIR/model.keras``; without ``config.json`` next to it the model's input channels,
        threshold 0.5 and no conversion are used.
    source
        An image file or a folder of images.
    output
        Folder for the masks (created; not the input folder).
    threshold, tile, overlap
        Override the recorded values (default: ``config.json``, else 0.5, 128 and ``tile // 4``).
    probabilities
        Also write ``<name>_prob.tif`` (float32 probabilities).
    echo
        Receives the summary line (default: print).

    Returns
    -------
    list of pathlib.Path
        The written masks, in input order.

    Raises
    ------
    FileNotFoundError
        Missing input or model.
    ValueError
        Output folder = input folder, corrupt model or image, more than one output channel,
        bad tile or overlap, gray/RGB mismatch without a recorded conversion.
    PermissionError
        ``output`` is not writable (checked before anything else).

    Examples
    --------
    >>> predict_folder("runs/mine/model.keras", "new/images", "new/masks")   # doctest: +SKIP
    [PosixPath('new/masks/cell_1.png'), PosixPath('new/masks/cell_2.png')]
    """
    from helpers.models import load_model

    output = files.check_writable(output)
    inputs = _input_files(Path(source))
    if output.resolve() in {path.parent.resolve() for path in inputs}:
        raise ValueError(f"--output {output} is the input folder; the masks would overwrite the images. "
                         f"Choose another output folder.")
    model_path = Path(model_path)
    config_path = model_path.parent / "config.json"
    config = files.read_json(config_path) if config_path.is_file() else {}
    model = load_model(model_path)
    if model.output_shape[-1] != 1:
        raise ValueError(f"{model_path} predicts {model.output_shape[-1]} classes; predict needs a model with one "
                         f"output channel (binary segmentation).")
    channels = int(config.get("channels", model.input_shape[-1]))
    conversion = config.get("channel_conversion", "none")
    threshold = threshold if threshold is not None else float(config.get("threshold", 0.5))
    given_tile = tile
    fixed_size = model.input_shape[1]  # a model built for one input size can only take that size
    tile = given_tile or int(config.get("tile") or fixed_size or DEFAULT_TILE)
    if overlap is None:  # the training overlap goes with the training tile; tile/4 otherwise
        overlap = int(config["overlap"]) if "overlap" in config and not given_tile else tile // 4
    factor = 2 ** int(config.get("num_layers", 0))
    if tile % factor:
        raise ValueError(f"--tile {tile} must be divisible by {factor} for this model ({config_path} says "
                         f"num_layers={config['num_layers']}); use e.g. --tile {max(factor, tile // factor * factor)}.")
    if not 0 <= overlap < tile:
        raise ValueError(f"--overlap {overlap} must be at least 0 and smaller than the tile ({tile}).")

    for path in _progress(inputs, "checking"):  # every input is readable before anything is written
        read_for_model(path, channels, conversion)
    output.mkdir(parents=True, exist_ok=True)

    from helpers.predict import segment_image

    written = []
    for path in _progress(inputs, "predicting"):
        prob, mask = segment_image(model, read_for_model(path, channels, conversion), threshold, tile, overlap)
        written.append(files.write_image(output / f"{path.stem}.png", mask))
        if probabilities:
            files.write_image(output / f"{path.stem}_prob.tif", prob.astype(np.float32))
    echo(f"wrote {len(inputs)} mask(s) to {output} (threshold {threshold:.2f}, tile {tile}, overlap {overlap})")
    return written


# ---------------------------------------------------------------------------------------------
# evaluate


def evaluate_folders(pred: str | os.PathLike, truth: str | os.PathLike, *, json_path: str | os.PathLike | None = None,
                     isbi: bool = False, echo: Callable[[str], None] = _print) -> pd.DataFrame:
    """Score predicted masks against true masks paired by file name (``evaluate``).

    Parameters
    ----------
    pred
        Folder of predicted masks ({0, 255} or {0, 1}); ``<name>_prob.tif`` files written by
        :func:`predict_folder` with ``probabilities=True`` are used for the ISBI scores.
    truth
        Folder of true masks with the same file names.
    json_path
        Also write the scores there (``{"pred", "truth", "isbi", "images", "mean"}``).
    isbi
        Truth masks are ISBI-style labels (0 = membrane, 255 = cell) and predictions mark
        membrane; adds the ISBI 2012 ``v_rand`` and ``v_info`` columns.
    echo
        Receives the printed table and summary (default: print).

    Returns
    -------
    pandas.DataFrame
        Per-image ``iou``, ``dice``, ``pixel_error`` (and ``v_rand``, ``v_info``) with a
        ``"mean"`` row (:func:`helpers.evaluate.score_table`).

    Raises
    ------
    FileNotFoundError
        A folder is missing or empty.
    ValueError
        Unpaired files (listed), masks of different sizes (both named), or masks with more
        than two values.
    PermissionError
        The folder of ``json_path`` is not writable (checked before anything else).

    Examples
    --------
    >>> evaluate_folders("new/masks", "new/true_masks").loc["mean", "iou"]   # doctest: +SKIP
    0.81
    """
    from helpers import evaluate

    if json_path:
        files.check_writable(Path(json_path).parent)
    pred_dir, truth_dir = Path(pred), Path(truth)
    preds = files.list_images(pred_dir)
    probabilities = {}  # <name>_prob.tif written by `predict --probabilities` next to <name>.png
    for stem in list(preds):
        if stem.endswith("_prob") and stem.removesuffix("_prob") in preds:
            probabilities[stem.removesuffix("_prob")] = preds.pop(stem)
    pairs = files.pair_by_name(preds, truth_dir, fix="Evaluate matching folders (files are paired by name).")
    names = list(pairs)
    pred_masks, truth_masks = [], []
    for name in _progress(names, "reading"):
        pred_path, truth_path = pairs[name]
        pred_mask, truth_mask = files.read_mask(pred_path), files.read_mask(truth_path)
        if pred_mask.shape != truth_mask.shape:
            raise ValueError(f"Size mismatch: prediction {pred_path} is {pred_mask.shape[0]}x{pred_mask.shape[1]} "
                             f"but truth {truth_path} is {truth_mask.shape[0]}x{truth_mask.shape[1]}.")
        pred_masks.append(pred_mask)
        truth_masks.append(1 - truth_mask if isbi else truth_mask)  # ISBI labels: 0 = membrane
    table = evaluate.score_table(pred_masks, truth_masks, names)
    if isbi:
        for name, pred_mask, truth_mask in zip(_progress(names, "V_rand/V_info"), pred_masks, truth_masks):
            prob = (files.read_image(probabilities[name])[..., 0] if name in probabilities
                    else pred_mask.astype(np.float32))
            scores = evaluate.isbi_scores(prob, truth_mask)
            table.loc[name, ["v_rand", "v_info"]] = scores["v_rand"], scores["v_info"]
        table.loc["mean", ["v_rand", "v_info"]] = table.drop(index="mean")[["v_rand", "v_info"]].mean()
    echo(table.to_string(float_format=lambda v: f"{v:.4f}"))
    if json_path:
        files.write_json(json_path, {"pred": str(pred_dir), "truth": str(truth_dir), "isbi": isbi,
                                     **evaluate.score_table_json(table)})
        echo(f"wrote {json_path}")
    return table
