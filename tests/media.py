"""Builds real test videos with PyAV: H.264 pictures and an audio track with a known tone."""
from __future__ import annotations

from fractions import Fraction
from typing import Any
from pathlib import Path

import cv2
import numpy as np

from stream.synthetic import SyntheticPortrait, SyntheticScene


# How a phone stores a picture meant to be shown turned by a display rotation (counter-clockwise).
STORED_TURN = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def make_video(path: Path, frames: int = 24, fps: int = 24, size: tuple[int, int] = (160, 120),
               audio_codec: str | None = "aac", sample_rate: int = 44100, rotation: int = 0, mirror: bool = False,
               sar: Fraction | None = None) -> Path:
    """The synthetic portrait as an H.264 file. `rotation` (0, 90, 180, 270) and `mirror`: stored as a phone
    does, turned (and mirrored, as a front camera may), with a display matrix that shows it right (`size` is
    then the upright size). `sar`: non-square pixels, the portrait (drawn at `square_size`) squeezed into
    `size` as a DV or anamorphic camera stores it."""
    import av

    scene = SyntheticPortrait(SyntheticScene(*square_size(size, sar)))
    stored = size[::-1] if rotation in (90, 270) else size
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height = stored
        video.pix_fmt = "yuv420p"
        if rotation or mirror:  # shown turned counter-clockwise, then mirrored left-right
            video.set_display_rotation(rotation, hflip=mirror)
        if sar:
            video.codec_context.sample_aspect_ratio = sar
        audio = container.add_stream(audio_codec, rate=sample_rate) if audio_codec else None
        for i in range(frames):
            image, _ = scene.render(i)
            if sar:
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            if mirror:
                image = image[:, ::-1]
            if rotation:
                image = cv2.rotate(image, STORED_TURN[rotation])
            image = np.ascontiguousarray(image)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if audio is not None:
            seconds = frames / fps
            t = np.arange(int(sample_rate * seconds)) / sample_rate
            encode_mono(container, audio, 0.3 * np.sin(2 * np.pi * 440 * t), sample_rate)
    return path


