"""Qt-free outpaint margins (canvas extension): the value, its presets and limits, the
extended canvas arrays, and the margins a border drag asks for."""
from __future__ import annotations

import math
from typing import NamedTuple, Tuple

import numpy as np

#: largest canvas side (image + margins), in pixels
MAX_CANVAS_SIDE = 32000


class Margins(NamedTuple):
    """Pixels added around the image: (top, left, bottom, right) like the engine's ``outpaint``."""

    top: int = 0
    left: int = 0
    bottom: int = 0
    right: int = 0

    @classmethod
    def coerce(cls, value) -> "Margins":
        if isinstance(value, Margins):
            return value
        t, l, b, r = (int(v) for v in value)
        return cls(max(0, t), max(0, l), max(0, b), max(0, r))

    def is_zero(self) -> bool:
        return not any(self)

    def canvas_size(self, h: int, w: int) -> Tuple[int, int]:
        return h + self.top + self.bottom, w + self.left + self.right


# (key, menu label)
PRESETS = (
    ("none", "No extension"),
    ("grow25", "+25 %"),
    ("grow50", "+50 %"),
    ("double", "\u00d72"),
    ("16:9", "To 16:9"),
    ("4:3", "To 4:3"),
    ("1:1", "To 1:1 (square)"),
    ("3:2", "To 3:2"),
    ("9:16", "To 9:16 (portrait)"),
)


def _split(extra: int) -> Tuple[int, int]:
    a = extra // 2
    return a, extra - a


def preset_margins(key: str, h: int, w: int) -> Margins:
    """Margins for a preset, relative to an ``h`` x ``w`` image; extra space is split evenly.

    ``grow25`` / ``grow50`` / ``double`` enlarge both dimensions by 25 % / 50 % / 100 %;
    aspect presets (``"16:9"`` ...) only ever extend (never crop) the side that is too short."""
    if key == "none":
        return Margins()
    if key in ("grow25", "grow50", "double"):
        f = {"grow25": 0.25, "grow50": 0.5, "double": 1.0}[key]
        t, b = _split(int(round(h * f)))
        l, r = _split(int(round(w * f)))
        return Margins(t, l, b, r)
    if ":" in key:
        a, c = (float(v) for v in key.split(":"))
        target = a / c
        if w / h < target:
            nw = int(math.ceil(h * target - 1e-9))
            l, r = _split(nw - w)
            return Margins(0, l, 0, r)
        nh = int(math.ceil(w / target - 1e-9))
        t, b = _split(nh - h)
        return Margins(t, 0, b, 0)
    raise KeyError(f"unknown margin preset {key!r}")


def clamp_margins(m, h: int, w: int) -> Margins:
    """``m`` cut so that the canvas of an ``h`` x ``w`` image stays within
    :data:`MAX_CANVAS_SIDE` (top and left keep priority); zero for an empty image."""
    m = Margins.coerce(m)
    if h <= 0 or w <= 0:
        return Margins()
    t = min(m.top, MAX_CANVAS_SIDE - h)
    b = min(m.bottom, MAX_CANVAS_SIDE - h - t)
    l = min(m.left, MAX_CANVAS_SIDE - w)
    r = min(m.right, MAX_CANVAS_SIDE - w - l)
    return Margins(max(t, 0), max(l, 0), max(b, 0), max(r, 0))


def extend_canvas(image: np.ndarray, mask: np.ndarray, m: Margins
                  ) -> Tuple[np.ndarray, np.ndarray]:
    """(image, mask) on the canvas extended by ``m``: the margins are zero pixels with mask
    255 (always part of the fill region). With zero margins the arrays themselves."""
    if m.is_zero():
        return image, mask
    h, w = image.shape[:2]
    ch, cw = m.canvas_size(h, w)
    img = np.zeros((ch, cw) + image.shape[2:], image.dtype)
    img[m.top:m.top + h, m.left:m.left + w] = image
    msk = np.full((ch, cw), 255, np.uint8)
    msk[m.top:m.top + h, m.left:m.left + w] = mask
    return img, msk


def place_on_canvas(inner: np.ndarray, m: Margins, fill) -> np.ndarray:
    """``inner`` (HxW[xC]) at its place on the canvas extended by ``m``; the margins hold
    ``fill``."""
    h, w = inner.shape[:2]
    out = np.full(m.canvas_size(h, w) + inner.shape[2:], fill, inner.dtype)
    out[m.top:m.top + h, m.left:m.left + w] = inner
    return out


_OPPOSITE = {"t": "b", "b": "t", "l": "r", "r": "l"}


def dragged_margins(start: Margins, edges: str, x: float, y: float, h: int, w: int,
                    symmetric: bool = False) -> Margins:
    """Margins of an ``h`` x ``w`` image while its canvas ``edges`` ('t', 'l', 'b', 'r'
    combined) are dragged to the point ``(x, y)`` (image coordinates), starting from
    ``start``; ``symmetric`` moves the opposite edge along (Shift)."""
    m = dict(zip("tlbr", Margins.coerce(start)))
    pulled = {"t": -y, "l": -x, "b": y - h, "r": x - w}   # how far past the image side
    for e in edges:
        m[e] = max(0, int(round(pulled[e])))
        if symmetric:
            m[_OPPOSITE[e]] = m[e]
    return Margins(m["t"], m["l"], m["b"], m["r"])


def canvas_edges_at(x: float, y: float, h: int, w: int, m: Margins, tol: float) -> str:
    """Which edges ('t', 'l', 'b', 'r' combined) of the canvas of an ``h`` x ``w`` image
    extended by ``m`` lie within ``tol`` of the point ``(x, y)``; "" for none."""
    x0, y0 = -m.left, -m.top
    x1, y1 = w + m.right, h + m.bottom
    inside_x = x0 - tol <= x <= x1 + tol
    inside_y = y0 - tol <= y <= y1 + tol
    e = ""
    if inside_x and abs(y - y0) <= tol:
        e += "t"
    elif inside_x and abs(y - y1) <= tol:
        e += "b"
    if inside_y and abs(x - x0) <= tol:
        e += "l"
    elif inside_y and abs(x - x1) <= tol:
        e += "r"
    return e


__all__ = ["MAX_CANVAS_SIDE", "Margins", "PRESETS", "preset_margins", "clamp_margins",
           "extend_canvas", "place_on_canvas", "dragged_margins", "canvas_edges_at"]
