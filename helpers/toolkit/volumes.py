"""Segment volumes larger than memory chunk by chunk on Dask, with the same tiles as :func:`helpers.tiles.predict_tiled`.

The 2-D U-Net runs slice by slice. The volume is a dask array cut into chunks of whole slices (or of large
regions of a slice, for slices too large to hold); each chunk is predicted with the tiles of the *whole
slice's* tile grid that touch it, blended with the same ``sin**2`` window, and so equals the in-memory
prediction (to float rounding): no seams at chunk borders. The tiles touching a chunk reach up to one tile
beyond it, so every chunk is read with a halo of one tile on each side that has a neighbour
(``dask.array.map_overlap`` with ``depth=tile``); only the chunk itself is predicted and written.

Each chunk is written to the output (:func:`helpers.toolkit.stacks.create_output`) as soon as it is
predicted, and its flag in ``done`` is set after it: a run that stops resumes with the same call, skipping
the chunks already written. It runs on Dask's local threads by default, or on any ``dask.distributed``
cluster (``scheduler="tcp://host:8786"``, or Dask's ``scheduler-address`` setting, e.g. the environment
variable ``DASK_SCHEDULER_ADDRESS``); every process loads the model once and keeps it.

Examples
--------
>>> predict_volume("runs/em/model.keras", "em_stack.tif", "em_stack.zarr")   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from helpers import files, tiles
from helpers.toolkit import stacks

__all__ = ["axis_chunks", "predict_block", "predict_volume", "DEFAULT_CHUNK", "MAX_TIFF_BYTES"]

#: Slices up to this size (pixels per side) are one chunk each; larger ones are cut into about this size.
DEFAULT_CHUNK = 4096
#: Largest prediction (all layers together) written as a TIFF stack; larger ones go to Zarr.
MAX_TIFF_BYTES = 2 * 1024**3
#: Instance labels of slice z are z * LABELS_PER_SLICE + 1, 2, ...: unique across the volume, and they tell the slice.
LABELS_PER_SLICE = 2**16

_MODELS: dict[tuple, Any] = {}
_LOCK = threading.Lock()  # one load, and one predict at a time, per process (Keras models are not thread-safe)
LOADS = {"count": 0}  # models loaded by this process (the tests check that a worker loads once)


def axis_chunks(length: int, tile: int, overlap: int, chunk: int | None = None) -> tuple[int, ...]:
    """Chunk sizes along one slice axis: ``chunk`` each, the rest merged into the last chunk if under a tile.

    Parameters
    ----------
    length, tile, overlap
        The axis length, tile size and overlap.
    chunk
        Pixels per chunk, at least ``tile``; default: the whole axis up to :data:`DEFAULT_CHUNK`, else about
        :data:`DEFAULT_CHUNK` in whole tile steps (``tile - overlap``).

    Examples
    --------
    >>> axis_chunks(512, 128, 32), axis_chunks(512, 128, 32, chunk=200)
    ((512,), (200, 312))
    """
    if chunk is None:
        step = tile - overlap
        chunk = length if length <= DEFAULT_CHUNK else step * math.ceil(DEFAULT_CHUNK / step)
    if chunk < tile:
        raise ValueError(f"chunk={chunk} must be at least the tile ({tile}) so that a chunk's halo comes from its "
                         f"neighbour alone; e.g. chunk={max(4 * (tile - overlap), tile)}")
    sizes = [chunk] * (length // chunk)
    rest = length - sum(sizes)
    if rest >= tile or not sizes:
        sizes.append(rest)
    elif rest:
        sizes[-1] += rest
    return tuple(sizes)


def predict_block(model, slab: np.ndarray, origin: tuple[int, int], region: tuple[tuple[int, int], tuple[int, int]],
                  size: tuple[int, int], tile: int = 128, overlap: int = 32, batch_size: int = 8) -> np.ndarray:
    """Predict one region of slices with the tiles of the whole slices' grid that touch it.

    Parameters
    ----------
    model : keras.Model
        Maps ``(B, tile, tile, C)`` to ``(B, tile, tile, K)``.
    slab : np.ndarray
        ``(N, h, w, C)`` float32 input: the region and enough around it (a tile each side, within the slice).
    origin
        ``(y, x)`` of ``slab[:, 0, 0]`` in the slice.
    region
        ``((y0, y1), (x0, x1))``, the part of the slice to predict.
    size
        ``(H, W)`` of the whole slice.
    tile, overlap, batch_size
        As for :func:`helpers.tiles.predict_tiled`.

    Returns
    -------
    np.ndarray
        float32 ``(N, y1 - y0, x1 - x0, K)``: what ``predict_tiled`` gives for that region of the whole slices.

    Examples
    --------
    >>> part = predict_block(model, image[None], (0, 0), ((0, 64), (0, 512)), (512, 512))   # doctest: +SKIP
    """
    (oy, ox), ((y0, y1), (x0, x1)) = origin, region
    step = tile - overlap
    grids = [tiles.tile_starts(length, tile, step) for length in size]
    # padded position -> slice position: reflection at the bottom/right, as tiles.get_patches pads
    maps = [np.pad(np.arange(length), (0, grid[-1] + tile - length), mode="reflect") - start
            for length, grid, start in zip(size, grids, (oy, ox))]
    ys = [y for y in grids[0] if y < y1 and y + tile > y0]
    xs = [x for x in grids[1] if x < x1 and x + tile > x0]
    if min(maps[0][ys[0] : ys[-1] + tile]) < 0 or max(maps[0][ys[0] : ys[-1] + tile]) >= slab.shape[1] or \
            min(maps[1][xs[0] : xs[-1] + tile]) < 0 or max(maps[1][xs[0] : xs[-1] + tile]) >= slab.shape[2]:
        raise ValueError(f"slab of shape {slab.shape} at {origin} does not hold the tiles touching {region}; read "
                         "it with a halo of one tile on each side")
    rows = [slab[:, maps[0][y : y + tile]] for y in ys]
    patches = np.stack([row[:, :, maps[1][x : x + tile]] for row in rows for x in xs], axis=1)
    n, count = slab.shape[0], len(ys) * len(xs)
    flat = patches.reshape(n * count, tile, tile, -1)  # predict_on_batch: model.predict's set-up costs ~0.1 s a call
    predicted = np.concatenate([np.asarray(model.predict_on_batch(flat[i : i + batch_size]))
                                for i in range(0, len(flat), batch_size)]).reshape(n, count, tile, tile, -1)
    window = tiles.blend_window(tile, overlap)
    total = np.zeros((n, y1 - y0, x1 - x0, predicted.shape[-1]))
    weight = np.zeros((y1 - y0, x1 - x0))
    for k, (y, x) in enumerate((y, x) for y in ys for x in xs):  # row by row, as reconstruct_from_patches adds
        a, b, c, d = max(y, y0), min(y + tile, y1), max(x, x0), min(x + tile, x1)
        part = window[a - y : b - y, c - x : d - x]
        total[:, a - y0 : b - y0, c - x0 : d - x0] += predicted[:, k, a - y : b - y, c - x : d - x] * part[:, :, None]
        weight[a - y0 : b - y0, c - x0 : d - x0] += part
    return (total / weight[:, :, None]).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# one chunk: read, predict, write, flag


@dataclass(frozen=True)
class _Job:
    """Everything a worker needs for any chunk (picklable: paths and numbers only)."""

    model: str
    output: str
    chunks: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]
    depth: tuple[int, int]
    tile: int
    overlap: int
    batch_size: int
    threshold: float
    classes: int
    value_range: tuple[float, float] | None
    conversion: str
    instances: str | None
    min_size: int
    layers: tuple[str, ...]


def _model(path: str):
    """The model at ``path``, loaded once per process (again only if the file changes)."""
    from helpers.models import load_model

    key = (path, os.stat(path).st_mtime_ns)
    with _LOCK:
        if key not in _MODELS:
            _MODELS.clear()
            _MODELS[key] = load_model(path)
            LOADS["count"] += 1
        return _MODELS[key]


@contextlib.contextmanager
def _quiet_retracing():
    """Without TensorFlow's note that ``predict_on_batch`` "triggered tf.function retracing".

    Our batches have one shape (and the last of a chunk's); the note appeared in notebook 3's cpu profile only,
    after its training cells, never in a fresh process, and costs nothing but a few traces.
    """
    note = logging.Filter()
    note.filter = lambda record: "triggered tf.function retracing" not in record.getMessage()
    logger = logging.getLogger("tensorflow")
    logger.addFilter(note)
    try:
        yield
    finally:
        logger.removeFilter(note)


def _as_input(slab: np.ndarray, job: _Job) -> np.ndarray:
    """Raw pixels as the model's float32 input: scaled as :func:`helpers.files.to_float`, channels converted."""
    if job.value_range is None:
        image = files.to_float(slab)
    else:  # floats outside [0, 1]: the whole volume's range, so every chunk is scaled alike
        low, high = job.value_range
        image = ((slab.astype(np.float32) - low) / max(high - low, 1e-12)).astype(np.float32)
    if job.conversion == "rgb_to_gray" and image.shape[-1] == 3:
        from skimage.color import rgb2gray

        image = rgb2gray(image).astype(np.float32)[..., None]
    elif job.conversion == "gray_to_rgb" and image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return image


def _region(job: _Job, index: tuple[int, int, int]) -> list[tuple[int, int]]:
    """``[(z0, z1), (y0, y1), (x0, x1)]`` of chunk ``index``."""
    starts = [sum(sizes[:i]) for sizes, i in zip(job.chunks, index)]
    return [(start, start + sizes[i]) for start, sizes, i in zip(starts, job.chunks, index)]


def _layers_of(prob: np.ndarray, job: _Job, z0: int) -> dict[str, np.ndarray]:
    """The output layers of predicted ``(N, h, w, K)`` probabilities of slices ``z0 ...``."""
    from helpers.predict import to_mask
    from helpers.toolkit.workflow import instances_of

    binary = job.classes == 1
    slices = prob[..., 0] if binary else prob
    out = {"mask": np.stack([to_mask(p, job.threshold) for p in slices])}
    if "probabilities" in job.layers:
        out["probabilities"] = prob[..., 0] if binary else np.moveaxis(prob, -1, 0)
    if "instances" in job.layers:
        labels = [instances_of(p, job.instances, job.threshold, job.min_size).astype(np.uint32) for p in slices]
        if max(int(label.max()) for label in labels) >= LABELS_PER_SLICE:
            raise ValueError(f"a slice has {LABELS_PER_SLICE} objects or more; raise min_size, or segment that "
                             "slice on its own")
        out["instances"] = np.stack([np.where(label > 0, label + (z0 + z) * LABELS_PER_SLICE, 0)
                                     for z, label in enumerate(labels)]).astype(np.uint32)
    return out


def _chunk(slab: np.ndarray, block_info: dict | None = None, job: _Job | None = None) -> np.ndarray:
    """Predict and write chunk ``block_info``'s chunk-location, then set its flag (skipped if already set)."""
    index = tuple(block_info[0]["chunk-location"][:3])
    root = stacks.open_output(job.output)
    if not root["done"][index]:
        (z0, z1), (y0, y1), (x0, x1) = _region(job, index)
        origin = (y0 - job.depth[0] * (index[1] > 0), x0 - job.depth[1] * (index[2] > 0))
        model = _model(job.model)
        size = (sum(job.chunks[1]), sum(job.chunks[2]))
        image = _as_input(slab, job)
        with _LOCK, _quiet_retracing():
            prob = predict_block(model, image, origin, ((y0, y1), (x0, x1)), size, job.tile, job.overlap,
                                 job.batch_size)
        for name, values in _layers_of(prob, job, z0).items():
            where = (slice(None),) * (values.ndim - 3) + (slice(z0, z1), slice(y0, y1), slice(x0, x1))
            root[f"{name}/0"][where] = values
        root["done"][index] = True
    return np.ones((1, 1, 1, 1), bool)


# ---------------------------------------------------------------------------------------------
# the whole volume


def _value_range(data) -> tuple[float, float] | None:
    """The volume's (min, max) for floats outside [0, 1] (one pass over it), else None (scaled as files.to_float)."""
    if np.issubdtype(data.dtype, np.integer) and data.dtype.itemsize <= 2:
        return None
    import dask

    low, high = (float(v) for v in dask.compute(data.min(), data.max()))
    return None if low >= 0.0 and high <= 1.0 else (low, high)


def _check_channels(volume: stacks.Volume, channels: int, conversion: str, model_path: Path) -> None:
    have = volume.data.shape[-1]
    if have != channels and not (conversion == "rgb_to_gray" and have == 3 or conversion == "gray_to_rgb" and have == 1):
        raise ValueError(f"{volume.path} has {have} channel(s) (axes {volume.axes!r}) but {model_path} takes {channels}; "
                         f"convert the volume, or give its axes with axes= if the channels were read wrongly")


def _layers(probabilities: bool, instances: str | None, classes: int) -> list[stacks.Layer]:
    layers = [stacks.Layer("mask", "uint8")]
    if probabilities:
        layers.append(stacks.Layer("probabilities", "float32", 0 if classes == 1 else classes))
    if instances is not None:
        layers.append(stacks.Layer("instances", "uint32"))
    return layers


def _bar(**options):
    """A progress bar over chunks: a widget in Jupyter where ipywidgets is installed (Colab), else text on a terminal."""
    try:
        import ipywidgets  # noqa: F401  (tqdm.auto warns in Jupyter without it)
        from tqdm.auto import tqdm
    except ImportError:
        from tqdm import tqdm
    return tqdm(desc="chunks", unit="chunk", disable=None, **options)


def _progress(total: int, name: str):
    """A dask callback that moves a progress bar each time a task of the array ``name`` (one chunk) finishes."""
    from dask.callbacks import Callback

    class Bar(Callback):
        def _start(self, dsk):
            self.bar = _bar(total=total)

        def _posttask(self, key, result, dsk, state, worker_id):
            if isinstance(key, tuple) and key[0] == name:
                self.bar.update()

        def _finish(self, dsk, state, errored):
            self.bar.close()

    return Bar()


def _compute(pieces: list, scheduler: str | None, name: str) -> str:
    """Compute the chunks' tasks on ``scheduler`` (an address) or Dask's local threads; say where."""
    import dask

    address = scheduler or dask.config.get("scheduler-address", None)
    if not pieces:
        return "nothing left to do"
    if address is None:
        with _progress(len(pieces), name):
            dask.compute(*pieces, scheduler="threads")
        return "local threads"
    from distributed import Client, as_completed

    try:
        client = Client(address, timeout="30s", set_as_default=False)
    except OSError as error:
        raise ValueError(f"scheduler={address!r}: no Dask scheduler answers there ({error}); start one (dask "
                         "scheduler, dask worker) or leave scheduler out to run locally") from error
    with client:
        futures = client.compute(pieces)
        for future in _bar(iterable=as_completed(futures), total=len(futures)):
            future.result()
        return f"the Dask cluster at {address} ({len(client.scheduler_info()['workers'])} workers)"


def _write_tiffs(store: Path, output: Path, layers: list[stacks.Layer]) -> list[Path]:
    """The finished ``store``'s layers as TIFF stacks: ``output`` (mask), ``<stem>_prob.tif``, ``<stem>_instances.tif``."""
    import shutil

    import tifffile

    root = stacks.open_output(store)
    names = {"mask": output, "probabilities": output.with_name(f"{output.stem}_prob.tif"),
             "instances": output.with_name(f"{output.stem}_instances.tif")}
    for layer in sorted(layers, key=lambda layer: layer.name == "mask"):  # the mask last: once it exists, all do
        with files.atomic_path(names[layer.name]) as tmp:
            tifffile.imwrite(tmp, root[f"{layer.name}/0"][...], photometric="minisblack",
                             metadata={"axes": "CZYX" if layer.channels else "ZYX"})  # read back without --axes
    shutil.rmtree(store)
    return [names[layer.name] for layer in layers]


def predict_volume(model_path: str | os.PathLike, source: str | os.PathLike, output: str | os.PathLike, *,
                   threshold: float | None = None, tile: int | None = None, overlap: int | None = None,
                   probabilities: bool = False, instances: str | None = None, min_size: int = 10,
                   axes: str | None = None, chunk: int | None = None, slices_per_chunk: int = 1,
                   scheduler: str | None = None, overwrite: bool = False, batch_size: int = 8,
                   echo: Callable[[str], None] = print) -> list[Path]:
    """Segment a TIFF stack, Zarr or OME-Zarr volume chunk by chunk on Dask, writing OME-Zarr (or small TIFF stacks).

    Parameters
    ----------
    model_path, threshold, tile, overlap, probabilities, instances, min_size
        As for :func:`helpers.toolkit.workflow.predict_folder` (the run's ``config.json`` gives the defaults).
    source
        The volume (:func:`helpers.toolkit.stacks.open_volume`).
    output
        A ``.zarr`` folder (OME-Zarr images ``mask``, ``probabilities``, ``instances``), or a ``.tif`` stack
        (``<stem>_prob.tif``, ``<stem>_instances.tif`` beside it) for a prediction up to :data:`MAX_TIFF_BYTES`.
    axes
        The source's axes where its file does not say them, e.g. ``"zyx"``.
    chunk, slices_per_chunk
        Pixels per chunk along y and x (at least ``tile``; default: whole slices up to :data:`DEFAULT_CHUNK`),
        and slices per chunk. Instances need whole-slice chunks.
    scheduler
        Address of a ``dask.distributed`` scheduler; default: Dask's ``scheduler-address`` setting, else local threads.
    overwrite
        Replace a finished output (an unfinished one with the same settings is resumed without it).
    batch_size
        Tiles per ``model.predict`` batch.
    echo
        Receives the summary lines.

    Returns
    -------
    list of pathlib.Path
        The output (``.zarr`` folder, or the TIFF files).

    Raises
    ------
    FileNotFoundError, FileExistsError, ValueError, PermissionError
        Missing model or volume, finished output without ``overwrite``, unreadable volume, axes that cannot be
        told apart, channels that do not fit the model, an option that does not suit it, an unwritable output.

    Examples
    --------
    >>> predict_volume("runs/em/model.keras", "train-volume.tif", "train-volume.zarr", probabilities=True)  # doctest: +SKIP
    [PosixPath('train-volume.zarr')]
    """
    from helpers.toolkit import workflow

    model_path, output = Path(model_path), Path(output)
    if not model_path.is_file():
        raise FileNotFoundError(f"model_path={str(model_path)!r}: no such model file; pass RUN_DIR/model.keras")
    volume = stacks.open_volume(source, axes)
    run = workflow._prediction(_model(str(model_path)), model_path, threshold, tile, overlap, instances, min_size)
    _check_channels(volume, run.channels, run.conversion, model_path)
    if slices_per_chunk < 1:
        raise ValueError(f"slices_per_chunk={slices_per_chunk} must be 1 or more")
    nz, height, width, channels = volume.data.shape
    chunks = ((slices_per_chunk,) * (nz // slices_per_chunk) + ((nz % slices_per_chunk,) if nz % slices_per_chunk else ()),
              axis_chunks(height, run.tile, run.overlap, chunk), axis_chunks(width, run.tile, run.overlap, chunk))
    if run.mode is not None and (len(chunks[1]) > 1 or len(chunks[2]) > 1):
        raise ValueError(f"instances={instances!r} needs whole slices per chunk; the slices ({height} x {width}) are "
                         f"cut into {len(chunks[1])} x {len(chunks[2])} chunks: raise chunk to {max(height, width)}")
    layers = _layers(probabilities, run.mode, run.classes)
    tiff = output.suffix.lower() in (".tif", ".tiff")
    store = output.with_name(output.name + ".partial.zarr") if tiff else output
    if tiff:
        _check_tiff_output(output, layers, (nz, height, width), run.classes, overwrite)
    job = _Job(str(model_path.resolve()), str(store.resolve()), chunks,
               tuple(run.tile * (len(c) > 1) for c in chunks[1:]), run.tile, run.overlap, batch_size, run.threshold,
               run.classes, _value_range(volume.data), run.conversion, run.mode, min_size,
               tuple(layer.name for layer in layers))
    settings = {**{k: v for k, v in asdict(job).items() if k not in ("output", "batch_size")},
                "model_modified": os.stat(model_path).st_mtime_ns, "source": str(Path(source).resolve()),
                "source_shape": list(volume.data.shape), "axes": volume.axes}
    settings = json.loads(json.dumps(settings))  # tuples as lists: as the attributes keep them, to compare on resume
    zarr_chunks = (slices_per_chunk, chunks[1][0], chunks[2][0])
    grid = tuple(len(c) for c in chunks)
    _, resumed = stacks.create_output(store, layers, (nz, height, width), zarr_chunks, grid, settings, volume.scale,
                                      volume.unit, overwrite=overwrite and not tiff)
    done = stacks.open_output(store)["done"][...]
    data = volume.data.rechunk(chunks + ((channels,),))
    flags = data.map_overlap(_chunk, depth={0: 0, 1: job.depth[0], 2: job.depth[1], 3: 0}, boundary="none",
                             trim=False, chunks=tuple((1,) * len(c) for c in chunks) + ((1,),), dtype=bool,
                             meta=np.empty((0, 0, 0, 0), bool), job=job)
    todo = [piece for piece, flag in zip(flags.to_delayed().reshape(-1), done.reshape(-1)) if not flag]
    where = _compute(todo, scheduler, flags.name)
    stacks.mark_complete(store)
    written = _write_tiffs(store, output, layers) if tiff else [output]
    skipped = f"; resumed: {done.sum()} chunk(s) were already written" if resumed else ""
    echo(f"wrote {written[0]}: {nz} slice(s) of {height} x {width} in {done.size} chunk(s) on {where}, tile "
         f"{run.tile}, overlap {run.overlap}{skipped}")
    return written


def _check_tiff_output(output: Path, layers: list[stacks.Layer], shape: tuple[int, int, int], classes: int,
                       overwrite: bool) -> None:
    """A TIFF output must be small and, without ``overwrite``, new."""
    size = math.prod(shape) * sum(np.dtype(layer.dtype).itemsize * max(layer.channels, 1) for layer in layers)
    if size > MAX_TIFF_BYTES:
        raise ValueError(f"output={str(output)!r}: the prediction is {size / 1e9:.1f} GB, too large for TIFF stacks "
                         f"(at most {MAX_TIFF_BYTES / 1e9:.1f} GB); write a .zarr folder instead")
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists; pass overwrite=True to replace it, or choose another output")
    partial = output.with_name(output.name + ".partial.zarr")
    if overwrite and partial.exists():
        import shutil

        shutil.rmtree(partial)
