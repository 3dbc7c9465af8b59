"""Tests for helpers.exercises: each exercise of notebook 1 passes with the correct answer in every profile.

The run profiles change the model the exercises ask about (``full``: 64 filters, ``cpu``: 16,
``quick``: 8; 128 x 128 images in all three, as ``env.apply_profile`` sets them in notebook 1),
so the answers are checked against models built with each profile's settings.
"""

from __future__ import annotations

import doctest

import pandas as pd
import pytest

from helpers import exercises

#: Notebook 1's settings per profile (its settings cell and its apply_profile call).
PROFILES = {"full": dict(filters=64, image_size=128), "cpu": dict(filters=16, image_size=128),
            "quick": dict(filters=8, image_size=128)}

#: The right answers, worked out by hand from the exercises' hints.
#: Exercise 1: parameters of the same U-Net with FILTERS // 2 filters.
HALF_FILTER_PARAMETERS = {"full": 7_759_521, "cpu": 485_673, "quick": 121_653}
#: Exercise 2: the bottleneck of the model trained with FILTERS filters.
BOTTLENECK = {"full": (None, 8, 8, 1024), "cpu": (None, 8, 8, 256), "quick": (None, 8, 8, 128)}


def build(filters: int, image_size: int = 128):
    """The U-Net of notebook 1's build_model(), with ``filters`` filters."""
    from helpers import models

    return models.custom_unet((image_size, image_size, 1), num_classes=1, filters=filters, dropout=0.2,
                              use_batch_norm=False, output_activation="sigmoid")


def test_docstring_examples():
    result = doctest.testmod(exercises, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5 and result.failed == 0


@pytest.mark.parametrize("profile", PROFILES)
def test_exercise_1_correct_answer_passes(profile):
    filters = PROFILES[profile]["filters"]
    half, full = build(filters // 2).count_params(), build(filters).count_params()
    assert half == HALF_FILTER_PARAMETERS[profile]
    assert exercises.check_count(HALF_FILTER_PARAMETERS[profile], half).passed
    # The solution's shortcut, a quarter of the trained model's count, is within 1 %:
    assert abs(full / 4 - half) / half < 0.01
    assert exercises.check_count(round(full / 4), half).passed
    # Half the parameters (the tempting wrong answer) is far off:
    assert not exercises.check_count(full // 2, half).passed


@pytest.mark.parametrize("profile", PROFILES)
def test_exercise_2_correct_answer_passes(profile):
    settings = PROFILES[profile]
    trained = build(settings["filters"], settings["image_size"])
    actual = exercises.bottleneck_shape(trained)
    assert actual == BOTTLENECK[profile]
    assert exercises.check_shape(BOTTLENECK[profile], actual).passed
    assert exercises.check_shape(list(BOTTLENECK[profile]), actual).passed  # a list is fine too
    assert not exercises.check_shape((None, 8, 8, settings["filters"] * 8), actual).passed  # one doubling short


def test_exercise_2_reading_of_the_64_filter_summary_is_right_only_in_the_full_profile():
    summary_reading = (None, 8, 8, 1024)  # the original model's bottleneck, shown by summary()
    assert exercises.check_shape(summary_reading, BOTTLENECK["full"]).passed
    assert not exercises.check_shape(summary_reading, BOTTLENECK["cpu"]).passed


def curve(at_03: float, at_05: float) -> pd.DataFrame:
    """A threshold curve like evaluate.threshold_curve's, with given IoU at 0.3 and 0.5."""
    thresholds = [round(0.05 * i, 2) for i in range(1, 20)]
    iou = {0.3: at_03, 0.5: at_05}
    return pd.DataFrame({"threshold": thresholds, "iou_membrane": [iou.get(t, 0.1) for t in thresholds],
                         "dice_membrane": 0.2})


@pytest.mark.parametrize("at_03, at_05, direction", [(0.42, 0.24, "higher"), (0.50, 0.61, "lower"),
                                                      (0.2032, 0.2029, "the same"), (0.0, 0.0, "the same")])
def test_exercise_3_direction_as_printed(at_03, at_05, direction):
    measured = exercises.threshold_direction(curve(at_03, at_05))
    assert measured == direction
    assert exercises.check_direction(direction, measured).passed
    assert exercises.check_direction(direction.upper() + " ", measured).passed
    others = [d for d in ("higher", "lower", "the same") if d != direction]
    assert not any(exercises.check_direction(d, measured).passed for d in others)


def test_exercise_3_thresholds_from_floating_point_arange():
    import numpy as np

    thresholds = np.arange(0.05, 0.96, 0.05)  # 0.30000000000000004 and friends
    table = pd.DataFrame({"threshold": thresholds, "iou_membrane": 1 - np.abs(thresholds - 0.3)})
    assert exercises.threshold_direction(table) == "higher"
    with pytest.raises(ValueError, match="0.333"):
        exercises.threshold_direction(table, low=0.35, high=0.333)


def test_no_answer_yet_and_unknown_answers():
    for check in (exercises.check_count(None, 10), exercises.check_shape(None, (None, 1)),
                  exercises.check_direction(None, "higher")):
        assert check.passed is None and str(check).startswith("Set my_")
    assert "answer one of" in str(exercises.check_direction("up", "higher"))
    assert exercises.check_direction("up", "higher").passed is False
