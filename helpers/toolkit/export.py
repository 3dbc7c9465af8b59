"""Export a trained U-Net as a BioImage Model Zoo package, for Fiji (deepImageJ), ilastik and napari.

:func:`export_model` writes one ``.zip`` (model description spec 0.5) built from
``bioimageio.spec``'s own model classes, which validate it and draw its cover from the test
tensors; :func:`check_package` runs ``bioimageio.core``'s model test on it. Both need the
``export`` extra (``pip install -e '.[export]'``); this module imports without it.

Examples
--------
>>> from helpers.toolkit import export
>>> export.export_model("runs/mine/model.keras", "my_model.zip")            # doctest: +SKIP
PosixPath('my_model.zip')
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import math
import os
import re
import string
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from helpers import files
from helpers.toolkit import formats
from helpers.toolkit.weight_formats import (INPUT_ID, OUTPUT_ID, WEIGHT_FORMATS, clean_copy, quiet_tensorflow,
                                            write_weights)

if TYPE_CHECKING:
    import keras

__all__ = ["export_model", "check_package", "WEIGHT_FORMATS", "INSTALL_HINT"]

#: How to install the optional dependency (the end of the ImportError's message).
INSTALL_HINT = ("pip install 'bioimageio.core>=0.11' 'pydantic>=2.10.3,<2.14' (in Colab: %pip install ...; in the "
                "workshop folder `make install` does it, or pip install -e '.[export]')")
#: Largest side of the test image (a centred crop): keeps the package small and its test quick.
TEST_SIZE = 256
#: Default licences of the weights: the ISBI 2012 data may be used for non-commercial work only.
DEFAULT_LICENSE, ISBI_LICENSE = "CC-BY-4.0", "CC-BY-NC-4.0"
DEFAULT_AUTHORS = ("U-Net workshop participant",)
ISBI_HOLDOUT_SLICE = 25
ISBI_TRAINING = ("ISBI 2012 EM segmentation challenge (Cardona et al. 2010; Arganda-Carreras et al. 2015): "
                 "serial-section transmission electron microscopy of the Drosophila first-instar larva ventral "
                 "nerve cord, 512 x 512 pixels of 4 x 4 nm, 8-bit. The workshop trains on slices 0-19, chooses "
                 "the threshold on slices 20-24 and holds out slices 25-29. The organisers allow the data's use "
                 "for non-commercial image segmentation work only, citing both papers.")
CITATIONS = (("Ronneberger, Fischer and Brox (2015): U-Net: Convolutional Networks for Biomedical Image "
              "Segmentation. MICCAI 2015.", "10.1007/978-3-319-24574-4_28"),)
ISBI_CITATIONS = (("Cardona et al. (2010): An Integrated Micro- and Macroarchitectural Analysis of the Drosophila "
                   "Brain by Computer-Assisted Serial Section Electron Microscopy. PLoS Biology 8(10): e1000502.",
                   "10.1371/journal.pbio.1000502"),
                  ("Arganda-Carreras et al. (2015): Crowdsourcing the creation of image segmentation algorithms "
                   "for connectomics. Frontiers in Neuroanatomy 9:142.", "10.3389/fnana.2015.00142"))
#: The package's README.md, filled in with string.Template.
README_TEMPLATE = Path(__file__).with_name("export_readme.md")
_SPLITS = {"holdout": "held-out images (never used for training or for choosing the threshold)",
           "validation": "validation images (used to choose the threshold; not trained on)"}
_RULES = {"name": "Use 5-128 letters, digits, spaces and _ + - ( ) only.", "authors": "Give names without '/'.",
          "license": "Use an SPDX id such as CC-BY-4.0, MIT, BSD-3-Clause or Apache-2.0."}
_CONVERTED = {"rgb_to_gray": " The model was trained on colour images converted to gray: convert yours to gray first "
                             "(Fiji: Image > Type > 8-bit).",
              "gray_to_rgb": " The model was trained on gray images repeated into RGB: convert yours to RGB first "
                             "(Fiji: Image > Type > RGB Color)."}


@dataclass
class _Package:
    """What the package says: the model's geometry, the run's records, the test image and its scaling."""

    channels: int
    classes: int
    levels: int
    height: int | None
    width: int | None
    activation: str
    parameters: int
    config: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)
    split: str | None = None
    threshold: float = 0.5
    origin: str = "the default; none was recorded with the model"
    tile: int | None = None
    overlap: int = 32
    names: list[str] = field(default_factory=list)
    test_input: np.ndarray | None = None
    test_source: str = ""
    dtype: str = "float32"
    gain: float | None = None  # scale_linear's gain; None with min_max (scale_range) or floats in [0, 1]
    min_max: bool = False
    halo: int = 1
    minimum: int = 1

    @property
    def step(self) -> int:
        return 2 ** self.levels

    @property
    def workshop(self) -> bool:
        """No config.json: the workshop notebooks' model, trained on the ISBI 2012 slices."""
        return not self.config

    @property
    def citations(self) -> tuple[tuple[str, str], ...]:
        return CITATIONS + (ISBI_CITATIONS if self.workshop else ())


