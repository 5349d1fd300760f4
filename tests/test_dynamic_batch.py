"""make_batch_dynamic: the batch-1 TCMonoDepth export rewritten to take any batch, checked against
single calls of the original, a NumPy channel shuffle, and its refusals."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from models.dynamic_batch import make_batch_dynamic
from models.registry import get_spec

ort = pytest.importorskip("onnxruntime")


def _session(model: onnx.ModelProto):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _max_relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def test_tcmonodepth_batches_match_single_calls_of_the_original(shared_models, rng):
    spec = get_spec("tcmonodepth")
    original = onnx.load(str(shared_models / spec.filename))
    dynamic = make_batch_dynamic(original)
    for value in (dynamic.graph.input[0], dynamic.graph.output[0]):
        assert value.type.tensor_type.shape.dim[0].dim_param == "N"

    width, height = spec.input_size
    # What DepthEstimator.preprocess feeds it: RGB floats 0..255 times the registry's input_scale, NCHW.
    images = (rng.uniform(0, 255, (4, 3, height, width)) * spec.input_scale).astype(np.float32)
    single, batched = _session(original), _session(dynamic)
    expected = np.concatenate([single.run(None, {"input": images[i:i + 1]})[0] for i in range(4)])
    # Different inputs give clearly different maps, so a mixed-up batch could not pass.
    assert np.abs(expected[0] - expected[1]).max() > 1e-3 * np.abs(expected).max()

    for batch in (4, 1, 3):
        output = batched.run(None, {"input": images[:batch]})[0]
        assert output.shape == (batch, 1, height, width)
        assert _max_relative_error(output, expected[:batch]) <= 1e-5, f"batch {batch}"


def _shuffle_model(opset: int, channels: int = 8, height: int = 4, width: int = 6) -> onnx.ModelProto:
    """Input -> Relu -> one channel shuffle traced at batch 1 -> Concat(half, Relu(other half)), as exported."""
    half = channels // 2
    split_kwargs = {"split": [1, 1]} if opset < 13 else {}
    split_inputs = ["grouped"] + (["split_sizes"] if opset >= 13 else [])
    nodes = [
        helper.make_node("Relu", ["x"], ["features"], name="relu_in"),
        helper.make_node("Reshape", ["features", "shape_a"], ["rows"], name="shuffle/Reshape"),
        helper.make_node("Transpose", ["rows"], ["swapped"], name="shuffle/Transpose", perm=[1, 0, 2]),
        helper.make_node("Reshape", ["swapped", "shape_b"], ["grouped"], name="shuffle/Reshape_1"),
        helper.make_node("Split", split_inputs, ["proj", "main"], name="shuffle/Split", axis=0, **split_kwargs),
        helper.make_node("Neg", ["main"], ["branch"], name="branch"),
        helper.make_node("Concat", ["proj", "branch"], ["y"], name="concat", axis=1),
    ]
    initializers = [
        numpy_helper.from_array(np.array([half, 2, height * width], np.int64), "shape_a"),
        numpy_helper.from_array(np.array([2, half, height, width], np.int64), "shape_b"),
        numpy_helper.from_array(np.array([1, 1], np.int64), "split_sizes"),
    ]
    if opset < 13:
        initializers.pop()
    graph = helper.make_graph(
        nodes, "shuffle", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, height, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, height, width])], initializers)
    # IR 8: onnx 1.23 writes IR 14 by default, newer than the onnxruntime here reads.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    onnx.checker.check_model(model, full_check=True)
    return model


def _numpy_shuffle_block(x: np.ndarray) -> np.ndarray:
    """The ShuffleNetV2 block on one sample C x H x W: channels interleaved into two halves."""
    c, h, w = x.shape
    grouped = np.maximum(x, 0).reshape(c // 2, 2, h * w).transpose(1, 0, 2).reshape(2, c // 2, h, w)
    return np.concatenate([grouped[0], -grouped[1]])


@pytest.mark.parametrize("opset", [11, 13])
def test_hand_built_shuffle_is_per_sample_for_batch_2(opset, rng):
    dynamic = make_batch_dynamic(_shuffle_model(opset))
    x = rng.standard_normal((2, 8, 4, 6)).astype(np.float32)
    y = _session(dynamic).run(None, {"x": x})[0]
    np.testing.assert_array_equal(y, np.stack([_numpy_shuffle_block(sample) for sample in x]))


def test_unknown_batch_1_reshape_is_refused_by_name():
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"], name="relu"),
         helper.make_node("Reshape", ["r", "flat"], ["y"], name="head/Flatten_as_reshape")],
        "flatten", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 4, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 192])],
        [numpy_helper.from_array(np.array([1, 192], np.int64), "flat")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    with pytest.raises(ValueError, match="head/Flatten_as_reshape"):
        make_batch_dynamic(model)


def test_already_dynamic_model_comes_back_unchanged():
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")], "dynamic",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3, 4, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    result = make_batch_dynamic(model)
    assert result is not model
    assert result.SerializeToString() == model.SerializeToString()
