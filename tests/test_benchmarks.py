"""Smoke tests of the benchmarks: each runs end to end at tiny sizes and returns its table.

No timing is asserted (speed depends on the machine); see benchmarks/RESULTS.md for numbers.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage.data import binary_blobs
from skimage.segmentation import find_boundaries

from benchmarks import accuracy, augment, common, live, train
from helpers import data, env

# keras-unet's ImageDataGenerator calls a SciPy name that is deprecated (not our code).
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def parts() -> dict:
    """30 EM-like 64 x 64 slices in the fixed split's layout: blob outlines as membranes."""
    rng = np.random.default_rng(0)
    masks = np.stack([find_boundaries(binary_blobs(64, blob_size_fraction=0.2, rng=i))
                      for i in range(30)]).astype(np.float32)[..., None]
    images = np.clip(0.7 - 0.5 * masks + rng.normal(0, 0.1, masks.shape), 0, 1)
    return data.fixed_split(images.astype(np.float32), masks)


@pytest.mark.skipif(not env.has_tensorflow(), reason="keras-unet's generator needs TensorFlow, which Colab's TPU runtime (CI's tpu stack) lacks")
def test_keras_unet_generator_feeds_keras3():
    x = np.random.default_rng(0).random((4, 32, 32, 1), dtype=np.float32)
    images, masks = next(common.keras_unet_generator(x, x > 0.5, 2, common.original_args()))
    assert images.shape == masks.shape == (2, 32, 32, 1)


@pytest.mark.skipif(not env.has_tensorflow(), reason="keras-unet's generator needs TensorFlow, which Colab's TPU runtime (CI's tpu stack) lacks")
def test_augment_benchmark(parts):
    table = augment.run(data=parts, batch_sizes=(2, 4), images=8, repeats=1, warmup=1)
    assert list(table.columns) == augment.COLUMNS
    assert len(table) == 4 and (table["images"] > 0).all()
    assert (table[["seconds", "images_per_s", "speedup"]] > 0).all().all()
    assert table["speedup"].iloc[0] == 1.0


@pytest.mark.skipif(not env.has_tensorflow(), reason="keras-unet's generator needs TensorFlow, which Colab's TPU runtime (CI's tpu stack) lacks")
def test_train_benchmark(parts):
    table = train.run(data=parts, steps=2, rounds=1, batch_size=2, filters=4)
    assert list(table.columns) == train.COLUMNS
    assert len(table) == 2
    assert (table[["warmup_s", "images_per_s", "speedup"]] > 0).all().all()
    if not (env.accelerator() == "gpu"):  # compile_model's choice on a CPU: no XLA under TF, always jit under JAX
        assert table["jit_compile"].iloc[1] == ("True" if env.backend() == "jax" else "False")


@pytest.mark.skipif(not env.has_tensorflow(), reason="keras-unet's generator needs TensorFlow, which Colab's TPU runtime (CI's tpu stack) lacks")
def test_accuracy_benchmark(parts):
    table = accuracy.run(data=parts, epochs=1, steps=2, batch_size=2, size=32, filters=4,
                         overlap=16)
    assert list(table.columns) == accuracy.COLUMNS
    assert len(table) == 2
    scores = table[accuracy.SCORES].to_numpy(dtype=float)
    assert np.isfinite(scores).all() and (scores >= 0).all() and (scores <= 1).all()
    assert (table["train_s"] > 0).all()


def test_markdown_table():
    import pandas as pd

    text = common.markdown(pd.DataFrame({"a": ["x"], "b": [0.123456]}))
    assert text.splitlines() == ["| a | b |", "|---|---|", "| x | 0.123 |"]


def test_live_benchmark(parts):
    table = live.run(data=parts, filters=4, batch_size=2, quick=True)
    assert list(table.columns) == live.COLUMNS and len(table) == 2
    assert (table[["epoch_s", "view_s", "overhead_pct"]] > 0).all().all()
    np.testing.assert_allclose(table["overhead_pct"], 100 * table["view_s"] / table["epoch_s"], rtol=0.05)


