"""Export a trained U-Net to the BioImage Model Zoo format, for Fiji (deepImageJ), ilastik and napari.

:func:`export_model` writes one ``.zip`` file, a bioimage.io model package of spec 0.5, built with
``bioimageio.spec``'s own model classes (``bioimageio.spec.model.v0_5``) so that the spec library
validates everything it writes:

* ``rdf.yaml``, the description: input ``image`` and output ``probabilities`` with axes batch, y,
  x, channel; sizes ``min + n * step`` with ``step = 2**levels`` (every size the U-Net's poolings
  divide evenly), and on the output a halo of half the tile overlap that :mod:`helpers.tiles`
  blends (rounded up to a multiple of ``step / 2``), for tools that predict large images tile by
  tile; the preprocessing that reproduces
  :func:`helpers.files.to_float` for the test image's bit depth (8-bit: ``scale_linear`` with gain
  1/255, 16-bit: 1/65535, floats in [0, 1]: none, anything else: ``scale_range`` from minimum to
  maximum); no postprocessing, since the model ends in its own sigmoid (softmax for K classes);
* weights in three formats, all from one float32 copy of the model without its training
  configuration (custom losses and metrics stay behind, mixed precision becomes float32):
  ``keras_v3`` (``weights.keras``, the original), ``tensorflow_saved_model_bundle``
  (``tf_saved_model.zip``, from Keras 3's export with plain TensorFlow ops; written by Keras'
  TensorFlow backend, in a subprocess when Keras runs on JAX) and ``keras_hdf5`` (``weights.h5``,
  Keras 3's legacy format, which bioimageio.core's Keras adapter reads), with the Keras, backend
  and TensorFlow versions. The TensorFlow formats need TensorFlow installed and are left out
  without it (Colab's TPU runtimes);
* ``test_input.npy`` and ``test_output.npy``: a crop of a real image (the first training image of
  a run trained with ``python -m helpers train``, an ISBI 2012 held-out slice for the workshop's
  model, or ``test_image``) and the model's prediction of it; the same as TIFF sample tensors;
* ``cover.png`` (the test image beside its prediction) and ``README.md``: the training data, the
  classes, the threshold, the held-out (or validation) scores where known, and how to open the
  package in Fiji/deepImageJ, ilastik and napari.

The zip is written atomically (:func:`helpers.files.atomic_path`). :func:`check_package` runs
bioimageio.core's own model test on it, in a fresh Python process, as a bioimage.io tool would.

``bioimageio.core`` and ``bioimageio.spec`` are an optional dependency, the ``export`` extra
(``pip install -e '.[export]'``, which ``make install`` runs; bioimageio.core 0.11 pins
bioimageio.spec 0.5.12, which needs pydantic < 2.14). They are imported only when a function here
needs them, so ``import helpers.export`` works without them, and a missing one stops the export
with an ImportError that names the pip command.

Examples
--------
>>> from helpers import export
>>> export.export_model("runs/mine/model.keras", "my_model.zip")            # doctest: +SKIP
PosixPath('my_model.zip')
>>> export.check_package("my_model.zip")["status"]                           # doctest: +SKIP
'passed'
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import importlib.metadata
import importlib.util
import json
import logging
import math
import os
import re
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from helpers import env, files

if TYPE_CHECKING:
    import keras

__all__ = ["export_model", "check_package", "WEIGHT_FORMATS", "INSTALL_HINT"]

#: The weight formats written (where their library is installed), the first one the original.
WEIGHT_FORMATS = ("keras_v3", "tensorflow_saved_model_bundle", "keras_hdf5")
#: How to install the optional dependency (the end of the ImportError's message).
INSTALL_HINT = ("pip install 'bioimageio.core>=0.11' 'pydantic>=2.10.3,<2.14' (in Colab: %pip install ...; in the "
                "workshop folder `make install` does it, or pip install -e '.[export]')")
#: The tensor ids in rdf.yaml, also the names of the TensorFlow SavedModel's signature.
INPUT_ID, OUTPUT_ID = "image", "probabilities"
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
#: Colour-blind-safe class colours (Okabe-Ito) for the cover of a K-class model.
PALETTE = np.array([[0, 0, 0], [230, 159, 0], [86, 180, 233], [0, 158, 115], [240, 228, 66], [0, 114, 178],
                    [213, 94, 0], [204, 121, 167]], dtype=np.uint8)


# ---------------------------------------------------------------------------------------------
# what is exported: the model's geometry, the run's record, the input scaling


@dataclass
class _Geometry:
    """What rdf.yaml needs to know about the U-Net."""

    channels: int
    classes: int
    levels: int
    height: int | None
    width: int | None
    activation: str
    parameters: int

    @property
    def step(self) -> int:
        return 2 ** self.levels


@dataclass
class _Record:
    """What the run folder (config.json, metrics.json or scores.json) and the caller say about the model."""

    config: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)
    scores_split: str | None = None
    threshold: float = 0.5
    threshold_origin: str = "the default; none was recorded with the model"
    tile: int | None = None
    overlap: int | None = None
    class_names: list[str] = field(default_factory=list)

    @property
    def workshop(self) -> bool:
        """No config.json: the workshop notebooks' model, trained on the ISBI 2012 slices."""
        return not self.config


@dataclass
class _Scaling:
    """How to turn the stored pixel values into the model's [0, 1] floats, as helpers.files.to_float does."""

    dtype: str
    gain: float | None
    data_range: tuple[float | None, float | None]
    min_max: bool = False

    @property
    def text(self) -> str:
        if self.min_max:
            return "each image is rescaled from its own minimum to its own maximum to [0, 1] (`scale_range`)"
        if self.gain is None:
            return "values are used as they are (floats in [0, 1])"
        bits = {"uint8": 8, "uint16": 16}[self.dtype]
        return f"{bits}-bit values are divided by {2 ** bits - 1} (`scale_linear`, gain 1/{2 ** bits - 1})"


