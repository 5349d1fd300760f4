"""Shared fixtures: the real models folder beside the checkout, GPU detection, seeded randomness."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from kernels.backend import cuda_available, cuda_unavailable_reason

REPO = Path(__file__).resolve().parents[1]
SHARED_MODELS = REPO.parent / "shared" / "models"


def pytest_collection_modifyitems(config, items):
    if cuda_available():
        return
    skip = pytest.mark.skip(reason=f"gpu test: {cuda_unavailable_reason()}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def shared_models(monkeypatch) -> Path:
    """Point the model cache at the real pretrained ONNX files: $DEPTHCAM_MODELS where it holds them
    (a GPU machine gets them carried there), else ../shared/models; skip without them."""
    from models.registry import get_spec

    filename = get_spec("tcmonodepth").filename
    candidates = [Path(os.environ["DEPTHCAM_MODELS"])] if os.environ.get("DEPTHCAM_MODELS") else []
    for folder in [*candidates, SHARED_MODELS]:
        if (folder / filename).exists():
            monkeypatch.setenv("DEPTHCAM_MODELS", str(folder.resolve()))
            return folder.resolve()
    pytest.skip(f"real models not found at {SHARED_MODELS} (the team's shared folder) or $DEPTHCAM_MODELS")


@pytest.fixture
def model_cache(tmp_path, monkeypatch) -> Path:
    """An empty, writable model cache for download and conversion tests."""
    cache = tmp_path / "model-cache"
    monkeypatch.setenv("DEPTHCAM_MODELS", str(cache))
    return cache


def pytest_report_header(config):
    return [f"depthcam: CUDA {'available' if cuda_available() else 'not available: ' + cuda_unavailable_reason()}",
            f"depthcam: DEPTHCAM_MODELS={os.environ.get('DEPTHCAM_MODELS', '(default cache)')}"]


@pytest.fixture
def told(monkeypatch):
    """The lines a network stream's source says (stream/network_source.py's notify)."""
    import stream.network_source as network

    lines: list[str] = []
    monkeypatch.setattr(network, "notify", lines.append)
    return lines


@pytest.fixture
def slow_hdr_warm_up(monkeypatch):
    """stream.app.prepare_kernels made to say its slow notice at once, on an empty cache, with no warm-up before in
    this process: gives (notify, converter, messages); the HDR converter's prepare() lasts until the first line."""
    import threading

    import stream.app

    noticed, messages = threading.Event(), []

    def notify(line: str) -> None:
        messages.append(line)
        noticed.set()

    class Converter:
        def prepare(self) -> None:
            noticed.wait(60)

    monkeypatch.setattr(stream.app, "WARMED_HERE", set())
    monkeypatch.setattr(stream.app, "SLOW_NOTICE_S", 0.0)
    monkeypatch.setattr(stream.app, "cpu_cached", lambda kernels=(): False)
    monkeypatch.setattr(stream.app, "warm_up", lambda backend, **parts: None)
    return notify, Converter(), messages
