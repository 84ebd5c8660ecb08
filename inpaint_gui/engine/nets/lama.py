"""LaMa (Suvorov et al., WACV 2022): ``FFCResNetGenerator`` with fast Fourier convolutions.

Written from the official repository's behaviour (advimman/lama @ 786f593, big-lama config):
module names, state_dict keys and shapes are the official ones, so ``big-lama``'s generator
weights (``ckpt['state_dict']['generator.' + key]``) load with ``strict=True``.

Official quirks kept on purpose:

* FFC split: global ratio 0.75 in the residual blocks (512 ch -> 128 local + 384 global); the
  last downsampling conv already splits its output (``ratio_gout`` = 0.75).
* Spectral transform: Conv1x1 -> BN -> ReLU, then a Fourier unit (``rfftn(norm='ortho')``
  over H, W; real/imag stacked as *interleaved* channels 2c / 2c+1; Conv1x1 -> BN -> ReLU;
  ``irfftn``), then Conv1x1 on ``x + fu(x)`` (no LFU).
* All 3x3 FFC convs use ``padding_mode='reflect'`` and no bias; 7x7 convs follow a
  ``ReflectionPad2d(3)``; BatchNorm (eval: running statistics); sigmoid output.
* Input ``cat([img01 * (1 - mask), mask])``, mask 1 = hole; sides must be multiples of 8
  (otherwise the output grows, exactly as the official network does).

Inference speed: in eval mode without autograd, on CPU in float32, ``forward`` runs a fused
path that gives the same numbers (float rounding aside, <= 3e-6 on the conformance fixtures):
BatchNorm folded into the convolutions (:mod:`.kernels.fold`), one reflect pad per FFC instead of
three, the residual blocks' 3x3 convolutions computed as Winograd F(4x4, 3x3) batched matmuls
(:mod:`.kernels.winograd`, 4x fewer multiplies) on channels-last data, the Fourier unit's 1x1
convs as matmuls, channels-last transposed convs and the 3-channel 7x7 output conv recast as a
21-channel 1x7 conv plus row sums (:mod:`.kernels.rows`). ``net.fast_path = False`` (or
``INPAINT_FAST_KERNELS=0``) runs the module-by-module path; ``net.winograd_m = 2`` uses the
smaller F(2x2, 3x3) tiles. The fused weights are cached on first use (about 600 MB for
big-lama with F(4x4, 3x3)); ``net.release_fast_cache()`` frees them.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .kernels import use_fast_path
from .kernels import winograd as wg
from .kernels.fold import bn_affine
from .kernels.rows import conv_by_rows, rows_weight

__all__ = ["FourierUnit", "SpectralTransform", "FFC", "FFC_BN_ACT", "FFCResnetBlock",
           "ConcatTupleLayer", "FFCResNetGenerator", "create", "BIG_LAMA"]

# Resolved generator kwargs of configs/training/big-lama.yaml.
BIG_LAMA = dict(input_nc=4, output_nc=3, ngf=64, n_downsampling=3, n_blocks=18,
                max_features=1024, ratio_g=0.75)


# --------------------------------------------------------------------------------------------
# Official module structure (reference path, also used for training)
# --------------------------------------------------------------------------------------------
class FourierUnit(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, groups: int = 1):
        super().__init__()
        self.groups = groups
        self.conv_layer = nn.Conv2d(in_channels * 2, out_channels * 2, kernel_size=1, stride=1,
                                    padding=0, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels * 2)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        b = x.shape[0]
        h, w = x.shape[-2:]
        in_dtype = x.dtype
        if in_dtype in (torch.float16, torch.bfloat16):  # half FFTs need power-of-2 sizes
            x = x.float()
        ffted = torch.fft.rfftn(x, dim=(-2, -1), norm="ortho")
        ffted = torch.stack((ffted.real, ffted.imag), dim=-1)          # b c h wf 2
        ffted = ffted.permute(0, 1, 4, 2, 3).contiguous()                # b c 2 h wf
        ffted = ffted.view(b, -1, *ffted.shape[3:]).to(in_dtype)         # channel 2c = Re, 2c+1 = Im
        ffted = self.relu(self.bn(self.conv_layer(ffted)))
        ffted = ffted.float().view(b, -1, 2, *ffted.shape[2:]).permute(0, 1, 3, 4, 2).contiguous()
        ffted = torch.complex(ffted[..., 0], ffted[..., 1])
        out = torch.fft.irfftn(ffted, s=(h, w), dim=(-2, -1), norm="ortho")
        return out.to(in_dtype)


class SpectralTransform(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, groups: int = 1,
                 enable_lfu: bool = False):
        super().__init__()
        if enable_lfu:
            raise NotImplementedError("LFU is not used by big-lama")
        self.enable_lfu = False
        self.downsample = nn.AvgPool2d(kernel_size=(2, 2), stride=2) if stride == 2 else nn.Identity()
        self.stride = stride
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, out_channels // 2, kernel_size=1, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels // 2),
            nn.ReLU(inplace=True))
        self.fu = FourierUnit(out_channels // 2, out_channels // 2, groups)
        self.conv2 = nn.Conv2d(out_channels // 2, out_channels, kernel_size=1, groups=groups, bias=False)

    def forward(self, x):
        x = self.downsample(x)
        x = self.conv1(x)
        output = self.fu(x)
        return self.conv2(x + output)


class FFC(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, ratio_gin: float,
                 ratio_gout: float, stride: int = 1, padding: int = 0, dilation: int = 1,
                 groups: int = 1, bias: bool = False, enable_lfu: bool = False,
                 padding_type: str = "reflect"):
        super().__init__()
        assert stride in (1, 2), "Stride should be 1 or 2."
        self.stride = stride
        in_cg = int(in_channels * ratio_gin)
        in_cl = in_channels - in_cg
        out_cg = int(out_channels * ratio_gout)
        out_cl = out_channels - out_cg
        self.ratio_gin = ratio_gin
        self.ratio_gout = ratio_gout
        self.global_in_num = in_cg

        def conv(cin, cout):
            if cin == 0 or cout == 0:
                return nn.Identity()
            return nn.Conv2d(cin, cout, kernel_size, stride, padding, dilation, groups, bias,
                             padding_mode=padding_type)

        self.convl2l = conv(in_cl, out_cl)
        self.convl2g = conv(in_cl, out_cg)
        self.convg2l = conv(in_cg, out_cl)
        self.convg2g = (nn.Identity() if in_cg == 0 or out_cg == 0 else
                        SpectralTransform(in_cg, out_cg, stride, 1 if groups == 1 else groups // 2,
                                          enable_lfu))

    def forward(self, x):
        x_l, x_g = x if type(x) is tuple else (x, 0)
        out_xl, out_xg = 0, 0
        if self.ratio_gout != 1:
            out_xl = self.convl2l(x_l) + self.convg2l(x_g)
        if self.ratio_gout != 0:
            out_xg = self.convl2g(x_l) + self.convg2g(x_g)
        return out_xl, out_xg


class FFC_BN_ACT(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, ratio_gin: float = 0,
                 ratio_gout: float = 0, stride: int = 1, padding: int = 0, dilation: int = 1,
                 groups: int = 1, bias: bool = False, norm_layer=nn.BatchNorm2d,
                 activation_layer=nn.ReLU, padding_type: str = "reflect", enable_lfu: bool = False):
        super().__init__()
        self.ffc = FFC(in_channels, out_channels, kernel_size, ratio_gin, ratio_gout, stride,
                       padding, dilation, groups, bias, enable_lfu, padding_type=padding_type)
        out_cg = int(out_channels * ratio_gout)
        out_cl = out_channels - out_cg
        self.bn_l = nn.Identity() if ratio_gout == 1 else norm_layer(out_cl)
        self.bn_g = nn.Identity() if ratio_gout == 0 else norm_layer(out_cg)
        self.act_l = nn.Identity() if ratio_gout == 1 else activation_layer(inplace=True)
        self.act_g = nn.Identity() if ratio_gout == 0 else activation_layer(inplace=True)

    def forward(self, x):
        x_l, x_g = self.ffc(x)
        x_l = self.act_l(self.bn_l(x_l))
        x_g = self.act_g(self.bn_g(x_g))
        return x_l, x_g


class FFCResnetBlock(nn.Module):
    def __init__(self, dim: int, padding_type: str = "reflect", norm_layer=nn.BatchNorm2d,
                 activation_layer=nn.ReLU, dilation: int = 1, ratio_gin: float = 0.75,
                 ratio_gout: float = 0.75, enable_lfu: bool = False):
        super().__init__()
        kw = dict(kernel_size=3, padding=dilation, dilation=dilation, norm_layer=norm_layer,
                  activation_layer=activation_layer, padding_type=padding_type,
                  ratio_gin=ratio_gin, ratio_gout=ratio_gout, enable_lfu=enable_lfu)
        self.conv1 = FFC_BN_ACT(dim, dim, **kw)
        self.conv2 = FFC_BN_ACT(dim, dim, **kw)

    def forward(self, x):
        x_l, x_g = x if type(x) is tuple else (x, 0)
        id_l, id_g = x_l, x_g
        x_l, x_g = self.conv1((x_l, x_g))
        x_l, x_g = self.conv2((x_l, x_g))
        return id_l + x_l, id_g + x_g


class ConcatTupleLayer(nn.Module):
    def forward(self, x):
        assert isinstance(x, tuple)
        x_l, x_g = x
        assert torch.is_tensor(x_l) or torch.is_tensor(x_g)
        if not torch.is_tensor(x_g):
            return x_l
        return torch.cat(x, dim=1)


class FFCResNetGenerator(nn.Module):
    """``model`` = official ``nn.Sequential`` (indices are the state_dict prefixes)."""

    def __init__(self, input_nc: int = 4, output_nc: int = 3, ngf: int = 64, n_downsampling: int = 3,
                 n_blocks: int = 18, max_features: int = 1024, ratio_g: float = 0.75,
                 add_out_act: bool = True):
        super().__init__()
        assert n_blocks >= 0
        self.n_downsampling = n_downsampling
        model = [nn.ReflectionPad2d(3),
                 FFC_BN_ACT(input_nc, ngf, kernel_size=7, padding=0, ratio_gin=0, ratio_gout=0)]
        for i in range(n_downsampling):
            mult = 2 ** i
            gout = ratio_g if i == n_downsampling - 1 else 0
            model.append(FFC_BN_ACT(min(max_features, ngf * mult), min(max_features, ngf * mult * 2),
                                    kernel_size=3, stride=2, padding=1, ratio_gin=0, ratio_gout=gout))
        mult = 2 ** n_downsampling
        feats = min(max_features, ngf * mult)
        for _ in range(n_blocks):
            model.append(FFCResnetBlock(feats, ratio_gin=ratio_g, ratio_gout=ratio_g))
        model.append(ConcatTupleLayer())
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            model += [nn.ConvTranspose2d(min(max_features, ngf * mult),
                                         min(max_features, int(ngf * mult / 2)),
                                         kernel_size=3, stride=2, padding=1, output_padding=1),
                      nn.BatchNorm2d(min(max_features, int(ngf * mult / 2))),
                      nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0)]
        if add_out_act:
            model.append(nn.Sigmoid())
        self.model = nn.Sequential(*model)
        self.n_blocks = n_blocks
        self.add_out_act = add_out_act
        self.fast_path = True     # the fused CPU inference path where it applies
        self.winograd_m = 4       # Winograd tile of the fused path: 4 (default) or 2
        self._fused = None        # cache: (key, fused parameters)

    # ----------------------------------------------------------------------------------------
    def forward(self, input):
        if self._use_fast(input):
            return _FastLaMa.run(self, input)
        if input.device.type == "cpu" and torch.is_autocast_enabled("cpu") and not self.training:
            # bf16 inference: channels-last spares oneDNN a layout reorder around every
            # convolution (1.5 s -> 1.0-1.2 s at 512^2 on an AMX CPU)
            return self.model(input.contiguous(memory_format=torch.channels_last)).contiguous()
        return self.model(input)

    def _use_fast(self, x) -> bool:
        if not use_fast_path(self) or self.training or x.device.type != "cpu" \
                or x.dtype != torch.float32:
            return False
        if torch.is_autocast_enabled("cpu"):
            return False
        if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in self.parameters())):
            return False
        if x.dim() != 4 or self.n_blocks == 0:
            return False
        h, w = x.shape[-2:]
        m = 2 ** self.n_downsampling
        return h % m == 0 and w % m == 0 and h // m >= 2 and w // m >= 2

    def prepare_inference(self, x: torch.Tensor) -> None:
        """Build now what the first inference forward on inputs like ``x`` would build."""
        if self._use_fast(x):
            _FastLaMa.params(self)

    def release_fast_cache(self) -> None:
        """Drop the fused inference weights (rebuilt on the next fast forward)."""
        self._fused = None


# --------------------------------------------------------------------------------------------
# Fused inference path (CPU, fp32)
# --------------------------------------------------------------------------------------------
def _bn_affine(bn: nn.BatchNorm2d):
    return bn_affine(bn, torch.float64)


def _nchw(x_nhwc: torch.Tensor) -> torch.Tensor:
    return x_nhwc.permute(0, 3, 1, 2)          # a channels_last NCHW view


def _nhwc(x_nchw_cl: torch.Tensor) -> torch.Tensor:
    y = x_nchw_cl.permute(0, 2, 3, 1)
    return y if y.is_contiguous() else y.contiguous()


class _FastLaMa:
    """Fused weights and the channels-last forward that uses them."""

    @staticmethod
    def _key(net):
        return (net.winograd_m,) + tuple((t.data_ptr(), t._version, t.dtype) for t in
                                         list(net.parameters()) + list(net.buffers()))

    @staticmethod
    def params(net):
        key = _FastLaMa._key(net)
        if net._fused is not None and net._fused[0] == key:
            return net._fused[1]
        net._fused = None
        with torch.no_grad():
            p = _FastLaMa._build(net)
        net._fused = (key, p)
        return p

    @staticmethod
    def _build(net):
        seq = list(net.model)
        nd = net.n_downsampling
        m = net.winograd_m
        p = {"m": m}
        p["bb"], p["aa"] = wg.data_transforms(m)
        stem = []
        for blk in seq[1:2 + nd]:   # model[1] (7x7) and the stride-2 downsampling convs
            ffc = blk.ffc
            s_l, t_l = _bn_affine(blk.bn_l)
            w = ffc.convl2l.weight.double() * s_l.view(-1, 1, 1, 1)
            b = t_l
            if isinstance(ffc.convl2g, nn.Conv2d):   # last one already splits into l and g
                s_g, t_g = _bn_affine(blk.bn_g)
                w = torch.cat([w, ffc.convl2g.weight.double() * s_g.view(-1, 1, 1, 1)], 0)
                b = torch.cat([b, t_g])
            stem.append((w.float().contiguous(memory_format=torch.channels_last), b.float(),
                         ffc.convl2l.stride, ffc.convl2l.padding[0]))
        p["stem"] = stem
        blocks = []
        for blk in seq[2 + nd:2 + nd + net.n_blocks]:
            layers = []
            for fb in (blk.conv1, blk.conv2):
                ffc = fb.ffc
                s_l, t_l = _bn_affine(fb.bn_l)
                s_g, t_g = _bn_affine(fb.bn_g)
                w_l = torch.cat([ffc.convl2l.weight.double(), ffc.convg2l.weight.double()], 1)
                w_l = w_l * s_l.view(-1, 1, 1, 1)                           # [cl, C, 3, 3]
                w_g = ffc.convl2g.weight.double() * s_g.view(-1, 1, 1, 1)  # [cg, cl, 3, 3]
                st = ffc.convg2g
                s1, t1 = _bn_affine(st.conv1[1])
                sf, tf = _bn_affine(st.fu.bn)
                layers.append(dict(
                    cl=ffc.convl2l.weight.shape[1],
                    u_l=wg.weight_transform(w_l, m), u_g=wg.weight_transform(w_g, m),
                    b_l=t_l.float(), b_g=t_g.float(),
                    w1=(st.conv1[0].weight.double()[:, :, 0, 0] * s1.view(-1, 1)).t().float().contiguous(),
                    b1=t1.float(),
                    wf=(st.fu.conv_layer.weight.double()[:, :, 0, 0] * sf.view(-1, 1)).float().contiguous(),
                    bf=tf.float().view(-1, 1),
                    w2=(st.conv2.weight.double()[:, :, 0, 0] * s_g.view(-1, 1)).t().float().contiguous()))
            blocks.append(layers)
        p["blocks"] = blocks
        ups = []
        i = 3 + nd + net.n_blocks
        for _ in range(nd):
            ct, bn = seq[i], seq[i + 1]
            s, t = _bn_affine(bn)
            w = ct.weight.double() * s.view(1, -1, 1, 1)                     # [in, out, k, k]
            b = t + s * ct.bias.double()
            ups.append((w.float(), b.float(), ct.stride, ct.padding, ct.output_padding))
            i += 3
        p["ups"] = ups
        last = seq[i + 1]                       # 7x7 conv to RGB after ReflectionPad2d(3)
        w_rows, co, kh = rows_weight(last.weight)
        p["out"] = (w_rows, last.bias.detach().clone(), co, kh)
        return p

    @staticmethod
    def _winograd(x, p, lp, h, w):
        """Both 3x3 reflect-padded convs of a residual FFC, BN folded, into [B, H, W, C]:
        one reflect pad, one input transform per band shared by the two products."""
        m = p["m"]
        b, _, _, c = x.shape
        cl = lp["cl"]
        xp = wg.reflect_pad(x, 1, *wg.conv3x3_extent(h, w, 1, m))
        _, _, oh, ow = wg.conv3x3_plan(h, w, 1, m)
        y = x.new_empty((b, oh, ow, c))
        wg.conv3x3_multi(xp, 0, h, w, 1, p["bb"], p["aa"], m, [
            (lp["u_l"], slice(None), [(y[..., :cl], slice(None), lp["b_l"])]),
            (lp["u_g"], slice(0, cl), [(y[..., cl:], slice(None), lp["b_g"])])])
        if oh != h or ow != w:
            y = y[:, :h, :w].contiguous()
        return y

    @staticmethod
    def _ffc_layer(x, p, lp, h, w):
        """One fused FFC_BN_ACT of a residual block. x: [B, H, W, C] (contiguous)."""
        b, _, _, c = x.shape
        cl = lp["cl"]
        y = _FastLaMa._winograd(x, p, lp, h, w)
        y2 = y.view(-1, c)
        # spectral transform of the global part: conv1+BN+ReLU, Fourier unit, conv2 (BN_g folded)
        z = torch.addmm(lp["b1"], x.view(-1, c)[:, cl:], lp["w1"]).relu_()      # [N, cz]
        cz = z.shape[-1]
        zc = z.view(b, h * w, cz).transpose(1, 2).reshape(b, cz, h, w)         # NCHW for the FFT
        f = torch.fft.rfftn(zc, dim=(-2, -1), norm="ortho")                     # [B, cz, H, Wf]
        wf_ = f.shape[-1]
        fr = torch.view_as_real(f).permute(0, 1, 4, 2, 3).reshape(b, 2 * cz, h * wf_)  # 2c+ri
        fr = torch.matmul(lp["wf"], fr).add_(lp["bf"]).relu_()                  # [B, 2cz, H*Wf]
        fc = torch.view_as_complex(fr.view(b, cz, 2, h, wf_).permute(0, 1, 3, 4, 2).contiguous())
        zz = torch.fft.irfftn(fc, s=(h, w), dim=(-2, -1), norm="ortho")        # [B, cz, H, W]
        zz = zz.view(b, cz, h * w).transpose(1, 2).reshape(-1, cz).add_(z)
        y2[:, cl:].addmm_(zz, lp["w2"])
        return y.relu_()

    @staticmethod
    def run(net, x):
        p = _FastLaMa.params(net)
        x = x.permute(0, 2, 3, 1).contiguous()                               # NHWC
        x = wg.reflect_pad(x, 3)
        for w, bias, stride, pad in p["stem"]:
            if pad:
                x = wg.reflect_pad(x, pad)
            x = _nhwc(F.conv2d(_nchw(x), w, bias, stride).relu_())
        _, h, wd, c = x.shape
        for layers in p["blocks"]:
            y = _FastLaMa._ffc_layer(x, p, layers[0], h, wd)
            y = _FastLaMa._ffc_layer(y, p, layers[1], h, wd)
            x = y.add_(x)
        x = _nchw(x)
        for w, bias, stride, pad, opad in p["ups"]:
            x = F.conv_transpose2d(x, w, bias, stride, pad, opad).relu_()
        w_rows, bias, co, kh = p["out"]
        out = conv_by_rows(wg.reflect_pad(_nhwc(x), kh // 2), w_rows, bias, co, kh)
        if net.add_out_act:
            out = torch.sigmoid_(out)
        return out.permute(0, 3, 1, 2).contiguous()


def create(**kwargs) -> FFCResNetGenerator:
    """big-lama by default; kwargs override (e.g. ``n_blocks=9`` for lama-fourier)."""
    cfg = dict(BIG_LAMA)
    cfg.update(kwargs)
    return FFCResNetGenerator(**cfg)
