"""ONNX Runtime sessions for depth networks: providers chosen by what really runs, batched calls."""
from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from kernels.backend import array_module, cuda_available, cuda_device_error
from models.download import ModelError
from models.levels import IDENTITY, UINT8_LEVELS, levels_of, stretched_table
from models.registry import IMAGENET_MEAN, IMAGENET_STD, ModelSpec, cached_file_of, notify
from stream.console import command_word

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
CPU = "CPUExecutionProvider"
# ONNX Runtime's names of the float types an image input or a depth map may have (a user's own model may be a
# float16 export: its input is float16 too, which ONNX Runtime refuses to be fed float32).
ORT_TENSOR_DTYPES = {"tensor(float)": np.dtype(np.float32), "tensor(float16)": np.dtype(np.float16),
                     "tensor(double)": np.dtype(np.float64)}
# An image input may also be uint8: a model that scales its input itself (TFLite and Keras conversions, graphs with
# their preprocessing baked in) takes RGB 0..255 as it is.
UINT8 = np.dtype(np.uint8)
INPUT_DTYPES = {**ORT_TENSOR_DTYPES, "tensor(uint8)": UINT8}


def _import_onnxruntime():
    import onnxruntime as ort

    # Warnings and below are noise for users; errors still show.
    ort.set_default_logger_severity(3)
    return ort


DEVICES = ("auto", "cpu", "cuda")


def requested_providers(device: str, tensorrt: bool = False) -> list[str]:
    """Ask for CUDA only where a GPU really exists: onnxruntime-gpu lists CUDA everywhere and logs an
    error-level line when a session asks for it on a machine without the CUDA libraries. Another word is refused:
    "gpu" or "CPU" ran as "auto", silently on the CPU, or on the GPU where one was asked not to be used."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if device == "cpu":
        return [CPU]
    if not cuda_available():
        if device == "cuda":
            raise ModelError(cuda_device_error())
        return [CPU]
    return ([TENSORRT] if tensorrt else []) + [CUDA, CPU]


# ONNX Runtime's CUDA provider (cuDNN 9, ORT >= 1.20) builds each convolution's cuDNN plan for the input shape of
# the call and builds it again whenever that shape changes, with no cache of earlier shapes; EXHAUSTIVE, its default
# search, makes each build costly (hundreds of ms reported for conv-heavy models: onnxruntime issue 23006, PaddleX
# pull request 5057). Dynamic batching gave the depth stage 1 to 4 frames a call, a new shape at nearly every call:
# the likely cause of the pipelined run's 10.5 fps on an H200 against the sequential run's 33 (bench/RESULTS.md,
# session 28). So a batching session on the GPU runs every call at one batch size (DepthEstimator.predict's pad_to),
# and keeps ONNX Runtime's search. $DEPTHCAM_CUDNN_SEARCH=heuristic asks for cuDNN's lighter heuristic instead.
CUDNN_SEARCHES = ("exhaustive", "heuristic")
CUDNN_SEARCH_ENV = "DEPTHCAM_CUDNN_SEARCH"
# $DEPTHCAM_GPU_BATCH_PADDING=off lets a GPU call take only its frames again: to measure what the padding saves
PADDING_ENV = "DEPTHCAM_GPU_BATCH_PADDING"


def gpu_batch_padding() -> bool:
    """Whether a batching session on the GPU pads its calls to one batch size ($DEPTHCAM_GPU_BATCH_PADDING: on,
    the default, or off)."""
    given = os.environ.get(PADDING_ENV, "").strip()
    if given.lower() not in ("", "on", "off"):
        raise ModelError(f"{PADDING_ENV}={given!r} is neither on nor off; set one, or unset it (on)")
    return given.lower() != "off"


def provider_options(providers: list[str]) -> list[dict[str, str]]:
    """The depth session's options for each provider asked for, in order (ONNX Runtime's provider_options): the
    CUDA provider's cuDNN search where $DEPTHCAM_CUDNN_SEARCH sets one."""
    given = os.environ.get(CUDNN_SEARCH_ENV, "")
    if CUDA not in providers or not given.strip():
        return [{} for _ in providers]
    search = given.strip().lower()
    if search not in CUDNN_SEARCHES:
        raise ModelError(f"{CUDNN_SEARCH_ENV}={given!r} is not a cuDNN search; set {' or '.join(CUDNN_SEARCHES)}, "
                         f"or unset it (ONNX Runtime's own: exhaustive)")
    return [{"cudnn_conv_algo_search": search.upper()} if provider == CUDA else {} for provider in providers]


class RunTerminated(Exception):
    """The network's call was ended by DepthEstimator.terminate (a stop), not by a fault."""


@dataclass(frozen=True)
class InputLayout:
    name: str
    layout: str  # NCHW or NHWC
    width: int
    height: int
    static_batch: bool  # the graph's batch dimension is fixed at 1
    symbolic_size: bool = False  # the graph's height or width is symbolic: the size came from --model-size
    dtype: np.dtype = np.dtype(np.float32)  # what the graph takes: float32, float16 (a half-precision export),
    # float64, or uint8 (RGB 0..255 as it is, for a model that scales its input itself)
    open_channels: bool = False  # the graph leaves its channel count symbolic: 3 is checked by a trial run


