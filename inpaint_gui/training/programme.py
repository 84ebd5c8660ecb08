"""Training programmes: training that resumes across machines from a compact committed snapshot.

A programme's state lives in one folder (``models/train_state/`` in the repository)::

    <arch>.json     arch, variant, step, config, plan (phases), seeds, curve, evaluations
                    against Telea, sessions (hardware, steps/s, CPU-hours), sha256 of the files
    <arch>_g.pt     the EMA generator, fp16 state dict (the format of ``models/<arch>_starter.pt``)
    <arch>_d.pt     the discriminator, fp16 state dict (adversarial terms continue where they were)

The optimiser moments are not kept: a resume starts Adam afresh and re-warms the learning rate
over ``config.rewarm`` steps (:meth:`.trainer.Trainer.rewarm_factor`). The learning-rate schedule
is a pure function of the step, and batch ``k`` (crops, flips, jitter, masks) depends only on
``(seed, k)`` (:class:`.data.BatchSource`), so a resumed programme continues the same schedule
and the same mask sequence on any machine.

``plan`` is a list of phases, each ``{"name", "until": step, <TrainConfig overrides>}`` (for
example 128-px crops, then 256 px, then an adversarial fine-tune; ``"variant"`` names the variant
a phase needs, which :func:`grow_programme` reaches); :func:`run_programme` trains
the current phase until its ``until`` step or the time limit, writes the snapshot at every
checkpoint, and moves on to the next phase. A phase's overrides are kept in the state's config
for the phases after it: a phase that needs the default back (a constant schedule after a
cosine one) says so.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Callable, List, Optional

import torch

SNAPSHOT_FORMAT = "inpaint_gui.snapshot/1"
DEFAULT_STATE_DIR = "models/train_state"
# TrainConfig fields a phase of the plan may set
PHASE_KEYS = ("size", "batch", "lr", "d_lr", "adv_weight", "texture_weight", "psnr_weight",
              "schedule", "warmup", "min_lr_factor",
              "jitter", "ema_decay", "finetune_at", "pretrain_steps", "d_steps", "rewarm", "srn_canvas", "mask_mix")
# per-bin evaluation of the programme's snapshots (the goal is stated on these bins)
EVAL_BINS = "20-30,30-40,40-50,50-60"
EVAL_N = 20
EVAL_SIZE = 256


def state_path(state_dir: "str | Path", arch: str) -> Path:
    return Path(state_dir) / f"{arch}.json"


def _fp16(sd: dict) -> dict:
    return {k: (v.detach().to("cpu").half() if v.dtype.is_floating_point else v.detach().to("cpu").clone())
            for k, v in sd.items()}


def _now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


def read_state(path: "str | Path") -> dict:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no programme state at {p}")
    st = json.loads(p.read_text(encoding="utf-8"))
    if st.get("format") != SNAPSHOT_FORMAT:
        raise ValueError(f"{p} is not a training-programme state ({st.get('format')!r})")
    return st


def read_snapshot(path: "str | Path") -> dict:
    """The state JSON plus its weights (``{"state", "G", "D", "dir"}``), checksums verified."""
    from inpaint_gui.engine.weights import sha256_file
    p = Path(path)
    st = read_state(p)
    out = {"state": st, "dir": p.parent, "G": None, "D": None}
    for key, rec in (st.get("files") or {}).items():
        f = p.parent / rec["file"]
        if not f.is_file():
            raise FileNotFoundError(f"programme snapshot {p}: {f.name} is missing")
        if rec.get("sha256") and sha256_file(f) != rec["sha256"]:
            raise ValueError(f"programme snapshot {p}: {f.name} does not match its sha256 "
                             "(changed or partly written)")
        out[key] = torch.load(str(f), map_location="cpu", weights_only=True)
    if out["G"] is None:
        raise ValueError(f"programme snapshot {p} has no generator weights")
    return out


def write_snapshot(tr, state_dir: "str | Path", plan: Optional[List[dict]] = None,
                   extra: Optional[dict] = None) -> Path:
    """Write ``<arch>_g.pt`` (fp16 EMA generator), ``<arch>_d.pt`` (fp16 discriminator) and
    ``<arch>.json`` into ``state_dir``, keeping the evaluations and sessions already recorded
    there. Weights first, JSON last (atomic each), so the JSON never names a partial file."""
    from inpaint_gui.engine.fsutil import atomic_torch_save, atomic_write_text
    from inpaint_gui.engine.weights import sha256_file
    from .trainer import _json_default, hardware_info
    d = Path(state_dir)
    d.mkdir(parents=True, exist_ok=True)
    arch = tr.cfg.arch
    p = state_path(d, arch)
    prev = read_state(p) if p.is_file() else {}
    files = {}
    g = _fp16(tr.eval_generator().state_dict())
    atomic_torch_save(g, d / f"{arch}_g.pt")
    files["G"] = {"file": f"{arch}_g.pt", "sha256": sha256_file(d / f"{arch}_g.pt")}
    # SRN's critics only train after its reconstruction stage: an untrained one is not worth a file
    if tr.arch.D is not None and tr.arch.stage(tr.step) != "pretrain":
        atomic_torch_save(_fp16(tr.arch.D.state_dict()), d / f"{arch}_d.pt")
        files["D"] = {"file": f"{arch}_d.pt", "sha256": sha256_file(d / f"{arch}_d.pt")}
    cfg = tr.cfg.to_dict()
    for k in ("data", "out", "device", "threads", "workers", "max_minutes", "amp", "channels_last", "cache_mb"):
        cfg.pop(k, None)  # where and how it runs is the session's business, not the programme's
    a = tr.arch
    st = {
        "format": SNAPSHOT_FORMAT,
        "arch": arch,
        "variant": tr.cfg.variant,
        "net_kwargs": a.net_kwargs,
        "params_G": sum(q.numel() for q in a.G.parameters()),
        "step": tr.step,
        "config": cfg,
        "plan": plan if plan is not None else prev.get("plan", []),
        "schedule": {"kind": tr.cfg.schedule, "lr": a.lr, "d_lr": a.d_lr, "stage": a.stage(tr.step),
                     "lr_at_step": a.lr_at(tr.step)[0], "rewarm_steps": tr.cfg.rewarm},
        "seeds": {"data": tr.cfg.seed, "torch": "derived from (seed, step) on resume",
                  "eval": prev.get("seeds", {}).get("eval")},
        "elapsed_s": round(tr.elapsed, 1),
        "cpu_hours": prev.get("cpu_hours", 0.0),
        "gpu_hours": prev.get("gpu_hours", 0.0),
        "files": files,
        "curve": tr.val_history,
        "evals": prev.get("evals", []),
        "reference": prev.get("reference", {}),
        "sessions": prev.get("sessions", []),
        "updated": _now(),
        "hardware": hardware_info(tr.device),
    }
    for k, v in prev.items():  # records this writer does not own (growth, experiments, notes) stay
        st.setdefault(k, v)
    if extra:
        st.update(extra)
    atomic_write_text(p, json.dumps(st, indent=1, default=_json_default), parents=True)
    return p


def phase_at(plan: List[dict], step: int) -> Optional[dict]:
    """The first phase whose ``until`` lies beyond ``step`` (None: the plan is done)."""
    for ph in plan:
        if int(ph["until"]) > step:
            return ph
    return None


def growth_needed(state: dict, phase: Optional[dict]) -> Optional[str]:
    """The variant ``phase`` names when the snapshot in ``state`` has not been grown to it, else None."""
    want = (phase or {}).get("variant")
    return want if want and want != state["variant"] else None


def phase_config(state: dict, phase: dict, data: str, out: str, **session):
    """TrainConfig for ``phase`` of a programme: the programme's config, the phase's overrides,
    then the session's own settings (data, device, threads, ...)."""
    from .trainer import TrainConfig
    bad = [k for k in phase if k not in PHASE_KEYS + ("name", "until", "note", "variant")]
    if bad:
        raise ValueError(f"phase {phase.get('name')!r}: unknown setting(s) {', '.join(bad)}")
    want = growth_needed(state, phase)
    if want:
        # a phase planned for a grown network must not train the old one under its name
        raise ValueError(f"phase {phase.get('name')!r} of the {state['arch']} plan trains the {want} variant, but "
                         f"the snapshot is the {state['variant']} one: grow it first with "
                         f"`inpaint train --programme {state['arch']} --grow {want}`")
    if phase.get("mask_mix") is not None:
        from .masks import TRAIN_MIXES
        if phase["mask_mix"] not in TRAIN_MIXES:
            raise ValueError(f"phase {phase.get('name')!r}: unknown mask_mix {phase['mask_mix']!r}; "
                             f"choose one of {', '.join(TRAIN_MIXES)}")
    d = dict(state["config"])
    d.update({k: v for k, v in phase.items() if k in PHASE_KEYS})
    d.update({k: v for k, v in session.items() if v is not None})
    d.update(arch=state["arch"], variant=state["variant"], data=data, out=out, steps=int(phase["until"]))
    return TrainConfig.from_dict(d)


