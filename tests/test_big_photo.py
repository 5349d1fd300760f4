"""A large photo (a phone's 48 megapixels) told stage by stage while it runs, with its threshold lowered here so that
a small photo stands in for it."""
import os
import signal
import threading
import time

import numpy as np
import pytest

import stream.pipeline
from stream.cli import main
from stream.stages import RenderStage

STAGES = ["estimating the depth ...", "refining the depth at 48x64 ...", "rendering the depth of field at 48x64 ..."]


def _phone_photo(path, width=64, height=48):
    """A JPEG stored landscape (width x height) with EXIF orientation 6, as a phone's portrait photo: upright it
    is height x width."""
    from PIL import Image

    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    pixels[:, : width // 2] = (200, 60, 40)  # a subject on one side, texture on the other
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(path, quality=95, exif=exif.tobytes())
    return path


def _lines(capsys) -> list[str]:
    return capsys.readouterr().err.replace("\r", "\n").splitlines()


@pytest.fixture
def large_from_48x64(monkeypatch):
    """Pictures over 2000 pixels count as large (the photo below has 3072)."""
    monkeypatch.setattr(stream.pipeline, "STAGE_LINES_PIXELS", 2000, raising=False)


def test_a_large_photo_says_each_stage_as_it_starts_instead_of_a_bar(shared_models, tmp_path, capsys,
                                                                     large_from_48x64):
    """A 48-megapixel photo showed "0/1" for its two minutes: now a line per stage, then the file's name as it is
    written, and no bar; the output is upright at the photo's size, its EXIF orientation set upright."""
    from PIL import Image

    out = tmp_path / "out.jpg"
    assert main(["run", str(_phone_photo(tmp_path / "IMG_0001.jpg")), "-o", str(out)]) == 0
    lines = _lines(capsys)
    said = [line.removeprefix("depthcam: ") for line in lines if line.endswith(" ...")]
    assert said == [*STAGES, f"writing {out} ..."], lines
    assert not any("frame/s" in line or "0/1" in line for line in lines), lines
    assert lines[-1].startswith(f"depthcam: wrote 1 frame to {out}"), lines
    with Image.open(out) as written:
        assert written.size == (48, 64) and written.getexif().get(0x0112, 1) == 1


def test_a_large_photo_s_depth_file_is_named_as_it_is_written(shared_models, tmp_path, capsys, large_from_48x64):
    out, depth = tmp_path / "out.png", tmp_path / "depth.png"
    assert main(["run", str(_phone_photo(tmp_path / "p.jpg")), "-o", str(out), "--save-depth", str(depth)]) == 0
    said = [line for line in _lines(capsys) if line.startswith("depthcam: writing ")]
    assert len(said) == 1 and {*said[0].removesuffix(" ...").split()[2:]} == {str(out), "and", str(depth)}, said


def test_a_small_photo_keeps_its_bar_and_says_no_stages(shared_models, tmp_path, capsys):
    assert main(["run", str(_phone_photo(tmp_path / "p.jpg")), "-o", str(tmp_path / "out.png")]) == 0
    lines = _lines(capsys)
    assert any("1/1" in line for line in lines) and not any(line.endswith(" ...") for line in lines), lines


def test_no_progress_says_no_stages(shared_models, tmp_path, capsys, large_from_48x64):
    assert main(["run", str(_phone_photo(tmp_path / "p.jpg")), "-o", str(tmp_path / "out.png"),
                 "--no-progress"]) == 0
    assert not any(line.endswith(" ...") for line in _lines(capsys))


def test_a_video_of_large_pictures_keeps_its_bar(shared_models, tmp_path, capsys, large_from_48x64):
    """The lines are for one picture: a video's frames go by on the bar, several stages at a time."""
    from media import make_video

    clip = make_video(tmp_path / "clip.mp4", frames=3, audio_codec=None)
    assert main(["run", str(clip), "-o", str(tmp_path / "out.mp4")]) == 0
    lines = _lines(capsys)
    assert any("3/3" in line for line in lines) and not any(line.endswith(" ...") for line in lines), lines


@pytest.fixture
def sigint_handled():
    """SIGINT with Python's usual handler, whoever started the tests (a background job ignores it)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_during_a_large_photo_s_render_exits_130_and_writes_no_file(shared_models, tmp_path, capsys,
                                                                         monkeypatch, large_from_48x64,
                                                                         sigint_handled):
    """Ctrl-C while the depth of field renders (2 minutes at 48 megapixels): exit 130, one line saying nothing was
    written, no file and no half file beside it."""
    process = RenderStage.process
    rendering = threading.Event()

    def slow_render(self, batch):
        rendering.set()
        time.sleep(3.0)  # a render that takes long (it holds no lock the stop needs)
        return process(self, batch)

    monkeypatch.setattr(RenderStage, "process", slow_render)
    threading.Thread(target=lambda: rendering.wait(60) and os.kill(os.getpid(), signal.SIGINT), daemon=True).start()
    out = tmp_path / "out.png"
    assert main(["run", str(_phone_photo(tmp_path / "p.jpg")), "-o", str(out)]) == 130
    lines = _lines(capsys)
    assert STAGES[-1] in "\n".join(lines) and not any(line.startswith("depthcam: writing") for line in lines)
    assert "depthcam: interrupted after 0 frames; nothing was written" in lines, lines
    assert not any("Traceback" in line for line in lines)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["p.jpg"]
