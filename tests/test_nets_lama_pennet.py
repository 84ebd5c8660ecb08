"""LaMa and PEN-Net: official keys, conformance with the official code's outputs, the engine
composite, the fast inference paths, and safe loading of the official weight containers."""
import json
import os
import subprocess
import sys
import types
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from inpaint_gui.engine import inpaint, load_model, nets
from inpaint_gui.engine.models import lama as lama_adapter
from inpaint_gui.engine.models import pennet as pennet_adapter
from inpaint_gui.engine.nets.detinit import deterministic_state_dict
from inpaint_gui.engine.registry import get_adapter, get_spec
from inpaint_gui.engine.safe_unpickle import Inert, named_tensors, safe_load
from inpaint_gui.engine.weights import (ArchitectureMismatchError, MissingWeightsError,
                                        WeightsError, weight_status)

FIX = Path(__file__).parent / "fixtures" / "lama_pennet"
TOL = 1e-4


def _fixture(name):
    with np.load(FIX / name, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    d["meta"] = json.loads(str(d["meta"]))
    return d


def _keys(name):
    with open(FIX / f"keys_{name}.json") as f:
        return json.load(f)["keys"]


def _lama_input(image_u8, mask_u8):
    """Official predict.py: img/255, mask > 0, symmetric pad bottom/right to 8, cat."""
    img = image_u8.astype(np.float32) / 255
    m = (mask_u8 > 0).astype(np.float32)
    h, w = m.shape
    ph, pw = -h % 8, -w % 8
    img = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="symmetric")
    m = np.pad(m, ((0, ph), (0, pw)), mode="symmetric")
    x = np.concatenate([(img * (1 - m[..., None])).transpose(2, 0, 1), m[None]], 0)[None]
    return torch.from_numpy(np.ascontiguousarray(x))


def _pennet_input(image_u8, mask_u8):
    img = image_u8.astype(np.float32) / 255 * 2 - 1
    m = (mask_u8 > 0).astype(np.float32)
    x = np.concatenate([(img * (1 - m[..., None]) + m[..., None]).transpose(2, 0, 1), m[None]], 0)[None]
    return torch.from_numpy(np.ascontiguousarray(x))


@pytest.fixture(scope="module")
def lama_sd():
    return deterministic_state_dict(_keys("lama"), gain=0.75, rule="v2")


@pytest.fixture(scope="module")
def pennet_sd():
    return deterministic_state_dict(_keys("pennet"), gain=1.0, rule="v2")


@pytest.fixture(scope="module")
def lama_net(lama_sd):
    net = nets.create("lama")
    net.load_state_dict(lama_sd, strict=True)
    return net.eval()


@pytest.fixture(scope="module")
def pennet_net(pennet_sd):
    net = nets.create("pennet")
    net.load_state_dict(pennet_sd, strict=True)
    return net.eval()


# ----------------------------------------------------------------------------- keys and shapes

@pytest.mark.parametrize("name", ["lama", "pennet"])
def test_official_keys_and_shapes(name):
    net = nets.create(name)
    own = [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in net.state_dict().items()]
    assert own == _keys(name)
    n_params = sum(p.numel() for p in net.parameters())
    assert n_params == {"lama": 50_975_875, "pennet": 10_231_538}[name]


def test_fixture_meta_matches_detinit_rule():
    assert "gain=0.75" in _fixture("lama_pad_250x330.npz")["meta"]["weights"]
    assert "gain=0.75" in _fixture("lama_384x640.npz")["meta"]["weights"]
    assert "gain=1.0" in _fixture("pennet_256x256.npz")["meta"]["weights"]


# ----------------------------------------------------------------------------- raw conformance

@pytest.mark.parametrize("fname", ["lama_384x640.npz", "lama_pad_250x330.npz"])
def test_lama_raw_output_matches_official(lama_net, fname):
    fx = _fixture(fname)
    x = _lama_input(fx["image_u8"], fx["mask_u8"])
    assert x.shape[-2:] == fx["output_raw"].shape[-2:]
    with torch.inference_mode():
        out = lama_net(x)
    assert out.shape == fx["output_raw"].shape
    assert float((out - torch.from_numpy(fx["output_raw"])).abs().max()) <= TOL


