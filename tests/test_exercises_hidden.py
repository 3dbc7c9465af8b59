"""Exercises keep their answers: run unanswered (Run all), nothing up to and including a check gives one away.

An exercise section is found the same way in every notebook: from a markdown cell whose ``##`` heading
names "Exercises" up to the next ``##`` heading. In it, an exercise is a code cell that sets answer
variables to None (``my_guess = None``, ``A, B = None, None``) and its check is the next code cell that
reads one of them.

* Notebook 1 is executed (quick profile, nbclient, about 1-2 minutes on 2 CPU cores). The true answers are
  then asked from its kernel (:data:`ANSWERS`), and their printed forms (``7,696,193``, ``(None, 12, 12,
  128)``, ``higher``) may appear in no output, and the numbers in no markdown, up to and including the
  check; an unanswered check draws nothing.
* Every notebook's checks (2 and 3 too, which are not executed here again: nbval runs every notebook once
  already, and CI must stay well under 45 minutes) are run on their own with the answers None and every
  notebook name but ``helpers.exercises`` replaced by an opaque stand-in: an unanswered check may only ask
  for the answer (no digit, nothing computed printed or drawn). What notebooks 2 and 3 show *before* their
  checks is not checked against their answers here.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import io
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

from helpers import exercises

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

#: Per executed notebook: answer variable -> expression, evaluated in the executed kernel, of the true answer.
ANSWERS = {"01_unet_introduction.ipynb": {
    "my_guess": "fewer.count_params()",
    "my_shape": "exercises.bottleneck_shape(larger)",
    "my_answer": "exercises.threshold_direction(curve, low=0.3, high=0.5)",
}}

_NONE_LINE = re.compile(r"^\s*([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*=\s*None(?:\s*,\s*None)*\s*(?:#.*)?$", re.M)


def _heading(cell) -> str | None:
    """The cell's ``## `` heading (level 2 exactly), or None."""
    if cell.cell_type != "markdown":
        return None
    return next((line[3:] for line in cell.source.splitlines() if line.startswith("## ")), None)


def find_exercises(notebook) -> list[dict]:
    """The exercises of ``notebook``: ``names`` (answer variables), ``answer`` and ``check`` (cell indices)."""
    found, in_section = [], False
    for index, cell in enumerate(notebook.cells):
        heading = _heading(cell)
        if heading is not None:
            in_section = "exercise" in heading.lower()
        if not in_section or cell.cell_type != "code":
            continue
        names = [name.strip() for match in _NONE_LINE.finditer(cell.source) for name in match.group(1).split(",")]
        if names:
            found.append({"names": names, "answer": index, "check": None})
        elif found and found[-1]["check"] is None and any(
                re.search(rf"\b{name}\b", cell.source) for name in found[-1]["names"]):
            found[-1]["check"] = index
    return found


def answer_forms(answer) -> tuple[list[str], bool]:
    """How an answer would be printed, and whether to look for it in markdown too (numbers and shapes only)."""
    if isinstance(answer, bool) or answer is None:
        raise ValueError(f"answer={answer!r}: expected a number, a shape or a word.")
    if isinstance(answer, (int, float)):
        return [f"{answer:,}", str(answer)], True
    if isinstance(answer, (list, tuple)):
        inner = [str(part) for part in answer if part is not None]
        return [str(tuple(answer)), ", ".join(inner), " x ".join(inner), " × ".join(inner)], True
    return [str(answer)], False


def _texts(cell) -> list[str]:
    """Every text a code cell's outputs show (streams, text representations, errors)."""
    texts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            texts.append(output.get("text", ""))
        elif output.get("output_type") == "error":
            texts.append("\n".join(output.get("traceback", [])))
        for kind, value in output.get("data", {}).items():
            if kind.startswith("text/") or kind.endswith("json"):
                texts.append(value if isinstance(value, str) else json.dumps(value))
    return texts


def leaks(notebook, upto: int, answer) -> list[str]:
    """Where ``answer`` shows in cells ``0..upto`` (outputs; markdown too for numbers and shapes)."""
    forms, in_markdown = answer_forms(answer)
    pattern = re.compile("|".join(rf"(?<![\w.,]){re.escape(form)}(?![\w,]|\.\d)" for form in forms), re.I)
    found = []
    for index, cell in enumerate(notebook.cells[:upto + 1]):
        texts = _texts(cell) if cell.cell_type == "code" else [cell.source] if in_markdown else []
        found += [f"cell {index} ({cell.cell_type}): {match.group(0)!r}" for text in texts
                  for match in pattern.finditer(text)]
    return found


