"""Session 20's small defects: a part shortened at the clip's end said with its length on the run line, a misspelt
bench mode told the one meant, camera:NAME looked up again when reopened, no output folder left by a run that failed
before writing, the doctor's window fix on its own line, and the damage line's count of pictures timed out of line."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from stream import bench, cli, doctor
from stream import camera as cameras
from stream.errors import UserError
from stream.sources import open_source
from tests.test_live20 import PacedWebcam, _linux_cameras
from tests.test_review20 import Picture, _video_source

# --- 1. the run line gives the part's shortened length --------------------------------------------------------------


@pytest.mark.parametrize("start, duration, said", [(2.0, 5.0, "from 2.0 s for 1.0 s"),
                                                   (1.0, 1.5, "from 1.0 s for 1.5 s")])
def test_the_run_line_gives_the_length_of_a_part_cut_at_the_clip_s_end(tmp_path, capsys, start, duration, said):
    # a 3 s clip, --start 2 --duration 5: the warning said "the part is 1.0 s", the run line "for 5.0 s"
    from media import make_video

    path = make_video(tmp_path / "in.mp4", frames=30, fps=10, audio_codec=None)
    source = open_source(str(path))
    try:
        source.set_range(start, duration)
        assert source.description.endswith(f", {said}")
    finally:
        source.close()


# --- 2. a misspelt bench mode ---------------------------------------------------------------------------------------


def test_a_misspelt_bench_mode_is_told_the_one_it_meant():
    with pytest.raises(UserError, match=r"unknown bench mode\(s\) livee \(did you mean live\?\), xyz; choose from "
                                        r"pipelined, sequential, batch, live$"):
        bench.parse_modes("pipelined,livee,xyz")


def test_depthcam_bench_with_a_misspelt_mode_says_it_in_one_line(capsys):
    assert cli.main(["bench", "--modes", "sequentail"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["depthcam: error: unknown bench mode(s) sequentail (did you mean sequential?); "
                                        "choose from pipelined, sequential, batch, live"]


# --- 3. camera:NAME plugged back in under another number -------------------------------------------------------------


def _replugged(monkeypatch, tmp_path, spec: str) -> tuple[list[int], object]:
    """A C920 at /dev/video2 that stops after 3 pictures and comes back at /dev/video4 (another camera now at
    video2): the numbers opened, and the source read until it ends."""
    root = _linux_cameras(monkeypatch, tmp_path, [(0, "Integrated Camera", 0), (2, "HD Pro Webcam C920", 0)]).parent
    opened: list[int] = []

    def unplug_and_replug():
        video4linux = root / "video4linux"
        shutil.move(video4linux / "video2", video4linux / "video4")
        (video4linux / "video2").mkdir()
        (video4linux / "video2" / "index").write_text("0\n")
        (video4linux / "video2" / "name").write_text("USB Capture Card\n")

    class Unplugged(PacedWebcam):
        def read(self):
            ok, image = super().read()
            if not ok and self.read_count == self.frames:
                self.read_count += 1
                unplug_and_replug()
            return ok, image

    def open_camera(index):  # the camera as plugged in first, then back, then for good away (opened, no pictures)
        opened.append(index)
        if len(opened) == 1:
            return Unplugged(fps=200, frames=3)
        return PacedWebcam(fps=200, frames=2 if len(opened) == 2 else 0)

    monkeypatch.setattr(cameras, "_open_camera", open_camera)
    monkeypatch.setattr(cameras, "CAMERA_RECONNECT_S", 0.5)
    monkeypatch.setattr(cameras, "CAMERA_RETRY_PAUSE_S", 0.01)
    source = open_source(spec)
    frames = []
    with pytest.raises(UserError, match="stopped delivering frames"):
        for frame in source.frames():
            frames.append(frame)
    source.close()
    return opened, frames


def test_a_camera_chosen_by_name_is_found_again_under_its_new_number(monkeypatch, tmp_path, capsys):
    # it was reopened as /dev/video2, the number it had at the start, now another device: the C920 was not found
    opened, frames = _replugged(monkeypatch, tmp_path, "camera:C920")
    assert opened[:2] == [2, 4] and len(frames) == 5
    err = capsys.readouterr().err
    assert "camera 2 stopped for " in err and " and came back as camera 4" in err
    assert "camera 4 stopped delivering frames; opening it again" in err  # its lines name the number it has now


def test_a_camera_chosen_by_number_is_opened_again_at_that_number(monkeypatch, tmp_path):
    opened, _ = _replugged(monkeypatch, tmp_path, "camera:2")
    assert opened[:2] == [2, 2]


def test_a_camera_name_is_looked_up_again_only_where_one_camera_answers(monkeypatch, tmp_path):
    _linux_cameras(monkeypatch, tmp_path, [(1, "HD Pro Webcam C920", 0), (3, "HD Pro Webcam C920", 0)])
    assert cameras.camera_now("C920", 3) == 3  # its own number, where it still is
    assert cameras.camera_now("C920", 5) is None  # two of that name, neither its number: not guessed
    assert cameras.camera_now("Brio", 1) is None  # not plugged back in yet
    assert cameras.camera_name("camera:HD%20Pro?fps=30") == "HD Pro" and cameras.camera_name("camera:2") is None


# --- 4. no output folder left by a run that failed before writing ----------------------------------------------------


def test_a_run_that_fails_before_writing_leaves_no_output_folder(shared_models, tmp_path, monkeypatch, capsys):
    # `--save-depth depths/` with a model that refuses the size asked: the run failed, and depths/ stayed, empty
    import cv2

    monkeypatch.chdir(tmp_path)
    cv2.imwrite("photo.png", np.full((48, 64, 3), 90, np.uint8))
    code = cli.main(["run", "photo.png", "-o", "portraits/out.png", "--save-depth", "depths/", "--model-size", "17x17",
                     "--no-progress"])
    assert code != 0 and "--model-size can only choose" in capsys.readouterr().err
    assert not (tmp_path / "depths").exists() and not (tmp_path / "portraits").exists()


def test_the_check_before_the_run_creates_no_folder_and_the_file_s_opening_does(tmp_path):
    from stream.paths import ensure_writable

    target = tmp_path / "a" / "b" / "depth.mp4"
    assert ensure_writable(target, "depth video", create_folder=False) == target and not (tmp_path / "a").exists()
    assert list(tmp_path.iterdir()) == []  # the probe file too is gone
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file, not a folder"):
        ensure_writable(tmp_path / "file" / "sub" / "out.mp4", create_folder=False)
    assert ensure_writable(target) == target and (tmp_path / "a" / "b").is_dir()


# --- 5. the doctor's window line --------------------------------------------------------------------------------------


def test_the_doctor_s_window_line_puts_its_fix_on_a_fix_line(monkeypatch, capsys):
    monkeypatch.setattr(cameras.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(doctor, "CHECKS", (doctor._display,))
    assert doctor.run_doctor() == 0
    assert capsys.readouterr().out.splitlines() == [
        "--  window       no display for the preview window (DISPLAY is not set)",
        "    fix: write to a file with -o out.mp4, or use -o null"]


# --- 6. the damage line counts only the pictures timed out of line ----------------------------------------------------


def test_the_damage_line_counts_the_timed_pictures_and_names_the_untimed_one_apart(capsys):
    # one picture timed an hour ahead and one without a time held with it: "2 pictures timed 3599.9 s out of line"
    step = 3600
    pictures = [Picture(pts) for pts in (0, step, 2 * step, 3600 * 90000, None, 5 * step, 6 * step)]
    kept = list(_video_source()._in_line(iter(pictures)))
    assert [picture.pts for picture in kept] == [number * step for number in range(7)]
    assert "damaged.ts is damaged near 0.1 s: 1 picture timed 3599.9 s out of line with those around it, and 1 " \
        "without a time held with it, put back in line (not a join of clips)" in capsys.readouterr().err


def test_the_damage_line_without_untimed_pictures_reads_as_before(capsys):
    step = 3600
    pictures = [Picture(pts) for pts in (0, step, 2 * step, 3600 * 90000, 3600 * 90000 + step, 5 * step, 6 * step)]
    list(_video_source()._in_line(iter(pictures)))
    assert ": 2 pictures timed 3599.9 s out of line with those around them, put back in line" in \
        capsys.readouterr().err


def test_several_inputs_that_all_fail_leave_no_empty_output_folders(tmp_path, capsys):
    """`run a.mp4 b.mp4 -o outs/ --save-depth depths/` made both folders before the first input; where every input
    failed (here: not videos at all) they stayed behind, empty. A folder that was there stays."""
    from stream import cli

    bad = []
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / name).write_bytes(b"not a video at all")
        bad.append(str(tmp_path / name))
    (tmp_path / "kept").mkdir()
    code = cli.main(["run", *bad, "-o", str(tmp_path / "outs" / "new") + "/", "--save-depth",
                     str(tmp_path / "kept" / "depths") + "/", "--no-progress"])
    assert code == 2 and "0 of 2 inputs done" in capsys.readouterr().err
    assert not (tmp_path / "outs").exists() and not (tmp_path / "kept" / "depths").exists()
    assert (tmp_path / "kept").is_dir()
