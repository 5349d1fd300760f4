"""Minimal protobuf wire format, for the places that read a protobuf without its schema: a TensorFlow
checkpoint's bundle (models/fcrn_weights.py) and an ONNX file's metadata (models/metadata.py); and for writing
a converted model's file a tensor at a time (models/fcrn_weights.py)."""
from __future__ import annotations

import struct
from collections.abc import Iterator


def varint(buf: bytes, pos: int) -> tuple[int, int]:
    """The varint at `pos` and the position after it; ValueError where it is cut short or too long."""
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def proto_fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs: ints for varint/fixed fields, bytes for length-delimited."""
    pos = 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(buf, pos)
        elif wire == 1:
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 2:
            length, pos = varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
            if pos > len(buf):
                raise ValueError("truncated length-delimited field")
        elif wire == 5:
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, value


def encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field_header(number: int, length: int) -> bytes:
    """The key and length that open a length-delimited field (a string or an embedded message)."""
    return encode_varint(number << 3 | 2) + encode_varint(length)
