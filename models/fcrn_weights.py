"""Official FCRN weights: read the TF checkpoint or the NumPy pickle (no TensorFlow), convert to ONNX.

Sources (Laina et al., NYU Depth v2, ResNet-50 UpProj):

- ``NYU_FCRN.ckpt.index`` + ``NYU_FCRN.ckpt.data-00000-of-00001``: a TF tensor bundle. The index
  is a TF "table" (LevelDB SSTable) mapping each variable name to a ``BundleEntryProto`` (dtype,
  shape, offset and size in the data file); the data file holds the raw little-endian tensors.
- ``NYU_FCRN-checkpoint.zip``: the two files above (and ``.meta``), as mirrored by OpenVINO's Open
  Model Zoo (``fcrn-dp-nyu-depth-v2-tf``), which also publishes its sha256.
- ``NYU_ResNet-UpProj.npy``: a pickled ``{layer: {weights, biases, scale, offset, mean, variance}}``.

All of them hold HWIO kernels named like ``layer2x_br1_ConvB/weights``; `models.fcrn` builds the
graph from them.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import re
import secrets
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import onnx

from models.download import ModelError, download, verify_sha256
from models.fcrn import build_fcrn, check_weights
from models.protobuf_wire import field_header, proto_fields, varint
from models.registry import cache_entry_at, get_spec, record_checksum, recorded_checksum
from stream.console import command_word

# The Open Model Zoo mirror of the authors' checkpoint (models/public/fcrn-dp-nyu-depth-v2-tf/model.yml).
OFFICIAL_URL = get_spec("fcrn").url  # the registry holds the address and checksum
OFFICIAL_SHA256 = get_spec("fcrn").sha256
OFFICIAL_SIZE = 472_588_519
OFFICIAL_ARCHIVE = "NYU_FCRN-checkpoint.zip"
ONNX_NAME = "fcrn_nyu_depth_v2.onnx"  # models/registry.py's filename for "fcrn"
ONNX_FP16_NAME = "fcrn_nyu_depth_v2_fp16.onnx"

# The official graph also saves the integer index tensors of its interleave (tf.Variable
# 'x_0'..'x_3', uniquified as 'x_0_1', ...) and possibly a step counter: not network parameters.
_CKPT_NON_PARAMETERS = re.compile(r"^(x_[0-3](_\d+)?|global_step)$")

# TF DataType enum values -> little-endian NumPy dtypes (the ones a checkpoint of this model holds).
_TF_DTYPES: dict[int, str] = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 6: "i1", 9: "<i8", 10: "?", 19: "<f2"}


class BundleEntry:
    """One BundleEntryProto: where a tensor lies in the data shard."""

    __slots__ = ("dtype", "shape", "shard_id", "offset", "size", "sliced")

    def __init__(self, raw: bytes) -> None:
        self.dtype, self.shape, self.shard_id, self.offset, self.size, self.sliced = 0, (), 0, 0, 0, False
        for field, value in proto_fields(raw):
            if field == 1:
                self.dtype = value
            elif field == 2:  # TensorShapeProto: repeated Dim dim = 2 {int64 size = 1}
                dims = []
                for f, dim in proto_fields(value):
                    if f == 2:
                        dims.append(next((v for ff, v in proto_fields(dim) if ff == 1), 0))
                self.shape = tuple(dims)
            elif field == 3:
                self.shard_id = value
            elif field == 4:
                self.offset = value
            elif field == 5:
                self.size = value
            elif field == 7:
                self.sliced = True


# --------------------------------------------------------------------------------------------
# TF table (LevelDB SSTable) reading: footer -> index block -> data blocks -> (key, value).
# --------------------------------------------------------------------------------------------

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48  # two BlockHandles padded to 40 bytes, then the 8-byte magic
_BLOCK_TRAILER = 5  # compression type byte + crc32c


def _block(table: bytes, handle: bytes | tuple[int, int]) -> bytes:
    if isinstance(handle, bytes):
        offset, pos = varint(handle, 0)
        size, _ = varint(handle, pos)
    else:
        offset, size = handle
    if offset + size + _BLOCK_TRAILER > len(table):
        raise ValueError("block handle points past the end of the file")
    compression = table[offset + size]
    if compression != 0:
        raise ValueError(f"compressed table block (type {compression}); TF writes bundle indexes uncompressed")
    return table[offset:offset + size]


def _block_entries(block: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Entries of one block: keys are prefix-compressed against the previous key."""
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * num_restarts
    pos, key = 0, b""
    while pos < end:
        shared, pos = varint(block, pos)
        unshared, pos = varint(block, pos)
        value_len, pos = varint(block, pos)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + value_len]
        pos += value_len


