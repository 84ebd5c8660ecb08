"""PSNR / SSIM / L1 against hand-computed values."""
import math

import numpy as np
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
