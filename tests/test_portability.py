"""Windows and macOS, simulated on any system: console code pages, stop signals, Windows file names and files another
program holds open, and what `depthcam doctor` says there."""
import ctypes
import io
import os
import signal
import sys
import threading
import types

import pytest

from stream import doctor
from stream.console import TolerantStream, fit_encoding
from stream.errors import UserError
from stream.interrupts import signals_stop, stop_signals
from stream.paths import ensure_writable, windows_name_problem


def code_page_stream(encoding: str = "cp1252") -> io.TextIOWrapper:
    """What Python gives a Windows program whose output goes to a file or a pipe: the ANSI code page, strict."""
    return io.TextIOWrapper(io.BytesIO(), encoding=encoding, errors="strict", write_through=True)


def written(stream: io.TextIOWrapper) -> str:
    return stream.buffer.getvalue().decode(stream.encoding)


# --- consoles that cannot encode every character -------------------------------------------------------------

def test_a_message_a_code_page_cannot_encode_is_written_with_stand_ins_not_dropped():
    """stderr is wrapped in TolerantStream; on a strict cp1252 stream the line with '→' raised UnicodeEncodeError,
    which TolerantStream took for a closed stream: the whole line was lost."""
    stream = code_page_stream()
    tolerant = TolerantStream(stream)
    tolerant.write("depthcam: e2e: capture → sink, 3×3 patch, 90° turn\n")
    assert written(stream) == "depthcam: e2e: capture -> sink, 3×3 patch, 90° turn\n"  # cp1252 has × and °


def test_characters_without_a_stand_in_are_escaped_not_lost():
    stream = code_page_stream("ascii")
    fit_encoding(stream)
    print("Zoë 模型 → ok", file=stream)
    assert written(stream) == "Zo\\xeb \\u6a21\\u578b -> ok\n"


def test_the_benchmark_table_prints_on_a_code_page():
    """`depthcam bench --json out.json > log.txt` on Windows raised at TABLE_NOTE's '→' after the whole benchmark,
    before the JSON was written (reproduced with PYTHONIOENCODING=cp1252; cli.console_main must fit stdout)."""
    from stream.bench import TABLE_NOTE

    stream = code_page_stream()
    with pytest.raises(UnicodeEncodeError):
        print(TABLE_NOTE, file=stream)
    fit_encoding(stream)
    print(TABLE_NOTE, file=stream)
    assert "capture -> sink" in written(stream)


def test_utf8_streams_are_left_alone():
    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    fit_encoding(stream)
    assert stream.errors == "strict"
    fit_encoding(io.StringIO())  # no reconfigure: nothing to do, no error
    closed = code_page_stream()
    closed.close()
    fit_encoding(closed)


def test_doctor_prints_a_cache_path_its_code_page_cannot_encode(tmp_path, monkeypatch):
    """A cache under a name cp1252 lacks, doctor's output redirected on Windows: UnicodeEncodeError, the line lost
    and `depthcam: error: UnicodeEncodeError` instead (reproduced: DEPTHCAM_MODELS=/tmp/模型
    PYTHONIOENCODING=cp1252 depthcam doctor > out.txt)."""
    cache = tmp_path / "模型"
    monkeypatch.setenv("DEPTHCAM_MODELS", str(cache))
    monkeypatch.setattr(doctor, "CHECKS", (doctor._models,))
    stream = code_page_stream()
    monkeypatch.setattr(sys, "stdout", stream)
    assert doctor.run_doctor() == 0
    assert "\\u6a21\\u578b" in written(stream) and written(stream).startswith("ok  models")


# --- stop signals -----------------------------------------------------------------------------------------

