#!/usr/bin/env bash
# Stage part N (0, 1, ...) of the onnxruntime-gpu wheel into .ort-carry/ for the next device call,
# which carries .ort-carry and copies it to /tmp/ort there (kept while the machine stays warm):
#   bash bench/stage_ort_part.sh 0   then   run(command="mkdir -p /tmp/ort && cp .ort-carry/* /tmp/ort/", carry=[".ort-carry"])
# and so on for each part; then bench/gpu_check.sh finds /tmp/ort complete and installs it.
set -euo pipefail
cd "$(dirname "$0")/.."
parts=(.ort/parts/*.part-*)
n=${1:?part number}
[ "$n" -lt "${#parts[@]}" ] || { echo "only ${#parts[@]} parts"; exit 1; }
rm -rf .ort-carry && mkdir .ort-carry
cp .ort/MANIFEST "${parts[$n]}" .ort-carry/
echo "staged ${parts[$n]} ($((n + 1)) of ${#parts[@]})"