def _input_layout(session, spec: ModelSpec) -> InputLayout:
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ModelError(f"model {spec.filename} takes {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); "
                         f"a depth model takes one image: export it with the image as its only input")
    meta = inputs[0]
    if meta.type not in INPUT_DTYPES:
        raise ModelError(f"model {spec.filename} takes a {meta.type} input; depthcam feeds float32, float16, float64 "
                         f"or uint8 images (export the model with one of these input types)")
    shape = list(meta.shape)
    if len(shape) != 4:
        raise ModelError(f"model {spec.filename} takes a {len(shape)}-D input {shape}; depthcam needs an image "
                         f"input N x 3 x H x W or N x H x W x 3")
    if isinstance(shape[0], int) and shape[0] != 1:  # ONNX Runtime refused every frame of the run, one by one
        raise ModelError(f"model {spec.filename} takes a fixed batch of {shape[0]} images {shape}; depthcam feeds "
                         f"one frame a call or a dynamic batch: export it with batch 1 or a dynamic batch axis")
    axes = _image_axes(shape)
    if axes is None:
        raise ModelError(f"model {spec.filename} input {shape} has no 3-channel axis; depthcam needs RGB input")
    layout, height, width = axes
    symbolic = not (isinstance(width, int) and isinstance(height, int))
    if spec.input_size != (0, 0):
        wanted_width, wanted_height = spec.input_size
        for axis, have, wanted in (("width", width, wanted_width), ("height", height, wanted_height)):
            if isinstance(have, int) and have != wanted:
                raise ModelError(f"model {spec.filename} has its input {axis} fixed at {have}, not {wanted}; "
                                 f"--model-size can only choose the axes the model leaves free")
        width, height = wanted_width, wanted_height
    if not isinstance(width, int) or not isinstance(height, int):
        raise ModelError(f"model {spec.filename} has a dynamic input size {shape}; give the size to run it at with "
                         f"--model-size WxH (e.g. 518x518 for Depth Anything, 384x384 for DPT/MiDaS)")
    channels = shape[1] if layout == "NCHW" else shape[3]
    return InputLayout(meta.name, layout, width, height, static_batch=shape[0] == 1, symbolic_size=symbolic,
                       dtype=INPUT_DTYPES[meta.type], open_channels=not isinstance(channels, int))


def _image_axes(shape: list) -> tuple[str, Any, Any] | None:
    """(layout, height, width) of a 4-D image input's shape, None without an axis that may hold 3 channels; a
    symbolic height or width stays as ONNX Runtime gives it (a name or None). A symbolic channel axis is
    taken for one: Hugging Face optimum exports every axis of `pixel_values` dynamic, channels included
    (batch_size x num_channels x height x width); the frames' 3 channels are then checked by the first run."""
    if shape[1] == 3:
        return "NCHW", shape[2], shape[3]
    if shape[3] == 3:
        return "NHWC", shape[1], shape[2]
    if not isinstance(shape[1], int):  # PyTorch's layout, the exports' usual one, where both ends are open
        return "NCHW", shape[2], shape[3]
    if not isinstance(shape[3], int):
        return "NHWC", shape[1], shape[2]
    return None


def input_spatial_size(path: Path) -> tuple[int | None, int | None] | None:
    """The model's image input (width, height), None for a symbolic axis; None where the file does not
    load or is no image model (DepthEstimator then says why)."""
    ort = _import_onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = 4  # a failure is DepthEstimator's to say, once
    try:
        shape = ort.InferenceSession(str(path), options, providers=[CPU]).get_inputs()[0].shape
    except Exception:  # noqa: BLE001 (any load failure is reported by DepthEstimator with its fix)
        return None
    axes = _image_axes(shape) if len(shape) == 4 else None
    if axes is None:
        return None
    _, height, width = axes
    return (width if isinstance(width, int) else None), (height if isinstance(height, int) else None)


def input_lut(spec: ModelSpec) -> np.ndarray:
    """256 x 1 x 3 float32: each 8-bit RGB value as the network was trained to see it. Applied with
    cv2.LUT, one table lookup a value (NumPy's broadcast arithmetic took 9x longer: bench/RESULTS.md)."""
    if spec.input_norm == "imagenet":
        mean, std = np.asarray(IMAGENET_MEAN), np.asarray(IMAGENET_STD)
    elif spec.input_norm == "symmetric":
        mean, std = np.full(3, 0.5), np.full(3, 0.5)
    else:
        scale = spec.input_scale if spec.input_norm == "raw" else 1.0 / 255.0
        mean, std = np.zeros(3), np.full(3, 1.0 / (255.0 * scale))
    values = np.arange(256, dtype=np.float64)[:, None] / 255.0
    return ((values - mean) / std).astype(np.float32).reshape(256, 1, 3)


# Output names that say depth (predicted_depth, depth, disparity), and those of what depth models give beside it
# (confidence, uncertainty, normals, a focal length): with several outputs, the depth map is told by its name.
DEPTH_NAME = re.compile(r"depth|disp", re.IGNORECASE)
NOT_DEPTH_NAME = re.compile(r"conf|uncert|var|sigma|std|normal|mask|valid|focal|intrinsic", re.IGNORECASE)


def _with_batch_axis(shape: list, unbatched: bool) -> list:
    """`shape` with the batch axis that a batch-1 model's export squeezed out put back (`unbatched`: the model takes
    batch 1): H x W, or H x W x 1 (its first axis fixed above 1); any other shape as it is."""
    squeezed = len(shape) == 2 or len(shape) == 3 and isinstance(shape[0], int) and shape[0] > 1 and shape[2] == 1
    return [1, *shape] if unbatched and squeezed else shape


def _map_sides(shape: list) -> list | None:
    """The (height, width) of an output shape that may hold one depth map per frame: N x 1 x H x W, N x H x W x 1 or
    N x H x W; None for any other shape (a segmentation model's N x H x W x 2 logits). A side may be symbolic."""
    if len(shape) == 3:
        return shape[1:]
    if len(shape) != 4:
        return None
    if shape[1] == 1:
        return shape[2:]
    if shape[3] == 1:
        return shape[1:3]
    if not isinstance(shape[1], int):  # an open axis: the frames' shape says (PyTorch's layout first)
        return shape[2:]
    return shape[1:3] if not isinstance(shape[3], int) else None


def _is_one_map(meta, unbatched: bool) -> bool:
    """The output's declared shape may be one depth map per frame (_map_sides), its batch axis put back where a
    batch-1 export dropped it, with two rows and columns or more, not a classifier's scores (N x 1000 x 1 x 1);
    symbolic dimensions are checked on the frames."""
    sides = _map_sides(_with_batch_axis(list(meta.shape), unbatched))
    return sides is not None and 1 not in sides and meta.type in ORT_TENSOR_DTYPES


