"""Writing video files with PyAV: H.264 (or the container's natural codec), the input's audio kept.

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
keys as mdta keys), title, make and model; and the kept audio stream's language.

Audio. Only ONE audio stream is kept: the input's default one, else its first. Its packets are copied
where the container takes the codec (no quality loss), else decoded and encoded again (AAC; Opus for
WebM, PCM for AVI, which has no audio timestamps, so copying could not keep an offset) on the input's
timeline: offsets kept, gaps filled with silence, channels kept (up to 7.1). Audio is written
up to the end of the pictures written so far, which the video encoder's delay keeps just ahead of the
video in the muxer: the two are interleaved as they go, and a run that stops early leaves a file
whose sound ends with its pictures. Clips joined as they are (`cat a.ts b.ts`: time goes back at the join)
play one after the other: the sound of each clip follows its pictures, as in the clip.

Chapters and subtitles. The input's chapters are kept, on the output's timeline (shifted as the sound is; a
chapter outside the part taken is left out, one across its start begins at 0, one across its end ends there),
where the container holds them (all but AVI). Its subtitle streams are kept, timed as the sound is: text ones
copied where the container takes their codec, else converted by FFmpeg (SRT, ASS and WebVTT to MP4's mov_text,
mov_text to SRT in Matroska, any to WebVTT in WebM), bitmap ones (DVD, Blu-ray) copied where the container takes
them; each with its language, name and default and forced flags. Chapters are written when the file is closed
(they are known, cut, only then; MP4's QuickTime chapter track, written with the header, is cut then); the subtitles
are interleaved with the pictures as the sound is, each line once the pictures pass its end, so a line on screen
where a run stops ends with the last picture. Clips joined as they are (MPEG-TS): a line goes with its clip's
pictures, found by the pictures' own times going back in the file before it.

Colour. BGR is converted to 4:2:0, limited range, with accurate rounding, and tagged: matrix BT.709
from 1280 wide or over 576 lines, BT.601 below. That is what players assume for untagged video, so
players that ignore the tags agree with those that read them. Primaries and transfer are BT.709
(sRGB's). AVI carries no colour tags.
"""
from __future__ import annotations

import bisect
import errno
import functools
import logging
import math
import operator
import os
import struct
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from stream.errors import UserError
from stream.mp4_edit_list import disable_tracks, end_text_tracks, mend_last_picture
from stream.paths import ensure_writable

log = logging.getLogger(__name__)

VIDEO_CODECS = {".mp4": "libx264", ".m4v": "libx264", ".mov": "libx264", ".mkv": "libx264",
                ".webm": "libvpx-vp9", ".avi": "mpeg4"}
# Audio codecs (canonical names) each container takes as they are; anything else is transcoded.
PCM_INTEGERS = {"pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s24be", "pcm_s32le", "pcm_s32be"}
AUDIO_COPYABLE = {
    ".mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"},
    ".m4v": {"aac", "ac3", "alac"},  # FFmpeg's ipod muxer refuses the rest (MP3, E-AC-3) when the file opens
    ".mov": {"aac", "mp3", "ac3", "eac3", "alac", *PCM_INTEGERS, "pcm_f32le", "pcm_f32be"},  # QuickTime's in24 is BE
    ".mkv": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac", "vorbis", *PCM_INTEGERS, "pcm_f32le"},
    ".webm": {"opus", "vorbis"},
    ".avi": set(),  # AVI has no audio timestamps: only audio placed by _place (gaps as silence) stays in step
}
MP3_IN_MP4_MIN_RATE = 16000  # MP4's muxer refuses MPEG-2.5 (8 to 12 kHz) MP3 at its first packet; MOV takes it
# AAC elsewhere. AVI cannot record an encoder's start delay (AAC would play 23 ms late): PCM has none.
AUDIO_TRANSCODE = {".webm": "libopus", ".avi": "pcm_s16le"}
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
MP4_SUFFIXES = (".mp4", ".m4v", ".mov")
HYBRID_MP4_SINCE = (61, 7)  # libavformat of FFmpeg 7.1, the first with movflags=hybrid_fragmented
# The input's container tags that are not kept: those the muxer writes itself or that describe the input's own
# file (its brand, its encoder, its length), and a timecode, which would start a timecode track at the input's
# first frame whatever part was taken.
OWN_TAGS = {"major_brand", "minor_version", "compatible_brands", "encoder", "duration", "timecode"}
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
    return options


def readable_again(path: Path) -> bool:
    """Whether the input `path` can be opened again beside the source reading it: a regular file. A pipe or a FIFO
    (`cat clip.ts | depthcam run /dev/stdin`) gives its bytes once: a second reader took a part of them from the
    pictures (37 of 240 frames lost), failed on the rest, or, once the writer into a FIFO had gone, waited forever."""
    try:
        return Path(path).is_file()
    except OSError:
        return False


def kept_tags(source: Path | Mapping[str, str] | None) -> dict[str, str]:
    """The input's container tags that the output keeps: when and where it was recorded (creation_time, a
    phone's location), its title, the camera's make and model; empty where the input has none or cannot be
    read again (a pipe). A photo app sorts videos by their creation time, and shows them on a map by their location.
    `source`: the input file, or the tags its open container read."""
    import av

    if source is None:
        return {}
    if isinstance(source, Mapping):
        tags = dict(source)
    elif not readable_again(source):
        return {}
    else:
        try:
            with av.open(str(source)) as container:
                tags = dict(container.metadata)
        except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError):
            return {}
    return {key: _one_value(value) for key, value in tags.items() if key.lower() not in OWN_TAGS and value}


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

