"""A k x k convolution with few output channels (LaMa's 7x7 conv to RGB) as a 1 x k
convolution with ``Cout * k`` outputs plus ``k`` shifted row sums: the direct k x k
convolution with 3 outputs leaves most vector lanes idle, the 1 x k one fills them."""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F


def rows_weight(weight: torch.Tensor) -> Tuple[torch.Tensor, int, int]:
    """``[Co, Ci, kh, kw]`` -> (the ``[Co*kh, Ci, 1, kw]`` row kernels, channels-last, output
    index ``c * kh + ky``; Co; kh)."""
    co, ci, kh, kw = weight.shape
    w_rows = weight.detach().permute(0, 2, 1, 3).reshape(co * kh, ci, 1, kw)
    return w_rows.contiguous(memory_format=torch.channels_last), co, kh


def conv_by_rows(xp: torch.Tensor, w_rows: torch.Tensor, bias: torch.Tensor, co: int,
                 kh: int) -> torch.Tensor:
    """Valid ``kh x kw`` convolution of the padded channels-last ``xp`` ``[B, Hp, Wp, C]``
    (``w_rows``, ``co``, ``kh`` from :func:`rows_weight`) plus ``bias``; returns
    ``[B, Hp - kh + 1, Wp - kw + 1, co]`` (channels-last, contiguous)."""
    b = xp.shape[0]
    t = F.conv2d(xp.permute(0, 3, 1, 2), w_rows).permute(0, 2, 3, 1)        # [B, Hp, W, co*kh]
    if not t.is_contiguous():
        t = t.contiguous()
    hh, ww = xp.shape[1] - kh + 1, t.shape[2]
    t = t.view(b, hh + kh - 1, ww, co, kh)
    out = t[:, 0:hh, :, :, 0] + bias
    for ky in range(1, kh):
        out += t[:, ky:ky + hh, :, :, ky]
    return out


__all__ = ["rows_weight", "conv_by_rows"]