def _depth_output(session, spec: ModelSpec, unbatched: bool) -> str:
    """The name of the output that holds the depth: the only output; of several (depth and its confidence, a
    focal length), the one map whose name says depth, else the only map whose name says nothing else.
    `unbatched`: the model takes batch 1, so its output may have dropped the batch axis (H x W)."""
    outputs = session.get_outputs()
    if len(outputs) == 1:
        _check_depth_output(outputs[0], spec, unbatched)
        return outputs[0].name
    maps = [meta for meta in outputs if _is_one_map(meta, unbatched) and not NOT_DEPTH_NAME.search(meta.name)]
    named = [meta for meta in maps if DEPTH_NAME.search(meta.name)]
    chosen = named if len(named) == 1 else maps
    if len(chosen) != 1:
        listed = ", ".join(f"{meta.name} {list(meta.shape)}" for meta in outputs)
        raise ModelError(f"model {spec.filename} has {len(outputs)} outputs ({listed}) and depthcam cannot tell which "
                         f"is the depth map; export it with the depth map as its only output, or named 'depth'")
    others = ", ".join(meta.name for meta in outputs if meta is not chosen[0])
    notify(f"model {spec.filename} has {len(outputs)} outputs: depthcam reads {chosen[0].name} as the depth map "
           f"(not {others})")
    return chosen[0].name


def _check_depth_output(meta, spec: ModelSpec, unbatched: bool) -> None:
    """A single output must be one depth map per frame."""
    if _is_one_map(meta, unbatched):
        return
    shape = list(meta.shape)
    batched = _with_batch_axis(shape, unbatched)
    vector = len(batched) == 2 and not (isinstance(batched[0], int) and batched[0] > 1)  # N x K: K values a frame
    if meta.type in ORT_TENSOR_DTYPES and (_map_sides(batched) is not None or vector):
        raise ModelError(_no_map(spec, shape))  # a map with a side of 1, or a vector
    raise ModelError(f"model {spec.filename} gives a {meta.type} output {shape}; depthcam needs one "
                     f"depth map per frame, float N x 1 x H x W, N x H x W x 1, N x H x W (or H x W from a "
                     f"batch-1 model) (is this a depth model?)")


def _no_map(spec: ModelSpec, shape: list) -> str:
    """The refusal of an output with a side of 1: values a frame, as a classifier gives (SqueezeNet's N x 1000 x 1 x
    1), where a depth map has rows and columns."""
    values = [v for v in shape[1:] if v != 1]
    count = f"{values[0]} values" if len(values) == 1 and isinstance(values[0], int) else "a vector"
    return (f"model {spec.filename} gives output {shape}: {count} a frame, not a depth map (a classifier's "
            f"scores?); give a depth model (--model tcmonodepth, or your depth model's .onnx)")


def _fed_as_it_is(spec: ModelSpec) -> ModelSpec:
    """The settings of a model with a uint8 input: RGB 0..255 as it is, whatever --model-input says (the
    model scales its input itself); a note where another scaling had been chosen."""
    if spec.input_norm != "raw" or spec.input_scale != 1.0:
        notify(f"model {spec.filename} takes uint8 input: fed RGB 0..255 as it is (the model scales it itself; "
               f"--model-input does not apply)")
    return dataclasses.replace(spec, input_norm="raw", input_scale=1.0)


