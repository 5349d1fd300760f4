"""CPU timing of the HDR decode (kernels/colour.py, through stream/hdr.py's ColourConverter) and its error
against the float64 reference. From the repository root:

    python bench/bench_hdr.py
    git show <commit>:kernels/colour.py > /tmp/colour_old.py && python bench/bench_hdr.py --against /tmp/colour_old.py

The picture is scikit-image's astronaut scaled to the frame, lit up to 2.5 SDR whites (highlights above the
tone curve's knee), taken to PQ or HLG in BT.2020 and stored as a phone stores it (10-bit 4:2:0, limited
range). A frame costs FFmpeg's decode to 16-bit RGB (swscale), then the tone mapping. Runs of the two kernels
are interleaved and the medians compared, so a busy machine slows both alike. Wall time is the capture
thread's; CPU time (all threads of the process) is the steadier figure on a shared machine.
"""
from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numba  # noqa: E402

from kernels.colour import (BT2020_TO_BT709, SDR_WHITE_NITS, ColourTables, convert_rgb48,  # noqa: E402
                            nits_to_pq)
from kernels.colour_reference import convert_rgb48_reference  # noqa: E402
from kernels.cpu_threads import parallel_section  # noqa: E402
from stream.bench import cpu_name  # noqa: E402  # the CPU's model, also on ARM
from stream.hdr import ColourConverter, ColourSignal  # noqa: E402

SIZES = ((1080, 1920), (720, 1280))
SIGNALS = (ColourSignal("pq", 1000.0), ColourSignal("hlg", 1000.0))


def hdr_signal(display: np.ndarray, transfer: str) -> np.ndarray:
    """Display light in SDR whites (BT.2020) as PQ or HLG signal in [0, 1] (HLG: the inverse OOTF and OETF)."""
    if transfer == "pq":
        return nits_to_pq(display * SDR_WHITE_NITS)
    from kernels.colour import BT2020_LUMA, HLG_A, HLG_B, HLG_C, hlg_ootf_gain

    luminance = np.maximum(display @ np.array(BT2020_LUMA), 1e-12)
    scene = np.clip(display / hlg_ootf_gain((luminance * SDR_WHITE_NITS / 1000) ** (1 / 1.2))[..., None], 0, 1)
    return np.where(scene <= 1 / 12, np.sqrt(3 * scene), HLG_A * np.log(np.maximum(12 * scene - HLG_B, 1e-12)) + HLG_C)


def phone_frame(height: int, width: int, transfer: str) -> Any:
    """The astronaut as a decoded 10-bit 4:2:0 BT.2020 av.VideoFrame, tagged as a phone's HDR video is."""
    import av
    from skimage import data

    picture = cv2.resize(data.astronaut(), (width, height), interpolation=cv2.INTER_CUBIC) / 255.0
    display = np.clip((2.5 * picture ** 2.4) @ np.linalg.inv(BT2020_TO_BT709).T, 0, None)
    rgb16 = np.round(hdr_signal(display, transfer) * 65535).astype(np.uint16)
    frame = av.VideoFrame.from_ndarray(rgb16, format="rgb48le")
    frame = frame.reformat(format="yuv420p10le", dst_colorspace="bt2020", dst_color_range=1)
    frame.colorspace, frame.color_range = 9, 1  # BT.2020 non-constant luminance, limited range
    frame.color_trc, frame.color_primaries = (16 if transfer == "pq" else 18), 9
    return frame


def fresh_frames(frame: Any, count: int) -> list[Any]:
    """Copies of `frame` as new av.VideoFrames (PyAV keeps a swscale context per frame object)."""
    import av

    copies = []
    for _ in range(count):
        copy = av.VideoFrame(frame.width, frame.height, frame.format.name)
        for plane, source in zip(copy.planes, frame.planes):
            plane.update(bytes(source))
        copy.colorspace, copy.color_range = frame.colorspace, frame.color_range
        copy.color_trc, copy.color_primaries = frame.color_trc, frame.color_primaries
        copies.append(copy)
    return copies


