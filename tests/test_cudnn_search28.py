"""On the GPU a batching depth session runs every call at one batch size: ONNX Runtime's CUDA provider (cuDNN 9) builds
its convolution plans again at every change of the input shape, and dynamic batching gave it 1 to 4 frames a call,
the likely cause of the pipelined run's 10.5 fps on an H200 against the sequential run's 33."""
from __future__ import annotations

import numpy as np
import onnxruntime
import pytest

from models import runtime


@pytest.fixture
def batching_estimator(shared_models):
    """TCMonoDepth with its graph given a dynamic batch (as on a GPU), on the CPU provider; the batch sizes of its
    network calls."""
    from models.registry import resolve_model

    spec, path = resolve_model("tcmonodepth", progress=False)
    estimator = runtime.DepthEstimator(spec, path, "cpu", threads=1, real_batch=True)
    assert not estimator.input.static_batch
    calls: list[int] = []
    run = estimator._run_checked

    def counted(inputs, *args, **kwargs):
        calls.append(len(inputs))
        seen_as_gpu, estimator.seen_as_gpu = estimator.seen_as_gpu, False  # the call itself on the CPU provider
        try:
            return run(inputs, *args, **kwargs)
        finally:
            estimator.seen_as_gpu = seen_as_gpu

    estimator._run_checked = counted
    estimator.seen_as_gpu = False
    return estimator, calls


def _frames(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(count)
    return [rng.integers(0, 256, (96, 128, 3), dtype=np.uint8) for _ in range(count)]


def test_on_the_gpu_every_call_takes_max_batch_frames_and_gives_one_map_a_frame(batching_estimator, monkeypatch):
    estimator, calls = batching_estimator
    alone = {count: estimator.predict(_frames(count)) for count in (1, 2, 3, 4)}
    # the estimator taken for a GPU one where it decides on padding; its network calls still run on the CPU
    monkeypatch.setattr(runtime.DepthEstimator, "on_gpu", property(lambda self: getattr(self, "seen_as_gpu", False)))
    estimator.seen_as_gpu = True
    calls.clear()
    for count in (1, 3, 2, 4):
        maps = estimator.predict(_frames(count), pad_to=4)
        assert len(maps) == count
        for padded, single in zip(maps, alone[count], strict=True):
            np.testing.assert_allclose(padded, single, rtol=1e-5, atol=1e-6)
    assert calls == [4, 4, 4, 4]  # one input shape: the cuDNN plans are built once


def test_on_the_cpu_nothing_is_padded(batching_estimator):
    estimator, calls = batching_estimator
    assert len(estimator.predict(_frames(3), pad_to=4)) == 3 and calls == [3]


def test_the_depth_stage_pads_to_its_max_batch(monkeypatch):
    from stream.stages import DepthStage

    asked = []

    class Estimator:
        def predict(self, images, on_device=False, cancel=None, pad_to=0):
            asked.append((len(images), pad_to))
            raise runtime.RunTerminated

        def terminate(self):
            pass

    stage = DepthStage(Estimator(), normaliser=None, max_batch=4)
    with pytest.raises(Exception):
        stage.process([type("F", (), {"image": np.zeros((4, 4, 3), np.uint8)})()])
    assert asked == [(1, 4)]


class _Asked:
    """A real CPU session that says it runs on the providers asked for (so the estimator takes its GPU path: the
    rewrite to a dynamic batch, a second session)."""

    def __init__(self, session, providers):
        self._session, self._providers = session, list(providers)

    def get_providers(self):
        return self._providers

    def __getattr__(self, name):
        return getattr(self._session, name)


@pytest.fixture
def recorded_sessions(monkeypatch):
    real = onnxruntime.InferenceSession
    asked: list[tuple[list, list]] = []

    def session(model, options=None, providers=None, provider_options=None, **kwargs):
        asked.append((list(providers or []), list(provider_options or [])))
        return _Asked(real(model, options, providers=[runtime.CPU]), providers or [runtime.CPU])

    monkeypatch.setattr(onnxruntime, "InferenceSession", session)
    monkeypatch.setattr(runtime, "cuda_available", lambda: True)
    return asked


def test_the_cudnn_search_set_in_the_environment_reaches_both_depth_sessions(recorded_sessions, shared_models,
                                                                             monkeypatch):
    from models.registry import resolve_model

    monkeypatch.setenv("DEPTHCAM_CUDNN_SEARCH", "Heuristic")
    spec, path = resolve_model("tcmonodepth", progress=False)
    runtime.DepthEstimator(spec, path, "cuda")
    assert len(recorded_sessions) == 2  # the exported graph's, then its rewrite with a dynamic batch
    for providers, options in recorded_sessions:
        assert providers == [runtime.CUDA, runtime.CPU]
        assert options == [{"cudnn_conv_algo_search": "HEURISTIC"}, {}]


def test_without_it_onnx_runtime_keeps_its_own_search_and_a_wrong_word_is_refused(monkeypatch):
    from models.download import ModelError

    monkeypatch.delenv("DEPTHCAM_CUDNN_SEARCH", raising=False)
    assert runtime.provider_options([runtime.TENSORRT, runtime.CUDA, runtime.CPU]) == [{}, {}, {}]
    monkeypatch.setenv("DEPTHCAM_CUDNN_SEARCH", "Fastest")
    assert runtime.provider_options([runtime.CPU]) == [{}]  # not read where no CUDA provider is asked for
    with pytest.raises(ModelError, match="DEPTHCAM_CUDNN_SEARCH='Fastest' is not a cuDNN search; set exhaustive or"):
        runtime.provider_options([runtime.CUDA, runtime.CPU])


def test_padding_can_be_turned_off_to_measure_it_and_a_wrong_word_is_refused(batching_estimator, monkeypatch):
    estimator, calls = batching_estimator
    monkeypatch.setattr(runtime.DepthEstimator, "on_gpu", property(lambda self: getattr(self, "seen_as_gpu", False)))
    estimator.seen_as_gpu = True
    monkeypatch.setenv("DEPTHCAM_GPU_BATCH_PADDING", "off")
    assert runtime.gpu_batch_padding() is False
    estimator.pad_batches = runtime.gpu_batch_padding()
    assert len(estimator.predict(_frames(3), pad_to=4)) == 3 and calls == [3]
    monkeypatch.setenv("DEPTHCAM_GPU_BATCH_PADDING", "On")
    assert runtime.gpu_batch_padding() is True
    monkeypatch.setenv("DEPTHCAM_GPU_BATCH_PADDING", "sometimes")
    from models.download import ModelError

    with pytest.raises(ModelError, match="DEPTHCAM_GPU_BATCH_PADDING='sometimes' is neither on nor off"):
        runtime.gpu_batch_padding()
