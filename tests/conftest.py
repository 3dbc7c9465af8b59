"""Shared pytest fixtures."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("UNET_QUICK", "1")
os.environ.setdefault("UNET_HEADLESS", "1")  # nbval kernels: no per-epoch live figures

# Keras' backend is chosen as the notebooks choose it (helpers: JAX on a TPU or without TensorFlow,
# else TensorFlow), before any test module imports Keras. Then KERAS_BACKEND is put back as it was
# (unset in CI, as on Colab), so that subprocesses and nbval's notebook kernels choose for themselves:
# a notebook that imports Keras before helpers fails here as it would on a TPU runtime.
_KERAS_BACKEND = os.environ.get("KERAS_BACKEND")
import helpers  # noqa: E402,F401


def _restore_keras_backend() -> None:
    if _KERAS_BACKEND is None:
        os.environ.pop("KERAS_BACKEND", None)
    else:
        os.environ["KERAS_BACKEND"] = _KERAS_BACKEND


_restore_keras_backend()

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "isbi2012"

#: ``@needs_tensorflow`` (``from conftest import needs_tensorflow``) skips a test that needs TensorFlow
#: (tf.data, SavedModel export, keras-unet's generator) where it is missing, as on Colab's TPU runtime
#: (requirements-jax.txt, CI's tpu stack), and says so; or pass ``reason=TENSORFLOW_REASON`` to
#: ``pytest.importorskip("tensorflow", ...)``.
HAS_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None
TENSORFLOW_REASON = "needs TensorFlow, which Colab's TPU runtime (CI's tpu stack) lacks"
needs_tensorflow = pytest.mark.skipif(not HAS_TENSORFLOW, reason=TENSORFLOW_REASON)


@pytest.fixture(scope="session")
def isbi_dir() -> Path:
    """The local copy of the ISBI 2012 data (``UNET_DATA_DIR`` or ``../shared``); skip if absent."""
    path = Path(os.environ.get("UNET_DATA_DIR", DEFAULT_DATA))
    if not (path / "train" / "image" / "0.png").is_file():
        pytest.skip(f"ISBI 2012 data not found at {path}; set UNET_DATA_DIR to a local copy")
    return path


@pytest.fixture(autouse=True)
def _keep_keras_backend():
    """Put ``KERAS_BACKEND`` back as pytest found it (usually unset) after every test.

    bioimageio.core's Keras adapter writes its own setting (default ``"torch"``) into
    ``os.environ`` when first imported (tests/test_export.py); left there, it would start later
    subprocesses (``make gpu-check``'s dry run) and the notebook kernels of nbval on a backend that
    is not installed.
    """
    yield
    _restore_keras_backend()


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