# FFmpeg's default layout for each channel count (av_channel_layout_default).
STANDARD_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
# Opus's: 5.1 and 7.1 stay so (they were mixed down to stereo). libopus refused 2.1 and 4.0, and put 5.0's and 6.1's
# channels in the wrong places (the centre behind): those are made 5.1 or 7.1, each channel where it was.
OPUS_LAYOUTS = {1: "mono", 2: "stereo", 3: "5.1", 4: "5.1", 5: "5.1", 6: "5.1", 7: "7.1", 8: "7.1"}
MPEG4_MAX_TICKS = 65535  # MPEG-4 Part 2 (AVI) takes at most this many time-base ticks a second
# FFmpeg's AVI muxer times video faster than this in 1/600 s, where the pictures' times collide (the run failed)
AVI_MAX_FPS = 1000
# The largest picture side each encoder takes, even (4:2:0): MPEG-4 Part 2's 13-bit fields, x264's and libvpx's
# limits. Beyond them the encoder refused to open with "Generic error in an external library".
VIDEO_MAX_SIDE = {"mpeg4": 8190, "libx264": 16384, "libvpx-vp9": 65536}
# The longest a picture may last, in the writer's ticks, where the container limits it; a longer pause (a security
# camera's, a timestamp jump) is held by showing the picture again, so the times stay as they were. FFmpeg's MP4
# muxer refuses a sample or a composition offset of 2**31 ticks or more (3.3 hours on 59.94 fps's 180 kHz clock): a
# quarter of that leaves room for B-frames, whose offsets span two pauses here (the copies are P-frames). Its AVI muxer
# fills a gap with at most 60000 empty chunks (33 minutes at 30 fps). Both failed the run with a bare error.
MP4_MAX_TICKS = 1 << 31  # FFmpeg's MP4 muxer: no sample or composition offset of this many ticks of its track
MAX_PICTURE_TICKS = {**{suffix: MP4_MAX_TICKS // 4 for suffix in MP4_SUFFIXES}, ".avi": 60000}
# The last picture has no offset to spare room for: it is held as one picture up to half of 2**31 ticks, and only
# beyond that shown again (x264's decoding times, two pictures behind, made a track that ends with copies after a
# pause longer than it is in FFmpeg's eyes: 7.6 h for 6 h of a 1/7200 fps time-lapse).
MAX_LAST_PICTURE_TICKS = {**{suffix: MP4_MAX_TICKS // 2 for suffix in MP4_SUFFIXES}, ".avi": 60000}
AUDIO_SNAP_S = 0.005  # audio this close to contiguous is contiguous (Matroska rounds times to 1 ms)
# A first picture this far into the sound (--start) is reached by a jump, not by reading all the file before it: it
# took ~2.6 ms per second skipped (a stall of minutes before the first frame of a long video's last minutes). Only in
# the indexed formats, whose jumps land where asked; MPEG-TS's clips joined as they are go back in time.
AUDIO_SEEK_AFTER_S = 10.0
AUDIO_SEEK_FORMATS = {"mov", "mp4", "matroska", "webm"}
AUDIO_PREROLL_S = 1.0  # sound decoded before the first picture: a decoder's warm-up (Opus needs 80 ms)
# Subtitle codecs (canonical names) each container takes as they are. Other text subtitles are converted (decoded to
# their events and encoded again) into SUBTITLE_TRANSCODE's; other bitmap ones are left out. AVI takes none.
SUBTITLE_COPYABLE = {
    ".mp4": {"mov_text", "dvd_subtitle"},
    ".m4v": {"mov_text"},
    ".mov": {"mov_text"},
    ".mkv": {"subrip", "ass", "ssa", "webvtt", "text", "dvd_subtitle", "hdmv_pgs_subtitle", "dvb_subtitle"},
    ".webm": {"webvtt"},
}
SUBTITLE_TRANSCODE = {".mp4": "mov_text", ".m4v": "mov_text", ".mov": "mov_text", ".mkv": "subrip", ".webm": "webvtt"}
SUBTITLE_PREROLL_S = 10.0  # a jump to --start lands this far before it: a line on screen at the start is kept
# and, by the index, a longer one on screen at the start that began up to this far before it, among the last lines
# before the jump's landing (a jump to each, to read where it ends; FFmpeg's Matroska demuxer looks back 30 s)
SUBTITLE_LOOKBACK_S, SUBTITLE_LOOKBACK_LINES = 60.0, 8
SUBTITLE_FLAGS = ("default", "forced", "hearing_impaired", "visual_impaired")  # the dispositions kept
# A subtitle stream is sparse: FFmpeg's interleaver held the other streams' packets up to 10 s waiting for its next
# packet (a killed run lost them); 1 s keeps the "up to its last second or so" of a crash.
SPARSE_INTERLEAVE_US = "1000000"
# How long a line is held, outside MP4, before it is muxed with its whole length: one that ends sooner is cut at a
# stop's last picture; a longer one is written near its start, within the interleaver's second.
SUBTITLE_HOLD_S = 0.5
CHAPTER_TIME_BASE = Fraction(1, 1_000_000)
# AVCOL_* values (FFmpeg's pixfmt.h) for the stream's colour tags.
RANGE_LIMITED, MATRIX_BT709, MATRIX_BT601, PRIMARIES_BT709, TRANSFER_BT709 = 1, 1, 6, 1, 1


def video_suffixes() -> list[str]:
    return sorted(VIDEO_CODECS)


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


def check_video_size(what: str, suffix: str, width: int, height: int) -> None:
    """A picture larger than the container's encoder takes is refused in one line, with the types that take it
    (FFmpeg's own refusal was "Generic error in an external library")."""
    side, limit = max(width + width % 2, height + height % 2), VIDEO_MAX_SIDE.get(VIDEO_CODECS.get(suffix, ""))
    if limit is not None and side > limit:
        wider = [other for other, codec in (("mp4 or .mkv", "libx264"), ("webm", "libvpx-vp9"))
                 if VIDEO_MAX_SIDE[codec] >= side]
        fix = f"use .{wider[0]}" if wider else "make it smaller"
        raise UserError(f"{what}: {suffix} video is at most {limit} px a side and this one is {width}x{height}; "
                        f"{fix}")


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
        self._partial = path if self._direct else path.with_name(f".{path.name}.part")
        self._fd: int | None = None
        self._pos = 0
        self.size = 0  # bytes that reached the disk
        self.interrupted = False  # a Ctrl-C landed here, where PyAV's callback would swallow it

    def _open(self) -> int:
        if self._fd is None:
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
            try:
                self._fd = os.open(self._partial, flags, 0o666)
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, self.name) from None
        return self._fd

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return not self._direct

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._pos = os.lseek(self._open(), offset, whence)
        return self._pos

    def write(self, data: bytes) -> int:
        view, fd = memoryview(data), self._open()
        while view:  # all of it: FFmpeg takes a short write for a whole one
            try:
                view = view[os.write(fd, view):]
            except KeyboardInterrupt:  # raised after the mux instead (the write is retried)
                self.interrupted = True
            except OSError as exc:  # named as the output, not the hidden file
                raise OSError(exc.errno, exc.strerror, self.name) from None
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
        fd, self._fd = self._fd, None
        os.close(fd)
        if self.committed:
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
                 part_end: float | None = None) -> None:
        """`audio_from`: the file whose sound is kept; `tags_from`: the file whose container tags (creation time,
        location, title) are kept, or those tags, by default `audio_from`'s; `subtitles_from`: the file whose
        subtitle streams are kept; `chapters`: the input's chapters (as PyAV reads them), kept on the output's
        timeline; `part_end`: where the part taken (--duration) ends, in the input's seconds: a subtitle line is
        written as it starts, so it is cut there in advance."""
        import av
        from av.video.reformatter import VideoReformatter

        suffix = path.suffix.lower()
        if suffix not in VIDEO_CODECS:
            raise UserError(f"cannot write {path}: unknown video type {suffix or '(none)'}; "
                            f"use one of {', '.join(video_suffixes())}")
        check_video_size(f"cannot write {path}", suffix, width, height)
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
        # 4:2:0 needs even sizes; odd frames are padded by one edge row/column.
        self.width, self.height = width + width % 2, height + height % 2
        self._hd = is_hd(self.width, self.height)
        self._reformatter = VideoReformatter()
        self.frames_written = 0
        # Pictures known to be in the file: those handed to the muxer before a call that wrote to it (a fragment
        # or a cluster ends before the packet that closes it). After a full disk, what the file holds less at most
        # the last fragment's pictures, which a player may find part of.
        self.pictures_on_disk = 0
        self.finalised = False  # closed without an error: complete and playable
        self._handed = 0  # pictures the muxer took
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
        self._part_end = part_end
        self._started = False  # the file is open and its header written: an EPERM from then on is FFmpeg's -1
        self._audio: _AudioTrack | None = None
        self._subtitles: _SubtitleTracks | None = None
        self._chapters = list(chapters or [])
        if self._chapters and suffix == ".avi":
            log.warning(f"{path.name}: the {len(self._chapters)} chapters of the input are left out: .avi holds none; "
                        f"write .mp4 or .mkv to keep them")
            self._chapters = []
        # Each picture's own duration in ticks, by its time, for its packet: a GIF's or a variable frame rate's long
        # last picture is held as long in the output (else one nominal frame period)
        self._durations: dict[int, int] = {}
        self._last_ticks = self._frame_ticks  # the duration of the last picture given
        self._max_ticks = MAX_PICTURE_TICKS.get(suffix)
        self._last_frame: Any = None  # the last picture encoded, shown again through a pause longer than _max_ticks
        self._repeats: set[int] = set()  # the times of those shown again, which are no picture of the input
        self._file = _OutputFile(path)
        tags = kept_tags(tags_from if tags_from is not None else audio_from)
        if suffix == ".avi":
            tags = with_riff_date(tags)
        if audio_from is not None and not readable_again(audio_from):
            log.warning(f"the sound of {audio_from} is left out: a pipe is read once, for the pictures; "
                        f"give the file itself to keep its sound")
            audio_from = None
        if subtitles_from is not None and not readable_again(subtitles_from):
            log.warning(f"the subtitles of {subtitles_from} are left out: a pipe is read once, for the pictures; "
                        f"give the file itself to keep them")
            subtitles_from = None
        try:
            self.container = av.open(self._file, "w", container_options=container_options(suffix, tags))
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise UserError(f"cannot write {path}: {_one_line(exc)}") from None
        self.container.metadata.update(tags)
        try:
            self.stream = self._add_video(VIDEO_CODECS[suffix], crf)
            if audio_from:
                self._audio = _AudioTrack(self.container, audio_from, suffix, self._mux)
            if subtitles_from:
                self._subtitles = self._add_subtitles(subtitles_from, suffix, part_end)
        except BaseException as exc:
            for track in (self._audio, self._subtitles):
                if track is not None:
                    track.close()
            self.container.close()  # nothing was muxed, so no file was created
            if isinstance(exc, (av.error.FFmpegError, OSError, ValueError)):
                raise UserError(f"cannot write {path}: {_one_line(exc)}") from None
            raise

    def _add_subtitles(self, source: Path, suffix: str, part_end: float | None) -> _SubtitleTracks | None:
        """The input's subtitle streams, where any can be kept. The muxer is told not to wait long for them."""
        tracks = _SubtitleTracks(self.container, source, suffix, self._mux, part_end)
        if not tracks.streams:
            tracks.close()
            return None
        self.container.container_options["max_interleave_delta"] = SPARSE_INTERLEAVE_US
        return tracks

    def _add_video(self, codec: str, crf: int) -> Any:
        stream = self.container.add_stream(codec, rate=self.rate)  # the nominal rate, kept as metadata
        stream.width, stream.height = self.width, self.height
        stream.pix_fmt = "yuv420p"
        stream.time_base = self.time_base
        context = stream.codec_context
        context.time_base = self.time_base
        context.color_range = RANGE_LIMITED
        context.colorspace = MATRIX_BT709 if self._hd else MATRIX_BT601
        context.color_primaries, context.color_trc = PRIMARIES_BT709, TRANSFER_BT709
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "veryfast"}
        elif codec == "libvpx-vp9":
            stream.options = {"crf": "32", "b": "0", "deadline": "realtime", "cpu-used": "8"}
        stream.thread_type = "AUTO"
        context.open()  # bad encoder settings fail here rather than at the first frame
        return stream

    def write(self, image_bgr: np.ndarray, pts_seconds: float | None = None,
              duration_seconds: float | None = None) -> None:
        import av
        from av.video.frame import PictureType
        from av.video.reformatter import Interpolation

        if self._origin is None:
            self._origin = self._first_origin = pts_seconds or 0.0
            for track in (self._audio, self._subtitles):
                if track is not None:
                    track.begin_at(self._origin)
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
        height, width = image_bgr.shape[:2]
        if (width + width % 2, height + height % 2) != (self.width, self.height):
            # padding a bigger picture failed deep in numpy, and a smaller one was smeared into the corner
            raise ValueError(f"a {width}x{height} picture for {self.path.name}, opened at {self.width}x{self.height}: "
                             f"every picture must have the first one's size")
        if width != self.width or height != self.height:
            image_bgr = np.pad(image_bgr, ((0, self.height - image_bgr.shape[0]),
                                           (0, self.width - image_bgr.shape[1]), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image_bgr), format="bgr24")
        # swscale's default (fast) path rounds coarsely: mid-grey 128 came back as 124,126,123.
        frame = self._reformatter.reformat(
            frame, format="yuv420p", dst_colorspace="itu709" if self._hd else "itu601", dst_color_range="MPEG",
            interpolation=Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INP
            | Interpolation.BITEXACT)
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
                cut = None if self._part_end is None else self._part_end - self._first_origin
                chapters = kept_chapters(self._chapters, self._first_origin, cut)
                if chapters and chapters[0]["start"] == 0:
                    self.container.set_chapters(chapters)
            self.container.start_encoding()  # the file opened now (once): an EPERM from here on is FFmpeg's -1
            self._started = True
            if self._hold_last(pts):
                frame.pict_type = PictureType.P  # as a B-frame, its decoding time lagged a pause behind
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
            refusal = self._refusal(exc)
            if refusal is None:
                raise
            raise refusal from None

    def _hold_last(self, until: int, ending: bool = False) -> bool:
        """Show the last picture again wherever it would otherwise last longer than the container holds before
        `until`: the next picture's time, or (`ending`) where the last one ends. There the last three copies come a
        frame apart: x264's decoding times lag two pictures behind, and FFmpeg's MP4 demuxer takes the track's
        length from them (it read 2470 s of a 4 h last picture). Each copy is a P-frame: as a B-frame one was
        stored before the one after it."""
        limit = self._max_ticks
        if limit is None or self._last_frame is None or until - self._last_pts <= limit:
            return False
        frame = max(1, min(round(self._frame_ticks), round(1 / self.time_base)))  # a frame period, at most 1 s
        tail = [until - 3 * frame, until - 2 * frame, until - frame] if ending else []
        times, last = [], self._last_pts
        while (tail[0] if tail else until) - last > limit:
            last += limit
            times.append(last)
        for pts, after in zip(times + tail, times[1:] + tail + [until]):
            self._repeat(pts, after - pts)
        return True

    def _repeat(self, pts: int, ticks: int) -> None:
        """Encode the last picture again at `pts`, lasting `ticks`."""
        from av.video.frame import PictureType

        self._last_ticks = self._durations[pts] = ticks
        self._last_frame.pts, self._last_frame.pict_type = pts, PictureType.P
        self._repeats.add(pts)
        for packet in self.stream.encode(self._last_frame):
            self._mux(packet, picture=True)
        self._last_pts = pts

    def _mux(self, packet: Any, picture: bool = False) -> None:
        """Mux a packet, counting the pictures on the disk; the first one puts the file under its name."""
        size = self._file.size
        if picture and packet.pts is not None and packet.pts in self._durations:
            packet.duration = self._durations.pop(packet.pts)
        if picture and len(self._durations) > 64 and packet.dts is not None:  # an encoder that moved a pts
            # a packet's pts is at least its dts, and dts grow: every picture shown before this dts is muxed
            self._durations = {pts: ticks for pts, ticks in self._durations.items() if pts >= packet.dts}
        self.container.mux(packet)
        if self._file.size > size:
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
            refusal = self._refusal(exc)
            if refusal is None:
                raise
            raise refusal from None
        finally:
            for track in (self._audio, self._subtitles):
                if track is not None:
                    track.close()
            try:
                self.container.close()
                self.pictures_on_disk = self._handed  # the trailer wrote what the muxer still held
            except Exception as exc:
                raise _write_error(exc) from None
            finally:
                if not self.pictures_on_disk:
                    self.pictures_on_disk = self._file.pictures()
                self._file.close(keep=self.pictures_on_disk > 0)
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
        if self.pictures_left_out:
            log.warning(f"{self.path.name}: {self.pictures_left_out} of {self.frames_written + self.pictures_left_out} "
                        f"pictures came closer together than AVI's fixed {float(self.rate):.3g} fps and were left out "
                        f"to keep the pictures in step with the sound; .mp4 or .mkv keep every picture")

    def _flush_video(self) -> None:
        """Mux what the encoder still holds. MP4 and MOV time each picture but the last one stored by the next
        one's decoding time, and with B-frames the last picture shown is stored before others: a long last picture
        (a GIF's) would last one frame period. The last packet stored then lasts to where that picture ends.
        (Only then: the track's media would be longer than its pictures, and its average rate read lower.)"""
        limit = MAX_LAST_PICTURE_TICKS.get(self.path.suffix.lower())
        if self.frames_written and limit is not None and self._last_ticks > limit:  # longer than the container holds
            self._hold_last(self._last_pts + self._last_ticks, ending=True)
        packets = list(self.stream.encode(None))
        end = self._last_pts + self._last_ticks
        held = min(self._frame_ticks, self._max_ticks or self._frame_ticks)  # what the packet was given at most
        longer = self._last_ticks > held and self.path.suffix.lower() in MP4_SUFFIXES
        for index, packet in enumerate(packets):
            if longer and index == len(packets) - 1 and packet.pts is not None:
                packet.duration = max(self._durations.pop(packet.pts, packet.duration or 0), end - packet.pts)
            self._mux(packet, picture=True)

    def _refusal(self, exc: BaseException) -> UserError | None:
        """FFmpeg's muxers fail with a bare -1, which is EPERM: once the file is open and its header written,
        "Operation not permitted" is a muxer refusing a packet, not a permission problem, and is said so."""
        import av

        if not (self._started and isinstance(exc, av.error.FFmpegError) and exc.errno == errno.EPERM):
            return None
        audio = self._audio
        what = f"the video or the {audio.codec} audio copied from the input" if audio and audio.copy else "the video"
        return UserError(f"cannot write {self.path.name}: FFmpeg's {self.container.format.name} muxer refused {what} "
                         f"(its error -1, not a permission problem); try another output type, e.g. .mkv")


class _Clips:
    """Clips joined as they are (`cat a.ts b.ts`) as a track of the sound or the lines reads them: the origin of each
    clip after the first (`joins`, as the video set it at its first picture) and the clip of the packets read. In
    the formats that can be joined so (not the indexed ones, whose times never go back) the track's demuxer reads
    the pictures' packets too (not decoded: an MPEG-TS demuxer reads every byte anyway), and a packet's clip is the
    joins passed in the pictures before it; else a join is where the track's own time goes back. By its own times
    alone, a clip without sound or lines showed no join, and the next clip's took its origin (its sound and lines
    came out under the clip before)."""

    def __init__(self, container: Any) -> None:
        from stream.sources import chosen_video_stream

        indexed = AUDIO_SEEK_FORMATS & set(container.format.name.split(","))
        self.video = None if indexed else chosen_video_stream(container)
        self.joins: list[float] = []
        self.clip = 0  # the joins passed
        self._last_picture: float | None = None  # in the input's seconds

    def demux(self, container: Any, *streams: Any) -> Any:
        """The track's packets, and the pictures' where they are watched."""
        return container.demux(*streams, *([self.video] if self.video is not None else []))

    def passed(self, packet: Any) -> bool:
        """Whether `packet` is a picture's, counted: a join where their decoding times go back (their presentation
        times go back at B-frames)."""
        if self.video is None or packet.stream.index != self.video.index:
            return False
        time = packet.dts if packet.dts is not None else packet.pts
        if time is not None:
            seconds = float(time * packet.time_base)
            if self._last_picture is not None and seconds < self._last_picture - AUDIO_SNAP_S:
                self.clip += 1
            self._last_picture = seconds
        return True

    def went_back(self) -> None:
        """The track's own time went back: a join, where the pictures are not watched."""
        if self.video is None:
            self.clip += 1

    def origin(self, first: float) -> float | None:
        """The origin of the clip read (`first` the first clip's); None where the pictures have not reached it."""
        if self.clip > len(self.joins):
            return None
        return self.joins[self.clip - 1] if self.clip else first


class _AudioTrack:
    """One audio stream of `source` on the video's timeline (seconds after `origin`, the first picture's
    time in the source): packets copied, or decoded, placed by their times and encoded again."""

    def __init__(self, container: Any, source: Path, suffix: str, mux: Callable[[Any], None]) -> None:
        import av

        self.container = container
        self.mux = mux  # the writer's, which counts what reaches the disk
        self.suffix, self.name = suffix, Path(source).name
        self._copied_dts: float | None = None  # the last packet copied, in the output's seconds
        self.source = Path(source)
        self.input = av.open(str(source))
        try:
            streams = list(self.input.streams.audio)
            default = [s for s in streams if s.disposition & av.stream.Disposition.default]
            self.in_stream = (default or streams)[0]
            if len(streams) > 1:  # the others are left out: said, as a player would offer them
                language = self.in_stream.metadata.get("language", "und")
                log.warning(f"{Path(source).name} has {len(streams)} audio streams; the output keeps one: "
                            f"number {streams.index(self.in_stream) + 1}"
                            f"{f' ({language})' if language != 'und' else ''}, "
                            f"{'the default one' if default else 'the first'}")
            # The codec, not the decoder: FFmpeg decodes mp3 with "mp3float".
            self.codec = codec = self.in_stream.codec_context.codec.canonical_name
            self.copy = codec in AUDIO_COPYABLE.get(suffix, set()) and not (
                codec == "mp3" and suffix == ".mp4" and self.in_stream.codec_context.sample_rate < MP3_IN_MP4_MIN_RATE)
            self.adts = None
            if self.copy:
                self.out_stream = container.add_stream_from_template(self.in_stream)
                self.adts = _adts_filter(self.in_stream, suffix)
            else:
                target = AUDIO_TRANSCODE.get(suffix, "aac")
                rate = _encoder_rate(target, self.in_stream.codec_context.sample_rate or 48000)
                self.out_stream = container.add_stream(
                    target, rate=rate, layout=_encoder_layout(target, self.in_stream.codec_context.layout))
                out = self.out_stream.codec_context
                out.open()  # an encoder that refuses these settings fails now, not at the first frame
                self.out_rate = out.sample_rate
                self.frame_size = out.frame_size or 1024
                self.resampler = av.AudioResampler(format=out.format.name, layout=out.layout.name, rate=self.out_rate)
                self.fifo = av.AudioFifo()
                log.info("transcoding %s audio to %s at %d Hz for %s", codec, target, self.out_rate, suffix)
            # the track's language (a player picks the track, and names it, by it) and name
            self.out_stream.metadata.update({key: value for key, value in self.in_stream.metadata.items()
                                             if key in ("language", "title") and value and value != "und"})
            self.clips = _Clips(self.input)
            self.packets = self.clips.demux(self.input, self.in_stream)
        except BaseException:
            self.input.close()
            raise
        self.origin = self.first_origin = 0.0  # the origin of the clip read, and of the first one
        self.joins = self.clips.joins  # the writer adds each join's origin
        self._last_time: float | None = None  # the last packet's time, in the input's seconds
        self._copied_until: int | None = None  # where the last packet copied ends on the output's timeline, in ticks
        self.pending: Any = None
        self.done = False
        # Input samples placed so far, counted from the origin: a later start is preceded by silence, so
        # the track starts with the pictures even where a player ignores the container's start delay.
        self._next = 0
        self._out_pts = 0  # the output sample where the FIFO's first sample goes

    def begin_at(self, origin: float) -> None:
        """Set the origin (the first picture's time), and jump to the sound a little before it where that is far
        into the file. A jump that lands after the origin is undone: the sound is read from its beginning."""
        import av

        self.origin = self.first_origin = origin
        stream, time_base = self.in_stream, self.in_stream.time_base
        start = float(stream.start_time * time_base) if stream.start_time is not None else 0.0
        if origin - start < AUDIO_SEEK_AFTER_S or not AUDIO_SEEK_FORMATS & set(self.input.format.name.split(",")):
            return
        try:  # by the file's default stream, its video: Matroska's index (cues) holds only its keyframes
            self.input.seek(round((origin - AUDIO_PREROLL_S) * 1_000_000), backward=True)
            self.packets = self.clips.demux(self.input, stream)
            self.pending = next((p for p in self.packets if p.pts is not None and not self.clips.passed(p)), None)
        except av.error.FFmpegError:
            self.pending = None
        if self.pending is None or float(self.pending.pts * time_base) > origin:
            self._reopen()

    def _reopen(self) -> None:
        """The input opened again, its sound read from the beginning."""
        import av

        index = self.in_stream.index
        self.input.close()
        self.input = av.open(str(self.source))
        self.in_stream = self.input.streams[index]
        if self.adts is not None:
            self.adts = _adts_filter(self.in_stream, self.suffix)
        self.clips = _Clips(self.input)
        self.clips.joins = self.joins
        self.packets, self.pending = self.clips.demux(self.input, self.in_stream), None

    def write_until(self, seconds: float | None) -> None:
        """Write the audio that starts before `seconds` (all of it for None)."""
        self._feed(seconds, None)
        if not self.copy:
            self._encode_fifo(seconds, cut=False)

    def finish(self, cut: float | None) -> None:
        """Write the rest of the audio, or with `cut` (an interrupted run) the audio up to it only."""
        self._feed(cut, cut)
        if self.copy:
            return
        for frame in self.in_stream.codec_context.decode(None):  # what the decoder still holds
            self._place(frame, cut)
        self._resample(None)
        self._encode_fifo(cut, cut=True)
        for packet in self.out_stream.encode(None):
            self.mux(packet)

    def _feed(self, seconds: float | None, cut: float | None) -> None:
        """Copy, or decode and place, the packets that start before `seconds`."""
        import av

        while not self.done:
            packet = self.pending or next(self.packets, None)
            self.pending = None
            if packet is None:
                self.done = True
                break
            if packet.dts is None and packet.size == 0 or self.clips.passed(packet):
                continue  # demuxer's flush packet, or a picture's
            time = float(packet.pts * packet.time_base) if packet.pts is not None else None
            if time is not None and self._last_time is not None and time < self._last_time - AUDIO_SNAP_S:
                self.clips.went_back()
            self._last_time = time if time is not None else self._last_time
            origin = self.clips.origin(self.first_origin)
            if origin is None:  # the pictures have not reached the join yet
                self.pending = packet
                self.done = seconds is None  # at the end: no picture after the join, so no sound either
                break
            self.origin = origin
            if seconds is not None and time is not None and time - self.origin >= seconds:
                self.pending = packet
                break
            if self.copy:
                self._copy(packet)
                continue
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                continue  # a damaged audio packet is skipped rather than ending the video
            for frame in frames:
                self._place(frame, cut)

    def close(self) -> None:
        self.input.close()
        # the writer's bound method held the writer, which holds this track: a cycle that kept the writer, its
        # x264 encoder's threads and buffers (~33 MB at 720p) alive into a batch's next inputs until a full collection
        self.mux = self.packets = None

    def _copy(self, packet: Any) -> None:
        shift = round(self.origin / packet.time_base)  # the origin in this packet's ticks
        if packet.pts is not None:
            if packet.pts + (packet.duration or 0) < shift:
                return  # ends before the first picture
            if self._copied_until is not None and \
                    packet.pts - shift < self._copied_until - AUDIO_SNAP_S / packet.time_base:
                return  # a joined clip's sound under the end of the clip before: the muxer takes no overlap
            packet.pts -= shift
            self._copied_until = packet.pts + (packet.duration or 0)
        if packet.dts is not None:
            packet.dts -= shift
            self._check_pause(float(packet.dts * packet.time_base))
        for out in self.adts.filter(packet) if self.adts is not None else (packet,):
            out.stream = self.out_stream
            self.mux(out)

    def _check_pause(self, seconds: float) -> None:
        """FFmpeg's MP4 muxer ends the whole process (an assertion: exit 134, no message, the file unfinished) at
        copied sound that pauses for 2**31 samples or more: 13.5 hours at 44.1 kHz. Refused in one line instead."""
        last, self._copied_dts = self._copied_dts, seconds
        rate = self.in_stream.codec_context.sample_rate or 48000
        if self.suffix not in MP4_SUFFIXES or last is None or (seconds - last) * rate < MP4_MAX_TICKS - rate:
            return
        at = f"{int(last // 3600)}:{int(last % 3600 // 60):02d}:{last % 60:04.1f}"
        raise UserError(f"the sound of {self.name} pauses for {(seconds - last) / 3600:.1f} hours from {at}, longer "
                        f"than {self.suffix} holds in sound copied at {rate} Hz ({MP4_MAX_TICKS / rate / 3600:.1f} "
                        f"hours); write .mkv")

    def _place(self, frame: Any, cut: float | None) -> None:
        """Put a decoded frame on the timeline: samples before the origin or already covered are
        dropped, a gap becomes silence, and with `cut` nothing goes past it."""
        rate = frame.sample_rate
        stop = None if cut is None else round(cut * rate)
        if frame.pts is not None and frame.time_base is not None:
            start = round((float(frame.pts * frame.time_base) - self.origin) * rate)
        else:
            start = self._next
        if abs(start - self._next) <= AUDIO_SNAP_S * rate:
            start = self._next  # contiguous, give or take the container's rounding
        elif start > self._next:
            gap = (start if stop is None else min(start, stop)) - self._next
            if gap > 0:
                self._fill(frame, gap)
        end = start + frame.samples if stop is None else min(start + frame.samples, stop)
        if end <= self._next:
            return  # before the origin, already written, or past the cut
        skip = self._next - start
        if skip > 0 or end < start + frame.samples:
            frame = _slice(frame, skip, end - start)
        self._resample(frame)
        self._next = end

    def _fill(self, like: Any, samples: int) -> None:
        """`samples` of silence, a second at a time, each encoded as it comes: made at once, a camera's pause of
        hours took gigabytes (an hour of stereo is 1.3 GB as 32-bit samples, twice that resampled), and a 10-minute
        one already 0.5 GB. All of it lies before a packet the pictures have passed."""
        while samples > 0:
            part = min(samples, like.sample_rate)
            self._resample(_silence(like, part))
            self._encode_fifo(None, cut=False)
            self._next += part
            samples -= part

    def _resample(self, frame: Any | None) -> None:
        """Into the FIFO at the encoder's rate and format; None flushes the resampler."""
        import av

        if frame is not None:
            frame.pts = None  # placed by _place; the output is timed by _out_pts
        try:
            resampled_frames = self.resampler.resample(frame)
        except ValueError:  # the input's format or layout changed mid-stream: a resampler for the new one
            out = self.out_stream.codec_context
            self.resampler = av.AudioResampler(format=out.format.name, layout=out.layout.name, rate=self.out_rate)
            resampled_frames = self.resampler.resample(frame)
        for resampled in resampled_frames:
            if resampled is not None:  # a pass-through resampler "flushes" None
                resampled.pts = None
                self.fifo.write(resampled)

    def _encode_fifo(self, seconds: float | None, cut: bool) -> None:
        """Encode whole encoder frames that end by `seconds`; with `cut` (the end), also the part of
        a frame up to it, and drop what is past it."""
        limit = None if seconds is None else round(seconds * self.out_rate)
        while True:
            room = self.fifo.samples if limit is None else min(self.fifo.samples, limit - self._out_pts)
            size = min(self.frame_size, room)
            if size <= 0 or (size < self.frame_size and not cut):
                break
            chunk = self.fifo.read(size)
            chunk.pts, chunk.time_base = self._out_pts, Fraction(1, self.out_rate)
            self._out_pts += size
            for packet in self.out_stream.encode(chunk):
                self.mux(packet)
        if cut:
            self.fifo.read()  # past the cut



class _SubtitleTracks:
    """The subtitle streams of `source` on the video's timeline, as _AudioTrack places the sound: copied where the
    container takes the codec, text ones converted where it does not, bitmap ones left out there (said in a line).
    They are few packets, read by a demuxer of their own that skips the pictures' and the sound's."""

    def __init__(self, container: Any, source: Path, suffix: str, mux: Callable[[Any], None],
                 part_end: float | None = None) -> None:
        import av

        self.mux, self.suffix, self.name = mux, suffix, Path(source).name
        self.part_end = part_end  # in the input's seconds: no line lasts past it
        self.input = av.open(str(source))
        # input stream index -> (output stream, decoder where converted, else None)
        self.tracks: dict[int, tuple[Any, Any | None]] = {}
        try:
            left_out = [stream for stream in self.input.streams.subtitles if not self._add(container, stream)]
            if left_out:
                log.warning(_left_out_line(self.name, suffix, left_out))
            self.streams = [self.input.streams[index] for index in self.tracks]
            self.clips = _Clips(self.input)
            self.packets = self._demux()
        except BaseException:
            self.input.close()
            raise
        self.origin = 0.0
        self._cut: float | None = None  # where the part ends on the output's timeline
        self.joins = self.clips.joins  # the writer adds each join's origin
        self._last_time: dict[int, float] = {}  # each input stream's last line, in the input's seconds
        self.pending: Any = None
        # each output stream's last line: where it began in the input and where it was written, in its ticks
        self._last: dict[int, tuple[int, int]] = {}
        # MP4's lines converted that start together, held to be written as one (output stream index -> the
        # start in ticks, the end in seconds or None, the time base, the decoded lines)
        self._held: dict[int, tuple[int, float | None, Any, list[Any]]] = {}
        # Each output stream's lines timed but not yet muxed, with where they end (seconds): a line is muxed once the
        # pictures pass its end, so a run stopped while it is on screen ends it with the last picture (muxed at
        # once, it ran up to its whole length past the video, and an MP4's duration with it)
        self._waiting: dict[int, list[tuple[Any, float | None]]] = {}

    def _demux(self) -> Any:
        if not self.streams:
            return iter(())
        return self.clips.demux(self.input, *self.streams)

    def _add(self, container: Any, stream: Any) -> bool:
        """An output stream for input `stream`: copied, else converted (text); False where neither can be."""
        import av

        codec, how = _codec_name(stream), _subtitle_kept(self.suffix, stream)
        decoder = None
        try:
            if how == "copied":
                out = container.add_stream_from_template(stream)
            elif how == "converted":
                decoder = stream.codec_context
                decoder.open(strict=False)  # its ASS header (styles), which the encoder takes
                out = container.add_stream(SUBTITLE_TRANSCODE[self.suffix])
                out.codec_context.subtitle_header = decoder.subtitle_header
                out.codec_context.time_base = out.time_base = stream.time_base
                log.info("converting %s subtitles to %s for %s", codec, SUBTITLE_TRANSCODE[self.suffix], self.suffix)
            else:
                return False
        except (av.error.FFmpegError, ValueError):  # a muxer or an encoder that refuses it
            return False
        tags = stream.metadata
        title = tags.get("title") or tags.get("name")  # MP4 stores a track's name as its "name"
        out.metadata.update({key: value for key, value in (("language", tags.get("language")), ("title", title))
                             if value and value != "und"})
        flags = av.stream.Disposition
        out.disposition = functools.reduce(operator.or_, (getattr(flags, flag) for flag in SUBTITLE_FLAGS),
                                           flags(0)) & stream.disposition
        self.tracks[stream.index] = (out, decoder)
        return True

    def begin_at(self, origin: float) -> None:
        """Set the origin (the first picture's time), and jump to a little before it where that is far into an
        indexed file, as the sound does."""
        import av

        self.origin = origin
        self._cut = None if self.part_end is None else self.part_end - origin  # the origin moves at a join
        start = self.input.start_time / 1_000_000 if self.input.start_time is not None else 0.0
        if not self.streams or origin - start < AUDIO_SEEK_AFTER_S or \
                not AUDIO_SEEK_FORMATS & set(self.input.format.name.split(",")):
            return
        window = round((origin - SUBTITLE_PREROLL_S) * 1_000_000)
        try:
            self.input.seek(window, backward=True)  # where Matroska's index (its cues) is read
            across = self._line_across(origin)
            if across is None:
                self.input.seek(window, backward=True)
            else:  # a line on screen at the origin began before the jump's landing: read from it
                self.input.seek(across[1], stream=across[0], backward=True)
        except av.error.FFmpegError:
            return  # read from the beginning (or where a jump landed), the lines before the origin left out
        self.packets = self._demux()

    def _line_across(self, origin: float) -> tuple[Any, int] | None:
        """The stream and time (its ticks) of the earliest line that began before the jump's window, by the index
        (Matroska's cues, read at the first jump; MP4's samples), and is still on screen at `origin`: a long line (a
        song's lyrics, a sign) that a jump to 10 s before the origin left out. The last few lines of each stream
        before the window, up to SUBTITLE_LOOKBACK_S before the origin, are read (a jump to each, a packet or two)
        to know where they end."""
        window, found = origin - SUBTITLE_PREROLL_S, None
        for stream in self.streams:
            base = stream.time_base
            stamps = [entry.timestamp for entry in stream.index_entries]
            last = bisect.bisect_right(stamps, window / base) - 1
            for place in range(last, max(-1, last - SUBTITLE_LOOKBACK_LINES), -1):
                if stamps[place] * base < origin - SUBTITLE_LOOKBACK_S:
                    break
                if found is not None and stamps[place] * base >= found[1] * found[0].time_base:
                    continue  # another stream's line begins earlier
                self.input.seek(stamps[place], stream=stream, backward=True)
                if self._line_end(stream, stamps[place]) > origin:
                    found = (stream, stamps[place])
        return found

    def _line_end(self, stream: Any, start: int) -> float:
        """Where the lines of `stream` that begin at `start` (its ticks; two speakers' may) end, in seconds, read from
        where the demuxer stands (before them); -inf for none, or for lines without an end."""
        end = -math.inf
        for packet in self.input.demux(stream):
            if packet.pts is None:
                continue
            if packet.pts > start:
                break
            if packet.pts == start and packet.duration:
                end = max(end, float((packet.pts + packet.duration) * packet.time_base))
        return end

    def write_until(self, seconds: float | None, cut: float | None = None) -> None:
        """Write the lines that start before `seconds` (all of them for None); with `cut`, none lasts past it."""
        while True:
            packet = self.pending or next(self.packets, None)
            self.pending = None
            if packet is None:
                self.packets = iter(())
                break
            time = packet.pts if packet.pts is not None else packet.dts
            if time is None or not packet.size:
                continue  # the demuxer's flush packet, or one that cannot be placed
            if self.clips.passed(packet):
                continue
            seconds_in = float(time * packet.time_base)
            last = self._last_time.get(packet.stream.index)
            if last is not None and seconds_in < last - AUDIO_SNAP_S:  # time went back: the next clip's line
                self.clips.went_back()
                self._last_time.clear()
            origin = self.clips.origin(self.origin)
            if origin is None:  # the pictures have not reached the join yet
                if seconds is None:  # at the end: no picture after the join, so no line either
                    self.packets = iter(())
                else:
                    self.pending = packet
                break
            self._last_time[packet.stream.index] = seconds_in
            start = seconds_in - origin
            if seconds is not None and start >= seconds:
                self.pending = packet
                break
            self._write(packet, start, cut)
        for index in list(self._held):  # the next line of each starts later, or there is none
            self._write_held(index)
        self._release(seconds, cut)

    def finish(self, cut: float | None) -> None:
        """Write the rest of the lines, or with `cut` (a part, a stopped run) those up to it, cut there."""
        self.write_until(cut, cut)
        self._release(None, cut)

    def _write(self, packet: Any, start: float, cut: float | None) -> None:
        """Copy, or convert, a packet starting `start` seconds into the output: one on screen at the origin shows
        from 0 for the rest of its time; one shown before it is left out, and so is one that goes back in time."""
        import av

        out, decoder = self.tracks[packet.stream.index]
        base = packet.time_base
        end = start + float(packet.duration * base) if packet.duration else None
        if start < 0:
            if end is None or end <= 0:
                return
            start = 0.0
        if self._cut is not None:
            cut = min(cut, self._cut) if cut is not None else self._cut
        if cut is not None and end is not None:
            end = min(end, cut)
        begun = round(start / base)
        if decoder is not None:
            try:
                subtitle = decoder.decode2(packet)
                if subtitle is None or not len(subtitle):
                    return  # mov_text's empty sample between two lines: the gap is the new format's own
                if self.suffix in MP4_SUFFIXES:
                    self._hold(out, subtitle, begun, end, base)
                    return
                packet = out.codec_context.encode_subtitle(subtitle)
            except av.error.FFmpegError:
                return  # a line the decoder or the encoder refuses is left out, not the run
        self._put(out, packet, begun, end, base)

    def _hold(self, out: Any, subtitle: Any, begun: int, end: float | None, base: Fraction) -> None:
        """Keep a line converted for MP4 until the next one: lines starting together (two speakers in ASS) are
        written as one sample that shows them all. Written one tick apart, as MP4's muxer takes no two samples at
        one time, the first lasted that tick: a sample lasts until the next one."""
        held = self._held.get(out.index)
        if held is not None and held[0] == begun and held[2] == base:
            ends = [value for value in (held[1], end) if value is not None]
            self._held[out.index] = (begun, max(ends) if ends else None, base, held[3] + [subtitle])
            return
        if held is not None:
            self._write_held(out.index)
        self._held[out.index] = (begun, end, base, [subtitle])

    def _write_held(self, index: int) -> None:
        """Encode and write the lines held for output stream `index`, as one where they are several (their texts
        one under the other, in the first one's style), lasting until the last of them ends."""
        import av
        from av.subtitles.subtitle import SubtitleSet

        begun, end, base, subtitles = self._held.pop(index)
        out = next(out for out, _ in self.tracks.values() if out.index == index)
        try:
            if len(subtitles) == 1:
                subtitle = subtitles[0]
            else:
                # ASS events: ReadOrder, Layer, Style, Name, MarginL, MarginR, MarginV, Effect, Text
                events = [rect.ass for subtitle in subtitles for rect in subtitle if getattr(rect, "ass", b"")]
                if not events:
                    return
                text = b"\\N".join([events[0]] + [event.split(b",", 8)[-1] for event in events[1:]])
                subtitle = SubtitleSet.create(text, 0, 0)
            packet = out.codec_context.encode_subtitle(subtitle)
        except av.error.FFmpegError:
            return  # a line the encoder refuses is left out, not the run
        self._put(out, packet, begun, end, base)

    def _put(self, out: Any, packet: Any, begun: int, end: float | None, base: Fraction) -> None:
        """Time a line's packet for `out` at `begun` (in `base` ticks), lasting until `end` seconds, and hold it
        until the pictures reach its end."""
        last_begun, last_written = self._last.get(out.index, (begun, -1))
        if begun < last_begun:
            return  # time went back: the muxer takes no line before the last one
        # lines starting together in a copied stream: MP4's muxer takes no two samples at one time
        pts = max(begun, last_written + 1) if self.suffix in MP4_SUFFIXES else begun
        self._last[out.index] = (begun, pts)
        packet.time_base, packet.pts, packet.dts = base, pts, pts
        packet.stream = out
        self._waiting.setdefault(out.index, []).append((packet, end))

    def _release(self, seconds: float | None, cut: float | None) -> None:
        """Mux the lines that end by `seconds` (the pictures' end; all of them for None), in each stream's order;
        with `cut`, none lasts past it. A line without an end (a bitmap one, ended by the next) is not held. Outside
        MP4 (whose text tracks are cut after close) a line is held at most SUBTITLE_HOLD_S: Matroska players read in
        file order, and a 4 s line muxed at its end sat 3 s of pictures after its start, shown late or not at all."""
        for waiting in self._waiting.values():
            while waiting and (seconds is None or waiting[0][1] is None or waiting[0][1] <= seconds
                               or self._held_long_enough(waiting[0][0], seconds)):
                packet, end = waiting.pop(0)
                if end is not None and cut is not None:
                    end = min(end, cut)
                packet.duration = max(0, round(end / packet.time_base) - packet.pts) if end is not None else 0
                self.mux(packet)

    def _held_long_enough(self, packet: Any, seconds: float) -> bool:
        return self.suffix not in MP4_SUFFIXES and float(packet.pts * packet.time_base) + SUBTITLE_HOLD_S <= seconds

    def not_shown_by_default(self) -> set[int]:
        """The output streams that are not the default ones: MP4's muxer enables (shows) the first of them anyway."""
        from av.stream import Disposition

        return {out.index for out, _ in self.tracks.values() if not out.disposition & Disposition.default}

    def close(self) -> None:
        self.input.close()
        self.mux = self.packets = None  # the writer's bound method: a cycle that kept the writer alive


def _codec_name(stream: Any) -> str:
    context = stream.codec_context
    return context.codec.canonical_name if context is not None else "unknown"


def _subtitle_kept(suffix: str, stream: Any) -> str | None:
    """How an output of type `suffix` keeps this subtitle stream: "copied" as it is, "converted" (a text one this
    FFmpeg decodes), or None: left out."""
    if _codec_name(stream) in SUBTITLE_COPYABLE.get(suffix, set()):
        return "copied"
    context = stream.codec_context
    if context is not None and SUBTITLE_TRANSCODE.get(suffix) and context.codec.text_sub:
        return "converted"
    return None


def _left_out_line(name: str, suffix: str, left_out: list[Any]) -> str:
    """The one line for subtitle streams the output cannot hold, with a fix only where there is one: it sent a
    broadcast recording's teletext, which FFmpeg here cannot read (PyAV gives it no codec), to .mkv, which then
    left it out as well."""
    count, unreadable = len(left_out), [stream for stream in left_out if stream.codec_context is None]
    them = "them" if count > 1 else "it"
    head = f"{name}: {count} subtitle stream{'s' if count > 1 else ''}"
    if len(unreadable) == count:
        return f"{head} left out: FFmpeg here cannot read {'their' if count > 1 else 'its'} kind (a broadcast's " \
               f"teletext, mostly)"
    codecs = ", ".join(sorted({_codec_name(stream) for stream in left_out}))
    line = f"{head} ({codecs}) left out: {suffix} cannot hold {them}"
    if suffix != ".mkv" and all(_subtitle_kept(".mkv", stream) for stream in left_out):
        return f"{line}; .mkv keeps {them}"
    return f"{line}; convert {them} to text (SRT) to keep {them}" if not unreadable else line


def _adts_filter(stream: Any, suffix: str) -> Any | None:
    """MPEG-TS carries AAC as ADTS, a header on every packet and no configuration of its own (extradata). MP4 and
    MOV take raw packets and one configuration, which FFmpeg's aac_adtstoasc filter makes from the headers; the
    muxer refused ADTS with its error -1 ("Operation not permitted")."""
    import av

    context = stream.codec_context
    if context.codec.canonical_name != "aac" or suffix not in MP4_SUFFIXES or context.extradata:
        return None
    return av.bitstream.BitStreamFilterContext("aac_adtstoasc", stream)


def _encoder_rate(codec: str, rate: int) -> int:
    """The input's rate where the encoder takes it, else 48 kHz (libopus takes 48, 24, 16, 12 and 8 kHz)."""
    import av

    rates = av.Codec(codec, "w").audio_rates
    if not rates or rate in rates:
        return rate
    return 48000 if 48000 in rates else max(rates)


def _encoder_layout(codec: str, layout: Any) -> str:
    """The input's channel count (mono stays mono, 5.1 and 7.1 stay so), in that count's standard layout (a PCM
    track may leave its channel order unspecified, which encoders refuse), or Opus's (Vorbis's) for Opus, which
    refused 2.1 and 4.0; more than 8 channels get a stereo downmix."""
    channels = getattr(layout, "nb_channels", 0)
    return (OPUS_LAYOUTS if codec == "libopus" else STANDARD_LAYOUTS).get(channels, "stereo")


# numpy's type of each sample format, packed and planar alike (as PyAV's to_ndarray has them)
SAMPLE_DTYPES = {"u8": "u1", "s16": "i2", "s32": "i4", "s64": "i8", "flt": "f4", "dbl": "f8"}


def _planes(frame: Any) -> list[Any]:
    """The frame's planes: one a channel where planar, else one. PyAV's own list counts them up to a null pointer
    and, of 8 planar channels (7.1), took the field after the last for a ninth: its to_ndarray read that one (the
    process crashed, or noise came out) and its from_ndarray refused 8 rows."""
    from av.audio.plane import AudioPlane

    return [AudioPlane(frame, index) for index in range(frame.layout.nb_channels if frame.format.is_planar else 1)]


def _samples(frame: Any) -> np.ndarray:
    """The frame's samples, a row a plane (interleaved in one row where packed)."""
    count = frame.samples * (1 if frame.format.is_planar else frame.layout.nb_channels)
    dtype = np.dtype(SAMPLE_DTYPES[frame.format.name.rstrip("p")])
    return np.vstack([np.frombuffer(plane, dtype, count) for plane in _planes(frame)])


def _frame_of(rows: np.ndarray, like: Any) -> Any:
    """An audio frame of `rows` (as _samples gives them) in the format, layout and rate of frame `like`."""
    import av

    step = 1 if like.format.is_planar else like.layout.nb_channels
    frame = av.AudioFrame(format=like.format.name, layout=like.layout.name, samples=rows.shape[1] // step)
    for plane, row in zip(_planes(frame), rows):
        plane.update(np.ascontiguousarray(row))
    frame.sample_rate = like.sample_rate
    return frame


def _slice(frame: Any, start: int, stop: int) -> Any:
    """Samples [start, stop) of an audio frame, in its format."""
    step = 1 if frame.format.is_planar else frame.layout.nb_channels
    return _frame_of(_samples(frame)[:, start * step:stop * step], frame)


def _silence(like: Any, samples: int) -> Any:
    """`samples` of silence in the format of frame `like`."""
    step, rows = (1, like.layout.nb_channels) if like.format.is_planar else (like.layout.nb_channels, 1)
    quiet = 128 if like.format.name.startswith("u8") else 0  # unsigned 8-bit is centred on 128
    return _frame_of(np.full((rows, samples * step), quiet, SAMPLE_DTYPES[like.format.name.rstrip("p")]), like)
