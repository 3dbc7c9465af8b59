"""Checks for notebook 1's exercises; each returns a :class:`Check` that prints its verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Check", "bottleneck_shape", "check_count", "check_shape", "threshold_direction", "check_direction"]

_DIRECTIONS = ("higher", "lower", "the same")  # the answers exercise 3 accepts


@dataclass(frozen=True)
class Check:
    """The outcome of one check: ``passed`` (True, False, or None without an answer) and ``message``."""

    passed: bool | None
    message: str

    def __str__(self) -> str:
        return self.message


def _not_yet(name: str) -> Check:
    """The reminder shown while the learner has not set ``name``."""
    return Check(None, f"Set {name} in the cell above, run it, then run this cell again.")


def bottleneck_shape(model: Any) -> tuple:
    """A U-Net's bottleneck output shape ``(None, height, width, channels)``: its smallest, deepest layer output.

    Examples
    --------
    >>> bottleneck_shape(models.custom_unet((128, 128, 1), filters=8))   # doctest: +SKIP
    (None, 8, 8, 128)
    """
    shapes = [tuple(layer.output.shape) for layer in model.layers if len(layer.output.shape) == 4]
    if not shapes:
        raise ValueError("model has no layer with a 4-D (batch, height, width, channels) output; pass a U-Net.")
    return min(shapes, key=lambda shape: (shape[1] * shape[2], -shape[3]))


def check_count(guess: float | None, actual: int, tolerance: float = 0.05, name: str = "my_guess") -> Check:
    """Exercise 1: is a predicted parameter count within ``tolerance`` (relative) of the actual one?

    Parameters
    ----------
    guess, actual : number
        The learner's prediction (None while not given) and the model's count.
    tolerance, name
        Largest relative error that counts as right (0.05 = 5 %); the variable the learner sets (as in every check).

    Examples
    --------
    >>> print(check_count(7_757_648, 7_759_521))
    actual 7,759,521; your guess 7,757,648 is off by 0.0% - well done!
    """
    if guess is None:
        return _not_yet(name)
    error = abs(float(guess) - actual) / actual
    passed = error <= tolerance
    verdict = "- well done!" if passed else "- see the hint and the solution."
    return Check(passed, f"actual {actual:,}; your guess {guess:,} is off by {error:.1%} {verdict}")


def check_shape(guess: Sequence | None, actual: Sequence, name: str = "my_shape") -> Check:
    """Exercise 2: is a predicted shape, e.g. ``(None, 8, 8, 256)``, exactly the actual one?

    Examples
    --------
    >>> print(check_shape([None, 8, 8, 128], (None, 8, 8, 256)))
    actual (None, 8, 8, 256): not quite - try again.
    """
    if guess is None:
        return _not_yet(name)
    passed = tuple(guess) == tuple(actual)
    return Check(passed, f"actual {tuple(actual)}: " + ("correct!" if passed else "not quite - try again."))


def threshold_direction(curve: Any, low: float = 0.3, high: float = 0.5, column: str = "iou_membrane",
                        decimals: int = 3) -> str:
    """Exercise 3: is the score at threshold ``low`` "higher", "lower" or "the same" (a str) as at ``high``?

    Parameters
    ----------
    curve, low, high
        Columns ``threshold`` and ``column`` (:func:`helpers.evaluate.threshold_curve`); two of its thresholds.
    column, decimals
        The score, and the places it is rounded to before comparing (as printed).

    Examples
    --------
    >>> import pandas as pd
    >>> threshold_direction(pd.DataFrame({"threshold": [0.3, 0.5], "iou_membrane": [0.42, 0.40]}))
    'higher'
    """
    scores = {round(float(t), 6): float(s) for t, s in zip(curve["threshold"], curve[column])}
    missing = [t for t in (low, high) if round(float(t), 6) not in scores]
    if missing:
        raise ValueError(f"low={low}, high={high}: threshold(s) {missing} not in the curve; "
                         f"pick from {sorted(scores)}.")
    at_low, at_high = (round(scores[round(float(t), 6)], decimals) for t in (low, high))
    return "higher" if at_low > at_high else "lower" if at_low < at_high else "the same"


def check_direction(answer: str | None, actual: str, name: str = "my_answer") -> Check:
    """Exercise 3: does the learner's "higher" / "lower" / "the same" (any case) match the measured one?

    Examples
    --------
    >>> print(check_direction(" Higher", "higher"))
    you predicted higher: right!
    """
    if answer is None:
        return _not_yet(name)
    given = str(answer).strip().lower()
    if given not in _DIRECTIONS:
        return Check(False, f"answer one of {', '.join(repr(d) for d in _DIRECTIONS)}; you wrote {answer!r}.")
    passed = given == actual
    return Check(passed, f"you predicted {given}: " + ("right!" if passed else f"not this time - it was {actual}."))
