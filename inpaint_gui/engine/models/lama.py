"""LaMa (big-lama) adapter: large-mask inpainting with fast Fourier convolutions.

Official inference conventions (advimman/lama ``bin/predict.py``), reproduced here:

* image RGB in [0, 1]; mask binarised with ``mask > 0`` (1 = hole);
* sides padded bottom/right to a multiple of 8 with numpy ``mode='symmetric'`` (the pipeline
  pads with :attr:`LaMaModel.pad_mode`, and :meth:`LaMaModel.predict` pads itself when called
  with other sizes), the output cropped back;
* network input ``cat([img * (1 - mask), mask])``; sigmoid output in [0, 1].

Weights: the authors' Lightning checkpoint (``big-lama.ckpt`` = ``big-lama/models/best.ckpt``
from ``big-lama.zip``; generator under ``state_dict['generator.*']``) or the traced
TorchScript ``big-lama.pt`` used by lama-cleaner/IOPaint. Both are read without executing
anything from the file (:mod:`inpaint_gui.engine.safe_unpickle`). See ``models/lama_official.md``.
No torch import at module level.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ..registry import ModelSpec, WeightSet, register_model
from .base import PATCH_DETAIL_OPTION, TorchAdapter, TorchInpaintModel, tensors_under

_SRC = ("https://github.com/advimman/lama (commit 786f593); big-lama.zip from "
        "https://huggingface.co/smartywu/big-lama/resolve/main/big-lama.zip "
        "(also the Google-Drive/Yandex links of the README)")
_SRC_TS = ("https://github.com/Sanster/models/releases/download/add_big_lama/big-lama.pt "
           "(TorchScript trace of big-lama by lama-cleaner/IOPaint, md5 e3aa4aaa15225a33ec84f9f4bc47e500)")
_LIC = "code: BSD-3-Clause per the repository's LICENSE file; weights released with the code"
_DATA = "Places365-Challenge (Places2), 256x256 random crops, LaMa irregular + box masks"

# Constructor keyword arguments accepted through ``model_options`` / ``WeightSet.options``.
NET_OPTIONS = ("ngf", "n_downsampling", "n_blocks", "max_features", "ratio_g", "input_nc", "output_nc")

SPEC = ModelSpec(
    name="lama",
    title="LaMa (big-lama)",
    short_title="LaMa",
    network="lama",
    task="inpaint",
    native_size=256,
    pad_mod=8,
    min_size=16,
    square=False,
    max_size=None,
    value_range="float32 [0,1]",
    needs_weights=True,
    default_strategy="crop",
    description=("LaMa (Suvorov et al., WACV 2022): fast Fourier convolutions give an image-wide "
                 "receptive field; strong on large masks and repetitive structure. Trained on "
                 "256 px crops; generalises to about 1-2k px, beyond that it blurs, so large "
                 "photos are processed as crops around the mask."),
    checkpoint_reader="any",  # Lightning .ckpt and TorchScript .pt (safe_unpickle)
    user_options=(PATCH_DETAIL_OPTION,),
    weight_sets=(
        WeightSet(name="big-lama", kind="official", filename="big-lama.ckpt", source=_SRC,
                  licence=_LIC, training_data=_DATA, resolution=256,
                  card="models/lama_official.md", variant="official", size="about 410 MB"),
        WeightSet(name="big-lama-torchscript", kind="official", filename="big-lama.pt",
                  source=_SRC_TS, licence=_LIC, training_data=_DATA, resolution=256,
                  card="models/lama_official.md", variant="official", size="about 200 MB"),
    ),
)


def _pad_symmetric(image: np.ndarray, mask: np.ndarray, mod: int, min_size: int):
    h, w = mask.shape
    th = max(min_size, -(-h // mod) * mod)
    tw = max(min_size, -(-w // mod) * mod)
    th, tw = -(-th // mod) * mod, -(-tw // mod) * mod
    if (th, tw) == (h, w):
        return image, mask
    pad = ((0, th - h), (0, tw - w))
    return (np.pad(image, pad + ((0, 0),), mode="symmetric"), np.pad(mask, pad, mode="symmetric"))


class LaMaModel(TorchInpaintModel):
    """big-lama generator with the official pre/post-processing."""

    pad_mode = "symmetric"  # official predict.py: np.pad(..., mode='symmetric') bottom/right to 8

    def predict(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        h, w = mask.shape
        img_p, msk_p = _pad_symmetric(image, mask, self.spec.pad_mod, self.spec.min_size)
        out = super().predict(img_p, msk_p)
        return np.ascontiguousarray(out[:h, :w])

    def to(self, device: str) -> "LaMaModel":
        if getattr(self.net, "release_fast_cache", None) is not None and not str(device).startswith("cpu"):
            self.net.release_fast_cache()
        return super().to(device)

    def close(self) -> None:
        self.net.release_fast_cache()
        super().close()

    @staticmethod
    def net_inputs(image01, mask01) -> tuple:
        import torch
        m = (mask01 > 0).to(image01.dtype)
        return (torch.cat([image01 * (1 - m), m], dim=1),)


@register_model
class LaMa(TorchAdapter):
    """The authors' Lightning checkpoint (generator under ``state_dict['generator.*']``; the
    discriminator, loss and evaluator entries are ignored) or a TorchScript tree / bare dict
    (the prefix under which all the network's keys are found: ``''``, ``generator.``,
    ``model.generator.`` ...). Option ``fast_path=False``: the module-by-module forward."""

    specs = (SPEC,)
    net_options = NET_OPTIONS
    model_class = LaMaModel
    det_init = {"rule": "v2", "gain": 0.75}
    key_prefixes = ("generator.", "model.generator.", "module.")
    fast_option = True

    @classmethod
    def extract(cls, obj, spec: ModelSpec) -> Mapping:
        return tensors_under(obj, ("state_dict", "generator"))

    @classmethod
    def recognises(cls, keys: "set[str]"):
        if any(".ffc." in k or "convl2l" in k for k in keys):
            return cls.its_own()
        return None
