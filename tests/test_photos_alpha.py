"""Transparent photos and animations (PNG/WebP with alpha, a GIF with a transparent colour, an APNG with alpha): the
render is made on white, and every output that holds transparency keeps the input's alpha, unchanged (not blurred:
the transparent pixels have no depth, and the cut-out's outline is the user's), picture by picture."""
from pathlib import Path

import numpy as np
import pytest

from stream.images import PhotoMetadata
from stream.sinks import AnimationSink
from stream.frame import Frame

WIDTH, HEIGHT, PICTURES = 48, 32, 3


def _alpha(index: int) -> np.ndarray:
    """Picture `index`'s alpha: opaque on the left, a half-transparent band, then transparent; the band moves."""
    alpha = np.full((HEIGHT, WIDTH), 255, np.uint8)
    alpha[:, 16 + 4 * index:24 + 4 * index] = 128
    alpha[:, 24 + 4 * index:] = 0
    return alpha


def _pictures() -> list:
    from PIL import Image

    pictures = []
    for index in range(PICTURES):
        rgba = np.zeros((HEIGHT, WIDTH, 4), np.uint8)
        rgba[..., :3] = (200, 60 + 40 * index, 30)
        rgba[HEIGHT // 2:, 40:, :3] = (0, 0, 255)  # what the transparent pixels hide: blue
        rgba[..., 3] = _alpha(index)
        pictures.append(Image.fromarray(rgba))
    return pictures


def _transparent_animation(path: Path) -> Path:
    pictures = _pictures()
    if path.suffix == ".gif":  # a transparent colour: under half opaque is transparent
        pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=100, loop=0, disposal=2)
    else:
        options = {"lossless": True} if path.suffix == ".webp" else {}
        pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=100, loop=0, **options)
    return path


def _alphas(path: Path) -> list[np.ndarray]:
    from PIL import Image

    with Image.open(path) as image:
        alphas = []
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            alphas.append(np.asarray(image.convert("RGBA").getchannel("A")).astype(int))
        return alphas


def _expected(index: int, suffix: str) -> np.ndarray:
    alpha = _alpha(index).astype(int)
    return np.where(alpha < 128, 0, 255) if suffix == ".gif" else alpha  # a GIF's pixel is transparent or not


@pytest.mark.parametrize("suffix", [".gif", ".apng"])
def test_a_transparent_photo_made_a_gif_or_apng_keeps_its_transparency(tmp_path, shared_models, suffix):
    """A cut-out sticker made a GIF or APNG (written as animations of one picture) came out laid on white."""
    from stream.cli import main

    _pictures()[0].save(tmp_path / "sticker.png")
    out = tmp_path / f"out{suffix}"
    assert main(["run", str(tmp_path / "sticker.png"), "-o", str(out), "--no-progress"]) == 0
    (alpha,) = _alphas(out)
    np.testing.assert_array_equal(alpha, _expected(0, ".gif" if suffix == ".gif" else ".png"))


@pytest.mark.parametrize("name", ["anim.gif", "anim.png", "anim.webp"])
def test_a_transparent_animation_keeps_each_picture_s_transparency(tmp_path, shared_models, name):
    """A transparent GIF, APNG or animated WebP gave an opaque animation (the APNG's transparent parts the colours
    they hid); each picture now keeps its own alpha, in every animation type; the depth animation stays opaque."""
    from stream.cli import main

    source = _transparent_animation(tmp_path / name)
    for suffix in (".gif", ".png", ".webp"):
        out = tmp_path / f"out{suffix}"
        depth = ["--save-depth", str(tmp_path / f"depth{suffix}")] if suffix == Path(name).suffix else []
        assert main(["run", str(source), "-o", str(out), "--no-progress", *depth]) == 0
        alphas = _alphas(out)
        assert len(alphas) == PICTURES
        # a GIF input holds transparent-or-not only; a GIF output too
        kind = ".gif" if ".gif" in (suffix, Path(name).suffix) else suffix
        for index, alpha in enumerate(alphas):
            np.testing.assert_array_equal(alpha, _expected(index, kind), err_msg=f"{name} -> {suffix}, {index}")
        if depth:
            assert all((alpha == 255).all() for alpha in _alphas(tmp_path / f"depth{suffix}"))


