"""The wrong file given as a depth model, or a broken one: a segmentation model's mask, a constant output, input
types beyond float, and a model cache that cannot be written or fills the disk."""
import errno
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from models.download import ModelError, download
from models.registry import fetch, get_spec, resolve_model
from models.runtime import DepthEstimator, OutputWatch


def _model(path: Path, nodes, input_type: int, output_type: int, initializers=(), batch="n") -> Path:
    """Input `image` batch x 3 x 16 x 16 of `input_type`, output `depth` batch x 1 x 16 x 16 of `output_type`."""
    import onnx
    from onnx import helper, numpy_helper

    graph = helper.make_graph(
        nodes, path.stem, [helper.make_tensor_value_info("image", input_type, [batch, 3, 16, 16])],
        [helper.make_tensor_value_info("depth", output_type, [batch, 1, 16, 16])],
        [numpy_helper.from_array(value, name) for name, value in initializers])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def _constant(path: Path, value: float) -> Path:
    from onnx import TensorProto, helper

    nodes = [helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1], keepdims=1),
             helper.make_node("Mul", ["mean", "zero"], ["zeros"]),
             helper.make_node("Add", ["zeros", "value"], ["depth"])]
    return _model(path, nodes, TensorProto.FLOAT, TensorProto.FLOAT,
                  [("zero", np.array(0, np.float32)), ("value", np.array(value, np.float32))])


def _own(path: Path, **kwargs) -> DepthEstimator:
    spec, resolved = resolve_model(str(path), progress=False)
    return DepthEstimator(spec, resolved, "cpu", **kwargs)


def _notes_on_portrait(estimator: DepthEstimator, count: int) -> list[str]:
    """What the output watch says of the model's depth over `count` frames of the synthetic portrait."""
    notes: list[str] = []
    estimator.watch.notify = notes.append
    for image in _portrait_frames(count):
        estimator.to_disparity(estimator.predict([image])[0])
    return notes


def _portrait_frames(count: int) -> list[np.ndarray]:
    from stream.sources import open_source

    frames = []
    for frame in open_source(f"synthetic:portrait?frames={count}").frames():
        frames.append(frame.image)
    return frames


# --- a segmentation model given as the depth model ---

def test_a_segmentation_model_is_named_as_one(shared_models, capsys):
    """MediaPipe's selfie segmentation (one N x H x W x 1 map, as a depth model's) ran without a word and wrote a
    "portrait" blurred by a person mask taken for depth."""
    path = shared_models / "selfie_segmentation.onnx"
    if not path.is_file():
        pytest.skip("selfie_segmentation.onnx is not in the shared models folder")
    estimator = _own(path)
    notes = _notes_on_portrait(estimator, 3)
    assert len(notes) == 1, notes
    assert notes[0].startswith("the model selfie_segmentation gives a near-binary map (0 or 1 at ")
    assert notes[0].endswith("it looks like a segmentation mask, not depth; give a depth model (--model "
                             "tcmonodepth, or your depth model's .onnx)")


def test_a_real_depth_model_is_not_taken_for_a_mask(shared_models):
    estimator = _own(shared_models / get_spec("tcmonodepth").filename)
    notes = _notes_on_portrait(estimator, 8)
    assert notes == []


def test_a_sigmoid_ended_depth_map_is_no_mask(rng):
    """Monodepth2's disparity ends in a sigmoid too: spread over 0..1, near 0 for what is far, it is depth."""
    ramp = np.linspace(0.0, 0.45, 64 * 64, dtype=np.float32).reshape(64, 64)  # far at 0, nothing at 1
    far = np.where(np.arange(64)[:, None] < 20, 0.005, ramp).astype(np.float32)  # a third of it sky
    mask = np.zeros((64, 64), np.float32)
    mask[16:48, 20:44] = 1.0
    mask[16:48, 19] = 0.5  # a soft edge
    for depth in (ramp, far):
        assert OutputWatch.mask_share(depth, float(depth.min()), float(depth.max())) is None
    assert OutputWatch.mask_share(mask, 0.0, 1.0) == pytest.approx(1 - 32 / 64 ** 2)
    empty = np.zeros((64, 64), np.float32) + rng.random((64, 64), np.float32) * 0.01  # no person: not told apart
    assert OutputWatch.mask_share(empty, float(empty.min()), float(empty.max())) is None



