"""Mask generators for training and evaluation.

Every generator takes ``(h, w, rng)`` with ``rng`` a ``numpy.random.Generator`` (or an int seed)
and returns a ``uint8`` HxW array with **1 = hole (to fill), 0 = known**; the engine boundary
uses 255 = fill, see :func:`to_engine`. Same seed -> same mask, on every platform.

Families
--------
* :func:`free_form_mask` -- brush strokes (polygonal chains drawn with a round brush) in the
  irregular-hole convention of partial convolutions (Liu et al. 2018): the hole ratio is
  controlled and lands in a requested bin such as (0.1, 0.2) ... (0.5, 0.6).
* :func:`rfr_stroke_mask` -- RFR's own random stroke generator (``generate_stroke_mask``: up to
  15 parts, <= 25 vertices, length <= 100 px, brush 10..24 px at 256 px).
* :func:`lama_irregular_mask`, :func:`lama_box_mask`, :func:`lama_mask` -- LaMa's polygonal
  chains and boxes with the thin / medium / thick evaluation presets (256 and 512 tables of
  ``configs/data_gen/random_*``), and the training mix (50 % chains, 50 % boxes).
* :func:`large_hole_mask` -- large holes for RFR (a big box or ellipse plus thick strokes,
  30-60 % of the image).
* :func:`outpaint_mask` / :func:`random_outpaint_mask` -- a known window plus unknown margins
  on any sides (SRN's geometry).

:class:`MaskSampler` mixes these for training; :func:`eval_mask` / :func:`eval_outpaint_case`
give the fixed evaluation masks (identical for every model).
"""
from __future__ import annotations

import math
import zlib
from typing import Iterable, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

RngLike = Union[np.random.Generator, int, Sequence[int], None]

# Hole-ratio bins of the irregular-mask convention (fractions).
PCONV_BINS: Tuple[Tuple[float, float], ...] = (
    (0.01, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6))
DEFAULT_EVAL_BINS: Tuple[Tuple[float, float], ...] = PCONV_BINS[1:]
EVAL_SEED = 20240601


def as_rng(rng: RngLike) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def hole_ratio(mask: np.ndarray) -> float:
    return float((np.asarray(mask) > 0).mean())


def to_engine(mask01: np.ndarray) -> np.ndarray:
    """1 = hole -> uint8 255 = fill (the engine boundary convention)."""
    return np.where(np.asarray(mask01) > 0, 255, 0).astype(np.uint8)


def parse_bins(text: "str | Iterable") -> "list[tuple[float, float]]":
    """"10-20,20-30" (percent) -> [(0.1, 0.2), (0.2, 0.3)]. Tuples pass through."""
    if not isinstance(text, str):
        return [(float(a), float(b)) for a, b in text]
    bins = []
    for part in text.split(","):
        part = part.strip().rstrip("%")
        if not part:
            continue
        a, b = part.split("-")
        lo, hi = float(a) / 100.0, float(b) / 100.0
        if not (0 <= lo < hi <= 1):
            raise ValueError(f"bad hole-ratio bin {part!r} (expected e.g. 10-20)")
        bins.append((lo, hi))
    if not bins:
        raise ValueError("no bins given")
    return bins


def bin_name(b: Tuple[float, float]) -> str:
    return f"{round(b[0] * 100):d}-{round(b[1] * 100):d}"


# ----------------------------------------------------------------------------------------------
# brush strokes

