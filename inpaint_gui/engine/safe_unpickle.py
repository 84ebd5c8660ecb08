"""Read tensors out of PyTorch checkpoints without ever executing code from the file.

Official checkpoints are not always plain state dicts: a PyTorch-Lightning ``.ckpt`` (LaMa's
``best.ckpt`` / ``big-lama.ckpt``) also pickles hyper-parameters (OmegaConf objects), callback
states and loop states, so ``torch.load(weights_only=True)`` refuses it; ``torch.load`` without
``weights_only`` would run whatever the pickle asks for. This module's unpickler:

* rebuilds only tensors (from the file's storages), ``OrderedDict``/``dict``/``list``/``tuple``/
  ``set`` and plain scalars (plus ``torch.Size``, ``torch.device`` and dtypes);
* turns *every* other global (classes and functions alike: ``omegaconf.DictConfig``,
  ``os.system``, ``builtins.eval`` ...) into an inert :class:`Inert` placeholder that only
  records its arguments and state; nothing is imported, nothing is called;
* refuses the pickle extension registry; BUILD only fills placeholders (and the
  ``_metadata`` attribute of state-dict OrderedDicts).

Formats: the zip format of ``torch.save`` (PyTorch >= 1.6), the legacy sequential format
(PyTorch < 1.6, e.g. PEN-Net's ``gen_*.pth``) and TorchScript archives (``torch.jit.save``, e.g.
LaMa's traced ``big-lama.pt``), whose module tree is read from ``data.pkl`` the same way
(no ``torch.jit.load``, so none of the archive's TorchScript code is compiled or run).

``safe_load(path)`` returns the unpickled object (tensors + containers + placeholders);
``named_tensors(obj)`` flattens any of these into ``{dotted.name: tensor}``.
"""
from __future__ import annotations

import _compat_pickle
import io
import os
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict

from .weights import (ArchitectureMismatchError, CheckpointFormatError, MissingWeightsError,
                      user_models_dir, verify_checksum, weight_status)

__all__ = ["safe_load", "named_tensors", "Inert", "UnsafeCheckpointError", "is_torchscript_archive",
           "read_checkpoint_any", "resolve_weights", "select_by_keys"]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

_DTYPE_OF_STORAGE = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128",
}


class UnsafeCheckpointError(CheckpointFormatError):
    """The file is not a checkpoint this reader understands (message says why)."""


class Inert:
    """Stand-in for any global the checkpoint names that is not on the allow list.

    Never runs code: it records the constructor arguments (``args``/``kwargs``), the BUILD
    ``state``, appended ``items`` and set ``entries``. ``global_name`` says what it replaced."""

    global_name = "?"

    def __new__(cls, *args, **kwargs):
        self = object.__new__(cls)
        self.args, self.kwargs = args, kwargs
        self.state = None
        self.items = []
        self.entries = {}
        return self

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state

    def append(self, item):
        self.items.append(item)

    def extend(self, items):
        self.items.extend(items)

    def __setitem__(self, key, value):
        self.entries[key] = value

    def __repr__(self) -> str:
        return f"<Inert {self.global_name}>"


def _inert_class(module: str, name: str):
    return type("Inert_" + "".join(c if c.isalnum() else "_" for c in name)[:60], (Inert,),
                {"global_name": f"{module}.{name}", "__module__": __name__})


class _StorageType:
    """Marker for ``torch.FloatStorage`` & co. inside persistent ids."""

    def __init__(self, dtype_name: str):
        self.dtype_name = dtype_name


def _torch():
    import torch
    return torch


def _rebuild_tensor(storage, storage_offset, size, stride, *rest):
    torch = _torch()
    if not isinstance(storage, torch.Tensor):
        raise UnsafeCheckpointError("tensor without storage")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride):
        raise UnsafeCheckpointError("bad tensor geometry")
    if size and min(size) > 0:
        last = int(storage_offset) + sum((s - 1) * st for s, st in zip(size, stride))
        if storage_offset < 0 or last >= storage.numel() or min(stride) < 0:
            raise UnsafeCheckpointError("tensor extends past its storage")
    return torch.as_strided(storage, size, stride, int(storage_offset))


def _rebuild_tensor_legacy(storage, storage_offset, size, stride):
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *rest):
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    return func(*args)


def _codecs_encode(obj, encoding="utf-8", errors="strict"):
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise UnsafeCheckpointError("unexpected _codecs.encode call")
    return obj.encode(encoding, errors)


