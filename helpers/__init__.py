"""Helpers for the U-Net image segmentation workshop.

One module per concern; the notebooks import them by name::

    from helpers import env, data, augment, losses, metrics, models, train, tiles, evaluate, plots

``env`` (where it runs: backend, devices, profile), ``files`` and ``data`` (images, masks, the
ISBI data), ``augment`` (training batches), ``weights`` (the U-Net paper's border weight maps),
``models``, ``losses``, ``metrics``, ``train`` (compile, fit, checkpoints), ``live`` (the training
view), ``runs`` (a run's history and scores), ``tiles`` and ``predict`` (any image size),
``evaluate`` (scores), ``instances`` (objects from pixels, and their matching), ``plots``,
``memory``, ``export`` (the BioImage Model Zoo format, for Fiji, ilastik and napari); ``workflow``
(train, predict and evaluate folders of your own images) backs the command line ``cli``, and
``runner`` executes the notebooks headless (``make run``); ``exercises`` checks the notebooks'
exercises.

Conventions used throughout: images are float32 NHWC in [0, 1]; binary masks are float32 NHWC with
1 = membrane (the positive class) and 0 = cell interior, and binary models output one sigmoid
channel, the probability of membrane; masks of K > 2 classes hold the class numbers 0..K-1 and
their models a softmax over K channels.

Importing the package registers the workshop's losses and metrics with Keras, so a saved
``.keras`` model reloads with plain ``keras.models.load_model(path)``.
"""

import os

# Keep TensorFlow's C++ start-up chatter (CUDA probing on CPU machines) out of learners' output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from helpers import env as _env

# Before Keras is first imported: Keras on JAX on a TPU runtime or where TensorFlow is missing,
# on TensorFlow otherwise; KERAS_BACKEND, when set, always wins.
_env.select_backend()

from helpers import losses, metrics  # noqa: E402,F401  (registers the serializable losses/metrics)
from helpers.augment import get_augmented  # noqa: E402,F401  (the workshop calls helpers.get_augmented)

__version__ = "0.1.0"
