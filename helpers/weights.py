"""The U-Net paper's weight map: make the thin gaps between touching cells expensive.

Ronneberger, Fischer and Brox (2015), "U-Net: Convolutional Networks for Biomedical Image
Segmentation", section 3, give every pixel ``x`` of a training mask the weight

.. math::

    w(x) = w_c(x) + w_0 \\exp\\left(-\\frac{(d_1(x) + d_2(x))^2}{2\\sigma^2}\\right)

* ``w_c`` balances the class frequencies (here: each class gets ``n / (K n_c)``, so the mean
  weight of an image is 1 and rare membrane pixels weigh more than common cell pixels);
* ``d_1`` and ``d_2`` are the distances to the nearest and the second-nearest object (cell);
* the paper uses ``w_0 = 10`` and ``sigma ≈ 5`` pixels.

The border term is large only on the pixels that lie between two objects closer than a few
``sigma``: the narrow membrane between two touching cells. A model that misses such a gap merges
the two cells, which costs little pixel accuracy but a lot of V_rand (the ISBI score); weighting
those pixels makes the gap cost what it is worth.

Here the border term is added on the pixels *between* objects only (where no object is), as in
the paper's figure 3d, and objects farther than ``4 sigma`` from a pixel are ignored (their term
is below ``w_0 e^{-8}``, about 0.003 for ``w_0 = 10``), the way Gaussian filters truncate.

For the ISBI membrane masks (1 = membrane) the objects are the cells, the connected regions of
0 (``objects="background"``); for nuclei or cells on background they are the connected regions
of 1 (``objects="foreground"``).

Examples
--------
>>> import numpy as np
>>> from helpers import weights
>>> mask = np.zeros((5, 9), "uint8"); mask[:, 3:6] = 1       # two cells, a 3-px membrane
>>> w = weights.border_weight_map(mask, w0=10, sigma=2)
>>> round(float(w[0, 4]), 3), round(float(w[0, 0]), 3)       # membrane: 1.5 + 10 e^-2; cell
(2.853, 0.75)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["W0", "SIGMA", "object_labels", "class_balance", "border_weight_map", "weight_maps", "guess_objects"]

#: The U-Net paper's values (section 3): border weight and its length scale in pixels.
W0 = 10.0
SIGMA = 5.0
OBJECTS = ("background", "foreground")


def _as_2d(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(f"expected one mask (H, W) or (H, W, 1), got shape {mask.shape}; "
                         "call weight_maps for a stack of masks.")
    return mask


def object_labels(mask: np.ndarray, objects: str = "background") -> np.ndarray:
    """Label the objects of a binary mask: the connected regions of 0 or of 1 (4-connected).

    Parameters
    ----------
    mask : np.ndarray
        (H, W) or (H, W, 1) binary mask (any value > 0.5 is 1).
    objects : {"background", "foreground"}
        ``"background"``: objects are the regions of 0 separated by 1 (cells between ISBI
        membranes); ``"foreground"``: objects are the regions of 1 (nuclei on background).

    Returns
    -------
    np.ndarray
        int32 labels, 0 between objects, 1..M for the M objects.

    Examples
    --------
    >>> mask = np.zeros((3, 5)); mask[:, 2] = 1
    >>> int(object_labels(mask).max())
    2
    """
    from scipy import ndimage

    if objects not in OBJECTS:
        raise ValueError(f"objects={objects!r}: use 'background' (cells between membranes, ISBI) "
                         "or 'foreground' (objects on background).")
    binary = _as_2d(mask) > 0.5
    inside = ~binary if objects == "background" else binary
    labels, _ = ndimage.label(inside)
    return labels.astype(np.int32)


def class_balance(mask: np.ndarray) -> np.ndarray:
    """The paper's ``w_c``: each pixel weighs ``n / (K n_c)``, n_c the pixels of its class.

    Parameters
    ----------
    mask : np.ndarray
        (H, W) or (H, W, 1) binary mask.

    Returns
    -------
    np.ndarray
        float32 (H, W) weights with mean 1 (all 1 when the mask has one class only).

    Examples
    --------
    >>> mask = np.zeros((2, 4)); mask[:, 0] = 1
    >>> class_balance(mask)[0].tolist()
    [2.0, 0.6666666865348816, 0.6666666865348816, 0.6666666865348816]
    """
    binary = _as_2d(mask) > 0.5
    n, ones = binary.size, int(binary.sum())
    if ones in (0, n):
        return np.ones(binary.shape, np.float32)
    return np.where(binary, n / (2 * ones), n / (2 * (n - ones))).astype(np.float32)


def border_weight_map(mask: np.ndarray, w0: float = W0, sigma: float = SIGMA,
                      objects: str = "background", balance: bool = True) -> np.ndarray:
    """The U-Net paper's weight map of one mask: ``w_c + w0 exp(-(d1 + d2)² / 2σ²)``.

    Parameters
    ----------
    mask : np.ndarray
        (H, W) or (H, W, 1) binary mask (for ISBI: 1 = membrane).
    w0 : float, default 10
        Weight of the border term.
    sigma : float, default 5
        Its length scale in pixels.
    objects : {"background", "foreground"}
        Which regions are the objects (see :func:`object_labels`).
    balance : bool, default True
        Add the class-balance term :func:`class_balance`; False adds 1 instead.

    Returns
    -------
    np.ndarray
        float32 (H, W) weights, >= the class weights, largest in narrow gaps between objects.

    Raises
    ------
    ValueError
        For a mask that is not 2-D (or (H, W, 1)), ``sigma <= 0`` or ``w0 < 0``.

    Examples
    --------
    >>> mask = np.zeros((5, 9), "uint8"); mask[:, 3:6] = 1
    >>> [round(float(v), 2) for v in border_weight_map(mask, sigma=2)[0]]
    [0.75, 0.75, 0.75, 2.85, 2.85, 2.85, 0.75, 0.75, 0.75]
    """
    from scipy import ndimage

    if sigma <= 0 or w0 < 0:
        raise ValueError(f"need sigma > 0 and w0 >= 0, got sigma={sigma}, w0={w0}.")
    labels = object_labels(mask, objects)
    base = class_balance(mask) if balance else np.ones(labels.shape, np.float32)
    if w0 == 0 or labels.max() < 2:
        return base
    reach = int(math.ceil(4 * sigma))  # farther objects add < w0 e^-8
    height, width = labels.shape
    d1 = np.full(labels.shape, np.inf, np.float32)
    d2 = np.full(labels.shape, np.inf, np.float32)
    for label, window in enumerate(ndimage.find_objects(labels), start=1):
        rows, cols = window
        r0, r1 = max(rows.start - reach, 0), min(rows.stop + reach, height)
        c0, c1 = max(cols.start - reach, 0), min(cols.stop + reach, width)
        # distance of every pixel in the window to this object (the object lies inside it)
        distance = ndimage.distance_transform_edt(labels[r0:r1, c0:c1] != label).astype(np.float32)
        near1, near2 = d1[r0:r1, c0:c1], d2[r0:r1, c0:c1]  # views: updated in place
        near2[...] = np.where(distance < near1, near1, np.minimum(near2, distance))
        near1[...] = np.minimum(near1, distance)
    border = w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2))
    return (base + np.where(labels == 0, border, 0)).astype(np.float32)


def weight_maps(masks: np.ndarray, w0: float = W0, sigma: float = SIGMA,
                objects: str = "background", balance: bool = True) -> np.ndarray:
    """:func:`border_weight_map` of each mask of a stack.

    Parameters
    ----------
    masks : np.ndarray
        (N, H, W) or (N, H, W, 1) binary masks.
    w0, sigma, objects, balance
        As in :func:`border_weight_map`.

    Returns
    -------
    np.ndarray
        float32 (N, H, W) weights: pass them to ``augment.get_augmented(..., weights=...)``.

    Examples
    --------
    >>> masks = np.zeros((2, 5, 9)); masks[:, :, 3:6] = 1
    >>> weight_maps(masks, sigma=2).shape
    (2, 5, 9)
    """
    masks = np.asarray(masks)
    if masks.ndim == 4 and masks.shape[-1] == 1:
        masks = masks[..., 0]
    if masks.ndim != 3:
        raise ValueError(f"expected masks (N, H, W) or (N, H, W, 1), got shape {masks.shape}.")
    return np.stack([border_weight_map(m, w0, sigma, objects, balance) for m in masks])


def guess_objects(masks) -> str:
    """Which side of binary masks holds the objects: the one split into more connected regions.

    Membrane masks (ISBI: 1 = membrane) are a connected network of lines around many cells, so the
    objects are the regions of 0 (``"background"``); nuclei on a background are many regions of 1
    around one background (``"foreground"``).

    Parameters
    ----------
    masks : sequence of np.ndarray
        Binary masks, each (H, W) or (H, W, 1) (sizes may differ).

    Returns
    -------
    str
        ``"background"`` or ``"foreground"`` (ties: ``"foreground"``).

    Examples
    --------
    >>> mask = np.zeros((5, 9)); mask[:, 3:6] = 1          # two cells, one membrane
    >>> guess_objects([mask]), guess_objects([1 - mask])
    ('background', 'foreground')
    """
    from scipy import ndimage

    regions = {"background": 0, "foreground": 0}
    for mask in masks:
        binary = _as_2d(mask) > 0.5
        regions["background"] += ndimage.label(~binary)[1]
        regions["foreground"] += ndimage.label(binary)[1]
    return "background" if regions["background"] > regions["foreground"] else "foreground"
