"""The person mask (refine.person_mask): a person segmentation fused into the refined disparity.

The depth network (TCMonoDepth, 320x192) misses the outer hair and the thin parts of a person by up to ~20 px of a
640x480 frame, and the joint bilateral refinement (radius 4 at 160 px) cannot move an edge that far: that hair was
blurred like the background. A person segmentation (MediaPipe selfie, 256x256) finds that edge within a few pixels.
Where it is confident, a pixel's disparity is raised to at least the person's own (the median of the person's sure
core), never lowered: the background outside the mask and a frame without a person are left as they were. A part
the model joins to the person but the depth puts clearly behind (a motorcycle beside her) is raised only near her.

The selfie model expects a person and finds one in much else (scikit-image's cat: 76 % of the frame sure, its
coffee cup 11 %, a logo 41 %), so only a person with a face found in it counts: a non-person subject is left alone.
A live run's auto focus finds the faces already (beside the render, stream.focus): the gate takes those
(FocusFaces) rather than look again on the refine thread, where each look (35-170 ms on a CPU) stalled a frame.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from kernels.backend import array_module, is_cupy_array, to_host
from kernels.bilateral import LIVE_RADIUS, LIVE_SIGMA_RANGE, LIVE_SIGMA_SPATIAL, LIVE_WORK_WIDTH
from models.download import ModelError
from models.registry import PERSON_MASK_MODELS, ModelSpec, fetch, notify

MODEL = "selfie_segmentation"
# A pixel this sure to be the person is in the mask's core, whose disparity gives the person's own depth.
CORE_PROBABILITY = 0.9
# The fusion's weight rises from 0 at EDGE_LOW to 1 at EDGE_HIGH, a soft ramp, so that a probability that wavers with
# sensor noise does not toggle a pixel between sharp and blurred. From the model's own boundary, 0.5: a ramp from 0.3
# recovered a little more hair but raised a motorcycle's tank and light beside the head (probability 0.3-0.5) and
# sharpened 22 % of the background within 6 px of the outline, against 9 % (session 26's composite, 640x480).
EDGE_LOW, EDGE_HIGH = 0.5, 0.9
# Fewer core pixels than this share of the frame: no person (a speck is a false positive, not a subject).
MIN_CORE_SHARE = 0.005
# The selfie model takes an object touching the person for part of her (a red motorcycle tank beside an orange suit,
# at probability 0.9-1, and a framed picture linked through it: 10-13 % of a 640x480 frame outside her), and raising
# all of it made it sharp (9.9 -> 3.6 levels of blur; the picture 19.3 -> 2.8). A cell whose disparity is more than
# BEHIND_MARGIN (the focus band's) behind its person's is raised only within CORE_REACH cells of her own core (her
# core at her depth, and her head: HEAD_SPAN), or within her head's span: the network misses her outline by up to
# ~20 px (8 cells of a 640 px frame), while such an object reaches far out behind her. Her arm's outline beside the
# tank, which the network puts behind too, is the price: the share of her outline (6 px) blurred goes 0.147 -> 0.151
# (0.168 at 4 cells), 0.125 -> 0.144 on a matte the selfie model did not make (0.170 and 0.167 without the mask).
BEHIND_MARGIN = 0.15
CORE_REACH = 8
# A head (hair, a helmet) spans about this many of its face box's widths and heights, about the box's centre: the
# network often puts a head farther than the body (a helmet at 0.63 against a body's 0.85), and hair farther still.
HEAD_SPAN = 2.0
# Faces are looked for every this many frames (and at a cut), their boxes held between: the Haar cascades cost
# 30-130 ms a 640x480 frame on a CPU, and a person's mask moves little in a third of a second.
FACE_EVERY = 10
# The gate's fine pass for faces too small for the first (stream.faces: under 12 % of the frame's width, a half-length
# shot of a group, a person beside a pet) looks at the first look and at a cut's, then at every FACE_FINE_EVERY-th
# look that finds none (every 2 s at FACE_EVERY 10), as the auto focus's in a file run: without it the gate found
# none of the faces of 67-79 px on 640 that the focus found, and the mask did nothing there. It costs a faceless
# 640x480 file run about 1 ms of CPU a frame (a 60-130 ms look at the start and every 2 s); once it found a face it
# looks around the largest one at each look (25-65 ms a look on a group), so a smaller one is found again at a cut.
FACE_FINE_EVERY = 6
# The model's probability at hair and a helmet's rim wavers by 0.2-0.35 between nearly identical frames (sensor
# noise), and the fusion turned that into blur flicker at the outline: 5-42 pixels a frame jumping by over 20 levels
# on a still subject (0-6 without the mask; the explorer's, session 26). A pixel whose probability moves by less than
# MASK_STEADY_STEP keeps MASK_STEADY_WEIGHT of the newest per frame (an average over a few frames); a larger move (a
# person moving, a cut) is taken at once, so a moving subject's mask does not trail.
MASK_STEADY_WEIGHT = 0.3
MASK_STEADY_STEP = 0.4
# The most samples along each axis that one model cell of the refined map is averaged from (person_targets): the
# area mean of a 720p map's 2.8x5 pixels a cell, a few of a 4K map's 8.4x15 (only the core's median is read).
SHRINK_SAMPLES = 4


@dataclass(frozen=True)
class FusionSettings:
    core_probability: float = CORE_PROBABILITY
    edge_low: float = EDGE_LOW
    edge_high: float = EDGE_HIGH
    min_core_share: float = MIN_CORE_SHARE
    behind_margin: float = BEHIND_MARGIN
    core_reach: int = CORE_REACH  # in the model's cells


class PersonSegmenter:
    """The segmentation network behind ONNX Runtime, on the refinement's device: BGR frame in, person probability
    at the model's 256x256 out."""

    def __init__(self, spec: ModelSpec, path: Path, backend: str = "cpu", threads: int = 0) -> None:
        from models.runtime import CPU, _import_onnxruntime, requested_providers

        ort = _import_onnxruntime()
        options = ort.SessionOptions()
        # refine.threads, else one: for a 256x256 model one thread is as fast as ONNX Runtime's default of every
        # core (3.8 against 4.2-4.6 ms a 720p frame, 2 cores) and leaves the others to the pipeline's stages
        options.intra_op_num_threads = threads or 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as the depth model's session
        # the GPU where the depth map is refined there and a GPU really exists (the depth model's detection:
        # onnxruntime-gpu lists CUDA everywhere and logs an error line where its libraries cannot load), the CPU
        # otherwise; the mask then comes to the GPU as 256x256 floats
        providers = requested_providers("auto") if backend == "cuda" else [CPU]
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # noqa: BLE001 (ONNX Runtime raises its own classes for a bad file)
            raise ModelError(f"cannot load the person mask model {path} ({exc.__class__.__name__}); run 'depthcam "
                             f"models fetch {spec.name}', which replaces it") from None
        self.providers: list[str] = self.session.get_providers()
        self.spec = spec
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name

    def probability(self, image_bgr: np.ndarray) -> np.ndarray:
        """float32 (256, 256): the person probability of each cell of the frame, stretched to a square."""
        width, height = self.spec.input_size
        resized = cv2.resize(image_bgr, (width, height), interpolation=cv2.INTER_AREA)
        rgb = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB).astype(np.float32) * np.float32(1 / 255)
        out = self.session.run([self.output_name], {self.input_name: rgb[None]})[0]
        return np.ascontiguousarray(out.reshape(height, width), dtype=np.float32)


