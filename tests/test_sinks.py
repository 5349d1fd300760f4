"""Sinks: output types, side-by-side pictures, and clear refusals where a device is missing."""
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from stream import sinks
from stream.errors import UserError
from stream.frame import Frame
from stream.sinks import ImageSink, NullSink, WindowSink, colourise, compose, make_sink, output_kind


def _frame():
    image = np.full((40, 60, 3), 100, np.uint8)
    frame = Frame(index=0, capture_ns=0, image=image)
    frame.output = np.full_like(image, 200)
    frame.refined = np.tile(np.linspace(0, 1, 60, dtype=np.float32), (40, 1))
    return frame


def test_output_kinds():
    assert output_kind("out.mp4") == "video" and output_kind("x.webm") == "video"
    assert output_kind("a.png") == "image"
    assert output_kind("null") == "null" and output_kind("window") == "window"
    with pytest.raises(UserError, match="unknown output type"):
        output_kind("result.txt")


def test_side_by_side_is_input_output_depth():
    frame = _frame()
    picture = compose(frame, side_by_side=True)
    assert picture.shape == (40, 180, 3)
    assert (picture[:, :60] == 100).all() and (picture[:, 60:120] == 200).all()
    np.testing.assert_array_equal(picture[:, 120:], colourise(frame.refined))
    assert compose(frame, side_by_side=False) is frame.output


def test_colourise_maps_near_to_bright():
    """The colour map (inferno): far black, then purple, red, orange, near a bright yellow (near = warm), in
    colour all along the way, not a grey ramp nor a map running the other way (jet: near red, far blue)."""
    ramp = colourise(np.linspace(0.0, 1.0, 11, dtype=np.float32)[None])
    assert ramp.shape == (1, 11, 3) and ramp.dtype == np.uint8
    luma = cv2.cvtColor(ramp, cv2.COLOR_BGR2GRAY)[0].astype(int)
    assert luma[0] <= 5 and luma[-1] >= 230 and (np.diff(luma) > 0).all()  # far dark, near bright, in order
    hsv = cv2.cvtColor(ramp, cv2.COLOR_BGR2HSV)[0].astype(int)
    assert (hsv[1:-1, 1] >= 150).all()  # saturated colours, not shades of grey
    hue = np.where(hsv[1:, 0] < 90, hsv[1:, 0] + 180, hsv[1:, 0])  # OpenCV's 0-180 hue, unwrapped past red
    assert (np.diff(hue) > 0).all()  # purple -> red -> orange -> yellow
    assert 120 <= hsv[2, 0] <= 160 and 20 <= hsv[-1, 0] <= 35  # 0.2 purple, 1.0 yellow


def test_image_sink_writes_the_render(tmp_path):
    import cv2

    sink = ImageSink(tmp_path / "sub" / "out.png", lambda f: compose(f, False))
    sink.write(_frame())
    assert (cv2.imread(str(tmp_path / "sub" / "out.png")) == 200).all()


