"""FCRN inference speed: frames per second at batch 1, 2, 4, printed as a markdown table.

    python bench/bench_fcrn.py                          # CPU, random weights (speed does not depend on them)
    python bench/bench_fcrn.py --providers cuda --fp16  # on a GPU machine with onnxruntime-gpu
    python bench/bench_fcrn.py --model ~/.cache/depthcam/fcrn_nyu_depth_v2.onnx
    python bench/bench_fcrn.py --providers cuda --alternate --conv-search exhaustive  # batch sizes changing

Times are wall-clock per `session.run` with host (NumPy) input and output, so on a GPU they
include the host<->device copies. Reported: the median of `--runs` timed runs after `--warmup`
runs, and the best run (on a shared machine the median carries other users' load).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from models.fcrn import INPUT_NAME, INPUT_SHAPE, build_fcrn  # noqa: E402
from stream.bench import cpu_name  # noqa: E402  # the CPU's model, also on ARM

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


def make_session(model_bytes: bytes, providers: list[str], threads: int | None,
                 conv_search: str = "exhaustive") -> ort.InferenceSession:
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    # The CPU provider always goes last: ORT falls back to it for any node the others do not take.
    chain = [PROVIDERS[p] for p in providers] + (["CPUExecutionProvider"] if "cpu" not in providers else [])
    # the CUDA provider's cuDNN algorithm search: ONNX Runtime's own (depthcam's too, models.runtime), or another
    options_per_provider = [{"cudnn_conv_algo_search": conv_search.upper()} if name == PROVIDERS["cuda"] else {}
                            for name in chain]
    return ort.InferenceSession(model_bytes, options, providers=chain, provider_options=options_per_provider)


def time_alternating(session: ort.InferenceSession, batches: list[int], rounds: int) -> list[tuple[int, float]]:
    """(batch, seconds) of each call, the batch sizes taken in turn as dynamic batching gives them: each call
    follows one of another size, which the CUDA provider's EXHAUSTIVE search answered with a new search."""
    rng = np.random.default_rng(0)
    images = {b: rng.uniform(0, 255, (b, *INPUT_SHAPE)).astype(np.float32) for b in batches}
    for batch in batches:  # warm-up: every size once
        session.run(None, {INPUT_NAME: images[batch]})
    calls = []
    for _ in range(rounds):
        for batch in batches:
            start = time.perf_counter()
            session.run(None, {INPUT_NAME: images[batch]})
            calls.append((batch, time.perf_counter() - start))
    return calls


def time_batch(session: ort.InferenceSession, batch: int, warmup: int, runs: int) -> tuple[float, float]:
    """(median, best) seconds per run of one batch; the best shows the speed without contention."""
    image = np.random.default_rng(batch).uniform(0, 255, (batch, *INPUT_SHAPE)).astype(np.float32)
    for _ in range(warmup):
        session.run(None, {INPUT_NAME: image})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {INPUT_NAME: image})
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", default="cpu",
                        help="comma-separated, in priority order: " + ", ".join(PROVIDERS) + " (default: cpu)")
    parser.add_argument("--batches", default="1,2,4", help="batch sizes (default: 1,2,4)")
    parser.add_argument("--model", type=Path, help="a converted FCRN .onnx (default: random weights)")
    parser.add_argument("--fp16", action="store_true", help="build the float16 variant (with random weights)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--threads", type=int, help="intra-op threads (default: ONNX Runtime's choice)")
    parser.add_argument("--conv-search", choices=("exhaustive", "heuristic"), default="exhaustive",
                        help="the CUDA provider's cuDNN algorithm search (default: exhaustive, ONNX Runtime's and "
                             "depthcam's)")
    parser.add_argument("--alternate", action="store_true",
                        help="time calls whose batch size changes every call (the batches in turn, --runs rounds), "
                             "as the pipeline's dynamic batching gives them")
    args = parser.parse_args(argv)

    providers = [p.strip().lower() for p in args.providers.split(",") if p.strip()]
    unknown = [p for p in providers if p not in PROVIDERS]
    if unknown:
        parser.error(f"unknown provider(s) {unknown}; choose from {list(PROVIDERS)}")
    model_bytes = args.model.read_bytes() if args.model else build_fcrn(seed=0, fp16=args.fp16).SerializeToString()
    session = make_session(model_bytes, providers, args.threads, args.conv_search)
    used = session.get_providers()
    if used[0] != PROVIDERS[providers[0]]:
        print(f"warning: asked for {PROVIDERS[providers[0]]}, the session runs on {used}", file=sys.stderr)

    model = args.model.name if args.model else f"random weights, {'fp16' if args.fp16 else 'fp32'}"
    search = f", cuDNN search {args.conv_search}" if used[0] == PROVIDERS["cuda"] else ""
    batches = [int(b) for b in args.batches.split(",")]
    if args.alternate:
        print(f"FCRN ResNet-50 UpProj ({model}); onnxruntime {ort.__version__}, providers {used}{search}; batch "
              f"sizes {batches} in turn, {args.runs} rounds after one warm-up call each\n")
        print("| provider | cuDNN search | calls | frames/s | ms per call (median) | ms per call (max) |")
        print("| --- | --- | ---: | ---: | ---: | ---: |")
        calls = time_alternating(session, batches, args.runs)
        seconds = [s for _, s in calls]
        print(f"| {used[0].removesuffix('ExecutionProvider')} | {args.conv_search if search else '-'} | {len(calls)} | "
              f"{sum(b for b, _ in calls) / sum(seconds):.1f} | {statistics.median(seconds) * 1e3:.1f} | "
              f"{max(seconds) * 1e3:.1f} |", flush=True)
        return 0
    print(f"FCRN ResNet-50 UpProj 228x304 -> 128x160 ({model}); onnxruntime {ort.__version__}, "
          f"providers {used}{search}; {cpu_name()}, {os.cpu_count()} CPUs; "
          f"median of {args.runs} runs after {args.warmup} warm-up\n")
    print("| provider | batch | ms per batch (median) | ms per frame (median) | frames/s (median) "
          "| frames/s (best run) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for batch in batches:
        median, best = time_batch(session, batch, args.warmup, args.runs)
        print(f"| {used[0].removesuffix('ExecutionProvider')} | {batch} | {median * 1e3:.1f} | "
              f"{median * 1e3 / batch:.1f} | {batch / median:.2f} | {batch / best:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
