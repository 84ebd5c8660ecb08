"""Base class for every model the pipeline runs.

The pipeline owns padding, cropping, tiling and compositing; a model only predicts.
``predict(image, mask)`` receives an already padded/cropped window that satisfies the
spec's constraints (sides multiple of ``pad_mod``, >= ``min_size``, square if required):

* image: float32 HxWx3, RGB, values in [0, 1]
* mask:  float32 HxW, 1.0 = fill (hole), 0.0 = known
* returns float32 HxWx3 RGB in [0, 1]: the full-frame prediction (not composited;
  the pipeline keeps the known pixels byte-identical itself).
"""
from __future__ import annotations

import numpy as np

from ..registry import ModelSpec


class InpaintModel:
    spec: ModelSpec
    # Deepest hole (px from the nearest known pixel, at the model's input scale) the model can
    # fill; the pipeline shrinks windows with deeper holes to fit (None = no limit).
    hole_reach: "int | None" = None

    def __init__(self, spec: ModelSpec, device: str = "cpu") -> None:
        self.spec = spec
        self.device = device

    def predict(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def to(self, device: str) -> "InpaintModel":
        """Move to ``device`` ("cpu", "cuda", "mps"); classical models ignore it."""
        self.device = device
        return self

    def close(self) -> None:
        """Free memory held by the model (GPU tensors)."""


class TorchInpaintModel(InpaintModel):
    """A model backed by an ``nn.Module``; subclasses implement :meth:`forward_tensors`.

    precision: "fp32", "fp16" or "bf16"; fp16 runs on CUDA only, bf16 on CUDA and on CPUs with
    native bf16 (AVX512-BF16 / AMX), anything else runs fp32 (see
    :func:`~inpaint_gui.engine.devices.effective_precision`).
    """

    def __init__(self, spec: ModelSpec, net, device: str = "cpu", precision: str = "fp32") -> None:
        super().__init__(spec, device)
        self.net = net.eval()
        self.precision = precision
        self.to(device)

    def to(self, device: str) -> "TorchInpaintModel":
        self.device = device
        self.net.to(device)
        return self

    def _autocast(self):
        from ..devices import autocast_context
        return autocast_context(self.device, self.precision)

    def _inference(self):
        """The context of every forward: no autograd, the precision's autocast, freed large
        blocks reused (:func:`~inpaint_gui.engine.memory.reuse_freed_memory`)."""
        from contextlib import ExitStack

        import torch

        from ..memory import reuse_freed_memory
        stack = ExitStack()
        stack.enter_context(reuse_freed_memory())
        stack.enter_context(torch.inference_mode())
        stack.enter_context(self._autocast())
        return stack

    def predict(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch
        img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].to(self.device)
        msk = torch.from_numpy(np.ascontiguousarray(mask))[None, None].to(self.device)
        with self._inference():
            out = self.forward_tensors(img.float(), msk.float())
            out = out.float().clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()
        return np.ascontiguousarray(out, dtype=np.float32)

    def forward_tensors(self, image01, mask01):  # pragma: no cover
        """image01: (1,3,H,W) RGB [0,1]; mask01: (1,1,H,W) 1 = fill. Returns (1,3,H,W) RGB [0,1]."""
        raise NotImplementedError

    def close(self) -> None:
        self.net.to("cpu")
