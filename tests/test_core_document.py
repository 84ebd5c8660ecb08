"""The Qt-free document logic (inpaint_gui.core): boxes, strokes, mask patches and gestures,
margins, result layers and what accepting a result changes. No Qt in this file."""
import numpy as np
import pytest

from inpaint_gui.core import brush as B
from inpaint_gui.core.margins import (MAX_CANVAS_SIDE, Margins, canvas_edges_at,
                                      clamp_margins, dragged_margins, extend_canvas)
from inpaint_gui.core.mask_edit import EDIT_TILE, MaskGesture, MaskPatch, mask_op
from inpaint_gui.core.result import (CanvasState, ResultLayer, accept_in_place,
                                     accept_on_canvas, accept_patch, blend, composite_view,
                                     split_column)
from inpaint_gui.engine import maskops


# ================================================================== boxes: (y0, x0, y1, x1)

def test_boxes_are_the_engines_order_everywhere():
    mask = np.zeros((50, 80), np.uint8)
    b = B.stamp(mask, 60.5, 10.5, 3)          # a dab at x=60, y=10
    assert b == maskops.bbox(mask) == (7, 57, 14, 64)
    assert B.dab_bbox(60.5, 10.5, 3) == (7, 57, 14, 64)
    assert B.rect_bbox((70.2, 5.0), (10.0, 30.4)) == (5, 10, 30, 70)
    assert B.polygon_bbox([(10, 2), (30, 2), (20, 12)]) == (2, 10, 13, 31)
    assert B.clip_bbox((-5, 70, 10, 90), mask.shape) == (0, 70, 10, 80)
    assert B.clip_bbox((60, 0, 70, 5), mask.shape) is None
    other = mask.copy()
    other[40, 3] = 9
    assert maskops.diff_bbox(mask, other) == (40, 3, 41, 4)
    rgb = np.zeros((50, 80, 3), np.uint8)
    rgb2 = rgb.copy()
    rgb2[12, 70, 2] = 1                      # one channel of one pixel
    assert maskops.diff_bbox(rgb, rgb2) == (12, 70, 13, 71)
    assert maskops.diff_bbox(rgb, rgb) is None


def test_clip_shape_and_combine():
    mask = np.zeros((20, 30), np.uint8)
    cov = np.full((10, 10), 255, np.uint8)
    box, c = B.clip_shape((15, 25, 25, 35), cov, mask.shape)   # hangs over the corner
    assert box == (15, 25, 20, 30) and c.shape == (5, 5)
    assert B.clip_shape((40, 40, 50, 50), cov, mask.shape) == (None, None)
    b, region = B.combine(mask, box, c, "add")
    assert b == (15, 25, 20, 30) and region.shape == (5, 5) and region.all()
    mask[b[0]:b[2], b[1]:b[3]] = region
    b2, region2 = B.combine(mask, (0, 0, 2, 2), np.full((2, 2), 255, np.uint8), "replace")
    assert b2 == (0, 0, 20, 30) and region2.sum() == 4 * 255
    assert B.combine(mask, (0, 0, 2, 2), np.zeros((2, 2), np.uint8), "subtract") == (None, None)


# ================================================================== mask patches and gestures

def test_gesture_patch_covers_only_what_changed_across_tiles():
    rng = np.random.default_rng(0)
    mask = (rng.random((300, 400)) > 0.7).astype(np.uint8) * 255
    before = mask.copy()
    g = MaskGesture()
    dabs = [(120.0 + 10 * i, 125.0 + 3 * i, 9.0) for i in range(12)]   # crosses tile borders
    for cx, cy, r in dabs:
        g.backup(mask, B.clip_bbox(B.dab_bbox(cx, cy, r), mask.shape))
        B.stamp(mask, cx, cy, r)
    patch = g.finish(mask)
    assert patch.bbox == maskops.diff_bbox(before, mask)
    assert patch.bbox[0] // EDIT_TILE != (patch.bbox[2] - 1) // EDIT_TILE  # spans tiles
    y0, x0, y1, x1 = patch.bbox
    assert np.array_equal(patch.old, before[y0:y1, x0:x1])
    assert np.array_equal(patch.new, mask[y0:y1, x0:x1])
    undone = mask.copy()
    patch.write(undone, new=False)
    assert np.array_equal(undone, before)
    # restore puts every backed-up tile back
    g.restore(mask)
    assert np.array_equal(mask, before)
    assert MaskGesture().finish(mask) is None


