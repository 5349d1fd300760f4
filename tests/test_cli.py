"""The command line as a user meets it: bad input gives one clear line, a non-zero exit, no traceback."""
import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stream.config import load_config

from media import make_video, probe

REPO = Path(__file__).resolve().parents[1]


def depthcam(*args, env_extra=None, timeout=120):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "stream", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env)


def assert_one_clear_line(result, *needles):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


@pytest.fixture
def bad_inputs(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    good = make_video(tmp_path / "good.mp4", frames=24)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    bad_key = tmp_path / "bad.yaml"
    bad_key.write_text("render:\n  bluur: 4\n")
    return {"text": text, "truncated": truncated, "bad_key": bad_key, "dir": tmp_path}


def test_missing_file(shared_models, bad_inputs):
    result = depthcam("run", str(bad_inputs["dir"] / "nope.mp4"), "-o", str(bad_inputs["dir"] / "o.mp4"))
    assert_one_clear_line(result, "not found")


def test_text_file_named_mp4(shared_models, bad_inputs):
    result = depthcam("run", str(bad_inputs["text"]), "-o", str(bad_inputs["dir"] / "o.mp4"))
    assert_one_clear_line(result, "notes.mp4", "not a video")


def test_truncated_mp4(shared_models, bad_inputs):
    result = depthcam("run", str(bad_inputs["truncated"]), "-o", str(bad_inputs["dir"] / "o.mp4"))
    assert_one_clear_line(result, "truncated.mp4")
    # cut before its index: said as such where sources.py tells it apart, else as truncated or corrupt
    assert "no index" in result.stderr or "truncated or corrupt" in result.stderr, result.stderr


def test_writing_over_the_input_is_refused_and_the_input_survives(bad_inputs):
    clip = bad_inputs["dir"] / "good.mp4"
    before = clip.read_bytes()
    result = depthcam("run", str(clip), "-o", str(clip))
    assert result.returncode == 2
    assert_one_clear_line(result, "is the input file")
    assert clip.read_bytes() == before


def test_models_info_checks_a_users_own_model_file(shared_models):
    from models.registry import get_spec

    accepted = depthcam("models", "info", str(shared_models / get_spec("tcmonodepth").filename))
    assert accepted.returncode == 0, accepted.stderr
    assert "NCHW 320x192" in accepted.stdout and "accepted by depthcam" in accepted.stdout
    segmentation = shared_models / "mediapipe.onnx"  # a segmentation model: two logit channels, not depth
    if segmentation.exists():
        refused = depthcam("models", "info", str(segmentation))
        assert refused.returncode == 2
        assert_one_clear_line(refused, "is this a depth model?")


def test_a_bad_option_is_one_line_with_where_help_is():
    result = depthcam("run", "synthetic:portrait", "--blur", "wide")
    assert result.returncode == 2 and "usage:" not in result.stderr
    assert result.stderr.strip() == ("depthcam: error: argument --blur: invalid float value: 'wide' "
                                     "(see 'depthcam run --help')")


def test_debug_is_accepted_after_the_command_and_zero_means_off(shared_models):
    after = depthcam("models", "info", "nope", "--debug")
    assert after.returncode == 2 and "Traceback" in after.stderr  # --debug after the command shows it
    off = depthcam("models", "info", "nope", env_extra={"DEPTHCAM_DEBUG": "0"})
    assert_one_clear_line(off, "unknown model 'nope'")


def test_a_file_cut_short_with_its_index_in_front_is_processed_and_reported(shared_models, tmp_path):
    import av
    import numpy as np

    whole = tmp_path / "whole.mp4"
    with av.open(str(whole), "w", options={"movflags": "faststart"}) as container:  # the index first, as on the web
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.options = {"g": "1"}  # every frame a keyframe, so the first half decodes on its own
        for i in range(40):
            frame = av.VideoFrame.from_ndarray(np.full((64, 96, 3), 5 * i, np.uint8), format="bgr24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    result = depthcam("run", str(cut), "-o", str(tmp_path / "out.mp4"), "--refine", "off", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "the input announced 40 frames but only" in result.stderr and "may be truncated" in result.stderr


def test_what_a_stopped_run_says_it_left():
    from stream.cli import _what_was_kept

    assert _what_was_kept("out.mp4", 12, True) == "; out.mp4 is finalised and playable up to there"
    assert _what_was_kept("out.mp4", 12, False) == ("; out.mp4 could not be finalised: it plays up to about the "
                                                    "last second that reached the disk")
    assert _what_was_kept("out.png", 1, False) == "; out.png was not written (a file of that name is left as it was)"
    assert _what_was_kept("out.mp4", 0, True) == "; nothing was written"
    # a full disk: what the writer knows reached it (it leaves no file where no picture did)
    assert _what_was_kept("out.mp4", 300, False, 0) == ("; out.mp4 was not written (a file of that name is left as "
                                                        "it was)")
    assert _what_was_kept("out.mkv", 300, False, 61) == ("; out.mkv could not be finalised: it holds at least its "
                                                         "first 61 frames, those that reached the disk")
    assert _what_was_kept("out.mkv", 300, True, 300) == "; out.mkv is finalised and playable up to there"
    assert _what_was_kept("null", 12, True) == "" and _what_was_kept("window", 3, False) == ""


def test_synthetic_counts_must_be_whole_numbers():
    result = depthcam("run", "synthetic:portrait?frames=2.5", "-o", "null")
    assert result.returncode == 2
    assert_one_clear_line(result, "frames=2.5", "whole number")


def test_a_camera_gets_the_live_settings_on_the_device_auto_picks():
    from stream.cli import build_parser, run_config

    def config(*argv):
        args = build_parser().parse_args(["run", *argv])
        return run_config(args.inputs[0], args)

    camera, chosen = config("camera:0")
    assert chosen and camera.device == "auto" and camera.refine.mode == "live" and camera.inference.mode == "async"
    assert config("camera:0", "--device", "cpu")[0].device == "cpu"
    assert config("camera:0", "--config", "live-cpu")[0].device == "cpu"  # the preset as written
    assert config("camera:0", "--config", "default")[0].inference.mode == "sync"  # the preset as written
    assert config("clip.mp4")[1] is False


def test_render_flags_override_the_preset():
    from stream.cli import build_parser, run_config

    args = build_parser().parse_args(["run", "clip.mp4", "--blur", "20", "--highlight-boost", "2.5"])
    render = run_config(args.inputs[0], args)[0].render
    assert (render.blur, render.highlight_boost) == (20.0, 2.5)
    args = build_parser().parse_args(["run", "clip.mp4", "--config", "quality"])
    assert run_config(args.inputs[0], args)[0].render.highlight_boost == load_config("quality").render.highlight_boost


def test_progress_flags_override_the_preset():
    """--no-progress existed, but nothing turned the bar back on for the live-cpu preset, which has none."""
    from stream.cli import build_parser, run_config

    def progress(*flags: str) -> bool:
        args = build_parser().parse_args(["run", "clip.mp4", *flags])
        return run_config(args.inputs[0], args)[0].output.progress

    assert (progress(), progress("--no-progress")) == (True, False)
    assert progress("--config", "live-cpu") is False
    assert progress("--config", "live-cpu", "--progress") is True


def test_highlight_boost_out_of_range():
    result = depthcam("run", "synthetic:portrait?frames=2", "--highlight-boost", "40", "-o", "null")
    assert result.returncode == 2
    assert_one_clear_line(result, "render.highlight_boost", "40")


def test_a_model_of_dynamic_input_size_runs_at_the_size_given(tmp_path):
    from test_models import _first_channel_model

    model = _first_channel_model(tmp_path / "any_size.onnx")
    info = depthcam("models", "info", str(model))
    assert info.returncode == 0, info.stderr
    assert "any size (run it with --model-size WxH)" in info.stdout and "ImageNet" in info.stdout
    source = "synthetic:portrait?frames=3&size=96x64"
    assert_one_clear_line(depthcam("run", source, "--model", str(model), "-o", "null"), "--model-size WxH")
    ran = depthcam("run", source, "--model", str(model), "--model-size", "48x32", "--model-input", "unit",
                   "-o", "null", "--no-progress")
    assert ran.returncode == 0, ran.stderr
    assert_one_clear_line(depthcam("run", source, "--model", str(model), "--model-size", "big", "-o", "null"),
                          "model_size (--model-size) must be WIDTHxHEIGHT")


def test_models_info_takes_model_size_as_a_run_does(tmp_path):
    """`models info FILE --model-size WxH` said "accepted" for a size that `run` then refused (the model's fixed
    sides), and let a malformed size pass: it was read only for a model of dynamic size."""
    from test_models import _first_channel_model

    fixed = _first_channel_model(tmp_path / "fixed.onnx", height=64, width=96)
    assert_one_clear_line(depthcam("models", "info", str(fixed), "--model-size", "518x518"),
                          "width fixed at 96, not 518")
    assert_one_clear_line(depthcam("models", "info", str(fixed), "--model-size", "big"),
                          "model_size (--model-size) must be WIDTHxHEIGHT")
    same = depthcam("models", "info", str(fixed), "--model-size", "96x64")
    assert same.returncode == 0 and "accepted by depthcam" in same.stdout, same.stderr
    assert_one_clear_line(depthcam("models", "info", "tcmonodepth", "--model-size", "518x518"),
                          "tcmonodepth takes 320x192 only")
    assert depthcam("models", "info", "tcmonodepth", "--model-size", "320x192").returncode == 0
    free = depthcam("models", "info", str(_first_channel_model(tmp_path / "free.onnx")), "--model-size", "48x32")
    assert free.returncode == 0, free.stderr
    assert f"--model {tmp_path / 'free.onnx'} --model-size 48x32)" in free.stdout


def test_camera_that_does_not_exist(shared_models, bad_inputs):
    result = depthcam("run", "camera:7", "-o", "null")
    has_cameras = sys.platform.startswith("linux") and any(Path("/dev").glob("video*"))
    needle = "there is no /dev/video7" if has_cameras else \
        "this machine has no camera device" if sys.platform.startswith("linux") else "try camera:0"
    assert_one_clear_line(result, "camera 7 could not be opened", needle)
    result = depthcam("run", "camera:0", "-o", "null")
    assert_one_clear_line(result, "camera 0 could not be opened")
    assert "try camera:0" not in result.stderr  # no advice to try the camera that just failed


def test_a_missing_virtual_camera_package_is_reported_before_the_model_loads(tmp_path):
    try:
        import pyvirtualcam  # noqa: F401
        pytest.skip("pyvirtualcam is installed here")
    except ImportError:
        pass
    # an empty model cache and no network: had the model been loaded first, the error would be about it
    result = depthcam("run", "synthetic:portrait?frames=2", "-o", "vcam",
                      env_extra={"DEPTHCAM_MODELS": str(tmp_path)})
    assert_one_clear_line(result, "pip install 'depthcam[vcam]'")


@pytest.mark.parametrize("number", ["-1", "99999999999999999999"])
def test_camera_number_out_of_range(number):
    # OpenCV itself crashes on -1 where no camera exists (SIGSEGV) and overflows on huge numbers
    result = depthcam("run", f"camera:{number}", "-o", "null")
    assert result.returncode == 2
    assert_one_clear_line(result, f"bad camera number {number}", "0..1023")


def test_unknown_config_key(shared_models, bad_inputs):
    result = depthcam("run", "synthetic:portrait?frames=2", "--config", str(bad_inputs["bad_key"]), "-o", "null")
    assert_one_clear_line(result, "unknown config key 'render.bluur'")


def test_negative_blur(shared_models):
    result = depthcam("run", "synthetic:portrait?frames=2", "--blur", "-3", "-o", "null")
    assert_one_clear_line(result, "render.blur", "-3")


def test_unknown_model_and_wrong_model_file(shared_models, tmp_path):
    assert_one_clear_line(depthcam("run", "synthetic:portrait?frames=2", "--model", "midas", "-o", "null"),
                          "unknown model 'midas'")
    fake = tmp_path / "fake.onnx"
    fake.write_bytes(b"\x00garbage" * 100)
    assert_one_clear_line(depthcam("run", "synthetic:portrait?frames=2", "--model", str(fake), "-o", "null"),
                          "is not a complete ONNX model (it cannot be parsed)")


def test_cuda_requested_without_gpu(shared_models):
    from kernels.backend import cuda_available

    if cuda_available():
        pytest.skip("this machine has a GPU")
    assert_one_clear_line(depthcam("run", "synthetic:portrait?frames=2", "--device", "cuda", "-o", "null"),
                          "cuda")


def test_bad_synthetic_option(shared_models):
    assert_one_clear_line(depthcam("run", "synthetic:portrait?size=10x10", "-o", "null"), "size")
    assert_one_clear_line(depthcam("run", "synthetic:portrait?colour=red", "-o", "null"), "colour")


def test_run_on_video_with_audio_keeps_frames_rate_and_sound(shared_models, tmp_path):
    src = make_video(tmp_path / "clip.mp4", frames=36, fps=24, size=(192, 144))
    out, depth = tmp_path / "portrait.mp4", tmp_path / "depth.mp4"
    result = depthcam("run", str(src), "-o", str(out), "--save-depth", str(depth), "--no-progress")
    assert result.returncode == 0, result.stderr
    before, after = probe(src), probe(out)
    assert after["frames"] == before["frames"] == 36
    assert after["fps"] == pytest.approx(before["fps"])
    assert after["audio_codec"] == "aac"
    assert after["audio_seconds"] == pytest.approx(before["audio_seconds"], abs=0.05)
    assert probe(depth)["frames"] == 36


@pytest.mark.parametrize("signals", [1, 2])
def test_sigint_finalises_a_playable_file(shared_models, tmp_path, signals):
    """One Ctrl-C finalises the file; a second one right after quits at once (before 2026-11-28 that
    aborted in the interpreter's teardown: "terminate called without an active exception", exit 134)."""
    out = tmp_path / "interrupted.mp4"
    # faulthandler: should it ever hang, SIGABRT makes it print every thread's stack for the report
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}
    process = subprocess.Popen([sys.executable, "-m", "stream", "run", "synthetic:portrait?size=160x120&frames=100000",
                                "-o", str(out), "--refine", "off", "--no-progress"],
                               cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               # a shell's background job (make test &) ignores SIGINT, and children
                               # inherit that; a user at a terminal does not
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # the first run on a fresh machine compiles the Numba kernels first (tens of seconds on 2 cores)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 4096):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    if signals == 2:
        time.sleep(0.01)
        process.send_signal(signal.SIGINT)
    started = time.monotonic()
    try:
        _, stderr = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        _, stderr = process.communicate()
        pytest.fail(f"no exit 20 s after SIGINT; the stacks:\n{stderr}")
    assert time.monotonic() - started < 5
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "terminate called" not in stderr
    assert probe(out)["frames"] > 0


def test_models_list_and_info(shared_models):
    listing = depthcam("models", "list")
    assert listing.returncode == 0 and "tcmonodepth" in listing.stdout and "fcrn" in listing.stdout
    info = depthcam("models", "info", "tcmonodepth")
    assert info.returncode == 0 and "902b886b" in info.stdout and "cached" in info.stdout
    assert_one_clear_line(depthcam("models", "info", "nope"), "unknown model")


def test_image_in_image_out(shared_models, tmp_path):
    import cv2
    from skimage import data

    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    out = tmp_path / "astronaut_portrait.jpg"
    result = depthcam("run", str(photo), "-o", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr
    rendered = cv2.imread(str(out))
    assert rendered.shape == (512, 512, 3)


def test_models_convert_refuses_a_file_that_is_not_fcrn(tmp_path):
    import numpy as np

    bogus = tmp_path / "NYU_ResNet-UpProj.npy"
    np.save(bogus, {"conv1": {"weights": np.zeros((3, 3), np.float32)}}, allow_pickle=True)
    result = depthcam("models", "convert", str(bogus), "-o", str(tmp_path / "fcrn.onnx"))
    assert_one_clear_line(result, "missing")
    assert not (tmp_path / "fcrn.onnx").exists()


@pytest.fixture
def virtual_display():
    """A real X server without a screen (Xvfb), where one is installed."""
    import shutil

    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb) to open a real preview window")
    from test_live_robustness import start_xvfb, stop_xvfb

    started = start_xvfb(xvfb)  # a fixed :97 and a 1 s sleep: taken by a parallel run, or not listening yet
    if started is None:
        pytest.skip("Xvfb did not start")
    yield started[0]
    stop_xvfb(*started)


def test_preview_window_shows_every_frame(shared_models, virtual_display):
    result = depthcam("run", "synthetic:portrait?size=160x120&frames=12", "-o", "window", "--refine", "off",
                      env_extra={"DISPLAY": virtual_display, "QT_QPA_PLATFORM": "xcb"})
    assert result.returncode == 0, result.stderr
    assert "wrote 12 frames to window" in result.stderr
    assert "a: auto focus" in result.stderr  # the window's keys are announced


def test_preview_beside_a_file_on_a_real_window(shared_models, virtual_display, tmp_path):
    out = tmp_path / "out.mp4"
    result = depthcam("run", "synthetic:portrait?size=160x120&frames=12", "-o", str(out), "--preview",
                      "--refine", "off", env_extra={"DISPLAY": virtual_display, "QT_QPA_PLATFORM": "xcb"})
    assert result.returncode == 0, result.stderr
    assert "wrote 12 frames to" in result.stderr and "stopped from the preview" not in result.stderr
    assert probe(out)["frames"] == 12


def test_an_ignored_sigterm_stays_ignored(shared_models, capsys):
    # nohup or a supervisor starts a process with SIGTERM ignored; the CLI must not undo that
    from stream.cli import _terminate, main

    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        assert main(["models", "list"], restore_signals=False) == 0  # as the `depthcam` command runs it
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        assert main(["models", "list"], restore_signals=False) == 0
        assert signal.getsignal(signal.SIGTERM) is _terminate  # otherwise SIGTERM ends a run like Ctrl-C
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_file_run_stopped_from_its_preview_keeps_the_frames_until_then(shared_models, monkeypatch, tmp_path,
                                                                        capsys):
    # --preview shows the output while it is written; q there ends the run early with a playable file
    from stream import cli

    # q as the 5th picture is shown: keyed to the pictures, not to waitKeyEx's calls, as the window also answers
    # its keys between frames that are slow to come (a busy machine), which took the keys meant for later frames
    _fake_window(monkeypatch, [-1] * 4 + [ord("q")], per_picture=True)
    video = make_video(tmp_path / "in.mp4", frames=24)
    out = tmp_path / "out.mp4"
    assert cli.main(["run", str(video), "-o", str(out), "--preview", "--no-progress"]) == 0
    messages = capsys.readouterr().err
    assert "a: auto focus" in messages  # the window's keys are announced
    assert "wrote 5 frames" in messages and "stopped from the preview window" in messages
    assert probe(out)["frames"] == 5


def _fake_window(monkeypatch, keys, per_picture: bool = False):
    """OpenCV's window calls answered in-process; waitKeyEx gives `keys` in turn, then nothing. `per_picture`:
    keys[n] is pressed while the (n+1)-th picture is shown, given by the first waitKeyEx after it, whatever the
    number of calls between pictures (none pressed in those); the pictures' shapes are returned, as shown."""
    import cv2

    from stream import app, sinks

    pressed = iter(keys)
    shown: list[tuple[int, int]] = []  # each picture's (height, width)
    answered = [0]

    def show(title, picture) -> None:
        shown.append(picture.shape[:2])

    def key_for_picture(delay: int) -> int:
        if answered[0] == len(shown) or len(shown) > len(keys):
            return -1
        answered[0] = len(shown)
        return keys[len(shown) - 1]

    for module in (app, sinks):
        monkeypatch.setattr(module, "check_display", lambda fix=None: None)
    monkeypatch.setattr(cv2, "namedWindow", lambda *a: None)
    monkeypatch.setattr(cv2, "setMouseCallback", lambda *a: None)
    monkeypatch.setattr(cv2, "imshow", show if per_picture else lambda *a: None)
    monkeypatch.setattr(cv2, "getWindowProperty", lambda *a: 1.0)
    monkeypatch.setattr(cv2, "destroyWindow", lambda *a: None)
    monkeypatch.setattr(cv2, "waitKeyEx", key_for_picture if per_picture else lambda delay: next(pressed, -1))
    return shown


def test_a_photo_in_a_window_is_refocused_until_q_and_written_as_shown_last(shared_models, monkeypatch, tmp_path,
                                                                            capsys):
    # a photo with --preview stays in the window, rendered again so that keys and clicks take effect;
    # then the file gets it at full size, with the focus and blur the window showed last
    import cv2
    import numpy as np
    from skimage import data

    from stream import cli

    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (160, 160)))
    _fake_window(monkeypatch, [-1, ord("+"), -1, -1, -1, ord("q")])  # + : blur 12 -> 14 px at 480 lines
    out = tmp_path / "out.png"
    assert cli.main(["run", str(photo), "-o", str(out), "--preview", "--focus", "0.5", "--no-progress"]) == 0
    messages = capsys.readouterr().err
    assert "rendering photo.png at its full size with the focus (0.500) and blur (14 px at 480 lines)" in messages
    assert messages.count("-> model") == 1  # the window's run names input and model; the full render said it again
    reference = tmp_path / "reference.png"
    assert cli.main(["run", str(photo), "-o", str(reference), "--focus", "0.5", "--blur", "14", "--no-progress"]) == 0
    first = tmp_path / "first.png"
    assert cli.main(["run", str(photo), "-o", str(first), "--focus", "0.5", "--no-progress"]) == 0
    shown_last, with_14, with_12 = (cv2.imread(str(p)) for p in (out, reference, first))
    assert np.array_equal(shown_last, with_14) and not np.array_equal(shown_last, with_12)


