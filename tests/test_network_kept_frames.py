"""A network stream's pictures converted only for the frames the live queue keeps, and an HLS master playlist's
variant chosen by its size, through the real PyAV (FFmpeg) path from servers on this machine."""
import collections
import functools
import http.server
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import stream.network_source as network
from stream.frame import Frame
from stream.network_source import NetworkSource, PendingFrame
from stream.pipeline import Pipeline
from stream.sources import PictureTreatment, open_source
from test_network_source import _serve_ts, _served_frames, _Server, _SlowStage, _transport_stream
from test_pipeline import CollectingSink


@pytest.fixture
def conversions(monkeypatch):
    """How many pictures were converted to BGR, on which threads."""
    threads: list[str] = []
    image = PictureTreatment.image

    def counted(self, picture):
        threads.append(threading.current_thread().name)
        return image(self, picture)

    monkeypatch.setattr(PictureTreatment, "image", counted)
    return threads


class _Reading(_SlowStage):
    """A slow first stage that reads each frame's picture, as the depth stage does."""

    def process(self, batch: list[Frame]) -> list[Frame]:
        for frame in batch:
            assert frame.image.shape == (frame.height, frame.width, 3)
        return super().process(batch)


def test_the_frames_the_live_queue_drops_are_never_converted(tmp_path, told, conversions):
    """A stream faster than the stages: every picture was converted on the capture thread (a 1080p HDR one's tone
    mapping: 16-21 ms), the dropped ones too. Now only the kept ones are, on the stage that reads them."""
    server = _Server(ts=_transport_stream(tmp_path))
    try:
        sink = CollectingSink()
        result = Pipeline(open_source(f"{server.base}/clip.ts?live"), [_Reading()], sink, queue_size=1).run()
    finally:
        server.close()
    assert result.completed and result.dropped > 0 and result.frames_written + result.dropped == 48
    assert len(conversions) == result.frames_written
    assert "capture" not in conversions


def test_a_kept_frame_is_converted_by_the_first_stage_even_where_it_reads_no_picture(tmp_path, told, conversions):
    """The async network's stage hands the frame to its worker (nice 5) without reading it: that worker, or the
    refine stage after it, was the first to read the picture, the other waiting on its conversion at low priority.
    The first stage makes it, on its own thread."""

    class _Handing(_SlowStage):
        name = "handing"

        def process(self, batch: list[Frame]) -> list[Frame]:
            return batch  # reads nothing, as AsyncDepthStage.process

    class _LateReader(_Reading):
        name = "late"

    server = _Server(ts=_transport_stream(tmp_path))
    try:
        result = Pipeline(open_source(f"{server.base}/clip.ts?live"), [_Handing(), _LateReader()], CollectingSink(),
                          queue_size=1).run()
    finally:
        server.close()
    assert result.completed and len(conversions) == result.frames_written > 0
    assert set(conversions) == {"depthcam-stage-handing"}


def test_a_kept_frame_is_the_picture_converted_as_before(tmp_path, told):
    """The picture a stage reads is the one the capture thread made before, bit for bit, also once the stream is
    closed (the decoded picture outlives its decoder)."""
    import av

    path = tmp_path / "clip.ts"
    path.write_bytes(_transport_stream(tmp_path))
    with av.open(str(path)) as container:
        decoded = [picture.to_ndarray(format="bgr24") for picture in container.decode(video=0)]
    source, frames = _served_frames(path)
    assert isinstance(frames[0], PendingFrame) and len(frames) == len(decoded) == 48
    assert all(np.array_equal(frame.image, picture) for frame, picture in zip(frames, decoded))


