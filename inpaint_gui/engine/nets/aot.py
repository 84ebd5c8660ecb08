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
Inference (no autograd) on CPU in float32 uses ``forward_winograd`` (the fast path): channels-last
throughout, the 3x3 convolutions with >= ``AOTBlock.WINOGRAD_MIN_OUT`` outputs (each block's rate-1
branch fused with its gate, the dilated branches, the fuse conv, the decoder convs) as Winograd
F(4x4, 3x3) products in cache-sized bands (:mod:`.kernels.winograd`, 4x fewer multiplies),
narrower ones (small variants) as direct channels-last convolutions, one reflection pad per
block, the gate statistics with short sums. AOT's gate divides by the per-channel standard
deviation of the gate features and multiplies by 10, which amplifies any change in rounding;
the path stays within 5e-5 of the official output on the fixtures (tolerance 1e-4).
``net.fast_path = False`` (or ``INPAINT_FAST_KERNELS=0``) selects ``forward_fast`` instead, the
reference: the official NCHW convolutions with fewer copies, bit-for-bit the official output
(also used on GPUs and under CPU autocast, where it runs channels-last).
Training uses ``forward_plain`` (the official module graph).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .kernels import use_fast_path
from .kernels import winograd as wg

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

    #: Winograd pays off when the product is wide: below this many output channels the
    #: input transform costs more than it saves and a direct channels-last convolution is used.
    #: 64 takes the official model's narrow dilated branches (256 -> 64) too: 8-14 % faster
    #: forwards on the Intel Xeon VM (Sapphire Rapids class, 2 threads, 256^2..1024^2,
    #: 2026-12-05); on an AMD EPYC VM those branches had measured slower as Winograd
    #: (threshold 128 then; README, Performance)
    WINOGRAD_MIN_OUT = 64

    def winograd_params(self, m: int) -> dict:
        """Weights for :meth:`forward_winograd`. The rate-1 branch and the gate read the same
        padded input, so they share one product; narrow products run as direct convolutions."""
        convs = [getattr(self, f"block{i:02d}")[1] for i in range(len(self.rates))]
        gate, fuse = self.gate[1], self.fuse[1]
        cb, cg = convs[0].weight.shape[0], gate.weight.shape[0]
        # each job: (rate, weights [Co, C, 3, 3], bias [Co], [(buffer, buffer channels, Co channels)])
        jobs, gate_done = [], False
        for i, (rate, conv) in enumerate(zip(self.rates, convs)):
            w, b = conv.weight, conv.bias
            targets = [("cat", slice(i * cb, (i + 1) * cb), slice(0, cb))]
            if rate == 1 and not gate_done:
                w, b = torch.cat([w, gate.weight], 0), torch.cat([b, gate.bias], 0)
                targets.append(("gate", slice(0, cg), slice(cb, cb + cg)))
                gate_done = True
            jobs.append((rate, w, b, targets))
        if not gate_done:
            jobs.append((1, gate.weight, gate.bias, [("gate", slice(0, cg), slice(0, cg))]))
        jobs.append((1, fuse.weight, fuse.bias, [("fuse", slice(0, cg), slice(0, cg))]))
        out = []
        for rate, w, b, targets in jobs:
            w, b = w.detach().float(), b.detach().float().clone()
            if w.shape[0] >= self.WINOGRAD_MIN_OUT:
                out.append(("winograd", rate, wg.weight_transform(w, m), b, targets))
            else:
                out.append(("direct", rate, w.contiguous(memory_format=torch.channels_last), b, targets))
        return dict(jobs=out[:-1], fuse=out[-1])

    def forward_winograd(self, x: torch.Tensor, prm: dict, m: int, bb, aa) -> torch.Tensor:
        """Inference on channels-last ``[B, H, W, C]`` (contiguous) with Winograd F(m, 3)
        convolutions for the wide products; returns a new contiguous ``[B, H, W, C]``."""
        b, h, w, c = x.shape
        pmax = max(self.rates + (1,))
        rates = set(self.rates) | {1}
        ext = {r: wg.conv3x3_extent(h, w, r, m) for r in rates}
        wino_rates = {j[1] for j in prm["jobs"] + [prm["fuse"]] if j[0] == "winograd"}
        oh = max([h] + [wg.conv3x3_plan(h, w, r, m)[2] for r in wino_rates])
        ow = max([w] + [wg.conv3x3_plan(h, w, r, m)[3] for r in wino_rates])
        xp = wg.reflect_pad(x, pmax, max(pmax - r + e[0] for r, e in ext.items()),
                            max(pmax - r + e[1] for r, e in ext.items()))
        bufs = {"cat": x.new_empty((b, oh, ow, c)), "gate": x.new_empty((b, oh, ow, c))}
        for job in prm["jobs"]:
            _conv_job(job, xp, pmax - job[1], h, w, bufs, m, bb, aa)
        del xp
        out = bufs["cat"][:, :h, :w].relu_()
        op = wg.reflect_pad(out, 1, *ext[1])
        bufs["fuse"] = bufs["cat"]            # the fuse output overwrites its own input
        _conv_job(prm["fuse"], op, 0, h, w, bufs, m, bb, aa)
        del op
        out = bufs["fuse"][:, :h, :w]
        g = bufs["gate"][:, :h, :w]
        if not g.is_contiguous():
            g = g.contiguous()
        # sigmoid(5 * (2 * (g - mean) / (std + 1e-9) - 1)), std unbiased (two-pass)
        gv = g.view(b, h * w, c)
        gv.sub_(gv.mean(1, keepdim=True))
        # the norm row by row, then over rows: short sums keep the rounding of the official
        # NCHW reduction (one long column sum loses ~3e-6, which the gate amplifies)
        std = torch.linalg.vector_norm(torch.linalg.vector_norm(g, dim=2), dim=1)
        std = std.div_(max(h * w - 1, 1) ** 0.5).add_(1e-9).view(b, 1, c)
        gv.mul_(2).div_(std).sub_(1).mul_(5).sigmoid_()
        # x * (1 - g) + out * g, the official form
        return torch.rsub(g, 1).mul_(x).add_(out.mul_(g))


