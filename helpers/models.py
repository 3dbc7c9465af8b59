"""U-Net models: keras-unet's models (as the workshop uses them) and our readable ``build_unet``.

``custom_unet``, ``vanilla_unet`` and ``satellite_unet`` call keras-unet 0.1.2 (the library of the
original workshop), with two small fixes so they work under Keras 3:

* ``custom_unet(..., use_attention=True)`` failed with ``AttributeError: 'KerasTensor' object has
  no attribute 'get_shape'``; keras-unet's ``attention_concat`` is replaced by a Keras 3 version
  (same layers, reads ``tensor.shape`` instead).
* Under a mixed-precision policy (``mixed_float16``/``mixed_bfloat16``) their sigmoid output would
  be float16; a float32 ``Activation("linear")`` is appended so losses and metrics see float32.
  Under the default float32 policy the layers are keras-unet's, unchanged.
* They are returned with a single input and output tensor (keras-unet passes one-element lists,
  so calling ``model(x)`` on an array printed a Keras "structure of inputs" warning).

keras-unet prints a banner when imported; it is imported lazily and quietly, on the first call.
Its package ``__init__`` imports TensorFlow unconditionally (``keras_unet/metrics.py``), so where
TensorFlow is missing (Keras on JAX, Colab's TPU runtimes) only its model modules are loaded, with
its ``TF`` switch off, which makes them build plain Keras 3 layers.

Examples
--------
>>> model = build_unet((64, 64, 1), filters=8, num_layers=3)
>>> model.output_shape
(None, 64, 64, 1)
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import sys
import warnings
from pathlib import Path
from collections.abc import Sequence
from types import ModuleType

import keras
from keras import layers

__all__ = [
    "build_unet",
    "custom_unet",
    "vanilla_unet",
    "satellite_unet",
    "vanilla_output_size",
    "describe",
    "load_model",
]


# ---------------------------------------------------------------------------------------------
# Our own U-Net
# ---------------------------------------------------------------------------------------------
def _conv_block(x, filters: int, dropout: float, use_batch_norm: bool, name: str):
    """Two 3x3 convolutions + ReLU ('same' padding keeps the size); spatial dropout in between."""
    for i in (1, 2):
        x = layers.Conv2D(
            filters, 3, padding="same", kernel_initializer="he_normal",
            use_bias=not use_batch_norm, name=f"{name}_conv{i}",
        )(x)
        if use_batch_norm:
            x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
        if i == 1 and dropout > 0:
            # Drops whole feature maps: neighbouring pixels are too correlated for pixel dropout.
            x = layers.SpatialDropout2D(dropout, name=f"{name}_dropout")(x)
    return x


def build_unet(
    input_shape: Sequence[int | None] = (None, None, 1),
    filters: int = 64,
    num_layers: int = 4,
    dropout: float = 0.2,
    num_classes: int = 1,
    output_activation: str | None = None,
    use_batch_norm: bool = False,
    name: str = "unet",
) -> keras.Model:
    """Build a U-Net (Ronneberger et al. 2015) with 'same' padding, so output size = input size.

    Contracting path, ``num_layers`` levels: two 3x3 convolutions + ReLU, then 2x2 max pooling
    with stride 2 (halves height and width); the number of channels doubles at every level
    (``filters``, ``2 * filters``, ...). A bottleneck block at ``filters * 2**num_layers``
    channels. Expanding path: a 2x2 transposed convolution with stride 2 doubles the size and halves
    the channels, the result is concatenated with the feature maps of the same level from the
    contracting path (the skip connection: fine detail the pooling threw away), then two 3x3
    convolutions + ReLU. A 1x1 convolution maps to ``num_classes`` channels. SpatialDropout2D
    regularises the contracting path and bottleneck.

    Parameters
    ----------
    input_shape : sequence of int or None
        ``(H, W, C)``; ``(None, None, C)`` accepts any size divisible by ``2**num_layers``.
    filters : int
        Channels of the first level (64 in the paper; 8-16 trains fast on a CPU).
    num_layers : int
        Pooling levels (4 in the paper).
    dropout : float
        SpatialDropout2D rate in the contracting path and bottleneck; 0 disables it.
    num_classes : int
        Output channels: 1 for a binary mask (probability of membrane), K for K classes.
    output_activation : str, optional
        Default: ``"sigmoid"`` for ``num_classes=1``, ``"softmax"`` (over channels) otherwise.
    use_batch_norm : bool
        Add BatchNormalization after every convolution (before the ReLU).
    name : str
        Model name.

    Returns
    -------
    keras.Model
        Input ``(None, H, W, C)``, output ``(None, H, W, num_classes)``. The output layer is
        float32 even under a mixed-precision policy.

    Raises
    ------
    ValueError
        If a fixed ``H`` or ``W`` is not divisible by ``2**num_layers`` (pooling would drop pixels
        and the skip connections would not line up), or an argument is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> model = build_unet((None, None, 1), filters=4, num_layers=2)
    >>> model.predict(np.zeros((1, 20, 36, 1)), verbose=0).shape
    (1, 20, 36, 1)
    """
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (H, W, C), got {input_shape}")
    if filters < 1 or num_layers < 1 or num_classes < 1 or not 0 <= dropout < 1:
        raise ValueError(
            f"need filters >= 1, num_layers >= 1, num_classes >= 1 and 0 <= dropout < 1, got "
            f"filters={filters}, num_layers={num_layers}, num_classes={num_classes}, "
            f"dropout={dropout}"
        )
    factor = 2**num_layers
    bad = [s for s in input_shape[:2] if s is not None and s % factor]
    if bad:
        fixed = tuple(s if s is None else max(factor, round(s / factor) * factor)
                      for s in input_shape[:2])
        raise ValueError(
            f"input size {input_shape[:2]} is not divisible by 2**num_layers = {factor}: each of "
            f"the {num_layers} poolings halves the size. Use e.g. "
            f"input_shape={(*fixed, input_shape[2])} "
            f"(resize or crop the images), input_shape=(None, None, {input_shape[2]}) with "
            "helpers.tiles.predict_tiled for any image size, or fewer num_layers"
        )
    if output_activation is None:
        output_activation = "sigmoid" if num_classes == 1 else "softmax"

    inputs = keras.Input(input_shape, name="image")
    x = inputs
    skips = []
    for level in range(num_layers):  # contracting path
        x = _conv_block(x, filters * 2**level, dropout, use_batch_norm, f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"down{level}_pool")(x)
    x = _conv_block(x, filters * 2**num_layers, dropout, use_batch_norm, "bottleneck")
    for level in reversed(range(num_layers)):  # expanding path
        x = layers.Conv2DTranspose(
            filters * 2**level, 2, strides=2, padding="same", name=f"up{level}_upconv"
        )(x)
        x = layers.Concatenate(name=f"up{level}_skip")([x, skips[level]])
        x = _conv_block(x, filters * 2**level, 0.0, use_batch_norm, f"up{level}")
    x = layers.Conv2D(num_classes, 1, name="logits")(x)
    # float32 so that mixed precision (float16 inside the network) still gives float32 outputs.
    outputs = layers.Activation(output_activation, dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


# ---------------------------------------------------------------------------------------------
# keras-unet's models, working under Keras 3
# ---------------------------------------------------------------------------------------------
_KERAS_UNET: ModuleType | None = None


def _attention_concat(conv_below, skip_connection):
    """Keras 3 replacement for keras-unet's ``attention_concat`` (its ``get_shape()`` is gone)."""
    module = importlib.import_module("keras_unet.models.custom_unet")
    gated = module.attention_gate(skip_connection, conv_below, conv_below.shape[-1])
    return layers.concatenate([conv_below, gated])


