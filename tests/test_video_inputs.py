"""Recorded videos as cameras, phones and tagging tools really leave them: non-square pixels, mirrored phone
video, damaged spots, album covers, a disk that fills up."""

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from media import damage, make_timed_video, make_video, make_with_cover_art, probe, square_size
from stream.errors import UserError
from stream.sources import open_source
from stream.synthetic import SyntheticPortrait, SyntheticScene
from stream.video_writer import VideoWriter


def _copy(source_path: Path, out_path: Path) -> None:
    source = open_source(str(source_path))
    writer = VideoWriter(out_path, source.width, source.height, source.fps, source.audio_path)
    for frame in source.frames():
        writer.write(frame.image, frame.pts_seconds)
    writer.close()
    source.close()


def _error(image: np.ndarray, truth: np.ndarray) -> float:
    return float(np.abs(image.astype(float) - truth).mean())


def _first_picture(path: Path) -> tuple[np.ndarray, str]:
    source = open_source(str(path))
    try:
        return next(source.frames()).image, source.description
    finally:
        source.close()


@pytest.mark.parametrize("stored, sar", [
    ((180, 144), Fraction(64, 45)),  # 16:9 anamorphic PAL (720x576), scaled down
    ((150, 120), Fraction(16, 15)),  # 4:3 PAL DV
    ((144, 96), Fraction(8, 9)),     # 4:3 NTSC DV: pixels narrower than high
])
def test_non_square_pixels_are_processed_and_written_square(tmp_path, stored, sar):
    """The network, the face detector and the round blur need the picture in its true shape: the frames are
    scaled to square pixels (the height kept), and the output, square, shows as the input did."""
    import av

    square = square_size(stored, sar)
    path = make_video(tmp_path / "dv.mkv", frames=3, fps=25, size=stored, sar=sar, audio_codec=None)
    first, description = _first_picture(path)
    truth, _ = SyntheticPortrait(SyntheticScene(*square)).render(0)
    assert first.shape == truth.shape and "square pixels" in description
    assert _error(first, truth) < 6
    _copy(path, tmp_path / "out.mp4")
    written = probe(tmp_path / "out.mp4")
    assert (written["width"], written["height"], written["frames"]) == (*square, 3)
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert container.streams.video[0].sample_aspect_ratio in (None, 0, 1)


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_a_mirrored_phone_video_is_shown_as_its_display_matrix_says(tmp_path, rotation):
    """A front camera may store its picture mirrored, with a display matrix that mirrors it back: the
    rotation alone was applied (a mirror alone reads as a 180° rotation: the picture came out upside down)."""
    upright = (96, 128)
    path = make_video(tmp_path / "selfie.mp4", frames=3, fps=12, size=upright, rotation=rotation, mirror=True,
                      audio_codec=None)
    first, description = _first_picture(path)
    truth, _ = SyntheticPortrait(SyntheticScene(*upright)).render(0)
    assert first.shape == truth.shape
    error = _error(first, truth)
    assert error < 6 and error * 4 < _error(first, truth[:, ::-1])  # H.264 loss vs a mirror left in
    assert "mirrored" in description
    _copy(path, tmp_path / "out.mp4")
    written = probe(tmp_path / "out.mp4")
    assert (written["width"], written["height"], written["rotation"]) == (*upright, 0)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_damaged_spot_is_skipped_and_the_pictures_after_it_processed(tmp_path, capsys, suffix):
    """As FFmpeg's players do: the decoder refusing one packet ended the run there (frame 40 of 96)."""
    times = [i / 24 for i in range(96)]
    path = damage(make_timed_video(tmp_path / f"in{suffix}", times, fps=24, size=(160, 120), audio_codecs=(),
                                   keyframe_every=12), picture=40)
    source = open_source(str(path))
    frames = list(source.frames())
    source.close()
    assert len(frames) >= 90 and frames[-1].pts_seconds == pytest.approx(times[-1], abs=1e-3)
    told = [line for line in capsys.readouterr().err.splitlines() if "damaged" in line]
    assert len(told) == 1 and "skipped" in told[0], told
    assert source.truncation_warning() is None


@pytest.mark.parametrize("suffix, options", [(".mkv", None), (".mp4", {"movflags": "faststart"})])
def test_a_file_cut_short_still_ends_with_the_truncation_warning(tmp_path, suffix, options):
    """A broken download: the pictures up to the cut are processed and the run ends with the warning."""
    whole = make_timed_video(tmp_path / f"whole{suffix}", [i / 24 for i in range(96)], fps=24, size=(160, 120),
                             audio_codecs=(), keyframe_every=12, container_options=options)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    source = open_source(str(cut))
    frames = list(source.frames())
    source.close()
    assert 10 < len(frames) < 96 and "it may be truncated" in source.truncation_warning()


