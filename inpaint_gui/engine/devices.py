"""Device selection: "auto" picks cuda, then mps, then cpu. Torch is imported lazily."""
from __future__ import annotations

DEVICES = ("auto", "cpu", "cuda", "mps")


def available_devices() -> "list[str]":
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return ["cpu"]
    out = ["cpu"]
    if torch.cuda.is_available():
        out.insert(0, "cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.insert(0 if "cuda" not in out else 1, "mps")
    return out


def pick_device(requested: str = "auto") -> str:
    """Resolve "auto" (cuda → mps → cpu); an unavailable explicit device falls back to cpu."""
    requested = (requested or "auto").lower()
    avail = available_devices()
    if requested == "auto":
        return avail[0]
    base = requested.split(":")[0]
    if base not in DEVICES:
        raise ValueError(f"unknown device {requested!r}; choose one of {', '.join(DEVICES)}")
    return requested if base in avail else "cpu"


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA/MPS out-of-memory errors (torch raises several types for them)."""
    try:
        import torch
        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except (ImportError, AttributeError):  # pragma: no cover
        pass
    return isinstance(exc, (RuntimeError, MemoryError)) and "out of memory" in str(exc).lower()


def free_device_memory(device: str) -> None:
    try:
        import torch
        if device.startswith("cuda") and torch.cuda.is_available():
            torch.cuda.empty_cache()
        elif device == "mps" and hasattr(torch, "mps"):
            torch.mps.empty_cache()
    except Exception:  # pragma: no cover - best effort
        pass
