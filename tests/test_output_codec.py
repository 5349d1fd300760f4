"""The video output's codec (--codec, output.codec): each codec written and read back, the conversion to 10-bit
4:2:2 and 4:4:4 against the exact one, the refusals, the config key and the flag, a run end to end."""
import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stream import video_writer
from stream.config import OutputConfig, load_config
from stream.errors import UserError
from stream.video_writer import OUTPUT_CODECS, VideoWriter
from tests.test_cli import assert_one_clear_line, depthcam as run_depthcam

REPO = Path(__file__).resolve().parents[1]
SD, HD = (160, 120), (1280, 720)


def depthcam(*args, timeout=180):  # the end-to-end runs take longer than the command-line tests' 120 s
    return run_depthcam(*args, timeout=timeout)


def patch_and_ramp(width: int, height: int) -> np.ndarray:
    """A flat colour patch on the left, a colour ramp (blue up, red down) on the right."""
    image = np.empty((height, width, 3), np.uint8)
    image[:, :width // 2] = (30, 120, 200)
    ramp = np.linspace(0, 255, width - width // 2).round().astype(np.uint8)
    image[:, width // 2:, 0], image[:, width // 2:, 1], image[:, width // 2:, 2] = ramp, 128, 255 - ramp
    return image


def write(path: Path, image: np.ndarray, frames: int = 10, **options) -> Path:
    writer = VideoWriter(path, image.shape[1], image.shape[0], 25, **options)
    for _ in range(frames):
        writer.write(image)
    writer.close()
    return path


def read_back(path: Path) -> tuple[object, list]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(video=0))
        return stream, frames


@pytest.mark.parametrize("codec, suffix, decoder, pix_fmt, tolerance", [
    ("h264", ".mp4", "h264", "yuv420p", 6),
    ("hevc", ".mp4", "hevc", "yuv420p", 6),
    ("hevc", ".mov", "hevc", "yuv420p", 6),
    ("hevc", ".mkv", "hevc", "yuv420p", 6),
    ("prores", ".mov", "prores", "yuv422p10le", 3),
    ("prores", ".mkv", "prores", "yuv422p10le", 3),
    ("ffv1", ".mkv", "ffv1", "yuv444p10le", 0),
    ("ffv1", ".avi", "ffv1", "yuv444p10le", 0),
    ("vp9", ".mkv", "vp9", "yuv420p", 8),
])
def test_each_codec_round_trips(tmp_path, codec, suffix, decoder, pix_fmt, tolerance):
    image = patch_and_ramp(*SD)
    out = write(tmp_path / f"out{suffix}", image, codec=codec)
    stream, frames = read_back(out)
    context = stream.codec_context
    assert (context.name, context.pix_fmt, len(frames)) == (decoder, pix_fmt, 10)
    if suffix != ".avi":  # AVI carries no colour tags
        assert (context.colorspace, context.color_range, context.color_primaries, context.color_trc) == (6, 1, 1, 1)
    if codec == "hevc" and suffix != ".mkv":
        assert stream.codec_tag == "hvc1"  # Apple's players play it
    shown = frames[-1].to_ndarray(format="bgr24").astype(int)
    patch = np.abs(shown[:, 4:SD[0] // 2 - 4] - image[:, 4:SD[0] // 2 - 4]).max()
    assert patch <= max(1, tolerance)  # ProRes: within a code value on a flat patch
    assert np.abs(shown - image).mean() <= max(tolerance, 0.01) / 2
    if codec == "ffv1":  # lossless: the pictures written come back exactly
        assert np.array_equal(shown, image)


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv"])
@pytest.mark.parametrize("pictures", [1, 2, 3])
def test_hevc_of_one_or_two_pictures_is_written(tmp_path, suffix, pictures):
    """x265 left its decoding times unset in a stream of fewer than three pictures: MP4's muxer refused nine
    runs in ten ("Invalid argument"), Matroska's one in five (a 2-frame clip, or a run stopped that early)."""
    image = patch_and_ramp(*SD)
    for attempt in range(4):
        _, frames = read_back(write(tmp_path / f"out{attempt}{suffix}", image, frames=pictures, codec="hevc"))
        assert len(frames) == pictures
        assert np.abs(frames[-1].to_ndarray(format="bgr24").astype(int) - image).mean() <= 3


def _planes(frame) -> list[np.ndarray]:
    return [np.frombuffer(plane, np.uint16).reshape(plane.height, -1)[:, :plane.width].astype(float)
            for plane in frame.planes]


def _exact(image: np.ndarray, hd: bool) -> np.ndarray:
    """Y, Cb, Cr of a BGR picture at 10 bits, limited range, computed in floating point (BT.709 or BT.601)."""
    kr, kb = (0.2126, 0.0722) if hd else (0.299, 0.114)
    b, g, r = (image[..., i].astype(float) / 255 for i in range(3))
    y = kr * r + (1 - kr - kb) * g + kb * b
    return np.stack([64 + 876 * y, 512 + 896 * (b - y) / (2 - 2 * kb), 512 + 896 * (r - y) / (2 - 2 * kr)])


@pytest.mark.parametrize("pix_fmt", ["yuv422p10le", "yuv444p10le"])
@pytest.mark.parametrize("size", [(256, 8), (1280, 8)], ids=["bt601", "bt709"])
def test_ten_bit_pictures_are_within_a_code_value_of_the_exact_conversion(tmp_path, monkeypatch, pix_fmt, size):
    # FFV1 stores the converted picture exactly: the 4:2:2 one is ProRes's
    monkeypatch.setitem(OUTPUT_CODECS, "ffv1", dataclasses.replace(OUTPUT_CODECS["ffv1"], pix_fmt=pix_fmt))
    image = patch_and_ramp(*size)
    _, frames = read_back(write(tmp_path / "out.mkv", image, frames=1, codec="ffv1"))
    y, cb, cr = _planes(frames[0])
    exact = _exact(image, hd=size[0] >= 1280)
    assert np.abs(y - exact[0]).max() <= 1
    if pix_fmt == "yuv422p10le":  # a chroma sample is its two pictures' mean
        exact = np.concatenate([exact[:1, :, ::2], exact[1:].reshape(2, size[1], -1, 2).mean(axis=3)])
    half = cb.shape[1] // 2
    inside = np.r_[0:half - 2, half + 2:cb.shape[1] - 1]  # not across the patch's edge, which the filter blends
    for measured, wanted in ((cb, exact[1]), (cr, exact[2])):
        assert np.abs(measured[:, inside] - wanted[:, inside]).max() <= 1
    flat = _exact(np.array([[[30, 120, 200]]], np.uint8), hd=size[0] >= 1280)[:, 0, 0]
    assert np.abs(np.array([y[0, 0], cb[0, 0], cr[0, 0]]) - flat).max() <= 1


@pytest.mark.parametrize("codec, size, stored", [("prores", (33, 21), (34, 21)), ("ffv1", (33, 21), (33, 21)),
                                                 ("hevc", (65, 65), (66, 66)), ("h264", (33, 21), (34, 22))])
def test_odd_sizes_are_padded_only_where_the_chroma_is_halved(tmp_path, codec, size, stored):
    suffix = ".mkv"
    stream, frames = read_back(write(tmp_path / f"odd{suffix}", patch_and_ramp(*size), frames=3, codec=codec))
    assert (stream.codec_context.width, stream.codec_context.height) == stored and len(frames) == 3


@pytest.mark.parametrize("codec, suffix, holders, held", [
    ("prores", ".mp4", ".mov or .mkv", "h264 or hevc"),
    ("prores", ".webm", ".mov or .mkv", "vp9"),
    ("ffv1", ".mp4", ".mkv or .avi", "h264 or hevc"),
    ("hevc", ".avi", ".mp4 or .mov or .mkv", "ffv1 or mpeg4"),
])
def test_a_codec_the_container_cannot_hold_is_refused_before_anything_is_written(tmp_path, codec, suffix, holders,
                                                                                held):
    out = tmp_path / f"out{suffix}"
    with pytest.raises(UserError) as refused:
        VideoWriter(out, 64, 48, 25, codec=codec)
    said = str(refused.value)
    assert "\n" not in said and f"into {holders}, not {suffix};" in said and f"give {suffix} {held}" in said, said
    assert not out.exists() and not list(tmp_path.iterdir())


def test_hevc_refuses_pictures_smaller_than_x265_takes(tmp_path):
    with pytest.raises(UserError, match="at least 64 px a side .* choose codec h264"):
        VideoWriter(tmp_path / "tiny.mp4", 48, 32, 25, codec="hevc")


def test_auto_keeps_an_editing_codec_where_the_container_holds_it(tmp_path, caplog):
    out = write(tmp_path / "out.mov", patch_and_ramp(*SD), frames=2, input_codec="prores")
    assert read_back(out)[0].codec_context.name == "prores"
    assert "ProRes 422 HQ, as the input is in prores" in caplog.text and "--codec h264" in caplog.text
    caplog.clear()
    for name, suffix, written in (("mp4", ".mp4", "h264"), ("webm", ".webm", "vp9"), ("h264in", ".mov", "h264")):
        given = "h264" if name == "h264in" else "dnxhd"
        out = write(tmp_path / f"{name}{suffix}", patch_and_ramp(*SD), frames=2, input_codec=given)
        assert read_back(out)[0].codec_context.name == written
    assert not caplog.text  # the container's own codec, as before: nothing to say
    out = write(tmp_path / "lossless.mkv", patch_and_ramp(*SD), frames=2, input_codec="ffv1")
    assert read_back(out)[0].codec_context.name == "ffv1"


def test_the_table_and_the_config_name_the_same_codecs():
    assert OutputConfig.CODECS == ("auto", *OUTPUT_CODECS)
    assert set(OutputConfig.ALIASES.values()) <= set(OUTPUT_CODECS)


def test_the_config_key_and_the_flag(tmp_path):
    config = tmp_path / "pro.yaml"
    config.write_text("output:\n  codec: prores\n")
    assert load_config(str(config)).output.codec == "prores"
    assert load_config(str(config), {"output.codec": "ffv1"}).output.codec == "ffv1"  # the flag wins
    assert load_config(str(config), {"output.codec": None}).output.codec == "prores"
    assert load_config(None).output.codec == "auto"
    config.write_text("output:\n  codec: H265\n")
    assert load_config(str(config)).output.codec == "hevc"
    config.write_text("output:\n  codec: prores4444\n")
    with pytest.raises(UserError, match=r"line 2: output.codec must be one of auto, h264.*\(did you mean prores\?\)"):
        load_config(str(config))


def test_a_misspelt_codec_flag_is_answered_with_the_one_meant():
    assert_one_clear_line(depthcam("run", "synthetic:portrait?frames=2", "-o", "null", "--codec", "prorez"),
                          "--codec", "did you mean prores?")


def test_a_codec_the_output_cannot_hold_is_refused_before_the_run(tmp_path):
    out = tmp_path / "x.mp4"
    assert_one_clear_line(depthcam("run", "synthetic:portrait?frames=2&size=96x64", "-o", str(out), "--codec",
                                   "prores"), "-o", "depthcam writes ProRes 422 HQ (codec prores) into .mov or .mkv, not .mp4")
    assert not out.exists()


def test_a_timecode_is_refused_with_what_to_write_instead_for_an_input_without_a_rate():
    assert_one_clear_line(depthcam("run", "synthetic:portrait?frames=2", "-o", "null", "--start", "01:00:01:00"),
                          "--start", "is a timecode (HH:MM:SS:FF)", "seconds or [HH:]MM:SS.s")
    assert_one_clear_line(depthcam("run", "synthetic:portrait?frames=2", "-o", "null", "--duration", "00:00:01;12"),
                          "--duration", "is a timecode")
    from stream.cli import _time

    assert _time("1:02:03.5") == 3723.5 and _time("90") == 90.0  # times as before


def test_a_run_writes_prores_end_to_end(tmp_path):
    from test_models import _first_channel_model

    model = _first_channel_model(tmp_path / "any_size.onnx")
    out = tmp_path / "x.mov"
    ran = depthcam("run", "synthetic:portrait?frames=4&size=96x64", "-o", str(out), "--codec", "prores",
                   "--model", str(model), "--model-size", "48x32", "--model-input", "unit", "--refine", "off",
                   "--no-progress")
    assert ran.returncode == 0, ran.stderr
    stream, frames = read_back(out)
    assert (stream.codec_context.name, stream.codec_context.pix_fmt, len(frames)) == ("prores", "yuv422p10le", 4)
    assert stream.codec_tag == "apch"  # 422 HQ


KILLED_PRORES = """
import os, signal, sys
import numpy as np
from pathlib import Path
from stream.video_writer import VideoWriter
writer = VideoWriter(Path(sys.argv[1]), 160, 120, 30, codec="prores")
for i in range(150):
    writer.write(np.full((120, 160, 3), (i * 5) % 255, np.uint8), i / 30)
os.kill(os.getpid(), signal.SIGKILL)  # no close(): a crash, a power cut, the OOM killer
"""


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGKILL"), reason="needs SIGKILL")
def test_a_killed_prores_run_keeps_what_it_wrote(tmp_path):
    import av

    if video_writer.container_options(".mov") is None:
        pytest.skip("this PyAV's FFmpeg is older than 7.1: .mov is written the plain way, playable once closed")
    out = tmp_path / "killed.mov"
    subprocess.run([sys.executable, "-c", KILLED_PRORES, str(out)], cwd=REPO, timeout=120)
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "prores"
        decoded = sum(1 for _ in container.decode(video=0))
    assert decoded >= 100  # of 150: the last second may be lost


def test_a_prores_input_written_to_mov_stays_prores_and_the_run_says_so(tmp_path):
    from test_models import _first_channel_model

    model = _first_channel_model(tmp_path / "any_size.onnx")
    given = write(tmp_path / "edit.mov", patch_and_ramp(96, 64), frames=3, codec="prores")
    options = ("--model", str(model), "--model-size", "48x32", "--model-input", "unit", "--refine", "off",
               "--no-progress")
    kept = depthcam("run", str(given), "-o", str(tmp_path / "out.mov"), *options)
    assert kept.returncode == 0, kept.stderr
    assert "out.mov: written in ProRes 422 HQ, as the input is in prores" in kept.stderr
    assert read_back(tmp_path / "out.mov")[0].codec_context.name == "prores"
    asked = depthcam("run", str(given), "-o", str(tmp_path / "small.mov"), "--codec", "h264", *options)
    assert asked.returncode == 0 and "written in" not in asked.stderr, asked.stderr
    assert read_back(tmp_path / "small.mov")[0].codec_context.name == "h264"
