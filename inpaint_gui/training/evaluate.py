"""Evaluation on fixed, seeded masks through the engine pipeline (what users get).

``evaluate(model, data, bins=..., n=..., size=...)``: for each hole-ratio bin, image ``i`` gets
:func:`.masks.eval_mask` ``(size, bin, i)`` -- the same masks for every model, so Telea / NS and
the networks are compared on identical holes. Images are the first ``n`` files of ``DATA/val``
(or of DATA), centre-cropped and resized to ``size``. Each image goes through the engine's run
service (:mod:`inpaint_gui.engine.service`: compositing and HD strategy as in the app); PSNR / SSIM / L1 are
computed on the uint8 result against the original, over the whole image (plus L1 / PSNR inside
the hole). No LPIPS / FID: no pretrained backbone is available offline.

With ``outpaint=True`` the cases are :data:`.masks.OUTPAINT_GOAL_CASES` (right 25 %, 25 % on
left and right, bottom 25 %, 12 % on every side; any of :data:`.masks.OUTPAINT_CASES` on
request): the known part is cut from the image and ``inpaint_gui.engine.outpaint`` must
regenerate the rest.

With ``masks=DIR`` the cases are the user's own: ``DIR`` holds one sub-folder per case with a
mask per image (same stem, ``.png``, 255 = hole); the images are used at their own size and the
results are keyed by the sub-folder names (:func:`load_mask_cases`).

Every case reports the means of :data:`METRIC_KEYS` (``texture`` is the hole texture of
:func:`.metrics.hole_texture`) and, under ``per_image``, each image's own figures.

``compare(models=[...])`` evaluates several models and returns rows plus markdown tables for
model cards.
"""
from __future__ import annotations

import json
import math
import time
from functools import partial
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence

import numpy as np

from inpaint_gui.engine.fsutil import atomic_write_text

from . import masks as M
from .data import center_square, eval_files, load_rgb
from .metrics import all_metrics

DEFAULT_BINS = "10-20,20-30,30-40,40-50,50-60"
METRIC_KEYS = ("psnr", "ssim", "texture", "l1", "l1_hole", "psnr_hole")


def load_eval_images(data: "str | Path", n: Optional[int], size: Optional[int]
                     ) -> "tuple[list[str], list[np.ndarray]]":
    """The first ``n`` (None: all) evaluation files of ``data``, centre-cropped to ``size``
    squares, or at their own size when ``size`` is None."""
    files = eval_files(data)
    if n is not None:
        files = files[: max(0, int(n))]
    if not files:
        raise FileNotFoundError(f"no images found in {data}")
    if size is None:
        return [str(p) for p in files], [load_rgb(p) for p in files]
    return [str(p) for p in files], [center_square(load_rgb(p, max_short=2 * size), size) for p in files]


MASK_SUFFIX = ".png"


