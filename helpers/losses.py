"""Losses for binary masks (K classes: :mod:`helpers.toolkit.classes`): soft Jaccard (IoU), Dice, BCE + Jaccard,
weighted BCE. Each returns one float32 value per image, ``(batch,)``; saved models reload without custom_objects."""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["jaccard_loss", "dice_loss", "bce_jaccard_loss", "bce_dice_loss", "WeightedBCE", "LOSS_NAMES",
           "WEIGHTED_LOSSES", "by_name"]

#: The training losses :func:`by_name` knows. The weighted ones need weight maps as ``sample_weight``.
LOSS_NAMES = ("bce", "jaccard", "bce_jaccard", "bce_dice", "weighted_bce", "weighted_bce_jaccard")
WEIGHTED_LOSSES = ("weighted_bce", "weighted_bce_jaccard")


def _as_float32(y_true, y_pred):
    """Cast ``y_true`` to ``y_pred``'s dtype (Keras' convention), then both to float32."""
    y_pred = ops.convert_to_tensor(y_pred)
    return ops.cast(ops.cast(y_true, y_pred.dtype), "float32"), ops.cast(y_pred, "float32")


def _overlap(y_true, y_pred):
    """Per-image intersection ``sum(t * p)`` and total ``sum(t) + sum(p)``."""
    axes = tuple(range(1, len(y_pred.shape)))
    intersection = ops.sum(y_true * y_pred, axis=axes)
    return intersection, ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)


def _bce_per_image(y_true, y_pred, pixel_weights=None):
    """Binary cross-entropy averaged over each image, each pixel optionally weighted."""
    bce = ops.binary_crossentropy(y_true, y_pred)  # (batch, H, W, C)
    if pixel_weights is not None:
        pixel_weights = ops.cast(ops.convert_to_tensor(pixel_weights), "float32")
        if len(pixel_weights.shape) == len(bce.shape) - 1:  # (batch, H, W): one weight per pixel
            pixel_weights = ops.expand_dims(pixel_weights, axis=-1)
        bce = bce * pixel_weights
    return ops.mean(bce, axis=tuple(range(1, len(bce.shape))))


@keras.saving.register_keras_serializable(package="helpers")
def jaccard_loss(y_true, y_pred, smooth: float = 1.0):
    """Soft Jaccard loss of each image: ``1 - (Σ t·p + s) / (Σ t + Σ p - Σ t·p + s)``.

    Parameters
    ----------
    y_true, y_pred : tensor
        True masks in {0, 1} and predicted probabilities, ``(batch, H, W, C)``.
    smooth : float
        Added above and below: both masks empty gives loss 0.

    Returns
    -------
    tensor
        ``(batch,)`` in [0, 1]; 0 for a perfect prediction.

    Examples
    --------
    >>> round(float(jaccard_loss([[[[1.0], [0.0]]]], [[[[0.0], [1.0]]]])[0]), 3)  # disjoint: 1 - 1/3
    0.667
    """
    y_true, y_pred = _as_float32(y_true, y_pred)
    intersection, total = _overlap(y_true, y_pred)
    return 1.0 - (intersection + smooth) / (total - intersection + smooth)


@keras.saving.register_keras_serializable(package="helpers")
def dice_loss(y_true, y_pred, smooth: float = 1.0):
    """Soft Dice loss of each image: ``1 - (2 Σ t·p + s) / (Σ t + Σ p + s)``.

    Parameters
    ----------
    y_true, y_pred, smooth
        As in :func:`jaccard_loss`.

    Returns
    -------
    tensor
        ``(batch,)`` in [0, 1].

    Examples
    --------
    >>> round(float(dice_loss([[[[1.0], [0.0]]]], [[[[0.0], [1.0]]]])[0]), 3)  # disjoint: 1 - 1/3
    0.667
    """
    y_true, y_pred = _as_float32(y_true, y_pred)
    intersection, total = _overlap(y_true, y_pred)
    return 1.0 - (2.0 * intersection + smooth) / (total + smooth)


