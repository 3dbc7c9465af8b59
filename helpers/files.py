"""Reading and writing image and mask files, for the ISBI data and for your own images.

Images come back as float32 ``(H, W, C)`` arrays in [0, 1] whatever their format (PNG, TIFF,
JPEG), bit depth (8 or 16) or colour (gray or RGB). Masks come back as uint8 ``(H, W)`` arrays
in {0, 1}, whether they were stored as {0, 1}, {0, 255} or as a palette image. Files are written
atomically: to a temporary file first, renamed into place only when complete, so an interrupted
run never leaves a half-written file behind.

Examples
--------
>>> image = read_image("data/isbi2012/train/image/0.png")     # doctest: +SKIP
>>> image.shape, image.dtype
((512, 512, 1), dtype('float32'))
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

#: File suffixes treated as images (case-insensitive).
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")


def natural_key(name: str) -> list:
    """Sort key that orders ``"2"`` before ``"10"`` (numbers compared as numbers).

    Examples
    --------
    >>> sorted(["10", "2", "1"], key=natural_key)
    ['1', '2', '10']
    """
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_images(folder: str | os.PathLike) -> dict[str, Path]:
    """Map each image file's stem to its path, for every image in ``folder`` (not recursive).

    Raises
    ------
    FileNotFoundError
        If the folder does not exist or holds no image files.
    ValueError
        If two files share a stem (e.g. ``a.png`` and ``a.tif``), which would make pairing
        ambiguous.

    Examples
    --------
    >>> list_images("data/isbi2012/test")["0"].name          # doctest: +SKIP
    '0.png'
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"Folder not found: {folder}. Check the path (it must be a folder of images).")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        if path.stem in found:
            raise ValueError(f"Two files in {folder} share the name {path.stem!r}: {found[path.stem].name} and "
                             f"{path.name}. Rename or remove one so every image has a unique name.")
        found[path.stem] = path
    if not found:
        raise FileNotFoundError(f"No images in {folder}. Put {', '.join(IMAGE_SUFFIXES)} files there "
                                f"or point at the folder that holds them.")
    return dict(sorted(found.items(), key=lambda item: natural_key(item[0])))


def pair_by_name(first: str | os.PathLike | Mapping[str, Path], second: str | os.PathLike | Mapping[str, Path],
                 fix: str = "Give each file a partner with the same file name (stem).") -> dict[str, tuple[Path, Path]]:
    """Pair the image files of two folders by file name (stem), whatever their suffixes.

    Parameters
    ----------
    first, second
        A folder of images, or a ``stem -> path`` mapping already listed from one folder with
        :func:`list_images` (e.g. with some files set aside).
    fix
        The last sentence of the error message: how to fix unpaired files.

    Returns
    -------
    dict
        ``stem -> (first_path, second_path)``, in the order of ``first`` (natural order of
        the file names for a folder).

    Raises
    ------
    FileNotFoundError
        A folder is missing or holds no images (from :func:`list_images`).
    ValueError
        A file has no partner with the same stem in the other folder; the message lists up to
        ten of them, names both folders and ends with ``fix``.

    Examples
    --------
    >>> pairs = pair_by_name("my_images", "my_masks")        # doctest: +SKIP
    >>> pairs["cell_1"]                                       # doctest: +SKIP
    (PosixPath('my_images/cell_1.tif'), PosixPath('my_masks/cell_1.png'))
    """
    def listing(source: str | os.PathLike | Mapping[str, Path]) -> tuple[dict[str, Path], str]:
        if isinstance(source, Mapping):
            found = dict(source)
            folders = sorted({str(path.parent) for path in found.values()})
            return found, " / ".join(folders) or "(no files)"
        return list_images(source), str(Path(source))

    (firsts, first_dir), (seconds, second_dir) = listing(first), listing(second)
    unpaired = sorted(set(firsts) ^ set(seconds), key=natural_key)
    if unpaired:
        shown = ", ".join(unpaired[:10]) + (" ..." if len(unpaired) > 10 else "")
        raise ValueError(f"{len(unpaired)} file(s) have no partner with the same name in {first_dir} and "
                         f"{second_dir}: {shown}. {fix}")
    return {stem: (firsts[stem], seconds[stem]) for stem in firsts}


