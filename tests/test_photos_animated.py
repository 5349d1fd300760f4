"""Animated pictures (GIF, APNG, animated WebP): every picture processed at its own time, and an animation out of the
input's type by default, its durations and times played kept; or a video."""
from pathlib import Path

import numpy as np
import pytest

from stream import animations
from stream.animation_writer import write_animation
from stream.animations import animation_metadata
from stream.errors import UserError
from stream.images import PhotoMetadata

from media import timeline

DURATIONS_MS = [100, 200, 100, 100, 500]


def _animation(path: Path, loop: int | None = 3, durations=DURATIONS_MS) -> Path:
    """Five pictures 48x32, each its own grey and its own duration; loop as Pillow's option (None: left out)."""
    from PIL import Image

    pictures = [Image.fromarray(np.full((32, 48, 3), 40 * i, np.uint8)) for i in range(len(durations))]
    options = {} if loop is None else {"loop": loop}
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=durations, **options)
    return path


def _read(path: Path) -> tuple[str, int, list[float], int | None]:
    """Format, pictures, their durations (ms) and Pillow's loop of an animation file."""
    from PIL import Image

    with Image.open(path) as image:
        durations = []
        for index in range(image.n_frames):
            image.seek(index)
            image.load()
            durations.append(image.info.get("duration"))
        return image.format, image.n_frames, durations, image.info.get("loop")


@pytest.mark.parametrize("name", ["anim.gif", "anim.png", "anim.webp"])
def test_an_animation_gives_an_animation_of_its_type_with_its_timing_and_loop(tmp_path, shared_models,
                                                                             name):
    """An animated WebP gave its first picture only (as NAME_portrait.png), a GIF or APNG a video: each gives an
    animation of its own type beside it, every picture for its own time, played as many times; its depth too."""
    from stream.cli import main

    source = _animation(tmp_path / name)
    assert main(["run", str(source), "--save-depth", f"{tmp_path}/depths/", "--no-progress"]) == 0
    suffix = Path(name).suffix
    fmt, pictures, durations, loop = _read(tmp_path / f"anim_portrait{suffix}")
    assert (fmt, pictures, durations, loop) == (_read(source)[0], 5, DURATIONS_MS, 3)
    assert _read(tmp_path / "depths" / f"anim_depth{suffix}")[1:] == (5, DURATIONS_MS, 3)


def test_an_animated_webp_is_read_picture_by_picture_at_its_own_times(tmp_path):
    source = animations.AnimationSource(_animation(tmp_path / "anim.webp"))
    frames = list(source.frames())
    assert source.frame_count == 5 and source.fps == pytest.approx(10)  # its pictures' rate, not the average
    assert [int(frame.image.mean()) for frame in frames] == [0, 40, 80, 120, 160]
    assert [frame.pts_seconds for frame in frames] == pytest.approx([0, 0.1, 0.3, 0.4, 0.5])
    assert [frame.extra["duration_seconds"] for frame in frames] == pytest.approx([0.1, 0.2, 0.1, 0.1, 0.5])
    assert source.audio_path is None and source.truncation_warning() is None
    assert not animations.is_still_image(tmp_path / "anim.webp")


def test_a_part_of_an_animated_webp_starts_with_the_picture_on_screen_then(tmp_path):
    """--start/--duration were refused for an animated WebP: the part is taken as a video's is."""
    source = animations.AnimationSource(_animation(tmp_path / "anim.webp"))  # 100, 200, 100, 100, 500 ms
    source.set_range(0.15, 0.3)
    frames = list(source.frames())
    assert source.frame_count == len(frames) == 3
    assert [int(frame.image.mean()) for frame in frames] == [40, 80, 120]
    assert [frame.index for frame in frames] == [0, 1, 2]
    assert [frame.pts_seconds for frame in frames] == pytest.approx([0, 0.15, 0.25])
    assert [frame.extra["duration_seconds"] for frame in frames] == pytest.approx([0.15, 0.1, 0.05])
    assert source.description.endswith(" for 0.3 s")


def test_a_start_of_an_animated_webp_runs_to_its_end_and_past_it_is_refused(tmp_path):
    source = animations.AnimationSource(_animation(tmp_path / "anim.webp"))
    source.set_range(0.5, None)  # the last picture, from its start
    (frame,) = source.frames()
    assert (frame.pts_seconds, frame.extra["duration_seconds"]) == pytest.approx((0, 0.5))
    with pytest.raises(UserError, match=r"^--start 1.0 s is past the end of anim.webp \(1.0 s long\)"):
        animations.AnimationSource(tmp_path / "anim.webp").set_range(1.0, None)


