"""The dry run of `make gpu-check` (benchmarks/gpu.py): every part at toy sizes, on this CPU."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest

from benchmarks import gpu
from helpers import env

TINY_NOTEBOOK = [
    ("markdown", "# Tiny\n## 1. First part"),
    ("code", "import time; time.sleep(0.2)"),
    ("markdown", "## 2. Second part\nscores as the workshop notebooks write them"),
    ("code", "import json, os, pathlib\n"
             "run = pathlib.Path(os.environ['UNET_RUNS_DIR']) / 'tiny'; run.mkdir(parents=True, exist_ok=True)\n"
             "(run / 'scores.json').write_text(json.dumps({'notebook': 'tiny', 'split': 'holdout', 'threshold': 0.45, "
             "'iou_membrane': 0.5, 'v_rand': 0.9, 'train_seconds': 1.0, "
             "'isbi_thresholds': {'v_rand': 0.7, 'v_info': 0.5}}))"),
]


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory, isbi_dir):
    folder = tmp_path_factory.mktemp("gpu")
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
        for kind, src in TINY_NOTEBOOK])
    path = folder / "tiny.ipynb"
    nbformat.write(notebook, path)
    report = folder / "RESULTS-gpu.md"
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "--dry-run", "--out", str(report),
                           "--notebooks", str(path), "--data-dir", str(isbi_dir), "--budget", "1000",
                           "--throughput-share", "0.8"],
                          capture_output=True, text=True, cwd=env.REPO_ROOT, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, report.read_text()


def test_dry_run_reports_every_part(dry_run):
    out, report = dry_run
    assert report.startswith("# GPU check (dry run on a CPU")
    for heading in ("## Input pipeline", "## Training throughput", "## Notebooks", "## Targets"):
        assert heading in report, heading
    assert "input pipeline" in out and "report written to" in out  # progress is printed
    backends = gpu.installed_backends()
    for backend in backends:
        assert f"`KERAS_BACKEND={backend}`: Keras" in report
        assert f"| {backend} | float32 |" in report and f"| {backend} | mixed_float16 |" in report
    if "tensorflow" in backends:  # without and with XLA
        assert "| tensorflow | float32 | off |" in report and "| tensorflow | float32 | on |" in report


def test_dry_run_times_sections_and_reads_scores(dry_run):
    _, report = dry_run
    assert "| tiny | ok |" in report
    sections = report.split("### tiny: seconds per section")[1].split("###")[0]
    assert "| 1. First part |" in sections and "| 2. Second part |" in sections
    assert "| tiny | tiny | holdout | 0.45 | 0.5 | - | 0.7 | 0.9 | 0.5 | - | 1 |" in report  # V_rand at 0.7, V_info 0.5
    assert gpu.SCORES_PROTOCOL in report and "chosen on the validation slices" in gpu.SCORES_PROTOCOL
    assert "| notebook 2 held-out v_rand >= 0.95 | not measured |" in report  # tiny is not notebook 2
    assert "| mixed float16 >= 2.5x float32 images/s" in report


def test_out_of_budget_parts_are_skipped_and_named(tmp_path, isbi_dir):
    report = tmp_path / "r.md"
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "--dry-run", "--out", str(report),
                           "--skip", "pipeline", "--budget", "1"],
                          capture_output=True, text=True, cwd=env.REPO_ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    text = report.read_text()
    assert "skipped, the time budget was spent" in text
    assert "Skipped: the time budget was spent before they could start." in text


def test_table_and_targets_formatting(tmp_path):
    assert gpu.table([{"a": 1.5, "b": None}], ["a", "b"]).splitlines() == ["| a | b |", "|---|---|", "| 1.5 | - |"]
    report = gpu.Report(tmp_path / "r.md")
    rows = [{"backend": "jax", "policy": p, "jit": "always", "batch": 32, "images_per_s": v}
            for p, v in (("float32", 100.0), ("mixed_float16", 300.0))]
    pipeline = [{"setting": "nb", "pipeline": "numpy", "batch": 32, "images_per_s": 450.0}]
    scores = {"scores": {"x": {"notebook": "02_unet_further_topics", "iou_membrane": 0.8, "v_rand": 0.9}}}
    gpu.targets_part(rows, pipeline, scores, report)
    text = (tmp_path / "r.md").read_text()
    assert "| 3x | yes |" in text            # mixed 300 / float32 100 >= 2.5
    assert "| 1.5x | **no** |" in text        # pipeline 450 / fastest step 300 < 2
    assert "iou_membrane >= 0.75 | 0.8 | yes |" in text and "v_rand >= 0.95 | 0.9 | **no** |" in text
    json.dumps(gpu.TARGETS)  # plain numbers, for the report
