"""U-Net models: keras-unet's ``custom_unet`` (the original workshop's) under Keras 3, and ``build_unet``."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import keras
from keras import layers

__all__ = ["build_unet", "custom_unet", "float32_outputs", "describe", "load_model"]


def _conv_block(x, filters: int, dropout: float, name: str):
    """Two 3x3 convolutions + ReLU ('same' padding), with SpatialDropout2D (whole feature maps) in between."""
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", kernel_initializer="he_normal", name=f"{name}_conv{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
        if i == 1 and dropout > 0:
            x = layers.SpatialDropout2D(dropout, name=f"{name}_dropout")(x)
    return x


def build_unet(input_shape: Sequence[int | None] = (None, None, 1), filters: int = 64, num_layers: int = 4,
               dropout: float = 0.2, num_classes: int = 1) -> keras.Model:
    """Build a U-Net (Ronneberger et al. 2015) with 'same' padding, so output size = input size.

    Parameters
    ----------
    input_shape : sequence of int or None
        ``(H, W, C)``; ``(None, None, C)`` accepts any size divisible by ``2**num_layers``.
    filters, num_layers, dropout
        First level's channels (doubled per level), poolings (paper: 64, 4); SpatialDropout2D rate (0: off).
    num_classes : int
        Output channels: 1 for a binary mask (sigmoid), K for K classes (softmax).

    Returns
    -------
    keras.Model
        ``"unet"``, output ``(None, H, W, num_classes)`` in float32.

    Raises
    ------
    ValueError
        If a fixed ``H`` or ``W`` is not divisible by ``2**num_layers``, or an argument is out of range.

    Examples
    --------
    >>> build_unet((None, None, 1), filters=4, num_layers=2)(keras.ops.zeros((1, 20, 36, 1))).shape
    (1, 20, 36, 1)
    """
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"input_shape={input_shape}: pass (H, W, C), e.g. (None, None, 1).")
    for option, value in (("filters", filters), ("num_layers", num_layers), ("num_classes", num_classes)):
        if value < 1:
            raise ValueError(f"{option}={value}: use an integer >= 1.")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout={dropout}: use 0 <= dropout < 1 (0 switches dropout off).")
    factor = 2**num_layers
    if any(s is not None and s % factor for s in input_shape[:2]):
        raise ValueError(f"input size {input_shape[:2]} is not divisible by 2**num_layers = {factor} (each pooling "
                         f"halves it): resize or crop the images to multiples of {factor}, use input_shape=(None, None, "
                         f"{input_shape[2]}) with helpers.tiles.predict_tiled, or fewer num_layers")
    x = inputs = keras.Input(input_shape, name="image")
    skips = []
    for level in range(num_layers):  # contracting path
        x = _conv_block(x, filters * 2**level, dropout, f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"down{level}_pool")(x)
    x = _conv_block(x, filters * 2**num_layers, dropout, "bottleneck")
    for level in reversed(range(num_layers)):  # expanding path
        x = layers.Conv2DTranspose(filters * 2**level, 2, strides=2, padding="same", name=f"up{level}_upconv")(x)
        x = layers.Concatenate(name=f"up{level}_skip")([x, skips[level]])
        x = _conv_block(x, filters * 2**level, 0.0, f"up{level}")
    x = layers.Conv2D(num_classes, 1, name="logits")(x)
    outputs = layers.Activation("sigmoid" if num_classes == 1 else "softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="unet")


@functools.cache
def _keras_unet() -> ModuleType:
    """keras-unet's ``custom_unet`` module, imported once without its banner, with attention fixed."""
    spec = importlib.util.find_spec("keras_unet")
    if importlib.util.find_spec("tensorflow") is None and spec is not None and spec.origin is not None:
        # stand-ins for keras-unet's packages, whose __init__ files import TensorFlow: TF = False, plain Keras
        root = Path(spec.origin).parent
        package, models = ModuleType("keras_unet"), ModuleType("keras_unet.models")
        package.__path__, package.TF, package.__version__ = [str(root)], False, "0.1.2"
        models.__path__, package.models = [str(root / "models")], models
        sys.modules.update({"keras_unet": package, "keras_unet.models": models})
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            module = importlib.import_module("keras_unet.models.custom_unet")
        except ImportError as err:
            raise ImportError(f"keras-unet could not be imported ({err}); install it with `pip install keras-unet==0.1.2 "
                              "setuptools` (setuptools provides distutils on Python >= 3.12)") from err
    module.attention_concat = lambda conv_below, skip_connection: layers.concatenate(  # get_shape() is gone
        [conv_below, module.attention_gate(skip_connection, conv_below, conv_below.shape[-1])])
    return module


