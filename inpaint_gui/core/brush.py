"""Qt-free mask rasterisation: brush dabs, stroke interpolation, rectangles and lassos.

Points are continuous image coordinates ``(x, y)``: pixel ``(col, row)`` covers
``[col, col+1) x [row, row+1)``, its centre is ``(col+0.5, row+0.5)``. Boxes are the engine's
``(y0, x0, y1, x1)`` (:mod:`inpaint_gui.engine.maskops`), half-open: ``mask[y0:y1, x0:x1]``.
Masks are uint8 HxW, 255 = fill.
"""
from __future__ import annotations

import math
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np

from inpaint_gui.engine.maskops import diff_bbox

BBox = Tuple[int, int, int, int]  # (y0, x0, y1, x1)
Dab = Tuple[float, float, float]  # (x, y, radius)

MODES = ("replace", "add", "subtract", "intersect")

__all__ = ["BBox", "MODES", "union_bbox", "clip_bbox", "diff_bbox", "dab_values", "dab_bbox",
           "stamp", "stamp_many", "StrokeInterpolator", "rect_bbox", "polygon_coverage",
           "polygon_bbox", "clip_shape", "combine"]


def union_bbox(a: Optional[BBox], b: Optional[BBox]) -> Optional[BBox]:
    if a is None:
        return b
    if b is None:
        return a
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def clip_bbox(b: BBox, shape: Tuple[int, int]) -> Optional[BBox]:
    """``b`` limited to an array of ``shape`` (h, w); None when nothing is left."""
    h, w = shape[:2]
    y0, x0, y1, x1 = max(0, b[0]), max(0, b[1]), min(h, b[2]), min(w, b[3])
    if y0 >= y1 or x0 >= x1:
        return None
    return (y0, x0, y1, x1)


def dab_values(cx: float, cy: float, radius: float, hardness: float, bbox: BBox) -> np.ndarray:
    """uint8 coverage (0..255) of a round dab centred at ``(cx, cy)`` over ``bbox``.

    ``hardness`` 1 gives a binary disc (pixel centres within ``radius``); lower values fade
    from ``hardness*radius`` to ``radius`` with a smoothstep."""
    y0, x0, y1, x1 = bbox
    xs = (np.arange(x0, x1, dtype=np.float32) + np.float32(0.5 - cx))
    ys = (np.arange(y0, y1, dtype=np.float32) + np.float32(0.5 - cy))
    d2 = ys[:, None] * ys[:, None] + xs[None, :] * xs[None, :]
    r = max(float(radius), 0.5)
    if hardness >= 0.999:
        out = (d2 <= np.float32(r * r)).astype(np.uint8)
        out *= 255
        # a dab always covers the pixel that contains its centre
        px, py = int(math.floor(cx)) - x0, int(math.floor(cy)) - y0
        if 0 <= py < out.shape[0] and 0 <= px < out.shape[1]:
            out[py, px] = 255
        return out
    inner = r * max(float(hardness), 0.0)
    d = np.sqrt(d2)
    t = np.clip((d - np.float32(inner)) / np.float32(max(r - inner, 1e-3)), 0.0, 1.0)
    v = 1.0 - t * t * (3.0 - 2.0 * t)
    return (v * np.float32(255.0) + np.float32(0.5)).astype(np.uint8)


def dab_bbox(cx: float, cy: float, radius: float) -> BBox:
    r = max(float(radius), 0.5)
    return (int(math.floor(cy - r)), int(math.floor(cx - r)),
            int(math.floor(cy + r)) + 1, int(math.floor(cx + r)) + 1)


def stamp(mask: np.ndarray, cx: float, cy: float, radius: float, hardness: float = 1.0,
          erase: bool = False) -> Optional[BBox]:
    """Stamp one dab into ``mask`` in place (max for paint, min for erase).

    Returns the clipped bbox that was touched, or None when the dab is off the mask."""
    b = clip_bbox(dab_bbox(cx, cy, radius), mask.shape)
    if b is None:
        return None
    v = dab_values(cx, cy, radius, hardness, b)
    region = mask[b[0]:b[2], b[1]:b[3]]
    if erase:
        np.minimum(region, 255 - v, out=region)
    else:
        np.maximum(region, v, out=region)
    return b


def stamp_many(mask: np.ndarray, dabs: Iterable[Dab], hardness: float,
               erase: bool) -> Optional[BBox]:
    bbox = None
    for cx, cy, r in dabs:
        bbox = union_bbox(bbox, stamp(mask, cx, cy, r, hardness, erase))
    return bbox


