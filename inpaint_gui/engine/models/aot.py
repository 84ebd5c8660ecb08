"""AOT-GAN adapter (Zeng et al., "Aggregated Contextual Transformations for High-Resolution
Image Inpainting").

Official inference conventions (``researchmm/AOT-GAN-for-Inpainting`` ``src/test.py``):

* image RGB scaled to [-1, 1] (``to_tensor * 2 - 1``); holes filled with +1:
  ``x = img * (1 - mask) + mask``;
* mask 1 channel, **1 = hole**; sides multiples of 4 (>= 36);
* output: tanh in [-1, 1]; mapped back to RGB [0, 1] with ``(y + 1) / 2``. The official
  composite is ``(1 - mask) * img + mask * pred`` saved with truncation; our pipeline composites
  with rounding and keeps the known pixels byte-identical (the official u8 -> [-1,1] -> u8 round
  trip lowers ~16-19 % of known values by 1).

Weights: the authors' ``G0000000.pt`` (a bare state dict saved from CUDA; read on the CPU with
``weights_only=True``), ``module.``-prefixed or wrapped dicts, fp16 copies, and our own starter
files (``{'arch': 'aot', 'config': {...}, 'state_dict': {...}}`` or bare; the variant is
detected from the tensor shapes). See ``models/aot_official.md``. No torch import at module
level.
"""
from __future__ import annotations

from typing import Mapping

from ..registry import ModelSpec, WeightSet, register_model
from .base import PATCH_DETAIL_OPTION, TorchAdapter, TorchInpaintModel, checkpoint_config

_REPO = "https://github.com/researchmm/AOT-GAN-for-Inpainting (commit 2cd1afd8, README 'Pretrained models')"
_SRC_PLACES = (_REPO + ": Places2 folder "
               "https://drive.google.com/drive/folders/1bSOH-2nB3feFRyDEmiX81CEiWkghss3i?usp=sharing")
_SRC_CELEBA = (_REPO + ": CELEBA-HQ folder "
               "https://drive.google.com/drive/folders/1Zks5Hyb9WAEpupbTdBqsCafmb25yqsGJ?usp=sharing")
_LIC = ("code: Apache-2.0 (repository LICENSE, (c) 2023-2024 researchmm); the weights are "
        "released with the code without a separate licence")

# a bare float32 state dict of 15.2 M parameters (not measured: no copy could be fetched)
_SIZE = "about 61 MB (estimated)"

NET_OPTIONS = ("channels", "block_num", "rates")

# Base variant of the CPU-trained starter weights (inpaint_gui.training, ``--variant base``: the
# small one grown by two blocks to medium, then by two more).
STARTER_OPTIONS = (("channels", 32), ("block_num", 8), ("rates", (1, 2, 4, 8)))

# Holes deeper than this (model pixels) are filled on a smaller window: beyond it the starter's
# fill drifts in colour (a uniform field with a 256-px square hole at 512 px came back 62-87
# levels off, within it 7-20, with the 17 500-step weights; 23-92 against 10-25 with 22 797).
# On 30 training-pool photos with one object-shaped hole each it gave +0.79 dB (25.83 -> 26.62),
# on 512-px free-form holes -0.04 dB (30-40 %) and +0.36 dB (50-60 %); 32 cost 0.31 dB on the
# 30-40 % holes.
STARTER_REACH = 48

# Share (percent) of a PatchMatch fill's fine grain added to the starter's fills
# (:func:`~inpaint_gui.engine.pipeline.patch_detailed`): trained on L1, the network fills deep
# holes with a smooth wash. On 16 training-pool photos at 256 px (40-50 % holes) 70 % took hole
# texture from 0.38 to 0.50 for -0.13 dB and -0.011 SSIM (over the 6-px ramp used then); ungated
# grain at 50 % gave +0.17 for the same PSNR but drew brick and grass grain across white objects
# on the contact sheets. With the 16-px ramp (:data:`~inpaint_gui.engine.pipeline.DETAIL_RAMP`)
# the whole grain: on 16 training photos (as the app runs it) against 70 % over 6 px, 20-30 %
# holes 25.87 -> 25.93 dB (texture 0.61 -> 0.59), 40-50 % 21.92 -> 21.91 (0.50 -> 0.52), 50-60 %
# 19.92 -> 19.90 (0.44 -> 0.46): less grain on thin strokes, more in the middle of large holes.
# Of the grain's shapes, the colour check (:data:`~inpaint_gui.engine.pipeline.DETAIL_AGREE`)
# trades best: on 16 training photos (73501 weights, as the app runs it) 0.1 -> 0.15 -> 0.2 gave
# 20-30 % 25.98 / 0.59 -> 25.94 / 0.62 -> 25.91 / 0.63 (dB / texture), 40-50 % 22.03 / 0.52 ->
# 21.98 / 0.57 -> 21.95 / 0.60, 50-60 % 20.01 / 0.46 -> 19.96 / 0.51 -> 19.92 / 0.54, about
# 1 texture per dB on large holes against 0.5-0.6 for the share and the ramp; a coarser grain
# (DETAIL_SIGMA 3 -> 4 / 5) 0.7, a finer one (2 / 1.5) 1.0 the other way. 0.15 is the narrowest
# check that brings every bin to 0.5 there; no grain crossed onto white objects on the sheets.
STARTER_DETAIL = 100

