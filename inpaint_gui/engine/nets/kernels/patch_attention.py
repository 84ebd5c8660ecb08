"""Contextual attention (PEN-Net's ATN) as chunked matrix products over the usable patches.

The official formulation convolves every query with every patch, takes the softmax over all
patches, zeroes the unusable ones (any hole pixel under them) and clamps to 1e-8, then
transfers the low-level patches by a transposed convolution. Here only the usable patches
enter the products; the unusable ones enter in closed form: their logit 0 counts ``n_bad``
times in the softmax denominator (one extra column ``log(n_bad)``) and their clamped weight
1e-8 adds ``1e-8 * (sum of their low-level patches)`` to every query. Same arithmetic, without
the wasted work; queries go in blocks of ``query_chunk``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def attend_usable_patches(x1: torch.Tensor, x2: torch.Tensor, mask: torch.Tensor, ksize: int,
                          rate: int, softmax_scale: float, query_chunk: int) -> torch.Tensor:
    """ATN with stride 1: ``x1`` low-level features ``[B, C1, 2h, 2w]``, ``x2`` high-level
    ``[B, C2, h, w]``, ``mask`` ``[B, 1, h, w]`` (resized; 1 = hole). Returns the transferred
    features ``[B, C1, 2h, 2w]`` (official: the transposed convolution divided by 4)."""
    bsz, c1, hh, ww = x1.shape
    k = ksize
    kernel = 2 * rate
    pad = 0 if k == 1 else 1
    # unfold layouts: low patches [B, C1*16, L], high patches [B, C2*k*k, L] (L row-major)
    raw = F.unfold(x1, kernel, padding=1, stride=rate)
    pat = F.unfold(x2, k, padding=pad)
    usable = F.unfold(mask, k, padding=pad).mean(1).eq(0.0)        # [B, L]
    out = [_fold(_attend_one(pat[b], raw[b], usable[b], softmax_scale, query_chunk, x1),
                 hh, ww, kernel, rate) for b in range(bsz)]
    y = torch.cat(out, 0) if bsz > 1 else out[0]
    return y.div_(4.0)


def _fold(cols: torch.Tensor, hh: int, ww: int, kernel: int, rate: int) -> torch.Tensor:
    return F.fold(cols.unsqueeze(0), (hh, ww), kernel, padding=1, stride=rate)


def _attend_one(p_all: torch.Tensor, r_all: torch.Tensor, usable: torch.Tensor,
                softmax_scale: float, query_chunk: int, like: torch.Tensor) -> torch.Tensor:
    """One sample: the transferred low-level patch columns ``[C1*16, L]``."""
    L = p_all.shape[1]
    in_place = like.device.type == "cpu" and not torch.is_autocast_enabled("cpu")
    idx = usable.nonzero().squeeze(1)
    n_bad = L - idx.numel()
    p_u = p_all.index_select(1, idx)
    norm = p_u.square().sum(0, keepdim=True).sqrt_().clamp_(min=1e-4)
    filt = p_u.div_(norm).mul_(softmax_scale)                   # [C2*k*k, U]
    r_u = r_all.index_select(1, idx)                            # [C1*16, U]
    n_u = idx.numel()
    cols = torch.empty((r_all.shape[0], L), dtype=like.dtype, device=like.device)
    if n_bad:
        # unusable patches keep weight clamp(0) = 1e-8 for every query, and their logit
        # 0 counts n_bad times in the softmax denominator: one extra column log(n_bad)
        r_bad = (r_all.sum(1) - r_u.sum(1)).mul_(1e-8).unsqueeze(1)
        log_bad = math.log(n_bad)
    for q0 in range(0, L, query_chunk):
        q1 = min(L, q0 + query_chunk)
        if n_u == 0:  # softmax of zeros, zeroed, clamped: 1e-8 everywhere
            cols[:, q0:q1] = r_bad
            continue
        if in_place:   # scores written next to the extra column (no extra pass)
            logits = torch.empty((q1 - q0, n_u + (1 if n_bad else 0)), dtype=like.dtype,
                                 device=like.device)
            torch.mm(p_all[:, q0:q1].t(), filt, out=logits[:, :n_u])
            if n_bad:
                logits[:, n_u] = log_bad
        else:          # autocast / other devices: plain ops
            logits = torch.mm(p_all[:, q0:q1].t(), filt)
            if n_bad:
                logits = F.pad(logits, (0, 1), value=log_bad)
        a = torch.softmax(logits, dim=1)[:, :n_u].clamp_(min=1e-8)
        blk = torch.mm(r_u, a.t())                              # [C1*16, q]
        if n_bad:
            blk.add_(r_bad)
        cols[:, q0:q1] = blk
    return cols


__all__ = ["attend_usable_patches"]
