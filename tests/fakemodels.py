"""Registered test models that run through the real engine path (run service, model cache,
pipeline windows): a slow model (progress and cancel between windows) and a tiny PyTorch
network that runs out of memory inside its forward."""
import time

import cv2
import numpy as np

from inpaint_gui.engine import registry
from inpaint_gui.engine.models.base import InpaintModel, ModelAdapter, TorchAdapter, TorchInpaintModel
from inpaint_gui.engine.registry import ModelSpec, WeightSet


def register(monkeypatch, adapter):
    """Register ``adapter``'s specs for the test's duration."""
    for spec in adapter.specs:
        monkeypatch.setitem(registry._MODELS, spec.name, (spec, adapter))
    return adapter


# ------------------------------------------------------------------------------ slow

class SlowModel(InpaintModel):
    """Sleeps ``delay`` s per window, or works ``busy`` s per window (real Telea fills, which
    hold the GIL in part); fills with Telea."""

    def __init__(self, spec, delay=0.01, busy=0.0):
        super().__init__(spec)
        self.delay, self.busy = float(delay), float(busy)

    def predict(self, image, mask):
        m8 = (mask > 0.5).astype(np.uint8) * 255
        img8 = np.rint(image * 255).astype(np.uint8)
        t0 = time.perf_counter()
        out = cv2.inpaint(img8, m8, 3, cv2.INPAINT_TELEA)
        while time.perf_counter() - t0 < self.busy:
            out = cv2.inpaint(img8, m8, 3, cv2.INPAINT_TELEA)
        time.sleep(self.delay)
        return out.astype(np.float32) / 255


class Slow(ModelAdapter):
    specs = (ModelSpec(name="slow", title="Slow", task="inpaint", native_size=32,
                       needs_weights=False, default_strategy="tile"),)

    @classmethod
    def load(cls, spec=None, weights=None, device="cpu", precision="fp32", delay=0.01, busy=0.0,
             **_):
        return SlowModel(spec or cls.specs[0], delay, busy)


def slow_inputs(windows: int = 80):
    """An image and a mask covering it whose 32 px tiles make ``windows`` windows."""
    rows = max(1, windows // 10)
    image = np.random.default_rng(0).integers(0, 256, (32 * rows, 320, 3), dtype=np.uint8)
    return image, np.full(image.shape[:2], 255, np.uint8)


def slow_settings(**options):
    """RunSettings of the slow model: one window per 32 px tile."""
    from inpaint_gui.engine.pipeline import HDStrategy
    from inpaint_gui.engine.settings import RunSettings
    return RunSettings(model="slow", strategy=HDStrategy("tile", tile_size=32, tile_overlap=0),
                       model_strategy=False, model_options=options)


# ------------------------------------------------------------------------------ out of memory

OOM_MESSAGE = "CUDA out of memory. Tried to allocate 2.00 GiB"


def _torch():
    import torch
    return torch


def make_oom_net():
    torch = _torch()

    class OOMNet(torch.nn.Module):
        """One convolution; its forward runs out of memory above ``max_pixels`` per input,
        or whenever it is "on the GPU"."""

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(4, 3, 3, padding=1)
            self.max_pixels = None
            self.on_gpu = False
            self.inputs = []  # (device, H, W) of every forward

        def forward(self, x):
            self.inputs.append(("cuda" if self.on_gpu else "cpu",) + tuple(x.shape[-2:]))
            if self.on_gpu or (self.max_pixels is not None
                               and x.shape[-2] * x.shape[-1] > self.max_pixels):
                raise torch.cuda.OutOfMemoryError(OOM_MESSAGE)
            return torch.sigmoid(self.conv(x))

    return OOMNet()


class OOMModel(TorchInpaintModel):
    """Keeps its tensors on the CPU on any device (this machine may have no GPU); a GPU
    device makes the forward run out of memory."""

    @staticmethod
    def net_inputs(image01, mask01):
        torch = _torch()
        return (torch.cat([image01 * (1 - mask01), mask01], 1),)

    def to(self, device):
        self.device = "cpu"
        self.net.on_gpu = not str(device).startswith("cpu")
        return self


def oom_adapter(max_pixels=None, log=None):
    """An adapter for the network "oomnet" (weights: a file of :func:`make_oom_net`'s state
    dict); ``log`` collects every loaded network."""

    class OOM(TorchAdapter):
        specs = (ModelSpec(name="oomnet", title="OOM Net", task="inpaint", native_size=64,
                           default_strategy="crop",
                           weight_sets=(WeightSet("file", "imported", "oomnet.pt"),)),)
        model_class = OOMModel

        @classmethod
        def build_net(cls, spec, **kw):
            net = make_oom_net()
            net.max_pixels = max_pixels
            if log is not None:
                log.append(net)
            return net

    return OOM


def save_oom_weights(path):
    torch = _torch()
    torch.save(make_oom_net().state_dict(), path)
    return str(path)
