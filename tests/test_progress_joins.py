"""Progress and --start through MPEG-TS clips joined as they are (`cat a.ts b.ts > ab.ts`): the pictures' times
start again at each join, and the length FFmpeg announces is a guess from the first and last times (2 s for a 1 s
clip followed by a 2 s one); the joins are found at open, and the length is the clips' sum."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from media import join, make_video
from stream.console import OVERRUN_S, TimeProgressBar
from stream.sources import VIDEO_TIME, open_source


def _joined(tmp_path: Path, seconds: list[float], name: str = "joined.ts") -> Path:
    """Clips of 10 fps, `seconds` long each, joined as `cat` joins them."""
    clips = [make_video(tmp_path / f"clip{i}.ts", frames=round(10 * length), fps=10, size=(64, 48),
                        audio_codec=None) for i, length in enumerate(seconds)]
    return join(tmp_path / name, clips)


def _read(path: Path) -> tuple[float | None, list[float], str | None]:
    """The source's progress_seconds, seconds_done after each frame, and its truncation warning."""
    source = open_source(str(path))
    try:
        done = [source.seconds_done(frame) for frame in source.frames()]
        return source.progress_seconds, done, source.truncation_warning()
    finally:
        source.close()


def test_seconds_done_go_on_through_a_join(tmp_path):
    """They went back to 0.1 s at the join and stopped at the announced length: the bar sat at "2.0s/2.0s"
    for the whole second clip. They go on, a frame's time a frame, to the end of the last clip."""
    total, done, _ = _read(_joined(tmp_path, [1.0, 2.0]))
    assert total == pytest.approx(3.0, abs=1e-3)  # the clips' sum, not FFmpeg's guess of 2 s
    assert len(done) == 30
    assert np.diff(done) == pytest.approx(np.full(29, 0.1), abs=1e-3)
    assert done[-1] == pytest.approx(3.0, abs=1e-3)


def test_the_bar_gives_way_to_a_count_past_the_length_announced(tmp_path):
    """Past the length announced the bar said 100% to the end of the run; it becomes a count of the seconds
    done, which says the length announced was short. FFmpeg's guess is what a pipe announces (its joins cannot be
    looked for at open)."""
    import av

    path = _joined(tmp_path, [1.0, 2.0])
    with av.open(str(path)) as container:
        total = container.duration / 1_000_000  # FFmpeg's guess
    _, done, _ = _read(path)
    assert total == pytest.approx(2.0, abs=0.05)
    bar = TimeProgressBar(total, file=io.StringIO(), mininterval=0, ncols=100)
    shown = []
    for seconds in done:
        bar.reach(seconds)
        shown.append(str(bar))
    bar.close()
    assert "100%" not in shown[-1] and shown[-1].startswith("3.0s of video, more than the 2.0s announced")
    assert all("100%" not in line for seconds, line in zip(done, shown) if seconds > total + OVERRUN_S)
    assert "50%" in shown[9] and "1.0s/2.0s of video" in shown[9]  # a bar while within the length


def test_the_bar_keeps_its_end_for_a_rounding_or_a_last_pictures_hold():
    """A last picture held a little past the length announced is no sign of more video: the bar ends full."""
    bar = TimeProgressBar(3.0, file=io.StringIO(), mininterval=0, ncols=100)
    bar.reach(3.0 + OVERRUN_S / 2)
    assert bar.n == 3.0 and "100%" in str(bar) and "3.0s/3.0s of video" in str(bar)
    bar.reach(2.0)  # never back
    assert bar.n == 3.0
    bar.close()


def test_a_longer_clip_joined_before_a_shorter_one_is_not_said_truncated(tmp_path):
    """A 2 s clip then a 1 s one: the pictures' times ended at 1 s of the 2 s announced, and the run ended
    with "it may be truncated" for a whole file. All 3 s count."""
    total, done, warning = _read(_joined(tmp_path, [2.0, 1.0]))
    assert warning is None
    assert done[-1] == pytest.approx(3.0, abs=1e-3)


FPS = 10