def _allowed_globals() -> Dict[tuple, Any]:
    torch = _torch()
    allowed = {
        ("collections", "OrderedDict"): OrderedDict,
        ("builtins", "dict"): dict, ("builtins", "list"): list, ("builtins", "tuple"): tuple,
        ("builtins", "set"): set, ("builtins", "frozenset"): frozenset,
        ("builtins", "int"): int, ("builtins", "float"): float, ("builtins", "bool"): bool,
        ("builtins", "str"): str, ("builtins", "complex"): complex, ("builtins", "slice"): slice,
        ("_codecs", "encode"): _codecs_encode,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor_legacy,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
    }
    for sname, dname in _DTYPE_OF_STORAGE.items():
        allowed[("torch", sname)] = _StorageType(dname)
    for dname in set(_DTYPE_OF_STORAGE.values()):
        allowed[("torch", dname)] = getattr(torch, dname)
    return allowed


class _RestrictedUnpickler(pickle._Unpickler):
    """Pure-Python unpickler (so opcodes can be overridden) with an allow list."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, storage_loader, allowed):
        super().__init__(file, encoding="latin1")
        self._storage_loader = storage_loader
        self._allowed = allowed
        self._inert = {}

    def find_class(self, module, name):
        if self.proto < 3:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        key = (str(module), str(name))
        if key in self._allowed:
            return self._allowed[key]
        if key not in self._inert:
            self._inert[key] = _inert_class(*key)
        return self._inert[key]

    def persistent_load(self, pid):
        return self._storage_loader(pid)

    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, Inert):
            inst.__setstate__(state)
        elif isinstance(inst, dict):  # state-dict OrderedDicts carry ``_metadata``
            if isinstance(state, tuple) and len(state) == 2:
                state = state[0]
            if isinstance(state, dict) and hasattr(inst, "__dict__"):
                for k, v in state.items():
                    if isinstance(k, str) and not k.startswith("__"):
                        inst.__dict__[k] = v
        # anything else (tensors, tuples, ...): state ignored
    dispatch[pickle.BUILD[0]] = load_build

    def _no_ext(self):
        raise UnsafeCheckpointError("pickle extension codes are not allowed")
    dispatch[pickle.EXT1[0]] = _no_ext
    dispatch[pickle.EXT2[0]] = _no_ext
    dispatch[pickle.EXT4[0]] = _no_ext


def _wrap_errors(fn):
    def inner(path, *a, **kw):
        try:
            return fn(path, *a, **kw)
        except UnsafeCheckpointError:
            raise
        except (MemoryError, RecursionError) as exc:
            raise UnsafeCheckpointError(f"{Path(path).name}: too large or too deeply nested ({type(exc).__name__})") from exc
        except Exception as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UnsafeCheckpointError(f"{Path(path).name} is not a readable checkpoint ({msg[:200]})") from exc
    inner.__name__ = fn.__name__
    inner.__doc__ = fn.__doc__
    return inner


def _zip_root(names) -> str:
    pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
    if not pkl:
        raise UnsafeCheckpointError("zip archive without data.pkl (not a PyTorch checkpoint)")
    return pkl[0].split("/")[0]


def is_torchscript_archive(path) -> bool:
    """True for ``torch.jit.save`` archives (they carry TorchScript code / constants)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.count("/") >= 1 and (n.split("/", 1)[1] == "constants.pkl"
                                      or n.split("/", 1)[1].startswith("code/")) for n in names)


def _load_zip(path: Path):
    torch = _torch()
    allowed = _allowed_globals()
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        root = _zip_root(names)
        big_endian = False
        if f"{root}/byteorder" in names:
            big_endian = zf.read(f"{root}/byteorder").strip() == b"big"
        cache: dict = {}

        def load_storage(pid):
            if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
                return _inert_class("persistent", str(pid[0] if isinstance(pid, tuple) and pid else pid))()
            stype, key, _location, numel = pid[1], str(pid[2]), pid[3], int(pid[4])
            if isinstance(stype, _StorageType):
                dtype = getattr(torch, stype.dtype_name)
            elif isinstance(stype, torch.dtype):
                dtype = stype
            else:
                raise UnsafeCheckpointError(f"unsupported storage type {stype!r}")
            if key in cache:
                return cache[key]
            rec = f"{root}/data/{key}"
            if rec not in names:
                raise UnsafeCheckpointError(f"storage {key} missing from the archive")
            itemsize = torch.empty((), dtype=dtype).element_size()
            info = zf.getinfo(rec)
            if info.file_size < numel * itemsize:
                raise UnsafeCheckpointError(f"storage {key} is truncated")
            raw = bytearray(zf.read(rec)[:numel * itemsize])
            t = torch.frombuffer(raw, dtype=torch.uint8) if numel else torch.empty(0, dtype=torch.uint8)
            t = t.view(dtype) if numel else torch.empty(0, dtype=dtype)
            if big_endian and itemsize > 1:
                t = torch.from_numpy(t.numpy().byteswap())
            cache[key] = t
            return t

        with zf.open(f"{root}/data.pkl") as fh:
            data = io.BytesIO(fh.read())
        return _RestrictedUnpickler(data, load_storage, allowed).load()


