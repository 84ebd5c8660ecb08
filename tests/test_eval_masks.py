"""``inpaint eval --masks``: the user's own masks (one sub-folder per case), images at their own
size, layout errors that name the file, hole texture in every table."""
import json

import numpy as np
import pytest
from PIL import Image

from inpaint_gui import engine
from inpaint_gui.training import evaluate as E
from inpaint_gui.training.cli_eval import main_eval
from inpaint_gui.training.metrics import all_metrics

SIZES = {"a": (60, 80), "b": (72, 50)}  # (h, w): images of different sizes


def _photo(h, w, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([np.sin(x / 5), np.cos(y / 7), (x - y) / (h + w)], -1) * 90 + 128
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


def _hole(h, w, kind):
    m = np.zeros((h, w), np.uint8)
    if kind == "spot":
        m[h // 3:h // 3 + 12, w // 3:w // 3 + 12] = 255
    else:
        m[h // 5:4 * h // 5, w // 4:3 * w // 4] = 255
    return m


@pytest.fixture
def layout(tmp_path):
    img_dir, mask_dir = tmp_path / "photos", tmp_path / "masks"
    img_dir.mkdir()
    for i, (stem, (h, w)) in enumerate(SIZES.items()):
        Image.fromarray(_photo(h, w, i)).save(img_dir / f"{stem}.png")
        for case in ("spot", "large"):
            (mask_dir / case).mkdir(parents=True, exist_ok=True)
            Image.fromarray(_hole(h, w, case)).save(mask_dir / case / f"{stem}.png")
    return img_dir, mask_dir


def test_results_keyed_by_case_folders_at_own_size(layout, tmp_path, capsys):
    img_dir, mask_dir = layout
    out = tmp_path / "r.json"
    rc = main_eval(["--model", "telea", "--model", "ns", "--data", str(img_dir), "--masks", str(mask_dir),
                    "--json", str(out), "--quiet", "--sheet", str(tmp_path / "sheet.png")])
    assert rc == 0
    data = json.loads(out.read_text())
    r0 = data["results"][0]
    assert set(r0["cases"]) == {"large", "spot"} and r0["size"] is None and r0["n_images"] == 2
    for stem_i, (stem, (h, w)) in enumerate(SIZES.items()):
        img = _photo(h, w, stem_i)
        for case in ("spot", "large"):
            hole = _hole(h, w, case) > 0
            expect = all_metrics(engine.inpaint(img, hole.astype(np.uint8) * 255, model="telea"), img, hole=hole)
            row = r0["per_image"][case][stem_i]
            assert row["image"] == f"{stem}.png"
            for k in ("psnr", "ssim", "l1_hole", "psnr_hole"):
                assert row[k] == pytest.approx(expect[k])
    for case in ("spot", "large"):
        c = r0["cases"][case]
        rows = r0["per_image"][case]
        assert c["n"] == 2 and c["psnr"] == pytest.approx(np.mean([r["psnr"] for r in rows]))
    assert "texture" in r0["cases"]["large"]
    md = capsys.readouterr().out
    assert "Hole texture" in md and "| large | spot |" in md.replace("| model ", "")
    assert "at their own size" in md
    # contact sheets: one per case, rows of images of different sizes scaled to one height
    sheet = np.asarray(Image.open(tmp_path / "sheet_large.png"))
    assert sheet.shape[0] == 4 + 2 * (E.SHEET_ROW_HEIGHT + 4)


@pytest.mark.parametrize("breakage, words", [
    ("missing_mask", "has no mask for b.png"),
    ("wrong_size", "is 10x10 but the image is 50x72"),
    ("loose_file", "must hold one sub-folder per case"),
    ("no_cases", "holds no case sub-folders"),
    ("empty_mask", "marks no hole"),
    ("no_folder", "mask folder not found"),
])
def test_layout_errors_name_the_file(layout, tmp_path, capsys, breakage, words):
    img_dir, mask_dir = layout
    if breakage == "missing_mask":
        (mask_dir / "spot" / "b.png").unlink()
    elif breakage == "wrong_size":
        Image.fromarray(np.full((10, 10), 255, np.uint8)).save(mask_dir / "large" / "b.png")
    elif breakage == "loose_file":
        Image.fromarray(np.full((10, 10), 255, np.uint8)).save(mask_dir / "a.png")
    elif breakage == "no_cases":
        mask_dir = tmp_path / "empty"
        mask_dir.mkdir()
    elif breakage == "empty_mask":
        Image.fromarray(np.zeros(SIZES["a"], np.uint8)).save(mask_dir / "spot" / "a.png")
    elif breakage == "no_folder":
        mask_dir = tmp_path / "nowhere"
    rc = main_eval(["--model", "telea", "--data", str(img_dir), "--masks", str(mask_dir),
                    "--json", str(tmp_path / "r.json"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and words in err, err
    if breakage in ("missing_mask", "wrong_size", "empty_mask"):
        assert str(mask_dir) in err  # the mask file is named with its path
    assert not (tmp_path / "r.json").exists()


def test_masks_and_outpaint_do_not_mix(layout, tmp_path, capsys):
    img_dir, mask_dir = layout
    assert main_eval(["--model", "telea", "--data", str(img_dir), "--masks", str(mask_dir), "--outpaint",
                      "--json", str(tmp_path / "r.json")]) == 2
    assert "cannot be combined" in capsys.readouterr().err


def test_outpaint_eval_reports_texture(layout):
    img_dir, _ = layout
    res = E.evaluate("patchmatch", img_dir, n=1, size=64, outpaint=True, cases=["right25"])
    assert "texture" in res["cases"]["right25"] and res["per_image"]["right25"][0]["texture"] > 0
