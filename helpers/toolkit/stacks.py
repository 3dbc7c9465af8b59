"""Volumes in and out: TIFF stacks and Zarr / OME-Zarr arrays as lazy ``(z, y, x, c)`` dask arrays, OME-Zarr output.

A *volume* is anything larger than one 2-D image file: a multi-page TIFF (the ISBI 2012 data is published
as one), a Zarr array, an OME-Zarr image, or a single 2-D image stored in tiles (tiled TIFF, Zarr) too large
to read whole. :func:`open_volume` reads none of the pixels: it returns a :class:`Volume` whose ``data`` is
a dask array that reads a block when it is computed, so a 32 GB stack costs nothing to open.

Axes are read from the file where it says them (OME-Zarr ``multiscales`` axes, ImageJ/OME-TIFF axes) and
otherwise guessed from the shape as for 2-D images (a last axis of 3 or 4 is colour); where the guess
cannot be made (a first axis of 3: three slices or three channels?), ``axes="zyx"`` or ``"cyx"`` says it.

Output (:func:`create_output`) is a Zarr folder of OME-Zarr images (NGFF 0.4 on Zarr format 2, which
ome-zarr-py, the reader of napari's OME-Zarr plugin, opens): ``OUT.zarr/mask``, and where asked
``OUT.zarr/probabilities`` and ``OUT.zarr/instances``; ``OUT.zarr/done`` holds one flag per chunk, set
after the chunk is written, so an interrupted run resumes where it stopped; the root's attributes say
``complete`` only when every chunk is.

Examples
--------
>>> volume = open_volume("isbi_test.ome.zarr")             # doctest: +SKIP
>>> volume.data.shape, volume.axes
((30, 512, 512, 1), 'zyx')
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Volume", "is_volume", "open_volume", "create_output", "open_output", "NGFF_VERSION"]

#: The OME-Zarr (NGFF) version written: 0.4, on Zarr format 2, the version OME-Zarr readers have supported longest.
NGFF_VERSION = "0.4"
#: The key of this toolkit's attributes in an output's root group.
ATTRS_KEY = "unet_workshop"
#: A single tiled TIFF page with more pixels than this (8192 x 8192) is read block by block, as a volume.
BIG_2D = 8192 * 8192
#: Chunk files in nested folders (z/y/x), as NGFF 0.4 recommends; fewer files per folder for big volumes.
_NESTED = {"name": "v2", "separator": "/"}
_ZARR_MARKERS = ("zarr.json", ".zarray", ".zgroup")
_AXES_HELP = ("give the axes with axes= (command line: --axes), one letter per axis in the file's order: z (slices), "
              "y, x, c (channels), t (time, segmented frame by frame), e.g. zyx, zyxc, czyx")


def _dask():
    try:
        import dask.array as da
        import zarr  # noqa: F401  (checked here so the error names both)
    except ImportError as error:
        raise ImportError(f"volumes need dask and zarr ({error.name} is missing): pip install 'dask[array]' "
                          "distributed zarr") from error
    return da


@dataclass(frozen=True)
class Volume:
    """A lazily read volume.

    Attributes: ``path``; ``data``, a dask array ``(z, y, x, c)`` (z = 1 for a 2-D image, c = 1 for gray);
    ``axes``, the source's own axes in its order (e.g. ``"zyx"``, ``"tczyx"``); ``scale``, the ``(z, y, x)``
    pixel size from OME metadata (1.0 where unknown) and its ``unit`` (``None`` where unknown).
    """

    path: Path
    data: Any
    axes: str
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    unit: str | None = None

    def slices(self):
        """Yield ``("z0000", (y, x, c) array)`` one slice at a time (memory: one slice).

        Examples
        --------
        >>> name, image = next(open_volume("stack.tif").slices())   # doctest: +SKIP
        """
        width = max(4, len(str(self.data.shape[0] - 1)))
        for z in range(self.data.shape[0]):
            yield f"z{z:0{width}d}", np.asarray(self.data[z].compute())


def is_volume(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a volume (Zarr folder, multi-page or huge tiled TIFF), not a 2-D image or a folder of them.

    Examples
    --------
    >>> is_volume("data/isbi2012/test")        # a folder of PNG slices                 # doctest: +SKIP
    False
    """
    path = Path(path)
    if path.is_dir():
        return path.suffix.lower() == ".zarr" or any((path / marker).is_file() for marker in _ZARR_MARKERS)
    if path.suffix.lower() in (".tif", ".tiff") and path.is_file():
        import tifffile

        try:
            with tifffile.TiffFile(path) as tif:
                page, plane = tif.pages.first, len(tif.series[0].shape) - ("S" in tif.series[0].axes)
                return len(tif.pages) > 1 or plane > 2 or (page.is_tiled and page.imagelength * page.imagewidth > BIG_2D)
        except Exception:  # an unreadable file is reported by whoever reads it
            return False
    return False


