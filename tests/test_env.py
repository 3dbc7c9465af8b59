"""Tests for helpers.env outside Colab: quick mode, folders, strategy, precision, seeding, version guard."""

from __future__ import annotations

import random
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import env


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
    assert env.profile() == ("full" if env.has_gpu() else "cpu")
    for name in env.PROFILES:
        monkeypatch.setenv("UNET_PROFILE", f" {name.upper()} ")
        assert env.profile() == name
    monkeypatch.setenv("UNET_PROFILE", "fast")
    with pytest.raises(ValueError, match="UNET_PROFILE='fast'.*full, cpu, quick"):
        env.profile()


def test_mount_drive_outside_colab_returns_repo(not_colab):
    root = env.mount_drive()
    assert root == env.REPO_ROOT
    assert (root / "helpers" / "env.py").is_file()


def test_workshop_dir(not_colab, monkeypatch, tmp_path):
    assert env.workshop_dir() == env.REPO_ROOT
    monkeypatch.setenv("UNET_WORKSHOP_DIR", str(tmp_path / "ws"))
    assert env.workshop_dir() == tmp_path / "ws"


def test_strategy_on_cpu_is_default_and_cached(not_colab):
    strategy = env.get_strategy()
    assert isinstance(strategy, tf.distribute.Strategy)
    assert strategy.num_replicas_in_sync == 1
    assert env.get_strategy() is strategy
    if not env.has_gpu():
        assert strategy is tf.distribute.get_strategy()  # the default strategy, no TPU/Mirrored wrapper


def test_precision_policy_and_devices():
    gpu = env.has_gpu()
    assert gpu is (len(tf.config.list_physical_devices("GPU")) > 0)
    assert env.mixed_precision_policy() == ("mixed_float16" if gpu else "float32")
    assert env.device_summary().startswith("GPU" if gpu else "CPU")


def test_setup_prints_one_block(not_colab, capsys, monkeypatch):
    monkeypatch.setenv("UNET_QUICK", "1")
    monkeypatch.delenv("UNET_PROFILE", raising=False)
    strategy = env.setup(seed=3)
    out = capsys.readouterr().out
    assert strategy is env.get_strategy()
    assert f"TensorFlow {tf.__version__}" in out and f"Keras {keras.__version__}" in out
    assert f"strategy: {type(strategy).__name__}" in out
    assert f"precision: {env.mixed_precision_policy()}" in out
    assert "profile: quick" in out
    assert len(out.strip().splitlines()) == 2
    env.setup(seed=3, verbose=False)
    assert capsys.readouterr().out == ""


def test_setup_seeding_is_reproducible():
    def draw():
        return (random.random(), np.random.rand(), keras.ops.convert_to_numpy(keras.random.uniform((4,))),
                float(tf.random.uniform(())))

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
                                               ("3.10.0.dev2025", (3, 10)), ("3", (3, 0))])
def test_version_tuple(version, expected):
    assert env._version_tuple(version) == expected