def _load_legacy(path: Path):
    torch = _torch()
    allowed = _allowed_globals()
    with open(path, "rb") as f:
        def unpickler(loader):
            return _RestrictedUnpickler(f, loader, allowed)

        def no_storage(pid):
            raise UnsafeCheckpointError("unexpected storage reference in the header")

        magic = unpickler(no_storage).load()
        if magic != LEGACY_MAGIC:
            raise UnsafeCheckpointError("not a PyTorch checkpoint (bad magic number)")
        protocol = unpickler(no_storage).load()
        if protocol != 1001:
            raise UnsafeCheckpointError(f"unsupported legacy protocol {protocol!r}")
        sys_info = unpickler(no_storage).load()
        little = not isinstance(sys_info, dict) or sys_info.get("little_endian", True)
        storages: dict = {}

        def load_storage(pid):
            if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
                return _inert_class("persistent", str(pid[0] if isinstance(pid, tuple) and pid else pid))()
            stype, key, _location, numel = pid[1], str(pid[2]), pid[3], int(pid[4])
            view = pid[5] if len(pid) > 5 else None
            if not isinstance(stype, _StorageType):
                raise UnsafeCheckpointError(f"unsupported storage type {stype!r}")
            if key not in storages:
                if numel < 0 or numel > (1 << 36):
                    raise UnsafeCheckpointError("implausible storage size")
                storages[key] = torch.empty(numel, dtype=getattr(torch, stype.dtype_name))
            st = storages[key]
            if view is not None:
                _vkey, offset, vsize = view
                return st[int(offset):int(offset) + int(vsize)]
            return st

        result = unpickler(load_storage).load()
        keys = unpickler(no_storage).load()
        if not isinstance(keys, list):
            raise UnsafeCheckpointError("bad storage key list")
        for key in keys:
            st = storages.get(str(key))
            if st is None:
                raise UnsafeCheckpointError(f"unknown storage {key}")
            (numel,) = struct.unpack("<q", f.read(8))
            if numel != st.numel():
                raise UnsafeCheckpointError(f"storage {key} has {numel} elements, expected {st.numel()}")
            nbytes = numel * st.element_size()
            raw = f.read(nbytes)
            if len(raw) != nbytes:
                raise UnsafeCheckpointError(f"storage {key} is truncated")
            if nbytes:
                src = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(st.dtype)
                if not little and st.element_size() > 1:
                    src = torch.from_numpy(src.numpy().byteswap())
                st.copy_(src)
        return result


@_wrap_errors
def safe_load(path: "str | os.PathLike"):
    """Unpickle a ``torch.save`` / ``torch.jit.save`` file with the restricted unpickler.

    Returns containers, CPU tensors and :class:`Inert` placeholders. Raises
    :class:`UnsafeCheckpointError` for anything it cannot read."""
    path = Path(path)
    if not path.is_file():
        raise UnsafeCheckpointError(f"file not found: {path}")
    if zipfile.is_zipfile(path):
        return _load_zip(path)
    with open(path, "rb") as f:
        head = f.read(2)
    if head[:1] != b"\x80":
        raise UnsafeCheckpointError(f"{path.name} is not a PyTorch checkpoint")
    return _load_legacy(path)


def named_tensors(obj, prefix: str = "", _depth: int = 0, _seen=None) -> "OrderedDict[str, Any]":
    """Flatten tensors found in dicts, lists/tuples and placeholders' recorded state into
    ``{dotted.name: tensor}`` (TorchScript module trees give ``generator.model.1.ffc...``)."""
    torch = _torch()
    out: "OrderedDict[str, Any]" = OrderedDict()
    if _seen is None:
        _seen = set()
    if _depth > 64 or id(obj) in _seen:
        return out
    if isinstance(obj, torch.Tensor):
        if prefix:
            out[prefix] = obj
        return out
    _seen.add(id(obj))
    join = (lambda k: f"{prefix}.{k}" if prefix else str(k))
    if isinstance(obj, dict):
        items = list(obj.items())
    elif isinstance(obj, (list, tuple)):
        items = list(enumerate(obj))
    elif isinstance(obj, Inert):
        items = []
        if isinstance(obj.state, dict):
            items += list(obj.state.items())
        elif isinstance(obj.state, tuple):
            for part in obj.state:
                if isinstance(part, dict):
                    items += list(part.items())
        items += list(obj.entries.items())
    else:
        return out
    for k, v in items:
        if not isinstance(k, (str, int)):
            continue
        for name, t in named_tensors(v, join(k), _depth + 1, _seen).items():
            out.setdefault(name, t)
    return out


