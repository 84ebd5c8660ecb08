"""SRN (Semantic Regeneration Network, Wang et al. CVPR 2019) generator, a PyTorch port of the
official TF1 test graph (shepnerd/outpainting_srn @ c0cc6fc, ``SemanticRegenerationNet``).

Module names follow the TF variable scopes, so the state dict keys are the TF names with
``inpaint_net/`` dropped, ``/`` -> ``.`` and ``kernel`` -> ``weight``
(``conv13_upsample/conv13_upsample_conv/kernel`` -> ``conv13_upsample.conv13_upsample_conv.weight``).

Conventions of the official graph reproduced here (see SPEC_SRN_LAMA_PENNET.md §3):
* BGR input in [-1, 1]; the network sees only the known window (FEN), whose features are
  expanded to the full canvas by a conv to ``cnum*r`` channels and a **plain NHWC reshape**;
* TF 'SAME' padding (stride-2 convs on even sizes pad bottom/right only), ELU everywhere,
  nearest x2 upsampling, context normalisation with the official (all-position) variance;
* last conv without activation, output clipped to [-1, 1].

``forward(known, margins)``: ``known`` (B,3,h,w) BGR [-1,1] known window, ``margins`` =
(top, left, bottom, right) in pixels; returns (B,3,h+top+bottom,w+left+right) clipped prediction
(not composited). ``forward(canvas, known_mask)`` with a (B,1,H,W) mask (1 = known, as the
official ``generate_mask``) crops the window out of the canvas itself.

``convert_tf_variables`` maps a ``{tf_name: ndarray}`` dict (a real checkpoint read with
:mod:`inpaint_gui.engine.tfckpt`, or deterministic test weights) to this module's state dict;
``convert_srn_checkpoint`` is the CLI entry point (``inpaint models convert-srn``).
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Mapping, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

TF_SCOPE = "inpaint_net/"

# (name, kernel, stride, dilation, out-channel multiple of cnum (or absolute if negative), kind)
# kind: "conv" or "up" (nearest x2 + conv named name+'_conv' inside module name)
_FEN = (
    ("conv1", 5, 1, 1, 1, "conv"),
    ("conv2_downsample", 3, 2, 1, 2, "conv"),
    ("conv3", 3, 1, 1, 2, "conv"),
    ("conv4_downsample", 3, 2, 1, 4, "conv"),
    ("conv5", 3, 1, 1, 4, "conv"),
    ("conv6", 3, 1, 1, 4, "conv"),
    ("conv7_atrous", 3, 1, 2, 4, "conv"),
    ("conv8_atrous", 3, 1, 4, 4, "conv"),
    ("conv9_atrous", 3, 1, 8, 4, "conv"),
    ("conv10_atrous", 3, 1, 16, 4, "conv"),
    ("conv11", 3, 1, 1, 4, "conv"),
    ("conv12", 3, 1, 1, 4, "conv"),
    ("conv13_upsample", 3, 1, 1, 2, "up"),
    ("conv14", 3, 1, 1, 2, "conv"),
    ("conv15_upsample", 3, 1, 1, 1, "up"),
)
_CPN_ENC = (
    ("xconv1", 5, 1, 1, 1, "conv"),
    ("xconv2_downsample", 3, 2, 1, 1, "conv"),
    ("xconv3", 3, 1, 1, 2, "conv"),
    ("xconv4_downsample", 3, 2, 1, 2, "conv"),
    ("xconv5", 3, 1, 1, 4, "conv"),
    ("xconv6", 3, 1, 1, 4, "conv"),
    ("xconv7_atrous", 3, 1, 2, 4, "conv"),
    ("xconv8_atrous", 3, 1, 4, 4, "conv"),
    ("xconv9_atrous", 3, 1, 8, 4, "conv"),
    ("xconv10_atrous", 3, 1, 16, 4, "conv"),
    ("allconv11", 3, 1, 1, 4, "conv"),
)
_CPN_DEC = (
    ("allconv12", 3, 1, 1, 4, "conv"),
    ("allconv13_upsample", 3, 1, 1, 2, "up"),
    ("allconv14", 3, 1, 1, 2, "conv"),
    ("allconv15_upsample", 3, 1, 1, 1, "up"),
    ("allconv16", 3, 1, 1, 0.5, "conv"),
)


def _tf_same_pads(size: int, k: int, stride: int, dilation: int) -> Tuple[int, int]:
    eff = (k - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


class TFConv2d(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding (asymmetric when TF pads asymmetrically)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, dilation: int = 1) -> None:
        eff = (k - 1) * dilation + 1
        self._static = stride == 1 and eff % 2 == 1
        super().__init__(cin, cout, k, stride=stride, dilation=dilation,
                         padding=(eff - 1) // 2 if self._static else 0, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._static:
            k, s, d = self.kernel_size[0], self.stride[0], self.dilation[0]
            pt, pb = _tf_same_pads(x.shape[-2], k, s, d)
            pl, pr = _tf_same_pads(x.shape[-1], k, s, d)
            x = F.pad(x, (pl, pr, pt, pb))
        return super().forward(x)


class UpConv(nn.Module):
    """TF ``_deconv``: nearest x2 (align_corners=True == floor(i/2)) then a 3x3 conv scoped
    ``<name>/<name>_conv``."""

    def __init__(self, name: str, cin: int, cout: int) -> None:
        super().__init__()
        self._conv_name = name + "_conv"
        self.add_module(self._conv_name, TFConv2d(cin, cout, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return getattr(self, self._conv_name)(x)


def tf_resize_nearest_index(in_size: int, out_size: int) -> np.ndarray:
    """Source indices of TF1 ``resize_nearest_neighbor`` (align_corners=False, legacy)."""
    scale = np.float32(in_size) / np.float32(out_size)
    idx = np.floor(np.arange(out_size, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(idx, in_size - 1)


def context_normalization(x: torch.Tensor, known: torch.Tensor, alpha: float = 0.5,
                          eps: float = 1e-5) -> torch.Tensor:
    """Official ``context_normalization``: ``known`` (B,1,H,W) full-resolution, 1 = known.

    Note the variance sums (x*M - mean)^2 over *all* positions (as the official code does)."""
    h, w = x.shape[-2:]
    iy = torch.from_numpy(tf_resize_nearest_index(known.shape[-2], h)).to(x.device)
    ix = torch.from_numpy(tf_resize_nearest_index(known.shape[-1], w)).to(x.device)
    mk = known.index_select(-2, iy).index_select(-1, ix).to(x.dtype)
    mu = 1.0 - mk
    dims = (2, 3)
    nk = mk.sum(dims, keepdim=True).clamp_min(eps)
    xk = x * mk
    mean_k = xk.sum(dims, keepdim=True) / nk
    var_k = ((xk - mean_k) ** 2).sum(dims, keepdim=True) / nk
    nu = mu.sum(dims, keepdim=True).clamp_min(eps)
    xu = x * mu
    mean_u = xu.sum(dims, keepdim=True) / nu
    var_u = ((xu - mean_u) ** 2).sum(dims, keepdim=True) / nu
    x_unknown = alpha * ((xu - mean_u) / torch.sqrt(var_u + eps) * torch.sqrt(var_k) + mean_k) \
        + (1.0 - alpha) * xu
    return x_unknown * mu + x * mk


def feature_expansion_reshape(x: torch.Tensor, out_hw: Tuple[int, int], ratio: int) -> torch.Tensor:
    """The official ``tf.reshape(x, [b, H, W, c])`` on NHWC (not a pixel shuffle)."""
    b, c, h, w = x.shape
    H, W = out_hw
    if h * w * c != H * W * (c // ratio):
        raise ValueError(
            f"SRN feature expansion: a {h}x{w} window with expansion ratio {ratio} cannot fill a "
            f"{H}x{W} canvas (need H*W == {ratio}*h*w, e.g. a 2x canvas per side for ratio 4)")
    return x.permute(0, 2, 3, 1).reshape(b, H, W, c // ratio).permute(0, 3, 1, 2)


class SRNGenerator(nn.Module):
    """The SRN generator. ``cnum`` = base width (official 64), ``expand_ratio`` = r, the canvas
    area over the window area the feature expansion layer was trained for (official CelebA-HQ 4;
    256x512 models 2). ``use_cn``/``alpha``: context normalisation (official on, 0.5)."""

    def __init__(self, cnum: int = 64, expand_ratio: int = 4, use_cn: bool = True,
                 alpha: float = 0.5, in_channels: int = 3) -> None:
        super().__init__()
        self.cnum = int(cnum)
        self.expand_ratio = int(expand_ratio)
        self.use_cn = bool(use_cn)
        self.alpha = float(alpha)

        def ch(mult) -> int:
            return max(1, int(round(self.cnum * mult)))

        def build(specs, cin):
            names = []
            for name, k, s, d, mult, kind in specs:
                cout = ch(mult)
                if kind == "up":
                    self.add_module(name, UpConv(name, cin, cout))
                else:
                    self.add_module(name, TFConv2d(cin, cout, k, s, d))
                names.append(name)
                cin = cout
            return names, cin

        self._fen, c = build(_FEN, in_channels)
        self.feat_expansion_subpixel = TFConv2d(c, c * self.expand_ratio, 3)
        self._fe_channels = c
        self._enc, c = build(_CPN_ENC, c + in_channels + 1)
        self._dec, c = build(_CPN_DEC, c)
        self.allconv17 = TFConv2d(c, in_channels, 3)

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _run(mod: nn.Module, names, x: torch.Tensor) -> torch.Tensor:
        for n in names:
            x = F.elu(getattr(mod, n)(x))
        return x

    @staticmethod
    def _parse_margins(margins) -> Tuple[int, int, int, int]:
        if isinstance(margins, torch.Tensor):
            margins = margins.flatten().tolist()
        m = tuple(int(v) for v in margins)
        if len(m) != 4 or min(m) < 0:
            raise ValueError(f"margins must be 4 non-negative ints (top, left, bottom, right), got {margins!r}")
        return m  # type: ignore[return-value]

    def forward(self, x: torch.Tensor, margins=None, return_intermediates: bool = False):
        """See the module docstring. ``margins`` may also be a (B,1,H,W) known mask (1 = known)."""
        if isinstance(margins, torch.Tensor) and margins.dim() == 4:
            known = margins[0, 0] > 0.5
            rows = torch.nonzero(known.any(1)).flatten()
            cols = torch.nonzero(known.any(0)).flatten()
            if rows.numel() == 0:
                raise ValueError("SRN: the known mask is empty")
            t, b = int(rows[0]), int(rows[-1]) + 1
            l, r = int(cols[0]), int(cols[-1]) + 1
            H, W = x.shape[-2:]
            margins = (t, l, H - b, W - r)
            x = x[..., t:b, l:r]
        top, left, bottom, right = self._parse_margins((0, 0, 0, 0) if margins is None else margins)
        B, _, h, w = x.shape
        H, W = h + top + bottom, w + left + right
        inter = {}
        fen = self._run(self, self._fen, x)
        inter["fen_out"] = fen
        fe = F.elu(self.feat_expansion_subpixel(fen))
        x_fe = feature_expansion_reshape(fe, (H, W), self.expand_ratio)
        inter["x_fe"] = x_fe
        xin = F.pad(x, (left, right, top, bottom))
        unknown = torch.ones((B, 1, H, W), dtype=x.dtype, device=x.device)
        unknown[:, :, top:top + h, left:left + w] = 0.0
        y = torch.cat([x_fe, xin, unknown], dim=1)
        y = self._run(self, self._enc, y)
        inter["cpn_pre_cn"] = y
        if self.use_cn:
            y = context_normalization(y, 1.0 - unknown, alpha=self.alpha)
        y = self._run(self, self._dec, y)
        out = torch.clamp(self.allconv17(y), -1.0, 1.0)
        if return_intermediates:
            inter["out"] = out
            return out, inter
        return out


def create(cnum: int = 64, expand_ratio: int = 4, use_cn: bool = True, alpha: float = 0.5,
           **kwargs) -> SRNGenerator:
    """Official configuration by default (cnum 64, r 4: CelebA-HQ 256, 128x128 window).

    Extra keyword arguments that describe the geometry rather than the network (``window``,
    ``geometry``, ``native_size``) are accepted and ignored here; adapters use them."""
    for k in ("window", "geometry", "native_size", "canvas"):
        kwargs.pop(k, None)
    if kwargs:
        raise TypeError(f"unknown SRN options: {', '.join(kwargs)}")
    return SRNGenerator(cnum=cnum, expand_ratio=expand_ratio, use_cn=use_cn, alpha=alpha)


# --------------------------------------------------------------------------- TF conversion

_SLOT_RE = re.compile(r"/(Adam|Adam_\d+|Momentum|RMSProp(_\d+)?|ExponentialMovingAverage)$")


def tf_to_torch_key(tf_name: str) -> Optional[str]:
    """``inpaint_net/conv1/kernel`` -> ``conv1.weight``; None for anything that is not a
    generator variable (optimizer slots, lr, beta powers, the loss kernel, discriminator)."""
    name = tf_name.split(":")[0]
    if _SLOT_RE.search(name):
        return None
    if name.startswith(TF_SCOPE):
        name = name[len(TF_SCOPE):]
    elif "/" not in name or name.startswith(("discriminator/", "global_step", "beta")):
        return None
    parts = name.split("/")
    if parts[-1] not in ("kernel", "bias"):
        return None
    parts[-1] = "weight" if parts[-1] == "kernel" else "bias"
    return ".".join(parts)


def convert_tf_variables(tf_vars: Mapping, strict: bool = False) -> "OrderedDict[str, torch.Tensor]":
    """``{tf_name: HWIO ndarray / tensor}`` -> state dict for :class:`SRNGenerator`.

    Kernels are transposed HWIO -> OIHW, biases kept. Non-generator entries are skipped
    (``strict=True`` raises on unknown names instead)."""
    sd: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for tf_name, value in tf_vars.items():
        key = tf_to_torch_key(tf_name)
        if key is None:
            if strict and tf_name.startswith(TF_SCOPE) and not _SLOT_RE.search(tf_name):
                raise KeyError(f"unexpected SRN variable {tf_name!r}")
            continue
        t = value.detach().cpu() if isinstance(value, torch.Tensor) else torch.from_numpy(np.asarray(value))
        t = t.to(torch.float32)
        if key.endswith(".weight"):
            if t.dim() != 4:
                raise ValueError(f"{tf_name}: expected a 4-D HWIO kernel, got shape {tuple(t.shape)}")
            t = t.permute(3, 2, 0, 1)
        sd[key] = t.contiguous().clone()
    return sd


def infer_options(state_dict: Mapping) -> dict:
    """Network options (cnum, expand_ratio) that fit a converted state dict."""
    opts = {}
    w = state_dict.get("conv1.weight")
    if w is not None:
        opts["cnum"] = int(w.shape[0])
        fe = state_dict.get("feat_expansion_subpixel.weight")
        if fe is not None:
            c15 = state_dict.get("conv15_upsample.conv15_upsample_conv.weight")
            base = int(c15.shape[0]) if c15 is not None else opts["cnum"]
            opts["expand_ratio"] = max(1, int(fe.shape[0]) // base)
    return opts


def convert_srn_checkpoint(ckpt_prefix: "str | os.PathLike", out_path: "str | os.PathLike",
                           overwrite: bool = False) -> dict:
    """Convert an official SRN TensorFlow checkpoint to a PyTorch ``.pt`` state dict.

    ``ckpt_prefix``: ``.../snap-80000`` (or its ``.index`` file, or the folder with the
    ``checkpoint`` file). Reads it with the pure-Python :mod:`..tfckpt` reader, maps the 66
    generator variables, checks every shape by loading them into :class:`SRNGenerator` with
    strict=True, and writes ``out_path`` atomically. Returns a summary dict
    (``out``, ``prefix``, ``tensors``, ``skipped``, ``options``, ``parameters``)."""
    from ..fsutil import atomic_torch_save
    from ..tfckpt import CheckpointReader, TFCheckpointError
    from ..weights import ArchitectureMismatchError, load_into

    out_path = Path(out_path)
    if out_path.exists() and not overwrite:
        raise FileExistsError(f"{out_path} exists (use overwrite=True / --overwrite)")
    reader = CheckpointReader(ckpt_prefix)
    names = [k for k in reader.keys() if tf_to_torch_key(k) is not None]
    if not names:
        raise TFCheckpointError(f"{reader.prefix} holds no SRN generator variables "
                                f"('{TF_SCOPE}*/kernel|bias'); found e.g. {', '.join(reader.keys()[:5])}")
    tf_vars = {k: reader.get_tensor(k) for k in names}
    sd = convert_tf_variables(tf_vars)
    opts = infer_options(sd)
    net = create(**opts)
    try:
        load_into(net, sd, model_name="SRN")
    except ArchitectureMismatchError as exc:
        raise ArchitectureMismatchError(f"{reader.prefix}: {exc}") from exc
    atomic_torch_save(OrderedDict((k, v.contiguous()) for k, v in sd.items()), out_path)
    return {
        "out": str(out_path),
        "prefix": reader.prefix,
        "tensors": len(sd),
        "skipped": len(reader.keys()) - len(sd),
        "options": opts,
        "parameters": int(sum(v.numel() for v in sd.values())),
    }


def tf_variable_entries(cnum: int = 64, expand_ratio: int = 4) -> list:
    """[tf_name, HWIO shape, dtype] of the generator variables (the official test-graph order)."""
    net = create(cnum=cnum, expand_ratio=expand_ratio)
    out = []
    for key, v in net.state_dict().items():
        parts = key.split(".")
        leaf = "kernel" if parts[-1] == "weight" else "bias"
        name = TF_SCOPE + "/".join(parts[:-1] + [leaf])
        shape = list(v.shape)
        if leaf == "kernel":
            shape = [shape[2], shape[3], shape[1], shape[0]]
        out.append([name, shape, "float32"])
    return out
