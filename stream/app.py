"""Builds a ready-to-run pipeline from a configuration: model, stages, source and sink."""
from __future__ import annotations

import dataclasses
import math
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

from kernels.backend import BackendUnavailable, resolve_backend
from kernels.dof import MAX_BLUR_LIMIT
from kernels.temporal import RefinedFilter
from kernels.warmup import CPU_ENTRIES, cpu_cached, cpu_compiled, warm_up
from models.download import ModelError
from models.postprocess import DisparityNormaliser
from models.registry import ModelSpec, resolve_model
from models.runtime import DepthEstimator, OutputWatch, requested_providers
from models.segmentation import FocusFaces
from stream.animations import ONE_PICTURE_ANIMATIONS, AnimationSource, animation_metadata, animation_suffix
from stream.config import PipelineConfig, parse_model_size
from stream.controls import LiveControls
from stream.errors import UserError
from stream.focus import FocusController
from stream.hdr import CONVERT_KERNELS, ColourConverter
from stream.images import ANIMATION_FORMATS, PhotoMetadata, check_image_size
from stream.interrupts import noted_stop_signals
from stream.metrics import LatencyRecorder
from stream.network_source import NetworkSource, is_network_spec, redact
from stream.pipeline import Pipeline
from stream.piped_input import no_place_beside
from stream.paths import ensure_writable, same_file
from stream.sinks import (PREVIEW_FIX, WINDOW_FIX, Sink, check_display, check_virtual_camera, make_sink, output_kind,
                          sink_parts)
from stream.audio_track import audio_streams, check_audio_track
from stream.sources import ANIMATION_FORMATS as ANIMATION_DEMUXERS
from stream.sources import (ImageSource, PacedSource, Source, Timecode, VideoFileSource, open_source, part_refusal,
                            timecode_refusal)
from stream.video_writer import VideoWriter, check_video_size, codec_of, opens_again, output_codec
from stream.stages import AsyncDepthStage, DepthStage, RefineStage, RenderStage, Stage, blur_px, blur_side

STAGE_NAMES = ("depth", "refine", "render")
SLOW_NOTICE_S = 2.0  # a warm-up longer than this is announced (compiling, not loading from cache)


@dataclass
class Built:
    pipeline: Pipeline
    source: Source
    estimator: DepthEstimator
    backend: str
    focus: FocusController
    output: str  # where the result goes: a path, window, vcam or null


def default_output(input_spec: str, source: Source) -> str:
    """Where a run writes when not told: a camera's or network stream's picture in a window (a file served over
    HTTP too, read as a file: it has no place beside it), a file beside its input, and the synthetic scene (paced
    like a camera with realtime=1 too) in out/ (README, --help)."""
    if (source.live or is_network_spec(input_spec)) and not input_spec.startswith("synthetic:"):
        return "window"
    if not input_spec.startswith("synthetic:") and not Path(input_spec).expanduser().is_file():
        # /dev/stdin, a named pipe: the name beside it would land in /dev
        raise UserError(no_place_beside(input_spec))
    return portrait_name(input_spec, image=isinstance(source, ImageSource))


def portrait_name(input_spec: str, image: bool) -> str:
    """Where a file run writes when not told: NAME_portrait.png beside an image, NAME_portrait.mp4 beside a
    video, an animation of the input's type beside an animation (NAME_portrait.gif beside a GIF; APNG, WebP),
    out/synthetic_portrait.mp4 (from the current folder) for the synthetic scene."""
    if input_spec.startswith("synthetic:"):
        return "out/synthetic_portrait.mp4"
    path = Path(input_spec)
    return str(path.with_name(f"{path.stem}_portrait{_picture_suffix(input_spec, image)}"))


def depth_name(input_spec: str, image: bool = False) -> str:
    """The depth's file name where --save-depth names a folder: NAME_depth.mp4, or NAME_depth.png for a photo
    (whose depth is a picture, as its render is, not a one-frame video), an animation's type for an animation."""
    if input_spec.startswith("synthetic:"):
        return "synthetic_depth.mp4"
    return f"{Path(input_spec).stem}_depth{_picture_suffix(input_spec, image)}"


