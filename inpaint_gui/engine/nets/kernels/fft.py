"""Overlap-save FFT convolution (stride 1, square kernel) on channels-last tiles.

Each ``n x n`` tile of the padded input is transformed once; the products with the kernel
spectra are one batched real matrix product over the frequency bins (complex numbers as 2x2
real blocks), so the cost per output pixel does not grow with the kernel size. Rounding errors
stay below those of the direct convolution (the spectra are computed in float64).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def fft_weight_spectrum(weight: torch.Tensor, n: int) -> torch.Tensor:
    """Real block form ``[n*(n//2+1), 2*Cin, 2*Cout]`` of the (conjugated) 2-D spectra of a
    ``[Cout, Cin, k, k]`` kernel, for :func:`fft_conv2d` (cross-correlation)."""
    cout, cin, kh, kw = weight.shape
    wp = weight.new_zeros(cout, cin, n, n)
    wp[:, :, :kh, :kw] = weight
    spec = torch.fft.rfft2(wp.double()).conj().resolve_conj()               # [O, I, n, nb]
    spec = spec.permute(2, 3, 1, 0).reshape(-1, cin, cout)                   # [bins, I, O]
    wr, wi = spec.real, spec.imag
    top = torch.stack([wr, wi], -1).reshape(-1, cin, 2 * cout)               # rows (i, re)
    bot = torch.stack([-wi, wr], -1).reshape(-1, cin, 2 * cout)              # rows (i, im)
    return torch.stack([top, bot], 2).reshape(-1, 2 * cin, 2 * cout).to(weight.dtype).contiguous()


def fft_conv2d(x: torch.Tensor, wspec: torch.Tensor, k: int, pad: int, n: int) -> torch.Tensor:
    """``F.conv2d(x, w, padding=pad)`` (stride 1, square kernel ``k``) by overlap-save FFT
    convolution on ``n x n`` tiles; ``wspec = fft_weight_spectrum(w, n)``. Returns a
    channels-last tensor."""
    b, c, h, w = x.shape
    t = n - k + 1
    nty, ntx = -(-h // t), -(-w // t)
    nb = n // 2 + 1
    xh = x.permute(0, 2, 3, 1)                                              # [B, H, W, C]
    xp = F.pad(xh, (0, 0, pad, ntx * t + k - 1 - w - pad, pad, nty * t + k - 1 - h - pad))
    tiles = xp.unfold(1, n, t).unfold(2, n, t).permute(0, 1, 2, 4, 5, 3)    # [B,ty,tx,n,n,C]
    xf = torch.fft.rfft2(tiles, dim=(3, 4))                                  # [B,ty,tx,n,nb,C]
    xr = torch.view_as_real(xf).reshape(b * nty * ntx, n * nb, 2 * c).transpose(0, 1)
    y = torch.bmm(xr, wspec)                                                 # [bins, tiles, 2O]
    cout = wspec.shape[2] // 2
    yc = torch.view_as_complex(y.view(n, nb, b, nty, ntx, cout, 2))
    yr = torch.fft.irfft2(yc, s=(n, n), dim=(0, 1))[:t, :t]                  # [t,t,B,ty,tx,O]
    out = yr.permute(2, 3, 0, 4, 1, 5).reshape(b, nty * t, ntx * t, cout)[:, :h, :w]
    return out.permute(0, 3, 1, 2)


__all__ = ["fft_weight_spectrum", "fft_conv2d"]