class Opaque:
    """Stands for any notebook object in an unanswered check: every use gives another Opaque, printing shows
    ``<opaque>``, and branching on it fails (an unanswered check must not depend on the notebook's state)."""

    def __getattr__(self, name):
        return Opaque()

    def __call__(self, *args, **kwargs):
        return Opaque()

    def __getitem__(self, key):
        return Opaque()

    def __str__(self):
        return "<opaque>"

    __repr__ = __str__

    def __format__(self, spec):
        return "<opaque>"

    def __bool__(self):
        raise TypeError("an unanswered check branches on the notebook's state")

    def __iter__(self):
        raise TypeError("an unanswered check unpacks the notebook's state")

    def _op(self, *other):
        return Opaque()

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _op
    __floordiv__ = __mod__ = __pow__ = __neg__ = __abs__ = __round__ = __lt__ = __le__ = __gt__ = __ge__ = _op


class _Checks(Opaque):
    """``helpers.exercises`` in an unanswered check: the real ``check_*`` functions, anything else Opaque."""

    def __getattr__(self, name):
        return getattr(exercises, name) if name.startswith("check_") else Opaque()


class _Namespace(dict):
    """Names of an unanswered check: builtins, ``exercises``, the answers (None); anything else is Opaque."""

    def __missing__(self, name):
        if name == "exercises":  # its checks, and stand-ins for the rest (e.g. bottleneck_shape)
            return _Checks()
        if name == "display":
            return lambda *objects, **kwargs: print("<displayed>")
        return getattr(builtins, name) if hasattr(builtins, name) else Opaque()


