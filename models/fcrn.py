"""FCRN ResNet-50 UpProj (Laina et al. 2016) built as an ONNX graph, faithful to the official TF code.

Layout of the built graph (what the pipeline relies on):

- input  ``image``: float32 ``[N, 3, 228, 304]`` (N is the dynamic dimension "batch"), RGB, values
  0..255, no mean subtraction (the official network was trained on raw pixel values);
- output ``depth``: float32 ``[N, 1, 128, 160]``, metres, after the final ReLU;
- metadata_props ``depthcam.model`` = ``fcrn`` (and its input norm and output kind), which
  `models.registry.resolve_model` reads to feed a converted file of any name as FCRN.

The official code works in NHWC with HWIO kernels; ONNX works in NCHW with OIHW kernels. Weights
are given (and validated) in the official HWIO layout and transposed here. Points where the
official code differs from a stock ResNet/Conv and that this builder reproduces exactly:

- Every "SAME" convolution of the official code pads symmetrically by (k-1)//2, *not* TF's SAME
  (so conv1 7x7/2 pads 3 on all sides and gives 114x152); pool1 is TF's own SAME max pool, which
  pads 0 top/left and 1 bottom/right.
- Caffe ResNet-50: the stride of a stage's block "a" sits on its 1x1 ``branch2a`` convolution;
  conv1 has a bias, the residual blocks have none.
- The fast up-convolution: four convolutions A 3x3 (pads t1 b1 l1 r1), B 2x3 (t1 b0 l1 r1),
  C 3x2 (t1 b1 l1 r0), D 2x2 (t1 b0 l1 r0), interleaved as Y[2i,2j]=A, Y[2i+1,2j]=B,
  Y[2i,2j+1]=C, Y[2i+1,2j+1]=D. In ONNX: Concat(A, C, B, D) on channels then DepthToSpace(2, DCR),
  which equals interleaving the channels A,C,B,D per output channel and using CRD.
- Batch normalisation with epsilon 1e-4 and the stored mean/variance.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from models.download import ModelError
from models.registry import model_metadata

INPUT_NAME = "image"
OUTPUT_NAME = "depth"
BATCH_DIM = "batch"
INPUT_HEIGHT, INPUT_WIDTH = 228, 304
OUTPUT_HEIGHT, OUTPUT_WIDTH = 128, 160
INPUT_SHAPE = (3, INPUT_HEIGHT, INPUT_WIDTH)  # per frame, NCHW without N
OUTPUT_SHAPE = (1, OUTPUT_HEIGHT, OUTPUT_WIDTH)
OPSET = 17
BN_EPSILON = 1e-4  # the official code's variance_epsilon (not TF's or Caffe's default)

TRAINABLE_PARAMETERS = 63_572_737
BN_RUNNING_STATISTICS = 60_928

# (stage, block letters, bottleneck width, output width); stride 2 on block "a" of stages 3-5.
RESNET_STAGES: tuple[tuple[int, str, int, int], ...] = (
    (2, "abc", 64, 256),
    (3, "abcd", 128, 512),
    (4, "abcdef", 256, 1024),
    (5, "abc", 512, 2048),
)
# (id, input channels, output channels) of the four up-projection blocks.
UP_PROJECTIONS: tuple[tuple[str, int, int], ...] = (
    ("2x", 1024, 512),
    ("4x", 512, 256),
    ("8x", 256, 128),
    ("16x", 128, 64),
)
# Fast up-convolution: kernel size (kh, kw) and ONNX pads (top, left, bottom, right).
UPCONV_KERNELS: dict[str, tuple[tuple[int, int], tuple[int, int, int, int]]] = {
    "A": ((3, 3), (1, 1, 1, 1)),
    "B": ((2, 3), (1, 1, 0, 1)),
    "C": ((3, 2), (1, 1, 1, 0)),
    "D": ((2, 2), (1, 1, 0, 0)),
}
# Concat order for DepthToSpace DCR: block index i*2+j holds the output at (2h+i, 2w+j).
UPCONV_CONCAT_ORDER = ("A", "C", "B", "D")

BN_PARAMS = ("scale", "offset", "mean", "variance")


def _bn_shapes(name: str, channels: int) -> dict[str, tuple[int, ...]]:
    return {f"{name}/{param}": (channels,) for param in BN_PARAMS}


def fcrn_variable_shapes() -> dict[str, tuple[int, ...]]:
    """Every variable of the official network, named as in its checkpoint, with its HWIO shape."""
    shapes: dict[str, tuple[int, ...]] = {"conv1/weights": (7, 7, 3, 64), "conv1/biases": (64,)}
    shapes |= _bn_shapes("bn_conv1", 64)
    channels = 64
    for stage, blocks, width, out in RESNET_STAGES:
        for letter in blocks:
            block = f"{stage}{letter}"
            convs = {"branch2a": (1, 1, channels, width), "branch2b": (3, 3, width, width),
                     "branch2c": (1, 1, width, out)}
            if letter == "a":
                convs["branch1"] = (1, 1, channels, out)
            for branch, shape in convs.items():
                shapes[f"res{block}_{branch}/weights"] = shape
                shapes |= _bn_shapes(f"bn{block}_{branch}", shape[3])
            channels = out
    shapes["layer1/weights"] = (1, 1, 2048, 1024)
    shapes["layer1/biases"] = (1024,)
    shapes |= _bn_shapes("layer1_BN", 1024)
    for ident, cin, cout in UP_PROJECTIONS:
        for branch in ("br1", "br2"):
            for conv, ((kh, kw), _) in UPCONV_KERNELS.items():
                shapes[f"layer{ident}_{branch}_Conv{conv}/weights"] = (kh, kw, cin, cout)
                shapes[f"layer{ident}_{branch}_Conv{conv}/biases"] = (cout,)
            shapes |= _bn_shapes(f"layer{ident}_{branch}_BN", cout)
        shapes[f"layer{ident}_Conv/weights"] = (3, 3, cout, cout)
        shapes[f"layer{ident}_Conv/biases"] = (cout,)
        shapes |= _bn_shapes(f"layer{ident}_BN", cout)
    shapes["ConvPred/weights"] = (3, 3, 64, 1)
    shapes["ConvPred/biases"] = (1,)
    return shapes


def is_running_statistic(name: str) -> bool:
    """BN mean/variance are stored statistics, not trainable parameters."""
    return name.endswith("/mean") or name.endswith("/variance")


def check_weights(weights: Mapping[str, np.ndarray], source: str = "the weights") -> dict[str, np.ndarray]:
    """Validate names and shapes against the official network; float32 copies, or a one-line ModelError."""
    expected = fcrn_variable_shapes()
    missing = [name for name in expected if name not in weights]
    extra = sorted(name for name in weights if name not in expected)
    misshaped = [f"{name} (expected {expected[name]}, got {tuple(np.shape(weights[name]))})"
                 for name in expected if name in weights and tuple(np.shape(weights[name])) != expected[name]]
    problems = []
    for label, names in (("missing", missing), ("unexpected", extra), ("wrong shape", misshaped)):
        if names:
            shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
            problems.append(f"{label} {len(names)}: {shown}")
    if problems:
        raise ModelError(f"{source} do not match the official FCRN ResNet-50 UpProj variables: "
                         + "; ".join(problems)
                         + " (use the official NYU_FCRN.ckpt or NYU_ResNet-UpProj.npy, unmodified)")
    return {name: np.ascontiguousarray(weights[name], dtype=np.float32) for name in expected}


def random_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded random weights (HWIO) whose activations stay O(1) through all 50+ layers.

    He-scaled kernels keep each convolution variance-preserving; BN statistics are random, and
    the BN that closes a residual branch gets a smaller scale so that summing 16 residual blocks
    does not explode. ConvPred's bias centres the prediction near 2 m, so the final ReLU
    keeps most pixels and clips some (tests then compare real values and exercise the ReLU).
    """
    rng = np.random.default_rng(seed)
    weights: dict[str, np.ndarray] = {}
    for name, shape in fcrn_variable_shapes().items():
        layer, param = name.split("/")
        if param == "weights":
            fan_in = shape[0] * shape[1] * shape[2]
            value = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
            if layer == "conv1":
                value /= 128.0  # the input is 0..255, not unit variance
        elif param == "biases":
            value = rng.normal(0.0, 0.05, shape)
            if layer == "ConvPred":
                value = value + 2.0
        elif param == "scale":
            value = rng.uniform(0.5, 1.0, shape) * (0.5 if layer.endswith("branch2c") else 1.0)
        elif param == "offset":
            value = rng.normal(0.0, 0.1, shape)
        elif param == "mean":
            value = rng.normal(0.0, 0.1, shape)
        else:  # variance
            value = rng.uniform(0.5, 1.5, shape)
        weights[name] = value.astype(np.float32)
    return weights


