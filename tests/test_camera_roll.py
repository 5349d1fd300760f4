"""A phone's camera roll as input: the sidecars and folders it holds beside the photos and videos, and the tags of a
part of an iPhone video (when it was recorded, which asset it is)."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from stream import cli
from stream.video_writer import VideoWriter, shifted_time

CREATED = "2025-08-02T09:15:30.000000Z"
APPLE_CREATED = "2025-08-02T11:15:30+0200"
IDENTIFIER = "1F2E3D4C-AAAA-BBBB-CCCC-0123456789AB"
IPHONE_TAGS = {"creation_time": CREATED, "com.apple.quicktime.creationdate": APPLE_CREATED,
               "com.apple.quicktime.content.identifier": IDENTIFIER, "com.apple.quicktime.live-photo.auto": "1",
               "com.apple.quicktime.make": "Apple", "com.apple.quicktime.model": "iPhone 15 Pro",
               "com.apple.quicktime.location.ISO6709": "+48.8584+002.2945+035.000/"}
AAE = '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict><key>adjustmentFormatVersion</key>' \
      '<integer>1</integer></dict></plist>\n'


def _photo(path: Path) -> Path:
    image = np.zeros((48, 64, 3), np.uint8)
    cv2.circle(image, (32, 24), 12, (200, 180, 160), -1)
    cv2.imwrite(str(path), image)
    return path


def _roll(tmp_path: Path) -> Path:
    """A copied iPhone camera roll: a photo, its edit sidecar, a Google Takeout JSON, a burst's folder, and the
    files macOS and Windows leave in a folder."""
    roll = tmp_path / "roll"
    (roll / "Burst").mkdir(parents=True)
    _photo(roll / "IMG_0001.JPG")
    _photo(roll / "Burst" / "IMG_7001_BURST.JPG")
    (roll / "IMG_0001.AAE").write_text(AAE)
    (roll / "IMG_0001.JPG.json").write_text('{"title": "IMG_0001.JPG"}\n')
    (roll / "IMG_0002.xmp").write_text("<x:xmpmeta/>\n")
    for name in (".DS_Store", "._IMG_0001.JPG", "Thumbs.db", "DESKTOP.INI"):
        (roll / name).write_bytes(b"\0\1")
    return roll


def _one_error(err: str, *needles: str) -> None:
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_a_pattern_over_a_camera_roll_leaves_out_its_sidecars_and_folders(shared_models, tmp_path, capsys):
    """`depthcam run 'roll/*' -o out/` counted the .AAE sidecar and the burst's folder as failed inputs ("2 of 4
    inputs done; failed: roll/Burst, roll/IMG_0001.AAE", exit 2)."""
    roll = _roll(tmp_path)
    _photo(roll / "IMG_0003.png")
    out = tmp_path / "out"
    assert cli.main(["run", str(roll / "*"), "-o", f"{out}/", "--refine", "off"]) == 0
    err = capsys.readouterr().err
    assert "leaving out 6 input(s) that are no photo or video: 1 folder" in err, err
    assert f"({roll / 'Burst'}: give {roll / 'Burst' / '*'} for the files in it)" in err
    assert "1 iPhone edit sidecar" in err and "1 JSON metadata file" in err and "1 XMP sidecar" in err
    assert "2 of 2 inputs done" in err and "failed" not in err and "error" not in err, err
    assert sorted(path.name for path in out.iterdir()) == ["IMG_0001_portrait.png", "IMG_0003_portrait.png"]


def test_what_a_shell_s_pattern_gives_is_left_out_too_in_any_case(tmp_path, monkeypatch, capsys):
    """`roll/* roll/.*` as a shell expands it (the names are then given one by one, as if typed); extensions in
    any case (.AAE, .aae), and the files macOS and Windows leave in a folder."""
    roll = _roll(tmp_path)
    (roll / "IMG_0004.aae").write_text(AAE)
    ran: list[str] = []
    monkeypatch.setattr(cli, "_run", lambda spec, output, args: ran.append(spec) or 0)
    names = sorted(str(path) for path in roll.iterdir())
    assert cli.main(["run", *names, "-o", "null"]) == 0
    assert ran == [str(roll / "IMG_0001.JPG")]
    err = capsys.readouterr().err
    assert "leaving out 9 input(s)" in err and "2 iPhone edit sidecars" in err, err
    for kind in (".DS_Store file", "AppleDouble file", "Thumbs.db file", "desktop.ini file"):
        assert f"1 {kind}" in err, (kind, err)


