"""Tests for helpers.data and helpers.toolkit.folders: pairing by stem, your own folders, the ISBI loader, its download.

The download tests run pooch for real against a loopback HTTP server on 127.0.0.1 that serves a
copy of the local ISBI data, so checksums, re-fetching and error messages are exercised end to end
without the internet.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import tifffile
from PIL import Image
from skimage.data import binary_blobs
from skimage.io import imread

from helpers import data
from helpers.data import SPLIT, data_root, fixed_split, load_isbi2012, registry, resize
from helpers.toolkit.folders import load_folder, split_by_image


# ---------------------------------------------------------------- synthetic folders
def blob_image(seed: int, shape=(37, 53)) -> np.ndarray:
    """A uint8 gray image whose bright pixels (> 127) are its own mask; different for every seed."""
    blobs = binary_blobs(length=max(shape), blob_size_fraction=0.2, volume_fraction=0.3, rng=seed)
    noise = np.random.default_rng(seed).integers(0, 60, shape)
    return np.where(blobs[: shape[0], : shape[1]], 200, 20).astype(np.uint8) + noise.astype(np.uint8)


def write_pairs(tmp_path, stems, shape=(37, 53)):
    """Write images and masks (mask = image > 127) in a shuffled order with mixed mask encodings."""
    images_dir, masks_dir = tmp_path / "images", tmp_path / "masks"
    images_dir.mkdir()
    masks_dir.mkdir()
    truth = {}
    order = np.random.default_rng(42).permutation(len(stems))
    for k in order:  # creation order differs from natural order and from alphabetical order
        stem = stems[k]
        image = blob_image(seed=k + 1, shape=shape)
        mask = (image > 127).astype(np.uint8)
        truth[stem] = (image, mask)
        Image.fromarray(image).save(images_dir / f"{stem}.png")
        encoding = k % 3
        if encoding == 0:
            Image.fromarray(mask * 255).save(masks_dir / f"{stem}.png")
        elif encoding == 1:
            tifffile.imwrite(masks_dir / f"{stem}.tif", mask)
        else:
            palette = Image.fromarray(mask, mode="P")
            palette.putpalette([0, 0, 0, 255, 40, 40] + [0] * 762)
            palette.save(masks_dir / f"{stem}.png")
    return images_dir, masks_dir, truth


def test_load_folder_pairs_by_stem(tmp_path):
    stems = ["10", "2", "1", "b", "a"]
    images_dir, masks_dir, truth = write_pairs(tmp_path, stems)
    subset = load_folder(images_dir, masks_dir)
    assert subset.names == ["1", "2", "10", "a", "b"]
    assert len(subset) == 5 and subset.channels == 1
    assert [p.stem for p in subset.image_paths] == subset.names == [p.stem for p in subset.mask_paths]
    for name, image, mask in zip(subset.names, subset.images, subset.masks):
        stored_image, stored_mask = truth[name]
        assert image.shape == (37, 53, 1) and image.dtype == np.float32
        assert mask.shape == (37, 53, 1) and mask.dtype == np.uint8
        np.testing.assert_allclose(image[..., 0], stored_image / 255, atol=1e-6)
        np.testing.assert_array_equal(mask[..., 0], stored_mask)
        np.testing.assert_array_equal(mask[..., 0], image[..., 0] > 0.5)  # its own image's mask
    # the five masks really differ, so a wrong pairing could not pass
    assert len({m.tobytes() for m in subset.masks}) == 5


def test_load_folder_invert_masks(tmp_path):
    images_dir, masks_dir, truth = write_pairs(tmp_path, ["x", "y"])
    plain = load_folder(images_dir, masks_dir)
    inverted = load_folder(images_dir, masks_dir, invert_masks=True)
    for a, b in zip(plain.masks, inverted.masks):
        np.testing.assert_array_equal(b, 1 - a)
        assert set(np.unique(b)) <= {0, 1}


def test_load_folder_without_masks_and_any_size(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(blob_image(1, (37, 53))).save(folder / "small.png")
    tifffile.imwrite(folder / "big.tif", (blob_image(2, (61, 29)).astype(np.uint16) * 257))  # 16-bit
    subset = load_folder(folder)
    assert subset.masks is None and subset.mask_paths == []
    assert subset.names == ["big", "small"]
    assert [im.shape for im in subset.images] == [(61, 29, 1), (37, 53, 1)]
    np.testing.assert_allclose(subset.images[0][..., 0], blob_image(2, (61, 29)) / 255, atol=1e-6)


def test_load_folder_unpaired_files_listed(tmp_path):
    images_dir, masks_dir, _ = write_pairs(tmp_path, ["1", "2", "3"])
    (images_dir / "2.png").rename(images_dir / "orphan_image.png")
    with pytest.raises(ValueError, match=r"2 file\(s\).*: 2, orphan_image"):
        load_folder(images_dir, masks_dir)


def test_load_folder_size_mismatch_names_both(tmp_path):
    images_dir, masks_dir, _ = write_pairs(tmp_path, ["1", "2"])
    for old in masks_dir.glob("2.*"):
        old.unlink()
    Image.fromarray(np.zeros((40, 53), np.uint8)).save(masks_dir / "2.png")
    with pytest.raises(ValueError, match=r"images/2\.png.*37x53.*masks/2\.png.*40x53"):
        load_folder(images_dir, masks_dir)


def test_load_folder_mixed_gray_and_rgb(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(blob_image(1)).save(folder / "gray.png")
    Image.fromarray(np.dstack([blob_image(2)] * 3)).save(folder / "rgb.jpg")
    with pytest.raises(ValueError, match="channels=1"):
        load_folder(folder)
    assert {im.shape[-1] for im in load_folder(folder, channels=1).images} == {1}
    assert {im.shape[-1] for im in load_folder(folder, channels=3).images} == {3}


def test_load_folder_bad_mask_and_corrupt_image(tmp_path):
    images_dir, masks_dir, _ = write_pairs(tmp_path, ["1", "2"])
    for old in masks_dir.glob("1.*"):
        old.unlink()
    three_classes = np.random.default_rng(0).integers(0, 3, (37, 53)).astype(np.uint8)
    Image.fromarray(three_classes).save(masks_dir / "1.png")
    with pytest.raises(ValueError, match=r"masks/1\.png has values \{0, 1, 2\}"):
        load_folder(images_dir, masks_dir)
    (images_dir / "2.png").write_bytes(b"not really a png")
    with pytest.raises(ValueError, match=r"images/2\.png"):
        load_folder(images_dir)


def test_load_folder_empty_or_missing(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No images"):
        load_folder(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_folder(tmp_path / "missing")


# ---------------------------------------------------------------- resize and fixed_split (no data needed)
def test_resize_masks_stay_binary_and_images_keep_range():
    masks = (np.random.default_rng(0).random((2, 64, 48, 1)) > 0.5).astype(np.float32)
    small = resize(masks, (16, 12), kind="mask")
    assert small.shape == (2, 16, 12, 1) and small.dtype == np.float32
    assert set(np.unique(small)) <= {0.0, 1.0}
    ramp = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (64, 1))[None, ..., None]
    out = resize(ramp, 32)
    assert out.shape == (1, 32, 32, 1) and 0.0 <= out.min() and out.max() <= 1.0
    np.testing.assert_allclose(out[0, :, :, 0].mean(), 0.5, atol=0.01)
    with pytest.raises(ValueError, match="kind"):
        resize(masks, 8, kind="label")


def test_fixed_split_uses_contiguous_blocks():
    index = np.arange(30, dtype=np.float32)[:, None, None, None] * np.ones((30, 2, 2, 1), np.float32)
    parts = fixed_split(index, index + 100)
    assert list(parts) == ["train", "validation", "holdout"]
    for name, (x, y) in parts.items():
        np.testing.assert_array_equal(x[:, 0, 0, 0], list(SPLIT[name]))
        np.testing.assert_array_equal(y[:, 0, 0, 0], np.array(SPLIT[name]) + 100)
    assert SPLIT == {"train": tuple(range(20)), "validation": tuple(range(20, 25)),
                     "holdout": tuple(range(25, 30))}
    with pytest.raises(ValueError, match="30 labelled"):
        fixed_split(index[:10], index[:10])


def test_split_by_image_is_seeded_and_disjoint():
    train, val = split_by_image(10, 0.3, seed=1)
    assert len(val) == 3 and sorted(train + val) == list(range(10))
    assert split_by_image(10, 0.3, seed=1) == (train, val)


def test_split_by_image_bad_input():
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_by_image(10, 1.0, seed=1)
    with pytest.raises(ValueError, match="at least 2"):
        split_by_image(1, 0.2, seed=1)
    assert split_by_image(2, 0.9, seed=0)[0] != []  # at least one image on each side


# ---------------------------------------------------------------- the real ISBI copy
@pytest.fixture(scope="module")
def isbi_train(isbi_dir):
    return load_isbi2012(data_dir=isbi_dir)


def test_isbi_train_shapes_and_values(isbi_train):
    images, masks = isbi_train
    assert images.shape == masks.shape == (30, 512, 512, 1)
    assert images.dtype == masks.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0 and images.std() > 0.05
    assert set(np.unique(masks)) == {0.0, 1.0}
    assert 0.20 <= masks.mean() <= 0.25  # membrane (the positive class) is about 22 % of the pixels


@pytest.mark.parametrize("i", [0, 2, 10, 19, 29])
def test_isbi_pairs_each_image_with_its_own_label(isbi_dir, isbi_train, i):
    images, masks = isbi_train
    np.testing.assert_allclose(images[i, ..., 0], imread(isbi_dir / "train" / "image" / f"{i}.png") / 255,
                               atol=1e-6)
    np.testing.assert_array_equal(masks[i, ..., 0], imread(isbi_dir / "train" / "label" / f"{i}.png") == 0)


def test_isbi_resized_masks_binary(isbi_dir, isbi_train):
    images, masks = load_isbi2012(size=128, data_dir=isbi_dir)
    assert images.shape == masks.shape == (30, 128, 128, 1)
    assert set(np.unique(masks)) == {0.0, 1.0}
    np.testing.assert_allclose(masks.mean(), isbi_train[1].mean(), atol=0.03)
    np.testing.assert_allclose(images.mean(), isbi_train[0].mean(), atol=0.01)


def test_isbi_test_split(isbi_dir):
    images, masks = load_isbi2012("test", data_dir=isbi_dir)
    assert masks is None
    assert images.shape == (30, 512, 512, 1) and images.dtype == np.float32
    np.testing.assert_allclose(images[10, ..., 0], imread(isbi_dir / "test" / "10.png") / 255, atol=1e-6)


def test_isbi_bad_split(isbi_dir):
    with pytest.raises(ValueError, match="fixed_split"):
        load_isbi2012("validation", data_dir=isbi_dir)


def test_isbi_fixed_split(isbi_train):
    images, masks = isbi_train
    parts = fixed_split(images, masks)
    assert {name: len(x) for name, (x, _) in parts.items()} == {"train": 20, "validation": 5, "holdout": 5}
    for name, (start, stop) in {"train": (0, 20), "validation": (20, 25), "holdout": (25, 30)}.items():
        np.testing.assert_array_equal(parts[name][0], images[start:stop])
        np.testing.assert_array_equal(parts[name][1], masks[start:stop])


def test_data_dir_missing_files(tmp_path, monkeypatch):
    (tmp_path / "train" / "image").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "train" / "image" / "0.png")
    with pytest.raises(FileNotFoundError, match=r"data_dir=.*missing 89 of 90 ISBI files \(e\.g\. test/0\.png\)"):
        load_isbi2012(data_dir=tmp_path)
    monkeypatch.setenv("UNET_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="UNET_DATA_DIR=.*missing 89"):
        data_root()


def test_data_dir_wins_over_environment(isbi_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("UNET_DATA_DIR", str(tmp_path / "nowhere"))
    assert data_root(isbi_dir) == isbi_dir
    monkeypatch.setenv("UNET_DATA_DIR", str(isbi_dir))
    assert data_root() == isbi_dir


# ---------------------------------------------------------------- pooch download from 127.0.0.1
class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep pytest output clean
        pass


@pytest.fixture
def isbi_server(isbi_dir, tmp_path):
    """Serve a copy of the ISBI files on 127.0.0.1; yields (base URL, served folder)."""
    served = tmp_path / "server"
    shutil.copytree(isbi_dir / "train", served / "train")
    shutil.copytree(isbi_dir / "test", served / "test")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def workshop(tmp_path, monkeypatch):
    """An empty workshop folder as cache, no UNET_DATA_DIR: the download path is taken."""
    monkeypatch.delenv("UNET_DATA_DIR", raising=False)
    monkeypatch.setenv("UNET_WORKSHOP_DIR", str(tmp_path / "ws"))
    return tmp_path / "ws" / "data" / "isbi2012"


def sha256(path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_verifies_checksums_and_refetches_corrupt_file(isbi_server, workshop, monkeypatch):
    url, _ = isbi_server
    monkeypatch.setenv("UNET_DATA_URL", url)
    assert data_root() == workshop
    expected = registry()
    assert len(expected) == 90
    cached = sorted(str(p.relative_to(workshop)) for p in workshop.rglob("*") if p.is_file())
    assert cached == sorted(expected)  # all 90 files and nothing else (no temporary files)
    for name, digest in expected.items():
        assert sha256(workshop / name) == digest, name

    victim = workshop / "train" / "label" / "7.png"
    victim.write_bytes(victim.read_bytes()[:1000])  # a truncated download
    assert sha256(victim) != expected["train/label/7.png"]
    data_root()
    assert sha256(victim) == expected["train/label/7.png"]
    images, masks = load_isbi2012()  # and the loader reads from the cache
    assert images.shape == masks.shape == (30, 512, 512, 1)


def test_persistent_checksum_mismatch_is_clear_error(isbi_server, isbi_dir, workshop, monkeypatch):
    url, served = isbi_server
    monkeypatch.setenv("UNET_DATA_URL", url)
    shutil.copytree(isbi_dir / "train", workshop / "train")  # a full cache but for one file
    shutil.copytree(isbi_dir / "test", workshop / "test")
    (workshop / "train" / "image" / "12.png").unlink()
    bad = served / "train" / "image" / "12.png"
    bad.write_bytes(bad.read_bytes()[:-100] + b"\0" * 100)  # the server's copy is corrupt
    with pytest.raises(RuntimeError, match=r"train/image/12\.png(.|\n)*UNET_DATA_DIR") as error:
        data_root()
    assert "does not match the known hash" in str(error.value)  # pooch's checksum failure, not another error
    leftovers = sorted(p.name for p in (workshop / "train" / "image").iterdir())
    assert leftovers == sorted(f"{i}.png" for i in range(30) if i != 12)  # no corrupt or temporary file


def test_offline_without_cache_is_clear_error(workshop, monkeypatch):
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("UNET_DATA_URL", f"http://127.0.0.1:{port}/")
    with pytest.raises(RuntimeError, match=r"Could not get ISBI file test/0\.png(.|\n)*network(.|\n)*UNET_DATA_DIR"):
        load_isbi2012()
    assert not any(p.is_file() for p in workshop.rglob("*"))


def test_no_download_when_disabled(workshop, monkeypatch):
    monkeypatch.setenv("UNET_DATA_URL", "http://127.0.0.1:9/")
    assert data_root(download=False) == workshop
    assert not workshop.exists()
