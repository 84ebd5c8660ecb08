"""The run service: the one road from a request to a result (Qt-free)."""
import warnings

import numpy as np
import pytest
import torch

import fakemodels as F
from inpaint_gui.engine import devices, registry, weights
from inpaint_gui.engine.model_cache import ModelCache
from inpaint_gui.engine.nets import srn as srn_net
from inpaint_gui.engine.service import (OutOfMemoryError, RunRequest, RunService, RunWarning,
                                        check_model, oom_plan)
from inpaint_gui.engine.pipeline import HDStrategy


def _photo(h=256, w=256, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _hole(h=256, w=256):
    """A hole over most of the image (256 px: rows 40-220, columns 30-230)."""
    m = np.zeros((h, w), np.uint8)
    m[h * 5 // 32:h * 55 // 64, w * 15 // 128:w * 115 // 128] = 255
    return m


def test_oom_plan_shrinks_the_work_then_moves_to_the_cpu():
    plan = oom_plan(HDStrategy("crop", resize_limit=1280), 512, "cuda")
    assert [p[1].name for p in plan] == ["tile", "resize", "crop"]
    assert plan[0][1].tile_size == 512 and plan[1][1].resize_limit == 512 and plan[2][0] == "cpu"
    assert [p[0] for p in oom_plan(HDStrategy("tile", tile_size=128), 512, "cpu")] == ["cpu"]


def test_oom_inside_a_forward_is_retried_once_and_reported(monkeypatch, tmp_path):
    """No nested retries: the network runs out of memory on the whole image, the one plan
    retries in tiles; the note reaches ``notice``, the progress and the result."""
    nets = []
    F.register(monkeypatch, F.oom_adapter(max_pixels=150 * 150, log=nets))
    service = RunService(ModelCache())
    events, heard = [], []
    res = service.run(RunRequest(_photo(), _hole(), model="oomnet",
                                 weights=F.save_oom_weights(tmp_path / "w.pt"), device="cpu"),
                      progress=events.append, notice=heard.append)
    assert res.notes == ("oomnet: out of memory on cpu (crop); retrying with 128 px tiles",)
    assert heard == list(res.notes)
    assert [e.stage for e in events].count("out of memory: retrying with 128 px tiles") == 1
    assert [len(n.inputs) for n in nets] == [1, 4]  # the whole image once, then 2x2 tiles
    assert nets[0].inputs[0] == ("cpu", 256, 256)
    # without a notice callback the note is a warning
    service.cache.clear()
    with pytest.warns(RunWarning, match="retrying with 128 px tiles"):
        service.run(RunRequest(_photo(), _hole(), model="oomnet",
                               weights=str(tmp_path / "w.pt"), device="cpu"))


def test_out_of_memory_everywhere_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(devices, "available_devices", lambda: ["cuda", "cpu"])
    F.register(monkeypatch, F.oom_adapter(max_pixels=0))
    service = RunService(ModelCache())
    heard = []
    with pytest.raises(OutOfMemoryError) as exc:
        service.run(RunRequest(_photo(64, 64), _hole(64, 64), model="oomnet", device="cuda",
                               weights=F.save_oom_weights(tmp_path / "w.pt")),
                    notice=heard.append)
    assert str(exc.value) == ("oomnet: out of memory even after retrying with 128 px tiles, "
                              "retrying downscaled to 512 px, retrying on the CPU; try a "
                              "smaller tile size or the CPU")
    assert len(heard) == 3 and devices.is_out_of_memory(exc.value)
    assert len(service.cache) == 0  # every failed device's models were dropped


def _small_srn_weights():
    from inpaint_gui.engine.nets import detinit
    entries = srn_net.tf_variable_entries(cnum=8, expand_ratio=4)
    sd = detinit.deterministic_state_dict(entries, gain=1.0, rule="v2", layout="tf")
    return srn_net.convert_tf_variables({k: v.numpy() for k, v in sd.items()})


def test_inpainting_and_outpainting_share_the_one_bounded_cache():
    torch.manual_seed(0)
    cache = ModelCache(max_bytes=10 << 30, max_items=8)
    service = RunService(cache)
    srn_sd = _small_srn_weights()
    img = _photo(48, 48)
    out = service.run(RunRequest(img, margins=(0, 0, 0, 16), model="srn", weights=srn_sd,
                                 device="cpu", model_options={"window": (32, 32)})).image
    assert out.shape == (48, 64, 3) and np.array_equal(out[:, :48], img)
    assert [k[0] for k in cache.names()] == ["srn"] and cache.loads == 1
    service.run(RunRequest(img, margins=(8, 0, 0, 0), model="srn", weights=srn_sd, device="cpu",
                           model_options={"window": (32, 32)}))
    assert cache.loads == 1  # the outpainting model came from the shared cache
    service.run(RunRequest(_photo(64, 64), _hole(64, 64), model="aot", device="cpu"))
    assert [k[0] for k in cache.names()] == ["srn", "aot"]
    # the memory bound holds for outpainting models too: the least recently used goes
    cache.set_limits(max_bytes=cache.total_bytes() - 1)
    assert [k[0] for k in cache.names()] == ["aot"]


def test_auto_choice_and_its_reason_come_with_the_plan():
    service = RunService(ModelCache())
    small = np.zeros((200, 200), np.uint8)
    small[100:102, 20:180] = 255  # a thin scratch
    plan = service.prepare(RunRequest(_photo(200, 200), small), available={"telea", "ns"})
    assert plan.model == "telea" and "small defects" in plan.reason
    plan = service.prepare(RunRequest(_photo(40, 40), margins=(0, 0, 0, 8)), available=set())
    assert plan.model == "telea" and plan.spec is None and "outpaint" in plan.reason
    plan = service.prepare(RunRequest(_photo(40, 40), margins=(0, 0, 0, 8),
                                      outpaint_fallback="patchmatch"), available=set())
    assert plan.model == "patchmatch" and plan.reason.endswith("PatchMatch fills the new area")
    with pytest.raises(ValueError, match="specific model"):
        service.prepare(RunRequest(_photo(40, 40), small[:40, :40], weights="x.pt"))


def test_weights_are_a_tag_or_a_path(_isolated_user_models):
    spec = registry.get_spec("aot")
    starter = weights.find_weight_file(spec.weight_set("starter"))
    plan = RunService().prepare(RunRequest(_photo(64, 64), _hole(64, 64), model="aot",
                                           weights="aot:starter", device="cpu"))
    assert plan.weights == starter
    with pytest.raises(weights.MissingWeightsError, match="aot:places2 .* not installed"):
        check_model("aot", "aot:places2")
    with pytest.raises(weights.WeightsError, match="weights of RFR-Net, not of AOT-GAN"):
        check_model("aot", "rfr:starter")
    with pytest.raises(weights.MissingWeightsError, match="weight file not found: places2"):
        check_model("aot", "places2")  # not a tag: a (missing) file
    with pytest.raises(weights.WeightsError, match="no weight set 'nope'"):
        check_model("aot", "aot:nope")


def test_missing_weights_are_found_before_any_work(_isolated_user_models, monkeypatch, tmp_path):
    monkeypatch.setattr(weights, "BUNDLED_DIR", tmp_path)  # no starter either
    with pytest.raises(weights.MissingWeightsError, match="no weights for aot: put one of"):
        check_model("aot")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_model("telea").name == "telea" and check_model("auto") is None


def test_outpaint_quantize_among_the_model_options():
    """``--option quantize=...`` (a model option) and the request's own ``quantize`` both reach
    the extension; the request's wins. Truncation is floor(x * 255), rounding round(x * 255)."""
    img = np.full((32, 40, 3), 200, np.uint8)
    img[:, :20] = 100  # Telea blends the two halves across the new margin: in-between values
    svc = RunService(ModelCache())

    def margin(**kw):
        return svc.run(RunRequest(img, None, margins=(0, 0, 0, 12), model="telea", **kw)).image[:, 40:]

    rounded = margin(model_options={"quantize": "round"})
    truncated = margin(model_options={"quantize": "truncate"})
    assert rounded.shape == (32, 12, 3)
    d = rounded.astype(int) - truncated.astype(int)
    assert set(np.unique(d)) <= {0, 1} and d.any()
    assert np.array_equal(margin(model_options={"quantize": "round"}, quantize="truncate"), truncated)
