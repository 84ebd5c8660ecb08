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
from typing import Any, Dict, Optional, Sequence

from .weight_errors import ArchitectureMismatchError, CheckpointFormatError, MissingWeightsError

__all__ = ["safe_load", "named_tensors", "Inert", "UnsafeCheckpointError", "is_torchscript_archive",
           "read_checkpoint", "read_checkpoint_any", "select_by_keys", "scan_checkpoint",
           "checkpoint_problem", "plain_error", "SAFE_GLOBALS"]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

_DTYPE_OF_STORAGE = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128",
}


#: Every global the restricted unpickler rebuilds, as (module, name): what ``torch.save`` of
#: tensors and plain containers writes. Any other global in a pickle is something a normal
#: unpickler would import and call (code from the file or from an installed package).
SAFE_GLOBALS = frozenset(
    [("collections", "OrderedDict"), ("_codecs", "encode"), ("torch", "Size"), ("torch", "device")]
    + [("builtins", n) for n in ("dict", "list", "tuple", "set", "frozenset", "int", "float",
                                 "bool", "str", "complex", "slice")]
    + [("torch._utils", n) for n in ("_rebuild_tensor_v2", "_rebuild_tensor", "_rebuild_parameter",
                                     "_rebuild_parameter_with_state")]
    + [("torch._tensor", "_rebuild_from_type_v2")]
    + [("torch", n) for n in _DTYPE_OF_STORAGE]
    + [("torch", n) for n in set(_DTYPE_OF_STORAGE.values())])


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
            reason = _problem_or_none(path) or plain_error(exc)
            raise UnsafeCheckpointError(f"{Path(path).name}: {reason}") from exc
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
            raise UnsafeCheckpointError(NOT_A_CHECKPOINT + " (a plain Python pickle)")
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
        raise UnsafeCheckpointError(f"{path.name}: {NOT_A_CHECKPOINT}")
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
# Checking a file without loading it (plain-words reasons; no torch import, no tensor data read)
# --------------------------------------------------------------------------------------------
NOT_A_CHECKPOINT = "not a PyTorch checkpoint"
EMPTY_FILE = "the file is empty"
INCOMPLETE = "the file is incomplete: it ends early (an interrupted download?)"
DAMAGED = "the file is damaged (its contents do not add up)"

_ITEMSIZE = {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4,
             "int16": 2, "int8": 1, "uint8": 1, "bool": 1, "complex64": 8, "complex128": 16}
_MAX_PICKLE_BYTES = 256 << 20  # a data.pkl larger than this is not a weights file


class CheckpointScan:
    """What :func:`scan_checkpoint` found: ``kind`` ("zip" | "torchscript" | "legacy" | None),
    ``foreign``: globals outside :data:`SAFE_GLOBALS` as "module.name" (sorted), ``problem``:
    a structural problem in plain words (None when the file looks whole)."""

    __slots__ = ("kind", "foreign", "problem")

    def __init__(self, kind, foreign=(), problem=None):
        self.kind, self.foreign, self.problem = kind, tuple(foreign), problem

    def __repr__(self) -> str:
        return f"CheckpointScan({self.kind!r}, foreign={self.foreign!r}, problem={self.problem!r})"


