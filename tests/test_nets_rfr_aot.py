"""RFR-Net and AOT-GAN: official state_dict layout, conformance with the official code, the
engine-level composite, checkpoint loading and small variants.

Fixtures in tests/fixtures/rfr_aot/ (re-packed from the project's conformance set; each file's
``meta`` says where it came from): ``image`` uint8, ``hole`` (1 = fill), the official
``raw_out`` and ``comp_u8``, produced by the official code with the deterministic weights of
``inpaint_gui.engine.nets.detinit`` (rule "rfr_aot"). The official model inputs are rebuilt from
``image``/``hole`` exactly as the official scripts do (checked bit-exact against the originals).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from inpaint_gui.engine.nets import create
from inpaint_gui.engine.nets.detinit import deterministic_state_dict
from inpaint_gui.engine.registry import get_spec
from inpaint_gui.engine.weights import (ArchitectureMismatchError, CheckpointFormatError,
                                        WeightsError)

FIX = Path(__file__).parent / "fixtures" / "rfr_aot"
RFR_CASES = ["rfr_256_ff30_s1", "rfr_256_large55_s1", "rfr_256x384_ff30_s1"]
AOT_CASES = ["aot_256_large55_s1", "aot_320x512_ff30_s1"]


@pytest.fixture(autouse=True, scope="module")
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


def _keys(name):
    return json.loads((FIX / f"keys_{name}.json").read_text())


def _fixture(case):
    with np.load(FIX / f"{case}.npz", allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    d["meta"] = json.loads(str(d["meta"]))
    return d


_NETS: dict = {}


def _det_net(name):
    """The official-configuration network with the fixtures' deterministic weights (cached)."""
    if name not in _NETS:
        sd = deterministic_state_dict(_keys(name))
        net = create(name)
        net.load_state_dict(sd, strict=True)
        _NETS[name] = (net.eval(), sd)
    return _NETS[name]


def _official_inputs(name, image, hole):
    img = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255  # to_tensor
    h = torch.from_numpy(hole)[None, None].float()
    if name == "rfr":
        m = (1 - h).expand(-1, 3, -1, -1)                                 # 1 = known, 3 ch
        return img * m, m
    return (img * 2 - 1) * (1 - h) + h, h                                 # [-1,1], holes +1


def _first(out):
    return out[0] if isinstance(out, tuple) else out


# ----------------------------------------------------------------------------- layout

@pytest.mark.parametrize("name,kwargs,keyfile", [
    ("rfr", {}, "rfr"),
    ("rfr", {"variant": "smaller_hole"}, "rfr_smaller_hole"),
    ("rfr", {"kernel_size": 5}, "rfr_smaller_hole"),
    ("aot", {}, "aot"),
])
def test_state_dict_keys_and_shapes_are_official(name, kwargs, keyfile):
    own = create(name, **kwargs).state_dict()
    expected = _keys(keyfile)
    assert list(own) == [k for k, _s, _d in expected]
    for key, shape, dtype in expected:
        assert list(own[key].shape) == shape, key
        assert str(own[key].dtype).replace("torch.", "") == dtype, key
    create(name, **kwargs).load_state_dict(deterministic_state_dict(expected), strict=True)


@pytest.mark.parametrize("name", ["rfr", "aot"])
def test_detinit_checksums(name):
    ref = json.loads((FIX / f"detinit_checksums_{name}.json").read_text())["tensors"]
    sd = deterministic_state_dict(_keys(name))
    assert list(sd) == list(ref)
    for key, c in ref.items():
        t = sd[key].double()
        assert list(t.shape) == c["shape"], key
        assert abs(t.sum().item() - c["sum"]) <= 1e-6 * max(1.0, abs(c["abs_sum"])), key
        assert abs(t.abs().sum().item() - c["abs_sum"]) <= 1e-6 * max(1.0, c["abs_sum"]), key
        np.testing.assert_allclose(t.flatten()[:4].numpy(), c["first"], rtol=0, atol=1e-7)


# ----------------------------------------------------------------------------- conformance