def _stop_by(signum: int) -> tuple[bool, list[int]]:
    """Raise `signum` inside signals_stop; a handler installed before records it where signals_stop did not
    take it (instead of the signal's default action ending the test run)."""
    before: list[int] = []
    previous = signal.signal(signum, lambda number, frame: before.append(number))
    try:
        stop = threading.Event()
        with signals_stop(stop):
            signal.raise_signal(signum)
        signal.raise_signal(signum)  # after the run: the earlier handler is back
        return stop.is_set(), before
    finally:
        signal.signal(signum, previous)


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on Windows")
def test_a_closed_terminal_finalises_the_run_as_sigterm_does():
    """SIGHUP (the terminal window or the SSH session closed) killed the run as a crash does."""
    stopped, before = _stop_by(signal.SIGHUP)
    assert stopped and before == [signal.SIGHUP]


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="needs a spare signal to stand in for SIGBREAK")
def test_ctrl_break_on_windows_finalises_the_run(monkeypatch):
    """Windows' Ctrl-Break (SIGBREAK), the way a script stops a program there (os.kill(pid, CTRL_BREAK_EVENT)),
    ended the run at once; simulated with SIGUSR1 standing in for SIGBREAK."""
    monkeypatch.setattr(signal, "SIGBREAK", signal.SIGUSR1, raising=False)
    stopped, before = _stop_by(signal.SIGUSR1)
    assert stopped and before == [signal.SIGUSR1]


def test_signals_a_system_lacks_are_left_out(monkeypatch):
    for name in ("SIGHUP", "SIGBREAK"):
        monkeypatch.delattr(signal, name, raising=False)  # Windows has no SIGHUP, POSIX no SIGBREAK
    assert stop_signals() == (signal.SIGINT, signal.SIGTERM)
    with signals_stop(threading.Event()) as state:
        assert not state.received


# --- Windows file names -------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "C:\\Users\\Zoë\\Videos\\clip_portrait.mp4", "C:clip_portrait.mp4", "\\\\server\\share\\out.mp4",
    "\\\\?\\C:\\very\\long\\out.mp4", "D:/clips/console.png", "..\\out\\nullable.mp4", "out/.hidden.png",
])
def test_ordinary_windows_paths_pass(path):
    assert windows_name_problem(path) is None


@pytest.mark.parametrize("path, said", [
    ("take 12:30.mp4", "does not allow ':'"),  # a time in a script's name: an NTFS stream, not a file
    ("C:\\Users\\Zoë\\take_12:30:45.67.mp4", "does not allow ':'"),
    ("D:\\clips\\NUL.mp4", "names a Windows device (NUL)"),  # the output would vanish
    ("con.png", "names a Windows device (CON)"),
    ("out\\COM1.jpg", "names a Windows device (COM1)"),
    ("portrait.mp4.", "drops the dot or space"),
    ("what?.png", "does not allow '?'"),
    ("a\tb.mp4", "character 9"),
])
def test_names_windows_refuses_or_reads_otherwise_are_named(path, said):
    assert said in windows_name_problem(path)


def test_on_windows_an_output_named_with_a_colon_is_refused_before_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "platform", "win32")
    with pytest.raises(UserError, match="Windows does not allow ':'.*choose another name"):
        ensure_writable(tmp_path / "take 12:30.mp4")
    assert list(tmp_path.iterdir()) == []
    assert ensure_writable(tmp_path / "Zoë clip.mp4") == tmp_path / "Zoë clip.mp4"  # non-ASCII is fine


# --- an output another program holds open (Windows) ---------------------------------------------------------

class FakeKernel32:
    """CreateFileW answering as Windows does: INVALID_HANDLE_VALUE with the last error `error` (32 for a file
    another program holds without sharing its deletion), or, with `error` None, a handle that must be closed."""

    def __init__(self, error: int | None) -> None:
        self.error, self.asked, self.closed = error, [], []

    def create(self, name, access, share, security, disposition, flags, template):
        self.asked.append((name, access, share, disposition))
        return ctypes.c_void_p(-1).value if self.error is not None else 1234

    def close(self, handle):
        self.closed.append(handle)
        return 1


class Function:
    """A ctypes function as far as held_open_elsewhere uses one: it takes argtypes and restype."""

    def __init__(self, call) -> None:
        self.call, self.argtypes, self.restype = call, None, None

    def __call__(self, *args):
        return self.call(*args)


@pytest.fixture
def windows_kernel(monkeypatch):
    """Simulated Windows: ctypes.WinDLL("kernel32") is the fake the test installs, its last error the fake's."""
    kernels: list[FakeKernel32] = []

    def win_dll(name, use_last_error=False):
        assert name == "kernel32" and use_last_error
        return types.SimpleNamespace(CreateFileW=Function(kernels[-1].create), CloseHandle=Function(kernels[-1].close))

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(ctypes, "WinDLL", win_dll, raising=False)
    monkeypatch.setattr(ctypes, "get_last_error", lambda: kernels[-1].error, raising=False)

    def install(error: int | None) -> FakeKernel32:
        kernels.append(FakeKernel32(error))
        return kernels[-1]

    return install


