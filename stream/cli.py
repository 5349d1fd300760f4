"""The `depthcam` command: run, demo, bench and models."""
from __future__ import annotations

import argparse
import contextlib
import copy
import difflib
import gc
import logging
import os
import re
import signal
import sys
import threading
import time
import traceback
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from stream.sources import Timecode


def print_error(error: BaseException) -> None:
    """One `depthcam: error:` line per problem: a config file's mistakes come together, one a line."""
    for line in str(error).splitlines() or [""]:
        print(f"depthcam: error: {line}", file=sys.stderr)


def _interrupted_while_loading(signum: int, frame: Any) -> NoReturn:
    """Ctrl-C while the modules below load (NumPy, OpenCV, Numba: 0.2-0.5 s, before main's own handling): the
    line every interruption gets and exit 130, not a traceback from inside NumPy's import. Nothing is open yet,
    so the process ends at once (an exception raised here can be turned into another by the code it lands in)."""
    print("depthcam: interrupted", file=sys.stderr, flush=True)
    os._exit(130)


def _quiet_sigint_while_loading() -> Any:
    """The handler to put back once loaded; None where SIGINT is left as it is (ignored, as a script's background
    job has it; set by a host program; or not the main thread, where no handler can be set)."""
    import threading

    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return None
    return signal.signal(signal.SIGINT, _interrupted_while_loading)


_sigint_before_loading = _quiet_sigint_while_loading()
try:
    from stream.config import MAX_FOCUS_BAND, OutputConfig, PipelineConfig, closest_choice, load_config, preset_names
    from stream.console import TolerantStream, fit_encoding, notify
    from stream.controls import KEYS_HELP
    from stream.errors import PipelineError, UserError
    from stream.interrupts import STOP_SIGNALS, quiet_unraisable_interrupts
    from stream.options import GivenOnce, add_model_options, model_overrides
    from stream.animations import is_still_image
    from stream.workers import live_workers
finally:  # loaded (or failed to): main's own handling takes over
    if _sigint_before_loading is not None:
        signal.signal(signal.SIGINT, _sigint_before_loading)

DEMO_DIR = Path("out")
LIVE_PRESET = "live-cpu"
NOT_FILES = ("null", "window", "vcam")  # outputs that are no file (nor a folder, for several inputs)


# How alike (difflib's ratio) an unknown option and a real one must be spelt to suggest it: at 0.6, the two dashes
# and a letter or two in common were enough (`--bogus`: "did you mean --focus?").
OPTION_CUTOFF = 0.75


class Parser(argparse.ArgumentParser):
    """argparse with the project's error format: one line naming the problem, the likely fix and where help is,
    exit 2 (argparse's own prints the whole usage block first)."""

    argv: list[str] | None = None  # the command line being parsed (main sets it): for the hints below

    def error(self, message: str) -> NoReturn:
        argv = sys.argv[1:] if self.argv is None else self.argv
        if message == "the following arguments are required: COMMAND":  # `depthcam` alone: a new user's first try
            message = f"no command given; {FIRST_COMMANDS}"
        # a file whose name starts with '-' reads as an option: say how to give it
        dashed = next((arg for arg in argv if arg.startswith("-") and len(arg) > 1 and os.path.isfile(arg)), None)
        hint = f"; {dashed} is a file: write ./{dashed}" if dashed else ""
        hint = hint or self._option_hint(message, argv) or self._input_hint(message, argv) or _choice_hint(message)
        self.exit(2, f"depthcam: error: {message}{hint} (see '{self.prog} --help')\n")

    def _input_hint(self, message: str, argv: list[str]) -> str:
        """`depthcam clip.mp4`, `depthcam 0`: an input given where the command goes (argparse offered the commands,
        or `demo` for demo.mp4). Not where a command follows: the word is then an option's value (--blur 3 run)."""
        found = re.search(r"^argument COMMAND: invalid choice: '(.*)' \(", message)
        if self.prog != "depthcam" or found is None or any(arg in _subcommands(self) for arg in argv) \
                or not _looks_like_input(found.group(1)):
            return ""
        return f"; {found.group(1)} is no command: to process it, depthcam run {found.group(1)}"

    def _option_hint(self, message: str, argv: list[str]) -> str:
        """An unknown option: the one it most likely meant, or, for a command's option given before the command
        (`depthcam --blur 3 run x.mp4`), where it goes."""
        commands = _subcommands(self)
        command = next((arg for arg in argv if arg in commands), None)
        if self.prog == "depthcam" and command is not None:  # only the top parser has run, bench, ... as choices
            before = argv[:argv.index(command)]
            # an option the top parser has too (--debug) may stand there
            misplaced = next((arg for arg in before if arg.split("=")[0] in _option_names(commands[command])
                              and arg.split("=")[0] not in _option_names(self)), None)
            if misplaced is not None:
                return f"; {misplaced} is an option of the command: put it after it " \
                       f"(depthcam {command} ... {misplaced})"
            # `depthcam --blurr 3 run x.mp4` was "invalid choice: '3'", with no word of --blurr
            misspelt = next(((arg, meant) for arg in before if arg.startswith("-") and len(arg) > 1
                             and arg.split("=")[0] not in _option_names(self)
                             and (meant := _meant_option(arg.split("=")[0], _option_names(commands[command])))),
                            None)
            if misspelt is not None:
                return f"; {misspelt[0]} is no option: did you mean {misspelt[1]}? It is an option of the command: " \
                       f"put it after it (depthcam {command} ... {misspelt[1]})"
            # `depthcam --foo 3 run x.mp4`: like no option, it was "invalid choice: '3'" all the same
            unknown = next((arg.split("=")[0] for arg in before if _unknown_option(arg, _option_names(self))), None)
            if unknown is not None:
                return f"; {unknown} is no option of depthcam: a command's options go after it " \
                       f"(depthcam {command} ... --OPTION; 'depthcam {command} --help' lists them)"
        if not message.startswith("unrecognized arguments:"):
            return ""
        options = _option_names(self)
        for unknown in message.split(":", 1)[1].split():
            name = unknown.split("=")[0]
            if name in options and name not in _option_names(self._top()):  # `depthcam --side-by-side run x`
                return f"; {name} is an option of the command: put it after it ({self.prog} ... {name})"
            meant = _meant_option(name, options) if unknown.startswith("-") else None
            if meant:
                return f"; did you mean {meant}{_alias_value(unknown, argv, options)}?"
        return ""

    def _top(self) -> argparse.ArgumentParser:
        """The top parser, whose own options (--debug, --version) may come before the command."""
        return build_parser() if self.prog != "depthcam" else self


FIRST_COMMANDS = "depthcam run VIDEO (a photo, camera:0, a stream's URL), or depthcam demo to try it on a sample clip"


def _looks_like_input(word: str) -> bool:
    """Whether a word given as the command names an input: a file or folder, a camera, a URL, the synthetic scene,
    or a file's name (no command has a dot or a slash)."""
    if word.isdigit() or word.startswith(("camera:", "synthetic:")) or "://" in word:
        return True
    try:
        return os.path.lexists(word) or bool(Path(word).suffix) or "/" in word or os.sep in word
    except (OSError, ValueError):  # a name too long, a NUL: no command either
        return True


def _meant_option(name: str, options: set[str]) -> str | None:
    """The option a mistyped one most likely meant: one guessed under another name (--preset: --config), one spelt
    alike (--blurr, --foucs, --sidebyside), else the shortest one whose name holds each of its words (--size:
    --model-size); None for one like none (--bogus)."""
    from stream.hints import OPTION_ALIASES

    if OPTION_ALIASES.get(name) in options:
        return OPTION_ALIASES[name]
    close = difflib.get_close_matches(name, sorted(options), n=1, cutoff=OPTION_CUTOFF)
    if close:
        return close[0]
    words = set(name.lstrip("-").split("-"))
    if not all(len(word) >= 3 for word in words):  # `-x`, `--no`: too short to stand for one option
        return None
    holding = [option for option in sorted(options) if words <= set(option.lstrip("-").split("-"))]
    return min(holding, key=len, default=None)


def _alias_value(unknown: str, argv: list[str], options: set[str]) -> str:
    """The value given to an option guessed under another name, for the hint to repeat (`--preset live-cpu`: "did
    you mean --config live-cpu?"); "" for a misspelt one, or none given."""
    from stream.hints import OPTION_ALIASES

    name, equals, value = unknown.partition("=")
    if name not in OPTION_ALIASES:
        return ""
    if not equals:
        after = argv[argv.index(unknown) + 1:argv.index(unknown) + 2] if unknown in argv else []
        value = after[0] if after and not after[0].startswith("-") else ""
    return f" {value}" if value else ""


def _unknown_option(arg: str, top_options: set[str]) -> bool:
    """Whether a word before the command is an option the top parser lacks (a negative number is a value)."""
    if not arg.startswith("-") or len(arg) < 2 or arg == "--" or arg.split("=")[0] in top_options:
        return False
    try:
        float(arg)
    except ValueError:
        return True
    return False


def _option_names(parser: argparse.ArgumentParser) -> set[str]:
    return {name for action in parser._actions for name in action.option_strings}


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next((dict(action.choices) for action in parser._actions
                 if isinstance(action, argparse._SubParsersAction)), {})