def test_a_photo_in_a_window_stopped_by_a_signal_says_its_file_was_not_written(shared_models, monkeypatch, tmp_path,
                                                                                capsys):
    """SIGTERM (or Ctrl-C) in the window said "interrupted after 5811 frames", counting the window's redraws, and
    not that the photo's file, which q writes, was not written."""
    import os
    import signal

    import cv2
    import numpy as np

    from stream import cli

    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.full((64, 64, 3), 128, np.uint8))
    _fake_window(monkeypatch, [-1, -1])
    waits = iter(range(1_000_000))

    def terminated_on_the_third_wait(delay: int) -> int:
        if next(waits) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return -1

    monkeypatch.setattr(cv2, "waitKeyEx", terminated_on_the_third_wait)
    out, depth = tmp_path / "out.png", tmp_path / "depth.png"
    assert cli.main(["run", str(photo), "-o", str(out), "--save-depth", str(depth), "--preview",
                     "--no-progress"]) == 130
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == f"depthcam: interrupted; {out} and {depth} not written (q in the window writes it)"
    assert not out.exists() and not depth.exists()


def test_the_closing_line_names_the_depth_file_too(shared_models, tmp_path, capsys):
    import cv2
    import numpy as np

    from stream import cli

    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.full((64, 64, 3), 128, np.uint8))
    out, depth = tmp_path / "out.png", tmp_path / "depth.png"
    assert cli.main(["run", str(photo), "-o", str(out), "--save-depth", str(depth), "--no-progress"]) == 0
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"depthcam: wrote 1 frame to {out} and its depth to {depth} in "), last


