"""Checks for notebook 1's exercises. Each returns a :class:`Check` that keeps the answer until you have tried:
without an answer (None) it asks for one; a wrong answer gets a hint without the answer; the true value is
shown after a right answer or after ``reveal_after`` different wrong ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Check", "bottleneck_shape", "check_count", "check_shape", "threshold_direction", "check_direction"]

_DIRECTIONS = ("higher", "lower", "the same")  # the answers exercise 3 accepts
_WRONG: dict[tuple[str, str], set[str]] = {}  # (variable, repr of the true answer) -> the different wrong ones


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``passed`` (None without an answer), ``message``, and whether it ``revealed`` the answer."""

    passed: bool | None
    message: str
    revealed: bool = False

    def __str__(self) -> str:
        return self.message


def _not_yet(name: str) -> Check:
    return Check(None, f"Fill in {name} in the cell above, run it, then run this cell again.")  # no hint at all


def _verdict(name: str, guess: Any, passed: bool, hint: str, answer: str, reveal_after: int, actual: Any) -> Check:
    """Right: the answer. Wrong: ``hint``, and the answer once ``reveal_after`` different wrong guesses were made."""
    if passed:
        return Check(True, f"{name} = {guess!r}: right! {answer}", revealed=True)
    wrong = _WRONG.setdefault((name, repr(actual)), set())
    wrong.add(repr(guess))
    if len(wrong) >= reveal_after:
        return Check(False, f"{name} = {guess!r}: not quite. After {len(wrong)} different tries, here it is. "
                            f"{answer}", revealed=True)
    left = reveal_after - len(wrong)
    return Check(False, f"{name} = {guess!r}: not yet ({hint}). Change {name} and try again: run both cells "
                        f"(this one shows the answer after {left} more different {'try' if left == 1 else 'tries'}).")


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


def check_count(guess: float | None, actual: int, tolerance: float = 0.05, name: str = "my_guess",
                reveal_after: int = 3) -> Check:
    """Exercise 1: is a predicted parameter count within ``tolerance`` (relative) of the actual one?

    Parameters
    ----------
    guess, actual : number
        The learner's prediction (None while not given) and the model's count.
    tolerance, name, reveal_after
        Largest relative error that counts as right (0.05 = 5 %); the variable the learner sets and how many
        different wrong answers it takes before the check shows the answer (as in every check).

    Examples
    --------
    >>> print(check_count(7_757_648, 7_759_521))
    my_guess = 7757648: right! The actual count is 7,759,521; your guess is off by 0.0%.
    """
    if guess is None:
        return _not_yet(name)
    error = (float(guess) - actual) / actual
    return _verdict(name, guess, abs(error) <= tolerance, f"too {'high' if error > 0 else 'low'}, by more than "
                    f"{tolerance:.0%}", f"The actual count is {actual:,}; your guess is off by {abs(error):.1%}.",
                    reveal_after, actual)


def check_shape(guess: Sequence | None, actual: Sequence, name: str = "my_shape", reveal_after: int = 3) -> Check:
    """Exercise 2: is a predicted shape, e.g. ``(None, 8, 8, 256)``, exactly the actual one?

    Examples
    --------
    >>> print(check_shape([None, 8, 8, 128], (None, 8, 8, 256)))   # doctest: +ELLIPSIS
    my_shape = [None, 8, 8, 128]: not yet (look at the channels: ...
    """
    if guess is None:
        return _not_yet(name)
    given, actual = tuple(guess), tuple(actual)
    hint = (f"a shape here has {len(actual)} entries: (batch, height, width, channels)" if len(given) != len(actual)
            else "look at the batch size: Keras leaves it open" if given[0] != actual[0]
            else "look at the height and width: how often are they halved on the way down?"
            if given[1:3] != actual[1:3] else "look at the channels: how often are they doubled, and from what?")
    return _verdict(name, guess, given == actual, hint, f"The actual shape is {actual}.", reveal_after, actual)


def _scores(curve: Any, thresholds: Sequence[float], column: str) -> list[float]:  # matched to 6 decimals
    scores = {round(float(t), 6): float(s) for t, s in zip(curve["threshold"], curve[column])}
    missing = [t for t in thresholds if round(float(t), 6) not in scores]
    if missing:
        raise ValueError(f"low, high = {tuple(thresholds)}: threshold(s) {missing} not in the curve; "
                         f"pick from {sorted(scores)}.")
    return [scores[round(float(t), 6)] for t in thresholds]


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
    at_low, at_high = (round(score, decimals) for score in _scores(curve, (low, high), column))
    return "higher" if at_low > at_high else "lower" if at_low < at_high else "the same"


def check_direction(answer: str | None, curve: Any, low: float = 0.3, high: float = 0.5,
                    column: str = "iou_membrane", name: str = "my_answer", reveal_after: int = 2) -> Check:
    """Exercise 3: does "higher" / "lower" / "the same" (any case) match :func:`threshold_direction` of ``curve``?

    Examples
    --------
    >>> import pandas as pd
    >>> print(check_direction(" Higher", pd.DataFrame({"threshold": [0.3, 0.5], "iou_membrane": [0.42, 0.4]})))
    my_answer = 'higher': right! iou_membrane at 0.3: 0.420, at 0.5: 0.400 - higher at 0.3.
    """
    if answer is None:
        return _not_yet(name)
    given = str(answer).strip().lower()
    if given not in _DIRECTIONS:
        return Check(False, f"{name} = {answer!r}: answer one of {', '.join(map(repr, _DIRECTIONS))}.")
    at_low, at_high = _scores(curve, (low, high), column)
    actual = threshold_direction(curve, low, high, column)
    return _verdict(name, given, given == actual, "think about which pixels change class",
                    f"{column} at {low}: {at_low:.3f}, at {high}: {at_high:.3f} - {actual} at {low}.", reveal_after,
                    (actual, at_low, at_high))
