"""Notebook invariants that nbval does not see: Colab opens each on a GPU runtime, outputs are stripped,
code cells stay short, no sentence is said twice, and notebook 2 fits a session."""

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


def _markdown(path: Path) -> list[str]:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "markdown"]


def _sentences(text: str) -> list[str]:
    """The prose sentences of one markdown cell: tables and code blocks left out, whitespace and case normalised."""
    text = re.sub(r"```.*?```", " ", text, flags=re.DOTALL)
    prose = " ".join(line for line in text.splitlines() if not line.lstrip().startswith("|"))
    parts = re.split(r"(?<=[.!?:;])\s+|\s+\*\s+|^\*\s+", prose)
    return [" ".join(part.lower().split()) for part in parts if part.strip()]


def test_notebook_3_is_tested_here_too():
    assert "03_after_the_workshop" in {path.stem for path in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_sentence_is_said_twice_in_a_notebook(path):
    seen: dict[str, int] = {}
    for index, text in enumerate(_markdown(path)):
        for sentence in _sentences(text):
            if len(sentence.split()) >= 8:
                assert sentence not in seen, f"said twice (markdown cells {seen[sentence]} and {index}): {sentence!r}"
                seen[sentence] = index


def test_sentence_check_finds_a_repeat():
    text = "Section 6 adds the border weights to the cross-entropy. Section 6 adds the border weights to the cross-entropy."
    sentences = [s for s in _sentences(text) if len(s.split()) >= 8]
    assert len(sentences) == 2 and len(set(sentences)) == 1


def test_notebook_2_fits_a_session_in_words():
    path = next(p for p in NOTEBOOKS if p.stem.startswith("02_"))
    words = sum(len(text.split()) for text in _markdown(path))
    assert words <= 4000, f"notebook 2 has {words} words of markdown; the session allows about 4,000"
