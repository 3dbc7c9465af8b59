"""Folders of your own images and masks (binary, K classes or instance labels), and synthetic nuclei."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers.files import list_images, read_image, read_mask, to_channels, to_float
from helpers.toolkit.formats import as_labels, is_binary_encoding, pair_by_name, read_labels, shown_values

#: How to fix images without a mask of the same name (the end of the error message).
PAIR_FIX = "Give each image a mask with the same file name (stem)."

#: The most classes inferred from the masks' values; more need their names (``classes=[...]``).
MAX_INFERRED_CLASSES = 16


def split_by_image(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Shuffle image indices with ``seed`` and split whole images into train and validation.

    Parameters
    ----------
    n
        Number of images.
    val_fraction
        Fraction of the images for validation, between 0 and 1 (rounded, at least one image).
    seed
        Seed of the shuffle; the same seed gives the same split.

    Returns
    -------
    train, validation : list of int
        Sorted image indices of each side.

    Raises
    ------
    ValueError
        ``val_fraction`` outside (0, 1), or fewer than 2 images.

    Examples
    --------
    >>> split_by_image(5, 0.2, seed=0)
    ([0, 1, 3, 4], [2])
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"--val-fraction must be between 0 and 1, got {val_fraction}.")
    if n < 2:
        raise ValueError(f"Training needs at least 2 image/mask pairs (one is held out for validation), "
                         f"found {n}. Add more images.")
    n_val = min(max(1, round(n * val_fraction)), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


@dataclass
class ImageSet:
    """Images (and masks) read from a folder by :func:`load_folder`; each may have its own size.

    Attributes
    ----------
    images
        float32 ``(H, W, C)`` arrays in [0, 1].
    masks
        uint8 ``(H, W, 1)`` arrays: {0, 1} for binary masks, 0..K-1 for K classes; ``None`` without masks.
    names
        File stems in natural order; image ``i`` pairs with mask ``i``.
    class_names
        The classes' names in the order of their numbers when read as classes, else ``None``.

    Examples
    --------
    >>> subset = load_folder("my_images", "my_masks")         # doctest: +SKIP
    >>> len(subset), subset.channels, subset.num_classes      # doctest: +SKIP
    (12, 1, 2)
    """

    images: list[np.ndarray]
    masks: list[np.ndarray] | None
    names: list[str]
    image_paths: list[Path] = field(default_factory=list)
    mask_paths: list[Path] = field(default_factory=list)
    class_names: list[str] | None = None

    @property
    def num_classes(self) -> int:
        """K: 2 for binary masks (one sigmoid output), K for K classes (a softmax over K)."""
        return len(self.class_names) if self.class_names else 2

    def __len__(self) -> int:
        return len(self.names)

    @property
    def channels(self) -> int:
        """Number of image channels (1 = gray, 3 = RGB); the same for every image."""
        return self.images[0].shape[-1]


def infer_classes(values: dict[Path, np.ndarray], class_names: Sequence[str] | None = None,
                  allow_gaps: bool = False) -> int:
    """How many classes (K) a folder of masks holds, from each mask's distinct values; or refuse.

    Parameters
    ----------
    values
        ``path -> distinct values`` of each mask (:func:`read_labels`, then ``np.unique``).
    class_names
        The classes' names, if given: K = their number and the values must lie in 0..K-1.
    allow_gaps
        Accept classes that occur in no mask, and {0, 1} masks among masks of more classes (scoring).

    Returns
    -------
    int
        K: 2 when every mask is {0, 1} or {0, 255}, else the largest value + 1.

    Raises
    ------
    ValueError
        Ambiguous masks (a photo or instance labels, values that are not class numbers, binary
        masks mixed with class numbers, a missing class, values beyond the named classes), in one
        line naming the file and the fix.

    Examples
    --------
    >>> infer_classes({Path("a.png"): np.array([0, 1, 2]), Path("b.png"): np.array([0, 2])})
    3
    """
    if not values:
        raise ValueError("No masks to infer the classes from.")
    limit = len(class_names) if class_names is not None else MAX_INFERRED_CLASSES
    if class_names is None or len(class_names) == 2:
        if all(is_binary_encoding(found) for found in values.values()):
            return 2
    for path, found in values.items():  # photos and instance labels first: the likeliest mistake
        if found.size > max(limit, MAX_INFERRED_CLASSES):
            raise ValueError(
                f"Mask {path} has {found.size} different values ({shown_values(found)}): it looks like a photo or an "
                f"instance-label image (one number per object), not a mask of classes. For instance labels pass "
                f"--instances-to-classes (converts them to background / object interior / object boundary); "
                f"masks of classes store class k as the value k (0..K-1), at most {MAX_INFERRED_CLASSES} classes "
                f"unless named with --classes.")
    binaries = [(path, found) for path, found in values.items() if is_binary_encoding(found) and 255 in found]
    numbered = [(path, found) for path, found in values.items()
                if not is_binary_encoding(found) and found.max() < limit]
    if binaries and numbered:
        (class_path, class_values), (binary_path, binary_values) = numbered[0], binaries[0]
        raise ValueError(
            f"Mask {class_path} has values {{{shown_values(class_values)}}} (class numbers) but {binary_path} has "
            f"{{{shown_values(binary_values)}}} (a binary mask). Multi-class masks store class k as the value k in "
            f"every file, binary masks {{0, 1}} or {{0, 255}}: save all masks the same way.")
    pairs = [(path, found) for path, found in values.items() if set(found.tolist()) == {0, 1}]
    if numbered and pairs and class_names is None and not allow_gaps:
        (class_path, class_values), (pair_path, _) = numbered[0], pairs[0]
        k = int(max(found.max() for _, found in numbered)) + 1
        raise ValueError(
            f"Mask {class_path} has values {{{shown_values(class_values)}}} but {pair_path} has {{0, 1}}: binary masks "
            f"and masks of {k} classes in one folder are ambiguous. Multi-class masks: name the classes in the order "
            f"of their numbers (--classes {','.join(f'NAME{i}' for i in range(min(k, 4)))}{',...' if k > 4 else ''}) "
            f"if some images just lack a class; binary masks hold only {{0, 1}} or {{0, 255}}.")
    wide = [(path, found) for path, found in values.items() if found.size and found.max() >= limit]
    if wide and class_names is None:
        path, found = wide[0]
        raise ValueError(
            f"Mask {path} has values {{{shown_values(found)}}}, which are not class numbers. Store class k as the "
            f"value k (0, 1, 2, ...; a palette PNG shows them in colour); binary masks are {{0, 1}} or {{0, 255}}.")
    if wide:
        path, found = wide[0]
        raise ValueError(f"Mask {path} has the value {int(found.max())} but --classes names {limit} classes, "
                         f"stored as 0..{limit - 1}: name every class, or fix the mask.")
    present = np.unique(np.concatenate([found for found in values.values()]))
    num_classes = len(class_names) if class_names is not None else int(present.max()) + 1
    missing = sorted(set(range(num_classes)) - set(present.tolist()))
    if missing and class_names is None and not allow_gaps:
        path = next(p for p, f in values.items() if f.size and f.max() == present.max())
        raise ValueError(
            f"The masks hold the values {{{shown_values(present)}}} (e.g. {path}) but no mask holds class "
            f"{missing[0]}: number the classes 0..K-1 without gaps, or pass --classes with one name for each of the "
            f"{num_classes} classes if class {missing[0]} is just absent here.")
    return num_classes


def looks_like_instances(masks: Sequence[np.ndarray]) -> bool:
    """Whether masks look like instance labels: every non-zero value one region, their number varying or >= 4.

    Parameters
    ----------
    masks
        Integer ``(H, W)`` masks.

    Returns
    -------
    bool
        True for instance labels (objects numbered 1, 2, ... in each image).

    Examples
    --------
    >>> a = np.zeros((8, 8), int); a[1:3, 1:3] = 1; a[5:7, 5:7] = 2
    >>> b = a.copy(); b[1:3, 5:7] = 3
    >>> looks_like_instances([a, b]), looks_like_instances([a, a])
    (True, False)
    """
    from skimage.measure import label

    counts = []
    for mask in masks:
        values = np.unique(mask[mask > 0])
        if any(label(mask == value, connectivity=2).max() != 1 for value in values):
            return False
        counts.append(values.size)
    return bool(counts) and (len(set(counts)) > 1 or max(counts) >= 4)


def load_folder(images_dir: str | os.PathLike, masks_dir: str | os.PathLike | None = None,
                channels: int | None = None, invert_masks: bool = False,
                classes: str | int | Sequence[str] | None = None, instances_to_classes: bool = False,
                axes: str | None = None) -> ImageSet:
    """Read a folder of images (PNG, TIFF, JPEG; any size) and optionally the masks with the same file stems.

    Parameters
    ----------
    images_dir, masks_dir
        The folders; masks are {0, 1}, {0, 255} or palette images, or class numbers 0..K-1 with ``classes``.
        Or a pair of stacks (TIFF stacks, Zarr or OME-Zarr, :func:`read_stacks`): slice i of the masks
        labels slice i of the images; the slices are named ``z0000``, ``z0001``, ...
    channels
        ``None`` keeps the images' own channel count (all must agree); 1 or 3 converts.
    invert_masks
        Swap the two classes of binary masks (e.g. ISBI labels, where 255 is the background).
    classes
        ``None``: binary masks; ``"auto"``: infer binary or K classes (:func:`infer_classes`);
        K names (or K): masks of K classes.
    instances_to_classes
        The masks are instance labels: convert them to background / interior / boundary.
    axes
        For stacks: the images' axes where their files do not say them (e.g. ``"zyx"``, ``"zyxc"``).

    Returns
    -------
    ImageSet
        With ``class_names`` set whenever ``classes`` or ``instances_to_classes`` is.

    Raises
    ------
    FileNotFoundError
        Missing or empty folder.
    ValueError
        Unpaired, unreadable or mismatched files (named), masks that are not binary (without
        ``classes``), ambiguous masks (:func:`infer_classes`), or mixed gray and RGB images.

    Examples
    --------
    >>> load_folder("tissue/images", "tissue/masks", classes="auto").class_names   # doctest: +SKIP
    ['class 0', 'class 1', 'class 2', 'class 3']
    """
    images_dir, labels = Path(images_dir), classes is not None or instances_to_classes
    if is_stack(images_dir) or (masks_dir is not None and is_stack(masks_dir)):
        images, raw, image_paths, mask_paths = read_stacks(images_dir, masks_dir, channels, labels, axes)
    else:
        images, raw, image_paths, mask_paths = _read_files(images_dir, masks_dir, channels, labels)
    counts = {image.shape[-1] for image in images}
    if len(counts) > 1:
        raise ValueError(f"{images_dir} mixes gray and RGB images. Pass channels=1 (convert all to gray) "
                         f"or channels=3 (convert all to RGB).")
    masks, class_names = None, None
    if mask_paths:
        for image, image_path, mask, mask_path in zip(images, image_paths, raw, mask_paths):
            if mask.shape != image.shape[:2]:
                raise ValueError(f"Size mismatch: image {image_path} is {image.shape[0]}x{image.shape[1]} but "
                                 f"mask {mask_path} is {mask.shape[0]}x{mask.shape[1]}. A mask must have its "
                                 f"image's height and width.")
        if instances_to_classes:
            raw, class_names = _instances_to_classes(raw, classes, invert_masks)
        elif classes is not None:
            raw, class_names = _as_classes(raw, mask_paths, classes)
            if invert_masks and len(class_names) > 2:
                raise ValueError(f"--invert-masks swaps the two classes of binary masks, but the masks in "
                                 f"{Path(masks_dir)} hold {len(class_names)} classes; leave it out.")
        binary = class_names is None or len(class_names) == 2
        masks = [((1 - mask) if invert_masks and binary else mask).astype(np.uint8)[..., None] for mask in raw]
    return ImageSet(images, masks, [p.stem for p in image_paths], image_paths, mask_paths, class_names)


def _read_files(images_dir: Path, masks_dir: str | os.PathLike | None, channels: int | None, labels: bool
                ) -> tuple[list[np.ndarray], list[np.ndarray], list[Path], list[Path]]:
    """Images, masks (labels as stored, or binary {0, 1}) and their paths of a folder pair (by file name)."""
    if masks_dir is None:
        image_paths, mask_paths = list(list_images(images_dir).values()), []
    else:
        pairs = pair_by_name(images_dir, masks_dir, fix=PAIR_FIX).values()
        image_paths, mask_paths = [p for p, _ in pairs], [m for _, m in pairs]
    images = [read_image(path, channels) for path in image_paths]
    raw = [read_labels(path) if labels else read_mask(path) for path in mask_paths]
    return images, raw, image_paths, mask_paths


def is_stack(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a stack (TIFF stack, Zarr or OME-Zarr, also a missing ``.zarr``), not a folder of images.

    Examples
    --------
    >>> is_stack("data/own/images")                          # doctest: +SKIP
    False
    """
    from helpers.toolkit.stacks import is_volume

    return Path(path).suffix.lower() == ".zarr" or is_volume(path)


