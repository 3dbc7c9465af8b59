"""Compile and train: :func:`compile_model`, the :func:`callbacks` for ``model.fit``, and :func:`fit`, which resumes."""

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

__all__ = ["compile_model", "ImagesPerSecond", "callbacks", "fit"]


def _policy_and_jit(strategy, mixed_precision: bool | str | None,
                    jit_compile: bool | str | None) -> tuple[str, bool | str]:
    """The dtype policy (None: mixed on a GPU/TPU) and ``jit_compile`` (None: XLA on a GPU/TPU; always under JAX)."""
    platform = env.strategy_platform(strategy)
    if isinstance(mixed_precision, str):
        policy = mixed_precision
    elif mixed_precision is None:
        policy = env.policy_for(platform)
    else:  # asked for on a CPU: the policy a GPU would get
        policy = env.policy_for("gpu" if platform == "cpu" else platform, bool(mixed_precision))
    if env.backend() == "jax":
        if jit_compile is False:
            raise ValueError("jit_compile=False under the JAX backend runs every step uncompiled "
                             "(about 3x slower); leave jit_compile=None.")
        return policy, True
    if jit_compile is None:
        jit_compile = "auto" if platform in ("gpu", "tpu") else False
    return policy, jit_compile


def _make_optimizer(optimizer: str | keras.optimizers.Optimizer, learning_rate: float,
                    momentum: float | None) -> keras.optimizers.Optimizer:
    """The optimizer named ``optimizer`` (or the instance itself); ``momentum`` only for SGD."""
    name = None if isinstance(optimizer, keras.optimizers.Optimizer) else str(optimizer).lower()
    if momentum is not None and name != "sgd":
        raise ValueError(f"momentum={momentum} is an SGD parameter: use optimizer='sgd', or leave momentum=None "
                         "(Adam's beta_1 plays its part; an optimizer instance takes its own).")
    if name is None:
        return optimizer
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.99 if momentum is None else momentum)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate)
    raise ValueError(f"optimizer={optimizer!r} is unknown: pass 'adam', 'sgd' or a keras.optimizers "
                     f"instance, e.g. keras.optimizers.RMSprop(1e-4).")


def compile_model(build_fn: Callable[[], keras.Model], *, loss: str | Callable,
                  optimizer: str | keras.optimizers.Optimizer = "adam", learning_rate: float = 1e-4,
                  momentum: float | None = None, metrics: Iterable | None = None, strategy=None,
                  mixed_precision: bool | str | None = None, jit_compile: bool | str | None = None,
                  seed: int | None = None) -> keras.Model:
    """Build ``build_fn()`` inside the strategy, in the chosen precision, and compile it.

    Parameters
    ----------
    build_fn : callable
        No arguments, returns an uncompiled model.
    loss, metrics
        For ``model.compile``, e.g. ``losses.bce_jaccard_loss`` and ``[metrics.iou]``.
    optimizer, learning_rate, momentum
        ``"adam"``, ``"sgd"`` (momentum default 0.99) or a ``keras.optimizers`` instance.
    strategy, mixed_precision, jit_compile, seed : optional
        Default :func:`helpers.env.get_strategy`; mixed and XLA on a GPU/TPU (always XLA under JAX).

    Returns
    -------
    keras.Model
        Compiled, with float32 outputs.

    Raises
    ------
    ValueError
        For an unknown ``optimizer``, ``momentum`` without ``"sgd"``, ``jit_compile=False`` under JAX.

    Examples
    --------
    >>> model = compile_model(lambda: models.build_unet((64, 64, 1)), loss="binary_crossentropy")  # doctest: +SKIP
    """
    strategy = strategy or env.get_strategy()
    policy, jit_compile = _policy_and_jit(strategy, mixed_precision, jit_compile)
    optimizer = _make_optimizer(optimizer, learning_rate, momentum)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        with strategy.scope():
            model = models.float32_outputs(build_fn())
            model.compile(optimizer=optimizer, loss=loss, metrics=list(metrics or []), jit_compile=jit_compile)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return model


class _AtomicCheckpoint(keras.callbacks.Callback):
    """Save the model to ``path`` every epoch, or (``best_only``) when the loss falls; never half-written."""

    def __init__(self, path: Path, best_only: bool = False, lowest: float | None = None):
        super().__init__()
        self.path, self.best_only, self.lowest = path, best_only, lowest

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.best_only:
            logs = logs or {}
            loss = float(logs.get("val_loss", logs.get("loss", math.nan)))  # without validation: training loss
            if math.isnan(loss) or (self.lowest is not None and loss >= self.lowest):
                return
            self.lowest = loss
        with files.atomic_path(self.path) as tmp:
            self.model.save(tmp)


class ImagesPerSecond(keras.callbacks.Callback):
    """Record each epoch's training time (validation left out) and images per second.

    Parameters
    ----------
    batch_size : int, optional
        Images per step; without it ``images_per_second`` stays empty.

    Examples
    --------
    >>> model.fit(batches, epochs=3, callbacks=[speed := ImagesPerSecond(8)])  # doctest: +SKIP
    """

    def __init__(self, batch_size: int | None = None):
        super().__init__()
        self.batch_size = batch_size
        self.epoch_seconds: list[float] = []
        self.images_per_second: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = self._end = time.perf_counter()
        self._steps = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._steps = batch + 1  # also right with steps_per_execution > 1
        self._end = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = max(self._end - self._start, 1e-9)
        self.epoch_seconds.append(seconds)
        if self.batch_size:
            self.images_per_second.append(self._steps * self.batch_size / seconds)