def _choice_hint(message: str) -> str:
    """`--refine ful`, `depthcam rn`: the choice that was most likely meant."""
    found = re.search(r"invalid choice: '(.*)' \(choose from (.*)\)$", message)
    if found is None:
        return ""
    meant = closest_choice(found.group(1), [choice.strip(" '") for choice in found.group(2).split(",")])
    return f"; did you mean {meant}?" if meant else ""


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE|PRESET", action=GivenOnce,
                        help=f"a YAML file or a preset ({', '.join(preset_names())}); flags override it "
                             f"(without one, a camera or network stream gets {LIVE_PRESET}'s settings)")
    add_model_options(parser, device_help="where everything runs (default: the config's; auto, CUDA where usable, "
                                          "without one)")
    preset = PipelineConfig()  # the default preset's values: a run without --config gets them (tested)
    parser.add_argument("--focus", metavar="auto|VALUE",
                        help="auto (the default: a face, else the nearest subject near the middle, not the floor) "
                             "or a disparity in [0, 1] (1: nearest)")
    parser.add_argument("--focus-point", metavar="X,Y",
                        help="focus on what is at this pixel of the input (X right, Y down from the top left corner) "
                             "in the first frame, followed as it moves")
    parser.add_argument("--blur", type=float, metavar="PX",
                        help=f"largest blur radius in px at {preset.render.reference_height} lines (the frame's "
                             f"shorter side); scaled with the frame's shorter side (default: the config's; "
                             f"{preset.render.blur:g} in the default preset)")
    parser.add_argument("--highlight-boost", type=float, metavar="X",
                        help=f"bright highlights bloom into bokeh discs (0 off, 1-4 typical, at most 16; default: "
                             f"the config's, {preset.render.highlight_boost:g} in the default preset)")
    parser.add_argument("--focus-band", type=float, metavar="D",
                        help=f"disparities within D of the focus stay sharp (the whole subject, not only its "
                             f"nearest part); 0 is a thin lens, at most {MAX_FOCUS_BAND:g} (default: the config's, "
                             f"{preset.render.focus_band:g} in the default preset)")
    parser.add_argument("--refine", choices=("full", "live", "off"),
                        help="live: the filter at refine.work_width, then upsampling guided by the frame "
                             "(every preset's); full: the exact filter at frame size; off: bilinear (the person mask, where on, "
                             "still applies: --person-mask off for the bare map)")
    parser.add_argument("--person-mask", choices=("off", "on", "auto"),
                        help=f"on: a person segmentation keeps a person's hair and body at the person's depth "
                             f"(sharp), and a missing model is an error; auto: the same where the model is cached "
                             f"(a first run fetches it with the depth model) and on the CPU, else one warning line; off: the depth map alone (default: the "
                             f"config's, {preset.refine.person_mask} in the default preset)")
    parser.add_argument("--max-batch", type=int, metavar="N",
                        help=f"frames per network call (default: the config's; {preset.inference.max_batch} in the "
                             f"default preset)")
    parser.add_argument("--async-depth", action=argparse.BooleanOptionalAction, default=None,
                        help=f"run the network beside the display on the newest frame (live sources and videos "
                             f"shown in a window; {LIVE_PRESET}'s); a file written to a file, and --no-async-depth, "
                             f"give every frame its own depth (the default preset's)")
    parser.add_argument("--save-depth", metavar="FILE",
                        help="also write the refined depth, coloured (bright: near), as a video (a picture for a "
                             "photo); a folder gets NAME_depth.mp4 (.png)")
    parser.add_argument("--depth-format", choices=OutputConfig.DEPTH_FORMATS,
                        help="--save-depth's pictures: colour (the default: a colour map to look at) or grey16 (the "
                             "relative disparity as 16-bit data, round(d * 65535): 0 the far end, 65535 the near end "
                             "of the depth range (normalise: percentiles, smoothed over frames), not metres; .png or "
                             ".tif, a video .mkv, lossless FFV1)")
    parser.add_argument("--side-by-side", action=argparse.BooleanOptionalAction, default=None,
                        help="write input | output | depth (default: off)")
    parser.add_argument("--codec", type=OutputConfig.codec_named, choices=OutputConfig.CODECS,
                        help="the video's codec: auto (the default: the container's own, H.264 in .mp4, .mov and "
                             ".mkv, VP9 in .webm, MPEG-4 in .avi; a ProRes, DNxHD/HR, QuickTime Animation or PNG "
                             "input written to .mov or .mkv stays ProRes, a lossless one (FFV1, HuffYUV, Ut Video) "
                             "written to .mkv or .avi stays FFV1), h264, hevc, prores (422 HQ 10-bit, .mov or .mkv), "
                             "ffv1 (lossless, .mkv or .avi), vp9, mpeg4")
    parser.add_argument("--audio-track", type=_audio_tracks, metavar="N[,M...]",
                        help="the input's audio streams the video keeps, by their numbers from 1 as the run's lines "
                             "count them, in this order, the first the default track (2,1); none: no sound; all "
                             "(the default)")
    parser.add_argument("--start", type=_time, metavar="TIME",
                        help="a video file from this time on (seconds, or [HH:]MM:SS; or an editor's timecode "
                             "HH:MM:SS:FF, HH:MM:SS;FF drop-frame, counted from the file's own first timecode)")
    parser.add_argument("--duration", type=_time, metavar="TIME",
                        help="only this long a part of a video file (seconds, or [HH:]MM:SS; or HH:MM:SS:FF, frames "
                             "at its rate; its sound cut with it)")
    _add_input_rate(parser)
    parser.add_argument("--preview", action=argparse.BooleanOptionalAction, default=None,
                        help="also show the output in a window while writing it (its keys and clicks work "
                             "as in -o window; q stops the run, keeping what was written)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help=f"a progress bar (default: on; the {LIVE_PRESET} preset has none; --progress brings it "
                             f"back)")
    _add_debug_flag(parser)


def _time(text: str) -> float | Timecode:
    """Seconds, or an editor's timecode (HH:MM:SS:FF), whose frames count at the input's rate from its own first
    timecode: known only once the input is open (VideoFileSource.set_range)."""
    from stream.sources import parse_time, parse_timecode

    try:
        return parse_timecode(text) or parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


INPUT_RATE_MAX = 1000  # --input-rate's highest: above it, a rate is rather a mistyped one
FFMPEG_RATE_DENOMINATOR = 1001000  # the finest rate FFmpeg's `framerate` option reads (av_parse_video_rate)


def _add_input_rate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input-rate", type=_input_rate, metavar="FPS",
                        help="the frame rate of an input whose pictures carry none: a stream of JPEG or PNG pictures "
                             "on standard input or a named pipe (ffmpeg -f mjpeg -, libcamera-vid --codec mjpeg -o -), "
                             "an .mjpeg file, a raw .h264 without timing (30, 12.5, 30000/1001; default: FFmpeg's 25)")


def _input_rate(text: str) -> Fraction:
    """--input-rate's frames a second: a number (30, 12.5) or a fraction (30000/1001), above 0 and finite."""
    try:
        rate = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):  # also inf and nan, which Fraction does not read
        raise argparse.ArgumentTypeError(f"{text!r} is no frame rate; give frames a second, e.g. 30, 12.5 or "
                                         f"30000/1001") from None
    rate = rate.limit_denominator(FFMPEG_RATE_DENOMINATOR)  # as FFmpeg's demuxer takes it: times and rate agree
    if not 0 < rate <= INPUT_RATE_MAX:  # checked as taken: 0.0000001 became 0 ("not a video, or corrupt")
        raise argparse.ArgumentTypeError(f"{text} fps is out of range; give a rate above 0 and at most "
                                         f"{INPUT_RATE_MAX}")
    return rate


def _audio_tracks(text: str) -> str | list[int]:
    try:
        return OutputConfig.audio_tracks_named(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_debug_flag(parser: argparse.ArgumentParser) -> None:
    """--debug after the command too (`depthcam run x.mp4 --debug`), not only before it."""
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")


def _overrides(args: argparse.Namespace) -> dict:
    if args.focus is not None and args.focus_point is not None:  # the point won, and --focus was dropped unsaid
        raise UserError("--focus and --focus-point both set the focus; give one of them")
    return {
        **model_overrides(args), "render.focus": args.focus,
        "render.focus_point": args.focus_point, "render.blur": args.blur,
        "render.highlight_boost": args.highlight_boost, "render.focus_band": args.focus_band,
        "refine.mode": args.refine, "refine.person_mask": args.person_mask,
        "inference.max_batch": args.max_batch, "inference.mode": {True: "async", False: "sync"}.get(args.async_depth),
        "output.save_depth": args.save_depth, "output.depth_format": args.depth_format,
        "output.side_by_side": args.side_by_side,
        "output.preview": args.preview, "output.progress": args.progress, "output.codec": args.codec,
        "output.audio_tracks": args.audio_track,
    }


def live_input(spec: str) -> bool:
    """A camera or a network stream: an input that never ends and paces itself."""
    from stream.network_source import is_network_spec

    return spec.startswith("camera:") or is_network_spec(spec)


# The addresses that name a video file (or a playlist) by its type: only such an http(s) address is asked for its
# headers before the run (served_as_file). A server of one client at a time (`ffmpeg -listen 1`, an ESP32-CAM, some
# phone apps) gives its one connection to whoever asks first, and refused the stream's own; a live stream over HTTP
# is named .ts, .flv, .mjpg or by no type at all (/video, /stream), and is left unasked.
SERVED_FILE_TYPES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".m2ts", ".mts", ".wmv",
                     ".3gp", ".m3u8", ".m3u")


def _endless(spec: str) -> bool:
    """A camera or a live network stream: an input that never ends. A video file served over HTTP (its length
    stated, a VOD playlist) ends as a local file does: asked of its server (served_as_file) where its address names
    a video file by its type (SERVED_FILE_TYPES), once per call; another address is taken for a stream until it is
    opened (a file so named is still read as a file, with the live settings unless --config gives others)."""
    import urllib.parse

    from stream.served_file import served_as_file

    if not live_input(spec):
        return False
    named_a_file = urllib.parse.urlsplit(spec).path.lower().endswith(SERVED_FILE_TYPES)
    return not (named_a_file and served_as_file(spec))


# Schemes of addresses depthcam reads none of, named as they are: no stream's scheme is offered for them (ftp: tcp)
OTHER_SCHEMES = ("file", "ftp", "ftps", "sftp", "smb", "nfs", "s3", "gs", "ws", "wss", "rtp", "mms", "hls")
CAMERA_WORDS = re.compile(r"(?:camera|cam|webcam|video)[:_ -]?(\d*)", re.IGNORECASE)


