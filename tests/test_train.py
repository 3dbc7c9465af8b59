"""Tests for helpers.train: compile (precision, XLA, optimizers), fit with checkpoints (the Drive policy), resume."""

from __future__ import annotations

import csv
import math

import keras
import numpy as np
import pytest

from helpers import train
from helpers.runs import load_history

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
    assert np.isclose(float(compiled(optimizer="sgd", momentum=0.9).optimizer.momentum), 0.9)
    with pytest.raises(ValueError, match="optimizer='adamw_typo' is unknown"):
        compiled(optimizer="adamw_typo")


def test_momentum_only_for_sgd():
    """Adam used to ignore momentum=0.99 silently; now the parameter is named and refused."""
    with pytest.raises(ValueError, match="momentum=0.99 is an SGD parameter"):
        compiled(optimizer="adam", momentum=0.99)
    with pytest.raises(ValueError, match="momentum=0.9 is an SGD parameter.*optimizer instance"):
        compiled(optimizer=keras.optimizers.RMSprop(1e-3), momentum=0.9)


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
    train.fit(compiled(), data, epochs=1, run_dir=tmp_path / "compare", resume_state=False, verbose=0)
    with pytest.raises(FileNotFoundError, match="resume_state=True keeps last.keras"):
        train.fit(None, data, epochs=2, run_dir=tmp_path / "compare", resume=True, verbose=0)


def test_fit_without_validation_monitors_training_loss(tmp_path, data):
    x, y = data
    run = tmp_path / "run"
    _, history = train.fit(compiled(), (x, y), epochs=2, steps_per_epoch=2, run_dir=run, verbose=0)
    assert (run / "best.keras").is_file()
    assert not any(key.startswith("val_") for key in history)  # CSVLogger's NA columns dropped
    assert len(history["loss"]) == 2


def test_best_checkpoint_keeps_the_lowest_loss(tmp_path):
    best = train._Checkpoints(tmp_path, seconds=math.inf)
    best.set_model(compiled())
    best.on_train_begin()
    best.on_epoch_end(0, {"loss": 0.1, "val_loss": 0.5})
    kept = best.best
    best.on_epoch_end(1, {"loss": 0.05, "val_loss": 0.6})  # worse validation loss: weights in memory kept
    assert best.best is kept and best.lowest == 0.5
    best.on_epoch_end(2, {"val_loss": float("nan")})  # NaN never counts as better
    assert best.lowest == 0.5
    best.on_epoch_end(3, {"val_loss": 0.3})
    assert best.lowest == 0.3 and best.best is not kept
    assert not list(tmp_path.iterdir())  # nothing written before the interval or the end
    best.on_train_end()
    assert {p.name for p in tmp_path.iterdir()} == {"best.keras", "last.keras", "history.csv"}
    assert csv_epochs(tmp_path) == [0, 1, 2, 3]


def test_images_per_second_callback(data):
    x, y = data
    speed, steps = train.ImagesPerSecond(batch_size=4), train.ImagesPerSecond()
    compiled().fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[speed, steps])
    assert len(speed.epoch_seconds) == len(speed.images_per_second) == 2
    expected = 8 / np.array(speed.epoch_seconds)  # 2 steps x 4 images per epoch
    np.testing.assert_allclose(speed.images_per_second, expected)
    assert len(steps.epoch_seconds) == 2 and steps.images_per_second == []


def test_callbacks_for_model_fit_checkpoint_and_resume(tmp_path, data):
    """The learner's path: model.fit(..., callbacks=train.callbacks(run_dir)) leaves the same run folder."""
    x, y = data
    run = tmp_path / "run"
    assert [type(c).__name__ for c in train.callbacks()] == ["ImagesPerSecond"]
    model = compiled(metrics=["accuracy"])
    found = train.callbacks(run, batch_size=4)
    assert [type(c).__name__ for c in found] == ["ImagesPerSecond", "_Checkpoints"]
    model.fit(x, y, batch_size=4, validation_data=(x[:2], y[:2]), epochs=2, verbose=0, callbacks=found)
    assert {p.name for p in run.iterdir()} == {"best.keras", "last.keras", "history.csv"}
    assert csv_epochs(run) == [0, 1] and len(found[0].images_per_second) == 2
    again = train.callbacks(run, resume=True)
    history = load_history(run)
    assert again[1].lowest == min(history["val_loss"])
    model.fit(x, y, batch_size=4, validation_data=(x[:2], y[:2]), epochs=3, initial_epoch=2, verbose=0,
              callbacks=again)
    assert csv_epochs(run) == [0, 1, 2]


def test_checkpoint_without_validation_falls_back_to_the_training_value(tmp_path, data):
    x, y = data
    model = compiled()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=train.callbacks(tmp_path / "run"))
    assert (tmp_path / "run" / "best.keras").is_file()


def test_best_keras_holds_best_epoch_and_reloads_without_custom_objects(tmp_path, data):
    losses = pytest.importorskip("helpers.losses")
    metrics = pytest.importorskip("helpers.metrics")
    x, y = data
    val = (x[:2], y[:2])
    run = tmp_path / "run"
    model = compiled(loss=losses.WeightedBCE(jaccard=1.0), metrics=[metrics.iou])
    train.fit(model, (x, y), validation_data=val, epochs=3, batch_size=4, run_dir=run, verbose=0)
    _, history = train.fit(None, (x, y), validation_data=val, epochs=4, batch_size=4, run_dir=run,
                           resume=True, verbose=0)
    best = keras.models.load_model(run / "best.keras")  # weights and architecture: nothing custom to find
    assert not best.compiled and getattr(best, "optimizer", None) is None
    adam_moments = 2 * 4 * best.count_params()  # bytes of Adam's two float32 moments, in last.keras only
    assert (run / "last.keras").stat().st_size - (run / "best.keras").stat().st_size >= adam_moments
    best.compile(loss=losses.WeightedBCE(jaccard=1.0))
    assert len(set(history["val_loss"])) > 1  # the epochs differ, so the choice matters
    assert best.evaluate(*val, verbose=0) == pytest.approx(min(history["val_loss"]), abs=1e-5)


