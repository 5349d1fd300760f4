"""Configuration: dataclasses with validation, YAML presets in configs/, and flag overrides.

A preset is a partial YAML file over the defaults below. Unknown keys and bad values are refused
with a message naming the key, the value and what is allowed.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import reprlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, get_type_hints

import yaml

from stream.errors import UserError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEVICES = ("auto", "cpu", "cuda")
MODEL_OUTPUTS = ("auto", "inverse_depth", "metres")
MODEL_INPUTS = ("auto", "raw", "unit", "imagenet", "symmetric")
DEINTERLACE = ("auto", "off")
MODEL_SIDE_RANGE = (16, 4096)
MAX_FOCUS_BAND = 0.4  # render.focus_band's largest: the blur still ramps up over >= 0.1 of disparity (span >= 0.5)
# The command line's flag for a key, so that a bad value given there is named as the user typed it
FLAGS = {"model": "--model", "model_output": "--model-output", "model_input": "--model-input",
         "model_size": "--model-size", "device": "--device", "deinterlace": "--deinterlace",
         "render.focus": "--focus", "render.focus_point": "--focus-point", "render.blur": "--blur",
         "render.highlight_boost": "--highlight-boost", "render.focus_band": "--focus-band", "refine.mode": "--refine",
         "inference.max_batch": "--max-batch",
         "inference.mode": "--async-depth", "output.save_depth": "--save-depth",
         "output.depth_format": "--depth-format", "output.side_by_side": "--side-by-side",
         "output.preview": "--preview", "output.progress": "--progress"}
MAX_CONFIG_BYTES = 1 << 20  # a config is a few lines; anything larger is a wrong file (a video?), not read whole
# Values that a file's aliases (*name) may add by standing for their anchor's again: a config needs a few dozen;
# nested aliases (a 'billion laughs' file, 1 KB) stand for 10^9, which a message or a walk of them ran out of memory
ALIAS_COPIES_LIMIT = 10_000
SHOWN_CHARS = 60  # a bad value shown in a message is cut to this: a 1 MB string, a list of a million, is no line


class ConfigValueError(UserError):
    """A bad value, naming its key (`refine.radius`), so that loading a file can say on which line it is."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class ConfigErrors(UserError):
    """Several mistakes of one config, one line each (the CLI prints each line as an error of its own)."""

    def __init__(self, errors: list[UserError]) -> None:
        super().__init__("\n".join(str(error) for error in errors))
        self.errors = errors


@dataclass
class InferenceConfig:
    max_batch: int = 4  # frames per network call
    max_wait_ms: float = 20.0  # wait after the first frame of a batch (files; a live source's batch never waits)
    mode: str = "sync"  # sync: every frame gets its own depth; async: newest depth, never blocks the display
    threads: int = 0  # ONNX Runtime intra-op threads; 0 = its default
    tensorrt: bool = False  # ask for ONNX Runtime's TensorRT provider before CUDA (GPU machines)

    def validate(self) -> None:
        _check_int("inference.max_batch", self.max_batch, 1, 64)
        _check_range("inference.max_wait_ms", self.max_wait_ms, 0, 1000)
        _check_choice("inference.mode", self.mode, ("sync", "async"))
        _check_int("inference.threads", self.threads, 0, 256)
        _check_bool("inference.tensorrt", self.tensorrt)


@dataclass
class NormaliseConfig:
    low_percentile: float = 2.0
    high_percentile: float = 98.0
    smoothing: float = 0.15  # weight of the newest range per 1/30 s, at any frame rate (1 = no smoothing)
    # each still pixel's refined disparity smoothed over time (kernels/temporal.py): newest's weight per 1/30 s, 1 = off
    pixel_smoothing: float = 1.0
    motion_threshold: float = 8.0  # luma change (of 255) below which a pixel is still; at twice it, moving

    def validate(self) -> None:
        _check_range("normalise.low_percentile", self.low_percentile, 0, 50)
        _check_range("normalise.high_percentile", self.high_percentile, 50, 100)
        _check_range("normalise.smoothing", self.smoothing, 0.001, 1)
        _check_range("normalise.pixel_smoothing", self.pixel_smoothing, 0.001, 1)
        _check_range("normalise.motion_threshold", self.motion_threshold, 1, 64)
        if self.low_percentile >= self.high_percentile:
            raise ConfigValueError("normalise.low_percentile", f"normalise.low_percentile ({self.low_percentile:g}) "
                                   f"must be below normalise.high_percentile ({self.high_percentile:g})")


@dataclass
class RefineConfig:
    # live: the filter at a reduced working width, then joint bilateral upsampling guided by the frame
    # (every preset's: from 640x480 up, lower error at depth edges than the exact filter at frame
    # size, and 30-50x cheaper on a CPU, bench/RESULTS.md); full: the exact filter at
    # frame size; off: bilinear only
    mode: str = "live"
    radius: int = 12  # full mode's window, frame pixels
    sigma_spatial: float = 20.0  # full mode, frame pixels
    sigma_range: float = 0.05  # guide colour difference, RGB scaled to [0, 1] (both modes)
    work_width: int = 160  # live mode's working width in pixels
    live_radius: int = 4  # live mode's window, working pixels
    live_sigma_spatial: float = 3.0  # live mode, working pixels
    threads: int = 0  # CPU threads for the filter; 0 = all cores (1 helps when stages share 2 cores)
    # on: a person segmentation (MediaPipe selfie) raises the person's pixels to the person's own depth, so hair
    # and thin parts the depth network misses stay sharp, and a person tall in a portrait frame is not blurred
    # below the face (models/segmentation.py); a model that cannot be had is refused. auto: on where the model is
    # in the cache (fetched with the depth model on a first run; no network tried otherwise) and the refinement on the
    # CPU, else one warning line and the run goes on without it. off: the
    # depth map alone
    person_mask: str = "auto"

    def validate(self) -> None:
        if self.mode is False:  # YAML 1.1, which PyYAML reads, takes an unquoted `mode: off` for false
            self.mode = "off"
        if isinstance(self.person_mask, bool):  # YAML 1.1 reads an unquoted on/off as true/false too
            self.person_mask = "on" if self.person_mask else "off"
        _check_choice("refine.person_mask", self.person_mask, ("off", "on", "auto"))
        _check_choice("refine.mode", self.mode, ("full", "live", "off"))
        _check_int("refine.radius", self.radius, 1, 16)
        _check_range("refine.sigma_spatial", self.sigma_spatial, 0.1, 1000, exclusive_low=False)
        _check_range("refine.sigma_range", self.sigma_range, 0.001, 10)
        _check_int("refine.work_width", self.work_width, 32, 8192)
        _check_int("refine.live_radius", self.live_radius, 1, 16)
        _check_range("refine.live_sigma_spatial", self.live_sigma_spatial, 0.1, 1000, exclusive_low=False)
        _check_int("refine.threads", self.threads, 0, 256)


