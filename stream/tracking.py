"""Follows a tapped focus point across frames, so focus stays on the subject that was tapped as it moves.

Pyramidal Lucas-Kanade optical flow (OpenCV) on a small grey copy of each frame, for a 3 x 3 patch of
points around the tapped one (one point on a plain shirt has nothing to follow; the patch's median
motion has), each checked forward and backward, starting from the last frame's motion (a subject moving
steadily is found where it is heading). Given the depth map, only the points whose flow window lies on the
tapped point's own surface count, so a point on a subject's outline follows the subject and one on the wall
beside it stays with the wall (before, each went a third of the way with the other). Where most of the
patch does not come back to where it started (occluded, left the frame, too fast, no texture) the point is
not moved rather than sent wherever the flow guessed, and `lost_frames` counts on (stream.focus then holds
the focus, as for a missed face); each lost frame the point is looked for by its look when last followed
(a 25 px patch, normalised correlation >= 0.8) within a radius that widens the longer it is gone, so a
subject that was hidden for a moment is found again where it reappears. A textured subject crossing a
textured wall is followed at up to 16 px a frame when 60 px wide, 20 px a frame when 120 px wide (at the
tracking width; at 30 fps 480 and 600 px a second; tests/test_focus.py, bench/RESULTS.md). It costs the
render stage about 1.5 ms a frame at 640x480 and 3.5 ms at 1920x1080 (on two cores), and only while a point
is set.
"""
from __future__ import annotations

import cv2
import numpy as np

from kernels.backend import to_host

