"""Researcher toolkit: the tools for using the workshop U-Net on your own data.

The workshop core (``helpers`` top level) is what notebooks 1 and 2 teach.
The toolkit builds on it for work after the workshop and never the other
way round: the core does not import the toolkit.

Modules
-------
cli
    The ``python -m helpers`` command line (train, predict, evaluate,
    export, run).
workflow
    Folder workflows behind the commands: train on an image/mask folder,
    segment a folder, score predictions against masks.
folders, formats
    Loading image/mask folders and reading/writing label files, class
    masks and JSON.
instances, scoring, classes
    Instance labels, per-class/per-instance score tables and K-class
    losses and metrics.
export, weight_formats
    Packaging a trained model for the BioImage Model Zoo (Fiji/deepImageJ, ilastik, napari),
    its README from the template ``export_readme.md``.
stacks, volumes
    Volumes: TIFF stacks, Zarr and OME-Zarr read lazily as dask arrays, segmented chunk by chunk
    on Dask (locally or on a ``dask.distributed`` cluster) into OME-Zarr, resumable.
runner
    Executing the workshop notebooks headless.

Extra dependencies
------------------
``export`` needs ``bioimageio.core`` (which brings ``bioimageio.spec``); ``volumes`` needs
``dask[array]``, ``distributed`` and ``zarr`` (the extras of the same names in ``pyproject.toml``;
all are in the requirements files). Everything else uses the workshop's own requirements.
"""