@pytest.mark.parametrize("name, container_format", [("song.mp3", None), ("song.m4a", "mp4")])
def test_sound_with_cover_art_is_refused_as_having_no_video(tmp_path, name, container_format):
    """The album cover decodes as one picture: it was taken for a one-frame video at 90000 fps."""
    path = make_with_cover_art(tmp_path / name, container_format=container_format)
    with pytest.raises(UserError, match="no video, only cover art") as refusal:
        open_source(str(path))
    assert "\n" not in str(refusal.value)


def test_a_video_with_cover_art_is_read_from_its_video_stream(tmp_path):
    path = make_with_cover_art(tmp_path / "clip.mp4", video_frames=10)
    import av

    with av.open(str(path)) as container:  # the cover comes first, as the test means it to
        assert container.streams.video[0].disposition & av.stream.Disposition.attached_pic
    source = open_source(str(path))
    assert (source.width, source.height, source.fps) == (64, 48, 10.0)
    assert len(list(source.frames())) == 10
    source.close()
    source = open_source(str(path))
    source.set_range(0.6, None)  # a jump, and a file opened anew, keep to the video stream too
    assert len(list(source.frames())) == 4
    source.close()


@pytest.fixture
def small_disk(tmp_path):
    """A 96 KiB file system (tmpfs): needs root, else the test is skipped."""
    import os
    import subprocess

    folder = tmp_path / "small_disk"
    folder.mkdir()
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_disk_that_fills_up_mid_mp4_is_said_and_what_was_written_plays(small_disk):
    """The write's ENOSPC reaches the pipeline (which says "the disk is full ... write the output to another
    disk" and exits 1), and the fragments that reached the disk play (FFmpeg's hybrid MP4), up to a last
    picture cut in two, which is skipped: what the run can keep, with no room to write more."""
    import errno

    from stream.errors import PipelineError
    from stream.video_writer import container_options

    if container_options(".mp4") is None:
        pytest.skip("an FFmpeg older than 7.1 writes MP4 the plain way: its index comes only at the end")
    scene = SyntheticPortrait(SyntheticScene(320, 240))
    out = small_disk / "out.mp4"
    writer = VideoWriter(out, 320, 240, 30)
    with pytest.raises(OSError) as full:
        for index in range(300):
            writer.write(scene.render(index)[0], index / 30)
    assert full.value.errno == errno.ENOSPC
    assert str(PipelineError("write", full.value)).startswith("the disk is full")
    with pytest.raises((OSError, RuntimeError)):  # the trailer finds no room either, or is left out
        writer.close()
    source = open_source(str(out))
    assert len(list(source.frames())) >= 30  # the first one-second fragment at least
    source.close()


def test_an_mp4_through_a_pipe_says_why_it_gives_no_picture(tmp_path):
    """`cat clip.mp4 | depthcam run /dev/stdin`: the index at the end of an MP4 is out of a pipe's reach; the run
    said the input was damaged, then that it held no decodable frame."""
    import subprocess
    import sys

    import av

    clip = tmp_path / "clip.mp4"
    noise = np.random.default_rng(0).integers(0, 256, (12, 240, 320, 3), dtype=np.uint8)
    with av.open(str(clip), "w") as container:  # noise: ~1 MB, beyond what the demuxer reads ahead
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for image in noise:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode(None))
    result = subprocess.run([sys.executable, "-m", "stream", "run", "/dev/stdin", "-o", str(tmp_path / "out.mp4"),
                             "--refine", "off", "--no-progress"], input=clip.read_bytes(), capture_output=True,
                            timeout=120, cwd=Path(__file__).resolve().parents[1])
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "Traceback" not in stderr
    assert [line for line in stderr.splitlines() if line.startswith("depthcam:")] == [
        "depthcam: error: /dev/stdin gave no picture through the pipe: an MP4 or MOV whose index comes at its end "
        "cannot be read so (a pipe cannot go back for it); give the file itself, or pipe one made with "
        "-movflags +faststart (or MPEG-TS, MKV)"]


def test_a_gif_holding_its_last_picture_is_not_taken_for_truncated(tmp_path):
    """A GIF that holds its last picture 3 s was 'announced 3.4 s of video but its pictures end after 0.5 s'."""
    from PIL import Image

    pictures = [Image.fromarray(np.full((32, 48, 3), 40 * i, np.uint8)) for i in range(5)]
    pictures[0].save(tmp_path / "hold.gif", save_all=True, append_images=pictures[1:],
                     duration=[100, 100, 100, 100, 3000], loop=0)
    source = open_source(str(tmp_path / "hold.gif"))
    try:
        assert len(list(source.frames())) == 5
        assert source.truncation_warning() is None
    finally:
        source.close()
    cut = tmp_path / "cut.mkv"  # the warning itself still stands where pictures are missing
    make_video(cut, frames=48, audio_codec=None)
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    source = open_source(str(cut))
    try:
        list(source.frames())
        assert "it may be truncated" in (source.truncation_warning() or "")
    finally:
        source.close()
