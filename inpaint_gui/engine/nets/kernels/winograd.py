"""Winograd minimal filtering F(m x m, r x r), r = 3 (and 2), for the CPU inference paths
(LaMa, AOT-GAN, RFR).

``Y = A^T [(G g G^T) * (B^T d B)] A`` (Lavin & Gray 2016), with the matrices built by Toom-Cook
from interpolation points (+ infinity) and the rows of G / B^T balanced by powers of two.
m = 2 (points 0, 1, -1) stays within ~3e-6 of a direct convolution; m = 4 uses the
well-conditioned points 0, 1, -1, 1/2, -2 (about 2e-5 per conv in fp32) and needs 4x fewer
multiplies than a direct 3x3 convolution. F(m, 2) (RFR's transposed convolutions as 2x2
convolutions over their output phases) uses the first m of those points.

Data are channels-last ``[B, H, W, C]``. A dilated convolution (rate r) is a plain 3x3 one on
each of the r x r sub-grids ``x[phy::r, phx::r]``; :func:`conv3x3_padded` tiles all sub-grids at
once with one strided view of the already padded input, so reflect padding (AOT-GAN, LaMa) costs
one pad per layer and no index arithmetic.
"""
from __future__ import annotations

import torch

__all__ = ["WINOGRAD_POINTS", "winograd_matrices", "weight_transform", "data_transforms",
           "reflect_pad", "zero_pad", "conv3x3_plan", "conv3x3_extent", "conv3x3_padded",
           "conv3x3_multi", "conv_zero_padded", "BAND_BYTES", "WEIGHT_BYTES_PER_BAND"]

WINOGRAD_POINTS = {2: (0.0, 1.0, -1.0), 4: (0.0, 1.0, -1.0, 0.5, -2.0)}
_CACHE: dict = {}


def winograd_matrices(m: int, r: int = 3):
    """(B^T [n,n], G [n,r], A^T [m,n]) in float64 for F(m, r), n = m + r - 1."""
    if (m, r) in _CACHE:
        return _CACHE[(m, r)]
    if r not in (2, 3):
        raise ValueError(f"Winograd kernels are 2 or 3 wide, got {r}")
    n = m + r - 1
    pts = WINOGRAD_POINTS[m][:n - 1]
    at = torch.zeros(m, n, dtype=torch.float64)
    g = torch.zeros(n, r, dtype=torch.float64)
    for i, p in enumerate(pts):
        at[:, i] = torch.tensor([p ** k for k in range(m)], dtype=torch.float64)
        g[i] = torch.tensor([p ** k for k in range(r)], dtype=torch.float64)
    at[m - 1, n - 1] = 1.0
    g[n - 1, r - 1] = 1.0
    # B^T solves sum_i A^T[k,i] G[i,l] B^T[i,j] = [j == k + l] for all k, l, j (exact system)
    rows, rhs = [], []
    for k in range(m):
        for l_ in range(r):
            for j in range(n):
                row = torch.zeros(n, n, dtype=torch.float64)
                row[:, j] = at[k] * g[:, l_]
                rows.append(row.reshape(-1))
                rhs.append(1.0 if j == k + l_ else 0.0)
    sol = torch.linalg.lstsq(torch.stack(rows), torch.tensor(rhs, dtype=torch.float64)[:, None]).solution
    bt = sol.reshape(n, n)
    bt = torch.where(bt.abs() < 1e-12, torch.zeros_like(bt), bt)
    for i in range(n):  # balance G / B^T rows by powers of two (adds no rounding)
        ratio = bt[i].abs().max() / g[i].abs().max().clamp(min=1e-30)
        s = 2.0 ** round(0.5 * float(torch.log2(ratio)))
        g[i] *= s
        bt[i] /= s
    _CACHE[(m, r)] = (bt, g, at)
    return bt, g, at


