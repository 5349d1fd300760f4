"""Session 24: a stream of pictures on standard input (MJPEG, image2pipe PNG) is read as the video it is, not as its
first picture; a pipe without -o is said before it is read; a stopped run names its depth file; a batch's first HDR
input says it compiles the tone mapping alone; `--preset` is pointed to --config."""
from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from media import make_noise_mp4
from stream import piped_input
from stream.errors import UserError

REPO = Path(__file__).resolve().parents[1]
RNG_SEED = 24


def _pictures(count: int, kind: str = ".jpg", size: tuple[int, int] = (64, 48)) -> list[bytes]:
    """`count` seeded, distinct pictures of `kind`, encoded."""
    rng = np.random.default_rng(RNG_SEED)
    encoded = []
    for index in range(count):
        image = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        image[:, :8] = 30 * index % 256  # a band that tells the pictures apart
        ok, data = cv2.imencode(kind, image)
        assert ok
        encoded.append(data.tobytes())
    return encoded


# --- 1. where a picture ends ------------------------------------------------------------------------------------

def _jpeg_end(data: bytes, step: int | None = None) -> int | None:
    """_JpegEnd fed all at once, or `step` bytes at a time as a pipe gives them."""
    find_end = piped_input._JpegEnd()
    if step is None:
        return find_end(bytearray(data))
    got = bytearray()
    for at in range(0, len(data), step):
        got += data[at:at + step]
        if (end := find_end(got)) is not None:
            return end
    return None


def _with_thumbnail(jpeg: bytes) -> bytes:
    """The JPEG with an APP1 segment after its SOI holding a whole JPEG's markers (as an EXIF thumbnail does)."""
    inner = b"Exif\0\0" + b"\xff\xd8\xff\xe0" + bytes(range(40)) + b"\xff\xd9"
    return jpeg[:2] + b"\xff\xe1" + (len(inner) + 2).to_bytes(2, "big") + inner + jpeg[2:]


@pytest.mark.parametrize("make", ["baseline", "progressive", "restarts", "thumbnail"])
@pytest.mark.parametrize("step", [None, 1, 7, 4096])
def test_a_jpeg_s_end_is_found_as_its_bytes_come(make, step):
    """Segments skipped by length (a thumbnail's end marker is inside one), coded data scanned past its stuffed
    0xFF bytes and restart markers, several scans (progressive): the end is the picture's own, whatever the chunks."""
    image = np.random.default_rng(RNG_SEED).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    params = {"progressive": [cv2.IMWRITE_JPEG_PROGRESSIVE, 1],
              "restarts": [cv2.IMWRITE_JPEG_RST_INTERVAL, 1]}.get(make, [])
    jpeg = cv2.imencode(".jpg", image, params)[1].tobytes()
    if make == "thumbnail":
        jpeg = _with_thumbnail(jpeg)
    if make == "restarts":
        assert b"\xff\xd0" in jpeg
    if make == "progressive":
        assert jpeg.count(b"\xff\xda") > 1
    assert _jpeg_end(jpeg, step) == len(jpeg)
    assert _jpeg_end(jpeg + jpeg, step) == len(jpeg)
    assert _jpeg_end(jpeg[:-1], step) is None  # cut short: not known yet


def test_a_png_s_end_is_found_and_a_jpeg_named_wrongly_is_none():
    png = _pictures(1, ".png")[0]
    find_end = piped_input._PngEnd()
    assert find_end(bytearray(png[:-3])) is None
    assert find_end(bytearray(png + png)) == len(png)
    assert piped_input._PngEnd()(bytearray(b"\x89PNG\r\n\x1a\n" + b"\0\0\0\x0d\xff\xfe\xfd\xfc" + b"\0" * 20)) == -1
    assert piped_input._JpegEnd()(bytearray(b"\xff\xd8\xff\xe0\0\x10" + b"\0" * 14 + b"junk")) == -1


# --- 2. standard input: a photo, or a stream of pictures ------------------------------------------------------

