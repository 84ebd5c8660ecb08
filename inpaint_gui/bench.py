"""``inpaint bench``: speed and memory of the networks, the pipeline and the GUI.

Prints a markdown table and writes JSON (machine, torch version, threads, load, and for each
figure the median and min of several runs after a warm-up). Speed goals live here, never in
tests; every row that has a goal carries ``target`` (what is asked) and ``target_met``.

Suites (``--suite``):

* ``models`` (alias ``networks``): forward time of every registry network at 256², 512², 1024²
  where the architecture allows, fp32 on CPU (fp32/fp16/bf16 on CUDA), parameters, FLOPs per
  forward (``torch.utils.flop_counter``) and peak memory. Each network/size/precision runs in a
  fresh subprocess, so the peak resident memory (``VmHWM``) belongs to that row alone (on CUDA:
  ``torch.cuda.max_memory_allocated``). Printed beside the official implementation's CPU time
  (``ANCHORS_S``, from specs/ANCHORS.md) with the ratio; the goal is at most 0.6x. The FLOP
  counting forward doubles as the warm-up.
* ``pipeline``: a 6000x4000 photo, (a) one small object (~1 %), (b) scattered marks, (c) a large
  hole (~30 %), (d) a 25 % outpaint on one side, and on request (``--cases a,e``) (e) one 20 %
  hole, per HD strategy (crop / resize / tile), end to end: JPEG decode, inpainting, compositing. Without installed weights the network gets
  deterministic weights (timing only). Goal: (a) with crop and AOT-GAN under 2 s on CPU.
* ``gui``: offscreen Qt in a subprocess (see :mod:`inpaint_gui.ui.bench_gui`): opening the
  photo, brush dab, 200 px stroke segment, event-loop gaps during a fill, memory.

``--profile`` (networks): one more forward of ours and of the official formulation per row under
``torch.profiler``: the share of CPU time per op category (convolution, matmul, FFT, copies,
other), the GFLOP and achieved GFLOP/s of convolutions and matmuls, the most expensive op; plus
the machine's own figures to read them against (a large oneDNN 3x3 convolution and matmul in
GFLOP/s, a 64 MiB copy in GB/s). Pipeline rows always carry a per-stage breakdown of the last
run (decode, model windows, compositing).

``--quick``: small sizes, one run, small photo (CI smoke test).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .bench_inputs import (EXTRA_CASES, det_weights, pipeline_cases, proc_status,
                           reset_peak_rss, weights_for, write_photo)

# Official CPU medians on this class of machine (2 threads, eval, no_grad; specs/ANCHORS.md).
ANCHORS_S = {
    ("rfr", 256): 1.14, ("rfr", 512): 6.18, ("rfr", 1024): 75.3,
    ("aot", 256): 0.58, ("aot", 512): 2.09, ("aot", 1024): 12.06,
    ("lama", 256): 0.48, ("lama", 512): 1.91, ("lama", 1024): 8.37,
    ("pennet", 256): 0.38, ("pennet", 512): 5.75,
}
ANCHOR_GFLOP = {
    ("rfr", 256): 344, ("rfr", 512): 1530, ("rfr", 1024): 8594,
    ("aot", 256): 146, ("aot", 512): 583, ("aot", 1024): 2332,
    ("lama", 256): 110, ("lama", 512): 440, ("lama", 1024): 1758,
    ("pennet", 256): 51, ("pennet", 512): 706, ("srn", 256): 105,
}
ANCHOR_RSS_MIB = {
    ("rfr", 256): 799, ("rfr", 512): 1801, ("rfr", 1024): 8376,
    ("aot", 256): 523, ("aot", 512): 939, ("aot", 1024): 1916,
}
TARGET_RATIO = 0.6
PIPELINE_TARGET_S = 2.0  # case (a), crop, AOT-GAN, CPU

DEFAULT_SIZES = (256, 512, 1024)
QUICK_SIZES = (128,)
# kept for callers of the first version: sides per network (the registry limits apply too)
NETWORK_SIZES = {"rfr": DEFAULT_SIZES, "aot": DEFAULT_SIZES, "lama": DEFAULT_SIZES,
                 "pennet": (256, 512), "srn": DEFAULT_SIZES}

ROW_MARK = "@@BENCH_ROW@@"

# Rough seconds per forward (ours, official formulation) on the 2-core reference VM of the
# README (fp32), for the up-front estimate of a run's length; sides not listed scale with
# the pixel count from the nearest one.
EST_FORWARD_S = {
    ("rfr", 256): (0.70, 1.50), ("rfr", 512): (3.0, 9.1), ("rfr", 1024): (27.6, 138.0),
    ("aot", 256): (0.35, 0.61), ("aot", 512): (1.44, 2.63), ("aot", 1024): (6.4, 14.2),
    ("lama", 256): (0.31, 0.53), ("lama", 512): (1.28, 2.24), ("lama", 1024): (6.0, 10.3),
    ("pennet", 256): (0.17, 0.46), ("pennet", 512): (1.81, 7.14),
    ("srn", 256): (0.48, 0.0), ("srn", 512): (2.1, 0.0), ("srn", 1024): (10.1, 0.0),
}
EST_CHILD_S = 8.0  # interpreter, imports, network construction per network row
# One end-to-end pipeline run on the 6000x4000 photo (same VM), per strategy and case.
EST_PIPELINE_S = {
    "crop": {"a": 5.0, "b": 8.5, "c": 9.0, "d": 16.0},
    "resize": {"a": 11.5, "b": 11.5, "c": 11.5, "d": 16.2},
    "tile": {"a": 20.0, "b": 40.0, "c": 200.0, "d": 30.0},
}
EST_GUI_S = 90.0


# ----------------------------------------------------------------------------- measuring

def _summary(times: "list[float]") -> dict:
    return {"median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4),
            "runs": len(times), "times_s": [round(t, 4) for t in times]}


def time_runs(fn: Callable[[], object], runs: int = 3, warmup: int = 1) -> dict:
    """Median and min wall time (s) of ``runs`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, runs)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return _summary(times)


def time_adaptive(fn: Callable[[], object], runs: int, warmup_budget_s: float = 20.0) -> dict:
    """Like :func:`time_runs` with one warm-up, except that a first call slower than
    ``warmup_budget_s`` counts as the first run (long rows would otherwise take 1 + runs)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    times = [] if first <= warmup_budget_s else [first]
    while len(times) < max(1, runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    out = _summary(times)
    out["warmup"] = "separate" if first <= warmup_budget_s else "first run counted (slow)"
    return out


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> Optional[str]:
    try:
        r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                           text=True, timeout=10, cwd=Path(__file__).resolve().parents[1])
        return r.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):  # pragma: no cover
        return None


def machine_info(threads: int) -> dict:
    import torch

    from .engine.memory import heap_reuse_available
    info = {"date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
            "platform": platform.platform(), "processor": _cpu_model(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__, "threads": threads,
            "torch_num_threads": torch.get_num_threads(),
            "mkldnn": bool(torch.backends.mkldnn.is_available()),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "git_commit": _git_commit(),
            # memory settings of inpaint_gui.engine.memory (huge pages: PyTorch's allocator;
            # heap reuse: around every model forward of the pipeline)
            "torch_huge_pages": os.environ.get("THP_MEM_ALLOC_ENABLE") == "1",
            "heap_reuse": heap_reuse_available()}
    try:
        import cv2
        info["opencv"] = cv2.__version__
    except ImportError:  # pragma: no cover
        pass
    try:
        info["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        pass
    try:
        with open("/proc/meminfo") as f:
            info["mem_total_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:  # pragma: no cover
        pass
    return info


def _run_child(code: str, payload: dict, timeout: float, env: Optional[dict] = None) -> dict:
    """Run ``code`` (which prints ``ROW_MARK + json``) in a fresh interpreter."""
    e = dict(os.environ)
    e.update(env or {})
    root = str(Path(__file__).resolve().parents[1])
    e["PYTHONPATH"] = root + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    try:
        r = subprocess.run([sys.executable, "-c", code, json.dumps(payload)], capture_output=True,
                           text=True, timeout=timeout, env=e, cwd=root)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s (skipped)"}
    for line in reversed(r.stdout.splitlines()):
        if line.startswith(ROW_MARK):
            return json.loads(line[len(ROW_MARK):])
    tail = [ln for ln in (r.stderr or "").strip().splitlines() if ln.strip()]
    return {"error": f"subprocess exit {r.returncode}: {tail[-1][:200] if tail else 'no output'}"}


# ----------------------------------------------------------------------------- networks

# ----------------------------------------------------------------------------- profiles

#: profiler op name -> category (first match wins; ``self`` CPU time of each op)
PROFILE_CATEGORIES = (
    ("conv", ("convolution", "conv2d", "conv_transpose", "conv_dilated", "_nnpack")),
    ("matmul", ("aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm", "aten::addbmm",
                "aten::matmul", "aten::linear", "aten::_mkldnn_matmul")),
    ("fft", ("_fft_",)),
    ("copy/pad/cat", ("aten::copy_", "aten::cat", "aten::clone", "aten::contiguous", "pad",
                      "aten::stack", "aten::_to_copy", "aten::index", "aten::fill_",
                      "aten::zero_", "aten::empty", "aten::resize_")),
)
CATEGORY_NAMES = tuple(c for c, _ in PROFILE_CATEGORIES) + ("other",)


def op_category(op_name: str) -> str:
    for cat, needles in PROFILE_CATEGORIES:
        if any(n in op_name for n in needles):
            return cat
    return "other"


def flop_split(flop_counts: dict) -> "dict[str, float]":
    """GFLOP per category (conv / matmul) from ``FlopCounterMode.get_flop_counts()``."""
    out = {"conv": 0.0, "matmul": 0.0}
    for op, n in flop_counts.get("Global", {}).items():
        name = str(op)
        if "conv" in name:
            out["conv"] += n / 1e9
        elif any(k in name for k in ("mm", "matmul", "linear")):
            out["matmul"] += n / 1e9
    return out


def profile_forward(fn: Callable, inputs: tuple, ctx: Callable) -> dict:
    """Where one forward's time goes: wall time, self CPU seconds and share per category
    (:data:`CATEGORY_NAMES`), GFLOP and achieved GFLOP/s of the convolutions and matmuls,
    and the five most expensive ops. ``fn(*inputs)`` must already be warm."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), ctx(), FlopCounterMode(display=False) as fc:
        fn(*inputs)
    flops = flop_split(fc.get_flop_counts())
    with torch.inference_mode(), ctx(), profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        fn(*inputs)
        wall = time.perf_counter() - t0
    per_cat = dict.fromkeys(CATEGORY_NAMES, 0.0)
    ops = []
    for ev in prof.key_averages():
        sec = ev.self_cpu_time_total / 1e6
        if sec <= 0:
            continue
        per_cat[op_category(ev.key)] += sec
        ops.append((ev.key, sec, ev.count))
    total = sum(per_cat.values()) or 1e-9
    out = {"wall_s": _sig(wall), "self_cpu_s": _sig(total)}
    for cat in CATEGORY_NAMES:
        out[f"{cat}_s"] = _sig(per_cat[cat])
        out[f"{cat}_pct"] = round(100.0 * per_cat[cat] / total, 1)
    for cat in ("conv", "matmul"):
        out[f"{cat}_gflop"] = _sig(flops[cat])
        if per_cat[cat] > 0 and flops[cat] > 0:
            out[f"{cat}_gflops_per_s"] = round(flops[cat] / per_cat[cat])
    ops.sort(key=lambda o: -o[1])
    out["top_ops"] = [{"op": k, "s": _sig(t), "calls": c} for k, t, c in ops[:5]]
    return out


def _sig(v: float, digits: int = 4) -> float:
    """``v`` rounded to ``digits`` significant digits."""
    return float(f"{v:.{digits}g}")


def machine_roofline(threads: int = 2, repeats: int = 5) -> dict:
    """What this CPU sustains, to read the profiles against: a large oneDNN 3x3 convolution
    (256 -> 256 channels on 128x128, fp32) and a large matmul, in GFLOP/s, and a 64 MiB
    tensor copy in GB/s (read + write)."""
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    out = {}
    with torch.inference_mode():
        x = torch.randn(1, 256, 130, 130)
        w = torch.randn(256, 256, 3, 3)
        a, b = torch.randn(4096, 1024), torch.randn(1024, 1024)
        big = torch.empty(16 * 2**20)
        cases = {"conv3x3_gflops_per_s": (lambda: F.conv2d(x, w), 2 * 9 * 128 * 128 * 256 * 256),
                 "matmul_gflops_per_s": (lambda: a @ b, 2 * 4096 * 1024 * 1024),
                 "copy_gb_per_s": (lambda: big.clone(), 2 * big.numel() * 4)}
        for key, (f, work) in cases.items():
            f()
            best = min(_timed_once(f) for _ in range(repeats))
            out[key] = round(work / best / 1e9, 1)
    return out


def _timed_once(f: Callable) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def _free_form_mask(h: int, w: int, ratio: float = 0.3, seed: int = 0) -> np.ndarray:
    import cv2
    rng = np.random.default_rng(seed)
    m = np.zeros((h, w), np.uint8)
    while (m > 0).mean() < ratio:
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        for _ in range(int(rng.integers(3, 8))):
            nx = int(np.clip(x + rng.integers(-w // 4, w // 4), 0, w - 1))
            ny = int(np.clip(y + rng.integers(-h // 4, h // 4), 0, h - 1))
            cv2.line(m, (x, y), (nx, ny), 255, int(max(4, min(h, w) * rng.uniform(0.03, 0.08))))
            x, y = nx, ny
    return m


def _net_inputs(name: str, side: int):
    """Official-convention inputs for ``name`` at side x side (the model's own
    ``net_inputs``): a ~30 % free-form hole, or for an outpainting model a side/2 known
    window centred on a side x side canvas."""
    import torch

    from .engine.registry import get_adapter, get_spec
    rng = np.random.default_rng(1)
    img = torch.from_numpy(rng.random((1, 3, side, side), dtype=np.float32))
    if get_spec(name).task == "outpaint":
        q = side // 4
        hole = torch.ones(1, 1, side, side)
        hole[..., q:side - q, q:side - q] = 0
    else:
        hole = torch.from_numpy((_free_form_mask(side, side) > 0).astype(np.float32))[None, None]
    return get_adapter(name).model_class.net_inputs(img, hole)


def network_names() -> "list[str]":
    """Registry models that are PyTorch networks (in registry order)."""
    from .engine.registry import list_models
    return [s.name for s in list_models() if s.network]


def size_allowed(name: str, side: int) -> "tuple[bool, str]":
    from .engine.registry import get_spec
    try:
        spec = get_spec(name)
    except Exception:
        return True, ""
    if spec.max_size and side > spec.max_size:
        return False, f"not supported above {spec.max_size} px"
    if side < spec.min_size or side % max(1, spec.pad_mod):
        return False, f"needs a multiple of {spec.pad_mod} >= {spec.min_size}"
    return True, ""


def reference_forward(name: str, net) -> Optional[Callable]:
    """The network's official formulation in our code (the official module-by-module path
    that the optimised inference path replaces; for RFR-Net the official arithmetic op for op,
    ``RFRNet.forward_official``), or None. Timed in the same process as our inference path, it
    gives a same-run stand-in for the official implementation's time."""
    for official in ("forward_official", "forward_plain"):
        if hasattr(net, official):
            return getattr(net, official)
    if hasattr(net, "fast_path"):
        def slow(*args):
            net.fast_path = False
            try:
                return net(*args)
            finally:
                net.fast_path = True
        return slow
    return None


def net_row(job: dict) -> dict:
    """One network/size/precision, measured in this process (run it in a fresh one).

    Order: our inference path once under the FLOP counter (the warm-up; the peak memory is
    read right after it), the reference path once (its warm-up), then ``runs`` timed rounds
    alternating ours and the reference, so both see the same machine load."""

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .engine import nets
    from .engine.devices import autocast_context, effective_precision
    name, side = job["model"], int(job["size"])
    device, precision = job.get("device", "cpu"), job.get("precision", "fp32")
    runs, budget = int(job.get("runs", 3)), float(job.get("budget_s", 600))
    torch.set_num_threads(int(job.get("threads", 2)))
    row = {"suite": "networks", "model": name, "size": side, "device": device,
           "precision": precision}
    t0 = time.perf_counter()
    from .engine.registry import get_spec
    net = nets.create(get_spec(name).network)
    net.load_state_dict(det_weights(name, net), strict=True)
    net.eval().to(device)
    row["params_m"] = round(sum(p.numel() for p in net.parameters()) / 1e6, 2)
    row["build_s"] = round(time.perf_counter() - t0, 2)
    inputs = tuple(t.to(device) if isinstance(t, torch.Tensor) else t
                   for t in _net_inputs(name, side))
    cuda = device.startswith("cuda")
    row["runs_as"] = effective_precision(device, precision)  # bf16 on CPU needs native bf16

    def ctx():  # as the app runs it (TorchInpaintModel)
        return autocast_context(device, precision)

    def timed(f) -> float:
        t = time.perf_counter()
        with torch.inference_mode(), ctx():
            f(*inputs)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t

    base = proc_status()
    reset_peak_rss()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    prepare = getattr(net, "prepare_inference", None)
    if prepare is not None:  # one-time weight transforms are not part of a forward's FLOPs
        with torch.inference_mode(), ctx():
            prepare(inputs[0])
    first = timed(net)
    row["warmup_s"] = round(first, 3)
    peak = proc_status()
    row["rss_base_mib"] = round(base.get("VmRSS", 0.0))
    row["peak_rss_mib"] = round(peak["VmHWM"])
    row["forward_peak_mib"] = round(peak["VmHWM"] - base.get("VmRSS", 0.0))
    if cuda:
        row["cuda_peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
    # FLOPs in a forward of their own: the counter keeps intermediates alive (a 1024² AOT-GAN
    # forward peaks 2.5x higher under it), which must not count as the network's memory
    with FlopCounterMode(display=False) as fc:
        timed(net)
    row["gflop"] = round(fc.get_total_flops() / 1e9, 1)
    ref = reference_forward(name, net) if job.get("reference", True) else None
    ref_first = 0.0
    if ref is not None:
        if first * 2 > budget:
            ref = None
            row["ref_note"] = "reference skipped (row budget)"
        else:
            ref_first = timed(ref)
    n = max(1, runs)
    per_round = first + ref_first
    if per_round * n > budget:
        n = max(1, int(budget // max(per_round, 1e-9)))
        row["note"] = f"runs cut to {n} (row budget {budget:.0f} s)"
    if first > budget:  # the warm-up alone is over budget: report it as the only run
        row.update(_summary([first]))
        row["note"] = f"single cold run (over the {budget:.0f} s row budget)"
    else:
        ours, theirs = [], []
        for _ in range(n):
            ours.append(timed(net))
            if ref is not None:
                theirs.append(timed(ref))
        row.update(_summary(ours))
        if theirs:
            t = _summary(theirs)
            row["ref_median_s"], row["ref_min_s"] = t["median_s"], t["min_s"]
            row["ratio_same_run"] = round(row["median_s"] / t["median_s"], 3)
    if job.get("profile"):
        row["profile"] = {"ours": profile_forward(net, inputs, ctx)}
        ref = reference_forward(name, net) if "ref_median_s" in row else None
        if ref is not None:
            row["profile"]["official"] = profile_forward(ref, inputs, ctx)
    return row


_NET_CHILD = ("import json, sys\n"
              "from inpaint_gui import bench\n"
              "job = json.loads(sys.argv[1])\n"
              "try:\n"
              "    row = bench.net_row(job)\n"
              "except Exception as exc:\n"
              "    row = {'error': f'{type(exc).__name__}: {str(exc)[:200]}'}\n"
              "print(bench.ROW_MARK + json.dumps(row), flush=True)\n")


def _annotate_network(row: dict) -> dict:
    key = (row["model"], row["size"])
    if key in ANCHOR_GFLOP:
        row["official_gflop"] = ANCHOR_GFLOP[key]
    if key in ANCHOR_RSS_MIB and row.get("device") == "cpu":
        row["official_peak_rss_mib"] = ANCHOR_RSS_MIB[key]
    anchor = ANCHORS_S.get(key)
    if anchor and row.get("device") == "cpu":
        row["official_s"] = anchor
        if row.get("runs_as", "fp32") != "fp32":  # the target asks for the official outputs
            if "median_s" in row:
                row["ratio"] = round(row["median_s"] / anchor, 3)
            row["note"] = (f"{row['runs_as']}: outputs differ from the official fp32 ones, "
                           "so not judged against the target; ratio vs the fp32 anchor")
            return row
        row["target"] = f"<= {TARGET_RATIO}x official"
        if "median_s" in row:
            row["ratio"] = round(row["median_s"] / anchor, 3)
            # under load the anchor ratio is inflated: judge by the same-run ratio when there
            # is one (reference path timed alternately in the same process), else the anchor
            basis = row.get("ratio_same_run", row["ratio"])
            row["target_basis"] = "same run" if "ratio_same_run" in row else "anchor"
            row["target_met"] = basis <= TARGET_RATIO
        else:
            row["target_met"] = False
    return row


def bench_networks(names, sizes: Optional[dict], runs: int, device: str,
                   precisions=("fp32",), threads: int = 2, budget_s: float = 600.0,
                   timeout_s: float = 1800.0, skip=(), log=None, reference: bool = True,
                   profile: bool = False, sink: Optional[list] = None) -> "list[dict]":
    """One fresh subprocess per network/size/precision (peak memory per row); ``profile``
    adds where the time of one forward goes (ours and the official formulation). Rows are
    appended to ``sink`` (returned) as they finish."""
    rows = sink if sink is not None else []
    explicit = sizes is not None
    for name in names:
        for side in (sizes or {}).get(name, DEFAULT_SIZES) if explicit else DEFAULT_SIZES:
            ok, why = size_allowed(name, side)
            if not ok:
                if explicit:
                    rows.append({"suite": "networks", "model": name, "size": side,
                                 "device": device, "error": why})
                continue
            for prec in precisions:
                base = {"suite": "networks", "model": name, "size": side, "device": device,
                        "precision": prec}
                if f"{name}@{side}" in skip or name in skip:
                    rows.append(_annotate_network(dict(base, error="skipped (--skip)")))
                    continue
                if log:
                    log(f"networks: {name} {side}px {prec} ...")
                t0 = time.perf_counter()
                res = _run_child(_NET_CHILD, dict(model=name, size=side, device=device,
                                                  precision=prec, runs=runs, threads=threads,
                                                  budget_s=budget_s, reference=reference,
                                                  profile=profile),
                                 timeout=timeout_s)
                row = dict(base)
                row.update(res)
                row["wall_s"] = round(time.perf_counter() - t0, 1)
                rows.append(_annotate_network(row))
                if log:
                    log("    " + (f"{row['median_s']:.3f} s" if "median_s" in row
                                  else row.get("error", "?")))
    return rows


# ----------------------------------------------------------------------------- pipeline

def stage_durations(t0: float, events: "list[tuple[str, float]]", t_end: float
                    ) -> "list[tuple[str, float]]":
    """Seconds per stage from ``(label, time the stage ended or began)`` events.

    The first event ("decode") marks the end of decoding; each later event marks the start of
    a stage, which lasts until the next event (the last one until ``t_end``). Repeated labels
    (several windows of one model) are summed in first-seen order."""
    out: "dict[str, float]" = {}
    if not events:
        return []
    out[events[0][0]] = events[0][1] - t0
    for i, (label, t) in enumerate(events[1:], 1):
        nxt = events[i + 1][1] if i + 1 < len(events) else t_end
        key = label.split(": window")[0]
        out[key] = out.get(key, 0.0) + max(0.0, nxt - t)
    return [(k, round(v, 3)) for k, v in out.items()]


def bench_pipeline(model: str, strategies, runs: int, device: str, cases=None,
                   photo_hw=(4000, 6000), outpaint_model: Optional[str] = "srn",
                   warmup_budget_s: float = 20.0, log=None,
                   precision: str = "fp32", sink: Optional[list] = None) -> "list[dict]":
    """The pipeline suite; rows are appended to ``sink`` (returned) as they finish."""
    from .engine import HDStrategy, inpaint, outpaint
    from .engine import imageio
    from .engine.outpaint import WEIGHT_FREE_OUTPAINT
    from .engine.pipeline import plan_windows
    from .engine.registry import get_spec
    h, w = photo_hw
    spec = get_spec(model)
    weights, weight_label = weights_for(model)
    tmpdir = tempfile.mkdtemp(prefix="inpaint_bench_")
    photo_path = write_photo(Path(tmpdir) / "photo.jpg", h, w)
    rows: list = sink if sink is not None else []
    last_stages: list = []  # (stage, seconds) of the latest timed run (inpaint cases)
    all_cases = pipeline_cases(h, w)
    names = [c for c in all_cases if (cases is None and c not in EXTRA_CASES)
             or (cases is not None and (c in cases or c.split("_")[0] in cases))]

    def decode():
        return imageio.load_image(photo_path).rgb

    row = {"suite": "pipeline", "case": "decode_only", "model": "-", "strategy": "-",
           "device": device, "mask_pct": 0.0}
    row.update(time_runs(decode, runs=runs))
    rows.append(row)
    # global warm-up: load the model (cache) and run it once on a small window
    warm = np.ascontiguousarray(decode()[:512, :512])
    warm_mask = np.zeros(warm.shape[:2], np.uint8)
    wh, ww = warm_mask.shape
    warm_mask[wh * 2 // 5: wh * 3 // 5, ww * 2 // 5: ww * 3 // 5] = 255
    try:
        inpaint(warm, warm_mask, model=model, weights=weights,
                strategy=HDStrategy("original"), device=device, precision=precision)
    except Exception as exc:  # the rows below will report it
        if log:
            log(f"pipeline warm-up failed: {exc}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # deterministic weights: NaN-free? never mind
        for case in names:
            data = all_cases[case]
            jobs = []
            for strat in strategies:
                jobs.append((model, strat, weights, weight_label))
            if "margins" in data and outpaint_model:
                ow, olabel = (None, "") if outpaint_model in WEIGHT_FREE_OUTPAINT else \
                    weights_for(outpaint_model)
                jobs.append((outpaint_model, "own", ow, olabel))
            for mdl, strat, wts, wlabel in jobs:
                if "margins" in data:
                    mask_pct = round(100.0 * data["margins"][3] / (w + data["margins"][3]), 1)

                    def run(mdl=mdl, strat=strat, wts=wts):
                        im = decode()
                        kw = {} if strat == "own" else {"strategy": HDStrategy(strat)}
                        outpaint(im, margins=data["margins"], model=mdl, weights=wts,
                                 device=device, precision=precision, **kw)
                    n_windows = None
                else:
                    mask = data["mask"]
                    mask_pct = round(100.0 * float((mask > 0).mean()), 2)
                    wins, cap, _seq = plan_windows((h, w), mask, HDStrategy(strat), spec)
                    n_windows = len(wins)
                    model_mpx = 0.0  # pixels the network sees (after any downscale)
                    for y0, x0, y1, x1 in wins:
                        caps = [c for c in (cap, spec.max_size) if c]
                        sc = min(1.0, min(caps) / max(y1 - y0, x1 - x0)) if caps else 1.0
                        model_mpx += (y1 - y0) * (x1 - x0) * sc * sc / 1e6

                    def run(mask=mask, strat=strat):
                        events: list = []
                        t0 = time.perf_counter()
                        im = decode()  # end to end: decode + inpaint + compositing
                        events.append(("decode", time.perf_counter()))
                        inpaint(im, mask, model=model, weights=weights,
                                strategy=HDStrategy(strat), device=device,
                                precision=precision, progress=lambda ev: events.append((ev.stage,
                                                                   time.perf_counter())))
                        last_stages[:] = stage_durations(t0, events, time.perf_counter())
                row = {"suite": "pipeline", "case": case, "model": mdl, "weights": wlabel,
                       "strategy": strat, "device": device, "precision": precision,
                       "mask_pct": mask_pct}
                if n_windows is not None:
                    row["windows"] = n_windows
                    row["model_mpx"] = round(model_mpx, 2)
                if log:
                    log(f"pipeline: {case} {mdl} {strat} ...")
                reset_peak_rss()
                last_stages.clear()
                try:
                    row.update(time_adaptive(run, runs, warmup_budget_s))
                except Exception as exc:
                    row["error"] = f"{type(exc).__name__}: {str(exc)[:160]}"
                if last_stages:
                    row["stages_s"] = dict(last_stages)
                    row["breakdown"] = "; ".join(f"{k} {v:.2f}" for k, v in last_stages)
                row["peak_rss_mib"] = round(proc_status()["VmHWM"])
                if case.startswith("a_") and strat == "crop" and model == "aot" \
                        and device == "cpu" and (h, w) == (4000, 6000):
                    row["target"] = f"< {PIPELINE_TARGET_S:g} s"
                    row["target_met"] = bool(row.get("median_s", 1e9) < PIPELINE_TARGET_S)
                if log:
                    log("    " + (f"{row['median_s']:.2f} s" if "median_s" in row
                                  else row.get("error", "?")))
                rows.append(row)
    try:
        photo_path.unlink()
        os.rmdir(tmpdir)
    except OSError:  # pragma: no cover
        pass
    return rows


# ----------------------------------------------------------------------------- GUI

_GUI_CHILD = ("import json, os, sys\n"
              "os.environ.setdefault('QT_QPA_PLATFORM', 'offscreen')\n"
              "from inpaint_gui import bench\n"
              "from inpaint_gui.ui import bench_gui\n"
              "job = json.loads(sys.argv[1])\n"
              "try:\n"
              "    rows = bench_gui.run(**job)\n"
              "except Exception as exc:\n"
              "    import traceback; traceback.print_exc()\n"
              "    rows = [{'suite': 'gui', 'metric': 'gui', "
              "'error': f'{type(exc).__name__}: {str(exc)[:200]}'}]\n"
              "print(bench.ROW_MARK + json.dumps(rows), flush=True)\n")


def bench_gui(runs: int, image_hw=(4000, 6000), strokes: int = 50, fill_model: str = "aot",
              threads: int = 2, in_process: bool = False, timeout_s: float = 1800.0
              ) -> "list[dict]":
    """The GUI suite, in a fresh offscreen Qt process (clean memory figures) by default."""
    job = {"runs": runs, "image_hw": list(image_hw), "strokes": strokes,
           "fill_model": fill_model, "threads": threads}
    if in_process:
        from .ui import bench_gui as gui_bench  # Qt only imported for this suite
        return gui_bench.run(**job)
    res = _run_child(_GUI_CHILD, job, timeout=timeout_s, env={"QT_QPA_PLATFORM": "offscreen"})
    if isinstance(res, list):
        return res
    return [{"suite": "gui", "metric": "gui", "error": res.get("error", "?")}]


# ----------------------------------------------------------------------------- output

COLUMNS = {
    "networks": ["model", "size", "device", "precision", "runs_as", "params_m", "gflop", "official_gflop",
                 "median_s", "min_s", "runs", "official_s", "ratio", "ref_median_s",
                 "ratio_same_run", "target", "target_basis", "target_met", "peak_rss_mib",
                 "official_peak_rss_mib", "forward_peak_mib", "cuda_peak_mib", "note",
                 "ref_note", "error"],
    "pipeline": ["case", "mask_pct", "model", "strategy", "precision", "windows", "model_mpx", "median_s",
                 "min_s", "runs",
                 "target", "target_met", "peak_rss_mib", "breakdown", "weights", "error"],
    "gui": ["metric", "median_s", "min_s", "value", "unit", "peak_growth_mib", "runs", "target",
            "target_met", "note", "error"],
}


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "met" if v else "NOT met"
    if isinstance(v, float):
        if v == 0:
            return "0"
        return f"{v:.4f}" if abs(v) < 0.01 else f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    if v is None:
        return ""
    return str(v).replace("|", "/")


PROFILE_COLUMNS = ["model", "size", "path", "wall_s"] + [f"{c}_pct" for c in CATEGORY_NAMES] + \
    ["conv_gflop", "conv_gflops_per_s", "matmul_gflop", "matmul_gflops_per_s", "top_op"]


def profile_rows(rows: "list[dict]") -> "list[dict]":
    """One flat row per profiled forward (network row x {ours, official})."""
    out = []
    for r in rows:
        for path, p in (r.get("profile") or {}).items():
            flat = {"model": r.get("model"), "size": r.get("size"), "path": path}
            flat.update({k: v for k, v in p.items() if k != "top_ops"})
            if p.get("top_ops"):
                t = p["top_ops"][0]
                flat["top_op"] = f"{t['op']} {t['s']:.2f} s"
            out.append(flat)
    return out


def markdown(rows: "list[dict]", machine: Optional[dict] = None) -> str:
    out = []
    roof = (machine or {}).get("roofline")
    if roof:
        out.append("\n### machine\n")
        out.append("| " + " | ".join(roof) + " |")
        out.append("|" + "---|" * len(roof))
        out.append("| " + " | ".join(_fmt(v) for v in roof.values()) + " |")
    for suite in ("networks", "pipeline", "gui"):
        sub = [r for r in rows if r.get("suite") == suite]
        if not sub:
            continue
        cols = [c for c in COLUMNS[suite] if any(c in r for r in sub)]
        out.append(f"\n### {suite}\n")
        out.append("| " + " | ".join(cols) + " |")
        out.append("|" + "---|" * len(cols))
        for r in sub:
            out.append("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    prof = profile_rows(rows)
    if prof:
        cols = [c for c in PROFILE_COLUMNS if any(c in r for r in prof)]
        out.append("\n### profile (share of one forward's CPU time per op category)\n")
        out.append("| " + " | ".join(cols) + " |")
        out.append("|" + "---|" * len(cols))
        for r in prof:
            out.append("| " + " | ".join(
                f"{r[c]:.1f}" if c.endswith("_pct") and c in r else _fmt(r.get(c))
                for c in cols) + " |")
    return "\n".join(out)


def _parse_hw(s: str) -> "tuple[int, int]":
    w, h = (int(v) for v in s.lower().split("x"))
    return h, w


def _est_forward(name: str, side: int) -> "tuple[float, float]":
    if (name, side) in EST_FORWARD_S:
        return EST_FORWARD_S[(name, side)]
    known = [s for (n, s) in EST_FORWARD_S if n == name] or [512]
    near = min(known, key=lambda s: abs(s - side))
    ours, ref = EST_FORWARD_S.get((name, near), (1.5, 2.5))
    f = (side / near) ** 2
    return ours * f, ref * f


def estimate_seconds(suite: str, names, sizes: Optional[dict], runs: int, precisions,
                     reference: bool = True, budget_s: float = 600.0, strategies=(),
                     cases=None, photo_hw=(4000, 6000), outpaint: bool = True) -> "dict[str, float]":
    """Rough seconds per suite for a run with these options, from the reference VM's figures
    (``EST_*``): a network row is a fresh interpreter, the FLOP-counting forward and
    ``runs`` timed rounds of ours and of the official formulation (cut by ``budget_s``)."""
    est = {"networks": 0.0, "pipeline": 0.0, "gui": 0.0}
    if suite in ("models", "networks", "all"):
        for name in names:
            for side in (sizes or {}).get(name, DEFAULT_SIZES) if sizes is not None \
                    else DEFAULT_SIZES:
                if not size_allowed(name, side)[0]:
                    continue
                ours, ref = _est_forward(name, side)
                ref = ref if reference else 0.0
                row = min(ours + runs * (ours + ref) + ref, budget_s + ours + ref)
                est["networks"] += (EST_CHILD_S + row) * len(precisions)
    if suite in ("pipeline", "all"):
        scale = (photo_hw[0] * photo_hw[1]) / (4000 * 6000)
        letters = [c[0] for c in (cases or "abcd")]
        for strat in strategies:
            for c in letters:
                est["pipeline"] += (runs + 1) * EST_PIPELINE_S.get(strat, {}).get(c, 15.0) * scale
        if outpaint and "d" in letters:
            est["pipeline"] += (runs + 1) * 7.0 * scale
        est["pipeline"] = (est["pipeline"] + 30.0) * len(precisions)  # + photo, warm-up
    if suite in ("gui", "all"):
        est["gui"] = EST_GUI_S * max(1.0, (photo_hw[0] * photo_hw[1]) / (4000 * 6000))
    return est


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


class RowSink(list):
    """The rows of a run; each append/extend calls ``on_change(rows)`` (to keep a partial
    report on disk while a long run goes on)."""

    def __init__(self, on_change: Optional[Callable] = None) -> None:
        super().__init__()
        self.on_change = on_change

    def append(self, row) -> None:
        super().append(row)
        if self.on_change:
            self.on_change(self)

    def extend(self, rows) -> None:
        super().extend(rows)
        if self.on_change:
            self.on_change(self)

    def __iadd__(self, rows):
        self.extend(rows)
        return self


def _write_json(path: Path, report: dict) -> None:
    from .engine.fsutil import atomic_write_text
    atomic_write_text(path, json.dumps(report, indent=1), parents=True)


def main_bench(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="inpaint bench",
        description="Speed and memory of the networks, the pipeline and the GUI. Prints the "
                    "estimated total time first; with --json the rows are saved as they finish, "
                    "so an interrupted run keeps what it measured.")
    ap.add_argument("--suite", choices=("models", "networks", "pipeline", "gui", "all"),
                    default="models")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    ap.add_argument("--json", dest="json_out", help="write the results as JSON here")
    ap.add_argument("--markdown", dest="md_out", help="also write the markdown table here")
    ap.add_argument("--runs", type=int, default=None, help="timed runs per figure (default 3)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--quick", action="store_true",
                    help="small sizes, one run, small photo (CI smoke test)")
    ap.add_argument("--models", default="", help="networks to time (default: every registry "
                                                 "network)")
    ap.add_argument("--sizes", default="", help="comma-separated sides (default 256,512,1024 "
                                                "where the architecture allows)")
    ap.add_argument("--precisions", default="",
                    help="fp32,fp16,bf16 (default: fp32 on CPU, all three on CUDA); networks and "
                         "pipeline; bf16 on a CPU runs fp32 unless the CPU has native bf16")
    ap.add_argument("--skip", default="", help="rows to skip, e.g. rfr@1024")
    ap.add_argument("--row-budget", type=float, default=600.0,
                    help="seconds of timed forwards per network row before runs are cut")
    ap.add_argument("--row-timeout", type=float, default=1800.0,
                    help="a network row still running after this many seconds is skipped")
    ap.add_argument("--profile", action="store_true",
                    help="also profile one forward per network row (ours and official: time "
                         "per op category, achieved GFLOP/s) and measure the machine's "
                         "convolution / matmul / copy speed")
    ap.add_argument("--no-reference", action="store_true",
                    help="do not time the official formulation (reference path) beside ours")
    ap.add_argument("--pipeline-model", default="aot")
    ap.add_argument("--outpaint-model", default="srn",
                    help="extra row for case (d) with this outpainting model ('' = none)")
    ap.add_argument("--strategies", default="",
                    help="HD strategies for the pipeline (default crop,resize,tile; --quick: crop)")
    ap.add_argument("--cases", default="", help="pipeline cases (a,b,c,d,e; default a-d)")
    ap.add_argument("--photo", default="", help="pipeline/GUI photo size WxH (default 6000x4000)")
    ap.add_argument("--gui-strokes", type=int, default=50)
    ap.add_argument("--gui-in-process", action="store_true",
                    help="run the GUI suite in this process (memory figures then include "
                         "whatever ran before)")
    a = ap.parse_args(argv)
    import torch

    from .engine.devices import PRECISIONS, pick_device
    torch.set_num_threads(a.threads)
    device = pick_device(a.device)
    runs = a.runs if a.runs is not None else (1 if a.quick else 3)
    photo_hw = _parse_hw(a.photo) if a.photo else ((256, 384) if a.quick else (4000, 6000))
    machine = machine_info(a.threads)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t_start = time.perf_counter()
    json_path = Path(a.json_out) if a.json_out else None

    def report(rows, status: str) -> dict:
        machine["total_wall_s"] = round(time.perf_counter() - t_start, 1)
        return {"machine": machine, "args": vars(a), "device": device, "status": status,
                "results": list(rows)}

    def save_partial(rows) -> None:
        if json_path is not None:
            _write_json(json_path, report(rows, "running"))

    rows = RowSink(save_partial)
    names = [n for n in a.models.split(",") if n] or network_names()
    sizes = None
    if a.sizes or a.quick:
        s = tuple(int(x) for x in a.sizes.split(",")) if a.sizes else QUICK_SIZES
        sizes = {n: s for n in names}
    if a.precisions:
        precisions = tuple(p for p in a.precisions.split(",") if p)
    else:
        precisions = PRECISIONS if device.startswith("cuda") else ("fp32",)
    skip = tuple(x for x in a.skip.split(",") if x)
    cases = [c for c in a.cases.split(",") if c] or None
    strategies = [s for s in a.strategies.split(",") if s] or \
        (["crop"] if a.quick else ["crop", "resize", "tile"])
    est = estimate_seconds(a.suite, names, sizes, runs, precisions, not a.no_reference,
                           a.row_budget, strategies, cases, photo_hw, bool(a.outpaint_model))
    parts = ", ".join(f"{k} {_minutes(v)}" for k, v in est.items() if v)
    log(f"inpaint bench: estimated {_minutes(sum(est.values()))} ({parts}; figures of the "
        "README's 2-core reference VM, scale for this machine)"
        + (f"; rows are saved to {json_path} as they finish" if json_path else
           "; pass --json FILE to keep the rows as they finish"))
    status = "complete"
    try:
        if a.profile and device == "cpu":
            machine["roofline"] = machine_roofline(a.threads)
        if a.suite in ("models", "networks", "all"):
            bench_networks(names, sizes, runs, device, precisions, a.threads,
                           a.row_budget, a.row_timeout, skip, log,
                           reference=not a.no_reference, profile=a.profile, sink=rows)
        if a.suite in ("pipeline", "all"):
            for prec in precisions:
                bench_pipeline(a.pipeline_model, strategies, runs, device, cases, photo_hw,
                               a.outpaint_model or None, log=log, precision=prec, sink=rows)
        if a.suite in ("gui", "all"):
            log("gui ...")
            rows += bench_gui(runs, photo_hw, 10 if a.quick else a.gui_strokes,
                              a.pipeline_model, a.threads, a.gui_in_process)
    except KeyboardInterrupt:
        status = "interrupted"
        log(f"\ninpaint bench: interrupted; keeping the {len(rows)} rows measured so far")
    try:
        machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        pass
    final = report(rows, status)
    md = markdown(list(rows), machine)
    head = (f"machine: {machine['processor']}, {machine['cpu_count']} CPUs, torch "
            f"{machine['torch']}, {a.threads} threads, device {device}, load "
            f"{machine.get('loadavg_start')} -> {machine.get('loadavg_end')}, "
            f"{machine['date_utc']} UTC")
    print(head)
    print(md)
    if a.md_out:
        Path(a.md_out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.md_out).write_text(head + "\n" + md + "\n")
    if json_path is not None:
        _write_json(json_path, final)
        print(f"\nwrote {json_path}" + (" (interrupted: partial)" if status != "complete" else ""))
    return 130 if status == "interrupted" else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main_bench())
