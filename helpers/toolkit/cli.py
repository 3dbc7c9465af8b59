"""The ``python -m helpers`` command line: train on your own images, segment, score, export, run the notebooks.

Each command parses its options and calls one library function (:mod:`helpers.toolkit.workflow`,
:func:`helpers.toolkit.export.export_model`, :func:`helpers.toolkit.runner.run_notebooks`), which
checks them and raises errors naming the parameter; :func:`main` prints them as one line
``error: ...`` with the flags instead (exit code 1; 2 for wrong usage).

Examples
--------
>>> main(["evaluate", "--pred", "new/masks", "--truth", "new/true_masks"])   # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from helpers.toolkit import workflow
from helpers.toolkit.workflow import BORDER_OBJECTS, DEFAULT_LAYERS, DEFAULT_LEARNING_RATE, DEFAULT_TILE, LOSSES

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
  # ISBI-style labels: V_rand and V_info at the thresholds the run chose on its validation images
  python -m helpers evaluate --pred em_out/ --truth em_labels/ --isbi --config runs/em/config.json
  # three classes named in the order of their numbers in the masks (inferred when left out)
  python -m helpers train --images tissue/images --masks tissue/masks --out runs/tissue \\
      --classes background,cortex,medulla
  # nuclei given as instance labels: train background/interior/boundary, write and score instances
  python -m helpers train --images nuclei/images --masks nuclei/labels --out runs/nuclei --instances-to-classes
  python -m helpers predict --model runs/nuclei/model.keras --input new/ --output new_out/ --instances
  python -m helpers evaluate --pred new_out/ --truth new_labels/ --instances
  # volumes: train on a pair of stacks (slice i of the masks labels slice i of the images, the ISBI layout)
  python -m helpers train --images em/train-volume.tif --masks em/train-labels.tif --out runs/em --invert-masks
  # segment a TIFF stack (or Zarr, OME-Zarr) chunk by chunk into OME-Zarr; if it stops, the same command resumes
  python -m helpers predict --model runs/em/model.keras --input em/test-volume.tif --output em/test.zarr \\
      --probabilities
  # the same on a dask.distributed cluster (never replaces a finished output without --overwrite)
  python -m helpers predict --model runs/em/model.keras --input big.zarr --output big_pred.zarr \\
      --scheduler tcp://scheduler-host:8786
  # score a predicted volume against a stack of true masks, slice by slice
  python -m helpers evaluate --pred em/test.zarr --truth em/test-labels.tif --isbi --config runs/em/config.json
  # package the model for Fiji/deepImageJ, ilastik and napari (BioImage Model Zoo format), and test it
  python -m helpers export --model runs/own/model.keras --out own_model.zip --authors "Ada Lovelace" --check
  # run both workshop notebooks headless into build/ (what `make run` does)
  python -m helpers run-notebooks --out build --profile quick

Errors are printed as one line starting with 'error:'; the exit code is 1 (2 for wrong usage).
"""


# ---------------------------------------------------------------------------------------------
# subcommands: each calls one library function


def cmd_train(args: argparse.Namespace) -> int:
    """``train``: :func:`helpers.toolkit.workflow.train_folder` with the command line's arguments."""
    workflow.train_folder(
        args.images, args.masks, args.out, epochs=args.epochs, steps=args.steps, tile=args.tile,
        overlap=args.overlap, filters=args.filters, layers=args.layers, dropout=args.dropout, loss=args.loss,
        val_fraction=args.val_fraction, batch_size=args.batch_size, learning_rate=args.learning_rate,
        channels=None if args.channels == "auto" else int(args.channels), invert_masks=args.invert_masks,
        border_objects=args.border_objects, classes=args.classes, instances_to_classes=args.instances_to_classes,
        seed=args.seed, resume=args.resume, verbose=args.verbose, axes=args.axes)
    return 0


#: predict's options for volumes only (argparse dests), refused for images and folders.
VOLUME_OPTIONS = ("axes", "chunk", "slices_per_chunk", "scheduler", "overwrite")


