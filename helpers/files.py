"""Reading and writing image and mask files, for the ISBI data and for your own images.

Images come back as float32 ``(H, W, C)`` arrays in [0, 1] whatever their format (PNG, TIFF,
JPEG), bit depth (8 or 16) or colour (gray or RGB). Binary masks come back as uint8 ``(H, W)``
arrays in {0, 1}, whether they were stored as {0, 1}, {0, 255} or as a palette image
(:func:`read_mask`); masks of K classes as uint8 class numbers 0..K-1 (:func:`read_class_mask`,
e.g. palette PNGs, whose indices are the classes), and instance-label images (one integer per
object, 0 = background) as int32 (:func:`read_labels`). Files are written atomically: to a
temporary file first, renamed into place only when complete, so an interrupted run never leaves a
half-written file behind (:func:`write_image`, :func:`write_class_mask`, :func:`write_labels`).

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

#: Colours of the classes 0, 1, 2, ... in class masks and figures: the Okabe-Ito palette, which stays
#: distinguishable for the common colour-vision deficiencies (Okabe & Ito 2008), in its own order
#: (black, orange, sky blue, bluish green, yellow, blue, vermillion, reddish purple); class 8 and
#: above reuse them in turn.
CLASS_PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0), (230, 159, 0), (86, 180, 233), (0, 158, 115),
    (240, 228, 66), (0, 114, 178), (213, 94, 0), (204, 121, 167),
)


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
        If the mask holds other values (e.g. several classes, see :func:`read_class_mask`, or a
        JPEG-compressed mask whose edges were smoothed); the message names the file, the values
        found and the fix.

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
    if not is_binary_encoding(values):
        raise ValueError(f"Mask {path} has values {{{shown_values(values)}}}; expected two classes stored as "
                         f"{{0, 1}} or {{0, 255}} (never store masks as JPEG, whose compression blurs the edges). "
                         f"Masks of more classes, stored as 0..K-1, are read by read_class_mask (the command "
                         f"line's train infers them).")
    return (mask > 0).astype(np.uint8)


def shown_values(values: np.ndarray, limit: int = 8) -> str:
    """The first ``limit`` values, comma-separated, with ``...`` when there are more (for messages).

    Examples
    --------
    >>> shown_values(np.arange(12))
    '0, 1, 2, 3, 4, 5, 6, 7 ...'
    """
    values = np.asarray(values).ravel()
    return ", ".join(str(v) for v in values[:limit].tolist()) + (" ..." if values.size > limit else "")


def is_binary_encoding(values: np.ndarray) -> bool:
    """Whether the distinct values of a mask are a binary encoding: a subset of {0, 1} or of {0, 255}.

    Examples
    --------
    >>> is_binary_encoding(np.array([0, 255])), is_binary_encoding(np.array([0, 1, 2]))
    (True, False)
    """
    found = set(np.unique(values).tolist())
    return found <= {0, 1} or found <= {0, 255}


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """Read an image of integer labels as stored: class numbers or one number per object.

    Palette PNGs give their palette indices (not their colours); gray PNGs or TIFFs of 8, 16 or 32
    bits give their values; an RGB image whose three channels are equal gives one of them; a float
    TIFF must hold whole numbers. Nothing is interpreted: see :func:`read_class_mask` for class
    masks and :func:`read_mask` for binary masks.

    Parameters
    ----------
    path
        A PNG or TIFF file (JPEG's compression changes the values at every edge).

    Returns
    -------
    np.ndarray
        int32 ``(H, W)``, values >= 0.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Unreadable file, a colour image with differing channels, negative or fractional values, or
        values beyond int32; the message names the file and the fix.

    Examples
    --------
    >>> labels = read_labels("my_labels/cells_01.tif")           # doctest: +SKIP
    >>> labels.dtype, int(labels.max())                           # doctest: +SKIP
    (dtype('int32'), 212)
    """
    path = Path(path)
    labels = _read_raw(path)
    if labels.ndim == 3:
        if not all(np.array_equal(labels[..., 0], labels[..., c]) for c in range(1, labels.shape[-1])):
            raise ValueError(f"{path} is a colour image with differing channels; labels must be one number per "
                             f"pixel. Save it as a single-channel image: a palette PNG (its indices are the "
                             f"labels, its colours only for viewing) or a gray 8/16-bit PNG or TIFF.")
        labels = labels[..., 0]
    if labels.dtype == bool:
        labels = labels.astype(np.uint8)
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.isfinite(labels)) or not np.array_equal(labels, np.round(labels)):
            raise ValueError(f"{path} holds fractional values (e.g. probabilities); labels must be whole numbers. "
                             f"Save class numbers or object labels as an integer PNG or TIFF.")
    if labels.size and (labels.min() < 0 or labels.max() > np.iinfo(np.int32).max):
        raise ValueError(f"{path} holds values from {labels.min()} to {labels.max()}; labels must lie between 0 "
                         f"and {np.iinfo(np.int32).max}. Renumber them (0 = background).")
    return labels.astype(np.int32)


def read_class_mask(path: str | os.PathLike, num_classes: int) -> np.ndarray:
    """Read a mask of ``num_classes`` classes, stored as the class numbers 0..K-1.

    The classes are the values as stored: a palette PNG's indices (its colours are only for
    viewing; :func:`write_class_mask` writes such files), or the values of a gray PNG or TIFF.
    Binary masks stored as {0, 255} are read as {0, 1} when ``num_classes`` is 2.

    Parameters
    ----------
    path
        A PNG or TIFF file.
    num_classes
        K, at least 2.

    Returns
    -------
    np.ndarray
        uint8 ``(H, W)`` in 0..K-1.

    Raises
    ------
    ValueError
        A value outside 0..K-1 (the message names the file, the values and the fix), or a file
        :func:`read_labels` refuses.

    Examples
    --------
    >>> read_class_mask("my_masks/tissue_01.png", num_classes=4)   # doctest: +SKIP
    array([[0, 0, 3, ...]], dtype=uint8)
    """
    if not 2 <= num_classes <= 256:
        raise ValueError(f"num_classes must be between 2 and 256, got {num_classes}.")
    path = Path(path)
    labels = read_labels(path)
    values = np.unique(labels)
    if num_classes == 2 and is_binary_encoding(values):
        return (labels > 0).astype(np.uint8)
    if values.size and values.max() >= num_classes:
        raise ValueError(f"Mask {path} has values {{{shown_values(values)}}} but there are {num_classes} classes, "
                         f"stored as 0..{num_classes - 1}. Store class k as the value k, or name every class "
                         f"(--classes).")
    return labels.astype(np.uint8)


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


def write_class_mask(path: str | os.PathLike, classes: np.ndarray,
                     palette: tuple[tuple[int, int, int], ...] = CLASS_PALETTE) -> Path:
    """Write class numbers 0..K-1 atomically as a palette PNG: the values are the classes, shown in colour.

    An image viewer shows class k in ``palette[k]`` (the colour-blind-safe :data:`CLASS_PALETTE`;
    class 0, the background, black), while :func:`read_class_mask` and :func:`read_mask` read the
    class numbers back.

    Parameters
    ----------
    path
        A ``.png`` file name.
    classes
        Integer ``(H, W)`` (or ``(H, W, 1)``) array with values 0..255.
    palette
        RGB colours of the classes 0, 1, 2, ...; they repeat when there are more classes.

    Raises
    ------
    ValueError
        Not a ``.png`` name, or values outside 0..255 or not whole numbers.
    PermissionError
        The folder is missing or not writable.

    Examples
    --------
    >>> write_class_mask("tissue_01.png", np.array([[0, 1], [2, 3]]))   # doctest: +SKIP
    PosixPath('tissue_01.png')
    """
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"Cannot write {path}: class masks are written as palette PNGs; use a .png name.")
    classes = np.asarray(classes)
    if classes.ndim == 3 and classes.shape[-1] == 1:
        classes = classes[..., 0]
    if classes.ndim != 2 or (classes.size and (classes.min() < 0 or classes.max() > 255
                                               or not np.array_equal(classes, np.round(classes)))):
        raise ValueError(f"Cannot write {path}: expected one (H, W) image of class numbers 0..255, got shape "
                         f"{classes.shape}.")
    if not os.access(path.parent, os.W_OK):
        raise PermissionError(f"Cannot write to {path.parent}: the folder is missing or not writable. "
                              f"Choose another output folder or fix its permissions.")
    image = Image.fromarray(classes.astype(np.uint8))  # mode "L"; putpalette makes it "P", values kept
    image.putpalette([channel for k in range(256) for channel in palette[k % len(palette)]])
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def write_labels(path: str | os.PathLike, labels: np.ndarray) -> Path:
    """Write instance labels (0 = background, 1..n = objects) atomically as a 16-bit TIFF.

    16 bits hold up to 65535 objects; more are written as 32 bits. Fiji, napari and
    :func:`read_labels` read them.

    Parameters
    ----------
    path
        A ``.tif`` or ``.tiff`` file name.
    labels
        Integer ``(H, W)`` array with values >= 0.

    Raises
    ------
    ValueError
        Another suffix, or negative or fractional labels.
    PermissionError
        The folder is missing or not writable.

    Examples
    --------
    >>> write_labels("cells_01_instances.tif", np.array([[0, 1], [2, 2]]))   # doctest: +SKIP
    PosixPath('cells_01_instances.tif')
    """
    path = Path(path)
    if path.suffix.lower() not in (".tif", ".tiff"):
        raise ValueError(f"Cannot write {path}: instance labels are written as 16-bit TIFF; use a .tif name.")
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or not np.array_equal(labels, np.round(labels))):
        raise ValueError(f"Cannot write {path}: labels must be whole numbers >= 0 (0 = background).")
    dtype = np.uint16 if not labels.size or labels.max() <= np.iinfo(np.uint16).max else np.uint32
    return write_image(path, labels.astype(dtype))


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
