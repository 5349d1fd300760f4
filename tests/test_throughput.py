"""Work a file run does once per frame rather than twice, with the same output."""
import pytest

from stream.app import build
from stream.config import load_config
from stream.focus import FocusController, SceneCuts
from test_focus_cuts import _portrait_then_coffee
from test_pipeline import CollectingSink


def _count_cut_tests(monkeypatch) -> list[int]:
    calls = [0]
    is_cut = SceneCuts.is_cut

    def counted(self, image_bgr):
        calls[0] += 1
        return is_cut(self, image_bgr)

    monkeypatch.setattr(SceneCuts, "is_cut", counted)
    return calls


def test_a_sync_run_tests_each_frame_for_a_cut_once(shared_models, monkeypatch):
    """The depth stage tests every frame for a cut (its depth range restarts there) and the render's focus did
    the same test on the same frames again; now it takes the depth stage's answer."""
    calls = _count_cut_tests(monkeypatch)
    sink = CollectingSink()
    config = load_config("default", {"output.progress": False})
    built = build(config, "synthetic:portrait?size=160x120&frames=6", None, sink=sink)
    assert built.pipeline.run().completed
    assert len(sink.frames) == 6
    assert calls[0] == 6  # before: 12


def test_an_async_run_still_tests_every_frame_in_the_render(shared_models, monkeypatch):
    """Async depth tests only the frames the network takes: the focus, which sees every frame, tests its own."""
    calls = _count_cut_tests(monkeypatch)
    sink = CollectingSink()
    config = load_config("default", {"output.progress": False, "inference.mode": "async"})
    built = build(config, "synthetic:portrait?size=160x120&frames=6", None, sink=sink)
    assert built.pipeline.run().completed
    assert len(sink.frames) == 6
    assert calls[0] >= 6


def _modes(controller: FocusController, index: int) -> None:
    """A user at the preview window: a fixed focus at first, auto after 5 frames, a click after 20, auto again
    at a cut (frame 12) and after 30: the controller's own cut test restarts after each fixed stretch."""
    if index == 5:
        controller.auto()
    elif index == 20:
        controller.set_point(300, 200)
    elif index == 30:
        controller.auto()


@pytest.mark.parametrize("start", ["auto", 0.4])
def test_the_depth_stage_s_cut_answer_focuses_as_the_controller_s_own_test(start):
    frames = _portrait_then_coffee() + _portrait_then_coffee()[:12]  # cuts at frames 12 and 32
    cuts = SceneCuts()
    answers = [cuts.is_cut(image) for image, _ in frames]  # the depth stage's: every frame, in order
    assert answers.count(True) == 2
    own, hinted = FocusController(start, face_interval=3), FocusController(start, face_interval=3)
    for index, ((image, disparity), cut) in enumerate(zip(frames, answers)):
        _modes(own, index)
        _modes(hinted, index)
        seconds = index / 30
        assert hinted.update(image, disparity, seconds, cut=cut) == own.update(image, disparity, seconds), index
