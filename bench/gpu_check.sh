#!/usr/bin/env bash
# One command for a GPU machine: the `gpu` tests, then the kernel benchmarks, one table at the end.
# Installs nothing from the network (such machines have none): it expects CuPy, NumPy, Numba,
# OpenCV and PyTorch to be there already, and installs depthcam itself without dependencies.
# Usage, from the repository root: bash bench/gpu_check.sh. Exit status: the tests' (pytest's); the
# whole logs go to $OUT where that is set (a device call brings them back as files, also those of the steps
# that finished before a time limit stopped the call), the summary too (summary.txt).
# Before it, on a machine with PyPI: bash bench/fetch_gpu_wheels.sh, which packs what the image lacks (PyAV, which
# many test modules import; kornia; onnxruntime-gpu; OpenCV 4) into chunks, .gpu-carry-0, -1, ..., one a call, and prints the
# calls: each chunk's call copies it to /tmp/payload, back to back (the machine keeps /tmp for 30 s of idle), and the
# last, carrying its chunk and .models (the real models), runs this script. The steps share one budget,
# GPU_CHECK_BUDGET seconds (default 540, inside a call's 600), so the summary always prints; GPU_CHECK_PARTS picks
# steps (default "tests compile bilateral dof fcrn pipeline").
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
# The logs go straight to $OUT where a device call set it: a call stopped at its time limit still brings back
# the steps that finished (copied at the end, they were lost with the summary).
if [ -n "${OUT:-}" ] && [ -d "$OUT" ]; then log=$OUT; else log=$(mktemp -d); fi
$PY -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# What bench/fetch_gpu_wheels.sh packed (PyAV, without which the test modules that import it fail to collect;
# kornia for the comparison; onnxruntime-gpu for FCRN through the CUDA provider; OpenCV 4, depthcam's pin, whose
# face cascades the image's OpenCV 5 lacks), carried in chunks by this and
# the calls before it into /tmp/payload: put back together, checked against its sha256, unpacked into /tmp/site.
# (GPU_CHECK_PAYLOAD and GPU_CHECK_SITE move both folders, for the tests.)
payload=${GPU_CHECK_PAYLOAD:-/tmp/payload}
site=${GPU_CHECK_SITE:-/tmp/site}
if [ -f "$payload/MANIFEST" ]; then
  want=$(awk '$1 == "parts" {print $2}' "$payload/MANIFEST")
  want=${want:-0}  # a MANIFEST without its count (an older packing) is one not to trust
  have=$(ls "$payload"/payload.tar.xz.part-* 2>/dev/null | wc -l)
  cat "$payload"/payload.tar.xz.part-* > "$payload/payload.tar.xz" 2>/dev/null
  if [ "$want" -eq 0 ]; then
    echo "$payload/MANIFEST names no chunk count: run bench/fetch_gpu_wheels.sh again; the carried packages left out"
  elif [ "$have" -ne "$want" ]; then
    echo "only $have of the $want carried chunks are in $payload (the machine went back between calls?):" \
         "the carried packages left out"
  elif (cd "$payload" && grep -v '^parts ' MANIFEST | sha256sum -c --quiet - >/dev/null 2>&1); then
    mkdir -p "$site"
    $PY -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="tar")' \
        "$payload/payload.tar.xz" "$site" \
      && echo "PyAV, kornia, onnxruntime-gpu and OpenCV 4 unpacked from the $want carried chunks"
  else
    echo "the carried chunks do not match their sha256: the carried packages left out"
  fi
  rm -f "$payload/payload.tar.xz"
elif compgen -G ".whl/*.whl" >/dev/null; then  # wheels carried in one call, as the device README shows
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl
fi
if [ -f "$site/onnxruntime/capi/libonnxruntime_providers_cuda.so" ]; then
  # Its CUDA provider loads cuBLAS, cuRAND, cuFFT, cudart and cuDNN by name (no RUNPATH), and from /tmp/site its
  # preload_dlls() does not look in the image's own nvidia wheels: put their lib folders on the loader's path, or
  # the session falls back to the CPU provider.
  nvlibs=$($PY -c 'import glob, os, nvidia; print(":".join(d for p in nvidia.__path__ for d in sorted(glob.glob(os.path.join(p, "*", "lib")))))' 2>/dev/null)
  if [ -n "$nvlibs" ]; then export LD_LIBRARY_PATH="$nvlibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi
