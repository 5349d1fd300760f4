"""FCRN ONNX graph: structure, parameter count, batching, and equivalence with an independent
float64 NumPy forward written from the official TF code's semantics (NHWC, HWIO, its paddings), and
with the depth that the authors' own TensorFlow code computed for the same weights (tests/data)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from onnx import TensorProto, helper

from models.download import ModelError
from models.fcrn import (
    BN_EPSILON, INPUT_NAME, OUTPUT_NAME, UPCONV_KERNELS, _GraphBuilder, build_fcrn, count_parameters,
    fcrn_variable_shapes, random_weights,
)

CPU = ["CPUExecutionProvider"]


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=CPU)


def rel_err(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual.astype(np.float64) - expected).max() / np.abs(expected).max())


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    return random_weights(seed=3)


@pytest.fixture(scope="module")
def model(weights) -> onnx.ModelProto:
    return build_fcrn(weights)


@pytest.fixture(scope="module")
def fcrn(model) -> ort.InferenceSession:
    return session(model)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(11).uniform(0, 255, (4, 3, 228, 304)).astype(np.float32)


# ---------------------------------------------------------------- the reference (official semantics)

def _conv_valid(x: np.ndarray, w: np.ndarray, stride: int = 1) -> np.ndarray:
    """tf.nn.conv2d(x, w, strides, 'VALID') in NHWC/HWIO."""
    kh, kw = w.shape[:2]
    patches = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]  # N,H',W',C,kh,kw
    return np.tensordot(patches, w, axes=([3, 4, 5], [2, 0, 1]))


def _pad(x: np.ndarray, top: int, bottom: int, left: int, right: int, value: float = 0.0) -> np.ndarray:
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


class Reference:
    """The official ResNet50UpProj forward, from network.py/fcrn.py, in float64 NumPy."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.w = {k: v.astype(np.float64) for k, v in weights.items()}

    def conv(self, x, name, stride=1, same=True):
        w = self.w[name + "/weights"]
        if same:  # network.py's 'SAME': tf.pad by (k-1)//2 on both sides, then VALID
            ph, pw = (w.shape[0] - 1) // 2, (w.shape[1] - 1) // 2
            x = _pad(x, ph, ph, pw, pw)
        y = _conv_valid(x, w, stride)
        return y + self.w[name + "/biases"] if name + "/biases" in self.w else y

    def bn(self, x, name, relu=False):
        w = self.w
        y = (x - w[name + "/mean"]) / np.sqrt(w[name + "/variance"] + 1e-4) * w[name + "/scale"] + w[name + "/offset"]
        return np.maximum(y, 0) if relu else y

    @staticmethod
    def max_pool_same(x, k=3, s=2):
        """tf.nn.max_pool(..., padding='SAME'): out = ceil(n/s), the odd padding goes after."""
        pads = []
        for n in x.shape[1:3]:
            total = max((-(-n // s) - 1) * s + k - n, 0)
            pads += [total // 2, total - total // 2]
        x = _pad(x, pads[0], pads[1], pads[2], pads[3], value=-np.inf)
        return sliding_window_view(x, (k, k), axis=(1, 2))[:, ::s, ::s].max(axis=(4, 5))

    def unpool_as_conv(self, x, ident, relu):
        a = self.conv(x, f"layer{ident}_ConvA")
        b = self.conv(_pad(x, 1, 0, 1, 1), f"layer{ident}_ConvB", same=False)
        c = self.conv(_pad(x, 1, 1, 1, 0), f"layer{ident}_ConvC", same=False)
        d = self.conv(_pad(x, 1, 0, 1, 0), f"layer{ident}_ConvD", same=False)
        n, h, w, ch = a.shape
        y = np.empty((n, 2 * h, 2 * w, ch))
        y[:, 0::2, 0::2], y[:, 1::2, 0::2], y[:, 0::2, 1::2], y[:, 1::2, 1::2] = a, b, c, d
        return self.bn(y, f"layer{ident}_BN", relu=relu)

    def up_project(self, x, ident):
        br1 = self.unpool_as_conv(x, f"{ident}_br1", relu=True)
        br1 = self.bn(self.conv(br1, f"layer{ident}_Conv"), f"layer{ident}_BN")
        br2 = self.unpool_as_conv(x, f"{ident}_br2", relu=False)
        return np.maximum(br1 + br2, 0)

    def __call__(self, image_nchw: np.ndarray) -> np.ndarray:
        x = image_nchw.astype(np.float64).transpose(0, 2, 3, 1)
        x = self.bn(self.conv(x, "conv1", stride=2), "bn_conv1", relu=True)
        x = self.max_pool_same(x)
        for stage, blocks in ((2, "abc"), (3, "abcd"), (4, "abcdef"), (5, "abc")):
            for letter in blocks:
                blk, stride = f"{stage}{letter}", (2 if stage > 2 and letter == "a" else 1)
                y = self.bn(self.conv(x, f"res{blk}_branch2a", stride), f"bn{blk}_branch2a", relu=True)
                y = self.bn(self.conv(y, f"res{blk}_branch2b"), f"bn{blk}_branch2b", relu=True)
                y = self.bn(self.conv(y, f"res{blk}_branch2c"), f"bn{blk}_branch2c")
                short = self.bn(self.conv(x, f"res{blk}_branch1", stride), f"bn{blk}_branch1") if letter == "a" else x
                x = np.maximum(short + y, 0)
        x = self.bn(self.conv(x, "layer1"), "layer1_BN")
        for ident in ("2x", "4x", "8x", "16x"):
            x = self.up_project(x, ident)
        x = np.maximum(self.conv(x, "ConvPred"), 0)  # dropout keep_prob=1 is the identity
        return x.transpose(0, 3, 1, 2)


# ---------------------------------------------------------------- structure

def test_parameter_count_and_names(model):
    assert count_parameters(model) == (63_572_737, 60_928)
    shapes = fcrn_variable_shapes()
    assert len(shapes) == 394
    inits = {init.name: tuple(init.dims) for init in model.graph.initializer}
    assert set(inits) == set(shapes)
    # Kernels are stored OIHW (transposed from the official HWIO).
    assert inits["layer2x_br1_ConvB/weights"] == (512, 1024, 2, 3)
    assert inits["layer2x_br1_ConvC/weights"] == (512, 1024, 3, 2)
    assert inits["conv1/weights"] == (64, 3, 7, 7)
    assert all(n.attribute[0].f == pytest.approx(BN_EPSILON) for n in model.graph.node
               if n.op_type == "BatchNormalization")


def test_io_layout(model, fcrn, images):
    onnx.checker.check_model(model)
    assert model.opset_import[0].version == 17
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == INPUT_NAME == "image" and out.name == OUTPUT_NAME == "depth"
    for value, tail in ((inp, [3, 228, 304]), (out, [1, 128, 160])):
        assert value.type.tensor_type.elem_type == TensorProto.FLOAT
        dims = value.type.tensor_type.shape.dim
        assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == tail
    (depth,) = fcrn.run(None, {"image": images[:1]})
    assert depth.shape == (1, 1, 128, 160) and depth.dtype == np.float32
    assert depth.min() == 0.0 and (depth > 0).mean() > 0.5  # the final ReLU clips, most pixels pass


def test_batch_of_four_equals_single_calls(fcrn, images):
    (batched,) = fcrn.run(None, {"image": images})
    singles = np.concatenate([fcrn.run(None, {"image": images[i:i + 1]})[0] for i in range(4)])
    assert batched.shape == (4, 1, 128, 160)
    assert rel_err(batched, singles) <= 1e-5


def test_matches_official_semantics_float64(weights, fcrn, images):
    expected = Reference(weights)(images[:2])
    (actual,) = fcrn.run(None, {"image": images[:2]})
    assert expected.shape == actual.shape == (2, 1, 128, 160)
    assert np.std(expected) > 0.3  # a real spread, not a constant the bias alone explains
    assert rel_err(actual, expected) <= 1e-4


# The authors' network.py and fcrn.py, run by TensorFlow 2.21 through its v1 API with random_weights(5), on
# images drawn from default_rng(image_seed) as below (tests/data/run_official_fcrn.py made it).
OFFICIAL_OUTPUT = Path(__file__).parent / "data" / "fcrn_official_seed5.npz"


def test_matches_the_depth_the_authors_tensorflow_code_computes():
    official = np.load(OFFICIAL_OUTPUT)
    expected = official["depth"]  # N x 128 x 160, metres
    nhwc = np.random.default_rng(int(official["image_seed"])).uniform(0, 255, (len(expected), 228, 304, 3))
    images = np.ascontiguousarray(nhwc.astype(np.float32).transpose(0, 3, 1, 2))
    (actual,) = session(build_fcrn(random_weights(5))).run(None, {"image": images})
    assert actual.shape == (len(expected), 1, 128, 160)
    assert 0.3 < np.mean(expected > 0) < 0.95 and expected.max() > 2.0  # the final ReLU clips some, not all
    assert rel_err(actual[:, 0], expected) <= 1e-4  # measured: 3.2e-6 (float32 both, other summation orders)


def test_seeded_random_weights_are_reproducible():
    a, b, c = random_weights(5), random_weights(5), random_weights(6)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["conv1/weights"], c["conv1/weights"])


def test_fp16_variant_keeps_float32_interface(fcrn, images):
    half = build_fcrn(random_weights(seed=3), fp16=True)
    assert {i.data_type for i in half.graph.initializer} == {TensorProto.FLOAT16}
    assert half.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert half.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    (reference,) = fcrn.run(None, {"image": images[:1]})
    (depth,) = session(half).run(None, {"image": images[:1]})
    assert depth.dtype == np.float32 and rel_err(depth, reference) < 1e-2
    assert {p.key: p.value for p in half.metadata_props}["depthcam.model"] == "fcrn"  # `convert --fp16` too


def test_the_graph_says_in_its_metadata_that_it_is_fcrn(model):
    """A converted file of any name said nothing of what it is: depthcam read it as a user's own model
    (ImageNet-normalised input, inverse depth out) and gave wrong depth without a word."""
    assert {p.key: p.value for p in model.metadata_props} == {
        "depthcam.model": "fcrn", "depthcam.input_norm": "raw", "depthcam.output_kind": "metres"}


def test_bad_weights_are_named(weights):
    broken = dict(weights)
    del broken["layer4x_br2_ConvD/weights"]
    broken["layer4x_br2_ConvE/weights"] = np.zeros((2, 2, 512, 256), np.float32)
    broken["ConvPred/weights"] = np.zeros((3, 3, 1, 64), np.float32)  # OIHW-ish: in/out swapped
    with pytest.raises(ModelError) as info:
        build_fcrn(broken)
    message = str(info.value)
    assert "\n" not in message
    assert "missing 1: layer4x_br2_ConvD/weights" in message
    assert "unexpected 1: layer4x_br2_ConvE/weights" in message
    assert "ConvPred/weights (expected (3, 3, 64, 1), got (3, 3, 1, 64))" in message


# ---------------------------------------------------------------- hand-checkable pieces

def _run_single(nodes, inputs: dict[str, np.ndarray], output: str, initializers=()) -> np.ndarray:
    graph = helper.make_graph(
        nodes, "t",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape) for k, v in inputs.items()],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)], list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return session(model).run(None, inputs)[0]