@dataclass
class _Meta:
    """The package's metadata."""

    name: str
    description: str
    authors: list[str]
    license: str
    package: str


@dataclass
class _Plan:
    """The test image and the sizes derived from the model and the run."""

    scaling: _Scaling
    halo: int
    minimum: int
    test_input: np.ndarray
    test_source: str


def _scaling(raw: np.ndarray) -> _Scaling:
    """The preprocessing that reproduces :func:`helpers.files.to_float` for an image stored like ``raw``."""
    if raw.dtype == np.uint8:
        return _Scaling("uint8", 1 / 255, (0, 255))
    if raw.dtype == np.uint16:
        return _Scaling("uint16", 1 / 65535, (0, 65535))
    if np.issubdtype(raw.dtype, np.floating) and raw.min() >= 0 and raw.max() <= 1:
        return _Scaling("float32", None, (0.0, 1.0))
    return _Scaling("float32", None, (None, None), min_max=True)


def _count_poolings(model: keras.Model) -> int:
    import keras

    pools = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
    return sum(isinstance(layer, pools) and tuple(layer.strides) == (2, 2) for layer in model.layers)


def _activation(model: keras.Model) -> str:
    """Name of the last non-linear activation of the model (``"linear"`` if none)."""
    for layer in reversed(model.layers):
        name = getattr(getattr(layer, "activation", None), "__name__", "")
        if name and name != "linear":
            return name
    return "linear"


def _geometry(model: keras.Model, source: str) -> _Geometry:
    """Check that ``model`` is a U-Net with one image input and one output of the same size."""
    fix = ("Export a U-Net built with helpers.models.build_unet or custom_unet (or trained with `python -m "
           "helpers train`), not a classifier, a model with several inputs/outputs or vanilla_unet.")

    def refuse(reason: str) -> ValueError:
        return ValueError(f"{source} is not a U-Net with one image input and one output of the same size: "
                          f"{reason}. {fix}")

    if not getattr(model, "inputs", None) or not getattr(model, "outputs", None):
        raise refuse("it is a subclassed model without a functional graph")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise refuse(f"it has {len(model.inputs)} inputs and {len(model.outputs)} outputs")
    in_shape, out_shape = tuple(model.inputs[0].shape), tuple(model.outputs[0].shape)
    if len(in_shape) != 4 or len(out_shape) != 4:
        raise refuse(f"its input {in_shape} and output {out_shape} are not (batch, height, width, channels)")
    if in_shape[1:3] != out_shape[1:3] or in_shape[-1] is None or out_shape[-1] is None:
        raise refuse(f"its input {in_shape} and output {out_shape} differ in height or width or have no fixed "
                     f"channel count")
    levels = _count_poolings(model)
    if not levels:
        raise refuse("it has no 2 x 2 pooling layers")
    return _Geometry(channels=int(in_shape[-1]), classes=int(out_shape[-1]), levels=levels, height=in_shape[1],
                     width=in_shape[2], activation=_activation(model), parameters=int(model.count_params()))


def _scores_from(content: Mapping) -> tuple[dict, str | None, float | None]:
    """``(scores, split, threshold)`` of a scores.json (flat) or metrics.json (``"mean"``) content."""
    mean = content.get("mean", content)
    skip = {"threshold", "train_seconds", "notebook", "profile", "split", "epochs"}
    scores = {str(key): float(value) for key, value in mean.items() if key not in skip
              and isinstance(value, (int, float, np.floating)) and not isinstance(value, bool) and math.isfinite(value)}
    threshold = content.get("threshold")
    return scores, content.get("split"), None if threshold is None else float(threshold)


def _names(config: Mapping, classes: int, workshop: bool) -> list[str]:
    """Output channel names: the run's class names (``classes``/``class_names``), else defaults."""
    given = config.get("classes") or config.get("class_names") or []
    if isinstance(given, Mapping):  # e.g. {"0": "background", ...}
        given = [given[key] for key in sorted(given, key=lambda k: int(k) if str(k).isdigit() else str(k))]
    given = [str(name) for name in given]
    if classes == 1:
        return [given[-1] if given else ("membrane" if workshop else "foreground")]
    return given if len(given) == classes else [f"class_{i}" for i in range(classes)]


