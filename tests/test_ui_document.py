"""Document model: undo patches, mask ops, margins presets, project files, bit depth."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from inpaint_gui.core import brush as B  # noqa: E402
from inpaint_gui.core.margins import Margins, preset_margins  # noqa: E402
from inpaint_gui.core.project import ResultEntry, load_project, save_project  # noqa: E402


@pytest.fixture
def doc(qapp):
    from inpaint_gui.ui.document import Document
    d = Document()
    rng = np.random.default_rng(1)
    d.set_image_data(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8), path=None,
                     name="test")
    return d


def _stroke(doc, pts, radius=6.0, hardness=1.0, erase=False, spacing=0.1):
    doc.begin_mask_edit()
    it = B.StrokeInterpolator(radius, spacing)
    dabs = it.start(*pts[0])
    for p in pts[1:-1]:
        dabs += it.move_to(*p)
    dabs += it.finish(*pts[-1])
    doc.paint_dabs(dabs, hardness, erase)
    return doc.end_mask_edit("erase" if erase else "stroke")


def _seg_dist(h, w, a, b):
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    ax, ay = a
    bx, by = b
    dx, dy = bx - ax, by - ay
    t = np.clip(((xs - ax) * dx + (ys - ay) * dy) / max(dx * dx + dy * dy, 1e-12), 0, 1)
    return np.hypot(xs - (ax + t * dx), ys - (ay + t * dy))


def test_stroke_interpolates_without_gaps(doc):
    a, b = (10.3, 12.7), (150.2, 100.9)
    _stroke(doc, [a, b], radius=5.0)
    d = _seg_dist(*doc.mask.shape, a, b)
    assert (doc.mask[d <= 4.6] == 255).all()      # no gaps along the line
    assert (doc.mask[d > 5.0] == 0).all()         # nothing outside the brush


def test_soft_brush_and_eraser(doc):
    _stroke(doc, [(40, 40), (120, 40)], radius=10, hardness=0.3)
    row = doc.mask[40, 30:130]
    assert row.max() == 255 and 0 < doc.mask[40 + 8, 80] < 255  # soft edge
    doc.mask_operation("fill")
    _stroke(doc, [(20, 80), (140, 80)], radius=6, erase=True)
    d = _seg_dist(*doc.mask.shape, (20, 80), (140, 80))
    assert (doc.mask[d <= 5.5] == 0).all()
    assert (doc.mask[d > 6.0] == 255).all()


def test_undo_redo_restores_mask_bytes_exactly(doc):
    states = [doc.mask.copy()]
    _stroke(doc, [(5, 5), (80, 60), (150, 10)], radius=7)
    states.append(doc.mask.copy())
    _stroke(doc, [(30, 100), (90, 20)], radius=4, hardness=0.5)
    states.append(doc.mask.copy())
    _stroke(doc, [(0, 0), (159, 119)], radius=9, erase=True)
    states.append(doc.mask.copy())
    doc.mask_operation("grow", 3)
    states.append(doc.mask.copy())
    doc.mask_operation("invert")
    states.append(doc.mask.copy())
    assert doc.undo_stack.count() == 5
    for i in range(5, 0, -1):
        doc.undo_stack.undo()
        assert doc.mask.tobytes() == states[i - 1].tobytes()
    for i in range(1, 6):
        doc.undo_stack.redo()
        assert doc.mask.tobytes() == states[i].tobytes()


def test_stroke_patch_is_bbox_sized(doc):
    patch = _stroke(doc, [(50.5, 40.5), (70.5, 44.5)], radius=4)
    ys, xs = np.nonzero(doc.mask)
    assert patch.bbox == (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1)  # (y0, x0, y1, x1)
    assert patch.old.shape == patch.new.shape == (patch.bbox[2] - patch.bbox[0],
                                                  patch.bbox[3] - patch.bbox[1])
    assert (patch.old == 0).all() and patch.new.max() == 255
    cmd = doc.undo_stack.command(0)
    assert cmd.patch is patch


def test_undo_memory_after_50_strokes_is_small(qapp):
    from inpaint_gui.ui.document import Document
    d = Document()
    img = np.zeros((1000, 1500, 3), np.uint8)
    d.set_image_data(img)
    rng = np.random.default_rng(0)
    for k in range(50):
        pts = [tuple(p) for p in rng.uniform(0, 1, (4, 2)) * [1500, 1000]]
        _stroke(d, pts, radius=float(rng.uniform(3, 40)), erase=(k % 4 == 3), spacing=0.25)
    assert d.undo_stack.count() == 50
    assert d.undo_memory_bytes() < img.nbytes / 2  # far below 2x the image size


def test_cancel_restores_pixels(doc):
    before = doc.mask.copy()
    doc.begin_mask_edit()
    doc.paint_dabs([(50, 50, 20)], 1.0, False)
    assert doc.mask.any()
    doc.cancel_mask_edit()
    assert doc.mask.tobytes() == before.tobytes()
    assert doc.undo_stack.count() == 0


def test_mask_ops(doc):
    doc.apply_mask_region((50, 50, 60, 60), np.full((10, 10), 255, np.uint8), "rect")
    n = (doc.mask > 0).sum()
    doc.mask_operation("grow", 3)
    assert (doc.mask > 0).sum() > n
    doc.undo_stack.undo()
    doc.mask_operation("shrink", 2)
    assert 0 < (doc.mask > 0).sum() < n
    doc.undo_stack.undo()
    doc.mask_operation("feather", 3)
    assert len(np.unique(doc.mask)) > 2
    doc.undo_stack.undo()
    m = doc.mask.copy()
    doc.mask_operation("invert")
    assert (doc.mask == 255 - m).all()
    doc.mask_operation("clear")
    assert not doc.mask.any()


@pytest.mark.parametrize("key,h,w,expect", [
    ("grow25", 400, 800, Margins(50, 100, 50, 100)),
    ("grow50", 400, 800, Margins(100, 200, 100, 200)),
    ("double", 400, 800, Margins(200, 400, 200, 400)),
    ("16:9", 400, 800, Margins(25, 0, 25, 0)),      # too wide: taller
    ("16:9", 400, 300, Margins(0, 206, 0, 206)),    # portrait: wider
    ("4:3", 300, 400, Margins(0, 0, 0, 0)),         # already 4:3
    ("1:1", 400, 800, Margins(200, 0, 200, 0)),
    ("none", 400, 800, Margins()),
])
def test_margin_presets(key, h, w, expect):
    m = preset_margins(key, h, w)
    assert m == expect
    if ":" in key:
        a, b = (int(v) for v in key.split(":"))
        ch, cw = m.canvas_size(h, w)
        assert abs(cw / ch - a / b) < 0.01


def test_margins_undo_and_merge(doc):
    doc.set_margins((10, 0, 0, 0))
    doc.set_margins((10, 5, 0, 0), merge_key=7)
    doc.set_margins((10, 6, 0, 0), merge_key=7)
    assert doc.undo_stack.count() == 2
    doc.undo_stack.undo()
    assert doc.margins == Margins(10, 0, 0, 0)
    img, msk = doc.canvas_arrays()
    assert img.shape == (130, 160, 3) and (msk[:10] == 255).all() and not msk[10:].any()
    doc.preview_margins((20, 0, 0, 0))
    doc.preview_margins((30, 0, 0, 0))
    doc.commit_margins(Margins(10, 0, 0, 0))
    assert doc.margins == Margins(30, 0, 0, 0)
    doc.undo_stack.undo()
    assert doc.margins == Margins(10, 0, 0, 0)


def test_project_round_trip_16bit(tmp_path, qapp):
    from inpaint_gui.ui.document import Document
    rng = np.random.default_rng(3)
    img = rng.integers(0, 65535, (40, 50, 3), dtype=np.uint16)
    alpha = rng.integers(0, 65535, (40, 50), dtype=np.uint16)
    d = Document()
    d.set_image_data(img, alpha, path=str(tmp_path / "src.png"), exif=b"Exif\x00\x00xx",
                     icc=b"icc-bytes")
    d.apply_mask_region((4, 3, 30, 20), np.full((26, 17), 200, np.uint8), "m")
    d.set_margins((1, 2, 3, 4))
    res = ResultEntry(image=rng.integers(0, 65535, (44, 56, 3), dtype=np.uint16),
                      name="LaMa", meta={"model": "lama", "t": 1.5})
    d.add_result(res)
    d.extra["models"] = {"last": "lama"}
    p = tmp_path / "work.inpaint"
    d.save_project(str(p))
    assert not d.is_modified()
    assert os.listdir(tmp_path) == ["work.inpaint"]  # no temporary file left
    d2 = Document()
    d2.load_project(str(p))
    assert d2.image.dtype == np.uint16 and np.array_equal(d2.image, img)
    assert np.array_equal(d2.alpha, alpha)
    assert np.array_equal(d2.mask, d.mask)
    assert d2.margins == Margins(1, 2, 3, 4)
    assert d2.exif == b"Exif\x00\x00xx" and d2.icc == b"icc-bytes"
    assert len(d2.results) == 1 and d2.results[0].name == "LaMa"
    assert np.array_equal(d2.results[0].image, res.image)
    assert d2.results[0].meta == {"model": "lama", "t": 1.5}
    assert d2.extra == {"models": {"last": "lama"}}
    assert d2.project_path == str(p) and not d2.is_modified()


def test_project_is_written_atomically(tmp_path, qapp, monkeypatch):
    from inpaint_gui.core import project as P
    from inpaint_gui.ui.document import Document
    d = Document()
    d.set_image_data(np.zeros((8, 8, 3), np.uint8))
    p = tmp_path / "a.inpaint"
    d.save_project(str(p))
    before = p.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(P, "_encode_png", boom)
    with pytest.raises(P.ProjectError):
        save_project(str(p), d.to_project_state())
    assert p.read_bytes() == before
    assert [f for f in os.listdir(tmp_path) if f != "a.inpaint"] == []
    assert load_project(str(p)).image.shape == (8, 8, 3)


def test_16bit_image_file_stays_16bit(tmp_path, qapp):
    import cv2
    from inpaint_gui.ui.document import Document
    img = (np.arange(30 * 20 * 3).reshape(30, 20, 3) * 37 % 65536).astype(np.uint16)
    path = str(tmp_path / "deep.png")
    cv2.imwrite(path, img[..., ::-1])
    d = Document()
    d.load_image(path)
    assert d.image.dtype == np.uint16 and np.array_equal(d.image, img)
    d.apply_mask_region((0, 0, 5, 5), np.full((5, 5), 255, np.uint8), "m")
    out = str(tmp_path / "out.png")
    d.save_result(out)
    back = cv2.imread(out, cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and np.array_equal(back[..., ::-1], img)


def test_accept_result_outpaint_and_undo(doc):
    doc.set_margins((4, 6, 2, 0))
    doc.apply_mask_region((0, 0, 10, 10), np.full((10, 10), 255, np.uint8), "m")
    old_img, old_mask = doc.image, doc.mask.copy()
    ch, cw = doc.canvas_shape()
    res = ResultEntry(image=np.full((ch, cw, 3), 7, np.uint8), name="SRN")
    doc.add_result(res)
    assert doc.accept_result(res)
    assert doc.image.shape == (ch, cw, 3) and doc.margins.is_zero() and res.accepted
    # the run filled the margins: the mask painted inside the image stays for a later run
    keep = np.zeros((ch, cw), np.uint8)
    keep[4:14, 6:16] = 255
    assert np.array_equal(doc.mask, keep)
    assert doc.undo_stack.count() == 3  # margins, mask, the accept (one item)
    doc.undo_stack.undo()
    assert doc.image is old_img and np.array_equal(doc.mask, old_mask)
    assert doc.margins == Margins(4, 6, 2, 0) and not res.accepted
    doc.undo_stack.redo()
    assert doc.image.shape == (ch, cw, 3)


def test_accept_result_in_place_is_one_patch_item(doc):
    """Same size: the pixels change only where the run filled, that part of the mask is
    cleared (a stroke painted during the run stays), all as ONE undo item of patches."""
    orig, rng = doc.image, np.random.default_rng(7)
    run_mask = np.zeros(doc.mask.shape, np.uint8)
    run_mask[20:40, 30:70] = 255
    doc.set_mask(run_mask, "run mask")
    doc.apply_mask_region((90, 100, 100, 120), np.full((10, 20), 255, np.uint8), "later")
    mask_before = doc.mask.copy()
    res = ResultEntry(image=rng.integers(0, 255, orig.shape, dtype=np.uint8), name="AOT")
    doc.add_result(res)
    assert doc.accept_result(res, opacity=1.0, run_mask=run_mask)
    sel = run_mask > 0
    assert np.array_equal(doc.image[sel], res.image[sel])
    assert np.array_equal(doc.image[~sel], orig[~sel]) and doc.image is not orig
    assert not doc.mask[sel].any() and doc.mask[90:100, 100:120].all()
    assert res.accepted and doc.undo_stack.count() == 3
    cmd = doc.undo_stack.command(2)
    patches = [cmd.child(i).patch for i in range(cmd.childCount()) if hasattr(cmd.child(i), "patch")]
    assert sorted(p.bbox for p in patches) == [(20, 30, 40, 70), (20, 30, 40, 70)]
    doc.undo_stack.undo()
    assert np.array_equal(doc.image, orig) and np.array_equal(doc.mask, mask_before)
    assert not res.accepted
    doc.undo_stack.redo()
    assert np.array_equal(doc.image[sel], res.image[sel]) and res.accepted
    # half opacity blends; a result equal to the image changes nothing and adds no item
    doc.undo_stack.undo()
    assert doc.accept_result(res, opacity=0.5, run_mask=run_mask)
    want = np.rint(orig[sel].astype(np.float32) * 0.5 + res.image[sel] * 0.5)
    assert np.array_equal(doc.image[sel], want.astype(np.uint8))
    same = ResultEntry(image=doc.image.copy(), name="same")
    assert not doc.accept_result(same) and doc.undo_stack.count() == 3
    with pytest.raises(ValueError):
        doc.accept_result(ResultEntry(image=np.zeros((7, 9, 3), np.uint8)))


def test_project_stores_the_source_file_instead_of_reencoding(tmp_path, qapp):
    import zipfile

    import cv2
    from inpaint_gui.ui.document import Document
    rng = np.random.default_rng(4)
    src = str(tmp_path / "photo.jpg")
    cv2.imwrite(src, rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    d = Document()
    d.load_image(src)
    loaded = d.image.copy()
    d.apply_mask_region((2, 1, 12, 10), np.full((10, 9), 255, np.uint8), "m")
    p = str(tmp_path / "a.inpaint")
    d.save_project(p)
    names = zipfile.ZipFile(p).namelist()
    assert "source.bin" in names and "image.png" not in names
    d2 = Document()
    d2.load_project(p)
    assert np.array_equal(d2.image, loaded) and np.array_equal(d2.mask, d.mask)
    # after accepting a result the working image is stored losslessly, the original as source
    res = ResultEntry(image=np.full_like(loaded, 9), name="r")
    d2.accept_result(res)
    p2 = str(tmp_path / "b.inpaint")
    d2.save_project(p2)
    names = zipfile.ZipFile(p2).namelist()
    assert "image.png" in names and "original.png" not in names
    d3 = Document()
    d3.load_project(p2)
    assert (d3.image == 9).all() and np.array_equal(d3.original, loaded)
    assert d3.results[0].accepted
