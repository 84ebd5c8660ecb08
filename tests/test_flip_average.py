"""Flip averaging: a weight set (the AOT-GAN starter) can ask the pipeline to average each fill
with the fill of the mirrored window, mirrored back; the loader option ``flip_average``
overrides it."""
import numpy as np
import pytest

from inpaint_gui import engine
from inpaint_gui.engine.models.base import InpaintModel
from inpaint_gui.engine.registry import get_spec
from inpaint_gui.engine.settings import SettingsError

RED, BLUE = (200, 30, 40), (20, 60, 220)


class _FromTheLeft(InpaintModel):
    """Fills each hole row with the known pixel to its left (the window's first column when
    there is none): a one-sided guess, as a network's can be. Records the windows it sees."""

    def __init__(self, flip_average):
        super().__init__(get_spec("aot"))
        self.flip_average = flip_average
        self.seen = []

    def predict(self, image, mask):
        self.seen.append(image.copy())
        out = image.copy()
        for y, x in zip(*np.nonzero(mask > 0.5)):
            out[y, x] = out[y, x - 1] if x > 0 else image[y, 0]
        return out


def _halves(h=40, w=62):
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2], img[:, w // 2:] = RED, BLUE
    mask = np.zeros((h, w), np.uint8)
    mask[10:30, 21:41] = 255
    return img, mask


@pytest.mark.parametrize("flip", [False, True])
def test_the_fill_is_the_mean_of_the_window_and_its_mirror(flip):
    img, mask = _halves()
    model = _FromTheLeft(flip)
    out = engine.inpaint(img, mask, model=model, strategy="original")
    hole = mask > 0
    np.testing.assert_array_equal(out[~hole], img[~hole])
    # one forward per window, two when averaging; the second sees the window mirrored (padded
    # to the model's multiple of 4 on its own right side: 62 -> 64 columns)
    assert len(model.seen) == (2 if flip else 1)
    assert all(s.shape == (40, 64, 3) for s in model.seen)
    expect = (np.add(RED, BLUE) / 2 + 0.5).astype(np.uint8) if flip else np.uint8(RED)
    np.testing.assert_array_equal(out[hole], np.broadcast_to(expect, (int(hole.sum()), 3)))
    if flip:
        np.testing.assert_allclose(model.seen[1][:, :62], model.seen[0][:, :62][:, ::-1], atol=1e-7)


def test_with_it_the_starter_fills_a_mirrored_photo_as_the_mirror_of_its_fill():
    """The network alone is not mirror-symmetric; averaged with its mirror, it is."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:96, 0:120].astype(np.float32)
    img = np.stack([120 + 80 * np.sin(x / 11), 90 + 60 * np.cos(y / 9), 60 + x], -1)
    img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    mask = np.zeros(img.shape[:2], np.uint8)
    mask[30:70, 20:65] = 255

    def both(**opt):
        model = engine.load_model("aot", weights="aot:starter", patch_detail=0, **opt)
        a = engine.inpaint(img, mask, model=model).astype(int)
        b = engine.inpaint(img[:, ::-1].copy(), mask[:, ::-1].copy(), model=model)[:, ::-1].astype(int)
        return np.abs(a - b).max()

    assert both(flip_average=True) <= 1
    assert both(flip_average=False) > 8


def test_the_weight_set_asks_and_the_option_overrides():
    spec = get_spec("aot")
    assert spec.weight_set("starter").flip_average
    assert not any(ws.flip_average for ws in spec.weight_sets if ws.kind == "official")
    assert engine.load_model("aot", weights="aot:starter").flip_average is True
    assert engine.load_model("aot", weights="aot:starter", flip_average="false").flip_average is False
    assert engine.load_model("rfr", weights="rfr:starter").flip_average is True
    assert engine.load_model("rfr", weights="rfr:starter", flip_average=0).flip_average is False
    assert not any(ws.flip_average for ws in get_spec("rfr").weight_sets if ws.kind == "official")
    with pytest.raises(SettingsError, match="flip_average"):
        engine.load_model("aot", weights="aot:starter", flip_average="sometimes")
