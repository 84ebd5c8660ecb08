"""Training losses of RFR-Net, AOT-GAN and SRN, as their papers / official code define them.

Sources (see /work/shared/specs/SPEC_RFR_AOT.md sections 1d, 2d and SPEC_SRN_LAMA_PENNET.md 3.E):

RFR (``model.py:get_g_loss``), M = mask with **1 = known**, ``out`` raw output, ``comp``
composite, all in [0, 1]::

    0.1 TV(comp*(1-M)) + 120 (Style(gt,out) + Style(gt,comp)) + 0.05 (Perc(gt,out) + Perc(gt,comp))
    + 1 mean(|gt-out| M) + 6 mean(|gt-out| (1-M))

  VGG16 pool1..pool3 features, input [0,1] without ImageNet normalisation.

AOT-GAN (``src/loss``), tensors in [-1, 1], ``pred`` (not the composite) vs the image::

    1 L1 + 250 Style + 0.1 Perceptual + 0.01 SM-PatchGAN(G)

  VGG19 relu1_1..relu5_1 (perceptual), relu2_2, relu3_4, relu4_4, relu5_2 (style, Gram /(C H W)).
  SM-PatchGAN: D targets are the Gaussian-softened (71x71, sigma 10) mask.

SRN (``train.py`` / ``net/network.py``), [-1, 1]::

    pretrain:  4.2 l1 + 1.2 ae     (l1 = 1.2 mean(|gt-pred| W),  ae = 1.2 mean(|gt-pred| (1-M)) / mean(1-M))
    fine-tune: + 1e-3 (g_global + g_context) + 0.05 ID-MRF,  D: WGAN-GP (lambda 10), 5 D steps per G step

  W = the relative spatial variant weight (64x64 "Gaussian" with sigma 1/40, 9 iterations).

Without ImageNet VGG weights the VGG-based terms (perceptual, style, ID-MRF) are replaced by
:class:`SubstituteLoss` (multi-scale L1 + (1 - SSIM) + image-gradient L1); the run metadata says
which terms were active.
"""
from __future__ import annotations

import math
from typing import Dict, Iterable, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .metrics import ssim_torch

# ----------------------------------------------------------------------------------------------
# elementary terms


def masked_l1(a: torch.Tensor, b: torch.Tensor, weight=None) -> torch.Tensor:
    """mean(|a - b| * weight) over all elements (RFR / SRN style: not divided by the mask area)."""
    d = (a - b).abs()
    if weight is not None:
        d = d * weight
    return d.mean()


def log_mse_loss(pred: torch.Tensor, target: torch.Tensor, region: torch.Tensor,
                 eps: float = 1e-4) -> torch.Tensor:
    """Mean over the batch of ln(MSE_i + eps), MSE_i over ``region`` of sample i.

    ``pred``/``target``: (N,C,H,W) in [-1, 1]; ``region``: (N,1,H,W), 1 = counted (the hole).
    A mean of per-photo PSNRs (10 log10 1/MSE) is what the goals measure: this term's gradient
    on a photo is its MSE gradient divided by (MSE + eps), so a photo already close to right,
    where each grey level of error costs many dB, pulls harder than a busy one. L1 pushes every
    pixel alike and MSE by its absolute error, which ranks photos the other way round from the
    metric. ``eps`` (1e-4: about 1.3 grey levels RMS) bounds the weight of a near-perfect fill."""
    d2 = (pred.float() - target.float()) ** 2 * region
    n = region.sum(dim=(1, 2, 3)).clamp_min(1.0) * pred.shape[1]
    mse = d2.sum(dim=(1, 2, 3)) / n
    return torch.log(mse + eps).mean()


def gram_matrix(f: torch.Tensor) -> torch.Tensor:
    """(N,C,H,W) -> (N,C,C) Gram matrix divided by C*H*W."""
    n, c, h, w = f.shape
    x = f.reshape(n, c, h * w)
    return torch.bmm(x, x.transpose(1, 2)) / (c * h * w)


