"""Windows, simulated on Linux: commands a message suggests quoted as cmd and PowerShell read them, a photo's run
checked against what Windows can still commit, and a photo piped into `depthcam run -` there."""
import ctypes
import os
import sys
import types

import cv2
import numpy as np
import pytest

from stream import images, piped_input
from stream.console import command_word
from stream.errors import UserError

# --- commands in messages --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path, word", [
    ("C:\\Users\\Zoë\\models\\depth.onnx", "C:\\Users\\Zoë\\models\\depth.onnx"),  # nothing to quote there
    ("C:\\Users\\Zoë Smith\\depth.onnx", '"C:\\Users\\Zoë Smith\\depth.onnx"'),
    ("D:\\my models\\", '"D:\\my models\\\\"'),  # a lone \ before the closing quote would escape it
    ("Tom & Jerry.jpg", '"Tom & Jerry.jpg"'),  # & ends a command in both shells
    ("take,2.jpg", '"take,2.jpg"'),  # PowerShell's array operator
    ("it's.png", '"it\'s.png"'),
])
def test_a_path_in_a_suggested_command_is_quoted_as_windows_shells_read_it(path, word):
    """shlex.quote's single quotes are no quotes to cmd: --model 'C:\\models\\depth.onnx' named a file whose name
    began with a quote, and every Windows path has backslashes, so every one was quoted so."""
    assert command_word(path, "win32") == word


def test_elsewhere_a_path_is_quoted_as_a_posix_shell_reads_it():
    assert command_word("my clip's photo.png", "linux") == "'my clip'\"'\"'s photo.png'"
    assert command_word("/home/zoe/depth.onnx", "darwin") == "/home/zoe/depth.onnx"


def test_a_model_folder_s_fix_names_its_file_in_double_quotes_on_windows(tmp_path, monkeypatch):
    from models.registry import _folder_fix

    folder = tmp_path / "my models"
    folder.mkdir()
    (folder / "depth.onnx").write_bytes(b"")
    monkeypatch.setattr(sys, "platform", "win32")
    assert _folder_fix(folder) == f'give the .onnx file in it: --model "{folder / "depth.onnx"}"'


# --- a photo's run against what Windows can commit ---------------------------------------------------------------

def fake_kernel32(monkeypatch, commit_room: int | None) -> list[int]:
    """ctypes.WinDLL("kernel32") whose GlobalMemoryStatusEx reports `commit_room` bytes left to commit (None: the
    call fails); returns the structure sizes it was handed."""
    handed: list[int] = []

    def global_memory_status(reference) -> int:
        status = reference._obj
        handed.append(status.dwLength)
        if commit_room is None:
            return 0
        status.ullTotalPhys, status.ullAvailPhys = 8 << 30, 1 << 30
        status.ullAvailPageFile = commit_room
        return 1

    def win_dll(name: str):
        assert name == "kernel32"
        return types.SimpleNamespace(GlobalMemoryStatusEx=global_memory_status)

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(ctypes, "WinDLL", win_dll, raising=False)
    return handed


def test_on_windows_a_photo_whose_run_would_not_fit_is_refused_before_decoding(tmp_path, monkeypatch):
    """Windows has no /proc/meminfo: the run was not checked, and decoded, then paged for minutes or ended in
    MemoryError. What Windows can still commit is where its allocations fail."""
    path = tmp_path / "big photo.png"
    cv2.imwrite(str(path), np.zeros((1500, 2000, 3), np.uint8))
    handed = fake_kernel32(monkeypatch, 100 << 20)

    def decoded(*args, **kwargs):
        raise AssertionError("decoded before its size was checked")

    monkeypatch.setattr(images.cv2, "imdecode", decoded)
    with pytest.raises(UserError, match=r"is 2000x1500 \(3 megapixels\): its run needs about 0\.4 GB of memory and "
                                        r"0\.1 GB is free; downscale it first, to \d+x\d+ or less \(e\.g\. magick "
                                        r"\"big photo.png\" -resize \d+x\d+ \"big photo_small.png\"\)"):
        images.read_image(path)
    assert handed == [64]  # MEMORYSTATUSEX's size, as the call requires