@pytest.mark.parametrize("name", ["anim.gif", "anim.png"])
def test_a_transparent_gif_or_apng_is_rendered_on_its_own_colours(tmp_path, name):
    """FFmpeg decoded them, and the render saw what the transparent pixels hide (here blue, often black); then white,
    which the blur gathered into the edge: the hidden pixels hold the nearest visible one's colour."""
    from stream.sources import open_source

    source = open_source(str(_transparent_animation(tmp_path / name)))
    frames = list(source.frames())
    assert len(frames) == PICTURES
    for index, frame in enumerate(frames):
        transparent = _alpha(index) == 0
        assert (frame.image[transparent] == frame.image[0, 0]).all()
        np.testing.assert_array_equal(frame.extra["alpha"].astype(int), _expected(index, Path(name).suffix))
    source.close()


RIM = (14, 58, 168)  # BGR: the user's screenshot's pixel by its edge, turned to (147, 154, 201)


def _cut_out() -> tuple[np.ndarray, np.ndarray]:
    """A dark orange card with rounded corners on a transparent page, its edge antialiased (straight colours)."""
    import cv2

    alpha = np.zeros((96, 128), np.uint8)
    cv2.rectangle(alpha, (24, 16), (104, 80), 255, -1, cv2.LINE_AA)
    alpha = cv2.GaussianBlur(alpha, (3, 3), 0)
    picture = np.zeros((96, 128, 3), np.uint8)
    picture[:] = RIM
    picture[alpha == 0] = (255, 0, 0)  # what the transparent pixels hide
    return picture, alpha


def _rim(alpha: np.ndarray) -> np.ndarray:
    """The opaque pixels within 3 px of the alpha's edge."""
    import cv2

    return (alpha == 255) & (cv2.dilate((alpha < 255).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0)


@pytest.mark.parametrize("focus", [["--focus-point", "64,48"], ["--focus", "0", "--blur", "20"]])
def test_a_cut_out_s_edge_keeps_its_colour_under_the_blur(tmp_path, shared_models, focus):
    """The render was made on white, and the blur gathered it into the opaque pixels by the edge: a light rim 5-10
    px wide (the user's (168,58,14) became (201,154,147)), in focus or not."""
    import cv2

    from stream.cli import main

    picture, alpha = _cut_out()
    cv2.imwrite(str(tmp_path / "card.png"), np.dstack([picture, alpha]))
    out = tmp_path / "out.png"
    assert main(["run", str(tmp_path / "card.png"), "-o", str(out), "--no-progress", *focus]) == 0
    written = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(written[..., 3], alpha)
    difference = np.abs(written[..., :3].astype(int) - picture)[_rim(alpha)]
    assert difference.mean() < 2 and difference.max() <= 8


def test_a_cut_out_made_a_jpeg_is_laid_on_white(tmp_path, shared_models):
    """A JPEG holds no alpha: the page a viewer would show (white) is where the picture is transparent, the fill
    behind it not."""
    import cv2

    from stream.cli import main

    picture, alpha = _cut_out()
    cv2.imwrite(str(tmp_path / "card.png"), np.dstack([picture, alpha]))
    assert main(["run", str(tmp_path / "card.png"), "-o", str(tmp_path / "out.jpg"), "--no-progress"]) == 0
    written = cv2.imread(str(tmp_path / "out.jpg")).astype(int)
    assert (written[:4, :4] >= 250).all()  # the transparent corner: white
    assert np.abs(written[48, 64] - RIM).max() <= 8  # the card


def test_the_hidden_pixels_hold_the_nearest_visible_colour():
    from stream.images import filled_behind

    picture = np.zeros((3, 4, 3), np.uint8)
    picture[:, 0], picture[:, 3] = (10, 20, 30), (40, 50, 60)
    alpha = np.zeros((3, 4), np.uint8)
    alpha[:, 0], alpha[:, 3] = 255, 128
    filled = filled_behind(picture, alpha)
    assert (filled[:, 1] == (10, 20, 30)).all() and (filled[:, 2] == (40, 50, 60)).all()
    assert (filled_behind(picture, np.zeros((3, 4), np.uint8)) == 255).all()  # nothing visible: a page


def test_an_animation_side_by_side_or_of_an_opaque_input_is_opaque(tmp_path):
    """The alpha is the input's: a picture three times as wide (input | render | depth) does not take it."""
    picture = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)
    wide = AnimationSink(tmp_path / "wide.png", lambda frame: np.hstack([frame.image] * 3), 10.0,
                         PhotoMetadata(plays=0))
    plain = AnimationSink(tmp_path / "plain.webp", lambda frame: frame.image, 10.0, PhotoMetadata(plays=0))
    for index in range(2):
        for sink, alpha in ((wide, _alpha(index)), (plain, None)):
            extra = {"alpha": alpha} if alpha is not None else {}
            sink.write(Frame(index=index, capture_ns=0, image=picture.copy(), pts_seconds=index / 10, extra=extra))
    wide.close()
    plain.close()
    assert all((alpha == 255).all() for alpha in _alphas(tmp_path / "wide.png") + _alphas(tmp_path / "plain.webp"))