def _picture_suffix(input_spec: str, image: bool) -> str:
    """The type of a file input's outputs: an animation's own (.gif, .png, .apng, .webp), a photo's .png (a GIF or
    APNG of one picture, a photo, its own: written as one picture), else .mp4."""
    try:
        animation = animation_suffix(Path(input_spec).expanduser())
    except OSError:  # a name too long: opening the input says so
        animation = None
    own = Path(input_spec).suffix.lower()
    return animation or (own if image and own in ONE_PICTURE_ANIMATIONS else ".png" if image else ".mp4")


def _animation_out(input_spec: str, target: str) -> bool:
    """Whether `target` is an image type that holds the pictures of an animated input (GIF, APNG, animated WebP)."""
    return Path(target).suffix.lower() in ANIMATION_FORMATS and _picture_suffix(input_spec, False) != ".mp4"


def picture_metadata(source: Source, input_spec: str) -> PhotoMetadata | None:
    """What an image output keeps of the input: a photo's colour profile and EXIF, an animation's times played
    (which FFmpeg, reading a GIF or an APNG, does not tell)."""
    metadata = getattr(source, "metadata", None)
    return metadata if metadata is not None else animation_metadata(Path(input_spec))


def refuse_writing_over_input(input_spec: str, flag: str, target: str) -> None:
    if same_file(input_spec, target):
        raise UserError(f"{flag} {target} is the input file: writing it would destroy the input; choose another name")


def plays_in_real_time(output: str, source: Source) -> bool:
    """A video file watched in a window, or fed to a virtual camera, plays at its own pace, as a player
    or a camera would show it (late frames dropped), an animated WebP (read by Pillow) too; written to a file, every
    frame is processed. A network stream read as a file (served over HTTP, a VOD playlist) plays so too."""
    played = isinstance(source, (VideoFileSource, AnimationSource)) or (isinstance(source, NetworkSource)
                                                                        and not source.live)
    return output_kind(output) in ("window", "vcam") and played


def _file_kind(target: str) -> str | None:
    """output_kind, or None for a name of no kind (its refusal would offer window, vcam and null)."""
    try:
        return output_kind(target)
    except UserError:
        return None


def written_pix_fmt(output: str, asked: str, input_codec: str | None) -> str:
    """The pictures the output keeps: a video file's codec's (`--codec`, whose `auto` the input's codec may decide),
    else full colour (a window, a photo; the pipeline's 8 bits are said apart)."""
    if output_kind(output) != "video":
        return "yuv444p"
    return codec_of(output_codec(asked, Path(output).suffix.lower(), input_codec)).pix_fmt