def float32_outputs(model: keras.Model) -> keras.Model:
    """``model`` with its outputs cast to float32 by a linear layer, unless they already are.

    Parameters
    ----------
    model : keras.Model
        A functional model (a subclassed one is returned as it is).

    Returns
    -------
    keras.Model

    Examples
    --------
    >>> float32_outputs(build_unet((32, 32, 1), filters=4, num_layers=2)).output.dtype
    'float32'
    """
    outputs = getattr(model, "outputs", None)
    if not outputs or all(keras.backend.standardize_dtype(t.dtype) == "float32" for t in outputs):
        return model
    cast = [layers.Activation("linear", dtype="float32", name="float32_output" + (f"_{i}" if i else ""))(t)
            for i, t in enumerate(outputs)]
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs  # a list would make model(x) warn
    return keras.Model(inputs, cast[0] if len(cast) == 1 else cast, name=model.name)


def custom_unet(input_shape: Sequence[int | None], **kwargs) -> keras.Model:
    """keras-unet's ``custom_unet``, the model of the original workshop ('same' padding).

    Parameters
    ----------
    input_shape, **kwargs
        ``(H, W, C)`` (H, W divisible by ``2**num_layers``, or None); e.g. ``filters=16, num_layers=4``.

    Returns
    -------
    keras.Model
        Output ``(None, H, W, num_classes)`` in float32.

    Examples
    --------
    >>> custom_unet((64, 64, 1), filters=8, num_layers=2).output_shape
    (None, 64, 64, 1)
    """
    model = _keras_unet().custom_unet(input_shape, **kwargs)  # lists its input and output: model(x) would warn
    return float32_outputs(keras.Model(model.inputs[0], model.outputs[0], name=model.name))


def describe(model: keras.Model) -> str:
    """One line about a built model: name, parameters, input and output shapes, output dtype.

    Parameters
    ----------
    model : keras.Model

    Returns
    -------
    str

    Examples
    --------
    >>> describe(build_unet((32, 32, 1), filters=4, num_layers=2))
    'unet: 7,397 parameters, input (None, 32, 32, 1) -> output (None, 32, 32, 1) float32'
    """
    return (f"{model.name}: {model.count_params():,} parameters, input {model.input_shape} -> "
            f"output {model.output_shape} {model.outputs[0].dtype}")


def load_model(path: str | os.PathLike) -> keras.Model:
    """Load a ``.keras`` file (e.g. a run's ``best.keras``) for prediction: uncompiled, errors naming the file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    keras.Model

    Raises
    ------
    FileNotFoundError, ValueError
        If the file does not exist; is not a Keras model (corrupt, truncated, wrong format).

    Examples
    --------
    >>> model = load_model("runs/mine/best.keras")              # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path={str(path)!r}: no such model file. Pass the .keras file a training run "
                                "saved (e.g. RUN_DIR/best.keras), or train a model first.")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # zipfile, h5py, json and Keras all raise their own types
        reason = (str(error).strip() or type(error).__name__).splitlines()[0]
        raise ValueError(f"Cannot load model {path}: {reason}. The file is corrupt or not a Keras model; train "
                         "again or copy the .keras file again.") from error