def load_mask_cases(masks: "str | Path", names: Sequence[str], shapes: Sequence) -> "dict[str, list[np.ndarray]]":
    """The user's masks: ``{case: [hole (bool HxW, True = fill) per image]}``.

    ``masks`` holds one sub-folder per case; each holds ``<image stem>.png`` for every image in
    ``names`` (255 = hole; read like ``inpaint run`` reads masks: bright = hole). Raises
    ``FileNotFoundError`` / ``ValueError`` naming the file for a missing folder, loose mask files
    beside the case folders, an image without a mask in a case, a mask of another size or a
    mask without a hole. Masks of images that are not evaluated are ignored."""
    from inpaint_gui.engine.imageio import ImageIOError, load_mask

    root = Path(masks)
    if not root.is_dir():
        raise FileNotFoundError(f"mask folder not found: {root}")
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    case_dirs = [p for p in entries if p.is_dir()]
    loose = [p for p in entries if p.is_file()]
    if loose:
        raise ValueError(f"{root} must hold one sub-folder per case (MASKS/CASE/<image stem>.png), "
                         f"but {loose[0].name} lies directly in it")
    if not case_dirs:
        raise ValueError(f"{root} holds no case sub-folders (expected MASKS/CASE/<image stem>.png)")
    stems: dict = {}
    for name in names:
        stem = Path(name).stem
        if stem in stems:
            raise ValueError(f"two images share the stem {stem!r} ({Path(stems[stem]).name}, "
                             f"{Path(name).name}), so their masks would have the same name")
        stems[stem] = name
    out: "dict[str, list[np.ndarray]]" = {}
    for case_dir in case_dirs:
        holes = []
        for name, shape in zip(names, shapes):
            path = case_dir / (Path(name).stem + MASK_SUFFIX)
            if not path.is_file():
                raise ValueError(f"case {case_dir.name!r} has no mask for {Path(name).name}: "
                                 f"expected {path}")
            try:
                m = load_mask(path, shape=shape)
            except ImageIOError as exc:  # unreadable, or another size
                raise ValueError(f"{path}: {exc}") from None
            if not m.any():
                raise ValueError(f"{path} marks no hole (255 = hole)")
            holes.append(m > 0)
        out[case_dir.name] = holes
    return out


def _mean_metrics(rows: List[dict]) -> dict:
    out = {}
    for k in METRIC_KEYS:
        vals = [r[k] for r in rows if k in r and r[k] is not None and math.isfinite(r[k])]
        if vals:
            out[k] = float(np.mean(vals))
    return out


def _finite(metrics: dict) -> dict:
    """A metrics row for JSON: infinite / nan values (identical images) become None."""
    return {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in metrics.items()}


def _parse_model(entry) -> dict:
    if isinstance(entry, dict):
        d = dict(entry)
        d.setdefault("label", d.get("model"))
        return d
    text = str(entry)
    name, weights = text, None
    if ":" in text and not text.startswith(("/", ".")):
        name, weights = text.split(":", 1)
    return {"model": name, "weights": weights or None, "label": text if weights else name}


def evaluate(model: str, data: "str | Path", bins: "str | Sequence" = DEFAULT_BINS, n: Optional[int] = None,
             size: int = 256, weights=None, outpaint: bool = False, strategy=None, device: str = "cpu",
             model_options: Optional[dict] = None, seed: int = M.EVAL_SEED, label: Optional[str] = None,
             images: "Optional[tuple]" = None, log: Optional[Callable[[str], None]] = None,
             cases: Optional[Iterable[str]] = None, keep: int = 0,
             masks: "Optional[str | Path]" = None,
             mask_cases: "Optional[dict]" = None, blend=None) -> dict:
    """Evaluate one model; returns {"model", "cases": {case: metrics}, "mean": ...,
    "per_image": {case: [metrics of each image]}, ...}.

    ``keep``: keep the uint8 results (and the hole masks, bool HxW, True = unknown) of the first
    ``keep`` images per case under ``result["samples"][case]`` for contact sheets.
    ``masks``: a folder of the user's own masks (:func:`load_mask_cases`; images at their own
    size unless ``images`` are given); ``mask_cases``: the same already loaded. ``blend``:
    inpainting fills' seam treatment (a ``blending.BLEND_MODES`` name; default none)."""
    from inpaint_gui.engine.model_cache import ModelCache
    from inpaint_gui.engine.service import RunRequest, RunService

    user_masks = masks is not None or mask_cases is not None
    if user_masks and outpaint:
        raise ValueError("--masks gives inpainting cases; it cannot be combined with --outpaint")
    names, imgs = images if images is not None else load_eval_images(
        data, None if user_masks and n is None else (20 if n is None else n),
        None if user_masks else size)
    if user_masks and mask_cases is None:
        mask_cases = load_mask_cases(masks, names, [im.shape for im in imgs])
    opts = dict(model_options or {})
    result = {"model": model, "label": label or model, "weights": str(weights) if isinstance(weights, (str, Path)) else
              (None if weights is None else "<state dict>"), "data": str(data),
              "size": None if user_masks else size,
              "n_images": len(imgs), "task": "outpaint" if outpaint else "inpaint",
              "seed": None if user_masks else seed, "masks": str(masks) if masks is not None else None,
              "strategy": str(strategy) if strategy else None, "blend": None if outpaint else (blend or "none"),
              "device": device, "cases": {}, "errors": {},
              "per_image": {}, "samples": {}}
    t_all = time.time()
    # a model cache of its own: the model lives as long as this evaluation (training
    # programmes evaluate snapshot after snapshot in one process)
    service = RunService(ModelCache())
    request = partial(RunRequest, model=model, weights=weights, device=device, model_options=opts)
    try:
        if outpaint:
            for case in list(cases or M.OUTPAINT_GOAL_CASES):
                unknown = float(M.outpaint_mask(size, size, M.outpaint_case_margins(size, size, case)).mean())
                _run_case(service, result, case, imgs, names, keep, log,
                          lambda i, img, c=case: _outpaint_input(img, c, request), unknown)
        else:
            # loaded before the cases (a load error is the evaluation's, not a case's); the
            # runs below find it in the cache
            service.load_model(model, weights=weights, device=device, **opts)
            for key, hole_of in _hole_cases(mask_cases, bins, seed):
                _run_case(service, result, key, imgs, names, keep, log,
                          lambda i, img, hole_of=hole_of: _inpaint_input(
                              img, hole_of(i, img), request, strategy, blend))
    finally:
        service.cache.clear()
    result["mean"] = _mean_metrics(list(result["cases"].values()))
    result["seconds"] = round(time.time() - t_all, 2)
    result["images"] = names
    return result