def test_a_large_photo_is_refocused_on_a_smaller_copy_and_written_at_full_size(shared_models, monkeypatch,
                                                                              tmp_path, capsys):
    # a phone photo renders in about a second on two cores: the window works on a copy at most 1280 px
    # wide (the point given in the photo's pixels, scaled), the file is rendered once at full size
    import cv2
    from skimage import data

    from stream import cli
    from stream.sources import STILL_WINDOW_WIDTH

    photo = tmp_path / "large.jpg"
    cv2.imwrite(str(photo), cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (1600, 1200)))
    # q as the 3rd picture is shown (the window also answers keys before its first one, while the copy renders)
    shown = _fake_window(monkeypatch, [-1, -1, ord("q")], per_picture=True)
    out = tmp_path / "large_portrait.png"
    assert cli.main(["run", str(photo), "--preview", "--focus-point", "800,300", "--no-progress"]) == 0
    messages = capsys.readouterr().err
    assert "image large.jpg 1600x1200 (shown at 1280x960)" in messages
    assert shown and set(shown) == {(960, STILL_WINDOW_WIDTH)}
    assert cv2.imread(str(out)).shape == (1200, 1600, 3)  # the default name beside the photo, full size
    assert 0.0 <= float(messages.split("with the focus (")[1].split(")")[0]) <= 1.0
    # -o window with a depth video: the depth of the photo as shown last, at full size
    _fake_window(monkeypatch, [ord("q")])
    depth = tmp_path / "depth.mp4"
    assert cli.main(["run", str(photo), "-o", "window", "--save-depth", str(depth), "--no-progress"]) == 0
    capsys.readouterr()
    assert probe(depth)["frames"] == 1 and probe(depth)["width"] == 1600
    # writing over the photo is refused before the window opens, not after the refocusing
    monkeypatch.setattr(cv2, "waitKeyEx", lambda delay: pytest.fail("the window opened"))
    assert cli.main(["run", str(photo), "-o", str(photo), "--preview", "--no-progress"]) == 2
    assert "is the input file" in capsys.readouterr().err