@keras.saving.register_keras_serializable(package="helpers")
def bce_jaccard_loss(y_true, y_pred, smooth: float = 1.0):
    """Binary cross-entropy (mean over each image's pixels) plus :func:`jaccard_loss`.

    Parameters
    ----------
    y_true, y_pred, smooth
        As in :func:`jaccard_loss` (probabilities, not logits).

    Returns
    -------
    tensor
        ``(batch,)``, >= 0; about 0 for a perfect prediction.

    Examples
    --------
    >>> round(float(bce_jaccard_loss([[[[1.0], [0.0]]]], [[[[1.0], [0.0]]]])[0]), 4)
    0.0
    """
    y_true, y_pred = _as_float32(y_true, y_pred)
    return _bce_per_image(y_true, y_pred) + jaccard_loss(y_true, y_pred, smooth=smooth)


@keras.saving.register_keras_serializable(package="helpers")
def bce_dice_loss(y_true, y_pred, smooth: float = 1.0):
    """Binary cross-entropy (mean over each image's pixels) plus :func:`dice_loss`.

    Parameters
    ----------
    y_true, y_pred, smooth
        As in :func:`jaccard_loss`.

    Returns
    -------
    tensor
        ``(batch,)``, >= 0.

    Examples
    --------
    >>> round(float(bce_dice_loss([[[[1.0], [0.0]]]], [[[[1.0], [0.0]]]])[0]), 4)
    0.0
    """
    y_true, y_pred = _as_float32(y_true, y_pred)
    return _bce_per_image(y_true, y_pred) + dice_loss(y_true, y_pred, smooth=smooth)


@keras.saving.register_keras_serializable(package="helpers")
class WeightedBCE(keras.losses.Loss):
    """Binary cross-entropy with one weight per pixel (the U-Net paper's map), optionally + Jaccard.

    The maps come as ``sample_weight`` (``augment.get_augmented(..., weights=...)``); without, each pixel weighs 1.

    Parameters
    ----------
    jaccard, name
        Factor of the unweighted :func:`jaccard_loss` added per image; default name ``"weighted_bce[_jaccard]"``.

    Examples
    --------
    >>> t, p = ops.zeros((1, 2, 2, 1)), ops.full((1, 2, 2, 1), 0.5)
    >>> round(float(WeightedBCE()(t, p, [[[1.0, 3.0], [1.0, 3.0]]])), 4)  # mean weight 2: 2 ln 2
    1.3863
    """

    def __init__(self, jaccard: float = 0.0, name: str | None = None, **kwargs):
        kwargs.pop("reduction", None)
        super().__init__(name=name or ("weighted_bce_jaccard" if jaccard else "weighted_bce"), **kwargs)
        self.jaccard = float(jaccard)

    def call(self, y_true, y_pred, pixel_weights=None):
        y_true, y_pred = _as_float32(y_true, y_pred)
        loss = _bce_per_image(y_true, y_pred, pixel_weights)
        return loss + self.jaccard * jaccard_loss(y_true, y_pred) if self.jaccard else loss

    def __call__(self, y_true, y_pred, sample_weight=None):
        # Keras' Loss would multiply the per-image result by sample_weight; these weights are per pixel.
        return ops.mean(self.call(y_true, y_pred, sample_weight))

    def get_config(self) -> dict:
        return {"jaccard": self.jaccard, "name": self.name}


def by_name(name: str):
    """The binary loss called ``name``, ready for ``model.compile``.

    Parameters
    ----------
    name : str
        One of :data:`LOSS_NAMES` (``"bce"``: Keras' binary cross-entropy).

    Returns
    -------
    str, callable or keras.losses.Loss

    Raises
    ------
    ValueError
        For an unknown ``name``.

    Examples
    --------
    >>> by_name("weighted_bce_jaccard").jaccard
    1.0
    """
    if name not in LOSS_NAMES:
        raise ValueError(f"name={name!r} is not a loss; choose one of {', '.join(LOSS_NAMES)}.")
    if name in WEIGHTED_LOSSES:
        return WeightedBCE(jaccard=1.0 if name.endswith("jaccard") else 0.0)
    return {"bce": "binary_crossentropy", "jaccard": jaccard_loss, "bce_jaccard": bce_jaccard_loss,
            "bce_dice": bce_dice_loss}[name]
