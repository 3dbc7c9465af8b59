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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers import env
from helpers.files import list_images, pair_by_name, read_image, read_mask

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
        uint8 ``(H, W, 1)`` arrays in {0, 1} (1 = foreground), or ``None`` without a mask folder.
    names
        File stems, in natural order; image ``i`` pairs with mask ``i``.
    """

    images: list[np.ndarray]
    masks: list[np.ndarray] | None
    names: list[str]
    image_paths: list[Path] = field(default_factory=list)
    mask_paths: list[Path] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def channels(self) -> int:
        """Number of image channels (1 = gray, 3 = RGB); the same for every image."""
        return self.images[0].shape[-1]


def load_folder(images_dir: str | os.PathLike, masks_dir: str | os.PathLike | None = None,
                channels: int | None = None, invert_masks: bool = False) -> ImageSet:
    """Read a folder of your own images (and a folder of masks with the same file names).

    Parameters
    ----------
    images_dir
        PNG, TIFF or JPEG files; 8- or 16-bit; gray or RGB; any height and width.
    masks_dir
        Masks named like their images (same stem, any supported suffix), stored as {0, 1},
        {0, 255} or palette images; the non-zero value is the structure to segment.
    channels
        ``None``: use the images' own channel count (all must agree); 1 or 3 converts.
    invert_masks
        Swap the classes, e.g. for ISBI-style labels where 255 marks the background.

    Returns
    -------
    ImageSet

    Raises
    ------
    FileNotFoundError
        Missing or empty folder.
    ValueError
        Unpaired files (listed), unreadable or corrupt files (named), image/mask size mismatch
        (both named), masks with more than two values, or mixed gray and RGB images.

    Examples
    --------
    >>> subset = load_folder("my_images", "my_masks")         # doctest: +SKIP
    >>> len(subset), subset.names[:2], subset.channels
    (12, ['cell_1', 'cell_2'], 1)
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
    masks = None
    if mask_paths:
        masks = []
        for image, image_path, mask_path in zip(images, image_paths, mask_paths):
            mask = read_mask(mask_path)
            if mask.shape != image.shape[:2]:
                raise ValueError(f"Size mismatch: image {image_path} is {image.shape[0]}x{image.shape[1]} but "
                                 f"mask {mask_path} is {mask.shape[0]}x{mask.shape[1]}. A mask must have its "
                                 f"image's height and width.")
            masks.append(((1 - mask) if invert_masks else mask)[..., None])
    return ImageSet(images, masks, [p.stem for p in image_paths], image_paths, mask_paths)