@pytest.fixture
def stdin_fed(monkeypatch):
    """Descriptor 0 a pipe that a thread fills with what the test feeds (more than a pipe's buffer too); the lines
    said are kept. `named`: whether the system names standard input (/dev/stdin), as on Linux."""
    saved = os.dup(0)
    said: list[str] = []
    monkeypatch.setattr(piped_input, "notify", said.append)
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace())  # not None: a console program's

    def feed(data: bytes, named: bool = True) -> list[str]:
        if not named:
            exists = os.path.exists
            monkeypatch.setattr(os.path, "exists", lambda path: path != "/dev/stdin" and exists(path))
        read_end, write_end = os.pipe()

        def write() -> None:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(write_end, view):]
            except OSError:  # the test stopped reading
                pass
            finally:
                os.close(write_end)

        threading.Thread(target=write, daemon=True).start()
        os.dup2(read_end, 0)
        os.close(read_end)
        return said

    try:
        yield feed
    finally:
        os.dup2(saved, 0)
        os.close(saved)


def _all_of_stdin() -> bytes:
    out = io.BytesIO()
    while chunk := os.read(0, 1 << 16):
        out.write(chunk)
    return out.getvalue()


@pytest.mark.parametrize("kind", [".jpg", ".png"])
def test_pictures_one_after_another_are_given_back_whole_as_a_video(stdin_fed, kind):
    """`ffmpeg -f mjpeg - | depthcam run -` was read as one photo (its first picture), the rest dropped, exit 0."""
    stream = b"".join(_pictures(40, kind, size=(320, 240)))  # beyond a pipe's 64 KiB buffer
    said = stdin_fed(stream)
    path = piped_input._read_stdin("-")
    assert path == Path("/dev/stdin")
    piped_input.tell_default_rate("-", None)  # said as it opens as a video (open_source), no --input-rate given
    assert _all_of_stdin() == stream  # from its first byte, every picture
    assert len(said) == 1 and said[0].startswith("standard input is a stream of ")
    assert f"read as a video at {piped_input.PIPE_RATE} fps, FFmpeg's default" in said[0]
    assert "-framerate 30 -i - -c copy -f matroska -" in said[0]


@pytest.mark.parametrize("kind", [".jpg", ".png"])
def test_one_picture_piped_in_is_still_a_photo(stdin_fed, kind):
    picture = _pictures(1, kind, size=(320, 240))[0]
    said = stdin_fed(picture)
    path = piped_input._read_stdin("-")
    assert path.name == f"stdin{kind}" and path.read_bytes() == picture and not said


@pytest.mark.parametrize("after", [b"\0\0\0\x18ftypmp42" + b"\0" * 4000, b"\xff\xd8", b"x"])
def test_a_jpeg_followed_by_anything_but_another_is_a_photo_whole(stdin_fed, after):
    """A Motion Photo's video after its JPEG, a trailer, a stray byte: the photo it was, with its bytes all kept."""
    picture = _with_thumbnail(_pictures(1)[0])
    stdin_fed(picture + after)
    path = piped_input._read_stdin("-")
    assert path.name == "stdin.jpg" and path.read_bytes() == picture + after


def test_a_picture_cut_short_is_kept_as_the_photo_it_is(stdin_fed):
    picture = _pictures(1)[0][:-40]
    stdin_fed(picture)
    assert piped_input._read_stdin("-").read_bytes() == picture


def test_on_windows_a_stream_of_pictures_is_refused_in_one_line(stdin_fed):
    stdin_fed(b"".join(_pictures(3)), named=False)
    with pytest.raises(UserError, match=r"^input - \(standard input\) is a stream of JPEG pictures \(MJPEG\), and a "
                                        r"video is read from a pipe only where .*not on Windows"):
        piped_input._read_stdin("-")


def _depthcam(*args: str, data: bytes | None = None) -> tuple[int, list[str]]:
    """The command, standard input a pipe of `data`: its exit status and its lines."""
    result = subprocess.run([sys.executable, "-m", "stream", "run", *args, "--refine", "off", "--no-progress"],
                            input=data, capture_output=True, timeout=180, cwd=REPO)
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr, stderr
    return result.returncode, [line for line in stderr.splitlines() if line.startswith("depthcam:")]


