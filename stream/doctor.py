"""`depthcam doctor`: what this machine offers depthcam, one line a part, and the fix where a part is missing.

Nothing here loads a model or opens a camera: it reads what is installed and what the system lists, so
it answers in a second or two and is safe to run while another program holds the camera.
"""
from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

from stream.console import fit_encoding
from stream.hints import camera_permission_hint


@dataclass
class Check:
    part: str
    ok: bool
    detail: str
    fix: str = ""


def _python() -> Check:
    return Check("python", True, f"{platform.python_version()} on {platform.platform()}")


def _cpu() -> Check:
    import numba

    from kernels.cpu_threads import _layer_takes_turns

    turns = _layer_takes_turns()  # the first parallel launch, where Numba picks its threading layer
    detail = f"{os.cpu_count()} cores; Numba {numba.__version__}, threading layer {numba.threading_layer()}"
    if turns:
        return Check("cpu", False, detail + ": the stages' CPU kernels take turns (slower)", _threading_fix())
    return Check("cpu", True, detail)


def _threading_fix() -> str:
    """How this system gets Numba a threading layer that runs kernels at once. PyPI's tbb has no wheel for Apple
    silicon (checked for 2021.10-2023.2), and Numba's macOS wheel loads OpenMP from @rpath/libomp.dylib,
    which a conda environment's Python finds in its lib/."""
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return ("pip has no TBB for Apple silicon; in a conda environment, conda install -c conda-forge llvm-openmp "
                "gives Numba its OpenMP layer")
    return "pip install tbb lets them run at once"


def _gpu() -> Check:
    from kernels.backend import cuda_available, cuda_problem

    if not cuda_available():
        problem = cuda_problem()  # the cause on the line, its fix on the fix line, each said once
        where = "" if problem.gpu_seen else "where there is an NVIDIA GPU: "  # a machine without one is fine as it is
        return Check("gpu", False, f"kernels on the CPU: {problem.cause}", where + problem.fix)
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(0)
    return Check("gpu", True, f"{props['name'].decode()} (compute {props['major']}.{props['minor']}), "
                              f"CuPy {cupy.__version__}: --device auto runs the kernels there")


def _onnxruntime() -> Check:
    import onnxruntime

    from kernels.backend import cuda_available

    providers = onnxruntime.get_available_providers()
    detail = f"{onnxruntime.__version__}, providers {', '.join(p.removesuffix('ExecutionProvider') for p in providers)}"
    if "CUDAExecutionProvider" in providers and cuda_available():
        return Check("onnxruntime", True, detail + " (the network goes on CUDA where the provider loads; a run "
                                                   "says which it got)")
    if cuda_available():
        return Check("onnxruntime", False, detail + ": the network stays on the CPU",
                     "pip install onnxruntime-gpu matching your CUDA and cuDNN")
    return Check("onnxruntime", True, detail + " (the network on the CPU)")


def _video() -> Check:
    import av

    versions = av.library_versions.get("libavcodec", ())
    missing = []
    for codec in ("libx264", "aac"):
        try:
            av.codec.Codec(codec, "w")
        except Exception:  # noqa: BLE001 (PyAV raises its own error types for an unknown codec)
            missing.append(codec)
    detail = f"PyAV {av.__version__}, libavcodec {'.'.join(map(str, versions))}"
    if missing:
        return Check("video", False, detail + f": no {', '.join(missing)} encoder",
                     "install PyAV from its wheels (pip install --force-reinstall av), which bundle them")
    return Check("video", True, detail + ", H.264 and AAC encoders")


def _photos() -> Check:
    """HEIF (an iPhone's photos) is read through an optional package; the README sends iPhone users there."""
    from stream.images import HEIF_FIX, heif_readable

    if heif_readable():
        return Check("photos", True, "JPEG, PNG, TIFF, WebP and HEIF/HEIC (pillow-heif)")
    return Check("photos", False, "JPEG, PNG, TIFF, WebP; no HEIF/HEIC (an iPhone's photos)", HEIF_FIX)


def _display() -> Check:
    from stream.errors import UserError
    from stream.sinks import check_display

    try:
        check_display()
    except UserError as exc:  # "what is wrong; what to do": the fix on its own line, as every other part's
        cause, _, fix = str(exc).rpartition("; ")
        return Check("window", False, cause, fix) if cause else Check("window", False, fix)
    where = os.environ.get("WAYLAND_DISPLAY") or os.environ.get("DISPLAY") or "the desktop"
    return Check("window", True, f"a preview window can open on {where}")


