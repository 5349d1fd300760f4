"""An ONNX file's `metadata_props`, read without parsing the model.

`onnx.load` parses the whole protobuf (0.3-0.5 s and 254 MB of memory for FCRN) and an ONNX Runtime session
costs as much again; here the top-level fields of the ModelProto are walked and every field but
metadata_props (the graph and its weights) is seeked past: a few reads, under a millisecond.
"""
from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from models.protobuf_wire import proto_fields

METADATA_PROPS = 14  # ModelProto.metadata_props: repeated StringStringEntryProto {key = 1, value = 2}
MAX_ENTRY_BYTES = 1 << 20  # a key/value pair larger than this is no setting of ours: skipped, not read
MAX_TOP_LEVEL_FIELDS = 100_000  # a ModelProto has a handful; more is not an ONNX file


class _NotOnnx(Exception):
    pass


def _varint(stream: BinaryIO) -> int | None:
    """The next varint, None at a clean end of the file."""
    result = shift = 0
    while True:
        byte = stream.read(1)
        if not byte:
            if shift:
                raise _NotOnnx("truncated varint")
            return None
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise _NotOnnx("varint too long")


def _string_pair(raw: bytes) -> tuple[str, str]:
    """A StringStringEntryProto's key and value."""
    try:
        fields = {field: value for field, value in proto_fields(raw) if isinstance(value, bytes)}
    except ValueError as exc:
        raise _NotOnnx(str(exc)) from None
    return fields.get(1, b"").decode("utf-8", "replace"), fields.get(2, b"").decode("utf-8", "replace")


def read_metadata_props(path: Path) -> dict[str, str]:
    """The file's metadata_props as a dict (a repeated key: the last wins); {} for a file that is not a
    readable ONNX model, which loading the session then reports with its fix."""
    try:
        with open(path, "rb") as stream:
            size = Path(path).stat().st_size
            props: dict[str, str] = {}
            for _ in range(MAX_TOP_LEVEL_FIELDS):
                key = _varint(stream)
                if key is None:
                    return props
                field, wire = key >> 3, key & 7
                if field == 0:
                    raise _NotOnnx("field number 0")
                if wire == 0:
                    _varint(stream)
                    continue
                if wire in (1, 5):
                    skip = 8 if wire == 1 else 4
                elif wire == 2:
                    skip = _varint(stream) or 0
                    if field == METADATA_PROPS and skip <= MAX_ENTRY_BYTES:
                        raw = stream.read(skip)
                        if len(raw) != skip:
                            raise _NotOnnx("truncated metadata entry")
                        name, value = _string_pair(raw)
                        props[name] = value
                        continue
                else:
                    raise _NotOnnx(f"protobuf wire type {wire}")
                if stream.tell() + skip > size:
                    raise _NotOnnx("a field runs past the end of the file")
                stream.seek(skip, 1)
            return {}
    except (OSError, _NotOnnx):
        return {}
