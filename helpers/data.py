"""The ISBI 2012 EM data and your own image folders, loaded the same way everywhere.

**Positive class.** ISBI label images store membrane as 0 and cell interior as 255. The workshop
is about finding membranes, so every mask in this package has **1 = membrane** and 0 = cell
interior (``mask = label == 0``), and models output the probability of membrane.

**Where the data comes from**, first match wins:

1. the ``data_dir`` argument;
2. the ``UNET_DATA_DIR`` environment variable (tests and CI point it at a local copy);
3. the cache ``<workshop>/data/isbi2012`` (on Google Drive in Colab, so a new session does not
   download again; the repository's ``data/`` folder locally), where missing or corrupt files are
   downloaded with pooch from a pinned upstream commit and checked against a SHA-256 per file.

**Fixed split** of the 30 labelled slices (:data:`SPLIT`), the same in every notebook, test and
benchmark so their numbers are comparable: train = slices 0-19, validation = 20-24,
holdout = 25-29. The blocks are contiguous because neighbouring slices are 50 nm apart and look
nearly alike; interleaving them would leak the validation answers into training.

**Your own folders** (:func:`load_folder`): binary masks, masks of K classes stored as the class
numbers 0..K-1 (inferred from the masks, or named), or instance labels converted to the
three-class scheme. **Synthetic data** (:func:`synthetic_nuclei`): touching nuclei drawn with
scikit-image, for a multi-class example that needs no download.

Examples
--------
>>> images, masks = load_isbi2012()                      # doctest: +SKIP
>>> images.shape, masks.shape, float(masks.mean())
((30, 512, 512, 1), (30, 512, 512, 1), 0.22)
>>> parts = fixed_split(images, masks)                   # doctest: +SKIP
>>> parts["train"][0].shape[0], parts["validation"][0].shape[0], parts["holdout"][0].shape[0]
(20, 5, 5)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers import env
from helpers.files import (is_binary_encoding, list_images, pair_by_name, read_image, read_labels, read_mask,
                           shown_values)

#: Pinned upstream copies of the data (identical files); the second is tried if the first fails.
BASE_URLS = (
    "https://raw.githubusercontent.com/doktor-nick/adv-ML-image-segmentation-with-UNET/"
    "ed2a1d8237493612596eba0da198c1a2f9c3cbd9/data/isbi2015/",
    "https://raw.githubusercontent.com/karolzak/keras-unet/"
    "2b1c6d5ea1846b97ff7fa0f38ec371f20db73020/input/isbi2015/",
)
REGISTRY_FILE = env.REPO_ROOT / "data" / "isbi2012_registry.txt"

#: Indices of the 30 labelled slices in each part of the workshop's fixed split.
SPLIT = {"train": tuple(range(0, 20)), "validation": tuple(range(20, 25)), "holdout": tuple(range(25, 30))}

#: How to fix images without a mask of the same name (the end of the error message).
PAIR_FIX = "Give each image a mask with the same file name (stem)."

#: The most classes inferred from the masks' values; more need their names (``classes=[...]``,
#: ``--classes``). A "mask" with more values is usually a photo or an instance-label image.
MAX_INFERRED_CLASSES = 16


def registry() -> dict[str, str]:
    """Relative path -> ``"sha256:<hex>"`` for all 90 ISBI files (from ``data/isbi2012_registry.txt``)."""
    entries = {}
    for line in REGISTRY_FILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, digest = line.split()
            entries[name] = digest
    return entries


def cache_dir() -> Path:
    """Where downloaded ISBI files are kept: ``<workshop_dir>/data/isbi2012``."""
    return env.workshop_dir() / "data" / "isbi2012"


def _fetch(names: list[str], folder: Path) -> None:
    """Download ``names`` into ``folder`` unless present with the right checksum."""
    import pooch
    import requests
    from tqdm.auto import tqdm

    entries = registry()
    base_urls = [os.environ["UNET_DATA_URL"]] if "UNET_DATA_URL" in os.environ else list(BASE_URLS)
    fetchers = [pooch.create(path=folder, base_url=url.rstrip("/") + "/", registry=entries, retry_if_failed=1)
                for url in base_urls]
    for name in tqdm(names, desc="ISBI 2012 files", unit="file", disable=len(names) < 2, leave=False):
        errors = []
        for fetcher in fetchers:
            try:
                fetcher.fetch(name)  # an existing file with a wrong checksum is downloaded again
                break
            except (requests.RequestException, OSError, ValueError) as error:
                errors.append(f"{fetcher.base_url}: {error}")
        else:
            (folder / name).unlink(missing_ok=True)
            raise RuntimeError(
                f"Could not get ISBI file {name} with a valid SHA-256 into {folder}.\n  " + "\n  ".join(errors)
                + "\nCheck the network connection, or download the data elsewhere and set UNET_DATA_DIR "
                  "to that folder (see data/README.md).")


def data_root(data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Return a folder holding all 90 ISBI files, downloading into the cache if needed.

    Parameters
    ----------
    data_dir
        A local copy to use as is; ``None`` tries ``UNET_DATA_DIR`` and then the cache.
    download
        Fetch missing or corrupt files into the cache (checked against their SHA-256).

    Raises
    ------
    FileNotFoundError
        A given folder lacks files (the message lists them and says how to fix it).
    RuntimeError
        Downloading failed or a file keeps failing its checksum.

    Examples
    --------
    >>> (data_root() / "train" / "image" / "0.png").is_file()   # doctest: +SKIP
    True
    """
    names = list(registry())
    given = data_dir if data_dir is not None else os.environ.get("UNET_DATA_DIR")
    if given:
        root = Path(given).expanduser()
        missing = [name for name in names if not (root / name).is_file()]
        if missing:
            origin = "data_dir" if data_dir is not None else "UNET_DATA_DIR"
            raise FileNotFoundError(
                f"{origin}={root} is missing {len(missing)} of {len(names)} ISBI files (e.g. {missing[0]}). "
                f"Point it at the folder holding train/image, train/label and test, or unset it to download.")
        return root
    root = cache_dir()
    if download:
        root.mkdir(parents=True, exist_ok=True)
        _fetch(names, root)
    return root


