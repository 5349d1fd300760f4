"""Model registry, download cache with checksums, ONNX Runtime sessions, disparity normalisation."""
import dataclasses
import re
import subprocess
import sys

import numpy as np
import pytest

from models.download import ModelError, download, sha256_of
from models.postprocess import DisparityNormaliser
from models.registry import REGISTRY, fetch, get_spec, resolve_model
from models.runtime import ORT_TENSOR_DTYPES, DepthEstimator, OutputWatch, requested_providers


def test_download_checks_sha256_and_keeps_nothing_on_mismatch(tmp_path):
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"depth" * 1000)
    good = sha256_of(payload)
    target = tmp_path / "cache" / "model.onnx"
    assert download(payload.as_uri(), target, good, progress=False) == target
    assert target.read_bytes() == payload.read_bytes()
    corrupt = tmp_path / "cache" / "corrupt.onnx"
    with pytest.raises(ModelError, match="checksum mismatch"):
        download(payload.as_uri(), corrupt, "0" * 64, progress=False)
    assert not corrupt.exists()
    assert list((tmp_path / "cache").glob("*.part")) == []


def test_unreachable_download_says_what_to_do(tmp_path):
    with pytest.raises(ModelError, match="cannot download"):
        download((tmp_path / "missing.bin").as_uri(), tmp_path / "x.onnx", "0" * 64, progress=False)


def test_a_cache_that_cannot_be_written_says_how_to_move_it(tmp_path):
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    with pytest.raises(ModelError, match="the model cache .* is a file, not a folder .*DEPTHCAM_MODELS"):
        download((tmp_path / "x.bin").as_uri(), tmp_path / "cache" / "model.onnx", "0" * 64, progress=False)
    (tmp_path / "blocked").write_text("a file where the cache's parent folder should be")
    with pytest.raises(ModelError, match="cannot write into the model cache .*DEPTHCAM_MODELS"):
        download((tmp_path / "x.bin").as_uri(), tmp_path / "blocked" / "cache" / "model.onnx", "0" * 64,
                 progress=False)


class _RangeServer:
    """A local HTTP server for one payload: honours Range requests and can break off after N bytes."""

    def __init__(self, payload: bytes, honour_range: bool = True) -> None:
        import http.server
        import threading

        server_self = self
        self.payload, self.honour_range, self.break_after, self.ranges = payload, honour_range, None, []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                start = 0
                asked = self.headers.get("Range")
                server_self.ranges.append(asked)
                if asked and server_self.honour_range:
                    start = int(asked.removeprefix("bytes=").split("-")[0])
                    self.send_response(206)
                else:
                    self.send_response(200)
                body = server_self.payload[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server_self.break_after is not None:
                    body, server_self.break_after = body[:server_self.break_after], None  # then the line drops
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/model.onnx"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("honour_range", [True, False])
def test_a_download_that_breaks_off_resumes_where_it_stopped(tmp_path, honour_range):
    import hashlib

    payload = np.random.default_rng(5).integers(0, 256, 3_000_000, dtype=np.uint8).tobytes()
    server = _RangeServer(payload, honour_range)
    target = tmp_path / "cache" / "model.onnx"
    try:
        server.break_after = 1_200_000
        with pytest.raises(ModelError, match="broke off after 1 MB .*run the same command again to resume"):
            download(server.url, target, hashlib.sha256(payload).hexdigest(), progress=False, timeout_s=5)
        assert not target.exists() and (tmp_path / "cache" / "model.onnx.part").stat().st_size == 1_200_000
        assert download(server.url, target, hashlib.sha256(payload).hexdigest(), progress=False) == target
    finally:
        server.close()
    assert target.read_bytes() == payload and not list(target.parent.glob("*.part"))
    assert server.ranges == [None, "bytes=1200000-"]  # the second request asked only for the rest


def test_a_download_with_its_progress_bar_leaves_no_thread_behind(tmp_path, capsys):
    """Library use: tqdm started its monitor thread with the download's bar and never ended it."""
    import hashlib
    import threading

    from tqdm import tqdm

    if tqdm.monitor is not None:  # an earlier bar's, from any test: the download must not start one of its own
        tqdm.monitor.exit()
        tqdm.monitor = None
    payload = bytes(range(256)) * 4000
    server = _RangeServer(payload)
    before = set(threading.enumerate())
    try:
        target = download(server.url, tmp_path / "cache" / "model.onnx", hashlib.sha256(payload).hexdigest(),
                          progress=True)
    finally:
        server.close()
    assert target.read_bytes() == payload
    assert [t.name for t in threading.enumerate() if t not in before and t.is_alive()] == []
    assert "downloading" in capsys.readouterr().err


def test_two_downloads_of_one_model_at_once_give_one_good_file(tmp_path):
    import hashlib
    import threading

    payload = np.random.default_rng(6).integers(0, 256, 2_000_000, dtype=np.uint8).tobytes()
    server = _RangeServer(payload)
    target = tmp_path / "cache" / "model.onnx"
    results: list = []

    def fetch_once():
        try:
            results.append(download(server.url, target, hashlib.sha256(payload).hexdigest(), progress=False))
        except Exception as exc:  # noqa: BLE001 (collected for the assertion)
            results.append(exc)

    threads = [threading.Thread(target=fetch_once) for _ in range(3)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        server.close()
    assert results == [target] * 3 and target.read_bytes() == payload
    assert len(server.ranges) == 1  # the others waited for the first and found the file in place


def test_fetch_verifies_a_cached_file(model_cache):
    spec = get_spec("tcmonodepth")
    model_cache.mkdir(parents=True)
    (model_cache / spec.filename).write_bytes(b"not the real model")
    with pytest.raises(ModelError, match="checksum mismatch"):
        fetch("tcmonodepth", progress=False)


def test_registry_entries_are_complete():
    for spec in REGISTRY.values():
        assert spec.input_size[0] > 0 and spec.output_kind in ("inverse_depth", "metres")
        assert (spec.url and spec.sha256) or spec.fetcher


def test_unknown_model_name():
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        resolve_model("nope")


def test_cpu_machine_asks_only_for_the_cpu_provider():
    from kernels.backend import cuda_available

    if cuda_available():
        pytest.skip("this machine has a GPU")
    assert requested_providers("auto") == ["CPUExecutionProvider"]
    with pytest.raises(ModelError, match="cuda"):
        requested_providers("cuda")


def test_tcmonodepth_runs_batched_and_matches_single_calls(shared_models, rng):
    spec, path = resolve_model("tcmonodepth", progress=False)
    estimator = DepthEstimator(spec, path, "auto")
    assert estimator.provider == "CPUExecutionProvider"
    images = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(3)]
    batched = estimator.predict(images)
    single = [estimator.predict([image])[0] for image in images]
    for a, b in zip(batched, single):
        assert a.shape == (192, 320)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_a_batch_1_export_gets_a_real_batch_with_the_same_depth(shared_models, rng):
    spec, path = resolve_model("tcmonodepth", progress=False)
    looping = DepthEstimator(spec, path, "cpu")
    assert looping.input.static_batch  # on the CPU the exported graph is kept (frames loop)
    batched = DepthEstimator(spec, path, "cpu", real_batch=True)
    assert not batched.input.static_batch
    images = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(4)]
    inputs = np.stack([batched.preprocess(image) for image in images])
    assert batched.session.run(None, {batched.input.name: inputs})[0].shape[0] == 4  # one call, four frames
    for a, b in zip(batched.predict(images), looping.predict(images), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(np.abs(b).max()))


