"""What `build` checks once the input is open and before anything heavy loads (stream.app.check_outputs)."""
import cv2
import numpy as np
import pytest

from media import make_video
from stream.app import check_outputs
from stream.config import load_config
from stream.errors import UserError
from stream.sources import open_source


@pytest.fixture
def clip(tmp_path):
    return make_video(tmp_path / "clip.mp4", frames=4, size=(160, 120), audio_codec=None)


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), np.full((120, 160, 3), 128, np.uint8))
    return path


def check(input_spec, output, **overrides):
    source = open_source(str(input_spec))
    try:
        check_outputs(load_config("default", overrides), str(input_spec), str(output), source)
    finally:
        source.close()


def test_an_output_that_is_the_input_is_refused(clip, photo, tmp_path):
    with pytest.raises(UserError, match="-o .* is the input file"):
        check(clip, tmp_path / "." / "clip.mp4")
    with pytest.raises(UserError, match="--save-depth .* is the input file"):
        check(clip, tmp_path / "out.mp4", **{"output.save_depth": str(clip)})
    with pytest.raises(UserError, match="is the input file"):
        check(photo, photo)
    (tmp_path / "link.mp4").symlink_to(clip)
    with pytest.raises(UserError, match="is the input file"):
        check(tmp_path / "link.mp4", clip)


def test_the_depth_video_and_the_render_need_two_names(clip, tmp_path):
    with pytest.raises(UserError, match="both name"):
        check(clip, tmp_path / "out.mp4", **{"output.save_depth": str(tmp_path / "out.mp4")})
    check(clip, tmp_path / "out.mp4", **{"output.save_depth": str(tmp_path / "depth.mp4")})


def test_an_image_output_takes_a_single_frame_only(clip, photo, tmp_path):
    with pytest.raises(UserError, match="is an image but the input is a video"):
        check(clip, tmp_path / "out.png")
    with pytest.raises(UserError, match="is an image"):
        check("synthetic:portrait?frames=3", tmp_path / "out.png")
    check(photo, tmp_path / "out.jpg")
    check("synthetic:portrait?frames=1", tmp_path / "out.png")


def test_a_blur_too_large_for_the_frame_names_the_largest_that_fits(tmp_path):
    # 200 px at 480 lines is 833 px at 2000 lines, over the renderer's 512 px limit
    with pytest.raises(UserError, match=r"833 px .* use --blur 122 or less"):
        check("synthetic:portrait?size=2400x2000&frames=1", "null", **{"render.blur": 200})
    check("synthetic:portrait?size=2400x2000&frames=1", "null", **{"render.blur": 122})


def test_a_focus_point_outside_the_frame_is_refused(tmp_path):
    with pytest.raises(UserError, match="outside the 320x240 frame"):
        check("synthetic:portrait?size=320x240&frames=1", "null", **{"render.focus_point": "5000,5000"})
    check("synthetic:portrait?size=320x240&frames=1", "null", **{"render.focus_point": "319,239"})


def test_your_own_model_is_read_as_inverse_depth_unless_told_it_gives_metres(shared_models):
    from models.registry import get_spec
    from stream.app import load_estimator

    path = str(shared_models / get_spec("tcmonodepth").filename)
    assert load_estimator(load_config("default", {"model": path}), progress=False).spec.output_kind == "inverse_depth"
    metric = load_estimator(load_config("default", {"model": path, "model_output": "metres"}), progress=False)
    assert metric.spec.output_kind == "metres"
    assert metric.to_disparity(np.array([0.5, 2.0], np.float32)).tolist() == [2.0, 0.5]  # nearer = larger
    with pytest.raises(UserError, match="model_output must be one of"):
        load_config("default", {"model_output": "feet"})


def test_an_output_that_cannot_be_written_is_refused_before_the_model_loads(clip, tmp_path):
    (tmp_path / "notes.txt").write_text("a file where a folder should be")
    with pytest.raises(UserError, match="cannot write output .*notes.txt is a file"):
        check(clip, tmp_path / "notes.txt" / "out.mp4")
    with pytest.raises(UserError, match="cannot write depth video"):
        check(clip, tmp_path / "out.mp4", **{"output.save_depth": str(tmp_path / "notes.txt" / "d.mp4")})