class DepthEstimator:
    """One network behind ONNX Runtime: BGR frames in, model-resolution depth maps (model units) out."""

    pad_batches = True  # a batching GPU session pads its calls to one batch size (predict's pad_to)

    def __init__(self, spec: ModelSpec, path: Path, device: str = "auto", threads: int = 0,
                 tensorrt: bool = False, real_batch: bool | None = None) -> None:
        """`real_batch`: give a graph exported with batch 1 a dynamic batch (models.dynamic_batch) so a
        batch of frames is one call. None: on the GPU only, where one call keeps it busy; on 2 CPU
        cores one batch-4 call measured no faster than 4 single calls."""
        path = Path(path)  # a library caller's str: the refusals below read its name and folder
        ort = _import_onnxruntime()
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        # ONNX Runtime's workers spin between calls by default; in a pipeline that burns the cores the
        # refine and render stages need (measured on 2 cores: the live preset lost a third of its rate).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # Whatever fails in a session is also raised, and said by depthcam in one line; the session's own error log
        # printed it first with ONNX Runtime's C++ signatures (twice for a short weight file). Providers that fail to
        # load still log on the default logger.
        options.log_severity_level = 4
        asked = requested_providers(device, tensorrt)
        asked_options = provider_options(asked)  # a wrong $DEPTHCAM_CUDNN_SEARCH is said as itself, not as a load fault
        self.pad_batches = gpu_batch_padding()
        try:
            self.session = ort.InferenceSession(str(path), options, providers=asked, provider_options=asked_options)
        except Exception as exc:  # onnxruntime raises its own exception types per failure
            cached = cached_file_of(path)  # a user's file of the same name is not the registry's to fetch
            fault = _external_data_fault(path)
            if fault:
                raise ModelError(f"model file {path} {fault}") from None
            if cached is None:
                refusal = _version_refusal(str(exc)) or _foreign_file(path)
                if refusal:
                    raise ModelError(f"model file {path} {refusal}") from None
            raise ModelError(f"model file {path} {_load_failure(exc, cached)}") from None
        self.providers: list[str] = self.session.get_providers()
        if device == "cuda" and CUDA not in self.providers:
            raise ModelError("--device cuda (or a config's device: cuda) was requested but ONNX Runtime could not "
                             "create its CUDA provider (install onnxruntime-gpu with matching CUDA/cuDNN libraries, or "
                             "use --device cpu)")
        self.input = _input_layout(self.session, spec)
        self.spec = _fed_as_it_is(spec) if self.input.dtype == UINT8 else spec
        self.watch = OutputWatch(self.spec)
        self._lut = input_lut(self.spec)
        self.auto_levels = True  # models/levels.py: False feeds every frame's levels as they are
        # chosen on the exported graph: a batch-1 model's output may have no batch axis (H x W), which the batch
        # rewrite then refuses
        self.output_name = _depth_output(self.session, spec, unbatched=self.input.static_batch)
        if self.input.static_batch and (self.on_gpu if real_batch is None else real_batch):
            self._load_with_real_batch(ort, path, options)
        if self.input.symbolic_size or self.input.open_channels:
            self._try_size(ort)

    def _try_size(self, ort) -> None:
        """A model of dynamic input size does not take every size (patch sizes, strides), nor one whose channel
        count is left open every count: one frame at the chosen size now, before any stage starts, turns a
        refusal into one clear line."""
        width, height = self.input.width, self.input.height
        shape = (1, 3, height, width) if self.input.layout == "NCHW" else (1, height, width, 3)
        quiet = ort.RunOptions()
        quiet.log_severity_level = 4  # the refusal is reported below, not as ONNX Runtime's own log line
        try:
            self.session.run([self.output_name], {self.input.name: np.zeros(shape, self.input.dtype)}, quiet)
        except Exception as exc:  # noqa: BLE001 (onnxruntime raises its own exception types)
            if not self.input.symbolic_size:  # only the channel count was open: the size is the graph's own
                raise ModelError(f"model {self.spec.filename} cannot run on a 3-channel (RGB) {width}x{height} "
                                 f"image ({_first_line(exc)}); depthcam needs an RGB image input") from None
            raise ModelError(f"model {self.spec.filename} cannot run at {width}x{height} ({_first_line(exc)}); "
                             f"give a --model-size it takes (Depth Anything: multiples of 14 such as 518x518; "
                             f"DPT and MiDaS: multiples of 32 such as 384x384)") from None

    def _load_with_real_batch(self, ort, path: Path, options) -> None:
        """Replace the session by one of the same graph with a dynamic batch; where the graph holds a
        batch-1 constant the rewrite cannot prove safe, keep the batch-1 session (frames then loop)."""
        import onnx

        from models.dynamic_batch import make_batch_dynamic

        try:
            rewritten = make_batch_dynamic(onnx.load(str(path)))
            session = ort.InferenceSession(rewritten.SerializeToString(), options, providers=self.providers,
                                           provider_options=provider_options(self.providers))
        except Exception as exc:  # noqa: BLE001 (a user's own model may defeat the rewrite in many ways)
            log.info("%s keeps batch 1 (%s); a batch of frames runs as single calls", path.name, exc)
            notify(f"model {self.spec.filename} takes batch 1 and depthcam cannot give its graph a dynamic batch: a "
                   f"batch of frames runs as single calls; to batch them, export it with a dynamic batch axis "
                   f"(torch.onnx.export(..., dynamic_axes={{{self.input.name!r}: {{0: 'batch'}}}}))")
            return
        self.session = session
        self.input = dataclasses.replace(self.input, static_batch=False)

    @property
    def provider(self) -> str:
        return self.providers[0]

    @property
    def on_gpu(self) -> bool:
        return self.provider in (CUDA, TENSORRT)

    def preprocess(self, image_bgr: np.ndarray) -> np.ndarray:
        _check_frame(image_bgr)
        size = (self.input.width, self.input.height)
        shrinking = image_bgr.shape[1] > size[0] or image_bgr.shape[0] > size[1]
        resized = cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        rgb = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
        levels = levels_of(rgb) if self.auto_levels else IDENTITY  # a dark or washed-out frame stretched (levels.py)
        if self.input.dtype == UINT8:  # a uint8 input takes RGB 0..255 as it is (stretched where levels say so)
            rgb = rgb if levels.identity else cv2.LUT(rgb, stretched_table(levels, UINT8_LEVELS))
        else:
            rgb = cv2.LUT(rgb, self._lut if levels.identity else stretched_table(levels, self._lut))  # → float32
            rgb = rgb.astype(self.input.dtype, copy=False)  # float16 and float64 exports (a no-op for float32)
        return rgb.transpose(2, 0, 1) if self.input.layout == "NCHW" else rgb

    def predict(self, images_bgr: list[np.ndarray], on_device: bool = False,
                cancel: threading.Event | None = None, pad_to: int = 0) -> list:
        """Depth maps (H x W float32 in the model's units), one per image, batched where the graph allows.

        With `on_device` and a CUDA session the maps stay on the GPU (CuPy arrays) for the next stage. `cancel`: the
        caller's stop (a stage's own, as the estimator outlives its run): once set, no further call starts and
        RunTerminated is raised, where terminate() alone missed a stop that came before the call had begun.
        `pad_to`: on the GPU, a batching session's calls all take this many frames (the last repeated, its extra maps
        dropped): a call of another batch size made ONNX Runtime's CUDA provider build its cuDNN plans again (see
        provider_options). Ignored on the CPU, whose provider has no such plans, and for a graph of batch 1.
        """
        if len(images_bgr) == 0:  # np.stack's own words ("need at least one array") named no call of ours
            return []
        inputs = np.stack([self.preprocess(image) for image in images_bgr])
        count = len(inputs)
        if self.on_gpu and not self.input.static_batch and pad_to > count and self.pad_batches:
            inputs = np.concatenate([inputs, np.repeat(inputs[-1:], pad_to - count, axis=0)])
        on_device = on_device and self.on_gpu
        if self.input.static_batch or len(inputs) == 1:
            outputs = [self._run_checked(inputs[i:i + 1], on_device, cancel) for i in range(len(inputs))]
        else:
            outputs = [self._run_batch(inputs, on_device, cancel)]
        xp = array_module(outputs[0])
        output = outputs[0] if len(outputs) == 1 else xp.concatenate(outputs)
        if output.ndim == 4:  # N x 1 x H x W or N x H x W x 1
            output = output[:, 0] if output.shape[1] == 1 else output[..., 0]
        maps = [xp.ascontiguousarray(o, dtype=xp.float32) for o in output[:count]]
        if not self.watch.content_seen:  # until the run's first frame with content: a broken model is refused
            self.watch.check_first_content(images_bgr, maps)
        return maps

    def terminate(self) -> None:
        """End the call in progress, from another thread, at ONNX Runtime's next node (a stop: FCRN takes 0.3 s a
        frame on two cores, and a batch of 8 ran 2.6 s past Ctrl-C). That call raises RunTerminated; later calls
        run as ever (the session stays usable for the next run)."""
        options = self._in_flight
        if options is not None:
            options.terminate = True

    def _run_batch(self, inputs: np.ndarray, on_device: bool, cancel: threading.Event | None = None):
        """One call for the batch. A graph whose batch axis is dynamic but whose layers are not (a reshape to
        batch 1, an output of batch 1) fails or gives too few maps: its frames then go one call each, from
        now on."""
        try:
            return self._run_checked(inputs, on_device, cancel)
        except RunTerminated:
            raise
        except Exception as exc:  # noqa: BLE001 (a ModelError, or onnxruntime's own exception types)
            try:
                singles = [self._run_checked(inputs[i:i + 1], on_device, cancel) for i in range(len(inputs))]
            except RunTerminated:
                raise
            except Exception:  # noqa: BLE001 (a frame fails on its own too: the batch was not the problem)
                raise exc from None
            log.info("%s does not take a batch of %d (%s); its frames run one call each", self.spec.filename,
                     len(inputs), _first_line(exc))
            notify(f"model {self.spec.filename} has a dynamic batch axis but does not take a batch of {len(inputs)} "
                   f"(its graph fixes batch 1 inside): its frames run one call each; to batch them, export it with "
                   f"a batch axis that every layer keeps")
            self.input = dataclasses.replace(self.input, static_batch=True)
            return array_module(singles[0]).concatenate(singles)

    def _run_checked(self, batch: np.ndarray, on_device: bool, cancel: threading.Event | None = None):
        """The output of one call, once it holds one depth map per frame of the batch; ONNX Runtime's own
        refusal as one line."""
        try:
            output = self._run(batch, on_device, cancel)
        except (ModelError, RunTerminated):
            raise
        except Exception as exc:  # noqa: BLE001 (onnxruntime raises its own exception types)
            raise ModelError(f"model {self.spec.filename} failed on a batch of {len(batch)} "
                             f"{self.input.width}x{self.input.height} frames ({_first_line(exc)})") from None
        if len(_with_batch_axis(list(output.shape), unbatched=len(batch) == 1)) > output.ndim:
            output = output[None]  # H x W (x 1): a batch-1 model whose output lost its batch axis
        shape = tuple(output.shape)
        if shape[0] != len(batch):
            raise ModelError(f"model {self.spec.filename} gave {shape[0]} depth maps for {len(batch)} frames "
                             f"(output {list(shape)}); depthcam needs one depth map per frame")
        if len(shape) == 4 and 1 not in (shape[1], shape[3]):
            raise ModelError(f"model {self.spec.filename} gives output {list(shape)}: {shape[1]} or {shape[3]} "
                             f"channels a frame, not one depth map (is this a depth model?)")
        if 1 in (_map_sides(list(shape)) or ()):  # a side the graph left open came out as 1
            raise ModelError(_no_map(self.spec, list(shape)))
        return output

    # GPU outputs of earlier calls with the event after which CuPy no longer reads them (see _run)
    _outputs_in_use: tuple = ()
    MAX_OUTPUTS_IN_USE = 4

    _in_flight = None  # the RunOptions of the call in progress, for terminate()

    def _run(self, batch: np.ndarray, on_device: bool, cancel: threading.Event | None = None):
        options = self._in_flight = _import_onnxruntime().RunOptions()
        # Checked after _in_flight is set: a stop (cancel set, then terminate()) either is seen here or finds this
        # call's options to end it.
        if cancel is not None and cancel.is_set():
            self._forget(options)
            raise RunTerminated
        try:
            if not self.on_gpu:
                return self.session.run([self.output_name], {self.input.name: batch}, options)[0]
            return self._run_on_gpu(batch, on_device, options)
        except Exception:
            if options.terminate:  # ONNX Runtime's "Exiting due to terminate flag": asked, not a fault
                raise RunTerminated from None
            raise
        finally:
            self._forget(options)

    def _forget(self, options) -> None:
        """This call's options are no longer the call in progress, unless another call took their place: a stopped
        run's worker still in a call that cannot be ended (the 2 s its stage waits) would wipe the next run's."""
        if self._in_flight is options:
            self._in_flight = None

    def _run_on_gpu(self, batch: np.ndarray, on_device: bool, options):
        self._release_outputs()
        value = self._run_bound(batch, "cuda", options)
        if not on_device:
            return value.numpy()  # a synchronous copy to the host
        array, copied = _ortvalue_to_cupy(value)
        self._outputs_in_use = (*self._outputs_in_use, (value, copied))
        return array

    def _release_outputs(self) -> None:
        """Let ONNX Runtime have back the memory of the outputs whose CuPy copy has run. A later run writes
        a freed output's memory on ONNX Runtime's own stream, which waits for nothing queued on CuPy's: an
        output freed while its copy still waits in CuPy's queue (behind a render, say) would be overwritten
        before it is read. Done copies are let go without waiting; past MAX_OUTPUTS_IN_USE the oldest is
        waited for."""
        kept = [(value, copied) for value, copied in self._outputs_in_use if not copied.done]
        while len(kept) >= self.MAX_OUTPUTS_IN_USE:
            kept.pop(0)[1].synchronize()
        self._outputs_in_use = tuple(kept)

    def _run_bound(self, batch: np.ndarray, device: str, options=None):
        """One call through I/O binding; the output OrtValue stays on `device`. On the GPU the batch goes
        there once and the output is left there, where the plain run() would copy it back after every
        call. (The tests run this very code with device "cpu", where no GPU exists.)"""
        ort = _import_onnxruntime()
        binding = self.session.io_binding()
        binding.bind_ortvalue_input(self.input.name, ort.OrtValue.ortvalue_from_numpy(batch, device, 0))
        binding.bind_output(self.output_name, device, 0)
        self.session.run_with_iobinding(binding, options)
        return binding.get_outputs()[0]

    def to_disparity(self, depth):
        """Every model's output becomes disparity (inverse depth): FCRN's metres are inverted."""
        xp = array_module(depth)
        if not bool(xp.isfinite(depth).all()):  # at the network's size: ~20 us a frame
            raise ModelError(f"the model {self.spec.name} gave NaN or infinite depth (a broken export, or a float16 "
                             f"overflow); check the model file, or use --model tcmonodepth")
        self.watch.look(depth)
        if self.spec.output_kind == "metres":
            return 1.0 / xp.maximum(depth, 1e-3)
        return depth


