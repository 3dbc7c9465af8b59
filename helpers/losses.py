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

**More than two classes** (a softmax over K channels, true masks of class numbers 0..K-1):
:func:`ce_loss` (categorical cross-entropy), :func:`multiclass_jaccard_loss` and
:func:`multiclass_dice_loss` (per class, averaged over the classes; ``include_background``
chooses whether class 0 counts), and their sums :func:`ce_jaccard_loss` and :func:`ce_dice_loss`;
:class:`MultiClassLoss` picks one by name with ``include_background`` set.

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
           "WEIGHTED_LOSSES", "by_name",
           "multiclass_jaccard_loss", "multiclass_dice_loss", "ce_loss", "ce_jaccard_loss", "ce_dice_loss",
           "MULTICLASS_LOSSES", "MultiClassLoss"]


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


def _bce_per_image(y_true, y_pred, pixel_weights=None):
    """Binary cross-entropy averaged over each image's pixels (and channels), optionally weighted.

    ``pixel_weights`` (batch, H, W) or (batch, H, W, 1) multiply each pixel's cross-entropy
    before the mean (the U-Net paper's weight map); inputs are float32 from :func:`_as_float32`.
    """
    bce = ops.binary_crossentropy(y_true, y_pred)  # per pixel and channel: (batch, H, W, C)
    if pixel_weights is not None:
        pixel_weights = ops.cast(ops.convert_to_tensor(pixel_weights), "float32")
        if len(pixel_weights.shape) == len(bce.shape) - 1:  # (batch, H, W): one weight per pixel
            pixel_weights = ops.expand_dims(pixel_weights, axis=-1)
        bce = bce * pixel_weights
    return ops.mean(bce, axis=_image_axes(bce))


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
    return _bce_per_image(y_true, y_pred) + jaccard_loss(y_true, y_pred, smooth=smooth)


# ---------------------------------------------------------------------------------------------
# More than two classes: a softmax over K channels, true masks of class numbers 0..K-1


def _one_hot_pair(y_true, y_pred):
    """float32 one-hot truth and probabilities, both ``(batch, H, W, K)``.

    ``y_true`` holds class numbers ``(batch, H, W[, 1])`` or is one-hot already ``(batch, H, W, K)``;
    a one-channel sigmoid ``y_pred`` becomes the two classes ``[1 - p, p]``.
    """
    y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
    if y_pred.shape[-1] == 1:
        y_pred = ops.concatenate([1.0 - y_pred, y_pred], axis=-1)
    num_classes = y_pred.shape[-1]
    y_true = ops.convert_to_tensor(y_true)
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == num_classes:
        return ops.cast(y_true, "float32"), y_pred
    if len(y_true.shape) == len(y_pred.shape):
        y_true = y_true[..., 0]
    classes = ops.cast(ops.round(ops.cast(y_true, "float32")), "int32")
    return ops.one_hot(classes, num_classes, dtype="float32"), y_pred


def _class_overlap(y_true, y_pred, include_background: bool):
    """Per image and class: intersection ``Σ t·p`` and total ``Σ t + Σ p``, ``(batch, K)`` each."""
    y_true, y_pred = _one_hot_pair(y_true, y_pred)
    if not include_background:
        y_true, y_pred = y_true[..., 1:], y_pred[..., 1:]
    axes = tuple(range(1, len(y_pred.shape) - 1))
    intersection = ops.sum(y_true * y_pred, axis=axes)
    return intersection, ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)


