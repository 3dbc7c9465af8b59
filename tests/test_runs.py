"""Tests for helpers.runs: the one reader of training histories."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest

from helpers import runs


def test_load_history_reads_csvlogger_output(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,iou,loss,val_iou,val_loss\n0,0.2,0.9,NA,NA\n1,0.4,0.6,NA,NA\n")
    assert runs.load_history(tmp_path) == {"iou": [0.2, 0.4], "loss": [0.9, 0.6]}
    assert runs.load_history(tmp_path / "history.csv") == runs.load_history(tmp_path)


def test_load_history_of_a_run_without_epochs_is_empty(tmp_path):
    assert runs.load_history(tmp_path) == {}
    (tmp_path / "history.csv").write_text("")
    assert runs.load_history(tmp_path) == {}


def test_as_history_accepts_what_the_notebooks_hold():
    keras_history = keras.callbacks.History()
    keras_history.history = {"loss": [np.float32(0.5), 0.25]}
    frame = pd.DataFrame({"epoch": [0, 1], "loss": [0.5, 0.25], "val_loss": [np.nan, np.nan]})
    for history in (keras_history, frame, {"loss": ["0.5", 0.25]}):
        assert runs.as_history(history) == {"loss": [0.5, 0.25]}
    assert np.isnan(runs.as_history({"loss": [0.5, "oops"]})["loss"][1])
    with pytest.raises(ValueError, match="Keras History, a dict or a DataFrame"):
        runs.as_history([0.5, 0.25])


def test_fit_history_and_plots_read_the_same_file(tmp_path):
    from helpers import plots

    (tmp_path / "history.csv").write_text("epoch,loss,val_loss\n0,0.9,0.95\n1,0.6,0.7\n")
    history = runs.load_history(tmp_path)
    figure = plots.plot_history(history)
    curves = [[float(v) for v in line.get_ydata()] for line in figure.axes[0].lines]
    assert [0.95, 0.7] in curves and [0.9, 0.6] in curves  # validation and training loss
