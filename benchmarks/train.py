"""Training throughput of the same model: the original recipe against the toolkit's.

Model: keras-unet ``custom_unet`` (filters 16, 4 levels, dropout 0.2, no batch norm) on
128 x 128 x 1 inputs, batch size 5, the 20 training slices at 128 x 128.

* original: keras-unet's ``ImageDataGenerator`` pipeline wrapped in a Python generator (Keras 3
  rejects the zip object it returns), ``model.compile`` with Keras' defaults
  (``jit_compile="auto"``, i.e. XLA), binary cross-entropy, Adam(1e-4);
* ours: :func:`helpers.augment.get_augmented` (tf.data) and
  :func:`helpers.train.compile_model` (``jit_compile=False`` on a CPU), BCE + Jaccard,
  Adam(1e-4).

Each model first trains one warm-up epoch (graph tracing, XLA compilation). Then the two
alternate, one epoch of ``steps`` steps at a time, ``rounds`` times, so that load from other
processes hits both; the median images per second is reported (time from the start of an epoch
to the end of its last step, :class:`helpers.train.ImagesPerSecond`).

Examples
--------
>>> from benchmarks import train
>>> train.run(quick=True)[["recipe", "images_per_s", "speedup"]]   # doctest: +SKIP
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from benchmarks import common

COLUMNS = ["recipe", "jit_compile", "steps", "rounds", "warmup_s", "images_per_s", "speedup"]


def run(quick: bool = False, data: dict | None = None, steps: int | None = None,
        rounds: int | None = None, batch_size: int = 5, filters: int = 16,
        seed: int = 0) -> pd.DataFrame:
    """Measure training images per second of both recipes.

    Parameters
    ----------
    quick : bool
        Tiny sizes (2 steps, 1 round): a smoke test, not a measurement.
    data : dict, optional
        :func:`helpers.data.fixed_split` parts; ``"train"`` is used as it is (its size is the
        model's input size). Default: the ISBI slices resized to 128 x 128.
    steps : int, optional
        Steps per measured epoch (default 25, quick 2).
    rounds : int, optional
        Measured epochs per recipe, alternating (default 4, quick 1).
    batch_size : int
        Images per step.
    filters : int
        Filters of the first U-Net level.
    seed : int
        Seed of the weights and of both pipelines.

    Returns
    -------
    pandas.DataFrame
        One row per recipe: ``recipe``, ``jit_compile``, ``steps``, ``rounds``,
        ``warmup_s`` (the first epoch, tracing and compilation included), ``images_per_s``
        (median of the measured epochs), ``speedup`` (ours / original).
    """
    import keras

    from helpers import augment, losses, train

    x, y = (data or common.load_split(size=128))["train"]
    steps = steps or (2 if quick else 25)
    rounds = rounds or (1 if quick else 4)
    shape = x.shape[1:]

    original = common.unet(shape, filters, seed)
    original.compile(optimizer=keras.optimizers.Adam(1e-4), loss="binary_crossentropy")
    ours = train.compile_model(lambda: common.unet(shape, filters), loss=losses.bce_jaccard_loss,
                               learning_rate=1e-4, seed=seed)
    recipes = {
        "original: keras-unet generator, default compile": (
            original, common.keras_unet_generator(x, y, batch_size, common.original_args(), seed)),
        "ours: get_augmented + compile_model": (
            ours, augment.get_augmented(x, y, batch_size=batch_size,
                                        data_gen_args=common.our_args(), seed=seed)),
    }
    warmup: dict[str, float] = {}
    speed: dict[str, list[float]] = {name: [] for name in recipes}
    for round_ in range(rounds + 1):
        for name, (model, dataset) in recipes.items():
            meter = train.ImagesPerSecond(batch_size)
            start = time.perf_counter()
            model.fit(dataset, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0, callbacks=[meter])
            if round_ == 0:
                warmup[name] = time.perf_counter() - start
            else:
                speed[name].extend(meter.images_per_second)

    rows = []
    for name, (model, _) in recipes.items():
        rows.append({"recipe": name, "jit_compile": str(model.jit_compile), "steps": steps,
                     "rounds": rounds, "warmup_s": warmup[name],
                     "images_per_s": float(np.median(speed[name]))})
    for row in rows:
        row["speedup"] = row["images_per_s"] / rows[0]["images_per_s"]
    return pd.DataFrame(rows, columns=COLUMNS)
