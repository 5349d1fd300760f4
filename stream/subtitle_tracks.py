"""The input's subtitle streams kept in the output file.

The input's subtitle streams are kept, timed as the sound is: text ones copied where the container takes
their codec, else converted by FFmpeg (SRT, ASS and WebVTT to MP4's mov_text, mov_text to SRT in Matroska, any to
WebVTT in WebM), bitmap ones (DVD, Blu-ray) copied where the container takes them; each with its language, name and
default and forced flags. The lines are interleaved with the pictures as the sound is, each once the pictures pass
its end, so a line on screen where a run stops ends with the last picture. Clips joined as they are (MPEG-TS): a
line goes with its clip's pictures, found by the pictures' own times going back in the file before it.
"""
from __future__ import annotations

import bisect
import functools
import logging
import math
import operator
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

from stream.audio_track import StopCutReads, input_name, is_served, open_cut_short, read_streams, track_tags
from stream.clip_joins import demuxed, read_past_damage
from stream.track_timeline import AUDIO_SEEK_AFTER_S, AUDIO_SEEK_FORMATS, AUDIO_SNAP_S, MP4_SUFFIXES, Clips

log = logging.getLogger(__name__)

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
# How long a line is held, outside MP4, before it is muxed with its whole length: one that ends sooner is cut at a
# stop's last picture; a longer one is written near its start, within the interleaver's second.
SUBTITLE_HOLD_S = 0.5


