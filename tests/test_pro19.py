"""A video editor's walkthrough (nineteenth session): copied PCM cut at the sample where a part starts, the lines
said of a transparent input's alpha, a matted lower third's edges made straight (no tint in its opaque text), a MOV's
ProRes said to be Apple's, progressive and of square pixels, and an MXF's identity left out."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_audio18 import RATE, _pcm_mov  # noqa: E402
from test_video_alpha import WIDTH, HEIGHT, _bgra, _prores_4444, _run, _video  # noqa: E402

PACKET = 4608  # samples: the packet at 13824 runs over the part's start (0.3 s: sample 14400)


def _write_part(src: Path, out: Path, first: int, count: int) -> None:
    """Pictures `first` to `first + count` of `src` with its sound, as --start and --duration write them."""
    from stream.sources import open_source
    from stream.video_writer import VideoWriter

    source = open_source(str(src))
    writer = VideoWriter(out, source.width, source.height, source.fps, source.audio_path)
    try:
        for index, frame in enumerate(source.frames()):
            if index == first + count:
                break
            if index >= first:
                writer.write(frame.image, frame.pts_seconds)
    finally:
        writer.close(complete=False)
        source.close()


def _sound(path: Path) -> tuple[list[int], np.ndarray, list[int]]:
    """The first audio stream's packets' times (its ticks), its samples (first channel) and the video's times."""
    import av

    with av.open(str(path)) as container:
        audio = container.streams.audio[0]
        assert audio.codec_context.codec.canonical_name == "pcm_s24le"  # copied
        times = [packet.pts for packet in container.demux(audio) if packet.size]
    with av.open(str(path)) as container:
        samples = np.concatenate([frame.to_ndarray().reshape(-1, 2)[:, 0]
                                  for frame in container.decode(container.streams.audio[0])])
    with av.open(str(path)) as container:
        pictures = [packet.pts for packet in container.demux(container.streams.video[0]) if packet.size]
    return times, samples, pictures


@pytest.mark.parametrize("suffix", [".mov", ".mkv"])
def test_copied_pcm_starts_at_the_parts_first_picture(tmp_path, suffix):
    """--start with PCM copied: the packet under the part's start was kept whole (up to a frame of sound before the
    first picture: an MXF's 40 ms at pts -1920 behind a MOV's edit list; in Matroska the pictures pushed 40 ms late,
    the sound at 0). Now cut at the sample, as the end is: the sound starts with the first picture, with the input's
    sample at that time, and lasts as long as the pictures."""
    src = _pcm_mov(tmp_path / "in.mov", "stereo", None, seconds=1.0, packet=PACKET)
    out = tmp_path / f"out{suffix}"
    _write_part(src, out, first=3, count=4)  # from 0.3 s, for 0.4 s
    times, samples, pictures = _sound(out)
    assert min(times) == 0 and min(pictures) == 0
    given = (2 ** 30 * np.sin(2 * np.pi * 440 * (14400 + np.arange(32)) / RATE)).astype(np.int64)
    assert np.abs(samples[:32] - given).max() <= 256  # 24-bit: the low byte is dropped
    assert len(samples) == round(0.4 * RATE)


def test_codec_autos_line_says_h264_would_lay_the_alpha_on_white(tmp_path, caplog):
    """"...; --codec h264 writes a far smaller file, laid on white" read as if this output were laid on white."""
    _run(_prores_4444(tmp_path / "lower_third.mov"), tmp_path / "out.mov")
    assert ("out.mov: written in ProRes 4444 with alpha, as the input is in prores (codec auto keeps an editing "
            "codec); --codec h264 writes a far smaller file, with the alpha laid on white") in caplog.text