# ---------------------------------------------------------------------------------------------
# reading


def _ome_metadata(attrs: dict) -> dict | None:
    """The first ``multiscales`` entry of OME-Zarr attributes (NGFF 0.4: top level, 0.5: under ``ome``)."""
    multiscales = attrs.get("multiscales") or (attrs.get("ome") or {}).get("multiscales")
    return multiscales[0] if multiscales else None


def _open_zarr(path: Path) -> tuple[Any, str | None, dict[str, float], str | None]:
    """The full-resolution array of a Zarr array or OME-Zarr image, its axes, scale per axis and unit."""
    import zarr

    da = _dask()
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such Zarr folder. Check the path (a folder ending in .zarr).")
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as error:  # zarr raises several types for a folder that is not Zarr
        raise ValueError(f"{path} is not a readable Zarr array or group ({error}); point at a .zarr folder, e.g. "
                         "written by ome-zarr, napari or this toolkit") from error
    if isinstance(node, zarr.Array):
        return da.from_zarr(node), None, {}, None
    ome = _ome_metadata(dict(node.attrs))
    if ome is None:
        arrays = sorted(name for name, _ in node.arrays())
        raise ValueError(f"{path} is a Zarr group without OME-Zarr metadata; point at one of its arrays instead "
                         f"({', '.join(str(path / name) for name in arrays) or 'it holds none'})")
    dataset = ome["datasets"][0]
    axes = [axis["name"] if isinstance(axis, dict) else axis for axis in ome.get("axes", [])]
    units = {axis["name"]: axis.get("unit") for axis in ome.get("axes", []) if isinstance(axis, dict)}
    scale = next((t["scale"] for t in dataset.get("coordinateTransformations", []) if t.get("type") == "scale"), [])
    array = node[dataset["path"]]
    return (da.from_zarr(array), "".join(axes).lower() or None, dict(zip("".join(axes).lower(), map(float, scale))),
            units.get("x"))


def _tiff_block(path: str, block_info=None) -> np.ndarray:
    """One block of a TIFF's first series, read through tifffile's Zarr view (whole pages or tiles)."""
    import tifffile
    import zarr

    location = block_info[None]["array-location"]
    with tifffile.TiffFile(path) as tif:
        view = zarr.open(tif.series[0].aszarr(), mode="r")
        return np.asarray(view[tuple(slice(start, stop) for start, stop in location)])


def _open_tiff(path: Path) -> tuple[Any, str | None, dict[str, float], str | None]:
    """A TIFF's first series as a dask array (one block per page or per 1024 x 1024 region) and its axes."""
    import tifffile

    da = _dask()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such TIFF file. Check the path.")
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape, dtype, tiff_axes = series.shape, series.dtype, series.axes
    except Exception as error:  # tifffile raises many types for a corrupt file
        raise ValueError(f"Cannot read {path}: {error}. The file may be corrupt or not a TIFF; check it opens in "
                         "Fiji, or write it again") from error
    known = {"Z": "z", "T": "t", "C": "c", "S": "c", "Y": "y", "X": "x"}
    axes = "".join(known.get(letter, "?") for letter in tiff_axes)
    chunks = tuple(min(size, 1024) if letter in "YX" else (size if letter in "CS" else 1)
                   for letter, size in zip(tiff_axes, shape))
    data = da.map_blocks(_tiff_block, str(path), chunks=da.core.normalize_chunks(chunks, shape), dtype=dtype,
                         meta=np.empty((0,) * len(shape), dtype))
    return data, None if "?" in axes else axes, {}, None


def _guess_axes(shape: tuple[int, ...], hint: str | None, path: Path) -> str:
    """Axes of an array whose file does not name them all: the hint's known letters, else a guess from the shape."""
    if hint is not None and "?" not in hint:
        return hint
    if len(shape) == 2:
        return "yx"
    if len(shape) == 3 and shape[2] in (3, 4) and shape[0] > 4:
        return "yxc"
    if len(shape) == 3 and shape[0] > 4:
        return "zyx"
    if len(shape) == 4 and shape[3] in (3, 4) and shape[1] > 4:
        return "zyxc"
    raise ValueError(f"{path}: cannot tell the axes of an array of shape {shape} apart (slices or channels?); "
                     f"{_AXES_HELP}")


