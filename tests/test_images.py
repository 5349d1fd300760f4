"""Photos in: which inputs are photos, read upright; photos out: what each format can hold."""
import cv2
import numpy as np
import pytest

from stream import animations, images
from stream.animations import is_still_image
from stream.errors import UserError
from stream.faces import FaceFinder
from stream.images import check_image_size, read_image


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
    Image.fromarray(photo).save(tmp_path / "one.gif")  # a GIF of one picture is a photo
    assert is_still_image(tmp_path / "one.gif")
    pictures = [Image.fromarray(photo), Image.fromarray(255 - photo)]
    pictures[0].save(tmp_path / "two.gif", save_all=True, append_images=pictures[1:])  # one that moves: a video
    assert not is_still_image(tmp_path / "two.gif")
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
    assert finder.detect_all(prepared) == []


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
    monkeypatch.setattr(images.cv2, "imencode", lambda suffix, *args: encoded.append(suffix) or encode(suffix, *args))
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
    import os

    from stream.images import write_image

    out = tmp_path / "out.png"
    out.write_bytes(b"an earlier picture")

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "replace", full_disk)  # the rename over the old photo
    with pytest.raises(OSError) as raised:
        write_image(out, photo)
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(out)
    assert out.read_bytes() == b"an earlier picture" and sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_a_transparent_photo_is_read_in_its_own_colours(tmp_path):
    """OpenCV dropped the alpha: what the transparent pixels hid (here red; often black) came out as the photo."""
    from PIL import Image

    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., :3] = (200, 30, 10)
    rgba[:, :2, 3], rgba[:, 2:4, 3], rgba[:, 4:, 3] = 255, 0, 128  # opaque, transparent, half
    for name, options in (("cut.png", {}), ("cut.webp", {"lossless": True}), ("cut.tif", {})):
        Image.fromarray(rgba).save(tmp_path / name, **options)
        got = read_image(tmp_path / name).astype(int)
        # the visible pixels' own (straight) colours; the hidden ones the nearest visible one's (filled_behind)
        assert (got == (10, 30, 200)).all(), name
    grey = Image.fromarray(rgba[..., 0]).convert("LA")
    grey.putalpha(Image.fromarray(rgba[..., 3]))
    grey.save(tmp_path / "grey.png")
    assert (read_image(tmp_path / "grey.png") == 200).all()
    palette = Image.fromarray(rgba[..., :3]).convert("P", palette=Image.Palette.ADAPTIVE)
    palette.save(tmp_path / "palette.png", transparency=0)  # the photo's one colour, index 0, is transparent
    assert (read_image(tmp_path / "palette.png") == 255).all()


def test_a_heif_photo_is_a_photo_and_says_what_reads_it(tmp_path, monkeypatch):
    """An iPhone's HEIC went to FFmpeg as a video: the first 512 px tile of its grid, into NAME_portrait.mp4."""
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))
    assert is_still_image(path)
    monkeypatch.setattr(images, "heif_readable", lambda: False)
    with pytest.raises(UserError, match=r"cannot read HEIF photo .*IMG_0001.HEIC: pip install 'depthcam\[heif\]'"):
        read_image(path)


def test_doctor_says_whether_heif_photos_can_be_read(monkeypatch):
    """The README sends iPhone users to depthcam[heif]; doctor did not say whether this machine has it."""
    from stream import doctor

    monkeypatch.setattr(images, "heif_readable", lambda: False)
    missing = doctor._photos()
    assert not missing.ok and "no HEIF/HEIC" in missing.detail and "depthcam[heif]" in missing.fix
    monkeypatch.setattr(images, "heif_readable", lambda: True)
    assert doctor._photos().ok and doctor._photos in doctor.CHECKS


def test_a_heif_photo_is_read_where_pillow_heif_is_installed(tmp_path):
    pillow_heif = pytest.importorskip("pillow_heif")
    from PIL import Image

    smooth = np.zeros((48, 64, 3), np.uint8)  # HEVC's 4:2:0 would blur noise
    smooth[..., 0], smooth[..., 1], smooth[..., 2] = np.arange(64) * 4, np.arange(48)[:, None] * 5, 90
    path = tmp_path / "photo.heic"
    pillow_heif.from_pillow(Image.fromarray(smooth[:, :, ::-1])).save(path, quality=95)
    got = read_image(path)
    assert got.shape == smooth.shape and np.abs(got.astype(int) - smooth).mean() < 4