def _is_volume_run(args: argparse.Namespace) -> bool:
    """Whether ``predict`` segments a volume: the input is one (or a ``.zarr`` path), or a TIFF into ``.zarr``."""
    from helpers.toolkit.folders import is_stack

    source = Path(args.input)
    if is_stack(source):
        return True
    if not str(args.output).rstrip("/\\").lower().endswith(".zarr"):
        return False
    if source.suffix.lower() in (".tif", ".tiff") and source.is_file():
        return True  # a 2-D TIFF: a volume of one slice
    if not source.exists():
        raise FileNotFoundError(f"source={str(source)!r}: no such file or folder; check the path")
    raise ValueError(f"output={args.output!r} is a Zarr volume, but source={str(source)!r} is not a volume (a TIFF "
                     f"stack, Zarr or OME-Zarr); write the masks of images to a folder (an output not ending in .zarr)")


def cmd_predict(args: argparse.Namespace) -> int:
    """``predict``: :func:`helpers.toolkit.volumes.predict_volume` for a volume, else
    :func:`helpers.toolkit.workflow.predict_folder`, with the command line's arguments."""
    common = {"threshold": args.threshold, "tile": args.tile, "overlap": args.overlap,
              "probabilities": args.probabilities, "instances": args.instances, "min_size": args.min_size}
    if _is_volume_run(args):
        from helpers.toolkit import volumes  # needs dask and zarr: imported only for volumes

        volumes.predict_volume(args.model, args.input, args.output, **common, axes=args.axes, chunk=args.chunk,
                               slices_per_chunk=1 if args.slices_per_chunk is None else args.slices_per_chunk, scheduler=args.scheduler,
                               overwrite=args.overwrite)
        return 0
    given = [name for name in VOLUME_OPTIONS if getattr(args, name) not in (None, False)]
    if given:
        raise ValueError(f"{', '.join('--' + name.replace('_', '-') for name in given)} appl"
                         f"{'ies' if len(given) == 1 else 'y'} to volumes only (TIFF stacks, Zarr), but --input "
                         f"{args.input} is an image or a folder of images; leave {'it' if len(given) == 1 else 'them'} "
                         f"out")
    workflow.predict_folder(args.model, args.input, args.output, **common)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``evaluate``: :func:`helpers.toolkit.workflow.evaluate_folders` with the command line's arguments."""
    workflow.evaluate_folders(args.pred, args.truth, json_path=args.json, isbi=args.isbi,
                              isbi_thresholds=_thresholds(args.isbi_thresholds), config=args.config,
                              classes=args.classes, instances=args.instances, axes=args.axes)
    return 0


def _thresholds(text: str | None) -> float | dict[str, float] | None:
    """``"0.6"`` -> 0.6 (both metrics); ``"0.7,0.5"`` -> ``{"v_rand": 0.7, "v_info": 0.5}``."""
    if text is None:
        return None
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in (1, 2):
        raise ValueError(f"isbi_thresholds={text} must be one number or two (V_rand's, V_info's), e.g. 0.7,0.5")
    return values[0] if len(values) == 1 else {"v_rand": values[0], "v_info": values[1]}


def cmd_export(args: argparse.Namespace) -> int:
    """``export``: :func:`helpers.toolkit.export.export_model`, then its ``check_package`` with ``--check``."""
    from helpers.toolkit import export

    authors = [name.strip() for name in args.authors.split(",") if name.strip()] if args.authors else None
    path = export.export_model(args.model, args.out, name=args.name, description=args.description,
                               authors=authors or export.DEFAULT_AUTHORS, license=args.license,
                               test_image=args.test_image, force=args.force)
    print(f"wrote {path} (BioImage Model Zoo package; open it in Fiji/deepImageJ, ilastik or napari, "
          f"see README.md inside)")
    if args.check:
        result = export.check_package(path)
        failed = [f"{d['name']}: {' '.join(d['errors'])}" for d in result["details"] if d["errors"]]
        if result["status"] != "passed":
            raise RuntimeError(f"bioimageio.core's test of {path}: {result['status']}; "
                               f"{failed[0] if failed else 'no details'}")
        print(f"bioimageio.core's model test of {path}: {result['status']}")
    return 0


def cmd_run_notebooks(args: argparse.Namespace) -> int:
    """``run-notebooks``: execute the workshop notebooks headless (:mod:`helpers.toolkit.runner`)."""
    from helpers.toolkit import runner

    return runner.run_notebooks(args.out, profile=args.profile, notebooks=args.notebook or None,
                                data_dir=args.data_dir)


# ---------------------------------------------------------------------------------------------
# the parser: one function per command


