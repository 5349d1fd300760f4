"""Depth models: registry, download cache with checksums, pre/post-processing, the FCRN graph builder.

From Python (loaded on first use, so that `import models` stays light):

    spec, path = models.resolve_model("tcmonodepth")     # a registry name, or an .onnx file of your own
    estimator = models.DepthEstimator(spec, path, "auto")
    disparity = models.DisparityNormaliser()(estimator.to_disparity(estimator.predict([frame_bgr])[0]))
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"resolve_model": "models.registry", "DepthEstimator": "models.runtime",
            "DisparityNormaliser": "models.postprocess", "ModelError": "models.download"}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")
