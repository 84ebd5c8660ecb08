"""SRN (Wide-Context Semantic Image Extrapolation, CVPR 2019) outpainting adapter.

The official network sees only a known *window* and predicts the whole canvas around it (for
the released CelebA-HQ model: a 128x128 window anywhere inside a 256x256 canvas, i.e. a 2x
canvas per side; the expansion ratio r = canvas area / window area is fixed by the weights).
:meth:`SRNModel.outpaint_window` runs exactly that; :mod:`inpaint_gui.engine.outpaint` plans
the steps (scales, bands, repeated extension) for arbitrary margins and image sizes.

Official weights are TensorFlow checkpoints; convert them once with
``inpaint models convert-srn CKPT_PREFIX -o srn_celebahq256.pt``
(:func:`inpaint_gui.engine.nets.srn.convert_srn_checkpoint`). See ``models/srn_official.md``.
No torch import at module level.
"""
from __future__ import annotations

import os
from typing import Mapping, Optional, Sequence, Tuple

import numpy as np

from ..registry import ModelSpec, WeightSet, register_model
from .base import TorchAdapter, TorchInpaintModel

_SRC = "https://github.com/shepnerd/outpainting_srn (commit c0cc6fc), Google Drive links in its README"
# the converted file: 11.2 M float32 parameters (the TensorFlow download is larger)
_SIZE = "converted: about 45 MB (estimated)"
_LIC = "MIT (code); weights released with the code, no separate licence stated"
# Auto extends a canvas with a learned model only where it measures better than Telea on the
# new margin (README "Outpainting without SRN weights"); the official sets are trained on
# faces or street scenes and unmeasured on general photos here
_OFFICIAL_AUTO = dict(auto_ok=False, auto_reason=(
    "SRN's official weights are trained on faces or street scenes and not measured on general "
    "photos, so Auto does not use them (pick SRN to use them)"))

# The programme's base variant for CPU training (2.8 M parameters instead of 11.2 M); same geometry.
STARTER_OPTIONS = (("cnum", 32), ("expand_ratio", 4))
# The whole picture as each step's context, not a band next to the extended side: measured on
# 30 training-pool photos (256 px, the 42000-step snapshot) +0.48 dB on right 25 % and +0.31 dB
# on bottom 25 % (19 and 17 of 30 photos better; +0.14 / +0.17 dB without the one white-backed
# product photo whose uniform background a band misses; two- and all-sided extensions take the
# whole picture either way). Rounding to uint8: the official graph truncates, which our
# float-trained starter's output does not need (truncation darkens every pixel by half a level:
# 46.3 -> 49.0 dB on a white-backed product photo).
STARTER_OUTPAINT = (("context", "full"), ("quantize", "round"))

SPEC = ModelSpec(
    name="srn",
    title="SRN (outpainting)",
    short_title="SRN",
    network="srn",
    task="outpaint",
    can_outpaint=True,
    native_size=256,
    pad_mod=4,
    min_size=8,
    square=False,
    max_size=None,
    value_range="BGR [-1,1]",
    needs_weights=True,
    default_strategy="original",
    description=("Semantic Regeneration Network (Wang et al., CVPR 2019): extends an image beyond "
                 "its borders from a known window (2x canvas per step); larger extensions are "
                 "done in steps, large images on a downscaled context with detail transfer."),
    weight_sets=(
        WeightSet(name="celebahq-256", kind="official", filename="srn_celebahq256.pt",
                  source=_SRC + " ('CelebA-HQ_256': "
                  "https://drive.google.com/drive/folders/1q8LhVV6oFaqhWABf10lHzkPONJVO7tWr , "
                  "folder checkpoints/celebahq-srn-subpixel)",
                  licence=_LIC, training_data="CelebA-HQ faces, 256x256, 128x128 known window",
                  resolution=256, card="models/srn_official.md", variant="official", size=_SIZE,
                  **_OFFICIAL_AUTO),
        WeightSet(name="paris-streetview", kind="official", filename="srn_paris_streetview.pt",
                  source=_SRC + " ('Paris streetview')", licence=_LIC,
                  training_data="Paris StreetView (Pathak et al.)", resolution=256,
                  card="models/srn_official.md", variant="official", size=_SIZE, **_OFFICIAL_AUTO),
        WeightSet(name="cityscapes", kind="official", filename="srn_cityscapes.pt",
                  source=_SRC + " ('Cityscapes')", licence=_LIC,
                  training_data="Cityscapes street scenes", resolution=256,
                  card="models/srn_official.md", variant="official", size=_SIZE, **_OFFICIAL_AUTO),
        # the user's own training of the starter variant (``inpaint train`` + model manager)
        WeightSet(name="mine", kind="imported", filename="srn_mine.pt",
                  source="your own file, installed with the model manager",
                  licence="yours", training_data="see your training run", variant="base",
                  options=STARTER_OPTIONS, outpaint_options=STARTER_OUTPAINT),
        WeightSet(name="starter", kind="starter", filename="srn_starter.pt",
                  source="trained by this project (inpaint_gui.training) on CPU",
                  licence="same as this project", training_data="project training photo pool",
                  resolution=256, card="models/srn_starter.md", variant="base",
                  sha256="f668e727547206cafc41e98b542268923e25cc2766f6f6fd375444061689242f",
                  options=STARTER_OPTIONS, outpaint_options=STARTER_OUTPAINT, auto_ok=False,
                  auto_reason="the SRN starter is closer to the photo than Telea on the new "
                              "margin by PSNR (+0.38 to +0.92 dB) but not by SSIM (-0.002 to "
                              "-0.010) and is softer, so Auto extends with Telea "
                              "(pick SRN to use it)"),
    ),
)


