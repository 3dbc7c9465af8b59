"""Notebook invariants that nbval does not see: Colab opens both on a GPU runtime, outputs are stripped."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_colab_asks_for_a_gpu_and_outputs_are_stripped(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert notebook["metadata"]["accelerator"] == "GPU"
    assert notebook["metadata"]["colab"]["gpuType"] == "T4"
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code and all(not cell["outputs"] and cell["execution_count"] is None for cell in code)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_colab_cell_prepares_the_runtime_through_helpers(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    colab = "".join(next(c for c in notebook["cells"] if c["cell_type"] == "code")["source"])
    # one place decides what to install: keras-unet, plus what the notebook passes as extra=(...)
    assert re.search(r"env\.prepare_colab\((extra=[^)]*)?\)", colab) and "pip install" not in colab


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_cells_stay_short_and_profiles_go_through_helpers(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    sources = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    long = {i: len(s.splitlines()) for i, s in enumerate(sources) if len(s.splitlines()) > 15}
    assert not long, f"code cells over 15 lines: {long}"
    assert sum(bool(re.search(r"env\.apply_profile\(\s*globals\(\)", s)) for s in sources) == 1
    assert not any('PROFILE == "cpu"' in s for s in sources)  # no hand-coded overrides


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_cell_has_a_stable_unique_id(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    ids = [cell.get("id") for cell in notebook["cells"]]
    assert all(ids) and len(set(ids)) == len(ids)
