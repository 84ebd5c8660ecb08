"""Qt-free inpainting engine: numpy in, numpy out.

Boundary convention: image = RGB uint8 (or uint16) HxWx3 with any alpha kept aside by the
caller; mask = uint8 HxW with 255 = fill, 0 = keep. Unmasked pixels come back byte-identical.
"""
from __future__ import annotations

from . import models  # noqa: F401 - importing the adapters registers every model
from .pipeline import HDStrategy, MaskSizeError
from .progress import CancelToken, Cancelled, ProgressEvent
from .registry import ModelSpec, WeightSet, get_spec, list_models
from .service import RunRequest, RunResult, RunService, inpaint, load_model, outpaint, run

# ``inpaint_gui.engine.outpaint`` is this function once the package is imported (the module
# of that name stays importable as ``from inpaint_gui.engine.outpaint import ...``); the
# attribute keeps ``inpaint_gui.engine.outpaint.outpaint`` working for either spelling.
outpaint.outpaint = outpaint

__all__ = ["inpaint", "outpaint", "load_model", "run", "RunRequest", "RunResult", "RunService",
           "HDStrategy", "MaskSizeError", "CancelToken", "Cancelled", "ProgressEvent",
           "ModelSpec", "WeightSet", "get_spec", "list_models"]