def geometry_for_ratio(r: int) -> Tuple[int, int]:
    """Canvas factor per axis (fy, fx) for expansion ratio r: 4 -> (2, 2) (CelebA-HQ, window
    inside a 2x canvas), 2 -> (1, 2) (256x512 models: known half columns at full height)."""
    r = int(r)
    k = int(round(r ** 0.5))
    if k * k == r:
        return k, k
    return 1, r


def default_window(r: int, native_size: int = 256) -> Tuple[int, int]:
    fy, fx = geometry_for_ratio(r)
    if (fy, fx) == (1, r):  # e.g. 256x512 canvas, 256x256 window
        return native_size, native_size
    return max(4, native_size // fy), max(4, native_size // fx)


class SRNModel(TorchInpaintModel):
    """Wraps :class:`~inpaint_gui.engine.nets.srn.SRNGenerator`.

    ``geometry`` (fy, fx): canvas = (fy*h, fx*w) for a window h x w; ``window_size``: the native
    window (model pixels); ``multiple``: window sides are multiples of this."""

    multiple = 4

    def __init__(self, spec: ModelSpec, net, device: str = "cpu", precision: str = "fp32",
                 window: Optional[Sequence[int]] = None) -> None:
        super().__init__(spec, net, device=device, precision=precision)
        self.expand_ratio = int(net.expand_ratio)
        self.geometry = geometry_for_ratio(self.expand_ratio)
        if window is None:
            window = default_window(self.expand_ratio, spec.native_size)
        elif isinstance(window, (int, float)):
            window = (int(window), int(window))
        self.window_size = (int(window[0]), int(window[1]))

    # ------------------------------------------------------------------ core call
    def outpaint_window(self, known: np.ndarray, margins: Sequence[int]) -> np.ndarray:
        """known: float32 h x w x 3 RGB [0,1] window (sides multiples of 4);
        margins (top, left, bottom, right) with (h+top+bottom)*(w+left+right) == r*h*w.
        Returns the raw prediction float32 (h+top+bottom) x (w+left+right) x 3 RGB [0,1]
        (not composited)."""
        import torch
        known = np.ascontiguousarray(known[..., ::-1], dtype=np.float32)  # RGB -> BGR
        x = torch.from_numpy(known).permute(2, 0, 1)[None].to(self.device)
        x = x * 2.0 - 1.0
        with self._inference():
            out = self.net(x, tuple(int(m) for m in margins))
        out = (out.float()[0].permute(1, 2, 0).cpu().numpy() + 1.0) * 0.5
        return np.ascontiguousarray(np.clip(out[..., ::-1], 0.0, 1.0), dtype=np.float32)

    def outpaint(self, image01: np.ndarray, margins: Sequence[int], progress=None, cancel=None,
                 **opts) -> np.ndarray:
        """Any margins on a float image (see :func:`inpaint_gui.engine.outpaint.outpaint_float`)."""
        from ..outpaint import outpaint_float
        from ..progress import as_reporter
        return outpaint_float(self, image01, margins, as_reporter(progress, cancel), **opts)

    # ------------------------------------------------------------------ inpaint interface
    def predict(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Border-band masks (a known rectangle with unknown margins) are outpainted; holes
        inside the known rectangle are pre-filled with OpenCV Telea (SRN cannot inpaint)."""
        from ..outpaint import known_rect_and_margins, outpaint_float, telea_fill01
        from ..progress import as_reporter
        image = np.asarray(image, dtype=np.float32)
        known = np.asarray(mask) < 0.5
        rect = known_rect_and_margins(known)
        if rect is None:  # nothing known: nothing to extrapolate from
            return image.copy()
        (y0, x0, y1, x1), margins = rect
        crop = image[y0:y1, x0:x1]
        holes = ~known[y0:y1, x0:x1]
        if holes.any():
            crop = telea_fill01(crop, holes)
        if not any(margins):
            return _paste(image, crop, y0, x0)
        return outpaint_float(self, crop, margins, as_reporter(None))

    @staticmethod
    def net_inputs(image01, mask01) -> tuple:
        """The network's arguments for the known window of mask01 (0 = known, a rectangle):
        the window in BGR [-1, 1] and the margins (top, left, bottom, right) around it."""
        import torch
        known = (mask01[0, 0] <= 0).nonzero()
        y0, x0 = (int(v) for v in known.min(0).values)
        y1, x1 = (int(v) + 1 for v in known.max(0).values)
        h, w = mask01.shape[-2:]
        window = torch.flip(image01[..., y0:y1, x0:x1], dims=(1,)) * 2 - 1
        return window, (y0, x0, h - y1, w - x1)

    def forward_tensors(self, image01, mask01):
        import torch
        img = image01[0].permute(1, 2, 0).float().cpu().numpy()
        msk = mask01[0, 0].float().cpu().numpy()
        out = self.predict(img, msk)
        return torch.from_numpy(out).permute(2, 0, 1)[None].to(image01.device)


def _paste(image: np.ndarray, crop: np.ndarray, y0: int, x0: int) -> np.ndarray:
    out = image.copy()
    out[y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]] = crop
    return out


@register_model
class SRN(TorchAdapter):
    """Converted ``.pt`` files (plain tensor dicts), TensorFlow checkpoints (converted on the
    fly, :func:`~..nets.srn.convert_tf_variables`) and dicts of TF-named arrays. Width and
    ratio are read from the weights; option ``window=(h, w)`` sets the native window size used
    for planning."""

    specs = (SPEC,)
    net_options = ("cnum", "expand_ratio", "use_cn", "alpha")
    model_class = SRNModel
    det_init = {"rule": "v2"}
    converts_tensorflow = True

    @classmethod
    def read_tensorflow(cls, prefix) -> dict:
        """The generator of an official TensorFlow checkpoint as a torch state dict."""
        from ..nets.srn import convert_tf_variables, tf_to_torch_key
        from ..tfckpt import CheckpointReader
        reader = CheckpointReader(str(prefix))
        return convert_tf_variables(
            {k: reader.get_tensor(k) for k in reader.keys() if tf_to_torch_key(k) is not None})

    @classmethod
    def load(cls, spec: Optional[ModelSpec] = None, weights=None, device: str = "cpu",
             precision: str = "fp32", **options) -> SRNModel:
        if isinstance(weights, (str, os.PathLike)):
            p = str(weights)  # a checkpoint prefix, its .index file or its folder
            if os.path.isdir(p) or p.endswith(".index") or os.path.isfile(p + ".index"):
                weights = cls.read_tensorflow(p)
        return super().load(spec, weights, device, precision, **options)

    @classmethod
    def extract(cls, obj, spec: ModelSpec) -> Mapping:
        from ..weights import unwrap_state_dict
        if isinstance(obj, dict) and obj and any(isinstance(k, str) and "/" in k for k in obj):
            from ..nets.srn import convert_tf_variables
            return convert_tf_variables(obj)
        return unwrap_state_dict(obj)

    @classmethod
    def detected_options(cls, obj, sd: Mapping) -> dict:
        from ..nets.srn import infer_options
        return infer_options(sd)

    @classmethod
    def wrap(cls, spec, net, device, precision, options) -> SRNModel:
        return SRNModel(spec, net, device=device, precision=precision,
                        window=options.pop("window", None))

    @classmethod
    def recognises(cls, keys: "set[str]"):
        if any("/" in k for k in keys):  # TensorFlow variable names
            return cls.its_own()
        return None
