"""Where the workshop runs: Colab or local; CPU, GPU or TPU; Keras on TensorFlow or JAX; which profile."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Run profiles: the workshop's settings (GPU/TPU), reduced ones for a laptop CPU, the smoke test.
PROFILES = ("full", "cpu", "quick")

_BACKENDS = ("tensorflow", "jax")
_MIN_TENSORFLOW, _MIN_KERAS = "2.19", "3.10"  # Colab has shipped TF 2.19 / Keras 3.10 since mid-2025
_KERAS_UNET = "keras-unet==0.1.2"  # the original workshop's library; Colab lacks it
_CHANGE_RUNTIME = "choose Runtime > Change runtime type > T4 GPU, then run the notebook again"
_DRIVE = Path("/content/drive/MyDrive/unet-workshop")


def in_colab() -> bool:
    """Return True inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def quick_mode() -> bool:
    """Return True when the environment variable ``UNET_QUICK`` is 1 (or true, yes, on): the smoke test."""
    return os.environ.get("UNET_QUICK", "0").strip().lower() in {"1", "true", "yes", "on"}


def profile() -> str:
    """Return ``UNET_PROFILE`` if set, else ``"quick"`` in quick mode, ``"full"`` on a GPU or TPU, else ``"cpu"``."""
    chosen = os.environ.get("UNET_PROFILE", "").strip().lower()
    if chosen not in ("", *PROFILES):
        raise ValueError(f"UNET_PROFILE={chosen!r} is not one of {', '.join(PROFILES)}; unset it or pick one.")
    return chosen or ("quick" if quick_mode() else "full" if accelerator() in ("gpu", "tpu") else "cpu")


def apply_profile(settings: MutableMapping[str, Any], profile_name: str | None = None,
                  **overrides: Mapping[str, Any]) -> str:
    """Replace a notebook's settings by those of the run profile, print one notice, return the profile.

    Parameters
    ----------
    settings, profile_name, **overrides
        The settings by name (a notebook's ``globals()``); ``"full"``, ``"cpu"``, ``"quick"`` or :func:`profile`;
        per reduced profile, the settings it changes, e.g. ``cpu=dict(FILTERS=16)``.

    Examples
    --------
    >>> apply_profile({"FILTERS": 64}, "cpu", cpu=dict(FILTERS=16))  # doctest: +ELLIPSIS
    *** profile 'cpu': FILTERS 64 -> 16. These reduced settings train far less ... ***
    'cpu'
    """
    name = profile_name or profile()
    if unknown := sorted({name, *overrides} - set(PROFILES)):
        raise ValueError(f"profile {unknown[0]!r} (profile_name, or an override's keyword) is not one of "
                         f"{', '.join(PROFILES)}.")
    if unknown := sorted(set().union(*map(set, overrides.values())) - set(settings)):
        raise ValueError(f"apply_profile: no setting named {', '.join(unknown)}; define it in the settings "
                         "cell first (names are UPPERCASE, e.g. FILTERS).")
    if not (changes := dict(overrides.get(name, {}))):
        print(f"profile '{name}': the workshop's settings, unchanged.")
        return name
    what = ", ".join(f"{key} {settings[key]} -> {value}" for key, value in changes.items())
    settings.update(changes)
    purpose = ("A smoke test: every cell runs and nothing is learned" if name == "quick" else "These reduced "
               "settings train far less than the workshop: the scores below are NOT what U-Net reaches")
    print(f"*** profile '{name}': {what}. {purpose}. For the workshop's results, run on a GPU "
          "(Colab: Runtime > Change runtime type > T4 GPU) or set UNET_PROFILE=full. ***")
    return name


def workshop_dir() -> Path:
    """Return the folder runs keep things in: ``UNET_WORKSHOP_DIR``, else Drive in Colab, else the repository."""
    if "UNET_WORKSHOP_DIR" in os.environ:
        return Path(os.environ["UNET_WORKSHOP_DIR"])
    return _DRIVE if in_colab() and _DRIVE.parent.is_dir() else REPO_ROOT


