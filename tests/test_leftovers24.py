"""Session 24's leftovers: a GIF or APNG of one picture is a photo (its grey16 depth a 16-bit PNG, not a video); a
write that fails in the output's seek or close, or wrapped by PyAV, is said in the disk's one line; a CUDA run of an
HDR input names the CPU's tone mapping in its first-run notice where Numba's cache lacks it."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from stream.errors import PipelineError


def _picture() -> np.ndarray:
    return np.random.default_rng(24).integers(0, 256, (48, 64, 3), np.uint8)


def _still(path: Path) -> Path:
    """One picture saved as `path`'s type: a GIF, or a PNG named .apng (an APNG of one picture reads so)."""
    from PIL import Image

    Image.fromarray(_picture()).save(path, format="PNG" if path.suffix == ".apng" else None)
    return path


# -- 1. a GIF or APNG of one picture is a photo -------------------------------------------------------------------

@pytest.mark.parametrize("name", ["one.gif", "one.apng"])
def test_a_gif_or_apng_of_one_picture_is_a_photo(tmp_path, name):
    """A GIF of one picture was an animation (read as a 100 fps video), an .apng of one a one-frame video."""
    from stream.animations import animation_metadata, is_still_image
    from stream.app import depth_name, portrait_name
    from stream.sources import ImageSource, open_source

    path = _still(tmp_path / name)
    assert is_still_image(path) and animation_metadata(path) is None
    source = open_source(str(path))
    assert isinstance(source, ImageSource) and source.frame_count == 1
    suffix = Path(name).suffix  # its outputs keep its type, as they had (a GIF's) or as a photo's output is written
    assert portrait_name(str(path), image=True) == str(tmp_path / f"one_portrait{suffix}")
    assert depth_name(str(path), image=True) == f"one_depth{suffix}"


def test_a_gif_that_moves_is_still_an_animation(tmp_path):
    from PIL import Image

    from stream.animations import animation_metadata, is_still_image

    pictures = [Image.fromarray(_picture()), Image.fromarray(255 - _picture())]
    pictures[0].save(tmp_path / "two.gif", save_all=True, append_images=pictures[1:], duration=100)
    assert not is_still_image(tmp_path / "two.gif") and animation_metadata(tmp_path / "two.gif") is not None


@pytest.mark.parametrize("name", ["one.gif", "one.apng"])
def test_a_gif_or_apng_of_one_picture_gets_a_16_bit_png_depth(tmp_path, shared_models, name):
    """`run one.gif --save-depth one_depth.png --depth-format grey16` was refused ("an animation's 16-bit grey depth
    goes into a video"), and into a folder it got one_depth.mkv; the portrait is one picture of the input's type."""
    from PIL import Image

    from stream.cli import main

    path = _still(tmp_path / name)
    named, folder = tmp_path / "given.png", tmp_path / "depths"
    assert main(["run", str(path), "--save-depth", str(named), "--depth-format", "grey16", "--no-progress"]) == 0
    assert main(["run", str(path), "--save-depth", f"{folder}/", "--depth-format", "grey16", "--no-progress"]) == 0
    for depth in (named, folder / "one_depth.png"):
        with Image.open(depth) as image:
            assert image.format == "PNG" and image.mode == "I;16" and image.size == (64, 48)
    assert sorted(os.listdir(folder)) == ["one_depth.png"]
    with Image.open(tmp_path / f"one_portrait{Path(name).suffix}") as image:
        assert getattr(image, "n_frames", 1) == 1 and image.size == (64, 48)


# -- 2. write failures through PyAV's custom I/O said in one line --------------------------------------------------

def _writer(path: Path):
    from stream.video_writer import VideoWriter

    writer = VideoWriter(path, 64, 48, 24)
    rng = np.random.default_rng(24)
    for index in range(40):  # over a second: a fragment or cluster on the disk
        writer.write(rng.integers(0, 255, (48, 64, 3), np.uint8), index / 24)
    return writer


def _failing(code: int):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    return fail


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_seek_that_fails_as_the_file_is_finalised_names_the_file(tmp_path, monkeypatch, suffix):
    """The trailer's seek back to the header (a USB disk pulled out) said "stage 'sink' failed: OSError: [Errno 5]
    Input/output error", the file unnamed."""
    from stream import video_writer

    out = tmp_path / f"out{suffix}"
    writer = _writer(out)
    monkeypatch.setattr(video_writer.os, "lseek", _failing(errno.EIO))
    with pytest.raises(OSError) as raised:
        writer.close()
    monkeypatch.undo()
    assert raised.value.errno == errno.EIO and raised.value.filename == str(out)
    assert str(PipelineError("sink", raised.value)) == (f"cannot write {out}: Input/output error; check the disk, or "
                                                        f"write the output to another one")