def read_stacks(images: str | os.PathLike, masks: str | os.PathLike | None, channels: int | None = None,
                labels: bool = True, axes: str | None = None
                ) -> tuple[list[np.ndarray], list[np.ndarray], list[Path], list[Path]]:
    """Read a stack of images and one of masks slice by slice (slice i of the masks labels slice i of the images).

    Parameters
    ----------
    images, masks
        TIFF stacks, Zarr arrays or OME-Zarr images (:func:`helpers.toolkit.stacks.open_volume`).
    channels
        ``None`` keeps the images' channels; 1 or 3 converts (as :func:`helpers.files.read_image`).
    labels
        Masks as stored (:func:`helpers.toolkit.formats.as_labels`); else binary ({0, 1} or {0, 255}) as {0, 1}.
    axes
        The images' axes where the file does not say them; the masks take the same without ``c``.

    Returns
    -------
    images, masks, image_paths, mask_paths
        float32 ``(H, W, C)`` images in [0, 1], int masks ``(H, W)``, and ``STACK/z0000``-style names.

    Raises
    ------
    ValueError
        A stack paired with a folder, different slice counts (both named), masks that are not binary without
        ``labels``, or the errors of :func:`helpers.toolkit.stacks.open_volume`.

    Examples
    --------
    >>> images, masks, _, _ = read_stacks("train-volume.tif", "train-labels.tif")   # doctest: +SKIP
    """
    from helpers.toolkit.stacks import open_volume

    if masks is not None and not (is_stack(images) and is_stack(masks)):
        raise ValueError(f"images={str(images)!r} and masks={str(masks)!r}: give both as stacks (slice i of the masks "
                         f"labels slice i of the images) or both as folders of files with the same names")
    volume = open_volume(images, axes)
    mask_volume = None if masks is None else open_volume(masks, axes.replace("c", "") if axes else None)
    if mask_volume is not None and mask_volume.data.shape[0] != volume.data.shape[0]:
        raise ValueError(f"images={str(images)!r} has {volume.data.shape[0]} slices but masks={str(masks)!r} has "
                         f"{mask_volume.data.shape[0]}; give one mask slice per image slice, in the same order")
    read = [(volume.path / name, to_channels(to_float(image), channels)) for name, image in volume.slices()]
    raw = [] if mask_volume is None else [(mask_volume.path / name, _slice_mask(mask, mask_volume.path / name, labels))
                                          for name, mask in mask_volume.slices()]
    return [i for _, i in read], [m for _, m in raw], [p for p, _ in read], [p for p, _ in raw]