def test_a_sidecar_named_on_its_own_says_what_it_is(tmp_path, capsys):
    """It said "cannot read video roll/IMG_0001.AAE: Invalid data found when processing input (the file is not a
    video, or it is truncated or corrupt)"."""
    roll = _roll(tmp_path)
    assert cli.main(["run", str(roll / "IMG_0001.AAE")]) == 2
    _one_error(capsys.readouterr().err, "IMG_0001.AAE is an iPhone edit sidecar (XML), not a photo or video",
               f"give the photo or video it belongs to: {roll / 'IMG_0001.JPG'}")
    assert cli.main(["run", str(roll / "._IMG_0001.JPG"), "-o", "null"]) == 2
    _one_error(capsys.readouterr().err, "is an AppleDouble file", f"give {roll / 'IMG_0001.JPG'} itself")
    assert cli.main(["run", str(roll / "IMG_0002.xmp")]) == 2  # nothing beside it: the fix says what to give
    _one_error(capsys.readouterr().err, "is an XMP metadata sidecar", "not a photo or video; give the photo it "
                                                                      "describes")


def test_a_folder_named_on_its_own_says_how_to_give_its_files(tmp_path, capsys):
    roll = _roll(tmp_path)
    assert cli.main(["run", str(roll / "Burst")]) == 2
    _one_error(capsys.readouterr().err, f"{roll / 'Burst'} is a folder", f"depthcam run {roll / 'Burst' / '*'}")


def test_a_pattern_of_sidecars_only_is_one_line(tmp_path, capsys):
    roll = _roll(tmp_path)
    assert cli.main(["run", str(roll / "*.AAE"), str(roll / "*.json"), str(roll / "Burst")]) == 2
    _one_error(capsys.readouterr().err, "none of the 3 inputs is a photo or video: 1 iPhone edit sidecar, "
                                        "1 JSON metadata file, 1 folder")


def _iphone_video(path: Path, seconds: int = 3) -> Path:
    """An iPhone's MOV as FFmpeg writes Apple's keys (mdta, with movflags=use_metadata_tags)."""
    import av

    with av.open(str(path), "w", container_options={"movflags": "use_metadata_tags"}) as container:
        container.metadata.update(IPHONE_TAGS)
        video = container.add_stream("libx264", rate=12)
        video.width, video.height, video.pix_fmt = 96, 64, "yuv420p"
        for index in range(12 * seconds):
            image = np.full((64, 96, 3), 40 + 5 * index, np.uint8)
            cv2.circle(image, (48, 32), 14, (220, 200, 180), -1)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    return path


def _tags(path: Path) -> dict[str, str]:
    import av

    with av.open(str(path)) as container:
        return {key.lower(): value.split(";")[0] for key, value in container.metadata.items()}


@pytest.mark.parametrize("suffix", [".mov", ".mkv"])
def test_a_part_is_dated_when_it_was_recorded_and_is_no_live_photo_s_video(shared_models, tmp_path, suffix):
    """`--start 1` kept the input's creation times, so photo apps sorted the part at the input's start; and the Live
    Photo identifier was copied, so the output claimed to be the original's video. The depth video alike."""
    source = _iphone_video(tmp_path / "IMG_0100.MOV")
    out, depth = tmp_path / f"part{suffix}", tmp_path / "part_depth.mp4"
    assert cli.main(["run", str(source), "-o", str(out), "--save-depth", str(depth), "--start", "1",
                     "--refine", "off"]) == 0
    for path in (out, depth):
        kept = _tags(path)
        assert kept["creation_time"] == "2025-08-02T09:15:31.000000Z", (path, kept)
        assert kept["com.apple.quicktime.creationdate"] == "2025-08-02T11:15:31+0200", (path, kept)
        assert "com.apple.quicktime.content.identifier" not in kept and \
            "com.apple.quicktime.live-photo.auto" not in kept, (path, kept)
        assert kept["com.apple.quicktime.make"] == "Apple" and kept["com.apple.quicktime.model"] == "iPhone 15 Pro"
        assert kept["com.apple.quicktime.location.iso6709"] == IPHONE_TAGS["com.apple.quicktime.location.ISO6709"]


def test_a_whole_video_keeps_its_creation_times_as_they_are(shared_models, tmp_path):
    source = _iphone_video(tmp_path / "IMG_0101.MOV", seconds=1)
    out = tmp_path / "whole.mov"
    assert cli.main(["run", str(source), "-o", str(out), "--refine", "off"]) == 0
    kept = _tags(out)
    assert kept["creation_time"] == CREATED and kept["com.apple.quicktime.creationdate"] == APPLE_CREATED
    assert "com.apple.quicktime.content.identifier" not in kept


def test_an_avi_part_s_date_is_the_day_it_was_recorded(tmp_path):
    """AVI keeps the creation date only (RIFF's ICRD), from the shifted time: a part past midnight is the next day."""
    out = tmp_path / "part.avi"
    writer = VideoWriter(out, 64, 48, 12, tags_from={"creation_time": "2025-08-02T23:59:59.500000Z"})
    writer.start_part(1.0)
    writer.write(np.zeros((48, 64, 3), np.uint8), 1.0)
    writer.close()
    assert _tags(out)["date"] == "2025-08-03"


