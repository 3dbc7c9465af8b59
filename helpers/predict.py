"""Segment a folder of your own images with a trained model, at any image size.

Each image is read with :func:`helpers.files.read_image`, predicted with overlapping, blended
tiles (:func:`helpers.tiles.predict_tiled`, so any height and width works and no seams show),
thresholded, and written as ``<output_dir>/<stem>.png`` (0 = background, 255 = the class the
model predicts) with :func:`helpers.files.write_image`, which writes atomically: an interrupted
run never leaves a half-written mask behind.

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

__all__ = ["segment_image", "segment_folder"]


def segment_image(model, image: np.ndarray, threshold: float = 0.5, tile: int = 128,
                  overlap: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Predict one image of any size with blended tiles and threshold it.

    Parameters
    ----------
    model : keras.Model
        A segmentation model with one sigmoid output channel.
    image : np.ndarray
        ``(H, W, C)`` float32 in [0, 1], with the channels the model expects.
    threshold : float, default 0.5
        Foreground where the probability is greater than this.
    tile, overlap : int, default 128 and 32
        Tiling passed to :func:`helpers.tiles.predict_tiled`.

    Returns
    -------
    probability : np.ndarray
        ``(H, W)`` float32 probabilities of the foreground.
    mask : np.ndarray
        ``(H, W)`` uint8 mask with values {0, 255}, ready for :func:`helpers.files.write_image`.

    Examples
    --------
    >>> prob, mask = segment_image(model, files.read_image("a.png"))   # doctest: +SKIP
    """
    probability = tiles.predict_tiled(model, image, tile=tile, overlap=overlap)[..., 0]
    return probability, np.where(probability > threshold, 255, 0).astype(np.uint8)


def segment_folder(model, input_dir: str | os.PathLike, output_dir: str | os.PathLike,
                   threshold: float = 0.5, tile: int = 128, overlap: int = 32,
                   channels: int | None = None) -> list[Path]:
    """Predict a binary mask for every image in a folder and save it under the image's name.

    Parameters
    ----------
    model : keras.Model
        A 'same'-padded segmentation model with one sigmoid output channel (e.g.
        :func:`helpers.models.custom_unet`), accepting ``tile`` x ``tile`` inputs.
    input_dir : str or path-like
        Folder of PNG, TIFF or JPEG images (not searched recursively); each may have its own
        height and width.
    output_dir : str or path-like
        Folder for the masks (created if missing); must not be ``input_dir``, whose PNG files
        would be overwritten.
    threshold : float, default 0.5
        Foreground where the predicted probability is greater than this (choose it on
        validation images with :func:`helpers.evaluate.choose_threshold`).
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
        its image's height and width and values {0, 255}.

    Raises
    ------
    FileNotFoundError
        ``input_dir`` is missing or holds no images.
    ValueError
        ``output_dir`` is ``input_dir``, the model has more than one output channel, or an
        image cannot be read (the message names the file).

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
    if model.output_shape[-1] != 1:
        raise ValueError(f"The model predicts {model.output_shape[-1]} channels; segment_folder writes one "
                         f"binary mask per image and needs a model with one sigmoid output channel.")
    if channels is None and isinstance(model.input_shape[-1], int):
        channels = model.input_shape[-1]
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, path in images.items():
        image = files.read_image(path, channels=channels)
        _, mask = segment_image(model, image, threshold, tile, overlap)
        written.append(files.write_image(output_dir / f"{stem}.png", mask))
    return written