fi
# What the installs above put in /tmp/site goes before the image's own packages.
if [ -d "$site" ]; then export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"; fi
# The real model, carried in .models (bench/fetch_gpu_wheels.sh), for the tests that need it.
if [ -z "${DEPTHCAM_MODELS:-}" ] && [ -d .models ]; then export DEPTHCAM_MODELS="$PWD/.models"; fi
gpus=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null)
echo "${gpus:-nvidia-smi: no GPU listed}"
# The versions the image brings (nothing is installed from the network here): what the figures ran on.
$PY - <<'PYEOF' 2>&1 | tail -n 1
import importlib
found = []
for name in ("numpy", "numba", "cupy", "torch", "kornia", "onnxruntime", "cv2"):
    try:
        found.append(f"{name} {importlib.import_module(name).__version__}")
    except Exception as error:  # one missing package must not hide the others
        found.append(f"{name} missing ({type(error).__name__})")
print("versions:", ", ".join(found))
PYEOF
# What CuPy sees: with no GPU every test below is skipped and the benchmarks print one line, which the
# summary would not show.
cupy_line=$($PY -c 'import cupy as c; r = c.cuda.runtime; print(f"CuPy {c.__version__}: GPU visible {c.cuda.is_available()}, runtime {r.runtimeGetVersion()}, driver {r.driverGetVersion()}")' 2>&1 | tail -n 1)
echo "$cupy_line"
# depthcam's own verdict (it also needs NVRTC to load): where it says no, every gpu test below skips.
kernels_line=$($PY -c 'from kernels.backend import cuda_available as a, cuda_unavailable_reason as r; print("depthcam kernels:", "CUDA" if a() else r())' 2>&1 | tail -n 1)
echo "$kernels_line"
# Each step under its own time limit, so that one that hangs leaves the others their time, and all of them under
# one budget counted from the script's start (pip, imports and nvidia-smi included): a step gets at most what is
# left less SUMMARY_RESERVE, so the summary prints inside the call's 600 s whatever hangs. A step stopped at its
# limit says so (its log would otherwise end mid-table, looking finished). Estimates on an H200 (16 cores, Numba's
# cache cold): set-up 20-40 s, tests 60-120 s, compile 15 s, kernels 30-60 s, DoF 20-40 s, FCRN 3 x <= 40 s.
# Measured on one (session 28): set-up 15 s, tests 86 s, compile 6 s, kernels and DoF 45 s, FCRN 2 x 12 s; the
# pipeline step's benches (limits 75 + 60 + 120 + 60 s) then come before FCRN's six runs, the least needed last. Each
# step's start time goes into the log, to size the budget by.
BUDGET=${GPU_CHECK_BUDGET:-540}
SUMMARY_RESERVE=15
steps=$(mktemp)  # not in $OUT: a call brings back 8 files at most, and the logs and the JSON are 8
PARTS=" ${GPU_CHECK_PARTS:-tests compile bilateral dof fcrn pipeline} "
wanted() { [[ "$PARTS" == *" $1 "* ]]; }
limit() {
  local seconds=$1; shift
  local left=$((BUDGET - SECONDS - SUMMARY_RESERVE))
  echo "[${SECONDS} s] ${*:1:3}" >> "$steps"
  if [ "$left" -lt "$seconds" ]; then seconds=$left; fi
  if [ "$seconds" -lt 5 ]; then echo "TIMED OUT before it started (budget of ${BUDGET} s spent): $*"; return 124; fi
  timeout -k 10 "$seconds" "$@"; local status=$?
  if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then echo "TIMED OUT after ${seconds} s: $*"; fi
  return "$status"
}
cuda_ok=0
if [ "$kernels_line" = "depthcam kernels: CUDA" ]; then cuda_ok=1; fi

