"""Segmentation losses: soft Jaccard (IoU), Dice and BCE + Jaccard.

Every loss here is computed **per image** — sums run over all axes but the batch axis
(height, width and channels) — and returns one value per image, shape ``(batch,)``. Keras then
averages those values over the batch. Written with ``keras.ops`` only, so the losses run under
any Keras backend, and registered as serializable (package ``"helpers"``): a model compiled
with them and saved to ``.keras`` reloads with plain ``keras.models.load_model`` as long as
``helpers.losses`` has been imported.

Inputs follow the package convention: ``y_true`` is a {0, 1} mask (1 = membrane) and ``y_pred``
a sigmoid probability, both NHWC. Arithmetic is done in float32 even when the model runs in
mixed precision (float16 outputs), because sums over 512 x 512 pixels overflow float16.

Examples
--------
>>> import numpy as np
>>> from helpers import losses
>>> y = np.zeros((2, 8, 8, 1), "float32"); y[:, 2:6, 2:6] = 1
>>> tuple(losses.jaccard_loss(y, y).shape)
(2,)
>>> model.compile(optimizer="adam", loss=losses.bce_jaccard_loss)  # doctest: +SKIP
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["jaccard_loss", "dice_loss", "bce_jaccard_loss", "bce_dice_loss", "WeightedBCE", "LOSS_NAMES",
           "WEIGHTED_LOSSES", "by_name"]


def _as_float32(y_true, y_pred):
    """Cast ``y_true`` to ``y_pred``'s dtype (Keras' convention), then both to float32."""
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    return ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")


def _image_axes(x) -> tuple[int, ...]:
    """All axes but the batch axis: the axes a per-image sum runs over."""
    return tuple(range(1, len(x.shape)))


def _overlap(y_true, y_pred):
    """Per-image intersection ``sum(t * p)`` and total ``sum(t) + sum(p)``."""
    axes = _image_axes(y_pred)
    intersection = ops.sum(y_true * y_pred, axis=axes)
    total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    return intersection, total


@keras.saving.register_keras_serializable(package="helpers")
def jaccard_loss(y_true, y_pred, smooth: float = 1.0):
    r"""Soft Jaccard (IoU) loss of each image: ``1 - (|X∩Y| + s) / (|X ∪ Y| + s)``.

    With ``X`` the predicted probabilities and ``Y`` the true mask, ``|X∩Y| = Σ x·y`` and
    ``|X ∪ Y| = Σ x + Σ y - Σ x·y``, the sums running over height, width and channels of one
    image. For a binary prediction this is exactly 1 - IoU of the two regions, so minimising it
    maximises the overlap of the predicted and the true membrane *regions*.

    Why not keras-unet's ``jaccard_distance``: it sums over the last (channel) axis only. With
    one output channel each "sum" is a single pixel, so it computes
    ``(y·p + s) / (y + p - y·p + s)`` pixel by pixel and Keras averages that over the pixels:
    a per-pixel score (closer to a smoothed accuracy), not the intersection over union of the
    regions. Rare-class errors are not up-weighted the way region IoU does, and with its
    ``smooth=100`` almost every pixel's score is close to 1 whatever is predicted.

    Parameters
    ----------
    y_true : tensor
        True masks, ``(batch, H, W, C)`` with values in {0, 1}; cast to ``y_pred``'s dtype.
    y_pred : tensor
        Predicted probabilities in [0, 1], same shape.
    smooth : float, default 1.0
        Added to numerator and denominator: keeps the gradient defined for empty masks and
        gives loss 0 when both masks are empty.

    Returns
    -------
    tensor
        float32, shape ``(batch,)``, values in [0, 1]; 0 for a perfect prediction.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([[[[1.0], [0.0]]]])          # one 1x2 image, left pixel membrane
    >>> float(jaccard_loss(t, t)[0])
    0.0
    >>> round(float(jaccard_loss(t, 1 - t)[0]), 3)  # disjoint: 1 - 1/3
    0.667
    """
    y_true, y_pred = _as_float32(y_true, y_pred)
    intersection, total = _overlap(y_true, y_pred)
    union = total - intersection
    return 1.0 - (intersection + smooth) / (union + smooth)


@keras.saving.register_keras_serializable(package="helpers")
def dice_loss(y_true, y_pred, smooth: float = 1.0):
    r"""Soft Dice loss of each image: ``1 - (2|X∩Y| + s) / (|X| + |Y| + s)``.

    Dice = 2·IoU / (1 + IoU) ranks predictions like IoU but is gentler on poor overlaps.
    Sums over height, width and channels of each image, as in :func:`jaccard_loss`. Not
    ``keras.losses.Dice``: it pools the whole batch unless given ``axis``, and without a smoothing
    term an image with no membrane in mask or prediction scores loss 1 instead of 0.

    Parameters
    ----------
    y_true : tensor
        True masks, ``(batch, H, W, C)`` in {0, 1}.
    y_pred : tensor
        Predicted probabilities in [0, 1], same shape.
    smooth : float, default 1.0
        Smoothing term; both masks empty gives loss 0.

    Returns
    -------
    tensor
        float32, shape ``(batch,)``, values in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([[[[1.0], [0.0]]]])
    >>> round(float(dice_loss(t, 1 - t)[0]), 3)   # disjoint: 1 - 1/3
    0.667
    """
    y_true, y_pred = _as_float32(y_true, y_pred)
    intersection, total = _overlap(y_true, y_pred)
    return 1.0 - (2.0 * intersection + smooth) / (total + smooth)


@keras.saving.register_keras_serializable(package="helpers")
def bce_jaccard_loss(y_true, y_pred, smooth: float = 1.0):
    """Binary cross-entropy (mean over each image's pixels) plus :func:`jaccard_loss`.

    Cross-entropy gives every pixel a well-behaved gradient from the first step; the Jaccard
    term then pulls training towards what we measure, the overlap of the membrane regions.

    Parameters
    ----------
    y_true : tensor
        True masks, ``(batch, H, W, C)`` in {0, 1}.
    y_pred : tensor
        Predicted probabilities in [0, 1] (not logits), same shape.
    smooth : float, default 1.0
        Smoothing term of the Jaccard part.

    Returns
    -------
    tensor
        float32, shape ``(batch,)``, values >= 0; about 0 for a perfect prediction
        (cross-entropy clips probabilities to [1e-7, 1 - 1e-7]).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([[[[1.0], [0.0]]]])
    >>> round(float(bce_jaccard_loss(t, t)[0]), 4)
    0.0
    """
    y_true, y_pred = _as_float32(y_true, y_pred)
    bce = ops.mean(ops.binary_crossentropy(y_true, y_pred), axis=_image_axes(y_pred))
    return bce + jaccard_loss(y_true, y_pred, smooth=smooth)


@keras.saving.register_keras_serializable(package="helpers")
def bce_dice_loss(y_true, y_pred, smooth: float = 1.0):
    """Binary cross-entropy (mean over each image's pixels) plus :func:`dice_loss`.

    Parameters
    ----------
    y_true, y_pred : tensor
        True masks in {0, 1} and predicted probabilities, ``(batch, H, W, C)``.
    smooth : float, default 1.0
        Smoothing term of the Dice part.

    Returns
    -------
    tensor
        float32, shape ``(batch,)``.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([[[[1.0], [0.0]]]])
    >>> round(float(bce_dice_loss(t, t)[0]), 4)
    0.0
    """
    y_true, y_pred = _as_float32(y_true, y_pred)
    bce = ops.mean(ops.binary_crossentropy(y_true, y_pred), axis=_image_axes(y_pred))
    return bce + dice_loss(y_true, y_pred, smooth=smooth)


@keras.saving.register_keras_serializable(package="helpers")
class WeightedBCE(keras.losses.Loss):
    r"""Pixel-weighted binary cross-entropy, optionally plus the (unweighted) Jaccard loss.

    The weights are the U-Net paper's weight map (:mod:`helpers.weights`), one per pixel, given
    to ``fit`` as the dataset's third element, ``(images, masks, weight_maps)``, which
    ``augment.get_augmented(..., weights=...)`` makes. Per image the loss is

    .. math:: \frac{\sum_x w(x)\,\mathrm{BCE}(x)}{\sum_x 1} \; [+ \; \mathrm{Jaccard}]

    and Keras averages it over the batch. Without weights (validation data, ``evaluate``) every
    pixel weighs 1: plain BCE (+ Jaccard), so validation losses stay comparable across recipes.

    Keras' own ``Loss`` multiplies its *per-image* result by ``sample_weight``; a weight per
    pixel has to act inside the per-pixel sum, so this class takes the weights itself
    (``__call__`` is overridden; ``call`` is the unweighted loss).

    Parameters
    ----------
    jaccard : float, default 0.0
        Factor of :func:`jaccard_loss` added to each image's weighted BCE (1.0: border-weighted
        BCE + Jaccard).
    name : str, optional
        Loss name in the history (default ``"weighted_bce"`` or ``"weighted_bce_jaccard"``).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.zeros((1, 2, 2, 1), "float32"); p = np.full_like(t, 0.5)
    >>> w = np.array([[[1.0, 3.0], [1.0, 3.0]]], "float32")
    >>> round(float(WeightedBCE()(t, p, w)), 4)    # 2 x ln 2
    1.3863
    >>> model.compile(optimizer="adam", loss=WeightedBCE(jaccard=1.0))   # doctest: +SKIP
    """

    def __init__(self, jaccard: float = 0.0, name: str | None = None, **kwargs):
        kwargs.pop("reduction", None)
        super().__init__(name=name or ("weighted_bce_jaccard" if jaccard else "weighted_bce"), **kwargs)
        self.jaccard = float(jaccard)

    def _per_image(self, y_true, y_pred, pixel_weights=None):
        y_true, y_pred = _as_float32(y_true, y_pred)
        bce = ops.binary_crossentropy(y_true, y_pred)  # per pixel and channel: (batch, H, W, C)
        if pixel_weights is not None:
            pixel_weights = ops.cast(ops.convert_to_tensor(pixel_weights), "float32")
            if len(pixel_weights.shape) == len(bce.shape) - 1:  # (batch, H, W): one weight per pixel
                pixel_weights = ops.expand_dims(pixel_weights, axis=-1)
            bce = bce * pixel_weights
        loss = ops.mean(bce, axis=_image_axes(bce))
        if self.jaccard:
            loss = loss + self.jaccard * jaccard_loss(y_true, y_pred)
        return loss

    def call(self, y_true, y_pred):
        return self._per_image(y_true, y_pred)

    def __call__(self, y_true, y_pred, sample_weight=None):
        return ops.mean(self._per_image(y_true, y_pred, sample_weight))

    def get_config(self) -> dict:
        return {"jaccard": self.jaccard, "name": self.name}


#: The training losses the command line and the recipe benchmark offer, by name. The weighted ones
#: need the weight maps as ``sample_weight`` (``augment.get_augmented(..., weights=...)``).
LOSS_NAMES = ("bce", "jaccard", "bce_jaccard", "bce_dice", "weighted_bce", "weighted_bce_jaccard")
WEIGHTED_LOSSES = ("weighted_bce", "weighted_bce_jaccard")


def by_name(name: str):
    """The loss called ``name`` (one of :data:`LOSS_NAMES`), ready for ``model.compile``.

    Parameters
    ----------
    name : str
        ``"bce"`` (Keras' binary cross-entropy), ``"jaccard"``, ``"bce_jaccard"``, ``"bce_dice"``,
        ``"weighted_bce"`` or ``"weighted_bce_jaccard"`` (:class:`WeightedBCE`).

    Returns
    -------
    str, callable or keras.losses.Loss

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones).

    Examples
    --------
    >>> by_name("weighted_bce_jaccard").jaccard
    1.0
    """
    table = {"bce": "binary_crossentropy", "jaccard": jaccard_loss, "bce_jaccard": bce_jaccard_loss,
             "bce_dice": bce_dice_loss}
    if name in table:
        return table[name]
    if name in WEIGHTED_LOSSES:
        return WeightedBCE(jaccard=1.0 if name.endswith("jaccard") else 0.0)
    raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSS_NAMES)}.")
