"""Finding, reading, checking and loading weight files.

Checkpoints are read with ``torch.load(..., weights_only=True)`` (never arbitrary unpickling).
Errors are :class:`WeightsError` subclasses with a message meant for the user.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable, Mapping, Optional

from .registry import ModelSpec, WeightSet

BUNDLED_DIR = Path(__file__).resolve().parents[2] / "models"

# Dict keys under which official training scripts nest the generator's state dict.
WRAPPER_KEYS = ("state_dict", "generator", "netG", "G", "model", "gen", "net", "params", "module")


class WeightsError(Exception):
    """A weight file that cannot be used; the message says why."""


class MissingWeightsError(WeightsError):
    pass


class CheckpointFormatError(WeightsError):
    pass


class ArchitectureMismatchError(WeightsError):
    pass


class ChecksumError(WeightsError):
    pass


def user_models_dir() -> Path:
    env = os.environ.get("INPAINT_GUI_MODELS")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "inpaint-gui" / "models"


def search_dirs() -> "list[Path]":
    return [user_models_dir(), BUNDLED_DIR]


def find_weight_file(ws: WeightSet) -> Optional[Path]:
    for d in search_dirs():
        p = d / ws.filename
        if p.is_file():
            return p
    return None


def weight_status(spec: ModelSpec) -> "tuple[str, Optional[WeightSet], Optional[Path]]":
    """("none needed" | "starter" | "official" | "imported" | "missing" | "unavailable",
    weight set, path).

    The first weight set whose file is present wins (official ones are listed first by the
    adapters that prefer them). "unavailable": the model cannot run on this installation at
    all (``registry.unavailable_reason`` says why), whatever its weights."""
    from .registry import unavailable_reason
    if unavailable_reason(spec):
        return "unavailable", None, None
    if not spec.needs_weights:
        return "none needed", None, None
    for ws in spec.weight_sets:
        p = find_weight_file(ws)
        if p is not None:
            return ws.kind, ws, p
    return "missing", None, None


def sha256_file(path: "str | os.PathLike", chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def verify_checksum(path: "str | os.PathLike", expected: Optional[str]) -> None:
    if expected:
        got = sha256_file(path)
        if got != expected:
            raise ChecksumError(f"{path}: sha256 {got[:12]}… does not match the expected "
                                f"{expected[:12]}… (corrupt or different file)")


def read_checkpoint(path: "str | os.PathLike"):
    """Load a torch checkpoint safely (weights_only). Raises CheckpointFormatError."""
    import torch
    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(f"weight file not found: {path}")
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointFormatError(f"{path.name} is not a readable PyTorch checkpoint ({msg[:200]})") from exc


def _is_tensor_dict(obj) -> bool:
    import torch
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def unwrap_state_dict(obj, wrapper_keys: Iterable[str] = WRAPPER_KEYS,
                      strip_prefixes: Iterable[str] = ("module.",)) -> "dict":
    """Find the tensor dict inside common checkpoint containers and strip DataParallel prefixes."""
    seen = 0
    while not _is_tensor_dict(obj):
        if not isinstance(obj, Mapping) or seen > 4:
            raise CheckpointFormatError("the checkpoint holds no state dict of tensors")
        for k in wrapper_keys:
            if k in obj and isinstance(obj[k], Mapping):
                obj = obj[k]
                break
        else:
            import torch
            tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
            if tensors:
                obj = tensors
                break
            raise CheckpointFormatError(
                "the checkpoint holds no state dict of tensors (top-level keys: "
                + ", ".join(map(str, list(obj)[:8])) + ")")
        seen += 1
    sd = dict(obj)
    for prefix in strip_prefixes:
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def load_into(net, state_dict: "Mapping", model_name: str = "model") -> None:
    """``net.load_state_dict(sd, strict=True)`` with a readable error on any mismatch.

    Tensors are cast to the dtype of the parameter they replace (fp16 files load into fp32)."""
    own = net.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f"{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}"
              for k in own if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (e.g. {'; '.join(shapes[:2])})")
        raise ArchitectureMismatchError(
            f"these weights do not fit {model_name}: " + "; ".join(parts))
    cast = {k: v.to(own[k].dtype) if v.dtype != own[k].dtype else v for k, v in state_dict.items()}
    net.load_state_dict(cast, strict=True)


def resolve_state_dict(spec: ModelSpec, weights=None, extract=None) -> "tuple[dict, Optional[WeightSet]]":
    """Turn ``weights`` (None = best available set, a path, or a state dict) into a state dict.

    ``extract(obj) -> state dict`` handles a model's own container format (defaults to
    :func:`unwrap_state_dict`)."""
    extract = extract or unwrap_state_dict
    ws = None
    if weights is None:
        status, ws, path = weight_status(spec)
        if path is None:
            raise MissingWeightsError(
                f"no weights for {spec.name}: put one of "
                + ", ".join(w.filename for w in spec.weight_sets)
                + f" into {user_models_dir()} or pass --weights")
        verify_checksum(path, ws.sha256)
        weights = path
    if isinstance(weights, (str, os.PathLike)):
        obj = read_checkpoint(weights)
        return extract(obj), ws
    if isinstance(weights, Mapping):
        return extract(weights), ws
    raise TypeError(f"weights must be None, a path or a state dict, not {type(weights).__name__}")