def style_loss(feats_a: Sequence[torch.Tensor], feats_b: Sequence[torch.Tensor]) -> torch.Tensor:
    """Sum over layers of mean |Gram(a) - Gram(b)| (both RFR and AOT-GAN use this form)."""
    total = 0.0
    for a, b in zip(feats_a, feats_b):
        total = total + (gram_matrix(a.float()) - gram_matrix(b.float())).abs().mean()
    return total


def perceptual_loss(feats_a: Sequence[torch.Tensor], feats_b: Sequence[torch.Tensor],
                    weights: Optional[Sequence[float]] = None) -> torch.Tensor:
    total = 0.0
    for i, (a, b) in enumerate(zip(feats_a, feats_b)):
        w = 1.0 if weights is None else weights[i]
        total = total + w * (a - b).abs().mean()
    return total


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    """RFR's total variation: mean |dy| + mean |dx|."""
    return (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().mean() + (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean()


# ----------------------------------------------------------------------------------------------
# substitute for the VGG terms (no ImageNet weights available)

def image_gradients(x: torch.Tensor):
    return x[:, :, 1:, :] - x[:, :, :-1, :], x[:, :, :, 1:] - x[:, :, :, :-1]


class SubstituteLoss(nn.Module):
    """Stand-in for perceptual/style/ID-MRF terms when no VGG weights are given.

    ``S(a, b) = sum_{s=0..scales-1} mean|down^s a - down^s b| + w_ssim (1 - SSIM(a, b))
    + w_grad (mean|d_y a - d_y b| + mean|d_x a - d_x b|)``, inputs in [0, 1]; ``down`` is 2x2
    average pooling. Structure (SSIM), edges (gradients) and low frequencies (coarse L1) are what
    the VGG terms mostly buy in inpainting; texture statistics (style) have no substitute.
    """

    def __init__(self, scales: int = 3, w_ssim: float = 1.0, w_grad: float = 1.0):
        super().__init__()
        self.scales = scales
        self.w_ssim = w_ssim
        self.w_grad = w_grad

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a = a.float()
        b = b.float()
        total = 0.0
        x, y = a, b
        for s in range(self.scales):
            if s:
                x = F.avg_pool2d(x, 2)
                y = F.avg_pool2d(y, 2)
            total = total + (x - y).abs().mean()
        if self.w_ssim and min(a.shape[-2:]) >= 11:
            total = total + self.w_ssim * (1.0 - ssim_torch(a, b))
        if self.w_grad:
            ady, adx = image_gradients(a)
            bdy, bdx = image_gradients(b)
            total = total + self.w_grad * ((ady - bdy).abs().mean() + (adx - bdx).abs().mean())
        return total


class RandomTextureLoss(nn.Module):
    """Texture statistics inside the hole without pretrained weights.

    Gram matrices of a fixed random ReLU conv net (He-initialised from ``seed`` with its own
    generator, so every machine builds the same net; 3x3 convs, 2x2 average pooling between
    stages, receptive fields 3 to ~40 px), taken over the hole only (each stage's features
    weighted by the hole mask average-pooled to its size). Random-weight conv nets carry enough
    texture statistics for Gram-based synthesis (Ustyuzhaninov et al., ICLR 2017; He et al.,
    2016), so this stands in for the ImageNet VGG style term that gives AOT-GAN its texture.

    ``pred``/``target``: (N,3,H,W) in [-1, 1]; ``hole``: (N,1,H,W), 1 = generated. Returns the
    batch mean over stages of mean|Gram(pred) - Gram(target)| / mean|Gram(target)| (relative,
    so each stage counts alike and the weight does not depend on image contrast). Unlike L1 it
    is indifferent to where a texture element sits and penalises blur: a shifted copy of a
    texture scores near 0, a blurred copy does not.
    """

    def __init__(self, channels: Sequence[int] = (16, 32, 64, 96), seed: int = 20261207):
        super().__init__()
        gen = torch.Generator().manual_seed(int(seed))
        self.seed = int(seed)
        self.channels = tuple(int(c) for c in channels)
        cin = 3
        for i, c in enumerate(self.channels):
            w = torch.randn(c, cin, 3, 3, generator=gen) * math.sqrt(2.0 / (cin * 9))
            self.register_buffer(f"w{i}", w, persistent=False)
            cin = c

    def describe(self) -> str:
        return f"random_texture_gram(hole, {'-'.join(map(str, self.channels))} ch, seed {self.seed})"

    def _grams(self, x: torch.Tensor, hole: torch.Tensor):
        out = []
        m = hole
        for i in range(len(self.channels)):
            if i:
                x = F.avg_pool2d(x, 2)
                m = F.avg_pool2d(m, 2)
            x = F.relu(F.conv2d(x, getattr(self, f"w{i}").to(x.dtype), padding=1))
            n, c, h, w = x.shape
            f = x.reshape(n, c, h * w)
            mw = m.reshape(n, 1, h * w).to(x.dtype)
            g = torch.bmm(f * mw, f.transpose(1, 2)) / (c * mw.sum(-1, keepdim=True).clamp_min(1.0))
            out.append(g)
        return out

    def forward(self, pred: torch.Tensor, target: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        hole = hole.float()
        gp = self._grams(pred.float(), hole)
        with torch.no_grad():
            gt = self._grams(target.float(), hole)
        total = 0.0
        for a, b in zip(gp, gt):
            scale = b.abs().mean(dim=(1, 2)).clamp_min(1e-8)
            total = total + ((a - b).abs().mean(dim=(1, 2)) / scale).mean()
        return total / len(gp)


# ----------------------------------------------------------------------------------------------
# RFR

RFR_WEIGHTS = dict(tv=0.1, style=120.0, perceptual=0.05, valid=1.0, hole=6.0, substitute=0.5)
RFR_VGG_LAYERS = ("pool1", "pool2", "pool3")


class RFRLoss(nn.Module):
    """RFR's generator loss. ``vgg``: a VGGFeatures (VGG16 preferred; used without ImageNet
    normalisation as the official code does) or None for the substitute."""

    def __init__(self, vgg=None, weights: Optional[dict] = None):
        super().__init__()
        self.w = dict(RFR_WEIGHTS, **(weights or {}))
        self.vgg = vgg
        self.substitute = SubstituteLoss() if vgg is None else None

    def active_terms(self) -> Dict[str, float]:
        t = {"valid_l1": self.w["valid"], "hole_l1": self.w["hole"], "tv": self.w["tv"]}
        if self.vgg is not None:
            t[f"style_{self.vgg.kind}_{'+'.join(RFR_VGG_LAYERS)}"] = self.w["style"]
            t[f"perceptual_{self.vgg.kind}_{'+'.join(RFR_VGG_LAYERS)}"] = self.w["perceptual"]
        else:
            t["substitute(ms_l1+ssim+grad) on out and comp"] = self.w["substitute"]
        return t

    def forward(self, out: torch.Tensor, gt: torch.Tensor, known: torch.Tensor):
        """out, gt: (N,3,H,W) in [0,1]; known: (N,1|3,H,W), 1 = known. Returns (total, parts)."""
        out = out.float()
        comp = out * (1 - known) + gt * known
        parts = {
            "valid": masked_l1(gt, out, known),
            "hole": masked_l1(gt, out, 1 - known),
            "tv": tv_loss(comp * (1 - known)),
        }
        total = self.w["valid"] * parts["valid"] + self.w["hole"] * parts["hole"] + self.w["tv"] * parts["tv"]
        if self.vgg is not None:
            f_gt = self.vgg(gt, RFR_VGG_LAYERS)
            f_out = self.vgg(out, RFR_VGG_LAYERS)
            f_comp = self.vgg(comp, RFR_VGG_LAYERS)
            g = [f_gt[k] for k in RFR_VGG_LAYERS]
            o = [f_out[k] for k in RFR_VGG_LAYERS]
            c = [f_comp[k] for k in RFR_VGG_LAYERS]
            parts["style"] = style_loss(g, o) + style_loss(g, c)
            parts["perceptual"] = perceptual_loss(g, o) + perceptual_loss(g, c)
            total = total + self.w["style"] * parts["style"] + self.w["perceptual"] * parts["perceptual"]
        else:
            parts["substitute"] = self.substitute(out, gt) + self.substitute(comp, gt)
            total = total + self.w["substitute"] * parts["substitute"]
        return total, parts


# ----------------------------------------------------------------------------------------------
# AOT-GAN

# texture: RandomTextureLoss (ours, not official; 0 = off, phases switch it on)
AOT_WEIGHTS = dict(l1=1.0, style=250.0, perceptual=0.1, adv=0.01, substitute=1.0, texture=0.0, psnr=0.0)
AOT_PERC_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
AOT_STYLE_LAYERS = ("relu2_2", "relu3_4", "relu4_4", "relu5_2")


def gaussian_kernel1d(ksize: int, sigma: float) -> torch.Tensor:
    """Kornia-style 1-D Gaussian (centre at ksize // 2), normalised to sum 1."""
    x = torch.arange(ksize, dtype=torch.float64) - ksize // 2
    g = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return (g / g.sum()).float()


def gaussian_blur(x: torch.Tensor, ksize: int = 71, sigma: float = 10.0) -> torch.Tensor:
    """Depthwise Gaussian blur with zero padding (AOT-GAN's ``gaussian_blur``, separable)."""
    c = x.shape[1]
    g = gaussian_kernel1d(ksize, sigma).to(x.device, x.dtype)
    p = (ksize - 1) // 2
    y = F.conv2d(x, g.view(1, 1, ksize, 1).repeat(c, 1, 1, 1), padding=(p, 0), groups=c)
    return F.conv2d(y, g.view(1, 1, 1, ksize).repeat(c, 1, 1, 1), padding=(0, p), groups=c)


def smgan_labels(hole: torch.Tensor, ksize: int = 71, sigma: float = 10.0, size=None) -> torch.Tensor:
    """SM-PatchGAN soft labels: the Gaussian-softened hole mask (1 = generated).

    ``size``: (h, w) of the discriminator's patch map to downsample to (bilinear, as the paper
    describes); None keeps the mask resolution (the official code upsamples D's output instead).
    """
    lab = gaussian_blur(hole.float(), ksize, sigma)
    if size is not None and tuple(size) != tuple(lab.shape[-2:]):
        lab = F.interpolate(lab, size=size, mode="bilinear", align_corners=True)
    return lab


class SMGANLoss:
    """Soft mask-guided PatchGAN loss (LSGAN form).

    convention "paper" (default; AOT-GAN paper eqs. 5-6): D(real) -> 1, D(composite) ->
    1 - blur(mask) (known ~1, hole ~0); G: mean((D(comp) - 1)^2 * m) / mean(m).
    convention "official" (released ``src/loss/loss.py``): D(real) -> 0, D(composite) ->
    blur(mask), G: MSE(D(comp), 1) unweighted (the mask weighting cancels after nn.MSELoss);
    note that there G's target equals D's *fake* label (PR #11 of the official repo).
    D's patch map is upsampled (bilinear, align_corners=True) to the mask size in both.
    """

    def __init__(self, ksize: int = 71, sigma: float = 10.0, convention: str = "paper"):
        if convention not in ("paper", "official"):
            raise ValueError(convention)
        self.ksize, self.sigma, self.convention = ksize, sigma, convention

    def _up(self, d, hole):
        if d.shape[-2:] != hole.shape[-2:]:
            d = F.interpolate(d, size=hole.shape[-2:], mode="bilinear", align_corners=True)
        return d

    def d_loss(self, d_fake: torch.Tensor, d_real: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        d_fake = self._up(d_fake.float(), hole)
        d_real = self._up(d_real.float(), hole)
        soft = smgan_labels(hole, self.ksize, self.sigma).detach()
        if self.convention == "paper":
            return F.mse_loss(d_fake, 1.0 - soft) + F.mse_loss(d_real, torch.ones_like(d_real))
        return F.mse_loss(d_fake, soft) + F.mse_loss(d_real, torch.zeros_like(d_real))

    def g_loss(self, g_fake: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        g_fake = self._up(g_fake.float(), hole)
        if self.convention == "paper":
            m = hole.float()
            return (((g_fake - 1.0) ** 2) * m).mean() / m.mean().clamp_min(1e-8)
        return F.mse_loss(g_fake, torch.ones_like(g_fake))


class AOTLoss(nn.Module):
    """AOT-GAN's reconstruction loss (``1*L1 + 250*Style + 0.1*Perceptual``) on [-1,1] tensors.
    ``vgg``: VGGFeatures (VGG19 preferred, ImageNet-normalised input) or None (substitute).
    ``weights["texture"]`` > 0 adds :class:`RandomTextureLoss` on the composite, ``weights["psnr"]``
    > 0 adds :func:`log_mse_loss` over the hole."""

    def __init__(self, vgg=None, weights: Optional[dict] = None):
        super().__init__()
        self.w = dict(AOT_WEIGHTS, **(weights or {}))
        self.vgg = vgg
        self.substitute = SubstituteLoss() if vgg is None else None
        self.texture = RandomTextureLoss() if self.w.get("texture") else None
        if vgg is not None:
            from .vgg import pick_layers
            self.perc_layers = pick_layers(vgg.kind, AOT_PERC_LAYERS)
            self.style_layers = pick_layers(vgg.kind, AOT_STYLE_LAYERS)

    def active_terms(self) -> Dict[str, float]:
        t = {"l1": self.w["l1"]}
        if self.vgg is not None:
            t[f"style_{self.vgg.kind}_{'+'.join(self.style_layers)}"] = self.w["style"]
            t[f"perceptual_{self.vgg.kind}_{'+'.join(self.perc_layers)}"] = self.w["perceptual"]
        else:
            t["substitute(ms_l1+ssim+grad)"] = self.w["substitute"]
        if self.texture is not None:
            t[self.texture.describe()] = self.w["texture"]
        if self.w["psnr"]:
            t["log_mse_hole (per-photo PSNR)"] = self.w["psnr"]
        return t

    def forward(self, pred: torch.Tensor, img: torch.Tensor, hole: Optional[torch.Tensor] = None):
        """``hole`` (N,1,H,W, 1 = generated) is needed by the texture term, which is measured on
        the composite, and by the per-photo PSNR term."""
        pred = pred.float()
        parts = {"l1": (pred - img).abs().mean()}
        total = self.w["l1"] * parts["l1"]
        p01 = (pred + 1) / 2
        i01 = (img + 1) / 2
        if self.vgg is not None:
            layers = list(dict.fromkeys(self.perc_layers + self.style_layers))
            fp = self.vgg(p01, layers)
            fi = self.vgg(i01, layers)
            parts["perceptual"] = perceptual_loss([fp[k] for k in self.perc_layers], [fi[k] for k in self.perc_layers])
            parts["style"] = style_loss([fp[k] for k in self.style_layers], [fi[k] for k in self.style_layers])
            total = total + self.w["perceptual"] * parts["perceptual"] + self.w["style"] * parts["style"]
        else:
            parts["substitute"] = self.substitute(p01, i01)
            total = total + self.w["substitute"] * parts["substitute"]
        if self.texture is not None:
            if hole is None:
                raise ValueError("the texture term needs the hole mask")
            comp = hole * pred + (1 - hole) * img
            parts["texture"] = self.texture(comp, img, hole)
            total = total + self.w["texture"] * parts["texture"]
        if self.w["psnr"]:
            if hole is None:
                raise ValueError("the per-photo PSNR term needs the hole mask")
            parts["log_mse"] = log_mse_loss(pred, img, hole)
            total = total + self.w["psnr"] * parts["log_mse"]
        return total, parts


# ----------------------------------------------------------------------------------------------
# SRN

SRN_WEIGHTS = dict(l1=4.2, ae=1.2, pretrain_l1_alpha=1.2, adv=1e-3, mrf=0.05, gp_lambda=10.0, substitute=0.5,
                   psnr=0.0)


def _norm_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def srn_gauss_kernel_1d(size: int = 64, sigma: float = 1.0 / 40) -> torch.Tensor:
    """1-D factor of SRN's ``gauss_kernel``: the 2-D kernel sqrt(outer(k, k)) / sum is the outer
    product of sqrt(k) / sum(sqrt(k)) with itself (so the 64x64 convolution is separable)."""
    interval = (2 * sigma + 1.0) / size
    x = torch.linspace(-sigma - interval / 2, sigma + interval / 2, size + 1, dtype=torch.float64)
    k = torch.diff(_norm_cdf(x))
    r = torch.sqrt(k)
    return r / r.sum()


def srn_gauss_kernel(size: int = 64, sigma: float = 1.0 / 40) -> torch.Tensor:
    """SRN's 2-D loss kernel ``gauss_kernel(size, sigma)`` (size x size, sums to 1)."""
    k1 = srn_gauss_kernel_1d(size, sigma)
    return torch.outer(k1, k1).float()


def _conv_same_sep(x: torch.Tensor, k1: torch.Tensor) -> torch.Tensor:
    """TF 'SAME' convolution of (N,1,H,W) with the separable kernel outer(k1, k1)."""
    n = k1.numel()
    before, after = (n - 1) // 2, n - 1 - (n - 1) // 2
    k1 = k1.to(x.device, x.dtype)
    y = F.conv2d(F.pad(x, (0, 0, before, after)), k1.view(1, 1, n, 1))
    return F.conv2d(F.pad(y, (before, after, 0, 0)), k1.view(1, 1, 1, n))


@torch.no_grad()
def relative_spatial_variant_weight(unknown: torch.Tensor, hsize: int = 64, sigma: float = 1.0 / 40,
                                    iters: int = 9, eps: float = 1e-5) -> torch.Tensor:
    """SRN's relative spatial variant mask: c0 = 1 - M; p_i = (K * c_{i-1}) M; c_i = p_i + 1 - M;
    returns W = p_{iters-1} / (p_iters + eps) (0 on known pixels). ``unknown``: (N,1,H,W), 1 = to predict."""
    m = unknown.float()
    k1 = srn_gauss_kernel_1d(hsize, sigma).float()
    init = 1.0 - m
    prev = None
    p = None
    for i in range(iters):
        p = _conv_same_sep(init, k1) * m
        if i == iters - 2:
            prev = p
        init = p + (1.0 - m)
    return prev / (p + eps)


def srn_reconstruction_loss(pred: torch.Tensor, gt: torch.Tensor, unknown: torch.Tensor,
                            weight: Optional[torch.Tensor] = None, w: Optional[dict] = None):
    """SRN's pretrain losses on [-1,1] tensors; returns (4.2*l1 + 1.2*ae, parts), plus
    ``w["psnr"]`` * :func:`log_mse_loss` over the margin when that weight is set."""
    w = dict(SRN_WEIGHTS, **(w or {}))
    if weight is None:
        weight = relative_spatial_variant_weight(unknown)
    d = (gt - pred.float()).abs()
    known = 1.0 - unknown
    l1 = w["pretrain_l1_alpha"] * (d * weight).mean()
    ae = w["pretrain_l1_alpha"] * (d * known).mean() / known.mean().clamp_min(1e-8)
    total, parts = w["l1"] * l1 + w["ae"] * ae, {"l1": l1, "ae": ae}
    if w["psnr"]:
        parts["log_mse"] = log_mse_loss(pred, gt, unknown)
        total = total + w["psnr"] * parts["log_mse"]
    return total, parts


def id_mrf_layer(gen: torch.Tensor, tar: torch.Tensor, bias: float = 1.0, nn_sigma: float = 0.5,
                 max_positions: int = 65 * 65, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """ID-MRF on one feature layer (1x1 patches): -log(CS) averaged over the batch.

    gen = features of the prediction (the patches, T), tar = of the ground truth (I)."""
    gen = gen.float()
    tar = tar.float()
    n, c, h, w = gen.shape
    if h * w > max_positions:  # random pooling (SRN: only when H*W > 65^2)
        idx = torch.randperm(h * w, generator=generator)[:max_positions].to(gen.device)
        gen = gen.flatten(2)[:, :, idx]
        tar = tar.flatten(2)[:, :, idx]
    else:
        gen = gen.flatten(2)
        tar = tar.flatten(2)
    mean_t = gen.mean(dim=(0, 2), keepdim=True)
    gen = F.normalize(gen - mean_t, dim=1)
    tar = F.normalize(tar - mean_t, dim=1)
    cos = torch.bmm(tar.transpose(1, 2), gen)          # (N, I positions, T patches)
    dist = (1.0 - cos) / 2.0
    rel = dist / (dist.min(dim=2, keepdim=True).values + 1e-5)
    sim = torch.exp((bias - rel) / nn_sigma)
    cs = sim / sim.sum(dim=2, keepdim=True)
    k_max = cs.max(dim=1).values                         # max over I positions -> (N, T)
    cs_mean = k_max.mean(dim=1)
    return (-torch.log(cs_mean)).mean()


class IDMRFLoss(nn.Module):
    """SRN's ID-MRF on VGG19 conv3_2 (style, w 1) and conv4_2 (style w 1 + content w 1)."""

    LAYERS = {"conv3_2": 1.0, "conv4_2": 2.0}

    def __init__(self, vgg):
        super().__init__()
        from .vgg import with_options
        # SRN's VGG is MatConvNet-style with average pooling; inputs are ImageNet-normalised for
        # torchvision weights (the official code subtracts the RGB mean from BGR tensors).
        self.vgg = with_options(vgg, normalize="imagenet", pool="avg")

    def forward(self, pred01: torch.Tensor, gt01: torch.Tensor) -> torch.Tensor:
        fp = self.vgg(pred01, self.LAYERS)
        fg = self.vgg(gt01, self.LAYERS)
        return sum(w * id_mrf_layer(fp[k], fg[k]) for k, w in self.LAYERS.items())


def max_pool_same(x: torch.Tensor, times: int = 3) -> torch.Tensor:
    """TF 2x2 stride-2 'SAME' max-pool applied ``times`` times (SRN's M↓8)."""
    for _ in range(times):
        h, w = x.shape[-2:]
        x = F.max_pool2d(F.pad(x, (0, w % 2, 0, h % 2)), 2, 2)
    return x


def wgan_gp_penalty(critic, real: torch.Tensor, fake: torch.Tensor, mask: torch.Tensor,
                    generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """mean((sqrt(sum(grad^2 * mask)) - 1)^2) at x = real + a (fake - real), a ~ U[0,1) per sample.

    ``critic(x)`` returns one score per sample (N,) or a map it reduces itself."""
    n = real.shape[0]
    alpha = torch.rand(n, 1, 1, 1, generator=generator, dtype=real.dtype).to(real.device)
    x = (real + alpha * (fake.detach() - real)).requires_grad_(True)
    y = critic(x)
    grads, = torch.autograd.grad(y.sum(), x, create_graph=True)
    slopes = torch.sqrt((grads.float() ** 2 * mask).flatten(1).sum(1) + 1e-12)
    return ((slopes - 1.0) ** 2).mean()
