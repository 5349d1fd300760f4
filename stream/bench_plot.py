"""Plots for `depthcam bench --plot`: an end-to-end latency timeline and a histogram per stage.

The figure is drawn with matplotlib's object API (no pyplot): nothing global such as the backend
changes, and checking the plot path before a run needs no GUI toolkit.
"""
from __future__ import annotations

import json
import math
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


MODE_COLOURS = {"pipelined": "tab:blue", "sequential": "tab:orange", "batch1": "tab:green", "batch2": "tab:red",
                "batch4": "tab:purple", "batch8": "tab:brown", "live": "tab:pink"}
CONFIG_STYLES = ("-", "--", ":", "-.")


def run_styles(document: dict) -> list[tuple[str, dict, dict]]:
    """Every run with its label and line style: the colour says the mode, the dash the configuration, so no two
    runs look alike (matplotlib's own cycle has ten colours: with --compare and every mode, the eleventh run
    took the first one's colour, and the timeline showed one run's latency as another's). Configurations past
    the fourth get their own colour shade."""
    styles = []
    for number, report in enumerate(document["reports"]):
        dash = CONFIG_STYLES[number % len(CONFIG_STYLES)]
        lighter = number // len(CONFIG_STYLES)  # the fifth configuration on: the same dashes, lighter colours
        for name, run in report["runs"].items():
            colour = MODE_COLOURS.get(name, "tab:gray")
            style = {"color": _lighter(colour, lighter), "linestyle": dash}
            styles.append((f"{report['config']}/{name}", run, style))
    return styles


def _lighter(colour: str, steps: int) -> tuple[float, float, float]:
    """`colour` mixed with white, a third more per step (at most two)."""
    from matplotlib.colors import to_rgb

    share = min(steps, 2) / 3
    return tuple(channel + (1 - channel) * share for channel in to_rgb(colour))  # type: ignore[return-value]


def plot_report(document: dict, path: Path) -> None:
    Figure = _figure_class()  # noqa: N806 (the class, named as matplotlib names it)
    from matplotlib.ticker import MaxNLocator
    runs = run_styles(document)
    stages = ["depth", "refine", "render"]
    # constrained layout makes room for the legends beside the axes, where they hide no data; a panel is as tall
    # as its legend's rows (a dozen runs' legends ran off the figure's foot)
    panel = max(2.2, 0.6 + 0.14 * min(len(runs), LEGEND_ROWS))
    figure = Figure(figsize=(12, 0.8 + panel * (1 + len(stages))), layout="constrained")
    axes = figure.subplots(1 + len(stages), 1)
    for label, run, style in runs:
        fps = run["throughput_fps"]
        rate = f"{fps:.1f} fps" if fps is not None and fps == fps else "fps n/a"  # NaN: under 2 frames measured
        axes[0].plot(run["samples_ms"]["end_to_end"], label=f"{label} ({rate})", lw=0.9, **style)
    # the measured frames, counted from the first after the warm-up: whole numbers (ticks of 2.5 named no frame)
    axes[0].set(title="end-to-end latency (capture → sink) per frame", xlabel="measured frame (after the warm-up)",
                ylabel="ms")
    axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    _legend(axes[0], len(runs))
    for axis, stage in zip(axes[1:], stages):
        _stage_histogram(axis, stage, runs)
    # several reports plotted together (`bench --from A.json B.json`) bring a title naming each
    figure.suptitle(document.get("title") or f"depthcam bench of {plot_title(document)}", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the format by name: the partial file's own suffix is .part
    replace_atomically(path, lambda partial: figure.savefig(partial, dpi=110, format=path.suffix[1:].lower()))


def plot_title(document: dict) -> str:
    """What a plot's title says of the report: its input, when it was measured (when the measuring began; an older
    report knows only when it was written), and on what."""
    machine = document["machine"]
    began = document.get("started") or document.get("created") or "undated"
    return (f"{document.get('input') or 'an unknown input'}, "
            f"{str(began).replace('T', ' ')}, on {machine['cpu']} ({machine_cores(machine)})")


def machine_cores(machine: dict) -> str:
    """'8 cores, 1.5 usable, load 3.20 at start, NVIDIA H200': what the figures ran on beside the CPU's name (the
    machine's cores alone made a container's 1.5 read as 8, and a busy machine as an idle one)."""
    usable, load = machine.get("cores_usable"), machine.get("load_average")  # absent from older reports
    parts = [f"{machine['cores']} cores"]
    if isinstance(usable, (int, float)) and usable != machine["cores"]:
        parts.append(f"{usable:g} usable")
    if isinstance(load, list) and load and isinstance(load[0], (int, float)):
        parts.append(f"load {load[0]:.2f} at start")
    if machine.get("gpu"):
        parts.append(str(machine["gpu"]))
    return ", ".join(parts)


LEGEND_ROWS = 12  # a legend's entries a column; more runs take more columns

CLIP_PERCENTILE = 99.5  # a histogram's axis ends here: one outlier stretched it, squeezing every bar into a few bins


def stage_samples(stage: str, run: dict) -> tuple[list, str]:
    """A run's per-frame values for a stage's histogram and what they are. Async depth's depth row is the hand-over
    of the newest depth (a tall bar at 0 ms): its network's own time per prediction is plotted instead, or, from
    an older report that lacks it, nothing."""
    if stage == "depth" and run.get("async_network_ms"):
        return run["samples_ms"].get("async_network") or [], " (async net)"
    return run["samples_ms"][stage], ""


def _legend(axis, entries: int) -> None:
    """The runs' legend beside a panel, where it hides no data; every panel has its own, so that none needs
    another to be read."""
    if not axis.get_legend_handles_labels()[0]:
        return  # nothing drawn on it (a stage no run has samples of): matplotlib warned of an empty legend
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                ncol=max(1, math.ceil(entries / LEGEND_ROWS)))


