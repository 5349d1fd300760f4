"""Output paths are checked before any work: folders, read-only places, and files standing in for folders."""
import os
import sys
from pathlib import Path

import pytest

from stream.errors import UserError
from stream.paths import ensure_writable, same_file


def test_a_new_file_in_a_new_folder_is_fine_and_nothing_is_left_behind(tmp_path):
    target = tmp_path / "a" / "b" / "out.mp4"
    assert ensure_writable(target) == target
    assert target.parent.is_dir() and list(target.parent.iterdir()) == []  # the probe is gone


def test_an_existing_file_is_not_touched(tmp_path):
    target = tmp_path / "out.mp4"
    target.write_bytes(b"earlier output")
    ensure_writable(target)
    assert target.read_bytes() == b"earlier output"


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(UserError, match="it is a folder"):
        ensure_writable(tmp_path)


def test_a_file_where_a_folder_should_be_is_named(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UserError, match="notes.txt is a file, not a folder"):
        ensure_writable(tmp_path / "notes.txt" / "sub" / "out.mp4", "depth video")


@pytest.mark.skipif(getattr(os, "geteuid", lambda: -1)() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(UserError, match="not writable"):
            ensure_writable(folder / "out.mp4")
    finally:
        folder.chmod(0o755)


def test_a_folder_that_refuses_the_write_is_refused(tmp_path, monkeypatch):
    """As above where the tests run as root (who writes into read-only folders): the probe's creation is denied,
    as a read-only folder or file system denies it; nothing is created and the message names the fix."""
    from stream import paths

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(paths.tempfile, "mkstemp", denied)
    with pytest.raises(UserError, match=r"out\.mp4: its folder is not writable \(Permission denied\); choose "
                                        r"another place$"):
        ensure_writable(tmp_path / "out.mp4")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses Linux's /proc")
def test_an_unwritable_system_folder_is_refused():
    with pytest.raises(UserError, match="not writable"):
        ensure_writable("/proc/out.mp4")


def test_same_file(tmp_path):
    (tmp_path / "in.mp4").write_bytes(b"x")
    assert same_file(tmp_path / "in.mp4", tmp_path / "sub" / ".." / "in.mp4")
    assert not same_file(tmp_path / "in.mp4", tmp_path / "out.mp4")
    (tmp_path / "link.mp4").symlink_to(tmp_path / "in.mp4")
    assert same_file(tmp_path / "link.mp4", tmp_path / "in.mp4")


def test_a_link_to_a_missing_place_is_followed_and_a_name_too_long_is_named(tmp_path):
    link = tmp_path / "out.mp4"
    link.symlink_to(tmp_path / "later" / "take.mp4")  # dangling: its folder is made, as for any output
    assert ensure_writable(link) == tmp_path / "later" / "take.mp4" and (tmp_path / "later").is_dir()
    with pytest.raises(UserError, match="File name too long; choose another name"):
        ensure_writable(tmp_path / ("a" * 300 + ".mp4"))


@pytest.mark.skipif(not os.path.exists("/proc/self/fd/1"), reason="/dev/stdout as Linux links it")
def test_dev_stdout_into_a_pipe_is_written_into(tmp_path):
    """`depthcam bench --json /dev/stdout | jq`: /dev/stdout links to /proc/self/fd/1, which links to "pipe:[N]",
    no path; following the links to it failed ("No such file or directory"), before the run and after it."""
    import subprocess
    import sys

    script = ("from pathlib import Path; from stream.paths import ensure_writable, replace_atomically; "
              "target = ensure_writable(Path('/dev/stdout'), 'report'); "
              "replace_atomically(target, lambda path: path.write_text('{\"frames\": 5}'))")
    result = subprocess.run([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=Path(__file__).resolve().parents[1], timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == '{"frames": 5}' and os.path.islink("/dev/stdout")


def test_a_pattern_no_shell_expanded_gives_its_files_sorted(tmp_path):
    """`depthcam run 'folder/*.jpg'` (Windows' cmd and PowerShell expand no pattern) said "input folder/*.jpg not
    found". It gives the files it matches, sorted as a shell gives them; a hidden one is left out, as there."""
    from stream.paths import glob_matches

    for name in ("b.jpg", "a.jpg", "c.png", ".hidden.jpg"):
        (tmp_path / name).write_bytes(b"x")
    assert glob_matches(str(tmp_path / "*.jpg")) == [str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")]
    assert glob_matches(str(tmp_path / "[ab].???")) == [str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")]
    assert glob_matches(str(tmp_path / "*.gif")) == []


def test_a_file_whose_name_holds_pattern_characters_is_itself(tmp_path):
    from stream.paths import glob_matches

    literal = tmp_path / "take [1].mp4"
    literal.write_bytes(b"x")
    (tmp_path / "take 1.mp4").write_bytes(b"x")  # what the pattern `take [1].mp4` would match
    assert glob_matches(str(literal)) is None
    assert glob_matches(str(tmp_path / "plain.mp4")) is None  # no pattern: not found is said by the input's opening


def test_an_interruption_mid_write_leaves_no_partial_file(tmp_path):
    """A second SIGTERM while bench wrote its report left `.report.json.part` beside it (only OSError cleaned up)."""
    from stream.paths import replace_atomically

    def interrupted(partial):
        partial.write_text("{half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replace_atomically(tmp_path / "report.json", interrupted)
    assert list(tmp_path.iterdir()) == []
