"""Which training recipe merges fewest cells: one factor at a time, several seeds each.

Every run trains notebook 2's ``cpu`` recipe (keras-unet ``custom_unet``, 16 filters, 4 levels,
spatial dropout 0.2, no batch norm; random 128-px crops of the full-resolution slices with
:data:`helpers.augment.DEFAULT_ARGS`; 10 epochs x 30 steps of 5 tiles; Adam 1e-3; BCE + Jaccard)
on the fixed split's 20 training slices, with **one factor changed**:

* loss: BCE, BCE + Jaccard (today), BCE + Dice, border-weighted BCE, border-weighted BCE +
  Jaccard (the U-Net paper's weight map, :mod:`helpers.weights`);
* batch normalisation;
* weight initialisation: Glorot-uniform (Keras' default) instead of ``custom_unet``'s He-normal;
* learning rate: Adam 1e-4, or 1e-3 with cosine decay to 0 over the run.

Each variant runs with seeds 1, 2, 3 (weights, dropout, crops and transforms). The threshold is
chosen on the 5 validation slices (20-24); the scores are the held-out slices' (25-29) means, at
512 x 512, predicted with overlapping blended 128-px tiles (overlap 32). The final weights are
scored (no checkpoint is picked, so no choice leans on validation loss, which differs by loss).

Then the winners are combined: from each group (loss, normalisation, initialisation, learning
rate) the variant with the best 3-seed mean V_rand, if it beats today's recipe without losing
more than 0.01 of mean membrane IoU; the combination is confirmed with its own seeds 4, 5, 6.

Every run is appended to ``benchmarks/results/recipe.jsonl`` as soon as it ends, and runs
already there are skipped, so an interrupted benchmark resumes where it stopped.

Examples
--------
``python -m benchmarks recipe``            the whole benchmark (about 75 minutes on 2 CPU cores)
``python -m benchmarks recipe --quick``    tiny sizes, one seed: checks that every variant runs
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks import common

RESULTS = Path(__file__).parent / "results" / "recipe.jsonl"
REPORT = Path(__file__).parent / "RESULTS-recipe.md"
SCORES = ["iou_membrane", "v_rand", "v_info"]

#: Today's recipe (notebook 2's ``cpu`` profile, main model).
BASE: dict[str, Any] = dict(loss="bce_jaccard", batch_norm=False, init="he_normal", learning_rate=1e-3,
                            schedule="constant")
#: One factor changed from :data:`BASE`, by group.
VARIANTS: dict[str, dict[str, Any]] = {
    "today: BCE + Jaccard": {},
    "BCE": dict(loss="bce"),
    "BCE + Dice": dict(loss="bce_dice"),
    "border-weighted BCE": dict(loss="weighted_bce"),
    "border-weighted BCE + Jaccard": dict(loss="weighted_bce_jaccard"),
    "batch norm": dict(batch_norm=True),
    "Glorot-uniform init": dict(init="glorot_uniform"),
    "Adam 1e-4": dict(learning_rate=1e-4),
    "cosine decay from 1e-3": dict(schedule="cosine"),
}
GROUPS = {"loss": ("today: BCE + Jaccard", "BCE", "BCE + Dice", "border-weighted BCE",
                   "border-weighted BCE + Jaccard"),
          "normalisation": ("batch norm",), "initialisation": ("Glorot-uniform init",),
          "learning rate": ("Adam 1e-4", "cosine decay from 1e-3")}
SEEDS = (1, 2, 3)
CONFIRM_SEEDS = (4, 5, 6)
#: The ``cpu`` profile's budget and sizes (notebook 2).
BUDGET: dict[str, Any] = dict(epochs=10, steps=30, batch_size=5, tile=128, overlap=32, filters=16)
QUICK_BUDGET: dict[str, Any] = dict(epochs=1, steps=2, batch_size=2, tile=32, overlap=8, filters=4)
IOU_TOLERANCE = 0.01
CLI_VARIANT = "command line defaults, slices 0-24"


def _reinitialise(model, seed: int) -> None:
    """Glorot-uniform kernels for every convolution (``custom_unet`` hard-codes He-normal)."""
    import keras

    for index, layer in enumerate(model.layers):
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
            init = keras.initializers.GlorotUniform(seed=seed * 1000 + index)
            layer.kernel.assign(init(layer.kernel.shape))


def train_and_score(parts: dict, recipe: dict[str, Any], seed: int, budget: dict[str, Any]) -> dict[str, Any]:
    """Train one recipe with one seed and score it (threshold on validation, scores held out)."""
    import keras

    from helpers import augment, evaluate, losses, models, tiles, train, weights

    x, y = parts["train"]
    total_steps = budget["epochs"] * budget["steps"]

    def build():
        model = models.custom_unet((None, None, x.shape[-1]), filters=budget["filters"], dropout=0.2,
                                   use_batch_norm=recipe["batch_norm"])
        if recipe["init"] == "glorot_uniform":
            _reinitialise(model, seed)
        return model

    rate = recipe["learning_rate"]
    if recipe["schedule"] == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(rate, decay_steps=total_steps)
    model = train.compile_model(build, loss=losses.by_name(recipe["loss"]),
                                optimizer=keras.optimizers.Adam(rate), seed=seed)
    pixel_weights = weights.weight_maps(y) if recipe["loss"] in losses.WEIGHTED_LOSSES else None
    dataset = augment.get_augmented(x, y, batch_size=budget["batch_size"], crop_size=budget["tile"],
                                    seed=seed, weights=pixel_weights)
    start = time.perf_counter()
    model.fit(dataset, epochs=budget["epochs"], steps_per_epoch=budget["steps"], shuffle=False, verbose=0)
    train_s = time.perf_counter() - start

    def predict(images: np.ndarray) -> np.ndarray:
        return tiles.predict_tiled(model, images, tile=budget["tile"], overlap=budget["overlap"],
                                   batch_size=8)

    (x_val, y_val), (x_hold, y_hold) = parts["validation"], parts["holdout"]
    threshold = evaluate.choose_threshold(predict(x_val), y_val)
    table = evaluate.evaluate_predictions(predict(x_hold), y_hold, threshold=threshold)
    keras.backend.clear_session()
    return {"threshold": threshold, **{k: float(table.loc["mean", k]) for k in SCORES},
            "train_s": train_s}


def _done(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _run_all(parts: dict, plan: list[tuple[str, dict[str, Any], int]], budget: dict[str, Any],
             path: Path | None, label: str) -> list[dict[str, Any]]:
    """Run every (name, recipe, seed) of ``plan`` not yet in ``path``; append each result there."""
    wanted = {(name, seed) for name, _, seed in plan}
    rows = [r for r in _done(path) if r.get("budget") == label and (r["variant"], r["seed"]) in wanted] if path else []
    seen = {(r["variant"], r["seed"]) for r in rows}
    for name, recipe, seed in plan:
        if (name, seed) in seen:
            continue
        start = time.perf_counter()
        row = {"variant": name, "seed": seed, **recipe, "budget": label,
               **train_and_score(parts, recipe, seed, budget),
               "load": common.load_average()[0], "date": time.strftime("%Y-%m-%d %H:%M")}
        row["run_s"] = time.perf_counter() - start
        rows.append(row)
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
        print(f"  {name} seed {seed}: IoU {row['iou_membrane']:.3f} V_rand {row['v_rand']:.3f} "
              f"V_info {row['v_info']:.3f} ({row['run_s']:.0f} s)", flush=True)
    return rows


def summarise(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Per variant: seeds, mean and spread (max - min) of each score, mean training seconds.

    Examples
    --------
    >>> rows = [{"variant": "a", "seed": s, "iou_membrane": 0.5, "v_rand": v, "v_info": 0.9,
    ...          "train_s": 60.0} for s, v in [(1, 0.8), (2, 0.9)]]
    >>> summarise(rows).loc["a", ["seeds", "v_rand", "v_rand spread"]].tolist()
    [2, 0.85, 0.1]
    """
    frame = pd.DataFrame(rows)
    table = frame.groupby("variant", sort=False).agg(
        seeds=("seed", "size"),
        **{score: (score, "mean") for score in SCORES},
        **{f"{score} spread": (score, lambda v: float(v.max() - v.min())) for score in SCORES},
        train_s=("train_s", "mean"))
    return table.round(4)