@dataclass
class RenderConfig:
    focus: str | float = "auto"  # auto (a face, else the nearest subject, not the floor) or a disparity in [0, 1]
    focus_point: tuple[int, int] | None = None  # x, y in pixels: focus on what is there
    track_point: bool = True  # the point follows what was under it as the picture moves (else: that pixel)
    focus_smoothing: float = 0.25  # weight of the newest focus measurement per 1/30 s (any frame rate)
    face_interval: int = 3  # faces every n-th frame (live: at most every n frames of 30 fps); ~10-25 ms at 320 px
    blur: float = 12.0  # largest blur radius in pixels at the reference height
    reference_height: int = 480  # the blur scales with the frame's shorter side / reference_height
    # disparities within this of the focus are in focus (the subject's own relief, a network's blotches in it); beyond
    # it the blur grows from 0 to the full blur at the far end (kernels.focus_band). 0: no band, the thin lens exactly
    focus_band: float = 0.15
    # clipped lights bloom into bokeh discs: a clipped pixel weighs 1 + 4 x this in its disc, mid-bright ones barely
    # more (kernels.dof: highlight boost); 0: off
    highlight_boost: float = 4.0
    # the far field gathered exactly up to twice the block size (kernels.depth_of_field's exact_far): a bright
    # background's edge ends at its disc's rim, not in a hard line past it, for ~30-50 % more render time. auto: on
    # for photos and files written to files (not time-bound), off live
    exact_far: str | bool = "auto"
    threads: int = 0  # CPU threads for the renderer; 0 = all cores

    def exact_far_for(self, file_run: bool) -> bool:
        """exact_far for a run: `file_run` is a photo or a file read at its own speed into a file."""
        return file_run if self.exact_far == "auto" else bool(self.exact_far)

    def validate(self) -> None:
        if isinstance(self.focus, str) and self.focus != "auto":
            try:
                self.focus = float(self.focus)
            except ValueError:
                raise ConfigValueError("render.focus", f"render.focus must be 'auto' or a disparity in [0, 1], "
                                       f"got {_shown(self.focus)}{_meant(self.focus, ('auto',))}") from None
        if not isinstance(self.focus, str):
            _check_range("render.focus", self.focus, 0, 1)
            self.focus = float(self.focus)
        if self.focus_point is not None:
            point = self.focus_point
            if isinstance(point, str):
                point = tuple(p.strip() for p in point.split(","))
            try:
                x, y = (_pixel(v) for v in point)  # type: ignore[union-attr]
            except (TypeError, ValueError):
                raise ConfigValueError("render.focus_point", f"render.focus_point must be X,Y in whole pixels, "
                                       f"e.g. 320,200, got {_shown(self.focus_point)}") from None
            if x < 0 or y < 0:
                raise ConfigValueError("render.focus_point",
                                       f"render.focus_point must be inside the frame, got {x},{y}")
            self.focus_point = (x, y)
            if self.focus != "auto":  # the point would win, and focus be dropped unsaid
                raise ConfigValueError("render.focus_point",
                                       "render.focus and render.focus_point both set the focus; keep one of them")
        _check_bool("render.track_point", self.track_point)
        _check_range("render.focus_smoothing", self.focus_smoothing, 0.001, 1)
        _check_int("render.face_interval", self.face_interval, 1, 1000)
        _check_range("render.blur", self.blur, 0, 256)
        _check_int("render.reference_height", self.reference_height, 16, 8640)
        # span = max(focus, 1 - focus) >= 0.5: a band below it leaves the blur a ramp of at least 0.1 to grow over
        _check_range("render.focus_band", self.focus_band, 0, MAX_FOCUS_BAND)
        _check_range("render.highlight_boost", self.highlight_boost, 0, 16)
        if not isinstance(self.exact_far, bool) and self.exact_far != "auto":
            raise ConfigValueError("render.exact_far", f"render.exact_far must be auto, true or false, got "
                                   f"{_shown(self.exact_far)}{_meant(self.exact_far, ('auto', 'true', 'false'))}")
        _check_int("render.threads", self.threads, 0, 256)


@dataclass
class QueueConfig:
    size: int = 8  # frames between two stages, for files (they block: nothing is lost)
    live_size: int = 1  # for live sources: every queued frame adds a frame period of latency

    def validate(self) -> None:
        _check_int("queues.size", self.size, 1, 1024)
        _check_int("queues.live_size", self.live_size, 1, 1024)


