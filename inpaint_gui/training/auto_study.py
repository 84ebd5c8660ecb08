"""The measurements behind Auto's PatchMatch rule, and the rule's thresholds fitted to them.

    python -m inpaint_gui.training.auto_study collect --data data/train_pool --out runs/auto_study
    python -m inpaint_gui.training.auto_study fit --study runs/auto_study \\
        --rule inpaint_gui/engine/auto_rule.json

``collect`` evaluates Telea, PatchMatch and the AOT-GAN weights Auto would use (through
:func:`.evaluate.compare`, i.e. the app's own pipeline) on the held-out photos:

* ``bins256``: the standard seeded free-form masks at 256 px per hole-ratio bin;
* ``own_size``: the photos at their own size (up to 1024 px here) with masks written to
  ``OUT/masks/CASE/<stem>.png`` (``inpaint eval --masks`` layout): free-form strokes per
  hole-ratio bin, and single object-like blobs (a rotated ellipse) per size.

For every (photo, mask) it stores the features Auto can compute at run time (hole ratio,
largest region, thickness, :func:`inpaint_gui.engine.auto.context_texture`, longer side) and each
model's metrics in ``OUT/samples.json``, plus contact sheets.

``fit`` chooses the rule's thresholds from the samples and writes them, with how they were
derived and the win rates they reach, to the rule file that :mod:`inpaint_gui.engine.auto` reads.
A sample's winner weighs texture and PSNR together (:func:`quality`): PSNR inside the hole minus
a penalty for texture that differs from the photo's, so a blurred fill does not win on PSNR
alone. Rerun both after new weights (e.g. a retrained AOT starter) and commit the rule file.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import itertools
import json
import math
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

MODELS = ("telea", "patchmatch", "aot")
BINS_256 = "2-5,5-10,10-20,20-30,30-40,40-50"
STROKE_BINS = ((0.02, 0.05), (0.05, 0.10), (0.10, 0.20), (0.20, 0.30))
BLOB_BINS = ((0.01, 0.03), (0.03, 0.08), (0.08, 0.15))
STUDY_SEED = 20261206

#: dB of PSNR a texture ratio of 1/2 (or 2) is worth: |log2(texture)| * TEXTURE_DB.
TEXTURE_DB = 3.0
#: a sample is a tie when the quality differs by less than this (dB).
TIE_DB = 0.1


def quality(metrics: dict) -> float:
    """psnr_hole - TEXTURE_DB * |log2 texture| (dB); texture missing (hole too thin to
    measure) counts as no penalty."""
    p = metrics.get("psnr_hole")
    if p is None or not math.isfinite(p):
        p = 60.0
    t = metrics.get("texture")
    pen = TEXTURE_DB * abs(math.log2(t)) if t is not None and t > 0 else 0.0
    return float(p) - pen


# ---------------------------------------------------------------------------------------- masks

def blob_mask(h: int, w: int, rng: np.random.Generator, ratio) -> np.ndarray:
    """One filled, rotated ellipse covering ``ratio`` (lo, hi) of the image (an object)."""
    import cv2
    target = rng.uniform(*ratio) * h * w
    aspect = rng.uniform(0.5, 2.0)
    a = math.sqrt(target * aspect / math.pi)
    b = target / (math.pi * a)
    a, b = min(a, 0.45 * w), min(b, 0.45 * h)
    cx = rng.uniform(a * 0.6 + 2, w - a * 0.6 - 2) if w > 2 * a else w / 2
    cy = rng.uniform(b * 0.6 + 2, h - b * 0.6 - 2) if h > 2 * b else h / 2
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, (int(cx), int(cy)), (max(1, int(a)), max(1, int(b))),
                float(rng.uniform(0, 180)), 0, 360, 255, -1)
    return m


def write_own_size_masks(files: Sequence[str], images: Sequence[np.ndarray], out: Path) -> "list[str]":
    """Masks for the photos at their own size, in the ``--masks`` layout; returns the cases."""
    from inpaint_gui.engine.imageio import save_mask

    from . import masks as M
    cases = []
    for kind, bins in (("strokes", STROKE_BINS), ("blob", BLOB_BINS)):
        for bn in bins:
            case = f"{kind}_{M.bin_name(bn)}"
            cases.append(case)
            d = out / case
            d.mkdir(parents=True, exist_ok=True)
            for i, (f, img) in enumerate(zip(files, images)):
                h, w = img.shape[:2]
                rng = np.random.default_rng(M._stable_seed(STUDY_SEED, case, i, h, w))
                if kind == "strokes":
                    m = M.to_engine(M.free_form_mask(h, w, rng, ratio=bn))
                else:
                    m = blob_mask(h, w, rng, bn)
                save_mask(d / (Path(f).stem + ".png"), m, overwrite=True)
    return cases


# ---------------------------------------------------------------------------------------- collect

def features(image: np.ndarray, hole: np.ndarray) -> dict:
    from inpaint_gui.engine.auto import context_texture, hole_stats
    st = hole_stats(hole)
    return {"hole_ratio": st.hole_ratio, "largest_ratio": st.largest_ratio,
            "components": st.components, "thickness": st.thickness,
            "context_texture": context_texture(image, hole.astype(np.uint8) * 255),
            "long_side": int(max(image.shape[:2]))}


def _weights_info() -> dict:
    from inpaint_gui.engine import registry, weights
    out = {}
    for name in MODELS:
        spec = registry.get_spec(name)
        status, ws, path = weights.weight_status(spec)
        info = {"status": status}
        if path is not None:
            info["file"] = Path(path).name
            info["sha256"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        out[name] = info
    return out


def merge_samples(old: Sequence[dict], new: Sequence[dict], models: Sequence[str]) -> List[dict]:
    """``old``'s samples with the metrics of ``models`` taken from ``new`` (the same fills
    measured again, e.g. after new AOT weights). Samples match by (part, case, image); a study
    whose fills are not the same ones is refused."""
    key = lambda r: (r["part"], r["case"], r["image"])  # noqa: E731
    fresh = {key(r): r for r in new}
    if len(fresh) != len(new) or set(fresh) != {key(r) for r in old} or len(old) != len(new):
        raise ValueError("the new measurements are not of the same fills as the study's "
                         "(other photos, masks or parts): collect the whole study again")
    out = []
    for r in old:
        row = dict(r)
        for mdl in models:
            row.pop(mdl, None)
            if mdl in fresh[key(r)]:
                row[mdl] = fresh[key(r)][mdl]
        out.append(row)
    return out


def collect(data: str, out: "str | Path", n: Optional[int] = None, parts=("bins256", "own_size"),
            sheet_rows: int = 4, log=None, models: Sequence[str] = MODELS) -> dict:
    from inpaint_gui.engine.imageio import save_image

    from . import masks as M
    from .evaluate import compare, contact_sheet, load_eval_images, load_mask_cases, save_json
    models = tuple(models)
    if set(models) - set(MODELS):
        raise ValueError(f"the study measures {', '.join(MODELS)}")
    out = Path(out)
    previous = None
    if set(models) != set(MODELS):  # measure only these again: the others' fills have not changed
        if not (out / "samples.json").is_file():
            raise ValueError(f"{out} has no study to update: collect all of {', '.join(MODELS)} first")
        previous = json.loads((out / "samples.json").read_text())
        out = out / "update"
    out.mkdir(parents=True, exist_ok=True)
    samples: List[dict] = []
    raw: Dict[str, dict] = {}
    for part in parts:
        if part == "bins256":
            names, imgs = load_eval_images(data, n if n is not None else 10 ** 6, 256)
            res = compare(list(models), data, bins=BINS_256, n=len(names), size=256, log=log,
                          keep=sheet_rows)
            holes = {M.bin_name(bn): [M.eval_mask((256, 256), bn, i) > 0 for i in range(len(imgs))]
                     for bn in M.parse_bins(BINS_256)}
        else:
            names, imgs = load_eval_images(data, n, None)
            cases = write_own_size_masks(names, imgs, out / "masks")
            res = compare(list(models), data, n=len(names), log=log, keep=sheet_rows,
                          masks=out / "masks")
            holes = load_mask_cases(out / "masks", names, [im.shape for im in imgs])
            holes = {c: holes[c] for c in cases}
        for case in res["results"][0]["cases"]:
            target = out / "sheets" / f"{part}_{case}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            save_image(target, contact_sheet(res["images"], res["results"], case, rows=sheet_rows),
                       overwrite=True)
        for r in res["results"]:
            r.pop("samples", None)
        res.pop("images", None)
        raw[part] = res
        by_model = {r["model"]: r["per_image"] for r in res["results"]}
        for case, hs in holes.items():
            for i, hole in enumerate(hs):
                row = {"part": part, "case": case, "image": Path(names[i]).name,
                       **features(imgs[i], hole)}
                for mdl in models:
                    per = by_model.get(mdl, {}).get(case)
                    if per:
                        row[mdl] = {k: per[i].get(k) for k in ("psnr", "ssim", "texture", "psnr_hole", "l1_hole")}
                samples.append(row)
        save_json({"samples": samples}, out / "samples.json")
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    meta = {"date_utc": now, "data": str(data), "weights": _weights_info(), "models": list(MODELS)}
    save_json(raw, out / "eval.json")
    if previous is not None:
        samples = merge_samples(previous["samples"], samples, models)
        old_meta = previous.get("meta") or {}
        meta = dict(meta, date_utc=old_meta.get("date_utc"),
                    remeasured=[*old_meta.get("remeasured", []), {"date_utc": now, "models": list(models)}])
        out = out.parent
    save_json({"meta": meta, "samples": samples}, out / "samples.json")
    return {"meta": meta, "samples": samples}


def refresh_features(data: str, study: "str | Path") -> dict:
    """Recompute every sample's features (no model runs): after a change to
    :func:`features` or :func:`inpaint_gui.engine.auto.context_texture`."""
    from . import masks as M
    from .evaluate import load_eval_images, save_json
    study = Path(study)
    doc = json.loads((study / "samples.json").read_text())
    samples = doc["samples"]
    n = max(1, len({s["image"] for s in samples}))
    cache: dict = {}
    for part in ("bins256", "own_size"):
        rows = [s for s in samples if s["part"] == part]
        if not rows:
            continue
        names, imgs = load_eval_images(data, n, 256 if part == "bins256" else None)
        index = {Path(nm).name: i for i, nm in enumerate(names)}
        for s in rows:
            i = index[s["image"]]
            if part == "bins256":
                hole = M.eval_mask((256, 256), M.parse_bins(s["case"])[0], i) > 0
            else:
                from inpaint_gui.engine.imageio import load_mask
                key = (s["case"], s["image"])
                hole = cache.get(key)
                if hole is None:
                    hole = load_mask(study / "masks" / s["case"] / (Path(s["image"]).stem + ".png")) > 0
            s.update(features(imgs[i], hole))
    save_json(doc, study / "samples.json")
    return doc


# ---------------------------------------------------------------------------------------- outpaint

#: The outpainting alternatives measured on the margin cases of ``inpaint eval --outpaint``.
OUTPAINT_METHODS = ("edge extension (default)", "Telea on the margin mask", "PatchMatch on the margin mask")


def outpaint_study(data: str, out: "str | Path", n: Optional[int] = None, size: int = 256,
                   sheet_rows: int = 4, log=None) -> dict:
    """PatchMatch as an outpainting fallback: per :data:`.masks.OUTPAINT_CASES` case, the
    photo's known part is extended by (1) the current default without SRN weights, the
    classical edge extension (``outpaint(model="classical")``), (2) Telea inpainting of the
    margin mask and (3) PatchMatch on the margin mask (``outpaint(model="patchmatch")``, what
    ``fallback="patchmatch"`` runs); metrics as in ``inpaint eval --outpaint``."""
    import time

    from inpaint_gui.engine import inpaint, outpaint
    from inpaint_gui.engine.imageio import save_image

    from . import masks as M
    from .evaluate import _mean_metrics, contact_sheet, load_eval_images, save_json
    from .metrics import all_metrics
    out = Path(out)
    names, imgs = load_eval_images(data, n if n is not None else 10 ** 6, size)

    def edge(known, margins, canvas, hole):
        return outpaint(known, margins=margins, model="classical")

    def telea(known, margins, canvas, hole):
        return inpaint(canvas, hole.astype(np.uint8) * 255, model="telea")

    def patchmatch(known, margins, canvas, hole):
        return outpaint(known, margins=margins, model="patchmatch")

    methods = dict(zip(OUTPAINT_METHODS, (edge, telea, patchmatch)))
    results = {label: {"label": label, "cases": {}, "per_image": {}, "samples": {}} for label in methods}
    for case in M.OUTPAINT_CASES:
        for label, fn in methods.items():
            rows, secs = [], 0.0
            for img in imgs:
                h, w = img.shape[:2]
                t, l, b, r = M.outpaint_case_margins(h, w, case)
                known = np.ascontiguousarray(img[t:h - b, l:w - r])
                hole = M.outpaint_mask(h, w, (t, l, b, r)) > 0
                canvas = img.copy()
                canvas[hole] = 0  # the unknown area holds nothing of the photo
                t0 = time.perf_counter()
                res = fn(known, (t, l, b, r), canvas, hole)
                secs += time.perf_counter() - t0
                assert np.array_equal(res[~hole], img[~hole])
                rows.append(all_metrics(res, img, hole=hole))
                if len(rows) <= sheet_rows:
                    results[label]["samples"].setdefault(case, []).append((res, hole))
            results[label]["cases"][case] = dict(_mean_metrics(rows), n=len(rows),
                                                 sec_per_image=round(secs / len(rows), 4))
            if log:
                c = results[label]["cases"][case]
                log(f"[outpaint] {label} {case}: PSNR {c['psnr']:.2f} SSIM {c['ssim']:.4f} "
                    f"texture {c.get('texture', float('nan')):.3f}")
        target = out / "sheets" / f"outpaint_{case}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        save_image(target, contact_sheet(imgs, list(results.values()), case, rows=sheet_rows),
                   overwrite=True)
    for r in results.values():
        r.pop("samples")
        r["mean"] = _mean_metrics(list(r["cases"].values()))
    report = {"data": str(data), "size": size, "n_images": len(imgs), "methods": list(methods),
              "results": list(results.values())}
    save_json(report, out / "outpaint.json")
    return report


# ---------------------------------------------------------------------------------------- fit

def _outcome(a: dict, b: dict) -> int:
    """+1 when ``a`` wins, -1 when ``b`` wins, 0 for a tie (:func:`quality`)."""
    d = quality(a) - quality(b)
    return 0 if abs(d) < TIE_DB else (1 if d > 0 else -1)


def win_rates(rows: Sequence[dict], model: str, others: Sequence[str]) -> dict:
    """Per alternative: wins / ties / losses of ``model`` by quality, its win rates by PSNR in
    the hole alone and by texture alone (closer to 1), the mean PSNR difference in the hole and
    the median hole textures (``model``, alternative)."""
    out = {}
    for o in others:
        pairs = [(r[model], r[o]) for r in rows if model in r and o in r]
        if not pairs:
            continue
        q = [_outcome(a, b) for a, b in pairs]
        psnr_w = [a["psnr_hole"] > b["psnr_hole"] for a, b in pairs
                  if a.get("psnr_hole") is not None and b.get("psnr_hole") is not None]
        tex = [(a, b) for a, b in pairs if a.get("texture") and b.get("texture")]
        tex_w = [abs(math.log2(a["texture"])) < abs(math.log2(b["texture"])) for a, b in tex]
        out[o] = {"n": len(pairs), "wins": q.count(1), "ties": q.count(0), "losses": q.count(-1),
                  "win_rate": round(q.count(1) / max(1, q.count(1) + q.count(-1)), 3),
                  "psnr_win_rate": round(float(np.mean(psnr_w)), 3) if psnr_w else None,
                  "texture_win_rate": round(float(np.mean(tex_w)), 3) if tex_w else None,
                  "mean_psnr_hole_diff_db": round(float(np.mean([a["psnr_hole"] - b["psnr_hole"]
                                                                 for a, b in pairs])), 2),
                  "median_texture": [round(float(np.median([a["texture"] for a, _ in tex])), 3),
                                     round(float(np.median([b["texture"] for _, b in tex])), 3)]
                  if tex else None}
    return out


def _grid(values: np.ndarray, qs) -> "list[float]":
    return sorted({round(float(q), 4) for q in np.quantile(values, qs)})


def fit(samples: Sequence[dict], alternatives=("aot", "telea"), min_share: float = 0.1) -> dict:
    """Thresholds of "PatchMatch when hole_ratio <= H and context_texture >= T" that maximise
    PatchMatch's wins minus losses (:func:`quality`) against the model Auto chose before the rule
    (``alternatives[0]``: AOT-GAN for every studied hole), over grids of the samples' own
    quantiles (T = 0 included: no texture condition). Regions holding fewer than ``min_share``
    of the samples are skipped; among equal scores the region covering more samples wins, then
    the lower T. Returns the thresholds and win rates inside / outside the region, per hole-ratio
    bin and per context-texture quintile, and the win rates when texture weighs 0 (PSNR only)
    or 1 dB per halving instead of :data:`TEXTURE_DB`."""
    global TEXTURE_DB
    rows = [r for r in samples if all(m in r for m in MODELS)]
    hr = np.array([r["hole_ratio"] for r in rows])
    ct = np.array([r["context_texture"] for r in rows])
    h_grid = _grid(hr, np.linspace(0.1, 1.0, 19))
    t_grid = [0.0] + _grid(ct, np.linspace(0.05, 0.9, 18))
    base = alternatives[0]
    best = None
    for h_max, t_min in itertools.product(h_grid, t_grid):
        sel = [r for r, a, b in zip(rows, hr, ct) if a <= h_max and b >= t_min]
        if len(sel) < min_share * len(rows):
            continue
        score = sum(_outcome(r["patchmatch"], r[base]) for r in sel)
        key = (score, len(sel), -t_min)
        if best is None or key > best[0]:
            best = (key, h_max, t_min, sel)
    if best is None:
        raise ValueError("no threshold pair selects enough samples")
    _key, h_max, t_min, sel = best
    rest = [r for r in rows if r not in sel]
    by_bin = {}
    for lo, hi in ((0.0, 0.05), (0.05, 0.10), (0.10, 0.20), (0.20, 0.30), (0.30, 0.50)):
        part = [r for r in rows if lo <= r["hole_ratio"] < hi]
        if part:
            by_bin[f"{round(lo * 100)}-{round(hi * 100)}%"] = win_rates(part, "patchmatch", alternatives)
    edges = np.quantile(ct, np.linspace(0, 1, 6))
    by_context = {}
    for i in range(5):
        hi = edges[i + 1] if i < 4 else np.inf
        part = [r for r, c in zip(rows, ct) if edges[i] <= c < hi]
        by_context[f"{edges[i]:.2f}-{edges[i + 1]:.2f}"] = win_rates(part, "patchmatch", alternatives)
    weight = TEXTURE_DB
    sensitivity = {}
    try:
        for w in (0.0, 1.0):
            TEXTURE_DB = w
            sensitivity[f"{w:g} dB"] = win_rates(sel, "patchmatch", alternatives)
    finally:
        TEXTURE_DB = weight
    return {"max_hole_ratio": h_max, "min_context_texture": t_min,
            "selected": len(sel), "samples": len(rows),
            "inside": win_rates(sel, "patchmatch", alternatives),
            "outside": win_rates(rest, "patchmatch", alternatives) if rest else {},
            "by_hole_ratio": by_bin, "by_context_texture": by_context,
            "texture_weight_sensitivity": sensitivity}


def _evidence(res: dict) -> str:
    """The one-line summary stored with the rule (README and reason tooltips quote it)."""
    parts = []
    for alt, w in res["inside"].items():
        parts.append(f"{w['wins']}/{w['n']} wins, {w['losses']} losses against "
                     f"{'AOT-GAN' if alt == 'aot' else alt.capitalize()}")
    return (f"{res['selected']} of {res['samples']} validation fills: " + "; ".join(parts)
            + f" (PSNR in the hole minus {TEXTURE_DB:g} dB per halving of the hole texture)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m inpaint_gui.training.auto_study",
                                 description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--data", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--n", type=int, default=None)
    c.add_argument("--parts", default="bins256,own_size")
    c.add_argument("--models", default=",".join(MODELS),
                   help="measure only these again in the study at --out (after new weights of one "
                        "model the others' fills are the same)")
    r = sub.add_parser("features", help="recompute the samples' features (no model runs)")
    r.add_argument("--data", required=True)
    r.add_argument("--study", required=True)
    o = sub.add_parser("outpaint")
    o.add_argument("--data", required=True)
    o.add_argument("--out", required=True)
    o.add_argument("--n", type=int, default=None)
    f = sub.add_parser("fit")
    f.add_argument("--study", required=True)
    f.add_argument("--rule", default=None, help="write the fitted rule here (JSON)")
    f.add_argument("--max-hole-megapixels", type=float, default=None,
                   help="cap on the hole's pixels (from timing, not quality: PatchMatch is one "
                        "native call Cancel cannot interrupt), stored with --megapixel-note")
    f.add_argument("--megapixel-note", default="", help="how the cap was measured")
    a = ap.parse_args(argv)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    if a.cmd == "collect":
        collect(a.data, a.out, a.n, tuple(p for p in a.parts.split(",") if p), log=log,
                models=tuple(m for m in a.models.split(",") if m))
        return 0
    if a.cmd == "features":
        refresh_features(a.data, a.study)
        return 0
    if a.cmd == "outpaint":
        from .evaluate import markdown_tables
        rep = outpaint_study(a.data, a.out, a.n, log=log)
        for r in rep["results"]:
            r.setdefault("task", "outpaint")
        head = dict(task="outpaint", n_images=rep["n_images"], size=rep["size"], data=rep["data"], seed="-")
        print(markdown_tables([dict(head, **r) for r in rep["results"]]))
        return 0
    study = json.loads((Path(a.study) / "samples.json").read_text())
    res = fit(study["samples"])
    print(json.dumps(res, indent=1))
    if a.rule:
        rule = {"name": "PatchMatch rule",
                "max_hole_ratio": res["max_hole_ratio"],
                "min_context_texture": res["min_context_texture"],
                "max_hole_megapixels": a.max_hole_megapixels,
                "max_hole_megapixels_from": a.megapixel_note or None,
                "replaces": ["aot", "rfr"], "measured_against": ["aot", "telea"],
                "evidence": _evidence(res),
                "derived": {"by": "python -m inpaint_gui.training.auto_study fit",
                            "study": str(a.study), "meta": study.get("meta"),
                            "quality": f"psnr_hole - {TEXTURE_DB:g} dB x |log2 texture|; "
                                       f"ties within {TIE_DB:g} dB",
                            **{k: v for k, v in res.items()
                               if k not in ("max_hole_ratio", "min_context_texture")}}}
        Path(a.rule).write_text(json.dumps(rule, indent=1) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
