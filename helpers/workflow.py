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

**Classes.** Binary masks ({0, 1} or {0, 255}) train a U-Net with one sigmoid output, as always.
Masks of class numbers 0..K-1 (gray values or palette PNGs; K inferred from the masks, or named
with ``classes``) train a softmax over K channels with the multi-class counterpart of the chosen
loss (:data:`helpers.losses.MULTICLASS_LOSSES`); the classes' names and order are recorded in
``config.json``, prediction takes the arg-max (no threshold) and writes palette PNGs of the class
numbers, and the scores are per class (:func:`helpers.evaluate.class_table`). Instance-label
masks (one number per object) train the three-class scheme background / interior / boundary with
``instances_to_classes=True``. ``predict_folder(..., instances=...)`` also writes instance labels,
``<name>_instances.tif``, and ``evaluate_folders(..., instances=True)`` matches them against true
instance labels (:func:`helpers.evaluate.instance_table`).

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
from collections.abc import Callable, Iterable, Sequence
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
#: ``loss`` names: "auto" (the default) or one of :data:`helpers.losses.LOSS_NAMES`.
LOSSES = ("auto", "bce", "jaccard", "bce_jaccard", "bce_dice", "weighted_bce", "weighted_bce_jaccard")
#: What ``loss="auto"`` trains: the winner of the recipe benchmark (benchmarks/RESULTS-recipe.md) for
#: binary masks, border-weighted BCE + Jaccard; for K classes cross-entropy + Jaccard (no weighted version).
AUTO_LOSS = {"binary": "weighted_bce_jaccard", "multiclass": "bce_jaccard"}
DEFAULT_LEARNING_RATE = 1e-3
#: ``border_objects`` choices: which regions a border-weighted loss separates (helpers.weights).
BORDER_OBJECTS = ("auto", "background", "foreground")
#: What the recorded ``channel_conversion`` means, keyed by ``channels``.
CONVERSIONS = {None: "none", 1: "rgb_to_gray", 3: "gray_to_rgb"}
CLASS_MEANING = {False: "training masks: value 1 (or 255) = foreground, 0 = background",
                 True: "training masks: value 0 = foreground (inverted by --invert-masks, e.g. ISBI membrane)"}
PREDICTED_MEANING = "model output = P(foreground); predicted masks: 255 = foreground, 0 = background"
MULTICLASS_MEANING = "training masks: value k = class k, named in 'classes' in that order"
MULTICLASS_PREDICTED = ("model output = the probabilities of the classes (softmax); predicted masks: palette PNGs "
                        "of the class numbers, each pixel the most probable class")
#: The ``loss`` names that have a multi-class counterpart (:data:`helpers.losses.MULTICLASS_LOSSES`).
MULTICLASS_LOSS_NAMES = ("bce", "jaccard", "bce_jaccard")
#: How ``predict_folder(..., instances=...)`` makes instance labels (see its docstring).
INSTANCE_MODES = ("auto", "objects", "boundaries")


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
    """Probabilities of every image: (H, W) for one output channel, (H, W, K) for K."""
    from helpers.tiles import predict_tiled

    predicted = [predict_tiled(model, image, tile=tile, overlap=overlap) for image in images]
    return [p[..., 0] if p.shape[-1] == 1 else p for p in predicted]


def _classes_option(classes: str | Sequence[str] | None) -> list[str] | None:
    """``--classes a,b,c`` (or a list) as a list of names; None when not given."""
    if classes is None:
        return None
    names = classes.split(",") if isinstance(classes, str) else list(classes)
    return [str(name).strip() for name in names]


