"""The pipeline's stages behind one small protocol: `process(batch) -> batch`.

The pipeline runs each stage on its own thread and knows nothing of what it does. A stage says
how it wants its input batched (`max_batch`, `max_wait_ms`); only depth inference batches.
"""
from __future__ import annotations

import threading
from typing import Protocol

import cv2
import numpy as np

import kernels
from kernels.backend import to_host
from kernels.focus_band import focus_band
from kernels.temporal import RefinedFilter
from models.download import ModelError
from models.postprocess import DisparityNormaliser
from models.runtime import DepthEstimator, RunTerminated
from models.segmentation import FocusFaces, Upsampling, person_mask_for
from stream.config import RefineConfig, RenderConfig
from stream.errors import StopAfter
from stream.focus import FocusController, SceneCuts
from stream.frame import Frame, now_ns
from stream.queues import POLL_S, LatestFrameQueue, Stopped
from stream.workers import lower_priority, worker_thread


class Stage(Protocol):
    name: str
    max_batch: int
    max_wait_ms: float
    passes_at_once: bool  # hands each frame on at once, its work done elsewhere (no admission for it, live)

    def process(self, batch: list[Frame]) -> list[Frame]: ...

    def close(self) -> None: ...


# frame.extra's key for the depth stage's cut test of a frame (sync runs, which see every frame in order): the
# render's focus takes it instead of testing the frame again (1.1-1.3 ms a frame at 720p-1080p, on the slowest stage)
SCENE_CUT = "scene_cut"
# frame.extra's key for the picture an async run's depth was made from (the same array while a map is reused): the
# refined map's temporal filter takes a new map made from a different picture (motion, a cut) whole
DEPTH_IMAGE = "depth_image"


def normalise_per_shot(normaliser: DisparityNormaliser, cut: bool, frame: Frame, disparity):
    """The disparity on [0, 1], its range smoothed over the frames' times within a shot and taken afresh at a
    cut to a new one (a new shot's depths have nothing to do with the last one's)."""
    if cut:
        normaliser.reset()
    return normaliser(disparity, frame.pts_seconds)


def deferred_picture(frame: Frame) -> bool:
    """Whether the frame's picture is made when first read (a network stream's PendingFrame: a property)."""
    return isinstance(getattr(type(frame), "image", None), property)


class DepthStage:
    """Batched network inference; every frame gets the depth predicted from itself (file runs)."""

    name = "depth"
    passes_at_once = False

    def __init__(self, estimator: DepthEstimator, normaliser: DisparityNormaliser, max_batch: int = 1,
                 max_wait_ms: float = 0.0, on_device: bool = False) -> None:
        self.estimator = estimator
        self.normaliser = normaliser
        self.max_batch = max_batch
        self.max_wait_ms = max_wait_ms
        self.on_device = on_device  # leave the depth on the GPU when the next stages run there
        # this stage's stop for the network: a call about to start is ended too, not only one in progress (a flag
        # on the estimator would also end the next run's calls: it is kept for it)
        self._cancel = threading.Event()
        self._cuts = SceneCuts()

    def process(self, batch: list[Frame]) -> list[Frame]:
        try:
            # every call at max_batch frames where the network runs on the GPU: one input shape, one cuDNN plan
            depths = self.estimator.predict([f.image for f in batch], on_device=self.on_device, cancel=self._cancel,
                                            pad_to=self.max_batch)
        except RunTerminated:  # interrupt(): the run is stopping
            raise Stopped from None
        for done, (frame, depth) in enumerate(zip(batch, depths, strict=True)):
            try:
                disparity = self.estimator.to_disparity(depth)
            except ModelError as exc:  # NaN or inf from this frame: the frames before it are good, and written
                raise StopAfter(batch[:done], exc) from None
            cut = frame.extra[SCENE_CUT] = self._cuts.is_cut(frame.image)
            frame.disparity = normalise_per_shot(self.normaliser, cut, frame, disparity)
            frame.depth_index = frame.index
            frame.extra["batch_size"] = len(batch)
        return batch

    def interrupt(self) -> None:
        """A stop: end the network's call in progress instead of waiting for it (FCRN's batch of 8 on a CPU), and
        start no other (the stop may come while the batch is collected or prepared)."""
        self._cancel.set()  # before terminate(): see DepthEstimator._run
        self.estimator.terminate()

    def close(self) -> None:
        pass