SPEC = ModelSpec(
    name="aot",
    title="AOT-GAN",
    network="aot",
    task="inpaint",
    native_size=512,
    pad_mod=4,
    min_size=36,
    square=False,
    max_size=None,
    value_range="float32 [-1,1]",
    needs_weights=True,
    default_strategy="crop",
    description=("AOT-GAN (Zeng et al., TVCG 2022): eight aggregated contextual transformation "
                 "blocks (dilations 1, 2, 4, 8) with learned gates; trained at 512 px on "
                 "Places2 (scenes) and CelebA-HQ (faces). Good for large holes in high-"
                 "resolution photos; cost grows linearly with the pixel count."),
    user_options=(PATCH_DETAIL_OPTION,),
    weight_sets=(
        WeightSet(name="places2", kind="official", filename="G0000000.pt", source=_SRC_PLACES,
                  licence=_LIC,
                  training_data="Places2 (Places365-Standard), 512x512 crops, PConv irregular masks",
                  resolution=512, card="models/aot_official.md", variant="official", size=_SIZE),
        WeightSet(name="places2-named", kind="official", filename="aot_places2.pt",
                  source=_SRC_PLACES + " (G0000000.pt renamed)", licence=_LIC,
                  training_data="Places2 (Places365-Standard), 512x512 crops, PConv irregular masks",
                  resolution=512, card="models/aot_official.md", variant="official", size=_SIZE),
        WeightSet(name="celebahq", kind="official", filename="aot_celebahq.pt",
                  source=_SRC_CELEBA + " (G0000000.pt renamed)", licence=_LIC,
                  training_data="CelebA-HQ faces, 512x512, PConv irregular masks",
                  resolution=512, card="models/aot_official.md", variant="official", size=_SIZE),
        # the user's own training of the starter variant (``inpaint train`` + model manager)
        WeightSet(name="mine", kind="imported", filename="aot_mine.pt",
                  source="your own file, installed with the model manager",
                  licence="yours", training_data="see your training run", variant="base",
                  options=STARTER_OPTIONS),
        WeightSet(name="starter", kind="starter", filename="aot_starter.pt",
                  source="trained by this project (inpaint_gui.training) on CPU",
                  licence="same as this project", training_data="project training photo pool",
                  resolution=256, card="models/aot_starter.md", variant="base",
                  sha256="846e3778c1b8efcc940be9aafad76c370a286c7df3d34e8ab4391556c718d999",
                  options=STARTER_OPTIONS, seam_match=True, hole_reach=STARTER_REACH,
                  patch_detail=STARTER_DETAIL, flip_average=True),
    ),
)


class AOTModel(TorchInpaintModel):
    """AOT-GAN generator with the official pre/post-processing."""

    pad_mode = "symmetric"

    @staticmethod
    def net_inputs(image01, mask01) -> tuple:
        m = (mask01 > 0).to(image01.dtype)               # 1 = hole
        x = image01 * 2 - 1
        return x * (1 - m) + m, m

    @staticmethod
    def net_output(out):
        return (out + 1) / 2


# rates of the aggregated branches, in the order the official network has them
_RATES = (1, 2, 4, 8, 16, 32)


@register_model
class AOT(TorchAdapter):
    """The official ``G*.pt`` (bare, wrapped or ``module.``-prefixed), our ``.pt`` files
    (``{'config': ..., 'state_dict': ...}``; width, block and branch count also read from the
    tensor shapes), fp16 copies."""

    specs = (SPEC,)
    net_options = NET_OPTIONS
    model_class = AOTModel
    det_init = {"rule": "rfr_aot"}
    anchor_key = "encoder.1.weight"

    @classmethod
    def extract(cls, obj, spec: ModelSpec) -> Mapping:
        from ..weights import CheckpointFormatError
        if isinstance(obj, Mapping) and ("optimG" in obj or "optimD" in obj):
            raise CheckpointFormatError("this file holds AOT-GAN optimizer state (O*.pt), not the "
                                        "generator; use the G*.pt file")
        if isinstance(obj, Mapping) and isinstance(obj.get("netG"), Mapping):
            obj = obj["netG"]
        return super().extract(obj, spec)

    @classmethod
    def detected_options(cls, obj, sd: Mapping) -> dict:
        """Stored config, then the width, block count and branch count of the tensors."""
        opts = checkpoint_config(obj, NET_OPTIONS)
        try:
            opts["channels"] = int(sd["encoder.1.weight"].shape[0])
        except (KeyError, AttributeError, IndexError):
            return opts
        blocks = {int(k.split(".")[1]) for k in sd
                  if k.startswith("middle.") and k.split(".")[1].isdigit()}
        if blocks:
            opts["block_num"] = max(blocks) + 1
        branches = {k.split(".")[2] for k in sd if k.startswith("middle.0.block")}
        if branches:
            opts["n_branches"] = len(branches)
        return opts

    @classmethod
    def net_kwargs(cls, ws, detected: dict, options: dict) -> dict:
        detected = dict(detected)
        n_branches = detected.pop("n_branches", None)
        kw = super().net_kwargs(ws, detected, options)
        rates = tuple(kw.get("rates", _RATES[:4]))
        if n_branches is not None and len(rates) != n_branches:  # the file's branch count wins
            kw["rates"] = _RATES[:n_branches] if n_branches <= len(_RATES) else rates
        return kw

    @classmethod
    def recognises(cls, keys: "set[str]"):
        if "encoder.1.weight" in keys and any(k.startswith("middle.0.block00") for k in keys):
            return cls.its_own()
        if any(k.endswith("weight_orig") for k in keys) and "conv.8.weight" in keys:
            return "the AOT-GAN discriminator", "Use the generator file (G*.pt) instead."
        return None
