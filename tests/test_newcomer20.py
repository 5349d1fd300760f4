"""A newcomer following the manual: what the README and docs/*.md say, as depthcam really does it."""
import re
from pathlib import Path

import pytest
from PIL import Image

from test_cli import assert_one_clear_line, depthcam
from test_readme import _commands

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _gif(path: Path, durations_ms: list[int]) -> Path:
    """An opaque animated GIF (FFmpeg reads it as a video), its pictures held as long as given."""
    pictures = [Image.new("RGB", (64, 48), (40 * index, 90, 200 - 40 * index)) for index in range(len(durations_ms))]
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=durations_ms, loop=0)
    return path


@pytest.mark.parametrize("flag, value", [("--start", "00:00:00:02"), ("--duration", "00:00:00:01")])
def test_an_animation_takes_seconds_only_also_an_opaque_gif(tmp_path, flag, value):
    """docs/video-files.md: "A camera or an animation has no rate to count at: they take seconds only." An opaque GIF
    (FFmpeg's, not Pillow's) counted the timecode at the rate FFmpeg guessed (10 fps here), so frame 2 was 0.2 s,
    inside the first picture of 0.5 s, not the third picture."""
    gif = _gif(tmp_path / "anim.gif", [500, 100, 100, 100])
    assert_one_clear_line(depthcam("run", str(gif), "-o", "null", flag, value),
                          flag, "is a timecode (HH:MM:SS:FF)", "seconds or [HH:]MM:SS.s")


def test_an_opaque_gif_still_takes_a_part_in_seconds(shared_models, tmp_path):
    gif = _gif(tmp_path / "anim.gif", [500, 100, 100, 100])
    ran = depthcam("run", str(gif), "-o", "null", "--start", "0.55", "--no-progress")
    assert ran.returncode == 0, ran.stderr
    assert "wrote 3 frames" in ran.stderr


def test_the_readme_s_command_line_names_every_command_of_depthcam_help():
    block = README.read_text().split("## Command line", 1)[1].split("```")[1]
    named = set(re.findall(r"^depthcam (\w+)", block, flags=re.M))
    assert named == set(_commands())


def test_every_reference_page_opens_with_what_it_covers():
    """Each docs page's first paragraph, under its title, says what the page covers (not only where the README is)."""
    for page in sorted((ROOT / "docs").glob("*.md")):
        text = page.read_text()
        assert text.startswith("# "), page.name
        first = text.split("\n\n", 2)[1]
        assert not first.startswith(("#", "```", "The [README]", "|")), page.name
        assert re.search(r"[.:]", first), page.name


def test_a_quicktime_animation_into_mov_is_not_told_to_use_the_prores_it_already_gets(shared_models, tmp_path,
                                                                                           capsys):
    """docs/video-files.md: under `auto` a QuickTime Animation input written to .mov or .mkv stays ProRes. Its run
    line said `RGB made 4:2:2 in a video output (--codec prores keeps it, ...)`, advice that changes nothing: the
    output was ProRes already, whose 4:2:2 is the very loss named."""
    import av
    import numpy as np

    from stream import cli

    path = tmp_path / "animation.mov"
    with av.open(str(path), "w") as container:
        video = container.add_stream("qtrle", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "rgb24"
        for index in range(3):
            picture = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * index, np.uint8), format="rgb24")
            for packet in video.encode(picture):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    out = tmp_path / "out.mov"
    assert cli.main(["run", str(path), "-o", str(out), "--refine", "off", "--no-progress"]) == 0
    line = next(line for line in capsys.readouterr().err.splitlines() if "RGB made 4:2:2" in line)
    assert "--codec prores" not in line, line
    with av.open(str(out)) as written:
        assert written.streams.video[0].codec_context.name == "prores"
