"""Folder workflows behind the command line: train on your images, segment a folder, score a folder.

Each function is one ``python -m helpers`` command without its parsing, so a script or notebook
runs the same checks and writes the same files. Errors name the parameter (``tile=100 ...``);
the command line shows them as flags.

Examples
--------
>>> from helpers.toolkit import workflow
>>> config = workflow.train_folder("my/images", "my/masks", "runs/mine", epochs=20)   # doctest: +SKIP
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from helpers import files
from helpers.losses import WEIGHTED_LOSSES
from helpers.toolkit import formats

if TYPE_CHECKING:
    import keras
    import pandas as pd

    from helpers.toolkit.folders import ImageSet

__all__ = ["train_folder", "predict_folder", "evaluate_folders", "read_for_model"]

#: Tile size and U-Net depth used when neither the caller nor config.json gives one.
DEFAULT_TILE = 128
DEFAULT_LAYERS = 4
#: ``loss`` names: "auto" (the default) or one of :data:`helpers.losses.LOSS_NAMES`.
LOSSES = ("auto", "bce", "jaccard", "bce_jaccard", "bce_dice", "weighted_bce", "weighted_bce_jaccard")
#: What ``loss="auto"`` trains: border weights for binary masks (the recipe benchmark's steadiest V_rand over seeds,
#: within their spread of the best mean, benchmarks/RESULTS-recipe.md); cross-entropy + Jaccard for K classes.
AUTO_LOSS = {"binary": "weighted_bce_jaccard", "multiclass": "bce_jaccard"}
DEFAULT_LEARNING_RATE = 1e-3
#: ``border_objects`` choices: which regions a border-weighted loss separates (helpers.weights).
BORDER_OBJECTS = ("auto", "background", "foreground")
#: What the recorded ``channel_conversion`` means, keyed by ``channels``.
CONVERSIONS = {None: "none", 1: "rgb_to_gray", 3: "gray_to_rgb"}
CLASS_MEANING = {False: "training masks: value 1 (or 255) = foreground, 0 = background",
                 True: "training masks: value 0 = foreground (inverted by --invert-masks, e.g. ISBI membrane)"}
PREDICTED_MEANING = "model output = P(foreground); predicted masks: 255 = foreground, 0 = background"
#: How ``evaluate_folders(..., isbi=True)`` labels V_rand/V_info at thresholds chosen on the images it scores.
CHALLENGE_WAY = "thresholds chosen on these images: the challenge's way, optimistic"
ISBI_THRESHOLDS_MEANING = ("watershed seed thresholds of the foreground (as cell boundaries, e.g. membrane) with the "
                           "best mean V_rand and V_info on the validation images; evaluate's ISBI scores use them")
MULTICLASS_MEANING = "training masks: value k = class k, named in 'classes' in that order"
MULTICLASS_PREDICTED = ("model output = the probabilities of the classes (softmax); predicted masks: palette PNGs "
                        "of the class numbers, each pixel the most probable class")
#: The ``loss`` names that have a multi-class counterpart (:data:`helpers.toolkit.classes.MULTICLASS_LOSSES`).
MULTICLASS_LOSS_NAMES = ("bce", "jaccard", "bce_jaccard")
#: How ``predict_folder(..., instances=...)`` makes instance labels (see its docstring).
INSTANCE_MODES = ("auto", "objects", "boundaries")


def _print(line: str) -> None:
    print(line, flush=True)


def _progress(items: Iterable, desc: str):
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="image", disable=None, leave=False)  # off when not a terminal


def _classes_option(classes: str | Sequence[str] | None) -> list[str] | None:
    """``classes="a,b,c"`` (or a list) as a list of names; None when not given."""
    if classes is None:
        return None
    names = classes.split(",") if isinstance(classes, str) else list(classes)
    return [str(name).strip() for name in names]


def _table_text(table: pd.DataFrame) -> str:
    return table.to_string(float_format=lambda v: f"{v:.4f}")


# ---------------------------------------------------------------------------------------------
# train


@dataclass
class _Split:
    """A folder's images and masks split by image into training and validation."""

    data: ImageSet
    train: list[int]
    val: list[int]

    def pick(self, items: list, part: str) -> list:
        return [items[i] for i in getattr(self, part)]


def _check_train_options(tile: int, layers: int, loss: str, border_objects: str, channels: int | None) -> None:
    factor = 2 ** layers
    if tile % factor:
        raise ValueError(f"tile={tile} must be divisible by 2**layers = {factor} (each of the {layers} poolings "
                         f"halves it); use e.g. tile={max(factor, tile // factor * factor)}.")
    if loss not in LOSSES:
        raise ValueError(f"loss={loss!r} is not one of {', '.join(LOSSES)}.")
    if border_objects not in BORDER_OBJECTS:
        raise ValueError(f"border_objects={border_objects!r} is not one of {', '.join(BORDER_OBJECTS)}.")
    if channels not in CONVERSIONS:
        raise ValueError(f"channels={channels!r}: use None (keep the images' channels), 1 (gray) or 3 (RGB).")


def _tiles(images: list[np.ndarray], tile: int) -> np.ndarray:
    """Cut every image (any size, also smaller than a tile) into ``tile`` x ``tile`` tiles."""
    from helpers.tiles import get_patches

    return np.concatenate([get_patches(image.astype(np.float32), tile)[0] for image in images])


