"""Command-line options that `run` (and `demo`) and `bench` share: which model, how it is fed, where it runs."""
from __future__ import annotations

import argparse
from typing import Any

from stream.config import DEINTERLACE, DEVICES, MODEL_INPUTS, MODEL_OUTPUTS


def add_model_options(parser: argparse.ArgumentParser, device_help: str) -> None:
    parser.add_argument("--model", metavar="NAME|PATH",
                        help="tcmonodepth, fcrn, or a path to an .onnx file (default: the config's; tcmonodepth in "
                             "the default preset)")
    parser.add_argument("--model-output", choices=MODEL_OUTPUTS,
                        help="what your own model gives: inverse_depth (larger = nearer; the default for a file) "
                             "or metres (metric depth)")
    parser.add_argument("--model-input", choices=MODEL_INPUTS,
                        help="how your own model takes RGB: imagenet (0..1 normalised by ImageNet's mean and std, "
                             "as Depth Anything and MiDaS v2.1; the default for a file), symmetric (-1..1, MiDaS "
                             "v3 DPT), unit (0..1) or raw (0..255)")
    parser.add_argument("--model-size", metavar="WxH",
                        help="the input size, in pixels, to run a model with a dynamic input size at (e.g. 518x518)")
    parser.add_argument("--device", choices=DEVICES, help=device_help)
    parser.add_argument("--deinterlace", choices=DEINTERLACE,
                        help="auto (the default): a video's or a network stream's interlaced pictures (1080i, DV) are "
                             "deinterlaced with FFmpeg's bwdif; off: as decoded (progressive video its camera flags "
                             "interlaced)")


def model_overrides(args: argparse.Namespace) -> dict:
    """The configuration keys the options above set (None: the configuration's own value)."""
    return {"model": args.model, "model_output": args.model_output, "model_input": args.model_input,
            "model_size": args.model_size, "device": args.device, "deinterlace": args.deinterlace}


class GivenOnce(argparse.Action):
    """An option that a second time would silently replace the first: `--config live-cpu --config my.yaml` reads
    as the two layered, but only my.yaml was read."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        given = getattr(namespace, self.dest)
        if given is not None:
            parser.error(f"{option_string} is given twice ({given}, {values}) and only one is read; give one "
                         f"(a YAML file of your own can hold the keys of both; bench runs several with --compare)")
        setattr(namespace, self.dest, values)