def test_pennet_raw_output_and_pyramid_match_official(pennet_net):
    fx = _fixture("pennet_256x256.npz")
    x = _pennet_input(fx["image_u8"], fx["mask_u8"])
    for fast in (True, False):
        pennet_net.fast_path = fast
        with torch.inference_mode():
            pyramid, out = pennet_net(x, x[:, 3:4])
        assert float((out - torch.from_numpy(fx["output_raw"])).abs().max()) <= TOL
        for i, p in enumerate(pyramid, start=1):
            ref = torch.from_numpy(fx[f"pyramid_{i}"])
            assert p.shape == ref.shape
            assert float((p - ref).abs().max()) <= TOL
    pennet_net.fast_path = True


# ----------------------------------------------------------------------------- engine composite

@pytest.mark.parametrize("fname", ["lama_384x640.npz", "lama_pad_250x330.npz"])
def test_lama_engine_composite(lama_sd, fname):
    fx = _fixture(fname)
    out = inpaint(fx["image_u8"], fx["mask_u8"], model="lama", weights=lama_sd,
                  strategy="original", device="cpu")
    diff = np.abs(out.astype(np.int16) - fx["result_u8"].astype(np.int16))
    assert out.shape == fx["result_u8"].shape and int(diff.max()) <= 1
    keep = fx["mask_u8"] == 0
    assert np.array_equal(out[keep], fx["image_u8"][keep])


def test_pennet_engine_composite(pennet_sd):
    fx = _fixture("pennet_256x256.npz")
    out = inpaint(fx["image_u8"], fx["mask_u8"], model="pennet", weights=pennet_sd,
                  strategy="original", device="cpu")
    diff = np.abs(out.astype(np.int16) - fx["result_u8"].astype(np.int16))
    assert int(diff.max()) <= 1


def test_pennet_engine_non_square_equals_network(pennet_net, pennet_sd):
    """The network runs on any multiple of 64; the engine must not pad such a window."""
    fx = _fixture("pennet_256x256.npz")
    img, msk = fx["image_u8"][:192, :128].copy(), fx["mask_u8"][:192, :128].copy()
    msk[60:120, 30:90] = 255
    x = _pennet_input(img, msk)
    pennet_net.fast_path = False
    with torch.no_grad():
        out = pennet_net(x, x[:, 3:4])[1][0].permute(1, 2, 0).numpy()
    pennet_net.fast_path = True
    comp = np.where(msk[..., None] > 0, (out + 1) / 2, img / 255.0)
    ref = np.clip(np.trunc(comp * 255), 0, 255)
    res = inpaint(img, msk, model="pennet", weights=pennet_sd, strategy="original", device="cpu")
    assert int(np.abs(res.astype(np.int16) - ref.astype(np.int16)).max()) <= 1


def test_lama_adapter_pads_like_predict_py(lama_sd):
    """Called directly with a size that is not a multiple of 8, the adapter pads symmetric
    bottom/right itself (official) and crops back."""
    fx = _fixture("lama_pad_250x330.npz")
    model = load_model("lama", weights=lama_sd, device="cpu")  # the engine tests' cached model
    assert isinstance(model, lama_adapter.LaMaModel)
    img = fx["image_u8"].astype(np.float32) / 255
    pred = model.predict(img, (fx["mask_u8"] > 0).astype(np.float32))
    assert pred.shape == img.shape
    ref = fx["output_raw"][0].transpose(1, 2, 0)[:250, :330]
    assert float(np.abs(pred - ref).max()) <= TOL


# ----------------------------------------------------------------------------- fast paths

def _small_lama(**kw):
    net = nets.create("lama", ngf=8, n_blocks=2, **kw).eval()
    net.load_state_dict(deterministic_state_dict(net, gain=0.75, rule="v2"))
    return net


