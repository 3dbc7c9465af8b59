"""``make gpu-check``: time and score the workshop on an accelerator; write ``benchmarks/RESULTS-gpu.md``.

One command for the short time a GPU machine is lent: it needs only the checkout and a local copy
of the data (``UNET_DATA_DIR``; the GPU machine has no network). In order, each part written into
the report as soon as it is done, so a run cut short still leaves its numbers:

1. **input pipeline**: images/s of :func:`helpers.augment.get_augmented` as ``model.fit``
   consumes it (a one-weight model, so the pipeline is all that is timed), at the notebooks'
   settings: 128-px crops of the 512-px slices (notebook 2) and whole 128-px images (notebook 1);
2. **training throughput** of keras-unet's ``custom_unet`` (64 filters, 128 x 128, as the workshop)
   at batch 32 and at the notebooks' batch sizes (5 and 10): images/s and peak GPU memory for
   float32 and mixed precision, under TensorFlow without and with XLA and under JAX (always jit),
   for each backend installed. Every configuration runs in a child process of its own, so peak
   memory is that configuration's and no process holds the GPU while the notebooks run;
3. **both notebooks in the full profile**, executed headless (:mod:`helpers.toolkit.runner`): runtime
   per notebook and per section, and the scores of their ``scores.json``;
4. the **targets** of issue 11 against what was measured.

Parts that would not finish within ``--budget`` seconds are skipped and named in the report.
``--dry-run`` runs all of it at toy sizes on a CPU (the test suite does, on a tiny notebook), so
the command is known to work before any GPU time is spent.

Examples
--------
``make gpu-check``                                  the full check, report in benchmarks/RESULTS-gpu.md
``python -m benchmarks.gpu --dry-run --out /tmp/r.md``  toy sizes, a few seconds per part
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "RESULTS-gpu.md"

#: Issue 11's targets, checked in the report (never asserted in tests).
TARGETS = {
    "mixed_speedup": 2.5,     # mixed precision images/s / float32 images/s at batch 32
    "pipeline_margin": 2.0,   # pipeline images/s / training images/s
    "notebooks_minutes": 10.0,  # both notebooks, full profile
    "iou": 0.75,              # notebook 2 held-out membrane IoU
    "v_rand": 0.95,           # notebook 2 held-out V_rand
}


#: How the notebooks' held-out scores are computed (issue 22), said beside them in the report.
SCORES_PROTOCOL = ("Every threshold is chosen on the validation slices, each metric its own: `threshold` (best "
                   "membrane IoU), `threshold_rand` (best mean V_rand), `threshold_info` (best mean V_info); the "
                   "held-out scores are measured at them (a run that records no V_rand/V_info threshold shows "
                   "'-').")


@dataclass
class Sizes:
    """What one run measures: the workshop's sizes, or toy ones for the dry run."""

    filters: int = 64
    image: int = 128
    batches: tuple[int, ...] = (5, 10, 32)
    warmup_steps: int = 5
    steps: int = 40
    pipeline_batches: int = 60
    profile: str = "full"

    @classmethod
    def dry(cls) -> Sizes:
        return cls(filters=4, image=32, batches=(2, 4), warmup_steps=1, steps=2, pipeline_batches=3,
                   profile="quick")


# ---------------------------------------------------------------------------------------------
# Worker side: runs in a child process with one backend and one precision


def _peak_bytes(backend: str) -> int | None:
    """Peak accelerator memory of this process so far (None on a CPU)."""
    if backend == "jax":
        import jax

        device = jax.local_devices()[0]
        stats = device.memory_stats() if device.platform != "cpu" else None
        return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        return None
    return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])


