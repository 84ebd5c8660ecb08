"""Image and mask files: orientation, bit depth, alpha, metadata, atomic saves, errors."""
import os
import warnings

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from inpaint_gui.engine import imageio
from inpaint_gui.engine.imageio import ImageIOError, ImageIOWarning, MaskSizeError


def _smooth(h=48, w=64, dtype=np.uint8):
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.dstack([xx * 255 // max(1, w - 1), yy * 255 // max(1, h - 1),
                     (xx + yy) * 127 // max(1, h + w - 2)]).astype(np.uint8)
    return imageio.to_uint16(img) if dtype == np.uint16 else img


def _exif(orientation=1, make="TestCam"):
    ex = Image.Exif()
    ex[0x010F] = make
    ex[0x0112] = orientation
    ex.get_ifd(0x8769)[0x9003] = "2021:02:03 04:05:06"
    return ex.tobytes()


def _parse_exif(blob):
    ex = Image.Exif()
    ex.load(blob)
    return ex


@pytest.fixture(scope="module")
def icc():
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


# ----------------------------------------------------------------------------- loading

@pytest.mark.parametrize("orientation", [6, 8, 3])
def test_exif_rotated_jpeg_loads_upright(tmp_path, orientation):
    # a landscape scene, stored sideways the way a camera held upright would store it
    upright = _smooth(40, 60)
    upright[:8, :8] = (255, 0, 0)  # red marker top-left
    # Pillow's exif_transpose is the reference for what "upright" means
    stored = {6: np.rot90(upright, 1), 8: np.rot90(upright, -1), 3: upright[::-1, ::-1]}[orientation]
    p = tmp_path / "cam.jpg"
    Image.fromarray(np.ascontiguousarray(stored)).save(p, quality=98, exif=_exif(orientation))
    ref = np.asarray(ImageOps.exif_transpose(Image.open(p)).convert("RGB"))
    assert ref.shape == upright.shape

    doc = imageio.load_image(p)
    assert doc.format == "JPEG"
    assert doc.rgb.shape == (40, 60, 3)
    assert np.array_equal(doc.rgb, ref)
    assert doc.rgb[2, 2, 0] > 200 and doc.rgb[2, 2, 1] < 60  # the marker is top-left again
    # the kept EXIF says "upright" so the result is not turned a second time; the rest survives
    ex = _parse_exif(doc.exif)
    assert ex[0x0112] == 1 and ex[0x010F] == "TestCam"
    assert imageio.exif_orientation(doc.exif) == 1


@pytest.mark.parametrize("ext,dtype", [(".png", np.uint8), (".tif", np.uint8),
                                       (".png", np.uint16), (".tif", np.uint16),
                                       (".webp", np.uint8)])
def test_all_eight_orientations_match_pillow(tmp_path, ext, dtype):
    base = _smooth(6, 9, dtype)
    for o in range(1, 9):
        p = tmp_path / f"o{o}{ext}"
        if ext == ".webp":
            Image.fromarray(base).save(p, lossless=True, exif=_exif(o))
        else:
            imageio.save_image(p, base, exif=_exif(o))
        doc = imageio.load_image(p)
        assert np.array_equal(doc.rgb, imageio.apply_orientation(base, o)), o
        if dtype == np.uint8:
            ref = np.asarray(ImageOps.exif_transpose(Image.open(p)).convert("RGB"))
            assert np.array_equal(doc.rgb, ref), o
        assert imageio.exif_orientation(doc.exif) == 1


def test_16bit_png_round_trip_exact(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 65536, (33, 47, 3), dtype=np.uint16)
    p = tmp_path / "deep.png"
    imageio.save_image(p, rgb)
    doc = imageio.load_image(p)
    assert doc.rgb.dtype == np.uint16 and doc.bit_depth == 16
    assert np.array_equal(doc.rgb, rgb)
    assert doc.alpha is None


def test_16bit_tiff_round_trip_with_alpha_exif_icc(tmp_path, icc):
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 65536, (31, 29, 3), dtype=np.uint16)
    alpha = rng.integers(0, 65536, (31, 29), dtype=np.uint16)
    p = tmp_path / "deep.tif"
    imageio.save_image(p, rgb, alpha=alpha, exif=_exif(), icc=icc)
    doc = imageio.load_image(p)
    assert doc.format == "TIFF"
    assert np.array_equal(doc.rgb, rgb) and np.array_equal(doc.alpha, alpha)
    assert doc.icc == icc
    ex = _parse_exif(doc.exif)
    assert ex[0x010F] == "TestCam"
    assert ex.get_ifd(0x8769)[0x9003] == "2021:02:03 04:05:06"


def test_16bit_grayscale_png_becomes_rgb(tmp_path):
    g = (np.arange(20 * 30, dtype=np.uint32).reshape(20, 30) * 101).astype(np.uint16)
    p = tmp_path / "g16.png"
    Image.fromarray(g).save(p)
    doc = imageio.load_image(p)
    assert doc.rgb.shape == (20, 30, 3) and doc.rgb.dtype == np.uint16
    assert all(np.array_equal(doc.rgb[..., c], g) for c in range(3))


@pytest.mark.parametrize("ext", [".png", ".webp", ".tif", ".bmp"])
def test_alpha_round_trip(tmp_path, ext):
    rgb = _smooth()
    alpha = np.zeros(rgb.shape[:2], np.uint8)
    alpha[:, 20:] = 255
    alpha[10:20, 30:40] = 128
    p = tmp_path / f"a{ext}"
    imageio.save_image(p, rgb, alpha=alpha, quality=100)
    doc = imageio.load_image(p)
    assert doc.alpha is not None
    assert np.array_equal(doc.alpha, alpha)
    if ext != ".webp":
        assert np.array_equal(doc.rgb, rgb)


def test_grayscale_and_palette_load_as_rgb(tmp_path):
    g = _smooth()[..., 0]
    Image.fromarray(g).save(tmp_path / "g.png")
    doc = imageio.load_image(tmp_path / "g.png")
    assert doc.rgb.shape == g.shape + (3,) and np.array_equal(doc.rgb[..., 1], g)
    pal = Image.fromarray(_smooth()).convert("P")
    pal.save(tmp_path / "p.png", transparency=0)
    doc = imageio.load_image(tmp_path / "p.png")
    assert doc.rgb.shape == (48, 64, 3) and doc.alpha is not None


# ----------------------------------------------------------------------------- saving

@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".tif"])
def test_exif_and_icc_kept_on_save(tmp_path, ext, icc):
    p = tmp_path / f"meta{ext}"
    imageio.save_image(p, _smooth(), exif=_exif(), icc=icc)
    doc = imageio.load_image(p)
    assert doc.icc == icc
    ex = _parse_exif(doc.exif)
    assert ex[0x010F] == "TestCam"
    assert ex.get_ifd(0x8769)[0x9003] == "2021:02:03 04:05:06"
    # and a second generation keeps them too
    p2 = tmp_path / f"meta2{ext}"
    imageio.save_image(p2, doc.rgb, exif=doc.exif, icc=doc.icc)
    doc2 = imageio.load_image(p2)
    assert doc2.icc == icc and _parse_exif(doc2.exif)[0x010F] == "TestCam"


