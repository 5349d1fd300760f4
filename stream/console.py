"""Messages for the user while a run goes on."""
from __future__ import annotations

import codecs
import re
import shlex
import subprocess
import sys

from tqdm import tqdm

# What a message's few non-ASCII characters become where the console or file cannot encode them: a Windows
# console redirected to a file or a pipe writes in the ANSI code page (cp1252 has no '→'), and stdout there
# raised UnicodeEncodeError, which ended `depthcam bench > log.txt` after the benchmark, its JSON unwritten.
STAND_INS = {"→": "->", "←": "<-", "–": "-", "—": "-", "−": "-", "×": "x", "·": "|", "°": " deg",
             "²": "^2", "≥": ">=", "≤": "<=", "…": "...", "µ": "u", "σ": "sigma", "Δ": "delta", "’": "'",
             "‘": "'", "“": '"', "”": '"'}
STAND_IN_ERRORS = "depthcam-stand-in"
# Video done past the length announced that is a rounding or a last picture's hold (a second at 1 fps), not more
# video than announced.
OVERRUN_S = 1.0


def _stand_in(error: UnicodeError) -> tuple[str, int]:
    """The codec error handler: a stand-in from STAND_INS, else Python's \\u escape (nothing is dropped)."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text = error.object[error.start:error.end]
    return "".join(STAND_INS.get(char) or char.encode("ascii", "backslashreplace").decode("ascii")
                   for char in text), error.end


codecs.register_error(STAND_IN_ERRORS, _stand_in)


def fit_encoding(stream) -> None:
    """Make `stream` (a text stream, sys.stdout or sys.stderr) write a stand-in for a character its encoding
    lacks instead of raising. Streams that are UTF already, closed, or not text streams are left as they are."""
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("_", "-")
    if encoding.startswith("utf"):
        return
    try:
        stream.reconfigure(errors=STAND_IN_ERRORS)
    except (AttributeError, ValueError, OSError):  # no reconfigure (a test's StringIO), or closed
        pass


def notify(message: str) -> None:
    """One line on stderr; tqdm.write keeps a progress bar on screen intact."""
    tqdm.write(f"depthcam: {message}", file=sys.stderr)


# What a Windows shell (cmd or PowerShell) takes into a word as it is: a path's backslashes and drive colon need no
# quoting there. POSIX's single quotes are no quotes to cmd: `--model 'C:\models\depth.onnx'` named a file whose
# name began with a quote. (PowerShell reads , and a leading @ as its own: quoted.)
WINDOWS_PLAIN_WORD = re.compile(r"[\w\-.:\\/+=]+")


def command_word(text: str, platform: str | None = None) -> str:
    """`text` (a path, mostly) as one word of a command a message suggests, quoted as this system's shell reads it:
    POSIX shell quoting, or on Windows double quotes only where needed (cmd and PowerShell both read those)."""
    if (platform or sys.platform) != "win32":
        return shlex.quote(text)
    if WINDOWS_PLAIN_WORD.fullmatch(text):
        return text
    if '"' in text:  # no Windows file name holds one: the C runtime's own escaping
        return subprocess.list2cmdline([text])
    trailing = text[len(text.rstrip("\\")):]  # doubled: a backslash before the closing quote would escape it
    return f'"{text}{trailing}"'


def rate_text(fps: float) -> str:
    """A frame rate as editors name it: 23.976, 29.97, 59.94, 119.88, 24, 25 (three decimals at most, trailing
    zeros dropped; `:.3g` said 24 for 23.976 and 30 for 29.97); under 1 fps, three significant digits."""
    if fps < 1:
        return f"{fps:.3g}"
    return f"{fps:.3f}".rstrip("0").rstrip(".")


# What each stage does, for the lines that tell a large photo's run stage by stage ({size}: its WxH)
STAGE_DOING = {"depth": "estimating the depth", "refine": "refining the depth at {size}",
               "render": "rendering the depth of field at {size}"}


def stage_line(stage: str, width: int, height: int) -> str:
    """'refining the depth at 8064x6048 ...': a stage of a large photo's run as it starts."""
    doing = STAGE_DOING.get(stage, f"running the {stage} stage")
    return f"{doing.format(size=f'{width}x{height}')} ..."


def writing_line(names: list[str]) -> str | None:
    """'writing out.png and out_depth.png ...' as a large photo's files are written; None where none is."""
    return f"writing {' and '.join(names)} ..." if names else None