def test_a_profile_of_another_colour_space_is_not_kept(tmp_path, photo):
    """A grey or CMYK photo's profile was written into the RGB output, where viewers misread it or refuse it."""
    from PIL import Image, ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(photo).save(tmp_path / "rgb.jpg", icc_profile=srgb)
    assert images.read_metadata(tmp_path / "rgb.jpg").icc_profile == srgb
    grey = srgb[:16] + b"GRAY" + srgb[20:]  # the header's data colour space is all that is read
    Image.fromarray(photo[..., 0]).save(tmp_path / "grey.jpg", icc_profile=grey)
    assert images.read_metadata(tmp_path / "grey.jpg").icc_profile is None


def _animation(path, pictures: int = 5) -> None:
    from PIL import Image

    frames = [Image.fromarray(np.full((32, 48, 3), 40 * i, np.uint8)) for i in range(pictures)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)


def test_an_animated_png_is_read_as_the_video_it_is(tmp_path):
    """By its .png name it was a photo: its first picture only, without a word."""
    from stream.sources import open_source

    _animation(tmp_path / "anim.png")
    assert not is_still_image(tmp_path / "anim.png")
    source = open_source(str(tmp_path / "anim.png"))
    try:
        assert [int(frame.image.mean()) for frame in source.frames()] == [0, 40, 80, 120, 160]
    finally:
        source.close()


def _srgb(linear: np.ndarray) -> np.ndarray:
    """sRGB's transfer, to 8 bits."""
    encoded = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * np.power(linear, 1 / 2.4) - 0.055)
    return np.clip(encoded * 255 + 0.5, 0, 255).astype(np.uint8)


def test_a_float_tiff_is_read_as_the_linear_light_it_holds(tmp_path, photo):
    """A 32-bit float TIFF (an HDR merge's, a stack's) was refused as "not an image, or corrupt"; a float grey one
    came out black. Its values are linear light with white at 1.0: brighter ones are highlights, clipped."""
    linear = photo.astype(np.float32) / 255
    linear[0, 0] = 7.5  # a highlight above white
    cv2.imwrite(str(tmp_path / "hdr.tif"), linear)
    np.testing.assert_allclose(read_image(tmp_path / "hdr.tif"), _srgb(np.minimum(linear, 1.0)), atol=1)
    cv2.imwrite(str(tmp_path / "grey.tif"), linear[..., 1])
    np.testing.assert_allclose(read_image(tmp_path / "grey.tif")[..., 0], _srgb(np.minimum(linear[..., 1], 1)), atol=1)
    photo[0, 0] = 255
    cv2.imwrite(str(tmp_path / "wide.tif"), photo.astype(np.float64))  # an 8-bit picture stored as floats: as stored
    np.testing.assert_allclose(read_image(tmp_path / "wide.tif"), photo, atol=1)


def test_a_float_tiff_with_a_gamma_profile_is_read_as_stored(tmp_path, photo):
    """A profile with a tone curve (GIMP's "perceptual" float) says the values are encoded already."""
    import tifffile
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    tifffile.imwrite(tmp_path / "encoded.tif", photo[..., ::-1].astype(np.float32) / 255, photometric="rgb",
                     iccprofile=srgb)
    np.testing.assert_allclose(read_image(tmp_path / "encoded.tif"), photo, atol=1)


@pytest.mark.parametrize("dtype, scale, orientation", [
    (np.int16, 32767, 6), (np.int32, 2**31 - 1, 6), (np.int32, 65535, 1),
    *[(dtype, scale, orientation) for dtype, scale in ((np.uint32, 2**32 - 1), (np.float16, None))
      for orientation in range(1, 9)]])  # read by tifffile, and turned here: every orientation
