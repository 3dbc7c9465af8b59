"""File formats of the folder workflows: raw pixel values, integer labels, palette class masks, JSON, writable folders.

Examples
--------
>>> write_class_mask("tissue_01.png", np.array([[0, 1], [2, 3]]))   # doctest: +SKIP
PosixPath('tissue_01.png')
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from helpers.files import _read_raw, atomic_path, list_images, natural_key, write_image
from helpers.plots import PALETTE


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
    """Whether a mask's distinct values are a subset of {0, 1} or of {0, 255}.

    Examples
    --------
    >>> is_binary_encoding(np.array([0, 255])), is_binary_encoding(np.array([0, 1, 2]))
    (True, False)
    """
    found = set(np.unique(values).tolist())
    return found <= {0, 1} or found <= {0, 255}


def pair_by_name(first: str | os.PathLike | Mapping[str, Path], second: str | os.PathLike | Mapping[str, Path],
                 fix: str = "Give each file a partner with the same file name (stem).") -> dict[str, tuple[Path, Path]]:
    """Pair the images of two folders (or ``stem -> path`` mappings) by stem: ``stem -> (first, second)``.

    Raises
    ------
    ValueError
        Files without a partner (up to ten listed), the message ending with ``fix``.

    Examples
    --------
    >>> pair_by_name("my_images", "my_masks")["cell_1"]     # doctest: +SKIP
    (PosixPath('my_images/cell_1.tif'), PosixPath('my_masks/cell_1.png'))
    """
    def listing(source) -> tuple[dict[str, Path], str]:
        if isinstance(source, Mapping):
            return dict(source), " / ".join(sorted({str(p.parent) for p in source.values()})) or "(no files)"
        return list_images(source), str(Path(source))

    (firsts, first_dir), (seconds, second_dir) = listing(first), listing(second)
    if unpaired := sorted(set(firsts) ^ set(seconds), key=natural_key):
        shown = ", ".join(unpaired[:10]) + (" ..." if len(unpaired) > 10 else "")
        raise ValueError(f"{len(unpaired)} file(s) have no partner with the same name in {first_dir} and "
                         f"{second_dir}: {shown}. {fix}")
    return {stem: (firsts[stem], seconds[stem]) for stem in firsts}


def read_raw(path: str | os.PathLike, palette_indices: bool = True) -> np.ndarray:
    """Read pixel values as stored, alpha dropped; a palette image gives its indices (else its colours).

    Raises
    ------
    FileNotFoundError, ValueError
        Missing, unreadable or corrupt file, or not a 2-D gray or RGB image; the message names it.

    Examples
    --------
    >>> read_raw("my_masks/cell_1.png").dtype                  # doctest: +SKIP
    dtype('uint8')
    """
    return _read_raw(path, palette_indices)  # the core's reader (behind files.read_image and read_mask)


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """Read integer labels as stored (class numbers or one number per object) as int32 ``(H, W)``.

    Palette PNGs give their indices; gray 8/16/32-bit PNG or TIFF their values; an RGB image with
    equal channels one channel; a float TIFF must hold whole numbers.

    Parameters
    ----------
    path
        A PNG or TIFF file.

    Returns
    -------
    np.ndarray
        int32 ``(H, W)``, values >= 0.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing or unreadable file, differing colour channels, negative, fractional or too large
        values; the message names the file and the fix.

    Examples
    --------
    >>> read_labels("my_labels/cells_01.tif").dtype               # doctest: +SKIP
    dtype('int32')
    """
    return as_labels(read_raw(path), path)


def as_labels(labels: np.ndarray, name: str | os.PathLike) -> np.ndarray:
    """Check stored values as integer labels (as :func:`read_labels` does for a file) and return int32 ``(H, W)``.

    Parameters
    ----------
    labels
        ``(H, W)`` or ``(H, W, C)`` values as stored (C equal channels are one).
    name
        What the message names: the file, or a stack's slice (e.g. ``masks.tif[z0003]``).

    Raises
    ------
    ValueError
        Differing colour channels, negative, fractional or too large values.

    Examples
    --------
    >>> as_labels(np.array([[0, 2]], np.uint8), "a.png").dtype
    dtype('int32')
    """
    if labels.ndim == 3:
        if not all(np.array_equal(labels[..., 0], labels[..., c]) for c in range(1, labels.shape[-1])):
            raise ValueError(f"{name} is a colour image with differing channels; labels must be one number per "
                             f"pixel. Save it as a single-channel image: a palette PNG (its indices are the "
                             f"labels, its colours only for viewing) or a gray 8/16-bit PNG or TIFF.")
        labels = labels[..., 0]
    if labels.dtype == bool:
        labels = labels.astype(np.uint8)
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.isfinite(labels)) or not np.array_equal(labels, np.round(labels)):
            raise ValueError(f"{name} holds fractional values (e.g. probabilities); labels must be whole numbers. "
                             f"Save class numbers or object labels as an integer PNG or TIFF.")
    if labels.size and (labels.min() < 0 or labels.max() > np.iinfo(np.int32).max):
        raise ValueError(f"{name} holds values from {labels.min()} to {labels.max()}; labels must lie between 0 "
                         f"and {np.iinfo(np.int32).max}. Renumber them (0 = background).")
    return labels.astype(np.int32)


def _check_folder(path: Path) -> None:
    if not os.access(path.parent, os.W_OK):
        raise PermissionError(f"Cannot write to {path.parent}: the folder is missing or not writable. "
                              f"Choose another output folder or fix its permissions.")


def write_class_mask(path: str | os.PathLike, classes: np.ndarray,
                     palette: tuple[tuple[int, int, int], ...] = PALETTE) -> Path:
    """Write class numbers 0..255 atomically as a palette PNG: the values are the classes, shown in colour.

    Parameters
    ----------
    path
        A ``.png`` file name.
    classes
        Integer ``(H, W)`` or ``(H, W, 1)`` array.
    palette
        RGB colour of each class (:data:`helpers.plots.PALETTE`), repeated when there are more classes.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        Not a ``.png`` name, or values that are not whole numbers in 0..255.
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
    _check_folder(path)
    image = Image.fromarray(classes.astype(np.uint8))  # mode "L"; putpalette makes it "P", values kept
    image.putpalette([channel for k in range(256) for channel in palette[k % len(palette)]])
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def write_labels(path: str | os.PathLike, labels: np.ndarray) -> Path:
    """Write instance labels (0 = background) atomically as a 16-bit TIFF (32-bit above 65535 objects).

    Parameters
    ----------
    path
        A ``.tif`` or ``.tiff`` file name.
    labels
        Integer ``(H, W)`` array, values >= 0.

    Returns
    -------
    Path
        ``path``.

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
    """Check, creating nothing, that ``folder`` exists writable or can be created.

    Parameters
    ----------
    folder
        The output folder a long run will write to.

    Returns
    -------
    Path
        ``folder``.

    Raises
    ------
    PermissionError
        The nearest existing parent is a file or not writable; the message names it.

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
    """Write ``content`` atomically as indented JSON (NumPy numbers as plain floats).

    Examples
    --------
    >>> write_json("runs/demo/config.json", {"threshold": np.float32(0.5)})  # doctest: +SKIP
    PosixPath('runs/demo/config.json')
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(content, indent=2, default=float) + "\n")
    return path


def read_json(path: str | os.PathLike) -> dict:
    """Read a JSON file.

    Raises
    ------
    ValueError
        The file is missing, unreadable or not valid JSON; the message names it and the fix.

    Examples
    --------
    >>> read_json("runs/demo/config.json")["threshold"]         # doctest: +SKIP
    0.5
    """
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"Cannot read {path}: {error}. Fix or delete the file.") from error
