"""Segment a folder of your own images with a trained model, at any image size.

Each image is read with :func:`helpers.files.read_image`, predicted with overlapping, blended
tiles (:func:`helpers.tiles.predict_tiled`, so any height and width works and no seams show),
thresholded, and written as ``<output_dir>/<stem>.png`` (0 = background, 255 = the class the
model predicts) with :func:`helpers.files.write_image`, which writes atomically: an interrupted
run never leaves a half-written mask behind.

A model with K > 1 output channels (a softmax over K classes) is not thresholded: each pixel gets
the class of highest probability (:func:`class_map`, the arg-max), and the mask is written as a
palette PNG of the class numbers 0..K-1 (:func:`helpers.files.write_class_mask`). This includes a
two-class softmax: the arg-max of two probabilities that sum to 1 is ``p_1 > 0.5``.

Examples
--------
>>> from helpers import predict
>>> written = predict.segment_folder(model, "my_images", "my_masks")   # doctest: +SKIP
>>> [path.name for path in written]                                   # doctest: +SKIP
['cell_1.png', 'cell_2.png']
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from helpers import files, tiles

__all__ = ["class_map", "output_activation", "check_outputs", "segment_image", "segment_folder"]


def output_activation(model) -> str | None:
    """The name of the activation that makes a model's output, e.g. ``"sigmoid"`` or ``"softmax"``.

    Searched from the last layer backwards, skipping linear layers (the float32 cast appended under
    mixed precision); ``None`` when no layer has a non-linear activation.

    Examples
    --------
    >>> from helpers.models import build_unet
    >>> output_activation(build_unet((None, None, 1), filters=2, num_layers=1, num_classes=3))
    'softmax'
    """
    import keras

    for layer in reversed(getattr(model, "layers", [])):
        activation = getattr(layer, "activation", None)
        if activation is None:
            if getattr(layer, "trainable_weights", None):  # a layer with weights and no activation ends the output
                return None
            continue
        name = keras.activations.serialize(activation)
        name = name if isinstance(name, str) else getattr(activation, "__name__", str(activation))
        if name != "linear":
            return name
        if getattr(layer, "trainable_weights", None):  # a linear convolution: a logits output
            return None
    return None


def check_outputs(model, source: str = "The model") -> int:
    """The number of output channels K, checked to be one sigmoid channel or a softmax over K classes.

    Raises
    ------
    ValueError
        K > 1 channels that are not a softmax (e.g. several independent sigmoids, or logits): their
        arg-max would not be the most probable class.

    Examples
    --------
    >>> from helpers.models import build_unet
    >>> check_outputs(build_unet((None, None, 1), filters=2, num_layers=1, num_classes=3))
    3
    """
    channels = int(model.output_shape[-1])
    if channels > 1 and output_activation(model) != "softmax":
        raise ValueError(f"{source} predicts {channels} channels but its output is not a softmax over them, so "
                         f"the arg-max is not the most probable class. Masks are made from one sigmoid "
                         f"channel (binary) or a softmax over K classes (e.g. build_unet(num_classes=K)).")
    return channels


def class_map(prob: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """The predicted class of every pixel: the arg-max over K channels, or ``p > threshold`` for one.

    Parameters
    ----------
    prob : np.ndarray
        Probabilities ``(..., K)``: a softmax output over K classes, or one sigmoid channel
        (K = 1: class 1 where ``p > threshold``, else class 0).
    threshold : float, default 0.5
        Used for one channel only; with K channels the most probable class wins.

    Returns
    -------
    np.ndarray
        uint8 class numbers, ``prob``'s shape without its last axis.

    Examples
    --------
    >>> class_map(np.array([[[0.2, 0.5, 0.3], [0.7, 0.2, 0.1]]]))
    array([[1, 0]], dtype=uint8)
    >>> class_map(np.array([[[0.4], [0.6]]]))
    array([[0, 1]], dtype=uint8)
    """
    prob = np.asarray(prob)
    if prob.ndim < 1 or prob.shape[-1] < 1:
        raise ValueError(f"prob has shape {prob.shape}; expected probabilities with the classes on the last axis.")
    if prob.shape[-1] == 1:
        return (prob[..., 0] > threshold).astype(np.uint8)
    if prob.shape[-1] > 256:
        raise ValueError(f"prob has {prob.shape[-1]} channels; class masks hold at most 256 classes.")
    return np.argmax(prob, axis=-1).astype(np.uint8)


def segment_image(model, image: np.ndarray, threshold: float = 0.5, tile: int = 128,
                  overlap: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Predict one image of any size with blended tiles, and threshold it (or take the arg-max).

    Parameters
    ----------
    model : keras.Model
        A segmentation model: one sigmoid output channel, or K softmax channels.
    image : np.ndarray
        ``(H, W, C)`` float32 in [0, 1], with the channels the model expects.
    threshold : float, default 0.5
        One channel: foreground where the probability is greater than this. Not used with K
        channels.
    tile, overlap : int, default 128 and 32
        Tiling passed to :func:`helpers.tiles.predict_tiled`.

    Returns
    -------
    probability : np.ndarray
        One channel: ``(H, W)`` float32 probabilities of the foreground. K channels: ``(H, W, K)``,
        the blended probabilities of the classes (they still sum to 1 per pixel).
    mask : np.ndarray
        One channel: ``(H, W)`` uint8 mask with values {0, 255}, ready for
        :func:`helpers.files.write_image`. K channels: ``(H, W)`` uint8 class numbers 0..K-1, ready
        for :func:`helpers.files.write_class_mask`.

    Examples
    --------
    >>> prob, mask = segment_image(model, files.read_image("a.png"))   # doctest: +SKIP
    """
    probability = tiles.predict_tiled(model, image, tile=tile, overlap=overlap)
    if probability.shape[-1] > 1:
        return probability, class_map(probability)
    probability = probability[..., 0]
    return probability, np.where(probability > threshold, 255, 0).astype(np.uint8)