def _keras_unet_models_only() -> ModuleType:
    """keras-unet's model modules without its package ``__init__`` (which needs TensorFlow).

    Registers stand-ins for the packages ``keras_unet`` (with ``TF = False``: use plain Keras) and
    ``keras_unet.models``, then imports the model modules that work on Keras 3 alone
    (``vanilla_unet`` needs ``keras.backend.int_shape``, gone in Keras 3, and is left out).
    """
    spec = importlib.util.find_spec("keras_unet")
    if spec is None or spec.origin is None:
        raise ImportError("No module named 'keras_unet'")
    root = Path(spec.origin).parent
    package = ModuleType("keras_unet")
    package.__path__, package.TF, package.__version__ = [str(root)], False, "0.1.2"
    models = ModuleType("keras_unet.models")
    models.__path__ = [str(root / "models")]
    package.models = models
    sys.modules.update({"keras_unet": package, "keras_unet.models": models})
    for name in ("custom_unet", "satellite_unet", "vanilla_unet"):
        try:
            module = importlib.import_module(f"keras_unet.models.{name}")
        except ImportError:
            continue
        setattr(models, name, getattr(module, name))
    return models


def _keras_unet() -> ModuleType:
    """Import ``keras_unet.models`` once, without its banner and warnings, and patch it."""
    global _KERAS_UNET
    if _KERAS_UNET is None:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                if importlib.util.find_spec("tensorflow") is None:
                    models = _keras_unet_models_only()
                else:
                    models = importlib.import_module("keras_unet.models")
            except ImportError as err:
                raise ImportError(
                    f"keras-unet could not be imported ({err}); install it with "
                    "`pip install keras-unet==0.1.2 setuptools` (setuptools provides the "
                    "distutils module it needs on Python >= 3.12)"
                ) from err
        custom = importlib.import_module("keras_unet.models.custom_unet")
        custom.attention_concat = _attention_concat
        _KERAS_UNET = models
    return _KERAS_UNET


