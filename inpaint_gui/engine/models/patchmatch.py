"""PatchMatch texture fill (Barnes et al. 2009) through PyPatchMatch: no weights.

The hole is filled with patches copied from the known part of the picture (a multi-scale
nearest-neighbour-field search and vote), so grass, sky, walls and water keep the photo's own
grain where Telea / Navier-Stokes smear and small networks go soft. ``pip install
pypatchmatch`` (MIT) ships the native library prebuilt in the wheel; the package is imported
only when the model is first checked or run, never when the registry is listed.

Options: ``patch_size`` (radius of the compared patches: (2r+1)² pixels; 3 by default, as
IOPaint and PyPatchMatch's own examples use) and ``seed`` (the randomised search starts from
it, so equal inputs and options give byte-equal results).

The fill works on 8-bit RGB: 16-bit photos get an 8-bit-precision fill (their known pixels are
kept as they are by the pipeline). The native call cannot stop part-way: a cancel takes effect
when it returns (``SPEC.interruptible`` is False; the worker says so and drops the result).
"""
from __future__ import annotations

import operator
import threading
from typing import Optional

import numpy as np

from ..registry import ModelOption, ModelSpec, ModelUnavailableError, register_model
from .base import InpaintModel, ModelAdapter

DEFAULT_PATCH_SIZE = 3
MAX_PATCH_SIZE = 15  # the library's own default; larger radii are very slow
MAX_SEED = 2 ** 31 - 1  # the native code takes 32 bits unsigned; a spin box holds 31

SPEC = ModelSpec(
    name="patchmatch", title="PatchMatch (texture)", short_title="PatchMatch", task="inpaint",
    native_size=512,
    needs_weights=False, value_range="uint8", default_strategy="crop",
    # crop windows up to this side are filled at the photo's own resolution (the point of
    # copying patches is the photo's own grain; see README "PatchMatch on large photos")
    crop_limit=4096,
    interruptible=False,
    can_outpaint=True,
    description="Copies patches from the rest of the photo (PatchMatch, Barnes et al. 2009): "
                "keeps the grain of grass, sky, walls and water; no weights.",
    user_options=(
        ModelOption("patch_size", "Patch radius", DEFAULT_PATCH_SIZE, 1, MAX_PATCH_SIZE,
                    "Radius of the compared patches ((2r+1)² pixels): larger follows larger "
                    "structures but is much slower"),
        ModelOption("seed", "Seed", 0, 0, MAX_SEED,
                    "Start of the randomised search: the same seed gives the same fill"),
    ),
)

# The native library keeps the seed in one process-wide variable that each call reads when it
# starts, so setting it and filling must not interleave with another thread's call.
_CALL_LOCK = threading.Lock()
_STATE_LOCK = threading.Lock()
_REASON: "list[Optional[str]]" = []  # [reason] once checked


def _import_library():
    import patchmatch  # noqa: PLC0415 - loads the native library; only when needed
    return patchmatch


def _check() -> Optional[str]:
    try:
        pm = _import_library()
    except ImportError as exc:
        return (f"the pypatchmatch package is not installed ({exc}); install it with "
                "'pip install pypatchmatch' (Python 3.11 or newer)")
    except Exception as exc:  # noqa: BLE001 - anything that stops the import
        return f"the pypatchmatch package failed to import: {type(exc).__name__}: {exc}"
    if getattr(pm, "patchmatch_available", False):
        return None
    detail = ""
    try:  # the package only logs why its library did not load: ask again for the message
        from patchmatch import _lib  # noqa: PLC0415
        _lib.load_library()
    except Exception as exc:  # noqa: BLE001
        detail = " ".join(str(exc).split())[:300]
    return ("PyPatchMatch's native library could not be loaded"
            + (f": {detail}" if detail else "")
            + "; reinstall it with 'pip install --force-reinstall --no-cache-dir pypatchmatch'")


def unavailable_reason() -> Optional[str]:
    """None when PatchMatch can run here, else why not (checked once per process)."""
    with _STATE_LOCK:
        if not _REASON:
            _REASON.append(_check())
        return _REASON[0]


def refresh_availability() -> Optional[str]:
    """Check again (after installing the package; tests simulate a broken library)."""
    with _STATE_LOCK:
        _REASON.clear()
    return unavailable_reason()


def _library():
    reason = unavailable_reason()
    if reason:
        raise ModelUnavailableError(f"{SPEC.title} is unavailable: {reason}")
    return _import_library()


def _int_option(value, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise ValueError(f"PatchMatch {name} must be a whole number, not {value!r}")
    try:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, str):
            value = int(value.strip())
        value = operator.index(value)
    except (TypeError, ValueError):
        raise ValueError(f"PatchMatch {name} must be a whole number, not {value!r}") from None
    if not lo <= value <= hi:
        raise ValueError(f"PatchMatch {name} must be between {lo} and {hi}, got {value}")
    return int(value)


class PatchMatchModel(InpaintModel):
    """PyPatchMatch's ``inpaint`` on one window (float [0,1] in and out, as every model)."""

    nbytes = 0  # nothing to keep loaded

    def __init__(self, spec: ModelSpec, patch_size: int = DEFAULT_PATCH_SIZE, seed: int = 0) -> None:
        super().__init__(spec, "cpu")
        self.patch_size = _int_option(patch_size, "patch radius", 1, MAX_PATCH_SIZE)
        self.seed = _int_option(seed, "seed", 0, MAX_SEED)
        self._pm = _library()

    def predict(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        hole = np.asarray(mask) > 0.5
        if not hole.any():
            return np.array(image, dtype=np.float32, copy=True)
        if hole.all():
            raise ValueError("PatchMatch copies patches from the unmasked part of the picture, "
                             "but the mask covers all of it: leave part of the image unmasked")
        img8 = np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
        with _CALL_LOCK:
            self._pm.set_random_seed(self.seed)
            out = self._pm.inpaint(np.ascontiguousarray(img8), hole.astype(np.uint8),
                                   patch_size=self.patch_size)
        return out.astype(np.float32) * np.float32(1.0 / 255.0)

    def to(self, device: str) -> "PatchMatchModel":
        return self  # native CPU code


@register_model
class PatchMatch(ModelAdapter):
    specs = (SPEC,)

    @classmethod
    def unavailable_reason(cls) -> Optional[str]:
        return unavailable_reason()

    @classmethod
    def load(cls, spec: ModelSpec, weights=None, device: str = "cpu", precision: str = "fp32",
             patch_size: int = DEFAULT_PATCH_SIZE, seed: int = 0, **_ignored) -> PatchMatchModel:
        return PatchMatchModel(spec, patch_size=patch_size, seed=seed)
