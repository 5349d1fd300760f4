"""The input's timecode kept, moved to the part's first picture (--start), and a clear line where no file can be
created in the output's folder."""
from __future__ import annotations

import os
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from stream import cli
from stream.errors import UserError
from stream.paths import ensure_writable
from stream.video_writer import VideoWriter, part_first_picture, shifted_timecode

FILM, NTSC = Fraction(24000, 1001), Fraction(30000, 1001)


def _clip(path: Path, rate: Fraction, frames: int, timecode: str | None) -> Path:
    """A plain H.264 clip of `frames` pictures at `rate`, picture i at i / rate, each a different grey; `timecode`
    as FFmpeg's -timecode writes it (a container tag: a tmcd track in .mov, a TIMECODE tag in .mkv)."""
    import av

    with av.open(str(path), "w") as container:
        if timecode is not None:
            container.metadata["timecode"] = timecode
        video = container.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), index * 4 % 256, np.uint8), format="bgr24")
            frame.pts, frame.time_base = index, 1 / rate
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    return path


def _timecodes(path: Path) -> set[str]:
    """Every timecode the file holds, as FFmpeg reads it: a container tag, a stream's (a tmcd track's)."""
    import av

    with av.open(str(path)) as container:
        tagged = [container.metadata, *(stream.metadata for stream in container.streams)]
        return {value for tags in tagged for key, value in tags.items() if key.lower() == "timecode"}