def train_folder(images: str | os.PathLike, masks: str | os.PathLike, out: str | os.PathLike, *,
                 epochs: int = 20, steps: int = 50, tile: int = DEFAULT_TILE, overlap: int | None = None,
                 filters: int = 16, layers: int = DEFAULT_LAYERS, dropout: float = 0.2,
                 loss: str = "auto", val_fraction: float = 0.2, batch_size: int = 8,
                 learning_rate: float = DEFAULT_LEARNING_RATE, channels: int | None = None,
                 invert_masks: bool = False, border_objects: str = "auto",
                 classes: str | Sequence[str] | None = None, instances_to_classes: bool = False,
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

    Masks of more than two classes train a softmax over K channels (the module docstring's
    "Classes"); the validation scores are then per class and the prediction an arg-max, so no
    threshold is chosen (``config["threshold"]`` is ``None``).

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
        One of :data:`LOSSES`. ``"auto"``: :data:`AUTO_LOSS`, the recipe benchmark's winner for binary
        masks (border-weighted BCE + Jaccard, Adam 1e-3: benchmarks/RESULTS-recipe.md). The
        ``weighted_*`` losses weight every pixel by the U-Net paper's map
        (:func:`helpers.weights.border_weight_map` of each whole mask, cut into tiles with it). With
        more than two classes ``loss`` names its multi-class counterpart
        (:data:`helpers.losses.MULTICLASS_LOSSES`: categorical cross-entropy for ``"bce"``, the
        class-averaged Jaccard for ``"jaccard"``).
    val_fraction
        Fraction of the images held out for validation.
    channels
        ``None`` keeps the images' channels; 1 converts to gray, 3 to RGB (recorded).
    invert_masks
        The mask value 0 is the foreground (e.g. ISBI labels, 0 = membrane); binary masks only.
    border_objects
        For a border-weighted loss: the objects whose narrow gaps weigh most, ``"background"``
        (regions between foreground lines: cells between membranes) or ``"foreground"`` (blobs such
        as nuclei); ``"auto"`` takes the side split into more regions
        (:func:`helpers.weights.guess_objects`). Recorded in ``config.json``.
    classes
        The classes' names in the order of their numbers in the masks (a list, or ``"a,b,c"``);
        default: inferred from the masks (binary, or K classes named ``"class 0"``, ...). Two
        names train a binary model with named classes.
    instances_to_classes
        The masks are instance labels (one number per object); train on the three-class scheme
        background / interior / boundary (:func:`helpers.instances.to_three_classes`).
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
        Bad tile, loss or channels; unpaired, corrupt or mismatched files (named); ambiguous
        masks (:func:`helpers.data.infer_classes`: e.g. a photo or an instance-label image given
        as masks); fewer than 2 images; resuming with other channels or classes than the first run.
    PermissionError
        ``out`` is not writable (checked before anything else).

    Examples
    --------
    >>> config = train_folder("my/images", "my/masks", "runs/mine", epochs=20, tile=128)   # doctest: +SKIP
    >>> config["threshold"], config["validation_images"]                                  # doctest: +SKIP
    (0.45, ['cell_3', 'cell_9'])
    >>> train_folder("tissue/images", "tissue/masks", "runs/tissue",
    ...              classes="background,cortex,medulla")["classes"]                       # doctest: +SKIP
    ['background', 'cortex', 'medulla']
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
    if border_objects not in BORDER_OBJECTS:
        raise ValueError(f"--border-objects {border_objects!r} is not one of {', '.join(BORDER_OBJECTS)}.")
    if channels not in CONVERSIONS:
        raise ValueError(f"--channels {channels!r}: use None (auto, keep the images' channels), 1 (gray) or 3 (RGB).")
    overlap = tile // 4 if overlap is None else overlap
    if resume and not (out / "last.keras").is_file():
        raise FileNotFoundError(f"Cannot resume: {out / 'last.keras'} does not exist. Train without --resume "
                                f"first, or check --out.")

    names = _classes_option(classes)
    data = load_folder(images, masks, channels=channels, invert_masks=invert_masks,
                       classes="auto" if names is None else names, instances_to_classes=instances_to_classes)
    class_names, multiclass = data.class_names, data.num_classes > 2
    outputs = data.num_classes if multiclass else 1
    if loss == "auto":
        loss = AUTO_LOSS["multiclass" if multiclass else "binary"]
    if multiclass and loss not in MULTICLASS_LOSS_NAMES:
        raise ValueError(f"--loss {loss} is for binary masks; {masks} holds {data.num_classes} classes: use one of "
                         f"{', '.join(MULTICLASS_LOSS_NAMES)}.")
    train_idx, val_idx = split_by_image(len(data), val_fraction, seed)

    def pick(items: list, indices: list[int]) -> list:
        return [items[i] for i in indices]

    x_train, y_train = (_tiles(pick(part, train_idx), tile) for part in (data.images, data.masks))
    x_val, y_val = (_tiles(pick(part, val_idx), tile) for part in (data.images, data.masks))
    echo(f"{len(data)} images ({data.channels} channel(s)): {len(train_idx)} for training "
         f"({len(x_train)} tiles of {tile} px), {len(val_idx)} for validation: "
         f"{', '.join(pick(data.names, val_idx))}")
    if multiclass:
        echo(f"{data.num_classes} classes, mask value k = class k: {', '.join(class_names)} "
             f"(a softmax over {data.num_classes} channels; predictions take the most probable class)")

    from helpers import augment, evaluate, losses, metrics, models, train

    if multiclass:
        loss_function, train_metrics = losses.MULTICLASS_LOSSES[loss], metrics.class_metrics(class_names)
    else:
        loss_function, train_metrics = losses.by_name(loss), [metrics.iou]
    pixel_weights = None
    if loss in losses.WEIGHTED_LOSSES:
        from helpers import weights

        train_masks = pick(data.masks, train_idx)
        if border_objects == "auto":
            border_objects = weights.guess_objects(train_masks)
        maps = [weights.border_weight_map(m, objects=border_objects)[..., None] for m in train_masks]
        pixel_weights = _tiles(maps, tile)[..., 0]
        echo(f"border weights (U-Net paper, w0 {weights.W0:g}, sigma {weights.SIGMA:g} px) around the "
             f"{border_objects} regions: mean weight {pixel_weights.mean():.2f}, max {pixel_weights.max():.1f}")
    model = None
    if not resume:
        for stale in ("model.keras", "config.json", "metrics.json"):  # never mix two runs in one folder
            (out / stale).unlink(missing_ok=True)
        model = train.compile_model(
            lambda: models.build_unet((None, None, data.channels), filters=filters, num_layers=layers,
                                      dropout=dropout, num_classes=outputs),
            loss=loss_function, learning_rate=learning_rate, metrics=train_metrics, seed=seed)
    else:
        trained = models.load_model(out / "last.keras")
        trained_on = trained.input_shape[-1]
        if trained_on != data.channels:
            raise ValueError(f"{out / 'last.keras'} was trained on {trained_on}-channel images but the images now "
                             f"have {data.channels}; resume with the same --channels as the first run.")
        if trained.output_shape[-1] != outputs:
            had = "binary masks" if trained.output_shape[-1] == 1 else f"{trained.output_shape[-1]} classes"
            now = "binary masks" if outputs == 1 else f"{outputs} classes"
            raise ValueError(f"{out / 'last.keras'} was trained on {had} but {masks} now holds {now}; resume "
                             f"with the same masks and --classes as the first run.")
    dataset = augment.get_augmented(x_train, y_train, batch_size=batch_size, seed=seed, weights=pixel_weights)
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
    if multiclass:  # the arg-max decides: no threshold to choose
        threshold = None
        table = evaluate.class_table(probs, val_masks, class_names, pick(data.names, val_idx))
        scores = {"split": "validation", "decision": "argmax", "classes": class_names}
    else:
        threshold = evaluate.choose_threshold(probs, val_masks)
        table = evaluate.score_table(probs, val_masks, pick(data.names, val_idx), threshold)
        scores = {"split": "validation", "threshold": threshold}

    with files.atomic_path(out / "model.keras") as tmp:
        shutil.copyfile(best, tmp)
    files.write_json(out / "metrics.json", {**scores, **evaluate.score_table_json(table)})
    meaning = (f"{MULTICLASS_MEANING}; {MULTICLASS_PREDICTED}" if multiclass
               else f"{CLASS_MEANING[invert_masks]}; {PREDICTED_MEANING}")
    config = {
        "model": "model.keras", "checkpoint": best.name, "channels": data.channels,
        "channel_conversion": CONVERSIONS[channels], "tile": tile, "overlap": overlap,
        "num_layers": layers, "filters": filters, "threshold": threshold,
        "classes": class_names, "num_classes": data.num_classes, "output": "softmax" if multiclass else "sigmoid",
        "instances_to_classes": instances_to_classes, "class_meaning": meaning,
        "invert_masks": invert_masks, "loss": loss, "learning_rate": learning_rate,
        "border_objects": border_objects if pixel_weights is not None else None, "epochs": epochs, "seed": seed,
        "images": str(Path(images).resolve()), "masks": str(Path(masks).resolve()),
        "train_images": pick(data.names, train_idx), "validation_images": pick(data.names, val_idx),
        "train_seconds_last_session": round(seconds, 1), "versions": _versions()}
    files.write_json(out / "config.json", config)
    mean = table.loc["mean"]
    if multiclass:
        per_class = ", ".join(f"{name} {mean[f'iou_{name}']:.3f}" for name in class_names)
        echo(f"validation ({len(val_idx)} images): mean IoU {mean['mean_iou']:.3f} (per class: {per_class}), "
             f"mean Dice {mean['mean_dice']:.3f}, pixel error {mean['pixel_error']:.3f}")
    else:
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


def _instance_mode(mode: str, channels: int, class_names: list[str] | None, config: dict, model_path: Path) -> str:
    """The way ``predict --instances MODE`` makes objects for this model: objects, boundaries or three_classes."""
    from helpers.instances import THREE_CLASSES

    if mode not in INSTANCE_MODES:
        raise ValueError(f"--instances {mode!r}: use one of {', '.join(INSTANCE_MODES)}.")
    three = channels == 3 and (config.get("instances_to_classes") or list(class_names or []) == list(THREE_CLASSES))
    if mode == "auto":
        if three:
            return "three_classes"
        if channels <= 2:
            return "objects"
        raise ValueError(f"--instances: {model_path} predicts {channels} classes, none of them marked as object "
                         f"interior and boundary. Use --instances objects (every pixel not of class 0 is object), "
                         f"or train with --instances-to-classes.")
    if mode == "boundaries" and channels > 2:
        raise ValueError(f"--instances boundaries needs a binary model whose foreground is the boundary (e.g. "
                         f"membranes); {model_path} predicts {channels} classes. Use --instances auto or objects.")
    return mode


def _instances_of(prob: np.ndarray, mode: str, threshold: float, min_size: int) -> np.ndarray:
    """Instance labels of one image from its probabilities, (H, W) for one channel or (H, W, K)."""
    from helpers import instances

    if mode == "three_classes":
        return instances.from_three_classes(prob, min_size=min_size)
    if prob.ndim == 3:  # K channels: the object (or boundary) is every class but 0
        prob, threshold = 1.0 - prob[..., 0], 0.5
    if mode == "boundaries":
        return instances.from_boundaries(prob, threshold)
    return instances.from_foreground(prob, threshold, min_size=min_size)


def predict_folder(model_path: str | os.PathLike, source: str | os.PathLike, output: str | os.PathLike, *,
                   threshold: float | None = None, tile: int | None = None, overlap: int | None = None,
                   probabilities: bool = False, instances: str | None = None, min_size: int = 10,
                   echo: Callable[[str], None] = _print) -> list[Path]:
    """Write ``output/<name>.png`` (the input's size) for every input image (``predict``).

    A binary model's masks are {0, 255} (255 = foreground, probability > threshold); a model of K
    classes writes palette PNGs of the class numbers 0..K-1 (each pixel the most probable class;
    an image viewer shows them in the colour-blind-safe :data:`helpers.files.CLASS_PALETTE`).

    Unlike :func:`helpers.predict.segment_folder` (which takes a model in memory), this reads
    the run's ``config.json`` next to ``model_path`` for the threshold, tile, overlap, channel
    conversion and classes, and reads every input before it writes anything.

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
        Override the recorded values (default: ``config.json``, else 0.5, 128 and ``tile // 4``);
        ``threshold`` applies to binary models only.
    probabilities
        Also write ``<name>_prob.tif``: float32 probabilities, ``(H, W)`` for a binary model,
        ``(K, H, W)`` (one page per class) for K classes.
    instances
        Also write instance labels ``<name>_instances.tif`` (16-bit, 0 = background, one number per
        object), made by :mod:`helpers.instances` in one of :data:`INSTANCE_MODES`:
        ``"objects"``: the foreground (binary) or every class but 0, split into blobs
        (:func:`~helpers.instances.from_foreground`); ``"boundaries"``: a binary model of boundaries
        such as membranes, the regions they separate (:func:`~helpers.instances.from_boundaries`,
        the ISBI scores' watershed); ``"auto"``: a model trained with ``instances_to_classes``
        uses its interior and boundary classes (:func:`~helpers.instances.from_three_classes`),
        a binary model ``"objects"``.
    min_size
        With ``instances`` (not ``"boundaries"``): objects of fewer pixels are dropped.
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
        Output folder = input folder, corrupt model or image, K > 1 output channels that are not a
        softmax, a threshold for a multi-class model, an ``instances`` mode that does not suit the
        model, bad tile or overlap, gray/RGB mismatch without a recorded conversion.
    PermissionError
        ``output`` is not writable (checked before anything else).

    Examples
    --------
    >>> predict_folder("runs/mine/model.keras", "new/images", "new/masks")   # doctest: +SKIP
    [PosixPath('new/masks/cell_1.png'), PosixPath('new/masks/cell_2.png')]
    >>> predict_folder("runs/nuclei/model.keras", "new/images", "new/masks", instances="auto")  # doctest: +SKIP
    """
    from helpers.models import load_model
    from helpers.predict import check_outputs

    output = files.check_writable(output)
    inputs = _input_files(Path(source))
    if output.resolve() in {path.parent.resolve() for path in inputs}:
        raise ValueError(f"--output {output} is the input folder; the masks would overwrite the images. "
                         f"Choose another output folder.")
    model_path = Path(model_path)
    config_path = model_path.parent / "config.json"
    config = files.read_json(config_path) if config_path.is_file() else {}
    model = load_model(model_path)
    classes = check_outputs(model, str(model_path))
    class_names = config.get("classes") if len(config.get("classes") or []) == max(classes, 2) else None
    if classes > 1 and threshold is not None:
        raise ValueError(f"--threshold applies to binary models; {model_path} predicts {classes} classes and each "
                         f"pixel gets the most probable one. Leave out --threshold.")
    mode = None if instances is None else _instance_mode(instances, classes, class_names, config, model_path)
    if min_size < 0:
        raise ValueError(f"--min-size {min_size} must be 0 or more pixels.")
    channels = int(config.get("channels", model.input_shape[-1]))
    conversion = config.get("channel_conversion", "none")
    if threshold is None:
        threshold = 0.5 if config.get("threshold") is None else float(config["threshold"])
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
        if classes > 1:
            written.append(files.write_class_mask(output / f"{path.stem}.png", mask))
        else:
            written.append(files.write_image(output / f"{path.stem}.png", mask))
        if probabilities:
            _write_probabilities(output / f"{path.stem}_prob.tif", prob)
        if mode is not None:
            files.write_labels(output / f"{path.stem}_instances.tif", _instances_of(prob, mode, threshold, min_size))
    if classes > 1:
        from helpers.evaluate import class_names_for

        decision = f"the most probable of {classes} classes: {', '.join(class_names or class_names_for(classes))}"
    else:
        decision = f"threshold {threshold:.2f}"
    echo(f"wrote {len(inputs)} mask(s) to {output} ({decision}, tile {tile}, overlap {overlap})")
    if mode is not None:
        echo(f"wrote {len(inputs)} instance label image(s) <name>_instances.tif ({mode.replace('_', ' ')}"
             f"{'' if mode == 'boundaries' else f', objects of at least {min_size} px'})")
    return written


def _write_probabilities(path: Path, prob: np.ndarray) -> None:
    """float32 probabilities as TIFF: (H, W) as is, (H, W, K) as K pages of (H, W)."""
    if prob.ndim == 2:
        files.write_image(path, prob.astype(np.float32))
        return
    import tifffile

    with files.atomic_path(path) as tmp:
        tifffile.imwrite(tmp, np.moveaxis(prob, -1, 0).astype(np.float32), photometric="minisblack")


# ---------------------------------------------------------------------------------------------
# evaluate


def evaluate_folders(pred: str | os.PathLike, truth: str | os.PathLike, *, json_path: str | os.PathLike | None = None,
                     isbi: bool = False, classes: str | Sequence[str] | None = None, instances: bool = False,
                     echo: Callable[[str], None] = _print) -> pd.DataFrame:
    """Score predicted masks against true masks paired by file name (``evaluate``).

    Binary masks ({0, 1} or {0, 255}) get the foreground's IoU, Dice and pixel error, as always.
    Masks of class numbers 0..K-1 (K inferred from both folders, or named with ``classes``) get
    every class's IoU and Dice and their means (:func:`helpers.evaluate.class_table`). With
    ``instances``, the truths are instance-label images and the predictions
    ``<name>_instances.tif`` (from :func:`predict_folder` with ``instances``): objects are matched at
    IoU >= 0.5 (:func:`helpers.evaluate.instance_table`).

    Parameters
    ----------
    pred
        Folder of predicted masks ({0, 255}, {0, 1} or class numbers); ``<name>_prob.tif`` files
        written by :func:`predict_folder` with ``probabilities=True`` are used for the ISBI scores,
        ``<name>_instances.tif`` files with ``instances``.
    truth
        Folder of true masks with the same file names (instance labels with ``instances``).
    json_path
        Also write the scores there (``{"pred", "truth", "isbi", "images", "mean"}``, plus
        ``"classes"`` or ``"instances"``).
    isbi
        Truth masks are ISBI-style labels (0 = membrane, 255 = cell) and predictions mark
        membrane; adds the ISBI 2012 ``v_rand`` and ``v_info`` columns.
    classes
        Names of the classes in the order of their numbers (a list, or ``"a,b,c"``); default
        ``"class 0"``, ``"class 1"``, ...
    instances
        Match instance labels: columns ``iou`` and ``dice`` (of all object pixels), ``n_true``,
        ``n_pred``, ``tp``, ``fp``, ``fn``, ``precision``, ``recall``, ``f1``, ``mean_matched_iou``.
    echo
        Receives the printed table and summary (default: print).

    Returns
    -------
    pandas.DataFrame
        Per-image scores with a ``"mean"`` row: ``iou``, ``dice``, ``pixel_error`` (and ``v_rand``,
        ``v_info``) for binary masks (:func:`helpers.evaluate.score_table`); the class table or the
        instance table otherwise.

    Raises
    ------
    FileNotFoundError
        A folder is missing or empty.
    ValueError
        Unpaired files (listed), masks of different sizes (both named), ambiguous masks (e.g. an
        instance-label image without ``instances``), ``isbi`` with classes or instances, or no
        ``<name>_instances.tif`` with ``instances``.
    PermissionError
        The folder of ``json_path`` is not writable (checked before anything else).

    Examples
    --------
    >>> evaluate_folders("new/masks", "new/true_masks").loc["mean", "iou"]   # doctest: +SKIP
    0.81
    >>> evaluate_folders("new/masks", "new/true_labels", instances=True).loc["mean", "f1"]   # doctest: +SKIP
    0.74
    """
    from helpers import evaluate
    from helpers.data import infer_classes, looks_like_instances

    if json_path:
        files.check_writable(Path(json_path).parent)
    if isbi and (instances or classes is not None):
        raise ValueError("--isbi scores binary membrane masks; leave out --classes and --instances.")
    names = _classes_option(classes)
    pred_dir, truth_dir = Path(pred), Path(truth)
    preds = files.list_images(pred_dir)
    probabilities, labels = {}, {}  # <name>_prob.tif and <name>_instances.tif written by `predict`
    for stem in list(preds):
        for suffix, found in (("_prob", probabilities), ("_instances", labels)):
            if stem.endswith(suffix) and (stem.removesuffix(suffix) in preds or suffix == "_instances"):
                found[stem.removesuffix(suffix)] = preds.pop(stem)
    fix = "Evaluate matching folders (files are paired by name)."
    if instances:
        if not labels:
            raise ValueError(f"No instance labels in {pred_dir}: --instances scores <name>_instances.tif files. Run "
                             f"predict with --instances, or name your own label images <name>_instances.tif.")
        return _evaluate_instances(files.pair_by_name(labels, truth_dir, fix=fix), pred_dir, truth_dir, json_path,
                                   echo)
    pairs = files.pair_by_name(preds, truth_dir, fix=fix)
    names_ = list(pairs)
    raw_preds, raw_truths = _read_pairs(pairs)
    values = {path: np.unique(mask) for (pred_path, truth_path), pred_mask, truth_mask
              in zip(pairs.values(), raw_preds, raw_truths) for path, mask in ((truth_path, truth_mask),
                                                                            (pred_path, pred_mask))}
    num_classes = infer_classes(values, names, allow_gaps=True)
    if num_classes > 2:
        if isbi:
            raise ValueError(f"--isbi scores binary membrane masks, but {truth_dir} holds {num_classes} classes.")
        if names is None and looks_like_instances(raw_truths):
            path, mask = max(zip((truth for _, truth in pairs.values()), raw_truths), key=lambda item: item[1].max())
            raise ValueError(f"The true masks look like instance labels, not classes: each value is one object (e.g. "
                             f"{path} numbers {np.unique(mask[mask > 0]).size} objects). Pass --instances to match "
                             f"objects, or --classes with one name per class if these really are classes.")
        class_names = evaluate.class_names_for(num_classes, names)
        table = evaluate.class_table(raw_preds, raw_truths, class_names, names_)
        extra = {"classes": class_names}
    else:
        pred_masks = [(mask > 0).astype(np.uint8) for mask in raw_preds]
        truth_masks = [(mask > 0).astype(np.uint8) for mask in raw_truths]
        truth_masks = [1 - mask for mask in truth_masks] if isbi else truth_masks  # ISBI labels: 0 = membrane
        table = evaluate.score_table(pred_masks, truth_masks, names_)
        extra = {}
        if isbi:
            for name, pred_mask, truth_mask in zip(_progress(names_, "V_rand/V_info"), pred_masks, truth_masks):
                prob = (files.read_image(probabilities[name])[..., 0] if name in probabilities
                        else pred_mask.astype(np.float32))
                scores = evaluate.isbi_scores(prob, truth_mask)
                table.loc[name, ["v_rand", "v_info"]] = scores["v_rand"], scores["v_info"]
            table.loc["mean", ["v_rand", "v_info"]] = table.drop(index="mean")[["v_rand", "v_info"]].mean()
    echo(table.to_string(float_format=lambda v: f"{v:.4f}"))
    if json_path:
        files.write_json(json_path, {"pred": str(pred_dir), "truth": str(truth_dir), "isbi": isbi, **extra,
                                     **evaluate.score_table_json(table)})
        echo(f"wrote {json_path}")
    return table


def _read_pairs(pairs: dict[str, tuple[Path, Path]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Read every (prediction, truth) pair with :func:`helpers.files.read_labels`; sizes must agree."""
    preds, truths = [], []
    for name in _progress(list(pairs), "reading"):
        pred_path, truth_path = pairs[name]
        pred, truth = files.read_labels(pred_path), files.read_labels(truth_path)
        if pred.shape != truth.shape:
            raise ValueError(f"Size mismatch: prediction {pred_path} is {pred.shape[0]}x{pred.shape[1]} "
                             f"but truth {truth_path} is {truth.shape[0]}x{truth.shape[1]}.")
        preds.append(pred)
        truths.append(truth)
    return preds, truths


def _evaluate_instances(pairs: dict[str, tuple[Path, Path]], pred_dir: Path, truth_dir: Path,
                        json_path: str | os.PathLike | None, echo: Callable[[str], None]) -> pd.DataFrame:
    """``evaluate --instances``: object pixels' IoU and Dice, and instance matching at IoU >= 0.5."""
    from helpers import evaluate
    from helpers.metrics import dice_np, iou_np

    names = list(pairs)
    pred_labels, truth_labels = _read_pairs(pairs)
    table = evaluate.instance_table(pred_labels, truth_labels, names)
    table.insert(0, "iou", [iou_np(p > 0, t > 0) for p, t in zip(pred_labels, truth_labels)] + [np.nan])
    table.insert(1, "dice", [dice_np(p > 0, t > 0) for p, t in zip(pred_labels, truth_labels)] + [np.nan])
    table.loc["mean", ["iou", "dice"]] = table.drop(index="mean")[["iou", "dice"]].mean()
    echo(table.to_string(float_format=lambda v: f"{v:.4f}"))
    mean = table.loc["mean"]
    echo(f"instances matched at IoU >= 0.5 (mean over {len(names)} images): precision {mean['precision']:.3f}, "
         f"recall {mean['recall']:.3f}, F1 {mean['f1']:.3f}, mean matched IoU {mean['mean_matched_iou']:.3f}")
    if json_path:
        files.write_json(json_path, {"pred": str(pred_dir), "truth": str(truth_dir), "isbi": False,
                                     "instances": True, "iou_threshold": 0.5, **evaluate.score_table_json(table)})
        echo(f"wrote {json_path}")
    return table