def _to_zyxc(data, axes: str, path: Path):
    """``data`` in the order ``(z, y, x, c)``: a t of size 1 dropped (else used as z), z and c added as size 1."""
    shape = dict(zip(axes, data.shape))
    if len(set(axes)) != len(axes) or not set(axes) <= set("tzcyx") or not {"y", "x"} <= set(axes) \
            or len(axes) != data.ndim:
        raise ValueError(f"{path}: axes={axes!r} do not fit its shape {data.shape}; {_AXES_HELP}")
    if "t" in axes and shape["t"] > 1 and shape.get("z", 1) > 1:
        raise ValueError(f"{path} has {shape['t']} time points of {shape['z']} slices; the 2-D U-Net segments one "
                         f"series of slices: save one time point (or one z position) per file")
    order = axes.replace("t", "z") if shape.get("t", 1) > 1 else axes
    if "t" in order:
        data, order = data[tuple(0 if axis == "t" else slice(None) for axis in order)], order.replace("t", "")
    for axis in "zc":
        if axis not in order:
            data, order = data[..., None], order + axis
    return data.transpose([order.index(axis) for axis in "zyxc"])


def open_volume(path: str | os.PathLike, axes: str | None = None) -> Volume:
    """Open a TIFF stack, Zarr array or OME-Zarr image lazily as ``(z, y, x, c)``.

    Parameters
    ----------
    path
        A ``.tif``/``.tiff`` file (multi-page, or one tiled page), a Zarr array folder, or an OME-Zarr image
        folder (its full-resolution level is read).
    axes
        The source's axes in its own order, from ``t``, ``z``, ``c``, ``y``, ``x`` (e.g. ``"zyx"``, ``"czyx"``),
        where its file does not say them; overrides what the file says.

    Returns
    -------
    Volume

    Raises
    ------
    FileNotFoundError, ValueError
        Missing or unreadable file; axes that the file does not say and the shape does not tell, or that do
        not fit the shape.

    Examples
    --------
    >>> open_volume("train-volume.tif").data.shape                # doctest: +SKIP
    (30, 512, 512, 1)
    """
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        data, read_axes, scale, unit = _open_tiff(path)
    elif path.is_dir() or path.suffix.lower() == ".zarr":
        data, read_axes, scale, unit = _open_zarr(path)
    else:
        raise ValueError(f"{path} is neither a TIFF file nor a Zarr folder; volumes are .tif/.tiff stacks or .zarr "
                         "folders (a folder of 2-D images is read as images, not as a volume)")
    if axes is not None:
        axes = axes.lower()
        if len(axes) != data.ndim:
            raise ValueError(f"axes={axes!r} names {len(axes)} axes but {path} has {data.ndim} (shape {data.shape}); "
                             f"{_AXES_HELP}")
    source_axes = axes or _guess_axes(data.shape, read_axes, path)
    return Volume(path, _to_zyxc(data, source_axes, path), source_axes,
                  tuple(float(scale.get(axis, 1.0)) for axis in "zyx"), unit)


# ---------------------------------------------------------------------------------------------
# writing


def _multiscales(name: str, axes: str, scale: tuple[float, ...], unit: str | None) -> dict:
    """NGFF 0.4 ``multiscales`` attributes of a one-level image with these axes."""
    kinds = {"c": "channel", "t": "time"}
    axis_list = [{"name": axis, "type": kinds.get(axis, "space"), **({"unit": unit} if unit and axis in "zyx" else {})}
                 for axis in axes]
    return {"multiscales": [{"version": NGFF_VERSION, "name": name, "axes": axis_list,
                             "datasets": [{"path": "0", "coordinateTransformations": [
                                 {"type": "scale", "scale": [float(s) for s in scale]}]}]}]}


@dataclass(frozen=True)
class Layer:
    """One output image: its name (``mask``, ``probabilities``, ``instances``), dtype and channel count (0: no c axis)."""

    name: str
    dtype: str
    channels: int = 0


def _describe(path: Path, settings: dict) -> str:
    state = "a finished" if settings.get("complete") else "an unfinished"
    return f"{path} holds {state} prediction"