def test_an_output_a_player_holds_open_is_refused_before_the_run(tmp_path, windows_kernel):
    """Windows cannot rename over a file another program holds (a player showing the last output): the run
    went through every frame, then failed at the rename with its frames left under the hidden .NAME.part."""
    target = tmp_path / "clip_portrait.mp4"
    target.write_bytes(b"the last output, playing")
    kernel = windows_kernel(32)  # ERROR_SHARING_VIOLATION
    with pytest.raises(UserError, match="another program has it open.*close it there, or choose another name"):
        ensure_writable(target)
    assert kernel.asked == [(str(target), 0x00010000, 0x7, 3)]  # DELETE access, every sharing allowed
    assert target.read_bytes() == b"the last output, playing"


def test_an_output_no_one_holds_passes_and_its_handle_is_closed(tmp_path, windows_kernel):
    target = tmp_path / "photo_portrait.png"
    target.write_bytes(b"earlier")
    kernel = windows_kernel(None)
    assert ensure_writable(target) == target and kernel.closed == [1234]
    windows_kernel(5)  # ERROR_ACCESS_DENIED: not a holder; the read-only check and the probe speak for that
    assert ensure_writable(target) == target


def test_a_new_output_asks_windows_nothing(tmp_path, windows_kernel):
    kernel = windows_kernel(32)
    assert ensure_writable(tmp_path / "new.mp4") == tmp_path / "new.mp4" and kernel.asked == []


@pytest.mark.skipif(os.name == "nt", reason="the real call is Windows'")
def test_elsewhere_a_file_open_in_another_handle_is_no_obstacle(tmp_path):
    target = tmp_path / "out.mp4"
    target.write_bytes(b"x")
    with open(target, "rb"):
        assert ensure_writable(target) == target


# --- the model cache's lock on Windows ----------------------------------------------------------------------

def fake_msvcrt() -> types.ModuleType:
    """Windows' byte-range locks as msvcrt.locking gives them: one holder a region of a file, whatever handle asks;
    LK_LOCK gives up (EDEADLOCK) when the region stays taken; unlocking on a closed handle is an error."""
    import errno as errno_codes

    module = types.ModuleType("msvcrt")
    module.LK_UNLCK, module.LK_LOCK = 0, 1
    held: dict[tuple[int, int, int], threading.Lock] = {}
    module.gave_up = 0

    def locking(fd: int, mode: int, nbytes: int) -> None:
        status = os.fstat(fd)  # raises on a closed handle, as Windows does
        region = held.setdefault((status.st_dev, status.st_ino, os.lseek(fd, 0, os.SEEK_CUR)), threading.Lock())
        if mode == module.LK_UNLCK:
            region.release()
        elif not region.acquire(timeout=0.02):  # Windows tries ten times a second apart
            module.gave_up += 1
            raise OSError(errno_codes.EDEADLOCK, "Resource deadlock avoided")

    module.locking = locking
    return module