def test_tiffs_of_wide_samples_are_read_upright(tmp_path, photo, dtype, scale, orientation):
    """Signed 16-bit came out at half brightness, 32-bit integers saturated (or were refused, unsigned) and half
    floats were refused; tifffile reads those OpenCV refuses, turned as their orientation tag says."""
    import tifffile

    unit = photo[..., ::-1] / 255
    stored = (unit if scale is None else np.round(unit * scale)).astype(dtype)
    tifffile.imwrite(tmp_path / "wide.tif", stored, photometric="rgb", extratags=[(274, "H", 1, orientation, True)])
    tifffile.imwrite(tmp_path / "plain.tif", photo[..., ::-1], photometric="rgb",
                     extratags=[(274, "H", 1, orientation, True)])
    expected = read_image(tmp_path / "plain.tif")  # an 8-bit TIFF's orientation, read as before
    if scale is None:  # floats: linear light
        expected = _srgb(expected / 255)
    np.testing.assert_allclose(read_image(tmp_path / "wide.tif"), expected, atol=1)


def test_a_float_tiff_that_cannot_be_decoded_is_one_clear_line(tmp_path, photo, capsys):
    import tifffile

    tifffile.imwrite(tmp_path / "whole.tif", np.zeros((200, 300, 3), np.float32), photometric="rgb")
    data = (tmp_path / "whole.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="a TIFF of 32-bit float samples that could not be decoded .* 16-bit TIFF"):
        read_image(tmp_path / "cut.tif")
    (tmp_path / "header.tif").write_bytes(data[:100])
    with pytest.raises(UserError, match="not an image, or corrupt"):
        read_image(tmp_path / "header.tif")
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_a_tiff_of_8_or_16_bit_samples_is_decoded_once(tmp_path, photo, dtype, monkeypatch):
    """Every TIFF was decoded whole twice: once to see whether its samples were float or wide, then the usual
    way. Its headers tell that without decoding it."""
    import tifffile

    stored = photo[..., ::-1].astype(dtype) * (257 if dtype == np.uint16 else 1)
    tifffile.imwrite(tmp_path / "plain.tif", stored, photometric="rgb")
    decodes = []
    real_imdecode = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda *args: decodes.append(args[1]) or real_imdecode(*args))
    np.testing.assert_array_equal(read_image(tmp_path / "plain.tif"), photo)
    assert decodes == [cv2.IMREAD_COLOR]


def _exif_blob(entries: list[tuple[int, int, int, bytes]]) -> bytes:
    """EXIF made by hand (big-endian IFD0: tag, type, count, 4 value bytes), for damage Pillow itself never writes."""
    import struct

    body = struct.pack(">H", len(entries)) + b"".join(struct.pack(">HHI4s", *entry) for entry in entries)
    return b"Exif\x00\x00MM\x00*" + struct.pack(">I", 8) + body + bytes(4) + struct.pack(">II", 1, 1)


def test_a_photo_whose_exif_is_damaged_is_processed_without_it(tmp_path):
    """A Make tag stored as a number (a buggy editor's) ended the run: "error: AttributeError: 'IFDRational' object has
    no attribute 'encode'", where Pillow wrote the EXIF back (and, for a transparent photo, turned it upright)."""
    import struct

    from PIL import Image

    rational_at = 8 + 2 + 2 * 12 + 4  # after IFD0's two entries and its next-IFD link: the two longs of _exif_blob
    blob = _exif_blob([(0x010F, 5, 1, struct.pack(">I", rational_at)), (0x0112, 3, 1, b"\x00\x06\x00\x00")])
    rgba = np.full((30, 40, 4), 255, np.uint8)
    rgba[:, :10, 3] = 0  # the left columns transparent
    Image.fromarray(rgba).save(tmp_path / "cut.png", exif=blob)
    Image.fromarray(rgba[..., :3]).save(tmp_path / "photo.jpg", exif=blob)
    for name in ("cut.png", "photo.jpg"):
        assert images.read_metadata(tmp_path / name).exif is None, name
        assert read_image(tmp_path / name).shape == (40, 30, 3), name  # turned upright all the same
    assert (read_image(tmp_path / "cut.png")[:10] == 255).all()  # turned: the transparent columns are the top rows