def callbacks(run_dir: str | os.PathLike | None = None, *, live: bool | keras.callbacks.Callback = False,
              batch_size: int | None = None, resume: bool = False) -> list[keras.callbacks.Callback]:
    """The callbacks of a training run, for ``model.fit(..., callbacks=...)``.

    Parameters
    ----------
    run_dir : str or os.PathLike, optional
        Folder for ``best.keras`` (lowest ``val_loss``), ``last.keras``, ``history.csv``; None saves nothing.
    live, batch_size
        True: a :class:`helpers.live.LiveView` of the first validation image; for :class:`ImagesPerSecond`.
    resume : bool
        Continue ``run_dir``'s run (append to ``history.csv``, keep its best value).

    Returns
    -------
    list of keras.callbacks.Callback
        :class:`ImagesPerSecond`, the live view, the checkpoints, the CSV logger.

    Examples
    --------
    >>> model.fit(batches, validation_data=(x_val, y_val), epochs=10, callbacks=callbacks(live=True))  # doctest: +SKIP
    """
    found: list[keras.callbacks.Callback] = [ImagesPerSecond(batch_size)]
    if live is True:
        from helpers.live import LiveView

        live = LiveView()
    if live:
        found.append(live)
    if run_dir is not None:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        previous = load_history(run_dir) if resume else {}
        done = [v for v in previous.get("val_loss", previous.get("loss", [])) if not math.isnan(v)]
        # Checkpoints before the CSV row: a session that dies in between repeats one epoch, skips none.
        found += [_AtomicCheckpoint(run_dir / "best.keras", best_only=True, lowest=min(done, default=None)),
                  _AtomicCheckpoint(run_dir / "last.keras"),
                  keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=resume)]
    return found


def _resumed(model: keras.Model | None, run_dir: Path | None) -> tuple[keras.Model, int]:
    """The model saved in ``run_dir/last.keras`` and the number of epochs already done."""
    if run_dir is None:
        raise ValueError("resume=True needs run_dir, the folder of the run to continue.")
    last = run_dir / "last.keras"
    if not last.is_file():
        raise FileNotFoundError(f"Cannot resume: {last} does not exist. Start the run with fit(..., run_dir="
                                f"{str(run_dir)!r}, resume=False) first, or check run_dir (in Colab: is Drive mounted?).")
    strategy = getattr(model, "distribute_strategy", None) or env.get_strategy()  # none under JAX
    with strategy.scope():
        model = keras.models.load_model(last)
    return model, len(next(iter(load_history(run_dir).values()), []))


def fit(model: keras.Model | None, train_data: Any, *, validation_data: Any = None, epochs: int,
        run_dir: str | os.PathLike | None = None, resume: bool = False,
        live: bool | keras.callbacks.Callback = False, **fit_kwargs) -> tuple[keras.Model, dict[str, list[float]]]:
    """Train with ``model.fit`` and :func:`callbacks`, optionally resuming an interrupted run.

    Parameters
    ----------
    model : keras.Model or None
        A compiled model; with ``resume=True`` replaced by ``run_dir/last.keras``.
    train_data, validation_data
        Datasets, or tuples of arrays ``(x, y[, sample_weight])`` and ``(x_val, y_val)``.
    epochs : int
        Total epochs of the run, earlier sessions included.
    run_dir, live, resume
        As in :func:`callbacks`; ``resume`` also loads ``run_dir/last.keras``.
    **fit_kwargs
        For ``model.fit``, e.g. ``steps_per_epoch``, ``batch_size``, ``verbose`` (default 2).

    Returns
    -------
    model, history : keras.Model, dict of str to list of float
        The model after the last epoch; one value per epoch (with ``run_dir`` the whole run).

    Raises
    ------
    FileNotFoundError, ValueError
        No ``run_dir/last.keras`` to resume; no ``model`` and no ``resume``; ``live=True`` without validation data.

    Examples
    --------
    >>> model, history = fit(None, batches, epochs=10, run_dir="runs/unet", resume=True)  # doctest: +SKIP
    """
    if live is True and validation_data is None:
        raise ValueError("live=True shows the first validation image: pass validation_data=(x_val, y_val), "
                         "or live=LiveView(image, mask).")
    run_dir = Path(run_dir) if run_dir is not None else None
    initial_epoch = 0
    if resume:
        model, initial_epoch = _resumed(model, run_dir)
    elif model is None:
        raise ValueError("model is None: pass a compiled model, or resume=True with run_dir.")
    run_callbacks = callbacks(run_dir, live=live, batch_size=fit_kwargs.get("batch_size"), resume=resume)
    history: dict[str, list[float]] = {}
    if initial_epoch < epochs:
        x, y, *weights = train_data if isinstance(train_data, tuple) else (train_data, None)
        fit_kwargs.setdefault("verbose", 2)
        # fit shuffles arrays only; a dataset shuffles itself (and Keras >= 3.15 warns about shuffle=True)
        result = model.fit(x, y, sample_weight=weights[0] if weights else None, shuffle=y is not None,
                           validation_data=validation_data, epochs=epochs, initial_epoch=initial_epoch,
                           callbacks=run_callbacks, **fit_kwargs)
        history = {key: [float(v) for v in values] for key, values in result.history.items()}
    return model, load_history(run_dir) if run_dir is not None else history