def read_table(table: bytes) -> dict[bytes, bytes]:
    """All key/value pairs of a TF table file."""
    if len(table) < _FOOTER_SIZE:
        raise ValueError("file too short for a TF table")
    footer = table[-_FOOTER_SIZE:]
    if struct.unpack_from("<Q", footer, 40)[0] != _TABLE_MAGIC:
        raise ValueError("not a TF table (bad magic number)")
    _, pos = varint(footer, 0)  # metaindex handle: offset, size (unused)
    _, pos = varint(footer, pos)
    index_offset, pos = varint(footer, pos)
    index_size, _ = varint(footer, pos)
    entries: dict[bytes, bytes] = {}
    for _, data_handle in _block_entries(_block(table, (index_offset, index_size))):
        entries.update(_block_entries(_block(table, data_handle)))
    return entries


def read_bundle_index(index: bytes) -> dict[str, BundleEntry]:
    """Variable name -> BundleEntry from a ``.ckpt.index`` file's bytes."""
    table = read_table(index)
    header = dict(proto_fields(table.pop(b"", b"")))
    if header.get(1, 1) != 1:
        raise ValueError(f"sharded checkpoint ({header[1]} shards); expected one data file")
    if header.get(2, 0) != 0:
        raise ValueError("big-endian checkpoint")
    return {key.decode("utf-8"): BundleEntry(value) for key, value in table.items()}


def _read_bundle(index: bytes, open_data: Callable[[], BinaryIO], source: str) -> dict[str, np.ndarray]:
    try:
        entries = read_bundle_index(index)
    except (ValueError, IndexError, TypeError, struct.error, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read the checkpoint index of {source}: {exc} "
                         f"(the .index file is corrupt or not a TF checkpoint; fetch it again)") from exc
    weights: dict[str, np.ndarray] = {}
    with open_data() as data:
        # Ascending offsets: every seek is forward, cheap even inside a zip member.
        for name, entry in sorted(entries.items(), key=lambda item: item[1].offset):
            dtype = _TF_DTYPES.get(entry.dtype)
            if _CKPT_NON_PARAMETERS.match(name) or (dtype is not None and np.dtype(dtype).kind not in "f"):
                continue
            if dtype is None or entry.sliced or entry.shard_id != 0:
                raise ModelError(f"cannot read variable {name} of {source}: unsupported TF dtype {entry.dtype} "
                                 f"or partitioned variable (expected the official float32 checkpoint)")
            data.seek(entry.offset)
            raw = data.read(entry.size)
            count = int(np.prod(entry.shape, dtype=np.int64))
            if len(raw) != entry.size or entry.size != count * np.dtype(dtype).itemsize:
                raise ModelError(f"variable {name} of {source} is truncated or inconsistent with its shape "
                                 f"{entry.shape} (the .data file is corrupt or incomplete; fetch it again)")
            weights[name] = np.frombuffer(raw, dtype=dtype).reshape(entry.shape).astype(np.float32)
    return weights


def read_checkpoint(path: Path) -> dict[str, np.ndarray]:
    """Float variables of a TF checkpoint given as its prefix (``NYU_FCRN.ckpt``) or ``.index`` file."""
    prefix = Path(str(path).removesuffix(".index"))
    index, data = Path(f"{prefix}.index"), Path(f"{prefix}.data-00000-of-00001")
    for needed in (index, data):
        if not needed.is_file():
            raise ModelError(f"checkpoint file {needed} not found (a TF checkpoint needs both "
                             f"{index.name} and {data.name} side by side)")
    return _read_bundle(index.read_bytes(), lambda: open(data, "rb"), str(prefix))


