"""Mask operations: uint8 HxW, 255 = fill, in and out."""
import numpy as np
import pytest

from inpaint_gui.engine import maskops


def _square(h=40, w=50, y0=10, x0=15, y1=20, x1=30):
    m = np.zeros((h, w), np.uint8)
    m[y0:y1, x0:x1] = 255
    return m


def test_grow_and_shrink_are_euclidean():
    m = np.zeros((41, 41), np.uint8)
    m[20, 20] = 255
    g = maskops.grow(m, 5)
    assert g.dtype == np.uint8 and set(np.unique(g)) == {0, 255}
    yy, xx = np.mgrid[0:41, 0:41]
    disc = ((yy - 20) ** 2 + (xx - 20) ** 2) <= 25
    assert np.array_equal(g > 0, disc)
    # shrinking by the same radius gives the pixel back (its distance to the nearest keep
    # pixel is sqrt(26) > 5); by one more pixel it is gone
    assert np.array_equal(maskops.shrink(g, 5), m)
    assert not maskops.shrink(g, 6).any()
    assert np.array_equal(maskops.grow(m, 0), m)
    assert np.array_equal(maskops.grow(g, -5), maskops.shrink(g, 5))


def test_shrink_square_and_border():
    m = _square()
    s = maskops.shrink(m, 2)
    assert np.array_equal(s > 0, _square(y0=12, x0=17, y1=18, x1=28) > 0)
    # a hole touching the image border does not shrink away from the border
    edge = np.zeros((20, 20), np.uint8)
    edge[:, :6] = 255
    s = maskops.shrink(edge, 2)
    assert (s[:, :4] == 255).all() and (s[:, 4:] == 0).all()
    assert not maskops.shrink(m, 10).any()
    full = np.full((8, 8), 255, np.uint8)
    assert np.array_equal(maskops.shrink(full, 3), full)


def test_grow_empty_mask_stays_empty():
    z = np.zeros((10, 10), np.uint8)
    assert not maskops.grow(z, 4).any() and not maskops.shrink(z, 4).any()
    assert not maskops.feather(z, 4).any()


@pytest.mark.parametrize("where", ["center", "inside", "outside"])
def test_feather(where):
    m = _square(60, 60, 20, 20, 40, 40)
    f = maskops.feather(m, 6, where=where)
    assert f.dtype == np.uint8 and f.shape == m.shape
    soft = (f > 0) & (f < 255)
    assert soft.any()
    assert f[30, 30] == 255 and f[0, 0] == 0  # deep inside / far outside
    row = f[30].astype(int)
    assert (np.diff(row[:30]) >= 0).all() and (np.diff(row[30:]) <= 0).all()  # monotone ramp
    if where == "inside":
        assert not f[m == 0].any()  # never leaks outside the hole
    if where == "outside":
        assert (f[m > 0] == 255).all()
    if where == "center":
        assert (f[m > 0] >= 128).all() and (f[m == 0] < 128).all()
    assert np.array_equal(maskops.feather(m, 0), m)


def test_threshold_invert_alpha():
    m = np.array([[0, 127, 128, 255]], np.uint8)
    assert maskops.threshold(m).tolist() == [[0, 0, 255, 255]]
    assert maskops.threshold(m, level=255).tolist() == [[0, 0, 0, 255]]
    assert maskops.invert(m).tolist() == [[255, 128, 127, 0]]
    assert maskops.alpha_as_mask(np.array([[0, 127, 128, 255]], np.uint8)).tolist() == [[255, 255, 0, 0]]
    a16 = np.array([[0, 65535]], np.uint16)
    assert maskops.alpha_as_mask(a16).tolist() == [[255, 0]]
    assert maskops.alpha_as_mask(np.array([[0, 200]], np.uint8), soft=True).tolist() == [[255, 55]]
    assert maskops.threshold(np.array([[True, False]])).tolist() == [[255, 0]]
    with pytest.raises(ValueError):
        maskops.threshold(np.zeros((3, 3), np.float32))


def test_resize_mask_nearest_keeps_values():
    m = _square(10, 10, 2, 2, 6, 6)
    big = maskops.resize_mask(m, (20, 20))
    assert big.shape == (20, 20) and set(np.unique(big)) == {0, 255}
    assert (big > 0).sum() == 4 * (m > 0).sum()
    assert np.array_equal(maskops.resize_mask(big, (10, 10)), m)


def test_bbox_and_regions():
    m = np.zeros((30, 40), np.uint8)
    assert maskops.bbox(m) is None
    assert maskops.connected_regions(m) == []
    m[2:5, 3:9] = 255        # 18 px
    m[10:20, 20:30] = 255    # 100 px
    m[25, 35] = 255          # 1 px
    assert maskops.bbox(m) == (2, 3, 26, 36)
    regions, labels = maskops.connected_regions(m, return_labels=True)
    assert [r.area for r in regions] == [100, 18, 1]
    assert regions[0].bbox == (10, 20, 20, 30)
    assert labels.shape == m.shape and labels.dtype == np.int32
    assert (labels[regions[1].slices()] == regions[1].label).all()
    assert len(maskops.connected_regions(m, min_area=2)) == 2
    cleaned = maskops.remove_small(m, 2)
    assert cleaned[25, 35] == 0 and cleaned[3, 4] == 255
    # diagonal neighbours: one region with 8-connectivity, two with 4
    d = np.zeros((4, 4), np.uint8)
    d[0, 0] = d[1, 1] = 255
    assert len(maskops.connected_regions(d)) == 1
    assert len(maskops.connected_regions(d, connectivity=4)) == 2
