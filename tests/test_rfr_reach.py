"""RFR's reach into large holes: no dark core when a hole is deeper than the fixed recurrences reach.

The cause of the dark patches: RFR fills a hole from its border inwards, one partial-convolution
mask update at a time; after the fixed number of recurrences a hole deeper than
``RFRNet.reach()`` keeps a core with no features, which the tail turns into a dark flat square.
The adapter now recurs until the hole is covered (up to 3x the fixed count) and the pipeline
shrinks windows whose holes are deeper than that.
"""
from pathlib import Path

import numpy as np
import pytest
import torch

from inpaint_gui import engine
from inpaint_gui.engine.imageio import load_image
from inpaint_gui.engine.nets import create
from inpaint_gui.engine.pipeline import hole_depth, predict_window

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(kernel_size=5, channels=16, max_channels=128, recurrences=4, tail_channels=16, tail_planes=4)


def _square_hole(size, half):
    m = torch.ones(1, 3, size, size)
    s = size // 2 - half
    m[:, :, s:s + 2 * half, s:s + 2 * half] = 0
    return m


def _final_mask(net, mask):
    """The partial-convolution mask after the recurrences the network runs (1 = covered); the
    autograd path runs the layers as modules, so a hook sees every mask update."""
    seen = {}

    def hook(mod, inp, out):
        seen["m"] = out[1]
    h = net.Pconv22.register_forward_hook(hook)
    try:
        with torch.no_grad():
            net._forward_plain(torch.rand(mask.shape) * mask, mask)
    finally:
        h.remove()
    return seen["m"]


@pytest.mark.parametrize("kw", [TINY, {}], ids=["starter", "official"])
def test_reach_is_what_the_mask_updates_cover(kw):
    net = create("rfr", **kw).eval()
    r = net.reach()
    assert net.max_recurrences is None  # the network alone keeps the official fixed count
    size = 4 * r + 32
    size += -size % 16
    assert bool((_final_mask(net, _square_hole(size, r)) >= 1).all())
    assert bool((_final_mask(net, _square_hole(size, r + 2)) < 1).any())
    net.max_recurrences = 3 * net.recurrences
    assert bool((_final_mask(net, _square_hole(size, r + 2)) >= 1).all())
    assert net.reach(net.max_recurrences) > 2.5 * r


def test_extra_recurrences_leave_shallow_holes_unchanged():
    torch.manual_seed(0)
    net = create("rfr", **TINY).eval()
    mask = _square_hole(96, 12)  # covered within the fixed count
    x = torch.rand(1, 3, 96, 96) * mask
    with torch.no_grad():
        a, _ = net(x, mask)
        net.max_recurrences = 12
        b, _ = net(x, mask)
    assert torch.equal(a, b)


class _Recorder:
    """A model stand-in that records the window size it is given."""

    def __init__(self, reach):
        from inpaint_gui.engine.registry import get_spec
        self.spec = get_spec("rfr")
        self.hole_reach = reach
        self.seen = []

    def predict(self, image, mask):
        self.seen.append((mask.shape, hole_depth(mask)))
        return image


def test_pipeline_shrinks_windows_deeper_than_the_reach():
    img = np.random.default_rng(0).random((320, 320, 3)).astype(np.float32)
    mask = np.zeros((320, 320), np.float32)
    mask[60:260, 60:260] = 1  # depth 100
    assert hole_depth(mask) == pytest.approx(100, abs=1)
    rec = _Recorder(40)
    out = predict_window(rec, img, mask, limit=None)
    assert out.shape == img.shape
    (shape, depth), = rec.seen
    assert max(shape) <= 320 * 40 / 100 + 16 and depth <= 40 + 1
    rec = _Recorder(200)
    predict_window(rec, img, mask, limit=None)
    assert rec.seen[0][0] == (320, 320)  # within reach: full resolution


def _block_means(img, y0, y1, x0, x1):
    return np.array([img[y:y + 16, x:x + 16].reshape(-1, 3).mean(0)
                     for y in range(y0, y1 - 15, 16) for x in range(x0, x1 - 15, 16)])


def _cows_case():
    img = load_image(ROOT / "resources" / "samples" / "cows.jpg").rgb
    mask = np.zeros(img.shape[:2], np.uint8)
    y0, y1, x0, x1 = 255, 371, 780, 906  # rows 255-370, columns 780-905: grass behind the big cow
    mask[y0:y1, x0:x1] = 255
    return img, mask, (y0, y1, x0, x1)


def _worst_block(out, img, box):
    """(largest distance of a 16x16 fill block's mean colour from the ring's mean colour, bound).

    Ring: the 16 px around the hole. Bound: 1.1 x the distance of the ring's own most extreme
    16x16 block from that mean -- a fill may hold any colour its surroundings show (grass, the
    cow's white and black coat), not something darker or more off-colour than all of them."""
    y0, y1, x0, x1 = box
    f = img.astype(np.float64)
    ring = np.zeros(img.shape[:2], bool)
    ring[y0 - 16:y1 + 16, x0 - 16:x1 + 16] = True
    ring[y0:y1, x0:x1] = False
    mean = f[ring].mean(0)
    ring_blocks = np.concatenate([_block_means(f, y0 - 16, y0, x0 - 16, x1 + 16),
                                  _block_means(f, y1, y1 + 16, x0 - 16, x1 + 16),
                                  _block_means(f, y0, y1, x0 - 16, x0), _block_means(f, y0, y1, x1, x1 + 16)])
    bound = 1.1 * np.linalg.norm(ring_blocks - mean, axis=1).max()
    fill = _block_means(out.astype(np.float64), y0, y1, x0, x1)
    return float(np.linalg.norm(fill - mean, axis=1).max()), float(bound)


def test_cows_rfr_fill_has_no_dark_or_off_colour_patch():
    img, mask, box = _cows_case()
    model = engine.load_model("rfr", device="cpu")
    out = engine.inpaint(img, mask, model=model)
    assert np.array_equal(out[mask == 0], img[mask == 0])
    worst, bound = _worst_block(out, img, box)
    assert worst <= bound, (worst, bound)
    # the same weights with the fixed recurrence count leave the dark core the test catches
    model.net.max_recurrences = None
    model.hole_reach = None
    worst_fixed, _ = _worst_block(engine.inpaint(img, mask, model=model), img, box)
    assert worst_fixed > bound, (worst_fixed, bound)