def _repeat_batch(x, y):
    """A dataset that serves the same (x, y) batch forever, for any backend."""
    import keras

    class Repeat(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()

        @property
        def num_batches(self):
            return None

        def __getitem__(self, index):
            return x, y

    return Repeat()


def worker_throughput(policy: str, xla: str, sizes: Sizes) -> list[dict]:
    """Images/s of one training configuration at each batch size (ascending, so peaks are monotone)."""
    import numpy as np

    from helpers import env, models, train

    backend = env.backend()
    rows = []
    jit = {"on": True, "off": False, "auto": None}[xla]
    for batch in sorted(sizes.batches):
        model = train.compile_model(
            lambda: models.custom_unet((sizes.image, sizes.image, 1), filters=sizes.filters, dropout=0.2,
                                       use_batch_norm=False),
            loss="binary_crossentropy", learning_rate=1e-4, mixed_precision=policy, jit_compile=jit, seed=0)
        rng = np.random.default_rng(0)
        x = rng.random((batch, sizes.image, sizes.image, 1), dtype=np.float32)
        y = (x > 0.5).astype(np.float32)
        data = _repeat_batch(x, y)
        start = time.perf_counter()
        model.fit(data, epochs=1, steps_per_epoch=sizes.warmup_steps, shuffle=False, verbose=0)
        warmup = time.perf_counter() - start
        speed = train.ImagesPerSecond(batch)
        model.fit(data, epochs=1, steps_per_epoch=sizes.steps, shuffle=False, verbose=0, callbacks=[speed])
        rows.append({"backend": backend, "policy": policy, "jit": "always" if backend == "jax" else xla,
                     "batch": batch, "images_per_s": round(speed.images_per_second[-1], 1),
                     "step_ms": round(1000 * speed.epoch_seconds[-1] / sizes.steps, 2),
                     "warmup_s": round(warmup, 1), "peak_gib": _gib(_peak_bytes(backend))})
        del model
    return rows


def worker_pipeline(sizes: Sizes, data_dir: str | None) -> list[dict]:
    """Images/s of get_augmented as fit consumes it, at both notebooks' settings."""
    import keras

    from benchmarks import common
    from helpers import augment, data, env, train

    images, masks = data.load_isbi2012("train", data_dir=data_dir)
    parts = data.fixed_split(images, masks)
    x_full, y_full = parts["train"]
    x_small = data.resize(x_full, sizes.image, kind="image")
    y_small = data.resize(y_full, sizes.image, kind="mask")
    big = max(sizes.batches)
    settings = {  # (images, masks, crop, augmentation, batch sizes: the notebook's and the largest)
        "notebook 1: 128-px images, the original's values": (x_small, y_small, None, common.our_args(),
                                                              (min(sizes.batches), big)),
        "notebook 2: 128-px crops of 512-px slices": (x_full, y_full, sizes.image, augment.DEFAULT_ARGS,
                                                      (sorted(sizes.batches)[len(sizes.batches) // 2], big)),
    }
    pipelines = ["tf.data", "numpy"] if env.has_tensorflow() else ["numpy"]
    rows = []
    for name, (x, y, crop, args, batches) in settings.items():
        for batch in batches:
            for pipeline in pipelines:
                ds = augment.get_augmented(x, y, batch_size=batch, data_gen_args=args, seed=0,
                                           crop_size=crop, pipeline=pipeline)
                inputs = keras.Input((None, None, 1))
                model = keras.Model(inputs, keras.layers.Conv2D(1, 1)(inputs))
                model.compile(optimizer="sgd", loss="mse")
                model.fit(ds, epochs=1, steps_per_epoch=3, shuffle=False, verbose=0)  # start-up, compilation
                speed = train.ImagesPerSecond(batch)
                model.fit(ds, epochs=1, steps_per_epoch=sizes.pipeline_batches, shuffle=False, verbose=0, callbacks=[speed])
                rows.append({"setting": name, "pipeline": pipeline, "batch": batch,
                             "images_per_s": round(speed.images_per_second[-1], 1)})
    return rows


def _gib(value: int | None) -> float | None:
    return None if value is None else round(value / 2**30, 2)


# ---------------------------------------------------------------------------------------------
# Parent side: orchestration and the report


@dataclass
class Report:
    """The markdown report, rewritten (atomically) after every part."""

    path: Path
    sections: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.sections.append(text.rstrip() + "\n")
        self.write()

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text("\n".join(self.sections), encoding="utf-8")
        tmp.replace(self.path)


def table(rows: list[dict], columns: list[str]) -> str:
    """A markdown table of ``rows`` (missing values as '-')."""
    def cell(value) -> str:
        if value is None:
            return "-"
        return f"{value:g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def installed_backends() -> list[str]:
    """Keras backends this Python can run: TensorFlow and/or JAX, ``KERAS_BACKEND``'s first."""
    import importlib.util

    found = [name for name in ("tensorflow", "jax") if importlib.util.find_spec(name)]
    active = os.environ.get("KERAS_BACKEND", "tensorflow")
    return sorted(found, key=lambda name: name != active)  # the active backend first


def _child_env(backend: str) -> dict[str, str]:
    return {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
            # JAX would reserve 75 % of the GPU at start: keep it to what is used, so peaks are real
            "XLA_PYTHON_CLIENT_PREALLOCATE": "false", "PYTHONPATH": str(REPO)}


def run_worker(backend: str, args: list[str], timeout: float) -> tuple[list[dict], str | None]:
    """Run ``python -m benchmarks.gpu --worker ...`` under ``backend``; its JSON rows, or an error."""
    command = [sys.executable, "-m", "benchmarks.gpu", "--worker", *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=_child_env(backend),
                              timeout=max(timeout, 1))
    except subprocess.TimeoutExpired:
        return [], f"did not finish within {timeout:.0f} s (budget)"
    rows = [json.loads(line[5:]) for line in done.stdout.splitlines() if line.startswith("ROW: ")]
    if done.returncode != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])[-400:]
        return rows, f"exit {done.returncode}: {tail}"
    return rows, None


def header(sizes: Sizes, dry_run: bool) -> str:
    """Date, device, driver, versions and backends of this run."""
    device, driver = "no GPU (CPU only)", "-"
    try:
        query = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                                "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
        if query.returncode == 0 and query.stdout.strip():
            name, driver, memory = (part.strip() for part in query.stdout.strip().splitlines()[0].split(","))
            device = f"{name} ({memory})"
    except (OSError, subprocess.SubprocessError):
        pass
    versions = []
    for backend in installed_backends():
        probe = subprocess.run([sys.executable, "-c", "from helpers import env; print(env.version_line())"],
                               capture_output=True, text=True, cwd=REPO, env=_child_env(backend), timeout=300)
        versions.append(f"- `KERAS_BACKEND={backend}`: "
                        + (probe.stdout.strip().splitlines()[-1] if probe.returncode == 0 and probe.stdout.strip()
                           else f"does not start ({' '.join(probe.stderr.split())[-200:]})"))
    title = "# GPU check (dry run on a CPU: toy sizes, not a measurement)" if dry_run else "# GPU check"
    return "\n".join([
        title, "",
        f"Written by `make gpu-check` (benchmarks/gpu.py) on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "",
        f"- device: {device}; driver {driver}; host: {os.cpu_count()} CPU cores",
        *versions,
        f"- model: keras-unet `custom_unet`, {sizes.filters} filters, {sizes.image} x {sizes.image} x 1, "
        f"dropout 0.2, no batch norm; notebooks in the `{sizes.profile}` profile",
    ])


def throughput_part(sizes: Sizes, deadline: float, report: Report, echo) -> list[dict]:
    """Training images/s per backend, precision and XLA setting."""
    configs = []
    for backend in installed_backends():
        if backend == "tensorflow":
            configs += [("tensorflow", p, x) for p in ("float32", "mixed_float16") for x in ("off", "on")]
        else:
            configs += [("jax", p, "on") for p in ("float32", "mixed_float16", "mixed_bfloat16")]
    rows, notes = [], []
    for backend, policy, xla in configs:
        left = deadline - time.monotonic()
        if left < 30:
            notes.append(f"- {backend} {policy} XLA {xla}: skipped, the time budget was spent")
            continue
        echo(f"throughput: {backend} {policy} xla {xla} ...")
        found, error = run_worker(backend, ["throughput", "--policy", policy, "--xla", xla,
                                            *(["--dry-run"] if sizes.profile == "quick" else [])], left)
        rows += found
        if error:
            notes.append(f"- {backend} {policy} XLA {xla}: {error}")
            echo(f"  failed: {error}")
        for row in found:
            echo(f"  batch {row['batch']}: {row['images_per_s']} images/s, peak {row['peak_gib']} GiB")
    text = ["## Training throughput", "",
            f"{sizes.warmup_steps} warm-up steps (compilation), then {sizes.steps} timed steps on one "
            "in-memory batch; images/s from the first to the last timed step. Peak memory is the "
            "backend's allocator peak for the process (GiB).", "",
            table(rows, ["backend", "policy", "jit", "batch", "images_per_s", "step_ms", "warmup_s", "peak_gib"])]
    report.add("\n".join(text + ([""] + notes if notes else [])))
    return rows


def pipeline_part(sizes: Sizes, deadline: float, report: Report, echo, data_dir: str | None) -> list[dict]:
    """Input-pipeline images/s, measured under the first installed backend."""
    backend = installed_backends()[0]
    echo(f"input pipeline ({backend}) ...")
    rows, error = run_worker(backend, ["pipeline", *(["--dry-run"] if sizes.profile == "quick" else []),
                                       *(["--data-dir", data_dir] if data_dir else [])],
                             deadline - time.monotonic())
    for row in rows:
        echo(f"  {row['setting']} · {row['pipeline']} · batch {row['batch']}: {row['images_per_s']} images/s")
    if error:
        echo(f"  failed: {error}")
    text = ["## Input pipeline", "",
            f"`get_augmented` batches as `model.fit` consumes them (a one-weight model, {sizes.pipeline_batches} "
            f"batches after 3 warm-up batches), under `KERAS_BACKEND={backend}`. `tf.data` runs where "
            "TensorFlow is installed; `numpy` is the pipeline used without TensorFlow (Colab's TPU runtimes).", "",
            table(rows, ["setting", "pipeline", "batch", "images_per_s"])]
    if error:
        text += ["", f"Not complete: {error}"]
    report.add("\n".join(text))
    return rows


def section_times(result) -> list[dict]:
    """Seconds per ``##`` section of an executed notebook (from :mod:`helpers.toolkit.runner`'s cell times)."""
    import nbformat

    notebook = nbformat.read(result.ipynb, as_version=4)
    rows, current = [], {"section": "(before the first section)", "seconds": 0.0}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown":
            match = re.search(r"^##\s+(.+)$", cell.source, flags=re.MULTILINE)
            if match and not match.group(1).startswith("#"):
                if current["seconds"] > 0:
                    rows.append(current)
                current = {"section": match.group(1).strip(), "seconds": 0.0}
        current["seconds"] += result.cell_seconds.get(index, 0.0)
    if current["seconds"] > 0:
        rows.append(current)
    return [{**row, "seconds": round(row["seconds"], 1)} for row in rows]


def notebooks_part(sizes: Sizes, deadline: float, report: Report, echo, out: Path,
                   notebooks: list[str] | None, data_dir: str | None) -> dict:
    """Both notebooks executed headless; runtimes per notebook and section, and their scores."""
    from helpers.toolkit import runner

    left = deadline - time.monotonic()
    if left < 60:
        report.add("## Notebooks\n\nSkipped: the time budget was spent before they could start.")
        return {}
    echo(f"notebooks, profile {sizes.profile}, {left:.0f} s left ...")
    results, scores = [], []
    started = time.time()
    variables = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    with runner.environment(variables):
        code = runner.run_notebooks(out, profile=sizes.profile, notebooks=notebooks, data_dir=data_dir,
                                    echo=lambda line: echo("  " + line), deadline=deadline, results=results)
    scores = runner.read_scores(out.resolve() / "runs", since=started - 1)
    text = ["## Notebooks", "",
            f"Executed headless by `helpers.toolkit.runner` in the `{sizes.profile}` profile (exit code {code}).", "",
            table([{"notebook": r.name, "result": "ok" if r.ok else f"FAILED: {r.error}",
                    "minutes": round(r.seconds / 60, 2)} for r in results], ["notebook", "result", "minutes"])]
    for result in results:
        text += ["", f"### {result.name}: seconds per section", "",
                 table(section_times(result), ["section", "seconds"])]
    score_rows = [{"run": run, **{k: s.get(k) for k in ("notebook", "split", "threshold", "iou_membrane",
                                                         "dice_membrane", "v_rand", "v_info", "train_seconds")},
                   **{f"threshold_{k[2:]}": (s.get("isbi_thresholds") or {}).get(k) for k in ("v_rand", "v_info")}}
                  for run, s in scores]
    text += ["", "### Scores (`scores.json`)", "", SCORES_PROTOCOL, "",
             table(score_rows, ["run", "notebook", "split", "threshold", "iou_membrane", "dice_membrane",
                                "threshold_rand", "v_rand", "threshold_info", "v_info", "train_seconds"])
             if score_rows else "(none written)"]
    report.add("\n".join(text))
    return {"results": results, "scores": dict(scores)}


def targets_part(throughput: list[dict], pipeline: list[dict], notebooks: dict, report: Report) -> None:
    """Issue 11's targets against the measured values."""
    lines = ["## Targets", "", "| target | measured | met |", "|---|---|---|"]

    def verdict(value, goal, higher=True, unit=""):
        if value is None:
            return "not measured", "-"
        return f"{value:.3g}{unit}", "yes" if (value >= goal if higher else value <= goal) else "**no**"

    def speed(backend, policy, batch):
        found = [r["images_per_s"] for r in throughput
                 if r["backend"] == backend and r["policy"] == policy and r["batch"] == batch
                 and r["jit"] in ("always", "off")]
        return max(found) if found else None

    for backend in sorted({r["backend"] for r in throughput}):
        big = max(r["batch"] for r in throughput)
        fp32, mixed = speed(backend, "float32", big), speed(backend, "mixed_float16", big)
        ratio = mixed / fp32 if fp32 and mixed else None
        measured, met = verdict(ratio, TARGETS["mixed_speedup"], unit="x")
        lines.append(f"| mixed float16 >= {TARGETS['mixed_speedup']}x float32 images/s at batch {big} ({backend}) "
                     f"| {measured} | {met} |")
    for row in pipeline:
        used = [r["images_per_s"] for r in throughput if r["batch"] == row["batch"]]
        if used:
            margin = row["images_per_s"] / max(used)
            measured, met = verdict(margin, TARGETS["pipeline_margin"], unit="x")
            lines.append(f"| pipeline >= {TARGETS['pipeline_margin']}x the fastest training step, "
                         f"{row['setting']}, {row['pipeline']}, batch {row['batch']} | {measured} | {met} |")
    results = notebooks.get("results", [])
    if results:
        minutes = sum(r.seconds for r in results) / 60
        complete = all(r.ok for r in results) and len(results) == 2
        measured, met = verdict(minutes, TARGETS["notebooks_minutes"], higher=False, unit=" min")
        lines.append(f"| both notebooks <= {TARGETS['notebooks_minutes']:g} min | {measured}"
                     f"{'' if complete else ' (incomplete)'} | {met if complete else '-'} |")
    nb2 = next((s for s in notebooks.get("scores", {}).values() if s.get("notebook") == "02_unet_further_topics"), None)
    for key, goal in (("iou_membrane", TARGETS["iou"]), ("v_rand", TARGETS["v_rand"])):
        measured, met = verdict(nb2.get(key) if nb2 else None, goal)
        lines.append(f"| notebook 2 held-out {key} >= {goal} | {measured} | {met} |")
    report.add("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", choices=("throughput", "pipeline"), help=argparse.SUPPRESS)
    parser.add_argument("--policy", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--xla", default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--dry-run", action="store_true", help="toy sizes and the quick profile, on any machine")
    parser.add_argument("--out", type=Path, default=None, help=f"report file (default {DEFAULT_OUT.relative_to(REPO)})")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for the whole check (default 480)")
    parser.add_argument("--throughput-share", type=float, default=0.35,
                        help="fraction of the budget the throughput part may use (default 0.35)")
    parser.add_argument("--notebooks", nargs="*", default=None, help="notebooks to run (default: the workshop's two)")
    parser.add_argument("--skip", nargs="*", default=(), choices=("pipeline", "throughput", "notebooks"))
    parser.add_argument("--data-dir", default=None, help="local ISBI 2012 copy (default: UNET_DATA_DIR)")
    args = parser.parse_args(argv)
    sizes = Sizes.dry() if args.dry_run else Sizes()

    if args.worker:
        rows = (worker_throughput(args.policy, args.xla, sizes) if args.worker == "throughput"
                else worker_pipeline(sizes, args.data_dir))
        for row in rows:
            print("ROW: " + json.dumps(row), flush=True)
        return 0

    start = time.monotonic()
    deadline = start + args.budget
    out = args.out or (REPO / "build" / "gpu-check-dry" / "RESULTS-gpu.md" if args.dry_run else DEFAULT_OUT)

    def echo(line: str) -> None:
        print(line, flush=True)

    if not installed_backends():
        print("Neither TensorFlow nor JAX is installed in this Python: run `make install` first.", file=sys.stderr)
        return 2
    report = Report(out)
    report.add(header(sizes, args.dry_run))
    echo(report.sections[0])
    pipeline = [] if "pipeline" in args.skip else pipeline_part(sizes, deadline, report, echo, args.data_dir)
    throughput = [] if "throughput" in args.skip else throughput_part(
        sizes, min(deadline, start + args.throughput_share * args.budget), report, echo)
    notebooks = {} if "notebooks" in args.skip else notebooks_part(
        sizes, deadline, report, echo, REPO / "build" / ("gpu-check-dry" if args.dry_run else "gpu-check"),
        args.notebooks, args.data_dir)
    targets_part(throughput, pipeline, notebooks, report)
    echo(f"report written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