def _check_existing(path: Path, settings: dict, overwrite: bool) -> bool:
    """True to resume ``path``; False to create it (removing an old output with ``overwrite``)."""
    import zarr

    if not path.exists():
        return False
    try:
        found = dict(zarr.open_group(str(path), mode="r").attrs).get(ATTRS_KEY)
    except Exception:
        found = None
    if found is None:
        raise FileExistsError(f"{path} exists and is not an output of this toolkit; choose another output (it is "
                              "never removed, even with overwrite)")
    if overwrite:
        shutil.rmtree(path)
        return False
    if found.get("complete"):
        raise FileExistsError(f"{_describe(path, found)}; pass overwrite=True to replace it, or choose another output")
    differs = sorted(key for key in set(settings) | set(found.get("settings", {}))
                     if settings.get(key) != found.get("settings", {}).get(key))
    if differs:
        raise FileExistsError(f"{_describe(path, found)} started with other settings ({', '.join(differs)}); run the "
                              f"same command to resume it, or pass overwrite=True to start again")
    return True


def create_output(path: str | os.PathLike, layers: list[Layer], shape: tuple[int, int, int],
                  chunks: tuple[int, int, int], grid: tuple[int, int, int], settings: dict,
                  scale: tuple[float, float, float] = (1.0, 1.0, 1.0), unit: str | None = None,
                  overwrite: bool = False) -> tuple[Path, bool]:
    """Create (or reopen, to resume) a prediction output ``path`` (a ``.zarr`` folder).

    Parameters
    ----------
    path
        The ``.zarr`` folder to write.
    layers
        The images to write, each ``(z, y, x)``, or ``(c, z, y, x)`` with channels.
    shape, chunks, grid
        The volume's ``(z, y, x)`` size, its chunk size and the number of chunks per axis.
    settings
        What the prediction depends on (model, input, tile, ...): a run resumes only with the same.
    scale, unit
        Pixel size ``(z, y, x)`` and its unit, for the OME-Zarr metadata.
    overwrite
        Replace a finished (or differently started) output of this toolkit.

    Returns
    -------
    (path, resumed)
        ``resumed`` is True when an unfinished output with the same settings is continued.

    Raises
    ------
    FileExistsError
        ``path`` exists and is finished, started with other settings, or not this toolkit's (never removed).
    PermissionError
        ``path``'s folder is not writable.

    Examples
    --------
    >>> create_output("out.zarr", [Layer("mask", "uint8")], (30, 512, 512), (1, 512, 512), (30, 1, 1),
    ...               {"tile": 128})                             # doctest: +SKIP
    (PosixPath('out.zarr'), False)
    """
    import zarr

    path = Path(path)
    if path.suffix.lower() != ".zarr":
        raise ValueError(f"output={str(path)!r}: a volume's output is a Zarr folder ending in .zarr (or a .tif stack "
                         "when small); e.g. prediction.zarr")
    parent = path.resolve().parent
    if not (parent.is_dir() and os.access(parent, os.W_OK)):
        raise PermissionError(f"output={str(path)!r}: cannot write into {parent} (missing or read-only); choose a "
                              "writable folder")
    if _check_existing(path, settings, overwrite):
        return path, True
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    for layer in layers:
        group = root.create_group(layer.name)
        channel = (layer.channels,) if layer.channels else ()
        group.create_array("0", shape=channel + tuple(shape), chunks=channel + tuple(chunks), dtype=layer.dtype,
                           fill_value=0, chunk_key_encoding=_NESTED)
        group.attrs.update(_multiscales(layer.name, ("c" if channel else "") + "zyx",
                                        ((1.0,) if channel else ()) + tuple(scale), unit))
    root.create_array("done", shape=grid, chunks=(1, 1, 1), dtype=bool, fill_value=False, chunk_key_encoding=_NESTED)
    root.attrs[ATTRS_KEY] = {"complete": False, "settings": settings, "layers": [layer.name for layer in layers]}
    return path, False


def open_output(path: str | os.PathLike):
    """The Zarr group of an output, writable (for the workers that fill it)."""
    import zarr

    return zarr.open_group(str(path), mode="r+")


def mark_complete(path: str | os.PathLike) -> None:
    """Record that every chunk of ``path`` is written (checked against its ``done`` flags)."""
    root = open_output(path)
    done = root["done"][...]
    if not done.all():
        raise RuntimeError(f"{path}: {int((~done).sum())} chunk(s) not written yet; run again to finish")
    info = dict(root.attrs[ATTRS_KEY])
    root.attrs[ATTRS_KEY] = {**info, "complete": True}
