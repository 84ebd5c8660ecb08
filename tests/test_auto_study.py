"""The Auto-rule derivation (training/auto_study.py): the score weighs texture, and the fit finds
the region where PatchMatch wins on constructed samples."""
import numpy as np
import pytest

from inpaint_gui.training import auto_study as S


def test_quality_penalises_blur_and_noise_alike():
    sharp = {"psnr_hole": 20.0, "texture": 1.0}
    blurred = {"psnr_hole": 21.0, "texture": 0.5}   # +1 dB PSNR, half the detail
    noisy = {"psnr_hole": 20.0, "texture": 2.0}
    assert S.quality(sharp) == 20.0
    assert S.quality(blurred) == pytest.approx(21.0 - S.TEXTURE_DB)
    assert S.quality(noisy) == pytest.approx(S.quality({"psnr_hole": 20.0, "texture": 0.5}))
    assert S._outcome(sharp, blurred) == 1 and S._outcome(blurred, sharp) == -1
    assert S._outcome(sharp, {"psnr_hole": 20.05, "texture": 1.0}) == 0  # within TIE_DB


def _sample(hole, ctx, pm_better):
    good, bad = {"psnr_hole": 25.0, "texture": 0.9}, {"psnr_hole": 24.0, "texture": 0.4}
    pm, other = (good, bad) if pm_better else (bad, good)
    return {"hole_ratio": hole, "context_texture": ctx, "patchmatch": pm, "aot": other,
            "telea": dict(bad)}


def test_fit_finds_the_region_where_patchmatch_wins():
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(400):
        hole, ctx = float(rng.uniform(0.01, 0.5)), float(rng.uniform(0.1, 5.0))
        samples.append(_sample(hole, ctx, pm_better=hole <= 0.2 and ctx >= 1.0))
    res = S.fit(samples)
    assert 0.17 <= res["max_hole_ratio"] <= 0.23 and 0.7 <= res["min_context_texture"] <= 1.3
    inside = res["inside"]["aot"]
    assert inside["win_rate"] > 0.9 and res["outside"]["aot"]["win_rate"] < 0.2
    assert res["inside"]["telea"]["losses"] == 0  # Telea is never better here
    # everywhere better: no texture condition, every studied hole
    res = S.fit([_sample(s["hole_ratio"], s["context_texture"], True) for s in samples])
    assert res["min_context_texture"] == 0.0 and res["selected"] == len(samples)
    assert res["max_hole_ratio"] == pytest.approx(max(s["hole_ratio"] for s in samples), abs=1e-4)


def test_merge_takes_the_remeasured_model_and_keeps_the_others():
    old = [{"part": "bins256", "case": c, "image": f"{i}.jpg", "hole_ratio": 0.1,
            "telea": {"psnr_hole": 20.0 + i}, "patchmatch": {"psnr_hole": 21.0}, "aot": {"psnr_hole": 22.0}}
           for c in ("10-20", "20-30") for i in range(3)]
    new = [{"part": r["part"], "case": r["case"], "image": r["image"], "hole_ratio": 0.1,
            "aot": {"psnr_hole": 23.0 + i}} for i, r in enumerate(reversed(old))]
    merged = S.merge_samples(old, new, ["aot"])
    assert [(r["case"], r["image"]) for r in merged] == [(r["case"], r["image"]) for r in old]
    assert [r["telea"] for r in merged] == [r["telea"] for r in old]
    assert [r["aot"]["psnr_hole"] for r in merged] == [23.0 + i for i in reversed(range(6))]
    assert all(r["aot"]["psnr_hole"] == 22.0 for r in old)  # the old study is not changed in place
    with pytest.raises(ValueError, match="not of the same fills"):
        S.merge_samples(old, new[:-1], ["aot"])
    with pytest.raises(ValueError, match="not of the same fills"):
        S.merge_samples(old, [dict(new[0], image="other.jpg")] + new[1:], ["aot"])


def test_collect_refuses_to_update_a_study_that_is_not_there(tmp_path):
    with pytest.raises(ValueError, match="no study to update"):
        S.collect("unused", tmp_path, models=("aot",))
    with pytest.raises(ValueError, match="the study measures"):
        S.collect("unused", tmp_path, models=("lama",))
