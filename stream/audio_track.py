"""The input's sound kept in the output file.

Every audio stream is kept (a camera's mono track per microphone, a film's languages, a screen recording's
microphone and system sound), each a track of its own with its language, title and flags, in the input's order (AVI:
the default one first); one is the default track, the input's default one, else its first (MP4 enables it alone:
QuickTime plays every enabled track at once). Each stream's packets are copied where the container takes the codec
(no quality loss), else decoded and encoded again (AAC; Opus for WebM, PCM for AVI, which has no audio timestamps, so
copying could not keep an offset) on the input's timeline: offsets kept, gaps filled with silence, channels kept (up
to 7.1), one line where that loses any of the sound. Copied PCM is cut at the sample where a part starts and ends,
copied FLAC and ALAC too (the packet across either end encoded again into its codec, which loses nothing). Audio is
written up to the end of the pictures written so far, which the video encoder's delay keeps just ahead of the video
in the muxer: the two are interleaved as they go, and a run that stops early leaves a file whose sound ends with its
pictures. Clips joined as they are (`cat a.ts b.ts`: time goes back at the join) play one after the other: the sound
of each clip follows its pictures, as in the clip. Each track reads the input with a demuxer of its own.
"""
from __future__ import annotations

import collections
import contextlib
import functools
import itertools
import logging
import operator
import re
import urllib.parse
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterable, Iterator

import numpy as np

from stream.console import notify
from stream.errors import UserError
from stream.track_timeline import (AUDIO_CARRY_ON_S, AUDIO_SEEK_AFTER_S, AUDIO_SEEK_FORMATS, AUDIO_SNAP_S,
                                   MP4_MAX_TICKS, MP4_SUFFIXES, Clips)

log = logging.getLogger(__name__)
AUDIO_READ_RETRIES = 16  # read errors in a row after which the rest of the sound counts as unreadable (as the video's)
# A sound packet this far in time from the one before, the one after it back in line with that one, has a damaged time
# (an MPEG-TS PES's, an hour ahead): copied as it was, the sound ended there (a copy's later packets went back in time,
# the muxer refused them) or an hour of silence was encoded (639 MB in an AVI). It is put back in line.
AUDIO_OUT_OF_LINE_S = 1.0
AUDIO_LOOK_AHEAD = 64  # packets read ahead (the pictures' among them) for the sound's next one

# Audio codecs (canonical names) each container takes as they are; anything else is transcoded.
PCM_INTEGERS = {"pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s24be", "pcm_s32le", "pcm_s32be"}
AUDIO_COPYABLE = {
    ".mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"},
    ".m4v": {"aac", "ac3", "alac"},  # FFmpeg's ipod muxer refuses the rest (MP3, E-AC-3) when the file opens
    ".mov": {"aac", "mp3", "ac3", "eac3", "alac", *PCM_INTEGERS, "pcm_f32le", "pcm_f32be"},  # QuickTime's in24 is BE
    # with a film's DTS and TrueHD and a broadcast's MP2 (DVB): they were encoded again as AAC, and no output kept them
    ".mkv": {"aac", "mp3", "mp2", "ac3", "eac3", "dts", "truehd", "alac", "opus", "flac", "vorbis", *PCM_INTEGERS,
             "pcm_f32le"},
    ".webm": {"opus", "vorbis"},
    ".avi": set(),  # AVI has no audio timestamps: only audio placed by _place (gaps as silence) stays in step
}
# Lossless codecs whose copied packet across a part's start or end is decoded, cut at the sample and encoded again
# into the same codec (nothing lost): copied whole, a FLAC packet (up to 4608 samples, 0.1 s) or an ALAC one (4096)
# ran that far past the last picture, and in Matroska, which cannot hide a start, began that far before the first.
LOSSLESS_RECUT = {"flac", "alac"}
FLAC_MIN_BLOCK = 16  # the fewest samples FFmpeg's FLAC encoder takes as its frame size (a last frame may hold fewer)
MP3_IN_MP4_MIN_RATE = 16000  # MP4's muxer refuses MPEG-2.5 (8 to 12 kHz) MP3 at its first packet; MOV takes it
# AAC elsewhere. AVI cannot record an encoder's start delay (AAC would play 23 ms late): PCM has none.
AUDIO_TRANSCODE = {".webm": "libopus", ".avi": "pcm_s16le"}
# FFmpeg's default layout for each channel count (av_channel_layout_default).
STANDARD_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
# Opus's: 5.1 and 7.1 stay so (they were mixed down to stereo). libopus refused 2.1 and 4.0, and put 5.0's and 6.1's
# channels in the wrong places (the centre behind): those are made 5.1 or 7.1, each channel where it was.
OPUS_LAYOUTS = {1: "mono", 2: "stereo", 3: "5.1", 4: "5.1", 5: "5.1", 6: "5.1", 7: "7.1", 8: "7.1"}
AUDIO_PREROLL_S = 1.0  # sound decoded before the first picture: a decoder's warm-up (Opus needs 80 ms)
# Codecs FFmpeg's MP4 muxer describes by their first packet: a track of them copied with none is not written ("Cannot
# write moov atom before AC3 packets", EINVAL: the run failed and left no file). Given one frame of silence.
FIRST_PACKET_NEEDED = {".mp4": {"ac3", "eac3"}, ".m4v": {"ac3"}}
# FFmpeg's native channel order (the AV_CH_* bits), by the names PyAV gives the channels
NATIVE_ORDER = ("FL", "FR", "FC", "LFE", "BL", "BR", "FLC", "FRC", "BC", "SL", "SR", "TC", "TFL", "TFC", "TFR", "TBL",
                "TBC", "TBR", "DL", "DR", "WL", "WR", "SDL", "SDR", "LFE2", "TSL", "TSR", "BFC", "BFL", "BFR")