def _check_frame(image: Any) -> None:
    """A ValueError for what is no 8-bit frame, in the kernels' words: a uint16 or float frame (a 16-bit PNG, a
    frame scaled to 0..1) met OpenCV's assertion in cv2.LUT, an empty or 2-channel one its own in cv2.resize."""
    shape = tuple(getattr(image, "shape", ()))
    dtype = getattr(image, "dtype", None)
    grey_or_colour = len(shape) == 2 or len(shape) == 3 and shape[2] in (1, 3, 4)
    if dtype == UINT8 and grey_or_colour and 0 not in shape:
        return
    got = f"{dtype} {shape}" if dtype is not None else type(image).__name__
    convert = ("; convert it first (16-bit: (image >> 8).astype(np.uint8); floats in 0..1: (image * 255).round()"
               ".astype(np.uint8))" if dtype in (np.uint16, np.float16, np.float32, np.float64) else "")
    raise ValueError(f"a frame must be a uint8 HxWx3 BGR image (HxW or HxWx1 grey and HxWx4 BGRA are accepted), "
                     f"got {got}{convert}")


class OutputWatch:
    """One warning a run when the depth looks like a wrong model file or input scaling: the same value at every
    pixel, or no positive value, on SUSPECT_IN_A_ROW looked-at frames in a row, or a near-binary map (a
    segmentation model's mask, or its logits) on one. Only the first WATCH_FIRST frames and then every WATCH_EVERY-th
    are looked at: a min and a max, 35 us at 320x192, 2 us a frame on average (measured on this project's 2-core
    VM); a map within 0..1, or one crossing 0, is counted too (16 us more at 256x256).

    A refusal, not a warning, where the depth is the same at every pixel of the run's first frame with content:
    no depth model gives that, and every frame written after it would be blurred evenly."""

    WATCH_FIRST, WATCH_EVERY, SUSPECT_IN_A_ROW = 8, 30, 3
    # A mask: within 0..1, with at least MASK_SHARE of its pixels within MASK_EDGE of 0 or 1, and MASK_END_SHARE at
    # each end. A sigmoid-ended depth model (Monodepth2's disparity) spreads over 0..1 and seldom reaches 1; the
    # selfie segmentation model gave 97-99% of the pixels at its ends on a portrait, 78-99% on photos.
    MASK_EDGE, MASK_SHARE, MASK_END_SHARE = 0.02, 0.85, 0.01
    # A segmentation model exported without its final sigmoid gives logits: a map crossing 0 that is the same mask
    # through a sigmoid, i.e. beyond +-LOGIT_EDGE at the shares above. Both its sides reach far (MediaPipe's selfie
    # logits on a portrait and photos: -1033..+325 to -799..+140, the shorter side at least 0.17 of the longer):
    # depth models end in a ReLU, a sigmoid or an exp and give no negative value (TCMonoDepth, FCRN, MiDaS, Depth
    # Anything), and a shifted relative map whose far end dips below 0 dips little: that side is under LOGIT_BALANCE
    # of the other.
    LOGIT_EDGE = float(np.log((1 - MASK_EDGE) / MASK_EDGE))  # 3.89
    LOGIT_BALANCE = 0.05
    CONTENT_LEVELS = 16  # a frame whose channels each span fewer 8-bit levels is flat (a dark first camera frame)

    def __init__(self, spec: ModelSpec, send: Callable[[str], None] = notify) -> None:
        self.spec = spec
        self.notify = send  # the CLI's stderr line; tests collect the notes
        self.frames = 0
        self.in_a_row = 0
        self.warned = False
        self.content_seen = False  # the run's first frame with content has been checked

    def check_first_content(self, images_bgr: list[np.ndarray], depths: list) -> None:
        """ModelError where the first frame with content has the same depth at every pixel (a broken export, or
        an input scaling that saturates the network): said before anything is written, not 3 frames later."""
        for image, depth in zip(images_bgr, depths):
            if not _has_content(image, self.CONTENT_LEVELS):
                continue
            self.content_seen = True
            low, high = float(depth.min()), float(depth.max())
            if _same_everywhere(low, high):
                raise ModelError(f"the model {self.spec.name} gives the same depth ({high:.3g}) at every pixel of a "
                                 f"frame with content: a broken export, or the wrong input scaling; check the file, "
                                 f"--model-input (now {self.spec.input_norm}), or use --model tcmonodepth")
            return

    def look(self, depth) -> None:
        self.frames += 1
        if self.warned or not (self.frames <= self.WATCH_FIRST or self.frames % self.WATCH_EVERY == 0):
            return
        low, high = float(depth.min()), float(depth.max())
        symptom = self.symptom(low, high)
        mask = None if symptom else self.mask_share(depth, low, high)
        logits = None if symptom or mask else self.logit_share(depth, low, high)
        if mask or logits:  # one frame is enough (a photo has no other): no depth map is that binary
            self.warned = True
            found = (f"a near-binary map (0 or 1 at {mask:.0%} of its pixels): it looks like a segmentation mask"
                     if mask else f"a map crossing 0, beyond +-{self.LOGIT_EDGE:.1f} at {logits:.0%} of its pixels (0 "
                     f"or 1 through a sigmoid): it looks like a segmentation model's logits")
            self.notify(f"the model {self.spec.name} gives {found}, not depth; give a depth model (--model "
                        f"tcmonodepth, or your depth model's .onnx)")
            return
        self.in_a_row = self.in_a_row + 1 if symptom else 0
        if symptom and self.in_a_row >= self.SUSPECT_IN_A_ROW:
            self.warned = True
            self.notify(f"the model {self.spec.name} gives {symptom} on {self.in_a_row} frames in a row: likely a "
                        f"wrong model file or input scaling; check the file, --model-input (now "
                        f"{self.spec.input_norm}) and --model-output (now {self.spec.output_kind})")

    @staticmethod
    def symptom(low: float, high: float) -> str | None:
        if _same_everywhere(low, high):
            return f"the same depth ({high:.3g}) at every pixel"
        if high <= 0:
            return f"no positive depth (largest {high:.3g})"
        return None

    @classmethod
    def mask_share(cls, depth, low: float, high: float) -> float | None:
        """The share of the map's pixels at 0 or 1 where it looks like a segmentation mask, else None."""
        if low < 0 or high > 1:
            return None
        xp = array_module(depth)
        near_zero = int(xp.count_nonzero(depth <= cls.MASK_EDGE)) / depth.size
        near_one = int(xp.count_nonzero(depth >= 1 - cls.MASK_EDGE)) / depth.size
        return cls._binary_share(near_zero, near_one)

    @classmethod
    def logit_share(cls, depth, low: float, high: float) -> float | None:
        """The share of the map's pixels beyond +-LOGIT_EDGE where it looks like a segmentation model's logits (a
        mask before its sigmoid), else None."""
        if not (low < 0 < high) or min(-low, high) < cls.LOGIT_BALANCE * max(-low, high):
            return None
        xp = array_module(depth)
        below = int(xp.count_nonzero(depth <= -cls.LOGIT_EDGE)) / depth.size
        above = int(xp.count_nonzero(depth >= cls.LOGIT_EDGE)) / depth.size
        return cls._binary_share(below, above)

    @classmethod
    def _binary_share(cls, low_end: float, high_end: float) -> float | None:
        """The share of pixels at the map's two ends where both are populated and together hold MASK_SHARE."""
        if min(low_end, high_end) < cls.MASK_END_SHARE or low_end + high_end < cls.MASK_SHARE:
            return None
        return low_end + high_end


