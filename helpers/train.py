"""Compile and train segmentation models: strategy, mixed precision, checkpoints, resume.

Two calls cover a workshop training run::

    model = train.compile_model(lambda: models.build_unet((256, 256, 1), filters=16),
                                loss=losses.bce_jaccard_loss, metrics=[metrics.iou])
    model, history = train.fit(model, train_ds, validation_data=(x_val, y_val), epochs=20,
                               steps_per_epoch=50, run_dir=env.workshop_dir() / "runs" / "unet")

With ``run_dir`` a run leaves three files behind (on Google Drive in Colab, so a disconnected
runtime loses at most the epoch in progress):

``best.keras``
    the model at the epoch with the best ``monitor`` value (``val_loss`` by default);
``last.keras``
    the model after the latest epoch, optimizer state included, used by ``resume=True``;
``history.csv``
    one row per epoch (Keras' ``CSVLogger``), read back by :func:`helpers.runs.load_history`.

Checkpoints are written to a temporary file next to the target and renamed over it only once
complete, so an interrupted save never leaves a corrupt ``.keras`` file behind.

Examples
--------
>>> model = compile_model(lambda: my_unet(), loss="binary_crossentropy")   # doctest: +SKIP
>>> model, history = fit(model, (x, y), epochs=2, run_dir="runs/demo")     # doctest: +SKIP
>>> model, history = fit(None, (x, y), epochs=4, run_dir="runs/demo", resume=True)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import keras

from helpers import env, files, models
from helpers.runs import load_history

#: Substrings of metric names that are better when larger (``mode="auto"`` picks "max" for them).
MAXIMISED = ("acc", "iou", "io_u", "dice", "auc", "precision", "recall", "f1")


# --------------------------------------------------------------------------------------------
# compile


def _policy_name(mixed_precision: bool | str | None, strategy) -> str:
    if isinstance(mixed_precision, str):
        return mixed_precision
    platform = env.strategy_platform(strategy)
    if mixed_precision is None:
        return env.policy_for(platform)
    return env.policy_for("gpu" if platform == "cpu" else platform, bool(mixed_precision))


def jit_setting(backend: str, platform: str, jit_compile: bool | str | None = None) -> bool | str:
    """The ``jit_compile`` that ``model.compile`` gets: never off under JAX, off on a TF CPU.

    Under TensorFlow on a CPU, XLA (``jit_compile=True``) made training about 1.4x slower here, so
    it is off; on an accelerator Keras' ``"auto"`` decides. Under JAX ``jit_compile=False`` means
    no compilation at all (a fit ran about 3x slower), so JAX always gets ``True``.

    Examples
    --------
    >>> jit_setting("tensorflow", "cpu"), jit_setting("tensorflow", "gpu"), jit_setting("jax", "cpu")
    (False, 'auto', True)
    >>> jit_setting("jax", "cpu", jit_compile=False)
    Traceback (most recent call last):
    ...
    ValueError: jit_compile=False under the JAX backend runs every step uncompiled (about 3x slower); leave jit_compile=None.
    """
    if backend == "jax":
        if jit_compile is False:
            raise ValueError("jit_compile=False under the JAX backend runs every step uncompiled "
                             "(about 3x slower); leave jit_compile=None.")
        return True
    if jit_compile is None:
        return "auto" if platform in ("gpu", "tpu") else False
    return jit_compile


def _make_optimizer(optimizer: str | keras.optimizers.Optimizer, learning_rate: float,
                    momentum: float) -> keras.optimizers.Optimizer:
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    name = str(optimizer).lower()
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum)
    raise ValueError(f"Unknown optimizer {optimizer!r}: pass 'adam', 'sgd' or a keras.optimizers "
                     f"instance, e.g. keras.optimizers.RMSprop(1e-4).")


def compile_model(
    build_fn: Callable[[], keras.Model],
    *,
    loss: str | Callable,
    optimizer: str | keras.optimizers.Optimizer = "adam",
    learning_rate: float = 1e-4,
    momentum: float = 0.99,
    metrics: Iterable | None = None,
    strategy=None,
    mixed_precision: bool | str | None = None,
    jit_compile: bool | str | None = None,
    seed: int | None = None,
) -> keras.Model:
    """Build a model with ``build_fn()`` inside the distribution strategy and compile it.

    The global Keras dtype policy is set to the chosen precision just before ``build_fn()`` runs
    and restored afterwards (also on error): layers keep the policy they were created with, so
    the model trains in mixed precision while models built later in the notebook are not
    silently affected. Under mixed precision the model's output is cast to float32 (a linear
    ``Activation`` with ``dtype="float32"`` is appended when the last layer is not float32),
    so losses and metrics are computed in float32; Keras wraps the optimizer in a
    ``LossScaleOptimizer`` by itself.

    Parameters
    ----------
    build_fn
        Function with no arguments returning an uncompiled model (a functional model, or any
        model whose last layer computes in float32).
    loss
        Loss function or Keras loss name, e.g. ``losses.bce_jaccard_loss`` or
        ``"binary_crossentropy"``.
    optimizer
        ``"adam"``, ``"sgd"`` (with ``momentum``, the workshop's comparison) or an optimizer
        instance (then ``learning_rate`` and ``momentum`` are ignored).
    learning_rate, momentum
        Used when ``optimizer`` is a name.
    metrics
        Metrics to report, e.g. ``[metrics.iou, metrics.dice]``.
    strategy
        Defaults to :func:`helpers.env.get_strategy` (TPU, several GPUs or the default; under
        JAX a :class:`helpers.env.JaxStrategy`).
    mixed_precision
        ``None``: :func:`helpers.env.mixed_precision_policy` (mixed float16 on a GPU, bfloat16 on
        a TPU, float32 on a CPU); ``True``/``False``; or a policy name such as ``"mixed_bfloat16"``.
    jit_compile
        ``None``: :func:`jit_setting` (TF: off on a CPU, where XLA made training about 1.4x
        slower here, ``"auto"`` on an accelerator; JAX: always on).
    seed
        When given, ``keras.utils.set_random_seed(seed)`` runs before building, so the initial
        weights are reproducible.

    Returns
    -------
    keras.Model
        The compiled model.

    Examples
    --------
    >>> model = compile_model(lambda: models.build_unet((64, 64, 1), filters=8),
    ...                       loss="binary_crossentropy", metrics=["accuracy"])  # doctest: +SKIP
    >>> model.output.dtype                                                    # doctest: +SKIP
    'float32'
    """
    strategy = strategy or env.get_strategy()
    jit_compile = jit_setting(env.backend(), env.strategy_platform(strategy), jit_compile)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(_policy_name(mixed_precision, strategy))
    try:
        with strategy.scope():
            model = models.float32_outputs(build_fn())
            model.compile(optimizer=_make_optimizer(optimizer, learning_rate, momentum),
                          loss=loss, metrics=list(metrics or []), jit_compile=jit_compile)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return model


# --------------------------------------------------------------------------------------------
# callbacks


def _mode(monitor: str, mode: str) -> str:
    if mode in ("min", "max"):
        return mode
    if mode != "auto":
        raise ValueError(f"mode={mode!r}: use 'auto', 'min' or 'max'.")
    name = monitor.lower()
    return "max" if "loss" not in name and any(s in name for s in MAXIMISED) else "min"


class AtomicCheckpoint(keras.callbacks.Callback):
    """Save the whole model (``.keras``) after every epoch, or only when ``monitor`` improves.

    The model is written to a temporary file in the same folder and renamed over ``path`` once
    complete (:func:`helpers.files.atomic_path`), so ``path`` always holds a complete model; Keras'
    ``ModelCheckpoint`` (right ``mode`` or not) writes in place, so a disconnect mid-save leaves a
    corrupt file.

    Parameters
    ----------
    path
        Target ``.keras`` file.
    monitor
        Logged value to watch (``"val_loss"``, ``"val_iou"``, ...); ``None`` saves every epoch.
    mode
        ``"min"``, ``"max"`` or ``"auto"`` (max for names containing acc/iou/dice/auc/...).
    best
        Best value seen so far (when resuming), so a worse epoch does not overwrite the file.

    Examples
    --------
    >>> cb = AtomicCheckpoint("runs/demo/best.keras", monitor="val_loss")  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike, monitor: str | None = None, mode: str = "auto",
                 best: float | None = None):
        super().__init__()
        self.path = Path(path)
        if self.path.suffix != ".keras":
            raise ValueError(f"Checkpoint {self.path} must end in .keras (Keras 3 model format).")
        self.monitor = monitor
        self.mode = _mode(monitor, mode) if monitor else None
        self.best = best

    def _improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.monitor is not None:
            if self.monitor not in logs:
                raise ValueError(f"Cannot checkpoint {self.path.name}: {self.monitor!r} is not "
                                 f"logged (logged: {sorted(logs)}); pass one of these as "
                                 f"fit(..., monitor=...).")
            value = float(logs[self.monitor])
            if not self._improved(value):
                return
            self.best = value
        with files.atomic_path(self.path) as tmp:
            self.model.save(tmp)