def test_a_part_of_a_transparent_gif_is_taken_as_a_video_s_is(tmp_path, shared_models):
    """--start/--duration were refused for a transparent GIF (read picture by picture, not by FFmpeg), which they
    had cut while it went through FFmpeg: the part starts with the picture on screen at --start, ends at
    --duration, its times from 0, each picture's alpha kept."""
    from stream.cli import main

    source = _transparent_animation(tmp_path / "anim.gif")  # three pictures of 100 ms
    out = tmp_path / "part.gif"
    assert main(["run", str(source), "-o", str(out), "--start", "0.15", "--duration", "0.1", "--no-progress"]) == 0
    from PIL import Image

    with Image.open(out) as image:
        assert image.n_frames == 2
        durations = []
        for index in range(2):
            image.seek(index)
            durations.append(image.info["duration"])
    assert durations == [50, 50]  # the second picture's last half, the third's first
    np.testing.assert_array_equal(_alphas(out)[0], _expected(1, ".gif"))
    np.testing.assert_array_equal(_alphas(out)[1], _expected(2, ".gif"))


def test_a_start_past_a_transparent_gif_s_end_is_refused_in_one_line(tmp_path):
    from stream.app import build
    from stream.config import load_config
    from stream.errors import UserError

    source = _transparent_animation(tmp_path / "anim.gif")
    with pytest.raises(UserError, match=r"^--start 0.3 s is past the end of anim.gif \(0.3 s long\); give an earlier "
                                        r"start$"):
        build(load_config(None), str(source), str(tmp_path / "out.gif"), clip=(0.3, None))
    with pytest.raises(UserError, match=r"^--duration 0 takes nothing"):
        build(load_config(None), str(source), str(tmp_path / "out.gif"), clip=(0.1, 0.0))


def _turning_transparent(path: Path) -> Path:
    """Two pictures: the first opaque, the second transparent on its right half (cleared before it, disposal 2)."""
    from PIL import Image

    opaque = np.zeros((HEIGHT, WIDTH, 4), np.uint8)
    opaque[..., :3], opaque[..., 3] = (200, 60, 30), 255
    later = opaque.copy()
    later[:, WIDTH // 2:, 3] = 0
    pictures = [Image.fromarray(opaque[..., :3] if path.suffix == ".gif" else opaque), Image.fromarray(later)]
    options = {"disposal": 2} if path.suffix == ".gif" else {}
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=100, loop=0, **options)
    return path