def _draw_chain(mask: np.ndarray, rng: np.random.Generator, n_vertex: int, max_len: float,
                width: int, max_angle: float = 2 * math.pi, start=None) -> None:
    """Draw a polygonal chain with a round brush of ``width`` px into ``mask`` (in place)."""
    h, w = mask.shape
    if start is None:
        y, x = float(rng.integers(0, h)), float(rng.integers(0, w))
    else:
        y, x = start
    width = max(1, int(width))
    for i in range(n_vertex):
        angle = float(rng.uniform(0, max_angle))
        if i % 2 == 0:
            angle = 2 * math.pi - angle
        length = float(rng.uniform(0.1 * max_len, max_len))
        ny = min(max(y + length * math.cos(angle), 0), h - 1)
        nx = min(max(x + length * math.sin(angle), 0), w - 1)
        cv2.line(mask, (int(x), int(y)), (int(nx), int(ny)), 1, width, lineType=cv2.LINE_8)
        cv2.circle(mask, (int(x), int(y)), width // 2, 1, -1)
        y, x = ny, nx
    cv2.circle(mask, (int(x), int(y)), width // 2, 1, -1)


def _stroke_scale(h: int, w: int) -> float:
    return min(h, w) / 256.0


def random_stroke(h: int, w: int, rng: np.random.Generator, width_range=(8, 28),
                  len_range=(20, 90), vertex_range=(2, 10)) -> np.ndarray:
    """One free-form stroke (uint8 0/1). Ranges are in pixels at 256 px and scale with the image."""
    s = _stroke_scale(h, w)
    m = np.zeros((h, w), np.uint8)
    width = int(round(rng.uniform(*width_range) * s))
    max_len = rng.uniform(*len_range) * s
    nv = int(rng.integers(vertex_range[0], vertex_range[1] + 1))
    _draw_chain(m, rng, nv, max_len, width)
    return m


def free_form_mask(h: int, w: int, rng: RngLike = None, ratio: Tuple[float, float] = (0.1, 0.6),
                   max_attempts: int = 60) -> np.ndarray:
    """Free-form brush-stroke mask whose hole ratio lies in ``[ratio[0], ratio[1])``.

    Strokes are added one at a time; a stroke that would overshoot the bin is dropped and a
    thinner one tried. Larger bins get wider strokes (the PConv set's large-hole masks are made
    of thick strokes). Deterministic for a given ``rng`` state.
    """
    rng = as_rng(rng)
    lo, hi = float(ratio[0]), float(ratio[1])
    if not 0 <= lo < hi <= 1:
        raise ValueError(f"bad ratio bin {ratio}")
    area = h * w
    target = rng.uniform(lo, hi)
    # stroke width grows with the target ratio (thin scribbles for small holes)
    wmin = 6 + 30 * target
    wmax = 14 + 60 * target
    m = np.zeros((h, w), np.uint8)
    count = 0
    fails = 0
    for _ in range(max_attempts * 10):
        scale = 1.0 if fails < 3 else max(0.25, 1.0 / (1 + fails - 2))
        stroke = random_stroke(h, w, rng, width_range=(wmin * scale, wmax * scale),
                               len_range=(30, 110), vertex_range=(2, 8))
        new = m | stroke
        c = int(new.sum())
        if c / area < hi:
            m, count = new, c
            fails = 0
            if count / area >= target or count / area >= lo and rng.random() < 0.05:
                return m
        else:
            fails += 1
            if count / area >= lo:
                return m
            if fails > max_attempts:
                break
    if lo <= count / area < hi:
        return m
    # fallback: grow/shrink deterministically until in the bin (rare)
    return _force_ratio(m, lo, hi, rng)


def _force_ratio(m: np.ndarray, lo: float, hi: float, rng: np.random.Generator) -> np.ndarray:
    area = m.size
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    for _ in range(200):
        r = m.mean()
        if lo <= r < hi:
            return m
        if r < lo:
            grown = cv2.dilate(m, k)
            if grown.mean() >= hi:  # dilation overshoots: add a small blob instead
                y, x = rng.integers(0, m.shape[0]), rng.integers(0, m.shape[1])
                cv2.circle(m, (int(x), int(y)), max(1, int(math.sqrt(area * (lo - r + 1e-3) / math.pi))), 1, -1)
            else:
                m = grown
        else:
            shrunk = cv2.erode(m, k)
            if shrunk.mean() < lo:
                ys, xs = np.nonzero(m)
                drop = int(round((r - (lo + hi) / 2) * area))
                idx = rng.permutation(len(ys))[:max(drop, 1)]
                m = m.copy()
                m[ys[idx], xs[idx]] = 0
            else:
                m = shrunk
    return m


def rfr_stroke_mask(h: int, w: int, rng: RngLike = None, max_parts: int = 15, max_vertex: int = 25,
                    max_length: int = 100, max_brush: int = 24, min_brush: int = 10,
                    max_ratio: Optional[float] = 0.6, max_tries: int = 10) -> np.ndarray:
    """RFR's random stroke mask (official ``generate_stroke_mask`` parameters at 256 px).

    Up to ``max_parts`` chains of up to ``max_vertex`` segments of length <= ``max_length``,
    brush width in [min_brush, max_brush] (even). Sizes scale with min(h, w) / 256.
    The official generator often covers 70-90 % of the image; masks above ``max_ratio`` (the
    author trained up to ~60 %, issue #16) are redrawn (None = keep the official distribution).
    """
    rng = as_rng(rng)
    m = _rfr_stroke_once(h, w, rng, max_parts, max_vertex, max_length, max_brush, min_brush)
    for _ in range(max_tries):
        if max_ratio is None or m.mean() <= max_ratio:
            break
        m = _rfr_stroke_once(h, w, rng, max_parts, max_vertex, max_length, max_brush, min_brush)
    return m


def _rfr_stroke_once(h, w, rng, max_parts, max_vertex, max_length, max_brush, min_brush):
    s = _stroke_scale(h, w)
    m = np.zeros((h, w), np.uint8)
    parts = int(rng.integers(1, max_parts + 1))
    for _ in range(parts):
        nv = int(rng.integers(0, max_vertex + 1))
        y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
        bw = 0
        for i in range(nv):
            angle = rng.integers(0, 361) / 360.0 * 2 * math.pi
            if i % 2 == 0:
                angle = 2 * math.pi - angle
            length = int(rng.integers(0, max_length + 1)) * s
            bw = max(2, int(int(rng.integers(min_brush, max_brush + 1)) // 2 * 2 * s))
            ny = int(min(max(y + length * math.cos(angle), 0), h - 1))
            nx = int(min(max(x + length * math.sin(angle), 0), w - 1))
            cv2.line(m, (x, y), (nx, ny), 1, bw)
            cv2.circle(m, (x, y), bw // 2, 1, -1)
            y, x = ny, nx
        if bw:
            cv2.circle(m, (x, y), bw // 2, 1, -1)
    return m


# ----------------------------------------------------------------------------------------------
# LaMa-style masks

# (min_times, max_times, max_width, max_len, box_proba, box margin, box min, box max, box min_times, box max_times)
LAMA_PRESETS = {
    "thin_256": dict(min_times=4, max_times=50, max_width=10, max_len=40, box_proba=0.0),
    "thin_512": dict(min_times=4, max_times=70, max_width=20, max_len=100, box_proba=0.0),
    "medium_256": dict(min_times=4, max_times=5, max_width=50, max_len=100, box_proba=0.3,
                       box=dict(margin=0, bbox_min_size=10, bbox_max_size=50, min_times=1, max_times=5)),
    "medium_512": dict(min_times=4, max_times=10, max_width=100, max_len=200, box_proba=0.3,
                       box=dict(margin=0, bbox_min_size=30, bbox_max_size=150, min_times=1, max_times=5)),
    "thick_256": dict(min_times=1, max_times=5, max_width=100, max_len=200, box_proba=0.3,
                      box=dict(margin=10, bbox_min_size=30, bbox_max_size=150, min_times=1, max_times=3)),
    "thick_512": dict(min_times=1, max_times=5, max_width=250, max_len=450, box_proba=0.3,
                      box=dict(margin=10, bbox_min_size=30, bbox_max_size=300, min_times=1, max_times=4)),
}
LAMA_TRAIN = dict(irregular=dict(max_angle=4, max_len=200, max_width=100, min_times=1, max_times=5),
                  box=dict(margin=10, bbox_min_size=30, bbox_max_size=150, min_times=1, max_times=4))
LAMA_MAX_TAMPER = 0.5


def lama_irregular_mask(h: int, w: int, rng: RngLike = None, max_angle: int = 4, max_len: int = 60,
                        max_width: int = 20, min_times: int = 0, max_times: int = 10) -> np.ndarray:
    """LaMa's polygonal chains: ``times`` chains of 1..5 segments, angle 0.01 + randint(max_angle)
    rad (mirrored on even segments), length 10 + randint(max_len), width 5 + randint(max_width)."""
    rng = as_rng(rng)
    m = np.zeros((h, w), np.uint8)
    times = int(rng.integers(min_times, max_times + 1))
    for _ in range(times):
        sx, sy = int(rng.integers(0, w)), int(rng.integers(0, h))
        for j in range(1 + int(rng.integers(0, 5))):
            angle = 0.01 + int(rng.integers(0, max_angle))
            if j % 2 == 0:
                angle = 2 * math.pi - angle
            length = 10 + int(rng.integers(0, max_len))
            bw = 5 + int(rng.integers(0, max_width))
            ex = int(np.clip(sx + length * math.sin(angle), 0, w))
            ey = int(np.clip(sy + length * math.cos(angle), 0, h))
            cv2.line(m, (sx, sy), (ex, ey), 1, bw)
            sx, sy = ex, ey
    return m


def lama_box_mask(h: int, w: int, rng: RngLike = None, margin: int = 10, bbox_min_size: int = 30,
                  bbox_max_size: int = 100, min_times: int = 0, max_times: int = 3) -> np.ndarray:
    """LaMa's random rectangles (sizes in px, uniformly placed inside ``margin``)."""
    rng = as_rng(rng)
    m = np.zeros((h, w), np.uint8)
    bmax = min(bbox_max_size, h - margin * 2, w - margin * 2)
    bmin = min(bbox_min_size, bmax)
    times = int(rng.integers(min_times, max_times + 1))
    for _ in range(times):
        bw = int(rng.integers(bmin, bmax + 1))
        bh = int(rng.integers(bmin, bmax + 1))
        x0 = int(rng.integers(margin, max(margin + 1, w - margin - bw + 1)))
        y0 = int(rng.integers(margin, max(margin + 1, h - margin - bh + 1)))
        m[y0:y0 + bh, x0:x0 + bw] = 1
    return m


def _scaled(params: dict, s: float) -> dict:
    out = dict(params)
    for k in ("max_len", "max_width", "margin", "bbox_min_size", "bbox_max_size"):
        if k in out:
            out[k] = max(1, int(round(out[k] * s)))
    return out


def lama_mask(h: int, w: int, rng: RngLike = None, preset: str = "thick",
              max_tamper: float = LAMA_MAX_TAMPER, max_tries: int = 20) -> np.ndarray:
    """A LaMa evaluation-style mask: ``preset`` in thin / medium / thick (the 256 or 512 table,
    whichever is nearer, sizes scaled to the image) or "train" (50 % chains, 50 % boxes).
    Masks covering more than ``max_tamper`` of the image are redrawn (as LaMa's sets do)."""
    rng = as_rng(rng)
    side = min(h, w)
    m = None
    for _ in range(max_tries):
        if preset == "train":
            s = side / 256.0
            if rng.random() < 0.5:
                m = lama_irregular_mask(h, w, rng, **_scaled(LAMA_TRAIN["irregular"], s))
            else:
                m = lama_box_mask(h, w, rng, **_scaled(LAMA_TRAIN["box"], s))
        else:
            base = 512 if side >= 384 else 256
            p = LAMA_PRESETS[f"{preset}_{base}"]
            s = side / base
            irr = {k: p[k] for k in ("min_times", "max_times", "max_width", "max_len")}
            m = lama_irregular_mask(h, w, rng, max_angle=4, **_scaled(irr, s))
            if p["box_proba"] > 0 and rng.random() < p["box_proba"]:
                m = m | lama_box_mask(h, w, rng, **_scaled(p["box"], s))
        if 0 < m.mean() <= max_tamper:
            return m
    return m


# ----------------------------------------------------------------------------------------------
# large holes (RFR) and outpainting windows (SRN)

def large_hole_mask(h: int, w: int, rng: RngLike = None, ratio: Tuple[float, float] = (0.3, 0.6)) -> np.ndarray:
    """A big rectangle or ellipse plus thick strokes; hole ratio in ``ratio``."""
    rng = as_rng(rng)
    lo, hi = ratio
    for _ in range(30):
        m = np.zeros((h, w), np.uint8)
        target = rng.uniform(lo, hi)
        side = math.sqrt(target * 0.7 * h * w)
        bh = int(np.clip(side * rng.uniform(0.7, 1.4), 8, h - 2))
        bw = int(np.clip(target * 0.7 * h * w / bh, 8, w - 2))
        cy = int(rng.integers(bh // 2, h - bh // 2 + 1))
        cx = int(rng.integers(bw // 2, w - bw // 2 + 1))
        if rng.random() < 0.5:
            m[cy - bh // 2:cy - bh // 2 + bh, cx - bw // 2:cx - bw // 2 + bw] = 1
        else:
            cv2.ellipse(m, (cx, cy), (max(1, int(bw / 2 * 1.13)), max(1, int(bh / 2 * 1.13))),
                        float(rng.uniform(0, 180)), 0, 360, 1, -1)
        s = _stroke_scale(h, w)
        while m.mean() < target:
            st = random_stroke(h, w, rng, width_range=(20, 45), len_range=(40, 120), vertex_range=(2, 6))
            if (m | st).mean() >= hi:
                break
            m |= st
            if rng.random() < 0.3 * s:
                break
        if lo <= m.mean() < hi:
            return m
    return _force_ratio(m, lo, hi, rng)


def object_mask(h: int, w: int, rng: RngLike = None, ratio: Tuple[float, float] = (0.03, 0.3)) -> np.ndarray:
    """One compact hole, as a user paints over an object: a rectangle or a rotated ellipse
    (aspect 1:2 to 2:1) anywhere in the image, hole ratio in ``ratio``. Strokes and thin
    masks, which dominate the other families, never make a hole this deep for its area."""
    rng = as_rng(rng)
    lo, hi = ratio
    m = np.zeros((h, w), np.uint8)
    for _ in range(30):
        m[:] = 0
        area = rng.uniform(lo, hi) * h * w
        aspect = math.exp(rng.uniform(-math.log(2), math.log(2)))
        bh = int(np.clip(math.sqrt(area / aspect), 4, h - 2))
        bw = int(np.clip(area / bh, 4, w - 2))
        if rng.random() < 0.5:
            y0 = int(rng.integers(0, h - bh + 1))
            x0 = int(rng.integers(0, w - bw + 1))
            m[y0:y0 + bh, x0:x0 + bw] = 1
        else:
            ax = (max(1, int(bw / 2 * 1.13)), max(1, int(bh / 2 * 1.13)))  # same area as the box
            c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.ellipse(m, c, ax, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        if lo <= m.mean() < hi:
            return m
    return _force_ratio(m, lo, hi, rng)


def outpaint_mask(h: int, w: int, margins: Sequence[int]) -> np.ndarray:
    """1 outside the known window; ``margins`` = (top, left, bottom, right) in pixels."""
    t, l, b, r = (int(v) for v in margins)
    if t + b >= h or l + r >= w:
        raise ValueError(f"margins {tuple(margins)} leave no known window in {h}x{w}")
    m = np.ones((h, w), np.uint8)
    m[t:h - b, l:w - r] = 0
    return m


def random_outpaint_margins(h: int, w: int, rng: RngLike = None, mode: str = "mixed",
                            known_range: Tuple[float, float] = (0.4, 0.8)) -> Tuple[int, int, int, int]:
    """Random margins (t, l, b, r), multiples of 4 (SRN needs sides % 4 == 0).

    mode "srn": a window of half the height and width at a random position (the official
    training geometry, 128x128 known in 256x256); "sides": unknown margins on a random subset
    of the sides; "mixed": one of the two (and the centred 2x canvas) at random.
    """
    rng = as_rng(rng)

    def q(v):
        return int(v) // 4 * 4

    if mode == "mixed":
        mode = ["srn", "sides", "sides", "center"][int(rng.integers(0, 4))]
    if mode == "center":
        return (q(h / 4), q(w / 4), h - q(h / 4) - q(h / 2), w - q(w / 4) - q(w / 2))
    if mode == "srn":
        mh, mw = q(h / 2), q(w / 2)
        t = q(rng.integers(0, h - mh + 1))
        l = q(rng.integers(0, w - mw + 1))
        return (t, l, h - mh - t, w - mw - l)
    # sides: choose which sides are unknown, then a known fraction along each axis
    while True:
        sides = rng.random(4) < 0.5
        if sides.any():
            break
    kh = rng.uniform(*known_range) if (sides[0] or sides[2]) else 1.0
    kw = rng.uniform(*known_range) if (sides[1] or sides[3]) else 1.0
    uh, uw = h - q(h * kh), w - q(w * kw)

    def split(total, a, b):
        if a and b:
            first = q(total * rng.uniform(0.25, 0.75))
            return first, total - first
        return (total, 0) if a else (0, total)

    t, b = split(uh, sides[0], sides[2])
    l, r = split(uw, sides[1], sides[3])
    return (t, l, b, r)


def random_outpaint_mask(h: int, w: int, rng: RngLike = None, mode: str = "mixed") -> np.ndarray:
    return outpaint_mask(h, w, random_outpaint_margins(h, w, rng, mode=mode))


# Evaluation cases for outpainting: fractions of the final canvas (top, left, bottom, right).
OUTPAINT_CASES = {
    "right25": (0.0, 0.0, 0.0, 0.25),      # extend to the right by a third (25 % of the result)
    "leftright25": (0.0, 0.25, 0.0, 0.25),  # 25 % on each side (known = centre half)
    "bottom25": (0.0, 0.0, 0.25, 0.0),     # extend downwards (25 % of the result)
    "all12": (0.12, 0.12, 0.12, 0.12),     # 12 % on every side
    "all2x": (0.25, 0.25, 0.25, 0.25),     # 2x canvas in both directions (SRN's test geometry)
    "bottom50": (0.0, 0.0, 0.5, 0.0),      # extend downwards by 100 % (50 % of the result)
}
# the four cases the outpainting goal is stated on (``inpaint eval --outpaint`` default)
OUTPAINT_GOAL_CASES = ("right25", "leftright25", "bottom25", "all12")


def outpaint_case_margins(h: int, w: int, case: str) -> Tuple[int, int, int, int]:
    """Pixel margins of an :data:`OUTPAINT_CASES` entry on an h x w result (multiples of 4)."""
    ft, fl, fb, fr = OUTPAINT_CASES[case]
    return (int(h * ft) // 4 * 4, int(w * fl) // 4 * 4, int(h * fb) // 4 * 4, int(w * fr) // 4 * 4)


# ----------------------------------------------------------------------------------------------
# fixed evaluation masks and the training sampler

def _stable_seed(*parts) -> "list[int]":
    return [zlib.crc32(str(p).encode("utf-8")) for p in parts]


def eval_mask(size: "int | Tuple[int, int]", ratio_bin: Tuple[float, float], index: int,
              seed: int = EVAL_SEED) -> np.ndarray:
    """The fixed evaluation mask number ``index`` of a hole-ratio bin (free-form strokes).

    Depends only on (size, bin, index, seed): every model is evaluated on the same masks."""
    h, w = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(_stable_seed(seed, bin_name(ratio_bin), index, h, w))
    return free_form_mask(h, w, rng, ratio=ratio_bin)


TRAIN_MIXES = {
    # arch: [(generator name, probability)]
    "rfr": (("free_form", 0.45), ("rfr_stroke", 0.15), ("large", 0.2), ("lama_thick", 0.1), ("lama_train", 0.1)),
    # RFR with a quarter of single compact holes: the strokes-led mix left the starter darkening
    # the centre of box-shaped holes (-12 to -17 levels per channel on 32x32 holes at 128 px)
    "rfr_objects": (("free_form", 0.3), ("rfr_stroke", 0.1), ("large", 0.15), ("lama_thick", 0.1),
                    ("lama_train", 0.1), ("object", 0.25)),
    "aot": (("free_form", 0.5), ("lama_train", 0.25), ("lama_thick", 0.1), ("large", 0.15)),
    "srn": (("outpaint", 1.0),),
    "inpaint": (("free_form", 0.6), ("lama_train", 0.2), ("large", 0.2)),
}


class MaskSampler:
    """Draw training masks from a mix of families: ``MaskSampler("rfr")(h, w, rng)``.

    ``mix``: an arch name of :data:`TRAIN_MIXES` or a sequence of (family, probability);
    families: free_form (ratio uniform over ``ratio``), rfr_stroke, large, object, lama_thin,
    lama_medium, lama_thick, lama_train, outpaint.
    """

    def __init__(self, mix: "str | Sequence" = "inpaint", ratio: Tuple[float, float] = (0.05, 0.6),
                 outpaint_mode: str = "mixed"):
        entries = TRAIN_MIXES[mix] if isinstance(mix, str) else tuple(mix)
        self.names = [e[0] for e in entries]
        p = np.array([float(e[1]) for e in entries])
        self.p = p / p.sum()
        self.ratio = ratio
        self.outpaint_mode = outpaint_mode

    def __call__(self, h: int, w: int, rng: RngLike = None) -> np.ndarray:
        rng = as_rng(rng)
        name = self.names[int(rng.choice(len(self.names), p=self.p))]
        return self.draw(name, h, w, rng)

    def draw(self, name: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        if name == "free_form":
            lo, hi = self.ratio
            a = rng.uniform(lo, hi - 0.05)
            return free_form_mask(h, w, rng, ratio=(a, a + 0.05))
        if name == "rfr_stroke":
            return rfr_stroke_mask(h, w, rng)
        if name == "large":
            return large_hole_mask(h, w, rng)
        if name == "object":
            return object_mask(h, w, rng)
        if name.startswith("lama_"):
            return lama_mask(h, w, rng, preset=name[5:])
        if name == "outpaint":
            return random_outpaint_mask(h, w, rng, mode=self.outpaint_mode)
        raise KeyError(f"unknown mask family {name!r}")


def fixed_val_masks(n: int, size: int, kind: str = "inpaint", seed: int = EVAL_SEED + 1) -> "list[np.ndarray]":
    """Validation masks used during training: free-form cycling over the 10..60 % bins, or the
    four outpainting cases for ``kind == "outpaint"``."""
    out = []
    for i in range(n):
        if kind == "outpaint":
            case = list(OUTPAINT_CASES)[i % len(OUTPAINT_CASES)]
            out.append(outpaint_mask(size, size, outpaint_case_margins(size, size, case)))
        else:
            b = DEFAULT_EVAL_BINS[i % len(DEFAULT_EVAL_BINS)]
            out.append(eval_mask(size, b, i // len(DEFAULT_EVAL_BINS), seed=seed))
    return out