def test_a_tiff_s_storage_tags_are_not_written_as_exif(tmp_path, photo):
    """A TIFF's directory (16-bit samples, LZW strips and their offsets) went into a JPEG's or PNG's EXIF, where it
    misdescribes the picture; a large TIFF's strip table overflowed JPEG's 64 KB, which lost the profile too."""
    from PIL import Image, ImageCms

    from stream.images import read_metadata, write_image

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    tall = np.repeat(photo, 200, axis=0)  # 6000 rows: one strip each, 48 KB of strip offsets and byte counts
    Image.fromarray(tall).save(tmp_path / "scan.tif", tiffinfo={271: "Scanner Maker", 315: "Someone", 278: 1},
                               icc_profile=profile)
    metadata = read_metadata(tmp_path / "scan.tif")
    exif = Image.Exif()
    exif.load(metadata.exif)
    assert dict(exif) == {271: "Scanner Maker", 315: "Someone"}
    assert write_image(tmp_path / "out.jpg", tall, metadata)
    with Image.open(tmp_path / "out.jpg") as written:
        assert written.info.get("icc_profile") == profile and written.getexif()[271] == "Scanner Maker"


def test_an_exif_too_large_for_the_output_keeps_the_colour_profile(tmp_path, photo):
    """JPEG holds 64 KB of EXIF: a PNG's larger one was refused, and the photo written by OpenCV without its profile."""
    from PIL import Image, ImageCms

    from stream.images import PhotoMetadata, write_image

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    exif = Image.Exif()
    exif[0x010E] = "x" * 70000  # ImageDescription
    assert write_image(tmp_path / "out.jpg", photo, PhotoMetadata(profile, exif.tobytes()))
    with Image.open(tmp_path / "out.jpg") as written:
        assert written.info.get("icc_profile") == profile and not written.getexif()


def test_a_webp_output_is_the_same_whether_the_photo_had_metadata_or_not(tmp_path, photo):
    """OpenCV's default WebP is lossless: a photo without EXIF or profile came out 6 times the size of one with them,
    which Pillow writes at quality 95."""
    from PIL import Image

    from stream.images import PhotoMetadata, write_image

    exif = Image.Exif()
    exif[0x010F] = "Camera Maker"
    smooth = cv2.resize(photo, (400, 300), interpolation=cv2.INTER_CUBIC)
    assert write_image(tmp_path / "plain.webp", smooth, PhotoMetadata())
    assert write_image(tmp_path / "tagged.webp", smooth, PhotoMetadata(exif=exif.tobytes()))
    for name in ("plain.webp", "tagged.webp"):
        assert b"VP8 " in (tmp_path / name).read_bytes()[:64], name  # lossy: VP8, not VP8L (lossless)
    plain, tagged = ((tmp_path / name).stat().st_size for name in ("plain.webp", "tagged.webp"))
    assert abs(plain - tagged) < 200, (plain, tagged)


def _write_mp4(path) -> None:
    import av

    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * index, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def test_a_file_named_as_a_photo_that_is_not_one_says_what_it_is(tmp_path, photo, monkeypatch):
    """A video, a web page saved instead of the photo, a HEIC renamed .jpg and a photo cut short were all "not an
    image, or corrupt (give a PNG/JPEG file)": for a JPEG, which the user had given."""
    from PIL import Image

    _write_mp4(tmp_path / "clip.jpg")
    with pytest.raises(UserError, match=r"clip.jpg: it holds a video \(MP4/MOV\), not a picture; name it .*clip.mp4"):
        read_image(tmp_path / "clip.jpg")
    (tmp_path / "shared.jpg").write_text("<!DOCTYPE html>\n<html><head><title>Photo</title></head></html>")
    with pytest.raises(UserError, match=r"shared.jpg: it holds a web page \(HTML\), not a picture; download the "):
        read_image(tmp_path / "shared.jpg")
    Image.fromarray(photo).save(tmp_path / "whole.jpg", quality=95)
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"cut.jpg: the JPEG picture \(40x30\) is damaged or cut short .* copy it"):
        read_image(tmp_path / "cut.jpg")
    (tmp_path / "iphone.jpg").write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))
    monkeypatch.setattr(images, "heif_readable", lambda: False)
    with pytest.raises(UserError, match=r"iphone.jpg: it holds a HEIF photo .*pip install 'depthcam\[heif\]'"):
        read_image(tmp_path / "iphone.jpg")


