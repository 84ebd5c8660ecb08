"""RFR-Net (Recurrent Feature Reasoning, Li et al., CVPR 2020), faithful to the official code.

Official source: ``jingyuanli001/RFR-Inpainting`` @ e1cad6a8 (``modules/RFRNet.py``,
``modules/partialconv2d.py``, ``modules/Attention.py``). ``create()`` builds a module whose
``state_dict`` has exactly the official keys and shapes (``Pconv1.weight`` ... ``out.weight``), so
the released ``checkpoint_*.pth`` generators load with ``strict=True``.

Call convention (official): ``out, None = net(in_image, mask)`` with

* ``in_image`` float ``[N,3,H,W]`` RGB in [0, 1] with the holes set to 0,
* ``mask`` float ``[N,3,H,W]`` (or ``[N,1,H,W]``), **1 = known, 0 = hole**,
* H and W multiples of 16; ``out`` is the raw last convolution (unbounded, no activation).
  The official composite is ``out * (1 - mask) + in_image * mask``.

Differences from the official code that do not change the outputs (beyond float rounding):

* Partial-convolution mask updates. The official ``PartialConv2d`` convolves the full
  ``[N,C,H,W]`` mask with an all-ones ``[out,in,kh,kw]`` kernel (as many FLOPs as the feature
  convolution). Every output channel of that convolution is the same window count, so we sum
  the mask over its channels once and box-sum that single channel. Update masks are carried as
  one channel (the official 64 channels are all equal) and broadcast.
* Knowledge-consistent attention is batched (``bmm``) instead of a per-sample loop, and the
  3x3 score propagation ``avg_pool2d(scores, 3, 1, 1) * 9`` is applied to the features before
  the score product (the propagation is linear in the query features, so
  ``K^T boxsum(F) == boxsum(K^T F)``), which avoids pooling the ``[hw, h, w]`` score volume.
* The attention state (previous scores and masks) is passed explicitly through the 6
  recurrence steps of one forward instead of being kept on the module
  (``att_scores_prev``/``masks_prev``); it is reset at every forward exactly like the official
  ``RFRNet.forward`` does, and concurrent forwards on one module do not interfere.
* No CUDA-only call (the official KCA builds an unused ``prop_kernels`` tensor with ``.cuda()``).
* Eval mode: ``RFRNet.train(mode, finetune)`` of the official code overrides ``nn.Module.train``
  and returns None; here ``train()``/``eval()`` are the standard ones. Inference must run in
  ``eval()`` mode (BatchNorm with running statistics, as the official test script does);
  ``model.eval()`` returns the module. ``set_finetune(True)`` mimics the official fine-tune
  stage (all BatchNorm layers stay in eval mode while training).
* Inference path (``fast_path``, eval mode, no gradient needed; ``_forward_plain`` is the
  reference: the autograd path used for training, the same function; ``net.fast_path = False``
  or ``INPAINT_FAST_KERNELS=0`` selects it): BatchNorm folded into the preceding bias-free
  convolutions (:mod:`.kernels.fold`; cached, recomputed when the parameters change),
  channels-last layout, the k >= 5 partial convolutions by overlap-save FFT on 32x32 tiles
  (:mod:`.kernels.fft`), the dilated 3x3 convolutions by banded Winograd F(4x4,3x3) over all
  dilation sub-grids at once (:mod:`.kernels.winograd`; float32 on CPU; F(2x2,3x3) up to 16x16
  pixels), the transposed convolutions of the recurrent U-Net as one 2x2 convolution over their
  four output phases (:mod:`.kernels.phase`: banded Winograd F(4x4,2x2), F(2x2,2x2) up to 32x32
  pixels), the 1x1 combiner as matrix products, the attention in cache-sized blocks of queries
  with weights below 1e-30 set to 0 (no subnormal numbers). All of these stay within float
  rounding of the direct computation; on the conformance fixtures the result is <= 2.9 % of the
  tolerance 1e-4 * max|output| away from the official output.
* ``RFRNet.forward_official`` is the official arithmetic op for op (all-ones mask convolutions,
  attention over the full score volume): the benchmark's same-run stand-in for the official
  code (344 GFLOP at 256^2, as the official code).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .kernels import use_fast_path
from .kernels import winograd as wg
from .kernels.fft import fft_conv2d, fft_weight_spectrum
from .kernels.fold import fold_bn
from .kernels.phase import (deconv_phase, deconv_phase_winograd, deconv_phases_winograd,
                            phase_weight, phases_winograd_weights)

OFFICIAL = dict(kernel_size=7, channels=64, max_channels=512, recurrences=6, tail_channels=32,
                tail_planes=8)


# --------------------------------------------------------------------------------------------
# helpers


def _box_count(msum: torch.Tensor, k: int, stride: int, padding: int) -> torch.Tensor:
    """Window sums of a 1-channel mask (= the official all-ones mask convolution / C)."""
    ones = torch.ones(1, 1, k, k, dtype=msum.dtype, device=msum.device)
    return F.conv2d(msum, ones, stride=stride, padding=padding)


def _ratio_update(msum: torch.Tensor, k: int, stride: int, padding: int,
                  slide_winsize: float) -> "tuple[torch.Tensor, torch.Tensor]":
    """NVIDIA PartialConv2d (multi_channel) mask arithmetic on a channel-summed mask."""
    count = _box_count(msum, k, stride, padding)
    ratio = slide_winsize / (count + 1e-8)
    update = torch.clamp(count, 0, 1)
    ratio = ratio * update
    return ratio, update


class PartialConv2d(nn.Conv2d):
    """NVIDIA's PartialConv2d (``multi_channel=True``, ``return_mask=True``), bias-free as in RFR.

    ``forward(x, mask)`` with ``mask`` of 1 channel (shared by every input channel) or of
    ``in_channels`` channels; returns ``(output, update_mask)`` with a 1-channel update mask
    (the official one has ``out_channels`` identical channels)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=False):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         bias=bias)
        self.slide_winsize = float(in_channels * self.kernel_size[0] * self.kernel_size[1])

    def mask_terms(self, msum: torch.Tensor):
        return _ratio_update(msum, self.kernel_size[0], self.stride[0], self.padding[0],
                             self.slide_winsize)

    def forward(self, x, mask, msum: Optional[torch.Tensor] = None):
        """``msum``: the mask summed over the input channels (computed when not given)."""
        if msum is None:
            msum = mask.sum(1, keepdim=True) if mask.shape[1] > 1 else mask * self.in_channels
        with torch.no_grad():
            ratio, update = self.mask_terms(msum.detach())
        raw = F.conv2d(x * mask, self.weight, None, self.stride, self.padding)
        if self.bias is None:
            return raw * ratio, update
        b = self.bias.view(1, -1, 1, 1)  # NVIDIA's formula (RFR uses no bias)
        return (raw * ratio + b) * update, update


