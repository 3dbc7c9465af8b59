"""Segment your own images with a trained model: one image, or a whole folder, at any image size."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from helpers import files, tiles

__all__ = ["to_mask", "segment_image", "segment_folder"]


def to_mask(probability: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """A uint8 mask of a probability: (H, W) -> {0, 255} (255 where > threshold); (H, W, K) -> arg-max.

    Examples
    --------
    >>> to_mask(np.array([[0.2, 0.7]]))
    array([[  0, 255]], dtype=uint8)
    """
    p = np.asarray(probability)
    return (np.argmax(p, axis=-1) if p.ndim == 3 else np.where(p > threshold, 255, 0)).astype(np.uint8)


def segment_image(model, image: np.ndarray, threshold: float = 0.5, tile: int = 128, overlap: int = 32,
                  batch_size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Predict one ``(H, W, C)`` image in [0, 1], any size, with blended tiles (:func:`helpers.tiles.predict_tiled`).

    Parameters
    ----------
    model, image, threshold, tile, overlap, batch_size
        As for :func:`segment_folder` (a softmax over K works too).

    Returns
    -------
    tuple of np.ndarray
        The probability, float32 ``(H, W)`` (one channel) or ``(H, W, K)``, and its :func:`to_mask`.

    Examples
    --------
    >>> prob, mask = segment_image(model, files.read_image("a.png"), threshold=0.4)   # doctest: +SKIP
    """
    probability = tiles.predict_tiled(model, image, tile=tile, overlap=overlap, batch_size=batch_size)
    probability = probability[..., 0] if probability.shape[-1] == 1 else probability
    return probability, to_mask(probability, threshold)


def segment_folder(model, input_dir: str | os.PathLike | Sequence[str | os.PathLike],
                   output_dir: str | os.PathLike, *, threshold: float = 0.5, tile: int = 128, overlap: int = 32,
                   batch_size: int = 8, write: Callable[[Path, np.ndarray, Path], Sequence[Path]] | None = None,
                   read: Callable[[Path], np.ndarray] | None = None,
                   progress: Callable[[Iterable, str], Iterable] | None = None) -> list[Path]:
    """Segment every image of a folder into ``<output_dir>/<stem>.png`` masks of its size; return the paths written.

    Parameters
    ----------
    model : keras.Model
        A 'same'-padded U-Net; one sigmoid output channel unless ``write`` handles K channels.
    input_dir, output_dir : str or path-like
        A folder of PNG, TIFF or JPEG images (natural name order) or the image files; the masks' folder (created).
    threshold, tile, overlap, batch_size
        Foreground where the probability is greater; the tiling of :func:`helpers.tiles.predict_tiled`.
    write : callable, optional
        ``write(image_path, probability, output_dir) -> [paths written]``, per image in input order once
        all were read (checked) and ``output_dir`` exists; ``probability`` as :func:`segment_image` gives it.
    read, progress : callable, optional
        ``read(image_path) -> (H, W, C) float32`` (default :func:`helpers.files.read_image`);
        ``progress(iterable, description) -> iterable`` (e.g. tqdm), for "checking" and "predicting".

    Raises
    ------
    FileNotFoundError, ValueError
        No images; ``output_dir`` is an input folder; K > 1 channels but no ``write``; an unreadable image.

    Examples
    --------
    >>> segment_folder(model, "my_images", "my_masks", threshold=0.4, tile=256, overlap=64)   # doctest: +SKIP
    """
    output_dir, channels = Path(output_dir), int(model.output_shape[-1])
    paths = ([Path(path) for path in input_dir] if not isinstance(input_dir, (str, os.PathLike))
             else list(files.list_images(input_dir).values()))
    if output_dir.resolve() in {path.parent.resolve() for path in paths}:
        raise ValueError(f"output_dir={str(output_dir)!r} is the input folder; the masks would overwrite the "
                         f"images. Choose another folder, e.g. {str(output_dir / 'masks')!r}.")
    if write is None and channels != 1:
        raise ValueError(f"the model predicts {channels} channels; segment_folder writes binary masks from one "
                         f"sigmoid channel. Pass write= to save K-class outputs, e.g. their arg-max.")
    fixed = model.input_shape[-1] if model.input_shape[-1] in (1, 3) else None  # else: the file's channels
    read = read or (lambda path: files.read_image(path, channels=fixed))
    write = write or (lambda path, p, folder: [files.write_image(folder / f"{path.stem}.png", to_mask(p, threshold))])
    progress = progress or (lambda items, description: items)
    for path in progress(paths, "checking"):
        read(path)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in progress(paths, "predicting"):
        probability, _ = segment_image(model, read(path), threshold, tile, overlap, batch_size)
        written += write(path, probability, output_dir)
    return written
