"""BatchNorm (eval: running statistics) folded into the convolution before it."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn


def bn_affine(bn: nn.BatchNorm2d, dtype: Optional[torch.dtype] = None
              ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(scale, shift)`` with ``bn(y) == y * scale + shift`` per channel, computed in
    ``dtype`` (default: the parameters' own)."""
    w, b, mean, var = bn.weight, bn.bias, bn.running_mean, bn.running_var
    if dtype is not None:
        w, b, mean, var = (t.to(dtype) for t in (w, b, mean, var))
    scale = w / torch.sqrt(var + bn.eps)
    return scale, b - mean * scale


def fold_bn(weight: torch.Tensor, bn: nn.BatchNorm2d, transposed: bool = False
            ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``bn(conv(x, weight))`` as one bias-carrying convolution
    (``transposed``: a ConvTranspose2d weight ``[in, out, kh, kw]``)."""
    scale, bias = bn_affine(bn)
    if transposed:
        return weight * scale.view(1, -1, 1, 1), bias
    return weight * scale.view(-1, 1, 1, 1), bias


__all__ = ["bn_affine", "fold_bn"]