def weight_transform(w: torch.Tensor, m: int) -> torch.Tensor:
    """Conv weight ``[out, in, r, r]`` (r = 3 or 2) -> ``U = G w G^T`` as ``[n*n, in, out]``
    float32, n = m + r - 1."""
    r = w.shape[-1]
    _, g, _ = winograd_matrices(m, r)
    n = m + r - 1
    u = torch.einsum("ak,oikl,bl->abio", g, w.double(), g)
    return u.reshape(n * n, w.shape[1], w.shape[0]).float().contiguous()


def data_transforms(m: int, r: int = 3):
    """``(B^T kron B^T [n*n, n*n], A^T kron A^T [m*m, n*n])`` float32 (cached, read-only):
    both 2-D transforms as one matrix product each."""
    key = ("data", m, r)
    if key not in _CACHE:
        bt, _, at = winograd_matrices(m, r)
        n = m + r - 1
        bb = torch.einsum("ai,bj->abij", bt, bt).reshape(n * n, n * n).float()
        aa = torch.einsum("ai,bj->abij", at, at).reshape(m * m, n * n).float()
        _CACHE[key] = (bb, aa)
    return _CACHE[key]


def reflect_pad(x: torch.Tensor, p: int, total_h: "int | None" = None,
                total_w: "int | None" = None) -> torch.Tensor:
    """Reflect-pad ``[B, H, W, C]`` (any strides) by ``p`` on each side (``padding_mode=
    'reflect'``) into a new contiguous buffer of ``total_h x total_w`` (zeros beyond)."""
    b, h, w, c = x.shape
    th, tw = total_h or h + 2 * p, total_w or w + 2 * p
    xp = x.new_empty((b, th, tw, c))
    xp[:, p:p + h, p:p + w] = x
    for i in range(1, p + 1):
        xp[:, p - i, p:p + w] = x[:, i]
        xp[:, p + h - 1 + i, p:p + w] = x[:, h - 1 - i]
    for i in range(1, p + 1):
        xp[:, :h + 2 * p, p - i] = xp[:, :h + 2 * p, p + i]
        xp[:, :h + 2 * p, p + w - 1 + i] = xp[:, :h + 2 * p, p + w - 1 - i]
    if th > h + 2 * p:
        xp[:, h + 2 * p:] = 0
    if tw > w + 2 * p:
        xp[:, :, w + 2 * p:] = 0
    return xp


def zero_pad(x: torch.Tensor, p: int, total_h: int, total_w: int) -> torch.Tensor:
    """Zero-pad ``[B, H, W, C]`` (any strides) by ``p`` at the top/left into a new contiguous
    ``[B, total_h, total_w, C]`` buffer (zeros everywhere outside ``x``)."""
    b, h, w, c = x.shape
    xp = x.new_empty((b, total_h, total_w, c))
    xp[:, :p] = 0
    xp[:, p + h:] = 0
    xp[:, p:p + h, :p] = 0
    xp[:, p:p + h, p + w:] = 0
    xp[:, p:p + h, p:p + w] = x
    return xp


def conv3x3_plan(h: int, w: int, rate: int, m: int) -> "tuple[int, int, int, int]":
    """``(tiles_y, tiles_x, out_h, out_w)`` per sub-grid for an ``h x w`` output at ``rate``:
    the output is computed on ``out_h x out_w >= h x w`` (crop the rest)."""
    ky = _ceil_div(_ceil_div(h, rate), m)      # output rows per sub-grid, in tiles of m
    kx = _ceil_div(_ceil_div(w, rate), m)
    return ky, kx, ky * m * rate, kx * m * rate


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def conv3x3_extent(h: int, w: int, rate: int, m: int, r: int = 3) -> "tuple[int, int]":
    """Rows and columns of padded input (from the pad's first row) that the tiles of an
    ``r x r`` kernel read."""
    ky, kx, _, _ = conv3x3_plan(h, w, rate, m)
    return rate * (m * (ky - 1) + m + r - 1), rate * (m * (kx - 1) + m + r - 1)


