"""Review of session 22's stream, live and render changes: the ordinary paths they touched stay as they were
(guards, each checked against the session's base: a landscape frame's blur, GTK's special keys, a phone's variable
frame rate)."""
from __future__ import annotations

import numpy as np
import pytest

from stream.config import RenderConfig
from stream.sinks import KEYPAD_FIRST, KEYPAD_LAST, key_char
from stream.sources import open_source
from stream.stages import blur_px

from tests.media import make_timed_video


@pytest.mark.parametrize("width, height", [(640, 480), (1280, 720), (1920, 1080), (3840, 2160), (500, 500)])
@pytest.mark.parametrize("blur, reference", [(12.0, 480), (7.3, 480), (40.0, 720)])
def test_a_landscape_frames_blur_is_the_height_scaled_one_bit_for_bit(width, height, blur, reference):
    # the blur now scales with the shorter side: a landscape (or square) frame's must be the one it had
    assert blur_px(RenderConfig(blur=blur, reference_height=reference), width, height) == blur * height / reference


def test_gtks_special_keys_other_than_the_keypads_characters_read_as_no_key():
    # the keypad mapping must not turn an arrow, a function key, Shift or Num Lock's keypad Home into a character
    for code in range(0xFF00, 0x10000):
        expected = 27 if code == 0xFF1B else code - 0xFF80 if KEYPAD_FIRST <= code <= KEYPAD_LAST else None
        assert key_char(code) == expected and key_char(code | 0x10_0000) == expected, hex(code)
    assert {chr(key_char(code)) for code in range(KEYPAD_FIRST, KEYPAD_LAST + 1)} == set("*+,-./0123456789:;<=")


def test_a_phones_variable_frame_rate_keeps_its_times(tmp_path):
    # frames 25-42 ms apart (seeded): no time is taken for damaged by the line's pause rule
    times = [round(float(t), 3) for t in np.cumsum(np.random.default_rng(5).uniform(0.025, 0.042, 60))]
    source = open_source(str(make_timed_video(tmp_path / "phone.mp4", times, audio_codecs=())))
    try:
        shown = [round(frame.pts_seconds, 3) for frame in source.frames()]
    finally:
        source.close()
    assert shown == times
