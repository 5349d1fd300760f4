"""Writing video files with PyAV: the container's own codec (H.264, VP9 in WebM, MPEG-4 in AVI) or the one asked
(OUTPUT_CODECS: HEVC, ProRes 422 HQ, lossless FFV1), the input's audio kept.

Timing. The output's zero is the first picture's presentation time, and the audio is shifted by the
same amount, so the input's audio-to-video offset is kept exactly; audio that ends before the first
picture is dropped (and, where the first picture is far into an MP4, MOV or Matroska file, a part, not read:
the sound is reached by a jump). (The first picture rather than the earliest audio, because every container,
AVI included, and every player start a video at its first picture, and the pictures are the content.)
Frames are timed by their own presentation times on a fine clock, so a variable frame rate is kept
(AVI has no timestamps: there frames snap to the nominal rate); frames without a time (a camera)
are timed by their count. A picture given its own duration lasts as long (a GIF's long last picture; AVI
excepted), else one nominal frame period.

Tags. The input's container tags are kept where the output's container holds them: its creation time (photo
apps sort by it; AVI holds its date only), location (Android's, in MP4 as 3GPP's loci; an iPhone's QuickTime
keys as mdta keys), title, make and model; and each audio stream's language. A part from --start on is dated
when it was recorded (the creation times that much later, start_part); what names the input's own asset (a Live
Photo's content identifier) is not kept: the output is a new one. The input's timecode (a MOV's tmcd track, an MXF's
or Matroska's tag) is kept as the part's first picture's: the input's, that many pictures later (drop-frame where it
is), as a container tag, which FFmpeg's MP4 muxer writes as a tmcd track, Matroska's as a tag, AVI's as its ISMP.

Audio. Every stream of the input's, each a track with its language, title and flags, the input's default one (else
its first) the default track: each copied where the container takes its codec, else encoded again, on the pictures'
timeline (stream.audio_track).

Chapters and subtitles. The input's chapters are kept, on the output's timeline (shifted as the sound is; a
chapter outside the part taken is left out, one across its start begins at 0, one across its end ends there),
where the container holds them (all but AVI). Chapters are written when the file is closed (they are known, cut,
only then; MP4's QuickTime chapter track, written with the header, is cut then). Its subtitle streams are kept, timed
as the sound is (stream.subtitle_tracks).

Colour. BGR is converted to the codec's pictures (8-bit 4:2:0; ProRes 10-bit 4:2:2, FFV1 10-bit 4:4:4), limited
range, with accurate rounding (within a code value of the exact conversion), and tagged: matrix BT.709
from 1280 wide or over 576 lines, BT.601 below. That is what players assume for untagged video, so
players that ignore the tags agree with those that read them. Primaries and transfer are BT.709
(sRGB's). AVI carries no colour tags.
"""
from __future__ import annotations

import errno
import logging
import math
import os
import re
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Mapping, NoReturn

import numpy as np

from stream.audio_track import AudioTracks
from stream.console import rate_text
from stream.errors import UserError
from stream.images import on_white
from stream.mp4_edit_list import disable_tracks, end_text_tracks, mark_prores_vendor, mend_last_picture
from stream.paths import ensure_writable, partial_path
from stream.subtitle_tracks import SubtitleTracks
from stream.track_timeline import MP4_MAX_TICKS, MP4_SUFFIXES

log = logging.getLogger(__name__)

VIDEO_CODECS = {".mp4": "libx264", ".m4v": "libx264", ".mov": "libx264", ".mkv": "libx264",
                ".webm": "libvpx-vp9", ".avi": "mpeg4"}  # each container's own codec: what `--codec auto` writes


@dataclass(frozen=True)
class OutputCodec:
    """A codec `--codec` (output.codec) names: its encoder, the pictures it stores, the containers that hold it."""
    title: str  # as the user is told it
    encoder: str
    pix_fmt: str  # 4:2:0 8-bit to deliver; 10-bit 4:2:2 or 4:4:4 to edit and to archive
    suffixes: tuple[str, ...]
    min_side: int = 1
    # a transparent input's pictures with their alpha, where the codec holds one (None: laid on white), and the title
    # then: ProRes holds it only as 4444
    alpha_pix_fmt: str | None = None
    alpha_title: str | None = None

    def titled(self, alpha: bool) -> str:
        """The codec as the user is told it, with its alpha or not."""
        return f"{self.alpha_title or self.title} with alpha" if alpha else self.title


OUTPUT_CODECS = {
    "h264": OutputCodec("H.264", "libx264", "yuv420p", (".mp4", ".m4v", ".mov", ".mkv")),
    # FFmpeg's iPod muxer (.m4v) refuses HEVC. x265 wrote over its heap (the process aborted: "corrupted size vs.
    # prev_size") on pictures under 64 px both ways (48x32, 40x40; 64x48 and larger never, in 60 runs): refused
    # under 64 px a side
    "hevc": OutputCodec("HEVC", "libx265", "yuv420p", (".mp4", ".mov", ".mkv"), min_side=64),
    # FFmpeg's prores_aw: 4 to 5 times as fast as prores_ks at 1080p (107 against 534 ms a picture, 2 cores), at Apple's
    # 422 HQ rate (21 MB/s at 24 fps; prores_ks's 19)
    # With a transparent input's alpha: ProRes 4444, 16-bit alpha (prores_aw's frame headers are prores_ks's, alpha
    # included; 5 times as fast: 38 against 205 ms a 1080p picture)
    "prores": OutputCodec("ProRes 422 HQ", "prores_aw", "yuv422p10le", (".mov", ".mkv"),
                          alpha_pix_fmt="yuva444p10le", alpha_title="ProRes 4444"),
    # 10-bit 4:4:4: the 8-bit pictures come back exactly (4:2:0 8-bit would lose colour and round twice)
    "ffv1": OutputCodec("FFV1 (lossless)", "ffv1", "yuv444p10le", (".mkv", ".avi"), alpha_pix_fmt="yuva444p10le"),
    # its alpha read back by libvpx's decoder (FFmpeg's own vp9 decoder leaves it out)
    "vp9": OutputCodec("VP9", "libvpx-vp9", "yuv420p", (".webm", ".mkv"), alpha_pix_fmt="yuva420p"),
    # MPEG-4 Part 2 takes at most 65535 ticks a second: AVI's one tick a picture only
    "mpeg4": OutputCodec("MPEG-4 Part 2", "mpeg4", "yuv420p", (".avi",)),
}
# The input's codecs an editor works in (the decoder's name), and the codec `auto` keeps them in where the container
# holds it: an intermediate stays an intermediate (no generation loss of H.264's), a lossless input lossless.
# QuickTime Animation and PNG in MOV, motion graphics' codecs (often with alpha): ProRes (4444 with their alpha).
EDITING_CODECS = {"prores": "prores", "dnxhd": "prores", "qtrle": "prores", "png": "prores", "ffv1": "ffv1",
                  "huffyuv": "ffv1", "ffvhuff": "ffv1", "utvideo": "ffv1"}
VIDEO_CLOCK_HZ = 90_000  # MPEG's clock: fine enough for any variable frame rate
CONTAINER_OPTIONS = {
    # Every format survives a crash (kill -9, power loss, the OOM killer) up to its last second or so:
    # each packet reaches the disk at once (flush_packets), and the container is readable without the
    # index it writes at the end. Measured after SIGKILL at frame 150 of 150 (without these options no
    # format decoded at all):
    # AVI stores no timestamps: FFmpeg's shift of a negative audio start (AAC's priming) would round to a
    # whole frame there and push the pictures late. Its demuxer reads a file without its index: 150 of 150.
    ".avi": {"avoid_negative_ts": "disabled", "flush_packets": "1"},
    # Matroska and WebM close a cluster every second: 128 and 124 of 150.
    **{suffix: {"cluster_time_limit": "1000", "flush_packets": "1"} for suffix in (".mkv", ".webm")},
    # MP4/MOV: FFmpeg's hybrid mode writes one-second fragments while recording (120 of 150) and turns the
    # file into a regular, unfragmented one when it is closed (+0.1 % in size). Not with faststart (FFmpeg
    # warns). delay_moov: the header waits for the first fragment, so it knows the start delays and keeps
    # the edit lists (without it the pictures start B-frame delay late and AAC's priming plays 23 ms late).
    **{suffix: {"movflags": "hybrid_fragmented+delay_moov", "frag_duration": "1000000", "flush_packets": "1"}
       for suffix in (".mp4", ".m4v", ".mov")},
}
HYBRID_MP4_SINCE = (61, 7)  # libavformat of FFmpeg 7.1, the first with movflags=hybrid_fragmented
# The input's container tags that are not kept as they are: those the muxer writes itself or that describe the
# input's own file (its brand, its encoder, its length), and its timecode, which is that of its first picture: kept
# moved to the part's first picture (kept_timecode, shifted_timecode).
OWN_TAGS = {"major_brand", "minor_version", "compatible_brands", "encoder", "duration", "timecode"}
# SMPTE timecode as FFmpeg reads it (av_timecode_init_from_string): HH:MM:SS:FF, drop-frame with ; (or . or ,)
# before the frames
TIMECODE = re.compile(r"(\d\d):(\d\d):(\d\d)([:;.,])(\d\d)")
# The input's tags that say which asset it is, not kept: the output is a new one. Apple Photos pairs a Live Photo's
# still and video by the content identifier (a portrait that kept it claimed to be the original's video, and could
# take its place beside the still); the live-photo keys mark the video of such a pair; Photos' originating
# signature names the asset an export was made from.
IDENTITY_TAGS = {"com.apple.quicktime.content.identifier", "com.apple.photos.originating.signature"}
IDENTITY_PREFIXES = ("com.apple.quicktime.live-photo.",)
# An MXF's identity (FFmpeg's mxfdec): its packages' and file's identifiers, and the identification of the program that
# wrote it (company, product, version, platform, when). A Matroska output kept them as its own (MP4/MOV wrote none).
MXF_IDENTITY_TAGS = {"material_package_umid", "material_package_name", "uid", "generation_uid",
                     "operational_pattern_ul", "company_name", "product_name", "product_version", "product_version_num",
                     "product_uid", "toolkit_version_num", "application_platform", "modification_date"}
