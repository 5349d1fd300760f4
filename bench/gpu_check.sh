#!/usr/bin/env bash
# One command for a GPU machine: the `gpu` tests, then the kernel benchmarks, one table at the end.
# Installs nothing from the network (such machines have none): it expects CuPy, NumPy, Numba,
# OpenCV and PyTorch to be there already, and installs depthcam itself without dependencies.
# Usage, from the repository root: bash bench/gpu_check.sh
# (first, here: bash bench/fetch_gpu_wheels.sh, and carry .whl with the device call)
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
log=$(mktemp -d)
$PY -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# Wheels carried from a machine with PyPI (bench/fetch_gpu_wheels.sh): kornia for the comparison.
if compgen -G ".whl/*.whl" >/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

echo "== gpu tests"
$PY -m pytest -q -m gpu -p no:cacheprovider tests/test_joint_bilateral.py tests/test_depth_of_field.py tests/test_gpu_pipeline.py \
    tests/test_cuda_sources.py 2>&1 | tee "$log/tests.txt" | tail -n 15
tests=$(tail -n 1 "$log/tests.txt")

echo "== joint bilateral kernel"
$PY bench/gpu_kernels.py 2>&1 | tee "$log/bilateral.txt"
echo "== depth of field kernel"
$PY bench/gpu_dof.py 2>&1 | tee "$log/dof.txt"
if [ -f bench/bench_fcrn.py ] && $PY -c "import onnxruntime" 2>/dev/null; then
  echo "== FCRN through ONNX Runtime (providers this machine has)"
  $PY bench/bench_fcrn.py 2>&1 | tee "$log/fcrn.txt"
fi

echo
echo "== summary"
echo "gpu tests: $tests"
grep -h '^|' "$log/bilateral.txt" "$log/dof.txt" "$log/fcrn.txt" 2>/dev/null