def _selfie_logits(shared_models: Path, path: Path, layout: str) -> Path:
    """MediaPipe's selfie segmentation without its final sigmoid (an export that leaves it to the caller): one
    map of logits, N x H x W x 1 as the model gives it, N x 1 x H x W or N x H x W."""
    import onnx
    from onnx import TensorProto, helper

    source = shared_models / "selfie_segmentation.onnx"
    if not source.is_file():
        pytest.skip("selfie_segmentation.onnx is not in the shared models folder")
    model = onnx.load(str(source))
    (sigmoid,) = [node for node in model.graph.node if node.op_type == "Sigmoid" and node.input[0] == "segment_add:0"]
    model.graph.node.remove(sigmoid)
    (reshape,) = [node for node in model.graph.node if node.output[0] == "activation_10"]
    reshape.input[0] = "segment_add:0"  # the logits, N x 256 x 256 x 1
    shapes = {"NHWC": None, "NCHW": [0, 3, 1, 2], "NHW": [1, 256, 256]}
    if shapes[layout] is not None:
        reshape.output[0] = "nhwc_logits"
        node = (helper.make_node("Transpose", ["nhwc_logits"], ["logits"], perm=shapes[layout]) if layout == "NCHW"
                else helper.make_node("Reshape", ["nhwc_logits", "nhw_shape"], ["logits"]))
        model.graph.node.append(node)
        model.graph.initializer.append(helper.make_tensor("nhw_shape", TensorProto.INT64, [3], shapes["NHW"]))
        del model.graph.output[:]
        dims = [1, 1, 256, 256] if layout == "NCHW" else [1, 256, 256]
        model.graph.output.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, dims))
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("layout", ["NHWC", "NCHW", "NHW"])
def test_a_segmentation_model_giving_logits_is_named_as_one(shared_models, tmp_path, layout):
    """The selfie model exported without its sigmoid gives one map of unbounded logits (-800..+400 on a portrait):
    only 0..1 masks were recognised, and this one ran as depth without a word."""
    estimator = _own(_selfie_logits(shared_models, tmp_path / "selfie_logits.onnx", layout))
    notes = _notes_on_portrait(estimator, 3)
    assert len(notes) == 1, notes
    assert notes[0].startswith("the model selfie_logits gives a map crossing 0, beyond +-3.9 at ")
    assert notes[0].endswith("of its pixels (0 or 1 through a sigmoid): it looks like a segmentation model's "
                             "logits, not depth; give a depth model (--model tcmonodepth, or your depth model's .onnx)")


def test_fcrn_is_not_taken_for_a_mask_or_logits(tmp_path):
    """FCRN (metres, random weights here) on a portrait: no warning."""
    import onnx

    from models.fcrn import build_fcrn

    path = tmp_path / "my_fcrn.onnx"
    onnx.save(build_fcrn(seed=5), str(path))
    estimator = _own(path)
    notes = _notes_on_portrait(estimator, 2)
    assert notes == []


def test_depth_maps_crossing_0_are_no_logits():
    """A relative depth shifted below 0 is spread (a ramp) or dips little below 0 (a far end at -50 of 3000)."""
    ramp = np.linspace(-20.0, 20.0, 64 * 64, dtype=np.float32).reshape(64, 64)  # 19% within +-3.9
    dipping = np.where(np.arange(64)[:, None] < 20, -50.0, np.linspace(100.0, 3000.0, 64)).astype(np.float32)
    logits = np.where(np.arange(64)[:, None] < 40, -300.0, 120.0).astype(np.float32)
    logits[40] = 0.5  # the edge
    for depth in (ramp, dipping):
        assert OutputWatch.logit_share(depth, float(depth.min()), float(depth.max())) is None
    assert OutputWatch.logit_share(logits, -300.0, 120.0) == pytest.approx(63 / 64)
    assert OutputWatch.logit_share(np.abs(logits), 0.5, 300.0) is None  # all positive: depth


# --- a broken export: the same depth everywhere ---

def test_a_constant_depth_on_a_frame_with_content_stops_before_anything_is_written(tmp_path, rng):
    """A model giving 0.5 at every pixel only warned after three frames, and the run wrote an evenly blurred video."""
    estimator = _own(_constant(tmp_path / "flat.onnx", 0.5))
    dark = np.full((16, 16, 3), 3, np.uint8)  # a camera's first, black frame: no verdict yet
    assert estimator.predict([dark])[0].shape == (16, 16)
    with pytest.raises(ModelError, match=r"^the model flat gives the same depth \(0.5\) at every pixel of a frame "
                                         r"with content: a broken export, or the wrong input scaling; check the "
                                         r"file, --model-input \(now imagenet\), or use --model tcmonodepth$"):
        estimator.predict([dark, rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)])


