"""Cut images into tiles and put them back together, and predict large images tile by tile.

A U-Net is fully convolutional, so it can segment an image of any size, but a large image (or a
large batch) may not fit in GPU memory. The usual remedy is to cut the image into tiles, predict
each tile and stitch the predictions. Done naively this leaves *seams*: a pixel near a tile edge is
predicted with half its context missing (the convolutions see zero padding instead of the
neighbouring tissue), so predictions jump where two tiles meet. Here tiles overlap and the
predictions are blended with a smooth window that trusts each tile least near its edges.

Differences to keras-unet's ``get_patches``/``reconstruct_from_patches``: any height x width works
(the border is padded by reflection and the padding is removed again), and overlapping tiles are
averaged with per-pixel weights instead of overwriting each other.

Examples
--------
>>> import numpy as np
>>> images = np.random.rand(2, 37, 53, 1).astype("float32")
>>> patches, info = get_patches(images, size=16, stride=12)
>>> patches.shape
(30, 16, 16, 1)
>>> np.array_equal(reconstruct_from_patches(patches, info), images)
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "TileInfo",
    "get_patches",
    "reconstruct_from_patches",
    "blend_window",
    "predict_tiled",
    "seam_error",
]


@dataclass(frozen=True)
class TileInfo:
    """What :func:`reconstruct_from_patches` needs to undo :func:`get_patches`.

    Attributes
    ----------
    image_shape : tuple of int
        Shape of the input, ``(N, H, W, C)`` (a single ``(H, W, C)`` image is stored with N = 1).
    batched : bool
        False when the input was a single ``(H, W, C)`` image; the reconstruction then drops N.
    padded_shape : tuple of int
        ``(H_padded, W_padded)`` after padding the bottom and right border.
    positions : tuple of (int, int)
        Top-left corner ``(y, x)`` of every tile in the padded image, row by row.
    size : int
        Tile height and width.
    stride : int
        Step between neighbouring tiles; ``size - stride`` pixels overlap.
    """

    image_shape: tuple[int, int, int, int]
    batched: bool
    padded_shape: tuple[int, int]
    positions: tuple[tuple[int, int], ...]
    size: int
    stride: int

    @property
    def n_tiles(self) -> int:
        """Number of tiles per image."""
        return len(self.positions)


def _starts(length: int, size: int, stride: int) -> list[int]:
    """Start offsets on one axis: a tile of ``size`` every ``stride`` until ``length`` is done."""
    n = 1 + max(0, math.ceil((length - size) / stride))
    return [i * stride for i in range(n)]


def _as_batch(images: np.ndarray) -> tuple[np.ndarray, bool]:
    images = np.asarray(images)
    if images.ndim == 3:
        return images[np.newaxis], False
    if images.ndim == 4:
        return images, True
    raise ValueError(
        f"images must have shape (H, W, C) or (N, H, W, C), got {images.shape}; "
        "add a channel axis to a 2-D image with image[..., None]"
    )


def get_patches(
    images: np.ndarray, size: int, stride: int | None = None
) -> tuple[np.ndarray, TileInfo]:
    """Cut images of any size into square tiles of ``size`` x ``size`` pixels.

    The bottom and right border are padded by reflection (mirroring the image, as in the U-Net
    paper) just enough for the tile grid to cover the whole image; an image smaller than a tile
    becomes a single padded tile.

    Parameters
    ----------
    images : np.ndarray
        ``(N, H, W, C)`` batch or a single ``(H, W, C)`` image; any H and W.
    size : int
        Tile height and width in pixels.
    stride : int, optional
        Step between tiles, ``1 <= stride <= size``; default ``size`` (no overlap). A smaller
        stride makes neighbouring tiles overlap by ``size - stride`` pixels.

    Returns
    -------
    patches : np.ndarray
        ``(N * n_tiles, size, size, C)``, image by image, tiles row by row within an image.
    info : TileInfo
        Everything :func:`reconstruct_from_patches` needs to undo the cut.

    Examples
    --------
    >>> import numpy as np
    >>> patches, info = get_patches(np.zeros((100, 70, 1)), size=64)
    >>> patches.shape, info.padded_shape
    ((4, 64, 64, 1), (128, 128))
    """
    batch, batched = _as_batch(images)
    if stride is None:
        stride = size
    if size < 1 or not 1 <= stride <= size:
        raise ValueError(
            f"need size >= 1 and 1 <= stride <= size, got size={size}, stride={stride}; "
            "a stride larger than the tile would leave pixels that no tile covers"
        )
    n, height, width, _ = batch.shape
    ys, xs = _starts(height, size, stride), _starts(width, size, stride)
    padded_h, padded_w = ys[-1] + size, xs[-1] + size
    padded = np.pad(
        batch, ((0, 0), (0, padded_h - height), (0, padded_w - width), (0, 0)), mode="reflect"
    )
    positions = tuple((y, x) for y in ys for x in xs)
    tiles = np.stack([padded[:, y : y + size, x : x + size] for y, x in positions], axis=1)
    info = TileInfo(
        image_shape=tuple(batch.shape),
        batched=batched,
        padded_shape=(padded_h, padded_w),
        positions=positions,
        size=size,
        stride=stride,
    )
    return tiles.reshape(n * len(positions), size, size, -1), info


def reconstruct_from_patches(
    patches: np.ndarray, info: TileInfo, window: np.ndarray | None = None
) -> np.ndarray:
    """Put tiles back together, averaging where they overlap, and crop the padding.

    Every output pixel is the weighted mean of all tiles covering it,
    ``sum(w * tile) / sum(w)``, with the weight ``w`` of a pixel given by its position inside the
    tile. With ``window=None`` all weights are 1 (a plain average). The sums are accumulated in
    float64, so for float32 (or integer) tiles cut by :func:`get_patches`, cutting and
    reconstructing gives back the input exactly, for any stride.

    Parameters
    ----------
    patches : np.ndarray
        ``(N * n_tiles, size, size, C)`` in the order :func:`get_patches` produces; C may differ
        from the input's (e.g. a model's output channels).
    info : TileInfo
        From :func:`get_patches`.
    window : np.ndarray, optional
        ``(size, size)`` strictly positive per-pixel weights, e.g. :func:`blend_window`.

    Returns
    -------
    np.ndarray
        ``(N, H, W, C)`` (or ``(H, W, C)`` when a single image was cut), float32 for float32 or
        integer tiles, float64 for float64 tiles.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.random.rand(50, 30, 3)
    >>> patches, info = get_patches(image, size=16, stride=8)
    >>> np.allclose(reconstruct_from_patches(patches, info, blend_window(16, 8)), image)
    True
    """
    patches = np.asarray(patches)
    n, height, width, _ = info.image_shape
    size, n_tiles = info.size, info.n_tiles
    if patches.ndim != 4 or patches.shape[0] != n * n_tiles or patches.shape[1:3] != (size, size):
        raise ValueError(
            f"patches of shape {patches.shape} do not match the tiling: expected "
            f"({n * n_tiles}, {size}, {size}, C) = {n} image(s) x {n_tiles} tiles; "
            "pass the TileInfo returned by the same get_patches call"
        )
    if window is None:
        window = np.ones((size, size))
    window = np.asarray(window, dtype=np.float64)
    if window.shape != (size, size) or not np.all(np.isfinite(window)) or window.min() <= 0:
        raise ValueError(
            f"window must be a finite, strictly positive ({size}, {size}) array, got shape "
            f"{window.shape}; use blend_window({size}, overlap) or None for a plain average"
        )
    tiles = patches.reshape(n, n_tiles, size, size, -1)
    total = np.zeros((n, *info.padded_shape, tiles.shape[-1]))
    weight = np.zeros(info.padded_shape)
    for k, (y, x) in enumerate(info.positions):
        total[:, y : y + size, x : x + size] += tiles[:, k] * window[:, :, None]
        weight[y : y + size, x : x + size] += window
    merged = total / weight[:, :, None]
    out = merged[:, :height, :width].astype(np.result_type(patches.dtype, np.float32))
    return out if info.batched else out[0]


def blend_window(size: int, overlap: int) -> np.ndarray:
    """A smooth ``(size, size)`` weight window for blending overlapping tiles.

    Why blending removes seams: a U-Net's prediction for a pixel depends on a neighbourhood of
    roughly its receptive field. Near a tile edge part of that neighbourhood is cut off and
    replaced by zero padding, so the prediction there is worse and differs from the neighbouring
    tile's, which shows as a seam when tiles are simply placed side by side. With overlapping tiles
    every pixel near one tile's edge lies well inside another tile; this window gives each tile a
    weight that rises smoothly (a raised cosine, ``sin**2``) from almost 0 at its edge to 1 over
    ``overlap`` pixels and stays 1 in the middle, so each pixel is taken mostly from the tile that
    saw its full context, and the transition between tiles is gradual instead of a jump. For a
    stride of ``size - overlap`` the rising and falling ramps of two neighbours add up to exactly 1.
    The weights are strictly positive so that pixels covered by a single tile still have weight.

    Parameters
    ----------
    size : int
        Tile height and width.
    overlap : int
        Width of the tapered margin, ``0 <= overlap``; 0 gives all ones (no blending). Margins
        wider than half the tile meet in the middle (the window is then the smaller ramp).

    Returns
    -------
    np.ndarray
        float64 ``(size, size)``, symmetric, values in (0, 1], maximum 1.

    Examples
    --------
    >>> w = blend_window(16, 4)
    >>> round(float(w[0, 8]), 3), float(w[8, 8])
    (0.038, 1.0)
    """
    if size < 1 or overlap < 0:
        raise ValueError(f"need size >= 1 and overlap >= 0, got size={size}, overlap={overlap}")
    i = np.arange(size)
    distance = np.minimum(i, size - 1 - i) + 0.5  # from the nearer edge, in pixels
    ramp = np.sin(np.pi / 2 * np.minimum(distance / max(overlap, 1), 1.0)) ** 2
    profile = np.where(distance < overlap, ramp, 1.0)
    return np.outer(profile, profile)


def predict_tiled(
    model,
    image: np.ndarray,
    tile: int = 128,
    overlap: int = 32,
    batch_size: int = 8,
    verbose: int = 0,
) -> np.ndarray:
    """Predict an image of any size tile by tile, blending overlapping tiles without seams.

    Tiles of ``tile`` pixels are cut every ``tile - overlap`` pixels (the border is padded by
    reflection), predicted in batches, blended with :func:`blend_window` and cropped back to the
    input's size. ``overlap=0`` gives the plain side-by-side stitch of the original workshop.

    A U-Net with ``d`` pooling levels gives the same result for an image shifted by a multiple of
    ``2**d`` pixels only, so choose ``tile`` and ``tile - overlap`` as multiples of ``2**d`` (the
    defaults suit up to 5 levels) for the tiled result to be closest to a whole-image prediction.

    Parameters
    ----------
    model : keras.Model
        Maps ``(B, tile, tile, C)`` to ``(B, tile, tile, K)`` (a 'same'-padded U-Net).
    image : np.ndarray
        ``(H, W, C)`` or ``(N, H, W, C)`` in the model's input range; any H and W, also smaller
        than a tile.
    tile : int
        Tile size in pixels (must suit the model, e.g. divisible by ``2**num_layers``).
    overlap : int
        Pixels shared by neighbouring tiles, ``0 <= overlap < tile``. About the distance over
        which the model's predictions suffer from a missing border (16-64 for a small U-Net).
    batch_size : int
        Tiles per ``model.predict`` batch (lower it if memory runs out).
    verbose : int
        Passed to ``model.predict``.

    Returns
    -------
    np.ndarray
        float32 ``(H, W, K)`` or ``(N, H, W, K)``: the same spatial size as ``image``, with the
        model's K output channels. For a softmax over K classes every pixel's blended
        probabilities still sum to 1 (a weighted mean of distributions is one), so the arg-max
        (:func:`helpers.predict.class_map`) picks the class the overlapping tiles agree on most.

    Examples
    --------
    >>> import numpy as np
    >>> from helpers.models import build_unet
    >>> model = build_unet((None, None, 1), filters=4, num_layers=2)
    >>> predict_tiled(model, np.random.rand(70, 45, 1), tile=32, overlap=8).shape
    (70, 45, 1)
    """
    if not 0 <= overlap < tile:
        raise ValueError(
            f"overlap must satisfy 0 <= overlap < tile, got overlap={overlap}, tile={tile}; "
            f"neighbouring tiles are cut every tile - overlap pixels (e.g. tile={tile}, "
            f"overlap={tile // 4})"
        )
    patches, info = get_patches(np.asarray(image, dtype=np.float32), tile, tile - overlap)
    predicted = np.asarray(model.predict(patches, batch_size=batch_size, verbose=verbose))
    if predicted.shape[:3] != patches.shape[:3]:
        raise ValueError(
            f"the model turned {tile}x{tile} tiles into {predicted.shape[1:3]} outputs; "
            "predict_tiled needs a model whose output has its input's size ('same' padding, "
            "e.g. build_unet or custom_unet, not vanilla_unet's 'valid' convolutions)"
        )
    window = blend_window(tile, overlap)
    return reconstruct_from_patches(predicted, info, window).astype(np.float32)


def seam_error(
    prediction: np.ndarray, reference: np.ndarray, tile: int, overlap: int = 0, width: int = 1
) -> dict[str, float]:
    """How far a tiled prediction is from a reference (e.g. the whole-image prediction).

    Parameters
    ----------
    prediction, reference : np.ndarray
        Same shape, ``(H, W, ...)`` or ``(N, H, W, ...)`` with ``(H, W)`` on axes -3 and -2 when
        4-D; a 2-D ``(H, W)`` array also works.
    tile, overlap : int
        The tiling used for ``prediction`` (as passed to :func:`predict_tiled`).
    width : int
        Pixels on each side of a tile edge that count as "at the edge".

    Returns
    -------
    dict
        ``mean_abs`` and ``max_abs`` over all pixels; ``edge_mean_abs`` and ``edge_max_abs`` over
        the rows and columns at internal tile edges (within ``width`` pixels of where a tile starts
        or ends, image borders excluded), where seams appear.

    Examples
    --------
    >>> import numpy as np
    >>> seam_error(np.zeros((64, 64)), np.ones((64, 64)), tile=32)["edge_max_abs"]
    1.0
    """
    diff = np.abs(np.asarray(prediction, np.float64) - np.asarray(reference, np.float64))
    if diff.ndim == 2:
        diff = diff[..., None]
    h_axis = 0 if diff.ndim == 3 else 1
    height, width_px = diff.shape[h_axis], diff.shape[h_axis + 1]

    def edge_mask(length: int) -> np.ndarray:
        mask = np.zeros(length, bool)
        for start in _starts(length, tile, tile - overlap):
            for edge in (start, start + tile):  # first pixel of a tile / first pixel after it
                if 0 < edge < length:
                    mask[max(edge - width, 0) : edge + width] = True
        return mask

    rows, cols = edge_mask(height), edge_mask(width_px)
    at_edge = rows[:, None] | cols[None, :]
    edge = np.moveaxis(diff, (h_axis, h_axis + 1), (0, 1))[at_edge]
    return {
        "mean_abs": float(diff.mean()),
        "max_abs": float(diff.max()),
        "edge_mean_abs": float(edge.mean()) if edge.size else 0.0,
        "edge_max_abs": float(edge.max()) if edge.size else 0.0,
    }
