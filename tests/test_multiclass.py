"""Tests for more than two classes: losses, metrics, tables, class masks, augmentation, tiling, plots,
reading a folder of class masks, and train -> predict -> evaluate through the command line.

The data is made here: shapes drawn with skimage.draw, and synthetic touching nuclei
(``helpers.toolkit.folders.synthetic_nuclei``) with their exact instance labels. Models are tiny (4 filters,
2 levels, 32-pixel tiles, a few steps): the tests check the plumbing, not what a model learns.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tifffile
from PIL import Image
from skimage.draw import disk, polygon

from helpers import augment, files, losses, models, predict, tiles
from helpers.predict import segment_folder, segment_image
from helpers.toolkit import classes, folders, formats, instances, scoring
from helpers.toolkit.cli import main
from helpers.toolkit.scoring import check_outputs, class_map

from conftest import gradient

NAMES = ["background", "cell", "nucleus"]
TILE = 32
FAST = ["--tile", str(TILE), "--filters", "4", "--layers", "2", "--steps", "2", "--batch-size", "4",
        "--verbose", "0", "--epochs", "1"]


def shapes(n: int = 4, size: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images and 3-class masks: a triangle 'cell' (1) holding a disc 'nucleus' (2), each image its own."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        top, left = rng.integers(2, 8, 2)
        rows, cols = polygon([top, top + 30, top + 30], [left + 15, left, left + 30], (size, size))
        masks[i, rows, cols] = 1
        masks[i][disk((top + 20, left + 15), int(rng.integers(4, 7)), shape=(size, size))] = 2
    images = np.clip(masks / 2 * 0.7 + 0.15 + rng.normal(0, 0.03, masks.shape), 0, 1).astype(np.float32)
    return images[..., None], masks[..., None]


def one_hot(classes: np.ndarray, k: int = 3) -> np.ndarray:
    return np.eye(k, dtype=np.float32)[np.asarray(classes)[..., 0] if np.ndim(classes) == 4 else classes]


def random_softmax(shape, seed=0) -> np.ndarray:
    logits = np.random.default_rng(seed).normal(0, 2, shape)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def run(argv, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str, *names) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for name in names:
        assert str(name) in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------------ losses


def soft_jaccard_np(truth: np.ndarray, prob: np.ndarray, include_background: bool, smooth: float = 1.0):
    """Reference: per image, per class soft IoU of one-hot truth and probabilities, averaged over classes."""
    t = one_hot(truth, prob.shape[-1])
    first = 0 if include_background else 1
    inter = (t * prob).sum(axis=(1, 2))[:, first:]
    union = (t + prob).sum(axis=(1, 2))[:, first:] - inter
    return 1 - ((inter + smooth) / (union + smooth)).mean(axis=-1)


@pytest.mark.parametrize("include_background", [True, False])
def test_multiclass_jaccard_matches_numpy_per_image(include_background):
    _, y = shapes()
    p = random_softmax((*y.shape[:3], 3))
    got = np.asarray(classes.multiclass_jaccard_loss(y, p, include_background=include_background))
    assert got.shape == (len(y),)
    np.testing.assert_allclose(got, soft_jaccard_np(y, p, include_background), rtol=1e-5)
    np.testing.assert_allclose(classes.multiclass_jaccard_loss(one_hot(y), p, include_background), got, rtol=1e-6)
    perfect = np.asarray(classes.ce_jaccard_loss(y, one_hot(y)))
    assert np.all(perfect < 1e-5) and np.all(np.asarray(classes.multiclass_dice_loss(y, one_hot(y))) < 1e-6)


def test_one_sigmoid_channel_is_two_classes():
    x, y = shapes()
    binary = (y > 0).astype(np.float32)
    p = np.clip(x, 0.01, 0.99)
    np.testing.assert_allclose(classes.multiclass_jaccard_loss(binary, p, include_background=False),
                               losses.jaccard_loss(binary, p), rtol=1e-5)
    np.testing.assert_allclose(classes.ce_loss(binary, p),
                               np.asarray(keras.ops.binary_crossentropy(binary, p)).mean(axis=(1, 2, 3)), rtol=1e-4)


def test_ce_loss_is_sparse_categorical_crossentropy_per_image():
    _, y = shapes()
    p = random_softmax((*y.shape[:3], 3), seed=1)
    reference = np.asarray(keras.losses.sparse_categorical_crossentropy(y[..., 0], p)).mean(axis=(1, 2))
    np.testing.assert_allclose(classes.ce_loss(y, p), reference, rtol=1e-5)
    assert np.all(np.asarray(classes.ce_dice_loss(y, p)) > np.asarray(classes.ce_loss(y, p)))


def test_multiclass_gradients_are_finite_at_0_and_1():
    _, y = shapes(n=2)
    for start in (one_hot(y), np.full((*y.shape[:3], 3), 1 / 3, np.float32)):
        for fn in (classes.ce_jaccard_loss, classes.multiclass_dice_loss):
            g = gradient(lambda p: keras.ops.sum(fn(y, p)), start)
            assert np.all(np.isfinite(g))


def test_loss_by_name_covers_binary_and_k_class_names():
    assert classes.loss_by_name("bce_jaccard") is losses.bce_jaccard_loss  # one sigmoid channel
    assert classes.loss_by_name("weighted_bce").name == "weighted_bce"
    assert classes.loss_by_name("bce", 3) is classes.ce_loss
    assert classes.loss_by_name("bce_dice", 4) is classes.ce_dice_loss
    assert set(classes.MULTICLASS_LOSSES) <= set(losses.LOSS_NAMES)
    with pytest.raises(ValueError, match="name='weighted_bce' is not a loss for 3 classes; choose one of bce, "):
        classes.loss_by_name("weighted_bce", 3)


def test_multiclass_loss_by_name_saves_and_reloads(tmp_path):
    x, y = shapes(n=4, size=32)
    model = models.build_unet((None, None, 1), filters=2, num_layers=1, num_classes=3)
    loss = classes.loss_by_name("bce_jaccard", 3, include_background=False)
    assert loss.name == "ce_jaccard_loss"
    model.compile("adam", loss=loss, metrics=classes.class_metrics(NAMES))
    model.fit(x, y, epochs=1, batch_size=2, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")  # compiled: loss and metrics reload by name
    assert loaded.loss.get_config()["include_background"] is False and loaded.loss.get_config()["kind"] == "bce_jaccard"
    assert type(loaded.metrics[-1]).__name__ in {"MeanClassIoU", "CompileMetrics"}
    expected = model.evaluate(x, y, verbose=0, return_dict=True)
    again = loaded.evaluate(x, y, verbose=0, return_dict=True)
    assert again["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert again["mean_iou"] == pytest.approx(expected["mean_iou"], rel=1e-5)


# ------------------------------------------------------------------------ metrics and tables


def test_class_metrics_match_numpy_per_image_leaving_out_absent_classes():
    _, y = shapes(n=5)
    p = random_softmax((*y.shape[:3], 3), seed=2)
    p[3, ..., 2] = 0.0  # image 3: nucleus neither predicted ...
    y = y.copy()
    y[3][y[3] == 2] = 1  # ... nor true: it does not count for the nucleus
    pred = class_map(p)
    per_image = np.array([classes.class_iou_np(pred[i], y[i, ..., 0], 3) for i in range(len(y))])
    assert np.isnan(per_image[3, 2])
    for k in range(3):
        metric = classes.ClassIoU(k)
        metric.update_state(y[:2], p[:2])  # two batches: the mean over images, not over batches
        metric.update_state(y[2:], p[2:])
        assert float(metric.result()) == pytest.approx(np.nanmean(per_image[:, k]), rel=1e-5)
    mean = classes.MeanClassIoU(3)
    mean.update_state(y, p)
    assert float(mean.result()) == pytest.approx(np.mean(np.nanmean(per_image, axis=1)), rel=1e-5)
    no_background = classes.MeanClassIoU(3, include_background=False)
    no_background.update_state(y, p)
    assert float(no_background.result()) == pytest.approx(np.mean(np.nanmean(per_image[:, 1:], axis=1)), rel=1e-5)
    with pytest.raises(ValueError, match="num_classes=1"):
        classes.MeanClassIoU(1)


def test_class_metrics_names_config_and_sigmoid_input():
    assert [m.name for m in classes.class_metrics(["background", "Cell body", "nucleus"])] == [
        "iou_background", "iou_cell_body", "iou_nucleus", "mean_iou"]
    metric = classes.ClassIoU(2, name="iou_nucleus")
    clone = classes.ClassIoU.from_config(metric.get_config())
    assert (clone.class_id, clone.name) == (2, "iou_nucleus")
    mean = classes.MeanClassIoU.from_config(classes.MeanClassIoU(4, include_background=False).get_config())
    assert (mean.num_classes, mean.include_background, mean.name) == (4, False, "mean_iou")
    with pytest.raises(ValueError, match="differently"):
        classes.class_metrics(["a", "A"])
    truth = np.array([[[[1.0], [0.0], [1.0], [0.0]]]])
    metric = classes.ClassIoU(1)
    metric.update_state(truth, np.array([[[[0.9], [0.2], [0.3], [0.1]]]]))  # one sigmoid channel: p > 0.5
    assert float(metric.result()) == pytest.approx(0.5)


def test_class_table_hand_computed_and_json():
    truth = [np.array([[0, 1, 1, 2]]), np.array([[0, 0, 1, 1]])]
    pred = [np.array([[0, 1, 2, 2]]), np.eye(3)[[[0, 0, 1, 0]]]]  # class numbers, and probabilities
    table = scoring.class_table(pred, truth, NAMES, ["a", "b"])
    assert list(table.index) == ["a", "b", "mean"]
    assert table.loc["a", "iou_cell"] == 0.5 and table.loc["a", "iou_nucleus"] == 0.5
    assert np.isnan(table.loc["b", "iou_nucleus"])  # in neither mask: left out, not a perfect 1
    assert table.loc["b", "mean_iou"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert table.loc["mean", "iou_nucleus"] == 0.5 and table.loc["mean", "pixel_error"] == 0.25
    no_bg = scoring.class_table(pred, truth, NAMES, include_background=False)
    assert no_bg.loc["0", "mean_iou"] == 0.5
    scores = scoring.score_table_json(table)
    assert scores["images"][1]["iou_nucleus"] is None and scores["mean"]["iou_nucleus"] == 0.5
    with pytest.raises(ValueError, match="holds class 3"):
        scoring.class_table([np.array([[3]])], [np.array([[0]])], NAMES)
    with pytest.raises(ValueError, match="differ in shape"):
        scoring.class_table([np.zeros((2, 2))], [np.zeros((2, 3))], NAMES)


# ------------------------------------------------------------------------ class masks as files


def test_class_masks_are_palette_pngs_read_back_as_classes(tmp_path):
    _, y = shapes(n=1)
    formats.write_class_mask(tmp_path / "m.png", y[0])
    with Image.open(tmp_path / "m.png") as image:
        assert image.mode == "P"
        assert image.getpalette()[:9] == [0, 0, 0, 230, 159, 0, 86, 180, 233]  # Okabe-Ito: black, orange, sky blue
    np.testing.assert_array_equal(formats.read_labels(tmp_path / "m.png"), y[0, ..., 0])
    with pytest.raises(ValueError, match="png"):
        formats.write_class_mask(tmp_path / "m.tif", y[0])


# ------------------------------------------------------------------------ augmentation and tiling


@pytest.mark.parametrize("pipeline", ["numpy", "tf.data"])
@pytest.mark.parametrize("elastic", [False, True])
def test_augmentation_keeps_class_masks_whole_and_aligned(pipeline, elastic):
    if pipeline == "tf.data":
        pytest.importorskip("tensorflow", reason="needs TensorFlow, which Colab's TPU runtime (CI's tpu stack) lacks")
    _, y = shapes(n=8, size=48)
    x = y.astype(np.float32) / 2  # the image shows its classes: 0, 0.5, 1
    args = {**augment.DEFAULT_ARGS, "rotation_range": 30.0, **(augment.ELASTIC if elastic else {})}
    ds = augment.get_augmented(x, y, batch_size=8, data_gen_args=args, seed=1, crop_size=40, pipeline=pipeline)
    images, masks = (np.asarray(part) for part in next(iter(ds)))
    assert set(np.unique(masks)) <= {0.0, 1.0, 2.0} and set(np.unique(masks)) >= {1.0, 2.0}
    inside = np.isclose(images * 2, np.round(images * 2), atol=1e-3)  # pixels not blended across a class edge
    assert inside.mean() > 0.5
    assert np.mean(np.round(images[inside] * 2) == masks[inside]) > 0.99  # same transform for image and mask


def softmax_identity(classes: int = 3) -> keras.Model:
    """A 1x1 convolution and a softmax: each pixel's class probabilities from its grey value."""
    conv = keras.layers.Conv2D(classes, 1, activation="softmax")
    model = keras.Sequential([keras.Input((None, None, 1)), conv])
    conv.set_weights([np.linspace(-8, 8, classes, dtype=np.float32).reshape(1, 1, 1, classes),
                      np.array([4.0, 2.0, -4.0][:classes], np.float32)])
    return model


