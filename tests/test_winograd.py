"""Winograd F(m x m, 3 x 3) convolutions (engine/nets/kernels/winograd.py) against torch's
direct convolution, and AOT-GAN's Winograd inference path against its direct path."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from inpaint_gui.engine.nets import create
from inpaint_gui.engine.nets.kernels import winograd as wg


def _reference(x_nchw, w, bias, rate, mode):
    xp = F.pad(x_nchw, (rate,) * 4, mode=mode)
    return F.conv2d(xp, w, bias, 1, 0, rate).permute(0, 2, 3, 1)


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("rate,h,w", [(1, 9, 14), (1, 16, 16), (2, 15, 7), (3, 13, 20), (8, 17, 24)])
@pytest.mark.parametrize("mode", ["reflect", "constant"])
def test_conv3x3_matches_direct(m, rate, h, w, mode, one_thread, monkeypatch):
    monkeypatch.setattr(wg, "BAND_BYTES", 8 * 36 * 12 * 4)  # several bands per call
    g = torch.Generator().manual_seed(rate * 100 + h)
    x = torch.randn(2, h, w, 12, generator=g)
    wt = torch.randn(7, 12, 3, 3, generator=g)
    bias = torch.randn(7, generator=g)
    ref = _reference(x.permute(0, 3, 1, 2), wt, bias, rate, mode)
    eh, ew = wg.conv3x3_extent(h, w, rate, m)
    if mode == "reflect":
        xp = wg.reflect_pad(x, rate, eh, ew)
    else:
        xp = torch.zeros(2, eh, ew, 12)
        xp[:, rate:rate + h, rate:rate + w] = x
        torch.testing.assert_close(wg.zero_pad(x, rate, eh, ew), xp, rtol=0, atol=0)
    _, _, oh, ow = wg.conv3x3_plan(h, w, rate, m)
    out = torch.full((2, oh, ow, 7), float("nan"))
    bb, aa = wg.data_transforms(m)
    wg.conv3x3_padded(xp, 0, h, w, rate, wg.weight_transform(wt, m), bb, aa, m,
                      [(out, slice(None), bias)])
    err = (out[:, :h, :w] - ref).abs().max()
    assert err <= (3e-5 if m == 4 else 1e-5) * ref.abs().max(), float(err)


@pytest.mark.parametrize("m", [2, 4])
def test_conv2x2_matches_direct(m, one_thread, monkeypatch):
    """F(m, 2): a valid 2x2 convolution (RFR's transposed convolutions over output phases)."""
    monkeypatch.setattr(wg, "BAND_BYTES", 4 * 25 * 9 * 4)
    g = torch.Generator().manual_seed(m)
    x = torch.randn(2, 13, 10, 9, generator=g)
    wt = torch.randn(5, 9, 2, 2, generator=g)
    ref = F.conv2d(F.pad(x.permute(0, 3, 1, 2), (1, 1, 1, 1)), wt).permute(0, 2, 3, 1)
    h, w = ref.shape[1:3]
    xp = wg.zero_pad(x, 1, *wg.conv3x3_extent(h, w, 1, m, 2))
    _, _, oh, ow = wg.conv3x3_plan(h, w, 1, m)
    out = torch.full((2, oh, ow, 5), float("nan"))
    bb, aa = wg.data_transforms(m, 2)
    wg.conv3x3_padded(xp, 0, h, w, 1, wg.weight_transform(wt, m), bb, aa, m,
                      [(out, slice(None), None)])
    assert (out[:, :h, :w] - ref).abs().max() <= 1e-5 * ref.abs().max()


def test_conv3x3_multi_shares_the_input_and_writes_channel_slices(one_thread):
    """Two products from one transform: one over all input channels, one over a slice, each
    written (with bias) into a channel slice of one output buffer; the offset selects the
    rate's window inside a buffer padded for a larger rate."""
    m, h, w = 4, 20, 12
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, h, w, 10, generator=g)
    w_all, w_part = torch.randn(6, 10, 3, 3, generator=g), torch.randn(4, 3, 3, 3, generator=g)
    b_all, b_part = torch.randn(6, generator=g), torch.randn(4, generator=g)
    pmax, rate = 4, 2
    eh, ew = wg.conv3x3_extent(h, w, rate, m)
    xp = wg.reflect_pad(x, pmax, pmax - rate + eh, pmax - rate + ew)
    _, _, oh, ow = wg.conv3x3_plan(h, w, rate, m)
    out = torch.zeros(1, oh, ow, 10)
    bb, aa = wg.data_transforms(m)
    wg.conv3x3_multi(xp, pmax - rate, h, w, rate, bb, aa, m, [
        (wg.weight_transform(w_all, m), slice(None), [(out[..., :6], slice(None), b_all)]),
        (wg.weight_transform(w_part, m), slice(0, 3), [(out[..., 6:], slice(None), b_part)])])
    xn = x.permute(0, 3, 1, 2)
    ref = torch.cat([_reference(xn, w_all, b_all, rate, "reflect"),
                     _reference(xn[:, :3], w_part, b_part, rate, "reflect")], -1)
    assert (out[:, :h, :w] - ref).abs().max() <= 3e-5 * ref.abs().max()


def test_conv3x3_rejects_a_short_buffer():
    bb, aa = wg.data_transforms(4)
    xp = torch.zeros(1, 10, 10, 3)
    with pytest.raises(ValueError, match="too small"):
        wg.conv3x3_padded(xp, 0, 10, 10, 1, torch.zeros(36, 3, 2), bb, aa, 4,
                          [(torch.zeros(1, 12, 12, 2), slice(None), None)])


def _aot(channels, seed=0):
    torch.manual_seed(seed)
    net = create("aot", channels=channels).eval()
    with torch.no_grad():   # scale like trained weights (default init makes the gate flat)
        for p in net.parameters():
            p.mul_(1.5)
    return net


@pytest.mark.parametrize("channels,b,h,w", [(32, 2, 44, 60), (32, 1, 36, 36), (16, 1, 64, 52)])
def test_aot_winograd_path_matches_direct(channels, b, h, w, one_thread):
    net = _aot(channels)
    x = torch.rand(b, 3, h, w) * 2 - 1
    mask = (torch.rand(b, 1, h, w) > 0.6).float()
    x = x * (1 - mask) + mask
    with torch.no_grad():
        net.fast_path = False
        direct = net(x, mask)
        plain = net.forward_plain(x, mask)
        net.fast_path = True
        fast = net(x, mask)
        net.winograd_m = 2
        fast2 = net(x, mask)
    assert torch.equal(direct, plain)            # the direct path is the official arithmetic
    for out in (fast, fast2):
        assert out.shape == direct.shape and out.is_contiguous()
        assert (out - direct).abs().max() <= 1e-4


def test_aot_winograd_cache_follows_the_weights(one_thread):
    """Changing the weights in place (optimizer step, load_state_dict) rebuilds the
    transformed weights; autograd, autocast and non-float32 inputs use the direct path."""
    net = _aot(32)
    x = torch.rand(1, 3, 48, 48) * 2 - 1
    mask = torch.zeros(1, 1, 48, 48)
    mask[..., 10:30, 12:40] = 1
    with torch.no_grad():
        first = net(x, mask)
        net.load_state_dict(_aot(32, seed=1).state_dict())
        second = net(x, mask)
        net.fast_path = False
        direct = net(x, mask)
        net.fast_path = True
    assert (second - first).abs().max() > 1e-2
    assert (second - direct).abs().max() <= 1e-4
    assert net._use_winograd(x) and not net._use_winograd(x.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not net._use_winograd(x)
    net.release_fast_cache()
    assert net._wino is None
