"""Advice printed during a run, once, when it helps: a file run that will take a long time; where a camera
gives nothing, the system's permission that may be missing; an option guessed under another name."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable

from stream.frame import Frame

# From bench/RESULTS.md on a 2-core CPU: the exact filter (r = 12) against live mode at 160 px,
# 333-336 against 8-10 ms at 640x480 and 2.2-2.5 s against 46-70 ms (about 16 ms since) at 1920x1080:
# 30 is the least of these ratios.
LIVE_REFINE_SPEEDUP = 30


@dataclass
class SlowRunHint:
    """Watches the sink's frames of a file run with the exact filter; if the rest of the file will
    take longer than `threshold_s`, says once how long and that `--refine live` is far cheaper.
    The rate is measured from the first output frame on, so the pipeline's fill time is left out.
    `total` counts frames, or, with `done` (a source's seconds_done), seconds of video: where the number of
    frames is only a guess (Matroska, a paused screen recording) it gave a time to go far off."""

    total: float
    notify: Callable[[str], None]
    threshold_s: float = 600.0
    sample_frames: int = 8
    clock: Callable[[], float] = time.perf_counter
    done: Callable[[Frame], float] | None = None
    _first_at: float | None = None
    _first_done: float = 0.0
    _seen: int = 0
    _finished: bool = False

    def __call__(self, frame: Frame) -> None:
        if self._finished:
            return
        now = self.clock()
        self._seen += 1
        done = self.done(frame) if self.done is not None else float(self._seen)
        if self._first_at is None:
            self._first_at, self._first_done = now, done
            return
        if self._seen <= self.sample_frames:
            return
        self._finished = True
        elapsed = max(now - self._first_at, 1e-9)
        pace = (done - self._first_done) / elapsed  # frames, or seconds of video, a second
        if pace <= 0:
            return
        remaining_s = (self.total - done) / pace
        if remaining_s > self.threshold_s:
            self.notify(f"about {remaining_s / 60:.0f} min to go at {(self._seen - 1) / elapsed:.2g} frames/s; "
                        f"--refine live spends about {LIVE_REFINE_SPEEDUP}x less time refining (and from 640x480 up "
                        f"puts depth edges closer to the truth)")


# macOS and Windows ask the user before a program may use a camera. Refused, OpenCV's AVFoundation backend
# opens nothing or reads no frame, and Media Foundation fails to open: the same symptoms as a busy camera.
CAMERA_PERMISSION = {
    "darwin": "macOS asks once per app: allow the terminal you run depthcam from (Terminal, iTerm, VS Code) in "
              "System Settings > Privacy & Security > Camera, then start that app again",
    "win32": "Windows lets a desktop program use a camera only where Settings > Privacy & security > Camera turns "
             "on camera access and lets desktop apps access it",
}


def camera_permission_hint(platform: str | None = None) -> str | None:
    """Where `platform` (this system's by default) asks before a program uses a camera: where to allow it."""
    return CAMERA_PERMISSION.get(sys.platform if platform is None else platform)


# Options a new user guesses under another name, from the README's own words: its "presets" are given with --config
# (`--preset live-cpu` was "unrecognized arguments", with no word of --config, which no spelling is close to)
OPTION_ALIASES = {"--preset": "--config", "--presets": "--config", "--profile": "--config"}
