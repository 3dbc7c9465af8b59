"""Command line: train a U-Net on your own images, segment new images, score the results.

Run ``python -m helpers --help`` (or the installed ``unet-workshop --help``)::

    python -m helpers train --images my/images --masks my/masks --out runs/mine --epochs 20
    python -m helpers predict --model runs/mine/model.keras --input new/images --output new/masks
    python -m helpers evaluate --pred new/masks --truth new/true_masks --json scores.json
    python -m helpers run-notebooks --out build          # what `make run` does

Design notes
------------
**Channels.** ``train --channels auto`` keeps the images' own channel count (1 = gray, 3 = RGB)
and records ``channel_conversion: "none"``; prediction then refuses an input with a different
channel count, with a message saying how to fix it. ``--channels 1`` (or ``3``) converts every
image to gray (or RGB) and records ``"rgb_to_gray"`` (or ``"gray_to_rgb"``), so prediction applies
the same conversion. The record lives in ``config.json`` next to ``model.keras``; without it the
model's input channel count is used and no conversion is made.

**Errors.** Bad input (empty or missing folder, unpaired files, corrupt image, size mismatch,
unexpected mask values, missing or corrupt model, unwritable output folder, gray/RGB mismatch)
raises ``FileNotFoundError``, ``ValueError``, ``PermissionError`` or ``RuntimeError`` with a
message naming the file and the fix; :func:`main` prints it as one line, ``error: <message>``,
and exits with 1 (2 for wrong command-line usage). Inputs are checked before anything is
written, and output folders are checked for write access before any work starts.

**Atomic writes.** Every file (masks, probabilities, JSON, ``model.keras``) is written to a
temporary name in its folder and renamed into place when complete
(:func:`helpers.files.atomic_path`), so an interrupted run leaves no half-written file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from helpers import files

#: Tile size and U-Net depth used when neither the command line nor config.json gives one.
DEFAULT_TILE = 128
DEFAULT_LAYERS = 4
LOSSES = ("bce", "jaccard", "bce_jaccard")
#: What the recorded ``channel_conversion`` means, keyed by ``--channels``.
CONVERSIONS = {None: "none", 1: "rgb_to_gray", 3: "gray_to_rgb"}
CLASS_MEANING = {False: "training masks: value 1 (or 255) = foreground, 0 = background",
                 True: "training masks: value 0 = foreground (inverted by --invert-masks, e.g. ISBI membrane)"}
PREDICTED_MEANING = "model output = P(foreground); predicted masks: 255 = foreground, 0 = background"

EXAMPLES = """\
examples:
  # train on your own images (masks with the same file names, {0,1} or {0,255})
  python -m helpers train --images data/own/images --masks data/own/masks --out runs/own \\
      --epochs 20 --steps 50 --tile 128 --filters 16
  # continue an interrupted run up to 30 epochs
  python -m helpers train --images data/own/images --masks data/own/masks --out runs/own \\
      --epochs 30 --resume
  # segment new images (one <name>.png mask per input, same size as the input)
  python -m helpers predict --model runs/own/model.keras --input new/ --output new_masks/
  # score predicted masks against true ones (pairs files by name)
  python -m helpers evaluate --pred new_masks/ --truth new_truth/ --json scores.json
  # run both workshop notebooks headless into build/ (what `make run` does)
  python -m helpers run-notebooks --out build --profile quick