# The tags that say when the recording began (FFmpeg's, in UTC; an iPhone's, in local time): a part taken from
# `--start` on began that much later.
CREATION_TAGS = {"creation_time", "com.apple.quicktime.creationdate"}
# ISO 8601 as these tags write it: 2025-08-02T09:15:30.000000Z, 2025-08-02T11:15:30+0200, ...+02:00, no zone
ISO_TIME = re.compile(r"(\d{4}-\d\d-\d\d)([T ])(\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?")
# Apple's QuickTime keys (an iPhone's place, make, model and local date): MP4 and MOV hold them only as
# "mdta" keys, which FFmpeg writes with movflags=use_metadata_tags (else it leaves them out).
APPLE_KEYS = "com.apple.quicktime."


def container_options(suffix: str, tags: dict[str, str] | None = None) -> dict[str, str] | None:
    """The muxer options for a file type. A PyAV built against an FFmpeg older than 7.1 (a system build)
    writes MP4 and MOV the plain way: playable once closed, not after a crash. `tags`: the container tags
    to be written, which may need the mdta keys."""
    import av

    options = CONTAINER_OPTIONS.get(suffix)
    if options and "hybrid_fragmented" in options.get("movflags", "") and \
            tuple(av.library_versions["libavformat"][:2]) < HYBRID_MP4_SINCE:
        options = None
    if suffix in MP4_SUFFIXES and tags and any(key.startswith(APPLE_KEYS) for key in tags):
        options = dict(options or {})
        options["movflags"] = "+".join(filter(None, (options.get("movflags"), "use_metadata_tags")))
    if suffix in MP4_SUFFIXES and tags and "timecode" in tags:  # .m4v's (iPod's) muxer writes no tmcd track unasked
        options = {**(options or {}), "write_tmcd": "1"}
    return options


def readable_again(path: Path) -> bool:
    """Whether the input `path` can be opened again beside the source reading it: a regular file. A pipe or a FIFO
    (`cat clip.ts | depthcam run /dev/stdin`) gives its bytes once: a second reader took a part of them from the
    pictures (37 of 240 frames lost), failed on the rest, or, once the writer into a FIFO had gone, waited forever."""
    try:
        return Path(path).is_file()
    except OSError:
        return False


def opens_again(path: Path) -> bool:
    """Whether the input can be read again (its sound and subtitles by readers of their own) and jumped in (--start):
    a regular file (readable_again), and a file served over HTTP (served_file.ServedFile), which its server sends
    again; not a pipe, read once."""
    return hasattr(path, "av_open") or readable_again(path)


def input_tags(source: Path | Mapping[str, str] | None) -> dict[str, str]:
    """The input's container tags, and a MOV's or MP4's timecode (on its video stream: stream_timecode): `source`
    the tags its open container read, or the input file, read here once; empty where it has none or cannot be read
    again (a pipe)."""
    import av

    if source is None:
        return {}
    if isinstance(source, Mapping):
        return dict(source)
    if not readable_again(source):
        return {}
    try:
        with av.open(str(source), metadata_errors="replace") as container:
            return {**container.metadata, **stream_timecode(container)}
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        return {}


def kept_tags(source: Path | Mapping[str, str] | None) -> dict[str, str]:
    """The input's container tags that the output keeps: when and where it was recorded (creation_time, a
    phone's location), its title, the camera's make and model; empty where the input has none or cannot be
    read again (a pipe). A photo app sorts videos by their creation time, and shows them on a map by their location.
    `source`: as input_tags takes it."""
    tags = input_tags(source)
    return {key: _one_value(value) for key, value in tags.items() if value and not _own_or_identity(key)}


def _own_or_identity(key: str) -> bool:
    key = key.lower()  # Matroska's tags are upper case
    return key in OWN_TAGS or key in IDENTITY_TAGS or key in MXF_IDENTITY_TAGS or key.startswith(IDENTITY_PREFIXES)


def shifted_creation(tags: Mapping[str, str], seconds: float) -> dict[str, str]:
    """`tags` with the creation times `seconds` later (a part from --start on), each written as it was."""
    return {key: shifted_time(value, seconds) if key.lower() in CREATION_TAGS else value
            for key, value in tags.items()}


def shifted_time(text: str, seconds: float) -> str:
    """An ISO 8601 time `seconds` later, written in its own form: its separator, its fraction's digits (none: whole
    seconds, rounded to), its zone as written (Z, +02:00, +0200, none: the zone is the same moment's). Anything
    else is given back as it is."""
    found = ISO_TIME.fullmatch(text)
    if found is None or not seconds:
        return text
    date, separator, clock, fraction, zone = found.groups()
    digits = len(fraction or "")
    try:
        moment = datetime.fromisoformat(f"{date}T{clock}") + timedelta(seconds=float(f"0.{fraction or 0}") + seconds)
    except (ValueError, OverflowError):  # no such day (2025-02-30), or past year 9999
        return text
    step = timedelta(microseconds=10 ** (6 - min(digits, 6)))
    moment = datetime.min + round((moment - datetime.min) / step) * step  # to the digits the tag has
    shown = f".{moment.microsecond:06d}".ljust(digits + 1, "0")[:digits + 1] if digits else ""
    return f"{moment:%Y-%m-%d}{separator}{moment:%H:%M:%S}{shown}{zone or ''}"


def stream_timecode(container: Any) -> dict[str, str]:
    """The timecode of an open input whose container tags hold none, as a tag ({} where it has none): FFmpeg's MOV
    and MP4 demuxer puts a tmcd track's on the video stream (and on the tmcd stream itself); MXF's and Matroska's
    are container tags already."""
    if any(key.lower() == "timecode" for key in container.metadata):
        return {}
    for stream in (*container.streams.video, *container.streams.data):
        value = next((value for key, value in stream.metadata.items() if key.lower() == "timecode" and value), None)
        if value:
            return {"timecode": value}
    return {}


def kept_timecode(source: Path | Mapping[str, str] | None) -> str | None:
    """The input's timecode (its first picture's), `source` as input_tags takes it; None where it has none or cannot
    be read again (a pipe)."""
    tags = input_tags(source)
    return next((value.strip() for key, value in tags.items() if key.lower() == "timecode" and value.strip()), None)


