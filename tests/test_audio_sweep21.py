"""The sound at its edges (session 21's sweep of every common input sound into every output container): Matroska
keeps a film's DTS and TrueHD and a broadcast's MP2 as they are (they were encoded again as AAC, a loss no output
avoided)."""
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from test_editor_options import _write as write_with_tracks

RATE = 48000
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command (PyAV's FFmpeg "
                                  "has no DTS or TrueHD encoder)")


@pytest.fixture
def untold(monkeypatch):
    """The notices of re-encoded sound, each said once a process, forgotten for the test."""
    monkeypatch.setattr("stream.audio_track._told", set(), raising=False)


def _mp2_ts(path: Path) -> Path:
    """A DVB recording's shape: 10 black pictures at 10 fps and 1 s of a stereo tone in MP2, in MPEG-TS."""
    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("mp2", rate=RATE, layout="stereo")
        for index in range(10):
            picture = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="bgr24")
            picture.pts = index
            container.mux(video.encode(picture))
        container.mux(video.encode(None))
        size = audio.codec_context.frame_size
        for first in range(0, RATE, size):
            tone = (8000 * np.sin(2 * np.pi * 440 * (first + np.arange(size)) / RATE)).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(np.repeat(tone, 2)[None], format="s16", layout="stereo")
            frame.sample_rate, frame.pts = RATE, first
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    return path


def _ffmpeg_made(path: Path, encoder: str) -> Path:
    """1 s of 25 fps pictures and a stereo tone in `encoder`'s codec (FFmpeg's DTS and TrueHD encoders are
    experimental), in Matroska as a film's rip holds them."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=s=64x48:r=25:d=1", "-f", "lavfi",
                    "-i", f"sine=f=440:r={RATE}:d=1", "-ac", "2", "-c:v", "libx264", "-c:a", encoder, "-strict", "-2",
                    str(path)], check=True, timeout=120)
    return path


def _write(src: Path, out: Path) -> None:
    """`src`'s pictures into `out` with its sound."""
    write_with_tracks(src, out, None)


def _sound(path: Path) -> tuple[str, int, int]:
    """The first audio stream's codec, rate and the samples it decodes to."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        codec, rate = stream.codec_context.codec.canonical_name, stream.codec_context.sample_rate
        return codec, rate, sum(frame.samples for frame in container.decode(stream))


def _kept_as_it_is(src: Path, out: Path, capsys) -> None:
    """`src`'s sound copied into `out`: its codec, its rate and all of its samples, and no line of a re-encoding."""
    _write(src, out)
    codec, rate, samples = _sound(src)
    assert _sound(out)[:2] == (codec, rate)  # AAC before: encoded again, with a loss
    assert abs(_sound(out)[2] - samples) <= 0.05 * RATE
    assert "encoded again" not in capsys.readouterr().err


def test_a_broadcasts_mp2_is_copied_into_mkv(tmp_path, capsys, untold):
    _kept_as_it_is(_mp2_ts(tmp_path / "dvb.ts"), tmp_path / "out.mkv", capsys)


@needs_ffmpeg
@pytest.mark.parametrize("encoder", ["dca", "truehd"])
def test_a_films_dts_and_truehd_are_copied_into_mkv(tmp_path, capsys, untold, encoder):
    _kept_as_it_is(_ffmpeg_made(tmp_path / "film.mkv", encoder), tmp_path / "out.mkv", capsys)


@needs_ffmpeg
def test_dts_encoded_again_for_mp4_names_mkv_as_the_output_that_keeps_it(tmp_path, capsys, untold):
    """MP4 still takes AAC (players of MP4 rarely play DTS): the line says which output keeps it (none did)."""
    _write(_ffmpeg_made(tmp_path / "film.mkv", "dca"), tmp_path / "out.mp4")
    lines = [line for line in capsys.readouterr().err.splitlines() if "sound" in line]
    assert lines == ["depthcam: the sound (DTS) is encoded again for .mp4 as AAC, which loses some of it; "
                     "write .mkv to keep it as it is"]
