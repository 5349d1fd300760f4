"""The sound path on a professional's files: 7.1 PCM in MOV in Apple's channel order (PyAV 18.1 double-freed its
channel map), the notice of a sound encoded again with a loss, and copied PCM cut exactly where a part ends."""
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from media import THROUGH_THE_WRITER, timeline

ROOT = Path(__file__).resolve().parents[1]
RATE = 48000
# MOV's 'chan' atom: the channel bitmap FFmpeg 8 writes for 7.1, and Apple's MPEG_7_1_C tag (L R C LFE Ls Rs Rls Rrs),
# which FFmpeg 5's muxer wrote for 7.1 and FFmpeg 8 reads as a custom order: FL FR FC LFE SL SR BL BR
BITMAP_7_1 = bytes.fromhex("00000000" "00010000" "0000063f")
APPLE_7_1 = bytes.fromhex("00000000" "00800008" "00000000")
APPLE_ORDER = ["FL", "FR", "FC", "LFE", "SL", "SR", "BL", "BR"]


def _pcm_mov(path: Path, layout: str, loud: int | None, seconds: float = 1.0, packet: int = 4608,
             pictures: int = 10) -> Path:
    """`pictures` black pictures at 10 fps and `seconds` of 24-bit PCM in `layout`, a tone on channel index `loud`
    alone (None: on all), in packets of `packet` samples."""
    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("pcm_s24le", rate=RATE, layout=layout)
        channels = audio.codec_context.layout.nb_channels
        for _ in range(pictures):
            container.mux(video.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="bgr24")))
        container.mux(video.encode(None))
        total = round(seconds * RATE)
        for first in range(0, total, packet):
            size = min(packet, total - first)
            tone = (2 ** 30 * np.sin(2 * np.pi * 440 * (first + np.arange(size)) / RATE)).astype(np.int32)
            samples = np.zeros((size, channels), np.int32)
            samples[:, slice(None) if loud is None else loud] = tone[:, None] if loud is None else tone
            frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s32", layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = RATE, first, Fraction(1, RATE)
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    return path


def _apple_7_1(path: Path, loud: int) -> Path:
    """7.1 PCM in MOV labelled in Apple's order, as FFmpeg 5 wrote it (pcm71.mov): a custom order to FFmpeg 8."""
    _pcm_mov(path, "7.1", loud)
    data = path.read_bytes()
    assert data.count(b"chan" + BITMAP_7_1) == 1
    path.write_bytes(data.replace(b"chan" + BITMAP_7_1, b"chan" + APPLE_7_1))
    return path


def _energy(path: Path) -> tuple[list[str], np.ndarray, float]:
    """The first audio stream's channel names, each channel's energy and where it ends (read with _samples: PyAV's
    to_ndarray of 8 planar channels reads a ninth)."""
    import av

    from stream.audio_track import _samples

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        names = [channel.name for channel in stream.codec_context.layout.channels]
        energy, end = np.zeros(len(names)), 0.0
        for frame in container.decode(stream):
            end = float(frame.time) + frame.samples / frame.sample_rate
            rows = _samples(frame).astype(np.float64)
            rows = rows if frame.format.is_planar else rows.reshape(-1, len(names)).T
            energy += (rows ** 2).sum(axis=1)
    return names, energy, end


def test_the_test_file_has_apples_custom_order(tmp_path):
    """What the crash needs: FFmpeg reads the file's 7.1 in a custom order (read here in a child: it crashed)."""
    src = _apple_7_1(tmp_path / "in.mov", loud=4)
    assert _layout_name(src) == f"8 channels ({'+'.join(APPLE_ORDER)})"