LOSSY_TARGETS = {"aac": "AAC", "libopus": "Opus"}
# The input's flags each track keeps; the default flag is set apart, on one track (AudioTracks)
AUDIO_FLAGS = ("dub", "original", "comment", "visual_impaired", "hearing_impaired", "descriptions")
KEEPING_SUFFIXES = (".mov", ".mkv")  # the outputs said to keep a sound as it is, where they copy its codec
# FFmpeg's MOV muxer writes a language only where QuickTime's old Macintosh table holds it, and drops the others unsaid
# (MP4 and Matroska take any ISO 639-2 code): each language's other ISO 639-2 code (/T for /B, /B for /T) where the
# table holds that one, Swedish as the table's "sve", and Norwegian Bokmal and Nynorsk as the table's Norwegian
# (checked one by one with FFmpeg 7.1: each given code dropped, each here kept).
MOV_LANGUAGES = {"sqi": "alb", "hye": "arm", "eus": "baq", "mya": "bur", "zho": "chi", "cze": "ces", "nld": "dut",
                 "fre": "fra", "kat": "geo", "deu": "ger", "ell": "gre", "isl": "ice", "mkd": "mac", "msa": "may",
                 "fas": "per", "rum": "ron", "slo": "slk", "bod": "tib", "cym": "wel", "swe": "sve", "nob": "nor",
                 "nno": "nor"}
_told: set[str] = set()  # the re-encodings said so far: a batch of inputs says each once


def open_input(source: Path, **kwargs: Any) -> Any:
    """The input file opened again by PyAV, a tag in invalid UTF-8 (a damaged header) read with its bytes replaced; a
    file served over HTTP (served_file.ServedFile) with the network's time-outs and reconnection."""
    import av

    kwargs.setdefault("metadata_errors", "replace")
    served = getattr(source, "av_open", None)
    return served(**kwargs) if served is not None else av.open(str(source), **kwargs)


def open_cut_short(source: Path | str, **kwargs: Any) -> Any:
    """open_input on the main thread (the writer's sound and subtitles, opened as its output is made) that a stop
    signal ends at once (stop_cuts: a served file's stalled server held it for the open's time-out, 5 s), its
    handler then given it. Where that handler did not raise, the stop raises the KeyboardInterrupt it stands for (as
    interrupts.noted_stop_signals): the opening it cut short failed ("no answer", a wrong reason), or gave a header
    read in part, its streams unknown (the output was made without its sound)."""
    came: list[int] = []
    opened = None
    try:
        with stop_cuts(source) as came:
            opened = open_input(source, **kwargs)
    except UserError:
        if not came:
            raise
    except BaseException:  # the stop's own handler raised as the cut ended: what was opened is closed first
        if opened is not None:
            opened.close()
        raise
    if came:
        if opened is not None:
            opened.close()
        raise KeyboardInterrupt
    return opened


class StopCutReads:
    """A reader of `source` on the main thread (the writer's sound and subtitles) whose reads a stop signal ends at
    once (_cut_short); once one came, `_reading_ended` says that nothing more is read."""

    source: Path | str
    _reading_ended: bool

    def _cut_short(self, read: Callable[[], Any]) -> Any:
        """`read()` of the input, which a stop signal ends at once (stop_cuts: a served file's stalled server held
        the stop for the read's time-out, 15 s); after a stop nothing more is read (_reading_ended): the run is
        stopping, its pictures end as soon."""
        came: list[int] = []
        try:
            with stop_cuts(self.source) as came:
                return read()
        finally:
            self._reading_ended = self._reading_ended or bool(came)


def is_served(source: Path | str) -> bool:
    """Whether `source` is a file served over HTTP (served_file.ServedFile), read through the network."""
    return hasattr(source, "av_open")


def stop_cuts(source: Path | str) -> ContextManager[list[int]]:
    """A read of `source` on the main thread (the writer's sound, a jump to --start) that a stop signal ends at once,
    yielding the stop signals that came: a served file's (served_file.ServedFile.stop_cuts), whose server may
    stall; a local file's read ends by itself."""
    cuts = getattr(source, "stop_cuts", None)
    return cuts() if cuts is not None else contextlib.nullcontext([])


def read_streams(streams: Iterable[Any]) -> list[Any]:
    """`streams` less those set aside (an HLS master playlist's other variants': served_file.ServedFile.av_open),
    which are never read: the pictures', the sound's and the subtitles' readers alike pass them by."""
    from av.stream import Discard

    return [stream for stream in streams if getattr(stream, "discard", None) != Discard.all]


def audio_streams(container: Any) -> list[Any]:
    """An input's audio streams, numbered from 0 as the tracks are, less those set aside (read_streams): each was
    kept as a track of its own, every variant's segments fetched for it."""
    return read_streams(container.streams.audio)


def input_name(source: Path | str) -> str:
    """The input as its messages name it: a file's name; a served file's, or the address an input container was
    opened at, its path's last part (a Path made of an address kept its query, which may hold a token)."""
    if hasattr(source, "av_open"):
        return source.name
    if "://" in str(source):
        return Path(urllib.parse.urlsplit(str(source)).path).name or "the input"
    return Path(source).name