def fit_with_clock(model, data, run, epochs, minutes_per_epoch=1.0, stop_after=None, **kwargs):
    """model.fit with train.callbacks(run, ...) on a fake clock that advances each epoch; optionally interrupted."""
    x, y = data
    now = [0.0]
    found = train.callbacks(run, **kwargs)
    found[-1].clock = lambda: now[0]

    class Tick(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            now[0] += 60 * minutes_per_epoch

    class Disconnect(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == stop_after:
                raise KeyboardInterrupt  # as a lost Colab session: no on_train_end

    model.fit(x, y, batch_size=4, validation_data=(x[:2], y[:2]), epochs=epochs, verbose=0,
              callbacks=[Tick(), *found, Disconnect()])
    return train.checkpoint_sizes(run)


def writes(run, name) -> int:
    return train._WRITTEN.get((run / name).resolve(), [0])[0]


def test_checkpoint_policy_writes_per_interval_and_at_the_end(tmp_path, data):
    """The Drive policy: best (weights only) and last (full state) at most once per interval and at the end."""
    once, every, compare = tmp_path / "once", tmp_path / "every", tmp_path / "compare"
    sizes = fit_with_clock(compiled(), data, once, epochs=5, save_every_minutes=60)
    assert {p.name for p in once.iterdir()} == {"best.keras", "last.keras", "history.csv"}  # nothing else
    assert [writes(once, name) for name in ("best.keras", "last.keras", "history.csv")] == [1, 1, 1]
    assert sizes["best.keras written"] == sizes["best.keras kept"] > 0
    assert sizes["written"] == sizes["kept"] == sum(p.stat().st_size for p in once.iterdir())
    # 2 minutes between writes, 1 minute per epoch: after epochs 2 and 4, and at the end (epoch 5)
    sizes = fit_with_clock(compiled(), data, every, epochs=5, save_every_minutes=2)
    assert writes(every, "last.keras") == writes(every, "history.csv") == 3
    assert 1 <= writes(every, "best.keras") <= 3
    assert sizes["last.keras written"] == pytest.approx(3 * sizes["last.keras kept"], rel=0.01)
    assert csv_epochs(every) == [0, 1, 2, 3, 4]
    fit_with_clock(compiled(), data, compare, epochs=2, save_every_minutes=0, resume_state=False)
    assert {p.name for p in compare.iterdir()} == {"best.keras", "history.csv"}  # a comparison: nothing to resume
    assert writes(compare, "history.csv") == 2  # 0 minutes: every epoch
    whole = train.checkpoint_sizes(tmp_path)  # a folder of runs: each file by relative path, and the totals
    assert whole["kept"] == sum(train.checkpoint_sizes(run)["kept"] for run in (once, every, compare))
    assert whole["every/last.keras written"] == sizes["last.keras written"]
    with pytest.raises(ValueError, match="save_every_minutes=-1 must be >= 0"):
        train.callbacks(tmp_path, save_every_minutes=-1)


def test_resume_after_a_disconnect_redoes_the_epochs_since_the_last_save(tmp_path, data):
    x, y = data
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):  # saves after epochs 2 and 4; the session dies after epoch 3
        fit_with_clock(compiled(), data, run, epochs=6, save_every_minutes=2, stop_after=3)
    assert csv_epochs(run) == [0, 1]  # history.csv agrees with last.keras: epoch 3 is redone
    saved = keras.models.load_model(run / "last.keras")
    assert int(saved.optimizer.iterations) == 2 * 2  # 2 epochs of 2 steps
    model, history = train.fit(None, (x, y), validation_data=(x[:2], y[:2]), epochs=5, batch_size=4,
                               run_dir=run, resume=True, verbose=0)
    assert csv_epochs(run) == [0, 1, 2, 3, 4] and len(history["val_loss"]) == 5
    assert int(model.optimizer.iterations) == 5 * 2  # continued from the saved state, not from epoch 3
    np.testing.assert_allclose(keras.models.load_model(run / "last.keras").predict(x[:2], verbose=0),
                               model.predict(x[:2], verbose=0), atol=1e-6)


def test_save_model_keeps_weights_without_optimizer_state(tmp_path, data):
    x, y = data
    model = compiled()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    path = train.save_model(model, tmp_path / "unet.keras")
    loaded = keras.models.load_model(path)
    assert not loaded.compiled and writes(tmp_path, "unet.keras") == 1
    np.testing.assert_allclose(loaded.predict(x[:2], verbose=0), model.predict(x[:2], verbose=0), atol=1e-6)


def test_jit_compile_per_backend():
    jax = keras.backend.backend() == "jax"
    assert compiled().jit_compile is jax  # off on a TensorFlow CPU, never off under JAX
    assert compiled(jit_compile=True).jit_compile is True
    if jax:
        with pytest.raises(ValueError, match="uncompiled.*leave jit_compile=None"):
            compiled(jit_compile=False)
    else:
        assert compiled(jit_compile=False).jit_compile is False