def _slice_mask(mask: np.ndarray, name: Path, labels: bool) -> np.ndarray:
    """One ``(y, x, c)`` slice of a mask stack as labels (int32) or, without ``labels``, as a binary {0, 1} mask."""
    found = as_labels(mask, name)
    if not labels and not is_binary_encoding(found):
        raise ValueError(f"Mask {name} has values {{{shown_values(np.unique(found))}}}; expected two classes as "
                         "{0, 1} or {0, 255}. K-class masks: load_folder(classes='auto').")
    return found if labels else (found > 0).astype(np.uint8)


def _as_classes(raw: list[np.ndarray], paths: list[Path], classes: str | int | Sequence[str]
                ) -> tuple[list[np.ndarray], list[str]]:
    """Masks of stored values as class numbers, with the classes' names (inferred or checked)."""
    if isinstance(classes, str) and classes != "auto":
        raise ValueError(f"classes={classes!r}: use None (binary masks), 'auto' (infer from the masks), or the "
                         f"classes' names in the order of their numbers, e.g. ['background', 'cell', 'nucleus'].")
    names = None
    if isinstance(classes, int):
        names = [f"class {k}" for k in range(classes)]
    elif not isinstance(classes, str):
        names = [str(name).strip() for name in classes]
        if len(names) < 2 or len(set(names)) != len(names) or not all(names):
            raise ValueError(f"--classes {','.join(names)}: name at least two classes, each differently, in the "
                             f"order of their numbers in the masks (0, 1, ...).")
    if names is not None and len(names) > 256:
        raise ValueError(f"--classes names {len(names)} classes; masks hold at most 256 (0..255).")
    num_classes = infer_classes({path: np.unique(mask) for path, mask in zip(paths, raw)}, names)
    if num_classes == 2 and all(is_binary_encoding(np.unique(mask)) for mask in raw):
        return [(mask > 0).astype(np.uint8) for mask in raw], names or ["background", "foreground"]
    if names is None and looks_like_instances(raw):
        path, mask = max(zip(paths, raw), key=lambda item: item[1].max())
        raise ValueError(
            f"The masks look like instance labels, not classes: each value is one object (e.g. {path} numbers "
            f"{np.unique(mask[mask > 0]).size} objects 1..{mask.max()}). Pass --instances-to-classes to train on "
            f"background / object interior / object boundary, or --classes with one name per class if these "
            f"really are {num_classes} classes.")
    return [mask.astype(np.uint8) for mask in raw], names or [f"class {k}" for k in range(num_classes)]