def test_recipe_benchmark(parts, tmp_path):
    from benchmarks import recipe

    results = tmp_path / "recipe.jsonl"
    variants = ("border-weighted BCE + Jaccard", "cosine decay from 1e-3")
    kwargs = dict(data=parts, results=results, seeds=(1,), confirm_seeds=(4,), variants=variants)
    table = recipe.run(quick=True, **kwargs).set_index("variant")
    assert set(variants) | {"today: BCE + Jaccard"} <= set(table.index)
    combined = [name for name in table.index if name.startswith("combined: ")]
    assert len(combined) == 1 and table.loc[combined[0], "seeds"] == 1
    scores = table[recipe.SCORES].to_numpy(dtype=float)
    assert np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all()
    lines = results.read_text().splitlines()
    assert len(lines) == 4  # three variants and the confirmation, one line each
    rows = [json.loads(line) for line in lines]
    assert all(row["protocol"] == recipe.PROTOCOL for row in rows)
    assert all(0 < row[key] < 1 for row in rows for key in ("threshold", "threshold_rand", "threshold_info"))
    assert all(row["v_rand_challenge"] >= 0 for row in rows)
    again = recipe.run(quick=True, **kwargs)  # everything is on record: nothing runs again
    assert len(results.read_text().splitlines()) == 4 and len(again) == len(table)
    # every run's probabilities are kept, so the table can be recomputed without training
    stored = recipe.prediction_path(results, "today: BCE + Jaccard", 1)
    with np.load(stored) as saved:
        assert saved["prob_val"].dtype == np.float16 and saved["prob_hold"].shape == parts["holdout"][1].shape
    first = rows[0]
    with np.load(recipe.prediction_path(results, first["variant"], first["seed"])) as saved:
        probs = {key: saved[key].astype(np.float32) for key in ("prob_val", "prob_hold")}
    expected = recipe.score_run(probs["prob_val"], parts["validation"][1], probs["prob_hold"], parts["holdout"][1])
    old = {**first, "protocol": None, "v_rand": -1.0}  # as if scored by another protocol
    results.write_text("\n".join([json.dumps(old), *lines[1:]]) + "\n")
    rescored = recipe.run(quick=True, rescore=True, **kwargs).set_index("variant")
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(rows) == 4 and rows[0]["protocol"] == recipe.PROTOCOL and "rescored" in rows[0]
    assert rows[0]["v_rand"] == pytest.approx(expected["v_rand"]) and rows[0]["train_s"] == first["train_s"]
    assert rescored.loc[first["variant"], "v_rand"] == pytest.approx(expected["v_rand"], abs=1e-4)


def test_recipe_choice_and_report(tmp_path):
    from benchmarks import recipe

    rows = [{"variant": name, "seed": seed, "iou_membrane": iou, "v_rand": v_rand + 0.01 * seed,
             "v_info": 0.9, "train_s": 60.0}
            for name, iou, v_rand in [("today: BCE + Jaccard", 0.60, 0.80), ("BCE", 0.595, 0.85),
                                      ("BCE + Dice", 0.55, 0.95), ("batch norm", 0.62, 0.79),
                                      ("Adam 1e-4", 0.61, 0.82)]
            for seed in (1, 2, 3)]
    table = recipe.summarise(rows)
    assert table.loc["BCE", "v_rand spread"] == pytest.approx(0.02)
    winners = recipe.choose(table)
    # BCE + Dice has the best V_rand but loses 0.05 IoU; batch norm does not beat today's V_rand
    assert winners == {"loss": "BCE", "learning rate": "Adam 1e-4"}
    assert recipe.combined_recipe(winners) == {**recipe.BASE, "loss": "bce", "learning_rate": 1e-4}
    table.loc["combined: BCE + Adam 1e-4"] = table.loc["BCE"]
    cli = {"iou": 0.63, "dice": 0.77, "v_rand": 0.9, "v_info": 0.95, "threshold": 0.4, "loss": "bce",
           "learning_rate": 1e-3, "train_s": 300.0, "date": "2026-11-26 10:00"}
    report = recipe.write_report(table, winners, "combined: BCE + Adam 1e-4", cli, path=tmp_path / "r.md").read_text()
    assert "- loss: **BCE**" in report and "| held-out V_rand >= 0.90 (3-seed mean) | 0.870 | no |" in report
    assert "trained on slices 0-24: held-out membrane IoU >= 0.62 | 0.630 | yes |" in report


def test_recipe_command_line_defaults(tmp_path):
    from benchmarks import recipe

    row = recipe.cli_defaults(work=tmp_path, quick=True)
    assert row["loss"] == "weighted_bce_jaccard" and row["learning_rate"] == 1e-3
    assert all(0 <= row[key] <= 1 for key in ("iou", "dice", "v_rand", "v_info", "threshold", "threshold_rand",
                                              "threshold_info", "v_rand_challenge"))
    assert row["protocol"] == recipe.PROTOCOL
    assert sorted(p.name for p in (tmp_path / "pred").glob("*.png")) == [f"{i}.png" for i in range(25, 30)]


