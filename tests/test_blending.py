"""Seam treatment: only pixels inside the mask may change, for every mode and dtype."""
import cv2
import numpy as np
import pytest

from inpaint_gui.engine.blending import BlendSettings, apply_blend


def _scene(h=120, w=160, dtype=np.uint8, seed=0, noise=3.0):
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    img = np.dstack([40 + xx * 0.6, 30 + yy * 0.8, 90 + (xx + yy) * 0.2]) + rng.normal(0, noise, (h, w, 3))
    img = np.clip(img, 0, 255)
    if dtype == np.uint16:
        return np.rint(img * 257).astype(np.uint16)
    return np.rint(img).astype(np.uint8)


def _mask(h=120, w=160):
    m = np.zeros((h, w), np.uint8)
    cv2.circle(m, (60, 50), 22, 255, -1)
    m[95:105, 100:150] = 255
    m[:12, 140:] = 255  # touching the image border
    return m


def _filled(original, mask, offset):
    maxv = 65535 if original.dtype == np.uint16 else 255
    out = original.astype(np.int64)
    out[mask > 0] += offset
    return np.clip(out, 0, maxv).astype(original.dtype)


MODES = ["none", "feather", "poisson", "color"]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("mode", MODES)
def test_unmasked_pixels_byte_identical(mode, dtype):
    original = _scene(dtype=dtype)
    mask = _mask()
    scale = 257 if dtype == np.uint16 else 1
    filled = _filled(original, mask, 35 * scale)
    # even if the caller's "filled" differs outside the mask, the output does not
    filled_dirty = filled.copy()
    filled_dirty[0, 0] ^= 1
    out = apply_blend(original, filled_dirty, mask, BlendSettings(mode=mode, radius=6))
    assert out.dtype == dtype and out.shape == original.shape
    keep = mask == 0
    assert np.array_equal(out[keep], original[keep])
    assert out.tobytes() != original.tobytes() or mode == "none"


def test_soft_mask_pixels_count_as_hole_and_zero_stays():
    original = _scene()
    mask = _mask()
    mask[mask > 0] = 100  # soft
    filled = _filled(original, mask, 30)
    for mode in MODES:
        out = apply_blend(original, filled, mask, mode)
        assert np.array_equal(out[mask == 0], original[mask == 0])


def test_none_returns_composite():
    original = _scene()
    mask = _mask()
    filled = _filled(original, mask, 20)
    assert np.array_equal(apply_blend(original, filled, mask, None), filled)
    assert np.array_equal(apply_blend(original, filled, mask, "none"), filled)


def test_feather_ramps_from_the_edge():
    original = _scene()
    mask = np.zeros(original.shape[:2], np.uint8)
    mask[30:90, 40:120] = 255
    filled = _filled(original, mask, 60)
    out = apply_blend(original, filled, mask, BlendSettings("feather", radius=8)).astype(int)
    diff = (out - original.astype(int))[..., 0]
    # first row inside the hole is close to the original, deep inside is the full fill
    assert abs(diff[30, 80]) < 15
    assert diff[60, 80] == 60
    row = diff[30:60, 80]
    assert (np.diff(row) >= 0).all()
    # radius 0 changes nothing
    assert np.array_equal(apply_blend(original, filled, mask, BlendSettings("feather", 0)), filled)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_poisson_removes_a_constant_offset(dtype):
    # the fill has the right shading but is 40 levels too bright: Poisson keeps its gradients
    # and matches the surroundings, which recovers the original up to rounding (the seam
    # itself is asked to be flat, so on a smooth scene the error stays below the slope)
    original = _scene(dtype=dtype, seed=3, noise=0.0)
    mask = _mask()
    scale = 257 if dtype == np.uint16 else 1
    filled = _filled(original, mask, 40 * scale)
    out = apply_blend(original, filled, mask, "poisson")
    err = np.abs(out.astype(np.int64) - original.astype(np.int64))[mask > 0]
    assert err.max() <= 2 * scale
    assert err.mean() <= 0.5 * scale


def test_poisson_keeps_fill_texture_and_smooths_the_seam():
    original = _scene(seed=4)
    h, w = original.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    mask[30:90, 40:120] = 255
    yy, xx = np.mgrid[0:h, 0:w]
    texture = (20 * np.sin(xx / 3.0))[..., None]
    fill = np.clip(original.astype(float) * 0.6 + 90 + texture, 0, 255).astype(np.uint8)
    filled = np.where(mask[..., None] > 0, fill, original)
    out = apply_blend(original, filled, mask, "poisson").astype(float)
    inner = (slice(45, 75), slice(55, 105))
    # gradients of the fill survive inside the hole
    g_fill = np.diff(filled.astype(float)[inner], axis=1)
    g_out = np.diff(out[inner], axis=1)
    assert np.abs(g_fill - g_out).mean() < 1.5
    # the step across the seam is much smaller than with plain compositing
    step_before = np.abs(filled[29, 50:110].astype(float) - filled[30, 50:110]).mean()
    step_after = np.abs(out[29, 50:110] - out[30, 50:110]).mean()
    assert step_after < 0.3 * step_before


def test_color_matches_the_surroundings():
    original = _scene(seed=5)
    mask = np.zeros(original.shape[:2], np.uint8)
    mask[40:80, 50:110] = 255
    rng = np.random.default_rng(0)
    fill = np.clip(original.astype(float) * 0.5 + 100 + rng.normal(0, 2, original.shape), 0, 255)
    filled = np.where(mask[..., None] > 0, fill.astype(np.uint8), original)
    out = apply_blend(original, filled, mask, BlendSettings("color", radius=6)).astype(float)
    band = np.zeros_like(mask, bool)
    band[40:46, 50:110] = True
    ring = np.zeros_like(mask, bool)
    ring[34:40, 50:110] = True
    before = np.abs(filled[band].mean(0) - original[ring].mean(0)).max()
    after = np.abs(out[band].mean(0) - original[ring].mean(0)).max()
    assert after < 0.4 * before


def test_settings_validation():
    with pytest.raises(ValueError):
        BlendSettings(mode="smudge")
    with pytest.raises(ValueError):
        BlendSettings(mode="feather", radius=-1)
    original = _scene()
    with pytest.raises(ValueError):
        apply_blend(original, original[:10], _mask(), "poisson")


def test_whole_image_mask_and_empty_mask():
    original = _scene(40, 50)
    full = np.full((40, 50), 255, np.uint8)
    filled = _filled(original, full, 10)
    for mode in MODES:  # no surroundings to match: the fill stays as it is
        out = apply_blend(original, filled, full, mode)
        assert out.shape == original.shape
        if mode in ("poisson", "color"):
            assert np.array_equal(out, filled)
    empty = np.zeros((40, 50), np.uint8)
    for mode in MODES:
        assert np.array_equal(apply_blend(original, original, empty, mode), original)