def _hole_cases(mask_cases: Optional[dict], bins, seed: int) -> list:
    """``[(case, hole_of(i, img) -> bool HxW, True = hole)]``: the user's masks, or the seeded
    masks of each hole-ratio bin."""
    if mask_cases is not None:
        return [(case, lambda i, img, hs=holes: hs[i]) for case, holes in mask_cases.items()]
    return [(M.bin_name(bn), lambda i, img, bn=bn: M.eval_mask(img.shape[:2], bn, i, seed=seed))
            for bn in M.parse_bins(bins)]


def _outpaint_input(img: np.ndarray, case: str, request):
    """(request, hole, expected shape) of an outpainting case: the known part of ``img``."""
    h, w = img.shape[:2]
    t, l, b, r = M.outpaint_case_margins(h, w, case)
    known = np.ascontiguousarray(img[t:h - b, l:w - r])
    return request(known, margins=(t, l, b, r)), M.outpaint_mask(h, w, (t, l, b, r))


def _inpaint_input(img: np.ndarray, hole: np.ndarray, request, strategy, blend=None):
    return request(img, mask=M.to_engine(hole), strategy=strategy, blend=blend), hole


def _run_case(service, result: dict, key: str, imgs, names, keep: int, log, input_of,
              unknown_ratio: Optional[float] = None) -> None:
    """Run every image of one case (``input_of(i, img) -> (request, hole)``) and record its
    metrics; the first error is the case's (the other cases go on). ``unknown_ratio``: an
    outpainting case's share of new area (inpainting cases record their hole ratio)."""
    rows, secs, ratios = [], 0.0, []
    for i, img in enumerate(imgs):
        req, hole = input_of(i, img)
        ratios.append(float(hole.mean()))
        t0 = time.time()
        try:
            out = service.run(req).image
        except Exception as exc:  # record and go on with the other cases
            result["errors"][key] = f"{type(exc).__name__}: {exc}"
            rows = []
            break
        secs += time.time() - t0
        if out.shape != img.shape:
            result["errors"][key] = f"outpaint returned {out.shape}, expected {img.shape}"
            rows = []
            break
        rows.append(all_metrics(out, img, hole=hole))
        if len(rows) <= keep:
            result["samples"].setdefault(key, []).append((out, hole))
    if rows:
        outpaint = unknown_ratio is not None
        ratio = {"unknown_ratio": unknown_ratio} if outpaint else {"hole_ratio": float(np.mean(ratios))}
        result["cases"][key] = dict(_mean_metrics(rows), n=len(rows), **ratio,
                                    sec_per_image=round(secs / len(rows), 4))
        result["per_image"][key] = [
            dict(_finite(r), image=Path(nm).name, **({} if outpaint else {"hole_ratio": hr}))
            for r, nm, hr in zip(rows, names, ratios)]
    if log:
        log(f"[eval] {result['label']} {key}: {_fmt_case(result['cases'].get(key))}"
            + (f" ERROR {result['errors'][key]}" if key in result["errors"] else ""))