def test_window_without_a_display_is_refused_clearly(monkeypatch):
    if not sys.platform.startswith("linux"):
        pytest.skip("the DISPLAY check is for Linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(UserError, match="no display"):
        make_sink("window", width=64, height=48, fps=30, audio_from=None, side_by_side=False, save_depth=None,
                  controls=None)


def test_window_on_a_display_that_does_not_answer_is_refused_clearly(monkeypatch, tmp_path):
    # A stale DISPLAY (an SSH session's, a stopped X server): OpenCV's Qt would abort the process.
    if not sys.platform.startswith("linux"):
        pytest.skip("the DISPLAY check is for Linux")
    unused = next(n for n in range(917, 999) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    monkeypatch.setenv("DISPLAY", f":{unused}")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(UserError, match=f"cannot open a preview window on display ':{unused}'"):
        make_sink("window", width=64, height=48, fps=30, audio_from=None, side_by_side=False, save_depth=None,
                  controls=None)


def test_virtual_camera_says_what_is_missing():
    try:
        import pyvirtualcam  # noqa: F401
    except ImportError:
        with pytest.raises(UserError, match="pyvirtualcam"):
            make_sink("vcam", width=64, height=48, fps=30, audio_from=None, side_by_side=False, save_depth=None,
                      controls=None)
    else:
        pytest.skip("pyvirtualcam is installed; whether a device exists depends on the machine")


def _depth_frame(index: int) -> Frame:
    """A 64x48 frame whose render (200) differs from its colourised depth (a left-to-right ramp)."""
    frame = Frame(index=index, capture_ns=0, image=np.full((48, 64, 3), 100, np.uint8), pts_seconds=index / 30)
    frame.output = np.full_like(frame.image, 200)
    frame.refined = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (48, 1))
    return frame


def test_the_depth_goes_into_a_video_or_a_picture(tmp_path):
    """--save-depth depth.png writes the colourised depth as a picture, depth.mp4 as a video, beside the render."""
    picture = make_sink("null", width=64, height=48, fps=30, audio_from=None, side_by_side=False,
                        save_depth=str(tmp_path / "depth.png"), controls=None)
    assert any(isinstance(sink, ImageSink) for sink in picture.sinks)
    picture.write(_depth_frame(0))
    picture.close()
    expected = colourise(_depth_frame(0).refined)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "depth.png")), expected)
    video = make_sink("null", width=64, height=48, fps=30, audio_from=None, side_by_side=False,
                      save_depth=str(tmp_path / "depth.mp4"), controls=None)
    for index in range(3):
        video.write(_depth_frame(index))
    video.close()
    capture = cv2.VideoCapture(str(tmp_path / "depth.mp4"))
    decoded = []
    while (picture_read := capture.read())[0]:
        decoded.append(picture_read[1])
    capture.release()
    assert len(decoded) == 3 and all(f.shape == expected.shape for f in decoded)
    for frame in decoded:  # lossy: the ramp's colours within a few levels, not the render's flat 200
        assert np.abs(frame.astype(int) - expected).mean() < 8
    with pytest.raises(UserError, match="save-depth"):
        make_sink("null", width=64, height=48, fps=30, audio_from=None, side_by_side=False, save_depth="window",
                  controls=None)


def test_null_sink_counts():
    sink = NullSink()
    sink.write(_frame())
    sink.write(_frame())
    assert sink.count == 2


# --- the preview window's keys and clicks, and the virtual camera (no display or device needed) --------


def test_key_codes_special_keys_are_not_letters():
    from stream.sinks import key_char

    assert key_char(-1) is None
    assert key_char(ord("a")) == ord("a") and key_char(ord("+")) == ord("+")
    assert key_char(0xFF61) is None  # Print Screen: waitKey's low byte made it 'a' (auto focus)
    assert key_char(0xFF51) is None  # Left arrow, 'Q' by its low byte
    assert key_char(0x10_0061) == ord("a")  # GTK: 'a' with Num Lock's modifier bit
    assert key_char(0xFF1B) == 27  # GTK's Esc
    assert key_char(0x250000) is None  # Windows' Left arrow


class _Controls:
    def __init__(self):
        self.clicks, self.keys = [], []

    def click(self, x, y):
        self.clicks.append((x, y))

    def key(self, code):
        self.keys.append(code)


def _press(monkeypatch, code):
    """The key OpenCV reports next: waitKeyEx gives the full code, waitKey its low byte."""
    monkeypatch.setattr(cv2, "waitKeyEx", lambda delay: code)
    monkeypatch.setattr(cv2, "waitKey", lambda delay: -1 if code == -1 else code & 0xFF)


def _window(monkeypatch, side_by_side=False):
    monkeypatch.setattr(sinks, "check_display", lambda fix=None: None)
    monkeypatch.setattr(cv2, "namedWindow", lambda *a: None)
    monkeypatch.setattr(cv2, "setMouseCallback", lambda *a: None)
    monkeypatch.setattr(cv2, "imshow", lambda *a: None)
    monkeypatch.setattr(cv2, "getWindowProperty", lambda *a: 1.0)
    controls = _Controls()
    return WindowSink("t", controls, 60, side_by_side, notify=lambda message: None), controls


def test_window_keys_go_by_their_full_code(monkeypatch):
    window, controls = _window(monkeypatch)
    for code in (0xFF61, 0xFF51, ord("+"), ord("A")):  # Print Screen, Left arrow, +, A
        _press(monkeypatch, code)
        window.write(_frame())
    assert controls.keys == [ord("+"), ord("A")] and not window.wants_stop
    _press(monkeypatch, ord("Q"))  # q with Caps Lock on quits too
    window.write(_frame())
    assert window.wants_stop


