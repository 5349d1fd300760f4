"""What a video file's own bytes say where FFmpeg's reading cannot tell: an MP4's top-level boxes (its index missing,
cut short, or its media data empty), a Matroska file's elements (whole, with no picture), an FLV's tagged duration.
Read from the file's first bytes or boxes only, never from a pipe (its bytes are read once)."""
from __future__ import annotations

import math
import os
import struct
from pathlib import Path
from typing import Any

from stream.video_writer import readable_again


FLV_HEAD_READ = 4096  # an FLV's first tag, its onMetaData, is a few hundred bytes
FLV_DURATION_KEY = b"\x00\x08duration\x00"  # AMF0: the key's length and name, then a number's type marker


def flv_tagged_duration(path: Path) -> float | None:
    """The duration an FLV's onMetaData gives (FFmpeg's muxer: where its last packet ends), None where it gives none
    (0: written to a pipe) or the file cannot be read again."""
    if not readable_again(path):
        return None
    try:
        with open(path, "rb") as file:
            head = file.read(FLV_HEAD_READ)
    except OSError:
        return None
    if head[:3] != b"FLV" or len(head) < 24 or head[13] != 18:  # 18: a script data tag
        return None
    data = head[24:24 + int.from_bytes(head[14:17], "big")]
    at = data.find(FLV_DURATION_KEY) + len(FLV_DURATION_KEY)
    if at < len(FLV_DURATION_KEY) or at + 8 > len(data):
        return None
    seconds = struct.unpack(">d", data[at:at + 8])[0]
    return seconds if math.isfinite(seconds) and seconds > 0 else None


MP4_BOXES_READ = 64  # top-level boxes looked at for an unfinished MP4 (a recording has a handful)


def mp4_without_index(path: Path) -> bool:
    """Whether `path` is an MP4 or MOV whose pictures (mdat) are there but not its index (moov), as a camera or a
    screen recorder leaves the file it is still writing, or one that a crash cut off. A fragmented MP4 has
    moof boxes and reads without a moov: not counted."""
    boxes = {kind for kind, _ in _top_boxes(path)[0]}
    return b"ftyp" in boxes and b"mdat" in boxes and not boxes & {b"moov", b"moof"}


def mp4_index_cut(path: Path) -> bool:
    """Whether `path` is an MP4 or MOV cut short inside its index (its moov box, last): a copy or download not
    finished, which FFmpeg cannot open."""
    boxes, size_on_disk = _top_boxes(path)
    return bool(boxes) and boxes[0][0] == b"ftyp" and boxes[-1][0] == b"moov" and boxes[-1][1] > size_on_disk


def mp4_empty(path: Path) -> bool:
    """Whether `path` is an MP4 or MOV whose media data (its mdat boxes) holds nothing: FFmpeg, given no picture,
    writes one so, its index listing no track (which read as a damaged index)."""
    boxes, _ = _top_boxes(path)
    starts = [0] + [end for _, end in boxes[:-1]]
    data = [end - start for (kind, end), start in zip(boxes, starts) if kind == b"mdat"]
    return any(kind == b"moov" for kind, _ in boxes) and bool(data) and all(size == 8 for size in data)


EBML_HEADER, MATROSKA_SEGMENT = 0x1A45DFA3, 0x18538067
MATROSKA_TRACKS, MATROSKA_CLUSTER = 0x1654AE6B, 0x1F43B675  # the track list; a cluster holds pictures (blocks)
MATROSKA_ELEMENTS_READ = 64  # a segment's top-level elements looked at before its first cluster (a handful)


def matroska_empty(path: Path) -> bool:
    """Whether `path` is a Matroska or WebM file that is whole up to its track list and holds no picture: its
    segment's top-level elements (a track list among them, no cluster) end where the segment says it ends, and the
    file with it (or the segment's size is unknown, a recording not closed, and the file ends on an element's end).
    FFmpeg, finding no cluster, says "End of file", as for one cut short. Not a pipe: its bytes are read once."""
    if not readable_again(path):
        return False
    try:
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            header = _ebml_element(file)
            if header is None or header[0] != EBML_HEADER:
                return False
            file.seek(header[2])
            segment = _ebml_element(file)
            if segment is None or segment[0] != MATROSKA_SEGMENT:
                return False
            end = size if segment[2] is None else segment[2]
            if end != size:  # cut short (its segment runs on), or more after it (another segment)
                return False
            kinds = _ebml_children(file, end)
    except OSError:  # a pipe, a file gone
        return False
    return kinds is not None and MATROSKA_TRACKS in kinds and MATROSKA_CLUSTER not in kinds


def _ebml_children(file: Any, end: int) -> set[int] | None:
    """The kinds (IDs) of the elements from `file`'s place up to byte `end`, where they end exactly; None where one
    runs past it, its size is unknown (a live cluster), or there are more than MATROSKA_ELEMENTS_READ."""
    kinds: set[int] = set()
    for _ in range(MATROSKA_ELEMENTS_READ):
        if file.tell() == end:
            return kinds
        element = _ebml_element(file)
        if element is None or element[2] is None or element[2] > end:
            return None
        kinds.add(element[0])
        file.seek(element[2])
    return None


def _ebml_element(file: Any) -> tuple[int, int, int | None] | None:
    """The EBML element at `file`'s place: its ID, where its data starts and where it ends (None: unknown size);
    None where the bytes are no element header."""
    start = file.tell()
    head = file.read(12)
    kind, length = _ebml_number(head, 4, keep_marker=True)
    if kind is None:
        return None
    size, size_length = _ebml_number(head[length:], 8, keep_marker=False)
    if size is None:
        return None
    data = start + length + size_length
    unknown = size == (1 << 7 * size_length) - 1  # all ones: a size not known when written
    return kind, data, None if unknown else data + size


def _ebml_number(data: bytes, longest: int, keep_marker: bool) -> tuple[int | None, int]:
    """An EBML variable-length number at the start of `data` (an ID keeps its length marker, a size does not), and
    its length in bytes; None where it is longer than `longest` or cut off."""
    if not data or not data[0]:
        return None, 0
    length = 9 - data[0].bit_length()
    if length > longest or len(data) < length:
        return None, 0
    value = int.from_bytes(data[:length], "big")
    return (value if keep_marker else value & (1 << 7 * length) - 1), length  # a size: its marker bit off


def _top_boxes(path: Path) -> tuple[list[tuple[bytes, int]], int]:
    """The top-level boxes of an MP4 or MOV (each one's kind and the byte where it ends; 0: it runs to the end of
    the file), up to MP4_BOXES_READ, and the file's size; none where it cannot be read again (a pipe, whose bytes
    were the demuxer's) or at all."""
    boxes: list[tuple[bytes, int]] = []
    if not readable_again(path):
        return boxes, 0
    try:
        with open(path, "rb") as handle:
            size_on_disk = os.fstat(handle.fileno()).st_size
            at = 0
            for _ in range(MP4_BOXES_READ):
                handle.seek(at)
                head = handle.read(16)
                if len(head) < 8:
                    break
                size, kind = struct.unpack(">I4s", head[:8])
                if size == 1 and len(head) == 16:  # a 64-bit size follows (a large mdat)
                    size = struct.unpack(">Q", head[8:])[0]
                boxes.append((kind, at + size if size else 0))
                if size < 8 or at + size >= size_on_disk:  # 0: up to the end of the file (still being written)
                    break
                at += size
    except OSError:  # unreadable: nothing to tell
        return [], 0
    return boxes, size_on_disk