def check_outputs(config: PipelineConfig, input_spec: str, output: str, source: Source, preview: bool = False) -> None:
    """What can only be checked once the input is open, before anything heavy loads: no output
    overwrites the input or the other output, every output file can be written and a preview window
    can open, an image output gets one frame, and the settings given in frame pixels fit this frame."""
    save_depth = config.output.save_depth
    kind, depth_kind = output_kind(output), _file_kind(save_depth) if save_depth else None
    if save_depth and depth_kind not in ("video", "image"):
        raise UserError(f"--save-depth {save_depth}: the depth goes into a video or image file; give one "
                        f"(e.g. {Path(save_depth).with_suffix('.mp4').name})")
    if depth_kind == "image":
        if source.frame_count != 1 and not _animation_out(input_spec, save_depth):
            raise UserError(f"--save-depth {save_depth} is an image but the input has many frames; give a video "
                            f"file (e.g. {Path(save_depth).with_suffix('.mp4').name})")
        check_image_size("--save-depth", save_depth, source.width, source.height)
    files = {flag: target for flag, target in (("-o", output), ("--save-depth", save_depth))
             if target and output_kind(target) in ("video", "image")}
    if isinstance(source, (VideoFileSource, ImageSource, AnimationSource)):
        for flag, target in files.items():
            refuse_writing_over_input(input_spec, flag, target)
    if len(files) == 2 and same_file(*files.values()):
        raise UserError(f"-o and --save-depth both name {output}; give the depth video its own name")
    for flag, target in files.items():  # the sinks check again when they open; this is before the model loads
        # and creates no folder: a run that fails before the sinks open (a model that refuses its size) leaves none
        ensure_writable(Path(target), "depth video" if flag == "--save-depth" else "output", create_folder=False)
        if output_kind(target) == "video":
            wide = 3 if flag == "-o" and config.output.side_by_side else 1
            grey16 = flag == "--save-depth" and config.output.depth_format == "grey16"  # FFV1, whatever --codec says
            check_video_size(f"{flag} {target}", Path(target).suffix.lower(), source.width * wide, source.height,
                             "ffv1" if grey16 else config.output.codec)
    if kind == "window" or preview:
        check_display(WINDOW_FIX if kind == "window" else PREVIEW_FIX)
    if kind == "vcam":
        check_virtual_camera()  # the package; the device itself answers only when the sink opens
    if kind == "image":
        if source.frame_count != 1 and not _animation_out(input_spec, output):
            if _picture_suffix(input_spec, False) != ".mp4":
                raise UserError(f"-o {output} is a still image but the input is an animation; give .gif, .png or "
                                f".webp for an animation, or a video file (e.g. {Path(output).stem}.mp4)")
            raise UserError(f"-o {output} is an image but the input is a video or a camera; give a video file "
                            f"(e.g. {Path(output).with_suffix('.mp4').name}), window or null")
        check_image_size("-o", output, source.width * (3 if config.output.side_by_side else 1), source.height)
    render = config.render
    blur = blur_px(render, source.width, source.height)
    if blur > MAX_BLUR_LIMIT:
        largest = math.floor(MAX_BLUR_LIMIT * render.reference_height / blur_side(source.width, source.height))
        raise UserError(f"render.blur {render.blur:g} (at {render.reference_height} lines) is {blur:.0f} px at this "
                        f"{source.width}x{source.height} input, over the {MAX_BLUR_LIMIT:.0f} px limit; use --blur "
                        f"{largest} or less")
    if render.focus_point is not None:
        x, y = render.focus_point
        if x >= source.width or y >= source.height:
            raise UserError(f"the focus point {x},{y} (--focus-point, render.focus_point) is outside the "
                            f"{source.width}x{source.height} frame; give X < {source.width} and Y < {source.height}")


# The estimator of the last run, kept for the next one in this process: a batch of inputs (`run clips/*.mp4`), a
# photo refocused in a window then rendered, and the benchmark's runs each built their own ONNX Runtime session
# of the same file (FCRN: 1.3-2 s and a 254 MB graph each on the CPU; more on CUDA). One only: a memory bound.
_last_estimator: tuple[tuple, DepthEstimator] | None = None


def load_estimator(config: PipelineConfig, progress: bool = True) -> DepthEstimator:
    """The network for `config`: the last run's where it is the same file, settings and device (a fresh
    session otherwise)."""
    global _last_estimator
    try:
        spec, path = resolve_model(config.model, progress=progress)
        if config.model_output != "auto":
            spec = dataclasses.replace(spec, output_kind=config.model_output)
        if config.model_input != "auto":
            spec = dataclasses.replace(spec, input_norm=config.model_input)
        if config.model_size is not None:
            spec = dataclasses.replace(spec, input_size=parse_model_size(config.model_size))
        key = _estimator_key(spec, path, config)
        if _last_estimator is not None and _last_estimator[0] == key:
            estimator = _last_estimator[1]
            estimator.watch = OutputWatch(estimator.spec, estimator.watch.notify)  # watched afresh each run (a note's
            # text is said once a process: models.registry.notify, a batch of inputs hears an identical one once)
            return estimator
        _last_estimator = None  # the old session is freed before the new one loads, not beside it
        estimator = DepthEstimator(spec, path, config.device, threads=config.inference.threads,
                                   tensorrt=config.inference.tensorrt)
        _last_estimator = (key, estimator)
        return estimator
    except ModelError as exc:
        raise UserError(str(exc)) from None


def _estimator_key(spec: ModelSpec, path: Path, config: PipelineConfig) -> tuple:
    """What a session depends on: the file as it is on disk now (a model converted again is loaded again), how
    it is read, and the providers and threads asked for (`auto` asks for CUDA only where a GPU answers now, so on
    a CPU it shares `cpu`'s session). `cuda` insists on its provider, which an `auto` session may lack. The
    class too: one put in its place (a test's) is not handed the real one's session."""
    inference = config.inference
    stat = path.stat()
    return (DepthEstimator, spec, str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns,
            tuple(requested_providers(config.device, inference.tensorrt)), config.device == "cuda", inference.threads)


