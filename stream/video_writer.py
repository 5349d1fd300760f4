"""Writing video files with PyAV: H.264 (or the container's natural codec), the input's audio kept.

Audio packets are copied as they are where the container accepts their codec (no quality loss),
else transcoded to AAC/Opus. They are interleaved with the video as it is written, so a run that
stops early still leaves a playable file whose sound matches its pictures.
"""
from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import numpy as np

from stream.errors import UserError

log = logging.getLogger(__name__)

VIDEO_CODECS = {".mp4": "libx264", ".m4v": "libx264", ".mov": "libx264", ".mkv": "libx264",
                ".webm": "libvpx-vp9", ".avi": "mpeg4"}
# Audio codecs each container takes as they are; anything else is transcoded.
AUDIO_COPYABLE = {
    ".mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"},
    ".m4v": {"aac", "mp3", "ac3", "eac3", "alac"},
    ".mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le"},
    ".mkv": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac", "vorbis", "pcm_s16le", "pcm_s24le", "pcm_f32le"},
    ".webm": {"opus", "vorbis"},
    ".avi": {"mp3", "ac3", "pcm_s16le"},
}
AUDIO_TRANSCODE = {".webm": "libopus"}
AUDIO_INTERLEAVE_S = 0.5  # how far audio may run ahead of the video written so far


def video_suffixes() -> list[str]:
    return sorted(VIDEO_CODECS)


class VideoWriter:
    def __init__(self, path: Path, width: int, height: int, fps: float, audio_from: Path | None = None,
                 crf: int = 18) -> None:
        import av

        self.path = path
        suffix = path.suffix.lower()
        if suffix not in VIDEO_CODECS:
            raise UserError(f"cannot write {path}: unknown video type {suffix or '(none)'}; "
                            f"use one of {', '.join(video_suffixes())}")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.container = av.open(str(path), "w")
        except (av.error.FFmpegError, OSError) as exc:
            raise UserError(f"cannot write {path}: {exc}") from None
        self.rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(30)
        codec = VIDEO_CODECS[suffix]
        self.stream = self.container.add_stream(codec, rate=self.rate)
        # 4:2:0 needs even sizes; odd frames are padded by one edge row/column.
        self.width, self.height = width + width % 2, height + height % 2
        self.stream.width, self.stream.height = self.width, self.height
        self.stream.pix_fmt = "yuv420p"
        self.stream.time_base = 1 / self.rate
        if codec == "libx264":
            self.stream.options = {"crf": str(crf), "preset": "veryfast"}
        elif codec == "libvpx-vp9":
            self.stream.options = {"crf": "32", "b": "0", "deadline": "realtime", "cpu-used": "8"}
        self.stream.thread_type = "AUTO"
        self.frames_written = 0
        self._last_pts = -1
        self._first_pts_s: float | None = None
        self._audio = _AudioCopier(self.container, audio_from, suffix) if audio_from else None

    def write(self, image_bgr: np.ndarray, pts_seconds: float | None = None) -> None:
        import av

        if image_bgr.shape[1] != self.width or image_bgr.shape[0] != self.height:
            image_bgr = np.pad(image_bgr, ((0, self.height - image_bgr.shape[0]),
                                           (0, self.width - image_bgr.shape[1]), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image_bgr), format="bgr24")
        if pts_seconds is None:
            pts = self._last_pts + 1
        else:
            if self._first_pts_s is None:
                self._first_pts_s = pts_seconds
            pts = max(int(round((pts_seconds - self._first_pts_s) * self.rate)), self._last_pts + 1)
        frame.pts = pts
        self._last_pts = pts
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames_written += 1
        if self._audio:
            self._audio.copy_until((pts + 1) / self.rate + AUDIO_INTERLEAVE_S)

    @property
    def seconds_written(self) -> float:
        return float((self._last_pts + 1) / self.rate)

    def close(self, complete: bool = True) -> None:
        """Flush and finalise. `complete=False` (interrupted) keeps only the audio under the pictures."""
        try:
            for packet in self.stream.encode(None):
                self.container.mux(packet)
            if self._audio:
                self._audio.copy_until(None if complete else self.seconds_written)
                self._audio.close()
        finally:
            self.container.close()


class _AudioCopier:
    """Copies (or transcodes) the audio of `source` into `container`, up to a given time."""

    def __init__(self, container, source: Path, suffix: str) -> None:
        import av

        self.input = av.open(str(source))
        self.in_stream = self.input.streams.audio[0]
        self.container = container
        codec = self.in_stream.codec_context.name
        self.copy = codec in AUDIO_COPYABLE.get(suffix, set())
        if self.copy:
            self.out_stream = container.add_stream_from_template(self.in_stream)
        else:
            target = AUDIO_TRANSCODE.get(suffix, "aac")
            self.out_stream = container.add_stream(target, rate=self.in_stream.codec_context.sample_rate or 48000)
            self.fifo = av.AudioFifo()
            self.resampler = av.AudioResampler(format=self.out_stream.codec_context.format.name,
                                               layout=self.out_stream.codec_context.layout.name,
                                               rate=self.out_stream.codec_context.sample_rate)
            log.info("transcoding %s audio to %s for %s", codec, target, suffix)
        self.packets = self.input.demux(self.in_stream)
        self.pending = None
        self.done = False

    def copy_until(self, seconds: float | None) -> None:
        import av

        while not self.done:
            packet = self.pending or next(self.packets, None)
            self.pending = None
            if packet is None:
                self.done = True
                break
            if packet.dts is None and packet.size == 0:
                continue  # demuxer's flush packet
            packet_time = float(packet.pts * packet.time_base) if packet.pts is not None else 0.0
            if seconds is not None and packet_time >= seconds:
                self.pending = packet
                return
            if self.copy:
                packet.stream = self.out_stream
                self.container.mux(packet)
            else:
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    continue  # a damaged audio packet is skipped rather than ending the video
                for frame in frames:
                    frame.pts = None
                    for resampled in self.resampler.resample(frame):
                        self._encode(resampled)

    def _encode(self, frame) -> None:
        if frame is None:
            for packet in self.out_stream.encode(None):
                self.container.mux(packet)
            return
        self.fifo.write(frame)
        frame_size = self.out_stream.codec_context.frame_size or frame.samples
        while self.fifo.samples >= frame_size:
            for packet in self.out_stream.encode(self.fifo.read(frame_size)):
                self.container.mux(packet)

    def close(self) -> None:
        if not self.copy:
            rest = self.fifo.read()
            if rest is not None:
                for packet in self.out_stream.encode(rest):
                    self.container.mux(packet)
            self._encode(None)
        self.input.close()
