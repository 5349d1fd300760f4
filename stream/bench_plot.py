"""Plots for `depthcam bench --plot`: an end-to-end latency timeline and a histogram per stage.

The figure is drawn with matplotlib's object API (no pyplot): nothing global such as the backend
changes, and checking the plot path before a run needs no GUI toolkit.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from stream.errors import UserError
from stream.paths import ensure_writable, replace_atomically


def _figure_class():
    """matplotlib's Figure; a UserError naming the extra when matplotlib is missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError("--plot needs matplotlib: pip install 'depthcam[plot]'") from None
    return Figure


def supported_formats() -> set[str]:
    """File extensions matplotlib can write here; a UserError when matplotlib is missing."""
    return {name.lower() for name in _figure_class()().canvas.get_supported_filetypes()}


def check_plot_path(path: Path) -> Path:
    """Everything that would make the plot fail after a whole benchmark, checked before it: matplotlib
    present, a format it writes (from the extension), LaTeX for .pgf, and a writable place."""
    path = Path(path)
    formats = supported_formats()
    fmt = path.suffix[1:].lower()
    if fmt not in formats:
        # no extension would make matplotlib append .png to the name, so the file is not where asked
        what = f".{fmt}" if fmt else "a file without an extension"
        raise UserError(f"--plot {path}: matplotlib cannot write {what}; "
                        f"use one of {', '.join('.' + f for f in sorted(formats))} (e.g. bench.png)")
    if fmt == "pgf":
        import matplotlib

        texsystem = matplotlib.rcParams["pgf.texsystem"]
        if shutil.which(texsystem) is None:
            raise UserError(f"--plot {path}: .pgf needs {texsystem} (LaTeX), which is not installed; "
                            f"use .pdf or .svg")
    return ensure_writable(path, "benchmark plot")


def plot_report(document: dict, path: Path) -> None:
    Figure = _figure_class()  # noqa: N806 (the class, named as matplotlib names it)
    runs = [(f"{report['config']}/{name}", run) for report in document["reports"] for name, run in report["runs"].items()]
    stages = ["depth", "refine", "render"]
    figure = Figure(figsize=(10, 3 + 2.2 * len(stages)))
    axes = figure.subplots(1 + len(stages), 1)
    for label, run in runs:
        fps = run["throughput_fps"]
        rate = f"{fps:.1f} fps" if fps is not None and fps == fps else "fps n/a"  # NaN: under 2 frames measured
        axes[0].plot(run["samples_ms"]["end_to_end"], label=f"{label} ({rate})", lw=0.9)
    axes[0].set(title="end-to-end latency (capture → sink) per frame", xlabel="frame", ylabel="ms")
    axes[0].legend(fontsize=7)
    for axis, stage in zip(axes[1:], stages):
        # One set of bins for every run: each run's own 40 bins would give bars of different widths
        # and heights that cannot be compared (a run in a narrow range shows as a few tall spikes).
        every = np.concatenate([np.asarray(run["samples_ms"][stage], dtype=float) for _, run in runs])
        edges = np.histogram_bin_edges(every, bins=40) if every.size else 40
        for label, run in runs:
            values = run["samples_ms"][stage]
            if values:
                axis.hist(values, bins=edges, alpha=0.5, label=label)
        axis.set(title=f"{stage}: service time (start → end of the call that took the frame)", xlabel="ms",
                 ylabel="frames")
        if axis.get_legend_handles_labels()[0]:  # an empty legend warns
            axis.legend(fontsize=7)
    machine = document["machine"]
    figure.suptitle(f"depthcam bench on {machine['cpu']} ({machine['cores']} cores"
                    f"{', ' + machine['gpu'] if machine['gpu'] else ''})", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    # the format by name: the partial file's own suffix is .part
    replace_atomically(path, lambda partial: figure.savefig(partial, dpi=110, format=path.suffix[1:].lower()))
