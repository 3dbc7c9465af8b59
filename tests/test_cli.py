"""End-to-end tests of ``python -m helpers`` (train, predict, evaluate, resume) and its errors.

The data is made here: blob images of odd sizes (one smaller than a tile, one 16-bit TIFF, one
RGB), masks stored as {0, 255} and as {0, 1}. ``main([...])`` runs in-process for speed.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from PIL import Image
from skimage.data import binary_blobs

from helpers.files import natural_key, read_mask
from helpers.toolkit import cli, workflow
from helpers.toolkit.cli import main

TILE = 32
SIZES = {"a": (48, 40), "b": (40, 56), "c": (50, 37), "small": (24, 20), "d": (64, 48), "rgb": (45, 45)}
FAST = ["--tile", str(TILE), "--filters", "4", "--layers", "2", "--steps", "2", "--batch-size", "4",
        "--verbose", "0"]


def blobs(name: str, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A noisy image (float in [0, 1]) and its {0, 1} blob mask."""
    seed = sum(map(ord, name))
    mask = binary_blobs(length=max(height, width), blob_size_fraction=0.2, volume_fraction=0.4, rng=seed)
    mask = mask[:height, :width]
    noise = np.random.default_rng(seed).normal(0, 0.08, (height, width))
    return np.clip(0.25 + 0.5 * mask + noise, 0, 1), mask.astype(np.uint8)


def make_data(root, names=SIZES):
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    for name, (height, width) in names.items():
        image, mask = blobs(name, height, width)
        if name == "c":  # 16-bit TIFF
            tifffile.imwrite(images / "c.tif", (image * 65535).astype(np.uint16))
        elif name == "rgb":
            rgb = np.stack([image, image * 0.8, image * 0.6], axis=-1)
            Image.fromarray((rgb * 255).astype(np.uint8)).save(images / "rgb.png")
        else:
            Image.fromarray((image * 255).astype(np.uint8)).save(images / f"{name}.png")
        stored = mask if name == "b" else mask * 255  # {0, 1} and {0, 255} masks
        Image.fromarray(stored).save(masks / f"{name}.png")
    return images, masks


def run(argv, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(err: str, *names) -> str:
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert "Traceback" not in err
    for name in names:
        assert str(name) in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def own_data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("own"))


@pytest.fixture(scope="module")
def trained(own_data, tmp_path_factory):
    """One short training run on the mixed gray/RGB folder, converting RGB to gray."""
    images, masks = own_data
    out = tmp_path_factory.mktemp("runs") / "run"
    code = main(["train", "--images", str(images), "--masks", str(masks), "--out", str(out),
                 "--epochs", "1", "--channels", "1", *FAST])
    assert code == 0
    return out


def history_rows(run_dir) -> int:
    with open(run_dir / "history.csv", newline="") as f:
        return len(list(csv.DictReader(f)))


# ------------------------------------------------------------------------ end to end


