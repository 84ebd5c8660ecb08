"""Qt-free outpaint margins (canvas extension) and their presets."""
from __future__ import annotations

import math
from typing import NamedTuple, Tuple


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
