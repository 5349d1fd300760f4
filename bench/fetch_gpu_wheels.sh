#!/usr/bin/env bash
# Run HERE (a machine with PyPI) before a GPU session: downloads the wheels the GPU machine lacks
# into .whl/ (git-ignored), for the device call to carry. bench/gpu_check.sh installs them.
# The GPU image has Python 3.12, PyTorch, CuPy, NumPy, OpenCV; not kornia (timed beside our
# kernel by bench/gpu_kernels.py). onnxruntime-gpu (~250 MB) is over the 64 MiB a call can carry.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .whl && mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl "kornia>=0.7,<1" "kornia_rs>=0.1.9,<1"
ls -la .whl
