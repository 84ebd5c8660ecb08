"""PEN-Net adapter (pyramid-context encoder network with attention transfer, CVPR 2019).

Official conventions (researchmm/PEN-Net-for-Inpainting ``test.py``), reproduced here:

* image RGB in [-1, 1]; mask 1 = hole; input ``cat([img * (1 - m) + m, m])`` (holes white);
  called as ``netG(input, m)``; tanh output mapped back to [0, 1];
* trained and released at 256x256 squares (test.py resizes every image to 256x256); the
  network itself takes any H, W that are multiples of 64 (non-square included), so windows are
  only padded bottom/right (symmetric) to multiples of 64, which keeps the engine identical to
  the official network on such sizes (:meth:`PENNetModel.predict` pads the same way when
  called directly). The attention is quadratic in the pixel count, so the working side is
  capped at 512 (the pipeline downsizes larger windows).

Weights: the authors' ``gen_XXXXX.pth`` = ``{'netG': state_dict}`` (renamed, see
``models/pennet_official.md``), read without executing code from the file. No torch import
at module level.
"""
from __future__ import annotations

import numpy as np

from typing import Mapping

from ..registry import ModelSpec, WeightSet, register_model
from .base import PATCH_DETAIL_OPTION, TorchAdapter, TorchInpaintModel, tensors_under

_SRC = ("https://github.com/researchmm/PEN-Net-for-Inpainting (commit 8721a55), Google-Drive "
        "links in its README ('pretrained models'); the file is release_model/pennet_*/gen_*.pth")
# {"netG": state dict} of 10.2 M float32 parameters (not measured: no copy could be fetched)
_SIZE = "about 41 MB (estimated)"
_LIC = "MIT (repository LICENSE); weights released with the code, no separate licence stated"

SPEC = ModelSpec(
    name="pennet",
    title="PEN-Net",
    network="pennet",
    task="inpaint",
    native_size=256,
    pad_mod=64,
    min_size=128,
    square=False,
    max_size=512,
    value_range="RGB [-1,1]",
    needs_weights=True,
    default_strategy="crop",
    description=("PEN-Net (Zeng et al., CVPR 2019): a U-Net whose attention transfer fills each "
                 "encoder level from the deeper, already-filled level. Trained on 256x256 squares "
                 "(sides must be multiples of 64); its "
                 "attention cost grows with the square of the pixel count, so it works on "
                 "windows of at most 512 px."),
    checkpoint_reader="any",  # netG containers of the legacy format with extra objects
    user_options=(PATCH_DETAIL_OPTION,),
    weight_sets=(
        WeightSet(name="places2", kind="official", filename="pennet_places2.pth", source=_SRC,
                  licence=_LIC, training_data="Places2 (Places365), 256x256 (configs: square holes)",
                  resolution=256, card="models/pennet_official.md", variant="official", size=_SIZE),
        WeightSet(name="celebahq", kind="official", filename="pennet_celebahq.pth", source=_SRC,
                  licence=_LIC, training_data="CelebA-HQ faces, 256x256 (configs: square holes)",
                  resolution=256, card="models/pennet_official.md", variant="official", size=_SIZE),
        WeightSet(name="dtd", kind="official", filename="pennet_dtd.pth", source=_SRC,
                  licence=_LIC, training_data="DTD (Describable Textures), 256x256",
                  resolution=256, card="models/pennet_official.md", variant="official", size=_SIZE),
        WeightSet(name="facade", kind="official", filename="pennet_facade.pth", source=_SRC,
                  licence=_LIC, training_data="CMP Facade, 256x256",
                  resolution=256, card="models/pennet_official.md", variant="official", size=_SIZE),
    ),
)


def _pad_to(image: np.ndarray, mask: np.ndarray, mod: int, min_size: int, square: bool):
    h, w = mask.shape
    th, tw = (max(min_size, -(-s // mod) * mod) for s in (h, w))
    if square:
        th = tw = max(th, tw)
    th, tw = -(-th // mod) * mod, -(-tw // mod) * mod
    if (th, tw) == (h, w):
        return image, mask
    pad = ((0, th - h), (0, tw - w))
    return (np.pad(image, pad + ((0, 0),), mode="symmetric"), np.pad(mask, pad, mode="symmetric"))


class PENNetModel(TorchInpaintModel):
    pad_mode = "symmetric"

    def predict(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        h, w = mask.shape
        img_p, msk_p = _pad_to(image, mask, self.spec.pad_mod, self.spec.min_size, self.spec.square)
        out = super().predict(img_p, msk_p)
        return np.ascontiguousarray(out[:h, :w])

    @staticmethod
    def net_inputs(image01, mask01) -> tuple:
        import torch
        m = (mask01 > 0).to(image01.dtype)
        img = image01 * 2 - 1
        return torch.cat([img * (1 - m) + m, m], dim=1), m

    @staticmethod
    def net_output(out):
        _pyramid, image = out
        return (image + 1) / 2


@register_model
class PENNet(TorchAdapter):
    """``{'netG': state_dict}`` (official), a bare state dict or other common wrappers.
    Options: ``cnum`` (a smaller variant), ``fast_path=False`` (the official attention formulation
    instead of the equivalent matrix-product one)."""

    specs = (SPEC,)
    net_options = ("cnum",)
    model_class = PENNetModel
    det_init = {"rule": "v2"}
    key_prefixes = ("module.", "netG.", "generator.")
    fast_option = True

    @classmethod
    def extract(cls, obj, spec: ModelSpec) -> Mapping:
        from ..weights import WRAPPER_KEYS
        return tensors_under(obj, ("netG",) + tuple(WRAPPER_KEYS))

    @classmethod
    def recognises(cls, keys: "set[str]"):
        if any(k.startswith(("dw_conv01.", "at_conv0")) for k in keys):
            return cls.its_own()
        return None
