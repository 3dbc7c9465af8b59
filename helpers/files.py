"""Read and write image and mask files: float32 images in [0, 1], uint8 masks in {0, 1}, atomic writes."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

#: File suffixes treated as images (case-insensitive).
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")


def natural_key(name: str) -> list:
    """Sort key that orders ``"2"`` before ``"10"``.

    Examples
    --------
    >>> sorted(["10", "2", "1"], key=natural_key)
    ['1', '2', '10']
    """
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_images(folder: str | os.PathLike) -> dict[str, Path]:
    """Map the stem of every image file in ``folder`` (not recursive) to its path, in natural order.

    Raises
    ------
    FileNotFoundError, ValueError
        The folder is missing or holds no images; two files share a stem (``a.png``, ``a.tif``).

    Examples
    --------
    >>> list_images("data/isbi2012/test")["0"].name          # doctest: +SKIP
    '0.png'
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"Folder not found: {folder}. Check the path (it must be a folder of images).")
    found: dict[str, Path] = {}
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                       and not p.name.startswith(".")):
        if path.stem in found:
            raise ValueError(f"Two files in {folder} share the name {path.stem!r}: {found[path.stem].name} and "
                             f"{path.name}. Rename or remove one so every image has a unique name.")
        found[path.stem] = path
    if not found:
        raise FileNotFoundError(f"No images in {folder}. Put {', '.join(IMAGE_SUFFIXES)} files there "
                                f"or point at the folder that holds them.")
    return dict(sorted(found.items(), key=lambda item: natural_key(item[0])))


def _read_raw(path: str | os.PathLike, palette_indices: bool = True) -> np.ndarray:
    """Pixel values as stored, alpha dropped; a palette image gives its indices (else its colours)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"File not found: {path}")
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile
            array = tifffile.imread(path)
        else:
            from PIL import Image
            with Image.open(path) as image:
                if image.mode in ("P", "PA") and not palette_indices:
                    image = image.convert("RGB")
                elif image.mode in ("RGBA", "LA", "PA"):
                    image = image.convert(image.mode[:-1].replace("P", "RGB") or "L")
                array = np.array(image, dtype=np.uint16 if image.mode.startswith("I;16") else None)
    except Exception as error:  # PIL, tifffile and zlib raise many different types
        raise ValueError(f"Cannot read {path}: {error}. The file may be corrupt or not an image; "
                         f"check it opens in an image viewer or export it again as PNG or TIFF.") from error
    array = array[..., :3] if array.ndim == 3 and array.shape[-1] == 4 else array  # RGBA TIFF
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (1, 3)):
        raise ValueError(f"{path} has shape {array.shape}; expected a 2-D gray or RGB image (one file per slice).")
    return array


def to_float(array: np.ndarray) -> np.ndarray:
    """Scale pixel values to float32 in [0, 1]: 8-bit / 255, 16-bit / 65535, others by their own range.

    Examples
    --------
    >>> to_float(np.array([0, 255], dtype=np.uint8))
    array([0., 1.], dtype=float32)
    """
    if np.issubdtype(array.dtype, np.integer) and array.dtype.itemsize <= 2:
        return (array / np.iinfo(array.dtype).max).astype(np.float32)
    array = array.astype(np.float32)
    low, high = float(array.min()), float(array.max())
    return array if low >= 0.0 and high <= 1.0 else (array - low) / max(high - low, 1e-12)


def read_image(path: str | os.PathLike, channels: int | None = None) -> np.ndarray:
    """Read a PNG, TIFF or JPEG file (8/16-bit, gray or RGB) as float32 ``(H, W, C)`` in [0, 1].

    Parameters
    ----------
    path, channels
        The file; ``None`` keeps its channels, 1 converts RGB to gray (luminance), 3 repeats gray.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing, unreadable or corrupt file, not a 2-D gray or RGB image, or ``channels`` not None, 1 or 3.

    Examples
    --------
    >>> read_image("data/isbi2012/train/image/0.png").shape     # doctest: +SKIP
    (512, 512, 1)
    """
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be None, 1 or 3, not {channels!r}")
    image = to_float(_read_raw(path, palette_indices=False))
    return to_channels(image[..., None] if image.ndim == 2 else image, channels)


def to_channels(image: np.ndarray, channels: int | None) -> np.ndarray:
    """A float ``(H, W, C)`` image with ``channels`` channels: 1 converts RGB to gray (luminance), 3 repeats gray.

    Examples
    --------
    >>> to_channels(np.zeros((2, 2, 1), np.float32), 3).shape
    (2, 2, 3)
    """
    if channels == 1 and image.shape[-1] == 3:
        from skimage.color import rgb2gray  # luminance, ITU-R BT.709 weights
        image = rgb2gray(image).astype(np.float32)[..., None]
    return np.repeat(image, 3, axis=-1) if channels == 3 and image.shape[-1] == 1 else image


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a binary mask stored as {0, 1}, {0, 255} or a palette image as uint8 ``(H, W)`` in {0, 1}.

    Raises
    ------
    ValueError
        Differing colour channels, or other values (several classes, JPEG edges); the message names the fix.
    """
    mask = _read_raw(path)
    if mask.ndim == 3:
        if not all(np.array_equal(mask[..., 0], mask[..., c]) for c in range(1, mask.shape[-1])):
            raise ValueError(f"Mask {path} is a colour image with differing channels. Save masks as "
                             f"single-channel images with 0 = background and 1 or 255 = foreground.")
        mask = mask[..., 0]
    values = np.unique(mask).tolist()
    if not (set(values) <= {0, 1} or set(values) <= {0, 255}):
        shown = ", ".join(str(v) for v in values[:8]) + (" ..." if len(values) > 8 else "")
        raise ValueError(f"Mask {path} has values {{{shown}}}; expected two classes as {{0, 1}} or {{0, 255}} (never "
                         f"JPEG: it blurs edges). K-class masks: helpers.toolkit.folders.load_folder(classes='auto').")
    return (mask > 0).astype(np.uint8)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``, renamed to ``path`` only if the block succeeds.

    Examples
    --------
    >>> with atomic_path("out/notes.txt") as tmp:              # doctest: +SKIP
    ...     tmp.write_text("done")
    """
    path = Path(path)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(handle)
    tmp, umask = Path(tmp_name), os.umask(0)
    os.umask(umask)
    with contextlib.suppress(OSError):  # mkstemp makes the file private (0600); give it the usual permissions
        os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_image(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write an ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` array atomically: PNG as 8-bit, TIFF as is.

    Raises
    ------
    ValueError, PermissionError
        A suffix other than .png, .tif or .tiff; a missing or read-only folder.
    """
    path, array = Path(path), np.asarray(array)
    if path.suffix.lower() not in (".png", ".tif", ".tiff"):
        raise ValueError(f"Cannot write {path}: use a .png or .tif name.")
    if not os.access(path.parent, os.W_OK):
        raise PermissionError(f"Cannot write to {path.parent}: the folder is missing or not writable; choose another.")
    array = array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".png":
            from PIL import Image
            if array.dtype != np.uint8:  # floats in [0, 1] become 0..255
                array = np.clip(np.round(array.astype(np.float64) * 255), 0, 255).astype(np.uint8)
            Image.fromarray(array).save(tmp, format="PNG")
        else:
            import tifffile
            tifffile.imwrite(tmp, array)
    return path