def resize(images: np.ndarray, size: int | tuple[int, int], kind: str = "image") -> np.ndarray:
    """Resize an NHWC batch to ``size``; masks use nearest-neighbour so they stay binary.

    Bilinear interpolation of a mask would create in-between values (0.5 = "half membrane") at
    every edge; nearest-neighbour keeps each pixel one class.

    Examples
    --------
    >>> resize(np.zeros((2, 512, 512, 1), np.float32), 128).shape
    (2, 128, 128, 1)
    """
    from skimage.transform import resize as sk_resize

    if kind not in ("image", "mask"):
        raise ValueError(f"kind must be 'image' or 'mask', not {kind!r}")
    height, width = (size, size) if isinstance(size, int) else size
    is_mask = kind == "mask"
    out = [sk_resize(item, (height, width, item.shape[-1]), order=0 if is_mask else 1,
                     anti_aliasing=not is_mask, preserve_range=True) for item in images]
    return np.stack(out).astype(np.float32)


def load_isbi2012(split: str = "train", size: int | tuple[int, int] | None = None,
                  data_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Load the ISBI 2012 slices as float32 NHWC arrays.

    Parameters
    ----------
    split
        ``"train"``: the 30 labelled slices with their masks; ``"test"``: the 30 unlabelled
        challenge test slices (masks are ``None``).
    size
        Resize to ``size`` x ``size`` (or ``(height, width)``); ``None`` keeps 512 x 512.
    data_dir
        A local copy of the data; see the module docstring for where it is looked for.

    Returns
    -------
    images : np.ndarray
        ``(30, H, W, 1)`` float32 in [0, 1], in slice order 0, 1, ..., 29.
    masks : np.ndarray or None
        ``(30, H, W, 1)`` float32, 1 = membrane, 0 = cell interior; each paired with the image
        of the same file name, never by listing order.

    Examples
    --------
    >>> x, y = load_isbi2012(size=128)                     # doctest: +SKIP
    >>> x.shape, y.shape, sorted(np.unique(y))
    ((30, 128, 128, 1), (30, 128, 128, 1), [0.0, 1.0])
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' (30 labelled slices) or 'test' (30 unlabelled), not {split!r}. "
                         f"For train/validation/holdout use fixed_split().")
    root = data_root(data_dir)
    if split == "test":
        paths = list(list_images(root / "test").values())
        images = np.stack([read_image(path, channels=1) for path in paths])
        return (images if size is None else resize(images, size)), None
    pairs = pair_by_name(root / "train" / "image", root / "train" / "label", fix=PAIR_FIX).values()
    images = np.stack([read_image(image_path, channels=1) for image_path, _ in pairs])
    masks = np.stack([(read_mask(mask_path) == 0)[..., None] for _, mask_path in pairs]).astype(np.float32)
    if size is not None:
        images, masks = resize(images, size), resize(masks, size, kind="mask")
    return images, masks


