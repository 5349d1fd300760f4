"""The depth session's CUDA provider searches cuDNN's convolution algorithms by heuristic: by default (EXHAUSTIVE) it
searches again at every change of the input shape, which dynamic batching makes at nearly every call (1 to 4 frames);
the likely cause of the pipelined run's 10.5 fps on an H200 against the sequential run's 33."""
from __future__ import annotations

import onnxruntime
import pytest

from models import runtime


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


def test_every_depth_session_on_cuda_asks_for_the_heuristic_search(recorded_sessions, shared_models, monkeypatch):
    from models.registry import resolve_model

    monkeypatch.delenv("DEPTHCAM_CUDNN_SEARCH", raising=False)

    spec, path = resolve_model("tcmonodepth", progress=False)
    estimator = runtime.DepthEstimator(spec, path, "cuda")
    assert len(recorded_sessions) == 2  # the exported graph's, then its rewrite with a dynamic batch
    assert not estimator.input.static_batch
    for providers, options in recorded_sessions:
        assert providers == [runtime.CUDA, runtime.CPU]
        assert options == [{"cudnn_conv_algo_search": "HEURISTIC"}, {}]


def test_the_options_follow_the_providers_asked_for(monkeypatch):
    monkeypatch.delenv("DEPTHCAM_CUDNN_SEARCH", raising=False)
    assert runtime.provider_options([runtime.CPU]) == [{}]
    assert runtime.provider_options([runtime.TENSORRT, runtime.CUDA, runtime.CPU]) == [
        {}, {"cudnn_conv_algo_search": "HEURISTIC"}, {}]


def test_the_environment_sets_another_search_and_a_wrong_word_is_refused(monkeypatch):
    from models.download import ModelError

    monkeypatch.setenv("DEPTHCAM_CUDNN_SEARCH", "Exhaustive")
    assert runtime.provider_options([runtime.CUDA]) == [{"cudnn_conv_algo_search": "EXHAUSTIVE"}]
    monkeypatch.setenv("DEPTHCAM_CUDNN_SEARCH", "fastest")
    with pytest.raises(ModelError, match="DEPTHCAM_CUDNN_SEARCH='fastest' is not a cuDNN search; set heuristic"):
        runtime.provider_options([runtime.CUDA, runtime.CPU])