def test_a_varying_depth_passes_the_first_frame_check_once(tmp_path, rng):
    from onnx import TensorProto, helper

    nodes = [helper.make_node("ReduceMean", ["image"], ["depth"], axes=[1], keepdims=1)]
    estimator = _own(_model(tmp_path / "grey.onnx", nodes, TensorProto.FLOAT, TensorProto.FLOAT))
    estimator.predict([rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)])
    assert estimator.watch.content_seen  # later frames are not looked at again


def test_a_constant_model_ends_the_cli_run_in_one_line_and_writes_nothing(tmp_path, shared_models, capsys):
    from stream.cli import main

    out = tmp_path / "out.mp4"
    code = main(["run", "synthetic:portrait?frames=3", "--model", str(_constant(tmp_path / "flat.onnx", 0.5)),
                 "-o", str(out), "--no-progress"])
    errors = capsys.readouterr().err
    assert code != 0 and "depthcam: error: the model flat gives the same depth (0.5) at every pixel" in errors
    assert "Traceback" not in errors and not out.exists()


# --- input types ---

def test_a_uint8_input_is_fed_rgb_0_to_255_as_it_is(tmp_path):
    """A model that scales its input itself (uint8 in, a Cast inside) was refused as not taking floats."""
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Cast", ["image"], ["floats"], to=TensorProto.FLOAT),
             helper.make_node("Gather", ["floats", "first"], ["depth"], axis=1)]
    path = _model(tmp_path / "bytes.onnx", nodes, TensorProto.UINT8, TensorProto.FLOAT,
                  [("first", np.array([0], np.int64))])
    notes: list[str] = []
    import models.runtime

    original, models.runtime.notify = models.runtime.notify, notes.append
    try:
        estimator = _own(path)
    finally:
        models.runtime.notify = original
    assert notes == ["model bytes.onnx takes uint8 input: fed RGB 0..255 as it is (the model scales it itself; "
                     "--model-input does not apply)"]
    assert estimator.input.dtype == np.uint8 and estimator.spec.input_norm == "raw"
    image = np.zeros((16, 16, 3), np.uint8) + np.array([10, 100, 200], np.uint8)  # BGR: R = 200
    image[0, 0] = (0, 0, 255)
    depth = estimator.predict([image])[0]
    assert depth[0, 0] == 255.0 and depth[5, 5] == 200.0


def test_a_float64_export_is_fed_float64_and_its_depth_read(tmp_path, rng):
    from onnx import TensorProto, helper

    nodes = [helper.make_node("ReduceMean", ["image"], ["depth"], axes=[1], keepdims=1)]
    estimator = _own(_model(tmp_path / "double.onnx", nodes, TensorProto.DOUBLE, TensorProto.DOUBLE))
    assert estimator.input.dtype == np.float64
    depths = estimator.predict([rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(2)])
    assert [(d.shape, d.dtype) for d in depths] == [((16, 16), np.float32)] * 2


def test_a_fixed_batch_of_several_is_refused_at_load(tmp_path):
    """Batch fixed at 2: accepted at load (and by `models info`), then every frame failed at run time."""
    from onnx import TensorProto, helper

    nodes = [helper.make_node("ReduceMean", ["image"], ["depth"], axes=[1], keepdims=1)]
    path = _model(tmp_path / "pairs.onnx", nodes, TensorProto.FLOAT, TensorProto.FLOAT, batch=2)
    with pytest.raises(ModelError, match=r"takes a fixed batch of 2 images .*export it with batch 1 or a dynamic"):
        _own(path)


# --- the model cache ---

def test_repairing_a_damaged_file_in_a_read_only_cache_is_one_line(model_cache, monkeypatch):
    """`models fetch` on a damaged file it cannot delete said only 'PermissionError: [Errno 13] ...'."""
    spec = get_spec("tcmonodepth")
    model_cache.mkdir(parents=True)
    (model_cache / spec.filename).write_bytes(b"not the real model")
    real_unlink = Path.unlink

    def refuse(self, missing_ok=False):
        if self.parent == model_cache:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", refuse)
    with pytest.raises(ModelError, match=r"^cannot replace the damaged .*tcmonodepth_tcsmallnet_192x320.onnx: "
                                         r"Permission denied \(delete it by hand, or set DEPTHCAM_MODELS"):
        fetch("tcmonodepth", progress=False, repair=True)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (a device that is always full)")
