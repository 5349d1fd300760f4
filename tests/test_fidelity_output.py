"""What a processed video keeps of its input: the container's tags (when and where it was recorded, its title),
the sound track's language, each picture's own duration (a GIF's long last picture), and every picture of a
variable frame rate."""
import logging
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from media import encode_mono, make_timed_video, timeline
from stream.frame import Frame
from stream.sinks import make_sink
from stream.sources import open_source
from stream.video_writer import VideoWriter, _one_value

CREATED = "2023-07-14T10:21:33.000000Z"
PLACE = "+48.8584+002.2945/"
APPLE_PLACE = "com.apple.quicktime.location.ISO6709"
# As phones and cameras store them: Android's MP4 (creation time, ©xyz place, title), an iPhone's MOV (Apple's
# mdta keys), a camera's Matroska.
INPUTS = {
    "android.mp4": ({"creation_time": CREATED, "location": PLACE, "title": "Holiday"}, None),
    "iphone.mov": ({"creation_time": CREATED, APPLE_PLACE: "+48.8584+002.2945+035.000/",
                    "com.apple.quicktime.make": "Apple", "com.apple.quicktime.model": "iPhone 14"},
                   {"movflags": "use_metadata_tags"}),
    "camera.mkv": ({"creation_time": CREATED, "title": "Holiday"}, None),
}