def _conv_job(job, src: torch.Tensor, off: int, h: int, w: int, bufs: dict, m: int, bb, aa) -> None:
    """Run one prepared convolution of :meth:`AOTBlock.winograd_params` on the padded
    channels-last ``src`` (input at row/column ``off``) into its target buffers."""
    kind, rate, wt, bias, targets = job
    if kind == "winograd":
        wg.conv3x3_padded(src, off, h, w, rate, wt, bb, aa, m,
                          [(bufs[name][..., dst], ch, bias[ch]) for name, dst, ch in targets])
        return
    xin = src.permute(0, 3, 1, 2)[:, :, off:off + h + 2 * rate, off:off + w + 2 * rate]
    y = F.conv2d(xin, wt, bias, 1, 0, rate).permute(0, 2, 3, 1)
    for name, dst, ch in targets:
        bufs[name][:, :h, :w, dst] = y[..., ch]


class InpaintGenerator(nn.Module):
    """AOT-GAN generator (official key layout for the default arguments)."""

    def __init__(self, channels: int = 64, block_num: int = 8, rates: Sequence[int] = (1, 2, 4, 8)):
        super().__init__()
        c = int(channels)
        self.config = dict(channels=c, block_num=int(block_num), rates=tuple(int(r) for r in rates))
        self.fast_path = True  # forward_winograd for CPU float32 inference
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
        inference = not (torch.is_grad_enabled()
                         and any(p.requires_grad for p in self.parameters()))
        if inference and self._use_winograd(x):
            return self.forward_winograd(x, mask)
        if inference:
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

    #: Winograd tile size of the fast path: 4 (F(4x4,3x3), 4x fewer multiplies than direct)
    #: or 2 (F(2x2,3x3), closer to direct rounding)
    winograd_m = 4

    def _use_winograd(self, x) -> bool:
        return (use_fast_path(self) and x.device.type == "cpu" and x.dtype == torch.float32
                and not torch.is_autocast_enabled("cpu"))

    def _winograd_cache(self):
        m = self.winograd_m
        if m not in wg.WINOGRAD_POINTS:
            raise ValueError(f"winograd_m must be one of {sorted(wg.WINOGRAD_POINTS)}, got {m} "
                             "(fast_path = False turns the fast path off)")
        key = (m,) + tuple((t.data_ptr(), t._version) for t in self.parameters())
        cache = getattr(self, "_wino", None)
        if cache is None or cache[0] != key:
            with torch.no_grad():
                bb, aa = wg.data_transforms(m)
                blocks = [blk.winograd_params(m) for blk in self.middle]
                ups = {}
                for i, mod in enumerate(self.decoder):
                    if isinstance(mod, UpConv) and mod.conv.out_channels >= AOTBlock.WINOGRAD_MIN_OUT:
                        ups[i] = wg.weight_transform(mod.conv.weight.detach(), m)
                convs = {i: mod.weight.detach().contiguous(memory_format=torch.channels_last)
                         for i, mod in enumerate(self.decoder) if isinstance(mod, nn.Conv2d)}
            cache = (key, blocks, ups, convs, bb, aa)
            self._wino = cache
        return cache

    def release_fast_cache(self) -> None:
        """Drop the transformed Winograd weights (rebuilt on the next CPU forward)."""
        self._wino = None

    def prepare_inference(self, x: torch.Tensor) -> None:
        """Build now what the first inference forward on inputs like ``x`` would build."""
        if self._use_winograd(x):
            self._winograd_cache()

    def forward_winograd(self, x, mask):
        """CPU fp32 inference: channels-last throughout, Winograd F(m x m, 3 x 3) for the wide
        3x3 convolutions of the AOT blocks and the first decoder stage (max deviation from the
        official output ~4e-5 on the fixtures, tolerance 1e-4)."""
        _, blocks, ups, convs, bb, aa = self._winograd_cache()
        m = self.winograd_m
        x = torch.cat([x, mask], dim=1).contiguous(memory_format=torch.channels_last)
        x = self.encoder(x)
        x = x.permute(0, 2, 3, 1).contiguous()                     # [B, H, W, C]
        for blk, prm in zip(self.middle, blocks):
            x = blk.forward_winograd(x, prm, m, bb, aa)
        x = x.permute(0, 3, 1, 2)                                  # channels-last NCHW view
        for i, mod in enumerate(self.decoder):
            if isinstance(mod, UpConv):
                x = F.interpolate(x, scale_factor=mod.scale, mode="bilinear", align_corners=True)
                if i in ups:
                    x = wg.conv_zero_padded(x.permute(0, 2, 3, 1), ups[i], mod.conv.bias, m, 1)
                    x = x.permute(0, 3, 1, 2)
                else:
                    x = F.conv2d(x, convs.get(i, mod.conv.weight), mod.conv.bias, 1, 1)
            elif isinstance(mod, nn.Conv2d):
                x = F.conv2d(x, convs[i], mod.bias, mod.stride, mod.padding)
            else:
                x = mod(x)
        return torch.tanh(x).contiguous()

    def forward_fast(self, x, mask):
        # under CPU autocast (bf16) the rounding is bf16's anyway: channels-last spares oneDNN
        # a layout reorder around every convolution (1.8x faster at 512^2 on an AMX CPU)
        fmt = torch.channels_last if torch.is_autocast_enabled("cpu") else self.memory_format
        x = torch.cat([x, mask], dim=1).contiguous(memory_format=fmt)
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