def float32_outputs(model: keras.Model) -> keras.Model:
    """Return ``model`` with every non-float32 output cast to float32 by a linear layer.

    Under mixed precision the layers compute in float16; the loss and the predictions should
    still be float32. A model whose outputs already are float32 is returned unchanged.

    Examples
    --------
    >>> float32_outputs(build_unet((32, 32, 1), filters=4, num_layers=2)).output.dtype
    'float32'
    """
    outputs = getattr(model, "outputs", None)
    if not outputs:  # subclassed model: its graph cannot be extended
        if model.layers and model.layers[-1].dtype_policy.compute_dtype != "float32":
            raise ValueError(f"Model {model.name!r} computes its output in "
                             f"{model.layers[-1].dtype_policy.compute_dtype}; end it with a layer "
                             f"built with dtype='float32' or pass mixed_precision=False.")
        return model
    if all(keras.backend.standardize_dtype(t.dtype) == "float32" for t in outputs):
        return model
    cast = [t if keras.backend.standardize_dtype(t.dtype) == "float32"
            else keras.layers.Activation("linear", dtype="float32",
                                         name="float32_output" + (f"_{i}" if i else ""))(t)
            for i, t in enumerate(outputs)]
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs  # a list would make model(x) warn
    return keras.Model(inputs, cast[0] if len(cast) == 1 else cast, name=model.name)


def _single_io(model: keras.Model) -> keras.Model:
    """The same layers as one input -> one float32 output (keras-unet wraps both in lists, which
    makes a direct call ``model(x)`` warn)."""
    return float32_outputs(keras.Model(model.inputs[0], model.outputs[0], name=model.name))


def custom_unet(input_shape: Sequence[int | None], **kwargs) -> keras.Model:
    """keras-unet's ``custom_unet``, the model of the original workshop ('same' padding).

    Parameters
    ----------
    input_shape : sequence of int or None
        ``(H, W, C)``; H and W divisible by ``2**num_layers`` (or None).
    **kwargs
        keras-unet's options, e.g. ``filters=16, num_layers=4, use_batch_norm=True, dropout=0.3,
        dropout_type="spatial", upsample_mode="deconv", use_attention=False, num_classes=1,
        output_activation="sigmoid"``.

    Returns
    -------
    keras.Model
        Output ``(None, H, W, num_classes)``.

    Examples
    --------
    >>> model = custom_unet((64, 64, 1), filters=8, num_layers=2, use_batch_norm=False)
    >>> model.output_shape
    (None, 64, 64, 1)
    """
    return _single_io(_keras_unet().custom_unet(input_shape, **kwargs))


def vanilla_output_size(input_size: int, num_layers: int = 4) -> int:
    """Output size of ``vanilla_unet`` ('valid' convolutions) for an input of ``input_size`` pixels.

    Each 3x3 'valid' convolution trims 2 pixels, pooling halves the size and each transposed
    convolution doubles it: 572 -> 388 for 4 levels, as in the U-Net paper (Fig. 1). Sizes where
    every level's size before pooling is even (e.g. 572 or 188 for 4 levels, 92 for 2) keep the
    cropped skip connections centred.

    Parameters
    ----------
    input_size : int
        Input height or width.
    num_layers : int
        Pooling levels of the model.

    Returns
    -------
    int
        Output height or width.

    Raises
    ------
    ValueError
        If the input is too small for ``num_layers`` levels.

    Examples
    --------
    >>> vanilla_output_size(572)
    388
    """
    size = input_size
    for _ in range(num_layers):
        size = (size - 4) // 2
    size -= 4
    for _ in range(num_layers):
        size = 2 * size - 4
    if size < 1:
        raise ValueError(
            f"vanilla_unet with num_layers={num_layers} needs a larger input than {input_size} "
            f"pixels (its 'valid' convolutions trim the border); try "
            f"{input_size + 2 ** (num_layers + 3)}"
        )
    return size