def _cameras() -> Check:
    if not sys.platform.startswith("linux"):
        permission = camera_permission_hint()
        return Check("cameras", True, "listed by the system only on Linux here; try depthcam run camera:0"
                     + (f" ({permission})" if permission else ""))
    from stream import camera

    # /sys names the host's cameras even where /dev has none of them (a container not given --device /dev/video0)
    cameras = [(number, name) for number, name in camera.picture_cameras() if (camera.DEV / f"video{number}").exists()]
    if cameras:  # a webcam's second node (its metadata) gives no picture: not listed (it was, beside the first)
        return Check("cameras", True, ", ".join(f"camera:{number} ({name})" for number, name in cameras))
    devices = sorted(camera.DEV.glob("video*"), key=lambda p: (len(p.name), p.name))
    if not devices:
        return Check("cameras", False, "no /dev/video* device", "plug in a webcam, or check that its driver loaded")
    # nodes with no name or index in /sys (a container given /dev/video* alone): listed as they are
    return Check("cameras", True, ", ".join(f"camera:{device.name[5:]}" for device in devices)
                 + " (a webcam often lists two nodes; the first gives frames)")


def _virtual_camera() -> Check:
    try:
        import pyvirtualcam  # noqa: F401
    except ImportError:
        return Check("virtual cam", False, "pyvirtualcam is not installed (-o vcam)", "pip install 'depthcam[vcam]'")
    if sys.platform.startswith("linux"):
        # v4l2loopback's devices are virtual ones (under /sys/devices/virtual), whatever card_label names them
        loopback = [node.name for node in Path("/sys/class/video4linux").glob("video*")
                    if "/virtual/" in str(node.resolve())]
        if not loopback:
            return Check("virtual cam", False, "pyvirtualcam is installed but no v4l2loopback device exists",
                         "sudo modprobe v4l2loopback exclusive_caps=1 card_label=depthcam")
        return Check("virtual cam", True, f"v4l2loopback on {', '.join(loopback)}")
    if sys.platform == "win32":
        return _windows_virtual_camera()
    if sys.platform == "darwin":
        return Check("virtual cam", True, "pyvirtualcam installed; it sends to OBS's virtual camera, set up once: in "
                                          "OBS Studio click Start Virtual Camera (OBS 30 and later: allow its "
                                          "system extension in System Settings), then quit OBS")
    return Check("virtual cam", True, "pyvirtualcam installed")


# pyvirtualcam's Windows backends find their DirectShow filters by these class ids, as it does
WINDOWS_VIRTUAL_CAMERAS = {"OBS Virtual Camera": r"CLSID\{A3FCE0F5-3493-419F-958A-ABA1250EC20B}",
                           "Unity Capture": r"CLSID\{5C2CD55C-92AD-4999-8666-912BD3E70010}"}


def _windows_virtual_camera() -> Check:
    import winreg

    found = []
    for name, key in WINDOWS_VIRTUAL_CAMERAS.items():
        try:
            winreg.OpenKey(winreg.HKEY_CLASSES_ROOT, key).Close()
        except OSError:
            continue
        found.append(name)
    if not found:
        return Check("virtual cam", False, "pyvirtualcam is installed but no virtual camera is registered (-o vcam "
                                           "sends to OBS's or Unity Capture's)",
                     "install OBS Studio (26 or later), which registers OBS Virtual Camera")
    return Check("virtual cam", True, f"{' and '.join(found)} registered")


def _models() -> Check:
    from models.download import cache_dir
    from models.registry import REGISTRY, model_state

    cache = cache_dir()
    # what a run would stumble on when it fetches a model: the cache must be a folder it can write
    existing = next((folder for folder in (cache, *cache.parents) if folder.exists()), None)
    problem = None
    if cache.exists() and not cache.is_dir():
        problem = "is a file, not a folder"
    elif existing is not None and not existing.is_dir():
        problem = f"cannot be made: {existing} is a file"
    elif existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        problem = "is not writable" if existing == cache else f"cannot be made in {existing} (not writable)"
    if problem is not None:
        return Check("models", False, f"the model cache {cache} {problem}",
                     "set DEPTHCAM_MODELS to a folder you can write (or unset it for the default cache)")
    states = ", ".join(f"{spec.name} {model_state(spec)}" for spec in REGISTRY.values())
    return Check("models", True, f"{states}; cache {cache} (DEPTHCAM_MODELS moves it; a run downloads "
                                 f"what it needs)")


CHECKS = (_python, _cpu, _gpu, _onnxruntime, _video, _photos, _display, _cameras, _virtual_camera, _models)


def run_doctor() -> int:
    """Print one line a part; a part that fails to answer says so rather than stopping the others."""
    fit_encoding(sys.stdout)  # a path's character a Windows code page lacks, redirected to a file, raised
    for check in CHECKS:
        try:
            result = check()
        except Exception as exc:  # noqa: BLE001 (a broken install is what this command is for)
            result = Check(check.__name__.strip("_").replace("_", " "), False,
                           f"could not be checked ({exc.__class__.__name__}: {exc})")
        line = f"{'ok' if result.ok else '--'}  {result.part:12s} {result.detail}"
        print(line + (f"\n    fix: {result.fix}" if result.fix else ""))
    return 0