def choose(table: pd.DataFrame, base: str = "today: BCE + Jaccard") -> dict[str, str]:
    """Each group's winner: best mean V_rand, if above today's and within 0.01 of its mean IoU.

    Examples
    --------
    >>> t = pd.DataFrame({"v_rand": [0.8, 0.9, 0.95], "iou_membrane": [0.6, 0.6, 0.5]},
    ...                  index=["today: BCE + Jaccard", "BCE", "BCE + Dice"])
    >>> choose(t)["loss"]
    'BCE'
    """
    winners = {}
    for group, names in GROUPS.items():
        candidates = [n for n in names if n in table.index and n != base
                      and table.loc[n, "v_rand"] > table.loc[base, "v_rand"]
                      and table.loc[n, "iou_membrane"] >= table.loc[base, "iou_membrane"] - IOU_TOLERANCE]
        if candidates:
            winners[group] = max(candidates, key=lambda n: table.loc[n, "v_rand"])
    return winners


def combined_recipe(winners: dict[str, str]) -> dict[str, Any]:
    """:data:`BASE` with every winner's change applied."""
    recipe = dict(BASE)
    for name in winners.values():
        recipe.update(VARIANTS[name])
    return recipe


def run(quick: bool = False, data: dict | None = None, results: Path | None = None,
        seeds: tuple[int, ...] | None = None, confirm_seeds: tuple[int, ...] | None = None,
        variants: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Run every variant with every seed, combine the winners, confirm; return the summary.

    Parameters
    ----------
    quick : bool
        Tiny budget, 64-px slices and one seed (two for the confirmation): checks that every
        variant runs; the numbers mean nothing and nothing is written unless ``results`` is given.
    data : dict, optional
        :func:`helpers.data.fixed_split` parts (default: the ISBI slices, 512 px; 64 px if quick).
    results : Path, optional
        JSON-lines file of finished runs (default :data:`RESULTS`, or none if quick).
    seeds, confirm_seeds : tuple of int, optional
        Override :data:`SEEDS` and :data:`CONFIRM_SEEDS`.
    variants : tuple of str, optional
        A subset of :data:`VARIANTS` (default all; today's recipe always runs).

    Returns
    -------
    pandas.DataFrame
        :func:`summarise` of every variant plus ``"combined: ..."`` (its confirmation seeds), one
        row each, the variant's name in column ``variant``.
    """
    budget, label = (QUICK_BUDGET, "quick") if quick else (BUDGET, "cpu")
    if data is None:
        data = common.load_split(size=64 if quick else None)
    if results is None and not quick:
        results = RESULTS
    seeds = seeds or ((1,) if quick else SEEDS)
    confirm_seeds = confirm_seeds or ((4, 5) if quick else CONFIRM_SEEDS)
    names = [n for n in VARIANTS if variants is None or n in variants or n == "today: BCE + Jaccard"]
    plan = [(name, {**BASE, **VARIANTS[name]}, seed) for seed in seeds for name in names]
    rows = _run_all(data, plan, budget, results, label)
    table = summarise(rows)
    winners = choose(table)
    name = "combined: " + (" + ".join(winners.values()) if winners else "today's recipe")
    confirm = _run_all(data, [(name, combined_recipe(winners), s) for s in confirm_seeds], budget,
                       results, label)
    table = summarise([*rows, *confirm])
    if results == RESULTS:
        write_report(table, winners, name, _cli_row(results))
    return table.reset_index()


def _cli_row(path: Path) -> dict[str, Any]:
    """:func:`cli_defaults`, run once and kept in ``path`` like the other runs."""
    done = [r for r in _done(path) if r.get("variant") == CLI_VARIANT]
    if done:
        return done[-1]
    row = {"variant": CLI_VARIANT, **cli_defaults(), "load": common.load_average()[0],
           "date": time.strftime("%Y-%m-%d %H:%M")}
    with path.open("a") as handle:
        handle.write(json.dumps(row) + "\n")
    print(f"  {CLI_VARIANT}: IoU {row['iou']:.3f} V_rand {row['v_rand']:.3f} ({row['train_s']:.0f} s)", flush=True)
    return row


def cli_defaults(data_dir: str | os.PathLike | None = None, work: Path | None = None,
                 quick: bool = False) -> dict[str, Any]:
    """The command line's defaults as a new user runs them: train on slices 0-24, score 25-29.

    ``python -m helpers train --invert-masks`` (all other options at their defaults) on the first
    25 labelled slices (it splits off its own validation images), then ``predict --probabilities``
    and ``evaluate --isbi`` on slices 25-29, through :mod:`helpers.toolkit.workflow`, the command line's
    own functions.

    Returns
    -------
    dict
        The mean held-out ``iou`` (membrane), ``dice``, ``v_rand``, ``v_info``, the threshold the
        run chose, its loss and learning rate, and the training seconds.
    """
    import tempfile

    from helpers import data
    from helpers.toolkit import workflow

    root = data.data_root(data_dir) / "train"
    work = Path(tempfile.mkdtemp(prefix="recipe-cli-")) if work is None else work
    folders = {name: work / name for name in ("images", "masks", "test_images", "test_masks")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for index in range(30):
        kind = "" if index < 25 else "test_"
        for source, target in (("image", "images"), ("label", "masks")):
            link = folders[kind + target] / f"{index}.png"
            if not link.exists():
                link.symlink_to((root / source / f"{index}.png").resolve())
    quiet = {"echo": lambda line: None}
    options = dict(epochs=1, steps=2, filters=4, tile=64, verbose=0) if quick else {}
    config = workflow.train_folder(folders["images"], folders["masks"], work / "run", invert_masks=True,
                                   **options, **quiet)
    workflow.predict_folder(work / "run" / "model.keras", folders["test_images"], work / "pred",
                            probabilities=True, **quiet)
    table = workflow.evaluate_folders(work / "pred", folders["test_masks"], isbi=True, **quiet)
    mean = table.loc["mean"]
    return {"threshold": config["threshold"], "loss": config["loss"], "learning_rate": config["learning_rate"],
            "iou": float(mean["iou"]), "dice": float(mean["dice"]), "v_rand": float(mean["v_rand"]),
            "v_info": float(mean["v_info"]), "train_s": config["train_seconds_last_session"]}


def write_report(table: pd.DataFrame, winners: dict[str, str], combined: str, cli: dict[str, Any] | None = None,
                 path: Path = REPORT) -> Path:
    """Write the Markdown report (table, winners, targets) next to this file."""
    info = common.machine()
    base = table.loc["today: BCE + Jaccard"]
    run_minutes = sum(r.get("run_s", 0.0) for r in _done(RESULTS)) / 60 + (cli or {}).get("train_s", 0.0) / 60
    best = table.loc[combined]
    shown = table.reset_index()
    shown.insert(4, "Δ v_rand", (table["v_rand"] - base["v_rand"]).round(3).to_numpy())
    shown.insert(3, "Δ iou", (table["iou_membrane"] - base["iou_membrane"]).round(3).to_numpy())
    lines = [
        "# Recipe benchmark: which training recipe merges fewest cells",
        "",
        f"`python -m benchmarks recipe`, {time.strftime('%Y-%m-%d')}. CPU: {info['cpu']}, {info['cores']} "
        f"cores; Python {info['python']}, Keras {info['keras']} on {info['backend']}. Raw runs: "
        "`benchmarks/results/recipe.jsonl` (with the load average at the end of each run; other work "
        "shared the machine, so `train_s` is noisy).",
        "",
        "Budget per run: notebook 2's `cpu` profile, 10 epochs x 30 steps of 5 random 128-px crops of "
        "the 20 training slices; threshold chosen on slices 20-24; scores are the means over the "
        "held-out slices 25-29 at 512 x 512 (V_rand and V_info are the ISBI 2012 scores; higher is "
        "better). One factor is changed from today's recipe per row; seeds 1-3 each (the combination: seeds "
        "4-6). *spread* is max - min over the seeds; *Δ* is the difference of the mean from today's recipe.",
        "",
        common.markdown(shown),
        "",
        "## Winners and the combination",
        "",
        "A variant wins its group if its mean V_rand beats today's recipe and its mean membrane IoU "
        f"is at most {IOU_TOLERANCE} below today's.",
        "",
        *([f"- {group}: **{name}**" for group, name in winners.items()] or ["- no variant won"]),
        f"- confirmed with seeds {', '.join(map(str, CONFIRM_SEEDS))}: `{combined}`",
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
        f"| held-out membrane IoU >= 0.62 (3-seed mean) | {best['iou_membrane']:.3f} | "
        f"{'yes' if best['iou_membrane'] >= 0.62 else 'no'} |",
        f"| held-out V_rand >= 0.90 (3-seed mean) | {best['v_rand']:.3f} | "
        f"{'yes' if best['v_rand'] >= 0.90 else 'no'} |",
        f"| spread of V_rand <= 0.05 | {best['v_rand spread']:.3f} | "
        f"{'yes' if best['v_rand spread'] <= 0.05 else 'no'} |",
        *([f"| command line defaults, trained on slices 0-24: held-out membrane IoU >= 0.62 | "
           f"{cli['iou']:.3f} | {'yes' if cli['iou'] >= 0.62 else 'no'} |"] if cli else []),
        "",
        f"Today's recipe for comparison: IoU {base['iou_membrane']:.3f}, V_rand {base['v_rand']:.3f} "
        f"(spread {base['v_rand spread']:.3f}).",
        "",
        "## Budget",
        "",
        f"{int(table['seeds'].sum())} training runs of about {table['train_s'].mean():.0f} s each plus scoring "
        f"(threshold sweep, tiled prediction and the V_rand watershed of 10 slices): {run_minutes:.0f} minutes "
        "in all, within the 90 allowed. Budgeted before the start from one run (156 s with the machine "
        "shared): nine variants x three seeds, one confirmation of three seeds, and one run of the command "
        "line's defaults; the record makes an interrupted benchmark resume.",
        "",
    ]
    if cli:
        lines += [
            "## The command line's defaults",
            "",
            "`python -m helpers train --images <slices 0-24> --masks <their labels> --out run --invert-masks`, "
            "every other option at its default (loss `" + str(cli["loss"]) + "`, Adam "
            f"{cli['learning_rate']:g}, 16 filters, 20 x 50 steps of 8 tiles), then `predict --probabilities` "
            "and `evaluate --isbi` on slices 25-29 (one run, seed 42): "
            f"held-out membrane IoU {cli['iou']:.3f}, Dice {cli['dice']:.3f}, V_rand {cli['v_rand']:.3f}, "
            f"V_info {cli['v_info']:.3f}; threshold {cli['threshold']:.2f} chosen on its own validation "
            f"images; {cli['train_s']:.0f} s of training ({cli['date']}).",
            "",
        ]
    path.write_text("\n".join(lines))
    return path
