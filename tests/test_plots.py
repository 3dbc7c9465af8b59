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


def _rgb(k: int) -> tuple[float, float, float]:
    """Colour k of the one palette, as matplotlib RGB."""
    return tuple(channel / 255 for channel in plots.PALETTE[k])

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
    assert len(image_axes(fig)) == n * 4 and len(fig.axes) == n * 4 + 1  # and the colour bar
    assert [ax.get_title() for ax in fig.axes[:4]] == ["original", "ground truth", "prediction", "overlay"]
    assert fig.axes[-1].get_xlabel() == "P(membrane)"  # under the prediction column
    shown = fig.axes[0].images[0].get_array()
    assert shown.shape == ((32, 32) if channels == 1 else (32, 32, 3))


def test_plot_imgs_partial_inputs_and_single_image():
    x = images(5)
    assert len(plots.plot_imgs(x).axes) == 5
    assert len(plots.plot_imgs(x[:2], predictions=images(5)).axes) == 2 * 3 + 1  # a colour bar
    assert len(plots.plot_imgs(x, x > 0.5).axes) == 5 * 3  # no probabilities, no colour bar
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
    np.testing.assert_allclose(out[0, 0], _rgb(4))
    np.testing.assert_allclose(out[0, 1], _rgb(2))
    np.testing.assert_allclose(out[1, 0], _rgb(6))
    np.testing.assert_allclose(out[1, 1], 0.0)  # background untouched
    half = plots.overlay(np.ones((2, 2, 3)), truth, alpha=0.5)  # a true mask alone: green, not "missed"
    np.testing.assert_allclose(half[0, 0], 0.5 + 0.5 * np.array(_rgb(3)))


def test_plot_imgs_overlay_uses_threshold():
    x = np.zeros((1, 4, 4, 1), np.float32)
    prob = np.full((1, 4, 4, 1), 0.6, np.float32)
    high = plots.plot_imgs(x, predictions=prob, threshold=0.7)
    low = plots.plot_imgs(x, predictions=prob, threshold=0.5)
    assert np.all(image_axes(high)[-1].images[0].get_array() == 0)
    np.testing.assert_allclose(image_axes(low)[-1].images[0].get_array()[0, 0],  # predicted alone: not "false"
                               plots.OVERLAY_ALPHA * np.array(_rgb(7)))


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


def test_plot_threshold_curve_table():
    t = np.linspace(0.1, 0.9, 9)
    fig = plots.plot_threshold_curve(pd.DataFrame({"threshold": t, "iou": 1 - (t - 0.4) ** 2}), chosen=0.4)
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
    assert all(ax.get_title() == "" for ax in fig.axes)  # the batch may hold untransformed pairs: no claim
    titled = plots.plot_augmented_batch(x, x[..., :1] > 0.5, n=n, original=(x[0], x[0, ..., :1] > 0.5))
    assert [ax.get_title() for ax in titled.axes] == ["original"] + [f"augmented {i + 1}" for i in range(expected)]


def test_plot_augmented_batch_original_first_and_own_titles():
    x, y = images(3), (images(3) > 0.5).astype(np.float32)
    fig = plots.plot_augmented_batch(x, y, titles=["flipped", "rotated", "sheared"], original=(x[0, ..., 0], y[0]))
    assert [ax.get_title() for ax in fig.axes] == ["original", "flipped", "rotated", "sheared"]
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(),
                               plots.overlay(x[0], truth=y[0], alpha=0.6))
    with pytest.raises(ValueError, match="titles"):
        plots.plot_augmented_batch(x, y, titles=["only one"])


def test_shear_matrix_is_the_shear_the_augmentation_draws():
    from helpers import augment, augment_numpy

    args = augment._parse_args(dict(shear_range=50.0))
    drawn = augment_numpy.random_matrices(np.random.default_rng(3), 1, 32, 48, args)[0]
    replay = np.random.default_rng(3)
    replay.uniform(0.0, 0.0, 1)  # the rotation angle, drawn first (range 0 here)
    angle = replay.uniform(-50.0, 50.0, 1)[0]
    np.testing.assert_allclose(plots._shear_matrix(angle, 32, 48), drawn, atol=1e-9)
    assert plots._elongation(plots._shear_matrix(0, 8, 8)) == pytest.approx(1.0)
    assert plots._elongation(plots._shear_matrix(50, 8, 8)) == pytest.approx(2.747, abs=1e-3)
    assert plots._elongation(plots._shear_matrix(-50, 8, 8)) == pytest.approx(2.747, abs=1e-3)


