"""Patch detail: a smooth learned fill gets the photo's own fine grain from a PatchMatch fill of
the same hole (:func:`pipeline.patch_detailed`); a weight set asks for a share of it, the loader
option ``patch_detail`` (percent) overrides that."""
import sys

import cv2
import numpy as np
import pytest

from inpaint_gui import engine
from inpaint_gui.engine.models.base import InpaintModel
from inpaint_gui.engine.pipeline import DETAIL_RAMP, patch_detailed
from inpaint_gui.engine.registry import get_spec
from inpaint_gui.engine.settings import SettingsError
from inpaint_gui.engine.texture import gradient_energy

needs_patchmatch = pytest.mark.skipif(sys.version_info < (3, 11), reason="pypatchmatch needs Python 3.11+")


def _grainy(h=96, w=128, seed=0) -> np.ndarray:
    """uint8 RGB: a smooth colour ramp under strong pixel grain (gravel, grass at a distance)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([90 + 60 * x / w, 110 + 40 * y / h, 70 + 30 * (x + y) / (h + w)], -1)
    grain = cv2.GaussianBlur(rng.normal(0, 22, (h, w)).astype(np.float32), (0, 0), 0.8)
    return np.clip(base + grain[..., None], 0, 255).astype(np.uint8)


def _hole(h=96, w=128) -> np.ndarray:
    hole = np.zeros((h, w), bool)
    hole[28:68, 36:92] = True
    return hole


class _SmoothFill(InpaintModel):
    """Fills the hole with a heavy blur of the picture around it: the mean colour, no grain
    (what an L1-trained network gives deep inside a large hole)."""

    def __init__(self, patch_detail):
        super().__init__(get_spec("aot"))
        self.patch_detail = patch_detail

    def predict(self, image, mask):
        hole = mask > 0.5
        known = np.where(hole[..., None], 0, image).astype(np.float32)
        w = cv2.GaussianBlur((~hole).astype(np.float32), (0, 0), 12)[..., None]
        smooth = cv2.GaussianBlur(known, (0, 0), 12) / np.maximum(w, 1e-6)
        return np.where(hole[..., None], smooth, image).astype(np.float32)


def _depth(hole):
    """Distance (px) of each hole pixel to the nearest known one, as the grain's ramp counts it."""
    return cv2.distanceTransform(np.pad(hole.astype(np.uint8), 1), cv2.DIST_L2, 3)[1:-1, 1:-1]


@needs_patchmatch
@pytest.mark.parametrize("pct", [0, 100])
def test_a_smooth_fill_gets_the_photos_grain(pct):
    img, hole = _grainy(), _hole()
    mask = hole.astype(np.uint8) * 255
    out = engine.inpaint(img, mask, model=_SmoothFill(pct / 100))
    np.testing.assert_array_equal(out[~hole], img[~hole])
    # past the ramp from the hole's edge the fill gets the whole grain
    deep = hole & (_depth(hole) >= DETAIL_RAMP)
    assert deep.sum() > 100
    texture = gradient_energy(out, deep) / gradient_energy(img, deep)
    smooth = engine.inpaint(img, mask, model=_SmoothFill(0.0))
    if pct == 0:
        np.testing.assert_array_equal(out, smooth)
        assert texture < 0.3  # the smooth fill's own colour ramp
    else:
        assert 0.6 < texture < 1.4
        # fine grain only: the fill's colour stays the network's
        drift = np.abs(out[hole].astype(float).mean(0) - smooth[hole].astype(float).mean(0))
        assert drift.max() < 2.0


@needs_patchmatch
def test_grain_fades_in_from_the_hole_edge_and_scales_with_strength():
    img, hole = _grainy(seed=1), _hole()
    img01 = img.astype(np.float32) / 255
    pred = _SmoothFill(0).predict(img01, hole.astype(np.float32))
    full = patch_detailed(pred, img01, hole, 1.0) - pred
    half = patch_detailed(pred, img01, hole, 0.5) - pred
    np.testing.assert_array_equal(full[~hole], 0)
    unclipped = (np.abs(full) < 0.2).all(-1) & hole
    assert unclipped.mean() > 0.5 * hole.mean()
    np.testing.assert_allclose(half[unclipped], 0.5 * full[unclipped], atol=2e-6)
    dist = _depth(hole)
    edge = hole & (dist <= 1.5)
    deep = hole & (dist >= DETAIL_RAMP)
    # the network is closest to the photo next to known pixels: little grain there
    assert np.abs(full[edge]).mean() < 0.35 * np.abs(full[deep]).mean()
    # the grain is the high-pass of patches from this photo: as strong as the photo's own
    photo_hp = img01 - cv2.GaussianBlur(img01, (0, 0), 3.0)
    ratio = full[deep].std() / photo_hp[~hole].std()
    assert 0.6 < ratio < 1.4