@pytest.mark.parametrize("suffix", [".png", ".webp", ".tif"])
def test_a_transparent_photo_s_output_keeps_its_transparency(tmp_path, suffix):
    """A cut-out (a PNG with transparency) came out laid on white for good: its transparency lost in a PNG, WebP or
    TIFF output, which hold it. The picture is still rendered on white; the output takes the input's alpha back,
    upright, and its colours, white taken out of the half-transparent ones (no white fringe on a dark page)."""
    from PIL import Image

    from stream.images import on_page, read_metadata, write_image

    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., :3] = (200, 30, 10)
    rgba[:, :2, 3], rgba[:, 2:4, 3], rgba[:, 4:, 3] = 255, 0, 128  # opaque, transparent, half
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: read upright, alpha too
    Image.fromarray(rgba).save(tmp_path / "cut.png", exif=exif.tobytes())
    picture, metadata = read_image(tmp_path / "cut.png"), read_metadata(tmp_path / "cut.png")
    assert picture.shape == (6, 4, 3)
    out = tmp_path / f"out{suffix}"
    assert write_image(out, picture, metadata)
    with Image.open(out) as written:
        got = np.asarray(written.convert("RGBA")).astype(int)
    expected = np.rot90(rgba, -1).astype(int)
    np.testing.assert_array_equal(got[..., 3], expected[..., 3])
    visible = np.abs(got[..., :3] - expected[..., :3])[expected[..., 3] > 0]
    assert visible.max() <= 2 if suffix != ".webp" else visible.mean() < 12  # WebP at quality 95: lossy, 4:2:0
    assert write_image(tmp_path / "out.jpg", picture, metadata)  # JPEG holds none: the render laid on white
    assert np.abs(read_image(tmp_path / "out.jpg").astype(int) - on_page(picture, metadata.alpha)).mean() < 12


def test_a_photo_beyond_pillow_s_pixel_limit_keeps_its_profile_and_exif(tmp_path, monkeypatch):
    """A phone's 200-megapixel photo is beyond Pillow's own limit (179 MP), not OpenCV's: OpenCV read its pixels,
    Pillow refused to open it for its metadata, and the output lost the colour profile and EXIF. (Pillow's limit is
    lowered here to stand for such a photo; it is left as it was after.)"""
    from PIL import Image, ImageCms

    from stream.images import read_metadata

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    exif = Image.Exif()
    exif[0x0110] = "Phone 200MP"  # Model
    Image.fromarray(np.zeros((60, 80, 3), np.uint8)).save(tmp_path / "big.jpg", icc_profile=profile,
                                                           exif=exif.tobytes())
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4800 pixels: over twice the limit, which Pillow refuses
    metadata = read_metadata(tmp_path / "big.jpg")
    assert metadata.icc_profile == profile and b"Phone 200MP" in metadata.exif
    assert Image.MAX_IMAGE_PIXELS == 1000


def test_a_snapshot_of_a_transparent_photo_shown_smaller_keeps_its_transparency(tmp_path):
    """The window shows a photo wider than 1280 px scaled down, and `p` saves what it shows: the full-size alpha
    did not fit the smaller picture and was dropped, so the snapshot came out opaque (a small photo's kept it)."""
    from PIL import Image

    from stream.images import PhotoMetadata, write_image

    alpha = np.zeros((40, 80), np.uint8)
    alpha[:, 40:] = 255  # the right half opaque
    picture = np.full((20, 40, 3), 90, np.uint8)  # the photo at half size
    assert write_image(tmp_path / "shot.png", picture, PhotoMetadata(alpha=alpha))
    with Image.open(tmp_path / "shot.png") as written:
        assert written.mode == "RGBA" and written.size == (40, 20)
        shown = np.asarray(written.getchannel("A"))
    assert (shown[:, :19] == 0).all() and (shown[:, 21:] == 255).all()
    side_by_side = np.full((40, 240, 3), 90, np.uint8)  # three panels: not the photo, no alpha
    assert write_image(tmp_path / "three.png", side_by_side, PhotoMetadata(alpha=alpha))
    with Image.open(tmp_path / "three.png") as written:
        assert written.mode == "RGB"


