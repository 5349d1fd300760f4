"""Every CUDA source compiles: with nvcc for Hopper, and through NVRTC exactly as CuPy compiles it."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kernels.cuda_module import compile_ptx_nvrtc, cuda_sources

SOURCES = cuda_sources()


def test_there_are_cuda_sources():
    assert SOURCES, "kernels/ holds no .cu file"


@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_nvcc_compiles_to_ptx(source, tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on PATH (CI machines have it)")
    result = subprocess.run([nvcc, "-ptx", "-arch=sm_90", "-std=c++17", "-o", str(tmp_path / "out.ptx"), str(source)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    ptx = (tmp_path / "out.ptx").read_text()
    assert ".entry" in ptx


@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_nvrtc_compiles_like_cupy(source):
    try:
        from cupy.cuda import nvrtc  # noqa: F401
        ptx = compile_ptx_nvrtc(source.name)
    except ImportError as exc:
        pytest.skip(f"CuPy is not installed: {exc}")
    except Exception as exc:
        if "nvrtc" in str(exc).lower() and ("load" in str(exc).lower() or "not found" in str(exc).lower()):
            pytest.skip(f"the NVRTC library is not installed: {exc}")
        raise
    assert ".entry" in ptx


def test_the_cuda_sources_constants_are_the_python_ones():
    """The depth-of-field kernel's #defines restate kernels/dof.py's constants; a change to one side only
    would make --device cuda render another picture than the CPU."""
    import re

    from kernels import dof

    source = (Path(__file__).resolve().parents[1] / "kernels" / "depth_of_field.cu").read_text()
    for name in ("FOCUS_RADIUS", "HIGHLIGHT_THRESHOLD", "RAMP_SPREAD"):
        match = re.search(rf"#define {name} ([0-9.]+)f", source)
        assert match and float(match.group(1)) == getattr(dof, name), name