class AsyncDepthStage:
    """Live mode: the network runs on its own thread on the newest frame captured (offer(); without it, the newest
    that reached this stage); every frame passes at once with the newest depth available. Refinement, guided by
    the current frame, re-aligns the slightly stale depth to the current edges, so the display keeps the camera's
    rate."""

    name = "depth"
    max_batch = 1
    max_wait_ms = 0.0
    passes_at_once = True  # the network works on its own thread; a frame only picks up the newest depth

    def __init__(self, estimator: DepthEstimator, normaliser: DisparityNormaliser, stop: threading.Event) -> None:
        self.estimator = estimator
        self.normaliser = normaliser
        self.stop = stop  # the pipeline's: stops waiting for the first depth
        self._closed = threading.Event()  # this stage's own: ends the worker on close()
        self.pending: LatestFrameQueue[Frame] = LatestFrameQueue(1, self._closed, name="async-depth")
        self._latest: tuple[np.ndarray, int, int, np.ndarray] | None = None  # disparity, its frame, network ns, picture
        self._reported: int | None = None
        self._ready = threading.Condition()
        self._error: BaseException | None = None
        self._cuts = SceneCuts()  # used on the worker thread only
        # A frame took a depth since the network last started (set at first): the network starts again only then, so
        # it predicts no more often than frames are shown, whichever pictures it is handed (see offer()).
        self._wanted = threading.Event()
        self._wanted.set()
        self._offered = False  # the capture thread hands the network its pictures: the admitted frames are not handed
        self._worker = worker_thread("depth-async", self._run)
        self._worker.start()

    def offer(self, frame: Frame) -> None:
        """A live run's every captured frame, on the capture thread (Pipeline): the network starts on the newest
        picture captured, not the newest that reached this stage, which had waited in the capture queue for its
        admission and then in `pending` for the network (live-cpu at 60 fps on two busy cores: delivered by the
        source 18-22 ms before the network took it, now 10-12; the depth shown 8 frames old at the median, now 7).
        A picture made only when first read (a PendingFrame: a network stream's, a V4L2 MJPEG camera's) is left to
        the admitted path: made here, it would be made on the worker at low priority, the first stage waiting on it."""
        if deferred_picture(frame):
            return
        self._offered = True
        self.pending.put(frame)  # the newest only: an older one not yet taken is dropped (not a frame of the run's)

    def _await_wanted(self) -> None:
        """Until a frame has taken a depth since the network last started; raises Stopped on close."""
        while not self._wanted.wait(POLL_S):
            if self._closed.is_set():
                raise Stopped
        self._wanted.clear()

    def _run(self) -> None:
        # with `inference.threads: 1` ONNX Runtime computes on this very thread
        lower_priority()  # the live run's background niceness (stream.workers)
        try:
            while True:
                self._await_wanted()
                frame = self.pending.get()
                started = now_ns()
                depth = self.estimator.predict([frame.image], cancel=self._closed)[0]
                # the newest frames, a few apart: a cut between two of them is still a cut (the render's focus, which
                # sees every frame, tests them itself)
                disparity = self.estimator.to_disparity(depth)
                disparity = normalise_per_shot(self.normaliser, self._cuts.is_cut(frame.image), frame, disparity)
                with self._ready:
                    self._latest = (disparity, frame.index, now_ns() - started, frame.image)
                    self._ready.notify_all()
        except (Stopped, RunTerminated):
            return
        except BaseException as exc:  # surfaced on the pipeline thread by process()
            with self._ready:
                self._error = exc
                self._ready.notify_all()

    def process(self, batch: list[Frame]) -> list[Frame]:
        for frame in batch:
            if not self._offered or deferred_picture(frame):  # else the capture thread handed it (a newer) already
                self.pending.put(frame)
            self._wanted.set()
            with self._ready:
                # Only the very first frames wait: there is no depth at all yet.
                while self._latest is None and self._error is None:
                    if self.stop.is_set():
                        raise Stopped
                    self._ready.wait(0.05)
                if self._error is not None:
                    raise self._error
                frame.disparity, frame.depth_index, network_ns, frame.extra[DEPTH_IMAGE] = self._latest
                if frame.depth_index != self._reported:  # each prediction's time counted once
                    self._reported = frame.depth_index
                    frame.extra["network_ns"] = network_ns
        return batch

    def interrupt(self) -> None:
        """A stop: the worker's call in progress ends, and none starts after it (see DepthStage.interrupt)."""
        self._closed.set()
        self.estimator.terminate()  # the prediction in progress is for no frame now (a slow model's: seconds)

    def close(self) -> None:
        self.interrupt()
        self._worker.join(timeout=2.0)