tests_status=0
tests="not run (GPU_CHECK_PARTS)"
if wanted tests; then
  echo "== gpu tests"
  # every gpu-marked test, wherever it is (a list of files left out those added later: the temporal filter's, the
  # kernel sweep's, the public API's). A module that fails to import (PyAV not carried, say) must not take the
  # others with it: pytest stops at a collection error unless told to go on. pytest-timeout, where installed,
  # stops one hung test instead of the whole step.
  per_test=()
  if $PY -c "import pytest_timeout" 2>/dev/null; then per_test=(--timeout 120); fi
  limit 240 $PY -m pytest -q -m gpu -p no:cacheprovider --continue-on-collection-errors \
      ${per_test[@]+"${per_test[@]}"} tests/ 2>&1 | tee "$log/tests.txt" | tail -n 25
  tests_status=${PIPESTATUS[0]}  # the script's exit status: pytest's (124: its time limit)
  tests=$(tail -n 1 "$log/tests.txt")
  # how many gpu tests ran or skipped: collection errors or a time limit show as fewer
  counted=$(echo "$tests" | grep -oE '[0-9]+ (passed|failed|skipped|xfailed|xpassed)' \
      | awk '{n += $1} END {print n + 0}')
  tests="$tests (gpu tests counted: $counted, 59 expected in session 28)"
fi
if wanted compile; then
  # The .cu files through this machine's own nvcc and NVRTC (not marked gpu: CI runs them without one).
  limit 45 $PY -m pytest -q -p no:cacheprovider -k "nvrtc or nvcc" tests/test_cuda_sources.py 2>&1 \
      | tee "$log/compile.txt" | tail -n 3
fi
if [ "$cuda_ok" -eq 0 ]; then
  echo "no CUDA for the kernels ($kernels_line): the kernel and FCRN benchmarks are left out"
else
  if wanted bilateral; then
    echo "== joint bilateral kernel"
    limit 120 $PY bench/gpu_kernels.py 2>&1 | tee "$log/bilateral.txt"
  fi
  if wanted dof; then
    echo "== depth of field kernel"
    limit 90 $PY bench/gpu_dof.py 2>&1 | tee "$log/dof.txt"
  fi
  if wanted pipeline; then
    # The whole pipeline on the GPU through `depthcam bench`: the default preset (TCMonoDepth, carried in .models: the
    # machine cannot fetch FCRN's 472 MB) with --device cuda. Session 28 measured the pipelined run at 10.5 fps against
    # the sequential run's 33, its threads idle; its batches (1 to 4 frames) are now padded to one size. First the
    # pipelined run alone under the stack sampler (where each thread waits), then the three runs beside the same
    # without the person mask, then 1080p.
    echo "== the pipeline on the GPU (depthcam bench --device cuda)"
    shown='^(##|\(|\||[0-9]+x[0-9]+ frames|depthcam|thread stacks|TIMED OUT)'
    label() { echo "($*)" | tee -a "$log/pipeline.txt"; }
    logged() { limit "$@" 2>&1 | tee -a "$log/pipeline.txt" | grep -E "$shown"; }  # limit's args; the log kept whole
    label "pipelined, under bench/sample_stacks.py"
    logged 75 $PY bench/sample_stacks.py --top 6 -- bench --device cuda --modes pipelined --frames 150 \
        --json "$log/pipelined.json"
    # the A/B of session 28's fix: calls of whatever batch size dynamic batching gives, as before it (10.5 fps then)
    label "pipelined, batches not padded (DEPTHCAM_GPU_BATCH_PADDING=off), as in session 28"
    DEPTHCAM_GPU_BATCH_PADDING=off logged 60 $PY -m stream bench --device cuda --modes pipelined --frames 150
    nomask=$(mktemp --suffix .yaml)
    sed 's/^\(  person_mask:\) auto.*/\1 off/' configs/default.yaml > "$nomask"
    grep -q '^  person_mask: off' "$nomask" || echo "configs/default.yaml has no 'person_mask: auto' line: the mask-off run is the default again"
    label "640x480: default preset, then the same without the person mask"
    logged 120 $PY -m stream bench --device cuda --modes pipelined,sequential,live --frames 150 --compare "$nomask"
    rm -f "$nomask"
    label "1920x1080: default preset"
    logged 60 $PY -m stream bench "synthetic:portrait?size=1920x1080" --device cuda --modes pipelined,sequential \
        --frames 150
  fi
  if wanted fcrn && [ -f bench/bench_fcrn.py ] && $PY -c "import onnxruntime" 2>/dev/null; then
    echo "== FCRN through ONNX Runtime (providers this machine has)"
    # A real session decides: get_available_providers() lists CUDA even where its libraries cannot load (the
    # session then falls back to the CPU, and two CPU runs would spend 80 s saying so). CUDA first: the CPU
    # provider's figure is the least needed.
    if $PY -c "import onnxruntime as o, sys; from models.fcrn import build_fcrn
