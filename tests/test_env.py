"""Tests for helpers.env outside Colab: quick mode, folders, strategy, precision, seeding, version guard."""

from __future__ import annotations

import inspect
import random
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from helpers import env

TF = keras.backend.backend() == "tensorflow"


@pytest.fixture
def not_colab(monkeypatch):
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.delenv("UNET_WORKSHOP_DIR", raising=False)


def test_in_colab_false_here(not_colab):
    assert env.in_colab() is False


def test_in_colab_detected_from_environment(monkeypatch):
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20250601")
    assert env.in_colab() is True
    monkeypatch.delenv("UNET_WORKSHOP_DIR", raising=False)
    # Colab without a mounted Drive: fall back to the repository instead of a missing folder
    if not Path("/content/drive/MyDrive").is_dir():
        assert env.workshop_dir() == env.REPO_ROOT


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("YES", True), (" on ", True),
                                             ("0", False), ("", False), ("no", False), ("2", False)])
def test_quick_mode_values(monkeypatch, value, expected):
    monkeypatch.setenv("UNET_QUICK", value)
    assert env.quick_mode() is expected


def test_quick_mode_off_when_unset(monkeypatch):
    monkeypatch.delenv("UNET_QUICK", raising=False)
    assert env.quick_mode() is False


def test_profile(monkeypatch):
    monkeypatch.delenv("UNET_PROFILE", raising=False)
    monkeypatch.setenv("UNET_QUICK", "1")
    assert env.profile() == "quick"
    monkeypatch.setenv("UNET_QUICK", "0")
    assert env.profile() == ("full" if (env.accelerator() == "gpu") else "cpu")
    for name in env.PROFILES:
        monkeypatch.setenv("UNET_PROFILE", f" {name.upper()} ")
        assert env.profile() == name
    monkeypatch.setenv("UNET_PROFILE", "fast")
    with pytest.raises(ValueError, match="UNET_PROFILE='fast'.*full, cpu, quick"):
        env.profile()


def test_workshop_dir(not_colab, monkeypatch, tmp_path):
    assert env.workshop_dir() == env.REPO_ROOT
    monkeypatch.setenv("UNET_WORKSHOP_DIR", str(tmp_path / "ws"))
    assert env.workshop_dir() == tmp_path / "ws"


def test_strategy_on_cpu_is_default_and_cached(not_colab):
    strategy = env.get_strategy()
    assert strategy.num_replicas_in_sync == 1
    assert env.get_strategy() is strategy
    if TF:
        import tensorflow as tf

        assert isinstance(strategy, tf.distribute.Strategy)
        if not (env.accelerator() == "gpu"):
            assert strategy is tf.distribute.get_strategy()  # the default strategy, no TPU/Mirrored wrapper
    else:
        assert isinstance(strategy, env.JaxStrategy)
        if env.accelerator() == "cpu":
            assert strategy.distribution is None and strategy.platform == "cpu"


def test_precision_policy_and_devices():
    gpu = (env.accelerator() == "gpu")
    if TF:
        import tensorflow as tf

        assert gpu is (len(tf.config.list_physical_devices("GPU")) > 0)
    else:
        import jax

        assert gpu is (jax.devices()[0].platform == "gpu")
    assert env.policy_for(env.strategy_platform(env.get_strategy())) == ("mixed_float16" if gpu else "float32")
    assert env.device_summary().startswith("GPU" if gpu else "CPU")


def test_setup_prints_one_block(not_colab, capsys, monkeypatch):
    monkeypatch.setenv("UNET_QUICK", "1")
    monkeypatch.delenv("UNET_PROFILE", raising=False)
    strategy = env.setup(seed=3)
    out = capsys.readouterr().out
    assert strategy is env.get_strategy()
    assert env.version_line() in out and f"Keras {keras.__version__}" in out
    assert ("JAX" in out) is (not TF)
    assert f"strategy: {type(strategy).__name__}" in out
    assert f"precision: {env.policy_for(env.strategy_platform(env.get_strategy()))}" in out
    assert "profile: quick" in out
    assert len(out.strip().splitlines()) == 2
    env.setup(seed=3, verbose=False)
    assert capsys.readouterr().out == ""