def test_the_io_binding_call_gives_what_a_plain_call_gives(shared_models, rng):
    """The GPU path's I/O-binding code, run against the CPU device: the same depth as run(), and the
    output value has the shape and pointer the CuPy view of a GPU output is built from."""
    spec, path = resolve_model("tcmonodepth", progress=False)
    estimator = DepthEstimator(spec, path, "cpu", real_batch=True)
    batch = np.stack([estimator.preprocess(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)) for _ in range(2)])
    value = estimator._run_bound(batch, "cpu")
    plain = estimator.session.run([estimator.output_name], {estimator.input.name: batch})[0]
    assert tuple(value.shape()) == plain.shape and value.data_ptr() != 0
    assert ORT_TENSOR_DTYPES[value.data_type()] == plain.dtype
    np.testing.assert_allclose(value.numpy(), plain, rtol=1e-6, atol=1e-6 * float(np.abs(plain).max()))


def test_a_graph_the_rewrite_cannot_handle_keeps_batch_1(shared_models, tmp_path, rng):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    spec, _ = resolve_model("tcmonodepth", progress=False)
    # A batch-1 model with a Reshape to a constant [1, ...] shape the rewrite does not know: refused
    # by models.dynamic_batch, so the estimator keeps the exported graph and loops over frames.
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["image"], ["grey"], axes=[1], keepdims=1, name="grey"),
         helper.make_node("Reshape", ["grey", "shape"], ["depth"], name="odd_reshape")],
        "odd", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, 8, 8])],
        [numpy_helper.from_array(np.array([1, 8, 8], np.int64), "shape")])
    path = tmp_path / "odd.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), str(path))
    estimator = DepthEstimator(dataclasses.replace(spec, input_size=(8, 8), output_kind="inverse_depth"), path, "cpu",
                               real_batch=True)
    assert estimator.input.static_batch
    assert len(estimator.predict([rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(3)])) == 3


def _tiny_model(path, inputs, output_shape, output_type=None):
    """A one-node ONNX model: Identity of the first input, reshaped to `output_shape`."""
    import onnx
    from onnx import helper, numpy_helper

    nodes = [helper.make_node("Reshape", [inputs[0][0], "shape"], ["out"])]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info(name, dtype, shape) for name, dtype, shape in inputs],
        [helper.make_tensor_value_info("out", output_type or inputs[0][1], output_shape)],
        [numpy_helper.from_array(np.array(output_shape, np.int64), "shape")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), str(path))
    return path


FLOAT, INT64 = 1, 7  # onnx.TensorProto.FLOAT, INT64 (a uint8 image input is taken: test_model_checks.py)


@pytest.mark.parametrize("inputs, output_shape, needle", [
    ([("image", FLOAT, [1, 3, 8, 8]), ("extra", FLOAT, [1])], [1, 1, 8, 24],
     "takes 2 inputs (image, extra); a depth model takes one image: export it with the image as its only input"),
    ([("image", INT64, [1, 3, 8, 8])], [1, 1, 8, 24], "takes a tensor(int64) input"),
    ([("image", FLOAT, [2, 3, 8, 8])], [2, 1, 8, 8], "takes a fixed batch of 2 images"),
    ([("image", FLOAT, [1, 3, 8, 8])], [192], "output [192]"),
    ([("image", FLOAT, [1, 3, 8, 8])], [1, 8, 12, 2], "output [1, 8, 12, 2]"),  # segmentation logits
    ([("image", FLOAT, [1, 3, 8, 8])], [1, 1, 1, 8, 24], "output [1, 1, 1, 8, 24]"),
])
def test_a_model_that_is_not_a_depth_model_is_refused_at_load(tmp_path, inputs, output_shape, needle):
    path = _tiny_model(tmp_path / "tiny.onnx", inputs, output_shape)
    spec = dataclasses.replace(get_spec("tcmonodepth"), name="tiny", filename="tiny.onnx", input_size=(0, 0))
    with pytest.raises(ModelError, match=re.escape(needle)):
        DepthEstimator(spec, path, "cpu")