def test_on_windows_a_photo_that_fits_is_read_and_a_failed_reading_checks_nothing(tmp_path, monkeypatch):
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), np.full((30, 40, 3), 7, np.uint8))
    fake_kernel32(monkeypatch, 16 << 30)
    assert images.memory_available() == 16 << 30
    assert images.read_image(path).shape == (30, 40, 3)
    fake_kernel32(monkeypatch, None)
    assert images.memory_available() is None


# --- standard input on Windows -----------------------------------------------------------------------------------

@pytest.fixture
def windows_stdin(monkeypatch):
    """Descriptor 0 a pipe holding what the test feeds, on a system without /dev/stdin (Windows)."""
    exists = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda path: path != "/dev/stdin" and exists(path))
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace())  # not None: a console program's
    saved = os.dup(0)

    def feed(data: bytes) -> None:
        read_end, write_end = os.pipe()
        os.write(write_end, data)  # under a pipe's buffer: written whole
        os.close(write_end)
        os.dup2(read_end, 0)
        os.close(read_end)

    try:
        yield feed
    finally:
        os.dup2(saved, 0)
        os.close(saved)


def test_on_windows_a_photo_piped_in_is_read_as_a_photo(windows_stdin):
    """`type photo.jpg | depthcam run - -o out.png` was refused ("cannot be read here"): a photo is kept in a file of
    its own, which needs no name for standard input."""
    ok, data = cv2.imencode(".png", np.full((12, 16, 3), 200, np.uint8))
    windows_stdin(data.tobytes())
    path = piped_input._read_stdin("-")
    assert path.name == "stdin.png" and cv2.imread(str(path)).shape == (12, 16, 3)


def test_on_windows_a_video_piped_in_is_refused_in_one_line(windows_stdin):
    windows_stdin(b"\x47" + b"\0" * 187)  # an MPEG-TS packet: FFmpeg would need /dev/stdin's name
    with pytest.raises(UserError, match=r"^input - \(standard input\) is no photo, and a video is read from a pipe "
                                        r"only where .*not on Windows; give the video file itself$"):
        piped_input._read_stdin("-")


def test_on_windows_opencv_is_told_to_open_webcams_without_its_slow_hardware_transforms():
    """Media Foundation's hardware transforms made a webcam take seconds to a minute to open on Windows; the setting
    is read when cv2 is imported, so the package sets it first (a user's own value kept; nothing elsewhere)."""
    import subprocess
    import sys

    name = "OPENCV_VIDEOIO_MSMF_ENABLE_HW_TRANSFORMS"
    probe = ("import sys; sys.platform = {platform!r}; import os; os.environ.pop({name!r}, None); {given}"
             "import stream; print(os.environ.get({name!r}))")

    def run(platform: str, given: str = "") -> str:
        code = probe.format(platform=platform, given=given, name=name)
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()

    assert run("win32") == "0"
    assert run("win32", f"os.environ[{name!r}] = '1'; ") == "1"
    assert run("linux") == "None"


def test_the_bench_report_s_command_is_quoted_for_windows_shells_there(monkeypatch):
    """reproduce.command was shlex.join's: on Windows `'C:\\clips\\my clip.mp4'`, a name cmd reads with its quotes."""
    from stream import bench
    from test_bench import _bench_args

    monkeypatch.setattr("sys.platform", "win32")
    line = bench.command_line(_bench_args("C:\\clips\\my clip.mp4", "--frames", "5"))
    # PowerShell reads a bare comma as an array's: quoted too
    assert line == 'depthcam bench "C:\\clips\\my clip.mp4" --frames 5 --warmup 10 --modes "pipelined,sequential"'
