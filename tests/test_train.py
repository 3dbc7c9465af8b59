"""Tests for helpers.train: compile (precision, XLA, optimizers), fit with checkpoints, resume."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest

from helpers import train

SIZE = 32


def tiny_unet() -> keras.Model:
    """A 4-filter encoder-decoder with a sigmoid output: enough to exercise training."""
    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    skip = x
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    x = keras.layers.UpSampling2D()(x)
    x = keras.layers.Concatenate()([x, skip])
    outputs = keras.layers.Conv2D(1, 1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name="tiny")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.random((8, SIZE, SIZE, 1), dtype=np.float32)
    y = (x > 0.6).astype(np.float32)  # learnable: membrane where bright
    return x, y


def compiled(**kwargs) -> keras.Model:
    kwargs.setdefault("loss", "binary_crossentropy")
    return train.compile_model(tiny_unet, learning_rate=1e-2, seed=0, **kwargs)


def csv_epochs(run_dir) -> list[int]:
    with open(run_dir / "history.csv", newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def test_compile_on_cpu_is_float32_without_xla():
    model = compiled(metrics=["accuracy"])
    assert keras.mixed_precision.global_policy().name == "float32"
    assert model.jit_compile is (keras.backend.backend() == "jax")  # never off under JAX
    assert model.output.dtype == "float32"
    assert model.layers[-1].dtype_policy.name == "float32"
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert np.isclose(float(model.optimizer.learning_rate), 1e-2)


def test_seed_makes_initial_weights_reproducible():
    a, b = compiled(), compiled()
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_sgd_momentum_and_optimizer_instance():
    sgd = compiled(optimizer="sgd")
    assert isinstance(sgd.optimizer, keras.optimizers.SGD)
    assert np.isclose(float(sgd.optimizer.momentum), 0.99)
    rms = keras.optimizers.RMSprop(3e-4)
    assert compiled(optimizer=rms).optimizer is rms
    with pytest.raises(ValueError, match="Unknown optimizer"):
        compiled(optimizer="adamw_typo")


def test_mixed_precision_output_is_float32_and_policy_restored(data):
    before = keras.mixed_precision.global_policy().name
    model = compiled(mixed_precision=True)
    assert keras.mixed_precision.global_policy().name == before == "float32"
    assert model.layers[1].dtype_policy.name == "mixed_float16"  # first conv computes in float16
    assert model.layers[-1].name == "float32_output"
    assert model.output.dtype == "float32"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    prediction = model.predict(data[0][:2], verbose=0)
    assert prediction.dtype == np.float32 and prediction.shape == (2, SIZE, SIZE, 1)


def test_policy_restored_when_build_fails():
    def broken():
        raise RuntimeError("build failed")

    with pytest.raises(RuntimeError, match="build failed"):
        train.compile_model(broken, loss="binary_crossentropy", mixed_precision=True)
    assert keras.mixed_precision.global_policy().name == "float32"


def test_fit_writes_checkpoints_and_history(tmp_path, data):
    x, y = data
    run = tmp_path / "run"
    model, history = train.fit(compiled(), (x, y), validation_data=(x[:2], y[:2]), epochs=2,
                               run_dir=run, verbose=0)
    for name in ("best.keras", "last.keras", "history.csv"):
        assert (run / name).is_file(), name
    assert not [p.name for p in run.iterdir() if ".tmp" in p.name]  # no temporary leftovers
    assert csv_epochs(run) == [0, 1]
    assert set(history) >= {"loss", "val_loss"} and len(history["loss"]) == 2
    last = keras.models.load_model(run / "last.keras")
    np.testing.assert_allclose(last.predict(x[:2], verbose=0), model.predict(x[:2], verbose=0),
                               atol=1e-6)


def test_fit_resume_continues_epochs(tmp_path, data):
    x, y = data
    run = tmp_path / "run"
    _, first = train.fit(compiled(), (x, y), validation_data=(x[:2], y[:2]), epochs=2,
                         run_dir=run, verbose=0)
    saved_iterations = int(keras.models.load_model(run / "last.keras").optimizer.iterations)
    model, history = train.fit(None, (x, y), validation_data=(x[:2], y[:2]), epochs=4,
                               run_dir=run, resume=True, verbose=0)
    assert csv_epochs(run) == [0, 1, 2, 3]
    assert len(history["loss"]) == len(history["val_loss"]) == 4
    assert history["loss"][:2] == pytest.approx(first["loss"])  # earlier session kept
    # optimizer state came back from last.keras: step counter continued (batch 32 -> 1 step/epoch)
    assert int(model.optimizer.iterations) == saved_iterations + 2
    # nothing left to do: no training, same history
    _, again = train.fit(None, (x, y), epochs=4, run_dir=run, resume=True, verbose=0)
    assert csv_epochs(run) == [0, 1, 2, 3] and len(again["loss"]) == 4


def test_resume_without_checkpoint_raises(tmp_path, data):
    with pytest.raises(FileNotFoundError, match="last.keras"):
        train.fit(compiled(), data, epochs=1, run_dir=tmp_path / "empty", resume=True, verbose=0)
    with pytest.raises(ValueError, match="run_dir"):
        train.fit(compiled(), data, epochs=1, resume=True, verbose=0)


def test_fit_without_validation_monitors_training_loss(tmp_path, data):
    x, y = data
    run = tmp_path / "run"
    _, history = train.fit(compiled(), (x, y), epochs=2, steps_per_epoch=2, run_dir=run, verbose=0)
    assert (run / "best.keras").is_file()
    assert not any(key.startswith("val_") for key in history)  # CSVLogger's NA columns dropped
    assert len(history["loss"]) == 2


def test_best_checkpoint_follows_monitor_mode(tmp_path):
    model = compiled()
    best = train.AtomicCheckpoint(tmp_path / "best.keras", monitor="val_iou")
    assert best.mode == "max"  # IoU: larger is better (Keras' "auto" would pick min)
    assert train.AtomicCheckpoint(tmp_path / "b.keras", monitor="val_jaccard_loss").mode == "min"
    best.set_model(model)
    best.on_epoch_end(0, {"val_iou": 0.5})
    stamp = (tmp_path / "best.keras").stat().st_mtime_ns
    best.on_epoch_end(1, {"val_iou": 0.4})  # worse: file untouched
    assert (tmp_path / "best.keras").stat().st_mtime_ns == stamp and best.best == 0.5
    best.on_epoch_end(2, {"val_iou": 0.7})
    assert best.best == 0.7
    with pytest.raises(ValueError, match="not logged"):
        best.on_epoch_end(3, {"loss": 0.1})


def test_images_per_second_callback(data):
    x, y = data
    speed = train.ImagesPerSecond(batch_size=4)
    compiled().fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[speed])
    assert len(speed.epoch_seconds) == len(speed.images_per_second) == 2
    expected = 8 / np.array(speed.epoch_seconds)  # 2 steps x 4 images per epoch
    np.testing.assert_allclose(speed.images_per_second, expected)


def test_best_keras_holds_best_epoch_with_workshop_loss_and_metric(tmp_path, data):
    losses = pytest.importorskip("helpers.losses")
    metrics = pytest.importorskip("helpers.metrics")
    x, y = data
    val = (x[:2], y[:2])
    run = tmp_path / "run"
    model = compiled(loss=losses.bce_jaccard_loss, metrics=[metrics.iou])
    train.fit(model, (x, y), validation_data=val, epochs=3, batch_size=4, run_dir=run,
              monitor="val_iou", verbose=0)
    _, history = train.fit(None, (x, y), validation_data=val, epochs=4, batch_size=4, run_dir=run,
                           monitor="val_iou", resume=True, verbose=0)
    best = keras.models.load_model(run / "best.keras")  # custom loss/metric reload by name
    scores = best.evaluate(*val, verbose=0, return_dict=True)
    assert len(set(history["val_iou"])) > 1  # the epochs differ, so the choice matters
    assert scores["iou"] == pytest.approx(max(history["val_iou"]), abs=1e-5)


def test_jit_setting_per_backend():
    assert train.jit_setting("tensorflow", "cpu") is False
    assert train.jit_setting("tensorflow", "gpu") == "auto"
    assert train.jit_setting("tensorflow", "cpu", True) is True
    assert train.jit_setting("jax", "cpu") is True and train.jit_setting("jax", "tpu", "auto") is True
    with pytest.raises(ValueError, match="uncompiled.*leave jit_compile=None"):
        train.jit_setting("jax", "cpu", False)
