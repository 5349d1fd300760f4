"""Face detection for auto focus: OpenCV's Haar cascade, inline or on a thread of its own.

A cascade pass takes 10-25 ms of CPU. In a file run it runs inline, so every run of a file focuses
alike. In a live run it runs on its own thread on the newest frame handed to it: the render stage
would otherwise stall every few frames for as long as a whole render takes, and the display would
stutter. A face box a few frames old is still on the face.
"""
from __future__ import annotations

import threading
from collections.abc import Hashable
from dataclasses import dataclass

import cv2
import numpy as np

from stream.workers import worker_thread

Box = tuple[int, int, int, int]
Tag = Hashable  # the caller's label of a frame: stream.focus gives its frame count and time


@dataclass(frozen=True)
class PreparedImage:
    """A frame made ready for the cascade: its own small grey copy, safe to hand to another thread."""

    grey: np.ndarray
    scale: float  # grey pixels per frame pixel


class FaceFinder:
    """OpenCV's bundled frontal-face Haar cascade, run on a downscaled grey frame for speed."""

    def __init__(self, detect_width: int = 320, min_face_fraction: float = 0.12) -> None:
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise RuntimeError(f"OpenCV's face cascade could not be loaded from {path}")
        self.detect_width = detect_width
        self.min_face_fraction = min_face_fraction  # portrait subjects are large; skipping tiny scales is 3x faster

    def prepare(self, image_bgr: np.ndarray) -> PreparedImage:
        """Downscale and grey the frame (about 0.3 ms at 640x480: cheap enough for any thread)."""
        height, width = image_bgr.shape[:2]
        scale = min(1.0, self.detect_width / width)
        # at least one row: a panorama strip (700x1) would round to none, which cv2.resize refuses
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA) if scale < 1 else image_bgr
        return PreparedImage(cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)), scale)

    def detect(self, prepared: PreparedImage) -> Box | None:
        """(x, y, w, h) of the largest face in full-frame pixels, or None. The costly part."""
        grey = prepared.grey
        smallest = max(int(self.min_face_fraction * grey.shape[1]), 16)
        faces = self.cascade.detectMultiScale(grey, scaleFactor=1.2, minNeighbors=5, minSize=(smallest, smallest))
        if len(faces) == 0:
            return None
        x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
        return tuple(round(v / prepared.scale) for v in (x, y, w, h))  # type: ignore[return-value]

    def largest_face(self, image_bgr: np.ndarray) -> Box | None:
        return self.detect(self.prepare(image_bgr))


@dataclass(frozen=True)
class Detection:
    tag: Tag  # the caller's label of the frame it was asked about
    face: Box | None


class BackgroundFaceFinder:
    """Runs FaceFinder on a thread of its own. `submit` hands over a frame and returns at once; a frame
    still waiting when the next arrives is replaced by it (the newest frame is the one that matters).
    `results` returns the detections finished since the last call, oldest first.
    """

    def __init__(self, finder: FaceFinder) -> None:
        self.finder = finder
        self._job: tuple[PreparedImage, Tag] | None = None
        self._done: list[Detection] = []
        self._error: BaseException | None = None
        self._closed = False
        self._generation = 0  # raised by discard(): a detection under way when it came is dropped
        self._wake = threading.Condition()
        self._thread = worker_thread("face-finder", self._run)
        self._thread.start()

    def submit(self, image_bgr: np.ndarray, tag: Tag) -> None:
        prepared = self.finder.prepare(image_bgr)  # a copy: the frame itself may change hands meanwhile
        with self._wake:
            self._job = (prepared, tag)
            self._wake.notify()

    def results(self) -> list[Detection]:
        """Detections finished since the last call. A failure on the worker is raised here."""
        with self._wake:
            if self._error is not None:
                raise self._error
            done, self._done = self._done, []
        return done

    def discard(self) -> None:
        """Forget the waiting frame and the finished detections (the focus mode changed)."""
        with self._wake:
            self._job, self._done = None, []
            self._generation += 1

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=2.0)

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._job is None and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                prepared, tag = self._job  # type: ignore[misc]
                self._job, generation = None, self._generation
            try:
                face = self.finder.detect(prepared)
            except BaseException as exc:  # noqa: BLE001 (raised on the caller's thread by results())
                with self._wake:
                    self._error = exc
                return
            with self._wake:
                if generation == self._generation:
                    self._done.append(Detection(tag, face))