def _loss_and_metrics(loss: str, data: ImageSet, masks: str | os.PathLike) -> tuple[str, object, list]:
    """The loss name (``"auto"`` resolved), the loss and the metrics for binary masks or K classes."""
    from helpers import metrics
    from helpers.toolkit import classes

    multiclass = data.num_classes > 2
    loss = AUTO_LOSS["multiclass" if multiclass else "binary"] if loss == "auto" else loss
    if multiclass and loss not in MULTICLASS_LOSS_NAMES:
        raise ValueError(f"loss={loss!r} is for binary masks; {masks} holds {data.num_classes} classes: use one of "
                         f"{', '.join(MULTICLASS_LOSS_NAMES)}.")
    train_metrics = classes.class_metrics(data.class_names) if multiclass else [metrics.iou]
    return loss, classes.loss_by_name(loss, num_classes=data.num_classes), train_metrics


def _border_weights(split: _Split, border_objects: str, tile: int,
                    echo: Callable[[str], None]) -> tuple[np.ndarray, str]:
    """Tiles of the U-Net paper's border weight maps of the training masks, and the objects they separate."""
    from helpers import weights

    train_masks = split.pick(split.data.masks, "train")
    if border_objects == "auto":
        border_objects = weights.guess_objects(train_masks)
    maps = [weights.border_weight_map(m, objects=border_objects)[..., None] for m in train_masks]
    pixel_weights = _tiles(maps, tile)[..., 0]
    echo(f"border weights (U-Net paper, w0 {weights.W0:g}, sigma {weights.SIGMA:g} px) around the {border_objects} "
         f"regions: mean weight {pixel_weights.mean():.2f}, max {pixel_weights.max():.1f}")
    return pixel_weights, border_objects


def _start_model(out: Path, resume: bool, data: ImageSet, masks: str | os.PathLike, build: Callable,
                 compile_args: dict) -> keras.Model | None:
    """A new compiled U-Net (stale run files removed), or None to resume ``out/last.keras`` (checked to match)."""
    from helpers import models, train

    outputs = data.num_classes if data.num_classes > 2 else 1
    if not resume:
        for stale in ("model.keras", "config.json", "metrics.json"):  # never mix two runs in one folder
            (out / stale).unlink(missing_ok=True)
        return train.compile_model(build, **compile_args)
    trained = models.load_model(out / "last.keras")
    if trained.input_shape[-1] != data.channels:
        raise ValueError(f"{out / 'last.keras'} was trained on {trained.input_shape[-1]}-channel images but the "
                         f"images now have {data.channels}; resume with the same channels as the first run.")
    if trained.output_shape[-1] != outputs:
        had = "binary masks" if trained.output_shape[-1] == 1 else f"{trained.output_shape[-1]} classes"
        now = "binary masks" if outputs == 1 else f"{outputs} classes"
        raise ValueError(f"{out / 'last.keras'} was trained on {had} but {masks} now holds {now}; resume with the "
                         f"same masks and classes as the first run.")
    return None


def _validate(out: Path, split: _Split, tile: int, overlap: int) -> tuple[Path, float | None, pd.DataFrame, dict]:
    """The best checkpoint, its threshold chosen on the validation images (predicted whole), and its scores."""
    from helpers import evaluate, models
    from helpers.tiles import predict_tiled
    from helpers.toolkit import scoring

    best = out / "best.keras" if (out / "best.keras").is_file() else out / "last.keras"
    model = models.load_model(best)
    data, names = split.data, split.pick(split.data.names, "val")
    truths = [m[..., 0] for m in split.pick(data.masks, "val")]
    probs = [predict_tiled(model, image, tile=tile, overlap=overlap) for image in split.pick(data.images, "val")]
    probs = [p[..., 0] if p.shape[-1] == 1 else p for p in probs]
    if data.num_classes > 2:  # the arg-max decides: no threshold to choose
        table = scoring.class_table(probs, truths, data.class_names, names)
        return best, None, table, {"split": "validation", "decision": "argmax", "classes": data.class_names}
    threshold = evaluate.choose_threshold(probs, truths)
    table = scoring.score_table(probs, truths, names, threshold)
    isbi_thresholds = evaluate.choose_isbi_thresholds(probs, truths)  # the foreground taken as cell boundaries
    return best, threshold, table, {"split": "validation", "threshold": threshold, "isbi_thresholds": isbi_thresholds}


def _echo_validation(table: pd.DataFrame, split: _Split, threshold: float | None, echo: Callable[[str], None]) -> None:
    mean, count = table.loc["mean"], len(split.val)
    if threshold is None:
        per_class = ", ".join(f"{name} {mean[f'iou_{name}']:.3f}" for name in split.data.class_names)
        echo(f"validation ({count} images): mean IoU {mean['mean_iou']:.3f} (per class: {per_class}), "
             f"mean Dice {mean['mean_dice']:.3f}, pixel error {mean['pixel_error']:.3f}")
    else:
        echo(f"validation ({count} images): threshold {threshold:.2f}, IoU {mean['iou']:.3f}, "
             f"Dice {mean['dice']:.3f}, pixel error {mean['pixel_error']:.3f}")


def _versions() -> dict[str, str]:
    from helpers import __version__, env

    return {**env.versions(), "numpy": np.__version__, "helpers": __version__}


