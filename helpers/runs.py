"""A training run's files: its history (``history.csv``) and its scores (``scores.json``).

:func:`helpers.train.fit` writes ``history.csv`` with Keras' ``CSVLogger``; :func:`load_history`
reads it back (and :func:`as_history` turns any history a notebook holds into the same form, for
the plots). The notebooks end with :func:`save_scores`, which ``make run`` and ``make gpu-check``
collect into their summaries.

Examples
--------
>>> import tempfile, pathlib
>>> run = pathlib.Path(tempfile.mkdtemp())
>>> _ = (run / "history.csv").write_text("epoch,loss,val_loss\\n0,0.7,NA\\n1,0.5,NA\\n")
>>> load_history(run)
{'loss': [0.7, 0.5]}
>>> save_scores({"iou_membrane": 0.61}, run / "scores.json", split="holdout")["iou_membrane"]
0.61
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers.files import atomic_path

__all__ = ["SCORE_KEYS", "as_history", "load_history", "save_scores"]

#: Fields every ``scores.json`` has (``null`` where a run did not compute them).
SCORE_KEYS = ("notebook", "profile", "split", "threshold", "iou_membrane", "dice_membrane", "iou_cell",
              "dice_cell", "pixel_error", "v_rand", "v_info", "train_seconds")


def as_history(history: Any) -> dict[str, list[float]]:
    """Any training history as ``{metric: [value per epoch]}``, the form :func:`load_history` returns.

    Accepts a Keras ``History``, a dict of lists, or a pandas DataFrame. The ``epoch`` column and
    metrics that were never logged (all NaN, e.g. ``val_*`` without validation data) are dropped;
    values that are not numbers become NaN.

    Examples
    --------
    >>> as_history({"epoch": [0, 1], "loss": [0.7, "0.5"], "val_loss": [None, None]})
    {'loss': [0.7, 0.5]}
    """
    if hasattr(history, "history") and isinstance(history.history, Mapping):
        history = history.history
    if isinstance(history, pd.DataFrame):
        history = history.to_dict("list")
    if not isinstance(history, Mapping):
        raise ValueError(f"Expected a Keras History, a dict or a DataFrame, got {type(history).__name__}.")
    out = {}
    for key, values in history.items():
        if key == "epoch":
            continue
        numbers = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").astype(float)
        if len(numbers) and not numbers.isna().all():
            out[str(key)] = numbers.tolist()
    return out


def load_history(path: str | os.PathLike) -> dict[str, list[float]]:
    """Read a run's ``history.csv`` (or a run folder) into ``{metric: [value per epoch]}``.

    ``pandas.read_csv`` reads the file (Keras' ``CSVLogger`` writes ``NA`` for ``val_*`` keys
    when there is no validation); :func:`as_history` drops the ``epoch`` column and the metrics
    never logged. A missing file gives an empty dict (a run that has not finished an epoch yet).

    Examples
    --------
    >>> plots.plot_history(load_history("runs/demo"))        # doctest: +SKIP
    """
    path = Path(path)
    if path.is_dir():
        path = path / "history.csv"
    if not path.is_file() or path.stat().st_size == 0:
        return {}
    return as_history(pd.read_csv(path))


def save_scores(table_or_dict, path: str | os.PathLike, **extra) -> dict:
    """Write a run's scores as JSON (atomically): the mean row of a table plus ``extra`` fields.

    Every key of :data:`SCORE_KEYS` is written; a score the table lacks (e.g. ``v_rand`` when
    only :func:`helpers.evaluate.segmentation_table` was computed) and NaN values are written as
    ``null``.

    Parameters
    ----------
    table_or_dict : pandas.DataFrame or mapping
        A table with a ``"mean"`` row (from :func:`helpers.evaluate.segmentation_table` or
        :func:`helpers.evaluate.evaluate_predictions`), or a dict of scores.
    path : str or PathLike
        The JSON file, e.g. ``env.runs_dir("01_introduction") / "scores.json"``.
    **extra
        Other fields, e.g. ``notebook="01_unet_introduction"``, ``profile="cpu"``,
        ``split="validation"``, ``threshold=0.5``, ``train_seconds=312.5``; they override the
        table's values.

    Returns
    -------
    dict
        What was written.

    Raises
    ------
    ValueError
        A table without a ``"mean"`` row, or ``split`` other than ``"validation"``/``"holdout"``.

    Examples
    --------
    >>> table = evaluate.segmentation_table(prob_val, y_val, threshold=0.5)  # doctest: +SKIP
    >>> save_scores(table, "runs/demo/scores.json", notebook="01", profile="cpu",
    ...             split="validation", threshold=0.5, train_seconds=300.0)  # doctest: +SKIP
    """
    if isinstance(table_or_dict, pd.DataFrame):
        if "mean" not in table_or_dict.index:
            raise ValueError("The table has no 'mean' row; pass the output of segmentation_table or "
                             "evaluate_predictions, or a dict of scores.")
        values = table_or_dict.loc["mean"].to_dict()
    elif isinstance(table_or_dict, Mapping):
        values = dict(table_or_dict)
    else:
        raise ValueError(f"Expected a DataFrame with a 'mean' row or a dict, got {type(table_or_dict).__name__}.")
    values.update(extra)
    if values.get("split") not in (None, "validation", "holdout"):
        raise ValueError(f"split={values['split']!r}: use 'validation' or 'holdout'.")

    def plain(value):
        if isinstance(value, (np.floating, np.integer)):
            value = value.item()
        return None if isinstance(value, float) and math.isnan(value) else value

    scores = {key: plain(values.get(key)) for key in SCORE_KEYS}
    scores.update({key: plain(value) for key, value in values.items() if key not in scores})
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(json.dumps(scores, indent=2) + "\n")
    return scores
