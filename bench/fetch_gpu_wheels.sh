#!/usr/bin/env bash
# Run HERE (a machine with PyPI) before a GPU session: downloads the wheels the GPU machine lacks,
# for the device calls to carry. The GPU image has Python 3.12, PyTorch (CUDA 13), CuPy, NumPy, Numba,
# OpenCV, scikit-image, Pillow, PyYAML, tqdm, ONNX, pytest and onnxruntime's CPU build, but not PyAV.
#   .whl/   PyAV (~35 MB: a dozen test modules import it, and one that fails to import stopped the whole
#           gpu test run) and kornia (timed beside our kernel by bench/gpu_kernels.py): one call carries them.
#   .models/ the TCMonoDepth ONNX file (0.8 MB) and the person mask's (MediaPipe selfie, 0.45 MB), for the GPU
#            pipeline and person-mask tests (the device machine has no network to fetch them).
#   .ort/   onnxruntime-gpu (CUDA 13 build, ~256 MB) cut into parts under the 64 MiB a call can
#           carry: stage them one call at a time with bench/stage_ort_part.sh (see gpu_check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64)
download() { python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
               "${PLATFORMS[@]}" -d "$@"; }
rm -rf .whl .ort && mkdir -p .whl .ort/parts
download .whl "av>=18,<20" "kornia>=0.7,<1" "kornia_rs>=0.1.9,<1"
download .ort "onnxruntime-gpu>=1.23,<2"
wheel=$(ls .ort/onnxruntime_gpu-*.whl)
(cd .ort && sha256sum "$(basename "$wheel")" > MANIFEST)
split -b 56M -d "$wheel" ".ort/parts/$(basename "$wheel").part-"
rm "$wheel"
# The real depth model for the GPU pipeline tests (the tests look in $DEPTHCAM_MODELS, which
# gpu_check.sh points here); the ONNX Runtime cache layout: one file per model.
rm -rf .models && mkdir -p .models
cp ../shared/models/tcmonodepth_tcsmallnet_192x320.onnx ../shared/models/selfie_segmentation.onnx .models/ 2>/dev/null \
  || echo "no ../shared/models here"
ls -la .whl .ort/parts .models && cat .ort/MANIFEST
# A call carries the working tree plus its carried paths, 64 MiB in all: say what gpu_check.sh's call sends.
# (a tracked file deleted here is not carried: its failed cat must not end the script, set -e, with no line said)
tree=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | { xargs -0 cat 2>/dev/null || true; } \
  | wc -c)
carried=$(du -cb .whl .models | tail -n 1 | cut -f1)
part=$(du -b "$(ls .ort/parts/* | head -n 1)" | cut -f1)
echo "gpu_check.sh's call: $(( (tree + carried) >> 20 )) MiB" \
     "(tree $((tree >> 20)), .whl + .models $((carried >> 20))); an onnxruntime-gpu part's call: $(( (tree + part) >> 20 )) MiB; the limit is 64 MiB"
[ $((tree + carried)) -lt $((64 << 20)) ] && [ $((tree + part)) -lt $((64 << 20)) ] \
  || { echo "over the 64 MiB a call carries: carry less"; exit 1; }
