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


# --- files that are no ONNX model depthcam can load: one line naming what the file is and the fix ---

def _cli_error(args: list, capfd) -> str:
    """The one line a failing CLI command prints (ONNX Runtime's own log on the same stderr included)."""
    from stream.cli import main

    assert main(args) == 2
    captured = capfd.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("depthcam: error: "), captured.err
    return lines[0].removeprefix("depthcam: error: ")


def _depth_of_red(path, opset=17, ir_version=8, domain=None):
    """The smallest depth model: the first channel of a 16 x 16 image; `domain` (name, version) adds one operator."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = _first_channel("image", "red" if domain else "depth")
    opsets = [helper.make_opsetid("", opset)]
    if domain:
        nodes.append(helper.make_node("Unknown", ["red"], ["depth"], domain=domain[0]))
        opsets.append(helper.make_opsetid(*domain))
    graph = helper.make_graph(nodes, "red", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, 1, 16, 16])],
                              [numpy_helper.from_array(value, name) for name, value in FIRST])
    onnx.save(helper.make_model(graph, opset_imports=opsets, ir_version=ir_version), str(path))
    return path


def _installed_onnxruntime() -> str:
    import onnxruntime

    return onnxruntime.__version__


def test_own_models_an_opset_newer_than_onnxruntime_names_both_versions(tmp_path, capfd):
    """ONNX Runtime's refusal was cut at 300 characters, inside its C++ signature, before the versions."""
    path = _depth_of_red(tmp_path / "future.onnx", opset=99)
    line = _cli_error(["models", "info", str(path)], capfd)
    assert re.fullmatch(rf"model file {re.escape(str(path))} needs ONNX opset 99 \(ai\.onnx\), newer than onnxruntime "
                        rf"{re.escape(_installed_onnxruntime())} supports \(up to (\d+)\); upgrade it \(pip install -U "
                        r"onnxruntime[\w-]*\), or export the model at opset \1 or lower "
                        r"\(torch\.onnx\.export\(\.\.\., opset_version=\1\)\)", line), line


def test_own_models_an_ir_version_newer_than_onnxruntime_names_both_versions(tmp_path, capfd):
    path = _depth_of_red(tmp_path / "future.onnx", ir_version=99)
    line = _cli_error(["run", "synthetic:portrait?frames=1", "--model", str(path), "-o", str(tmp_path / "o.mp4")],
                      capfd)
    assert re.fullmatch(rf"model file {re.escape(str(path))} is ONNX IR version 99, newer than onnxruntime "
                        rf"{re.escape(_installed_onnxruntime())} reads \(up to (\d+)\); upgrade it \(pip install -U "
                        r"onnxruntime[\w-]*\), or save the model with ir_version \1 \(onnx: model\.ir_version = \1\)",
                        line), line
    assert not (tmp_path / "o.mp4").exists()


def test_own_models_an_operator_onnxruntime_lacks_is_named(tmp_path, capfd):
    path = _depth_of_red(tmp_path / "custom.onnx", domain=("com.example", 1))
    line = _cli_error(["models", "info", str(path)], capfd)
    assert line.startswith(f"model file {path} uses the operator com.example:Unknown, which onnxruntime "
                           f"{_installed_onnxruntime()} does not have (a custom operator, or one newer than it); "
                           f"export the model with standard ONNX operators, or upgrade it (pip install -U "), line


def _zip(path, members: dict):
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


SAFETENSORS_HEADER = b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
PYTORCH_FIX = ("is a PyTorch checkpoint, not ONNX; export the model once with torch.onnx.export (or optimum-cli export "
               "onnx), then --model the .onnx")