def upsample(disparity: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize of a model-resolution map to the frame's size (the unrefined baseline)."""
    if disparity.shape == (height, width):
        return disparity
    return cv2.resize(disparity, (width, height), interpolation=cv2.INTER_LINEAR)


class CpuThreads:
    """How many cores a stage's Numba kernels use (0: all of Numba's). On few cores, stages that each use
    every core fight over them; one thread each lets the pipeline overlap them instead. Numba's count belongs
    to the calling thread, and a stage is not always called on its own thread (the benchmark's warm-up frame
    and sequential run, a photo's final render on the main thread): set at every call where it differs
    (reading it costs well under a microsecond), not once at a first call that may have been on another
    thread, which left the stage's own thread on every core (live-cpu's bench measured 2 threads, not 1)."""

    def __init__(self, threads: int) -> None:
        self.threads = threads

    @staticmethod
    def count(threads: int, most: int) -> int:
        """The Numba threads a stage configured with `threads` runs on, of `most` (0: all of them)."""
        return min(threads, most) if threads else most

    def apply(self) -> None:
        import numba

        wanted = self.count(self.threads, numba.config.NUMBA_NUM_THREADS)
        if numba.get_num_threads() != wanted:
            numba.set_num_threads(wanted)


class RefineStage:
    """Joint bilateral refinement guided by the frame: depth edges snap to the image's edges."""

    name = "refine"
    max_batch = 1
    max_wait_ms = 0.0
    passes_at_once = False

    def __init__(self, config: RefineConfig, backend: str, temporal: RefinedFilter | None = None,
                 focus_faces: FocusFaces | None = None) -> None:
        self.config = config
        self.backend = backend
        self.temporal = temporal  # normalise.pixel_smoothing's filter of the refined map (None: off)
        self._threads = CpuThreads(config.threads)
        # None: off; `focus_faces`: a live run's render's faces, which its gate takes rather than look itself
        upsampling = Upsampling(config.work_width, config.live_radius, config.live_sigma_spatial, config.sigma_range)
        self.person_mask = person_mask_for(config.person_mask, backend, config.threads, focus_faces, upsampling)

    def process(self, batch: list[Frame]) -> list[Frame]:
        for frame in batch:
            assert frame.disparity is not None, "refine needs the depth stage before it"
            if self.backend == "cuda":
                self._refine_on_gpu(frame)
            else:
                self._threads.apply()
                frame.refined = self._refine(frame.disparity, frame.image, upsample)
                self._fuse_person(frame)
                self._smooth(frame)
        return batch

    def _fuse_person(self, frame: Frame, guide=None) -> None:
        """refine.person_mask: a person's pixels (one a face was found in) raised to the person's own depth, by a
        mask of the frame's own picture (an async run's depth may be older; the mask, ~10 ms on a CPU, is made
        afresh), before the temporal filter, which smooths the mask's flicker at hair with the rest of the map."""
        if self.person_mask is not None:
            frame.refined = self.person_mask(frame.refined, frame.image, guide, cut=bool(frame.extra.get(SCENE_CUT)),
                                             index=frame.index)

    def _smooth(self, frame: Frame) -> None:
        """normalise.pixel_smoothing: the refined map smoothed where the picture is still, its motion tested at the
        network map's size; a cut found by the depth stage (sync runs) starts afresh, elsewhere (async) the motion
        test takes a cut's pixels whole (nearly every one changed), and a new map's own picture is tested too."""
        if self.temporal is None:
            return
        if frame.extra.get(SCENE_CUT):
            self.temporal.reset()
        frame.refined = self.temporal(frame.refined, frame.image, frame.disparity.shape[:2], frame.pts_seconds,
                                      frame.extra.get(DEPTH_IMAGE))

    def _refine(self, disparity, guide, resize):
        """The configured mode, on whichever side the arrays are (NumPy or CuPy in, the same out)."""
        c = self.config
        if c.mode == "live":
            return kernels.refine_live(disparity, guide, work_width=c.work_width, radius=c.live_radius,
                                       sigma_spatial=c.live_sigma_spatial, sigma_range=c.sigma_range,
                                       backend=self.backend)
        coarse = resize(disparity, guide.shape[1], guide.shape[0])
        if c.mode == "off":
            return coarse
        return kernels.joint_bilateral(coarse, guide, radius=c.radius, sigma_spatial=c.sigma_spatial,
                                       sigma_range=c.sigma_range, backend=self.backend)

    def _refine_on_gpu(self, frame: Frame) -> None:
        """The frame goes to the GPU once; the refined map is made and stays there. The renderer and
        the focus read it there (focus takes a few medians), and only a sink that shows the depth
        copies it to the host: a 1080p map is 8 MB of PCIe traffic a frame that a render does not need."""
        import cupy

        from kernels.bilateral_cuda import resize_bilinear_cuda

        def resize(disparity, width: int, height: int):
            return disparity if disparity.shape == (height, width) else resize_bilinear_cuda(disparity, height, width)

        guide = cupy.asarray(frame.image)
        disparity = cupy.ascontiguousarray(cupy.asarray(frame.disparity, dtype=cupy.float32))  # model size: small
        frame.refined = self._refine(disparity, guide, resize)
        self._fuse_person(frame, guide)
        self._smooth(frame)  # before the wait below: its kernels are this stage's time too
        frame.extra["gpu_image"] = guide
        # Kernel launches return at once; waiting here keeps this stage's measured time its own (the
        # render would otherwise wait for it and be charged), and costs nothing: the render needs it.
        cupy.cuda.get_current_stream().synchronize()

    def close(self) -> None:
        if self.person_mask is not None:  # its gate's own face look, where it had one on a thread
            self.person_mask.close()


def blur_side(width: int, height: int) -> int:
    """The side of the frame the blur scales with, so a preset looks the same at 480p and 1080p: the shorter one.
    By the height, a portrait-orientation video (1080x1920) got 1.8 times the blur of the same scene in landscape
    (1920x1080), though lens and sensor are the same."""
    return min(width, height)


def blur_px(render: RenderConfig, width: int, height: int) -> float:
    """The largest blur radius in a width x height frame's own pixels (render.blur is given at reference_height)."""
    return render.blur * blur_side(width, height) / render.reference_height


class RenderStage:
    """Synthetic depth of field focused on the subject."""

    name = "render"
    max_batch = 1
    max_wait_ms = 0.0
    passes_at_once = False

    def __init__(self, config: RenderConfig, focus: FocusController, backend: str, file_run: bool = False,
                 focus_faces: FocusFaces | None = None) -> None:
        self.config = config
        self.focus = focus
        self.focus_faces = focus_faces  # where the focus's faces go after each frame (a live run's person mask)
        self.backend = backend
        self.file_run = file_run  # a photo or a file into a file: not time-bound (render.exact_far's auto)
        self._threads = CpuThreads(config.threads)

    def process(self, batch: list[Frame]) -> list[Frame]:
        if self.backend == "cpu":
            self._threads.apply()
        for frame in batch:
            assert frame.refined is not None, "render needs the refine stage before it"
            # On the GPU path `refined` is a CuPy array: NumPy's medians and quantiles in the focus
            # dispatch to CuPy (NEP 18) and only the focus value comes back.
            frame.focus = self.focus.update(frame.image, frame.refined, frame.pts_seconds,
                                            cut=frame.extra.get(SCENE_CUT))
            if self.focus_faces is not None:
                self.focus_faces.publish(frame.index, self.focus.faces_now())
            blur = blur_px(self.config, frame.width, frame.height)
            gpu_image = frame.extra.pop("gpu_image", None)  # the frame, uploaded by the refine stage
            if blur <= 0:
                frame.output = frame.image
                continue
            # the renderer's own disparity: the subject's relief within the band in focus (widened to a group's
            # faces); frame.refined, the depth a sink saves or shows, stays the measured one
            rendered = focus_band(frame.refined, frame.focus, self.config.focus_band, self.focus.widen)
            if gpu_image is not None:
                frame.output = to_host(kernels.depth_of_field(
                    gpu_image, rendered, frame.focus, blur, highlight_boost=self.config.highlight_boost,
                    exact_far=self.config.exact_far_for(self.file_run), backend="cuda"))
            else:
                frame.output = kernels.depth_of_field(frame.image, rendered, frame.focus, blur,
                                                      highlight_boost=self.config.highlight_boost,
                                                      exact_far=self.config.exact_far_for(self.file_run),
                                                      backend=self.backend)
        return batch

    def close(self) -> None:
        self.focus.close()