def _refuse_mistyped_input(spec: str) -> None:
    """An input that is not there but most likely meant another (`htp://`, `http//`, `cam:0`, `clp.mp4`): one line
    naming it. Anything else goes on to open_source, which says what it is not."""
    from stream.network_source import is_network_spec
    from stream.piped_input import STDIN_NAMES

    if spec.startswith(("camera:", "synthetic:")) or is_network_spec(spec) or spec in STDIN_NAMES:
        return
    try:
        if os.path.lexists(os.path.expanduser(spec)):
            return
        meant = _meant_address(spec) or _meant_camera(spec) or _meant_file(spec)
    except (OSError, ValueError):  # a name too long, a NUL: open_source says so
        return
    if meant is not None:
        from stream.network_source import redact

        shown = redact(meant)
        if "://" in meant:  # the given one's password hidden as the address's is (redact needs its ://)
            tail = meant.partition("://")[2]
            shown_given = spec[:len(spec) - len(tail)] + shown.partition("://")[2]
        else:
            shown_given = spec
        scheme = spec.partition("://")[0] if "://" in spec else None  # a scheme it reads none of (htp://)
        problem = f"depthcam reads no {scheme}:// address" if scheme else "not found"
        raise UserError(f"input {shown_given}: {problem}; did you mean {shown}?")


def _meant_address(spec: str) -> str | None:
    """A stream's address with its `://` mistyped (http//, rtsp:/) or its scheme (htp://, rtps://)."""
    from stream.network_source import NETWORK_SCHEMES

    found = re.fullmatch(r"([A-Za-z][A-Za-z0-9+.-]*)(://|:/|//|:)([^/].*)", spec, re.DOTALL)
    if found is None:
        return None
    scheme, separator, rest = found.group(1).lower(), found.group(2), found.group(3)
    if scheme in NETWORK_SCHEMES:
        return f"{scheme}://{rest}" if separator != "://" else None
    if separator != "://" or scheme in OTHER_SCHEMES:
        return None
    # letters swapped first (rtps: rtsp, which difflib ranks below rtmps)
    swapped = next((name for name in NETWORK_SCHEMES if sorted(name) == sorted(scheme)), None)
    meant = swapped or closest_choice(scheme, NETWORK_SCHEMES)
    return f"{meant}://{rest}" if meant else None


def _meant_camera(spec: str) -> str | None:
    """`cam:0`, `camera0`, `webcam`: camera:N."""
    found = CAMERA_WORDS.fullmatch(spec)
    return f"camera:{int(found.group(1) or 0)}" if found else None


def _meant_file(spec: str) -> str | None:
    """A file of its folder spelt like the missing one (clp.mp4: clip.mp4), as given with its folder."""
    folder, name = os.path.split(spec)
    try:
        names = os.listdir(os.path.expanduser(folder or "."))
    except OSError:
        return None
    if len(names) > 10000:  # a camera's dump: not worth reading through for a hint
        return None
    close = difflib.get_close_matches(name, sorted(names), n=1, cutoff=0.8)
    return os.path.join(folder, close[0]) if close else None


def run_config(input_spec: str, args: argparse.Namespace) -> tuple[PipelineConfig, bool]:
    """The run's configuration, and whether the camera preset was chosen for the user: a camera (or a network
    stream) wants the live settings (the default preset is for files), on a GPU where there is one, since the
    preset's own `device: cpu` is for the laptops it is tuned on. A video file served over HTTP (its length stated, a
    VOD playlist) is read as a local file is, and gets a file's settings as one does where its address names it
    (_endless)."""
    overrides = _overrides(args)
    if args.config is None and _endless(input_spec):
        overrides["device"] = overrides["device"] or "auto"
        return load_config(LIVE_PRESET, overrides, notify), True
    return load_config(args.config, overrides, notify), False


def _run(input_spec: str, output: str | None, args: argparse.Namespace) -> int:
    """One input's run; `args.loaded_config`: its configuration where the caller has loaded it already (run_config's:
    a batch's and the demo's are read once)."""
    from stream.sinks import check_depth_format

    _refuse_mistyped_input(input_spec)
    _refuse_part_of_stream(input_spec, args)
    _refuse_no_output_place(input_spec, output)
    loaded = getattr(args, "loaded_config", None)
    config, camera_preset = (loaded, False) if loaded is not None else run_config(input_spec, args)
    # --save-depth FOLDER/, or a config file's `save_depth: depths/`: the file this input's depth gets there, named
    # by the run's depth format (a grey16 depth's type: .mkv, .png)
    flag = "--save-depth" if args.save_depth else "output.save_depth"
    config.output.save_depth = _into_folder(input_spec, flag, config.output.save_depth, config.output.depth_format)
    _refuse_long_names({"-o": output, flag: config.output.save_depth})
    if not getattr(args, "checked_together", False):  # a batch's inputs were checked before the first ran
        _refuse_depth_format_alone(args, config.output.save_depth)
        _refuse_ignored_options(input_spec, output, config, args)
        _note_live_ignored(input_spec, config, args)
    # before the input opens and the model loads (seconds): an animation's grey16 depth in a picture too
    check_depth_format(config.output.save_depth, config.output.depth_format, _animated(input_spec))
    photo = not live_input(input_spec) and _still(input_spec)  # a URL's .jpg is no photo here
    if photo and (output == "window" or config.output.preview):
        return _refocus_photo(input_spec, output, config, args)
    return _execute(input_spec, output, config, args, camera_preset)[0]


def _refuse_part_of_stream(input_spec: str, args: argparse.Namespace) -> None:
    """--start or --duration for a camera, the synthetic scene or a stream told so by its scheme (RTSP, UDP, ...):
    refused before it is opened, as build() refuses it once open (UDP waited 5 s for a sender first, and a server of
    one client at a time gave its connection to it). An http(s) address may serve a file: its opening tells."""
    import urllib.parse

    from stream.network_source import redact
    from stream.sources import Timecode, part_refusal, timecode_refusal

    given = [(flag, value) for flag, value in (("--start", getattr(args, "start", None)),
                                               ("--duration", getattr(args, "duration", None))) if value is not None]
    scheme = urllib.parse.urlsplit(input_spec).scheme.lower() if live_input(input_spec) else ""
    if not given or not (input_spec.startswith(("camera:", "synthetic:")) or scheme not in ("", "http", "https")):
        return
    timecode = next(((flag, value) for flag, value in given if isinstance(value, Timecode)), None)
    # a timecode's own line first, as build() gives it: it names what to write instead
    raise UserError(timecode_refusal(*timecode, redact(input_spec)) if timecode else part_refusal(redact(input_spec)))


def _refuse_no_output_place(input_spec: str, output: str | None) -> None:
    """Standard input or a named pipe without -o, before its first bytes are read: an MP4 piped in was looked at
    first, and said its index was out of reach, where -o was what the run lacked (a camera, a stream and the
    synthetic scene have outputs of their own)."""
    from stream.piped_input import no_place_beside, piped

    if output is None and not live_input(input_spec) and not input_spec.startswith("synthetic:") \
            and piped(input_spec):
        raise UserError(no_place_beside(input_spec))


# What an option is for, where an output of the run does not take it (_refuse_ignored_options)
IGNORED_WHAT = {"--codec": "--codec sets the codec of a video file written",
                "--audio-track": "--audio-track chooses the sound tracks a video file written keeps",
                "--side-by-side": "--side-by-side lays input, output and depth side by side in the output"}


def _refuse_depth_format_alone(args: argparse.Namespace, save_depth: str | None) -> None:
    """--depth-format with no depth file to write (no --save-depth, nor output.save_depth in the config): it was
    dropped without a word, and the run wrote no depth."""
    if args.depth_format is not None and not save_depth:
        raise UserError(f"--depth-format {args.depth_format} sets the pictures of the depth file, and none is "
                        f"written; add --save-depth FILE (e.g. --save-depth depth.mkv), or drop --depth-format")


def _refuse_ignored_options(spec: str, output: str | None, config: PipelineConfig, args: argparse.Namespace) -> None:
    """An option given that no output of this run takes, refused before the model loads (_ignored_by: --codec for
    a photo, --audio-track for a window, ...). The run went on without it, not a word said."""
    target = _output_planned(spec, output)
    if target is None or not _there(spec):  # a pipe without -o, an input not there: refused as such
        return
    for flag in _ignored_by(spec, target, config.output.save_depth, config.output.depth_format, args,
                            config.output.preview):
        if flag == "--audio-track" and _still(spec):  # "photo.jpg has no audio stream" (app.check_audio_tracks)
            continue
        grey16 = flag == "--codec" and _kind(config.output.save_depth) == "video"
        depth = f", and the grey16 depth video {config.output.save_depth} is FFV1 whatever it says" if grey16 else ""
        raise UserError(f"{IGNORED_WHAT[flag]}; {_no_video(spec, target, output is None)}{depth}: drop {flag}, or "
                        f"write a video ({_video_instead(target)})")


def _note_live_ignored(spec: str, config: PipelineConfig, args: argparse.Namespace) -> None:
    """Options a live input leaves aside, said before the model loads (the run goes on): --progress, whose bar has
    no end to count to, and --max-batch under async depth, whose network takes the newest frame alone. Only for an
    input live by its spec (a camera, a stream's scheme): an http(s) address may serve a file."""
    from stream.network_source import is_network_spec, redact

    scheme = spec.partition("://")[0].lower() if is_network_spec(spec) else ""
    if not spec.startswith("camera:") and scheme in ("", "http", "https"):
        return
    if args.progress:
        notify(f"--progress: {redact(spec)} never ends, so no bar counts towards its end; the run's last line says "
               f"what it captured")
    if args.max_batch is not None and config.inference.mode == "async":
        notify(f"--max-batch {args.max_batch}: async depth (the live preset's) runs the network on the newest frame "
               f"alone; add --no-async-depth for batches of {args.max_batch} frames, each frame with its own depth")


