"""Official FCRN weight files -> ONNX: the TF tensor bundle and the NumPy pickle, written here in
their official formats (names, HWIO shapes) with random values; validation; download checksum.
The readers are also checked against what the official tools write: an index TensorFlow itself wrote
for the official variables (tests/data), and a pickle as Python 2's numpy.save wrote it."""
from __future__ import annotations

import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest

import models.fcrn_weights as fw
from models.download import ModelError, sha256_of
from models.fcrn import build_fcrn, random_weights
from models.protobuf_wire import encode_varint as _varint

# ---------------------------------------------------------------- writers in the official formats


def _field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, bytes):
        return _varint(number << 3 | 2) + _varint(len(value)) + value
    return _varint(number << 3) + _varint(value)


def _block(entries: list[tuple[bytes, bytes]], restart_interval: int = 16) -> bytes:
    """A LevelDB/TF table block: prefix-compressed keys, a restart point every 16 entries."""
    out, restarts, previous = bytearray(), [], b""
    for i, (key, value) in enumerate(entries):
        shared = 0
        if i % restart_interval == 0:
            restarts.append(len(out))
        else:
            while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                shared += 1
        out += _varint(shared) + _varint(len(key) - shared) + _varint(len(value)) + key[shared:] + value
        previous = key
    for r in restarts:
        out += struct.pack("<I", r)
    return bytes(out + struct.pack("<I", len(restarts)))


def write_table(path: Path, items: dict[bytes, bytes], block_entries: int = 40) -> None:
    """A TF table file: several data blocks, an empty metaindex, an index block, the footer."""
    data, handles, keys = bytearray(), [], sorted(items)
    trailer = b"\x00" + b"\x00" * 4  # no compression; crc32c (not checked by the reader)
    for start in range(0, len(keys), block_entries):
        chunk = keys[start:start + block_entries]
        block = _block([(k, items[k]) for k in chunk])
        handles.append((chunk[-1], _varint(len(data)) + _varint(len(block))))
        data += block + trailer
    meta = _block([])
    meta_handle = _varint(len(data)) + _varint(len(meta))
    data += meta + trailer
    index = _block(handles, restart_interval=1)
    index_handle = _varint(len(data)) + _varint(len(index))
    data += index + trailer
    footer = (meta_handle + index_handle).ljust(40, b"\x00") + struct.pack("<Q", 0xDB4775248B80FB57)
    path.write_bytes(bytes(data + footer))


_DTYPES = {np.dtype("<f4"): 1, np.dtype("<i8"): 9}


def write_checkpoint(prefix: Path, tensors: dict[str, np.ndarray]) -> None:
    """NYU_FCRN.ckpt-style tensor bundle: .index (table of BundleEntryProto) + .data shard."""
    header = _field(1, 1) + _field(2, 0) + _field(3, _field(1, 1))  # 1 shard, little-endian, version
    items, data = {b"": header}, bytearray()
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array).tobytes()
        shape = b"".join(_field(2, _field(1, d)) for d in array.shape)
        entry = (_field(1, _DTYPES[array.dtype]) + _field(2, shape) + _field(4, len(data)) + _field(5, len(raw))
                 + _varint(6 << 3 | 5) + struct.pack("<I", 0))
        items[name.encode()] = entry
        data += raw
    write_table(Path(f"{prefix}.index"), items)
    Path(f"{prefix}.data-00000-of-00001").write_bytes(bytes(data))


def write_npy(path: Path, weights: dict[str, np.ndarray]) -> None:
    """NYU_ResNet-UpProj.npy-style pickle: {layer: {param: array}}."""
    layers: dict[str, dict[str, np.ndarray]] = {}
    for name, value in weights.items():
        layer, param = name.split("/")
        layers.setdefault(layer, {})[param] = value
    np.save(path, np.array(layers, dtype=object), allow_pickle=True)