@dataclass
class OutputConfig:
    side_by_side: bool = False  # write input | output | depth next to each other
    save_depth: str | None = None  # also write the refined disparity, colourised, to this video
    # the depth file's pictures: colour (inferno, to look at) | grey16 (the disparity as data, round(d * 65535),
    # 65535 nearest; .png, .tif or lossless .mkv), for compositing and 3D
    depth_format: str = "colour"
    DEPTH_FORMATS = ("colour", "grey16")  # a class constant, no field
    preview: bool = False  # also show the output in a window (keys and clicks as in -o window)
    progress: bool = True
    # the video's codec: auto = the container's own (H.264 in .mp4, .mov, .mkv; VP9 in .webm; MPEG-4 in .avi), except
    # a ProRes or DNx input written to .mov or .mkv stays ProRes and a lossless one lossless (stream.video_writer)
    codec: str = "auto"
    # a class constant, no field (no annotation): auto and stream.video_writer.OUTPUT_CODECS's names
    CODECS = ("auto", "h264", "hevc", "prores", "ffv1", "vp9", "mpeg4")
    # other names users give a codec (FFmpeg's encoders, the standards' other names), taken as the codec's
    ALIASES = {"h265": "hevc", "x265": "hevc", "libx265": "hevc", "x264": "h264", "avc": "h264", "libx264": "h264",
               "prores_ks": "prores", "libvpx-vp9": "vp9"}

    # the input's audio streams the video keeps (--audio-track): all, none, or their numbers from 1 as the run's
    # lines count them, in the output's order, the first the default track ([2, 1], or "2,1")
    audio_tracks: Any = "all"

    @classmethod
    def codec_named(cls, text: str) -> str:
        """The codec a name means, whatever its case (ProRes, H264) or alias (h265)."""
        name = text.strip().lower()
        return cls.ALIASES.get(name, name)

    @staticmethod
    def audio_tracks_named(value: Any) -> str | list[int]:
        """"all", "none" or the track numbers (from 1, each once) that `value` names: all, none, 2, "2,1", [2, 1];
        ValueError, saying what to write, for anything else."""
        if value is None:  # YAML's null: the default
            return "all"
        if value is False:  # an unquoted `off`, which YAML 1.1 reads as false
            return "none"
        if isinstance(value, str) and value.strip().lower() in ("all", "none"):
            return value.strip().lower()
        parts = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else [value]
        numbers = [_track_number(part) for part in parts]
        if not numbers or None in numbers:
            raise ValueError(f"{_shown(value)} names no audio tracks; give their numbers from 1 (2, or 2,1: the first "
                             f"the default track), all, or none")
        twice = next((number for index, number in enumerate(numbers) if number in numbers[:index]), None)
        if twice is not None:
            raise ValueError(f"{_shown(value)} names track {twice} twice; give each once")
        return numbers

    def kept_audio_tracks(self) -> list[int] | None:
        """The audio streams the video keeps, by their numbers from 1 ([]: none); None: every one."""
        return None if self.audio_tracks == "all" else [] if self.audio_tracks == "none" else list(self.audio_tracks)

    def validate(self) -> None:
        if isinstance(self.codec, str):
            self.codec = self.codec_named(self.codec)
        _check_choice("output.codec", self.codec, self.CODECS)
        _check_choice("output.depth_format", self.depth_format, self.DEPTH_FORMATS)
        try:
            self.audio_tracks = self.audio_tracks_named(self.audio_tracks)
        except ValueError as exc:
            raise ConfigValueError("output.audio_tracks", f"output.audio_tracks: {exc}") from None
        _check_bool("output.side_by_side", self.side_by_side)
        _check_bool("output.preview", self.preview)
        _check_bool("output.progress", self.progress)
        if self.save_depth is not None and (not isinstance(self.save_depth, str) or not self.save_depth.strip()):
            # null means "no depth video"; a number, a boolean or "" is a mistake, not a file name
            raise ConfigValueError("output.save_depth", f"output.save_depth must be a video file name (e.g. "
                                   f"depth.mp4) or null, got {_shown(self.save_depth)}")


@dataclass
class PipelineConfig:
    device: str = "auto"
    model: str = "tcmonodepth"  # a registry name or a path to an .onnx file
    # What the model's output is: auto = the registry's word, or inverse depth for your own file
    # (MiDaS, DPT, Depth Anything relative); metres for a metric-depth model (inverted to disparity).
    model_output: str = "auto"
    # How RGB is scaled for the model: auto = the registry's word, or imagenet for your own file
    # (Depth Anything, MiDaS v2.1); symmetric (-1..1) for MiDaS v3 DPT; raw (0..255) or unit (0..1).
    model_input: str = "auto"
    model_size: str | None = None  # "WxH": the size to run a model with a dynamic input size at
    deinterlace: str = "auto"  # auto: interlaced pictures (1080i, DV) deinterlaced with bwdif | off: as decoded
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    normalise: NormaliseConfig = field(default_factory=NormaliseConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    queues: QueueConfig = field(default_factory=QueueConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def validate(self) -> "PipelineConfig":
        _check_choice("device", self.device, DEVICES)
        _check_choice("model_output", self.model_output, MODEL_OUTPUTS)
        _check_choice("model_input", self.model_input, MODEL_INPUTS)
        if self.deinterlace is False:  # an unquoted `deinterlace: off`, which YAML 1.1 reads as false
            self.deinterlace = "off"
        _check_choice("deinterlace", self.deinterlace, DEINTERLACE)
        if isinstance(self.model_size, (list, tuple)) and len(self.model_size) == 2:
            self.model_size = "x".join(map(str, self.model_size))  # `[518, 518]`, YAML's way to write a pair
        if self.model_size is not None:
            parse_model_size(self.model_size)
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigValueError("model", f"model must be a registry name (see 'depthcam models list') or a path "
                                   f"to an .onnx file, got {_shown(self.model)}")
        for section in (self.inference, self.normalise, self.refine, self.render, self.queues, self.output):
            section.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = _SHOWN.maxlong = SHOWN_CHARS


def _shown(value: Any, quoted: bool = True) -> str:
    """A value as a message shows it: its repr (a string as it is where not `quoted`), cut to about SHOWN_CHARS
    (reprlib looks at no more of a list or a string than it shows, so a huge value costs nothing)."""
    text = _SHOWN.repr(value) if quoted or not isinstance(value, str) else value
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS - 3]}..."