Errors are printed as one line starting with 'error:'; the exit code is 1 (2 for wrong usage).
"""


# ---------------------------------------------------------------------------------------------
# small helpers


def check_writable(folder: str | os.PathLike) -> Path:
    """Raise ``PermissionError`` unless ``folder`` exists writable or can be created.

    Nothing is created: the nearest existing parent must be a writable folder.

    Examples
    --------
    >>> check_writable("/tmp/some/new/folder")
    PosixPath('/tmp/some/new/folder')
    """
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise PermissionError(f"Cannot write to {folder}: {existing} is a file, not a folder. "
                              f"Choose another output folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"Cannot write to {folder}: {existing} is not writable. Choose another "
                              f"output folder or fix its permissions.")
    return folder


def write_json(path: str | os.PathLike, content: dict) -> Path:
    """Write ``content`` as indented JSON, atomically (temporary file, then rename)."""
    path = Path(path)
    with files.atomic_path(path) as tmp:
        tmp.write_text(json.dumps(content, indent=2, default=float) + "\n")
    return path


def read_json(path: Path) -> dict:
    """Read a JSON file, turning a corrupt one into a ``ValueError`` naming it."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"Cannot read {path}: {error}. Fix or delete the file.") from error


def load_model(path: str | os.PathLike):
    """Load a ``.keras`` model for prediction, with errors that name the file.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The file is not a loadable Keras model (corrupt, truncated, wrong format).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Model file not found: {path}. Train one with `python -m helpers train "
                                f"--images DIR --masks DIR --out RUN_DIR` and pass --model RUN_DIR/model.keras.")
    import keras

    from helpers import losses, metrics  # noqa: F401  (registers the custom objects for loading)

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # zipfile, h5py, json and Keras all raise their own types
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"Cannot load model {path}: {reason}. The file is corrupt or not a Keras "
                         f"model; train again or copy model.keras again.") from error


def _progress(items, desc: str):
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="image", disable=None, leave=False)  # off when not a terminal


def _versions() -> dict[str, str]:
    from helpers import __version__, env

    return {**env.versions(), "numpy": np.__version__, "helpers": __version__}


# ---------------------------------------------------------------------------------------------
# train


def split_by_image(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Shuffle image indices with ``seed`` and split them into train and validation.

    Whole images go to one side, never tiles of the same image to both (neighbouring tiles look
    alike, which would make the validation score optimistic).

    Examples
    --------
    >>> split_by_image(5, 0.2, seed=0)
    ([0, 1, 3, 4], [2])
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"--val-fraction must be between 0 and 1, got {val_fraction}.")
    if n < 2:
        raise ValueError(f"Training needs at least 2 image/mask pairs (one is held out for validation), "
                         f"found {n}. Add more images.")
    n_val = min(max(1, round(n * val_fraction)), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


def _tiles(images: list[np.ndarray], tile: int) -> np.ndarray:
    """Cut every image (any size, also smaller than a tile) into ``tile`` x ``tile`` tiles."""
    from helpers.tiles import get_patches

    return np.concatenate([get_patches(image.astype(np.float32), tile)[0] for image in images])


def _predict_all(model, images: list[np.ndarray], tile: int, overlap: int) -> list[np.ndarray]:
    from helpers.tiles import predict_tiled

    return [predict_tiled(model, image, tile=tile, overlap=overlap)[..., 0] for image in images]


def score_table(preds: list[np.ndarray], truths: list[np.ndarray], names: list[str], threshold: float = 0.5):
    """Per-image IoU, Dice and pixel error of the foreground (value 1) with a ``"mean"`` row.

    ``preds`` are probabilities or binary masks (foreground where ``> threshold``); images may
    differ in size.
    """
    from helpers import evaluate

    table = evaluate.segmentation_table(preds, truths, threshold, names)
    table = table[["iou_membrane", "dice_membrane", "pixel_error"]]
    table.columns = ["iou", "dice", "pixel_error"]
    return table


def _table_json(table) -> dict:
    rows = [{"image": name, **{k: float(v) for k, v in row.items()}}
            for name, row in table.drop(index="mean").iterrows()]
    return {"images": rows, "mean": {k: float(v) for k, v in table.loc["mean"].items()}}


def cmd_train(args: argparse.Namespace) -> int:
    """``train``: tiles, image-wise split, U-Net training, threshold choice, run folder."""
    out = check_writable(args.out)
    factor = 2 ** args.layers
    if args.tile % factor:
        suggestion = max(factor, args.tile // factor * factor)
        raise ValueError(f"--tile {args.tile} must be divisible by 2**layers = {factor} (each of the "
                         f"{args.layers} poolings halves it); use e.g. --tile {suggestion}.")
    overlap = args.tile // 4 if args.overlap is None else args.overlap
    if args.resume and not (out / "last.keras").is_file():
        raise FileNotFoundError(f"Cannot resume: {out / 'last.keras'} does not exist. Train without --resume "
                                f"first, or check --out.")
    channels = None if args.channels == "auto" else int(args.channels)

    from helpers.data import load_folder

    data = load_folder(args.images, args.masks, channels=channels, invert_masks=args.invert_masks)
    train_idx, val_idx = split_by_image(len(data), args.val_fraction, args.seed)

    def pick(items: list, indices: list[int]) -> list:
        return [items[i] for i in indices]

    x_train, y_train = (_tiles(pick(part, train_idx), args.tile) for part in (data.images, data.masks))
    x_val, y_val = (_tiles(pick(part, val_idx), args.tile) for part in (data.images, data.masks))
    print(f"{len(data)} images ({data.channels} channel(s)): {len(train_idx)} for training "
          f"({len(x_train)} tiles of {args.tile} px), {len(val_idx)} for validation: "
          f"{', '.join(pick(data.names, val_idx))}", flush=True)

    from helpers import augment, evaluate, losses, metrics, models, train

    loss = {"bce": "binary_crossentropy", "jaccard": losses.jaccard_loss,
            "bce_jaccard": losses.bce_jaccard_loss}[args.loss]
    model = None
    if not args.resume:
        for stale in ("model.keras", "config.json", "metrics.json"):  # never mix two runs in one folder
            (out / stale).unlink(missing_ok=True)
        model = train.compile_model(
            lambda: models.build_unet((None, None, data.channels), filters=args.filters, num_layers=args.layers,
                                      dropout=args.dropout),
            loss=loss, learning_rate=args.learning_rate, metrics=[metrics.iou], seed=args.seed)
    else:
        trained_on = load_model(out / "last.keras").input_shape[-1]
        if trained_on != data.channels:
            raise ValueError(f"{out / 'last.keras'} was trained on {trained_on}-channel images but the images now "
                             f"have {data.channels}; resume with the same --channels as the first run.")
    dataset = augment.get_augmented(x_train, y_train, batch_size=args.batch_size, seed=args.seed)
    started = time.perf_counter()
    train.fit(model, dataset, validation_data=(x_val, y_val), epochs=args.epochs, steps_per_epoch=args.steps,
              run_dir=out, resume=args.resume, verbose=args.verbose)
    seconds = time.perf_counter() - started

    # The best epoch (lowest val_loss) becomes model.keras; its threshold is chosen on the
    # validation images, predicted whole with blended tiles as `predict` will do.
    best = out / "best.keras" if (out / "best.keras").is_file() else out / "last.keras"
    model = load_model(best)
    val_images, val_masks = pick(data.images, val_idx), [m[..., 0] for m in pick(data.masks, val_idx)]
    probs = _predict_all(model, val_images, args.tile, overlap)
    threshold = evaluate.choose_threshold(probs, val_masks)
    table = score_table(probs, val_masks, pick(data.names, val_idx), threshold)

    with files.atomic_path(out / "model.keras") as tmp:
        shutil.copyfile(best, tmp)
    write_json(out / "metrics.json", {"split": "validation", "threshold": threshold, **_table_json(table)})
    write_json(out / "config.json", {
        "model": "model.keras", "checkpoint": best.name, "channels": data.channels,
        "channel_conversion": CONVERSIONS[channels], "tile": args.tile, "overlap": overlap,
        "num_layers": args.layers, "filters": args.filters, "threshold": threshold,
        "class_meaning": f"{CLASS_MEANING[args.invert_masks]}; {PREDICTED_MEANING}",
        "invert_masks": args.invert_masks, "loss": args.loss, "epochs": args.epochs, "seed": args.seed,
        "images": str(Path(args.images).resolve()), "masks": str(Path(args.masks).resolve()),
        "train_images": pick(data.names, train_idx), "validation_images": pick(data.names, val_idx),
        "train_seconds_last_session": round(seconds, 1), "versions": _versions()})
    mean = table.loc["mean"]
    print(f"validation ({len(val_idx)} images): threshold {threshold:.2f}, IoU {mean['iou']:.3f}, "
          f"Dice {mean['dice']:.3f}, pixel error {mean['pixel_error']:.3f}")
    print(f"wrote {out / 'model.keras'}, history.csv, config.json, metrics.json")
    return 0


# ---------------------------------------------------------------------------------------------
# predict


def _kind(channels: int) -> str:
    return {1: "gray", 3: "RGB"}.get(channels, f"{channels}-channel")


def read_for_model(path: Path, channels: int, conversion: str) -> np.ndarray:
    """Read an image the way the model was trained: convert channels only where recorded.

    Raises
    ------
    ValueError
        The image's channel count differs from the model's and no conversion was recorded.
    """
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


def cmd_predict(args: argparse.Namespace) -> int:
    """``predict``: one binary mask (and optionally probabilities) per input image."""
    output = check_writable(args.output)
    source = Path(args.input)
    inputs = _input_files(source)
    if output.resolve() in {path.parent.resolve() for path in inputs}:
        raise ValueError(f"--output {output} is the input folder; the masks would overwrite the images. "
                         f"Choose another output folder.")
    model_path = Path(args.model)
    config_path = model_path.parent / "config.json"
    config = read_json(config_path) if config_path.is_file() else {}
    model = load_model(model_path)
    if model.output_shape[-1] != 1:
        raise ValueError(f"{model_path} predicts {model.output_shape[-1]} classes; predict needs a model with one "
                         f"output channel (binary segmentation).")
    channels = int(config.get("channels", model.input_shape[-1]))
    conversion = config.get("channel_conversion", "none")
    threshold = args.threshold if args.threshold is not None else float(config.get("threshold", 0.5))
    fixed_size = model.input_shape[1]  # a model built for one input size can only take that size
    tile = args.tile or int(config.get("tile") or fixed_size or DEFAULT_TILE)
    overlap = args.overlap
    if overlap is None:  # the training overlap goes with the training tile; tile/4 otherwise
        overlap = int(config["overlap"]) if "overlap" in config and not args.tile else tile // 4
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

    for path in _progress(inputs, "predicting"):
        prob, mask = segment_image(model, read_for_model(path, channels, conversion), threshold, tile, overlap)
        files.write_image(output / f"{path.stem}.png", mask)
        if args.probabilities:
            files.write_image(output / f"{path.stem}_prob.tif", prob.astype(np.float32))
    print(f"wrote {len(inputs)} mask(s) to {output} (threshold {threshold:.2f}, tile {tile}, overlap {overlap})")
    return 0


# ---------------------------------------------------------------------------------------------
# evaluate


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``evaluate``: per-image and mean IoU, Dice, pixel error (+ V_rand, V_info with --isbi)."""
    if args.json:
        check_writable(Path(args.json).parent)
    pred_dir, truth_dir = Path(args.pred), Path(args.truth)
    preds, truths = files.list_images(pred_dir), files.list_images(truth_dir)
    probabilities = {}  # <name>_prob.tif written by `predict --probabilities` next to <name>.png
    for stem in list(preds):
        if stem.endswith("_prob") and stem.removesuffix("_prob") in preds:
            probabilities[stem.removesuffix("_prob")] = preds.pop(stem)
    unpaired = sorted(set(preds) ^ set(truths), key=files.natural_key)
    if unpaired:
        shown = ", ".join(unpaired[:10]) + (" ..." if len(unpaired) > 10 else "")
        raise ValueError(f"{len(unpaired)} file(s) have no partner with the same name in {pred_dir} and "
                         f"{truth_dir}: {shown}. Evaluate matching folders (files are paired by name).")
    names = list(preds)
    pred_masks, truth_masks = [], []
    for name in _progress(names, "reading"):
        pred, truth = files.read_mask(preds[name]), files.read_mask(truths[name])
        if pred.shape != truth.shape:
            raise ValueError(f"Size mismatch: prediction {preds[name]} is {pred.shape[0]}x{pred.shape[1]} but "
                             f"truth {truths[name]} is {truth.shape[0]}x{truth.shape[1]}.")
        pred_masks.append(pred)
        truth_masks.append(1 - truth if args.isbi else truth)  # ISBI labels: 0 = membrane
    table = score_table(pred_masks, truth_masks, names)
    if args.isbi:
        from helpers import evaluate

        for name, pred, truth in zip(_progress(names, "V_rand/V_info"), pred_masks, truth_masks):
            prob = files.read_image(probabilities[name])[..., 0] if name in probabilities else pred.astype(np.float32)
            scores = evaluate.isbi_scores(prob, truth)
            table.loc[name, ["v_rand", "v_info"]] = scores["v_rand"], scores["v_info"]
        table.loc["mean", ["v_rand", "v_info"]] = table.drop(index="mean")[["v_rand", "v_info"]].mean()
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    if args.json:
        write_json(args.json, {"pred": str(pred_dir), "truth": str(truth_dir), "isbi": args.isbi,
                               **_table_json(table)})
        print(f"wrote {args.json}")
    return 0