def test_help_runs_as_module():
    result = subprocess.run([sys.executable, "-m", "helpers", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0
    for word in ("train", "predict", "evaluate", "run-notebooks", "examples:"):
        assert word in result.stdout


def test_train_writes_run_folder(trained):
    for name in ("model.keras", "history.csv", "config.json", "metrics.json", "last.keras"):
        assert (trained / name).is_file(), name
    assert not [p.name for p in trained.iterdir() if ".tmp" in p.name]  # no temporary files left
    config = json.loads((trained / "config.json").read_text())
    assert config["channels"] == 1 and config["channel_conversion"] == "rgb_to_gray"
    assert config["tile"] == TILE and config["num_layers"] == 2 and 0 < config["threshold"] < 1
    assert "value 1 (or 255) = foreground" in config["class_meaning"]
    # the default recipe (benchmarks/RESULTS-recipe.md): border-weighted BCE + Jaccard, Adam 1e-3
    assert config["loss"] == "weighted_bce_jaccard" and config["learning_rate"] == 1e-3
    assert config["border_objects"] in ("background", "foreground")
    assert sorted(config["train_images"] + config["validation_images"]) == sorted(SIZES)
    assert len(config["validation_images"]) == round(len(SIZES) * 0.2)  # split by image, not tile
    assert not set(config["train_images"]) & set(config["validation_images"])
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["threshold"] == config["threshold"]
    assert set(config["isbi_thresholds"]) == {"v_rand", "v_info"}  # chosen on validation, like the threshold
    assert all(0 < t < 1 for t in config["isbi_thresholds"].values())
    assert metrics["isbi_thresholds"] == config["isbi_thresholds"] and "validation" in config["isbi_thresholds_meaning"]
    assert [row["image"] for row in metrics["images"]] == config["validation_images"]
    for key in ("iou", "dice", "pixel_error"):
        assert 0 <= metrics["mean"][key] <= 1
        assert metrics["mean"][key] == pytest.approx(np.mean([row[key] for row in metrics["images"]]))
    assert history_rows(trained) == 1


def test_predict_folder(trained, own_data, tmp_path, capsys):
    images, _ = own_data
    out = tmp_path / "pred"
    code, _, err = run(["predict", "--model", trained / "model.keras", "--input", images, "--output", out,
                        "--probabilities"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out.glob("*.png")) == sorted(f"{name}.png" for name in SIZES)
    threshold = json.loads((trained / "config.json").read_text())["threshold"]
    for name, shape in SIZES.items():
        mask = np.array(Image.open(out / f"{name}.png"))
        assert mask.shape == shape and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 255}
        prob = tifffile.imread(out / f"{name}_prob.tif")
        assert prob.shape == shape and prob.dtype == np.float32 and 0 <= prob.min() <= prob.max() <= 1
        np.testing.assert_array_equal(mask == 255, prob > threshold)  # the recorded threshold is used


def test_predict_single_file_with_threshold(trained, own_data, tmp_path, capsys):
    images, _ = own_data
    code, _, err = run(["predict", "--model", trained / "model.keras", "--input", images / "small.png",
                        "--output", tmp_path / "one", "--threshold", "0", "--overlap", "0"], capsys)
    assert code == 0, err
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["small.png"]
    assert (np.array(Image.open(tmp_path / "one" / "small.png")) == 255).all()  # every probability > 0


def test_evaluate_matches_numpy(own_data, tmp_path, capsys):
    _, masks = own_data
    pred = tmp_path / "pred"
    pred.mkdir()
    for name in SIZES:  # predictions: the truth with one column flipped
        truth = read_mask(masks / f"{name}.png")
        truth[:, 0] = 1 - truth[:, 0]
        Image.fromarray(truth * 255).save(pred / f"{name}.png")
    report = tmp_path / "scores.json"
    code, out, err = run(["evaluate", "--pred", pred, "--truth", masks, "--json", report], capsys)
    assert code == 0, err
    scores = json.loads(report.read_text())
    assert [row["image"] for row in scores["images"]] == sorted(SIZES, key=natural_key)
    for row in scores["images"]:
        p = read_mask(pred / f"{row['image']}.png").astype(bool)
        t = read_mask(masks / f"{row['image']}.png").astype(bool)
        assert row["iou"] == pytest.approx((p & t).sum() / (p | t).sum())
        assert row["dice"] == pytest.approx(2 * (p & t).sum() / (p.sum() + t.sum()))
        assert row["pixel_error"] == pytest.approx(1 / SIZES[row["image"]][1])
    assert scores["mean"]["iou"] == pytest.approx(np.mean([row["iou"] for row in scores["images"]]))
    assert "mean" in out and "v_rand" not in scores["mean"]


def test_evaluate_isbi_adds_vrand_vinfo(tmp_path, capsys):
    label = np.full((32, 32), 255, np.uint8)
    label[16, :] = 0  # ISBI style: 0 = membrane between two cells
    (tmp_path / "truth").mkdir()
    (tmp_path / "pred").mkdir()
    Image.fromarray(label).save(tmp_path / "truth" / "0.png")
    Image.fromarray(255 - label).save(tmp_path / "pred" / "0.png")  # prediction: 255 = membrane
    code, out, err = run(["evaluate", "--pred", tmp_path / "pred", "--truth", tmp_path / "truth", "--isbi",
                          "--json", tmp_path / "s.json"], capsys)
    assert code == 0, err
    scores = json.loads((tmp_path / "s.json").read_text())
    mean = scores["mean"]
    assert mean["iou"] == 1.0 and mean["v_rand"] == 1.0 and mean["v_info"] == 1.0
    assert scores["isbi_thresholds_chosen"] == workflow.CHALLENGE_WAY  # no thresholds given: labelled so
    assert "the challenge's way, optimistic" in out


def isbi_folders(root):
    """Two ISBI-style slices whose probabilities are perfect at 0.4 (slice 0) and at 0.7 (slice 1) only."""
    label = np.full((32, 32), 255, np.uint8)
    label[[10, 21], :] = label[:, 15] = 0  # 0 = membrane: six cells
    for folder in ("truth", "pred"):
        (root / folder).mkdir()
    for name, (cell, membrane) in {"0": (0.35, 0.45), "1": (0.65, 0.75)}.items():
        Image.fromarray(label).save(root / "truth" / f"{name}.png")
        Image.fromarray(255 - label).save(root / "pred" / f"{name}.png")
        prob = np.where(label == 0, membrane, cell).astype(np.float32)
        tifffile.imwrite(root / "pred" / f"{name}_prob.tif", prob)
    return root / "pred", root / "truth"


def test_evaluate_isbi_scores_at_the_runs_thresholds(tmp_path, capsys):
    pred, truth = isbi_folders(tmp_path)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"threshold": 0.5, "isbi_thresholds": {"v_rand": 0.4, "v_info": 0.4}}))
    results = {}
    for key, extra in {"config": ["--config", config], "given": ["--isbi-thresholds", "0.7,0.7"],
                       "challenge": []}.items():
        code, out, err = run(["evaluate", "--pred", pred, "--truth", truth, "--isbi", "--json",
                              tmp_path / f"{key}.json", *extra], capsys)
        assert code == 0, err
        results[key] = (json.loads((tmp_path / f"{key}.json").read_text()), out)
    scores, out = results["config"]
    assert scores["isbi_thresholds"] == {"v_rand": 0.4, "v_info": 0.4}
    assert f"chosen on the validation images of {config}" in out and "challenge" not in out
    rows = {row["image"]: row for row in scores["images"]}
    assert rows["0"]["v_rand"] == pytest.approx(1.0) and rows["1"]["v_rand"] < 0.1  # no per-slice best
    assert results["given"][0]["isbi_thresholds"] == {"v_rand": 0.7, "v_info": 0.7}
    assert [row["v_rand"] for row in results["given"][0]["images"]][1] == pytest.approx(1.0)
    challenge, out = results["challenge"]
    assert challenge["isbi_thresholds_chosen"] == workflow.CHALLENGE_WAY and "challenge's way" in out
    assert scores["mean"]["v_rand"] <= challenge["mean"]["v_rand"] < 0.9  # one threshold, not each slice's best


