"""Photos in: which inputs are photos, read upright; photos out: what each format can hold."""
import cv2
import numpy as np
import pytest

from stream import images
from stream.errors import UserError
from stream.faces import FaceFinder
from stream.images import check_image_size, is_still_image, read_image


@pytest.fixture
def photo(rng):
    return rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)


@pytest.mark.parametrize("orientation, turn", [(3, cv2.ROTATE_180), (6, cv2.ROTATE_90_CLOCKWISE),
                                               (8, cv2.ROTATE_90_COUNTERCLOCKWISE)])
def test_a_tiff_turned_by_its_orientation_tag_is_read_upright(tmp_path, photo, orientation, turn):
    """OpenCV 4.14 reads none of orientations 5-8 of a TIFF ('original_ptr == real_mat.data'): Pillow does."""
    from PIL import Image

    path = tmp_path / "turned.tif"
    Image.fromarray(photo[:, :, ::-1]).save(path, tiffinfo={274: orientation})
    np.testing.assert_array_equal(read_image(path), cv2.rotate(photo, turn))


def test_photos_are_told_by_their_content_where_the_name_says_nothing(tmp_path, photo):
    from PIL import Image

    for name, fmt in (("camera.jfif", "JPEG"), ("scan.ppm", "PPM"), ("no_extension", "PNG")):
        Image.fromarray(photo).save(tmp_path / name, format=fmt)
        assert is_still_image(tmp_path / name), name
        assert read_image(tmp_path / name).shape == photo.shape
    Image.fromarray(photo).save(tmp_path / "one.gif")  # a GIF may move: read as a video, every frame
    assert not is_still_image(tmp_path / "one.gif")
    (tmp_path / "clip.bin").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(100))
    assert not is_still_image(tmp_path / "clip.bin")
    assert is_still_image(tmp_path / "not_there.png")  # the name decides; reading it then says it is missing


def test_an_unreadable_or_oversized_photo_is_one_clear_error(tmp_path, monkeypatch):
    (tmp_path / "text.png").write_text("not a picture")
    with pytest.raises(UserError, match="not an image, or corrupt"):
        read_image(tmp_path / "text.png")

    def over_the_limit(data, flags):  # what OpenCV raises for a 50000x50000 PNG of a few hundred KB
        raise cv2.error("OpenCV(4.14.0) loadsave.cpp:79: error: (-215:Assertion failed) "
                        "pixels <= CV_IO_MAX_IMAGE_PIXELS in function 'validateInputImageSize'")
    monkeypatch.setattr(images.cv2, "imdecode", over_the_limit)
    with pytest.raises(UserError, match="larger than depthcam reads .* downscale it first"):
        read_image(tmp_path / "text.png")


def test_an_output_larger_than_its_format_holds_is_refused_before_the_run():
    check_image_size("-o", "wide.png", 70000, 40)
    check_image_size("-o", "wide.jpg", 65535, 40)
    with pytest.raises(UserError, match=r"\.jpg images are at most 65535 px a side .* 66000x40; use \.png"):
        check_image_size("-o", "wide.jpg", 66000, 40)
    with pytest.raises(UserError, match=r"\.webp images are at most 16383 px"):
        check_image_size("-o", "tall.WEBP", 100, 18000)


def test_faces_are_looked_for_in_a_strip_one_row_high():
    """A 700x1 panorama strip came down to 320x0 for the detector, which cv2.resize refuses."""
    finder = FaceFinder()
    prepared = finder.prepare(np.zeros((1, 700, 3), np.uint8))
    assert prepared.grey.shape == (1, 320)
    assert finder.detect(prepared) is None


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif"])
def test_a_photo_s_output_keeps_its_colour_profile_and_exif_upright(tmp_path, photo, suffix):
    """A Display P3 photo written without its profile is read as sRGB: dull colours in every viewer."""
    from PIL import Image, ImageCms

    from stream.images import read_metadata, write_image

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()  # any profile but sRGB
    exif = Image.Exif()
    exif[0x010F], exif[0x0112] = "Camera Maker", 6  # Make; Orientation: turned
    source = tmp_path / "photo.jpg"
    Image.fromarray(photo[:, :, ::-1]).save(source, quality=95, icc_profile=profile, exif=exif.tobytes())
    metadata = read_metadata(source)
    assert metadata.icc_profile == profile
    picture = read_image(source)
    assert picture.shape == (40, 30, 3)  # upright
    out = tmp_path / f"out{suffix}"
    assert write_image(out, picture, metadata)
    with Image.open(out) as written:
        assert written.info.get("icc_profile") == profile and written.size == (30, 40)
        if suffix != ".tif":
            assert written.getexif()[0x010F] == "Camera Maker" and written.getexif()[0x0112] == 1
    difference = np.abs(read_image(out).astype(float) - picture).mean()
    assert difference < 12, difference  # the same picture (JPEG and WebP are lossy; swapped channels: ~85)


def test_a_photo_without_profile_or_exif_is_written_by_opencv(tmp_path, photo, monkeypatch):
    from stream.images import PhotoMetadata, write_image

    encoded = []
    encode = images.cv2.imencode
    monkeypatch.setattr(images.cv2, "imencode", lambda suffix, picture: encoded.append(suffix) or encode(suffix, picture))
    assert write_image(tmp_path / "out.jpg", photo, PhotoMetadata())
    assert write_image(tmp_path / "out.bmp", photo, PhotoMetadata(icc_profile=b"profile"))  # BMP holds none
    assert encoded == [".jpg", ".bmp"]
    assert read_image(tmp_path / "out.bmp").tolist() == photo.tolist()


def test_names_that_are_not_utf8_are_read_and_written(tmp_path, photo):
    """A Linux file name may hold any byte; Python carries 0xff as a surrogate, which OpenCV's own file functions
    crashed on (SIGSEGV)."""
    import os

    from stream.images import write_image

    name = os.fsdecode(b"photo\xff.png")
    assert write_image(tmp_path / name, photo)
    assert is_still_image(tmp_path / name) and read_image(tmp_path / name).tolist() == photo.tolist()
    assert is_still_image(tmp_path / os.fsdecode(b"no\xfeext")) is False  # missing: not taken for a photo


def test_a_failed_write_leaves_the_photo_that_was_there(tmp_path, photo, monkeypatch):
    import errno

    from stream.images import write_image

    out = tmp_path / "out.png"
    out.write_bytes(b"an earlier picture")

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(images.os, "replace", full_disk)
    with pytest.raises(OSError) as raised:
        write_image(out, photo)
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(out)
    assert out.read_bytes() == b"an earlier picture" and sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