def _band(xp: torch.Tensor, offset: "tuple[int, int]", h: int, w: int, rate: int, products,
          bb: torch.Tensor, aa: torch.Tensor, m: int, ws: dict):
    """One band of :func:`conv3x3_multi`: yields each product as a strided
    ``[B, ky, m, rate, kx, m, rate, Co]`` view (output row ``rate * (m * ky + qy) + phy``)."""
    n = _side(bb)
    b, hp, wp, c = xp.shape
    ky, kx, _, _ = conv3x3_plan(h, w, rate, m)
    need_h, need_w = (o + e for o, e in zip(offset, conv3x3_extent(h, w, rate, m, n - m + 1)))
    s_b, s_row, s_col, s_c = xp.stride()
    if need_h > hp or need_w > wp or s_c != 1 or s_col != c or s_row != wp * c:
        raise ValueError(f"padded buffer {hp}x{wp} too small for rate {rate} (needs "
                         f"{need_h}x{need_w}) or not channels-last contiguous rows")
    # tiles [B, ky, phy, kx, phx, i, j, C]: padded row offset + rate * (m * ky + i) + phy
    tiles = xp.as_strided(
        (b, ky, rate, kx, rate, n, n, c),
        (s_b, rate * m * s_row, s_row, rate * m * s_col, s_col, rate * s_row, rate * s_col, 1),
        xp.storage_offset() + offset[0] * s_row + offset[1] * s_col)
    t = b * ky * rate * kx * rate
    d = _scratch(ws, "d", t * n * n * c, xp).view(b, ky, rate, kx, rate, n, n, c)
    d.copy_(tiles)
    v = _scratch(ws, "v", t * n * n * c, xp).view(t, n * n, c)
    torch.matmul(bb, d.view(t, n * n, c), out=v)
    v = v.transpose(0, 1)                                                   # [n*n, T, C]
    for i, (u, cin, _outs) in enumerate(products):
        co = u.shape[-1]
        prod = _scratch(ws, f"p{i}", n * n * t * co, xp).view(n * n, t, co)
        torch.bmm(v[..., cin], u, out=prod)
        y = _scratch(ws, f"y{i}", m * m * t * co, xp).view(m * m, t * co)
        torch.mm(aa, prod.view(n * n, t * co), out=y)
        yield y.view(m, m, b, ky, rate, kx, rate, co).permute(2, 3, 0, 4, 5, 1, 6, 7)


def _side(t: torch.Tensor) -> int:
    """Tile side n of a transform ``[n*n, ...]`` (input transform or transformed weights)."""
    return int(round(t.shape[0] ** 0.5))


def _scratch(ws: dict, name: str, numel: int, like: torch.Tensor) -> torch.Tensor:
    """A flat buffer of at least ``numel`` elements, reused band after band (fewer large
    allocations: fresh pages cost as much as the transforms themselves)."""
    buf = ws.get(name)
    if buf is None or buf.numel() < numel:
        buf = ws[name] = like.new_empty(numel)
    return buf[:numel]


#: bytes of transformed input per band (tiles x n*n x C floats): small enough that a band's
#: tiles, transforms and products stay in cache, large enough for efficient products. F(4x4,3x3)
#: CPU time, one torch thread, 2-core Intel Xeon VM (Sapphire Rapids class; 2 MiB L2 per core):
#: LaMa's 512 channels at 64^2 31 ms with 2 to 9 MiB bands, 38 ms with 18 or 36 MiB; AOT-GAN's
#: 256 channels at 128^2 34-35 ms with 4 to 18 MiB, 40 ms with 2, 66 ms with 36
BAND_BYTES = 9 << 20
#: ... but at least the transformed weights' bytes divided by this: every band streams all
#: transformed weights once, and RFR's 1024-channel layers have up to 200 MiB of them (set
#: with the RFR runs on the Intel Xeon VM of 2026-12-05, commit 5ffbbf5)
WEIGHT_BYTES_PER_BAND = 4