def fixed_split(images: np.ndarray, masks: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Split the 30 labelled slices into the workshop's train / validation / holdout parts.

    Examples
    --------
    >>> parts = fixed_split(np.zeros((30, 8, 8, 1)), np.zeros((30, 8, 8, 1)))
    >>> {name: x.shape[0] for name, (x, y) in parts.items()}
    {'train': 20, 'validation': 5, 'holdout': 5}
    """
    if len(images) != 30 or len(masks) != 30:
        raise ValueError(f"fixed_split expects the 30 labelled ISBI slices, got {len(images)} images and "
                         f"{len(masks)} masks. Load them with load_isbi2012('train').")
    return {name: (images[list(index)], masks[list(index)]) for name, index in SPLIT.items()}


def split_by_image(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Shuffle image indices with ``seed`` and split them into train and validation.

    Whole images go to one side, never tiles of the same image to both (neighbouring tiles look
    alike, which would make the validation score optimistic). At least one image goes to each
    side. (The ISBI slices use the contiguous :data:`SPLIT` instead; this is for your own folder.)

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
    """Images (and masks) read from a folder; each may have its own height and width.

    Attributes
    ----------
    images
        float32 ``(H, W, C)`` arrays in [0, 1].
    masks
        uint8 ``(H, W, 1)`` arrays: in {0, 1} (1 = foreground) for binary masks, the class numbers
        0..K-1 for K classes; or ``None`` without a mask folder.
    names
        File stems, in natural order; image ``i`` pairs with mask ``i``.
    class_names
        The classes' names in the order of their numbers, when the masks were read as classes
        (``classes`` or ``instances_to_classes`` of :func:`load_folder`); ``None`` otherwise.
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
    """How many classes a folder of masks holds, from the distinct values of every mask; or refuse.

    * Every mask a binary encoding ({0, 1} or {0, 255}; the folder may mix the two): 2 classes.
    * Otherwise the masks hold class numbers 0..K-1, K = the largest value + 1, the same way in
      every file; without ``class_names``, K is at most :data:`MAX_INFERRED_CLASSES`, every
      class 0..K-1 must occur somewhere (a gap suggests a mislabelled file), and no mask may hold
      just {0, 1} (a binary mask among masks of K classes, or a mask of K classes without the
      classes 2..K-1? Naming the classes says which).
    * With ``class_names`` (K names), the values must lie in 0..K-1.

    Parameters
    ----------
    values
        ``path -> distinct values`` of each mask (:func:`helpers.files.read_labels`, then ``np.unique``).
    class_names
        The classes' names, if given: K = their number.
    allow_gaps
        Accept classes that occur in no mask, and masks of just {0, 1} among masks of more classes
        (when scoring: a prediction may miss a class anywhere).

    Returns
    -------
    int
        K (2 for binary masks).

    Raises
    ------
    ValueError
        Ambiguous masks, in one line naming the file and the fix: a mask with many values (a photo
        or an instance-label image: ``--instances-to-classes`` converts instance labels), values
        that are not class numbers (e.g. {0, 128, 255}), binary {0, 255} masks mixed with class
        numbers, a missing class, or values beyond the named classes.

    Examples
    --------
    >>> infer_classes({Path("a.png"): np.array([0, 255]), Path("b.png"): np.array([0, 1])})
    2
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
    """Whether masks of several values look like instance labels rather than classes.

    Instance labels number the objects of each image 1, 2, ..., so every non-zero value is one
    connected region, and the number of objects varies from image to image. Masks of classes
    usually have regions of a class in several places, or the same classes in every image. So:
    every non-zero value of every mask is one 8-connected region, and either the number of values
    differs between the masks or a mask holds at least 4 of them. (A folder of classes that are
    each one region can look like this; naming the classes settles it.)

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
                classes: str | int | Sequence[str] | None = None, instances_to_classes: bool = False) -> ImageSet:
    """Read a folder of your own images (and a folder of masks with the same file names).

    Parameters
    ----------
    images_dir
        PNG, TIFF or JPEG files; 8- or 16-bit; gray or RGB; any height and width.
    masks_dir
        Masks named like their images (same stem, any supported suffix), stored as {0, 1},
        {0, 255} or palette images; the non-zero value is the structure to segment. With
        ``classes``, class numbers 0..K-1 (gray values or palette indices).
    channels
        ``None``: use the images' own channel count (all must agree); 1 or 3 converts.
    invert_masks
        Swap the classes, e.g. for ISBI-style labels where 255 marks the background (binary
        masks only).
    classes
        ``None``: binary masks (:func:`helpers.files.read_mask`). ``"auto"``: infer binary or K
        classes from the masks (:func:`infer_classes`). A list of K names (or K): masks of K
        classes, 0..K-1; two names mean binary masks with named classes.
    instances_to_classes
        The masks are instance labels (0 = background, one number per object); convert each to
        the three-class scheme background / interior / boundary
        (:func:`helpers.instances.to_three_classes`).

    Returns
    -------
    ImageSet
        ``class_names`` is set whenever ``classes`` or ``instances_to_classes`` is (``"class 0"``,
        ``"class 1"``, ... when inferred; ``["background", "foreground"]`` for binary masks).

    Raises
    ------
    FileNotFoundError
        Missing or empty folder.
    ValueError
        Unpaired files (listed), unreadable or corrupt files (named), image/mask size mismatch
        (both named), masks with more than two values (binary), ambiguous masks
        (:func:`infer_classes`), or mixed gray and RGB images.

    Examples
    --------
    >>> subset = load_folder("my_images", "my_masks")         # doctest: +SKIP
    >>> len(subset), subset.names[:2], subset.channels
    (12, ['cell_1', 'cell_2'], 1)
    >>> load_folder("tissue/images", "tissue/masks", classes="auto").class_names   # doctest: +SKIP
    ['class 0', 'class 1', 'class 2', 'class 3']
    """
    images_dir = Path(images_dir)
    if masks_dir is None:
        image_paths, mask_paths = list(list_images(images_dir).values()), []
    else:
        pairs = pair_by_name(images_dir, masks_dir, fix=PAIR_FIX).values()
        image_paths, mask_paths = [p for p, _ in pairs], [m for _, m in pairs]
    images = [read_image(path, channels) for path in image_paths]
    counts = {image.shape[-1] for image in images}
    if len(counts) > 1:
        raise ValueError(f"{images_dir} mixes gray and RGB images. Pass channels=1 (convert all to gray) "
                         f"or channels=3 (convert all to RGB).")
    masks, class_names = None, None
    if mask_paths:
        raw = [read_mask(path) if classes is None and not instances_to_classes else read_labels(path)
               for path in mask_paths]
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
    from helpers.instances import THREE_CLASSES, to_three_classes

    if classes not in (None, "auto"):
        raise ValueError("--instances-to-classes makes the three classes background, interior, boundary; "
                         "leave out --classes.")
    if invert_masks:
        raise ValueError("--invert-masks does not apply to instance labels (0 is the background); leave it out.")
    return [to_three_classes(mask) for mask in raw], list(THREE_CLASSES)


def synthetic_nuclei(n: int, size: int = 128, seed: int = 0, nuclei: tuple[int, int] = (5, 10),
                     touching: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """Images of touching nuclei and their instance labels, drawn with scikit-image (no download).

    Each image holds ``nuclei`` elliptic nuclei on a dark, noisy background, every nucleus with its
    own brightness and texture; with probability ``touching`` a nucleus is placed against one
    already drawn, overlapping it a little (the later one drawn behind), so many nuclei touch,
    as in a fluorescence image of a dense culture. Nuclei stay inside the image, so none is cut
    by its border. The instance labels are exact: this is what makes the data useful for
    teaching the three-class scheme (:func:`helpers.instances.to_three_classes`) and instance
    matching, whose true answer is known.

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