class _GraphBuilder:
    """Appends nodes and initializers; names nodes after the official layers for readable graphs."""

    def __init__(self, weights: dict[str, np.ndarray], dtype: np.dtype, graph: onnx.GraphProto | None = None,
                 consumed: dict[str, np.ndarray] | None = None) -> None:
        self.weights = weights  # this build's own dict: emptied as the graph takes them
        self.consumed = consumed  # the caller's dict where it gave it up (build_fcrn's `consume`), emptied too
        self.dtype = dtype
        self.nodes: list[onnx.NodeProto] = []
        # the model's own graph: each initializer is added in place, never copied whole
        self.graph = graph if graph is not None else onnx.GraphProto()

    @property
    def initializers(self):
        return self.graph.initializer

    def _init(self, name: str, value: np.ndarray) -> str:
        self.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=self.dtype), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def take(self, name: str) -> np.ndarray:
        """A weight, let go of here once it is in the graph: with a conversion's own dict (`consume`) its
        memory is free again for the next initializers, rather than the model being held twice at the end."""
        value = self.weights.pop(name)
        if self.consumed is not None:
            self.consumed.pop(name, None)
        return value

    def conv(self, x: str, layer: str, *, stride: int = 1, pads: tuple[int, int, int, int] | None = None,
             out: str | None = None) -> str:
        """Conv with the official HWIO kernel; pads default to the official symmetric (k-1)//2."""
        hwio = self.take(f"{layer}/weights")
        kh, kw = hwio.shape[:2]
        if pads is None:
            pads = ((kh - 1) // 2, (kw - 1) // 2, (kh - 1) // 2, (kw - 1) // 2)
        inputs = [x, self._init(f"{layer}/weights", hwio.transpose(3, 2, 0, 1))]  # HWIO -> OIHW
        if f"{layer}/biases" in self.weights:
            inputs.append(self._init(f"{layer}/biases", self.take(f"{layer}/biases")))
        return self.node("Conv", inputs, out or layer, kernel_shape=[kh, kw], strides=[stride, stride],
                         pads=list(pads), dilations=[1, 1], group=1)

    def bn(self, x: str, layer: str, *, relu: bool = False) -> str:
        inputs = [x] + [self._init(f"{layer}/{p}", self.take(f"{layer}/{p}")) for p in BN_PARAMS]
        y = self.node("BatchNormalization", inputs, layer, epsilon=BN_EPSILON)
        return self.node("Relu", [y], f"{layer}_relu") if relu else y

    def upconv(self, x: str, ident: str) -> str:
        """Fast up-convolution of the official ``unpool_as_conv``: 4 convs interleaved to 2Hx2W."""
        parts = {c: self.conv(x, f"layer{ident}_Conv{c}", pads=UPCONV_KERNELS[c][1]) for c in UPCONV_KERNELS}
        stacked = self.node("Concat", [parts[c] for c in UPCONV_CONCAT_ORDER], f"layer{ident}_concat", axis=1)
        return self.node("DepthToSpace", [stacked], f"layer{ident}_interleave", blocksize=2, mode="DCR")

    def up_project(self, x: str, ident: str) -> str:
        br1 = self.bn(self.upconv(x, f"{ident}_br1"), f"layer{ident}_br1_BN", relu=True)
        br1 = self.bn(self.conv(br1, f"layer{ident}_Conv"), f"layer{ident}_BN")
        br2 = self.bn(self.upconv(x, f"{ident}_br2"), f"layer{ident}_br2_BN")
        return self.node("Relu", [self.node("Add", [br1, br2], f"layer{ident}_Sum")], f"layer{ident}_ReLU")


def build_fcrn(weights: Mapping[str, np.ndarray] | None = None, seed: int = 0, *,
               fp16: bool = False, consume: bool = False) -> onnx.ModelProto:
    """The FCRN graph with `weights` (official names, HWIO), or seeded random weights when None.

    ``fp16=True`` stores the weights and computes in float16 (for GPUs) while keeping the float32
    ``image``/``depth`` interface through Cast nodes at both ends. ``consume=True`` (a conversion, whose
    dict is its own) empties `weights` as the graph takes them, so that the 254 MB are not held twice.
    """
    checked = check_weights(weights) if weights is not None else random_weights(seed)
    dtype = np.dtype(np.float16 if fp16 else np.float32)
    # The model is made first and filled in place: helper.make_graph and make_model copy what they are given,
    # which held the 254 MB of weights three times over besides the arrays (1 GB at the peak, 1.5 GB with
    # the serialisation).
    model = onnx.ModelProto()
    g = _GraphBuilder(checked, dtype, model.graph, weights if consume and isinstance(weights, dict) else None)

    x = INPUT_NAME
    if fp16:
        x = g.node("Cast", [x], "image_fp16", to=TensorProto.FLOAT16)
    x = g.bn(g.conv(x, "conv1", stride=2), "bn_conv1", relu=True)
    # TF 'SAME' max pool on 114x152: out 57x76, the one padding row/column goes bottom/right.
    x = g.node("MaxPool", [x], "pool1", kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1])
    for stage, blocks, _, _ in RESNET_STAGES:
        for letter in blocks:
            block = f"{stage}{letter}"
            stride = 2 if letter == "a" and stage > 2 else 1
            y = g.bn(g.conv(x, f"res{block}_branch2a", stride=stride), f"bn{block}_branch2a", relu=True)
            y = g.bn(g.conv(y, f"res{block}_branch2b"), f"bn{block}_branch2b", relu=True)
            y = g.bn(g.conv(y, f"res{block}_branch2c"), f"bn{block}_branch2c")
            shortcut = (g.bn(g.conv(x, f"res{block}_branch1", stride=stride), f"bn{block}_branch1")
                        if letter == "a" else x)
            x = g.node("Relu", [g.node("Add", [shortcut, y], f"res{block}")], f"res{block}_relu")
    x = g.bn(g.conv(x, "layer1"), "layer1_BN")
    for ident, _, _ in UP_PROJECTIONS:
        x = g.up_project(x, ident)
    # The official dropout has keep_prob 1 (identity); ConvPred is a conv with ReLU.
    x = g.conv(x, "ConvPred")
    if fp16:
        x = g.node("Relu", [x], "ConvPred_relu")
        g.node("Cast", [x], OUTPUT_NAME, to=TensorProto.FLOAT)
    else:
        g.node("Relu", [x], OUTPUT_NAME)

    graph = model.graph
    graph.node.extend(g.nodes)
    graph.name = "fcrn_resnet50_upproj"
    graph.input.append(helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [BATCH_DIM, *INPUT_SHAPE]))
    graph.output.append(helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [BATCH_DIM, *OUTPUT_SHAPE]))
    graph.doc_string = model.doc_string = ("FCRN ResNet-50 UpProj (Laina et al. 2016). image: RGB 0..255 NCHW "
                                           "228x304; depth: metres NCHW 128x160.")
    model.opset_import.append(helper.make_opsetid("", OPSET))
    model.producer_name = "depthcam"
    model.ir_version = 8  # opset 17's IR version; loadable by onnxruntime >= 1.13
    # The file says it is FCRN (raw RGB in, metres out) under any name the user gives it (models.registry).
    helper.set_model_props(model, model_metadata("fcrn"))
    return model


def count_parameters(model: onnx.ModelProto) -> tuple[int, int]:
    """(trainable parameters, BN running statistics) held by the graph's initializers."""
    trainable = stats = 0
    for init in model.graph.initializer:
        size = int(np.prod(init.dims))
        if is_running_statistic(init.name):
            stats += size
        else:
            trainable += size
    return trainable, stats
