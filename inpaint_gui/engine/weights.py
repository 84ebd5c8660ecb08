"""Finding, reading, checking and loading weight files.

Checkpoints are read with ``torch.load(..., weights_only=True)`` (never arbitrary unpickling),
after a look at the file that refuses pickles naming code (:func:`safe_unpickle.scan_checkpoint`).
Errors are :class:`WeightsError` subclasses with a message meant for the user: plain words,
``"<file name>: <reason>"``.

Weight status (one home for it, read by the CLI, Auto and the GUI): :func:`weight_files` lists a
model's installed files in preference order, each with the problem that makes it unusable
(``None`` when none was found): empty, cut short, not a PyTorch file, code in its pickle, a
checksum that does not match, or whatever failed when it was last loaded in this process
(:func:`mark_broken`). :func:`weight_status` names the file runs will use: the first usable one.
:func:`load_with_fallback` loads the best usable file and moves on to the next when one fails,
with a one-line notice naming the file it skipped.
"""
from __future__ import annotations

import hashlib
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional

from .registry import ModelSpec, WeightSet
from .safe_unpickle import checkpoint_problem, read_checkpoint, read_checkpoint_any
from .weight_errors import (  # noqa: F401 - the weight errors' public home is this module
    ArchitectureMismatchError, BrokenWeightsError, ChecksumError, CheckpointFormatError,
    MissingWeightsError, WeightsError)

# The model cards and starter weights: ``models/`` of the source checkout, shipped in wheels
# as package data ``inpaint_gui/bundled_models/`` (see setup.py).
PACKAGED_MODELS_DIR = Path(__file__).resolve().parents[1] / "bundled_models"
CHECKOUT_MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
BUNDLED_DIR = PACKAGED_MODELS_DIR if PACKAGED_MODELS_DIR.is_dir() else CHECKOUT_MODELS_DIR

# Dict keys under which official training scripts nest the generator's state dict.
WRAPPER_KEYS = ("state_dict", "generator", "netG", "G", "model", "gen", "net", "params", "module")


class WeightsWarning(UserWarning):
    """A broken weight file was skipped and the next one used (when no ``notice`` callback
    was given to :func:`load_with_fallback`)."""


@dataclass(frozen=True)
class WeightFile:
    """An installed weight file: its weight set, path and ``problem`` (why it cannot be
    used, in plain words; None when it looks usable)."""

    ws: WeightSet
    path: Path
    problem: Optional[str] = None

    @property
    def usable(self) -> bool:
        return self.problem is None


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


def tolerant_reader(spec: ModelSpec) -> bool:
    """True when the model's loader reads pickled objects besides tensors as inert
    placeholders (``ModelSpec.checkpoint_reader == "any"``: Lightning checkpoints, TorchScript)."""
    return getattr(spec, "checkpoint_reader", "plain") == "any"


_LOCK = threading.Lock()
_CHECKED: dict = {}  # (path, size, mtime_ns, tolerant, sha256) -> problem or None
_FAILED: dict = {}   # (path, size, mtime_ns) -> problem found when the file was loaded


def _file_key(path: Path):
    try:
        st = path.stat()
    except OSError:
        return None
    return (str(path.absolute()), st.st_size, st.st_mtime_ns)


def check_weight_file(path: "str | os.PathLike", ws: Optional[WeightSet] = None,
                      tolerant: bool = False) -> Optional[str]:
    """Why ``path`` cannot be used as weights (plain words), or None when it looks usable.

    Cheap: reads the file's index, never its tensors (plus a sha256 when ``ws`` pins one);
    the answer is kept until the file changes (size or modification time). A failure seen
    while loading the file in this process (:func:`mark_broken`) is reported too."""
    path = Path(path)
    key = _file_key(path)
    if key is None:
        return "the file cannot be read"
    with _LOCK:
        failed = _FAILED.get(key)
        if failed:
            return failed
        ck = key + (bool(tolerant), ws.sha256 if ws is not None else None)
        if ck in _CHECKED:
            return _CHECKED[ck]
    problem = checkpoint_problem(path, tolerant=tolerant)
    if problem is None and ws is not None and ws.sha256:
        try:
            if sha256_file(path) != ws.sha256:
                problem = ("its sha256 does not match the published one for "
                           f"{ws.name} (a damaged or different file)")
        except OSError:
            problem = "the file cannot be read"
    with _LOCK:
        _CHECKED[ck] = problem
    return problem


