"""Discriminators: AOT-GAN's spectral-norm PatchGAN and SRN's global + contextual critics.

``AOTDiscriminator()`` with the defaults has exactly the official state_dict
(``conv.{0,2,4,6}.weight_orig/_u/_v``, ``conv.8.weight/bias``; 2,763,777 parameters;
``keys_aot_discriminator.json``), so official ``D*.pt`` files load with ``strict=True``.

``SRNDiscriminator(size)`` mirrors SRN's ``discriminator/`` scope (``D_global.conv1..4``,
``dout_global_fc``, ``D_context.dconv1..4``), with TF 'SAME' padding; the dense layer's input
size depends on the training size (32768 at 256x256, the official size).
"""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import spectral_norm


class AOTDiscriminator(nn.Module):
    """SN Conv(3->c, k4 s2 p1) LReLU, SN Conv(c->2c, s2), SN Conv(2c->4c, s2), SN Conv(4c->8c, s1),
    Conv(8c->1, k4 s1 p1, bias). ``cnum`` 64 = official."""

    def __init__(self, in_channels: int = 3, cnum: int = 64):
        super().__init__()
        c = cnum
        self.conv = nn.Sequential(
            spectral_norm(nn.Conv2d(in_channels, c, 4, 2, 1, bias=False)),
            nn.LeakyReLU(0.2, inplace=True),
            spectral_norm(nn.Conv2d(c, c * 2, 4, 2, 1, bias=False)),
            nn.LeakyReLU(0.2, inplace=True),
            spectral_norm(nn.Conv2d(c * 2, c * 4, 4, 2, 1, bias=False)),
            nn.LeakyReLU(0.2, inplace=True),
            spectral_norm(nn.Conv2d(c * 4, c * 8, 4, 1, 1, bias=False)),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(c * 8, 1, 4, 1, 1),
        )
        # official init_weights: normal(0, 0.02), zero bias
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                w = getattr(m, "weight_orig", None)
                nn.init.normal_(w if w is not None else m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _same_pad(size: int, k: int, s: int) -> Tuple[int, int]:
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


class _TFConv(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding (asymmetric for stride 2 on even sizes)."""

    def forward(self, x):
        kh, kw = self.kernel_size
        sh, sw = self.stride
        pt, pb = _same_pad(x.shape[-2], kh, sh)
        pl, pr = _same_pad(x.shape[-1], kw, sw)
        return F.conv2d(F.pad(x, (pl, pr, pt, pb)), self.weight, self.bias, self.stride)


class _SRNGlobal(nn.Module):
    def __init__(self, cnum: int):
        super().__init__()
        self.conv1 = _TFConv(3, cnum, 5, 2)
        self.conv2 = _TFConv(cnum, cnum * 2, 5, 2)
        self.conv3 = _TFConv(cnum * 2, cnum * 4, 5, 2)
        self.conv4 = _TFConv(cnum * 4, cnum * 2, 5, 2)

    def forward(self, x):
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            x = F.leaky_relu(conv(x), 0.2)
        return x


class _SRNContext(nn.Module):
    def __init__(self, cnum: int):
        super().__init__()
        self.dconv1 = _TFConv(3, cnum, 5, 2)
        self.dconv2 = _TFConv(cnum, cnum * 2, 5, 2)
        self.dconv3 = _TFConv(cnum * 2, cnum * 4, 5, 2)
        self.dconv4 = _TFConv(cnum * 4, 1, 3, 1)

    def forward(self, x):
        for conv in (self.dconv1, self.dconv2, self.dconv3):
            x = F.leaky_relu(conv(x), 0.2)
        return self.dconv4(x)


class SRNDiscriminator(nn.Module):
    """SRN's two WGAN critics.

    ``global_score(x)`` -> (N,): D_global (4 conv5x5/s2, LReLU 0.2, channels c, 2c, 4c, 2c),
    NCHW flatten, dense -> 1. ``context_score(x, unknown)`` -> (N,): D_context (3 conv5x5/s2 +
    conv3x3 -> 1 channel) averaged over M↓8 (three 2x2 'SAME' max-pools of the unknown mask).
    """

    def __init__(self, size: "int | Sequence[int]" = 256, cnum: int = 64):
        super().__init__()
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        self.size = (h, w)
        self.D_global = _SRNGlobal(cnum)
        self.D_context = _SRNContext(cnum)
        gh, gw = h, w
        for _ in range(4):
            gh, gw = -(-gh // 2), -(-gw // 2)
        self.dout_global_fc = nn.Linear(cnum * 2 * gh * gw, 1)

    def global_score(self, x: torch.Tensor) -> torch.Tensor:
        f = self.D_global(x)
        return self.dout_global_fc(f.flatten(1)).squeeze(1)

    def context_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.D_context(x)

    def context_score(self, x: torch.Tensor, unknown_small: torch.Tensor) -> torch.Tensor:
        d = self.D_context(x)
        m = unknown_small.to(d.dtype)
        return (d * m).flatten(1).sum(1) / m.flatten(1).sum(1).clamp_min(1e-8)

    def forward(self, x: torch.Tensor, unknown_small: torch.Tensor):
        return self.global_score(x), self.context_score(x, unknown_small)
