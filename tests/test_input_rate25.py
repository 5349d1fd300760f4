"""Session 25: `--input-rate FPS` gives pictures that carry no times of their own their rate, as FFmpeg's -framerate
does for its raw demuxers: a stream of JPEG or PNG pictures on standard input (`ffmpeg -f mjpeg - | depthcam run -`)
or a named pipe, an .mjpeg file, a raw stream without timing. An input with a rate of its own (a video file, a GIF, a
camera) or none at all (a photo) is refused in one line; a bad value by the parser."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path

import pytest

from media import make_noise_mp4
from stream import piped_input
from stream.errors import UserError
from stream.sources import open_source
from test_damaged_video import _encode
from test_pipes24 import _pictures, stdin_fed  # noqa: F401  (stdin_fed: a fixture used here)

REPO = Path(__file__).resolve().parents[1]
PICTURES = 30
REFUSED = "depthcam: error: --input-rate sets the rate of inputs that carry none ("


def _depthcam(*args: str, data: bytes | None = None) -> tuple[int, list[str], str]:
    """`depthcam run ...`, standard input a pipe of `data`: its exit status, its lines and its whole stderr."""
    result = subprocess.run([sys.executable, "-m", "stream", "run", *args, "--refine", "off", "--no-progress"],
                            input=data, capture_output=True, timeout=180, cwd=REPO)
    stderr = result.stderr.decode()
    return result.returncode, [line for line in stderr.splitlines() if line.startswith("depthcam:")], stderr


def _timing(path: Path) -> tuple[int, Fraction, float]:
    """An output's pictures decoded, its frame rate and its video's duration in seconds, as PyAV reads them."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        return count, stream.average_rate, float(stream.duration * stream.time_base)


def _raw_mjpeg(path: Path, pictures: int = PICTURES) -> Path:
    """A raw MJPEG file as `ffmpeg -f mjpeg` writes one (FFmpeg's `mjpeg` demuxer reads it, with no rate)."""
    return _encode(path, "mjpeg", frames=pictures, pix_fmt="yuvj420p", rate=25)


# --- 1. a stream of pictures on standard input ---------------------------------------------------------------------

@pytest.mark.parametrize("kind, given, rate", [(".jpg", "30", Fraction(30)), (".png", "12.5", Fraction(25, 2)),
                                               (".jpg", "30000/1001", Fraction(30000, 1001))])
def test_a_picture_stream_on_standard_input_is_read_at_the_rate_given(shared_models, tmp_path, kind, given, rate):
    """30 pictures at --input-rate 30: a 1.0 s video at 30 fps (at 12.5: 2.4 s), and no line offering a rate."""
    out = tmp_path / "out.mp4"
    code, lines, stderr = _depthcam("-", "--input-rate", given, "-o", str(out),
                                    data=b"".join(_pictures(PICTURES, kind)))
    assert code == 0 and "Traceback" not in stderr, stderr
    assert not any("stream of" in line for line in lines), lines
    count, fps, seconds = _timing(out)
    assert (count, fps) == (PICTURES, rate)
    assert seconds == pytest.approx(PICTURES / rate, abs=1e-3)


def test_without_it_a_picture_stream_is_read_at_25_and_told_of_it(shared_models, tmp_path):
    """FFmpeg's default as before: 30 pictures are 1.2 s; the line offers --input-rate."""
    out = tmp_path / "out.mp4"
    code, lines, stderr = _depthcam("-", "-o", str(out), data=b"".join(_pictures(PICTURES)))
    assert code == 0, stderr
    assert lines[0].startswith("depthcam: standard input is a stream of JPEG pictures (MJPEG), which tells no frame "
                               "rate: read as a video at 25 fps, FFmpeg's default; give its own rate with "
                               "--input-rate (e.g. --input-rate 30)")
    count, fps, seconds = _timing(out)
    assert (count, fps) == (PICTURES, 25) and seconds == pytest.approx(1.2, abs=1e-3)


