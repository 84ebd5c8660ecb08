"""RFR-Net adapter (Recurrent Feature Reasoning, Li et al., CVPR 2020).

Official inference conventions (``jingyuanli001/RFR-Inpainting`` ``model.py:test``), reproduced:

* image RGB in [0, 1] (``to_tensor``, no normalisation), holes set to 0: ``gt * mask``;
* mask with **1 = known, 0 = hole**, three identical channels (file white = hole, binarised
  ``> 0``); sides multiples of 16;
* output: the raw last convolution, composited officially as ``out * (1 - m) + gt * m`` and
  saved clamped to [0, 1]. ``forward_tensors`` returns the raw output; the base class clamps it
  to [0, 1] and the pipeline composites it.

Weights: the authors' ``checkpoint_*.pth`` (a dict ``{'n_iter', 'generator', 'optimizer_G'}``;
only ``generator`` is read, with ``weights_only=True``), bare state dicts, ``module.``-prefixed
DataParallel dicts, fp16 copies, and our own starter files (``{'arch': 'rfr', 'config': {...},
'state_dict': {...}}`` or a bare state dict; the variant is detected from the tensor shapes).
See ``models/rfr_official.md``. No torch import at module level.
"""
from __future__ import annotations

from typing import Mapping

from ..registry import ModelSpec, WeightSet, register_model
from .base import PATCH_DETAIL_OPTION, TorchAdapter, TorchInpaintModel, checkpoint_config

_SRC = ("https://github.com/jingyuanli001/RFR-Inpainting (commit e1cad6a8, README 'Pretrained "
        "Models'): Google Drive folder "
        "https://drive.google.com/drive/folders/1EbRSL6SlJqeMliT9qU8V5g0idJqvirZr?usp=sharing")
_LIC = ("code: MIT (repository LICENSE, (c) 2020 jingyuanli98); the weights are released with "
        "the code without a separate licence")

# 31.2 M float32 parameters saved with their Adam state (not measured: no copy could be fetched)
_SIZE = "about 375 MB (estimated)"

# Constructor keyword arguments of nets.rfr.create (model_options / WeightSet.options).
NET_OPTIONS = ("kernel_size", "channels", "max_channels", "recurrences", "tail_channels",
               "tail_planes")

# Small variant for CPU-trained starter weights (trained by inpaint_gui.training).
STARTER_OPTIONS = (("kernel_size", 5), ("channels", 16), ("max_channels", 128),
                   ("recurrences", 4), ("tail_channels", 16), ("tail_planes", 4))

# Holes deeper than this (model pixels) are filled on a smaller window, although the network
# recurs deeper (``RFRNet.reach``, 102 px with the app's extra recurrences): beyond it the
# starter's fill drifts in colour (a uniform 512-px field with a 256-px square hole: 24-85 levels
# off in its worst 16x16 block, 12-33 with the limit). On 30 training-pool photos with one
# object-shaped hole each: +0.46 dB (24.65 -> 25.11); on 512-px free-form holes -0.06 dB
# (30-40 %) and +0.79 dB (50-60 %). The same limit as AOT-GAN's starter (``aot.STARTER_REACH``).
STARTER_REACH = 48

SPEC = ModelSpec(
    name="rfr",
    title="RFR-Net",
    short_title="RFR",
    network="rfr",
    task="inpaint",
    native_size=256,
    pad_mod=16,
    min_size=64,
    square=False,
    max_size=1024,
    value_range="float32 [0,1]",
    needs_weights=True,
    default_strategy="crop",
    description=("RFR-Net (Li et al., CVPR 2020): recurrent feature reasoning fills the hole "
                 "from its border inwards over six steps of partial convolutions, with a "
                 "knowledge-consistent attention between steps. Good on small to medium holes "
                 "in faces (CelebA) and street scenes (Paris StreetView); trained at 256 px."),
    user_options=(PATCH_DETAIL_OPTION,),
    weight_sets=(
        WeightSet(name="celeba", kind="official", filename="checkpoint_celeba.pth", source=_SRC,
                  licence=_LIC, training_data="CelebA faces, 256x256, irregular masks (<= ~60%)",
                  resolution=256, card="models/rfr_official.md", variant="official", size=_SIZE),
        WeightSet(name="paris", kind="official", filename="checkpoint_paris.pth", source=_SRC,
                  licence=_LIC,
                  training_data="Paris StreetView, 256x256, irregular masks (<= ~60%)",
                  resolution=256, card="models/rfr_official.md", variant="official", size=_SIZE),
        # the user's own training of the starter variant (``inpaint train`` + model manager)
        WeightSet(name="mine", kind="imported", filename="rfr_mine.pt",
                  source="your own file, installed with the model manager",
                  licence="yours", training_data="see your training run", variant="tiny",
                  options=STARTER_OPTIONS),
        WeightSet(name="starter", kind="starter", filename="rfr_starter.pt",
                  source="trained by this project (inpaint_gui.training) on CPU",
                  licence="same as this project", training_data="project training photo pool",
                  resolution=256, card="models/rfr_starter.md", variant="tiny",
                  sha256="b16c29bc9f74bca71da5e0c4ea1ad7478da7fb2134089267b93d3a3498dd2ec7",
                  options=STARTER_OPTIONS, auto_ok=False, seam_match=True,
                  hole_reach=STARTER_REACH, flip_average=True,
                  auto_reason=("AOT-GAN's starter beats RFR-Net's at every measured hole size "
                               "(by 0.6-1.2 dB), so Auto does not use it")),
    ),
)