def test_an_animated_webp_to_a_video_holds_each_picture_its_own_time(tmp_path, shared_models):
    from stream.cli import main

    source = _animation(tmp_path / "anim.webp")
    assert main(["run", str(source), "-o", str(tmp_path / "out.mp4"), "--no-progress"]) == 0
    times = timeline(tmp_path / "out.mp4")
    assert times["video"] == pytest.approx([0, 0.1, 0.3, 0.4, 0.5], abs=0.002)
    assert times.get("audio_end") is None  # an animation has no sound


def test_a_still_image_output_of_an_animation_names_the_types_that_hold_it(tmp_path):
    from stream.app import check_outputs
    from stream.config import load_config
    from stream.sources import open_source

    source = _animation(tmp_path / "anim.webp")
    opened = open_source(str(source))
    with pytest.raises(UserError, match=r"out.jpg is a still image but the input is an animation; give .gif, .png "
                                        r"or .webp .* \(e.g. out.mp4\)"):
        check_outputs(load_config(None), str(source), str(tmp_path / "out.jpg"), opened)
    check_outputs(load_config(None), str(source), str(tmp_path / "out.gif"), opened)
    with pytest.raises(UserError, match="is the input file"):  # an animated WebP's output written over it
        check_outputs(load_config(None), str(source), str(source), opened)


@pytest.mark.parametrize("loop, suffix, plays, written", [
    (None, ".webp", 1, 1),  # a GIF without a loop count plays once; WebP counts the plays
    (2, ".png", 3, 3),  # a GIF's loop count is of repeats: 2 is three plays
    (0, ".webp", 0, 0),  # for ever
    (None, ".gif", 1, None),  # once: no loop count written
])
def test_the_times_an_animation_plays_are_kept_across_types(tmp_path, loop, suffix, plays, written):
    metadata = animation_metadata(_animation(tmp_path / "in.gif", loop=loop))
    assert metadata.plays == plays
    pictures = [np.full((8, 8, 3), 50 * i, np.uint8) for i in range(3)]
    assert write_animation(tmp_path / f"out{suffix}", pictures, [0.1, 0.2, 0.3], metadata)
    assert _read(tmp_path / f"out{suffix}")[1:] == (3, [100, 200, 300], written)
    assert animation_metadata(tmp_path / f"out{suffix}").plays == plays


def test_a_gif_of_one_picture_and_a_photo_get_the_names_they_had(tmp_path):
    from stream.app import depth_name, portrait_name

    _animation(tmp_path / "one.gif", durations=[100])
    # a photo now (its callers say image=True), keeping the name it had
    assert portrait_name(str(tmp_path / "one.gif"), image=True).endswith("one_portrait.gif")
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "still.webp")
    assert portrait_name(str(tmp_path / "still.webp"), image=True).endswith("still_portrait.png")
    assert depth_name(str(tmp_path / "clip.mp4")) == "clip_depth.mp4"
    assert PhotoMetadata().plays is None


def test_an_animated_webp_is_opened_as_an_animation_and_watched_at_its_own_pace(tmp_path):
    """open_source hands an animated WebP to Pillow (FFmpeg decodes none: its first picture was all there was), and a
    window shows it at its pictures' times, as a video, not as fast as it renders."""
    from stream.app import plays_in_real_time
    from stream.sources import open_source

    source = open_source(str(_animation(tmp_path / "anim.webp")))
    assert isinstance(source, animations.AnimationSource) and source.frame_count == len(DURATIONS_MS)
    assert plays_in_real_time("window", source) and not plays_in_real_time("out.webp", source)


def test_a_60_fps_webp_keeps_its_16_ms_pictures_and_a_0_ms_one_is_shown_as_browsers_show_it(tmp_path):
    """A WebP made from a video (16 ms a picture) played 6 times slower: every picture under 20 ms was shown 100 ms."""
    frames = list(animations.AnimationSource(_animation(tmp_path / "a60.webp", durations=[16, 16, 17, 16])).frames())
    assert [frame.extra["duration_seconds"] for frame in frames] == pytest.approx([0.016, 0.016, 0.017, 0.016])
    frames = list(animations.AnimationSource(_animation(tmp_path / "a0.webp", durations=[0, 10, 30])).frames())
    assert [frame.extra["duration_seconds"] for frame in frames] == pytest.approx([0.1, 0.1, 0.03])