def test_several_inputs_run_one_after_another_and_a_bad_one_does_not_stop_the_others(shared_models, tmp_path):
    first = make_video(tmp_path / "first.mp4", frames=12, size=(160, 120))
    second = make_video(tmp_path / "second.mkv", frames=8, size=(160, 120))
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_text("not a video\n" * 20)
    result = depthcam("run", str(first), str(corrupt), str(second), "-o", str(tmp_path / "portraits"),
                      "--save-depth", str(tmp_path / "depths"), "--refine", "off")
    assert result.returncode == 2, result.stderr  # the first failure's status
    assert "Traceback" not in result.stderr
    assert "input 2 of 3: " + str(corrupt) in result.stderr and "corrupt.mp4" in result.stderr
    assert "2 of 3 inputs done; failed: " + str(corrupt) in result.stderr
    assert probe(tmp_path / "portraits" / "first_portrait.mp4")["frames"] == 12
    assert probe(tmp_path / "portraits" / "second_portrait.mp4")["frames"] == 8
    assert probe(tmp_path / "depths" / "second_depth.mp4")["frames"] == 8
    assert not (tmp_path / "portraits" / "corrupt_portrait.mp4").exists()


def test_several_inputs_leave_out_depthcam_s_own_outputs(shared_models, tmp_path):
    # run twice on clips/*, the second run would otherwise process the first one's NAME_portrait.mp4
    clip = make_video(tmp_path / "clip.mp4", frames=6, size=(96, 64))
    first = depthcam("run", str(clip), "--refine", "off")
    assert first.returncode == 0, first.stderr
    again = depthcam("run", str(clip), str(tmp_path / "clip_portrait.mp4"), "--refine", "off")
    assert again.returncode == 0, again.stderr
    assert "leaving out 1 input(s) named as depthcam's own outputs" in again.stderr
    assert "1 of 1 inputs done" in again.stderr and not (tmp_path / "clip_portrait_portrait.mp4").exists()


def test_a_folder_output_takes_a_single_input_too(shared_models, tmp_path):
    """`run clips/*.mp4 -o portraits/` where the glob matched one clip: a name ending in / or a folder that
    exists gets NAME_portrait.mp4 (and NAME_depth.mp4), as several inputs do."""
    clip = make_video(tmp_path / "clip.mp4", frames=4, size=(96, 64), audio_codec=None)
    (tmp_path / "existing").mkdir()
    result = depthcam("run", str(clip), "-o", str(tmp_path / "portraits") + "/", "--save-depth",
                      str(tmp_path / "existing"), "--refine", "off", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert probe(tmp_path / "portraits" / "clip_portrait.mp4")["frames"] == 4
    assert probe(tmp_path / "existing" / "clip_depth.mp4")["frames"] == 4
    assert_one_clear_line(depthcam("run", "camera:0", "-o", str(tmp_path / "existing")),
                          "is a folder; give the recording a file name")


def test_several_inputs_to_null_are_not_written_into_a_folder_named_null(shared_models, tmp_path, monkeypatch,
                                                                        capsys):
    """`run a.mp4 b.mp4 -o null` made a folder `null` and wrote NAME_portrait.mp4 files into it."""
    from stream import cli

    clips = [str(make_video(tmp_path / f"{name}.mp4", frames=3, size=(96, 64), audio_codec=None)) for name in "ab"]
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", *clips, "-o", "null", "--refine", "off", "--no-progress"]) == 0
    assert not (tmp_path / "null").exists() and not list(tmp_path.glob("*_portrait.*"))
    err = capsys.readouterr().err
    assert err.count("wrote 3 frames to null") == 2 and "2 of 2 inputs done" in err


def test_a_photo_for_a_window_without_a_display_is_told_the_fix_that_fits(tmp_path, monkeypatch, capsys):
    """`run photo.jpg --preview` without a display was told "write to a file with -o out.mp4, or use -o null"
    (the fix for -o window, and a video's), not to leave out --preview; `-o window` too was told of a video."""
    import cv2
    import numpy as np

    from stream import cli

    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.zeros((48, 64, 3), np.uint8))
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert cli.main(["run", str(photo), "--preview"]) == 2
    assert capsys.readouterr().err.strip().endswith("DISPLAY is not set); leave out --preview (output.preview)")
    assert cli.main(["run", str(photo), "-o", "window"]) == 2
    err = capsys.readouterr().err
    assert f"write it to a file instead (leave out -o for {tmp_path / 'photo_portrait.png'})" in err, err
    assert "out.mp4" not in err and not (tmp_path / "photo_portrait.png").exists()