def _stage_histogram(axis, stage: str, runs: list[tuple[str, dict, dict]]) -> None:
    """One stage's service times of every run, in shared bins clipped at CLIP_PERCENTILE. Outlines, each run's
    thinner than the one before, so that two runs' equal bars both show."""
    shown = [(label + note, values, style, note) for label, run, style in runs
             for values, note in [stage_samples(stage, run)] if values]
    if not shown:
        axis.set(title=f"{stage}: no samples")
        return
    # One set of bins for every run: each run's own 40 bins would give bars of different widths and heights
    # that cannot be compared (a run in a narrow range shows as a few tall spikes).
    every = np.concatenate([np.asarray(values, dtype=float) for _, values, _, _ in shown])
    top = float(np.percentile(every, CLIP_PERCENTILE))
    low = float(every.min())
    beyond = int((every > top).sum())
    edges = np.histogram_bin_edges(every, bins=40, range=(low, top if top > low else low + 1.0))
    for number, (label, values, style, _) in enumerate(shown):
        axis.hist(values, bins=edges, histtype="step", label=label, lw=max(0.8, 2.4 - 0.5 * number), **style)
    clipped = f" (axis ends at the {CLIP_PERCENTILE:g}th percentile, {top:.1f} ms: {beyond} beyond)" if beyond else ""
    what = "service time (start → end of the call that took the frame)"
    if any(note for _, _, _, note in shown):
        what += "; async net: the network's own time per prediction"
    left_out = [label for label, run, _ in runs if not stage_samples(stage, run)[0] and run["samples_ms"][stage]]
    if left_out:  # an older report: async depth without the network's per-prediction times
        what += f"; left out: {', '.join(left_out)} (async depth; the report lacks the network's times)"
    axis.set(title=f"{stage}: {what}", xlabel=f"ms{clipped}", ylabel="frames")
    _legend(axis, len(shown))


# --- a report written before, read back (`depthcam bench --from REPORT.json`) ---------------------------------

READ_FIX = "give a report that depthcam bench --json wrote, or write one again"
STAGES = ("depth", "refine", "render")


def load_report(name: str, newest_schema: int) -> dict:
    """A report written by `bench --json` (any schema version up to `newest_schema`), checked for what the
    tables and the plot read: a file cut short, edited by hand or of another program is one line naming what
    is wrong, not a traceback from deep inside the plot."""
    if not name.strip():  # `--from "$REPORT"` with REPORT unset: "" named the current folder ("Is a directory")
        raise UserError(f"--from is empty (an unset shell variable?); {READ_FIX}")
    path = Path(name).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"--from {name}: no such file; {READ_FIX}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--from {name}: cannot read it as text ({getattr(exc, 'strerror', None) or exc}); "
                        f"{READ_FIX}") from None
    try:
        document = json.loads(text)  # schema 1 wrote bare NaN, which json reads
    except json.JSONDecodeError as exc:
        raise UserError(f"--from {name}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}), cut short or "
                        f"edited by hand; {READ_FIX}") from None
    problem = report_problem(document, newest_schema)
    if problem is not None:
        raise UserError(f"--from {name}: {problem}; {READ_FIX}")
    return document