def test_a_60_fps_animation_made_a_gif_keeps_its_length_in_delays_browsers_honour(tmp_path):
    """16 ms pictures into a GIF got 10 ms delays (1 hundredth), which browsers show as 100 ms: 6 times slower."""
    pictures = [np.full((8, 8, 3), 30 * i, np.uint8) for i in range(6)]
    assert write_animation(tmp_path / "o.gif", pictures, [1 / 60] * 6)
    _, count, durations, _ = _read(tmp_path / "o.gif")
    assert count == 6 and all(ms >= 20 and ms % 10 == 0 for ms in durations)
    assert sum(durations) == pytest.approx(100, abs=20)  # 6 x 16.7 ms, whole hundredths of at least 2


def _live_pillow_pictures() -> int:
    import gc

    from PIL import Image

    gc.collect()
    # type(), not isinstance: a dead weak-reference proxy that an earlier test left among the objects raises there
    return sum(issubclass(type(thing), Image.Image) for thing in gc.get_objects())


@pytest.mark.parametrize("suffix", [".gif", ".png", ".webp"])
def test_an_animation_output_is_written_as_its_pictures_come_none_kept(tmp_path, suffix):
    """The sink kept every picture until the end (a 4K animated WebP of 600 pictures: ~15 GB): each is encoded into
    the file beside the target as it comes, none held; the file is complete, under its name, once closed."""
    from stream.frame import Frame
    from stream.sinks import AnimationSink

    sink = AnimationSink(tmp_path / f"out{suffix}", lambda frame: frame.image, 10.0, PhotoMetadata(plays=0))
    before, sizes = _live_pillow_pictures(), []
    for index in range(8):
        picture = np.random.default_rng(index).integers(0, 256, (48, 64, 3), np.uint8)
        sink.write(Frame(index=index, capture_ns=0, image=picture, pts_seconds=index / 10))
        assert _live_pillow_pictures() <= before  # none kept (Pillow's copies: one a picture, before)
        sizes.append(next(tmp_path.glob(".*.part")).stat().st_size)
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)  # each picture written as it came
    assert not (tmp_path / f"out{suffix}").exists()
    sink.close()
    assert _read(tmp_path / f"out{suffix}")[1:3] == (8, [100] * 8)
    assert [path.name for path in tmp_path.iterdir()] == [f"out{suffix}"]  # no file left beside it


def test_an_animation_the_encoder_refuses_leaves_no_file_and_says_so(tmp_path):
    from stream.frame import Frame
    from stream.sinks import AnimationSink

    sink = AnimationSink(tmp_path / "out.webp", lambda frame: frame.image, 10.0, PhotoMetadata(plays=0))
    sink.write(Frame(index=0, capture_ns=0, image=np.zeros((8, 8, 3), np.uint8)))
    with pytest.raises(UserError, match=r"cannot write animation .*out.webp \(picture 2, 9x8\): the encoder refused "
                                        r"it; try .mp4"):
        sink.write(Frame(index=1, capture_ns=0, image=np.zeros((8, 9, 3), np.uint8)))
    sink.close(False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, opens", [("anim.gif", 1), ("anim.webp", 2)])
def test_an_animation_s_headers_are_read_once_at_start_up(tmp_path, monkeypatch, name, opens):
    """Pillow opened an animation's headers five times before its first picture (its output's and depth's names,
    the output checks twice, what the output keeps): once now; an animated WebP once more, to read its pictures'
    durations. A file changed since is read again."""
    from PIL import Image

    from stream.app import check_outputs, depth_name, picture_metadata, portrait_name
    from stream.config import load_config
    from stream.sources import open_source

    source_path = _animation(tmp_path / name)
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda path, *args, **kw: opened.append(path) or real_open(path, *args, **kw))
    config = load_config(None)
    config.output.save_depth = str(tmp_path / depth_name(str(source_path)))
    source = open_source(str(source_path))
    output = portrait_name(str(source_path), image=False)
    check_outputs(config, str(source_path), output, source)
    assert picture_metadata(source, str(source_path)).plays == (4 if name.endswith(".gif") else 3)  # repeats
    source.close()
    assert len(opened) == opens and output.endswith(f"anim_portrait{Path(name).suffix}")
    _animation(source_path, loop=5, durations=[100, 100])  # written again: other headers
    assert animation_metadata(source_path).plays == (6 if name.endswith(".gif") else 5)


@pytest.mark.parametrize("suffix", [".png", ".webp"])
def test_an_animation_output_keeps_the_colour_profile(tmp_path, suffix):
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()  # any profile: its bytes kept
    pictures = [np.full((8, 8, 3), 50 * i, np.uint8) for i in range(2)]
    assert write_animation(tmp_path / f"out{suffix}", pictures, [0.1, 0.1], PhotoMetadata(profile, plays=0))
    metadata = animation_metadata(tmp_path / f"out{suffix}")
    assert metadata.icc_profile == profile and metadata.plays == 0
