"""The twenty-third session's command line: a grey16 depth of an animation refused before the model loads, the
config read once, a preview window whose backend cannot tell its visibility, and a new user's first mistakes."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from stream import sinks
from stream.frame import Frame
from stream.sinks import WindowSink


# --- a window whose backend cannot tell whether it is on screen ---------------------------------------------


class _Window:
    """OpenCV's window calls, faked: getWindowProperty answers `visible`; waitKeyEx gives `keys` in turn."""

    def __init__(self, monkeypatch, visible: float, keys=()) -> None:
        self.visible, self.keys = visible, list(keys)
        self.shown: list[np.ndarray] = []
        self.destroyed: list[str] = []
        monkeypatch.setattr(sinks, "check_display", lambda fix=None: None)
        monkeypatch.setattr(sinks.DisplayWatch, "open", classmethod(lambda cls, display: None))
        for name in ("namedWindow", "setMouseCallback", "setWindowTitle", "waitKey", "resizeWindow"):
            monkeypatch.setattr(cv2, name, lambda *a: None)
        monkeypatch.setattr(cv2, "destroyWindow", self.destroyed.append)
        monkeypatch.setattr(cv2, "imshow", lambda title, picture: self.shown.append(picture))
        monkeypatch.setattr(cv2, "getWindowProperty", lambda title, prop: self.visible)
        monkeypatch.setattr(cv2, "waitKeyEx", lambda delay: self.keys.pop(0) if self.keys else -1)


def _frame(index: int) -> Frame:
    image = np.full((40, 60, 3), 100 + index, np.uint8)
    return Frame(index=index, capture_ns=0, image=image, output=image.copy())


def test_a_window_whose_backend_cannot_tell_its_visibility_shows_every_frame_until_q(monkeypatch):
    # -1 (GTK before OpenCV 4.6, some others): after its first picture the window was taken as closed, and the run
    # ended at its first frame
    fake = _Window(monkeypatch, visible=-1.0)
    window = WindowSink("t", None, 60, False, alone=True)
    for index in range(5):
        window.write(_frame(index))
        window.idle()
        assert not window.wants_stop
    assert len(fake.shown) == 5
    fake.keys.append(ord("q"))
    window.idle()
    assert window.wants_stop
    window.close()
    assert fake.destroyed == ["t"]  # taken away at the end, not left on screen


def test_a_window_seen_on_screen_then_answering_minus_one_is_closed(monkeypatch):
    # a backend that tells (1) and forgets the window once its close button took it away (-1)
    fake = _Window(monkeypatch, visible=1.0)
    window = WindowSink("t", None, 60, False, alone=True)
    window.write(_frame(0))
    assert not window.wants_stop
    fake.visible = -1.0
    window.idle()
    assert window.wants_stop
    window.write(_frame(1))
    assert len(fake.shown) == 1  # not opened again


# --- a grey16 depth of an animation, refused before the model loads -----------------------------------------


@pytest.fixture
def no_build(monkeypatch) -> list[str]:
    """stream.app.build replaced: it opens the input and loads the model (seconds). The inputs it was called for
    are kept, and it refuses each as a run that stops there would."""
    import stream.app
    from stream.errors import UserError

    built: list[str] = []

    def build(config, input_spec, output, **kwargs):
        built.append(input_spec)
        raise UserError("stopped where the input opens and the model loads")

    monkeypatch.setattr(stream.app, "build", build)
    return built


def _animation(path):
    from PIL import Image

    pictures = [Image.fromarray(np.full((24, 32, 3), 60 * index, np.uint8)) for index in range(3)]
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=100, loop=0)
    return path


