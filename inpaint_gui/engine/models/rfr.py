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

from typing import Mapping, Optional

from ..registry import ModelSpec, WeightSet
from .base import TorchInpaintModel

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

SPEC = ModelSpec(
    name="rfr",
    title="RFR-Net",
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
    loader="inpaint_gui.engine.models.rfr:load",
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
                  resolution=128, card="models/rfr_starter.md", variant="tiny",
                  sha256="dd8b934c192e6e7ca9dd4b22c0e10fe4781353a3d967f1abda581a93b366d2da",
                  options=STARTER_OPTIONS, auto_ok=False),
    ),
)


# ---------------------------------------------------------------------------- architecture id

def identify_architecture(keys) -> str:
    """Name of the network a state dict belongs to: "rfr", "aot", "aot-discriminator",
    "lama", "pennet", "srn" or "unknown"."""
    keys = set(keys)
    if "Pconv1.weight" in keys and any(k.startswith("RFRModule.") for k in keys):
        return "rfr"
    if "encoder.1.weight" in keys and any(k.startswith("middle.0.block00") for k in keys):
        return "aot"
    if any(k.endswith("weight_orig") for k in keys) and "conv.8.weight" in keys:
        return "aot-discriminator"
    if any(".ffc." in k or "convl2l" in k for k in keys):
        return "lama"
    if any(k.startswith(("dw_conv01.", "at_conv0")) for k in keys):
        return "pennet"
    if any("/" in k for k in keys):
        return "srn"
    return "unknown"


_TITLES = {"rfr": "RFR-Net", "aot": "AOT-GAN", "aot-discriminator": "the AOT-GAN discriminator",
           "lama": "LaMa", "pennet": "PEN-Net", "srn": "SRN"}


def strip_prefix_to(sd: dict, anchor: str) -> dict:
    """Strip a common key prefix (``module.``, ``generator.``, ``netG.`` ...) found in front of
    ``anchor``."""
    if anchor in sd:
        return sd
    for k in sd:
        if k.endswith("." + anchor):
            prefix = k[: -len(anchor)]
            if all(key.startswith(prefix) for key in sd):
                return {key[len(prefix):]: v for key, v in sd.items()}
            sub = {key[len(prefix):]: v for key, v in sd.items() if key.startswith(prefix)}
            return sub
    return sd


def extract(obj) -> dict:
    """The generator's state dict from an RFR container (official dict with ``generator``,
    our ``{'state_dict': ...}``, bare / ``module.``-prefixed dicts)."""
    from ..weights import CheckpointFormatError, unwrap_state_dict
    if isinstance(obj, Mapping) and not obj:
        raise CheckpointFormatError("the checkpoint is empty")
    if isinstance(obj, Mapping) and "optimG" in obj and "generator" not in obj:
        raise CheckpointFormatError("this file holds optimizer state only (an AOT-GAN O*.pt), "
                                    "not generator weights")
    sd = unwrap_state_dict(obj)
    return strip_prefix_to(sd, "Pconv1.weight")


def config_from_checkpoint(obj) -> dict:
    """Network options stored in our own checkpoint files (``{'config': {...}}``)."""
    if isinstance(obj, Mapping):
        cfg = (obj.get("net_kwargs") or obj.get("config") or obj.get("net_options")
               or obj.get("options"))
        if isinstance(cfg, Mapping):
            return {k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg.items()
                    if k in NET_OPTIONS}
    return {}


def options_from_state_dict(sd: Mapping) -> dict:
    """Variant options readable from the tensor shapes (all but ``recurrences``)."""
    opts = {}
    try:
        opts["channels"] = int(sd["Pconv1.weight"].shape[0])
        opts["kernel_size"] = int(sd["Pconv2.weight"].shape[-1])
        opts["max_channels"] = int(sd["RFRModule.enc_3.0.weight"].shape[0])
        opts["tail_channels"] = int(sd["tail1.weight"].shape[0])
        opts["tail_planes"] = int(sd["tail2.conv1.weight"].shape[0])
    except (KeyError, AttributeError, IndexError):
        pass
    return opts


def check_architecture(sd: Mapping, expected: str, title: str) -> None:
    from ..weights import ArchitectureMismatchError
    arch = identify_architecture(sd.keys())
    if arch == expected:
        return
    if arch in _TITLES:
        hint = {"aot": " Choose the model 'aot' for this file.",
                "rfr": " Choose the model 'rfr' for this file.",
                "aot-discriminator": " Use the generator file (G*.pt) instead.",
                "lama": " Choose the model 'lama' for this file.",
                "pennet": " Choose the model 'pennet' for this file.",
                "srn": " Choose the model 'srn' for this file."}.get(arch, "")
        raise ArchitectureMismatchError(
            f"this file holds {_TITLES[arch]} weights, not {title} weights.{hint}")
    sample = ", ".join(list(sd.keys())[:3])
    raise ArchitectureMismatchError(
        f"these are not {title} weights (unrecognised keys, e.g. {sample})")


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
        net.max_recurrences = EXTRA_RECURRENCE_FACTOR * net.recurrences
        self.hole_reach = net.reach(net.max_recurrences)

    def forward_tensors(self, image01, mask01):
        known = (mask01 <= 0).to(image01.dtype)          # official: file > 0 = hole
        m3 = known.expand(-1, 3, -1, -1)
        out, _ = self.net(image01 * m3, m3)
        return out                                       # raw; clamped to [0,1] by predict()


def _net_kwargs(ws, ckpt_cfg: dict, detected: dict, options: dict) -> dict:
    kw: dict = {}
    if ws is not None and ws.options:
        kw.update(dict(ws.options))
    kw.update(ckpt_cfg)
    kw.update(detected)
    for k in NET_OPTIONS:
        if k in options:
            kw[k] = options.pop(k)
    return kw


def load(spec: ModelSpec = SPEC, weights=None, device: str = "cpu", precision: str = "fp32",
         **options) -> RFRModel:
    """Build RFR-Net and load ``weights``: None (best installed set), a path (official
    ``checkpoint_*.pth``, our ``.pt``) or a state dict. ``options``: network keywords
    (``recurrences=...``; the others are read from the tensor shapes)."""
    from ..nets import create
    from ..weights import load_into, resolve_state_dict

    holder: dict = {}

    def _extract(obj):
        holder["obj"] = obj
        return extract(obj)

    sd, ws = resolve_state_dict(spec, weights, extract=_extract)
    check_architecture(sd, "rfr", spec.title)
    kw = _net_kwargs(ws or weight_set_for_path(spec, weights),
                     config_from_checkpoint(holder.get("obj")), options_from_state_dict(sd),
                     options)
    net = create("rfr", **kw)
    load_into(net, sd, model_name=spec.title)
    return RFRModel(spec, net, device=device, precision=precision)


def weight_set_for_path(spec: ModelSpec, weights) -> Optional[WeightSet]:
    """The weight set whose file name matches a user-given path (for its options)."""
    import os
    if isinstance(weights, (str, os.PathLike)):
        name = os.path.basename(os.fspath(weights))
        for ws in spec.weight_sets:
            if ws.filename == name:
                return ws
    return None