def _counted_clip(path: Path, clip: int, seconds: float, fps: int = FPS, form: str = "mpegts") -> Path:
    """A clip of `fps` pictures a second, with sound, each picture one colour that tells its clip (blue, by threes)
    and its number in the clip (green and red); a keyframe every half second, so that a start is reached by a jump.
    `form`: "mpegts" (H.264, AAC), or "mpeg", a program stream (MPEG-2 video and audio, as a DVD's)."""
    import av

    from media import encode_mono

    with av.open(str(path), "w", format=form) as container:
        video = container.add_stream("libx264" if form == "mpegts" else "mpeg2video", rate=fps)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.codec_context.gop_size = fps // 2
        audio = container.add_stream("aac" if form == "mpegts" else "mp2", rate=44100)
        for index in range(round(seconds * fps)):
            image = np.empty((48, 64, 3), np.uint8)
            image[:] = (40 + 80 * (clip % 3), 10 + 8 * (index % 30), 40 + 100 * (index // 30))
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        t = np.arange(round(44100 * seconds)) / 44100
        encode_mono(container, audio, 0.3 * np.sin(2 * np.pi * (440 + 220 * clip) * t), 44100)
    return path


def _counted(tmp_path: Path, seconds: list[float], fps: int = FPS, form: str = "mpegts") -> Path:
    suffix = ".ts" if form == "mpegts" else ".mpg"
    return join(tmp_path / f"joined{suffix}", [_counted_clip(tmp_path / f"clip{i}{suffix}", i, length, fps, form)
                                               for i, length in enumerate(seconds)])


def _picture(image: np.ndarray) -> tuple[int, int]:
    """The clip and the number in it that a counted picture shows."""
    blue, green, red = (image[..., channel].mean() for channel in range(3))
    return round((blue - 40) / 80), round((green - 10) / 8) + 30 * round((red - 40) / 100)


JOINED_STARTS = [
    ([1.0, 2.0], 0.5, (0, 5)), ([1.0, 2.0], 1.5, (1, 5)), ([1.0, 2.0], 2.2, (1, 12)),
    ([2.0, 1.0, 1.5], 0.3, (0, 3)), ([2.0, 1.0, 1.5], 1.2, (0, 12)), ([2.0, 1.0, 1.5], 2.5, (1, 5)),
    ([2.0, 1.0, 1.5], 3.2, (2, 2)), ([2.0, 1.0, 1.5], 4.4, (2, 14)),
    ([1.5, 0.7, 2.3], 1.9, (1, 4)), ([1.5, 0.7, 2.3], 2.4, (2, 2)),
]


@pytest.mark.parametrize("scan_bytes", [None, 2048])
@pytest.mark.parametrize("seconds, start, shown", JOINED_STARTS)
def test_a_start_lands_in_the_joined_clip_that_holds_it(tmp_path, monkeypatch, scan_bytes, seconds, start, shown):
    """--start within the length FFmpeg guesses jumped by time, which the later clips hold again: 1.2 s into a 2 s,
    a 1 s and a 1.5 s clip began with the third clip's 1.2 s (video time 4.2). It begins with the picture at that
    time of the video, its clip found by the bytes, and goes on to the end of the last clip. With `scan_bytes`,
    joins and starts are narrowed down through samples rather than read packet by packet."""
    if scan_bytes is not None:
        monkeypatch.setattr("stream.clip_joins.JOIN_SCAN_BYTES", scan_bytes)
        monkeypatch.setattr("stream.clip_joins.JOIN_MARGIN_BYTES", scan_bytes)
    source = open_source(str(_counted(tmp_path, seconds)))
    try:
        origin = source._first.time
        source.set_range(start, None)
        frames = list(source.frames())
        assert _picture(frames[0].image) == shown
        assert source.first_clip == shown[0]  # the writer's sound and subtitles are to skip the clips before
        times = [frame.extra[VIDEO_TIME] - origin for frame in frames]
        assert times == pytest.approx(np.arange(round(start * FPS), round(sum(seconds) * FPS)) / FPS, abs=1e-3)
        assert source.seconds_done(frames[-1]) == pytest.approx(sum(seconds) - start, abs=1e-3)
        assert source.progress_seconds == pytest.approx(sum(seconds) - start, abs=1e-3)
    finally:
        source.close()


@pytest.mark.parametrize("seconds", [[1.0, 2.0], [2.0, 1.0, 1.5], [1.5, 0.7, 2.3]])
def test_the_length_of_joined_clips_is_the_sum_of_theirs(tmp_path, seconds):
    """The bar's total was FFmpeg's guess from the first and last pictures' times (2 s for 1 s and 2 s joined), and
    the bar gave way to a count part-way. It is all the clips' time, found at open."""
    total, done, warning = _read(_counted(tmp_path, seconds))
    assert total == pytest.approx(sum(seconds), abs=1e-3)
    assert done[-1] == pytest.approx(total, abs=1e-3) and warning is None


@pytest.mark.parametrize("start, shown", [(0.4, (0, 10)), (1.6, (1, 15)), (3.2, (2, 5))])
def test_a_start_in_joined_program_streams_lands_in_its_clip(tmp_path, start, shown):
    """The same in MPEG program streams (a DVD's .VOB, a camcorder's .mpg joined): their length was FFmpeg's guess
    (1.56 s for 4.2 s) and --start 0.4 began in the third clip, 20 pictures in all."""
    source = open_source(str(_counted(tmp_path, [1.0, 2.0, 1.2], fps=25, form="mpeg")))
    try:
        assert source.progress_seconds == pytest.approx(4.2, abs=1e-3)
        origin = source._first.time
        source.set_range(start, None)
        frames = list(source.frames())
        assert _picture(frames[0].image) == shown
        assert frames[0].extra[VIDEO_TIME] - origin == pytest.approx(start, abs=1e-3) and len(frames) == round(
            (4.2 - start) * 25)
    finally:
        source.close()


def test_the_length_of_one_program_stream_is_its_pictures(tmp_path):
    """FFmpeg guesses an MPEG program stream's video length short (1.56 s for a 2 s clip), and the bar gave way to
    a count part-way through a whole file. Its pictures' length is read at open, as joined clips' is."""
    total, done, warning = _read(_counted_clip(tmp_path / "clip.mpg", 0, 2.0, fps=25, form="mpeg"))
    assert total == pytest.approx(2.0, abs=1e-3)
    assert done[-1] == pytest.approx(2.0, abs=1e-3) and len(done) == 50 and warning is None


MANY = [0.6, 1.1, 0.5, 0.9, 1.3, 0.4, 0.8, 1.0, 0.7, 1.2, 0.5, 0.9]  # a dashcam's clips, 12 of them (scaled)


def _sparse(monkeypatch, budget: int | None = None) -> None:
    """Samples far apart for the clips (4 in all), so that most joins hide between two whose times go on."""
    monkeypatch.setattr("stream.clip_joins.JOIN_SAMPLES", (4, 4))
    monkeypatch.setattr("stream.clip_joins.JOIN_SCAN_BYTES", 2048)
    monkeypatch.setattr("stream.clip_joins.TAIL_BYTES", 2048)
    if budget is not None:
        monkeypatch.setattr("stream.clip_joins.JOIN_SAMPLE_BUDGET", budget)


@pytest.mark.parametrize("start, shown", [(0.3, (0, 3)), (2.3, (3, 1)), (6.1, (7, 5)), (9.6, (11, 6))])
def test_many_short_clips_between_few_samples_are_all_found(tmp_path, monkeypatch, start, shown):
    """Clips shorter than the samples' spacing, several between two samples: each range where time goes back is
    halved until every join in it is read."""
    _sparse(monkeypatch)
    path = _counted(tmp_path, MANY)
    source = open_source(str(path))
    try:
        assert source.progress_seconds == pytest.approx(sum(MANY), abs=1e-3)
        origin = source._first.time
        source.set_range(start, None)
        frames = list(source.frames())
        assert _picture(frames[0].image) == (shown[0] % 3, shown[1]) and source.first_clip == shown[0]
        assert frames[0].extra[VIDEO_TIME] - origin == pytest.approx(start, abs=1e-3)
    finally:
        source.close()


def test_a_start_in_more_joins_than_can_be_looked_for_is_reached_by_reading_on(tmp_path, monkeypatch):
    """Past the samples' budget the joins are not all known: a jump by time could land in any clip holding that
    time, so the file is read from its start, the pictures' times carried on over each join."""
    _sparse(monkeypatch, budget=0)
    source = open_source(str(_counted(tmp_path, MANY)))
    try:
        assert source._joins_unknown and source.progress_seconds < sum(MANY) - 1  # FFmpeg's guess
        origin = source._first.time
        source.set_range(6.1, None)
        frames = list(source.frames())
        assert (_picture(frames[0].image), source.first_clip) == ((1, 5), 7)
        assert frames[0].extra[VIDEO_TIME] - origin == pytest.approx(6.1, abs=1e-3)
    finally:
        source.close()


def test_a_join_hidden_between_samples_whose_times_go_on_is_looked_into():
    """A 2 s clip between two 10 s ones, sampled 9.5 s into the first and 9.6 s into the last: the times go on, and
    both joins were missed. The bytes between them, 2.6 s of video where the times say 0.1 s, are halved until
    both are narrowed down. Clips of 100 kB a second, a packet each 1000 bytes."""
    from stream.clip_joins import JOIN_SCAN_BYTES, ClipFinder

    lengths, rate = [10.0, 2.0, 10.0], 100_000.0
    starts = np.cumsum([0, *lengths]) * rate

    def sample(pos: int) -> tuple[int, float] | None:
        pos = -(-pos // 1000) * 1000
        clip = int(np.searchsorted(starts, pos, side="right")) - 1
        return None if clip >= len(lengths) else (pos, (pos - starts[clip]) / rate)

    finder = object.__new__(ClipFinder)
    finder._sample, finder.rate, finder.budget = sample, rate, 100
    ranges: list[tuple[int, int]] = []
    finder._narrow(sample(950_000), sample(2_160_000), ranges)
    assert len(ranges) == 2 and all(stop - begin <= JOIN_SCAN_BYTES for begin, stop in ranges)
    assert [begin <= join <= stop for (begin, stop), join in zip(ranges, starts[1:3])] == [True, True]

