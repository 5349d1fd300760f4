"""Mends the end of a video track that FFmpeg's hybrid MP4 (7.1) cuts one picture short, or, where the last
picture comes after a pause, short of that picture.

When the file is turned from fragments into a regular MP4, the track ends where the last fragment's
pictures end. With B-frames the last picture shown is stored before the pictures that refer to it; when
a fragment boundary falls between the two, the last fragment ends before that picture ends, the edit list
stops short of it and players drop it (the synthetic portrait at 31, 91, 121 or 151 frames at 30 fps).
The sample tables are right; only the durations in the headers are short. They are computed here from
the tables (every picture's composition time plus its duration) and written in place, field for field.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}


@dataclass
class _Field:
    offset: int  # in the file
    width: int  # 4 or 8 bytes, big-endian, unsigned
    value: int

    def write(self, file, value: int) -> None:
        file.seek(self.offset)
        file.write(struct.pack(">I" if self.width == 4 else ">Q", value))


@dataclass
class _Track:
    handler: bytes = b""
    duration: _Field | None = None  # tkhd, movie time scale
    media_scale: int = 0
    media_duration: _Field | None = None  # mdhd
    edit: _Field | None = None  # the edit list's only entry: its duration, movie time scale
    media_time: int = -1  # where that entry starts in the media
    stts: list[tuple[int, int]] = field(default_factory=list)
    ctts: list[tuple[int, int]] = field(default_factory=list)


def _boxes(data: bytes, start: int, end: int):
    """(type, payload start, box end) of the boxes in data[start:end]."""
    position = start
    while position + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, position)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, position + 8)[0], 16
        elif size == 0:
            size = end - position
        if size < header or position + size > end:
            return
        yield kind, position + header, position + size
        position += size


def _duration(data: bytes, at: int, base: int, v0: int, v1: int) -> _Field:
    """A duration `v0` (version 0: 32 bits) or `v1` (version 1: 64 bits) bytes after a full box's flags."""
    if data[at] == 1:
        return _Field(base + at + 4 + v1, 8, struct.unpack_from(">Q", data, at + 4 + v1)[0])
    return _Field(base + at + 4 + v0, 4, struct.unpack_from(">I", data, at + 4 + v0)[0])


def _time_scale(data: bytes, at: int) -> int:
    """mvhd's and mdhd's time scale: 32 bits in both versions, after two 32- or 64-bit times."""
    return struct.unpack_from(">I", data, at + 4 + (16 if data[at] == 1 else 8))[0]


def _entries(data: bytes, at: int) -> list[tuple[int, int]]:
    """(count, value) pairs of stts or ctts; ctts offsets are read signed in both versions, as FFmpeg and
    QuickTime read them (FFmpeg writes version 0 with negative offsets too)."""
    count = struct.unpack_from(">I", data, at + 4)[0]
    return [struct.unpack_from(">Ii", data, at + 8 + 8 * i) for i in range(count)]


def _read_track(data: bytes, start: int, end: int, base: int, track: _Track) -> None:
    for kind, at, stop in _boxes(data, start, end):
        if kind in CONTAINERS:
            _read_track(data, at, stop, base, track)
        elif kind == b"tkhd":
            track.duration = _duration(data, at, base, 16, 24)
        elif kind == b"mdhd":
            track.media_scale = _time_scale(data, at)
            track.media_duration = _duration(data, at, base, 12, 20)
        elif kind == b"hdlr" and not track.handler:  # the media's; a QuickTime minf has a data handler too
            track.handler = data[at + 8:at + 12]
        elif kind == b"elst" and struct.unpack_from(">I", data, at + 4)[0] == 1:
            if data[at] == 1:
                track.edit = _Field(base + at + 8, 8, struct.unpack_from(">Q", data, at + 8)[0])
                track.media_time = struct.unpack_from(">q", data, at + 16)[0]
            else:
                track.edit = _Field(base + at + 8, 4, struct.unpack_from(">I", data, at + 8)[0])
                track.media_time = struct.unpack_from(">i", data, at + 12)[0]
        elif kind == b"stts":
            track.stts = [(count, delta & 0xFFFFFFFF) for count, delta in _entries(data, at)]
        elif kind == b"ctts":
            track.ctts = _entries(data, at)