def test_a_download_onto_a_full_disk_says_to_free_space(tmp_path):
    """A full disk was reported as a download that 'broke off (OSError)': run the same command again, which
    broke off again."""
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"depth" * 1000)
    target = tmp_path / "cache" / "model.onnx"
    target.parent.mkdir()
    (target.parent / "model.onnx.part").symlink_to("/dev/full")  # every write: ENOSPC
    with pytest.raises(ModelError, match=r"stopped after 0 MB: No space left on device in .*cache; free some "
                                         r"space \(or set DEPTHCAM_MODELS"):
        download(payload.as_uri(), target, "0" * 64, progress=False)
    assert not target.exists()



FETCHER_CALLS: list[Path] = []


def slow_converting_fetcher(cache: Path, progress: bool = True) -> Path:
    """A stand-in for FCRN's download and conversion: slow, then the file appears at once (written aside, renamed)."""
    import time

    FETCHER_CALLS.append(cache)
    time.sleep(0.3)
    partial = cache / "converted.onnx.partial"
    partial.write_bytes(b"converted once")
    partial.replace(cache / "converted.onnx")
    return cache / "converted.onnx"


@pytest.mark.skipif(importlib.util.find_spec("fcntl") is None,
                    reason="the cache's lock is POSIX's flock; elsewhere there is none (download._hold)")
def test_two_first_runs_of_a_converted_model_convert_it_once(model_cache, monkeypatch):
    """Two processes fetching FCRN at once both downloaded the 472 MB archive and converted it, and the first to
    finish deleted the archive the other was about to read."""
    import threading

    from models import registry

    spec = registry.ModelSpec(name="converted", filename="converted.onnx", description="", source="",
                              input_size=(8, 8), output_kind="metres",
                              fetcher="test_model_checks:slow_converting_fetcher")
    monkeypatch.setitem(registry.REGISTRY, "converted", spec)
    monkeypatch.setattr(registry, "check_cached", lambda spec, quick=False: None)  # the bytes are no ONNX model
    FETCHER_CALLS.clear()
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(fetch("converted", progress=False))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [model_cache / "converted.onnx"] * 2
    assert FETCHER_CALLS == [model_cache]  # the second waited for the first and found the file in place


def test_models_info_says_a_uint8_model_is_fed_as_it_is(tmp_path, capsys):
    """`models info` printed the ImageNet scaling and "--model-input to change" for a model fed 0..255 as it is."""
    from onnx import TensorProto, helper

    from stream.cli import main

    nodes = [helper.make_node("Cast", ["image"], ["floats"], to=TensorProto.FLOAT),
             helper.make_node("Gather", ["floats", "first"], ["depth"], axis=1)]
    path = _model(tmp_path / "bytes.onnx", nodes, TensorProto.UINT8, TensorProto.FLOAT,
                  [("first", np.array([0], np.int64))])
    assert main(["models", "info", str(path)]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("input:"))
    assert "RGB 0..255 (fed as it is)" in line and "uint8" in line and "ImageNet" not in line


def test_models_info_says_what_a_segmentation_model_gives_on_a_trial_frame(shared_models, tmp_path, capsys):
    """`models info` called the selfie model (mask or logits) "accepted by depthcam"; only a run then warned that
    it gives no depth. It now tries one frame, as a run's first, and says so on its state line."""
    from stream.cli import main

    logits = _selfie_logits(shared_models, tmp_path / "selfie_logits.onnx", "NCHW")
    for path, found in ((shared_models / "selfie_segmentation.onnx", "it looks like a segmentation mask, not depth"),
                        (logits, "it looks like a segmentation model's logits, not depth")):
        assert main(["models", "info", str(path)]) == 0
        state = capsys.readouterr().out.splitlines()[-1]
        assert state.startswith("state:       loads, but on a trial frame (synthetic:portrait) it gives ")
        assert found in state and "accepted" not in state
    assert main(["models", "info", str(shared_models / "tcmonodepth_tcsmallnet_192x320.onnx")]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("state:       accepted by depthcam")
