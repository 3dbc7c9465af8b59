"""``make gpu-carry``: what a lent GPU machine needs for ``make gpu-check``, into one git-ignored folder.

The GPU machines lent to this project have no network and their own Python (3.12, with JAX, NumPy,
SciPy, scikit-image, pandas and matplotlib, but no TensorFlow or Keras). This copies the ISBI 2012
data and downloads the few wheels that Python lacks (Keras at the pinned version and the newest
one, keras-unet, pooch, and the Jupyter kernel stack that executes the notebooks), so that
``<folder>`` can be carried to the machine and installed there without a network::

    python -m pip install --no-index --find-links .devdata/wheels keras==3.13.2 keras-unet pooch nbclient ipykernel
    make gpu-check GPU_PY=python3 UNET_DATA_DIR=.devdata/isbi2012

Examples
--------
``python -m benchmarks.carry .devdata``
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

#: What the GPU machine's Python lacks; pip resolves their dependencies for Python 3.12.
WANTED = ["keras==3.13.2", "keras-unet==0.1.2", "pooch==1.9.0", "nbclient", "nbformat", "ipykernel"]
#: Large packages already on the GPU machine (its image's package list): not carried. Small pure-Python
#: ones are carried anyway; pip installs them there only where the machine's own do not satisfy.
ON_DEVICE = {"numpy", "scipy", "h5py", "ml_dtypes", "pandas", "matplotlib", "pillow", "scikit_image",
             "tifffile", "jax", "jaxlib", "contourpy", "fonttools", "kiwisolver"}
#: Carried beside the pinned Keras, in case the machine's newer JAX needs a newer Keras.
FALLBACK = ["keras"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.carry", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="git-ignored folder to fill, e.g. .devdata")
    parser.add_argument("--python-version", default="3.12", help="the GPU machine's Python (default 3.12)")
    args = parser.parse_args(argv)

    from helpers import data

    source = Path(data.data_root())
    target = args.folder / "isbi2012"
    if not (target / "train" / "image" / "0.png").is_file():
        shutil.copytree(source, target, dirs_exist_ok=True)
    wheels = args.folder / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
                    "--python-version", args.python_version, "--implementation", "cp",
                    "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
                    "--platform", "manylinux2014_x86_64", "-d", str(wheels), *WANTED], check=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(wheels), *FALLBACK],
                   check=True)
    for wheel in wheels.glob("*.whl"):
        if wheel.name.split("-")[0].lower() in ON_DEVICE:
            wheel.unlink()
    size = sum(p.stat().st_size for p in args.folder.rglob("*") if p.is_file()) / 2**20
    print(f"{args.folder}: data from {source} and {len(list(wheels.glob('*.whl')))} wheels, {size:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