def _geometry(model: keras.Model, source: str) -> _Package:
    """Check that ``model`` is a U-Net with one image input and one output of the same size."""
    import keras

    from helpers.toolkit.scoring import output_activation

    def refuse(reason: str) -> ValueError:
        return ValueError(f"{source} is not a U-Net with one image input and one output of the same size: {reason}. "
                          f"Export a U-Net built with helpers.models.build_unet (or `python -m helpers train`).")

    if not getattr(model, "inputs", None) or not getattr(model, "outputs", None):
        raise refuse("it is a subclassed model without a functional graph")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise refuse(f"it has {len(model.inputs)} inputs and {len(model.outputs)} outputs")
    shape, out = tuple(model.inputs[0].shape), tuple(model.outputs[0].shape)
    if len(shape) != 4 or len(out) != 4:
        raise refuse(f"its input {shape} and output {out} are not (batch, height, width, channels)")
    if shape[1:3] != out[1:3] or shape[-1] is None or out[-1] is None:
        raise refuse(f"its input {shape} and output {out} differ in height or width or have no fixed channel count")
    pools = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
    levels = sum(isinstance(layer, pools) and tuple(layer.strides) == (2, 2) for layer in model.layers)
    if not levels:
        raise refuse("it has no 2 x 2 pooling layers")
    return _Package(channels=int(shape[-1]), classes=int(out[-1]), levels=levels, height=shape[1], width=shape[2],
                    activation=output_activation(model) or "linear", parameters=int(model.count_params()))