class ImagesPerSecond(keras.callbacks.Callback):
    """Record the training time and throughput of every epoch (for benchmarks).

    Time runs from the start of the epoch to the end of its last training batch, so validation
    is not counted; images = ``batch_size`` x steps (a smaller last batch is counted as full).
    The first epoch includes graph tracing and is usually slower: compare later epochs.

    Parameters
    ----------
    batch_size
        Images per training step.

    Attributes
    ----------
    epoch_seconds, images_per_second : list of float
        One entry per finished epoch.

    Examples
    --------
    >>> speed = ImagesPerSecond(batch_size=8)
    >>> model.fit(ds, epochs=3, callbacks=[speed])           # doctest: +SKIP
    >>> speed.images_per_second[-1]                          # doctest: +SKIP
    41.7
    """

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size
        self.epoch_seconds: list[float] = []
        self.images_per_second: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = self._end = time.perf_counter()
        self._steps = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._steps = batch + 1  # batch is the last step run (also with steps_per_execution > 1)
        self._end = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = max(self._end - self._start, 1e-9)
        self.epoch_seconds.append(seconds)
        self.images_per_second.append(self._steps * self.batch_size / seconds)


# --------------------------------------------------------------------------------------------
# history


# --------------------------------------------------------------------------------------------
# fit