@pytest.mark.parametrize("argv, message", [
    (["a.mp4", "b.mp4", "-o", "out.mp4"], "with several inputs, give a folder"),
    (["a.mp4", "camera:0"], "camera:0 never ends"),
    (["clips/a.mp4", "other/a.mov", "-o", "portraits"], "two inputs would both write portraits/a_portrait.mp4"),
])
def test_several_inputs_are_refused_clearly_where_their_outputs_cannot_be(argv, message, tmp_path):
    result = depthcam("run", *argv)
    assert_one_clear_line(result, message)


def test_version_is_said_in_one_line():
    result = depthcam("--version")
    assert result.returncode == 0 and result.stdout.startswith("depthcam ") and result.stdout.count("\n") == 1


def test_doctor_says_what_the_machine_offers_and_the_fix(shared_models, monkeypatch, capsys):
    from stream import cli, doctor

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}  # no screen
    result = subprocess.run([sys.executable, "-m", "stream", "doctor"], capture_output=True, text=True,
                            timeout=120, cwd=REPO, env={**env, "DEPTHCAM_MODELS": str(shared_models)})
    assert result.returncode == 0, result.stderr
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if line[:2] in ("ok", "--")}
    assert {"python", "cpu", "gpu", "onnxruntime", "video", "window", "cameras", "models"} <= set(lines)
    assert lines["models"].startswith("ok") and "tcmonodepth cached" in lines["models"]
    assert lines["window"].startswith("--") and "no display" in lines["window"]
    assert lines["video"].startswith("ok") and "H.264" in lines["video"]

    def broken():
        raise RuntimeError("a broken install")

    monkeypatch.setattr(doctor, "CHECKS", (broken, doctor._python))  # one part failing does not stop the rest
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "--  broken       could not be checked (RuntimeError: a broken install)" in out and "ok  python" in out


def test_times_are_read_as_seconds_or_clock_times():
    from stream.sources import parse_time

    assert [parse_time(t) for t in ("90", "12.5", "1:30", "0:01:02.5", "1:00:00")] == [90, 12.5, 90, 62.5, 3600]
    for bad in ("", "1:70", "a", "-3", "1::2", "1:2:3:4", "nan", "inf", "1:nan"):
        with pytest.raises(ValueError, match="is not a time"):
            parse_time(bad)


def test_a_part_of_a_video_is_processed_with_its_own_sound(shared_models, tmp_path):
    import av
    import numpy as np

    video = make_video(tmp_path / "in.mp4", frames=48, fps=24)  # 2 s, with 2 s of sound
    out = tmp_path / "part.mp4"
    result = depthcam("run", str(video), "-o", str(out), "--start", "0.5", "--duration", "1", "--blur", "0",
                      "--refine", "off")
    assert result.returncode == 0, result.stderr
    assert "from 0.5 s for 1.0 s" in result.stderr
    info = probe(out)
    assert info["frames"] == 24 and abs(info["audio_seconds"] - 1.0) < 0.05  # the sound cut with the pictures

    def pictures(path):
        with av.open(str(path)) as container:
            return [f.to_ndarray(format="bgr24").astype(np.int16) for f in container.decode(video=0)]

    source, part = pictures(video), pictures(out)
    difference = [np.abs(part[0] - source[i]).mean() for i in (11, 12, 13)]
    assert min(difference) == difference[1]  # the part starts at picture 12 (0.5 s at 24 fps)


@pytest.mark.parametrize("argv, message", [
    (["--start", "9"], "is past the end of in.mp4"),
    (["--duration", "0"], "give a length above 0"),
    (["--start", "1:75"], "is not a time"),
])
def test_a_part_that_cannot_be_taken_is_refused_clearly(shared_models, tmp_path, argv, message):
    video = make_video(tmp_path / "in.mp4", frames=24, fps=24)
    assert_one_clear_line(depthcam("run", str(video), "-o", str(tmp_path / "o.mp4"), *argv), message)


@pytest.mark.parametrize("argv, message", [
    (["--focus-point", "-1,5"], "render.focus_point must be inside the frame, got -1,5"),
    (["--focus-point", "-.5,5"], "render.focus_point must be X,Y in whole pixels"),
    (["--start", "-1:30"], "argument --start: '-1:30' is not a time"),
    (["--model-size", "-1x5"], "model_size (--model-size) -1x5 is out of range"),
    (["--blur", "-3"], "render.blur must be in [0, 256], got -3.0"),
    (["--focus", "-0.5", "--refine", "off"], "render.focus must be in [0, 1], got -0.5"),
])
def test_a_negative_value_reaches_its_own_check(shared_models, tmp_path, capsys, argv, message):
    """`--focus-point -1,5`: argparse took the value for an option and said "expected one argument"."""
    import cv2
    import numpy as np

    from stream import cli

    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.zeros((48, 64, 3), np.uint8))
    try:
        code = cli.main(["run", str(photo), "-o", str(tmp_path / "out.png"), *argv])
    except SystemExit as exit:  # argparse's own refusal
        code = exit.code
    assert code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and message in errors[0], errors


def test_values_that_look_negative_are_joined_to_their_option():
    from stream.cli import _negative_values, build_parser

    parser = build_parser()
    assert _negative_values(parser, ["run", "a.mp4", "--focus-point", "-1,5", "-o", "-1.mp4", "--no-progress",
                                     "-2.mp4", "--", "--blur", "-3"]) == [
        "run", "a.mp4", "--focus-point=-1,5", "-o-1.mp4", "--no-progress", "-2.mp4", "--", "--blur", "-3"]
    assert parser.parse_args(_negative_values(parser, ["bench", "--warmup", "-1"])).warmup == -1


def test_a_part_of_a_photo_is_refused(shared_models, tmp_path):
    import cv2
    import numpy as np

    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.zeros((48, 64, 3), np.uint8))
    assert_one_clear_line(depthcam("run", str(photo), "--start", "1"), "take a part of a video file")


