"""Integration slips found in review: a model that misbehaves under the benchmark's own stage calls, and a preview
window that is the run's only output beside `-o null`."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from stream import sinks
from stream.cli import main
from stream.frame import Frame
from stream.sinks import DISPLAY_GONE, make_sink


def _model(path: Path, nodes, initializers=()) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes, path.stem, [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, 16, 16])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, ["n", 1, 16, 16])],
        [numpy_helper.from_array(value, name) for name, value in initializers])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def _constant(path: Path) -> Path:
    from onnx import helper

    nodes = [helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1], keepdims=1),
             helper.make_node("Mul", ["mean", "zero"], ["zeros"]),
             helper.make_node("Add", ["zeros", "value"], ["depth"])]
    return _model(path, nodes, [("zero", np.array(0, np.float32)), ("value", np.array(0.5, np.float32))])


def _nan(path: Path) -> Path:
    from onnx import helper

    nodes = [helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1], keepdims=1),
             helper.make_node("Mul", ["mean", "zero"], ["zeros"]),
             helper.make_node("Div", ["zeros", "zeros"], ["depth"])]  # 0 / 0 at every pixel
    return _model(path, nodes, [("zero", np.array(0, np.float32))])


@pytest.mark.parametrize("make, said", [
    (_constant, "the model flat gives the same depth (0.5) at every pixel of a frame with content"),
    (_nan, "the model flat gave NaN or infinite depth"),
])
def test_a_misbehaving_model_under_the_benchmark_is_said_in_one_line(tmp_path, capsys, make, said):
    """The benchmark primes the stages and runs the sequential mode itself: a model refused there came out as
    'ModelError: ... (run with --debug for details)' (or 'StopAfter: ...'), not as a run says it."""
    model = make(tmp_path / "flat.onnx")
    code = main(["bench", "--model", str(model), "--frames", "2", "--warmup", "0", "--modes", "sequential"])
    errors = capsys.readouterr().err
    assert code == 2, errors
    assert f"depthcam: error: {said}" in errors
    assert "ModelError" not in errors and "StopAfter" not in errors and "--debug" not in errors


class _GoneWatch:
    def gone(self) -> bool:
        return True

    def close(self) -> None:
        pass


@pytest.mark.parametrize("target, stops", [("null", True), ("window", True), ("out.mp4", False)])
def test_a_preview_beside_no_file_is_the_run_alone(monkeypatch, tmp_path, target, stops):
    """`-o null --preview` shows the frames only in the window: once its display went away a camera's run went on
    unseen, with a line saying it went on without the window, until Ctrl-C."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sinks, "check_display", lambda fix=None: None)
    for name in ("namedWindow", "setMouseCallback", "imshow", "setWindowTitle", "destroyWindow", "waitKey"):
        monkeypatch.setattr(cv2, name, lambda *a: None)
    monkeypatch.setattr(cv2, "getWindowProperty", lambda *a: 1.0)
    monkeypatch.setattr(cv2, "waitKeyEx", lambda delay: -1)
    monkeypatch.setattr(sinks.DisplayWatch, "open", classmethod(lambda cls, display: _GoneWatch()))
    sink = make_sink(target, width=64, height=48, fps=30.0, audio_from=None, side_by_side=False, save_depth=None,
                     preview=True)
    window = next(one for one in getattr(sink, "sinks", [sink]) if isinstance(one, sinks.WindowSink))
    told: list[str] = []
    window.notify = told.append
    image = np.full((48, 64, 3), 120, np.uint8)
    try:
        sink.write(Frame(index=0, capture_ns=0, image=image, output=image.copy(), pts_seconds=0.0))
    finally:
        sink.close()
    assert sink.wants_stop == stops
    assert told == [f"{DISPLAY_GONE}; " + ("stopping" if stops else "the run goes on without the window")]
