"""PSNR / SSIM / L1 against hand-computed values."""
import math

import numpy as np
import pytest
import torch

from inpaint_gui.training import metrics as MT


def test_identical_images():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    assert MT.psnr(a, a) == float("inf")
    assert MT.ssim(a, a) == 1.0 or abs(MT.ssim(a, a) - 1.0) < 1e-12
    assert MT.l1(a, a) == 0.0


def test_psnr_known_noise():
    a = np.full((16, 16), 0.5)
    noise = np.where((np.indices((16, 16)).sum(0) % 2) == 0, 0.1, -0.1)
    assert abs(MT.mse(a, a + noise) - 0.01) < 1e-12
    assert abs(MT.psnr(a, a + noise) - 20.0) < 1e-9
    assert abs(MT.l1(a, a + noise) - 0.1) < 1e-12
    # uint8: one grey level off everywhere -> 20 log10(255)
    u = np.full((8, 8, 3), 100, np.uint8)
    assert abs(MT.psnr(u, u + 1) - 20 * math.log10(255)) < 1e-9
    # masked metrics only look inside the mask
    b = a.copy()
    b[:4] += 0.2
    hole = np.zeros((16, 16), bool)
    hole[:4] = True
    assert abs(MT.l1(a, b, mask=hole) - 0.2) < 1e-12


def test_ssim_constant_images_luminance_only():
    a = np.full((20, 20), 0.2)
    b = np.full((20, 20), 0.4)
    c1 = (0.01) ** 2
    expect = (2 * 0.2 * 0.4 + c1) / (0.2 ** 2 + 0.4 ** 2 + c1)  # contrast/structure terms = C2/C2
    assert abs(MT.ssim(a, b) - expect) < 1e-12


def test_ssim_noise_decreases_and_torch_matches_numpy():
    rng = np.random.default_rng(1)
    a = rng.random((2, 3, 24, 28))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    s_np = [MT.ssim(a[i].transpose(1, 2, 0), b[i].transpose(1, 2, 0)) for i in range(2)]
    assert all(0 < s < 0.99 for s in s_np)
    s_t = MT.ssim_torch(torch.from_numpy(a), torch.from_numpy(b), reduction="none").numpy()
    assert np.allclose(s_np, s_t, atol=1e-10)
    p = MT.psnr_torch(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    assert np.allclose(p, [MT.psnr(a[i], b[i]) for i in range(2)])


def test_all_metrics_keys():
    a = np.zeros((16, 16, 3), np.uint8)
    b = a.copy()
    b[:8] = 10
    hole = np.zeros((16, 16), np.uint8)
    hole[:8] = 1
    m = MT.all_metrics(b, a, hole)
    assert set(m) == {"psnr", "ssim", "l1", "l1_hole", "psnr_hole"}
    assert abs(m["l1_hole"] - 10 / 255) < 1e-12 and abs(m["l1"] - 5 / 255) < 1e-12


def _textured(seed=0, size=96):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size // 4, size // 4, 3)).astype(np.uint8)
    import cv2
    img = cv2.resize(base, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(img.astype(int) + rng.integers(-20, 21, img.shape), 0, 255).astype(np.uint8)


def test_hole_texture_orders_blur_below_original():
    import cv2
    img = _textured()
    hole = np.zeros(img.shape[:2], np.uint8)
    hole[20:76, 24:80] = 1
    assert MT.hole_texture(img, img, hole) == pytest.approx(1.0)
    fills = []
    for k in (5, 11, 31):
        blurred = img.copy()
        b = cv2.GaussianBlur(img, (k, k), 0)
        blurred[hole > 0] = b[hole > 0]
        fills.append(MT.hole_texture(blurred, img, hole))
    assert 0 < fills[2] < fills[1] < fills[0] < 0.9
    flat = img.copy()
    flat[hole > 0] = img[hole > 0].mean(0).astype(np.uint8)
    assert MT.hole_texture(flat, img, hole) < 0.05
    # noise added to the fill reads as more detail than the photo
    noisy = img.copy()
    noisy[hole > 0] = np.clip(img[hole > 0].astype(int) + np.random.default_rng(5).integers(-60, 61, ((hole > 0).sum(), 3)), 0, 255)
    assert MT.hole_texture(noisy, img, hole) > 1.0


def test_hole_texture_ignores_the_seam_and_tiny_holes():
    img = _textured(1)
    hole = np.zeros(img.shape[:2], np.uint8)
    hole[20:76, 24:80] = 1
    # a fill that is perfect except for a 2-px band along its border: the erosion (5 px) keeps
    # the band out of reach of the 5x5 Sobel window
    fill = img.copy()
    band = hole.copy()
    band[22:74, 26:78] = 0
    fill[band > 0] = 0
    assert MT.hole_texture(fill, img, hole) == pytest.approx(1.0)
    # a hole narrower than the erosion has no interior: nan, and all_metrics leaves the key out
    thin = np.zeros_like(hole)
    thin[40:48, :] = 1
    assert np.isnan(MT.hole_texture(fill, img, thin))
    assert "texture" not in MT.all_metrics(fill, img, thin)
    assert "texture" in MT.all_metrics(fill, img, hole)