def test_window_clicks_map_panels_to_the_frame_and_ignore_the_border(monkeypatch):
    window, controls = _window(monkeypatch, side_by_side=True)
    _press(monkeypatch, -1)
    window.click(10, 10)  # nothing shown yet
    window.write(_frame())  # a 180x40 picture: input | render | depth
    window.click(130, 20)
    # a resized window's border (OpenCV does not clip): outside the picture, on either side
    for x, y in ((-3, 20), (180, 20), (50, 40), (50, -1)):
        window.click(x, y)
    assert controls.clicks == [(10, 20)]


def test_window_title_says_what_is_shown_and_the_keys(monkeypatch):
    """The window's title was "depthcam" alone: nothing on screen told the keys, or what s had switched to."""
    titles = []
    monkeypatch.setattr(cv2, "setWindowTitle", lambda name, title: titles.append((name, title)))
    window, _ = _window(monkeypatch)
    assert titles[-1][0] == "t" and titles[-1][1].startswith("depthcam: the render — click: focus")
    assert all(key in titles[-1][1] for key in ("a: auto focus", "+/-: blur", "p: save", "s: side by side", "q: quit"))
    _press(monkeypatch, ord("s"))
    window.write(_frame())
    assert titles[-1][1].startswith("depthcam: input | render | depth — ")


def test_virtual_camera_says_which_device_to_pick(monkeypatch, capsys):
    class Camera:
        device, backend = "/dev/video7", "v4l2loopback"

        def __init__(self, width, height, fps, fmt):
            self.size = (width, height, fps)

    fake = types.SimpleNamespace(Camera=Camera, PixelFormat=types.SimpleNamespace(BGR="BGR"))
    monkeypatch.setitem(sys.modules, "pyvirtualcam", fake)
    make_sink("vcam", width=64, height=48, fps=30, audio_from=None, side_by_side=False, save_depth=None)
    assert "virtual camera /dev/video7 (v4l2loopback) 64x48 @ 30 fps" in capsys.readouterr().err

    def missing(*args, **kwargs):
        raise RuntimeError("No v4l2 loopback device found at /dev/video[0-99].")

    monkeypatch.setattr(Camera, "__init__", missing)
    monkeypatch.setattr(sinks, "LOOPBACK_MODULE", Path("/nonexistent/v4l2loopback"))  # not loaded, wherever run
    with pytest.raises(UserError, match="no virtual camera device .*(modprobe v4l2loopback|install OBS)"):
        make_sink("vcam", width=64, height=48, fps=30, audio_from=None, side_by_side=False, save_depth=None)


def test_a_missing_pyvirtualcam_can_be_found_before_anything_loads(monkeypatch):
    from stream.sinks import check_virtual_camera

    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # import fails as if not installed
    with pytest.raises(UserError, match=r"pip install 'depthcam\[vcam\]'"):
        check_virtual_camera()


def test_closing_the_window_with_its_close_button_stops_the_run_cleanly(monkeypatch):
    # Qt ends its GUI thread with its last window: OpenCV then raises "NULL guiReceiver" where it used to
    # answer, and imshow would open the window again. The run ended with "stage 'sink' failed", exit 1.
    window, _ = _window(monkeypatch)
    _press(monkeypatch, -1)
    shown = []
    monkeypatch.setattr(cv2, "imshow", lambda title, picture: shown.append(title))
    window.write(_frame())
    assert not window.wants_stop and len(shown) == 1

    def gone(*args):
        raise cv2.error("NULL guiReceiver (please create a window)")

    monkeypatch.setattr(cv2, "getWindowProperty", gone)
    monkeypatch.setattr(cv2, "destroyWindow", gone)
    window.write(_frame())
    assert window.wants_stop and len(shown) == 1  # not drawn again: the window stays closed
    window.close()