class StrokeInterpolator:
    """Turns pointer samples into evenly spaced dabs so fast drags leave no gaps.

    ``spacing`` is a fraction of the dab diameter (0.1 = a dab every 10 % of the size); the
    distance travelled since the last dab carries over between events (as in Krita/GIMP).
    Pressure (0..1) is interpolated along each segment and scales the radius when
    ``pressure_size`` is on."""

    def __init__(self, radius: float, spacing: float = 0.1, pressure_size: bool = True,
                 min_pressure_scale: float = 0.05) -> None:
        self.radius = float(radius)
        self.spacing = max(float(spacing), 0.01)
        self.pressure_size = pressure_size
        self.min_pressure_scale = min_pressure_scale
        self._last: Optional[Tuple[float, float, float]] = None
        self._travel = 0.0

    def radius_at(self, pressure: float) -> float:
        if not self.pressure_size:
            return self.radius
        return max(self.radius * max(min(pressure, 1.0), self.min_pressure_scale), 0.5)

    def _step(self, pressure: float) -> float:
        return max(2.0 * self.radius_at(pressure) * self.spacing, 0.5)

    def start(self, x: float, y: float, pressure: float = 1.0) -> List[Dab]:
        self._last = (x, y, pressure)
        self._travel = 0.0
        return [(x, y, self.radius_at(pressure))]

    def move_to(self, x: float, y: float, pressure: float = 1.0) -> List[Dab]:
        if self._last is None:
            return self.start(x, y, pressure)
        x0, y0, p0 = self._last
        dx, dy = x - x0, y - y0
        length = math.hypot(dx, dy)
        dabs: List[Dab] = []
        if length <= 0:
            return dabs
        pos = 0.0
        travel = self._travel
        while True:
            p_here = p0 + (pressure - p0) * (pos / length)
            need = self._step(p_here) - travel
            if pos + need > length:
                travel += length - pos
                break
            pos += need
            travel = 0.0
            t = pos / length
            p = p0 + (pressure - p0) * t
            dabs.append((x0 + dx * t, y0 + dy * t, self.radius_at(p)))
        self._travel = travel
        self._last = (x, y, pressure)
        return dabs

    def finish(self, x: float, y: float, pressure: float = 1.0) -> List[Dab]:
        """Dabs up to the release point, plus one exactly at it (strokes end where you let go)."""
        dabs = self.move_to(x, y, pressure)
        if self._travel > 0:
            dabs.append((x, y, self.radius_at(pressure)))
            self._travel = 0.0
        return dabs


def rect_bbox(a: Tuple[float, float], b: Tuple[float, float]) -> BBox:
    """Pixel box covered by a rectangle dragged between the points ``a`` and ``b`` (x, y),
    snapped to the pixel grid."""
    ax, bx = sorted((a[0], b[0]))
    ay, by = sorted((a[1], b[1]))
    return (int(round(ay)), int(round(ax)), int(round(by)), int(round(bx)))


def polygon_coverage(points: Sequence[Tuple[float, float]], bbox: BBox) -> np.ndarray:
    """uint8 0/255 image over ``bbox``: pixels whose centre lies inside the polygon."""
    import cv2
    y0, x0, y1, x1 = bbox
    out = np.zeros((y1 - y0, x1 - x0), np.uint8)
    if len(points) < 3 or out.size == 0:
        return out
    shift = 4
    pts = np.asarray(points, dtype=np.float64) - np.array([x0 + 0.5, y0 + 0.5])
    pts = np.round(pts * (1 << shift)).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(out, [pts], 255, lineType=cv2.LINE_8, shift=shift)
    return out


def polygon_bbox(points: Sequence[Tuple[float, float]]) -> BBox:
    arr = np.asarray(points, dtype=np.float64)
    return (int(math.floor(arr[:, 1].min())), int(math.floor(arr[:, 0].min())),
            int(math.ceil(arr[:, 1].max())) + 1, int(math.ceil(arr[:, 0].max())) + 1)


def clip_shape(bbox: Optional[BBox], coverage: Optional[np.ndarray], shape: Tuple[int, int]
               ) -> Tuple[Optional[BBox], Optional[np.ndarray]]:
    """A shape's ``coverage`` over ``bbox`` cut to an array of ``shape`` (h, w):
    ``(bbox, coverage)`` inside it, or ``(None, None)`` when the shape lies outside."""
    if bbox is None:
        return None, None
    cb = clip_bbox(bbox, shape)
    if cb is None:
        return None, None
    if coverage is not None:
        coverage = coverage[cb[0] - bbox[0]:cb[2] - bbox[0], cb[1] - bbox[1]:cb[3] - bbox[1]]
    return cb, coverage


def combine(mask: np.ndarray, shape_bbox: Optional[BBox], coverage: Optional[np.ndarray],
            mode: str) -> Tuple[Optional[BBox], Optional[np.ndarray]]:
    """Combine a shape (``coverage`` over ``shape_bbox``, already clipped) with ``mask``.

    Returns ``(bbox, new_region)``: the region of the mask that changes and its new values
    (without modifying ``mask``), or ``(None, None)`` when nothing changes."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    if mode in ("add", "subtract"):
        if shape_bbox is None or coverage is None:
            return None, None
        y0, x0, y1, x1 = shape_bbox
        old = mask[y0:y1, x0:x1]
        if mode == "add":
            new = np.maximum(old, coverage)
        else:
            new = np.minimum(old, 255 - coverage)
        sub = diff_bbox(old, new)
        if sub is None:
            return None, None
        return ((y0 + sub[0], x0 + sub[1], y0 + sub[2], x0 + sub[3]),
                np.ascontiguousarray(new[sub[0]:sub[2], sub[1]:sub[3]]))
    # replace / intersect touch the whole mask
    full = np.zeros_like(mask)
    if shape_bbox is not None and coverage is not None:
        y0, x0, y1, x1 = shape_bbox
        if mode == "replace":
            full[y0:y1, x0:x1] = coverage
        else:
            full[y0:y1, x0:x1] = np.minimum(mask[y0:y1, x0:x1], coverage)
    b = diff_bbox(mask, full)
    if b is None:
        return None, None
    return b, np.ascontiguousarray(full[b[0]:b[2], b[1]:b[3]])
