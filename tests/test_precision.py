"""Network precision: fp32 is the reference everywhere; bf16 runs on CUDA and on CPUs with native
bf16 (AVX512-BF16 / AMX), where it is faster and slightly different; anything else runs fp32."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from inpaint_gui.engine import devices
from inpaint_gui.engine.nets import create
from inpaint_gui.engine import inpaint
from inpaint_gui.engine.registry import get_adapter, get_spec

# small variants of every network (same code paths as the official sizes)
TINY = {"rfr": dict(channels=16, max_channels=64, recurrences=3, kernel_size=5),
        "aot": dict(channels=8, block_num=1), "srn": dict(cnum=8),
        "lama": dict(ngf=8, n_blocks=2), "pennet": dict(cnum=8)}
SIDE = {"rfr": 64, "aot": 64, "srn": 64, "lama": 64, "pennet": 128}


@pytest.fixture(autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


def test_effective_precision_rules(monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: True)
    assert devices.effective_precision("cpu", "bf16") == "bf16"
    assert devices.effective_precision("cpu", "fp16") == "fp32"      # no fast CPU fp16
    assert devices.effective_precision("cpu", "fp32") == "fp32"
    assert devices.effective_precision("cuda", "fp16") == "fp16"
    assert devices.effective_precision("cuda:0", "bf16") == "bf16"
    assert devices.effective_precision("mps", "bf16") == "fp32"
    with devices.autocast_context("cpu", "bf16"):
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: False)  # would be emulated
    assert devices.effective_precision("cpu", "bf16") == "fp32"
    with devices.autocast_context("cpu", "bf16"):
        assert not torch.is_autocast_enabled("cpu")


def _tiny_model(name: str, precision: str):
    torch.manual_seed(0)
    net = create(name, **TINY[name])
    spec = get_spec(name)
    return get_adapter(spec).load(spec, weights=net.state_dict(), device="cpu",
                                precision=precision, **TINY[name])


def _photo_and_mask(side: int):
    yy, xx = np.mgrid[0:side, 0:side]
    img = np.stack([xx * 255 // side, yy * 255 // side, (xx + yy) * 127 // side], -1)
    mask = np.zeros((side, side), np.uint8)
    mask[side // 4: side // 2, side // 3: 3 * side // 4] = 255
    return img.astype(np.uint8), mask


@pytest.mark.parametrize("name", sorted(TINY))
def test_every_network_runs_in_cpu_bf16(name, monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: True)  # emulated if absent
    img, mask = _photo_and_mask(SIDE[name])
    img = img.astype(np.float32) / 255.0                  # predict(): RGB float [0, 1]
    if name == "srn":  # an outpainting network: extend the right side
        mask[:] = 0
        mask[:, 3 * SIDE[name] // 4:] = 255
    ref = _tiny_model(name, "fp32").predict(img, mask)
    out = _tiny_model(name, "bf16").predict(img, mask)
    assert out.dtype == np.float32 and out.shape == ref.shape
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    diff = np.abs(out - ref)
    assert diff.max() > 0, "bf16 was requested but the forward ran in fp32"
    assert diff.mean() < 0.02, diff.mean()             # same network, rounding differences


def test_cpu_without_native_bf16_gives_the_fp32_result(monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: False)
    img, mask = _photo_and_mask(64)
    img = img.astype(np.float32) / 255.0
    ref = _tiny_model("aot", "fp32").predict(img, mask)
    np.testing.assert_array_equal(_tiny_model("aot", "bf16").predict(img, mask), ref)


def test_bf16_fill_keeps_unmasked_pixels_byte_identical(monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: True)
    torch.manual_seed(0)
    state = create("aot", **TINY["aot"]).state_dict()
    img, mask = _photo_and_mask(96)
    out = inpaint(img, mask, model="aot", weights=state, device="cpu", precision="bf16")
    assert out.dtype == np.uint8 and out.shape == img.shape
    np.testing.assert_array_equal(out[mask == 0], img[mask == 0])
    assert np.abs(out[mask > 0].astype(int) - img[mask > 0]).max() > 0
