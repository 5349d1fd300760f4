"""What the writer and the input's tracks it keeps (the sound, the subtitles) share about time: the MP4 family and
its limit on a track's times, and how a track read from the input follows the pictures' timeline (contiguity, a jump
to the first picture, clips joined as they are)."""
from __future__ import annotations

from typing import Any

MP4_SUFFIXES = (".mp4", ".m4v", ".mov")  # written by FFmpeg's MP4 muxer, with its limits
MP4_MAX_TICKS = 1 << 31  # FFmpeg's MP4 muxer: no sample or composition offset of this many ticks of its track
AUDIO_SNAP_S = 0.005  # audio this close to contiguous is contiguous (Matroska rounds times to 1 ms)
# A first picture this far into the sound (--start) is reached by a jump, not by reading all the file before it: it
# took ~2.6 ms per second skipped (a stall of minutes before the first frame of a long video's last minutes). Only in
# the indexed formats, whose jumps land where asked; MPEG-TS's clips joined as they are go back in time.
AUDIO_SEEK_AFTER_S = 10.0
AUDIO_SEEK_FORMATS = {"mov", "mp4", "matroska", "webm"}
# A sound packet read after the pictures' join that carries on the sound's own time by this much at most is the
# clip before's: its last AC-3 frame, which FFmpeg's parser holds back until the next clip's data arrives.
AUDIO_CARRY_ON_S = 1.0


class Clips:
    """Clips joined as they are (`cat a.ts b.ts`) as a track of the sound or the lines reads them: the origin of each
    clip after the first (`joins`, as the video set it at its first picture) and the clip of the packets read. In
    the formats that can be joined so (not the indexed ones, whose times never go back) the track's demuxer reads
    the pictures' packets too (not decoded: an MPEG-TS demuxer reads every byte anyway), and a packet's clip is the
    joins passed in the pictures before it; else a join is where the track's own time goes back. By its own times
    alone, a clip without sound or lines showed no join, and the next clip's took its origin (its sound and lines
    came out under the clip before). A part that begins in a later clip (--start) begins at clip `skip`: the joins and
    the origins count from it, and the packets of the clips before it are not the part's. With `carry_on_s` (the
    sound's) a track packet after a join that carries on its own time still belongs to the clip before: FFmpeg's
    parser holds back a clip's last AC-3 frame until the next clip's data, after that clip's first picture."""

    def __init__(self, container: Any, carry_on_s: float = 0.0) -> None:
        from stream.sources import chosen_video_stream  # here: stream.sources imports the writer, which imports this

        indexed = AUDIO_SEEK_FORMATS & set(container.format.name.split(","))
        self.video = None if indexed else chosen_video_stream(container)
        self.joins: list[float] = []
        self.carry_on_s = carry_on_s
        self.pictures = 0  # the joins the pictures passed
        self.clip = 0  # the joins the track passed: the pictures' at once, or at its next packet with `carry_on_s`
        self.skip = 0  # the clip of the first picture: the writer's first origin is that clip's, `joins` after it
        self._last_picture: float | None = None  # in the input's seconds
        # A picture or a few whose times are damaged (the next back in line) are no join: a TS picture timed an hour
        # ahead made its return a join, and the sound waited for a clip that never came (1.3 of its 4 s kept). A
        # join is still counted at once (a line under the next clip's first pictures must not wait to be told), and
        # taken back where the pictures come back in line.
        rate = (self.video.average_rate or self.video.guessed_rate) if self.video is not None else None
        self._step = 1 / float(rate) if rate else 0.04
        self._in_line: float | None = None  # the last picture's time in line
        self._out = 0  # pictures out of line since
        self._joins_out = 0  # joins counted among them

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
            self._picture_at(float(time * packet.time_base))
        return True

    def _picture_at(self, seconds: float) -> None:
        """A picture's decoding time: a join where it goes back, taken back where the next pictures return in line
        within LINE_HOLD (a damaged time); out of line longer, the line goes on from them."""
        from stream.clip_joins import LINE_HOLD, in_line

        if self._in_line is None or in_line(self._in_line, seconds, self._step, self._out, AUDIO_SNAP_S):
            if self._joins_out:  # the times out of line were damage: no clip began there
                self.pictures -= self._joins_out
                self.clip = min(self.clip, self.pictures)
            self._in_line, self._out, self._joins_out = seconds, 0, 0
        else:
            if self._last_picture is not None and seconds < self._last_picture - AUDIO_SNAP_S:
                self.pictures += 1
                self.clip = self.clip if self.carry_on_s else self.pictures
                self._joins_out += 1
            self._out += 1
            if self._out > LINE_HOLD:  # a join or a pause: the line goes on from here
                self._in_line, self._out, self._joins_out = seconds, 0, 0
        self._last_picture = seconds

    def went_back(self) -> None:
        """The track's own time went back: a join, where the pictures are not watched; else the pictures' clip."""
        self.clip = self.clip + 1 if self.video is None else self.pictures

    def read(self, seconds: float | None, last: float | None) -> None:
        """The track's packet at `seconds` of its own time, its packet before at `last`: its clip. Where the pictures
        passed a join since, the next clip's (time went back, no packet before, a clip without the track skipped),
        unless it carries on its time within `carry_on_s`: the clip before's last packet, held back by the parser."""
        if seconds is not None and last is not None and seconds < last - AUDIO_SNAP_S:
            self.went_back()
        elif self.pictures > self.clip and not (
                self.pictures == self.clip + 1 and seconds is not None and last is not None
                and seconds <= last + self.carry_on_s):
            self.clip = self.pictures

    def start_in(self, clip: int) -> None:
        """The first picture is of clip `clip` (as the source counted the joins before it). Only where the pictures
        are watched from the file's beginning, as the source's were: an indexed file's track may have jumped."""
        self.skip = clip if self.video is not None else 0

    def before(self) -> bool:
        """Whether the packet read is of a clip before the first picture's: not the part's (its sound under the
        part's first pictures, or waiting for ever for a join the pictures never make)."""
        return self.clip < self.skip

    def origin(self, first: float) -> float | None:
        """The origin of the clip read (`first` the first picture's clip's); None where the pictures have not
        reached it."""
        clip = self.clip - self.skip
        if clip > len(self.joins):
            return None
        return self.joins[clip - 1] if clip else first