def test_predict_tiled_blends_k_channel_softmax_outputs():
    x, _ = shapes(n=1, size=70)
    model = models.build_unet((None, None, 1), filters=4, num_layers=2, num_classes=3)
    blended = tiles.predict_tiled(model, x[0, :70, :61], tile=32, overlap=8)
    assert blended.shape == (70, 61, 3)
    np.testing.assert_allclose(blended.sum(-1), 1.0, atol=1e-5)  # a weighted mean of distributions is one
    plain = tiles.predict_tiled(softmax_identity(), x[0], tile=16, overlap=4)
    whole = softmax_identity().predict(x[:1], verbose=0)[0]
    np.testing.assert_allclose(plain, whole, atol=1e-5)  # a per-pixel model: tiling changes nothing


def test_class_map_and_softmax_check():
    assert class_map(np.array([[[0.2, 0.5, 0.3]]]))[0, 0] == 1
    assert class_map(np.array([[[0.3, 0.7]]]))[0, 0] == 1  # two-class softmax: arg-max == p1 > 0.5
    assert check_outputs(softmax_identity()) == 3
    logits = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Conv2D(3, 1)])
    with pytest.raises(ValueError, match="not a softmax"):
        check_outputs(logits)
    sigmoids = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Conv2D(3, 1, activation="sigmoid")])
    with pytest.raises(ValueError, match="3 channels"):
        check_outputs(sigmoids)


