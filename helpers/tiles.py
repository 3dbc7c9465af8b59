"""Cut images into overlapping tiles, put them back together, and predict large images tile by tile."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TileInfo", "tile_starts", "get_patches", "reconstruct_from_patches", "blend_window", "predict_tiled",
           "seam_error"]


@dataclass(frozen=True)
class TileInfo:
    """What :func:`reconstruct_from_patches` needs to undo :func:`get_patches`.

    Attributes: the input's ``image_shape`` ``(N, H, W, C)`` (N = 1 for one image); ``batched``, False
    for a single ``(H, W, C)`` image; ``padded_shape`` ``(H, W)`` after padding; the top-left corner
    ``(y, x)`` of every tile in ``positions``, row by row; the tile ``size`` and the ``stride``.
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


def tile_starts(length: int, size: int, stride: int) -> list[int]:
    """Start offsets on one axis: a tile of ``size`` every ``stride`` until ``length`` is done (the tile grid).

    Examples
    --------
    >>> tile_starts(300, 128, 96)
    [0, 96, 192]
    """
    return list(range(0, max(length - size, 0) + stride, stride))  # the last tile reaches the end


def _as_batch(images: np.ndarray) -> tuple[np.ndarray, bool]:
    """``(N, H, W, C)`` and whether the input was a batch."""
    images = np.asarray(images)
    if images.ndim == 3:
        return images[np.newaxis], False
    if images.ndim == 4:
        return images, True
    raise ValueError(f"images must have shape (H, W, C) or (N, H, W, C), got {images.shape}; "
                     "add a channel axis to a 2-D image with image[..., None]")


def get_patches(images: np.ndarray, size: int, stride: int | None = None) -> tuple[np.ndarray, TileInfo]:
    """Cut images of any size into square tiles, padding the bottom and right border by reflection.

    Parameters
    ----------
    images : np.ndarray
        ``(N, H, W, C)`` batch or a single ``(H, W, C)`` image; any H and W.
    size, stride : int
        Tile height and width in pixels; step between tiles, ``1 <= stride <= size`` (default ``size``: no overlap).

    Returns
    -------
    patches : np.ndarray
        ``(N * n_tiles, size, size, C)``, image by image, tiles row by row within an image.
    info : TileInfo
        Everything :func:`reconstruct_from_patches` needs to undo the cut.

    Examples
    --------
    >>> patches, info = get_patches(np.zeros((100, 70, 1)), size=64)
    >>> patches.shape, info.padded_shape
    ((4, 64, 64, 1), (128, 128))
    """
    batch, batched = _as_batch(images)
    stride = size if stride is None else stride
    if size < 1 or not 1 <= stride <= size:
        raise ValueError(f"need size >= 1 and 1 <= stride <= size, got size={size}, stride={stride}; "
                         "a stride larger than the tile would leave pixels that no tile covers")
    n, height, width, _ = batch.shape
    ys, xs = tile_starts(height, size, stride), tile_starts(width, size, stride)
    padded_h, padded_w = ys[-1] + size, xs[-1] + size
    padded = np.pad(batch, ((0, 0), (0, padded_h - height), (0, padded_w - width), (0, 0)), mode="reflect")
    positions = tuple((y, x) for y in ys for x in xs)
    tiles = np.stack([padded[:, y : y + size, x : x + size] for y, x in positions], axis=1)
    info = TileInfo(image_shape=tuple(batch.shape), batched=batched, padded_shape=(padded_h, padded_w),
                    positions=positions, size=size, stride=stride)
    return tiles.reshape(n * len(positions), size, size, -1), info


def reconstruct_from_patches(patches: np.ndarray, info: TileInfo, window: np.ndarray | None = None) -> np.ndarray:
    """Put tiles back together, a weighted mean ``sum(w * tile) / sum(w)`` where they overlap, and crop.

    Parameters
    ----------
    patches, info
        ``(N * n_tiles, size, size, C)`` in the order of :func:`get_patches` (C may differ from the input's,
        e.g. a model's output channels), and the :class:`TileInfo` it returned.
    window : np.ndarray, optional
        ``(size, size)`` strictly positive per-pixel weights, e.g. :func:`blend_window`; default all 1.

    Returns
    -------
    np.ndarray
        ``(N, H, W, C)`` (or ``(H, W, C)`` when a single image was cut), float32 for float32 or
        integer tiles, float64 for float64 tiles.

    Examples
    --------
    >>> image = np.random.rand(50, 30, 3)
    >>> patches, info = get_patches(image, size=16, stride=8)
    >>> np.allclose(reconstruct_from_patches(patches, info, blend_window(16, 8)), image)
    True
    """
    patches = np.asarray(patches)
    n, height, width, _ = info.image_shape
    size, n_tiles = info.size, info.n_tiles
    if patches.ndim != 4 or patches.shape[0] != n * n_tiles or patches.shape[1:3] != (size, size):
        raise ValueError(f"patches of shape {patches.shape} do not match the tiling: expected "
                         f"({n * n_tiles}, {size}, {size}, C) = {n} image(s) x {n_tiles} tiles; "
                         "pass the TileInfo returned by the same get_patches call")
    window = np.ones((size, size)) if window is None else np.asarray(window, dtype=np.float64)
    if window.shape != (size, size) or not np.all(np.isfinite(window)) or window.min() <= 0:
        raise ValueError(f"window must be a finite, strictly positive ({size}, {size}) array, got shape "
                         f"{window.shape}; use blend_window({size}, overlap) or None for a plain average")
    tiles = patches.reshape(n, n_tiles, size, size, -1)
    total = np.zeros((n, *info.padded_shape, tiles.shape[-1]))
    weight = np.zeros(info.padded_shape)
    for k, (y, x) in enumerate(info.positions):
        total[:, y : y + size, x : x + size] += tiles[:, k] * window[:, :, None]
        weight[y : y + size, x : x + size] += window
    out = (total / weight[:, :, None])[:, :height, :width].astype(np.result_type(patches.dtype, np.float32))
    return out if info.batched else out[0]


