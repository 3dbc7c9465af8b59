"""Tests of :mod:`helpers.toolkit.export` and ``python -m helpers export``: BioImage Model Zoo packages.

A tiny U-Net is trained for a few steps on blob images made here (``workflow.train_folder``, as
``python -m helpers train`` does), exported, and tested by bioimageio.core's own model test (spec
validation, test output reproduced within the spec's tolerance, inference at several sizes); its
prediction must match ``helpers.predict``'s. A 3-class softmax model (built under mixed precision,
exported from a 16-bit test image) and the workshop's ISBI model (no run folder) are exported too,
and every bad input must stop with one clear line.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import textwrap
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile
from PIL import Image
from skimage.data import binary_blobs

from helpers import files, models
from helpers.toolkit import export, formats, weight_formats, workflow
from helpers.toolkit.cli import main

TILE, OVERLAP = 32, 8
SIZES = {"a": (48, 56), "b": (40, 48), "c": (44, 52)}


def blob_folder(root):
    """Three 8-bit images of noisy blobs and their {0, 255} masks."""
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir()
    for name, (height, width) in SIZES.items():
        seed = sum(map(ord, name))
        mask = binary_blobs(length=max(height, width), blob_size_fraction=0.2, volume_fraction=0.4, rng=seed)
        mask = mask[:height, :width]
        image = np.clip(0.3 + 0.4 * mask + np.random.default_rng(seed).normal(0, 0.05, mask.shape), 0, 1)
        Image.fromarray((image * 255).astype(np.uint8)).save(images / f"{name}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(masks / f"{name}.png")
    return images, masks


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder as ``python -m helpers train`` writes it: model.keras, config.json, metrics.json."""
    root = tmp_path_factory.mktemp("export_run")
    images, masks = blob_folder(root)
    workflow.train_folder(images, masks, root / "run", epochs=1, steps=2, tile=TILE, overlap=OVERLAP, filters=4,
                          layers=2, batch_size=4, val_fraction=0.34, verbose=0, echo=lambda line: None)
    return root / "run"


@pytest.fixture(scope="module")
def package(run_dir, tmp_path_factory):
    """The run exported with the Python API."""
    bioimageio_core()
    return export.export_model(run_dir / "model.keras", tmp_path_factory.mktemp("export") / "blobs.zip",
                               authors=["Ada Lovelace"])


def bioimageio_core():
    return pytest.importorskip("bioimageio.core", reason="the export extra (pip install -e '.[export]') is missing")


def unzip_json_or_text(package, name):
    with zipfile.ZipFile(package) as archive:
        return archive.read(name)


# ---------------------------------------------------------------------------------------------
# a model trained with the command line's workflow