# --------------------------------------------------------------------------------------------
# Helpers for model adapters
# --------------------------------------------------------------------------------------------
def read_checkpoint_any(path: "str | os.PathLike"):
    """Read a weight file without executing code from it.

    TorchScript archives -> ``{dotted.name: tensor}`` of the module tree; other files ->
    ``torch.load(weights_only=True)`` when it accepts the file, else :func:`safe_load`
    (Lightning checkpoints with pickled hyper-parameters). Raises a ``WeightsError``."""
    from .weights import read_checkpoint
    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(f"weight file not found: {path}")
    if is_torchscript_archive(path):
        try:
            tensors = named_tensors(safe_load(path))
        except UnsafeCheckpointError:
            tensors = {}
        if not tensors:  # older archive layouts: let TorchScript (no Python code) read it
            tensors = _torchscript_state_dict(path)
        return tensors
    try:
        return read_checkpoint(path)
    except MissingWeightsError:
        raise
    except CheckpointFormatError as first:
        try:
            return safe_load(path)
        except UnsafeCheckpointError as exc:
            raise CheckpointFormatError(str(first)) from exc


def _torchscript_state_dict(path: Path):
    """Parameters and buffers of a TorchScript archive via ``torch.jit.load`` (fallback for
    layouts ``data.pkl`` does not cover; TorchScript code is compiled, never Python)."""
    import torch
    try:
        module = torch.jit.load(str(path), map_location="cpu")
        tensors = OrderedDict((k, v.detach()) for k, v in module.state_dict().items())
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointFormatError(f"{path.name} is not a readable TorchScript archive ({msg[:200]})") from exc
    if not tensors:
        raise CheckpointFormatError(f"{path.name}: TorchScript archive without parameters")
    return tensors


def resolve_weights(spec, weights=None):
    """``(object read from the weights, WeightSet or None)`` for None (best installed set), a
    path or an in-memory state dict. Like ``weights.resolve_state_dict`` but the file may be a
    Lightning checkpoint or a TorchScript archive; the adapter extracts its own keys."""
    from collections.abc import Mapping
    ws = None
    if weights is None:
        _status, ws, path = weight_status(spec)
        if path is None:
            raise MissingWeightsError(
                f"no weights for {spec.name}: put one of "
                + ", ".join(w.filename for w in spec.weight_sets)
                + f" into {user_models_dir()} or pass --weights")
        verify_checksum(path, ws.sha256)
        weights = path
    if isinstance(weights, (str, os.PathLike)):
        return read_checkpoint_any(weights), ws
    if isinstance(weights, Mapping):
        return weights, ws
    raise TypeError(f"weights must be None, a path or a state dict, not {type(weights).__name__}")


def select_by_keys(tensors, own_keys, preferred=("generator.", "module.")) -> "OrderedDict":
    """Pick ``own_keys`` out of ``tensors`` ({name: tensor}), trying no prefix, then the
    ``preferred`` prefixes, then any prefix under which the first own key appears. The prefix
    that matches most keys wins; its tensors are returned with the prefix stripped (so a
    mismatch is reported key by key by ``weights.load_into``)."""
    own_keys = list(own_keys)
    names = list(tensors)
    candidates = [""] + list(preferred)
    anchor_hits = set()
    for anchor in own_keys[:3]:
        for n in names:
            if n.endswith(anchor) and (len(n) == len(anchor) or n[-len(anchor) - 1] == "."):
                anchor_hits.add(n[:len(n) - len(anchor)])
    candidates += sorted(anchor_hits, key=len)
    best, best_hits = None, 0
    for prefix in candidates:
        hits = sum(1 for k in own_keys if prefix + k in tensors)
        if hits > best_hits:
            best, best_hits = prefix, hits
        if hits == len(own_keys):
            break
    if best is None:
        sample = ", ".join(names[:4])
        raise ArchitectureMismatchError(
            f"these weights do not fit: none of the expected keys (e.g. {own_keys[0]}) is in the "
            f"file (it has e.g. {sample})")
    return OrderedDict((n[len(best):], t) for n, t in tensors.items() if n.startswith(best))