class AudioTracks:
    """Every audio stream of `source`, each an AudioTrack of its own (its own demuxer), written in step: what the
    writer does with the sound it does with each. The first track's input lists the streams."""

    def __init__(self, container: Any, source: Path, suffix: str, mux: Callable[[Any], None],
                 chosen: list[int] | None = None) -> None:
        """`chosen`: the tracks kept (--audio-track), by their numbers from 1, in the output's order, the first the
        default one; None: every one."""
        self.tracks: list[AudioTrack] = []
        self.joins: list[float] = []  # the writer adds each join's origin: one list for every track
        opened: Any = open_cut_short(source)  # the first track's
        try:
            if chosen is None:
                numbers = _known_numbers(opened)
                default = _default_number(opened)
                order = _track_order(numbers, default, suffix)
                defaults = _default_numbers(opened, numbers, default)
            else:
                order = _chosen_numbers(opened, chosen)
                defaults = set(order[:1])
            for number in order:
                track = AudioTrack(container, source, suffix, mux, number, opened)
                opened = None  # the track's now: it closes it
                self.tracks.append(track)
                track.joins = track.clips.joins = self.joins
                track.set_default(number in defaults)
        except BaseException:
            self.close()
            raise
        finally:
            if opened is not None:  # no track took it: none kept, or the first failed
                opened.close()
        _tell_losses(self.tracks, suffix)

    def begin_at(self, origin: float, clip: int = 0) -> None:
        for track in self.tracks:
            track.begin_at(origin, clip)

    def write_until(self, seconds: float | None) -> None:
        for track in self.tracks:
            track.write_until(seconds)

    def finish(self, cut: float | None) -> None:
        for track in self.tracks:
            track.finish(cut)

    def close(self) -> None:
        for track in self.tracks:
            track.close()

    def copied_codecs(self) -> list[str]:
        """The codecs of the tracks copied as they are, each once: those a muxer may refuse."""
        return list(dict.fromkeys(track.codec for track in self.tracks if track.copy))