@pytest.mark.parametrize("kind", [".jpg", ".png"])
def test_an_mjpeg_or_png_stream_piped_in_gives_every_picture(shared_models, tmp_path, kind):
    """End to end: 9 pictures in, 9 frames out, at the rate said."""
    import av

    out = tmp_path / "out.mp4"
    code, lines = _depthcam("-", "-o", str(out), data=b"".join(_pictures(9, kind)))
    assert code == 0, lines
    assert lines[0].startswith("depthcam: standard input is a stream of ")
    assert lines[-1].startswith(f"depthcam: wrote 9 frames to {out}")
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert sum(1 for _ in container.decode(stream)) == 9
        assert stream.average_rate == piped_input.PIPE_RATE


# --- 3. a pipe without -o is told so before it is read -----------------------------------------------------------

def test_an_mp4_piped_in_without_o_is_asked_for_o_first(tmp_path):
    """`cat x.mp4 | depthcam run -` said the MP4's index was out of the pipe's reach: -o was what it lacked."""
    clip = make_noise_mp4(tmp_path / "clip.mp4", RNG_SEED)
    assert _depthcam("-", data=clip.read_bytes()) == (2, [
        "depthcam: error: input - is standard input, so there is no place beside it for the output; give one "
        "with -o"])


def test_a_named_pipe_without_o_is_refused_before_it_is_opened(tmp_path):
    from stream.cli import _refuse_no_output_place

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match=r"is a pipe or a device, so there is no place beside it .*give one with -o"):
        _refuse_no_output_place(str(fifo), None)  # returns at once: no reader blocks on the pipe
    _refuse_no_output_place(str(fifo), "out.mp4")
    _refuse_no_output_place(str(tmp_path / "clip.mp4"), None)
    _refuse_no_output_place("synthetic:portrait", None)


# --- 4. a stopped run names its depth file ---------------------------------------------------------------------

def test_a_stop_names_the_depth_file_too(monkeypatch):
    from stream import cli

    kept = {"out.mp4": "; out.mp4 is finalised and playable up to there",
            "d.mkv": "; d.mkv is finalised and playable up to there"}
    monkeypatch.setattr(cli, "_kept", lambda built, target, written: kept[target])
    assert cli._kept_all(None, "out.mp4", "d.mkv", 5) == "; out.mp4 and d.mkv are finalised and playable up to there"
    assert cli._kept_all(None, "out.mp4", None, 5) == kept["out.mp4"]
    kept["d.mkv"] = "; d.mkv could not be finalised: it plays up to about the last second that reached the disk"
    assert cli._kept_all(None, "out.mp4", "d.mkv", 5) == kept["out.mp4"] + kept["d.mkv"]
    kept["null"] = ""  # -o null or window: the depth alone
    assert cli._kept_all(None, "null", "d.mkv", 5) == kept["d.mkv"]


def _read_into(stream, into: list[str]) -> None:
    while chunk := os.read(stream.fileno(), 4096):
        into.append(chunk.decode(errors="replace"))


def test_a_run_stopped_with_save_depth_says_both_files_are_finalised(shared_models, tmp_path):
    """`--save-depth d.mkv` then Ctrl-C (SIGTERM alike): the line named out.mp4 alone."""
    import av

    out, depth = tmp_path / "out.mp4", tmp_path / "d.mkv"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "stream", "run", "synthetic:portrait?size=96x64&frames=100000",
                                "-o", str(out), "--save-depth", str(depth), "--refine", "off"],
                               cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    said: list[str] = []
    reader = threading.Thread(target=_read_into, args=(process.stderr, said), daemon=True)
    reader.start()
    deadline = time.monotonic() + 180  # a fresh machine compiles the kernels first
    while time.monotonic() < deadline and process.poll() is None \
            and not re.search(r"\b[1-9]\d*/100000 ", "".join(said)[-400:]):  # a frame written, by the progress bar
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    reader.join(5)
    stderr = "".join(said)
    assert process.returncode == 130, stderr
    line = [one for one in stderr.replace("\r", "\n").splitlines() if "interrupted after" in one]
    assert len(line) == 1 and line[0].endswith(f"; {out} and {depth} are finalised and playable up to there"), stderr
    for path in (out, depth):
        with av.open(str(path)) as container:
            assert sum(1 for _ in container.decode(video=0)) > 0


# --- 5. a batch's first HDR input compiles the tone mapping alone ------------------------------------------------