def load_segmenter(backend: str = "cpu", threads: int = 0, *, progress: bool = True) -> PersonSegmenter:
    """The person mask model, fetched into the cache on first use (its sha256 checked, as the depth models'), and
    loaded once a process per file, device and thread count: each input of a batch (`depthcam run a.mp4 b.mp4`,
    photos) takes the same session (ONNX Runtime's run is safe from several threads; probability keeps no state)."""
    return _loaded(str(fetch(MODEL, progress=progress, quick=True)), backend, threads)


@lru_cache(maxsize=None)
def _loaded(path: str, backend: str, threads: int) -> PersonSegmenter:
    return PersonSegmenter(PERSON_MASK_MODELS[MODEL], Path(path), backend, threads)


@dataclass(frozen=True)
class Upsampling:
    """The guided upsampling's refine_live parameters: the refine stage's own (refine.work_width, live_radius,
    live_sigma_spatial, sigma_range), so that on a GPU the filter's constant tables, which both read, stay as they
    are: the quality preset's sigma_range 0.04 against this upsampling's 0.05 swapped them twice a frame, each swap
    after a whole-device synchronize."""
    work_width: int = LIVE_WORK_WIDTH
    radius: int = LIVE_RADIUS
    sigma_spatial: float = LIVE_SIGMA_SPATIAL
    sigma_range: float = LIVE_SIGMA_RANGE