def train_folder(images: str | os.PathLike, masks: str | os.PathLike, out: str | os.PathLike, *,
                 epochs: int = 20, steps: int = 50, tile: int = DEFAULT_TILE, overlap: int | None = None,
                 filters: int = 16, layers: int = DEFAULT_LAYERS, dropout: float = 0.2,
                 loss: str = "auto", val_fraction: float = 0.2, batch_size: int = 8,
                 learning_rate: float = DEFAULT_LEARNING_RATE, channels: int | None = None,
                 invert_masks: bool = False, border_objects: str = "auto",
                 classes: str | Sequence[str] | None = None, instances_to_classes: bool = False,
                 seed: int = 42, resume: bool = False, verbose: int = 2, axes: str | None = None,
                 echo: Callable[[str], None] = _print) -> dict:
    """Train a U-Net on a folder of images and masks and write a run folder (``train``).

    Parameters
    ----------
    images, masks
        Folders of images and of masks with the same file names
        (:func:`helpers.toolkit.folders.load_folder`): binary, K class numbers, or instance labels; or
        a pair of stacks (TIFF, Zarr, OME-Zarr), slice i of the masks for slice i of the images.
    out
        Run folder: ``model.keras``, ``history.csv``, ``config.json``, ``metrics.json``.
    epochs, steps, batch_size, learning_rate, seed, verbose
        Total epochs (earlier ones included on resume), batches per epoch, tiles per batch, Adam's
        rate, the seed of split, weights and augmentation, and Keras' fit verbosity.
    tile, overlap, filters, layers, dropout
        Tile size (divisible by ``2**layers``), prediction overlap (default ``tile // 4``), the
        U-Net's first-level filters, pooling levels and dropout.
    loss, border_objects
        One of :data:`LOSSES` (``"auto"``: :data:`AUTO_LOSS`); for a border-weighted loss the
        objects whose gaps weigh most, one of :data:`BORDER_OBJECTS`.
    val_fraction, channels, invert_masks
        Images held out for validation; None (keep), 1 (gray) or 3 (RGB), recorded; mask value 0
        is the foreground.
    classes, instances_to_classes
        The classes' names in order (a list or ``"a,b,c"``; default: inferred); the masks are
        instance labels, trained as background / interior / boundary.
    resume
        Continue from ``out/last.keras`` up to ``epochs``.
    axes
        With stacks: the images' axes where their files do not say them (e.g. ``"zyx"``).
    echo
        Receives the progress lines.

    Returns
    -------
    dict
        What was written to ``config.json``; its ``threshold`` (best IoU) and ``isbi_thresholds`` (best
        V_rand, V_info: :func:`helpers.evaluate.choose_isbi_thresholds`), chosen on the validation images,
        are None for K classes (arg-max).

    Raises
    ------
    FileNotFoundError
        Missing or empty folder, or ``resume`` without ``out/last.keras``.
    ValueError
        A bad option; unpaired, corrupt, mismatched or ambiguous files (named); a resume that does
        not match the first run.
    PermissionError
        ``out`` is not writable (checked first).

    Examples
    --------
    >>> train_folder("my/images", "my/masks", "runs/mine", epochs=20, tile=128)["threshold"]   # doctest: +SKIP
    0.45
    """
    from helpers import augment, models, train
    from helpers.toolkit.folders import load_folder, split_by_image

    out = formats.check_writable(out)
    _check_train_options(tile, layers, loss, border_objects, channels)
    overlap = tile // 4 if overlap is None else overlap
    if resume and not (out / "last.keras").is_file():
        raise FileNotFoundError(f"Cannot resume: {out / 'last.keras'} does not exist. Train without resume=True "
                                f"first, or check out={str(out)!r}.")
    names = _classes_option(classes)
    data = load_folder(images, masks, channels, invert_masks, "auto" if names is None else names,
                       instances_to_classes, axes)
    loss, loss_function, train_metrics = _loss_and_metrics(loss, data, masks)
    split = _Split(data, *split_by_image(len(data), val_fraction, seed))
    x_train, y_train = (_tiles(split.pick(part, "train"), tile) for part in (data.images, data.masks))
    x_val, y_val = (_tiles(split.pick(part, "val"), tile) for part in (data.images, data.masks))
    echo(f"{len(data)} images ({data.channels} channel(s)): {len(split.train)} for training ({len(x_train)} tiles of "
         f"{tile} px), {len(split.val)} for validation: {', '.join(split.pick(data.names, 'val'))}")
    multiclass = data.num_classes > 2
    if multiclass:
        echo(f"{data.num_classes} classes, mask value k = class k: {', '.join(data.class_names)} (a softmax over "
             f"{data.num_classes} channels; predictions take the most probable class)")
    pixel_weights = None
    if loss in WEIGHTED_LOSSES:
        pixel_weights, border_objects = _border_weights(split, border_objects, tile, echo)

    def build() -> keras.Model:
        return models.build_unet((None, None, data.channels), filters=filters, num_layers=layers, dropout=dropout,
                                 num_classes=data.num_classes if multiclass else 1)

    model = _start_model(out, resume, data, masks, build, {"loss": loss_function, "learning_rate": learning_rate,
                                                           "metrics": train_metrics, "seed": seed})
    dataset = augment.get_augmented(x_train, y_train, batch_size=batch_size, seed=seed, weights=pixel_weights)
    started = time.perf_counter()
    train.fit(model, dataset, validation_data=(x_val, y_val), epochs=epochs, steps_per_epoch=steps, run_dir=out,
              resume=resume, verbose=verbose)
    seconds = time.perf_counter() - started
    best, threshold, table, scores = _validate(out, split, tile, overlap)
    from helpers.toolkit.scoring import score_table_json

    with files.atomic_path(out / "model.keras") as tmp:
        shutil.copyfile(best, tmp)
    formats.write_json(out / "metrics.json", {**scores, **score_table_json(table)})
    config = {
        "model": "model.keras", "checkpoint": best.name, "channels": data.channels,
        "channel_conversion": CONVERSIONS[channels], "tile": tile, "overlap": overlap, "num_layers": layers,
        "filters": filters, "threshold": threshold, "isbi_thresholds": scores.get("isbi_thresholds"),
        "isbi_thresholds_meaning": None if multiclass else ISBI_THRESHOLDS_MEANING,
        "classes": data.class_names, "num_classes": data.num_classes,
        "output": "softmax" if multiclass else "sigmoid", "instances_to_classes": instances_to_classes,
        "class_meaning": (f"{MULTICLASS_MEANING}; {MULTICLASS_PREDICTED}" if multiclass
                          else f"{CLASS_MEANING[invert_masks]}; {PREDICTED_MEANING}"),
        "invert_masks": invert_masks, "loss": loss, "learning_rate": learning_rate,
        "border_objects": border_objects if pixel_weights is not None else None, "epochs": epochs, "seed": seed,
        "images": str(Path(images).resolve()), "masks": str(Path(masks).resolve()),
        "train_images": split.pick(data.names, "train"), "validation_images": split.pick(data.names, "val"),
        "train_seconds_last_session": round(seconds, 1), "versions": _versions()}
    formats.write_json(out / "config.json", config)
    _echo_validation(table, split, threshold, echo)
    if not multiclass:
        echo(f"V_rand threshold {config['isbi_thresholds']['v_rand']:.2f}, V_info threshold "
             f"{config['isbi_thresholds']['v_info']:.2f}: chosen on the validation images, recorded for evaluate's "
             f"ISBI scores")
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

    Returns
    -------
    np.ndarray
        float32 ``(H, W, channels)`` in [0, 1].

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
                     f"with channels={channels} (converts {_kind(image.shape[-1])} to {_kind(channels)} at "
                     f"training and prediction).")


