"""``python -m helpers`` on volumes (issue 23): train on a pair of stacks, predict a stack, evaluate slice by slice.

The stacks are made here (a few 64 x 64 slices of blobs, written with tifffile); ``main([...])`` runs in-process.
Every bad input stops with one ``error:`` line naming the path and the fix, and an unfinished output is never
taken as finished: evaluate refuses it and the same predict command resumes it.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import tifffile
from skimage.data import binary_blobs

pytest.importorskip("dask.array", reason="volumes need dask")
pytest.importorskip("zarr", reason="volumes need zarr")

import zarr  # noqa: E402

from helpers.toolkit import stacks  # noqa: E402
from helpers.toolkit.cli import main  # noqa: E402

SLICES, SIZE, TILE = 6, 64, 32
FAST = ["--tile", str(TILE), "--filters", "4", "--layers", "2", "--steps", "2", "--batch-size", "4", "--verbose", "0"]
NAMES = [f"z{z:04d}" for z in range(SLICES)]


def blob_stack(slices: int = SLICES, size: int = SIZE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images ``(z, y, x)`` of noisy blobs and their {0, 255} masks."""
    masks = np.stack([binary_blobs(length=size, blob_size_fraction=0.2, volume_fraction=0.4, rng=seed + z)
                      for z in range(slices)]).astype(np.uint8)
    noise = np.random.default_rng(seed).normal(0, 0.08, masks.shape)
    images = np.clip(0.25 + 0.5 * masks + noise, 0, 1)
    return (images * 255).astype(np.uint8), masks * 255


def write_stack(path, array: np.ndarray):
    tifffile.imwrite(path, array, photometric="minisblack")
    return path


