"""``inpaint eval``: PSNR / SSIM / hole texture / L1 per hole-ratio bin, outpainting case or
folder of the user's own masks.

Examples::

    inpaint eval --model telea --data data/train_pool --json out/telea.json
    inpaint eval --model aot --weights runs/aot_small/export/aot_starter.pt --data data/train_pool \\
        --bins 10-20,30-40,50-60 --n 20 --json out/aot.json
    inpaint eval --model telea --model ns --model aot --data DIR --json out/cmp.json   # comparison
    inpaint eval --model srn --model telea-mask --outpaint --data DIR --json out/srn.json
    inpaint eval --model telea --model patchmatch --data photos/ --masks my_masks/ --json out/mine.json

``--masks MASKS``: the user's own masks, one sub-folder per case (``MASKS/CASE/<image stem>.png``,
255 = hole, one for every image); the images are used at their own size and the results are
keyed by the sub-folder names.

The CLI dispatches ``eval`` here: ``main_eval(argv_after_eval) -> exit code``.
"""
from __future__ import annotations

import argparse
from pathlib import Path
import json
import sys
from typing import List, Optional

from inpaint_gui.engine.blending import BLEND_MODES
from inpaint_gui.engine.registry import ModelUnavailableError

from .evaluate import DEFAULT_BINS, compare, save_json


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="inpaint eval",
        description="Evaluate models through the engine pipeline on fixed seeded masks (identical for "
                    "every model); prints markdown tables and writes JSON.")
    p.add_argument("--model", action="append", required=True,
                   help="model name (repeat to compare several; NAME:WEIGHTS also accepted)")
    p.add_argument("--weights", action="append", default=None,
                   help="weight file for the --model at the same position (repeat as needed)")
    p.add_argument("--data", required=True, help="image folder (its val/ sub-folder if present)")
    p.add_argument("--bins", default=DEFAULT_BINS, help=f"hole-ratio bins in percent (default {DEFAULT_BINS})")
    p.add_argument("--outpaint", action="store_true",
                   help="outpainting cases instead (right 25%%, 25%% left and right, bottom 25%%, 12%% on every "
                        "side; --cases picks others: all2x, bottom50)")
    p.add_argument("--cases", default=None,
                   help="--outpaint: comma-separated cases (default right25,leftright25,bottom25,all12)")
    p.add_argument("--masks", default=None, metavar="MASKS",
                   help="your own masks instead of the seeded bins: one sub-folder per case, each "
                        "with <image stem>.png (255 = hole) for every image; images are used at "
                        "their own size and results keyed by the sub-folder names")
    p.add_argument("--n", type=int, default=None,
                   help="number of images (default 20; with --masks every image)")
    p.add_argument("--size", type=int, default=256,
                   help="image side in px (default 256; not used with --masks)")
    p.add_argument("--strategy", default=None, help="HD strategy (default: the model's)")
    p.add_argument("--blend", default=None, choices=BLEND_MODES,
                   help="seam treatment of every inpainting fill (default none: the model's own fill)")
    p.add_argument("--device", default="auto",
                   help="auto | cpu | cuda | mps (default auto: cuda, then mps, then cpu, as for 'inpaint run')")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="model option passed to the loader (e.g. a variant's constructor kwargs)")
    p.add_argument("--seed", type=int, default=None, help="mask seed (default: the fixed evaluation seed)")
    p.add_argument("--json", dest="json_out", required=True, help="write the results here")
    p.add_argument("--sheet", default=None, metavar="PNG",
                   help="also write contact sheets (original | input | each model) here; one per "
                        "case, named PNG with the case appended")
    p.add_argument("--sheet-rows", type=int, default=4, help="images per contact sheet (default 4)")
    p.add_argument("--quiet", action="store_true")
    return p


def _parse_value(v: str):
    try:
        return json.loads(v)
    except ValueError:
        return v


def main_eval(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    weights = list(args.weights or [])
    if len(weights) > len(args.model):
        print("inpaint eval: more --weights than --model", file=sys.stderr)
        return 2
    options = {}
    for item in args.option:
        if "=" not in item:
            print(f"inpaint eval: --option expects KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        k, v = item.split("=", 1)
        options[k] = _parse_value(v)
    entries = []
    for i, m in enumerate(args.model):
        e = {"model": m, "label": m, "weights": None}
        if ":" in m and not m.startswith(("/", ".")):
            e["model"], e["weights"] = m.split(":", 1)
        if i < len(weights):
            e["weights"] = weights[i]
        if e["weights"]:
            e["label"] = f"{e['model']} ({e['weights'].rsplit('/', 1)[-1]})"
        if options:
            e["model_options"] = options
        entries.append(e)
    from . import masks as M
    if args.masks and args.outpaint:
        print("inpaint eval: --masks gives inpainting cases; it cannot be combined with --outpaint",
              file=sys.stderr)
        return 2
    if args.outpaint and args.blend:
        print("inpaint eval: --blend is the seam treatment of inpainting fills; outpainting has no seam "
              "inside a hole to treat", file=sys.stderr)
        return 2
    log = None if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    try:
        if args.cases:
            unknown = [c for c in args.cases.split(",") if c not in M.OUTPAINT_CASES]
            if unknown:
                raise ValueError(f"unknown outpaint case(s) {', '.join(unknown)}; choose from "
                                 f"{', '.join(M.OUTPAINT_CASES)}")
        res = compare(entries, args.data, bins=args.bins, n=args.n, size=args.size, outpaint=args.outpaint,
                      cases=args.cases.split(",") if args.cases else None,
                      strategy=args.strategy, device=args.device,
                      seed=M.EVAL_SEED if args.seed is None else args.seed, log=log,
                      keep=args.sheet_rows if args.sheet else 0, masks=args.masks, blend=args.blend)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"inpaint eval: {exc}", file=sys.stderr)
        return 2
    except ModelUnavailableError as exc:
        print(f"inpaint eval: {exc}", file=sys.stderr)
        return 1
    if args.sheet:
        from inpaint_gui.engine.imageio import save_image
        from .evaluate import contact_sheet
        stem = Path(args.sheet)
        cases = [c for c in res["results"][0]["cases"]] if res["results"] else []
        for case in cases:
            target = stem.with_name(f"{stem.stem}_{case}{stem.suffix or '.png'}")
            save_image(target, contact_sheet(res["images"], res["results"], case, rows=args.sheet_rows),
                       overwrite=True)
            print(f"wrote {target}", file=sys.stderr)
    for r in res["results"]:
        r.pop("samples", None)
    res.pop("images", None)
    save_json(res, args.json_out)
    print(res["markdown"])
    failed = [r["label"] for r in res["results"] if r["errors"] and not r["cases"]]
    return 1 if failed and len(failed) == len(res["results"]) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main_eval(sys.argv[1:]))