@pytest.mark.parametrize("name", ["anim.gif", "anim.png", "anim.webp"])
@pytest.mark.parametrize("depth", ["depth.png", "depth.tif", "depth.gif"])
def test_an_animation_s_grey16_depth_picture_is_refused_before_the_model_loads(tmp_path, capsys, no_build, name,
                                                                             depth):
    from stream.cli import main

    animation = _animation(tmp_path / name)
    code = main(["run", str(animation), "-o", str(tmp_path / f"out{animation.suffix}"), "--save-depth",
                 str(tmp_path / depth), "--depth-format", "grey16", "--no-progress"])
    errors = capsys.readouterr().err.splitlines()
    assert code == 2 and no_build == []  # refused before the input opened and the model loaded (seconds)
    # the fix that works at once: a .gif was sent to .png or .tif first, which was then refused as well
    assert errors == [f"depthcam: error: --save-depth {tmp_path / depth}: an animation's 16-bit grey depth goes into "
                      f"a video; give depth.mkv"]


def test_an_animation_s_grey16_depth_in_a_folder_or_a_video_goes_on(tmp_path, capsys, no_build):
    from stream.cli import main

    animation = _animation(tmp_path / "anim.gif")
    for depth in (f"{tmp_path}/depths/", str(tmp_path / "depth.mkv")):
        main(["run", str(animation), "--save-depth", depth, "--depth-format", "grey16", "--no-progress"])
    assert no_build == [str(animation)] * 2


def test_a_photo_s_grey16_depth_picture_still_goes_on(tmp_path, no_build):
    from stream.cli import main

    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.full((24, 32, 3), 90, np.uint8))
    main(["run", str(photo), "--save-depth", str(tmp_path / "depth.png"), "--depth-format", "grey16"])
    assert no_build == [str(photo)]


