"""Face detection for auto focus: OpenCV's Haar cascades, inline or on a thread of its own.

The frontal-face cascade looks first; where it finds none, it looks again with the picture set in a flat grey border
for a face the frame's left or right side cuts off, and the profile cascade looks for a head turned to either
side (a subject filmed from the side, someone turning away), on the picture and its mirror; where none of these finds
one, a finer frontal pass looks for a face too small for the first (FINE_WIDTH), over the whole frame now and then and
in between where the caller's depth shows a head (look_in). It runs only where asked (fine_every). A cascade pass takes
10-25 ms of CPU. In a file run it runs inline, so every run of a file focuses
alike. In a live run it runs on its own thread, at the background niceness, on the newest frame handed to it: the
render stage would otherwise stall every few frames for as long as a whole render takes, and the display would
stutter. A face box a few frames old is still on the face.
"""
from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from stream.console import notify
from stream.workers import lower_priority, worker_thread

Box = tuple[int, int, int, int]
Tag = Hashable  # the caller's label of a frame: stream.focus gives its frame count and time


@dataclass(frozen=True)
class PreparedImage:
    """A frame made ready for the cascade: its own small grey copy, safe to hand to another thread."""

    grey: np.ndarray  # equalised, for the frontal cascade
    scale: float  # grey pixels per frame pixel
    side_grey: np.ndarray  # half as wide, not equalised, for the profile cascade
    side_scale: float
    fine_grey: np.ndarray | None = None  # FINE_WIDTH wide, equalised, for small faces; None: not made (yet)
    fine_scale: float = 1.0
    frame: np.ndarray | None = None  # the frame itself, inline only: the fine grey is made from it where needed
    regions: tuple[Box, ...] = ()  # where the depth shows a head (look_in), in frame pixels: the fine pass looks there


