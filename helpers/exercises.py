"""Checks for the notebooks' exercises: small pure functions, each tested with the right answers.

Every exercise asks the learner to predict something first (a parameter count, a shape, which
way a score moves) and then runs a check. The checks live here rather than in the notebook so
that each one compares the answer with exactly what its exercise asks, and so that the tests can
show that a correct answer passes in every run profile (``full``: 64 filters, ``cpu``: 16,
``quick``: 8; 128 x 128 images in all three).

Each ``check_*`` function returns a :class:`Check`: ``passed`` is True, False, or None while no
answer has been given, and ``print(check)`` shows its one-line message.

Examples
--------
>>> print(check_count(None, 7_759_521))
Set my_guess in the cell above, run it, then run this cell again.
>>> print(check_count(7_757_648, 7_759_521))
actual 7,759,521; your guess 7,757,648 is off by 0.0% - well done!
>>> print(check_shape((None, 8, 8, 1024), expected_bottleneck_shape(128, 64)))
actual (None, 8, 8, 1024): correct!
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Check", "unet_parameters", "expected_bottleneck_shape", "bottleneck_shape", "check_count",
           "check_shape", "threshold_direction", "check_direction"]

#: The answers exercise 3 accepts.
DIRECTIONS = ("higher", "lower", "the same")


@dataclass(frozen=True)
class Check:
    """The outcome of one exercise check.

    Attributes
    ----------
    passed : bool or None
        True for a right answer, False for a wrong one, None while no answer was given.
    message : str
        What to tell the learner; ``str(check)`` and ``print(check)`` show it.
    """

    passed: bool | None
    message: str

    def __str__(self) -> str:
        return self.message


def _not_yet(name: str) -> Check:
    return Check(None, f"Set {name} in the cell above, run it, then run this cell again.")


def unet_parameters(filters: int, num_layers: int = 4, input_channels: int = 1, num_classes: int = 1) -> int:
    """Parameters of keras-unet's ``custom_unet`` (no batch norm, transposed convolutions).

    Each level has two 3 x 3 convolutions (``9 * c_in * c_out + c_out`` parameters each); every
    level of the expanding path also has a 2 x 2 transposed convolution and reads the skip
    connection's channels as well; a final 1 x 1 convolution gives ``num_classes`` outputs.
    Neither the image size nor dropout changes the count.

    Parameters
    ----------
    filters : int
        Channels in the first level (``filters=`` of ``custom_unet``); doubled at each level down.
    num_layers : int
        Poolings (levels below the first), keras-unet's default 4.
    input_channels, num_classes : int
        Channels of the input image and of the output.

    Returns
    -------
    int
        The same number as ``model.count_params()``.

    Examples
    --------
    >>> unet_parameters(64)
    31030593
    >>> unet_parameters(32)
    7759521
    """
    def conv(c_in: int, c_out: int, kernel: int = 3) -> int:
        return kernel * kernel * c_in * c_out + c_out

    total, c_in = 0, input_channels
    for level in range(num_layers + 1):  # contracting path and bottleneck
        width = filters * 2**level
        total += conv(c_in, width) + conv(width, width)
        c_in = width
    for level in reversed(range(num_layers)):  # expanding path
        width = filters * 2**level
        total += conv(2 * width, width, kernel=2)          # transposed convolution from below
        total += conv(2 * width, width) + conv(width, width)  # after concatenating the skip
    return total + conv(filters, num_classes, kernel=1)


def expected_bottleneck_shape(image_size: int, filters: int, num_layers: int = 4) -> tuple:
    """Output shape of ``custom_unet``'s bottleneck: ``(None, size / 2**num_layers, ..., filters * 2**num_layers)``.

    Parameters
    ----------
    image_size : int
        Height and width of the (square) input; divisible by ``2**num_layers``.
    filters : int
        Channels in the first level.
    num_layers : int
        Poolings.

    Returns
    -------
    tuple
        ``(None, height, width, channels)``; ``None`` is the batch size, which Keras leaves open.

    Examples
    --------
    >>> expected_bottleneck_shape(128, 16)
    (None, 8, 8, 256)
    """
    if image_size % 2**num_layers:
        raise ValueError(f"image_size {image_size} is not divisible by 2**{num_layers}; "
                         f"custom_unet needs e.g. {2**num_layers * max(1, image_size // 2**num_layers)}.")
    side = image_size // 2**num_layers
    return (None, side, side, filters * 2**num_layers)


def bottleneck_shape(model: Any) -> tuple:
    """The bottleneck's output shape, read from a model: the smallest layer output with the most channels.

    Parameters
    ----------
    model : keras.Model
        A U-Net (any object whose ``layers`` have an ``output.shape``).

    Returns
    -------
    tuple
        ``(None, height, width, channels)``.

    Examples
    --------
    >>> bottleneck_shape(models.custom_unet((128, 128, 1), filters=8))   # doctest: +SKIP
    (None, 8, 8, 128)
    """
    shapes = [tuple(layer.output.shape) for layer in model.layers if len(layer.output.shape) == 4]
    if not shapes:
        raise ValueError("The model has no layer with a 4-D (batch, height, width, channels) output.")
    return min(shapes, key=lambda shape: (shape[1] * shape[2], -shape[3]))


def check_count(guess: float | None, actual: int, tolerance: float = 0.05, name: str = "my_guess") -> Check:
    """Exercise 1: is a predicted parameter count within ``tolerance`` (relative) of the actual one?

    Parameters
    ----------
    guess : number or None
        The learner's prediction; None while not yet given.
    actual : int
        The count of the model the exercise asks about.
    tolerance : float
        Largest relative error that counts as right (0.05 = 5 %).
    name : str
        The variable the learner sets, named in the reminder.

    Returns
    -------
    Check

    Examples
    --------
    >>> check_count(100, 130).passed
    False
    """
    if guess is None:
        return _not_yet(name)
    error = abs(float(guess) - actual) / actual
    passed = error <= tolerance
    verdict = "- well done!" if passed else "- see the hint and the solution."
    return Check(passed, f"actual {actual:,}; your guess {guess:,} is off by {error:.1%} {verdict}")


def check_shape(guess: Sequence | None, actual: Sequence, name: str = "my_shape") -> Check:
    """Exercise 2: is a predicted shape exactly the actual one (``None`` for the batch size)?

    Parameters
    ----------
    guess : sequence or None
        The learner's prediction, e.g. ``(None, 8, 8, 256)``; None while not yet given.
    actual : sequence
        The shape the exercise asks about.
    name : str
        The variable the learner sets, named in the reminder.

    Returns
    -------
    Check

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
    """Exercise 3: is the score at threshold ``low`` "higher", "lower" or "the same" as at ``high``?

    Scores are compared as printed, rounded to ``decimals`` places, so the word always agrees
    with the two numbers on the screen.

    Parameters
    ----------
    curve : pandas.DataFrame
        Columns ``threshold`` and ``column``, e.g. from :func:`helpers.evaluate.threshold_curve`.
    low, high : float
        The two thresholds compared; both must be in the curve.
    column : str
        The score.
    decimals : int
        Places the scores are rounded to before comparing.

    Returns
    -------
    str
        ``"higher"``, ``"lower"`` or ``"the same"``.

    Examples
    --------
    >>> import pandas as pd
    >>> curve = pd.DataFrame({"threshold": [0.3, 0.5], "iou_membrane": [0.42, 0.40]})
    >>> threshold_direction(curve)
    'higher'
    """
    scores = {round(float(t), 6): float(s) for t, s in zip(curve["threshold"], curve[column])}
    missing = [t for t in (low, high) if round(float(t), 6) not in scores]
    if missing:
        raise ValueError(f"Threshold(s) {missing} not in the curve; it has {sorted(scores)}.")
    at_low, at_high = (round(scores[round(float(t), 6)], decimals) for t in (low, high))
    return "higher" if at_low > at_high else "lower" if at_low < at_high else "the same"


def check_direction(answer: str | None, actual: str, name: str = "my_answer") -> Check:
    """Exercise 3: does the learner's "higher" / "lower" / "the same" match the measured direction?

    Parameters
    ----------
    answer : str or None
        The learner's prediction (case and surrounding spaces ignored); None while not yet given.
    actual : str
        The measured direction, from :func:`threshold_direction`.
    name : str
        The variable the learner sets, named in the reminder.

    Returns
    -------
    Check

    Examples
    --------
    >>> print(check_direction(" Higher", "higher"))
    you predicted higher: right!
    """
    if answer is None:
        return _not_yet(name)
    given = str(answer).strip().lower()
    if given not in DIRECTIONS:
        return Check(False, f"answer one of {', '.join(repr(d) for d in DIRECTIONS)}; you wrote {answer!r}.")
    passed = given == actual
    return Check(passed, f"you predicted {given}: " + ("right!" if passed else f"not this time - it was {actual}."))
