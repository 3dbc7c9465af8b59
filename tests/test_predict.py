"""Tests for helpers.predict.segment_folder: one mask per image, same size and name, any size."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tifffile
from PIL import Image

from helpers import files
from helpers.models import build_unet
from helpers.predict import segment_folder, segment_image


def _identity_model(channels: int = 1, outputs: int = 1) -> keras.Model:
    """A 1x1 convolution that copies the (first) input channel: output == image."""
    conv = keras.layers.Conv2D(outputs, 1)
    model = keras.Sequential([keras.Input((None, None, channels)), conv])
    kernel = np.zeros((1, 1, channels, outputs), "float32")
    kernel[0, 0, 0, :] = 1.0
    conv.set_weights([kernel, np.zeros(outputs, "float32")])
    return model


def _two_level_image(shape, seed):
    """Values 0.2 or 0.8 only, so thresholding at 0.5 is unambiguous after 8-bit storage."""
    return np.where(np.random.default_rng(seed).random(shape) > 0.5, 0.8, 0.2).astype(np.float32)


def test_masks_have_input_names_sizes_and_values(tmp_path):
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    a, b = _two_level_image((37, 53), 0), _two_level_image((70, 45), 1)
    files.write_image(inputs / "slice_2.png", a)
    tifffile.imwrite(inputs / "slice_10.tif", b)  # float TIFF: stored exactly
    (inputs / "notes.txt").write_text("not an image")
    written = segment_folder(_identity_model(), inputs, outputs, tile=32, overlap=8)
    assert [p.name for p in written] == ["slice_2.png", "slice_10.png"]  # natural order
    for path, image in zip(written, (a, b)):
        mask = np.array(Image.open(path))
        assert mask.shape == image.shape and mask.dtype == np.uint8
        np.testing.assert_array_equal(mask, np.where(image > 0.5, 255, 0))
    assert sorted(p.name for p in outputs.iterdir()) == ["slice_10.png", "slice_2.png"]  # no temp files


def test_threshold_rgb_conversion_and_a_real_unet(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    rgb = np.repeat(_two_level_image((20, 30), 2)[..., None], 3, axis=-1)
    files.write_image(inputs / "colour.png", rgb)
    # gray model, RGB file: converted to the model's one channel; threshold 0.9 -> nothing found
    mask = np.array(Image.open(segment_folder(_identity_model(), inputs, tmp_path / "o", threshold=0.9, tile=16,
                                              overlap=4)[0]))
    assert mask.shape == (20, 30) and mask.max() == 0
    unet = build_unet((None, None, 1), filters=4, num_layers=2)
    out = segment_folder(unet, inputs, tmp_path / "u", tile=16, overlap=4)
    assert np.array(Image.open(out[0])).shape == (20, 30)


def test_errors_name_the_problem(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    with pytest.raises(FileNotFoundError, match="No images"):
        segment_folder(_identity_model(), inputs, tmp_path / "out")
    files.write_image(inputs / "a.png", np.zeros((8, 8)))
    with pytest.raises(ValueError, match="input folder"):
        segment_folder(_identity_model(), inputs, inputs)
    with pytest.raises(ValueError, match="2 channels"):
        segment_folder(_identity_model(outputs=2), inputs, tmp_path / "out")
    (inputs / "b.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="b.png"):
        segment_folder(_identity_model(), inputs, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing created before the checks passed


def test_write_read_and_progress_hooks_and_a_list_of_files(tmp_path):
    """The toolkit's predict command runs the same loop, writing its own files for K channels."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    image = _two_level_image((20, 30), 4)
    files.write_image(inputs / "a.png", image)
    seen, passes = [], []

    def write(path, probability, folder):
        seen.append((path.name, probability.shape, probability.dtype))
        out = folder / f"{path.stem}_prob.npy"
        np.save(out, probability)
        return [out]

    def progress(items, description):
        passes.append(description)
        return items

    written = segment_folder(_identity_model(outputs=3), [inputs / "a.png"], tmp_path / "out", tile=16, overlap=4,
                             write=write, read=lambda path: files.read_image(path, channels=1), progress=progress)
    assert written == [tmp_path / "out" / "a_prob.npy"] and passes == ["checking", "predicting"]
    assert seen == [("a.png", (20, 30, 3), np.float32)]
    np.testing.assert_allclose(np.load(written[0])[..., 1], image, atol=1e-2)  # 8-bit storage


def test_segment_image_returns_probability_and_0_255_mask_of_the_input_size():
    image = _two_level_image((37, 53, 1), seed=3)
    prob, mask = segment_image(_identity_model(), image, threshold=0.5, tile=32, overlap=8)
    assert prob.shape == mask.shape == (37, 53)
    np.testing.assert_allclose(prob, image[..., 0], atol=1e-5)  # identity model: probability == image
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
    np.testing.assert_array_equal(mask == 255, image[..., 0] > 0.5)
