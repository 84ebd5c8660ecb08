"""Seam matching: a starter's fill meets the photo at the hole's edge (Poisson at the model's
resolution), which removes a small network's colour / brightness bias; the official weights'
fills are left as the network gives them."""
from pathlib import Path

import numpy as np
import pytest

from inpaint_gui import engine
from inpaint_gui.engine.models.base import InpaintModel
from inpaint_gui.engine.pipeline import seam_matched
from inpaint_gui.engine.registry import get_spec

ROOT = Path(__file__).resolve().parents[1]


def _photo(h=64, w=80, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([0.5 + 0.3 * np.sin(x / 9), 0.4 + 0.2 * np.cos(y / 7), (x + y) / (h + w)], -1)
    return np.clip(base + rng.normal(0, 0.02, base.shape), 0, 1).astype(np.float32)


def test_a_biased_fill_with_the_right_detail_comes_back():
    img = _photo()
    hole = np.zeros(img.shape[:2], bool)
    hole[20:44, 25:60] = True
    pred = img.copy()
    pred[hole] = img[hole] - np.float32([0.2, 0.1, -0.15])  # the photo's detail, wrong colour
    pred = np.clip(pred, -1, 2)  # keep the bias exact (no clipping of the test input)
    out = seam_matched(pred, img, hole)
    before = np.abs(pred[hole] - img[hole]).mean(0)
    after = np.abs(out[hole] - img[hole]).mean(0)
    np.testing.assert_allclose(before, [0.2, 0.1, 0.15], atol=1e-4)
    # what remains is the photo's grain across the hole's edge, which the fill cannot know
    assert after.max() < 0.015
    np.testing.assert_array_equal(out[~hole], pred[~hole])


def test_the_fill_keeps_its_own_structure():
    """Only a smooth correction is added: the fill's gradients inside the hole stay."""
    img = _photo()
    hole = np.zeros(img.shape[:2], bool)
    hole[16:48, 20:64] = True
    rng = np.random.default_rng(1)
    pred = img.copy()
    pred[hole] = np.clip(0.3 + rng.normal(0, 0.05, (int(hole.sum()), 3)), 0, 1)
    out = seam_matched(pred, img, hole)
    inner = np.zeros_like(hole)
    inner[24:40, 30:54] = True
    d_pred = np.diff(pred, axis=1)[inner[:, 1:] & inner[:, :-1]]
    d_out = np.diff(out, axis=1)[inner[:, 1:] & inner[:, :-1]]
    assert np.abs(d_out - d_pred).max() < 0.02 < np.abs(d_pred).mean()


class _DarkFill(InpaintModel):
    """Fills every hole with the input's detail at 60 % brightness (a biased network)."""

    def __init__(self, seam_match):
        super().__init__(get_spec("aot"))
        self.seam_match = seam_match

    def predict(self, image, mask):
        return np.where(mask[..., None] > 0.5, image * 0.6, image).astype(np.float32)


@pytest.mark.parametrize("seam", [True, False])
def test_pipeline_applies_it_when_the_model_asks(seam):
    img = np.zeros((96, 128, 3), np.uint8)
    img[:] = (230, 120, 30)
    img = np.clip(img + np.random.default_rng(0).integers(-4, 5, img.shape), 0, 255).astype(np.uint8)
    mask = np.zeros(img.shape[:2], np.uint8)
    mask[24:72, 40:100] = 255
    out = engine.inpaint(img, mask, model=_DarkFill(seam))
    np.testing.assert_array_equal(out[mask == 0], img[mask == 0])
    err = np.abs(out[mask > 0].astype(int).mean(0) - np.float64([230, 120, 30])).max()
    if seam:
        assert err < 3
    else:
        assert err > 40


def test_starter_sets_ask_for_it_official_files_do_not(tmp_path):
    import torch

    assert get_spec("aot").weight_set("starter").seam_match
    assert get_spec("rfr").weight_set("starter").seam_match
    assert not any(ws.seam_match for m in ("aot", "rfr") for ws in get_spec(m).weight_sets
                   if ws.kind == "official")
    assert engine.load_model("aot", weights="aot:starter").seam_match
    assert not engine.load_model("aot", weights="aot:starter", seam_match="0").seam_match
    # a file that is not a registered set (the user's own, an official download) is not touched
    sd = torch.load(ROOT / "models" / "aot_starter.pt", weights_only=True)
    sd = {k: v + 0 for k, v in sd.items()}
    f = tmp_path / "mine.pt"
    torch.save(sd, f)
    assert not engine.load_model("aot", weights=str(f)).seam_match
    assert engine.load_model("aot", weights=str(f), seam_match="1").seam_match
