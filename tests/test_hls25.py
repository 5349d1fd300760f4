"""A live HLS stream's pictures delivered at the stream's pace. FFmpeg downloads a whole segment (2-6 s of pictures)
at once and decodes it as fast as the CPU goes; the live queue, which keeps the newest, then kept about one picture
a segment (15 of 300 written, their capture times in clumps at the segments' starts). They are now released on the
stream's own clock (SegmentPacer), a frame period apart as a camera's; a stall makes no delay that lasts.

The pacer's rules on a fake clock (simulated segments: when each picture can be read, and a decode's 1 ms), then
the whole path: a localhost live playlist whose segments come out over time, through the real PyAV (FFmpeg) path
and the pipeline's live queue."""
import time
import types
from typing import Iterator

import pytest

import stream.network_source as network
from stream.hls_pacing import SegmentPacer
from stream.network_source import NetworkSource
from stream.pipeline import Pipeline
from test_network_blocking import _LiveHls
from test_pipeline import CollectingSink

MS = 1_000_000
S = 1_000_000_000
PERIOD = 100 * MS  # 10 fps
SEGMENT = S  # ten pictures a segment
DECODE = MS  # a picture's read once its segment is there


class _FakeClock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.now += round(seconds * 1e9)
        return False


def _stream(clock: _FakeClock, out_at: list[int]) -> Iterator[tuple[object, int]]:
    """Picture i (stream time i periods) readable from out_at[i] (its segment's arrival), each read a DECODE."""
    for index, out in enumerate(out_at):
        clock.now = max(clock.now, out) + DECODE
        yield types.SimpleNamespace(time=index * PERIOD / 1e9, index=index), clock.now


