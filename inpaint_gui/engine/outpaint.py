"""Outpainting: extend an image by (top, left, bottom, right) pixels and fill the new area.

    extend(image, margins=(top, left, bottom, right), model, progress=None, cancel=None,
           **opts) -> canvas

``model`` is a loaded model or a built-in method; names, weights, Auto and the model cache are
:mod:`.service`'s business (``inpaint_gui.engine.outpaint(image, margins, model="srn", ...)``
goes through it):

* a loaded SRN model: the network predicts a 2x canvas around a known window (its native
  setting). Other ratios / large extensions are done in **steps** on the already-extended
  image; each step works on a context window resized to the model's native window area, and
  the new area is rendered at full resolution (cubic upsampling of the prediction +
  high-frequency detail reflected from the border, fading with distance). With the official
  geometry (a 128x128 image, margins summing to 128 per axis) this is exactly the official
  test graph.
* ``"telea" | "ns"`` (also ``"telea-mask" | "ns-mask"``): cv2's Telea / Navier-Stokes on the
  new margin itself; Telea is what Auto runs without SRN weights it may use.
* ``"classical" | "edge"``: the edge extension (mirror continuation that blurs into a
  low-frequency Telea/Navier-Stokes extrapolation, plus fine grain).
* a loaded inpainting model (e.g. LaMa, PatchMatch): the canvas is pre-filled classically and
  the new area is inpainted by :func:`inpaint_gui.engine.pipeline.fill` (the margin mask;
  PatchMatch copies patches of the image into it).

The result has the image's dtype (uint8/uint16; float in [0,1] also accepted) and channel
count (gray, RGB, RGBA: new alpha is opaque); original pixels are byte-identical. All margins
zero returns a copy. ``progress``/``cancel``: see :mod:`inpaint_gui.engine.progress`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .maskops import bbox
from .models.base import InpaintModel
from .progress import as_reporter

# the edge extension: mirrored continuation blurring into a low-resolution extrapolation
CLASSICAL_NAMES = ("classical", "edge", "mirror")
# cv2 Telea / Navier-Stokes run directly on the new margin: what Auto extends with when no SRN
# weights it may use are installed, the best of the weight-free fills in PSNR and SSIM on every
# measured margin case (README "Outpainting without SRN weights"). "telea" means the same Telea
# as for inpainting; the "-mask" names stay for evaluations that say so explicitly.
MASK_FILL_NAMES = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS,
                   "telea-mask": cv2.INPAINT_TELEA, "ns-mask": cv2.INPAINT_NS}
#: Outpainting methods built into this module (no model, no weights).
WEIGHT_FREE_OUTPAINT = CLASSICAL_NAMES + tuple(MASK_FILL_NAMES)

Margins = Tuple[int, int, int, int]


# =============================================================================== helpers

def check_margins(margins) -> Margins:
    try:
        m = tuple(int(v) for v in margins)
    except TypeError:
        raise ValueError(f"margins must be (top, left, bottom, right), got {margins!r}") from None
    if len(m) != 4:
        raise ValueError(f"margins must have 4 values (top, left, bottom, right), got {len(m)}")
    if min(m) < 0:
        raise ValueError(f"margins must be >= 0, got {m}")
    return m  # type: ignore[return-value]


def known_rect_and_margins(known: np.ndarray):
    """Bounding box (y0, x0, y1, x1) of the known pixels and the margins around it, or None."""
    box = bbox(known)
    if box is None:
        return None
    y0, x0, y1, x1 = box
    H, W = known.shape
    return (y0, x0, y1, x1), (y0, x0, H - y1, W - x1)


def telea_fill01(image01: np.ndarray, holes: np.ndarray, radius: float = 5.0,
                 method: int = cv2.INPAINT_TELEA) -> np.ndarray:
    """cv2.inpaint per channel on 16-bit data (stable for any source depth)."""
    m8 = holes.astype(np.uint8) * 255
    img16 = np.rint(np.clip(image01, 0.0, 1.0) * 65535.0).astype(np.uint16)
    out = np.empty(image01.shape, dtype=np.float32)
    for c in range(image01.shape[2]):
        out[..., c] = cv2.inpaint(np.ascontiguousarray(img16[..., c]), m8, radius, method)
    out *= np.float32(1.0 / 65535.0)
    out[~holes] = image01[~holes]
    return out


def _resize(img: np.ndarray, size_hw: Tuple[int, int]) -> np.ndarray:
    h, w = size_hw
    if img.shape[:2] == (h, w):
        return img
    shrink = h * w < img.shape[0] * img.shape[1]
    interp = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    out = cv2.resize(img, (w, h), interpolation=interp)
    if out.ndim == 2:
        out = out[..., None]
    return np.clip(out, 0.0, 1.0) if not shrink else out


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur; large sigmas go through a downscaled copy (fast on big canvases)."""
    if sigma <= 0.3:
        return img
    if sigma <= 4.0:
        return cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    f = sigma / 2.0
    h, w = img.shape[:2]
    hs, ws = max(1, int(round(h / f))), max(1, int(round(w / f)))
    small = cv2.resize(img, (ws, hs), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 1.6, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _rect_distance(shape_hw, rect) -> np.ndarray:
    """Euclidean distance of every canvas pixel to the rectangle (y0, x0, y1, x1) (0 inside)."""
    H, W = shape_hw
    y0, x0, y1, x1 = rect
    ys = np.arange(H, dtype=np.float32)
    xs = np.arange(W, dtype=np.float32)
    dy = np.maximum(np.maximum(y0 - ys, ys - (y1 - 1)), 0.0)[:, None]
    dx = np.maximum(np.maximum(x0 - xs, xs - (x1 - 1)), 0.0)[None, :]
    return np.sqrt(dy * dy + dx * dx)


# =============================================================================== step planning

@dataclass(frozen=True)
class Step:
    """One model pass. ``transpose``: run on the transposed image (models that extend one
    axis only). In the (possibly transposed) frame: ``size`` before the step, ``ext`` the
    margins this step adds, ``crop`` (y0, x0, h, w) the context window, ``place`` the share
    (0..1) of the spare model canvas put before the window on each axis."""

    transpose: bool
    size: Tuple[int, int]
    ext: Margins
    crop: Tuple[int, int, int, int]
    place: Tuple[float, float]


def _axis_plan(n: int, a: int, b: int, f: int, other_extends: bool, min_ctx: int,
               force_full: bool) -> Tuple[int, int, int, int, float]:
    """(a_step, b_step, crop_start, crop_len, placement) along one axis of length n with
    remaining margins a (before) and b (after) and canvas factor f."""
    if f < 2 or (a == 0 and b == 0):
        return 0, 0, 0, n, 0.5
    cap = (f - 1) * n
    if other_extends or (a > 0 and b > 0) or force_full:
        if a + b <= cap:
            a_s, b_s = a, b
        else:
            a_s = min(a, int(round(cap * a / (a + b))))
            b_s = min(b, cap - a_s)
            if a_s == 0 and b_s == 0:
                a_s = min(a, cap)
        return a_s, b_s, 0, n, a / (a + b)
    e = a or b
    c = min(n, max(-(-e // (f - 1)), min_ctx))
    e_s = min(e, (f - 1) * c)
    if a:
        return e_s, 0, 0, c, 1.0
    return 0, e_s, n - c, c, 0.0


def plan_steps(size_hw: Tuple[int, int], margins: Sequence[int], geometry: Tuple[int, int] = (2, 2),
               band: float = 0.5, context: str = "auto", max_steps: int = 64,
               split_sides: bool = True) -> List[Step]:
    """The sequence of model passes that extends an image of ``size_hw`` by ``margins``.

    ``context="auto"``: one-sided extensions use a band next to that side (at least ``band``
    times the other side, and at least the extension); ``"full"``: always the whole image.
    ``split_sides``: an axis extended on both sides while the other axis is not (left + right,
    top + bottom) is extended one side per pass, the larger margin first (ties: top / left).
    Together, the two margins fill the model's whole canvas and what is kept runs to its far
    edge, where a network predicts worst; one side at a time, the model predicts up to twice
    the margin and the near part is kept (SRN starters, left + right 25 % on 39 held-out
    photos: +0.33 / +0.60 dB). The second side's context leaves out the first side's new area."""
    H, W = (int(v) for v in size_hw)
    t, l, b, r = check_margins(margins)
    fy, fx = (int(v) for v in geometry)
    if fy < 2 and fx < 2:
        raise ValueError(f"model geometry {geometry} cannot extend any axis")
    steps: List[Step] = []
    fresh = (0, 0, 0, 0)  # what the previous pass added when it was one side of a split axis
    while t + l + b + r > 0:
        if len(steps) >= max_steps:
            raise RuntimeError("outpaint: too many steps planned (margins too large for the image)")
        need_y, need_x = t + b > 0, l + r > 0
        transpose = not ((need_y and fy >= 2) or (need_x and fx >= 2))
        if transpose:
            Hf, Wf, rem = W, H, (l, t, r, b)
        else:
            Hf, Wf, rem = H, W, (t, l, b, r)
        tf, lf, bf, rf = rem
        ext_y = fy >= 2 and tf + bf > 0
        ext_x = fx >= 2 and lf + rf > 0
        split = False
        if split_sides and ext_x != ext_y:
            if ext_y and tf and bf:
                tf, bf, split = (tf, 0, True) if tf >= bf else (0, bf, True)
            elif ext_x and lf and rf:
                lf, rf, split = (lf, 0, True) if lf >= rf else (0, rf, True)
        # the second side of a split axis takes its context from the picture without the first
        # side's new area, as the first side did (a prediction is no context for another one)
        pt, pl, pb, pr = fresh if not transpose else (fresh[1], fresh[0], fresh[3], fresh[2])
        ya, yb = (pt if bf and not tf else 0), (pb if tf and not bf else 0)
        xa, xb = (pl if rf and not lf else 0), (pr if lf and not rf else 0)
        if Hf - ya - yb < 16:
            ya = yb = 0
        if Wf - xa - xb < 16:
            xa = xb = 0
        force = context == "full"
        ay = _axis_plan(Hf - ya - yb, tf, bf, fy, ext_x, max(16, int(band * Wf)), force)
        ax = _axis_plan(Wf - xa - xb, lf, rf, fx, ext_y, max(16, int(band * Hf)), force)
        ext = (ay[0], ax[0], ay[1], ax[1])
        steps.append(Step(transpose, (Hf, Wf), ext, (ay[2] + ya, ax[2] + xa, ay[3], ax[3]), (ay[4], ax[4])))
        et, el, eb, er = ext if not transpose else (ext[1], ext[0], ext[3], ext[2])
        fresh = (et, el, eb, er) if split else (0, 0, 0, 0)
        t, l, b, r = t - et, l - el, b - eb, r - er
        H, W = H + et + eb, W + el + er
    return steps


# =============================================================================== model steps

def _model_margins(ext_a: int, ext_b: int, scale: float, cap: int, place: float) -> Tuple[int, int]:
    need_a = int(math.ceil(ext_a * scale - 1e-6)) if ext_a else 0
    need_b = int(math.ceil(ext_b * scale - 1e-6)) if ext_b else 0
    while need_a + need_b > cap:  # rounding overshoot: the far edge replicates instead
        if need_a >= need_b:
            need_a -= 1
        else:
            need_b -= 1
    spare = cap - need_a - need_b
    a = need_a + int(round(spare * place))
    return a, cap - a


def _render(pred: np.ndarray, rect, origin, scale) -> np.ndarray:
    """Sample the model canvas ``pred`` for canvas rectangle ``rect`` (Y0, Y1, X0, X1);
    canvas pixel (Y, X) sits at model coordinate (oy + (Y + .5) * sy - .5, ox + (X + .5) * sx - .5)."""
    Y0, Y1, X0, X1 = rect
    oy, ox = origin
    sy, sx = scale
    h, w = Y1 - Y0, X1 - X0
    if sy == 1.0 and sx == 1.0 and float(oy).is_integer() and float(ox).is_integer():
        y, x = int(oy) + Y0, int(ox) + X0
        if y >= 0 and x >= 0 and y + h <= pred.shape[0] and x + w <= pred.shape[1]:
            return pred[y:y + h, x:x + w].copy()
    src = pred
    if sy > 1.0 or sx > 1.0:  # the prediction is finer than the output: anti-alias first
        sgy = 0.5 * math.sqrt(max(sy * sy - 1.0, 0.0))
        sgx = 0.5 * math.sqrt(max(sx * sx - 1.0, 0.0))
        src = cv2.GaussianBlur(pred, (0, 0), sigmaX=max(sgx, 1e-3), sigmaY=max(sgy, 1e-3),
                               borderType=cv2.BORDER_REPLICATE)
    M = np.array([[sx, 0.0, ox + (X0 + 0.5) * sx - 0.5],
                  [0.0, sy, oy + (Y0 + 0.5) * sy - 0.5]], dtype=np.float64)
    interp = cv2.INTER_CUBIC if min(sy, sx) < 1.0 else cv2.INTER_LINEAR
    out = cv2.warpAffine(src, M, (w, h), flags=interp | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REPLICATE)
    if out.ndim == 2:
        out = out[..., None]
    return np.clip(out, 0.0, 1.0)


HARMONIZE_SIGMA = 0.05  # low-pass of the model's error on its known window, x the window's side:
#                         removes its colour bias, keeps the predicted structure (measured on
#                         the SRN starter in training: 0.05 and 0.1 gave the same gain, 0.3-1.5 dB)


def harmonize(pred: np.ndarray, known: np.ndarray, origin: Tuple[int, int], strength: float = 1.0) -> np.ndarray:
    """Match a model's canvas ``pred`` (float32 HxWxC [0,1]) to the ``known`` window it was
    given (at ``origin`` (top, left) in ``pred``): the low frequencies of the model's error on
    that window -- a colour or brightness bias the network's reconstruction carries -- are
    extended over the new area by Telea and added, so the extension meets the photo without a
    seam or a colour shift. Returns the corrected canvas (``pred`` itself is not changed)."""
    t, l = origin
    h, w = known.shape[:2]
    err = known - pred[t:t + h, l:l + w]
    sigma = max(1.0, HARMONIZE_SIGMA * max(h, w))
    err = cv2.GaussianBlur(err, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    if err.ndim == 2:
        err = err[..., None]
    field = np.full(pred.shape, 0.5, np.float32)
    field[t:t + h, l:l + w] = np.clip(err + 0.5, 0.0, 1.0)
    holes = np.ones(pred.shape[:2], bool)
    holes[t:t + h, l:l + w] = False
    if holes.any():
        field = telea_fill01(field, holes)
    return np.clip(pred + np.float32(strength) * (field - 0.5), 0.0, 1.0)


def _run_step(model, cur: np.ndarray, step: Step, detail: float, detail_decay: float,
              scale_tolerance: float = 1.0, harmonize_strength: float = 1.0) -> np.ndarray:
    Hf, Wf = cur.shape[:2]
    ts, ls, bs, rs = step.ext
    cy, cx, ch, cw = step.crop
    fy, fx = model.geometry
    wh, ww = model.window_size
    mult = int(getattr(model, "multiple", 4))
    s_nat = math.sqrt((wh * ww) / float(ch * cw))
    # a network extends best at the scale it was trained at: the context is resampled to the
    # native window area (an image of the native window size runs unscaled: the official
    # geometry is reproduced exactly); `scale_tolerance` > 1 lets contexts within that linear
    # factor run unscaled instead (measured on the SRN starter at 2x: 0.3-1.7 dB lower)
    tol = max(1.0, float(scale_tolerance))
    s = min(max(1.0, s_nat / tol), s_nat * tol)
    hm = max(mult, int(round(ch * s / mult)) * mult)
    wm = max(mult, int(round(cw * s / mult)) * mult)
    sy, sx = hm / ch, wm / cw
    tm, bm = _model_margins(ts, bs, sy, (fy - 1) * hm, step.place[0])
    lm, rm = _model_margins(ls, rs, sx, (fx - 1) * wm, step.place[1])
    crop = cur[cy:cy + ch, cx:cx + cw]
    crop_m = np.ascontiguousarray(_resize(crop, (hm, wm)), dtype=np.float32)
    pred = model.outpaint_window(crop_m, (tm, lm, bm, rm))
    pred = np.array(pred, dtype=np.float32, copy=True)
    if harmonize_strength > 0:
        pred = harmonize(pred, crop_m, (tm, lm), harmonize_strength)
    pred[tm:tm + hm, lm:lm + wm] = crop_m  # the known low-res window, for seamless sampling
    Hn, Wn = Hf + ts + bs, Wf + ls + rs
    canvas = np.empty((Hn, Wn, cur.shape[2]), dtype=np.float32)
    canvas[ts:ts + Hf, ls:ls + Wf] = cur
    origin = (tm - (ts + cy) * sy, lm - (ls + cx) * sx)
    # in model coordinates canvas pixel Y maps to tm + (Y - ts - cy + .5) * sy - .5
    strips = [(0, ts, 0, Wn), (ts + Hf, Hn, 0, Wn), (ts, ts + Hf, 0, ls), (ts, ts + Hf, ls + Wf, Wn)]
    for Y0, Y1, X0, X1 in strips:
        if Y1 > Y0 and X1 > X0:
            canvas[Y0:Y1, X0:X1] = _render(pred, (Y0, Y1, X0, X1), origin, (sy, sx))
    smin = min(sy, sx)
    if detail > 0 and smin < 0.95:
        _add_border_detail(canvas, cur, step.ext, (sy, sx), detail, detail_decay / smin)
    return canvas


def _add_border_detail(canvas: np.ndarray, cur: np.ndarray, ext: Margins, scale, strength: float,
                       decay: float) -> None:
    """Reflect the image's high frequencies (what the downscaled model could not see) across
    the border into the new area, fading with distance ``decay`` (pixels)."""
    Hf, Wf = cur.shape[:2]
    ts, ls, bs, rs = ext
    sy, sx = scale
    hs, ws = max(1, int(round(Hf * sy))), max(1, int(round(Wf * sx)))
    low = cv2.resize(cv2.resize(cur, (ws, hs), interpolation=cv2.INTER_AREA), (Wf, Hf),
                     interpolation=cv2.INTER_CUBIC)
    if low.ndim == 2:
        low = low[..., None]
    det = cur - low
    lim = 2.5 * det.reshape(-1, det.shape[2]).std(axis=0) + 1e-6
    det = np.clip(det, -lim, lim)
    pad = cv2.copyMakeBorder(det, ts, bs, ls, rs, cv2.BORDER_REFLECT)
    if pad.ndim == 2:
        pad = pad[..., None]
    d = _rect_distance(canvas.shape[:2], (ts, ls, ts + Hf, ls + Wf))
    w = (strength * np.exp(-d / max(decay, 1.0))).astype(np.float32)
    w[ts:ts + Hf, ls:ls + Wf] = 0.0
    canvas += pad * w[..., None]
    np.clip(canvas, 0.0, 1.0, out=canvas)
    canvas[ts:ts + Hf, ls:ls + Wf] = cur


#: :func:`outpaint_float`'s settings when neither the caller nor the model's weight set
#: (``model.outpaint_defaults``, :attr:`.registry.WeightSet.outpaint_options`) gives them
SRN_DEFAULTS = dict(detail=1.0, detail_decay=8.0, band=0.5, context="auto", scale_tolerance=1.0,
                    harmonize=1.0, split_sides=True)


def outpaint_float(model, image01: np.ndarray, margins: Sequence[int], reporter=None,
                   **opts) -> np.ndarray:
    """Outpaint a float32 HxWxC [0,1] image with an SRN-style model (``outpaint_window``,
    ``geometry``, ``window_size``). Returns the float canvas (original values kept).
    ``opts``: the keys of :data:`SRN_DEFAULTS` (others are ignored); ``harmonize``: strength
    of the colour match of each prediction to its known window (:func:`harmonize`; 0 = the
    network's raw output, as the official test graph)."""
    o = {**SRN_DEFAULTS, **dict(getattr(model, "outpaint_defaults", ())),
         **{k: v for k, v in opts.items() if k in SRN_DEFAULTS and v is not None}}
    detail, detail_decay, band, context, scale_tolerance, harmonize, split_sides = (
        o[k] for k in ("detail", "detail_decay", "band", "context", "scale_tolerance", "harmonize",
                       "split_sides"))
    reporter = as_reporter(reporter) if not hasattr(reporter, "stage") else reporter
    m = check_margins(margins)
    cur = np.ascontiguousarray(image01, dtype=np.float32)
    if not any(m):
        return cur.copy()
    from .settings import _as_bool  # the settings' reader: a typed "false" / "0" / "off" too
    steps = plan_steps(cur.shape[:2], m, tuple(model.geometry), band=band, context=context,
                       split_sides=_as_bool(split_sides, "split_sides"))
    n = len(steps)
    for i, st in enumerate(steps):
        reporter.stage(f"outpaint step {i + 1}/{n}" if n > 1 else "outpaint", i, n)
        frame = np.ascontiguousarray(cur.transpose(1, 0, 2)) if st.transpose else cur
        out = _run_step(model, frame, st, detail, detail_decay, scale_tolerance, float(harmonize))
        cur = np.ascontiguousarray(out.transpose(1, 0, 2)) if st.transpose else out
        reporter.check()
    reporter.stage("outpaint", n, n)
    return cur


# =============================================================================== classical

def classical_outpaint(image01: np.ndarray, margins: Sequence[int], method: str = "telea",
                       reporter=None, radius: float = 5.0, work_size: int = 160,
                       grain: float = 1.0, seed: int = 0) -> np.ndarray:
    """Weight-free outpainting: the mirrored continuation of the image (seamless at the
    border) blurs progressively with distance into a smooth low-resolution Telea/NS
    extrapolation of the colours; far areas get a fine grain as strong as the image's own
    fine texture so they do not look flat."""
    reporter = as_reporter(reporter) if not hasattr(reporter, "stage") else reporter
    t, l, b, r = check_margins(margins)
    img = np.ascontiguousarray(image01, dtype=np.float32)
    H, W, C = img.shape
    Hn, Wn = H + t + b, W + l + r
    if t + l + b + r == 0:
        return img.copy()
    flag = cv2.INPAINT_NS if method == "ns" else cv2.INPAINT_TELEA
    reporter.stage("outpaint (classical): colours", 0, 3)
    # 1. low-frequency colour extrapolation on a small canvas
    k = min(1.0, work_size / float(max(Hn, Wn)))
    Hs, Ws = max(2, int(round(Hn * k))), max(2, int(round(Wn * k)))
    y0, x0 = int(round(t * k)), int(round(l * k))
    y1 = min(Hs, max(y0 + 1, int(round((t + H) * k))))
    x1 = min(Ws, max(x0 + 1, int(round((l + W) * k))))
    small = np.zeros((Hs, Ws, C), dtype=np.float32)
    small[y0:y1, x0:x1] = _resize(img, (y1 - y0, x1 - x0))
    holes = np.ones((Hs, Ws), dtype=bool)
    holes[y0:y1, x0:x1] = False
    base_s = telea_fill01(small, holes, radius=max(1.0, radius * k * 2), method=flag)
    base_s = cv2.GaussianBlur(base_s, (0, 0), max(1.0, 0.02 * max(Hs, Ws)), borderType=cv2.BORDER_REFLECT)
    if base_s.ndim == 2:
        base_s = base_s[..., None]
    base = cv2.resize(base_s, (Wn, Hn), interpolation=cv2.INTER_CUBIC)
    if base.ndim == 2:
        base = base[..., None]
    reporter.stage("outpaint (classical): texture", 1, 3)
    # 2. mirrored continuation, blurring with distance
    mirror = cv2.copyMakeBorder(img, t, b, l, r, cv2.BORDER_REFLECT)
    if mirror.ndim == 2:
        mirror = mirror[..., None]
    d = _rect_distance((Hn, Wn), (t, l, t + H, l + W))
    L = max(6.0, 0.12 * math.sqrt(H * W))
    b1 = _blur(mirror, L / 6.0)
    b2 = _blur(mirror, L / 2.0)
    if b1.ndim == 2:
        b1, b2 = b1[..., None], b2[..., None]
    u = (d / L)[..., None]
    a1 = np.clip(u, 0.0, 1.0)
    a2 = np.clip(u - 1.0, 0.0, 1.0)
    mir = (1 - a1) * mirror + a1 * ((1 - a2) * b1 + a2 * b2)
    del b1, b2
    wm = np.exp(-d / (1.5 * L))[..., None]
    fill = wm * mir + (1 - wm) * base
    del mir, base
    reporter.stage("outpaint (classical): grain", 2, 3)
    if grain > 0:
        # film-grain-like noise with the strength of the image's fine texture (deterministic)
        hp = (img - _blur(img, 1.0)).mean(axis=2)
        sigma = 1.4826 * float(np.median(np.abs(hp)))
        if sigma > 0:
            rng = np.random.default_rng(seed)
            noise = cv2.GaussianBlur(rng.standard_normal((Hn, Wn)).astype(np.float32), (0, 0), 0.6)
            noise *= np.float32(sigma / (float(noise.std()) + 1e-8))
            fill += grain * ((1.0 - np.exp(-d / L)) * noise)[..., None]
    out = np.clip(fill, 0.0, 1.0).astype(np.float32)
    out[t:t + H, l:l + W] = img
    reporter.stage("outpaint (classical)", 3, 3)
    return out


# =============================================================================== public API

def _split_channels(img: np.ndarray):
    """-> (rgb-like HxWxC working array, alpha or None, kind) with kind 'gray'|'rgb'|'rgba'."""
    if img.ndim == 2:
        return img[..., None], None, "gray"
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise ValueError(f"image must be HxW, HxWx1, HxWx3 or HxWx4, got shape {img.shape}")
    if img.shape[2] == 4:
        return img[..., :3], img[..., 3], "rgba"
    return img, None, ("gray" if img.shape[2] == 1 else "rgb")


def _to01(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img.astype(np.float32) * np.float32(1 / 255.0)
    if img.dtype == np.uint16:
        return img.astype(np.float32) * np.float32(1 / 65535.0)
    if np.issubdtype(img.dtype, np.floating):
        return np.clip(img.astype(np.float32), 0.0, 1.0)
    raise ValueError(f"image dtype must be uint8, uint16 or float, got {img.dtype}")


def _from01(x: np.ndarray, dtype, quantize: str) -> np.ndarray:
    if dtype == np.uint8 or dtype == np.uint16:
        mx = 255.0 if dtype == np.uint8 else 65535.0
        v = np.clip(x, 0.0, 1.0) * np.float32(mx)
        v = np.floor(v) if (quantize == "truncate" and dtype == np.uint8) else np.rint(v)
        return np.clip(v, 0, mx).astype(dtype)
    return x.astype(dtype)


#: Outpainting options (``model_options`` keys that go to :func:`extend`, not to a loader,
#: unless the model declares them itself, as PatchMatch's ``seed``).
EXTEND_OPTIONS = ("detail", "detail_decay", "band", "context", "scale_tolerance", "harmonize",
                  "split_sides", "quantize", "radius", "grain", "seed")


def split_options(model_options, declared=()) -> "tuple[dict, dict]":
    """``(loader options, extend options)`` of ``model_options``: the keys of
    :data:`EXTEND_OPTIONS` that ``declared`` (the model's own option keys) does not claim go
    to :func:`extend`."""
    loader = dict(model_options or {})
    extend_opts = {k: loader.pop(k) for k in EXTEND_OPTIONS if k in loader and k not in declared}
    return loader, extend_opts


def extend(image: np.ndarray, margins: Sequence[int], model, progress=None, cancel=None,
           quantize: Optional[str] = None, strategy=None, blend=None, **opts) -> np.ndarray:
    """Extend ``image`` by ``margins`` = (top, left, bottom, right) with ``model``: a built-in
    method name (:data:`WEIGHT_FREE_OUTPAINT`), a loaded SRN-style model (``outpaint_window``)
    or a loaded inpainting model (the canvas is pre-filled classically and the new area
    inpainted by :func:`~.pipeline.fill` with ``strategy`` and ``blend``); see the module doc.

    opts (SRN): ``detail`` (0..1+, border detail strength, default 1), ``detail_decay`` (model
    pixels, default 8), ``band`` (min context band / other side, default 0.5), ``context``
    ("auto" | "full"), ``scale_tolerance`` (contexts within this linear factor of the native
    window run unscaled; default 1: always resample to the native window area), ``harmonize``
    (colour match to the known window, default 1; 0 = the network's raw output),
    ``split_sides`` (left + right or top + bottom alone: one side per pass, default true; see
    :func:`plan_steps`). Classical:
    ``radius``, ``grain``, ``seed``. ``quantize``: "truncate" (the official SRN uint8
    conversion, default for SRN unless the weight set says otherwise) or "round"."""
    img = np.asarray(image)
    m = check_margins(margins)
    if img.size == 0:
        raise ValueError("empty image")
    if not any(m):
        return img.copy()
    reporter = as_reporter(progress, cancel)
    reporter.stage("outpaint: preparing", 0, 1)
    work, alpha, kind = _split_channels(img)
    f01 = _to01(work)
    if f01.shape[2] == 1:
        f01 = np.repeat(f01, 3, axis=2)
    quantize = opts.pop("quantize", None) if quantize is None else quantize

    if isinstance(model, str) and model.lower() in MASK_FILL_NAMES:
        reporter.stage(f"outpaint ({model.lower()})", 0, 1)
        canvas = _mask_fill(f01, m, MASK_FILL_NAMES[model.lower()], float(opts.get("radius", 5.0)))
        q = quantize or "round"
    elif isinstance(model, str) and model.lower() in CLASSICAL_NAMES:
        canvas = classical_outpaint(f01, m, method=model.lower(), reporter=reporter,
                                    **{k: opts[k] for k in ("radius", "grain", "work_size", "seed")
                                       if k in opts})
        q = quantize or "round"
    elif hasattr(model, "outpaint_window"):
        sopts = {k: opts[k] for k in SRN_DEFAULTS if k in opts}
        canvas = outpaint_float(model, f01, m, reporter, **sopts)
        q = quantize or dict(getattr(model, "outpaint_defaults", ())).get("quantize", "truncate")
    elif isinstance(model, InpaintModel):
        canvas = _inpaint_model_outpaint(f01, m, model, reporter, strategy, blend)
        q = quantize or "round"
    else:
        raise TypeError(f"model must be one of {', '.join(WEIGHT_FREE_OUTPAINT)} or a loaded "
                        f"model, not {model!r} (the run service loads models by name: "
                        "inpaint_gui.engine.outpaint)")
    reporter.check()
    out = _finish(canvas, img, work, alpha, kind, m, q)
    reporter.stage("outpaint: done", 1, 1)
    return out


def _mask_fill(f01: np.ndarray, m: Margins, method: int, radius: float) -> np.ndarray:
    """cv2's Telea / Navier-Stokes (``method``) on the new margin of the float canvas."""
    t, l, b, r = m
    H, W = f01.shape[:2]
    canvas = np.zeros((H + t + b, W + l + r, 3), np.float32)
    canvas[t:t + H, l:l + W] = f01
    holes = np.ones(canvas.shape[:2], bool)
    holes[t:t + H, l:l + W] = False
    return telea_fill01(canvas, holes, radius=radius, method=method)


def _finish(canvas, img, work, alpha, kind: str, m: Margins, quantize: str) -> np.ndarray:
    """The float RGB canvas back in the image's dtype and channels (gray, RGB, RGBA with
    opaque new alpha), the original pixels put back as they were."""
    t, l, _b, _r = m
    H, W = img.shape[:2]
    if kind == "gray":
        canvas = canvas.mean(axis=2, keepdims=True)
    out = _from01(canvas, img.dtype, quantize)
    out[t:t + H, l:l + W] = work
    if kind == "gray" and img.ndim == 2:
        out = out[..., 0]
    if alpha is not None:
        full = np.full(out.shape[:2], np.iinfo(img.dtype).max if img.dtype.kind == "u" else 1.0,
                       dtype=img.dtype)
        full[t:t + H, l:l + W] = alpha
        out = np.concatenate([out, full[..., None]], axis=2)
    return out


def _inpaint_model_outpaint(f01, m, model, reporter, strategy=None, blend=None) -> np.ndarray:
    """Outpaint with an inpainting model: classical pre-fill, then inpaint the new area."""
    from .pipeline import fill
    t, l, b, r = m
    H, W = f01.shape[:2]
    pre = classical_outpaint(f01, m, reporter=reporter)
    pre16 = np.rint(pre * 65535.0).astype(np.uint16)
    mask = np.full(pre.shape[:2], 255, dtype=np.uint8)
    mask[t:t + H, l:l + W] = 0
    res = fill(pre16, mask, model, strategy=strategy, blend=blend, progress=reporter)
    return res.astype(np.float32) * np.float32(1.0 / 65535.0)
