"""Session 26: options that an output does not take are said before the model loads, where a run dropped them
without a word (--codec for a photo, --audio-track for a window, --depth-format without a depth file); a batch's
per-input refusals (--input-rate, --start, --audio-track) come for all its inputs before the first runs; --input-rate
reaches standard input's line of FFmpeg's 25 fps as an argument, for library callers too."""
from __future__ import annotations

import argparse
import os
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

import stream.app
from media import make_noise_mp4
from stream import cli, piped_input
from stream.config import load_config
from stream.sources import open_source
from test_input_rate25 import _raw_mjpeg
from test_pipes24 import _pictures, stdin_fed  # noqa: F401  (stdin_fed: a fixture used here)


@pytest.fixture
def no_model(monkeypatch):
    """The model's loading, failing the test where a run gets that far: a refusal must come before it."""
    def never(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(stream.app, "load_estimator", never)


@pytest.fixture
def photo(tmp_path) -> Path:
    path = tmp_path / "photo.jpg"
    cv2.imwrite(str(path), np.full((48, 64, 3), 120, np.uint8))
    return path


@pytest.fixture
def clip(tmp_path) -> Path:
    return make_noise_mp4(tmp_path / "clip.mp4")  # no sound, 12 fps


def _errors(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("depthcam:")]


# --- 1. an option that no output of a run takes: refused in one line before the model loads ---------------------

CODEC = "depthcam: error: --codec sets the codec of a video file written; "
TRACKS = "depthcam: error: --audio-track chooses the sound tracks a video file written keeps; "


@pytest.mark.parametrize("input_name, argv, line", [
    ("photo", ["-o", "{tmp}/out.png", "--codec", "hevc"],
     CODEC + "{tmp}/out.png is a photo: drop --codec, or write a video (out.mp4)"),
    ("photo", ["--codec", "hevc"],  # beside the photo by default
     CODEC + "the output {tmp}/photo_portrait.png is a photo: drop --codec, or write a video (photo_portrait.mp4)"),
    ("clip", ["-o", "null", "--codec", "prores"],
     CODEC + "-o null writes no file: drop --codec, or write a video (-o out.mp4)"),
    ("clip", ["-o", "vcam", "--codec", "h264"],
     CODEC + "-o vcam feeds a virtual camera and writes no file: drop --codec, or write a video (-o out.mp4)"),
    ("photo", ["-o", "{tmp}/out.png", "--codec", "hevc", "--save-depth", "{tmp}/d.mkv", "--depth-format", "grey16"],
     CODEC + "{tmp}/out.png is a photo, and the grey16 depth video {tmp}/d.mkv is FFV1 whatever it says: drop "
             "--codec, or write a video (out.mp4)"),
    ("clip", ["-o", "window", "--audio-track", "1"],
     TRACKS + "-o window shows the frames and writes no file: drop --audio-track, or write a video (-o out.mp4)"),
    ("clip", ["-o", "vcam", "--audio-track", "2,1"],  # a photo given one has its own line: "has no audio stream"
     TRACKS + "-o vcam feeds a virtual camera and writes no file: drop --audio-track, or write a video (-o out.mp4)"),
    ("camera:0", ["--codec", "hevc"],  # its window by default: refused before the camera opens
     CODEC + "camera:0's output is a window (the default), which writes no file: drop --codec, or write a video "
             "(-o out.mp4)"),
    ("clip", ["-o", "null", "--side-by-side", "--save-depth", "{tmp}/d.mp4"],  # the depth is never side by side
     "depthcam: error: --side-by-side lays input, output and depth side by side in the output; -o null writes no "
     "file: drop --side-by-side, or write a video (-o out.mp4)"),
    ("clip", ["-o", "null", "--depth-format", "grey16"],
     "depthcam: error: --depth-format grey16 sets the pictures of the depth file, and none is written; add "
     "--save-depth FILE (e.g. --save-depth depth.mkv), or drop --depth-format"),
])
def test_an_option_no_output_takes_is_refused_before_the_model_loads(no_model, photo, clip, tmp_path, capsys,
                                                                     input_name, argv, line):
    """Each ran to its end (or to the window's own refusal) with the option dropped unsaid: a photo written as a
    photo whatever --codec said, a window with no sound, no depth file for --depth-format."""
    spec = {"photo": str(photo), "clip": str(clip)}.get(input_name, input_name)
    argv = [arg.format(tmp=tmp_path) for arg in argv]
    assert cli.main(["run", spec, *argv, "--no-progress"]) == 2
    assert _errors(capsys) == [line.format(tmp=tmp_path)]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clip.mp4", "photo.jpg"]  # nothing written


def _args(**given) -> argparse.Namespace:
    args = cli.build_parser().parse_args(["run", "x.mp4"])
    vars(args).update(given)
    return args


@pytest.mark.parametrize("output, depth, depth_format, given, ignored", [
    ("out.mp4", None, "colour", {"codec": "hevc", "audio_track": [2]}, []),
    ("null", "d.mp4", "colour", {"codec": "hevc"}, []),  # the depth video takes it
    ("null", "d.mkv", "grey16", {"codec": "hevc"}, ["--codec"]),  # FFV1 whatever it says
    ("out.png", None, "colour", {"codec": "auto"}, []),  # the default, asking nothing
    ("out.png", None, "colour", {"audio_track": "none"}, []),  # a picture has no sound: what was asked
    ("out.png", None, "colour", {"audio_track": "all"}, []),
    ("window", "d.mp4", "colour", {"codec": "hevc", "audio_track": [1]}, ["--audio-track"]),
    ("out.gif", None, "colour", {"codec": "vp9"}, ["--codec"]),
])
def test_which_outputs_take_codec_and_audio_track(output, depth, depth_format, given, ignored):
    assert cli._ignored_by("x.mp4", output, depth, depth_format, _args(**given)) == ignored


def test_a_video_written_keeps_codec_and_audio_track_unrefused(clip, tmp_path):
    """The check refuses nothing that an output takes: a video file with --codec, --audio-track and a depth file."""
    config, _ = cli.run_config(str(clip), _args(codec="hevc", audio_track=[1]))
    cli._refuse_ignored_options(str(clip), str(tmp_path / "out.mkv"), config, _args(codec="hevc", audio_track=[1]))


@pytest.mark.parametrize("spec, argv, said", [
    ("camera:0", ["--progress", "--max-batch", "4"], [
        "depthcam: --progress: camera:0 never ends, so no bar counts towards its end; the run's last line says what "
        "it captured",
        "depthcam: --max-batch 4: async depth (the live preset's) runs the network on the newest frame alone; add "
        "--no-async-depth for batches of 4 frames, each frame with its own depth"]),
    ("camera:0", ["--max-batch", "4", "--no-async-depth"], []),  # taken
    ("rtsp://user:secret@cam/live", ["--progress"], [
        "depthcam: --progress: rtsp://user:***@cam/live never ends, so no bar counts towards its end; the run's last "
        "line says what it captured"]),
    ("http://host/clip.mp4", ["--progress", "--max-batch", "4"], []),  # may serve a file, read as one
    ("clip.mp4", ["--progress", "--max-batch", "4", "--async-depth"], []),
])
def test_what_a_live_input_leaves_aside_is_said_before_the_model_loads(capsys, spec, argv, said):
    """--progress for a camera drew no bar, --max-batch under async depth batched nothing: each without a word."""
    args = cli.build_parser().parse_args(["run", spec, *argv])
    config = load_config(cli.LIVE_PRESET, cli._overrides(args))  # a live input's, async depth and all
    capsys.readouterr()
    cli._note_live_ignored(spec, config, args)
    assert _errors(capsys) == said


# --- 2. a batch: every input checked before the first runs --------------------------------------------------------

@pytest.fixture
def ran(monkeypatch) -> list[str]:
    """The inputs a batch starts (each input's own run replaced: the checks before them are what is tested)."""
    started: list[str] = []
    monkeypatch.setattr(cli, "_run", lambda spec, output, args: started.append(Path(spec).name) or 0)
    return started


def test_a_batch_with_input_rate_that_fits_some_inputs_is_refused_before_any_runs(ran, clip, photo, tmp_path,
                                                                                 capsys):
    """The clip ran first, then the photo was refused at its turn (an input after hours of others, maybe)."""
    mjpeg = _raw_mjpeg(tmp_path / "cam.mjpeg", 3)
    out = tmp_path / "out"
    assert cli.main(["run", str(mjpeg), str(clip), str(photo), "-o", f"{out}/", "--input-rate", "30"]) == 2
    assert ran == [] and not out.exists()
    assert _errors(capsys) == [
        f"depthcam: error: --input-rate sets the rate of inputs that carry none (a stream of pictures on standard "
        f"input or a pipe, an .mjpeg file, a raw .h264 without timing); of the 3 inputs, {clip} has its own (12 fps); "
        f"{photo} is a photo, one picture with no rate: leave --input-rate out, or run those inputs apart"]


def test_a_batch_whose_inputs_all_take_input_rate_runs_them_all(ran, tmp_path, capsys):
    first, second = _raw_mjpeg(tmp_path / "a.mjpeg", 3), _raw_mjpeg(tmp_path / "b.mjpeg", 3)
    assert cli.main(["run", str(first), str(second), "-o", "null", "--input-rate", "30"]) == 0
    assert ran == ["a.mjpeg", "b.mjpeg"]


def test_a_batch_with_start_and_a_photo_is_refused_before_any_runs(ran, clip, photo, tmp_path, capsys):
    assert cli.main(["run", str(clip), str(photo), "synthetic:portrait", "-o", "null", "--start", "0.5"]) == 2
    assert ran == []
    assert _errors(capsys) == [
        f"depthcam: error: --start and --duration take a part of a video file; of the 3 inputs, {photo} is a photo; "
        f"synthetic:portrait is the synthetic scene, no video file: leave those inputs out, or run them apart"]


def test_a_batch_with_an_audio_track_a_video_lacks_is_refused_before_any_runs(ran, clip, photo, tmp_path, capsys):
    """The photo's picture keeps no sound (said apart); the clip, written as a video, has no audio stream 2."""
    assert cli.main(["run", str(photo), str(clip), "-o", f"{tmp_path}/out/", "--audio-track", "2"]) == 2
    assert ran == [] and not (tmp_path / "out").exists()
    assert _errors(capsys) == [
        f"depthcam: error: --audio-track 2 names audio streams by their numbers; of the 2 inputs, {clip} has no audio "
        f"stream: give numbers that each input has, or run those inputs apart"]


def test_a_batch_of_photos_and_videos_with_codec_says_once_the_photos_do_not_take_it(ran, clip, photo, tmp_path,
                                                                                    capsys):
    other = tmp_path / "other.png"
    cv2.imwrite(str(other), np.zeros((8, 8, 3), np.uint8))
    assert cli.main(["run", str(photo), str(clip), str(other), "-o", f"{tmp_path}/out/", "--codec", "hevc"]) == 0
    assert ran == ["photo.jpg", "clip.mp4", "other.png"]
    notes = [line for line in _errors(capsys) if "--codec" in line]
    assert notes == [f"depthcam: --codec applies to the video files written, not to the pictures of 2 of the 3 "
                     f"inputs ({photo}, {other})"]


def test_a_batch_of_photos_only_with_codec_is_refused(ran, photo, tmp_path, capsys):
    other = tmp_path / "other.png"
    cv2.imwrite(str(other), np.zeros((8, 8, 3), np.uint8))
    assert cli.main(["run", str(photo), str(other), "-o", f"{tmp_path}/out/", "--codec", "hevc"]) == 2
    assert ran == [] and not (tmp_path / "out").exists()
    assert _errors(capsys) == [f"{CODEC}the 2 inputs are photos or animations, written as pictures: drop --codec"]


def test_a_batch_without_save_depth_refuses_depth_format(ran, clip, photo, capsys):
    assert cli.main(["run", str(clip), str(photo), "-o", "null", "--depth-format", "grey16"]) == 2
    assert ran == [] and _errors(capsys)[0].startswith("depthcam: error: --depth-format grey16 sets the pictures of "
                                                       "the depth file, and none is written")


# --- 3. --input-rate reaches standard input's line as an argument ------------------------------------------------

@pytest.fixture
def fresh_stdin(monkeypatch):
    """Standard input not looked at yet in this process (input_path keeps what it made of it)."""
    monkeypatch.setattr(piped_input, "_stdin_read", None)
    monkeypatch.setattr(piped_input, "_stdin_stream", None, raising=False)  # none before session 26


@pytest.mark.parametrize("rate, line", [(Fraction(30), False), (None, True)])
def test_a_library_caller_s_input_rate_decides_standard_input_s_line(stdin_fed, fresh_stdin, rate,  # noqa: F811
                                                                      line):
    """open_source (build's first step) with the rate: no line of FFmpeg's 25 fps, where only the command's
    module global (set by cmd_run) kept it unsaid; looked at first (as the command's output checks do) changes
    nothing. Without a rate, the line once."""
    said = stdin_fed(b"".join(_pictures(4)))
    assert piped_input.input_path("-") == Path("/dev/stdin")  # looked at before it opens, as `run` does
    source = open_source("-", rate)
    try:
        assert len(list(source.frames())) == 4
    finally:
        source.close()
    assert source.fps == (30 if rate else 25)
    assert [text for text in said if "which tells no frame rate" in text] == ([said[0]] if line else [])
    assert len(said) == (1 if line else 0)
    assert not hasattr(piped_input, "read_at")  # no module global to set first


def test_pipe_kind_tells_a_named_pipe_from_a_file(tmp_path, photo):
    fifo = tmp_path / "out.mkv"
    os.mkfifo(fifo)
    assert (piped_input.pipe_kind(str(fifo)), piped_input.pipe_kind(str(photo))) == ("named pipe", None)
    assert piped_input.piped(str(fifo)) and piped_input.piped("-") and not piped_input.piped(str(photo))
