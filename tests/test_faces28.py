"""Face finding where OpenCV has no Haar cascades (5.x moved them to opencv-contrib; the GPU machine's image had
OpenCV 5.0): it found nothing but raised AttributeError from every pipeline that looks for faces."""
from __future__ import annotations

import numpy as np
import pytest

from stream import faces


@pytest.fixture
def no_cascades(monkeypatch):
    monkeypatch.delattr(faces.cv2, "CascadeClassifier")
    monkeypatch.delattr(faces.cv2, "data")  # as an OpenCV without the cascades may
    faces._cascade.cache_clear()
    yield
    faces._cascade.cache_clear()  # the real cascades again for the tests after


def test_without_cascades_faces_are_not_found_and_one_line_says_why(no_cascades, capsys):
    finder = faces.FaceFinder()
    faces.FaceFinder()  # a second finder: no second line
    frame = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    assert finder.faces(frame) == [] and finder.largest_face(frame) is None
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("depthcam: warning: OpenCV ")
    assert "no face cascades" in lines[0] and "pip install 'opencv-python>=4.9,<5'" in lines[0]


def test_with_cascades_the_real_classifier_is_loaded():
    cascade, _ = faces._cascade(faces.cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    assert isinstance(cascade, faces.cv2.CascadeClassifier)
