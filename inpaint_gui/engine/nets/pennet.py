"""PEN-Net (Zeng et al., CVPR 2019): pyramid-context encoder with attention transfer (ATN).

Written from the behaviour of the official PyTorch branch (researchmm/PEN-Net-for-Inpainting
@ 8721a55, ``model/pennet.py: InpaintGenerator``): same module names, so the released
``gen_XXXXX.pth`` (``{'netG': state_dict}``) loads with ``strict=True``.

Call ``net(input, mask)`` with ``input = cat([img * (1 - m) + m, m])`` (img in [-1, 1], holes
filled with +1, m = 1 for holes) and ``mask = m``; returns ``([img1 .. img5], output)``: the
pyramid RGB outputs (finest first, tanh) and the full-resolution tanh output.

ATN quirks kept on purpose (``AtnConv``): 4x4 low-level patches at stride 2 (zero pad 1);
mask resized with bilinear ``align_corners=True``; a patch is usable only when its k x k mean is
exactly 0; only the filters are L2-normalised (floor 1e-4); unusable patches get logit 0 (they
stay in the softmax denominator), are then zeroed and clamped to 1e-8; the transfer is a
transposed conv divided by 4; the output replaces the whole feature map; fused dilated convs
(rates 1, 2, 4, 8). Sides must be multiples of 64.

Inference speed: without autograd the attention runs as chunked matrix products over the
usable patches only (:mod:`.kernels.patch_attention`: unusable ones enter in closed form, their
count in the softmax denominator and their constant 1e-8 weight in the transfer), which is the
same arithmetic without the wasted work; ``net.fast_path = False`` (or
``INPAINT_FAST_KERNELS=0``) runs the official formulation.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .kernels import use_fast_path
from .kernels.patch_attention import attend_usable_patches

__all__ = ["AtnConv", "InpaintGenerator", "create", "extract_patches"]

#: queries per block of the fast attention: the block's scores ([QUERY_CHUNK, usable patches])
#: and its softmax stay in cache. Official network, one torch thread, CPU time per forward on
#: the 2-core Intel Xeon VM (Sapphire Rapids class) of the kernels change: 256^2 299 ms with
#: 256 or 512 (303 with 128, 330 from 2048), 512^2 3.77 s with 512 (3.78 s 256, 4.2 s 1024+)
QUERY_CHUNK = 512


def extract_patches(x, kernel: int = 3, stride: int = 1):
    """Official helper: zero-pad by 1 unless kernel == 1, then [B, nh, nw, C, k, k] patches."""
    if kernel != 1:
        x = F.pad(x, (1, 1, 1, 1))
    x = x.permute(0, 2, 3, 1)
    return x.unfold(1, kernel, stride).unfold(2, kernel, stride)


class AtnConv(nn.Module):
    def __init__(self, input_channels: int = 128, output_channels: int = 64, groups: int = 4,
                 ksize: int = 3, stride: int = 1, rate: int = 2, softmax_scale: float = 10.0,
                 fuse: bool = True, rates=(1, 2, 4, 8)):
        super().__init__()
        self.ksize = ksize
        self.stride = stride
        self.rate = rate
        self.softmax_scale = softmax_scale
        self.groups = groups
        self.fuse = fuse
        if self.fuse:
            for i in range(groups):
                self.__setattr__(f"conv{i:02d}", nn.Sequential(
                    nn.Conv2d(input_channels, output_channels // groups, kernel_size=3,
                              dilation=rates[i], padding=rates[i]),
                    nn.ReLU(inplace=True)))

    def forward(self, x1, x2, mask=None, fast: bool = True):
        """x1: low-level features [B, C1, 2h, 2w]; x2: high-level [B, C2, h, w]; mask 1 = hole.
        ``fast``: the matrix-product attention when no gradient is needed (the generator
        passes its ``fast_path``)."""
        if mask is not None:
            mask = F.interpolate(mask.to(x2.dtype), size=x2.shape[2:4], mode="bilinear",
                                 align_corners=True)
        else:
            mask = x2.new_zeros((x2.shape[0], 1, x2.shape[2], x2.shape[3]))
        if fast and self.stride == 1 and not (torch.is_grad_enabled() and (
                x1.requires_grad or x2.requires_grad)):
            y = attend_usable_patches(x1, x2, mask, self.ksize, self.rate, self.softmax_scale,
                                      QUERY_CHUNK)
        else:
            y = self._attend_official(x1, x2, mask)
        if self.fuse:
            y = torch.cat([getattr(self, f"conv{i:02d}")(y) for i in range(self.groups)], dim=1)
        return y

    # -- the official formulation ------------------------------------------------------------
    def _attend_official(self, x1, x2, mask):
        x1s, x2s = list(x1.size()), list(x2.size())
        kernel = 2 * self.rate
        raw_w = extract_patches(x1, kernel=kernel, stride=self.rate * self.stride)
        raw_w = raw_w.contiguous().view(x1s[0], -1, x1s[1], kernel, kernel)
        w = extract_patches(x2, kernel=self.ksize, stride=self.stride)
        w = w.contiguous().view(x2s[0], -1, x2s[1], self.ksize, self.ksize)
        m = extract_patches(mask, kernel=self.ksize, stride=self.stride)
        m = m.contiguous().view(x2s[0], -1, 1, self.ksize, self.ksize)
        m = m.mean([2, 3, 4]).unsqueeze(-1).unsqueeze(-1)
        mm = m.eq(0.0).to(x2.dtype)                                        # [B, L, 1, 1]
        padding = 0 if self.ksize == 1 else 1
        escape_nan = torch.tensor([1e-4], dtype=x2.dtype, device=x2.device)
        y = []
        for b in range(x2s[0]):
            xi, wi, raw_wi, mi = x2[b:b + 1], w[b], raw_w[b], mm[b:b + 1]
            wi_normed = wi / torch.max(torch.sqrt((wi * wi).sum([1, 2, 3], keepdim=True)), escape_nan)
            yi = F.conv2d(xi, wi_normed, stride=1, padding=padding)
            yi = yi.contiguous().view(1, x2s[2] // self.stride * x2s[3] // self.stride, x2s[2], x2s[3])
            yi = yi * mi
            yi = F.softmax(yi * self.softmax_scale, dim=1)
            yi = yi * mi
            yi = yi.clamp(min=1e-8)
            yi = F.conv_transpose2d(yi, raw_wi, stride=self.rate, padding=1) / 4.0
            y.append(yi)
        return torch.cat(y, dim=0)


class InpaintGenerator(nn.Module):
    def __init__(self, cnum: int = 32):
        super().__init__()
        self.fast_path = True  # the matrix-product attention (kernels.patch_attention)

        def down(cin, cout, act):
            return nn.Sequential(nn.Conv2d(cin, cout, kernel_size=3, stride=2, padding=1), act)

        def up(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, kernel_size=3, stride=1, padding=1),
                                 nn.ReLU(inplace=True))

        def rgb(cin):
            return nn.Sequential(nn.Conv2d(cin, 3, kernel_size=1, stride=1, padding=0), nn.Tanh())

        lrelu = lambda: nn.LeakyReLU(0.2, inplace=True)  # noqa: E731
        self.dw_conv01 = down(4, cnum, lrelu())
        self.dw_conv02 = down(cnum, cnum * 2, lrelu())
        self.dw_conv03 = down(cnum * 2, cnum * 4, lrelu())
        self.dw_conv04 = down(cnum * 4, cnum * 8, lrelu())
        self.dw_conv05 = down(cnum * 8, cnum * 16, lrelu())
        self.dw_conv06 = down(cnum * 16, cnum * 16, nn.ReLU(inplace=True))
        self.at_conv05 = AtnConv(cnum * 16, cnum * 16, ksize=1, fuse=False)
        self.at_conv04 = AtnConv(cnum * 8, cnum * 8)
        self.at_conv03 = AtnConv(cnum * 4, cnum * 4)
        self.at_conv02 = AtnConv(cnum * 2, cnum * 2)
        self.at_conv01 = AtnConv(cnum, cnum)
        self.up_conv05 = up(cnum * 16, cnum * 16)
        self.up_conv04 = up(cnum * 32, cnum * 8)
        self.up_conv03 = up(cnum * 16, cnum * 4)
        self.up_conv02 = up(cnum * 8, cnum * 2)
        self.up_conv01 = up(cnum * 4, cnum)
        self.torgb5 = rgb(cnum * 32)
        self.torgb4 = rgb(cnum * 16)
        self.torgb3 = rgb(cnum * 8)
        self.torgb2 = rgb(cnum * 4)
        self.torgb1 = rgb(cnum * 2)
        self.decoder = nn.Sequential(
            nn.Conv2d(cnum * 2, cnum, kernel_size=3, stride=1, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(cnum, 3, kernel_size=3, stride=1, padding=1),
            nn.Tanh())

    def forward(self, img, mask):
        h, w = img.shape[-2:]
        if h % 64 or w % 64:
            raise ValueError(f"PEN-Net needs sides that are multiples of 64, got {h}x{w}")
        fast = use_fast_path(self)
        x1 = self.dw_conv01(img)
        x2 = self.dw_conv02(x1)
        x3 = self.dw_conv03(x2)
        x4 = self.dw_conv04(x3)
        x5 = self.dw_conv05(x4)
        x6 = self.dw_conv06(x5)
        x5 = self.at_conv05(x5, x6, mask, fast)
        x4 = self.at_conv04(x4, x5, mask, fast)
        x3 = self.at_conv03(x3, x4, mask, fast)
        x2 = self.at_conv02(x2, x3, mask, fast)
        x1 = self.at_conv01(x1, x2, mask, fast)

        def up2(t):
            return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=True)

        upx5 = self.up_conv05(up2(x6))
        c5 = torch.cat([upx5, x5], dim=1)
        upx4 = self.up_conv04(up2(c5))
        c4 = torch.cat([upx4, x4], dim=1)
        upx3 = self.up_conv03(up2(c4))
        c3 = torch.cat([upx3, x3], dim=1)
        upx2 = self.up_conv02(up2(c3))
        c2 = torch.cat([upx2, x2], dim=1)
        upx1 = self.up_conv01(up2(c2))
        c1 = torch.cat([upx1, x1], dim=1)
        img5 = self.torgb5(c5)
        img4 = self.torgb4(c4)
        img3 = self.torgb3(c3)
        img2 = self.torgb2(c2)
        img1 = self.torgb1(c1)
        output = self.decoder(up2(c1))
        return [img1, img2, img3, img4, img5], output


def create(**kwargs) -> InpaintGenerator:
    """The official generator (cnum = 32); ``cnum=`` selects a smaller variant."""
    return InpaintGenerator(**kwargs)