# Another face must weigh this much more than the followed one to take focus from it: the cascade's boxes of
# one face vary by up to 8 % in area from frame to frame (scikit-image's astronaut pasted twice at one size,
# with noise and a 3 px shake), so two people of about one size took focus in turns, frame after frame.
SWITCH_RATIO = 1.5
# A box touching the frame's left or right side is a face cut off by it (someone at the side, passing by), not
# the subject the picture is framed on: it weighs this much of its area. (A close-up's face is often cut by the
# top: that one counts whole.)
EDGE_WEIGHT = 0.5
# A face found again is the one found nearest to where it was, within this part of the larger box's width
# (people side by side have their faces' centres about a face's width or more apart).
SAME_FACE_DISTANCE = 0.75
# The profile cascade looks at half the frontal's width, a quarter of its pixels (its 20x20 window still holds the
# smallest face looked for). Not equalised: equalising lost scikit-image's cameraman
# (a head in profile against a bright sky) at every width and setting tried, and found no head without it either.
PROFILE_WIDTH_SHARE = 0.5
PROFILE_WINDOW = 20
# Finer steps and one neighbour fewer than the frontal pass: at 1.2 and 5 the cameraman came and went with a grey
# level's rounding; at these he is found at 150-170 px wide, resized at once or through 320, and none of 25 other
# scikit-image pictures (animals, objects, textures, text) gives a box.
PROFILE_SCALE_STEP = 1.15
PROFILE_NEIGHBOURS = 4
# Both directions cost 1.2-2.4 frontal passes (720p frames, a busy 2-core machine): where no head is found, the
# profile cascade (and the pass for a face the frame's side cuts off, below: 1.5 frontal passes' pixels) looks at
# every other detection only, so a film without faces pays half of that; a face found by either is looked for at
# every detection while it is found.
PROFILE_EVERY = 2
# A face the frame's side cuts off (a person at a webcam frame's edge) gave no face: the cascade's windows stop at
# the edge, so none holds the whole face (scikit-image's astronaut with 14-34 px of her 96 px face cut off: none
# found; focus went to the helmet she holds). The frame set in a flat border at its own mean grey, a quarter of its
# width each side, lets windows reach past the edge: found at all those cuts, its top cropped by 0-60 px too.
# Padding by repeating the edge's pixels gave false boxes. A box the border holds none of is one the frame's own
# pass would have found, so only boxes reaching into it count; and only where more than EDGE_NEIGHBOURS of the
# cascade's windows agree: the cut face had 11-30, the false boxes of 22 scikit-image pictures without people
# (each cropped by 0-45 % from either side) 6-7. The top is not padded: padding it too gave more false boxes on
# the astronaut's own picture (a face cut by the top: not looked into). Its 1.5 frontal passes' pixels cost a film
# without faces 35-41 % more a detection (640x480 and 1280x720, a busy 2-core machine); a face found, nothing.
EDGE_PAD_SHARE = 0.25
EDGE_NEIGHBOURS = 9
# A face under min_face_fraction of the frame's width (a half-length portrait, someone a few metres away: a face of
# 66 px in a 640 px frame, 10 %) is never found at 320 px wide, not even with the cascade's smallest window. Where
# no pass finds a face, a finer one looks at FINE_WIDTH px wide (a smaller frame is enlarged to it) for faces from
# FINE_FRACTION of that width: the astronaut composited 300 and 240 px high in a 640x480 frame (faces of 62 and
# 50 px), a 160x120 shrink of it, and the same frame at 7 % exposure were found. With FINE_NEIGHBOURS (the coarse
# pass's 5 found the heads on scikit-image's coins, 4 boxes) none of 20 of its pictures without people gave a box but
# the moon (the depth check in stream.focus weighs such a box); the washed-out frame's face is lost at 6 and up. It
# costs 2-3 times the other passes together (70-90 ms against 10-30 ms, a busy 2-core machine), so it runs at each of
# the first `fine_eager` detections that find no face, then at every `fine_every`-th (at every one, a file run
# without faces went from 36-42 to 28-29 fps), and a small face once found is looked for again in a crop around it
# (FINE_AROUND of its size each side), a few ms: at 1, a 34 px face walking 37 px a detection left it and was lost.
FINE_WIDTH = 640
FINE_FRACTION = 0.06
FINE_NEIGHBOURS = 10
FINE_AROUND = 1.5
# Between those passes, the fine pass looks where the caller's depth shows a head (look_in: stream.focus.head_regions):
# a crop FINE_CROP of the fine grey's width square around it, enlarged FINE_ZOOM times, for faces from
# FINE_CROP_SMALLEST of its pixels (28 fine pixels, 4.4 % of the width). A 160x160 crop costs 9-10 ms against the whole
# frame's 60-75 ms, and being enlarged it finds smaller faces: of the astronaut composited 180, 240 and 300 px high
# (faces of 34, 45 and 56 px) on the garage, coffee and chelsea at 3 places, each crop up to 36 px off her face, it
# found 70 of 81, the whole-frame pass 17 of 27 (none of the 34 px faces).
FINE_CROP = 0.25
FINE_ZOOM = 1.5
FINE_CROP_SMALLEST = 42
# A region is looked at where no look in the last REGION_MEMORY x `fine_every` such detections overlapped it by
# REGION_SAME (a new place: someone walked in) while the frame as a whole stayed still, or where its picture changed
# by REGION_CHANGE grey levels on average and REGION_LOCAL times more than the whole frame's (a 64x48 thumbnail of the
# grey not equalised, against the one at the last look: someone moved, turned; a pan across the garage changed its
# regions 0.8-1.4 times as much as the frame, the astronaut's head walking in 1.8 times and more); one region a look,
# at most at every REGION_EVERY-th detection that finds no face. Looked at each time they are at a new place, the
# pan's regions cost a faceless file run 2.4 ms a frame, as much again as all its whole-frame passes; now it looks at
# one of them once in 32 detections. A still scene looks at each of its regions once in REGION_MEMORY x `fine_every`
# detections: the cascade gives a picture that did not change the same answer.
REGION_SAME = 0.5
REGION_CHANGE = 4.0
REGION_LOCAL = 1.5
REGION_EVERY = 2
REGION_MEMORY = 4
CHANGE_THUMBNAIL = (64, 48)
FRONTAL_WINDOW = 24  # the frontal cascade's own window: a crop smaller than this holds no face


