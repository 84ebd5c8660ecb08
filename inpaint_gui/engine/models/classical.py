"""OpenCV's classical fills (Telea fast marching, Navier-Stokes): no weights, always available.

Works per channel on 16-bit data (exact for 8-bit sources; OpenCV's float32 path is unstable),
so 8-bit and 16-bit images are treated alike.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..registry import ModelSpec, register_model
from .base import InpaintModel, ModelAdapter

_FLAGS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


class ClassicalModel(InpaintModel):
    """cv2.inpaint with ``radius`` (pixels of neighbourhood considered, default 5)."""

    def __init__(self, spec: ModelSpec, radius: float = 5.0) -> None:
        super().__init__(spec, "cpu")
        if radius <= 0:
            raise ValueError("radius must be positive")
        self.radius = float(radius)
        self.flag = _FLAGS[spec.name]

    def predict(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        m8 = (mask > 0.5).astype(np.uint8) * 255
        img16 = np.rint(np.clip(image, 0.0, 1.0) * 65535.0).astype(np.uint16)
        out = np.empty(image.shape, dtype=np.float32)
        for c in range(image.shape[2]):
            chan = np.ascontiguousarray(img16[..., c])
            out[..., c] = cv2.inpaint(chan, m8, self.radius, self.flag)
        return out * np.float32(1.0 / 65535.0)

    def to(self, device: str) -> "ClassicalModel":
        return self  # always CPU


@register_model
class Classical(ModelAdapter):
    specs = (
        ModelSpec(name="telea", title="OpenCV Telea", short_title="Telea", task="inpaint",
                  native_size=512, needs_weights=False, value_range="float32 [0,1]",
                  default_strategy="crop", can_outpaint=True,
                  description="Fast marching (Telea 2004): quick, good for thin scratches and small spots."),
        ModelSpec(name="ns", title="OpenCV Navier-Stokes", short_title="Navier-Stokes",
                  task="inpaint", native_size=512, needs_weights=False,
                  value_range="float32 [0,1]", default_strategy="crop", can_outpaint=True,
                  description="Navier-Stokes fluid-dynamics fill (Bertalmio 2001): smooth, for small holes."),
    )

    @classmethod
    def load(cls, spec: ModelSpec, weights=None, device: str = "cpu", precision: str = "fp32",
             radius: float = 5.0, **_ignored) -> ClassicalModel:
        return ClassicalModel(spec, radius=radius)