def run_unanswered(source: str, names: list[str]) -> str:
    """What a check cell prints with ``names`` None and no notebook state; its last expression counts as shown."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    tree = ast.parse(code)
    shown = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    namespace = _Namespace({name: None for name in names})
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(tree, "<check>", "exec"), {"__builtins__": builtins}, namespace)
        if shown is not None and eval(compile(ast.Expression(shown.value), "<check>", "eval"), {}, namespace) \
                is not None:
            print("<displayed>")
    return out.getvalue()


def unanswered_problems(source: str, names: list[str]) -> list[str]:
    """Why a check cell, run with its answers None, gives more than a request for an answer (empty: fine)."""
    try:
        printed = run_unanswered(source, names)
    except Exception as error:  # noqa: BLE001 - any failure is the finding
        return [f"it fails without notebook state: {type(error).__name__}: {error}"]
    asks = [line for line in printed.splitlines() if any(re.search(rf"\b{name}\b", line) for name in names)]
    problems = ["it draws something"] if "<displayed>" in printed else []
    problems += [f"it prints a number or the notebook's state besides asking: {line!r}"
                 for line in printed.splitlines() if line not in asks and re.search(r"\d|<opaque>", line)]
    if not asks:
        problems.append(f"it does not ask for {' or '.join(names)}: {printed!r}")
    return problems


def _notebooks() -> list[Path]:
    return sorted(path for path in NOTEBOOKS.glob("[0-9]*.ipynb") if find_exercises(nbformat.read(path, 4)))


# ---------------------------------------------------------------------------------------------------------
# The check functions


@pytest.fixture(autouse=True)
def _fresh_attempts(monkeypatch):
    monkeypatch.setattr(exercises, "_WRONG", {})


CASES = [  # check, right answer, wrong answers, what the true answer prints as
    (lambda guess: exercises.check_count(guess, 7_696_193), 7_700_000, [15_000_000, 3_000_000, 1], "7,696,193"),
    (lambda guess: exercises.check_shape(guess, (None, 12, 12, 1024)), (None, 12, 12, 1024),
     [(None, 8, 8, 1024), (None, 12, 12, 512), (12, 12, 1024)], "12, 12, 1024"),
]


@pytest.mark.parametrize("check, right, wrong, shown", CASES)
def test_checks_keep_the_answer_until_an_attempt(check, right, wrong, shown):
    unanswered = check(None)
    assert unanswered.passed is None and not unanswered.revealed
    assert shown not in str(unanswered) and not re.search(r"\d", str(unanswered))
    for attempt, guess in enumerate(wrong[:2]):
        result = check(guess)
        assert result.passed is False and not result.revealed and shown not in str(result)
        assert "try" in str(result) and "again" in str(result)
        again = check(guess)  # the same wrong answer again is no new attempt
        assert not again.revealed and str(again) == str(result)
    last = check(wrong[2])  # the third different wrong answer: the check shows it
    assert last.revealed and shown in str(last)
    assert check(right).passed and check(right).revealed and shown in str(check(right))


def test_count_and_shape_hints():
    count, shape = (lambda guess: str(exercises.check_count(guess, 7_696_193, reveal_after=9)),
                    lambda guess: str(exercises.check_shape(guess, (None, 12, 12, 1024), reveal_after=9)))
    assert "too high" in count(31_030_593) and "too low" in count(1_000)
    assert "height and width" in shape((None, 8, 8, 1024)) and "channels" in shape((None, 12, 12, 512))
    assert "batch" in shape((1, 12, 12, 1024)) and "4 entries" in shape((12, 12, 1024))


def test_direction_keeps_the_scores_until_an_attempt():
    import pandas as pd

    curve = pd.DataFrame({"threshold": [0.3, 0.5], "iou_membrane": [0.4321, 0.3876]})
    unanswered = exercises.check_direction(None, curve)
    assert unanswered.passed is None and not re.search(r"\d|higher|lower|same", str(unanswered))
    wrong = exercises.check_direction("lower", curve)
    assert wrong.passed is False and not wrong.revealed and not re.search(r"0\.4|0\.3|higher", str(wrong))
    assert "answer one of" in str(exercises.check_direction("up", curve))  # no attempt: not counted
    last = exercises.check_direction("The same", curve)  # two of three wrong: the answer follows
    assert last.revealed and "0.432" in str(last) and "higher at 0.3" in str(last)
    assert exercises.check_direction("HIGHER ", curve).passed


# ---------------------------------------------------------------------------------------------------------
# The scanners can fail


def _fake_notebook(check_source: str, earlier_output: str = "", markdown: str = "") -> nbformat.NotebookNode:
    v4 = nbformat.v4
    earlier = v4.new_code_cell("print(model.count_params())", outputs=[
        v4.new_output("stream", name="stdout", text=earlier_output)])
    return v4.new_notebook(cells=[
        v4.new_markdown_cell("## 1. Train" + markdown), earlier,
        v4.new_markdown_cell("## 9. Exercises\n\n### Exercise 1"),
        v4.new_code_cell("my_guess = None   # your prediction"),
        v4.new_code_cell(check_source),
        v4.new_markdown_cell("## Solutions\n\n7,696,193"),
    ])


def test_find_exercises_reads_several_answers_per_cell():
    notebook = _fake_notebook("print(exercises.check_count(my_guess, 7))")
    assert find_exercises(notebook) == [{"names": ["my_guess"], "answer": 3, "check": 4}]
    notebook.cells[3].source = "MY_EPOCH, MY_WHY = None, None  # e.g. 3, 'a'"
    notebook.cells[4].source = "if MY_EPOCH is None or MY_WHY is None:\n    print('Set MY_EPOCH again')"
    assert find_exercises(notebook)[0]["names"] == ["MY_EPOCH", "MY_WHY"]


def test_scanner_flags_an_answer_in_an_earlier_output_or_markdown():
    assert leaks(_fake_notebook("", earlier_output="7,696,193 parameters\n"), 4, 7_696_193) == [
        "cell 1 (code): '7,696,193'"]
    assert leaks(_fake_notebook("", markdown="\nabout 7696193 of them"), 4, 7_696_193)
    assert leaks(_fake_notebook("", earlier_output="17,696,193 or 7,696,1930\n"), 4, 7_696_193) == []
    assert leaks(_fake_notebook(""), 4, 7_696_193) == []  # the solutions, after the check, may say it
    assert leaks(_fake_notebook("", earlier_output="bottleneck (None, 12, 12, 128)"), 4, (None, 12, 12, 128))
    assert leaks(_fake_notebook("", earlier_output="-> Higher at 0.3"), 4, "higher")
    assert not leaks(_fake_notebook("", earlier_output="ever higher"), 4, "lower")


@pytest.mark.parametrize("source", [
    "print(exercises.check_count(my_guess, fewer.count_params()))",
    "fewer = models.custom_unet((128, 128, 1), num_layers=3)\n"
    "print(exercises.check_count(my_guess, fewer.count_params()))",
    "curve = evaluate.threshold_curve(p, t)\nverdict = exercises.check_direction(my_answer, curve)\nprint(verdict)\n"
    "if verdict.revealed:\n    display(plots.plot_threshold_curve(curve))",
    "if my_guess is None:\n    print('Set my_guess in the cell above and run this cell again.')\n"
    "else:\n    print(model)",
])
def test_unanswered_check_that_only_asks_passes(source):
    names = ["my_answer"] if "my_answer" in source else ["my_guess"]
    assert unanswered_problems(source, names) == []


@pytest.mark.parametrize("source, problem", [
    ("print(f'actual {model.count_params():,}')\nprint(exercises.check_count(my_guess, 5))", "state"),
    ("print(exercises.check_count(my_guess, 5))\nplots.plot_threshold_curve(curve)", "draws"),
    ("print(exercises.check_count(my_guess, 5))\ndisplay(figure)", "draws"),
    ("print('IoU at 0.3: 0.41, at 0.5: 0.39 -> higher')\nprint(exercises.check_count(my_guess, 5))", "a number"),
    ("if best > 0.5:\n    print('my_guess: higher')", "branches"),
    ("print('well done')", "does not ask"),
])
def test_unanswered_check_that_shows_something_is_flagged(source, problem):
    assert any(problem in text for text in unanswered_problems(source, ["my_guess"]))


# ---------------------------------------------------------------------------------------------------------
# The notebooks


@pytest.mark.parametrize("path", _notebooks(), ids=lambda path: path.stem)
def test_every_unanswered_check_only_asks_for_the_answer(path):
    found = find_exercises(nbformat.read(path, 4))
    assert found and all(exercise["check"] is not None for exercise in found), found
    notebook = nbformat.read(path, 4)
    problems = {f"cell {exercise['check']} ({', '.join(exercise['names'])})":
                unanswered_problems(notebook.cells[exercise["check"]].source, exercise["names"])
                for exercise in found}
    assert not any(problems.values()), problems


def _execute(path: Path, expressions: dict[str, str]) -> tuple[nbformat.NotebookNode, dict]:
    """Run ``path`` in a kernel of this Python (quick profile); return it and the answers its kernel computes."""
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    class CurrentPython(KernelManager):
        def format_kernel_cmd(self, extra_arguments=None):
            return [sys.executable, "-m", "ipykernel_launcher", "-f", self.connection_file, *(extra_arguments or [])]

    notebook = nbformat.read(path, 4)
    query = "import json\nprint('ANSWERS=' + json.dumps({" + ", ".join(
        f"{name!r}: {expression}" for name, expression in expressions.items()) + "}))"
    notebook.cells.append(nbformat.v4.new_code_cell(query))
    NotebookClient(notebook, km=CurrentPython(kernel_name="python3"), timeout=900,
                   resources={"metadata": {"path": str(path.parent)}}).execute(cleanup_kc=True)
    printed = "".join(_texts(notebook.cells.pop()))
    return notebook, json.loads(printed.split("ANSWERS=", 1)[1])


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_executed_notebook_hides_every_answer_up_to_its_check(name, tmp_path, monkeypatch, isbi_dir):
    for variable, value in {"UNET_QUICK": "1", "UNET_HEADLESS": "1", "UNET_DATA_DIR": str(isbi_dir),
                            "UNET_RUNS_DIR": str(tmp_path / "runs")}.items():
        monkeypatch.setenv(variable, value)
    notebook, answers = _execute(NOTEBOOKS / name, ANSWERS[name])
    found = find_exercises(notebook)
    assert sorted(name for exercise in found for name in exercise["names"]) == sorted(answers)
    for exercise in found:
        check = notebook.cells[exercise["check"]]
        for variable in exercise["names"]:
            answer = tuple(answers[variable]) if isinstance(answers[variable], list) else answers[variable]
            assert leaks(notebook, exercise["check"], answer) == [], f"{variable} = {answer!r} shows"
        assert not [output for output in check.outputs if "image/png" in output.get("data", {})], "a figure"
        assert any(f"Fill in {variable}" in text for variable in exercise["names"] for text in _texts(check))
