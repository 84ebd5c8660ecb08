"""Deterministic weights filled from each parameter's key name (for conformance tests).

Two rules, both: ``g = torch.Generator().manual_seed(crc32(key))``, one ``randn(shape)`` draw
``r`` per key, then by leaf name / rank:

* running_mean -> 0.1 r;  running_var -> 1 + 0.1 |r|;  integer dtypes -> zeros
* rank >= 2 -> r * gain / sqrt(fan_in)  (fan_in = prod(shape[1:]) for torch layouts,
  prod(shape[:-1]) for TF HWIO kernels; rule "rfr_aot" uses in*kh*kw/(sh*sw) for the
  ConvTranspose2d weights named in ``conv_transpose``)
* scale leaves -> 1 + 0.1 r  (rule "rfr_aot": rank-1 "weight"/"ratio";
  rule "v2": "weight"/"gamma" of any rank < 2)
* anything else -> 0.1 r

Rule "rfr_aot" is used for RFR and AOT-GAN; rule "v2" for LaMa (gain 0.75), PEN-Net and
SRN (TF variable names, ``layout="tf"``).
"""
from __future__ import annotations

import math
import zlib
from collections import OrderedDict
from typing import Iterable, Mapping, Optional

import torch

# ConvTranspose2d weights of RFR (stored [in, out, kh, kw]) and their strides.
RFR_CONV_TRANSPOSE = {
    "RFRModule.dec_3.0.weight": (2, 2),
    "RFRModule.dec_2.0.weight": (2, 2),
    "RFRModule.dec_1.0.weight": (2, 2),
    "Tconv.weight": (2, 2),
}


def det_tensor(key: str, shape, dtype="float32", gain: float = 1.0, rule: str = "rfr_aot",
               layout: str = "torch", conv_transpose: Optional[Mapping] = None) -> torch.Tensor:
    shape = [int(s) for s in shape]
    tdtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    if not tdtype.is_floating_point:
        return torch.zeros(shape, dtype=tdtype)
    g = torch.Generator()
    g.manual_seed(zlib.crc32(key.encode("utf-8")))
    r = torch.randn(shape, generator=g, dtype=torch.float32)
    sep = "/" if layout == "tf" else "."
    leaf = key.rsplit(sep, 1)[-1].split(":")[0]
    if leaf == "running_mean":
        t = 0.1 * r
    elif leaf == "running_var":
        t = 1.0 + 0.1 * r.abs()
    elif len(shape) >= 2:
        if conv_transpose and key in conv_transpose:
            sh, sw = conv_transpose[key]
            fan_in = shape[0] * shape[2] * shape[3] / (sh * sw)
        elif layout == "tf":
            fan_in = math.prod(shape[:-1])
        else:
            fan_in = math.prod(shape[1:])
        t = r * (gain / math.sqrt(fan_in))
    elif rule == "rfr_aot" and len(shape) == 1 and leaf in ("weight", "ratio"):
        t = 1.0 + 0.1 * r
    elif rule == "v2" and leaf in ("weight", "gamma"):
        t = 1.0 + 0.1 * r
    else:
        t = 0.1 * r
    return t.to(tdtype)


def deterministic_state_dict(entries: "Iterable | Mapping", gain: float = 1.0, rule: str = "rfr_aot",
                             layout: str = "torch",
                             conv_transpose: Optional[Mapping] = None) -> "OrderedDict[str, torch.Tensor]":
    """entries: [key, shape, dtype] triples, a {key: tensor} state dict, or an nn.Module."""
    if hasattr(entries, "state_dict"):
        entries = entries.state_dict()
    if isinstance(entries, Mapping):
        entries = [(k, list(v.shape), str(v.dtype).replace("torch.", "")) for k, v in entries.items()]
    if conv_transpose is None and rule == "rfr_aot":
        conv_transpose = RFR_CONV_TRANSPOSE
    sd = OrderedDict()
    for key, shape, dtype in entries:
        sd[key] = det_tensor(key, shape, dtype, gain=gain, rule=rule, layout=layout,
                             conv_transpose=conv_transpose)
    return sd
