"""Tests for helpers.files: every supported format, bit depth and colour, masks, errors, atomic writes."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tifffile
from PIL import Image

from helpers import files
from helpers.toolkit import formats
from helpers.files import list_images, natural_key, read_image, read_mask, to_float, write_image

RNG = np.random.default_rng(0)
GRAY8 = RNG.integers(0, 256, (12, 10), dtype=np.uint8)
RGB8 = RNG.integers(0, 256, (12, 10, 3), dtype=np.uint8)
GRAY16 = RNG.integers(0, 65536, (12, 10), dtype=np.uint16)
RGB16 = RNG.integers(0, 65536, (12, 10, 3), dtype=np.uint16)
BINARY = (RNG.random((12, 10)) > 0.5).astype(np.uint8)
LUMA = np.array([0.2125, 0.7154, 0.0721])


def save_pil(path, array, mode=None):
    Image.fromarray(array, mode=mode).save(path)
    return path


def only_files(folder):
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------- read_image: formats and bit depths
@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_read_gray_8bit(tmp_path, suffix):
    path = tmp_path / f"g{suffix}"
    save_pil(path, GRAY8) if suffix == ".png" else tifffile.imwrite(path, GRAY8)
    image = read_image(path)
    assert image.shape == (12, 10, 1) and image.dtype == np.float32
    np.testing.assert_allclose(image[..., 0], GRAY8 / 255, atol=1e-6)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_read_rgb_8bit(tmp_path, suffix):
    path = tmp_path / f"c{suffix}"
    save_pil(path, RGB8) if suffix == ".png" else tifffile.imwrite(path, RGB8)
    image = read_image(path)
    assert image.shape == (12, 10, 3) and image.dtype == np.float32
    np.testing.assert_allclose(image, RGB8 / 255, atol=1e-6)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_read_gray_16bit_scaled_by_65535(tmp_path, suffix):
    path = tmp_path / f"g16{suffix}"
    save_pil(path, GRAY16) if suffix == ".png" else tifffile.imwrite(path, GRAY16)
    if suffix == ".png":
        with Image.open(path) as check:
            assert check.mode.startswith("I;16")  # really a 16-bit PNG
    image = read_image(path)
    assert image.shape == (12, 10, 1) and image.dtype == np.float32
    np.testing.assert_allclose(image[..., 0], GRAY16 / 65535, atol=1e-6)
    assert image.max() > 0.99  # not divided by 255 and clipped, nor by 2**31


def test_read_rgb_16bit_tiff(tmp_path):
    tifffile.imwrite(tmp_path / "c16.tif", RGB16)
    image = read_image(tmp_path / "c16.tif")
    assert image.shape == (12, 10, 3)
    np.testing.assert_allclose(image, RGB16 / 65535, atol=1e-6)


def test_read_jpeg_gray_and_rgb(tmp_path):
    smooth = np.tile(np.linspace(0, 255, 32).astype(np.uint8), (24, 1))  # JPEG is lossy: a smooth ramp
    Image.fromarray(smooth).save(tmp_path / "g.jpg", quality=95)
    Image.fromarray(np.dstack([smooth] * 3)).save(tmp_path / "c.jpeg", quality=95)
    gray, rgb = read_image(tmp_path / "g.jpg"), read_image(tmp_path / "c.jpeg")
    assert gray.shape == (24, 32, 1) and rgb.shape == (24, 32, 3)
    assert np.abs(gray[..., 0] - smooth / 255).max() < 0.05
    assert np.abs(rgb - np.dstack([smooth] * 3) / 255).max() < 0.05


def test_read_rgba_drops_alpha(tmp_path):
    rgba = np.dstack([RGB8, np.full((12, 10), 7, np.uint8)])  # almost transparent: must not matter
    save_pil(tmp_path / "a.png", rgba)
    tifffile.imwrite(tmp_path / "a.tif", rgba)
    for name in ("a.png", "a.tif"):
        image = read_image(tmp_path / name)
        assert image.shape == (12, 10, 3), name
        np.testing.assert_allclose(image, RGB8 / 255, atol=1e-6)


def test_read_gray_with_alpha_drops_alpha(tmp_path):
    save_pil(tmp_path / "la.png", np.dstack([GRAY8, np.zeros_like(GRAY8)]), mode="LA")
    np.testing.assert_allclose(read_image(tmp_path / "la.png")[..., 0], GRAY8 / 255, atol=1e-6)


def test_read_palette_image_gives_colours_not_indices(tmp_path):
    palette = [255, 0, 0, 0, 0, 255] + [0] * 762  # index 0 = red, 1 = blue
    image = Image.fromarray(BINARY, mode="P")
    image.putpalette(palette)
    image.save(tmp_path / "p.png")
    rgb = read_image(tmp_path / "p.png")
    expected = np.where(BINARY[..., None] == 1, [0.0, 0.0, 1.0], [1.0, 0.0, 0.0])
    assert rgb.shape == (12, 10, 3)
    np.testing.assert_allclose(rgb, expected, atol=1e-6)


def test_channels_conversion(tmp_path):
    save_pil(tmp_path / "g.png", GRAY8)
    save_pil(tmp_path / "c.png", RGB8)
    gray3 = read_image(tmp_path / "g.png", channels=3)
    assert gray3.shape == (12, 10, 3)
    for c in range(3):
        np.testing.assert_allclose(gray3[..., c], GRAY8 / 255, atol=1e-6)
    rgb1 = read_image(tmp_path / "c.png", channels=1)
    assert rgb1.shape == (12, 10, 1) and rgb1.dtype == np.float32
    np.testing.assert_allclose(rgb1[..., 0], (RGB8 / 255) @ LUMA, atol=1e-5)
    assert read_image(tmp_path / "g.png", channels=1).shape == (12, 10, 1)
    assert read_image(tmp_path / "c.png", channels=3).shape == (12, 10, 3)
    with pytest.raises(ValueError, match="channels"):
        read_image(tmp_path / "g.png", channels=2)


def test_to_float_ranges():
    np.testing.assert_array_equal(to_float(np.array([0, 255], np.uint8)), [0.0, 1.0])
    np.testing.assert_array_equal(to_float(np.array([0, 65535], np.uint16)), [0.0, 1.0])
    np.testing.assert_array_equal(to_float(np.array([0.0, 0.5], np.float64)), [0.0, 0.5])
    np.testing.assert_allclose(to_float(np.array([-2.0, 0.0, 2.0])), [0.0, 0.5, 1.0])
    assert to_float(np.array([True, False])).dtype == np.float32


# ---------------------------------------------------------------- read_mask
@pytest.mark.parametrize("scale", [1, 255])
@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_read_mask_01_and_0255(tmp_path, scale, suffix):
    path = tmp_path / f"m{suffix}"
    stored = (BINARY * scale).astype(np.uint8)
    save_pil(path, stored) if suffix == ".png" else tifffile.imwrite(path, stored)
    mask = read_mask(path)
    assert mask.dtype == np.uint8 and mask.shape == (12, 10)
    np.testing.assert_array_equal(mask, BINARY)


def test_read_mask_palette_uses_indices(tmp_path):
    image = Image.fromarray(BINARY, mode="P")
    image.putpalette([200, 30, 90, 10, 250, 60] + [0] * 762)  # colourful, nothing like 0/255
    image.save(tmp_path / "p.png")
    with Image.open(tmp_path / "p.png") as check:
        assert check.mode == "P"
    np.testing.assert_array_equal(read_mask(tmp_path / "p.png"), BINARY)


def test_read_mask_rgb_with_equal_channels(tmp_path):
    save_pil(tmp_path / "m.png", np.dstack([BINARY * 255] * 3).astype(np.uint8))
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), BINARY)


def test_read_mask_rgb_with_differing_channels_fails(tmp_path):
    rgb = np.dstack([BINARY * 255, np.zeros_like(BINARY), BINARY * 255]).astype(np.uint8)
    save_pil(tmp_path / "colour.png", rgb)
    with pytest.raises(ValueError, match="colour.png"):
        read_mask(tmp_path / "colour.png")


def test_read_mask_single_class_and_bilevel(tmp_path):
    save_pil(tmp_path / "full.png", np.full((4, 5), 255, np.uint8))
    np.testing.assert_array_equal(read_mask(tmp_path / "full.png"), np.ones((4, 5)))
    Image.fromarray(BINARY.astype(bool)).save(tmp_path / "bits.png")  # mode "1"
    np.testing.assert_array_equal(read_mask(tmp_path / "bits.png"), BINARY)


@pytest.mark.parametrize("values", [[0, 1, 2], [0, 128, 255], [1, 255]])
def test_read_mask_other_values_fail_naming_file(tmp_path, values):
    stored = np.array(values, np.uint8)[RNG.integers(0, len(values), (6, 6))]
    stored[0, : len(values)] = values  # every value present
    save_pil(tmp_path / "classes.png", stored)
    with pytest.raises(ValueError, match=r"classes\.png.*\{0, 1\}"):
        read_mask(tmp_path / "classes.png")


# ---------------------------------------------------------------- errors for both readers
def test_truncated_png_is_value_error_naming_file(tmp_path):
    save_pil(tmp_path / "full.png", RGB8)
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    for reader in (read_image, read_mask):
        with pytest.raises(ValueError, match=r"cut\.png"):
            reader(tmp_path / "cut.png")


@pytest.mark.parametrize("name", ["noise.png", "noise.tif", "noise.jpg"])
def test_random_bytes_are_value_error_naming_file(tmp_path, name):
    (tmp_path / name).write_bytes(np.random.default_rng(1).bytes(500))
    for reader in (read_image, read_mask):
        with pytest.raises(ValueError, match=name.replace(".", r"\.")):
            reader(tmp_path / name)


def test_stack_tiff_is_value_error(tmp_path):
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((3, 4, 5), np.uint8), photometric="minisblack")
    with pytest.raises(ValueError, match=r"stack\.tif"):
        read_image(tmp_path / "stack.tif")


def test_missing_file_is_file_not_found(tmp_path):
    for reader in (read_image, read_mask):
        with pytest.raises(FileNotFoundError, match="nothing.png"):
            reader(tmp_path / "nothing.png")


# ---------------------------------------------------------------- write_image
def test_write_png_round_trip(tmp_path):
    assert write_image(tmp_path / "g.png", GRAY8) == tmp_path / "g.png"
    np.testing.assert_array_equal(np.array(Image.open(tmp_path / "g.png")), GRAY8)
    write_image(tmp_path / "m.png", BINARY.astype(np.float32)[..., None])  # float mask -> {0, 255}
    np.testing.assert_array_equal(np.array(Image.open(tmp_path / "m.png")), BINARY * 255)
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), BINARY)
    write_image(tmp_path / "c.png", RGB8 / 255)
    np.testing.assert_allclose(read_image(tmp_path / "c.png"), RGB8 / 255, atol=1e-6)
    assert only_files(tmp_path) == ["c.png", "g.png", "m.png"]  # no temporary files left


def test_write_tiff_keeps_floats_exactly(tmp_path):
    prob = RNG.random((12, 10)).astype(np.float32)
    write_image(tmp_path / "p.tif", prob[..., None])
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "p.tif"), prob)
    write_image(tmp_path / "c.tiff", RGB16)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "c.tiff"), RGB16)
    assert only_files(tmp_path) == ["c.tiff", "p.tif"]


def test_written_file_permissions_follow_umask(tmp_path):
    write_image(tmp_path / "g.png", GRAY8)
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / "g.png").st_mode & 0o777 == 0o666 & ~umask


def test_write_overwrites_existing(tmp_path):
    write_image(tmp_path / "g.png", np.zeros((3, 3), np.uint8))
    write_image(tmp_path / "g.png", np.full((3, 3), 9, np.uint8))
    np.testing.assert_array_equal(np.array(Image.open(tmp_path / "g.png")), 9)
    assert only_files(tmp_path) == ["g.png"]


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def broken_save(self, fp, *args, **kwargs):
        with open(fp, "wb") as handle:
            handle.write(b"\x89PNG half")  # a half-written file, then the crash
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_image(tmp_path / "out.png", GRAY8)
    assert only_files(tmp_path) == []


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    write_image(tmp_path / "out.tif", GRAY8)

    def broken_imwrite(path, *args, **kwargs):
        open(path, "wb").close()
        raise KeyboardInterrupt  # even an interruption must not clobber the old file

    monkeypatch.setattr(tifffile, "imwrite", broken_imwrite)
    with pytest.raises(KeyboardInterrupt):
        write_image(tmp_path / "out.tif", RGB8)
    assert only_files(tmp_path) == ["out.tif"]
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), GRAY8)


def test_atomic_path_renames_only_on_success(tmp_path):
    with files.atomic_path(tmp_path / "a.txt") as tmp:
        assert tmp.parent == tmp_path and tmp != tmp_path / "a.txt"
        tmp.write_text("done")
        assert not (tmp_path / "a.txt").exists()
    assert (tmp_path / "a.txt").read_text() == "done"
    with pytest.raises(RuntimeError):
        with files.atomic_path(tmp_path / "b.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert only_files(tmp_path) == ["a.txt"]


def test_write_to_unwritable_folder_is_permission_error(tmp_path, monkeypatch):
    # Tests run as root, which can write anywhere whatever chmod says: simulate the check instead.
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if mode & os.W_OK else real_access(p, mode))
    with pytest.raises(PermissionError, match=str(tmp_path)):
        write_image(tmp_path / "x.png", GRAY8)
    assert only_files(tmp_path) == []


def test_write_to_missing_folder_fails_clearly(tmp_path):
    with pytest.raises(PermissionError, match="missing"):
        write_image(tmp_path / "no" / "x.png", GRAY8)


def test_write_bad_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"\.png or \.tif"):
        write_image(tmp_path / "x.jpg", GRAY8)
    assert only_files(tmp_path) == []


# ---------------------------------------------------------------- list_images
def test_natural_key_order():
    assert sorted(["10", "2", "1", "b", "A", "img10", "img9"], key=natural_key) == \
        ["1", "2", "10", "A", "b", "img9", "img10"]


def test_list_images_natural_order_and_filtering(tmp_path):
    for name in ["10.png", "2.tif", "1.JPG", "b.png", "a.tiff"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()  # a folder with an image-like name
    found = list_images(tmp_path)
    assert list(found) == ["1", "2", "10", "a", "b"]
    assert found["2"] == tmp_path / "2.tif" and found["1"].name == "1.JPG"


def test_list_images_duplicate_stems(tmp_path):
    (tmp_path / "cell.png").write_bytes(b"x")
    (tmp_path / "cell.tif").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"cell\.png.*cell\.tif"):
        list_images(tmp_path)


def test_list_images_empty_or_missing_folder(tmp_path):
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(FileNotFoundError, match="No images"):
        list_images(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        list_images(tmp_path / "missing")


def test_pair_by_name_across_suffixes_and_lists_unpaired(tmp_path):
    first, second = tmp_path / "images", tmp_path / "masks"
    first.mkdir()
    second.mkdir()
    for stem in ("10", "2", "1"):
        (first / f"{stem}.png").write_bytes(b"x")
        (second / f"{stem}.tif").write_bytes(b"x")
    pairs = formats.pair_by_name(first, second)
    assert list(pairs) == ["1", "2", "10"]
    assert pairs["2"] == (first / "2.png", second / "2.tif")
    (first / "lonely.png").write_bytes(b"x")
    (second / "other.png").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"2 file\(s\).*images and .*masks: lonely, other\. Do this\.$"):
        formats.pair_by_name(first, second, fix="Do this.")
    listed = {stem: path for stem, path in list_images(first).items() if stem != "lonely"}
    (second / "other.png").unlink()
    assert formats.pair_by_name(listed, second) == pairs  # an already listed folder
    with pytest.raises(FileNotFoundError, match="not found"):
        formats.pair_by_name(first, tmp_path / "missing")


def test_check_writable(tmp_path, monkeypatch):
    assert formats.check_writable(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # nothing is created
    (tmp_path / "file").write_text("")
    with pytest.raises(PermissionError, match="is a file"):
        formats.check_writable(tmp_path / "file" / "out")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p) == str(tmp_path) else real_access(p, mode))
    with pytest.raises(PermissionError, match="not writable"):
        formats.check_writable(tmp_path / "blocked")


def test_json_round_trip_and_corrupt_file(tmp_path):
    path = formats.write_json(tmp_path / "a.json", {"threshold": np.float32(0.5), "names": ["a"]})
    assert formats.read_json(path) == {"threshold": 0.5, "names": ["a"]}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary file left
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"Cannot read .*a\.json.*Fix or delete"):
        formats.read_json(path)
    with pytest.raises(ValueError, match="missing.json"):
        formats.read_json(tmp_path / "missing.json")
