"""Smoke tests of the benchmarks: each runs end to end at tiny sizes and returns its table.

No timing is asserted (speed depends on the machine); see benchmarks/RESULTS.md for numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
from skimage.data import binary_blobs
from skimage.segmentation import find_boundaries

from benchmarks import accuracy, augment, common, live, train
from helpers import data, env

# keras-unet's ImageDataGenerator calls a SciPy name that is deprecated (not our code).
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def parts() -> dict:
    """30 EM-like 64 x 64 slices in the fixed split's layout: blob outlines as membranes."""
    rng = np.random.default_rng(0)
    masks = np.stack([find_boundaries(binary_blobs(64, blob_size_fraction=0.2, rng=i))
                      for i in range(30)]).astype(np.float32)[..., None]
    images = np.clip(0.7 - 0.5 * masks + rng.normal(0, 0.1, masks.shape), 0, 1)
    return data.fixed_split(images.astype(np.float32), masks)


def test_keras_unet_generator_feeds_keras3():
    x = np.random.default_rng(0).random((4, 32, 32, 1), dtype=np.float32)
    images, masks = next(common.keras_unet_generator(x, x > 0.5, 2, common.original_args()))
    assert images.shape == masks.shape == (2, 32, 32, 1)


def test_augment_benchmark(parts):
    table = augment.run(data=parts, batch_sizes=(2, 4), images=8, repeats=1, warmup=1)
    assert list(table.columns) == augment.COLUMNS
    assert len(table) == 4 and (table["images"] > 0).all()
    assert (table[["seconds", "images_per_s", "speedup"]] > 0).all().all()
    assert table["speedup"].iloc[0] == 1.0


def test_train_benchmark(parts):
    table = train.run(data=parts, steps=2, rounds=1, batch_size=2, filters=4)
    assert list(table.columns) == train.COLUMNS
    assert len(table) == 2
    assert (table[["warmup_s", "images_per_s", "speedup"]] > 0).all().all()
    if not (env.accelerator() == "gpu"):  # compile_model's choice on a CPU: no XLA under TF, always jit under JAX
        assert table["jit_compile"].iloc[1] == ("True" if env.backend() == "jax" else "False")


def test_accuracy_benchmark(parts):
    table = accuracy.run(data=parts, epochs=1, steps=2, batch_size=2, size=32, filters=4,
                         overlap=16)
    assert list(table.columns) == accuracy.COLUMNS
    assert len(table) == 2
    scores = table[accuracy.SCORES].to_numpy(dtype=float)
    assert np.isfinite(scores).all() and (scores >= 0).all() and (scores <= 1).all()
    assert (table["train_s"] > 0).all()


def test_markdown_table():
    import pandas as pd

    text = common.markdown(pd.DataFrame({"a": ["x"], "b": [0.123456]}))
    assert text.splitlines() == ["| a | b |", "|---|---|", "| x | 0.123 |"]


def test_live_benchmark(parts):
    table = live.run(data=parts, filters=4, batch_size=2, quick=True)
    assert list(table.columns) == live.COLUMNS and len(table) == 2
    assert (table[["epoch_s", "view_s", "overhead_pct"]] > 0).all().all()
    np.testing.assert_allclose(table["overhead_pct"], 100 * table["view_s"] / table["epoch_s"], rtol=0.05)