@pytest.mark.parametrize("output_shape", [[1, 1, 8, 24], [1, 8, 24, 1], [1, 8, 24]])
def test_every_depth_map_layout_is_accepted(tmp_path, rng, output_shape):
    path = _tiny_model(tmp_path / "tiny.onnx", [("image", FLOAT, [1, 3, 8, 8])], output_shape)
    spec = dataclasses.replace(get_spec("tcmonodepth"), name="tiny", filename="tiny.onnx", input_size=(0, 0),
                               input_scale=1.0)
    depth = DepthEstimator(spec, path, "cpu").predict([rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)])[0]
    assert depth.shape == (8, 24) and depth.dtype == np.float32


def test_session_on_a_cpu_machine_prints_no_error_noise(shared_models):
    code = ("import os; os.environ['DEPTHCAM_MODELS']=%r\n"
            "from models.registry import resolve_model\nfrom models.runtime import DepthEstimator\n"
            "import numpy as np\ns, p = resolve_model('tcmonodepth', progress=False)\n"
            "e = DepthEstimator(s, p, 'auto')\ne.predict([np.zeros((64, 64, 3), np.uint8)])\n"
            "print(e.provider)") % str(shared_models)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "CPUExecutionProvider" in result.stdout or "CUDAExecutionProvider" in result.stdout
    assert "error" not in result.stderr.lower() and "[E:" not in result.stderr, result.stderr


def test_normaliser_smooths_the_range_over_time():
    normaliser = DisparityNormaliser(0, 100, smoothing=0.2)
    base = np.linspace(0, 1, 1000, dtype=np.float32)
    first = normaliser(base)
    np.testing.assert_allclose(first, base, atol=1e-6)
    spiked = base.copy()
    spiked[-1] = 10.0  # one frame with a near object: the range must not jump to it
    normaliser(spiked)
    assert normaliser.high == pytest.approx(1.0 + 0.2 * 9.0)
    assert normaliser.low == pytest.approx(0.0)


def test_normaliser_moves_as_fast_in_seconds_at_any_frame_rate():
    """The range's smoothing was per frame: at 60 fps a new range came in twice as fast in time as at 30, and
    on the async network's frames (a few frames apart) slower."""
    # a range widening by a fifth (a sixth of the frame beyond the last one's: it glides, OUTGROWN_SHARE)
    near, far = np.linspace(0.0, 1.0, 1000, dtype=np.float32), np.linspace(0.0, 1.2, 1000, dtype=np.float32)

    def high_after(fps: float, seconds: float = 0.5) -> float:
        normaliser = DisparityNormaliser(0, 100, smoothing=0.15)
        normaliser(near, 3.0)  # a run that starts part-way (--start 3)
        for i in range(1, round(seconds * fps) + 1):
            normaliser(far, 3.0 + i / fps)
        return normaliser.high

    assert high_after(24) == pytest.approx(high_after(30)) and high_after(60) == pytest.approx(high_after(30))
    assert high_after(30) == pytest.approx(1.2 - 0.2 * 0.85 ** 15)  # 30 fps: the setting as it always was
    assert high_after(10) == pytest.approx(high_after(30))  # the async network's frames, 3 apart
    joined = DisparityNormaliser(0, 100, smoothing=0.15)  # times that go back (clips joined): a frame each
    joined(near, 9.0)
    joined(far, 0.0)
    assert joined.high == pytest.approx(1.03)


def test_normaliser_output_is_in_unit_range_and_ordered(rng):
    normaliser = DisparityNormaliser()
    values = rng.normal(5, 2, (48, 64)).astype(np.float32)
    out = normaliser(values)
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
    flat_in, flat_out = values.ravel(), out.ravel()
    order = np.argsort(flat_in)
    assert np.all(np.diff(flat_out[order]) >= -1e-7)  # monotonic: nearer stays nearer