def test_a_close_that_reports_a_lost_write_names_the_file(tmp_path, monkeypatch):
    """A network disk tells a failed write at the file's close (EIO): it was unnamed, "stage 'sink' failed"."""
    from stream import video_writer

    out = tmp_path / "out.mkv"
    writer = _writer(out)
    real_close = os.close
    file = writer._file

    def close(fd):
        real_close(fd)
        if fd == file._fd or file._fd is None:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
    monkeypatch.setattr(video_writer.os, "close", close)
    with pytest.raises(OSError) as raised:
        writer.close()
    monkeypatch.undo()
    assert raised.value.filename == str(out)
    assert str(PipelineError("sink", raised.value)).startswith(f"cannot write {out}: Input/output error")


class _WrappingContainer:
    """The output's container whose mux fails as a PyAV that wraps its callback's error would fail: "Error in PyAV
    callback", the file's own OSError its context (PyAV 18 does so in the trailer only)."""

    def __init__(self, inner, name: str) -> None:
        self._inner, self._name = inner, name

    def __getattr__(self, attribute):
        return getattr(self._inner, attribute)

    def mux(self, packet) -> None:
        import av

        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self._name)
        except OSError:
            raise av.error.PyAVCallbackError(1447131472, "Error in PyAV callback", self._name)


def test_a_write_error_wrapped_by_pyav_is_said_as_the_disk_s(tmp_path):
    from stream.video_writer import VideoWriter

    out = tmp_path / "out.mkv"
    writer = VideoWriter(out, 64, 48, 24)
    writer.container = _WrappingContainer(writer.container, str(out))
    with pytest.raises(OSError) as raised:
        for index in range(48):  # until the encoder hands a packet over
            writer.write(_picture(), index / 24)
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(out)
    assert str(PipelineError("sink", raised.value)).startswith(f"the disk is full for {out}")
    with pytest.raises(RuntimeError, match="no picture reached the disk"):  # the write's own error is the one said
        writer.close()
    assert not out.exists()


def test_a_pipe_whose_reader_stopped_is_said_so_not_a_disk(tmp_path):
    """`-o fifo.mkv` read by a program that stopped: "check the disk" was no help."""
    error = OSError(errno.EPIPE, os.strerror(errno.EPIPE), str(tmp_path / "fifo.mkv"))
    line = str(PipelineError("sink", error))
    assert line.startswith(f"cannot write {tmp_path / 'fifo.mkv'}: the program reading it stopped reading")
    assert "disk" not in line


# -- 3. a CUDA run's notice asks Numba's cache about the tone mapping it compiles on the CPU ------------------------

PARTS = {"exact_filter": False, "live_filter": True, "depth_of_field": True}


@pytest.mark.parametrize("cached", [False, True])
def test_a_cuda_hdr_run_s_notice_asks_the_cpu_cache_for_the_tone_mapping_only(monkeypatch, cached):
    """A CUDA run compiles no Numba kernel but the HDR tone mapping's: the notice asked the CPU cache nothing and
    spoke of the CUDA kernels alone, though a first HDR run compiled the tone mapping for seconds."""
    import stream.app
    from stream.hdr import CONVERT_KERNELS

    asked: list[tuple[str, ...]] = []
    monkeypatch.setattr(stream.app, "cpu_cached", lambda kernels=(): asked.append(tuple(kernels)) or cached)
    notice = stream.app.kernels_notice("cuda", PARTS, colour=True)
    assert asked and set(asked) == {tuple(CONVERT_KERNELS)}
    assert notice.startswith("preparing the CUDA kernels and the CPU's tone mapping: a first run") != cached
    assert notice.startswith("preparing the CUDA kernels")
    asked.clear()
    assert stream.app.kernels_notice("cuda", PARTS) == stream.app.kernels_notice("cuda", PARTS, colour=False)
    assert not asked  # an SDR input: nothing on the CPU to ask about
    assert stream.app.run_kernels(PARTS, colour=True, backend="cuda") == tuple(CONVERT_KERNELS)


def test_a_cuda_hdr_warm_up_announces_the_tone_mapping(slow_hdr_warm_up):
    """prepare_kernels on CUDA (faked: no GPU needed) with an HDR input's converter: the slow warm-up's notice says
    what it compiles (no input before in this process: a batch's later HDR input announces the tone mapping alone,
    tests/test_pipes24.py)."""
    import stream.app
    from stream.config import load_config

    notify, converter, messages = slow_hdr_warm_up
    stream.app.prepare_kernels(load_config(None), "cuda", notify, converter=converter)
    assert messages[0].startswith("preparing the CUDA kernels and the CPU's tone mapping: a first run")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX's")
def test_a_run_into_a_named_pipe_that_failed_says_no_disk(tmp_path):
    """Its line said "could not be finalised: it holds at least its first 6 frames, those that reached the disk"."""
    from stream.cli import _what_was_kept

    fifo = tmp_path / "fifo.mkv"
    os.mkfifo(fifo)
    assert _what_was_kept(str(fifo), 40, False, 6) == f"; {fifo} is a named pipe: its reader was given the frames " \
                                                      f"as they were written"
    assert _what_was_kept(str(fifo), 40, True, 40) == f"; {fifo} is finalised and playable up to there"