def test_on_windows_two_first_runs_write_the_cache_one_after_the_other(tmp_path, monkeypatch):
    """Without fcntl the cache had no lock at all: two first runs downloaded and converted into one file at once."""
    from models.download import cache_lock

    monkeypatch.setitem(sys.modules, "fcntl", None)  # import fcntl raises ImportError, as on Windows
    msvcrt = fake_msvcrt()
    monkeypatch.setitem(sys.modules, "msvcrt", msvcrt)
    events: list[str] = []
    started = threading.Barrier(2)

    def first_run() -> None:
        started.wait()
        with cache_lock(tmp_path / "cache" / "fcrn.onnx"):
            events.append("in")
            threading.Event().wait(0.1)  # longer than LK_LOCK's wait: the other gives up at least once
            events.append("out")

    runs = [threading.Thread(target=first_run) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(timeout=10)
    assert events == ["in", "out", "in", "out"] and msvcrt.gave_up >= 1


# --- doctor on Windows and macOS ---------------------------------------------------------------------------

def fake_winreg(registered: set[str]) -> types.ModuleType:
    module = types.ModuleType("winreg")
    module.HKEY_CLASSES_ROOT = object()

    def open_key(root, key):
        assert root is module.HKEY_CLASSES_ROOT
        if key not in registered:
            raise FileNotFoundError(2, "The system cannot find the file specified")
        return types.SimpleNamespace(Close=lambda: None)

    module.OpenKey = open_key
    return module


@pytest.fixture
def windows_doctor(monkeypatch):
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setitem(sys.modules, "pyvirtualcam", types.ModuleType("pyvirtualcam"))

    def with_registered(*names: str) -> doctor.Check:
        keys = {doctor.WINDOWS_VIRTUAL_CAMERAS[name] for name in names}
        monkeypatch.setitem(sys.modules, "winreg", fake_winreg(keys))
        return doctor._virtual_camera()

    return with_registered


def test_doctor_on_windows_says_when_no_virtual_camera_is_registered(windows_doctor):
    """It said 'ok ... OBS Virtual Camera or Unity Capture must be set up' with neither installed, and -o vcam then
    failed with pyvirtualcam's 'OBS Virtual Camera device not found! Did you install OBS?'."""
    check = windows_doctor()
    assert not check.ok and "no virtual camera is registered" in check.detail and "install OBS Studio" in check.fix


def test_doctor_on_windows_names_the_virtual_cameras_registered(windows_doctor):
    assert windows_doctor("OBS Virtual Camera").detail == "OBS Virtual Camera registered"
    check = windows_doctor("OBS Virtual Camera", "Unity Capture")
    assert check.ok and check.detail == "OBS Virtual Camera and Unity Capture registered"


def test_doctor_on_macos_says_how_obs_virtual_camera_is_set_up(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setitem(sys.modules, "pyvirtualcam", types.ModuleType("pyvirtualcam"))
    check = doctor._virtual_camera()
    assert "Start Virtual Camera" in check.detail and "Unity Capture" not in check.detail  # Windows only


@pytest.mark.parametrize("platform, said", [
    ("darwin", "System Settings > Privacy & Security > Camera"),
    ("win32", "Settings > Privacy & security > Camera"),
])
def test_doctor_names_the_camera_permission_where_the_system_asks_for_one(monkeypatch, platform, said):
    """On macOS a camera refused to the terminal opens but gives no frame, which read as 'in use elsewhere?'."""
    monkeypatch.setattr(sys, "platform", platform)
    check = doctor._cameras()
    assert check.ok and said in check.detail and "camera:0" in check.detail


@pytest.mark.parametrize("system, machine, said", [
    ("darwin", "arm64", "conda install -c conda-forge llvm-openmp"),  # no tbb wheel for Apple silicon
    ("darwin", "x86_64", "pip install tbb"),
    ("linux", "x86_64", "pip install tbb"),
])
def test_doctor_s_threading_fix_is_one_that_installs_there(monkeypatch, system, machine, said):
    """On an Apple-silicon Mac, where pip's Numba has neither layer, doctor said 'pip install tbb', which finds
    no distribution there (`pip download tbb --platform macosx_11_0_arm64`: none)."""
    import numba

    import kernels.cpu_threads

    monkeypatch.setattr(kernels.cpu_threads, "_layer_takes_turns", lambda: True)
    monkeypatch.setattr(numba, "threading_layer", lambda: "workqueue")
    monkeypatch.setattr(sys, "platform", system)
    monkeypatch.setattr(doctor.platform, "machine", lambda: machine)
    check = doctor._cpu()
    assert not check.ok and "take turns" in check.detail and said in check.fix


def test_python_m_stream_runs_from_a_project_with_its_own_models_module(tmp_path):
    """An ML project's folder holds models.py (and kernels.py): `python -m stream` there imported them in place of
    depthcam's packages and died with "'models' is not a package"."""
    import subprocess
    import sys

    (tmp_path / "models.py").write_text("class Net:\n    pass\n")
    (tmp_path / "kernels.py").write_text("raise ImportError('the project\\'s own kernels.py was imported')\n")
    result = subprocess.run([sys.executable, "-m", "stream", "--version"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "depthcam" in result.stdout + result.stderr