def blend_window(size: int, overlap: int) -> np.ndarray:
    """A smooth ``(size, size)`` weight window: a ``sin**2`` ramp over ``overlap`` pixels from each edge.

    Parameters
    ----------
    size, overlap : int
        Tile height and width; width of the tapered margin, ``0 <= overlap`` (0: all ones, no blending).

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


def predict_tiled(model, image: np.ndarray, tile: int = 128, overlap: int = 32, batch_size: int = 8,
                  verbose: int = 0) -> np.ndarray:
    """Predict an image of any size tile by tile, blending overlapping tiles without seams.

    Parameters
    ----------
    model : keras.Model
        Maps ``(B, tile, tile, C)`` to ``(B, tile, tile, K)`` (a 'same'-padded U-Net).
    image : np.ndarray
        ``(H, W, C)`` or ``(N, H, W, C)`` in the model's input range; any H and W.
    tile, overlap : int
        Tile size and the pixels neighbouring tiles share, ``0 <= overlap < tile`` (0: side by side); make
        ``tile`` and ``tile - overlap`` multiples of ``2**num_layers`` to come closest to a whole-image prediction.
    batch_size, verbose : int
        Tiles per ``model.predict`` batch (lower it if memory runs out), and its verbosity.

    Returns
    -------
    np.ndarray
        float32 ``(H, W, K)`` or ``(N, H, W, K)``: the model's K channels at the size of ``image``.

    Examples
    --------
    >>> predict_tiled(model, np.random.rand(70, 45, 1), tile=32, overlap=8).shape   # doctest: +SKIP
    (70, 45, 1)
    """
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must satisfy 0 <= overlap < tile, got overlap={overlap}, tile={tile}; "
                         f"neighbouring tiles are cut every tile - overlap pixels (e.g. tile={tile}, "
                         f"overlap={tile // 4})")
    patches, info = get_patches(np.asarray(image, dtype=np.float32), tile, tile - overlap)
    predicted = np.asarray(model.predict(patches, batch_size=batch_size, verbose=verbose))
    if predicted.shape[:3] != patches.shape[:3]:
        raise ValueError(f"the model turned {tile}x{tile} tiles into {predicted.shape[1:3]} outputs; "
                         "predict_tiled needs a model whose output has its input's size ('same' padding, "
                         "e.g. custom_unet, not 'valid' convolutions)")
    return reconstruct_from_patches(predicted, info, blend_window(tile, overlap)).astype(np.float32)


def seam_error(prediction: np.ndarray, reference: np.ndarray, tile: int, overlap: int = 0,
               width: int = 1) -> dict[str, float]:
    """How far a tiled prediction is from a reference (e.g. the whole-image prediction), overall and at tile edges.

    Parameters
    ----------
    prediction, reference : np.ndarray
        Same shape, ``(H, W)``, ``(H, W, K)`` or ``(N, H, W, K)``.
    tile, overlap, width : int
        The tiling of ``prediction`` (as for :func:`predict_tiled`); pixels each side of a tile edge that count.

    Returns
    -------
    dict
        ``mean_abs``, ``max_abs``, and ``edge_mean_abs``, ``edge_max_abs`` over the rows and columns within
        ``width`` pixels of internal tile edges (where seams appear).

    Examples
    --------
    >>> seam_error(np.zeros((64, 64)), np.ones((64, 64)), tile=32)["edge_max_abs"]
    1.0
    """
    diff = np.abs(np.asarray(prediction, np.float64) - np.asarray(reference, np.float64))
    diff = diff[..., None] if diff.ndim == 2 else diff
    h_axis = 0 if diff.ndim == 3 else 1
    height, width_px = diff.shape[h_axis], diff.shape[h_axis + 1]

    def edge_mask(length: int) -> np.ndarray:
        mask = np.zeros(length, bool)
        for start in tile_starts(length, tile, tile - overlap):
            for edge in (start, start + tile):  # first pixel of a tile / first pixel after it
                if 0 < edge < length:
                    mask[max(edge - width, 0) : edge + width] = True
        return mask

    at_edge = edge_mask(height)[:, None] | edge_mask(width_px)[None, :]
    edge = np.moveaxis(diff, (h_axis, h_axis + 1), (0, 1))[at_edge]
    return {"mean_abs": float(diff.mean()), "max_abs": float(diff.max()),
            "edge_mean_abs": float(edge.mean()) if edge.size else 0.0,
            "edge_max_abs": float(edge.max()) if edge.size else 0.0}
