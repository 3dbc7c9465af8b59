"""Tests for helpers.plots.plot_compare: two models' predictions, like with like, and where each is right."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from helpers import plots  # noqa: E402

NAMES = ("BCE + Jaccard", "BCE")


def example(size: int = 32):
    """An image, a horizontal membrane, model A one pixel off, model B four pixels off."""
    truth = np.zeros((size, size), np.float32)
    truth[14:17] = 1.0
    image = 1.0 - 0.5 * truth
    a, b = np.roll(truth, 1, axis=0) * 0.9, np.roll(truth, 4, axis=0) * 0.6
    return image, truth, a, b


def image_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.images]


def legend_texts(fig: Figure) -> list[str]:
    return [text.get_text() for legend in fig.legends for text in legend.get_texts()]


def test_thresholded_masks_five_panels_and_a_difference_map():
    image, truth, a, b = example()
    fig = plots.plot_compare(image, truth, a, b, names=NAMES, window=(8, 24, 4, 28), thresholds=(0.5, 0.3))
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 5 and len(image_axes(fig)) == 5  # no colour bar: nothing shows probabilities
    assert [ax.get_title() for ax in fig.axes] == ["image", "truth", "BCE + Jaccard: p > 0.5", "BCE: p > 0.3",
                                                   "where they disagree"]
    assert all(ax.images[0].get_array().shape[:2] == (16, 24) for ax in fig.axes)  # cropped to the window
    shown_a, shown_b = (np.asarray(ax.images[0].get_array()) for ax in fig.axes[2:4])
    assert set(np.unique(shown_a)) <= {0.0, 1.0} and set(np.unique(shown_b)) <= {0.0, 1.0}  # masks, like with like
    # Rows 14-16 are membrane; A says 15-17, B says 18-20. They disagree on rows 15-20: A is right on
    # 15, 16 (membrane) and 18-20 (cell), B on 17 (cell). On row 14 both miss the membrane: they agree.
    diff = fig.axes[4].images[0].get_array()
    for row in (15, 16, 18, 19, 20):
        np.testing.assert_allclose(diff[row - 8, 0], [c / 255 for c in plots.PALETTE[5]])
    np.testing.assert_allclose(diff[17 - 8, 0], [c / 255 for c in plots.PALETTE[1]])
    np.testing.assert_allclose(diff[14 - 8, 0], 0.75)  # they agree, true membrane: light gray
    np.testing.assert_allclose(diff[2, 0], 1.0)  # they agree, true cell: white
    width = 24
    assert legend_texts(fig)[:2] == [f"BCE + Jaccard right, BCE wrong: {5 * width} px",
                                     f"BCE right, BCE + Jaccard wrong: {1 * width} px"]


@pytest.mark.parametrize("change, match", [
    (dict(a=np.zeros((32, 30))), "same size"),
    (dict(truth=np.zeros((2, 32, 32, 1))), "one image each"),
    (dict(names=("only one",)), "one entry per model"),
    (dict(thresholds=(0.5,)), "one entry per model"),
    (dict(window=(0, 40, 0, 16)), "inside the 32x32 image"),
    (dict(window=(16, 8, 0, 16)), "top, bottom, left, right"),
])
def test_mismatched_inputs_raise_value_error(change, match):
    image, truth, a, b = example()
    arguments = {**dict(image=image, truth=truth, a=a, b=b, names=NAMES), **change}
    with pytest.raises(ValueError, match=match):
        plots.plot_compare(**arguments)
