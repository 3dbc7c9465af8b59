"""A trained Keras U-Net's weight files in the formats bioimage.io tools run (for :mod:`helpers.toolkit.export`).

``keras_v3`` (the original), ``tensorflow_saved_model_bundle`` (what deepImageJ runs) and
``keras_hdf5``, all from one float32 copy without training configuration. The SavedModel must
hold plain TensorFlow operations (a JAX export wraps the network in one XLA call deepImageJ cannot
run), so it is written under Keras' TensorFlow backend: here, or in a subprocess
``python -m helpers.toolkit.weight_formats`` when Keras runs on JAX.

Examples
--------
>>> write_weights(clean_copy(model), Path("package"))["keras_v3"]["source"]   # doctest: +SKIP
PosixPath('package/weights.keras')
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import importlib.metadata
import logging
import os
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from helpers import env

if TYPE_CHECKING:
    import keras

__all__ = ["WEIGHT_FORMATS", "INPUT_ID", "OUTPUT_ID", "clean_copy", "write_weights", "write_saved_model",
           "quiet_tensorflow"]

#: The weight formats written (the TensorFlow ones where TensorFlow is installed), the first the original.
WEIGHT_FORMATS = ("keras_v3", "tensorflow_saved_model_bundle", "keras_hdf5")
#: The tensor ids in rdf.yaml, also the names in the SavedModel's signature.
INPUT_ID, OUTPUT_ID = "image", "probabilities"


def clean_copy(model: keras.Model) -> keras.Model:
    """The same layers and weights in float32, without optimizer, loss or metrics (which tools lack).

    Examples
    --------
    >>> clean_copy(model).compute_dtype                                      # doctest: +SKIP
    'float32'
    """
    import keras

    def float32(value: Any) -> Any:  # every dtype policy (e.g. mixed_float16) becomes float32
        if isinstance(value, dict):
            if value.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and isinstance(value.get("config"), dict):
                return {**value, "config": {**value["config"], "name": "float32"}}
            return {key: float32(item) for key, item in value.items()}
        return [float32(item) for item in value] if isinstance(value, list) else value

    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        clean = model.__class__.from_config(float32(copy.deepcopy(model.get_config())))
    finally:
        keras.config.set_dtype_policy(policy)
    clean.set_weights(model.get_weights())
    return clean


def tensorflow_version() -> str | None:
    """The installed TensorFlow's version (without importing it), or None."""
    return importlib.metadata.version("tensorflow") if env.has_tensorflow() else None


def write_weights(clean: keras.Model, folder: Path, weight_formats: Sequence[str] = WEIGHT_FORMATS,
                  height: int | None = None, width: int | None = None) -> dict:
    """Write each weight format into ``folder``; return rdf.yaml's ``weights`` entries.

    Parameters
    ----------
    clean
        The model, as :func:`clean_copy` returns it.
    folder
        An existing folder.
    weight_formats
        Any of :data:`WEIGHT_FORMATS`; the TensorFlow ones are left out without TensorFlow.
    height, width
        The model's fixed input size, if it has one.

    Returns
    -------
    dict
        ``{format: {"source", ...}}``, for ``bioimageio.spec``'s ``ModelDescr(weights=...)``.

    Examples
    --------
    >>> sorted(write_weights(clean_copy(model), Path("package")))            # doctest: +SKIP
    ['keras_hdf5', 'keras_v3', 'tensorflow_saved_model_bundle']
    """
    import keras

    backend, tf_version = keras.backend.backend(), tensorflow_version()
    clean.save(folder / "weights.keras")
    weights = {"keras_v3": {"source": folder / "weights.keras", "keras_version": keras.__version__,
                            "backend": (backend, importlib.import_module(backend).__version__),
                            "comment": "The trained model in Keras 3's own format, float32, without training "
                                       "configuration."}}
    if "tensorflow_saved_model_bundle" in weight_formats and tf_version:
        bundle = _saved_model(folder / "weights.keras", folder / "saved_model", clean.input_shape[-1], height, width)
        with zipfile.ZipFile(folder / "tf_saved_model.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
                archive.write(path, path.relative_to(bundle).as_posix())
        weights["tensorflow_saved_model_bundle"] = {
            "source": folder / "tf_saved_model.zip", "tensorflow_version": tf_version, "parent": "keras_v3",
            "comment": "Keras 3 model.export (ExportArchive); signature inputs 'image', outputs 'probabilities'."}
    if "keras_hdf5" in weight_formats and tf_version:
        absl = logging.getLogger("absl")  # its warning that HDF5 is a legacy format: written on purpose
        level = absl.level
        absl.setLevel(logging.ERROR)
        try:
            clean.save(folder / "weights.h5")
        finally:
            absl.setLevel(level)
        weights["keras_hdf5"] = {"source": folder / "weights.h5", "tensorflow_version": tf_version,
                                 "parent": "keras_v3", "comment": f"Written by Keras {keras.__version__} (legacy HDF5 "
                                                                  f"format); read with Keras 3."}
    return weights


@contextlib.contextmanager
def quiet_tensorflow() -> Iterator[None]:
    """TensorFlow's Python logger at WARNING or above while the block runs, as it was after.

    In Jupyter TensorFlow logs INFO to the cell's output ("INFO:tensorflow:Assets written to: ..."
    for every SavedModel written or read); a learner needs none of it. Warnings still show.

    Examples
    --------
    >>> with quiet_tensorflow():                                             # doctest: +SKIP
    ...     archive.write_out("saved_model")
    """
    tf_logging = sys.modules.get("tensorflow.python.platform.tf_logging")
    if tf_logging is not None:
        tf_logging.get_logger()  # configures the logger (INFO in Jupyter) before the level is set here
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def write_saved_model(keras_file: str | os.PathLike, folder: str | os.PathLike, channels: int,
                      height: int | None = None, width: int | None = None) -> str:
    """Write the SavedModel in this process (Keras' TensorFlow backend); return TensorFlow's version.

    Raises
    ------
    RuntimeError
        Keras runs on another backend.

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

    def serve(image):  # the argument's name is the signature's input name
        return {OUTPUT_ID: model(image, training=False)}

    spec = tf.TensorSpec((None, height, width, channels), tf.float32, name=INPUT_ID)
    archive.add_endpoint("serve", serve, input_signature=[spec])
    with warnings.catch_warnings(), quiet_tensorflow():  # and AutoGraph's (gast's) noise on Python 3.13, per layer
        warnings.filterwarnings("ignore", message=r".*___pyct_anno", category=DeprecationWarning)
        archive.write_out(str(folder), verbose=False)
    return tf.__version__


def _saved_model(keras_file: Path, folder: Path, channels: int, height: int | None, width: int | None) -> Path:
    """Write the SavedModel here (TensorFlow backend) or in a TensorFlow-backend subprocess; return ``folder``."""
    import keras

    if keras.backend.backend() == "tensorflow":
        write_saved_model(keras_file, folder, channels, height, width)
        return folder
    root = str(Path(__file__).resolve().parents[2])
    environment = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3",
                   "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "helpers.toolkit.weight_formats", str(keras_file), str(folder),
                           str(channels), str(height), str(width)], env=environment, capture_output=True, text=True,
                          check=False)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(f"Could not write the TensorFlow SavedModel with Keras' TensorFlow backend: {last}. "
                           f"Check that TensorFlow imports (python -c 'import tensorflow').")
    return folder


if __name__ == "__main__":
    print(write_saved_model(sys.argv[1], sys.argv[2], int(sys.argv[3]),
                            *(None if a == "None" else int(a) for a in sys.argv[4:])))
