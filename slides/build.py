"""Build the workshop deck: slides.md -> an offline reveal.js page with computed figures.

Usage (from the repository root)::

    .venv/bin/python slides/build.py --out build/slides          # fetches reveal.js once
    .venv/bin/python slides/build.py --out build/slides --offline  # never touches the network
    .venv/bin/python slides/build.py --fetch-only                 # only cache reveal.js

Steps:

1. **reveal.js** comes from the npm registry as one pinned tarball
   (``npm pack reveal.js@REVEAL_VERSION``), checked against its published SHA-512 and kept in a
   git-ignored cache (``build/cache``, or ``$UNET_SLIDES_CACHE``). Later builds use the cache and
   need no network. ``dist/`` and the speaker-notes plugin are copied next to ``index.html``.
2. **Figures** named in ``slides.md`` as ``figures/<name>.png`` are drawn by ``slides/figures.py``.
3. **Computed values** written ``{{ name }}`` in ``slides.md`` are filled in from
   :func:`computed_values` (the same Keras calls that the tests check).
4. **Markdown** is split into slides on lines holding only ``---``; a line starting with
   ``Note:`` begins the speaker notes (press ``S`` in the browser); an optional first line
   ``<!-- .slide: id="name" -->`` sets the slide's id, so ``index.html#/name`` opens it.

Examples
--------
>>> build_deck(Path("build/slides"), offline=True)  # doctest: +SKIP
PosixPath('build/slides/index.html')
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import markdown

SLIDES_DIR = Path(__file__).resolve().parent
REPO = SLIDES_DIR.parent
if str(REPO) not in sys.path:  # so that `python slides/build.py` can import the slides package
    sys.path.insert(0, str(REPO))

REVEAL_VERSION = "5.2.1"
#: The npm registry's `dist.integrity` of reveal.js 5.2.1 (npm view reveal.js@5.2.1 dist.integrity).
REVEAL_INTEGRITY = (
    "sha512-r7//6mIM5p34hFiDMvYfXgyjXqGRta+/psd9YtytsgRlrpRzFv4RbH76TXd2qD+7ZPZEbpBDhdRhJaFgfQ7zNQ=="
)
#: Parts of the reveal.js package the deck needs, copied under <out>/reveal/.
REVEAL_PARTS = ("dist/", "plugin/notes/")
DEFAULT_CACHE = REPO / "build" / "cache"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "isbi2012"
TITLE = "U-Net image segmentation workshop"

SLIDE_ATTRIBUTES = re.compile(r"^\s*<!--\s*\.slide:(.*?)-->\s*$")
PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
FIGURE_REF = re.compile(r"\]\(figures/([\w.-]+\.png)\)")


# --------------------------------------------------------------------------- reveal.js


def cache_dir() -> Path:
    """Folder that keeps the reveal.js tarball (``$UNET_SLIDES_CACHE`` or ``build/cache``)."""
    return Path(os.environ.get("UNET_SLIDES_CACHE", DEFAULT_CACHE))


def _integrity_ok(path: Path) -> bool:
    algorithm, _, expected = REVEAL_INTEGRITY.partition("-")
    digest = hashlib.new(algorithm, path.read_bytes()).digest()
    return base64.b64encode(digest).decode() == expected


def reveal_tarball(cache: Path | None = None, offline: bool = False) -> Path:
    """Return the cached, verified reveal.js tarball, fetching it with npm when allowed.

    Parameters
    ----------
    cache : Path, optional
        Cache folder; default :func:`cache_dir`.
    offline : bool
        Never run npm; fail if the tarball is not cached.

    Returns
    -------
    Path
        ``<cache>/reveal.js-<REVEAL_VERSION>.tgz``.

    Raises
    ------
    FileNotFoundError
        Offline and not cached, or npm is missing.
    RuntimeError
        npm failed, or the tarball does not match its published checksum.

    Examples
    --------
    >>> reveal_tarball(offline=True).name  # doctest: +SKIP
    'reveal.js-5.2.1.tgz'
    """
    cache = Path(cache) if cache is not None else cache_dir()
    path = cache / f"reveal.js-{REVEAL_VERSION}.tgz"
    if path.is_file() and _integrity_ok(path):
        return path
    fetch_hint = f"run `python slides/build.py --fetch-only` once with network (needs npm) to cache it"
    if offline:
        raise FileNotFoundError(f"reveal.js {REVEAL_VERSION} is not cached at {path}; {fetch_hint}")
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError(
            "npm not found: the deck needs reveal.js from the npm registry. Install Node.js/npm "
            f"(e.g. `apt-get install npm`), or copy reveal.js-{REVEAL_VERSION}.tgz into {cache}"
        )
    cache.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [npm, "pack", f"reveal.js@{REVEAL_VERSION}", "--pack-destination", str(cache), "--silent"],
        capture_output=True, text=True,
    )
    if result.returncode != 0 or not path.is_file():
        raise RuntimeError(f"`npm pack reveal.js@{REVEAL_VERSION}` failed:\n{result.stderr.strip()}")
    if not _integrity_ok(path):
        path.unlink()
        raise RuntimeError(f"reveal.js tarball from npm does not match {REVEAL_INTEGRITY}; deleted it")
    return path


def install_reveal(out: Path, offline: bool = False) -> Path:
    """Unpack reveal.js' ``dist/`` and notes plugin into ``<out>/reveal``.

    Parameters
    ----------
    out : Path
        The deck's output folder.
    offline : bool
        Passed to :func:`reveal_tarball`.

    Returns
    -------
    Path
        ``<out>/reveal``.

    Examples
    --------
    >>> install_reveal(Path("build/slides"), offline=True)  # doctest: +SKIP
    PosixPath('build/slides/reveal')
    """
    target = Path(out) / "reveal"
    if target.exists():
        shutil.rmtree(target)
    with tarfile.open(reveal_tarball(offline=offline)) as archive:
        for member in archive.getmembers():
            relative = member.name.removeprefix("package/")
            if not member.isfile() or not relative.startswith(REVEAL_PARTS) or ".." in relative:
                continue
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(archive.extractfile(member).read())
    return target


# --------------------------------------------------------------------------- content


def computed_values() -> dict[str, str]:
    """Values that ``slides.md`` shows as ``{{ name }}``, computed with Keras by slides/examples.py
    or read from the helpers the notebooks use (the augmentation values of ``helpers.augment``).

    Returns
    -------
    dict
        Placeholder name -> text.

    Examples
    --------
    >>> computed_values()["maxpool_output"]  # doctest: +SKIP
    '[[10, 14], [2, -3]]'
    """
    from helpers import augment
    from slides import examples

    def fmt(array) -> str:
        return str(array.astype(int).tolist())

    pool = examples.max_pooling()
    transposed = examples.transposed_convolution()
    padding = examples.same_padding()
    return {
        "maxpool_input": fmt(pool["input"]),
        "maxpool_output": fmt(pool["output"]),
        "tconv_input": fmt(transposed["input"]),
        "tconv_kernel": fmt(transposed["kernel"]),
        "tconv_output": fmt(transposed["keras"]),
        "tconv_max_difference": f"{abs(transposed['product'] - transposed['keras']).max():g}",
        "padding_same_shape": "×".join(map(str, padding["same"].shape)),
        "padding_valid_shape": "×".join(map(str, padding["valid"].shape)),
        "unet_valid_572": str(examples.unet_output_size(572, "valid")),
        "unet_same_512": str(examples.unet_output_size(512, "same")),
        "unet_valid_512": str(examples.unet_output_size(512, "valid")),
        "augment_original": examples.describe_augmentation(augment.ORIGINAL_ARGS),
        "augment_default": examples.describe_augmentation(augment.DEFAULT_ARGS),
        **recipe_values(),
    }


#: Rows of the recipe benchmark the deck quotes: placeholder key -> variant name.
RECIPE_ROWS = {"today": "today: BCE + Jaccard", "bce": "BCE", "weighted": "border-weighted BCE + Jaccard",
               "batchnorm": "batch norm", "slow": "Adam 1e-4"}


def recipe_values(record: Path | None = None) -> dict[str, str]:
    """``recipe_<row>_<iou|vrand|spread>`` from the recipe benchmark's record of runs.

    The slide "One run cannot decide" quotes these; they come from
    ``benchmarks/results/recipe.jsonl`` (``python -m benchmarks recipe``), so the slide and the
    benchmark report cannot disagree. ``recipe_loss_spread`` is the largest spread of V_rand over
    the seeds among the loss variants.

    Examples
    --------
    >>> recipe_values()["recipe_weighted_vrand"]  # doctest: +SKIP
    '0.888'
    """
    from benchmarks import recipe

    path = record or recipe.RESULTS
    rows = [row for row in recipe._done(path) if row.get("budget") == "cpu"]
    protocol = f"{recipe.PROTOCOL}: {recipe.PROTOCOL_TEXT}"
    if not rows:  # runs scored before the protocol changed: shown, and said to be so
        rows = [row for row in recipe._done(path, protocol=None) if row.get("budget") == "cpu"]
        protocol = ("V_rand at each held-out slice's own best threshold, the protocol these runs were scored by; "
                    "thresholds chosen on validation need the benchmark run again (`python -m benchmarks recipe`)")
    if not rows:
        raise FileNotFoundError(f"{path} holds no runs: run `python -m benchmarks recipe`.")
    table = recipe.summarise(rows)
    combined = next(name for name in table.index if name.startswith("combined: "))  # the winners, confirmed
    label = combined.removeprefix("combined: ").replace("today's recipe", "BCE + Jaccard (no change won)")
    values = {"recipe_protocol": protocol, "recipe_combined_name": label,
              "recipe_date": max(row["date"] for row in rows)[:10]}
    for key, name in {**RECIPE_ROWS, "combined": combined}.items():
        values[f"recipe_{key}_iou"] = f"{table.loc[name, 'iou_membrane']:.3f}"
        values[f"recipe_{key}_vrand"] = f"{table.loc[name, 'v_rand']:.3f}"
        values[f"recipe_{key}_spread"] = f"{table.loc[name, 'v_rand spread']:.3f}"
    losses = [name for name in recipe.GROUPS["loss"] if name in table.index]
    values["recipe_loss_spread"] = f"{table.loc[losses, 'v_rand spread'].max():.2f}"
    return values


def split_slides(source: str) -> list[dict[str, str]]:
    """Split Markdown into slides: ``{"attributes", "body", "notes"}`` per slide.

    Parameters
    ----------
    source : str
        The whole Markdown file.

    Returns
    -------
    list of dict
        One entry per slide, in order.

    Examples
    --------
    >>> [s["body"] for s in split_slides("# A\\n---\\n# B\\nNote: say hi")]
    ['# A', '# B']
    """
    slides, lines, in_code = [], [], False
    for line in source.splitlines() + ["---"]:
        if line.startswith("```"):
            in_code = not in_code
        if line.strip() == "---" and not in_code:
            text = "\n".join(lines).strip()
            lines = []
            if not text:
                continue
            attributes = ""
            first, _, rest = text.partition("\n")
            match = SLIDE_ATTRIBUTES.match(first)
            if match:
                attributes, text = match.group(1).strip(), rest.strip()
            note = re.search(r"^Note:", text, flags=re.M)
            body, notes = (text[: note.start()], text[note.end() :]) if note else (text, "")
            slides.append({"attributes": attributes, "body": body.strip(), "notes": notes.strip()})
        else:
            lines.append(line)
    return slides


def fill_placeholders(source: str, values: dict[str, str]) -> str:
    """Replace ``{{ name }}`` with ``values[name]``; unknown names raise ValueError.

    Examples
    --------
    >>> fill_placeholders("out = {{ x }}", {"x": "3"})
    'out = 3'
    """
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            raise ValueError(f"slides.md uses {{{{ {name} }}}} but build.py computes only {sorted(values)}")
        return html.escape(values[name])

    return PLACEHOLDER.sub(replace, source)


def render_html(slides: list[dict[str, str]], title: str = TITLE) -> str:
    """Wrap rendered slides in a reveal.js page that only loads files next to it."""
    converter = markdown.Markdown(extensions=["extra", "sane_lists"])
    sections = []
    for slide in slides:
        body = converter.reset().convert(slide["body"])
        notes = converter.reset().convert(slide["notes"]) if slide["notes"] else ""
        aside = f'\n<aside class="notes">{notes}</aside>' if notes else ""
        attributes = f" {slide['attributes']}" if slide["attributes"] else ""
        sections.append(f"<section{attributes}>\n{body}{aside}\n</section>")
    css = (SLIDES_DIR / "style.css").read_text()
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="reveal/dist/reset.css">
<link rel="stylesheet" href="reveal/dist/reveal.css">
<link rel="stylesheet" href="reveal/dist/theme/white.css">
<style>
{css}</style>
</head>
<body>
<div class="reveal"><div class="slides">
{chr(10).join(sections)}
</div></div>
<script src="reveal/dist/reveal.js"></script>
<script src="reveal/plugin/notes/notes.js"></script>
<script>
Reveal.initialize({{hash: true, slideNumber: "c/t", width: 1280, height: 720, margin: 0.04,
                   transition: "none", plugins: [RevealNotes]}});
</script>
</body>
</html>
"""


