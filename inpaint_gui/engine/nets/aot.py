"""AOT-GAN generator (Zeng et al., "Aggregated Contextual Transformations for High-Resolution
Image Inpainting"), faithful to the official ``researchmm/AOT-GAN-for-Inpainting`` @ 2cd1afd8
(``src/model/aotgan.py``, ``InpaintGenerator`` with ``rates=[1,2,4,8]``, ``block_num=8``).

``create()`` has exactly the official state_dict keys and shapes (``encoder.1.weight`` ...
``decoder.4.bias``), so the released ``G0000000.pt`` files load with ``strict=True``.

Call convention (official): ``pred = net(x, mask)`` with

* ``x`` float ``[N,3,H,W]`` RGB in [-1, 1] with the holes set to +1 (``img * (1 - m) + m``),
* ``mask`` float ``[N,1,H,W]``, **1 = hole, 0 = known**,
* H and W multiples of 4 and >= 36; ``pred`` is the tanh output in [-1, 1]. The official
  composite is ``(1 - mask) * img + mask * pred``.

The generator has no BatchNorm and no state; eval and train mode compute the same thing.
Inference (no autograd) uses ``forward_fast``: one reflection pad per AOT block shared by the
four dilated branches and the gate, the gate normalisation and the gated sum computed in place;
the convolutions are the same NCHW calls as the official code, so the output is bit-for-bit the
official one on the fixtures. (AOT's gate divides by the per-channel standard deviation of the
gate features and multiplies by 10, which amplifies any change in convolution rounding:
channels-last kernels, ~7x less precise here, moved the output by up to 4e-5 of the 1e-4
tolerance, so they are not used.) Training uses ``forward_plain`` (the official module graph).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

OFFICIAL = dict(channels=64, block_num=8, rates=(1, 2, 4, 8))


def my_layer_norm(feat: torch.Tensor) -> torch.Tensor:
    """The official (non-standard) normalisation before the gate sigmoid."""
    mean = feat.mean((2, 3), keepdim=True)
    std = feat.std((2, 3), keepdim=True) + 1e-9  # unbiased std
    feat = 2 * (feat - mean) / std - 1
    return 5 * feat


class UpConv(nn.Module):
    def __init__(self, inc: int, outc: int, scale: int = 2):
        super().__init__()
        self.scale = scale
        self.conv = nn.Conv2d(inc, outc, 3, stride=1, padding=1)

    def forward(self, x):
        x = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=True)
        return self.conv(x)


class AOTBlock(nn.Module):
    def __init__(self, dim: int, rates: Sequence[int]):
        super().__init__()
        self.rates = tuple(int(r) for r in rates)
        for i, rate in enumerate(self.rates):
            self.add_module(f"block{i:02d}", nn.Sequential(
                nn.ReflectionPad2d(rate),
                nn.Conv2d(dim, dim // 4, 3, padding=0, dilation=rate),
                nn.ReLU(True)))
        self.fuse = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, dilation=1))
        self.gate = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, dilation=1))

    def forward(self, x):
        out = [getattr(self, f"block{i:02d}")(x) for i in range(len(self.rates))]
        out = torch.cat(out, 1)
        out = self.fuse(out)
        mask = torch.sigmoid(my_layer_norm(self.gate(x)))
        return x * (1 - mask) + out * mask

    def forward_fast(self, x):
        """Inference path (no autograd): same arithmetic, fewer copies."""
        pmax = max(self.rates + (1,))
        xp = F.pad(x, (pmax,) * 4, mode="reflect")
        hh, ww = x.shape[2], x.shape[3]
        outs = []
        for i, rate in enumerate(self.rates):
            conv = getattr(self, f"block{i:02d}")[1]
            o = pmax - rate
            xr = xp[:, :, o:o + hh + 2 * rate, o:o + ww + 2 * rate]
            outs.append(torch.relu_(F.conv2d(xr, conv.weight, conv.bias, 1, 0, rate)))
        out = torch.cat(outs, 1)
        del outs
        fuse = self.fuse[1]
        out = F.conv2d(F.pad(out, (1, 1, 1, 1), mode="reflect"), fuse.weight, fuse.bias)
        gate = self.gate[1]
        o = pmax - 1
        g = F.conv2d(xp[:, :, o:o + hh + 2, o:o + ww + 2], gate.weight, gate.bias)
        del xp
        # sigmoid(5 * (2 * (g - mean) / (std + 1e-9) - 1))
        mean = g.mean((2, 3), keepdim=True)
        std = g.std((2, 3), keepdim=True) + 1e-9
        g.sub_(mean).mul_(2).div_(std).sub_(1).mul_(5).sigmoid_()
        # x * (1 - g) + out * g  ==  x + (out - x) * g  (kept in the official form)
        return x * (1 - g) + out.mul_(g)


class InpaintGenerator(nn.Module):
    """AOT-GAN generator (official key layout for the default arguments)."""

    def __init__(self, channels: int = 64, block_num: int = 8, rates: Sequence[int] = (1, 2, 4, 8)):
        super().__init__()
        c = int(channels)
        self.config = dict(channels=c, block_num=int(block_num), rates=tuple(int(r) for r in rates))
        self.encoder = nn.Sequential(
            nn.ReflectionPad2d(3),
            nn.Conv2d(4, c, 7),
            nn.ReLU(True),
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1),
            nn.ReLU(True),
            nn.Conv2d(2 * c, 4 * c, 4, stride=2, padding=1),
            nn.ReLU(True),
        )
        self.middle = nn.Sequential(*[AOTBlock(4 * c, rates) for _ in range(int(block_num))])
        self.decoder = nn.Sequential(
            UpConv(4 * c, 2 * c),
            nn.ReLU(True),
            UpConv(2 * c, c),
            nn.ReLU(True),
            nn.Conv2d(c, 3, 3, stride=1, padding=1),
        )

    def forward(self, x, mask):
        hh, ww = x.shape[2], x.shape[3]
        if hh % 4 or ww % 4:
            raise ValueError(f"AOT-GAN needs sides that are multiples of 4, got {hh}x{ww}")
        rmax = max(self.config["rates"])
        if min(hh, ww) // 4 <= rmax:
            raise ValueError(f"AOT-GAN needs sides >= {4 * (rmax + 1)}, got {hh}x{ww}")
        fast = not (torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters()))
        if fast:
            return self.forward_fast(x, mask)
        return self.forward_plain(x, mask)

    def forward_plain(self, x, mask):
        x = torch.cat([x, mask], dim=1)
        x = self.encoder(x)
        x = self.middle(x)
        x = self.decoder(x)
        return torch.tanh(x)

    #: memory layout of the inference path (see the module docstring: channels-last changes
    #: the convolution rounding, which the gate normalisation amplifies)
    memory_format = torch.contiguous_format

    def forward_fast(self, x, mask):
        x = torch.cat([x, mask], dim=1).contiguous(memory_format=self.memory_format)
        x = self.encoder(x)
        for blk in self.middle:
            x = blk.forward_fast(x)
        x = self.decoder(x)
        return torch.tanh(x).contiguous()


def create(**kwargs) -> InpaintGenerator:
    """AOT-GAN generator. Defaults = official; ``channels`` (base width, official 64),
    ``block_num`` (official 8) and ``rates`` select smaller (non-official) variants."""
    cfg = dict(OFFICIAL)
    unknown = set(kwargs) - set(cfg)
    if unknown:
        raise TypeError(f"unknown AOT options: {', '.join(sorted(unknown))}")
    cfg.update(kwargs)
    return InpaintGenerator(**cfg)
