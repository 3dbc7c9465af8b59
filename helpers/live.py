"""Watch a U-Net learn: after every epoch, the curves so far and the prediction of one fixed tile.

:class:`LiveView` is a Keras callback. In Jupyter or Colab it draws one figure and updates it in
place after each epoch (no pile of figures): the loss and metric curves so far, and the current
prediction of one validation tile beside the tile and its true mask, sharpening from noise to
membranes. Run headless (``make run``, the nbval tests: both set ``UNET_HEADLESS=1``) or outside
IPython it draws nothing per epoch and leaves one final figure, so executed notebooks stay small.

:func:`helpers.train.fit` adds it with ``live=True`` (the notebooks do; the command line does not).

Examples
--------
>>> view = LiveView(x_val[0], y_val[0])                                   # doctest: +SKIP
>>> model.fit(train_ds, epochs=10, steps_per_epoch=50, callbacks=[view])  # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
from typing import Any

import keras
import numpy as np
from matplotlib.figure import Figure

from helpers import plots
from helpers.runs import as_history

__all__ = ["LiveView", "headless"]


def headless() -> bool:
    """True where nobody watches: ``UNET_HEADLESS=1`` (``make run``, tests) or no IPython kernel.

    Examples
    --------
    >>> import os; os.environ["UNET_HEADLESS"] = "1"; headless()
    True
    """
    if os.environ.get("UNET_HEADLESS", "").strip().lower() in {"1", "true", "yes", "on"}:
        return True
    return "ipykernel" not in sys.modules


class LiveView(keras.callbacks.Callback):
    """Keras callback: curves and the current prediction of one tile, updated in place each epoch.

    Parameters
    ----------
    image, truth : np.ndarray
        One validation tile ``(H, W, C)`` (or ``(1, H, W, C)``) and its mask ``(H, W, 1)``.
    metrics : sequence of str, optional
        Curves to draw (default: the loss and the first other logged metric, e.g. ``iou``).
    show : bool, optional
        Update a figure in the notebook after every epoch. Default: not :func:`headless`.

    Attributes
    ----------
    history : dict of str to list of float
        Every logged value so far, one per epoch.
    figure : matplotlib.figure.Figure or None
        The latest figure (also after a headless run).

    Examples
    --------
    >>> view = LiveView(np.zeros((16, 16, 1)), np.zeros((16, 16, 1)), show=False)
    >>> view.history
    {}
    """

    def __init__(self, image: np.ndarray, truth: np.ndarray, metrics: list[str] | None = None,
                 show: bool | None = None):
        super().__init__()
        image, truth = np.asarray(image, np.float32), np.asarray(truth, np.float32)
        if image.ndim == 4:
            image, truth = image[0], truth[0]
        if image.ndim != 3 or truth.shape[:2] != image.shape[:2]:
            raise ValueError(f"LiveView needs one tile (H, W, C) and its mask (H, W, 1); got {image.shape} "
                             f"and {truth.shape}. Pass e.g. x_val[0], y_val[0].")
        self.image, self.truth = image, truth
        self.metrics = list(metrics) if metrics else None
        self.show = (not headless()) if show is None else show
        self.history: dict[str, list[float]] = {}
        self.figure: Figure | None = None
        self._handle = None

    def _predict(self) -> np.ndarray:
        """Probability map of the tile (a direct call: no compiled predict function per shape)."""
        prob = self.model(self.image[None], training=False)
        return keras.ops.convert_to_numpy(keras.ops.cast(prob, "float32"))[0]

    def draw(self, epoch: int) -> Figure:
        """The figure for the epochs so far: curves, then tile, truth and prediction."""
        history = as_history(self.history)
        names = self.metrics or ["loss"] + [k for k in history if k != "loss" and not k.startswith("val_")][:1]
        names = [n for n in names if n in history or f"val_{n}" in history]
        # A fixed layout: constrained layout would double the time to render the figure every epoch.
        fig = Figure(figsize=(2.6 * (len(names) + 3), 2.6))
        fig.subplots_adjust(left=0.05, right=0.96, bottom=0.2, top=0.86, wspace=0.35)
        axes = fig.subplots(1, len(names) + 3)
        for ax, name in zip(axes, names):
            plots.draw_curves(ax, history, name)
        tile, truth, prob = axes[len(names):]
        tile.imshow(self.image[..., 0] if self.image.shape[-1] == 1 else self.image, cmap="gray")
        truth.imshow(self.truth[..., 0], cmap="gray", vmin=0, vmax=1)
        shown = prob.imshow(self._predict()[..., 0], cmap="magma", vmin=0, vmax=1)
        fig.colorbar(shown, ax=prob, fraction=0.046, pad=0.04)
        for ax, title in ((tile, "validation tile"), (truth, "true membrane"), (prob, f"prediction, epoch {epoch + 1}")):
            ax.set_title(title, fontsize=9)
            ax.set_axis_off()
        return fig

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
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

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.show or not self.history:
            return
        self.figure = self.draw(getattr(self, "_epoch", 0))
        if "ipykernel" in sys.modules:  # headless notebook run: the one final figure
            from IPython.display import display

            display(self.figure)