def _add_train(commands) -> None:
    train = commands.add_parser("train", help="train a U-Net on a folder of images and masks",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                description="Cut images and masks into tiles, split by image into train/"
                                            "validation, train, choose the threshold on the validation images "
                                            "and write OUT/model.keras, history.csv, config.json, metrics.json.")
    add = train.add_argument
    add("--images", required=True, help="folder of images (PNG/TIFF/JPEG, 8/16-bit, gray/RGB), or a stack: a "
                                        "multi-page TIFF, Zarr or OME-Zarr (z, y, x[, c])")
    add("--masks", required=True, help="folder of masks named like the images: {0,1}/{0,255}, or the class "
                                       "numbers 0..K-1 (gray or palette PNG); or, with a stack of images, a stack "
                                       "of masks (slice i labels slice i, e.g. the ISBI train-labels.tif)")
    add("--out", required=True, help="run folder for the model, history and scores")
    add("--epochs", type=int, default=20, help="total epochs (including earlier ones on --resume)")
    add("--steps", type=int, default=50, help="batches per epoch")
    add("--tile", type=int, default=DEFAULT_TILE, help="tile size in pixels")
    add("--overlap", type=int, default=None, help="tile overlap at prediction (default tile/4)")
    add("--filters", type=int, default=16, help="filters in the first U-Net level")
    add("--layers", type=int, default=DEFAULT_LAYERS, help="U-Net pooling levels")
    add("--dropout", type=float, default=0.2, help="spatial dropout rate")
    add("--loss", choices=LOSSES, default="auto", help="training loss; auto: border-weighted BCE + Jaccard for "
        "binary masks (the recipe benchmark's steadiest V_rand over seeds), cross-entropy + Jaccard for K classes")
    add("--val-fraction", type=float, default=0.2, help="fraction of images for validation")
    add("--batch-size", type=int, default=8, help="tiles per batch")
    add("--learning-rate", type=float, default=DEFAULT_LEARNING_RATE, help="Adam learning rate")
    add("--border-objects", choices=BORDER_OBJECTS, default="auto",
        help="with a weighted loss: the objects whose narrow gaps weigh most, 'background' (cells between membrane "
             "lines) or 'foreground' (blobs such as nuclei); auto: the side split into more regions")
    add("--channels", choices=("auto", "1", "3"), default="auto",
        help="auto: keep the images' channels; 1: convert to gray; 3: convert to RGB (the conversion is recorded "
             "and applied by predict)")
    add("--invert-masks", action="store_true", help="the mask value 0 is the foreground (e.g. ISBI labels, "
                                                    "0 = membrane)")
    add("--classes", default=None, metavar="NAME,NAME,...",
        help="the classes' names in the order of their numbers in the masks (K names: a softmax over K classes; "
             "2: binary); default: inferred from the masks")
    add("--instances-to-classes", action="store_true",
        help="the masks are instance labels (0 = background, one number per object): train the three classes "
             "background, interior, boundary, which separate touching objects")
    add("--seed", type=int, default=42, help="seed for the split, weights and augmentation")
    add("--resume", action="store_true", help="continue from OUT/last.keras")
    add("--axes", default=None, help="stacks only: the images' axes where the file does not say them, e.g. zyx or "
                                     "zyxc (the masks' are the same without c)")
    add("--verbose", type=int, choices=(0, 1, 2), default=2, help="Keras fit verbosity")
    train.set_defaults(run=cmd_train, flags={})