def mark_broken(path: "str | os.PathLike", problem: str) -> None:
    """Remember that ``path`` failed to load (until the file changes)."""
    key = _file_key(Path(path))
    if key is not None:
        with _LOCK:
            _FAILED[key] = problem


def forget_checks() -> None:
    """Forget every remembered check and load failure (tests; after the user replaced files)."""
    with _LOCK:
        _CHECKED.clear()
        _FAILED.clear()


def weight_files(spec: ModelSpec) -> "list[WeightFile]":
    """Every installed file of ``spec``'s weight sets, in preference order, with its problem."""
    out = []
    if not spec.needs_weights:
        return out
    tolerant = tolerant_reader(spec)
    for ws in spec.weight_sets:
        p = find_weight_file(ws)
        if p is not None:
            out.append(WeightFile(ws, p, check_weight_file(p, ws, tolerant)))
    return out


def weight_status(spec: ModelSpec) -> "tuple[str, Optional[WeightSet], Optional[Path]]":
    """("none needed" | "starter" | "official" | "imported" | "broken" | "missing" |
    "unavailable", weight set, path).

    The first installed weight set whose file is usable wins (official ones are listed first by
    the adapters that prefer them); "broken" when files are installed but none is usable (the
    first of them is returned; :func:`weight_files` says why each is broken); "unavailable"
    when the model cannot run on this installation at all (``registry.unavailable_reason``
    says why), whatever its weights."""
    from .registry import unavailable_reason
    if unavailable_reason(spec):
        return "unavailable", None, None
    if not spec.needs_weights:
        return "none needed", None, None
    files = weight_files(spec)
    for f in files:
        if f.usable:
            return f.ws.kind, f.ws, f.path
    if files:
        return "broken", files[0].ws, files[0].path
    return "missing", None, None


def has_usable_weights(spec: ModelSpec) -> bool:
    """Whether a run of ``spec`` with the default weights can start (or needs none)."""
    return weight_status(spec)[0] not in ("missing", "broken", "unavailable")


def broken_summary(files: "Iterable[WeightFile]") -> str:
    """"name: problem; name: problem" for the broken files among ``files``."""
    return "; ".join(f"{f.path.name}: {f.problem}" for f in files if not f.usable)


def no_usable_weights_error(spec: ModelSpec, files: "list[WeightFile]") -> WeightsError:
    """The error of a run that needs ``spec``'s installed weights when none is usable (``files``:
    :func:`weight_files`; empty = nothing installed). Front ends add how to get weights."""
    if not files:
        names = [w.filename for w in spec.weight_sets] or [f"{spec.name}.pt"]
        expected = names[0] if len(names) == 1 else "one of " + ", ".join(names)
        return MissingWeightsError(f"no weights for {spec.name}: put {expected} into "
                                   f"{user_models_dir()}")
    return BrokenWeightsError(f"no usable weights for {spec.name}: {broken_summary(files)}")


def default_weight_file(spec: ModelSpec) -> "tuple[WeightSet, Path]":
    """(weight set, path) runs use when no weights are given; raises MissingWeightsError
    (nothing installed) or BrokenWeightsError (every installed file is broken)."""
    files = weight_files(spec)
    for f in files:
        if f.usable:
            return f.ws, f.path
    raise no_usable_weights_error(spec, files)


def problem_of(exc: BaseException, path: "str | os.PathLike") -> str:
    """The reason in a loader's error, without the ``"<file name>: "`` prefix."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    prefix = f"{Path(path).name}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def load_with_fallback(spec: ModelSpec, load: Callable[[Path], object],
                       notice: Optional[Callable[[str], None]] = None):
    """``load(path)`` of the installed file :func:`weight_status` picks, with a fallback: a
    file that fails with a :class:`WeightsError` is marked broken and the next usable one is
    loaded. Raises :func:`no_usable_weights_error` when none is left. Broken files
    ranked above the one used are reported once per load through ``notice(text)`` (default:
    a :class:`WeightsWarning`), e.g. "AOT-GAN: skipped aot_places2.pt — the file is
    incomplete: ... — using aot_starter.pt (starter) instead"."""
    tried: set = set()
    while True:
        files = weight_files(spec)
        usable = [f for f in files if f.usable]
        if not usable:
            raise no_usable_weights_error(spec, files)
        chosen = usable[0]
        if chosen.path in tried:  # marking it broken did not stick (e.g. unreadable stat)
            raise BrokenWeightsError(f"no usable weights for {spec.name}: {broken_summary(files)}")
        tried.add(chosen.path)
        try:
            model = load(chosen.path)
        except MissingWeightsError:
            raise
        except WeightsError as exc:
            mark_broken(chosen.path, problem_of(exc, chosen.path))
            continue
        for f in files[:files.index(chosen)]:
            _notify(notice, f"{spec.title}: skipped {f.path.name} — {f.problem} — "
                            f"using {chosen.path.name} ({chosen.ws.kind}) instead")
        return model