def _record(run_dir: Path | None, geometry: _Geometry, *, threshold: float | None, scores: Any,
            tile: int | None, overlap: int | None) -> _Record:
    """What the run folder knows (config.json; scores.json or metrics.json), the caller's values first."""
    config = files.read_json(run_dir / "config.json") if run_dir and (run_dir / "config.json").is_file() else {}
    if scores is not None and not isinstance(scores, Mapping):
        scores = files.read_json(scores)
    elif scores is None and run_dir is not None:
        found = [run_dir / name for name in ("scores.json", "metrics.json") if (run_dir / name).is_file()]
        scores = files.read_json(found[0]) if found else {}
    record = _Record(config=config)
    record.scores, record.scores_split, scored_threshold = _scores_from(scores or {})
    origins = ("given when exporting", "chosen on the validation images after training",
               "recorded with the scores", record.threshold_origin)
    for candidate, origin in zip((threshold, config.get("threshold"), scored_threshold, 0.5), origins):
        if candidate is not None:
            record.threshold, record.threshold_origin = float(candidate), origin
            break
    record.tile = tile or config.get("tile") or geometry.height
    record.overlap = int(next(v for v in (overlap, config.get("overlap"), (record.tile or 128) // 4) if v is not None))
    record.class_names = [_channel_name(name) for name in _names(config, geometry.classes, record.workshop)]
    return record


def _channel_name(name: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", name.strip().lower()).strip("_") or "class"


# ---------------------------------------------------------------------------------------------
# the test image


def _read_raw(path: Path) -> np.ndarray:
    """Pixel values as stored, ``(H, W, C)``, through the same reader as helpers.files.read_image."""
    raw = files._read_raw(path, palette_indices=False)
    return raw[..., None] if raw.ndim == 2 else raw


def _isbi_slice() -> Path:
    from helpers import data

    return data.data_root() / "train" / "image" / f"{ISBI_HOLDOUT_SLICE}.png"


def _test_image_path(test_image: str | os.PathLike | None, record: _Record) -> Path:
    """The image for test_input.npy: given, the run's first training image, or an ISBI held-out slice."""
    if test_image is not None:
        return Path(test_image)
    if record.workshop:
        return _isbi_slice()
    folder, names = Path(record.config.get("images", "")), record.config.get("train_images") or []
    if not names or not folder.is_dir():
        raise FileNotFoundError(f"The training images recorded in config.json ({folder}) are not there. Pass "
                                f"--test-image with one of them (or any image like them).")
    listed = files.list_images(folder)
    if names[0] not in listed:
        raise FileNotFoundError(f"The first training image {names[0]!r} is not in {folder}. Pass --test-image "
                                f"with an image like the training images.")
    return listed[names[0]]


def _convert_channels(raw: np.ndarray, channels: int, conversion: str, path: Path) -> np.ndarray:
    """The stored image with the model's channels, converted as the run recorded (same dtype)."""
    if raw.shape[-1] == channels:
        return raw
    if conversion == "none" or channels not in (1, 3):
        from helpers.workflow import read_for_model

        read_for_model(path, channels, "none")  # raises the command line's message about gray/RGB
    if channels == 3:
        return np.repeat(raw, 3, axis=-1)
    from skimage.color import rgb2gray

    gray = rgb2gray(files.to_float(raw))[..., None]
    if np.issubdtype(raw.dtype, np.integer):
        return np.round(gray * np.iinfo(raw.dtype).max).astype(raw.dtype)
    return gray.astype(np.float32)


def _valid_size(size: int, fixed: int | None, minimum: int, step: int, limit: int) -> int:
    if fixed is not None:
        return fixed
    return minimum + max(0, (min(size, limit) - minimum) // step) * step


def _fit(raw: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre-crop (or reflect-pad, for a small image) ``raw`` to ``height`` x ``width``."""
    pads = [(max(0, target - size) // 2, max(0, target - size) - max(0, target - size) // 2)
            for size, target in zip(raw.shape[:2], (height, width))]
    if any(sum(pad) for pad in pads):
        mode = "reflect" if min(raw.shape[:2]) > 1 else "edge"
        raw = np.pad(raw, pads + [(0, 0)], mode=mode)
    top, left = (raw.shape[0] - height) // 2, (raw.shape[1] - width) // 2
    return raw[top:top + height, left:left + width]


def _halo(geometry: _Geometry, overlap: int) -> int:
    """Half the tile overlap, rounded up to a multiple of half the step.

    Tools that tile an image by rdf.yaml cut ``halo`` pixels off each side of every predicted
    tile, and pad each tile by ``halo`` on both sides: ``2 * halo`` must stay a multiple of the
    step for the padded tile to be a size the U-Net takes. (A model of fixed size: what fits.)
    """
    half = max(1, geometry.step // 2)
    halo = max(half, math.ceil(overlap / 2 / half) * half)
    fixed = [size for size in (geometry.height, geometry.width) if size]
    return max(1, min([halo, *[(size - 1) // 2 for size in fixed]]))


def _minimum_size(geometry: _Geometry, halo: int) -> int:
    """The smallest input size: the smallest multiple of the step larger than the two halos."""
    return geometry.step * (2 * halo // geometry.step + 1)


def _preprocess(raw: np.ndarray, scaling: _Scaling) -> np.ndarray:
    """What bioimage.io tools feed the model: float32, scaled as rdf.yaml says (and as to_float does)."""
    image = raw.astype(np.float32)
    if scaling.min_max:
        low, high = float(image.min()), float(image.max())
        return (image - low) / (high - low + 1e-6)
    return image * np.float32(scaling.gain) if scaling.gain is not None else image


# ---------------------------------------------------------------------------------------------
# the model copy and its weight files


def _float32_configs(value: Any) -> Any:
    """A model config with every dtype policy (e.g. ``mixed_float16``) replaced by float32."""
    if isinstance(value, dict):
        if value.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and isinstance(value.get("config"), dict):
            return {**value, "config": {**value["config"], "name": "float32"}}
        return {key: _float32_configs(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_float32_configs(item) for item in value]
    return value


def _clean_copy(model: keras.Model) -> keras.Model:
    """The same layers and weights in float32, without optimizer, loss or metrics (which tools lack)."""
    import keras

    config = _float32_configs(copy.deepcopy(model.get_config()))
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        clean = model.__class__.from_config(config)
    finally:
        keras.config.set_dtype_policy(policy)
    clean.set_weights(model.get_weights())
    return clean


@contextlib.contextmanager
def _absl_errors_only() -> Iterator[None]:
    """Silence absl's warning that HDF5 is a legacy format (we write it on purpose, for older tools)."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        yield
    finally:
        absl.setLevel(level)


@contextlib.contextmanager
def _quiet_bioimageio() -> Iterator[None]:
    """Keep bioimageio's loguru lines (INFO and up, on stderr) out of the command line and notebooks."""
    from loguru import logger

    logger.disable("bioimageio")
    try:
        yield
    finally:
        logger.enable("bioimageio")


def _tensorflow_version() -> str | None:
    """The installed TensorFlow's version (without importing it), or None."""
    if not env.has_tensorflow():
        return None
    for name in ("tensorflow", "tensorflow-cpu", "tf-nightly"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return importlib.metadata.version(name)
    import tensorflow as tf

    return tf.__version__


def _zip_folder(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return target


def write_saved_model(keras_file: str | os.PathLike, folder: str | os.PathLike, channels: int,
                      height: int | None = None, width: int | None = None) -> str:
    """Write a TensorFlow SavedModel of a ``.keras`` U-Net whose signature names ``image`` and ``probabilities``.

    Runs under Keras' TensorFlow backend only (:func:`export_model` calls it in a subprocess when
    Keras runs on JAX), so the SavedModel holds plain TensorFlow operations: a SavedModel exported
    from JAX would wrap the network in one XLA call, which TensorFlow runtimes outside Python (such
    as deepImageJ's) may not run.

    Returns
    -------
    str
        The TensorFlow version that wrote it.

    Examples
    --------
    >>> write_saved_model("weights.keras", "saved_model", channels=1)        # doctest: +SKIP
    '2.20.0'
    """
    import keras
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError("write_saved_model needs Keras' TensorFlow backend (KERAS_BACKEND=tensorflow).")
    model = keras.models.load_model(keras_file, compile=False)
    archive = keras.export.ExportArchive()
    archive.track(model)
    spec = tf.TensorSpec((None, height, width, channels), tf.float32, name=INPUT_ID)

    def serve(image):  # the argument's name is the signature's input name
        return {OUTPUT_ID: model(image, training=False)}

    archive.add_endpoint("serve", serve, input_signature=[spec])
    with warnings.catch_warnings():
        # On Python 3.13, TensorFlow's AutoGraph (through gast) warns for every Keras layer whose
        # default signature it traces while saving: upstream noise, dozens of lines per export.
        warnings.filterwarnings("ignore", message=r".*___pyct_anno", category=DeprecationWarning)
        archive.write_out(str(folder), verbose=False)
    return tf.__version__


def _saved_model(keras_file: Path, folder: Path, geometry: _Geometry) -> str:
    """Write the SavedModel here (TensorFlow backend) or in a subprocess with KERAS_BACKEND=tensorflow."""
    args = (str(keras_file), str(folder), geometry.channels, geometry.height, geometry.width)
    import keras

    if keras.backend.backend() == "tensorflow":
        return write_saved_model(*args)
    code = ("import sys; from helpers.export import write_saved_model as w; "
            "print(w(sys.argv[1], sys.argv[2], int(sys.argv[3]), *(None if a == 'None' else int(a) "
            "for a in sys.argv[4:])))")
    root = str(Path(__file__).resolve().parents[1])
    environment = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3",
                   "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], env=environment, capture_output=True,
                          text=True, check=False)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(f"Could not write the TensorFlow SavedModel with Keras' TensorFlow backend: {last}. "
                           f"Check that TensorFlow imports (python -c 'import tensorflow').")
    return done.stdout.strip().splitlines()[-1]


def _write_weights(bio: Any, clean: keras.Model, folder: Path, geometry: _Geometry,
                   formats: Sequence[str]) -> Any:
    """Write each weight format into ``folder``; return the spec's WeightsDescr."""
    import keras

    unknown = sorted(set(formats) - set(WEIGHT_FORMATS))
    if unknown or "keras_v3" not in formats:
        raise ValueError(f"weight_formats {list(formats)}: choose from {', '.join(WEIGHT_FORMATS)}, keras_v3 "
                         f"always included (the other formats are converted from it).")
    backend = keras.backend.backend()
    backend_version = importlib.import_module(backend).__version__  # tensorflow, jax or torch, imported by Keras
    keras_file = folder / "weights.keras"
    clean.save(keras_file)
    entries = {"keras_v3": bio.KerasV3WeightsDescr(
        source=keras_file, keras_version=keras.__version__, backend=(backend, backend_version),
        comment="The trained model in Keras 3's own format, float32, without training configuration.")}
    tf_version = _tensorflow_version()
    if "tensorflow_saved_model_bundle" in formats and tf_version:
        tf_version = _saved_model(keras_file, folder / "saved_model", geometry)
        entries["tensorflow_saved_model_bundle"] = bio.TensorflowSavedModelBundleWeightsDescr(
            source=_zip_folder(folder / "saved_model", folder / "tf_saved_model.zip"), tensorflow_version=tf_version,
            parent="keras_v3", comment="Keras 3 model.export (ExportArchive); signature inputs 'image', "
                                       "outputs 'probabilities'.")
    if "keras_hdf5" in formats and tf_version:
        with _absl_errors_only():
            clean.save(folder / "weights.h5")
        entries["keras_hdf5"] = bio.KerasHdf5WeightsDescr(
            source=folder / "weights.h5", tensorflow_version=tf_version, parent="keras_v3",
            comment=f"Written by Keras {keras.__version__} (legacy HDF5 format); read with Keras 3.")
    return bio.WeightsDescr(**entries)


# ---------------------------------------------------------------------------------------------
# cover, samples, README


def _panel(image: np.ndarray, size: int = 256) -> np.ndarray:
    """A square uint8 RGB thumbnail of an (H, W, C) array: centre crop, resize."""
    from PIL import Image

    side = min(image.shape[:2])
    crop = _fit(image, side, side)
    rgb = crop if crop.shape[-1] == 3 else np.repeat(crop[..., :1], 3, axis=-1)
    return np.asarray(Image.fromarray(rgb).resize((size, size), Image.Resampling.NEAREST))


def _cover(path: Path, image: np.ndarray, prediction: np.ndarray) -> Path:
    """``cover.png``: the test image beside its prediction (2:1, as bioimage.io recommends)."""
    from PIL import Image

    shown = np.clip(files.to_float(image) * 255, 0, 255).astype(np.uint8)
    if prediction.shape[-1] == 1:
        predicted = np.clip(prediction * 255, 0, 255).astype(np.uint8)
    else:
        predicted = PALETTE[np.argmax(prediction, axis=-1) % len(PALETTE)]
    Image.fromarray(np.concatenate([_panel(shown), _panel(predicted)], axis=1)).save(path)
    return path


def _samples(folder: Path, test_input: np.ndarray, test_output: np.ndarray) -> tuple[Path, Path]:
    """TIFF sample tensors (what a Fiji user can open): the test image and its probabilities."""
    import tifffile

    sample_in, sample_out = folder / "sample_input.tif", folder / "sample_output.tif"
    tifffile.imwrite(sample_in, np.squeeze(test_input[0], axis=-1) if test_input.shape[-1] == 1 else test_input[0])
    probabilities = np.moveaxis(test_output[0], -1, 0)  # one page per class: a stack in Fiji
    tifffile.imwrite(sample_out, probabilities[0] if len(probabilities) == 1 else probabilities,
                     photometric="minisblack")
    return sample_in, sample_out


def _scores_table(record: _Record) -> str:
    if not record.scores:
        return ("No scores were recorded with this model. Score it on labelled images it has not seen, e.g. "
                "`python -m helpers predict` then `python -m helpers evaluate --pred ... --truth ...`.")
    where = {"holdout": "held-out images (never used for training or for choosing the threshold)",
             "validation": "validation images (used to choose the threshold; not trained on)"}.get(
        record.scores_split or "", "images described in the run's records")
    rows = "\n".join(f"| {name} | {value:.4f} |" for name, value in record.scores.items())
    return f"Scores on the {where}:\n\n| score | value |\n|---|---|\n{rows}"


def _citations(record: _Record) -> list[tuple[str, str]]:
    """``(text, doi)`` of U-Net, and of the ISBI 2012 data for the workshop's model."""
    return [*CITATIONS, *(ISBI_CITATIONS if record.workshop else ())]


def _usage(package: str, weights: Sequence[str], geometry: _Geometry, record: _Record, minimum: int) -> str:
    """The README's "Use it" section: Fiji/deepImageJ, ilastik, napari and Python."""
    result = (f"threshold the probability image it returns at {record.threshold:.2f} (Image > Adjust > Threshold)"
              if geometry.classes == 1 else "it returns one probability image per class")
    pad = "((0, H - h), (0, W - w))" + ("" if geometry.channels == 1 else ", (0, 0)")
    batch = "padded[None, ..., None]" if geometry.channels == 1 else "padded[None]"
    return f"""## Use it
`{package}` is a BioImage Model Zoo package: `rdf.yaml` describes the model, and the weights come in the
formats {', '.join(f'`{w}`' for w in weights)}.

* **Fiji / deepImageJ**: add the DeepImageJ update site (Help > Update > Manage update sites), restart Fiji,
  install the package with Plugins > DeepImageJ > DeepImageJ Install Model (a local/private model: choose this
  .zip), open an image and run Plugins > DeepImageJ > DeepImageJ Run. deepImageJ runs the
  `tensorflow_saved_model_bundle` weights with a TensorFlow engine it downloads; {result}.
* **ilastik**: its Neural Network Classification workflow opens BioImage Model Zoo packages (give it this .zip
  as the model). Its runtime executes PyTorch and ONNX weights; this package has Keras/TensorFlow weights only,
  so ilastik may refuse it: use Fiji or napari instead.
* **napari**: install bioimageio.core and TensorFlow into napari's Python environment, open the image, and in
  napari's console (Window > Console) pad it to a size the model takes, predict, and crop back:

  ```python
  import numpy as np
  from bioimageio.core import load_model_description, predict
  model = load_model_description("{package}")
  image = viewer.layers[0].data                        # as stored (e.g. 8-bit); the model scales it
  h, w = image.shape[:2]
  H, W = (max({minimum}, -(-n // {geometry.step}) * {geometry.step}) for n in (h, w))   # multiples of {geometry.step}
  padded = np.pad(image, {pad}, mode="reflect")
  sample = predict(model=model, inputs={{"{INPUT_ID}": {batch}}}, blocksize_parameter=2)
  probabilities = sample.members["{OUTPUT_ID}"].data.to_numpy()[0, :h, :w]
  viewer.add_image(np.moveaxis(probabilities, -1, 0), name="{OUTPUT_ID}")
  ```
  (`blocksize_parameter` predicts large images tile by tile; leave it out to predict them whole.)
* **Python**: `pip install bioimageio.core tensorflow`; `bioimageio test {package}` runs the model's test.
"""


def _readme(path: Path, meta: _Meta, geometry: _Geometry, record: _Record, plan: _Plan,
            weights: Sequence[str]) -> Path:
    """The package's README.md (its ``documentation``)."""
    minimum, halo = plan.minimum, plan.halo
    channels = {1: "1 channel (gray)", 3: "3 channels (RGB)"}.get(geometry.channels, f"{geometry.channels} channels")
    converted = {"rgb_to_gray": " The model was trained on colour images converted to gray: convert yours to gray "
                                "first (Fiji: Image > Type > 8-bit).",
                 "gray_to_rgb": " The model was trained on gray images repeated into RGB: convert yours to RGB "
                                "first (Fiji: Image > Type > RGB Color)."}.get(
        record.config.get("channel_conversion", "none"), "")
    sizes = (f"exactly {geometry.height} x {geometry.width} pixels" if geometry.height else
             f"any height and width of {minimum} + n x {geometry.step} pixels ({minimum}, {minimum + geometry.step}, "
             f"...; pad other sizes)")
    if geometry.classes == 1:
        label = record.class_names[0]
        output = (f"1 channel, `{label}`: the probability (0-1, {geometry.activation}) of {label}. Threshold it "
                  f"at **{record.threshold:.2f}** ({record.threshold_origin}): {label} where probability > "
                  f"{record.threshold:.2f}.")
    else:
        listed = ", ".join(f"{i} = `{n}`" for i, n in enumerate(record.class_names))
        output = (f"{geometry.classes} channels, one probability per class ({geometry.activation}): {listed}. "
                  f"The segmentation is the channel with the highest probability (arg-max).")
    config = record.config
    training = ISBI_TRAINING if record.workshop else (
        f"{len(config.get('train_images', []))} training and {len(config.get('validation_images', []))} validation "
        f"images from the folder `{Path(config.get('images', '?')).name}` (masks: "
        f"`{Path(config.get('masks', '?')).name}`), {config.get('epochs', '?')} epochs on "
        f"{config.get('tile', '?')}-pixel tiles with the `{config.get('loss', '?')}` loss. "
        f"{config.get('class_meaning', '')}")
    tiles = (f" It was trained on {record.tile}-pixel tiles; for large images, tiles of about that size with "
             f"{record.overlap} pixels of overlap work best (rdf.yaml's halo: {halo} pixels)." if record.tile else "")
    path.write_text(f"""# {meta.name}

{meta.description}

A U-Net with {geometry.levels} pooling levels for semantic segmentation, trained with the U-Net segmentation
workshop (TensorFlow/Keras 3) and exported with `python -m helpers export` to the BioImage Model Zoo format
(model description spec 0.5).

## Input
`{INPUT_ID}`: axes batch, y, x, channel; {channels}; {sizes}.
Preprocessing, as in training: {plan.scaling.text}.{converted}{tiles}

## Output
`{OUTPUT_ID}`: axes batch, y, x, channel, with the input's height and width; {output} No postprocessing.

## Training data
{training}

## Validation
{_scores_table(record)}

The test image (`test_input.npy`, also `sample_input.tif`) is {plan.test_source}; `test_output.npy` (and
`sample_output.tif`) is the model's prediction of it, which `bioimageio test` reproduces.

{_usage(meta.package, weights, geometry, record, minimum)}
## Cite
{chr(10).join(f"* {text} doi:{doi}" for text, doi in _citations(record))}

## Limitations
Trained on few images of one kind: expect to retrain for other microscopes, stains or magnifications. Saved by
Keras {_keras_version()}; the `keras_hdf5` weights are Keras 3's legacy HDF5, for Keras 3 (older tf.keras 2 may
not read them).
""")
    return path


def _keras_version() -> str:
    import keras

    return keras.__version__


# ---------------------------------------------------------------------------------------------
# the optional dependency


def _bioimageio() -> tuple[Any, Any]:
    """``(bioimageio.spec.model.v0_5, save_bioimageio_package)``, or an ImportError naming the fix."""
    try:
        from bioimageio.spec import save_bioimageio_package
        from bioimageio.spec.model import v0_5
    except ImportError as error:
        raise ImportError(f"Exporting to the BioImage Model Zoo format needs bioimageio.core and bioimageio.spec "
                          f"({error}): {INSTALL_HINT}.") from error
    spec_version = tuple(int(p) for p in re.findall(r"\d+", importlib.metadata.version("bioimageio.spec"))[:3])
    pydantic_version = tuple(int(p) for p in re.findall(r"\d+", importlib.metadata.version("pydantic"))[:2])
    if spec_version < (0, 5, 14) and pydantic_version >= (2, 14):
        raise ImportError(f"bioimageio.spec {importlib.metadata.version('bioimageio.spec')} cannot write packages "
                          f"with pydantic {importlib.metadata.version('pydantic')}: pip install 'pydantic<2.14' "
                          f"(or {INSTALL_HINT}).")
    return v0_5, save_bioimageio_package


def _check_meta(meta: _Meta, bio: Any) -> _Meta:
    name, license, authors = meta.name, meta.license, meta.authors
    if not re.fullmatch(r"[A-Za-z0-9_+\- ()]{5,128}", name):
        raise ValueError(f"--name {name!r}: use 5-128 letters, digits, spaces and _ + - ( ) only (bioimage.io's rule).")
    try:
        bio.LicenseId(license)
    except Exception as error:  # pydantic's ValidationError
        raise ValueError(f"--license {license!r} is not a licence bioimage.io accepts; use an SPDX id such as "
                         f"CC-BY-4.0, MIT, BSD-3-Clause or Apache-2.0.") from error
    if not authors or any(not a.strip() or "/" in a for a in authors):
        raise ValueError(f"--authors {list(authors)}: give at least one name, without '/'.")
    return meta


def _check_out(out: Path, force: bool) -> Path:
    if out.suffix.lower() != ".zip":
        raise ValueError(f"--out {out} must end in .zip (a BioImage Model Zoo package is a zip file).")
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name ending in .zip.")
    if out.exists() and not force:
        raise FileExistsError(f"{out} already exists; pass --force (force=True) to replace it, or choose another "
                              f"--out.")
    files.check_writable(out.parent)
    return out


# ---------------------------------------------------------------------------------------------
# the public functions


def _default_name(record: _Record, run_dir: Path | None) -> str:
    if record.workshop:
        return "ISBI 2012 membrane U-Net"
    base = re.sub(r"[^A-Za-z0-9_+\- ()]+", " ", run_dir.name if run_dir else "").strip()
    return f"U-Net {base}"[:64] if len(f"U-Net {base}") >= 5 else "U-Net model"


def _default_description(record: _Record) -> str:
    if record.workshop:
        return ("U-Net that segments cell membranes in serial-section electron microscopy of the Drosophila larva "
                "ventral nerve cord (ISBI 2012 challenge data), trained in the U-Net segmentation workshop.")
    classes = ", ".join(record.class_names)
    return (f"U-Net that segments {classes} in images like those it was trained on "
            f"({Path(record.config.get('images', 'training images')).name}), trained with the U-Net workshop's "
            f"command line.")


def _prepare(model: keras.Model | str | os.PathLike, run_dir: str | os.PathLike | None) -> tuple[Any, str, Path | None]:
    if isinstance(model, (str, os.PathLike)):
        from helpers.models import load_model

        path = Path(model)
        return load_model(path), str(path), Path(run_dir) if run_dir is not None else path.parent
    return model, f"The model {getattr(model, 'name', '')!r}", Path(run_dir) if run_dir is not None else None


def export_model(model: keras.Model | str | os.PathLike, out: str | os.PathLike, *,
                 run_dir: str | os.PathLike | None = None, test_image: str | os.PathLike | None = None,
                 name: str | None = None, description: str | None = None,
                 authors: Sequence[str] = DEFAULT_AUTHORS, license: str | None = None,
                 threshold: float | None = None, scores: Mapping | str | os.PathLike | None = None,
                 tile: int | None = None, overlap: int | None = None,
                 weight_formats: Sequence[str] = WEIGHT_FORMATS, test_size: int = TEST_SIZE,
                 force: bool = False) -> Path:
    """Write a trained U-Net as a BioImage Model Zoo package (``.zip``, spec 0.5).

    Parameters
    ----------
    model
        A ``.keras`` file (its folder is the run folder) or a Keras model in memory: a U-Net with
        one image input and one output of the same height and width (1 sigmoid channel, or K
        softmax channels).
    out
        The ``.zip`` to write (atomically).
    run_dir
        The run folder with ``config.json`` (threshold, tile, overlap, channels, class names,
        training images) and ``scores.json`` or ``metrics.json``. Default: the model file's folder.
        Without a ``config.json`` the model is taken to be the workshop notebooks' ISBI 2012
        membrane model (its README says so).
    test_image
        The image for the package's test input. Default: the run's first training image, or an
        ISBI 2012 held-out slice (slice 25) for the workshop's model. Its bit depth decides the
        preprocessing (8-bit: /255, 16-bit: /65535), as :func:`helpers.files.read_image` scales.
    name, description, authors, license
        The package's metadata (name: 5-128 letters, digits, spaces, ``_+-()``; license: an SPDX
        id). Defaults: from the run; ``("U-Net workshop participant",)``; ``"CC-BY-4.0"``, or
        ``"CC-BY-NC-4.0"`` for the ISBI model (the data's terms allow non-commercial use only).
    threshold, scores, tile, overlap
        Override the run's records: the threshold for the binary mask, the scores (a dict such as
        :func:`helpers.runs.save_scores` returns, or a JSON file), the training tile and the tile
        overlap (the halo is half of it).
    weight_formats
        Any of :data:`WEIGHT_FORMATS`, ``"keras_v3"`` always included.
    test_size
        Largest side of the test image (a centred crop of a valid size).
    force
        Replace an existing ``out``.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    ImportError
        bioimageio.spec is not installed (the message says how to install it).
    FileExistsError
        ``out`` exists and ``force`` is False.
    FileNotFoundError
        The model file or the test image is missing.
    ValueError
        Not a U-Net with one image input and one output of its size; a bad name, licence,
        authors or ``out``.
    PermissionError
        ``out``'s folder is not writable.

    Examples
    --------
    >>> export_model("runs/mine/model.keras", "mine.zip", authors=["Ada Lovelace"])   # doctest: +SKIP
    PosixPath('mine.zip')
    >>> export_model(final_model, RUN_DIR / "membranes.zip", threshold=0.5, scores=scores,
    ...              tile=128, overlap=32)                                          # doctest: +SKIP
    PosixPath('runs/02_further_topics/bce_jaccard/membranes.zip')
    """
    out = _check_out(Path(out), force)
    keras_model, source, run_path = _prepare(model, run_dir)
    geometry = _geometry(keras_model, source)
    bio, save_package = _bioimageio()
    record = _record(run_path, geometry, threshold=threshold, scores=scores, tile=tile, overlap=overlap)
    meta = _check_meta(_Meta(name=name or _default_name(record, run_path),
                             description=description or _default_description(record),
                             authors=[a.strip() for a in authors], package=out.name,
                             license=license or (ISBI_LICENSE if record.workshop else DEFAULT_LICENSE)), bio)
    plan = _plan(geometry, record, _test_image_path(test_image, record), test_image is not None, test_size)
    with tempfile.TemporaryDirectory(prefix="unet-export-") as tmp, _quiet_bioimageio():
        folder = Path(tmp)
        clean = _clean_copy(keras_model)
        test_output = np.asarray(clean.predict(_preprocess(plan.test_input, plan.scaling), verbose=0), np.float32)
        weights = _write_weights(bio, clean, folder, geometry, weight_formats)
        descr = _describe(bio, folder, meta, geometry, record, plan, test_output, weights)
        with files.atomic_path(out) as tmp_zip:
            save_package(descr, output_path=tmp_zip)
    return out


def _plan(geometry: _Geometry, record: _Record, path: Path, given: bool, test_size: int) -> _Plan:
    """Read the test image, choose its preprocessing, the halo, the minimum size and the test crop."""
    raw = _convert_channels(_read_raw(path), geometry.channels, record.config.get("channel_conversion", "none"), path)
    halo = _halo(geometry, record.overlap)
    minimum = _minimum_size(geometry, halo)
    height, width = (_valid_size(size, fixed_size, minimum, geometry.step, test_size)
                     for size, fixed_size in zip(raw.shape[:2], (geometry.height, geometry.width)))
    crop = f"a centred {height} x {width} crop of"
    source = (f"{crop} `{path.name}`" if given else
              f"{crop} ISBI 2012 training slice {ISBI_HOLDOUT_SLICE} (held out: not trained on)" if record.workshop
              else f"{crop} the first training image, `{path.name}`")
    return _Plan(scaling=_scaling(raw), halo=halo, minimum=minimum, test_input=_fit(raw, height, width)[None],
                 test_source=source)


def _describe(bio: Any, folder: Path, meta: _Meta, geometry: _Geometry, record: _Record, plan: _Plan,
              test_output: np.ndarray, weights: Any) -> Any:
    """Build (and so validate) the spec's ModelDescr from the files written into ``folder``."""
    np.save(folder / "test_input.npy", plan.test_input)
    np.save(folder / "test_output.npy", test_output)
    sample_in, sample_out = _samples(folder, plan.test_input, test_output)
    present = [wf for wf in WEIGHT_FORMATS if getattr(weights, wf) is not None]
    readme = _readme(folder / "README.md", meta, geometry, record, plan, present)
    cover = _cover(folder / "cover.png", plan.test_input[0], test_output[0])
    cites = _citations(record)
    extra = {"threshold": record.threshold, "tile": record.tile, "overlap": record.overlap, "levels": geometry.levels,
             "classes": record.class_names, "scores": record.scores, "scores_split": record.scores_split,
             "exported_with": "U-Net segmentation workshop, python -m helpers export"}
    training = bio.TrainingDetails(loss_function=record.config.get("loss"), training_epochs=record.config.get("epochs"))
    return bio.ModelDescr(
        name=meta.name, description=meta.description, authors=[bio.Author(name=a) for a in meta.authors],
        cite=[bio.CiteEntry(text=text, doi=bio.Doi(doi)) for text, doi in cites], license=bio.LicenseId(meta.license),
        documentation=bio.FileDescr(source=readme), covers=[bio.FileDescr(source=cover)],
        tags=["unet", "segmentation", "semantic-segmentation", "2d", "keras", "tensorflow",
              *(["electron-microscopy", "membrane", "isbi2012"] if record.workshop else [])],
        inputs=[_input_descr(bio, folder, geometry, plan.scaling, plan.minimum, sample_in)],
        outputs=[_output_descr(bio, folder, geometry, record, plan.halo, sample_out)], weights=weights,
        config=bio.Config(bioimageio=bio.BioimageioConfig(
            architecture_type="U-Net", task="semantic segmentation", model_parameter_count=geometry.parameters,
            training=training),
            unet_workshop=extra))


def _input_descr(bio: Any, folder: Path, geometry: _Geometry, scaling: _Scaling, minimum: int,
                 sample: Path) -> Any:
    def space(axis: str, fixed: int | None) -> Any:
        size = fixed if fixed is not None else bio.ParameterizedSize(min=minimum, step=geometry.step)
        return bio.SpaceInputAxis(id=bio.AxisId(axis), size=size)

    names = {1: ["gray"], 3: ["red", "green", "blue"]}.get(geometry.channels,
                                                          [f"channel_{i}" for i in range(geometry.channels)])
    steps = [bio.EnsureDtypeDescr(kwargs=bio.EnsureDtypeKwargs(dtype="float32"))]
    if scaling.min_max:
        steps.append(bio.ScaleRangeDescr(kwargs=bio.ScaleRangeKwargs(
            axes=[bio.AxisId("y"), bio.AxisId("x"), bio.AxisId("channel")], min_percentile=0.0,
            max_percentile=100.0)))
    elif scaling.gain is not None:
        steps.append(bio.ScaleLinearDescr(kwargs=bio.ScaleLinearKwargs(gain=scaling.gain)))
    steps.append(bio.EnsureDtypeDescr(kwargs=bio.EnsureDtypeKwargs(dtype="float32")))
    return bio.InputTensorDescr(
        id=bio.TensorId(INPUT_ID), description=f"image, {scaling.dtype}; scaled to [0, 1] by the preprocessing",
        axes=[bio.BatchAxis(), space("y", geometry.height), space("x", geometry.width),
              bio.ChannelAxis(channel_names=names)],
        test_tensor=bio.FileDescr(source=folder / "test_input.npy"), sample_tensor=bio.FileDescr(source=sample),
        data=bio.IntervalOrRatioDataDescr(type=scaling.dtype, range=scaling.data_range), preprocessing=steps)


def _output_descr(bio: Any, folder: Path, geometry: _Geometry, record: _Record, halo: int, sample: Path) -> Any:
    def space(axis: str) -> Any:
        return bio.SpaceOutputAxisWithHalo(id=bio.AxisId(axis), halo=halo, size=bio.SizeReference(
            tensor_id=bio.TensorId(INPUT_ID), axis_id=bio.AxisId(axis)))

    probability = geometry.activation in ("sigmoid", "softmax")
    return bio.OutputTensorDescr(
        id=bio.TensorId(OUTPUT_ID),
        description=(f"{geometry.activation} probability per class" if probability else "model output")[:128],
        axes=[bio.BatchAxis(), space("y"), space("x"), bio.ChannelAxis(channel_names=record.class_names)],
        test_tensor=bio.FileDescr(source=folder / "test_output.npy"), sample_tensor=bio.FileDescr(source=sample),
        data=bio.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0) if probability else (None, None)))


def check_package(path: str | os.PathLike, *, weight_format: str | None = None, timeout: float = 1800) -> dict:
    """Run bioimageio.core's model test on a package, in a fresh Python process, as a bioimage.io tool would.

    The test validates ``rdf.yaml`` against the spec, predicts the test input with each weight
    format (or ``weight_format``) and compares the result with the test output within the spec's
    tolerance, and runs the model at several input sizes. It runs without ``helpers`` imported
    (so custom objects cannot hide a problem), in a temporary working folder, with Keras'
    TensorFlow backend where TensorFlow is installed (bioimageio.core runs SavedModels only there).

    Returns
    -------
    dict
        ``{"status": "passed" | "failed" | ..., "details": [{"name", "status", "errors"}, ...]}``.

    Raises
    ------
    ImportError
        bioimageio.core is not installed.
    RuntimeError
        The test could not run at all (the message ends with its last error line).

    Examples
    --------
    >>> check_package("mine.zip")["status"]                                     # doctest: +SKIP
    'passed'
    """
    if importlib.util.find_spec("bioimageio") is None or importlib.util.find_spec("bioimageio.core") is None:
        raise ImportError(f"Testing a package needs bioimageio.core: {INSTALL_HINT}.")
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"Package not found: {path}. Write it first with `python -m helpers export`.")
    code = ("import json, sys\nfrom bioimageio.core import test_description\n"
            "s = test_description(sys.argv[1], weight_format=sys.argv[2] or None)\n"
            "print(json.dumps({'status': s.status, 'details': [{'name': d.name, 'status': d.status, "
            "'errors': [e.msg for e in d.errors]} for d in s.details]}))\n")
    backend = "tensorflow" if env.has_tensorflow() else os.environ.get("KERAS_BACKEND", "jax")
    environment = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "LOGURU_LEVEL": "ERROR"}
    with tempfile.TemporaryDirectory(prefix="bioimageio-test-") as cwd:
        done = subprocess.run([sys.executable, "-c", code, str(path), weight_format or ""], cwd=cwd,
                              env=environment, capture_output=True, text=True, timeout=timeout, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"bioimageio.core could not test {path}: {last}")
    return json.loads(lines[-1])