def _output_planned(spec: str, output: str | None) -> str | None:
    """Where a run of `spec` writes, told before it opens: -o's, else the default output (app.default_output's): a
    window for a camera or an address, the synthetic scene's video, NAME_portrait.* beside a file; None for standard
    input or a pipe, which need -o."""
    from stream.app import portrait_name
    from stream.piped_input import piped

    if output is not None:
        return output
    if spec.startswith("synthetic:"):
        return portrait_name(spec, image=False)
    if live_input(spec):
        return "window"
    return None if piped(spec) else portrait_name(spec, image=_still(spec))


def _there(spec: str) -> bool:
    """Whether an input is there to run: a camera, an address or the synthetic scene, or a path that exists."""
    from stream.piped_input import STDIN_NAMES

    if live_input(spec) or spec.startswith("synthetic:") or spec in STDIN_NAMES:
        return True
    try:
        return os.path.lexists(os.path.expanduser(spec))
    except (OSError, ValueError):
        return False


def _kind(target: str | None) -> str | None:
    """output_kind, or None for no output or a name of no type (the output checks refuse it)."""
    from stream.sinks import output_kind

    if not target:
        return None
    try:
        return output_kind(target)
    except UserError:
        return None


def _ignored_by(spec: str, output: str, depth: str | None, depth_format: str, args: argparse.Namespace,
                preview: bool = False) -> list[str]:
    """The options given on the command line that no output of `spec`'s run takes: --codec (other than auto) where
    neither -o nor a colour --save-depth is a video file (a grey16 depth video is FFV1 whatever it says), an
    --audio-track number where -o is no video file (none and all ask nothing a picture lacks), --side-by-side where
    -o null shows nothing (no `preview`; the depth file is never side by side)."""
    ignored = []
    kind = _kind(output)
    if kind is None:  # a name of no type: the output checks say so
        return []
    depth_takes = _kind(depth) == "video" and depth_format != "grey16"
    if args.codec not in (None, "auto") and kind != "video" and not depth_takes:
        ignored.append("--codec")
    if isinstance(args.audio_track, list) and args.audio_track and kind != "video":
        ignored.append("--audio-track")
    if args.side_by_side and kind == "null" and not preview:
        ignored.append("--side-by-side")
    return ignored


def _no_video(spec: str, target: str, defaulted: bool) -> str:
    """What the run writes instead of a video file, as a refusal says it: `defaulted`, the output was not given."""
    from stream.images import ANIMATION_FORMATS

    named = f"the output {target}" if defaulted else target
    if _kind(target) == "image":
        animation = _animated(spec) and Path(target).suffix.lower() in ANIMATION_FORMATS
        return f"{named} is {'an animation' if animation else 'a photo' if _still(spec) else 'a picture'}"
    if defaulted:  # a camera's or a stream's window
        return f"{spec if '://' not in spec else 'the stream'}'s output is a window (the default), which writes no file"
    return {"window": "-o window shows the frames and writes no file",
            "vcam": "-o vcam feeds a virtual camera and writes no file"}.get(target, f"-o {target} writes no file")


def _video_instead(target: str) -> str:
    """The video file a fix offers in place of `target`: its name as .mp4, or -o out.mp4 for a window, vcam or null."""
    return Path(target).with_suffix(".mp4").name if _kind(target) == "image" else "-o out.mp4"


def _refuse_long_names(targets: dict[str, str | None]) -> None:
    """An output name longer than its disk takes, in a folder not made yet (`--save-depth depths/` for an input of
    250 bytes): the output checks find it only in a folder that is there, so the sink refused it after the model
    and the kernels had loaded, and after making the folder, left behind empty."""
    from stream.paths import name_too_long

    for flag, target in targets.items():
        if not target or target in NOT_FILES:
            continue
        path = Path(target).expanduser()
        found = name_too_long(path.parts, next((folder for folder in path.parents if os.path.isdir(folder)), Path(".")))
        if found is not None:
            raise UserError(f"cannot write {target}: a name in it is {found[0]} bytes long, over the {found[1]} its "
                            f"disk takes; choose a shorter name for {flag} (or the input, where it is named after it)")


def _refocus_photo(input_spec: str, output: str | None, config: PipelineConfig, args: argparse.Namespace) -> int:
    """A photo in a window: refocused there with clicks and keys until q (at most STILL_WINDOW_WIDTH wide,
    so that each answers quickly), then, where a file is asked for, rendered once at full size with the
    focus and blur the window showed last."""
    from stream.app import check_outputs, portrait_name
    from stream.sinks import check_display, output_kind
    from stream.sources import open_source

    path = Path(input_spec)
    target = portrait_name(input_spec, image=True) if output is None else output
    writes_file = output_kind(target) in ("video", "image")
    # Every check of the full-size render before the refocusing, not after it: the outputs (the depth's too),
    # the formats' size limits and the blur at the photo's own height (the window shows a smaller copy)
    photo = open_source(input_spec, args.input_rate)  # refused with --input-rate: a photo has no rate
    try:
        # the window first, with the fix that fits how it was asked for: --preview is left out, -o window (which
        # said "-o out.mp4") gives way to the photo's own file
        if output == "window":
            check_display(f"write it to a file instead (leave out -o for {portrait_name(input_spec, image=True)})")
        check_outputs(config, input_spec, target if writes_file else "null", photo, preview=config.output.preview)
    finally:
        photo.close()
    in_window = copy.deepcopy(config)
    in_window.output.preview, in_window.output.save_depth = False, None
    files = [name for name in (target if writes_file else None, config.output.save_depth) if name]
    code, built = _execute(input_spec, "window", in_window, args, after_window=" and ".join(map(str, files)) or None)
    if code != 0 or not (writes_file or config.output.save_depth):
        return code
    if not writes_file:  # -o window --save-depth D: the depth video alone, as shown last
        target = "null"
    final = copy.deepcopy(config)
    final.output.preview = False
    final.render.blur = in_window.render.blur  # the window's + and - changed it
    if built.focus.current is not None:  # None: closed before its first render
        final.render.focus, final.render.focus_point = built.focus.current, None
    focus = f"{final.render.focus:.3f}" if isinstance(final.render.focus, float) else final.render.focus
    print(f"depthcam: rendering {path.name} at its full size with the focus ({focus}) and blur "
          f"({final.render.blur:g} px at {final.render.reference_height} lines) shown last", file=sys.stderr)
    return _execute(input_spec, target, final, args, announce=False)[0]  # the line above says what this run is


def _execute(input_spec: str, output: str | None, config: PipelineConfig, args: argparse.Namespace,
             camera_preset: bool = False, announce: bool = True, after_window: str | None = None) -> tuple[int, Any]:
    """Build the pipeline, run it and report: (exit status, the built pipeline). `announce`: the line naming the
    input, the model and the kernels' device; `after_window`: the files a photo refocused in the window is written
    to once it closes."""
    from stream.app import build

    built = build(config, input_spec, output, notify=notify, clip=(args.start, args.duration),
                  input_rate=args.input_rate)
    if camera_preset:
        kind = "camera" if input_spec.startswith("camera:") else "network stream"
        print(f"depthcam: {kind} input: using the {LIVE_PRESET} preset's settings, device {config.device} "
              f"(choose others with --config and --device)", file=sys.stderr)
    if announce:
        print(f"depthcam: {built.source.description} -> model {built.estimator.spec.name} "
              f"({built.estimator.provider}), kernels on {built.backend}", file=sys.stderr)
    target = built.output
    if target == "window" or config.output.preview:
        print(f"depthcam: {KEYS_HELP}", file=sys.stderr)
    # The hint's cheaper alternative is the CPU's live mode (on CUDA the exact filter is already fast)
    seconds = getattr(built.source, "progress_seconds", None)  # where the number of frames is only a guess
    if config.refine.mode == "full" and built.backend == "cpu" and not built.source.live \
            and (seconds or built.source.frame_count):
        from stream.hints import SlowRunHint

        built.pipeline.on_frame = SlowRunHint(seconds or built.source.frame_count, notify,
                                              done=built.source.seconds_done if seconds else None)
    started = time.perf_counter()
    try:
        result = built.pipeline.run()
    except (PipelineError, UserError) as exc:
        if args.debug and isinstance(exc, PipelineError):
            traceback.print_exception(exc.cause)
        print_error(exc)
        if summary := built.pipeline.live_summary():  # a camera unplugged: what the session captured until then
            print(f"depthcam: {summary}", file=sys.stderr)
        written = built.pipeline.frames_written
        kept = _kept_all(built, target, config.output.save_depth, written)
        print(f"depthcam: stopped after {_frames(written)}{kept}", file=sys.stderr)
        return exc.exit_code, built
    if summary := built.pipeline.live_summary():  # frames captured, processed, dropped; latency (a photo's: none)
        print(f"depthcam: {summary}", file=sys.stderr)
    if result.interrupted and getattr(built.source, "repeating", False):
        # a photo refocused in the window: its redraws are no frames ("interrupted after 5811 frames"), and the
        # file it was to go to is written by q alone
        then = f"; {after_window} not written (q in the window writes it)" if after_window else ""
        print(f"depthcam: interrupted{then}", file=sys.stderr)
        return 130, built
    if result.interrupted:
        print(f"depthcam: interrupted after {_frames(result.frames_written)}"
              f"{_kept_all(built, target, config.output.save_depth, result.frames_written)}", file=sys.stderr)
        return 130, built
    seconds = time.perf_counter() - started
    if getattr(built.source, "repeating", False):  # a photo refocused in the window: no frames to count
        return 0, built
    rate = f" ({result.frames_written / max(seconds, 1e-9):.1f} fps)" if result.frames_written > 1 else ""  # a photo
    depth = f" and its depth to {config.output.save_depth}" if config.output.save_depth else ""
    print(f"depthcam: wrote {_frames(result.frames_written)} to {target}{depth} in {seconds:.1f} s{rate}",
          file=sys.stderr)
    if result.closed_by_user and not built.source.live and target != "window":
        print(f"depthcam: stopped from the preview window before the end of the input; {target} holds the "
              f"frames until then", file=sys.stderr)
    warning = built.source.truncation_warning() if result.completed and not built.source.live else None
    if warning:
        print(f"depthcam: warning: {warning}", file=sys.stderr)
    return 0, built