def data_dir(given: str | os.PathLike | None = None) -> Path:
    """ISBI 2012 folder: ``given``, else ``$UNET_DATA_DIR``, else ``../shared/data/isbi2012``,
    else the project's downloaded cache (``helpers.data.data_root``)."""
    for candidate in (given, os.environ.get("UNET_DATA_DIR"), DEFAULT_DATA):
        if candidate and (Path(candidate) / "train" / "image" / "0.png").is_file():
            return Path(candidate)
    from helpers import data

    return data.data_root()


def build_deck(out: Path, source: Path = SLIDES_DIR / "slides.md", offline: bool = False,
               data: str | os.PathLike | None = None, dpi: int = 110) -> Path:
    """Build the deck into ``out`` and return the path of its ``index.html``.

    Parameters
    ----------
    out : Path
        Output folder (created; ``reveal/`` and ``figures/`` inside are rewritten).
    source : Path
        The Markdown source.
    offline : bool
        Use only the cached reveal.js (no npm, no network).
    data : path, optional
        ISBI 2012 folder; see :func:`data_dir`.
    dpi : int
        Resolution of the figures (the tests use a low one to stay quick).

    Returns
    -------
    Path
        ``<out>/index.html``.

    Examples
    --------
    >>> build_deck(Path("/tmp/deck"), offline=True)  # doctest: +SKIP
    PosixPath('/tmp/deck/index.html')
    """
    from slides import figures

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    install_reveal(out, offline=offline)  # first: fail fast if reveal.js is unavailable
    text = fill_placeholders(Path(source).read_text(encoding="utf-8"), computed_values())
    names = FIGURE_REF.findall(text)
    if (out / "figures").exists():
        shutil.rmtree(out / "figures")
    figures.make_figures(names, out / "figures", data_dir(data), dpi=dpi)
    index = out / "index.html"
    index.write_text(render_html(split_slides(text)), encoding="utf-8")
    return index


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "build" / "slides", help="output folder")
    parser.add_argument("--source", type=Path, default=SLIDES_DIR / "slides.md")
    parser.add_argument("--data-dir", default=None, help="ISBI 2012 folder (default: $UNET_DATA_DIR)")
    parser.add_argument("--offline", action="store_true", help="use only the cached reveal.js")
    parser.add_argument("--fetch-only", action="store_true", help="cache reveal.js and stop")
    args = parser.parse_args(argv)
    if args.fetch_only:
        sys.stdout.write(f"{reveal_tarball()}\n")
        return 0
    index = build_deck(args.out, args.source, offline=args.offline, data=args.data_dir)
    sys.stdout.write(f"wrote {index}\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    raise SystemExit(main())
