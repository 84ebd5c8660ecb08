"""Auto model choice (engine/auto.py) and run settings (engine/settings.py): Qt-free."""
import json

import numpy as np
import pytest

from inpaint_gui.engine import auto
from inpaint_gui.engine.auto import AutoChoice, choose_model, hole_stats
from inpaint_gui.engine.pipeline import HDStrategy
from inpaint_gui.engine.settings import RunSettings, SettingsError

ALL = {"srn", "rfr", "aot", "lama", "pennet"}


def _mask(h, w, *boxes):
    m = np.zeros((h, w), np.uint8)
    for (y0, x0, y1, x1) in boxes:
        m[y0:y1, x0:x1] = 255
    return m


def test_outpaint_margins_choose_srn():
    c = choose_model((400, 600, 3), None, margins=(0, 64, 0, 0), available=ALL)
    assert isinstance(c, AutoChoice) and c.model == "srn"
    assert "outpaint" in c.reason and "\n" not in c.reason


def test_outpaint_without_srn_weights_falls_back_to_classical():
    c = choose_model((400, 600), np.zeros((400, 600), np.uint8), margins=(10, 0, 0, 0), available=set())
    assert c.model == "telea" and c.preferred == "srn" and "missing" in c.reason


def test_large_hole_by_ratio_chooses_rfr():
    m = _mask(400, 400, (50, 50, 300, 300))  # 39 %
    c = choose_model(m.shape, m, available=ALL)
    assert c.model == "rfr" and "large hole" in c.reason
    assert c.stats.hole_ratio == pytest.approx(250 * 250 / 400 ** 2)


def test_large_hole_by_component_size_chooses_rfr():
    # total ratio under LARGE_HOLE_RATIO but one region over LARGE_COMPONENT_RATIO
    m = _mask(1000, 1000, (100, 100, 400, 400))  # 9 %
    assert 0.08 <= hole_stats(m).largest_ratio < auto.LARGE_HOLE_RATIO
    assert choose_model(m.shape, m, available=ALL).model == "rfr"


def test_many_small_holes_are_not_large():
    m = np.zeros((1000, 1000), np.uint8)
    for y in range(0, 1000, 100):
        for x in range(0, 1000, 100):
            m[y:y + 40, x:x + 40] = 255  # 16 % total, each region 0.16 %
    st = hole_stats(m)
    assert st.components == 100 and st.largest_ratio < 0.01
    c = choose_model(m.shape, m, available=ALL)
    assert c.model == "aot"


def test_large_image_moderate_holes_choose_aot():
    m = _mask(1600, 2400, (500, 500, 700, 800))
    c = choose_model((1600, 2400, 3), m, available=ALL)
    assert c.model == "aot" and "large image" in c.reason


def test_thin_scratches_choose_telea():
    m = _mask(600, 800, (100, 100, 103, 500), (300, 50, 304, 60))
    st = hole_stats(m)
    assert st.thickness <= auto.TINY_THICKNESS
    c = choose_model(m.shape, m, available=ALL)
    assert c.model == "telea" and "defects" in c.reason


def test_empty_mask():
    c = choose_model((100, 100), np.zeros((100, 100), np.uint8), available=ALL)
    assert c.model == "telea" and "nothing" in c.reason


@pytest.mark.parametrize("available,expected", [
    (set(), "telea"), ({"aot"}, "aot"), ({"lama", "aot"}, "lama"), ({"rfr"}, "rfr")])
def test_missing_weights_fallback_chain(available, expected):
    m = _mask(400, 400, (50, 50, 300, 300))
    c = choose_model(m.shape, m, available=available)
    assert c.model == expected and c.preferred == "rfr"
    if expected != "rfr":
        assert "missing" in c.reason


def test_default_available_uses_registry(monkeypatch, tmp_path):
    monkeypatch.setenv("INPAINT_GUI_MODELS", str(tmp_path))
    avail = auto.available_models()
    assert {"telea", "ns"} <= avail
    m = _mask(400, 400, (50, 50, 300, 300))
    c = choose_model(m.shape, m)  # registry default: networks without weights are not available
    assert c.model in avail


def test_mask_shape_mismatch_raises():
    with pytest.raises(ValueError):
        choose_model((100, 100), np.zeros((50, 50), np.uint8))


# ------------------------------------------------------------------ settings

def test_settings_roundtrip_dict_and_json():
    s = RunSettings(model="AOT", weights="aot:places2", strategy=HDStrategy("tile", tile_size=512, tile_overlap=32),
                    model_strategy=False, blend="feather", blend_radius=12, device="cpu", precision="fp16",
                    model_options={"radius": 3})
    d = s.to_dict()
    assert d["model"] == "aot" and d["strategy"] == "tile" and d["tile_size"] == 512
    back = RunSettings.from_dict(json.loads(json.dumps(d)))
    assert back == s