def report_problem(document: object, newest_schema: int) -> str | None:
    """The first thing that makes `document` unreadable as a bench report, or None."""
    if not isinstance(document, dict) or "reports" not in document:
        return "not a depthcam bench report (no \"reports\")"
    version = document.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return f"schema_version is {json.dumps(version)}, not a version depthcam wrote"
    if version > newest_schema:
        return (f"written by a newer depthcam (schema_version {version}; this one reads up to {newest_schema}): "
                f"update depthcam to read it")
    machine = document.get("machine")
    if not isinstance(machine, dict) or not all(key in machine for key in ("cpu", "cores", "gpu")):
        return "machine is missing or lacks cpu, cores or gpu"
    if not _is_count(machine["cores"]) or not (machine.get("cores_usable") is None
                                                or isinstance(machine["cores_usable"], (int, float))):
        return "machine.cores or machine.cores_usable is not a number"
    reports = document["reports"]
    if not isinstance(reports, list) or not reports:
        return "reports is empty or not a list"
    for number, report in enumerate(reports):
        problem = _config_problem(report)
        if problem is not None:
            return f"reports[{number}]: {problem}"
    return None


def _config_problem(report: object) -> str | None:
    if not isinstance(report, dict) or not isinstance(report.get("config"), str):
        return "not a configuration's report (no \"config\" name)"
    settings = report.get("settings", {})
    if not isinstance(settings, dict) or not all(isinstance(settings.get(section, {}), dict)
                                                 for section in ("inference", "refine", "render")):
        return "settings, or its inference, refine or render section, is not an object"
    runs = report.get("runs")
    if not isinstance(runs, dict) or not runs:
        return "runs is missing or empty"
    for name, run in runs.items():
        problem = _run_problem(run)
        if problem is not None:
            return f"runs.{name}: {problem}"
    return None


def _run_problem(run: object) -> str | None:
    if not isinstance(run, dict):
        return "not an object"
    if not _is_count(run.get("frames")) or not _is_count(run.get("dropped_frames")):
        return "frames or dropped_frames is missing or not a count"
    if "dropped_after_warmup" in run and not _is_count(run["dropped_after_warmup"]):  # absent from older reports
        return "dropped_after_warmup is not a count"
    if not _is_figure(run.get("throughput_fps")):
        return "throughput_fps is missing or not a number"
    if not isinstance(run.get("model"), str):
        return "model is missing or not a name"
    for key in ("frame_size", "model_input_size"):  # schema 2's; absent from older reports
        size = run.get(key)
        if size is not None and not (isinstance(size, list) and len(size) == 2 and all(map(_is_count, size))):
            return f"{key} is not [width, height]"
    stages = run.get("stages")
    if not isinstance(stages, dict):
        return "stages is missing"
    figures = {"end_to_end_ms": run.get("end_to_end_ms")}
    for stage in STAGES:
        row = stages.get(stage)
        figures[f"stages.{stage}.service_ms"] = row.get("service_ms") if isinstance(row, dict) else None
    for key, stats in figures.items():
        if not isinstance(stats, dict) or not all(_is_figure(stats.get(p)) for p in ("p50", "p95", "p99", "max")):
            return f"{key} is missing or lacks p50, p95, p99 or max"
    samples = run.get("samples_ms")
    optional = ["async_network"] if isinstance(samples, dict) and "async_network" in samples else []  # async only
    for key in ("end_to_end", *STAGES, *optional):
        values = samples.get(key) if isinstance(samples, dict) else None
        if not isinstance(values, list) or not all(_is_figure(value) and value is not None for value in values):
            return f"samples_ms.{key} is missing or holds something other than numbers"
    return None


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_figure(value: object) -> bool:
    """A number, or null (an undefined figure: too few frames); NaN as schema 1 wrote it."""
    if value is None:
        return True
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isinf(value)