def test_16bit_png_keeps_exif_and_icc(tmp_path, icc):
    rgb = _smooth(dtype=np.uint16)
    p = tmp_path / "deep_meta.png"
    imageio.save_image(p, rgb, exif=_exif(), icc=icc)
    doc = imageio.load_image(p)
    assert np.array_equal(doc.rgb, rgb) and doc.icc == icc
    assert _parse_exif(doc.exif)[0x010F] == "TestCam"
    # Pillow reads the same metadata back from our hand-written chunks
    with Image.open(p) as im:
        assert im.info.get("icc_profile") == icc


def test_16bit_to_8bit_format_warns(tmp_path):
    rgb = _smooth(dtype=np.uint16)
    with pytest.warns(ImageIOWarning, match="8 bits"):
        imageio.save_image(tmp_path / "x.jpg", rgb, quality=100)
    doc = imageio.load_image(tmp_path / "x.jpg")
    assert doc.rgb.dtype == np.uint8
    assert np.abs(doc.rgb.astype(int) - imageio.to_uint8(rgb)).max() <= 8


def test_jpeg_drops_alpha_with_warning(tmp_path):
    with pytest.warns(ImageIOWarning, match="alpha"):
        imageio.save_image(tmp_path / "x.jpg", _smooth(), alpha=np.full((48, 64), 255, np.uint8))
    assert imageio.load_image(tmp_path / "x.jpg").alpha is None