class AudioTrack(StopCutReads):
    """One audio stream of `source` on the video's timeline (seconds after `origin`, the first picture's
    time in the source): packets copied, or decoded, placed by their times and encoded again. `number`: which of
    the input's audio streams (from 0); None: its default one, else its first."""

    _damage_told = False  # a damaged sound packet skipped has been said (once a track)

    def __init__(self, container: Any, source: Path, suffix: str, mux: Callable[[Any], None],
                 number: int | None = None, opened: Any = None) -> None:
        import av

        self.container = container
        self.mux = mux  # the writer's, which counts what reaches the disk
        self.suffix, self.name = suffix, input_name(source)
        self._copied_dts: float | None = None  # the last packet copied, in the output's seconds
        self.source = source if hasattr(source, "av_open") else Path(source)  # a file served: its address kept
        # `opened`: source, open, this track's; a tag in invalid UTF-8 (a damaged header) read with its bytes replaced
        self.input = opened if opened is not None else open_cut_short(source)
        try:
            streams = audio_streams(self.input)
            self.number = _default_number(self.input) if number is None else number
            self.in_stream = streams[self.number]
            self.channels, self._order = _native_layout(self.in_stream.codec_context)
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
                self.out_stream = container.add_stream(target, rate=rate,
                                                       layout=_encoder_layout(target, self.channels))
                out = self.out_stream.codec_context
                out.open()  # an encoder that refuses these settings fails now, not at the first frame
                self.out_rate = out.sample_rate
                self.frame_size = out.frame_size or 1024
                self.resampler = av.AudioResampler(format=out.format.name, layout=out.layout.name, rate=self.out_rate)
                self.fifo = av.AudioFifo()
                log.info("transcoding %s audio to %s at %d Hz for %s", codec, target, self.out_rate, suffix)
            self.loss = None if self.copy else _loss(self.in_stream.codec_context, target,
                                                     self.out_stream.codec_context.format.bits, suffix)
            self.out_stream.metadata.update(track_tags(self.in_stream.metadata, suffix))
            self.set_default(True)
            self.clips = Clips(self.input, AUDIO_CARRY_ON_S)
            self.packets = self.clips.demux(self.input, self.in_stream)
        except BaseException:
            self.input.close()
            raise
        self.origin = self.first_origin = 0.0  # the origin of the clip read, and of the first one
        self.joins = self.clips.joins  # the writer adds each join's origin
        self._last_time: float | None = None  # the last packet's time, in the input's seconds
        self._copied_until: int | None = None  # where the last packet copied ends on the output's timeline, in ticks
        self._copied_any = False
        self._last_end: int | None = None  # where the last packet read ends, in the input's ticks
        self._ahead: collections.deque[Any] = collections.deque()  # packets read ahead (_next_own_time)
        self._line_told = False
        self._reading_ended = False  # a stop signal came during a served file's read, or its server stopped
        self._read_until = -1  # the place in the file of the last packet read (_read_again_from_start)
        self.pending: Any = None
        self.done = False
        # Input samples placed so far, counted from the origin: a later start is preceded by silence, so
        # the track starts with the pictures even where a player ignores the container's start delay.
        self._next = 0
        self._out_pts = 0  # the output sample where the FIFO's first sample goes

    def set_default(self, default: bool) -> None:
        """The output track's flags: the input's (a commentary, a dub, audio description), and whether it is the
        default track, which players choose (MP4: the one enabled)."""
        from av.stream import Disposition

        kept = functools.reduce(operator.or_, (getattr(Disposition, flag) for flag in AUDIO_FLAGS), Disposition(0))
        flags = self.in_stream.disposition & kept
        self.out_stream.disposition = flags | Disposition.default if default else flags

    def begin_at(self, origin: float, clip: int = 0) -> None:
        """Set the origin (the first picture's time, in clip `clip` of clips joined as they are), and jump to the
        sound a little before it where that is far into the file. A jump that lands after the origin is undone: the
        sound is read from its beginning. A stop signal during either ends it at once, and nothing more is read
        (_cut_short)."""
        self.origin = self.first_origin = origin
        self.clips.start_in(clip)
        stream, time_base = self.in_stream, self.in_stream.time_base
        start = float(stream.start_time * time_base) if stream.start_time is not None else 0.0
        if origin - start < AUDIO_SEEK_AFTER_S or not AUDIO_SEEK_FORMATS & set(self.input.format.name.split(",")):
            return
        self._cut_short(lambda: self._jump_near(origin))
        if not self._reading_ended and (self.pending is None or float(self.pending.pts * time_base) > origin):
            self._reopen()
        if self._reading_ended:  # a stop came: what the jump read is not written either
            self.pending = None

    def _jump_near(self, origin: float) -> None:
        """Jump to the sound AUDIO_PREROLL_S before `origin`, its first packet there pending (None: none found)."""
        import av

        try:  # by the file's default stream, its video: Matroska's index (cues) holds only its keyframes
            self.input.seek(round((origin - AUDIO_PREROLL_S) * 1_000_000), backward=True)
            self.packets = self.clips.demux(self.input, self.in_stream)
            self._ahead.clear()
            self.pending = next((p for p in self.packets if p.pts is not None and not self.clips.passed(p)), None)
        except av.error.FFmpegError:
            self.pending = None

    def _opened_again(self) -> Any | None:
        """The input opened again, on the main thread; None where a stop signal came meanwhile (its opening cut
        short failed, or read the header in part: its streams unknown), and nothing more is read."""
        made: list[Any] = []  # what the opening gave, kept where the stop's own handler raises as the cut ends
        opened = None
        try:
            opened = self._cut_short(lambda: made.append(open_input(self.source)) or made[0])
        except UserError:
            if not self._reading_ended:  # the server's answer, not the stop's cut
                raise
        except BaseException:
            for container in made:
                container.close()
            raise
        if self._reading_ended:
            if opened is not None:
                opened.close()
            return None
        return opened

    def _reopen(self) -> None:
        """The input opened again, its sound read from the beginning: what was read of it forgotten (the last
        packet's time, else the first packet looked like a join; the end), not what was written. Where a stop cut
        the opening short, the input stays as it was and nothing more is read."""
        index = self.in_stream.index
        opened = self._opened_again()
        if opened is None:
            return
        self.input.close()
        self.input = opened
        self.in_stream = self.input.streams[index]
        self._order = _native_layout(self.in_stream.codec_context)[1]
        if self.adts is not None:
            self.adts = _adts_filter(self.in_stream, self.suffix)
        skip, self.clips = self.clips.skip, Clips(self.input, AUDIO_CARRY_ON_S)
        self.clips.joins, self.clips.skip = self.joins, skip
        self.packets, self.pending = self.clips.demux(self.input, self.in_stream), None
        self._last_time, self._last_end, self.done = None, None, False
        self._ahead.clear()

    def write_until(self, seconds: float | None) -> None:
        """Write the audio that starts before `seconds` (all of it for None)."""
        self._feed(seconds, None)
        if not self.copy:
            self._encode_fifo(seconds, cut=False)

    def finish(self, cut: float | None) -> None:
        """Write the rest of the audio, or with `cut` (an interrupted run) the audio up to it only."""
        self._feed(cut, cut)
        if self.copy:
            if not self._copied_any and self.codec in FIRST_PACKET_NEEDED.get(self.suffix, set()):
                self._copy_silence()
            return
        for frame in self.in_stream.codec_context.decode(None):  # what the decoder still holds
            self._place(_reordered(frame, self._order), cut)
        self._resample(None)
        self._encode_fifo(cut, cut=True)
        for packet in self.out_stream.encode(None):
            self.mux(packet)

    def _feed(self, seconds: float | None, cut: float | None) -> None:
        """Copy, or decode and place, the packets that start before `seconds`."""
        import av

        while not self.done:
            packet = self.pending or self._next_packet()
            self.pending = None
            if packet is None:
                self.done = True
                break
            if packet.dts is None and packet.size == 0 or self.clips.passed(packet):
                continue  # demuxer's flush packet, or a picture's
            time = float(packet.pts * packet.time_base) if packet.pts is not None else None
            if self._out_of_line(time):
                time = self._put_in_line(packet, time)
            self.clips.read(time, self._last_time)
            self._last_time = time if time is not None else self._last_time
            if packet.pts is not None:
                self._last_end = packet.pts + (packet.duration or 0)
            if self.clips.before():
                continue  # a clip before the first picture's (--start in a later one): its sound is not the part's
            origin = self.clips.origin(self.first_origin)
            if origin is None:  # the pictures have not reached the join yet
                self.pending = packet
                self.done = seconds is None  # at the end: no picture after the join, so no sound either
                break
            self.origin = origin
            if seconds is not None and time is not None and time - self.origin + self._held(packet, cut) >= seconds:
                self.pending = packet
                break
            if self.copy:
                self._copy(packet, cut)
                continue
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                continue  # a damaged audio packet is skipped rather than ending the video
            for frame in frames:
                self._place(_reordered(frame, self._order), cut)

    def _out_of_line(self, time: float | None) -> bool:
        """Whether a packet at `time` is far from the one before (AUDIO_OUT_OF_LINE_S), the one after back in line
        with that one: its time is damaged. Time going back for good is a join, going on for good a pause."""
        last = self._last_time
        if time is None or last is None or abs(time - last) <= AUDIO_OUT_OF_LINE_S:
            return False
        after = self._next_own_time()
        return after is not None and last - AUDIO_SNAP_S <= after <= last + AUDIO_OUT_OF_LINE_S

    def _next_own_time(self) -> float | None:
        """The time of the track's next timed packet, read ahead (kept for _next_packet); None past the end or
        AUDIO_LOOK_AHEAD packets."""
        def own(packet: Any) -> bool:
            return packet.stream.index == self.in_stream.index and packet.pts is not None and packet.size > 0

        found = next((packet for packet in self._ahead if own(packet)), None)
        while found is None and len(self._ahead) < AUDIO_LOOK_AHEAD:
            packet = self._read()
            if packet is None:
                return None
            self._ahead.append(packet)
            found = packet if own(packet) else None
        return None if found is None else float(found.pts * found.time_base)

    def _put_in_line(self, packet: Any, time: float) -> float:
        """`packet`, its time damaged, timed where the one before ends (said once a track); its new time."""
        moved = self._last_end - packet.pts if self._last_end is not None else 0
        if not self._line_told:
            self._line_told = True
            off = time - self._last_time
            notify(f"{self.name}: a sound packet near {self._last_time:.1f} s is timed {abs(off):.0f} s "
                   f"{'after' if off > 0 else 'before'} those around it (a damaged time): it is put back in line "
                   f"and the rest of the sound kept (further ones without a word)")
        packet.pts += moved
        if packet.dts is not None:
            packet.dts += moved
        return float(packet.pts * packet.time_base)

    def _next_packet(self) -> Any:
        """The next packet: one read ahead, else read."""
        return self._ahead.popleft() if self._ahead else self._read()

    def _read(self) -> Any:
        """The next packet read, None at the end. Where the demuxer refuses a damaged spot, reading goes on from where
        it stopped (it ended the run); PyAV's IndexError at the end of a file where FFmpeg added a stream part-way
        (damaged MPEG-TS tables) is the end. A served file's sound ends where its server stopped sending
        (_end_for_network; one sent whole only is read again from its start instead), and at once where a stop
        signal comes during a read (_read_once); a packet the network cut short is left out (copied, it did not
        decode)."""
        for _ in range(AUDIO_READ_RETRIES):
            if self._reading_ended:
                return None
            packet, failed = self._read_once()
            if packet is not None and packet.is_corrupt and is_served(self.source):
                continue  # its bytes cut short where the network failed (a stall's time-out, a stop's cut)
            if failed is None or self._reading_ended:
                if packet is not None and packet.pos is not None and packet.pos >= 0:
                    self._read_until = max(self._read_until, packet.pos)
                return packet
            failure = getattr(self.source, "network_failure", None)
            why = failure(failed) if failure is not None else None
            if why is None:  # damage in the file: read on past it
                self._skipped(failed, None)
                self.packets = self.clips.demux(self.input, self.in_stream)
            elif not self._read_again_from_start():
                self._end_for_network(why)
                return None
        return None

    def _read_once(self) -> tuple[Any, Exception | None]:
        """The next packet (None at the end) and the demuxer's error, if any. A served file's read on the main thread
        ends at once where a stop signal comes (stop_cuts: a stalled server held the stop for the read's time-out,
        15 s), and nothing more is read: the run is stopping, its pictures end as soon."""
        import av

        def read() -> tuple[Any, Exception | None]:
            try:
                return next(self.packets, None), None
            except IndexError:
                return None, None
            except av.error.FFmpegError as exc:
                return None, exc

        return self._cut_short(read)

    def _read_again_from_start(self) -> bool:
        """A served file whose server sends it whole only (no Range requests: FFmpeg cannot ask for the rest), its
        connection dropped: opened again and read from its start, the packets up to the last one read passed by
        (by their place in the file), as its pictures are (NetworkSource). False for any other file, or where it
        does not open again (a stop meanwhile). Ended there, the sound stopped at the drop; read on as damage, the
        packet the drop cut short was copied and the output's sound did not decode."""
        if not getattr(self.source, "whole_only", False):
            return False
        try:
            opened = self._opened_again()
        except UserError:
            return False
        if opened is None:
            return False
        index, video = self.in_stream.index, self.clips.video.index if self.clips.video is not None else None
        self.input.close()  # its streams with it: their numbers taken before
        self.input, self.in_stream = opened, opened.streams[index]
        if video is not None:  # the pictures' packets, watched for joins: the new demuxer's
            self.clips.video = opened.streams[video]
        if self.adts is not None:
            self.adts = _adts_filter(self.in_stream, self.suffix)
        self.packets = unread_packets(self.clips.demux(opened, self.in_stream), self._read_until)
        return True

    def _end_for_network(self, why: str) -> None:
        """A served file's read that failed for the network (its server stalled past the read's time-out, a
        connection not taken up again): the sound ends there, said once (read again, it only waited again; it said
        "a damaged sound packet is skipped (Immediate exit requested)"). Nothing said where a stop came meanwhile."""
        if self._reading_ended:
            return
        self._reading_ended = True
        where = f" after {self._last_time:.1f} s" if self._last_time is not None else ""
        notify(f"{self.name}: its server stopped sending the sound{where} ({why}); the sound ends there")

    def _skipped(self, exc: Exception, packet: Any) -> None:
        """Says once a track that a damaged sound packet is skipped: the rest is written, the video goes on."""
        if self._damage_told:
            return
        self._damage_told = True
        where = f" near {float(packet.pts * packet.time_base):.1f} s" \
            if packet is not None and packet.pts is not None and packet.time_base else ""
        notify(f"{self.name}: a damaged sound packet{where} is skipped ({getattr(exc, 'strerror', None) or exc}); "
               f"the rest of the sound is kept (further ones are skipped without a word)")

    def close(self) -> None:
        self.input.close()
        # the writer's bound method held the writer, which holds this track: a cycle that kept the writer, its
        # x264 encoder's threads and buffers (~33 MB at 720p) alive into a batch's next inputs until a full collection
        self.mux = self.packets = None

    def _held(self, packet: Any, cut: float | None) -> float:
        """How long past its start a packet must end by the time written up to before it goes: copied PCM, FLAC and
        ALAC, which a part's end (`cut`) trims, wait until they end there, else (a whole packet written) their sound
        ran past the last picture; the rest goes as it starts."""
        if not self.copy or cut is not None or (_pcm_bytes(self.codec) is None and self.codec not in LOSSLESS_RECUT):
            return 0.0
        return float((packet.duration or 0) * packet.time_base)

    def _copy(self, packet: Any, cut: float | None = None) -> None:
        import av

        shift = round(self.origin / packet.time_base)  # the origin in this packet's ticks
        if packet.pts is not None:
            if packet.pts + (packet.duration or 0) < shift:
                return  # ends before the first picture
            packet = self._trimmed(packet, shift, cut)
            if packet is None:
                return  # PCM: none of its samples is in the part
            if self._copied_until is not None and \
                    packet.pts - shift < self._copied_until - AUDIO_SNAP_S / packet.time_base:
                return  # a joined clip's sound under the end of the clip before: the muxer takes no overlap
            packet.pts -= shift
            self._copied_until = packet.pts + (packet.duration or 0)
        if packet.dts is not None:
            packet.dts -= shift
            self._check_pause(float(packet.dts * packet.time_base))
        try:
            outs = self.adts.filter(packet) if self.adts is not None else (packet,)
        except av.error.FFmpegError as exc:  # a damaged ADTS header (MPEG-TS): it ended the run, the output lost
            self._skipped(exc, packet)
            return
        for out in outs:
            out.stream = self.out_stream
            self.mux(out)
        self._copied_any = True

    def _trimmed(self, packet: Any, shift: int, cut: float | None) -> Any | None:
        """A copied packet cut to the part where its codec is PCM, which is a sample a fixed number of bytes, or FLAC
        or ALAC (LOSSLESS_RECUT): its samples before the origin (`shift`, in its ticks) left out, it then starting at
        the origin, and with `cut` (a part's end, on the output's timeline) those after it. None: none of its samples
        is in the part. AAC and AC-3 are kept whole: a frame of them decodes only whole (a MOV's edit list hides what
        is before the origin; FFmpeg's muxers write none for the end)."""
        import av

        width = _pcm_bytes(self.codec)
        lossless = self.codec in LOSSLESS_RECUT
        if width is None and not lossless or not self.channels or lossless and self._inside(packet, shift, cut):
            return packet
        frame = self._decoded(packet) if lossless else None
        if lossless and frame is None:
            return packet
        rate = self.in_stream.codec_context.sample_rate or 48000
        block = (width or 0) * self.channels
        count = frame.samples if frame is not None else packet.size // block
        start = float((packet.pts - shift) * packet.time_base)  # its first sample's time on the output's timeline
        first = min(count, max(0, round(-start * rate)))
        last = count if cut is None else min(count, max(0, round((cut - start) * rate)))
        if first == 0 and last == count:
            return packet
        if last <= first:
            return None
        if frame is None:
            short = av.Packet(bytes(packet)[first * block:last * block])
        else:
            short = _lossless_packet(self.codec, _slice(frame, first, last), self.in_stream.codec_context.extradata)
            if short is None:
                return packet  # not encoded back to the same samples: kept whole, as before
        short.time_base = packet.time_base
        # at the origin itself where samples before it were left out: a coarse time base (Matroska's milliseconds)
        # would round it back before the first picture
        short.pts = shift if first else packet.pts
        short.dts = short.pts if first or packet.dts is None else packet.dts
        short.duration = round(Fraction(last - first, rate) / packet.time_base)
        return short

    def _inside(self, packet: Any, shift: int, cut: float | None) -> bool:
        """Whether a packet of known length lies wholly inside the part: copied as it is, not decoded."""
        end = packet.pts + (packet.duration or 0) - shift
        return bool(packet.duration) and packet.pts >= shift and (cut is None or float(end * packet.time_base) <= cut)

    def _decoded(self, packet: Any) -> Any | None:
        """A copied FLAC or ALAC packet's samples, as one frame; None where it does not decode so (left whole)."""
        import av

        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            return None
        return frames[0] if len(frames) == 1 else None

    def _copy_silence(self) -> None:
        """One frame of silence in the copied track's codec and channels at 0, for a part the sound has no packet
        in, where the muxer needs one (FIRST_PACKET_NEEDED)."""
        import av

        log.warning(f"{self.name} has no sound in the part written: its {self.codec.upper()} track in {self.suffix} "
                    "holds one frame of silence (the muxer writes none empty)")
        source = self.in_stream.codec_context
        encoder = av.CodecContext.create(self.codec, "w")
        encoder.sample_rate = rate = source.sample_rate or 48000
        encoder.layout = _encoder_layout(self.codec, self.channels)
        encoder.format = encoder.codec.audio_formats[0]
        encoder.time_base = Fraction(1, rate)
        like = av.AudioFrame(format=encoder.format.name, layout=encoder.layout.name, samples=1)
        like.sample_rate = rate
        frame = _silence(like, encoder.frame_size or 1536)
        frame.pts, frame.time_base = 0, encoder.time_base
        packet = [*encoder.encode(frame), *encoder.encode(None)][0]
        packet.pts = packet.dts = 0
        packet.stream = self.out_stream
        self.mux(packet)

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