def runs_dir(name: str | None = None) -> Path:
    """Create and return the folder ``<UNET_RUNS_DIR or workshop_dir()/runs>/<name>``."""
    root = Path(os.environ["UNET_RUNS_DIR"]) if "UNET_RUNS_DIR" in os.environ else workshop_dir() / "runs"
    path = root / name if name else root
    path.mkdir(parents=True, exist_ok=True)
    return path


def _version_tuple(version: str) -> tuple[int, ...]:  # "2.20.0rc1" -> (2, 20)
    return tuple(int(part) for part in re.findall(r"\d+", version)[:2])


def check_versions() -> None:
    """Raise RuntimeError, naming the fix, when Keras, its backend or TensorFlow cannot run the workshop."""
    import keras

    if keras.backend.backend() not in _BACKENDS:
        raise RuntimeError(f"Keras runs on the {keras.backend.backend()!r} backend; this workshop supports "
                           f"{' and '.join(_BACKENDS)}. Unset KERAS_BACKEND and restart the kernel.")
    tf_version = importlib.import_module("tensorflow").__version__ if has_tensorflow() else None
    if tf_version and _version_tuple(tf_version) < _version_tuple(_MIN_TENSORFLOW):  # backend, or JAX's tf.data
        raise RuntimeError(f"TensorFlow {tf_version} is too old (needs >= {_MIN_TENSORFLOW}): locally run `make test` "
                           "(it installs requirements.txt); in Colab choose Runtime > Disconnect and delete runtime.")
    if _version_tuple(keras.__version__) < _version_tuple(_MIN_KERAS):
        raise RuntimeError(f"Keras {keras.__version__} is too old for this workshop (needs Keras 3 >= {_MIN_KERAS}"
                           f"). Run `pip install 'keras>={_MIN_KERAS}'` and restart the kernel.")


def has_tensorflow() -> bool:
    """Return True when TensorFlow is installed (without importing it)."""
    return importlib.util.find_spec("tensorflow") is not None


def _has_tpu_runtime() -> bool:
    return importlib.util.find_spec("libtpu") is not None or "TPU_ACCELERATOR_TYPE" in os.environ


def _choose_backend(tpu: bool, tensorflow: bool, jax: bool, requested: str | None = None) -> str:
    if name := requested or ("tensorflow" if tensorflow and not tpu else "jax" if jax else None):
        return name
    raise RuntimeError(f"Neither TensorFlow nor JAX is installed: {_CHANGE_RUNTIME}, or locally run `make install`.")


def select_backend() -> str:
    """Set and return ``KERAS_BACKEND``: as set, else JAX on a TPU or without TensorFlow, else TensorFlow."""
    if "keras" in sys.modules:  # too late to choose: the backend Keras runs on
        return sys.modules["keras"].backend.backend()
    name = _choose_backend(_has_tpu_runtime(), has_tensorflow(), importlib.util.find_spec("jax") is not None,
                           os.environ.get("KERAS_BACKEND", "").strip() or None)
    os.environ["KERAS_BACKEND"] = name
    return name


def backend() -> str:
    """Return the active Keras backend, ``"tensorflow"`` or ``"jax"``."""
    return importlib.import_module("keras").backend.backend()


def _tf_gpus() -> list:
    return importlib.import_module("tensorflow").config.list_physical_devices("GPU")


def devices() -> tuple[str, list[str]]:
    """Return the platform the backend computes on (``"tpu"``, ``"gpu"``, ``"cpu"``) and its devices' names."""
    if backend() == "jax":
        found = importlib.import_module("jax").devices()
        return found[0].platform.lower(), [getattr(d, "device_kind", str(d)) for d in found]
    details = importlib.import_module("tensorflow").config.experimental.get_device_details
    if gpus := _tf_gpus():  # TensorFlow never runs on a TPU here (select_backend)
        return "gpu", [details(gpu).get("device_name", "GPU") for gpu in gpus]
    return "cpu", [f"CPU ({os.cpu_count()} cores)"]


def accelerator() -> str:
    """Return ``"tpu"``, ``"gpu"`` or ``"cpu"``: the platform of :func:`devices`."""
    return devices()[0]


