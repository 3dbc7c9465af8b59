"""Compile and train: :func:`compile_model`, the :func:`callbacks` for ``model.fit``, :func:`fit`, which resumes, and
checkpoints that suit a slow, small Drive (:func:`save_model`, :func:`checkpoint_sizes`)."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from helpers import env, files, models
from helpers.runs import load_history

__all__ = ["SAVE_EVERY_MINUTES", "compile_model", "ImagesPerSecond", "callbacks", "fit", "save_model",
           "checkpoint_sizes"]
#: Minutes between two writes of a run's checkpoints (and at the end): the training a disconnect may cost.
SAVE_EVERY_MINUTES = 5.0
_WRITTEN: dict[Path, list[int]] = {}  # file -> [writes, bytes] by this process's checkpoints (a fresh run resets)


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
    if env.backend() == "jax" and jit_compile is False:
        raise ValueError("jit_compile=False under the JAX backend runs every step uncompiled "
                         "(about 3x slower); leave jit_compile=None.")
    if env.backend() == "jax":
        return policy, True
    return policy, ("auto" if platform in ("gpu", "tpu") else False) if jit_compile is None else jit_compile


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
    """Build ``build_fn()`` (no arguments, an uncompiled model) inside the strategy, in the chosen precision; compile it.

    Parameters
    ----------
    build_fn, loss, metrics
        The builder; for ``model.compile``, e.g. ``losses.bce_jaccard_loss`` and ``[metrics.iou]``.
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
        An unknown ``optimizer``, ``momentum`` without ``"sgd"``, ``jit_compile=False`` under JAX.

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


def _count(path: Path, size: int) -> None:
    """Count one more write of ``size`` bytes to ``path``."""
    writes, written = _WRITTEN.get(path.resolve(), [0, 0])
    _WRITTEN[path.resolve()] = [writes + 1, written + size]


def _save(model: keras.Model, path: Path) -> Path:
    with files.atomic_path(path) as tmp:
        model.save(tmp)
    _count(path, path.stat().st_size)
    return path


def save_model(model: keras.Model, path: str | os.PathLike, weights: list | None = None) -> Path:
    """Save ``model``'s architecture and ``weights`` (default its own) atomically, without optimizer state.

    A third of Adam's ``model.save``; ``keras.models.load_model(path)`` returns it uncompiled, without custom objects.

    Examples
    --------
    >>> save_model(model, run_dir / "unet.keras")  # doctest: +SKIP
    """
    plain = type(model).from_config(model.get_config())  # a new model: never compiled
    plain.set_weights(model.get_weights() if weights is None else weights)
    return _save(plain, Path(path))


class _Checkpoints(keras.callbacks.Callback):
    """Keep the best weights in memory; write ``best.keras`` (weights), ``last.keras`` (full state) and the
    epochs' ``history.csv`` rows together, at most every ``seconds`` and at the end, so they always agree."""

    def __init__(self, run_dir: Path, seconds: float, resume_state: bool = True, resume: bool = False):
        super().__init__()
        self.run_dir, self.seconds, self.resume_state, self.resume = run_dir, seconds, resume_state, resume
        done = load_history(run_dir) if resume else {}
        done = [v for v in done.get("val_loss", done.get("loss", [])) if not math.isnan(v)]
        self.lowest, self.best, self.rows, self.clock = min(done, default=None), None, [], time.monotonic

    def on_train_begin(self, logs: dict | None = None) -> None:
        for name in () if self.resume else ("best.keras", "last.keras", "history.csv"):  # a fresh run: none survives
            (self.run_dir / name).unlink(missing_ok=True)
            _WRITTEN.pop((self.run_dir / name).resolve(), None)
        self.saved_at = self.clock()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = {key: float(value) for key, value in (logs or {}).items() if np.ndim(value) == 0}
        self.rows.append({"epoch": epoch, **logs})
        loss = logs.get("val_loss", logs.get("loss", math.nan))  # without validation: the training loss
        if not math.isnan(loss) and (self.lowest is None or loss < self.lowest):
            self.lowest, self.best = loss, self.model.get_weights()  # host copies: the GPU keeps training
        if self.clock() - self.saved_at >= self.seconds:
            self._write()

    def on_train_end(self, logs: dict | None = None) -> None:
        self._write()

    def _write(self) -> None:
        """Write what changed since the last write: the best weights, the full state, the new history rows."""
        if self.best is not None:
            save_model(self.model, self.run_dir / "best.keras", self.best)
            self.best = None
        if self.rows:  # the rows after the checkpoints: a session that dies in between repeats epochs
            if self.resume_state:
                _save(self.model, self.run_dir / "last.keras")
            _count(self.run_dir / "history.csv", _append_rows(self.run_dir / "history.csv", self.rows))
        self.rows, self.saved_at = [], self.clock()


def _append_rows(path: Path, rows: list[dict]) -> int:
    """Append epoch rows to ``path`` as Keras' ``CSVLogger`` writes them (NA where a value is missing); bytes."""
    header = path.read_text().partition("\n")[0].split(",") if path.is_file() and path.stat().st_size else None
    keys = header or ["epoch", *sorted({key for row in rows for key in row} - {"epoch"})]
    text = "" if header else ",".join(keys) + "\n"
    text += "".join(",".join(str(row.get(key, "NA")) for key in keys) + "\n" for row in rows)
    with open(path, "a") as f:
        f.write(text)
    return len(text.encode())