def _cmyk_profile(rgb_of, grid: int = 9) -> bytes:
    """An ICC v2 CMYK printer profile whose A2B0 table takes inks (0-1; C, M, Y, K) to the Lab of `rgb_of(inks)`
    (sRGB, 0-255), as a print workflow's profile (U.S. Web Coated SWOP) takes them to its measured colours."""
    import struct

    from PIL import Image, ImageCms

    axis = np.linspace(0, 1, grid)
    inks = np.stack(np.meshgrid(axis, axis, axis, axis, indexing="ij"), -1).reshape(-1, 4)  # C slowest, K fastest
    rgb = np.clip(rgb_of(inks) + 0.5, 0, 255).astype(np.uint8).reshape(1, -1, 3)
    lab = np.asarray(ImageCms.profileToProfile(Image.fromarray(rgb), ImageCms.createProfile("sRGB"),
                                               ImageCms.createProfile("LAB"), outputMode="LAB")).reshape(-1, 3)
    lightness, a, b = lab[:, 0] / 255 * 100, lab[:, 1].view(np.int8), lab[:, 2].view(np.int8)  # Pillow's LAB
    table = np.stack([lightness / 100 * 0xFF00, (a + 128.0) * 256, (b + 128.0) * 256], -1)  # ICC v2's 16-bit Lab
    identity = b"".join(struct.pack(">i", 65536 if i % 4 == 0 else 0) for i in range(9))
    ramp = struct.pack(">HH", 0, 65535)
    lut = (b"mft2" + bytes(4) + bytes([4, 3, grid, 0]) + identity + struct.pack(">HH", 2, 2) + ramp * 4
           + np.round(table).clip(0, 65535).astype(">u2").tobytes() + ramp * 3)
    d50 = b"XYZ " + bytes(4) + b"".join(struct.pack(">i", round(v * 65536)) for v in (0.9642, 1.0, 0.8249))
    desc = b"desc" + bytes(4) + struct.pack(">I", 10) + b"test CMYK\0" + bytes(4 + 4 + 2 + 1 + 67)
    tags = [(b"A2B0", lut), (b"wtpt", d50), (b"desc", desc)]
    offset = 128 + 4 + 12 * len(tags)
    directory, data = struct.pack(">I", len(tags)), b""
    for signature, body in tags:
        body += bytes(-len(body) % 4)
        directory += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = (struct.pack(">I", offset + len(data)) + bytes(4) + bytes([2, 0x10, 0, 0]) + b"prtrCMYKLab "
              + bytes(12) + b"acsp" + bytes(24) + bytes(4) + d50[8:] + bytes(48))
    return header + directory + data


def _inks(rgb: np.ndarray) -> np.ndarray:
    """The inverse of the formula: inks (0-1) of each sRGB colour, black taken out of the three."""
    rest = 1 - rgb / 255.0
    black = rest.min(axis=-1, keepdims=True)
    return np.concatenate([(rest - black) / np.maximum(1 - black, 1e-6), black], -1)


def _formula(inks: np.ndarray) -> np.ndarray:
    return 255 * (1 - inks[..., :3]) * (1 - inks[..., 3:])