def test_mask_patch_checks_its_box_and_compresses():
    with pytest.raises(ValueError):
        MaskPatch((0, 0, 4, 5), np.zeros((5, 4), np.uint8), np.zeros((5, 4), np.uint8))
    a = np.zeros((1000, 1000), np.uint8)
    b = a.copy()
    b[100:900, 100:900] = 255
    p = MaskPatch.between(a, b)
    assert p.bbox == (100, 100, 900, 900) and p.nbytes < 20000
    assert MaskPatch.between(a, a.copy()) is None


def test_mask_ops_are_the_engines():
    m = np.zeros((40, 40), np.uint8)
    m[15:25, 15:25] = 255
    assert np.array_equal(mask_op("grow", m, 3), maskops.grow(m, 3))
    assert np.array_equal(mask_op("shrink", m, 2), maskops.shrink(m, 2))
    assert np.array_equal(mask_op("feather", m, 4), maskops.feather(m, 4))
    assert np.array_equal(mask_op("invert", m), 255 - m)
    assert not mask_op("clear", m).any() and mask_op("fill", m).all()
    same = mask_op("grow", m, 0)
    assert np.array_equal(same, m) and same is not m
    with pytest.raises(ValueError):
        mask_op("blur", m, 3)


# ================================================================== margins

def test_margins_limits_canvas_and_drag():
    assert clamp_margins((10, 20, 30, 40), 0, 0) == Margins()
    big = clamp_margins((MAX_CANVAS_SIDE, 5, MAX_CANVAS_SIDE, 5), 100, 200)
    assert big == Margins(MAX_CANVAS_SIDE - 100, 5, 0, 5)
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    mask = np.array([[0, 255, 0], [0, 0, 0]], np.uint8)
    ci, cm = extend_canvas(img, mask, Margins(1, 2, 0, 1))
    assert ci.shape == (3, 6, 3) and np.array_equal(ci[1:, 2:5], img) and not ci[0].any()
    assert cm[0].all() and cm[1:, :2].all() and cm[1:, 5].all()
    assert np.array_equal(cm[1:, 2:5], mask)
    assert extend_canvas(img, mask, Margins())[0] is img
    # dragging the bottom-right corner of a 100x200 image to (230, 120); Shift mirrors it
    assert dragged_margins(Margins(5, 0, 0, 0), "br", 230, 120, 100, 200) == Margins(5, 0, 20, 30)
    assert dragged_margins(Margins(), "t", 0, -12.4, 100, 200, symmetric=True) == Margins(12, 0, 12, 0)
    assert canvas_edges_at(-10, -5, 100, 200, Margins(5, 10, 0, 0), 2) == "tl"
    assert canvas_edges_at(100, 50, 100, 200, Margins(), 2) == ""


# ================================================================== result layers

