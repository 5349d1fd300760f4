"""A transparent video (ProRes 4444, QuickTime Animation, PNG in MOV, FFV1 with alpha) keeps its alpha where the
output's codec holds one (ProRes 4444 in .mov/.mkv, FFV1, VP9 in .webm), as given (not blurred), and is laid on white,
said in a line, where it holds none (H.264). The render is made on the hidden pixels filled from the visible ones,
as a photo's: laid on white at decode, the blur gathered the white into the subject's edge."""
from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from stream.sources import VideoFileSource, alpha_of
from stream.video_writer import VideoWriter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_models import _first_channel_model  # noqa: E402

WIDTH, HEIGHT = 96, 64
COLOUR = (40, 90, 180)  # BGR of the visible part
HIDDEN = (0, 255, 0)  # what the transparent pixels hide (a decoder that drops the alpha shows it)


def _alpha() -> np.ndarray:
    """Opaque on the left, a half-opaque band (128), transparent on the right, and a transparent corner."""
    alpha = np.full((HEIGHT, WIDTH), 255, np.uint8)
    alpha[:, 48:60] = 128
    alpha[:, 60:] = 0
    alpha[:8, :8] = 0
    return alpha


def _bgra(alpha: np.ndarray | None = None, colour: tuple[int, int, int] = COLOUR) -> np.ndarray:
    alpha = _alpha() if alpha is None else alpha
    bgra = np.zeros((*alpha.shape, 4), np.uint8)
    bgra[..., :3] = colour
    bgra[alpha == 0, :3] = HIDDEN
    bgra[..., 3] = alpha
    return bgra


def _video(path: Path, codec: str, pix_fmt: str, bgra: np.ndarray | None = None, frames: int = 3,
           options: dict[str, str] | None = None) -> Path:
    import av

    bgra = _bgra() if bgra is None else bgra
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=24)
        stream.width, stream.height, stream.pix_fmt = bgra.shape[1], bgra.shape[0], pix_fmt
        stream.options = options or {}
        for index in range(frames):
            picture = av.VideoFrame.from_ndarray(bgra, format="bgra").reformat(format=pix_fmt)
            picture.pts, picture.time_base = index, Fraction(1, 24)
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _prores_4444(path: Path, bgra: np.ndarray | None = None) -> Path:
    return _video(path, "prores_ks", "yuva444p10le", bgra, options={"profile": "4444"})