def _frames(count: int) -> str:
    return f"{count} frame" if count == 1 else f"{count} frames"


FINALISED = " is finalised and playable up to there"


def _kept_all(built: Any, target: str, depth: str | None, written: int) -> str:
    """What a stopped run leaves behind: its output, and its depth file (--save-depth), which was finalised with it
    and went unnamed."""
    kept = _kept(built, target, written)
    if not depth:
        return kept
    depth_kept = _kept(built, depth, written)
    if kept.endswith(FINALISED) and depth_kept == f"; {depth}{FINALISED}":  # said once for both
        return f"{kept[:-len(FINALISED)]} and {depth} are finalised and playable up to there"
    return kept + depth_kept


def _kept(built: Any, target: str, written: int) -> str:
    """_what_was_kept for a run's output, from its video writer where it has one."""
    from stream.app import video_writers
    from stream.paths import same_file

    there = os.path.lexists(os.path.expanduser(target))
    writer = next((one for one in video_writers(built.pipeline.sink) if same_file(one.path, target)), None)
    if writer is None:
        return _what_was_kept(target, written, built.pipeline.sink_finalised, there=there)
    # the sinks close together: another's failure (the depth video's) leaves this one finalised
    return _what_was_kept(target, written, built.pipeline.sink_finalised or writer.finalised, writer.pictures_on_disk,
                          there)


def _what_was_kept(target: str, written: int, finalised: bool, on_disk: int | None = None,
                   there: bool = True) -> str:
    """The end of the line that says what a stopped run leaves behind. `on_disk`: the pictures a video file is
    known to hold (those in its fragments or clusters that reached the disk), where known; `there`: whether a file
    of the output's name is on the disk now."""
    from stream.piped_input import pipe_kind
    from stream.sinks import output_kind

    kind = output_kind(target)
    if kind not in ("video", "image"):
        return ""
    if not written:
        return "; nothing was written"
    if not finalised and (pipe := pipe_kind(target)):  # no disk holds the frames: "reached the disk" was untrue
        return f"; {target} is a {pipe}: its reader was given the frames as they were written"
    unwritten = not finalised and (kind == "image" or on_disk == 0)  # the file is made beside its name (README)
    if not there:  # none before the run, or deleted during it (its folder removed): "left as it was" was untrue
        return f"; {target} was not written" if unwritten else f"; no file {target} is left"
    if unwritten:
        return f"; {target} was not written (a file of that name is left as it was)"
    if not finalised and on_disk is not None:
        return f"; {target} could not be finalised: it holds at least its first {_frames(on_disk)}, those that " \
               f"reached the disk"
    if not finalised:  # every packet reaches the disk at once, in one-second fragments or clusters (README)
        return f"; {target} could not be finalised: it plays up to about the last second that reached the disk"
    return f"; {target}{FINALISED}"


def _animated(spec: str) -> bool:
    """Whether a file input is an animation (GIF, APNG, animated WebP), by its headers (read once a run)."""
    from stream.animations import animation_metadata
    from stream.piped_input import input_path

    if live_input(spec) or spec.startswith("synthetic:"):
        return False
    return animation_metadata(input_path(spec)) is not None


def _still(spec: str) -> bool:
    """Whether a file input is a photo; standard input's by what came through the pipe."""
    from stream.piped_input import input_path

    return is_still_image(input_path(spec))


def _named(spec: str) -> str:
    """The input as its outputs' names say it: standard input (`-`) as stdin (stdin_portrait.mp4 in -o FOLDER/), a
    file served over HTTP by its address's last part (clip_portrait.mp4 for http://host/films/clip.mp4?token=...)."""
    from stream.network_source import is_network_spec
    from stream.served_file import ServedFile

    if spec == "-":
        return "stdin"
    return ServedFile(spec).name if is_network_spec(spec) else spec


def _refuse_stdout(args: argparse.Namespace) -> None:
    """`-o -`: the outputs are files whose type their name gives; standard output has none, and MP4 cannot be
    written into a pipe (its index goes back to the start). A named pipe with a type (mkfifo out.mkv) can be."""
    for flag, value in (("-o", args.output), ("--save-depth", args.save_depth)):
        if value == "-":
            raise UserError(f"{flag} -: depthcam writes no output to standard output; give a file name "
                            f"(e.g. {flag} out.mp4)")


def _refuse_empty_outputs(args: argparse.Namespace) -> None:
    """`-o "$OUT"` with OUT unset: "" silently meant the default output (several inputs: the current folder)."""
    for flag, value in (("-o", args.output), ("--save-depth", args.save_depth)):
        if value is not None and not value.strip():
            raise UserError(f"{flag} is empty (an unset shell variable?); give a file or folder name, "
                            f"or leave {flag} out for the default")


def cmd_run(args: argparse.Namespace) -> int:
    _refuse_empty_outputs(args)
    _refuse_stdout(args)
    from stream.camera import camera_input  # `run 0`, `run /dev/video0`: camera:0

    args.inputs = [name for spec in args.inputs for name in _expanded(camera_input(spec))]
    if len(args.inputs) == 1:
        spec = args.inputs[0]
        _refuse_roll_extra(spec)
        output = _into_folder(spec, "-o", args.output)
        return _run(spec, output, args)  # --save-depth FOLDER/ there, named by the loaded config's depth format
    return _run_each(args.inputs, args)


def _expanded(spec: str) -> list[str]:
    """An input pattern as a shell expands it, for where none did (`run 'clips/*.mp4'`; Windows' cmd and PowerShell
    expand none): the files it matches, sorted. A camera's, a stream's or the synthetic scene's ? is no pattern."""
    from stream.paths import glob_matches, other_case_matches

    if live_input(spec) or spec.startswith("synthetic:"):
        return [spec]
    matches = glob_matches(spec)
    if matches == []:
        other_case = other_case_matches(spec)
        if other_case:  # a camera's IMG_0001.JPG under *.jpg
            raise UserError(f"no file matches {spec}: names differ by case here, and {len(other_case)} would in "
                            f"another case ({os.path.basename(other_case[0])}, ...); give the pattern in their case")
        raise UserError(f"no file matches {spec}; check the folder and the pattern")
    return [spec] if matches is None else matches


def _roll_extra(spec: str) -> tuple[str, str, str] | None:
    """paths.roll_extra for a file input: a sidecar, a system's file or a folder; None for anything else."""
    from stream.paths import roll_extra
    from stream.piped_input import STDIN_NAMES

    if live_input(spec) or spec.startswith("synthetic:") or spec in STDIN_NAMES:
        return None
    return roll_extra(spec)


def _refuse_roll_extra(spec: str) -> None:
    """A sidecar named on its own (IMG_0001.AAE) said "cannot read video ... (the file is not a video, or it is
    truncated or corrupt)"; this says what it is. A folder's own line comes from opening it (sources.open_source)."""
    from stream.paths import companions

    extra = _roll_extra(spec)
    if extra is None or extra[0] == "folder":
        return
    beside = companions(spec) if extra[0] != "AppleDouble file" else []  # ._IMG_1.JPG's fix names IMG_1.JPG
    fix = f"{extra[2]}: {' or '.join(beside[:3])}" if beside else extra[2]
    raise UserError(f"input {spec} is {extra[1]}, not a photo or video; {fix}")


def _leave_out_roll_extras(inputs: list[str]) -> list[str]:
    """Of several inputs (`roll/*`, expanded by depthcam or by a shell, which cannot be told apart), the folders and
    what a camera roll holds beside its photos and videos (an iPhone's .AAE edits, .xmp, Google Takeout's .json,
    .DS_Store): left out with one line counting them by kind, where each was a failed input and the exit 2."""
    extras = {spec: extra for spec in inputs if (extra := _roll_extra(spec)) is not None}
    if not extras:
        return inputs
    kinds: dict[str, int] = {}
    for kind, _, _ in extras.values():
        kinds[kind] = kinds.get(kind, 0) + 1
    folders = [spec for spec, extra in extras.items() if extra[0] == "folder"]
    counted = ", ".join(f"{count} {kind}{'s' if count > 1 else ''}" + (_folders_named(folders, extras)
                                                                       if kind == "folder" else "")
                        for kind, count in kinds.items())
    kept = [spec for spec in inputs if spec not in extras]
    if not kept:
        raise UserError(f"none of the {len(inputs)} inputs is a photo or video: {counted}")
    print(f"depthcam: leaving out {len(extras)} input(s) that are no photo or video: {counted}", file=sys.stderr)
    return kept


def _folders_named(folders: list[str], extras: dict[str, tuple[str, str, str]]) -> str:
    """The folders left out, and how their files are given: " (roll/Burst: give roll/Burst/* for the files in it)"."""
    shown = ", ".join(folders[:3]) + (", ..." if len(folders) > 3 else "")
    fix = extras[folders[0]][2] + (" (and so on)" if len(folders) > 1 else "")
    return f" ({shown}: {fix})"


def _into_folder(spec: str, flag: str, value: str | None, depth_format: str = "colour") -> str | None:
    """-o or --save-depth naming a folder (one that exists, or a name ending in /) for a single input: the
    file that several inputs would get there, so that `run clips/*.mp4 -o portraits/` works for one clip too (a
    grey16 depth's in a type that holds it: .mkv, .png)."""
    try:
        folder = bool(value) and value not in NOT_FILES and \
            (value.endswith(("/", os.sep)) or Path(value).expanduser().is_dir())
    except OSError:  # a name too long to be anything: the output checks say so
        folder = False
    if not folder:
        _refuse_no_type(spec, flag, value)
        return value
    if _endless(spec):
        raise UserError(f"{flag} {value} is a folder; give the recording a file name "
                        f"(e.g. {Path(value) / 'take1.mp4'})")
    from stream.app import portrait_name

    image, named = _still(spec), _named(spec)
    name = Path(portrait_name(named, image=image)).name if flag == "-o" else _depth_name(named, image, depth_format)
    return str(Path(value) / name)