@keras.saving.register_keras_serializable(package="helpers")
def multiclass_jaccard_loss(y_true, y_pred, include_background: bool = True, smooth: float = 1.0):
    r"""Soft Jaccard loss of K classes: ``1 -`` the mean over the classes of each class's soft IoU.

    For every image and class k, :func:`jaccard_loss`'s soft IoU of the predicted probabilities of
    k and the true pixels of k, ``(Σ t·p + s) / (Σ t + Σ p - Σ t·p + s)``; their mean over the
    classes gives every class the same weight however few pixels it has, so a rare class is not
    drowned by the background. A class in neither mask of an image scores 1 there (``smooth``).

    Parameters
    ----------
    y_true : tensor
        Class numbers ``(batch, H, W, 1)`` (or ``(batch, H, W)``) in 0..K-1, or one-hot
        ``(batch, H, W, K)``.
    y_pred : tensor
        Softmax probabilities ``(batch, H, W, K)``; one sigmoid channel counts as two classes.
    include_background : bool, default True
        Whether class 0 is one of the classes averaged. Leave it out when the background is
        large and easy and the loss should look at the objects only.
    smooth : float, default 1.0
        Added to every class's numerator and denominator.

    Returns
    -------
    tensor
        float32, shape ``(batch,)``, values in [0, 1]; 0 for a perfect prediction.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([[[[0], [1], [2]]]])                        # one 1x3 image, three classes
    >>> perfect = np.eye(3, dtype="float32")[None, None]
    >>> float(multiclass_jaccard_loss(t, perfect)[0])
    0.0
    >>> round(float(multiclass_jaccard_loss(t, np.roll(perfect, 1, axis=2))[0]), 3)  # all wrong: 1 - 1/3
    0.667
    >>> model.compile("adam", loss=MultiClassLoss("jaccard", include_background=False))  # doctest: +SKIP
    """
    intersection, total = _class_overlap(y_true, y_pred, include_background)
    union = total - intersection
    return 1.0 - ops.mean((intersection + smooth) / (union + smooth), axis=-1)


@keras.saving.register_keras_serializable(package="helpers")
def multiclass_dice_loss(y_true, y_pred, include_background: bool = True, smooth: float = 1.0):
    """Soft Dice loss of K classes: ``1 -`` the mean over the classes of each class's soft Dice.

    As :func:`multiclass_jaccard_loss`, with ``(2 Σ t·p + s) / (Σ t + Σ p + s)`` per class.

    Parameters
    ----------
    y_true, y_pred : tensor
        Class numbers (or one-hot) and softmax probabilities, as in :func:`multiclass_jaccard_loss`.
    include_background : bool, default True
        Whether class 0 is one of the classes averaged.
    smooth : float, default 1.0

    Returns
    -------
    tensor
        float32, shape ``(batch,)``, values in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([[[[0], [1], [2]]]])
    >>> round(float(multiclass_dice_loss(t, np.full((1, 1, 3, 3), 1 / 3, "float32"))[0]), 3)  # 1 - (2/3 + 1) / 3
    0.444
    """
    intersection, total = _class_overlap(y_true, y_pred, include_background)
    return 1.0 - ops.mean((2.0 * intersection + smooth) / (total + smooth), axis=-1)


@keras.saving.register_keras_serializable(package="helpers")
def ce_loss(y_true, y_pred):
    """Categorical cross-entropy, the mean over each image's pixels, from class numbers.

    The multi-class counterpart of binary cross-entropy (Keras' ``sparse_categorical_crossentropy``
    when ``y_true`` holds class numbers), one value per image like every loss here.

    Parameters
    ----------
    y_true : tensor
        Class numbers ``(batch, H, W, 1)`` in 0..K-1, or one-hot ``(batch, H, W, K)``.
    y_pred : tensor
        Softmax probabilities ``(batch, H, W, K)`` (not logits).

    Returns
    -------
    tensor
        float32, shape ``(batch,)``, values >= 0.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([[[[0], [2]]]])
    >>> round(float(ce_loss(t, np.full((1, 1, 2, 4), 0.25, "float32"))[0]), 4)   # ln 4
    1.3863
    """
    y_true, y_pred = _one_hot_pair(y_true, y_pred)
    return ops.mean(ops.categorical_crossentropy(y_true, y_pred), axis=tuple(range(1, len(y_pred.shape) - 1)))


@keras.saving.register_keras_serializable(package="helpers")
def ce_jaccard_loss(y_true, y_pred, include_background: bool = True, smooth: float = 1.0):
    """Categorical cross-entropy plus :func:`multiclass_jaccard_loss`: BCE + Jaccard for K classes.

    Cross-entropy gives every pixel a gradient from the first step; the class-averaged Jaccard
    term pulls towards what is measured, the overlap of every class's regions. For one sigmoid
    channel it equals :func:`bce_jaccard_loss` with the background counted as a class.

    Parameters
    ----------
    y_true, y_pred : tensor
        Class numbers (or one-hot) and softmax probabilities, as in :func:`multiclass_jaccard_loss`.
    include_background : bool, default True
        Whether class 0 is one of the classes averaged in the Jaccard term.
    smooth : float, default 1.0

    Returns
    -------
    tensor
        float32, shape ``(batch,)``; about 0 for a perfect prediction.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([[[[0], [1], [2]]]])
    >>> round(float(ce_jaccard_loss(t, np.eye(3, dtype="float32")[None, None])[0]), 4)
    0.0
    """
    return ce_loss(y_true, y_pred) + multiclass_jaccard_loss(y_true, y_pred, include_background, smooth)