def _input_files(source: Path) -> list[Path]:
    if source.is_file():
        if source.suffix.lower() not in files.IMAGE_SUFFIXES:
            raise ValueError(f"source={str(source)!r} is not an image ({', '.join(files.IMAGE_SUFFIXES)}).")
        return [source]
    return list(files.list_images(source).values())


def _instance_mode(mode: str, channels: int, class_names: list[str] | None, config: dict, model_path: Path) -> str:
    """How ``instances=mode`` makes objects for this model: objects, boundaries or three_classes."""
    from helpers.toolkit.instances import THREE_CLASSES

    if mode not in INSTANCE_MODES:
        raise ValueError(f"instances={mode!r}: use one of {', '.join(INSTANCE_MODES)}.")
    three = channels == 3 and (config.get("instances_to_classes") or list(class_names or []) == list(THREE_CLASSES))
    if mode == "auto":
        if three:
            return "three_classes"
        if channels <= 2:
            return "objects"
        raise ValueError(f"instances='auto': {model_path} predicts {channels} classes, none of them marked as object "
                         f"interior and boundary. Use instances='objects' (every pixel not of class 0 is object), "
                         f"or train with instances_to_classes=True.")
    if mode == "boundaries" and channels > 2:
        raise ValueError(f"instances='boundaries' needs a binary model whose foreground is the boundary (e.g. "
                         f"membranes); {model_path} predicts {channels} classes. Use instances='auto' or 'objects'.")
    return mode


def instances_of(prob: np.ndarray, mode: str, threshold: float, min_size: int) -> np.ndarray:
    """Instance labels of one image from its probabilities, (H, W) for one channel or (H, W, K)."""
    from helpers.evaluate import predicted_segments
    from helpers.toolkit import instances

    if mode == "three_classes":
        return instances.from_three_classes(prob, min_size=min_size)
    if prob.ndim == 3:  # K channels: the object (or boundary) is every class but 0
        prob, threshold = 1.0 - prob[..., 0], 0.5
    if mode == "boundaries":
        return predicted_segments(prob, threshold)
    return instances.from_foreground(prob, threshold, min_size=min_size)


def _write_probabilities(path: Path, prob: np.ndarray) -> Path:
    """float32 probabilities as TIFF: (H, W) as is, (H, W, K) as K pages of (H, W)."""
    if prob.ndim == 2:
        return files.write_image(path, prob.astype(np.float32))
    import tifffile

    with files.atomic_path(path) as tmp:
        tifffile.imwrite(tmp, np.moveaxis(prob, -1, 0).astype(np.float32), photometric="minisblack")
    return path


@dataclass
class _Prediction:
    """How a run predicts: from ``config.json`` next to the model, overridden by the caller."""

    threshold: float
    tile: int
    overlap: int
    channels: int
    conversion: str
    classes: int
    class_names: list[str] | None
    mode: str | None


def _prediction(model: keras.Model, model_path: Path, threshold: float | None, tile: int | None,
                overlap: int | None, instances: str | None, min_size: int) -> _Prediction:
    """The recorded settings with the caller's overrides, checked against the model."""
    from helpers.toolkit.scoring import check_outputs

    config_path = model_path.parent / "config.json"
    config = formats.read_json(config_path) if config_path.is_file() else {}
    classes = check_outputs(model, str(model_path))
    class_names = config.get("classes") if len(config.get("classes") or []) == max(classes, 2) else None
    if classes > 1 and threshold is not None:
        raise ValueError(f"threshold={threshold} applies to binary models; {model_path} predicts {classes} classes "
                         f"and each pixel gets the most probable one. Leave out threshold.")
    mode = None if instances is None else _instance_mode(instances, classes, class_names, config, model_path)
    if min_size < 0:
        raise ValueError(f"min_size={min_size} must be 0 or more pixels.")
    given_tile = tile
    tile = given_tile or int(config.get("tile") or model.input_shape[1] or DEFAULT_TILE)  # a fixed-size model: its size
    if overlap is None:  # the training overlap goes with the training tile; tile/4 otherwise
        overlap = int(config["overlap"]) if "overlap" in config and not given_tile else tile // 4
    factor = 2 ** int(config.get("num_layers", 0))
    if tile % factor:
        raise ValueError(f"tile={tile} must be divisible by {factor} for this model ({config_path} says num_layers="
                         f"{config['num_layers']}); use e.g. tile={max(factor, tile // factor * factor)}.")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap={overlap} must be at least 0 and smaller than the tile ({tile}).")
    recorded = 0.5 if config.get("threshold") is None else float(config["threshold"])
    return _Prediction(recorded if threshold is None else threshold, tile, overlap,
                       int(config.get("channels", model.input_shape[-1])), config.get("channel_conversion", "none"),
                       classes, class_names, mode)