def _depth_name(spec: str, image: bool, depth_format: str) -> str:
    """The depth's file name in a folder: NAME_depth.mp4 (.png, an animation's type), a grey16 depth's in a type
    that holds 16-bit grey: NAME_depth.png for a photo, else NAME_depth.mkv (the animation writers take 8 bits)."""
    from stream.app import depth_name

    name = depth_name(spec, image=image)
    return str(Path(name).with_suffix(".png" if image else ".mkv")) if depth_format == "grey16" else name


def _refuse_no_type(spec: str, flag: str, value: str | None) -> None:
    """`-o portraits` for a folder that is not there yet: refused as "unknown output type (no extension)", which
    said nothing of the / that makes it a folder."""
    if not value or value in NOT_FILES or Path(value).suffix or os.path.lexists(Path(value).expanduser()):
        return
    meant = closest_choice(value, NOT_FILES) if flag == "-o" else None
    if meant is not None:  # `-o windw`, `-o nul`: told to add an extension, not what it most likely meant
        raise UserError(f"{flag} {value} names no type of file; did you mean {flag} {meant}?")
    if _endless(spec):  # a recording goes into a file, never a folder
        raise UserError(f"{flag} {value} has no extension, so it names no type of file; add one ({value}.mp4)")
    ext = ".png" if _still(spec) else ".mp4"
    raise UserError(f"{flag} {value} has no extension, so it names no type of file; add one for a file "
                    f"({value}{ext}), or end it with / for a folder ({value}/)")


def _batch_folder(flag: str, value: str | None) -> Path | None:
    """-o or --save-depth for several inputs: a folder (made if missing) that gets one file per input;
    None for no folder (the default, or `-o null`, `window`, `vcam`, which each input gets in turn)."""
    if value is None or value in NOT_FILES:
        return None
    folder = Path(value)
    if folder.suffix and not folder.is_dir():
        raise UserError(f"{flag} {value}: with several inputs, give a folder for their outputs "
                        f"(e.g. {folder.parent / 'portraits'})")
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{flag} {value} is a file; with several inputs, give a folder for their outputs")
    return folder


def _config_depth_folder(config: PipelineConfig) -> Path | None:
    """Several inputs and a config file's output.save_depth: a folder gets NAME_depth.* per input, as
    --save-depth's does; one file name would be written over by every input in turn."""
    save_depth = config.output.save_depth
    if save_depth is None:
        return None
    if save_depth.endswith(("/", os.sep)) or Path(save_depth).expanduser().is_dir():
        return Path(save_depth)
    raise UserError(f"output.save_depth ({save_depth}, from --config) names one file, which each of the inputs "
                    f"would write over; give --save-depth FOLDER, or a folder (depths/) in the config")


def _run_each(inputs: list[str], args: argparse.Namespace) -> int:
    """Several inputs, one after another, each as its own run: an input that fails is reported and the
    others go on; the exit status is the first failure's (0 when all went well). Ctrl-C stops them all."""
    live = [spec for spec in inputs if _endless(spec)]
    if live:
        from stream.network_source import redact

        raise UserError(f"{redact(live[0])} never ends, so it cannot be one of several inputs; run it on its own")
    inputs = _leave_out_roll_extras(inputs)
    # `depthcam run clips/*` run twice would take the first run's outputs, written beside the clips, for inputs
    ours = [spec for spec in inputs if Path(spec).stem.endswith(("_portrait", "_depth"))]
    if ours:
        print(f"depthcam: leaving out {len(ours)} input(s) named as depthcam's own outputs ({', '.join(ours[:3])}"
              f"{', ...' if len(ours) > 3 else ''}); give such a file on its own to process it", file=sys.stderr)
        inputs = [spec for spec in inputs if spec not in ours]
        if not inputs:
            raise UserError("every input is named as depthcam's own output (NAME_portrait, NAME_depth); "
                            "give one on its own to process it")
    folder, depth_folder = _batch_folder("-o", args.output), _batch_folder("--save-depth", args.save_depth)
    # loaded once for every input (none is live: run_config gives each the same), a copy each
    config = load_config(args.config, _overrides(args), notify)
    if depth_folder is None:
        depth_folder = _config_depth_folder(config)
    from stream.app import portrait_name

    format_of_depth = config.output.depth_format
    plans = []
    for spec in inputs:
        # as a single run names it, told from the name: the inputs open one at a time, later
        image = _still(spec)
        beside = Path(portrait_name(_named(spec), image=image))
        output = args.output if args.output in NOT_FILES else str(folder / beside.name if folder else beside)
        depth = None if depth_folder is None else str(depth_folder / _depth_name(_named(spec), image, format_of_depth))
        plans.append((spec, output, depth))
    outputs = [p for _, output, depth in plans for p in (output, depth) if p is not None and p not in NOT_FILES]
    clash = next((p for i, p in enumerate(outputs) if p in outputs[:i]), None)
    if clash is not None:
        raise UserError(f"two inputs would both write {clash}; give them different names or run them apart")
    # before the first input runs (and before the folders are made): each was refused at its turn, after the inputs
    # before it had run, for hours maybe
    _refuse_depth_format_alone(args, str(depth_folder) if depth_folder is not None else None)
    _refuse_unfit_inputs(plans, args)
    # last: its note only where nothing is refused
    _check_options_together(plans, args, format_of_depth, config.output.preview)
    args.checked_together = True
    created: list[Path] = []  # folders this run made: taken away again where no input wrote into them
    for flag, made in (("-o", folder), ("--save-depth", depth_folder)):
        if made is not None:
            made = made.expanduser()
            created += [made, *made.parents][:len([f for f in (made, *made.parents) if not f.exists()])]
            try:
                made.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # a read-only place, a file on the way: one line, not OSError's
                raise UserError(f"{flag} {made}: cannot create the folder for the outputs "
                                f"({exc.strerror or exc}); choose another place") from None
    try:
        return _run_planned(plans, args, config)
    finally:
        _remove_if_empty(created)


def _check_options_together(plans: list[tuple[str, str, str | None]], args: argparse.Namespace,
                            depth_format: str, preview: bool) -> None:
    """An option that some of a batch's outputs do not take (_ignored_by: --codec, --audio-track for the photos' and
    animations' pictures) said once, before the first input runs; refused where none takes it."""
    for flag in IGNORED_WHAT:
        ignoring = [spec for spec, output, depth in plans
                    if flag in _ignored_by(spec, output, depth, depth_format, args, preview)]
        if not ignoring:
            continue
        if len(ignoring) < len(plans):
            notify(f"{flag} applies to the video files written, not to the pictures of {len(ignoring)} of the "
                   f"{len(plans)} inputs ({_listed(ignoring)})")
        elif args.output in NOT_FILES:
            raise UserError(f"{IGNORED_WHAT[flag]}; {_no_video(ignoring[0], args.output, False)}: drop {flag}, or "
                            f"write videos (-o FOLDER/)")
        else:
            raise UserError(f"{IGNORED_WHAT[flag]}; the {len(plans)} inputs are photos or animations, written as "
                            f"pictures: drop {flag}")


def _refuse_unfit_inputs(plans: list[tuple[str, str, str | None]], args: argparse.Namespace) -> None:
    """The per-input refusals that a batch's inputs' names, headers or containers tell without decoding a picture,
    for all of them in one line each: --input-rate for an input with a rate of its own (or none: a photo), --start
    or --duration for one that is no video file, an --audio-track number a video lacks."""
    from stream.sources import INPUT_RATE_TAKERS, input_rate_misfit

    inputs = [spec for spec, _, _ in plans]
    if args.input_rate is not None:
        _refuse_misfits(INPUT_RATE_TAKERS, [(spec, input_rate_misfit(spec)) for spec in inputs], len(inputs),
                        "leave --input-rate out, or run those inputs apart")
    if args.start is not None or args.duration is not None:
        _refuse_misfits("--start and --duration take a part of a video file",
                        [(spec, _part_misfit(spec, args)) for spec in inputs], len(inputs),
                        "leave those inputs out, or run them apart")
    numbers = args.audio_track if isinstance(args.audio_track, list) else []
    if numbers:
        with_video = [spec for spec, output, _ in plans if _kind(output) == "video"]
        _refuse_misfits(f"--audio-track {','.join(map(str, numbers))} names audio streams by their numbers",
                        [(spec, _audio_misfit(spec, numbers)) for spec in with_video], len(inputs),
                        "give numbers that each input has, or run those inputs apart")


MISFITS_SHOWN = 3  # the inputs a line names, of those an option does not fit; the rest counted


def _refuse_misfits(what: str, found: list[tuple[str, str | None]], total: int, fix: str) -> None:
    """One line naming each input an option does not fit and why (`found`: each input, and what it is or has; None
    where the option fits it)."""
    from stream.sources import input_named

    misfits = [f"{input_named(spec)} {why}" for spec, why in found if why is not None]
    if misfits:
        shown = misfits[:MISFITS_SHOWN] + ([f"{len(misfits) - MISFITS_SHOWN} more"] if len(misfits) > MISFITS_SHOWN
                                           else [])
        raise UserError(f"{what}; of the {total} inputs, {'; '.join(shown)}: {fix}")