class ProgressBar(tqdm):
    """A progress bar (a run's frames, a model's download) without tqdm's monitor thread, which tqdm starts with a
    first bar and never ends: a library's every `app.run(...)` or first fetch left one behind. The monitor only
    refreshes a bar whose `miniters` grew above 1 and then waited `maxinterval`; this one keeps `miniters=1`, so
    each update checks the time itself (one clock read) and the monitor would never act on it."""

    monitor_interval = 0

    def __init__(self, *args, **options) -> None:
        super().__init__(*args, miniters=1, **options)
        measure = getattr(self, "dynamic_ncols", None)
        if measure:  # tqdm measures a terminal never sized (`script`, some consoles' ptys) as -1x-1, and shows nothing
            self.dynamic_ncols = lambda stream: known_size(*measure(stream))
            if (self.ncols, self.nrows) != known_size(self.ncols, self.nrows):
                self.ncols, self.nrows = known_size(self.ncols, self.nrows)
                self.refresh()  # the first state, which tqdm left out


def known_size(columns: int | None, rows: int | None) -> tuple[int | None, int | None]:
    """A terminal's size as tqdm takes it, None for a side of no size: a -1 row count made tqdm write no bar at all
    (the whole run's progress missing), a -1 column count a bar of no width."""
    return (columns if columns and columns > 0 else None), (rows if rows and rows > 0 else None)


class TimeProgressBar(ProgressBar):
    """Progress through seconds of video, for inputs whose number of frames is only a guess (Matroska, WebM,
    MPEG-TS, a part taken with --start/--duration): a 4-hour Matroska with a long pause counted "20/432010" frames
    and its time left was nonsense; this says "1:25:23/4:00:00 of video", the time left at the rate video goes by.
    Where the video goes on past the length announced, which is then no length at all (MPEG-TS clips joined with
    `cat`, whose length FFmpeg guesses from the first and last times), the bar gives way to a count of seconds:
    it sat at 100% for the whole second clip."""

    OPEN_ENDED = "{done} of video, more than the {length} announced [{elapsed}]"

    def __init__(self, total_seconds: float, **options) -> None:
        self.announced = total_seconds
        super().__init__(total=total_seconds, unit="s",
                         bar_format="{l_bar}{bar}| {done}/{length} of video [{elapsed}<{remaining}]", **options)

    @property
    def format_dict(self) -> dict:
        shown = super().format_dict
        return {**shown, "done": video_time(shown["n"]), "length": video_time(self.announced)}

    def reach(self, seconds: float) -> None:
        """Move on to `seconds` of video done; never back, and never past the end by a rounding or a last
        picture's hold (tqdm then warned and showed a negative time left). Further past it, no end is known."""
        if self.total is not None and seconds > self.total + OVERRUN_S:
            self.total, self.bar_format = None, self.OPEN_ENDED
        end = seconds if self.total is None else min(seconds, self.total)
        if end > self.n:
            self.update(end - self.n)
            if self.total is not None:
                self.n = min(self.n, self.total)


def video_time(seconds: float | None) -> str:
    """'12.4s' under a minute, else tqdm's '01:25' or '1:25:23'."""
    if seconds is None:
        return "?"
    return f"{seconds:.1f}s" if seconds < 60 else tqdm.format_interval(seconds)


class TolerantStream:
    """stderr that a run never fails on: closed (`2>&-`) or on a full disk (`2>/dev/full`), the messages are
    lost, not the output (the progress bar and the stage lines raised, and the run stopped before its file).
    A character the stream cannot encode is written as a stand-in ('→' as '->'), not lost with its line."""

    def __init__(self, stream) -> None:
        self._stream = stream
        fit_encoding(stream)

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text) if self._stream is not None else len(text)
        except UnicodeEncodeError:  # a stream fit_encoding could not change
            pass
        except (OSError, ValueError):  # ENOSPC, EPIPE, or the stream closed
            return len(text)
        try:
            self._stream.write(_stand_ins_for(text, getattr(self._stream, "encoding", None)))
        except (OSError, ValueError):
            pass
        return len(text)

    def flush(self) -> None:
        try:
            if self._stream is not None:
                self._stream.flush()
        except (OSError, ValueError):
            pass

    def isatty(self) -> bool:
        try:
            return self._stream is not None and self._stream.isatty()
        except (OSError, ValueError):
            return False

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _stand_ins_for(text: str, encoding: str | None) -> str:
    """`text` with the characters `encoding` lacks replaced by their stand-ins (ASCII, which every code page has)."""
    try:
        return text.encode(encoding or "ascii", STAND_IN_ERRORS).decode(encoding or "ascii")
    except LookupError:  # an encoding Python does not know
        return text.encode("ascii", STAND_IN_ERRORS).decode("ascii")