# --- the config file read once -----------------------------------------------------------------------------


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The config files read (stream.config.read_config_file's calls), in turn."""
    import stream.config

    real = stream.config.read_config_file
    read: list[str] = []
    monkeypatch.setattr(stream.config, "read_config_file", lambda path: read.append(str(path)) or real(path))
    return read


@pytest.fixture
def grey16_config(tmp_path):
    config = tmp_path / "mine.yaml"
    config.write_text("output:\n  depth_format: grey16\n")
    return config


@pytest.fixture
def depths_run(monkeypatch) -> list[str | None]:
    """The depth file of each run that got as far as building its pipeline (cli._execute's config)."""
    from stream import cli

    seen: list[str | None] = []
    real = cli._execute
    monkeypatch.setattr(cli, "_execute", lambda spec, output, config, *a, **k: seen.append(
        config.output.save_depth) or real(spec, output, config, *a, **k))
    return seen


def test_one_input_reads_its_config_once_and_names_a_folder_s_depth_by_it(tmp_path, capsys, no_build, reads,
                                                                          grey16_config, depths_run):
    from stream.cli import main

    main(["run", str(tmp_path / "clip.mp4"), "--config", str(grey16_config), "--save-depth", f"{tmp_path}/depths/"])
    assert reads == [str(grey16_config)]  # was twice: once more for the depth's name in the folder
    assert depths_run == [str(tmp_path / "depths" / "clip_depth.mkv")]  # the grey16 depth's type, from the file


def test_several_inputs_read_their_config_once(tmp_path, capsys, no_build, reads, grey16_config, depths_run):
    from stream.cli import main

    clips = [str(tmp_path / f"clip{index}.mp4") for index in range(3)]
    main(["run", *clips, "--config", str(grey16_config), "--save-depth", f"{tmp_path}/depths/"])
    assert no_build == clips
    assert reads == [str(grey16_config)]  # was once for the depths' names, then once an input
    assert depths_run == [str(tmp_path / "depths" / f"clip{index}_depth.mkv") for index in range(3)]


def test_the_demo_reads_its_config_once(tmp_path, capsys, no_build, reads, grey16_config, depths_run, monkeypatch):
    import stream.sample
    from stream.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(stream.sample, "write_sample", lambda path: path)  # the clip itself is not needed here
    main(["demo", "--config", str(grey16_config)])
    assert reads == [str(grey16_config)]
    assert depths_run == [str(Path("out") / "demo_depth.mkv")]


# --- a new user's first minute ------------------------------------------------------------------------------


def _refused(capsys, argv: list[str]) -> str:
    """The one line a command line refused by the parser gives (exit 2, no usage block)."""
    from stream.cli import main

    with pytest.raises(SystemExit) as exit:
        main(argv)
    err = capsys.readouterr().err
    assert exit.value.code == 2 and err.count("\n") == 1 and "usage:" not in err, err
    return err


def test_depthcam_alone_says_what_to_type(capsys):
    assert _refused(capsys, []) == ("depthcam: error: no command given; depthcam run VIDEO (a photo, camera:0, a "
                                    "stream's URL), or depthcam demo to try it on a sample clip "
                                    "(see 'depthcam --help')\n")


@pytest.mark.parametrize("word", ["0", "clip.mp4", "demo.mp4", "camera:0", "rtsp://cam/live"])
def test_an_input_given_as_the_command_is_told_to_run(capsys, word):
    # `depthcam clip.mp4` offered the commands (demo.mp4: "did you mean demo?")
    err = _refused(capsys, [word])
    assert f"; {word} is no command: to process it, depthcam run {word} (see" in err and "did you mean" not in err


def test_a_misspelt_option_before_the_command_is_named(capsys):
    # "invalid choice: '3'", with no word of --blurr
    err = _refused(capsys, ["--blurr", "3", "run", "clip.mp4"])
    assert "--blurr is no option: did you mean --blur? It is an option of the command: put it after it " \
           "(depthcam run ... --blur)" in err
    assert "to process it" not in _refused(capsys, ["--bogus", "3", "run", "clip.mp4"])  # 3 is no input there


@pytest.mark.parametrize("given, meant", [("windw", "window"), ("nul", "null"), ("vcm", "vcam")])
def test_a_misspelt_output_name_gets_the_one_it_meant(tmp_path, capsys, given, meant):
    from stream.cli import main

    assert main(["run", str(tmp_path / "clip.mp4"), "-o", given]) == 2
    assert capsys.readouterr().err == f"depthcam: error: -o {given} names no type of file; did you mean -o {meant}?\n"


@pytest.mark.parametrize("given, line", [
    ("htp://example.com/a.mp4", "input htp://example.com/a.mp4: depthcam reads no htp:// address; did you mean "
                                "http://example.com/a.mp4?"),
    ("rtps://cam/live", "input rtps://cam/live: depthcam reads no rtps:// address; did you mean rtsp://cam/live?"),
    ("http//example.com/a.mp4", "input http//example.com/a.mp4: not found; did you mean http://example.com/a.mp4?"),
    ("rtsp:/user:secret@cam/live", "input rtsp:/user:***@cam/live: not found; did you mean rtsp://user:***@cam/live?"),
    ("camera0", "input camera0: not found; did you mean camera:0?"),
    ("cam:1", "input cam:1: not found; did you mean camera:1?"),
    ("webcam", "input webcam: not found; did you mean camera:0?"),
])
def test_a_mistyped_address_or_camera_gets_the_one_it_meant(tmp_path, capsys, monkeypatch, no_build, given, line):
    from stream.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["run", given, "-o", "null"]) == 2 and no_build == []
    assert capsys.readouterr().err == f"depthcam: error: {line}\n"


def test_a_misspelt_file_name_gets_the_file_beside_it(tmp_path, capsys, no_build):
    from stream.cli import main

    (tmp_path / "clip.mp4").write_bytes(b"")
    for given, line in ((tmp_path / "clp.mp4", f"input {tmp_path / 'clp.mp4'}: not found; did you mean "
                                                f"{tmp_path / 'clip.mp4'}?"),
                        (tmp_path / "other.mov", "stopped where the input opens")):  # none like it: as before
        assert main(["run", str(given), "-o", "null"]) == 2
        assert capsys.readouterr().err.startswith(f"depthcam: error: {line}")
    assert no_build == [str(tmp_path / "other.mov")]