def test_normaliser_refuses_nan_and_bad_settings_and_keeps_its_range(rng):
    """One NaN frame left the smoothed range at NaN, and every later frame NaN."""
    normaliser = DisparityNormaliser()
    clean = rng.random((20, 30)).astype(np.float32)
    expected = DisparityNormaliser()(clean)
    normaliser(clean)
    broken = clean.copy()
    broken[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        normaliser(broken)
    np.testing.assert_array_equal(normaliser(clean), expected)
    for kwargs in ({"low_percentile": 98, "high_percentile": 2}, {"smoothing": 5}, {"smoothing": 0}):
        with pytest.raises(ValueError):
            DisparityNormaliser(**kwargs)


def test_metres_become_disparity():
    spec = get_spec("fcrn")
    estimator = DepthEstimator.__new__(DepthEstimator)
    estimator.spec, estimator.watch = spec, OutputWatch(spec)
    depth = np.array([[0.5, 2.0, 0.0]], np.float32)
    np.testing.assert_allclose(estimator.to_disparity(depth), [[2.0, 0.5, 1000.0]])


def test_a_depth_with_nan_or_infinity_is_blamed_on_the_model():
    estimator = DepthEstimator.__new__(DepthEstimator)
    estimator.spec = dataclasses.replace(get_spec("tcmonodepth"), name="mine")
    estimator.watch = OutputWatch(estimator.spec)
    for bad in (np.nan, np.inf):
        with pytest.raises(ModelError, match="the model mine gave NaN or infinite depth"):
            estimator.to_disparity(np.array([[0.5, bad]], np.float32))


def test_tensorrt_is_asked_for_only_where_cuda_is():
    from kernels.backend import cuda_available

    if cuda_available():
        assert requested_providers("auto", tensorrt=True)[0] == "TensorrtExecutionProvider"
    else:
        assert requested_providers("auto", tensorrt=True) == ["CPUExecutionProvider"]
    assert requested_providers("cpu", tensorrt=True) == ["CPUExecutionProvider"]


def _first_channel_model(path, height="h", width="w"):
    """Depth = the input's first channel (R), so the input scaling can be read back; H x W may be symbolic."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Gather", ["image", "first"], ["depth"], axis=1)], "first_channel",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, height, width])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, ["n", 1, height, width])],
        [numpy_helper.from_array(np.array([0], np.int64), "first")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), str(path))
    return path


@pytest.mark.parametrize("norm, expected", [("imagenet", (200 / 255 - 0.485) / 0.229), ("unit", 200 / 255),
                                            ("raw", 200.0), ("symmetric", 200 / 127.5 - 1)])
def test_a_models_input_is_scaled_as_it_was_trained(tmp_path, norm, expected):
    path = _first_channel_model(tmp_path / "dynamic.onnx")
    spec, _ = resolve_model(str(path), progress=False)
    assert spec.input_norm == "imagenet"  # your own model: the MiDaS / DPT / Depth Anything convention
    spec = dataclasses.replace(spec, input_norm=norm, input_size=(40, 24))
    bgr = np.zeros((48, 64, 3), np.uint8) + np.array([10, 100, 200], np.uint8)
    depth = DepthEstimator(spec, path, "cpu").predict([bgr])[0]
    assert depth.shape == (24, 40)
    np.testing.assert_allclose(depth, expected, rtol=1e-5)


def test_a_dynamic_input_size_needs_a_size_and_a_fixed_one_refuses_another(tmp_path):
    dynamic = _first_channel_model(tmp_path / "dynamic.onnx")
    spec, _ = resolve_model(str(dynamic), progress=False)
    with pytest.raises(ModelError, match=r"dynamic input size .* --model-size WxH"):
        DepthEstimator(spec, dynamic, "cpu")
    fixed = _first_channel_model(tmp_path / "fixed.onnx", 24, 40)
    spec, _ = resolve_model(str(fixed), progress=False)
    assert DepthEstimator(spec, fixed, "cpu").input.width == 40
    with pytest.raises(ModelError, match="input width fixed at 40, not 64; --model-size can only choose"):
        DepthEstimator(dataclasses.replace(spec, input_size=(64, 64)), fixed, "cpu")


def test_a_size_the_model_cannot_run_at_is_refused_at_load(tmp_path):
    """A model that only takes multiples of 2 (a stride-2 layer, as a ViT's patches or a U-Net's
    levels): an odd --model-size is one clear error before any frame, not a failed stage."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("SpaceToDepth", ["image"], ["blocks"], blocksize=2),
         helper.make_node("ReduceMean", ["blocks"], ["depth"], axes=[1], keepdims=1)], "stride2",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, ["n", 1, "h2", "w2"])], [])
    path = tmp_path / "stride2.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), str(path))
    spec, _ = resolve_model(str(path), progress=False)
    assert DepthEstimator(dataclasses.replace(spec, input_size=(40, 24)), path, "cpu").input.width == 40
    with pytest.raises(ModelError, match=r"cannot run at 41x24 .*multiples of 14"):
        DepthEstimator(dataclasses.replace(spec, input_size=(41, 24)), path, "cpu")


def test_a_model_with_one_free_axis_reports_it_and_runs_with_a_size(tmp_path):
    from models.runtime import input_spatial_size

    path = _first_channel_model(tmp_path / "free_width.onnx", height=32)
    assert input_spatial_size(path) == (None, 32)
    spec, _ = resolve_model(str(path), progress=False)
    assert DepthEstimator(dataclasses.replace(spec, input_size=(48, 32)), path, "cpu").input.width == 48
    with pytest.raises(ModelError, match="input height fixed at 32, not 40"):
        DepthEstimator(dataclasses.replace(spec, input_size=(48, 40)), path, "cpu")


def _dynamic_model(path, nodes, output_shape, initializers=()):
    """A model of input `image` n x 3 x 8 x 8 (dynamic batch) and output `depth` of the declared shape."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes, "dynamic", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, 8, 8])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, output_shape)],
        [numpy_helper.from_array(value, name) for name, value in initializers])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), str(path))
    return path


def _custom_spec(path):
    return dataclasses.replace(get_spec("tcmonodepth"), name=path.stem, filename=path.name, input_size=(0, 0),
                               input_scale=1.0)


def test_a_channel_count_left_open_is_checked_on_the_frames(tmp_path, rng):
    """Channels = batch + 1 (2 for one frame), which shape inference cannot know: the load cannot tell, and
    the first channel of the first frame's two was taken as depth without a word."""
    from onnx import helper

    nodes = [helper.make_node("Shape", ["image"], ["shape"]), helper.make_node("Gather", ["shape", "zero"], ["n"]),
             helper.make_node("Add", ["n", "one"], ["ends"]),
             helper.make_node("Slice", ["image", "zero", "ends", "one"], ["depth"])]
    path = _dynamic_model(tmp_path / "two.onnx", nodes, ["n", "c", 8, 8],
                          [("zero", np.array([0], np.int64)), ("one", np.array([1], np.int64))])
    estimator = DepthEstimator(_custom_spec(path), path, "cpu")
    with pytest.raises(ModelError, match=re.escape("output [1, 2, 8, 8]: 2 or 8 channels a frame")):
        estimator.predict([rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)])