def parse_model_size(value: Any) -> tuple[int, int]:
    """`model_size: 518x518` as (width, height)."""
    low, high = MODEL_SIDE_RANGE
    try:
        width, height = (int(v) for v in value.lower().split("x"))
    except (AttributeError, ValueError):
        raise ConfigValueError("model_size", f"model_size (--model-size) must be WIDTHxHEIGHT, e.g. 518x518, "
                               f"got {_shown(value)}") from None
    if not (low <= width <= high and low <= height <= high):
        raise ConfigValueError("model_size", f"model_size (--model-size) {_shown(value, quoted=False)} is out of range "
                               f"({low}..{high} per side)")
    return width, height


# What users write for a choice, where spelling alone would suggest another (`gpu` is closest to `cpu`)
SYNONYMS = {"gpu": "cuda", "nvidia": "cuda", "meters": "metres", "metric": "metres"}


def closest_choice(given: Any, choices: Any) -> str | None:
    """The choice a mistyped value most likely meant (`ful` -> full, `gpu` -> cuda), or None."""
    if not isinstance(given, str):
        return None
    choices = [str(choice) for choice in choices]
    text = given.strip().lower()
    if SYNONYMS.get(text) in choices:
        return SYNONYMS[text]
    close = difflib.get_close_matches(text, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def _meant(given: Any, choices: Any) -> str:
    """` (did you mean cuda?)` for a value spelt like one of `choices` (a choice-or-number key's words too:
    `focus: auot`), else ''."""
    meant = closest_choice(given, choices)
    return f" (did you mean {meant}?)" if meant else ""


def _track_number(value: Any) -> int | None:
    """A track's number from 1 (an int, or its digits), else None; never a bool (`true` is no track)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


def _check_choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigValueError(key, f"{key} must be one of {', '.join(choices)}, got {_shown(value)}"
                                    f"{_meant(value, choices)}")


def _check_range(key: str, value: Any, low: float, high: float, exclusive_low: bool = False) -> None:
    # bool is an int subclass: `blur: true` is a mistake, not 1
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigValueError(key, f"{key} must be a number in [{low}, {high}], got {_shown(value)}")
    if not math.isfinite(value):  # every comparison with NaN is false: it would pass the range test below
        raise ConfigValueError(key, f"{key} must be a finite number in [{low}, {high}], got {_shown(value)}")
    if value < low or value > high or (exclusive_low and value == low):
        raise ConfigValueError(key, f"{key} must be in [{low}, {high}], got {_shown(value)}")


def _check_int(key: str, value: Any, low: int, high: int) -> None:
    """An integer key: 4.0 is taken (YAML and flags may give floats), 4.5 is refused rather than truncated."""
    _check_range(key, value, low, high)
    if isinstance(value, float) and not value.is_integer():
        raise ConfigValueError(key, f"{key} must be a whole number in [{low}, {high}], got {_shown(value)}")


def _check_bool(key: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigValueError(key, f"{key} must be true or false, got {_shown(value)}")


def _pixel(value: Any) -> int:
    """One focus_point coordinate: an int, an integral float or a decimal string; never a bool."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not a pixel coordinate")
    if isinstance(value, float):
        if not value.is_integer():  # also NaN and inf
            raise ValueError("not a whole pixel")
        return int(value)
    if isinstance(value, (int, str)):
        return int(value)
    raise TypeError(f"{type(value).__name__} is not a pixel coordinate")


def preset_names() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def resolve_config_path(name_or_path: str) -> Path:
    """A preset name from configs/ (e.g. 'live-cpu') or a path to a YAML file."""
    presets = ", ".join(preset_names())
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        # `--config ""` (an unset shell variable) must not silently mean "the defaults"
        raise UserError(f"the config name is empty; give a preset ({presets}) or a path to a YAML file")
    candidate = Path(name_or_path).expanduser()
    bare_name = "/" not in name_or_path and "\\" not in name_or_path
    preset = CONFIG_DIR / f"{name_or_path}.yaml"
    if bare_name and preset.is_file():  # a preset's name means the preset, whatever the working folder holds
        return preset
    if candidate.is_dir():
        raise UserError(f"config {name_or_path} is a folder; give a YAML file or a preset ({presets})")
    if bare_name and not candidate.exists() and candidate.suffix.lower() not in (".yaml", ".yml"):
        close = closest_choice(name_or_path.replace("_", "-"), preset_names())
        meant = f" (did you mean {close}?)" if close else ""
        raise UserError(f"unknown config preset {name_or_path!r}{meant}; choose one of {presets} "
                        f"or give a path to a YAML file")
    if not candidate.exists():
        if candidate.stem in preset_names() and candidate.suffix.lower() in (".yaml", ".yml"):
            # `--config live-cpu.yaml` from another folder: the preset is meant, named without its folder
            raise UserError(f"config file {name_or_path} not found; for the preset, write --config {candidate.stem}")
        raise UserError(f"config file {name_or_path} not found (presets: {presets})")
    if not candidate.is_file():  # a FIFO or a device would block or read forever
        raise UserError(f"config file {name_or_path} is not a regular file; give a YAML file or a preset")
    return candidate


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, first: yaml.Node, second: yaml.Node) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key, self.node = key, second
        self.first_line, self.line = first.start_mark.line + 1, second.start_mark.line + 1