def test_side_by_side_of_a_transparent_input_says_its_alpha_is_laid_on_white(tmp_path, capsys):
    """The README promises a line where the alpha is laid on white; side by side said nothing (its picture, three
    times as wide, took no alpha). Said once; of an input whose pictures are all opaque, nothing."""
    _run(_prores_4444(tmp_path / "lower_third.mov"), tmp_path / "out.mov", "--side-by-side")
    lines = [line for line in capsys.readouterr().err.splitlines() if "alpha channel" in line]
    assert lines == ["depthcam: out.mov: the input's alpha channel is laid on white: side by side holds none (its "
                     "panels are opaque)"]
    opaque = _video(tmp_path / "opaque.mov", "qtrle", "argb", _bgra(np.full((HEIGHT, WIDTH), 255, np.uint8)))
    _run(opaque, tmp_path / "out2.mov", "--side-by-side")
    assert "alpha channel" not in capsys.readouterr().err


WHITE, MATTE = np.array([255, 255, 255]), np.array([204, 0, 0])  # BGR: white text matted over blue


def _lower_third(matte: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """A white bar, antialiased (alpha 255 down to 15 over 16 px each side), over nothing: `matte` the colour it was
    drawn over (its hidden pixels hold it, its edges mix it: a*white + (1-a)*matte), None for straight colours (the
    edges white, the hidden pixels black)."""
    alpha = np.zeros((24, 80), np.uint8)
    ramp = np.linspace(255, 15, 17)[1:].round().astype(np.uint8)
    alpha[:, 32:48] = 255
    alpha[:, 48:64], alpha[:, 16:32] = ramp, ramp[::-1]
    a = alpha[..., None] / 255
    colour = WHITE * a + (1 - a) * (MATTE if matte is not None else WHITE)
    picture = np.where(alpha[..., None] > 0, colour, matte if matte is not None else 0)
    return np.round(picture).astype(np.uint8), alpha


def test_a_matted_lower_thirds_edges_are_made_straight():
    """QuickTime Animation text drawn over blue (After Effects' premultiplied, matted with the composition's colour):
    its edges' blue came into the blur at full weight, and the hidden pixels took the faintest edge's near-blue, so
    the opaque white text came out lavender (251,242,242 on average, G/R down to 196). The edges are now their own
    colour, white, and so is what fills the hidden pixels."""
    from stream.images import filled_behind

    picture, alpha = _lower_third(MATTE)
    filled = filled_behind(picture, alpha).astype(int)
    assert np.abs(filled - WHITE).max() <= 1


def test_straight_edges_are_kept_and_premultiplied_black_ones_made_straight():
    """A straight picture (a PNG cut-out's: its edges their own colour, black hidden behind) is left as it is;
    one premultiplied with black (edges a*colour) gets its own colour back."""
    from stream.images import filled_behind

    picture, alpha = _lower_third(None)
    semi = (alpha > 0) & (alpha < 255)
    np.testing.assert_array_equal(filled_behind(picture, alpha)[alpha > 0], picture[alpha > 0])
    dark = np.array([40, 90, 180])  # BGR, premultiplied with black
    premultiplied = np.round(dark * (alpha[..., None] / 255)).astype(np.uint8)
    filled = filled_behind(premultiplied, alpha).astype(int)
    assert np.abs(filled[semi] - dark).max() <= 8  # 0.5 level at alpha 15 is 8.5 straight
    assert np.abs(filled[alpha == 255] - dark).max() == 0


def test_a_prores_mov_says_apples_vendor_progressive_and_square_pixels(tmp_path):
    """QC read vendor FFMP in the sample description (the frame headers say apl0: Apple), field order unknown and
    no pixel aspect: now Apple's vendor, progressive ('fiel') and 1:1 ('pasp'); FFV1 in Matroska progressive too."""
    import av

    from stream.mp4_edit_list import _moov_payload

    given = _prores_4444(tmp_path / "lower_third.mov")
    _run(given, tmp_path / "out.mov")
    _run(given, tmp_path / "out.mkv", "--codec", "ffv1")
    with av.open(str(tmp_path / "out.mov")) as container:
        assert container.streams.video[0].metadata.get("vendor_id") == "appl"
    with open(tmp_path / "out.mov", "rb") as file:
        moov = _moov_payload(file)[1]
    assert b"fiel\x01\x00" in moov and b"pasp\x00\x00\x00\x01\x00\x00\x00\x01" in moov  # 1 field; 1:1
    with av.open(str(tmp_path / "out.mkv")) as container:
        assert container.streams.video[0].codec_context.field_order == 1


def test_an_mxfs_identity_and_writer_are_not_kept():
    """Matroska from an MXF kept its identity (MATERIAL_PACKAGE_UMID, UID, ...) and its writer's (COMPANY_NAME=FFmpeg,
    PRODUCT_NAME=OP1a Muxer, ...) as the output's own; the title and the recording's time are kept."""
    from stream.video_writer import kept_tags

    mxf = {"operational_pattern_ul": "060e2b34.04010101.0d010201.01010900",
           "uid": "adab4424-2f25-4dc7-92ff-000c00000000", "generation_uid": "adab4424-2f25-4dc7-92ff-000c00000001",
           "company_name": "FFmpeg", "product_name": "OP1a Muxer", "product_version_num": "59.27.100.0.0",
           "product_version": "59.27.100", "application_platform": "Lavf (linux)",
           "product_uid": "adab4424-2f25-4dc7-92ff-29bd000c0002", "toolkit_version_num": "59.27.100.0.0",
           "material_package_umid": "0x060A2B340101010501010D0013E452D15294713404E452D1005294713404E400",
           "material_package_name": "Package", "modification_date": "2024-01-01T10:00:00.000000Z"}
    kept = {"title": "Interview", "creation_time": "2024-01-01T09:00:00.000000Z"}
    assert kept_tags({**mxf, **kept}) == kept
    assert kept_tags({key.upper(): value for key, value in mxf.items()}) == {}  # a Matroska made from one


@pytest.mark.parametrize("suffix", [".mkv", ".webm", ".mp4"])
def test_the_video_track_is_flagged_default(tmp_path, suffix):
    """Matroska's video track came out with its default flag unset (players choose tracks by it)."""
    import av
    from av.stream import Disposition

    from stream.video_writer import VideoWriter

    writer = VideoWriter(tmp_path / f"out{suffix}", 64, 48, 10.0)
    for index in range(3):
        writer.write(np.full((48, 64, 3), 50 * index, np.uint8), index / 10)
    writer.close()
    with av.open(str(tmp_path / f"out{suffix}")) as container:
        assert container.streams.video[0].disposition & Disposition.default


def test_a_straight_photo_with_a_soft_drop_shadow_is_not_taken_for_matted():
    """A bright disc with a straight antialiased rim over a soft black drop shadow: the shadow's pixels beside the
    subject fit "matted with black", and the whole picture was un-matted: the disc's rim divided by its alpha came
    out near white (394 visible pixels moved, up to 211 levels). Its rim lies above what any matte allows, so it is
    left as it is; the same disc premultiplied with black is still made straight."""
    import cv2

    from stream.images import filled_behind

    height = width = 256
    yy, xx = np.mgrid[:height, :width]
    cover = np.clip(0.5 - (np.hypot(yy - 120, xx - 120) - 70), 0, 1)
    shadow = cv2.GaussianBlur(np.roll(np.roll(cover, 10, 0), 10, 1), (0, 0), 6) * 0.5
    alpha_f = cover + shadow * (1 - cover)
    share = np.where(alpha_f > 0, cover / np.maximum(alpha_f, 1e-6), 0)[..., None]
    straight = np.round(share * np.array([150, 190, 230], np.float32)).astype(np.uint8)
    alpha = np.round(alpha_f * 255).astype(np.uint8)
    visible = alpha >= 16
    out = filled_behind(straight.copy(), alpha)
    assert np.abs(out.astype(int) - straight)[visible].max() == 0
    matted = np.round(straight * (alpha[..., None] / 255.0)).astype(np.uint8)
    assert np.abs(filled_behind(matted, alpha).astype(int) - straight)[visible].max() <= 8