@pytest.mark.parametrize("name, content, said", [
    ("empty.onnx", b"", "is empty (0 bytes): a download or copy that did not finish; download or export it again"),
    ("lfs.onnx", b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 99\n",
     "is a Git LFS pointer, not the model (a clone without git-lfs); fetch the real file with 'git lfs pull' in the "
     "clone, or download the file itself"),
    ("blob.onnx", b"\n<!DOCTYPE html><html></html>", "is a web page (HTML or XML), not an ONNX model; download the "
     "file itself (GitHub: the 'raw' link; Hugging Face: 'resolve', not 'blob', in the address)"),
    ("model.pt", {"archive/data.pkl": b"\x80\x02}q\x00.", "archive/version": b"3\n"}, PYTORCH_FIX),
    ("legacy.pth", b"\x80\x02}q\x00.", PYTORCH_FIX),
    ("model.tflite", b"\x1c\x00\x00\x00TFL3" + bytes(64), "is a TensorFlow Lite model, not ONNX; convert it once: "
     "python -m tf2onnx.convert --tflite {path} --output model.onnx, then --model model.onnx"),
    ("model.h5", b"\x89HDF\r\n\x1a\n" + bytes(64), "is a Keras/HDF5 model, not ONNX; convert it once to ONNX "
     "(tf2onnx.convert.from_keras), then --model it"),
    ("model.safetensors", len(SAFETENSORS_HEADER).to_bytes(8, "little") + SAFETENSORS_HEADER + bytes(4),
     "holds weights only (safetensors), no graph; export the model to ONNX (optimum-cli export onnx, or "
     "torch.onnx.export), then --model the .onnx"),
    ("depth.zip", {"depth/model.onnx": b"x"}, "is a zip archive holding depth/model.onnx; extract it and give the "
     ".onnx to --model"),
    ("other.zip", {"readme.txt": b"x"}, "is a zip archive, not an ONNX model; extract the .onnx model from it and "
     "give that to --model"),
])
def test_own_models_a_file_that_is_no_onnx_model_is_named_with_its_fix(tmp_path, capfd, name, content, said):
    """Each was "could not be loaded as ONNX (... Protobuf parsing failed.); check that the file is a complete ONNX
    model", and a zip of any kind was sent to `models convert` as FCRN's official weights."""
    path = tmp_path / name
    if isinstance(content, dict):
        _zip(path, content)
    else:
        path.write_bytes(content)
    assert _cli_error(["models", "info", str(path)], capfd) == f"model file {path} " + said.format(path=path)


def test_own_models_the_weight_file_given_for_the_model_names_the_onnx(tmp_path, capfd):
    path = _external(tmp_path)
    weights = path.parent / "model.onnx.data"
    assert _cli_error(["models", "info", str(weights)], capfd) == (f"model file {weights} holds the weights of "
                                                                   f"model.onnx, not the model; give --model {path}")


def test_own_models_a_short_weight_file_is_named_without_onnxruntime_noise(tmp_path, capfd):
    """A model.onnx.data cut short (a copy that did not finish) gave ONNX Runtime's error log twice, red, with its
    C++ signatures, and then a line cut off before the cause."""
    path = _external(tmp_path)
    weights = path.parent / "model.onnx.data"
    weights.write_bytes(weights.read_bytes()[:4])
    line = _cli_error(["run", "synthetic:portrait?frames=1", "--model", str(path), "-o", str(tmp_path / "o.mp4")],
                      capfd)
    assert line == (f"model file {path} keeps its weights in model.onnx.data, which holds 4 of their 16 bytes (a "
                    f"download or copy that did not finish); copy or download model.onnx.data again")


@pytest.mark.parametrize("inside, said", [
    (["onnx/model.onnx"], "give the .onnx file in it: --model {folder}/onnx/model.onnx"),
    (["a.onnx", "b.onnx"], "give one of its .onnx files to --model ({folder}/a.onnx, {folder}/b.onnx)"),
    (["saved_model.pb"], "it is a TensorFlow SavedModel: convert it once (python -m tf2onnx.convert "
     "--saved-model {folder} --output model.onnx), then --model model.onnx"),
    ([], "give the .onnx file itself"),
])
def test_own_models_a_folder_names_the_model_in_it(tmp_path, capfd, inside, said):
    """A Hugging Face repository or an export's folder given to --model: "is a folder; give the .onnx file
    itself", with the file to give a level down."""
    folder = tmp_path / "export"
    for name in inside:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"")
    folder.mkdir(exist_ok=True)
    assert _cli_error(["models", "info", str(folder)], capfd) == f"model {folder} is a folder; " + \
        said.format(folder=folder)


def test_own_models_a_weight_file_outside_the_models_folder_is_named(tmp_path, capfd):
    """ONNX Runtime refuses external data outside the model's folder ("../weights.bin"): the fix said to check that
    the file is a complete ONNX model."""
    import onnx

    path = _external(tmp_path)
    model = onnx.load(str(path), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../model.onnx.data"
    (path.parent / "model.onnx.data").rename(tmp_path / "model.onnx.data")
    onnx.save(model, str(path))
    assert _cli_error(["models", "info", str(path)], capfd) == (
        f"model file {path} keeps its weights in ../model.onnx.data, outside its folder, which onnxruntime refuses to "
        f"read; save the model again with them beside it (onnx.save(model, ..., save_as_external_data=True, "
        f"location='model.onnx.data'))")
