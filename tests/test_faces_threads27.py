"""A cut in a live run: the render thread asks the face detector to look afresh (look_closely) while the detector's
own thread may be in its fine pass, reading what it remembers of the regions it looked at. Setting that memory from
the render thread raised there (its reference thumbnail set to None between the detector's test and its use: a
TypeError, which ended the live run); the detector now forgets it itself, at its next fine pass."""
from __future__ import annotations

import numpy as np

from stream.faces import FaceFinder
from test_focus27 import SIZE, _backdrop, _region_looks


def _looked_once(finder: FaceFinder, frame: np.ndarray, region: tuple[int, int, int, int]) -> list[int]:
    looks = _region_looks(finder)
    for _ in range(3):  # a still frame: its region is looked at once, then remembered
        finder.look_in([region])
        assert finder.faces(frame) == []
    return looks


def test_look_closely_leaves_the_detectors_region_memory_to_the_detector():
    frame, region = _backdrop(), (290, 210, 60, 60)
    finder = FaceFinder(fine_every=20)
    looks = _looked_once(finder, frame, region)
    assert looks == [0] and finder._reference is not None and finder._looked
    remembered = (finder._reference, list(finder._looked))
    finder.look_closely()  # the render thread's call at a cut: the detector's state untouched by it
    assert finder._reference is remembered[0] and finder._looked == remembered[1]


def test_after_a_cut_the_detector_looks_at_a_region_again():
    frame, region = _backdrop(), (290, 210, 60, 60)
    finder = FaceFinder(fine_every=20)
    looks = _looked_once(finder, frame, region)
    finder.look_closely()
    finder.look_in([region])
    assert finder.faces(frame) == [] and looks == [0, 3]  # the new shot's region looked at afresh
    assert SIZE == frame.shape[1::-1]