# Kernel choices of the inference path by layer size. "Measured here": CPU time per call
# (process_time, min of repeats, one torch thread) on the 2-core Intel Xeon VM (Sapphire
# Rapids class, AVX-512 + AMX) of this change, whose other core was busy: the figures rank
# the kernels, they are not wall times.

#: the k x k partial convolutions (k >= FFT_MIN_KERNEL, stride 1: Pconv2/21/22, 64 -> 64, of
#: the official 7x7 and smaller-hole 5x5 networks) go through the FFT kernel on FFT_TILE x
#: FFT_TILE tiles from FFT_MIN_PIXELS pixels up. Set with the 2-thread runs on the quiet Intel
#: Xeon VM of 2026-12-05 (README, Performance). Measured here: 7x7 at 128^2 (a 256^2 input)
#: 17 ms FFT on 32^2 tiles (36 on 16^2, 38 on 64^2) against 28 ms direct, even at 64^2, direct
#: faster below; 5x5 even at 128^2 and 192^2, direct faster at 256^2 (58 against 95 ms) --
#: worth re-checking both thresholds on a quiet machine
FFT_MIN_KERNEL = 5
FFT_MIN_PIXELS = 1024
FFT_TILE = 32

#: tile of the banded Winograd path (kernels/winograd.py) for the 3x3 convolutions and the
#: transposed convolutions' phases: F(4x4, .) needs 4x (3x3) or 2.25x (2x2) fewer multiplies
WINOGRAD_M = 4
#: dilated 3x3 layers up to this many pixels use F(2x2, 3x3): with few tiles the products are
#: too short to pay for streaming F(4x4, .)'s larger transformed weights (36 matrices instead
#: of 16). Measured here at 16^2 (a 256^2 input): F(2x2) 7.0 against 9.5 ms for the
#: 1024 -> 512 layers (dec_5, dec_4), 4.4 against 2.9 ms for the 512 -> 512 ones (enc_4..6):
#: even over a recurrence; from 24^2 up F(4x4) wins for all (32^2: 15.7 / 7.6 against 26.8 /
#: 13.1 ms)
WINO2_MAX_PIXELS = 256
#: the two deepest transposed convolutions (dec_3 1024 -> 512, dec_2 768 -> 256) run phase by
#: phase (kernels/phase.deconv_phases_winograd), with F(2x2, 2x2) up to this many input pixels.
#: Measured here, dec_3: 16^2 (256^2 input) 16.8 ms with F(2x2) (27.6 with F(4x4); the joint
#: phase form 41, the direct phase form 32, the removed hand-written per-phase F(2x2) 20),
#: 24^2 33 / 33 ms, 32^2 63 / 44 ms (joint F(2x2) 67); dec_2: 32^2 28 / 19.5 ms (joint 27.5),
#: 64^2 106 / 72 ms (joint F(4x4) 89)
PHASES_WINO2_MAX_PIXELS = 576
#: dec_1 (384 -> 64: few outputs per phase) keeps the joint phase form, F(2x2, 2x2) up to this
#: many input pixels. Measured here: 64^2 12.8 ms with F(4x4) against 15.7 joint F(2x2), 15.7
#: phase by phase, 15.4 as the transposed convolution
PHASE_WINO2_MAX_PIXELS = 1024