class _PickleWalk:
    """Follows a pickle's opcodes with a symbolic stack (``pickletools.genops``: nothing is
    built, imported or called) to collect its globals and persistent ids (tensor storages)."""

    _STR_OPS = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "SHORT_BINUNICODE",
                "BINUNICODE", "BINUNICODE8", "INT", "BININT", "BININT1", "BININT2", "LONG",
                "LONG1", "LONG4", "NONE", "NEWTRUE", "NEWFALSE", "FLOAT", "BINFLOAT"}
    _MARK = object()
    _ANY = object()

    def __init__(self) -> None:
        self.globals: "list[str]" = []
        self.pids: "list[tuple]" = []
        self.result = None  # the top of the stack at STOP (a literal, a tuple or a marker)

    def walk(self, stream) -> None:
        import pickletools
        stack: list = []
        memo: dict = {}
        for op, arg, _pos in pickletools.genops(stream):
            name = op.name
            if name in self._STR_OPS:
                stack.append(arg if name not in ("NEWTRUE", "NEWFALSE") else name == "NEWTRUE")
            elif name in ("GLOBAL", "INST"):
                glob = str(arg).replace(" ", ".", 1)
                self.globals.append(glob)
                if name == "INST":
                    self._pop_to_mark(stack)
                stack.append(("global", glob))
            elif name == "STACK_GLOBAL":
                nm, mod = (stack.pop() if stack else None), (stack.pop() if stack else None)
                glob = f"{mod}.{nm}" if isinstance(mod, str) and isinstance(nm, str) else "?.?"
                self.globals.append(glob)
                stack.append(("global", glob))
            elif name in ("EXT1", "EXT2", "EXT4"):
                self.globals.append(f"copyreg.extension_{arg}")
                stack.append(self._ANY)
            elif name == "MARK":
                stack.append(self._MARK)
            elif name == "TUPLE":
                stack.append(tuple(self._pop_to_mark(stack)))
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                n = int(name[-1])
                items = stack[-n:] if n <= len(stack) else list(stack)
                del stack[len(stack) - len(items):]
                stack.append(tuple(items))
            elif name == "EMPTY_TUPLE":
                stack.append(())
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = stack[-1] if stack else self._ANY
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1] if stack else self._ANY
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo.get(arg, self._ANY))
            elif name == "BINPERSID":
                pid = stack.pop() if stack else None
                self.pids.append(pid if isinstance(pid, tuple) else ())
                stack.append(self._ANY)
            elif name == "PERSID":
                self.pids.append((arg,))
                stack.append(self._ANY)
            elif name == "DUP":
                stack.append(stack[-1] if stack else self._ANY)
            elif name == "STOP":
                self.result = stack[-1] if stack else None
            else:  # generic stack effect from the opcode's description
                before = [str(x) for x in op.stack_before]
                if "mark" in before:
                    self._pop_to_mark(stack)
                    n = before.index("mark")
                else:
                    n = len(before)
                del stack[max(0, len(stack) - n):]
                stack.extend(self._ANY for _ in op.stack_after)

    def _pop_to_mark(self, stack: list) -> list:
        for i in range(len(stack) - 1, -1, -1):
            if stack[i] is self._MARK:
                items = stack[i + 1:]
                del stack[i:]
                return items
        items = list(stack)
        stack.clear()
        return items

    def storages(self) -> "list[tuple[str, str, int]]":
        """(key, dtype name, element count) of every ('storage', type, key, location, numel)
        persistent id whose parts are known."""
        out = []
        for pid in self.pids:
            if len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], tuple) \
                    and isinstance(pid[4], int) and not isinstance(pid[4], bool):
                glob = str(pid[1][1])
                dtype = _DTYPE_OF_STORAGE.get(glob.rsplit(".", 1)[-1]) if glob.startswith("torch.") \
                    else None
                out.append((str(pid[2]), dtype or "", int(pid[4])))
        return out

    def foreign(self) -> "list[str]":
        safe = {f"{m}.{n}" for m, n in SAFE_GLOBALS}
        return sorted({g for g in self.globals if g not in safe})


