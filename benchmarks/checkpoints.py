"""What the checkpoints of the ``full`` profile write to Drive and keep there, per notebook.

Measures the files :mod:`helpers.train` writes for the full profile's model (``models.custom_unet``, 64
filters, no batch norm, about 31 million parameters): ``best.keras`` (weights and architecture,
:func:`helpers.train.save_model`) and ``last.keras`` (``model.save``: weights, Adam's two moments or SGD's
momentum, the compile settings). With them it estimates the bytes written and kept per notebook under the
checkpoint policy: a run with ``run_dir`` writes ``best.keras`` (if it improved), ``last.keras`` (unless
``resume_state=False``) and its ``history.csv`` rows together, at most every ``save_every_minutes`` (default
:data:`helpers.train.SAVE_EVERY_MINUTES`) and at the end, so a run writes them ``1 + floor(minutes / 5)``
times at most. Run minutes on a Colab T4 are estimated as the README does: the H200's 7 ms per step scaled
by tensor-core peak (x 15.2); ``history.csv`` (a few kB) is left out.

The runs assumed (full profile, read from the notebooks' cells on 2026-12-05): notebook 1 trains twice
(20 x 100 steps) with ``model.fit`` and ``train.callbacks()`` without a run folder, then saves each model with
``model.save``; notebook 2 (being restructured) trains ``weighted_bce_jaccard`` (12 x 100 steps, resumable)
and the comparisons ``bce_jaccard`` (Adam) and ``sgd`` (SGD, momentum 0.99), 12 x 100 steps each, through
``train.fit(..., run_dir=...)``.

Examples
--------
>>> from benchmarks import checkpoints
>>> checkpoints.run(quick=True)[["plan", "written_bytes", "kept_bytes"]]   # doctest: +SKIP
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pandas as pd

COLUMNS = ["plan", "runs", "writes_per_run", "written_bytes", "kept_bytes", "within_target"]
#: The issue's targets for the full profile, per notebook (decimal units: 1 GB = 10**9 bytes).
WRITTEN_TARGET, KEPT_TARGET = 1.5e9, 1e9
T4_MS_PER_STEP = 7 * 15.2
#: Per plan, its runs: (name, optimizer, training steps, what the run writes).
PLANS = {
    "notebook 1 before: model.save twice": [
        ("augmented", "adam", 20 * 100, "model.save"), ("no augmentation", "adam", 20 * 100, "model.save")],
    "notebook 1 now: train.save_model twice": [
        ("augmented", "adam", 20 * 100, "save_model"), ("no augmentation", "adam", 20 * 100, "save_model")],
    "notebook 2 if every run kept its state to resume": [
        ("weighted_bce_jaccard", "adam", 1200, "resumable"), ("bce_jaccard", "adam", 1200, "resumable"),
        ("sgd", "sgd", 1200, "resumable")],
    "notebook 2 now: comparisons with resume_state=False": [
        ("weighted_bce_jaccard", "adam", 1200, "resumable"), ("bce_jaccard", "adam", 1200, "best only"),
        ("sgd", "sgd", 1200, "best only")],
    "notebook 2 before: best and last every epoch (12 epochs, upper bound)": [
        ("weighted_bce_jaccard", "adam", 1200, "every epoch"), ("bce_jaccard", "adam", 1200, "every epoch"),
        ("sgd", "sgd", 1200, "every epoch")],
}


def file_sizes(filters: int = 64) -> dict[str, int]:
    """Bytes of ``best.keras`` and of ``last.keras`` after Adam and after SGD, for ``custom_unet(filters=...)``."""
    from helpers import models, train

    sizes = {}
    with tempfile.TemporaryDirectory() as folder:
        for optimizer in ("adam", "sgd"):
            model = train.compile_model(lambda: models.custom_unet((None, None, 1), filters=filters, dropout=0.2,
                                                                   use_batch_norm=False),
                                        loss="binary_crossentropy", optimizer=optimizer, seed=0)
            model.optimizer.build(model.trainable_variables)  # the moments a trained model carries
            model.save(Path(folder) / f"last_{optimizer}.keras")
            sizes[f"last.keras ({optimizer})"] = (Path(folder) / f"last_{optimizer}.keras").stat().st_size
            if optimizer == "adam":
                sizes["best.keras"] = train.save_model(model, Path(folder) / "best.keras").stat().st_size
                sizes["parameters"] = model.count_params()
    return sizes


def _run_bytes(sizes: dict[str, int], optimizer: str, steps: int, writes: str) -> tuple[int, int, int]:
    """Writes, bytes written and bytes kept by one run."""
    from helpers.train import SAVE_EVERY_MINUTES

    best, last = sizes["best.keras"], sizes[f"last.keras ({optimizer})"]
    saves = 1 + math.floor(steps * T4_MS_PER_STEP / 60_000 / SAVE_EVERY_MINUTES)
    if writes == "every epoch":  # before: best.keras was a full model.save too
        return 12, 12 * 2 * last, 2 * last
    one = {"model.save": (last, last), "save_model": (best, best), "resumable": (best + last, best + last),
           "best only": (best, best)}[writes]
    saves = 1 if writes in ("model.save", "save_model") else saves
    return saves, saves * one[0], one[1]


def run(quick: bool = False) -> pd.DataFrame:
    """The measured file sizes, then per plan the bytes written to and kept on Drive.

    Parameters
    ----------
    quick : bool
        A 4-filter model (a smoke test: the numbers mean nothing).

    Returns
    -------
    pandas.DataFrame
        One row per file (written = kept = its size), then one per plan of :data:`PLANS`.
    """
    sizes = file_sizes(4 if quick else 64)
    rows = [{"plan": f"one {name}, {sizes['parameters']:,} parameters", "runs": "-", "writes_per_run": 1,
             "written_bytes": size, "kept_bytes": size, "within_target": ""}
            for name, size in sizes.items() if name != "parameters"]
    for plan, runs in PLANS.items():
        counted = [_run_bytes(sizes, optimizer, steps, writes) for _, optimizer, steps, writes in runs]
        written, kept = sum(c[1] for c in counted), sum(c[2] for c in counted)
        rows.append({"plan": plan, "runs": ", ".join(f"{name} ({writes})" for name, _, _, writes in runs),
                     "writes_per_run": "/".join(str(c[0]) for c in counted), "written_bytes": written,
                     "kept_bytes": kept, "within_target": "yes" if written <= WRITTEN_TARGET and kept <= KEPT_TARGET
                     else "no"})
    return pd.DataFrame(rows, columns=COLUMNS)
