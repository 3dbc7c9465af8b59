"""Augmentation throughput: ``helpers.augment.get_augmented`` against keras-unet's pipeline.

Both get the same arrays (the 20 training slices at 128 x 128) and the workshop's
``data_gen_args``; keras-unet pads with ``constant`` as the workshop does, ours with
``reflect``. Each pipeline first delivers ``warmup`` batches (graph tracing, generator set-up),
then the time for the next ``images`` images is measured. The two run alternately ``repeats``
times so that a burst of load from other processes hits both; the median is reported.

Examples
--------
>>> from benchmarks import augment
>>> table = augment.run(quick=True)                      # doctest: +SKIP
>>> table[["recipe", "batch_size", "images_per_s"]]      # doctest: +SKIP
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchmarks import common

COLUMNS = ["recipe", "batch_size", "images", "seconds", "images_per_s", "speedup"]


def run(quick: bool = False, data: dict | None = None, batch_sizes: tuple[int, ...] = (5, 32),
        images: int | None = None, repeats: int | None = None, warmup: int = 2,
        seed: int = 0) -> pd.DataFrame:
    """Measure images per second of both augmentation pipelines.

    Parameters
    ----------
    quick : bool
        Tiny sizes (one batch per measurement, one repeat): a smoke test, not a measurement.
    data : dict, optional
        :func:`helpers.data.fixed_split` parts; only ``"train"`` is used, as it is. Default: the
        ISBI training slices resized to 128 x 128.
    batch_sizes : tuple of int
        Batch sizes to measure.
    images : int, optional
        Images per measurement (rounded up to whole batches). Default 1920, quick: one batch.
    repeats : int, optional
        Alternating measurements per pipeline; the median is reported. Default 3, quick 1.
    warmup : int
        Batches delivered before the clock starts.
    seed : int
        Seed of both pipelines.

    Returns
    -------
    pandas.DataFrame
        One row per recipe and batch size: ``recipe``, ``batch_size``, ``images``,
        ``seconds`` (median), ``images_per_s``, ``speedup`` (ours / keras-unet at that batch
        size; 1 for keras-unet).
    """
    from helpers.augment import get_augmented

    x, y = (data or common.load_split(size=128))["train"]
    repeats = repeats or (1 if quick else 3)
    rows = []
    for batch_size in batch_sizes:
        batches = 1 if quick else math.ceil((images or 1920) / batch_size)
        pipelines = {
            "keras-unet ImageDataGenerator": common.keras_unet_generator(
                x, y, batch_size, common.original_args(), seed),
            "helpers get_augmented (tf.data)": iter(get_augmented(
                x, y, batch_size=batch_size, data_gen_args=common.our_args(), seed=seed)),
        }
        seconds: dict[str, list[float]] = {name: [] for name in pipelines}
        counts: dict[str, int] = {}
        for repeat in range(repeats):
            for name, iterator in pipelines.items():
                counts[name], took = common.timed(iterator, batches, warmup if repeat == 0 else 0)
                seconds[name].append(took)
        for name in pipelines:
            median = float(np.median(seconds[name]))
            rows.append({"recipe": name, "batch_size": batch_size, "images": counts[name],
                         "seconds": median, "images_per_s": counts[name] / median})
        base, ours = rows[-2]["images_per_s"], rows[-1]["images_per_s"]
        rows[-2]["speedup"], rows[-1]["speedup"] = 1.0, ours / base
    return pd.DataFrame(rows, columns=COLUMNS)