def test_with_a_rate_given_standard_input_says_no_line_of_ffmpegs_default(stdin_fed):  # noqa: F811 (a fixture)
    """The pictures are given back whole, as without it; the line of 25 fps and how to change it is not said."""
    stream = b"".join(_pictures(3))
    said = stdin_fed(stream)
    assert piped_input._read_stdin("-") == Path("/dev/stdin")
    piped_input.tell_default_rate("-", Fraction(30))  # as open_source, given the rate, says it
    assert said == []


# --- 2. an .mjpeg file and a named pipe ----------------------------------------------------------------------------

def test_an_mjpeg_file_is_written_at_the_rate_given(shared_models, tmp_path):
    clip = _raw_mjpeg(tmp_path / "cam.mjpeg")
    out = tmp_path / "out.mp4"
    code, lines, stderr = _depthcam(str(clip), "--input-rate", "30", "-o", str(out))
    assert code == 0 and "Traceback" not in stderr, stderr
    assert not any("no frame rate" in line for line in lines), lines  # the raw stream's line of 25 fps
    count, fps, seconds = _timing(out)
    assert (count, fps) == (PICTURES, 30) and seconds == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("demuxer", ["mjpeg", "jpeg_pipe"])
@pytest.mark.parametrize("rate", [Fraction(30), Fraction(25, 2)])
def test_an_mjpeg_file_s_pictures_are_timed_at_the_rate_given(tmp_path, capsys, demuxer, rate):
    """Either of FFmpeg's readers of one: its raw MJPEG demuxer (ffmpeg -f mjpeg's file), its JPEG pipe (JPEG files
    put one after another)."""
    path = tmp_path / "cam.mjpeg"
    if demuxer == "mjpeg":
        _raw_mjpeg(path, 6)
    else:
        path.write_bytes(b"".join(_pictures(6)))
    source = open_source(str(path), rate)
    try:
        assert source.container.format.name == demuxer
        times = [frame.pts_seconds for frame in source.frames()]
    finally:
        source.close()
    assert source.fps == float(rate) and f"@ {float(rate):g} fps" in source.description
    assert times == pytest.approx([index / float(rate) for index in range(6)])
    assert "no frame rate" not in capsys.readouterr().err