def test_a_full_disk_is_named_in_one_line(shared_models, monkeypatch, tmp_path, capsys):
    import errno

    from stream import cli, video_writer

    write = video_writer.VideoWriter.write

    def fills_up(self, picture, pts_seconds=None, duration_seconds=None):
        if self.frames_written == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        write(self, picture, pts_seconds, duration_seconds)

    monkeypatch.setattr(video_writer.VideoWriter, "write", fills_up)
    video = make_video(tmp_path / "in.mp4", frames=8)
    out = tmp_path / "out.mp4"
    assert cli.main(["run", str(video), "-o", str(out), "--no-progress", "--refine", "off"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert errors == [f"depthcam: error: the disk is full for {out}; free some space, or write the output to "
                      f"another disk"]


def test_a_video_watched_in_a_window_plays_at_its_own_pace(shared_models, monkeypatch, tmp_path, capsys):
    # -o window is watching, as in a player: frames at their presentation times (late ones dropped),
    # not as fast as they are processed
    import cv2

    from stream import cli

    _fake_window(monkeypatch, [])
    shown_at = []
    monkeypatch.setattr(cv2, "imshow", lambda *a: shown_at.append(time.perf_counter()))
    video = make_video(tmp_path / "in.mp4", frames=24, fps=24, size=(96, 64))  # one second
    assert cli.main(["run", str(video), "-o", "window", "--refine", "off", "--no-progress"]) == 0
    assert "paced at its frame rate" in capsys.readouterr().err
    assert len(shown_at) >= 12 and shown_at[-1] - shown_at[0] >= 23 / 24 - 0.1


def test_a_model_that_gives_nan_is_named_in_one_line(shared_models, tmp_path):
    """0 / 0 at every pixel: before 2026-11-28 the refine stage failed on it with a ValueError (exit 1)."""
    import cv2
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    nodes = [helper.make_node("Sub", ["image", "image"], ["zero"]), helper.make_node("Div", ["zero", "zero"], ["nan"]),
             helper.make_node("Reshape", ["nan", "shape"], ["depth"])]
    graph = helper.make_graph(nodes, "nan", [helper.make_tensor_value_info("image", 1, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("depth", 1, [1, 1, 8, 24])],
                              [numpy_helper.from_array(np.array([1, 1, 8, 24], np.int64), "shape")])
    model = tmp_path / "nan.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), str(model))
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.full((48, 64, 3), 90, np.uint8))
    result = depthcam("run", str(photo), "-o", str(tmp_path / "out.png"), "--model", str(model), "--no-progress")
    assert_one_clear_line(result, "gave NaN or infinite depth", "--model tcmonodepth")
    assert result.returncode == 2


def test_a_folder_named_like_a_special_output_leaves_it_special(tmp_path, monkeypatch):
    from stream.cli import _into_folder

    monkeypatch.chdir(tmp_path)
    for name in ("null", "window", "vcam"):
        (tmp_path / name).mkdir()
        assert _into_folder("clip.mp4", "-o", name) == name
    assert _into_folder("clip.mp4", "-o", "") == ""  # refused later as a bad output, not taken for the folder here
    assert _into_folder("clip.mp4", "-o", "null/") == str(Path("null") / "clip_portrait.mp4")


@pytest.mark.parametrize("left, code, hard_exit", [("tqdm_monitor", 0, False), ("depthcam-stage-depth", 0, True),
                                                   ("depthcam-depth-async", 0, True), ("tqdm_monitor", 130, True)])
def test_the_command_skips_the_interpreter_s_teardown_after_an_interruption_or_with_stage_threads_left(
        monkeypatch, left, code, hard_exit):
    import threading

    from stream import cli

    release = threading.Event()
    thread = threading.Thread(target=release.wait, name=left, daemon=True)
    thread.start()
    exits = []
    monkeypatch.setattr(cli, "main", lambda restore_signals=True: code)
    monkeypatch.setattr(cli.os, "_exit", lambda code: exits.append(code))
    monkeypatch.setattr(cli.signal, "signal", lambda *args: None)  # pytest's own handlers stay
    try:
        with pytest.raises(SystemExit) as ended:
            cli.console_main()
    finally:
        release.set()
    assert ended.value.code == code and exits == ([code] if hard_exit else [])


def test_a_run_whose_stderr_is_full_or_closed_still_writes_its_output(shared_models, tmp_path):
    """`2>/dev/full` (a log on a full disk) or `2>&-`: the progress bar and the lines raised, and the run stopped
    before its file was made (exit 1)."""
    from stream.console import TolerantStream

    closed = open(tmp_path / "log.txt", "w")
    closed.close()
    for stream in (closed, None):
        tolerant = TolerantStream(stream)
        assert tolerant.write("depthcam: a line\n") == 17 and tolerant.flush() is None and not tolerant.isatty()
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    out = tmp_path / "out.mp4"
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "stream", "run", "synthetic:portrait?size=96x64&frames=6",
                                 "-o", str(out), "--refine", "off"], stderr=full, cwd=REPO, timeout=120)
    assert result.returncode == 0 and probe(out)["frames"] == 6


def test_focus_and_a_focus_point_together_are_refused(tmp_path):
    """Both set the focus: the point won and --focus was dropped without a word."""
    assert_one_clear_line(depthcam("run", "synthetic:portrait?frames=2", "-o", "null", "--focus", "0.4",
                                   "--focus-point", "10,10"), "--focus and --focus-point both set the focus")


def test_the_demo_writes_into_a_folder_and_checks_its_output_before_the_sample(shared_models, tmp_path):
    """`depthcam demo -o results/` was refused (no extension) after the sample clip was made; then it put the
    depth into out/, away from the portrait."""
    bad = depthcam("demo", "-o", str(tmp_path / "x.xyz"))
    assert_one_clear_line(bad, "unknown output type .xyz")
    result = subprocess.run([sys.executable, "-m", "stream", "demo", "-o", "results/",
                             "--refine", "off", "--no-progress"], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    results = tmp_path / "results"
    assert probe(results / "demo_portrait.mp4")["frames"] == probe(results / "demo_depth.mp4")["frames"] > 0
    assert (tmp_path / "out" / "sample_astronaut.mp4").exists()


def test_a_file_named_like_an_option_gets_a_hint(tmp_path):
    clip = tmp_path / "-x.mp4"
    clip.write_bytes(b"")
    result = subprocess.run([sys.executable, "-m", "stream", "run", "-x.mp4"], capture_output=True, text=True,
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert_one_clear_line(result, "-x.mp4 is a file: write ./-x.mp4")


def test_a_photo_s_depth_goes_into_a_picture(shared_models, tmp_path):
    """A photographer's --save-depth depth.png was refused: the depth had to be a one-frame video."""
    import cv2
    import numpy as np

    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    result = depthcam("run", str(photo), "-o", str(tmp_path / "out.png"), "--save-depth", str(tmp_path / "depth.png"),
                      "--no-progress")
    assert result.returncode == 0, result.stderr
    depth = cv2.imread(str(tmp_path / "depth.png"))
    assert depth.shape == (48, 64, 3) and depth.std() > 0  # the colour map of a depth, not a blank


def _photo(path: Path) -> Path:
    import cv2
    import numpy as np

    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8))
    return path


def test_a_photo_s_depth_in_a_folder_is_a_picture(shared_models, tmp_path):
    """`run photos/*.jpg --save-depth depths/` wrote a one-frame NAME_depth.mp4 for each photo."""
    from stream.cli import _into_folder

    assert _into_folder("shot.jpg", "--save-depth", "depths/") == str(Path("depths") / "shot_depth.png")
    assert _into_folder("clip.mp4", "--save-depth", "depths/") == str(Path("depths") / "clip_depth.mp4")
    first, second = _photo(tmp_path / "first.png"), _photo(tmp_path / "second.jpg")
    result = depthcam("run", str(first), str(second), "-o", str(tmp_path / "out"), "--save-depth",
                      str(tmp_path / "depths"), "--refine", "off", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "depths").iterdir()) == ["first_depth.png", "second_depth.png"]


def test_an_empty_output_name_is_refused_not_taken_for_the_default(tmp_path):
    """`-o "$OUT"` with OUT unset wrote NAME_portrait.png beside the photo (several inputs: into the current
    folder), over whatever was there."""
    photo, other = _photo(tmp_path / "photo.png"), _photo(tmp_path / "other.png")
    assert_one_clear_line(depthcam("run", str(photo), "-o", ""), "-o is empty")
    assert_one_clear_line(depthcam("run", str(photo), str(other), "--save-depth", " "), "--save-depth is empty")
    assert not (tmp_path / "photo_portrait.png").exists()


def test_a_config_s_depth_folder_gets_a_file_per_input(shared_models, tmp_path):
    """A config's `save_depth: depths/` was handed to the writer as it was: 'unknown output type'; with several
    inputs, a config's one depth file was written over by each input in turn."""
    photo, other = _photo(tmp_path / "photo.png"), _photo(tmp_path / "other.png")
    config = tmp_path / "mine.yaml"
    config.write_text("output:\n  save_depth: depths/\n")
    single = depthcam("run", str(photo), "-o", str(tmp_path / "one.png"), "--config", str(config), "--refine", "off")
    assert single.returncode == 0, single.stderr
    assert (tmp_path / "depths" / "photo_depth.png").is_file()
    several = depthcam("run", str(photo), str(other), "-o", str(tmp_path / "out"), "--config", str(config),
                       "--refine", "off")
    assert several.returncode == 0, several.stderr
    assert (tmp_path / "depths" / "other_depth.png").is_file()
    config.write_text("output:\n  save_depth: depth.png\n")
    assert_one_clear_line(depthcam("run", str(photo), str(other), "--config", str(config)),
                          "names one file, which each of the inputs would write over")


