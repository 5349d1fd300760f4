"""Lossless sound (FLAC, ALAC) copied into a part ends where the part does: its packet across either end (FLAC's
up to 4608 samples, ALAC's 4096) is decoded, cut at the sample and encoded again into its codec, which loses
nothing. Copied whole, it ran up to a packet past the last picture, and in Matroska (no edit list) began up to a
packet before the first."""
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

RATE = 44100
FPS = 25
START, LENGTH = 0.5, 0.6  # --start 0.5 --duration 0.6: 15 pictures, 22050 samples in (no packet edge there)
LAYOUTS = {"stereo": 2, "5.1": 6}


@pytest.fixture
def untold(monkeypatch):
    """The notices of re-encoded sound, each said once a process, forgotten for the test."""
    monkeypatch.setattr("stream.audio_track._told", set(), raising=False)


def _lossless_input(path: Path, codec: str, sample_format: str, layout: str) -> Path:
    """2 s of 25 fps pictures and 2 s of seeded noise (nothing to predict: every sample counts) in `codec`."""
    import av

    rng = np.random.default_rng(21)
    channels = LAYOUTS[layout]
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=FPS)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream(codec, rate=RATE, layout=layout)
        audio.codec_context.format = sample_format
        for index in range(2 * FPS):
            picture = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="bgr24")
            picture.pts = index
            container.mux(video.encode(picture))
        container.mux(video.encode(None))
        wide = sample_format.startswith("s32")
        planar = sample_format.endswith("p")
        for first in range(0, 2 * RATE, 4096):
            size = min(4096, 2 * RATE - first)
            noise = rng.integers(-2 ** 15, 2 ** 15, (channels, size)).astype(np.int32 if wide else np.int16)
            if wide:
                noise *= 256  # 24-bit samples, as the decoders give them (in the top bits of 32)
            rows = noise if planar else noise.T.reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(rows), format=sample_format, layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = RATE, first, Fraction(1, RATE)
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    return path


def _write_part(src: Path, out: Path, start: float, pictures: int | None, whole_rest: bool = False) -> None:
    """`pictures` pictures of `src` from `start` into `out` with its sound, closed as a part is (the sound ends with
    the pictures), or (`whole_rest`) every picture from `start` on, the sound to its end."""
    from stream.video_writer import VideoWriter

    writer = VideoWriter(out, 64, 48, FPS, src)
    count = 2 * FPS - round(start * FPS) if pictures is None else pictures
    try:
        for index in range(count):
            writer.write(np.zeros((48, 64, 3), np.uint8), start + index / FPS)
    finally:
        writer.close(complete=whole_rest)


def _decoded(path: Path) -> tuple[dict, np.ndarray]:
    """The first audio stream's codec, rate, layout, sample format and its first sample's time after the first
    picture's (the muxer may move both), and its samples (a row a plane), decoded."""
    import av

    from stream.audio_track import _samples

    with av.open(str(path)) as container:
        picture = float(next(container.decode(video=0)).time)
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        frames = list(container.decode(stream))
        context = stream.codec_context
        info = {"codec": context.codec.canonical_name, "rate": context.sample_rate, "layout": frames[0].layout.name,
                "channels": frames[0].layout.nb_channels,
                "format": frames[0].format.name, "first": float(frames[0].time) - picture}
        return info, np.hstack([_samples(frame) for frame in frames])


def _sample_at(info: dict, seconds: float) -> int:
    return round(seconds * info["rate"])


def _columns(samples: np.ndarray, info: dict, first: int, last: int) -> np.ndarray:
    """Samples [first, last) of each channel (interleaved in one row where packed)."""
    step = 1 if info["format"].endswith("p") else info["channels"]
    return samples[:, first * step:last * step]


def _clean(path: Path) -> None:
    """FFmpeg decodes the file with no error."""
    if shutil.which("ffmpeg") is None:
        return
    run = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0 and not run.stderr.strip(), run.stderr


# inputs timed to the sample (MP4, MOV: a time base of 1/rate), whose part is known to the sample
CASES = [("flac", "s16", "stereo", ".mp4", ".mkv"), ("flac", "s16", "stereo", ".mp4", ".mp4"),
         ("flac", "s32", "5.1", ".mp4", ".mkv"), ("alac", "s16p", "stereo", ".mov", ".mkv"),
         ("alac", "s16p", "stereo", ".mov", ".mp4"), ("alac", "s32p", "5.1", ".mov", ".mov")]