def _part_misfit(spec: str, args: argparse.Namespace) -> str | None:
    """What a batch's input is, where --start or --duration takes no part of it (build() refuses it once open)."""
    from stream.sources import Timecode

    if spec.startswith("synthetic:"):
        return "is the synthetic scene, no video file"
    if not _there(spec):  # refused as missing at its turn, as before
        return None
    if _still(spec):
        return "is a photo"
    timecode = any(isinstance(value, Timecode) for value in (args.start, args.duration))
    if timecode and _animated(spec):
        return "is an animation, with no frame rate to count a timecode (HH:MM:SS:FF) at: give seconds"
    return None


def _audio_misfit(spec: str, numbers: list[int]) -> str | None:
    """What a batch's video lacks of the audio streams --audio-track names, by its container's headers; None where
    it has them all, or where only opening it tells (a pipe, an address)."""
    from stream.piped_input import input_path
    from stream.sources import probe_file

    if live_input(spec) or spec.startswith("synthetic:"):
        return None
    headers = probe_file(input_path(spec))
    if headers is None or max(numbers) <= headers.audio_streams:
        return None
    count = headers.audio_streams
    return f"has {'no audio stream' if not count else '1 audio stream' if count == 1 else f'{count} audio streams'}"


def _listed(specs: list[str]) -> str:
    """A few inputs by name (an address without its password), the rest counted."""
    from stream.network_source import redact

    shown = ", ".join(redact(spec) for spec in specs[:MISFITS_SHOWN])
    return shown + (f" and {len(specs) - MISFITS_SHOWN} more" if len(specs) > MISFITS_SHOWN else "")


def _remove_if_empty(folders: list[Path]) -> None:
    """The folders a run of several inputs made for its outputs, where every input failed before writing: the
    deepest first, each only while empty (a single run's check makes none, and leaves none)."""
    for made in sorted(set(folders), key=lambda path: len(path.parts), reverse=True):
        with contextlib.suppress(OSError):
            made.rmdir()  # refuses a folder that holds anything


def _run_planned(plans: list[tuple[str, str, str | None]], args: argparse.Namespace,
                 config: PipelineConfig) -> int:
    """Each planned input in turn (input, output, depth output), each with a copy of `config` (the run's, loaded
    once); the others still run where one fails. An address is named without its password or token (redact)."""
    from stream.network_source import redact

    failed: list[tuple[str, int]] = []
    for number, (spec, output, depth) in enumerate(plans, 1):
        print(f"depthcam: input {number} of {len(plans)}: {redact(spec)}", file=sys.stderr)
        one = argparse.Namespace(**vars(args))
        one.save_depth = depth
        one.loaded_config = copy.deepcopy(config)
        one.loaded_config.output.save_depth = depth
        try:
            code = _run(spec, output, one)
        except UserError as exc:  # this input could not start (missing, corrupt, ...): the others still run
            print_error(exc)
            code = exc.exit_code
        finally:
            # What a run leaves in reference cycles is freed now, not some inputs later when Python's collector
            # gets to it: a video writer and its audio track hold each other, and with them the encoder's
            # threads and frame buffers (x264 at 1280x720: 7 threads and ~35 MB an input). 0.05-0.1 s an input.
            gc.collect()
        if code == 130:
            return 130
        if code != 0:
            failed.append((spec, code))
    done = len(plans) - len(failed)
    names = ", ".join(redact(spec) for spec, _ in failed)
    print(f"depthcam: {done} of {len(plans)} inputs done" + (f"; failed: {names}" if failed else ""), file=sys.stderr)
    return failed[0][1] if failed else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from stream.sample import write_sample
    from stream.sinks import output_kind

    _refuse_empty_outputs(args)
    # the outputs' spelling first: a folder (`-o results/`) gets demo_portrait.mp4 and demo_depth.mp4 in it
    output = _into_folder("demo", "-o", args.output) or str(DEMO_DIR / "demo_portrait.mp4")
    # the depth beside the portrait where -o names a folder, else in out/
    depth_folder = Path(output).parent if output != args.output else DEMO_DIR
    config = load_config(args.config, _overrides(args), notify)  # once: the run gets it
    depth_format = config.output.depth_format  # a grey16 depth's own name: demo_depth.mkv
    args.save_depth = config.output.save_depth = \
        _into_folder("demo", "--save-depth", args.save_depth, depth_format) or \
        str(depth_folder / _depth_name("demo.mp4", False, depth_format))
    output_kind(output)
    try:
        sample = write_sample(DEMO_DIR / "sample_astronaut.mp4")
    except OSError as exc:  # PyAV's errors of the file system are OSErrors too
        raise UserError(f"cannot write the demo's sample clip into {DEMO_DIR.resolve()} ({exc.strerror or exc}); "
                        f"run depthcam demo in a folder you can write") from None
    args.loaded_config = config
    code = _run(str(sample), output, args)
    if code == 0:
        print(f"depthcam demo: input {sample}\n  portrait {output}\n  depth    {args.save_depth}")
    return code


def cmd_models(args: argparse.Namespace) -> int:
    from models.download import ModelError, cache_dir
    from models.registry import INPUT_NORMS, PERSON_MASK_MODELS, REGISTRY, fetch, get_spec, model_state
    from stream.config import parse_model_size

    try:
        if args.models_command == "list":
            specs = [*REGISTRY.values(), *PERSON_MASK_MODELS.values()]
            width = max(len(spec.name) for spec in specs)
            for spec in specs:
                print(f"{spec.name:{width}s} {model_state(spec):15s} {spec.description}")
            print(f"cache: {cache_dir()}  (set DEPTHCAM_MODELS to move it)")
        elif args.models_command == "fetch":
            print(fetch(args.name, progress=True, repair=True))
        elif args.models_command == "info" and args.name not in REGISTRY and (
                args.name.lower().endswith(".onnx") or Path(args.name).exists()
                or Path(f"{args.name}.index").is_file()):  # a checkpoint's prefix (NYU_FCRN.ckpt): told to convert
            _describe_model_file(args.name, args.model_size)
        elif args.models_command == "info":
            spec = get_spec(args.name)
            # as a run refuses it; `--model-size ""` (an unset shell variable) too, not taken for no size
            if args.model_size is not None and parse_model_size(args.model_size) != spec.input_size:
                raise UserError(f"{spec.name} takes {spec.input_size[0]}x{spec.input_size[1]} only; --model-size "
                                f"chooses the free sides of your own model's input")
            print(f"name:        {spec.name}\ndescription: {spec.description}\nsource:      {spec.source}")
            width, height = spec.input_size
            print(f"input:       {width}x{height} {INPUT_NORMS[spec.input_norm]}, {spec.layout}")
            print(f"output:      {spec.output_kind} (refine.person_mask)" if spec.output_kind == "person_probability"
                  else f"output:      {spec.output_kind} (converted to disparity)")
            if spec.url:
                what = "archive" if spec.fetcher else "url"
                print(f"{what + ':':13s}{spec.url}\nsha256:      {spec.sha256}")
            print(f"file:        {spec.path}\nstate:       {model_state(spec)}")
        elif args.models_command == "convert":
            from models.fcrn_weights import convert
            from stream.paths import ensure_writable

            if Path(args.output).suffix.lower() != ".onnx":
                raise UserError(f"-o {args.output}: the converted model is an ONNX file; name it *.onnx")
            print(convert(Path(args.source), ensure_writable(Path(args.output), "converted model"), fp16=args.fp16))
    except ModelError as exc:
        raise UserError(str(exc)) from None
    return 0


DYNAMIC_TRIAL_SIZE = 224  # `models info` loads a model of dynamic input size at this size to check it


def _free_size(size: tuple[int | None, int | None]) -> str:
    width, height = size
    if width is None and height is None:
        return "any size"
    return f"width {width}, any height" if width is not None else f"any width, height {height}"


def _describe_model_file(path: str, model_size: str | None = None) -> None:
    """`models info my_model.onnx`: what depthcam makes of a user's model, checked by loading it (a model of
    dynamic input size at `model_size`, else at a trial size for its free axes)."""
    import dataclasses

    from models.registry import INPUT_NORMS, resolve_model
    from models.runtime import DepthEstimator, input_spatial_size
    from stream.config import parse_model_size

    spec, model_path = resolve_model(path, progress=False)
    size = input_spatial_size(model_path) if spec.input_size == (0, 0) else None
    dynamic = size is not None and None in size
    # as a run takes it: a size the model cannot take (or "") is refused here too, not only by `run`
    if model_size is not None:
        spec = dataclasses.replace(spec, input_size=parse_model_size(model_size))
    elif dynamic:  # checked at a trial size for the free axes; a run needs --model-size
        spec = dataclasses.replace(spec, input_size=tuple(DYNAMIC_TRIAL_SIZE if side is None else side
                                                          for side in size))
    estimator = DepthEstimator(spec, model_path, "cpu")
    looks_wrong = _trial_frame_note(estimator)
    layout = estimator.input
    # of several outputs, the one read as depth (a confidence map may come first)
    output = next(meta for meta in estimator.session.get_outputs() if meta.name == estimator.output_name)
    batch = "batch 1 (frames run one by one; on a GPU the batch is made dynamic where the graph allows)" \
        if layout.static_batch else "dynamic batch"
    size = f"{_free_size(size)} (run it with --model-size WxH)" if dynamic else f"{layout.width}x{layout.height}"
    # a uint8 input is fed as it is, whatever --model-input says (the model scales it itself)
    scaling = "fed as it is" if layout.dtype.name == "uint8" else "--model-input to change"
    print(f"file:        {model_path}\ninput:       {layout.name} {layout.layout} {size}, "
          f"{INPUT_NORMS[estimator.spec.input_norm]} ({scaling}), {batch}, {layout.dtype}"
          f"\noutput:      {output.name} {output.shape} {output.type}, read as {spec.output_kind}"
          f"{' (larger = nearer; for metric depth add --model-output metres)' if spec.output_kind != 'metres' else ''}"
          + (f"\nstate:       loads, but on a trial frame (synthetic:portrait) it {looks_wrong}" if looks_wrong else
             f"\nstate:       accepted by depthcam (--model {model_path}"
             f"{' --model-size ' + (model_size or 'WxH') if dynamic else ''})"))


