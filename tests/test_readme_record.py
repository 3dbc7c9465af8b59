"""README's times and scores are those of the committed record of named runs (benchmarks/RESULTS-notebooks.json)."""

from __future__ import annotations

import json
import re

import pytest

from benchmarks import record
from helpers import env

README = env.REPO_ROOT / "README.md"
RECORD = env.REPO_ROOT / "benchmarks" / "RESULTS-notebooks.json"

#: How the README's table names a number, and where the record keeps it.
QUANTITIES = {r"(\d+(?:\.\d+)?) min\b": "minutes", r"membrane IoU (\d\.\d+)": "iou_membrane",
              r"membrane Dice (\d\.\d+)": "dice_membrane", r"V_rand (\d\.\d+)": "v_rand",
              r"V_info (\d\.\d+)": "v_info"}
SPLITS = {"validation": "validation", "held-out": "holdout"}


def results_table(text: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the README's first table (the one with the notebooks)."""
    lines = [line for line in text.split("\n\n") if line.startswith("| |")][0].splitlines()
    cells = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]
    return cells[0], [row for row in cells[2:]]


def quoted(cell: str) -> tuple[dict[str, float], str]:
    """The numbers a table cell quotes, by record key, and the cell's text without them."""
    found = {}
    for pattern, key in QUANTITIES.items():
        for match in re.finditer(pattern, cell):
            found[key] = float(match.group(1))
        cell = re.sub(pattern, "", cell)
    return found, cell


@pytest.fixture(scope="module")
def runs() -> dict:
    return json.loads(RECORD.read_text())["runs"]


def test_record_runs_are_complete(runs):
    assert runs, "the record holds at least one named run"
    for name, run in runs.items():
        for key in ("profile", "machine", "date", "versions", "command", "notebooks"):
            assert run.get(key), f"run {name} has no {key}"
        assert run["profile"] in env.PROFILES, name
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", run["date"]), name
        for notebook, values in run["notebooks"].items():
            assert isinstance(values["minutes"], (int, float)) and values["minutes"] > 0, (name, notebook)


def test_readme_table_quotes_the_record_and_nothing_else(runs):
    header, rows = results_table(README.read_text(encoding="utf-8"))
    columns = {}
    for index, title in enumerate(header):
        named = re.findall(r"`([^`]+)`", title)
        names = [n for n in named if n in runs]
        if named and any(n in env.PROFILES for n in named):
            assert names, f"column {title!r} names no run of the record ({', '.join(runs)})"
            columns[index] = names[0]
            assert f"`{runs[names[0]]['profile']}` profile" in title, f"column {title!r}: the run's profile"
    assert len(columns) >= 2, "a cpu and a full column, each naming its run"
    checked = 0
    for row in rows:
        notebook = re.search(r"notebooks/(\w+)\.ipynb", row[0])
        for index, run_name in columns.items():
            numbers, rest = quoted(row[index])
            assert not re.search(r"\d", rest), f"{row[0]} / {run_name}: a number the record cannot check: {row[index]!r}"
            if not numbers:
                continue
            assert notebook, f"numbers outside a notebook row: {row}"
            values = runs[run_name]["notebooks"].get(notebook.group(1))
            assert values is not None, f"run {run_name} has no {notebook.group(1)}"
            for key, number in numbers.items():
                assert key in values, f"{notebook.group(1)} / {run_name}: the record has no {key} (README {number})"
                assert number == pytest.approx(values[key], abs=1e-9), (notebook.group(1), run_name, key)
                checked += 1
            for word, split in SPLITS.items():
                if word in row[index]:
                    assert values.get("split") == split, (notebook.group(1), run_name, word)
    assert checked >= 4, "the table quotes times and scores"


def test_readme_names_the_record_and_the_command():
    text = README.read_text(encoding="utf-8")
    assert "benchmarks/RESULTS-notebooks.json" in text
    assert "python -m benchmarks.record NAME" in text


def test_quoted_finds_every_number():
    numbers, rest = quoted("2.92 min; validation membrane IoU 0.241, V_rand 0.883")
    assert numbers == {"minutes": 2.92, "iou_membrane": 0.241, "v_rand": 0.883}
    assert not re.search(r"\d", rest)
    assert re.search(r"\d", quoted("4.3 min; 12 runs")[1])


def test_add_run_appends_a_named_run_and_refuses_a_repeated_name(tmp_path):
    run = {"profile": "cpu", "machine": "CPU, 2 cores", "date": "2026-12-05", "versions": {"keras": "3.13.2"},
           "command": "python -m helpers run-notebooks",
           "notebooks": {"01_unet_introduction": {"ok": True, "minutes": 3.1, "iou_membrane": 0.25}}}
    (tmp_path / "run.json").write_text(json.dumps(run))
    target = tmp_path / "record.json"
    target.write_text(json.dumps({"about": "test", "runs": {"old": run}}))
    record.add_run("cpu-2026-12-05", tmp_path / "run.json", target)
    content = json.loads(target.read_text())
    assert list(content["runs"]) == ["old", "cpu-2026-12-05"] and content["about"] == "test"
    assert content["runs"]["cpu-2026-12-05"] == run
    with pytest.raises(ValueError, match="already in"):
        record.add_run("old", tmp_path / "run.json", target)
    with pytest.raises(FileNotFoundError, match="make run"):
        record.add_run("new", tmp_path / "missing.json", target)
    run["notebooks"]["01_unet_introduction"]["ok"] = False
    (tmp_path / "run.json").write_text(json.dumps(run))
    with pytest.raises(ValueError, match="did not run through"):
        record.add_run("failed", tmp_path / "run.json", target)