SHEET_ROW_HEIGHT = 256  # rows of images of different sizes (``--masks``) are scaled to this


def contact_sheet(images: Sequence[np.ndarray], results: Sequence[dict], case: str,
                  rows: int = 4) -> np.ndarray:
    """A uint8 RGB grid for one case: per image a row of original | input (unknown pixels
    shown mid-grey) | each model's result (columns in ``results`` order). Needs ``keep``.
    Images of one size are shown 1:1; otherwise each row is scaled to
    :data:`SHEET_ROW_HEIGHT` px high (the user's own images with ``--masks``)."""
    import cv2
    samples = [r.get("samples", {}).get(case, []) for r in results]
    n = min([rows, len(images)] + [len(s) for s in samples])
    if n == 0:
        raise ValueError(f"no kept samples for case {case!r} (evaluate with keep > 0)")
    gap = 4
    cols = 2 + len(results)
    same = len({im.shape[:2] for im in images[:n]}) == 1
    row_tiles = []
    for i in range(n):
        hole = np.asarray(samples[0][i][1]) > 0
        shown = images[i].copy()
        shown[hole] = 128
        tiles = [images[i], shown] + [s[i][0] for s in samples]
        tiles = [t[..., :3] for t in tiles]
        if not same:
            h, w = tiles[0].shape[:2]
            th, tw = SHEET_ROW_HEIGHT, max(1, round(w * SHEET_ROW_HEIGHT / h))
            interp = cv2.INTER_AREA if th < h else cv2.INTER_CUBIC
            tiles = [cv2.resize(np.ascontiguousarray(t), (tw, th), interpolation=interp) for t in tiles]
        row_tiles.append(tiles)
    height = gap + sum(t[0].shape[0] + gap for t in row_tiles)
    width = max(cols * (t[0].shape[1] + gap) + gap for t in row_tiles)
    sheet = np.full((height, width, 3), 255, np.uint8)
    y = gap
    for tiles in row_tiles:
        h, w = tiles[0].shape[:2]
        for j, tile in enumerate(tiles):
            x = gap + j * (w + gap)
            sheet[y:y + h, x:x + w] = tile
        y += h + gap
    return sheet


def _fmt_case(c: Optional[dict]) -> str:
    if not c:
        return "-"
    return (f"PSNR {c.get('psnr', float('nan')):.2f} SSIM {c.get('ssim', float('nan')):.4f} "
            f"texture {c.get('texture', float('nan')):.3f} L1 {c.get('l1', float('nan')):.4f}")


