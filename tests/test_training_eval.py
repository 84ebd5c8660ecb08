"""Evaluation through the engine pipeline: per-bin results, identical masks, CLI."""
import json

import numpy as np
import pytest
from PIL import Image

from inpaint_gui.training import evaluate as E


@pytest.fixture(scope="module")
def evaldir(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaldata")
    (root / "val").mkdir()
    (root / "train").mkdir()
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:72, 0:90].astype(np.float32)
    for i in range(3):
        img = np.stack([np.sin(x / (4 + i)), np.cos(y / 6), (x + y) / 162 * 2 - 1], -1) * 100 + 128
        img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / "val" / f"v{i}.png")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(root / "train" / "ignored.png")
    return root


def test_telea_per_bin(evaldir):
    res = E.evaluate("telea", evaldir, bins="10-20,40-50", n=2, size=64)
    assert set(res["cases"]) == {"10-20", "40-50"} and not res["errors"]
    assert res["n_images"] == 2 and all("val" in p for p in res["images"])
    for key, lo in (("10-20", 0.1), ("40-50", 0.4)):
        c = res["cases"][key]
        assert c["n"] == 2 and lo <= c["hole_ratio"] < lo + 0.1
        assert np.isfinite(c["psnr"]) and 0 < c["ssim"] < 1 and c["l1"] > 0 and c["l1_hole"] > c["l1"]
    # larger holes are harder
    assert res["cases"]["40-50"]["psnr"] < res["cases"]["10-20"]["psnr"]


def test_compare_uses_identical_masks_and_markdown(evaldir):
    out = E.compare(["telea", "ns"], evaldir, bins="20-30", n=2, size=64)
    assert [r["label"] for r in out["results"]] == ["telea", "ns"]
    assert len(out["rows"]) == 2 and {r["case"] for r in out["rows"]} == {"20-30"}
    assert "| telea |" in out["markdown"] and "| ns |" in out["markdown"] and "PSNR" in out["markdown"]
    again = E.evaluate("telea", evaldir, bins="20-30", n=2, size=64)
    assert again["cases"]["20-30"] == out["results"][0]["cases"]["20-30"] | {
        "sec_per_image": again["cases"]["20-30"]["sec_per_image"]}


def test_outpaint_cases_telea(evaldir):
    res = E.evaluate("telea", evaldir, n=1, size=64, outpaint=True)
    assert set(res["cases"]) == set(E.M.OUTPAINT_GOAL_CASES) and not res["errors"], res["errors"]
    for c in res["cases"].values():
        assert np.isfinite(c["psnr"]) and 0 < c["unknown_ratio"] < 1


def test_cli_eval(evaldir, tmp_path, capsys):
    from inpaint_gui.training.cli_eval import main_eval
    out = tmp_path / "r.json"
    assert main_eval(["--model", "telea", "--data", str(evaldir), "--bins", "10-20,30-40", "--n", "1",
                      "--size", "64", "--json", str(out), "--quiet"]) == 0
    data = json.loads(out.read_text())
    assert set(data["results"][0]["cases"]) == {"10-20", "30-40"}
    assert "| telea |" in capsys.readouterr().out
    assert main_eval(["--model", "telea", "--data", str(tmp_path / "missing"), "--json", str(out)]) == 2


def test_cli_contact_sheet(evaldir, tmp_path):
    """The sheet holds, per image row: the original, the input with the hole in grey, each result;
    the result tiles equal what the engine returns for the same image and mask."""
    from inpaint_gui import engine
    from inpaint_gui.training.cli_eval import main_eval
    assert main_eval(["--model", "telea", "--model", "ns", "--data", str(evaldir), "--bins", "30-40",
                      "--n", "2", "--size", "64", "--json", str(tmp_path / "r.json"), "--quiet",
                      "--sheet", str(tmp_path / "sheet.png"), "--sheet-rows", "2"]) == 0
    sheet = np.asarray(Image.open(tmp_path / "sheet_30-40.png").convert("RGB"))
    assert sheet.shape == (2 * 68 + 4, 4 * 68 + 4, 3)
    _, imgs = E.load_eval_images(evaldir, 2, 64)
    for i, img in enumerate(imgs):
        hole = E.M.eval_mask((64, 64), E.M.parse_bins("30-40")[0], i, seed=E.M.EVAL_SEED) > 0
        y = 4 + i * 68
        np.testing.assert_array_equal(sheet[y:y + 64, 4:68], img)
        shown = sheet[y:y + 64, 72:136]
        assert (shown[hole] == 128).all() and np.array_equal(shown[~hole], img[~hole])
        expect = engine.inpaint(img, E.M.to_engine(hole), model="ns")
        np.testing.assert_array_equal(sheet[y:y + 64, 4 + 3 * 68:4 + 3 * 68 + 64], expect)
    assert "samples" not in json.loads((tmp_path / "r.json").read_text())["results"][0]


def test_cli_eval_blend(evaldir, tmp_path, capsys):
    """--blend evaluates the fills with a seam treatment (recorded in the JSON); the inpainting
    fills change, the same masks are used; with --outpaint it is refused."""
    from inpaint_gui.training.cli_eval import main_eval
    res = {}
    for blend in ("none", "poisson"):
        out = tmp_path / f"{blend}.json"
        assert main_eval(["--model", "telea", "--data", str(evaldir), "--bins", "30-40", "--n", "2",
                          "--size", "64", "--blend", blend, "--json", str(out), "--quiet"]) == 0
        res[blend] = json.loads(out.read_text())["results"][0]
        assert res[blend]["blend"] == blend
    a, b = res["none"]["cases"]["30-40"], res["poisson"]["cases"]["30-40"]
    assert a["hole_ratio"] == b["hole_ratio"] and a["psnr"] != b["psnr"]
    capsys.readouterr()
    assert main_eval(["--model", "telea", "--data", str(evaldir), "--outpaint", "--blend", "poisson",
                      "--json", str(tmp_path / "o.json"), "--quiet"]) == 2
    assert "--blend" in capsys.readouterr().err