def test_segment_folder_writes_class_masks(tmp_path):
    x, y = shapes(n=2, size=40)
    (tmp_path / "in").mkdir()
    for i in range(2):
        files.write_image(tmp_path / "in" / f"s{i}.png", x[i, 3:, :37])
    def write_classes(image_path, probability, output_dir):  # the toolkit's class-mask format
        path = output_dir / f"{image_path.stem}.png"
        formats.write_class_mask(path, predict.to_mask(probability))
        return [path]

    with pytest.raises(ValueError, match="write"):  # K channels need a writer: the core writes binary masks
        segment_folder(softmax_identity(), tmp_path / "in", tmp_path / "refused", tile=16, overlap=4)
    written = segment_folder(softmax_identity(), tmp_path / "in", tmp_path / "out", tile=16, overlap=4,
                             write=write_classes)
    for i, path in enumerate(written):
        classes = formats.read_labels(path)
        assert classes.shape == (37, 37)
        prob, expected = segment_image(softmax_identity(), files.read_image(tmp_path / "in" / f"s{i}.png"),
                                       tile=16, overlap=4)
        assert prob.shape == (37, 37, 3)
        np.testing.assert_array_equal(classes, expected)
        assert np.mean(classes == y[i, 3:, :37, 0]) > 0.95  # the softmax of the grey value recovers the classes


