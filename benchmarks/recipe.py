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

Each variant runs with seeds 1, 2, 3 (weights, dropout, crops and transforms). Every threshold is
chosen on the 5 validation slices (20-24): IoU's, V_rand's and V_info's, each its own
(:func:`helpers.evaluate.choose_isbi_thresholds`); the scores are the held-out slices' (25-29) means
at those thresholds, at 512 x 512, predicted with overlapping blended 128-px tiles (overlap 32). The
challenge's way (one threshold for the held-out set, the best on it: optimistic) is recorded beside
them for comparison. The final weights are scored (no checkpoint is picked, so no choice leans on
validation loss, which differs by loss).

Then the winners are combined: from each group (loss, normalisation, initialisation, learning
rate) the variant with the best 3-seed mean V_rand, if it beats today's recipe without losing
more than 0.01 of mean membrane IoU; the combination is confirmed with its own seeds 4, 5, 6.

Every run is appended to ``benchmarks/results/recipe.jsonl`` as soon as it ends, and runs
already there (scored by this :data:`PROTOCOL`) are skipped, so an interrupted benchmark resumes
where it stopped. Each run's validation and held-out probabilities are kept (float16) in the
git-ignored ``benchmarks/results/predictions/``, so a change of the scoring protocol is recomputed
without training again (``--rescore``).

Examples
--------
``python -m benchmarks recipe``             the whole benchmark (about 75 minutes on 2 CPU cores)
``python -m benchmarks recipe --rescore``   the table again from the stored predictions (minutes)
``python -m benchmarks recipe --quick``     tiny sizes, one seed: checks that every variant runs
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks import common

RESULTS = Path(__file__).parent / "results" / "recipe.jsonl"
REPORT = Path(__file__).parent / "RESULTS-recipe.md"
SCORES = ["iou_membrane", "v_rand", "v_info"]
#: How the recorded scores were computed; runs scored otherwise are not counted (``--rescore`` them).
PROTOCOL = "thresholds chosen on validation"
PROTOCOL_TEXT = ("every threshold chosen on the validation slices 20-24 (IoU's, V_rand's and V_info's, each its "
                 "own: `helpers.evaluate.choose_threshold`, `choose_isbi_thresholds`), the held-out slices 25-29 "
                 "scored at them")
CHALLENGE_TEXT = ("the challenge's way: one threshold for the held-out slices, the best of the sweep on those very "
                  "slices (`helpers.evaluate.challenge_scores`); optimistic, shown only for comparison")

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


def score_run(prob_val: np.ndarray, y_val: np.ndarray, prob_hold: np.ndarray, y_hold: np.ndarray) -> dict[str, Any]:
    """The held-out means at thresholds chosen on validation (:data:`PROTOCOL`), and the challenge's way beside."""
    from helpers import evaluate

    threshold = evaluate.choose_threshold(prob_val, y_val)
    isbi = evaluate.choose_isbi_thresholds(prob_val, y_val)
    table = evaluate.evaluate_predictions(prob_hold, y_hold, threshold, isbi)
    challenge = evaluate.challenge_scores(prob_hold, y_hold)
    return {"protocol": PROTOCOL, "threshold": threshold, "threshold_rand": isbi["v_rand"],
            "threshold_info": isbi["v_info"], **{k: float(table.loc["mean", k]) for k in SCORES},
            "v_rand_challenge": challenge["v_rand"], "v_info_challenge": challenge["v_info"]}


def prediction_path(results: Path, variant: str, seed: int) -> Path:
    """Where a run's probabilities are kept: ``predictions/<variant>-<seed>.npz`` next to ``results``.

    Examples
    --------
    >>> prediction_path(Path("results/recipe.jsonl"), "today: BCE + Jaccard", 1).as_posix()
    'results/predictions/today-bce-jaccard-1.npz'
    """
    return results.parent / "predictions" / f"{re.sub(r'[^a-z0-9]+', '-', variant.lower()).strip('-')}-{seed}.npz"


def train_and_score(parts: dict, recipe: dict[str, Any], seed: int, budget: dict[str, Any],
                    keep: Path | None = None) -> dict[str, Any]:
    """Train one recipe with one seed and :func:`score_run` it; keep its probabilities in ``keep`` (.npz) if given."""
    import keras

    from helpers import augment, losses, models, tiles, train, weights

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
    prob_val, prob_hold = predict(x_val), predict(x_hold)
    keras.backend.clear_session()
    if keep is not None:
        keep.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(keep, prob_val=prob_val.astype(np.float16), prob_hold=prob_hold.astype(np.float16))
    return {**score_run(prob_val, y_val, prob_hold, y_hold), "train_s": train_s}


def _done(path: Path | None, protocol: str | None = PROTOCOL) -> list[dict[str, Any]]:
    """The recorded runs (those scored by ``protocol``; all with None)."""
    if path is None or not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if protocol is None or r.get("protocol") == protocol]


