"""Qt-free inpainting engine: numpy in, numpy out.

Boundary convention: image = RGB uint8 (or uint16) HxWx3 with any alpha kept aside by the
caller; mask = uint8 HxW with 255 = fill, 0 = keep. Unmasked pixels come back byte-identical.
"""
from __future__ import annotations

from . import models  # noqa: F401 - importing the adapters registers every model
from .pipeline import HDStrategy, MaskSizeError, inpaint, load_model
from .progress import CancelToken, Cancelled, ProgressEvent
from .registry import ModelSpec, WeightSet, get_spec, list_models


from .outpaint import outpaint  # noqa: E402  (function; the submodule stays importable)

# ``import inpaint_gui.engine.outpaint`` must not shadow the function with the module, and
# ``inpaint_gui.engine.outpaint.outpaint`` must keep working for either spelling.
outpaint.outpaint = outpaint


__all__ = ["inpaint", "outpaint", "load_model", "HDStrategy", "MaskSizeError", "CancelToken",
           "Cancelled", "ProgressEvent", "ModelSpec", "WeightSet", "get_spec", "list_models"]
