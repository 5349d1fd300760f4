"""A user's own depth model shaped as the popular exports really are: Hugging Face optimum's `pixel_values`
with every axis open, float16 exports, depth beside a confidence output, weights in a side file."""
import dataclasses
import os
import re

import numpy as np
import pytest

from models.download import ModelError
from models.registry import resolve_model
from models.runtime import DepthEstimator

BGR = np.array([10, 100, 200], np.uint8)  # R = 200
IMAGENET_R = (200 / 255 - 0.485) / 0.229  # what the first channel holds for the network


def _save(path, nodes, inputs, outputs, initializers=(), opset=17, external=False):
    import onnx
    from onnx import helper, numpy_helper

    graph = helper.make_graph(
        nodes, path.stem, [helper.make_tensor_value_info(*spec) for spec in inputs],
        [helper.make_tensor_value_info(*spec) for spec in outputs],
        [numpy_helper.from_array(value, name) for name, value in initializers])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    if external:
        onnx.save(model, str(path), save_as_external_data=True, location=path.name + ".data", size_threshold=0)
    else:
        onnx.save(model, str(path))
    return path


def _first_channel(image: str, out: str, keep_axis: bool = True):
    """Nodes: `out` = the first channel (R) of NCHW `image`, N x 1 x H x W (or N x H x W without keep_axis)."""
    from onnx import helper

    return [helper.make_node("Gather", [image, "first" if keep_axis else "zero"], [out], axis=1)]


FIRST = [("first", np.array([0], np.int64)), ("zero", np.array(0, np.int64))]


def _frame(height=48, width=64):
    return np.zeros((height, width, 3), np.uint8) + BGR


def _estimator(path, size=(0, 0), **kwargs):
    spec, resolved = resolve_model(str(path), progress=False)
    return DepthEstimator(dataclasses.replace(spec, input_size=size), resolved, "cpu", **kwargs)


def test_own_models_an_optimum_export_with_its_channel_axis_open_runs(tmp_path):
    """optimum exports Depth Anything and DPT with `pixel_values` batch_size x num_channels x height x width, every
    axis dynamic, and `predicted_depth` batch_size x height x width: it was refused for having "no 3-channel axis"."""
    from onnx import TensorProto

    path = _save(tmp_path / "model.onnx", _first_channel("pixel_values", "predicted_depth", keep_axis=False),
                 [("pixel_values", TensorProto.FLOAT, ["batch_size", "num_channels", "height", "width"])],
                 [("predicted_depth", TensorProto.FLOAT, ["batch_size", "height", "width"])], FIRST)
    estimator = _estimator(path, (42, 28))
    assert (estimator.input.layout, estimator.input.width, estimator.input.height) == ("NCHW", 42, 28)
    assert not estimator.input.static_batch
    depths = estimator.predict([_frame(), _frame()])
    assert [d.shape for d in depths] == [(28, 42)] * 2
    np.testing.assert_allclose(depths[0], IMAGENET_R, rtol=1e-5)


def test_own_models_an_open_channel_axis_that_is_not_rgb_is_refused_at_load(tmp_path):
    """A grey-level network whose channel axis was exported open: refused in one line before any frame."""
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Conv", ["image", "w"], ["depth"], kernel_shape=[1, 1])]
    path = _save(tmp_path / "grey.onnx", nodes, [("image", TensorProto.FLOAT, [1, "c", 16, 16])],
                 [("depth", TensorProto.FLOAT, [1, 1, 16, 16])], [("w", np.ones((1, 1, 1, 1), np.float32))])
    with pytest.raises(ModelError, match=r"^model grey.onnx cannot run on a 3-channel \(RGB\) 16x16 image \(.*\); "
                                         r"depthcam needs an RGB image input$"):
        _estimator(path)


@pytest.mark.parametrize("size, real_batch", [((0, 0), False), ((0, 0), True), ((40, 24), False)])
def test_own_models_a_float16_export_is_fed_float16(tmp_path, size, real_batch):
    """A half-precision export (onnxconverter-common's float16 conversion, optimum's --dtype fp16) takes a
    float16 input, which ONNX Runtime refuses to be fed float32: it was refused as "takes a tensor(float16)
    input". Here the graph only takes float16, and the first channel comes back at float16's precision."""
    from onnx import TensorProto

    height, width = ("h", "w") if size != (0, 0) else (24, 40)
    path = _save(tmp_path / "half.onnx", _first_channel("image", "depth"),
                 [("image", TensorProto.FLOAT16, [1, 3, height, width])],
                 [("depth", TensorProto.FLOAT16, [1, 1, height, width])], FIRST)
    estimator = _estimator(path, size, real_batch=real_batch)
    assert estimator.input.dtype == np.float16
    assert estimator.preprocess(_frame()).dtype == np.float16
    depths = estimator.predict([_frame()] * 3)
    assert all(d.shape == (24, 40) and d.dtype == np.float32 for d in depths)
    np.testing.assert_allclose(depths[2], IMAGENET_R, rtol=1e-3)
    bound = estimator._run_bound(estimator.preprocess(_frame())[None], "cpu").numpy()  # the GPU path's call
    np.testing.assert_allclose(bound[0, 0], IMAGENET_R, rtol=1e-3)