def test_preview_adds_a_window_after_the_outputs(monkeypatch, tmp_path):
    from stream.sinks import TeeSink, VideoSink

    _window(monkeypatch)
    controls = _Controls()
    sink = make_sink(str(tmp_path / "out.mp4"), width=60, height=40, fps=30, audio_from=None, side_by_side=True,
                     save_depth=str(tmp_path / "depth.mp4"), preview=True, controls=controls)
    assert isinstance(sink, TeeSink)
    depth, video, window = sink.sinks
    assert isinstance(depth, VideoSink) and isinstance(video, VideoSink) and isinstance(window, WindowSink)
    shown = []
    monkeypatch.setattr(cv2, "imshow", lambda title, picture: shown.append(picture.shape))
    _press(monkeypatch, -1)
    sink.write(_frame())
    assert shown == [(40, 180, 3)]  # the picture the file gets: input | output | depth
    window.click(150, 10)  # on the depth panel: the frame's point
    assert controls.clicks == [(30, 10)]
    monkeypatch.setattr(cv2, "destroyWindow", lambda *a: None)
    sink.close()
    # -o window with --preview is one window
    assert isinstance(make_sink("window", width=60, height=40, fps=30, audio_from=None, side_by_side=False,
                                save_depth=None, preview=True, controls=None), WindowSink)


def test_s_switches_the_window_between_the_render_and_three_panels(monkeypatch):
    window, controls = _window(monkeypatch)
    told = []
    window.notify = told.append
    shown = []
    monkeypatch.setattr(cv2, "imshow", lambda title, picture: shown.append(picture.shape[:2]))
    for code in (ord("s"), -1, ord("S"), -1):
        _press(monkeypatch, code)
        window.write(_frame())
    assert shown == [(40, 60), (40, 180), (40, 180), (40, 60)]  # from the frame after the key
    assert told == ["window: input | render | depth (s: the render alone)",
                    "window: the render (s: input | render | depth)"]
    assert controls.keys == []  # a window matter: the render settings do not hear it
    window.click(130, 5)  # outside the render alone: ignored
    for code in (ord("s"), -1):
        _press(monkeypatch, code)
        window.write(_frame())
    window.click(130, 5)  # on the depth panel of the three: the frame's point
    assert controls.clicks == [(10, 5)]


def test_i_shows_the_rate_and_the_latency_on_a_copy(monkeypatch):
    window, _ = _window(monkeypatch)
    told = []
    window.notify = told.append
    clock = iter(range(0, 10 * 40_000_000, 40_000_000))  # a frame shown every 40 ms: 25 fps
    monkeypatch.setattr(sinks, "now_ns", lambda: next(clock))
    written, shown = [], []
    monkeypatch.setattr(cv2, "putText", lambda image, text, *a: written.append(text))
    monkeypatch.setattr(cv2, "imshow", lambda title, picture: shown.append(picture))
    frames = []
    for index, code in enumerate((ord("i"), -1, -1, ord("I"), -1)):
        frame = _frame()
        frame.capture_ns = index * 40_000_000 - 65_000_000  # shown 65 ms after its capture
        frame.focus = 0.625
        frames.append(frame)
        _press(monkeypatch, code)
        window.write(frame)
    # from the frame after the key to the one that turns it off; drawn twice (outline, text) on a copy
    assert written == ["25.0 fps | 65 ms capture to display | focus 0.62"] * 2 * 3
    assert [shown[i] is frames[i].output for i in range(5)] == [True, False, False, False, True]
    assert (frames[2].output == 200).all()  # the frame's own picture, which the files get, is untouched
    assert told == ["window: rate, latency and focus shown (i: hide)",
                    "window: rate, latency and focus hidden (i: show)"]


def test_p_saves_the_render_at_full_size_beside_the_ones_before(monkeypatch, tmp_path):
    window, _ = _window(monkeypatch, side_by_side=True)
    told = []
    window.notify = told.append
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sinks.time, "strftime", lambda pattern: "depthcam_20261128_120000")
    for code in (ord("p"), ord("P")):
        _press(monkeypatch, code)
        window.write(_frame())
    saved = sorted(tmp_path.glob("depthcam_*.png"))
    assert [p.name for p in saved] == ["depthcam_20261128_120000.png", "depthcam_20261128_120000_2.png"]
    for path in saved:  # the render alone, whatever the window shows
        assert (cv2.imread(str(path)) == 200).all() and cv2.imread(str(path)).shape == (40, 60, 3)
    assert told == [f"saved {p}" for p in saved]


