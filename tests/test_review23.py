"""Session 23's review: defects found in the session's own changes, each with the test that failed before its fix."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_soak23 import _pictures, _write
from test_soak23 import (
    test_an_output_whose_folder_is_removed_during_the_run_stops_it_with_one_line as _folder_removed,
)

import stream.video_writer as video_writer
from stream.video_writer import VideoWriter


class _NoLinkCount:
    """The writer's `os` on a FUSE file system that fills in no link count (android-file-transfer's MTP mount of a
    phone, among others): fstat says 0 links for every open file, deleted or not."""

    def __getattr__(self, name: str):
        return getattr(os, name)

    @staticmethod
    def fstat(fd: int) -> os.stat_result:
        s = os.fstat(fd)
        return os.stat_result((s.st_mode, s.st_ino, s.st_dev, 0, s.st_uid, s.st_gid, s.st_size, int(s.st_atime),
                               int(s.st_mtime), int(s.st_ctime)))


@pytest.fixture
def no_link_count(monkeypatch):
    monkeypatch.setattr(video_writer, "os", _NoLinkCount())


def test_a_file_system_that_counts_no_links_does_not_stop_the_run(tmp_path, no_link_count):
    """A link count of 0 was taken alone for a deleted output: on such a file system every video run stopped at its
    first fragment, "x.mp4 was deleted during the run", its hidden .part left behind. The file is still under its
    name there: it is written and finalised."""
    out = tmp_path / "x.mp4"
    writer = VideoWriter(out, 160, 120, 30)
    _write(writer, 0, 90)
    writer.close()
    assert writer.finalised and _pictures(out) == 90 and list(tmp_path.iterdir()) == [out]


def test_an_output_deleted_on_such_a_file_system_still_stops_the_run(tmp_path, no_link_count):
    _folder_removed(tmp_path)  # its name gone too: the loss is told as before


# --- bench/fetch_gpu_wheels.sh's size of a call ----------------------------------------------------------------------

def _tree_size_statement() -> str:
    """The script's `tree=$(...)` statement (its continued lines joined)."""
    lines = (Path(__file__).resolve().parents[1] / "bench" / "fetch_gpu_wheels.sh").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("tree=$("))
    end = next(i for i in range(start, len(lines)) if not lines[i].endswith("\\"))
    return "\n".join(lines[start:end + 1])


def test_the_wheels_script_sizes_a_tree_with_a_tracked_file_deleted(tmp_path):
    """Under the script's `set -euo pipefail`, a tracked file deleted in the working tree failed its `cat`, xargs
    answered 123, and the script ended there, after its downloads, without the size line or any other."""
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    git("init", "-q")
    (tmp_path / "kept.txt").write_bytes(b"k" * 100)
    (tmp_path / "gone.txt").write_bytes(b"g" * 50)
    git("add", "kept.txt", "gone.txt")
    git("commit", "-q", "-m", "two files")
    (tmp_path / "gone.txt").unlink()
    (tmp_path / "new.txt").write_bytes(b"n" * 7)  # untracked, not ignored: carried too
    script = f"set -euo pipefail\n{_tree_size_statement()}\necho \"tree=$tree\"\n"
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.split() == ["tree=107"], (done.returncode, done.stdout, done.stderr)


@pytest.mark.parametrize("answer", [-1, 0])
def test_a_file_system_that_does_not_say_its_longest_name_takes_the_usual_255(tmp_path, monkeypatch, answer):
    """os.pathconf's PC_NAME_MAX may be -1 or 0 (a file system that does not say): every output was refused."""
    from stream import paths

    monkeypatch.setattr(paths.os, "pathconf", lambda folder, name: answer)
    assert paths.longest_name(tmp_path) == paths.NAME_MAX
    target = paths.ensure_writable(tmp_path / "new" / "out.mp4", "output", create_folder=False)
    assert target.name == "out.mp4"
