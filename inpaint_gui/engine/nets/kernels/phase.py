"""``ConvTranspose2d(k=4, stride=2, padding=1)`` as 2x2 convolutions over its four output
phases: the same products and sums as the transposed convolution, but as plain convolutions
(direct, or banded Winograd F(m x m, 2 x 2) from :mod:`.winograd`).

Output pixel ``(2i + py, 2j + px)`` of the transposed convolution only ever meets the kernel
taps ``TAPS[py] x TAPS[px]`` (a 2x2 sub-kernel per phase): it is the valid 2x2 convolution of
the input padded by one at ``(i + py, j + px)``. Two ways to use that:

* :func:`deconv_phase` / :func:`deconv_phase_winograd`: one 2x2 convolution with the four
  sub-kernels stacked as ``4 * Cout`` outputs over all ``(h+1) x (w+1)`` positions, then
  interleaved (one input transform, wide products: large inputs);
* :func:`deconv_phases_winograd`: each phase on its own ``h x w`` positions, written straight
  into its interleaved place (a quarter of the products per phase, no interleaving copy:
  small inputs, where the joint form's extra row and column are a large share).

Results are channels-last.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from . import winograd as wg

#: kernel taps (rows or columns of the 4x4 kernel) that reach output parity 0 and 1
TAPS = {0: [3, 1], 1: [2, 0]}
#: the output phases (row parity, column parity), in the order of :func:`phase_weight`
PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))


def phase_weight(weight: torch.Tensor) -> torch.Tensor:
    """``[Cin, Cout, 4, 4]`` ConvTranspose2d(k4, s2, p1) weight -> ``[4*Cout, Cin, 2, 2]`` conv
    weight of its four output phases (row parity, column parity)."""
    return torch.cat([weight[:, :, TAPS[py]][:, :, :, TAPS[px]].transpose(0, 1)
                      for py, px in PHASES], 0).contiguous()


def interleave_phases(rv: torch.Tensor, h: int, w: int, bias: Optional[torch.Tensor]
                      ) -> torch.Tensor:
    """``rv`` ``[n, >= h+1, >= w+1, 2, 2, Co]`` (phase convolution outputs) -> the transposed
    convolution's channels-last ``[n, Co, 2h, 2w]``."""
    n, cout = rv.shape[0], rv.shape[-1]
    out = rv.new_empty(n, h, 2, w, 2, cout)
    for py in (0, 1):
        for px in (0, 1):
            out[:, :, py, :, px] = rv[:, py:py + h, px:px + w, py, px]
    if bias is not None:
        out += bias
    return out.view(n, 2 * h, 2 * w, cout).permute(0, 3, 1, 2)


def deconv_phase(x: torch.Tensor, w4: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """The transposed convolution as a direct 2x2 convolution over the output phases;
    ``w4 = phase_weight(w)``. Channels-last."""
    n, _c, h, w = x.shape
    cout = w4.shape[0] // 4
    r = F.conv2d(F.pad(x, (1, 1, 1, 1)), w4)                                 # [n,4Co,h+1,w+1]
    return interleave_phases(r.permute(0, 2, 3, 1).reshape(n, h + 1, w + 1, 2, 2, cout), h, w,
                             bias)


def deconv_phase_winograd(x: torch.Tensor, u: torch.Tensor, bias: Optional[torch.Tensor],
                          m: int) -> torch.Tensor:
    """:func:`deconv_phase` with the 2x2 phase convolution as banded Winograd F(m x m, 2 x 2)
    products; ``u = winograd.weight_transform(phase_weight(w), m)``. Channels-last."""
    n, _c, h, w = x.shape
    r = wg.conv_zero_padded(x.permute(0, 2, 3, 1), u, None, m, 1)            # [n,h+1,w+1,4Co]
    return interleave_phases(r.unflatten(-1, (2, 2, -1)), h, w, bias)


def phases_winograd_weights(weight: torch.Tensor, m: int) -> "list[torch.Tensor]":
    """The four phase kernels of a ``[Cin, Cout, 4, 4]`` weight, each transformed for
    F(m x m, 2 x 2) (:func:`.winograd.weight_transform`), in :data:`PHASES` order."""
    return [wg.weight_transform(k, m) for k in phase_weight(weight).chunk(4, 0)]


def deconv_phases_winograd(x: torch.Tensor, us, bias: Optional[torch.Tensor], m: int
                           ) -> torch.Tensor:
    """The transposed convolution phase by phase: output phase ``(py, px)`` is the valid 2x2
    convolution of the input padded by one, read from row ``py`` and column ``px``, as banded
    Winograd F(m x m, 2 x 2) written straight into its interleaved place;
    ``us = phases_winograd_weights(w, m)``. Channels-last."""
    n, _c, h, w = x.shape
    cout = us[0].shape[-1]
    _, _, oh, ow = wg.conv3x3_plan(h, w, 1, m)
    xp = wg.zero_pad(x.permute(0, 2, 3, 1), 1, oh + 2, ow + 2)   # + the phase's row/column
    out = x.new_empty(n, oh, 2, ow, 2, cout)
    bb, aa = wg.data_transforms(m, 2)
    for (py, px), u in zip(PHASES, us):
        wg.conv3x3_padded(xp, (py, px), h, w, 1, u, bb, aa, m,
                          [(out[:, :, py, :, px], slice(None), bias)])
    if oh != h or ow != w:
        out = out[:, :h, :, :w]
    return out.reshape(n, 2 * h, 2 * w, cout).permute(0, 3, 1, 2)


__all__ = ["TAPS", "PHASES", "phase_weight", "interleave_phases", "deconv_phase",
           "deconv_phase_winograd", "phases_winograd_weights", "deconv_phases_winograd"]