def test_atomic_save_no_temp_files_and_no_overwrite(tmp_path):
    p = tmp_path / "out.png"
    first = _smooth()
    imageio.save_image(p, first)
    assert sorted(os.listdir(tmp_path)) == ["out.png"]
    before = p.read_bytes()
    with pytest.raises(FileExistsError):
        imageio.save_image(p, 255 - first)
    assert p.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["out.png"]
    imageio.save_image(p, 255 - first, overwrite=True)
    assert np.array_equal(imageio.load_image(p).rgb, 255 - first)
    assert sorted(os.listdir(tmp_path)) == ["out.png"]


def test_failed_save_leaves_nothing(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(imageio, "_writer_pillow", lambda *a, **k: boom)
    with pytest.raises(ImageIOError, match="disk full"):
        imageio.save_image(tmp_path / "x.png", _smooth())
    assert os.listdir(tmp_path) == []


def test_save_errors_are_imageioerror(tmp_path):
    with pytest.raises(ImageIOError, match="extension"):
        imageio.save_image(tmp_path / "x.gif", _smooth())
    with pytest.raises(ImageIOError, match="does not exist"):
        imageio.save_image(tmp_path / "missing" / "x.png", _smooth())


# ----------------------------------------------------------------------------- bad files

def test_missing_file(tmp_path):
    with pytest.raises(ImageIOError, match="file not found"):
        imageio.load_image(tmp_path / "nope.png")


@pytest.mark.parametrize("name,content", [
    ("junk.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40),
    ("text.jpg", b"hello, I am not an image"),
    ("empty.png", b""),
])
def test_corrupt_or_unsupported_file(tmp_path, name, content):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(ImageIOError) as info:
        imageio.load_image(p)
    msg = str(info.value)
    assert "\n" not in msg and name in msg


def test_truncated_jpeg(tmp_path):
    p = tmp_path / "t.jpg"
    imageio.save_image(p, _smooth(200, 200))
    p.write_bytes(p.read_bytes()[:600])
    with pytest.raises(ImageIOError, match="corrupt|truncated"):
        imageio.load_image(p)


def test_unsupported_format(tmp_path):
    p = tmp_path / "anim.gif"
    Image.fromarray(_smooth()).save(p)
    with pytest.raises(ImageIOError, match="not supported"):
        imageio.load_image(p)


# ----------------------------------------------------------------------------- masks

def test_load_mask_threshold_and_alpha(tmp_path):
    m = np.zeros((20, 30), np.uint8)
    m[5:10, 5:10] = 200
    m[12:15, 12:20] = 100  # below the threshold
    Image.fromarray(m).save(tmp_path / "m.png")
    mask = imageio.load_mask(tmp_path / "m.png")
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
    assert mask[7, 7] == 255 and mask[13, 15] == 0

    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[2:6, 3:9, 3] = 0  # erased = hole
    Image.fromarray(rgba).save(tmp_path / "a.png")
    mask = imageio.load_mask(tmp_path / "a.png", use_alpha=True)
    assert mask[3, 4] == 255 and mask[10, 10] == 0 and (mask > 0).sum() == 24
    with pytest.raises(ImageIOError, match="alpha"):
        imageio.load_mask(tmp_path / "m.png", use_alpha=True)


def test_load_mask_size_mismatch(tmp_path):
    m = np.zeros((10, 15), np.uint8)
    m[2:4, 2:4] = 255
    Image.fromarray(m).save(tmp_path / "m.png")
    with pytest.raises(MaskSizeError, match="15x10"):
        imageio.load_mask(tmp_path / "m.png", shape=(20, 30, 3))
    big = imageio.load_mask(tmp_path / "m.png", shape=(20, 30, 3), resize=True)
    assert big.shape == (20, 30) and big[5, 5] == 255 and (big > 0).sum() == 16


def test_save_mask_round_trip(tmp_path):
    m = np.zeros((11, 13), np.uint8)
    m[3:7, 2:9] = 255
    imageio.save_mask(tmp_path / "m.png", m)
    assert np.array_equal(imageio.load_mask(tmp_path / "m.png"), m)
    with pytest.raises(FileExistsError):
        imageio.save_mask(tmp_path / "m.png", m)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        imageio.save_mask(tmp_path / "m.png", m, overwrite=True)
