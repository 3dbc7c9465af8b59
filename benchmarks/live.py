"""What the live training view costs per epoch, against the epoch it watches (``cpu`` profile).

Both notebooks' main training cells pass ``live=True`` to :func:`helpers.train.fit`
(:class:`helpers.live.LiveView`). Its cost per epoch is one forward pass of one validation tile,
drawing the figure and rendering it to PNG as Jupyter's inline backend does. The benchmark times
that cost directly (the median of several epochs' worth of calls, after the model has trained an
epoch) and divides it by the measured time of a training epoch at the notebooks' ``cpu``-profile
settings: notebook 1 (16 filters, 50 steps of 5 images at 128 px) and notebook 2 (16 filters, 30
steps of 5 tiles of 128 px). The issue's target: at most 5 % of an epoch.

Examples
--------
>>> from benchmarks import live
>>> live.run(quick=True)[["setting", "overhead_pct"]]   # doctest: +SKIP
"""

from __future__ import annotations

import io
import statistics
import time

import pandas as pd

from benchmarks import common

COLUMNS = ["setting", "steps", "epoch_s", "view_s", "overhead_pct"]
SETTINGS = {"notebook 1 (cpu)": 50, "notebook 2 (cpu)": 30}


def run(quick: bool = False, data: dict | None = None, filters: int = 16, batch_size: int = 5,
        repeats: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Time one training epoch and the live view's per-epoch work, per notebook setting.

    Parameters
    ----------
    quick : bool
        Tiny sizes (a smoke test, not a measurement).
    data : dict, optional
        :func:`helpers.data.fixed_split` parts at the tile size (default: ISBI at 128 px).
    filters, batch_size : int
        The ``cpu`` profile's model width and batch.
    repeats : int, optional
        Epochs timed per setting and view calls timed (default 2 and 5; quick 1 and 2).
    seed : int
        Weights and batches.

    Returns
    -------
    pandas.DataFrame
        One row per setting: epoch seconds, view seconds, overhead in percent of the epoch.
    """
    from helpers import augment, live, train

    parts = data or common.load_split(size=128)
    x, y = parts["train"]
    x_val, y_val = parts["validation"]
    epochs, calls = (1, 2) if quick else (2, 5)
    epochs, calls = (repeats, repeats) if repeats else (epochs, calls)
    rows = []
    for setting, steps in SETTINGS.items():
        steps = 2 if quick else steps
        model = train.compile_model(lambda: common.unet(x.shape[1:], filters=filters, seed=seed),
                                    loss="binary_crossentropy", metrics=["accuracy"], seed=seed)
        batches = augment.get_augmented(x, y, batch_size=batch_size, data_gen_args=augment.ORIGINAL_ARGS, seed=seed)
        model.fit(batches, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)  # tracing, warm-up
        seconds = []
        for _ in range(epochs):
            start = time.perf_counter()
            model.fit(batches, epochs=1, steps_per_epoch=steps, validation_data=(x_val, y_val), shuffle=False, verbose=0)
            seconds.append(time.perf_counter() - start)
        view = live.LiveView(x_val[0], y_val[0], show=False)
        view.set_model(model)
        costs = []
        for epoch in range(calls):
            view.history = {"loss": [0.5] * (epoch + 1), "val_loss": [0.5] * (epoch + 1),
                            "accuracy": [0.8] * (epoch + 1), "val_accuracy": [0.8] * (epoch + 1)}
            start = time.perf_counter()
            view.draw(epoch).savefig(io.BytesIO(), format="png")  # what the inline backend does
            costs.append(time.perf_counter() - start)
        epoch_s, view_s = statistics.median(seconds), statistics.median(costs)
        rows.append({"setting": setting, "steps": steps, "epoch_s": round(epoch_s, 2), "view_s": round(view_s, 3),
                     "overhead_pct": round(100 * view_s / epoch_s, 2)})
    return pd.DataFrame(rows, columns=COLUMNS)


if __name__ == "__main__":
    print(common.markdown(run()))
    print("load average:", common.load_average())