@pytest.mark.parametrize("hw,wino", [((64, 72), 4), ((88, 40), 4), ((48, 48), 2), ((40, 56), 2)])
def test_lama_fast_path_equals_module_path(hw, wino):  # odd bottleneck sides and partial tiles
    net = _small_lama()
    net.winograd_m = wino
    x = torch.rand(2, 4, *hw, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        net.fast_path = False
        ref = net(x)
        net.fast_path = True
        fast = net(x)
    assert fast.shape == ref.shape == (2, 3, *hw)
    assert float((fast - ref).abs().max()) < 1e-5


def test_lama_fast_path_follows_weight_changes():
    net = _small_lama()
    x = torch.rand(1, 4, 32, 32)
    with torch.no_grad():
        a = net(x)
        net.model[-2].bias.add_(0.5)
        b = net(x)
        net.fast_path = False
        c = net(x)
    assert not torch.allclose(a, b)
    assert float((b - c).abs().max()) < 1e-5


def test_lama_non_multiple_of_8_grows_like_official():
    net = _small_lama()
    with torch.no_grad():
        assert net(torch.rand(1, 4, 36, 36)).shape[-2:] == (40, 40)


def test_lama_trains():
    net = _small_lama().train()
    x = torch.rand(2, 4, 32, 32)
    net(x).mean().backward()
    assert net.model[1].ffc.convl2l.weight.grad is not None


@pytest.mark.parametrize("kind", ["blobs", "none", "all", "edge"])
def test_pennet_fast_attention_equals_official(kind):
    net = nets.create("pennet", cnum=8).eval()
    net.load_state_dict(deterministic_state_dict(net, rule="v2"))
    g = torch.Generator().manual_seed(3)
    h, w = 128, 192
    img = torch.rand(2, 3, h, w, generator=g) * 2 - 1
    if kind == "blobs":
        m = torch.nn.functional.interpolate((torch.rand(2, 1, 8, 12, generator=g) > 0.6).float(), (h, w))
    elif kind == "none":
        m = torch.zeros(2, 1, h, w)
    elif kind == "all":
        m = torch.ones(2, 1, h, w)
    else:
        m = torch.zeros(2, 1, h, w)
        m[0, :, 30:90, 40:120] = 1
        m[1, :, :, :7] = 1
    x = torch.cat([img * (1 - m) + m, m], 1)
    with torch.inference_mode():
        net.fast_path = False
        ref_p, ref = net(x, m)
        net.fast_path = True
        p, out = net(x, m)
    assert float((out - ref).abs().max()) < 2e-5
    assert all(float((a - b).abs().max()) < 2e-5 for a, b in zip(p, ref_p))


def test_pennet_rejects_bad_sides():
    net = nets.create("pennet", cnum=8).eval()
    with pytest.raises(ValueError, match="multiples of 64"):
        net(torch.zeros(1, 4, 160, 160), torch.zeros(1, 1, 160, 160))


# ----------------------------------------------------------------------------- specs

def test_specs():
    s = get_spec("lama")
    assert (s.task, s.pad_mod, s.square, s.needs_weights) == ("inpaint", 8, False, True)
    assert s.default_strategy in ("crop", "resize")
    assert s.weight_sets[0].kind == "official" and s.weight_sets[0].filename == "big-lama.ckpt"
    assert {w.filename for w in s.weight_sets} == {"big-lama.ckpt", "big-lama.pt"}
    assert all(w.kind == "official" for w in s.weight_sets)
    p = get_spec("pennet")
    assert (p.pad_mod, p.native_size, p.needs_weights) == (64, 256, True)
    assert p.max_size and p.max_size <= 512
    assert all(w.kind == "official" for w in p.weight_sets)
    for spec in (s, p):
        assert weight_status(spec)[0] == "missing"
        with pytest.raises(MissingWeightsError):
            get_adapter(spec).load(spec)
        for w in spec.weight_sets:
            assert w.card and (Path(__file__).parents[1] / w.card).is_file()


def test_adapters_do_not_import_torch():
    code = ("import sys, inpaint_gui.engine.models.lama, inpaint_gui.engine.models.pennet;"
            "print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       cwd=Path(__file__).parents[1])
    assert r.stdout.strip() == "False", r.stderr


# ----------------------------------------------------------------------------- containers

class _Payload:
    """Pickles as ``os.mkdir(path)``: a normal unpickler would create the directory."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def _fake_module(name="fake_omegaconf_for_test"):
    mod = types.ModuleType(name)

    class DictConfig:
        def __init__(self, content):
            self._content = content

        def __setstate__(self, state):  # pragma: no cover - must never run when loading
            raise AssertionError("placeholder state must not run user code")

    DictConfig.__module__ = name
    DictConfig.__qualname__ = "DictConfig"
    mod.DictConfig = DictConfig
    return mod


def _save_with_unknown_classes(obj_factory, path, **save_kw):
    mod = _fake_module()
    sys.modules[mod.__name__] = mod
    try:
        torch.save(obj_factory(mod), path, **save_kw)
    finally:
        del sys.modules[mod.__name__]


def _lightning_ckpt(gen_sd, marker, mod):
    sd = OrderedDict(("generator." + k, v) for k, v in gen_sd.items())
    sd["discriminator.model0.0.weight"] = torch.zeros(4, 3, 4, 4)
    sd["val_evaluator.scores.ssim.gauss"] = torch.ones(11)
    return {"epoch": 40, "global_step": 1000, "pytorch-lightning_version": "1.2.9",
            "state_dict": sd, "hyper_parameters": mod.DictConfig({"generator": {"kind": "ffc_resnet"}}),
            "callbacks": {"ModelCheckpoint": _Payload(str(marker))}, "lr_schedulers": []}


def test_lightning_checkpoint_loads_without_running_code(tmp_path):
    src = _small_lama()
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "big-lama.ckpt"
    _save_with_unknown_classes(lambda mod: _lightning_ckpt(src.state_dict(), marker, mod), ckpt)
    with pytest.raises(Exception):  # the reason a restricted unpickler is needed at all
        torch.load(ckpt, map_location="cpu", weights_only=True)
    obj = safe_load(ckpt)
    assert not marker.exists()
    assert isinstance(obj["hyper_parameters"], Inert)
    assert obj["hyper_parameters"].global_name == "fake_omegaconf_for_test.DictConfig"
    assert isinstance(obj["callbacks"]["ModelCheckpoint"], Inert)
    model = lama_adapter.LaMa.load(weights=str(ckpt), ngf=8, n_blocks=2)
    assert not marker.exists()
    x = torch.rand(1, 4, 32, 40)
    with torch.no_grad():
        assert torch.equal(model.net(x), src(x))


def test_lightning_checkpoint_found_by_filename(tmp_path, _isolated_user_models):
    src = _small_lama()
    path = Path(_isolated_user_models) / "big-lama.ckpt"
    torch.save({"state_dict": OrderedDict(("generator." + k, v) for k, v in src.state_dict().items())}, path)
    assert weight_status(get_spec("lama"))[0] == "official"
    model = lama_adapter.LaMa.load(ngf=8, n_blocks=2)
    assert torch.equal(model.net.model[1].ffc.convl2l.weight, src.model[1].ffc.convl2l.weight)


class _JITWrapper(torch.nn.Module):
    """Like lama-cleaner's export: a module holding the generator, called with (image, mask)."""

    def __init__(self, gen):
        super().__init__()
        self.generator = gen

    def forward(self, image, mask):
        return self.generator(torch.cat([image * (1 - mask), mask], 1))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("wrapped", [True, False])
def test_torchscript_weights(tmp_path, wrapped):
    src = _small_lama()
    src.fast_path = False
    for p in src.parameters():
        p.requires_grad_(False)
    mod = _JITWrapper(src) if wrapped else src
    ex = (torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32)) if wrapped else (torch.rand(1, 4, 32, 32),)
    traced = torch.jit.trace(mod, ex, check_trace=False)
    path = tmp_path / "big-lama.pt"
    traced.save(str(path))
    names = named_tensors(safe_load(path))
    prefix = "generator." if wrapped else ""
    assert prefix + "model.5.conv1.ffc.convg2g.fu.conv_layer.weight" in names
    model = lama_adapter.LaMa.load(weights=str(path), ngf=8, n_blocks=2)
    for k, v in src.state_dict().items():
        assert torch.equal(model.net.state_dict()[k], v), k


@pytest.mark.parametrize("legacy", [False, True])
def test_pennet_netg_container(tmp_path, legacy):
    src = nets.create("pennet", cnum=8).eval()
    src.load_state_dict(deterministic_state_dict(src, rule="v2"))
    path = tmp_path / "gen_00030.pth"
    torch.save({"netG": src.state_dict()}, path, _use_new_zipfile_serialization=not legacy)
    model = pennet_adapter.PENNet.load(weights=str(path), cnum=8)
    for k, v in src.state_dict().items():
        assert torch.equal(model.net.state_dict()[k], v)


def test_legacy_format_with_unknown_objects(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "old.pth"
    sd = OrderedDict(a=torch.arange(6, dtype=torch.float32).view(2, 3), b=torch.ones(2, dtype=torch.int64))
    _save_with_unknown_classes(lambda mod: {"netG": sd, "cfg": mod.DictConfig({"x": 1}),
                                            "cb": _Payload(str(marker))},
                               path, _use_new_zipfile_serialization=False)
    obj = safe_load(path)
    assert not marker.exists()
    assert torch.equal(obj["netG"]["a"], sd["a"]) and torch.equal(obj["netG"]["b"], sd["b"])
    assert isinstance(obj["cfg"], Inert)


def test_dangerous_globals_stay_inert(tmp_path):
    """A hand-written pickle calling builtins.exec / os.system: nothing runs."""
    marker = tmp_path / "pwned"
    payload = (b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01cbuiltins\nexec\nq\x02X"
               + len(f"open({str(marker)!r},'w')".encode()).to_bytes(4, "little")
               + f"open({str(marker)!r},'w')".encode()
               + b"\x85R" + b"X\x01\x00\x00\x00bcos\nsystem\nX\x04\x00\x00\x00true\x85Ru.")
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", payload)
        zf.writestr("archive/version", "3\n")
    obj = safe_load(path)
    assert not marker.exists()
    assert isinstance(obj["a"], Inert) and obj["a"].global_name == "builtins.exec"
    assert isinstance(obj["b"], Inert)
    with pytest.raises(WeightsError):
        lama_adapter.LaMa.load(weights=str(path))


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"\x80\x02K\x01.", b"PK\x03\x04garbage"])
def test_bad_files_raise_weights_error(tmp_path, content):
    path = tmp_path / "big-lama.ckpt"
    path.write_bytes(content)
    for loader in (lama_adapter.LaMa.load, pennet_adapter.PENNet.load):
        with pytest.raises(WeightsError) as info:
            loader(weights=str(path))
        assert str(info.value)


def test_truncated_and_mismatched_files(tmp_path):
    src = nets.create("pennet", cnum=8)
    good = tmp_path / "good.pth"
    torch.save({"netG": src.state_dict()}, good)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(WeightsError):
        pennet_adapter.PENNet.load(weights=str(cut), cnum=8)
    with pytest.raises(ArchitectureMismatchError):
        lama_adapter.LaMa.load(weights=str(good))           # PEN-Net weights into LaMa
    with pytest.raises(ArchitectureMismatchError):
        pennet_adapter.PENNet.load(weights=str(good))         # cnum 8 weights into the official size
    with pytest.raises(MissingWeightsError):
        lama_adapter.LaMa.load(weights=str(tmp_path / "nope.ckpt"))
