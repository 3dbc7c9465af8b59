"""Where the workshop runs: Colab or local, CPU, GPU or TPU, full or quick mode.

The notebooks call :func:`setup` once at the top. It seeds everything, picks a distribution
strategy and prints one short block describing the machine, so that the instructor can see at a
glance what every learner is running on.

Examples
--------
>>> from helpers import env
>>> strategy = env.setup(seed=42)                      # doctest: +SKIP
TensorFlow 2.19.0 · Keras 3.10.0 · Python 3.11.7
devices: CPU · strategy: _DefaultDistributionStrategy · precision: float32 · quick mode: off
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import numpy as np

#: Oldest versions the workshop supports (what Google Colab has shipped since mid-2025).
MIN_TENSORFLOW = (2, 19)
MIN_KERAS = (3, 10)

#: Folder name of the workshop inside "My Drive" when it runs in Colab.
DRIVE_FOLDER = "unet-workshop"

REPO_ROOT = Path(__file__).resolve().parents[1]

_strategy = None


def in_colab() -> bool:
    """Return True when running inside Google Colab.

    Examples
    --------
    >>> in_colab()
    False
    """
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def quick_mode() -> bool:
    """Return True when ``UNET_QUICK=1`` is set (the tests and the smoke profile set it).

    Quick mode shrinks epochs, steps and image sizes so a notebook runs in minutes on a laptop
    CPU. The notebooks print a loud notice when it is on.

    Examples
    --------
    >>> import os; os.environ["UNET_QUICK"] = "1"; quick_mode()
    True
    """
    return os.environ.get("UNET_QUICK", "0").strip().lower() in {"1", "true", "yes", "on"}


#: Run profiles: the workshop's own settings on a GPU/TPU, a reduced one for laptop CPUs, and
#: the smoke test the test suite runs.
PROFILES = ("full", "cpu", "quick")


def profile() -> str:
    """Return the run profile: ``"quick"``, ``"cpu"`` or ``"full"``.

    ``UNET_PROFILE`` chooses explicitly; otherwise ``UNET_QUICK=1`` gives ``"quick"``, an
    accelerator gives ``"full"`` (the original workshop's epochs and steps) and a CPU gives
    ``"cpu"`` (fewer steps, so a laptop finishes in minutes rather than hours).

    Examples
    --------
    >>> import os; os.environ["UNET_PROFILE"] = "cpu"; profile()
    'cpu'
    """
    chosen = os.environ.get("UNET_PROFILE", "").strip().lower()
    if chosen:
        if chosen not in PROFILES:
            raise ValueError(f"UNET_PROFILE={chosen!r} is not one of {', '.join(PROFILES)}; unset it or pick one.")
        return chosen
    if quick_mode():
        return "quick"
    import tensorflow as tf

    return "full" if has_gpu() or tf.config.list_logical_devices("TPU") else "cpu"


def mount_drive(folder: str = DRIVE_FOLDER) -> Path:
    """Mount Google Drive in Colab and return the workshop folder on it.

    Outside Colab nothing is mounted and the local repository root is returned, so the same
    notebook cell works everywhere.

    Parameters
    ----------
    folder
        Name of the workshop folder inside "My Drive".

    Returns
    -------
    pathlib.Path
        ``/content/drive/MyDrive/<folder>`` in Colab, otherwise the repository root.

    Examples
    --------
    >>> mount_drive() == REPO_ROOT   # outside Colab
    True
    """
    if not in_colab():
        return REPO_ROOT
    from google.colab import drive  # type: ignore[import-not-found]

    drive.mount("/content/drive")
    path = Path("/content/drive/MyDrive") / folder
    path.mkdir(parents=True, exist_ok=True)
    return path


def workshop_dir() -> Path:
    """Folder for everything a run writes that should survive (models, checkpoints, data cache).

    In Colab this is the workshop folder on the mounted Google Drive (so a disconnected runtime
    loses nothing and the data is not downloaded again); locally it is the repository root.
    ``UNET_WORKSHOP_DIR`` overrides both.

    Examples
    --------
    >>> workshop_dir().is_dir()
    True
    """
    if "UNET_WORKSHOP_DIR" in os.environ:
        return Path(os.environ["UNET_WORKSHOP_DIR"])
    drive = Path("/content/drive/MyDrive") / DRIVE_FOLDER
    if in_colab() and drive.parent.is_dir():
        return drive
    return REPO_ROOT


def runs_dir(name: str | None = None) -> Path:
    """Folder for a run's models, checkpoints, history and scores: ``<workshop_dir>/runs/<name>``.

    ``UNET_RUNS_DIR`` overrides the parent folder (``make run`` points it into ``build/``).
    The folder is created.

    Examples
    --------
    >>> runs_dir("01_introduction").name
    '01_introduction'
    """
    root = Path(os.environ["UNET_RUNS_DIR"]) if "UNET_RUNS_DIR" in os.environ else workshop_dir() / "runs"
    path = root / name if name else root
    path.mkdir(parents=True, exist_ok=True)
    return path


def _version_tuple(version: str) -> tuple[int, int]:
    major, minor = (version.split(".") + ["0"])[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def check_versions() -> None:
    """Raise a clear error when TensorFlow or Keras is older than the workshop supports.

    Raises
    ------
    RuntimeError
        Naming the installed and the required version and the command that fixes it.

    Examples
    --------
    >>> check_versions()   # silent when the versions are fine
    """
    import keras
    import tensorflow as tf

    if _version_tuple(tf.__version__) < MIN_TENSORFLOW:
        need = ".".join(map(str, MIN_TENSORFLOW))
        raise RuntimeError(
            f"TensorFlow {tf.__version__} is too old for this workshop (needs >= {need}). "
            f"Locally run `make test` (it installs requirements.txt into .venv); in Colab choose "
            f"Runtime > Disconnect and delete runtime, then run again: Colab ships TF >= {need}."
        )
    if _version_tuple(keras.__version__) < MIN_KERAS:
        need = ".".join(map(str, MIN_KERAS))
        raise RuntimeError(
            f"Keras {keras.__version__} is too old for this workshop (needs Keras 3 >= {need}). "
            f"Run `pip install 'keras>={need}'` and restart the kernel."
        )


def _gpus() -> list:
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def has_gpu() -> bool:
    """Return True when TensorFlow sees at least one GPU.

    Examples
    --------
    >>> isinstance(has_gpu(), bool)
    True
    """
    return bool(_gpus())


def get_strategy():
    """Pick the distribution strategy for this machine: TPU, then several GPUs, then default.

    The TPU path follows TensorFlow's TPU guide (resolver, ``connect_to_cluster``,
    ``initialize_tpu_system``, ``TPUStrategy``); where no TPU is present the resolver raises and
    the next option is tried, so the call is safe everywhere. The strategy is created once and
    reused (a TPU system can only be initialised once per process).

    Returns
    -------
    tf.distribute.Strategy
        ``TPUStrategy``, ``MirroredStrategy`` (two or more GPUs) or the default strategy.

    Examples
    --------
    >>> get_strategy().num_replicas_in_sync >= 1
    True
    """
    global _strategy
    if _strategy is not None:
        return _strategy
    import tensorflow as tf

    strategy = None
    if in_colab() or "TPU_NAME" in os.environ:
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            strategy = tf.distribute.TPUStrategy(resolver)
        except (ValueError, RuntimeError, tf.errors.NotFoundError):
            strategy = None
    if strategy is None and len(_gpus()) > 1:
        strategy = tf.distribute.MirroredStrategy()
    if strategy is None:
        strategy = tf.distribute.get_strategy()
    _strategy = strategy
    return strategy


def mixed_precision_policy() -> str:
    """Return the precision policy the workshop uses here: ``"mixed_float16"`` on a GPU.

    Mixed precision roughly doubles U-Net training speed on GPUs with tensor cores (T4, A100,
    H100); on CPUs it is slower, and TPUs prefer ``"mixed_bfloat16"``.

    Examples
    --------
    >>> mixed_precision_policy() in {"float32", "mixed_float16", "mixed_bfloat16"}
    True
    """
    strategy = get_strategy()
    if type(strategy).__name__.startswith("TPUStrategy"):
        return "mixed_bfloat16"
    return "mixed_float16" if has_gpu() else "float32"


def device_summary() -> str:
    """Short description of the accelerators TensorFlow sees, e.g. ``"GPU x1 (Tesla T4)"``."""
    import tensorflow as tf

    gpus = _gpus()
    if gpus:
        names = []
        for gpu in gpus:
            try:
                names.append(tf.config.experimental.get_device_details(gpu).get("device_name", "GPU"))
            except (ValueError, RuntimeError):
                names.append("GPU")
        return f"GPU x{len(gpus)} ({', '.join(sorted(set(names)))})"
    tpus = tf.config.list_logical_devices("TPU")
    if tpus:
        return f"TPU x{len(tpus)}"
    return f"CPU ({os.cpu_count()} cores)"


def setup(seed: int = 42, verbose: bool = True):
    """Prepare the session: check versions, seed, enable GPU memory growth, pick a strategy.

    Parameters
    ----------
    seed
        Seeds Python, NumPy and Keras/TensorFlow (``keras.utils.set_random_seed``).
    verbose
        Print one short block: versions, devices, strategy, precision policy and quick mode.

    Returns
    -------
    tf.distribute.Strategy
        The strategy from :func:`get_strategy`; build and compile models inside its scope.

    Examples
    --------
    >>> strategy = setup(seed=0, verbose=False)
    >>> strategy.num_replicas_in_sync >= 1
    True
    """
    import keras
    import tensorflow as tf

    check_versions()
    for gpu in _gpus():
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: memory growth can no longer change
            pass
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    # set_random_seed leaves Keras' global seed generator (used by unseeded keras.random calls)
    # where it was; restart it so that running setup(seed) again repeats the same random numbers.
    from keras.src.backend.common import global_state

    global_state.set_global_attribute("global_seed_generator", None)
    strategy = get_strategy()
    if verbose:
        python = ".".join(map(str, sys.version_info[:3]))
        print(f"TensorFlow {tf.__version__} · Keras {keras.__version__} · Python {python}"
              f"{' · Colab' if in_colab() else ''}")
        print(f"devices: {device_summary()} · strategy: {type(strategy).__name__} · "
              f"replicas: {strategy.num_replicas_in_sync} · precision: {mixed_precision_policy()} · "
              f"profile: {profile()}")
        if in_colab() and not has_gpu() and not tf.config.list_logical_devices("TPU"):
            print("No GPU found. For a 20x faster workshop choose Runtime > Change runtime type > "
                  "T4 GPU, then run the notebook again from the top.")
    return strategy
