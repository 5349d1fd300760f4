"""A face the frame's side cuts off is found and focused; the blur scales with the frame's shorter side."""
import cv2
import numpy as np
import pytest

from stream.app import check_outputs
from stream.config import RenderConfig, load_config
from stream.errors import UserError
from stream.faces import FaceFinder
from stream.focus import FocusController
from stream.frame import Frame
from stream.sources import open_source
from stream.stages import RenderStage, blur_px


def _picture(name: str) -> np.ndarray:
    from skimage import data

    image = getattr(data, name)()
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR if image.ndim == 2 else cv2.COLOR_RGB2BGR)


def _cut(x0: int, right: bool = False) -> np.ndarray:
    """The astronaut (her face at x 176-272 of 512) with the frame's left side at x0: 14-34 px of her face cut off;
    `right`: the same picture mirrored, cut by the right side."""
    astronaut = _picture("astronaut")
    return np.ascontiguousarray(astronaut[:, ::-1][:, :512 - x0] if right else astronaut[:, x0:])


@pytest.mark.parametrize("x0", [190, 200, 210])
@pytest.mark.parametrize("right", [False, True])
def test_a_face_the_frames_side_cuts_off_is_found(x0, right):
    """The visual critic's crop (x from 190): neither cascade found her face, and focus went to the helmet."""
    image = _cut(x0, right)
    [(x, y, w, h)] = FaceFinder().faces(image)
    width = image.shape[1]
    assert (x + w == width) if right else x == 0  # boxed as far as the frame shows it
    assert 60 <= y <= 80 and 55 <= w <= 100 and 75 <= h <= 105  # her face (96 px, at y 66 when whole)


def test_auto_focus_goes_to_a_face_the_side_cuts_off_not_the_nearer_helmet():
    image = _cut(190)
    depth = np.full(image.shape[:2], 0.2, np.float32)
    depth[60:170, :90] = 0.8  # her face
    depth[330:, :] = 0.99  # the helmet and her suit: the nearest large region
    assert FocusController("auto", smoothing=1.0).update(image, depth) == pytest.approx(0.8)


@pytest.mark.parametrize("name, share", [("coins", 0.1), ("page", 0.1), ("page", 0.3), ("retina", 0.45)])
def test_pictures_without_people_cut_by_the_side_give_no_face(name, share):
    """Crops where the bordered pass boxed a false face (6-7 of the cascade's windows agreeing)."""
    image = _picture(name)
    assert FaceFinder().faces(np.ascontiguousarray(image[:, int(share * image.shape[1]):])) == []


def test_the_cut_face_pass_looks_every_other_time_where_it_finds_nothing():
    class Counting(FaceFinder):
        passes = 0

        def _cut_faces(self, grey):
            Counting.passes += 1
            return super()._cut_faces(grey)

    finder = Counting()
    coffee = _picture("coffee")
    assert [finder.faces(coffee) for _ in range(4)] == [[]] * 4 and Counting.passes == 2
    cut = _cut(200)
    Counting.passes = 0
    assert all(len(finder.faces(cut)) == 1 for _ in range(3)) and Counting.passes == 3


def test_a_head_in_profile_found_does_not_pay_the_cut_face_pass_again():
    """The cut-face pass looked before the profile cascade at every detection while a head was found in profile
    (+50 % a detection on scikit-image's cameraman)."""
    class Counting(FaceFinder):
        passes = 0

        def _cut_faces(self, grey):
            Counting.passes += 1
            return super()._cut_faces(grey)

    finder, camera = Counting(), _picture("camera")
    found = [finder.faces(camera) for _ in range(4)]
    assert all(len(faces) == 1 and faces == found[0] for faces in found) and Counting.passes == 1
    assert len(finder.faces(_cut(200))) == 1 and Counting.passes == 2  # a cut face: the profile pass first, then it


@pytest.mark.parametrize("width, height", [(1920, 1080), (1080, 1920), (1080, 1080)])
def test_the_blur_scales_with_the_frames_shorter_side(width, height):
    """A vertical 1080x1920 video got 48 px of blur where the same scene in landscape got 27."""
    assert blur_px(RenderConfig(blur=12.0), width, height) == pytest.approx(27.0)


def test_the_render_stage_gives_a_portrait_frame_the_landscape_blur(monkeypatch):
    import kernels

    asked = []

    def recording(image, disparity, focus, max_blur_px, **options):
        asked.append(max_blur_px)
        return image

    monkeypatch.setattr(kernels, "depth_of_field", recording)
    stage = RenderStage(RenderConfig(blur=12.0), FocusController(0.5), "cpu")
    for height, width in [(90, 160), (160, 90)]:
        frame = Frame(0, 0, np.zeros((height, width, 3), np.uint8))
        frame.refined = np.full((height, width), 0.5, np.float32)
        stage.process([frame])
    assert asked == [pytest.approx(2.25)] * 2


def _check(size: str, blur: float) -> None:
    spec = f"synthetic:portrait?size={size}&frames=1"
    source = open_source(spec)
    try:
        check_outputs(load_config("default", {"render.blur": blur}), spec, "null", source)
    finally:
        source.close()


def test_the_blur_limit_is_read_at_the_shorter_side():
    """200 at 480 lines is 267 px on a 640x2000 portrait frame (it was refused as 833), 833 px on a 2400x2000 one."""
    _check("640x2000", 200)
    with pytest.raises(UserError, match=r"833 px at this 2400x2000 input, over the 512 px limit; use --blur 122 or"):
        _check("2400x2000", 200)
    _check("2400x2000", 122)


def test_the_windows_keys_reach_the_renderers_limit_at_a_portrait_frames_shorter_side(monkeypatch):
    """The window's + stopped at 128 px a 1080x1920 video's 1920 lines allowed, short of the 512 px it renders."""
    import stream.app as app

    class Built(Exception):
        pass

    def sink_made(*args, controls, **kwargs):
        controls.notify = lambda line: None
        controls.set_blur(1000.0)
        raise Built(controls.render.blur)

    monkeypatch.setattr(app, "load_estimator", lambda *args, **kwargs: None)
    monkeypatch.setattr(app, "build_stages", lambda *args, **kwargs: [])
    monkeypatch.setattr(app, "prepare_kernels", lambda *args, **kwargs: None)
    monkeypatch.setattr(app, "make_sink", sink_made)
    with pytest.raises(Built) as built:
        app.build(load_config("default"), "synthetic:portrait?size=1080x1920&frames=1", "null")
    assert built.value.args[0] == pytest.approx(512.0 * 480 / 1080)  # 512 px at its 1080 px shorter side
