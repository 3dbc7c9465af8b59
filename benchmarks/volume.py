"""Volumes chunk by chunk on Dask (issue 23): peak memory, throughput per core, and a two-worker cluster.

:func:`helpers.toolkit.volumes.predict_volume` against the in-memory way (read the whole stack, then
:func:`helpers.tiles.predict_tiled` on it), with the ``cpu`` profile's model: ``models.custom_unet``, 16
filters, 4 levels, dropout 0.2, no batch norm, **random weights** (seed 0; speed and memory do not depend on
the weights), saved to a temporary ``model.keras``; tile 128, overlap 32, batch size 5 (the ``cpu`` profile's
``BATCH_SIZE``) for both.

Volumes (uint8 Zarr arrays, one slice per chunk):

* **A**: the 30 ISBI 2012 test slices (30 x 512 x 512, :func:`helpers.data.load_isbi2012`);
* **B**: 8 x larger: A repeated 8 times along z (240 x 512 x 512).

Measurements:

1. **peak RSS**: each run in a fresh Python process (``python -m benchmarks.volume --one ...``) that reports
   its own peak resident memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) and the seconds from loading
   the model to the finished output: ``predict_volume`` to ``.zarr`` on Dask's local threads (mask only), and
   the in-memory way (whole stack read, ``predict_tiled``, masks thresholded in memory), on A and on B. Target:
   ``predict_volume``'s B/A ratio at most 1.25.
2. **throughput**: each way in its own fresh process on A, one warm-up run (model load, tracing), then
   5 timed runs (``predict_volume`` mask only, to ``.zarr``; in-memory: read, ``predict_tiled``,
   masks); median seconds, spread = max - min, slices per second per core (cores: the CPU affinity). Target:
   ``predict_volume`` within 15 % of ``predict_tiled`` (ratio >= 0.85).
3. **distributed**: ``predict_volume(..., probabilities=True)`` on A on local threads, then on a
   ``distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True)``; masks and probabilities
   compared (``np.array_equal``, max abs difference) and each worker's ``volumes.LOADS["count"]``. The
   cluster's time includes each worker's first model load, not the cluster's start.

``--quick``: 4 random 64 x 64 slices (B: 32), a 4-filter 2-level model, tile 32, overlap 8, batch 9, one repeat; a
smoke test, the numbers mean nothing.

Examples
--------
>>> from benchmarks import volume
>>> volume.run(quick=True)[["measurement", "method", "volume", "met"]]   # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["measurement", "method", "volume", "slices", "seconds", "spread_s", "slices_per_s",
           "slices_per_s_per_core", "peak_rss_gb", "ratio", "target", "met", "identical", "detail"]
#: Issue 23's targets: peak RSS B/A at most this; predict_volume's throughput at least this share of predict_tiled's.
RSS_RATIO_TARGET, THROUGHPUT_TARGET = 1.25, 0.85
#: Volume B is volume A repeated this many times along z.
FACTOR = 8
METHODS = {"volume": "predict_volume (Dask local threads, to .zarr)",
           "memory": "in memory (whole stack, predict_tiled)"}


@dataclass(frozen=True)
class Setup:
    """Model and prediction settings of a run (the full run: the ``cpu`` profile's)."""

    filters: int = 16
    num_layers: int = 4
    tile: int = 128
    overlap: int = 32
    batch_size: int = 5
    repeats: int = 5


#: The quick setup: 9 tiles per 64 x 64 slice and batches of 9, so one batch shape (one XLA compile under JAX).
QUICK = Setup(filters=4, num_layers=2, tile=32, overlap=8, batch_size=9, repeats=1)


def cores() -> int:
    """CPU cores this process may run on (its affinity), else ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def save_model(folder: Path, setup: Setup) -> Path:
    """The ``cpu`` profile's ``custom_unet`` with random weights (seed 0), saved as ``folder/model.keras``."""
    import keras

    from helpers import models, train

    keras.utils.set_random_seed(0)
    model = models.custom_unet((None, None, 1), filters=setup.filters, num_layers=setup.num_layers, dropout=0.2,
                               use_batch_norm=False)
    return train.save_model(model, folder / "model.keras")


def slices_a(quick: bool) -> np.ndarray:
    """Volume A as uint8 ``(z, y, x)``: the 30 ISBI 2012 test slices, or 4 random 64 x 64 slices when quick."""
    if quick:
        return (np.random.default_rng(0).random((4, 64, 64)) * 255).astype(np.uint8)
    from helpers import data

    images, _ = data.load_isbi2012("test")
    return np.round(images[..., 0] * 255).astype(np.uint8)


def write_zarr(pixels: np.ndarray, path: Path, repeat: int = 1) -> Path:
    """``pixels`` repeated ``repeat`` times along z as a Zarr array of one slice per chunk, written slice by slice."""
    import zarr

    nz, height, width = pixels.shape
    array = zarr.create_array(str(path), shape=(nz * repeat, height, width), chunks=(1, height, width),
                              dtype=pixels.dtype, fill_value=0)
    for k in range(repeat):
        array[k * nz : (k + 1) * nz] = pixels
    return path


# ---------------------------------------------------------------------------------------------
# one measurement (also run alone in a fresh process: --one)


def predict_in_memory(model, source: Path, setup: Setup) -> np.ndarray:
    """The in-memory way: the whole stack read, ``predict_tiled`` on it, masks thresholded at 0.5."""
    from helpers import files, tiles
    from helpers.predict import to_mask
    from helpers.toolkit import stacks

    image = files.to_float(np.asarray(stacks.open_volume(source, "zyx").data.compute()))
    prob = tiles.predict_tiled(model, image, tile=setup.tile, overlap=setup.overlap, batch_size=setup.batch_size)
    return np.stack([to_mask(p, 0.5) for p in prob[..., 0]])


def predict_chunked(model_path: Path, source: Path, output: Path, setup: Setup, **options) -> Path:
    """``predict_volume`` with the setup's tile, overlap and batch size, silently, replacing ``output``."""
    from helpers.toolkit import volumes

    return volumes.predict_volume(model_path, source, output, tile=setup.tile, overlap=setup.overlap,
                                  threshold=0.5, batch_size=setup.batch_size, axes="zyx", overwrite=True,
                                  echo=lambda line: None, **options)[0]


def one(method: str, model_path: Path, source: Path, output: Path, setup: Setup, repeats: int = 0) -> dict:
    """Run one way in this process: its first run's seconds (model load included), the process's peak RSS after
    it, and the seconds of ``repeats`` more runs (warm: model loaded, predict function traced)."""
    import resource

    from helpers.models import load_model

    def once() -> float:
        start = time.perf_counter()
        if method == "volume":
            predict_chunked(model_path, source, output, setup)
        else:
            predict_in_memory(model if model is not None else load_model(model_path), source, setup)
        return time.perf_counter() - start

    model = None
    seconds = once()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    if method == "memory" and repeats:
        model = load_model(model_path)
    return {"method": method, "seconds": seconds, "peak_rss_bytes": peak_kb * 1024,
            "repeat_seconds": [once() for _ in range(repeats)]}


def in_fresh_process(method: str, model_path: Path, source: Path, output: Path, setup: Setup,
                     repeats: int = 0) -> dict:
    """:func:`one` in a new Python process (its peak RSS is its own); the process's whole wall time added."""
    command = [sys.executable, "-m", "benchmarks.volume", "--one", method, "--model", str(model_path),
               "--source", str(source), "--output", str(output), "--setup", json.dumps(setup.__dict__),
               "--repeats", str(repeats)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1],
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {**result, "process_seconds": time.perf_counter() - start}


# ---------------------------------------------------------------------------------------------
# the three measurements


def peak_memory(model_path: Path, volumes: dict[str, Path], work: Path, setup: Setup) -> list[dict]:
    """Peak RSS and speed of both ways on A and B, each in a fresh process."""
    rows = []
    for method in ("volume", "memory"):
        found = {}
        for name, source in volumes.items():
            found[name] = in_fresh_process(method, model_path, source, work / f"rss_{method}_{name}.zarr", setup)
            shutil.rmtree(work / f"rss_{method}_{name}.zarr", ignore_errors=True)
        for name, result in found.items():
            slices = _slices(volumes[name])
            ratio = result["peak_rss_bytes"] / found["A"]["peak_rss_bytes"] if name == "B" else np.nan
            target = method == "volume" and name == "B"
            rows.append({"measurement": "peak RSS", "method": METHODS[method], "volume": name, "slices": slices,
                         "seconds": result["seconds"], "spread_s": np.nan, "slices_per_s": slices / result["seconds"],
                         "slices_per_s_per_core": np.nan, "peak_rss_gb": result["peak_rss_bytes"] / 1e9,
                         "ratio": ratio, "target": f"B/A <= {RSS_RATIO_TARGET}" if target else "",
                         "met": ("yes" if ratio <= RSS_RATIO_TARGET else "no") if target else "", "identical": "",
                         "detail": f"fresh process, {result['process_seconds']:.1f} s with start-up"})
    return rows


def throughput(model_path: Path, source: Path, work: Path, setup: Setup) -> list[dict]:
    """Slices per second per core on A, each way in its own fresh process: one warm-up run, then ``repeats``.

    Each way alone, so that neither runs in the other's memory and threads. The median, over 5 runs in the full
    setup: on the 2-core machine of 2026-12-05, ``predict_tiled``'s one ``model.predict`` of 750 tiles took
    either about 6.5 s or about 11 s from run to run (alone or after ``predict_volume`` alike), while
    ``predict_volume``'s 30 calls of 25 tiles took 9.7-9.9 s.
    """
    slices, n_cores = _slices(source), cores()
    times = {method: in_fresh_process(method, model_path, source, work / "throughput.zarr", setup,
                                      setup.repeats)["repeat_seconds"] for method in ("memory", "volume")}
    shutil.rmtree(work / "throughput.zarr", ignore_errors=True)
    medians = {method: statistics.median(values) for method, values in times.items()}
    rows = []
    for method in ("memory", "volume"):
        ratio = medians["memory"] / medians["volume"]
        is_volume = method == "volume"
        rows.append({"measurement": "throughput", "method": METHODS[method], "volume": "A", "slices": slices,
                     "seconds": medians[method], "spread_s": max(times[method]) - min(times[method]),
                     "slices_per_s": slices / medians[method],
                     "slices_per_s_per_core": slices / medians[method] / n_cores,
                     "peak_rss_gb": np.nan, "ratio": ratio if is_volume else 1.0,
                     "target": f"ratio >= {THROUGHPUT_TARGET}" if is_volume else "",
                     "met": ("yes" if ratio >= THROUGHPUT_TARGET else "no") if is_volume else "", "identical": "",
                     "detail": f"fresh process, 1 warm-up run, median of {len(times[method])}, {n_cores} cores; s: "
                               + ", ".join(f"{t:.2f}" for t in times[method])})
    return rows


def distributed_run(model_path: Path, source: Path, work: Path, setup: Setup) -> list[dict]:
    """predict_volume on local threads and on a local two-process cluster: identical output? loads per worker?"""
    import logging

    import distributed
    import zarr

    from helpers.toolkit import volumes

    slices = _slices(source)
    start = time.perf_counter()
    local = predict_chunked(model_path, source, work / "local.zarr", setup, probabilities=True)
    local_s = time.perf_counter() - start
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as client:
        start = time.perf_counter()
        remote = predict_chunked(model_path, source, work / "cluster.zarr", setup, probabilities=True,
                                 scheduler=cluster.scheduler_address)
        cluster_s = time.perf_counter() - start
        loads = client.run(lambda: volumes.LOADS["count"])
    same, worst = {}, 0.0
    for layer in ("mask", "probabilities"):
        a = zarr.open_group(str(local), mode="r")[f"{layer}/0"][...]
        b = zarr.open_group(str(remote), mode="r")[f"{layer}/0"][...]
        same[layer] = bool(np.array_equal(a, b))
        if layer == "probabilities":
            worst = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
    identical = all(same.values())
    per_worker = ", ".join(str(count) for count in sorted(loads.values()))
    common = {"measurement": "distributed", "volume": "A", "slices": slices, "spread_s": np.nan,
              "slices_per_s_per_core": np.nan, "peak_rss_gb": np.nan}
    return [
        {**common, "method": "predict_volume, local threads (reference)", "seconds": local_s,
         "slices_per_s": slices / local_s, "ratio": 1.0, "target": "", "met": "", "identical": "",
         "detail": "mask and probabilities written"},
        {**common, "method": "predict_volume, LocalCluster 2 processes x 1 thread", "seconds": cluster_s,
         "slices_per_s": slices / cluster_s, "ratio": local_s / cluster_s, "target": "identical output",
         "met": "yes" if identical else "no", "identical": identical,
         "detail": f"equal: mask {same['mask']}, probabilities {same['probabilities']}; max abs difference "
                   f"{worst:g}; model loads per worker: {per_worker}"},
    ]


def _slices(source: Path) -> int:
    import zarr

    return int(zarr.open_array(str(source), mode="r").shape[0])


def run(quick: bool = False, work: str | os.PathLike | None = None) -> pd.DataFrame:
    """All three measurements; one row per way and volume.

    Parameters
    ----------
    quick : bool
        Tiny sizes (:data:`QUICK`, random slices): a smoke test, the numbers mean nothing.
    work : path, optional
        Folder for the model, volumes and outputs (default: a temporary folder, removed afterwards).

    Returns
    -------
    pandas.DataFrame
        :data:`COLUMNS`; ``ratio`` is B/A for peak RSS, predict_tiled's time / predict_volume's for throughput
        and local / cluster for distributed.
    """
    setup = QUICK if quick else Setup()
    with tempfile.TemporaryDirectory(prefix="volume_bench_", dir=work) as folder:
        folder = Path(folder)
        model_path = save_model(folder, setup)
        pixels = slices_a(quick)
        sources = {"A": write_zarr(pixels, folder / "A.zarr"), "B": write_zarr(pixels, folder / "B.zarr", FACTOR)}
        rows = peak_memory(model_path, sources, folder, setup)
        rows += throughput(model_path, sources["A"], folder, setup)
        rows += distributed_run(model_path, sources["A"], folder, setup)
    return pd.DataFrame(rows, columns=COLUMNS)


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.volume",
                                     description="One measurement in this process (used by run()); prints JSON.")
    parser.add_argument("--one", choices=sorted(METHODS), required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--setup", type=json.loads, default={})
    parser.add_argument("--repeats", type=int, default=0, help="warm runs after the first, timed")
    args = parser.parse_args(argv)
    import helpers  # noqa: F401  (chooses Keras' backend before Keras is imported)

    print(json.dumps(one(args.one, args.model, args.source, args.output, Setup(**args.setup), args.repeats)))


if __name__ == "__main__":
    _main()
