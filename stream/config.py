"""Configuration: dataclasses with validation, YAML presets in configs/, and flag overrides.

A preset is a partial YAML file over the defaults below. Unknown keys and bad values are refused
with a message naming the key, the value and what is allowed.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, get_type_hints

import yaml

from stream.errors import UserError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEVICES = ("auto", "cpu", "cuda")
MODEL_OUTPUTS = ("auto", "inverse_depth", "metres")
MODEL_INPUTS = ("auto", "raw", "unit", "imagenet", "symmetric")
MODEL_SIDE_RANGE = (16, 4096)
MAX_CONFIG_BYTES = 1 << 20  # a config is a few lines; anything larger is a wrong file (a video?), not read whole


@dataclass
class InferenceConfig:
    max_batch: int = 4  # frames per network call
    max_wait_ms: float = 20.0  # wait after the first frame of a batch (live: at most one frame period)
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
    smoothing: float = 0.15  # weight of the newest frame's range in the running range (1 = no smoothing)

    def validate(self) -> None:
        _check_range("normalise.low_percentile", self.low_percentile, 0, 50)
        _check_range("normalise.high_percentile", self.high_percentile, 50, 100)
        _check_range("normalise.smoothing", self.smoothing, 0.001, 1)
        if self.low_percentile >= self.high_percentile:
            raise UserError("normalise.low_percentile must be below normalise.high_percentile")


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

    def validate(self) -> None:
        if self.mode is False:  # YAML 1.1, which PyYAML reads, takes an unquoted `mode: off` for false
            self.mode = "off"
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
    focus: str | float = "auto"  # auto (largest face, else nearest large region) or a disparity in [0, 1]
    focus_point: tuple[int, int] | None = None  # x, y in pixels: focus on what is there
    track_point: bool = True  # the point follows what was under it as the picture moves (else: that pixel)
    focus_smoothing: float = 0.25  # weight of the newest focus measurement per frame
    face_interval: int = 3  # look for faces every n-th frame (the detector costs ~10-25 ms at 320 px)
    blur: float = 12.0  # largest blur radius in pixels at the reference height
    reference_height: int = 480  # the blur scales with frame height / reference_height
    highlight_boost: float = 0.0  # > 0 makes bright highlights bloom into bokeh discs
    threads: int = 0  # CPU threads for the renderer; 0 = all cores

    def validate(self) -> None:
        if isinstance(self.focus, str) and self.focus != "auto":
            try:
                self.focus = float(self.focus)
            except ValueError:
                raise UserError(f"render.focus must be 'auto' or a disparity in [0, 1], got {self.focus!r}") from None
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
                raise UserError(f"render.focus_point must be X,Y in whole pixels, e.g. 320,200, "
                                f"got {self.focus_point!r}") from None
            if x < 0 or y < 0:
                raise UserError(f"render.focus_point must be inside the frame, got {x},{y}")
            self.focus_point = (x, y)
            if self.focus != "auto":  # the point would win, and focus be dropped unsaid
                raise UserError("render.focus and render.focus_point both set the focus; keep one of them")
        _check_bool("render.track_point", self.track_point)
        _check_range("render.focus_smoothing", self.focus_smoothing, 0.001, 1)
        _check_int("render.face_interval", self.face_interval, 1, 1000)
        _check_range("render.blur", self.blur, 0, 256)
        _check_int("render.reference_height", self.reference_height, 16, 8640)
        _check_range("render.highlight_boost", self.highlight_boost, 0, 16)
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
    preview: bool = False  # also show the output in a window (keys and clicks as in -o window)
    progress: bool = True

    def validate(self) -> None:
        _check_bool("output.side_by_side", self.side_by_side)
        _check_bool("output.preview", self.preview)
        _check_bool("output.progress", self.progress)
        if self.save_depth is not None and (not isinstance(self.save_depth, str) or not self.save_depth.strip()):
            # null means "no depth video"; a number, a boolean or "" is a mistake, not a file name
            raise UserError(f"output.save_depth must be a video file name (e.g. depth.mp4) or null, "
                            f"got {self.save_depth!r}")


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
        if self.model_size is not None:
            parse_model_size(self.model_size)
        if not isinstance(self.model, str) or not self.model.strip():
            raise UserError("model must be a registry name (see 'depthcam models list') or a path to an .onnx file")
        for section in (self.inference, self.normalise, self.refine, self.render, self.queues, self.output):
            section.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_model_size(value: Any) -> tuple[int, int]:
    """`model_size: 518x518` as (width, height)."""
    low, high = MODEL_SIDE_RANGE
    try:
        width, height = (int(v) for v in value.lower().split("x"))
    except (AttributeError, ValueError):
        raise UserError(f"model_size (--model-size) must be WIDTHxHEIGHT, e.g. 518x518, got {value!r}") from None
    if not (low <= width <= high and low <= height <= high):
        raise UserError(f"model_size (--model-size) {value} is out of range ({low}..{high} per side)")
    return width, height


def _check_choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"{key} must be one of {', '.join(choices)}, got {value!r}")


def _check_range(key: str, value: Any, low: float, high: float, exclusive_low: bool = False) -> None:
    # bool is an int subclass: `blur: true` is a mistake, not 1
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{key} must be a number in [{low}, {high}], got {value!r}")
    if not math.isfinite(value):  # every comparison with NaN is false: it would pass the range test below
        raise UserError(f"{key} must be a finite number in [{low}, {high}], got {value!r}")
    if value < low or value > high or (exclusive_low and value == low):
        raise UserError(f"{key} must be in [{low}, {high}], got {value!r}")


def _check_int(key: str, value: Any, low: int, high: int) -> None:
    """An integer key: 4.0 is taken (YAML and flags may give floats), 4.5 is refused rather than truncated."""
    _check_range(key, value, low, high)
    if isinstance(value, float) and not value.is_integer():
        raise UserError(f"{key} must be a whole number in [{low}, {high}], got {value!r}")


def _check_bool(key: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise UserError(f"{key} must be true or false, got {value!r}")


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
        raise UserError(f"unknown config preset {name_or_path!r}; choose one of {presets} "
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
    def __init__(self, key: Any, first_line: int, line: int) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key, self.first_line, self.line = key, first_line, line


class _ConfigLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping: PyYAML keeps the last one silently,
    so an edit further down a file would quietly undo one above it."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may override keys; that is its purpose
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:  # an unhashable key: PyYAML's own error names it
                continue
            if first is not key_node:
                raise _DuplicateKey(key, first.start_mark.line + 1, key_node.start_mark.line + 1)
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's message is several lines whose first is often only the context ("while scanning for
    the next token"); one line with the problem and where it is helps more."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        text = exc.problem
        if exc.context and text.startswith("but "):  # "but found another document" needs what was expected
            text = f"{exc.context}, {text}"
        if exc.problem_mark is not None:
            text += f" at line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}"
        if "'\\t'" in exc.problem:
            text += " (YAML indents with spaces, not tabs)"
        return text
    return str(exc).splitlines()[0]


def read_config_file(path: Path) -> Any:
    """The parsed YAML of a config file; every way reading it can fail is one UserError line."""
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
    try:
        text = raw.decode("utf-8-sig")  # -sig: a byte-order mark some editors write is fine
    except UnicodeDecodeError as exc:
        raise UserError(f"config file {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                        f"{exc.start}); save it as UTF-8 YAML") from None
    try:
        return yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 (a SafeLoader subclass)
    except _DuplicateKey as exc:
        raise UserError(f"config file {path} gives key {exc.key!r} twice (lines {exc.first_line} and {exc.line}); "
                        f"keep one") from None
    except yaml.YAMLError as exc:
        raise UserError(f"config file {path} is not valid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:  # thousands of nested brackets: PyYAML's parser recurses once a level
        raise UserError(f"config file {path} is not valid YAML for a config: nested too deeply") from None


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """YAML gives ints where floats are meant, strings for numbers in flags: accept what is meant."""
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if hint is bool and not isinstance(value, bool):
        raise UserError(f"{key} must be true or false, got {value!r}")
    return value


def _apply(target: Any, values: dict[str, Any], prefix: str, source: str) -> None:
    if values is None and prefix:  # `refine:` with every key commented out: the section's defaults
        return
    if not isinstance(values, dict):
        raise UserError(f"{prefix.rstrip('.') or 'config'} in {source} must be a mapping, got {values!r}")
    hints = get_type_hints(type(target))
    known = {f.name for f in dataclasses.fields(target)}
    for key, value in values.items():
        full = f"{prefix}{key}"
        if key not in known:
            raise UserError(f"unknown config key '{full}' in {source} (known keys here: {', '.join(sorted(known))})")
        current = getattr(target, key)
        if dataclasses.is_dataclass(current):
            _apply(current, value, f"{full}.", source)
        else:
            setattr(target, key, _coerce(full, value, hints[key]))


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
    data = None
    if name_or_path is not None:  # "" is refused by name, not taken as "no config"
        path = resolve_config_path(name_or_path)
        data = read_config_file(path)
        _apply(config, {} if data is None else data, "", str(path))  # None: empty or comments only
        _paths_beside(config, path)
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        *sections, key = dotted.split(".")
        nested: dict[str, Any] = {key: value}
        for section in reversed(sections):
            nested = {section: nested}
        _apply(config, nested, "", "the command line")
    _flag_focus_wins(config, overrides or {})
    config = config.validate()
    note = _unused_window_note(data, config, str(name_or_path))
    if note is not None and notify is not None:
        notify(note)
    return config
