"""Watch a U-Net learn: after every epoch, the curves so far and the prediction of one validation tile."""

from __future__ import annotations

import os
import sys

import keras
import numpy as np
from matplotlib.figure import Figure

from helpers import plots
from helpers.runs import as_history

__all__ = ["LiveView"]


def _headless() -> bool:
    """True where nobody watches: ``UNET_HEADLESS=1`` (``make run``, tests) or no IPython kernel."""
    chosen = os.environ.get("UNET_HEADLESS", "").strip().lower() in {"1", "true", "yes", "on"}
    return chosen or "ipykernel" not in sys.modules


class LiveView(keras.callbacks.Callback):
    """Keras callback: the curves and one tile's prediction, redrawn every epoch (headless: once, at the end).

    Parameters
    ----------
    image, truth : np.ndarray, optional
        One tile ``(H, W, C)`` and its mask; default the first of the arrays ``model.fit`` validates on.
    show : bool, optional
        Redraw every epoch (default: unless ``UNET_HEADLESS=1`` or outside a notebook); curves: loss, first metric.

    Raises
    ------
    ValueError
        If ``image`` is not one tile or ``truth`` does not match it.

    Examples
    --------
    >>> model.fit(batches, validation_data=(x_val, y_val), epochs=10, callbacks=[LiveView()])  # doctest: +SKIP
    """

    def __init__(self, image: np.ndarray | None = None, truth: np.ndarray | None = None, show: bool | None = None):
        super().__init__()
        self.image = self.truth = None
        if image is not None:
            self._set_tile(image, truth)
        self.show = not _headless() if show is None else show
        self.history: dict[str, list[float]] = {}
        self.figure, self._handle, self._epoch = None, None, 0

    def _set_tile(self, image, truth) -> None:
        """Keep one tile ``(H, W, C)`` and its mask."""
        image, truth = np.asarray(image, np.float32), np.asarray(truth, np.float32)
        if image.ndim != 3 or truth.shape[:2] != image.shape[:2]:
            raise ValueError(f"LiveView needs one tile (H, W, C) and its mask (H, W, 1); got {image.shape} "
                             f"and {truth.shape}. Pass e.g. x_val[0], y_val[0].")
        self.image, self.truth = image, truth

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.image is not None:
            return
        evaluate = self.model.evaluate  # model.fit validates through model.evaluate(x=..., y=...)

        def watching(*args, **kwargs):
            y = kwargs.get("y")
            if y is not None and self.image is None:  # arrays (not a dataset): keep their first pair
                self._set_tile(kwargs.get("x", args[0] if args else None)[0], y[0])
            return evaluate(*args, **kwargs)

        self.model.evaluate = watching

    def draw(self, epoch: int) -> Figure:
        """The figure for the epochs so far: curves, then tile, truth and prediction (if a tile is known)."""
        history = as_history(self.history)
        names = ["loss"] + [k for k in history if k != "loss" and not k.startswith("val_")][:1]
        panels = len(names) + (3 if self.image is not None else 0)
        fig = Figure(figsize=(2.6 * panels, 2.6))  # fixed layout: constrained layout doubles the drawing time
        fig.subplots_adjust(left=0.05, right=0.96, bottom=0.2, top=0.86, wspace=0.35)
        axes = np.atleast_1d(fig.subplots(1, panels))
        for ax, name in zip(axes, names):
            plots.draw_curves(ax, history, name)
        if self.image is not None:
            tile, truth, prob = axes[len(names):]
            tile.imshow(self.image[..., 0] if self.image.shape[-1] == 1 else self.image, cmap="gray")
            truth.imshow(self.truth[..., 0], cmap="gray", vmin=0, vmax=1)
            probability = keras.ops.convert_to_numpy(self.model(self.image[None], training=False))  # not predict
            shown = prob.imshow(probability[0, ..., 0].astype(np.float32), cmap=plots.PROB_CMAP, vmin=0, vmax=1)
            fig.colorbar(shown, ax=prob, fraction=0.046, pad=0.04)
            for ax, title in ((tile, "validation tile"), (truth, "true membrane"), (prob, f"prediction, epoch {epoch + 1}")):
                ax.set_title(title, fontsize=9)
                ax.set_axis_off()
        return fig

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        self._epoch = epoch
        if self.show:
            from IPython.display import display
            self.figure = self.draw(epoch)
            if self._handle is None:
                self._handle = display(self.figure, display_id=True)
            else:
                self._handle.update(self.figure)

    def on_train_end(self, logs: dict | None = None) -> None:
        self.model.__dict__.pop("evaluate", None)  # the watching wrapper, if any
        if self.show or not self.history:
            return
        self.figure = self.draw(self._epoch)
        if "ipykernel" in sys.modules:  # headless notebook run: the one final figure
            from IPython.display import display
            display(self.figure)
