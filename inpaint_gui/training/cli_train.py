"""``inpaint train``: train RFR / AOT-GAN / SRN generators (starter weights) on a photo folder.

Examples::

    inpaint train --arch aot --variant small --data data/train_pool --size 128 --out runs/aot_small
    inpaint train --arch aot --variant small --data data/train_pool --out runs/aot_small --resume
    inpaint train --arch rfr --data photos/ --out runs/rfr --vgg vgg16-397923af.pth --device cuda --amp

Training programmes (continue across sessions and machines from models/train_state/)::

    inpaint train --arch aot --variant base --out runs/aot_base --resume \
        --snapshot-to models/train_state --plan plan.json          # start a programme from a run
    inpaint train --programme aot --data data/train_pool --minutes 240 --threads 2 --amp

The CLI dispatches ``train`` here: ``main_train(argv_after_train) -> exit code``.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from .trainer import ARCHS, VARIANTS

# options that may be changed when resuming (everything else comes from the checkpoint)
# (--size / --batch allow progressive training, e.g. 128 px then 256 px; not for SRN, whose
# global critic's dense layer depends on the size)
RESUME_OVERRIDABLE = ("steps", "device", "threads", "workers", "val_every", "ckpt_every", "log_every",
                      "max_minutes", "cache_mb", "amp", "channels_last", "size", "batch",
                      "pretrain_steps")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="inpaint train",
        description="Train an inpainting generator (RFR-Net, AOT-GAN) or the SRN outpainter on a folder "
                    "of photographs; writes RUN_DIR/last.pt (resumable), log.jsonl, run.json and "
                    "RUN_DIR/export/<arch>_starter.pt (+ model card draft).")
    p.add_argument("--arch", choices=ARCHS, help="architecture (required unless --programme)")
    p.add_argument("--variant", default=None,
                   help="official | base | medium | small | tiny: width/depth presets of the same "
                        "architecture (trainer.VARIANTS says which each architecture has; default official)")
    p.add_argument("--data", help="folder of images (recursive); train/ and val/ sub-folders are used if present")
    p.add_argument("--out", help="run directory (required unless --programme)")
    p.add_argument("--size", type=int, default=None, help="training crop side in px (default 256)")
    p.add_argument("--steps", type=int, default=None, help="total training steps (default 20000)")
    p.add_argument("--batch", type=int, default=None, help="batch size (default: 4 on CPU, official on CUDA)")
    p.add_argument("--lr", type=float, default=None, help="generator learning rate (default: official)")
    p.add_argument("--d-lr", type=float, default=None, help="discriminator learning rate (default: = --lr)")
    p.add_argument("--resume", action="store_true", help="continue RUN_DIR/last.pt")
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N | mps (default auto)")
    p.add_argument("--amp", action="store_true", default=None, help="mixed precision: bf16 autocast (fp16 on CUDA cards without bf16); on a CPU only where bf16 is native (AVX512-BF16/AMX)")
    p.add_argument("--channels-last", dest="channels_last", action="store_true", default=None,
                   help="channels_last memory format (default: on for CUDA)")
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    p.add_argument("--vgg", default=None,
                   help="torchvision-format VGG16/VGG19 weights; enables perceptual/style/ID-MRF terms "
                        "(without it a substitute loss is used)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--workers", type=int, default=None, help="data loading threads (default 2; 0 = inline)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--schedule", choices=("constant", "cosine"), default=None,
                   help="learning-rate schedule (official: constant)")
    p.add_argument("--warmup", type=int, default=None, help="linear warm-up steps")
    p.add_argument("--ema-decay", type=float, default=None, help="EMA decay of the generator (0 = off; default 0.999)")
    p.add_argument("--val-every", type=int, default=None, help="validate every N steps (default 500)")
    p.add_argument("--val-count", type=int, default=None, help="validation images (default 16)")
    p.add_argument("--ckpt-every", type=int, default=None, help="checkpoint every N steps (default 250)")
    p.add_argument("--log-every", type=int, default=None, help="log every N steps (default 10)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop (checkpoint + export) after this time")
    p.add_argument("--cache-mb", type=int, default=None, help="decoded-image cache (default 1024 MB)")
    p.add_argument("--finetune-at", type=int, default=None,
                   help="RFR: step where the fine-tune stage (BatchNorm frozen, lr 5e-5) starts (default 2/3)")
    p.add_argument("--pretrain-steps", type=int, default=None,
                   help="SRN: reconstruction-only steps before adversarial fine-tuning (default 70%%)")
    p.add_argument("--d-steps", type=int, default=None, help="SRN: critic steps per generator step (official 5)")
    p.add_argument("--adv-convention", choices=("paper", "official"), default=None,
                   help="AOT SM-PatchGAN labels (default paper; see losses.SMGANLoss)")
    p.add_argument("--export-only", action="store_true", help="re-export RUN_DIR/last.pt and exit")
    g = p.add_argument_group("training programmes (resumable from a compact committed snapshot)")
    g.add_argument("--programme", choices=ARCHS, metavar="ARCH",
                   help="continue the programme of ARCH kept in --state-dir (phase after phase; "
                        "snapshot at every checkpoint)")
    g.add_argument("--state-dir", default=None, help="programme state folder (default models/train_state)")
    g.add_argument("--status", choices=ARCHS, metavar="ARCH",
                   help="print ARCH's programme: plan, step, time spent, evaluations (markdown)")
    g.add_argument("--minutes", type=float, default=None, help="--programme: train this long (default 60)")
    g.add_argument("--eval-every", type=int, default=None,
                   help="--programme: per-bin evaluation against Telea every N steps (default: at the end)")
    g.add_argument("--snapshot-to", default=None, metavar="DIR",
                   help="write RUN_DIR's state as a programme snapshot into DIR (with --plan) and exit")
    g.add_argument("--plan", default=None,
                   help="--snapshot-to: the programme's phases, a JSON list or a .json file")
    g.add_argument("--init-weights", default=None, metavar="PT",
                   help="--snapshot-to: start the programme from these generator weights (e.g. the "
                        "shipped starter) instead of the run's")
    g.add_argument("--grow", default=None, metavar="VARIANT",
                   help="with --programme: move the programme to this larger variant, keeping what it "
                        "learned (function-preserving growth: aot small -> medium -> base, srn small -> "
                        "medium), and exit")
    g.add_argument("--grow-note", default="", help="--grow: why (kept in the programme's state)")
    g.add_argument("--init-step", type=int, default=0,
                   help="--init-weights: the step those weights were trained to")
    return p


def _config_from_args(args):
    from .trainer import TrainConfig, read_checkpoint_config
    given = {k: v for k, v in vars(args).items() if v is not None}
    for k in ("resume", "export_only", "arch", "out", "programme", "state_dir", "minutes", "eval_every",
              "snapshot_to", "plan", "init_weights", "init_step", "status", "grow", "grow_note"):
        given.pop(k, None)
    prev = read_checkpoint_config(args.out) if (args.resume or args.export_only or args.snapshot_to) else None
    if prev is not None:
        if prev.get("arch") != args.arch:
            raise SystemExit(f"inpaint train: {args.out} holds a {prev.get('arch')} run, not {args.arch}")
        if args.variant and args.variant != prev.get("variant"):
            raise SystemExit(f"inpaint train: {args.out} holds the {prev.get('variant')} variant")
        cfg = TrainConfig.from_dict(prev)
        ignored = []
        for k, v in given.items():
            if k in RESUME_OVERRIDABLE:
                setattr(cfg, k, v)
            elif k != "variant" and k in cfg.to_dict() and cfg.to_dict()[k] != v:
                ignored.append(k)
        if ignored:
            print(f"note: resuming keeps the run's {', '.join(ignored)}", file=sys.stderr)
        return cfg
    if not args.data:
        raise SystemExit("inpaint train: --data is required")
    kw = dict(given)
    kw.setdefault("variant", "official")
    return TrainConfig(arch=args.arch, out=args.out, **kw)


def _main_programme(args) -> int:
    from .programme import DEFAULT_STATE_DIR, run_programme
    if not args.data:
        print("inpaint train: --programme needs --data (the photo pool)", file=sys.stderr)
        return 2
    session = {k: getattr(args, k) for k in ("device", "threads", "workers", "amp", "channels_last",
                                             "val_every", "ckpt_every", "log_every", "cache_mb")}
    res = run_programme(args.programme, args.data, state_dir=args.state_dir or DEFAULT_STATE_DIR,
                        minutes=args.minutes or 60.0, eval_every=args.eval_every or 0, **session)
    print(f"programme {args.programme}: {res.get('status')} at step {res.get('step')}")
    return 0 if res.get("status") in ("finished", "time limit", "plan complete", "interrupted") else 1


def _load_plan(text: str) -> list:
    import json
    import os
    raw = open(text, encoding="utf-8").read() if os.path.isfile(text) else text
    plan = json.loads(raw)
    if not isinstance(plan, list) or not all(isinstance(ph, dict) and "until" in ph for ph in plan):
        raise ValueError("--plan must be a JSON list of phases, each with 'until'")
    return plan


def main_train(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.status:
        from .programme import DEFAULT_STATE_DIR, read_state, state_path, status_markdown
        try:
            print(status_markdown(read_state(state_path(args.state_dir or DEFAULT_STATE_DIR, args.status))))
        except (FileNotFoundError, ValueError) as exc:
            print(f"inpaint train: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.programme and args.grow:
        from .programme import DEFAULT_STATE_DIR, grow_programme
        try:
            path = grow_programme(args.state_dir or DEFAULT_STATE_DIR, args.programme, args.grow, args.grow_note)
        except (FileNotFoundError, ValueError) as exc:
            print(f"inpaint train: {exc}", file=sys.stderr)
            return 2
        print(f"programme {args.programme}: grown to the {args.grow} variant ({path})")
        return 0
    if args.programme:
        try:
            return _main_programme(args)
        except (FileNotFoundError, ValueError) as exc:
            print(f"inpaint train: {exc}", file=sys.stderr)
            return 2
    if not args.arch or not args.out:
        print("inpaint train: --arch and --out are required (or --programme ARCH)", file=sys.stderr)
        return 2
    if args.variant and args.variant not in VARIANTS[args.arch]:
        print(f"inpaint train: unknown variant {args.variant!r} for {args.arch} "
              f"(choose {', '.join(VARIANTS[args.arch])})", file=sys.stderr)
        return 2
    try:
        cfg = _config_from_args(args)
        from .trainer import Trainer
        if args.snapshot_to:
            from .programme import new_programme
            if not args.plan:
                raise ValueError("--snapshot-to needs --plan")
            from pathlib import Path
            tr = Trainer(cfg, resume=(Path(cfg.out) / "last.pt").is_file())  # fresh: step 0
            try:
                path = new_programme(tr, args.snapshot_to, _load_plan(args.plan),
                                     init_weights=args.init_weights, init_step=args.init_step)
            finally:
                tr.close()
            print(f"wrote {path}")
            return 0
        if args.export_only:
            tr = Trainer(cfg, resume=True)
            try:
                path = tr.export(status="exported")
            finally:
                tr.close()
            print(f"exported {path}")
            return 0
        tr = Trainer(cfg, resume=args.resume)
        try:
            res = tr.run()
        finally:
            tr.close()
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
        print(f"inpaint train: {exc}", file=sys.stderr)
        return 2
    return 0 if res["status"] in ("finished", "paused") else (130 if res["status"] == "interrupted" else 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main_train(sys.argv[1:]))
