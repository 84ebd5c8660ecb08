"""The windowed run of a loaded model on one image: the compositing point of every fill.

``fill(image, mask, model, strategy, blend)`` (names, weights, Auto, retries and the model
cache are :mod:`.service`'s business; ``inpaint_gui.engine.inpaint`` goes through it):

* image: RGB uint8 or uint16, HxWx3 (alpha is the caller's business: keep it aside).
* mask:  uint8 HxW, 255 = fill, 0 = keep; values in between are a soft edge (the fill is
  alpha-blended there). Pixels where mask == 0 come out byte-identical to the input, for every
  model, strategy, dtype and size: compositing happens only in :func:`composite_window`.
* returns an array of the same shape and dtype as ``image``.

HD strategies (:class:`HDStrategy`):

* ``original``: the model sees the whole image (capped at the model's ``max_size``).
* ``resize``: images whose longest side exceeds ``resize_limit`` are downscaled for the model;
  the fill is upscaled back and only masked pixels are replaced.
* ``crop``: above ``crop_trigger``, one window per connected mask region (bbox + ``crop_margin``),
  shifted inward at image borders, overlapping windows merged; the model only sees windows, so
  the cost follows the mask area, not the photo size. Windows larger than ``resize_limit`` (or
  the model's larger ``crop_limit``) are downscaled for the model.
* ``tile``: the mask's bounding boxes are covered by ``tile_size`` tiles (overlap
  ``tile_overlap``); tiles run in sequence and each sees the fill of the previous ones as known
  context. For masks larger than the model's comfortable size.

Each window is padded (bottom/right, model's ``pad_mode``) to the model's ``pad_mod`` /
``min_size`` / square constraints, predicted, cropped back and composited.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional

import cv2
import numpy as np

from .models.base import InpaintModel
from .progress import CancelToken, ProgressCallback, Reporter, as_reporter
from .registry import ModelSpec

STRATEGIES = ("original", "resize", "crop", "tile")

Box = "tuple[int, int, int, int]"  # (y0, x0, y1, x1), end-exclusive


class MaskSizeError(ValueError):
    """The mask does not have the image's height and width."""


@dataclass(frozen=True)
class HDStrategy:
    """How large images are handed to a model (shared by GUI and CLI).

    name: "original" | "resize" | "crop" | "tile".
    resize_limit: longest side the model sees in "resize" (and for oversized crop windows).
    crop_trigger: "crop" only crops when the image's longest side exceeds this.
    crop_margin: context pixels around each mask region in "crop".
    tile_size: tile side in "tile" (0 = twice the model's native size).
    tile_overlap: context shared by neighbouring tiles.
    """

    name: str = "crop"
    resize_limit: int = 1280
    crop_trigger: int = 800
    crop_margin: int = 128
    tile_size: int = 0
    tile_overlap: int = 64

    def __post_init__(self) -> None:
        if self.name not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.name!r}; choose one of {', '.join(STRATEGIES)}")
        if self.resize_limit < 16 or self.crop_trigger < 16:
            raise ValueError("resize_limit and crop_trigger must be at least 16 pixels")
        if self.crop_margin < 0 or self.tile_overlap < 0 or self.tile_size < 0:
            raise ValueError("crop_margin, tile_size and tile_overlap must not be negative")

    @classmethod
    def coerce(cls, value: "HDStrategy | str | None", spec: Optional[ModelSpec] = None) -> "HDStrategy":
        if isinstance(value, HDStrategy):
            return value
        if value is None:
            value = spec.default_strategy if spec is not None else "crop"
        return cls(name=str(value))


# ----------------------------------------------------------------------------- validation

