"""Where to focus: the largest face, a tapped point, or a fixed disparity, smoothed over time."""
from __future__ import annotations

import threading

import numpy as np

from stream.faces import BackgroundFaceFinder, Box, FaceFinder
from stream.tracking import PointTracker

# Enough samples for a region's 5 % share to hold ~1000 of them; a quantile over all of a VGA map's
# 307,200 values took 1.5 ms of every frame of the render stage, a strided sample 0.2 ms.
REGION_SAMPLES = 20_000


def nearest_large_region(disparity: np.ndarray, area_fraction: float = 0.05) -> float:
    """The disparity of the nearest region that covers at least `area_fraction` of the frame.

    The (1 - area_fraction) quantile ignores small near specks (noise, a hand at the edge), then the
    median of what is above it gives the subject's own disparity rather than its nearest tip. Read
    from a regular grid of at least REGION_SAMPLES points: a region that large spans many of them.
    """
    step = max(1, int((disparity.size / REGION_SAMPLES) ** 0.5))
    sample = disparity[step // 2::step, step // 2::step]
    threshold = float(np.quantile(sample, 1.0 - area_fraction))
    return float(np.median(sample[sample >= threshold]))


def disparity_at(disparity: np.ndarray, x: int, y: int, radius: int = 3) -> float:
    """Median disparity in a small window around (x, y) in the disparity map's own pixels."""
    h, w = disparity.shape
    x, y = min(max(x, 0), w - 1), min(max(y, 0), h - 1)
    window = disparity[max(y - radius, 0):y + radius + 1, max(x - radius, 0):x + radius + 1]
    return float(np.median(window))


# A Haar cascade misses single frames (a blink, motion blur, a half-turned head); dropping the face at
# once would swing focus to the fallback region and back. A face is kept this many frames (about half
# a second at 30 fps, and always through at least one missed detection) before focus lets it go.
FACE_HOLD_FRAMES = 15


class FocusController:
    """Chooses the focus disparity per frame and smooths it so focus does not jump.

    `point` and the mode can be changed from another thread (a click or a key in the live window).
    With `track_point` a point follows what was under it as the picture moves (stream.tracking);
    otherwise it stays on the same pixel. With `faces_in_background` (live runs) the face detector runs
    on a thread of its own and focus follows its newest finished detection; otherwise it runs inline and
    a run is repeatable.
    """

    def __init__(self, focus: str | float = "auto", point: tuple[int, int] | None = None,
                 smoothing: float = 0.25, face_interval: int = 1, face_hold: int = FACE_HOLD_FRAMES,
                 faces_in_background: bool = False, track_point: bool = True) -> None:
        self.fixed = None if focus == "auto" else float(focus)
        self.smoothing = smoothing
        self.face_interval = face_interval  # detect every n-th frame; faces move little in between
        self.face_hold = max(face_hold, face_interval + 1)  # at least one missed detection is bridged
        self._frames = 0
        self._face_seen = 0  # the frame count at which last_face was last detected
        self._point = point
        self.track_point = track_point
        self._tracker: PointTracker | None = None  # used on the render thread only; a click makes a new one
        self._point_target: float | None = None  # the focus at the point when it was last followed
        self._forget_face = False  # the mode changed: a face box from before it is stale
        self._lock = threading.Lock()
        self.faces_in_background = faces_in_background
        self._faces: FaceFinder | None = None
        self._background: BackgroundFaceFinder | None = None
        if self.fixed is None:
            self._start_faces()
        self.current: float | None = None
        self.last_face: Box | None = None

    def _start_faces(self) -> None:
        self._faces = FaceFinder()
        if self.faces_in_background:
            self._background = BackgroundFaceFinder(self._faces)

    def close(self) -> None:
        """Ends the background detector's thread, if there is one."""
        if self._background is not None:
            self._background.close()

    def set_point(self, x: int, y: int) -> None:
        with self._lock:
            self._point = (x, y)
            self._forget_face = True

    def auto(self) -> None:
        """Auto focus from now on (the window's `a`), also where the run started with a fixed value."""
        with self._lock:
            self._point = None
            self.fixed = None
            self._forget_face = True

    def _snapshot(self) -> tuple[tuple[int, int] | None, float | None, bool]:
        """The mode for this frame, read once: a click from the window's thread lands between frames."""
        with self._lock:
            snapshot = self._point, self.fixed, self._forget_face
            self._forget_face = False
        return snapshot

    def measure(self, image_bgr: np.ndarray, disparity: np.ndarray) -> float:
        """This frame's focus target, before smoothing. `disparity` is at the image's resolution."""
        return self._measure(image_bgr, disparity, *self._snapshot())

    def _measure(self, image_bgr: np.ndarray, disparity: np.ndarray, point: tuple[int, int] | None,
                 fixed: float | None, forget_face: bool = False) -> float:
        if forget_face:  # a face box from before a click is no guide to where a face is now: look afresh
            self.last_face, self._frames, self._face_seen = None, 0, 0
            if self._background is not None:
                self._background.discard()
        if point is not None:
            if not self.track_point:
                return disparity_at(disparity, *point)
            if self._tracker is None or forget_face:  # the run's first point, or a new click
                self._tracker = PointTracker(point)
                self._point_target = None
            where = self._tracker.follow(image_bgr)
            lost = self._tracker.lost_frames
            if lost and lost <= self.face_hold and self._point_target is not None:
                return self._point_target  # not followed this frame: focus holds, as for a missed face
            self._point_target = disparity_at(disparity, *where)
            return self._point_target
        self._tracker = None
        if fixed is not None:
            return fixed
        if self._faces is None:  # a fixed focus switched to auto: the cascade loads on first use
            self._start_faces()
        self._look_for_faces(image_bgr)
        self._frames += 1
        if self.last_face is not None:
            x, y, w, h = self.last_face
            # The central part of the face box: the box's corners are often background.
            return float(np.median(disparity[y + h // 4:y + 3 * h // 4, x + w // 4:x + 3 * w // 4]))
        return nearest_large_region(disparity)

    def _look_for_faces(self, image_bgr: np.ndarray) -> None:
        """Every face_interval-th frame asks the detector; a detection counts from the frame it was
        asked about, so a background detection that finishes late holds the face no longer."""
        asking = self._frames % self.face_interval == 0
        if self._background is None:
            if asking:
                self._take_detection(self._faces.largest_face(image_bgr), self._frames)  # type: ignore[union-attr]
            return
        for detection in self._background.results():
            self._take_detection(detection.face, detection.tag)
        if asking:
            self._background.submit(image_bgr, self._frames)

    def _take_detection(self, face: Box | None, frame: int) -> None:
        if face is not None:
            self.last_face, self._face_seen = face, frame
        elif frame - self._face_seen >= self.face_hold:
            self.last_face = None

    def update(self, image_bgr: np.ndarray, disparity: np.ndarray) -> float:
        point, fixed, forget_face = self._snapshot()
        target = self._measure(image_bgr, disparity, point, fixed, forget_face)
        if self.current is None or (fixed is not None and point is None):
            self.current = target
        else:
            self.current += self.smoothing * (target - self.current)
        return self.current