def make_noise_mp4(path: Path, seed: int = 0) -> Path:
    """12 pictures of 320x240 noise as an H.264 MP4 with its index at the end (~1 MB: beyond what a demuxer reads
    ahead of a pipe, so its index is out of a pipe's reach)."""
    import av

    noise = np.random.default_rng(seed).integers(0, 256, (12, 240, 320, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for image in noise:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode(None))
    return path


def square_size(size: tuple[int, int], sar: Fraction | None) -> tuple[int, int]:
    """The size a picture of `size` with pixels `sar` wide (to 1 high) has in square pixels, its height kept."""
    return (round(size[0] * sar), size[1]) if sar else size


def encode_mono(container, audio, tone: np.ndarray, sample_rate: int, first_sample: int = 0) -> None:
    """A mono float signal into an audio stream, starting at `first_sample` (PyAV converts to each
    encoder's sample format and frame size)."""
    import av

    for start in range(0, len(tone), 1024):
        frame = av.AudioFrame.from_ndarray(tone[None, start:start + 1024].astype(np.float32), format="fltp",
                                           layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = sample_rate, first_sample + start, Fraction(1, sample_rate)
        for packet in audio.encode(frame):
            container.mux(packet)
    for packet in audio.encode(None):
        container.mux(packet)


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
            codec = audio.codec_context.codec.canonical_name  # "mp3", not the decoder "mp3float"
            samples = sum(f.samples for f in container.decode(audio=0))
            audio_seconds = samples / audio.codec_context.sample_rate
    return {"frames": frames, "fps": rate, "width": width, "height": height, "rotation": rotation,
            "audio_codec": codec, "audio_seconds": audio_seconds}


def make_timed_video(path: Path, video_times: list[float], fps: float = 30, size: tuple[int, int] = (64, 48),
                     audio_codecs: tuple[str, ...] = ("aac",), sample_rate: int = 44100, audio_start: float = 0.0,
                     audio_seconds: float = 1.0, click_at: float | None = None,
                     default_audio: int | None = None, keyframe_every: int | None = None,
                     container_options: dict[str, str] | None = None) -> Path:
    """Frames at the given presentation times (seconds; an offset or a variable frame rate), and per audio
    codec a stream of a quiet tone from `audio_start` for `audio_seconds`, with a loud click at
    `click_at` (the same clock) that marks where the sound belongs under the pictures.
    `default_audio`: the index among the audio streams that carries the default disposition.
    `keyframe_every`: the pictures from one keyframe to the next (x264's GOP), where a seek can land.
    `container_options`: the muxer's, e.g. {"movflags": "faststart"} for an MP4 with its index in front."""
    import av
    from av.stream import Disposition

    time_base = Fraction(1, 90000)
    with av.open(str(path), "w", container_options=container_options) as container:
        video = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        video.time_base = video.codec_context.time_base = time_base
        if keyframe_every:
            video.options = {"g": str(keyframe_every), "keyint_min": str(keyframe_every), "sc_threshold": "0"}
        audios = [container.add_stream(codec, rate=sample_rate) for codec in audio_codecs]
        for index, audio in enumerate(audios):
            audio.disposition = Disposition.default if index == default_audio else Disposition(0)
        for i, t in enumerate(video_times):
            image = np.full((size[1], size[0], 3), 60 + (i * 7) % 120, np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = round(t / time_base), time_base
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        t = np.arange(int(round(audio_seconds * sample_rate))) / sample_rate
        tone = 0.1 * np.sin(2 * np.pi * 440 * t)
        if click_at is not None:
            tone[(t >= click_at - audio_start) & (t < click_at - audio_start + 0.005)] = 0.9
        for audio in audios:
            encode_mono(container, audio, tone, sample_rate, int(round(audio_start * sample_rate)))
    return path


def join(path: Path, parts: list[Path]) -> Path:
    """Files joined as they are, as `cat a.ts b.ts > path` does (MPEG-TS plays on through the join)."""
    path.write_bytes(b"".join(part.read_bytes() for part in parts))
    return path


# A video's pictures and sound through the writer, in a process of its own (`python -c THROUGH_THE_WRITER IN OUT`):
# a crash in FFmpeg (a double free) ends that process, not the tests
THROUGH_THE_WRITER = """
import sys
from pathlib import Path
from stream.sources import open_source
from stream.video_writer import VideoWriter
source = open_source(sys.argv[1])
writer = VideoWriter(Path(sys.argv[2]), source.width, source.height, source.fps, source.audio_path)
for frame in source.frames():
    writer.write(frame.image, frame.pts_seconds)
writer.close()
"""


def channels(frame) -> np.ndarray:
    """A decoded audio frame's samples, a row a channel, in the frame's own type (PyAV's to_ndarray read a ninth
    plane of 8 planar channels: a crash on 7.1 AAC)."""
    from stream.audio_track import _samples

    samples = _samples(frame)
    return samples if frame.format.is_planar else samples.reshape(-1, frame.layout.nb_channels).T


def timeline(path: Path) -> dict:
    """Decoded presentation times: every video frame's, the video stream's time base, and the first audio
    stream's start, end, first loud sample (the click of `make_timed_video`) and every click's start
    (the loud samples more than 0.1 s after the one before)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tick = float(stream.time_base)
        video = [float(frame.time) for frame in container.decode(stream)]
    audio_start = audio_end = click = None
    clicks: list[float] = []
    with av.open(str(path)) as container:
        if container.streams.audio:
            for frame in container.decode(container.streams.audio[0]):
                samples = channels(frame)[0]
                if samples.dtype.kind in "iu":
                    samples = samples / float(np.iinfo(samples.dtype).max)
                start = float(frame.time)
                audio_start = start if audio_start is None else audio_start
                audio_end = start + frame.samples / frame.sample_rate
                loud = np.flatnonzero(np.abs(samples) > 0.5)
                if click is None and loud.size:
                    click = start + loud[0] / frame.sample_rate
                for at in start + loud / frame.sample_rate:
                    if not clicks or at > clicks[-1] + 0.1:
                        clicks.append(float(at))
    return {"video": video, "tick": tick, "audio_start": audio_start, "audio_end": audio_end, "click": click,
            "clicks": clicks}


def make_colour_video(path: Path, frames_rgb16: list[np.ndarray], trc: int, primaries: int = 9,
                      codec: str = "ffv1", x265_params: str = "") -> Path:
    """16-bit RGB pictures tagged with a transfer (16 PQ, 18 HLG, 14 BT.2020 SDR) and primaries (9 BT.2020).
    ffv1 keeps them exactly (RGB, lossless); libx265 stores them as a phone does (10-bit 4:2:0, BT.2020
    matrix, limited range), losslessly, so only that format's own rounding remains. Two pictures or fewer of x265
    are muxed by mux_encoded (its decoding times unset)."""
    import av

    yuv = codec != "ffv1"
    with av.open(str(path), "w") as container:
        options = {"x265-params": f"log-level=error:lossless=1{x265_params}"} if codec == "libx265" else {}
        stream = container.add_stream(codec, rate=10, options=options)
        stream.height, stream.width = frames_rgb16[0].shape[:2]
        stream.pix_fmt = "yuv420p10le" if yuv else "rgb48le"
        context = stream.codec_context
        context.color_trc, context.color_primaries = trc, primaries
        if yuv:
            context.colorspace, context.color_range = 9, 1  # BT.2020 non-constant luminance, limited
        for index, rgb in enumerate(frames_rgb16):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb48le")
            if yuv:
                frame = frame.reformat(format="yuv420p10le", dst_colorspace="bt2020", dst_color_range=1)
                frame.colorspace, frame.color_range = 9, 1
            frame.color_trc, frame.color_primaries, frame.pts = trc, primaries, index
            mux_encoded(container, stream.encode(frame), len(frames_rgb16))
        mux_encoded(container, stream.encode(None), len(frames_rgb16))
    return path


def mux_encoded(container: Any, packets: list[Any], pictures: int) -> None:
    """Mux `packets` of a stream of `pictures` pictures. x265 leaves its decoding times unset (garbage) in a
    stream of fewer than three pictures, which the muxer refused now and then: those are never reordered."""
    for packet in packets:
        if pictures <= 2:
            packet.dts = packet.pts
        container.mux(packet)


def yuv_planes(rgb: np.ndarray, bits: int, full: bool, chroma_step: tuple[int, int]) -> list[np.ndarray]:
    """BT.2020 non-constant-luminance Y'CbCr of R'G'B' signal in [0, 1], computed here (not by swscale, whose own
    RGB to YUV has a gain of its own), at `bits`, in the given range, chroma subsampled by `chroma_step`."""
    from kernels.colour import BT2020_LUMA

    r, g, b = np.moveaxis(rgb.astype(np.float64), 2, 0)
    y = BT2020_LUMA[0] * r + BT2020_LUMA[1] * g + BT2020_LUMA[2] * b
    cb, cr = (b - y) / 1.8814, (r - y) / 1.4746
    top = (1 << bits) - 1
    if full:
        planes = [top * y, (1 << (bits - 1)) + top * cb, (1 << (bits - 1)) + top * cr]
    else:
        scale = 1 << (bits - 8)
        planes = [scale * (16 + 219 * y), scale * (128 + 224 * cb), scale * (128 + 224 * cr)]
    planes = [np.clip(np.round(p), 0, top).astype(np.uint16) for p in planes]
    sy, sx = chroma_step
    return [planes[0]] + [p[::sy, ::sx].copy() for p in planes[1:]]


def put_planes(frame: Any, planes: list[np.ndarray], bits: int) -> None:
    """`planes` (one array each) into a planar av.VideoFrame's planes, whose rows may be padded."""
    dtype = np.uint8 if bits == 8 else np.uint16
    for plane, values in zip(frame.planes, planes):
        rows = np.frombuffer(plane, dtype).reshape(-1, plane.line_size // dtype().itemsize)
        rows[:values.shape[0], :values.shape[1]] = values


def make_yuv_video(path: Path, rgb_signal: np.ndarray, trc: int, frames: int = 2) -> Path:
    """A 10-bit 4:2:0 HEVC file (lossless) built plane by plane from R'G'B' signal values in [0, 1]
    with BT.2020's non-constant-luminance matrix in limited range, computed here rather than by
    FFmpeg, and left untagged (matrix, range, primaries), as some cameras write it: the decode must
    supply BT.2020 itself. `rgb_signal` should be flat over 2x2 blocks (4:2:0 keeps one colour each)."""
    import av

    planes = yuv_planes(rgb_signal, 10, False, (2, 2))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx265", rate=10, options={"x265-params": "log-level=error:lossless=1"})
        stream.height, stream.width = rgb_signal.shape[:2]
        stream.pix_fmt = "yuv420p10le"
        stream.codec_context.color_trc = trc
        for index in range(frames):
            frame = av.VideoFrame(stream.width, stream.height, "yuv420p10le")
            put_planes(frame, planes, 10)
            frame.color_trc, frame.pts = trc, index
            mux_encoded(container, stream.encode(frame), frames)
        mux_encoded(container, stream.encode(None), frames)
    return path


def _cover_jpeg() -> bytes:
    return cv2.imencode(".jpg", np.full((64, 64, 3), (40, 160, 220), np.uint8))[1].tobytes()


def make_with_cover_art(path: Path, video_frames: int = 0, container_format: str | None = None) -> Path:
    """A file with an album cover (an attached picture, as tagging tools store it) and a second of tone:
    sound only (an MP3, an M4A), or with `video_frames` of H.264 video as well. In MP4 the cover comes
    first, as in files whose tags were written before the tracks (the udta box moved to the front)."""
    import av
    from av.stream import Disposition

    with av.open(str(path), "w", format=container_format) as container:
        cover = container.add_stream("mjpeg", rate=1)
        cover.width, cover.height, cover.pix_fmt = 64, 64, "yuvj420p"
        cover.disposition = Disposition.attached_pic
        video = container.add_stream("libx264", rate=10) if video_frames else None
        if video is not None:
            video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        codec = "libmp3lame" if path.suffix == ".mp3" else "aac"
        audio = container.add_stream(codec, rate=44100)
        picture = av.Packet(_cover_jpeg())
        picture.stream, picture.pts, picture.dts = cover, 0, 0
        container.mux(picture)
        for i in range(video_frames):
            image = np.full((48, 64, 3), 40 + 15 * i, np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        if video is not None:
            for packet in video.encode(None):
                container.mux(packet)
        t = np.arange(44100) / 44100
        encode_mono(container, audio, 0.2 * np.sin(2 * np.pi * 440 * t), 44100)
    if path.suffix in (".mp4", ".m4a", ".mov"):
        _tags_first(path)
    return path


def _tags_first(path: Path) -> None:
    """Moves the MP4's udta box (its tags, the cover among them) before its tracks inside moov: the demuxer
    then numbers the cover stream 0. No sample offset changes, as moov keeps its size and place."""
    import struct

    data = bytearray(path.read_bytes())

    def boxes(start: int, end: int):
        while start + 8 <= end:
            size, kind = struct.unpack_from(">I4s", data, start)
            yield kind, start, size
            start += size

    for kind, start, size in list(boxes(0, len(data))):
        if kind == b"moov":
            children = sorted(boxes(start + 8, start + size), key=lambda box: box[0] != b"udta")
            data[start + 8:start + size] = b"".join(bytes(data[at:at + length]) for _, at, length in children)
    path.write_bytes(bytes(data))


def damage(path: Path, picture: int) -> Path:
    """Overwrites the coded data of the `picture`-th video packet (in file order) with noise, its first bytes
    (the NAL unit's length and header) kept: a damaged spot, as a bad sector or a broken download leaves."""
    import av

    with av.open(str(path)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    target = packets[picture]
    data = bytearray(path.read_bytes())
    start, length = target.pos + 8, target.size - 8
    data[start:start + length] = np.random.default_rng(0).integers(0, 256, length, np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def text_line_packet(lines, number: int, start: float, end: float, text: str):
    """A text subtitle line (`lines`: a stream opened with the ASS header) as a packet, timed from `start` to `end`
    seconds in its stream's time base."""
    from av.subtitles.subtitle import SubtitleSet

    line = SubtitleSet.create(f"{number},0,Default,,0,0,0,,{text}".encode(), 0, round((end - start) * 1000))
    packet = lines.codec_context.encode_subtitle(line)
    packet.stream, packet.time_base = lines, lines.time_base
    packet.pts = packet.dts = round(start / lines.time_base)
    packet.duration = round((end - start) / lines.time_base)
    return packet


def make_tracks_video(path: Path, codecs: tuple[str, ...], frames: int = 10, fps: int = 10, seconds: float = 1.0,
                      sample_rate: int = 48000, default: int | None = None, languages: tuple[str, ...] = (),
                      titles: tuple[str, ...] = (), click_at: float | None = None,
                      flags: dict[int, str] | None = None) -> Path:
    """`frames` pictures at `fps` and one mono audio stream per codec (a camera's track per microphone, a film's
    languages), each `seconds` of a 440 Hz tone whose loudness names it: 0.1 for the first, 0.2 for the second...
    (0.1 again after 0.6), with a loud click at `click_at` on each. `default`: the index of the stream flagged default
    (None: none); `languages`, `titles`: each stream's tags, in order; `flags`: another flag (a disposition's name)
    by index."""
    import av
    from av.stream import Disposition

    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audios = [container.add_stream(codec, rate=sample_rate, layout="mono") for codec in codecs]
        for index, audio in enumerate(audios):
            audio.disposition = Disposition.default if index == default else Disposition(0)
            if flags and index in flags:
                audio.disposition |= getattr(Disposition, flags[index])
            tags = {"language": languages[index] if index < len(languages) else None,
                    "title": titles[index] if index < len(titles) else None}
            audio.metadata.update({key: value for key, value in tags.items() if value})
        for i in range(frames):
            image = np.full((48, 64, 3), 60 + (i * 7) % 120, np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        t = np.arange(int(round(seconds * sample_rate))) / sample_rate
        for index, audio in enumerate(audios):
            tone = 0.1 * (index % 6 + 1) * np.sin(2 * np.pi * 440 * t)
            if click_at is not None:
                tone[(t >= click_at) & (t < click_at + 0.005)] = 0.95
            encode_mono(container, audio, tone, sample_rate)
    return path
