"""The model registry: what each depth network is, where its weights come from, how to feed it.

Files live in the cache (`models.download.cache_dir()`): downloaded once, checked against their
sha256, never committed. FCRN is converted from the official TensorFlow checkpoint on first fetch.
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from models.download import ModelError, cache_dir, download, sha256_of, verify_sha256

OutputKind = Literal["inverse_depth", "metres"]
InputNorm = Literal["raw", "unit", "imagenet", "symmetric"]
# What each input scaling feeds the network, for people (`models info`, errors).
INPUT_NORMS: dict[str, str] = {
    "raw": "RGB 0..255",
    "unit": "RGB 0..1",
    "imagenet": "RGB 0..1 less ImageNet's mean, over its std (Depth Anything, MiDaS v2.1)",
    "symmetric": "RGB -1..1 (MiDaS v3 DPT models)",
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    filename: str  # the file in the cache
    description: str
    source: str  # where the weights come from, for people
    input_size: tuple[int, int]  # (width, height) the network takes
    output_kind: OutputKind  # what the network predicts; converted to disparity either way
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    input_scale: float = 1.0  # the network takes RGB values 0..255 times this ("raw" scaling)
    input_norm: InputNorm = "raw"  # how RGB is scaled for the network (INPUT_NORMS)
    url: str | None = None  # what is downloaded: `filename` itself, or the archive a fetcher converts
    sha256: str | None = None  # of what is downloaded
    fetcher: str | None = None  # "module:function(cache, progress) -> Path" for models converted on fetch

    @property
    def path(self) -> Path:
        return cache_dir() / self.filename


REGISTRY: dict[str, ModelSpec] = {
    "tcmonodepth": ModelSpec(
        name="tcmonodepth",
        filename="tcmonodepth_tcsmallnet_192x320.onnx",
        description="TCMonoDepth small (Li et al., ICCVW 2021): temporally consistent relative inverse depth, fast on CPU",
        source="github.com/yu-li/TCMonoDepth, ONNX from PINTO_model_zoo 384_TCMonoDepth, mirrored by obs-backgroundremoval",
        input_size=(320, 192),
        output_kind="inverse_depth",
        url="https://github.com/royshil/obs-backgroundremoval/raw/75e90ec0d25cb711b34a834dbb25ed3c43d95de9/"
            "data/models/tcmonodepth_tcsmallnet_192x320.onnx",
        sha256="902b886beaebd3f68deb40bab2fd636a0c112c1ef1cbdd15fa26e5c55b389b4d",
    ),
    "fcrn": ModelSpec(
        name="fcrn",
        filename="fcrn_nyu_depth_v2.onnx",
        description="FCRN (Laina et al. 2016): ResNet-50 with up-projections, NYU Depth v2, metres",
        source="official TensorFlow checkpoint NYU_FCRN.ckpt from the authors' server (the address Open Model "
               "Zoo's fcrn-dp-nyu-depth-v2-tf uses), "
               "converted to ONNX on first fetch",
        input_size=(304, 228),
        output_kind="metres",
        url="http://campar.in.tum.de/files/rupprecht/depthpred/NYU_FCRN-checkpoint.zip",  # 472,588,519 bytes
        sha256="9d97ed165c4a5b3f085eb83b8814de1e883c6348da60da4b2568ddd64bb2d5c4",
        fetcher="models.fcrn_weights:fetch_official",
    ),
}


def model_names() -> list[str]:
    return sorted(REGISTRY)


def get_spec(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(model_names())}") from None


def model_state(spec: ModelSpec) -> str:
    if not spec.path.is_file():
        return "not downloaded"
    try:
        check_cached(spec)
    except ModelError:
        return f"damaged (run 'depthcam models fetch {spec.name}')"
    return "cached"


def recorded_checksum(path: Path) -> Path:
    """Where a model converted into the cache keeps its sha256: it has no published one."""
    return path.with_name(path.name + ".sha256")


def _record_checksum(path: Path) -> None:
    try:
        recorded_checksum(path).write_text(sha256_of(path) + "\n")
    except OSError:  # a read-only cache: the file is parsed instead next time
        pass


def check_cached(spec: ModelSpec) -> None:
    """ModelError where the cached file is not what was downloaded or converted (truncated, overwritten).
    A converted file from before checksums were recorded is parsed instead, and its checksum recorded."""
    fix = f"run 'depthcam models fetch {spec.name}', which replaces it"
    if not spec.fetcher:
        assert spec.sha256, f"registry entry {spec.name} has no checksum"
        verify_sha256(spec.path, spec.sha256, fix=fix)
        return
    recorded = recorded_checksum(spec.path)
    if recorded.is_file():
        verify_sha256(spec.path, recorded.read_text().split()[0], fix=fix)
        return
    import onnx

    try:
        onnx.load(str(spec.path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 (protobuf's DecodeError, or a file that is not ONNX at all)
        raise ModelError(f"the cached {spec.filename} is not a complete ONNX model ({exc.__class__.__name__}); "
                         f"{fix}") from None
    _record_checksum(spec.path)


def _call_fetcher(reference: str, progress: bool) -> Path:
    module_name, function_name = reference.split(":")
    function: Callable[..., Path] = getattr(importlib.import_module(module_name), function_name)
    return function(cache_dir(), progress=progress)


def fetch(name: str, *, progress: bool = True, repair: bool = False) -> Path:
    """Make the model's file present in the cache (download, verify, convert) and return its path. A damaged
    cached file is an error, or with `repair` (`depthcam models fetch`) deleted and fetched again."""
    spec = get_spec(name)
    if spec.path.is_file():
        try:
            check_cached(spec)
            return spec.path
        except ModelError:
            if not repair:
                raise
            print(f"depthcam: the cached {spec.filename} is damaged; fetching it again", file=sys.stderr)
            spec.path.unlink()
            recorded_checksum(spec.path).unlink(missing_ok=True)
    if spec.fetcher:
        path = _call_fetcher(spec.fetcher, progress)
        _record_checksum(path)
        return path
    assert spec.url and spec.sha256, f"registry entry {name} has no url or no checksum"
    return download(spec.url, spec.path, spec.sha256, progress=progress)


def resolve_model(name_or_path: str, *, progress: bool = True) -> tuple[ModelSpec, Path]:
    """A registry name (fetched on first use) or a path to an .onnx file (its layout guessed from its input)."""
    if name_or_path in REGISTRY:
        return REGISTRY[name_or_path], fetch(name_or_path, progress=progress)
    path = Path(name_or_path).expanduser()
    if path.suffix.lower() != ".onnx" and not path.exists():
        raise ModelError(f"unknown model {name_or_path!r}; known models: {', '.join(model_names())} "
                         f"(or give a path to an .onnx file)")
    if path.is_dir():
        raise ModelError(f"model {path} is a folder; give the .onnx file itself")
    if not path.is_file():
        raise ModelError(f"model file {path} not found (give an existing .onnx file or a registry name)")
    for spec in REGISTRY.values():
        if spec.filename == path.name:
            return spec, path
    # Your own model: the convention of the relative-depth models people export most (Depth Anything,
    # MiDaS v2.1): ImageNet-normalised RGB in, inverse depth out; --model-input and --model-output change them.
    return ModelSpec(name=path.stem, filename=path.name, description=f"user model {path}", source=str(path),
                     input_size=(0, 0), output_kind="inverse_depth", input_norm="imagenet"), path
