"""Standard input as an input (`depthcam run - ...`): a piped picture is kept in a temporary file named by its
type; pictures one after another (an MJPEG or PNG stream: `ffmpeg -f mjpeg -`, `libcamera-vid --codec mjpeg -o -`)
and anything else (a video) are given back whole as /dev/stdin."""
from __future__ import annotations

import os
import sys
import threading
from fractions import Fraction
from pathlib import Path

from stream.console import notify
from stream.errors import UserError

STDIN_NAMES = ("-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0")  # what names standard input
SNIFF_BYTES = 16  # enough for every signature in PIPED_PICTURES
# A still picture's first bytes, and the name it is read under: a pipe carries no name, so its content says it
PIPED_PICTURES = ((0, b"\x89PNG\r\n\x1a\n", ".png"), (0, b"\xff\xd8\xff", ".jpg"), (0, b"II*\0", ".tif"),
                  (0, b"MM\0*", ".tif"), (0, b"BM", ".bmp"), (8, b"WEBP", ".webp"),
                  *((4, b"ftyp" + brand, ".heic") for brand in (b"heic", b"heix", b"mif1")))
# Pictures whose bytes tell where they end, which a stream puts one after another: (signature, what the stream is
# called, FFmpeg's raw demuxer for it, which takes a rate). FFmpeg reads such a stream as a video.
STREAMED = {".jpg": (b"\xff\xd8\xff", "JPEG pictures (MJPEG)", "mjpeg"),
            ".png": (b"\x89PNG\r\n\x1a\n", "PNG pictures", "png_pipe")}
PIPE_RATE = 25  # the rate FFmpeg reads a stream of pictures at (without --input-rate): it has no times of its own
FIRST_PICTURE_MAX = 256 << 20  # a first picture's end is looked for this far; a bigger one is kept whole as a photo
PADDING_MAX = 4096  # zero or 0xFF bytes allowed between two pictures of a stream
# What makes a JPEG followed by another one photo, not a stream: its second picture belongs to it (CIPA's Multi-Picture
# Format: a camera's large preview, an iPhone's HDR gain map; Ultra HDR / JPEG_R's gain map, described in XMP). An
# MJPEG stream's pictures carry neither.
ONE_PHOTO_MARKS = (b"MPF\0", b"hdrgm:", b"GContainer")
_stdin_read: Path | None = None  # what standard input was made into, once: a pipe is read once
# the type (STREAMED's key) of the pictures standard input streams, once read; None for anything else. Its line (the
# rate it is read at) is said when it opens as a video (sources.open_source), where the rate given is known
_stdin_stream: str | None = None


def tell_default_rate(spec: str, input_rate: Fraction | None) -> None:
    """Says what standard input streaming pictures is read at, and how to give its own rate, where no rate is given
    (`input_rate`, --input-rate): once it has been looked at (input_path), as it opens as a video."""
    if input_rate is None and spec in STDIN_NAMES and _stdin_stream is not None:
        notify(_stream_line(_stdin_stream))


def no_place_beside(spec: str) -> str:
    """The refusal of an input with no folder of its own for an output beside it (standard input, a named pipe, a
    device) when no -o is given."""
    if spec in STDIN_NAMES:
        return f"input {spec} is standard input, so there is no place beside it for the output; give one with -o"
    return f"input {spec} is a pipe or a device, so there is no place beside it for the output; give one with -o"


def piped(spec: str) -> bool:
    """Whether a path input is standard input, a named pipe, a socket or a device: read once, with no folder of its
    own. Told without reading it (it is looked at only after the outputs are checked)."""
    return spec in STDIN_NAMES or pipe_kind(spec) is not None


def pipe_kind(path: str) -> str | None:
    """What a path that is no file on a disk is: "named pipe", "socket" or "device" (an input read once, an output
    whose reader takes the frames as they come); None for a file, a folder or nothing there."""
    import stat

    try:
        mode = os.stat(os.path.expanduser(path)).st_mode
    except (OSError, ValueError):  # none there, a name too long: opening it says so
        return None
    if stat.S_ISFIFO(mode):
        return "named pipe"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else None