def unread_packets(packets: Iterator[Any], read_until: int) -> Iterator[Any]:
    """The packets of a file read again from its start that come after byte `read_until`, what was read before.
    A packet of no place (PyAV's None: the demuxer's closing empty packet, some demuxers' packets) is skipped with
    the ones read before: comparing it raised a TypeError where the drop came after the last sound packet, and
    ending the skipping at it would give sound already written twice."""
    return itertools.dropwhile(lambda packet: packet.pos is None or packet.pos < 0 or packet.pos <= read_until,
                               packets)

def _lossless_packet(codec: str, frame: Any, extradata: bytes | None) -> Any | None:
    """`frame` encoded into one packet of the lossless `codec` (FLAC, ALAC) that decodes back to the same samples
    under the input's configuration (`extradata`: its depth, ALAC's frame length and coding parameters), to go among
    its copied packets; None where it does not (a depth FFmpeg's encoders do not write: 20-bit ALAC, 32-bit FLAC)."""
    import av

    try:
        encoder = av.CodecContext.create(codec, "w")
        encoder.sample_rate, encoder.layout, encoder.format = frame.sample_rate, frame.layout.name, frame.format.name
        encoder.time_base = Fraction(1, frame.sample_rate)
        if codec == "flac":  # one frame, of all its samples (ALAC's encoder takes 4096, its own frames' length)
            encoder.options = {"frame_size": str(max(FLAC_MIN_BLOCK, frame.samples))}
        frame.pts, frame.time_base = 0, encoder.time_base
        # FLAC's flush gives an empty packet carrying its own header (STREAMINFO), not the input's: left out
        packets = [packet for packet in (*encoder.encode(frame), *encoder.encode(None)) if packet.size]
        decoder = av.CodecContext.create(codec, "r")
        decoder.extradata = extradata
        decoded = [out for packet in (*packets, None) for out in decoder.decode(packet)]
    except (av.error.FFmpegError, ValueError):
        return None
    same = len(packets) == 1 and decoded and all(out.format.name == frame.format.name for out in decoded) and \
        np.array_equal(np.hstack([_samples(out) for out in decoded]), _samples(frame))
    return packets[0] if same else None


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


