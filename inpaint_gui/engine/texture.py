"""Gradient energy: how much fine detail a region of a picture holds (numpy + OpenCV).

One home for the measure that the evaluation's hole texture
(:func:`inpaint_gui.training.metrics.hole_texture`) and the Auto choice
(:func:`inpaint_gui.engine.auto.context_texture`) both use: the mean Sobel gradient magnitude
(5x5 kernels) of the grey image in [0, 1] over a region.
"""
from __future__ import annotations

import numpy as np

SOBEL_KSIZE = 5
GREY_WEIGHTS = np.array([0.299, 0.587, 0.114])


def grey01(img) -> np.ndarray:
    """float32 grey image in [0, 1] (uint8 / uint16 scaled; floats taken as they are)."""
    a = np.asarray(img)
    if a.dtype == np.uint8:
        scale = 1.0 / 255.0
    elif a.dtype == np.uint16:
        scale = 1.0 / 65535.0
    else:
        scale = 1.0
    a = a.astype(np.float64) * scale if scale != 1.0 else a.astype(np.float64)
    grey = a if a.ndim == 2 else a[..., :3] @ GREY_WEIGHTS
    return grey.astype(np.float32)


def gradient_magnitude(img) -> np.ndarray:
    """Sobel gradient magnitude (5x5 kernels) of the grey image, float32 HxW."""
    import cv2
    grey = grey01(img)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=SOBEL_KSIZE)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=SOBEL_KSIZE)
    return np.sqrt(gx * gx + gy * gy)


def gradient_energy(img, region) -> float:
    """Mean :func:`gradient_magnitude` over ``region`` (bool HxW); nan when it is empty."""
    r = np.asarray(region, bool)
    if not r.any():
        return float("nan")
    return float(gradient_magnitude(img)[r].mean())
