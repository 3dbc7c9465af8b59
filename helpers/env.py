"""Where the workshop runs: Colab or local, CPU, GPU or TPU, full or quick mode.

The notebooks call :func:`setup` once at the top. It seeds everything, picks a distribution
strategy and prints one short block describing the machine, so that the instructor can see at a
glance what every learner is running on.

Examples
--------
>>> from helpers import env
>>> strategy = env.setup(seed=42)                      # doctest: +SKIP
Keras 3.13.2 on TensorFlow 2.20.0 · Python 3.13.5
devices: CPU (2 cores) · strategy: _DefaultDistributionStrategy · replicas: 1 · precision: float32 · profile: cpu

Backends
--------
Keras 3 runs on TensorFlow (the default, Colab's GPU and CPU runtimes) or on JAX (Colab's TPU
runtimes, which ship no TensorFlow). :func:`select_backend` chooses before Keras is first imported
(``import helpers`` calls it); everything here asks the *active* backend about devices, so the same
notebook gets float16 on a GPU and bfloat16 on a TPU. Under JAX a "strategy" is a small object
with the same ``scope()`` and ``num_replicas_in_sync`` as TensorFlow's, distributing over several
devices with ``keras.distribution.DataParallel``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import subprocess
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

import numpy as np

#: Oldest versions the workshop supports (Colab shipped TF 2.19 / Keras 3.10 from mid-2025).
MIN_TENSORFLOW = (2, 19)
MIN_KERAS = (3, 10)

#: Keras backends the workshop supports: TensorFlow (GPU/CPU runtimes) and JAX (TPU runtimes).
BACKENDS = ("tensorflow", "jax")

#: keras-unet version the notebooks install in Colab (the original workshop's library).
KERAS_UNET = "0.1.2"
#: What notebook 2's last section (export to the BioImage Model Zoo format, :mod:`helpers.export`)
#: needs beyond Colab's packages; Colab ships a pydantic (2.13.4, Aug 2026) inside the cap.
EXPORT_REQUIREMENTS = ("bioimageio.core==0.11.0", "pydantic>=2.10.3,<2.14")

#: The fix a learner needs when the runtime cannot run the workshop.
CHANGE_RUNTIME = "choose Runtime > Change runtime type > T4 GPU, then run the notebook again"

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
    return "full" if accelerator() in ("gpu", "tpu") else "cpu"


def apply_profile(settings: MutableMapping[str, Any], profile_name: str | None = None,
                  **overrides: Mapping[str, Any]) -> str:
    """Apply the run profile's reduced settings to a notebook's settings and print one notice.

    The notebooks keep the workshop's full settings in one cell of UPPERCASE constants; this
    replaces those named in ``overrides[profile]`` (for ``cpu`` or ``quick``) and prints, in one
    style for both notebooks, what changed and what that means.

    Parameters
    ----------
    settings
        The mapping holding the settings; in a notebook, ``globals()``.
    profile_name
        ``"full"``, ``"cpu"`` or ``"quick"``; default :func:`profile`.
    **overrides
        For each reduced profile, the settings it changes, e.g.
        ``cpu=dict(FILTERS=16, EPOCHS=10), quick=dict(FILTERS=8, EPOCHS=2)``.

    Returns
    -------
    str
        The profile applied.

    Raises
    ------
    ValueError
        An override names a setting that ``settings`` does not have (a typo would otherwise be
        ignored silently), or a profile that does not exist.

    Examples
    --------
    >>> settings = {"FILTERS": 64, "EPOCHS": 20}
    >>> apply_profile(settings, "cpu", cpu=dict(FILTERS=16))
    *** profile 'cpu': FILTERS 64 -> 16. These reduced settings train far less than the workshop: the scores below are NOT what U-Net reaches. For the workshop's results, run on a GPU (Colab: Runtime > Change runtime type > T4 GPU) or set UNET_PROFILE=full. ***
    'cpu'
    >>> settings["FILTERS"]
    16
    """
    name = profile_name or profile()
    unknown_profiles = sorted(set(overrides) - set(PROFILES))
    if unknown_profiles or name not in PROFILES:
        raise ValueError(f"Unknown profile(s) {unknown_profiles or [name]}: use {', '.join(PROFILES)}.")
    changes = dict(overrides.get(name, {}))
    unknown = sorted(set().union(*(set(o) for o in overrides.values())) - set(settings)) if overrides else []
    if unknown:
        raise ValueError(f"apply_profile: no setting named {', '.join(unknown)}; define it in the settings "
                         f"cell first (names are UPPERCASE, e.g. FILTERS).")
    if not changes:
        print(f"profile '{name}': the workshop's settings, unchanged.")
        return name
    what = ", ".join(f"{key} {settings[key]} -> {value}" for key, value in changes.items())
    settings.update(changes)
    purpose = ("a smoke test: every cell runs and nothing is learned" if name == "quick" else
               "these reduced settings train far less than the workshop: the scores below are NOT "
               "what U-Net reaches")
    print(f"*** profile '{name}': {what}. {purpose[0].upper() + purpose[1:]}. For the workshop's results, "
          f"run on a GPU (Colab: Runtime > Change runtime type > T4 GPU) or set UNET_PROFILE=full. ***")
    return name


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

    if keras.backend.backend() not in BACKENDS:
        raise RuntimeError(
            f"Keras runs on the {keras.backend.backend()!r} backend; this workshop supports "
            f"{' and '.join(BACKENDS)}. Unset KERAS_BACKEND (or set it to 'tensorflow') and "
            f"restart the kernel."
        )
    tf = None
    if has_tensorflow():  # the backend, or (under JAX) the tf.data input pipeline
        import tensorflow as tf
    if tf is not None and _version_tuple(tf.__version__) < MIN_TENSORFLOW:
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


def has_tensorflow() -> bool:
    """Return True when TensorFlow is installed (without importing it).

    Examples
    --------
    >>> isinstance(has_tensorflow(), bool)
    True
    """
    return importlib.util.find_spec("tensorflow") is not None


def has_tpu_runtime() -> bool:
    """Return True on a TPU machine (Colab's v5e/v6e runtimes ship ``libtpu``), without importing Keras.

    Examples
    --------
    >>> isinstance(has_tpu_runtime(), bool)
    True
    """
    return importlib.util.find_spec("libtpu") is not None or "TPU_ACCELERATOR_TYPE" in os.environ


def choose_backend(tpu: bool, tensorflow: bool, jax: bool, requested: str | None = None) -> str:
    """The Keras backend for a machine: the one requested, else JAX on a TPU or without TensorFlow.

    Parameters
    ----------
    tpu, tensorflow, jax
        Whether the machine has a TPU, and whether TensorFlow and JAX are installed.
    requested
        ``KERAS_BACKEND`` if set.

    Raises
    ------
    RuntimeError
        When neither backend can run here, naming the fix.

    Examples
    --------
    >>> choose_backend(tpu=False, tensorflow=True, jax=False)
    'tensorflow'
    >>> choose_backend(tpu=True, tensorflow=True, jax=True)
    'jax'
    """
    if requested:
        return requested
    if tensorflow and not tpu:
        return "tensorflow"
    if jax:
        return "jax"
    raise RuntimeError(f"Neither TensorFlow nor JAX is installed: {CHANGE_RUNTIME}, or locally run "
                       f"`make install` (it installs requirements.txt into .venv).")


def select_backend() -> str:
    """Set ``KERAS_BACKEND`` for this machine before Keras is first imported; return the backend.

    ``KERAS_BACKEND`` set by the user always wins. Otherwise TensorFlow is used where it is installed
    and no TPU is present, and JAX on a TPU runtime or where TensorFlow is missing. ``import helpers``
    calls this; once Keras is imported, its backend is reported unchanged.

    Examples
    --------
    >>> select_backend() in BACKENDS
    True
    """
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    name = choose_backend(tpu=has_tpu_runtime(), tensorflow=has_tensorflow(),
                          jax=importlib.util.find_spec("jax") is not None,
                          requested=os.environ.get("KERAS_BACKEND", "").strip() or None)
    os.environ["KERAS_BACKEND"] = name
    return name


def backend() -> str:
    """The active Keras backend, ``"tensorflow"`` or ``"jax"``.

    Examples
    --------
    >>> backend() in BACKENDS
    True
    """
    import keras

    return keras.backend.backend()


def _tf_gpus() -> list:
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def devices() -> tuple[str, list[str]]:
    """The accelerator platform the active backend computes on and its devices' names.

    Returns
    -------
    (str, list of str)
        ``"tpu"``, ``"gpu"`` or ``"cpu"``, and one name per device (e.g. ``["Tesla T4"]``).

    Examples
    --------
    >>> platform, names = devices()
    >>> platform in {"cpu", "gpu", "tpu"} and len(names) >= 1
    True
    """
    if backend() == "jax":
        import jax

        found = jax.devices()
        return found[0].platform.lower(), [getattr(d, "device_kind", str(d)) for d in found]
    import tensorflow as tf

    gpus = _tf_gpus()
    if gpus:
        names = []
        for gpu in gpus:
            try:
                names.append(tf.config.experimental.get_device_details(gpu).get("device_name", "GPU"))
            except (ValueError, RuntimeError):
                names.append("GPU")
        return "gpu", names
    tpus = tf.config.list_logical_devices("TPU")
    if tpus:
        return "tpu", ["TPU"] * len(tpus)
    return "cpu", [f"CPU ({os.cpu_count()} cores)"]


def accelerator() -> str:
    """``"tpu"``, ``"gpu"`` or ``"cpu"``: what the active backend computes on.

    Examples
    --------
    >>> accelerator() in {"cpu", "gpu", "tpu"}
    True
    """
    return devices()[0]


def policy_for(platform: str, mixed_precision: bool = True) -> str:
    """The Keras dtype policy for a platform: bfloat16 on TPUs, float16 on GPUs, float32 on CPUs.

    TPUs compute natively in bfloat16; GPUs with tensor cores (T4, A100, H100) in float16; on a
    CPU mixed precision is slower than float32.

    Examples
    --------
    >>> policy_for("tpu"), policy_for("gpu"), policy_for("cpu"), policy_for("gpu", False)
    ('mixed_bfloat16', 'mixed_float16', 'float32', 'float32')
    """
    if not mixed_precision or platform == "cpu":
        return "float32"
    return "mixed_bfloat16" if platform == "tpu" else "mixed_float16"


class JaxStrategy:
    """What the workshop needs of a ``tf.distribute.Strategy``, for the JAX backend.

    ``scope()`` activates ``distribution`` (a ``keras.distribution.DataParallel`` over several
    devices, or nothing for one device), so ``with strategy.scope(): model = build()`` reads the
    same under both backends.

    Examples
    --------
    >>> JaxStrategy(None, "cpu").num_replicas_in_sync
    1
    """

    def __init__(self, distribution, platform: str, replicas: int = 1):
        self.distribution = distribution
        self.platform = platform
        self.num_replicas_in_sync = replicas

    def scope(self):
        """Context in which models are built: the data-parallel distribution, if any."""
        return self.distribution.scope() if self.distribution is not None else contextlib.nullcontext()

    def __repr__(self) -> str:
        kind = type(self.distribution).__name__ if self.distribution is not None else "one device"
        return f"JaxStrategy({kind}, {self.platform} x{self.num_replicas_in_sync})"


def jax_strategy(device_list: list | None = None) -> JaxStrategy:
    """Data parallelism over ``device_list`` (default: every JAX device) under the JAX backend.

    One device gets no distribution at all; two or more get ``keras.distribution.DataParallel``,
    which splits each batch across them (the JAX counterpart of ``MirroredStrategy``/``TPUStrategy``).

    Examples
    --------
    >>> jax_strategy().num_replicas_in_sync >= 1      # doctest: +SKIP
    True
    """
    import keras

    if device_list is None:
        import jax

        device_list = jax.devices()
    found = list(device_list)
    platform = str(getattr(found[0], "platform", "cpu")).lower()
    if len(found) < 2:
        return JaxStrategy(None, platform)
    return JaxStrategy(keras.distribution.DataParallel(devices=found), platform, len(found))


def get_strategy():
    """Pick the distribution strategy for this machine: TPU, then several GPUs, then default.

    Under TensorFlow the TPU path follows TensorFlow's TPU guide (resolver,
    ``connect_to_cluster``, ``initialize_tpu_system``, ``TPUStrategy``); where no TPU is present
    the resolver raises and the next option is tried, so the call is safe everywhere. Under JAX
    it is :func:`jax_strategy`. The strategy is created once and reused (a TPU system can only be
    initialised once per process).

    Returns
    -------
    tf.distribute.Strategy or JaxStrategy
        ``TPUStrategy``, ``MirroredStrategy`` (two or more GPUs) or the default strategy; under
        JAX a :class:`JaxStrategy`.

    Examples
    --------
    >>> get_strategy().num_replicas_in_sync >= 1
    True
    """
    global _strategy
    if _strategy is not None:
        return _strategy
    if backend() == "jax":
        _strategy = jax_strategy()
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
    if strategy is None and len(_tf_gpus()) > 1:
        strategy = tf.distribute.MirroredStrategy()
    if strategy is None:
        strategy = tf.distribute.get_strategy()
    _strategy = strategy
    return strategy


def strategy_platform(strategy) -> str:
    """``"tpu"``, ``"gpu"`` or ``"cpu"`` for a strategy from :func:`get_strategy`.

    Examples
    --------
    >>> strategy_platform(JaxStrategy(None, "tpu"))
    'tpu'
    """
    if isinstance(strategy, JaxStrategy):
        return strategy.platform
    if type(strategy).__name__.startswith("TPUStrategy"):
        return "tpu"
    return accelerator()


def mixed_precision_policy() -> str:
    """Return the precision policy the workshop uses here (:func:`policy_for` this machine).

    Mixed precision roughly doubles U-Net training speed on GPUs with tensor cores (T4, A100,
    H100); on CPUs it is slower, and TPUs use ``"mixed_bfloat16"``.

    Examples
    --------
    >>> mixed_precision_policy() in {"float32", "mixed_float16", "mixed_bfloat16"}
    True
    """
    return policy_for(strategy_platform(get_strategy()))


def device_summary() -> str:
    """Short description of the accelerators the active backend sees, e.g. ``"GPU x1 (Tesla T4)"``."""
    platform, names = devices()
    if platform == "cpu":
        return f"CPU ({os.cpu_count()} cores)"
    return f"{platform.upper()} x{len(names)} ({', '.join(sorted(set(names)))})"


def versions() -> dict[str, str]:
    """Versions of Python, Keras and its backend (and TensorFlow where installed), for reports.

    Examples
    --------
    >>> sorted(versions())[:2]
    ['backend', 'keras']
    """
    import keras

    found = {"backend": backend(), "keras": keras.__version__,
             "python": ".".join(map(str, sys.version_info[:3]))}
    if backend() == "jax":
        import jax

        found["jax"] = jax.__version__
    if has_tensorflow() and (backend() == "tensorflow" or "tensorflow" in sys.modules):
        import tensorflow as tf

        found["tensorflow"] = tf.__version__
    return found


def version_line() -> str:
    """One line such as ``"Keras 3.13.2 on TensorFlow 2.20.0 · Python 3.13.5"``."""
    found = versions()
    on = f"JAX {found['jax']}" if found["backend"] == "jax" else f"TensorFlow {found.get('tensorflow')}"
    extra = f" · TensorFlow {found['tensorflow']} (tf.data)" if found["backend"] == "jax" and "tensorflow" in found else ""
    return f"Keras {found['keras']} on {on}{extra} · Python {found['python']}"


def runtime_plan(tpu: bool, installed: set[str], backend_name: str | None) -> tuple[list[str], str]:
    """What a Colab runtime lacks for the workshop: pip requirements to install, and one line saying so.

    TensorFlow is never installed or reinstalled: Colab's GPU/CPU runtimes ship it, and on a TPU
    runtime (JAX, no TensorFlow since March 2025) Keras runs on JAX and :mod:`helpers.augment`
    uses its NumPy input pipeline instead of tf.data. Only keras-unet and bioimageio.core (for the
    model export, :data:`EXPORT_REQUIREMENTS`) are missing everywhere.

    Parameters
    ----------
    tpu
        A TPU runtime.
    installed
        Import names present: any of ``"tensorflow"``, ``"jax"``, ``"keras_unet"``,
        ``"bioimageio.core"``.
    backend_name
        The Keras backend already chosen (``KERAS_BACKEND``), or None.

    Returns
    -------
    (list of str, str)
        Requirements for ``pip install``, and the one-line message for the learner.

    Raises
    ------
    RuntimeError
        When the runtime cannot work (no TensorFlow and no JAX; a TPU with Keras on TensorFlow;
        an unsupported backend), naming the fix.

    Examples
    --------
    >>> runtime_plan(tpu=True, installed={"jax", "bioimageio.core"}, backend_name="jax")
    (['keras-unet==0.1.2'], 'TPU runtime: Keras on JAX (no TensorFlow: NumPy input pipeline); installing keras-unet==0.1.2.')
    >>> runtime_plan(tpu=False, installed={"tensorflow", "keras_unet", "bioimageio.core"}, backend_name="tensorflow")
    ([], 'Keras on TensorFlow; nothing to install.')
    """
    if "tensorflow" not in installed and "jax" not in installed:
        raise RuntimeError(f"This runtime has neither TensorFlow nor JAX: {CHANGE_RUNTIME}.")
    if backend_name is not None and backend_name not in BACKENDS:
        raise RuntimeError(f"KERAS_BACKEND={backend_name!r} is not supported here ({', '.join(BACKENDS)}): "
                           f"unset it, choose Runtime > Restart session, and run the notebook again.")
    if tpu and backend_name == "tensorflow":
        raise RuntimeError("A TPU runtime needs Keras on JAX, but Keras was started on TensorFlow: "
                           "choose Runtime > Restart session, then run the notebook from the top.")
    name = backend_name or choose_backend(tpu, "tensorflow" in installed, "jax" in installed)
    if name == "tensorflow" and "tensorflow" not in installed:
        raise RuntimeError(f"KERAS_BACKEND=tensorflow, but TensorFlow is not installed: {CHANGE_RUNTIME}.")
    wanted = [] if "keras_unet" in installed else [f"keras-unet=={KERAS_UNET}"]
    wanted += [] if "bioimageio.core" in installed else list(EXPORT_REQUIREMENTS)
    what = ("TPU runtime: Keras on JAX" if tpu else "Keras on JAX") if name == "jax" else "Keras on TensorFlow"
    if name == "jax" and "tensorflow" not in installed:
        what += " (no TensorFlow: NumPy input pipeline)"
    done = f"installing {', '.join(wanted)}" if wanted else "nothing to install"
    return wanted, f"{what}; {done}."


def _importable(name: str) -> bool:
    """``name`` (dotted names too) can be imported, without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent package of a dotted name is missing
        return False


