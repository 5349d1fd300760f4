"""Every audio stream kept: a professional camera's mono track per microphone, a film's languages, a screen recording's
microphone and system sound. The output kept one (the default one, else the first) and said the others were left
out. Each is now a track of its own, copied or encoded again by the same rules, with its language, name and flags,
the input's default one the default track, each cut where the pictures end (a part, a stopped run)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from media import channels, join, make_tracks_video

from tests.test_joined_start_tracks import _run as run_part

FPS = 10


@dataclass
class Track:
    """An output audio track as a player finds it: its codec, whether it is the default one, its tags, where its sound
    starts and ends and where its clicks are (seconds from the first picture), how loud its tone is (which input
    track it was: make_tracks_video's 0.1 for the first, 0.2 for the second...)."""
    codec: str
    default: bool
    tags: dict[str, str]
    start: float
    end: float
    loudness: float
    clicks: list[float] = field(default_factory=list)


def _tracks(path: Path) -> tuple[list[Track], float]:
    """The output's audio tracks, in order, and where its pictures end."""
    import av
    from av.stream import Disposition

    with av.open(str(path)) as container:
        pictures = [float(frame.time) for frame in container.decode(video=0)]
        count = len(container.streams.audio)
    first, tracks = pictures[0], []
    for index in range(count):
        with av.open(str(path)) as container:
            stream = container.streams.audio[index]
            frames = [(float(frame.time) - first, _floats(channels(frame)[0]), frame.sample_rate)
                      for frame in container.decode(stream)]
            tags = {"title" if key == "name" else key: value for key, value in stream.metadata.items()
                    if key in ("language", "title", "name") and value != "und"}
            track = Track(stream.codec_context.codec.canonical_name, bool(stream.disposition & Disposition.default),
                          tags, frames[0][0], frames[-1][0] + len(frames[-1][1]) / frames[-1][2], 0.0)
        sound = np.concatenate([samples for _, samples, _ in frames])
        track.loudness = round(float(np.percentile(np.abs(sound[len(sound) // 4:len(sound) * 3 // 4]), 95)), 1)
        for at, samples, rate in frames:
            for loud in at + np.flatnonzero(np.abs(samples) > 0.8) / rate:
                if not track.clicks or loud > track.clicks[-1] + 0.1:
                    track.clicks.append(float(loud))
        tracks.append(track)
    return tracks, pictures[-1] + 1 / FPS - first


def _floats(samples: np.ndarray) -> np.ndarray:
    return samples / float(np.iinfo(samples.dtype).max) if samples.dtype.kind in "iu" else samples.astype(float)


def _write(src: Path, out: Path, stop_after: int | None = None) -> None:
    """`src`'s pictures into `out` with its sound; with `stop_after`, a run stopped after that many pictures (the
    sound ends with them)."""
    from stream.sources import open_source
    from stream.video_writer import VideoWriter

    source = open_source(str(src))
    writer = VideoWriter(out, source.width, source.height, source.fps, source.audio_path)
    try:
        for index, frame in enumerate(source.frames()):
            if index == stop_after:
                break
            writer.write(frame.image, frame.pts_seconds)
    finally:
        writer.close(complete=stop_after is None)
        source.close()


@pytest.fixture
def untold(monkeypatch):
    """The notices of re-encoded sound, each said once a process, forgotten for the test."""
    monkeypatch.setattr("stream.audio_track._told", set())


@pytest.mark.parametrize("suffix, codec", [(".mp4", "aac"), (".mkv", "aac"), (".mov", "aac"), (".webm", "opus")])
def test_two_mono_tracks_are_both_kept_the_second_the_default_one(tmp_path, caplog, suffix, codec):
    """Two microphones, the second flagged default: both are kept, in order, the second the default track (MP4 enables
    it alone: QuickTime plays every enabled track at once). Only the default one was kept, the first said left out."""
    src = make_tracks_video(tmp_path / "in.mkv", ("aac", "aac"), default=1)
    out = tmp_path / f"out{suffix}"
    with caplog.at_level(logging.WARNING, logger="stream.audio_track"):
        _write(src, out)
    tracks, _ = _tracks(out)
    assert [(track.codec, track.loudness, track.default) for track in tracks] == [(codec, 0.1, False),
                                                                                   (codec, 0.2, True)]
    assert not [record for record in caplog.records if "audio streams" in record.getMessage()]


def test_without_a_default_stream_the_first_is_the_default_track(tmp_path):
    src = make_tracks_video(tmp_path / "in.mov", ("aac", "aac", "aac"))
    _write(src, tmp_path / "out.mp4")
    assert [track.default for track in _tracks(tmp_path / "out.mp4")[0]] == [True, False, False]


def test_avi_puts_the_default_track_first(tmp_path):
    """AVI holds no flags, and its players play its first audio stream: the default one comes first."""
    src = make_tracks_video(tmp_path / "in.mkv", ("aac", "aac", "aac"), default=2)
    _write(src, tmp_path / "out.avi")
    assert [track.loudness for track in _tracks(tmp_path / "out.avi")[0]] == [0.3, 0.1, 0.2]


@pytest.mark.parametrize("suffix, codec", [(".mov", "pcm_s24le"), (".mkv", "pcm_s24le"), (".mp4", "aac"),
                                           (".avi", "pcm_s16le")])
def test_four_pcm_tracks_of_a_camera_are_each_kept(tmp_path, capsys, untold, suffix, codec):
    """A camera's four mono 24-bit PCM tracks: copied into MOV and Matroska, each encoded again for MP4 (AAC) and AVI
    (16-bit PCM), in one line naming them (not four), each as long as the pictures."""
    src = make_tracks_video(tmp_path / "in.mov", ("pcm_s24le",) * 4)
    _write(src, tmp_path / f"out{suffix}")
    tracks, end = _tracks(tmp_path / f"out{suffix}")
    assert [(track.codec, track.loudness) for track in tracks] == [(codec, 0.1), (codec, 0.2), (codec, 0.3),
                                                                   (codec, 0.4)]
    assert [track.end for track in tracks] == pytest.approx([end] * 4, abs=0.005)
    said = [line for line in capsys.readouterr().err.splitlines() if "sound" in line]
    how = {".mp4": "AAC, which loses some of it", ".avi": "16-bit PCM, which loses its finest detail"}.get(suffix)
    assert said == ([f"depthcam: the sound of tracks 1 to 4 (24-bit PCM) is encoded again for {suffix} as {how}; "
                     "write .mov or .mkv to keep it as it is"] if how else [])


def test_one_audio_stream_is_said_as_before(tmp_path, capsys, untold):
    src = make_tracks_video(tmp_path / "in.mov", ("pcm_s24le",))
    _write(src, tmp_path / "out.mp4")
    assert "depthcam: the sound (24-bit PCM) is encoded again for .mp4 as AAC" in capsys.readouterr().err


def test_only_the_track_the_container_cannot_copy_is_encoded_again(tmp_path, capsys, untold):
    """AAC and 16-bit PCM into MP4, which takes no PCM: the AAC copied, the PCM alone made AAC, the line naming it."""
    src = make_tracks_video(tmp_path / "in.mkv", ("aac", "pcm_s16le", "pcm_s24le"))
    _write(src, tmp_path / "out.mp4")
    assert [(track.codec, track.loudness) for track in _tracks(tmp_path / "out.mp4")[0]] == [
        ("aac", 0.1), ("aac", 0.2), ("aac", 0.3)]
    said = [line for line in capsys.readouterr().err.splitlines() if "sound" in line]
    assert said == ["depthcam: the sound of track 2 (16-bit PCM) and track 3 (24-bit PCM) is encoded again for .mp4 "
                    "as AAC, which loses some of it; write .mov or .mkv to keep it as it is"]


@pytest.mark.parametrize("made, suffix", [(".mkv", ".mp4"), (".mp4", ".mkv"), (".mov", ".mov"), (".mkv", ".webm")])
def test_each_track_keeps_its_language_and_name(tmp_path, made, suffix):
    """A film's languages and a camera's microphone names: players list the tracks by them. MP4 and MOV store the name
    as "name", which was lost where the input was one."""
    src = make_tracks_video(tmp_path / f"in{made}", ("aac", "aac", "aac"), languages=("eng", "fra", "spa"),
                            titles=("English", "Français", "Director's commentary"), default=1)
    _write(src, tmp_path / f"out{suffix}")
    tracks, _ = _tracks(tmp_path / f"out{suffix}")
    assert [track.tags for track in tracks] == [{"language": "eng", "title": "English"},
                                                {"language": "fra", "title": "Français"},
                                                {"language": "spa", "title": "Director's commentary"}]
    assert [track.default for track in tracks] == [False, True, False]


@pytest.mark.parametrize("made", [".mp4", ".mov"])
def test_the_name_of_an_mp4_s_only_track_is_kept(tmp_path, made):
    """MP4 and MOV store a track's name as "name", not "title": the name was lost, one track or several."""
    src = make_tracks_video(tmp_path / f"in{made}", ("aac",), titles=("Boom",))
    _write(src, tmp_path / "out.mkv")
    assert _tracks(tmp_path / "out.mkv")[0][0].tags == {"title": "Boom"}


def test_a_commentary_keeps_its_flag(tmp_path):
    """A track's own flags (a commentary, audio description) are kept: players name the track by them."""
    import av
    from av.stream import Disposition

    src = make_tracks_video(tmp_path / "in.mkv", ("aac", "aac"), flags={1: "comment"})
    _write(src, tmp_path / "out.mkv")
    with av.open(str(tmp_path / "out.mkv")) as container:
        flags = [stream.disposition for stream in container.streams.audio]
    assert flags[0] & Disposition.default and not flags[0] & Disposition.comment
    assert flags[1] & Disposition.comment and not flags[1] & Disposition.default


@pytest.mark.parametrize("suffix", [".mov", ".mkv", ".mp4", ".avi"])
def test_a_stopped_run_ends_every_track_with_the_pictures(tmp_path, suffix):
    """A run stopped after 7 of 10 pictures (Ctrl-C): every track ends where the pictures end (copied PCM at the
    sample; AAC within a frame)."""
    src = make_tracks_video(tmp_path / "in.mov", ("pcm_s24le",) * 4)
    _write(src, tmp_path / f"out{suffix}", stop_after=7)
    tracks, end = _tracks(tmp_path / f"out{suffix}")
    assert end == pytest.approx(0.7, abs=0.001) and len(tracks) == 4
    assert [track.end for track in tracks] == pytest.approx([0.7] * 4, abs=0.001 if suffix != ".mp4" else 0.022)


@pytest.mark.parametrize("suffix", [".mov", ".mp4", ".mkv"])
def test_a_part_ends_every_track_with_its_pictures(tmp_path, suffix):
    """--start 0.5 --duration 0.8 of 2 s with four tracks: each track starts and ends with the part's pictures, its
    click (at 1 s in the input) 0.5 s into the part as the pictures have it. (Each starts within a packet: one copied
    whole, or AAC's first frame.)"""
    src = make_tracks_video(tmp_path / "in.mov", ("pcm_s24le",) * 4, frames=20, seconds=2.0, click_at=1.0)
    out = tmp_path / f"out{suffix}"
    assert run_part(src, out, 0.5, 0.8) == 8
    tracks, end = _tracks(out)
    assert end == pytest.approx(0.8, abs=0.001) and [track.loudness for track in tracks] == [0.1, 0.2, 0.3, 0.4]
    ends = pytest.approx([0.8] * 4, abs=0.001 if suffix != ".mp4" else 0.022)
    assert [track.end for track in tracks] == ends
    assert [track.start for track in tracks] == pytest.approx([0.0] * 4, abs=0.022)  # a packet copied whole, or AAC's
    assert [track.clicks for track in tracks] == [[pytest.approx(0.5, abs=0.002)]] * 4


def test_joined_clips_keep_each_track_under_its_clip(tmp_path):
    """Two clips of two tracks joined as they are (`cat a.ts b.ts`): each track's sound follows its clip's pictures,
    the first clip's click at 0.3 s, the second's at 1 s + 0.6 s."""
    first = make_tracks_video(tmp_path / "a.ts", ("aac", "aac"), click_at=0.3)
    second = make_tracks_video(tmp_path / "b.ts", ("aac", "aac"), click_at=0.6)
    out = tmp_path / "out.mkv"
    _write(join(tmp_path / "joined.ts", [first, second]), out)
    tracks, end = _tracks(out)
    assert end == pytest.approx(2.0, abs=0.001)
    assert [track.loudness for track in tracks] == [0.1, 0.2]
    assert [track.clicks for track in tracks] == [[pytest.approx(0.3, abs=0.003), pytest.approx(1.6, abs=0.003)]] * 2


def test_sixteen_mono_tracks_are_all_kept(tmp_path):
    """A recorder's 16 microphones: all kept, each its own track, in order."""
    src = make_tracks_video(tmp_path / "in.mkv", ("pcm_s16le",) * 16, frames=5, seconds=0.5)
    _write(src, tmp_path / "out.mkv")
    tracks, _ = _tracks(tmp_path / "out.mkv")
    assert len(tracks) == 16 and [track.codec for track in tracks] == ["pcm_s16le"] * 16
    assert [track.default for track in tracks] == [True] + [False] * 15


def test_a_stream_ffmpeg_cannot_read_is_left_out_in_a_line(tmp_path, caplog):
    """A Matroska file whose second audio stream has a codec FFmpeg does not know: it is left out, said in a line, the
    first kept. Every stream taken, the run failed on it (AttributeError: PyAV gives it no codec context)."""
    made = make_tracks_video(tmp_path / "made.mkv", ("aac", "aac")).read_bytes()
    at = made.rfind(b"A_AAC")  # the second track's CodecID
    src = tmp_path / "in.mkv"
    src.write_bytes(made[:at] + b"A_ZZZ" + made[at + 5:])
    with caplog.at_level(logging.WARNING, logger="stream.audio_track"):
        _write(src, tmp_path / "out.mp4")
    tracks, _ = _tracks(tmp_path / "out.mp4")
    assert [(track.codec, track.loudness, track.default) for track in tracks] == [("aac", 0.1, True)]
    assert [record.getMessage() for record in caplog.records] == [
        "in.mkv: track 2 of its 2 audio streams is left out: FFmpeg knows no codec to read it with"]


def test_a_video_whose_only_sound_ffmpeg_cannot_read_is_written_without_it(tmp_path, caplog):
    """The only audio stream of a codec FFmpeg does not know: the run failed (AttributeError, a traceback); the
    pictures are written, the sound left out in a line."""
    made = make_tracks_video(tmp_path / "made.mkv", ("aac",)).read_bytes()
    src = tmp_path / "in.mkv"
    src.write_bytes(made.replace(b"A_AAC", b"A_ZZZ"))
    with caplog.at_level(logging.WARNING, logger="stream.audio_track"):
        _write(src, tmp_path / "out.mkv")
    tracks, end = _tracks(tmp_path / "out.mkv")
    assert tracks == [] and end == pytest.approx(1.0, abs=0.001)
    assert [record.getMessage() for record in caplog.records] == [
        "in.mkv: its sound is left out: FFmpeg knows no codec to read it with"]


def test_a_stream_without_a_sample_rate_is_left_out_in_a_line(caplog):
    """Damaged MPEG-TS tables announce audio streams nothing fills (no sample rate): copied, they made the MP4 muxer
    refuse the header ("Invalid argument") and no file was written. Left out, said in one line; the default is
    the first stream with sound."""
    from types import SimpleNamespace

    from stream.audio_track import _default_number, _known_numbers

    def stream(rate):
        return SimpleNamespace(codec_context=SimpleNamespace(sample_rate=rate), disposition=0)

    container = SimpleNamespace(name="/videos/s106.ts", streams=SimpleNamespace(audio=[stream(0), stream(44100),
                                                                                        stream(0)]))
    with caplog.at_level("WARNING"):
        assert _known_numbers(container) == [1]
    assert _default_number(container) == 1
    assert [r.getMessage() for r in caplog.records] == [
        "s106.ts: tracks 1 and 3 of its 3 audio streams are left out: FFmpeg found no sound in them (no sample rate: "
        "a damaged header?)"]


@pytest.mark.parametrize("suffix", [".mov", ".mp4", ".mkv"])
def test_a_camera_s_microphones_all_flagged_default_stay_so(tmp_path, suffix):
    """A camera's MOV or MXF has each microphone's track enabled (default); only the first stayed so, and QuickTime
    and Final Cut then played mic 1 alone (the others taken for other languages). Tracks alike (no language, or one)
    keep the input's flags; flagged default in differing languages (a Matroska film's, as mkvmerge flags them), the
    first only, as QuickTime plays every enabled track at once."""
    import av
    from av.stream import Disposition

    def defaults(path):
        with av.open(str(path)) as container:
            return [bool(stream.disposition & Disposition.default) for stream in container.streams.audio]

    every = {index: "default" for index in range(4)}
    mics = make_tracks_video(tmp_path / "mics.mov", ("pcm_s16le",) * 4, flags=every)
    _write(mics, tmp_path / f"mics{suffix}")
    assert defaults(tmp_path / f"mics{suffix}") == [True] * 4
    film = make_tracks_video(tmp_path / "film.mkv", ("aac",) * 3, flags=every, languages=("eng", "fra", "deu"))
    _write(film, tmp_path / f"film{suffix}")
    assert defaults(tmp_path / f"film{suffix}") == [True, False, False]


def test_a_matroska_film_s_main_mix_and_commentary_are_not_both_default(tmp_path):
    """Matroska flags tracks default as "may be chosen": a film's main mix and its commentary, both English and both
    flagged, came out both enabled in MP4/MOV, and QuickTime played them at once. Only a MOV's, MP4's or MXF's flags,
    which mean "enabled", are kept for alike tracks."""
    import av
    from av.stream import Disposition

    film = make_tracks_video(tmp_path / "film.mkv", ("aac", "aac"), flags={0: "default", 1: "default"},
                             languages=("eng", "eng"), titles=("Main", "Director's commentary"))
    for suffix in (".mov", ".mp4"):
        _write(film, tmp_path / f"out{suffix}")
        with av.open(str(tmp_path / f"out{suffix}")) as container:
            assert [bool(s.disposition & Disposition.default) for s in container.streams.audio] == [True, False]