def test_upconv_interleave_orders_every_channel():
    """fcrn.py's fast up-convolution (_GraphBuilder.upconv, as build_fcrn uses it) on two channels: zero kernels,
    biases tag A/B/C/D (1..4, +10 on channel 1). Y[2i,2j]=A, Y[2i+1,2j]=B, Y[2i,2j+1]=C, Y[2i+1,2j+1]=D in each
    channel: Concat(A,C,B,D)+DCR does that, so would per-channel A,C,B,D + CRD; Concat(A,B,C,D) would not, nor
    would CRD on the concatenation (one channel, as the by-hand test below uses, cannot tell DCR from CRD)."""
    weights = {}
    for conv, bias in zip("ABCD", (1, 2, 3, 4)):
        (kh, kw), _ = UPCONV_KERNELS[conv]
        weights[f"layerT_Conv{conv}/weights"] = np.zeros((kh, kw, 1, 2), np.float32)
        weights[f"layerT_Conv{conv}/biases"] = np.array([bias, bias + 10], np.float32)
    g = _GraphBuilder(weights, np.dtype(np.float32))
    out = g.upconv("x", "T")
    y = _run_single(g.nodes, {"x": np.ones((1, 1, 1, 2), np.float32)}, out, g.initializers)
    assert y.shape == (1, 2, 2, 4)
    expected_c0 = np.array([[1, 3, 1, 3], [2, 4, 2, 4]], np.float32)
    np.testing.assert_array_equal(y[0, 0], expected_c0)
    np.testing.assert_array_equal(y[0, 1], expected_c0 + 10)