def check_inputs(image: np.ndarray, mask: np.ndarray) -> None:
    """Raise ValueError (:class:`MaskSizeError` for the mask's shape) unless ``image`` is RGB
    uint8/uint16 HxWx3 and ``mask`` uint8 HxW of the same size."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be an HxWx3 RGB array, got shape {getattr(image, 'shape', None)}")
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"image must be uint8 or uint16, got {image.dtype}")
    if not isinstance(mask, np.ndarray) or mask.ndim != 2:
        raise MaskSizeError(f"mask must be an HxW array, got shape {getattr(mask, 'shape', None)}")
    if mask.shape != image.shape[:2]:
        raise MaskSizeError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                            f"{image.shape[1]}x{image.shape[0]}")
    if mask.dtype != np.uint8:
        raise ValueError(f"mask must be uint8 (255 = fill), got {mask.dtype}")


def unmasked_equal(a: np.ndarray, b: np.ndarray, mask: np.ndarray, rows: int = 256) -> bool:
    """Whether ``a`` and ``b`` (HxW[xC], same shape and dtype) are identical wherever
    ``mask == 0``: the contract every fill keeps. Compared in bands of ``rows`` rows, so a
    huge photo needs no full-size copies (boolean indexing would make three)."""
    if a.shape != b.shape or a.dtype != b.dtype or mask.shape != a.shape[:2]:
        return False
    for y in range(0, a.shape[0], rows):
        diff = a[y:y + rows] != b[y:y + rows]
        if diff.ndim == 3:
            diff = diff.any(axis=2)
        if (diff & (mask[y:y + rows] == 0)).any():
            return False
    return True


def _max_value(dtype) -> float:
    return 65535.0 if dtype == np.uint16 else 255.0


def to_float01(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) * np.float32(1.0 / _max_value(image.dtype))


# ----------------------------------------------------------------------------- windows

def mask_regions(mask: np.ndarray) -> "list[tuple[int, int, int, int]]":
    """Bounding boxes (y0, x0, y1, x1) of the 8-connected regions where mask > 0.

    Labels only the box around the mask (a small mask on a huge photo costs a small box,
    not a full-size int32 label image)."""
    from .maskops import bbox
    box = bbox(mask)
    if box is None:
        return []
    by, bx, by1, bx1 = box
    binary = (mask[by:by1, bx:bx1] > 0).astype(np.uint8)
    n, _labels, stats, _c = cv2.connectedComponentsWithStats(binary, connectivity=8)
    boxes = []
    for i in range(1, n):
        x, y, w, h = stats[i, :4]
        boxes.append((int(y) + by, int(x) + bx, int(y + h) + by, int(x + w) + bx))
    return boxes


def _fit_interval(start: int, end: int, limit: int) -> "tuple[int, int]":
    """Shift [start, end) inward so it lies in [0, limit), keeping its length when possible."""
    length = min(end - start, limit)
    if start < 0:
        start = 0
    if start + length > limit:
        start = limit - length
    return start, start + length


def expand_box(box, margin: int, shape) -> "tuple[int, int, int, int]":
    """Grow ``box`` by ``margin`` on every side, shifting it inward at the image borders."""
    y0, x0, y1, x1 = box
    h, w = shape[:2]
    y0, y1 = _fit_interval(y0 - margin, y1 + margin, h)
    x0, x1 = _fit_interval(x0 - margin, x1 + margin, w)
    return y0, x0, y1, x1


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def merge_boxes(boxes: Iterable) -> "list[tuple[int, int, int, int]]":
    """Merge overlapping boxes into their union until no two overlap."""
    boxes = [tuple(b) for b in boxes]
    merged = True
    while merged:
        merged = False
        out: list = []
        for b in boxes:
            for i, o in enumerate(out):
                if _overlap(b, o):
                    out[i] = (min(b[0], o[0]), min(b[1], o[1]), max(b[2], o[2]), max(b[3], o[3]))
                    merged = True
                    break
            else:
                out.append(b)
        boxes = out
    return sorted(boxes)


def crop_windows(mask: np.ndarray, margin: int) -> "list[tuple[int, int, int, int]]":
    """One window per connected mask region (bbox + margin, inside the image), merged on overlap."""
    return merge_boxes(expand_box(b, margin, mask.shape) for b in mask_regions(mask))


def tile_windows(mask: np.ndarray, tile: int, overlap: int) -> "list[tuple[int, int, int, int]]":
    """Tiles of side ``tile`` covering every mask region's bbox, neighbours sharing ``overlap`` px.

    Only tiles that contain masked pixels are returned, in raster order."""
    h, w = mask.shape
    tile = max(16, min(tile, max(h, w)))
    stride = max(1, tile - overlap)
    out = []
    for (y0, x0, y1, x1) in merge_boxes(mask_regions(mask)):
        ys = _starts(y0, y1, tile, stride, h)
        xs = _starts(x0, x1, tile, stride, w)
        for ty in ys:
            for tx in xs:
                box = (ty, tx, min(h, ty + tile), min(w, tx + tile))
                if box not in out and mask[box[0]:box[2], box[1]:box[3]].any():
                    out.append(box)
    return out


def _starts(lo: int, hi: int, tile: int, stride: int, limit: int) -> "list[int]":
    span = hi - lo
    if span <= tile:
        s, _ = _fit_interval(lo - (tile - span) // 2, lo - (tile - span) // 2 + tile, limit)
        return [s]
    n = math.ceil((span - tile) / stride) + 1
    step = (span - tile) / (n - 1)
    return [_fit_interval(int(round(lo + i * step)), int(round(lo + i * step)) + tile, limit)[0]
            for i in range(n)]


# ----------------------------------------------------------------------------- model run

def _pad_to_constraints(img: np.ndarray, msk: np.ndarray, spec: ModelSpec, pad_mode: str):
    h, w = msk.shape
    mod = max(1, spec.pad_mod)
    th = max(spec.min_size, int(math.ceil(h / mod) * mod))
    tw = max(spec.min_size, int(math.ceil(w / mod) * mod))
    if spec.square:
        th = tw = max(th, tw)
    th = int(math.ceil(th / mod) * mod)
    tw = int(math.ceil(tw / mod) * mod)
    if (th, tw) == (h, w):
        return img, msk
    pad = ((0, th - h), (0, tw - w))
    mode = pad_mode
    if mode == "reflect" and (th - h >= h or tw - w >= w):
        mode = "symmetric"  # reflect needs the pad to be shorter than the side
    img_p = np.pad(img, pad + ((0, 0),), mode=mode)
    msk_p = np.pad(msk, pad, mode=mode)
    return img_p, msk_p


def hole_depth(mask01: np.ndarray) -> float:
    """Largest chessboard distance (px) from a hole pixel (mask > 0) to the nearest known pixel
    -- how far square convolution windows must spread to cover the hole; pixels beyond the
    window's edge count as known (the pipeline pads with image content)."""
    hole = (mask01 > 0).astype(np.uint8)
    if not hole.any():
        return 0.0
    padded = np.pad(hole, 1, constant_values=0)
    return float(cv2.distanceTransform(padded, cv2.DIST_C, 3).max())