def compare(models: Sequence, data: "str | Path", bins: "str | Sequence" = DEFAULT_BINS,
            n: Optional[int] = None, size: int = 256, outpaint: bool = False, strategy=None,
            device: str = "cpu", seed: int = M.EVAL_SEED, log: Optional[Callable[[str], None]] = None,
            keep: int = 0, masks: "Optional[str | Path]" = None,
            cases: Optional[Sequence[str]] = None, blend=None) -> dict:
    """Evaluate several models on identical images and masks.

    ``models``: names ("telea"), "name:weights_path" strings, or dicts with model / weights /
    label / model_options. ``n``: number of images (default 20; with ``masks`` every image).
    ``masks``: the user's own masks (:func:`load_mask_cases`): images at their own size, the
    layout is checked before any model runs. ``cases``: outpainting cases (default
    :data:`.masks.OUTPAINT_GOAL_CASES`). Returns {"results": [...], "rows": [...],
    "markdown": str}.
    """
    if masks is not None and outpaint:
        raise ValueError("--masks gives inpainting cases; it cannot be combined with --outpaint")
    if masks is not None:
        images = load_eval_images(data, n, None)
        mask_cases = load_mask_cases(masks, images[0], [im.shape for im in images[1]])
    else:
        images = load_eval_images(data, 20 if n is None else n, size)
        mask_cases = None
    results = []
    for entry in models:
        e = _parse_model(entry)
        results.append(evaluate(e["model"], data, bins=bins, n=n, size=size, weights=e.get("weights"),
                                outpaint=outpaint, strategy=strategy, device=device,
                                model_options=e.get("model_options"), seed=seed, label=e.get("label"),
                                images=images, log=log, keep=keep, masks=masks, mask_cases=mask_cases,
                                cases=cases, blend=e.get("blend", blend)))
    return {"results": results, "images": images[1], "rows": table_rows(results), "markdown": markdown_tables(results)}


def table_rows(results: Sequence[dict]) -> List[dict]:
    rows = []
    for r in results:
        for case, m in r["cases"].items():
            rows.append({"model": r["label"], "case": case, **{k: m.get(k) for k in METRIC_KEYS if k in m},
                         "sec_per_image": m.get("sec_per_image")})
    return rows


def markdown_tables(results: Sequence[dict]) -> str:
    """One markdown table per metric (rows = models, columns = bins / cases, plus the mean)."""
    if not results:
        return ""
    cases: List[str] = []
    for r in results:
        for c in list(r["cases"]) + list(r.get("errors", {})):
            if c not in cases:
                cases.append(c)
    r0 = results[0]
    if r0.get("masks"):
        head = (f"Evaluation: {r0['task']}, {r0['n_images']} images at their own size from "
                f"`{r0['data']}`, the masks of `{r0['masks']}` (identical masks for every model).")
    else:
        head = (f"Evaluation: {r0['task']}, {r0['n_images']} images at {r0['size']} px from `{r0['data']}`, "
                f"seed {r0['seed']} (identical masks for every model).")
    parts = [head, ""]
    spec = [("PSNR (dB, higher is better)", "psnr", "{:.2f}"), ("SSIM (higher is better)", "ssim", "{:.4f}"),
            ("Hole texture (gradient energy in the hole eroded by 5 px, fill / photo; 1 = as detailed)",
             "texture", "{:.3f}"),
            ("L1 (x100, lower is better)", "l1", "{:.3f}"), ("L1 inside the hole (x100)", "l1_hole", "{:.3f}")]
    for title, key, fmt in spec:
        parts.append(f"**{title}**")
        parts.append("")
        parts.append("| model | " + " | ".join(cases) + " | mean |")
        parts.append("|---|" + "---|" * (len(cases) + 1))
        for r in results:
            cells = []
            for c in cases + ["__mean__"]:
                m = r["mean"] if c == "__mean__" else r["cases"].get(c)
                v = None if m is None else m.get(key)
                if v is None:
                    cells.append("error" if c in r.get("errors", {}) else "-")
                else:
                    cells.append(fmt.format(v * 100 if key.startswith("l1") else v))
            parts.append(f"| {r['label']} | " + " | ".join(cells) + " |")
        parts.append("")
    secs = [(r["label"], np.mean([m["sec_per_image"] for m in r["cases"].values()])) for r in results if r["cases"]]
    if secs:
        parts.append("Seconds per image: " + ", ".join(f"{k} {v:.3f}" for k, v in secs))
    return "\n".join(parts) + "\n"


