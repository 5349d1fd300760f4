"""Messages for the user while a run goes on."""
from __future__ import annotations

import sys


def notify(message: str) -> None:
    """One line on stderr; tqdm.write keeps a progress bar on screen intact."""
    from tqdm import tqdm

    tqdm.write(f"depthcam: {message}", file=sys.stderr)


class TolerantStream:
    """stderr that a run never fails on: closed (`2>&-`) or on a full disk (`2>/dev/full`), the messages are
    lost, not the output (the progress bar and the stage lines raised, and the run stopped before its file)."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text) if self._stream is not None else len(text)
        except (OSError, ValueError):  # ENOSPC, EPIPE, or the stream closed
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