def test_fast_upconv_paddings_and_interleave_by_hand():
    """All-ones kernels sum each conv's window; biases 0/1000/2000/3000 tag A/B/C/D.
    On x = 1..9 (3x3): A sums rows i-1..i+1, cols j-1..j+1; B rows i-1..i (pad t1 b0), cols
    j-1..j+1; C rows i-1..i+1, cols j-1..j (pad l1 r0); D rows i-1..i, cols j-1..j."""
    weights = {}
    convs = {"A": ((3, 3), 0), "B": ((2, 3), 1000), "C": ((3, 2), 2000), "D": ((2, 2), 3000)}
    for conv, (shape, bias) in convs.items():
        weights[f"layerT_Conv{conv}/weights"] = np.ones((*shape, 1, 1), np.float32)
        weights[f"layerT_Conv{conv}/biases"] = np.array([bias], np.float32)
    g = _GraphBuilder(weights, np.dtype(np.float32))
    out = g.upconv("x", "T")
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)
    y = _run_single(g.nodes, {"x": x}, out, g.initializers)[0, 0]
    expected = np.array([
        [12, 2005, 21, 2012, 16, 2016],
        [1003, 3001, 1006, 3003, 1005, 3005],
        [27, 2012, 45, 2027, 33, 2033],
        [1012, 3005, 1021, 3012, 1016, 3016],
        [24, 2011, 39, 2024, 28, 2028],
        [1024, 3011, 1039, 3024, 1028, 3028],
    ], np.float32)
    np.testing.assert_array_equal(y, expected)


def test_pool1_is_tf_same_padding(model):
    """On an even 6x6 input TF 'SAME' 3x3/2 pads one row/column after, none before: windows
    start at 0, 2, 4, so maxima sit at rows/cols 2, 4, 5."""
    (pool,) = [n for n in model.graph.node if n.name == "pool1"]
    x = np.arange(36, dtype=np.float32).reshape(1, 1, 6, 6)
    y = _run_single([helper.make_node("MaxPool", ["x"], ["pool1"], **{a.name: helper.get_attribute_value(a)
                                                                      for a in pool.attribute})],
                    {"x": x}, "pool1")
    rows = np.array([2, 4, 5])
    np.testing.assert_array_equal(y[0, 0], 6 * rows[:, None] + rows[None, :])
    np.testing.assert_array_equal(Reference.max_pool_same(x.transpose(0, 2, 3, 1))[0, :, :, 0], y[0, 0])