def test_a_named_pipe_carrying_pictures_is_read_at_the_rate_given(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    pictures = b"".join(_pictures(5, ".png"))

    def write() -> None:
        with open(fifo, "wb") as pipe:
            pipe.write(pictures)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    source = open_source(str(fifo), Fraction(10))
    try:
        times = [frame.pts_seconds for frame in source.frames()]
    finally:
        source.close()
        writer.join(10)
    assert source.fps == 10 and times == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_a_raw_stream_without_timing_takes_it_and_one_with_timing_is_refused(tmp_path):
    """A raw HEVC with no rate in its SPS (raspivid's usual stream) is read at the rate given, not FFmpeg's 25; one
    whose SPS gives 60 fps has its own."""
    quiet = "log-level=error"
    untimed = _encode(tmp_path / "untimed.hevc", "libx265", frames=4, rate=60,
                      options={"x265-params": f"{quiet}:vui-timing-info=0:vui-hrd-info=0"})
    source = open_source(str(untimed), Fraction(30))
    try:
        times = [frame.pts_seconds for frame in source.frames()]
    finally:
        source.close()
    assert source.fps == 30 and times == pytest.approx([0, 1 / 30, 2 / 30, 3 / 30])
    timed = _encode(tmp_path / "timed.hevc", "libx265", frames=4, rate=60, options={"x265-params": quiet})
    with pytest.raises(UserError, match=r"; \S*timed.hevc has its own \(60 fps\): leave --input-rate out$"):
        open_source(str(timed), Fraction(30))


def test_a_raw_stream_read_at_25_offers_input_rate(tmp_path, capsys):
    """The line of FFmpeg's 25 fps offered only a re-wrap through ffmpeg; it names --input-rate first now."""
    clip = _raw_mjpeg(tmp_path / "cam.mjpeg", 3)
    open_source(str(clip)).close()
    said = [line for line in capsys.readouterr().err.splitlines() if "no frame rate" in line]
    assert len(said) == 1 and "read at 25 fps, FFmpeg's default; if it was recorded at another rate (a Raspberry " \
                               "Pi's is usually 30), give it that rate (depthcam run's --input-rate 30), or make a " \
                               "video of it at that rate: ffmpeg -framerate 30 -i cam.mjpeg -c copy cam.mp4" in said[0]


# --- 3. inputs with a rate of their own, or none -----------------------------------------------------------------

def test_a_video_file_with_input_rate_is_refused_in_one_line_before_the_model_loads(tmp_path):
    clip = make_noise_mp4(tmp_path / "clip.mp4")
    out = tmp_path / "out.mp4"
    code, lines, stderr = _depthcam(str(clip), "--input-rate", "30", "-o", str(out))
    assert code == 2 and "Traceback" not in stderr and stderr.count("\n") == 1, stderr
    assert lines == [f"{REFUSED}a stream of pictures on standard input or a pipe, an .mjpeg file, a raw .h264 without "
                     f"timing); {clip} has its own (12 fps): leave --input-rate out"]
    assert not out.exists()


def test_a_video_piped_in_with_input_rate_is_refused(shared_models, tmp_path):
    clip = make_noise_mp4(tmp_path / "clip.mp4")
    code, lines, stderr = _depthcam("-", "--input-rate", "30", "-o", str(tmp_path / "out.mp4"),
                                    data=clip.read_bytes())
    assert code == 2 and "Traceback" not in stderr, stderr
    assert lines[-1].startswith(REFUSED) and lines[-1].endswith("; standard input has its own (12 fps): leave "
                                                                "--input-rate out")


@pytest.mark.parametrize("spec, own", [
    ("camera:0", "camera:0 is a camera, which has its own"),
    ("rtsp://user:secret@cam.local/live", "rtsp://user:***@cam.local/live is a network stream, which times its "
                                          "own pictures"),
    ("synthetic:portrait", "synthetic:portrait has its own (set it with ?fps=)"),
])
def test_a_camera_a_stream_or_the_synthetic_scene_is_refused_before_it_opens(spec, own):
    with pytest.raises(UserError) as refused:
        open_source(spec, Fraction(30))
    assert str(refused.value).endswith(f"; {own}: leave --input-rate out")


def test_a_photo_and_an_animation_are_refused(tmp_path):
    import cv2
    import numpy as np
    from PIL import Image

    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), np.full((48, 64, 3), 128, np.uint8))
    with pytest.raises(UserError, match=r"photo.jpg is a photo, one picture with no rate: leave --input-rate out$"):
        open_source(str(photo), Fraction(30))
    gif = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (64, 48), (40 * i, 0, 0)) for i in range(3)]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with pytest.raises(UserError, match=r"anim.gif has its own \(10 fps\): leave --input-rate out$"):
        open_source(str(gif), Fraction(30))


# --- 4. the parser ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, said", [("0", "0 fps is out of range; give a rate above 0 and at most 1000"),
                                         ("-3", "-3 fps is out of range"), ("1e9", "1e9 fps is out of range"),
                                         ("0.0000001", "0.0000001 fps is out of range"),  # rounds to 0
                                         ("abc", "'abc' is no frame rate; give frames a second, e.g. 30, 12.5"),
                                         ("inf", "'inf' is no frame rate"), ("nan", "'nan' is no frame rate"),
                                         ("30/0", "'30/0' is no frame rate")])
def test_a_bad_rate_is_refused_by_the_parser_in_one_line(capsys, value, said):
    from stream import cli

    with pytest.raises(SystemExit) as exit:
        cli.main(["run", "in.mjpeg", "--input-rate", value])
    err = capsys.readouterr().err
    assert exit.value.code == 2 and err.count("\n") == 1, err
    assert f"argument --input-rate: {said}" in err


@pytest.mark.parametrize("value, rate", [("30", Fraction(30)), ("12.5", Fraction(25, 2)),
                                         (" 30000/1001", Fraction(30000, 1001)), ("0.5", Fraction(1, 2)),
                                         ("0.3333333", Fraction(1, 3))])  # as finely as FFmpeg reads a rate
def test_a_rate_is_read_as_a_number_or_a_fraction(value, rate):
    from stream import cli

    assert cli.build_parser().parse_args(["run", "-", "--input-rate", value]).input_rate == rate
