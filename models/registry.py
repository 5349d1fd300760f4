"""The model registry: what each depth network is, where its weights come from, how to feed it.

Files live in the cache (`models.download.cache_dir()`): downloaded once, checked against their
sha256, never committed. FCRN is converted from the official TensorFlow checkpoint on first fetch.
"""
from __future__ import annotations

import importlib
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from models.download import ModelError, cache_dir, cache_lock, download, sha256_of, verify_sha256
from stream.console import command_word

OutputKind = Literal["inverse_depth", "metres", "person_probability"]  # the last: a person mask (PERSON_MASK_MODELS)
InputNorm = Literal["raw", "unit", "imagenet", "symmetric"]
# What each input scaling feeds the network, for people (`models info`, errors).
INPUT_NORMS: dict[str, str] = {
    "raw": "RGB 0..255",
    "unit": "RGB 0..1",
    "imagenet": "RGB 0..1 less ImageNet's mean, over its std (Depth Anything, MiDaS v2.1)",
    "symmetric": "RGB -1..1 (MiDaS v3 DPT models)",
}
OUTPUT_KINDS: tuple[str, ...] = ("inverse_depth", "metres")
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB
IMAGENET_STD = (0.229, 0.224, 0.225)
# ONNX metadata_props a file built by depthcam (`models convert`, `models fetch fcrn`) carries, so that it says
# how to feed and read it under any file name: a user's converted copy is not the cache's file.
META_MODEL, META_INPUT_NORM, META_OUTPUT_KIND = "depthcam.model", "depthcam.input_norm", "depthcam.output_kind"


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
    size: int | None = None  # bytes of a downloaded model file: a copy under another name is hashed only at this size
    fetcher: str | None = None  # "module:function(cache, progress) -> Path" for models converted on fetch

    @property
    def path(self) -> Path:
        return cache_dir() / self.filename


