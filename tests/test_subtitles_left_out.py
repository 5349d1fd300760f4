"""The one line a video output gives for subtitle streams it cannot hold: the fix it names must be one that works
(a DVB recording's teletext was sent to .mkv, which then left it out as well)."""
import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tests.test_video_streams_kept import _read, _run, _subtitled

TS_TIME = Fraction(1, 90000)


def _with_teletext(path: Path, pictures: int = 10) -> Path:
    """An MPEG-TS with pictures and a teletext stream (raw packets: FFmpeg has no decoder for it without libzvbi,
    so PyAV gives the stream no codec), as every European DVB recording carries."""
    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        teletext = container.add_mux_stream("dvb_teletext", time_base=TS_TIME)
        container.start_encoding()
        for i in range(pictures):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                container.mux(packet)
            if i % 3 == 0:
                packet = av.Packet(bytes(46 * 4))
                packet.stream, packet.time_base = teletext, TS_TIME
                packet.pts = packet.dts = i * 9000
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
    return path


def _told(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "subtitle stream" in r.getMessage()]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_teletext_is_left_out_without_sending_the_user_to_mkv(tmp_path, caplog, suffix):
    with caplog.at_level(logging.WARNING):
        _run(_with_teletext(tmp_path / "in.ts"), tmp_path / f"out{suffix}")
    told = _told(caplog)
    assert len(told) == 1
    assert "left out" in told[0] and "cannot read its kind" in told[0]  # not "(unknown)"
    assert ".mkv keeps" not in told[0] and "convert" not in told[0]  # neither would keep it
    assert _read(tmp_path / f"out{suffix}")[1] == []


def test_text_lines_an_avi_cannot_hold_are_sent_to_mkv_which_keeps_them(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        _run(_subtitled(tmp_path / "in.mkv"), tmp_path / "out.avi")
    told = _told(caplog)
    assert len(told) == 1 and told[0].endswith("; .mkv keeps it")
    _run(_subtitled(tmp_path / "in.mkv"), tmp_path / "out.mkv")  # the advice holds
    assert len(_read(tmp_path / "out.mkv")[1]) == 1


def test_bitmap_lines_webm_cannot_hold_are_sent_to_mkv(tmp_path, caplog):
    source = _subtitled(tmp_path / "in.mkv", codec="hdmv_pgs_subtitle", bitmap=True)
    with caplog.at_level(logging.WARNING):
        _run(source, tmp_path / "out.webm")
    told = _told(caplog)
    assert len(told) == 1 and "hdmv_pgs_subtitle" in told[0] and told[0].endswith("; .mkv keeps it")