def conv3x3_winograd_banded(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor,
                            d: int, m: int = WINOGRAD_M) -> torch.Tensor:
    """``F.conv2d(x, w, bias, padding=d, dilation=d)`` (3x3, stride 1) as banded Winograd
    F(m x m, 3 x 3) products; ``u = winograd.weight_transform(w, m)``. Returns channels-last."""
    out = wg.conv_zero_padded(x.permute(0, 2, 3, 1), u, bias, m, d, d)
    return out.permute(0, 3, 1, 2)


# --------------------------------------------------------------------------------------------
# knowledge-consistent attention


#: attention weights below this are set to 0 in inference. Their contribution is far below
#: float32 rounding (at most hw * 1e-30 of outputs of order 1e-2..1), but left as they are,
#: the softmax of widely spread scores (noisy inputs) yields subnormal numbers, and subnormal
#: operands slow the matrix products down (Intel Xeon VM, 512^2: 1.6 s instead of 0.9 s).
SCORE_FLOOR = 1e-30


class KnowledgeConsistentAttention(nn.Module):
    """KCA (patch 1, propagate 3). Only parameter: ``ratio`` ``[1]``.

    ``forward(foreground, mask, state)`` -> ``(output, state)``; ``state`` is
    ``(att_scores_prev [N, q, k], masks_prev [N, q, 1])`` (scores stored query-major, i.e. the
    transpose of the official ``[N, k, h, w]`` map) or None at the first recurrence step.
    The output is a channels-last ``[N, C, h, w]`` tensor."""

    #: largest score block computed at once in inference (elements): small enough to stay in
    #: cache between the score product, the softmax, the blend and the output product
    chunk_elems = 1 << 22

    def __init__(self):
        super().__init__()
        self.ratio = nn.Parameter(torch.ones(1))

    def forward(self, foreground, masks, state=None):
        n, c, h, w = foreground.shape
        hw = h * w
        if masks.shape[3] != w:
            masks = F.interpolate(masks, (h, w))  # nearest, as the official code
        mnow = masks.reshape(n, hw, 1)
        # keys: every position's feature vector + 1e-7, L2-normalised            [n, k, c]
        keys = foreground.permute(0, 2, 3, 1).reshape(n, hw, c) + 1e-7
        keys = keys / torch.sum(keys * keys, dim=2, keepdim=True).sqrt()
        # score(q, k) = <key_k, sum of the 3x3 neighbourhood of query q> (the official
        # avg_pool2d(scores, 3, 1, 1) * 9 over query positions, moved onto the features: it is
        # linear in the queries, so this is the same sum)                         [n, q, c]
        prop = (F.avg_pool2d(foreground, 3, 1, padding=1) * 9).permute(0, 2, 3, 1).reshape(n, hw, c)
        keys_t = keys.transpose(1, 2)                                           # [n, c, k]
        r = torch.abs(self.ratio) + 1e-7
        if torch.is_grad_enabled() and (foreground.requires_grad or self.ratio.requires_grad):
            att = torch.softmax(torch.bmm(prop, keys_t), dim=-1)                # [n, q, k]
            if state is not None:
                prev, mprev = state
                att = (prev * mprev + att * r) / (mprev + r)
            out = torch.bmm(att, keys)                                          # [n, q, c]
            return out.view(n, h, w, c).permute(0, 3, 1, 2), (att, mnow)
        # inference: blocks of queries small enough for their scores to stay in cache; the
        # blended scores overwrite the previous ones in place, with the official blend
        # (prev * mp + softmax * r) / (mp + r) written as prev * (mp / d) + softmax * (r / d)
        att = state[0] if state is not None else foreground.new_empty(n, hw, hw)
        mprev = state[1] if state is not None else None
        step = max(1, min(hw, self.chunk_elems // max(1, hw)))
        scores = foreground.new_empty(n, step, hw)
        out = foreground.new_empty(n, hw, c)
        for q0 in range(0, hw, step):
            q1 = min(hw, q0 + step)
            sc = torch.softmax(torch.bmm(prop[:, q0:q1], keys_t, out=scores[:, :q1 - q0]), dim=-1)
            torch.threshold_(sc, SCORE_FLOOR, 0.0)
            a = att[:, q0:q1]
            if mprev is None:
                a.copy_(sc)
            else:
                mp = mprev[:, q0:q1]
                a.mul_(mp / (mp + r)).addcmul_(sc, r / (mp + r))
            out[:, q0:q1] = torch.bmm(a, keys)
        return out.view(n, h, w, c).permute(0, 3, 1, 2), (att, mnow)


def _attention_official(att: "AttentionModule", foreground, masks, state):
    """The official ``AttentionModule`` forward (KCA patch 1, propagate 3, then the combiner),
    sample by sample over the full score volume; ``state`` = (previous blended scores
    ``[N, hw, h, w]``, previous mask ``[N, 1, h, w]``) or None. Returns ``(out, state)``."""
    bz, nc, h, w = foreground.shape
    if masks.shape[3] != w:
        masks = F.interpolate(masks, (h, w))
    foreground = foreground.contiguous()
    kernels_all = foreground.view(bz, nc, h * w, 1, 1).permute(0, 2, 1, 3, 4)
    r = torch.abs(att.att.ratio) + 1e-7
    outs, scores = [], []
    for i in range(bz):
        k = kernels_all[i] + 1e-7
        k = k / torch.sum(k ** 2, [1, 2, 3], keepdim=True) ** 0.5
        s = F.avg_pool2d(F.conv2d(foreground[i:i + 1], k), 3, 1, padding=1) * 9
        a = F.softmax(s, dim=1)
        if state is not None:
            prev, mprev = state[0][i:i + 1], state[1][i:i + 1]
            a = (prev * mprev + a * r) / (mprev + r)
        scores.append(a)
        outs.append(F.conv_transpose2d(a, k))
    out = att.combiner(torch.cat([torch.cat(outs, 0), foreground], dim=1))
    return out, (torch.cat(scores, 0), masks)


class AttentionModule(nn.Module):
    def __init__(self, inchannel: int):
        super().__init__()
        self.att = KnowledgeConsistentAttention()
        self.combiner = nn.Conv2d(inchannel * 2, inchannel, kernel_size=1)

    def forward(self, foreground, mask, state=None, fused=None):
        out, state = self.att(foreground, mask, state)
        if fused is None:
            out = self.combiner(torch.cat([out, foreground], dim=1))
            return out, state
        # 1x1 combiner as two matrix products in channels-last layout
        w_att, w_fg, b = fused["combiner"]
        n, c, h, w = foreground.shape
        o = out.permute(0, 2, 3, 1).reshape(-1, c)
        f = foreground.permute(0, 2, 3, 1).reshape(-1, c)
        y = torch.addmm(b, o, w_att)
        y = y.addmm_(f.to(y.dtype), w_fg.to(y.dtype))  # same dtype under CPU bf16 autocast
        return y.view(n, h, w, -1).permute(0, 3, 1, 2), state


# --------------------------------------------------------------------------------------------
# recurrent U-Net


def _block(cin, cout, kind):
    if kind == "enc_s2":
        conv = nn.Conv2d(cin, cout, 3, 2, 1, bias=False)
        act = nn.ReLU(inplace=True)
    elif kind == "enc_dil":
        conv = nn.Conv2d(cin, cout, 3, 1, 2, dilation=2, bias=False)
        act = nn.ReLU(inplace=True)
    elif kind == "dec_dil":
        conv = nn.Conv2d(cin, cout, 3, 1, 2, dilation=2, bias=False)
        act = nn.LeakyReLU(0.2, inplace=True)
    else:  # dec_up
        conv = nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)
        act = nn.LeakyReLU(0.2, inplace=True)
    return nn.Sequential(conv, nn.BatchNorm2d(cout), act)


class RFRModule(nn.Module):
    def __init__(self, in_channel: int = 64, max_channels: int = 512, layer_size: int = 6):
        super().__init__()
        self.layer_size = layer_size
        enc_out = []
        c = in_channel
        for i in range(3):
            c_out = min(c * 2, max_channels)
            setattr(self, f"enc_{i + 1}", _block(c, c_out, "enc_s2"))
            enc_out.append(c_out)
            c = c_out
        for i in range(3, layer_size):
            setattr(self, f"enc_{i + 1}", _block(c, c, "enc_dil"))
            enc_out.append(c)
        self.att = AttentionModule(enc_out[2])
        chans = [in_channel] + enc_out  # channels of h_0 .. h_6
        h = chans[layer_size]
        for i in range(layer_size - 1, 0, -1):
            cin = h + chans[i]
            if i > 3:
                setattr(self, f"dec_{i}", _block(cin, chans[i], "dec_dil"))
                h = chans[i]
            else:  # official: dec_3 1024->512, dec_2 768->256, dec_1 384->64 (= input width)
                cout = chans[i] if i > 1 else chans[0]
                setattr(self, f"dec_{i}", _block(cin, cout, "dec_up"))
                h = cout

    def forward(self, x, mask, state=None, fused=None, official=False):
        """``official``: the official attention over the full score volume
        (:meth:`RFRNet.forward_official`; ``state`` then holds score maps, not matrices)."""
        hs = [x]
        h = x
        for i in range(1, self.layer_size + 1):
            h = self._run(f"enc_{i}", h, fused)
            hs.append(h)
        for i in range(self.layer_size - 1, 0, -1):
            h = self._run(f"dec_{i}", torch.cat([h, hs[i]], dim=1), fused)
            if i == 3 and official:
                h, state = _attention_official(self.att, h, mask, state)
            elif i == 3:
                h, state = self.att(h, mask, state, fused)
        return h, state

    def _run(self, name, x, fused):
        seq = getattr(self, name)
        if fused is None:
            return seq(x)
        w, b = fused[name]
        conv, act = seq[0], seq[2]
        cpu = x.device.type == "cpu"
        # banded Winograd: float32 only (its transforms would round in bf16 under autocast)
        wino = cpu and x.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
        if isinstance(conv, nn.ConvTranspose2d):
            pixels = x.shape[2] * x.shape[3]
            if wino and name in fused.phases:
                m = 2 if pixels <= PHASES_WINO2_MAX_PIXELS else WINOGRAD_M
                y = deconv_phases_winograd(x, fused[f"{name}.phases{m}"], b, m)
            elif wino and name in fused.pwino:
                m = 2 if pixels <= PHASE_WINO2_MAX_PIXELS else WINOGRAD_M
                y = deconv_phase_winograd(x, fused[f"{name}.pwino{m}"], b, m)
            elif name in fused.phase:
                y = deconv_phase(x, fused[name + ".phase"], b)
            else:
                y = F.conv_transpose2d(x, w, b, conv.stride, conv.padding)
        elif wino and name in fused.wino3:
            m = 2 if x.shape[2] * x.shape[3] <= WINO2_MAX_PIXELS else WINOGRAD_M
            y = conv3x3_winograd_banded(x, fused[f"{name}.wino{m}"], b, conv.dilation[0], m)
        else:
            y = F.conv2d(x, w, b, conv.stride, conv.padding, conv.dilation)
        if isinstance(act, nn.ReLU):
            return torch.relu_(y)
        return F.leaky_relu_(y, act.negative_slope)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x, fused=None):
        if fused is None:
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
        else:
            out = torch.relu_(F.conv2d(x, *fused["tail2.conv1"]))
            out = torch.relu_(F.conv2d(out, *fused["tail2.conv2"], 1, 1))
            out = F.conv2d(out, *fused["tail2.conv3"])
        out = out + x
        return torch.relu_(out)