def test_evaluate_isbi_round_trip_with_a_trained_run(trained, own_data, tmp_path, capsys):
    images, masks = own_data
    out = tmp_path / "pred"
    code, _, err = run(["predict", "--model", trained / "model.keras", "--input", images, "--output", out,
                        "--probabilities"], capsys)
    assert code == 0, err
    truth = tmp_path / "truth"  # the run's foreground as ISBI labels: 0 = "membrane"
    truth.mkdir()
    for path in masks.iterdir():
        Image.fromarray(np.where(read_mask(path) > 0, 0, 255).astype(np.uint8)).save(truth / path.name)
    code, text, err = run(["evaluate", "--pred", out, "--truth", truth, "--isbi", "--config",
                           trained / "config.json", "--json", tmp_path / "s.json"], capsys)
    assert code == 0, err
    scores = json.loads((tmp_path / "s.json").read_text())
    recorded = json.loads((trained / "config.json").read_text())["isbi_thresholds"]
    assert scores["isbi_thresholds"] == recorded and "validation images" in text
    assert 0 <= scores["mean"]["v_rand"] <= 1 and 0 <= scores["mean"]["v_info"] <= 1


def test_evaluate_isbi_threshold_errors_name_flags(tmp_path, capsys):
    pred, truth = isbi_folders(tmp_path)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"threshold": 0.5}))  # a run from before isbi_thresholds were recorded
    base = ["evaluate", "--pred", pred, "--truth", truth]
    code, _, err = run([*base, "--isbi", "--config", config], capsys)
    assert code == 1 and "records no isbi_thresholds" in err and f"--config {config}" in err
    code, _, err = run([*base, "--isbi-thresholds", "0.5"], capsys)
    assert code == 1 and "add --isbi" in err
    code, _, err = run([*base, "--isbi", "--isbi-thresholds", "a,b,c"], capsys)
    assert code == 1 and "--isbi-thresholds a,b,c must be one number or two" in err
    code, _, err = run([*base, "--isbi", "--isbi-thresholds", "0.7,1.5"], capsys)
    assert code == 1 and "--isbi-thresholds 0.7,1.5 must lie in [0, 1]" in err
    code, _, err = run([*base, "--isbi", "--isbi-thresholds", "0.5", "--config", config], capsys)
    assert code == 1 and "not both" in err