def save_json(obj, path: "str | Path") -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=str), parents=True)


# ----------------------------------------------------------------------------------------------
# model card draft for exported starter weights


def model_card(meta: dict) -> str:
    """Markdown model card draft from the trainer's export metadata."""
    cfg = meta.get("config", {})
    hw = meta.get("hardware", {})
    data = meta.get("data", {})
    lv = meta.get("last_val") or {}
    lines = [
        f"# {meta['arch'].upper()} starter weights ({meta['variant']} variant) — DRAFT",
        "",
        f"* File: `{meta.get('file', meta['arch'] + '_starter.pt')}` (generator state dict, fp16, keys exactly as "
        f"`inpaint_gui.engine.nets.create('{meta['arch']}', **options)`), sha256 `{meta.get('sha256', '?')}`",
        f"* Architecture: {meta['arch']} generator, variant `{meta['variant']}`, constructor options "
        f"`{json.dumps(meta.get('net_kwargs', {}))}` ({meta.get('params_G', 0) / 1e6:.2f} M parameters; "
        f"discriminator {meta.get('params_D', 0) / 1e6:.2f} M, not shipped)",
        f"* Status: {meta.get('status')} after {meta.get('step')} steps (planned {cfg.get('steps')}), "
        f"batch {cfg.get('batch')}, {cfg.get('size')} px crops, lr {cfg.get('lr') or 'official'} "
        f"({cfg.get('schedule')} schedule), EMA decay {cfg.get('ema_decay')} (exported: the EMA weights)",
        f"* Training data: `{data.get('root')}`: {data.get('train_files')} training photographs, "
        f"{data.get('val_files')} held out (split by file). See the data set's manifest for sources and "
        "licences of each photograph.",
        f"* Hardware: {hw.get('device')} ({hw.get('gpu') or hw.get('cpu', '?')}), torch {hw.get('torch')}, "
        f"{hw.get('torch_threads')} threads; training time {meta.get('elapsed_s', 0) / 3600:.2f} h",
        f"* Perceptual backbone: " + (f"{meta['vgg']['kind']} from `{meta['vgg']['path']}`" if meta.get("vgg")
                                       else "none (no ImageNet VGG weights available): VGG terms replaced by "
                                            "the substitute loss (multi-scale L1 + SSIM + gradient L1)"),
        "",
        "## Losses used",
        "",
    ]
    for stage, terms in (meta.get("losses_by_stage") or {"main": meta.get("losses_active", {})}).items():
        lines.append(f"Stage `{stage}`:")
        lines.append("")
        for k, v in terms.items():
            lines.append(f"* {k}: {v}")
        lines.append("")
    lines += [
        "## Validation (held-out photographs, fixed masks)",
        "",
        f"Last validation at step {lv.get('step', '-')}: PSNR {lv.get('psnr', float('nan')):.2f} dB, "
        f"SSIM {lv.get('ssim', float('nan')):.4f}, L1 {lv.get('l1', float('nan')):.4f} "
        f"on {lv.get('n', 0)} images, mean hole ratio {lv.get('hole_ratio', float('nan')):.2f} "
        "(composited outputs, whole image).",
        "",
        "Per-bin comparison with Telea / Navier-Stokes: run `inpaint eval --model "
        f"{meta['arch']} --weights {meta.get('file', '')} --data DATA --json OUT` (and the same for "
        "`telea`) and paste `evaluate.markdown_tables` here.",
        "",
        "## Limitations",
        "",
        "* Trained on a few hundred photographs on a CPU budget: expect blurry fills on large holes; "
        "these are starter weights, not the authors' release.",
        "* Not trained on faces specifically; no guarantees outside natural photographs.",
        "",
    ]
    return "\n".join(lines)