class _FusedWeights(dict):
    """Lazily built inference weights of an :class:`RFRNet` (eval mode).

    ``fz[name]`` -> ``(weight, bias)`` with the following BatchNorm folded in;
    ``fz[name + ".wino2"]`` / ``".wino4"`` / ``".phases2"`` / ``".phases4"`` / ``".pwino2"`` /
    ``".pwino4"`` / ``".phase"`` -> Winograd / phase forms;
    ``fz["combiner"]`` -> (W_att^T, W_feat^T, bias); ``fz[("fft", name, n)]`` -> FFT spectra.
    ``wino3`` / ``phases`` / ``pwino`` / ``phase``: the layers that use those forms."""

    def __init__(self, net: "RFRNet"):
        super().__init__()
        self.net = net
        mod = net.RFRModule
        self.bn_pairs = {"Pconv1": (net.Pconv1.weight, net.bn1, False),
                         "Pconv2": (net.Pconv2.weight, net.bn20, False),
                         "Pconv22": (net.Pconv22.weight, net.bn2, False),
                         "Tconv": (net.Tconv.weight, net.bn3, True),
                         "tail2.conv1": (net.tail2.conv1.weight, net.tail2.bn1, False),
                         "tail2.conv2": (net.tail2.conv2.weight, net.tail2.bn2, False),
                         "tail2.conv3": (net.tail2.conv3.weight, net.tail2.bn3, False)}
        self.wino3 = set()
        for i in range(1, mod.layer_size + 1):
            for name in (f"enc_{i}", f"dec_{i}"):
                seq = getattr(mod, name, None)
                if seq is None:
                    continue
                conv = seq[0]
                self.bn_pairs[name] = (conv.weight, seq[1], isinstance(conv, nn.ConvTranspose2d))
                if (not isinstance(conv, nn.ConvTranspose2d) and conv.kernel_size == (3, 3)
                        and conv.stride == (1, 1) and conv.dilation[0] == conv.padding[0]):
                    self.wino3.add(name)
        # transposed convolutions as 2x2 convolutions over their output phases, in float32 as
        # Winograd: the two deepest phase by phase, dec_1 (few outputs) as one joint product
        # (PHASES_WINO2_MAX_PIXELS); otherwise direct for the deepest two (dec_1's direct
        # phase form is slower than the transposed convolution)
        self.phases = {n for n in ("dec_3", "dec_2") if n in self.bn_pairs}
        self.pwino = {n for n in ("dec_1",) if n in self.bn_pairs}
        self.phase = {n for n in ("dec_3", "dec_2") if n in self.bn_pairs}

    def __missing__(self, key):
        with torch.no_grad():
            value = self._build(key)
        self[key] = value
        return value

    def _build(self, key):
        cl = torch.channels_last
        if isinstance(key, tuple):                      # ("fft", layer name, n)
            _tag, name, n = key
            weight = self[name][0] if name in self.bn_pairs else getattr(self.net, name).weight
            return fft_weight_spectrum(weight.detach(), n)
        if key == "combiner":
            comb = self.net.RFRModule.att.combiner
            c = comb.out_channels
            wc = comb.weight.detach()[:, :, 0, 0]
            return wc[:, :c].t().contiguous(), wc[:, c:].t().contiguous(), comb.bias.detach().clone()
        name, _, form = key.partition(".")
        if form == "" or key in self.bn_pairs:
            weight, bn, transposed = self.bn_pairs[key]
            w, b = fold_bn(weight.detach(), bn, transposed=transposed)
            return w.contiguous(memory_format=cl), b.contiguous()
        base = self[name][0]
        if form in ("wino2", "wino4"):
            return wg.weight_transform(base, int(form[-1]))
        if form in ("phases2", "phases4"):
            return phases_winograd_weights(base, int(form[-1]))
        if form in ("pwino2", "pwino4"):
            return wg.weight_transform(phase_weight(base), int(form[-1]))
        if form == "phase":
            return phase_weight(base).contiguous(memory_format=cl)
        raise KeyError(key)