def _read(path: Path, decoder: str | None = None) -> tuple[object, list[np.ndarray], list[np.ndarray]]:
    """The video stream, and each picture's BGR and 8-bit alpha (exactly from its plane); `decoder`: another than
    FFmpeg's own (libvpx-vp9, which reads VP9's alpha)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if decoder is None:
            pictures = list(container.decode(stream))
        else:
            context = av.CodecContext.create(decoder, "r")
            pictures = [picture for packet in container.demux(stream) for picture in context.decode(packet)]
        return stream, [p.to_ndarray(format="bgr24").astype(int) for p in pictures], [alpha_of(p) for p in pictures]


def _run(given: Path, out: Path, *more: str) -> None:
    from stream.cli import main

    model = _first_channel_model(given.parent / "first_channel.onnx")
    assert main(["run", str(given), "-o", str(out), "--model", str(model), "--model-size", "48x32",
                 "--model-input", "unit", "--refine", "off", "--no-progress", *more]) == 0


def test_a_prores_4444_input_written_to_mov_keeps_its_alpha(tmp_path, capsys, caplog):
    """A transparent lower third in ProRes 4444 came back opaque, laid on white: now ProRes 4444 with its alpha (as
    given, each value exact), its colours where it is opaque as they were, said in one line."""
    given = _prores_4444(tmp_path / "lower_third.mov")
    _run(given, tmp_path / "out.mov")
    stream, images, alphas = _read(tmp_path / "out.mov")
    _, _, given_alphas = _read(given)
    assert (stream.codec_context.name, stream.codec_tag, len(images)) == ("prores", "ap4h", 3)
    assert stream.codec_context.pix_fmt.startswith("yuva444")
    for image, alpha in zip(images, alphas):
        np.testing.assert_array_equal(alpha, given_alphas[0])
        assert np.abs(image[alpha == 255] - COLOUR).max() <= 3
    assert "out.mov: written in ProRes 4444 with alpha, as the input is in prores" in caplog.text
    assert "12-bit made 8-bit ->" in capsys.readouterr().err  # the run line: its 4:4:4 is kept


def test_a_transparent_input_into_mp4_is_laid_on_white_said_once(tmp_path, capsys):
    """H.264 holds no alpha: the transparent part is white (not the colour hidden there, nor the fill behind it),
    the half-opaque band half way to white, the rest as it is; one line says so and what keeps it."""
    _run(_prores_4444(tmp_path / "lower_third.mov"), tmp_path / "out.mp4")
    stream, images, _ = _read(tmp_path / "out.mp4")
    assert stream.codec_context.pix_fmt == "yuv420p"
    alpha = _alpha()
    for image in images:
        assert (image[:, 62:] >= 250).all() and (image[1:7, 1:7] >= 250).all()
        band = image[:, 50:56]  # clear of 4:2:0's shared colour at its edges
        assert np.abs(band - (np.array(COLOUR) + 255) / 2).max() <= 6
        assert np.abs(image[16:, 10:44] - COLOUR).max() <= 4
    assert alpha.min() == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "alpha channel" in line]
    assert lines == ["depthcam: out.mp4: the input's alpha channel is laid on white: H.264 holds none; --codec prores "
                     "(.mov, .mkv), ffv1 (.mkv) or vp9 (.webm) keeps it"]


def test_an_ffv1_input_with_alpha_round_trips_through_mkv(tmp_path):
    """FFV1 with alpha into .mkv: codec auto keeps FFV1, with the alpha, every value exact."""
    given = _video(tmp_path / "key.mkv", "ffv1", "yuva444p10le")
    _run(given, tmp_path / "out.mkv")
    stream, images, alphas = _read(tmp_path / "out.mkv")
    assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("ffv1", "yuva444p10le")
    for image, alpha in zip(images, alphas):
        np.testing.assert_array_equal(alpha, _alpha())
        assert np.abs(image[alpha == 255] - COLOUR).max() <= 1


@pytest.mark.parametrize("codec, pix_fmt", [("qtrle", "argb"), ("png", "rgba")])
def test_a_quicktime_animation_or_png_input_keeps_its_alpha_in_prores_or_vp9(tmp_path, codec, pix_fmt):
    """QuickTime Animation and PNG in MOV, motion graphics' codecs: into .mov ProRes 4444 with the alpha (--codec
    auto keeps an editing codec: it wrote H.264 laid on white); into .webm, VP9 with alpha (libvpx's decoder reads it
    back; FFmpeg's own leaves it out), lossy, so near."""
    given = _video(tmp_path / f"anim_{codec}.mov", codec, pix_fmt)
    _run(given, tmp_path / "out.mov")
    stream, _, alphas = _read(tmp_path / "out.mov")
    assert stream.codec_tag == "ap4h"
    np.testing.assert_array_equal(alphas[0], _alpha())
    _run(given, tmp_path / "out.webm")
    stream, images, alphas = _read(tmp_path / "out.webm", decoder="libvpx-vp9")
    assert stream.metadata.get("alpha_mode") == "1" and len(alphas) == 3
    assert np.abs(alphas[0].astype(int) - _alpha()).mean() < 2


def test_side_by_side_and_the_depth_video_are_opaque(tmp_path, capsys):
    """Side by side, no alpha fits the three panels, and a depth picture has none: both laid out opaque, ProRes
    422 HQ, the input's transparent part white in the panels; the run line says its 4:4:4 is made 4:2:2 (it said
    only the bits, as for ProRes 4444 with its alpha)."""
    given = _prores_4444(tmp_path / "lower_third.mov")
    _run(given, tmp_path / "out.mov", "--side-by-side", "--save-depth", str(tmp_path / "depth.mov"))
    assert "12-bit 4:4:4 made 8-bit 4:2:2 in a video output" in capsys.readouterr().err
    for name in ("out.mov", "depth.mov"):
        stream, images, _ = _read(tmp_path / name)
        assert (stream.codec_tag, stream.codec_context.pix_fmt) == ("apch", "yuv422p10le"), name
    _, images, _ = _read(tmp_path / "out.mov")
    assert (images[0][:, 64:WIDTH] >= 245).all()  # the input's panel: its transparent part on white


def test_a_format_with_alpha_whose_pictures_are_opaque_says_nothing(tmp_path, capsys, caplog):
    """QuickTime Animation's argb, every pixel opaque, into .mp4: nothing laid on white, nothing said."""
    given = _video(tmp_path / "opaque.mov", "qtrle", "argb", _bgra(np.full((HEIGHT, WIDTH), 255, np.uint8)))
    _run(given, tmp_path / "out.mp4")
    _, images, _ = _read(tmp_path / "out.mp4")
    assert np.abs(images[0] - COLOUR).max() <= 4
    assert "alpha channel" not in capsys.readouterr().err + caplog.text


def test_the_source_carries_the_alpha_and_fills_the_hidden_pixels(tmp_path):
    """The frames carry the alpha, exact (swscale's conversion read 128 as 129), and their pictures hold the
    nearest visible colour where hidden (not the green stored there, not white); a palette's too."""
    source = VideoFileSource(_prores_4444(tmp_path / "lower_third.mov"))
    frames = list(source.frames())
    source.close()
    assert len(frames) == 3
    for frame in frames:
        np.testing.assert_array_equal(frame.extra["alpha"], _alpha())
        assert np.abs(frame.image[:, 60:].astype(int) - COLOUR).max() <= 3


def test_the_writer_keeps_every_alpha_value_exactly(tmp_path):
    """Each of the 256 alpha values comes back as given from ProRes 4444 and FFV1 (lossless alpha): swscale's
    conversion rounded some a code value high, a drift that grew with each generation."""
    alpha = np.tile(np.arange(256, dtype=np.uint8), (16, 1))
    bgra = np.dstack([np.full((16, 256, 3), 128, np.uint8), alpha])
    for name, codec in (("a.mov", "prores"), ("a.mkv", "ffv1")):
        writer = VideoWriter(tmp_path / name, 256, 16, 25, codec=codec)
        for _ in range(2):
            writer.write(bgra)
        writer.close()
        _, _, alphas = _read(tmp_path / name)
        np.testing.assert_array_equal(alphas[0], alpha)


def test_a_bgr_picture_after_a_transparent_first_one_is_opaque(tmp_path):
    """The first picture decides: given with alpha, a later one without is written opaque."""
    writer = VideoWriter(tmp_path / "a.mkv", WIDTH, HEIGHT, 25, codec="ffv1")
    writer.write(_bgra())
    writer.write(np.full((HEIGHT, WIDTH, 3), 60, np.uint8))
    writer.close()
    _, _, alphas = _read(tmp_path / "a.mkv")
    assert (alphas[0] == _alpha()).all() and (alphas[1] == 255).all()


RIM_COLOUR = (14, 58, 168)  # a dark orange: a light rim shows plainly on it


def _card() -> np.ndarray:
    """A dark orange card on a transparent page, its edge antialiased (straight colours), the page hiding blue."""
    import cv2

    alpha = np.zeros((96, 128), np.uint8)
    cv2.rectangle(alpha, (24, 16), (104, 80), 255, -1, cv2.LINE_AA)
    alpha = cv2.GaussianBlur(alpha, (3, 3), 0)
    return _bgra(alpha, RIM_COLOUR)


def _rim(alpha: np.ndarray) -> np.ndarray:
    """The opaque pixels within 3 px of the alpha's edge."""
    import cv2

    return (alpha == 255) & (cv2.dilate((alpha < 255).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0)


# --focus-band 0: the rim is blurred (with the presets' band the card's edge lies within it, in focus, and no white
# was gathered into it in the first place)
@pytest.mark.parametrize("focus", [["--focus-point", "64,48", "--focus-band", "0"], ["--focus", "0", "--blur", "20"]])
def test_a_keyed_subject_s_edge_takes_no_white_under_the_blur(tmp_path, shared_models, focus):
    """Laid on white at decode (as before: here the same picture on white, given opaque), the blur gathered the white
    into the opaque pixels by the edge, a light rim; made on the filled picture, the rim keeps its colour."""
    from stream.cli import main
    from stream.images import on_white

    card = _card()
    given = _video(tmp_path / "card.mkv", "ffv1", "yuva444p10le", card, frames=2)
    on_page = np.dstack([on_white(card[..., :3], card[..., 3]), np.full(card.shape[:2], 255, np.uint8)])
    before = _video(tmp_path / "on_white.mkv", "ffv1", "yuv444p10le", on_page, frames=2)
    rims = {}
    for name, video in (("after", given), ("before", before)):
        assert main(["run", str(video), "-o", str(tmp_path / f"{name}.mkv"), "--no-progress", *focus]) == 0
        _, images, alphas = _read(tmp_path / f"{name}.mkv")
        rims[name] = np.abs(images[0] - RIM_COLOUR)[_rim(card[..., 3])]
    np.testing.assert_array_equal(alphas[0], 255)  # the opaque input stays opaque
    assert rims["after"].mean() < 2 and rims["after"].max() <= 8
    assert rims["before"].mean() > 3 * rims["after"].mean() + 2  # today's light rim, which the fill takes away


@pytest.mark.parametrize("codec, suffix, stored", [("prores", ".mov", (96, 63)), ("ffv1", ".mkv", (95, 63)),
                                                   ("vp9", ".webm", (96, 64))])
def test_an_odd_sized_transparent_picture_is_padded_as_the_codec_s_own(tmp_path, codec, suffix, stored):
    """Padded as the codec's pictures without alpha are: prores_aw refused an odd width in 4444 too."""
    writer = VideoWriter(tmp_path / f"odd{suffix}", 95, 63, 25, codec=codec)
    writer.write(np.dstack([np.full((63, 95, 3), 100, np.uint8), np.full((63, 95), 200, np.uint8)]))
    writer.close()
    stream, _, alphas = _read(tmp_path / f"odd{suffix}", decoder="libvpx-vp9" if codec == "vp9" else None)
    assert (stream.codec_context.width, stream.codec_context.height) == stored
    assert abs(int(np.median(alphas[0])) - 200) <= 1


def test_an_opaque_gif_into_webm_stays_without_alpha(tmp_path, caplog):
    """FFmpeg's GIF pictures are BGRA whatever they show: an opaque GIF made a VP9 with an alpha of 255 everywhere,
    and a line that said its alpha was kept. It is written without one, saying nothing."""
    from PIL import Image

    pictures = [Image.new("RGB", (64, 48), (30, 120 + 20 * index, 200)) for index in range(3)]
    pictures[0].save(tmp_path / "clip.gif", save_all=True, append_images=pictures[1:], duration=100, loop=0)
    source = VideoFileSource(tmp_path / "clip.gif")
    assert source.treatment.alpha and "alpha" not in next(source.frames()).extra
    source.close()
    _run(tmp_path / "clip.gif", tmp_path / "out.webm")
    stream, _, _ = _read(tmp_path / "out.webm")
    assert "alpha_mode" not in stream.metadata and "alpha" not in caplog.text


def test_a_vp9_webm_with_alpha_keeps_it(tmp_path):
    """A WebM's VP9 with alpha (alpha_mode 1, as FFmpeg and browsers' MediaRecorder write it): FFmpeg's own VP9
    decoder leaves the alpha out, and the output was opaque; libvpx's reads it, and .webm writes it back (lossy, so
    near) and ProRes 4444 keeps it."""
    given = _video(tmp_path / "key.webm", "libvpx-vp9", "yuva420p")
    _run(given, tmp_path / "out.webm")
    stream, _, alphas = _read(tmp_path / "out.webm", decoder="libvpx-vp9")
    assert stream.metadata.get("alpha_mode") == "1" and len(alphas) == 3
    assert np.abs(alphas[0].astype(int) - _alpha()).mean() < 3
    _run(given, tmp_path / "out.mov", "--codec", "prores")
    stream, _, alphas = _read(tmp_path / "out.mov")
    assert stream.codec_tag == "ap4h" and np.abs(alphas[0].astype(int) - _alpha()).mean() < 3


def test_a_damaged_vp9_with_alpha_loses_only_the_damaged_picture(tmp_path, capsys):
    """libvpx refused every picture after a damaged packet up to the next keyframe (42 of 49 given; FFmpeg's own
    gave 49, opaque): FFmpeg's VP9 decoder stands in for that stretch, in colour only, its pictures taking the last
    good picture's alpha (they came opaque: a full-frame flash over the programme in a compositor), and libvpx, with
    the alpha, decodes again from the next keyframe."""
    import av

    from media import damage

    path, rng = tmp_path / "key.webm", np.random.default_rng(1)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libvpx-vp9", rate=24, options={"g": "10", "deadline": "realtime"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuva420p"
        for index in range(30):
            bgra = _bgra()
            bgra[..., :3] = np.clip(bgra[..., :3].astype(int) + rng.integers(-20, 20, (HEIGHT, WIDTH, 3)), 0, 255)
            picture = av.VideoFrame.from_ndarray(bgra, format="bgra").reformat(format="yuva420p")
            picture.pts, picture.time_base = index, Fraction(1, 24)
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    source = VideoFileSource(damage(path, 12))
    frames = list(source.frames())
    source.close()
    assert [round(frame.pts_seconds * 24) for frame in frames] == [*range(12), *range(13, 30)]
    kept = [np.abs(frame.extra["alpha"].astype(int) - _alpha()).mean() < 3 for frame in frames]
    assert kept == [True] * 29  # the stretch up to the keyframe at 20 too: the last good picture's alpha
    assert all(np.array_equal(frame.extra["alpha"], frames[11].extra["alpha"]) for frame in frames[12:19])
    assert "damaged" in capsys.readouterr().err
