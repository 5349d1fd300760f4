"""Where each thread of a depthcam run spends its wall-clock time: a sampling profiler of Python stacks.

    python bench/sample_stacks.py [--every-ms 5] [--top 8] -- bench --modes pipelined --device cuda

runs `depthcam <args>` in this process while a thread samples every thread's stack (sys._current_frames) every
`--every-ms` and counts, per thread, the innermost line of depthcam's own code (stream/, models/, kernels/) with
the call it was in. A thread blocked in C (a CUDA synchronise, ONNX Runtime's run, a queue's wait) counts at the
line that called it, so the table shows what a pipeline waits on, which a CPU profile does not: the GPU pipelined
run at 10.5 fps with 1.5 cores busy (bench/RESULTS.md, session 28) spent its time waiting, not computing.
"""
from __future__ import annotations

import argparse
import collections
import sys
import threading
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OWN = tuple(str(ROOT / part) for part in ("stream", "models", "kernels"))


def own_line(frame: types.FrameType | None) -> str:
    """The innermost frame in depthcam's code, as 'file:line function', and the call below it where that is
    outside (the library call that blocks: queue.get, synchronize, run)."""
    outside = None
    while frame is not None:
        path = frame.f_code.co_filename
        if path.startswith(OWN):
            where = f"{Path(path).relative_to(ROOT)}:{frame.f_lineno} {frame.f_code.co_name}"
            return f"{where} -> {outside}" if outside else where
        if outside is None:
            outside = f"{Path(path).name}:{frame.f_code.co_name}"
        frame = frame.f_back
    return f"(outside depthcam) {outside}"


class StackSampler:
    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self.counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.samples: collections.Counter = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stack-sampler", daemon=True)

    def __enter__(self) -> StackSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(self.every_s):
            threads = threading.enumerate()
            taken = collections.Counter(thread.name for thread in threads)
            # a name two threads share (two stages' face finders, say) keeps its threads apart by their ident
            names = {thread.ident: thread.name if taken[thread.name] == 1 else f"{thread.name} ({thread.ident})"
                     for thread in threads}
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                name = names.get(ident, str(ident))
                self.counts[name][own_line(frame)] += 1
                self.samples[name] += 1

    def table(self, top: int) -> str:
        lines = ["| thread | share of its samples | where (innermost depthcam line -> the call it waits in) |",
                 "| --- | ---: | --- |"]
        for name, total in self.samples.most_common():
            for where, count in self.counts[name].most_common(top):
                lines.append(f"| {name} | {100 * count / total:.0f} % | `{where}` |")
        return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every-ms", type=float, default=5.0, help="sampling period (default 5 ms)")
    parser.add_argument("--top", type=int, default=8, help="lines shown per thread (default 8)")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="-- then depthcam's own arguments")
    options = parser.parse_args(argv)
    args = options.args[1:] if options.args[:1] == ["--"] else options.args
    from stream.cli import main as depthcam

    started = time.perf_counter()
    with StackSampler(options.every_ms / 1000.0) as sampler:
        status = depthcam(args)
    print(f"\nthread stacks sampled every {options.every_ms:g} ms over {time.perf_counter() - started:.1f} s "
          f"(depthcam {' '.join(args)}):\n")
    print(sampler.table(options.top))
    return status


if __name__ == "__main__":
    sys.exit(main())