def _encoder_layout(codec: str, channels: int) -> str:
    """The input's channel count (mono stays mono, 5.1 and 7.1 stay so), in that count's standard layout (a PCM
    track may leave its channel order unspecified, which encoders refuse), or Opus's (Vorbis's) for Opus, which
    refused 2.1 and 4.0; more than 8 channels get a stereo downmix."""
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


def _native_layout(context: Any) -> tuple[int, list[int] | None]:
    """The channel count of a decoder not yet opened, whose layout is made one PyAV can read, and the order that
    puts its channels in FFmpeg's native order (None: they are in it).

    PyAV 18.1 copies a layout without its channel map and frees the map with the copy: a read of a layout in a
    custom order (MOV's channel layouts: Apple's 7.1 lists Ls/Rs, FFmpeg's SL/SR, before Rls/Rrs, BL/BR) freed the
    decoder's map, which FFmpeg freed again (glibc's "double free or corruption": the process killed, no file). The
    one read here leaves the map to its copy alone: the decoder's layout is replaced (assigned over, not freed) by
    one with no map, the same channels in native order, so its frames and it are read safely from then on; each
    frame's channels are then moved there (_reordered), each where the file says it is (FFmpeg 5's MOV muxer labelled
    its own 7.1, back before side, with Apple's 7.1: such a file's back channels come out on the sides, as FFmpeg 8
    reads them). Channels no native layout holds (twice the same, unknown ones) keep their order, with no names, as
    a track of no layout: the encoder gives them its count's standard layout (8 channels: 7.1). (PyAV's #2284 freed
    the map to stop a leak, its shallow copies kept; no later PyAV installs on Python 3.11: 19 needs 3.12.)"""
    read = context.layout  # shares a custom order's map with the decoder
    names = [channel.name for channel in read.channels]
    if len(set(names)) == len(names) and set(names) <= set(NATIVE_ORDER):
        native = sorted(names, key=NATIVE_ORDER.index)
        context.layout = "+".join(native)
        order = [names.index(name) for name in native]
        return len(names), None if order == sorted(order) else order
    if names:
        context.layout = f"{len(names)} channels"
    return len(names), None


