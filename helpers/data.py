"""The ISBI 2012 EM slices: checked download, loading (1 = membrane), resizing and the fixed split."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from helpers import env
from helpers.files import list_images, read_image, read_mask

#: Pinned upstream copies of the data (identical files); the second is tried if the first fails.
BASE_URLS = ("https://raw.githubusercontent.com/doktor-nick/adv-ML-image-segmentation-with-UNET/"
             "ed2a1d8237493612596eba0da198c1a2f9c3cbd9/data/isbi2015/",
             "https://raw.githubusercontent.com/karolzak/keras-unet/"
             "2b1c6d5ea1846b97ff7fa0f38ec371f20db73020/input/isbi2015/")
#: Relative path and SHA-256 of each of the 90 files.
REGISTRY_FILE = env.REPO_ROOT / "data" / "isbi2012_registry.txt"

#: The workshop's fixed split of the 30 labelled slices (contiguous blocks).
SPLIT = {"train": tuple(range(0, 20)), "validation": tuple(range(20, 25)), "holdout": tuple(range(25, 30))}


def registry() -> dict[str, str]:
    """Relative path -> ``"sha256:<hex>"`` of the 90 ISBI files, from :data:`REGISTRY_FILE`.

    Examples
    --------
    >>> len(registry()), registry()["test/0.png"][:7]
    (90, 'sha256:')
    """
    lines = REGISTRY_FILE.read_text().splitlines()
    return dict(line.split() for line in lines if line.strip() and not line.startswith("#"))


def _fetch(names: list[str], folder: Path) -> None:
    import pooch
    import requests
    from tqdm.auto import tqdm

    base_urls = [os.environ["UNET_DATA_URL"]] if "UNET_DATA_URL" in os.environ else list(BASE_URLS)
    fetchers = [pooch.create(path=folder, base_url=url.rstrip("/") + "/", registry=registry(), retry_if_failed=1)
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
            raise RuntimeError(f"Could not get ISBI file {name} with a valid SHA-256 into {folder}.\n  "
                               + "\n  ".join(errors) + "\nCheck the network connection, or download the data "
                               "elsewhere and set UNET_DATA_DIR to that folder (see data/README.md).")


def data_root(data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Return a folder holding all 90 ISBI files: ``data_dir``, else ``UNET_DATA_DIR``, else the download cache.

    Parameters
    ----------
    data_dir, download
        A local copy to use as is; fetch missing or corrupt files into ``<workshop_dir>/data/isbi2012``.

    Raises
    ------
    FileNotFoundError, RuntimeError
        ``data_dir`` (or ``UNET_DATA_DIR``) lacks files; the download or a checksum keeps failing.

    Examples
    --------
    >>> (data_root() / "train" / "image" / "0.png").is_file()   # doctest: +SKIP
    True
    """
    names = list(registry())
    given = data_dir if data_dir is not None else os.environ.get("UNET_DATA_DIR")
    if given:
        root = Path(given).expanduser()
        if missing := [name for name in names if not (root / name).is_file()]:
            origin = "data_dir" if data_dir is not None else "UNET_DATA_DIR"
            raise FileNotFoundError(f"{origin}={root} is missing {len(missing)} of {len(names)} ISBI files (e.g. "
                                    f"{missing[0]}). Point it at the folder holding train/image, train/label and "
                                    "test, or unset it to download.")
        return root
    root = env.workshop_dir() / "data" / "isbi2012"
    if download:
        root.mkdir(parents=True, exist_ok=True)
        _fetch(names, root)
    return root


def resize(images: np.ndarray, size: int | tuple[int, int], kind: str = "image") -> np.ndarray:
    """Resize an NHWC batch to ``size``: images bilinearly, masks nearest-neighbour (so they stay binary).

    Parameters
    ----------
    size, kind
        ``size`` x ``size`` or ``(height, width)``; ``"image"`` or ``"mask"``.

    Raises
    ------
    ValueError
        ``kind`` is neither ``"image"`` nor ``"mask"``.

    Examples
    --------
    >>> resize(np.zeros((2, 512, 512, 1), np.float32), 128).shape
    (2, 128, 128, 1)
    """
    from skimage.transform import resize as sk_resize

    if kind not in ("image", "mask"):
        raise ValueError(f"kind must be 'image' or 'mask', not {kind!r}")
    height, width = (size, size) if isinstance(size, int) else size
    order = 0 if kind == "mask" else 1  # nearest-neighbour or bilinear
    return np.stack([sk_resize(item, (height, width, item.shape[-1]), order=order, anti_aliasing=order == 1,
                               preserve_range=True) for item in images]).astype(np.float32)


def load_isbi2012(split: str = "train", size: int | tuple[int, int] | None = None,
                  data_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Load the 30 ISBI 2012 slices of ``split`` as float32 NHWC arrays, masks 1 = membrane.

    Parameters
    ----------
    split
        ``"train"`` (the 30 labelled slices) or ``"test"`` (the 30 unlabelled challenge slices).
    size, data_dir
        As :func:`resize` (``None`` keeps 512 x 512); a local copy of the data (:func:`data_root`).

    Returns
    -------
    images : np.ndarray
        ``(30, H, W, 1)`` in [0, 1], slice order 0..29.
    masks : np.ndarray or None
        ``(30, H, W, 1)``, 1 = membrane, 0 = cell interior; ``None`` for ``"test"``.

    Raises
    ------
    ValueError, FileNotFoundError, RuntimeError
        ``split`` is neither ``"train"`` nor ``"test"``; as :func:`data_root`.

    Examples
    --------
    >>> x, y = load_isbi2012(size=128)                     # doctest: +SKIP
    >>> x.shape, sorted(np.unique(y))                      # doctest: +SKIP
    ((30, 128, 128, 1), [0.0, 1.0])
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' (30 labelled slices) or 'test' (30 unlabelled), not {split!r}. "
                         f"For train/validation/holdout use fixed_split().")
    root = data_root(data_dir)
    if split == "test":
        images = np.stack([read_image(path, channels=1) for path in list_images(root / "test").values()])
        return (images if size is None else resize(images, size)), None
    found, labels = list_images(root / "train" / "image"), root / "train" / "label"  # same names (data_root)
    images = np.stack([read_image(path, channels=1) for path in found.values()])
    # ISBI labels store membrane as 0 and cell interior as 255: the positive class is membrane
    masks = np.array([read_mask(labels / path.name) == 0 for path in found.values()], np.float32)[..., None]
    if size is not None:
        images, masks = resize(images, size), resize(masks, size, kind="mask")
    return images, masks


def fixed_split(images: np.ndarray, masks: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Split the 30 labelled slices into the workshop's train / validation / holdout parts (:data:`SPLIT`).

    Returns
    -------
    dict
        ``{"train": (x, y), "validation": (x, y), "holdout": (x, y)}``: 20, 5 and 5 slices.

    Raises
    ------
    ValueError
        Not the 30 slices of :func:`load_isbi2012` ``("train")``.

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