def _layout_name(path: Path) -> str:
    """The name of the first audio stream's layout, read in a child process (a custom order's crashes it after)."""
    probe = "import av,sys;print(av.open(sys.argv[1]).streams.audio[0].codec_context.layout.name,flush=True)"
    return subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True,
                          timeout=60).stdout.strip()


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".webm"])
def test_7_1_in_apples_order_is_encoded_again_without_a_crash(tmp_path, suffix):
    """pcm71.mov into .mp4, .avi or .webm ended in "double free or corruption" (exit 134, no file): PyAV 18.1 freed
    the decoder's channel map at a read of its layout. In a child process: the old crash ends it, not the tests.
    Each channel comes out where the file says it is: the one at index 4, Apple's Ls, on the side (SL)."""
    src = _apple_7_1(tmp_path / "in.mov", loud=4)
    out = tmp_path / f"out{suffix}"
    done = subprocess.run([sys.executable, "-c", THROUGH_THE_WRITER, str(src), str(out)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    names, energy, end = _energy(out)
    assert len(names) == 8 and names[int(np.argmax(energy))] == "SL"
    assert np.sort(energy)[-2] < 0.01 * energy.max()  # the others quiet
    assert end == pytest.approx(1.0, abs=0.03)


def test_7_1_in_apples_order_is_copied_as_it_is_into_mov(tmp_path):
    """.mov copies the PCM packets with their labels: no channel moves."""
    src = _apple_7_1(tmp_path / "in.mov", loud=4)
    out = tmp_path / "out.mov"
    done = subprocess.run([sys.executable, "-c", THROUGH_THE_WRITER, str(src), str(out)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _layout_name(out) == f"8 channels ({'+'.join(APPLE_ORDER)})"


@pytest.fixture
def untold(monkeypatch):
    """The notices of re-encoded sound, each said once a process, forgotten for the test."""
    monkeypatch.setattr("stream.audio_track._told", set(), raising=False)


def _write(src: Path, out: Path, cut_after: int | None = None) -> None:
    """`src`'s pictures into `out` with its sound; with `cut_after`, only that many, the sound ending with them
    (a part: --duration)."""
    from stream.sources import open_source
    from stream.video_writer import VideoWriter

    source = open_source(str(src))
    writer = VideoWriter(out, source.width, source.height, source.fps, source.audio_path)
    try:
        for index, frame in enumerate(source.frames()):
            if cut_after is not None and index == cut_after:
                break
            writer.write(frame.image, frame.pts_seconds)
    finally:
        writer.close(complete=cut_after is None)
        source.close()


@pytest.mark.parametrize(("suffix", "said"), [
    (".mp4", "the sound (24-bit PCM) is encoded again for .mp4 as AAC, which loses some of it; "
             "write .mov or .mkv to keep it as it is"),
    (".avi", "the sound (24-bit PCM) is encoded again for .avi as 16-bit PCM, which loses its finest detail; "
             "write .mov or .mkv to keep it as it is"),
    (".mov", None)])
def test_sound_encoded_again_with_a_loss_is_said_once(tmp_path, capsys, untold, suffix, said):
    """24-bit PCM became AAC in .mp4 and 16-bit PCM in .avi with a log line only, not shown by default."""
    src = _pcm_mov(tmp_path / "in.mov", "stereo", None)
    _write(src, tmp_path / f"one{suffix}")
    _write(src, tmp_path / f"two{suffix}")  # a batch's next input: not said again
    lines = [line for line in capsys.readouterr().err.splitlines() if "sound" in line]
    assert lines == ([f"depthcam: {said}"] if said else [])


def test_16_bit_pcm_into_avi_is_not_said(tmp_path, capsys, untold):
    """AVI's 16-bit PCM loses nothing of 16-bit PCM: no line."""
    import av

    src = tmp_path / "in.mkv"
    with av.open(str(src), "w") as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("pcm_s16le", rate=RATE, layout="mono")
        for _ in range(5):
            container.mux(video.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="bgr24")))
        container.mux(video.encode(None))
        frame = av.AudioFrame.from_ndarray(np.zeros((1, RATE // 2), np.int16), format="s16", layout="mono")
        frame.sample_rate, frame.pts = RATE, 0
        container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    _write(src, tmp_path / "out.avi")
    assert "sound" not in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".mov", ".mkv"])
def test_copied_pcm_ends_with_the_parts_last_picture(tmp_path, suffix):
    """A part (--duration) with its PCM copied: whole packets were kept, the sound ran on past the last picture
    (8 to 17 ms at the walkthrough's; here up to a 96 ms packet). PCM is cut at the sample (Matroska's clock: 1 ms)."""
    src = _pcm_mov(tmp_path / "in.mov", "stereo", None, seconds=1.0, packet=4608)
    out = tmp_path / f"out{suffix}"
    _write(src, out, cut_after=7)
    after = timeline(out)
    assert len(after["video"]) == 7
    assert after["audio_end"] == pytest.approx(0.7, abs=0.001)
    import av

    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.codec.canonical_name == "pcm_s24le"  # copied, not made anew