def forget_estimator() -> None:
    """Free the session kept for the next run (its memory, on the GPU too)."""
    global _last_estimator
    _last_estimator = None


def kernel_backend(device: str) -> str:
    try:
        return resolve_backend(device)
    except BackendUnavailable as exc:
        raise UserError(exc.cli_message) from None  # --device cpu, not the Python API's backend='cpu'


ASYNC_ON_A_FILE = "async depth is for live sources; this file's frames each get their own depth"


def build_stages(config: PipelineConfig, estimator: DepthEstimator, focus: FocusController, backend: str,
                 stop: threading.Event, file_run: bool = False, still: bool = False) -> list[Stage]:
    """`file_run`: a file read at its own speed into a file (not paced for a window or a virtual camera, not the
    benchmark's own sink). Async depth is then sync: on a file the network's newest depth was up to 0.67 s old and
    differed from run to run (1 of 90 frames got its own), where every frame can wait for its own. `still`: a photo
    (once, or repeated for a window), whose depth has no flicker for normalise.pixel_smoothing to smooth."""
    from kernels.cpu_threads import set_opencv_threads  # imports Numba: `import stream.app` does not
    from models.registry import notify  # once a process: a batch of inputs says it once

    normaliser = DisparityNormaliser(config.normalise.low_percentile, config.normalise.high_percentile,
                                     config.normalise.smoothing)
    smoothing = config.normalise.pixel_smoothing
    # each still pixel's refined depth smoothed over time, after the refinement (whose own flicker at depth edges the
    # network's map alone cannot show)
    temporal = RefinedFilter(smoothing, config.normalise.motion_threshold) if smoothing < 1 and not still else None
    depth: Stage
    if config.inference.mode == "async" and file_run:
        notify(ASYNC_ON_A_FILE)
    if config.inference.mode == "async" and not file_run:
        depth = AsyncDepthStage(estimator, normaliser, stop)
    else:
        depth = DepthStage(estimator, normaliser, config.inference.max_batch, config.inference.max_wait_ms,
                           on_device=backend == "cuda")
    # OpenCV has one thread pool for the process: as many threads as the CPU stages each run on (kernels.cpu_threads)
    set_opencv_threads((config.refine.threads, config.render.threads) if backend == "cpu" else ())
    # a live run's person mask takes the faces its focus finds beside the render, not looking again on the refine
    # thread (a stall of 35-170 ms a look on a CPU); a file run's looks on each frame itself, so that it repeats
    focus_faces = FocusFaces() if config.refine.person_mask != "off" and focus.faces_in_background else None
    return [depth, RefineStage(config.refine, backend, temporal, focus_faces),
            RenderStage(config.render, focus, backend, file_run=file_run, focus_faces=focus_faces)]


# The warm-ups (backend, parts) this process has done: another input's of the same parts is done at once (warm_up
# keeps them), so that a slow one then is an HDR input's tone mapping alone
WARMED_HERE: set[tuple[str, tuple[tuple[str, bool], ...]]] = set()


def prepare_kernels(config: PipelineConfig, backend: str, notify: Callable[[str], None] | None = None,
                    blur_may_change: bool = False, converter: ColourConverter | None = None) -> None:
    """Compile the kernels this configuration uses before the first frame. The first run on a machine
    compiles for tens of seconds; `notify` hears about it only when it takes that long.
    `blur_may_change`: the preview window's keys can turn a blur of 0 on, so the renderer is needed.
    `converter`: an HDR (or BT.2020) input's (colour_converter), whose CPU kernel is prepared too, whatever the
    backend: it compiled when the input opened, for 3-9 s before this notice, which did not cover it."""
    timer = None
    started = time.perf_counter()
    parts = {"exact_filter": config.refine.mode == "full", "live_filter": config.refine.mode == "live",
             "depth_of_field": config.render.blur > 0 or blur_may_change}
    key = (backend, tuple(sorted(parts.items())))
    tone_mapping_only = key in WARMED_HERE and converter is not None  # a batch's HDR input after others
    if notify is not None:
        notice = tone_mapping_notice() if tone_mapping_only else \
            kernels_notice(backend, parts, colour=converter is not None)
        timer = threading.Timer(SLOW_NOTICE_S, notify, args=(notice,))
        timer.daemon = True
        timer.start()
    try:
        with noted_stop_signals():  # Ctrl-C mid-compile surfaced as a RuntimeError from llvmlite (exit 1)
            warm_up(backend, **parts)
            WARMED_HERE.add(key)
            if converter is not None:
                converter.prepare()
    finally:
        if timer is not None:
            timer.cancel()
    seconds = time.perf_counter() - started
    if notify is not None and seconds > SLOW_NOTICE_S:
        notify(f"tone mapping ready in {seconds:.0f} s" if tone_mapping_only else kernels_ready_line(backend, seconds))