def run(argv, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error(err: str, *expected) -> str:
    """The single ``error:`` line of ``err``, checked to name each of ``expected``."""
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert "Traceback" not in err
    for text in expected:
        assert str(text) in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("stacks")
    images, masks = blob_stack()
    return write_stack(root / "images.tif", images), write_stack(root / "masks.tif", masks)


@pytest.fixture(scope="module")
def run_dir(data, tmp_path_factory):
    """A short training run on the pair of stacks, through the command line."""
    images, masks = data
    out = tmp_path_factory.mktemp("runs") / "stack_run"
    assert main(["train", "--images", str(images), "--masks", str(masks), "--out", str(out), "--epochs", "2",
                 *FAST]) == 0
    return out


@pytest.fixture(scope="module")
def predicted(run_dir, data, tmp_path_factory):
    """``predict`` of the image stack into OME-Zarr, with probabilities."""
    out = tmp_path_factory.mktemp("pred") / "images.zarr"
    assert main(["predict", "--model", str(run_dir / "model.keras"), "--input", str(data[0]), "--output", str(out),
                 "--probabilities"]) == 0
    return out


def model_args(run_dir, source, output, *extra) -> list:
    return ["predict", "--model", run_dir / "model.keras", "--input", source, "--output", output, *extra]


# ------------------------------------------------------------------------ the round trip


def test_train_on_a_pair_of_stacks(run_dir):
    config = json.loads((run_dir / "config.json").read_text())
    assert config["epochs"] == 2 and len((run_dir / "history.csv").read_text().splitlines()) == 3
    assert sorted(config["train_images"] + config["validation_images"]) == NAMES  # slice i with slice i
    assert len(config["validation_images"]) == round(SLICES * 0.2)  # split by slice
    assert config["channels"] == 1 and config["tile"] == TILE
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert [row["image"] for row in metrics["images"]] == config["validation_images"]


def test_predict_stack_to_zarr_and_tif(run_dir, data, predicted, tmp_path, capsys):
    root = zarr.open_group(str(predicted), mode="r")
    assert dict(root.attrs)["unet_workshop"]["complete"] is True
    mask, prob = root["mask/0"][...], root["probabilities/0"][...]
    assert mask.shape == prob.shape == (SLICES, SIZE, SIZE)
    assert set(np.unique(mask).tolist()) <= {0, 255} and 0 <= prob.min() <= prob.max() <= 1
    threshold = json.loads((run_dir / "config.json").read_text())["threshold"]
    assert np.array_equal(mask == 255, prob > threshold)
    assert root["mask"].attrs["multiscales"][0]["axes"][0]["name"] == "z"  # OME-Zarr, axes z, y, x

    code, out, err = run(model_args(run_dir, data[0], tmp_path / "pred.tif", "--probabilities"), capsys)
    assert code == 0, err
    assert f"{SLICES} slice(s) of {SIZE} x {SIZE}" in out
    assert np.array_equal(tifffile.imread(tmp_path / "pred.tif"), mask)  # the same prediction as a TIFF stack
    assert np.allclose(tifffile.imread(tmp_path / "pred_prob.tif"), prob)
    assert not (tmp_path / "pred.tif.partial.zarr").exists()


def test_evaluate_stacks_slice_by_slice(data, predicted, tmp_path, capsys):
    _, masks = data
    truth = tifffile.imread(masks) > 0
    pred = zarr.open_group(str(predicted), mode="r")["mask/0"][...] > 0
    report = tmp_path / "scores.json"
    code, out, err = run(["evaluate", "--pred", predicted, "--truth", masks, "--json", report], capsys)
    assert code == 0, err
    scores = json.loads(report.read_text())
    assert [row["image"] for row in scores["images"]] == NAMES
    for z, row in enumerate(scores["images"]):
        p, t = pred[z], truth[z]
        assert row["iou"] == pytest.approx((p & t).sum() / (p | t).sum())
        assert row["pixel_error"] == pytest.approx(np.mean(p != t))
    assert scores["mean"]["iou"] == pytest.approx(np.mean([row["iou"] for row in scores["images"]]))
    assert all(name in out for name in NAMES)


def test_evaluate_tif_output_isbi_uses_probabilities(run_dir, data, tmp_path, capsys):
    images, masks = data
    assert run(model_args(run_dir, images, tmp_path / "p.tif", "--probabilities"), capsys)[0] == 0
    report = tmp_path / "isbi.json"
    code, out, err = run(["evaluate", "--pred", tmp_path / "p.tif", "--truth", masks, "--isbi",
                          "--isbi-thresholds", "0.5", "--json", report], capsys)
    assert code == 0, err
    scores = json.loads(report.read_text())
    assert [row["image"] for row in scores["images"]] == NAMES
    assert all(0 <= row["v_rand"] <= 1 and 0 <= row["v_info"] <= 1 for row in scores["images"])
    assert scores["isbi_thresholds"] == {"v_rand": 0.5, "v_info": 0.5}


def test_evaluate_instances_of_a_volume(run_dir, data, predicted, tmp_path, capsys):
    from skimage.measure import label

    images, masks = data
    truth = np.stack([label(mask > 0) for mask in tifffile.imread(masks)]).astype(np.uint16)
    labels = write_stack(tmp_path / "labels.tif", truth)
    out = tmp_path / "objects.zarr"
    assert run(model_args(run_dir, images, out, "--instances", "objects"), capsys)[0] == 0
    report = tmp_path / "instances.json"
    code, out_text, err = run(["evaluate", "--pred", out, "--truth", labels, "--instances", "--json", report], capsys)
    assert code == 0, err
    scores = json.loads(report.read_text())
    assert scores["instances"] is True and [row["image"] for row in scores["images"]] == NAMES
    found = zarr.open_group(str(out), mode="r")["instances/0"][...]
    assert [row["n_pred"] for row in scores["images"]] == [len(np.unique(z[z > 0])) for z in found]
    code, _, err = run(["evaluate", "--pred", predicted, "--truth", labels, "--instances"], capsys)
    assert code == 1  # predicted without --instances
    one_error(err, predicted, "No instance labels", "run predict with --instances")


# ------------------------------------------------------------------------ an unfinished output


def unfinish(path, slice_index: int = 2) -> np.ndarray:
    """Make ``path`` look like a run stopped before slice ``slice_index``'s chunk: flag down, pixels zero."""
    root = zarr.open_group(str(path), mode="r+")
    before = root["mask/0"][...]
    root["mask/0"][slice_index] = 0
    root["done"][slice_index, 0, 0] = False
    info = dict(root.attrs["unet_workshop"])
    root.attrs["unet_workshop"] = {**info, "complete": False}
    return before


def test_unfinished_output_is_refused_then_resumed(run_dir, data, predicted, tmp_path, capsys):
    images, masks = data
    out = tmp_path / "images.zarr"
    shutil.copytree(predicted, out)
    before = unfinish(out)
    code, _, err = run(["evaluate", "--pred", out, "--truth", masks], capsys)
    assert code == 1
    one_error(err, out, "unfinished", "run the same predict command again")
    # the same command resumes it: only the missing chunk is predicted, the result is the whole prediction
    code, stdout, err = run(model_args(run_dir, images, out, "--probabilities"), capsys)
    assert code == 0, err
    assert f"resumed: {SLICES - 1} chunk(s) were already written" in stdout
    root = zarr.open_group(str(out), mode="r")
    assert dict(root.attrs)["unet_workshop"]["complete"] is True
    assert np.array_equal(root["mask/0"][...], before)
    assert run(["evaluate", "--pred", out, "--truth", masks], capsys)[0] == 0


def test_unfinished_tif_output_is_refused(data, predicted, tmp_path, capsys):
    _, masks = data
    partial = tmp_path / "p.tif.partial.zarr"  # what a stopped `predict --output p.tif` leaves
    shutil.copytree(predicted, partial)
    unfinish(partial)
    code, _, err = run(["evaluate", "--pred", tmp_path / "p.tif", "--truth", masks], capsys)
    assert code == 1
    one_error(err, tmp_path / "p.tif", "unfinished", "predict command again")


def test_stopped_while_writing_tif_stacks(run_dir, data, tmp_path, capsys, monkeypatch):
    images, masks = data
    written, real_imwrite = [], tifffile.imwrite

    def stop_at_the_second(path, *args, **kwargs):
        if written:
            raise KeyboardInterrupt
        written.append(path)
        return real_imwrite(path, *args, **kwargs)

    monkeypatch.setattr(tifffile, "imwrite", stop_at_the_second)
    code, _, err = run(model_args(run_dir, images, tmp_path / "p.tif", "--probabilities"), capsys)
    monkeypatch.undo()
    assert code == 130 and "the same `predict` command resumes a volume" in err
    assert (tmp_path / "p_prob.tif").is_file() and not (tmp_path / "p.tif").exists()  # the mask comes last
    code, _, err = run(["evaluate", "--pred", tmp_path / "p.tif", "--truth", masks], capsys)
    assert code == 1
    one_error(err, tmp_path / "p.tif", "unfinished", "again with --overwrite")
    code, _, err = run(model_args(run_dir, images, tmp_path / "p.tif", "--probabilities", "--overwrite"), capsys)
    assert code == 0, err
    assert tifffile.imread(tmp_path / "p.tif").shape == (SLICES, SIZE, SIZE)
    assert run(["evaluate", "--pred", tmp_path / "p.tif", "--truth", masks], capsys)[0] == 0


def test_create_output_alone_is_not_finished(data, tmp_path, capsys):
    out, _ = stacks.create_output(tmp_path / "new.zarr", [stacks.Layer("mask", "uint8")], (SLICES, SIZE, SIZE),
                                  (1, SIZE, SIZE), (SLICES, 1, 1), {"tile": TILE})
    code, _, err = run(["evaluate", "--pred", out, "--truth", data[1]], capsys)
    assert code == 1
    one_error(err, out, "unfinished")


# ------------------------------------------------------------------------ bad input: one line, path and fix


def test_missing_zarr(run_dir, tmp_path, capsys):
    code, _, err = run(model_args(run_dir, tmp_path / "missing.zarr", tmp_path / "out.zarr"), capsys)
    assert code == 1
    one_error(err, tmp_path / "missing.zarr", "Check the path")
    assert not (tmp_path / "out.zarr").exists()


def test_unreadable_zarr(run_dir, tmp_path, capsys):
    (tmp_path / "broken.zarr").mkdir()
    (tmp_path / "broken.zarr" / ".zarray").write_text("not json")
    code, _, err = run(model_args(run_dir, tmp_path / "broken.zarr", tmp_path / "out.zarr"), capsys)
    assert code == 1
    one_error(err, tmp_path / "broken.zarr", "point at a .zarr folder")
    assert not (tmp_path / "out.zarr").exists()


def test_axes_that_cannot_be_told_apart(run_dir, tmp_path, capsys):
    three = write_stack(tmp_path / "three.tif", blob_stack(slices=3)[0])  # 3 slices, or 3 channels?
    code, _, err = run(model_args(run_dir, three, tmp_path / "out.zarr"), capsys)
    assert code == 1
    line = one_error(err, three, "slices or channels?", "give the axes with --axes", "zyx")
    assert "command line" not in line  # the library's hint for scripts, said once as the flag
    code, _, err = run(model_args(run_dir, three, tmp_path / "out.zarr", "--axes", "zyx"), capsys)
    assert code == 0, err  # the fix the message gives works
    assert zarr.open_group(str(tmp_path / "out.zarr"), mode="r")["mask/0"].shape == (3, SIZE, SIZE)


def test_axes_that_do_not_fit(run_dir, data, tmp_path, capsys):
    code, _, err = run(model_args(run_dir, data[0], tmp_path / "out.zarr", "--axes", "zyxc"), capsys)
    assert code == 1
    one_error(err, data[0], "--axes zyxc", "e.g. zyx")


def test_channel_mismatch_with_the_model(run_dir, tmp_path, capsys):
    gray = blob_stack()[0]
    rgb = write_stack(tmp_path / "rgb.tif", np.stack([gray] * 3, axis=-1))
    code, _, err = run(model_args(run_dir, rgb, tmp_path / "out.zarr"), capsys)
    assert code == 1
    one_error(err, rgb, "3 channel(s)", "takes 1", "convert the volume")
    assert not (tmp_path / "out.zarr").exists()


def test_output_not_writable(run_dir, data, tmp_path, capsys, monkeypatch):
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    blocked.chmod(0o555)  # read-only (root ignores it, hence the os.access below)
    real_access = os.access
    monkeypatch.setattr(stacks.os, "access", lambda path, mode: False if str(path) == str(blocked)
                        else real_access(path, mode))
    try:
        code, _, err = run(model_args(run_dir, data[0], blocked / "out.zarr"), capsys)
    finally:
        blocked.chmod(0o755)
    assert code == 1
    one_error(err, blocked, "--output", "choose a writable folder")
    assert list(blocked.iterdir()) == []


def test_finished_output_exists(run_dir, data, predicted, tmp_path, capsys):
    out = tmp_path / "done.zarr"
    shutil.copytree(predicted, out)
    code, _, err = run(model_args(run_dir, data[0], out, "--probabilities"), capsys)
    assert code == 1
    one_error(err, out, "a finished prediction", "--overwrite", "choose another output")
    code, _, err = run(model_args(run_dir, data[0], out, "--overwrite"), capsys)
    assert code == 0, err  # replaced: now without the probabilities
    assert sorted(zarr.open_group(str(out), mode="r").group_keys()) == ["mask"]


def test_finished_tif_output_exists(run_dir, data, tmp_path, capsys):
    (tmp_path / "old.tif").write_bytes(b"")
    code, _, err = run(model_args(run_dir, data[0], tmp_path / "old.tif"), capsys)
    assert code == 1
    one_error(err, tmp_path / "old.tif", "--overwrite")
    assert (tmp_path / "old.tif").read_bytes() == b""


def test_other_settings_do_not_resume(run_dir, data, predicted, tmp_path, capsys):
    out = tmp_path / "other.zarr"
    shutil.copytree(predicted, out)
    unfinish(out)
    code, _, err = run(model_args(run_dir, data[0], out, "--probabilities", "--tile", "64"), capsys)
    assert code == 1
    one_error(err, out, "other settings", "run the same command", "--overwrite")


def test_bad_chunking_names_the_flags(run_dir, data, tmp_path, capsys):
    code, _, err = run(model_args(run_dir, data[0], tmp_path / "out.zarr", "--slices-per-chunk", "0"), capsys)
    assert code == 1
    one_error(err, "--slices-per-chunk 0", "1 or more")
    code, _, err = run(model_args(run_dir, data[0], tmp_path / "out.zarr", "--chunk", "10"), capsys)
    assert code == 1
    one_error(err, "--chunk 10", f"at least the tile ({TILE})", "e.g. --chunk")
    assert not (tmp_path / "out.zarr").exists()


def test_volume_options_refused_for_folders(run_dir, tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    tifffile.imwrite(folder / "a.tif", blob_stack(slices=1)[0][0])
    code, _, err = run(model_args(run_dir, folder, tmp_path / "out", "--chunk", "64", "--overwrite"), capsys)
    assert code == 1
    one_error(err, "--chunk, --overwrite", "volumes only", folder, "leave them out")
    assert not (tmp_path / "out").exists()


def test_zarr_output_needs_a_volume_input(run_dir, tmp_path, capsys):
    code, _, err = run(model_args(run_dir, tmp_path / "nowhere", tmp_path / "out.zarr"), capsys)
    assert code == 1
    one_error(err, "--input", tmp_path / "nowhere", "check the path")
    (tmp_path / "pngs").mkdir()
    code, _, err = run(model_args(run_dir, tmp_path / "pngs", tmp_path / "out.zarr"), capsys)
    assert code == 1
    one_error(err, "--output", tmp_path / "out.zarr", tmp_path / "pngs", "not a volume", "to a folder")
    assert not (tmp_path / "out.zarr").exists()


def test_evaluate_shape_mismatch(data, predicted, tmp_path, capsys):
    shorter = write_stack(tmp_path / "five.tif", blob_stack(slices=SLICES - 1)[1])
    code, _, err = run(["evaluate", "--pred", predicted, "--truth", shorter], capsys)
    assert code == 1
    one_error(err, predicted, shorter, f"{SLICES} x {SIZE} x {SIZE}", f"{SLICES - 1} x {SIZE} x {SIZE}")


def test_evaluate_volume_with_folder(predicted, tmp_path, capsys):
    (tmp_path / "truth").mkdir()
    code, _, err = run(["evaluate", "--pred", predicted, "--truth", tmp_path / "truth"], capsys)
    assert code == 1
    one_error(err, predicted, tmp_path / "truth", "both as volumes")


def test_train_slice_counts_differ(data, tmp_path, capsys):
    images, _ = data
    masks = write_stack(tmp_path / "masks.tif", blob_stack(slices=SLICES - 1)[1])
    code, _, err = run(["train", "--images", images, "--masks", masks, "--out", tmp_path / "run", "--epochs", "1",
                        *FAST], capsys)
    assert code == 1
    one_error(err, images, masks, f"{SLICES} slices", "one mask slice per image slice")


def test_train_stack_with_folder(data, tmp_path, capsys):
    images, _ = data
    (tmp_path / "masks").mkdir()
    code, _, err = run(["train", "--images", images, "--masks", tmp_path / "masks", "--out", tmp_path / "run",
                        "--epochs", "1", *FAST], capsys)
    assert code == 1
    one_error(err, images, tmp_path / "masks", "both as stacks")
