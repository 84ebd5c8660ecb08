"""What the benchmark suites share (``inpaint bench`` and its GUI suite,
:mod:`inpaint_gui.ui.bench_gui`): memory figures of this process, the benchmark photo and its
masks, and the weights timing runs use. Qt-free.
"""
from __future__ import annotations

import resource
import sys
from pathlib import Path

import numpy as np


# ----------------------------------------------------------------------------- memory

def proc_status() -> dict:
    """VmRSS / VmHWM (peak) of this process in MiB (Linux; ru_maxrss elsewhere)."""
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0]) / 1024.0
    except OSError:  # pragma: no cover - non-Linux
        pass
    if "VmHWM" not in out:  # pragma: no cover
        out["VmHWM"] = peak_rss_mib()
        out.setdefault("VmRSS", out["VmHWM"])
    return out


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0); False if impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:  # pragma: no cover
        return False


def peak_rss_mib() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024.0 if sys.platform != "darwin" else r / (1024.0 * 1024.0)


def current_rss_mib() -> float:
    return proc_status().get("VmRSS", 0.0)


# ----------------------------------------------------------------------------- inputs

def _big_photo(h: int = 4000, w: int = 6000) -> np.ndarray:
    import cv2
    sample = Path(__file__).resolve().parents[1] / "resources" / "samples" / "harbour.jpg"
    img = cv2.imread(str(sample), cv2.IMREAD_COLOR) if sample.is_file() else None
    if img is None:
        rng = np.random.default_rng(0)
        img = (rng.random((400, 600, 3)) * 255).astype(np.uint8)
    big = cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC)
    # a little sensor-like noise so the JPEG is photo-sized, not an upscaled smooth blur
    rng = np.random.default_rng(1)
    noise = rng.integers(-6, 7, size=(h, w, 1), dtype=np.int16)
    big = np.clip(big.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(big[..., ::-1])


def write_photo(path: "str | Path", h: int = 4000, w: int = 6000) -> Path:
    """The benchmark photo as a JPEG (quality 92) at ``path``."""
    import cv2
    path = Path(path)
    cv2.imwrite(str(path), _big_photo(h, w)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
    return path


def pipeline_cases(h: int = 4000, w: int = 6000) -> "dict[str, dict]":
    """(a) small object ~1 %, (b) scattered masks, (c) large hole ~30 %, (d) 25 % outpaint."""
    import cv2
    small = np.zeros((h, w), np.uint8)
    r = int(np.sqrt(0.01 * h * w / np.pi))
    cv2.circle(small, (int(w * 0.6), int(h * 0.55)), r, 255, -1)
    scattered = np.zeros((h, w), np.uint8)
    rng = np.random.default_rng(3)
    s = min(h, w) / 4000.0
    for _ in range(8):
        cv2.circle(scattered, (int(rng.integers(w // 30, w - w // 30)),
                               int(rng.integers(h // 20, h - h // 20))),
                   max(2, int(rng.integers(30, 120) * s)), 255, -1)
    large = np.zeros((h, w), np.uint8)
    cv2.ellipse(large, (w // 2, h // 2), (int(w * 0.3), int(h * 0.32)), 0, 0, 360, 255, -1)
    medium = np.zeros((h, w), np.uint8)  # one ellipse of ~20 % (a = 0.252 w, b = 0.252 h)
    cv2.ellipse(medium, (w // 2, h // 2), (int(w * 0.252), int(h * 0.252)), 0, 0, 360, 255, -1)
    return {"a_small_object": {"mask": small}, "b_scattered": {"mask": scattered},
            "c_large_hole": {"mask": large}, "d_outpaint_25": {"margins": (0, 0, 0, w // 4)},
            "e_hole_20": {"mask": medium}}


#: Cases run only when named in ``--cases`` (e: PatchMatch's 20 % figure).
EXTRA_CASES = ("e_hole_20",)


def deterministic_weights(model: str):
    """A deterministic state dict for ``model`` (timing only: the fill is meaningless)."""
    from .engine import nets
    from .engine.registry import get_spec
    net = nets.create(get_spec(model).network)
    return det_weights(model, net)


def weights_for(model: str):
    """(weights argument, label): installed full-size weights when present, else
    deterministic full-size ones. A bundled starter is a smaller variant, so it would time a
    different network: the official architecture is timed instead."""
    from .engine.registry import get_spec
    from .engine.weights import weight_status
    spec = get_spec(model)
    if not spec.needs_weights:
        return None, "none needed"
    state, ws, _path = weight_status(spec)
    if state not in ("missing", "broken") and ws is not None and ws.kind != "starter":
        return None, f"installed ({ws.name})"
    return deterministic_weights(model), "deterministic full-size (timing only)"


def det_weights(name: str, net):
    """The deterministic weights of ``name``'s network (``nets.detinit``; timing only)."""
    from .engine.nets.detinit import deterministic_state_dict
    from .engine.registry import get_adapter
    return deterministic_state_dict(net, **get_adapter(name).det_init)
