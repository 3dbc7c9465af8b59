"""Tests for helpers.plots: every function returns a Figure with the expected axes and content."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from helpers import plots  # noqa: E402

rng = np.random.default_rng(0)


def images(n: int, channels: int = 1) -> np.ndarray:
    return rng.random((n, 32, 32, channels), dtype=np.float32)


def image_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.images]


@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("channels", [1, 3])
def test_plot_imgs_grid(n, channels):
    x = images(n, channels)
    y = (images(n) > 0.5).astype(np.float32)
    fig = plots.plot_imgs(x, y, images(n))
    assert isinstance(fig, Figure)
    assert len(fig.axes) == n * 4
    assert [ax.get_title() for ax in fig.axes[:4]] == ["original", "ground truth", "prediction", "overlay"]
    shown = fig.axes[0].images[0].get_array()
    assert shown.shape == ((32, 32) if channels == 1 else (32, 32, 3))


def test_plot_imgs_partial_inputs_n_and_single_image():
    x = images(5)
    assert len(plots.plot_imgs(x).axes) == 5
    assert len(plots.plot_imgs(x, predictions=images(5), n=2).axes) == 2 * 3
    single = plots.plot_imgs(x[0], x[0] > 0.5)  # (H, W, C) image and its mask
    assert len(single.axes) == 3
    titled = plots.plot_imgs(x[:2], x[:2] > 0.5, titles=["slice 20", "slice 21"])
    assert [ax.get_title() for ax in titled.axes[::3]] == ["slice 20", "slice 21"]
    with pytest.raises(ValueError, match="masks"):
        plots.plot_imgs(x, x[:2])


def test_overlay_colours_truth_prediction_agreement():
    truth = np.array([[1, 1], [0, 0]], np.float32)[..., None]
    pred = np.array([[1, 0], [1, 0]], np.float32)[..., None]
    out = plots.overlay(np.zeros((2, 2, 1)), truth, pred, alpha=1.0)
    np.testing.assert_allclose(out[0, 0], to_rgb(plots.BOTH))
    np.testing.assert_allclose(out[0, 1], to_rgb(plots.TRUTH_ONLY))
    np.testing.assert_allclose(out[1, 0], to_rgb(plots.PRED_ONLY))
    np.testing.assert_allclose(out[1, 1], 0.0)  # background untouched
    half = plots.overlay(np.ones((2, 2, 3)), truth, alpha=0.5)
    np.testing.assert_allclose(half[0, 0], 0.5 + 0.5 * np.array(to_rgb(plots.TRUTH_ONLY)))


def test_plot_imgs_overlay_uses_threshold():
    x = np.zeros((1, 4, 4, 1), np.float32)
    prob = np.full((1, 4, 4, 1), 0.6, np.float32)
    high = plots.plot_imgs(x, predictions=prob, threshold=0.7, overlay_alpha=1.0)
    low = plots.plot_imgs(x, predictions=prob, threshold=0.5, overlay_alpha=1.0)
    assert np.all(high.axes[-1].images[0].get_array() == 0)
    np.testing.assert_allclose(low.axes[-1].images[0].get_array()[0, 0], to_rgb(plots.PRED_ONLY))


def test_plot_history_train_and_validation():
    history = {"loss": [0.7, 0.5, 0.4], "val_loss": [0.8, 0.6, 0.5], "iou": [0.1, 0.3, 0.4],
               "val_iou": [0.1, 0.2, 0.3]}
    fig = plots.plot_history(history)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "iou"]
    assert [line.get_label() for line in fig.axes[0].lines] == ["train", "validation"]
    np.testing.assert_allclose(fig.axes[0].lines[1].get_ydata(), history["val_loss"])
    assert len(plots.plot_history(history, metrics=["iou"]).axes) == 1
    with pytest.raises(ValueError, match="dice"):
        plots.plot_history(history, metrics=["dice"])


def test_plot_history_without_validation_dataframe_and_keras_history():
    import keras

    csv_like = pd.DataFrame({"epoch": [0, 1], "loss": [0.7, 0.6], "val_loss": ["NA", "NA"]})
    fig = plots.plot_history(csv_like)
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 1  # no validation curve, no KeyError
    history = keras.callbacks.History()
    history.history = {"loss": [0.5, 0.4], "accuracy": [0.6, 0.7]}
    assert [ax.get_title() for ax in plots.plot_history(history).axes] == ["loss", "accuracy"]


def test_plot_threshold_curve_arrays_and_table():
    t = np.linspace(0.1, 0.9, 9)
    fig = plots.plot_threshold_curve(t, 1 - (t - 0.4) ** 2, chosen=0.4)
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 2  # curve + chosen marker
    table = pd.DataFrame({"threshold": t, "iou": t, "dice": t ** 0.5, "name": ["a"] * 9})
    fig = plots.plot_threshold_curve(table)
    assert sorted(line.get_label() for line in fig.axes[0].lines) == ["dice", "iou"]
    with pytest.raises(ValueError, match="threshold"):
        plots.plot_threshold_curve(table.drop(columns="threshold"))


@pytest.mark.parametrize("n, ncols", [(1, None), (3, None), (5, 3), (16, 4)])
def test_plot_tiles_one_axes_per_tile(n, ncols):
    fig = plots.plot_tiles(images(n), ncols=ncols)
    assert len(fig.axes) == n
    assert fig.axes[-1].get_title() == str(n - 1)


@pytest.mark.parametrize("n, expected", [(8, 8), (3, 3), (20, 10)])
def test_plot_augmented_batch(n, expected):
    x = images(10, 3)
    fig = plots.plot_augmented_batch(x, x[..., :1] > 0.5, n=n)
    assert len(image_axes(fig)) == len(fig.axes) == expected
    assert fig.axes[0].images[0].get_array().shape == (32, 32, 3)


@pytest.mark.parametrize("shape", [(32, 32), (32, 32, 1), (32, 32, 3)])
def test_plot_probability(shape):
    image = rng.random(shape, dtype=np.float32)
    fig = plots.plot_probability(image, rng.random((32, 32, 1), dtype=np.float32), threshold=0.3)
    assert len(image_axes(fig)) == 3 and len(fig.axes) == 4  # three panels and a colour bar
    assert fig.axes[2].get_title() == "membrane (p > 0.3)"


def test_plot_resampling_same_window_and_value_counts():
    mask = np.zeros((64, 64), np.float32)
    mask[:, 10] = 1
    blurred = np.full((16, 16, 1), 0.25, np.float32)
    blurred[0, 0] = 0.75
    fig = plots.plot_resampling({"nearest": mask, "bilinear": blurred}, window=(0.0, 0.5, 0.0, 0.5))
    assert len(image_axes(fig)) == 2 and len(fig.axes) == 3  # two panels and a colour bar
    assert fig.axes[0].images[0].get_array().shape == (32, 32)  # half of 64
    assert fig.axes[1].images[0].get_array().shape == (8, 8)    # half of 16: same area
    assert fig.axes[0].get_title() == "nearest 64x64\n2 distinct values"
    assert fig.axes[1].get_title() == "bilinear 16x16\n2 distinct values"
    with pytest.raises(ValueError, match="window"):
        plots.plot_resampling({"m": mask}, window=(0.5, 0.2, 0, 1))


def test_plot_histories_one_colour_per_run():
    runs = {"augmented": {"loss": [0.7, 0.5], "val_loss": [0.8, 0.6], "accuracy": [0.6, 0.7]},
            "plain": {"loss": [0.6, 0.3], "val_loss": [0.7, 0.65], "accuracy": [0.7, 0.9]}}
    fig = plots.plot_histories(runs)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels == ["augmented (validation)", "augmented (train)", "plain (validation)", "plain (train)"]
    lines = fig.axes[0].lines
    assert lines[0].get_color() == lines[1].get_color() != lines[2].get_color()
    np.testing.assert_allclose(lines[3].get_ydata(), [0.6, 0.3])
    with pytest.raises(ValueError, match="dice"):
        plots.plot_histories(runs, metrics=["dice"])


def test_plot_imgs_names_two_models():
    a = np.zeros((1, 8, 8, 1), np.float32); a[0, :, :4] = 1
    b = np.zeros((1, 8, 8, 1), np.float32); b[0, :4] = 0.9
    fig = plots.plot_imgs(np.zeros((1, 8, 8, 1)), a, b, names=("Jaccard", "BCE"))
    assert [ax.get_title() for ax in fig.axes] == ["original", "Jaccard", "BCE", "overlay"]
    legend = [text.get_text() for text in fig.legends[0].get_texts()]
    assert legend == ["membrane: both", "Jaccard only", "BCE only"]
    colours = fig.axes[3].images[0].get_array()
    assert colours[0, 0].tolist() == pytest.approx(0.5 * np.array(to_rgb(plots.BOTH)))
    assert colours[7, 0].tolist() == pytest.approx(0.5 * np.array(to_rgb(plots.TRUTH_ONLY)))
    assert colours[0, 7].tolist() == pytest.approx(0.5 * np.array(to_rgb(plots.PRED_ONLY)))


def test_plot_seams_differences_and_tile_edges():
    whole = np.full((64, 64), 0.5, np.float32)
    plain = whole.copy(); plain[:, 31:33] = 0.9  # a seam at the tile edge x = 32
    blended = whole + 0.01
    fig = plots.plot_seams(whole, plain, blended, tile=32, window=(16, 48, 16, 48))
    panels = image_axes(fig)
    assert len(panels) == 4 and len(fig.axes) == 6  # four panels, one colour bar per row
    diff_plain, diff_blended = (ax.images[0].get_array() for ax in panels[2:])
    assert diff_plain.shape == (32, 32)
    assert float(diff_plain.max()) == pytest.approx(0.4) and float(diff_blended.max()) == pytest.approx(0.01)
    assert panels[2].get_title() == "|side-by-side - whole|\nmax 0.400"
    assert any(np.allclose(line.get_xdata(), 31.5) for line in panels[0].lines)  # tile edge drawn
    assert panels[2].get_xlim() == (15.5, 47.5) and panels[2].get_ylim() == (47.5, 15.5)  # just the window
    with pytest.raises(ValueError, match="window"):
        plots.plot_seams(whole, plain, blended, tile=32, window=(0, 100, 0, 10))
    with pytest.raises(ValueError, match="same size"):
        plots.plot_seams(whole, plain[:32], blended, tile=32)
