"""The "Auto" model choice: pick a model from the shape of the job, explain it in one line.

Rules, first match wins (all thresholds are module constants so the GUI, the CLI and the tests
agree on them):

* any outpaint margin > 0 → ``"srn"`` (the only model trained for image extension) when weights
  Auto may use are installed (``auto_ok``: measured better than Telea on the new margin); else
  ``"telea"``, which the outpaint pipeline runs on the new margin (the best weight-free
  extension measured, README "Outpainting without SRN weights").
* empty mask → ``"telea"`` (nothing to fill; the run is a no-op).
* **large holes** → ``"rfr"`` (recurrent feature reasoning fills big continuous holes from the
  outside in): the hole covers at least :data:`LARGE_HOLE_RATIO` (20 %) of the image, *or* the
  largest connected hole covers at least :data:`LARGE_COMPONENT_RATIO` (8 %) of the image,
  *or* its bounding box spans at least :data:`LARGE_COMPONENT_SPAN` (50 %) of the shorter
  image side in both directions.
* **small defects** → ``"telea"``: the hole covers less than :data:`TINY_HOLE_RATIO` (1 %) of
  the image and no part of it is thicker than :data:`TINY_THICKNESS` (12 px, twice the largest
  distance from a hole pixel to the nearest known pixel) — dust, scratches and thin wires,
  where the classical fill is instant and indistinguishable.
* **large images with moderate holes** → ``"aot"`` (AOT-GAN's aggregated contextual
  transformations cope well with high-resolution context): the longer side is at least
  :data:`LARGE_IMAGE_SIDE` (1024 px).
* anything else (small/medium images, moderate holes) → ``"aot"`` as well.

When the chosen network cannot be used (``available`` lacks it) the next network in its
fallback chain (:data:`FALLBACKS`) that can is used, ending with ``"telea"``, which is always
available; the reason line says why: its weights are missing, broken, or only weights our
evaluation measured below Telea are installed (``WeightSet.auto_ok=False``).

**The PatchMatch rule** (:data:`PATCHMATCH_RULE`, read from ``auto_rule.json`` beside this
module) then replaces that choice by ``"patchmatch"`` when PatchMatch can run, the choice is one
of the models the rule was measured against (``measured_against``: the AOT-GAN weights of the
study and Telea, never e.g. official LaMa weights) reached from a rule it may override
(``replaces``: moderate and large holes; small thin defects stay with the instant Telea), the
hole covers at most ``max_hole_ratio`` of the image and at most ``max_hole_megapixels`` (PatchMatch
is one native call that Cancel cannot interrupt: this keeps it short), and the known pixels
around the hole are textured enough: their :func:`context_texture` is at least
``min_context_texture`` (0: no condition). The thresholds, the study they
come from and the win rates they reach are in the file, written by
``python -m inpaint_gui.training.auto_study fit`` (see README "Auto and PatchMatch"); the
reason line names the rule. Without the file (or with ``"enabled": false``) the rule is off.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from .registry import short_title

LARGE_HOLE_RATIO = 0.20
LARGE_COMPONENT_RATIO = 0.08
LARGE_COMPONENT_SPAN = 0.50
TINY_HOLE_RATIO = 0.01
TINY_THICKNESS = 12
LARGE_IMAGE_SIDE = 1024

#: Always-available classical models (no weights needed).
CLASSICAL = ("telea", "ns")

#: Where each preferred network falls back to when its weights are missing.
FALLBACKS = {
    "srn": ("telea",),
    "rfr": ("lama", "aot", "pennet", "telea"),
    "aot": ("lama", "rfr", "pennet", "telea"),
}

RULE_FILE = Path(__file__).with_name("auto_rule.json")


@dataclass(frozen=True)
class PatchMatchRule:
    """When Auto prefers PatchMatch (see the module doc); loaded from :data:`RULE_FILE`."""

    max_hole_ratio: float
    min_context_texture: float
    max_hole_megapixels: Optional[float] = None  # keeps the one native call short (Cancel waits)
    replaces: tuple = ("aot", "rfr")  # the size rules' first choices it may override
    measured_against: tuple = ("aot", "telea")  # the models the study compared it with
    name: str = "PatchMatch rule"
    evidence: str = ""  # one line: what the study measured


def load_rule(path: "str | Path" = RULE_FILE) -> Optional[PatchMatchRule]:
    """The rule in ``path``, or None when the file is missing, disabled or unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not data.get("enabled", True):
            return None
        return PatchMatchRule(max_hole_ratio=float(data["max_hole_ratio"]),
                              min_context_texture=float(data["min_context_texture"]),
                              max_hole_megapixels=(None if data.get("max_hole_megapixels") is None
                                                   else float(data["max_hole_megapixels"])),
                              replaces=tuple(data.get("replaces", ("aot", "rfr"))),
                              measured_against=tuple(data.get("measured_against", ("aot", "telea"))),
                              name=str(data.get("name", "PatchMatch rule")),
                              evidence=str(data.get("evidence", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


#: The PatchMatch rule in force (None: off). Tests and callers may pass their own.
PATCHMATCH_RULE: Optional[PatchMatchRule] = load_rule()


@dataclass(frozen=True)
class HoleStats:
    """Measurements of the mask that the rules use (ratios are of the whole image area)."""

    height: int
    width: int
    hole_ratio: float
    components: int
    largest_ratio: float
    largest_bbox: tuple  # (height, width) of the largest connected hole's bounding box
    thickness: float  # 2 x the largest distance from a hole pixel to a known pixel (px)


@dataclass(frozen=True)
class AutoChoice:
    """``model``: the registry name to run; ``reason``: one line for the GUI/CLI."""

    model: str
    reason: str
    preferred: str = ""  # the rule's first choice before the weights fallback
    stats: Optional[HoleStats] = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.model}: {self.reason}"


def hole_stats(mask: np.ndarray) -> HoleStats:
    """Hole ratio and connected-component sizes of ``mask`` (HxW, > 0 = fill)."""
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[..., 0]
    if m.ndim != 2:
        raise ValueError(f"mask must be HxW, got shape {np.shape(mask)}")
    h, w = m.shape
    area = max(1, h * w)
    from .maskops import bbox
    box = bbox(m if m.dtype in (np.uint8, bool) else m > 0)
    if box is None:
        return HoleStats(h, w, 0.0, 0, 0.0, (0, 0), 0.0)
    # measure inside the hole's bounding box only (known pixels around it are what the
    # padding below stands for): a small mask on a huge photo stays cheap
    hole = (m[box[0]:box[2], box[1]:box[3]] > 0).astype(np.uint8)
    total = int(np.count_nonzero(hole))
    import cv2
    n, _labels, st, _c = cv2.connectedComponentsWithStats(hole, connectivity=8)
    st = st[1:]  # drop the background label
    areas = st[:, cv2.CC_STAT_AREA]
    i = int(np.argmax(areas))
    bbox = (int(st[i, cv2.CC_STAT_HEIGHT]), int(st[i, cv2.CC_STAT_WIDTH]))
    # pad with known pixels so holes touching the border still measure their true thickness
    known = np.pad(1 - hole, 1, constant_values=1)
    dist = cv2.distanceTransform(1 - known, cv2.DIST_L2, 5)
    thickness = 2.0 * float(dist.max())
    return HoleStats(h, w, total / area, int(n - 1), float(areas[i]) / area, bbox, thickness)


class Availability(set):
    """Model names Auto may use; ``reasons[name]`` says in one clause why a registry model is
    left out ("RFR weights missing", "... measure below Telea ...")."""

    def __init__(self, names: Iterable[str] = (), reasons: Optional[dict] = None) -> None:
        super().__init__(names)
        self.reasons = dict(reasons or {})


CONTEXT_GAP_PX = 3     # the ring starts this far from the hole (the 5x5 Sobel must not read it)
CONTEXT_RING_PX = 16   # and is this wide
CONTEXT_WORK_SIDE = 1024  # larger crops around the hole are measured downscaled to this side


def context_texture(image: np.ndarray, mask: np.ndarray) -> float:
    """Gradient energy of the known pixels around the hole: the mean Sobel magnitude
    (:func:`~inpaint_gui.engine.texture.gradient_energy`, grey in [0, 1]) over the ring
    :data:`CONTEXT_GAP_PX`..+:data:`CONTEXT_RING_PX` px outside the hole. Photos whose hole's
    bounding box (plus the ring) is larger than :data:`CONTEXT_WORK_SIDE` are measured on an
    area-downscaled copy of it. nan for an empty mask or a ring without pixels."""
    import cv2

    from .texture import gradient_energy
    m = np.asarray(mask)
    hole = m > 0
    if not hole.any():
        return float("nan")
    reach = CONTEXT_GAP_PX + CONTEXT_RING_PX + 3
    ys, xs = np.nonzero(hole.any(axis=1))[0], np.nonzero(hole.any(axis=0))[0]
    h, w = hole.shape
    y0, y1 = max(0, ys[0] - reach), min(h, ys[-1] + 1 + reach)
    x0, x1 = max(0, xs[0] - reach), min(w, xs[-1] + 1 + reach)
    img = np.asarray(image)[y0:y1, x0:x1]
    hl = hole[y0:y1, x0:x1]
    side = max(hl.shape)
    if side > CONTEXT_WORK_SIDE:
        f = CONTEXT_WORK_SIDE / side
        size = (max(1, round(hl.shape[1] * f)), max(1, round(hl.shape[0] * f)))
        img = cv2.resize(np.ascontiguousarray(img), size, interpolation=cv2.INTER_AREA)
        hl = cv2.resize(hl.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    # chessboard distance: the square 5x5 Sobel window of a ring pixel never reaches the hole
    dist = cv2.distanceTransform((~hl).astype(np.uint8), cv2.DIST_C, 3)
    ring = (dist > CONTEXT_GAP_PX) & (dist <= CONTEXT_GAP_PX + CONTEXT_RING_PX)
    return gradient_energy(img, ring)


def available_models() -> Availability:
    """Names of registry models that can run now (usable weights present or none needed),
    leaving out those whose weights are all broken, and those whose only weights are marked
    ``auto_ok=False`` (measured worse than Telea); ``.reasons`` says why each is left out."""
    from . import registry, weights
    out = Availability(CLASSICAL)
    try:
        specs = registry.list_models()
    except Exception:  # a broken adapter must not break the Auto entry
        return out
    for spec in specs:
        title = spec.short_title
        try:
            status, ws, path = weights.weight_status(spec)
        except Exception:
            out.reasons[spec.name] = f"{title} weights unreadable"
            continue
        if status == "missing":
            out.reasons[spec.name] = f"{title} weights missing"
        elif status == "unavailable":
            out.reasons[spec.name] = f"{title} cannot run here ({registry.unavailable_reason(spec)})"
        elif status == "broken":
            out.reasons[spec.name] = f"{title} weights broken ({path.name if path else '?'})"
        elif ws is not None and not ws.auto_ok:
            out.reasons[spec.name] = ws.auto_reason or (f"{title}'s {ws.kind} weights measure below "
                                                        "Telea, so Auto does not use them")
        else:
            out.add(spec.name)
    return out


def _why_not(name: str, reasons: dict) -> str:
    return reasons.get(name) or f"{short_title(name)} weights missing"


def _pick(preferred: str, available: "set[str]", reasons: Optional[dict] = None) -> "tuple[str, str]":
    """(model, suffix for the reason) after the weights fallback."""
    reasons = reasons or {}
    if preferred in available or preferred in CLASSICAL:
        return preferred, ""
    for alt in FALLBACKS.get(preferred, ("telea",)):
        if alt in available or alt in CLASSICAL:
            return alt, f"; {_why_not(preferred, reasons)}; using {short_title(alt)}"
    return "telea", f"; {_why_not(preferred, reasons)}; using Telea"


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%" if x < 0.1 else f"{x * 100:.0f}%"


def choose_model(image_shape: Sequence[int], mask: Optional[np.ndarray],
                 margins: Sequence[int] = (0, 0, 0, 0),
                 available: Optional[Iterable[str]] = None,
                 image: Optional[np.ndarray] = None,
                 rule: "Optional[PatchMatchRule] | str" = "default") -> AutoChoice:
    """Choose a model for inpainting ``mask`` in an image of ``image_shape`` (H, W[, C]),
    or for outpainting by ``margins`` (top, left, bottom, right).

    ``available``: model names that can run (default: :func:`available_models`, whose
    ``reasons`` also explain a fallback truthfully); Telea and Navier-Stokes are always
    available.
    ``image``: the pixels (RGB); the PatchMatch rule needs them (no image: rule not applied).
    ``rule``: the PatchMatch rule ("default": :data:`PATCHMATCH_RULE`; None: off).
    """
    if available is None:
        available = available_models()
    choice = _choose(image_shape, mask, margins, available)
    if rule == "default":
        rule = PATCHMATCH_RULE
    if rule is None or image is None or choice.stats is None or any(int(m) > 0 for m in margins or ()):
        return choice
    if choice.preferred not in rule.replaces or choice.model not in rule.measured_against:
        return choice
    if "patchmatch" not in set(available):
        return choice
    st = choice.stats
    if st.hole_ratio > rule.max_hole_ratio:
        return choice
    hole_mpx = st.hole_ratio * st.height * st.width / 1e6
    if rule.max_hole_megapixels is not None and hole_mpx > rule.max_hole_megapixels:
        return choice
    if tuple(np.shape(image)[:2]) != (st.height, st.width):
        return choice
    texture = ""
    if rule.min_context_texture > 0:
        ctx = context_texture(image, mask)
        if not ctx >= rule.min_context_texture:  # nan (no ring) fails too
            return choice
        texture = (f", textured surroundings (gradient energy {ctx:.2f} \u2265 "
                   f"{rule.min_context_texture:.2f})")
    size = f"a {_pct(st.hole_ratio)} hole (\u2264 {_pct(rule.max_hole_ratio)}"
    if rule.max_hole_megapixels is not None:
        size += f"; {hole_mpx:.2f} Mpx \u2264 {rule.max_hole_megapixels:g} Mpx"
    why = (f"{rule.name}: {size}){texture}: PatchMatch copies the photo's own texture "
           f"where {short_title(choice.model)} would blur it")
    return AutoChoice("patchmatch", why, "patchmatch", st)


def _choose(image_shape: Sequence[int], mask: Optional[np.ndarray],
            margins: Sequence[int] = (0, 0, 0, 0),
            available: Optional[Iterable[str]] = None) -> AutoChoice:
    """The size-and-shape rules (everything but the PatchMatch rule)."""
    if available is None:
        available = available_models()
    reasons = dict(getattr(available, "reasons", None) or {})
    avail = set(available) | set(CLASSICAL)
    h, w = int(image_shape[0]), int(image_shape[1])

    if margins is not None and any(int(m) > 0 for m in margins):
        t, l, b, r = (int(m) for m in margins)
        model, suffix = _pick("srn", avail, reasons)
        if model == "srn":
            return AutoChoice("srn", f"outpaint by {t}/{l}/{b}/{r} px (top/left/bottom/right): "
                                     "SRN is trained to extend images", "srn")
        return AutoChoice("telea", f"outpaint by {t}/{l}/{b}/{r} px: {_why_not('srn', reasons)}; "
                                   "Telea on the new margin (the best weight-free extension "
                                   "measured)", "srn")

    if mask is None:
        return AutoChoice("telea", "no mask: nothing to fill", "telea")
    m = np.asarray(mask)
    if m.shape[:2] != (h, w):
        raise ValueError(f"mask shape {m.shape[:2]} does not match the image {(h, w)}")
    st = hole_stats(m)
    if st.components == 0:
        return AutoChoice("telea", "empty mask: nothing to fill", "telea", st)

    short = max(1, min(h, w))
    span_large = (st.largest_bbox[0] >= LARGE_COMPONENT_SPAN * short
                  and st.largest_bbox[1] >= LARGE_COMPONENT_SPAN * short)
    if (st.hole_ratio >= LARGE_HOLE_RATIO or st.largest_ratio >= LARGE_COMPONENT_RATIO
            or span_large):
        model, suffix = _pick("rfr", avail, reasons)
        why = (f"large hole ({_pct(st.hole_ratio)} of the image, largest region "
               f"{_pct(st.largest_ratio)}): RFR fills big holes from the outside in")
        return AutoChoice(model, why + suffix, "rfr", st)

    if st.hole_ratio < TINY_HOLE_RATIO and st.thickness <= TINY_THICKNESS:
        return AutoChoice("telea", f"small defects ({_pct(st.hole_ratio)} of the image, at most "
                                   f"{st.thickness:.0f} px thick): the classical fill is instant",
                          "telea", st)

    model, suffix = _pick("aot", avail, reasons)
    if max(h, w) >= LARGE_IMAGE_SIDE:
        why = (f"large image ({w}x{h}) with moderate holes ({_pct(st.hole_ratio)}): "
               "AOT-GAN uses wide context well")
    else:
        why = f"moderate holes ({_pct(st.hole_ratio)} of a {w}x{h} image): AOT-GAN"
    return AutoChoice(model, why + suffix, "aot", st)
