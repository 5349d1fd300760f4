"""MPEG transport and program streams: where clips joined as they are (`cat a.ts b.ts`) start, found at open by
their pictures' times (the video file source's length and --start), and a transport stream's packet size, by which a
cut one is told."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

# Byte offsets whose pictures' times are read at open to find joins: one each JOIN_SAMPLE_BYTES, between these
# counts (~0.5 ms each), so that the samples fall closer together than clips of a few seconds are in most files
JOIN_SAMPLES = (32, 256)
JOIN_SAMPLE_BYTES = 4 << 20
JOIN_SCAN_BYTES = 1 << 18  # a join narrowed down to this many bytes is found by reading them packet by packet
JOIN_MARGIN_FRAMES = 4  # read before that, by the file's bytes a second: the clip before's last pictures, its end
JOIN_MARGIN_BYTES = 1 << 16  # ... and at least this much (all of it where the rate is unknown)
TAIL_BYTES = 1 << 20  # the file's end read packet by packet: where its last picture ends
REORDER_PACKETS = 4  # a clip's first packets, among which its first picture shown (B-frames come out of order)
JOIN_SNAP_S = 0.005  # decoding times this little back are a rounding, not a join
# Between two samples whose times go on, a join may hide a clip's time (clips shorter than the samples' spacing):
# bytes this many times more than the file's bytes a second give for the time between them are looked into.
JOIN_HIDDEN_RATIO = 4.0
JOIN_SAMPLE_BUDGET = 512  # samples at most for looking into those (~0.5 ms each); past it the joins count as unknown
# A damaged time (an MPEG-TS PES's, an hour ahead or a second back) is one or a few pictures out of line, the next
# back in line; a join's times restart and go on from there, a pause's go on from its end. Up to this many out of
# line are held to tell them apart (a clip this short reads as damaged); a time later than the line's next steps by
# LINE_AHEAD_S is out of line. Read as a join, the damaged time set the rest of the video an hour (a second) later.
LINE_HOLD = 4
LINE_AHEAD_S = 1.0

Timed = TypeVar("Timed")


def in_line(last: float, time: float, step: float, held: int = 0, snap: float = 0.0) -> bool:
    """Whether `time` follows `last` (the last time in line) with `held` times out of line between them: past their
    steps (`step`: a frame's), give or take half of one (a clip's times, restarted, rise through `last` too), and
    not later than its next `held + 1` steps and LINE_AHEAD_S."""
    low = last - snap + ((held + 0.5) * step if held else 0.0)
    return low <= time <= last + (held + 1) * step + LINE_AHEAD_S


class TimeLine:
    """Tells one or a few items whose times are damaged (out of line, up to LINE_HOLD of them, the next item timed back
    in line) from a join or a pause (more out of line in a row: the line goes on from them), item by item as they
    come (the pictures' packets among a track's: track_timeline.Clips). An item without a time passes as it is, or,
    where items are held, waits with them in its place (no time to tell them by)."""

    def __init__(self, step: float, snap: float = 0.0) -> None:
        self.step, self.snap = step, snap  # a frame's time; times this little back are a rounding
        self.last: float | None = None  # the last time in line
        self.held: list[Any] = []  # out of line since
        self.held_times: list[float | None] = []  # theirs

    def feed(self, item: Any, time: float | None) -> list[tuple[Any, bool]]:
        """The items told by `item` (at `time`), each with whether its time is damaged: none while it is held; those
        held, damaged, and `item` where it is back in line."""
        if time is None and self.held:  # no time to tell those held by (told as back in line, it gave the source
            return self._hold_untimed(item)  # no time to put them back in line at: a TypeError ended the run)
        if time is None or self.last is None or in_line(self.last, time, self.step, len(self.held), self.snap):
            damaged = not self._after_pause(time)
            told = [(out, damaged) for out in self.held] + [(item, False)]
        elif len(self.held) < LINE_HOLD:
            self.held.append(item)
            self.held_times.append(time)
            return []
        else:  # times go on out of line: a join or a pause
            told = [(out, False) for out in self.held] + [(item, False)]
        self.held, self.held_times, self.last = [], [], time if time is not None else self.last
        return told

    def _after_pause(self, time: float | None) -> bool:
        """Whether those held and `time`, back in line, rise one after another from after the line: the pictures
        after a pause a little longer than LINE_AHEAD_S (a screen recording that stood still), the next ones still
        within the line's reach (its frame step, from the average rate, counts the pauses). Read as damaged, the
        first picture after the pause was shown up to a second early."""
        if not self.held or time is None or self.last is None or None in self.held_times:
            return False
        times = [self.last, *self.held_times, time]
        return all(earlier < later for earlier, later in zip(times, times[1:]))

    def _hold_untimed(self, item: Any) -> list[tuple[Any, bool]]:
        """An item without a time held with those out of line before it (a damaged run's, put back in line with them);
        past LINE_HOLD they all go on as they are, and the line starts again at the next time."""
        self.held.append(item)
        self.held_times.append(None)
        if len(self.held) <= LINE_HOLD:
            return []
        told, self.held, self.held_times, self.last = [(out, False) for out in self.held], [], [], None
        return told

    def end(self) -> list[tuple[Any, bool]]:
        """Those still held: none after them to tell, as they are."""
        told, self.held, self.held_times = [(out, False) for out in self.held], [], []
        return told


def marked_out_of_line(items: Iterable[Timed], time_of: Callable[[Timed], float | None], step: float,
                       snap: float = 0.0) -> Iterator[tuple[Timed, bool]]:
    """`items` in their order, each with whether its time is damaged (TimeLine); damaged ones come right before the
    item back in line."""
    line = TimeLine(step, snap)
    for item in items:
        yield from line.feed(item, time_of(item))
    yield from line.end()


@dataclass(frozen=True)
class Clip:
    """One of clips joined as they are (`cat a.ts b.ts`): the byte its packets start at, its first picture's own
    time and its length, in seconds."""
    pos: int
    first: float
    length: float


@dataclass
class _Scanned:
    """A clip as a run of packets read shows it: where it starts (None: before the run), its first picture's time
    and where its last picture ends, among the packets read."""
    pos: int | None
    first: float | None = None
    end: float | None = None
    packets: int = 0


class ClipFinder:
    """Finds where the pictures' decoding times go back in an MPEG transport or program stream (clips joined as they
    are) by reading the packets at a few byte offsets, then packet by packet near each step back. Samples whose
    times go on over more bytes than the file's rate gives (a join may hide there, a clip shorter than their
    spacing) are halved too. A demuxer of its own: the source's is left where its first picture was decoded."""

    def __init__(self, path: Path, stream_index: int, fps: float) -> None:
        import av

        self.size = path.stat().st_size
        self.container = av.open(str(path), metadata_errors="replace")
        self.stream = self.container.streams[stream_index]
        self.tick = float(self.stream.time_base)
        self.frame = 1 / fps
        self.rate: float | None = None  # the file's bytes a second, from its samples (a lower quartile)
        self.budget = JOIN_SAMPLE_BUDGET

    def close(self) -> None:
        self.container.close()

    def _packets(self, pos: int) -> Iterator[tuple[Any, int]]:
        """The stream's timed packets from byte `pos` on, each with the byte it starts at; one the parser split from
        the one before (MPEG-PS: several pictures in a PES) has none of its own and takes that one's."""
        self.container.seek(pos, unsupported_byte_offset=True)
        place = None
        for packet in demuxed(self.container.demux(self.stream)):
            if packet.pos is not None and packet.pos >= 0:
                place = packet.pos
            if place is not None and packet.dts is not None and packet.pts is not None:
                yield packet, place

    def _sample(self, pos: int) -> tuple[int, float] | None:
        """The place and decoding time of the first packet at or after byte `pos`."""
        found = next(self._packets(pos), None)
        return None if found is None else (found[1], found[0].dts * self.tick)

    def clips(self, origin: float) -> list[Clip] | None:
        """The clips, the first starting at `origin` (its first picture's time); one where no join is seen (its
        length by its last picture: FFmpeg's guess for an MPEG-PS may be a picture's, 0.1 s for 2 s). None: clips
        joined, too many to look for all of them within JOIN_SAMPLE_BUDGET."""
        tail = max(0, self.size - TAIL_BYTES)
        count = min(max(tail // JOIN_SAMPLE_BYTES, JOIN_SAMPLES[0]), JOIN_SAMPLES[1])
        if tail <= JOIN_SCAN_BYTES * (count - 1):  # samples this close: reading it all costs as little (a few ms)
            return self._joined([self._scan(0, self.size)], origin)
        samples = [self._sample(tail * i // (count - 1)) for i in range(count)]
        ranges: list[tuple[int, int]] = []
        known = [sample for sample in samples if sample is not None]
        if not known:
            return []
        pairs = list(zip(known, known[1:]))
        rates = sorted((after[0] - before[0]) / (after[1] - before[1]) for before, after in pairs
                       if after[1] > before[1] + JOIN_SNAP_S)
        self.rate = rates[len(rates) // 4] if rates else None  # low: a join hidden between two makes theirs high
        for before, after in pairs:
            self._narrow(before, after, ranges)
        if self.budget < 0:
            return None
        # from the last sample at the latest: the file may end with a second of sound alone
        runs = [self._scan(start, stop) for start, stop in ranges] + [self._scan(min(tail, known[-1][0]), self.size)]
        return self._joined(runs, origin)

    def _narrow(self, before: tuple[int, float], after: tuple[int, float], ranges: list[tuple[int, int]]) -> None:
        """Byte ranges of at most JOIN_SCAN_BYTES holding a join, halving those where time goes back, or goes on
        too little for their bytes."""
        back = after[1] < before[1] - JOIN_SNAP_S
        hidden = self.rate is not None and after[0] - before[0] > JOIN_HIDDEN_RATIO * self.rate * (after[1] - before[1])
        if not back and not hidden:
            return
        if after[0] - before[0] <= JOIN_SCAN_BYTES:
            ranges.append((before[0], after[0]))  # hidden too: a clip shorter than these bytes' time
            return
        self.budget -= 1
        if self.budget < 0:
            return
        middle = self._sample((before[0] + after[0]) // 2)
        if middle is None or not before[0] < middle[0] < after[0]:
            ranges.append((before[0], after[0]))  # no packet starts in between: read all of it
            return
        self._narrow(before, middle, ranges)
        self._narrow(middle, after, ranges)

    def _scan(self, start: int, stop: int) -> list[_Scanned]:
        """The clips of the packets from byte `start` (and a margin before it) to `stop` (and a few after)."""
        runs = [_Scanned(None)]
        last: float | None = None
        margin = max(JOIN_MARGIN_BYTES, round(JOIN_MARGIN_FRAMES * self.frame * (self.rate or 0)))
        packets = marked_out_of_line(self._packets(max(0, start - margin)), lambda found: found[0].dts * self.tick,
                                     self.frame, JOIN_SNAP_S)
        for (packet, place), damaged in packets:
            if damaged:
                continue  # a damaged time, no join (the source puts its picture back in line)
            dts, pts = packet.dts * self.tick, packet.pts * self.tick
            if last is not None and dts < last - JOIN_SNAP_S:
                runs.append(_Scanned(place))
            last, run = dts, runs[-1]
            if run.pos is not None and run.packets < REORDER_PACKETS:
                run.first = pts if run.first is None else min(run.first, pts)
            run.end = max(run.end or pts, pts + (float(packet.duration * self.tick) if packet.duration else self.frame))
            run.packets += 1
            if place >= stop and (run.pos is None or run.packets >= REORDER_PACKETS):
                break
        return runs

    def _joined(self, runs: list[list[_Scanned]], origin: float) -> list[Clip]:
        """The clips from the scans' runs (a join read twice counts once)."""
        joins: dict[int, tuple[float, float]] = {}  # by the byte a clip starts at: the clip before's end, its first
        for scan in runs:
            for before, run in zip(scan, scan[1:]):
                if run.pos is not None and before.end is not None and run.first is not None:
                    joins[run.pos] = (before.end, run.first)
        end = runs[-1][-1].end  # the tail's: where the last picture ends
        if end is None:
            return []
        starts = sorted(joins)
        ends = [joins[pos][0] for pos in starts] + [end]
        firsts = [origin] + [joins[pos][1] for pos in starts]
        return [Clip(pos, first, last - first) for pos, first, last in zip([0, *starts], firsts, ends)]

    def keyframe_before(self, clip: Clip, stop: int, target: float) -> int:
        """The byte of `clip`'s last keyframe (its packets end at byte `stop`) shown at or before `target`, its own
        seconds: the bytes halved down to a few by the pictures' times, then read packet by packet, earlier and
        earlier until one is found; else the clip's start, a keyframe."""
        low, high = clip.pos, stop
        while high - low > JOIN_SCAN_BYTES:
            middle = self._sample((low + high) // 2)
            if middle is None or middle[0] >= high or middle[1] > target:
                high = (low + high) // 2
            else:
                low = middle[0]
        back = JOIN_SCAN_BYTES
        while (found := self._last_keyframe(low, stop, target)) is None and low > clip.pos:
            low, back = max(clip.pos, low - back), 2 * back
        return clip.pos if found is None else found

    def _last_keyframe(self, pos: int, stop: int, target: float) -> int | None:
        """The byte of the last keyframe from byte `pos` on, before byte `stop`, shown at or before `target`."""
        found = None
        for packet, place in self._packets(pos):
            if place >= stop or packet.dts * self.tick > target:
                break
            if packet.is_keyframe and packet.pos == place and packet.pts * self.tick <= target:  # a jump lands there
                found = place
        return found


TS_SYNC = 0x47  # the first byte of every MPEG-TS packet


def demuxed(packets: Iterator[Any]) -> Iterator[Any]:
    """`packets` (a container's demux), ended where PyAV's raises IndexError: at the end of the file, where it flushes
    a stream that FFmpeg added part-way (damaged MPEG-TS tables) but PyAV's list of streams lacks. The streams asked
    for, listed from the start, were flushed before it."""
    try:
        yield from packets
    except IndexError:
        return


def read_past_damage(demux: Callable[[], Iterator[Any]], retries: int = 16) -> Iterator[Any]:
    """The packets of `demux()` (demuxed), called again where the demuxer refuses a damaged spot: it reads on from
    where it stopped. After `retries` refusals in a row, the rest counts as unreadable."""
    import av

    refusals = 0
    while refusals < retries:
        try:
            for packet in demuxed(demux()):
                refusals = 0
                yield packet
            return
        except av.error.FFmpegError:
            refusals += 1


def transport_packet_size(path: Path) -> int | None:
    """188 (a .ts), 192 (a .m2ts/.MTS: 4 bytes of time before each packet) or 204 (with error correction), by
    where the sync byte recurs at the file's start; None where it does not."""
    with open(path, "rb") as handle:
        head = handle.read(204 * 4 + 4)
    for size, offset in ((188, 0), (192, 4), (204, 0)):
        if len(head) >= offset + 3 * size + 1 and all(head[offset + i * size] == TS_SYNC for i in range(4)):
            return size
    return None


def transport_stream_cut(path: Path, packet: int | None) -> str | None:
    """The warning for a transport stream whose last packet is cut part-way (a partial download or copy)."""
    if packet is None:
        return None
    try:
        left = path.stat().st_size % packet
    except OSError:
        return None
    if not left:
        return None
    return (f"{path.name} ends part-way through a {packet}-byte transport packet ({left} bytes of it); it may be "
            f"truncated")