def policy_for(platform: str, mixed_precision: bool = True) -> str:
    """Return the dtype policy: ``"mixed_bfloat16"`` on a TPU, ``"mixed_float16"`` on a GPU, else ``"float32"``."""
    if not mixed_precision or platform == "cpu":
        return "float32"
    return "mixed_bfloat16" if platform == "tpu" else "mixed_float16"


class JaxStrategy:
    """A ``tf.distribute.Strategy`` stand-in for JAX: ``scope()`` activates ``distribution`` (DataParallel or None)."""

    def __init__(self, distribution, platform: str, replicas: int = 1):
        self.distribution, self.platform, self.num_replicas_in_sync = distribution, platform, replicas

    def scope(self):
        """Return the context to build models in."""
        return self.distribution.scope() if self.distribution is not None else contextlib.nullcontext()


def _jax_strategy(device_list: list | None = None) -> JaxStrategy:
    found = list(importlib.import_module("jax").devices() if device_list is None else device_list)
    platform = str(getattr(found[0], "platform", "cpu")).lower()
    parallel = importlib.import_module("keras").distribution.DataParallel(devices=found) if len(found) > 1 else None
    return JaxStrategy(parallel, platform, len(found))


@functools.cache
def get_strategy():
    """Return the strategy, made once: a :class:`JaxStrategy`, ``MirroredStrategy`` (2+ GPUs) or the default."""
    if backend() == "jax":
        return _jax_strategy()
    distribute = importlib.import_module("tensorflow").distribute
    return distribute.MirroredStrategy() if len(_tf_gpus()) > 1 else distribute.get_strategy()


def strategy_platform(strategy) -> str:
    """Return ``"tpu"``, ``"gpu"`` or ``"cpu"`` for a strategy from :func:`get_strategy`."""
    return strategy.platform if isinstance(strategy, JaxStrategy) else accelerator()


def device_summary() -> str:
    """Return the accelerators in a few words, e.g. ``"GPU x1 (Tesla T4)"`` or ``"CPU (2 cores)"``."""
    platform, names = devices()
    if platform == "cpu":
        return f"CPU ({os.cpu_count()} cores)"
    return f"{platform.upper()} x{len(names)} ({', '.join(sorted(set(names)))})"


def versions() -> dict[str, str]:
    """Return the versions of Python, Keras and its backend (and TensorFlow where loaded), for reports."""
    import keras

    found = {"backend": backend(), "keras": keras.__version__, "python": ".".join(map(str, sys.version_info[:3]))}
    if found["backend"] == "jax":
        found["jax"] = importlib.import_module("jax").__version__
    if has_tensorflow() and (found["backend"] == "tensorflow" or "tensorflow" in sys.modules):
        found["tensorflow"] = importlib.import_module("tensorflow").__version__
    return found


def version_line() -> str:
    """Return one line such as ``"Keras 3.13.2 on TensorFlow 2.20.0 · Python 3.13.5"``."""
    found = versions()
    engine = f"JAX {found['jax']}" if "jax" in found else f"TensorFlow {found.get('tensorflow')}"
    data = f" · TensorFlow {found['tensorflow']} (tf.data)" if "jax" in found and "tensorflow" in found else ""
    return f"Keras {found['keras']} on {engine}{data} · Python {found['python']}"