class SubtitleTracks(StopCutReads):
    """The subtitle streams of `source` on the video's timeline, as AudioTrack (stream.audio_track) places the
    sound: copied where the container takes the codec, text ones converted where it does not, bitmap ones left out
    there (said in a line). They are few packets, read by a demuxer of their own that skips the pictures' and the
    sound's."""

    def __init__(self, container: Any, source: Path, suffix: str, mux: Callable[[Any], None]) -> None:
        self.mux, self.suffix, self.name, self.source = mux, suffix, input_name(source), source
        self._network = is_served(source)  # a served file (served_file.ServedFile), read over HTTP
        self.input = open_cut_short(source)  # a served file's: a stop ends its opening at once
        # input stream index -> (output stream, decoder where converted, else None)
        self.tracks: dict[int, tuple[Any, Any | None]] = {}
        try:
            # not an HLS master playlist's other variants' (set aside by ServedFile.av_open: never fetched)
            read = read_streams(self.input.streams.subtitles)
            left_out = [stream for stream in read if not self._add(container, stream)]
            if left_out:
                log.warning(_left_out_line(self.name, suffix, left_out))
            self.streams = [self.input.streams[index] for index in self.tracks]
            self.clips = Clips(self.input)
            self.packets = self._demux()
        except BaseException:
            self.input.close()
            raise
        self.origin = 0.0
        self._cut: float | None = None  # where the part ends on the output's timeline: no line lasts past it
        self.joins = self.clips.joins  # the writer adds each join's origin
        self._last_time: dict[int, float] = {}  # each input stream's last line, in the input's seconds
        self.pending: Any = None
        self._reading_ended = False  # a stop signal came during a served file's read: nothing more is read
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
        # a spot the demuxer refuses (damaged) is read past, as the pictures' is, rather than ending the run
        return read_past_damage(lambda: self.clips.demux(self.input, *self.streams))

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
        out.metadata.update(track_tags(stream.metadata, self.suffix))  # a .mov's languages in its muxer's codes
        flags = av.stream.Disposition
        out.disposition = functools.reduce(operator.or_, (getattr(flags, flag) for flag in SUBTITLE_FLAGS),
                                           flags(0)) & stream.disposition
        self.tracks[stream.index] = (out, decoder)
        return True

    def begin_at(self, origin: float, clip: int = 0, cut: float | None = None) -> None:
        """Set the origin (the first picture's time, in clip `clip` of clips joined as they are), and jump to a
        little before it where that is far into an indexed file, as the sound does. `cut`: where the part taken
        (--duration) ends, on the output's timeline (the writer's, from the video's clock: a later clip's own
        times begin again). A stop signal during the jump ends it at once, and no line is read after it."""
        import av

        self.origin = origin
        self.clips.start_in(clip)
        self._cut = cut
        start = self.input.start_time / 1_000_000 if self.input.start_time is not None else 0.0
        if not self.streams or origin - start < AUDIO_SEEK_AFTER_S or \
                not AUDIO_SEEK_FORMATS & set(self.input.format.name.split(",")):
            return
        try:
            self._cut_short(lambda: self._jump_near(origin))
        except av.error.FFmpegError:
            return  # read from the beginning (or where a jump landed), the lines before the origin left out
        self.packets = self._demux()

    def _jump_near(self, origin: float) -> None:
        """Jump to SUBTITLE_PREROLL_S before `origin`, or to the line on screen there that began before that."""
        window = round((origin - SUBTITLE_PREROLL_S) * 1_000_000)
        self.input.seek(window, backward=True)  # where Matroska's index (its cues) is read
        across = self._line_across(origin)
        if across is None:
            self.input.seek(window, backward=True)
        else:  # a line on screen at the origin began before the jump's landing: read from it
            self.input.seek(across[1], stream=across[0], backward=True)

    def _next_packet(self) -> Any:
        """The next packet, None at the end or once a stop came. A served file's packet the network cut short (a
        stop's cut, a stall's time-out: FFmpeg flags it corrupt) is left out: half a line is no line."""
        while not self._reading_ended:
            packet = self._cut_short(lambda: next(self.packets, None))
            if packet is None or not (packet.is_corrupt and self._network):
                return None if self._reading_ended else packet
        return None

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
        for packet in demuxed(self.input.demux(stream)):
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
            packet = self.pending or self._next_packet()
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
            if self.clips.before():
                continue  # a clip before the first picture's (--start in a later one): its lines are not the part's
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
        waiting = self._waiting.setdefault(out.index, [])
        if waiting and self.suffix in MP4_SUFFIXES:
            _end_by(waiting, float(pts * base))
        waiting.append((packet, end))

    def _release(self, seconds: float | None, cut: float | None) -> None:
        """Mux the lines that end by `seconds` (the pictures' end; all of them for None), in each stream's order;
        with `cut`, none lasts past it. A line without an end (a bitmap one, ended by the next) is not held. Outside
        MP4 (whose text tracks are cut after close) a line is held at most SUBTITLE_HOLD_S: Matroska players read in
        file order, and a 4 s line muxed at its end sat 3 s of pictures after its start, shown late or not at all.
        A line cut to less than a tick of the file is left out (_lasts_a_tick)."""
        for waiting in self._waiting.values():
            while waiting and (seconds is None or waiting[0][1] is None or waiting[0][1] <= seconds
                               or self._held_long_enough(waiting[0][0], seconds)):
                packet, end = waiting.pop(0)
                if end is not None and cut is not None:
                    end = min(end, cut)
                packet.duration = round(end / packet.time_base) - packet.pts if end is not None else 0
                if end is None or _lasts_a_tick(packet):
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


def _end_by(waiting: list[tuple[Any, float | None]], start: float) -> None:
    """End the last line waiting by `start`, where the next line begins: an MP4 sample lasts until the next one.
    Given its whole length over the next line's start, FFmpeg's MP4 muxer put its closing empty sample there and every
    later line after it: an SRT's overlapping lines (two speakers) came out late, by up to the first one's length."""
    packet, end = waiting[-1]
    if end is not None and end > start:
        waiting[-1] = (packet, start)


def _lasts_a_tick(packet: Any) -> bool:
    """Whether a line, cut, lasts at least a tick of its stream in the file, where the muxer rounds its length
    (Matroska's ticks are milliseconds). One that begins where the part (--duration) or a stopped run ends, a
    rounding below the pictures' end, or less than half a tick before it, was stored lasting 0 at the last picture's
    end: a flash, or a line some players refuse."""
    tick = packet.stream.time_base or packet.time_base  # the file's, once the header is written
    return packet.duration > 0 and packet.duration * packet.time_base >= tick / 2


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
