"""A video professional's walkthrough: a video's alpha channel laid on white (ProRes 4444, QuickTime Animation),
frame rates said as editors name them (23.976, 29.97), 10-bit and 4:2:2/4:4:4 pictures said where the output
holds fewer, and a part (--start/--duration) of a constant-rate video ending on a frame boundary (its last picture
whole, the output's rate constant)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from media import make_video

import stream.sources as sources
from stream.console import rate_text
from stream.sources import VideoFileSource, finer_than_output
from tests.test_video_streams_kept import _run

NTSC_FILM = Fraction(24000, 1001)
RED_BGR = (0, 0, 255)


@pytest.fixture
def said(monkeypatch) -> list[str]:
    """The lines the video source says (stream/sources.py's notify)."""
    lines: list[str] = []
    monkeypatch.setattr(sources, "notify", lines.append)
    return lines


def _with_alpha(path: Path, codec: str, pix_fmt: str, alpha: np.ndarray, frames: int = 3) -> Path:
    """A 64x48 video of `codec` in `pix_fmt` whose pictures are green where `alpha` shows them and red under
    their transparent part (the colour a decoder that drops the alpha shows)."""
    import av

    height, width = alpha.shape
    rgba = np.zeros((height, width, 4), np.uint8)
    rgba[..., 1] = 200  # green where shown
    rgba[alpha == 0] = (255, 0, 0, 0)  # red under the transparent part
    rgba[..., 3] = alpha
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=25)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        for _ in range(frames):
            picture = av.VideoFrame.from_ndarray(rgba, format="rgba").reformat(format=pix_fmt)
            for packet in video.encode(picture):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    return path


def _half_transparent() -> np.ndarray:
    """Opaque on the left half, transparent on the right but for a half-opaque stripe."""
    alpha = np.zeros((48, 64), np.uint8)
    alpha[:, :32] = 255
    alpha[:, 40:48] = 128
    return alpha


@pytest.mark.parametrize("codec, pix_fmt", [("prores_ks", "yuva444p10le"), ("qtrle", "argb"), ("png", "rgba")])
def test_video18_a_video_s_alpha_channel_is_carried_and_its_hidden_pixels_filled(tmp_path, said, codec, pix_fmt):
    """ProRes 4444, QuickTime Animation and PNG in MOV with alpha: the alpha rides with the picture (put back at the
    sink where the output's codec holds it, else laid on white there: tests/test_video_alpha.py), and the hidden part
    takes the nearest visible colour for the render (green, not the red stored under it, nor white); the source
    says nothing of it."""
    path = _with_alpha(tmp_path / f"alpha_{codec}.mov", codec, pix_fmt, _half_transparent())
    source = VideoFileSource(path)
    frames = list(source.frames())
    source.close()
    assert len(frames) == 3
    for frame in frames:
        image, alpha = frame.image, frame.extra["alpha"]
        assert image.shape == (48, 64, 3) and image.dtype == np.uint8 and alpha.shape == (48, 64)
        assert np.abs(alpha.astype(int) - _half_transparent()).max() <= 1
        assert np.abs(image[:, 52:, 1].astype(int) - 200).max() <= 4 and image[:, 52:, 2].max() <= 4  # filled
        assert np.abs(image[:, 4:28, 1].astype(int) - 200).max() <= 4 and image[:, 4:28, 2].max() <= 4  # opaque
    assert [line for line in said if "alpha" in line] == []