def test_without_patchmatch_the_fill_is_left_as_it_is(no_patchmatch):
    img, hole = _grainy(), _hole()
    mask = hole.astype(np.uint8) * 255
    np.testing.assert_array_equal(engine.inpaint(img, mask, model=_SmoothFill(1.0)),
                                  engine.inpaint(img, mask, model=_SmoothFill(0.0)))


def test_the_weight_set_asks_and_the_option_overrides():
    spec = get_spec("aot")
    assert all(ws.patch_detail == 0 for ws in spec.weight_sets if ws.kind == "official")
    starter = spec.weight_set("starter").patch_detail
    assert 0 < starter <= 100
    assert engine.load_model("aot", weights="aot:starter").patch_detail == starter / 100
    assert engine.load_model("aot", weights="aot:starter", patch_detail="0").patch_detail == 0
    # -1 (the Models panel's "weights' own") keeps the set's share
    assert engine.load_model("aot", weights="aot:starter", patch_detail=-1).patch_detail == starter / 100
    assert engine.load_model("aot", weights="aot:starter", patch_detail=35).patch_detail == 0.35
    for bad in (150, -5, "lots", 12.5):
        with pytest.raises(SettingsError, match="patch_detail"):
            engine.load_model("aot", weights="aot:starter", patch_detail=bad)


@needs_patchmatch
def test_no_grain_where_the_patches_show_something_else():
    """The network continued a white object into the hole; the photo's patches are green
    grass: their grain is not put on the white (it would look like grass through a ghost)."""
    img, hole = _grainy(seed=2), _hole()
    img01 = img.astype(np.float32) / 255
    pred = _SmoothFill(0).predict(img01, hole.astype(np.float32))
    white = pred.copy()
    white[hole] = np.float32([0.95, 0.95, 0.93])
    added_white = np.abs(patch_detailed(white, img01, hole, 1.0) - white)[hole].mean()
    added_same = np.abs(patch_detailed(pred, img01, hole, 1.0) - pred)[hole].mean()
    assert added_white < 0.02 * added_same


def test_the_learned_models_offer_it_and_the_classical_do_not():
    for name in ("aot", "rfr", "lama", "pennet"):
        opt = {o.key: o for o in get_spec(name).user_options}["patch_detail"]
        assert (opt.default, opt.minimum, opt.maximum) == (-1, -1, 100) and opt.special
    for name in ("telea", "ns", "patchmatch"):
        assert "patch_detail" not in {o.key for o in get_spec(name).user_options}


@needs_patchmatch
def test_large_holes_take_their_patches_from_a_smaller_window(monkeypatch):
    """PatchMatch cannot be cancelled part-way: its work is bounded by the hole's pixels."""
    import inpaint_gui.engine.pipeline as P
    from inpaint_gui.engine.models.patchmatch import PatchMatchModel

    seen = []
    real = PatchMatchModel.predict
    monkeypatch.setattr(PatchMatchModel, "predict",
                        lambda self, image, mask: seen.append(mask.shape) or real(self, image, mask))
    img, hole = _grainy(), _hole()
    img01 = img.astype(np.float32) / 255
    pred = _SmoothFill(0).predict(img01, hole.astype(np.float32))
    monkeypatch.setattr(P, "DETAIL_MAX_HOLE_PIXELS", int(hole.sum()) // 4)
    out = patch_detailed(pred, img01, hole, 1.0)
    assert seen == [(48, 64)]  # half the sides: a quarter of the hole's pixels
    assert out.shape == pred.shape and (out[hole] != pred[hole]).any()
    np.testing.assert_array_equal(out[~hole], pred[~hole])
    monkeypatch.setattr(P, "DETAIL_MAX_HOLE_PIXELS", int(hole.sum()))
    patch_detailed(pred, img01, hole, 1.0)
    assert seen[-1] == hole.shape