def tone_mapping_notice() -> str:
    """What a slow warm-up is doing where the run's other kernels were ready (a batch's first HDR input): it said
    "preparing the CPU kernels: a first run on this machine compiles them", of kernels loaded for input 1."""
    if cpu_cached(CONVERT_KERNELS):
        return "preparing the HDR tone mapping: loading its CPU kernel from the cache (slow: the machine is busy)"
    return ("preparing the HDR tone mapping: its CPU kernel compiles on its first use on this machine (or after an "
            "update), for some seconds; later runs load it from the cache")


def kernels_notice(backend: str, parts: dict[str, bool] | None = None, colour: bool = False) -> str:
    """What a warm-up still going after SLOW_NOTICE_S is doing: on the CPU, loading the kernels from Numba's cache
    where it holds them (a busy machine), else compiling them. Asked before it starts, as it fills the cache.
    `parts`: the warm-up's (warm_up's keywords), whose kernels alone are asked about (None: every part): where only
    --blur 0 had run, the depth of field's were never cached, and a slow warm-up loading the filter alone was said
    to compile. `colour`: an HDR input's tone mapping is prepared too, on the CPU whatever the backend: a CUDA run
    names it where Numba's cache lacks it (its first HDR run compiles it, seconds after the CUDA kernels)."""
    kernels = run_kernels(parts, colour, backend)
    if backend == "cpu" and cpu_cached(kernels):
        return "preparing the CPU kernels: loading them from the cache (slow: the machine is busy)"
    tone_mapping = backend != "cpu" and bool(kernels) and cpu_cached(kernels) is False
    what = f"the {backend.upper()} kernels" + (" and the CPU's tone mapping" if tone_mapping else "")
    return (f"preparing {what}: a first run on this machine (or after an update) compiles them, up to a minute; "
            f"later runs load them from the cache")


def run_kernels(parts: dict[str, bool] | None = None, colour: bool = False, backend: str = "cpu") -> tuple[str, ...]:
    """The CPU kernels a warm-up of `parts` (warm_up's keywords; None: every part) on `backend` calls from Python:
    CPU_ENTRIES' on the CPU (none on CUDA, whose kernels are its own), and with `colour` (an HDR input) the tone
    mapping's, on either."""
    chosen = [part for part, on in (parts or dict.fromkeys(CPU_ENTRIES, True)).items() if on and backend == "cpu"]
    names = [name for part in chosen for name in CPU_ENTRIES[part]] + list(CONVERT_KERNELS if colour else ())
    return tuple(dict.fromkeys(names))


def colour_converter(source: Source) -> ColourConverter | None:
    """The converter of an HDR (or BT.2020) video file's or network stream's pictures, whose kernel the warm-up
    prepares; None for any other input."""
    video = source.inner if isinstance(source, PacedSource) else source
    return getattr(getattr(video, "treatment", None), "converter", None)


def video_writers(sink: Sink) -> list[VideoWriter]:
    """The video writers of a run's outputs: -o's and --save-depth's (an animation's writer is none)."""
    return [one.writer for one in sink_parts(sink) if isinstance(getattr(one, "writer", None), VideoWriter)]


