"""Image quality metrics: PSNR, SSIM, L1 (numpy, for evaluation) and a differentiable SSIM (torch).

Conventions: images are HxW or HxWxC arrays; uint8 / uint16 inputs are scaled to [0, 1]
(data_range 1.0); float inputs are taken as they are with ``data_range`` (default 1.0).

SSIM follows Wang et al. 2004 as most papers report it (and as scikit-image computes it with
``gaussian_weights=True, use_sample_covariance=False, data_range=1``): an 11x11 Gaussian window
with sigma 1.5, K1 = 0.01, K2 = 0.03, evaluated on the "valid" region (no padding), averaged
over pixels and channels. No LPIPS/FID: no pretrained backbone is available offline.
"""
from __future__ import annotations

import math

import numpy as np

SSIM_WIN = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def to_float01(img: np.ndarray) -> np.ndarray:
    """uint8/uint16 -> float64 in [0, 1]; floats -> float64 unchanged."""
    a = np.asarray(img)
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float64) / 65535.0
    if a.dtype == np.bool_:
        return a.astype(np.float64)
    return a.astype(np.float64)


def _pair(a, b):
    a = to_float01(a)
    b = to_float01(b)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    return a, b


def mse(a, b, mask=None) -> float:
    a, b = _pair(a, b)
    d = (a - b) ** 2
    if mask is not None:
        return float(_masked_mean(d, mask))
    return float(d.mean())


def l1(a, b, mask=None) -> float:
    """Mean absolute error in [0, 1] units (optionally only where ``mask`` > 0)."""
    a, b = _pair(a, b)
    d = np.abs(a - b)
    if mask is not None:
        return float(_masked_mean(d, mask))
    return float(d.mean())


def _masked_mean(d: np.ndarray, mask) -> float:
    m = np.asarray(mask).astype(bool)
    if d.ndim == 3 and m.ndim == 2:
        m = np.broadcast_to(m[..., None], d.shape)
    n = m.sum()
    if n == 0:
        return float("nan")
    return float(d[m].sum() / n)


def psnr(a, b, data_range: float = 1.0, mask=None) -> float:
    """Peak signal-to-noise ratio in dB; ``inf`` for identical images."""
    m = mse(a, b, mask=mask)
    if m == 0:
        return float("inf")
    return 10.0 * math.log10(data_range * data_range / m)


def gaussian_window_1d(win: int = SSIM_WIN, sigma: float = SSIM_SIGMA) -> np.ndarray:
    x = np.arange(win, dtype=np.float64) - (win - 1) / 2.0
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of a 2-D float64 array with the 1-D window ``g``."""
    k = len(g)
    h, w = x.shape
    if h < k or w < k:
        raise ValueError(f"image {h}x{w} is smaller than the SSIM window {k}")
    # rows then columns, via cumulative strided sums (pure numpy, exact in float64)
    out_r = np.zeros((h, w - k + 1))
    for i in range(k):
        out_r += g[i] * x[:, i:i + w - k + 1]
    out = np.zeros((h - k + 1, w - k + 1))
    for i in range(k):
        out += g[i] * out_r[i:i + h - k + 1, :]
    return out


def ssim_map(a, b, data_range: float = 1.0, win: int = SSIM_WIN, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """SSIM map (valid region) of two single-channel float images."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    g = gaussian_window_1d(win, sigma)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    mu_a = _filter_valid(a, g)
    mu_b = _filter_valid(b, g)
    saa = _filter_valid(a * a, g) - mu_a * mu_a
    sbb = _filter_valid(b * b, g) - mu_b * mu_b
    sab = _filter_valid(a * b, g) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * sab + c2)
    den = (mu_a * mu_a + mu_b * mu_b + c1) * (saa + sbb + c2)
    return num / den


def ssim(a, b, data_range: float = 1.0) -> float:
    """Mean SSIM over pixels and channels (1.0 for identical images)."""
    a, b = _pair(a, b)
    if a.ndim == 2:
        return float(ssim_map(a, b, data_range).mean())
    vals = [ssim_map(a[..., c], b[..., c], data_range).mean() for c in range(a.shape[2])]
    return float(np.mean(vals))