def _read_raw(path: Path, palette_indices: bool = True) -> np.ndarray:
    """Read pixel values as stored; palette images give their indices (or colours if not ``palette_indices``)."""
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
                    image = image.convert("RGB")  # an image stored with a palette: use its colours
                elif image.mode in ("RGBA", "LA", "PA"):
                    image = image.convert(image.mode[:-1].replace("P", "RGB") or "L")
                elif image.mode == "I;16" or image.mode.startswith("I;16"):
                    return np.array(image, dtype=np.uint16)
                array = np.array(image)
    except Exception as error:  # PIL, tifffile and zlib raise many different types
        raise ValueError(f"Cannot read {path}: {error}. The file may be corrupt or not an image; "
                         f"check it opens in an image viewer or export it again as PNG or TIFF.") from error
    if array.ndim == 3 and array.shape[-1] == 4:  # RGBA TIFF: drop alpha
        array = array[..., :3]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (1, 3)):
        raise ValueError(f"{path} has shape {array.shape}; expected a 2-D gray or RGB image. "
                         f"Save stacks as one file per slice.")
    return array


def to_float(array: np.ndarray) -> np.ndarray:
    """Scale pixel values to float32 in [0, 1] by the range of the integer type.

    8-bit values are divided by 255 and 16-bit values by 65535; floats are kept if already in
    [0, 1], and floats outside it and 32-bit integers are rescaled by their own minimum and
    maximum (their type's range says nothing about the values used). Not
    ``skimage.util.img_as_float32``: it would divide 32-bit integers by 2**31 - 1 and leave floats
    outside [0, 1] as they are.

    Examples
    --------
    >>> to_float(np.array([0, 255], dtype=np.uint8))
    array([0., 1.], dtype=float32)
    """
    if array.dtype == bool:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer) and array.dtype.itemsize <= 2:
        return (array / np.iinfo(array.dtype).max).astype(np.float32)
    array = array.astype(np.float32)
    low, high = float(array.min()), float(array.max())
    if low >= 0.0 and high <= 1.0:
        return array
    return (array - low) / max(high - low, 1e-12)


