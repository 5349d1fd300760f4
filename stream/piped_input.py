"""Standard input as an input (`depthcam run - ...`): a piped picture is kept in a temporary file named by its
type, anything else (a video) is given back whole as /dev/stdin."""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from stream.errors import UserError

STDIN_NAMES = ("-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0")  # what names standard input
SNIFF_BYTES = 16  # enough for every signature in PIPED_PICTURES
# A still picture's first bytes, and the name it is read under: a pipe carries no name, so its content says it
PIPED_PICTURES = ((0, b"\x89PNG\r\n\x1a\n", ".png"), (0, b"\xff\xd8\xff", ".jpg"), (0, b"II*\0", ".tif"),
                  (0, b"MM\0*", ".tif"), (0, b"BM", ".bmp"), (8, b"WEBP", ".webp"),
                  *((4, b"ftyp" + brand, ".heic") for brand in (b"heic", b"heix", b"mif1")))
_stdin_read: Path | None = None  # what standard input was made into, once: a pipe is read once


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
    if suffix is not None:  # kept in a file of its own: needs no name for standard input
        return _keep_picture(head, suffix)
    if not named:
        raise UserError(f"input {spec} (standard input) is no photo, and a video is read from a pipe only where the "
                        f"system names standard input (/dev/stdin: Linux, macOS), not on Windows; give the video "
                        f"file itself")
    _give_back(head)
    return Path("/dev/stdin")


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