@pytest.mark.parametrize("kind", ["output of batch 1", "reshape to batch 1"])
def test_a_dynamic_batch_the_graph_does_not_keep_runs_frame_by_frame(tmp_path, rng, kind):
    """Its batch axis is dynamic but its layers are not: a batch of 3 gave one map (a run stopped on "zip()
    argument 2 is shorter than argument 1") or ONNX Runtime's many-line Reshape error. The frames now go one
    call each, with the same depth as single calls; a model that fails on one frame too says so in one line."""
    from onnx import helper

    if kind == "output of batch 1":
        nodes = [helper.make_node("ReduceMean", ["image"], ["mean"], axes=[0, 1], keepdims=1),
                 helper.make_node("Identity", ["mean"], ["depth"])]
        path = _dynamic_model(tmp_path / "collapse.onnx", nodes, ["n", 1, 8, 8])
    else:
        nodes = [helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1], keepdims=1),
                 helper.make_node("Reshape", ["mean", "shape"], ["depth"])]
        path = _dynamic_model(tmp_path / "reshape.onnx", nodes, [1, 1, 8, 8],
                              [("shape", np.array([1, 1, 8, 8], np.int64))])
    estimator = DepthEstimator(_custom_spec(path), path, "cpu")
    frames = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(3)]
    batched = estimator.predict(frames)
    assert estimator.input.static_batch  # from now on one call a frame
    singles = [estimator.predict([frame])[0] for frame in frames]
    assert len(batched) == 3 and all(np.array_equal(b, s) for b, s in zip(batched, singles))
    assert not np.array_equal(singles[0], singles[1])


def test_a_model_failing_on_a_single_frame_is_one_line(tmp_path, rng):
    from onnx import helper

    nodes = [helper.make_node("Reshape", ["image", "shape"], ["depth"])]
    path = _dynamic_model(tmp_path / "bad.onnx", nodes, [1, 1, 8, 24], [("shape", np.array([1, 1, 8, 25], np.int64))])
    estimator = DepthEstimator(_custom_spec(path), path, "cpu")
    with pytest.raises(ModelError, match=r"model bad.onnx failed on a batch of 2 8x8 frames \(\S[^\n]*\)$"):
        estimator.predict([rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)] * 2)


def test_a_frame_that_fails_alone_does_not_make_the_model_run_frame_by_frame(tmp_path, rng):
    """A failure of the third frame of a batch (its data, not the batch) switched the model to one call a
    frame for good, blaming the batch, after one good single call; the frame's failure is now the batch's."""
    from onnx import helper

    # Gather at channel floor(max / 60): out of range for a frame brighter than 179
    nodes = [helper.make_node("ReduceMax", ["image"], ["max"], keepdims=0),
             helper.make_node("Div", ["max", "sixty"], ["scaled"]), helper.make_node("Floor", ["scaled"], ["floor"]),
             helper.make_node("Cast", ["floor"], ["channel"], to=7),
             helper.make_node("Gather", ["image", "channel"], ["depth"], axis=1)]
    path = _dynamic_model(tmp_path / "bright.onnx", nodes, ["n", 8, 8], [("sixty", np.array(60, np.float32))])
    estimator = DepthEstimator(dataclasses.replace(_custom_spec(path), input_norm="raw"), path, "cpu")
    dark = [rng.integers(0, 100, (8, 8, 3), dtype=np.uint8) for _ in range(2)]
    assert len(estimator.predict(dark)) == 2 and not estimator.input.static_batch
    with pytest.raises(ModelError, match="failed on a batch of 3 8x8 frames"):
        estimator.predict([*dark, np.full((8, 8, 3), 250, np.uint8)])
    assert not estimator.input.static_batch  # still one call a batch


def _constant_model(path, value: float):
    """Depth `value` at every pixel, whatever the frame."""
    from onnx import helper

    nodes = [helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1], keepdims=1),
             helper.make_node("Mul", ["mean", "zero"], ["zeros"]),
             helper.make_node("Add", ["zeros", "value"], ["depth"])]
    return _dynamic_model(path, nodes, ["n", 1, 8, 8], [("zero", np.array(0, np.float32)),
                                                        ("value", np.array(value, np.float32))])


@pytest.mark.parametrize("value, kind, symptom", [(0.5, "inverse_depth", "the same depth (0.5) at every pixel"),
                                                   (0.0, "metres", "the same depth (0) at every pixel")])
def test_a_constant_depth_is_warned_about_once_naming_the_likely_cause(tmp_path, rng, value, kind, symptom):
    """A wrong model file or input scaling gave a flat depth without a word: the picture was blurred evenly. On
    dark frames without content (a camera's first) it is a warning; on a frame with content, a refusal
    (test_model_checks.py)."""
    path = _constant_model(tmp_path / "flat.onnx", value)
    estimator = DepthEstimator(dataclasses.replace(_custom_spec(path), output_kind=kind), path, "cpu")
    notes: list[str] = []
    estimator.watch.notify = notes.append
    for count in range(1, 100):
        dark = rng.integers(0, 12, (8, 8, 3), dtype=np.uint8)
        estimator.to_disparity(estimator.predict([dark])[0])
        assert len(notes) == (count >= 3), count  # three frames in a row, then once only
    assert notes == [f"the model flat gives {symptom} on 3 frames in a row: likely a wrong model file or input "
                     f"scaling; check the file, --model-input (now raw) and --model-output (now {kind})"]