def fit(
    model: keras.Model | None,
    train_data: Any,
    *,
    validation_data: Any = None,
    epochs: int,
    steps_per_epoch: int | None = None,
    batch_size: int | None = None,
    validation_steps: int | None = None,
    run_dir: str | os.PathLike | None = None,
    monitor: str = "val_loss",
    mode: str = "auto",
    resume: bool = False,
    verbose: int = 2,
    callbacks: Iterable[keras.callbacks.Callback] = (),
    live: bool | keras.callbacks.Callback = False,
) -> tuple[keras.Model, dict[str, list[float]]]:
    """Train ``model``, checkpointing to ``run_dir`` and optionally resuming an earlier run.

    Parameters
    ----------
    model
        A compiled model (:func:`compile_model`). With ``resume=True`` it is replaced by the
        model saved in ``run_dir/last.keras`` (its strategy scope is used for loading) and may
        be ``None``.
    train_data
        Anything ``model.fit`` accepts: a ``tf.data.Dataset`` of ``(x, y)`` (e.g. from
        :func:`helpers.augment.get_augmented`) or a tuple of arrays ``(x, y)`` (or
        ``(x, y, sample_weight)``).
    validation_data
        ``(x_val, y_val)`` or a dataset; ``None`` trains without validation.
    epochs
        Total number of epochs of the run (when resuming, counting the epochs already done).
    steps_per_epoch, validation_steps
        Needed when a dataset repeats forever (``get_augmented`` repeats by default).
    batch_size
        Only for array data (Keras' default: 32); a dataset is already batched.
    run_dir
        Folder for ``best.keras``, ``last.keras`` and ``history.csv`` (created if needed; a
        new run, ``resume=False``, overwrites them). ``None`` saves nothing.
    monitor
        Logged value that decides ``best.keras``; a ``val_*`` name falls back to the training
        value (``val_loss`` -> ``loss``) when there is no validation data.
    mode
        ``"auto"`` (max for accuracy/IoU/Dice-like names, else min), ``"min"`` or ``"max"``.
    resume
        Continue from ``run_dir/last.keras`` at epoch = number of rows in ``history.csv``.
        The best value already in ``history.csv`` is kept, so ``best.keras`` is only replaced
        by a better epoch.
    verbose
        2 (one line per epoch, the default; readable in notebooks and logs), 1 or 0.
    callbacks
        Extra callbacks, run before the checkpoint and CSV callbacks.
    live
        ``True``: watch the run in the notebook (:class:`helpers.live.LiveView` on the first
        validation image: curves and its prediction, updated after every epoch; one final figure
        when headless). Or a ``LiveView`` of your own. The notebooks switch it on; the command line
        does not.

    Returns
    -------
    model : keras.Model
        The trained model (the loaded one when resuming); the weights of the last epoch.
    history : dict of str to list of float
        Metric name -> one value per epoch; for a run with ``run_dir`` the whole run read from
        ``history.csv``, earlier sessions included.

    Raises
    ------
    FileNotFoundError
        ``resume=True`` but ``run_dir/last.keras`` does not exist.

    Examples
    --------
    >>> model, history = fit(model, train_ds, validation_data=(x_val, y_val), epochs=10,
    ...                      steps_per_epoch=50, run_dir="runs/unet")     # doctest: +SKIP
    >>> # after a disconnect: build nothing, just resume
    >>> model, history = fit(None, train_ds, validation_data=(x_val, y_val), epochs=10,
    ...                      steps_per_epoch=50, run_dir="runs/unet", resume=True)  # doctest: +SKIP
    """
    if validation_data is None and monitor.startswith("val_"):
        monitor = monitor[len("val_"):]
    run_dir = Path(run_dir) if run_dir is not None else None
    previous: dict[str, list[float]] = {}
    initial_epoch = 0
    if resume:
        if run_dir is None:
            raise ValueError("resume=True needs run_dir, the folder of the run to continue.")
        last = run_dir / "last.keras"
        if not last.is_file():
            raise FileNotFoundError(f"Cannot resume: {last} does not exist. Start the run with "
                                    f"fit(..., run_dir={str(run_dir)!r}, resume=False) first, or "
                                    f"check run_dir (in Colab: is Google Drive mounted?).")
        strategy = getattr(model, "distribute_strategy", None) or env.get_strategy()  # none under JAX
        scope = strategy.scope()
        with scope:
            model = keras.models.load_model(last)
        previous = load_history(run_dir)
        initial_epoch = len(next(iter(previous.values()), []))
    elif model is None:
        raise ValueError("model is None: pass a compiled model, or resume=True with run_dir.")

    callbacks = list(callbacks)
    if live is True:
        from helpers.live import LiveView

        if not (isinstance(validation_data, tuple) and len(validation_data) >= 2):
            raise ValueError("live=True shows the first validation image: pass validation_data=(x_val, y_val) "
                             "as arrays, or live=LiveView(image, mask).")
        live = LiveView(validation_data[0][0], validation_data[1][0])
    if live:
        callbacks.append(live)
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        direction = _mode(monitor, mode)
        done = [v for v in previous.get(monitor, []) if not math.isnan(v)]
        best = (min(done) if direction == "min" else max(done)) if done else None
        # Checkpoints before the CSV row: if a session dies in between, resuming repeats one
        # epoch instead of skipping one.
        callbacks += [AtomicCheckpoint(run_dir / "best.keras", monitor, direction, best),
                      AtomicCheckpoint(run_dir / "last.keras"),
                      keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=resume)]

    history: dict[str, list[float]] = {}
    if initial_epoch < epochs:
        x, y, *weights = train_data if isinstance(train_data, tuple) else (train_data, None)
        # Only arrays are shuffled by fit; a dataset shuffles itself (and Keras >= 3.15 warns
        # that shuffle=True "will be ignored" for one).
        result = model.fit(x, y, sample_weight=weights[0] if weights else None,
                           batch_size=batch_size, shuffle=y is not None, validation_data=validation_data, epochs=epochs,
                           initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch,
                           validation_steps=validation_steps, verbose=verbose,
                           callbacks=callbacks)
        history = {key: [float(v) for v in values] for key, values in result.history.items()}
    if run_dir is not None:
        history = load_history(run_dir)
    return model, history