def segment_folder(model, input_dir: str | os.PathLike, output_dir: str | os.PathLike,
                   threshold: float = 0.5, tile: int = 128, overlap: int = 32,
                   channels: int | None = None) -> list[Path]:
    """Predict a mask for every image in a folder and save it under the image's name.

    Parameters
    ----------
    model : keras.Model
        A 'same'-padded segmentation model (e.g. :func:`helpers.models.custom_unet`) accepting
        ``tile`` x ``tile`` inputs, with one sigmoid output channel (binary masks, {0, 255}) or K
        softmax channels (palette PNGs of the class numbers, the arg-max).
    input_dir : str or path-like
        Folder of PNG, TIFF or JPEG images (not searched recursively); each may have its own
        height and width.
    output_dir : str or path-like
        Folder for the masks (created if missing); must not be ``input_dir``, whose PNG files
        would be overwritten.
    threshold : float, default 0.5
        Foreground where the predicted probability is greater than this (choose it on
        validation images with :func:`helpers.evaluate.choose_threshold`); one channel only.
    tile, overlap : int, default 128 and 32
        Tiling passed to :func:`helpers.tiles.predict_tiled`; ``tile`` must suit the model
        (divisible by ``2**num_layers``).
    channels : int, optional
        Convert every image to 1 (gray) or 3 (RGB) channels; default: the model's input
        channels when fixed, otherwise the file's own.

    Returns
    -------
    list of pathlib.Path
        The written masks ``<output_dir>/<stem>.png``, in natural file-name order. Each mask has
        its image's height and width and values {0, 255} (one channel) or 0..K-1 (K channels).

    Raises
    ------
    FileNotFoundError
        ``input_dir`` is missing or holds no images.
    ValueError
        ``output_dir`` is ``input_dir``, the model has K > 1 output channels that are not a softmax
        (:func:`check_outputs`), or an image cannot be read (the message names the file).

    Examples
    --------
    >>> from helpers import models
    >>> model = models.build_unet((None, None, 1), filters=4, num_layers=2)
    >>> paths = segment_folder(model, "examples/in", "examples/out", tile=64, overlap=16)  # doctest: +SKIP
    >>> files.read_mask(paths[0]).shape == files.read_image("examples/in/a.png").shape[:2]   # doctest: +SKIP
    True
    """
    images = files.list_images(input_dir)
    output_dir = Path(output_dir)
    if output_dir.resolve() == Path(input_dir).resolve():
        raise ValueError(f"output_dir {output_dir} is the input folder; masks named <stem>.png would "
                         f"overwrite PNG inputs. Choose another folder, e.g. {output_dir / 'masks'}.")
    check_outputs(model)
    if channels is None and isinstance(model.input_shape[-1], int):
        channels = model.input_shape[-1]
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, path in images.items():
        image = files.read_image(path, channels=channels)
        prob, mask = segment_image(model, image, threshold, tile, overlap)
        write = files.write_class_mask if prob.ndim == 3 else files.write_image
        written.append(write(output_dir / f"{stem}.png", mask))
    return written
