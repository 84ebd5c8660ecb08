"""VGG16 / VGG19 feature extractors with torchvision's state_dict key names (no torchvision).

No ImageNet weights ship with this project (none can be downloaded here). Perceptual, style
and ID-MRF losses are enabled only when the user points ``--vgg`` at a torchvision-format
checkpoint (``vgg16-397923af.pth`` / ``vgg19-dcbb9e9d.pth`` or any state dict whose keys are
``features.<i>.weight`` / ``features.<i>.bias``; classifier keys are ignored).

Layer names follow the usual convention: ``conv<b>_<i>``, ``relu<b>_<i>``, ``pool<b>``;
``features[idx]`` indices are torchvision's.
"""
from __future__ import annotations

import os
from typing import Dict, Iterable, Mapping, Optional, Sequence

import torch
import torch.nn as nn

CFGS = {
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"),
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_names(kind: str) -> "list[str]":
    """Names of the ``features`` children in order (conv1_1, relu1_1, ..., pool5)."""
    names = []
    block, idx = 1, 1
    for v in CFGS[kind]:
        if v == "M":
            names.append(f"pool{block}")
            block += 1
            idx = 1
        else:
            names += [f"conv{block}_{idx}", f"relu{block}_{idx}"]
            idx += 1
    return names


class VGGFeatures(nn.Module):
    """``features`` of torchvision's VGG (same indices and key names), returning named layers.

    normalize: "imagenet" (input in [0,1] RGB, torchvision convention), or None (feed as is;
    RFR's official loss feeds [0,1] images without normalisation).
    pool: "max" (torchvision) or "avg" (the MatConvNet-style VGG used by SRN's ID-MRF).
    """

    def __init__(self, kind: str = "vgg19", normalize: Optional[str] = "imagenet", pool: str = "max",
                 convs: Optional[Sequence[nn.Conv2d]] = None):
        super().__init__()
        if kind not in CFGS:
            raise ValueError(f"unknown VGG kind {kind!r}")
        self.kind = kind
        self.names = layer_names(kind)
        layers = []
        cin = 3
        given = list(convs) if convs is not None else None
        for v in CFGS[kind]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2) if pool == "max" else nn.AvgPool2d(2, 2))
            else:
                conv = given.pop(0) if given is not None else nn.Conv2d(cin, v, 3, padding=1)
                layers += [conv, nn.ReLU(inplace=False)]
                cin = v
        self.features = nn.Sequential(*layers)
        self.normalize = normalize
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):  # frozen: always eval
        return super().train(False)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> Dict[str, torch.Tensor]:
        layers = list(layers)
        want = {self.index(n): n for n in layers}
        last = max(want)
        if self.normalize == "imagenet":
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out = {}
        for i, mod in enumerate(self.features):
            x = mod(x)
            if i in want:
                out[want[i]] = x
            if i >= last:
                break
        return out


def detect_kind(state_dict: Mapping) -> str:
    convs = {k for k in _features_only(state_dict) if k.endswith(".weight")}
    n = len(convs)
    if n == 13:
        return "vgg16"
    if n == 16:
        return "vgg19"
    raise ValueError(f"not a VGG16/VGG19 features state dict ({n} conv weights found)")


def _features_only(state_dict: Mapping) -> Dict[str, torch.Tensor]:
    out = {}
    for k, v in state_dict.items():
        if not isinstance(v, torch.Tensor):
            continue
        if "features." in k:
            out["features." + k.split("features.", 1)[1]] = v
    return out


def load_vgg(path_or_sd, kind: Optional[str] = None, normalize: Optional[str] = "imagenet",
             pool: str = "max", device="cpu") -> VGGFeatures:
    """Build a frozen :class:`VGGFeatures` from a torchvision-format VGG16/VGG19 checkpoint."""
    if isinstance(path_or_sd, (str, os.PathLike)):
        sd = torch.load(os.fspath(path_or_sd), map_location="cpu", weights_only=True)
    else:
        sd = path_or_sd
    if isinstance(sd, Mapping) and "state_dict" in sd and isinstance(sd["state_dict"], Mapping):
        sd = sd["state_dict"]
    feats = _features_only(sd)
    kind = kind or detect_kind(feats)
    with torch.device("meta"):  # no random init of 14-20 M parameters that are overwritten anyway
        net = VGGFeatures(kind, normalize=normalize, pool=pool)
    net.load_state_dict({k: v.float() for k, v in feats.items()}, strict=True, assign=True)
    net.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    net.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    net.requires_grad_(False)
    return net.to(device).eval()


def with_options(vgg: VGGFeatures, normalize: Optional[str], pool: str) -> VGGFeatures:
    """A view of ``vgg`` sharing its weights but with another normalisation / pooling."""
    convs = [m for m in vgg.features if isinstance(m, nn.Conv2d)]
    other = VGGFeatures(vgg.kind, normalize=normalize, pool=pool, convs=convs)
    return other.to(next(vgg.parameters()).device).eval()


def pick_layers(kind: str, wanted: Iterable[str]) -> "list[str]":
    """Map layer names written for VGG19 onto ``kind`` (VGG16 lacks conv*_4: use conv*_3)."""
    names = layer_names(kind)
    out = []
    for n in wanted:
        if n in names:
            out.append(n)
            continue
        if n.endswith("_4"):
            alt = n[:-1] + "3"
            if alt in names:
                out.append(alt)
                continue
        raise KeyError(f"{kind} has no layer {n}")
    return out