@pytest.mark.parametrize("codec,sample_format,layout,box,suffix", CASES)
def test_a_part_of_lossless_sound_is_cut_at_the_sample(tmp_path, capsys, untold, codec, sample_format, layout, box,
                                                       suffix):
    """--start 0.5 --duration 0.6: the sound starts with the first picture and ends with the last, every sample of
    the input's over the part, in its codec, rate, layout and depth, and no line of a loss (there is none)."""
    src = _lossless_input(tmp_path / f"in{box}", codec, sample_format, layout)
    out = tmp_path / f"out{suffix}"
    _write_part(src, out, START, round(LENGTH * FPS))
    before, given = _decoded(src)
    info, kept = _decoded(out)
    assert (info["codec"], info["rate"], info["layout"], info["format"]) == \
        (codec, RATE, before["layout"], before["format"])
    assert abs(info["first"]) <= 0.001  # before: 82 ms (FLAC), 36 ms (ALAC) early in .mkv
    first = _sample_at(info, START)
    expected = _columns(given, before, first, first + _sample_at(info, LENGTH))
    assert kept.shape == expected.shape  # the sound ends with the last picture, to the sample
    assert np.array_equal(kept, expected)
    assert "encoded again" not in capsys.readouterr().err
    _clean(out)


def _offset(kept: np.ndarray, given: np.ndarray, info: dict, first: int, most: int) -> int | None:
    """How many samples from `first` the input's samples `kept` were taken at, within `most`; None: nowhere."""
    samples = kept.shape[1] // (1 if info["format"].endswith("p") else info["channels"])
    return next((offset for offset in range(-most, most + 1)
                 if np.array_equal(kept, _columns(given, info, first + offset, first + offset + samples))), None)


def test_a_part_of_flac_in_matroska_is_cut_within_a_millisecond(tmp_path):
    """Matroska times in milliseconds: the part is known to 1 ms (44 samples), and is cut there, every sample of it
    the input's, the output as long as the part."""
    src = _lossless_input(tmp_path / "in.mkv", "flac", "s16", "stereo")
    out = tmp_path / "out.mkv"
    _write_part(src, out, START, round(LENGTH * FPS))
    before, given = _decoded(src)
    info, kept = _decoded(out)
    assert (info["codec"], info["layout"], info["format"]) == ("flac", before["layout"], before["format"])
    assert abs(info["first"]) <= 0.001  # before: 82 ms early
    assert abs(kept.shape[1] // 2 - _sample_at(info, LENGTH)) <= RATE // 1000  # before: 49.5 ms longer
    assert _offset(kept, given, info, _sample_at(info, START), RATE // 1000) is not None
    _clean(out)


def test_a_part_to_the_end_keeps_the_rest_copied(tmp_path):
    """--start 0.5 alone: the packet across the start is cut there, every later one copied as it is (the same bytes)
    to the sound's end."""
    import av

    src = _lossless_input(tmp_path / "in.mp4", "flac", "s16", "stereo")
    out = tmp_path / "out.mkv"
    _write_part(src, out, START, None, whole_rest=True)
    before, given = _decoded(src)
    info, kept = _decoded(out)
    assert abs(info["first"]) <= 0.001
    assert np.array_equal(kept, _columns(given, before, _sample_at(info, START), 2 * RATE))
    with av.open(str(src)) as inp, av.open(str(out)) as outp:
        inside = [bytes(p) for p in inp.demux(inp.streams.audio[0]) if p.size and p.pts * p.time_base >= START]
        copied = [bytes(p) for p in outp.demux(outp.streams.audio[0]) if p.size][1:]
    assert copied == inside
    _clean(out)


def test_a_whole_file_is_a_plain_copy(tmp_path):
    """Nothing cut (the sound starts with the pictures, the run ends with the input): every packet as it was."""
    import av

    src = _lossless_input(tmp_path / "in.mov", "alac", "s16p", "stereo")
    out = tmp_path / "out.mkv"
    _write_part(src, out, 0.0, None, whole_rest=True)
    with av.open(str(src)) as inp, av.open(str(out)) as outp:
        given = [bytes(p) for p in inp.demux(inp.streams.audio[0]) if p.size]
        copied = [bytes(p) for p in outp.demux(outp.streams.audio[0]) if p.size]
    assert copied == given
