"""Review of the session's later commits (round 2): the normal paths and the edges they touched, kept as they were.
The exact far field at odd widths and at multiples of a mask word's columns, its source bits many words on; a live
30 fps camera's face detector asked as before; a single run's new output folder still made; a camera name looked up
where there is no /sys; Linux's memory check without Windows' call."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest

from stream import camera as cameras
from stream import cli, images
from stream import focus as focus_module
from stream.focus import FocusController
from tests.test_exact_far20 import test_render_exact_far_is_the_per_offset_sum as render_is_per_offset_sum
from tests.test_exact_far20 import test_source_bits_moves_the_chunks as source_bits_move
from tests.test_latency20 import CountingFinder

# --- the exact far field (3db4efb) ------------------------------------------------------------------------------------


@pytest.mark.parametrize("height, width", [(5, width) for width in (1, 2, 7, 8, 9, 16, 17, 33, 63, 64, 65, 70)]
                         + [(12, 512), (12, 1024), (6, 511), (6, 513)])
def test_a_render_s_exact_far_field_is_the_per_offset_sum_at_edge_widths(height, width):
    """Narrower than a chunk or the window, and a mask word's 512 columns exactly (no word past the row's last)."""
    render_is_per_offset_sum(np.random.default_rng(width), height, width)


@pytest.mark.parametrize("dx", [-99, -72, -65, 64, 65, 127, 511, 512, 600])
def test_source_bits_reach_chunks_more_than_a_word_away(dx):
    source_bits_move(dx)


# --- the live face detector's rate (8c42863) --------------------------------------------------------------------------


@pytest.mark.parametrize("face_interval", [1, 3])
def test_a_30_fps_camera_with_jittery_times_asks_the_face_detector_as_before(monkeypatch, face_interval):
    """Every face_interval-th frame, as before the time rule, with frame times wandering +-4 ms (arrival times)."""
    monkeypatch.setattr(focus_module, "BackgroundFaceFinder", CountingFinder)
    controller = FocusController("auto", face_interval=face_interval, faces_in_background=True)
    image, disparity = np.zeros((24, 32, 3), np.uint8), np.full((24, 32), 0.5, np.float32)
    jitter = np.random.default_rng(5).uniform(-0.004, 0.004, 90)
    for index in range(90):
        controller.update(image, disparity, 50.0 + index / 30 + jitter[index])
    assert [frame for frame, _ in controller._background.asked] == list(range(0, 90, face_interval))


@pytest.mark.parametrize("times", ["pairs", "jitter 12 ms"])
def test_a_30_fps_camera_whose_frames_arrive_unevenly_asks_the_face_detector_as_before(monkeypatch, times):
    """Frames stamped as they arrive, in pairs (a starved reader) or +-12 ms late: the time rule, meant for cameras
    faster than 30 fps, asked about 75 (97) of the 100 frames every third frame had been asked about."""
    monkeypatch.setattr(focus_module, "BackgroundFaceFinder", CountingFinder)
    controller = FocusController("auto", face_interval=3, faces_in_background=True)
    image, disparity = np.zeros((24, 32, 3), np.uint8), np.full((24, 32), 0.5, np.float32)
    jitter = np.random.default_rng(7).uniform(-0.012, 0.012, 300)
    for index in range(300):
        seconds = 50.0 + (index // 2 * 2 / 30 if times == "pairs" else index / 30 + jitter[index])
        controller.update(image, disparity, seconds)
    assert [frame for frame, _ in controller._background.asked] == list(range(0, 300, 3))


def test_a_frame_time_going_back_still_asks_the_face_detector(monkeypatch):
    monkeypatch.setattr(focus_module, "BackgroundFaceFinder", CountingFinder)
    controller = FocusController("auto", face_interval=3, faces_in_background=True)
    image, disparity = np.zeros((24, 32, 3), np.uint8), np.full((24, 32), 0.5, np.float32)
    times = [10 + i / 30 for i in range(6)] + [2 + i / 30 for i in range(6)]  # the camera's clock restarted
    for seconds in times:
        controller.update(image, disparity, seconds)
    assert [frame for frame, _ in controller._background.asked] == [0, 3, 6, 9]


# --- output folders (d0bd4ea, ccde601) --------------------------------------------------------------------------------


def test_a_single_run_to_a_new_folder_makes_it(shared_models, tmp_path, monkeypatch):
    import cv2

    monkeypatch.chdir(tmp_path)
    cv2.imwrite("photo.png", np.full((48, 64, 3), 90, np.uint8))
    assert cli.main(["run", "photo.png", "-o", "out/x/portrait.png", "--save-depth", "depth/d.png",
                     "--no-progress"]) == 0
    assert (tmp_path / "out" / "x" / "portrait.png").is_file() and (tmp_path / "depth" / "d.png").is_file()


# --- portability (d0bd4ea, dd89f39) -----------------------------------------------------------------------------------


def test_a_camera_name_looked_up_again_without_sys_is_not_there(monkeypatch, tmp_path):
    monkeypatch.setattr(cameras, "VIDEO4LINUX", tmp_path / "no-sys" / "class" / "video4linux")
    assert cameras.camera_now("C920", 0) is None


def test_linux_s_memory_check_does_not_ask_windows(monkeypatch):
    def win_dll(name: str):
        raise AssertionError("Windows' kernel32 asked on Linux")

    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setattr(ctypes, "WinDLL", win_dll, raising=False)
    available = images.memory_available()
    assert available is None or available > 0
    monkeypatch.setattr("sys.platform", "darwin")  # no /proc/meminfo there either way: ctypes is not asked
    images.memory_available()