class _NoCascade:
    """Stands for a cascade where OpenCV has none: 5.x moved the Haar cascades out to opencv-contrib. It finds no
    face, so focus and the person mask take their faceless rules; depthcam's own pin keeps OpenCV below 5."""

    def detectMultiScale(self, *args: object, **kwargs: object) -> tuple[()]:  # noqa: N802 (OpenCV's name)
        return ()


@lru_cache(maxsize=None)
def _cascade(path: str) -> tuple[cv2.CascadeClassifier | _NoCascade, threading.Lock]:
    """The cascade loaded once a process (parsing its XML takes 15-30 ms, which every input of a batch of
    photos paid), with a lock: one classifier's detectMultiScale is not documented as safe from two threads at once."""
    if not hasattr(cv2, "CascadeClassifier"):
        if not _cascade.cache_info().currsize:  # one line a process, not one a cascade
            notify(f"warning: OpenCV {cv2.__version__} has no face cascades (5.x moved them to opencv-contrib): "
                   "focus and the person mask go without faces; for them, pip install 'opencv-python>=4.9,<5' "
                   "(or the -headless variant you use)")
        return _NoCascade(), threading.Lock()
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"OpenCV's face cascade could not be loaded from {path}")
    return cascade, threading.Lock()


def face_weight(box: Box, width: int) -> float:
    """How strongly a face asks for focus: its area, halved where the frame's left or right side cuts it."""
    x, y, w, h = box
    # the cascade's windows step a few pixels: a face the side cuts is boxed up to ~2 % of the frame inside it
    margin = max(1, round(0.02 * width))
    return w * h * (EDGE_WEIGHT if x <= margin or x + w >= width - margin else 1.0)


def same_face(faces: Sequence[Box], followed: Box) -> Box | None:
    """The box among `faces` that is the followed face found again (it moves a little between detections)."""
    def distance(box: Box) -> float:
        return float(np.hypot(box[0] + box[2] / 2 - followed[0] - followed[2] / 2,
                              box[1] + box[3] / 2 - followed[1] - followed[3] / 2))

    near = [box for box in faces if distance(box) < SAME_FACE_DISTANCE * max(box[2], followed[2])]
    return min(near, key=distance) if near else None


def _thumbnail(grey: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32)


def _mirrored(box: Box, width: int) -> Box:
    x, y, w, h = box
    return (width - x - w, y, w, h)


def _scaled(box: Box, scale: float) -> Box:
    """A box in a detection copy's pixels (`scale` of them a frame pixel) in the frame's."""
    return tuple(round(v / scale) for v in box)  # type: ignore[return-value]


def _clipped(box: Box, width: int) -> Box:
    """The part of a box inside a frame `width` wide."""
    x, y, w, h = box
    left, right = max(x, 0), min(x + w, width)
    return (left, y, right - left, h)


