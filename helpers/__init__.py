"""The U-Net segmentation workshop's core: one module per step that notebooks 1 and 2 teach.

``from helpers import env, data, augment, models, train, losses, metrics, evaluate, plots``. Images are
float32 NHWC in [0, 1]; binary masks hold 1 = membrane, K-class masks the class numbers 0..K-1. The
researcher toolkit (command line, folders of images, export) is :mod:`helpers.toolkit`. Importing the
package registers the losses and metrics with Keras: saved models reload with ``keras.models.load_model``.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # no TensorFlow C++ start-up chatter in learners' output

from helpers import env as _env  # noqa: E402

_env.select_backend()  # before Keras is first imported: JAX on a TPU or without TensorFlow, else TensorFlow

from helpers import losses, metrics  # noqa: E402,F401  (registers the serializable losses/metrics)
from helpers.augment import get_augmented  # noqa: E402,F401  (the workshop calls helpers.get_augmented)

__version__ = "0.1.0"