def test_a_depth_image_of_a_video_is_refused_before_the_model_loads(clip, tmp_path):
    with pytest.raises(UserError, match="--save-depth .*d.png is an image but the input has many frames"):
        check(clip, tmp_path / "out.mp4", **{"output.save_depth": str(tmp_path / "d.png")})
    with pytest.raises(UserError, match="--save-depth window: the depth goes into a video or image file"):
        check(clip, tmp_path / "out.mp4", **{"output.save_depth": "window"})
    # a name of no kind was told to use "window, vcam or null", which the depth refuses
    with pytest.raises(UserError, match=r"--save-depth d.txt: the depth goes into a video or image file; give one "
                                        r"\(e.g. d.mp4\)$"):
        check(clip, tmp_path / "out.mp4", **{"output.save_depth": "d.txt"})


def test_a_photo_kept_in_a_window_comes_again_paced_like_a_slow_camera(tmp_path):
    import itertools
    import time

    from stream.sources import STILL_FPS, ImageSource

    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3))
    source = ImageSource(path)
    once = list(source.frames())
    assert not source.live and len(once) == 1
    # read once, the photo is handed over as it is: a 48-megapixel one's copy was 146 MB more at the run's peak
    assert once[0].image is source.image
    source.keep_showing()
    started = time.perf_counter()
    frames = list(itertools.islice(source.frames(), 4))
    elapsed = time.perf_counter() - started
    assert source.live and source.frame_count == 1  # still one picture for the output checks
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert all(np.array_equal(f.image, source.image) and f.image is not source.image for f in frames)
    assert elapsed >= 3 / STILL_FPS - 0.01


def test_a_large_photo_is_shown_on_a_smaller_copy(tmp_path):
    from stream.sources import STILL_WINDOW_WIDTH, ImageSource

    path = tmp_path / "large.png"
    cv2.imwrite(str(path), np.zeros((1500, 2000, 3), np.uint8))
    source = ImageSource(path)
    assert source.keep_showing() == pytest.approx(STILL_WINDOW_WIDTH / 2000)
    assert (source.width, source.height) == (1280, 960)
    assert next(iter(source.frames())).image.shape == (960, 1280, 3)
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((120, 160, 3), np.uint8))
    assert ImageSource(small).keep_showing() == 1.0


def test_a_video_plays_at_its_own_pace_where_it_is_watched(clip, photo):
    from stream.app import plays_in_real_time

    video = open_source(str(clip))
    assert plays_in_real_time("window", video) and plays_in_real_time("vcam", video)
    assert not any(plays_in_real_time(target, video) for target in ("out.mp4", "null", "still.png"))
    assert not plays_in_real_time("window", open_source(str(photo)))  # a photo is kept, not paced
    assert not plays_in_real_time("window", open_source("synthetic:portrait?frames=3"))


def test_an_input_from_a_pipe_needs_an_output_named(tmp_path):
    """`cat clip.mp4 | depthcam run /dev/stdin` wrote /dev/stdin_portrait.mp4."""
    import os

    from stream.app import default_output
    from stream.sources import Source

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with pytest.raises(UserError, match="is a pipe or a device, so there is no place beside it.*give one with -o"):
        default_output(str(pipe), Source())
    assert default_output("synthetic:portrait", Source()) == "out/synthetic_portrait.mp4"


def test_the_synthetic_scene_paced_like_a_camera_is_written_to_its_file_too():
    """`synthetic:portrait?realtime=1` without -o opened a window (and failed without a display), where the
    README and --help say out/synthetic_portrait.mp4; a camera's default stays the window."""
    from stream.app import default_output

    paced = open_source("synthetic:portrait?frames=3&realtime=1")
    assert paced.live
    assert default_output("synthetic:portrait?frames=3&realtime=1", paced) == "out/synthetic_portrait.mp4"
    camera = type("Camera", (), {"live": True})()
    assert default_output("camera:0", camera) == "window"


def test_a_preview_that_cannot_open_says_to_leave_out_preview(monkeypatch):
    from stream.sinks import PREVIEW_FIX, check_display

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    with pytest.raises(UserError, match=r"DISPLAY is not set\); leave out --preview"):
        check_display(PREVIEW_FIX)
