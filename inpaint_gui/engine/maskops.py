"""Mask operations shared by the GUI, the CLI and the pipeline.

Masks are uint8 HxW arrays, 255 = fill (hole), 0 = keep, in and out. Binary operations
(grow, shrink) treat any value >= 128 as fill and return 0/255 masks; :func:`feather` returns a
soft mask (0..255). Distances are Euclidean (exact distance transform), so growing by ``px``
makes round corners, and the cost does not depend on ``px``.

Boxes are ``(y0, x0, y1, x1)`` with exclusive ends (``mask[y0:y1, x0:x1]``), the pipeline's
convention.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

Box = "tuple[int, int, int, int]"


def as_mask(mask) -> np.ndarray:
    """Validate and normalise: bool -> 0/255 uint8; HxWx1 -> HxW; other dtypes are refused."""
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[..., 0]
    if m.ndim != 2:
        raise ValueError(f"a mask must be a 2-D (HxW) array, got shape {m.shape}")
    if m.dtype == bool:
        return m.astype(np.uint8) * np.uint8(255)
    if m.dtype != np.uint8:
        raise ValueError(f"a mask must be uint8 (255 = fill), got {m.dtype}")
    return m


def threshold(mask, level: int = 128) -> np.ndarray:
    """255 where ``mask >= level``, else 0."""
    m = as_mask(mask)
    return np.where(m >= level, np.uint8(255), np.uint8(0))


def invert(mask) -> np.ndarray:
    """255 - mask (a soft mask stays soft)."""
    return (255 - as_mask(mask)).astype(np.uint8)


def _binary(mask) -> np.ndarray:
    """0/1 uint8 of the fill pixels (>= 128)."""
    return (as_mask(mask) >= 128).astype(np.uint8)


def _dist_inside(b01: np.ndarray) -> np.ndarray:
    """For each fill pixel, the distance to the nearest keep pixel (1 = touching).

    Pixels outside the image do not count as keep pixels: a hole touching the border does
    not shrink or fade from the border. Fill pixels with no keep pixel at all get +inf."""
    if not b01.any():
        return np.zeros(b01.shape, np.float32)
    if b01.all():
        return np.full(b01.shape, np.inf, np.float32)
    return cv2.distanceTransform(b01, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def _dist_outside(b01: np.ndarray) -> np.ndarray:
    """For each keep pixel, the distance to the nearest fill pixel (1 = touching)."""
    return _dist_inside((1 - b01).astype(np.uint8))


def grow(mask, px: float) -> np.ndarray:
    """Dilate the fill region by ``px`` pixels (Euclidean). Negative ``px`` shrinks."""
    if px < 0:
        return shrink(mask, -px)
    b = _binary(mask)
    if px == 0 or not b.any():
        return b * np.uint8(255)
    d = _dist_outside(b)
    return np.where((b > 0) | (d <= px), np.uint8(255), np.uint8(0))


def shrink(mask, px: float) -> np.ndarray:
    """Erode the fill region by ``px`` pixels (Euclidean). Negative ``px`` grows.

    The image border is not an edge of the hole: a hole touching the border keeps touching it."""
    if px < 0:
        return grow(mask, -px)
    b = _binary(mask)
    if px == 0 or not b.any():
        return b * np.uint8(255)
    d = _dist_inside(b)
    return np.where((b > 0) & (d > px), np.uint8(255), np.uint8(0))


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def feather(mask, px: float, where: str = "center") -> np.ndarray:
    """A soft copy of ``mask`` (uint8, 0..255) whose edge ramps smoothly over ``px`` pixels.

    where: "center" — the ramp straddles the edge (half inside, half outside; the usual
    editor feather); "inside" — the ramp lies inside the hole (nothing outside the mask
    becomes non-zero: 0 < value < 255 only on the hole's outer ``px`` pixels); "outside" —
    the ramp lies outside the hole (the hole itself stays 255). ``px <= 0`` returns the
    binary mask."""
    if where not in ("center", "inside", "outside"):
        raise ValueError("where must be 'center', 'inside' or 'outside'")
    b = _binary(mask)
    if px <= 0 or not b.any():
        return b * np.uint8(255)
    d_in = _dist_inside(b)    # fill pixels: 1, 2, ... from the edge
    d_out = _dist_outside(b)  # keep pixels: 1, 2, ... from the edge
    # signed distance to the edge line between the two pixel rows (positive inside)
    signed = np.where(b > 0, d_in - 0.5, 0.5 - d_out).astype(np.float32)
    if where == "center":
        t = 0.5 + signed / float(px)
    elif where == "inside":
        t = np.where(b > 0, (signed + 0.5) / (float(px) + 1.0), 0.0)
    else:
        t = np.where(b > 0, 1.0, 1.0 - (-signed + 0.5) / (float(px) + 1.0))
    out = np.rint(_smoothstep(t) * 255.0).astype(np.uint8)
    if where == "inside":
        out[b == 0] = 0
    elif where == "outside":
        out[b > 0] = 255
    return out


def alpha_as_mask(alpha, soft: bool = False) -> np.ndarray:
    """Mask from an alpha channel (uint8 or uint16): transparent = fill.

    Binary (alpha <= 50 % -> 255) unless ``soft``, which returns 255 - alpha (8-bit)."""
    a = np.asarray(alpha)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim != 2:
        raise ValueError(f"alpha must be HxW, got shape {a.shape}")
    if a.dtype == np.uint16:
        a = ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise ValueError(f"alpha must be uint8 or uint16, got {a.dtype}")
    if soft:
        return (255 - a).astype(np.uint8)
    return np.where(a <= 127, np.uint8(255), np.uint8(0))


def resize_mask(mask, size) -> np.ndarray:
    """Nearest-neighbour resize to ``size`` = (h, w); values are kept (binary stays binary)."""
    m = as_mask(mask)
    h, w = int(size[0]), int(size[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"invalid mask size {size}")
    if m.shape == (h, w):
        return m.copy()
    interp = getattr(cv2, "INTER_NEAREST_EXACT", cv2.INTER_NEAREST)
    return cv2.resize(m, (w, h), interpolation=interp)


def bbox(mask) -> Optional[tuple]:
    """(y0, x0, y1, x1) of the pixels where mask > 0 (exclusive ends), or None if empty."""
    m = np.asarray(mask)
    m = m if m.dtype == bool and m.ndim == 2 else as_mask(m)  # no full-size copy either way
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return None
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
    cols = np.flatnonzero(m[y0:y1].any(axis=0))
    return y0, int(cols[0]), y1, int(cols[-1]) + 1


def diff_bbox(a, b) -> Optional[tuple]:
    """(y0, x0, y1, x1) of the pixels where the arrays ``a`` and ``b`` (HxW or HxWxC, same
    shape) differ in any channel (exclusive ends), or None if they are equal."""
    d = np.asarray(a) != np.asarray(b)
    if d.ndim == 3:
        d = d.any(axis=2)
    return bbox(d)


def area(mask) -> int:
    """Number of pixels where mask > 0."""
    return int(np.count_nonzero(as_mask(mask)))


@dataclass(frozen=True)
class Region:
    """One connected hole: ``label`` in the label image, ``bbox`` (y0, x0, y1, x1), ``area``
    in pixels, ``centroid`` (y, x)."""

    label: int
    bbox: tuple
    area: int
    centroid: tuple

    def slices(self) -> "tuple[slice, slice]":
        y0, x0, y1, x1 = self.bbox
        return slice(y0, y1), slice(x0, x1)


def connected_regions(mask, connectivity: int = 8, min_area: int = 0,
                      return_labels: bool = False):
    """The connected regions where mask > 0, largest first.

    Returns a list of :class:`Region`; with ``return_labels`` also the int32 label image
    (0 = background, ``Region.label`` elsewhere). Regions smaller than ``min_area`` are
    left out of the list (their pixels keep their labels)."""
    if connectivity not in (4, 8):
        raise ValueError("connectivity must be 4 or 8")
    b = (as_mask(mask) > 0).astype(np.uint8)
    n, labels, stats, cents = cv2.connectedComponentsWithStats(b, connectivity=connectivity,
                                                               ltype=cv2.CV_32S)
    regions = []
    for i in range(1, n):
        x, y, w, h, a = (int(v) for v in stats[i])
        if a < min_area:
            continue
        regions.append(Region(i, (y, x, y + h, x + w), a,
                              (float(cents[i][1]), float(cents[i][0]))))
    regions.sort(key=lambda r: (-r.area, r.label))
    return (regions, labels) if return_labels else regions


def remove_small(mask, min_area: int, connectivity: int = 8) -> np.ndarray:
    """Drop connected fill regions smaller than ``min_area`` pixels (specks)."""
    regions, labels = connected_regions(mask, connectivity, return_labels=True)
    keep = np.zeros(labels.max() + 1 if labels.size else 1, dtype=bool)
    for r in regions:
        if r.area >= min_area:
            keep[r.label] = True
    return np.where(keep[labels], as_mask(mask), np.uint8(0)).astype(np.uint8)


__all__ = ["as_mask", "threshold", "invert", "grow", "shrink", "feather", "alpha_as_mask",
           "resize_mask", "bbox", "diff_bbox", "area", "Region", "connected_regions", "remove_small"]