def test_video18_a_palette_video_s_transparent_entries_are_carried_as_alpha(tmp_path, said):
    """PNG in MOV with a palette (pal8, as palettegen makes it) keeps its alpha in the palette: the transparent
    half showed the entry's own colour (palettegen's reserved red here); now it is carried as alpha and filled."""
    import av

    index = np.zeros((48, 64), np.uint8)
    index[:, :32] = 1  # left: the opaque green entry; right: the transparent one
    palette = np.zeros((256, 4), np.uint8)  # PyAV takes each entry as A, R, G, B
    palette[0] = (0, 255, 0, 0)  # transparent, red under it
    palette[1] = (255, 0, 200, 0)  # opaque green
    path = tmp_path / "palette.mov"
    with av.open(str(path), "w") as container:
        video = container.add_stream("png", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "pal8"
        for packet in video.encode(av.VideoFrame.from_ndarray((index, palette), format="pal8")):
            container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    source = VideoFileSource(path)
    frame = next(source.frames())
    source.close()
    assert (frame.extra["alpha"][:, 32:] == 0).all() and (frame.extra["alpha"][:, :32] == 255).all()
    assert (frame.image == (0, 200, 0)).all()  # the hidden half filled green, not red
    assert [line for line in said if "alpha" in line] == []


def test_video18_an_opaque_video_with_an_alpha_channel_says_nothing_of_it(tmp_path, said):
    """A format with alpha whose pictures are all opaque (FFmpeg's GIFs decode as BGRA) is decoded as it is: no
    line."""
    path = _with_alpha(tmp_path / "opaque.mov", "qtrle", "argb", np.full((48, 64), 255, np.uint8))
    source = VideoFileSource(path)
    image = next(source.frames()).image
    source.close()
    assert np.abs(image[..., 1].astype(int) - 200).max() <= 4
    assert not [line for line in said if "alpha" in line]


@pytest.mark.parametrize("fps, text", [(24000 / 1001, "23.976"), (30000 / 1001, "29.97"), (60000 / 1001, "59.94"),
                                       (24.0, "24"), (25.0, "25"), (30.0, "30"), (120000 / 1001, "119.88"),
                                       (12.5, "12.5"), (0.2, "0.2")])
def test_video18_frame_rates_are_said_as_editors_name_them(fps, text):
    assert rate_text(fps) == text


def test_video18_the_run_line_says_23_976_not_24(tmp_path):
    path = make_video(tmp_path / "film.mov", frames=6, fps=NTSC_FILM, audio_codec=None)
    source = VideoFileSource(path)
    source.close()
    assert "@ 23.976 fps" in source.description


def _prores_hq(path: Path) -> Path:
    """Three 64x48 pictures of ProRes 422 HQ: 10-bit 4:2:2."""
    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream("prores_ks", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv422p10le"
        video.options = {"profile": "3"}
        for _ in range(3):
            picture = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 90, np.uint8), format="bgr24")
            for packet in video.encode(picture.reformat(format="yuv422p10le")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    return path


def test_video18_a_10_bit_4_2_2_input_says_it_is_made_8_bit_4_2_0(tmp_path):
    """ProRes HQ (10-bit 4:2:2) is said to become the output's 8-bit 4:2:0, in the run line; H.264 4:2:0 8-bit says
    nothing of it."""
    source = VideoFileSource(_prores_hq(tmp_path / "hq.mov"))
    source.close()
    assert ", 10-bit 4:2:2 made 8-bit 4:2:0 in a video output" in source.description
    plain = VideoFileSource(make_video(tmp_path / "plain.mp4", frames=3, audio_codec=None))
    plain.close()
    assert "made" not in plain.description


@pytest.mark.parametrize("output, said", [
    ("yuv420p", ", 10-bit 4:2:2 made 8-bit 4:2:0 in a video output"),  # H.264
    ("yuv422p10le", ", 10-bit made 8-bit"),  # ProRes: its 4:2:2 kept
    ("yuv444p10le", ", 10-bit made 8-bit")])  # FFV1, or no video output (a window, a photo)
def test_video18_the_run_line_says_what_the_output_s_codec_loses(tmp_path, output, said):
    """Once the output's codec is known the run line's words follow it: a ProRes input written as ProRes (--codec
    auto keeps it) is not said to be made 4:2:0, which it was before --codec existed."""
    source = VideoFileSource(_prores_hq(tmp_path / "hq.mov"))
    source.close()
    source.written_as(output)
    assert source.description.endswith(said) or f"{said}," in source.description
    assert source.description.count("made") == 1


@pytest.mark.parametrize("pix_fmt, said", [
    ("yuv422p10le", "10-bit 4:2:2 made 8-bit 4:2:0 in a video output"),  # ProRes HQ, H.264 High 4:2:2 10-bit
    ("yuv422p", "4:2:2 made 4:2:0 in a video output"),  # DNxHD, XDCAM HD422
    ("yuva444p12le", "12-bit 4:4:4 made 8-bit 4:2:0 in a video output"),  # ProRes 4444 as FFmpeg decodes it
    ("yuv420p10le", "10-bit made 8-bit"),  # a phone's HEVC: the bits are the pipeline's, whatever the output
    ("gbrp10le", "10-bit RGB made 8-bit 4:2:0 in a video output"),
    ("yuv420p", None), ("yuvj420p", None), ("nv12", None), ("yuv411p", None), ("gray", None), ("pal8", None)])
def test_video18_what_a_picture_format_holds_beyond_the_output(pix_fmt, said):
    import av

    assert finer_than_output(av.VideoFormat(pix_fmt, 64, 48)) == said


def _durations(path: Path) -> tuple[list[int], Fraction, Fraction, Fraction]:
    """The output's pictures' durations in ticks, its average and its stated rate, and the time base."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        ticks = [packet.duration for packet in container.demux(stream) if packet.size]
        return ticks, stream.average_rate, stream.guessed_rate, stream.time_base


def _sound_end(path: Path) -> float:
    import av

    with av.open(str(path)) as container:
        return max(float((packet.pts + packet.duration) * packet.time_base)
                   for packet in container.demux(audio=0) if packet.size)


def test_video18_a_part_of_a_23_976_video_keeps_every_picture_s_duration(tmp_path):
    """`--start 1 --duration 1.5` of a 23.976 fps video ends inside a picture: that last picture was shortened
    (14115 ticks in 360000 s where the others had 15015), a variable rate (36000/1499 on average). Now the part
    ends on the frame boundary nearest its end: 36 pictures, each a whole frame, the sound ending with them."""
    clip = make_video(tmp_path / "film.mov", frames=72, fps=NTSC_FILM, audio_codec="aac", sample_rate=48000)
    source = VideoFileSource(clip)
    source.set_range(1.0, 1.5)
    assert source.part_end == pytest.approx(60 * 1001 / 24000)  # picture 60's start: 59.5 frames is 2.48 s
    out = tmp_path / "part.mov"
    _run(clip, out, start=1.0, duration=1.5)
    ticks, average, stated, time_base = _durations(out)
    assert len(ticks) == 36 and len(set(ticks)) == 1
    assert ticks[0] * time_base == Fraction(1001, 24000)
    assert average == stated == NTSC_FILM
    assert _sound_end(out) == pytest.approx(36 * 1001 / 24000, abs=1024 / 48000)  # an AAC frame at most


def test_video18_parts_of_a_constant_rate_video_meet_without_gap_or_overlap(tmp_path):
    """`--start 0 --duration D` and `--start D`: each picture in exactly one of them, whatever D (a boundary, the
    first or second half of a picture); the part's end, which the subtitles are cut at, is where its pictures end."""
    clip = make_video(tmp_path / "film.mov", frames=48, fps=NTSC_FILM, audio_codec=None)
    for split in (1.0, 1.01, 1.03, 1.5015):
        head = VideoFileSource(clip)
        head.set_range(0.0, split)
        first = [frame.pts_seconds for frame in head.frames()]
        ends_at = head.part_end
        head.close()
        tail = VideoFileSource(clip)
        tail.set_range(split, None)
        second = [frame.pts_seconds for frame in tail.frames()]
        tail.close()
        assert len(first) + len(second) == 48 and max(first) < min(second)
        assert ends_at == pytest.approx(min(second)) and ends_at == pytest.approx(len(first) * 1001 / 24000)


def test_video18_a_variable_rate_part_still_ends_at_its_end(tmp_path):
    """A variable rate (a GIF whose last picture is held 0.5 s, decoded by FFmpeg) keeps its end as asked: its last
    picture is cut there (the subtitles and sound with it), not held whole past it."""
    from PIL import Image

    path = tmp_path / "anim.gif"
    pictures = [Image.fromarray(np.full((32, 48, 3), 40 * i, np.uint8)) for i in range(5)]
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=[100, 100, 100, 100, 500], loop=0)
    source = sources.open_source(str(path))
    assert isinstance(source, VideoFileSource) and not source.constant_rate
    source.set_range(0.0, 0.65)
    frames = list(source.frames())
    source.close()
    assert source.part_end == pytest.approx(0.65)
    assert [frame.pts_seconds for frame in frames] == pytest.approx([0, 0.1, 0.2, 0.3, 0.4])
    assert frames[-1].extra["duration_seconds"] == pytest.approx(0.25)