def test_a_depth_with_no_positive_value_is_warned_about(tmp_path, rng):
    from onnx import helper

    nodes = [helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1], keepdims=1),
             helper.make_node("Neg", ["mean"], ["depth"])]
    path = _dynamic_model(tmp_path / "negative.onnx", nodes, ["n", 1, 8, 8])
    estimator = DepthEstimator(_custom_spec(path), path, "cpu")
    notes: list[str] = []
    estimator.watch.notify = notes.append
    for _ in range(3):
        estimator.to_disparity(estimator.predict([rng.integers(1, 256, (8, 8, 3), dtype=np.uint8)])[0])
    assert len(notes) == 1 and "gives no positive depth (largest -" in notes[0]


def test_the_output_watch_looks_at_the_first_frames_then_every_30th_and_wants_three_in_a_row():
    notes: list[str] = []
    watch = OutputWatch(get_spec("tcmonodepth"), notes.append)
    flat, fine = np.ones((4, 4), np.float32), np.arange(16, dtype=np.float32).reshape(4, 4)
    for frame in range(1, 9):  # two flat frames, then a good one: no run of three
        watch.look(flat if frame in (1, 2, 4, 5, 7) else fine)
    assert notes == []
    for frame in range(9, 90):  # flat from now on, looked at on frames 30 and 60 only
        watch.look(flat)
    assert notes == [] and watch.in_a_row == 2
    watch.look(flat)  # frame 90
    assert len(notes) == 1
    assert OutputWatch.symptom(0.0, 1e-3) is None and OutputWatch.symptom(-2.0, -1.0).startswith("no positive")


def test_a_real_model_on_flat_frames_is_not_taken_for_a_wrong_one(shared_models):
    spec, path = resolve_model("tcmonodepth", progress=False)
    estimator = DepthEstimator(spec, path, "cpu")
    notes: list[str] = []
    estimator.watch.notify = notes.append
    for value in (0, 0, 0, 128, 255, 255, 255):  # a black fade-in, a grey card, a white wall
        estimator.to_disparity(estimator.predict([np.full((48, 64, 3), value, np.uint8)])[0])
    assert notes == []


def test_a_file_named_as_a_registry_model_elsewhere_is_your_own_model(shared_models, tmp_path, capsys):
    """Any file called tcmonodepth_tcsmallnet_192x320.onnx (or fcrn_nyu_depth_v2.onnx) got the registry's input
    size, scaling and output kind without a word, whatever network it held."""
    import shutil

    tc = get_spec("tcmonodepth")
    copy = tmp_path / "copy" / tc.filename
    copy.parent.mkdir()
    shutil.copyfile(shared_models / tc.filename, copy)
    assert resolve_model(str(copy), progress=False) == (tc, copy)  # the same checksum: the registry model itself
    assert resolve_model(str(shared_models / tc.filename), progress=False)[0] == tc  # the cached file
    assert capsys.readouterr().err == ""
    other = _first_channel_model(tmp_path / tc.filename, 24, 40)
    spec, _ = resolve_model(str(other), progress=False)
    assert (spec.name, spec.input_size, spec.input_norm) == (tc.filename.removesuffix(".onnx"), (0, 0), "imagenet")
    assert DepthEstimator(spec, other, "cpu").input.width == 40  # the size the file itself declares
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{other} has the file name of the registry's tcmonodepth model" in err
    assert "--model-input raw --model-output inverse_depth" in err


def test_a_renamed_copy_of_a_registry_model_is_read_with_its_settings(shared_models, tmp_path, capsys,
                                                                     monkeypatch):
    """TCMonoDepth's file under a name of the user's own was read as their own model: ImageNet-normalised input
    where the network takes 0..255, a wrong depth map without a word."""
    import shutil

    import models.registry

    tc = get_spec("tcmonodepth")
    renamed = tmp_path / "my_depth.onnx"
    shutil.copyfile(shared_models / tc.filename, renamed)
    assert resolve_model(str(renamed), progress=False) == (tc, renamed)
    assert tc.input_norm == "raw" and tc.input_size == (320, 192)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is the registry's tcmonodepth model under another name" in err
    # a file of another size is not hashed (a user's model may be gigabytes): read as their own
    hashed: list = []
    monkeypatch.setattr(models.registry, "sha256_of", lambda path: hashed.append(path) or "")
    other = _first_channel_model(tmp_path / "other.onnx", 24, 40)
    assert resolve_model(str(other), progress=False)[0].input_norm == "imagenet" and hashed == []


def test_a_broken_file_of_a_registry_name_is_not_sent_to_models_fetch(model_cache, tmp_path, capsys):
    fcrn = get_spec("fcrn")
    for name in (fcrn.filename, "fcrn.onnx"):  # the cache's name; a name whose stem is a registry name
        broken = tmp_path / name
        broken.write_bytes(b"not a model")
        spec, _ = resolve_model(str(broken), progress=False)
        assert spec.output_kind == "inverse_depth" and spec.name not in REGISTRY
        with pytest.raises(ModelError, match="is a text file, not an ONNX model .*download or export it again"):
            DepthEstimator(spec, broken, "cpu")
        with pytest.raises(ModelError, match="download or export it again"):  # even with the registry's spec
            DepthEstimator(fcrn, broken, "cpu")
    assert "--model-input raw --model-output metres" in capsys.readouterr().err
    model_cache.mkdir()
    (model_cache / fcrn.filename).write_bytes(b"not a model")
    with pytest.raises(ModelError, match="fetch it again with 'depthcam models fetch fcrn'"):
        DepthEstimator(fcrn, model_cache / fcrn.filename, "cpu")


