"""The built-in sample: a short clip panned and zoomed over a real photo that scikit-image ships
(the astronaut Eileen Collins), with a soft tone as its sound track so the audio path shows too."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

SAMPLE_SIZE = (640, 480)
SAMPLE_FPS = 24
SAMPLE_SECONDS = 4
AUDIO_RATE = 44100


def sample_frames(frames: int = SAMPLE_FPS * SAMPLE_SECONDS, size: tuple[int, int] = SAMPLE_SIZE):
    from skimage import data

    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)  # 512 x 512
    h, w = photo.shape[:2]
    out_w, out_h = size
    aspect = out_w / out_h
    for i in range(frames):
        t = i / max(frames - 1, 1)
        zoom = 1.0 + 0.25 * t  # a slow push-in while panning from left to right
        crop_w = w / zoom
        crop_h = crop_w / aspect
        x0 = (w - crop_w) * (0.2 + 0.6 * t)
        y0 = (h - crop_h) * 0.35
        matrix = np.array([[out_w / crop_w, 0, -x0 * out_w / crop_w], [0, out_h / crop_h, -y0 * out_h / crop_h]])
        yield cv2.warpAffine(photo, matrix, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def write_sample(path: Path) -> Path:
    """Write the sample clip (H.264 + AAC) once; later calls reuse it, unless it no longer decodes
    (an interrupted copy, a file put in its place): then it is written again."""
    if path.is_file() and _decodes(path):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part.mp4")
    try:
        _encode_sample(partial)
        partial.replace(path)
    except BaseException:  # a full disk, Ctrl-C: no half clip left beside it
        partial.unlink(missing_ok=True)
        raise
    return path


def _encode_sample(partial: Path) -> None:
    import av

    frames = SAMPLE_FPS * SAMPLE_SECONDS
    with av.open(str(partial), "w") as container:
        video = container.add_stream("libx264", rate=SAMPLE_FPS)
        video.width, video.height = SAMPLE_SIZE
        video.pix_fmt = "yuv420p"
        video.options = {"crf": "18", "preset": "veryfast"}
        audio = container.add_stream("aac", rate=AUDIO_RATE)
        for image in sample_frames(frames):
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        t = np.arange(AUDIO_RATE * SAMPLE_SECONDS) / AUDIO_RATE
        tone = (0.2 * np.sin(2 * np.pi * 220 * t) * np.minimum(1, 4 * t) * np.minimum(1, 4 * (SAMPLE_SECONDS - t)))
        tone = tone.astype(np.float32)
        block = audio.codec_context.frame_size or 1024
        for start in range(0, len(tone), block):
            chunk = tone[start:start + block]
            if len(chunk) < block:
                chunk = np.pad(chunk, (0, block - len(chunk)))
            frame = av.AudioFrame.from_ndarray(chunk[None], format="fltp", layout="mono")
            frame.sample_rate = AUDIO_RATE
            frame.pts = start
            frame.time_base = Fraction(1, AUDIO_RATE)
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode(None):
            container.mux(packet)


def _decodes(path: Path) -> bool:
    """Whether `path` opens as the sample: a video stream whose frames all decode, at the sample's size."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frames = sum(1 for _ in container.decode(stream))
            return (stream.codec_context.width, stream.codec_context.height) == SAMPLE_SIZE and \
                frames == SAMPLE_FPS * SAMPLE_SECONDS
    except (av.error.FFmpegError, IndexError, OSError):
        return False
