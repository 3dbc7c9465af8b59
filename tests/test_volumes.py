"""helpers.toolkit.volumes and stacks: chunked prediction equals predict_tiled, resumes, runs on a cluster."""

from __future__ import annotations

import json

import numpy as np
import pytest

dask = pytest.importorskip("dask")
pytest.importorskip("zarr")

import tifffile  # noqa: E402
import zarr  # noqa: E402

from helpers import models, tiles  # noqa: E402
from helpers.toolkit import stacks, volumes  # noqa: E402

TILE, OVERLAP = 32, 8


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(1)
    path = tmp_path_factory.mktemp("model") / "model.keras"
    models.build_unet((None, None, 1), filters=4, num_layers=2).save(path)
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """5 slices of 150 x 130, uint8, as a TIFF stack, and the same pixels."""
    pixels = (np.random.default_rng(0).random((5, 150, 130)) * 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("stack") / "stack.tif"
    tifffile.imwrite(path, pixels, photometric="minisblack")
    return path, pixels


@pytest.fixture(scope="module")
def reference(model_path, stack):
    """The in-memory prediction of the whole stack."""
    from helpers.models import load_model

    return tiles.predict_tiled(load_model(model_path), stack[1][..., None] / np.float32(255), tile=TILE,
                               overlap=OVERLAP)[..., 0]


def _predict(model_path, source, output, **options):
    options = {"tile": TILE, "overlap": OVERLAP, "threshold": 0.5, "echo": lambda line: None, **options}
    return volumes.predict_volume(model_path, source, output, **options)


def test_axis_chunks_keep_every_chunk_at_least_a_tile():
    assert volumes.axis_chunks(512, 128, 32) == (512,)
    assert volumes.axis_chunks(512, 128, 32, chunk=256) == (256, 256)
    assert volumes.axis_chunks(512, 128, 32, chunk=200) == (200, 312)  # 112 left over: merged, < a tile
    assert volumes.axis_chunks(600, 128, 32, chunk=200) == (200, 200, 200)
    assert volumes.axis_chunks(10_000, 128, 32) == (4128, 4128, 1744)  # 43 steps of 96
    with pytest.raises(ValueError, match="chunk=100 must be at least the tile"):
        volumes.axis_chunks(512, 128, 32, chunk=100)


def test_predict_block_equals_predict_tiled_on_its_region(model_path, stack, reference):
    from helpers.models import load_model

    image = stack[1][..., None] / np.float32(255)
    slab = image[:, 20:150, 10:100]  # the region (50..90) x (40..70) and more than a tile around it
    part = volumes.predict_block(load_model(model_path), slab, (20, 10), ((50, 90), (40, 70)), (150, 130),
                                 TILE, OVERLAP)
    assert part.shape == (5, 40, 30, 1)
    np.testing.assert_allclose(part[..., 0], reference[:, 50:90, 40:70], atol=1e-4)
    with pytest.raises(ValueError, match="halo of one tile"):
        volumes.predict_block(load_model(model_path), image[:, 50:90, 40:70], (50, 40), ((50, 90), (40, 70)),
                              (150, 130), TILE, OVERLAP)


@pytest.mark.parametrize("chunk, slices", [(None, 1), (64, 2), (50, 1), (75, 3)])
def test_chunked_prediction_equals_predict_tiled(model_path, stack, reference, tmp_path, chunk, slices):
    # 150 x 130 in chunks of 64 (64, 86 and 64, 66), 50 (50, 50, 50 and 50, 80) and 75 (75, 75 and 130)
    out = _predict(model_path, stack[0], tmp_path / "out.zarr", chunk=chunk, slices_per_chunk=slices,
                   probabilities=True)
    root = zarr.open_group(str(out[0]), mode="r")
    np.testing.assert_allclose(root["probabilities/0"][...], reference, atol=1e-4)
    np.testing.assert_array_equal(root["mask/0"][...], np.where(reference > 0.5, 255, 0))
    assert root.attrs[stacks.ATTRS_KEY]["complete"] and root["done"][...].all()


def test_a_2d_image_too_large_to_read_whole_is_predicted_in_chunks(model_path, stack, reference, tmp_path):
    image = tmp_path / "large.zarr"  # one 2-D image stored in 64 x 64 blocks, as a tiled TIFF or Zarr holds it
    zarr.create_array(str(image), shape=(150, 130), chunks=(64, 64), dtype="uint8")[...] = stack[1][2]
    volume = stacks.open_volume(image)
    assert volume.axes == "yx" and volume.data.shape == (1, 150, 130, 1)
    out = _predict(model_path, image, tmp_path / "out.zarr", chunk=64, probabilities=True)[0]
    root = zarr.open_group(str(out), mode="r")
    assert root["done"].shape == (1, 2, 2)  # 150 = 64 + 86 and 130 = 64 + 66: the remainders are merged
    np.testing.assert_allclose(root["probabilities/0"][0], reference[2], atol=1e-4)


def test_output_is_ome_zarr_with_the_source_scale(model_path, tmp_path):
    source = zarr.open_group(str(tmp_path / "in.zarr"), mode="w", zarr_format=2)
    source.create_array("0", shape=(3, 1, 64, 48), chunks=(1, 1, 64, 48), dtype="uint16")[...] = 1000
    source.attrs.update(stacks._multiscales("in", "zcyx", (2.0, 1.0, 0.5, 0.5), "micrometer"))
    volume = stacks.open_volume(tmp_path / "in.zarr")
    assert volume.axes == "zcyx" and volume.data.shape == (3, 64, 48, 1)
    assert volume.scale == (2.0, 0.5, 0.5) and volume.unit == "micrometer"
    _predict(model_path, tmp_path / "in.zarr", tmp_path / "out.zarr", probabilities=True)
    for layer in ("mask", "probabilities"):
        attrs = json.loads((tmp_path / "out.zarr" / layer / ".zattrs").read_text())["multiscales"][0]
        assert attrs["version"] == "0.4" and [a["name"] for a in attrs["axes"]] == ["z", "y", "x"]
        assert attrs["datasets"][0]["coordinateTransformations"][0]["scale"] == [2.0, 0.5, 0.5]
        again = stacks.open_volume(tmp_path / "out.zarr" / layer)
        assert again.axes == "zyx" and again.scale == (2.0, 0.5, 0.5) and again.data.shape == (3, 64, 48, 1)


def test_ome_zarr_reader_opens_the_output(model_path, stack, tmp_path):
    reader = pytest.importorskip("ome_zarr.reader")
    from ome_zarr.io import parse_url

    _predict(model_path, stack[0], tmp_path / "out.zarr", probabilities=True)
    nodes = list(reader.Reader(parse_url(str(tmp_path / "out.zarr" / "probabilities")))())
    assert nodes and nodes[0].data[0].shape == (5, 150, 130)


def test_resume_skips_the_chunks_written_and_gives_the_same_result(model_path, stack, tmp_path, monkeypatch):
    whole = _predict(model_path, stack[0], tmp_path / "whole.zarr", chunk=64, probabilities=True)[0]
    calls = []
    original = volumes.predict_block

    def stop_after_three(*args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(volumes, "predict_block", stop_after_three)
    output = tmp_path / "out.zarr"
    with pytest.raises(KeyboardInterrupt), dask.config.set(num_workers=1):  # one thread: stops exactly there
        _predict(model_path, stack[0], output, chunk=64, probabilities=True)
    root = zarr.open_group(str(output), mode="r")
    assert root["done"][...].sum() == 3 and not root.attrs[stacks.ATTRS_KEY]["complete"]
    monkeypatch.setattr(volumes, "predict_block", lambda *a, **k: calls.append(1) or original(*a, **k))
    _predict(model_path, stack[0], output, chunk=64, probabilities=True)
    assert len(calls) == 5 * 4  # 3 before, 17 after: 20 chunks, each predicted once
    finished = zarr.open_group(str(output), mode="r")
    for layer in ("mask/0", "probabilities/0"):
        np.testing.assert_array_equal(finished[layer][...], zarr.open_group(str(whole), mode="r")[layer][...])


def test_a_finished_output_is_kept_unless_overwrite(model_path, stack, tmp_path):
    output = tmp_path / "out.zarr"
    _predict(model_path, stack[0], output)
    with pytest.raises(FileExistsError, match="finished prediction; pass overwrite=True"):
        _predict(model_path, stack[0], output)
    with pytest.raises(FileExistsError, match=r"other settings \(.*tile"):
        root = zarr.open_group(str(output), mode="r+")
        root.attrs[stacks.ATTRS_KEY] = {**root.attrs[stacks.ATTRS_KEY], "complete": False}
        _predict(model_path, stack[0], output, tile=64, overlap=16)
    assert _predict(model_path, stack[0], output, overwrite=True) == [output]
    (tmp_path / "other.zarr").mkdir()
    with pytest.raises(FileExistsError, match="not an output of this toolkit"):
        _predict(model_path, stack[0], tmp_path / "other.zarr", overwrite=True)


def test_tiff_output_and_instances_unique_across_the_volume(model_path, stack, reference, tmp_path):
    written = _predict(model_path, stack[0], tmp_path / "out.tif", probabilities=True, instances="objects",
                       min_size=1)
    assert [path.name for path in written] == ["out.tif", "out_prob.tif", "out_instances.tif"]
    assert not list(tmp_path.glob("*.partial.zarr"))
    np.testing.assert_allclose(tifffile.imread(tmp_path / "out_prob.tif"), reference, atol=1e-4)
    labels = tifffile.imread(tmp_path / "out_instances.tif")
    for z, plane in enumerate(labels):
        found = np.unique(plane[plane > 0])
        assert found.size and found.min() > z * volumes.LABELS_PER_SLICE and found.max() < (z + 1) * 2**16
    with pytest.raises(ValueError, match="needs whole slices per chunk"):
        _predict(model_path, stack[0], tmp_path / "again.zarr", instances="objects", chunk=64)


def test_float_volumes_are_scaled_by_the_whole_volume_range(model_path, stack, tmp_path):
    from helpers.models import load_model

    source, values = tmp_path / "float.zarr", stack[1].astype(np.float32) * 4 - 100  # outside [0, 1]
    zarr.create_array(str(source), shape=values.shape, chunks=(1, 150, 130), dtype="float32")[...] = values
    scaled = (values - values.min()) / (values.max() - values.min())  # the volume's range, not each chunk's
    expected = tiles.predict_tiled(load_model(model_path), scaled[..., None], tile=TILE, overlap=OVERLAP)[..., 0]
    _predict(model_path, source, tmp_path / "out.zarr", chunk=64, probabilities=True)
    np.testing.assert_allclose(zarr.open_group(str(tmp_path / "out.zarr"))["probabilities/0"][...], expected,
                               atol=1e-4)


@pytest.mark.parametrize("shape, axes, zyxc", [((3, 40, 50), "cyx", (1, 40, 50, 3)),
                                              ((2, 3, 40, 50), "zcyx", (2, 40, 50, 3))])
def test_axes_that_cannot_be_told_apart_ask_for_axes(tmp_path, shape, axes, zyxc):
    path = tmp_path / "ambiguous.zarr"
    zarr.create_array(str(path), shape=shape, chunks=shape, dtype="uint8")
    with pytest.raises(ValueError, match=r"ambiguous.zarr: cannot tell the axes .* apart .*axes="):
        stacks.open_volume(path)
    assert stacks.open_volume(path, axes=axes).data.shape == zyxc


def test_axes_from_imagej_tiff_and_guesses(tmp_path):
    hyperstack = tmp_path / "zcyx.tif"
    tifffile.imwrite(hyperstack, np.zeros((4, 2, 40, 50), np.uint8), imagej=True, metadata={"axes": "ZCYX"})
    volume = stacks.open_volume(hyperstack)
    assert volume.axes == "zcyx" and volume.data.shape == (4, 40, 50, 2)
    plain = tmp_path / "zyx.zarr"
    zarr.create_array(str(plain), shape=(6, 40, 50), chunks=(1, 40, 50), dtype="uint8")
    assert stacks.open_volume(plain).axes == "zyx"
    assert stacks.open_volume(plain, axes="tyx").data.shape == (6, 40, 50, 1)  # frames segmented one by one
    with pytest.raises(ValueError, match="axes='zyxc' names 4 axes but"):
        stacks.open_volume(plain, axes="zyxc")


def test_missing_or_unreadable_volumes_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.zarr: no such Zarr folder"):
        stacks.open_volume(tmp_path / "missing.zarr")
    broken = tmp_path / "broken.zarr"
    broken.mkdir()
    (broken / ".zarray").write_text("{not json")
    with pytest.raises(ValueError, match="broken.zarr is not a readable Zarr"):
        stacks.open_volume(broken)
    assert stacks.is_volume(broken) and not stacks.is_volume(tmp_path)


def test_channels_that_do_not_fit_the_model_stop_before_writing(model_path, tmp_path):
    rgb = tmp_path / "rgb.zarr"
    zarr.create_array(str(rgb), shape=(6, 40, 50, 3), chunks=(1, 40, 50, 3), dtype="uint8")
    with pytest.raises(ValueError, match="has 3 channel.*takes 1"):
        _predict(model_path, rgb, tmp_path / "out.zarr")
    assert not (tmp_path / "out.zarr").exists()


def test_two_worker_cluster_gives_the_identical_output_and_loads_the_model_once_per_worker(model_path, stack,
                                                                                            tmp_path):
    distributed = pytest.importorskip("distributed")

    local = _predict(model_path, stack[0], tmp_path / "local.zarr", chunk=64, probabilities=True)[0]
    patient = {"distributed.comm.timeouts.connect": "120s", "distributed.comm.timeouts.tcp": "120s"}  # a busy CI
    with dask.config.set(patient), distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) \
            as cluster, distributed.Client(cluster) as client:
        remote = _predict(model_path, stack[0], tmp_path / "remote.zarr", chunk=64, probabilities=True,
                          scheduler=cluster.scheduler_address)[0]
        loads = client.run(lambda: __import__("helpers.toolkit.volumes", fromlist=["LOADS"]).LOADS["count"])
    assert sorted(loads.values()) == [1, 1]
    remote, local = zarr.open_group(str(remote), mode="r"), zarr.open_group(str(local), mode="r")
    np.testing.assert_array_equal(remote["mask/0"][...], local["mask/0"][...])
    # bit for bit on most stacks; distributed starts workers with OMP_NUM_THREADS=1, and with one thread
    # TensorFlow's oneDNN may add in another order (Python 3.13 + TF 2.20: up to 3.6e-7 apart)
    np.testing.assert_allclose(remote["probabilities/0"][...], local["probabilities/0"][...], rtol=0, atol=1e-6)


def test_only_tensorflow_retracing_notes_are_dropped_while_predicting(caplog):
    import logging

    logger = logging.getLogger("tensorflow")
    with caplog.at_level(logging.WARNING, logger="tensorflow"), volumes._quiet_retracing():
        logger.warning("5 out of the last 54 calls to <function f> triggered tf.function retracing. Tracing ...")
        logger.warning("something else")
    logger.warning("2 calls triggered tf.function retracing")  # outside: kept
    assert [record.getMessage() for record in caplog.records] == ["something else",
                                                                 "2 calls triggered tf.function retracing"]


def test_a_k_class_model_writes_class_maps_and_k_probability_channels(stack, tmp_path):
    import keras

    from helpers.models import load_model

    keras.utils.set_random_seed(2)
    path = tmp_path / "three.keras"
    models.build_unet((None, None, 1), filters=4, num_layers=2, num_classes=3).save(path)
    out = _predict(path, stack[0], tmp_path / "out.zarr", chunk=64, probabilities=True, threshold=None)[0]
    expected = tiles.predict_tiled(load_model(path), stack[1][..., None] / np.float32(255), tile=TILE,
                                   overlap=OVERLAP)
    root = zarr.open_group(str(out), mode="r")
    assert root["probabilities/0"].shape == (3, 5, 150, 130)  # (c, z, y, x), as OME-Zarr orders them
    np.testing.assert_allclose(np.moveaxis(root["probabilities/0"][...], 0, -1), expected, atol=1e-4)
    top_two = np.sort(expected, axis=-1)[..., -2:]
    clear = top_two[..., 1] - top_two[..., 0] > 1e-4  # not a tie within the rounding of the two predictions
    np.testing.assert_array_equal(root["mask/0"][...][clear], expected.argmax(axis=-1)[clear])
    assert clear.mean() > 0.9  # an untrained model: its three probabilities lie close together