def guided_upsample(probability: np.ndarray, guide: Any, backend: str, upsampling: Upsampling = Upsampling()) -> Any:
    """The model-size probability at the frame's size, its edges snapped to the frame's (the refinement's joint
    bilateral upsampling, on the refinement's side): the bilinear one bled 1-2 px more into the background."""
    import kernels

    if is_cupy_array(guide):
        import cupy

        probability = cupy.asarray(probability)
    xp = array_module(guide)
    refined = kernels.refine_live(probability, guide, work_width=upsampling.work_width, radius=upsampling.radius,
                                  sigma_spatial=upsampling.sigma_spatial, sigma_range=upsampling.sigma_range,
                                  backend=backend)
    return xp.clip(refined, 0, 1)


Box = tuple[int, int, int, int]  # x, y, width, height


def person_targets(disparity: Any, probability: np.ndarray, settings: FusionSettings = FusionSettings(),
                   faces: list[Box] | None = None, frame_size: tuple[int, int] | None = None) -> np.ndarray:
    """float32 at the model's size: each person's own disparity (the median of its sure core) over its extent
    (probability ≥ edge_low), 0 elsewhere. Each connected person is its own: one farther behind another keeps its
    depth. A person whose core is smaller than min_core_share of the frame is none (a false positive's speck).
    `faces` (boxes in the frame's pixels, `frame_size` its width and height): only a part that overlaps one is a
    person; None: every part is. A cell clearly behind its person and far from her own core gets none
    (_keep_near_own_core)."""
    height, width = probability.shape
    small = shrink(disparity, height, width)
    count, labels = cv2.connectedComponents((probability >= settings.edge_low).astype(np.uint8), connectivity=8)
    core = probability >= settings.core_probability
    targets = np.zeros((height, width), np.float32)
    for label in _labels_with_faces(labels, faces, frame_size) if faces is not None else range(1, count):
        person = labels == label
        sure = core & person
        if sure.sum() >= settings.min_core_share * probability.size:
            targets[person] = np.median(small[sure])
    _keep_near_own_core(targets, small, core, settings, _head_cells(faces, frame_size, probability.shape))
    return targets


def _keep_near_own_core(targets: np.ndarray, small: np.ndarray, core: np.ndarray, settings: FusionSettings,
                        heads: np.ndarray) -> None:
    """No target (in place) for a cell clearly behind its person (behind_margin), outside her head's span (`heads`)
    and farther than core_reach cells from her own core (at her depth or in her head's span): an object the model
    takes for part of her is left alone, her hair is not."""
    behind = targets - small > settings.behind_margin
    if not behind.any():
        return
    own_core = (core & (targets > 0) & (~behind | heads)).astype(np.uint8)
    size = 2 * settings.core_reach + 1
    near = cv2.dilate(own_core, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))).astype(bool)
    targets[behind & ~(near | heads)] = 0  # the whole head's span kept: hair stands out farther than core_reach


def shrink(disparity: Any, height: int, width: int) -> np.ndarray:
    """float32 (height, width) on the host: `disparity` (NumPy or CuPy) shrunk on its own side by the mean of up to
    SHRINK_SAMPLES² evenly spread samples a cell (the area mean where the size divides evenly), so that a GPU map
    crosses to the host at the model's 256x256, not whole (8 MB a 1080p frame)."""
    xp = array_module(disparity)
    rows = _sample_points(disparity.shape[0], height, xp)  # (height, k)
    cols = _sample_points(disparity.shape[1], width, xp)  # (width, k)
    # rows first, whole (contiguous copies), then columns of the few rows left: separable, 4x faster than at once
    tall = disparity[rows.ravel()].reshape(height, rows.shape[1], -1).mean(axis=1, dtype=xp.float32)
    small = tall[:, cols.ravel()].reshape(height, width, cols.shape[1]).mean(axis=2, dtype=xp.float32)
    return np.ascontiguousarray(to_host(small), dtype=np.float32)


def _sample_points(size: int, cells: int, xp: Any) -> Any:
    """(cells, k) indices into an axis of `size`: k points spread evenly over each of `cells` equal cells."""
    step = size / cells
    count = min(max(int(np.ceil(step)), 1), SHRINK_SAMPLES)
    offsets = (xp.arange(count, dtype=xp.float64) + 0.5) / count
    points = (xp.arange(cells, dtype=xp.float64)[:, None] + offsets[None, :]) * step
    return xp.minimum(points.astype(xp.int64), size - 1)


