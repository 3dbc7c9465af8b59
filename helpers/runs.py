"""A training run's files: its history (``history.csv``) and its scores (``scores.json``)."""

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

__all__ = ["as_history", "load_history", "save_scores"]

_SCORE_KEYS = ("notebook", "profile", "split", "threshold", "iou_membrane", "dice_membrane",  # in every scores.json
               "iou_cell", "dice_cell", "pixel_error", "v_rand", "v_info", "train_seconds")


def as_history(history: Any) -> dict[str, list[float]]:
    """A Keras ``History``, dict or DataFrame as ``{metric: [float per epoch]}``, minus ``epoch`` and unlogged metrics.

    Examples
    --------
    >>> as_history({"epoch": [0, 1], "loss": [0.7, "0.5"], "val_loss": [None, None]})
    {'loss': [0.7, 0.5]}
    """
    if hasattr(history, "history") and isinstance(history.history, Mapping):
        history = history.history
    if not isinstance(history, (Mapping, pd.DataFrame)):
        raise ValueError(f"history must be a Keras History, a dict or a DataFrame, got {type(history).__name__}.")
    numbers = {str(key): pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").astype(float)
               for key, values in history.items() if key != "epoch"}  # what is not a number becomes NaN
    return {key: values.tolist() for key, values in numbers.items() if values.notna().any()}


def load_history(path: str | os.PathLike) -> dict[str, list[float]]:
    """Read a run's ``history.csv`` (or a run folder) with :func:`as_history`; ``{}`` while it has no epoch.

    Examples
    --------
    >>> plots.plot_history(load_history("runs/demo"))        # doctest: +SKIP
    """
    path = Path(path)
    path = path / "history.csv" if path.is_dir() else path
    if not path.is_file() or path.stat().st_size == 0:
        return {}
    return as_history(pd.read_csv(path))


def save_scores(table_or_dict, path: str | os.PathLike, **extra) -> dict:
    """Write a table's ``"mean"`` row (or a dict) plus ``extra`` as JSON, atomically, and return what was written.

    Parameters
    ----------
    table_or_dict, path, **extra
        A table with a ``"mean"`` row (e.g. :func:`helpers.evaluate.segmentation_table`) or a dict of scores;
        the JSON file, e.g. ``env.runs_dir("01_introduction") / "scores.json"``; other fields (``notebook``,
        ``profile``, ``split``, ``threshold``, ``train_seconds``, ...). Standard fields come first (null if missing).

    Raises
    ------
    ValueError
        Neither a table with a ``"mean"`` row nor a dict, or ``split`` other than ``"validation"``/``"holdout"``.

    Examples
    --------
    >>> save_scores(table, "runs/demo/scores.json", notebook="01", split="validation")  # doctest: +SKIP
    """
    if isinstance(table_or_dict, pd.DataFrame) and "mean" in table_or_dict.index:
        values = {**table_or_dict.loc["mean"].to_dict(), **extra}
    elif isinstance(table_or_dict, Mapping):
        values = {**table_or_dict, **extra}
    else:
        raise ValueError(f"table_or_dict must be a table with a 'mean' row (from segmentation_table or "
                         f"evaluate_predictions) or a dict of scores, got {type(table_or_dict).__name__}.")
    if values.get("split") not in (None, "validation", "holdout"):
        raise ValueError(f"split={values['split']!r}: use 'validation' or 'holdout'.")

    def plain(value):  # a JSON value: Python numbers, null for NaN
        value = value.item() if isinstance(value, (np.floating, np.integer)) else value
        return None if isinstance(value, float) and math.isnan(value) else value

    scores = {key: plain(values.get(key)) for key in (*_SCORE_KEYS, *values)}
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(json.dumps(scores, indent=2) + "\n")
    return scores
