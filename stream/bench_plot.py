"""Plots for `depthcam bench --plot`: an end-to-end latency timeline and a histogram per stage."""
from __future__ import annotations

from pathlib import Path


def plot_report(document: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from stream.errors import UserError

        raise UserError("--plot needs matplotlib: pip install 'depthcam[plot]'") from None
    runs = [(f"{report['config']}/{name}", run) for report in document["reports"] for name, run in report["runs"].items()]
    stages = ["depth", "refine", "render"]
    figure, axes = plt.subplots(1 + len(stages), 1, figsize=(10, 3 + 2.2 * len(stages)))
    for label, run in runs:
        axes[0].plot(run["samples_ms"]["end_to_end"], label=f"{label} ({run['throughput_fps']:.1f} fps)", lw=0.9)
    axes[0].set(title="end-to-end latency (capture → sink) per frame", xlabel="frame", ylabel="ms")
    axes[0].legend(fontsize=7)
    for axis, stage in zip(axes[1:], stages):
        for label, run in runs:
            values = run["samples_ms"][stage]
            if values:
                axis.hist(values, bins=40, alpha=0.5, label=label)
        axis.set(title=f"{stage}: service time per frame", xlabel="ms", ylabel="frames")
        axis.legend(fontsize=7)
    machine = document["machine"]
    figure.suptitle(f"depthcam bench on {machine['cpu']} ({machine['cores']} cores"
                    f"{', ' + machine['gpu'] if machine['gpu'] else ''})", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