def timecode_count(hours: int, minutes: int, seconds: int, frame: int, fps: int, drop: int) -> int:
    """The pictures from 00:00:00:00 to a timecode's label at the nominal rate `fps`, `drop` labels skipped at every
    minute but each tenth (drop-frame: 2 at 29.97, 4 at 59.94; 0 else)."""
    all_minutes = hours * 60 + minutes
    return (all_minutes * 60 + seconds) * fps + frame - drop * (all_minutes - all_minutes // 10)


def shifted_timecode(text: str, frames: int, rate: Fraction) -> str | None:
    """The SMPTE timecode `frames` pictures after `text`, counted at the nominal rate (24 at 23.976 fps, 30 at 29.97):
    drop-frame (a ; before the frames) as NTSC's is, the labels ;00 and ;01 (;00 to ;03 at 59.94) skipped at every
    minute but each tenth; wrapping at 24 hours; written with `text`'s separator. None where `text` is no timecode
    at that rate (a frame number past its count; drop-frame at a rate that is no multiple of 30), as FFmpeg's
    av_timecode_init_from_string would refuse it."""
    found = TIMECODE.fullmatch(text.strip())
    fps = round(rate)
    if found is None or fps <= 0:
        return None
    hours, minutes, seconds, separator, frame = found.groups()
    hours, minutes, seconds, frame = int(hours), int(minutes), int(seconds), int(frame)
    drop = fps // 15 if separator != ":" else 0  # labels skipped a minute
    if minutes > 59 or seconds > 59 or frame >= fps or (drop and fps % 30):
        return None
    per_minute, per_ten = fps * 60 - drop, fps * 600 - drop * 9  # pictures in a minute that drops, in ten minutes
    count = (timecode_count(hours, minutes, seconds, frame, fps, drop) + frames) % (per_ten * 6 * 24)
    tens, rest = divmod(count, per_ten)
    label = count + drop * 9 * tens + drop * (max(rest - drop, 0) // per_minute)  # the labels skipped put back
    return (f"{label // (fps * 3600):02d}:{label // (fps * 60) % 60:02d}:{label // fps % 60:02d}"
            f"{separator}{label % fps:02d}")


def part_first_picture(seconds: float, rate: Fraction) -> int:
    """The index of the picture a part from `seconds` (--start) begins with, at a constant `rate`: the first one
    at most half a frame before it (the source's rule), so one halfway between two pictures takes the earlier."""
    return max(0, math.ceil(seconds * float(rate) - 0.5 - 1e-6))


def with_riff_date(tags: dict[str, str]) -> dict[str, str]:
    """AVI's tags (RIFF INFO) hold the creation date as ICRD, FFmpeg's "date", in the form year-month-day; its muxer
    leaves creation_time out, so an AVI output lost when it was recorded. The date of creation_time becomes it."""
    created = tags.get("creation_time", "")
    if "date" in tags or len(created) < 10 or not created[:4].isdigit() or created[4:5] != "-":
        return tags
    return {**tags, "date": created[:10]}


def _one_value(value: str) -> str:
    """FFmpeg 8 joins a tag stored twice with ';' (a MOV's creation time, in its movie header and as an mdta key):
    written back as it reads, the creation time was no time any more, and was dropped. The first one is kept."""
    return value.split(";")[0] if ";" in value and len(set(value.split(";"))) == 1 else value


def kept_chapters(chapters: list[Mapping[str, Any]], origin: float, cut: float | None) -> list[dict[str, Any]]:
    """The input's chapters (as PyAV reads them) on the output's timeline, whose 0 is the input's `origin` seconds
    (the first picture's time) and `cut` its end where it was cut (a part, a stopped run): a chapter outside is left
    out, one across either end is cut there, so a player's chapter list matches the part it plays."""
    kept = []
    for chapter in chapters:
        base = chapter["time_base"]
        start = float(chapter["start"] * base) - origin
        end = max(start, float(chapter["end"] * base) - origin)  # a chapter without an end is a point
        if end <= 0 < -start or (cut is not None and start >= cut):
            continue
        start, end = max(start, 0.0), end if cut is None else min(end, cut)
        kept.append({"id": chapter["id"], "start": round(start / CHAPTER_TIME_BASE),
                     "end": round(end / CHAPTER_TIME_BASE), "time_base": CHAPTER_TIME_BASE,
                     "metadata": dict(chapter.get("metadata") or {})})
    return kept


MPEG4_MAX_TICKS = 65535  # MPEG-4 Part 2 (AVI) takes at most this many time-base ticks a second
# FFmpeg's AVI muxer times video faster than this in 1/600 s, where the pictures' times collide (the run failed)
AVI_MAX_FPS = 1000
FFV1_SLICES_ACROSS = 4  # FFV1's slices each way: 16, coded in parallel
X265_DTS_FRAMES = 2  # x265 leaves its decoding times unset (garbage) until it has more pictures than this
# The largest picture side each encoder takes, even (4:2:0): MPEG-4 Part 2's 13-bit fields, x264's and libvpx's
# limits. Beyond them the encoder refused to open with "Generic error in an external library".
VIDEO_MAX_SIDE = {"mpeg4": 8190, "libx264": 16384, "libvpx-vp9": 65536}
# The longest a picture may last, in the writer's ticks, where the container limits it; a longer pause (a security
# camera's, a timestamp jump) is held by showing the picture again, so the times stay as they were. FFmpeg's MP4
# muxer refuses a sample or a composition offset of 2**31 ticks or more (3.3 hours on 59.94 fps's 180 kHz clock): a
# quarter of that, less where the encoder reorders (max_picture_ticks). Its AVI muxer fills a gap with at most
# 60000 empty chunks (33 minutes at 30 fps). Both failed the run with a bare error.
MAX_PICTURE_TICKS = {**{suffix: MP4_MAX_TICKS // 4 for suffix in MP4_SUFFIXES}, ".avi": 60000}
# The pauses a composition offset (pts - dts) spans at most, where the encoder reorders: a run of B-frames (x264's
# veryfast 3, x265's veryfast 4) and the two pictures its decoding times lag behind (B-pyramid). Measured: offsets
# of 5 and 6 frame periods. Eight pictures 5960 s apart in MOV (offsets of 5 x 2**29 ticks) failed the run with
# FFmpeg's "Not yet implemented in FFmpeg, patches welcome".
REORDER_SPAN = {"libx264": 3 + 2, "libx265": 4 + 2}
# The last picture has no offset to spare room for: it is held as one picture up to half of 2**31 ticks, and only
# beyond that shown again (x264's decoding times, two pictures behind, made a track that ends with copies after a
# pause longer than it is in FFmpeg's eyes: 7.6 h for 6 h of a 1/7200 fps time-lapse).
MAX_LAST_PICTURE_TICKS = {**{suffix: MP4_MAX_TICKS // 2 for suffix in MP4_SUFFIXES}, ".avi": 60000}
# A subtitle stream is sparse: FFmpeg's interleaver held the other streams' packets up to 10 s waiting for its next
# packet (a killed run lost them); 1 s keeps the "up to its last second or so" of a crash.
SPARSE_INTERLEAVE_US = "1000000"
CHAPTER_TIME_BASE = Fraction(1, 1_000_000)
# AVCOL_* values (FFmpeg's pixfmt.h) for the stream's colour tags.
RANGE_LIMITED, MATRIX_BT709, MATRIX_BT601, PRIMARIES_BT709, TRANSFER_BT709 = 1, 1, 6, 1, 1
RANGE_FULL = 2
GREY16_PIX_FMT = "gray16le"  # a grey16 depth's pictures: 16-bit data, FFV1 (lossless) the codec that takes them
# FFmpeg's AV_FIELD_PROGRESSIVE: said, MOV gets a 'fiel' box and Matroska its field order (else "unknown", which an
# editor's QC may read as interlaced); the pictures are square (an anamorphic input is scaled): MOV's 'pasp' says so
FIELD_PROGRESSIVE, SQUARE_PIXELS = 1, Fraction(1, 1)


def max_picture_ticks(suffix: str, encoder: str) -> int | None:
    """The longest a picture of `encoder` may last in a `suffix` file before it is shown again (None: any): in MP4
    and MOV each composition offset spans REORDER_SPAN pauses of a reordering encoder, and stays under 2**31 ticks."""
    limit = MAX_PICTURE_TICKS.get(suffix)
    span = REORDER_SPAN.get(encoder)
    if limit is None or span is None or suffix not in MP4_SUFFIXES:
        return limit
    return min(limit, (MP4_MAX_TICKS - 1) // span)


def video_suffixes() -> list[str]:
    return sorted(VIDEO_CODECS)


def output_codec(asked: str, suffix: str, input_codec: str | None = None) -> str:
    """The codec written into a `suffix` file for `--codec asked`: the one asked, or for `auto` the container's own,
    except where the input is in an editing codec (EDITING_CODECS) the container holds, which stays one."""
    if asked != "auto":
        return asked
    kept = EDITING_CODECS.get(input_codec or "")
    if kept is not None and suffix in OUTPUT_CODECS[kept].suffixes:
        return kept
    encoder = VIDEO_CODECS[suffix]
    return next((name for name, codec in OUTPUT_CODECS.items() if codec.encoder == encoder), encoder)


def alpha_pix_fmt(pix_fmt: str) -> str:
    """The pictures a codec that stores `pix_fmt` keeps a transparent input's in (ProRes: 4:4:4 with alpha), else
    `pix_fmt` (H.264's, a window's: laid on white)."""
    return next((codec.alpha_pix_fmt for codec in OUTPUT_CODECS.values()
                 if codec.pix_fmt == pix_fmt and codec.alpha_pix_fmt), pix_fmt)


def codec_of(name: str) -> OutputCodec:
    """The codec of an output_codec name; a container's own encoder outside the table as 8-bit 4:2:0."""
    return OUTPUT_CODECS.get(name) or OutputCodec(name, name, "yuv420p", tuple(VIDEO_CODECS))


def check_video_codec(what: str, suffix: str, asked: str) -> None:
    """A codec depthcam does not write into the container is refused in one line, with the containers it writes it
    into and the codecs it writes into this one (FFmpeg's own refusal came at the first picture: "'mp4' format does
    not support 'prores_ks'"). Not "cannot hold": an MP4 may hold VP9 or MPEG-4 Part 2, which players take badly."""
    codec = OUTPUT_CODECS.get(asked)
    if codec is None or suffix not in VIDEO_CODECS or suffix in codec.suffixes:
        return  # auto, or a type refused on its own
    held = [name for name, other in OUTPUT_CODECS.items() if suffix in other.suffixes]
    raise UserError(f"{what}: depthcam writes {codec.title} (codec {asked}) into {' or '.join(codec.suffixes)}, not "
                    f"{suffix}; write one of those for it, or give {suffix} {' or '.join(held)}")


def padded_size(width: int, height: int, pix_fmt: str) -> tuple[int, int]:
    """The size a picture is stored at: one edge column (row) more where the chroma is halved across (down) and the
    size is odd: 4:2:0 both ways, 4:2:2 across, 4:4:4 none."""
    across, down = pix_fmt.startswith(("yuv420", "yuv422")), pix_fmt.startswith("yuv420")
    return width + width % 2 * across, height + height % 2 * down


def is_hd(width: int, height: int) -> bool:
    """Whether players take untagged video of this size for BT.709 (mpv's and VLC's guess), else BT.601."""
    return width >= 1280 or height > 576


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or exc.__class__.__name__


def _time_base(rate: Fraction, suffix: str) -> Fraction:
    if suffix == ".avi":
        # AVI has no timestamps (a gap is filled with repeated frames) and MPEG-4 part 2 allows at most
        # 65535 ticks a second: one tick per frame.
        return 1 / rate
    hz = math.lcm(VIDEO_CLOCK_HZ, rate.numerator)  # so that a frame of 24000/1001 fps is whole ticks too
    return Fraction(1, hz if hz <= 1 << 20 else VIDEO_CLOCK_HZ)


def check_video_size(what: str, suffix: str, width: int, height: int, codec: str = "auto") -> None:
    """A codec the container cannot hold, and a picture larger than the encoder takes (or smaller), are refused in
    one line, with the types that take it (FFmpeg's own refusal was "Generic error in an external library")."""
    check_video_codec(what, suffix, codec)
    least = OUTPUT_CODECS[codec].min_side if codec in OUTPUT_CODECS else 1
    if min(width, height) < least:
        raise UserError(f"{what}: {OUTPUT_CODECS[codec].title} (codec {codec}) needs at least {least} px a side and "
                        f"this picture is {width}x{height}; choose codec h264")
    encoder = OUTPUT_CODECS[codec].encoder if codec in OUTPUT_CODECS else VIDEO_CODECS.get(suffix, "")
    side, limit = max(width + width % 2, height + height % 2), VIDEO_MAX_SIDE.get(encoder)
    if limit is not None and side > limit:
        wider = [other for other, name in (("mp4 or .mkv", "libx264"), ("webm", "libvpx-vp9"))
                 if VIDEO_MAX_SIDE[name] >= side]
        fix = f"use .{wider[0]}" if wider and codec == "auto" else "make it smaller"  # a codec asked: its own limit
        raise UserError(f"{what}: {suffix} video is at most {limit} px a side and this one is {width}x{height}; "
                        f"{fix}")


def encoder_options(encoder: str, crf: int, alpha: bool = False,
                    size: tuple[int, int] | None = None) -> dict[str, str]:
    """Each encoder's settings; `crf` x264's quality (x265's scale is set from it); `alpha`: pictures with alpha;
    `size`: the pictures' (width, height), where it matters (FFV1's slices; None: any size)."""
    if encoder == "libx264":
        return {"crf": str(crf), "preset": "veryfast"}
    if encoder == "libx265":  # x265's CRF scale runs higher than x264's (FFmpeg's guide: 28 looks as x264's 23)
        return {"crf": str(crf + 3), "preset": "veryfast", "x265-params": "log-level=error"}  # quiet on stderr
    if encoder == "libvpx-vp9":
        return {"crf": "32", "b": "0", "deadline": "realtime", "cpu-used": "8"}
    if encoder == "prores_aw":  # profile 3: 422 HQ (4: 4444, with alpha); Apple's vendor code, as Final Cut writes it
        return {"profile": "4" if alpha else "3", "vendor": "apl0"}
    if encoder == "ffv1":  # the archivists' settings: each picture a key frame in checked slices, coded in parallel
        slices = ffv1_slices(*size) if size else FFV1_SLICES_ACROSS ** 2
        return {"level": "3", "g": "1", "slices": str(slices), "slicecrc": "1"}
    return {}


def ffv1_slices(width: int, height: int) -> int:
    """FFV1's slices for a picture: 16 (4 by 4), fewer where a side has under 4 pixels, as each slice needs one each
    way (FFmpeg refused 16 slices of a 3x5 picture: "Function not implemented", and the run failed)."""
    return min(FFV1_SLICES_ACROSS, width, height) ** 2


def _set_alpha(frame: Any, alpha: np.ndarray) -> None:
    """A converted picture's alpha plane set to round(alpha * top / 255) (8 or 10 bits): swscale's rounded some a code
    value high (128 became 129 at 8 bits, 200 became 803 of 10 for 802.35), so each generation drifted."""
    plane = frame.planes[3]
    top = (1 << next(c.bits for c in frame.format.components if c.is_alpha)) - 1
    values = np.frombuffer(plane, np.uint8 if top == 255 else np.dtype("<u2")).reshape(plane.height, -1)
    # 255 is odd, so there is no tie to break
    values[:, :plane.width] = alpha if top == 255 else (alpha.astype(np.uint32) * (2 * top) + 255) // 510


class OutputFailed(UserError):
    """The output file failed while being written, for a reason its user can act on: one line naming the fix, and
    exit status 1 (a failure while running, as a full disk's), not 2 (bad input)."""

    exit_code = 1


# A write refused for the file's size, not its disk's room: "stage 'sink' failed: OSError: [Errno 27] File too
# large" said neither which limit nor what to do (a FAT32 card's 4 GB cut a long recording there)
SIZE_REFUSALS = {errno.EFBIG: "it reached the largest file allowed there (4 GB on a FAT32 card or stick, or the "
                              "limit `ulimit -f` sets); write it to a disk formatted exFAT, NTFS or ext4, or a "
                              "shorter part (--duration)",
                 **({errno.EDQUOT: "your disk quota is used up; free some space, or write the output to another "
                                   "disk"} if hasattr(errno, "EDQUOT") else {})}


def _size_refusal(path: Path, exc: BaseException) -> OutputFailed | None:
    """The file system's refusal of a write for the file's size or the user's quota, as one line; else None."""
    cause = _write_error(exc) if isinstance(exc, Exception) else exc
    reason = SIZE_REFUSALS.get(cause.errno) if isinstance(cause, OSError) else None
    return None if reason is None else OutputFailed(f"cannot write more of {path}: {reason}")


def _write_error(exc: Exception) -> Exception:
    """The error of our file's write where PyAV hands it on only as the context of its own: the MP4 trailer's, on a
    full disk, came out as "Error in PyAV callback" instead of "No space left on device" (ENOSPC)."""
    import av

    cause = exc.__context__
    return cause if isinstance(exc, av.error.PyAVCallbackError) and isinstance(cause, OSError) else exc


class _OutputFile:
    """The file FFmpeg writes into, through PyAV's custom I/O. It is written beside the output under a hidden name
    and renamed over it once a picture is on the disk, so a run that stores none (a disk full at the first frame)
    leaves neither a 0-byte or header-only file nor a damaged earlier output. Its descriptor is ours to close:
    where the header could not be written PyAV leaves its own open, and the file's space with it. Created at the
    first write, so a writer that got no picture creates nothing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)  # PyAV guesses the format from it, and it names the file in errors
        self._direct = self.committed = path.exists() and not path.is_file()  # a FIFO is written as it is
        self._partial = path if self._direct else partial_path(path)
        self._fd: int | None = None
        self._pos = 0
        self.size = 0  # bytes that reached the disk
        self.interrupted = False  # a Ctrl-C landed here, where PyAV's callback would swallow it
        self.deleted = False  # found deleted while open (see lost)

    def _open(self) -> int:
        if self._fd is None:
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
            try:
                self._fd = os.open(self._partial, flags, 0o666)
            except OSError as exc:
                raise self._error(exc) from None
        return self._fd

    def _error(self, exc: OSError) -> OSError:
        """An error of the file's, named as the output (not the hidden file): the run's line says which file failed
        and how ("cannot write out.mp4: Input/output error"), not "stage 'sink' failed: OSError: [Errno 5]"."""
        return OSError(exc.errno, exc.strerror, self.name)

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return not self._direct

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        try:  # the trailer's seek back to the header (MP4's, Matroska's): a disk gone mid-run fails here too
            self._pos = os.lseek(self._open(), offset, whence)
        except OSError as exc:
            raise self._error(exc) from None
        return self._pos

    def write(self, data: bytes) -> int:
        view, fd = memoryview(data), self._open()
        while view:  # all of it: FFmpeg takes a short write for a whole one
            try:
                view = view[os.write(fd, view):]
            except KeyboardInterrupt:  # raised after the mux instead (the write is retried)
                self.interrupted = True
            except OSError as exc:
                raise self._error(exc) from None
        self._pos += len(data)
        self.size = max(self.size, self._pos)
        return len(data)

    def commit(self) -> None:
        """Put the file under its name now that it holds a picture. Windows cannot rename an open file: there
        the file gets its name when it is closed."""
        if self.committed or self._fd is None:
            return
        try:
            os.replace(self._partial, self.path)
        except OSError:
            return
        self.committed = True

    def lost(self) -> bool:
        """Whether the file was deleted while open (it, or its folder, removed during the run): what is written
        goes to a file no name reaches, freed at its close, and the run said "wrote 600 frames to out/x.mp4", exit
        0, with no such file. A FIFO is no file to lose."""
        if self._fd is not None and not self._direct and not self.deleted:
            try:
                status = os.fstat(self._fd)
            except OSError:  # no answer is no loss found
                return False
            # no link left is not enough: a FUSE file system that fills in no link count (an MTP phone's, some
            # others) says 0 for every file, and each run into it stopped at its first fragment, a .part left behind
            self.deleted = status.st_nlink == 0 and not self._named(status)
        return self.deleted

    def _named(self, status: os.stat_result) -> bool:
        """Whether the file's name (the hidden one until committed) still reaches the open file `status` is of."""
        try:
            return os.path.samestat(status, os.stat(self.path if self.committed else self._partial))
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError:  # no answer is no loss found
            return True

    def pictures(self) -> int:
        """The pictures a player finds in the file as it is on the disk: a first fragment or cluster cut short
        by a full disk may hold some. Only for a file not yet under its name, which holds a fragment at most."""
        import av

        if self._fd is None or self.committed:
            return 0
        try:
            with av.open(str(self._partial)) as container:  # a packet cut short by the disk is no picture
                return sum(len(packet.decode()) for packet in container.demux(video=0) if not packet.is_corrupt)
        except (av.error.FFmpegError, OSError, ValueError, IndexError):
            return 0

    def close(self, keep: bool) -> None:
        """Close the file, and put it under its name (`keep`) or, where it holds no picture, delete it."""
        if self._fd is None:
            return
        self.lost()  # asked while its descriptor still tells
        fd, self._fd = self._fd, None
        try:
            os.close(fd)  # a network disk tells a failed write only here (EIO, ENOSPC, EDQUOT)
        except OSError as exc:
            raise self._error(exc) from None
        if self.committed or self.deleted:  # a deleted file has no name to be given
            return
        if not keep:
            self._partial.unlink(missing_ok=True)
            return
        try:
            os.replace(self._partial, self.path)
        except OSError as exc:
            # Windows: a player opened the old output during the run; say where the frames are
            raise OSError(exc.errno, f"{exc.strerror}; the frames are in {self._partial}", self.name) from None
        self.committed = True


class VideoWriter:
    def __init__(self, path: Path, width: int, height: int, fps: float, audio_from: Path | None = None,
                 crf: int = 18, tags_from: Path | Mapping[str, str] | None = None,
                 subtitles_from: Path | None = None, chapters: list[Mapping[str, Any]] | None = None,
                 part_end: float | None = None, codec: str = "auto", input_codec: str | None = None,
                 audio_tracks: list[int] | None = None, grey16: bool = False) -> None:
        """`audio_from`: the file whose sound is kept, `audio_tracks` which of its audio streams (from 1, in the
        output's order; None: every one); `tags_from`: the file whose container tags (creation time,
        location, title) are kept, or those tags, by default `audio_from`'s; `subtitles_from`: the file whose
        subtitle streams are kept; `chapters`: the input's chapters (as PyAV reads them), kept on the output's
        timeline; `part_end`: where the part taken (--duration) ends, in the input's seconds on the video's clock
        (which clips joined as they are do not set back): a subtitle line is written as it starts, so it is cut
        there in advance. `codec`: an OUTPUT_CODECS name or auto (output_codec), `input_codec` the input's decoder's
        name, which auto may keep. `grey16`: the pictures are 16-bit grey data (a depth's), kept exactly: lossless
        FFV1, full range, no colour conversion or colour tags (whatever `codec` says)."""
        import av
        from av.video.reformatter import VideoReformatter

        suffix = path.suffix.lower()
        if suffix not in VIDEO_CODECS:
            raise UserError(f"cannot write {path}: unknown video type {suffix or '(none)'}; "
                            f"use one of {', '.join(video_suffixes())}")
        codec = "ffv1" if grey16 else codec
        check_video_size(f"cannot write {path}", suffix, width, height, codec)
        self.codec = output_codec(codec, suffix, input_codec)
        self.grey16 = grey16
        self._pix_fmt = GREY16_PIX_FMT if grey16 else codec_of(self.codec).pix_fmt
        # the input's codec where auto kept it (not the container's own): said as the stream opens, with its size
        self._kept_from = input_codec if self.codec in EDITING_CODECS.values() and codec == "auto" else None
        # Whether the pictures keep their alpha (a transparent input's): decided by the first picture where the codec
        # holds alpha (None until then; its encoder opens then), else never
        self.alpha: bool | None = None if codec_of(self.codec).alpha_pix_fmt and not grey16 else False
        # PyAV opens the file only at the first packet: check now (and write where it checked: ~ expanded)
        self.path = path = ensure_writable(path, "output")
        # 1001 for NTSC's rates; a slower one (3 pictures in 4 hours: 1/7200 fps) was rounded to 0 and the run failed
        self.rate = Fraction(fps).limit_denominator(max(1001, math.ceil(1 / fps))) if fps > 0 else Fraction(30)
        if suffix == ".avi" and self.rate > AVI_MAX_FPS:  # pictures closer than that are left out, as at any rate
            self.rate = Fraction(AVI_MAX_FPS)
        if suffix == ".avi" and self.rate.numerator > MPEG4_MAX_TICKS:  # e.g. a 119.88 fps average: 69888/583
            self.rate = self.rate.limit_denominator(max(1, MPEG4_MAX_TICKS // math.ceil(self.rate)))
        self.time_base = _time_base(self.rate, suffix)
        self._frame_ticks = 1 / (self.rate * self.time_base)
        # 4:2:0 needs even sizes (4:2:2 an even width); odd frames are padded by one edge row/column.
        self.width, self.height = padded_size(width, height, self._pix_fmt)
        self._hd = is_hd(self.width, self.height)
        self._reformatter = VideoReformatter()
        self.frames_written = 0
        # Pictures known to be in the file: those handed to the muxer before a call that wrote to it (a fragment
        # or a cluster ends before the packet that closes it). After a full disk, what the file holds less at most
        # the last fragment's pictures, which a player may find part of.
        self.pictures_on_disk = 0
        self.finalised = False  # closed without an error: complete and playable
        self._handed = 0  # pictures the muxer took
        self._encoded = 0  # pictures given to the encoder, copies of the last one included
        # The first picture packet's decoding time (the first picture's is 0): how far the encoder's decoding times
        # start before the presentation times (x264's two pictures), the delay the MP4 edit list skips; and the last
        # picture packet muxed, (pts, dts)
        self._first_dts: int | None = None
        self._stored: tuple[int, int] | None = None
        # AVI has one tick a picture and no timestamps: a picture of a variable frame rate that falls on the
        # tick of the one before is left out (as FFmpeg's -fps_mode cfr does); pushed to the next tick instead,
        # every later picture would run late against the sound (0.5 s after 20 pictures at 33 fps in 17 fps)
        self._whole_ticks = suffix == ".avi"
        self.pictures_left_out = 0
        self._failed = False  # a write failed: the file is left as it is
        self._last_seconds: float | None = None  # the time of the last picture given: one before it is a join
        self._last_pts = -1
        self._origin: float | None = None  # the first frame's presentation time: the output's zero
        self._first_origin = 0.0  # the first clip's origin, which the chapters keep where clips are joined
        # The first picture's time on `part_end`'s clock, the video's, which joined clips' times do not set back. Its
        # own time is its clip's: from it, a part from --start in a later clip was cut late by the clips before.
        self._first_video = 0.0
        # The clip (of clips joined as they are) of the first picture, asked when it comes: the source's `first_clip`
        # (set before that picture is queued). A part from --start in a later clip: the tracks skip the clips before.
        self.first_clip: Callable[[], int] = lambda: 0
        self._part_end = part_end
        self._started = False  # the file is open and its header written: an EPERM from then on is FFmpeg's -1
        self._audio: AudioTracks | None = None
        self._subtitles: SubtitleTracks | None = None
        self._chapters = list(chapters or [])
        if self._chapters and suffix == ".avi":
            log.warning(f"{path.name}: the {len(self._chapters)} chapters of the input are left out: .avi holds none; "
                        f"write .mp4 or .mkv to keep them")
            self._chapters = []
        # Each picture's own duration in ticks, by its time, for its packet: a GIF's or a variable frame rate's long
        # last picture is held as long in the output (else one nominal frame period)
        self._durations: dict[int, int] = {}
        self._last_ticks = self._frame_ticks  # the duration of the last picture given
        self._max_ticks = max_picture_ticks(suffix, codec_of(self.codec).encoder)
        self._last_frame: Any = None  # the last picture encoded, shown again through a pause longer than _max_ticks
        self._repeats: set[int] = set()  # the times of those shown again, which are no picture of the input
        self._file = _OutputFile(path)
        given = input_tags(tags_from if tags_from is not None else audio_from)  # the input file read once
        self._tags = tags = kept_tags(given)
        self._timecode = self._checked_timecode(kept_timecode(given))
        if self._timecode is not None:  # the container's: FFmpeg's MP4 muxer makes it a tmcd track, Matroska a tag
            tags = {**tags, "timecode": self._timecode}
        if suffix == ".avi":
            tags = with_riff_date(tags)
        if audio_from is not None and not opens_again(audio_from):
            log.warning(f"the sound of {audio_from} is left out: a pipe is read once, for the pictures; "
                        f"give the file itself to keep its sound")
            audio_from = None
        if subtitles_from is not None and not opens_again(subtitles_from):
            log.warning(f"the subtitles of {subtitles_from} are left out: a pipe is read once, for the pictures; "
                        f"give the file itself to keep them")
            subtitles_from = None
        try:
            self.container = av.open(self._file, "w", container_options=container_options(suffix, tags))
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise UserError(f"cannot write {path}: {_one_line(exc)}") from None
        self.container.metadata.update(tags)
        try:
            self.stream = self._add_video(codec_of(self.codec).encoder, crf)
            if audio_from:
                self._audio = AudioTracks(self.container, audio_from, suffix, self._mux, audio_tracks)
            if subtitles_from:
                self._subtitles = self._add_subtitles(subtitles_from, suffix)
        except BaseException as exc:
            for track in (self._audio, self._subtitles):
                if track is not None:
                    track.close()
            self.container.close()  # nothing was muxed, so no file was created
            if isinstance(exc, (av.error.FFmpegError, OSError, ValueError)):
                raise UserError(f"cannot write {path}: {_one_line(exc)}") from None
            raise

    def start_part(self, seconds: float) -> None:
        """The output begins `seconds` into the input (--start): the creation times it keeps are moved there, to
        when its first picture was recorded, so that a photo app sorts it at that moment, not at the input's start,
        and the timecode to its first picture's, so that an editor finds the part in the original. Before the first
        picture, whose packet writes the header that holds them."""
        if self._started:
            raise RuntimeError("start_part() after the first picture: the header holding the tags is written")
        tags = shifted_creation(self._tags, seconds)
        if self._timecode is not None:  # the input's first picture's: moved on to the part's first picture
            tags["timecode"] = shifted_timecode(self._timecode, part_first_picture(seconds, self.rate), self.rate)
        self.container.metadata.update(with_riff_date(tags) if self.path.suffix.lower() == ".avi" else tags)

    def _checked_timecode(self, text: str | None) -> str | None:
        """The input's timecode where it counts at this rate; else None, said in a line (FFmpeg's muxer would
        refuse it and write none)."""
        if text is None or shifted_timecode(text, 0, self.rate) is not None:
            return text
        log.warning(f"{self.path.name}: the input's timecode {text!r} is left out: it is no timecode at "
                    f"{rate_text(float(self.rate))} fps")
        return None

    def _add_subtitles(self, source: Path, suffix: str) -> SubtitleTracks | None:
        """The input's subtitle streams, where any can be kept. The muxer is told not to wait long for them."""
        tracks = SubtitleTracks(self.container, source, suffix, self._mux)
        if not tracks.streams:
            tracks.close()
            return None
        self.container.container_options["max_interleave_delta"] = SPARSE_INTERLEAVE_US
        return tracks

    def _add_video(self, codec: str, crf: int) -> Any:
        import av

        stream = self.container.add_stream(codec, rate=self.rate)  # the nominal rate, kept as metadata
        stream.width, stream.height = self.width, self.height
        stream.pix_fmt = self._pix_fmt
        stream.disposition = av.stream.Disposition.default  # Matroska's players choose by it (it was left unset)
        stream.time_base = self.time_base
        context = stream.codec_context
        context.time_base = self.time_base
        context.color_range = RANGE_FULL if self.grey16 else RANGE_LIMITED
        if not self.grey16:  # data, not colour: a grey16 depth has no matrix, primaries or transfer
            context.colorspace = MATRIX_BT709 if self._hd else MATRIX_BT601
            context.color_primaries, context.color_trc = PRIMARIES_BT709, TRANSFER_BT709
        context.field_order, context.sample_aspect_ratio = FIELD_PROGRESSIVE, SQUARE_PIXELS
        if codec == "libx265" and self.path.suffix.lower() in MP4_SUFFIXES:
            context.codec_tag = "hvc1"  # what Apple's players play (FFmpeg's default, hev1, they do not)
        stream.thread_type = "AUTO"
        self._crf = crf
        if self.alpha is False:  # bad encoder settings fail here rather than at the first frame
            self._open_video(stream, False)
        return stream

    def _open_video(self, stream: Any, alpha: bool) -> None:
        """Open the encoder for pictures with alpha (`alpha`: the codec's alpha_pix_fmt) or without."""
        codec = codec_of(self.codec)
        # the size stays padded as the codec's own pictures are: prores_aw refuses an odd width in 4444 too
        plain = GREY16_PIX_FMT if self.grey16 else codec.pix_fmt
        self.alpha, self._pix_fmt = alpha, (codec.alpha_pix_fmt if alpha else None) or plain
        stream.pix_fmt = self._pix_fmt
        stream.options = encoder_options(codec.encoder, self._crf, alpha, (self.width, self.height))
        stream.codec_context.open()
        title = codec.titled(alpha)
        if self._kept_from is not None:
            log.warning(f"{self.path.name}: written in {title}, as the input is in {self._kept_from} (codec auto "
                        f"keeps an editing codec); --codec h264 writes a far smaller file"
                        + (", with the alpha laid on white" if alpha else ""))
        elif alpha:
            log.warning(f"{self.path.name}: written in {title}: the input's alpha channel is kept as given (not "
                        f"blurred)")

    def write(self, image_bgr: np.ndarray, pts_seconds: float | None = None,
              duration_seconds: float | None = None) -> None:
        import av
        from av.video.reformatter import Interpolation

        self.begin(pts_seconds)
        if pts_seconds is not None and self._last_seconds is not None and pts_seconds < self._last_seconds:
            # time went back (clips joined as they are, `cat a.ts b.ts`): carry on a frame after the last picture
            self._origin = pts_seconds - float(self._last_pts * self.time_base) - 1 / float(self.rate)
            for track in (self._audio, self._subtitles):
                if track is not None:
                    track.joins.append(self._origin)  # the sound and lines of that clip go with its pictures
        if pts_seconds is not None:
            self._last_seconds = pts_seconds
        if pts_seconds is None:
            pts = round(self.frames_written * self._frame_ticks)
        else:
            pts = round((pts_seconds - self._origin) / self.time_base)
        if self._whole_ticks and pts <= self._last_pts and pts_seconds is not None:
            self.pictures_left_out += 1
            return
        pts = max(pts, self._last_pts + 1)  # only a repeated (or out-of-order) time moves, by one tick
        image_bgr = self._with_alpha_or_not(image_bgr)
        height, width = image_bgr.shape[:2]
        if padded_size(width, height, codec_of(self.codec).pix_fmt) != (self.width, self.height):
            # padding a bigger picture failed deep in numpy, and a smaller one was smeared into the corner
            raise ValueError(f"a {width}x{height} picture for {self.path.name}, opened at {self.width}x{self.height}: "
                             f"every picture must have the first one's size")
        if self.grey16:
            frame = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(image_bgr, np.uint16), format=GREY16_PIX_FMT)
            self._encode(frame, pts, duration_seconds)
            return
        if width != self.width or height != self.height:
            image_bgr = np.pad(image_bgr, ((0, self.height - image_bgr.shape[0]),
                                           (0, self.width - image_bgr.shape[1]), (0, 0)), mode="edge")
        # the array itself as the frame's buffer, not a copy of it (1080p: 1.1 ms of copying; the same pictures)
        frame = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(image_bgr),
                                                format="bgra" if self.alpha else "bgr24")
        # swscale's default (fast) path rounds coarsely: mid-grey 128 came back as 124,126,123. This one is within
        # a code value of the exact conversion at 8 and at 10 bits (flat colour and ramps; luma within 0.53).
        frame = self._reformatter.reformat(
            frame, format=self._pix_fmt, dst_colorspace="itu709" if self._hd else "itu601", dst_color_range="MPEG",
            interpolation=Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INP
            | Interpolation.BITEXACT)
        if self.alpha:
            _set_alpha(frame, image_bgr[..., 3])
        # the stream's colour tags on the picture too: ProRes stores the picture's in each frame (it wrote "unknown")
        frame.color_primaries, frame.color_trc = PRIMARIES_BT709, TRANSFER_BT709
        self._encode(frame, pts, duration_seconds)

    def _encode(self, frame: Any, pts: int, duration_seconds: float | None) -> None:
        """The picture, as the stream takes it, encoded and muxed at `pts`, held `duration_seconds` where given."""
        from av.video.frame import PictureType

        frame.pts, frame.time_base = pts, self.time_base
        ticks = max(1, round(duration_seconds / self.time_base)) if duration_seconds and duration_seconds > 0 else None
        if ticks is not None:
            self._durations[pts] = ticks if self._max_ticks is None else min(ticks, self._max_ticks)
        try:
            if not self._started and self._chapters and self.path.suffix.lower() in MP4_SUFFIXES:
                # FFmpeg's MP4 muxer makes the QuickTime chapter track (tref/chap, what Apple's players read) only
                # for chapters it has before the header; given at the end it writes Nero's chpl only. Those of the
                # part taken now; set again at the end, cut where the run stopped. Only a list from 0: FFmpeg read
                # the track's first chapter from 0 wherever it began (Nero's list alone keeps that start).
                cut = self._part_cut()
                chapters = kept_chapters(self._chapters, self._first_origin, cut)
                if chapters and chapters[0]["start"] == 0:
                    self.container.set_chapters(chapters)
            self.container.start_encoding()  # the file opened now (once): an EPERM from here on is FFmpeg's -1
            self._started = True
            if self._hold_last(pts):
                frame.pict_type = PictureType.P  # as a B-frame, its decoding time lagged a pause behind
            self._encoded += 1
            for packet in self.stream.encode(frame):
                self._mux(packet, picture=True)
            self._last_pts, self._last_ticks, self._last_frame = pts, ticks or self._frame_ticks, frame
            self.frames_written += 1
            if self._audio:
                self._audio.write_until(self.seconds_written)
            if self._subtitles:
                self._subtitles.write_until(self.seconds_written)
        except BaseException as exc:
            self._failed = True
            self._raise_write_error(exc)

    def _with_alpha_or_not(self, picture: np.ndarray) -> np.ndarray:
        """The picture as the stream takes it: BGRA (a BGR one opaque) where it keeps alpha, else BGR. The first
        picture decides, where the codec holds alpha: given BGRA (a transparent input's), its encoder opens for it."""
        import av

        given = picture.ndim == 3 and picture.shape[2] == 4
        if self.alpha is None:
            try:
                self._open_video(self.stream, given)
            except (av.error.FFmpegError, ValueError) as exc:
                self._failed = True
                raise UserError(f"cannot write {self.path}: {_one_line(exc)}") from None
        if given and not self.alpha:  # as the video sink lays a render on white (it does so itself, and says it)
            return on_white(np.ascontiguousarray(picture[..., :3]), np.ascontiguousarray(picture[..., 3]))
        if self.alpha and not given:
            return np.dstack([picture, np.full(picture.shape[:2], 255, np.uint8)])
        return picture

    @property
    def begun(self) -> bool:
        """Whether the first picture was given: the output's zero is set."""
        return self._origin is not None

    def begin(self, pts_seconds: float | None, video_seconds: float | None = None) -> None:
        """The first picture's time (once; write() calls it): the output's zero, where the tracks start. With
        `video_seconds`, its time on the video's clock, which clips joined as they are do not set back (`part_end`'s,
        by default `pts_seconds`): the subtitles are cut where the part ends, a part in a later clip's too."""
        if self._origin is not None:
            return
        self._origin = self._first_origin = origin = pts_seconds or 0.0
        self._first_video = origin if video_seconds is None else video_seconds
        clip = self.first_clip()
        if self._audio is not None:
            self._audio.begin_at(origin, clip)
        if self._subtitles is not None:
            self._subtitles.begin_at(origin, clip, self._part_cut())

    def _part_cut(self) -> float | None:
        """Where the part taken (--duration) ends on the output's timeline; None to the input's end."""
        return None if self._part_end is None else self._part_end - self._first_video

    def _hold_last(self, until: int, ending: bool = False) -> bool:
        """Show the last picture again wherever it would otherwise last longer than the container holds before
        `until`: the next picture's time, or (`ending`) where the last one ends. There the last three copies come a
        frame apart: x264's decoding times lag two pictures behind, and FFmpeg's MP4 demuxer takes the track's
        length from them (it read 2470 s of a 4 h last picture). Each copy is a P-frame: as a B-frame one was
        stored before the one after it. The copies before those come at equal steps: one a limit on lasted to the
        next picture a tick later, and a 1-tick sample ended an H.264 time-lapse a frame early."""
        limit = self._max_ticks
        if limit is None or self._last_frame is None or until - self._last_pts <= limit:
            return False
        frame = max(1, min(round(self._frame_ticks), round(1 / self.time_base)))  # a frame period, at most 1 s
        tail = [until - 3 * frame, until - 2 * frame, until - frame] if ending else []
        pause = (tail[0] if tail else until) - self._last_pts
        steps = -(-pause // limit)  # as few as hold it, each within the limit
        times = [self._last_pts + pause * step // steps for step in range(1, steps)]
        for pts, after in zip(times + tail, times[1:] + tail + [until]):
            self._repeat(pts, after - pts)
        return True

    def _repeat(self, pts: int, ticks: int) -> None:
        """Encode the last picture again at `pts`, lasting `ticks`."""
        from av.video.frame import PictureType

        self._last_ticks = self._durations[pts] = ticks
        self._last_frame.pts, self._last_frame.pict_type = pts, PictureType.P
        self._repeats.add(pts)
        self._encoded += 1
        for packet in self.stream.encode(self._last_frame):
            self._mux(packet, picture=True)
        self._last_pts = pts

    def _mux(self, packet: Any, picture: bool = False) -> None:
        """Mux a packet, counting the pictures on the disk; the first one puts the file under its name."""
        size = self._file.size
        if picture and packet.pts is not None and packet.pts in self._durations:
            packet.duration = self._durations.pop(packet.pts)
        if picture and self._dts_unset():
            # x265 sets its decoding times off the first pictures' reorder delay, which it measures at the third
            # picture: with fewer, it left that delay unset and its dts were garbage (-1.3e17; the muxer refused
            # them, a 2-picture run or one stopped that early failed). Two pictures are never reordered.
            packet.dts = packet.pts
        if picture and packet.dts is not None and packet.pts is not None:
            self._first_dts = packet.dts if self._first_dts is None else self._first_dts
            self._stored = packet.pts, packet.dts
        if picture and len(self._durations) > 64 and packet.dts is not None:  # an encoder that moved a pts
            # a packet's pts is at least its dts, and dts grow: every picture shown before this dts is muxed
            self._durations = {pts: ticks for pts, ticks in self._durations.items() if pts >= packet.dts}
        self.container.mux(packet)
        if self._file.size > size:
            if self._file.lost():  # stopped now, not after hours of frames written into nothing
                raise self._lost()
            self.pictures_on_disk = self._handed
            if self.pictures_on_disk:
                self._file.commit()
        if picture and packet.pts in self._repeats:  # the last picture shown again is not counted again
            self._repeats.discard(packet.pts)
            picture = False
        self._handed += picture
        if self._file.interrupted:  # a second Ctrl-C inside the muxer's write: raised here, the packet muxed
            self._file.interrupted = False
            raise KeyboardInterrupt

    @property
    def seconds_written(self) -> float:
        """Where the pictures written so far end (the last one shown for its own duration, else one nominal frame
        period)."""
        if not self.frames_written:
            return 0.0
        return float((self._last_pts + self._last_ticks) * self.time_base)

    def close(self, complete: bool = True) -> None:
        """Flush and finalise. `complete=False` (interrupted) ends the audio where the pictures end.
        A file that got no picture (none written, or none reached a full disk) is not left: a file already
        there stays as it was."""
        try:
            # After a failed write (a full disk) nothing more is muxed: where the header itself could not be
            # written, PyAV would write it again, and FFmpeg's MP4 muxer crashes on that (SIGSEGV)
            if not self._failed:
                self._flush_video()
                cut = None if complete else self.seconds_written
                if self._audio and self.frames_written:
                    self._audio.finish(cut)
                if self._subtitles and self.frames_written:
                    self._subtitles.finish(cut)
                # the muxers write chapters given now at the end (MP4's Nero list; its chapter track has the first's)
                if self._chapters and self.frames_written:
                    self.container.set_chapters(kept_chapters(self._chapters, self._first_origin, cut))
        except BaseException as exc:
            self._raise_write_error(exc)
        finally:
            for track in (self._audio, self._subtitles):
                if track is not None:
                    track.close()
            try:
                self.container.close()
                self.pictures_on_disk = self._handed  # the trailer wrote what the muxer still held
            except Exception as exc:
                raise _size_refusal(self.path, exc) or _write_error(exc) from None
            finally:
                if not self.pictures_on_disk:
                    self.pictures_on_disk = self._file.pictures()
                self._file.close(keep=self.pictures_on_disk > 0)
        if self._file.deleted:
            raise self._lost()
        if self._failed:  # the write's own error is the one reported; this keeps the file from being called playable
            if not self.pictures_on_disk:
                raise RuntimeError(f"{self.path} was not written: no picture reached the disk")
            raise RuntimeError(f"{self.path} was left unfinished after a failed write")
        self.finalised = True
        # a FIFO's reader has the file: nothing to mend (it said "could not check its last picture's time")
        if self.frames_written and self.path.suffix.lower() in MP4_SUFFIXES and self._file.seekable():
            try:
                mend_last_picture(self.path)  # FFmpeg's hybrid MP4 may end the track one picture short
                if self._subtitles is not None or self._chapters:  # lines and chapters end with the pictures
                    end_text_tracks(self.path, None if complete else self.seconds_written)
                if self._subtitles is not None:
                    disable_tracks(self.path, self._subtitles.not_shown_by_default())
            except (OSError, ValueError, IndexError, struct.error) as exc:
                log.warning(f"{self.path.name}: could not check its last picture's time ({_one_line(exc)})")
            if self.codec == "prores" and self.path.suffix.lower() == ".mov":
                try:
                    mark_prores_vendor(self.path)
                except (OSError, ValueError, IndexError, struct.error) as exc:
                    log.warning(f"{self.path.name}: could not write Apple's vendor code into its ProRes sample "
                                f"description, which FFmpeg marks FFMP ({_one_line(exc)})")
        if self.pictures_left_out:
            log.warning(f"{self.path.name}: {self.pictures_left_out} of {self.frames_written + self.pictures_left_out} "
                        f"pictures came closer together than AVI's fixed {rate_text(float(self.rate))} fps and were "
                        f"left out to keep the pictures in step with the sound; .mp4 or .mkv keep every picture")

    def _flush_video(self) -> None:
        """Mux what the encoder still holds. MP4 and MOV time each picture but the last one stored by the next
        one's decoding time, and with B-frames the last picture shown is stored before others: a long last picture
        (a GIF's) would last one frame period. The last packet stored then lasts to where that picture ends.
        (Only then: the track's media would be longer than its pictures, and its average rate read lower.) The last
        packets' decoding times reach where the pictures end (_end_decoding)."""
        if not self.stream.codec_context.is_open:  # no picture came to decide its pictures: nothing to flush
            return
        limit = MAX_LAST_PICTURE_TICKS.get(self.path.suffix.lower())
        if self.frames_written and limit is not None and self._last_ticks > limit:  # longer than the container holds
            self._hold_last(self._last_pts + self._last_ticks, ending=True)
        packets = list(self.stream.encode(None))
        end = self._last_pts + self._last_ticks
        held = min(self._frame_ticks, self._max_ticks or self._frame_ticks)  # what the packet was given at most
        if packets and packets[-1].pts is not None and self.path.suffix.lower() in MP4_SUFFIXES:
            self._end_decoding(packets, end, longer=self._last_ticks > held)
        for packet in packets:
            self._mux(packet, picture=True)

    def _dts_unset(self) -> bool:
        """Whether the encoder's decoding times are unset: x265's, before its third picture."""
        return self._encoded <= X265_DTS_FRAMES and codec_of(self.codec).encoder == "libx265"

    def _end_decoding(self, packets: list[Any], end: int, longer: bool) -> None:
        """Make the last packets (`packets`, the encoder's last, in decoding order) end the track's decoding times
        where its pictures end (`end`). An MP4 or MOV sample lasts until the next one's decoding time, and FFmpeg
        reads a track's length as their sum; the encoder's decoding times lag its presentation times (x264's and
        x265's two pictures behind), so a pause before one of the last two pictures was only in their composition
        offsets: FFmpeg read 1.03 s of 21 s (a last picture 20 s after the others) and cut that picture. A long last
        picture (`longer`) stored before others: the last packet lasts to where that picture ends (the end the edit
        list is mended to)."""
        last = packets[-1]
        duration = self._durations.pop(last.pts, last.duration or 0)
        if longer:
            duration = max(duration, end - last.pts)
        delay = self._start_delay(packets)
        times = self._late_decoding(packets, end, delay)
        if times is not None:
            for packet, dts in zip(packets, times):
                packet.dts = dts
            duration = max(duration, end - delay - times[-1])
        last.duration = duration

    def _start_delay(self, packets: list[Any]) -> int:
        """How far the decoding times start before the first picture's presentation time, 0 (what the edit list
        skips): from the first packet muxed, else the first of `packets`."""
        return max(0, -(self._first_dts if self._first_dts is not None else packets[0].dts))

    def _late_decoding(self, packets: list[Any], end: int, delay: int) -> list[int] | None:
        """The packets' decoding times moved as late as needed (None where they stay): the last one's to its
        presentation time less the start `delay` (shown by its end when it lasts to `end` on the decoding clock), and
        each one before it so that it lasts, to the next one's, no later than `end` from its presentation time:
        FFmpeg's muxer ends the edit list there (the track was 40.9 s for 21 s). Times only ever move later,
        and not at all for a steady stream. None where a time is unknown or unset (x265's first pictures), or
        where the first one would move: the stream's first (which sets the start delay), or one after a packet
        muxed that would then last past `end`."""
        if self._dts_unset() or any(packet.dts is None or packet.pts is None for packet in packets):
            return None
        times = [max(packets[-1].dts, packets[-1].pts - delay)]
        for packet in reversed(packets[:-1]):  # each a tick at least before the next one (end > its pts)
            times.append(max(packet.dts, times[-1] - (end - packet.pts)))
        times.reverse()
        if times[0] > packets[0].dts and (self._stored is None or self._stored[0] + times[0] - self._stored[1] > end):
            return None
        return times

    def _lost(self) -> OutputFailed:
        """The error of an output deleted during the run; nothing of it is on a disk any more."""
        self.pictures_on_disk = 0
        return OutputFailed(f"{self.path} was deleted during the run (or its folder removed), and the frames "
                            f"written went with it; run again, writing where the file can stay")

    def _raise_write_error(self, exc: BaseException) -> NoReturn:
        """A failed encode or mux raised as its user reads it: a muxer's or the file system's refusal as one line,
        our file's own error where PyAV wrapped it ("Error in PyAV callback"), else as it came."""
        refusal = self._refusal(exc) or _size_refusal(self.path, exc)
        if refusal is not None:
            raise refusal from None
        cause = _write_error(exc) if isinstance(exc, Exception) else exc
        if cause is not exc:
            raise cause from None
        raise exc

    def _refusal(self, exc: BaseException) -> UserError | None:
        """FFmpeg's muxers fail with a bare -1, which is EPERM: once the file is open and its header written,
        "Operation not permitted" is a muxer refusing a packet, not a permission problem, and is said so. Its MP4
        muxer refuses a time it cannot store (a composition offset over 2**31 ticks) as "Not yet implemented in
        FFmpeg, patches welcome" (AVERROR_PATCHWELCOME), which says nothing of the file or what to do."""
        import av

        if not (self._started and isinstance(exc, av.error.FFmpegError)):
            return None
        copied = self._audio.copied_codecs() if self._audio else []
        what = f"the video or the {' or '.join(copied)} audio copied from the input" if copied else "the video"
        muxer = f"cannot write {self.path.name}: FFmpeg's {self.container.format.name} muxer"
        if isinstance(exc, av.error.PatchWelcomeError) and self.path.suffix.lower() in MP4_SUFFIXES:
            return UserError(f"{muxer} cannot store the times of {what} (a pause too long for its 32-bit times); "
                             f"write .mkv instead")
        if exc.errno != errno.EPERM:
            return None
        return UserError(f"{muxer} refused {what} (its error -1, not a permission problem); try another output type, "
                         f"e.g. .mkv")