class _Python2Pickler(pickle._Pickler):
    """Pickles as Python 2's numpy.save wrote the official .npy (protocol 2): every str and every buffer
    as a Python 2 `str` (BINSTRING: raw bytes, no declared encoding), NumPy's globals under `numpy.core`."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj: str | bytes) -> None:
        raw = obj.encode("latin1") if isinstance(obj, str) else bytes(obj)
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str

    def save_global(self, obj, name=None) -> None:
        name = name or obj.__qualname__
        module = pickle.whichmodule(obj, name).replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
        self.memoize(obj)


def write_python2_npy(path: Path, weights: dict[str, np.ndarray]) -> None:
    """The official NYU_ResNet-UpProj.npy as Python 2 wrote it: a .npy 1.0 header, then the object array
    pickled with Python 2 strings (its float data too, as raw bytes that are not valid ASCII)."""
    layers: dict[str, dict[str, np.ndarray]] = {}
    for name, value in weights.items():
        layer, param = name.split("/")
        layers.setdefault(layer, {})[param] = value
    array = np.array(layers, dtype=object)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, np.lib.format.header_data_from_array_1_0(array))
        _Python2Pickler(f, protocol=2).dump(array)


# The official graph also saves its interleave index tensors (int64) and a step counter.
CKPT_NON_PARAMETERS = {"x_0": np.arange(6, dtype=np.int64), "x_3_7": np.arange(4, dtype=np.int64),
                       "global_step": np.array(1000, dtype=np.int64)}


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    return random_weights(seed=21)


@pytest.fixture(scope="module")
def reference_bytes(weights) -> bytes:
    return build_fcrn(weights).SerializeToString()


@pytest.fixture(scope="module")
def checkpoint(weights, tmp_path_factory) -> Path:
    prefix = tmp_path_factory.mktemp("ckpt") / "NYU_FCRN.ckpt"
    write_checkpoint(prefix, {**dict(reversed(list(weights.items()))), **CKPT_NON_PARAMETERS})
    return prefix


def _same(read: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> bool:
    return read.keys() == expected.keys() and all(np.array_equal(read[k], expected[k]) for k in expected)


# ---------------------------------------------------------------- readers and conversion


def test_table_reader_handles_prefix_compression_and_many_blocks(tmp_path):
    items = {f"layer{i:03d}_br{j}/weights".encode(): bytes([i, j]) * (i % 5) for i in range(120) for j in (1, 2)}
    write_table(tmp_path / "t.index", items, block_entries=7)
    assert fw.read_table((tmp_path / "t.index").read_bytes()) == items


def test_checkpoint_reads_exact_values_from_prefix_and_index(checkpoint, weights):
    assert _same(fw.read_checkpoint(checkpoint), weights)  # integer index tensors are skipped
    assert _same(fw.read_checkpoint(Path(f"{checkpoint}.index")), weights)


# Written by TensorFlow itself (tests/data/write_tf_checkpoint.py: TF 2.21's tf.compat.v1.train.Saver, as the
# official code saves) for the official variable set holding random_weights(5). Only its .index is kept here;
# TF's data file had this sha256, and the test rebuilds it byte for byte from the same weights.
TF_WRITTEN_INDEX = Path(__file__).parent / "data" / "NYU_FCRN_seed5.ckpt.index"
TF_WRITTEN_DATA_SHA256 = "57f7ec93ffcfc7b0088dccbe054cb20bca1f86977783b51895b4cc5397ed6ba5"


def test_reads_the_index_tensorflow_wrote_for_the_official_variables(tmp_path):
    expected = random_weights(seed=5)
    entries = fw.read_bundle_index(TF_WRITTEN_INDEX.read_bytes())
    assert set(entries) == set(expected)
    assert all(e.dtype == 1 and e.shape == expected[name].shape and e.shard_id == 0 and not e.sliced
               for name, e in entries.items())  # DT_FLOAT, HWIO shapes as TF stored them
    # The data file: each tensor's raw little-endian bytes at the offset the index gives (TF writes no more)
    prefix = _rebuild_checkpoint(tmp_path, TF_WRITTEN_INDEX, entries, expected,
                                 max(e.offset + e.size for e in entries.values()))
    assert sha256_of(Path(f"{prefix}.data-00000-of-00001")) == TF_WRITTEN_DATA_SHA256  # TensorFlow's file
    assert _same(fw.read_checkpoint(prefix), {k: v.astype(np.float32) for k, v in expected.items()})


def _rebuild_checkpoint(folder: Path, index: Path, entries: dict, weights: dict[str, np.ndarray],
                        data_bytes: int) -> Path:
    """A kept TF index beside a data file holding `weights` at the offsets it gives; whatever else the
    index lists stays a hole of zeros (a sparse file)."""
    prefix = folder / "NYU_FCRN.ckpt"
    Path(f"{prefix}.index").write_bytes(index.read_bytes())
    with open(f"{prefix}.data-00000-of-00001", "wb") as data:
        for name, value in weights.items():
            data.seek(entries[name].offset)
            data.write(value.astype("<f4").tobytes())
        data.truncate(data_bytes)
    return prefix


# The checkpoint the authors' graph itself saved (tests/data/run_official_fcrn.py): besides the 394 float
# variables, the int64 interleave indices its unpool_as_conv creates as variables (x_0 ... x_3_31).
OFFICIAL_LAYOUT_INDEX = Path(__file__).parent / "data" / "NYU_FCRN_official_layout_seed5.ckpt.index"
OFFICIAL_LAYOUT_DATA_BYTES = 411_821_060  # the data file TensorFlow wrote beside it


def test_reads_the_float_variables_of_the_official_graphs_own_checkpoint(tmp_path):
    expected = random_weights(seed=5)
    entries = fw.read_bundle_index(OFFICIAL_LAYOUT_INDEX.read_bytes())
    index_tensors = {name: e for name, e in entries.items() if name not in expected}
    assert len(index_tensors) == 128 and all(e.dtype == 9 for e in index_tensors.values())  # DT_INT64
    assert all(fw._CKPT_NON_PARAMETERS.match(name) for name in index_tensors)
    # Packed back to back in the data file, no padding: what the reader's offsets rely on
    spans = sorted((e.offset, e.size) for e in entries.values())
    assert all(a + n == b for (a, n), (b, _) in zip(spans, spans[1:]))
    assert spans[-1][0] + spans[-1][1] == OFFICIAL_LAYOUT_DATA_BYTES
    prefix = _rebuild_checkpoint(tmp_path, OFFICIAL_LAYOUT_INDEX, entries, expected, OFFICIAL_LAYOUT_DATA_BYTES)
    assert _same(fw.read_checkpoint(prefix), {k: v.astype(np.float32) for k, v in expected.items()})


def test_convert_checkpoint_gives_the_same_network(checkpoint, reference_bytes, tmp_path):
    out = fw.convert(checkpoint, tmp_path / "fcrn.onnx")
    assert out == tmp_path / "fcrn.onnx" and not list(tmp_path.glob("*.part"))
    assert onnx.load(str(out)).SerializeToString() == reference_bytes


def test_convert_npy_gives_the_same_network(weights, reference_bytes, tmp_path):
    src = tmp_path / "NYU_ResNet-UpProj.npy"
    write_npy(src, {k: v.astype(np.float64) for k, v in weights.items()})  # any float dtype is accepted
    assert onnx.load(str(fw.convert(src, tmp_path / "fcrn.onnx"))).SerializeToString() == reference_bytes


def test_convert_npy_written_by_python2_gives_the_same_network(weights, reference_bytes, tmp_path):
    src = tmp_path / "NYU_ResNet-UpProj.npy"
    write_python2_npy(src, weights)
    with pytest.raises(UnicodeError, match="encoding"):  # what reading it as a Python 3 pickle (ASCII) meets
        np.load(src, allow_pickle=True)
    assert onnx.load(str(fw.convert(src, tmp_path / "fcrn.onnx"))).SerializeToString() == reference_bytes


def test_fetch_official_downloads_verifies_converts_and_caches(checkpoint, reference_bytes, tmp_path, monkeypatch):
    archive = tmp_path / "mirror" / "NYU_FCRN-checkpoint.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:  # layout of the OMZ archive
        for suffix in (".index", ".data-00000-of-00001"):
            zf.write(f"{checkpoint}{suffix}", f"NYU_FCRN.ckpt{suffix}")
        zf.writestr("NYU_FCRN.ckpt.meta", b"graph")
    monkeypatch.setattr(fw, "OFFICIAL_URL", archive.as_uri())
    monkeypatch.setattr(fw, "OFFICIAL_SHA256", sha256_of(archive))
    cache = tmp_path / "cache"
    onnx_path = fw.fetch_official(cache, progress=False)
    assert onnx_path == cache / fw.ONNX_NAME
    assert onnx.load(str(onnx_path)).SerializeToString() == reference_bytes
    from models.metadata import read_metadata_props

    assert read_metadata_props(onnx_path)["depthcam.model"] == "fcrn"  # the cache's file says what it is too
    assert not (cache / fw.OFFICIAL_ARCHIVE).exists()  # the 472 MB archive is not kept by default

    def no_network(*args, **kwargs):
        raise AssertionError("fetched again although the converted model is cached")

    monkeypatch.setattr(fw, "download", no_network)
    monkeypatch.setattr(fw, "convert", no_network)
    assert fw.fetch_official(cache, progress=False) == onnx_path


def test_a_damaged_cached_model_is_named_and_models_fetch_replaces_it(checkpoint, reference_bytes, tmp_path,
                                                                      monkeypatch, capsys):
    """A truncated converted FCRN failed every run with "fetch it again", and `models fetch fcrn` printed its
    path and changed nothing (a converted file has no published checksum); `models list` said "cached".
    The conversion now records its checksum; a file from before that is parsed, and its checksum recorded."""
    from models.registry import fetch, get_spec, model_state, recorded_checksum

    archive = tmp_path / "mirror" / "NYU_FCRN-checkpoint.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for suffix in (".index", ".data-00000-of-00001"):
            zf.write(f"{checkpoint}{suffix}", f"NYU_FCRN.ckpt{suffix}")
    monkeypatch.setattr(fw, "OFFICIAL_URL", archive.as_uri())
    monkeypatch.setattr(fw, "OFFICIAL_SHA256", sha256_of(archive))
    monkeypatch.setenv("DEPTHCAM_MODELS", str(tmp_path / "cache"))
    spec = get_spec("fcrn")
    path = fetch("fcrn", progress=False)
    assert recorded_checksum(path).read_text().strip() == sha256_of(path) and model_state(spec) == "cached"
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size // 2)
    assert model_state(spec) == "damaged (run 'depthcam models fetch fcrn')"
    with pytest.raises(ModelError, match="run 'depthcam models fetch fcrn', which replaces it"):
        fetch("fcrn", progress=False)  # what a run meets
    assert fetch("fcrn", progress=False, repair=True) == path
    assert "damaged; fetching it again" in capsys.readouterr().err
    assert path.read_bytes() == reference_bytes and model_state(spec) == "cached"
    # converted before checksums were recorded: parsed once, then checked by its recorded checksum
    recorded_checksum(path).unlink()
    assert model_state(spec) == "cached" and recorded_checksum(path).is_file()
    recorded_checksum(path).unlink()
    path.write_bytes(reference_bytes[: len(reference_bytes) // 3])
    assert model_state(spec).startswith("damaged")


def test_a_run_hashes_the_converted_model_only_when_its_stamp_changed(model_cache, monkeypatch):
    """Every run hashed the 254 MB converted FCRN (0.5-1 s of start-up): now only where its size, mtime or
    ctime differ from those its last full check recorded; `models list/info/fetch` still hash it."""
    import os
    import time
    from types import SimpleNamespace

    import models.download
    import models.registry as registry

    spec = registry.get_spec("fcrn")
    model_cache.mkdir()
    spec.path.write_bytes(b"converted model " * 1000)
    registry._record_checksum(spec.path)  # as a conversion leaves it: the checksum alone
    hashed: list[Path] = []

    def counting_sha256(path):
        hashed.append(path)
        return sha256_of(path)

    monkeypatch.setattr(models.download, "sha256_of", counting_sha256)
    for _ in range(2):  # written just now: hashed every time, not stamped (it may change within this tick)
        assert registry.fetch("fcrn", quick=True) == spec.path
    assert len(hashed) == 2 and len(registry.recorded_checksum(spec.path).read_text().split()) == 1
    monkeypatch.setattr(registry, "time", SimpleNamespace(time_ns=lambda: time.time_ns() + 10**10))  # 10 s on
    registry.check_cached(spec, quick=True)  # settled: hashed once more, and its stamp recorded
    assert len(hashed) == 3 and len(registry.recorded_checksum(spec.path).read_text().split()) == 2
    for _ in range(3):
        assert registry.resolve_model("fcrn", progress=False) == (spec, spec.path)
    assert len(hashed) == 3  # runs trust the stamp
    assert registry.model_state(spec) == "cached" and len(hashed) == 4  # `models list` and `info` hash
    before = spec.path.stat()
    time.sleep(0.05)  # past the file system's clock tick (ctime is not stamped within 2 s of a change)
    with open(spec.path, "r+b") as handle:  # damaged in place, the same size, its mtime put back: ctime tells
        handle.write(b"X")
    os.utime(spec.path, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(ModelError, match="checksum mismatch .*run 'depthcam models fetch fcrn'"):
        registry.resolve_model("fcrn", progress=False)


def test_a_converted_fcrn_is_read_as_fcrn_under_any_name(reference_bytes, model_cache, tmp_path, capsys):
    """The README's `models convert SRC -o fcrn.onnx` then `--model fcrn.onnx`: the file was read as the user's
    own model, ImageNet-normalised RGB in and inverse depth out, while FCRN takes RGB 0..255 and gives metres:
    silently wrong depth. The conversion now writes what the file is into its metadata, and that is read."""
    import shutil

    from onnx import TensorProto, helper

    from models.registry import REGISTRY, resolve_model
    from stream.app import load_estimator
    from stream.cli import main
    from stream.config import PipelineConfig

    converted = tmp_path / "tmp" / "fcrn.onnx"  # what `models convert` writes (the tests above compare them)
    converted.parent.mkdir()
    converted.write_bytes(reference_bytes)
    renamed = tmp_path / "my_fcrn.onnx"
    shutil.copyfile(converted, renamed)
    for path in (converted, renamed):
        spec, resolved = resolve_model(str(path), progress=False)
        assert resolved == path and spec.name not in REGISTRY
        assert (spec.input_norm, spec.output_kind, spec.input_size) == ("raw", "metres", (304, 228))
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{path} is a converted fcrn model" in err and "RGB 0..255 in" in err
    estimator = load_estimator(PipelineConfig(model=str(renamed), device="cpu"), progress=False)
    assert (estimator.input.width, estimator.input.height, estimator.spec.input_norm) == (304, 228, "raw")
    flags = PipelineConfig(model=str(renamed), device="cpu", model_input="unit", model_output="inverse_depth")
    overridden = load_estimator(flags, progress=False).spec  # the user's flags win
    assert (overridden.input_norm, overridden.output_kind) == ("unit", "inverse_depth")
    assert main(["models", "info", str(converted)]) == 0
    out = capsys.readouterr().out
    assert "304x228, RGB 0..255" in out and "read as metres" in out
    # A plain model of the user's (no metadata) keeps the default
    graph = helper.make_graph([helper.make_node("ReduceMean", ["image"], ["depth"], axes=[1], keepdims=1)], "mean",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, 8, 8])],
                              [helper.make_tensor_value_info("depth", TensorProto.FLOAT, ["n", 1, 8, 8])])
    plain = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), str(plain))
    spec, _ = resolve_model(str(plain), progress=False)
    assert (spec.input_norm, spec.output_kind, spec.input_size) == ("imagenet", "inverse_depth", (0, 0))
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------- errors users will see


def test_corrupt_download_fails_the_checksum(tmp_path, monkeypatch):
    corrupt = tmp_path / "NYU_FCRN-checkpoint.zip"
    corrupt.write_bytes(b"<html>503 Service Unavailable</html>")
    monkeypatch.setattr(fw, "OFFICIAL_URL", corrupt.as_uri())
    cache = tmp_path / "cache"
    # download.py names its temporary .part file here; the archive's name and the sha256 are what matter.
    with pytest.raises(ModelError, match=r"checksum mismatch for NYU_FCRN-checkpoint\.zip.*expected sha256 "
                                         + fw.OFFICIAL_SHA256):
        fw.fetch_official(cache, progress=False)
    # nothing half-written is left to be mistaken for the model (the hidden lock file stays, empty)
    assert [f.name for f in cache.iterdir() if not f.name.endswith(".lock")] == []


def test_archive_placed_by_hand_is_checked_too(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / fw.OFFICIAL_ARCHIVE).write_bytes(b"truncated")
    with pytest.raises(ModelError, match="checksum mismatch"):
        fw.fetch_official(cache, progress=False)


def _broken(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    broken = dict(weights)
    del broken["res4c_branch2b/weights"]
    broken["layer8x_br1_ConvE/weights"] = np.zeros((2, 2, 256, 128), np.float32)
    broken["bn3a_branch1/variance"] = np.ones(256, np.float32)
    return broken


def _assert_names_the_problems(message: str) -> None:
    assert "\n" not in message
    assert "missing 1: res4c_branch2b/weights" in message
    assert "unexpected 1: layer8x_br1_ConvE/weights" in message
    assert "bn3a_branch1/variance (expected (512,), got (256,))" in message


def test_checkpoint_with_wrong_variables_is_refused_by_name(weights, tmp_path):
    write_checkpoint(tmp_path / "bad.ckpt", _broken(weights))
    with pytest.raises(ModelError) as info:
        fw.convert(tmp_path / "bad.ckpt", tmp_path / "out.onnx")
    _assert_names_the_problems(str(info.value))
    assert "bad.ckpt" in str(info.value) and not (tmp_path / "out.onnx").exists()


def test_npy_with_wrong_variables_is_refused_by_name(weights, tmp_path):
    write_npy(tmp_path / "bad.npy", _broken(weights))
    with pytest.raises(ModelError) as info:
        fw.convert(tmp_path / "bad.npy", tmp_path / "out.onnx")
    _assert_names_the_problems(str(info.value))


def test_truncated_data_shard_names_the_variable(tmp_path):
    prefix = tmp_path / "t.ckpt"
    write_checkpoint(prefix, {"conv1/biases": np.ones(64, np.float32),
                              "conv1/weights": np.ones((7, 7, 3, 64), np.float32)})
    data = Path(f"{prefix}.data-00000-of-00001")
    data.write_bytes(data.read_bytes()[:-100])
    with pytest.raises(ModelError, match="variable conv1/weights of .* is truncated"):
        fw.read_checkpoint(prefix)


@pytest.mark.parametrize("content, expected", [
    (b"\x00" * 100, "bad magic number"),
    (b"", "too short"),
])
def test_corrupt_index_is_reported(tmp_path, content, expected):
    prefix = tmp_path / "c.ckpt"
    Path(f"{prefix}.index").write_bytes(content)
    Path(f"{prefix}.data-00000-of-00001").write_bytes(b"")
    with pytest.raises(ModelError, match=f"cannot read the checkpoint index .*{expected}"):
        fw.read_checkpoint(prefix)


def test_missing_data_shard_and_unknown_formats(tmp_path):
    Path(f"{tmp_path / 'a.ckpt'}.index").write_bytes(b"x")
    with pytest.raises(ModelError, match=r"a.ckpt.data-00000-of-00001 not found"):
        fw.convert(tmp_path / "a.ckpt", tmp_path / "o.onnx")
    (tmp_path / "w.h5").write_bytes(b"x")
    with pytest.raises(ModelError, match="unknown FCRN weight format"):
        fw.convert(tmp_path / "w.h5", tmp_path / "o.onnx")
    with pytest.raises(ModelError, match="not found"):
        fw.convert(tmp_path / "nothing.npy", tmp_path / "o.onnx")
    (tmp_path / "z.zip").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not a readable zip"):
        fw.convert(tmp_path / "z.zip", tmp_path / "o.onnx")


def test_damaged_index_bytes_give_model_errors_only(tmp_path):
    """Any single damaged byte of the index gives a ModelError (or still reads), never a crash or hang."""
    prefix = tmp_path / "d.ckpt"
    write_checkpoint(prefix, {"conv1/biases": np.ones(64, np.float32), "x_0": np.arange(3, dtype=np.int64)})
    index = Path(f"{prefix}.index")
    good = index.read_bytes()
    for pos in range(len(good)):
        index.write_bytes(good[:pos] + bytes([good[pos] ^ 0xA5]) + good[pos + 1:])
        try:
            fw.read_checkpoint(prefix)
        except ModelError:
            pass


def test_a_damaged_member_of_a_deflated_zip_is_reported(tmp_path):
    prefix = tmp_path / "NYU_FCRN.ckpt"
    write_checkpoint(prefix, {"conv1/biases": np.linspace(0, 1, 4096, dtype=np.float32)})
    archive = tmp_path / "NYU_FCRN-checkpoint.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for suffix in (".index", ".data-00000-of-00001"):
            zf.write(f"{prefix}{suffix}", f"NYU_FCRN.ckpt{suffix}")
    raw = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:  # flip bytes in the middle of the data member's deflate stream
        info = zf.getinfo("NYU_FCRN.ckpt.data-00000-of-00001")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for pos in range(start + 10, start + info.compress_size - 10, 7):
        raw[pos] ^= 0x5A
    archive.write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="is damaged .*delete it and fetch again"):
        fw.convert(archive, tmp_path / "o.onnx")


def test_a_conversion_that_cannot_be_written_leaves_no_partial_file(weights, tmp_path):
    src = tmp_path / "NYU_ResNet-UpProj.npy"
    write_npy(src, weights)
    (tmp_path / "taken.onnx").mkdir()  # the rename onto a folder fails after the whole model is written
    with pytest.raises(ModelError, match="cannot write the converted model"):
        fw.convert(src, tmp_path / "taken.onnx")
    assert not list(tmp_path.glob("*.part"))