@pytest.mark.parametrize("case", RFR_CASES + AOT_CASES)
def test_raw_output_matches_official(case):
    name = case.split("_")[0]
    fx = _fixture(case)
    net, _sd = _det_net(name)
    x, m = _official_inputs(name, fx["image"], fx["hole"])
    with torch.no_grad():
        out = _first(net(x, m)).numpy()
    ref = fx["raw_out"]
    tol = 1e-4 * max(1.0, float(np.abs(ref).max()))
    diff = float(np.abs(out - ref).max())
    assert out.shape == ref.shape
    assert diff <= tol, f"{case}: max abs diff {diff:.3g} > {tol:.3g}"


def test_rfr_official_formulation_matches_official():
    """The op-for-op official forward (the benchmark's same-run stand-in for the official code)
    reproduces the official output, with the all-ones mask convolutions and the score-volume
    attention that the other paths replace."""
    fx = _fixture("rfr_256x384_ff30_s1")
    net, _sd = _det_net("rfr")
    x, m = _official_inputs("rfr", fx["image"], fx["hole"])
    out = net.forward_official(x, m[:, :1])          # a 1-channel mask is widened as by forward
    ref = fx["raw_out"]
    assert float(np.abs(out.numpy() - ref).max()) <= 1e-5 * float(np.abs(ref).max())


@pytest.mark.parametrize("name,case", [("rfr", "rfr_256_ff30_s1"), ("aot", "aot_256_large55_s1")])
def test_training_path_matches_official(name, case):
    """The autograd (training) path computes the same function as the inference path."""
    fx = _fixture(case)
    net, _sd = _det_net(name)
    x, m = _official_inputs(name, fx["image"], fx["hole"])
    with torch.no_grad():
        out = net._forward_plain(x, m) if name == "rfr" else net.forward_plain(x, m)
    ref = fx["raw_out"]
    tol = 1e-4 * max(1.0, float(np.abs(ref).max()))
    assert float(np.abs(out.numpy() - ref).max()) <= tol


@pytest.mark.parametrize("case", ["rfr_256_ff30_s1", "rfr_256x384_ff30_s1"] + AOT_CASES)
def test_engine_composite_matches_official(case):
    from inpaint_gui.engine import inpaint
    name = case.split("_")[0]
    fx = _fixture(case)
    _net, sd = _det_net(name)
    out = inpaint(fx["image"], fx["hole"] * 255, model=name, weights=sd, strategy="original",
                  device="cpu")
    assert out.dtype == np.uint8 and out.shape == fx["image"].shape
    diff = np.abs(out.astype(int) - fx["comp_u8"].astype(int))
    assert diff.max() <= 1, f"{case}: composite differs by up to {diff.max()}"
    known = fx["hole"] == 0
    assert np.array_equal(out[known], fx["image"][known])      # known pixels byte-identical


# ----------------------------------------------------------------------------- behaviour


def test_rfr_mask_forms_and_repeatability(one_thread):
    torch.manual_seed(0)
    net = create("rfr", channels=16, max_channels=64, recurrences=3, kernel_size=5).eval()
    m1 = (torch.rand(1, 1, 64, 96) > 0.3).float()
    x = torch.rand(1, 3, 64, 96) * m1
    with torch.no_grad():
        a, none = net(x, m1.expand(-1, 3, -1, -1))
        b, _ = net(x, m1)                      # 1-channel mask = 3 identical channels
        c, _ = net(x, m1.expand(-1, 3, -1, -1))  # no attention state leaks between calls
    assert none is None
    assert torch.equal(a, b) and torch.equal(a, c)
    with pytest.raises(ValueError, match="multiples of 16"):
        net(torch.zeros(1, 3, 72, 64), torch.ones(1, 3, 72, 64))