def _reordered(frame: Any, order: list[int] | None) -> Any:
    """A decoded frame's channels put in its layout's native order (`order`, from _native_layout; None: as it is)."""
    if order is None:
        return frame
    rows = _samples(frame)
    if frame.format.is_planar:
        rows = rows[order]
    else:  # interleaved: a sample's channels side by side
        rows = rows.reshape(-1, len(order))[:, order].reshape(1, -1)
    out = _frame_of(rows, frame)
    out.pts, out.time_base = frame.pts, frame.time_base
    return out


def _pcm_bytes(codec: str) -> int | None:
    """The bytes of a sample of one channel, for a PCM codec; None for the others."""
    match = re.fullmatch(r"pcm_[sf](\d+)[lb]e", codec)
    return int(match.group(1)) // 8 if match else None


def _known_numbers(container: Any) -> list[int]:
    """The numbers (from 0) of an input's audio streams whose codec FFmpeg knows; the others are left out, said in a
    line: one such beside the sound kept failed the run (no decoder: PyAV gives the stream no codec context)."""
    streams = audio_streams(container)
    unknown = [number for number, stream in enumerate(streams) if stream.codec_context is None]
    # a stream with no sample rate is one damaged MPEG-TS tables announced and nothing filled: copied, it made the
    # MP4 muxer refuse the header ("Invalid argument") and no file was written
    empty = [number for number, stream in enumerate(streams)
             if number not in unknown and not stream.codec_context.sample_rate]
    for left, why in ((unknown, "FFmpeg knows no codec to read {} with"),
                      (empty, "FFmpeg found no sound in {} (no sample rate: a damaged header?)")):
        if left:
            which = "its sound is" if len(streams) == 1 else f"{_numbers([n + 1 for n in left])} of its " \
                f"{len(streams)} audio streams {'is' if len(left) == 1 else 'are'}"
            them = "it" if len(left) == 1 else "them"
            log.warning(f"{input_name(container.name)}: {which} left out: " + why.format(them))
    return [number for number in range(len(streams)) if number not in unknown and number not in empty]


def _default_number(container: Any) -> int:
    """Which of an input's audio streams is its default one (from 0), else its first; of those whose codec FFmpeg
    knows."""
    from av.stream import Disposition

    known = [(number, stream) for number, stream in enumerate(audio_streams(container))
             if stream.codec_context is not None and stream.codec_context.sample_rate]
    return next((number for number, stream in known if stream.disposition & Disposition.default),
                known[0][0] if known else 0)