def scan_checkpoint(path: "str | os.PathLike") -> CheckpointScan:
    """Look at a weight file without loading it: its format, the globals its pickle names
    and whether it is whole (empty, cut short, not a PyTorch file). Reads the zip directory
    and the pickle only, never the tensor data; imports and runs nothing from the file."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        return CheckpointScan(None, problem=f"cannot be read ({exc.strerror or type(exc).__name__})")
    if size == 0:
        return CheckpointScan(None, problem=EMPTY_FILE)
    if head[:2] == b"PK":
        return _scan_zip(path)
    if head[:1] == b"\x80":
        return _scan_legacy(path, size)
    return CheckpointScan(None, problem=NOT_A_CHECKPOINT)


def _scan_zip(path: Path) -> CheckpointScan:
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        return CheckpointScan("zip", problem=INCOMPLETE)
    except OSError as exc:
        return CheckpointScan("zip", problem=f"cannot be read ({exc.strerror or type(exc).__name__})")
    with zf:
        infos = {i.filename: i for i in zf.infolist()}
        try:
            root = _zip_root(infos)
        except UnsafeCheckpointError:
            return CheckpointScan("zip", problem=NOT_A_CHECKPOINT + " (a zip archive without data.pkl)")
        kind = "torchscript" if any(n.startswith(root + "/code/") or n == root + "/constants.pkl"
                                    for n in infos) else "zip"
        pkl = infos[f"{root}/data.pkl"]
        if pkl.file_size > _MAX_PICKLE_BYTES:
            return CheckpointScan(kind, problem=NOT_A_CHECKPOINT + " (its index is implausibly large)")
        walk = _PickleWalk()
        try:
            walk.walk(io.BytesIO(zf.read(pkl)))
        except ValueError as exc:  # genops: "pickle exhausted before seeing STOP", bad opcode
            return CheckpointScan(kind, problem=_cut_or_damaged(exc))
        except Exception:  # noqa: BLE001 - bad CRC, bad compression, a pickle genops cannot follow
            return CheckpointScan(kind, problem=DAMAGED)
        if kind == "zip":
            for key, dtype, numel in walk.storages():
                rec = infos.get(f"{root}/data/{key}")
                if rec is None:
                    return CheckpointScan(kind, walk.foreign(), DAMAGED + f" (tensor data {key} is missing)")
                if dtype and rec.file_size < numel * _ITEMSIZE.get(dtype, 1):
                    return CheckpointScan(kind, walk.foreign(), INCOMPLETE)
        return CheckpointScan(kind, walk.foreign())


def _cut_or_damaged(exc: ValueError) -> str:
    """genops' ValueError: the pickle ends early ("exhausted", "not enough data") or is not
    valid (an unknown opcode)."""
    text = str(exc)
    return INCOMPLETE if ("exhausted" in text or "not enough data" in text) else DAMAGED


def _scan_legacy(path: Path, size: int) -> CheckpointScan:
    """The pre-1.6 format: pickles (magic number, protocol, system info, the object, storage
    keys), then each storage as an 8-byte element count and its bytes."""
    walk = _PickleWalk()
    with open(path, "rb") as f:
        first = _PickleWalk()
        try:
            first.walk(f)
        except Exception:  # noqa: BLE001 - not even one pickle genops can follow
            return CheckpointScan(None, problem=NOT_A_CHECKPOINT)
        if first.result != LEGACY_MAGIC or isinstance(first.result, bool):
            return CheckpointScan(None, problem=NOT_A_CHECKPOINT + " (a plain Python pickle)")
        try:
            _PickleWalk().walk(f)  # protocol version
            _PickleWalk().walk(f)  # system info
            walk.walk(f)           # the object: its globals and storages
            _PickleWalk().walk(f)  # storage keys
            pos = f.tell()
        except ValueError as exc:
            return CheckpointScan("legacy", walk.foreign(),
                                  _cut_or_damaged(exc))
        except Exception:  # noqa: BLE001
            return CheckpointScan("legacy", walk.foreign(), DAMAGED)
    need = pos
    for _key, dtype, numel in {s[0]: s for s in walk.storages()}.values():
        need += 8 + numel * _ITEMSIZE.get(dtype, 1)
    if size < need:
        return CheckpointScan("legacy", walk.foreign(),
                              f"the file is incomplete: it has {size:,} bytes, its tensors need "
                              f"{need:,} (an interrupted download?)")
    return CheckpointScan("legacy", walk.foreign())


def code_refusal(foreign: "Sequence[str]") -> str:
    """The plain-words refusal of a pickle that names code (globals outside SAFE_GLOBALS)."""
    names = ", ".join(list(foreign)[:3]) + (", ..." if len(foreign) > 3 else "")
    return ("refused: this file contains code that would run when loaded "
            f"({names}); it is not a plain weights file")


def checkpoint_problem(path: "str | os.PathLike", tolerant: bool = False) -> Optional[str]:
    """Why ``path`` cannot be used as weights, in plain words, or None when it looks usable.

    ``tolerant``: the reader accepts pickled objects besides tensors (they are rebuilt as
    inert placeholders, see :func:`safe_load`), as for Lightning checkpoints and TorchScript
    archives; otherwise any global outside :data:`SAFE_GLOBALS` refuses the file."""
    scan = scan_checkpoint(path)
    if scan.problem:
        return scan.problem
    if not tolerant:
        if scan.kind == "torchscript":
            return ("a TorchScript archive (torch.jit.save), not a plain weights file; "
                    "this model needs the state dict (torch.save)")
        if scan.foreign:
            return code_refusal(scan.foreign)
    return None


def _problem_or_none(path) -> Optional[str]:
    try:
        return scan_checkpoint(path).problem
    except Exception:  # noqa: BLE001 - diagnosis must never hide the original error
        return None


def plain_error(exc: BaseException) -> str:
    """A loader's exception as one plain sentence: no terminal colour codes, no advice to
    load with ``weights_only=False`` (never do that with a file you cannot vouch for), no
    sentence cut in the middle; a bare code or key (e.g. ``KeyError: 225``) says what it means."""
    import re
    text = re.sub(r"\x1b\[[0-9;?]*[ -/]*[@-~]", "", str(exc))
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]
    noise = ("weights_only", "re-running", "re-run", "pytorch.org", "file an issue",
             "trusted source", "documentation of torch.load", "in pytorch 2.6", "weightsunpickler")
    keep = [s for s in sentences if not any(n in s.lower() for n in noise)]
    keep = [s.rstrip(".") for s in keep if len(re.sub(r"[^A-Za-z]", "", s)) >= 8]
    if not keep:
        return NOT_A_CHECKPOINT
    first = " ".join(keep[0].split())
    if len(first) > 160:  # shorten at a word boundary, never mid-word
        first = first[:160].rsplit(" ", 1)[0] + " …"
    return f"not a readable PyTorch checkpoint ({first})"


# --------------------------------------------------------------------------------------------
# Reading weight files (the loaders' two readers)
# --------------------------------------------------------------------------------------------
def read_checkpoint(path: "str | os.PathLike"):
    """Load a torch checkpoint safely (weights_only): files whose pickle names anything but
    tensors and plain containers are refused before torch sees them. Raises
    CheckpointFormatError with a plain-words reason ("<file>: <reason>")."""
    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(f"weight file not found: {path}")
    problem = checkpoint_problem(path, tolerant=False)
    if problem:
        raise CheckpointFormatError(f"{path.name}: {problem}")
    torch = _torch()
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files
        raise CheckpointFormatError(f"{path.name}: {plain_error(exc)}") from exc


def read_checkpoint_any(path: "str | os.PathLike"):
    """Read a weight file without executing code from it.

    TorchScript archives -> ``{dotted.name: tensor}`` of the module tree; files whose pickle
    holds only tensors and plain containers -> ``torch.load(weights_only=True)``; others
    (Lightning checkpoints with pickled hyper-parameters) -> :func:`safe_load`. A file that is
    empty, cut short or not a PyTorch file is refused first. Raises a ``WeightsError`` whose
    message is "<file name>: <reason>" in plain words."""
    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(f"weight file not found: {path}")
    scan = scan_checkpoint(path)
    if scan.problem:
        raise CheckpointFormatError(f"{path.name}: {scan.problem}")
    if scan.kind == "torchscript" or is_torchscript_archive(path):
        try:
            tensors = named_tensors(safe_load(path))
        except UnsafeCheckpointError:
            tensors = {}
        if not tensors:  # older archive layouts: let TorchScript (no Python code) read it
            tensors = _torchscript_state_dict(path)
        return tensors
    if not scan.foreign:
        try:
            return read_checkpoint(path)
        except CheckpointFormatError:
            pass  # torch refused a file the scan found plain: the restricted reader decides
    return safe_load(path)


def _torchscript_state_dict(path: Path):
    """Parameters and buffers of a TorchScript archive via ``torch.jit.load`` (fallback for
    layouts ``data.pkl`` does not cover; TorchScript code is compiled, never Python)."""
    import torch
    try:
        module = torch.jit.load(str(path), map_location="cpu")
        tensors = OrderedDict((k, v.detach()) for k, v in module.state_dict().items())
    except Exception as exc:
        reason = plain_error(exc).replace("PyTorch checkpoint", "TorchScript archive")
        raise CheckpointFormatError(f"{path.name}: {reason}") from exc
    if not tensors:
        raise CheckpointFormatError(f"{path.name}: TorchScript archive without parameters")
    return tensors


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