def checkpoint_sizes(run_dir: str | os.PathLike) -> dict[str, int]:
    """Bytes each file of ``run_dir`` keeps on disk and its checkpoints wrote since the run started (this session).

    Parameters
    ----------
    run_dir : str or os.PathLike
        A run folder, or a folder of runs (files named by relative path).

    Returns
    -------
    dict of str to int
        ``"<file> written"`` and ``"<file> kept"`` per file, then the totals ``"written"`` and ``"kept"``.

    Examples
    --------
    >>> {key: f"{value / 1e6:.1f} MB" for key, value in checkpoint_sizes(RUN_DIR).items()}  # doctest: +SKIP
    """
    root, sizes = Path(run_dir).resolve(), {}
    for path in sorted({p for p in _WRITTEN if root in p.parents} | {
            p.resolve() for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")}):
        name = path.relative_to(root).as_posix()
        sizes[f"{name} written"] = _WRITTEN.get(path, [0, 0])[1]
        sizes[f"{name} kept"] = path.stat().st_size if path.is_file() else 0
    totals = {key: sum(v for k, v in sizes.items() if k.endswith(f" {key}")) for key in ("written", "kept")}
    return {**sizes, **totals}


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
        self.batch_size, self.epoch_seconds, self.images_per_second = batch_size, [], []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start, self._steps = time.perf_counter(), 0
        self._end = self._start

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._steps = batch + 1  # also right with steps_per_execution > 1
        self._end = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = max(self._end - self._start, 1e-9)
        self.epoch_seconds.append(seconds)
        if self.batch_size:
            self.images_per_second.append(self._steps * self.batch_size / seconds)


def callbacks(run_dir: str | os.PathLike | None = None, *, live: bool | keras.callbacks.Callback = False,
              batch_size: int | None = None, resume: bool = False, save_every_minutes: float = SAVE_EVERY_MINUTES,
              resume_state: bool = True) -> list[keras.callbacks.Callback]:
    """The callbacks of a training run, for ``model.fit(..., callbacks=...)``.

    Parameters
    ----------
    run_dir : str or os.PathLike, optional
        Folder for ``best.keras`` (lowest ``val_loss``; weights and architecture), ``last.keras`` (full state,
        to resume) and ``history.csv``, written together at most every ``save_every_minutes`` (0: every epoch)
        and at the end; a new run first deletes an earlier run's. None: nothing saved.
    live, batch_size
        True: a :class:`helpers.live.LiveView` of the first validation image; for :class:`ImagesPerSecond`.
    resume, resume_state : bool
        Continue ``run_dir``'s run (keep its rows and best value); False: write no ``last.keras`` (a comparison).

    Returns
    -------
    list of keras.callbacks.Callback
        :class:`ImagesPerSecond`, the live view, the checkpoints.

    Raises
    ------
    ValueError
        A negative ``save_every_minutes``.

    Examples
    --------
    >>> model.fit(batches, validation_data=(x_val, y_val), epochs=10, callbacks=callbacks(live=True))  # doctest: +SKIP
    """
    if not save_every_minutes >= 0:
        raise ValueError(f"save_every_minutes={save_every_minutes} must be >= 0 (0: every epoch; "
                         "math.inf: only at the end).")
    found: list[keras.callbacks.Callback] = [ImagesPerSecond(batch_size)]
    if live is True:
        from helpers.live import LiveView

        live = LiveView()
    if live:
        found.append(live)
    if run_dir is not None:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        found.append(_Checkpoints(Path(run_dir), 60 * save_every_minutes, resume_state, resume))
    return found


def _resumed(model: keras.Model | None, run_dir: Path | None) -> tuple[keras.Model, int]:
    """The model saved in ``run_dir/last.keras`` and the number of epochs it had done (rows of history.csv)."""
    if run_dir is None:
        raise ValueError("resume=True needs run_dir, the folder of the run to continue.")
    last = run_dir / "last.keras"
    if not last.is_file():
        raise FileNotFoundError(f"Cannot resume: {last} does not exist. Start the run with fit(..., run_dir="
                                f"{str(run_dir)!r}, resume=False) first (resume_state=True keeps last.keras), "
                                "or check run_dir (in Colab: is Drive mounted?).")
    strategy = getattr(model, "distribute_strategy", None) or env.get_strategy()  # none under JAX
    with strategy.scope():
        model = keras.models.load_model(last)
    return model, len(next(iter(load_history(run_dir).values()), []))


def fit(model: keras.Model | None, train_data: Any, *, validation_data: Any = None, epochs: int,
        run_dir: str | os.PathLike | None = None, resume: bool = False,
        live: bool | keras.callbacks.Callback = False, save_every_minutes: float = SAVE_EVERY_MINUTES,
        resume_state: bool = True, **fit_kwargs) -> tuple[keras.Model, dict[str, list[float]]]:
    """Train with ``model.fit`` and :func:`callbacks`, optionally resuming an interrupted run.

    Parameters
    ----------
    model, train_data, validation_data
        A compiled model (None to resume); datasets or tuples ``(x, y[, sample_weight])``, ``(x_val, y_val)``.
    epochs : int
        Total epochs of the run, earlier sessions included.
    run_dir, live, resume, save_every_minutes, resume_state
        As in :func:`callbacks`; ``resume`` also loads ``run_dir/last.keras``, continuing at its epoch.
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
    run_callbacks = callbacks(run_dir, live=live, batch_size=fit_kwargs.get("batch_size"), resume=resume,
                              save_every_minutes=save_every_minutes, resume_state=resume_state)
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