def test_setup_seeding_is_reproducible():
    def draw():
        drawn = (random.random(), np.random.rand(), keras.ops.convert_to_numpy(keras.random.uniform((4,))))
        if env.has_tensorflow():  # seeded too: the tf.data pipeline draws from it
            import tensorflow as tf

            return (*drawn, float(tf.random.uniform(())))
        return (*drawn, 0.0)

    env.setup(seed=1, verbose=False)
    first = draw()
    env.setup(seed=1, verbose=False)
    second = draw()
    env.setup(seed=2, verbose=False)
    other = draw()
    assert first[0] == second[0] and first[1] == second[1]
    np.testing.assert_array_equal(first[2], second[2])
    assert first[3] == second[3]
    assert first[1] != other[1] and not np.array_equal(first[2], other[2])


def test_setup_makes_layer_initialisation_reproducible():
    def weights():
        layer = keras.layers.Conv2D(4, 3)
        layer.build((None, 8, 8, 1))
        return keras.ops.convert_to_numpy(layer.kernel)

    env.setup(seed=5, verbose=False)
    first = weights()
    env.setup(seed=5, verbose=False)
    np.testing.assert_array_equal(weights(), first)


def test_check_versions_passes_here():
    env.check_versions()


def test_check_versions_old_tensorflow(monkeypatch):
    tf = pytest.importorskip("tensorflow", reason="needs TensorFlow, which Colab's TPU runtime (CI's tpu stack) lacks")
    monkeypatch.setattr(tf, "__version__", "2.15.0")
    with pytest.raises(RuntimeError, match=r"TensorFlow 2\.15\.0 is too old.*>= 2\.19.*make test.*Colab"):
        env.check_versions()
    with pytest.raises(RuntimeError, match="2.15.0"):
        env.setup(seed=0, verbose=False)  # setup checks first


def test_check_versions_old_keras(monkeypatch):
    monkeypatch.setattr(keras, "__version__", "2.15.0")
    with pytest.raises(RuntimeError, match=r"Keras 2\.15\.0 is too old.*pip install 'keras>=3\.10'"):
        env.check_versions()


@pytest.mark.parametrize("version, expected", [("2.19.0", (2, 19)), ("2.20.0rc1", (2, 20)),
                                               ("3.10.0.dev2025", (3, 10)), ("2.9", (2, 9))])
def test_version_tuple(version, expected):
    assert env._version_tuple(version) == expected
    assert env._version_tuple("2.9.1") < (2, 19) <= env._version_tuple("2.19.0") < env._version_tuple("3")


# --- backends, precision and the Colab runtime plan (issue: TPU runtimes ship JAX, no TensorFlow)

@pytest.mark.parametrize("tpu, tensorflow, jax, requested, expected", [
    (False, True, False, None, "tensorflow"),   # Colab GPU/CPU runtime, a laptop
    (False, True, True, None, "tensorflow"),    # both installed: TensorFlow stays the default
    (True, False, True, None, "jax"),           # Colab TPU runtime: no TensorFlow
    (True, True, True, None, "jax"),            # a TPU always gets JAX
    (False, False, True, None, "jax"),          # TensorFlow missing
    (False, True, True, "jax", "jax"),          # KERAS_BACKEND wins
])
def test_choose_backend(tpu, tensorflow, jax, requested, expected):
    assert env._choose_backend(tpu, tensorflow, jax, requested) == expected


def test_choose_backend_without_any_names_the_fix():
    with pytest.raises(RuntimeError, match="Change runtime type.*make install"):
        env._choose_backend(tpu=False, tensorflow=False, jax=False)


def test_select_backend_reports_the_running_backend():
    assert env.select_backend() == keras.backend.backend() == env.backend()


@pytest.mark.parametrize("platform, mixed, expected", [
    ("tpu", True, "mixed_bfloat16"), ("gpu", True, "mixed_float16"), ("cpu", True, "float32"),
    ("gpu", False, "float32"), ("tpu", False, "float32")])
def test_policy_for(platform, mixed, expected):
    assert env.policy_for(platform, mixed) == expected


def test_strategy_platform_of_fake_strategies():
    assert env.strategy_platform(env.JaxStrategy(None, "tpu", 8)) == "tpu"


def test_jax_strategy_selects_data_parallel_for_several_devices():
    class Device:
        def __init__(self, i):
            self.id, self.platform = i, "tpu"

    one = env._jax_strategy([Device(0)])
    assert one.distribution is None and one.num_replicas_in_sync == 1 and one.platform == "tpu"
    with one.scope():
        pass
    if keras.backend.backend() != "jax":
        return
    import jax

    found = jax.devices()
    many = env._jax_strategy(found * 2 if len(found) == 1 else found)  # DataParallel needs 2+ entries
    assert isinstance(many.distribution, keras.distribution.DataParallel)
    assert many.num_replicas_in_sync >= 2