def _same_everywhere(low: float, high: float) -> bool:
    return high - low <= 1e-6 * max(abs(low), abs(high))  # also all zero


def _has_content(image: np.ndarray, levels: int) -> bool:
    """Whether a channel of the frame spans `levels` 8-bit levels or more, on a grid of about 64 x 64 samples
    (0.1 ms at 1920x1080: a channel a row, as reducing over the interleaved pixels took 0.3 ms)."""
    step = max(1, min(image.shape[:2]) // 64)
    channels = np.ascontiguousarray(image[::step, ::step].reshape(-1, image.shape[2] if image.ndim == 3 else 1).T)
    return int((channels.max(axis=1) - channels.min(axis=1)).max()) >= levels


def _external_data_fault(path: Path) -> str | None:
    """What is wrong with the weight files (external data: `model.onnx.data`, written for models over 2 GB) that
    `path` names: outside its folder (ONNX Runtime refuses them), not beside it, where ONNX Runtime looks for them,
    or shorter than the weights they should hold (a download or copy that did not finish); None where the file is
    not ONNX, names none, or they are whole."""
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 (not ONNX at all: the caller's own message says so)
        return None
    ends: dict[str, int] = {}  # each weight file's bytes the model reads
    for tensor in model.graph.initializer:
        if uses_external_data(tensor):
            info = ExternalDataInfo(tensor)
            ends[info.location] = max(ends.get(info.location, 0), (info.offset or 0) + (info.length or 0))
    outside = sorted(name for name in ends if Path(name).is_absolute() or ".." in Path(name).parts)
    if outside:  # ONNX Runtime reads weight files only from the model's folder and below
        return (f"keeps its weights in {outside[0]}, outside its folder, which onnxruntime refuses to read; save the "
                f"model again with them beside it (onnx.save(model, ..., save_as_external_data=True, "
                f"location={Path(outside[0]).name!r}))")
    missing = sorted(name for name in ends if not (path.parent / name).is_file())
    if missing:
        return (f"keeps its weights in {', '.join(missing)}, not found beside it in {path.parent}; keep the weight "
                f"file in the same folder as the .onnx")
    short = sorted((name, (path.parent / name).stat().st_size, end) for name, end in ends.items()
                   if (path.parent / name).stat().st_size < end)
    if short:
        name, size, end = short[0]
        return (f"keeps its weights in {name}, which holds {size:,} of their {end:,} bytes (a download or copy that "
                f"did not finish); copy or download {name} again")
    return None


# ONNX Runtime's words for a file newer than it reads: an IR version, or an opset of a domain.
NEWER_IR = re.compile(r"Unsupported model IR version: (\d+), max supported IR version: (\d+)")
NEWER_OPSET = re.compile(r"Opset (\d+) is under development.*support for domain (\S+) is till opset (\d+)", re.DOTALL)
UNKNOWN_OP = re.compile(r"(\S+)\(-?\d+\) is not a registered function/op")


def _version_refusal(error: str) -> str | None:
    """What a file newer than the installed ONNX Runtime, or with an operator it lacks, needs: the versions and the
    fix; None for any other failure (ONNX Runtime's own words ran past 300 characters of C++ signature before the
    versions)."""
    upgrade = f"upgrade it (pip install -U {_onnxruntime_distribution()})"
    if found := UNKNOWN_OP.search(error):
        return (f"uses the operator {found.group(1)}, which onnxruntime {_import_onnxruntime().__version__} does not "
                f"have (a custom operator, or one newer than it); export the model with standard ONNX operators, "
                f"or {upgrade}")
    if found := NEWER_IR.search(error):
        have, most = found.groups()
        return (f"is ONNX IR version {have}, newer than onnxruntime {_import_onnxruntime().__version__} reads (up to "
                f"{most}); {upgrade}, or save the model with ir_version {most} (onnx: model.ir_version = {most})")
    if found := NEWER_OPSET.search(error):
        opset, domain, most = found.groups()
        domain = domain.rstrip(".")
        export = (f"opset {most} or lower (torch.onnx.export(..., opset_version={most}))" if domain == "ai.onnx"
                  else f"{domain} opset {most} or lower")
        return (f"needs ONNX opset {opset} ({domain}), newer than onnxruntime {_import_onnxruntime().__version__} "
                f"supports (up to {most}); {upgrade}, or export the model at {export}")
    return None


def _onnxruntime_distribution() -> str:
    """The pip name of the ONNX Runtime installed (the GPU build is its own package)."""
    from importlib import metadata

    for name in ("onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino"):
        try:
            metadata.version(name)
            return name
        except metadata.PackageNotFoundError:
            continue
    return "onnxruntime"


# A few bytes that name what a file is, where ONNX Runtime only said that protobuf parsing failed.
HDF5_MAGIC, ZIP_MAGIC, LFS_POINTER = b"\x89HDF\r\n\x1a\n", b"PK\x03\x04", b"version https://git-lfs"
# Files saved or renamed in a model's place (a picture, a NumPy array) that only "cannot be parsed" named before.
OTHER_FILES = {b"\xff\xd8\xff": "a JPEG image", b"\x89PNG\r\n\x1a\n": "a PNG image",
               b"\x93NUMPY": "a NumPy array (.npy)"}


def _foreign_file(path: Path) -> str | None:
    """What a file ONNX Runtime refused is instead of an ONNX model, with the fix, read from its first bytes;
    None where they say nothing."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(64)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc}); check its permissions"
    onnx_name = path.name[:-len(".data")] if path.name.endswith(".data") else ""
    if onnx_name.endswith(".onnx") and (path.parent / onnx_name).is_file():
        model = command_word(str(path.with_name(onnx_name)))
        return f"holds the weights of {onnx_name}, not the model; give --model {model}"
    if not head:
        return "is empty (0 bytes): a download or copy that did not finish; download or export it again"
    if head.startswith(LFS_POINTER):
        return ("is a Git LFS pointer, not the model (a clone without git-lfs); fetch the real file with 'git lfs "
                "pull' in the clone, or download the file itself")
    if head.lstrip()[:1] == b"<":
        return ("is a web page (HTML or XML), not an ONNX model; download the file itself (GitHub: the 'raw' link; "
                "Hugging Face: 'resolve', not 'blob', in the address)")
    if head.startswith(ZIP_MAGIC):
        return _archive_contents(path)
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):  # a pickle: PyTorch before 1.6
        return _PYTORCH
    if head[4:8] == b"TFL3":
        return ("is a TensorFlow Lite model, not ONNX; convert it once: python -m tf2onnx.convert --tflite "
                f"{command_word(str(path))} --output model.onnx, then --model model.onnx")
    if found := next((kind for magic, kind in OTHER_FILES.items() if head.startswith(magic)), None):
        return f"is {found}, not an ONNX model; give the model's .onnx file itself (download or export it again)"
    if head.startswith(HDF5_MAGIC):
        return "is a Keras/HDF5 model, not ONNX; convert it once to ONNX (tf2onnx.convert.from_keras), then --model it"
    if len(head) > 8 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000:
        return ("holds weights only (safetensors), no graph; export the model to ONNX (optimum-cli export onnx, or "
                "torch.onnx.export), then --model the .onnx")
    start = _text_start(head)
    if start is not None:  # an ONNX file starts with a binary field (0x08, its IR version): never text
        return (f"is a text file, not an ONNX model (it starts {start!r}); give the model's .onnx file itself "
                f"(download or export it again)")
    return None


def _text_start(head: bytes) -> str | None:
    """The first words of a file whose first bytes are UTF-8 text (a note, an error page's JSON, a list of
    addresses saved as the model); None for a binary file."""
    import codecs

    try:
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head)  # a character cut at the end waits, unread
    except UnicodeDecodeError:
        return None
    if not text.strip() or not all(char.isprintable() or char in "\t\n\r" for char in text):
        return None
    first = text.strip().splitlines()[0].strip()
    return first if len(first) <= 40 else first[:37] + "..."


_PYTORCH = ("is a PyTorch checkpoint, not ONNX; export the model once with torch.onnx.export (or optimum-cli export "
            "onnx), then --model the .onnx")


def _archive_contents(path: Path) -> str:
    """A zip archive given as the model: a PyTorch checkpoint (torch.save writes one), or a zipped ONNX file."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        names = []
    if any(name.endswith("data.pkl") for name in names):
        return _PYTORCH
    inside = [name for name in names if name.lower().endswith(".onnx")]
    if inside:
        return f"is a zip archive holding {', '.join(inside[:3])}; extract it and give the .onnx to --model"
    return "is a zip archive, not an ONNX model; extract the .onnx model from it and give that to --model"


# ONNX Runtime's prefix to its words: `[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model from x.onnx failed:`
ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : (?:Load model from .*? failed:)?\s*")


def _load_failure(exc: Exception, cached: ModelSpec | None) -> str:
    """Why ONNX Runtime refused a file that is no known kind of other file, in plain words, and the fix: protobuf
    that does not parse is a file cut short or damaged; any other refusal in ONNX Runtime's words, without its code."""
    fix = (f"fetch it again with 'depthcam models fetch {cached.name}'" if cached is not None
           else "download or export it again")
    if "INVALID_PROTOBUF" in str(exc) or "Protobuf parsing failed" in str(exc):
        return f"is not a complete ONNX model (it cannot be parsed); {fix}"
    return f"could not be loaded as ONNX ({ORT_PREFIX.sub('', _first_line(exc))}); {fix}"


def _first_line(exc: Exception) -> str:
    """ONNX Runtime's errors run to many lines; the first names the problem."""
    line = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
    return line if len(line) <= 300 else line[:297] + "..."  # one line, not cut mid-word at a short width


def _ortvalue_to_cupy(value):
    """(a CuPy copy of an ONNX Runtime output on the GPU, the event recorded after that copy on CuPy's stream).

    A copy, not a view: the stages' work on a view (normalisation, refinement) is queued on CuPy's stream and
    may run after the OrtValue is freed, when ONNX Runtime may already have written the next output into
    that memory. The caller keeps the OrtValue until the event has passed (DepthEstimator._release_outputs).
    ONNX Runtime has synchronised its own stream when run_with_iobinding returns, so the copy reads the
    finished output."""
    import cupy

    dtype = ORT_TENSOR_DTYPES.get(value.data_type())
    if dtype is None:
        raise ModelError(f"the model's output is {value.data_type()}; depthcam needs float or float16 depth")
    shape = tuple(int(v) for v in value.shape())
    memory = cupy.cuda.UnownedMemory(value.data_ptr(), int(np.prod(shape)) * dtype.itemsize, value)
    view = cupy.ndarray(shape, dtype, cupy.cuda.MemoryPointer(memory, 0))
    copy = view.copy()
    return copy, cupy.cuda.get_current_stream().record()