def _overlap(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _distinct(boxes: Sequence[Box]) -> list[Box]:
    """One box a head: a three-quarter view is found by both directions' passes, a little apart; the larger kept."""
    kept: list[Box] = []
    for box in sorted(boxes, key=lambda b: b[2] * b[3], reverse=True):
        if all(_overlap(box, other) < 0.3 for other in kept):
            kept.append(box)
    return kept


class FaceFinder:
    """OpenCV's bundled Haar cascades, frontal then profile, run on downscaled grey frames for speed."""

    def __init__(self, detect_width: int = 320, min_face_fraction: float = 0.12, fine_every: int = 0,
                 fine_eager: int = 0) -> None:
        folder = getattr(getattr(cv2, "data", None), "haarcascades", "")  # an OpenCV without them may lack cv2.data
        self.cascade, self._lock = _cascade(folder + "haarcascade_frontalface_default.xml")
        self.profile_cascade, self._profile_lock = _cascade(folder + "haarcascade_profileface.xml")
        self.detect_width = detect_width
        self.min_face_fraction = min_face_fraction  # portrait subjects are large; skipping tiny scales is 3x faster
        self._extra_wait = 0  # detections left before the cut-face and profile passes look again
        self._heads_first = False  # the profile pass found the last face: it looks before the cut-face pass
        self.fine_every = fine_every  # the fine pass looks at every n-th detection that finds no face (0: never)
        self.fine_eager = fine_eager  # ... but at each of the first n (after look_closely(): a new shot's)
        self._fine_wait = 0  # detections left before the fine pass looks again
        self._fine_misses = 0  # fine passes that found none since the start or look_closely()
        self._small: Box | None = None  # the small face the fine pass found last, in the fine grey's pixels
        self._regions: tuple[Box, ...] = ()  # look_in's, for the next frame prepared
        self._fine_count = 0  # detections that reached the fine pass: a region's look ages by them
        self._looked: list[tuple[Box, int]] = []  # regions' crops looked at, in the fine grey, and _fine_count then
        self._reference: np.ndarray | None = None  # the fine grey's thumbnail at the last look at a region
        self._region_wait = 0  # detections left before the fine pass looks at a region again
        self._forget_regions = False  # look_closely() asked the detector to forget the regions looked at

    def prepare(self, image_bgr: np.ndarray, inline: bool = False) -> PreparedImage:
        """Downscale and grey the frame (about 0.3 ms at 640x480: cheap enough for any thread). For another thread
        the fine pass's grey is made now where that pass may look; `inline` (detected at once, on this thread) keeps
        the frame instead, and it is made only where the other passes found no face."""
        height, width = image_bgr.shape[:2]
        scale = min(1.0, self.detect_width / width)
        # at least one row: a panorama strip (700x1) would round to none, which cv2.resize refuses
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA) if scale < 1 else image_bgr
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        side_size = (max(1, round(size[0] * PROFILE_WIDTH_SHARE)), max(1, round(size[1] * PROFILE_WIDTH_SHARE)))
        side_grey = cv2.resize(grey, side_size, interpolation=cv2.INTER_AREA)
        regions, self._regions = self._regions, ()
        due = self._fine_due() or (self.fine_every > 0 and bool(regions))
        fine_grey, fine_scale = self._fine_prepared(image_bgr) if due and not inline else (None, 1.0)
        return PreparedImage(cv2.equalizeHist(grey), scale, side_grey, scale * side_size[0] / size[0],
                             fine_grey, fine_scale, image_bgr if inline else None, regions)

    def look_in(self, regions: Sequence[Box]) -> None:
        """Where the next frame prepared shows a head by its depth (frame pixels): the fine pass looks there between
        its looks at the whole frame. Call it on the thread that hands the frames over."""
        self._regions = tuple(regions)

    def _fine_due(self) -> bool:
        """Whether the fine pass may look at the whole frame at the next detection (read on the caller's thread, where
        a live run prepares its frames: a detection under way may change it, which costs one pass early or late)."""
        return self.fine_every > 0 and (self._fine_wait == 0 or self._small is not None)

    @staticmethod
    def _fine_prepared(image_bgr: np.ndarray) -> tuple[np.ndarray, float]:
        height, width = image_bgr.shape[:2]
        scale = FINE_WIDTH / width
        size = (FINE_WIDTH, max(1, round(height * scale)))
        grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        return cv2.equalizeHist(grey), scale

    def detect_all(self, prepared: PreparedImage) -> list[Box]:
        """(x, y, w, h) of every face in full-frame pixels: the frontal ones, else faces the frame's side cuts off or
        heads in profile. The costly part."""
        faces = self._frontal(prepared.grey, self._smallest(prepared.grey.shape[1]))
        if len(faces):
            self._small = None
            return [_scaled(face, prepared.scale) for face in faces]
        found = self._extras(prepared)
        if found:
            self._small = None
            return found
        return self._fine(prepared)

    def look_closely(self) -> None:
        """The fine pass looks at the next fine_eager detections that find no face (a new shot's), and at every
        region afresh."""
        self._fine_wait, self._fine_misses = 0, 0
        # the regions' memory is the detector's own: in a live run this is called on the render thread while the
        # detector's thread may be reading it (a reference set to None between its test and its use raised there);
        # the detector forgets it at its next fine pass
        self._forget_regions = True

    def _extras(self, prepared: PreparedImage) -> list[Box]:
        """Faces the frame's side cuts off, else heads in profile, at every PROFILE_EVERY-th detection while neither
        finds one."""
        if self._extra_wait > 0:
            self._extra_wait -= 1
            return []
        # the pass that found the last face looks first: a head in profile paid the cut-face pass at every detection
        looks = (self._heads, self._cut) if self._heads_first else (self._cut, self._heads)
        for look in looks:
            found = look(prepared)
            if found:
                self._extra_wait, self._heads_first = 0, look == self._heads
                return found
        self._extra_wait = PROFILE_EVERY - 1
        return []

    def _fine(self, prepared: PreparedImage) -> list[Box]:
        """Faces too small for the coarse pass: around the last one found, else (when due) in the whole frame, else
        in a region the depth shows a head in (look_in) that is new or changed."""
        if not self.fine_every:
            return []
        self._fine_count += 1
        if self._forget_regions:
            self._forget_regions = False
            self._looked, self._region_wait, self._reference = [], 0, None
        whole = self._small is not None or self._fine_wait == 0
        if not whole:
            self._fine_wait -= 1
        shape = self._fine_shape(prepared)
        crop = self._region_to_look_at(prepared, shape) if self._region_wait == 0 else None
        self._region_wait = max(self._region_wait - 1, 0) if crop is None else REGION_EVERY - 1
        if not whole and crop is None:
            return []
        grey, scale = prepared.fine_grey, prepared.fine_scale
        if grey is None and prepared.frame is not None:
            grey, scale = self._fine_prepared(prepared.frame)
        if grey is None:  # prepared before the pass was due (a live run's frame handed over meanwhile): the next one
            return []
        found: list[Box] = []
        if whole:
            smallest = max(int(FINE_FRACTION * grey.shape[1]), FRONTAL_WINDOW)
            found = self._around(grey, self._small, smallest) if self._small is not None else []
            if not found:
                found = self._frontal(grey, smallest, FINE_NEIGHBOURS)
            self._fine_misses += not found
            self._fine_wait = 0 if found or self._fine_misses < self.fine_eager else self.fine_every - 1
        if not found and crop is not None:
            found = self._in_crop(grey, crop)
            self._fine_wait = 0 if found else self._fine_wait
        self._small = max(found, key=lambda box: box[2] * box[3], default=None)
        return [_scaled(face, scale) for face in found]

    @staticmethod
    def _fine_shape(prepared: PreparedImage) -> tuple[int, int]:
        """The fine grey's height and width, made or not."""
        if prepared.fine_grey is not None:
            return prepared.fine_grey.shape[:2]  # type: ignore[return-value]
        if prepared.frame is None:
            return (0, 0)
        height, width = prepared.frame.shape[:2]
        return max(1, round(height * FINE_WIDTH / width)), FINE_WIDTH

    def _region_to_look_at(self, prepared: PreparedImage, shape: tuple[int, int]) -> Box | None:
        """The crop (fine grey pixels) around the first of the frame's regions that is new or changed, noted as looked
        at; None where there is none (its fine grey need not be made)."""
        side = min(round(FINE_CROP * shape[1]), *shape)
        if not prepared.regions or side * FINE_ZOOM < FINE_CROP_SMALLEST:  # none, or a strip of a frame: no face fits
            return None
        self._looked = [look for look in self._looked if self._fine_count - look[1] < REGION_MEMORY * self.fine_every]
        now = _thumbnail(prepared.side_grey, CHANGE_THUMBNAIL)  # not equalised: that shifts every level as one walks in
        change = np.abs(now - self._reference) if self._reference is not None else None
        scale = shape[1] * prepared.scale / prepared.grey.shape[1]  # fine grey pixels a frame pixel
        for x, y, w, h in (_scaled(box, 1.0 / scale) for box in prepared.regions):
            left = min(max(round(x + w / 2 - side / 2), 0), shape[1] - side)
            top = min(max(round(y + h / 2 - side / 2), 0), shape[0] - side)
            crop = (left, top, side, side)
            if self._new_or_changed(crop, change, shape):
                self._looked.append((crop, self._fine_count))
                self._reference = now
                return crop
        return None

    def _in_crop(self, grey: np.ndarray, crop: Box) -> list[Box]:
        """The frontal pass in a crop of the fine grey, enlarged FINE_ZOOM times."""
        left, top, side, _ = crop
        found = self._zoomed(grey[top:top + side, left:left + side])
        return [(left + fx, top + fy, fw, fh) for fx, fy, fw, fh in found]

    def _zoomed(self, crop: np.ndarray) -> list[Box]:
        """The frontal pass in a crop enlarged FINE_ZOOM times, for faces from FINE_CROP_SMALLEST of its pixels; boxes
        in the crop's own pixels."""
        if min(crop.shape) * FINE_ZOOM < FINE_CROP_SMALLEST:
            return []
        zoomed = cv2.resize(crop, None, fx=FINE_ZOOM, fy=FINE_ZOOM, interpolation=cv2.INTER_LINEAR)
        return [_scaled(box, FINE_ZOOM) for box in self._frontal(zoomed, FINE_CROP_SMALLEST, FINE_NEIGHBOURS)]

    def _new_or_changed(self, crop: Box, change: np.ndarray | None, shape: tuple[int, ...]) -> bool:
        """Whether a region's crop (in a grey of `shape`) is at a new place in a still frame, or its picture changed
        more than the frame's (`change`: per thumbnail pixel since the last look at a region; None: no look yet)."""
        new = all(_overlap(crop, looked) < REGION_SAME for looked, _ in self._looked)
        if change is None:
            return new
        (rows, columns), (x, y, w, h) = change.shape, crop
        top, left = min(int(y * rows / shape[0]), rows - 1), min(int(x * columns / shape[1]), columns - 1)
        bottom = max(round((y + h) * rows / shape[0]), top + 1)
        right = max(round((x + w) * columns / shape[1]), left + 1)
        local, overall = float(change[top:bottom, left:right].mean()), float(change.mean())
        return (new and overall < REGION_CHANGE) or (local >= REGION_CHANGE and local >= REGION_LOCAL * overall)

    def _around(self, grey: np.ndarray, box: Box, smallest: int) -> list[Box]:
        """The frontal pass in a crop around `box` (a small face found at the last detection); enlarged where the face
        is near the whole-frame pass's smallest (a face found in an enlarged region's crop was lost at once)."""
        x, y, w, h = box
        margin = round(FINE_AROUND * max(w, h))
        left, top = max(x - margin, 0), max(y - margin, 0)
        crop = grey[top:y + h + margin, left:x + w + margin]
        if max(w, h) < FINE_ZOOM * smallest:
            found = self._zoomed(crop)
        else:
            found = self._frontal(crop, smallest, FINE_NEIGHBOURS) if min(crop.shape) >= smallest else []
        return [(fx + left, fy + top, fw, fh) for fx, fy, fw, fh in found]

    def _cut(self, prepared: PreparedImage) -> list[Box]:
        return [_scaled(face, prepared.scale) for face in self._cut_faces(prepared.grey)]

    def _heads(self, prepared: PreparedImage) -> list[Box]:
        return [_scaled(head, prepared.side_scale) for head in self._profiles(prepared.side_grey)]

    def _smallest(self, width: int) -> int:
        """The smallest face looked for in a grey frame `width` wide."""
        return max(int(self.min_face_fraction * width), 16)

    def _frontal(self, grey: np.ndarray, smallest: int, neighbours: int = 5) -> list[Box]:
        with self._lock:
            faces = self.cascade.detectMultiScale(grey, scaleFactor=1.2, minNeighbors=neighbours,
                                                  minSize=(smallest, smallest))
        return [tuple(map(int, face)) for face in faces]  # type: ignore[misc]

    def _cut_faces(self, grey: np.ndarray) -> list[Box]:
        """Faces the frame's left or right side cuts off, boxed as far as the frame shows them."""
        width = grey.shape[1]
        pad = round(EDGE_PAD_SHARE * width)
        padded = cv2.copyMakeBorder(grey, 0, 0, pad, pad, cv2.BORDER_CONSTANT, value=round(float(grey.mean())))
        # the smallest face at the frame's own width, not the padded one's
        found = [(x - pad, y, w, h) for x, y, w, h in self._frontal(padded, self._smallest(width), EDGE_NEIGHBOURS)]
        cut = [(box, _clipped(box, width)) for box in found if box[0] < 0 or box[0] + box[2] > width]
        # at least half of it in the frame (the found faces had 69-100 %): a box all in the border reads no depth
        return [inside for box, inside in cut if 2 * inside[2] >= box[2]]

    def _profiles(self, grey: np.ndarray) -> list[Box]:
        """Heads in profile facing either way (the cascade knows one direction: the mirror gives the other)."""
        smallest = max(int(self.min_face_fraction * grey.shape[1]), PROFILE_WINDOW)
        if min(grey.shape) < smallest:
            return []
        width, found = grey.shape[1], []
        with self._profile_lock:
            for mirror in (False, True):
                boxes = self.profile_cascade.detectMultiScale(
                    cv2.flip(grey, 1) if mirror else grey, scaleFactor=PROFILE_SCALE_STEP,
                    minNeighbors=PROFILE_NEIGHBOURS, minSize=(smallest, smallest))
                found += [_mirrored(box, width) if mirror else box for box in (tuple(map(int, b)) for b in boxes)]
        return _distinct(found)

    def faces(self, image_bgr: np.ndarray) -> list[Box]:
        return self.detect_all(self.prepare(image_bgr, inline=True))

    def largest_face(self, image_bgr: np.ndarray) -> Box | None:
        return largest(self.faces(image_bgr))


def largest(faces: Sequence[Box]) -> Box | None:
    return max(faces, key=lambda f: f[2] * f[3]) if len(faces) else None


@dataclass(frozen=True)
class Detection:
    tag: Tag  # the caller's label of the frame it was asked about
    faces: tuple[Box, ...]


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
        # A detection is 10-50 ms of CPU every few frames (the profile passes at every other one): at the display
        # path's priority that burst took the cores from the render in its frame (bench: the e2e tail)
        lower_priority()
        while True:
            with self._wake:
                while self._job is None and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                prepared, tag = self._job  # type: ignore[misc]
                self._job, generation = None, self._generation
            try:
                faces = tuple(self.finder.detect_all(prepared))
            except BaseException as exc:  # noqa: BLE001 (raised on the caller's thread by results())
                with self._wake:
                    self._error = exc
                return
            with self._wake:
                if generation == self._generation:
                    self._done.append(Detection(tag, faces))
