"""Interlaced video (a camcorder's 1080i, DV, a broadcast recording) is deinterlaced on decode: real interlaced
files made with libx264 (MBAFF), mpeg2video and dvvideo from two progressive pictures a field apart, woven."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from stream.sources import open_source

SIZE = (192, 144)
STILL = slice(0, SIZE[0] // 4)  # columns of the picture that never move
FPS = 25


def picture(t: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """Grey (its luma carries it all): a still, shaded block on the left and a bright bar moving 6 px a field."""
    width, height = size
    image = np.full((height, width, 3), 60, np.uint8)
    rows = np.linspace(100, 220, height).astype(np.uint8)[:, None, None]
    image[:, STILL] = rows
    x = width // 3 + 6 * t % (width // 2)  # across the right half, again and again
    image[height // 4:3 * height // 4, x:x + width // 8] = 230
    return image


def weave(first: np.ndarray, second: np.ndarray, tff: bool) -> np.ndarray:
    """One interlaced picture: the field shown first (top lines for tff) from `first`, the other from `second`."""
    woven = first.copy()
    later = slice(1, None, 2) if tff else slice(0, None, 2)
    woven[later] = second[later]
    return woven


def make_interlaced(path: Path, codec: str = "libx264", tff: bool = True, frames: int = 10,
                    size: tuple[int, int] = SIZE, pix_fmt: str = "yuv420p", rotation: int = 0,
                    colour: tuple[int, int, int] | None = None, fields: list[str] | None = None) -> Path:
    """Pictures i woven from picture(2i) and picture(2i+1), coded interlaced, each frame marked with its field
    order (setfield, as a camera's encoder is told), which libx264 and mpeg2video write into the stream.
    `fields`: the mark per frame ("prog": the same woven lines coded as a progressive picture, which a
    deinterlacer would change).
    `colour`: (transfer, primaries, matrix) tags, e.g. HLG (18, 9, 9)."""
    import av
    import av.filter

    fields = fields or ["tff" if tff else "bff"] * frames
    interlaced = fields[0] != "prog"
    options = {"dvvideo": {}, "mpeg2video": {"flags": "+ilme+ildct", "b": "4M"},
               "libx264": {"x264-params": "interlaced=1", "flags": "+ilme+ildct"} if interlaced else {}}[codec]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS, options=options)
        stream.width, stream.height, stream.pix_fmt = *size, pix_fmt
        if rotation:
            stream.set_display_rotation(rotation)
        if colour:
            stream.codec_context.color_trc, stream.codec_context.color_primaries, stream.codec_context.colorspace = \
                colour
        for i, field in enumerate(fields):
            image = weave(picture(2 * i, size), picture(2 * i + 1, size), field != "bff")
            frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(
                format=pix_fmt, dst_colorspace="bt2020" if colour else None)
            if colour:
                frame.color_trc, frame.color_primaries, frame.colorspace = colour
            graph = av.filter.Graph()
            source = graph.add_buffer(width=size[0], height=size[1], format=pix_fmt, time_base=Fraction(1, FPS))
            graph.link_nodes(source, graph.add("setfield", field), graph.add("buffersink"))
            graph.configure()
            graph.vpush(frame)
            frame = graph.vpull()
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def plain(path: Path) -> tuple[list[np.ndarray], list[float], list[bool]]:
    """Every picture decoded as it is stored (no deinterlacing), its time and its interlaced flag."""
    import av

    with av.open(str(path)) as container:
        decoded = list(container.decode(video=0))
    return ([frame.to_ndarray(format="bgr24") for frame in decoded], [float(frame.time) for frame in decoded],
            [frame.interlaced_frame for frame in decoded])


def read(path: Path, start: float | None = None, duration: float | None = None):
    source = open_source(str(path))
    try:
        if start is not None or duration is not None:
            source.set_range(start, duration)
        frames = list(source.frames())
        return [f.image for f in frames], [f.pts_seconds for f in frames], source
    finally:
        source.close()


def comb(image: np.ndarray) -> float:
    """Comb energy: how far each line is from the mean of the lines above and below it (teeth of two fields)."""
    grey = image.astype(np.float64).mean(axis=2)
    return float(np.abs(grey[1:-1] - (grey[:-2] + grey[2:]) / 2).mean())


def error(image: np.ndarray, truth: np.ndarray) -> float:
    return float(np.abs(image.astype(np.float64) - truth).mean())


def assert_deinterlaced(images: list[np.ndarray], stored: list[np.ndarray], first: int = 0,
                        size: tuple[int, int] = SIZE) -> None:
    """Comb teeth gone, the still area as stored, and each picture shows its first field's instant (the field
    order read right: the time its frame is shown at)."""
    for i, (image, raw) in enumerate(zip(images, stored)):
        assert comb(image) < 0.25 * comb(raw), (i, comb(image), comb(raw))
        assert error(image[:, STILL], raw[:, STILL]) < 0.5
        shown, later = picture(2 * (first + i), size), picture(2 * (first + i) + 1, size)
        moved = np.any(shown != later, axis=2)  # where the two instants differ
        assert error(image[moved], shown[moved]) < 0.3 * error(image[moved], later[moved]), i


@pytest.mark.parametrize("codec, suffix, tff", [
    ("libx264", ".mkv", True),   # AVCHD 1080i: H.264 MBAFF, top field first
    ("libx264", ".ts", False),
    ("mpeg2video", ".mpg", True),  # DVD, broadcast MPEG-2
    ("mpeg2video", ".ts", False),
])
def test_interlaced_video_is_deinterlaced_one_picture_per_frame(tmp_path, codec, suffix, tff):
    """Decoded plainly, every moving edge showed comb teeth that the network, the face detector and the refined
    depth followed and the output kept. Now each picture is deinterlaced, its frame time kept."""
    path = make_interlaced(tmp_path / f"clip{suffix}", codec, tff)
    stored, times, flags = plain(path)
    assert all(flags)
    images, pts, source = read(path)
    assert "deinterlaced (bwdif)" in source.description
    assert pts == times and len(images) == 10
    assert_deinterlaced(images, stored)


def test_interlaced_a_progressive_file_is_untouched_bit_for_bit(tmp_path):
    path = make_interlaced(tmp_path / "progressive.mp4", fields=["prog"] * 6)
    stored, times, flags = plain(path)
    assert not any(flags) and comb(stored[3]) > 2  # lines a deinterlacer would change
    images, pts, source = read(path)
    assert "interlaced" not in source.description
    assert pts == times and all(np.array_equal(a, b) for a, b in zip(images, stored)) and len(images) == 6


def test_interlaced_a_stream_that_turns_interlaced_is_deinterlaced_from_there(tmp_path, capsys):
    """Broadcast recordings switch between progressive and interlaced coding (`cat a.ts b.ts` too): each picture
    is taken as its own flag says; the progressive ones stay bit for bit as decoded."""
    progressive = make_interlaced(tmp_path / "a.ts", fields=["prog"] * 4)
    interlaced = make_interlaced(tmp_path / "b.ts", frames=6)
    path = tmp_path / "joined.ts"
    path.write_bytes(progressive.read_bytes() + interlaced.read_bytes())
    stored, _, flags = plain(path)
    assert flags == [False] * 4 + [True] * 6
    images, _, source = read(path)
    assert "interlaced" not in source.description and len(images) == 10
    assert "joined.ts turns interlaced at picture 5" in capsys.readouterr().err
    assert all(np.array_equal(a, b) for a, b in zip(images[:4], stored[:4]))
    assert_deinterlaced(images[4:], stored[4:])


@pytest.mark.parametrize("suffix", [".avi", ".dv"])
def test_interlaced_dv_is_deinterlaced_and_made_square(tmp_path, suffix):
    """PAL DV: 720x576 interlaced, bottom field first, with 16:15 pixels. The fields are rebuilt before the
    picture is widened (scaling mixes lines of both fields)."""
    size = (720, 576)
    path = make_interlaced(tmp_path / f"tape{suffix}", "dvvideo", tff=False, frames=4, size=size)
    stored, times, _ = plain(path)
    images, pts, source = read(path)
    assert "deinterlaced (bwdif)" in source.description and "square pixels" in source.description
    assert pts == times and images[0].shape == (576, 768, 3)
    narrowed = [cv2.resize(image, size, interpolation=cv2.INTER_AREA) for image in images]
    assert_deinterlaced(narrowed, stored, size=size)


def test_interlaced_raw_dv_keeps_its_frame_rate(tmp_path):
    """A camcorder's .dv (as dvgrab captures it): FFmpeg's demuxer announced its 1/60000 s tick as the rate, and
    the run said 60000 fps, counted 14400 frames for 6 and wrote an AVI at 1000 fps."""
    source = open_source(str(make_interlaced(tmp_path / "tape.dv", "dvvideo", tff=False, frames=6, size=(720, 576))))
    try:
        assert source.fps == 25 and source.frame_count == 6 and "@ 25 fps" in source.description
    finally:
        source.close()


def test_interlaced_start_and_duration_take_deinterlaced_pictures(tmp_path):
    path = make_interlaced(tmp_path / "clip.ts", frames=12)
    stored, times, _ = plain(path)
    images, pts, _ = read(path, start=0.2, duration=0.2)
    first = times.index(pts[0])
    assert pts == times[first:first + 5] and abs(pts[0] - times[0] - 0.2) < 1e-6
    assert_deinterlaced(images, stored[first:first + 5], first=first)


def test_interlaced_video_with_a_display_rotation_is_deinterlaced_then_turned(tmp_path):
    """The fields are lines of the stored picture: it is deinterlaced before it is turned upright."""
    upright = make_interlaced(tmp_path / "plain.mp4")
    turned = make_interlaced(tmp_path / "turned.mp4", rotation=90)
    images, _, _ = read(upright)
    shown, _, source = read(turned)
    assert "deinterlaced" in source.description and "turned upright" in source.description
    for image, turned_image in zip(images, shown):
        assert error(turned_image, cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)) < 0.5


def test_interlaced_a_truncated_file_gives_every_decodable_picture_deinterlaced(tmp_path):
    """The picture the filter holds (bwdif looks one ahead) comes out at the end of a file cut short too."""
    path = make_interlaced(tmp_path / "cut.mkv", "mpeg2video", frames=30)
    path.write_bytes(path.read_bytes()[:int(path.stat().st_size * 0.7)])
    stored, times, _ = plain(path)
    images, pts, _ = read(path)
    assert 10 <= len(times) < 30 and pts == times
    assert_deinterlaced(images, stored)


def test_interlaced_hdr_is_deinterlaced_then_tone_mapped(tmp_path):
    """HLG 1080i (broadcast): 10-bit, BT.2020 tags kept through the filter, so the tone mapping reads them."""
    from stream.hdr import ColourConverter, colour_signal

    path = make_interlaced(tmp_path / "hlg.mkv", frames=4, pix_fmt="yuv420p10le", colour=(18, 9, 9))
    images, _, source = read(path)
    assert "deinterlaced (bwdif)" in source.description and "HLG" in source.description
    import av

    with av.open(str(path)) as container:
        decoded = list(container.decode(video=0))
    converter = ColourConverter(colour_signal(decoded[0]))
    for image, frame in zip(images, decoded):
        raw = converter.convert(frame)
        assert comb(image) < 0.25 * comb(raw)
        assert error(image[:, STILL], raw[:, STILL]) < 0.5


def test_interlaced_clips_of_two_sizes_joined_are_each_deinterlaced(tmp_path):
    """`cat a.ts b.ts` of two sizes: the filter is built again at the new size (kept as it was, bwdif went on at
    the first size and gave 16 pictures for 8)."""
    first = make_interlaced(tmp_path / "a.ts", frames=4)
    second = make_interlaced(tmp_path / "b.ts", frames=4, size=(160, 120))
    path = tmp_path / "joined.ts"
    path.write_bytes(first.read_bytes() + second.read_bytes())
    stored, times, _ = plain(path)
    images, pts, _ = read(path)
    assert pts == times and len(images) == 8 and all(image.shape == (144, 192, 3) for image in images)
    assert_deinterlaced(images[:4], stored[:4])
    for k, (image, raw) in enumerate(zip(images[4:], stored[4:])):
        truth = cv2.resize(picture(2 * k, (160, 120)), SIZE, interpolation=cv2.INTER_LINEAR)
        assert comb(image) < 0.25 * comb(raw) and error(image, truth) < 6, k  # not at the first size: 38-45


def test_interlaced_pictures_held_in_the_filter_come_out_before_a_read_error(tmp_path):
    """bwdif holds a picture until the next one comes: an error that ends the decoding is raised after it."""
    import av

    from stream.deinterlace import Deinterlacer

    with av.open(str(make_interlaced(tmp_path / "clip.mkv", frames=3))) as container:
        decoded = list(container.decode(video=0))

    def failing():
        yield from decoded
        raise av.error.InvalidDataError(22, "Invalid data found when processing input")

    given = []
    with pytest.raises(av.error.InvalidDataError):
        for frame in Deinterlacer(decoded[0].time_base).frames(failing()):
            given.append(frame)
    assert [frame.time for frame in given] == [frame.time for frame in decoded]
    assert not any(frame.interlaced_frame for frame in given)


def test_interlaced_deinterlace_off_gives_the_pictures_as_decoded(tmp_path, shared_models):
    # a camcorder's 25p in a 50i stream flags progressive pictures interlaced: bwdif would soften what moves
    from stream.app import build
    from stream.config import load_config

    path = make_interlaced(tmp_path / "clip.mts", frames=4)
    stored, times, _ = plain(path)
    built = build(load_config("default", {"deinterlace": "off", "output.progress": False}), str(path), "null")
    try:
        assert "interlaced" not in built.source.description
        frames = list(built.source.frames())
    finally:
        built.source.close()
    assert [f.pts_seconds for f in frames] == times
    assert all(np.array_equal(f.image, raw) for f, raw in zip(frames, stored)) and len(frames) == 4


def test_interlaced_deinterlace_off_is_read_from_a_config_file_and_the_command_line(tmp_path):
    from stream.config import ConfigValueError, load_config

    config = tmp_path / "mine.yaml"
    config.write_text("deinterlace: off\n")  # unquoted: YAML 1.1 reads it as false
    assert load_config(str(config)).deinterlace == "off"
    assert load_config("default").deinterlace == "auto"
    with pytest.raises(ConfigValueError, match="deinterlace must be one of auto, off"):
        load_config("default", {"deinterlace": "yadif"})
