"""An MJPEG stream's pictures past the first given undecoded by the capture thread (only their headers read there)
and decoded by the stage that first reads a kept frame, through the real PyAV (FFmpeg) path from a local server."""
import threading

import cv2
import numpy as np
import pytest

import stream.network_source as network
from stream.frame import Frame
from stream.pipeline import Pipeline
from stream.sources import open_source
from stream.synthetic import SyntheticPortrait, SyntheticScene
from test_network_source import _frames_served, _served_frames, _Server, _SlowStage, _transport_stream
from test_pipeline import CollectingSink


@pytest.fixture
def decodes(monkeypatch):
    """Each decode by the source's own decoders: (thread name, whether it read the headers alone)."""
    calls: list[tuple[str, bool]] = []
    made = network._decoder_like

    class Counted:
        def __init__(self, decoder, headers_only: bool) -> None:
            self.decoder, self.headers_only = decoder, headers_only

        def decode(self, packet):
            calls.append((threading.current_thread().name, self.headers_only))
            return self.decoder.decode(packet)

    def counted(stream, headers_only=False):
        return Counted(made(stream, headers_only), headers_only)

    monkeypatch.setattr(network, "_decoder_like", counted)
    return calls


def _served(jpeg: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)


def _nearest(image: np.ndarray, served: list[np.ndarray]) -> int:
    """Which served picture `image` is (the scene moves from one to the next)."""
    return int(np.argmin([np.abs(image.astype(int) - picture).mean() for picture in served]))


def test_the_frames_the_live_queue_drops_are_never_decoded(told, decodes):
    """A phone's MJPEG faster than the stages: every picture was decoded on the capture thread, the dropped ones
    too (a 1080p JPEG: 15 ms on a fast core; a slow laptop's capture fell behind a 60 fps stream). Now the capture
    thread reads each one's headers only, and the stage decodes the frames it keeps."""

    class Reading(_SlowStage):
        name = "reading"

        def process(self, batch: list[Frame]) -> list[Frame]:
            for frame in batch:
                assert frame.image.shape == (120, 160, 3)
            self.seen = getattr(self, "seen", 0) + len(batch)
            if self.seen >= 12:
                source.interrupt()  # as a stop: the stream itself never ends
            return super().process(batch)

    server = _Server(fps=60)
    try:
        source = open_source(f"{server.base}/video")
        result = Pipeline(source, [Reading()], CollectingSink(), queue_size=1).run()
        source.close()
    finally:
        server.close()
    assert result.frames_written >= 12 and result.dropped > 0
    full = [thread for thread, headers_only in decodes if not headers_only]
    assert set(full) == {"depthcam-stage-reading"}  # none on the capture thread
    # each kept frame decoded once (the first, decoded on the capture thread to learn the stream, not again)
    assert result.frames_written - 1 <= len(full) <= result.frames_written
    assert sum(headers_only for _, headers_only in decodes) >= result.frames_written + result.dropped - 1
    assert told == []


def test_an_mjpeg_stream_is_given_undecoded_and_decodes_as_served_on_any_thread(tmp_path, told):
    """Past the first, the frames hold their JPEGs, not decoded pictures, at the stream's size; read on several
    threads at once (each decodes with its own decoder), once the stream is closed, they are the pictures served.
    An H.264 stream's pictures are still decoded in order on the capture thread."""
    import av

    server = _Server(fps=30)
    _, frames = _frames_served(server, f"{server.base}/video", 12)
    assert not any(isinstance(frame._picture, av.VideoFrame) for frame in frames[1:])
    assert all((frame.width, frame.height) == (160, 120) for frame in frames)
    readers = [threading.Thread(target=lambda part=part: [frame.image for frame in part])
               for part in (frames[0::3], frames[1::3], frames[2::3])]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    for frame in frames:
        served = _served(server.jpegs[frame.index % 10])
        assert frame.image.shape == (120, 160, 3) and np.abs(frame.image.astype(int) - served).mean() < 2.0
    assert told == []
    _, decoded = _served_frames(_write(tmp_path / "clip.ts", _transport_stream(tmp_path)))
    assert all(isinstance(frame._picture, av.VideoFrame) for frame in decoded)


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _bad_huffman_table(jpeg: bytes) -> bytes:
    """`jpeg` with its first Huffman table (DHT, after the size) spoiled: its headers read, it does not decode."""
    table = jpeg.index(b"\xff\xc4")
    return jpeg[:table + 4] + b"\xff" * 16 + jpeg[table + 20:]