def _add_predict(commands) -> None:
    predict = commands.add_parser("predict", help="segment images or volumes with a trained model",
                                  description="Write OUTPUT/<name>.png ({0,255}, or a palette PNG of the class "
                                              "numbers for K classes; the input's size) for every input image, "
                                              "predicted with overlapping, blended tiles. A volume (multi-page "
                                              "TIFF, Zarr, OME-Zarr, or a tiled image too large to read whole) is "
                                              "segmented chunk by chunk on Dask into OUTPUT.zarr (OME-Zarr images "
                                              "mask, probabilities, instances) or a small OUTPUT.tif stack; equal "
                                              "to the in-memory prediction, and a stopped run resumes when run "
                                              "again with the same command.")
    add = predict.add_argument
    add("--model", required=True, help="RUN_DIR/model.keras (config.json next to it is used)")
    add("--input", required=True, help="an image file, a folder of images, or a volume (multi-page TIFF, .zarr)")
    add("--output", required=True, help="folder for the masks (not the input folder); for a volume OUT.zarr "
                                        "(OME-Zarr) or OUT.tif (a TIFF stack, up to 2 GB)")
    add("--threshold", type=float, default=None,
        help="foreground where probability > threshold (default: config.json, else 0.5)")
    add("--tile", type=int, default=None, help=f"tile size (default: config.json, else {DEFAULT_TILE})")
    add("--overlap", type=int, default=None, help="tile overlap (default: config.json, else tile/4)")
    add("--probabilities", action="store_true",
        help="also write <name>_prob.tif (float32; one page per class for K classes)")
    add("--instances", nargs="?", const="auto", default=None, choices=workflow.INSTANCE_MODES,
        help="also write <name>_instances.tif, 16-bit instance labels (one number per object): 'objects' splits "
             "the foreground into blobs, 'boundaries' takes the regions a boundary model's lines (e.g. membranes) "
             "separate, 'auto' (the default) uses an --instances-to-classes model's interior and boundary classes, "
             "else 'objects'")
    add("--min-size", type=int, default=10, help="with --instances: objects smaller than this many pixels are "
                                                 "dropped")
    add("--axes", default=None, help="volumes only: the input's axes in its own order where the file does not say "
                                     "them (OME metadata does), e.g. zyx, zyxc, czyx")
    add("--chunk", type=int, default=None, metavar="PIXELS",
        help="volumes only: pixels per chunk along y and x, at least the tile (default: whole slices up to 4096)")
    add("--slices-per-chunk", type=int, default=None, metavar="N", help="volumes only: slices per chunk (default 1)")
    add("--scheduler", default=None, metavar="ADDRESS",
        help="volumes only: a dask.distributed scheduler, e.g. tcp://host:8786 (default: Dask's scheduler-address "
             "setting / DASK_SCHEDULER_ADDRESS, else local threads)")
    add("--overwrite", action="store_true",
        help="volumes only: replace a finished output (an unfinished one is resumed without it)")
    predict.set_defaults(run=cmd_predict, flags={"model_path": "--model", "path": "--model", "source": "--input",
                                                 "output_dir": "--output", "channels": "--channels",
                                                 "instances_to_classes": "--instances-to-classes",
                                                 "volume": "--input"})


def _add_evaluate(commands) -> None:
    evaluate = commands.add_parser("evaluate", help="score predicted masks against true masks",
                                   description="Pair masks by file name (or two volumes slice by slice) and print "
                                               "per-image and mean IoU, Dice and pixel error of the foreground "
                                               "(non-zero value), of every class for masks of class numbers, or "
                                               "instance matching.")
    add = evaluate.add_argument
    add("--pred", required=True, help="folder of predicted masks ({0,255}, {0,1} or class numbers), or a volume: "
                                      "predict's OUT.zarr or OUT.tif, a TIFF stack, Zarr or OME-Zarr")
    add("--truth", required=True, help="folder of true masks with the same file names, or a volume of as many "
                                       "slices as --pred (scored slice by slice: z0000, z0001, ...)")
    add("--axes", default=None, help="volumes only: their axes where the files do not say them, e.g. zyx")
    add("--classes", default=None, metavar="NAME,NAME,...",
        help="names of the classes 0..K-1 for the per-class columns (default: class 0, ...)")
    add("--instances", action="store_true",
        help="the truths are instance labels (one number per object): match the predicted <name>_instances.tif "
             "(predict --instances) at IoU >= 0.5 and report precision, recall, F1 and the mean matched IoU")
    add("--json", default=None, help="also write the scores to this JSON file")
    add("--isbi", action="store_true",
        help="truth masks are ISBI-style cell/membrane labels (0 = membrane, 255 = cell) and the predictions mark "
             "membrane; adds the ISBI 2012 V_rand and V_info (using <name>_prob.tif where present), at the "
             "thresholds of --config or --isbi-thresholds; without them at the best threshold on these very images "
             "(the challenge's way, optimistic, and labelled so)")
    add("--config", default=None, metavar="RUN/config.json",
        help="with --isbi: the V_rand and V_info thresholds that train chose on its validation images")
    add("--isbi-thresholds", default=None, metavar="T or T_RAND,T_INFO",
        help="with --isbi: thresholds chosen on validation images, one for both or V_rand's and V_info's")
    evaluate.set_defaults(run=cmd_evaluate, flags={"json_path": "--json", "overwrite": "--overwrite"})  # predict's