def test_settings_from_qsettings_strings():
    d = {"model": "telea", "strategy": "resize", "resize_limit": "1024", "model_strategy": "false",
         "blend": "poisson", "blend_radius": "4", "device": "CUDA", "precision": "bf16", "weights": ""}
    s = RunSettings.from_dict(d)
    assert s.strategy == HDStrategy("resize", resize_limit=1024) and not s.model_strategy
    assert s.device == "cuda" and s.weights is None and s.blend_radius == 4


def test_settings_validation():
    with pytest.raises(SettingsError):
        RunSettings(blend="smudge")
    with pytest.raises(SettingsError):
        RunSettings(device="tpu")
    with pytest.raises(SettingsError):
        RunSettings(precision="int8")
    with pytest.raises(SettingsError):
        RunSettings(strategy=HDStrategy("tile", tile_size=64, tile_overlap=64))
    with pytest.raises(SettingsError):
        RunSettings.from_dict({"tile_size": "big"})
    with pytest.raises(ValueError):
        RunSettings.from_dict({"strategy": "zoom"})
    with pytest.raises(SettingsError):
        RunSettings(model="nosuchmodel").validate()
    RunSettings(model="telea").validate()


def test_settings_lenient_restore_keeps_valid_fields():
    s = RunSettings.from_dict({"model": "ns", "device": "tpu", "blend": "feather", "tile_size": "x"},
                              strict=False)
    assert s.model == "ns" and s.device == "auto" and s.blend == "feather"
    assert s.strategy.tile_size == 0


def test_request_runs_the_model_default_strategy():
    from inpaint_gui.engine.registry import get_spec
    from inpaint_gui.engine.service import RunService
    spec = get_spec("telea")
    img, mask = np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8)
    s = RunSettings(model="telea", strategy=HDStrategy("tile", resize_limit=900))
    plan = RunService().prepare(s.request(img, mask))
    assert plan.strategy.name == spec.default_strategy and plan.strategy.resize_limit == 900
    s2 = RunSettings(model="telea", strategy=HDStrategy("tile"), model_strategy=False)
    assert RunService().prepare(s2.request(img, mask)).strategy.name == "tile"
    assert plan.weights is None and plan.device == "cpu"  # weight-free: no need to ask torch
    assert RunSettings(weights="/x/y/aot.pth").weights_label() == "aot.pth"
    assert RunSettings(model="aot", weights="aot:places2").weights_label() == "places2"


def test_weight_sets_are_named_by_tags_and_a_path_is_a_path():
    # version 1 settings named a set by its bare name; they are read as that set's tag
    old = RunSettings.from_dict({"version": 1, "model": "aot", "weights": "places2"})
    assert old.weights == "aot:places2" and old.to_dict()["version"] == 2
    assert RunSettings.from_dict({"version": 1, "model": "aot", "weights": "/w/G.pt"}).weights == "/w/G.pt"
    # from version 2 on nothing is guessed: a value that is not a tag is a file name
    assert RunSettings.from_dict({"version": 2, "model": "aot", "weights": "places2"}).weights == "places2"
    RunSettings(model="aot", weights="aot:celebahq").validate()
    with pytest.raises(SettingsError, match="not of RFR-Net"):
        RunSettings(model="rfr", weights="aot:places2").validate()
    with pytest.raises(SettingsError, match="no weight set 'nosuch'"):
        RunSettings(model="aot", weights="aot:nosuch").validate()


def test_auto_skips_weight_sets_measured_worse_than_telea(_isolated_user_models):
    """A weight set marked auto_ok=False (RFR's starter: its card shows it only ties Telea) is
    not offered to Auto; the user's own file for the same variant is."""
    from inpaint_gui.engine import registry, weights
    spec = registry.get_spec("rfr")
    status, ws, _ = weights.weight_status(spec)
    if status == "starter":
        assert ws.auto_ok is False
        assert "rfr" not in auto.available_models()
        big = _mask(256, 256, (20, 20, 200, 200))
        choice = choose_model((256, 256), big)
        assert choice.model != "rfr"
        # the reason says why truthfully: the starter is installed, it is not "missing"
        assert "missing" not in choice.reason and ws.auto_reason in choice.reason, choice.reason
    mine = next(w for w in spec.weight_sets if w.kind == "imported")
    import torch  # a real (tiny) checkpoint: a placeholder text file is reported as broken
    torch.save({"x": torch.zeros(2)}, _isolated_user_models / mine.filename)
    assert weights.weight_status(spec)[1] is mine and "rfr" in auto.available_models()
    assert choose_model((256, 256), _mask(256, 256, (20, 20, 200, 200))).model == "rfr"


# ------------------------------------------------------------------ the PatchMatch rule

def _grainy(h, w, seed=0, amount=30):
    rng = np.random.default_rng(seed)
    return np.clip(128 + rng.normal(0, amount, (h, w, 3)), 0, 255).astype(np.uint8)


RULE = auto.PatchMatchRule(max_hole_ratio=0.25, min_context_texture=0.2, name="test rule")
WITH_PM = ALL | {"patchmatch"}