def test_jax_data_parallel_over_simulated_devices(tmp_path):
    """Two simulated CPU devices under JAX: the strategy is DataParallel and a model trains in its scope."""
    pytest.importorskip("jax")
    import subprocess
    import sys

    code = (
        "import numpy as np, keras\n"
        "from helpers import env, models\n"
        "s = env.get_strategy()\n"
        "assert s.num_replicas_in_sync == 2 and type(s.distribution).__name__ == 'DataParallel', s\n"
        "with s.scope():\n"
        "    m = models.build_unet((16, 16, 1), filters=2, num_layers=1)\n"
        "    m.compile(optimizer='adam', loss='binary_crossentropy', jit_compile=True)\n"
        "x = np.random.rand(4, 16, 16, 1).astype('float32')\n"
        "m.fit(x, (x > 0.5).astype('float32'), batch_size=4, epochs=1, verbose=0)\n"
        "print('ok', type(s.distribution).__name__, s.platform, s.num_replicas_in_sync)\n")
    env_vars = {**__import__("os").environ, "KERAS_BACKEND": "jax",
                "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env_vars,
                          cwd=env.REPO_ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ok DataParallel cpu 2" in done.stdout


BIOIMAGEIO = ("bioimageio.core==0.11.0", "pydantic>=2.10.3,<2.14")  # what a notebook may pass as extra


@pytest.mark.parametrize("tpu, installed, backend, extra, wanted, says", [
    (False, {"tensorflow", "keras_unet"}, "tensorflow", (), [], "Keras on TensorFlow; nothing to install."),
    (False, {"tensorflow"}, None, (), ["keras-unet==0.1.2"], "Keras on TensorFlow; installing keras-unet==0.1.2."),
    (False, {"tensorflow"}, None, BIOIMAGEIO, ["keras-unet==0.1.2", *BIOIMAGEIO],
     "Keras on TensorFlow; installing keras-unet==0.1.2, bioimageio.core==0.11.0"),
    (True, {"jax"}, "jax", (), ["keras-unet==0.1.2"], "TPU runtime: Keras on JAX (no TensorFlow"),
    (True, {"jax", "keras_unet"}, None, BIOIMAGEIO, list(BIOIMAGEIO), "TPU runtime: Keras on JAX"),
    (False, {"jax", "tensorflow", "keras_unet"}, "jax", (), [], "Keras on JAX; nothing"),
])
def test_runtime_plan(tpu, installed, backend, extra, wanted, says):
    planned, message = env._runtime_plan(tpu, installed, backend, extra)
    assert planned == wanted and message.startswith(says)
    assert not any("tensorflow" in item for item in planned)  # TensorFlow is never (re)installed


@pytest.mark.parametrize("tpu, installed, backend, error", [
    (False, set(), None, "neither TensorFlow nor JAX.*Change runtime type"),
    (True, {"jax", "tensorflow"}, "tensorflow", "TPU runtime needs Keras on JAX.*Restart session"),
    (False, {"jax"}, "torch", "KERAS_BACKEND='torch' is not supported"),
    (False, {"jax"}, "tensorflow", "tensorflow is not installed.*Change runtime type"),
])
def test_runtime_plan_refuses_with_the_fix(tpu, installed, backend, error):
    with pytest.raises(RuntimeError, match=error):
        env._runtime_plan(tpu, installed, backend)


@pytest.fixture
def fake_runtime(monkeypatch):
    """A Colab runtime with the importable modules in ``present`` (set it) and a recording pip."""
    import importlib.util

    real, present, calls = importlib.util.find_spec, set(), []
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name in present else
                        (None if name in ("tensorflow", "jax", "keras_unet", "libtpu") else real(name, *a)))
    monkeypatch.delenv("TPU_ACCELERATOR_TYPE", raising=False)

    class Done:
        returncode, stderr = 0, ""

    return present, calls, lambda command, **kw: calls.append(command) or Done()


