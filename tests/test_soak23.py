"""Long runs and running out of resources while a video file is written: an output deleted during the run, a file
grown to the largest size allowed (a FAT32 card's 4 GB, `ulimit -f`), a long output name."""
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stream.images import write_image
from stream.paths import partial_path
from stream.sources import open_source
from stream.synthetic import SyntheticPortrait, SyntheticScene
from stream.video_writer import OutputFailed, VideoWriter

REPO = Path(__file__).resolve().parents[1]


def _pictures(path: Path) -> int:
    source = open_source(str(path))
    try:
        return len(list(source.frames()))
    finally:
        source.close()


def _write(writer: VideoWriter, first: int, count: int) -> None:
    scene = SyntheticPortrait(SyntheticScene(160, 120))
    for index in range(first, first + count):
        writer.write(scene.render(index)[0], index / 30)


def test_an_output_whose_folder_is_removed_during_the_run_stops_it_with_one_line(tmp_path):
    """The frames went into a file no name reached any more, and the run said "wrote 600 frames to out/x.mp4",
    exit 0, with no such file: now the next write that reaches the disk says so, exit status 1."""
    folder = tmp_path / "out"
    writer = VideoWriter(folder / "x.mp4", 160, 120, 30)
    written = 0
    while not writer.pictures_on_disk and written < 300:  # past the first fragment: the file is under its name
        _write(writer, written, 1)
        written += 1
    assert (folder / "x.mp4").is_file()
    shutil.rmtree(folder)
    with pytest.raises(OutputFailed, match=r"x\.mp4 was deleted during the run \(or its folder removed\)") as lost:
        _write(writer, written, 300)
    assert lost.value.exit_code == 1
    with pytest.raises(OutputFailed):  # closing it says the same, never that it is finalised
        writer.close()
    assert not writer.finalised and writer.pictures_on_disk == 0 and not folder.exists()


def test_an_output_deleted_before_its_close_is_not_called_written(tmp_path):
    """Deleted after the last write (before its first fragment: under its hidden name), the close finds it gone."""
    out = tmp_path / "x.mp4"
    writer = VideoWriter(out, 160, 120, 30)
    _write(writer, 0, 5)
    for leftover in tmp_path.iterdir():
        leftover.unlink()
    with pytest.raises(OutputFailed, match="deleted during the run"):
        writer.close()
    assert not writer.finalised and list(tmp_path.iterdir()) == []


def test_a_run_that_ends_normally_is_finalised_as_before(tmp_path):
    out = tmp_path / "x.mp4"
    writer = VideoWriter(out, 160, 120, 30)
    _write(writer, 0, 40)
    writer.close()
    assert writer.finalised and _pictures(out) == 40 and list(tmp_path.iterdir()) == [out]


LIMITED_WRITE = textwrap.dedent("""
    import resource, sys
    from pathlib import Path
    from stream.errors import UserError
    from stream.synthetic import SyntheticPortrait, SyntheticScene
    from stream.video_writer import VideoWriter

    out = Path(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), int(sys.argv[2])))  # Python ignores SIGXFSZ
    scene = SyntheticPortrait(SyntheticScene(320, 240))
    writer = VideoWriter(out, 320, 240, 30)
    try:
        for index in range(600):
            writer.write(scene.render(index)[0], index / 30)
    except UserError as exc:
        print(f"{exc.exit_code} {writer.pictures_on_disk} {exc}")
    try:
        writer.close()
    except Exception:  # noqa: BLE001 (the write's error is the one told)
        pass
""")


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="RLIMIT_FSIZE is POSIX's")
def test_a_file_grown_to_the_largest_size_allowed_is_named_with_the_fix_and_plays(tmp_path):
    """EFBIG (a FAT32 disk's 4 GB, a `ulimit -f`) said "stage 'sink' failed: OSError: [Errno 27] File too large";
    now one line naming the limit and the fix, exit status 1, and the fragments written before it play."""
    out = tmp_path / "x.mp4"
    done = subprocess.run([sys.executable, "-c", LIMITED_WRITE, str(out), str(200_000)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    code, on_disk, message = done.stdout.strip().split(" ", 2)
    assert code == "1" and message.startswith(f"cannot write more of {out}: it reached the largest file allowed")
    assert "exFAT" in message and "--duration" in message and "\n" not in message
    assert 0 < int(on_disk) <= _pictures(out) and out.stat().st_size <= 200_000


def test_a_long_name_gets_a_hidden_partial_name_that_fits():
    assert partial_path(Path("/videos/x.mp4")) == Path("/videos/.x.mp4.part")  # as before
    portrait, depth = (partial_path(Path(f"/tmp/{'é' * 115}{end}")) for end in ("_portrait.mp4", "_depth.mp4"))
    assert portrait != depth  # the two outputs of one run: two names, cut short alike
    for partial in (portrait, depth):
        assert len(os.fsencode(partial.name)) <= 255 and partial.name.startswith(".éé")
        assert partial.name.endswith(".part") and partial.parent == Path("/tmp")


@pytest.mark.parametrize("length", [250, 255])
def test_a_video_named_with_up_to_the_longest_name_allowed_is_written(tmp_path, length):
    """A 250-byte name, allowed, failed at the first frame (the model loaded) with "File name too long": its
    hidden partial name `.NAME.part` was 6 bytes longer."""
    out = tmp_path / f"{'c' * (length - 4)}.mp4"
    writer = VideoWriter(out, 160, 120, 30)
    _write(writer, 0, 10)
    writer.close()
    assert writer.finalised and _pictures(out) == 10 and list(tmp_path.iterdir()) == [out]


def test_a_photo_named_with_the_longest_name_allowed_is_written(tmp_path):
    import numpy as np

    out = tmp_path / f"{'p' * 251}.png"
    write_image(out, np.full((8, 8, 3), 120, np.uint8))
    assert list(tmp_path.iterdir()) == [out] and out.stat().st_size > 0


def test_a_terminal_of_no_size_still_shows_the_progress(monkeypatch):
    """tqdm measures a pseudo-terminal never sized (`script`, some consoles) as -1x-1 and then wrote no bar at all:
    a whole run without progress. Now it is shown as for a terminal of unknown size."""
    import io

    import tqdm.std

    from stream.console import ProgressBar

    monkeypatch.setattr(tqdm.std, "_screen_shape_wrapper", lambda: lambda stream: (-1, -1))
    shown = io.StringIO()
    bar = ProgressBar(total=50, unit="frame", dynamic_ncols=True, mininterval=0, file=shown)
    bar.update(5)
    bar.close()
    assert "5/50" in shown.getvalue() and "0/50" in shown.getvalue()
