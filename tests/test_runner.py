"""Tests for helpers.toolkit.runner (``make run``) on tiny notebooks made in the test."""

from __future__ import annotations

import json
import os

import nbformat
import pytest

from helpers import data
from helpers.toolkit import runner
from helpers.toolkit.cli import main

WRITE_SCORES = """\
import json, os, pathlib
runs = pathlib.Path(os.environ["UNET_RUNS_DIR"]) / "tiny_run"
runs.mkdir(parents=True, exist_ok=True)
json.dump({"notebook": "tiny", "profile": os.environ["UNET_PROFILE"], "split": "holdout",
           "threshold": 0.45, "iou_membrane": 0.7123, "dice_membrane": 0.8321, "iou_cell": 0.9,
           "dice_cell": 0.95, "pixel_error": 0.1, "v_rand": None, "v_info": 0.8766,
           "train_seconds": 3.0}, open(runs / "scores.json", "w"))
"""


def make_notebook(path, *sources):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# tiny")] + [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(notebook, path)
    return path


@pytest.fixture
def fake_data(tmp_path, monkeypatch):
    """The runner resolves the ISBI data once; point it at an empty folder instead."""
    folder = tmp_path / "isbi"
    folder.mkdir()
    monkeypatch.setattr(data, "data_root", lambda data_dir=None: folder)
    return folder


def test_runs_notebook_and_summarises_scores(tmp_path, fake_data, capsys):
    notebook = make_notebook(
        tmp_path / "tiny.ipynb",
        "import os, pathlib\nprint(os.environ['UNET_PROFILE'], os.environ['UNET_DATA_DIR'], pathlib.Path.cwd())",
        WRITE_SCORES)
    out = tmp_path / "build"
    code = main(["run-notebooks", "--out", str(out), "--profile", "cpu", "--notebook", str(notebook)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert (out / "tiny.ipynb").is_file() and (out / "tiny.html").is_file()
    executed = nbformat.read(out / "tiny.ipynb", as_version=4)
    first = executed.cells[1].outputs[0]["text"].split()
    assert first == ["cpu", str(fake_data.resolve()), str(tmp_path)]  # env vars and cwd = the notebook's folder
    assert "tiny" in (out / "tiny.html").read_text()
    assert json.loads((out / "runs" / "tiny_run" / "scores.json").read_text())["profile"] == "cpu"
    assert "[tiny] cell 2/3" in printed and "[tiny] cell 3/3" in printed  # progress per cell
    summary = printed[printed.index("== summary"):]
    row = next(line for line in summary.splitlines() if line.startswith("tiny_run"))
    assert row.split()[1:8] == ["tiny", "holdout", "0.45", "0.712", "0.832", "-", "0.877"]
    assert str(out / "tiny.ipynb") in summary and str((out / "runs").resolve()) in summary


def test_failing_cell_still_writes_notebook(tmp_path, fake_data):
    bad = make_notebook(tmp_path / "bad.ipynb", "x = 1", "raise ValueError('broken on purpose')", "y = 2")
    good = make_notebook(tmp_path / "good.ipynb", "z = 3")
    lines = []
    code = runner.run_notebooks(tmp_path / "build", profile="quick", notebooks=[bad, good], echo=lines.append)
    assert code == 1
    error = next(line for line in lines if line.startswith("error:"))
    assert "bad.ipynb" in error and "cell 3/4" in error and "broken on purpose" in error
    executed = nbformat.read(tmp_path / "build" / "bad.ipynb", as_version=4)
    assert executed.cells[2].outputs[0]["ename"] == "ValueError"
    assert executed.cells[3].get("outputs") == []  # never ran
    assert (tmp_path / "build" / "good.ipynb").is_file()  # the next notebook still ran
    table = lines[-1]
    assert "FAILED" in table and "(no scores.json" in table


def test_missing_notebook_is_an_error(tmp_path, capsys):
    code = main(["run-notebooks", "--out", str(tmp_path / "b"), "--profile", "quick",
                 "--notebook", str(tmp_path / "nope.ipynb")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("error:") == 1 and "nope.ipynb" in err
    assert not (tmp_path / "b").exists()


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("UNET_PROFILE", "cpu")
    assert runner.detect_profile() == "cpu"
    monkeypatch.delenv("UNET_PROFILE")
    monkeypatch.setenv("UNET_QUICK", "1")
    assert runner.detect_profile() == "quick"


def test_environment_is_restored(monkeypatch):
    monkeypatch.setenv("UNET_PROFILE", "full")
    monkeypatch.delenv("UNET_RUNS_DIR", raising=False)
    with runner.environment({"UNET_PROFILE": "quick", "UNET_RUNS_DIR": "/x"}):
        assert os.environ["UNET_PROFILE"] == "quick" and os.environ["UNET_RUNS_DIR"] == "/x"
    assert os.environ["UNET_PROFILE"] == "full" and "UNET_RUNS_DIR" not in os.environ


def test_read_scores_ignores_old_runs(tmp_path):
    for name in ("old", "new"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "scores.json").write_text(json.dumps({"notebook": name}))
    os.utime(tmp_path / "old" / "scores.json", (1, 1))
    assert [run for run, _ in runner.read_scores(tmp_path, since=1000)] == ["new"]


def test_kernels_shut_down_and_the_run_is_recorded(tmp_path, fake_data, monkeypatch):
    """Each kernel is shut down when its notebook ends (a kernel left running warns "Parent appears to have
    exited" when make run ends), and out/run.json holds the run for the record (issue 22)."""
    made = []
    kernel_manager = runner._kernel_manager
    monkeypatch.setattr(runner, "_kernel_manager", lambda: made.append(kernel_manager()) or made[-1])
    notebook = make_notebook(tmp_path / "tiny.ipynb", WRITE_SCORES)
    assert runner.run_notebooks(tmp_path / "build", profile="cpu", notebooks=[notebook], echo=lambda line: None) == 0
    assert len(made) == 1 and not made[0].is_alive()
    run = json.loads((tmp_path / "build" / "run.json").read_text())
    assert run["profile"] == "cpu" and run["machine"] and run["versions"]["python"] and run["date"]
    tiny = run["notebooks"]["tiny"]
    assert tiny["ok"] and tiny["minutes"] >= 0 and tiny["split"] == "holdout"
    assert (tiny["iou_membrane"], tiny["v_info"], tiny["threshold"]) == (0.712, 0.877, 0.45)
    assert "v_rand" not in tiny  # null in scores.json: not a score