def _shrunk(image01: np.ndarray, mask, sh: int, sw: int):
    """``image01`` area-averaged to ``sh`` x ``sw``, and ``mask`` (> 0 = fill) with it as float32
    0/1: a cell with any fill in it is fill."""
    img = cv2.resize(image01, (sw, sh), interpolation=cv2.INTER_AREA)
    msk = cv2.resize(np.asarray(mask, np.float32), (sw, sh), interpolation=cv2.INTER_AREA) > 0
    return img, msk.astype(np.float32)


def _predict_padded(model, img: np.ndarray, msk: np.ndarray) -> np.ndarray:
    """``model.predict`` on ``img`` / ``msk`` (float HxWx3 / HxW, 1 = fill) padded to the
    model's constraints, cropped back to HxW."""
    ph, pw = msk.shape
    img_p, msk_p = _pad_to_constraints(img, msk, model.spec, getattr(model, "pad_mode", "symmetric"))
    return model.predict(np.ascontiguousarray(img_p, dtype=np.float32),
                         np.ascontiguousarray(msk_p, dtype=np.float32))[:ph, :pw]


def predict_window(model, image01: np.ndarray, mask01: np.ndarray, limit: Optional[int]) -> np.ndarray:
    """Run ``model`` on one window: downscale to ``limit`` (and the model's max_size, and to the
    model's ``hole_reach``) if needed, pad to its constraints, predict (averaged with the
    mirrored window's prediction when ``model.flip_average``), match the seam, crop back,
    upscale, add photo grain. Returns float32 HxWx3 in [0, 1]."""
    spec = model.spec
    h, w = mask01.shape
    caps = [c for c in (limit, spec.max_size) if c]
    cap = min(caps) if caps else None
    reach = getattr(model, "hole_reach", None)
    if reach:
        depth = hole_depth(mask01)
        if depth > reach:
            cap = min(cap or max(h, w), max(16, int(max(h, w) * reach / depth)))
    img, msk = image01, mask01
    if cap is not None and max(h, w) > cap:
        scale = cap / max(h, w)
        sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
        img, msk = _shrunk(image01, mask01, sh, sw)
    ph, pw = msk.shape
    pred = _predict_padded(model, img, msk)
    if getattr(model, "flip_average", False):
        # the mirror image's fill, mirrored back: its errors are partly its own, so the mean
        # is closer to the photo (the AOT-GAN and RFR starters: +0.03 to +0.09 dB, -0.01 texture)
        pred = 0.5 * (pred + _predict_padded(model, img[:, ::-1], msk[:, ::-1])[:, ::-1])
    if getattr(model, "seam_match", False):
        pred = seam_matched(pred, img, msk > 0.5)
    if (ph, pw) != (h, w):
        pred = cv2.resize(pred, (w, h), interpolation=cv2.INTER_CUBIC)
    pred = np.clip(pred, 0.0, 1.0).astype(np.float32, copy=False)
    strength = getattr(model, "patch_detail", 0.0)
    if strength > 0:
        pred = patch_detailed(pred, image01, mask01 > 0.5, strength, scale=max(h / ph, w / pw))
    return pred