def _run_all(parts: dict, plan: list[tuple[str, dict[str, Any], int]], budget: dict[str, Any],
             path: Path | None, label: str, train: bool = True) -> list[dict[str, Any]]:
    """Run every (name, recipe, seed) of ``plan`` not yet in ``path``; append each result there.

    With ``train=False`` nothing is trained: the runs missing from the record are named instead.
    """
    wanted = {(name, seed) for name, _, seed in plan}
    rows = [r for r in _done(path) if r.get("budget") == label and (r["variant"], r["seed"]) in wanted]
    seen = {(r["variant"], r["seed"]) for r in rows}
    missing = [(name, seed) for name, _, seed in plan if (name, seed) not in seen]
    if missing and not train:
        print(f"  not on record ({PROTOCOL}): {', '.join(f'{n} seed {s}' for n, s in missing)}; "
              f"`python -m benchmarks recipe` trains them", flush=True)
        return rows
    for name, recipe, seed in plan:
        if (name, seed) in seen:
            continue
        start = time.perf_counter()
        keep = prediction_path(path, name, seed) if path else None
        row = {"variant": name, "seed": seed, **recipe, "budget": label,
               **train_and_score(parts, recipe, seed, budget, keep),
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


def _rescore(results: Path = RESULTS, data: dict | None = None) -> int:
    """Score every recorded run again from its stored probabilities by :data:`PROTOCOL`; rewrite ``results``.

    Runs without stored probabilities stay as they were (and are not counted if scored otherwise).
    Returns the number of runs rescored.

    Examples
    --------
    >>> _rescore()                   # doctest: +SKIP
    30
    """
    if data is None:
        data = common.load_split()
    (_, y_val), (_, y_hold) = data["validation"], data["holdout"]
    rows, count = _done(results, protocol=None), 0
    for index, row in enumerate(rows):
        stored = prediction_path(results, row["variant"], row.get("seed", 0))
        if "seed" not in row or not stored.is_file():
            continue
        with np.load(stored) as saved:
            prob_val, prob_hold = saved["prob_val"].astype(np.float32), saved["prob_hold"].astype(np.float32)
        rows[index] = {**row, **score_run(prob_val, y_val, prob_hold, y_hold),
                       "rescored": time.strftime("%Y-%m-%d %H:%M")}
        count += 1
    temporary = results.with_suffix(".tmp")
    temporary.write_text("".join(json.dumps(row) + "\n" for row in rows))
    temporary.replace(results)
    print(f"  rescored {count} of {len(rows)} recorded runs from {results.parent / 'predictions'}", flush=True)
    return count


def summarise(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Per variant: seeds, mean and spread (max - min) of each score, mean training seconds.

    Examples
    --------
    >>> rows = [{"variant": "a", "seed": s, "iou_membrane": 0.5, "v_rand": v, "v_info": 0.9,
    ...          "train_s": 60.0} for s, v in [(1, 0.8), (2, 0.9)]]
    >>> summarise(rows).loc["a", ["v_rand", "v_rand spread"]].tolist()
    [0.85, 0.1]
    """
    frame = pd.DataFrame(rows)
    table = frame.groupby("variant", sort=False).agg(
        seeds=("seed", "size"),
        **{score: (score, "mean") for score in SCORES},
        **{f"{score} spread": (score, lambda v: float(v.max() - v.min())) for score in SCORES},
        train_s=("train_s", "mean"),
        **({"v_rand_challenge": ("v_rand_challenge", "mean")} if "v_rand_challenge" in frame else {}))
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
        variants: tuple[str, ...] | None = None, rescore: bool = False) -> pd.DataFrame:
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
    rescore : bool
        Train nothing: score the recorded runs again from their stored probabilities
        (:func:`rescore`), then summarise (and report) what is on record.

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
    if rescore and results is None:
        raise ValueError("rescore=True needs results=PATH (the record and its predictions/ folder)")
    if rescore:
        _rescore(results, data)
    seeds = seeds or ((1,) if quick else SEEDS)
    confirm_seeds = confirm_seeds or ((4, 5) if quick else CONFIRM_SEEDS)
    names = [n for n in VARIANTS if variants is None or n in variants or n == "today: BCE + Jaccard"]
    plan = [(name, {**BASE, **VARIANTS[name]}, seed) for seed in seeds for name in names]
    rows = _run_all(data, plan, budget, results, label, train=not rescore)
    table = summarise(rows)
    winners = choose(table)
    name = "combined: " + (" + ".join(winners.values()) if winners else "today's recipe")
    confirm = _run_all(data, [(name, combined_recipe(winners), s) for s in confirm_seeds], budget,
                       results, label, train=not rescore)
    table = summarise([*rows, *confirm])
    complete = len(rows) + len(confirm) == len(plan) + len(confirm_seeds)
    if results == RESULTS and complete:
        write_report(table, winners, name, _cli_row(results, train=not rescore))
    return table.reset_index()


def _cli_row(path: Path, train: bool = True) -> dict[str, Any] | None:
    """:func:`cli_defaults`, run once and kept in ``path`` like the other runs (None if not there and not ``train``)."""
    done = [r for r in _done(path) if r.get("variant") == CLI_VARIANT]
    if done or not train:
        return done[-1] if done else None
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
    and ``evaluate --isbi --config run/config.json`` on slices 25-29 (V_rand and V_info at the thresholds
    train chose on its validation images), through :mod:`helpers.toolkit.workflow`, the command line's
    own functions.

    Returns
    -------
    dict
        The mean held-out ``iou`` (membrane), ``dice``, ``v_rand``, ``v_info``, the thresholds the
        run chose, ``v_rand_challenge`` (``evaluate --isbi`` without ``--config``: the challenge's
        way, for comparison), its loss and learning rate, and the training seconds.
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
    table = workflow.evaluate_folders(work / "pred", folders["test_masks"], isbi=True,
                                      config=work / "run" / "config.json", **quiet)
    challenge = workflow.evaluate_folders(work / "pred", folders["test_masks"], isbi=True, **quiet)
    mean = table.loc["mean"]
    isbi = config["isbi_thresholds"]  # chosen on the run's own validation images
    return {"protocol": PROTOCOL, "threshold": config["threshold"], "threshold_rand": isbi["v_rand"],
            "threshold_info": isbi["v_info"], "loss": config["loss"],
            "learning_rate": config["learning_rate"], "iou": float(mean["iou"]), "dice": float(mean["dice"]),
            "v_rand": float(mean["v_rand"]), "v_info": float(mean["v_info"]),
            "v_rand_challenge": float(challenge.loc["mean", "v_rand"]), "train_s": config["train_seconds_last_session"]}


def write_report(table: pd.DataFrame, winners: dict[str, str], combined: str, cli: dict[str, Any] | None = None,
                 path: Path = REPORT) -> Path:
    """Write the Markdown report (table, winners, targets) next to this file."""
    info = common.machine()
    base = table.loc["today: BCE + Jaccard"]
    run_minutes = sum(r.get("run_s", 0.0) for r in _done(RESULTS)) / 60 + (cli or {}).get("train_s", 0.0) / 60
    best = table.loc[combined]
    rescored = sorted({r["rescored"] for r in _done(RESULTS) if r.get("rescored")})
    table = table.copy()
    challenge = table.pop("v_rand_challenge") if "v_rand_challenge" in table else None
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
        f"**Protocol: {PROTOCOL_TEXT}.**" + (f" Scores recomputed from the stored predictions (`python -m "
                                              f"benchmarks recipe --rescore`) on {rescored[-1]}." if rescored else ""),
        "",
        "Budget per run: notebook 2's `cpu` profile, 10 epochs x 30 steps of 5 random 128-px crops of "
        "the 20 training slices; scores are the means over the held-out slices 25-29 at 512 x 512 (V_rand "
        "and V_info are the ISBI 2012 scores; higher is better). One factor is changed from today's recipe per "
        "row; seeds 1-3 each (the combination: seeds 4-6). *spread* is max - min over the seeds; *Δ* is the "
        "difference of the mean from today's recipe.",
        "",
        common.markdown(shown),
        "",
        *([f"For comparison, mean V_rand by {CHALLENGE_TEXT}: "
           + ", ".join(f"{name} {value:.3f}" for name, value in challenge.items()) + ".", ""]
          if challenge is not None else []),
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
        "in all, within the 90 allowed: nine variants x three seeds, one confirmation of three seeds, and one "
        "run of the command line's defaults; the record makes an interrupted benchmark resume.",
        "",
    ]
    if cli:
        lines += [
            "## The command line's defaults",
            "",
            "`python -m helpers train --images <slices 0-24> --masks <their labels> --out run --invert-masks`, "
            "every other option at its default (loss `" + str(cli["loss"]) + "`, Adam "
            f"{cli['learning_rate']:g}, 16 filters, 20 x 50 steps of 8 tiles), then `predict --probabilities` "
            "and `evaluate --isbi --config run/config.json` on slices 25-29 (one run, seed 42): "
            f"held-out membrane IoU {cli['iou']:.3f}, Dice {cli['dice']:.3f}, V_rand {cli['v_rand']:.3f}, "
            f"V_info {cli['v_info']:.3f}; thresholds chosen on its own validation images: {cli['threshold']:.2f} "
            f"(IoU), {cli.get('threshold_rand', float('nan')):.2f} (V_rand), "
            f"{cli.get('threshold_info', float('nan')):.2f} (V_info); {cli['train_s']:.0f} s of training "
            f"({cli['date']})."
            + (f" The challenge's way (`evaluate --isbi` without `--config`, optimistic): V_rand "
               f"{cli['v_rand_challenge']:.3f}." if "v_rand_challenge" in cli else ""),
            "",
        ]
    path.write_text("\n".join(lines))
    return path
