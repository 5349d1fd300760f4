"""Where to focus: a face (the one followed, else the weightiest), a tapped point, or a fixed disparity,
smoothed over time."""
from __future__ import annotations

import threading
from collections import deque

import cv2
import numpy as np

from kernels.backend import to_host
from kernels.temporal import REFERENCE_FPS
from stream.faces import FINE_CROP, SWITCH_RATIO, BackgroundFaceFinder, Box, FaceFinder, face_weight, same_face
from stream.tracking import PointTracker

# Without a face, what is nearest is seldom the subject: the floor or the table runs toward the camera along the
# bottom edge (scikit-image's motorcycle, the cat's chest under her eyes, the astronaut's helmet before her face: the
# nearest 5 % read 0.98-0.995 against the subjects' 0.62-0.85), and a gantry or a door frame at a side is nearer
# than what the picture is framed on (the rocket). So the subject is the nearest SUBJECT_SHARE of the frame weighted
# toward its middle columns (a column at a side weighs SIDE_WEIGHT of a middle one), leaving out a ground plane.
SUBJECT_SHARE = 0.1
SIDE_WEIGHT = 0.1
# Read on a grid of about this many points (800 in a 10 % region): 0.2 ms a frame at 640x480, where 20,000 took 0.7-1 ms
# for the same values to 0.01 (scikit-image's photos).
SUBJECT_SAMPLES = 8_000
# A ground plane: the nearest SUBJECT_SHARE covers at least GROUND_WIDTH of the bottom rows, and the rows' median
# disparity rises steadily toward the bottom (by GROUND_STEP or more from 60 % to 75 % and from 75 % to 90 % of the
# height, and GROUND_RISE in all), unlike a near object at the bottom (a step). In its lower GROUND_ZONE of the rows,
# a pixel no nearer than its row's median plus GROUND_TOLERANCE is ground; what stands out of it is still looked at.
GROUND_WIDTH = 0.4
GROUND_STEP = 0.02
GROUND_RISE = 0.1
GROUND_ZONE = 0.4
GROUND_TOLERANCE = 0.08


def subject_disparity(disparity: np.ndarray, grid: np.ndarray | None = None) -> float:
    """Auto focus's pick without a face: the disparity of the nearest region near the frame's middle columns that is
    not a ground plane (the median of the nearest SUBJECT_SHARE of the weight). Read on a regular grid of
    SUBJECT_SAMPLES points (disparity_grid; `grid`: the map's, where the caller has it); a map on the device gives only
    that grid to the host."""
    sample = disparity_grid(disparity) if grid is None else grid
    height, width = sample.shape
    across = (np.arange(width) + 0.5) / width
    weight = np.broadcast_to(1.0 - (1.0 - SIDE_WEIGHT) * (2.0 * across - 1.0) ** 2, sample.shape)
    ground = _ground(sample)
    if ground is not None:
        weight = np.where(ground, 0.0, weight)
    return _weighted_nearest(sample, weight, SUBJECT_SHARE)


