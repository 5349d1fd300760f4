"""Builds real test videos with PyAV: H.264 pictures and an audio track with a known tone."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from stream.synthetic import SyntheticPortrait, SyntheticScene


# How a phone stores a picture meant to be shown turned by a display rotation (counter-clockwise).
STORED_TURN = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def make_video(path: Path, frames: int = 24, fps: int = 24, size: tuple[int, int] = (160, 120),
               audio_codec: str | None = "aac", sample_rate: int = 44100, rotation: int = 0) -> Path:
    """The synthetic portrait as an H.264 file. `rotation` (0, 90, 180, 270): stored as a phone does,
    turned, with a display matrix that turns it back (`size` is then the upright size)."""
    import av

    scene = SyntheticPortrait(SyntheticScene(*size))
    stored = size[::-1] if rotation in (90, 270) else size
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height = stored
        video.pix_fmt = "yuv420p"
        if rotation:
            video.set_display_rotation(rotation)
        audio = container.add_stream(audio_codec, rate=sample_rate) if audio_codec else None
        for i in range(frames):
            image, _ = scene.render(i)
            if rotation:
                image = np.ascontiguousarray(cv2.rotate(image, STORED_TURN[rotation]))
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if audio is not None:
            seconds = frames / fps
            t = np.arange(int(sample_rate * seconds)) / sample_rate
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            fmt = audio.codec_context.format.name
            block = audio.codec_context.frame_size or 1024
            for start in range(0, len(tone), block):
                chunk = tone[start:start + block][None]
                if fmt.startswith("s16"):
                    frame = av.AudioFrame.from_ndarray((chunk * 32767).astype(np.int16), format="s16", layout="mono")
                else:
                    if chunk.shape[1] < block:
                        chunk = np.pad(chunk, ((0, 0), (0, block - chunk.shape[1])))
                    frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                frame.sample_rate = sample_rate
                frame.pts = start
                frame.time_base = Fraction(1, sample_rate)
                for packet in audio.encode(frame):
                    container.mux(packet)
            for packet in audio.encode(None):
                container.mux(packet)
    return path


def probe(path: Path) -> dict:
    """Frame count (decoded), frame rate, picture size and display rotation, and the audio stream's
    codec and duration."""
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        rate = float(video.average_rate)
        frames, width, height, rotation = 0, 0, 0, 0
        for frame in container.decode(video=0):
            if frames == 0:
                width, height, rotation = frame.width, frame.height, round(frame.rotation or 0) % 360
            frames += 1
    with av.open(str(path)) as container:
        audio = container.streams.audio[0] if container.streams.audio else None
        audio_seconds = 0.0
        codec = None
        if audio is not None:
            codec = audio.codec_context.name
            samples = sum(f.samples for f in container.decode(audio=0))
            audio_seconds = samples / audio.codec_context.sample_rate
    return {"frames": frames, "fps": rate, "width": width, "height": height, "rotation": rotation,
            "audio_codec": codec, "audio_seconds": audio_seconds}