def test_prepare_colab_installs_only_keras_unet_by_default(fake_runtime, monkeypatch, capsys):
    present, calls, run = fake_runtime
    present.update({"jax", "libtpu"})
    monkeypatch.setattr(env, "select_backend", lambda: "jax")
    message = env.prepare_colab(run=run)
    assert message.startswith("TPU runtime: Keras on JAX") and capsys.readouterr().out.strip() == message
    assert calls == [[sys.executable, "-m", "pip", "install", "-q", "keras-unet==0.1.2"]]


def test_prepare_colab_installs_the_extra_requirements(fake_runtime, monkeypatch):
    present, calls, run = fake_runtime
    present.update({"tensorflow", "keras_unet"})
    monkeypatch.setattr(env, "select_backend", lambda: "tensorflow")
    message = env.prepare_colab(extra=BIOIMAGEIO, run=run)
    assert calls[0][-2:] == list(BIOIMAGEIO) and "keras-unet" not in " ".join(calls[0])
    assert message == "Keras on TensorFlow; installing bioimageio.core==0.11.0, pydantic>=2.10.3,<2.14."
    calls.clear()
    env.prepare_colab(extra="bioimageio.core==0.11.0", run=run)  # one requirement as a plain string
    assert calls[0][-1] == "bioimageio.core==0.11.0"
    calls.clear()
    assert env.prepare_colab(run=run) == "Keras on TensorFlow; nothing to install." and calls == []


@pytest.mark.parametrize("extra", [("tensorflow==2.20",), ("keras>=3",), ("jax[tpu]",), "tensorflow"])
def test_prepare_colab_never_installs_tensorflow_jax_or_keras(fake_runtime, extra):
    present, calls, run = fake_runtime
    present.add("tensorflow")
    with pytest.raises(ValueError, match=r"extra=.*leave them out"):
        env.prepare_colab(extra=extra, run=run)
    assert calls == []


def test_prepare_colab_failure_is_one_line(fake_runtime, monkeypatch):
    present, calls, run = fake_runtime
    with pytest.raises(SystemExit, match="neither TensorFlow nor JAX.*Change runtime type"):
        env.prepare_colab(run=run)

    class Failed:
        returncode, stderr = 1, "no network"

    present.add("tensorflow")
    monkeypatch.setattr(env, "select_backend", lambda: "tensorflow")
    with pytest.raises(SystemExit, match="Could not install keras-unet.*no network"):
        env.prepare_colab(run=lambda *a, **k: Failed())


def test_export_requirements_left_the_core():
    assert not hasattr(env, "EXPORT_REQUIREMENTS")  # the toolkit's export module names what it needs
    assert inspect.signature(env.prepare_colab).parameters["extra"].default == ()


def test_apply_profile_changes_only_the_profile_settings(capsys):
    settings = {"FILTERS": 64, "EPOCHS": 20, "SEED": 42}
    overrides = dict(cpu=dict(FILTERS=16, EPOCHS=10), quick=dict(FILTERS=8, EPOCHS=2))
    assert env.apply_profile(settings, "full", **overrides) == "full"
    assert settings == {"FILTERS": 64, "EPOCHS": 20, "SEED": 42}
    assert capsys.readouterr().out.strip() == "profile 'full': the workshop's settings, unchanged."
    assert env.apply_profile(settings, "cpu", **overrides) == "cpu"
    assert settings == {"FILTERS": 16, "EPOCHS": 10, "SEED": 42}
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [out[0]] and "FILTERS 64 -> 16, EPOCHS 20 -> 10" in out[0] and "NOT what U-Net reaches" in out[0]
    env.apply_profile(settings, "quick", **overrides)
    assert "smoke test" in capsys.readouterr().out and settings["FILTERS"] == 8


def test_apply_profile_refuses_unknown_names(monkeypatch):
    with pytest.raises(ValueError, match="no setting named FILTRES"):
        env.apply_profile({"FILTERS": 64}, "cpu", cpu=dict(FILTRES=16))
    with pytest.raises(ValueError, match=r"profile 'laptop' \(profile_name, or an override's keyword\)"):
        env.apply_profile({"FILTERS": 64}, "cpu", laptop=dict(FILTERS=16))
    with pytest.raises(ValueError, match=r"profile 'fast' \(profile_name.*full, cpu, quick"):
        env.apply_profile({"FILTERS": 64}, "fast", cpu=dict(FILTERS=16))
    monkeypatch.setenv("UNET_PROFILE", "quick")
    assert env.apply_profile({"FILTERS": 64}, cpu=dict(FILTERS=16)) == "quick"  # default: env.profile()
