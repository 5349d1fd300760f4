"""The preview window's close button before its first picture, and what its keys changed shown in the window
(fake OpenCV window calls and a fake clock: no screen, no timing)."""
import cv2
import numpy as np
import pytest

from stream import sinks
from stream.config import RenderConfig
from stream.controls import LiveControls
from stream.focus import FocusController
from stream.frame import Frame
from stream.sinks import WindowSink


class FakeWatch:
    def gone(self) -> bool:
        return False

    def close(self) -> None:
        pass


class FakeWindow:
    """OpenCV's window calls: `visible` is what getWindowProperty answers (an exception: raised, as Qt does once
    its last window closed); `keys` are given by waitKeyEx in turn; imshow's pictures and putText's texts kept."""

    def __init__(self, monkeypatch, keys=(), visible=1.0) -> None:
        self.visible, self.keys = visible, list(keys)
        self.shown: list[np.ndarray] = []
        self.texts: list[str] = []
        self.clock = 1_000_000_000
        monkeypatch.setattr(sinks, "check_display", lambda fix=None: None)
        monkeypatch.setattr(sinks.DisplayWatch, "open", classmethod(lambda cls, display: FakeWatch()))
        monkeypatch.setattr(sinks, "now_ns", lambda: self.clock)
        for name in ("namedWindow", "setMouseCallback", "setWindowTitle", "destroyWindow", "waitKey",
                     "resizeWindow"):
            monkeypatch.setattr(cv2, name, lambda *a: None)
        monkeypatch.setattr(cv2, "imshow", lambda title, picture: self.shown.append(picture))
        monkeypatch.setattr(cv2, "getWindowProperty", self.property)
        monkeypatch.setattr(cv2, "waitKeyEx", lambda delay: self.keys.pop(0) if self.keys else -1)
        real_put_text = cv2.putText
        monkeypatch.setattr(cv2, "putText", lambda out, text, *a: self.texts.append(text) or real_put_text(
            out, text, *a))

    def property(self, title, prop):
        if isinstance(self.visible, Exception):
            raise self.visible
        return self.visible


def _frame(index=0):
    image = np.full((40, 60, 3), 200, np.uint8)
    return Frame(index=index, capture_ns=0, image=image, output=image.copy(), focus=0.5)


def _controls() -> LiveControls:
    return LiveControls(FocusController("auto"), RenderConfig(blur=12.0), 40, notify=lambda line: None)


# --- 1: the close button before the first picture ---------------------------------------------------------


@pytest.mark.parametrize("closed", [0.0, cv2.error("NULL guiReceiver (please create a window)")])
def test_a_window_closed_before_its_first_picture_ends_the_run(monkeypatch, closed):
    # waiting for a network stream's first batch or a slow first depth, the close button did nothing and the
    # window came back at the first frame
    fake = FakeWindow(monkeypatch)
    window = WindowSink("t", None, 60, False, alone=True)
    window.idle()  # on screen, no picture yet
    assert not window.wants_stop
    fake.visible = closed  # its close button (Qt: its GUI thread ended with its last window)
    window.idle()
    assert window.wants_stop
    window.write(_frame())
    assert fake.shown == []  # not opened again by the first picture
    window.close()


def test_a_window_closed_just_before_its_first_picture_is_not_opened_again(monkeypatch):
    fake = FakeWindow(monkeypatch)
    window = WindowSink("t", None, 60, False, alone=False)
    window.idle()
    fake.visible = 0.0  # closed between the last wait and the first frame
    window.write(_frame())
    assert fake.shown == [] and window.wants_stop


@pytest.mark.parametrize("unmapped", [0.0, -1.0])
def test_a_window_not_yet_on_screen_before_its_first_picture_is_not_taken_as_closed(monkeypatch, unmapped):
    # a backend may map the window only at its first picture (0), or not tell its visibility at all (-1): such
    # a window would have ended every run before it began
    fake = FakeWindow(monkeypatch, visible=unmapped)
    window = WindowSink("t", None, 60, False, alone=True)
    for _ in range(3):
        window.idle()
    assert not window.wants_stop
    window.write(_frame())
    assert len(fake.shown) == 1


def test_q_before_the_first_picture_still_ends_the_run(monkeypatch):
    FakeWindow(monkeypatch, keys=[ord("q")])
    window = WindowSink("t", None, 60, False)
    window.idle()
    assert window.wants_stop


# --- 2: what the keys changed, in the window ------------------------------------------------------------


def test_the_info_text_shows_the_blur(monkeypatch):
    fake = FakeWindow(monkeypatch, keys=[ord("i")])
    window = WindowSink("t", _controls(), 60, False)
    window.idle()  # i
    window.write(_frame())
    assert "blur 12 px" in " ".join(fake.texts)


@pytest.mark.parametrize("key,note", [(ord("+"), "blur 14 px"), (ord("-"), "blur 10 px"),
                                      (0xFFAB, "blur 14 px"), (ord("a"), "auto focus")])
def test_a_key_shows_what_it_changed_for_a_moment(monkeypatch, key, note):
    # +/- changed the render, but by a few pixels: nothing in the window said it did anything
    fake = FakeWindow(monkeypatch)
    window = WindowSink("t", _controls(), 60, False)
    first = _frame()
    window.write(first)
    assert fake.shown[-1] is first.output and fake.texts == []  # nothing to tell: the picture itself, no copy
    fake.keys.append(key)
    window.idle()
    fake.clock += 1_400_000_000
    window.write(_frame(1))
    assert fake.texts and set(fake.texts) == {note}  # the note alone: the `i` text is off
    assert not np.array_equal(fake.shown[-1], _frame().output)
    fake.texts.clear()
    fake.clock += 200_000_000  # 1.6 s after the key: gone
    later = _frame(2)
    window.write(later)
    assert fake.shown[-1] is later.output and fake.texts == []


def test_a_note_comes_below_the_info_text(monkeypatch):
    fake = FakeWindow(monkeypatch, keys=[ord("i"), ord("+")])
    window = WindowSink("t", _controls(), 60, False)
    window.idle()  # i
    window.idle()  # +
    window.write(_frame())
    assert fake.texts[-1] == "blur 14 px" and any("fps" in text for text in fake.texts)


def test_a_snapshot_is_told_in_the_window(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    fake = FakeWindow(monkeypatch)
    window = WindowSink("t", None, 60, False, notify=lambda line: None)
    window.write(_frame())
    fake.keys.append(ord("p"))
    window.idle()
    window.write(_frame(1))
    saved = list(tmp_path.glob("depthcam_*.png"))
    assert len(saved) == 1 and set(fake.texts) == {f"saved {saved[0].name}"}