def predict_folder(model_path: str | os.PathLike, source: str | os.PathLike, output: str | os.PathLike, *,
                   threshold: float | None = None, tile: int | None = None, overlap: int | None = None,
                   probabilities: bool = False, instances: str | None = None, min_size: int = 10,
                   echo: Callable[[str], None] = _print) -> list[Path]:
    """Write ``output/<name>.png`` (the input's size) for every input image with a run's model (``predict``).

    Binary models write {0, 255} masks, K-class models palette PNGs of the class numbers (arg-max),
    through :func:`helpers.predict.segment_folder` with the run's recorded settings.

    Parameters
    ----------
    model_path
        ``RUN_DIR/model.keras``; ``config.json`` next to it gives the threshold, tile, overlap,
        channel conversion and classes (without it: 0.5, 128, ``tile // 4``, none).
    source
        An image file or a folder of images.
    output
        Folder for the masks (created; not the input folder).
    threshold, tile, overlap
        Override the recorded values; ``threshold`` for binary models only.
    probabilities
        Also write ``<name>_prob.tif`` (float32; one page per class for K classes).
    instances
        Also write 16-bit instance labels ``<name>_instances.tif``, one of :data:`INSTANCE_MODES`:
        ``"objects"`` splits the foreground into blobs, ``"boundaries"`` takes the regions a
        boundary model's lines separate, ``"auto"`` uses an ``instances_to_classes`` model's
        interior and boundary classes (else ``"objects"``).
    min_size
        With ``instances`` (not ``"boundaries"``): smaller objects are dropped.
    echo
        Receives the summary lines.

    Returns
    -------
    list of pathlib.Path
        The written masks, in input order.

    Raises
    ------
    FileNotFoundError
        Missing input or model.
    ValueError
        Output = input folder; a corrupt model or image; an option that does not suit the model;
        a gray/RGB mismatch without a recorded conversion.
    PermissionError
        ``output`` is not writable (checked first).

    Examples
    --------
    >>> predict_folder("runs/mine/model.keras", "new/images", "new/masks")   # doctest: +SKIP
    [PosixPath('new/masks/cell_1.png'), PosixPath('new/masks/cell_2.png')]
    """
    from helpers.models import load_model
    from helpers.predict import segment_folder, to_mask

    output, model_path = formats.check_writable(output), Path(model_path)
    inputs = _input_files(Path(source))
    if output.resolve() in {path.parent.resolve() for path in inputs}:
        raise ValueError(f"output={str(output)!r} is the input folder; the masks would overwrite the images. "
                         f"Choose another output folder.")
    model = load_model(model_path)
    run = _prediction(model, model_path, threshold, tile, overlap, instances, min_size)

    def write(path: Path, prob: np.ndarray, folder: Path) -> list[Path]:
        mask = to_mask(prob, run.threshold)
        masks = formats.write_class_mask if run.classes > 1 else files.write_image
        if probabilities:
            _write_probabilities(folder / f"{path.stem}_prob.tif", prob)
        if run.mode is not None:
            labels = instances_of(prob, run.mode, run.threshold, min_size)
            formats.write_labels(folder / f"{path.stem}_instances.tif", labels)
        return [masks(folder / f"{path.stem}.png", mask)]

    written = segment_folder(model, inputs, output, threshold=run.threshold, tile=run.tile, overlap=run.overlap,
                             write=write, read=lambda path: read_for_model(path, run.channels, run.conversion),
                             progress=_progress)
    _echo_prediction(run, len(inputs), output, min_size, echo)
    return written


def _echo_prediction(run: _Prediction, count: int, output: Path, min_size: int, echo: Callable[[str], None]) -> None:
    if run.classes > 1:
        from helpers.toolkit.scoring import class_names_for

        names = ", ".join(run.class_names or class_names_for(run.classes))
        decision = f"the most probable of {run.classes} classes: {names}"
    else:
        decision = f"threshold {run.threshold:.2f}"
    echo(f"wrote {count} mask(s) to {output} ({decision}, tile {run.tile}, overlap {run.overlap})")
    if run.mode is not None:
        echo(f"wrote {count} instance label image(s) <name>_instances.tif ({run.mode.replace('_', ' ')}"
             f"{'' if run.mode == 'boundaries' else f', objects of at least {min_size} px'})")


# ---------------------------------------------------------------------------------------------
# evaluate


def _predicted_files(pred_dir: Path) -> tuple[dict[str, Path], dict[str, Path], dict[str, Path]]:
    """Masks, ``<name>_prob.tif`` and ``<name>_instances.tif`` (as `predict` writes them) of a folder, by name."""
    preds = files.list_images(pred_dir)
    probabilities, labels = {}, {}
    for stem in list(preds):
        for suffix, found in (("_prob", probabilities), ("_instances", labels)):
            if stem.endswith(suffix) and (stem.removesuffix(suffix) in preds or suffix == "_instances"):
                found[stem.removesuffix(suffix)] = preds.pop(stem)
    return preds, probabilities, labels


#: One item evaluate scores: its name, the predicted and true labels (int32 (H, W)), the probabilities or None.
_Item = tuple[str, np.ndarray, np.ndarray, "np.ndarray | None"]


