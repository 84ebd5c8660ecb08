"""Fast CPU kernels of the networks' inference paths, and their one switch.

Every network with a fast path (``nets.create``: AOT-GAN, LaMa, PEN-Net, RFR) has the
attribute ``fast_path`` (True by default). True: inference (eval, no autograd) runs through
these kernels where they apply (CPU float32, not under autocast; the rest of the fast path
also where they do not). False: the reference path, the official formulation in our code
(bench times it as the same-run stand-in for the official code). ``INPAINT_FAST_KERNELS=0``
in the environment turns the fast path off for every network of the process
(:func:`enabled`, read at each forward). SRN has no fast path.

Modules:

* :mod:`.winograd` — banded Winograd F(m x m, 3 x 3) and F(m x m, 2 x 2) on channels-last data
  (AOT-GAN, LaMa, RFR);
* :mod:`.fft` — overlap-save FFT convolution for large kernels (RFR's 7x7 / 5x5 partial
  convolutions);
* :mod:`.phase` — a stride-2 4x4 transposed convolution as one 2x2 convolution over its four
  output phases, direct or Winograd (RFR);
* :mod:`.fold` — BatchNorm folded into the convolution before it (LaMa, RFR);
* :mod:`.rows` — a k x k convolution with few outputs as a 1 x k one plus row sums (LaMa's
  RGB output layer);
* :mod:`.patch_attention` — contextual attention as chunked matrix products over the usable
  patches only (PEN-Net's ATN).

Where a network chooses between kernels by size, the threshold is a named constant next to
that choice, with what was measured on which machine.
"""
from __future__ import annotations

import os

#: the environment variable that turns every fast path off ("0", "false", "no", "off")
ENV_VAR = "INPAINT_FAST_KERNELS"


def enabled() -> bool:
    """False when ``INPAINT_FAST_KERNELS`` is 0/false/no/off: every network then runs its
    reference path."""
    return os.environ.get(ENV_VAR, "1").strip().lower() not in ("0", "false", "no", "off")


def use_fast_path(net) -> bool:
    """The network's ``fast_path`` switch, unless the environment turns fast paths off."""
    return bool(getattr(net, "fast_path", True)) and enabled()


__all__ = ["ENV_VAR", "enabled", "use_fast_path"]