# ----------------------------------------------------------------------------------------------
# evaluation against Telea (the numbers: per hole bin, PSNR / SSIM / texture)


def evaluate_snapshot(state_dir: "str | Path", arch: str, data: str, n: int = EVAL_N, size: int = EVAL_SIZE,
                      bins: str = EVAL_BINS, log: Optional[Callable[[str], None]] = None) -> dict:
    """Evaluate the snapshot's generator and (once per setting) its baseline on the held-out
    photos -- Telea per hole bin for RFR/AOT, Telea on the new margin for the outpainting cases
    of SRN -- append the record to the state's ``evals`` and return it."""
    from inpaint_gui.engine.fsutil import atomic_write_text

    from .evaluate import evaluate, load_eval_images
    from .masks import EVAL_SEED, OUTPAINT_GOAL_CASES
    from .trainer import _json_default
    p = state_path(state_dir, arch)
    snap = read_snapshot(p)
    st = snap["state"]
    images = load_eval_images(data, n, size)
    from inpaint_gui.engine.registry import get_spec
    outpaint = get_spec(arch).task == "outpaint"
    base = "telea-mask" if outpaint else "telea"
    cases = list(OUTPAINT_GOAL_CASES) if outpaint else None
    key = (f"n{n}_s{size}_{','.join(cases)}" if outpaint else f"n{n}_s{size}_{bins}") + f"_seed{EVAL_SEED}"
    ref = st.setdefault("reference", {})
    if key not in ref:
        t = evaluate(base, data, bins=bins, n=n, size=size, images=images, outpaint=outpaint, cases=cases)
        ref[key] = {base: t["cases"], "images": [Path(x).name for x in images[0]]}
    # the variant's constructor options: not all of them can be read off the tensors (RFR's
    # recurrence count shares its weights; a bare state dict would run the official 6)
    opts = {k: (list(v) if isinstance(v, tuple) else v) for k, v in (st.get("net_kwargs") or {}).items()}
    if outpaint:  # SRN runs on windows of the size it is being trained at (half its canvas)
        opts["window"] = [st["config"]["size"] // 2] * 2
    r = evaluate(arch, data, bins=bins, n=n, size=size, weights=snap["G"], images=images, outpaint=outpaint,
                 cases=cases, model_options=opts)
    baseline = ref[key][base]
    rec = {"step": st["step"], "cpu_hours": round(st.get("cpu_hours", 0.0), 3),
           "gpu_hours": round(st.get("gpu_hours", 0.0), 3), "setting": key,
           "baseline": base, "time": _now(), "bins": {}}
    for b, m in r["cases"].items():
        t = baseline.get(b, {})
        rec["bins"][b] = {k: round(float(m[k]), 4) for k in ("psnr", "ssim", "texture") if k in m}
        rec["bins"][b]["dpsnr_vs_telea"] = round(float(m["psnr"] - t.get("psnr", math.nan)), 3)
        rec["bins"][b]["dssim_vs_telea"] = round(float(m["ssim"] - t.get("ssim", math.nan)), 4)
    if r["errors"]:
        rec["errors"] = r["errors"]
    st.setdefault("evals", []).append(rec)
    atomic_write_text(p, json.dumps(st, indent=1, default=_json_default), parents=True)
    if log:
        log(format_eval(rec))
    return rec


def evaluate_in_subprocess(state_dir: "str | Path", arch: str, data: str,
                           log: Optional[Callable[[str], None]] = None) -> bool:
    """:func:`evaluate_snapshot` in a fresh interpreter: a programme trains for hours while
    the code around it may change, and an evaluation must neither run stale code nor stop the
    training when it fails (the failure is logged). Returns whether it succeeded."""
    import subprocess
    import sys
    code = ("import sys; from inpaint_gui.training.programme import evaluate_snapshot; "
            "evaluate_snapshot(sys.argv[1], sys.argv[2], sys.argv[3], log=print)")
    try:
        res = subprocess.run([sys.executable, "-c", code, str(state_dir), arch, str(data)],
                             capture_output=True, text=True, timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        if log:
            log(f"[eval] failed: {exc}")
        return False
    if log:
        for line in res.stdout.splitlines():
            if line.startswith("[eval]"):
                log(line)
        if res.returncode:
            log(f"[eval] failed: {(res.stderr.strip().splitlines() or ['?'])[-1]}")
    return res.returncode == 0


def status_markdown(state: dict) -> str:
    """A programme's state for people: plan, position, time spent, the evaluation curve
    against its baseline per bin/case (markdown)."""
    plan = state.get("plan") or []
    ph = phase_at(plan, int(state["step"]))
    lines = [f"**{state['arch']} / {state['variant']}** ({state.get('params_G', 0) / 1e6:.2f} M parameters): "
             f"step {state['step']}, phase {ph.get('name') if ph else 'plan complete'}; "
             f"{state.get('cpu_hours', 0):.2f} CPU-hours, {state.get('gpu_hours', 0):.2f} GPU-hours "
             f"in {len(state.get('sessions') or [])} session(s)",
             "",
             "Plan: " + "; ".join(f"{p.get('name')} until {p['until']}"
                                  + (f" ({', '.join(f'{k} {v}' for k, v in p.items() if k in PHASE_KEYS)})")
                                  for p in plan)]
    for gr in state.get("growth") or []:
        lines.append(f"Grown at step {gr['step']}: {gr['from']} -> {gr['to']}" + (f" ({gr['note']})" if gr.get("note") else ""))
    evals = state.get("evals") or []
    if evals:
        cases = list(evals[-1]["bins"])
        base = evals[-1].get("baseline", "telea")
        lines += ["", f"| step | CPU-h | " + " | ".join(f"{c}: dB vs {base} / SSIM / texture" for c in cases) + " |",
                  "|---|---|" + "---|" * len(cases)]
        for e in evals:
            cells = []
            for c in cases:
                m = e["bins"].get(c)
                cells.append("-" if not m else f"{m['dpsnr_vs_telea']:+.2f} / {m['dssim_vs_telea']:+.4f} / "
                                               f"{m.get('texture', math.nan):.2f}")
            lines.append(f"| {e['step']} | {e.get('cpu_hours', 0):.2f} | " + " | ".join(cells) + " |"
                         + (f" {e['note']}" if e.get("note") else ""))
    return "\n".join(lines) + "\n"


def format_eval(rec: dict) -> str:
    cells = [f"{b}: {m['dpsnr_vs_telea']:+.2f} dB, SSIM {m['dssim_vs_telea']:+.4f}, tex {m.get('texture', math.nan):.2f}"
             for b, m in rec["bins"].items()]
    return (f"[eval] step {rec['step']} ({rec['cpu_hours']:.2f} CPU-h) vs {rec.get('baseline', 'telea')}: "
            + "; ".join(cells))


def grow_programme(state_dir: "str | Path", arch: str, variant: str, note: str = "") -> Path:
    """Move the programme of ``arch`` to the larger ``variant`` without losing what it learned:
    the generator is grown function-preservingly (:mod:`.grow`), step, schedule, curve and
    evaluations stay, and a ``growth`` record says when and why. Training continues with the
    plan's next phase at the same step."""
    from inpaint_gui.engine.fsutil import atomic_torch_save, atomic_write_text
    from inpaint_gui.engine.weights import sha256_file
    from inpaint_gui.engine import nets
    from .grow import grow_state_dict
    from .trainer import D_CNUM, _json_default, variant_kwargs
    p = state_path(state_dir, arch)
    snap = read_snapshot(p)
    st = snap["state"]
    old_variant, kw = st["variant"], variant_kwargs(arch, variant)
    g = grow_state_dict(arch, st.get("net_kwargs") or variant_kwargs(arch, old_variant), kw, snap["G"])
    net = nets.create(arch, **kw)
    net.load_state_dict({k: v.float() for k, v in g.items()}, strict=True)  # the variant's exact layout
    g_file = Path(state_dir) / f"{arch}_g.pt"
    atomic_torch_save(_fp16(g), g_file)
    st.setdefault("growth", []).append({"step": st["step"], "from": old_variant, "to": variant,
                                        "params_from": st.get("params_G"), "time": _now(), "note": note})
    st["variant"] = variant
    st["config"]["variant"] = variant
    st["net_kwargs"] = kw
    st["params_G"] = sum(q.numel() for q in net.parameters())
    st["files"]["G"] = {"file": g_file.name, "sha256": sha256_file(g_file)}
    if D_CNUM.get(old_variant) != D_CNUM.get(variant):
        st["files"].pop("D", None)  # a critic of another width: the next session starts a fresh one
    st["updated"] = _now()
    atomic_write_text(p, json.dumps(st, indent=1, default=_json_default), parents=True)
    return p


# ----------------------------------------------------------------------------------------------
# the runner


def new_programme(tr, state_dir: "str | Path", plan: List[dict], init_weights: "str | Path | None" = None,
                  init_step: int = 0) -> Path:
    """Write the first snapshot of a programme from trainer ``tr`` (fresh or resumed run), or
    from ``init_weights`` (a generator state dict, e.g. the shipped starter) taken as the
    programme's state at step ``init_step``. When the file is already the fp16 snapshot format
    its bytes are kept as they are, so the repository stores one copy of them."""
    for ph in plan:
        if "until" not in ph:
            raise ValueError("every phase of the plan needs 'until'")
    if init_weights is None:
        return write_snapshot(tr, state_dir, plan=plan)
    from inpaint_gui.engine.fsutil import atomic_write_text
    from inpaint_gui.engine.weights import sha256_file
    from .trainer import _json_default
    sd = torch.load(str(init_weights), map_location="cpu", weights_only=True)
    g = {k: v.float() if v.dtype.is_floating_point else v for k, v in sd.items()}
    tr.arch.G.load_state_dict(g, strict=True)
    if tr.ema is not None:
        tr.ema.load_state_dict(g)
    tr.step = int(init_step)
    p = write_snapshot(tr, state_dir, plan=plan)
    g_file = Path(state_dir) / f"{tr.cfg.arch}_g.pt"
    if all(v.dtype == torch.float16 for v in sd.values() if v.dtype.is_floating_point) and \
            all(torch.equal(sd[k], v) for k, v in torch.load(str(g_file), weights_only=True).items()):
        shutil.copyfile(init_weights, g_file)
        st = read_state(p)
        st["files"]["G"]["sha256"] = sha256_file(g_file)
        atomic_write_text(p, json.dumps(st, indent=1, default=_json_default), parents=True)
    return p


def run_programme(arch: str, data: str, state_dir: "str | Path" = DEFAULT_STATE_DIR, minutes: float = 60.0,
                  run_root: "str | Path" = "runs/programme", eval_every: int = 0,
                  log: Optional[Callable[[str], None]] = print, **session) -> dict:
    """Continue the programme in ``state_dir`` for up to ``minutes``: phase after phase, a
    snapshot at every checkpoint and at the end, a per-bin evaluation against Telea every
    ``eval_every`` steps (0 = only at the end). ``session``: device, threads, workers, amp,
    ckpt_every, val_every, log_every (the session's own settings, not the programme's)."""
    from .trainer import Trainer, hardware_info
    log = log or (lambda s: None)
    deadline = time.time() + minutes * 60.0
    p = state_path(state_dir, arch)
    result = {"status": "nothing to do"}
    while time.time() < deadline - 5:
        snap = read_snapshot(p)
        st = snap["state"]
        phase = phase_at(st.get("plan") or [], int(st["step"]))
        if phase is None:
            result = {"status": "plan complete", "step": st["step"]}
            log(f"[programme] {arch}: the plan is complete at step {st['step']}")
            break
        # the run folder only serves this call (the snapshot is what lasts): one per process
        out = Path(run_root) / f"{arch}-{os.getpid()}"
        shutil.rmtree(out, ignore_errors=True)
        cfg = phase_config(st, phase, data, str(out), **session)
        cfg.max_minutes = max(0.1, (deadline - time.time()) / 60.0)
        tr = Trainer(cfg, log=log, snapshot=snap)
        step0, t0 = tr.step, time.time()
        last_eval = {"step": step0}
        threads = torch.get_num_threads()

        def account(trainer, final=False):
            wall = time.time() - t0
            sessions = list(read_state(p).get("sessions", []))
            rec = {"start": _dt.datetime.fromtimestamp(t0).isoformat(timespec="seconds"), "phase": phase.get("name"),
                   "step_from": step0, "step_to": trainer.step, "wall_s": round(wall, 1), "threads": threads,
                   "device": trainer.device, "cpu": hardware_info(trainer.device).get("gpu") or
                   hardware_info(trainer.device).get("cpu"),
                   "steps_per_s": round((trainer.step - step0) / max(wall, 1e-9), 4)}
            same = ("start", "step_from")
            if sessions and all(sessions[-1].get(k) == rec[k] for k in same):
                sessions[-1] = rec
            else:
                sessions.append(rec)
            cpu_h = sum(s["wall_s"] * s["threads"] for s in sessions if s["device"] == "cpu") / 3600.0
            gpu_h = sum(s["wall_s"] for s in sessions if s["device"] != "cpu") / 3600.0
            write_snapshot(trainer, state_dir, extra={"sessions": sessions, "cpu_hours": round(cpu_h, 6),
                                                      "gpu_hours": round(gpu_h, 6)})
            due = eval_every and trainer.step - last_eval["step"] >= eval_every
            if (final and last_eval.get("done") != trainer.step) or due:
                # the last checkpoint of a run and the run's end are the same snapshot: once
                last_eval.update(step=trainer.step, done=trainer.step)
                evaluate_in_subprocess(state_dir, arch, data, log=log)

        tr.on_checkpoint = account
        log(f"[programme] {arch}/{st['variant']} phase {phase.get('name')!r}: step {tr.step} -> {phase['until']}, "
            f"{cfg.size}px batch {cfg.batch}, {cfg.max_minutes:.0f} min left")
        try:
            result = tr.run()
        finally:
            tr.close()
        account(tr, final=True)
        shutil.rmtree(out, ignore_errors=True)
        if result["status"] != "finished":
            break
    return result
