"""Seam treatment applied after compositing.

``apply_blend(original, filled, mask, settings)`` takes the source image, the composited result
(fill inside the mask, original outside) and the mask (uint8 HxW, > 0 = hole), and returns a
new image in which **only pixels with mask > 0 may differ from** ``original``: every pixel with
mask == 0 is copied byte-for-byte from ``original``. Seams are therefore fixed from the inside
of the hole; nothing outside it is ever touched. uint8 and uint16 images are supported.

Modes (:class:`BlendSettings`):

``none``
    The composite as it is.
``feather``
    A soft edge *inside* the hole: over its outer ``radius`` pixels the result cross-fades from
    the original (at the hole's edge) to the fill (``radius`` pixels in), with a smoothstep
    ramp. The original inside the hole is usually the object being removed, so this is meant
    for masks drawn a little larger than the object (the GUI's "grow mask"): the band is then
    background, and the fill melts into it instead of starting with a hard edge. Keep the
    radius smaller than the grow amount.
``poisson``
    Gradient-domain (Poisson) blending: inside the hole the fill's own gradients are kept,
    while its values are corrected by the smooth (harmonic) function that makes the fill meet
    the surrounding pixels at the hole's edge, removing brightness/colour steps along the
    seam. Across the edge itself the target gradient is zero (the composite has no fill
    outside the hole to take it from), so the fill continues the outside pixels without a
    step. Solved on the hole's bounding box by conjugate gradients, coarse-to-fine (the
    correction is smooth, so a half-resolution solution is an excellent start). ``radius`` is
    not used.
``color``
    Colour matching: for each connected hole, the fill's per-channel mean and standard
    deviation in a band of ``radius`` pixels inside the hole's edge are matched to those of
    the original in a ring of ``radius`` pixels around it (other holes excluded); the same
    linear correction is applied to the whole fill of that hole. The contrast ratio is limited
    to [0.5, 2].
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from . import maskops

BLEND_MODES = ("none", "feather", "poisson", "color")  # the one list (GUI, CLI, settings)


@dataclass(frozen=True)
class BlendSettings:
    """``mode``: "none" | "feather" | "poisson" | "color"; ``radius``: width in pixels of the
    feather ramp / colour-statistics band (ignored by "poisson")."""

    mode: str = "none"
    radius: int = 8

    def __post_init__(self) -> None:
        if self.mode not in BLEND_MODES:
            raise ValueError(f"unknown blend mode {self.mode!r}; choose one of {', '.join(BLEND_MODES)}")
        if self.radius < 0:
            raise ValueError("blend radius must not be negative")

    @classmethod
    def coerce(cls, value) -> "BlendSettings":
        if value is None:
            return cls()
        if isinstance(value, BlendSettings):
            return value
        if isinstance(value, str):
            return cls(mode=value)
        raise TypeError(f"blend must be a mode name or BlendSettings, not {type(value).__name__}")


def _max_value(dtype) -> float:
    return 65535.0 if dtype == np.uint16 else 255.0


def apply_blend(original: np.ndarray, filled: np.ndarray, mask: np.ndarray,
                settings: "BlendSettings | str | None" = None) -> np.ndarray:
    """Return a copy of ``filled`` with seams treated; pixels where ``mask == 0`` are taken
    from ``original`` unchanged. ``original``/``filled``: HxWxC (or HxW) uint8/uint16 of the
    same shape and dtype; ``mask``: uint8 HxW, > 0 = hole."""
    settings = BlendSettings.coerce(settings)
    original = np.asarray(original)
    filled = np.asarray(filled)
    if original.shape != filled.shape or original.dtype != filled.dtype:
        raise ValueError(f"original {original.dtype}{original.shape} and filled "
                         f"{filled.dtype}{filled.shape} differ")
    if original.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"images must be uint8 or uint16, got {original.dtype}")
    mask = maskops.as_mask(mask)
    if mask.shape != original.shape[:2]:
        raise ValueError(f"mask {mask.shape} does not match the image {original.shape[:2]}")
    squeeze = original.ndim == 2
    if squeeze:
        original, filled = original[..., None], filled[..., None]

    hole = mask > 0
    out = filled.copy()
    out[~hole] = original[~hole]  # the guarantee, whatever ``filled`` holds outside
    if settings.mode != "none" and hole.any():
        if settings.mode == "feather":
            _feather(original, out, mask, settings.radius)
        elif settings.mode == "poisson":
            _poisson(original, out, mask)
        elif settings.mode == "color":
            _color(original, out, mask, max(1, settings.radius))
    return out[..., 0] if squeeze else out


def _crop_box(mask: np.ndarray, margin: int):
    y0, x0, y1, x1 = maskops.bbox(mask)
    h, w = mask.shape
    return max(0, y0 - margin), max(0, x0 - margin), min(h, y1 + margin), min(w, x1 + margin)


def _store(out: np.ndarray, box, values: np.ndarray, sel: np.ndarray) -> None:
    """Write float ``values`` into ``out[box]`` where ``sel``, rounded and clipped."""
    y0, x0, y1, x1 = box
    region = out[y0:y1, x0:x1]
    maxv = _max_value(out.dtype)
    region[sel] = np.clip(np.rint(values[sel]), 0, maxv).astype(out.dtype)


# ----------------------------------------------------------------------------- feather

def _feather(original, out, mask, radius: int) -> None:
    if radius <= 0:
        return
    box = _crop_box(mask, 1)
    y0, x0, y1, x1 = box
    m = mask[y0:y1, x0:x1]
    hole = m > 0
    w = maskops.feather(np.where(hole, np.uint8(255), np.uint8(0)), radius, where="inside")
    w = (w.astype(np.float32) / 255.0)[..., None]
    o = original[y0:y1, x0:x1].astype(np.float32)
    f = out[y0:y1, x0:x1].astype(np.float32)
    _store(out, box, o + (f - o) * w, hole)


# ----------------------------------------------------------------------------- poisson

_COARSEST = 40          # levels with a side this small are solved to convergence
_FINE_ITERS = 80        # CG iterations on each finer level after the coarse start
_TOL = 1e-4             # relative residual


def _neighbour_sum(a: np.ndarray) -> np.ndarray:
    """Sum of the 4 neighbours (zero outside the array); ``a`` is HxWxC."""
    s = np.zeros_like(a)
    s[1:] += a[:-1]
    s[:-1] += a[1:]
    s[:, 1:] += a[:, :-1]
    s[:, :-1] += a[:, 1:]
    return s


def _neighbour_count(shape, at_border) -> np.ndarray:
    """How many 4-neighbours each pixel has inside the image (HxWx1).

    ``at_border`` = (top, left, bottom, right): whether that side of the array is the image's
    border. Elsewhere the crop has a margin, so every hole pixel has all four neighbours."""
    h, w = shape
    n = np.full((h, w, 1), 4.0, np.float32)
    top, left, bottom, right = at_border
    if top:
        n[0] -= 1
    if bottom:
        n[-1] -= 1
    if left:
        n[:, 0] -= 1
    if right:
        n[:, -1] -= 1
    return n


def _extend(values: np.ndarray, known: np.ndarray, steps: int) -> "tuple[np.ndarray, np.ndarray]":
    """Spread ``values`` (HxWxC, valid where ``known``) ``steps`` pixels outward by averaging
    known neighbours. Returns (values, known)."""
    vals = values * known[..., None]
    ind = known.astype(np.float32)
    for _ in range(steps):
        num = cv2.blur(vals, (3, 3), borderType=cv2.BORDER_CONSTANT).reshape(vals.shape)
        den = cv2.blur(ind, (3, 3), borderType=cv2.BORDER_CONSTANT)
        grow = (ind == 0) & (den > 0)
        if not grow.any():
            break
        vals = np.where(grow[..., None], num / np.maximum(den, 1e-6)[..., None], vals)
        ind = np.where(grow, np.float32(1), ind)
    return vals.astype(np.float32), ind > 0


def _down2(a: np.ndarray, shape) -> np.ndarray:
    hc, wc = shape
    return cv2.resize(a, (wc, hc), interpolation=cv2.INTER_AREA).reshape(hc, wc, -1)


def _harmonic(omega: np.ndarray, ring: np.ndarray, ring_known: np.ndarray, at_border,
              b: Optional[np.ndarray] = None) -> np.ndarray:
    """Solve ``sum_{q in N_p} (h_p - h_q) = 0`` for p in ``omega`` with ``h_q = ring_q`` for
    the neighbours q outside ``omega`` (HxWxC float32 result, zero off ``omega``).

    ``b`` (optional) replaces the right-hand side ``sum_{q in N_p - omega} ring_q`` (the
    finest level passes the exact, edge-based one). Coarse-to-fine: the same problem at half
    resolution gives the conjugate-gradient start, so each level needs few iterations."""
    h_, w_ = omega.shape
    inside = omega.astype(np.float32)[..., None]
    n_count = _neighbour_count((h_, w_), at_border)
    if b is None:
        b = _neighbour_sum(ring * (1.0 - inside)) * inside

    def apply_a(x: np.ndarray) -> np.ndarray:
        return (n_count * x - _neighbour_sum(x)) * inside

    x0 = np.zeros_like(b)
    small = min(h_, w_) <= _COARSEST
    if not small:
        cs = ((h_ + 1) // 2, (w_ + 1) // 2)
        om_c = _down2(omega.astype(np.float32), cs)[..., 0] > 0.5
        if om_c.any():
            known_f = (ring_known & ~omega).astype(np.float32)
            wsum = _down2(known_f, cs)[..., 0]
            r_c = _down2(ring * known_f[..., None], cs) / np.maximum(wsum, 1e-6)[..., None]
            r_c, k_c = _extend(r_c, wsum > 0, 3)
            h_c = _harmonic(om_c, r_c, k_c & ~om_c, (True, True, True, True))
            h_c, _ = _extend(h_c, om_c, 3)
            x0 = cv2.resize(h_c, (w_, h_), interpolation=cv2.INTER_LINEAR).reshape(h_, w_, -1)
            x0 = (x0 * inside).astype(np.float32)
    max_iter = max(2 * max(h_, w_), 50) if small else _FINE_ITERS
    return _cg(apply_a, b, x0, max_iter, _TOL)


def _cg(apply_a, b: np.ndarray, x: np.ndarray, max_iter: int, tol: float) -> np.ndarray:
    """Conjugate gradients, the channels solved side by side (per-channel step sizes)."""
    b_norm2 = np.einsum("ijc,ijc->c", b, b, dtype=np.float64)
    if not np.any(b_norm2 > 0):
        return np.zeros_like(b)
    r = b - apply_a(x)
    p = r.copy()
    rr = np.einsum("ijc,ijc->c", r, r, dtype=np.float64)
    limit = tol * tol * np.maximum(b_norm2, 1e-24)
    for _ in range(max_iter):
        if np.all(rr <= limit):
            break
        ap = apply_a(p)
        pap = np.einsum("ijc,ijc->c", p, ap, dtype=np.float64)
        alpha = np.where(pap > 0, rr / np.where(pap > 0, pap, 1.0), 0.0).astype(np.float32)
        x += alpha * p
        r -= alpha * ap
        rr_new = np.einsum("ijc,ijc->c", r, r, dtype=np.float64)
        beta = np.where(rr > 0, rr_new / np.where(rr > 0, rr, 1.0), 0.0).astype(np.float32)
        p *= beta
        p += r
        rr = rr_new
    return x


def poisson_correction(g: np.ndarray, fstar: np.ndarray, omega: np.ndarray,
                       at_border=(False, False, False, False)) -> np.ndarray:
    """The correction ``h`` (HxWxC float32, zero off ``omega``) such that ``g + h`` keeps
    ``g``'s gradients inside ``omega`` and meets ``fstar`` across its edge.

    For p in omega (N_p: its in-image 4-neighbours, f = g + h, f_q = fstar_q off omega):
    ``sum_{q in N_p} (f_p - f_q) = sum_{q in N_p ∩ omega} (g_p - g_q)``, i.e. h is the
    discrete harmonic function whose value across each edge (p in, q out) is
    ``fstar_q - g_p``: the seam mismatch, spread smoothly over the hole."""
    inside = omega.astype(np.float32)[..., None]
    outside = 1.0 - inside
    # exact right-hand side: sum over outside neighbours q of (fstar_q - g_p)
    b = (_neighbour_sum(fstar * outside) - _neighbour_sum(outside) * g) * inside
    # per outside pixel q: fstar_q minus the mean fill of its inside neighbours (coarse levels)
    cnt = _neighbour_sum(inside)
    ring_known = (cnt[..., 0] > 0) & ~omega
    ring = (fstar - _neighbour_sum(g * inside) / np.maximum(cnt, 1.0)) * ring_known[..., None]
    return _harmonic(omega, ring.astype(np.float32), ring_known, at_border, b=b)


def _poisson(original, out, mask) -> None:
    box = _crop_box(mask, 1)
    y0, x0, y1, x1 = box
    h, w = mask.shape
    omega = mask[y0:y1, x0:x1] > 0
    g = out[y0:y1, x0:x1].astype(np.float32)
    fstar = original[y0:y1, x0:x1].astype(np.float32)
    at_border = (y0 == 0, x0 == 0, y1 == h, x1 == w)
    corr = poisson_correction(g, fstar, omega, at_border)
    _store(out, box, g + corr, omega)


# ----------------------------------------------------------------------------- color

def _color(original, out, mask, radius: int) -> None:
    hole_all = mask > 0
    regions, labels = maskops.connected_regions(mask, connectivity=8, return_labels=True)
    h, w = mask.shape
    maxv = _max_value(out.dtype)
    for reg in regions:
        ry0, rx0, ry1, rx1 = reg.bbox
        m = radius + 1
        box = (max(0, ry0 - m), max(0, rx0 - m), min(h, ry1 + m), min(w, rx1 + m))
        y0, x0, y1, x1 = box
        this = labels[y0:y1, x0:x1] == reg.label
        b01 = this.astype(np.uint8)
        d_in = cv2.distanceTransform(b01, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) if not b01.all() \
            else np.full(b01.shape, np.inf, np.float32)
        d_out = cv2.distanceTransform(1 - b01, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        band = this & (d_in <= radius)
        ring = ~hole_all[y0:y1, x0:x1] & (d_out <= radius)
        if band.sum() < 2 or ring.sum() < 2:
            continue
        f = out[y0:y1, x0:x1].astype(np.float64)
        o = original[y0:y1, x0:x1].astype(np.float64)
        mu_b, sd_b = f[band].mean(axis=0), f[band].std(axis=0)
        mu_r, sd_r = o[ring].mean(axis=0), o[ring].std(axis=0)
        scale = np.where(sd_b > 1e-3 * maxv, sd_r / np.maximum(sd_b, 1e-12), 1.0)
        scale = np.clip(scale, 0.5, 2.0)
        corrected = (f - mu_b) * scale + mu_r
        _store(out, box, corrected, this)


__all__ = ["BlendSettings", "BLEND_MODES", "apply_blend"]