class _FramesSource:
    """A file source of the given pictures, as fast as the pipeline takes them."""

    live = False
    fps = 30.0
    audio_path = None
    description = "frames"

    def __init__(self, images):
        self.images, self.frame_count = images, len(images)
        self.height, self.width = images[0].shape[:2]

    def frames(self):
        import time

        from stream.frame import Frame

        for index, image in enumerate(self.images):
            yield Frame(index=index, capture_ns=time.perf_counter_ns(), image=image)

    def close(self):
        pass


class _Slow:
    """A stage after the network that holds frames a while, as refinement and rendering do."""

    name, max_batch, max_wait_ms, passes_at_once = "slow", 1, 0.0, False

    def process(self, batch):
        import time

        time.sleep(0.02)
        return batch

    def close(self):
        pass


def test_a_frame_whose_depth_is_nan_ends_the_run_after_every_good_frame_before_it(tmp_path, rng):
    """Frame 6 of 12 gave NaN, the third of its batch of four: the run stopped with the model named, as it
    should, but wrote 1 to 3 frames, not 6: the good frames of that batch were dropped with it, and the
    stop dropped every good frame still on its way through the later stages."""
    from onnx import helper

    from models.postprocess import DisparityNormaliser
    from stream.errors import UserError
    from stream.pipeline import Pipeline
    from stream.stages import DepthStage
    from test_pipeline import CollectingSink

    # depth = sqrt(grey - 50) + 1: NaN for a dark frame
    nodes = [helper.make_node("ReduceMean", ["image"], ["grey"], axes=[1], keepdims=1),
             helper.make_node("Sub", ["grey", "fifty"], ["lifted"]), helper.make_node("Sqrt", ["lifted"], ["root"]),
             helper.make_node("Add", ["root", "one"], ["depth"])]
    path = _dynamic_model(tmp_path / "dark_nan.onnx", nodes, ["n", 1, 8, 8],
                          [("fifty", np.array(50, np.float32)), ("one", np.array(1, np.float32))])
    estimator = DepthEstimator(dataclasses.replace(_custom_spec(path), input_norm="raw"), path, "cpu")
    images = [rng.integers(10 if index == 6 else 150, 30 if index == 6 else 250, (8, 8, 3), dtype=np.uint8)
              for index in range(12)]
    sink = CollectingSink()
    depth = DepthStage(estimator, DisparityNormaliser(), max_batch=4, max_wait_ms=300)
    pipeline = Pipeline(_FramesSource(images), [depth, _Slow(), _Slow()], sink, queue_size=16)
    with pytest.raises(UserError, match=r"^the model dark_nan gave NaN or infinite depth \(a broken export"):
        pipeline.run()
    assert [frame.index for frame in sink.frames] == list(range(6)) and pipeline.sink_finalised
    assert sink.frames[5].extra["batch_size"] > 1  # the bad frame was not the first of its batch
    assert all(np.isfinite(frame.disparity).all() for frame in sink.frames)