def _notify(notice: Optional[Callable[[str], None]], text: str) -> None:
    if notice is not None:
        notice(text)
    else:
        warnings.warn(text, WeightsWarning, stacklevel=3)


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
            raise ChecksumError(f"{Path(path).name}: its sha256 ({got[:12]}…) does not match the "
                                f"published one ({expected[:12]}…): a damaged or different file")


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


def read_weights(spec: ModelSpec, weights=None) -> "tuple[object, Optional[WeightSet]]":
    """What a loader reads: ``(object read from the weights, its WeightSet or None)``.

    ``weights``: None (the best usable installed set, its sha256 checked where one is
    published), a file path, or a state dict already in memory (returned as it is). Files are
    read by the reader ``spec.checkpoint_reader`` names (:mod:`.safe_unpickle`: "plain" state
    dicts through ``torch.load(weights_only=True)``, "any" also Lightning checkpoints and
    TorchScript archives); nothing in a file is ever executed. A path whose file name is a
    registered weight set's gives that set (its network options)."""
    ws = None
    if weights is None:
        ws, weights = default_weight_file(spec)
        verify_checksum(weights, ws.sha256)
    if isinstance(weights, (str, os.PathLike)):
        ws = ws or spec.weight_set_for_file(Path(weights).name)
        reader = read_checkpoint_any if tolerant_reader(spec) else read_checkpoint
        return reader(weights), ws
    if isinstance(weights, Mapping):
        return weights, None
    raise TypeError(f"weights must be None, a path or a state dict, not {type(weights).__name__}")


# ----------------------------------------------------------------------------- weight-set tags

TAG_SEP = ":"


def weight_tag(spec: ModelSpec, ws: WeightSet) -> str:
    """The name of a weight set everywhere one is named: ``"<model>:<set>"`` (``"aot:places2"``)."""
    return f"{spec.name}{TAG_SEP}{ws.name}"


def parse_tag(text: str) -> "Optional[tuple[ModelSpec, WeightSet]]":
    """``(spec, weight set)`` for a tag ``"<model>:<set>"`` whose model is registered; None for
    anything else, which is a path (write a file whose name looks like a tag as ``./aot:x``).
    Raises :class:`WeightsError` when the model has no such set."""
    from .registry import UnknownModelError, get_spec
    model, sep, name = str(text).partition(TAG_SEP)
    if not sep or not model or "/" in model or os.sep in model:
        return None
    try:
        spec = get_spec(model)
    except UnknownModelError:
        return None
    ws = spec.weight_set(name) if name else None
    if ws is None:
        sets = ", ".join(weight_tag(spec, w) for w in spec.weight_sets) or "none: it needs no weights"
        raise WeightsError(f"{spec.title} has no weight set {name!r} (its weight sets: {sets})")
    return spec, ws


def resolve_weights_ref(spec: ModelSpec, ref):
    """The ``weights`` a loader of ``spec`` takes, from what a user named: None (the best usable
    set) and state dicts stay as they are, a tag ``"<model>:<set>"`` becomes the path of that
    set's installed file, anything else is a path. Raises :class:`MissingWeightsError` when the
    set is not installed and :class:`WeightsError` for a tag of another model."""
    if ref is None or isinstance(ref, Mapping):
        return ref
    if isinstance(ref, os.PathLike):
        return Path(ref)
    tag = parse_tag(ref)
    if tag is None:
        return Path(ref)
    tspec, ws = tag
    if tspec.name != spec.name:
        raise WeightsError(f"{ref} names weights of {tspec.title}, not of {spec.title}")
    path = find_weight_file(ws)
    if path is None:
        raise MissingWeightsError(f"{spec.title}: weight set {ref} ({ws.filename}) is not "
                                  f"installed; put it into {user_models_dir()}")
    return path
