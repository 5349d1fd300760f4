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
def test_a_transparent_gif_or_apng_is_rendered_on_white_as_a_photo_is(tmp_path, name):
    """FFmpeg decoded them, and the render saw what the transparent pixels hide (here blue, often black)."""
    from stream.sources import open_source

    source = open_source(str(_transparent_animation(tmp_path / name)))
    frames = list(source.frames())
    assert len(frames) == PICTURES
    for index, frame in enumerate(frames):
        transparent = _alpha(index) == 0
        assert (frame.image[transparent] == 255).all()
        np.testing.assert_array_equal(frame.extra["alpha"].astype(int), _expected(index, Path(name).suffix))
    source.close()


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


def test_a_part_of_a_transparent_gif_is_refused_saying_why(tmp_path):
    """A transparent GIF is read as an animated WebP is, picture by picture: --start said it was no video file."""
    from stream.app import build
    from stream.config import load_config
    from stream.errors import UserError

    source = _transparent_animation(tmp_path / "anim.gif")
    with pytest.raises(UserError, match=r"anim.gif is an animation read picture by picture \(a transparent GIF or "
                                        r"APNG, an animated WebP\), which they do not cut; give it whole"):
        build(load_config(None), str(source), str(tmp_path / "out.gif"), clip=(0.1, None))
