"""Device selection: "auto" picks cuda, then mps, then cpu. Torch is imported lazily."""
from __future__ import annotations

DEVICES = ("auto", "cpu", "cuda", "mps")  # the one list (GUI, CLI, settings)
PRECISIONS = ("fp32", "fp16", "bf16")


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


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX); elsewhere bf16
    would be emulated and slower than fp32."""
    try:
        import torch
        cpu = torch.cpu
        return bool(getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
                    or getattr(cpu, "_is_amx_tile_supported", lambda: False)())
    except Exception:  # pragma: no cover - best effort
        return False


def effective_precision(device: str, precision: str) -> str:
    """The precision a network really runs in: fp16/bf16 on CUDA; bf16 on a CPU with native
    bf16; fp32 otherwise (CPU fp16, CPU without bf16, MPS)."""
    precision = (precision or "fp32").lower()
    if device.startswith("cuda") and precision in ("fp16", "bf16"):
        return precision
    if device == "cpu" and precision == "bf16" and cpu_has_native_bf16():
        return "bf16"
    return "fp32"


def autocast_context(device: str, precision: str):
    """Context manager running a forward in :func:`effective_precision` (autocast for half
    precisions, a no-op for fp32). Inputs and outputs stay fp32 tensors."""
    import contextlib
    import torch
    eff = effective_precision(device, precision)
    if eff == "fp32":
        return contextlib.nullcontext()
    dtype = torch.float16 if eff == "fp16" else torch.bfloat16
    return torch.autocast("cuda" if device.startswith("cuda") else "cpu", dtype=dtype)


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