# ---------------------------------------------------------------------------------------------
# run-notebooks


def cmd_run_notebooks(args: argparse.Namespace) -> int:
    """``run-notebooks``: execute the workshop notebooks headless (see :mod:`helpers.runner`)."""
    from helpers import runner

    return runner.run_notebooks(args.out, profile=args.profile, notebooks=args.notebook or None,
                                data_dir=args.data_dir)


# ---------------------------------------------------------------------------------------------
# parser and entry point


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m helpers`` argument parser with its four subcommands."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="python -m helpers", formatter_class=formatter, epilog=EXAMPLES,
                                     description="U-Net workshop: train on your own images, segment, evaluate, "
                                                 "run the notebooks.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a U-Net on a folder of images and masks",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                description="Cut images and masks into tiles, split by image into train/"
                                            "validation, train, choose the threshold on the validation images "
                                            "and write OUT/model.keras, history.csv, config.json, metrics.json.")
    train.add_argument("--images", required=True, help="folder of images (PNG/TIFF/JPEG, 8/16-bit, gray/RGB)")
    train.add_argument("--masks", required=True, help="folder of masks named like the images, {0,1}/{0,255}")
    train.add_argument("--out", required=True, help="run folder for the model, history and scores")
    train.add_argument("--epochs", type=int, default=20, help="total epochs (including earlier ones on --resume)")
    train.add_argument("--steps", type=int, default=50, help="batches per epoch")
    train.add_argument("--tile", type=int, default=DEFAULT_TILE, help="tile size in pixels")
    train.add_argument("--overlap", type=int, default=None, help="tile overlap at prediction (default tile/4)")
    train.add_argument("--filters", type=int, default=16, help="filters in the first U-Net level")
    train.add_argument("--layers", type=int, default=DEFAULT_LAYERS, help="U-Net pooling levels")
    train.add_argument("--dropout", type=float, default=0.2, help="spatial dropout rate")
    train.add_argument("--loss", choices=LOSSES, default="bce_jaccard", help="training loss")
    train.add_argument("--val-fraction", type=float, default=0.2, help="fraction of images for validation")
    train.add_argument("--batch-size", type=int, default=8, help="tiles per batch")
    train.add_argument("--learning-rate", type=float, default=1e-4, help="Adam learning rate")
    train.add_argument("--channels", choices=("auto", "1", "3"), default="auto",
                       help="auto: keep the images' channels; 1: convert to gray; 3: convert to RGB "
                            "(the conversion is recorded and applied by predict)")
    train.add_argument("--invert-masks", action="store_true",
                       help="the mask value 0 is the foreground (e.g. ISBI labels, 0 = membrane)")
    train.add_argument("--seed", type=int, default=42, help="seed for the split, weights and augmentation")
    train.add_argument("--resume", action="store_true", help="continue from OUT/last.keras")
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2, help="Keras fit verbosity")
    train.set_defaults(run=cmd_train)

    predict = commands.add_parser("predict", help="segment images with a trained model",
                                  description="Write OUTPUT/<name>.png ({0,255}, the input's size) for every "
                                              "input image, predicted with overlapping, blended tiles.")
    predict.add_argument("--model", required=True, help="RUN_DIR/model.keras (config.json next to it is used)")
    predict.add_argument("--input", required=True, help="an image file or a folder of images")
    predict.add_argument("--output", required=True, help="folder for the masks (not the input folder)")
    predict.add_argument("--threshold", type=float, default=None,
                         help="foreground where probability > threshold (default: config.json, else 0.5)")
    predict.add_argument("--tile", type=int, default=None,
                         help=f"tile size (default: config.json, else {DEFAULT_TILE})")
    predict.add_argument("--overlap", type=int, default=None, help="tile overlap (default: config.json, else tile/4)")
    predict.add_argument("--probabilities", action="store_true", help="also write <name>_prob.tif (float32)")
    predict.set_defaults(run=cmd_predict)

    evaluate = commands.add_parser("evaluate", help="score predicted masks against true masks",
                                   description="Pair masks by file name and print per-image and mean IoU, Dice "
                                               "and pixel error of the foreground (non-zero value).")
    evaluate.add_argument("--pred", required=True, help="folder of predicted masks ({0,255} or {0,1})")
    evaluate.add_argument("--truth", required=True, help="folder of true masks with the same file names")
    evaluate.add_argument("--json", default=None, help="also write the scores to this JSON file")
    evaluate.add_argument("--isbi", action="store_true",
                          help="truth masks are ISBI-style cell/membrane labels (0 = membrane, 255 = cell) and the "
                               "predictions mark membrane; adds the ISBI 2012 V_rand and V_info (using "
                               "<name>_prob.tif where present)")
    evaluate.set_defaults(run=cmd_evaluate)

    run = commands.add_parser("run-notebooks", help="execute the workshop notebooks headless",
                              description="Execute notebooks/01_*.ipynb and 02_*.ipynb into OUT (.ipynb and "
                                          ".html) and print a summary of runtimes and scores.")
    run.add_argument("--out", default="build", help="output folder (runs go to OUT/runs)")
    run.add_argument("--profile", choices=("full", "cpu", "quick"), default=None,
                     help="full: workshop settings (GPU); cpu: reduced for a laptop; quick: smoke test "
                          "(default: full with a GPU, cpu without, quick with UNET_QUICK=1)")
    run.add_argument("--notebook", action="append", default=None,
                     help="run this notebook instead of the workshop's (repeatable)")
    run.add_argument("--data-dir", default=None, help="local copy of the ISBI 2012 data (default: UNET_DATA_DIR "
                                                      "or the download cache)")
    run.set_defaults(run=cmd_run_notebooks)
    return parser


def _one_line(error: BaseException) -> str:
    message = " ".join(str(error).split())
    return message or type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 bad input, 2 wrong usage).

    Examples
    --------
    >>> main(["evaluate", "--pred", "missing", "--truth", "missing"])   # doctest: +SKIP
    error: Folder not found: missing. Check the path (it must be a folder of images).
    1
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a usage error (2, message already printed)
        return int(exit_.code or 0)
    try:
        return args.run(args)
    except (FileNotFoundError, ValueError, PermissionError, RuntimeError) as error:
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; files already written are complete (`train --resume` continues a run).",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
