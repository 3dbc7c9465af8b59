"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("UNET_QUICK", "1")
os.environ.setdefault("UNET_HEADLESS", "1")  # nbval kernels: no per-epoch live figures

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "isbi2012"


@pytest.fixture(scope="session")
def isbi_dir() -> Path:
    """The local copy of the ISBI 2012 data (``UNET_DATA_DIR`` or ``../shared``); skip if absent."""
    path = Path(os.environ.get("UNET_DATA_DIR", DEFAULT_DATA))
    if not (path / "train" / "image" / "0.png").is_file():
        pytest.skip(f"ISBI 2012 data not found at {path}; set UNET_DATA_DIR to a local copy")
    return path


@pytest.fixture(autouse=True)
def _keep_keras_backend():
    """Put ``KERAS_BACKEND`` back after every test.

    bioimageio.core's Keras adapter writes its own setting (default ``"torch"``) into
    ``os.environ`` when first imported (tests/test_export.py); left there, it would start later
    subprocesses (``make gpu-check``'s dry run) and the notebook kernels of nbval on a backend that
    is not installed.
    """
    before = os.environ.get("KERAS_BACKEND")
    yield
    if os.environ.get("KERAS_BACKEND") != before:
        if before is None:
            os.environ.pop("KERAS_BACKEND", None)
        else:
            os.environ["KERAS_BACKEND"] = before


def gradient(fn, value):
    """d fn(value) / d value under the active Keras backend (TensorFlow's tape or jax.grad)."""
    import keras
    import numpy as np

    if keras.backend.backend() == "jax":
        import jax

        return np.asarray(jax.grad(lambda v: fn(v))(keras.ops.convert_to_tensor(value)))
    import tensorflow as tf

    variable = tf.Variable(value)
    with tf.GradientTape() as tape:
        result = fn(variable)
    return tape.gradient(result, variable).numpy()