def _trial_frame_note(estimator: Any) -> str | None:
    """What a run would warn about this model on its first frame (a segmentation model's mask or logits): a
    model that loads was "accepted" by `models info`, and only a run said it gives no depth. A model giving the
    same depth everywhere is refused here as a run refuses it (ModelError)."""
    from stream.sources import open_source

    [frame] = open_source("synthetic:portrait?frames=1").frames()
    said: list[str] = []
    estimator.watch.notify = said.append
    estimator.to_disparity(estimator.predict([frame.image])[0])
    return said[0].removeprefix(f"the model {estimator.spec.name} ") if said else None


def cmd_doctor(args: argparse.Namespace) -> int:
    from stream.doctor import run_doctor

    return run_doctor()


def cmd_bench(args: argparse.Namespace) -> int:
    from stream.bench import run_bench_command

    return run_bench_command(args)


def build_parser() -> argparse.ArgumentParser:
    from stream.bench import add_bench_arguments, depthcam_version

    parser = Parser(prog="depthcam", description="Real-time portrait mode for a single camera.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", help="show the version (for a bug report) and exit",
                        version=f"depthcam {depthcam_version() or '(a checkout, not installed)'}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="portrait mode on a video, image, camera, network stream or the "
                                          "synthetic scene")
    run.add_argument("inputs", nargs="+", metavar="INPUT",
                     help="a video or image file, camera:N, a network stream (rtsp://, http://, udp://...), or "
                          "synthetic:portrait?...; several files are processed one after another")
    run.add_argument("-o", "--output", metavar="OUTPUT",
                     help="a video (.mp4 .m4v .mov .mkv .webm .avi) or image file, window, vcam, or null "
                          "(default: a window for cameras and network streams, INPUT_portrait.mp4 beside a video, "
                          "INPUT_portrait.png beside an image, out/synthetic_portrait.mp4 for the synthetic scene); "
                          "with several inputs, a folder for their outputs (default: beside each), or null, window or "
                          "vcam for each in turn")
    _add_run_options(run)
    run.set_defaults(handler=cmd_run)

    demo = commands.add_parser("demo", help="run on the built-in sample clip and say where the result is")
    demo.add_argument("-o", "--output", metavar="OUTPUT", help="where the render goes (default out/demo_portrait.mp4; "
                                                               "a folder/ gets it and demo_depth.mp4)")
    _add_run_options(demo)
    demo.set_defaults(handler=cmd_demo)

    bench = commands.add_parser("bench", help="latency and throughput of the real pipeline")
    add_bench_arguments(bench)
    _add_debug_flag(bench)
    bench.set_defaults(handler=cmd_bench)

    doctor = commands.add_parser("doctor", help="what this machine offers depthcam (GPU, window, cameras, ...) "
                                                "and the fix for what is missing")
    _add_debug_flag(doctor)
    doctor.set_defaults(handler=cmd_doctor)

    models = commands.add_parser("models", help="list, fetch, inspect or convert depth models")
    models_commands = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    models_list = models_commands.add_parser("list", help="the registry and what is cached")
    fetch = models_commands.add_parser("fetch", help="download (and convert) a model into the cache")
    fetch.add_argument("name", help="a registry name (see 'depthcam models list')")
    info = models_commands.add_parser("info", help="where a model comes from and its state")
    info.add_argument("name", help="a registry name (see 'depthcam models list'), or your own .onnx file to check")
    info.add_argument("--model-size", metavar="WxH", help=f"the size to check a model at, as `run --model-size` "
                                                         f"takes it (default for a model of dynamic input size: "
                                                         f"{DYNAMIC_TRIAL_SIZE} on its free sides)")
    convert = models_commands.add_parser("convert", help="convert official FCRN weights to ONNX")
    convert.add_argument("source", metavar="SRC", help="NYU_FCRN-checkpoint.zip, the NYU_FCRN.ckpt prefix (or its "
                                                       ".index), or NYU_ResNet-UpProj.npy")
    convert.add_argument("-o", "--output", required=True, metavar="OUT.onnx", help="the ONNX file to write")
    convert.add_argument("--fp16", action="store_true",
                         help="half-precision weights and arithmetic (for GPUs; half the file)")
    for action in (models_list, fetch, info, convert):
        _add_debug_flag(action)
    _add_debug_flag(models)
    models.set_defaults(handler=cmd_models)
    return parser


# What float() reads after a '-' besides digits: `--blur -inf` was "expected one argument", not what is wrong with it
NEGATIVE_WORDS = ("inf", "infinity", "nan")


def _negative_values(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """`--focus-point -1,5`: argparse takes a value that starts with '-' and is not a plain number for an option,
    and said "expected one argument". Such a value (a '-' and a digit or a point: no option looks so) is joined to
    the option before it that takes one (--focus-point=-1,5, -o-1.mp4), so that the option's own check says what
    is wrong with it."""
    takes_value: set[str] = set()
    parsers = [parser]
    while parsers:
        for action in parsers.pop()._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
            elif action.nargs is None and action.option_strings:
                takes_value.update(action.option_strings)
    joined: list[str] = []
    for index, arg in enumerate(argv):
        if arg == "--":  # what follows is positional, as given
            return joined + argv[index:]
        negative = len(arg) > 1 and arg[0] == "-" and (arg[1].isdigit() or arg[1] == "." or
                                                       arg[1:].lower() in NEGATIVE_WORDS)
        if negative and joined and joined[-1] in takes_value:
            joined[-1] += f"={arg}" if joined[-1].startswith("--") else arg  # -o=X would name the file "=X"
        else:
            joined.append(arg)
    return joined


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """parse_args, but an unknown option is refused by the (sub)command it was given to, so that the line names
    that command's help and the option it most likely meant (the top parser knows neither)."""
    parsers = [parser]
    while parsers:
        one = parsers.pop()
        one.argv = argv  # type: ignore[attr-defined]
        parsers.extend(_subcommands(one).values())
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        chosen = parser
        for dest in ("command", "models_command"):
            chosen = _subcommands(chosen).get(getattr(args, dest, None), chosen)
        chosen.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def _terminate(signum, frame):  # SIGTERM ends a run like Ctrl-C: outputs are finalised
    raise KeyboardInterrupt


def _stop_signals_interrupt() -> dict[int, Any]:
    """SIGTERM, SIGHUP (the terminal closed, an SSH session dropped) and SIGBREAK end the command as Ctrl-C does,
    also outside a pipeline's run (loading the model, compiling the kernels, bench's sequential run), where
    SIGHUP's default action killed the process (exit 129, no report, no finalised output). Only a signal at its
    default action is taken: one started ignored (nohup, a supervisor) stays ignored, and a program that calls main()
    keeps its own handlers; nothing off the main thread, where Python installs none. Returns those replaced."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    replaced = {}
    for signum in STOP_SIGNALS:
        if signum != signal.SIGINT and signal.getsignal(signum) is signal.SIG_DFL:
            replaced[signum] = signal.signal(signum, _terminate)
    return replaced


def main(argv: list[str] | None = None, *, restore_signals: bool = True) -> int:
    """The command, for a program of its own too: the stop signals' handlers are put back as they were when it
    returns (`restore_signals`; the `depthcam` command keeps them until it has exited)."""
    parser = build_parser()
    argv = _negative_values(parser, sys.argv[1:] if argv is None else list(argv))
    args = _parse(parser, argv)
    logging.basicConfig(level=logging.WARNING, format="depthcam: %(message)s")
    debug = args.debug = args.debug or os.environ.get("DEPTHCAM_DEBUG", "").lower() not in ("", "0", "false", "no")
    replaced = _stop_signals_interrupt()
    try:
        return _handled(args, debug)
    finally:
        if restore_signals:
            for signum, handler in replaced.items():
                signal.signal(signum, handler)


def _handled(args: argparse.Namespace, debug: bool) -> int:
    """The command's handler, its failures each as one line and an exit status."""
    try:
        return args.handler(args)
    except UserError as exc:
        if debug:
            traceback.print_exc()
        print_error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        print("depthcam: interrupted", file=sys.stderr)
        return 130
    except MemoryError:  # its own message is empty
        print("depthcam: error: out of memory; close other programs, or use a smaller input or --refine live",
              file=sys.stderr)
        return 1
    except BrokenPipeError:  # `depthcam models list | head -1`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # noqa: BLE001 (one line for users; --debug for the traceback)
        if debug:
            traceback.print_exc()
        print(f"depthcam: error: {exc.__class__.__name__}: {exc} (run with --debug for details)", file=sys.stderr)
        return 1


def console_main() -> NoReturn:
    """The `depthcam` command. After a second Ctrl-C the run returns at once, leaving stage threads inside
    ONNX Runtime or a Numba kernel; the interpreter's teardown would then destroy their native thread pools
    under them ("terminate called without an active exception", exit 134). So after an interruption, or where
    such threads are left, the process ends without that teardown; what the output holds is on disk already."""
    sys.stderr = TolerantStream(sys.stderr)
    quiet_unraisable_interrupts()  # a second Ctrl-C landing in a weakref callback printed a traceback
    fit_encoding(sys.stdout)  # bench's tables and models list: a Windows code page has no '→' (the JSON was lost)
    try:
        code = main(restore_signals=False)  # set to SIG_IGN below, before the exit: no window at their default
    except KeyboardInterrupt:  # a signal after main's own handling, while it printed its last line
        print("depthcam: interrupted", file=sys.stderr)
        code = 130
    for signum in STOP_SIGNALS:  # leaving anyway: a further Ctrl-C must not interrupt the exit itself
        signal.signal(signum, signal.SIG_IGN)
    # an interrupted run too: a stage thread that has just left Python may still be inside ONNX Runtime
    if code == 130 or live_workers():  # others (tqdm's monitor) end with the interpreter
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    console_main()
