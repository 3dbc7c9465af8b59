#!/usr/bin/env bash
# Run `make gpu-check` on a lent GPU machine (no network, its own Python with JAX, no TensorFlow).
# Prepare first, here: `make gpu-carry` fills .devdata/ (data + wheels); carry .devdata to the machine.
#
#   bash benchmarks/on_gpu_machine.sh OUT_DIR SECONDS [gpu-check arguments...]
#
# Installs Keras at the pinned version from the carried wheels (the newest carried Keras if the pinned
# one cannot train on the machine's JAX), runs the check within SECONDS, and copies the report, the log,
# the executed notebooks and their scores into OUT_DIR, also when the check ran out of time.
set -uo pipefail
cd "$(dirname "$0")/.."
out="$1"; seconds="$2"; shift 2
mkdir -p "$out"
py=python3
wheels=.devdata/wheels
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

probe='import keras, numpy as np
m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(1, 3, padding="same")])
m.compile(optimizer="adam", loss="mse")
m.fit(np.zeros((2, 8, 8, 1)), np.zeros((2, 8, 8, 1)), verbose=0)
print("keras", keras.__version__, "trains on", keras.backend.backend())'
for keras_version in 3.13.2 $(ls $wheels | sed -n 's/^keras-\([0-9.]*\)-py3.*/\1/p' | sort -V | tail -1); do
  $py -m pip install -q --no-index --find-links $wheels "keras==$keras_version" keras-unet==0.1.2 pooch nbclient ipykernel 2>&1 | tail -2
  if KERAS_BACKEND=jax $py -c "$probe" 2>/tmp/probe.txt; then break; fi
  echo "Keras $keras_version does not train here: $(tail -1 /tmp/probe.txt)"
done

timeout --signal=INT --kill-after=20 "$seconds" \
  make gpu-check GPU_PY=$py GPU_ARGS="--out $out/RESULTS-gpu.md --budget $((seconds - 30)) $*" \
  UNET_DATA_DIR=.devdata/isbi2012 2>&1 | tee "$out/gpu-check.log"
for nb in build/gpu-check/*.ipynb; do [ -f "$nb" ] && cp "$nb" "$out/"; done
for scores in build/gpu-check/runs/*/scores.json; do
  [ -f "$scores" ] && cp "$scores" "$out/scores-$(basename "$(dirname "$scores")").json"
done
ls -la "$out"
