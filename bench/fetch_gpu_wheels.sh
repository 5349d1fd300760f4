#!/usr/bin/env bash
# Run HERE (a machine with PyPI) before a GPU session: packs what the GPU machine lacks for the device calls to
# carry. The GPU image has Python 3.12, PyTorch (CUDA 13), CuPy, NumPy, Numba, OpenCV, scikit-image, Pillow, PyYAML,
# tqdm, ONNX, pytest, onnxruntime's CPU build and OpenCV 5.0, but not PyAV, kornia, onnxruntime-gpu or OpenCV 4:
#   PyAV            a dozen test modules import it; one that fails to import took the whole gpu test run with it
#   OpenCV 4        depthcam's pin (5.x moved the Haar face cascades out: the GPU tests that find faces need them)
#   kornia          timed beside our kernel by bench/gpu_kernels.py
#   onnxruntime-gpu (CUDA 13 build) FCRN through the CUDA provider: the FCRN benchmark and the GPU pipeline tests
# The wheels are unpacked as site-packages (onnxruntime's parts FCRN never uses left out), packed in one xz
# tarball and cut into chunks, each under what one call may carry (64 MiB with the working tree and .models):
#   .gpu-carry-0/, .gpu-carry-1/, ...   one chunk each, the first with the MANIFEST (sha256 and the chunk count)
#   .models/                            the TCMonoDepth ONNX file and the person mask's (MediaPipe selfie): the
#                                       machine has no network to fetch them
# Then, back to back (a warm machine keeps /tmp for 30 s of idle only), every chunk but the last:
#   run(command="mkdir -p /tmp/payload && cp .gpu-carry-N/* /tmp/payload/", carry=[".gpu-carry-N"])
# and the last with the check:
#   run(command="mkdir -p /tmp/payload && cp .gpu-carry-N/* /tmp/payload/ && bash bench/gpu_check.sh",
#       carry=[".gpu-carry-N", ".models"], timeout_s=600)
# gpu_check.sh puts the chunks back together, checks the sha256 and unpacks them into /tmp/site.
set -euo pipefail
cd "$(dirname "$0")/.."
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64)
download() { python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
               "${PLATFORMS[@]}" -d "$@"; }
rm -rf .whl .ort .gpu-carry-* && mkdir -p .whl
download .whl "av>=18,<20" "kornia>=0.7,<1" "kornia_rs>=0.1.9,<1" "onnxruntime-gpu>=1.23,<2" \
  "opencv-python-headless>=4.9,<5"
# The real models for the GPU pipeline and person-mask tests (the tests look in $DEPTHCAM_MODELS, which
# gpu_check.sh points here); the ONNX Runtime cache layout: one file per model.
rm -rf .models && mkdir -p .models
cp ../shared/models/tcmonodepth_tcsmallnet_192x320.onnx ../shared/models/selfie_segmentation.onnx .models/ 2>/dev/null \
  || echo "no ../shared/models here"
site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT
for wheel in .whl/*.whl; do unzip -q -o "$wheel" -d "$site"; done
# onnxruntime's model tools and the TensorRT provider: nothing here loads them, 10 MB less to carry
rm -rf "$site"/onnxruntime/{transformers,quantization,tools} "$site"/onnxruntime/capi/libonnxruntime_providers_tensorrt.so
echo "packing $(du -sm "$site" | cut -f1) MB of site-packages (xz, a minute or two)"
tar -C "$site" -cf - . | xz -T0 -6 > .whl/payload.tar.xz
# A call carries the working tree plus its carried paths, 64 MiB in all: a chunk is what is left of that beside the
# tree and .models, less 1 MiB for the tree's growth before the calls.
# (a tracked file deleted here is not carried: its failed cat must not end the script, set -e, with no line said)
tree=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | { xargs -0 cat 2>/dev/null || true; } \
  | wc -c)
models=$(du -cb .models | tail -n 1 | cut -f1)
chunk=$(( (64 << 20) - tree - models - (1 << 20) ))
[ "$chunk" -gt $((8 << 20)) ] || { echo "the working tree ($((tree >> 20)) MiB) leaves no room to carry: carry less"; exit 1; }
split -b "$chunk" -d -a 2 .whl/payload.tar.xz .whl/payload.tar.xz.part-
parts=(.whl/payload.tar.xz.part-*)
for i in "${!parts[@]}"; do mkdir -p ".gpu-carry-$i" && mv "${parts[$i]}" ".gpu-carry-$i/"; done
{ (cd .whl && sha256sum payload.tar.xz); echo "parts ${#parts[@]}"; } > .gpu-carry-0/MANIFEST
rm .whl/payload.tar.xz
du -b .gpu-carry-*/* .models/* | sed 's/^/  /'
last=$(( ${#parts[@]} - 1 ))
echo "${#parts[@]} call(s), each at most $(( (tree + models + chunk) >> 20 )) MiB with the tree ($((tree >> 20)) MiB):" \
     "the last (.gpu-carry-${last} and .models) copies its chunk to /tmp/payload and runs gpu_check.sh," \
     "each one before it (.gpu-carry-0 ...) only copies its chunk"
