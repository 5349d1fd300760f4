"""Interlaced video (a camcorder's AVCHD 1080i, DV, a broadcast recording) made progressive on decode.

Each interlaced picture holds two fields, filmed 1/50 or 1/60 s apart: decoded plainly, every moving edge shows
comb teeth, which the network, the face detector and the refined depth would follow and the (progressive) output
would keep. FFmpeg's bwdif (as `ffmpeg -vf bwdif`, HandBrake and players do) rebuilds each picture from its first
field in time, motion-adaptively, one picture out per picture in, its time kept: the frame count, the frame times
and the sound's sync stay as they are.

The decision is each picture's own (the decoder's interlaced flag and field order, which bwdif reads), not the
stream's: MPEG-2 marks every picture progressive or not (a film's soft pulldown is progressive pictures), H.264
every picture coded as fields or MBAFF, broadcasts switch between the two, and the stream's own field order can
disagree with its pictures' (seen with libx264). A progressive picture passes bwdif untouched, and a stream whose
pictures are all progressive never enters a filter. Field rate doubling (send_field) is left out: it doubles the
frames every stage has to process, and the frame count the run and --start/--duration work with.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any, Iterable, Iterator

# send_frame: one picture per picture (send_field would double the rate and the frame count);
# parity=auto: each picture's own field order; deint=interlaced: pictures flagged progressive go through as they are.
BWDIF = "mode=send_frame:parity=auto:deint=interlaced"
DESCRIPTION = "deinterlaced (bwdif)"


class Deinterlacer:
    """Decoded pictures in, the same pictures out, interlaced ones deinterlaced. bwdif looks one picture ahead, so
    once the first interlaced picture has come, each picture leaves when the next has entered, and the last ones at
    the end (or at an error, before it is raised)."""

    def __init__(self, time_base: Fraction | None) -> None:
        self.time_base = time_base
        self.graph: Any = None
        self.key: tuple[int, int, str] | None = None  # the size and format the graph was built for
        self.first_interlaced: Any = None  # the first interlaced picture seen, None before

    def frames(self, decoded: Iterable[Any]) -> Iterator[Any]:
        import av

        try:
            for frame in decoded:
                if self.graph is None and not frame.interlaced_frame:
                    yield frame  # progressive so far: no filter at all, the picture bit for bit as decoded
                    continue
                if self.first_interlaced is None:
                    self.first_interlaced = frame
                key = (frame.width, frame.height, frame.format.name)
                if key != self.key:  # clips joined (`cat a.ts b.ts`): the filter is built again for the new size
                    yield from self._drain()
                    self._build(frame, key)
                self.graph.vpush(frame)
                yield from self._pull()
        except av.error.FFmpegError:
            yield from self._drain()  # the pictures held in the filter were decoded: they are processed too
            raise
        yield from self._drain()

    def _build(self, frame: Any, key: tuple[int, int, str]) -> None:
        import av.filter

        # bwdif's slices on FFmpeg's own thread count: 1.3-1.8 ms a 1080i picture on two cores, 2.2-2.9 on one
        graph = av.filter.Graph()
        source = graph.add_buffer(width=frame.width, height=frame.height, format=frame.format,
                                  time_base=self.time_base or frame.time_base or Fraction(1, 90000))
        graph.link_nodes(source, graph.add("bwdif", BWDIF), graph.add("buffersink"))
        graph.configure()
        self.graph, self.key = graph, key

    def _pull(self) -> Iterator[Any]:
        import av

        while True:
            try:
                yield self.graph.vpull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return

    def _drain(self) -> Iterator[Any]:
        """What the filter still holds, the filter then closed."""
        if self.graph is None:
            return
        self.graph.vpush(None)
        yield from self._pull()
        self.graph, self.key = None, None