REGISTRY: dict[str, ModelSpec] = {
    "tcmonodepth": ModelSpec(
        name="tcmonodepth",
        filename="tcmonodepth_tcsmallnet_192x320.onnx",
        description="TCMonoDepth small (Li et al., ICCVW 2021): temporally consistent relative inverse depth, "
                    "fast on CPU",
        source="github.com/yu-li/TCMonoDepth, ONNX from PINTO_model_zoo 384_TCMonoDepth, "
               "mirrored by obs-backgroundremoval",
        input_size=(320, 192),
        output_kind="inverse_depth",
        url="https://github.com/royshil/obs-backgroundremoval/raw/75e90ec0d25cb711b34a834dbb25ed3c43d95de9/"
            "data/models/tcmonodepth_tcsmallnet_192x320.onnx",
        sha256="902b886beaebd3f68deb40bab2fd636a0c112c1ef1cbdd15fa26e5c55b389b4d",
        size=790_459,
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


# Person segmentation networks (models/segmentation.py, refine.person_mask): fetched and checked like the depth
# models and known to `models fetch/info/list`, but kept out of REGISTRY so that `--model` never takes one for depth.
PERSON_MASK_MODELS: dict[str, ModelSpec] = {
    "selfie_segmentation": ModelSpec(
        name="selfie_segmentation",
        filename="selfie_segmentation.onnx",
        description="MediaPipe selfie segmentation, general model: person probability, for refine.person_mask",
        source="Google MediaPipe, ONNX from PINTO_model_zoo 082_MediaPipe_Meet_Segmentation, "
               "mirrored by obs-backgroundremoval",
        input_size=(256, 256),
        output_kind="person_probability",
        layout="NHWC",
        input_norm="unit",
        url="https://github.com/royshil/obs-backgroundremoval/raw/75e90ec0d25cb711b34a834dbb25ed3c43d95de9/"
            "data/models/selfie_segmentation.onnx",
        sha256="1511ab5564cb0ae179cba9bcad6ad931003ccc71656f11fd270967023678c6a5",
        size=447_596,
    ),
}


def model_names() -> list[str]:
    return sorted(REGISTRY)


def unknown_model(name: str, extra: str = "") -> ModelError:
    """An unknown model's refusal: the name it most likely meant (`tcmonodeph`), and the names known."""
    from stream.config import closest_choice  # as a misspelt option's choice is told

    close = closest_choice(name, model_names())
    meant = f" (did you mean {close}?)" if close else ""
    return ModelError(f"unknown model {name!r}{meant}; known models: {', '.join(model_names())}{extra}")


def get_spec(name: str) -> ModelSpec:
    """A depth model's or a person mask model's entry (`models fetch/info`)."""
    spec = REGISTRY.get(name) or PERSON_MASK_MODELS.get(name)
    if spec is None:
        raise unknown_model(name)
    return spec


def model_state(spec: ModelSpec) -> str:
    if not spec.path.is_file():
        return "not downloaded"
    try:
        check_cached(spec)
    except ModelError:
        return f"damaged (run 'depthcam models fetch {spec.name}')"
    return "cached"


def model_metadata(name: str) -> dict[str, str]:
    """The metadata_props a file of registry model `name` is written with; resolve_model reads them back."""
    spec = get_spec(name)
    return {META_MODEL: spec.name, META_INPUT_NORM: spec.input_norm, META_OUTPUT_KIND: spec.output_kind}


def recorded_checksum(path: Path) -> Path:
    """Where a model converted into the cache keeps its sha256 (it has no published one), followed by the
    file's stamp when that checksum was last verified: `<sha256> <size>:<mtime ns>:<ctime ns>`."""
    return path.with_name(path.name + ".sha256")


# A file changed this recently may change again within the same clock tick of its file system (coarse
# timestamps) and keep its stamp: it is not stamped yet, so the next check hashes it (git's "racily clean").
STAMP_SETTLE_NS = 2_000_000_000


def _file_stamp(path: Path) -> str | None:
    """Size, mtime and ctime of `path`; None while it is too fresh to vouch for. ctime cannot be set back
    by a user (`touch -d`, `cp -p` only set mtime), so any later rewrite of the file changes the stamp."""
    stat = path.stat()
    if time.time_ns() - max(stat.st_mtime_ns, stat.st_ctime_ns) < STAMP_SETTLE_NS:
        return None
    return f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}"


def record_checksum(path: Path, digest: str) -> None:
    """Record the sha256 of a file just written into the cache (a conversion), to be stamped when next checked."""
    _record_checksum(path, digest)


def _record_checksum(path: Path, digest: str | None = None, stamp: str | None = None) -> None:
    """Write the sidecar: the sha256 (hashed here unless given) and the file's stamp taken before it was
    hashed or verified, so that a later run may trust it without hashing."""
    try:
        fields = [digest or sha256_of(path)] + ([stamp] if stamp else [])
        recorded_checksum(path).write_text(" ".join(fields) + "\n")
    except OSError:  # a read-only cache: the file is parsed (or hashed) instead next time
        pass


def check_cached(spec: ModelSpec, *, quick: bool = False) -> None:
    """ModelError where the cached file is not what was downloaded or converted (truncated, overwritten).
    A converted file from before checksums were recorded is parsed instead, and its checksum recorded.

    `quick` (a run's start): a converted file whose size, mtime and ctime are those recorded when its
    checksum last matched is not hashed again (254 MB for FCRN, 0.5-1 s every run); `models list`, `info`
    and `fetch` always hash it."""
    fix = f"run 'depthcam models fetch {spec.name}', which replaces it"
    if not spec.fetcher:
        assert spec.sha256, f"registry entry {spec.name} has no checksum"
        verify_sha256(spec.path, spec.sha256, fix=fix)
        return
    recorded = recorded_checksum(spec.path)
    fields = recorded.read_text().split() if recorded.is_file() else []
    if fields:
        digest, *stamp = fields
        now = _file_stamp(spec.path)  # taken before hashing: a change while hashing fails the next quick check
        if quick and now is not None and stamp == [now]:
            return
        verify_sha256(spec.path, digest, fix=fix)
        if now is not None and stamp != [now]:
            _record_checksum(spec.path, digest, now)
        return
    import onnx

    now = _file_stamp(spec.path)
    try:
        onnx.load(str(spec.path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 (protobuf's DecodeError, or a file that is not ONNX at all)
        raise ModelError(f"the cached {spec.filename} is not a complete ONNX model ({exc.__class__.__name__}); "
                         f"{fix}") from None
    _record_checksum(spec.path, stamp=now)


def _call_fetcher(reference: str, progress: bool) -> Path:
    module_name, function_name = reference.split(":")
    function: Callable[..., Path] = getattr(importlib.import_module(module_name), function_name)
    return function(cache_dir(), progress=progress)


def fetch(name: str, *, progress: bool = True, repair: bool = False, quick: bool = False) -> Path:
    """Make the model's file present in the cache (download, verify, convert) and return its path. A damaged
    cached file is an error, or with `repair` (`depthcam models fetch`) deleted and fetched again. `quick`:
    see check_cached."""
    spec = get_spec(name)
    if spec.path.is_file():
        try:
            check_cached(spec, quick=quick)
            return spec.path
        except ModelError:
            if not repair:
                raise
            print(f"depthcam: the cached {spec.filename} is damaged; fetching it again", file=sys.stderr)
            _remove_damaged(spec)
    if spec.fetcher:
        with cache_lock(spec.path):  # two first runs at once: one downloads and converts, the other waits for it
            if spec.path.is_file():  # converted by another process while this one waited
                check_cached(spec, quick=quick)
                return spec.path
            path = _call_fetcher(spec.fetcher, progress)
            _record_checksum(path)
            return path
    assert spec.url and spec.sha256, f"registry entry {name} has no url or no checksum"
    return download(spec.url, spec.path, spec.sha256, progress=progress)


def _remove_damaged(spec: ModelSpec) -> None:
    """Delete a damaged cached file and its recorded checksum; a cache that cannot be written says so in one line
    (a PermissionError's class name and errno were all a user saw)."""
    try:
        spec.path.unlink(missing_ok=True)  # another process may have replaced it already
        recorded_checksum(spec.path).unlink(missing_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot replace the damaged {spec.path}: {exc.strerror or exc} (delete it by hand, or set "
                         f"DEPTHCAM_MODELS to a writable folder)") from None


def resolve_model(name_or_path: str, *, progress: bool = True) -> tuple[ModelSpec, Path]:
    """A registry name (fetched on first use) or a path to an .onnx file (its layout guessed from its input)."""
    if name_or_path in REGISTRY:
        return REGISTRY[name_or_path], fetch(name_or_path, progress=progress, quick=True)
    path = Path(name_or_path).expanduser()
    _refuse_weight_files(path)
    if path.suffix.lower() != ".onnx" and not path.exists():
        raise unknown_model(name_or_path, " (or give a path to an .onnx file)")
    if path.is_dir():
        raise ModelError(f"model {path} is a folder; {_folder_fix(path)}")
    if not path.is_file():
        raise ModelError(f"model file {path} not found (give an existing .onnx file or a registry name)")
    namesake = next((spec for spec in REGISTRY.values() if spec.filename == path.name), None)
    if namesake is not None and _is_registry_file(namesake, path):
        return namesake, path
    copied = _renamed_registry_file(path) if namesake is None else None
    if copied is not None:
        return copied, path
    # A user's own name for the file: a registry name would read as the registry's cached model.
    name = path.name if path.stem in REGISTRY else path.stem
    declared = _declared_spec(path, name)
    if declared is not None:
        return declared, path
    # Your own model: the convention of the relative-depth models people export most (Depth Anything,
    # MiDaS v2.1): ImageNet-normalised RGB in, inverse depth out; --model-input and --model-output change them.
    own = ModelSpec(name=name, filename=path.name, description=f"user model {path}", source=str(path),
                    input_size=(0, 0), output_kind="inverse_depth", input_norm="imagenet")
    if namesake is not None:
        notify(f"{path} has the file name of the registry's {namesake.name} model but is not its file (not the "
               f"cached one, another checksum): read as your own model (ImageNet-normalised RGB in, inverse depth "
               f"out); for {namesake.name}'s settings use --model {namesake.name}, or add --model-input "
               f"{namesake.input_norm} --model-output {namesake.output_kind}")
    return own, path


def _folder_fix(folder: Path) -> str:
    """What to give instead of a folder: the .onnx files in it or a level down (an export's folder, a Hugging Face
    repository's onnx/), or a TensorFlow SavedModel's conversion."""
    found = sorted(folder.glob("*.onnx")) + sorted(folder.glob("*/*.onnx"))
    if len(found) == 1:
        return f"give the .onnx file in it: --model {command_word(str(found[0]))}"
    if found:
        listed = ", ".join(str(f) for f in found[:3]) + (", ..." if len(found) > 3 else "")
        return f"give one of its .onnx files to --model ({listed})"
    if (folder / "saved_model.pb").is_file():
        return (f"it is a TensorFlow SavedModel: convert it once (python -m tf2onnx.convert --saved-model "
                f"{command_word(str(folder))} --output model.onnx), then --model model.onnx")
    return "give the .onnx file itself"


def _renamed_registry_file(path: Path) -> ModelSpec | None:
    """The registry model `path` is a renamed copy of (its size, then its checksum), with a note; None for any
    other file. Such a copy was read as your own model, fed ImageNet-normalised input where TCMonoDepth takes
    0..255: a depth map that looked plausible and was wrong."""
    size = path.stat().st_size
    spec = next((s for s in REGISTRY.values() if s.size == size and s.sha256 and not s.fetcher), None)
    if spec is None or sha256_of(path) != spec.sha256:
        return None
    notify(f"{path} is the registry's {spec.name} model under another name (its checksum): read with its settings "
           f"(--model-input and --model-output change them)")
    return spec


# The files the official FCRN weights come in (NYU_ResNet-UpProj.npy, NYU_FCRN-checkpoint.zip, NYU_FCRN.ckpt's
# .index, .data-00000-of-00001 and .meta): `models convert` takes them, ONNX Runtime does not.
WEIGHT_FILE = re.compile(r"\.(npy|zip|ckpt|index|meta|data-\d+-of-\d+)$", re.IGNORECASE)


def _refuse_weight_files(path: Path) -> None:
    """Official FCRN weights given as the model: say they need converting (ONNX Runtime only said that the file
    is no complete ONNX model, and a checkpoint's prefix, a name of no file, was an unknown model)."""
    prefix = re.sub(r"\.(index|meta|data-\d+-of-\d+)$", "", str(path), flags=re.IGNORECASE)
    if not (WEIGHT_FILE.search(path.name) and (path.exists() or Path(f"{prefix}.index").is_file())):
        return
    if _zip_without_checkpoint(path):  # a zipped ONNX model, a PyTorch checkpoint: the load says what it is
        return
    raise ModelError(f"{path} is not an ONNX model; official FCRN weights (NYU_ResNet-UpProj.npy, NYU_FCRN.ckpt, "
                     f"NYU_FCRN-checkpoint.zip) are converted once: depthcam models convert {command_word(prefix)} "
                     f"-o fcrn.onnx, then --model fcrn.onnx")


def _zip_without_checkpoint(path: Path) -> bool:
    """A readable zip archive that holds no TensorFlow checkpoint (a .ckpt.index) nor .npy: not FCRN's weights."""
    import zipfile

    if path.suffix.lower() != ".zip" or not path.is_file():
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):  # damaged: `models convert` says so
        return False
    return not any(name.endswith((".ckpt.index", ".npy")) for name in names)


def _declared_spec(path: Path, name: str) -> ModelSpec | None:
    """The settings of the registry model the file's metadata names (a converted FCRN under the user's own
    name), with a note; None for a file without them (your own model, or one converted before they were
    written). The file's own input norm and output kind, where valid, win over the registry's."""
    from models.metadata import read_metadata_props

    props = read_metadata_props(path)
    base = REGISTRY.get(props.get(META_MODEL, ""))
    if base is None:
        return None
    norm = props.get(META_INPUT_NORM)
    kind = props.get(META_OUTPUT_KIND)
    spec = ModelSpec(name=name, filename=path.name, description=f"{base.description} (converted file {path})",
                     source=str(path), input_size=base.input_size, layout=base.layout, input_scale=base.input_scale,
                     input_norm=norm if norm in INPUT_NORMS else base.input_norm,  # type: ignore[arg-type]
                     output_kind=kind if kind in OUTPUT_KINDS else base.output_kind)  # type: ignore[arg-type]
    notify(f"{path} is a converted {base.name} model (its ONNX metadata says so): read with {base.name}'s "
           f"settings, {spec.input_size[0]}x{spec.input_size[1]} {INPUT_NORMS[spec.input_norm]} in, "
           f"{spec.output_kind.replace('_', ' ')} out (--model-input and --model-output change them)")
    return spec


def cached_file_of(path: Path) -> ModelSpec | None:
    """The registry entry whose cached file `path` is (the same file, not merely the same name), else None."""
    spec = next((s for s in REGISTRY.values() if s.filename == path.name), None)
    return spec if spec is not None and _same_file(path, spec.path) else None


def cache_entry_at(path: Path) -> ModelSpec | None:
    """The registry entry whose place in the cache `path` is (its folder and file name), a file there or not."""
    spec = next((s for s in REGISTRY.values() if s.filename == path.name), None)
    return spec if spec is not None and _same_file(path.parent, spec.path.parent) else None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def _is_registry_file(spec: ModelSpec, path: Path) -> bool:
    """`path` is the registry model itself: its cached file, or a copy with its checksum (hashed only for a
    file that bears the registry's file name)."""
    if _same_file(path, spec.path):
        return True
    expected = _reference_checksum(spec)
    return expected is not None and sha256_of(path) == expected


def _reference_checksum(spec: ModelSpec) -> str | None:
    """The sha256 of the registry model's file: published, or recorded by its conversion into the cache."""
    if not spec.fetcher:
        return spec.sha256
    recorded = recorded_checksum(spec.path)
    fields = recorded.read_text().split() if recorded.is_file() else []
    return fields[0] if fields else None


_SAID: set[str] = set()


def notify(message: str) -> None:
    """A note for the user, through the CLI's own channel (one line on stderr, progress bars kept intact); once a
    process: a model is resolved again for every run of a benchmark, and its note said as often."""
    from stream.console import notify as console_notify

    if message in _SAID:
        return
    _SAID.add(message)
    console_notify(message)