def test_plot_shear_titles_and_warped_mask():
    mask = np.zeros((32, 32, 1), np.float32)
    mask[14:18] = 1  # a horizontal membrane: the shear moves each column up or down by its own amount
    fig = plots.plot_shear(np.full((32, 32), 0.5, np.float32), mask, angles=(0, 50))
    assert [ax.get_title() for ax in image_axes(fig)] == ["shear 0°\ncircle -> 1.0 : 1", "shear 50°\ncircle -> 2.7 : 1"]
    straight, slanted = (ax.images[0].get_array() for ax in image_axes(fig))
    np.testing.assert_allclose(straight, plots.overlay(np.full((32, 32, 1), 0.5), truth=mask, alpha=0.6))
    coloured = lambda rgb: ~np.isclose(rgb, 0.5).all(axis=-1)  # noqa: E731
    assert coloured(straight)[:, 0].tolist() == coloured(straight)[:, -1].tolist()  # same rows left and right
    assert coloured(slanted)[:, 0].tolist() != coloured(slanted)[:, -1].tolist()    # slanted


def test_plot_history_baselines_as_dotted_lines():
    history = {"loss": [0.7, 0.5], "accuracy": [0.3, 0.7], "val_accuracy": [0.2, 0.8]}
    fig = plots.plot_history(history, baselines={"accuracy": {"train: all cell": 0.77,
                                                              "validation: all cell": 0.8}})
    lines = fig.axes[1].lines
    assert [line.get_label() for line in lines] == ["train", "validation", "train: all cell", "validation: all cell"]
    assert lines[2].get_ydata() == pytest.approx([0.77, 0.77]) and lines[2].get_linestyle() == ":"
    assert lines[2].get_color() == lines[0].get_color() and lines[3].get_color() == lines[1].get_color()
    assert len(fig.axes[0].lines) == 1  # loss: no baseline
    single = plots.plot_history(history, metrics=["accuracy"], baselines={"accuracy": 0.5})
    assert single.axes[0].lines[-1].get_label() == "baseline"
    assert all(float(tick).is_integer() for tick in single.axes[0].get_xticks())  # epochs are whole
    with pytest.raises(ValueError, match="dice"):
        plots.plot_history(history, baselines={"dice": 0.5})


@pytest.fixture(scope="module")
def small_unet():
    from helpers import models

    return models.custom_unet((32, 32, 1), filters=4, num_layers=2, use_batch_norm=False)


def test_unet_blocks_levels_shapes_and_parameters(small_unet):
    blocks = plots.unet_blocks(small_unet)
    assert [b["level"] for b in blocks] == [0, 1, 2, 1, 0, 0]
    assert [b["shape"] for b in blocks] == [(32, 32, 4), (16, 16, 8), (8, 8, 16), (16, 16, 8), (32, 32, 4),
                                            (32, 32, 1)]
    assert [b["kind"] for b in blocks] == ["block"] * 5 + ["output"]
    assert sum(b["params"] for b in blocks) == small_unet.count_params()


def test_plot_architecture_u_fits_the_notebook(small_unet, tmp_path):
    fig = plots.plot_architecture(small_unet)
    fig.savefig(tmp_path / "u.png")
    assert isinstance(fig, Figure)
    width, height = fig.get_size_inches()
    assert width <= 11 and height <= 6  # one notebook width, not a 3677-pixel chain
    texts = [text.get_text() for text in fig.axes[0].texts]
    assert "8×8×16" in texts and texts.count("32×32×4") == 2
    arrows = [text.arrow_patch for text in fig.axes[0].texts if getattr(text, "arrow_patch", None)]
    skips = [arrow for arrow in arrows if arrow.get_linestyle() == "--"]
    assert len(arrows) == 5 + 2  # block to block, and the skips
    assert len(skips) == 2  # one per level above the bottleneck
    assert (tmp_path / "u.png").stat().st_size > 0


def test_plot_architecture_graph_layout_left_to_right(small_unet, monkeypatch, tmp_path):
    import keras

    calls = []
    def plot_model(model, to_file, **kwargs):
        calls.append(kwargs)
        Figure(figsize=(1, 1)).savefig(to_file)

    monkeypatch.setattr(keras.utils, "plot_model", plot_model)
    monkeypatch.setattr("shutil.which", lambda name: "/usr/bin/dot")
    plots.plot_architecture(small_unet, layout="LR")
    assert calls and calls[0]["rankdir"] == "LR" and calls[0]["show_shapes"]
    with pytest.raises(ValueError, match="layout"):
        plots.plot_architecture(small_unet, layout="sideways")


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


