"""The U-Net paper's weight map ``w = w_c + w0 exp(-(d1 + d2)² / 2σ²)``; d1, d2: distances to the two nearest objects."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["W0", "SIGMA", "class_balance", "border_weight_map", "weight_maps", "guess_objects"]

#: The U-Net paper's values (section 3): border weight and its length scale in pixels.
W0 = 10.0
SIGMA = 5.0
_OBJECTS = ("background", "foreground")


def _as_2d(mask: np.ndarray) -> np.ndarray:
    """One mask as (H, W)."""
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(f"mask has shape {mask.shape}; pass one mask (H, W) or (H, W, 1), or call "
                         "weight_maps for a stack of masks.")
    return mask


def _object_labels(mask: np.ndarray, objects: str = "background") -> np.ndarray:
    """int32 labels of the objects: the 4-connected regions of 0 (``"background"``) or of 1 (``"foreground"``)."""
    from scipy import ndimage

    if objects not in _OBJECTS:
        raise ValueError(f"objects={objects!r}: use 'background' (cells between membranes, ISBI) "
                         "or 'foreground' (objects on background).")
    binary = _as_2d(mask) > 0.5
    inside = ~binary if objects == "background" else binary
    return ndimage.label(inside)[0].astype(np.int32)


def class_balance(mask: np.ndarray) -> np.ndarray:
    """The paper's ``w_c``: each pixel weighs ``n / (2 n_c)``, ``n_c`` the pixels of its class.

    Parameters
    ----------
    mask : np.ndarray
        (H, W) or (H, W, 1) binary mask.

    Returns
    -------
    np.ndarray
        float32 (H, W) weights with mean 1 (all 1 for a one-class mask).

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
        (H, W) or (H, W, 1) binary mask (ISBI: 1 = membrane).
    w0, sigma : float
        Weight of the border term and its length scale in pixels (the paper's 10 and 5).
    objects, balance
        Objects: regions of 0 (cells between membranes) or of 1 (nuclei); add :func:`class_balance` (else 1).

    Returns
    -------
    np.ndarray
        float32 (H, W) weights, largest in narrow gaps between objects.

    Raises
    ------
    ValueError
        For a mask that is not 2-D, ``sigma <= 0`` or ``w0 < 0``.

    Examples
    --------
    >>> mask = np.zeros((5, 9), "uint8"); mask[:, 3:6] = 1       # two cells, a 3-px membrane
    >>> [round(float(v), 2) for v in border_weight_map(mask, sigma=2)[0]]  # membrane: 1.5 + 10 e^-2
    [0.75, 0.75, 0.75, 2.85, 2.85, 2.85, 0.75, 0.75, 0.75]
    """
    from scipy import ndimage

    if sigma <= 0 or w0 < 0:
        raise ValueError(f"sigma={sigma}, w0={w0}: use sigma > 0 (pixels) and w0 >= 0 (0 switches the border term off).")
    labels = _object_labels(mask, objects)
    base = class_balance(mask) if balance else np.ones(labels.shape, np.float32)
    if w0 == 0 or labels.max() < 2:
        return base
    reach = int(math.ceil(4 * sigma))  # farther objects add < w0 e^-8
    height, width = labels.shape
    d1 = np.full(labels.shape, np.inf, np.float32)
    d2 = np.full(labels.shape, np.inf, np.float32)
    for label, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1):
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
        float32 (N, H, W), for ``augment.get_augmented(..., weights=...)``.

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
        raise ValueError(f"masks has shape {masks.shape}; pass a stack (N, H, W) or (N, H, W, 1).")
    return np.stack([border_weight_map(m, w0, sigma, objects, balance) for m in masks])


def guess_objects(masks) -> str:
    """Which side of binary masks holds the objects: the one split into more connected regions.

    Parameters
    ----------
    masks : sequence of np.ndarray
        Binary masks, each (H, W) or (H, W, 1).

    Returns
    -------
    str
        ``"background"`` or ``"foreground"`` (ties).

    Examples
    --------
    >>> mask = np.zeros((5, 9)); mask[:, 3:6] = 1          # two cells, one membrane
    >>> guess_objects([mask]), guess_objects([1 - mask])
    ('background', 'foreground')
    """
    regions = {side: sum(int(_object_labels(mask, side).max()) for mask in masks) for side in _OBJECTS}
    return "background" if regions["background"] > regions["foreground"] else "foreground"