@pytest.mark.parametrize("written, seconds, later", [
    ("2025-08-02T09:15:30.000000Z", 1.0, "2025-08-02T09:15:31.000000Z"),  # FFmpeg's, in UTC
    ("2025-08-02T11:15:30+0200", 90.0, "2025-08-02T11:17:00+0200"),  # QuickTime's creationdate, local time
    ("2025-08-02T11:15:30+02:00", 2.4, "2025-08-02T11:15:32+02:00"),  # whole seconds stay whole
    ("2025-08-02T23:59:59.25Z", 0.75, "2025-08-03T00:00:00.00Z"),  # past midnight, its two digits kept
    ("2025-12-31 23:59:59", 1.0, "2026-01-01 00:00:00"),  # a space for the T, no zone
    ("2025", 5.0, "2025"),  # no time to shift: as it is
    ("2025-02-30T10:00:00Z", 5.0, "2025-02-30T10:00:00Z"),  # no such day: as it is
])
def test_a_creation_time_is_shifted_in_its_own_form(written, seconds, later):
    assert shifted_time(written, seconds) == later


def test_a_depth_video_beside_a_paced_input_keeps_its_tags_and_part(shared_models, tmp_path, monkeypatch):
    """A video shown in a window (or fed to a virtual camera) is paced (PacedSource): the depth video written beside
    it took neither the input's tags nor its part's date, being handed the pacing wrapper, not the file. Paced here
    for a file output too, so that no screen is needed."""
    import stream.app as app

    monkeypatch.setattr(app, "plays_in_real_time", lambda output, source: True)
    source = _iphone_video(tmp_path / "IMG_0101.MOV", seconds=2)
    depth = tmp_path / "paced_depth.mp4"
    assert cli.main(["run", str(source), "-o", "null", "--save-depth", str(depth), "--start", "1", "--refine", "off",
                     "--no-progress"]) == 0
    kept = _tags(depth)
    assert kept["creation_time"] == "2025-08-02T09:15:31.000000Z", kept
    assert kept["com.apple.quicktime.make"] == "Apple"


def test_a_pattern_in_another_case_than_the_names_says_so(tmp_path, capsys):
    """A camera names its photos IMG_0001.JPG; `'roll/*.jpg'` matched nothing, and the line said only to check the
    folder and the pattern."""
    roll = tmp_path / "roll"
    roll.mkdir()
    for index in (1, 2):
        _photo(roll / f"IMG_000{index}.JPG")
    assert cli.main(["run", str(roll / "*.jpg"), "-o", str(tmp_path / "out") + "/"]) == 2
    _one_error(capsys.readouterr().err, "no file matches", "names differ by case here, and 2 would in another case",
               "IMG_0001.JPG", "give the pattern in their case")


def test_a_drones_folder_leaves_out_its_subtitle_logs_and_notes(tmp_path, monkeypatch, capsys):
    """A DJI drone writes DJI_0001.SRT (its flight data) beside DJI_0001.MP4: `run dji/* -o out/` refused the whole
    folder ("two inputs would both write out/DJI_0001_portrait.mp4"), and a notes.txt was a failed input."""
    dji = tmp_path / "dji"
    dji.mkdir()
    for stem in ("DJI_0001", "DJI_0002"):
        (dji / f"{stem}.MP4").write_bytes(b"")  # the runs are stubbed: only the inputs' names matter
        (dji / f"{stem}.SRT").write_text("1\n00:00:00,000 --> 00:00:00,033\nF/2.8, SS 100, ISO 100\n")
    (dji / "film.vtt").write_text("WEBVTT\n")
    (dji / "notes.txt").write_text("flight 3\n")
    ran: list[str] = []
    monkeypatch.setattr(cli, "_run", lambda spec, output, args: ran.append(spec) or 0)
    assert cli.main(["run", str(dji / "*"), "-o", f"{tmp_path / 'out'}/"]) == 0
    assert ran == [str(dji / "DJI_0001.MP4"), str(dji / "DJI_0002.MP4")]
    err = capsys.readouterr().err
    assert "leaving out 4 input(s) that are no photo or video: 3 subtitle files, 1 text file" in err, err
    assert cli.main(["run", str(dji / "DJI_0001.SRT")]) == 2
    _one_error(capsys.readouterr().err, "DJI_0001.SRT is a subtitle file (SubRip; a DJI drone writes its flight "
                                        "data as one beside each video), not a photo or video",
               f"give the video it belongs to: {dji / 'DJI_0001.MP4'}")