def conv3x3_multi(xp: torch.Tensor, offset: "int | tuple[int, int]", h: int, w: int, rate: int,
                  bb: torch.Tensor, aa: torch.Tensor, m: int, products) -> None:
    """Valid 3x3 convolutions at dilation ``rate`` of one padded channels-last buffer,
    sharing its input transform (2x2 kernels with the ``r = 2`` transforms and weights).

    ``xp`` ``[B, Hp, Wp, C]`` (rows contiguous) holds the input padded by ``rate`` on each
    side starting at row/column ``offset`` (or row ``offset[0]``, column ``offset[1]``; the
    padding done by the caller: reflect, zeros, ...),
    with finite values (zeros) in the rows and columns past it that the tiles overrun (size
    them with :func:`conv3x3_extent`). ``products``: ``[(u, input channels, outs)]`` with
    ``u`` = :func:`weight_transform` ``[n*n, Cin, Co]`` of the kernel over the ``input
    channels`` slice of C; ``outs``: ``[(out, channels, bias)]``: each ``out`` ``[B, >= out_h,
    >= out_w, k]`` (any strides) receives output ``channels`` (a slice of Co) + ``bias``
    (``[k]`` or None). Rows and columns past ``h x w`` hold garbage to crop. Runs in bands
    of tile rows so that each band's data stay in cache."""
    b = xp.shape[0]
    offsets = (offset, offset) if isinstance(offset, int) else tuple(offset)
    ky, kx, _, _ = conv3x3_plan(h, w, rate, m)
    n = _side(bb)
    weight_bytes = sum(u.numel() * u.element_size() for u, _cin, _outs in products)
    band_bytes = max(BAND_BYTES, weight_bytes // WEIGHT_BYTES_PER_BAND)
    tiles = max(1, band_bytes // (n * n * xp.shape[-1] * xp.element_size()))
    band = max(1, round(tiles / (b * kx * rate * rate)))
    step = rate * m
    ws: dict = {}
    for k0 in range(0, ky, band):
        k1 = min(ky, k0 + band)
        ys = _band(xp[:, step * k0:], offsets, (k1 - k0) * step, w, rate, products, bb, aa, m, ws)
        for y, (_u, _cin, outs) in zip(ys, products):
            for out, channels, bias in outs:
                dst = out[:, step * k0:step * k1, :kx * step]
                dst = dst.view(b, k1 - k0, m, rate, kx, m, rate, dst.shape[-1])
                if bias is None:
                    dst.copy_(y[..., channels])
                else:
                    torch.add(y[..., channels], bias, out=dst)


def conv3x3_padded(xp: torch.Tensor, offset: "int | tuple[int, int]", h: int, w: int, rate: int,
                   u: torch.Tensor,
                   bb: torch.Tensor, aa: torch.Tensor, m: int, outs) -> None:
    """:func:`conv3x3_multi` with one product over all input channels."""
    conv3x3_multi(xp, offset, h, w, rate, bb, aa, m, [(u, slice(None), outs)])


def conv_zero_padded(x: torch.Tensor, u: torch.Tensor, bias: "torch.Tensor | None", m: int,
                     pad: int, rate: int = 1) -> torch.Tensor:
    """Convolution of channels-last ``x`` ``[B, H, W, C]`` (any strides) zero-padded by ``pad``
    on each side, kernel ``u`` = :func:`weight_transform` (3x3 or 2x2) at dilation ``rate``.
    Returns a view ``[B, H', W', Co]`` of a new buffer, ``H' = H + 2 pad - rate (r - 1)``."""
    b, h, w, _ = x.shape
    r = _side(u) - m + 1
    ho, wo = h + 2 * pad - rate * (r - 1), w + 2 * pad - rate * (r - 1)
    xp = zero_pad(x, pad, *conv3x3_extent(ho, wo, rate, m, r))
    _, _, oh, ow = conv3x3_plan(ho, wo, rate, m)
    out = x.new_empty((b, oh, ow, u.shape[-1]))
    bb, aa = data_transforms(m, r)
    conv3x3_padded(xp, 0, ho, wo, rate, u, bb, aa, m, [(out, slice(None), bias)])
    return out[:, :ho, :wo]