def track_tags(tags: dict[str, str], suffix: str = "") -> dict[str, str]:
    """A track's language (a player picks the track, and names it, by it) and name (which microphone, "Director's
    commentary"): MP4 and MOV store the name as "name" (its udta box), which was lost. A language a .mov would drop
    is written in the code its table holds (MOV_LANGUAGES)."""
    language = tags.get("language")
    if suffix == ".mov" and language:
        language = MOV_LANGUAGES.get(language.lower(), language)
    kept = {"language": language, "title": tags.get("title") or tags.get("name")}
    return {key: value for key, value in kept.items() if value and value != "und"}


def _chosen_numbers(container: Any, chosen: list[int]) -> list[int]:
    """The numbers (from 0) of the audio streams `chosen` names (from 1, --audio-track), in its order; a number the
    input lacks, or a stream FFmpeg cannot read, refused in one line."""
    streams = audio_streams(container)
    name = input_name(container.name)
    for number in chosen:
        check_audio_track(name, len(streams), number)
        if streams[number - 1].codec_context is None:
            raise UserError(f"{name}: FFmpeg knows no codec to read its audio stream {number} with; "
                            f"--audio-track can name the others only")
    return [number - 1 for number in chosen]


TRACK_GIVEN = "audio track {} (--audio-track, or output.audio_tracks in a config file)"  # either may have given it


def check_audio_track(name: str, count: int, number: int) -> None:
    """Refuse, in one line, an --audio-track `number` (from 1) that an input (`name`, `count` audio streams) lacks."""
    if 1 <= number <= count:
        return
    if count == 0:
        raise UserError(f"{name} has no audio stream; {TRACK_GIVEN.format(number)} names none: leave it out")
    has = "1 audio stream" if count == 1 else f"{count} audio streams"
    give = "give 1" if count == 1 else f"give 1 to {count}"
    raise UserError(f"{name} has {has}; {TRACK_GIVEN.format(number)} names none: {give}")


ENABLED_FORMATS = {"mov", "mp4", "m4a", "3gp", "3g2", "mj2", "mxf"}  # FFmpeg's demuxers whose default is "enabled"


def _default_numbers(container: Any, numbers: list[int], default: int) -> set[int]:
    """The tracks kept default (MP4/MOV: enabled, played together): every one a MOV, MP4 or MXF flags default where
    they are alike, a camera's microphones (each enabled, as Sony's, Canon's and ARRI's MOVs and MXFs have them); only
    the first of them where they differ in language, or come from Matroska (which flags each language default, and
    QuickTime would play them all at once); the first where none is flagged."""
    from av.stream import Disposition

    streams = audio_streams(container)
    flagged = [number for number in numbers if streams[number].disposition & Disposition.default]
    languages = {streams[number].metadata.get("language", "und") for number in flagged} - {"und", ""}
    # where default means enabled (played): QuickTime's and MXF's tracks; Matroska's means "may be chosen", and a
    # film's main mix and commentary, both English and both flagged, were then played at once from an MP4
    enabled = any(name in ENABLED_FORMATS for name in container.format.name.split(","))
    return set(flagged) if enabled and flagged and len(languages) <= 1 else {default}


def _track_order(numbers: list[int], default: int, suffix: str) -> list[int]:
    """The input's audio streams kept (their numbers, from 0) in the output's order: the input's, but in AVI, which
    holds no flags and whose players play its first audio stream, the default one first."""
    if suffix != ".avi" or default not in numbers:
        return numbers
    return [default, *(number for number in numbers if number != default)]


def _loss(source: Any, target: str, bits: int, suffix: str) -> tuple[str, str, str] | None:
    """Where the sound is encoded again into a lossy codec, or a lossless one into fewer bits (24-bit PCM into AVI's
    16): which sound, into what, and its codec (None: nothing is lost)."""
    codec = source.codec.canonical_name
    pcm = _pcm_bytes(codec)
    depth = 8 * pcm if pcm else source.format.bits if source.codec.lossless else None
    if target in LOSSY_TARGETS:
        how = f"{LOSSY_TARGETS[target]}, which loses some of it"
    elif depth is not None and depth > bits:
        how = f"{bits}-bit PCM, which loses its finest detail"
    else:
        return None
    what = f"{8 * pcm}-bit{' float' if codec.startswith('pcm_f') else ''} PCM" if pcm else codec.upper()
    return what, how, codec


def _tell_losses(tracks: list[AudioTrack], suffix: str) -> None:
    """One line for the tracks encoded again with a loss (see _loss), naming them where the input has several: which
    sound, into what, and which outputs keep it as it is. Once a run for each: a log line alone was not shown, and a
    camera's eight tracks made eight lines."""
    lossy = [track for track in tracks if track.loss is not None]
    if not lossy:
        return
    groups: dict[str, list[int]] = {}
    for track in lossy:
        groups.setdefault(track.loss[0], []).append(track.number + 1)
    groups = {what: sorted(numbers) for what, numbers in groups.items()}
    if len(tracks) == 1:
        which = f"the sound ({lossy[0].loss[0]})"
    else:
        named = [f"{_numbers(numbers)} ({what})" for what, numbers in groups.items()]
        which = "the sound of " + (f"{', '.join(named[:-1])} and {named[-1]}" if len(named) > 1 else named[0])
    codecs = {track.loss[2] for track in lossy}
    keeping = [kept for kept in KEEPING_SUFFIXES if codecs <= AUDIO_COPYABLE[kept]]
    line = f"{which} is encoded again for {suffix} as {lossy[0].loss[1]}" + \
        (f"; write {' or '.join(keeping)} to keep it as it is" if keeping else "")
    if line not in _told:
        _told.add(line)
        notify(line)


def _numbers(numbers: list[int]) -> str:
    """Tracks by their numbers: "track 2", "tracks 1 and 3", "tracks 1 to 4" (a run of three or more)."""
    if len(numbers) == 1:
        return f"track {numbers[0]}"
    if len(numbers) > 2 and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"tracks {numbers[0]} to {numbers[-1]}"
    return f"tracks {', '.join(map(str, numbers[:-1]))} and {numbers[-1]}"