def _tagged_video(path: Path, tags: dict[str, str], options: dict[str, str] | None, audio_language: str | None,
                  frames: int = 12) -> Path:
    import av

    with av.open(str(path), "w", container_options=options or {}) as container:
        container.metadata.update(tags)
        video = container.add_stream("libx264", rate=12)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("aac", rate=44100) if audio_language else None
        if audio is not None:
            audio.metadata["language"] = audio_language
        for i in range(frames):
            image = np.full((48, 64, 3), 40 + 10 * i, np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if audio is not None:
            encode_mono(container, audio, 0.1 * np.sin(np.arange(44100) / 10), 44100)
    return path


def _tags(path: Path) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The container's tags, keys in lower case (Matroska's are upper case), and each audio stream's. A tag held
    twice alike (FFmpeg 8 reads an MP4's creation time from its movie header and its mdta key: "A;A") is one."""
    import av

    with av.open(str(path)) as container:
        return ({key.lower(): _one_value(value) for key, value in container.metadata.items()},
                [dict(stream.metadata) for stream in container.streams.audio])


def _process(source_path: Path, out: Path, **writer_options) -> None:
    source = open_source(str(source_path))
    writer = VideoWriter(out, source.width, source.height, source.fps, source.audio_path, **writer_options)
    for frame in source.frames():
        writer.write(frame.image, frame.pts_seconds)
    writer.close()
    source.close()


@pytest.mark.parametrize("name", sorted(INPUTS))
@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv", ".webm"])
def test_fidelity_when_and_where_it_was_recorded_and_its_title_are_kept(tmp_path, name, suffix):
    """Photo apps sort videos by their creation time and map them by their location: a portrait of a holiday
    video stays beside the holiday's photos, and its sound keeps its language."""
    tags, options = INPUTS[name]
    source = _tagged_video(tmp_path / name, tags, options, audio_language="fra")
    out = tmp_path / f"out{suffix}"
    _process(source, out)
    kept, audio = _tags(out)
    for key, value in tags.items():
        assert kept.get(key.lower()) == value, key
    if "location" in tags:  # MP4 holds it as 3GPP's loci, MOV as ©xyz, Matroska as a tag
        assert kept["location"] == PLACE
    assert audio[0].get("language") == "fra"
    if suffix in (".mkv", ".webm"):  # what describes the input's own file is not the output's
        assert not {"major_brand", "compatible_brands", "minor_version"} & set(kept)


@pytest.mark.parametrize("name", ["android.mp4", "iphone.mov"])
def test_fidelity_an_avi_keeps_the_date_it_was_recorded_and_its_title(tmp_path, name):
    """AVI holds the creation date as RIFF's ICRD (year-month-day), which FFmpeg's muxer takes as "date": it left
    creation_time out, and the AVI output had no date at all."""
    tags, options = INPUTS[name]
    source = _tagged_video(tmp_path / name, tags, options, audio_language="fra")
    out = tmp_path / "out.avi"
    _process(source, out)
    kept, _ = _tags(out)
    assert kept["date"] == "2023-07-14"
    assert kept.get("title") == tags.get("title")


def test_fidelity_the_mp4_creation_time_is_the_movie_header_s(tmp_path):
    """MP4 and MOV keep the creation time in the movie header (mvhd), where players and photo apps read it."""
    import struct

    source = _tagged_video(tmp_path / "in.mp4", {"creation_time": CREATED}, None, audio_language=None)
    out = tmp_path / "out.mp4"
    _process(source, out, tags_from=source)
    data = out.read_bytes()
    at = data.index(b"mvhd") + 4
    seconds = struct.unpack_from(">Q" if data[at] == 1 else ">I", data, at + 4)[0]
    since_1904 = datetime(2023, 7, 14, 10, 21, 33, tzinfo=timezone.utc) - datetime(1904, 1, 1, tzinfo=timezone.utc)
    assert seconds == since_1904.total_seconds()


def test_fidelity_a_video_without_sound_keeps_its_tags_and_so_does_its_depth_video(tmp_path):
    source = _tagged_video(tmp_path / "in.mp4", INPUTS["android.mp4"][0], None, audio_language=None)
    sink = make_sink(str(tmp_path / "out.mp4"), width=64, height=48, fps=12, audio_from=None, side_by_side=False,
                     save_depth=str(tmp_path / "depth.mkv"), tags_from=source)
    for index in range(3):
        image = np.full((48, 64, 3), 90, np.uint8)
        frame = Frame(index=index, capture_ns=0, image=image, pts_seconds=index / 12)
        frame.refined = np.full((48, 64), 0.5, np.float32)
        sink.write(frame)
    sink.close()
    for path in (tmp_path / "out.mp4", tmp_path / "depth.mkv"):
        kept = _tags(path)[0]
        assert kept["creation_time"] == CREATED and kept["title"] == "Holiday" and kept["location"] == PLACE, path


def test_fidelity_an_input_whose_tags_cannot_be_read_is_written_without_them(tmp_path):
    out = tmp_path / "out.mp4"
    writer = VideoWriter(out, 64, 48, 12, tags_from=tmp_path / "gone.mp4")
    writer.write(np.zeros((48, 64, 3), np.uint8), 0.0)
    writer.close()
    assert "creation_time" not in _tags(out)[0]


def _end(path: Path) -> tuple[float, float, int]:
    """(where the container says the video ends, where its video stream ends, the pictures decoded)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        ends = container.duration / 1_000_000
        if stream.duration:
            stream_end = float(stream.duration * stream.time_base)
        else:  # Matroska: the stream's DURATION tag
            hours, minutes, seconds = stream.metadata["DURATION"].split(":")
            stream_end = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        return ends, stream_end, sum(1 for _ in container.decode(stream))


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv", ".webm", ".avi"])  # AVI: by its empty chunks
@pytest.mark.parametrize("count", [10, 30, 31])
def test_fidelity_a_long_last_picture_is_held_as_long_as_in_the_input(tmp_path, suffix, count):
    """A GIF (or a screen recording) whose last picture stays 2 s: the output lasts as long, whether or not the
    last picture shown is the last one stored (B-frames: at 30 pictures it is stored before two others)."""
    out = tmp_path / f"out{suffix}"
    writer = VideoWriter(out, 64, 48, 30.0)
    for i in range(count):
        image = np.random.default_rng(i).integers(0, 255, (48, 64, 3), dtype=np.uint8)
        writer.write(image, i / 30, 2.0 if i == count - 1 else 1 / 30)
    writer.close()
    container_end, stream_end, pictures = _end(out)
    assert pictures == count
    assert container_end == pytest.approx((count - 1) / 30 + 2.0, abs=0.002)
    assert stream_end == pytest.approx((count - 1) / 30 + 2.0, abs=0.002)


def test_fidelity_a_stopped_run_s_sound_ends_where_its_long_last_picture_does(tmp_path):
    """A part (--duration) or an interrupted run ends its sound with the pictures: with the last picture's own
    duration, not one frame period after it."""
    source = make_timed_video(tmp_path / "in.mp4", [i / 10 for i in range(10)], fps=10, audio_seconds=5.0)
    out = tmp_path / "out.mp4"
    writer = VideoWriter(out, 64, 48, 10.0, source)
    for i in range(10):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8), i / 10, 2.0 if i == 9 else 0.1)
    writer.close(complete=False)
    assert timeline(out)["audio_end"] == pytest.approx(0.9 + 2.0, abs=0.03)


def test_fidelity_the_video_sink_hands_each_frame_s_own_duration_to_the_writer(tmp_path):
    sink = make_sink(str(tmp_path / "out.mkv"), width=64, height=48, fps=10, audio_from=None, side_by_side=False,
                     save_depth=None)
    for index in range(5):
        frame = Frame(index=index, capture_ns=0, image=np.full((48, 64, 3), 30 * index, np.uint8),
                      pts_seconds=index / 10, extra={"duration_seconds": 3.0 if index == 4 else 0.1})
        sink.write(frame)
    sink.close()
    assert _end(tmp_path / "out.mkv")[0] == pytest.approx(0.4 + 3.0, abs=0.002)


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
def test_fidelity_a_last_picture_after_a_pause_is_kept_in_mp4(tmp_path, suffix):
    """A variable frame rate whose last picture comes after a pause (a screen recording): FFmpeg's hybrid MP4 ended
    the track where the pictures before the pause end, and players dropped the last picture."""
    times = [i / 10 for i in range(21)] + [2.1 + 0.5]
    source = make_timed_video(tmp_path / "in.mkv", times, fps=10, audio_codecs=())
    out = tmp_path / f"out{suffix}"
    _process(source, out)
    assert timeline(out)["video"] == pytest.approx(times, abs=1e-3)


def test_fidelity_of_several_audio_streams_none_is_said_left_out(tmp_path, caplog):
    source = make_timed_video(tmp_path / "in.mkv", [i / 10 for i in range(5)], fps=10,
                              audio_codecs=("aac", "libmp3lame"), default_audio=1)
    with caplog.at_level(logging.WARNING, logger="stream.audio_track"):
        _process(source, tmp_path / "out.mp4")
    said = [record.getMessage() for record in caplog.records if "audio streams" in record.getMessage()]
    assert said == []  # every stream is kept (tests/test_audio_tracks.py): nothing left out to tell


def test_fidelity_a_picture_without_a_duration_lasts_one_frame_period(tmp_path):
    out = tmp_path / "out.mp4"
    writer = VideoWriter(out, 64, 48, 25.0)
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8), i / 25)
    writer.close()
    assert _end(out)[:2] == pytest.approx((0.2, 0.2), abs=0.002)


def test_fidelity_headers_that_all_stop_before_the_last_picture_are_mended(tmp_path):
    """What the hybrid MP4 wrote for a last picture after a pause: the edit, the track and the media all end where
    the pictures before the pause end, far more than two pictures short. (An edit shorter than its own media is a
    cut made on purpose, and stays: tests/test_mp4_edit_list.py.)"""
    from media import make_video, probe
    from stream.mp4_edit_list import _boxes, _find_moov, _read_track, _Track, mend_last_picture

    path = make_video(tmp_path / "clip.mp4", frames=31, fps=30, audio_codec=None)
    whole = path.read_bytes()
    with open(path, "rb") as file:
        base, size = _find_moov(file)
        file.seek(base)
        data = file.read(size)
    track = _Track()
    for kind, at, stop in _boxes(data, 0, len(data)):
        if kind == b"trak":
            _read_track(data, at, stop, base, track)
    with open(path, "r+b") as file:  # all three stop at 10 of the 31 pictures
        track.edit.write(file, 334)
        track.duration.write(file, 334)
        track.media_duration.write(file, 10 * track.media_scale // 30)
    assert probe(path)["frames"] < 31
    assert mend_last_picture(path)
    assert probe(path)["frames"] == 31 and path.read_bytes() == whole


def test_fidelity_a_tag_read_twice_alike_is_written_once():
    """FFmpeg 8 reads a MOV's creation time from both places an iPhone stores it, joined: "A;A" written back is no
    time, and the output had none."""
    assert _one_value(f"{CREATED};{CREATED}") == CREATED
    assert _one_value("Rock;Pop") == "Rock;Pop"  # a genre list stays as it is
    assert _one_value(CREATED) == CREATED


def test_fidelity_a_run_keeps_the_tags_the_open_input_read(shared_models, tmp_path, monkeypatch):
    """The writer opened the input a second time for its tags (a slow network drive: a second open; a pipe: lost
    pictures): the run hands over those its open source read."""
    import stream.video_writer
    from stream.cli import main

    source = _tagged_video(tmp_path / "in.mp4", INPUTS["android.mp4"][0], None, audio_language=None)
    given: list = []
    real = stream.video_writer.kept_tags
    monkeypatch.setattr(stream.video_writer, "kept_tags", lambda tags: given.append(tags) or real(tags))
    out = tmp_path / "out.mp4"
    assert main(["run", str(source), "-o", str(out), "--no-progress"]) == 0
    assert given and all(isinstance(tags, dict) for tags in given)
    kept = _tags(out)[0]
    assert kept["creation_time"] == CREATED and kept["title"] == "Holiday"
