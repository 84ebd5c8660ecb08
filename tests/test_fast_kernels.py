"""One switch for the fast kernels (engine/nets/kernels): every network's ``fast_path`` and
``INPAINT_FAST_KERNELS=0``; per network, the fast path against the reference path."""
from __future__ import annotations

import pytest
import torch

from inpaint_gui.engine import nets
from inpaint_gui.engine.nets import pennet as pennet_mod
from inpaint_gui.engine.nets.detinit import deterministic_state_dict
from inpaint_gui.engine.nets.kernels import winograd as wg

# name -> (small variant, rule of the deterministic weights, input size, tolerance relative
# to the largest output value). AOT's gate divides by a standard deviation and multiplies
# by 10, which amplifies rounding (1e-4 is the conformance tolerance for all of them).
CASES = {
    "aot": (dict(channels=16, block_num=2), "rfr_aot", (64, 80), 1e-4),
    "lama": (dict(ngf=8, n_blocks=2), "v2", (64, 72), 1e-5),
    "pennet": (dict(cnum=8), "v2", (128, 192), 2e-5),
    "rfr": (dict(channels=16, max_channels=64, recurrences=2), "rfr_aot", (64, 96), 1e-4),
}


def _net(name):
    kwargs, rule, _size, _tol = CASES[name]
    net = nets.create(name, **kwargs).eval()
    gain = 0.75 if name == "lama" else 1.0
    net.load_state_dict(deterministic_state_dict(net, gain=gain, rule=rule))
    return net


def _inputs(name):
    h, w = CASES[name][2]
    g = torch.Generator().manual_seed(11)
    img = torch.rand(2, 3, h, w, generator=g)
    hole = torch.zeros(2, 1, h, w)
    hole[0, :, h // 4:h // 2, w // 3:2 * w // 3] = 1
    hole[1, :, h // 2:, :w // 4] = 1
    if name == "rfr":                         # [0, 1], holes 0; mask 1 = known
        return img * (1 - hole), (1 - hole).expand(-1, 3, -1, -1)
    if name == "lama":                        # cat(img * (1 - m), m)
        return (torch.cat([img * (1 - hole), hole], 1),)
    x = (img * 2 - 1) * (1 - hole) + hole     # AOT, PEN-Net: [-1, 1], holes +1
    if name == "pennet":
        return torch.cat([x, hole], 1), hole
    return x, hole


def _output(name, out):
    if name == "pennet":
        return out[1]
    if name == "rfr":
        return out[0]
    return out


def _fast_kernel_calls(name, monkeypatch):
    """Counts the calls into the network's fast kernel while it runs."""
    calls = []
    if name == "pennet":
        real = pennet_mod.attend_usable_patches
        monkeypatch.setattr(pennet_mod, "attend_usable_patches",
                            lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    else:
        real = wg.conv3x3_multi
        monkeypatch.setattr(wg, "conv3x3_multi",
                            lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    return calls


@pytest.mark.parametrize("name", sorted(CASES))
def test_fast_path_matches_the_reference_path(name, one_thread, monkeypatch):
    net, args = _net(name), _inputs(name)
    assert net.fast_path is True                          # the default
    calls = _fast_kernel_calls(name, monkeypatch)
    with torch.no_grad():
        fast = _output(name, net(*args))
        used = len(calls)
        net.fast_path = False
        ref = _output(name, net(*args))
    assert used > 0 and len(calls) == used               # the switch picks the kernels
    assert fast.shape == ref.shape and torch.isfinite(fast).all()
    tol = CASES[name][3] * max(1.0, float(ref.abs().max()))
    assert float((fast - ref).abs().max()) <= tol


@pytest.mark.parametrize("name", sorted(CASES))
def test_environment_turns_every_fast_path_off(name, one_thread, monkeypatch):
    net, args = _net(name), _inputs(name)
    with torch.no_grad():
        net.fast_path = False
        ref = _output(name, net(*args))
        net.fast_path = True
        calls = _fast_kernel_calls(name, monkeypatch)
        monkeypatch.setenv("INPAINT_FAST_KERNELS", "0")
        off = _output(name, net(*args))
    assert calls == [] and torch.equal(off, ref)


def test_switch_values(monkeypatch):
    from inpaint_gui.engine.nets import kernels
    monkeypatch.delenv(kernels.ENV_VAR, raising=False)
    assert kernels.enabled()
    for v, on in (("0", False), ("off", False), ("False", False), ("1", True), ("yes", True)):
        monkeypatch.setenv(kernels.ENV_VAR, v)
        assert kernels.enabled() is on
    monkeypatch.delenv(kernels.ENV_VAR)
    aot = _net("aot")
    aot.winograd_m = 0                                    # no longer a way to switch off
    with torch.no_grad(), pytest.raises(ValueError, match="fast_path"):
        aot(*_inputs("aot"))
