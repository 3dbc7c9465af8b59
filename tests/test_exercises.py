"""Tests for helpers.exercises: each exercise of notebook 1 passes with the correct answer in every profile.

The run profiles change the model the exercises ask about (``full``: 64 filters, ``cpu``: 16,
``quick``: 8; 128 x 128 images in all three, as ``env.apply_profile`` sets them in notebook 1),
so the answers are checked against models built with each profile's settings. That the checks keep
their answers until an attempt is tested in tests/test_exercises_hidden.py.
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
#: Exercise 1: parameters of the same U-Net with num_layers=3 instead of 4.
THREE_LEVEL_PARAMETERS = {"full": 7_696_193, "cpu": 481_745, "quick": 120_681}
#: Exercise 2: the bottleneck of the trained model's recipe built for 192 x 192 images.
BOTTLENECK_192 = {"full": (None, 12, 12, 1024), "cpu": (None, 12, 12, 256), "quick": (None, 12, 12, 128)}


@pytest.fixture(autouse=True)
def _fresh_attempts(monkeypatch):
    monkeypatch.setattr(exercises, "_WRONG", {})


def build(filters: int, image_size: int = 128, **kwargs):
    """The U-Net of notebook 1's build_model(), with ``filters`` filters."""
    from helpers import models

    return models.custom_unet((image_size, image_size, 1), num_classes=1, filters=filters, dropout=0.2,
                              use_batch_norm=False, output_activation="sigmoid", **kwargs)


def test_docstring_examples():
    result = doctest.testmod(exercises, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5 and result.failed == 0


@pytest.mark.parametrize("profile", PROFILES)
def test_exercise_1_correct_answer_passes(profile):
    filters = PROFILES[profile]["filters"]
    fewer, trained = build(filters, num_layers=3).count_params(), build(filters).count_params()
    assert fewer == THREE_LEVEL_PARAMETERS[profile]
    assert exercises.check_count(THREE_LEVEL_PARAMETERS[profile], fewer).passed
    # The solution's shortcut, a quarter of the trained model's count, is within 1 %:
    assert abs(trained / 4 - fewer) / fewer < 0.01
    assert exercises.check_count(round(trained / 4), fewer).passed
    # Half the parameters, or the trained model's own count, are far off:
    assert not exercises.check_count(trained // 2, fewer).passed
    assert not exercises.check_count(trained, fewer).passed


@pytest.mark.parametrize("profile", PROFILES)
def test_exercise_2_correct_answer_passes(profile):
    filters = PROFILES[profile]["filters"]
    larger = build(filters, image_size=192)
    actual = exercises.bottleneck_shape(larger)
    assert actual == BOTTLENECK_192[profile]
    assert larger.count_params() == build(filters).count_params()  # the solution's remark
    assert exercises.check_shape(BOTTLENECK_192[profile], actual).passed
    assert exercises.check_shape(list(BOTTLENECK_192[profile]), actual).passed  # a list is fine too
    assert not exercises.check_shape((None, 8, 8, filters * 16), actual).passed  # the 128-pixel bottleneck
    assert not exercises.check_shape((None, 12, 12, filters * 8), actual).passed  # one doubling short


def test_exercise_2_answer_is_not_in_the_original_summary():
    """What section 2 shows (the 64-filter model at 128 x 128) does not contain any profile's answer."""
    shown = {tuple(layer.output.shape) for layer in build(64).layers}
    assert not shown & set(BOTTLENECK_192.values())


def curve(at_03: float, at_05: float) -> pd.DataFrame:
    """A threshold curve like evaluate.threshold_curve's, with given IoU at 0.3 and 0.5."""
    thresholds = [round(0.05 * i, 2) for i in range(1, 20)]
    iou = {0.3: at_03, 0.5: at_05}
    return pd.DataFrame({"threshold": thresholds, "iou_membrane": [iou.get(t, 0.1) for t in thresholds],
                         "dice_membrane": 0.2})


@pytest.mark.parametrize("at_03, at_05, direction", [(0.42, 0.24, "higher"), (0.50, 0.61, "lower"),
                                                      (0.2032, 0.2029, "the same"), (0.0, 0.0, "the same")])
def test_exercise_3_direction_as_printed(at_03, at_05, direction):
    table = curve(at_03, at_05)
    assert exercises.threshold_direction(table) == direction
    assert exercises.check_direction(direction, table).passed
    assert exercises.check_direction(direction.upper() + " ", table).passed
    others = [d for d in ("higher", "lower", "the same") if d != direction]
    assert not any(exercises.check_direction(d, table).passed for d in others)


def test_exercise_3_thresholds_from_floating_point_arange():
    import numpy as np

    thresholds = np.arange(0.05, 0.96, 0.05)  # 0.30000000000000004 and friends
    table = pd.DataFrame({"threshold": thresholds, "iou_membrane": 1 - np.abs(thresholds - 0.3)})
    assert exercises.threshold_direction(table) == "higher"
    with pytest.raises(ValueError, match="0.333"):
        exercises.threshold_direction(table, low=0.35, high=0.333)
    assert exercises.check_direction("higher", table).passed


def test_no_answer_yet_and_unknown_answers():
    for check in (exercises.check_count(None, 10), exercises.check_shape(None, (None, 1)),
                  exercises.check_direction(None, curve(0.4, 0.3))):
        assert check.passed is None and not check.revealed and str(check).startswith("Fill in my_")
    assert "answer one of" in str(exercises.check_direction("up", curve(0.4, 0.3)))
    assert exercises.check_direction("up", curve(0.4, 0.3)).passed is False