def test_several_inputs_whose_folder_cannot_be_made_get_one_line(tmp_path):
    """A folder that cannot be made (read-only place, a file on the way) ended in 'OSError: [Errno 30] ...'."""
    photos = [str(_photo(tmp_path / name)) for name in ("a.png", "b.png")]
    (tmp_path / "file").write_text("in the way")
    assert_one_clear_line(depthcam("run", *photos, "-o", str(tmp_path / "file" / "outs")),
                          "cannot create the folder for the outputs")


def test_doctor_names_a_model_cache_that_is_a_file(tmp_path, monkeypatch, capsys):
    """DEPTHCAM_MODELS naming a file was 'ok models ...', and the run that needed a model then failed."""
    from stream import doctor

    (tmp_path / "models.txt").write_text("not a folder")
    for cache in (tmp_path / "models.txt", tmp_path / "models.txt" / "inside"):
        monkeypatch.setenv("DEPTHCAM_MODELS", str(cache))
        check = doctor._models()
        assert not check.ok and str(cache) in check.detail and "DEPTHCAM_MODELS" in check.fix
    monkeypatch.setenv("DEPTHCAM_MODELS", str(tmp_path / "to-be-made"))
    assert doctor._models().ok


def test_a_photo_in_a_slow_window_reports_no_dropped_frames(shared_models, monkeypatch, tmp_path, capsys):
    """The photo's window is fed copies 10 times a second; those a slow render skipped were reported as
    'dropped N frames to keep up with the live source', as if part of the input were lost."""
    import cv2

    from stream import cli

    photo = _photo(tmp_path / "photo.png")
    _fake_window(monkeypatch, [-1, -1, -1, ord("q")])
    monkeypatch.setattr(cv2, "imshow", lambda *a: time.sleep(0.3))  # a render slower than the copies come
    assert cli.main(["run", str(photo), "-o", "window", "--no-progress"]) == 0
    assert "dropped" not in capsys.readouterr().err


def test_a_photo_s_full_size_outputs_are_checked_before_the_window_opens(shared_models, monkeypatch, tmp_path,
                                                                        capsys):
    """The depth file and the blur at the photo's own height were checked only after the refocusing, when the
    full-size render began: q after minutes in the window, then a refusal, and the refocusing was lost."""
    import cv2
    import numpy as np

    from stream import cli

    photo = tmp_path / "large.jpg"
    cv2.imwrite(str(photo), np.random.default_rng(0).integers(0, 256, (1200, 1600, 3), dtype=np.uint8))
    _fake_window(monkeypatch, [])
    monkeypatch.setattr(cv2, "waitKeyEx", lambda delay: pytest.fail("the window opened"))
    for argv, message in ((["--save-depth", str(photo)], "--save-depth"),  # the input itself
                          (["--save-depth", str(tmp_path / "depth.xyz")], "the depth goes into a video or image"),
                          (["-o", str(tmp_path / "same.png"), "--save-depth", str(tmp_path / "same.png")],
                           "both name"),
                          (["--blur", "220"], "over the 512 px limit")):  # 440 px on the window's 960 lines
        assert cli.main(["run", str(photo), "--preview", "--no-progress", *argv]) == 2, argv
        assert message in capsys.readouterr().err, argv
    wide = tmp_path / "wide.png"
    cv2.imwrite(str(wide), np.zeros((40, 6000, 3), np.uint8))
    assert cli.main(["run", str(wide), "--preview", "--side-by-side", "-o", str(tmp_path / "wide.webp")]) == 2
    assert "at most 16383 px a side and this one is 18000x40" in capsys.readouterr().err


def test_a_video_too_wide_for_its_codec_is_refused_before_the_model_loads(tmp_path):
    """Side by side, a 5500 px wide input makes 16500 px pictures, over x264's 16384: the run loaded the model,
    then the writer refused (FFmpeg's "Generic error in an external library" before that)."""
    result = depthcam("run", "synthetic:portrait?size=5500x64&frames=2", "-o", str(tmp_path / "wide.mp4"),
                      "--side-by-side", "--no-progress")
    assert_one_clear_line(result, "-o", ".mp4 video is at most 16384 px a side and this one is 16500x64",
                          "use .webm")
    assert "model" not in result.stderr and not (tmp_path / "wide.mp4").exists()


def test_models_list_prints_on_a_code_page_that_lacks_a_character_of_it(tmp_path):
    # a Windows console redirected to a file writes its ANSI code page: a cache path it cannot encode raised
    # UnicodeEncodeError after the list (bench's '→' lost its JSON the same way)
    cache = tmp_path / "模型"
    result = depthcam("models", "list", env_extra={"PYTHONIOENCODING": "cp1252", "DEPTHCAM_MODELS": str(cache)})
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "cache: " in result.stdout and "\\u6a21\\u578b" in result.stdout


def test_models_info_of_a_checkpoint_prefix_says_to_convert_it(tmp_path):
    # NYU_FCRN.ckpt names no file (its .index and .data do): it was "unknown model"
    (tmp_path / "NYU_FCRN.ckpt.index").write_bytes(b"\0")
    result = depthcam("models", "info", str(tmp_path / "NYU_FCRN.ckpt"))
    assert_one_clear_line(result, "is not an ONNX model", "depthcam models convert")


@pytest.mark.parametrize("argv, message", [
    (["run", "a.mp4", "--blurr", "3"], "unrecognized arguments: --blurr 3; did you mean --blur? "
                                       "(see 'depthcam run --help')"),
    (["run", "a.mp4", "-blur=3"], "did you mean --blur? (see 'depthcam run --help')"),
    (["run", "a.mp4", "--sidebyside"], "did you mean --side-by-side?"),
    (["run", "a.mp4", "--foucs", "0.5"], "did you mean --focus?"),
    (["run", "a.mp4", "--devcie", "cpu"], "did you mean --device?"),
    (["run", "a.mp4", "--point", "0.5,0.5"], "did you mean --focus-point?"),  # a word of its name
    (["models", "info", "fcrn", "--size", "518x518"], "did you mean --model-size? (see 'depthcam models info --help')"),
    (["doctor", "--verbose"], "unrecognized arguments: --verbose (see 'depthcam doctor --help')"),
    (["--side-by-side", "run", "a.mp4"], "--side-by-side is an option of the command: put it after it "
                                         "(depthcam run ... --side-by-side)"),
    (["--blur", "3", "run", "a.mp4"], "--blur is an option of the command: put it after it (depthcam run ... --blur)"),
    # --debug may stand before the command: the misplaced one is the other
    (["--debug", "--blur", "3", "run", "a.mp4"], "--blur is an option of the command: put it after it"),
    (["rn", "a.mp4"], "invalid choice: 'rn'"),
    (["rn", "a.mp4"], "did you mean run?"),
    (["models", "lst"], "did you mean list? (see 'depthcam models --help')"),
    (["run", "a.mp4", "--refine", "ful"], "did you mean full?"),
    (["run", "a.mp4", "--device", "gpu"], "did you mean cuda?"),  # spelt most like cpu, the opposite
    (["run", "a.mp4", "--model-output", "meters"], "did you mean metres?"),
])
def test_a_misspelt_or_misplaced_option_gets_the_one_it_meant_and_its_command_s_help(capsys, argv, message):
    """`run x.mp4 --blurr 3` was told to see 'depthcam --help', which lists no --blur, with no word of --blur."""
    from stream import cli

    with pytest.raises(SystemExit) as exit:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exit.value.code == 2 and err.count("\n") == 1 and "usage:" not in err
    assert message in err, err