def _pictures(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_timecode_arithmetic_non_drop_and_drop_frame():
    # non-drop: 24 labels a second at 23.976 fps, wrapping at 24 hours
    assert shifted_timecode("01:00:00:00", 24, FILM) == "01:00:01:00"
    assert shifted_timecode("23:59:59:23", 2, FILM) == "00:00:00:01"
    # drop-frame 29.97: ;00 and ;01 skipped at each minute but every tenth, the separator kept
    assert shifted_timecode("01:00:00;00", 45, NTSC) == "01:00:01;15"
    assert shifted_timecode("00:00:59;28", 3, NTSC) == "00:01:00;03"  # ;29, then 01:00;02, 01:00;03
    assert shifted_timecode("00:09:59;29", 1, NTSC) == "00:10:00;00"  # the tenth minute drops none
    assert shifted_timecode("00:00:00;00", 17982, NTSC) == "00:10:00;00"  # ten minutes of 29.97 fps
    assert shifted_timecode("23:59:59;29", 1, NTSC) == "00:00:00;00"
    # drop-frame 59.94: four labels skipped
    assert shifted_timecode("00:00:59;59", 1, Fraction(60000, 1001)) == "00:01:00;04"
    # what FFmpeg refuses: drop-frame at 25 fps, a frame number past the rate's, no timecode at all
    assert shifted_timecode("01:00:00;00", 0, Fraction(25)) is None
    assert shifted_timecode("01:00:00:24", 0, Fraction(24)) is None
    assert shifted_timecode("reel 4", 0, Fraction(24)) is None


def test_a_part_s_first_picture_is_the_source_s():
    """The first picture no more than half a frame before --start (VideoFileSource.frames' rule)."""
    assert part_first_picture(1, FILM) == 24  # picture 23 at 0.959 s is 0.041 s early; 24 at 1.001 s
    assert part_first_picture(1.5, NTSC) == 45  # picture 44 at 1.468 s is 0.032 s early; 45 at 1.5015 s
    assert part_first_picture(0.02, Fraction(25)) == 0  # halfway between pictures 0 and 1: the earlier
    assert part_first_picture(0, FILM) == 0


@pytest.mark.parametrize("suffix", [".mov", ".mkv", ".avi"])
def test_a_part_keeps_the_timecode_of_its_first_picture(shared_models, tmp_path, suffix):
    """The timecode (01:00:00:00 at 23.976 fps, a Matroska tag) was dropped: an editor could not find the part in
    the original. --start 1 begins with picture 24 (23 at 0.959 s is more than half a frame, 0.021 s, before
    1 s; 24 at 1.001 s is within it), so the part's timecode is 24 labels later, at the nominal 24: 01:00:01:00,
    in .mov as a tmcd track, in .mkv as a tag, in .avi as its ISMP."""
    source = _clip(tmp_path / "in.mkv", FILM, 48, "01:00:00:00")
    out = tmp_path / f"part{suffix}"
    assert cli.main(["run", str(source), "-o", str(out), "--start", "1", "--refine", "off", "--no-progress"]) == 0
    assert _timecodes(out) == {"01:00:01:00"}
    assert _pictures(out) == 48 - 24


def test_a_drop_frame_part_keeps_its_first_picture_s_timecode(shared_models, tmp_path):
    """29.97 drop-frame 01:00:00;00, --start 1.5: picture 45 (44 at 1.468 s is more than half a frame, 0.017 s,
    before 1.5 s; 45 at 1.5015 s within it): 45 labels later, 01:00:01;15 (no minute passed: none skipped). The
    --save-depth video gets the same."""
    source = _clip(tmp_path / "in.mkv", NTSC, 60, "01:00:00;00")
    out, depth = tmp_path / "part.mov", tmp_path / "depth.mp4"
    assert cli.main(["run", str(source), "-o", str(out), "--save-depth", str(depth), "--start", "1.5",
                     "--refine", "off", "--no-progress"]) == 0
    assert _timecodes(out) == _timecodes(depth) == {"01:00:01;15"}
    assert _pictures(out) == 60 - 45


def test_a_drop_frame_part_across_a_minute_skips_its_labels(shared_models, tmp_path):
    """00:00:59;28 and --start 0.1: picture 3 (0.1001 s), three labels later across the minute, whose ;00 and ;01
    are skipped: 00:01:00;03."""
    source = _clip(tmp_path / "in.mkv", NTSC, 15, "00:00:59;28")
    out = tmp_path / "part.mkv"
    assert cli.main(["run", str(source), "-o", str(out), "--start", "0.1", "--refine", "off", "--no-progress"]) == 0
    assert _timecodes(out) == {"00:01:00;03"}


def test_a_whole_video_keeps_its_timecode_and_one_without_gets_none(shared_models, tmp_path):
    timed = _clip(tmp_path / "timed.mkv", FILM, 6, "01:00:00:00")
    plain = _clip(tmp_path / "plain.mkv", FILM, 6, None)
    for source, expected in ((timed, {"01:00:00:00"}), (plain, set())):
        out = tmp_path / f"{source.stem}_out.mp4"
        assert cli.main(["run", str(source), "-o", str(out), "--refine", "off", "--no-progress"]) == 0
        assert _timecodes(out) == expected


@pytest.mark.parametrize("suffix", [".mov", ".m4v", ".mkv"])
def test_a_mov_s_timecode_track_is_kept_by_the_writer(tmp_path, suffix):
    """A MOV's timecode is its tmcd track's, which FFmpeg's demuxer puts on the video stream, not among the
    container's tags: read from the file given as tags_from. .m4v's muxer (iPod's) wrote no tmcd track unasked."""
    source = _clip(tmp_path / "in.mov", NTSC, 60, "01:00:00;00")
    out = tmp_path / f"out{suffix}"
    writer = VideoWriter(out, 64, 48, float(NTSC), tags_from=source)
    writer.start_part(1.5)
    for index in range(3):
        writer.write(np.zeros((48, 64, 3), np.uint8), (45 + index) / float(NTSC))
    writer.close()
    assert _timecodes(out) == {"01:00:01;15"}


def test_a_run_keeps_a_mov_s_timecode_track(shared_models, tmp_path):
    """A MOV's timecode is on its video stream, not among the container's tags the run hands the writer."""
    source = _clip(tmp_path / "in.mov", FILM, 48, "01:00:00:00")
    out = tmp_path / "part.mov"
    assert cli.main(["run", str(source), "-o", str(out), "--start", "1", "--refine", "off", "--no-progress"]) == 0
    assert _timecodes(out) == {"01:00:01:00"}


def test_a_timecode_the_rate_cannot_count_is_left_out_in_a_line(tmp_path, caplog):
    out = tmp_path / "out.mp4"
    writer = VideoWriter(out, 64, 48, 25.0, tags_from={"timecode": "01:00:00;00"})  # drop-frame at 25 fps
    writer.write(np.zeros((48, 64, 3), np.uint8), 0.0)
    writer.close()
    assert _timecodes(out) == set()
    assert "the input's timecode '01:00:00;00' is left out: it is no timecode at 25 fps" in caplog.text


def test_a_folder_that_takes_no_new_file_is_not_called_missing(tmp_path, monkeypatch):
    """/proc exists but refuses a new file with ENOENT: the line said "its folder is not writable (No such file or
    directory)", two halves that contradict each other. It names the folder and says the system's error as one."""
    from stream import paths

    def refused(*args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(paths.tempfile, "mkstemp", refused)
    with pytest.raises(UserError) as raised:
        ensure_writable(tmp_path / "out.mp4")
    assert str(raised.value) == (f"cannot write output {tmp_path / 'out.mp4'}: its folder {tmp_path} is not writable "
                                 f"(creating a file there fails with 'No such file or directory', though it exists); "
                                 f"choose another place")


@pytest.mark.skipif(not sys.platform.startswith("linux") or not os.path.isdir("/proc"), reason="uses Linux's /proc")
def test_proc_is_said_to_take_no_new_file(tmp_path, capsys):
    source = _clip(tmp_path / "in.mkv", FILM, 2, None)
    assert cli.main(["run", str(source), "-o", "/proc/out.mp4", "--no-progress"]) != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].endswith("cannot write output /proc/out.mp4: its folder /proc is not writable (creating a file "
                              "there fails with 'No such file or directory', though it exists); choose another place")
    assert not any("Traceback" in line for line in lines)