@pytest.mark.parametrize("name,kwargs,size", [
    ("rfr", dict(channels=16, max_channels=64, recurrences=2, kernel_size=5), (64, 80)),
    ("aot", dict(channels=16, block_num=2), (64, 80)),
])
def test_small_variant_train_and_eval_paths(name, kwargs, size, one_thread):
    torch.manual_seed(1)
    net = create(name, **kwargs)
    h, w = size
    hole = (torch.rand(2, 1, h, w) > 0.7).float()
    img = torch.rand(2, 3, h, w)
    if name == "rfr":
        m = (1 - hole).expand(-1, 3, -1, -1)
        x = img * m
    else:
        m = hole
        x = (img * 2 - 1) * (1 - hole) + hole
    net.train()
    out = _first(net(x, m))
    assert out.shape == (2, 3, h, w)
    out.abs().mean().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    net.eval()
    with torch.no_grad():
        fast = _first(net(x, m))
        plain = net._forward_plain(x, m) if name == "rfr" else net.forward_plain(x, m)
    assert torch.isfinite(fast).all()
    scale = max(1.0, plain.abs().max().item())
    assert (fast - plain).abs().max().item() <= 1e-4 * scale


def test_aot_size_checks(one_thread):
    net = create("aot", channels=8, block_num=1).eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 36, 40), torch.zeros(1, 1, 36, 40)).shape == (1, 3, 36, 40)
        with pytest.raises(ValueError, match="multiples of 4"):
            net(torch.zeros(1, 3, 38, 40), torch.zeros(1, 1, 38, 40))
        with pytest.raises(ValueError, match=">= 36"):
            net(torch.zeros(1, 3, 32, 40), torch.zeros(1, 1, 32, 40))


def test_specs():
    rfr, aot = get_spec("rfr"), get_spec("aot")
    assert (rfr.task, rfr.native_size, rfr.pad_mod, rfr.square) == ("inpaint", 256, 16, False)
    assert (aot.task, aot.native_size, aot.pad_mod, aot.square) == ("inpaint", 512, 4, False)
    for spec in (rfr, aot):
        kinds = [ws.kind for ws in spec.weight_sets]
        assert kinds[-1] == "starter" and set(kinds[:-1]) == {"official", "imported"}
        starter, mine = spec.weight_sets[-1], spec.weight_set("mine")
        assert starter.options  # the starter's small-variant options
        # the user's own training of the starter variant loads with the same options
        assert mine.kind == "imported" and mine.options == starter.options


# ----------------------------------------------------------------------------- checkpoints

def _small_sd(name):
    kwargs = (dict(channels=16, max_channels=64, recurrences=2, kernel_size=5) if name == "rfr"
              else dict(channels=16, block_num=2))
    torch.manual_seed(2)
    net = create(name, **kwargs)
    return net.state_dict(), kwargs


def _load(name, weights, **kw):
    from inpaint_gui.engine.registry import get_adapter, get_spec
    return get_adapter(name).load(get_spec(name), weights=weights, device="cpu", **kw)


def _same_weights(model, sd):
    own = model.net.state_dict()
    return all(torch.equal(own[k], v.to(own[k].dtype)) for k, v in sd.items())


@pytest.mark.parametrize("name", ["rfr", "aot"])
def test_official_checkpoint_formats_load(name, tmp_path, one_thread):
    sd, _kw = _small_sd(name)  # same key names as the official network, smaller tensors
    if name == "rfr":  # utils/io.py:save_ckpt
        official = {"n_iter": 450000, "generator": sd,
                    "optimizer_G": {"state": {}, "param_groups": [{"lr": 2e-4, "params": [0, 1]}]}}
    else:              # trainer.save(): a bare state dict
        official = sd
    files = {
        "official.pth": official,
        "dataparallel.pth": {"module." + k: v for k, v in sd.items()},
        "wrapped.pth": {"state_dict": {"module." + k: v for k, v in sd.items()}, "epoch": 3},
    }
    for fname, obj in files.items():
        torch.save(obj, tmp_path / fname)
        model = _load(name, tmp_path / fname)
        assert _same_weights(model, sd), fname
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()}
    torch.save(half, tmp_path / "fp16.pth")
    model = _load(name, tmp_path / "fp16.pth")
    own = model.net.state_dict()
    assert own[next(iter(sd))].dtype == torch.float32
    assert _same_weights(model, half)