def test_p_saves_a_photo_s_render_with_the_photo_s_colour_profile(monkeypatch, tmp_path):
    """A Display P3 photo shown in the window: its snapshot was written untagged, so its colours shifted (read as
    sRGB), whereas the output file kept the profile."""
    from PIL import Image, ImageCms

    from stream.images import PhotoMetadata

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()  # any profile other than none
    monkeypatch.setattr(sinks, "check_display", lambda fix=None: None)
    for name in ("namedWindow", "setMouseCallback", "imshow"):
        monkeypatch.setattr(cv2, name, lambda *a: None)
    monkeypatch.setattr(cv2, "getWindowProperty", lambda *a: 1.0)
    window = make_sink("window", width=60, height=40, fps=30, audio_from=None, side_by_side=False, save_depth=None,
                       photo_metadata=PhotoMetadata(icc_profile=profile))
    window.notify = lambda message: None
    monkeypatch.chdir(tmp_path)
    _press(monkeypatch, ord("p"))
    window.write(_frame())
    [saved] = tmp_path.glob("depthcam_*.png")
    with Image.open(saved) as snapshot:
        assert snapshot.info.get("icc_profile") == profile and snapshot.size == (60, 40)


def _failing_virtual_camera(monkeypatch, message):
    class Camera:
        def __init__(self, width, height, fps, fmt):
            raise RuntimeError(message)

    monkeypatch.setitem(sys.modules, "pyvirtualcam", types.SimpleNamespace(
        Camera=Camera, PixelFormat=types.SimpleNamespace(BGR="BGR")))


def test_a_virtual_camera_failure_is_one_line_also_with_several_backends(monkeypatch):
    # pyvirtualcam joins each backend's error with a newline (Windows tries OBS, then Unity Capture)
    _failing_virtual_camera(monkeypatch, "'obs' backend: OBS Virtual Camera is not installed.\n"
                                         "'unitycapture' backend: Unity Capture is not installed.")
    with pytest.raises(UserError) as caught:
        make_sink("vcam", width=64, height=48, fps=30, audio_from=None, side_by_side=False, save_depth=None)
    assert "\n" not in str(caught.value)
    assert "OBS Virtual Camera is not installed" in str(caught.value) and "Unity Capture" in str(caught.value)


@pytest.mark.parametrize("message", [
    "'v4l2loopback' backend: Virtual camera device /dev/video4 could not be configured: Device or resource busy",
    "'v4l2loopback' backend: Device /dev/video4 is already in use."])
def test_a_busy_virtual_camera_says_to_free_it_not_to_load_the_module(monkeypatch, message):
    # the module is loaded: the fix is to close the program holding the device (or add a device)
    _failing_virtual_camera(monkeypatch, message)
    with pytest.raises(UserError, match=r"virtual camera is busy.*close the program") as caught:
        make_sink("vcam", width=64, height=48, fps=30, audio_from=None, side_by_side=False, save_depth=None)
    assert "modprobe v4l2loopback exclusive_caps" not in str(caught.value)


def test_a_virtual_camera_that_refuses_the_size_says_so(monkeypatch):
    _failing_virtual_camera(monkeypatch, "'v4l2loopback' backend: Virtual camera device /dev/video4 could not be "
                                         "configured: Invalid argument")
    with pytest.raises(UserError, match=r"refused 5760x1080 @ 30 fps.*leave out --side-by-side"):
        make_sink("vcam", width=1920, height=1080, fps=30, audio_from=None, side_by_side=True, save_depth=None)


def test_no_free_loopback_device_with_the_module_loaded_is_a_busy_one(monkeypatch):
    # pyvirtualcam skips a device that another program sends to (exclusive_caps shows it as a capture device)
    # and then says none was found: loading the module, which is loaded, would not help
    _failing_virtual_camera(monkeypatch, "'v4l2loopback' backend: No v4l2 loopback device found at "
                                         "/dev/video[0-99]. Did you run 'modprobe v4l2loopback'?")
    monkeypatch.setattr(sinks.sys, "platform", "linux")
    monkeypatch.setattr(sinks, "LOOPBACK_MODULE", Path("/"))  # present: the module is loaded
    with pytest.raises(UserError, match=r"virtual camera is busy.*close the program"):
        make_sink("vcam", width=64, height=48, fps=30, audio_from=None, side_by_side=False, save_depth=None)
    monkeypatch.setattr(sinks, "LOOPBACK_MODULE", Path("/nonexistent/v4l2loopback"))
    with pytest.raises(UserError, match=r"no virtual camera device .*sudo modprobe v4l2loopback"):
        make_sink("vcam", width=64, height=48, fps=30, audio_from=None, side_by_side=False, save_depth=None)