def vanilla_unet(input_shape: Sequence[int], **kwargs) -> keras.Model:
    """keras-unet's ``vanilla_unet``: the paper's U-Net with 'valid' convolutions.

    The output is smaller than the input (see :func:`vanilla_output_size`: 572 -> 388 with 4
    levels), and the skip connections are centre-cropped to match, as in the paper. It needs a
    fixed input size; it cannot be used with :func:`helpers.tiles.predict_tiled`, whose tiles must
    come back at their own size.

    Parameters
    ----------
    input_shape : sequence of int
        ``(H, W, C)`` with fixed H and W.
    **kwargs
        keras-unet's options: ``num_classes=1, dropout=0.5, filters=64, num_layers=4,
        output_activation="sigmoid"``.

    Returns
    -------
    keras.Model
        Output ``(None, vanilla_output_size(H), vanilla_output_size(W), num_classes)``.

    Examples
    --------
    >>> vanilla_unet((92, 92, 1), filters=4, num_layers=2).output_shape
    (None, 52, 52, 1)
    """
    if any(s is None for s in tuple(input_shape)[:2]):
        raise ValueError(
            f"vanilla_unet needs a fixed input size, got input_shape={tuple(input_shape)}; "
            "pass e.g. (572, 572, 1), or use custom_unet/build_unet for any size"
        )
    num_layers = kwargs.get("num_layers", 4)
    for s in tuple(input_shape)[:2]:
        vanilla_output_size(s, num_layers)  # raises a clear error for too small inputs
    module = _keras_unet()
    if not hasattr(module, "vanilla_unet"):
        raise ImportError("keras-unet's vanilla_unet needs TensorFlow (it uses keras.backend.int_shape, "
                          "which Keras 3 dropped); use custom_unet, or install TensorFlow.")
    return _single_io(module.vanilla_unet(input_shape, **kwargs))


def satellite_unet(input_shape: Sequence[int | None], **kwargs) -> keras.Model:
    """keras-unet's ``satellite_unet`` (deepsense.ai's satellite-imagery U-Net, 64 filters).

    Batch normalisation before every convolution, 'same' padding, a fixed 64 channels at every
    level (no doubling) and 3x3 transposed convolutions; output size = input size.

    Parameters
    ----------
    input_shape : sequence of int or None
        ``(H, W, C)``; H and W divisible by ``2**(num_layers + 1)``.
    **kwargs
        keras-unet's options: ``num_classes=1, output_activation="sigmoid", num_layers=4``.

    Returns
    -------
    keras.Model

    Examples
    --------
    >>> satellite_unet((32, 32, 1), num_layers=2).output_shape
    (None, 32, 32, 1)
    """
    return _single_io(_keras_unet().satellite_unet(input_shape, **kwargs))


def describe(model: keras.Model) -> str:
    """One line about a model: name, parameters, input and output shapes and output dtype.

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
    return (
        f"{model.name}: {model.count_params():,} parameters, input {model.input_shape} -> "
        f"output {model.output_shape} {model.outputs[0].dtype}"
    )


def load_model(path: str | os.PathLike) -> keras.Model:
    """Load a ``.keras`` model for prediction (not compiled), with errors that name the file.

    The workshop's losses and metrics are registered first, so models trained with them load.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The file is not a loadable Keras model (corrupt, truncated, wrong format).

    Examples
    --------
    >>> model = load_model("runs/mine/model.keras")              # doctest: +SKIP
    >>> model.input_shape                                        # doctest: +SKIP
    (None, None, None, 1)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Model file not found: {path}. Train one with `python -m helpers train "
                                f"--images DIR --masks DIR --out RUN_DIR` and pass --model RUN_DIR/model.keras.")
    from helpers import losses, metrics  # noqa: F401  (registers the custom objects for loading)

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # zipfile, h5py, json and Keras all raise their own types
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"Cannot load model {path}: {reason}. The file is corrupt or not a Keras "
                         f"model; train again or copy model.keras again.") from error