@pytest.mark.parametrize("name,other", [("rfr", "aot"), ("aot", "rfr")])
def test_wrong_architecture_is_a_clear_error(name, other, tmp_path):
    sd_other, _kw = _small_sd(other)
    torch.save(sd_other, tmp_path / "other.pt")
    title = {"rfr": "RFR-Net", "aot": "AOT-GAN"}
    with pytest.raises(ArchitectureMismatchError) as exc:
        _load(name, tmp_path / "other.pt")
    msg = str(exc.value)
    assert title[other] in msg and title[name] in msg and repr(other) in msg


def test_aot_discriminator_and_optimizer_files_are_rejected(tmp_path):
    disc = deterministic_state_dict(_keys("aot_discriminator"))
    torch.save(disc, tmp_path / "D0000000.pt")
    with pytest.raises(ArchitectureMismatchError, match="discriminator"):
        _load("aot", tmp_path / "D0000000.pt")
    torch.save({"optimG": {"state": {}, "param_groups": []},
                "optimD": {"state": {}, "param_groups": []}}, tmp_path / "O0000000.pt")
    with pytest.raises(CheckpointFormatError, match="optimizer"):
        _load("aot", tmp_path / "O0000000.pt")


@pytest.mark.parametrize("name", ["rfr", "aot"])
def test_broken_files_give_weights_errors(name, tmp_path, one_thread):
    sd, _kw = _small_sd(name)
    good = tmp_path / "good.pt"
    torch.save(sd, good)
    data = good.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.pt").write_text("not a checkpoint\n")
    torch.save({}, tmp_path / "empty.pt")
    torch.save({"n_iter": 5, "note": "nothing here"}, tmp_path / "no_tensors.pt")
    for fname in ("truncated.pt", "text.pt", "empty.pt", "no_tensors.pt", "missing.pt"):
        with pytest.raises(WeightsError):
            _load(name, tmp_path / fname)
    with pytest.raises(ArchitectureMismatchError):
        _load(name, {k: v for k, v in list(sd.items())[:-3]})


@pytest.mark.parametrize("name", ["rfr", "aot"])
def test_starter_files_load_with_detected_variant(name, tmp_path, one_thread):
    sd, kwargs = _small_sd(name)
    # our training format: arch + config + state dict
    torch.save({"arch": name, "config": kwargs, "state_dict": sd}, tmp_path / "starter.pt")
    model = _load(name, tmp_path / "starter.pt")
    assert _same_weights(model, sd)
    for key, value in kwargs.items():
        assert model.net.config[key] == (tuple(value) if isinstance(value, list) else value)
    # a bare state dict: the shapes give the variant; predict() runs end to end
    model = _load(name, sd)
    assert _same_weights(model, sd)
    rng = np.random.default_rng(0)
    img = rng.random((48, 64, 3), dtype=np.float32)
    mask = np.zeros((48, 64), np.float32)
    mask[10:30, 20:40] = 1
    out = model.predict(img, mask)
    assert out.shape == (48, 64, 3) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


def test_default_weights_missing_is_a_clear_error(monkeypatch, tmp_path):
    """No RFR file anywhere (empty user folder, no bundled starter): the error names the
    official file to download."""
    from inpaint_gui.engine import weights as W
    monkeypatch.setattr(W, "BUNDLED_DIR", tmp_path / "bundled")
    assert W.weight_status(get_spec("rfr"))[2] is None
    with pytest.raises(W.MissingWeightsError, match="checkpoint_celeba.pth"):
        _load("rfr", None)


# ----------------------------------------------------------------------------- fast kernels