@dataclass
class _Scored:
    """What evaluate scores: (name, prediction, truth, probabilities) items, read one at a time on each pass.

    From two folders (files paired by name) or two volumes (slice by slice, named ``z0000``, ...); ``labels``
    names each item's prediction and truth in messages (a file, or ``STACK/z0000``).
    """

    pred: Path
    truth: Path
    labels: Callable[[str], tuple[Path, Path]]
    read: Callable[[bool], Iterator[_Item]]

    def items(self, with_probabilities: bool = False) -> Iterator[_Item]:
        """Yield ``(name, pred, truth, prob)``: int32 ``(H, W)`` labels of the same size, ``prob`` (or None)."""
        for name, pred, truth, prob in self.read(with_probabilities):
            if pred.shape != truth.shape:
                pred_path, truth_path = self.labels(name)
                raise ValueError(f"Size mismatch: prediction {pred_path} is {pred.shape[0]}x{pred.shape[1]} "
                                 f"but truth {truth_path} is {truth.shape[0]}x{truth.shape[1]}.")
            yield name, pred, truth, prob


def _folder_scored(pred_dir: Path, truth_dir: Path, instances: bool, axes: str | None = None) -> _Scored:
    """Files of two folders paired by name: masks (or ``<name>_instances.tif``) and ``<name>_prob.tif``."""
    preds, probabilities, labels = _predicted_files(pred_dir)
    fix = "Evaluate matching folders (files are paired by name)."
    if instances and not labels:
        raise ValueError(f"No instance labels in {pred_dir}: instances=True scores <name>_instances.tif files. "
                         f"Run predict with instances=True, or name your own label images <name>_instances.tif.")
    pairs = formats.pair_by_name(labels if instances else preds, truth_dir, fix=fix)

    def read(with_probabilities: bool):
        for name, (pred_path, truth_path) in pairs.items():
            prob = probabilities.get(name) if with_probabilities else None
            yield (name, formats.read_labels(pred_path), formats.read_labels(truth_path),
                   None if prob is None else files.read_image(prob)[..., 0])

    return _Scored(pred_dir, truth_dir, pairs.__getitem__, read)


def _mask_values(scored: _Scored) -> dict[Path, np.ndarray]:
    """``path -> distinct values`` of every truth and prediction (a first pass, for :func:`infer_classes`)."""
    values = {}
    for name, pred, truth, _ in _progress(scored.items(), "reading"):
        pred_path, truth_path = scored.labels(name)
        values[truth_path], values[pred_path] = np.unique(truth), np.unique(pred)
    return values


