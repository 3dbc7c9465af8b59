"""What the benchmarks share: the workshop's augmentation, the original pipeline, data, machine.

Examples
--------
>>> from benchmarks import common
>>> sorted(common.original_args())[:2]
['fill_mode', 'height_shift_range']
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

def original_args() -> dict[str, Any]:
    """The workshop's arguments as the original notebook passes them (black ``constant`` fill)."""
    from helpers.augment import ORIGINAL_ARGS

    return {**ORIGINAL_ARGS, "fill_mode": "constant"}


def our_args() -> dict[str, Any]:
    """The same arguments for :func:`helpers.augment.get_augmented` (``reflect`` fill)."""
    from helpers.augment import ORIGINAL_ARGS

    return dict(ORIGINAL_ARGS)


def keras_unet_generator(x: np.ndarray, y: np.ndarray, batch_size: int,
                         data_gen_args: dict[str, Any], seed: int = 0) -> Iterator:
    """keras-unet's ``get_augmented`` (the original pipeline), usable by Keras 3's ``fit``.

    keras-unet returns ``zip(image_flow, mask_flow)``; Keras 3 rejects zip objects
    (``ValueError: Unrecognized data type``), so it is wrapped in a plain generator. Nothing
    else is changed. Its import prints a banner, which is silenced.

    Parameters
    ----------
    x, y : np.ndarray
        Images and masks, (N, H, W, C).
    batch_size : int
        Images per batch.
    data_gen_args : dict
        ``ImageDataGenerator`` arguments.
    seed : int
        Seed of both flows (the same seed keeps images and masks in step).

    Returns
    -------
    generator
        Endless ``(images, masks)`` NumPy batches.
    """
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from keras_unet.utils import get_augmented

    pairs = get_augmented(x, y, batch_size=batch_size, seed=seed, data_gen_args=data_gen_args)
    return (pair for pair in pairs)


def load_split(size: int | None = None, data_dir: str | os.PathLike | None = None) -> dict:
    """The 30 labelled ISBI slices as :func:`helpers.data.fixed_split` parts, optionally resized."""
    from helpers import data

    images, masks = data.load_isbi2012("train", size=size, data_dir=data_dir)
    return data.fixed_split(images, masks)


def unet(input_shape: tuple[int | None, ...], filters: int = 16, seed: int | None = None):
    """The benchmark model: keras-unet's ``custom_unet`` as the workshop builds it.

    ``filters`` 16, 4 levels, spatial dropout 0.2, no batch normalisation, sigmoid output.
    """
    import keras

    from helpers import models

    if seed is not None:
        keras.utils.set_random_seed(seed)
    return models.custom_unet(input_shape, filters=filters, dropout=0.2, use_batch_norm=False)


def load_average() -> tuple[float, float, float]:
    """1, 5 and 15 minute load averages (other processes share the CPU)."""
    return tuple(round(v, 2) for v in os.getloadavg())


def machine() -> dict[str, Any]:
    """CPU model, cores, GPU, load and library versions, for the results' header."""
    from helpers import env
    from helpers.toolkit.runner import cpu_model

    platform_name, names = env.devices()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "gpu": ", ".join(names) if platform_name == "gpu" else "none",
        "load_average": load_average(),
        **env.versions(),
    }


def take(iterator: Iterator, batches: int) -> int:
    """Pull ``batches`` batches from ``iterator``; return how many images they held."""
    images = 0
    for _ in range(batches):
        x, _y = next(iterator)
        images += int(x.shape[0])
    return images


def timed(iterator: Iterator, batches: int, warmup: int = 2) -> tuple[int, float]:
    """Images produced and seconds taken for ``batches`` batches, after ``warmup`` batches."""
    take(iterator, warmup)
    start = time.perf_counter()
    images = take(iterator, batches)
    return images, time.perf_counter() - start


def markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as a Markdown table (numbers rounded to ``digits`` significant places)."""

    def cell(value: Any) -> str:
        if isinstance(value, (float, np.floating)):
            if np.isnan(value):
                return "–"
            return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:.0f}"
        return str(value)

    columns = [str(c) for c in table.columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)

