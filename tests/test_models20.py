"""A user's own depth model shaped as exports really are, beyond test_own_models_exports.py: an output that lost its
batch axis (H x W), a classifier given as the depth model, a batch the graph cannot take, an .onnx given to
`models convert`."""
import dataclasses
import re

import numpy as np
import pytest

from models.download import ModelError
from models.registry import resolve_model
from models.runtime import DepthEstimator
from tests.test_own_models_exports import _cli_error, _save

BGR = np.array([10, 100, 200], np.uint8)
LUMINANCE = np.array([[[[0.6]], [[0.3]], [[0.1]]]], np.float32)  # 1 x 3 x 1 x 1: a 1x1 convolution to one map


def _frames(count=3, height=48, width=64):
    """Frames whose left half is bright, right half dark: a map of two depths, not the same at every pixel."""
    frame = np.zeros((height, width, 3), np.uint8) + BGR
    frame[:, width // 2:] //= 4
    return [frame.copy() for _ in range(count)]


def _estimator(path, size=(0, 0), **kwargs):
    spec, resolved = resolve_model(str(path), progress=False)
    return DepthEstimator(dataclasses.replace(spec, input_size=size), resolved, "cpu", **kwargs)


def _luminance_model(path, output_shape, squeeze=(), batch=1, size=(16, 24)):
    """Input `input` batch x 3 x H x W, output one map of its luminance, with the axes `squeeze` squeezed out."""
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Conv", ["input", "w"], ["lum" if squeeze else "depth"], kernel_shape=[1, 1])]
    initializers = [("w", LUMINANCE)]
    if squeeze:
        nodes.append(helper.make_node("Squeeze", ["lum", "axes"], ["depth"]))
        initializers.append(("axes", np.array(squeeze, np.int64)))
    return _save(path, nodes, [("input", TensorProto.FLOAT, [batch, 3, *size])],
                 [("depth", TensorProto.FLOAT, output_shape)], initializers)


@pytest.mark.parametrize("real_batch", [False, True])
@pytest.mark.parametrize("output_shape, squeeze", [([16, 24], [0, 1]), (["h", "w"], [0, 1]), ([16, 24, 1], [0])])
def test_models20_a_batch_1_models_output_without_its_batch_axis_is_its_depth(tmp_path, output_shape, squeeze,
                                                                              real_batch):
    """A batch-1 export whose forward ends in `depth.squeeze()` gives H x W: it was refused at load ("depthcam needs
    one depth map per frame, float N x 1 x H x W, N x H x W x 1 or N x H x W"), and H x W x 1 on the first frame
    ("gave 16 depth maps for 1 frames"). The GPU's batch rewrite (real_batch) cannot batch it: frames run singly."""
    from onnx import TensorProto, helper

    symbolic = isinstance(output_shape[0], str)  # a model of dynamic size, run at --model-size 24x16
    path = _luminance_model(tmp_path / "squeezed.onnx", output_shape, squeeze, size=output_shape if symbolic else
                            (16, 24))
    if output_shape == [16, 24, 1]:  # H x W x 1: the map's axis moved last, as a TensorFlow export keeps it
        path = _save(tmp_path / "squeezed.onnx",
                     [helper.make_node("Conv", ["input", "w"], ["lum"], kernel_shape=[1, 1]),
                      helper.make_node("Transpose", ["lum"], ["hwc"], perm=[0, 2, 3, 1]),
                      helper.make_node("Squeeze", ["hwc", "axes"], ["depth"])],
                     [("input", TensorProto.FLOAT, [1, 3, 16, 24])], [("depth", TensorProto.FLOAT, output_shape)],
                     [("w", LUMINANCE), ("axes", np.array([0], np.int64))])
    estimator = _estimator(path, (24, 16) if symbolic else (0, 0), real_batch=real_batch)
    assert estimator.input.static_batch
    frames = _frames()
    depths = estimator.predict(frames)
    assert [d.shape for d in depths] == [(16, 24)] * 3 and all(d.dtype == np.float32 for d in depths)
    rgb = estimator.preprocess(frames[0])  # 3 x 16 x 24, ImageNet-normalised
    np.testing.assert_allclose(depths[1], (LUMINANCE[0] * rgb).sum(axis=0), rtol=1e-5, atol=1e-5)


def test_models20_a_squeezed_output_runs_the_cli(tmp_path):
    from stream.cli import main

    path = _luminance_model(tmp_path / "squeezed.onnx", [16, 24], [0, 1])
    assert main(["run", "synthetic:portrait?frames=3&size=64x48", "--model", str(path), "-o", "null",
                 "--no-progress"]) == 0


@pytest.mark.parametrize("output_shape", [[1, 1000, 1, 1], ["n", 1000, 1, 1], [1, 1, 1, 1000]])
def test_models20_a_classifier_is_refused_at_load_in_one_line(tmp_path, capfd, output_shape):
    """SqueezeNet (ONNX model zoo) gives N x 1000 x 1 x 1, which passed as a depth map N x H x W x 1 of 1000 x 1:
    `models info` said "accepted by depthcam" and a run wrote a video of a 1-pixel-wide depth stretched over it."""
    from onnx import TensorProto, helper

    classes = next(v for v in output_shape[1:] if v != 1)
    weights = np.random.default_rng(0).random((classes, 3, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["input", "w"], ["scores"], kernel_shape=[1, 1]),
             helper.make_node("GlobalAveragePool", ["scores"], ["pooled"]),
             helper.make_node("Reshape", ["pooled", "shape"], ["out"])]
    batch = output_shape[0]
    path = _save(tmp_path / "squeezenet.onnx", nodes, [("input", TensorProto.FLOAT, [batch, 3, 32, 32])],
                 [("out", TensorProto.FLOAT, output_shape)],
                 [("w", weights), ("shape", np.array([-1 if batch == "n" else 1, *output_shape[1:]], np.int64))])
    line = _cli_error(["models", "info", str(path)], capfd)
    assert line == (f"model squeezenet.onnx gives output {output_shape}: 1000 values a frame, not a depth map (a "
                    f"classifier's scores?); give a depth model (--model tcmonodepth, or your depth model's .onnx)")


def test_models20_an_open_side_that_comes_out_as_1_is_refused_on_the_first_frame(tmp_path, monkeypatch):
    """An output left symbolic at export that is a vector when run was read as a depth map of one column."""
    path = _luminance_model(tmp_path / "open.onnx", ["n", 1, "h", "w"], batch="n")
    estimator = _estimator(path)
    monkeypatch.setattr(estimator, "_run", lambda batch, *args: np.ones((len(batch), 1, 16, 1), np.float32))
    with pytest.raises(ModelError, match=re.escape("model open.onnx gives output [2, 1, 16, 1]: 16 values a frame, "
                                                   "not a depth map")):
        estimator.predict(_frames(2))


def test_models20_a_dynamic_batch_the_graph_does_not_keep_is_said_in_one_line(tmp_path, capsys, monkeypatch):
    """Declared dynamic, but a Reshape fixes batch 1 inside: its frames ran one call each, said only in the debug
    log, so a benchmark's batch2..batch8 figures read as batched calls."""
    import models.registry
    from onnx import TensorProto, helper

    monkeypatch.setattr(models.registry, "_SAID", set())  # each note is said once a process
    path = _save(tmp_path / "fixed_inside.onnx",
                 [helper.make_node("Conv", ["input", "w"], ["lum"], kernel_shape=[1, 1]),
                  helper.make_node("Reshape", ["lum", "shape"], ["depth"])],
                 [("input", TensorProto.FLOAT, ["n", 3, 16, 24])], [("depth", TensorProto.FLOAT, ["n", 16, 24])],
                 [("w", LUMINANCE), ("shape", np.array([1, 16, 24], np.int64))])
    estimator = _estimator(path)
    assert len(estimator.predict(_frames(4))) == 4
    assert capsys.readouterr().err == (
        "depthcam: model fixed_inside.onnx has a dynamic batch axis but does not take a batch of 4 (its graph fixes "
        "batch 1 inside): its frames run one call each; to batch them, export it with a batch axis that every layer "
        "keeps\n")


def test_models20_a_batch_1_graph_the_rewrite_cannot_batch_is_said_in_one_line(tmp_path, capsys, monkeypatch):
    """On a GPU a batch-1 export is rewritten to a dynamic batch; where that failed, only the debug log said so."""
    import models.registry

    monkeypatch.setattr(models.registry, "_SAID", set())
    path = _luminance_model(tmp_path / "squeezed.onnx", [16, 24], [0, 1])  # no batch axis to make dynamic
    estimator = _estimator(path, real_batch=True)
    assert estimator.input.static_batch and len(estimator.predict(_frames(2))) == 2
    assert capsys.readouterr().err == (
        "depthcam: model squeezed.onnx takes batch 1 and depthcam cannot give its graph a dynamic batch: a batch of "
        "frames runs as single calls; to batch them, export it with a dynamic batch axis "
        "(torch.onnx.export(..., dynamic_axes={'input': {0: 'batch'}}))\n")


def test_models20_a_rewritten_batch_says_nothing(tmp_path, capsys, monkeypatch):
    import models.registry

    monkeypatch.setattr(models.registry, "_SAID", set())
    path = _luminance_model(tmp_path / "plain.onnx", [1, 1, 16, 24])
    estimator = _estimator(path, real_batch=True)
    assert not estimator.input.static_batch and len(estimator.predict(_frames(3))) == 3
    assert capsys.readouterr().err == ""


def test_models20_models_convert_of_an_onnx_file_says_to_run_it(tmp_path, capfd):
    """`models convert my_model.onnx` said "unknown FCRN weight format", as if the file were damaged weights."""
    path = _luminance_model(tmp_path / "midas_small.onnx", [1, 1, 16, 24])
    line = _cli_error(["models", "convert", str(path), "-o", str(tmp_path / "out.onnx")], capfd)
    assert line == (f"midas_small.onnx is already an ONNX model: nothing to convert; run it with --model {path} "
                    f"(models convert takes FCRN's official weights: NYU_ResNet-UpProj.npy, NYU_FCRN.ckpt[.index] "
                    f"or NYU_FCRN-checkpoint.zip)")
    assert not (tmp_path / "out.onnx").exists()


def test_models20_a_segmentation_models_two_classes_are_still_refused(shared_models, capfd):
    """MediaPipe Meet's 1 x 144 x 256 x 2 logits: two channels a frame, refused at load as before."""
    line = _cli_error(["models", "info", str(shared_models / "mediapipe.onnx")], capfd)
    assert "gives a tensor(float) output [1, 144, 256, 2]; depthcam needs one depth map per frame" in line, line


def test_models20_the_real_model_is_read_as_before(shared_models):
    spec, path = resolve_model("tcmonodepth", progress=False)
    estimator = DepthEstimator(spec, path, "cpu")
    depths = estimator.predict(_frames(2, 192, 320))
    assert [d.shape for d in depths] == [(192, 320)] * 2


def test_a_misspelt_model_name_is_told_the_one_it_most_likely_meant():
    """`--model tcmonodeph` (and `models fetch tcmonodeph`) listed the names and left the user to spot the typo,
    where a misspelt option or preset is told the one it meant."""
    from models.download import ModelError
    from models.registry import get_spec, resolve_model

    with pytest.raises(ModelError, match=r"unknown model 'tcmonodeph' \(did you mean tcmonodepth\?\); known models"):
        resolve_model("tcmonodeph")
    with pytest.raises(ModelError, match=r"unknown model 'FCRM' \(did you mean fcrn\?\)"):
        get_spec("FCRM")
    with pytest.raises(ModelError, match=r"unknown model 'zzz'; known models: fcrn, tcmonodepth$"):
        get_spec("zzz")
