"""``python -m benchmarks.record NAME [--run build/run.json]``: add a notebook run to the committed record.

``make run`` (``python -m helpers run-notebooks``) ends by writing ``build/run.json``: the profile,
machine, date and versions of the run, and per notebook its minutes and headline scores
(:func:`helpers.toolkit.runner.run_record`). This command appends it to
``benchmarks/RESULTS-notebooks.json`` under ``NAME``; the README's table quotes that record, and
``tests/test_readme_record.py`` checks the two against each other.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

RECORD = Path(__file__).resolve().parent / "RESULTS-notebooks.json"


def add_run(name: str, run: str | os.PathLike = "build/run.json", record: str | os.PathLike = RECORD) -> dict:
    """Append the run in ``run`` to ``record`` under ``name``; return the run.

    Raises
    ------
    FileNotFoundError
        ``run`` does not exist (run ``make run`` first).
    ValueError
        ``name`` is empty or already in the record, or a notebook of the run failed.

    Examples
    --------
    >>> add_run("cpu-2026-12-05")                                    # doctest: +SKIP
    """
    run, record = Path(run), Path(record)
    if not run.is_file():
        raise FileNotFoundError(f"run={str(run)!r} does not exist: run `make run` first, or pass the run.json "
                                f"it wrote (OUT/run.json of `python -m helpers run-notebooks --out OUT`).")
    entry = json.loads(run.read_text())
    content = json.loads(record.read_text()) if record.is_file() else {"runs": {}}
    if not name.strip() or name in content["runs"]:
        raise ValueError(f"name={name!r} is empty or already in {record.name}; choose a new name, "
                         f"e.g. '{entry.get('profile', 'cpu')}-{entry.get('date', 'YYYY-MM-DD')}'.")
    failed = [notebook for notebook, values in entry.get("notebooks", {}).items() if not values.get("ok", True)]
    if failed:
        raise ValueError(f"run={str(run)!r}: {', '.join(failed)} did not run through; a record holds complete "
                         f"runs only. Fix the notebook and run again.")
    content["runs"][name] = entry
    record.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n")
    return entry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.record", description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="the run's name in the record, e.g. cpu-2026-12-05")
    parser.add_argument("--run", default="build/run.json", help="the run's summary (default: build/run.json)")
    parser.add_argument("--record", default=str(RECORD), help="the record (default: benchmarks/RESULTS-notebooks.json)")
    args = parser.parse_args(argv)
    try:
        entry = add_run(args.name, args.run, args.record)
    except (FileNotFoundError, ValueError) as error:
        parser.exit(2, f"error: {error}\n")
    minutes = ", ".join(f"{notebook} {values['minutes']} min" for notebook, values in entry["notebooks"].items())
    print(f"added {args.name} ({entry['profile']} profile, {entry['date']}): {minutes}")


if __name__ == "__main__":
    main()