def test_a_frame_read_from_two_threads_at_once_is_converted_once():
    """The async network's thread and the refine stage may read a frame's picture together."""
    calls = []

    def convert(picture):
        calls.append(picture)
        time.sleep(0.05)
        return np.full((2, 3, 3), picture, np.uint8)

    frame = PendingFrame(4, 10**9, 7, convert, (3, 2))
    assert (frame.width, frame.height, frame.pts_seconds) == (3, 2, 1.0) and not calls
    seen = []
    readers = [threading.Thread(target=lambda: seen.append(frame.image)) for _ in range(2)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    assert calls == [7] and seen[0] is seen[1] and seen[0][0, 0, 0] == 7
    frame.image = np.zeros((4, 5, 3), np.uint8)  # a stage's own picture replaces it
    assert frame.image.max() == 0 and (frame.width, frame.height) == (5, 4) and calls == [7]


def test_an_interlaced_stream_with_frames_dropped_is_still_deinterlaced_from_every_picture(tmp_path, told):
    """bwdif needs every picture in order: the dropped frames' pictures still go through it on the capture thread,
    so each kept frame is the very picture a full read gives."""
    from test_interlaced import make_interlaced

    path = make_interlaced(tmp_path / "multicast.ts", frames=24)
    server, url = _serve_ts(path)
    try:
        everything = open_source(url)
        full = [frame.image for frame in everything.frames()]
        everything.close()
        sink = CollectingSink()
        result = Pipeline(open_source(f"{url}?live"), [_Reading()], sink, queue_size=1).run()
    finally:
        server.close()
    assert result.dropped > 0 and len(full) == 24
    assert all(np.array_equal(frame.image, full[frame.index]) for frame in sink.frames)


# -- HLS variants -----------------------------------------------------------------------------------------------


def _variant(folder: Path, width: int, height: int, shade: int, frames: int = 30) -> None:
    """A VOD HLS rendition of `frames` flat pictures of `shade` at 30 fps, in 0.5 s segments."""
    import av

    folder.mkdir()
    options = {"hls_time": "0.5", "hls_list_size": "0", "hls_playlist_type": "vod"}
    with av.open(str(folder / "index.m3u8"), "w", format="hls", options=options) as container:
        video = container.add_stream("libx264", rate=30, options={"preset": "ultrafast", "g": "15"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            picture = av.VideoFrame.from_ndarray(np.full((height, width, 3), shade, np.uint8), format="bgr24")
            picture.pts = i
            for packet in video.encode(picture):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)


def _serve_folder(folder: Path) -> tuple[http.server.ThreadingHTTPServer, collections.Counter]:
    """A local HTTP server of `folder`'s files, and how often each was fetched."""
    fetched: collections.Counter = collections.Counter()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            fetched[self.path] += 1

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, fetched


def test_an_hls_master_playlist_is_read_from_its_largest_variant_up_to_1080p(tmp_path, told):
    """A phone app's or a broadcaster's master playlist lists several renditions. FFmpeg read the first listed
    (here 360p) and downloaded every variant's segments all along; the 1080p one is read now, the others' segments
    fetched only once, while FFmpeg opens them, and the run line says which."""
    for name, width, height, shade in [("low", 640, 360, 60), ("full", 1920, 1080, 120), ("uhd", 2560, 1440, 180)]:
        _variant(tmp_path / name, width, height, shade)
    (tmp_path / "master.m3u8").write_text(
        "#EXTM3U\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\nlow/index.m3u8\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=5000000,RESOLUTION=1920x1080\nfull/index.m3u8\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=9000000,RESOLUTION=2560x1440\nuhd/index.m3u8\n")
    httpd, fetched = _serve_folder(tmp_path)
    try:
        source = NetworkSource(f"http://127.0.0.1:{httpd.server_address[1]}/master.m3u8")
        frames = list(source.frames())
        source.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert (source.width, source.height) == (1920, 1080)
    assert "1920x1080 @ 30 fps (measured), HLS variant 1920x1080 of 640x360, 1920x1080, 2560x1440 (the largest up to " \
        "1080p)" in source.description
    assert len(frames) == 30 and all(abs(float(frame.image.mean()) - 120) < 3 for frame in frames)
    segments = {name: sorted(path for path in fetched if path.startswith(f"/{name}/") and path.endswith(".ts"))
                for name in ("low", "full", "uhd")}
    assert len(segments["full"]) == 2 and all(fetched[path] == 1 for path in segments["full"])
    assert segments["low"] == ["/low/index0.ts"] and segments["uhd"] == ["/uhd/index0.ts"]


def _stream(width: int, height: int, bitrate: str | None = "1000") -> SimpleNamespace:
    metadata = {} if bitrate is None else {"variant_bitrate": bitrate}
    return SimpleNamespace(codec_context=SimpleNamespace(width=width, height=height), metadata=metadata)


@pytest.mark.parametrize("sizes, chosen", [
    ([(640, 360, "800000"), (1080, 1920, "6000000"), (2160, 3840, "20000000")], 1),  # a phone's portrait: 1080p
    ([(1920, 1080, "3000000"), (1920, 1080, "6000000"), (1280, 720, "2000000")], 1),  # the higher bitrate of two
    ([(3840, 2160, "20000000"), (2560, 1440, "9000000")], 1),  # all above 1080p: the smallest
    ([(0, 0, "9000000"), (854, 480, "1500000")], None),  # one variant with a picture: nothing to choose
])
def test_the_variant_taken_is_the_largest_up_to_1080p(sizes, chosen):
    streams = [_stream(*size) for size in sizes]
    found = network._chosen_variant(SimpleNamespace(streams=SimpleNamespace(video=streams)))
    assert (found and found[0]) is (None if chosen is None else streams[chosen])
    if found and min(sizes[chosen][:2]) > 1080:
        assert found[1] == "HLS variant 2560x1440 of 2560x1440, 3840x2160 (the smallest: none is 1080p or less)"


def test_a_stream_without_variants_is_no_choice():
    streams = [_stream(1920, 1080, None), _stream(640, 360, None)]  # an MPEG-TS with two programs
    assert network._chosen_variant(SimpleNamespace(streams=SimpleNamespace(video=streams))) is None