def test_a_damaged_picture_is_skipped_and_said_once_and_never_crashes_a_stage(told):
    """A JPEG lost on the way whose headers do not read is skipped on the capture thread, as before, numbered
    without a gap; one whose headers read but whose data does not decode is found only by the stage: the picture
    before it is given again. Either is said once."""
    server = _Server(fps=30)
    served = [_served(jpeg) for jpeg in server.jpegs]
    server.jpegs[3] = server.jpegs[3][:100]  # cut short: no picture in it
    server.jpegs[6] = _bad_huffman_table(server.jpegs[6])
    source, frames = _frames_served(server, f"{server.base}/video", 8)
    assert [frame.index for frame in frames] == list(range(8))
    assert [_nearest(frame.image, served) for frame in frames] == [0, 1, 2, 4, 5, 5, 7, 8]
    assert told == ["network stream " + source.shown + " lost data on the way; the damaged pictures are skipped"]


def test_a_picture_of_another_size_comes_out_at_the_size_the_stream_started_with(told, capsys):
    """A phone app switching its resolution mid-stream: the frames keep the size the stages were given, scaled,
    and the new size is said once."""
    server = _Server(fps=30)
    large = [cv2.resize(picture, (320, 240)) for picture in server.pictures]
    server.jpegs[2:] = [cv2.imencode(".jpg", picture)[1].tobytes() for picture in large[2:]]
    source, frames = _frames_served(server, f"{server.base}/video", 6)
    assert all((frame.width, frame.height) == (160, 120) for frame in frames)
    assert all(frame.image.shape == (120, 160, 3) for frame in frames)
    assert np.abs(frames[4].image.astype(int) - cv2.resize(large[4], (160, 120))).mean() < 3.0
    said = capsys.readouterr().err.splitlines()  # said by stream.sources, for a file's picture too
    assert said == [f"depthcam: network stream {source.shown} now delivers 320x240 pictures; they are scaled to the "
                    f"160x120 it started with"] and told == []


def test_a_timed_mjpeg_stream_keeps_its_own_times(tmp_path, told):
    """MJPEG in Matroska served over HTTP: the frames given undecoded carry their packets' own times, as decoded
    pictures carried theirs (the stream clock the capture times are laid on), and are the pictures as decoded."""
    import av

    scene = SyntheticPortrait(SyntheticScene(160, 120))
    pictures = [scene.render(index)[0] for index in range(24)]
    path = tmp_path / "clip.mkv"
    with av.open(str(path), "w") as target:
        video = target.add_stream("mjpeg", rate=12)
        video.width, video.height, video.pix_fmt = 160, 120, "yuvj420p"
        for picture in pictures:
            target.mux(video.encode(av.VideoFrame.from_ndarray(picture, format="bgr24")))
        target.mux(video.encode())
    with av.open(str(path)) as container:
        decoded = [picture.to_ndarray(format="bgr24") for picture in container.decode(video=0)]
    source, frames = _served_frames(path)
    assert source.timed and source.fps == 12 and [frame.index for frame in frames] == list(range(24))
    assert not any(isinstance(frame._picture, av.VideoFrame) for frame in frames[1:])
    assert np.allclose([frame._picture.time for frame in frames], np.arange(24) / 12, atol=0.002)
    assert np.all(np.diff([frame.capture_ns for frame in frames]) >= 0)
    assert all(np.array_equal(frame.image, picture) for frame, picture in zip(frames, decoded))  # bit for bit