def test_rfr_fast_kernels_match_torch(one_thread):
    """FFT, Winograd and phase convolutions of the inference path vs torch's own ops."""
    import torch.nn.functional as F
    from inpaint_gui.engine.nets import rfr as R
    from inpaint_gui.engine.nets.kernels import phase as P
    from inpaint_gui.engine.nets.kernels import winograd as W
    from inpaint_gui.engine.nets.kernels.fft import fft_conv2d, fft_weight_spectrum
    g = torch.Generator().manual_seed(3)
    for (n, c, o, h, w, k) in [(1, 8, 6, 37, 50, 7), (2, 5, 4, 30, 28, 5)]:
        x = torch.randn(n, c, h, w, generator=g)
        wt = torch.randn(o, c, k, k, generator=g)
        ref = F.conv2d(x, wt, padding=k // 2)
        out = fft_conv2d(x, fft_weight_spectrum(wt, 32), k, k // 2, 32)
        assert (out - ref).abs().max() <= 1e-5 * ref.abs().max()
    for d, (h, w) in [(1, (9, 14)), (2, (16, 10)), (2, (15, 7))]:
        x = torch.randn(2, 12, h, w, generator=g)
        wt = torch.randn(7, 12, 3, 3, generator=g)
        ref = F.conv2d(x, wt, padding=d, dilation=d)
        bias = torch.randn(7, generator=g)
        out = R.conv3x3_winograd_banded(x, W.weight_transform(wt, R.WINOGRAD_M), bias, d)
        ref = ref + bias.view(1, -1, 1, 1)
        assert (out - ref).abs().max() <= 3e-5 * ref.abs().max()
    for (h, w) in [(4, 6), (5, 3)]:
        x = torch.randn(2, 10, h, w, generator=g)
        wt = torch.randn(10, 6, 4, 4, generator=g)
        ref = F.conv_transpose2d(x, wt, None, 2, 1)
        out = P.deconv_phase(x, P.phase_weight(wt), None)
        assert (out - ref).abs().max() <= 1e-5 * ref.abs().max()
        bias = torch.randn(6, generator=g)
        ref = ref + bias.view(1, -1, 1, 1)
        for m in (2, 4):
            u = W.weight_transform(P.phase_weight(wt), m)
            out = P.deconv_phase_winograd(x, u, bias, m)
            assert (out - ref).abs().max() <= 1e-5 * ref.abs().max()
            out = P.deconv_phases_winograd(x, P.phases_winograd_weights(wt, m), bias, m)
            assert out.shape == ref.shape and (out - ref).abs().max() <= 1e-5 * ref.abs().max()


def test_rfr_attention_chunks_and_state(one_thread, monkeypatch):
    """Chunked inference attention == one block == the autograd formulation, step after step."""
    from inpaint_gui.engine.nets.rfr import KnowledgeConsistentAttention
    torch.manual_seed(4)
    kca = KnowledgeConsistentAttention()
    with torch.no_grad():
        kca.ratio.fill_(0.7)
    feats = [torch.randn(2, 16, 6, 10) for _ in range(3)]
    masks = [(torch.rand(2, 1, 12, 20) > p).float() for p in (0.6, 0.3, 0.0)]

    def run(chunk, grad):
        monkeypatch.setattr(KnowledgeConsistentAttention, "chunk_elems", chunk)
        state, outs = None, []
        for f, m in zip(feats, masks):
            with torch.set_grad_enabled(grad):
                f = f.clone().requires_grad_(grad)
                out, state = kca(f, m, state)
            outs.append(out.detach())
            state = (state[0].detach(), state[1])
        return outs

    ref = run(1 << 23, True)
    for chunk in (1 << 23, 60 * 7):
        for a, b in zip(ref, run(chunk, False)):
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)


def test_rfr_attention_keeps_subnormals_out(one_thread):
    """Widely spread scores (noisy features): the inference attention stores no subnormal
    weights (they halve the speed of the products) and still equals the autograd formulation."""
    from inpaint_gui.engine.nets.rfr import KnowledgeConsistentAttention
    torch.manual_seed(5)
    kca = KnowledgeConsistentAttention()
    feats = [torch.randn(1, 32, 8, 8) * 40 for _ in range(2)]
    mask = (torch.rand(1, 1, 8, 8) > 0.5).float()
    tiny = torch.finfo(torch.float32).tiny

    ref_state, state = None, None
    for f in feats:
        with torch.enable_grad():
            ref, ref_state = kca(f.clone().requires_grad_(True), mask, ref_state)
        ref_state = (ref_state[0].detach(), ref_state[1])
        with torch.no_grad():
            out, state = kca(f, mask, state)
        assert ((ref_state[0] > 0) & (ref_state[0] < tiny)).any()   # the official form has them
        att = state[0]
        assert not ((att > 0) & (att < tiny)).any()
        assert torch.allclose(out, ref.detach(), rtol=1e-6, atol=1e-7)
