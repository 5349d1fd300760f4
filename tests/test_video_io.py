"""Video files in and out: frame count, frame rate and sound survive a run."""

import pytest

from media import make_video, probe
from stream.errors import UserError
from stream.sources import open_source
from stream.video_writer import VideoWriter


def _copy(source_path, out_path):
    source = open_source(str(source_path))
    writer = VideoWriter(out_path, source.width, source.height, source.fps, source.audio_path)
    for frame in source.frames():
        writer.write(frame.image, frame.pts_seconds)
    writer.close()
    source.close()


def test_writer_keeps_frames_rate_and_copies_aac_audio(tmp_path):
    src = make_video(tmp_path / "in.mp4", frames=30, fps=25)
    _copy(src, tmp_path / "out.mp4")
    before, after = probe(src), probe(tmp_path / "out.mp4")
    assert after["frames"] == before["frames"] == 30
    assert after["fps"] == pytest.approx(25.0)
    assert after["audio_codec"] == "aac"
    assert after["audio_seconds"] == pytest.approx(before["audio_seconds"], abs=0.05)


def test_writer_transcodes_audio_the_container_cannot_hold(tmp_path):
    src = make_video(tmp_path / "in.mkv", frames=20, fps=20, audio_codec="pcm_s16le")
    _copy(src, tmp_path / "out.mp4")
    after = probe(tmp_path / "out.mp4")
    assert after["frames"] == 20
    assert after["audio_codec"] == "aac"
    assert after["audio_seconds"] == pytest.approx(1.0, abs=0.1)


def test_odd_frame_sizes_are_padded_to_even(tmp_path):
    import numpy as np

    writer = VideoWriter(tmp_path / "odd.mp4", 33, 21, 10)
    for _ in range(3):
        writer.write(np.zeros((21, 33, 3), np.uint8))
    writer.close()
    assert probe(tmp_path / "odd.mp4")["frames"] == 3


def test_unknown_output_type_is_refused(tmp_path):
    with pytest.raises(UserError, match="unknown video type"):
        VideoWriter(tmp_path / "x.xyz", 32, 32, 10)


def test_video_source_reports_size_rate_and_count(tmp_path):
    src = open_source(str(make_video(tmp_path / "in.mp4", frames=12, fps=12, size=(96, 64))))
    assert (src.width, src.height, src.fps, src.frame_count) == (96, 64, 12.0, 12)
    assert src.audio_path is not None and not src.live
    frames = list(src.frames())
    assert [f.index for f in frames] == list(range(12))
    assert frames[0].image.shape == (64, 96, 3)
    src.close()


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_a_phone_video_is_turned_upright_and_written_upright(tmp_path, rotation):
    import numpy as np

    from stream.synthetic import SyntheticPortrait, SyntheticScene

    upright_size = (96, 128)  # a portrait video, stored turned (landscape for 90 and 270)
    path = make_video(tmp_path / "phone.mp4", frames=6, fps=12, size=upright_size, rotation=rotation)
    stored = probe(path)
    assert stored["rotation"] == rotation and (stored["width"], stored["height"]) != (0, 0)
    source = open_source(str(path))
    assert (source.width, source.height) == upright_size and "upright" in source.description
    first = next(source.frames()).image
    truth, _ = SyntheticPortrait(SyntheticScene(*upright_size)).render(0)
    assert first.shape == truth.shape
    error = np.abs(first.astype(float) - truth).mean()
    wrong_turns = [np.abs(np.rot90(first, k).astype(float) - truth).mean() for k in (2,)]  # the same shape
    assert error < 6 and all(error * 4 < wrong for wrong in wrong_turns)  # H.264 loss vs a wrong turn
    source.close()
    out = tmp_path / "out.mp4"
    _copy(path, out)
    written = probe(out)
    assert (written["width"], written["height"], written["rotation"]) == (*upright_size, 0)
    assert written["frames"] == 6