s = o.InferenceSession(build_fcrn(seed=0).SerializeToString(), providers=['CUDAExecutionProvider'])
sys.exit(s.get_providers()[0] != 'CUDAExecutionProvider')" >/dev/null 2>&1; then
      limit 40 $PY bench/bench_fcrn.py --providers cuda 2>&1 | tee -a "$log/fcrn.txt"
      if ! grep -q '^warning: asked for' "$log/fcrn.txt"; then
        limit 40 $PY bench/bench_fcrn.py --providers cuda --fp16 2>&1 | tee -a "$log/fcrn.txt"
        # cuDNN's algorithm search: HEURISTIC against EXHAUSTIVE (ONNX Runtime's default, depthcam's, the runs
        # above) at fixed batches, then both with the batch size changing every call as unpadded dynamic batching
        # gave it (session 28's suspect for the pipelined run's 10.5 fps: a plan rebuilt at each change)
        limit 40 $PY bench/bench_fcrn.py --providers cuda --conv-search heuristic 2>&1 | tee -a "$log/fcrn.txt"
        for search in exhaustive heuristic; do
          limit 40 $PY bench/bench_fcrn.py --providers cuda --alternate --conv-search $search --runs 3 --batches 1,2,3,4 \
              2>&1 | tee -a "$log/fcrn.txt"
        done
      fi
    else
      # only then: with the CUDA provider working, the CPU provider's figure is the least needed of the call's time
      echo "ONNX Runtime's CUDA provider does not load here: FCRN measured on the CPU provider only"
      limit 40 $PY bench/bench_fcrn.py --runs 5 2>&1 | tee -a "$log/fcrn.txt"  # 5 runs fit
    fi
  fi
fi

# The summary, also as $log/summary.txt: what a call's output_tail may cut, a file brings back.
summary() {
  echo "== summary"
  echo "${gpus:-nvidia-smi: no GPU listed}"
  echo "$cupy_line"
  echo "$kernels_line"
  echo "gpu tests: $tests"
  if [ -f "$log/compile.txt" ]; then echo "compile tests (nvcc, NVRTC): $(tail -n 1 "$log/compile.txt")"; fi
  # one header per table: the three FCRN runs print the same one
  grep -h '^|' "$log/bilateral.txt" "$log/dof.txt" 2>/dev/null | awk '!seen[$0]++'
  # FCRN's and the pipeline's tables with the lines that say which run each is (their rows alike); the stack
  # sampler's table stays in pipeline.txt
  grep -hE '^(FCRN|## |\(|\|)' "$log/fcrn.txt" "$log/pipeline.txt" 2>/dev/null | grep -vE '^\| [^|]+ \| [0-9]+ % \|' \
    | grep -vE '^\| (thread|---) \| (share|---)'

  grep -h '^warning' "$log/fcrn.txt" 2>/dev/null  # an FCRN run that fell back to the CPU provider says so
  grep -h '^TIMED OUT' "$log"/{tests,compile,bilateral,dof,fcrn,pipeline}.txt 2>/dev/null
  echo "each step's start: $(tr '\n' ';' < "$steps")"
  echo "took ${SECONDS} s of a ${BUDGET} s budget"
}
echo
summary | tee "$log/summary.txt"
# A GPU listed but not used by the kernels is a failed check, not a green run of skipped tests.
if [ -n "$gpus" ] && [ "$cuda_ok" -eq 0 ]; then
  echo "FAILED: nvidia-smi lists a GPU but the kernels cannot use it ($kernels_line)"
  exit 2
fi
exit "$tests_status"