def follow_part(sink: Sink, source: VideoFileSource) -> None:
    """The video outputs follow the part of the input taken: dated when it was recorded (--start), with the sound
    and subtitles of the clip (of clips joined as they are) its first picture comes from, asked when it comes."""
    for writer in video_writers(sink):
        writer.first_clip = lambda: source.first_clip
        if source.part_start:
            writer.start_part(source.part_start)


def check_audio_tracks(source: Source, chosen: list[int] | None) -> None:
    """--audio-track's numbers the input lacks, refused before the model loads (the writer checks again): a photo,
    an animation, a camera or a stream has none (a photo given one ran without a word); a pipe's sound is left out
    anyway, said by the writer."""
    if not chosen:
        return
    if not isinstance(source, VideoFileSource):
        where = getattr(source, "path", None)  # a camera's or a stream's spec may hold a password: not repeated
        check_audio_track(where.name if isinstance(where, Path) else "the input", 0, chosen[0])
    elif opens_again(source.path):  # a file served over HTTP too
        for number in chosen:
            check_audio_track(source.path.name, len(audio_streams(source.container)), number)


def kernels_ready_line(backend: str, seconds: float) -> str:
    """What the slow warm-up was: a compilation (cached now) or, on a busy machine, loading from the cache."""
    if backend != "cpu":
        return f"kernels ready in {seconds:.0f} s"
    if cpu_compiled():
        return f"kernels compiled in {seconds:.0f} s; later runs load them from the cache"
    return f"kernels loaded from the cache in {seconds:.0f} s (slower than the usual second: the machine is busy)"


def _counts_frames(source: Source) -> bool:
    """Whether an editor's timecode (HH:MM:SS:FF) can be counted on this input: only a video file has a frame rate
    to count at. A camera, a stream and an animation have none, an opaque GIF or APNG too: FFmpeg reads those as
    videos, but each picture is held its own time (at the rate FFmpeg guesses, frame N was not the N-th picture)."""
    return isinstance(source, VideoFileSource) and source.container.format.name not in ANIMATION_DEMUXERS


