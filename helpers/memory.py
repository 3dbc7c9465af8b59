"""How much memory training needs: a back-of-the-envelope estimate from a model's layer outputs.

Training keeps every layer's output (its *activations*) of the whole batch in memory until the
backward pass has used it, and the backward pass produces a gradient of the same size for each.
For image models these activations, not the weights, usually decide whether a batch fits on a
GPU: they grow with batch size x height x width, while the weights do not grow at all.

Examples
--------
>>> from helpers import memory, models
>>> model = models.build_unet((128, 128, 1), filters=16)
>>> round(memory.activation_memory(model, batch_size=10) / 2**30, 2)   # GiB   # doctest: +SKIP
0.46
"""

from __future__ import annotations

import math

import keras

__all__ = ["activation_memory"]


def activation_memory(model: keras.Model, batch_size: int, bytes_per_value: int = 4) -> int:
    """Estimate the bytes of activations one training step of ``batch_size`` images needs.

    ``sum over layers of (values in the layer's output) x batch_size x bytes_per_value x 2``:
    every layer's output is counted once for the forward pass and once more for its gradient
    in the backward pass. The model's input counts as a layer output.

    This is an approximation, good to a factor of about two. It leaves out the weights, their
    gradients and the optimizer's state (for Adam about 4 x the parameter count x 4 bytes, small
    next to the activations of a U-Net on large images); the workspace that convolution
    libraries (cuDNN) use; and the framework's own memory. It over-counts where a framework frees
    or fuses outputs it does not need for the backward pass (e.g. a ReLU applied in place) and
    under-counts where it keeps extra buffers (e.g. dropout masks).

    Parameters
    ----------
    model : keras.Model
        A built model with a fixed input size (``(H, W, C)`` without ``None``).
    batch_size : int
        Images per training step.
    bytes_per_value : int, default 4
        4 for float32; 2 for the float16 activations of mixed precision.

    Returns
    -------
    int
        Estimated bytes (divide by ``2**30`` for GiB).

    Raises
    ------
    ValueError
        If a layer's output size is unknown (an input built with ``None`` height or width), or
        ``batch_size`` or ``bytes_per_value`` is not positive.

    Examples
    --------
    >>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, padding="same")])
    >>> activation_memory(model, batch_size=2)    # (64 + 256) values x 2 images x 4 bytes x 2
    5120
    """
    if batch_size < 1 or bytes_per_value < 1:
        raise ValueError(f"batch_size and bytes_per_value must be positive, got {batch_size} and "
                         f"{bytes_per_value}.")
    shapes = [tuple(tensor.shape) for tensor in keras.tree.flatten(model.inputs)]
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue  # counted through model.inputs
        shapes += [tuple(tensor.shape) for tensor in keras.tree.flatten(layer.output)]
    values = 0
    for shape in shapes:
        if any(size is None for size in shape[1:]):
            raise ValueError(f"Layer output shape {shape} has an unknown size; build the model for a fixed "
                             f"input, e.g. models.custom_unet((128, 128, 1), ...), to estimate its memory.")
        values += math.prod(shape[1:])
    return values * batch_size * bytes_per_value * 2