def test_plot_classes_legend_and_colours():
    x, y = shapes(n=2)
    fig = scoring.plot_classes(x, y, one_hot(y), NAMES, titles=["first", "second"])
    assert [ax.get_title() for ax in fig.axes[:3]] == ["first", "ground truth", "prediction"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == NAMES
    shown = fig.axes[1].images[0].get_array()
    np.testing.assert_allclose(shown[y[0, ..., 0] == 1][0], np.array([230, 159, 0]) / 255)
    with pytest.raises(ValueError, match="num_classes"):
        scoring.colour_classes(np.array([[3]]), 3)
    with pytest.raises(ValueError, match="at least two"):
        scoring.plot_classes(x, y, class_names=["only"])


# ------------------------------------------------------------------------ folders of class masks


def write_folder(root, masks: dict, images: dict | None = None):
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for name, mask in masks.items():
        image = images[name] if images else (np.asarray(mask, np.float32) / max(1, np.max(mask)))
        files.write_image(root / "images" / f"{name}.png", np.asarray(image, np.float32))
        Image.fromarray(np.asarray(mask).astype(np.uint8 if np.max(mask) < 256 else np.uint16)).save(
            root / "masks" / f"{name}.png")
    return root / "images", root / "masks"


def test_load_folder_infers_or_names_the_classes(tmp_path):
    _, y = shapes(n=3)
    images, masks = write_folder(tmp_path / "a", {f"m{i}": y[i, ..., 0] for i in range(3)})
    found = folders.load_folder(images, masks, classes="auto")
    assert found.class_names == ["class 0", "class 1", "class 2"] and found.num_classes == 3
    np.testing.assert_array_equal(found.masks[1], y[1])
    assert folders.load_folder(images, masks, classes=NAMES).class_names == NAMES
    four = folders.load_folder(images, masks, classes=NAMES + ["mitochondrion"])  # named: a class may be absent
    assert four.num_classes == 4
    with pytest.raises(ValueError, match=r"m0\.png has values \{0, 1, 2\}"):  # binary by default, as before
        folders.load_folder(images, masks)
    images, masks = write_folder(tmp_path / "b", {"a": (y[0, ..., 0] > 0) * 255, "b": y[1, ..., 0] > 0})
    assert folders.load_folder(images, masks, classes="auto").class_names == ["background", "foreground"]


@pytest.mark.parametrize("case, expected", [
    ("photo", ["looks like a photo or an instance-label image", "--instances-to-classes", "m0.png"]),
    ("instances", ["look like instance labels", "--instances-to-classes", "--classes"]),
    ("grey_levels", ["not class numbers", "m0.png"]),
    ("mixed", ["Multi-class", "m0.png", "m1.png"]),
    ("binary_among_classes", ["ambiguous", "--classes NAME0,NAME1,NAME2", "m1.png"]),
    ("gap", ["no mask holds class 2", "--classes"]),
    ("beyond_names", ["value 2", "names 2 classes"]),
    ("invert", ["--invert-masks"]),
])
def test_ambiguous_masks_are_refused_naming_the_file_and_the_fix(tmp_path, case, expected):
    _, y = shapes(n=2)
    _, labels = folders.synthetic_nuclei(2, size=40, seed=0)
    photo = (np.random.default_rng(0).random((40, 40)) * 255).astype(np.uint8)
    masks = {"photo": {"m0": photo, "m1": y[1, ..., 0]},
             "instances": {"m0": labels[0], "m1": labels[1]},
             "grey_levels": {"m0": y[0, ..., 0] * 127, "m1": y[1, ..., 0] * 127},
             "mixed": {"m0": y[0, ..., 0], "m1": (y[1, ..., 0] > 0) * 255},
             "binary_among_classes": {"m0": y[0, ..., 0], "m1": y[1, ..., 0] > 0},
             "gap": {f"m{i}": np.where(y[i, ..., 0] == 2, 3, y[i, ..., 0]) for i in range(2)},
             "beyond_names": {"m0": y[0, ..., 0], "m1": y[1, ..., 0]},
             "invert": {"m0": y[0, ..., 0], "m1": y[1, ..., 0]}}[case]
    images, folder = write_folder(tmp_path, masks, images={"m0": y[0, ..., 0] / 2, "m1": y[1, ..., 0] / 2})
    classes = ["background", "cell"] if case == "beyond_names" else "auto"
    with pytest.raises(ValueError) as error:
        folders.load_folder(images, folder, classes=classes, invert_masks=case == "invert")
    message = str(error.value)
    assert "\n" not in message
    for text in expected:
        assert text in message, message


def test_instances_to_classes_reads_label_images(tmp_path):
    x, labels = folders.synthetic_nuclei(2, size=40, seed=0)
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for i in range(2):
        files.write_image(tmp_path / "images" / f"n{i}.png", x[i])
        formats.write_labels(tmp_path / "labels" / f"n{i}.tif", labels[i])
    found = folders.load_folder(tmp_path / "images", tmp_path / "labels", instances_to_classes=True)
    assert found.class_names == list(instances.THREE_CLASSES)
    np.testing.assert_array_equal(found.masks[1][..., 0], instances.to_three_classes(labels[1]))
    with pytest.raises(ValueError, match="--classes"):
        folders.load_folder(tmp_path / "images", tmp_path / "labels", classes=NAMES, instances_to_classes=True)


# ------------------------------------------------------------------------ command line, end to end


@pytest.fixture(scope="module")
def nuclei(tmp_path_factory):
    """Six synthetic nuclei images with instance labels (16-bit TIFF) and 3-class palette PNG masks."""
    root = tmp_path_factory.mktemp("nuclei")
    x, labels = folders.synthetic_nuclei(6, size=48, seed=0)
    for folder in ("images", "labels", "classes"):
        (root / folder).mkdir()
    for i in range(6):
        files.write_image(root / "images" / f"n{i}.png", x[i])
        formats.write_labels(root / "labels" / f"n{i}.tif", labels[i])
        formats.write_class_mask(root / "classes" / f"n{i}.png", instances.to_three_classes(labels[i]))
    return root


def test_cli_three_classes_train_predict_evaluate(nuclei, tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run(["train", "--images", nuclei / "images", "--masks", nuclei / "classes", "--out", out,
                             "--classes", "bg,inside,edge", *FAST], capsys)
    assert code == 0, err
    assert "3 classes" in stdout and "per class: bg" in stdout
    config = json.loads((out / "config.json").read_text())
    assert config["classes"] == ["bg", "inside", "edge"] and config["num_classes"] == 3
    assert config["output"] == "softmax" and config["threshold"] is None
    assert models.load_model(out / "model.keras").output_shape[-1] == 3
    scores = json.loads((out / "metrics.json").read_text())
    assert scores["decision"] == "argmax" and {"iou_inside", "dice_edge", "mean_iou"} <= set(scores["mean"])

    pred = tmp_path / "pred"
    code, stdout, err = run(["predict", "--model", out / "model.keras", "--input", nuclei / "images", "--output",
                             pred, "--probabilities"], capsys)
    assert code == 0, err
    assert "most probable of 3 classes: bg, inside, edge" in stdout
    with Image.open(pred / "n0.png") as image:
        assert image.mode == "P" and image.size == (48, 48)
    predicted = formats.read_labels(pred / "n0.png")
    prob = tifffile.imread(pred / "n0_prob.tif")
    assert prob.shape == (3, 48, 48) and prob.dtype == np.float32
    np.testing.assert_allclose(prob.sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(predicted, np.argmax(prob, axis=0))

    report = tmp_path / "scores.json"
    code, stdout, err = run(["evaluate", "--pred", pred, "--truth", nuclei / "classes", "--classes",
                             "bg,inside,edge", "--json", report], capsys)
    assert code == 0, err
    written = json.loads(report.read_text())
    assert written["classes"] == ["bg", "inside", "edge"] and len(written["images"]) == 6
    truth = formats.read_labels(nuclei / "classes" / "n0.png")
    expected = classes.class_iou_np(predicted, truth, 3)
    row = written["images"][0]
    for name, value in zip(["bg", "inside", "edge"], expected):
        assert (row[f"iou_{name}"] is None) if np.isnan(value) else row[f"iou_{name}"] == pytest.approx(value)

    code, _, err = run(["predict", "--model", out / "model.keras", "--input", nuclei / "images", "--output",
                        tmp_path / "x", "--threshold", "0.3"], capsys)
    assert code == 1 and "--threshold" in one_error_line(err, out / "model.keras")
    code, _, err = run(["predict", "--model", out / "model.keras", "--input", nuclei / "images", "--output",
                        tmp_path / "x", "--instances"], capsys)  # named classes: not the three-class scheme
    assert code == 1 and "--instances objects" in one_error_line(err, out / "model.keras")
    assert not (tmp_path / "x").exists()


def test_cli_instances_train_predict_evaluate(nuclei, tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run(["train", "--images", nuclei / "images", "--masks", nuclei / "labels", "--out", out, *FAST],
                       capsys)
    assert code == 1  # instance labels given as masks: refused, with the option that converts them
    assert "--instances-to-classes" in one_error_line(err, nuclei / "labels")
    assert not out.exists()
    code, stdout, err = run(["train", "--images", nuclei / "images", "--masks", nuclei / "labels", "--out", out,
                             "--instances-to-classes", *FAST], capsys)
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())
    assert config["classes"] == ["background", "interior", "boundary"] and config["instances_to_classes"]

    pred = tmp_path / "pred"
    code, stdout, err = run(["predict", "--model", out / "model.keras", "--input", nuclei / "images", "--output",
                             pred, "--instances", "--min-size", "5"], capsys)
    assert code == 0, err
    assert "three classes" in stdout
    labels = tifffile.imread(pred / "n0_instances.tif")
    assert labels.dtype == np.uint16 and labels.shape == (48, 48)
    assert labels.max() == instances.count(labels)  # numbered 1..n

    report = tmp_path / "scores.json"
    code, stdout, err = run(["evaluate", "--pred", pred, "--truth", nuclei / "labels", "--instances", "--json",
                             report], capsys)
    assert code == 0, err
    assert "instances matched at IoU >= 0.5" in stdout
    written = json.loads(report.read_text())
    assert written["instances"] is True and written["iou_threshold"] == 0.5
    first = written["images"][0]
    expected = instances.match(labels, formats.read_labels(nuclei / "labels" / "n0.tif"))
    for key in ("n_true", "n_pred", "tp", "precision", "recall", "f1"):
        assert first[key] == pytest.approx(expected[key])

    code, _, err = run(["evaluate", "--pred", pred, "--truth", nuclei / "labels"], capsys)
    assert code == 1 and "--instances" in one_error_line(err, nuclei / "labels")
    code, _, err = run(["evaluate", "--pred", nuclei / "classes", "--truth", nuclei / "labels", "--instances"], capsys)
    assert code == 1 and "predict with --instances" in one_error_line(err, nuclei / "classes")
    code, _, err = run(["predict", "--model", out / "model.keras", "--input", nuclei / "images", "--output",
                        tmp_path / "x", "--instances", "boundaries"], capsys)
    assert code == 1 and "binary model" in one_error_line(err)


def test_cli_binary_model_writes_objects_and_boundaries(nuclei, tmp_path, capsys):
    (tmp_path / "binary").mkdir()
    for path in (nuclei / "labels").iterdir():
        mask = (formats.read_labels(path) > 0).astype(np.uint8) * 255
        Image.fromarray(mask).save(tmp_path / "binary" / f"{path.stem}.png")
    out = tmp_path / "run"
    code, _, err = run(["train", "--images", nuclei / "images", "--masks", tmp_path / "binary", "--out", out, *FAST],
                       capsys)
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())
    assert config["classes"] == ["background", "foreground"] and config["output"] == "sigmoid"
    for mode in ("objects", "boundaries"):
        code, stdout, err = run(["predict", "--model", out / "model.keras", "--input", nuclei / "images",
                                 "--output", tmp_path / mode, "--instances", mode], capsys)
        assert code == 0, err
        assert mode in stdout
        mask = np.array(Image.open(tmp_path / mode / "n1.png"))
        assert set(np.unique(mask)) <= {0, 255}  # binary masks stay as before
        labels = formats.read_labels(tmp_path / mode / "n1_instances.tif")
        assert labels.shape == mask.shape and labels.max() == instances.count(labels)
