"""depthcam from Python (docs/python.md): what DepthEstimator takes and refuses, and a Pipeline's one run."""
from pathlib import Path

import numpy as np
import pytest

from models.download import ModelError
from models.registry import resolve_model
from models.runtime import DepthEstimator


def _red_depth(path: Path) -> Path:
    """Input `image` n x 3 x 16 x 16 float32, output `depth` n x 1 x 16 x 16: its first channel (R)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Gather", ["image", "first"], ["depth"], axis=1)], "red",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, 16, 16])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, ["n", 1, 16, 16])],
        [numpy_helper.from_array(np.array([0], np.int64), "first")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


@pytest.fixture
def estimator(tmp_path) -> DepthEstimator:
    spec, path = resolve_model(str(_red_depth(tmp_path / "red.onnx")), progress=False)
    return DepthEstimator(spec, path, "cpu")


def _portrait(rng) -> np.ndarray:
    return rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)


@pytest.mark.parametrize("frame, said", [
    (np.zeros((24, 32, 3), np.uint16), r"got uint16 \(24, 32, 3\); convert it first \(16-bit: \(image >> 8\)"),
    (np.zeros((24, 32, 3), np.float32), r"got float32 \(24, 32, 3\); convert it first .*floats in 0\.\.1"),
    (np.zeros((0, 32, 3), np.uint8), r"got uint8 \(0, 32, 3\)$"),
    (np.zeros((24, 32, 2), np.uint8), r"got uint8 \(24, 32, 2\)$"),
], ids=["uint16", "float32", "empty", "two-channels"])
def test_api22_a_frame_that_is_no_8_bit_image_is_one_value_error(estimator, frame, said):
    """OpenCV's assertion from cv2.LUT or cv2.resize, many lines of C++ signature, was all a caller saw."""
    with pytest.raises(ValueError, match=r"^a frame must be a uint8 HxWx3 BGR image .*" + said):
        estimator.predict([frame])


def test_api22_grey_bgra_and_strided_frames_give_the_depth_of_their_bgr_frame(estimator, rng):
    """What the kernels accept, DepthEstimator takes too: grey as grey, alpha left aside, a view as its copy."""
    frame = _portrait(rng)
    grey = frame[..., 1].copy()
    depth = estimator.predict([frame])[0]
    np.testing.assert_array_equal(estimator.predict([np.dstack([frame, frame[..., :1]])])[0], depth)
    np.testing.assert_array_equal(estimator.predict([np.ascontiguousarray(frame[:, ::-1])])[0],
                                  estimator.predict([frame[:, ::-1]])[0])
    np.testing.assert_array_equal(estimator.predict([grey])[0], estimator.predict([grey[..., None]])[0])


def test_api22_no_frames_predict_no_maps(estimator):
    """np.stack's "need at least one array to stack" was raised for an empty list."""
    assert estimator.predict([]) == []


def test_api22_a_damaged_model_given_by_a_str_path_is_a_model_error(tmp_path):
    """A str path (as a library caller writes it) raised AttributeError ('str' object has no attribute 'name')
    where a Path gave the ModelError."""
    whole = _red_depth(tmp_path / "red.onnx").read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(whole[:len(whole) // 2])
    spec, _ = resolve_model(str(cut), progress=False)
    with pytest.raises(ModelError, match="cut.onnx is not a complete ONNX model"):
        DepthEstimator(spec, str(cut), "cpu")


@pytest.mark.parametrize("device", ["gpu", "CPU", "cuda:0"], ids=["lower-case-g", "upper-case-c", "cuda-index"])
def test_api22_an_unknown_device_is_refused(tmp_path, device):
    """"gpu" or "CPU" ran as "auto": on the CPU without a word (or on the GPU where "CPU" was meant)."""
    spec, path = resolve_model(str(_red_depth(tmp_path / "red.onnx")), progress=False)
    with pytest.raises(ValueError, match=rf"^unknown device '{device}'; choose one of auto, cpu, cuda$"):
        DepthEstimator(spec, path, device)


@pytest.mark.parametrize("head, kind", [(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "a JPEG image"),
                                        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a PNG image"),
                                        (b"\x93NUMPY\x01\x00v\x00{'descr': '<f4'", r"a NumPy array \(\.npy\)")],
                         ids=["jpeg", "png", "npy"])
def test_api22_a_picture_or_array_saved_as_the_model_is_named(tmp_path, head, kind):
    """Such a file was "not a complete ONNX model (it cannot be parsed)", as if cut short."""
    path = tmp_path / "model.onnx"
    path.write_bytes(head + bytes(range(256)) * 4)
    spec, _ = resolve_model(str(path), progress=False)
    with pytest.raises(ModelError, match=rf"model file .*model\.onnx is {kind}, not an ONNX model; give the model's "
                                         rf"\.onnx file itself"):
        DepthEstimator(spec, path, "cpu")


def test_api22_a_pipeline_run_again_is_refused(shared_models):
    """A second run() found the first's stop set: it returned at once with nothing written and no error."""
    from stream.app import build
    from stream.config import load_config
    from stream.sinks import NullSink

    config = load_config("default", {"output.progress": False, "refine.radius": 2})
    pipeline = build(config, "synthetic:portrait?size=64x48&frames=2", None, sink=NullSink()).pipeline
    assert pipeline.run().frames_written == 2
    with pytest.raises(RuntimeError, match="a Pipeline runs once; build a new one"):
        pipeline.run()