def input_path(spec: str) -> Path:
    """The file a path input is read from. Standard input (`-`, /dev/stdin) through a pipe is looked at first: a
    picture is kept in a temporary file named by its type, so that it is processed as the photo it is; anything else
    is given back whole as /dev/stdin (FFmpeg reads a video from a pipe)."""
    global _stdin_read
    if spec not in STDIN_NAMES:
        return Path(spec).expanduser()
    if _stdin_read is None:
        _stdin_read = _read_stdin(spec)
    return _stdin_read


def _read_stdin(spec: str) -> Path:
    import stat

    global _stdin_stream
    _stdin_stream = None  # until a stream of pictures is found
    if sys.stdin is None or os.isatty(0):
        raise UserError(f"input {spec} is standard input, which is the terminal here; pipe a video or a photo into it "
                        f"(e.g. cat clip.ts | depthcam run - -o out.mp4), or give the file itself")
    named = _stdin_named()
    if named and stat.S_ISREG(os.fstat(0).st_mode):  # `< clip.mp4`: the file itself, which can be read again
        return Path("/dev/stdin")
    head = _read_head(0, SNIFF_BYTES)
    if not head:
        raise UserError(f"input {spec} (standard input) is empty: nothing came through the pipe; pipe a video or a "
                        f"photo into it")
    suffix = next((suffix for at, signature, suffix in PIPED_PICTURES if head[at:at + len(signature)] == signature),
                  None)
    if suffix is not None:
        read, streamed = _first_picture(head, suffix)
        if not streamed:  # kept in a file of its own: needs no name for standard input
            return _keep_picture(read, suffix)
        if not named:
            raise UserError(f"input {spec} (standard input) is a stream of {STREAMED[suffix][1]}, and a video is "
                            f"read from a pipe only where the system names standard input (/dev/stdin: Linux, "
                            f"macOS), not on Windows; save it to a file and give that")
        _stdin_stream = suffix  # its line waits for the rate given: tell_default_rate
        head = read
    if not named:
        raise UserError(f"input {spec} (standard input) is no photo, and a video is read from a pipe only where the "
                        f"system names standard input (/dev/stdin: Linux, macOS), not on Windows; give the video "
                        f"file itself")
    _give_back(head)
    return Path("/dev/stdin")


def _stream_line(suffix: str) -> str:
    """What a stream of pictures is read as, and how to give it its own rate (FFmpeg's raw demuxer takes one)."""
    kind, demuxer = STREAMED[suffix][1:]
    return (f"standard input is a stream of {kind}, which tells no frame rate: read as a video at {PIPE_RATE} fps, "
            f"FFmpeg's default; give its own rate with --input-rate (e.g. --input-rate 30), or pass it through ffmpeg "
            f"on the way: ... | ffmpeg -f {demuxer} -framerate 30 -i - -c copy -f matroska - | depthcam run - ...")


def _first_picture(head: bytes, suffix: str) -> tuple[bytes, bool]:
    """The first picture (and what was read after it), and whether another of its type follows it: a stream of
    pictures (the same bytes as a file are an MJPEG or image2pipe video). A picture of another type, one whose end
    is not found (cut short, damaged, too big) and one followed by anything else (a Motion Photo's video) are a
    photo, whole, as before."""
    if suffix not in STREAMED:
        return head, False
    signature = STREAMED[suffix][0]
    data = bytearray(head)
    find_end = _JpegEnd() if suffix == ".jpg" else _PngEnd()
    while (end := find_end(data)) is None and len(data) < FIRST_PICTURE_MAX:
        if not (chunk := os.read(0, 1 << 16)):
            break
        data += chunk
    if end is None or end < 0 or getattr(find_end, "one_photo", False):
        return bytes(data), False
    while len(data) < end + PADDING_MAX + len(signature) and (chunk := os.read(0, 1 << 16)):
        data += chunk
        if data[end:end + len(signature)] == signature or data[end:].strip(b"\0\xff"):
            break  # the next picture, or what follows is no padding
    return bytes(data), _next_starts(data, end, signature)


def _next_starts(data: bytearray, end: int, signature: bytes) -> bool:
    """Whether another picture starts after `end`, past zero or 0xFF padding between them (a V4L2 buffer dump:
    `v4l2-ctl --stream-to=-`; FFmpeg's MJPEG demuxer reads such a stream whole)."""
    at, last = end, min(len(data), end + PADDING_MAX)
    while at < last and data[at] in (0, 0xFF) and data[at:at + len(signature)] != signature:
        at += 1
    return data[at:at + len(signature)] == signature