def read_image(path: str | os.PathLike, channels: int | None = None) -> np.ndarray:
    """Read an image file as float32 ``(H, W, C)`` in [0, 1].

    Parameters
    ----------
    path
        A PNG, TIFF or JPEG file, 8- or 16-bit, gray or RGB (an alpha channel is dropped).
    channels
        ``None`` keeps the file's channels (1 for gray, 3 for RGB); 1 converts RGB to gray
        (luminance); 3 repeats a gray channel three times.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing, unreadable or corrupt file, or ``channels`` not in (None, 1, 3); the message
        names the file.

    Examples
    --------
    >>> read_image("data/isbi2012/train/image/0.png").shape     # doctest: +SKIP
    (512, 512, 1)
    """
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be None, 1 or 3, not {channels!r}")
    path = Path(path)
    image = to_float(_read_raw(path, palette_indices=False))
    if image.ndim == 2:
        image = image[..., None]
    if channels == 1 and image.shape[-1] == 3:
        from skimage.color import rgb2gray  # luminance, ITU-R BT.709 weights

        image = rgb2gray(image).astype(np.float32)[..., None]
    elif channels == 3 and image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return image


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a binary mask file as uint8 ``(H, W)`` with values in {0, 1}.

    Accepted encodings: {0, 1} (e.g. a palette PNG whose indices are 0 and 1), {0, 255}, and
    gray or RGB images whose channels are equal. The non-zero value is the foreground (1).

    Raises
    ------
    ValueError
        If the mask holds other values (e.g. several classes, or a JPEG-compressed mask whose
        edges were smoothed); the message names the file, the values found and the fix.

    Examples
    --------
    >>> read_mask("my_masks/cell_01.png")                       # doctest: +SKIP
    array([[0, 0, 1, ...]], dtype=uint8)
    """
    path = Path(path)
    mask = _read_raw(path)
    if mask.ndim == 3:
        if not all(np.array_equal(mask[..., 0], mask[..., c]) for c in range(1, mask.shape[-1])):
            raise ValueError(f"Mask {path} is a colour image with differing channels. Save masks as "
                             f"single-channel images with 0 = background and 1 or 255 = foreground.")
        mask = mask[..., 0]
    values = np.unique(mask)
    if values.size > 2 or not set(values.tolist()) <= {0, 1} and not set(values.tolist()) <= {0, 255}:
        shown = ", ".join(str(v) for v in values[:8]) + (" ..." if values.size > 8 else "")
        raise ValueError(f"Mask {path} has values {{{shown}}}; expected two classes stored as {{0, 1}} or "
                         f"{{0, 255}}. Multi-class masks are not supported: save one binary mask per class "
                         f"(and never store masks as JPEG, whose compression blurs the edges).")
    return (mask > 0).astype(np.uint8)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` only if the block succeeds.

    Readers never see a half-written file, and an error or interruption leaves nothing behind.

    Examples
    --------
    >>> with atomic_path("out/mask.png") as tmp:                # doctest: +SKIP
    ...     write_png(tmp)
    """
    path = Path(path)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    with contextlib.suppress(OSError):  # mkstemp makes the file private (0600); give it the usual permissions
        os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_image(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write a 2-D (or ``(H, W, 1)``/``(H, W, 3)``) array atomically as PNG or TIFF.

    Floats in [0, 1] are saved as 8-bit (0-255), so a binary mask becomes {0, 255}; use a
    ``.tif`` name to keep float values (e.g. probabilities) exactly.

    Raises
    ------
    ValueError
        For a suffix other than .png/.tif/.tiff.
    PermissionError
        For a folder that is missing or not writable.

    Examples
    --------
    >>> write_image("mask.png", np.zeros((4, 4)))                # doctest: +SKIP
    PosixPath('mask.png')
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".tif", ".tiff"):
        raise ValueError(f"Cannot write {path}: use a .png or .tif name.")
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if not os.access(path.parent, os.W_OK):
        raise PermissionError(f"Cannot write to {path.parent}: the folder is missing or not writable. "
                              f"Choose another output folder or fix its permissions.")
    with atomic_path(path) as tmp:
        if suffix == ".png":
            from PIL import Image

            if array.dtype != np.uint8:
                array = np.clip(np.round(array.astype(np.float64) * 255), 0, 255).astype(np.uint8)
            Image.fromarray(array).save(tmp, format="PNG")
        else:
            import tifffile

            tifffile.imwrite(tmp, array)
    return path


def check_writable(folder: str | os.PathLike) -> Path:
    """Raise ``PermissionError`` unless ``folder`` exists writable or can be created.

    Nothing is created: the nearest existing parent must be a writable folder. Call it before
    any long work, so a run does not fail at its end when it writes its results.

    Raises
    ------
    PermissionError
        The nearest existing parent is a file, or is not writable; the message names it.

    Examples
    --------
    >>> check_writable("/tmp/some/new/folder")
    PosixPath('/tmp/some/new/folder')
    """
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise PermissionError(f"Cannot write to {folder}: {existing} is a file, not a folder. "
                              f"Choose another output folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"Cannot write to {folder}: {existing} is not writable. Choose another "
                              f"output folder or fix its permissions.")
    return folder


def write_json(path: str | os.PathLike, content: dict) -> Path:
    """Write ``content`` as indented JSON, atomically (temporary file, then rename).

    NumPy numbers are written as plain floats.

    Examples
    --------
    >>> write_json("runs/demo/config.json", {"tile": 128, "threshold": np.float32(0.5)})  # doctest: +SKIP
    PosixPath('runs/demo/config.json')
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(content, indent=2, default=float) + "\n")
    return path


def read_json(path: str | os.PathLike) -> dict:
    """Read a JSON file, turning a missing or corrupt one into a ``ValueError`` naming it.

    Raises
    ------
    ValueError
        The file cannot be read or is not valid JSON; the message names it and the fix.

    Examples
    --------
    >>> read_json("runs/demo/config.json")["tile"]               # doctest: +SKIP
    128
    """
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"Cannot read {path}: {error}. Fix or delete the file.") from error
