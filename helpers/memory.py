"""How much memory training needs: an estimate from a model's layer outputs (its activations)."""

from __future__ import annotations

import math

import keras

__all__ = ["activation_memory"]


def activation_memory(model: keras.Model, batch_size: int, bytes_per_value: int = 4) -> int:
    """Estimate the bytes of activations one training step of ``batch_size`` images needs.

    Every layer's output counts twice (forward pass and gradient); weights and optimizer state are left out.

    Parameters
    ----------
    model : keras.Model
        A built model with a fixed input size (no ``None``).
    batch_size, bytes_per_value : int
        Images per step; 4 for float32, 2 for mixed precision.

    Returns
    -------
    int
        Bytes (divide by ``2**30`` for GiB).

    Raises
    ------
    ValueError
        If a layer's output size is unknown, or ``batch_size`` or ``bytes_per_value`` is not positive.

    Examples
    --------
    >>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, padding="same")])
    >>> activation_memory(model, batch_size=2)    # (64 + 256) values x 2 images x 4 bytes x 2
    5120
    """
    if batch_size < 1 or bytes_per_value < 1:
        raise ValueError(f"batch_size={batch_size}, bytes_per_value={bytes_per_value}: both must be positive "
                         "(bytes_per_value 4 for float32, 2 for mixed precision).")
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