class _JpegEnd:
    """Where a JPEG ends (after its EOI marker) as its bytes come: None until known, -1 for no JPEG. Segments are
    skipped by their lengths (an EXIF thumbnail's own end marker is inside one); in a scan's coded data a 0xFF is
    followed by 0 or a restart marker, and any other marker ends the scan."""

    def __init__(self) -> None:
        self.at, self.in_scan = 2, False  # after SOI
        self.one_photo = False  # an APP1 (XMP) or APP2 (MPF) segment says a picture that follows is part of it

    def __call__(self, data: bytearray) -> int | None:
        while True:
            if self.in_scan:
                found = data.find(b"\xff", self.at)
                if found < 0 or found + 1 >= len(data):
                    self.at = len(data) if found < 0 else found
                    return None
                after = data[found + 1]
                if after == 0 or 0xD0 <= after <= 0xD7 or after == 0xFF:  # a coded 0xFF, a restart, fill bytes
                    self.at = found + (1 if after == 0xFF else 2)
                    continue
                self.at, self.in_scan = found, False
            if self.at + 1 >= len(data):
                return None
            if data[self.at] != 0xFF:
                return -1
            marker = data[self.at + 1]
            if marker == 0xD9:
                return self.at + 2
            if marker == 0xFF or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # fill, restart, TEM: no length
                self.at += 1 if marker == 0xFF else 2
                continue
            if marker == 0xD8 or marker == 0x00:
                return -1
            if self.at + 4 > len(data):
                return None
            length = data[self.at + 2] << 8 | data[self.at + 3]
            if length < 2:
                return -1
            if self.at + 2 + length > len(data):
                return None
            if marker in (0xE1, 0xE2):
                segment = bytes(data[self.at + 4:self.at + 2 + length])
                self.one_photo |= any(mark in segment for mark in ONE_PHOTO_MARKS)
            self.at += 2 + length
            self.in_scan = marker == 0xDA  # start of scan: its coded data follows its header


class _PngEnd:
    """Where a PNG ends (after its IEND chunk) as its bytes come: None until known, -1 for no PNG."""

    def __init__(self) -> None:
        self.at = 8  # after the signature

    def __call__(self, data: bytearray) -> int | None:
        while self.at + 8 <= len(data):
            length = int.from_bytes(data[self.at:self.at + 4], "big")
            kind = bytes(data[self.at + 4:self.at + 8])
            if length >= 1 << 31 or not kind.isalpha():
                return -1
            end = self.at + 12 + length  # length, type, data, CRC
            if kind == b"IEND":
                return end if end <= len(data) else None
            self.at = end
        return None


def _stdin_named() -> bool:
    """Whether the system has a name for standard input, which FFmpeg opens a video by (Windows has none)."""
    return os.path.exists("/dev/stdin")


def _read_head(fd: int, size: int) -> bytes:
    """Up to `size` first bytes (a pipe may give fewer at a time), fewer only at the end of the input."""
    head = b""
    while len(head) < size:
        chunk = os.read(fd, size - len(head))
        if not chunk:
            break
        head += chunk
    return head


def _keep_picture(head: bytes, suffix: str) -> Path:
    """A piped picture, whole, in a temporary file (removed at exit) that the photo path reads as any photo."""
    import atexit
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="depthcam-stdin-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / f"stdin{suffix}"
    with open(path, "wb") as out:
        out.write(head)
        while chunk := os.read(0, 1 << 20):
            out.write(chunk)
    return path


def _give_back(head: bytes) -> None:
    """Standard input whole again after its first bytes were read: descriptor 0 becomes a pipe that a thread fills
    with `head`, then with the rest as it comes, so that /dev/stdin gives it from its first byte."""
    rest = os.dup(0)
    read_end, write_end = os.pipe()
    os.dup2(read_end, 0)
    os.close(read_end)

    def copy() -> None:
        try:
            chunk = head
            while chunk:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(write_end, view):]
                chunk = os.read(rest, 1 << 16)
        except OSError:  # a read error on the real input: what came so far is what the run gets
            pass
        # A run that ends before its input leaves this daemon thread blocked in a write (descriptor 0, the pipe's
        # read end, stays open in this process): it ends with the process.
        finally:
            os.close(write_end)
            os.close(rest)

    threading.Thread(target=copy, name="stdin-copy", daemon=True).start()