def test_video18_the_run_line_says_how_to_keep_the_colour_lost(tmp_path):
    """A 10-bit 4:2:2 input (XAVC-I, ProRes written as H.264) into a .mov or .mkv with --codec auto: the run line
    said its colour was made 4:2:0 and not that --codec prores keeps it; said beside it. Nothing where no colour is
    lost (ProRes out)."""
    source = VideoFileSource(_prores_hq(tmp_path / "hq.mov"))
    source.close()
    source.written_as("yuv420p", keeping="--codec prores keeps it")
    assert "10-bit 4:2:2 made 8-bit 4:2:0 in a video output (--codec prores keeps it)" in source.description
    kept = VideoFileSource(_prores_hq(tmp_path / "hq2.mov"))
    kept.close()
    kept.written_as("yuv422p10le", keeping="--codec prores keeps it")
    assert "keeps it" not in kept.description


def test_video18_an_h264_4_2_2_input_into_mov_is_told_of_prores(shared_models, tmp_path, capsys):
    """End to end: H.264 High 4:2:2 into .mov (auto: H.264 4:2:0) names --codec prores in the run line; into .mp4,
    which cannot hold ProRes, it does not."""
    import av

    from stream import cli

    path = tmp_path / "xavc.mov"
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv422p10le"
        for index in range(3):
            picture = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * index, np.uint8), format="bgr24")
            for packet in video.encode(picture.reformat(format="yuv422p10le")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    for suffix, told in ((".mov", True), (".mp4", False)):
        assert cli.main(["run", str(path), "-o", str(tmp_path / f"out{suffix}"), "--refine", "off",
                         "--no-progress"]) == 0
        line = next(line for line in capsys.readouterr().err.splitlines() if "made 8-bit 4:2:0" in line)
        assert ("--codec prores keeps it" in line) == told, line