def test_resume_adds_epochs(trained, own_data, tmp_path, capsys):
    images, masks = own_data
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    code, _, err = run(["train", "--images", images, "--masks", masks, "--out", run_dir, "--epochs", "2",
                        "--channels", "1", "--resume", *FAST], capsys)
    assert code == 0, err
    assert history_rows(run_dir) == 2
    assert json.loads((run_dir / "config.json").read_text())["epochs"] == 2


# ------------------------------------------------------------------------ bad input


def train_args(images, masks, out, *extra):
    return ["train", "--images", images, "--masks", masks, "--out", out, "--epochs", "1", *FAST, *extra]


def test_library_errors_name_flags(own_data, tmp_path, capsys):
    images, masks = own_data
    code, _, err = run(["train", "--images", images, "--masks", masks, "--out", tmp_path / "out", "--tile", "30",
                        "--layers", "2"], capsys)
    assert code == 1
    line = assert_one_line_error(err, "--tile 30 must be divisible by 2**layers = 4", "use e.g. --tile 28")
    assert "tile=" not in line and not (tmp_path / "out").exists()
    assert cli._in_flags("out='a b/c.zip' exists; pass force=True", {"out": ("--out", False),
                                                                   "force": ("--force", True)}) == \
        "--out a b/c.zip exists; pass --force"


def test_usage_error_exits_2(capsys):
    code, _, err = run(["train", "--images", "x"], capsys)
    assert code == 2 and "required" in err


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    code, _, err = run(train_args(tmp_path / "images", tmp_path / "masks", tmp_path / "out"), capsys)
    assert code == 1
    assert_one_line_error(err, tmp_path / "images")
    assert not (tmp_path / "out").exists()


def test_unpaired_files_are_listed(tmp_path, capsys):
    images, masks = make_data(tmp_path, {"a": (40, 40), "b": (40, 40), "c": (40, 40)})
    (masks / "b.png").rename(masks / "b_mask.png")
    code, _, err = run(train_args(images, masks, tmp_path / "out"), capsys)
    assert code == 1
    assert_one_line_error(err, "b_mask", "b,")
    assert not (tmp_path / "out").exists()