def _read_record(package: _Package, run_dir: Path | None, *, threshold: float | None, scores: Any,
                 tile: int | None, overlap: int | None) -> None:
    """Add what the run folder knows (config.json; scores.json or metrics.json), the caller's values first."""
    config = formats.read_json(run_dir / "config.json") if run_dir and (run_dir / "config.json").is_file() else {}
    if scores is not None and not isinstance(scores, Mapping):
        scores = formats.read_json(scores)
    elif scores is None and run_dir is not None:
        found = [run_dir / name for name in ("scores.json", "metrics.json") if (run_dir / name).is_file()]
        scores = formats.read_json(found[0]) if found else {}
    scores = scores or {}
    skip = {"threshold", "train_seconds", "notebook", "profile", "split", "epochs"}
    package.config, package.split = config, scores.get("split")
    package.scores = {str(key): float(value) for key, value in scores.get("mean", scores).items() if key not in skip
                      and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)}
    origins = ("given when exporting", "chosen on the validation images after training", "recorded with the scores")
    for candidate, origin in zip((threshold, config.get("threshold"), scores.get("threshold")), origins):
        if candidate is not None:
            package.threshold, package.origin = float(candidate), origin
            break
    package.tile = tile or config.get("tile") or package.height
    overlap = next(v for v in (overlap, config.get("overlap"), (package.tile or 128) // 4) if v is not None)
    package.overlap = int(overlap)
    given = [str(name) for name in config.get("classes") or []]
    if package.classes == 1:
        names = [given[-1] if given else ("membrane" if package.workshop else "foreground")]
    else:
        names = given if len(given) == package.classes else [f"class_{i}" for i in range(package.classes)]
    package.names = [re.sub(r"[^a-z0-9_]+", "_", name.strip().lower()).strip("_") or "class" for name in names]


def _read_test_image(test_image: str | os.PathLike | None, package: _Package) -> tuple[Path, np.ndarray]:
    """The test image (given, the run's first training image or ISBI slice 25) and its stored ``(H, W, C)`` values.

    The channels are converted to the model's as the run recorded.
    """
    config, path = package.config, Path(test_image) if test_image is not None else None
    if path is None and package.workshop:
        from helpers import data

        path = data.data_root() / "train" / "image" / f"{ISBI_HOLDOUT_SLICE}.png"
    elif path is None:
        folder, names = Path(config.get("images", "")), config.get("train_images") or ["?"]
        path = files.list_images(folder).get(names[0]) if folder.is_dir() else None
        if path is None:
            raise FileNotFoundError(f"The first training image recorded in config.json ({folder / names[0]}) is not "
                                    f"there. Pass test_image= with an image like the training images.")
    raw = formats.read_raw(path, palette_indices=False)
    raw = raw[..., None] if raw.ndim == 2 else raw
    if raw.shape[-1] != package.channels:
        from helpers.toolkit.workflow import read_for_model

        image = read_for_model(path, package.channels, config.get("channel_conversion", "none"))  # or the message
        raw = np.round(image * np.iinfo(raw.dtype).max).astype(raw.dtype) if raw.dtype.kind in "ui" else image
    return path, raw


def _fit(raw: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre-crop (or reflect-pad, for a small image) ``raw`` to ``height`` x ``width``."""
    pads = [((target - size) // 2, target - size - (target - size) // 2) if target > size else (0, 0)
            for size, target in zip(raw.shape[:2], (height, width))]
    if any(sum(pad) for pad in pads):
        raw = np.pad(raw, pads + [(0, 0)], mode="reflect" if min(raw.shape[:2]) > 1 else "edge")
    top, left = (raw.shape[0] - height) // 2, (raw.shape[1] - width) // 2
    return raw[top:top + height, left:left + width]


def _read_test_input(package: _Package, test_image: str | os.PathLike | None, test_size: int) -> None:
    """Add the test crop, its scaling, the halo and the minimum input size.

    A tile padded by the halo stays a size the U-Net takes; the minimum is the smallest multiple of
    the step larger than the two halos.
    """
    (path, raw), given = _read_test_image(test_image, package), test_image is not None
    step, half = package.step, max(1, package.step // 2)
    fixed = [size for size in (package.height, package.width) if size]
    halo = max(half, math.ceil(package.overlap / 2 / half) * half)
    package.halo = max(1, min([halo, *[(size - 1) // 2 for size in fixed]]))
    package.minimum = minimum = step * (2 * package.halo // step + 1)
    height, width = (fixed_size or minimum + max(0, (min(size, test_size) - minimum) // step) * step
                     for size, fixed_size in zip(raw.shape[:2], (package.height, package.width)))
    package.test_input = _fit(raw, height, width)[None]
    crop = f"a centred {height} x {width} crop of"
    package.test_source = (f"{crop} `{path.name}`" if given else f"{crop} ISBI 2012 training slice "
                           f"{ISBI_HOLDOUT_SLICE} (held out: not trained on)" if package.workshop
                           else f"{crop} the first training image, `{path.name}`")
    if raw.dtype in (np.uint8, np.uint16):
        top = np.iinfo(raw.dtype).max
        package.dtype, package.gain = raw.dtype.name, 1 / top
    else:
        package.min_max = not (np.issubdtype(raw.dtype, np.floating) and raw.min() >= 0 and raw.max() <= 1)


def _readme(path: Path, meta: dict, package: _Package, weights: Sequence[str]) -> Path:
    """The package's README.md: :data:`README_TEMPLATE` filled in."""
    import keras

    p, config, step, minimum = package, package.config, package.step, package.minimum
    if p.classes == 1:
        label = p.names[0]
        output = (f"1 channel, `{label}`: the probability (0-1, {p.activation}) of {label}. Threshold it at "
                  f"**{p.threshold:.2f}** ({p.origin}): {label} where probability > {p.threshold:.2f}.")
        result = f"threshold the probability image it returns at {p.threshold:.2f} (Image > Adjust > Threshold)"
    else:
        listed = ", ".join(f"{i} = `{n}`" for i, n in enumerate(p.names))
        output = (f"{p.classes} channels, one probability per class ({p.activation}): {listed}. The segmentation "
                  f"is the channel with the highest probability (arg-max).")
        result = "it returns one probability image per class"
    training = ISBI_TRAINING if p.workshop else (
        f"{len(config.get('train_images', []))} training and {len(config.get('validation_images', []))} validation "
        f"images from the folder `{Path(config.get('images', '?')).name}` (masks: "
        f"`{Path(config.get('masks', '?')).name}`), {config.get('epochs', '?')} epochs on {config.get('tile', '?')}"
        f"-pixel tiles with the `{config.get('loss', '?')}` loss. {config.get('class_meaning', '')}")
    rows = "\n".join(f"| {name} | {value:.4f} |" for name, value in p.scores.items())
    scores = (f"Scores on the {_SPLITS.get(p.split or '', 'images described in the run records')}:\n\n| score | value "
              f"|\n|---|---|\n{rows}" if p.scores else "No scores were recorded with this model. Score it on labelled "
              "images it has not seen, e.g. `python -m helpers predict` then `python -m helpers evaluate`.")
    bits = {"uint8": 8, "uint16": 16}.get(p.dtype, 0)
    scaling = ("each image is rescaled from its own minimum to its own maximum to [0, 1] (`scale_range`)" if p.min_max
               else f"{bits}-bit values are divided by {2 ** bits - 1} (`scale_linear`, gain 1/{2 ** bits - 1})"
               if p.gain else "values are used as they are (floats in [0, 1])")
    text = string.Template(README_TEMPLATE.read_text(encoding="utf-8")).substitute(
        **meta, levels=p.levels, input_id=INPUT_ID, output_id=OUTPUT_ID, step=step, minimum=minimum, result=result,
        channels={1: "1 channel (gray)", 3: "3 channels (RGB)"}.get(p.channels, f"{p.channels} channels"),
        sizes=(f"exactly {p.height} x {p.width} pixels" if p.height else f"any height and width of {minimum} + n x "
               f"{step} pixels ({minimum}, {minimum + step}, ...; pad other sizes)"),
        scaling=scaling, converted=_CONVERTED.get(config.get("channel_conversion"), ""), output=output,
        training=training, scores=scores, test_source=p.test_source, weights=", ".join(f"`{w}`" for w in weights),
        tiles=(f" It was trained on {p.tile}-pixel tiles; for large images, tiles of about that size with "
               f"{p.overlap} pixels of overlap work best (rdf.yaml's halo: {p.halo} pixels)." if p.tile else ""),
        pad="((0, H - h), (0, W - w))" + ("" if p.channels == 1 else ", (0, 0)"),
        batch="padded[None, ..., None]" if p.channels == 1 else "padded[None]", keras_version=keras.__version__,
        citations="\n".join(f"* {text} doi:{doi}" for text, doi in p.citations))
    path.write_text(text, encoding="utf-8")
    return path


def _tensors(folder: Path, package: _Package, test_output: np.ndarray) -> tuple[dict, dict]:
    """rdf.yaml's input and output, with the test tensors and their TIFF samples (what Fiji opens)."""
    import tifffile

    p = package
    np.save(folder / "test_input.npy", p.test_input)
    np.save(folder / "test_output.npy", test_output)
    tifffile.imwrite(folder / "sample_input.tif", p.test_input[0, ..., 0] if p.channels == 1 else p.test_input[0])
    pages = np.moveaxis(test_output[0], -1, 0)  # one page per class: a stack in Fiji
    tifffile.imwrite(folder / "sample_output.tif", pages[0] if len(pages) == 1 else pages, photometric="minisblack")
    ensure = {"id": "ensure_dtype", "kwargs": {"dtype": "float32"}}
    scale = ([{"id": "scale_range", "kwargs": {"axes": ["y", "x", "channel"], "min_percentile": 0.0,
                                               "max_percentile": 100.0}}] if p.min_max else
             [{"id": "scale_linear", "kwargs": {"gain": p.gain}}] if p.gain else [])
    names = {1: ["gray"], 3: ["red", "green", "blue"]}.get(p.channels, [f"channel_{i}" for i in range(p.channels)])
    stored = (None, None) if p.min_max else (0, round(1 / p.gain)) if p.gain else (0.0, 1.0)
    image = {"id": INPUT_ID, "description": f"image, {p.dtype}; scaled to [0, 1] by the preprocessing",
             "axes": [{"type": "batch"}, *[{"type": "space", "id": a, "size": size or {"min": p.minimum,
                                                                                     "step": p.step}}
                                          for a, size in zip("yx", (p.height, p.width))],
                      {"type": "channel", "channel_names": names}],
             "test_tensor": {"source": folder / "test_input.npy"},
             "sample_tensor": {"source": folder / "sample_input.tif"},
             "data": {"type": p.dtype, "range": stored}, "preprocessing": [ensure, *scale, ensure]}
    probability = p.activation in ("sigmoid", "softmax")
    output = {"id": OUTPUT_ID,
              "description": f"{p.activation} probability per class" if probability else "model output",
              "axes": [{"type": "batch"}, *[{"type": "space", "id": a, "halo": p.halo,
                                             "size": {"tensor_id": INPUT_ID, "axis_id": a}} for a in "yx"],
                       {"type": "channel", "channel_names": p.names}],
              "test_tensor": {"source": folder / "test_output.npy"},
              "sample_tensor": {"source": folder / "sample_output.tif"},
              "data": {"type": "float32", "range": (0.0, 1.0) if probability else (None, None)}}
    return image, output


def _describe(bio: Any, folder: Path, meta: dict, package: _Package, test_output: np.ndarray, weights: dict) -> Any:
    """Build (and so validate) the spec's ModelDescr; with no covers given, the spec draws one."""
    import pydantic

    p, config = package, package.config
    image, output = _tensors(folder, p, test_output)
    extra = {"threshold": p.threshold, "tile": p.tile, "overlap": p.overlap, "levels": p.levels, "classes": p.names,
             "scores": p.scores, "scores_split": p.split, "exported_with": "U-Net workshop, python -m helpers export"}
    training = {"loss_function": config.get("loss"), "training_epochs": config.get("epochs")}
    try:  # the spec validates everything, the caller's name, licence and authors too
        return bio.ModelDescr(
            name=meta["name"], description=meta["description"], license=meta["license"],
            authors=[{"name": author} for author in meta["authors"]],
            cite=[{"text": text, "doi": doi} for text, doi in p.citations],
            documentation={"source": _readme(folder / "README.md", meta, p, list(weights))},
            tags=["unet", "segmentation", "semantic-segmentation", "2d", "keras", "tensorflow",
                  *(["electron-microscopy", "membrane", "isbi2012"] if p.workshop else [])],
            inputs=[image], outputs=[output], weights=weights,
            config={"bioimageio": {"architecture_type": "U-Net", "task": "semantic segmentation",
                                   "model_parameter_count": p.parameters, "training": training},
                    "unet_workshop": extra})
    except pydantic.ValidationError as error:  # its refusal names the parameter
        first = error.errors()[0]
        parameter = str(first["loc"][0]) if first["loc"] else "model"
        raise ValueError(f"{parameter}={meta.get(parameter)!r} is refused by bioimage.io: {first['msg'][:160]}. "
                         f"{_RULES.get(parameter, '')}".strip()) from None


def _bioimageio() -> Any:
    """``bioimageio.spec.model.v0_5`` (bioimageio.core installed), or an ImportError naming the fix."""
    try:
        import bioimageio.core  # noqa: F401  (check_package's test)
        from bioimageio.spec.model import v0_5
    except ImportError as error:
        raise ImportError(f"Exporting to the BioImage Model Zoo format needs bioimageio.core and bioimageio.spec "
                          f"({error}): {INSTALL_HINT}.") from error
    from loguru import logger

    logger.disable("bioimageio")  # its INFO lines on stderr stay out of the command line and notebooks
    spec, pydantic = (tuple(map(int, re.findall(r"\d+", importlib.metadata.version(name))[:3]))
                      for name in ("bioimageio.spec", "pydantic"))
    if spec < (0, 5, 14) and pydantic >= (2, 14):
        raise ImportError(f"bioimageio.spec < 0.5.14 cannot write packages with pydantic >= 2.14: {INSTALL_HINT}.")
    return v0_5


def _defaults(package: _Package, run_dir: Path | None) -> tuple[str, str, str]:
    """Name, description and licence of a package the caller did not describe."""
    if package.workshop:
        return ("ISBI 2012 membrane U-Net", "U-Net that segments cell membranes in serial-section electron "
                "microscopy of the Drosophila larva ventral nerve cord (ISBI 2012 challenge data), trained in the "
                "U-Net segmentation workshop.", ISBI_LICENSE)
    base = re.sub(r"[^A-Za-z0-9_+\- ()]+", " ", run_dir.name if run_dir else "").strip()
    images = Path(package.config.get("images", "training images")).name
    return (f"U-Net {base}"[:64] if base else "U-Net model", f"U-Net that segments {', '.join(package.names)} in "
            f"images like those it was trained on ({images}), trained with the U-Net workshop's command line.",
            DEFAULT_LICENSE)


def export_model(model: keras.Model | str | os.PathLike, out: str | os.PathLike, *,
                 run_dir: str | os.PathLike | None = None, test_image: str | os.PathLike | None = None,
                 name: str | None = None, description: str | None = None,
                 authors: Sequence[str] = DEFAULT_AUTHORS, license: str | None = None,
                 threshold: float | None = None, scores: Mapping | str | os.PathLike | None = None,
                 tile: int | None = None, overlap: int | None = None,
                 weight_formats: Sequence[str] = WEIGHT_FORMATS, test_size: int = TEST_SIZE,
                 force: bool = False) -> Path:
    """Write a trained U-Net as a BioImage Model Zoo package (``.zip``, spec 0.5), atomically.

    Parameters
    ----------
    model
        A ``.keras`` file (its folder is the run folder) or a Keras U-Net: one image input, one
        output of its height and width (1 sigmoid channel or K softmax channels).
    out
        The ``.zip`` to write.
    run_dir
        Folder of ``config.json`` and ``scores.json`` or ``metrics.json`` (default: the model
        file's folder); without ``config.json`` the model is the workshop's ISBI 2012 model.
    test_image
        Image of the test tensors (default: the run's first training image, or ISBI slice 25);
        its bit depth decides the preprocessing (8-bit: /255, 16-bit: /65535).
    name, description, authors, license, threshold, scores, tile, overlap
        Override the defaults and the run's records (``license``: an SPDX id; ``scores``: a dict
        or a JSON file; the halo is half the overlap).
    weight_formats, test_size, force
        Any of :data:`WEIGHT_FORMATS` (``"keras_v3"`` always); the test image's largest side;
        replace an existing ``out``.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    ImportError
        bioimageio.spec is missing (the message names the pip command).
    FileExistsError, FileNotFoundError, PermissionError
        ``out`` exists without ``force``; no model or test image; ``out``'s folder is not writable.
    ValueError
        Not a U-Net; a name, licence, authors, weight format or ``out`` that bioimage.io refuses.

    Examples
    --------
    >>> export_model("runs/mine/model.keras", "mine.zip", authors=["Ada Lovelace"])   # doctest: +SKIP
    PosixPath('mine.zip')
    """
    out = Path(out)
    if out.suffix.lower() != ".zip" or out.is_dir():
        raise ValueError(f"out={str(out)!r} must end in .zip and name a file (a BioImage Model Zoo package).")
    if out.exists() and not force:
        raise FileExistsError(f"{out} already exists; pass force=True to replace it, or choose another out.")
    if "keras_v3" not in weight_formats or set(weight_formats) - set(WEIGHT_FORMATS):
        raise ValueError(f"weight_formats={list(weight_formats)}: choose from {', '.join(WEIGHT_FORMATS)}, keras_v3 "
                         f"always included (the others are converted from it).")
    formats.check_writable(out.parent)
    if isinstance(model, (str, os.PathLike)):
        from helpers.models import load_model

        source, run_path, model = str(model), Path(run_dir or Path(model).parent), load_model(model)
    else:
        source, run_path = f"The model {getattr(model, 'name', '')!r}", Path(run_dir) if run_dir else None
    package = _geometry(model, source)
    bio = _bioimageio()
    _read_record(package, run_path, threshold=threshold, scores=scores, tile=tile, overlap=overlap)
    default_name, default_description, default_license = _defaults(package, run_path)
    authors = [author.strip() for author in authors if author.strip()]
    if not authors:
        raise ValueError("authors=[] holds no name: give at least one.")
    meta = {"name": name or default_name, "description": description or default_description, "authors": authors,
            "license": license or default_license, "package": out.name}
    _read_test_input(package, test_image, test_size)
    from bioimageio.spec import save_bioimageio_package

    with tempfile.TemporaryDirectory(prefix="unet-export-") as tmp:
        clean = clean_copy(model)
        image = package.test_input.astype(np.float32)  # scaled as rdf.yaml says (and helpers.files.to_float does)
        image = (image - image.min()) / (image.max() - image.min() + 1e-6) if package.min_max else (
            image * np.float32(package.gain or 1))
        test_output = np.asarray(clean.predict(image, verbose=0), np.float32)
        weights = write_weights(clean, Path(tmp), weight_formats, package.height, package.width)
        descr = _describe(bio, Path(tmp), meta, package, test_output, weights)
        descr.covers = list(descr.covers)  # the spec drew them from the test tensors: kept by the save as if given
        with files.atomic_path(out) as tmp_zip:
            save_bioimageio_package(descr, output_path=tmp_zip)
    return out


def check_package(path: str | os.PathLike, *, weight_format: str | None = None) -> dict:
    """Run bioimageio.core's model test on a package, as a bioimage.io tool would.

    ``bioimageio.core.test_model`` validates ``rdf.yaml``, reproduces the test output with each
    weight format (or ``weight_format``) within the spec's tolerance and runs the model at several
    sizes. The SavedModel needs Keras' TensorFlow backend; on another one ``keras_v3`` is tested.

    Returns
    -------
    dict
        ``{"status": "passed" | "failed" | ..., "details": [{"name", "status", "errors"}, ...]}``.

    Raises
    ------
    ImportError, FileNotFoundError
        bioimageio.core is missing; there is no package at ``path``.

    Examples
    --------
    >>> check_package("mine.zip")["status"]                                     # doctest: +SKIP
    'passed'
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"Package not found: {path}. Write it first with export_model.")
    _bioimageio()
    import bioimageio.core as core
    import keras

    if weight_format is None and keras.backend.backend() != "tensorflow":
        weight_format = "keras_v3"
    # in a scratch working folder: the SavedModel adapter unpacks the bundle there
    with tempfile.TemporaryDirectory(prefix="bioimageio-test-") as cwd, contextlib.chdir(cwd), quiet_tensorflow():
        summary = core.test_model(path, weight_format=weight_format)
    return {"status": summary.status, "details": [{"name": d.name, "status": d.status,
                                                   "errors": [e.msg for e in d.errors]} for d in summary.details]}
