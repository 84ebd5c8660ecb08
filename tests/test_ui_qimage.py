"""numpy <-> QImage (ui/qimage.py): views share memory, copies do not, and every display of
the document's pixels uses the same 8-bit values."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtGui import QColor, QImage  # noqa: E402

from inpaint_gui.ui.qimage import arrays_from_qimage, display8, to_qimage, view_qimage  # noqa: E402


def _rgb(img: QImage, x: int, y: int):
    c = img.pixelColor(x, y)
    return c.red(), c.green(), c.blue(), c.alpha()


def test_view_shares_the_buffer(qapp):
    rgb = np.zeros((4, 6, 3), np.uint8)
    view = view_qimage(rgb)
    rgb[2, 5] = (10, 20, 30)                 # an in-place edit shows without a new QImage
    assert _rgb(view, 5, 2) == (10, 20, 30, 255)
    mask = np.zeros((3, 5), np.uint8)
    mv = view_qimage(mask)
    mv.setColorTable([QColor(i, 0, 0).rgba() for i in range(256)])
    mask[1, 4] = 77
    assert mv.format() == QImage.Format.Format_Indexed8 and _rgb(mv, 4, 1)[0] == 77
    with pytest.raises(ValueError):
        view_qimage(np.zeros((4, 6, 3), np.uint16))
    with pytest.raises(ValueError):
        view_qimage(np.zeros((6, 4, 3), np.uint8).transpose(1, 0, 2))


def test_copy_owns_its_pixels_and_round_trips(qapp):
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    q = to_qimage(rgb, alpha)
    rgb[:] = 0                               # the copy does not follow the array
    back, a = arrays_from_qimage(q)
    assert not np.array_equal(back, rgb) and np.array_equal(a, alpha)
    assert back.flags.c_contiguous and back.dtype == np.uint8
    opaque, none = arrays_from_qimage(to_qimage(back))
    assert np.array_equal(opaque, back) and none is None


def test_16bit_display_is_the_same_everywhere(qapp):
    """The canvas image and a result layer (and the clipboard) show one 8-bit value for a
    16-bit pixel: the engine's rounded to_uint8."""
    from inpaint_gui.engine.imageio import to_uint8
    v = np.array([[[0, 129, 32767], [32895, 65280, 65535]]], np.uint16)
    shown = display8(v)
    assert np.array_equal(shown, to_uint8(v))
    assert shown[0, 0, 1] == 1 and (129 >> 8) == 0  # rounded, not the high byte
    q = to_qimage(v)
    assert [list(_rgb(q, x, 0)[:3]) for x in range(2)] == shown[0].tolist()
    u8 = np.zeros((2, 3, 3), np.uint8)
    assert display8(u8) is u8                 # 8-bit: no copy
    assert display8(np.full((1, 1, 3), 0.5, np.float32)).tolist() == [[[128, 128, 128]]]
    with_alpha = display8(v, np.array([[0, 65535]], np.uint16))
    assert with_alpha.shape == (1, 2, 4) and with_alpha[0, :, 3].tolist() == [0, 255]