def _presentation_end(track: _Track) -> tuple[int, int, int]:
    """(where the last picture shown ends, the sum of the sample durations, the longest), in the media's
    time scale."""
    counts, deltas = (np.array(column, np.int64) for column in zip(*track.stts))
    durations = np.repeat(deltas, counts)
    starts = np.concatenate(([0], np.cumsum(durations)[:-1]))
    if track.ctts:
        counts, offsets = (np.array(column, np.int64) for column in zip(*track.ctts))
        offsets = np.repeat(offsets, counts)
        if len(offsets) == len(starts):
            starts = starts + offsets
    return int((starts + durations).max()), int(durations.sum()), int(durations.max())


def _muxer_fault(track: _Track, movie_scale: int, needed: int, longest: int) -> bool:
    """Whether the edit stops short of the pictures the way the muxer cuts it: a picture or two short, or, after a
    pause before the last picture (a variable frame rate), where the pictures before the pause end, the media's own
    duration at most two pictures longer than the edit (FFmpeg 7.1: as long; FFmpeg 8: one picture longer). An
    edit far shorter than its own media is a cut made on purpose, left alone."""
    edit, two_pictures = track.edit.value, math.ceil(2 * longest * movie_scale / track.media_scale)
    if needed <= edit:
        return False
    if needed <= edit + two_pictures:
        return True
    return (edit + two_pictures) * track.media_scale >= track.media_duration.value * movie_scale


def _find_moov(file) -> tuple[int, int] | None:
    """(where the moov's payload starts, its size): top-level headers only, the media data skipped."""
    file.seek(0, 2)
    length = file.tell()
    position = 0
    while position + 8 <= length:
        file.seek(position)
        size, kind = struct.unpack(">I4s", file.read(8))
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", file.read(8))[0], 16
        elif size == 0:
            size = length - position
        if size < header:
            return None
        if kind == b"moov":
            return position + header, min(size, length - position) - header
        position += size
    return None


def mend_last_picture(path: Path) -> bool:
    """Extend the video track's edit to its last picture where the headers stop short of it; True if they did."""
    with open(path, "r+b") as file:
        moov = _find_moov(file)
        if moov is None:
            return False
        base, size = moov
        file.seek(base)
        data = file.read(size)
        movie_scale, movie_duration = 0, None
        tracks = []
        for kind, at, stop in _boxes(data, 0, len(data)):
            if kind == b"mvhd":
                movie_scale = _time_scale(data, at)
                movie_duration = _duration(data, at, base, 12, 20)
            elif kind == b"trak":
                tracks.append(_Track())
                _read_track(data, at, stop, base, tracks[-1])
        mended = False
        for track in tracks:
            if (track.handler != b"vide" or not track.stts or track.edit is None or track.media_time < 0
                    or not track.media_scale or not movie_scale or None in (track.duration, track.media_duration)):
                continue
            end, total, longest = _presentation_end(track)
            needed = math.ceil((end - track.media_time) * movie_scale / track.media_scale)
            if not _muxer_fault(track, movie_scale, needed, longest):
                continue
            writes = [(track.edit, needed), (track.duration, max(track.duration.value, needed)),
                      (track.media_duration, max(track.media_duration.value, total))]
            if movie_duration is not None and needed > movie_duration.value:
                writes.append((movie_duration, needed))
            if any(value >= 1 << (8 * place.width) for place, value in writes):
                continue  # every field is checked before any is written
            for place, value in writes:
                place.write(file, value)
                place.value = value
            mended = True
        return mended