class RFRNet(nn.Module):
    """RFR-Net generator (official key layout for the default arguments)."""

    def __init__(self, kernel_size: int = 7, channels: int = 64, max_channels: int = 512,
                 recurrences: int = 6, tail_channels: int = 32, tail_planes: int = 8):
        super().__init__()
        if tail_planes * Bottleneck.expansion != tail_channels:
            raise ValueError("tail_channels must be 4 * tail_planes")
        k, p = kernel_size, kernel_size // 2
        self.config = dict(kernel_size=kernel_size, channels=channels, max_channels=max_channels,
                           recurrences=recurrences, tail_channels=tail_channels,
                           tail_planes=tail_planes)
        self.recurrences = recurrences
        # Extra recurrences while part of the hole is still uncovered (None = the fixed count,
        # as the official code). The recurrent layers share their weights, so more steps reach
        # deeper: a hole deeper than the fixed count's reach otherwise keeps a core with no
        # features at all, which the tail turns into a dark flat patch.
        self.max_recurrences: Optional[int] = None
        self.Pconv1 = PartialConv2d(3, channels, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.Pconv2 = PartialConv2d(channels, channels, k, 1, p, bias=False)
        self.bn20 = nn.BatchNorm2d(channels)
        self.Pconv21 = PartialConv2d(channels, channels, k, 1, p, bias=False)
        self.Pconv22 = PartialConv2d(channels, channels, k, 1, p, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.RFRModule = RFRModule(channels, max_channels)
        self.Tconv = nn.ConvTranspose2d(channels, channels, 4, 2, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels)
        self.tail1 = PartialConv2d(3 + channels, tail_channels, 3, 1, 1, bias=False)
        self.tail2 = Bottleneck(tail_channels, tail_planes)
        self.out = nn.Conv2d(2 * tail_channels, 3, 3, 1, 1, bias=False)
        self.fast_path = True  # eval, no autograd: the fused inference path (_forward_fused)
        self._finetune = False
        self._fused = None
        self._fused_version = None

    # -- training mode helpers -----------------------------------------------------------------
    def set_finetune(self, finetune: bool = True) -> "RFRNet":
        """Official fine-tune stage: BatchNorm layers stay in eval mode during training."""
        self._finetune = bool(finetune)
        return self.train(self.training)

    def train(self, mode: bool = True, finetune: Optional[bool] = None):
        """Standard ``train``; ``finetune=True`` (the official second argument) keeps every
        BatchNorm layer in eval mode while training. Returns the module."""
        if finetune is not None:
            self._finetune = bool(finetune)
        super().train(mode)
        if mode and self._finetune:
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self

    # -- folded (eval) weights -------------------------------------------------------------------
    def _param_version(self):
        return tuple((p.data_ptr(), p._version) for p in self.state_dict().values())

    def _fused_weights(self) -> "_FusedWeights":
        """Inference weights (BN folded, transformed), built lazily and cached until a
        parameter or buffer changes."""
        ver = self._param_version()
        if self._fused is None or self._fused_version != ver:
            self._fused = _FusedWeights(self)
            self._fused_version = ver
        return self._fused

    def _apply(self, fn, *args, **kwargs):
        self._fused = None
        return super()._apply(fn, *args, **kwargs)

    # -- reach -----------------------------------------------------------------------------------
    def reach(self, recurrences: Optional[int] = None) -> int:
        """How deep into a hole (px at the input's scale, from the nearest known pixel) the
        partial-convolution mask updates reach after ``recurrences`` steps (default: the fixed
        count): Pconv1 (7x7, stride 2) and Pconv2 at half scale, then two k x k partial
        convolutions per recurrence (measured: a square hole of half-width ``reach() + 2`` keeps
        an uncovered core, ``reach()`` does not)."""
        r = self.recurrences if recurrences is None else int(recurrences)
        half = self.Pconv2.kernel_size[0] // 2
        return 2 * (2 + half + 2 * half * r) - 2

    def _more(self, i: int, m: torch.Tensor) -> bool:
        """Run recurrence ``i``? Always below the fixed count; beyond it (up to
        ``max_recurrences``) only while some hole pixel is still uncovered."""
        if i < self.recurrences:
            return True
        return bool(self.max_recurrences and i < self.max_recurrences and bool((m < 1).any()))

    # -- forward ---------------------------------------------------------------------------------
    def forward(self, in_image: torch.Tensor, mask: torch.Tensor) -> Tuple[torch.Tensor, None]:
        if mask.shape[1] == 1:
            mask = mask.expand(-1, 3, -1, -1)
        n, _, hh, ww = in_image.shape
        if hh % 16 or ww % 16:
            raise ValueError(f"RFR-Net needs sides that are multiples of 16, got {hh}x{ww}")
        inference = not self.training and not (torch.is_grad_enabled() and any(
            p.requires_grad for p in self.parameters()))
        if inference and use_fast_path(self):
            return self._forward_fused(in_image, mask), None
        return self._forward_plain(in_image, mask), None

    def _forward_plain(self, in_image, mask):
        """Autograd-friendly path (training); same arithmetic as the official module."""
        c = self.Pconv1.out_channels
        x, m = self.Pconv1(in_image, mask)
        x = F.relu(self.bn1(x))
        x, m = self.Pconv2(x, m, msum=m * c)
        x = F.relu(self.bn20(x))
        acc = x * m
        macc = m.clone()
        state = None
        i = 0
        while self._more(i, m):
            x, m = self.Pconv21(x, m, msum=m * c)
            x, m = self.Pconv22(x, m, msum=m * c)
            x = F.leaky_relu(self.bn2(x), 0.01)
            x, state = self.RFRModule(x, m, state)
            x = x * m
            acc = acc + x * m
            macc = macc + m
            i += 1
        g = i + 1
        x3 = (acc / g) / (macc / g + 1e-7)
        x4 = F.leaky_relu(self.bn3(self.Tconv(x3)), 0.01)
        m4 = F.interpolate(m, scale_factor=2)
        x5 = torch.cat([in_image, x4], dim=1)
        m5 = torch.cat([mask, m4.expand(-1, x4.shape[1], -1, -1)], dim=1)
        x5, _ = self.tail1(x5, m5, msum=mask.sum(1, keepdim=True) + m4 * x4.shape[1])
        x5 = F.leaky_relu(x5, 0.01)
        x6 = self.tail2(x5)
        return self.out(torch.cat([x5, x6], dim=1))

    @torch.no_grad()
    def forward_official(self, in_image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The official eval forward op for op: multi-channel partial convolutions whose mask
        updates convolve the full mask with all-ones kernels, and per-sample attention that
        convolves with every key, pools the ``[hw, h, w]`` score volume and takes its softmax
        over dim 1. Same output as :meth:`forward` (within float rounding) at the official
        cost: ``inpaint bench`` times it as the same-run stand-in for the official code.
        ``in_image``/``mask`` as :meth:`forward`; returns the raw ``[N, 3, H, W]`` output."""
        if mask.shape[1] == 1:
            mask = mask.expand(-1, 3, -1, -1)
        in_image, mask = in_image.contiguous(), mask.contiguous()

        def pconv(layer, x, m):
            ones = torch.ones_like(layer.weight)
            count = F.conv2d(m, ones, None, layer.stride, layer.padding)
            ratio = layer.weight[0].numel() / (count + 1e-8)
            update = torch.clamp(count, 0, 1)
            out = F.conv2d(x * m, layer.weight, None, layer.stride, layer.padding)
            return out * (ratio * update), update

        x, m = pconv(self.Pconv1, in_image, mask)
        x = F.relu(self.bn1(x))
        x, m = pconv(self.Pconv2, x, m)
        x = F.relu(self.bn20(x))
        feats, masks, state = [x], [m], None
        for _ in range(self.recurrences):
            x, m = pconv(self.Pconv21, x, m)
            x, m = pconv(self.Pconv22, x, m)
            x = F.leaky_relu(self.bn2(x), 0.01)
            x, state = self.RFRModule(x, m[:, :1], state, official=True)
            x = x * m
            feats.append(x)
            masks.append(m)
        x3 = torch.stack(feats, 2).mul(torch.stack(masks, 2)).mean(2)
        x3 = x3 / (torch.stack(masks, 2).mean(2) + 1e-7)
        x4 = F.leaky_relu(self.bn3(self.Tconv(x3)), 0.01)
        m4 = F.interpolate(m, scale_factor=2)
        x5, _ = pconv(self.tail1, torch.cat([in_image, x4], 1), torch.cat([mask, m4], 1))
        x5 = F.leaky_relu(x5, 0.01)
        x6 = self.tail2(x5)
        return self.out(torch.cat([x5, x6], dim=1))

    def _forward_fused(self, in_image, mask):
        fz = self._fused_weights()
        cl = torch.channels_last
        c = self.Pconv1.out_channels
        in_image = in_image.contiguous(memory_format=cl)
        mask = mask.contiguous(memory_format=cl)
        msum0 = mask.sum(1, keepdim=True)

        def pconv(layer, x, m, msum, key=None, lname=None):
            ratio, update = layer.mask_terms(msum)
            w, b = fz[key] if key else (layer.weight, None)
            k = layer.kernel_size[0]
            if (k >= FFT_MIN_KERNEL and layer.stride[0] == 1 and x.device.type == "cpu"
                    and x.shape[2] * x.shape[3] >= FFT_MIN_PIXELS):
                n = FFT_TILE
                y = fft_conv2d(x * m, fz[("fft", key or lname, n)], k, layer.padding[0], n)
            else:
                y = F.conv2d(x * m, w, None, layer.stride, layer.padding)
            y.mul_(ratio)
            if b is not None:
                y.add_(b.view(1, -1, 1, 1))
            return y, update

        # BN(y) = y * s + t with s folded into the conv weight: conv(x m, W s) * ratio + t
        x, m = pconv(self.Pconv1, in_image, mask, msum0, "Pconv1")
        x = torch.relu_(x)
        x, m = pconv(self.Pconv2, x, m, m * c, "Pconv2")
        x = torch.relu_(x)
        acc = x * m
        macc = m.clone()
        state = None
        i = 0
        while self._more(i, m):
            x, m = pconv(self.Pconv21, x, m, m * c, lname="Pconv21")
            x, m = pconv(self.Pconv22, x, m, m * c, "Pconv22")
            x = F.leaky_relu_(x, 0.01)
            x, state = self.RFRModule(x, m, state, fz)
            x = x * m
            acc.addcmul_(x, m)
            macc.add_(m)
            i += 1
        del state
        g = i + 1
        x3 = (acc / g) / (macc / g + 1e-7)
        w, b = fz["Tconv"]
        x4 = F.leaky_relu_(F.conv_transpose2d(x3, w, b, 2, 1), 0.01)
        m4 = F.interpolate(m, scale_factor=2)
        x5 = torch.cat([in_image * mask, x4 * m4], dim=1)
        msum = msum0 + m4 * x4.shape[1]
        ratio, _ = self.tail1.mask_terms(msum)
        x5 = F.conv2d(x5, self.tail1.weight, None, 1, 1).mul_(ratio)
        x5 = F.leaky_relu_(x5, 0.01)
        x6 = self.tail2(x5, fz)
        out = self.out(torch.cat([x5, x6], dim=1))
        return out.contiguous()


def create(**kwargs) -> RFRNet:
    """RFR-Net. Defaults = the official network; ``kernel_size=5`` gives the official
    ``RFRNet_Smaller_Hole`` variant; ``channels``, ``max_channels``, ``recurrences``,
    ``tail_channels``/``tail_planes`` select smaller (non-official) variants."""
    variant = kwargs.pop("variant", None)
    if variant in ("smaller_hole", "small_hole"):
        kwargs.setdefault("kernel_size", 5)
    elif variant not in (None, "official"):
        raise ValueError(f"unknown RFR variant {variant!r}")
    cfg = dict(OFFICIAL)
    unknown = set(kwargs) - set(cfg)
    if unknown:
        raise TypeError(f"unknown RFR options: {', '.join(sorted(unknown))}")
    cfg.update(kwargs)
    return RFRNet(**cfg)