@keras.saving.register_keras_serializable(package="helpers")
def ce_dice_loss(y_true, y_pred, include_background: bool = True, smooth: float = 1.0):
    """Categorical cross-entropy plus :func:`multiclass_dice_loss`.

    Parameters
    ----------
    y_true, y_pred : tensor
        Class numbers (or one-hot) and softmax probabilities.
    include_background : bool, default True
    smooth : float, default 1.0

    Returns
    -------
    tensor
        float32, shape ``(batch,)``.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([[[[0], [1]]]])
    >>> round(float(ce_dice_loss(t, np.eye(2, dtype="float32")[None, None])[0]), 4)
    0.0
    """
    return ce_loss(y_true, y_pred) + multiclass_dice_loss(y_true, y_pred, include_background, smooth)


#: The multi-class counterparts of the binary losses' names (``python -m helpers train --loss``
#: with masks of more than two classes).
MULTICLASS_LOSSES = {"bce": ce_loss, "jaccard": multiclass_jaccard_loss, "bce_jaccard": ce_jaccard_loss,
                     "bce_dice": ce_dice_loss}


@keras.saving.register_keras_serializable(package="helpers")
class MultiClassLoss(keras.losses.Loss):
    """A multi-class loss chosen by its binary counterpart's name, with ``include_background`` set.

    The functions above take ``include_background`` as an argument, which ``model.compile`` cannot
    pass; this class holds it, and saves it with the model.

    Parameters
    ----------
    kind : str, default "bce_jaccard"
        ``"bce"`` (categorical cross-entropy, :func:`ce_loss`), ``"jaccard"``, ``"bce_jaccard"`` or
        ``"bce_dice"`` (the keys of :data:`MULTICLASS_LOSSES`).
    include_background : bool, default True
        Whether class 0 counts in the Jaccard or Dice term.
    smooth : float, default 1.0
        Smoothing term of the Jaccard or Dice term.
    name : str, optional
        Loss name; default the function's name, e.g. ``"ce_jaccard_loss"``.

    Raises
    ------
    ValueError
        An unknown ``kind`` (the message lists the known ones).

    Examples
    --------
    >>> import numpy as np
    >>> loss = MultiClassLoss("jaccard", include_background=False)
    >>> t = np.array([[[[0], [1]]]]); p = np.array([[[[0.5, 0.5], [0.5, 0.5]]]], "float32")
    >>> loss.name, round(float(loss(t, p)), 3)       # class 1 only: 1 - (0.5 + 1) / (1.5 + 1)
    ('multiclass_jaccard_loss', 0.4)
    >>> model.compile("adam", loss=MultiClassLoss("bce_jaccard", include_background=False))  # doctest: +SKIP
    """

    def __init__(self, kind: str = "bce_jaccard", include_background: bool = True, smooth: float = 1.0,
                 name: str | None = None, **kwargs):
        if kind not in MULTICLASS_LOSSES:
            raise ValueError(f"unknown multi-class loss {kind!r}; choose one of {', '.join(MULTICLASS_LOSSES)}.")
        kwargs.pop("reduction", None)
        super().__init__(name=name or MULTICLASS_LOSSES[kind].__name__, **kwargs)
        self.kind, self.include_background, self.smooth = kind, bool(include_background), float(smooth)

    def call(self, y_true, y_pred):
        if self.kind == "bce":
            return ce_loss(y_true, y_pred)
        return MULTICLASS_LOSSES[self.kind](y_true, y_pred, self.include_background, self.smooth)

    def get_config(self) -> dict:
        return {"kind": self.kind, "include_background": self.include_background, "smooth": self.smooth,
                "name": self.name}


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
    return _bce_per_image(y_true, y_pred) + dice_loss(y_true, y_pred, smooth=smooth)


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
        loss = _bce_per_image(y_true, y_pred, pixel_weights)
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