def test_context_texture_reads_only_the_ring_around_the_hole():
    img = _grainy(200, 240)
    mask = _mask(200, 240, (80, 90, 120, 150))
    flat = np.full_like(img, 128)
    t = auto.context_texture(img, mask)
    assert t > 0.2 and auto.context_texture(flat, mask) == 0.0
    changed = img.copy()
    changed[79:121, 89:151] = 0  # the hole and 1 px around it (the Sobel of the ring stops short)
    assert auto.context_texture(changed, mask) == pytest.approx(t)
    far = img.copy()
    far[:40] = 0  # beyond the ring
    assert auto.context_texture(far, mask) == pytest.approx(t)
    assert np.isnan(auto.context_texture(img, np.zeros((200, 240), np.uint8)))
    # a large photo is measured on a downscaled crop (same order of magnitude, finite)
    big = np.repeat(np.repeat(img, 8, axis=0), 8, axis=1)
    big_mask = np.repeat(np.repeat(mask, 8, axis=0), 8, axis=1)
    assert 0 < auto.context_texture(big, big_mask) < t


def test_patchmatch_rule_picks_textured_moderate_holes_and_names_the_rule():
    img = _grainy(256, 256)
    mask = _mask(256, 256, (90, 90, 150, 160))  # 6 %, 60 px thick: the moderate-hole rule
    c = choose_model(img.shape, mask, available=WITH_PM, image=img, rule=RULE)
    assert c.model == "patchmatch" and c.preferred == "patchmatch"
    assert c.reason.startswith("test rule: a 6.4% hole (≤ 25%), textured surroundings")
    assert c.reason.endswith("where AOT-GAN would blur it") and "\n" not in c.reason
    # without the pixels, without PatchMatch, or on a flat picture: the size rules decide
    assert choose_model(img.shape, mask, available=WITH_PM, rule=RULE).model == "aot"
    assert choose_model(img.shape, mask, available=ALL, image=img, rule=RULE).model == "aot"
    flat = np.full_like(img, 128)
    assert choose_model(img.shape, mask, available=WITH_PM, image=flat, rule=RULE).model == "aot"
    assert choose_model(img.shape, mask, available=WITH_PM, image=img, rule=None).model == "aot"
    # without AOT weights the fallback is Telea, which the rule was measured against too
    assert choose_model(img.shape, mask, available={"patchmatch"}, image=img, rule=RULE).model == "patchmatch"


def test_patchmatch_rule_keeps_its_limits():
    img = _grainy(256, 256)
    big = _mask(256, 256, (20, 20, 200, 200))  # 49 %: above max_hole_ratio
    assert choose_model(img.shape, big, available=WITH_PM, image=img, rule=RULE).model == "rfr"
    loose = auto.PatchMatchRule(max_hole_ratio=0.6, min_context_texture=0.2)
    # a large hole whose network the rule was not measured against (LaMa) is left alone
    assert choose_model(img.shape, big, available={"lama", "patchmatch"}, image=img, rule=loose).model == "lama"
    assert choose_model(img.shape, big, available={"aot", "patchmatch"}, image=img, rule=loose).model == "patchmatch"
    # the cap on hole pixels (one native call that Cancel cannot interrupt stays short)
    capped = auto.PatchMatchRule(max_hole_ratio=0.6, min_context_texture=0.0, max_hole_megapixels=0.01)
    small = _mask(256, 256, (100, 100, 160, 160))  # 3600 px = 0.0036 Mpx
    c = choose_model(img.shape, small, available=WITH_PM, image=img, rule=capped)
    assert c.model == "patchmatch" and "0.00 Mpx ≤ 0.01 Mpx" in c.reason and "textured" not in c.reason
    assert choose_model(img.shape, big, available={"aot", "patchmatch"}, image=img, rule=capped).model == "aot"
    thin = np.zeros((256, 256), np.uint8)
    thin[100:103, 20:200] = 255  # a scratch (0.8 %, 3 px): the instant Telea stays
    assert choose_model(img.shape, thin, available=WITH_PM, image=img, rule=loose).model == "telea"
    assert choose_model(img.shape, None, margins=(0, 0, 0, 64), available=WITH_PM | {"srn"},
                        image=img, rule=loose).model == "srn"


def test_rule_file_loading(tmp_path):
    shipped = auto.load_rule()
    assert shipped is not None and 0 < shipped.max_hole_ratio <= 1 and shipped.min_context_texture >= 0
    assert shipped.measured_against == ("aot", "telea") and shipped.evidence
    assert auto.PATCHMATCH_RULE == shipped
    p = tmp_path / "r.json"
    p.write_text(json.dumps({"max_hole_ratio": 0.3, "min_context_texture": 0.05, "name": "x"}))
    r = auto.load_rule(p)
    assert (r.max_hole_ratio, r.min_context_texture, r.name, r.replaces) == (0.3, 0.05, "x", ("aot", "rfr"))
    p.write_text(json.dumps({"enabled": False, "max_hole_ratio": 0.3, "min_context_texture": 0.05}))
    assert auto.load_rule(p) is None
    p.write_text("{not json")
    assert auto.load_rule(p) is None and auto.load_rule(tmp_path / "missing.json") is None