def test_cli_export_passes_bioimageio_core_test(run_dir, tmp_path, capsys):
    bioimageio_core()
    package = tmp_path / "blobs.zip"
    code = main(["export", "--model", str(run_dir / "model.keras"), "--out", str(package),
                 "--authors", "Ada Lovelace, Alan Turing", "--license", "MIT", "--check"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"wrote {package}" in captured.out
    # bioimageio.core's test (in-process): spec validation, each weight format reproduces the
    # test output within the spec's tolerance and runs at several input sizes.
    assert f"bioimageio.core's model test of {package}: passed" in captured.out
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
    assert {"rdf.yaml", "README.md", "cover.png", "test_input.npy", "test_output.npy", "weights.keras"} <= names
    if weight_formats.tensorflow_version():
        assert {"tf_saved_model.zip", "weights.h5"} <= names


def test_exported_package_describes_the_run(run_dir, package):
    from bioimageio.spec import load_model_description

    descr = load_model_description(package)  # validates again, with the spec library's checks of the files
    assert descr.validation_summary.status == "valid-format", descr.validation_summary.format()
    config = json.loads((run_dir / "config.json").read_text())
    (tensor,), (output,) = descr.inputs, descr.outputs
    assert [a.type for a in tensor.axes] == ["batch", "space", "space", "channel"]
    assert tensor.axes[1].size.step == 4 and output.axes[1].halo == OVERLAP // 2  # 2 levels; half the overlap
    assert tensor.data.type == "uint8" and tensor.preprocessing[1].kwargs.gain == pytest.approx(1 / 255)
    assert output.axes[-1].channel_names == ["foreground"] and output.data.range == (0.0, 1.0)
    assert [a.name for a in descr.authors] == ["Ada Lovelace"] and descr.name == "U-Net run"
    assert descr.weights.keras_v3.keras_version.major == 3
    if weight_formats.tensorflow_version():
        assert str(descr.weights.tensorflow_saved_model_bundle.tensorflow_version) == weight_formats.tensorflow_version()
    # the test input is the first training image (a crop of a valid size), as stored (8-bit)
    first = files.list_images(config["images"])[config["train_images"][0]]
    test_input = np.load(descr.inputs[0].test_tensor.get_reader())
    raw = np.asarray(Image.open(first))[..., None]
    assert test_input.dtype == np.uint8 and test_input.shape[1:] == export._fit(raw, *test_input.shape[1:3]).shape
    assert np.array_equal(test_input[0], export._fit(raw, *test_input.shape[1:3]))
    readme = unzip_json_or_text(package, "README.md").decode()
    assert f"{config['threshold']:.2f}** (chosen on the validation images" in readme
    assert "## Validation" in readme and "Scores on the validation images" in readme
    assert "Fiji" in readme and "ilastik" in readme and "napari" in readme
    # the Keras file has neither the custom loss nor the optimizer: tools without helpers load it
    with zipfile.ZipFile(package) as archive, zipfile.ZipFile(archive.open("weights.keras")) as weights:
        keras_config = json.loads(weights.read("config.json"))
    assert not keras_config.get("compile_config") and "helpers" not in json.dumps(keras_config)


def test_exported_prediction_matches_helpers_predict(run_dir, package, tmp_path, monkeypatch):
    core = bioimageio_core()
    from bioimageio.core.digest_spec import create_sample_for_model

    from helpers.predict import segment_image

    monkeypatch.chdir(tmp_path)  # bioimageio.core unpacks SavedModels into the working folder
    descr = core.load_model_description(package)
    test_input = np.load(descr.inputs[0].test_tensor.get_reader())
    model = models.load_model(run_dir / "model.keras")
    config = json.loads((run_dir / "config.json").read_text())
    first = files.list_images(config["images"])[config["train_images"][0]]
    image = export._fit(workflow.read_for_model(first, 1, "none"), *test_input.shape[1:3])  # as `predict` reads
    # the package's test output is the model's prediction of the whole test image
    whole = model.predict(image[None], verbose=0)
    np.testing.assert_allclose(np.load(descr.outputs[0].test_tensor.get_reader()), whole, atol=1e-5)
    # bioimageio.core with the exported weights against helpers.predict on the same square of pixels
    # (one tile that is the whole square: helpers pads a non-square image to square tiles)
    side = min(test_input.shape[1:3])
    sample = create_sample_for_model(descr, inputs={"image": test_input[:, :side, :side]})
    with core.create_prediction_pipeline(descr, weight_format="keras_v3") as pipeline:  # no halo padding either
        exported = pipeline.predict_sample_without_blocking(sample, skip_input_padding=True, skip_output_cropping=True)
    exported = exported.members["probabilities"].data.to_numpy()[0, ..., 0]
    probability, mask = segment_image(model, image[:side, :side], threshold=config["threshold"], tile=side,
                                      overlap=0)
    np.testing.assert_allclose(exported, probability, atol=1e-5)
    assert np.array_equal(np.where(exported > config["threshold"], 255, 0), mask)


# ---------------------------------------------------------------------------------------------
# three classes, mixed precision, a 16-bit test image; the workshop's ISBI model


def test_multiclass_mixed_precision_16bit_package_passes_in_process(tmp_path, monkeypatch):
    core = bioimageio_core()
    import keras

    keras.utils.set_random_seed(3)
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = models.custom_unet((None, None, 1), filters=4, num_layers=2, num_classes=3,
                                   output_activation="softmax", use_batch_norm=False)
    finally:
        keras.config.set_dtype_policy(policy)
    run = tmp_path / "run"
    run.mkdir()
    formats.write_json(run / "config.json", {"classes": ["background", "cell interior", "cell boundary"],
                                           "tile": 32, "overlap": 16, "channel_conversion": "none"})
    image = (np.random.default_rng(0).random((50, 37)) * 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "sixteen.tif", image)
    package = export.export_model(model, tmp_path / "three.zip", run_dir=run, test_image=tmp_path / "sixteen.tif",
                                  name="Three classes (test)")
    descr = core.load_model_description(package)
    (tensor,), (output,) = descr.inputs, descr.outputs
    assert output.axes[-1].channel_names == ["background", "cell_interior", "cell_boundary"]
    assert tensor.data.type == "uint16" and tensor.preprocessing[1].kwargs.gain == pytest.approx(1 / 65535)
    assert np.load(output.test_tensor.get_reader()).shape == (1, 48, 36, 3)  # 50 x 37 cropped to valid sizes
    with zipfile.ZipFile(package) as archive, zipfile.ZipFile(archive.open("weights.keras")) as weights:
        assert b"mixed_float16" not in weights.read("config.json")  # exported in float32
    # bioimageio.core's test in this process, for each format it runs under this Keras backend
    # (its SavedModel adapter needs the TensorFlow backend; check_package covers it on the others)
    monkeypatch.chdir(tmp_path)
    # bioimageio.core's Keras adapter writes its own KERAS_BACKEND setting (default "torch") into
    # os.environ when first imported; monkeypatch puts the variable back after this test, so later
    # tests' subprocesses (make gpu-check's dry run) start Keras on the backend this run uses
    monkeypatch.setenv("KERAS_BACKEND", keras.backend.backend())
    runnable = [wf for wf, entry in descr.weights if entry is not None
                and (wf != "tensorflow_saved_model_bundle" or keras.backend.backend() == "tensorflow")]
    assert "keras_v3" in runnable
    for weight_format in runnable:
        summary = core.test_model(package, weight_format=weight_format)
        assert summary.status == "passed", summary.format()


def test_workshop_model_uses_an_isbi_slice_and_the_notebook_scores(isbi_dir, tmp_path, monkeypatch):
    bioimageio_core()
    from bioimageio.spec import load_model_description

    from helpers import runs

    monkeypatch.setenv("UNET_DATA_DIR", str(isbi_dir))
    model = models.custom_unet((None, None, 1), filters=4, num_layers=2, use_batch_norm=False)
    scores = runs.save_scores({"iou_membrane": 0.61, "v_rand": 0.8}, tmp_path / "scores.json", split="holdout",
                              threshold=0.45)
    package = export.export_model(model, tmp_path / "isbi.zip", threshold=0.45, scores=scores, tile=64, overlap=16)
    descr = load_model_description(package)
    assert descr.name == "ISBI 2012 membrane U-Net" and descr.outputs[0].axes[-1].channel_names == ["membrane"]
    slice_25 = np.asarray(Image.open(isbi_dir / "train" / "image" / "25.png"))[..., None]
    test_input = np.load(descr.inputs[0].test_tensor.get_reader())
    assert test_input.shape == (1, 256, 256, 1) and np.array_equal(test_input[0], export._fit(slice_25, 256, 256))
    readme = unzip_json_or_text(package, "README.md").decode()
    assert "ISBI 2012" in readme and "held-out images" in readme and "| v_rand | 0.8000 |" in readme
    assert "**0.45** (given when exporting)" in readme and descr.outputs[0].axes[1].halo == 8
    # the README's napari lines run as written (napari's viewer faked), on an image of no valid size
    snippet = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    added = {}

    class Viewer:
        layers = [SimpleNamespace(data=np.asarray(Image.open(isbi_dir / "test" / "3.png"))[:301, :217])]

        def add_image(self, data, name):
            added[name] = data

    monkeypatch.chdir(tmp_path)
    exec(textwrap.dedent(snippet), {"viewer": Viewer()})
    assert added["probabilities"].shape == (1, 301, 217) and 0 <= added["probabilities"].min() <= 1


def test_without_tensorflow_only_the_keras_weights_are_written(run_dir, tmp_path, monkeypatch):
    bioimageio_core()
    from bioimageio.spec import load_model_description

    monkeypatch.setattr(weight_formats, "tensorflow_version", lambda: None)  # Colab's TPU runtimes: Keras on JAX alone
    package = export.export_model(run_dir / "model.keras", tmp_path / "keras_only.zip")
    descr = load_model_description(package)
    assert descr.validation_summary.status == "valid-format"
    assert [wf for wf, entry in descr.weights if entry is not None] == ["keras_v3"]
    assert "`keras_v3`." in unzip_json_or_text(package, "README.md").decode()


# ---------------------------------------------------------------------------------------------
# bad input: one clear line naming the fix


def not_a_unet(kind):
    import keras

    if kind == "classifier":
        return keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    if kind == "two inputs":
        a, b = keras.Input((None, None, 1)), keras.Input((None, None, 1))
        return keras.Model([a, b], keras.layers.Conv2D(1, 1)(keras.layers.Concatenate()([a, b])))
    image = keras.Input((32, 32, 1))
    if kind == "smaller output":  # 'valid' convolutions, as vanilla_unet
        x = keras.layers.MaxPooling2D()(keras.layers.Conv2D(2, 3)(image))
        return keras.Model(image, keras.layers.UpSampling2D()(x))
    return keras.Model(image, keras.layers.Conv2D(1, 3, padding="same")(image))  # no pooling


@pytest.mark.parametrize("kind, message", [("classifier", "not a U-Net"), ("two inputs", "2 inputs"),
                                           ("smaller output", "differ in height or width"),
                                           ("no pooling", "no 2 x 2 pooling")])
def test_not_a_unet_is_refused(kind, message, tmp_path):
    with pytest.raises(ValueError, match=message) as error:
        export.export_model(not_a_unet(kind), tmp_path / "x.zip")
    assert "build_unet" in str(error.value) and not (tmp_path / "x.zip").exists()


def test_bad_out_name_licence_and_existing_file(run_dir, tmp_path, capsys):
    model = run_dir / "model.keras"
    with pytest.raises(ValueError, match=r"must end in \.zip"):
        export.export_model(model, tmp_path / "x.yaml")
    existing = tmp_path / "old.zip"
    existing.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="force=True"):
        export.export_model(model, existing)
    assert main(["export", "--model", str(model), "--out", str(existing)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--force" in err and err.count("\n") == 1
    assert existing.read_bytes() == b"keep me"
    assert main(["export", "--model", str(tmp_path / "missing.keras"), "--out", str(tmp_path / "y.zip")]) == 1
    err = capsys.readouterr().err
    assert f"--model {tmp_path / 'missing.keras'}" in err and "no such model file" in err
    bioimageio_core()
    with pytest.raises(ValueError, match="SPDX"):
        export.export_model(model, tmp_path / "x.zip", license="my own licence")
    with pytest.raises(ValueError, match="name='a/b'"):
        export.export_model(model, tmp_path / "x.zip", name="a/b")
    assert not (tmp_path / "x.zip").exists() and not list(tmp_path.glob(".x.*"))


def test_missing_bioimageio_names_the_install(run_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "bioimageio", None)
    monkeypatch.setitem(sys.modules, "bioimageio.spec", None)
    with pytest.raises(ImportError, match=r"pip install 'bioimageio\.core>=0\.11' 'pydantic>=2\.10\.3,<2\.14'"):
        export.export_model(run_dir / "model.keras", tmp_path / "x.zip")
    assert main(["export", "--model", str(run_dir / "model.keras"), "--out", str(tmp_path / "x.zip")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Exporting to the BioImage Model Zoo format needs bioimageio") and err.count("\n") == 1
    # helpers.toolkit.export itself imports without bioimageio
    spec = importlib.util.spec_from_file_location("export_without_bioimageio", export.__file__)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    assert module.WEIGHT_FORMATS[0] == "keras_v3"


def test_saved_model_prints_no_tensorflow_info(tmp_path, capfd, caplog):
    """In Jupyter TensorFlow logs INFO ("INFO:tensorflow:Assets written to: ...") into the cell's output; the
    SavedModel is written without it, and the logger's level is as it was afterwards (issue 22)."""
    import logging

    import keras

    tf = pytest.importorskip("tensorflow", reason="the SavedModel needs TensorFlow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("written in this process only on Keras' TensorFlow backend")
    model = models.custom_unet((32, 32, 1), num_classes=1, filters=4, num_layers=1)
    model.save(tmp_path / "weights.keras")
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(logging.INFO)  # as TensorFlow sets it in a Jupyter kernel
    try:
        weight_formats.write_saved_model(tmp_path / "weights.keras", tmp_path / "saved_model", channels=1)
        assert logger.level == logging.INFO
    finally:
        logger.setLevel(level)
    printed = capfd.readouterr()
    assert (tmp_path / "saved_model" / "saved_model.pb").is_file()
    assert "INFO:tensorflow" not in printed.out + printed.err
    assert not [r.getMessage() for r in caplog.records if r.name == "tensorflow" and r.levelno < logging.WARNING]