def fuse_person(disparity: Any, probability: Any, targets: Any, settings: FusionSettings = FusionSettings()) -> Any:
    """`disparity` (H x W, NumPy or CuPy) with the person's pixels raised toward the person's own disparity by the
    mask's confidence: d + w·max(target − d, 0), w rising from 0 at edge_low to 1 at edge_high. `probability` and
    `targets` (person_targets, 0 where no person) are at the frame's size. Nothing outside the mask changes and no
    pixel is pulled farther."""
    xp = array_module(disparity)
    span = settings.edge_high - settings.edge_low
    # in place on two frame-size arrays, not six temporaries: 1.3 → 0.8 ms a 720p frame on a CPU
    weight = (probability - np.float32(settings.edge_low)).astype(xp.float32, copy=False)
    weight *= np.float32(1 / span)
    xp.clip(weight, 0, 1, out=weight)
    fused = (targets - disparity).astype(xp.float32, copy=False)
    xp.maximum(fused, 0, out=fused)
    fused *= weight
    fused += disparity
    return fused


def _head_cells(faces: list[Box] | None, frame_size: tuple[int, int] | None, shape: tuple[int, ...]) -> np.ndarray:
    """The model's cells around each face: its box grown HEAD_SPAN times about its centre (hair, a helmet)."""
    heads = np.zeros(shape[:2], bool)
    if not faces or frame_size is None:
        return heads
    sx, sy = shape[1] / frame_size[0], shape[0] / frame_size[1]
    for x, y, w, h in faces:
        cx, cy, half_w, half_h = (x + w / 2) * sx, (y + h / 2) * sy, HEAD_SPAN * w * sx / 2, HEAD_SPAN * h * sy / 2
        top, left = max(int(cy - half_h), 0), max(int(cx - half_w), 0)
        heads[top:max(int(cy + half_h), top), left:max(int(cx + half_w), left)] = True
    return heads


def _labels_with_faces(labels: np.ndarray, faces: list[Box], frame_size: tuple[int, int] | None) -> list[int]:
    """The connected parts (labels ≥ 1 of the model-size `labels`) that a face box overlaps."""
    assert frame_size is not None, "face boxes need the frame's size"
    height, width = labels.shape
    sx, sy = width / frame_size[0], height / frame_size[1]
    found: set[int] = set()
    for x, y, w, h in faces:
        cells = labels[int(y * sy):max(int(y * sy) + 1, int((y + h) * sy)),
                       int(x * sx):max(int(x * sx) + 1, int((x + w) * sx))]
        found.update(int(label) for label in np.unique(cells) if label > 0)
    return sorted(found)


