"""Mends the end of a video track that FFmpeg's hybrid MP4 (7.1) cuts one picture short, or, where the last
picture comes after a pause, short of that picture.

When the file is turned from fragments into a regular MP4, the track ends where the last fragment's
pictures end. With B-frames the last picture shown is stored before the pictures that refer to it; when
a fragment boundary falls between the two, the last fragment ends before that picture ends, the edit list
stops short of it and players drop it (the synthetic portrait at 31, 91, 121 or 151 frames at 30 fps).
The sample tables are right; only the durations in the headers are short. They are computed here from
the tables (every picture's composition time plus its duration) and written in place, field for field.

Also cuts the text tracks (subtitles, the QuickTime chapter track that FFmpeg writes with the header) where the
pictures end, and clears the enabled flag of subtitle tracks that the input did not show by default.
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
    # each box not opened, by its type: where its payload starts and where it ends, in the moov's payload
    leaves: dict[bytes, tuple[int, int]] = field(default_factory=dict)


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


def _read_track(data: bytes, start: int, end: int, base: int, track: _Track,
                tables_of: set[bytes] | None = None) -> None:
    """Read a trak's boxes into `track`; the sample times (stts, ctts) only of the tracks whose handler is in
    `tables_of` (all for None): a long video's take a tenth of a second to read."""
    for kind, at, stop in _boxes(data, start, end):
        if kind not in CONTAINERS:
            track.leaves.setdefault(kind, (at, stop))
        if kind in (b"stts", b"ctts") and tables_of is not None and track.handler not in tables_of:
            continue  # the handler (mdia's hdlr) comes before the sample tables (mdia/minf/stbl)
        if kind in CONTAINERS:
            _read_track(data, at, stop, base, track, tables_of)
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
    time scale. The end is that of the picture shown last, or of the one stored last where it lasts longer (a long
    last picture stored before others: the writer gives the last packet the rest). Not any picture's: a sample's
    duration is the gap to the next one's decoding time, which lags two pictures behind with B-frames, so a copy
    held through a long pause (the last picture of 4 h shown again) seemed to last to 5.7 h."""
    counts, deltas = (np.array(column, np.int64) for column in zip(*track.stts))
    durations = np.repeat(deltas, counts)
    starts = np.concatenate(([0], np.cumsum(durations)[:-1]))
    if track.ctts:
        counts, offsets = (np.array(column, np.int64) for column in zip(*track.ctts))
        offsets = np.repeat(offsets, counts)
        if len(offsets) == len(starts):
            starts = starts + offsets
    shown_last = int(np.argmax(starts))
    end = max(starts[shown_last] + durations[shown_last], starts[-1] + durations[-1])
    return int(end), int(durations.sum()), int(durations.max())


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


def _moov_payload(file) -> tuple[int, bytes] | None:
    """(where the moov's payload starts in the file, the payload), or None where the file has no moov."""
    moov = _find_moov(file)
    if moov is None:
        return None
    base, size = moov
    file.seek(base)
    return base, file.read(size)


def mend_last_picture(path: Path) -> bool:
    """Extend the video track's edit to its last picture where the headers stop short of it; True if they did."""
    with open(path, "r+b") as file:
        moov = _moov_payload(file)
        if moov is None:
            return False
        base, data = moov
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


# The tracks of lines: subtitles (mov_text's sbtl, QuickTime's text, DVD's subp) and the QuickTime chapter track (text)
TEXT_HANDLERS = {b"sbtl", b"text", b"subp"}
# Per-sample boxes other than those cut (stts, stsz, stsc, stco or co64, stss, ctts): a text track with one (sample
# groups, dependencies) is left as it is
OTHER_SAMPLE_BOXES = {b"stz2", b"sdtp", b"sbgp", b"subs", b"stdp", b"stps", b"saiz", b"saio"}
TRACK_ENABLED = 1  # tkhd's flag


def end_text_tracks(path: Path, seconds: float | None = None) -> bool:
    """Cut the text tracks (subtitles, the QuickTime chapter track) at `seconds` on the movie's timeline (a stopped
    run's last picture), else where its pictures and sound end: a sample starting there or later is left out and one
    across it ends there. FFmpeg's MP4 muxer writes the chapter track with the header, every chapter in it, and
    gives a line's closing empty sample the line's length: Apple's players listed chapters the file does not reach,
    and the file lasted up to a line longer than its pictures. The moov, which changes size, is written again: in
    place where it ends the file (FFmpeg writes it last), else only where it shrinks, a free box after it. True if
    a track was cut."""
    with open(path, "r+b") as file:
        found = _moov_box(file)
        if found is None:
            return False
        start, header, size, last = found
        file.seek(start + header)
        data = file.read(size - header)
        movie_scale, mvhd, tracks = 0, (0, 0), []
        for kind, at, stop in _boxes(data, 0, len(data)):
            if kind == b"mvhd":
                movie_scale, mvhd = _time_scale(data, at), (at, stop)
            elif kind == b"trak":
                tracks.append(_Track())
                _read_track(data, at, stop, 0, tracks[-1], TEXT_HANDLERS)
        if not movie_scale:
            return False
        if seconds is not None:
            ticks = round(seconds * movie_scale)
        else:
            ends = [track.duration.value for track in tracks if track.handler in (b"vide", b"soun") and track.duration]
            if not ends:
                return False
            ticks = max(ends)
        replace: dict[int, bytes] = {}
        lengths = [track.duration.value if track.duration else 0 for track in tracks]
        for index, track in enumerate(tracks):
            if track.handler in TEXT_HANDLERS and lengths[index] > ticks:
                lengths[index] = _cut_track(data, track, movie_scale, ticks, replace) or lengths[index]
        if not replace:
            return False
        replace[mvhd[0]] = _with_duration(data, mvhd, 12, 20, max(lengths))
        return _write_moov(file, start, size, last, _rebuilt(b"moov", data, 0, len(data), replace))


def _moov_box(file) -> tuple[int, int, int, bool] | None:
    """(where the moov starts, its header's size, its size, whether it ends the file)."""
    found = _find_moov(file)
    if found is None:
        return None
    payload, size = found
    file.seek(0, 2)
    length = file.tell()
    for header in (8, 16):
        file.seek(payload - header)
        if file.read(8)[4:] == b"moov":
            return payload - header, header, size + header, payload + size >= length
    return None


def _cut_track(data: bytes, track: _Track, movie_scale: int, ticks: int, replace: dict[int, bytes]) -> int | None:
    """Put into `replace` the payloads that cut `track` at `ticks` of the movie's time scale; its new duration there
    (None where it is left as it is: an edit list other than one edit after an optional empty one, other sample
    boxes, no sample before the cut)."""
    leaves, scale = track.leaves, track.media_scale
    if not scale or OTHER_SAMPLE_BOXES & set(leaves) or b"stts" not in leaves or b"stsz" not in leaves \
            or b"stsc" not in leaves or (b"stco" in leaves) == (b"co64" in leaves):
        return None
    edits = _edits(data, leaves[b"elst"][0]) if b"elst" in leaves else [(0, 0)]
    if len(edits) == 2 and edits[0][1] == -1:
        empty, (_, media_time) = edits[0][0], edits[1]
    elif len(edits) == 1 and edits[0][1] >= 0:
        empty, media_time = 0, edits[0][1]
    else:
        return None
    durations = _expand(track.stts)
    starts = np.concatenate(([0], np.cumsum(durations)[:-1])).astype(np.int64)
    cut = (ticks - empty) * scale // movie_scale + media_time  # in the media's time
    kept = int(np.count_nonzero(starts < cut))
    if not kept:
        return None
    durations = durations[:kept].copy()
    durations[-1] = min(durations[-1], cut - starts[kept - 1])
    media = int(durations.sum())
    shown = max(0, math.ceil((media - media_time) * movie_scale / scale))
    length = empty + shown
    at = {kind: box[0] for kind, box in leaves.items()}
    replace[at[b"stts"]] = _table(_runs(durations.tolist()))
    replace[at[b"stsz"]] = _sizes(data, at[b"stsz"], kept)
    chunks = _chunks(data, at[b"stsc"], kept)
    replace[at[b"stsc"]] = _table(_runs_of_chunks(chunks), width=3)
    offsets = b"stco" if b"stco" in leaves else b"co64"
    replace[at[offsets]] = _offsets(data, at[offsets], len(chunks), 4 if offsets == b"stco" else 8)
    if b"stss" in leaves:
        syncs = [number for number in _numbers(data, at[b"stss"]) if number <= kept]
        replace[at[b"stss"]] = data[at[b"stss"]:at[b"stss"] + 4] + struct.pack(f">I{len(syncs)}I", len(syncs), *syncs)
    if b"ctts" in leaves:
        composition = _expand(track.ctts)[:kept]
        replace[at[b"ctts"]] = _table(_runs(composition.tolist()), version=data[at[b"ctts"]])
    replace[at[b"tkhd"]] = _with_duration(data, leaves[b"tkhd"], 16, 24, length)
    replace[at[b"mdhd"]] = _with_duration(data, leaves[b"mdhd"], 12, 20, media)
    if b"elst" in leaves:
        replace[at[b"elst"]] = _with_edit(data, at[b"elst"], len(edits) - 1, shown)
    return length


def _expand(runs: list[tuple[int, int]]) -> np.ndarray:
    """Each sample's value of stts's or ctts's (count, value) runs."""
    if not runs:
        return np.zeros(0, np.int64)
    counts, values = (np.array(column, np.int64) for column in zip(*runs))
    return np.repeat(values, counts)


def _edits(data: bytes, at: int) -> list[tuple[int, int]]:
    """elst's entries: (duration in the movie's time scale, media time; -1 an empty edit)."""
    count, wide = struct.unpack_from(">I", data, at + 4)[0], data[at] == 1
    step, form = (20, ">Qq") if wide else (12, ">Ii")
    return [struct.unpack_from(form, data, at + 8 + step * i) for i in range(count)]


def _with_edit(data: bytes, at: int, index: int, duration: int) -> bytes:
    """elst's payload with entry `index` lasting `duration`."""
    wide = data[at] == 1
    step = 20 if wide else 12
    end = at + 8 + step * struct.unpack_from(">I", data, at + 4)[0]
    payload = bytearray(data[at:end])
    struct.pack_into(">Q" if wide else ">I", payload, 8 + step * index, duration)
    return bytes(payload)


def _with_duration(data: bytes, box: tuple[int, int], v0: int, v1: int, duration: int) -> bytes:
    """A full box's payload with the duration that _duration finds there set to `duration`."""
    at, stop = box
    place = _duration(data, at, 0, v0, v1)
    payload = bytearray(data[at:stop])
    struct.pack_into(">I" if place.width == 4 else ">Q", payload, place.offset - at,
                     min(duration, (1 << (8 * place.width)) - 1))
    return bytes(payload)


def _runs(values: list[int]) -> list[tuple[int, ...]]:
    """(count, value) runs of `values`."""
    runs: list[list[int]] = []
    for value in values:
        if runs and runs[-1][1] == value:
            runs[-1][0] += 1
        else:
            runs.append([1, value])
    return [tuple(run) for run in runs]


def _table(entries: list[tuple[int, ...]], width: int = 2, version: int = 0) -> bytes:
    """A full box's payload of `entries`: stts's and ctts's (count, value; a ctts offset may be negative), or stsc's
    three numbers."""
    form = ">III" if width == 3 else ">Ii" if any(value < 0 for _, value in entries) else ">II"
    return bytes([version, 0, 0, 0]) + struct.pack(">I", len(entries)) + b"".join(struct.pack(form, *entry)
                                                                                 for entry in entries)


def _sizes(data: bytes, at: int, kept: int) -> bytes:
    """stsz's payload for the first `kept` samples."""
    size = struct.unpack_from(">I", data, at + 4)[0]
    head = data[at:at + 8] + struct.pack(">I", kept)
    return head if size else head + data[at + 12:at + 12 + 4 * kept]


def _numbers(data: bytes, at: int) -> list[int]:
    """A full box's list of 32-bit numbers after its count (stss)."""
    count = struct.unpack_from(">I", data, at + 4)[0]
    return list(struct.unpack_from(f">{count}I", data, at + 8))


def _chunks(data: bytes, at: int, kept: int) -> list[tuple[int, int]]:
    """(samples, description index) of each chunk that holds the first `kept` samples, the last one cut."""
    count = struct.unpack_from(">I", data, at + 4)[0]
    entries = [struct.unpack_from(">III", data, at + 8 + 12 * i) for i in range(count)]
    chunks, left = [], kept
    for index, (first, samples, description) in enumerate(entries):
        following = entries[index + 1][0] if index + 1 < len(entries) else None
        chunk = first
        while left > 0 and samples > 0 and (following is None or chunk < following):
            chunks.append((min(samples, left), description))
            left -= samples
            chunk += 1
        if left <= 0:
            break
    return chunks


def _runs_of_chunks(chunks: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """stsc's entries (first chunk, samples per chunk, description index) for `chunks`."""
    entries: list[tuple[int, int, int]] = []
    for number, (samples, description) in enumerate(chunks, 1):
        if not entries or entries[-1][1:] != (samples, description):
            entries.append((number, samples, description))
    return entries


def _offsets(data: bytes, at: int, count: int, width: int) -> bytes:
    """stco's (32-bit) or co64's (64-bit) payload for the first `count` chunks."""
    return data[at:at + 4] + struct.pack(">I", count) + data[at + 8:at + 8 + width * count]


def _rebuilt(kind: bytes, data: bytes, start: int, end: int, replace: dict[int, bytes]) -> bytes:
    """Box `kind` whose payload is data[start:end], the leaves in `replace` (by where their payload starts) given
    their new payloads and every box around them its new size."""
    parts, position = [], start  # the boxes follow one another: each begins where the one before ends
    for child, at, stop in _boxes(data, start, end):
        if child in CONTAINERS and any(at <= place < stop for place in replace):
            parts.append(_rebuilt(child, data, at, stop, replace))
        elif at in replace:
            parts.append(struct.pack(">I4s", 8 + len(replace[at]), child) + replace[at])
        else:
            parts.append(data[position:stop])
        position = stop
    payload = b"".join(parts)
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _write_moov(file, start: int, size: int, last: bool, moov: bytes) -> bool:
    """Write the new moov over the old one: where it ends the file, the file ends with it; else only where it leaves
    room for a free box over the rest."""
    room = size - len(moov)
    if not last and room != 0 and room < 8:
        return False
    file.seek(start)
    file.write(moov)
    if room >= 8:  # what is left of the old one: nothing a reader takes for a box
        file.write(struct.pack(">I4s", room, b"free"))
    if last:
        file.truncate(start + len(moov))
    return True


def disable_tracks(path: Path, indices: set[int]) -> bool:
    """Clear the enabled flag (tkhd's) of the text tracks at `indices`, their places in the moov (the streams'
    order). FFmpeg's MP4 muxer enables the first track of each kind where none is the default one, and its demuxer
    reads an enabled track as the default one, as QuickTime shows an enabled subtitle track without being asked:
    subtitles the input did not show by default were shown. True if a flag was cleared."""
    with open(path, "r+b") as file:
        moov = _moov_payload(file)
        if moov is None:
            return False
        base, data = moov
        places = []
        for index, (kind, at, stop) in enumerate(box for box in _boxes(data, 0, len(data)) if box[0] == b"trak"):
            track = _Track()
            _read_track(data, at, stop, base, track, tables_of=set())
            if index in indices and track.handler in TEXT_HANDLERS and b"tkhd" in track.leaves:
                flags = track.leaves[b"tkhd"][0] + 3  # the low byte of its 24-bit flags: 1 is enabled
                if data[flags] & TRACK_ENABLED:
                    places.append((base + flags, data[flags] & ~TRACK_ENABLED))
        for offset, value in places:
            file.seek(offset)
            file.write(bytes([value]))
        return bool(places)


# The vendor of a MOV's ProRes sample description: Apple's, as Final Cut and Compressor write it (FFmpeg's muxer writes
# its own, FFMP, whatever the stream's metadata says), beside prores_aw's frame headers' apl0 (encoder_options)
PRORES_VENDOR = b"appl"
PRORES_ENTRIES = {b"apch", b"apcn", b"apcs", b"apco", b"ap4h", b"ap4x"}


def mark_prores_vendor(path: Path) -> bool:
    """Write Apple's vendor code (PRORES_VENDOR) into a MOV's ProRes sample descriptions, which QC tools read (ffprobe's
    vendor_id) and FFmpeg writes as FFMP. True if one was written."""
    with open(path, "r+b") as file:
        moov = _moov_payload(file)
        if moov is None:
            return False
        base, data = moov
        places = [base + at + 12 for at in _sample_entries(data, 0, len(data)) if data[at - 4:at] in PRORES_ENTRIES]
        for offset in places:  # after the entry's reserved bytes, data reference index, version and revision
            file.seek(offset)
            file.write(PRORES_VENDOR)
        return bool(places)


def _sample_entries(data: bytes, start: int, end: int) -> list[int]:
    """Where each sample description's payload starts, in the moov's payload data[start:end]."""
    found = []
    for kind, at, stop in _boxes(data, start, end):
        if kind in (b"trak", b"mdia", b"minf", b"stbl"):
            found += _sample_entries(data, at, stop)
        elif kind == b"stsd":  # version and flags, the entry count, then the entries
            found += [entry for _, entry, _ in _boxes(data, at + 8, stop)]
    return found