def _ground(sample: np.ndarray) -> np.ndarray | None:
    """Where a ground plane (a floor, a table) runs toward the camera along the bottom edge; None without one."""
    height = sample.shape[0]

    def rows(top: float, bottom: float) -> float:
        return float(np.median(sample[int(top * height):max(int(bottom * height), int(top * height) + 1)]))

    near = float(np.quantile(sample, 1.0 - SUBJECT_SHARE))
    along_bottom = float(np.mean(sample[-max(1, height // 30):] >= near))
    middle, low, lowest = rows(0.55, 0.65), rows(0.7, 0.8), rows(0.85, 0.95)
    steady = low - middle >= GROUND_STEP and lowest - low >= GROUND_STEP and lowest - middle >= GROUND_RISE
    if along_bottom < GROUND_WIDTH or not steady:
        return None
    top = int((1.0 - GROUND_ZONE) * height)
    ground = np.zeros(sample.shape, bool)
    zone = sample[top:]
    ground[top:] = zone <= np.median(zone, axis=1, keepdims=True) + GROUND_TOLERANCE
    return ground


# Where a head may be that the face detector's fine pass should look at closely (stream.faces' look_in): a head stands
# out of what is beside and above it (as real_faces reads a face box). Scored on the same grid: a square HEAD_SIZES of
# the frame's width against a ring one square wide left, right and above it, mean against mean; the best HEAD_REGIONS
# squares standing out by HEAD_STAND_OUT or more, a fine crop's half-width (FINE_CROP / 2) apart. Of the astronaut
# composited 180-300 px high on the garage and the rocket (tcmonodepth), at 3 places, the best two held her face in
# 18 of 18 (the best alone in 17); in front of the close-ups of the cat and the coffee cup, which stand out more,
# in 6 of 18. About 0.25 ms a detection at 640x480, read only while no face is followed.
HEAD_SIZES = (0.04, 0.06, 0.08, 0.1)
HEAD_STAND_OUT = 0.05
HEAD_REGIONS = 2


def head_regions(disparity: np.ndarray) -> list[Box]:
    """Squares (frame pixels) whose depth stands out of a ring left, right and above them, best first."""
    step = _grid_step(disparity)
    sample = disparity_grid(disparity).astype(np.float64)
    height, width = sample.shape
    sums = cv2.integral(sample)
    score = np.full(sample.shape, -np.inf)  # by the square's top-left cell, the best of its sizes
    size = np.zeros(sample.shape, np.int64)
    for share in HEAD_SIZES:
        side = max(2, round(share * width))
        if 2 * side > height or 3 * side > width:
            continue
        # by the square's top-left cell (row, column): the ring's box starts at (row - side, column - side)
        centre = _box_sums(sums, side, side)[side:height - side + 1, side:width - 2 * side + 1]
        around = _box_sums(sums, 2 * side, 3 * side)
        stand_out = centre / side ** 2 - (around - centre) / (5 * side ** 2)
        here = (slice(side, height - side + 1), slice(side, width - 2 * side + 1))
        better = stand_out > score[here]
        score[here] = np.where(better, stand_out, score[here])
        size[here] = np.where(better, side, size[here])
    regions: list[Box] = []
    apart = FINE_CROP / 2 * width
    while len(regions) < HEAD_REGIONS:
        row, column = np.unravel_index(int(np.argmax(score)), score.shape)
        if score[row, column] < HEAD_STAND_OUT:
            break
        side = int(size[row, column])
        regions.append((int(column) * step + step // 2, int(row) * step + step // 2, side * step, side * step))
        middle_row, middle_column = row + side / 2, column + side / 2
        rows, columns = np.ogrid[:height, :width]
        score[(np.abs(rows + size / 2 - middle_row) < apart) & (np.abs(columns + size / 2 - middle_column) < apart)] \
            = -np.inf
    return regions


def _box_sums(sums: np.ndarray, height: int, width: int) -> np.ndarray:
    """The sum of every box `height` x `width` in a map, by its top-left pixel, read off the map's integral image."""
    return sums[height:, width:] - sums[:-height, width:] - sums[height:, :-width] + sums[:-height, :-width]


def _weighted_nearest(values: np.ndarray, weight: np.ndarray, share: float) -> float:
    """The weighted median of the nearest values holding `share` of the weight."""
    values, weight = values.ravel(), np.asarray(weight, np.float64).ravel()
    order = np.argsort(values)[::-1]
    cumulative = np.cumsum(weight[order])
    if cumulative[-1] <= 0:  # all ground: nothing else to go by
        return float(np.median(values))
    nearest = order[:int(np.searchsorted(cumulative, share * cumulative[-1])) + 1]
    within = np.cumsum(weight[nearest][::-1])  # from the farthest of them
    return float(values[nearest][::-1][int(np.searchsorted(within, within[-1] / 2))])


# A subject walking into the frame from a side counted only once it neared the middle (the side weighting above):
# the astronaut walking back into the garage was left blurred for 0.3 s, then glided to for another 0.15 s. So where
# no face is followed, a region that came in at a side is taken at once: the grid's cells in the outer ENTER_SIDE of
# the columns on one side that are more than ENTER_JUMP nearer than ENTER_LAG frames before, covering ENTER_SHARE of
# the frame and reaching into the outermost ENTER_EDGE (it came in over the frame's side), nearer than the subject by
# more than ENTER_JUMP, while the frame's middle held still (under ENTER_STILL of its cells moved by ENTER_JUMP: a pan
# moves the middle's depth edges too, 4-6 % of its cells in the explorer's pan at 3 px a frame; a person walking into
# a still garage, none). A region that was there from the start (a gantry, a door frame) is no newcomer. And where such
# a newcomer is taken, more than ENTER_JUMP nearer than the focus, ENTER_FRAMES frames in a row, each time moving in
# sideways (entered_sideways), focus snaps to it rather than gliding (one frame still glides). Any other jump glides as
# ever: a snap on every jump of the pick made the network's depth flipping on a brick wall as the camera panned, or a
# hand rising at the side, pop the whole scene out of focus in one frame (the background's blur 8.3 -> 14.7 levels).
ENTER_JUMP = 0.2
ENTER_SIDE = 0.25
ENTER_EDGE = 0.05
ENTER_SHARE = 0.02
ENTER_STILL = 0.01
ENTER_LAG = 4
ENTER_FRAMES = 2


def disparity_grid(disparity: np.ndarray) -> np.ndarray:
    """The map read on a regular grid of about SUBJECT_SAMPLES points, on the host: a copy, not a view of the map (it
    is kept for frames, and a stage may reuse the map's memory)."""
    step = _grid_step(disparity)
    return np.array(to_host(disparity[step // 2::step, step // 2::step]), np.float32)


def _grid_step(disparity: np.ndarray) -> int:
    """disparity_grid's spacing in pixels of the map."""
    return max(1, int((disparity.size / SUBJECT_SAMPLES) ** 0.5))


def newcomer_disparity(grid: np.ndarray, earlier: np.ndarray) -> float | None:
    """The disparity of a near region that came in over a side of the frame since `earlier` (the same grid some frames
    before), the nearer of the two sides' (ENTER_*); None where none did."""
    width = grid.shape[1]
    side, edge = max(1, round(ENTER_SIDE * width)), max(1, round(ENTER_EDGE * width))
    came = grid - earlier > ENTER_JUMP
    if np.mean(np.abs(grid - earlier)[:, side:width - side] > ENTER_JUMP) >= ENTER_STILL:
        return None  # the camera moved, or the subject in the middle did: no side's news to go by
    found = []
    for zone, rim in ((slice(0, side), slice(0, edge)), (slice(width - side, width), slice(width - edge, width))):
        cells = came[:, zone]
        if cells.sum() >= ENTER_SHARE * grid.size and came[:, rim].any():
            found.append(float(np.median(grid[:, zone][cells])))
    return max(found, default=None)


def entered_sideways(grid: np.ndarray, previous: np.ndarray) -> bool:
    """Whether what came nearer by ENTER_JUMP since `previous` (the last frame's grid) in a side's outer ENTER_SIDE
    moves in sideways: a leading edge taller than wide, as someone walking in (or anything crossing) makes. Something
    rising from the bottom at a side (a raised hand) makes one wider than tall."""
    width = grid.shape[1]
    side = max(1, round(ENTER_SIDE * width))
    fresh = grid - previous > ENTER_JUMP
    for cells in (fresh[:, :side], fresh[:, width - side:]):
        rows, columns = np.flatnonzero(cells.any(axis=1)), np.flatnonzero(cells.any(axis=0))
        if rows.size and np.ptp(rows) > np.ptp(columns):
            return True
    return False


# A window around a point holding two surfaces (an outline, a thin object) is split where the depth steps by
# more than this between the two groups' means; less is one surface's own slope or noise.
SURFACE_STEP = 0.05


def disparity_at(disparity: np.ndarray, x: int, y: int, radius: int = 3) -> float:
    """The disparity of the surface under (x, y): the median of a small window around it (the map's own pixels),
    or where the window holds two depths, of the part on the point's own side of the step. The window's median
    alone took what lies behind a thin object (a cable, a stem, a tripod's leg 3 px wide) for it."""
    h, w = disparity.shape
    x, y = min(max(x, 0), w - 1), min(max(y, 0), h - 1)
    top, left = max(y - radius, 0), max(x - radius, 0)
    window = np.asarray(to_host(disparity[top:y + radius + 1, left:x + radius + 1]), np.float64)  # 49 values
    values = np.sort(window.ravel())
    split = _depth_step(values)
    if split is not None:
        values = values[split:] if window[y - top, x - left] >= values[split] else values[:split]
    return float(np.median(values))


def _depth_step(values: np.ndarray) -> int | None:
    """Where sorted `values` split into two groups whose means differ by more than SURFACE_STEP (the split of
    Otsu's method: the largest variance between the groups), or None for one surface."""
    n = values.size
    if n < 2:
        return None
    counts = np.arange(1, n)
    below = np.cumsum(values)[:-1] / counts
    above = (values.sum() - below * counts) / (n - counts)
    k = int(np.argmax(counts * (n - counts) * (above - below) ** 2))
    return k + 1 if above[k] - below[k] > SURFACE_STEP else None


# A Haar cascade misses single frames (a blink, motion blur, a half-turned head); dropping the face at
# once would swing focus to the fallback region and back. A face is kept this many frames (half a second,
# and always through at least one missed detection) before focus lets it go.
FACE_HOLD_FRAMES = 15
# The frontal cascade misses a face turned to profile, tilted or looking down for as long as it stays so; the
# fallback (subject_disparity) is then often the chest or what the subject holds, in front of the face
# (scikit-image's astronaut: her chest at 0.87, the helmet she holds at 0.995 before, against the face's 0.81).
# Past the hold a face found in at least two detections is kept while the depth in its box still says a head is
# there (within this much disparity of its own when last found), for at most FACE_DEPTH_HOLD_FRAMES; where the depth
# there has moved on before that, focus stays on the face's last value until the hold ends.
FACE_DEPTH_TOLERANCE = 0.1
FACE_DEPTH_HOLD_FRAMES = 150
# A shot's first face found within this many frames of its start (half a second) is snapped to, not glided to: a
# file run's first detections may miss it (the subject still coming into view, turning, blurred) and focus then
# glided from the fallback over half a second with the face soft (the astronaut crossing a garage: found at frame 6,
# sharp from frame 18). Later a face glides in as ever: a snap mid-shot would be a jump.
FIRST_FACE_FRAMES = 15
# A group: the other real faces at least GROUP_SIZE of the largest face's width are kept in focus too, the render's
# in-focus band widened to their depths (kernels.focus_band's `widen`), as a phone's portrait mode keeps a group
# sharp: focused on the largest face alone, the second of three people (her face 0.2 behind it) was blurred 9.6-10.8
# levels in every preset. A smaller face (a passer-by farther back) stays as blurred as its depth says.
GROUP_SIZE = 0.5
# The cascade finds a "face" in a texture now and then (the synthetic scene's wall panels, in 7 of 300 frames, 4 in a
# row): trusted, it took focus off the subject to the wall for half a second. A head stands out of what is beside and
# above it: real faces' centres were 0.06-0.72 nearer than a ring around their box (a box wide, left, right and
# above: below is the neck), from a dark frame's collapsed depth to a portrait (9 pictures of the astronaut and the
# cameraman); the wall's "face", 0.00-0.01. A box that stands out by less than FACE_STAND_OUT and lies more than
# FACE_BEHIND behind the subject the frame would focus on without it (subject_disparity; the wall's: 0.84) is no
# face. Both, so that a face against a wall close behind it, or one far behind a near subject (the 160x120 frame's:
# 0.68 behind), is still taken; and a flat box less far behind is kept too, as a wrong face there blurs the subject
# less than a real face missed.
FACE_STAND_OUT = 0.03
FACE_BEHIND = 0.4
FACE_RING = 1.0
# The smoothing weight and the holds are given per frame of a 30 fps video (REFERENCE_FPS, as the depth
# range's smoothing). Given the frames' times, they mean the same in seconds at any rate: a 60 fps video
# glides no faster, a 24 fps one no slower.


def real_faces(faces: list[Box] | tuple[Box, ...], disparity: np.ndarray) -> list[Box]:
    """The boxes whose depth says a head is there (FACE_STAND_OUT, FACE_BEHIND)."""
    if not faces:
        return list(faces)
    subject: float | None = None  # read once, where a box needs it
    kept = []
    for box in faces:
        centre, ring = _centre_and_ring(disparity, box)
        if centre - ring < FACE_STAND_OUT:
            subject = subject_disparity(disparity) if subject is None else subject
            if subject - centre > FACE_BEHIND:
                continue
        kept.append(box)
    return kept


def face_disparity(disparity: np.ndarray, box: Box) -> float:
    """A face's disparity: the median of its box's central half (the box's corners are often background), read on
    the host (a few thousand values)."""
    x, y, w, h = box
    return float(np.median(to_host(disparity[y + h // 4:y + 3 * h // 4, x + w // 4:x + 3 * w // 4])))


def _centre_and_ring(disparity: np.ndarray, box: Box) -> tuple[float, float]:
    """The median disparity of a box's central half, and of a ring FACE_RING of the box wide left, right and above
    it (the frame's part of it). Read on the host: a few thousand values."""
    x, y, w, h = box
    height, width = disparity.shape[:2]
    grow = round(FACE_RING * max(w, h))
    left, top, right, bottom = max(x - grow, 0), max(y - grow, 0), min(x + w + grow, width), min(y + h, height)
    around = np.asarray(to_host(disparity[top:bottom, left:right]), np.float32)
    inside = np.zeros(around.shape, bool)
    inside[max(y - top, 0):y + h - top, max(x - left, 0):x + w - left] = True
    centre = face_disparity(disparity, box)
    ring = around[~inside]
    return centre, (float(np.median(ring)) if ring.size else centre)


class SceneCuts:
    """Tells a cut in an edited video (a new shot) from motion within one shot.

    Each frame is shrunk to 64 x 48 (and softened, so that a fine texture such as a brick wall does not
    decorrelate as it zooms) and matched against the last one's middle, shifted by up to an eighth of the
    frame each way (normalised correlation, so exposure changes do not count): a pan, a zoom or a shaking
    hand leaves some shift that matches; a new shot matches at none. On scikit-image's photos filmed by a
    moving camera (pans up to 40 px a frame at 640 px wide, zooms up to 2x in 16 frames, a shaking hand,
    exposure ramps, sensor noise) and on the synthetic scene, the best match stayed above 0.8 but for a
    brick wall zooming fast (0.65; zooming 8% a frame, 0.54: a cut, focus then snaps rather than glides);
    179 of 182 cuts between them, close-ups of the same photo included, matched below 0.6 (a part of
    these is tests/test_focus_cuts.py). It costs 0.4-0.7 ms a frame from 640x480 to 1080p, 1.2 ms at 4K
    (two cores), and nothing at a fixed focus.
    """

    SIZE = (64, 48)
    SHIFT = 8  # thumbnail pixels each way: 80 px a frame at 640 px wide
    SOFTEN = 1.0  # Gaussian sigma, thumbnail pixels
    MIN_MATCH = 0.6
    FLAT = 4.0  # a thumbnail with less spread than this (black, a plain wall) has no look to match:
    FLAT_JUMP = 40.0  # there a cut is a jump this large in brightness and spread (a fade is gradual)

    def __init__(self) -> None:
        self._previous: np.ndarray | None = None

    def reset(self) -> None:
        self._previous = None

    def is_cut(self, image_bgr: np.ndarray) -> bool:
        """Whether this frame starts a new shot; the first frame after a reset does not."""
        thumbnail = self._thumbnail(image_bgr)
        previous, self._previous = self._previous, thumbnail
        if previous is None:
            return False
        if min(float(previous.std()), float(thumbnail.std())) < self.FLAT:
            jump = abs(float(thumbnail.mean() - previous.mean())) + abs(float(thumbnail.std() - previous.std()))
            return jump > self.FLAT_JUMP
        middle = previous[self.SHIFT:-self.SHIFT, self.SHIFT:-self.SHIFT]
        return float(cv2.matchTemplate(thumbnail, middle, cv2.TM_CCOEFF_NORMED).max()) < self.MIN_MATCH

    def _thumbnail(self, image_bgr: np.ndarray) -> np.ndarray:
        width, height = self.SIZE
        if image_bgr.shape[1] > 4 * width and image_bgr.shape[0] > 4 * height:
            # area-averaging a 1080p frame in one go takes 9-14 ms; bilinear to 4x first, 0.3 ms
            image_bgr = cv2.resize(image_bgr, (4 * width, 4 * height), interpolation=cv2.INTER_LINEAR)
        thumbnail = cv2.resize(image_bgr, self.SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
        return cv2.GaussianBlur(thumbnail, (0, 0), self.SOFTEN)


# A camera whose frames last under this much of a REFERENCE_FPS frame on average (above 37.5 fps) asks the live face
# detector by time as well as by frames; MEAN_STEP_WEIGHT averages the frames' lengths over about ten of them.
FAST_CAMERA_STEP = 0.8
MEAN_STEP_WEIGHT = 0.1


# The detector looks for small faces (stream.faces' fine pass, 2-3 times the other passes over the whole frame) at
# every FINE_EVERY_LIVE-th detection that finds none in a live run (every 0.5 s at face_interval 3; on its own thread,
# beside the render). A file run looks at each of a shot's first FINE_EAGER_FILE detections that find none, then at
# every FINE_EVERY_FILE-th (every 2 s): the render waits for each pass (50-75 ms on a busy 2-core machine). In between
# both look where the depth shows a head (head_regions) at a new place or changed, 9-10 ms a crop: a small face walking
# in mid-shot was found 0.1-0.25 s after it was whole in the frame (the astronaut 180-380 px high walking into the
# garage: faces of 34-74 px), not at the next whole-frame pass (0.9-1.4 s on; the 34 px face never); those looks take
# the place of two of the first four whole-frame passes a shot had (its first 0.4 s), so a faceless file run is no
# slower (user CPU within 1 %, session 27).
FINE_EVERY_LIVE = 5
FINE_EVERY_FILE = 20
FINE_EAGER_FILE = 2


class FocusController:
    """Chooses the focus disparity per frame and smooths it so focus does not jump.

    `point` and the mode can be changed from another thread (a click or a key in the live window).
    With `track_point` a point follows what was under it as the picture moves (stream.tracking);
    otherwise it stays on the same pixel. With `faces_in_background` (live runs) the face detector runs
    on a thread of its own and focus follows its newest finished detection; otherwise it runs inline and
    a run is repeatable. `update` takes each frame's time where there is one (its presentation time, a
    camera's capture time), so that smoothing and holds mean the same in seconds at any frame rate; at a
    cut to a new shot focus goes straight to the new shot's subject rather than gliding from the last one.
    """

    def __init__(self, focus: str | float = "auto", point: tuple[int, int] | None = None,
                 smoothing: float = 0.25, face_interval: int = 1, face_hold: int = FACE_HOLD_FRAMES,
                 faces_in_background: bool = False, track_point: bool = True) -> None:
        self.fixed = None if focus == "auto" else float(focus)
        self.smoothing = smoothing
        self.face_interval = face_interval  # detect every n-th frame; faces move little in between
        self.face_hold = max(face_hold, face_interval + 1)  # at least one missed detection is bridged
        self._frames = 0
        self._asked: tuple[int, float] | None = None  # the frame count and clock of the background detector's
        # last ask (None: ask at the next frame)
        self._clock = 0.0  # time in frames at REFERENCE_FPS; one a frame where the frames' times are unknown
        self._step = 1.0  # the clock's last advance: a frame's length in it
        # the frames' mean length in it (an average over ~10 frames): the time rule of _due applies only to a camera
        # clearly faster than REFERENCE_FPS, so that a 30 fps camera's frames arriving in pairs (a starved reader, or
        # arrival times for stamps) are asked about as before (they were asked 75 times in 100)
        self._mean_step = 1.0
        self._seconds: float | None = None  # the last frame's time
        self._origin: tuple[float, float] | None = None  # a frame's time and clock, since times went forward
        self._face_seen: tuple[int, float] = (0, 0.0)  # the frame count and clock at which last_face was detected
        self._face_hits = 0  # detections that found the followed face
        self._face_depth: float | None = None  # the focus in its box when it was last found; None: found this frame
        self._face_misses = 0  # detections since it was last found that found no face
        self._face_missed = False  # missed past the hold: kept only while the depth in its box matches
        self._frame_width = 1  # a face box touching the frame's side weighs less
        self._cuts = SceneCuts()
        self._cut_checked = False  # the last frame was tested for a cut: a hint about this one then counts
        # a cut: focus snaps until the new shot's first face detection is in. So at a live run's start: the first
        # frames go by before the detector's thread answers, and focus glided from the fallback to the face
        # (0.3 s; scikit-image's astronaut: from the helmet at 0.995 to her face at 0.81)
        self._settling = faces_in_background and self.fixed is None and point is None
        self._first_face_by: float | None = 1.0 + FIRST_FACE_FRAMES  # the clock up to which a first face is snapped
        # to (the run's first frame is at 1); None: this shot's first face is in, or it is too late
        self._point = point
        self.track_point = track_point
        self._tracker: PointTracker | None = None  # used on the render thread only; a click makes a new one
        self._point_target: float | None = None  # the focus at the point when it was last followed
        self._point_followed = 0.0  # the clock when it was
        self._forget_face = False  # the mode changed: a face box from before it is stale
        self._lock = threading.Lock()
        self.faces_in_background = faces_in_background
        self._faces: FaceFinder | None = None
        self._background: BackgroundFaceFinder | None = None
        if self.fixed is None:
            self._start_faces()
        self.current: float | None = None
        self.last_face: Box | None = None
        self.detected: tuple[Box, ...] = ()  # the latest detection's faces (those real_faces kept): faces_now()
        # how much farther and nearer than the focus the band is widened to hold a group's faces (kernels.focus_band),
        # smoothed as the focus is; _group: this frame's goal for it, from _members: the group's other faces (box, and
        # disparity when last found)
        self.widen: tuple[float, float] = (0.0, 0.0)
        self._group: tuple[float, float] = (0.0, 0.0)
        self._members: list[tuple[Box, float]] = []
        self._grids: deque[np.ndarray] = deque(maxlen=ENTER_LAG)  # the last frames' disparity_grid: a newcomer
        self._by_newcomer = False  # this frame's target is a region coming in over a side, sideways (entered_sideways)
        self._jumps = 0  # frames in a row that such a region was more than ENTER_JUMP nearer than the focus
        self._follows_faces = False  # the last frame's mode looked for faces (auto focus, no point)

    def _start_faces(self) -> None:
        if self.faces_in_background:
            self._faces = FaceFinder(fine_every=FINE_EVERY_LIVE)
        else:
            self._faces = FaceFinder(fine_every=FINE_EVERY_FILE, fine_eager=FINE_EAGER_FILE)
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
        self._by_newcomer = False
        if forget_face:  # a face box from before a click is no guide to where a face is now: look afresh
            self._forget_faces()
            self._settling = False
        if point is not None:
            if not self.track_point:
                return disparity_at(disparity, *point)
            if self._tracker is None or forget_face:  # the run's first point, or a new click
                self._tracker = PointTracker(point)
                self._point_target = None
            where = self._tracker.follow(image_bgr, disparity)
            if not self._tracker.lost_frames:
                self._point_followed = self._clock
            elif self._clock - self._point_followed <= self.face_hold and self._point_target is not None:
                return self._point_target  # not followed this frame: focus holds, as for a missed face
            self._point_target = disparity_at(disparity, *where)
            return self._point_target
        self._tracker = None
        if fixed is not None:
            return fixed
        if self._faces is None:  # a fixed focus switched to auto: the cascade loads on first use
            self._start_faces()
        self._look_for_faces(image_bgr, disparity)
        self._frames += 1
        grid = disparity_grid(disparity)
        if self._grids and self._grids[-1].shape != grid.shape:  # a new frame size: the last frames' grids say nothing
            self._grids.clear()
        earlier = self._grids[0] if len(self._grids) == ENTER_LAG else None
        previous = self._grids[-1] if self._grids else None
        self._grids.append(grid)
        face_focus = self._face_focus(disparity)
        if face_focus is not None:
            return face_focus
        subject = subject_disparity(disparity, grid)  # the grid taken once a frame
        newcomer = None if earlier is None else newcomer_disparity(grid, earlier)
        if newcomer is None or newcomer - subject <= ENTER_JUMP:
            return subject
        self._by_newcomer = entered_sideways(grid, previous)  # type: ignore[arg-type]
        return newcomer

    def _face_focus(self, disparity: np.ndarray) -> float | None:
        """The followed face's disparity, read in its box; None where there is no face to focus on."""
        if self.last_face is None:
            return None
        value = face_disparity(disparity, self.last_face)
        found = self._face_depth is None
        if found:  # found this frame
            self._face_depth = value
        self._group = self._group_reach(disparity, found)
        on_face = abs(value - self._face_depth) <= FACE_DEPTH_TOLERANCE  # the head is still where it was found
        if not self._face_misses:
            # Found by the last detection. A person crossing at 24 px a frame left the box within two frames, and focus
            # pulsed to the background every face_interval-th frame (her body 4 -> 22 levels of blur and back): where
            # the box's depth fell back by more than FACE_DEPTH_TOLERANCE it reads what is behind the head, which has
            # left it, and focus holds to the next detection; a rise is the head coming nearer, followed at once.
            return self._face_depth if value < self._face_depth - FACE_DEPTH_TOLERANCE else value
        if not self._face_missed:  # within the hold; where it moved off its box, focus holds, as for a lost point
            return value if on_face else self._face_depth
        if on_face and self._face_hits >= 2 and self._clock - self._face_seen[1] <= FACE_DEPTH_HOLD_FRAMES:
            return value
        self.last_face = None
        return None

    def _group_reach(self, disparity: np.ndarray, found: bool) -> tuple[float, float]:
        """How far behind and before the followed face the other faces of its group lie (GROUP_SIZE). A member is
        held while the depth in its box stays within FACE_DEPTH_TOLERANCE of its own when found: the detector's fine
        pass, which finds faces under an eighth of the frame's width, looks only now and then (a file run's, at a
        shot's first detections), and the group's band narrowed 0.1 s after it."""
        if found:
            self._members = self._found_members(disparity)
        self._members = [(box, depth) for box, depth in self._members
                         if abs(face_disparity(disparity, box) - depth) <= FACE_DEPTH_TOLERANCE]
        focus = self._face_depth if self._face_depth is not None else 0.0
        depths = [depth for _, depth in self._members]
        return max([0.0, *(focus - depth for depth in depths)]), max([0.0, *(depth - focus for depth in depths)])

    def _found_members(self, disparity: np.ndarray) -> list[tuple[Box, float]]:
        """The group's other faces after a detection: those it found, and those held that it did not find again."""
        largest = max(box[2] for box in (*self.detected, self.last_face) if box is not None)
        found = [box for box in self.detected if box != self.last_face and box[2] >= GROUP_SIZE * largest]
        held = [(box, depth) for box, depth in self._members if box[2] >= GROUP_SIZE * largest
                and same_face([*found, self.last_face], box) is None]  # type: ignore[list-item]
        return [(box, face_disparity(disparity, box)) for box in found] + held

    def _look_for_faces(self, image_bgr: np.ndarray, disparity: np.ndarray) -> None:
        """Every face_interval-th frame asks the detector; a detection counts from the frame it was
        asked about, so a background detection that finishes late holds the face no longer. A live run's
        (background) detector is also asked at most every face_interval frames of time at REFERENCE_FPS, as the
        holds are counted: a 60 fps camera asked it twice as often a second as a 30 fps one, for faces that move
        no faster, and those 12-27 ms passes on the display's two cores cost it 4-6 ms of p50 latency."""
        self._frame_width = image_bgr.shape[1]
        tag = (self._frames, self._clock)
        if self._background is None:
            if self._frames % self.face_interval == 0:
                self._point_out_heads(disparity)
                faces = self._faces.faces(image_bgr)  # type: ignore[union-attr]
                self._take_detection(real_faces(faces, disparity), tag)
            return
        for detection in self._background.results():
            self._take_detection(real_faces(detection.faces, disparity), detection.tag)
        if self._due():
            self._asked = tag
            self._point_out_heads(disparity)
            self._background.submit(image_bgr, tag)

    def _point_out_heads(self, disparity: np.ndarray) -> None:
        """While no face is followed, tell the detector's fine pass where the depth shows a head (head_regions)."""
        if isinstance(self._faces, FaceFinder) and self._faces.fine_every and self.last_face is None:
            self._faces.look_in(head_regions(disparity))

    def _due(self) -> bool:
        """Whether the background detector is asked about this frame: face_interval frames after the last ask, and
        face_interval frames of time at REFERENCE_FPS (the nearest frame: a camera's frame times wander)."""
        if self._asked is None:
            return True
        frame, clock = self._asked
        if self._frames - frame < self.face_interval:
            return False
        return self._mean_step > FAST_CAMERA_STEP or self._clock + self._step / 2 >= clock + self.face_interval

    def _take_detection(self, faces: list[Box] | tuple[Box, ...], tag: tuple[int, float]) -> None:
        """Focus stays on the face it follows while that is found again: another face takes it only where it
        weighs SWITCH_RATIO times as much (two people of about one size took it in turns), or where the followed
        one is not found this time (a false detection is left at once). Missed with no other face found, it is
        held for face_hold frames of time, and through at least one detection after the one that found it (a
        slow frame rate, a long face_interval); past that, only while the depth in its box says the head is
        still there (`_face_focus`)."""
        self._settling = False
        self.detected = tuple(faces)
        (frame, clock), (seen_frame, seen_clock) = tag, self._face_seen
        found = same_face(faces, self.last_face) if self.last_face is not None else None
        best = max(faces, key=self._weight, default=None)
        if found is not None and (best is None or self._weight(best) <= SWITCH_RATIO * self._weight(found)):
            self._follow(found, tag, self._face_hits + 1)
        elif best is not None:
            self._follow(best, tag, 1)
        else:
            self._face_misses += 1
            self._face_missed = self.last_face is not None and frame - seen_frame > self.face_interval \
                and clock - seen_clock >= self.face_hold

    def _weight(self, box: Box) -> float:
        return face_weight(box, self._frame_width)

    def _follow(self, face: Box, tag: tuple[int, float], hits: int) -> None:
        self.last_face, self._face_seen, self._face_hits = face, tag, hits
        self._face_depth, self._face_misses, self._face_missed = None, 0, False

    def _forget_faces(self) -> None:
        self.last_face, self._frames, self._face_seen, self._asked = None, 0, (0, self._clock), None
        self._face_hits, self._face_depth, self._face_misses, self._face_missed = 0, None, 0, False
        self.detected, self._members = (), []
        self._grids.clear()
        if self._background is not None:
            self._background.discard()

    def _tick(self, seconds: float | None) -> float:
        """Advances the clock; returns frames at REFERENCE_FPS since the last update: one where the frames'
        times are not known or do not go forward (clips joined as they are). Counted from the time they
        started going forward, so that a hold of half a second ends at half a second, not a rounding before."""
        previous = self._clock
        if seconds is not None and self._origin is not None and seconds > self._seconds:  # type: ignore[operator]
            self._clock = self._origin[1] + (seconds - self._origin[0]) * REFERENCE_FPS
        else:
            self._clock += 1.0
            self._origin = None if seconds is None else (seconds, self._clock)
        self._seconds = seconds
        self._step = self._clock - previous
        self._mean_step += MEAN_STEP_WEIGHT * (self._step - self._mean_step)
        return self._step

    def _is_cut(self, image_bgr: np.ndarray, hint: bool | None) -> bool:
        """The cut test, or a hint: the same test made on the same frames by the depth stage (a sync run), which
        then need not be repeated here. A hint counts only where this controller tested the frame before too:
        the first frame after a fixed focus is no cut, as for the test's own first frame."""
        if hint is None:
            cut = self._cuts.is_cut(image_bgr)
        else:
            cut = hint and self._cut_checked
            self._cuts.reset()  # its last thumbnail is stale now: a frame without a hint starts afresh
        self._cut_checked = True
        return cut

    def _new_shot(self, image_bgr: np.ndarray, point: tuple[int, int] | None, fixed: float | None,
                  hint: bool | None = None) -> bool:
        """Whether this frame is a cut to a new shot, and if so, forget what was followed in the last one:
        a face box and a followed point from another shot say nothing about this one."""
        if point is None and fixed is not None:  # a fixed focus follows nothing
            self._cuts.reset()
            self._cut_checked = False
            return False
        if not self._is_cut(image_bgr, hint):
            return False
        if point is not None:
            if self._tracker is not None:  # followed on from where it was, afresh
                x, y = self._tracker.point
                self._tracker = PointTracker((int(round(x)), int(round(y))))
            self._point_target = None
        else:
            self._forget_faces()
            self._settling = True
            self._first_face_by = self._clock + FIRST_FACE_FRAMES
            if self._faces is not None:
                self._faces.look_closely()
        return True

    def _first_face_found(self, forget_face: bool) -> bool:
        """Whether focus snaps to a face found in this frame: the shot's first, within FIRST_FACE_FRAMES of its start
        (after a click or a change of mode, focus glides as ever)."""
        if forget_face or self._first_face_by is None or self._clock > self._first_face_by:
            self._first_face_by = None
            return False
        if self.last_face is None:
            return False
        self._first_face_by = None
        return True

    def update(self, image_bgr: np.ndarray, disparity: np.ndarray, seconds: float | None = None,
               cut: bool | None = None) -> float:
        """This frame's focus, smoothed. `seconds` is the frame's time, where there is one; `cut`, where given,
        says whether the frame starts a new shot by `SceneCuts` run over every frame in order (it is then not
        tested again here)."""
        point, fixed, forget_face = self._snapshot()
        self._follows_faces = point is None and fixed is None
        step = self._tick(seconds)
        cut = self._new_shot(image_bgr, point, fixed, cut)
        settling = self._settling and not forget_face  # a click glides, as ever
        target = self._measure(image_bgr, disparity, point, fixed, forget_face)
        first_face = self._first_face_found(forget_face)
        weight = 1.0 - (1.0 - self.smoothing) ** step
        self._jumps = self._jumps + 1 if self._by_newcomer and self.current is not None \
            and target - self.current > ENTER_JUMP else 0
        if self.current is None or cut or settling or first_face or self._jumps >= ENTER_FRAMES \
                or (fixed is not None and point is None):
            self.current, weight = target, 1.0
        else:
            self.current += weight * (target - self.current)
        self._widen_for_group(weight)
        return self.current

    def _widen_for_group(self, weight: float) -> None:
        """Moves `widen` toward the followed face's group by `weight` (1: at once); a point or a fixed focus is one
        plane, at once."""
        if not self._follows_faces or self.last_face is None:
            self._group, self._members = (0.0, 0.0), []
        weight = weight if self._follows_faces else 1.0
        self.widen = tuple(now + weight * (goal - now) for now, goal in zip(self.widen, self._group))  # type: ignore

    def faces_now(self) -> list[Box] | None:
        """The faces auto focus knows of after the last update (its latest detection's, and the face it follows, held
        through a missed detection), for refine.person_mask's gate, which then looks for none itself; None where
        that frame's focus was a point or a fixed value (no faces looked for). Call it on update()'s thread."""
        if not self._follows_faces:
            return None
        held = [self.last_face] if self.last_face is not None and self.last_face not in self.detected else []
        return [*self.detected, *held]
