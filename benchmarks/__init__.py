"""Benchmarks: the ``helpers`` toolkit against the original workshop recipe, side by side.

Each benchmark runs both recipes in the same process on the same machine and returns a
``pandas.DataFrame``; ``python -m benchmarks`` prints them as tables (see
``benchmarks/RESULTS.md`` for the numbers measured and the machine they were measured on).

``augment``
    images per second of :func:`helpers.augment.get_augmented` (tf.data) against keras-unet's
    ``get_augmented`` (two ``ImageDataGenerator`` flows zipped), same arrays and parameters.
``train``
    training images per second of the same ``custom_unet``: keras-unet generator with Keras'
    default compile (``jit_compile="auto"``) against ``get_augmented`` with
    :func:`helpers.train.compile_model` (``jit_compile=False`` on a CPU).
``accuracy``
    held-out scores at an equal training budget: 128-px downscale + ImageDataGenerator + BCE
    (the original) against full-resolution random crops + BCE-Jaccard + tiled prediction.
``recipe``
    which training recipe (loss, border weights, batch norm, initialisation, learning rate) gives
    the best held-out V_rand at the ``cpu`` profile's budget, over several seeds; not run by
    default (about 75 minutes on 2 CPU cores): ``python -m benchmarks recipe``.
``live``
    the per-epoch cost of the live training view (:class:`helpers.live.LiveView`) against the
    ``cpu`` profile's epochs of both notebooks.
``checkpoints``
    the bytes of the ``full`` profile's checkpoints (``best.keras``, ``last.keras``) and what each
    notebook's training runs write to Drive and keep there under :mod:`helpers.train`'s policy.
``volume``
    :func:`helpers.toolkit.volumes.predict_volume` against the in-memory ``predict_tiled``: peak memory on a
    volume and one 8x larger (each in a fresh process), slices per second per core, and the same output
    from a two-worker ``dask.distributed`` cluster (about 8 minutes on 2 CPU cores).

Examples
--------
``python -m benchmarks``                  all three, full size (tens of minutes on a laptop CPU)
``python -m benchmarks augment --quick``  one benchmark, tiny sizes (a smoke test)
"""

BENCHMARKS = ("augment", "train", "accuracy", "live", "recipe", "checkpoints", "volume")
#: What ``python -m benchmarks`` runs when no name is given (the recipe benchmark takes too long).
DEFAULT = ("augment", "train", "accuracy", "live", "volume")
