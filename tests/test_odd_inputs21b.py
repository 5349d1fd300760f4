"""Inputs at their edges, what was left (the twenty-first session): a Matroska file given no picture is said empty;
the pictures lost before a recording's first keyframe are said; a cut's frame count is the pictures it shows; a
multi-page TIFF says only its first page is processed; a closed video frees its decoder without a gc."""
from __future__ import annotations

import gc
import sys
import weakref
from pathlib import Path

import pytest

from stream.sources import open_source
from test_damaged_video import _encode
from test_odd_inputs21 import _read, _remuxed


@pytest.fixture(scope="module")
def gop_video(tmp_path_factory) -> Path:
    """48 pictures at 24 fps, a keyframe each second, B-frames."""
    return _encode(tmp_path_factory.mktemp("gop") / "in.mp4", "libx264", frames=48,
                   options={"g": "24", "keyint_min": "24", "bf": "2", "sc_threshold": "0"})


def _run(path: Path, out: Path, capsys) -> tuple[int, str]:
    from stream.cli import main

    code = main(["run", str(path), "-o", str(out)], restore_signals=False)
    return code, capsys.readouterr().err.strip()


def _empty(path: Path, codec: str) -> Path:
    """A file whose video stream got no picture, as a recording stopped before its first leaves it."""
    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=24)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    return path


@pytest.mark.parametrize("suffix, codec", [(".mkv", "libx264"), (".webm", "libvpx-vp9")])
def test_a_matroska_file_that_got_no_picture_is_said_empty_not_damaged(tmp_path, capsys, suffix, codec):
    """Its header and track list whole, no cluster: FFmpeg's "End of file" read as "truncated or corrupt"."""
    code, err = _run(_empty(tmp_path / f"empty{suffix}", codec), tmp_path / "out.mp4", capsys)
    assert code == 2 and err.count("\n") == 0, err
    assert "holds no picture" in err and "corrupt" not in err and "truncated" not in err
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("kept", [0.5, 0.95])
def test_a_matroska_file_cut_before_its_first_picture_is_still_called_truncated(tmp_path, capsys, kept):
    """Cut inside its header or track list (its segment runs on past the file's end): not said empty."""
    path = _empty(tmp_path / "empty.mkv", "libx264")
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * kept)])
    code, err = _run(path, tmp_path / "out.mp4", capsys)
    assert code == 2 and "truncated or corrupt" in err and "holds no picture" not in err


def _lost_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if "cannot be decoded" in line]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_the_pictures_before_a_recordings_first_keyframe_are_said_once(gop_video, tmp_path, capsys, suffix):
    """Cut mid-GOP (5 packets gone): the 19 pictures up to the keyframe at 1 s cannot be made; they were left out
    without a word (a long GOP's seconds). Said once, with the run line; the pictures are the 24 after it."""
    assert _read(_remuxed(gop_video, tmp_path / f"cut{suffix}", skip=5)) == (24, None)
    lines = _lost_lines(capsys)
    assert len(lines) == 1 and "its first 19 pictures (0.8 s)" in lines[0], lines


def test_a_cut_made_without_re_encoding_loses_nothing_and_says_nothing(gop_video, tmp_path, capsys):
    """`ffmpeg -ss 0.5 -c copy`: the GOP before the cut is there for the decoder, its pictures hidden by the edit
    list (flagged discard): no player shows them, nothing is lost."""
    assert _read(_remuxed(gop_video, tmp_path / "cut.mp4", shift=0.5)) == (36, None)
    assert _lost_lines(capsys) == []