def _runtime_plan(tpu: bool, installed: set[str], backend_name: str | None,
                  extra: Sequence[str] = ()) -> tuple[list[str], str]:  # what to pip-install, and one line
    if not {"tensorflow", "jax"} & installed:
        raise RuntimeError(f"This runtime has neither TensorFlow nor JAX: {_CHANGE_RUNTIME}.")
    if backend_name not in (None, *_BACKENDS):
        raise RuntimeError(f"KERAS_BACKEND={backend_name!r} is not supported here ({', '.join(_BACKENDS)}): "
                           "unset it, choose Runtime > Restart session, and run the notebook again.")
    if tpu and backend_name == "tensorflow":
        raise RuntimeError("A TPU runtime needs Keras on JAX, but Keras was started on TensorFlow: "
                           "choose Runtime > Restart session, then run the notebook from the top.")
    name = backend_name or _choose_backend(tpu, "tensorflow" in installed, "jax" in installed)
    if name not in installed:
        raise RuntimeError(f"KERAS_BACKEND={name}, but {name} is not installed: {_CHANGE_RUNTIME}.")
    wanted = ([] if "keras_unet" in installed else [_KERAS_UNET]) + list(extra)
    what = ("TPU runtime: Keras on JAX" if tpu else "Keras on JAX") if name == "jax" else "Keras on TensorFlow"
    if name == "jax" and "tensorflow" not in installed:
        what += " (no TensorFlow: NumPy input pipeline)"
    return wanted, f"{what}; {'installing ' + ', '.join(wanted) if wanted else 'nothing to install'}."


def prepare_colab(extra: Sequence[str] = (), run=subprocess.run) -> str:
    """Install what a Colab runtime lacks (keras-unet, and ``extra``; never TensorFlow); print one line.

    Parameters
    ----------
    extra, run
        More pip requirements, e.g. ``("bioimageio.core==0.11.0",)``; runs pip (the tests pass a fake).

    Raises
    ------
    SystemExit
        With one line naming the fix, when the runtime cannot run the workshop.

    Examples
    --------
    >>> prepare_colab()           # doctest: +SKIP
    TPU runtime: Keras on JAX (no TensorFlow: NumPy input pipeline); installing keras-unet==0.1.2.
    """
    extra = (extra,) if isinstance(extra, str) else tuple(extra)
    if clash := [req for req in extra if re.match(r"(tensorflow|jax|jaxlib|keras)\s*([<>=!~;\[]|$)", req.lower())]:
        raise ValueError(f"extra={clash!r}: Colab's own TensorFlow, JAX and Keras are used; leave them out.")
    installed = {name for name in ("tensorflow", "jax", "keras_unet") if importlib.util.find_spec(name)}
    try:
        chosen = select_backend() if "keras" in sys.modules else os.environ.get("KERAS_BACKEND") or None
        wanted, message = _runtime_plan(_has_tpu_runtime(), installed, chosen, extra)
    except RuntimeError as err:
        raise SystemExit(str(err)) from None
    if wanted:
        result = run([sys.executable, "-m", "pip", "install", "-q", *wanted], capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"Could not install {', '.join(wanted)} ({result.stderr.strip()[-200:]}): "
                             f"{_CHANGE_RUNTIME}.")
        importlib.invalidate_caches()
    print(message)
    return message


def setup(seed: int = 42, verbose: bool = True):
    """Check versions, seed every random number generator, let GPU memory grow; return :func:`get_strategy`.

    Parameters
    ----------
    seed, verbose
        The seed; print versions, devices, strategy, precision (:func:`policy_for` its platform), profile.

    Examples
    --------
    >>> setup(seed=0, verbose=False).num_replicas_in_sync
    1
    """
    import keras
    from keras.src.backend.common import global_state

    check_versions()
    for gpu in _tf_gpus() if backend() == "tensorflow" else []:
        with contextlib.suppress(RuntimeError):  # already initialised: growth can no longer change
            importlib.import_module("tensorflow").config.experimental.set_memory_growth(gpu, True)
    keras.utils.set_random_seed(seed)  # Python's, NumPy's and the backend's generators
    global_state.set_global_attribute("global_seed_generator", None)  # set_random_seed leaves it as it was
    strategy = get_strategy()
    if verbose:
        print(f"{version_line()}{' · Colab' if in_colab() else ''}")
        print(f"devices: {device_summary()} · strategy: {type(strategy).__name__} · replicas: "
              f"{strategy.num_replicas_in_sync} · precision: {policy_for(strategy_platform(strategy))} · "
              f"profile: {profile()}")
        if in_colab() and accelerator() == "cpu":
            print(f"No GPU found. For a 20x faster workshop {_CHANGE_RUNTIME} from the top.")
    return strategy