def _two_outputs(path, outputs: dict[str, list], depth_name: str = ""):
    """Outputs of the given names and shapes: `depth_name` holds the first channel, the others its negation (a
    map) or its mean (a 1-element shape, as a focal length)."""
    from onnx import TensorProto, helper

    nodes = [*_first_channel("image", "r"), helper.make_node("Neg", ["r"], ["neg"]),
             helper.make_node("ReduceMean", ["r"], ["mean"], keepdims=0)]
    for name, shape in outputs.items():
        source = "r" if name == depth_name else "neg" if len(shape) > 1 else "mean"
        nodes.append(helper.make_node("Reshape", [source, name + "_shape"], [name]))
    return _save(path, nodes, [("image", TensorProto.FLOAT, [1, 3, 16, 16])],
                 [(name, TensorProto.FLOAT, shape) for name, shape in outputs.items()],
                 [*FIRST, *((name + "_shape", np.array(shape, np.int64)) for name, shape in outputs.items())], opset=13)


MAP = [1, 1, 16, 16]


@pytest.mark.parametrize("outputs, depth_name", [
    ({"confidence": MAP, "depth": MAP}, "depth"),  # depth and its confidence, the confidence first
    ({"disparity_uncertainty": MAP, "disparity": [1, 16, 16]}, "disparity"),
    ({"focallength_px": [1], "predicted_depth": [1, 16, 16]}, "predicted_depth"),  # DepthPro's
    ({"sigma": MAP, "out": MAP}, "out"),  # the one map whose name says nothing else
])
def test_own_models_the_depth_output_of_several_is_told_by_its_name(tmp_path, capsys, outputs, depth_name):
    """The first output was read as depth whatever it was: a confidence map listed first became the depth."""
    path = _two_outputs(tmp_path / "two.onnx", outputs, depth_name)
    estimator = _estimator(path)
    assert estimator.output_name == depth_name
    depth = estimator.predict([_frame()])[0]
    assert depth.shape == (16, 16)
    np.testing.assert_allclose(depth, IMAGENET_R, rtol=1e-5)
    other = next(name for name in outputs if name != depth_name)
    assert capsys.readouterr().err == (f"depthcam: model two.onnx has 2 outputs: depthcam reads {depth_name} as the "
                                       f"depth map (not {other})\n")


def test_own_models_several_outputs_none_named_depth_are_refused(tmp_path):
    path = _two_outputs(tmp_path / "two.onnx", {"out0": MAP, "out1": MAP})
    with pytest.raises(ModelError, match=re.escape("model two.onnx has 2 outputs (out0 [1, 1, 16, 16], out1 [1, 1, 16, "
                                                   "16]) and depthcam cannot tell which is the depth map; export it "
                                                   "with the depth map as its only output, or named 'depth'")):
        _estimator(path)


def _external(tmp_path):
    from onnx import TensorProto

    folder = tmp_path / "export"
    folder.mkdir()
    return _save(folder / "model.onnx", _first_channel("pixel_values", "predicted_depth", keep_axis=False),
                 [("pixel_values", TensorProto.FLOAT, ["batch_size", 3, 24, 40])],
                 [("predicted_depth", TensorProto.FLOAT, ["batch_size", 24, 40])], FIRST, external=True)


def test_own_models_weights_in_a_side_file_load_from_a_relative_path(tmp_path, monkeypatch):
    path = _external(tmp_path)
    assert (path.parent / "model.onnx.data").is_file()
    monkeypatch.chdir(tmp_path)
    for real_batch in (False, True):  # the GPU's batch rewrite loads the weights itself
        estimator = _estimator(os.path.join("export", "model.onnx"), real_batch=real_batch)
        np.testing.assert_allclose(estimator.predict([_frame()] * 2)[1], IMAGENET_R, rtol=1e-5)


def test_own_models_a_missing_weight_file_is_named_with_its_fix(tmp_path):
    """The .onnx copied without its model.onnx.data was "could not be loaded as ONNX (...); check that the file is
    a complete ONNX model", with ONNX Runtime's words on an initializer's external data path."""
    path = _external(tmp_path)
    lone = tmp_path / "lone" / "model.onnx"
    lone.parent.mkdir()
    lone.write_bytes(path.read_bytes())
    with pytest.raises(ModelError, match=re.escape(f"model file {lone} keeps its weights in model.onnx.data, not found "
                                                   f"beside it in {lone.parent}; keep the weight file in the same "
                                                   f"folder as the .onnx")):
        _estimator(lone)


def test_own_models_info_names_the_output_read_as_depth_and_the_input_type(tmp_path, capsys):
    """`models info` printed the first output (a confidence map listed first) whatever the run read as depth."""
    from stream.cli import main

    path = _two_outputs(tmp_path / "two.onnx", {"confidence": MAP, "depth": MAP}, "depth")
    assert main(["models", "info", str(path)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"^output: +depth \[1, 1, 16, 16\]", printed, re.M), printed
    assert re.search(r"^input: +image NCHW 16x16, .*, float32$", printed, re.M), printed


def test_own_models_info_checks_a_dynamic_model_at_the_size_given(tmp_path, capsys):
    """A model taking only multiples of 64 failed `models info` at its trial size, 224, with "give a
    --model-size it takes", which `models info` had no way to take."""
    from onnx import TensorProto, helper

    from stream.cli import main

    path = _save(tmp_path / "blocks64.onnx",
                 [helper.make_node("SpaceToDepth", ["image"], ["blocks"], blocksize=64),
                  helper.make_node("ReduceMean", ["blocks"], ["depth"], axes=[1], keepdims=1)],
                 [("image", TensorProto.FLOAT, ["n", 3, "h", "w"])], [("depth", TensorProto.FLOAT, ["n", 1, "a", "b"])],
                 opset=13)
    assert main(["models", "info", str(path)]) == 2
    assert "give a --model-size it takes" in capsys.readouterr().err
    assert main(["models", "info", str(path), "--model-size", "256x192"]) == 0
    assert "accepted by depthcam" in capsys.readouterr().out