def read_checkpoint_zip(path: Path) -> dict[str, np.ndarray]:
    """Float variables of the checkpoint inside a zip (e.g. the Open Model Zoo's NYU_FCRN-checkpoint.zip)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelError(f"{path} is not a readable zip archive: {exc} (delete it and fetch again)") from exc
    with archive:
        names = archive.namelist()
        indexes = [n for n in names if n.endswith(".ckpt.index")]
        if len(indexes) != 1:
            raise ModelError(f"{path} should hold exactly one *.ckpt.index, found {len(indexes)} "
                             f"(expected the official NYU_FCRN-checkpoint.zip)")
        data_name = indexes[0].removesuffix(".index") + ".data-00000-of-00001"
        if data_name not in names:
            raise ModelError(f"{path} lacks {data_name} (the archive is incomplete; delete it and fetch again)")
        try:
            return _read_bundle(archive.read(indexes[0]), lambda: archive.open(data_name), f"{path}:{indexes[0]}")
        except (zlib.error, zipfile.BadZipFile, EOFError) as exc:  # a damaged member: bad CRC or deflate stream
            raise ModelError(f"{path} is damaged ({exc}); delete it and fetch again") from exc


def read_npy(path: Path) -> dict[str, np.ndarray]:
    """Variables of the official pickle ``{layer: {param: array}}``, flattened to ``layer/param``."""
    try:
        # Written by Python 2, whose str holds the names and the raw float bytes alike. "bytes" keeps them bytes
        # (names decoded below), which each array then uses as its buffer; "latin1" made them str, and the
        # unpickler's memo held all 254 MB of them besides the arrays' own copies until the load ended.
        layers = np.load(path, allow_pickle=True, encoding="bytes").item()
    except (OSError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise ModelError(f"cannot read {path} as a NumPy pickle of FCRN weights: {exc} "
                         f"(expected NYU_ResNet-UpProj.npy)") from exc
    if not isinstance(layers, dict):
        raise ModelError(f"{path} holds a {type(layers).__name__}, not {{layer: {{param: array}}}} "
                         f"(expected NYU_ResNet-UpProj.npy)")
    weights: dict[str, np.ndarray] = {}
    for layer, params in layers.items():
        layer = layer.decode() if isinstance(layer, bytes) else str(layer)
        if not isinstance(params, dict):
            raise ModelError(f"{path}: layer {layer} holds a {type(params).__name__}, not {{param: array}}")
        for param, value in params.items():
            param = param.decode() if isinstance(param, bytes) else str(param)
            weights[f"{layer}/{param}"] = np.asarray(value)
    return weights


def read_weights(src: Path) -> dict[str, np.ndarray]:
    """Validated official weights from a .npy pickle, a checkpoint prefix/.index, or the checkpoint zip."""
    src = Path(src)
    if src.suffix == ".npy" and src.is_file():
        weights = read_npy(src)
    elif src.suffix == ".zip" and src.is_file():
        weights = read_checkpoint_zip(src)
    elif src.suffix == ".index" or Path(f"{src}.index").is_file():  # a checkpoint is named by its prefix
        weights = read_checkpoint(src)
    elif not src.exists():
        raise ModelError(f"{src} not found (give NYU_ResNet-UpProj.npy, NYU_FCRN.ckpt[.index] "
                         f"or NYU_FCRN-checkpoint.zip)")
    elif src.suffix.lower() == ".onnx":  # a user's own model: `models convert` only turns FCRN's weights into ONNX
        raise ModelError(f"{src.name} is already an ONNX model: nothing to convert; run it with --model "
                         f"{command_word(str(src))} (models convert takes FCRN's official weights: "
                         f"NYU_ResNet-UpProj.npy, NYU_FCRN.ckpt[.index] or NYU_FCRN-checkpoint.zip)")
    else:
        raise ModelError(f"{src.name}: unknown FCRN weight format (give NYU_ResNet-UpProj.npy, "
                         f"NYU_FCRN.ckpt[.index] or NYU_FCRN-checkpoint.zip)")
    return check_weights(weights, source=f"the weights in {src.name}")


def save_model(model: onnx.ModelProto, out: Path) -> Path:
    """Write atomically (temp file + rename) so an interrupted conversion never leaves a half file.

    The file is written a tensor at a time (`_write_model`): SerializeToString made the whole 254 MB as one
    buffer and then copied it into a bytes object, twice the model besides the model itself. It gets the
    permissions of any new file (`_new_partial`). Written into the cache under its registry name, its checksum
    is recorded afresh: an earlier file's would make it read as damaged.
    """
    out = Path(out)
    partial: Path | None = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        partial, handle = _new_partial(out)
        with handle:
            digest = _write_model(model, handle)
        into_cache = cache_entry_at(out) is not None  # `models convert -o` into the cache, or `models fetch`
        if into_cache:  # first: a crash before the new checksum is written leaves the file to be parsed, not refused
            recorded_checksum(out).unlink(missing_ok=True)
        partial.replace(out)
        partial = None
        if into_cache:
            record_checksum(out, digest)
    except OSError as exc:
        raise ModelError(f"cannot write the converted model {out}: {exc.strerror or exc}; "
                         f"choose another place") from None
    finally:
        if partial is not None:
            partial.unlink(missing_ok=True)  # never leave a quarter-gigabyte .part behind, nor after Ctrl-C
    return out


def _new_partial(out: Path) -> tuple[Path, BinaryIO]:
    """A new file beside `out` to write it into, made as any new file is (0666 less the umask: tempfile's are
    0600, which the rename kept, so nobody else could read a model converted into a shared folder)."""
    for _ in range(100):
        partial = out.with_name(f"{out.name}.{secrets.token_hex(4)}.part")
        try:
            return partial, os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb")
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {out}")


def _write_model(model: onnx.ModelProto, handle: BinaryIO) -> str:
    """Write `model.SerializeToString()`'s bytes with one tensor serialised at a time; their sha256.

    Protobuf writes fields in the order of their numbers: the model's fields before its graph (7), the graph's
    before its initializers (5), the initializers, then the rest of each."""
    digest = hashlib.sha256()

    def write(raw: bytes) -> None:
        handle.write(raw)
        digest.update(raw)

    model_head, model_tail = _split_at(model, 7)
    graph_head, graph_tail = _split_at(model.graph, 5)
    tensors = [(tensor, tensor.ByteSize()) for tensor in model.graph.initializer]
    graph_size = (graph_head.ByteSize() + graph_tail.ByteSize()
                  + sum(len(field_header(5, size)) + size for _, size in tensors))
    write(model_head.SerializeToString() + field_header(7, graph_size) + graph_head.SerializeToString())
    for tensor, size in tensors:
        write(field_header(5, size) + tensor.SerializeToString())
    write(graph_tail.SerializeToString() + model_tail.SerializeToString())
    return digest.hexdigest()


def _split_at(message, number: int):
    """Two copies of `message`: its fields numbered below `number`, and those above; field `number` in neither."""
    head, tail = type(message)(), type(message)()
    for field, value in message.ListFields():
        if field.number == number:
            continue
        part = head if field.number < number else tail
        if hasattr(value, "CopyFrom"):  # an embedded message (by value: descriptors' `label` left protobuf 7)
            getattr(part, field.name).CopyFrom(value)
        elif hasattr(value, "extend"):  # a repeated field
            getattr(part, field.name).extend(value)
        else:
            setattr(part, field.name, value)
    return head, tail


def convert(src: Path, out: Path, fp16: bool = False) -> Path:
    """Convert official FCRN weights (.npy, .ckpt prefix/.index, or the zip) into the ONNX graph at `out`."""
    return save_model(build_fcrn(read_weights(Path(src)), fp16=fp16, consume=True), Path(out))


def fetch_official(cache: Path, progress: bool = True, *, fp16: bool = False, keep_archive: bool = False) -> Path:
    """The official NYU weights as ONNX in `cache`: download (sha256-checked), convert once, reuse.

    The 472 MB archive is deleted after a successful conversion unless `keep_archive`; the ONNX
    (254 MB, or 127 MB in fp16) is what later runs load.
    """
    cache = Path(cache)
    onnx_path = cache / (ONNX_FP16_NAME if fp16 else ONNX_NAME)
    if onnx_path.is_file():
        return onnx_path
    archive = cache / OFFICIAL_ARCHIVE
    if archive.is_file():
        verify_sha256(archive, OFFICIAL_SHA256)  # one placed by hand, or kept from an earlier run
    else:
        # Offline with the weights at hand (the .npy, or the checkpoint unzipped): the conversion is the way in.
        download(OFFICIAL_URL, archive, OFFICIAL_SHA256, progress=progress,
                 otherwise=f"; or, with the official weights at hand, convert them into the cache: depthcam models "
                           f"convert NYU_FCRN.ckpt (or NYU_ResNet-UpProj.npy) -o {onnx_path}")
    convert(archive, onnx_path, fp16=fp16)
    if not keep_archive:
        archive.unlink(missing_ok=True)
    return onnx_path