def _stacked(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Tables of one image each (and their ``"mean"`` rows) as one table with the ``"mean"`` of all images."""
    import pandas as pd

    table = pd.concat([part.drop(index="mean") for part in tables])
    table.loc["mean"] = table.mean()
    return table


def _class_scores(scored: _Scored, names: list[str] | None, num_classes: int, isbi: bool) -> tuple[pd.DataFrame, dict]:
    """The per-class table of masks of K > 2 class numbers (refusing instance labels and ``isbi``)."""
    from helpers.toolkit import scoring
    from helpers.toolkit.folders import looks_like_instances

    if isbi:
        raise ValueError(f"isbi=True scores binary membrane masks, but {scored.truth} holds {num_classes} classes.")
    if names is None and looks_like_instances(truth for _, _, truth, _ in scored.items()):
        _, path, count = max((truth.max(), scored.labels(name)[1], np.unique(truth[truth > 0]).size)
                             for name, _, truth, _ in scored.items())
        raise ValueError(f"The true masks look like instance labels, not classes: each value is one object (e.g. "
                         f"{path} numbers {count} objects). Pass instances=True to match "
                         f"objects, or classes with one name per class if these really are classes.")
    class_names = scoring.class_names_for(num_classes, names)
    tables = [scoring.class_table([pred], [truth], class_names, [name])
              for name, pred, truth, _ in _progress(scored.items(), "scoring")]
    return _stacked(tables), {"classes": class_names}


def _isbi_option(isbi: bool, isbi_thresholds, config) -> tuple[dict | float | None, str]:
    """The V_rand/V_info thresholds to score at, and where they come from (None: chosen on the scored images)."""
    if (isbi_thresholds is not None or config is not None) and not isbi:
        raise ValueError("config=PATH and isbi_thresholds=T set the thresholds of the ISBI scores; add isbi=True.")
    if isbi_thresholds is not None and config is not None:
        raise ValueError("give the ISBI scores' thresholds once: config=PATH or isbi_thresholds=T, not both")
    if config is not None:
        recorded = formats.read_json(config).get("isbi_thresholds")
        if not recorded:
            raise ValueError(f"config={config} records no isbi_thresholds (a run from before they were recorded, or "
                             f"K classes); train the run again, or pass isbi_thresholds chosen on validation images.")
        return recorded, f"chosen on the validation images of {config}"
    if isbi_thresholds is not None:
        values = list(isbi_thresholds.values()) if isinstance(isbi_thresholds, dict) else [isbi_thresholds]
        if not all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in values):
            raise ValueError(f"isbi_thresholds={','.join(map(str, values))} must lie in [0, 1]: one for both scores, "
                             f"or V_rand's and V_info's, chosen on validation images")
        return isbi_thresholds, "as given (choose them on validation images)"
    return None, CHALLENGE_WAY


def _binary_scores(scored: _Scored, isbi: bool, isbi_thresholds=None, origin: str = "") -> tuple[pd.DataFrame, dict]:
    """Foreground IoU, Dice and pixel error (and the ISBI 2012 V_rand and V_info with ``isbi``), item by item.

    With ``isbi`` and no thresholds (the challenge's way) every item's probabilities are kept to choose them.
    """
    from helpers import evaluate
    from helpers.toolkit.scoring import score_table

    tables, isbi_rows, kept = [], {}, []
    for name, pred, truth, prob in _progress(scored.items(with_probabilities=isbi), "scoring"):
        pred_mask, truth_mask = (pred > 0).astype(np.uint8), (truth > 0).astype(np.uint8)
        truth_mask = 1 - truth_mask if isbi else truth_mask  # ISBI labels: 0 = membrane
        tables.append(score_table([pred_mask], [truth_mask], [name]))
        if isbi:
            prob = pred_mask.astype(np.float32) if prob is None else prob
            if isbi_thresholds is None:  # the challenge's way: one threshold per metric, the best on these very images
                kept.append((name, prob, truth_mask))
            else:
                isbi_rows[name] = evaluate.isbi_scores(prob, truth_mask, isbi_thresholds)
    table = _stacked(tables)
    if not isbi:
        return table, {}
    if kept:
        best = evaluate.challenge_scores([prob for _, prob, _ in kept], [truth for _, _, truth in kept])
        isbi_thresholds = {"v_rand": best["threshold_rand"], "v_info": best["threshold_info"]}
        isbi_rows = {name: evaluate.isbi_scores(prob, truth, isbi_thresholds) for name, prob, truth in kept}
    for name, scores in isbi_rows.items():
        table.loc[name, ["v_rand", "v_info"]] = scores["v_rand"], scores["v_info"]
    used = {"v_rand": scores["threshold_rand"], "v_info": scores["threshold_info"]}
    table.loc["mean", ["v_rand", "v_info"]] = table.drop(index="mean")[["v_rand", "v_info"]].mean()
    return table, {"isbi_thresholds": used, "isbi_thresholds_chosen": origin}


def evaluate_folders(pred: str | os.PathLike, truth: str | os.PathLike, *, json_path: str | os.PathLike | None = None,
                     isbi: bool = False, isbi_thresholds: float | dict | None = None,
                     config: str | os.PathLike | None = None, classes: str | Sequence[str] | None = None,
                     instances: bool = False, axes: str | None = None,
                     echo: Callable[[str], None] = _print) -> pd.DataFrame:
    """Score predicted masks against true masks paired by file name (``evaluate``).

    Parameters
    ----------
    pred
        Folder of predicted masks ({0, 255}, {0, 1} or class numbers), with ``<name>_prob.tif``
        (used by ``isbi``) and ``<name>_instances.tif`` (used by ``instances``) as ``predict`` writes.
    truth
        Folder of true masks with the same file names (instance labels with ``instances``).

        Or both volumes, scored slice by slice (``z0000``, ...; memory: one slice): a TIFF stack, Zarr
        array or OME-Zarr image each, and for ``pred`` also a finished ``predict`` output ``X.zarr`` (its
        ``mask``, ``probabilities`` and ``instances`` images) or ``X.tif`` (with ``X_prob.tif`` and
        ``X_instances.tif`` beside it).
    json_path
        Also write the scores there (``{"pred", "truth", "isbi", "images", "mean"}`` and more).
    isbi
        Truths are ISBI labels (0 = membrane) and predictions mark membrane; adds ``v_rand``, ``v_info``.
    isbi_thresholds, config
        Their thresholds (one number, or ``{"v_rand": t1, "v_info": t2}``), or a run's ``config.json`` that
        records those chosen on its validation images. Without either: the challenge's way (per metric one
        threshold, the best on these very images; optimistic, and labelled so).
    classes
        Names of the classes in the order of their numbers (a list or ``"a,b,c"``).
    instances
        Match instance labels at IoU >= 0.5: precision, recall, F1, mean matched IoU.
    axes
        With volumes: their axes where their files do not say them (e.g. ``"zyx"``).
    echo
        Receives the printed table and summary.

    Returns
    -------
    pandas.DataFrame
        Per-image scores with a ``"mean"`` row: ``iou``, ``dice``, ``pixel_error`` (and ``v_rand``,
        ``v_info``) for binary masks; the class table or the instance table otherwise.

    Raises
    ------
    FileNotFoundError
        A folder or volume is missing or empty.
    ValueError
        Unpaired files (listed), size mismatches (both named), an unfinished ``predict`` output, a volume
        paired with a folder, ambiguous masks, ``isbi`` with classes
        or instances, or no ``<name>_instances.tif`` with ``instances``; ``config`` or ``isbi_thresholds``
        without ``isbi``, both at once, out of [0, 1], or a config that records no ``isbi_thresholds``.
    PermissionError
        The folder of ``json_path`` is not writable (checked first).

    Examples
    --------
    >>> evaluate_folders("new/masks", "new/true_masks").loc["mean", "iou"]   # doctest: +SKIP
    0.81
    """
    from helpers.toolkit.folders import infer_classes, is_stack
    from helpers.toolkit.scoring import score_table_json

    if json_path:
        formats.check_writable(Path(json_path).parent)
    if isbi and (instances or classes is not None):
        raise ValueError("isbi=True scores binary membrane masks; leave out classes and instances.")
    isbi_thresholds, origin = _isbi_option(isbi, isbi_thresholds, config)
    names = _classes_option(classes)
    pred_dir, truth_dir = Path(pred), Path(truth)
    volumes = [is_stack(path) or path.suffix.lower() in (".tif", ".tiff") for path in (pred_dir, truth_dir)]
    if volumes[0] != volumes[1]:
        raise ValueError(f"pred={str(pred_dir)!r} and truth={str(truth_dir)!r}: give both as volumes (TIFF stacks, "
                         f"Zarr; scored slice by slice) or both as folders of images (paired by file name)")
    scored = (_volume_scored if volumes[0] else _folder_scored)(pred_dir, truth_dir, instances, axes)
    if instances:
        table = _instance_scores(scored, echo)
        extra = {"isbi": False, "instances": True, "iou_threshold": 0.5}
    else:
        num_classes = infer_classes(_mask_values(scored), names, allow_gaps=True)
        table, extra = (_class_scores(scored, names, num_classes, isbi) if num_classes > 2
                        else _binary_scores(scored, isbi, isbi_thresholds, origin))
        echo(_table_text(table))
        if "isbi_thresholds" in extra:
            echo(f"V_rand at threshold {extra['isbi_thresholds']['v_rand']:.2f}, V_info at "
                 f"{extra['isbi_thresholds']['v_info']:.2f}: {origin}")
        extra = {"isbi": isbi, **extra}
    if json_path:
        formats.write_json(json_path, {"pred": str(pred_dir), "truth": str(truth_dir), **extra,
                                       **score_table_json(table)})
        echo(f"wrote {json_path}")
    return table


def _instance_scores(scored: _Scored, echo: Callable[[str], None]) -> pd.DataFrame:
    """``instances=True``: object pixels' IoU and Dice, and instance matching at IoU >= 0.5, item by item."""
    from helpers.metrics import dice_np, iou_np
    from helpers.toolkit.scoring import instance_table

    tables = []
    for name, pred, truth, _ in _progress(scored.items(), "matching"):
        table = instance_table([pred], [truth], [name])
        table.insert(0, "iou", [iou_np(pred > 0, truth > 0), np.nan])
        table.insert(1, "dice", [dice_np(pred > 0, truth > 0), np.nan])
        tables.append(table)
    table = _stacked(tables)
    echo(_table_text(table))
    mean = table.loc["mean"]
    echo(f"instances matched at IoU >= 0.5 (mean over {len(tables)} images): precision {mean['precision']:.3f}, "
         f"recall {mean['recall']:.3f}, F1 {mean['f1']:.3f}, mean matched IoU {mean['mean_matched_iou']:.3f}")
    return table


# ---------------------------------------------------------------------------------------------
# evaluate: volumes, slice by slice


def _output_state(path: Path) -> dict | None:
    """The toolkit's attributes of a ``predict`` output folder ``path`` (``complete``, ...), None if not one."""
    from helpers.toolkit import stacks

    if not (path / ".zgroup").is_file() and not (path / "zarr.json").is_file():
        return None
    import zarr

    return dict(zarr.open_group(str(path), mode="r").attrs).get(stacks.ATTRS_KEY)


def _predicted_layers(pred: Path, axes: str | None) -> dict:
    """``mask``, ``probabilities`` and ``instances`` volumes (None where absent) of a predicted volume ``pred``."""
    from helpers.toolkit import stacks

    unfinished = pred.with_name(pred.name + ".partial.zarr") if pred.suffix.lower() in (".tif", ".tiff") else pred
    state = _output_state(unfinished) if unfinished.is_dir() else None
    if state is not None and not state.get("complete"):
        raise ValueError(f"pred={str(pred)!r} is an unfinished prediction ({unfinished} was not completed: the predict "
                         f"run stopped); run the same predict command again to finish it, then evaluate")
    if state is not None and unfinished != pred and not pred.is_file():  # stopped while writing the TIFF stacks
        raise ValueError(f"pred={str(pred)!r} is an unfinished prediction (the predict run stopped while writing the "
                         f"TIFF stacks from {unfinished}); run the same predict command again with overwrite=True")
    if state is not None and unfinished == pred:
        return {name: stacks.open_volume(pred / name) if (pred / name).is_dir() else None
                for name in ("mask", "probabilities", "instances")}
    beside = {"probabilities": pred.with_name(f"{pred.stem}_prob.tif"),
              "instances": pred.with_name(f"{pred.stem}_instances.tif")}
    return {"mask": stacks.open_volume(pred, axes),
            **{name: stacks.open_volume(path) if path.is_file() else None for name, path in beside.items()}}


def _volume_scored(pred: Path, truth: Path, instances: bool, axes: str | None) -> _Scored:
    """Two volumes' slices, one at a time: the prediction's mask (or instances) and probabilities, and the truth."""
    from helpers.toolkit import stacks

    layers = _predicted_layers(pred, axes)
    source = layers["instances" if instances else "mask"]
    if source is None:
        raise ValueError(f"No instance labels in {pred}: instances=True scores the instances of predict --instances "
                         f"(the instances image of X.zarr, or X_instances.tif); run predict with instances=True")
    truth_volume = stacks.open_volume(truth, axes)
    if source.data.shape[:3] != truth_volume.data.shape[:3]:
        raise ValueError(f"Shape mismatch: prediction {source.path} is {' x '.join(map(str, source.data.shape[:3]))} "
                         f"(z, y, x) but truth {truth} is {' x '.join(map(str, truth_volume.data.shape[:3]))}; "
                         f"evaluate the prediction of the truth's images")

    def labels(name: str) -> tuple[Path, Path]:
        return source.path / name, truth_volume.path / name

    def read(with_probabilities: bool):
        probabilities = layers["probabilities"] if with_probabilities else None
        probs = probabilities.slices() if probabilities is not None else None
        for (name, pred_slice), (_, truth_slice) in zip(source.slices(), truth_volume.slices()):
            prob = next(probs)[1][..., 0] if probs is not None else None
            pred_path, truth_path = labels(name)
            yield name, formats.as_labels(pred_slice, pred_path), formats.as_labels(truth_slice, truth_path), prob

    return _Scored(pred, truth, labels, read)