@pytest.mark.parametrize("name", ["late.gif", "late.png"])
def test_an_animation_opaque_at_first_keeps_its_later_transparency(tmp_path, shared_models, name):
    """Its first picture decided: such a GIF went through FFmpeg and came out opaque."""
    from stream.cli import main
    from stream.animations import animation_source

    source = _turning_transparent(tmp_path / name)
    assert animation_source(source) is not None
    out = tmp_path / f"out{Path(name).suffix}"
    assert main(["run", str(source), "-o", str(out), "--no-progress"]) == 0
    first, second = _alphas(out)
    assert (first == 255).all()
    assert (second[:, :WIDTH // 2] == 255).all() and (second[:, WIDTH // 2:] == 0).all()


def test_a_gif_s_transparency_is_read_from_its_blocks_not_any_bytes_alike(tmp_path):
    """A comment that holds a transparent Graphic Control Extension's bytes makes no GIF transparent."""
    from PIL import Image

    from stream.animations import _gif_transparent

    plain = tmp_path / "plain.gif"
    Image.fromarray(np.full((HEIGHT, WIDTH, 3), 90, np.uint8)).save(plain, comment=b"\x21\xf9\x04\x01\x00\x00\x00\x00")
    assert b"\x21\xf9\x04\x01" in plain.read_bytes() and not _gif_transparent(plain)
    assert _gif_transparent(_turning_transparent(tmp_path / "late.gif"))
    assert not _gif_transparent(tmp_path / "none.gif")


def test_a_gif_whose_later_pictures_draw_only_their_changes_is_opaque(tmp_path):
    """Encoders draw a later picture's unchanged pixels in a transparent colour, over the last picture (Pillow's
    did here): that GIF shows no page, and FFmpeg reads it as it did."""
    from PIL import Image

    from stream.animations import _gif_transparent, animation_source

    pictures = [np.full((HEIGHT, WIDTH, 3), 90, np.uint8) for _ in range(3)]
    pictures[1][:8, :8], pictures[2][8:16, 8:16] = 200, 30
    path = tmp_path / "changes.gif"
    Image.fromarray(pictures[0]).save(path, save_all=True, duration=100, loop=0,
                                      append_images=[Image.fromarray(picture) for picture in pictures[1:]])
    flags = [path.read_bytes()[at + 3] for at in range(len(path.read_bytes()) - 3)
             if path.read_bytes()[at:at + 3] == b"\x21\xf9\x04"]
    assert any(flag & 1 for flag in flags)  # a transparent colour in a later picture
    assert not _gif_transparent(path) and animation_source(path) is None


@pytest.mark.parametrize("output", ["out.mp4", "out.png"])
def test_a_cut_out_in_an_output_without_its_alpha_is_laid_on_white(tmp_path, shared_models, output):
    """A video holds no alpha, and side by side the panels take none: the page (white) shows where the input is
    transparent, not the nearest visible colour the render is made on (the card's orange smeared to the edges)."""
    import av
    import cv2

    from stream.cli import main

    picture, alpha = _cut_out()
    cv2.imwrite(str(tmp_path / "card.png"), np.dstack([picture, alpha]))
    args = ["run", str(tmp_path / "card.png"), "-o", str(tmp_path / output), "--no-progress"]
    if output.endswith(".png"):
        args.append("--side-by-side")
    assert main(args) == 0
    if output.endswith(".mp4"):
        with av.open(str(tmp_path / output)) as container:
            panels = [next(container.decode(video=0)).to_ndarray(format="bgr24").astype(int)]
    else:
        written = cv2.imread(str(tmp_path / output), cv2.IMREAD_UNCHANGED).astype(int)
        assert written.shape[2] == 3 or (written[..., 3] == 255).all()
        panels = [written[:, :128, :3], written[:, 128:256, :3]]  # the input, the render
    for panel in panels:
        assert (panel[:6, :6] >= 245).all()  # the transparent corner: the page
        assert np.abs(panel[48, 64] - RIM).max() <= 12  # the card


def test_the_window_shows_a_cut_out_on_white():
    """The window holds no alpha either: its picture is laid on the page."""
    from stream.sinks import compose

    picture, alpha = _cut_out()
    frame = Frame(index=0, capture_ns=0, image=picture, pts_seconds=0.0, extra={"alpha": alpha})
    frame.output = picture.copy()
    assert (compose(frame, False, page=True)[alpha == 0] == 255).all()
    assert (compose(frame, False)[alpha == 0] == (255, 0, 0)).all()  # an image output takes the alpha back itself


def test_a_start_on_a_picture_s_boundary_takes_no_sliver_of_the_one_before(tmp_path):
    """Pictures of 100, 200 and 100 ms: --start 0.3 is the third alone. Summed in seconds, 0.1 + 0.2 came to just
    over 0.3, and the part began with 5.6e-17 s of the second (a flash of it in a GIF, a frame in a video)."""
    from PIL import Image

    from stream.animations import AnimationSource, _timeline
    from stream.errors import UserError

    assert [picture for picture, _, _ in _timeline([100, 200, 100], 0.3, None)] == [2]
    assert _timeline([100, 200, 100], 0.1, 0.2) == [(1, 0.0, 0.2)]
    pictures = []
    for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255)):
        picture = Image.new("RGBA", (32, 24), (0, 0, 0, 0))
        picture.paste(colour + (255,), (4, 4, 28, 20))
        pictures.append(picture)
    path = tmp_path / "a.gif"
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=[100, 200, 100], loop=0, disposal=2)
    source = AnimationSource(path)
    source.set_range(0.3, None)
    frames = list(source.frames())
    assert source.frame_count == len(frames) == 1
    assert tuple(frames[0].image[12, 16]) == (255, 0, 0)  # BGR: the blue picture
    assert frames[0].extra["duration_seconds"] == pytest.approx(0.1)
    with pytest.raises(UserError, match="past the end"):  # a start at the end by float error: no empty part
        AnimationSource(path).set_range(0.4000000000000001, None)