_INT, _FLOAT = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_BOOL, _MERGE = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:merge"
# Numbers as YAML 1.2 and every other tool read them. PyYAML's YAML 1.1 takes `sigma_range: 1e-2` (no dot)
# for a string, `blur: 1:30` for 90 (base 60) and `work_width: 0160` for 112 (octal).
_EXPONENT = r"[eE][-+]?[0-9]+"
_FLOAT_RE = re.compile(rf"""^(?:[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*)(?:{_EXPONENT})?
                           |[-+]?[0-9][0-9_]*{_EXPONENT}
                           |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X)
_INT_RE = re.compile(r"^[-+]?(?:0b[01_]+|0o[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*)$")


class _ConfigLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last one silently, so an
    edit further down a file would quietly undo one above it) and reads numbers as YAML 1.2 does."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value if isinstance(node, yaml.MappingNode) else ():  # `!!set [1]`: PyYAML says
            if key_node.tag == _MERGE:  # `<<: *base` may override keys; that is its purpose
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:  # an unhashable key: PyYAML's own error names it
                continue
            if first is not key_node:
                raise _DuplicateKey(key, first, key_node)
        return super().construct_mapping(node, deep=deep)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, AttributeError, KeyError):  # `blur: !!float abc`: PyYAML's own crash
            what = _shown(node.value) if isinstance(node, yaml.ScalarNode) else f"this {node.id}"
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise yaml.constructor.ConstructorError(None, None, f"{what} is not a valid {tag}",
                                                    node.start_mark) from None

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text = str(self.construct_scalar(node)).replace("_", "")
        sign = -1 if text.startswith("-") else 1
        digits = text.lstrip("+-")
        base = {"0b": 2, "0o": 8, "0x": 16}.get(digits[:2].lower(), 10)  # 010 is ten, as in YAML 1.2
        return sign * int(digits[2:] if base != 10 else digits, base)


_ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_ConfigLoader.add_implicit_resolver(_FLOAT, _FLOAT_RE, list("-+0123456789."))
_ConfigLoader.add_implicit_resolver(_INT, _INT_RE, list("-+0123456789"))
_ConfigLoader.add_constructor(_INT, _ConfigLoader.construct_yaml_int)


@dataclass(frozen=True)
class _Place:
    """Where a file sets a key, for errors that point at the line."""
    line: int
    word: str | None = None  # `on`, `yes`, `off`, ...: a word YAML 1.1 reads as a boolean, as written


@dataclass
class ConfigFile:
    data: Any
    places: dict[str, _Place] = field(default_factory=dict)  # 'refine.radius' -> where it is set

    def where(self, key: str) -> str:
        place = self.places.get(key)
        return f", line {place.line}" if place else ""


def _collect_places(node: yaml.Node | None, prefix: str, places: dict[str, _Place], keys: dict[int, str],
                    inside: frozenset[int] = frozenset()) -> None:
    """Each key path's line; `keys` gets each key node's path (to name a duplicate by its path)."""
    if not isinstance(node, yaml.MappingNode) or id(node) in inside:  # an alias may point at its own parent
        return
    inside = inside | {id(node)}
    merged: list[yaml.Node] = []
    for key_node, value in node.value:
        if key_node.tag == _MERGE:
            merged.extend(value.value if isinstance(value, yaml.SequenceNode) else [value])
        elif isinstance(key_node, yaml.ScalarNode):
            path = f"{prefix}{key_node.value}"
            keys[id(key_node)] = path
            plain_bool = isinstance(value, yaml.ScalarNode) and value.tag == _BOOL
            word = value.value if plain_bool and value.value.lower() not in ("true", "false") else None
            places[path] = _Place(key_node.start_mark.line + 1, word)
            _collect_places(value, f"{path}.", places, keys, inside)
    for base in merged:  # `<<: *base`: its keys count where this mapping does not give them itself
        from_base: dict[str, _Place] = {}
        _collect_places(base, prefix, from_base, keys, inside)
        for path, place in from_base.items():
            places.setdefault(path, place)


def _alias_copies(node: yaml.Node | None) -> int:
    """How many more nodes the document stands for than it writes: each alias (*name) stands for its anchor's node
    and all under it again. Counted on the composed nodes (each once, then by its size), before any is built or
    walked: a 'billion laughs' file's 10^9 values are never made."""
    sizes: dict[int, int] = {}
    return 0 if node is None else _expanded_size(node, sizes, set()) - len(sizes)


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """The nodes under `node` and itself, every alias written out; a node met again inside itself counts once."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:  # `&a [*a]`: a list holding itself is one node, not an endless one
        return 1
    open_nodes.add(key)
    if isinstance(node, yaml.MappingNode):
        children = [child for pair in node.value for child in pair]
    else:
        children = node.value if isinstance(node, yaml.SequenceNode) else []
    sizes[key] = size = 1 + sum(_expanded_size(child, sizes, open_nodes) for child in children)
    open_nodes.discard(key)
    return size


# Characters YAML refuses whole, by the names editors show them under
CONTROL_NAMES = {0x00: "NUL", 0x07: "BEL", 0x08: "backspace", 0x0B: "vertical tab", 0x0C: "form feed", 0x1B: "ESC",
                 0x7F: "DEL"}


def _unprintable(path: Path, text: str, exc: yaml.reader.ReaderError) -> str:
    """A config holding a character YAML does not allow (a NUL, an escape), with where it is."""
    position = exc.position
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    code = exc.character if isinstance(exc.character, int) else ord(exc.character)
    name = f"U+{code:04X}" + (f" ({CONTROL_NAMES[code]})" if code in CONTROL_NAMES else "")
    kind = "a control character" if code < 0x20 or 0x7F <= code < 0xA0 else "a character"
    utf16 = " (it reads as UTF-16 text saved without its byte-order mark)" if text.count("\0") * 4 > len(text) else ""
    return (f"config file {path} holds {name}, {kind} YAML does not allow, at line {line}, column {column}{utf16}; "
            f"save it as plain UTF-8 text")


def _config_text(path: Path, raw: bytes) -> str:
    """A config file's bytes as text: UTF-8, with or without the byte-order mark some editors write."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):  # Windows Notepad's "Unicode"
        width = "32" if raw.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")) else "16"
        raise UserError(f"config file {path} is UTF-{width} text; save it as plain UTF-8 text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if _binary(path, raw):  # `--config clip.mp4`: no text to save again as UTF-8
            raise UserError(f"config file {path} is no text but binary data (a {path.suffix} file: a video, picture "
                            f"or model?); give a YAML file or a preset ({', '.join(preset_names())})") from None
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise UserError(f"config file {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line}, column "
                        f"{column}); save it as UTF-8 YAML") from None


def _binary(path: Path, raw: bytes) -> bool:
    """A file that is no config of any encoding: NUL bytes near its start (a video's, a PNG's or a JPEG's header; an
    ONNX model's), and not named as YAML (a UTF-16 one without its byte-order mark has NULs too)."""
    return bool(path.suffix) and path.suffix.lower() not in (".yaml", ".yml") and b"\0" in raw[:4096]


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's message is several lines whose first is often only the context ("while scanning for
    the next token"); one line with the problem and where it is helps more."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        text = _cut_words(exc.problem)  # it quotes what it met: an alias's or a tag's name, a long number
        if exc.context and text.startswith("but "):  # "but found another document" needs what was expected
            text = f"{exc.context}, {text}"
        if exc.problem_mark is not None:
            text += f" at line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}"
        if "'\\t'" in exc.problem:
            text += " (YAML indents with spaces, not tabs)"
        elif any(problem in exc.problem for problem in _INDENT_PROBLEMS):
            text += " (is a key indented unlike the others of its section? they line up, two spaces under it)"
        return text
    return _cut_words(str(exc).splitlines()[0])


_LONG_WORD = re.compile(rf"\S{{{SHOWN_CHARS + 1},}}")


def _cut_words(text: str) -> str:
    """`text` with each word longer than SHOWN_CHARS cut as _shown cuts a value: a 5000-digit number is no line."""
    return _LONG_WORD.sub(lambda found: f"{found.group()[:SHOWN_CHARS - 3]}...", text)


# PyYAML's words for a key indented one space off: `render:` / `  blur: 3` / `   focus: auto`, or ` focus: auto`
_INDENT_PROBLEMS = ("mapping values are not allowed here", "expected <block end>, but found '<block mapping start>'")
_INI_LINE = re.compile(r"^\s*(\[[\w.-]+\]|[\w.-]+\s*=.*)\s*$")  # `[render]`, `blur = 3`: INI or TOML


_BARE_WORD = re.compile(r"^(\s*)([A-Za-z_][\w-]*)\s*(?:#.*)?$")  # `render`, a section's name without its colon
_KEY_LINE = re.compile(r"^(\s*)[A-Za-z_][\w-]*\s*:(?:\s|$)")  # `device: cpu`, `render:`: a mapping's key


def _missing_colon(text: str, exc: yaml.YAMLError) -> tuple[int, str] | None:
    """(line, word) of a section's name without its colon, at or before where parsing failed: `render` then
    `  focus: auto`, which PyYAML reports at the block's first key, in words about mapping values; or a bare word
    among keys of its own indent, the last line before the failure (`render` last, or above `device: cpu`), which
    PyYAML reports as "could not find expected ':'" or as mapping values. A bare word that is a key's value (`model:`
    then `  midas`, a block scalar's text) is not one. None where there is none."""
    mark = getattr(exc, "problem_mark", None)
    last = mark.line if mark is not None else len(text)
    significant = [(number, line) for number, line in enumerate(text.splitlines())
                   if line.strip() and not line.lstrip().startswith("#")]
    for position, (number, line) in enumerate(significant):
        bare = _BARE_WORD.match(line)
        following = significant[position + 1][1] if position + 1 < len(significant) else ""
        if number <= last and bare and _indent(following) > _indent(line):
            return number + 1, bare.group(2)
    return _bare_sibling(significant, last) if getattr(exc, "problem", None) in _KEY_EXPECTED else None


_KEY_EXPECTED = ("could not find expected ':'", "mapping values are not allowed here")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _bare_sibling(significant: list[tuple[int, str]], last: int) -> tuple[int, str] | None:
    """The bare word just before line `last` (or on it) where keys of its indent are around it, and the line above
    is no key whose value it could be."""
    before = [(position, number, line) for position, (number, line) in enumerate(significant) if number <= last]
    if before and before[-1][1] == last and not _BARE_WORD.match(before[-1][2]):
        before.pop()  # the failure's own line: the key after the bare word
    if not before or not (bare := _BARE_WORD.match(before[-1][2])):
        return None
    position, number, line = before[-1]
    above = significant[position - 1][1] if position else ""
    if _KEY_LINE.match(above) and _indent(above) < _indent(line):
        return None  # `model:` then `  midas`: a value on its own line, or a block scalar's text
    if not any(_KEY_LINE.match(other) and _indent(other) == _indent(line) for _, other in significant):
        return None
    return number + 1, bare.group(2)


def _not_yaml_hint(text: str) -> str:
    """A config written as INI or TOML fails to parse in words that do not say so."""
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith(("#", ";"))]
    if lines and _INI_LINE.match(lines[0]):
        return " (this reads as INI or TOML; a config is YAML: 'render:', then '  blur: 3' indented under it)"
    return ""


def read_config_file(path: Path) -> ConfigFile:
    """The parsed YAML of a config file and where each key is; every way reading it can fail is one
    UserError line."""
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise UserError(f"config file {path} is {size / 1e6:.1f} MB; a config is a small YAML file "
                            f"(is this the right file?)")
        raw = path.read_bytes()
    except PermissionError:
        raise UserError(f"cannot read config file {path}: permission denied; check its permissions") from None
    except OSError as exc:
        raise UserError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    text = _config_text(path, raw)
    try:
        loader = _ConfigLoader(text)
    except yaml.reader.ReaderError as exc:  # PyYAML checks the whole text for control characters as it starts
        raise UserError(_unprintable(path, text, exc)) from None
    places: dict[str, _Place] = {}
    keys: dict[int, str] = {}
    try:
        node = loader.get_single_node()
        copies = _alias_copies(node)
        if copies > ALIAS_COPIES_LIMIT:
            many = f"{copies:,}" if copies < 10**6 else f"over 10^{len(str(copies)) - 1}"
            raise UserError(f"config file {path}: its aliases (*name) stand for {many} more values, over the "
                            f"{ALIAS_COPIES_LIMIT} a config could need (a 'billion laughs' file?); write the values "
                            f"out instead")
        _collect_places(node, "", places, keys)
        return ConfigFile(None if node is None else loader.construct_document(node), places)
    except _DuplicateKey as exc:
        name = keys.get(id(exc.node), str(exc.key))
        raise UserError(f"config file {path} gives key {_shown(name)} twice (lines {exc.first_line} and {exc.line}); "
                        f"keep one") from None
    except yaml.YAMLError as exc:
        bare = _missing_colon(text, exc)
        if bare is not None:
            line, word = bare[0], _shown(bare[1], quoted=False)
            raise UserError(f"config file {path}, line {line}: '{word}' needs a colon after it ({word}:)") from None
        raise UserError(f"config file {path} is not valid YAML: {_yaml_problem(exc)}{_not_yaml_hint(text)}") from None
    except RecursionError:  # thousands of nested brackets: PyYAML's parser recurses once a level
        raise UserError(f"config file {path} is not valid YAML for a config: nested too deeply") from None
    finally:
        loader.dispose()


_NUMBER_TEXT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """YAML gives ints where floats are meant, strings for numbers in flags: accept what is meant."""
    if hint in (int, float) and isinstance(value, str) and _NUMBER_TEXT.fullmatch(value.strip()):
        value = float(value)  # `blur: "12"`, as a template writes it: the number, not a string
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if hint is bool and not isinstance(value, bool):
        raise ConfigValueError(key, f"{key} must be true or false, got {_shown(value)}")
    return value


def _key_paths(target: Any = None, prefix: str = "") -> list[str]:
    """Every key a file may set, as its path: 'device', ..., 'render.blur', ..."""
    target = PipelineConfig() if target is None else target
    paths = []
    for item in dataclasses.fields(target):
        value = getattr(target, item.name)
        paths += _key_paths(value, f"{prefix}{item.name}.") if dataclasses.is_dataclass(value) else [prefix + item.name]
    return paths


def _unknown_key(full: str, known: set[str], prefix: str) -> str:
    """What an unknown key most likely meant: a key of another section (`blur:` at the top), a dotted path
    written flat (`refine.radius: 4`), a typo; else the keys that this level has."""
    every = _key_paths()
    if full in every:
        section, key = full.rsplit(".", 1)
        return f"sections nest in YAML: write '{section}:' and under it '  {key}: ...'"
    leaf = full.rsplit(".", 1)[-1]
    homes = [path for path in every if path.rsplit(".", 1)[-1] == leaf]
    close = difflib.get_close_matches(leaf, sorted(known), n=1, cutoff=0.75)
    if homes:
        return f"did you mean {' or '.join(repr(home) for home in homes)}?"
    if close:
        return f"did you mean '{prefix}{close[0]}'?"
    return f"known keys here: {', '.join(sorted(known))}"


# Each mistake found in a file or the flags, with the key it is about: all of them are said at once
_Problems = list[tuple[str, UserError]]


def _apply(target: Any, values: dict[str, Any], prefix: str, source: str, file: ConfigFile | None,
           problems: _Problems) -> None:
    """Set `values` on `target`; an unknown key or a value of the wrong type goes to `problems`, and the rest
    are still set, so that every mistake of a file is found in one run."""
    if values is None and prefix:  # `refine:` with every key commented out: the section's defaults
        return
    section = prefix.rstrip(".")
    if not isinstance(values, dict):
        if not section:  # the whole file: a list, a scalar, a text file that is no config
            raise UserError(f"config file {source} must be a mapping ('key: value' lines), got {_shown(values)}")
        problems.append((section, UserError(f"{section} in {source}{file.where(section) if file else ''} must be "
                                            f"a mapping of keys, got {_shown(values)}")))
        return
    hints = get_type_hints(type(target))
    known = {f.name for f in dataclasses.fields(target)}
    for key, value in values.items():
        full = f"{prefix}{key}"
        if key not in known:
            where = file.where(full) if file else ""
            problems.append((full, UserError(f"unknown config key '{_shown(full, quoted=False)}' in {source}{where} "
                                             f"({_unknown_key(full, known, prefix)})")))
            continue
        current = getattr(target, key)
        if dataclasses.is_dataclass(current):
            _apply(current, value, f"{full}.", source, file, problems)
            continue
        try:
            setattr(target, key, _coerce(full, value, hints[key]))
        except ConfigValueError as exc:
            problems.append((full, exc))


def _validation_problems(config: PipelineConfig) -> list[ConfigValueError]:
    """Every bad value, not only the first that validate() meets: each one found is set back to its default and
    validate() runs again (it stops at its first, in the order of its checks rather than of the file's lines)."""
    found: list[ConfigValueError] = []
    defaults = PipelineConfig()
    while True:
        try:
            config.validate()
            return found
        except ConfigValueError as exc:
            if any(seen.key == exc.key for seen in found):  # its default fails with the others: say what is said
                return found
            found.append(exc)
            *sections, key = exc.key.split(".")
            owner, default = config, defaults
            for section in sections:
                owner, default = getattr(owner, section), getattr(default, section)
            setattr(owner, key, getattr(default, key))


def _located(exc: ConfigValueError, file: ConfigFile, path: Path) -> UserError:
    """A bad value that the file set, with the file and line: the user edits it there."""
    place = file.places.get(exc.key)
    line = f", line {place.line}" if place else ""
    text = f"config file {path}{line}: {exc}"
    if place and place.word and isinstance(_value_at(file.data, exc.key), bool):
        text += f" (YAML reads an unquoted {place.word} as {str(_value_at(file.data, exc.key)).lower()})"
    return UserError(text)


def _flagged(exc: ConfigValueError) -> ConfigValueError:
    """A bad value that a flag gave, named first by the flag as typed (`--blur: render.blur must be ...`): a user
    who typed --blur need not know its key."""
    flag = FLAGS.get(exc.key)
    text = str(exc)
    if flag is None or flag in text:  # model_size's own message names --model-size
        return exc
    return ConfigValueError(exc.key, f"{flag}: {text}")


def _said(key: str, exc: UserError, flags: dict[str, Any], file: ConfigFile, path: Path | None) -> UserError:
    """One mistake as the user is told it: by the flag that gave the value, else by the file's line."""
    if not isinstance(exc, ConfigValueError):  # an unknown key or a section that is no mapping: already placed
        return exc
    if exc.key in flags:
        return _flagged(exc)
    return exc if path is None else _located(exc, file, path)


def _refusal(problems: _Problems, flags: dict[str, Any], file: ConfigFile, path: Path | None) -> UserError:
    """The error for every mistake found: the one itself where there is one (its type kept), else one line each, in
    the file's line order, then the command line's."""
    def order(problem: tuple[str, UserError]) -> tuple[int, int]:
        key = problem[0]
        place = None if key in flags else file.places.get(key)
        return (1, 0) if place is None else (0, place.line)

    said = [_said(key, exc, flags, file, path) for key, exc in sorted(problems, key=order)]
    return said[0] if len(said) == 1 else ConfigErrors(said)


def _value_at(data: Any, key: str) -> Any:
    for part in key.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _unused_window_note(data: Any, config: PipelineConfig, source: str) -> str | None:
    """A file that sets the exact filter's window for a live-mode run most likely means live mode's
    (before 2026-11-28 both modes read refine.radius and sigma_spatial)."""
    refine = data.get("refine") if isinstance(data, dict) else None
    if not isinstance(refine, dict) or config.refine.mode != "live":
        return None
    full_keys = sorted({"radius", "sigma_spatial"} & refine.keys())
    if not full_keys or {"live_radius", "live_sigma_spatial"} & refine.keys():
        return None
    return (f"{source}: refine.{' and refine.'.join(full_keys)} only set the exact filter's window "
            f"(refine.mode: full); live mode's is refine.live_radius ({config.refine.live_radius}) and "
            f"refine.live_sigma_spatial ({config.refine.live_sigma_spatial:g}), in working pixels")


def _paths_beside(config: PipelineConfig, path: Path) -> None:
    """A file's relative paths (its model file, its depth video) are read from its own folder, not from
    wherever the command runs: the file and the model beside it move together. Flags stay relative to the
    working folder."""
    def beside(value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            return value  # validate() names the mistake
        candidate = Path(value).expanduser()
        if candidate.is_absolute():
            return value
        folder = value.endswith(("/", os.sep))  # `depths/`: a folder for the depth videos, kept one
        return str(path.parent / candidate) + (os.sep if folder else "")

    if isinstance(config.model, str) and (config.model.lower().endswith(".onnx") or "/" in config.model):
        config.model = beside(config.model)  # a registry name holds neither
    if config.output.save_depth is not None:
        config.output.save_depth = beside(config.output.save_depth)


def _flag_focus_wins(config: PipelineConfig, overrides: dict[str, Any]) -> None:
    """--focus and --focus-point each replace the file's way of focusing, whichever key it used."""
    if overrides.get("render.focus") is not None and overrides.get("render.focus_point") is None:
        config.render.focus_point = None
    if overrides.get("render.focus_point") is not None and overrides.get("render.focus") is None:
        config.render.focus = "auto"


def load_config(name_or_path: str | None = None, overrides: dict[str, Any] | None = None,
                notify: Callable[[str], None] | None = None) -> PipelineConfig:
    """Defaults, then the preset or YAML file, then flag overrides ('section.key': value); validated.
    `notify` receives a note about a setting that the run will not use (none: quiet)."""
    config = PipelineConfig()
    file, path = ConfigFile(None), None
    problems: _Problems = []
    if name_or_path is not None:  # "" is refused by name, not taken as "no config"
        path = resolve_config_path(name_or_path)
        file = read_config_file(path)
        _apply(config, {} if file.data is None else file.data, "", str(path), file, problems)  # None: empty
        _paths_beside(config, path)
    flags = {dotted: value for dotted, value in (overrides or {}).items() if value is not None}
    for dotted, value in flags.items():
        *sections, key = dotted.split(".")
        nested: dict[str, Any] = {key: value}
        for section in reversed(sections):
            nested = {section: nested}
        _apply(config, nested, "", "the command line", None, problems)
    _flag_focus_wins(config, overrides or {})
    problems += [(exc.key, exc) for exc in _validation_problems(config)]
    if problems:
        raise _refusal(problems, flags, file, path)
    note = _unused_window_note(file.data, config, str(name_or_path))
    if note is not None and notify is not None:
        notify(note)
    return config