def _segments_out(count: int, late: dict[int, int] | None = None) -> list[int]:
    """When each picture of `count` segments can be read: three out at the start (FFmpeg starts a live playlist
    three segments back), one more each SEGMENT; `late` delays a segment's arrival (its download), the next ones
    out on time."""
    out = []
    for segment in range(count):
        at = max(0, segment - 2) * SEGMENT + (late or {}).get(segment, 0)
        out += [at] * (SEGMENT // PERIOD)
    return out


def _paced(out_at: list[int], told: list[str] | None = None) -> tuple[list[tuple[int, int]], SegmentPacer]:
    """(picture index, release time) of each picture released, and the pacer."""
    clock = _FakeClock()
    pacer = SegmentPacer(PERIOD, SEGMENT, clock.wait, clock=clock, tell=(told if told is not None else []).append,
                          name="live")
    released = []
    for picture, capture_ns in pacer.paced(_stream(clock, out_at)):
        assert 0 <= clock.now - capture_ns <= PERIOD  # captured when due: released then, or up to a period late
        released.append((picture.index, capture_ns))
    return released, pacer


def test_a_live_playlists_segments_are_released_a_frame_period_apart():
    """Three segments at once, then one a segment's length apart: every picture, each a period after the one before
    from the first's read, none put before its segment came."""
    out_at = _segments_out(8)
    released, pacer = _paced(out_at)
    assert [index for index, _ in released] == list(range(80)) and pacer.skipped == 0
    assert [at for _, at in released] == [DECODE + index * PERIOD for index in range(80)]
    assert all(at >= out_at[index] for index, at in released)


def test_a_segment_out_late_by_less_than_a_segment_moves_the_beat_with_it():
    """A segment that came 2.4 s late (a slow download; the next ones are out on time), 0.4 s past its time (two
    segments were still to show): the beat waits for it, and the pictures after go on a period apart; nothing is
    skipped."""
    released, pacer = _paced(_segments_out(10, late={5: 2400 * MS}))
    assert [index for index, _ in released] == list(range(100)) and pacer.skipped == 0
    gaps = [b - a for (_, a), (_, b) in zip(released, released[1:])]
    assert sorted(set(gaps)) == [PERIOD, PERIOD + 400 * MS]
    assert released[-1][1] - 99 * PERIOD - DECODE == 400 * MS  # the delay that stays: what the late one needed


def test_stalls_make_no_delay_that_lasts():
    """A download that stalls 6 s, twice, while the broadcaster goes on: a beat moved by the lateness (as a paced
    file's is) would stay 4 s behind (6 s less the two segments still to show) for the rest of the run. The
    pictures that were there already are skipped until one is on time again, said once a run: no delay stays."""
    told: list[str] = []
    out_at = _segments_out(24, late={segment: 6 * S for segment in (4, 14)})
    released, pacer = _paced(out_at, told)
    indices = [index for index, _ in released]
    assert indices == sorted(indices) and pacer.skipped > 0 and len(indices) + pacer.skipped == 240
    assert len(told) == 1 and "s behind" in told[0] and "skipped to its newest" in told[0], told
    behind = [at - DECODE - index * PERIOD for index, at in released]  # each release against the first's beat
    assert max(behind) <= SEGMENT and behind[-1] == 0  # the backlog skipped: back on its beat
    assert all(at >= out_at[index] for index, at in released)


def test_a_broadcaster_that_paused_is_taken_up_at_its_newest_picture():
    """No segment out for 4 s (an encoder that paused; its clock went on where it was): the pictures of the segment
    that came are skipped, and the beat laid on the next one, which had to be waited for; from there a period apart
    again, on time."""
    out_at = _segments_out(6) + [5 * SEGMENT + 4 * S] * 10 + [6 * SEGMENT + 4 * S] * 10 + [7 * SEGMENT + 4 * S] * 10
    released, pacer = _paced(out_at)
    indices = [index for index, _ in released]
    assert indices[:60] == list(range(60)) and pacer.skipped == 10 and indices[60:] == list(range(70, 90))
    resumed = released[60][1]
    assert resumed == out_at[70] + DECODE  # the newest, when it came
    assert [at for _, at in released[60:]] == [resumed + step * PERIOD for step in range(20)]


def test_a_clock_that_restarts_or_jumps_is_laid_afresh_and_a_stop_ends_the_wait():
    """A stream clock that goes back (an encoder restarted) or jumps ahead (a discontinuity) is laid on its next
    picture, not waited for; a stop during a wait ends the pictures at once."""
    clock = _FakeClock()
    pacer = SegmentPacer(PERIOD, SEGMENT, clock.wait, clock=clock, tell=[].append)
    assert pacer.due(5 * S, 0, waited=False) == 0
    assert pacer.due(5 * S + PERIOD, MS, waited=False) == PERIOD  # held until its time
    assert pacer.due(0, 2 * PERIOD, waited=True) == 2 * PERIOD  # went back: at once
    assert pacer.due(60 * S, 3 * PERIOD, waited=True) == 3 * PERIOD  # a minute ahead: at once
    assert pacer.due(60 * S + PERIOD, 3 * PERIOD + MS, waited=False) == 4 * PERIOD

    stopped = SegmentPacer(PERIOD, SEGMENT, lambda seconds: True, clock=clock)
    given = list(stopped.paced(_stream(clock, [0] * 5)))
    assert len(given) == 1  # the first is due when read; the stop came during the second's wait


# -- the whole path --------------------------------------------------------------------------------------------
class _StopAfter(CollectingSink):
    """The frames written; the run ended after `enough`, as a window's user closing it (a live stream has no end)."""

    def __init__(self, enough: int) -> None:
        super().__init__()
        self.enough = enough

    @property
    def wants_stop(self) -> bool:
        return len(self.frames) >= self.enough


class _QuickStage:
    """Far faster than the stream's 10 fps, slower than a segment decodes: 20 ms a frame."""
    name, max_batch, max_wait_ms, passes_at_once = "quick", 1, 0.0, False

    def process(self, batch):
        time.sleep(0.02)
        return batch

    def close(self) -> None:
        pass


def test_a_live_hls_stream_reaches_the_stages_at_its_own_pace(tmp_path, told, monkeypatch):
    """A live playlist of 0.5 s segments at 10 fps, three out at the start and one more every 0.5 s, through the live
    queue (one frame) to a stage much faster than the stream: nearly every frame is written, in order, their
    capture times a frame period apart. Before, each segment came out of FFmpeg at once and the queue kept the last
    one or two of each (about a third of the frames; their capture times a few ms apart, then a segment's gap)."""
    monkeypatch.setattr(network, "TIMEOUT_S", 0.5)
    monkeypatch.setattr(network, "HLS_TIMEOUT_S", 3.0, raising=False)
    live = _LiveHls(tmp_path, seconds=0.5, segments=30)  # 15 s: more than the run needs
    sink = _StopAfter(40)
    try:
        source = NetworkSource(live.url)
        assert source.live and source.hls and source._segment_ns == 1 * S  # the playlist's target duration
        result = Pipeline(source, [_QuickStage()], sink, queue_size=1).run()
        source.close()
    finally:
        live.close()
    indices = [frame.index for frame in sink.frames]
    assert result.closed_by_user and len(indices) == 40 and indices == sorted(indices)
    assert len(indices) >= 0.8 * (indices[-1] + 1), (indices, result.dropped)
    gaps = [b.capture_ns - a.capture_ns for a, b in zip(sink.frames, sink.frames[1:])]
    # a frame period apart, by the stream's clock (a late segment's moves the beat: a slow machine's, rarely)
    assert sum(abs(gap - PERIOD) <= MS for gap in gaps) >= 0.8 * len(gaps), [round(gap / MS) for gap in gaps]
    assert not any("behind" in line for line in told), told


@pytest.mark.parametrize("playlist, seconds", [
    ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\na.ts\n", 2.0),
    ("#EXTM3U\n#EXTINF:2.0,\na.ts\n", network.SEGMENT_S),  # none stated
    ("#EXTM3U\n#EXT-X-TARGETDURATION:0\n", network.SEGMENT_LEAST_S),
])
def test_the_segments_length_is_the_playlists_target_duration(monkeypatch, playlist, seconds):
    """How far behind a stream may fall before it skips: its playlist's target duration (a master playlist's, its
    first variant's), at least SEGMENT_LEAST_S; SEGMENT_S where none is stated."""
    variant = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.0,\na.ts\n"
    texts = {"/live.m3u8": playlist, "/master.m3u8": "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nhd/live.m3u8\n",
             "/hd/live.m3u8": variant}
    monkeypatch.setattr(network, "_body", lambda parts: texts[parts.path].encode())
    assert network._segment_s(network.urllib.parse.urlsplit("http://host/live.m3u8")) == seconds
    assert network._segment_s(network.urllib.parse.urlsplit("http://host/master.m3u8")) == 4.0