def test_plot_imgs_overlay_colours_and_legend():
    a = np.zeros((1, 8, 8, 1), np.float32); a[0, :, :4] = 1
    b = np.zeros((1, 8, 8, 1), np.float32); b[0, :4] = 0.9
    fig = plots.plot_imgs(np.zeros((1, 8, 8, 1)), a, b)
    assert [ax.get_title() for ax in image_axes(fig)] == ["original", "ground truth", "prediction", "overlay"]
    legend = [text.get_text() for text in fig.legends[0].get_texts()]
    assert legend == ["membrane: both", "missed (truth only)", "false (prediction only)"]
    colours = fig.axes[3].images[0].get_array()
    alpha = plots.OVERLAY_ALPHA
    assert colours[0, 0].tolist() == pytest.approx(alpha * np.array(_rgb(4)))
    assert colours[7, 0].tolist() == pytest.approx(alpha * np.array(_rgb(2)))
    assert colours[0, 7].tolist() == pytest.approx(alpha * np.array(_rgb(6)))


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


# --- one colour map for P(membrane), one meaning per overlay colour (issue 22) ---------------------------------


def _cmap_of(ax) -> str:
    return ax.images[0].get_cmap().name


def test_every_probability_figure_uses_the_one_colour_map():
    x, prob = images(2), images(2)
    fig = plots.plot_imgs(x, x > 0.5, prob)
    assert _cmap_of(image_axes(fig)[2]) == plots.PROB_CMAP and image_axes(fig)[2].get_title() == "prediction"
    assert image_axes(fig)[2].images[0].colorbar.ax.get_xlabel() == "P(membrane)"  # its colour bar
    assert _cmap_of(image_axes(plots.plot_imgs(x, predictions=prob))[1]) == plots.PROB_CMAP
    fig = plots.plot_probability(x[0], prob[0])
    assert fig.axes[1].get_title() == "P(membrane)" and _cmap_of(fig.axes[1]) == plots.PROB_CMAP
    fig = plots.plot_seams(prob[0], prob[0], prob[1], tile=16)
    assert [_cmap_of(ax) for ax in image_axes(fig)] == [plots.PROB_CMAP] * 2 + [plots.VALUE_CMAP] * 2
    # and nothing else: weights, mask values and differences never look like a probability
    fig = plots.plot_weight_map(x[0], x[0] > 0.5, 1 + x[0])
    assert plots.PROB_CMAP not in [_cmap_of(ax) for ax in image_axes(fig)]
    fig = plots.plot_resampling({"nearest": x[0] > 0.5, "bilinear": x[0]})
    assert plots.PROB_CMAP not in [_cmap_of(ax) for ax in image_axes(fig)]


def test_a_saved_mask_is_not_drawn_as_a_probability():
    x = images(1)
    fig = plots.plot_imgs(x, predictions=(x > 0.5).astype(np.float32))
    assert [ax.get_title() for ax in image_axes(fig)] == ["original", "predicted mask", "overlay"]
    assert len(fig.axes) == 3 and _cmap_of(fig.axes[1]) == "gray"  # no P(membrane) colour bar


def test_colour_maps_are_named_only_through_the_constants():
    """No figure of the notebooks, the slides or the live view types a colour map for P(membrane) itself."""
    from helpers import env

    root = env.REPO_ROOT
    paths = [*root.glob("helpers/**/*.py"), *root.glob("slides/*.py"), *root.glob("notebooks/*.ipynb")]
    for path in paths:
        text = path.read_text(encoding="utf-8")
        if path.name == "plots.py" and path.parent.name == "helpers":
            text = text.replace(f'PROB_CMAP, VALUE_CMAP = "{plots.PROB_CMAP}", "{plots.VALUE_CMAP}"', "")
        for name in (plots.PROB_CMAP, plots.VALUE_CMAP):
            assert f'"{name}"' not in text and f"'{name}'" not in text, f"{path.name} names {name}; use plots' constant"


def test_overlay_colours_mean_one_thing_each():
    colours = list(plots.OVERLAY_COLOURS.values())
    assert len(set(colours)) == len(colours) == 5
    assert set(colours) <= {_rgb(k) for k in range(1, 8)}  # from the one palette
    truth = np.zeros((1, 4, 4, 1), np.float32); truth[0, 0] = 1
    fig = plots.plot_imgs(np.zeros((1, 4, 4, 1)), masks=truth)
    assert [text.get_text() for text in fig.legends[0].get_texts()] == ["true membrane"]
    np.testing.assert_allclose(image_axes(fig)[-1].images[0].get_array()[0, 0],
                               plots.OVERLAY_ALPHA * np.array(plots.OVERLAY_COLOURS["truth"]))
    fig = plots.plot_probability(np.zeros((4, 4)), np.ones((4, 4)))
    assert [text.get_text() for text in fig.legends[0].get_texts()] == ["predicted membrane"]