@pytest.mark.parametrize("swapped", [False, True])
def test_a_cmyk_jpeg_comes_out_in_the_colours_its_profile_gives(tmp_path, swapped):
    """A CMYK JPEG (Adobe's inverted inks, as Pillow and Photoshop write them) with its print profile: OpenCV turned
    its inks into RGB by a formula, whatever the profile said (here one that gives red and blue swapped)."""
    from PIL import Image
    from skimage import data

    rgb = data.astronaut()[::4, ::4]
    profile = _cmyk_profile(lambda inks: _formula(inks)[:, ::-1] if swapped else _formula(inks))
    inks = np.clip(_inks(rgb.astype(np.float64)) * 255 + 0.5, 0, 255).astype(np.uint8)
    Image.fromarray(inks, "CMYK").save(tmp_path / "print.jpg", quality=95, icc_profile=profile)
    expected = rgb if swapped else rgb[..., ::-1]  # BGR: with the swap, as the RGB original read as BGR
    assert np.abs(read_image(tmp_path / "print.jpg").astype(int) - expected).mean() < 3
    assert images.read_metadata(tmp_path / "print.jpg").icc_profile is None  # written as sRGB, which it is now


def test_a_cmyk_jpeg_without_a_profile_comes_out_by_the_formula(tmp_path):
    from PIL import Image
    from skimage import data

    rgb = data.astronaut()[::4, ::4]
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "print.jpg", quality=95)
    assert np.abs(read_image(tmp_path / "print.jpg")[..., ::-1].astype(int) - rgb).mean() < 3
    damaged = bytes(16) + b"CMYK" + bytes(200)  # a profile LittleCMS cannot use: the formula too
    Image.open(tmp_path / "print.jpg").save(tmp_path / "bad.jpg", quality=95, icc_profile=damaged)
    assert np.abs(read_image(tmp_path / "bad.jpg")[..., ::-1].astype(int) - rgb).mean() < 3


def test_pillow_s_pixel_limit_holds_while_another_thread_reads_a_picture(tmp_path, monkeypatch):
    """The limit, a global, was saved and put back by each reader: one thread's put-back landed inside another's
    open, which then refused a photo below depthcam's limit, and the other's raised limit stayed for good."""
    import threading

    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # as Pillow's 179 MP is to a 200-megapixel photo
    cv2.imwrite(str(tmp_path / "large.png"), np.zeros((100, 100, 3), np.uint8))  # over twice it: refused
    cv2.imwrite(str(tmp_path / "small.png"), np.zeros((4, 4, 3), np.uint8))
    opening, small_done = threading.Event(), threading.Event()
    real_open = Image.open

    def open_after_the_small_one(path, *args, **kwargs):
        if str(path).endswith("large.png"):
            opening.set()
            small_done.wait(10)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(Image, "open", open_after_the_small_one)
    results = {}

    def small() -> None:
        with images.pillow_open(tmp_path / "small.png"):
            opening.wait(10)
        small_done.set()

    def large() -> None:
        results["large"] = animations.picture_count(tmp_path / "large.png")

    threads = [threading.Thread(target=small), threading.Thread(target=large)]
    threads[0].start()
    while not images._PIXEL_LIMIT._readers:  # the small one is open first
        pass
    threads[1].start()
    for thread in threads:
        thread.join(20)
    assert results["large"] == 1  # read: 0 where the limit was back at 1000 under it
    assert Image.MAX_IMAGE_PIXELS == 1000  # put back


def test_reading_while_another_thread_reads_leaves_the_warning_filters_as_they_were(tmp_path, monkeypatch):
    """picture_count's own catch_warnings saved the filters while another reader had Pillow's warnings ignored, and
    put those ignores back after the last reader had restored the process's filters: they stayed on for good."""
    import threading
    import warnings

    from PIL import Image

    from stream import animations, images

    path = tmp_path / "p.png"
    Image.new("RGB", (4, 4)).save(path)
    before = list(warnings.filters)
    inside, first_done = threading.Event(), threading.Event()
    real_open = Image.open

    def open_after_the_first_reader(*args, **kwargs):
        inside.set()
        first_done.wait(5)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(Image, "open", open_after_the_first_reader)
    first = images._PIXEL_LIMIT.held()
    first.__enter__()
    second = threading.Thread(target=animations.picture_count, args=(path,))
    second.start()
    assert inside.wait(5)
    first.__exit__(None, None, None)
    first_done.set()
    second.join(5)
    assert warnings.filters == before