def _stamped_model(path, props: dict[str, str], weights: int = 0):
    """A small model with `props` as its ONNX metadata and an initializer of `weights` float32 values."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1], keepdims=1),
         helper.make_node("Add", ["mean", "zero"], ["depth"])], "stamped",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, 228, 304])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, ["n", 1, 228, 304])],
        [numpy_helper.from_array(np.array(0, np.float32), "zero"),
         numpy_helper.from_array(np.zeros(weights, np.float32), "unused")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    helper.set_model_props(model, props)
    onnx.save(model, str(path))
    return path


def test_the_metadata_is_read_without_reading_the_weights(tmp_path, monkeypatch):
    """onnx.load parses the whole file (0.3-0.5 s for the 254 MB FCRN) to get at a few bytes at its end."""
    import io

    import models.metadata
    from models.metadata import read_metadata_props

    path = _stamped_model(tmp_path / "big.onnx", {"depthcam.model": "fcrn", "other": "x"}, weights=1 << 20)
    read: list[int] = []

    class Counting(io.FileIO):
        def read(self, size=-1):
            data = super().read(size)
            read.append(len(data))
            return data

    monkeypatch.setattr(models.metadata, "open", lambda p, mode: Counting(p, mode), raising=False)
    assert read_metadata_props(path) == {"depthcam.model": "fcrn", "other": "x"}
    assert 0 < sum(read) < 1000 and path.stat().st_size > 4 << 20
    monkeypatch.undo()
    # Another writer may put metadata_props before the graph (protobuf fields come in any order)
    first = b"\x72\x0b\x0a\x01a\x12\x06before"  # field 14, {key "a", value "before"}
    path.write_bytes(first + path.read_bytes())
    assert read_metadata_props(path) == {"a": "before", "depthcam.model": "fcrn", "other": "x"}
    for broken in (path.read_bytes()[:-5], b"not a model", b"\x00" * 64, b""):  # truncated, not ONNX, empty
        path.write_bytes(broken)
        assert read_metadata_props(path) == {}
    assert read_metadata_props(tmp_path / "missing.onnx") == {}


def test_a_files_metadata_names_the_model_and_may_give_its_own_settings(tmp_path, capsys):
    cases = [({"depthcam.model": "fcrn"}, ("raw", "metres", (304, 228))),
             ({"depthcam.model": "fcrn", "depthcam.input_norm": "unit", "depthcam.output_kind": "furlongs"},
              ("unit", "metres", (304, 228))),  # the file's own valid setting wins; an unknown one is ignored
             ({"depthcam.model": "nope", "depthcam.input_norm": "raw"}, ("imagenet", "inverse_depth", (0, 0))),
             ({"producer": "someone"}, ("imagenet", "inverse_depth", (0, 0)))]  # your own model
    for index, (props, expected) in enumerate(cases):
        path = _stamped_model(tmp_path / f"model{index}.onnx", props)
        spec, _ = resolve_model(str(path), progress=False)
        assert (spec.input_norm, spec.output_kind, spec.input_size) == expected, props
        notes = capsys.readouterr().err
        assert notes.count("\n") == (expected[2] != (0, 0)), notes
    spec, path = resolve_model(str(tmp_path / "model1.onnx"), progress=False)
    estimator = DepthEstimator(spec, path, "cpu")
    assert (estimator.input.width, estimator.input.height) == (304, 228)
    depth = estimator.predict([np.full((48, 64, 3), 255, np.uint8)])[0]
    np.testing.assert_allclose(depth, 1.0, rtol=1e-5)  # "unit": 255 -> 1.0


def test_the_cache_follows_xdg_cache_home_where_depthcam_models_is_unset(monkeypatch, tmp_path):
    from models.download import cache_dir

    monkeypatch.delenv("DEPTHCAM_MODELS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "depthcam"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # the XDG rule: a relative path is ignored
    assert cache_dir() == tmp_path / "home" / ".cache" / "depthcam"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == tmp_path / "home" / ".cache" / "depthcam"
    monkeypatch.setenv("DEPTHCAM_MODELS", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


@pytest.fixture(scope="module")
def slow_estimator(tmp_path_factory):
    """FCRN with random weights on the CPU: a batch of 4 takes about a second here, long enough to stop in."""
    from models.fcrn import build_fcrn, random_weights
    from models.fcrn_weights import save_model

    path = save_model(build_fcrn(random_weights(seed=1)), tmp_path_factory.mktemp("fcrn") / "fcrn.onnx")
    return DepthEstimator(get_spec("fcrn"), path, "cpu")


def _stopped_part_way(call, estimator) -> BaseException | None:
    """Run `call` on a thread, ask the estimator to end it once its network call is in progress, and return what
    it raised (None: it returned)."""
    import threading
    import time

    raised: list[BaseException | None] = [None]

    def run():
        try:
            call()
        except BaseException as exc:  # noqa: BLE001
            raised[0] = exc

    thread = threading.Thread(target=run)
    thread.start()
    while estimator._in_flight is None and thread.is_alive():
        time.sleep(0.001)
    estimator.terminate()
    thread.join()
    return raised[0]


def test_a_network_call_in_progress_ends_when_terminated_and_the_session_runs_on(slow_estimator):
    # a stop waited for a slow model's whole batch (FCRN's 8 on a CPU: 2.6 s past Ctrl-C)
    from models.runtime import RunTerminated

    frames = [np.full((228, 304, 3), 90, np.uint8)] * 4
    assert isinstance(_stopped_part_way(lambda: slow_estimator.predict(frames), slow_estimator), RunTerminated)
    (depth,) = slow_estimator.predict(frames[:1])  # the next run (a batch's next input) is not terminated
    assert depth.shape == (128, 160) and np.isfinite(depth).all()


def test_the_depth_stage_stops_when_interrupted_in_its_network_call(slow_estimator):
    from models.postprocess import DisparityNormaliser
    from stream.frame import Frame
    from stream.queues import Stopped
    from stream.stages import DepthStage

    stage = DepthStage(slow_estimator, DisparityNormaliser(), max_batch=4)
    batch = [Frame(index=i, capture_ns=0, image=np.full((228, 304, 3), 90, np.uint8)) for i in range(4)]
    assert isinstance(_stopped_part_way(lambda: stage.process(batch), slow_estimator), Stopped)


def test_normaliser_takes_at_once_a_range_the_frame_has_outgrown():
    """After a fade to black the network's range is narrow; gliding back from it clipped most of the returning
    picture to 0 or 1 (a two-level depth) for most of a second."""
    normaliser = DisparityNormaliser()
    picture = np.linspace(0.06, 1.3, 10_000, dtype=np.float32).reshape(100, 100)
    dark = np.linspace(0.37, 0.9, 10_000, dtype=np.float32).reshape(100, 100)  # TCMonoDepth's on a black frame
    normaliser(picture, 0.0)
    for i in range(1, 16):
        normaliser(dark, i / 30)
    back = normaliser(picture, 16 / 30)
    assert float(((back <= 0) | (back >= 1)).mean()) <= 0.05  # the percentiles' own 4 %


def test_normaliser_lets_a_near_object_at_the_edge_glide_in():
    """A near object covering a tenth of the frame is not taken at once: the subject's value would jump."""
    normaliser = DisparityNormaliser(smoothing=0.15)
    picture = np.linspace(0.0, 1.0, 10_000, dtype=np.float32).reshape(100, 100)
    normaliser(picture, 0.0)
    entered = picture.copy()
    entered[90:] = 2.0  # the bottom tenth
    normaliser(entered, 1 / 30)
    assert normaliser.high == pytest.approx(0.98 + 0.15 * (2.0 - 0.98), abs=1e-3)


def test_a_renamed_registry_model_is_said_once_however_often_it_is_resolved(shared_models, tmp_path, capsys):
    """`depthcam bench --model my_depth.onnx` resolves the model for its checks and again for every run: the note
    that it is the registry's model under another name was printed each time."""
    import shutil

    tc = get_spec("tcmonodepth")
    renamed = tmp_path / "my_depth.onnx"
    shutil.copyfile(shared_models / tc.filename, renamed)
    for _ in range(3):
        assert resolve_model(str(renamed), progress=False) == (tc, renamed)
    assert capsys.readouterr().err.count("under another name") == 1