def prepare_colab(run=subprocess.run) -> str:
    """Make a Colab runtime ready for the workshop; print and return one line saying what was done.

    Only keras-unet and bioimageio.core are installed (TensorFlow is never installed or reinstalled). On a TPU runtime,
    which has JAX but no TensorFlow, ``import helpers`` has already set Keras to JAX before Keras
    was first imported (:func:`select_backend`). Where the runtime cannot work, the learner gets one
    line naming the fix.

    Parameters
    ----------
    run
        Runs the pip command (``subprocess.run``; replaced by a fake in the tests).

    Raises
    ------
    SystemExit
        With one line naming the fix, when the runtime cannot run the workshop.

    Examples
    --------
    >>> prepare_colab()           # doctest: +SKIP
    TPU runtime: Keras on JAX (no TensorFlow: NumPy input pipeline); installing keras-unet==0.1.2.
    """
    installed = {name for name in ("tensorflow", "jax", "keras_unet", "bioimageio.core") if _importable(name)}
    try:
        chosen = select_backend() if "keras" in sys.modules else os.environ.get("KERAS_BACKEND") or None
        wanted, message = runtime_plan(has_tpu_runtime(), installed, chosen)
    except RuntimeError as err:
        raise SystemExit(str(err)) from None
    if wanted:
        result = run([sys.executable, "-m", "pip", "install", "-q", *wanted], capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"Could not install {', '.join(wanted)} ({result.stderr.strip()[-200:]}): "
                             f"{CHANGE_RUNTIME}.")
        importlib.invalidate_caches()
    print(message)
    return message


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
    tf.distribute.Strategy or JaxStrategy
        The strategy from :func:`get_strategy`; build and compile models inside its scope.

    Examples
    --------
    >>> strategy = setup(seed=0, verbose=False)
    >>> strategy.num_replicas_in_sync >= 1
    True
    """
    import keras

    check_versions()
    if backend() == "tensorflow":
        import tensorflow as tf

        for gpu in _tf_gpus():
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
        print(f"{version_line()}{' · Colab' if in_colab() else ''}")
        print(f"devices: {device_summary()} · strategy: {type(strategy).__name__} · "
              f"replicas: {strategy.num_replicas_in_sync} · precision: {mixed_precision_policy()} · "
              f"profile: {profile()}")
        if in_colab() and accelerator() == "cpu":
            print("No GPU found. For a 20x faster workshop choose Runtime > Change runtime type > "
                  "T4 GPU, then run the notebook again from the top.")
    return strategy
