"""Mask generators: hole-ratio bins, determinism, outpainting geometry."""
import numpy as np
import pytest

from inpaint_gui.training import masks as M


@pytest.mark.parametrize("bin_", M.PCONV_BINS)
def test_free_form_hits_bin(bin_):
    for seed in range(8):
        for size in (64, 256):
            m = M.free_form_mask(size, size, np.random.default_rng([seed, size]), ratio=bin_)
            assert m.dtype == np.uint8 and set(np.unique(m)) <= {0, 1}
            r = M.hole_ratio(m)
            assert bin_[0] <= r < bin_[1], (bin_, seed, size, r)


def test_free_form_non_square_and_deterministic():
    a = M.free_form_mask(96, 160, 7, ratio=(0.3, 0.4))
    b = M.free_form_mask(96, 160, 7, ratio=(0.3, 0.4))
    c = M.free_form_mask(96, 160, 8, ratio=(0.3, 0.4))
    assert a.shape == (96, 160)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_eval_masks_fixed_and_in_bins():
    for bn in M.parse_bins("10-20,50-60"):
        for i in range(3):
            m1 = M.eval_mask(128, bn, i)
            m2 = M.eval_mask(128, bn, i)
            assert np.array_equal(m1, m2)
            assert bn[0] <= m1.mean() < bn[1]
    assert not np.array_equal(M.eval_mask(128, (0.1, 0.2), 0), M.eval_mask(128, (0.1, 0.2), 1))


def test_parse_bins():
    assert M.parse_bins("10-20, 20-30%") == [(0.1, 0.2), (0.2, 0.3)]
    assert M.bin_name((0.5, 0.6)) == "50-60"
    with pytest.raises(ValueError):
        M.parse_bins("30-20")


def test_lama_and_rfr_families():
    rng = np.random.default_rng(0)
    thin = [M.lama_mask(256, 256, rng, "thin").mean() for _ in range(5)]
    thick = [M.lama_mask(256, 256, rng, "thick").mean() for _ in range(5)]
    for r in thin + thick:
        assert 0 < r <= M.LAMA_MAX_TAMPER
    box = M.lama_box_mask(128, 128, 1, margin=10, bbox_min_size=30, bbox_max_size=40, min_times=1, max_times=1)
    ys, xs = np.nonzero(box)
    assert 30 <= ys.max() - ys.min() + 1 <= 40 and ys.min() >= 10 and xs.max() < 118
    for seed in range(4):
        r = M.rfr_stroke_mask(256, 256, seed).mean()
        assert 0 < r <= 0.6
        big = M.large_hole_mask(128, 128, seed)
        assert 0.3 <= big.mean() < 0.6
    s = M.MaskSampler("rfr")
    assert np.array_equal(s(64, 64, 3), s(64, 64, 3))


def test_outpaint_geometry():
    m = M.outpaint_mask(64, 80, (4, 8, 12, 16))
    assert m[4:52, 8:64].sum() == 0 and m.sum() == 64 * 80 - 48 * 56
    for case in M.OUTPAINT_CASES:
        t, l, b, r = M.outpaint_case_margins(256, 256, case)
        assert all(v % 4 == 0 for v in (t, l, b, r))
    assert M.outpaint_case_margins(256, 256, "all2x") == (64, 64, 64, 64)
    assert M.outpaint_case_margins(256, 256, "bottom50") == (0, 0, 128, 0)
    rng = np.random.default_rng(1)
    for _ in range(10):
        t, l, b, r = M.random_outpaint_margins(128, 128, rng, mode="srn")
        assert (128 - t - b) * (128 - l - r) * 4 == 128 * 128  # SRN's expansion ratio 4
        mm = M.random_outpaint_mask(128, 128, rng, mode="mixed")
        assert 0 < mm.mean() < 1
    assert np.array_equal(M.to_engine(m), m * 255)


def test_object_family_is_one_compact_hole():
    """object_mask: one connected rectangle or ellipse in the ratio range, deep for its area
    (its largest inscribed distance is far above a stroke mask's of the same area)."""
    import cv2
    depth_obj, depth_free = [], []
    for seed in range(12):
        m = M.object_mask(128, 96, seed)
        assert 0.03 <= m.mean() < 0.3
        n, _ = cv2.connectedComponents(m.astype(np.uint8))
        assert n == 2  # background + one hole
        d = cv2.distanceTransform(m.astype(np.uint8), cv2.DIST_L2, 3).max()
        f = M.free_form_mask(128, 96, seed, ratio=(m.mean(), m.mean() + 0.05))
        depth_obj.append(d)
        depth_free.append(cv2.distanceTransform(f.astype(np.uint8), cv2.DIST_L2, 3).max())
    assert np.median(depth_obj) > 1.5 * np.median(depth_free)
    assert np.array_equal(M.object_mask(64, 64, 5), M.object_mask(64, 64, 5))
    s = M.MaskSampler("rfr_objects")
    assert "object" in s.names
    assert np.array_equal(s(64, 64, 3), s(64, 64, 3))