# ---------------------------------------------------------------------------- model


# Recurrences beyond the network's fixed count, as a multiple of it, while part of the hole is
# uncovered: a 3x cap fills holes 2.7x (official) to 2.8x (starter) deeper than the fixed count
# reaches at about 2-3x the recurrent cost; windows with deeper holes are shrunk to fit
# (``hole_reach``).
EXTRA_RECURRENCE_FACTOR = 3


class RFRModel(TorchInpaintModel):
    """RFR-Net generator with the official pre/post-processing; recurs until the hole is
    covered (up to ``EXTRA_RECURRENCE_FACTOR`` times the fixed count)."""

    pad_mode = "symmetric"

    def __init__(self, spec, net, device: str = "cpu", precision: str = "fp32") -> None:
        super().__init__(spec, net, device=device, precision=precision)
        self.hole_reach = net.reach(net.max_recurrences)

    @staticmethod
    def prepare_net(net) -> None:
        net.max_recurrences = EXTRA_RECURRENCE_FACTOR * net.recurrences

    @staticmethod
    def net_inputs(image01, mask01) -> tuple:
        known = (mask01 <= 0).to(image01.dtype)          # official: file > 0 = hole
        m3 = known.expand(-1, 3, -1, -1)
        return image01 * m3, m3

    @staticmethod
    def net_output(out):
        return out[0]                                    # raw; clamped to [0,1] by predict()


@register_model
class RFR(TorchAdapter):
    """Official ``checkpoint_*.pth`` (``generator`` of the training dict), our ``.pt`` files
    (``{'config': ..., 'state_dict': ...}``, the variant also read from the tensor shapes),
    bare / ``module.``-prefixed / fp16 state dicts."""

    specs = (SPEC,)
    net_options = NET_OPTIONS
    model_class = RFRModel
    det_init = {"rule": "rfr_aot"}
    anchor_key = "Pconv1.weight"

    @classmethod
    def extract(cls, obj, spec: ModelSpec) -> Mapping:
        from ..weights import CheckpointFormatError
        if isinstance(obj, Mapping) and "optimG" in obj and "generator" not in obj:
            raise CheckpointFormatError("this file holds optimizer state only (an AOT-GAN O*.pt), "
                                        "not generator weights")
        return super().extract(obj, spec)

    @classmethod
    def detected_options(cls, obj, sd: Mapping) -> dict:
        """Stored config, then what the tensor shapes say (all but ``recurrences``)."""
        opts = checkpoint_config(obj, NET_OPTIONS)
        try:
            opts["channels"] = int(sd["Pconv1.weight"].shape[0])
            opts["kernel_size"] = int(sd["Pconv2.weight"].shape[-1])
            opts["max_channels"] = int(sd["RFRModule.enc_3.0.weight"].shape[0])
            opts["tail_channels"] = int(sd["tail1.weight"].shape[0])
            opts["tail_planes"] = int(sd["tail2.conv1.weight"].shape[0])
        except (KeyError, AttributeError, IndexError):
            pass
        return opts

    @classmethod
    def recognises(cls, keys: "set[str]"):
        if "Pconv1.weight" in keys and any(k.startswith("RFRModule.") for k in keys):
            return cls.its_own()
        return None