def _add_export(commands) -> None:
    export = commands.add_parser("export", help="package a trained model for Fiji, ilastik and napari",
                                 description="Write OUT, a BioImage Model Zoo package (spec 0.5: rdf.yaml, Keras "
                                             "and TensorFlow weights, a test image and its prediction, a cover and "
                                             "a README), for Fiji/deepImageJ, ilastik and napari. Needs the export "
                                             "extra: pip install -e '.[export]'.")
    add = export.add_argument
    add("--model", required=True, help="RUN_DIR/model.keras (config.json and metrics.json next to it are used)")
    add("--out", required=True, help="the package to write, ending in .zip")
    add("--name", default=None, help="model name (default: from the run folder's name)")
    add("--description", default=None, help="one or two sentences (default: from the run)")
    add("--authors", default=None, help="author names separated by commas (default: 'U-Net workshop participant')")
    add("--license", default=None, help="SPDX licence id of the weights, e.g. MIT (default: CC-BY-4.0)")
    add("--test-image", default=None, help="image for the package's test (default: the first training image "
                                           "recorded in config.json)")
    add("--force", action="store_true", help="replace OUT if it exists")
    add("--check", action="store_true", help="then run bioimageio.core's model test on OUT")
    export.set_defaults(run=cmd_export, flags={"path": "--model"})


def _add_run_notebooks(commands) -> None:
    run = commands.add_parser("run-notebooks", help="execute the workshop notebooks headless",
                              description="Execute notebooks/01_*.ipynb and 02_*.ipynb into OUT (.ipynb and .html) "
                                          "and print a summary of runtimes and scores.")
    add = run.add_argument
    add("--out", default="build", help="output folder (runs go to OUT/runs)")
    add("--profile", choices=("full", "cpu", "quick"), default=None,
        help="full: workshop settings (GPU); cpu: reduced for a laptop; quick: smoke test (default: full with a "
             "GPU, cpu without, quick with UNET_QUICK=1)")
    add("--notebook", action="append", default=None, help="run this notebook instead of the workshop's "
                                                          "(repeatable)")
    add("--data-dir", default=None, help="local copy of the ISBI 2012 data (default: UNET_DATA_DIR or the "
                                         "download cache)")
    run.set_defaults(run=cmd_run_notebooks, flags={"notebooks": "--notebook"})


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m helpers`` argument parser with its five commands."""
    parser = argparse.ArgumentParser(prog="python -m helpers", formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=EXAMPLES, description="U-Net workshop: train on your own images, "
                                                                  "segment, evaluate, run the notebooks.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_train, _add_predict, _add_evaluate, _add_export, _add_run_notebooks):
        add(commands)
    return parser


# ---------------------------------------------------------------------------------------------
# entry point: library errors name parameters, the command line shows flags


def _flags(parser: argparse.ArgumentParser, command: str, aliases: dict[str, str]) -> dict[str, tuple[str, bool]]:
    """``parameter -> (flag, is_switch)`` of a command: its options' dests, plus the library's other names."""
    sub = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    flags = {action.dest: (action.option_strings[-1], action.nargs == 0)
             for action in sub.choices[command]._actions if action.option_strings and action.dest != "help"}
    return {**flags, **{name: (flag, flags.get(name, ("", False))[1]) for name, flag in aliases.items()}}


def _in_flags(message: str, flags: dict[str, tuple[str, bool]]) -> str:
    """``tile=100 must ...`` as ``--tile 100 must ...``; ``force=True`` as ``--force``."""
    def flag(match: re.Match) -> str:
        name, value = match.group(1), match.group(2)
        if name not in flags:
            return match.group(0)
        option, switch = flags[name]
        if value == "True" or (switch and value == "False"):
            return option
        return f"{option} {value.strip(chr(39))}" if value else option

    return re.sub(r"(?<![\w.\-])([a-z_]+)=('[^']*'|[^\s,;:)]*)", flag, message)


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
    except (FileNotFoundError, FileExistsError, ValueError, PermissionError, RuntimeError, ImportError) as error:
        message = _in_flags(_one_line(error), _flags(parser, args.command, args.flags))
        message = re.sub(r" \(command line: [^)]*\)", "", message)  # the library's hint, said already as flags
        print(f"error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; files already written are complete (`train --resume` continues a run; the same "
              "`predict` command resumes a volume).", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