@pytest.mark.parametrize("unknown", ["--bogus", "--fps", "--loop", "--nope", "--fast"])
def test_an_option_like_none_gets_no_far_fetched_suggestion(capsys, unknown):
    """`run x.mp4 --bogus` was "did you mean --focus?" (--fps too; --loop --help, --nope --no-preview, --fast
    --start): the two dashes and a letter or two in common were enough. It is told unknown, and where help is."""
    from stream import cli

    with pytest.raises(SystemExit) as exit:
        cli.main(["run", "a.mp4", unknown])
    err = capsys.readouterr().err
    assert exit.value.code == 2 and err == f"depthcam: error: unrecognized arguments: {unknown} " \
                                          f"(see 'depthcam run --help')\n"


def test_a_config_given_twice_is_refused_not_half_read(capsys):
    """`--config live-cpu --config mine.yaml` read as layered, but only mine.yaml was read."""
    from stream import cli

    with pytest.raises(SystemExit) as exit:
        cli.main(["run", "a.mp4", "--config", "live-cpu", "--config", "mine.yaml"])
    assert exit.value.code == 2
    assert "--config is given twice (live-cpu, mine.yaml) and only one is read" in capsys.readouterr().err


def test_a_bad_flag_value_is_named_by_the_flag(tmp_path):
    assert_one_clear_line(depthcam("run", "synthetic:portrait?frames=2", "-o", "null", "--focus", "near"),
                          "--focus: render.focus must be 'auto' or a disparity in [0, 1], got 'near'")


def test_a_photo_s_run_says_no_frame_rate(shared_models, tmp_path):
    """`wrote 1 frame to photo_portrait.png in 0.3 s (3.2 fps)`: a rate means nothing for one picture."""
    result = depthcam("run", "synthetic:portrait?frames=1&size=64x48", "-o", str(tmp_path / "one.png"),
                      "--no-progress")
    assert result.returncode == 0, result.stderr
    wrote = next(line for line in result.stderr.splitlines() if "wrote" in line)
    assert wrote.startswith("depthcam: wrote 1 frame to ") and "fps" not in wrote, wrote


def test_the_help_says_each_option_s_default_and_unit():
    """`--blur PX` and `--max-batch N` said nothing of the value a run takes without them, `--duration` no unit."""
    from stream.cli import build_parser
    from stream.config import PipelineConfig

    run = next(action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction))
    helps = {action.option_strings[0]: action.help for action in run.choices["run"]._actions if action.option_strings}
    preset = PipelineConfig()
    assert f"{preset.render.blur:g} in the default preset" in helps["--blur"]
    assert f"{preset.inference.max_batch} in the default preset" in helps["--max-batch"]
    assert f"{preset.render.highlight_boost:g} in the default preset" in helps["--highlight-boost"]
    assert f"{preset.model} in the default preset" in helps["--model"]
    for option in ("--focus", "--progress", "--side-by-side", "--deinterlace"):
        assert "default" in helps[option], option
    for option in ("--start", "--duration"):
        assert "seconds, or [HH:]MM:SS" in helps[option], option


def test_ctrl_c_while_the_command_loads_is_one_line_and_130():
    """Ctrl-C in the command's first half second (NumPy, OpenCV and Numba loading) printed a 30-line traceback
    from inside NumPy's import."""
    arrives_while_loading = (
        "import builtins, os, signal, sys\n"
        "real_import = builtins.__import__\n"
        "def importing(name, *args, **kwargs):\n"
        "    if name == 'stream.controls':\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "    return real_import(name, *args, **kwargs)\n"
        "builtins.__import__ = importing\n"
        "from stream.cli import console_main\n"
        "print('loaded')\n")
    result = subprocess.run([sys.executable, "-c", arrives_while_loading], capture_output=True, text=True,
                            timeout=120, cwd=REPO)
    assert result.returncode == 130 and result.stderr == "depthcam: interrupted\n", result.stderr
    assert "loaded" not in result.stdout
    ignored = subprocess.run([sys.executable, "-c", "import signal; signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                              + arrives_while_loading], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert ignored.returncode == 0 and "loaded" in ignored.stdout  # a background job's ignored Ctrl-C stays so


@pytest.mark.parametrize("argv, message", [
    (["run", "clip.mp4", "-o", "portraits"], "-o portraits has no extension, so it names no type of file; add one "
                                             "for a file (portraits.mp4), or end it with / for a folder (portraits/)"),
    (["run", "photo.jpg", "--save-depth", "depths"], "add one for a file (depths.png), or end it with / for a folder"),
    (["run", "camera:0", "-o", "take1"], "-o take1 has no extension, so it names no type of file; add one (take1.mp4)"),
    (["demo", "-o", "results"], "or end it with / for a folder (results/)"),
])
def test_an_output_without_an_extension_is_told_how_to_name_a_file_or_a_folder(tmp_path, monkeypatch, capsys, argv,
                                                                              message):
    """`-o portraits` (a folder to be) was refused as "unknown output type (no extension)": not a word of the
    trailing / that makes it a folder."""
    from stream import cli

    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()  # the demo refuses before it writes its sample


def test_a_pattern_that_no_shell_expanded_runs_each_file_it_matches(tmp_path, monkeypatch):
    """`depthcam run 'clips/*.jpg' -o out/` (and the README's `clips/*.mp4` in Windows' cmd and PowerShell, which
    expand no pattern) said "input clips/*.jpg not found"."""
    from stream import cli

    for name in ("b.jpg", "a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    ran: list[tuple[str, str]] = []
    monkeypatch.setattr(cli, "_run", lambda spec, output, args: ran.append((spec, output)) or 0)
    assert cli.main(["run", str(tmp_path / "*.jpg"), "-o", str(tmp_path / "out") + "/"]) == 0
    assert ran == [(str(tmp_path / "a.jpg"), str(tmp_path / "out" / "a_portrait.png")),
                   (str(tmp_path / "b.jpg"), str(tmp_path / "out" / "b_portrait.png"))]


def test_a_pattern_that_matches_nothing_is_said_in_one_line(tmp_path):
    result = depthcam("run", str(tmp_path / "*.jpg"), "-o", str(tmp_path / "out") + "/")
    assert_one_clear_line(result, f"no file matches {tmp_path / '*.jpg'}")
    assert result.returncode == 2


def test_a_camera_s_or_the_synthetic_scene_s_question_mark_is_no_pattern(monkeypatch):
    from stream import cli

    ran: list[str] = []
    monkeypatch.setattr(cli, "_run", lambda spec, output, args: ran.append(spec) or 0)
    assert cli.main(["run", "synthetic:portrait?frames=2", "-o", "null"]) == 0
    assert ran == ["synthetic:portrait?frames=2"]


def test_a_config_s_mistakes_are_each_said_on_an_error_line_of_their_own(shared_models, tmp_path):
    config = tmp_path / "two.yaml"
    config.write_text("render:\n  focus: auot\ndevice: gpu\n")
    result = depthcam("run", "synthetic:portrait?frames=2", "-o", str(tmp_path / "o.mp4"), "--config", str(config))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("depthcam: error: ") for line in lines), result.stderr
    assert "line 2" in lines[0] and "auto" in lines[0] and "line 3" in lines[1] and "cuda" in lines[1]
