"""The pipeline: strategies, padding, compositing, progress and cancel."""
import numpy as np
import pytest

from inpaint_gui.engine import CancelToken, Cancelled, HDStrategy, MaskSizeError, inpaint
from inpaint_gui.engine.models.base import InpaintModel
from inpaint_gui.engine.pipeline import crop_windows, merge_boxes, tile_windows
from inpaint_gui.engine.registry import ModelSpec


class RecordingModel(InpaintModel):
    """Fills with a constant and records every window it was given."""

    def __init__(self, pad_mod=8, min_size=1, square=False, max_size=None, native=64, value=0.5):
        spec = ModelSpec(name="fake", title="Fake", task="inpaint", native_size=native,
                         pad_mod=pad_mod, min_size=min_size, square=square, max_size=max_size,
                         needs_weights=False)
        super().__init__(spec)
        self.calls = []
        self.value = value

    def predict(self, image, mask):
        assert image.dtype == np.float32 and mask.dtype == np.float32
        assert image.shape[:2] == mask.shape
        assert 0.0 <= image.min() and image.max() <= 1.0
        self.calls.append((image.copy(), mask.copy()))
        return np.full(image.shape, self.value, np.float32)


def _photo(h, w, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    maxv = 255 if dtype == np.uint8 else 65535
    return rng.integers(0, maxv + 1, size=(h, w, 3)).astype(dtype)


def _blob_mask(h, w, boxes):
    m = np.zeros((h, w), np.uint8)
    for y0, x0, y1, x1 in boxes:
        m[y0:y1, x0:x1] = 255
    return m


STRATS = [HDStrategy("original"), HDStrategy("resize", resize_limit=128),
          HDStrategy("crop", crop_trigger=100, crop_margin=16),
          HDStrategy("tile", tile_size=64, tile_overlap=16)]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("strategy", STRATS, ids=lambda s: s.name)
@pytest.mark.parametrize("model", ["telea", "ns", "fake"])
@pytest.mark.parametrize("size", [(97, 131), (200, 150)])
def test_unmasked_pixels_byte_identical(dtype, strategy, model, size):
    h, w = size
    img = _photo(h, w, dtype)
    mask = _blob_mask(h, w, [(10, 12, 30, 50), (60, 70, 90, 120)])
    mask[0:3, 0:5] = 255  # touches the border
    mask[40:44, 2:6] = 100  # soft edge
    m = RecordingModel() if model == "fake" else model
    out = inpaint(img, mask, model=m, strategy=strategy)
    assert out.dtype == img.dtype and out.shape == img.shape
    keep = mask == 0
    assert np.array_equal(out[keep], img[keep])
    assert not np.array_equal(out[mask == 255], img[mask == 255])


def test_fake_fill_value_and_soft_alpha():
    img = np.full((40, 40, 3), 200, np.uint8)
    mask = np.zeros((40, 40), np.uint8)
    mask[5:10, 5:10] = 255
    mask[20:25, 20:25] = 51  # 20 % fill
    out = inpaint(img, mask, model=RecordingModel(value=0.0), strategy="original")
    assert (out[5:10, 5:10] == 0).all()
    assert (out[20:25, 20:25] == 160).all()  # 200 * 0.8


def test_uint16_fill_keeps_16bit_precision():
    img = np.full((32, 32, 3), 40000, np.uint16)
    mask = _blob_mask(32, 32, [(8, 8, 16, 16)])
    out = inpaint(img, mask, model=RecordingModel(value=0.5), strategy="original")
    assert out.dtype == np.uint16
    assert (out[8:16, 8:16] == 32768).all()


def test_padding_to_constraints_and_crop_back():
    img = _photo(50, 70)
    mask = _blob_mask(50, 70, [(10, 10, 20, 20)])
    fake = RecordingModel(pad_mod=16, square=True, min_size=96)
    inpaint(img, mask, model=fake, strategy="original")
    (seen, seen_mask), = fake.calls
    assert seen.shape == (96, 96, 3) and seen_mask.shape == (96, 96)
    # the original pixels are at the top-left, the padding is bottom/right
    assert np.allclose(seen[:50, :70], img / 255.0, atol=1e-6)
    assert seen_mask[:50, :70].sum() == 100


def test_crop_model_only_sees_windows_covering_the_mask():
    h, w = 600, 900
    img = _photo(h, w)
    boxes = [(100, 100, 130, 140), (400, 700, 450, 760), (5, 860, 25, 900)]
    mask = _blob_mask(h, w, boxes)
    fake = RecordingModel(pad_mod=1)
    strat = HDStrategy("crop", crop_trigger=400, crop_margin=32, resize_limit=4000)
    out = inpaint(img, mask, model=fake, strategy=strat)
    windows = crop_windows(mask, 32)
    assert len(fake.calls) == len(windows) == 3
    for (y0, x0, y1, x1), (seen, seen_mask) in zip(windows, fake.calls):
        assert seen.shape[:2] == (y1 - y0, x1 - x0)
        assert np.allclose(seen, img[y0:y1, x0:x1] / 255.0, atol=1e-6)
        assert seen.shape[0] < h and seen.shape[1] < w
    # every masked pixel is inside some window, and all got filled
    covered = np.zeros_like(mask, bool)
    for y0, x0, y1, x1 in windows:
        covered[y0:y1, x0:x1] = True
    assert covered[mask > 0].all()
    assert (out[mask > 0] == 128).all()


def test_crop_window_shifted_inward_at_border_keeps_size():
    mask = np.zeros((300, 300), np.uint8)
    mask[0:10, 290:300] = 255
    (y0, x0, y1, x1), = crop_windows(mask, 50)
    assert (y0, y1) == (0, 110) and (x0, x1) == (190, 300)


def test_crop_windows_merge_when_overlapping():
    assert merge_boxes([(0, 0, 10, 10), (5, 5, 20, 20), (30, 30, 40, 40)]) == [
        (0, 0, 20, 20), (30, 30, 40, 40)]
    mask = _blob_mask(400, 400, [(100, 100, 110, 110), (130, 130, 140, 140)])
    assert len(crop_windows(mask, 40)) == 1


def test_resize_strategy_downscales_for_model():
    img = _photo(400, 600)
    mask = _blob_mask(400, 600, [(100, 100, 200, 300)])
    fake = RecordingModel(pad_mod=1)
    out = inpaint(img, mask, model=fake, strategy=HDStrategy("resize", resize_limit=150))
    (seen, _), = fake.calls
    assert max(seen.shape[:2]) == 150
    assert np.array_equal(out[mask == 0], img[mask == 0])
    assert (out[mask > 0] == 128).all()


def test_max_size_caps_working_size():
    img = _photo(256, 256)
    mask = _blob_mask(256, 256, [(10, 10, 200, 200)])
    fake = RecordingModel(pad_mod=1, max_size=64)
    inpaint(img, mask, model=fake, strategy="original")
    assert max(fake.calls[0][0].shape[:2]) == 64


def test_tile_strategy_on_mask_larger_than_native_size():
    h, w = 300, 400
    img = _photo(h, w)
    mask = _blob_mask(h, w, [(20, 20, 280, 380)])  # far larger than a 64 px tile
    fake = RecordingModel(pad_mod=1, native=32)
    out = inpaint(img, mask, model=fake, strategy=HDStrategy("tile", tile_size=64, tile_overlap=16))
    assert len(fake.calls) > 4
    for seen, _ in fake.calls:
        assert seen.shape[0] <= 64 and seen.shape[1] <= 64
    # later tiles see earlier fills as known context: some tile has masked area < its overlap area
    assert any(sm.mean() < 1.0 for _, sm in fake.calls[1:])
    assert (out[mask > 0] == 128).all()
    assert np.array_equal(out[mask == 0], img[mask == 0])
    tiles = tile_windows(mask, 64, 16)
    covered = np.zeros_like(mask, bool)
    for y0, x0, y1, x1 in tiles:
        covered[y0:y1, x0:x1] = True
    assert covered[mask > 0].all()


def test_empty_mask_returns_image_unchanged():
    img = _photo(20, 30)
    out = inpaint(img, np.zeros((20, 30), np.uint8), model="telea")
    assert np.array_equal(out, img) and out is not img


def test_mask_size_mismatch_is_clear():
    with pytest.raises(MaskSizeError, match="30x20"):
        inpaint(_photo(20, 30), np.zeros((21, 30), np.uint8), model="telea")


def test_unknown_model_is_clear():
    with pytest.raises(KeyError, match="available"):
        inpaint(_photo(20, 30), np.full((20, 30), 255, np.uint8), model="nope")


def test_progress_reports_and_cancel_between_windows():
    img = _photo(600, 900)
    mask = _blob_mask(600, 900, [(100, 100, 130, 140), (400, 700, 450, 760)])
    events = []
    inpaint(img, mask, model="telea", strategy=HDStrategy("crop", crop_trigger=400),
            progress=events.append)
    assert any("window 1/2" in e.stage for e in events)
    assert events[-1].fraction == 1.0

    token = CancelToken()

    def cancel_after_first(ev):
        if "window 2/2" in ev.stage:
            token.cancel()

    with pytest.raises(Cancelled):
        inpaint(img, mask, model="telea", strategy=HDStrategy("crop", crop_trigger=400),
                progress=cancel_after_first, cancel=token)


def test_telea_actually_fills_smoothly():
    # a smooth gradient with a hole: Telea's fill must be close to the gradient
    y, x = np.mgrid[0:64, 0:64]
    img = np.stack([x * 3, y * 3, (x + y) * 1.5], -1).astype(np.uint8)
    mask = _blob_mask(64, 64, [(28, 28, 36, 36)])
    broken = img.copy()
    broken[mask > 0] = 0
    out = inpaint(broken, mask, model="telea", strategy="original")
    err = np.abs(out.astype(int) - img.astype(int))[mask > 0]
    assert err.mean() < 6