@pytest.mark.parametrize("platform, fix", [("darwin", r"Start Virtual Camera once .*System Settings"),
                                           ("win32", r"OBS Studio 26 or later .*Unity Capture")])
def test_no_virtual_camera_gives_the_fix_of_that_system(monkeypatch, platform, fix):
    # macOS's OBS 30+ must be told once to start its camera (a system extension): installing OBS is not enough
    _failing_virtual_camera(monkeypatch, "'obs' backend: OBS Virtual Camera is not installed")
    monkeypatch.setattr(sinks.sys, "platform", platform)
    with pytest.raises(UserError, match=r"no virtual camera device .*" + fix):
        make_sink("vcam", width=64, height=48, fps=30, audio_from=None, side_by_side=False, save_depth=None)


def test_a_sink_that_cannot_open_closes_the_ones_opened_before_it(monkeypatch, tmp_path):
    # --save-depth's writer (its x264 encoder) was left open when the virtual camera after it was refused
    _failing_virtual_camera(monkeypatch, "'v4l2loopback' backend: device is busy")
    closed = []
    original = sinks.VideoSink.close

    def close(self, complete=True):
        closed.append((self.writer.path.name, complete))
        return original(self, complete)

    monkeypatch.setattr(sinks.VideoSink, "close", close)
    with pytest.raises(UserError, match="virtual camera is busy"):
        make_sink("vcam", width=64, height=48, fps=30, audio_from=None, side_by_side=False,
                  save_depth=str(tmp_path / "depth.mp4"))
    assert closed == [("depth.mp4", False)] and not list(tmp_path.iterdir())


def test_the_depth_video_of_a_part_keeps_the_part_s_chapters_only(tmp_path):
    """--save-depth with --duration: the main video's chapters were cut at the part's end, the depth video's were
    not (it listed every later chapter, past its own end)."""
    from test_video_streams_kept import _read, _subtitled

    from stream.sources import open_source

    source = open_source(str(_subtitled(tmp_path / "in.mkv")))
    source.set_range(0.5, 1.0)
    sink = make_sink(str(tmp_path / "part.mkv"), width=source.width, height=source.height, fps=source.fps,
                     audio_from=None, side_by_side=False, save_depth=str(tmp_path / "depth.mkv"),
                     audio_ends_with_pictures=source.audio_ends_with_pictures, chapters=source.chapters,
                     part_end=source.part_end)
    for frame in source.frames():
        sink.write(frame)
    sink.close(True)
    source.close()
    assert _read(tmp_path / "depth.mkv")[0] == _read(tmp_path / "part.mkv")[0] == [(0.0, 0.7, "Talk"),
                                                                                   (0.7, 1.0, "End")]


def test_p_saves_a_transparent_video_s_render_with_its_alpha(monkeypatch, tmp_path):
    """A transparent video's pictures carry their alpha beside the render, whose hidden pixels hold the nearest
    visible colour (filled for the blur): a snapshot saved them opaque, the filled colour showing where the input
    was transparent; it keeps the alpha, as a transparent photo's snapshot does."""
    from PIL import Image

    window, _ = _window(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sinks.time, "strftime", lambda pattern: "depthcam_20261129_120000")
    frame = _frame()
    alpha = np.zeros((40, 60), np.uint8)
    alpha[:, :30] = 255  # the left half shown
    frame.extra["alpha"] = alpha
    _press(monkeypatch, ord("p"))
    window.write(frame)
    with Image.open(tmp_path / "depthcam_20261129_120000.png") as saved:
        assert saved.mode == "RGBA"
        assert (np.asarray(saved.getchannel("A")) == alpha).all()
        assert (np.asarray(saved.convert("RGB"))[:, :30] == 200).all()