def build(config: PipelineConfig, input_spec: str, output: str | None, *, sink: Sink | None = None,
          recorder: LatencyRecorder | None = None, progress: bool | None = None,
          notify: Callable[[str], None] | None = None,
          wrap_source: Callable[[Source], Source] | None = None,
          clip: tuple[float | Timecode | None, float | Timecode | None] = (None, None),
          input_rate: Fraction | None = None) -> Built:
    """Open the input first (a bad input fails before anything heavy loads), then the model, the
    kernels and the sink. `notify` receives progress messages for the user (slow first compilation);
    `wrap_source` changes how the input is delivered (the benchmark paces a file like a camera); `clip`
    (start, duration in seconds, or a video file's timecodes) takes a part of a video file or an animation;
    `input_rate` (--input-rate) is the rate of an input whose pictures have no times (a stream of pictures)."""
    source = open_source(input_spec, input_rate)
    if config.deinterlace == "off" and isinstance(source, (VideoFileSource, NetworkSource)):
        source.keep_fields()
    if clip != (None, None):
        timecode = next(((flag, value) for flag, value in zip(("--start", "--duration"), clip)
                         if isinstance(value, Timecode)), None)
        if timecode is not None and not _counts_frames(source):
            source.close()
            raise UserError(timecode_refusal(*timecode, redact(input_spec)))
        if isinstance(source, NetworkSource) and not source.live:  # a file its server sends whole only
            source.close()
            raise UserError(f"--start and --duration take a part of a file that its server sends in parts (HTTP "
                            f"Range requests); {redact(input_spec)}'s server sends it whole only: download it and "
                            f"run the file")
        if not isinstance(source, (VideoFileSource, AnimationSource)):  # an animation: GIF, APNG, WebP
            source.close()
            raise UserError(part_refusal(redact(input_spec)))
        try:
            source.set_range(*clip)
        except UserError:
            source.close()
            raise
    if wrap_source is not None:
        source = wrap_source(source)
    stages: list[Stage] = []
    focus: FocusController | None = None
    try:
        output = output or ("null" if sink is not None else default_output(input_spec, source))
        preview = sink is None and config.output.preview  # the benchmark's own sink shows nothing
        if sink is None and plays_in_real_time(output, source):
            source = PacedSource(source)
        check_outputs(config, input_spec, output if sink is None else "null", source, preview)
        if sink is None:
            check_audio_tracks(source.inner if isinstance(source, PacedSource) else source,
                               config.output.kept_audio_tracks())
        if isinstance(source, ImageSource):
            source.load()  # decoded once its size (from its headers) passed the checks, before the model loads
        point, full_side, shown_scale = config.render.focus_point, blur_side(source.width, source.height), 1.0
        if isinstance(source, ImageSource) and (output_kind(output) == "window" or preview):
            scale = shown_scale = source.keep_showing()  # a photo in a window: refocused until q
            if point is not None:  # given in the photo's pixels
                point = (min(round(point[0] * scale), source.width - 1),
                         min(round(point[1] * scale), source.height - 1))
        backend = kernel_backend(config.device)
        estimator = load_estimator(config, progress=config.output.progress)
        render = config.render
        # Live: the face detector runs beside the render, which would otherwise stall on it every
        # face_interval-th frame; a file run keeps it inline, so every run of a file is the same.
        focus = FocusController(render.focus, point, render.focus_smoothing, render.face_interval,
                                faces_in_background=source.live, track_point=render.track_point)
        stop = threading.Event()
        # a file read at its own speed into a file (not paced for a window or a virtual camera, not a caller's own
        # sink: the benchmark measures the preset as it is)
        stages = build_stages(config, estimator, focus, backend, stop, file_run=sink is None and not source.live,
                              still=isinstance(source, ImageSource))
        in_window = output_kind(output) == "window" or preview
        prepare_kernels(config, backend, notify, blur_may_change=sink is None and in_window,
                        converter=colour_converter(source))
        # the file itself, also where it is paced for a window: a --save-depth video beside it keeps its tags and part
        video = source.inner if isinstance(source, PacedSource) else source
        if sink is None:  # last: a file is created only once everything else is ready
            # a ProRes input may keep its codec (output.codec auto)
            input_codec = video.stream.codec_context.name if isinstance(video, VideoFileSource) else None
            sink = make_sink(output, width=source.width, height=source.height,
                             fps=source.fps, audio_from=source.audio_path, side_by_side=config.output.side_by_side,
                             save_depth=config.output.save_depth, preview=preview,
                             audio_ends_with_pictures=getattr(source, "audio_ends_with_pictures", False),
                             photo_metadata=picture_metadata(source, input_spec),
                             # creation time, location, title: as the open video read them (not opened again)
                             tags_from=video.tags if isinstance(video, VideoFileSource) else None,
                             subtitles_from=source.subtitle_path, chapters=video.chapters,
                             part_end=getattr(video, "part_end", None), codec=config.output.codec,
                             input_codec=input_codec, audio_tracks=config.output.kept_audio_tracks(),
                             depth_format=config.output.depth_format,
                             controls=LiveControls(focus, config.render, full_side,  # its blur limit
                                                   shown_scale=shown_scale))
            if isinstance(video, VideoFileSource):  # the run line says what the output's codec loses (ProRes: bits)
                # `--codec prores` is offered only where auto writes another codec: auto already writes a QuickTime
                # Animation's RGB as ProRes 422, so naming it would keep nothing more
                suffix = Path(output).suffix.lower()
                editing = config.output.codec == "auto" and suffix in codec_of("prores").suffixes \
                    and output_codec("auto", suffix, input_codec) != "prores"
                video.written_as(written_pix_fmt(output, config.output.codec, input_codec),
                                 transparent=not config.output.side_by_side,
                                 keeping="--codec prores keeps it, in far larger files" if editing else None)
    except BaseException:
        for stage in stages:  # the async network's worker thread ends with its stage
            stage.close()
        if focus is not None:  # and the face detector's (also closed by its stage, if it was made)
            focus.close()
        source.close()
        raise
    if isinstance(video, VideoFileSource):
        follow_part(sink, video)
    show_progress = config.output.progress if progress is None else progress
    queue_size = config.queues.live_size if source.live else config.queues.size
    pipeline = Pipeline(source, stages, sink, queue_size=queue_size, recorder=recorder,
                        progress=show_progress and not source.live, stop=stop)
    return Built(pipeline, source, estimator, backend, focus, output)
