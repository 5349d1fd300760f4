"""--depth-format grey16 (output.depth_format): the refined disparity as 16-bit grey data, round(d * 65535), in a
PNG or TIFF for a photo and lossless FFV1 in .mkv for a video; the types that cannot hold it refused before the run."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kernels.backend import to_host
from media import make_video
from test_cli import assert_one_clear_line, depthcam


def _photo(path: Path) -> Path:
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    return path


def _expected(disparity: np.ndarray) -> np.ndarray:
    """round(d * 65535) per pixel, as Python rounds a float (the specification, not the sink's own code)."""
    values = [round(float(d) * 65535) for d in np.asarray(disparity, np.float64).ravel()]
    return np.array(values, np.int64).reshape(disparity.shape)


@pytest.fixture
def depths_seen(monkeypatch) -> list[np.ndarray]:
    """The refined disparity of each frame the depth file was written from, as the run produced it."""
    import stream.sinks as sinks

    seen: list[np.ndarray] = []
    real = sinks.depth_picture

    def spy(depth_format: str):
        inner = real(depth_format)

        def picture(frame):
            seen.append(np.array(to_host(frame.refined)))
            return inner(frame)
        return picture

    monkeypatch.setattr(sinks, "depth_picture", spy)
    return seen


def test_a_photo_s_grey16_depth_is_the_run_s_disparity_times_65535(shared_models, tmp_path, depths_seen):
    from stream import cli

    photo = _photo(tmp_path / "photo.png")
    for name in ("depth.png", "depth.tif"):
        depths_seen.clear()
        assert cli.main(["run", str(photo), "-o", str(tmp_path / "out.png"), "--save-depth", str(tmp_path / name),
                         "--depth-format", "grey16", "--no-progress"]) == 0
        written = cv2.imread(str(tmp_path / name), cv2.IMREAD_UNCHANGED)
        assert written.dtype == np.uint16 and written.shape == (48, 64), name
        assert len(depths_seen) == 1
        np.testing.assert_array_equal(written.astype(np.int64), _expected(depths_seen[0]))
        assert written.max() > written.min()  # a depth, not a flat picture


def test_the_default_depth_is_still_the_colour_map(shared_models, tmp_path, depths_seen):
    from stream import cli
    from stream.config import load_config
    from stream.sinks import colourise

    assert load_config(None).output.depth_format == "colour"
    photo = _photo(tmp_path / "photo.png")
    assert cli.main(["run", str(photo), "-o", str(tmp_path / "out.png"), "--save-depth", str(tmp_path / "depth.png"),
                     "--no-progress"]) == 0
    written = cv2.imread(str(tmp_path / "depth.png"), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint8 and written.shape == (48, 64, 3)
    np.testing.assert_array_equal(written, colourise(depths_seen[0]))


def test_a_video_s_grey16_depth_is_lossless_16_bit_grey_in_mkv(shared_models, tmp_path, depths_seen):
    import av

    from stream import cli

    clip = make_video(tmp_path / "clip.mp4", frames=6, size=(66, 50))
    assert cli.main(["run", str(clip), "-o", "null", "--save-depth", str(tmp_path / "depth.mkv"),
                     "--depth-format", "grey16", "--no-progress"]) == 0
    with av.open(str(tmp_path / "depth.mkv")) as container:
        assert container.streams.video[0].codec_context.name == "ffv1"
        frames = [frame for frame in container.decode(video=0)]
    assert len(frames) == len(depths_seen) == 6
    for frame, disparity in zip(frames, depths_seen):
        assert frame.format.name == "gray16le"
        np.testing.assert_array_equal(frame.to_ndarray().astype(np.int64), _expected(disparity))


@pytest.mark.parametrize("name, needles", [("depth.jpg", (".jpg holds no 16-bit grey", ".png or .tif")),
                                           ("depth.webp", (".webp holds no 16-bit grey", ".png or .tif"))])
def test_a_photo_s_grey16_depth_in_a_type_without_16_bits_is_refused_before_the_run(tmp_path, name, needles):
    photo = _photo(tmp_path / "photo.png")
    result = depthcam("run", str(photo), "-o", str(tmp_path / "out.png"), "--save-depth", str(tmp_path / name),
                      "--depth-format", "grey16", "--no-progress")
    assert result.returncode == 2
    assert_one_clear_line(result, *needles)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["photo.png"]


def test_a_video_s_grey16_depth_in_mp4_is_refused_naming_mkv(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", frames=2)
    result = depthcam("run", str(clip), "-o", str(tmp_path / "out.mp4"), "--save-depth", str(tmp_path / "depth.mp4"),
                      "--depth-format", "grey16", "--no-progress")
    assert result.returncode == 2
    assert_one_clear_line(result, ".mp4 holds no 16-bit grey video", "depth.mkv")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clip.mp4"]


def test_a_config_s_depth_format_is_validated_and_taken(tmp_path):
    config = tmp_path / "grey.yaml"
    config.write_text("output:\n  depth_format: gray16\n")
    result = depthcam("run", str(_photo(tmp_path / "photo.png")), "--config", str(config), "--no-progress")
    assert result.returncode == 2
    assert "output.depth_format must be one of colour, grey16" in result.stderr and "Traceback" not in result.stderr
    config.write_text("output:\n  depth_format: grey16\n  save_depth: depth.jpg\n")
    assert_one_clear_line(depthcam("run", str(tmp_path / "photo.png"), "--config", str(config), "--no-progress"),
                          ".jpg holds no 16-bit grey")


def test_a_folder_gets_a_grey16_depth_in_a_type_that_holds_it(tmp_path):
    from stream.cli import _into_folder

    photo, clip = _photo(tmp_path / "shot.png"), make_video(tmp_path / "clip.mp4", frames=2)
    folder = str(tmp_path / "depths") + "/"
    assert _into_folder(str(photo), "--save-depth", folder, "grey16") == str(tmp_path / "depths" / "shot_depth.png")
    assert _into_folder(str(clip), "--save-depth", folder, "grey16") == str(tmp_path / "depths" / "clip_depth.mkv")
    assert _into_folder(str(clip), "--save-depth", folder) == str(tmp_path / "depths" / "clip_depth.mp4")


def test_the_help_names_the_depth_format_and_its_values():
    result = depthcam("run", "--help")
    assert "--depth-format {colour,grey16}" in result.stdout
    assert "65535" in " ".join(result.stdout.split())


def test_an_animation_s_grey16_depth_as_a_picture_is_refused_naming_mkv(shared_models, tmp_path):
    from PIL import Image

    pictures = [Image.fromarray(np.random.default_rng(seed).integers(0, 256, (40, 56, 3), dtype=np.uint8))
                for seed in range(3)]
    pictures[0].save(tmp_path / "anim.gif", save_all=True, append_images=pictures[1:], duration=100, loop=0)
    result = depthcam("run", str(tmp_path / "anim.gif"), "-o", str(tmp_path / "out.gif"), "--save-depth",
                      str(tmp_path / "depth.png"), "--depth-format", "grey16", "--no-progress")
    assert result.returncode == 2
    assert_one_clear_line(result, "16-bit grey depth goes into a video", "depth.mkv")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["anim.gif"]


def test_a_grey16_depth_video_is_ffv1_whatever_codec_the_portrait_asks(shared_models, tmp_path):
    """--codec mpeg4 (for out.avi) refused the grey16 depth.mkv as if it were MPEG-4 too; the depth is FFV1."""
    import av

    clip = make_video(tmp_path / "clip.mp4", frames=3)
    result = depthcam("run", str(clip), "-o", str(tmp_path / "out.avi"), "--codec", "mpeg4", "--save-depth",
                      str(tmp_path / "depth.mkv"), "--depth-format", "grey16", "--no-progress")
    assert result.returncode == 0, result.stderr
    with av.open(str(tmp_path / "depth.mkv")) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.format.name) == ("ffv1", "gray16le")