def _instances_to_classes(raw: list[np.ndarray], classes, invert_masks: bool) -> tuple[list[np.ndarray], list[str]]:
    """Instance labels as the three-class scheme (background / interior / boundary)."""
    from helpers.toolkit.instances import THREE_CLASSES, to_three_classes

    if classes not in (None, "auto"):
        raise ValueError("--instances-to-classes makes the three classes background, interior, boundary; "
                         "leave out --classes.")
    if invert_masks:
        raise ValueError("--invert-masks does not apply to instance labels (0 is the background); leave it out.")
    return [to_three_classes(mask) for mask in raw], list(THREE_CLASSES)


def synthetic_nuclei(n: int, size: int = 128, seed: int = 0, nuclei: tuple[int, int] = (5, 10),
                     touching: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """Images of touching elliptic nuclei with their exact instance labels (no download).

    Parameters
    ----------
    n
        Number of images.
    size
        Height and width in pixels (at least 32).
    seed
        Seed: the same seed gives the same images.
    nuclei
        Least and most nuclei per image.
    touching
        Probability that a nucleus is placed against an earlier one.

    Returns
    -------
    images : np.ndarray
        float32 ``(n, size, size, 1)`` in [0, 1].
    labels : np.ndarray
        int32 ``(n, size, size)``: 0 = background, 1..m = the nuclei of each image.

    Examples
    --------
    >>> images, labels = synthetic_nuclei(2, size=64, seed=0)
    >>> images.shape, labels.shape, int(labels[0].max()) >= 5
    ((2, 64, 64, 1), (2, 64, 64), True)
    """
    from scipy import ndimage
    from skimage.draw import ellipse

    if n < 1 or size < 32 or not 1 <= nuclei[0] <= nuclei[1] or not 0 <= touching <= 1:
        raise ValueError(f"need n >= 1, size >= 32, 1 <= nuclei[0] <= nuclei[1] and 0 <= touching <= 1; got n={n}, "
                         f"size={size}, nuclei={nuclei}, touching={touching}.")
    rng = np.random.default_rng(seed)
    images = np.empty((n, size, size, 1), np.float32)
    labels = np.zeros((n, size, size), np.int32)
    for i in range(n):
        placed: list[tuple[float, float, float]] = []  # centre row, centre column, larger semi-axis
        wanted = int(rng.integers(nuclei[0], nuclei[1] + 1))
        for _ in range(40 * wanted):
            if len(placed) == wanted:
                break
            radius = rng.uniform(0.07, 0.12) * size
            axes = radius * np.array([1.0, rng.uniform(0.65, 1.0)])
            if placed and rng.random() < touching:  # against an earlier nucleus, overlapping a little
                row, col, other = placed[rng.integers(len(placed))]
                angle, gap = rng.uniform(0, 2 * np.pi), rng.uniform(0.8, 0.95) * (radius + other)
                centre = np.array([row + gap * np.sin(angle), col + gap * np.cos(angle)])
            else:
                centre = rng.uniform(radius + 1, size - radius - 1, 2)
            if not np.all((centre >= radius + 1) & (centre <= size - radius - 1)):
                continue
            if any(np.hypot(*(centre - (r, c))) < 0.8 * (radius + o) for r, c, o in placed):
                continue
            rows, cols = ellipse(*centre, *axes, shape=(size, size), rotation=rng.uniform(0, np.pi))
            free = labels[i, rows, cols] == 0
            if free.sum() < 0.75 * rows.size:
                continue
            labels[i, rows[free], cols[free]] = len(placed) + 1
            placed.append((*centre, radius))
        brightness = np.concatenate([[0.1], rng.uniform(0.45, 0.85, len(placed))])
        texture = ndimage.gaussian_filter(rng.normal(0, 1, (size, size)), 2.0)
        image = brightness[labels[i]] * (1 + 0.25 * texture / (texture.std() + 1e-6) * (labels[i] > 0))
        image = ndimage.gaussian_filter(image, 1.0) + rng.normal(0, 0.04, (size, size))
        images[i, ..., 0] = np.clip(image, 0, 1)
    return images, labels