class FocusFaces:
    """A live run's auto focus's faces, handed from the render stage (which publishes them after each frame's
    focus, with the frame's index) to the refine stage's gate, on another thread. A frame's faces are None where
    its focus was a point or a fixed value: the focus then looks for none."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: tuple[int, tuple[Box, ...] | None] | None = None

    def publish(self, index: int, faces: list[Box] | None) -> None:
        with self._lock:
            self._latest = (index, None if faces is None else tuple(faces))

    def latest(self) -> tuple[int, tuple[Box, ...] | None] | None:
        """(the frame's index, its faces) of the newest frame published; None before the first."""
        with self._lock:
            return self._latest


class FaceGate:
    """The faces a person must hold to count. With `focus_faces` (a live run) the auto focus's, found beside the
    render; where the focus looks for none (a point, a fixed value), its own, looked for on a thread of its own every
    `every` frames. Without (a file run) its own, looked for on this thread every `every` frames and at a cut, on
    the frame itself, so that every run of a file is the same (the render's faces would reach it at whichever frame
    the render had got to); small faces as the focus's file look finds them (FACE_FINE_EVERY). Boxes are held
    between looks."""

    def __init__(self, every: int = FACE_EVERY, focus_faces: FocusFaces | None = None) -> None:
        from stream.faces import FaceFinder

        # the fine pass (30-75 ms on a CPU) at a shot's first look that finds none, then at every FACE_FINE_EVERY-th
        self.finder = FaceFinder(fine_every=FACE_FINE_EVERY, fine_eager=1)
        self.every = every
        self.focus_faces = focus_faces
        self._beside: Any = None  # stream.faces.BackgroundFaceFinder, started where the focus first looks for none
        self._wait = 0
        self._shot_from = 0  # the index of the frame the last cut was found at: faces found before it are stale
        self._size: tuple[int, ...] | None = None  # the frames' (height, width): boxes are in their pixels
        self._missed = False  # the last look found none and its faces were kept (_take)
        self.faces: list[Box] = []

    def __call__(self, image_bgr: np.ndarray, cut: bool = False, index: int = 0) -> list[Box]:
        """This frame's faces; `index`: the frame's (a live run's gate compares it with the render's). A frame of
        another size (a camera changing mode) is a cut: boxes held from the old size would gate the wrong parts."""
        cut = _new_size(self, image_bgr) or cut
        if cut:
            self._shot_from = index
        if self.focus_faces is None:
            return self._look_here(image_bgr, cut)
        seen = self.focus_faces.latest()
        if seen is None:  # the render has shown no frame yet: its focus's first faces come within a few frames
            return []
        shown_at, faces = seen
        if faces is None:
            return self._look_beside(image_bgr, cut, index)
        self._wait = 0  # the focus may stop looking (a click): this gate's own look is then due at once
        # the render is behind this stage: at a cut, what it knew until it reached the cut is the last shot's
        self.faces = list(faces) if shown_at >= self._shot_from else []
        return self.faces

    def _look_here(self, image_bgr: np.ndarray, cut: bool) -> list[Box]:
        if cut:  # a new shot's small faces are looked for at once, not up to FACE_FINE_EVERY looks later
            self.finder.look_closely()
        if cut or self._wait <= 0:
            self._take(list(self.finder.detect_all(self.finder.prepare(image_bgr, inline=True))), cut)
            self._wait = self.every
        self._wait -= 1
        return self.faces

    def _take(self, found: list[Box], cut: bool) -> None:
        """A look's faces. One that finds none keeps the last look's once (not at a cut): the cascade misses a face
        it found a look before, the same person in the same place (5 of 12 looks on a 1280x720 clip), and the
        person's hair then went soft for `every` frames and sharp again."""
        hold = not found and not cut and not self._missed and bool(self.faces)
        self._missed = hold
        if not hold:
            self.faces = found

    def _look_beside(self, image_bgr: np.ndarray, cut: bool, index: int) -> list[Box]:
        """The gate's own look, on a thread of its own: this stage goes on with the faces it holds meanwhile."""
        if self._beside is None:
            from stream.faces import BackgroundFaceFinder

            self._beside = BackgroundFaceFinder(self.finder)
        if cut:  # the last shot's faces, and a look at one of its frames, say nothing of this one
            self._beside.discard()
            self.faces = []
        for detection in self._beside.results():
            self._take(list(detection.faces), False)
        if cut or self._wait <= 0:
            self._beside.submit(image_bgr, index)
            self._wait = self.every
        self._wait -= 1
        return self.faces

    def close(self) -> None:
        """Ends the own look's thread, if it was started."""
        if self._beside is not None:
            self._beside.close()


class PersonMask:
    """refine.person_mask on: each frame's refined disparity fused with the person mask of its own picture, for
    the people a face was found in (`faces`; None: every part of the mask, as for a test's synthetic mask)."""

    def __init__(self, segmenter: PersonSegmenter, backend: str = "cpu", settings: FusionSettings = FusionSettings(),
                 faces: FaceGate | None = None, upsampling: Upsampling = Upsampling()) -> None:
        self.segmenter = segmenter
        self.backend = backend
        self.settings = settings
        self.faces = faces
        self.upsampling = upsampling
        self._steady: np.ndarray | None = None  # the probability steadied over frames (steadied)
        self._faceless = 0  # frames in a row the gate held no face
        self._size: tuple[int, ...] | None = None  # the frames' (height, width)

    def __call__(self, refined: Any, image_bgr: np.ndarray, guide: Any = None, cut: bool = False,
                 index: int = 0) -> Any:
        """`guide`: the frame where the refined map is (a CuPy copy on the GPU), else `image_bgr`. `cut`: a new
        shot, whose faces are looked for at once. `index`: the frame's (FaceGate)."""
        guide = image_bgr if guide is None else guide
        # the model's probability is 256x256 at any frame size: a new size starts it afresh, as a cut does
        cut = _new_size(self, image_bgr) or cut
        faces = self.faces(image_bgr, cut, index) if self.faces is not None else None
        if faces == []:  # no face: no part of the mask would count, so the model is not run (3-7 ms on a CPU)
            self._faceless += 1
            if self._faceless > FACE_EVERY:  # gone a while: a face's first frame takes its mask as it comes
                self._steady = None
            return refined
        # a gate that blinked for a frame or a few keeps the steadied mask: restarting it there brought back the
        # hair's wavering (large moves are taken at once anyway: steadied)
        self._faceless = 0
        probability = self.steadied(self.segmenter.probability(image_bgr), cut)
        size = (image_bgr.shape[1], image_bgr.shape[0])
        targets = person_targets(refined, probability, self.settings, faces, size)
        if not targets.any():  # no person: the map as it was, and no upsampling paid for
            return refined
        height, width = refined.shape[:2]
        full_targets = _nearest(targets, height, width, refined)
        probability = guided_upsample(probability, guide, self.backend, self.upsampling)
        return fuse_person(refined, probability, full_targets, self.settings)

    def steadied(self, probability: np.ndarray, cut: bool = False) -> np.ndarray:
        """The model's probability averaged over frames where it only wavers (MASK_STEADY_STEP), taken as it is
        where it moved, at a cut and at the first frame or a new frame size (which __call__ passes as a cut)."""
        last = self._steady
        if cut or last is None or last.shape != probability.shape:
            self._steady = probability
            return probability
        wavering = np.abs(probability - last) < MASK_STEADY_STEP
        self._steady = np.where(wavering, last + MASK_STEADY_WEIGHT * (probability - last), probability)
        return self._steady

    def close(self) -> None:
        if self.faces is not None:
            self.faces.close()


def _new_size(holder: Any, image: np.ndarray) -> bool:
    """Whether `image`'s size differs from the last one `holder` saw (not at its first), noted in holder._size."""
    last, holder._size = holder._size, image.shape[:2]
    return last is not None and last != holder._size


def _nearest(targets: np.ndarray, height: int, width: int, like: Any) -> Any:
    """The model-size target map at the frame's size (each person's one value: nearest), on `like`'s side."""
    xp = array_module(like)
    small = xp.asarray(targets)  # 256x256: uploaded small, then indexed on the GPU
    rows = ((xp.arange(height) + 0.5) * (targets.shape[0] / height)).astype(xp.int32)
    cols = ((xp.arange(width) + 0.5) * (targets.shape[1] / width)).astype(xp.int32)
    return xp.take(xp.take(small, rows, axis=0), cols, axis=1)  # rows, then columns: 2.2 → 0.4 ms at 720p (CPU)


# The model caches (folders) where refine.person_mask: auto could not have the model in this process: each input of
# a batch builds its stages again, and says so once.
AUTO_MISSING: set[str] = set()


def person_mask_for(setting: str, backend: str, threads: int = 0, focus_faces: FocusFaces | None = None,
                    upsampling: Upsampling = Upsampling()) -> PersonMask | None:
    """refine.person_mask's stage part: None for off; for on and auto, the model loaded on the refinement's device.
    on: fetched on first use, a model that cannot be had (no network, a damaged file) refused in one line. auto (the
    default preset's): the cached model; fetched only where this process has just downloaded another (a first run,
    online), so that a default run never waits on a network that is not there; otherwise one warning line, once a
    process, naming the fetch, and the run goes on without the mask. On the GPU as on the CPU: its device path
    passed the gpu tests on an H200 (2026-11-30). `focus_faces`: a live run's (FaceGate); `upsampling`: the refine
    stage's parameters."""
    if setting == "off":
        return None
    from models import download
    from stream.errors import UserError

    cache = str(download.cache_dir())
    if setting == "auto" and cache in AUTO_MISSING:  # a batch's next input: said once
        return None
    try:
        if setting == "auto" and not PERSON_MASK_MODELS[MODEL].path.is_file() and not download.DOWNLOADED:
            raise ModelError(f"its model ({MODEL}, 0.45 MB) is not in the cache")
        segmenter = load_segmenter(backend, threads)
    except ModelError as exc:
        if setting == "on":
            raise UserError(f"{exc} (or set refine.person_mask: off)") from None
        AUTO_MISSING.add(cache)
        notify(f"no person mask in this run: {exc}; to have it, run 'depthcam models fetch {MODEL}' "
               f"(or pass --person-mask off to run without it and without this line)")
        return None
    return PersonMask(segmenter, backend, faces=FaceGate(focus_faces=focus_faces), upsampling=upsampling)