def test_split_and_opacity_math():
    orig = np.zeros((4, 10, 3), np.uint8)
    res = np.full((4, 10, 3), 200, np.uint8)
    assert split_column(10, 0.0) == 0 and split_column(10, 0.34) == 3 and split_column(10, 2) == 10
    assert np.all(blend(orig, res, 0.5) == 100)
    assert np.all(blend(orig, res, 0.25) == 50)
    view = composite_view(orig, res, opacity=0.5, split=0.3)
    assert np.all(view[:, :3] == 0) and np.all(view[:, 3:] == 100)
    assert np.all(composite_view(orig, res, visible=False) == 0)
    assert np.all(composite_view(orig, res, peek=True) == 0)
    assert np.all(composite_view(orig, res, split=1.0) == 0)
    o16 = np.zeros((2, 2, 3), np.uint16)
    r16 = np.full((2, 2, 3), 65535, np.uint16)
    assert blend(o16, r16, 0.5).dtype == np.uint16 and blend(o16, r16, 0.5)[0, 0, 0] == 32768


def test_accept_produces_bbox_patch():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    res = img.copy()
    res[10:20, 30:45] = 7
    layer = ResultLayer(img, res, opacity=1.0, split=0.7, visible=False)
    patch = layer.accept()
    assert patch.bbox == (10, 30, 20, 45)
    assert patch.old.shape == patch.new.shape == (10, 15, 3)
    assert np.array_equal(patch.old, img[10:20, 30:45]) and np.all(patch.new == 7)
    applied = patch.apply(img)
    assert np.array_equal(applied, res) and not np.array_equal(img, res)
    assert np.array_equal(patch.revert(applied), img)
    assert accept_patch(img, img.copy()) is None

    half = accept_patch(img, res, opacity=0.5)
    assert half.bbox == (10, 30, 20, 45)
    assert np.array_equal(half.new, blend(img[10:20, 30:45], res[10:20, 30:45], 0.5))
    mask = np.zeros((50, 60), np.uint8)
    mask[10:15, 30:35] = 255
    m = accept_patch(img, res, mask=mask)
    assert m.bbox == (10, 30, 15, 35)
    with pytest.raises(ValueError):
        accept_patch(img, np.zeros((70, 80, 3), np.uint8))


def test_accept_in_place_keeps_strokes_painted_during_the_run():
    img = np.zeros((30, 40, 3), np.uint8)
    res = np.full_like(img, 50)
    run = np.zeros((30, 40), np.uint8)
    run[5:10, 5:10] = 255
    mask = run.copy()
    mask[20:25, 30:35] = 255                  # painted while the run was going
    step = accept_in_place(img, mask, res, 1.0, run)
    assert step.image.bbox == (5, 5, 10, 10) and np.all(step.image.new == 50)
    assert step.mask.bbox == (5, 5, 10, 10) and not step.mask.new.any()
    whole = accept_in_place(img, mask, res)   # no run mask: everywhere, mask cleared
    assert whole.image.bbox == (0, 0, 30, 40) and whole.mask.bbox == (5, 5, 25, 35)
    assert accept_in_place(img, np.zeros_like(run), res, 1.0, run).mask is None
    assert accept_in_place(img, mask, img.copy(), 1.0, run) is None


def test_accept_on_canvas_keeps_the_inner_mask_and_extends_alpha():
    img = np.full((4, 5, 3), 3, np.uint16)
    alpha = np.full((4, 5), 1000, np.uint16)
    mask = np.zeros((4, 5), np.uint8)
    mask[1, 2] = 255
    m = Margins(1, 2, 0, 1)
    res = np.full((5, 8, 3), 9, np.uint16)
    new = accept_on_canvas(CanvasState(img, alpha, mask, m), res)
    assert new.margins == Margins() and new.image.shape == (5, 8, 3)
    assert np.argwhere(new.mask).tolist() == [[2, 4]]
    assert (new.alpha[1:, 2:7] == 1000).all() and (new.alpha[0] == 65535).all()
    assert (new.alpha[:, :2] == 65535).all() and (new.alpha[:, 7] == 65535).all()
    with pytest.raises(ValueError):
        accept_on_canvas(CanvasState(img, alpha, mask, m), np.zeros((4, 5, 3), np.uint16))
    with pytest.raises(ValueError):
        accept_on_canvas(CanvasState(img, alpha, mask, m), res.astype(np.uint8))