def test_a_transport_stream_starting_mid_gop_stays_silent(tmp_path, capsys):
    """A broadcast recording always starts mid-GOP (session 20 kept it silent): no line."""
    import av

    path = _encode(tmp_path / "in.ts", "libx264", frames=48, options={"g": "24", "sc_threshold": "0"})
    with av.open(str(path)) as container:
        places = [packet.pos for packet in container.demux(video=0) if packet.size]
    (tmp_path / "cut.ts").write_bytes(path.read_bytes()[places[5] // 188 * 188:])
    count, _ = _read(tmp_path / "cut.ts")
    assert count == 24 and _lost_lines(capsys) == []


@pytest.mark.parametrize("skip, shift, shown", [(0, 0.5, 36), (5, 0.0, 24), (0, 1.3, 16)])
def test_a_cut_mp4s_frame_count_is_the_pictures_it_shows(gop_video, tmp_path, skip, shift, shown):
    """The progress bar's total: the index's packets less those flagged discard (an edit list's) or before the
    first keyframe; it ended at 36/48 (24/43)."""
    source = open_source(str(_remuxed(gop_video, tmp_path / "cut.mp4", skip=skip, shift=shift)))
    try:
        assert source.frame_count == shown == len(list(source.frames()))
    finally:
        source.close()


def _trimmed_at_its_end(path: Path) -> Path:
    """`path` (an MP4) trimmed without re-encoding, as QuickTime trims: its video's edit halved, its samples kept."""
    from stream.mp4_edit_list import _Track, _boxes, _moov_payload, _read_track

    with path.open("r+b") as file:
        base, data = _moov_payload(file)
        for kind, start, end in _boxes(data, 0, len(data)):
            track = _Track()
            if kind == b"trak":
                _read_track(data, start, end, base, track)
            if track.handler == b"vide":
                track.edit.write(file, track.edit.value // 2)
    return path


def test_an_mp4_trimmed_at_its_end_by_its_edit_list_is_no_truncated_file(tmp_path):
    """Its edit keeps the first second (24 of 48 pictures, a keyframe every 12): FFmpeg's index leaves 11 samples
    past it out, its frame count does not (a whole file read as "announced 35 frames but only 24 could be decoded;
    it may be truncated")."""
    video = _encode(tmp_path / "trimmed.mp4", "libx264", frames=48,
                    options={"g": "12", "keyint_min": "12", "bf": "2", "sc_threshold": "0"})
    source = open_source(str(_trimmed_at_its_end(video)))
    try:
        frames = list(source.frames())
        assert source.frame_count == len(frames) == 24
        assert source.truncation_warning() is None
    finally:
        source.close()


def test_a_matroska_cut_mid_gops_progress_runs_from_its_first_picture(gop_video, tmp_path):
    """Its length runs from the stream's start, 0.8 s before its first picture: the bar ended at 1.0 of 1.8 s."""
    source = open_source(str(_remuxed(gop_video, tmp_path / "cut.mkv", skip=5)))
    try:
        frames = list(source.frames())
        assert source.frame_count == len(frames) == 24
        assert source.progress_seconds == pytest.approx(source.seconds_done(frames[-1]), abs=0.01)
    finally:
        source.close()


def _tiff(path: Path, pages: list[tuple[int, int]], reduced: bool = False) -> Path:
    """A TIFF of grey pages of those sizes; `reduced`: the later ones flagged as smaller copies of the first."""
    import numpy as np
    import tifffile

    with tifffile.TiffWriter(path) as tif:
        for number, (width, height) in enumerate(pages):
            tif.write(np.full((height, width), 60 * number, np.uint8), subfiletype=1 if reduced and number else 0)
    return path


def test_a_multi_page_tiff_says_only_its_first_page_is_processed(tmp_path, capsys, monkeypatch):
    """A scan of three pages gave its first without a word. Said once, though a photo in a window is opened twice
    (its checks, then the run)."""
    import models.registry

    monkeypatch.setattr(models.registry, "_SAID", set())
    path = _tiff(tmp_path / "scan.tif", [(64, 48)] * 3)
    for _ in range(2):
        source = open_source(str(path))
        try:
            assert source.frame_count == 1 and float(source.load().mean()) == 0.0  # the first page's
        finally:
            source.close()
    told = [line for line in capsys.readouterr().err.splitlines() if "pages" in line]
    assert len(told) == 1 and "scan.tif holds 3 pages: only its first is processed" in told[0], told


def test_a_tiffs_smaller_copies_are_no_pages(tmp_path, capsys):
    """A pyramid's or a preview's smaller copy of the picture (NewSubfileType 1) is not another page."""
    source = open_source(str(_tiff(tmp_path / "pyramid.tif", [(64, 48), (32, 24), (16, 12)], reduced=True)))
    source.close()
    assert "pages" not in capsys.readouterr().err


def _hdr10_video(path: Path) -> Path:
    import numpy as np

    from media import make_colour_video

    picture = np.full((32, 48, 3), 30000, np.uint16)
    return make_colour_video(path, [picture] * 3, 16, codec="libx265", x265_params=":hdr10=1:max-cll=1600,400")


@pytest.mark.parametrize("kind", ["turned", "hdr10"])
def test_a_closed_video_frees_its_source_and_first_picture_without_a_gc(tmp_path, kind):
    """The decoding generator held its source (a cycle), and the first picture's side data the picture (PyAV's
    cycle: its display matrix, an HDR10 grade's peak): each input's decoder, its threads and first picture lived
    until a full gc, in a loop of runs."""
    from media import make_video

    if kind == "turned":
        path = make_video(tmp_path / "turned.mp4", frames=6, size=(48, 64), rotation=90, mirror=True,
                          audio_codec=None)
    else:
        path = _hdr10_video(tmp_path / "hdr10.mkv")
    # opened once first: a first use that compiles a kernel (an empty Numba cache: HDR's colour conversion) leaves
    # Numba's caught exceptions in cycles with the frames that called it, this source's too, until a gc
    open_source(str(path)).close()
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        source = open_source(str(path))
        if kind == "turned":
            assert (source.rotation, source.treatment.mirrored) == (90, True)  # the display matrix read
        else:
            assert source.colour.peak_nits == 1600.0  # MaxCLL read
        first, alive = source._first, weakref.ref(source)
        source.close()
        del source
        assert alive() is None
        assert sys.getrefcount(first) == 2  # this name's and the call's: nothing else holds it
    finally:
        if enabled:
            gc.enable()
