"""Review 17's defects: joins missed in 1-8 MiB MPEG-TS files, an APNG's default image played, a GIF wider than it
holds, opaque GIFs/APNGs taken for transparent ones; and a guard: SIGTERM during a GIF's run finalises it."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from stream.errors import UserError

REPO = Path(__file__).resolve().parents[1]
FPS = 25


def _noise_clip(path: Path, clip: int, seconds: float) -> Path:
    """An MPEG-TS clip of noise (~250 kB/s), its first rows telling the clip and picture number."""
    import av

    rng = np.random.default_rng(clip)
    with av.open(str(path), "w", format="mpegts") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        video.codec_context.gop_size = FPS // 2
        for index in range(round(seconds * FPS)):
            image = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
            image[:8] = (40 + 80 * clip, 10 + 8 * (index % 30), 20 + 20 * (index // 30))
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    return path


def _tag(image: np.ndarray) -> tuple[int, int]:
    """The clip and picture number drawn in `image`'s first rows."""
    blue, green, red = image[:8].reshape(-1, 3).mean(0)
    return round((blue - 40) / 80), round((green - 10) / 8) + 30 * round((red - 20) / 20)


@pytest.mark.parametrize("seconds, start, shown", [([6.0, 0.2, 6.0], 6.3, (2, 2)), ([0.12, 8.0], 1.0, (1, 22))])
def test_a_short_clip_between_close_samples_is_found(tmp_path, seconds, start, shown):
    """A 1-8 MiB file: its samples fall under JOIN_SCAN_BYTES apart, and a pair whose times go on over a join (the
    clip between shorter than their spacing) was dropped: the length was short by that clip, and --start landed
    that clip's length late."""
    from stream.sources import VIDEO_TIME, open_source

    path = tmp_path / "joined.ts"
    path.write_bytes(b"".join(_noise_clip(tmp_path / f"c{i}.ts", i, s).read_bytes() for i, s in enumerate(seconds)))
    source = open_source(str(path))
    try:
        assert source.progress_seconds == pytest.approx(sum(seconds), abs=1e-3)
        origin = source._first.time
        source.set_range(start, None)
        first = next(iter(source.frames()))
        assert _tag(first.image) == shown and source.first_clip == shown[0]
        assert first.extra[VIDEO_TIME] - origin == pytest.approx(start, abs=0.03)
    finally:
        source.close()


def test_an_apng_default_image_is_not_a_picture_of_the_animation(tmp_path):
    """An APNG's default image (for viewers without APNG; Pillow's picture 0) was played as the first picture of a
    transparent APNG; FFmpeg and browsers play the animation's pictures only."""
    from PIL import Image

    from stream.animations import animation_source

    default = Image.new("RGBA", (64, 48), (255, 0, 0, 128))
    frames = [Image.new("RGBA", (64, 48), (0, 255 * (i % 2), 255, 128)) for i in range(4)]
    path = tmp_path / "anim.apng"
    default.save(path, save_all=True, append_images=frames, default_image=True, duration=200, loop=0)
    source = animation_source(path)
    assert source is not None
    try:
        assert source.frame_count == 4
        pictures = list(source.frames())
        assert len(pictures) == 4
        assert [picture.pts_seconds for picture in pictures] == pytest.approx([0.0, 0.2, 0.4, 0.6])
        assert pictures[0].image[24, 32, 2] < 200 and pictures[0].image[24, 32, 0] > 200  # blue, not the red default
        assert pictures[1].image[24, 32, 1] > 200  # the animation's second picture: cyan
    finally:
        source.close()


def test_a_gif_wider_than_it_holds_is_refused_before_the_run():
    """A GIF's sides are 16-bit: a wider output failed at its write, after the whole run."""
    from stream.images import check_image_size

    check_image_size("-o", "wide.gif", 65535, 40)
    check_image_size("-o", "wide.apng", 70000, 40)
    with pytest.raises(UserError, match=r"^-o wide\.gif: \.gif images are at most 65535 px a side and this one is "
                                        r"70000x40; use \.png$"):
        check_image_size("-o", "wide.gif", 70000, 40)


def _ffmpeg_gif(path: Path) -> Path:
    """A GIF as FFmpeg's recommended palettegen/paletteuse makes it: opaque, with a transparent colour reserved."""
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=160x120:rate=10:duration=2", "-vf", "split[a][b];[a]palettegen[p];[b][p]paletteuse",
                    str(path)], check=True)
    return path


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command")
def test_an_opaque_ffmpeg_gif_is_not_taken_for_a_transparent_one(tmp_path):
    """Its reserved transparent colour (no pixel of it) made it an AnimationSource, which --start/--duration then
    refused; FFmpeg reads it, as before."""
    from stream.animations import _gif_transparent, animation_source

    path = _ffmpeg_gif(tmp_path / "clip.gif")
    assert not _gif_transparent(path) and animation_source(path) is None


def test_an_opaque_apng_with_an_alpha_channel_is_read_as_a_video(tmp_path):
    """An alpha channel alone (every pixel opaque) made an APNG transparent; one shown through later still is."""
    from PIL import Image

    from stream.animations import animation_source

    opaque = [Image.new("RGBA", (32, 24), (10, 20 + 40 * i, 30, 255)) for i in range(3)]
    path = tmp_path / "opaque.png"
    opaque[0].save(path, save_all=True, append_images=opaque[1:], duration=100, loop=0)
    assert animation_source(path) is None
    later = tmp_path / "later.png"
    opaque[0].save(later, save_all=True, append_images=[*opaque[1:], Image.new("RGBA", (32, 24))], duration=100)
    assert animation_source(later) is not None


def _read_into(stream, into: list[str]) -> None:
    while chunk := os.read(stream.fileno(), 4096):
        into.append(chunk.decode(errors="replace"))


def _long_gif(path: Path) -> Path:
    """An opaque GIF of 600 pictures (60 s), read through FFmpeg."""
    from PIL import Image

    pictures = [Image.fromarray(np.full((48, 64, 3), (i % 200, 90, 200 - i % 200), np.uint8)) for i in range(600)]
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=100, loop=0)
    return path


def test_sigterm_while_writing_a_gif_finalises_it(shared_models, tmp_path):
    """A stop of a run writing a GIF says how many pictures it holds, exit 130 (it once ended in an AttributeError,
    exit 1)."""
    from PIL import Image

    out = tmp_path / "out.gif"
    source = _long_gif(tmp_path / "long.gif")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}
    process = subprocess.Popen([sys.executable, "-m", "stream", "run", str(source), "-o", str(out),
                                "--refine", "off"],
                               cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    said: list[str] = []
    reader = threading.Thread(target=_read_into, args=(process.stderr, said), daemon=True)
    reader.start()
    deadline = time.monotonic() + 180  # a fresh machine compiles the kernels first
    while time.monotonic() < deadline and process.poll() is None and "frame/s" not in "".join(said)[-400:]:
        time.sleep(0.2)
    time.sleep(1.0)  # some pictures written
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        process.wait()
    reader.join(5)
    stderr = "".join(said)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "error" not in stderr
    said_line = [line for line in stderr.replace("\r", "\n").splitlines() if "interrupted after" in line]
    assert len(said_line) == 1 and said_line[0].endswith("out.gif is finalised and playable up to there"), stderr
    frames = int(said_line[0].split("interrupted after ")[1].split()[0])
    with Image.open(out) as image:
        assert frames > 0 and image.n_frames == frames