def test_an_hdr_input_after_others_announces_the_tone_mapping_alone(monkeypatch, slow_hdr_warm_up):
    """Input 1 loaded the kernels; the first HDR input's slow warm-up said "preparing the CPU kernels: a first run on
    this machine ... compiles them", where only the tone mapping was compiling."""
    import stream.app
    from stream.config import load_config

    notify, converter, messages = slow_hdr_warm_up
    stream.app.prepare_kernels(load_config(None), "cpu")  # input 1, SDR
    stream.app.prepare_kernels(load_config(None), "cpu", notify, converter=converter)
    assert messages[0].startswith("preparing the HDR tone mapping: its CPU kernel compiles on its first use")
    assert messages[-1].startswith("tone mapping ready in")
    monkeypatch.setattr(stream.app, "cpu_cached", lambda kernels=(): True)
    assert stream.app.tone_mapping_notice().startswith("preparing the HDR tone mapping: loading its CPU kernel")


def test_a_first_hdr_run_still_announces_every_kernel(slow_hdr_warm_up):
    """No input before: the notice is the whole warm-up's, tone mapping included, as before."""
    import stream.app
    from stream.config import load_config

    notify, converter, messages = slow_hdr_warm_up
    stream.app.prepare_kernels(load_config(None), "cpu", notify, converter=converter)
    assert messages[0].startswith("preparing the CPU kernels: a first run on this machine")


# --- 6. --preset points to --config ------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, hint", [
    (["run", "a.mp4", "--preset", "live-cpu"], "unrecognized arguments: --preset live-cpu; did you mean --config "
                                               "live-cpu? (see 'depthcam run --help')"),
    (["run", "a.mp4", "--preset=live-cpu"], "; did you mean --config live-cpu?"),
    (["run", "--preset", "live-cpu", "a.mp4"], "unrecognized arguments: --preset; did you mean --config live-cpu?"),
    (["run", "a.mp4", "--preset"], "; did you mean --config? (see"),
    (["bench", "--preset", "live-cpu"], "; did you mean --config live-cpu? (see 'depthcam bench --help')"),
    (["--preset", "live-cpu", "run", "a.mp4"], "--preset is no option: did you mean --config?"),
])
def test_preset_is_pointed_to_config(capsys, argv, hint):
    """The README calls them presets: `--preset live-cpu` was "unrecognized arguments" with no word of --config."""
    from stream import cli

    with pytest.raises(SystemExit) as exit:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exit.value.code == 2 and err.count("\n") == 1 and hint in err, err


def _with_segment(jpeg: bytes, marker: int, payload: bytes) -> bytes:
    """`jpeg` with an APPn segment of `payload` right after its SOI."""
    return jpeg[:2] + bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


@pytest.mark.parametrize("marker, payload", [
    (0xE2, b"MPF\0II*\0" + b"\0" * 40),  # CIPA Multi-Picture Format: a camera's preview, an iPhone's gain map
    (0xE1, b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><rdf:Description hdrgm:Version=\"1.0\"/></x:xmpmeta>"),
    (0xE1, b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><GContainer:Directory/></x:xmpmeta>"),  # Ultra HDR
])
def test_a_photo_whose_second_picture_is_its_own_is_a_photo(stdin_fed, marker, payload):
    """A camera JPEG with its large preview after it (MPF), an iPhone HDR or Android Ultra HDR JPEG with its gain
    map: two JPEGs one after the other that are one photo (read as a 2-picture MJPEG video, refused with -o x.jpg)."""
    first, second = _pictures(2)
    photo = _with_segment(first, marker, payload) + second
    said = stdin_fed(photo)
    path = piped_input._read_stdin("-")
    assert path.name == "stdin.jpg" and path.read_bytes() == photo and not said


def test_jpegs_with_padding_between_them_are_a_stream(stdin_fed):
    """Zero or 0xFF bytes between the pictures (a V4L2 buffer dump) made the stream a photo, copied until the pipe
    ended (never, for a live producer)."""
    stream = b"".join(picture + pad for picture, pad in zip(_pictures(5), [b"\0\0", b"\xff" * 3, b"\0" * 100,
                                                                            b"\xff\0\xff", b""]))
    stdin_fed(stream)
    assert piped_input._read_stdin("-") == Path("/dev/stdin")
    assert _all_of_stdin() == stream