TRACK_WIDTH = 640  # frames are tracked at most this wide: the flow's cost does not grow with the input
WINDOW = (15, 15)  # small: a larger window takes in more of a static background around a small subject
LEVELS = 3
PATCH_STEP = 8.0  # px between the patch's points, at the tracking width
MAX_ROUND_TRIP_PX = 1.0  # forward then backward must land this close to the start, at the tracking width
CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)
# Lost (occluded, too fast), the point is looked for again by its look when last followed: a patch this
# far each side of it, within a radius that widens the longer it is gone, accepted above this correlation.
TEMPLATE_HALF = 12
SEARCH_RADIUS = 48
SEARCH_GROWTH = 16  # px more a lost frame
SEARCH_MAX = 160
MIN_MATCH = 0.8
# Given the depth map, only the patch's points whose flow window lies on the point's own surface (within this
# disparity of it) say how it moves: a point tapped on a subject's outline had a third of its patch on the wall
# behind and a third straddling the outline, and followed the wall as the subject walked off. Where none of the
# windows lies wholly on it (a thin object), the points on it count.
SURFACE_TOLERANCE = 0.1
_REACH = np.array([(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)], np.float32) * (WINDOW[0] // 2)
_PATCH = np.array([(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)], np.float32) * PATCH_STEP


class PointTracker:
    """The point in frame pixels; `follow(frame)` moves it with the picture."""

    def __init__(self, point: tuple[int, int]) -> None:
        self.point = (float(point[0]), float(point[1]))
        self.lost_frames = 0  # consecutive frames the point could not be followed (held in place)
        self._previous: np.ndarray | None = None
        self._scale = 1.0
        self._motion = np.zeros(2, np.float32)  # the last frame's motion, at the tracking width
        self._template: np.ndarray | None = None  # the point's surroundings when last followed
        self._counted: np.ndarray | None = None  # the patch's points on the point's surface, by the last depth map

    def follow(self, image_bgr: np.ndarray, disparity: np.ndarray | None = None) -> tuple[int, int]:
        """The point's position in this frame, in whole frame pixels inside the frame. `disparity`, the frame's
        depth at its resolution (NumPy or CuPy), where given, keeps the patch to the point's own surface."""
        grey = self._grey(image_bgr)
        if self._previous is not None and self._previous.shape == grey.shape:
            self._step(self._previous, grey)
            if self.lost_frames:
                self._find_again(grey)
        if not self.lost_frames:
            self._keep_template(grey)
        self._previous = grey
        # read where the next step's patch starts, in this frame's map: the surface the points are on now
        self._counted = None if disparity is None else self._on_surface(disparity, self._patch(*grey.shape[::-1]))
        height, width = image_bgr.shape[:2]
        x, y = self.point
        return min(max(int(round(x)), 0), width - 1), min(max(int(round(y)), 0), height - 1)

    def _grey(self, image_bgr: np.ndarray) -> np.ndarray:
        height, width = image_bgr.shape[:2]
        self._scale = min(1.0, TRACK_WIDTH / width)
        grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
        if self._scale < 1.0:
            size = (max(1, round(width * self._scale)), max(1, round(height * self._scale)))
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        return grey

    def _patch(self, width: int, height: int) -> np.ndarray:
        """The patch's points around the point, at the tracking width."""
        # A point at the frame's edge (--focus-point 639,479) has its patch, and the flow's windows around
        # it, moved inside the frame whole: half outside, it was never followed; the point moves as they do.
        margin = PATCH_STEP + WINDOW[0] // 2
        far_side = np.maximum([width - 1 - margin, height - 1 - margin], margin)
        return np.clip(np.array(self.point, np.float32) * self._scale, margin, far_side).astype(np.float32) + _PATCH

    def _step(self, previous: np.ndarray, current: np.ndarray) -> None:
        height, width = current.shape
        centre = np.array(self.point, np.float32) * self._scale
        start = self._patch(width, height).reshape(-1, 1, 2)
        guess = start + self._motion
        ahead, found, _ = cv2.calcOpticalFlowPyrLK(previous, current, start, guess, winSize=WINDOW, maxLevel=LEVELS,
                                                   criteria=CRITERIA, flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
        back, found_back, _ = cv2.calcOpticalFlowPyrLK(current, previous, ahead, start.copy(), winSize=WINDOW,
                                                       maxLevel=LEVELS, criteria=CRITERIA,
                                                       flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
        round_trip = np.linalg.norm((back - start)[:, 0], axis=1)
        counted = np.ones(len(start), bool) if self._counted is None else self._counted
        good = (found[:, 0] == 1) & (found_back[:, 0] == 1) & (round_trip <= MAX_ROUND_TRIP_PX) & counted
        if 2 * good.sum() > counted.sum():
            motion = np.median((ahead - start)[good, 0], axis=0)
            x, y = centre + motion
            if 0 <= x < width and 0 <= y < height:
                self.point = (float(x) / self._scale, float(y) / self._scale)
                self._motion = motion.astype(np.float32)
                self.lost_frames = 0
                return
        self._motion[:] = 0.0
        self.lost_frames += 1

    def _on_surface(self, disparity: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Which of the patch's points (at the tracking width) count: those whose flow window's middle and
        sides lie on the surface of the patch's middle point, else those on it."""
        height, width = disparity.shape[:2]
        reach = points[:, None, :] + _REACH  # each point, then its window's four sides
        xy = np.clip(np.rint(reach / self._scale).astype(int), 0, [width - 1, height - 1])
        (x0, y0), (x1, y1) = xy.reshape(-1, 2).min(axis=0), xy.reshape(-1, 2).max(axis=0)
        window = np.asarray(to_host(disparity[y0:y1 + 1, x0:x1 + 1]), np.float32)  # one copy from a GPU
        values = window[xy[..., 1] - y0, xy[..., 0] - x0]
        on = np.abs(values - values[len(points) // 2, 0]) <= SURFACE_TOLERANCE
        whole = on.all(axis=1)
        return whole if whole.any() else on[:, 0]

    def _keep_template(self, grey: np.ndarray) -> None:
        x, y = (int(round(v * self._scale)) for v in self.point)
        h = TEMPLATE_HALF
        patch = grey[y - h:y + h + 1, x - h:x + h + 1]
        # at the border, or with nothing to recognise it by, the last good one is kept
        if y >= h and x >= h and patch.shape == (2 * h + 1, 2 * h + 1) and patch.std() > 4.0:
            self._template = patch.copy()

    def _find_again(self, grey: np.ndarray) -> None:
        """Look for the template around where the point was lost; move the point there on a good match."""
        if self._template is None:
            return
        h = TEMPLATE_HALF
        radius = min(SEARCH_RADIUS + SEARCH_GROWTH * self.lost_frames, SEARCH_MAX)
        x, y = (int(round(v * self._scale)) for v in self.point)
        height, width = grey.shape
        x0, y0 = max(x - radius - h, 0), max(y - radius - h, 0)
        x1, y1 = min(x + radius + h + 1, width), min(y + radius + h + 1, height)
        if x1 - x0 <= 2 * h or y1 - y0 <= 2 * h:
            return
        scores = cv2.matchTemplate(grey[y0:y1, x0:x1], self._template, cv2.TM_CCOEFF_NORMED)
        _, best, _, (bx, by) = cv2.minMaxLoc(scores)
        if best >= MIN_MATCH:
            self.point = ((x0 + bx + h) / self._scale, (y0 + by + h) / self._scale)
            self.lost_frames = 0
