"""bench/gpu_check.sh puts the chunks bench/fetch_gpu_wheels.sh cut (carried one device call each) back together,
checks their sha256 and unpacks them where its Python finds them; a missing or damaged chunk is said, not unpacked."""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.sh"
# tarfile's calls go to the real Python, everything else to a stub (no pip install, no CuPy probes)
STUB = """#!/usr/bin/env bash
case "$*" in
  *tarfile*) exec "$REAL_PYTHON" "$@" ;;
  *) echo "stub" ;;
esac
"""


def _payload(folder: Path, parts: int, damage: bool = False) -> None:
    """A tar.xz of one package cut into `parts` chunks and its MANIFEST, as fetch_gpu_wheels.sh writes them."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as archive:
        data = b"VALUE = 42\n" + os.urandom(3000).hex().encode()  # incompressible enough for several chunks
        info = tarfile.TarInfo("carried_package/__init__.py")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    blob = buffer.getvalue()
    folder.mkdir()
    size = len(blob) // parts + 1
    for index in range(parts):
        chunk = blob[index * size:(index + 1) * size]
        if damage and index == 0:
            chunk = bytes([chunk[0] ^ 1]) + chunk[1:]
        (folder / f"payload.tar.xz.part-{index:02d}").write_bytes(chunk)
    (folder / "MANIFEST").write_text(f"{hashlib.sha256(blob).hexdigest()}  payload.tar.xz\nparts {parts}\n")


def _run(tmp_path: Path) -> str:
    stub = tmp_path / "python"
    stub.write_text(STUB)
    stub.chmod(0o755)
    env = {**os.environ, "PYTHON": str(stub), "REAL_PYTHON": sys.executable, "GPU_CHECK_PARTS": "none",
           "GPU_CHECK_PAYLOAD": str(tmp_path / "payload"), "GPU_CHECK_SITE": str(tmp_path / "site"),
           "PATH": "/usr/bin:/bin", "OUT": str(tmp_path / "out")}  # its logs there, not in a folder of /tmp
    (tmp_path / "out").mkdir(exist_ok=True)
    result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    return result.stdout + result.stderr


def test_the_chunks_are_put_back_together_and_unpacked(tmp_path):
    _payload(tmp_path / "payload", parts=3)
    output = _run(tmp_path)
    assert "unpacked from the 3 carried chunks" in output, output
    assert (tmp_path / "site" / "carried_package" / "__init__.py").read_bytes().startswith(b"VALUE = 42\n")
    assert not (tmp_path / "payload" / "payload.tar.xz").exists()  # the joined copy is not left behind


def test_a_chunk_that_did_not_arrive_is_said_and_nothing_unpacked(tmp_path):
    _payload(tmp_path / "payload", parts=3)
    (tmp_path / "payload" / "payload.tar.xz.part-01").unlink()  # its call found the machine given back
    output = _run(tmp_path)
    assert "only 2 of the 3 carried chunks" in output, output
    assert not (tmp_path / "site" / "carried_package").exists()


def test_a_damaged_chunk_fails_the_checksum_and_nothing_is_unpacked(tmp_path):
    _payload(tmp_path / "payload", parts=2, damage=True)
    output = _run(tmp_path)
    assert "do not match their sha256" in output, output
    assert not (tmp_path / "site" / "carried_package").exists()


def test_a_manifest_without_its_chunk_count_is_not_trusted(tmp_path):
    _payload(tmp_path / "payload", parts=2)
    manifest = tmp_path / "payload" / "MANIFEST"
    manifest.write_text(manifest.read_text().split("\nparts ")[0] + "\n")
    output = _run(tmp_path)
    assert "names no chunk count" in output and "integer expression" not in output, output
    assert not (tmp_path / "site" / "carried_package").exists()


# the pipeline and FCRN steps with a stand-in Python whose CuPy "sees" a GPU: what the summary keeps of their output
STEPS_STUB = """#!/usr/bin/env bash
case "$*" in
  *kernels.backend*) echo "depthcam kernels: CUDA" ;;
  *sample_stacks.py*) printf '%s\\n' '## default' '| run | frames | fps |' '| pipelined | 150 | 41.0 |' \\
      'thread stacks sampled every 5 ms' '| thread | share of its samples | where |' '| --- | ---: | --- |' \\
      '| depthcam-stage-depth | 80 % | `models/runtime.py:1 run` |' ;;
  *"-m stream bench"*) printf '%s\\n' '## default' '| pipelined | 150 | 40.0 |' ;;
  *bench_fcrn.py*) echo "FCRN ResNet-50 UpProj ($*)"; echo "| CUDA | 1 | 2.8 |" ;;
  *) echo "stub" ;;
esac
"""


def test_the_summary_says_which_run_each_pipeline_and_fcrn_row_is_and_leaves_the_stack_table_in_the_log(tmp_path):
    stub = tmp_path / "python"
    stub.write_text(STEPS_STUB)
    stub.chmod(0o755)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PYTHON": str(stub), "GPU_CHECK_PARTS": "pipeline fcrn", "OUT": str(out),
           "GPU_CHECK_PAYLOAD": str(tmp_path / "none"), "GPU_CHECK_SITE": str(tmp_path / "site"),
           "PATH": "/usr/bin:/bin"}
    subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    summary = (out / "summary.txt").read_text()
    assert "(pipelined, under bench/sample_stacks.py)" in summary and "(1920x1080: default preset)" in summary
    assert summary.count("## default") == 4  # one a bench run, none merged away as a repeated line
    assert "(pipelined, batches not padded (DEPTHCAM_GPU_BATCH_PADDING=off), as in session 28)" in summary
    assert "--conv-search heuristic" in summary and "--alternate --conv-search exhaustive" in summary
    assert "depthcam-stage-depth | 80 %" not in summary  # the sampler's table: in pipeline.txt only
    assert "depthcam-stage-depth | 80 %" in (out / "pipeline.txt").read_text()
    assert "each step's start: [" in summary
    assert len(list(out.iterdir())) <= 8  # what a device call brings back