def seam_matched(pred01: np.ndarray, image01: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``pred01`` (float32 HxWx3 [0,1]) with its fill in ``hole`` (bool HxW) corrected by the
    smooth (harmonic) function that makes it meet ``image01`` at the hole's edge, its own
    gradients kept (Poisson, :func:`.blending.poisson_correction`), at the model's resolution.
    A small network's fill can carry a colour or brightness bias (our RFR starter darkens deep
    holes); this removes it where the photo says what the colour is, and costs milliseconds."""
    if not hole.any() or hole.all():
        return pred01
    from .blending import poisson_correction
    g = np.where(hole[..., None], pred01, image01).astype(np.float32)
    corr = poisson_correction(g, image01.astype(np.float32), hole, (True, True, True, True))
    out = pred01.copy()
    out[hole] = np.clip(g[hole] + corr[hole], 0.0, 1.0)
    return out


# Fine detail taken from a PatchMatch fill (:func:`patch_detailed`): wavelengths below about
# DETAIL_SIGMA model pixels, faded in over DETAIL_RAMP model pixels from the hole's edge, and
# kept where the two fills' local colours are within about DETAIL_AGREE of each other (RGB
# distance in [0, 1]; a Gaussian weight, 0 = no colour check). The ramp is long because a
# network's fill keeps real detail near known pixels and loses it with depth: thin strokes get
# little grain and the middle of a large hole the most (measured with the AOT-GAN starter: see
# :data:`~inpaint_gui.engine.models.aot.STARTER_DETAIL`, also for the colour check's width).
DETAIL_SIGMA = 3.0
DETAIL_RAMP = 16.0
DETAIL_AGREE = 0.15
# PatchMatch is one native call that Cancel cannot stop (13-24 s per hole megapixel here): larger
# holes take their patches from a downscaled window, so their grain is coarser
DETAIL_MAX_HOLE_PIXELS = 250_000


def patch_detailed(pred01: np.ndarray, image01: np.ndarray, hole: np.ndarray, strength: float,
                   scale: float = 1.0) -> np.ndarray:
    """``pred01`` (float32 HxWx3 [0,1]) with the photo's own fine grain added inside ``hole``
    (bool HxW, True = fill): ``strength`` (0..1) times the high-pass (Gaussian, sigma
    ``DETAIL_SIGMA * scale`` px) of a PatchMatch fill of the same hole from ``image01``.
    ``scale``: window pixels per model pixel (>= 1 when the model saw a downscaled window), so
    the grain replaces the band the network could not resolve. A network trained on L1 fills
    large holes with the mean of what could be there, a smooth wash; patches copied from the
    photo carry its real grain (grass, gravel, fur) but their own structure, so only their fine
    detail is kept. Unchanged when PatchMatch is not installed."""
    if strength <= 0 or not hole.any() or hole.all():
        return pred01
    from .models.patchmatch import SPEC as PATCHMATCH, PatchMatchModel
    from .registry import ModelUnavailableError
    try:
        pm = PatchMatchModel(PATCHMATCH)
    except ModelUnavailableError:
        return pred01
    k = min(1.0, math.sqrt(DETAIL_MAX_HOLE_PIXELS / float(hole.sum())))
    if k < 1.0:
        h, w = hole.shape
        sh, sw = max(1, round(h * k)), max(1, round(w * k))
        small_img, small_hole = _shrunk(image01, hole, sh, sw)
        if small_hole.all():
            return pred01
        small = pm.predict(small_img, small_hole)
        patches = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    else:
        patches = pm.predict(image01, hole.astype(np.float32))
    s = max(1.0, float(scale))
    sigma = DETAIL_SIGMA * s
    low = cv2.GaussianBlur(patches, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    grain = patches - low
    # distance to the nearest known pixel; outside the window counts as known
    dist = cv2.distanceTransform(np.pad(hole.astype(np.uint8), 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
    weight = np.clip(dist / (DETAIL_RAMP * s), 0.0, 1.0) * np.float32(strength)
    if DETAIL_AGREE:
        # grain only where the patches show what the network shows (grass on grass, not on
        # the white flank of a cow the network continued)
        diff = low - cv2.GaussianBlur(pred01, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        weight *= np.exp(-(diff * diff).sum(-1) / (2 * DETAIL_AGREE ** 2))
    out = pred01 + grain * weight[..., None]
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def composite_window(out: np.ndarray, box, pred01: np.ndarray, mask: np.ndarray) -> None:
    """THE compositing step: write ``pred01`` (float [0,1]) into ``out[box]`` where mask > 0.

    mask == 255 takes the prediction; 0 < mask < 255 alpha-blends it with what ``out`` holds;
    mask == 0 leaves ``out`` untouched (byte-identical)."""
    y0, x0, y1, x1 = box
    region = out[y0:y1, x0:x1]
    m = mask[y0:y1, x0:x1]
    sel = m > 0
    if not sel.any():
        return
    maxv = _max_value(out.dtype)
    pred = pred01[sel] * np.float32(maxv)
    alpha = m[sel].astype(np.float32)[:, None] * np.float32(1 / 255.0)
    soft = alpha < 1.0
    if soft.any():
        pred = np.where(soft, region[sel].astype(np.float32) * (1 - alpha) + pred * alpha, pred)
    region[sel] = np.clip(np.rint(pred), 0, maxv).astype(out.dtype)


def plan_windows(shape, mask: np.ndarray, strategy: HDStrategy, spec: ModelSpec):
    """(windows, size limit for the model, sequential) for a strategy; windows are (y0,x0,y1,x1)."""
    h, w = shape[:2]
    full = [(0, 0, h, w)]
    if strategy.name == "original":
        return full, None, False
    if strategy.name == "resize":
        return full, strategy.resize_limit, False
    if strategy.name == "crop":
        if max(h, w) <= strategy.crop_trigger:
            return full, None, False
        limit = strategy.resize_limit
        if spec.crop_limit:  # a model that should see the photo's own detail (PatchMatch)
            limit = max(limit, spec.crop_limit)
        return crop_windows(mask, strategy.crop_margin), limit, False
    tile = strategy.tile_size or 2 * spec.native_size
    if max(h, w) <= tile:
        return full, None, False
    return tile_windows(mask, tile, strategy.tile_overlap), None, True


def _run(image, mask, model, strategy: HDStrategy, rep: Reporter) -> np.ndarray:
    out = image.copy()
    windows, limit, sequential = plan_windows(image.shape, mask, strategy, model.spec)
    remaining = mask.copy() if sequential else mask
    src = out if sequential else image
    n = len(windows)
    for i, box in enumerate(windows):
        rep.stage(f"{model.spec.title}: window {i + 1}/{n}" if n > 1 else model.spec.title, i, n)
        y0, x0, y1, x1 = box
        win_mask = remaining[y0:y1, x0:x1]
        if not win_mask.any():
            continue
        pred = predict_window(model, to_float01(src[y0:y1, x0:x1]),
                              (win_mask > 0).astype(np.float32), limit)
        rep.check()
        composite_window(out, box, pred, remaining)
        if sequential:
            remaining[y0:y1, x0:x1] = 0  # filled: known context for the next tiles
    rep.stage("composited", n, n)
    return out


def fill(image: np.ndarray, mask: np.ndarray, model: InpaintModel,
         strategy: "HDStrategy | str | None" = None, blend=None,
         progress: "Optional[ProgressCallback | Reporter]" = None,
         cancel: Optional[CancelToken] = None) -> np.ndarray:
    """Fill ``mask`` (uint8 HxW, 255 = fill) in ``image`` (RGB uint8/uint16 HxWx3) with the
    loaded ``model``; returns a new array of the image's shape and dtype, byte-identical where
    mask == 0.

    strategy: HD strategy name or :class:`HDStrategy` (default: the model's own default).
    blend: seam treatment after compositing ("none", "feather", "poisson", "color" or a
    ``blending.BlendSettings``); it only changes pixels where mask > 0.
    Raises :class:`~.progress.Cancelled` if ``cancel`` is set between windows (a model that is
    one native call, ``spec.interruptible`` False, is only checked when that call returns)."""
    check_inputs(image, mask)
    rep = as_reporter(progress, cancel)
    if not mask.any():
        return image.copy()
    out = _run(image, mask, model, HDStrategy.coerce(strategy, model.spec), rep)
    return _blend(image, out, mask, blend, rep)


def _blend(image, out, mask, blend, rep: Reporter) -> np.ndarray:
    if blend is None or blend == "none":
        return out
    from .blending import BlendSettings, apply_blend
    settings = blend if not isinstance(blend, str) else BlendSettings(mode=blend)
    if getattr(settings, "mode", "none") == "none":
        return out
    rep.stage("blending seams", 0, 1)
    return apply_blend(image, out, mask, settings)