def test_the_recipe_claims_hold_in_the_record():
    """What the slide "One run cannot decide" and notebook 2 say of the recipe benchmark holds in its record."""
    import json
    from pathlib import Path

    from benchmarks import recipe

    rows = [r for r in recipe._done(recipe.RESULTS) if r.get("budget") == "cpu"]
    if not rows:
        pytest.skip(f"benchmarks/results/recipe.jsonl holds no runs scored by '{recipe.PROTOCOL}': "
                    f"run `python -m benchmarks recipe`")
    table = recipe.summarise(rows)
    base, weighted = table.loc["today: BCE + Jaccard"], table.loc["border-weighted BCE + Jaccard"]
    variants = table.drop(index=[name for name in table.index if name.startswith("combined")])
    losses = table.loc[list(recipe.GROUPS["loss"])]
    # "no change beat BCE + Jaccard's mean V_rand"
    assert variants["v_rand"].idxmax() == "today: BCE + Jaccard"
    # "border weights came within the seeds' spread of it, with a higher IoU and the steadiest V_rand"
    assert base["v_rand"] - weighted["v_rand"] < losses["v_rand spread"].max()
    assert weighted["iou_membrane"] > base["iou_membrane"]
    assert losses["v_rand spread"].idxmin() == "border-weighted BCE + Jaccard"
    # "seeds move V_rand ... more than most recipes differ"
    differences = (variants["v_rand"] - base["v_rand"]).abs().drop("today: BCE + Jaccard")
    assert (differences < losses["v_rand spread"].max()).sum() > len(differences) / 2
    # "a higher IoU is not fewer merged cells: batch normalisation shows it"
    assert variants["iou_membrane"].idxmax() == "batch norm" and table.loc["batch norm", "v_rand"] < base["v_rand"]
    notebook = json.loads((Path(__file__).parents[1] / "notebooks" / "02_unet_further_topics.ipynb").read_text())
    why = " ".join("".join(next(c for c in notebook["cells"] if c["id"] == "b16a0004")["source"]).split())
    assert "No change beat BCE + Jaccard's mean V_rand" in why and "the steadiest V_rand over seeds" in why


def test_checkpoints_benchmark_counts_files_and_plans():
    """The checkpoint sizes (worker K, issue 22): files measured, then bytes written and kept per notebook plan."""
    from benchmarks import checkpoints

    table = checkpoints.run(quick=True).set_index("plan")
    files = table[table["runs"] == "-"]
    assert len(files) == 3 and len(table) == 3 + len(checkpoints.PLANS)
    best = files.loc[files.index.str.startswith("one best.keras"), "kept_bytes"].iloc[0]
    adam = files.loc[files.index.str.startswith("one last.keras (adam)"), "kept_bytes"].iloc[0]
    assert adam > best > 0  # last.keras also holds Adam's moments
    plans = table.loc[list(checkpoints.PLANS)]
    assert (plans["written_bytes"] >= plans["kept_bytes"]).all() and set(plans["within_target"]) <= {"yes", "no"}


def test_volume_benchmark_measures_memory_speed_and_a_two_worker_cluster(tmp_path):
    """Issue 23: peak RSS on A and 8x larger B in fresh processes, throughput per core, and a LocalCluster run."""
    pytest.importorskip("dask")
    pytest.importorskip("zarr")
    pytest.importorskip("distributed")
    from benchmarks import volume

    table = volume.run(quick=True, work=tmp_path)
    assert list(table.columns) == volume.COLUMNS
    memory = table[table["measurement"] == "peak RSS"].set_index(["method", "volume"])
    assert len(memory) == 4 and (memory["peak_rss_gb"] > 0).all() and (memory["seconds"] > 0).all()
    assert memory.loc[(volume.METHODS["volume"], "B"), "slices"] == volume.FACTOR * memory.loc[
        (volume.METHODS["volume"], "A"), "slices"]
    speed = table[table["measurement"] == "throughput"]
    assert len(speed) == 2 and (speed["slices_per_s_per_core"] > 0).all()
    cluster = table[table["measurement"] == "distributed"].iloc[-1]
    assert cluster["identical"] is True and cluster["met"] == "yes"
    assert "max abs difference 0;" in cluster["detail"] and "model loads per worker: 1, 1" in cluster["detail"]