def test_corrupt_image_is_named(tmp_path, capsys):
    images, masks = make_data(tmp_path, {"a": (40, 40), "b": (40, 40)})
    (images / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    code, _, err = run(train_args(images, masks, tmp_path / "out"), capsys)
    assert code == 1
    assert_one_line_error(err, images / "b.png")
    assert not (tmp_path / "out").exists()


def test_shape_mismatch_names_both(tmp_path, capsys):
    images, masks = make_data(tmp_path, {"a": (40, 40), "b": (40, 40)})
    Image.fromarray(np.zeros((30, 40), np.uint8)).save(masks / "b.png")
    code, _, err = run(train_args(images, masks, tmp_path / "out"), capsys)
    assert code == 1
    assert_one_line_error(err, images / "b.png", masks / "b.png")
    assert not (tmp_path / "out").exists()


def test_multiclass_mask_refused(tmp_path, capsys):
    images, masks = make_data(tmp_path, {"a": (40, 40), "b": (40, 40)})
    Image.fromarray(np.arange(40 * 40, dtype=np.uint8).reshape(40, 40) % 3).save(masks / "a.png")
    code, _, err = run(train_args(images, masks, tmp_path / "out"), capsys)
    assert code == 1
    assert "Multi-class" in assert_one_line_error(err, masks / "a.png")
    assert not (tmp_path / "out").exists()


def test_mixed_gray_rgb_needs_channels(own_data, tmp_path, capsys):
    images, masks = own_data
    code, _, err = run(train_args(images, masks, tmp_path / "out"), capsys)  # --channels auto
    assert code == 1
    assert "channels" in assert_one_line_error(err, images)
    assert not (tmp_path / "out").exists()


def test_resume_without_checkpoint(own_data, tmp_path, capsys):
    images, masks = own_data
    code, _, err = run(train_args(images, masks, tmp_path / "out", "--resume"), capsys)
    assert code == 1
    assert_one_line_error(err, tmp_path / "out" / "last.keras")


def test_unwritable_output_checked_first(own_data, tmp_path, capsys, monkeypatch):
    images, masks = own_data
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    real_access = cli.os.access
    monkeypatch.setattr(cli.os, "access", lambda path, mode: False if str(path) == str(blocked)
                        else real_access(path, mode))
    code, _, err = run(train_args(images, masks, blocked / "run"), capsys)
    assert code == 1
    assert_one_line_error(err, blocked)
    code, _, err = run(["predict", "--model", tmp_path / "missing.keras", "--input", images, "--output",
                        blocked / "masks"], capsys)
    assert code == 1  # the output is checked before the (missing) model
    assert_one_line_error(err, blocked)
    assert list(blocked.iterdir()) == []


def test_output_below_a_file(own_data, tmp_path, capsys):
    images, _ = own_data
    (tmp_path / "file").write_text("")
    code, _, err = run(["predict", "--model", tmp_path / "m.keras", "--input", images, "--output",
                        tmp_path / "file" / "masks"], capsys)
    assert code == 1
    assert_one_line_error(err, tmp_path / "file")


def test_missing_model(own_data, tmp_path, capsys):
    images, _ = own_data
    code, _, err = run(["predict", "--model", tmp_path / "nope.keras", "--input", images,
                        "--output", tmp_path / "out"], capsys)
    assert code == 1
    assert_one_line_error(err, tmp_path / "nope.keras")
    assert not (tmp_path / "out").exists()


def test_corrupt_model(trained, own_data, tmp_path, capsys):
    images, _ = own_data
    broken = tmp_path / "model.keras"
    broken.write_bytes((trained / "model.keras").read_bytes()[:2000])  # truncated copy
    code, _, err = run(["predict", "--model", broken, "--input", images, "--output", tmp_path / "out"], capsys)
    assert code == 1
    assert_one_line_error(err, broken)
    assert not (tmp_path / "out").exists()


def test_corrupt_input_image_writes_nothing(trained, own_data, tmp_path, capsys):
    images, _ = own_data
    folder = tmp_path / "inputs"
    shutil.copytree(images, folder)
    (folder / "zz.png").write_bytes(b"garbage")  # last in order: found before any mask is written
    code, _, err = run(["predict", "--model", trained / "model.keras", "--input", folder,
                        "--output", tmp_path / "out"], capsys)
    assert code == 1
    assert_one_line_error(err, folder / "zz.png")
    assert not (tmp_path / "out").exists()


def test_gray_model_on_rgb_without_conversion(trained, own_data, tmp_path, capsys):
    images, _ = own_data
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(trained / "model.keras", bare)  # no config.json: the model's 1 channel, no conversion
    code, _, err = run(["predict", "--model", bare / "model.keras", "--input", images, "--output",
                        tmp_path / "out"], capsys)
    assert code == 1
    assert "--channels 1" in assert_one_line_error(err, images / "rgb.png")
    assert not (tmp_path / "out").exists()


def test_rgb_model_on_gray(own_data, tmp_path, capsys):
    from helpers.models import build_unet

    images, _ = own_data
    build_unet((None, None, 3), filters=2, num_layers=1).save(tmp_path / "rgb.keras")
    code, _, err = run(["predict", "--model", tmp_path / "rgb.keras", "--input", images / "a.png",
                        "--output", tmp_path / "out"], capsys)
    assert code == 1
    assert "--channels 3" in assert_one_line_error(err, images / "a.png")
    assert not (tmp_path / "out").exists()


def test_output_folder_must_differ_from_input(trained, own_data, capsys):
    images, _ = own_data
    code, _, err = run(["predict", "--model", trained / "model.keras", "--input", images, "--output", images],
                       capsys)
    assert code == 1
    assert_one_line_error(err, images)


@pytest.mark.parametrize("case", ["unpaired", "shape", "empty", "values"])
def test_evaluate_bad_input(case, tmp_path, capsys):
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    pred.mkdir()
    truth.mkdir()
    if case != "empty":
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(pred / "a.png")
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(truth / "a.png")
    if case == "unpaired":
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(pred / "extra.png")
        expected = ["extra"]
    elif case == "shape":
        Image.fromarray(np.zeros((8, 9), np.uint8)).save(truth / "a.png")
        expected = [pred / "a.png", truth / "a.png"]
    elif case == "values":
        Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(truth / "a.png")
        expected = [truth / "a.png"]
    else:
        expected = [pred]
    code, _, err = run(["evaluate", "--pred", pred, "--truth", truth, "--json", tmp_path / "s.json"], capsys)
    assert code == 1
    assert_one_line_error(err, *expected)
    assert not (tmp_path / "s.json").exists()