def load_kernels(path: str) -> ModuleType:
    """Another version of kernels/colour.py (say, an older commit's), imported on its own for comparison."""
    spec = importlib.util.spec_from_file_location("colour_against", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall, CPU) milliseconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3


def interleaved(fns: dict[str, Callable[[], Any]], runs: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) ms of each, the calls taken in turn."""
    for fn in fns.values():
        fn()  # compiled or loaded from Numba's cache, tables in cache
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            times[name].append(timed(fn))
    return {name: tuple(np.median(np.array(t), axis=0)) for name, t in times.items()}  # type: ignore[misc]


def error_line(transfer: str, rgb16: np.ndarray, what: str) -> str:
    fast = convert_rgb48(rgb16, ColourTables(transfer, 1000.0))
    diff = np.abs(fast.astype(np.int16) - convert_rgb48_reference(rgb16, transfer, 1000.0))
    return f"| {transfer} | {what} | {diff.max()} | {(diff > 0).mean() * 100:.3f} % |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", help="another kernels/colour.py to time against (an older commit's)")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--threads", type=int, help="Numba's threads (default: all); 1 is the steadiest on a busy "
                        "machine, where the slower of two threads sets a parallel call's time")
    args = parser.parse_args()
    if args.threads:
        numba.set_num_threads(args.threads)
    against = load_kernels(args.against) if args.against else None
    parallel_section()  # a first parallel launch: Numba picks its threading layer then
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; numba {numba.__version__} "
          f"({numba.get_num_threads()} threads, {numba.threading_layer()} layer)\n")
    print("Median ms a picture (wall / CPU); the decode and the whole convert take a new frame each time, as a "
          "decoder gives them:\n")
    print("| size | transfer | decode to rgb48 | tone map | whole convert |"
          + (" tone map, --against | whole convert, --against | speed-up, whole (wall / CPU) |" if against else ""))
    print("| --- | --- | ---: | ---: | ---: |" + (" ---: | ---: | ---: |" if against else ""))
    for height, width in SIZES:
        for signal in SIGNALS:
            frames = itertools.cycle(fresh_frames(phone_frame(height, width, signal.transfer), 8))
            converter = ColourConverter(signal)
            rgb16 = next(frames).to_ndarray(format="rgb48le")
            fns = {"decode": lambda: next(frames).to_ndarray(format="rgb48le"),
                   "tone": lambda: convert_rgb48(rgb16, converter.tables),
                   "whole": lambda: converter.convert(next(frames))}
            if against is not None:
                old_tables = against.ColourTables(signal.transfer, signal.peak_nits)
                fns["against"] = lambda: against.convert_rgb48(rgb16, old_tables)
                fns["whole_against"] = lambda: against.convert_rgb48(next(frames).to_ndarray(format="rgb48le"),
                                                                     old_tables)
            got = interleaved(fns, args.runs)
            cells = " | ".join(f"{got[name][0]:.1f} / {got[name][1]:.1f}" for name in fns)
            if against is not None:
                old_whole, whole = got["whole_against"], got["whole"]
                cells += f" | {old_whole[0] / whole[0]:.2f}x / {old_whole[1] / whole[1]:.2f}x"
            print(f"| {width}x{height} | {signal.transfer} | {cells} |")

    print("\nAgainst the float64 reference (8-bit levels):\n")
    print("| transfer | pixels | max error | values off |\n| --- | --- | ---: | ---: |")
    rng = np.random.default_rng(0)
    extremes = np.array([0, 65535, 64 * 64, 940 * 64, 1023 * 64, 1, 65534], np.uint16)
    corners = np.stack(np.meshgrid(extremes, extremes, extremes), axis=-1).reshape(1, -1, 3)
    for transfer in ("pq", "hlg", "sdr"):
        print(error_line(transfer, rng.integers(0, 65536, (500, 1000, 3), dtype=np.uint16), "random 16-bit codes"))
        print(error_line(transfer, corners, "the extreme codes' combinations"))
        if transfer != "sdr":
            print(error_line(transfer, phone_frame(1080, 1920, transfer).to_ndarray(format="rgb48le"),
                             "the astronaut, 1080p"))
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