TEXTURE_ERODE_PX = 5  # keep the fill's seam (and the Sobel window's reach into known pixels) out


def gradient_energy(img, region) -> float:
    """Mean Sobel gradient magnitude (5x5 kernels, grey image in [0, 1]) over ``region``
    (bool HxW); nan when the region is empty. (:func:`inpaint_gui.engine.texture.gradient_energy`,
    which Auto's context texture uses too.)"""
    from inpaint_gui.engine.texture import gradient_energy as _energy
    return _energy(img, region)


def eroded_hole(hole, px: int = TEXTURE_ERODE_PX) -> np.ndarray:
    """The hole (nonzero = unknown) shrunk by ``px`` pixels on every side (bool HxW)."""
    import cv2
    h = (np.asarray(hole) > 0).astype(np.uint8)
    k = np.ones((2 * px + 1, 2 * px + 1), np.uint8)
    # pixels outside the image count as known, so a hole touching the border shrinks there too
    return cv2.erode(h, k, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0


def hole_texture(pred, target, hole) -> float:
    """Detail kept inside the hole: gradient energy of ``pred`` / that of ``target`` over the
    hole eroded by 5 px. 1 = as detailed as the photo; a blurred fill scores lower, a noisy
    one higher. nan when the eroded hole is empty or the original is flat there."""
    region = eroded_hole(hole)
    ref = gradient_energy(target, region)
    if not math.isfinite(ref) or ref <= 1e-6:
        return float("nan")
    return gradient_energy(pred, region) / ref


def all_metrics(pred, target, hole=None) -> dict:
    """{"psnr", "ssim", "l1"} on the whole image plus "l1_hole" / "psnr_hole" / "texture"
    (:func:`hole_texture`) when ``hole`` is given."""
    out = {"psnr": psnr(pred, target), "ssim": ssim(pred, target), "l1": l1(pred, target)}
    if hole is not None and np.asarray(hole).any():
        out["l1_hole"] = l1(pred, target, mask=hole)
        out["psnr_hole"] = psnr(pred, target, mask=hole)
        tex = hole_texture(pred, target, hole)
        if math.isfinite(tex):
            out["texture"] = tex
    return out


# ----------------------------------------------------------------------------------------------
# torch (differentiable; used by the substitute loss and by batched validation)

def ssim_torch(x, y, data_range: float = 1.0, win: int = SSIM_WIN, sigma: float = SSIM_SIGMA,
               reduction: str = "mean"):
    """SSIM of (N,C,H,W) tensors, same definition as :func:`ssim` ('valid' window).

    reduction: "mean" (scalar), "none" (per-sample means, shape (N,)).
    """
    import torch
    import torch.nn.functional as F

    c = x.shape[1]
    g = torch.tensor(gaussian_window_1d(win, sigma), dtype=x.dtype, device=x.device)
    kx = g.view(1, 1, 1, win).repeat(c, 1, 1, 1)
    ky = g.view(1, 1, win, 1).repeat(c, 1, 1, 1)

    def filt(t):
        return F.conv2d(F.conv2d(t, kx, groups=c), ky, groups=c)

    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    mu_x = filt(x)
    mu_y = filt(y)
    sxx = filt(x * x) - mu_x * mu_x
    syy = filt(y * y) - mu_y * mu_y
    sxy = filt(x * y) - mu_x * mu_y
    smap = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x * mu_x + mu_y * mu_y + c1) * (sxx + syy + c2))
    if reduction == "none":
        return smap.flatten(1).mean(1)
    return smap.mean()


def psnr_torch(x, y, data_range: float = 1.0):
    """Per-sample PSNR (N,) of (N,C,H,W) tensors (inf where identical)."""
    import torch
    m = ((x - y) ** 2).flatten(1).mean(1)
    return 10.0 * torch.log10(data_range * data_range / m)
