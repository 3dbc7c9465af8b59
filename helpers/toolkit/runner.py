"""Execute the workshop notebooks headless and summarise their runtimes and scores (``make run``).

Needs the ``notebooks`` extra (nbformat, nbclient, ipykernel; nbconvert for the HTML copy).

Examples
--------
>>> run_notebooks("build", profile="quick")                 # doctest: +SKIP
0
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from helpers import env, files
from helpers.toolkit import formats

NOTEBOOK_DIR = env.REPO_ROOT / "notebooks"
NOTEBOOKS = ("01_unet_introduction.ipynb", "02_unet_further_topics.ipynb", "03_after_the_workshop.ipynb")


@dataclass
class NotebookResult:
    """Outcome of executing one notebook."""

    name: str
    seconds: float
    ipynb: Path
    html: Path | None
    error: str | None = None
    #: seconds per executed cell, by cell index
    cell_seconds: dict[int, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def detect_profile() -> str:
    """:func:`helpers.env.profile`, asked in a child process.

    Asking TensorFlow about GPUs here would initialise them in this process and reserve GPU
    memory that the notebook kernels then lack; a short-lived child releases it on exit.
    """
    if os.environ.get("UNET_PROFILE") or env.quick_mode():
        return env.profile()
    result = subprocess.run([sys.executable, "-c", "from helpers import env; print(env.profile())"],
                            capture_output=True, text=True, cwd=env.REPO_ROOT,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if result.returncode != 0:
        raise RuntimeError(f"Could not detect the run profile: {result.stderr.strip()[-300:]}. "
                           f"Pass profile='full', 'cpu' or 'quick'.")
    return result.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables (inherited by kernels started inside), restore them after."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _kernel_manager():
    """A Jupyter kernel manager that starts ipykernel with this very Python (``sys.executable``)."""
    from jupyter_client.manager import KernelManager

    class CurrentPythonKernelManager(KernelManager):
        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            return [sys.executable, "-m", "ipykernel_launcher", "-f", self.connection_file,
                    *(extra_arguments or [])]

    return CurrentPythonKernelManager(kernel_name="python3")


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{seconds % 60:04.1f}s" if seconds >= 60 else f"{seconds:.1f}s"


class OutOfTime(RuntimeError):
    """The time budget of a run ended before the notebook did."""


def execute_notebook(path: Path, out: Path, echo: Callable[[str], None] = print,
                     deadline: float | None = None) -> NotebookResult:
    """Execute one notebook in its own folder; write the executed ``.ipynb`` and ``.html`` to ``out``.

    Parameters
    ----------
    path
        The notebook.
    out
        Output folder (must exist).
    echo
        Receives one progress line per executed cell.
    deadline
        ``time.monotonic()`` value after which no further cell starts (and a running cell is
        interrupted); the notebook is then reported as failed "out of time". None: no limit.

    Returns
    -------
    NotebookResult
        ``error`` names the failing cell, or is None.
    """
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError as error:
        raise ImportError(f"Executing notebooks needs nbformat, nbclient and ipykernel ({error}): "
                          f"pip install '.[notebooks]' (or `make install`).") from error

    notebook = nbformat.read(path, as_version=4)
    total, started, cell_start = len(notebook.cells), time.perf_counter(), {}
    current = {"index": None}

    cell_seconds: dict[int, float] = {}

    def on_start(cell, cell_index: int) -> None:
        if deadline is not None and time.monotonic() > deadline:
            raise OutOfTime(f"the time budget ended before cell {cell_index + 1}")
        current["index"] = cell_index
        cell_start[cell_index] = time.perf_counter()

    def on_done(cell, cell_index: int, execute_reply) -> None:
        seconds = time.perf_counter() - cell_start.get(cell_index, started)
        cell_seconds[cell_index] = seconds
        status = execute_reply.get("content", {}).get("status", "ok") if execute_reply else "ok"
        echo(f"[{path.stem}] cell {cell_index + 1}/{total}  {seconds:.1f} s"
             + ("" if status == "ok" else f"  ({status})"))

    timeout = None if deadline is None else max(1, int(deadline - time.monotonic()))
    client = NotebookClient(notebook, km=_kernel_manager(), timeout=timeout, record_timing=True,
                            resources={"metadata": {"path": str(path.parent)}},
                            on_cell_execute=on_start, on_cell_executed=on_done)
    error = None
    try:
        # cleanup_kc: shut the kernel down now. nbclient keeps a kernel it did not start itself alive (its
        # memory too) until this process exits, when the kernel notices and warns "Parent appears to have exited".
        client.execute(cleanup_kc=True)
    except Exception as failure:  # CellExecutionError, DeadKernelError, timeouts: report and go on
        where = f"cell {current['index'] + 1}/{total}" if current["index"] is not None else "start-up"
        name = getattr(failure, "ename", type(failure).__name__)
        value = " ".join(str(getattr(failure, "evalue", None) or failure).split())[:300]
        error = f"{path.name} failed in {where}: {name}: {value}"
    seconds = time.perf_counter() - started

    ipynb = out / path.name
    with files.atomic_path(ipynb) as tmp:
        nbformat.write(notebook, tmp)
    html: Path | None = out / f"{path.stem}.html"
    try:
        from nbconvert import HTMLExporter

        body, _ = HTMLExporter().from_notebook_node(notebook)
        with files.atomic_path(html) as tmp:
            tmp.write_text(body, encoding="utf-8")
    except Exception as failure:  # a missing template must not hide the executed notebook
        echo(f"note: could not write {html}: {failure}")
        html = None
    return NotebookResult(path.stem, seconds, ipynb, html, error, cell_seconds)


def read_scores(runs: Path, since: float = 0.0) -> list[tuple[str, dict]]:
    """``(run name, scores)`` for every ``runs/<run>/scores.json`` written after ``since``."""
    found = []
    for path in sorted(runs.glob("*/scores.json")):
        if path.stat().st_mtime >= since:
            with contextlib.suppress(OSError, ValueError):
                found.append((path.parent.name, json.loads(path.read_text())))
    return found


def _number(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else str(value)


def summary(results: Sequence[NotebookResult], scores: Sequence[tuple[str, dict]], profile: str,
            runs: Path) -> str:
    """The end-of-run table: notebooks with runtimes and outputs, then the scores of each run."""
    lines = [f"== summary (profile {profile}) =="]
    lines.append(f"{'notebook':<32} {'result':<7} {'runtime':>9}  outputs")
    for result in results:
        outputs = str(result.ipynb) + (f", {result.html.name}" if result.html else "")
        lines.append(f"{result.name:<32} {'ok' if result.ok else 'FAILED':<7} {_minutes(result.seconds):>9}  {outputs}")
    if scores:
        lines.append("")
        lines.append(f"{'run':<24} {'notebook':<24} {'split':<10} {'thresh':>6} {'IoU mem':>8} {'Dice mem':>8} "
                     f"{'V_rand':>7} {'V_info':>7} {'train':>9}")
        for run, s in scores:
            train = s.get("train_seconds")
            lines.append(f"{run:<24} {str(s.get('notebook', '-')):<24} {str(s.get('split', '-')):<10} "
                         f"{_number(s.get('threshold'), 2):>6} {_number(s.get('iou_membrane')):>8} "
                         f"{_number(s.get('dice_membrane')):>8} {_number(s.get('v_rand')):>7} "
                         f"{_number(s.get('v_info')):>7} {_minutes(train) if train is not None else '-':>9}")
    else:
        lines.append(f"(no scores.json written under {runs})")
    lines.append(f"runs (models, histories, scores): {runs}")
    return "\n".join(lines)


SCORE_KEYS = ("split", "threshold", "iou_membrane", "dice_membrane", "pixel_error", "v_rand", "v_info")
"""The scores of a notebook's ``scores.json`` that :func:`run_record` keeps."""


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` where there is one)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def machine() -> str:
    """This machine in a few words, without importing TensorFlow: CPU model and cores, and any NVIDIA GPU."""
    words = f"{cpu_model()}, {os.cpu_count()} cores"
    if shutil.which("nvidia-smi"):
        found = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                               text=True, check=False).stdout.split("\n")
        words += "".join(f"; GPU {name.strip()}" for name in found if name.strip())
    return words


def run_record(results: Sequence[NotebookResult], scores: Sequence[tuple[str, dict]], profile: str) -> dict:
    """A run as ``benchmarks/RESULTS-notebooks.json`` keeps it: profile, machine, date, versions, and per
    notebook its minutes and headline scores (from the ``scores.json`` that names it).

    Examples
    --------
    >>> run_record([], [], "cpu")["profile"]                      # doctest: +SKIP
    'cpu'
    """
    versions = {"python": platform.python_version()}
    for package in ("keras", "tensorflow", "jax"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    by_notebook = {s.get("notebook") or run: s for run, s in scores}
    notebooks = {}
    for result in results:
        found = by_notebook.get(result.name, {})
        notebooks[result.name] = {"ok": result.ok, "minutes": round(result.seconds / 60, 2),
                                  **{key: (round(found[key], 3) if isinstance(found[key], float) else found[key])
                                     for key in SCORE_KEYS if found.get(key) is not None}}
    return {"profile": profile, "machine": machine(), "date": datetime.date.today().isoformat(),
            "versions": versions, "command": "python -m helpers run-notebooks", "notebooks": notebooks}


def run_notebooks(out: str | os.PathLike = "build", profile: str | None = None,
                  notebooks: Sequence[str | os.PathLike] | None = None,
                  data_dir: str | os.PathLike | None = None, echo: Callable[[str], None] | None = None,
                  deadline: float | None = None, results: list[NotebookResult] | None = None) -> int:
    """Execute the workshop notebooks headless into ``out`` and print a summary.

    The kernels see ``UNET_PROFILE``, ``UNET_RUNS_DIR`` (``out/runs``, where each notebook saves a
    ``scores.json``) and ``UNET_DATA_DIR``; a failing cell stops its notebook only.

    Parameters
    ----------
    out
        Output folder: executed notebooks, HTML and ``runs/``.
    profile
        ``"full"``, ``"cpu"`` or ``"quick"``; ``None`` = :func:`helpers.env.profile`.
    notebooks
        Notebook files to run instead of the workshop's (:data:`NOTEBOOKS`; those absent are skipped).
    data_dir
        Local ISBI 2012 copy; ``None`` = ``UNET_DATA_DIR`` or the download cache.
    echo
        Where progress and the summary go (default: print to stdout, flushed).
    deadline
        ``time.monotonic()`` after which no cell starts (see :func:`execute_notebook`).
    results
        If given, a list that receives one :class:`NotebookResult` per notebook.

    Returns
    -------
    int
        0 when every notebook ran through, 1 otherwise (the failing cells are named). ``out/run.json``
        holds the run as :func:`run_record` describes it (``python -m benchmarks.record NAME`` adds it
        to ``benchmarks/RESULTS-notebooks.json``).

    Raises
    ------
    FileNotFoundError
        No notebook to run.
    PermissionError
        ``out`` is not writable.

    Examples
    --------
    >>> run_notebooks("build", profile="quick")             # doctest: +SKIP
    0
    """
    from helpers import data

    echo = echo or (lambda line: print(line, flush=True))
    out = formats.check_writable(out)
    paths = ([Path(p) for p in notebooks] if notebooks
             else [NOTEBOOK_DIR / name for name in NOTEBOOKS if (NOTEBOOK_DIR / name).is_file()])
    missing = [str(p) for p in paths if not p.is_file()]
    if missing or not paths:
        what = ", ".join(missing) or f"none of {', '.join(NOTEBOOKS)} in {NOTEBOOK_DIR}"
        raise FileNotFoundError(f"No notebook to run: {what}. Check the path or run from the repository.")
    if profile is not None and profile not in env.PROFILES:
        raise ValueError(f"profile {profile!r} is not one of {', '.join(env.PROFILES)}.")
    profile = profile or detect_profile()
    echo(f"profile {profile}; resolving the ISBI 2012 data (downloaded once if needed) ...")
    data_path = data.data_root(data_dir)
    runs = out.resolve() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    # The kernels find helpers from the repository even where it is not pip-installed (a GPU machine).
    path = os.pathsep.join(p for p in (str(env.REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    variables = {"UNET_PROFILE": profile, "UNET_QUICK": "1" if profile == "quick" else "0",
                 "UNET_RUNS_DIR": str(runs), "UNET_DATA_DIR": str(Path(data_path).resolve()), "PYTHONPATH": path,
                 "UNET_HEADLESS": "1",  # live training views leave one final figure, not one per epoch
                 "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "1")}  # no C++ INFO lines
    started = time.time()
    results = [] if results is None else results
    with environment(variables):
        for path in paths:
            echo(f"== {path} ({len(results) + 1}/{len(paths)})")
            result = execute_notebook(path.resolve(), out, echo, deadline)
            if result.error:
                echo(f"error: {result.error}; the executed notebook (with the error) is {result.ipynb}")
            results.append(result)
    scores = read_scores(runs, since=started - 1)
    echo(summary(results, scores, profile, runs))
    formats.write_json(out / "run.json", run_record(results, scores, profile))
    return 0 if all(result.ok for result in results) else 1
