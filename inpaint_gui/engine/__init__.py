"""Qt-free inpainting engine: numpy in, numpy out.

Boundary convention: image = RGB uint8 (or uint16) HxWx3 with any alpha kept aside by the
caller; mask = uint8 HxW with 255 = fill, 0 = keep. Unmasked pixels come back byte-identical.
"""
from __future__ import annotations

from .pipeline import HDStrategy, MaskSizeError, inpaint, load_model
from .progress import CancelToken, Cancelled, ProgressEvent
from .registry import ModelSpec, WeightSet, get_spec, list_models


def outpaint(image, margins, model: str = "srn", weights=None, **kwargs):
    """Extend ``image`` by ``margins`` = (top, left, bottom, right) pixels and fill the new area.

    See :func:`inpaint_gui.engine.outpaint.outpaint`; original pixels stay byte-identical."""
    from .outpaint import outpaint as _outpaint
    return _outpaint(image, margins=margins, model=model, weights=weights, **kwargs)


__all__ = ["inpaint", "outpaint", "load_model", "HDStrategy", "MaskSizeError", "CancelToken",
           "Cancelled", "ProgressEvent", "ModelSpec", "WeightSet", "get_spec", "list_models"]
