"""The user's weight files: where the official ones come from, checking and installing files,
removing them. Qt-free; the model manager and the *Get official weights* dialog of the app and
``inpaint models`` all use it.

Checking a file (:func:`inspect_weight_file`, or :func:`inspect_for_weight_set` when the user
says which weight set it is):

1. it must exist and be readable without executing code from it: ``torch.load(weights_only=True)``,
   or the restricted unpickler of :mod:`.safe_unpickle` for Lightning checkpoints / TorchScript
   archives (an official SRN TensorFlow checkpoint is converted first, :mod:`.nets.srn`);
2. its sha256 is computed; a weight set with a published sha256 only accepts that exact file;
3. the network must accept it: the model's own loader is tried with the file (``load_into`` is
   strict, so every name and shape is checked); without a named model every model that needs
   weights is tried (models named in the file name first, small variants before the default);
4. the destination is the weight set's registered file name in :func:`weights.user_models_dir`
   (where ``weights.weight_status`` looks).

Installing (:func:`install_checked`) copies the file atomically (temporary file in the models
folder, fsync, rename; the copy's sha256 is compared with the checked file's) and never replaces
an existing different file unless asked to (``overwrite=True``).
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

from . import registry
from . import weights as W
from .fsutil import atomic_write, fsync_dir

# the weight-file endings the file dialogs offer (the one list; any name can be imported)
WEIGHT_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".tar")


class ImportWeightsError(W.WeightsError):
    """The file cannot be imported; the message says why (meant for the user)."""


@dataclass
class WeightCheck:
    spec: object  # ModelSpec
    weight_set: object  # WeightSet (destination slot)
    sha256: str
    source: Path
    target: Path
    known_file: bool  # sha256 matched a published checksum
    message: str = ""
    converted_from: Optional[Path] = None  # the TensorFlow checkpoint a converted file came from

    def cleanup(self) -> None:
        """Remove the temporary file of a conversion (after installing or giving up)."""
        if self.converted_from is not None:
            try:
                os.unlink(self.source)
                os.rmdir(self.source.parent)
            except OSError:
                pass


# ============================================================================ model cards

def card_path(card: Optional[str]) -> Optional[Path]:
    """The file of a model card (``WeightSet.card``, e.g. ``"models/aot_official.md"``): from
    the installed package data, or the source checkout's ``models/`` folder."""
    if not card:
        return None
    name = card.split("/", 1)[1] if card.startswith("models/") else card
    p = W.BUNDLED_DIR / name
    return p if p.is_file() else None


def card_text(card: Optional[str]) -> Optional[str]:
    p = card_path(card)
    if p is None:
        return None
    try:
        return p.read_text(encoding="utf-8")
    except OSError:
        return None


# ============================================================================ official sources

_URL = re.compile(r"https?://[^\s)>\]]+")


def source_urls(text: str) -> List[str]:
    """The web addresses in a ``WeightSet.source`` text, most specific (download) first."""
    urls = [u.rstrip(".,;:'\"") for u in _URL.findall(text or "")]
    # a repository page usually comes first in the text; the download page is more useful
    downloads = [u for u in urls if "github.com" not in u or "/releases/" in u]
    return downloads + [u for u in urls if u not in downloads]


@dataclass
class OfficialWeights:
    """One official checkpoint of one model, and where it is."""

    spec: object        # ModelSpec
    weight_set: object  # WeightSet
    urls: List[str]
    installed: Optional[Path]  # the file the app would use for this set, if present
    card: Optional[Path]
    also_accepted: List[str] = field(default_factory=list)  # other names of the same download

    @property
    def model(self) -> str:
        return self.spec.name

    @property
    def tag(self) -> str:
        """The weight set's name where one is named: ``"<model>:<set>"``."""
        return W.weight_tag(self.spec, self.weight_set)

    @property
    def filename(self) -> str:
        return self.weight_set.filename

    @property
    def size(self) -> str:
        return self.weight_set.size or "not published"

    @property
    def sha256(self) -> str:
        return self.weight_set.sha256 or "not published"

    @property
    def needs_conversion(self) -> bool:
        return registry.get_adapter(self.spec).converts_tensorflow

    def to_dict(self) -> dict:
        ws = self.weight_set
        return {"model": self.spec.name, "weights": ws.name, "tag": self.tag, "filename": ws.filename,
                "source": ws.source, "urls": self.urls, "size": ws.size or None,
                "sha256": ws.sha256, "licence": ws.licence, "training_data": ws.training_data,
                "also_accepted": list(self.also_accepted),
                "installed": str(self.installed) if self.installed else None,
                "card": str(self.card) if self.card else None}


def official_weights(model: Optional[str] = None) -> List[OfficialWeights]:
    """Every official weight set (in registry order), with its sources and install state."""
    specs = [registry.get_spec(model)] if model else registry.list_models()
    out: List[OfficialWeights] = []
    for spec in specs:
        for ws in spec.weight_sets:
            if ws.kind != "official":
                continue
            urls = source_urls(ws.source)
            installed = W.find_weight_file(ws)
            same = next((o for o in out if o.spec is spec and o.urls == urls
                         and o.weight_set.training_data == ws.training_data), None)
            if same is not None:  # the same download under another accepted name
                same.also_accepted.append(ws.filename)
                same.installed = same.installed or installed
                continue
            out.append(OfficialWeights(spec, ws, urls, installed, card_path(ws.card)))
    return out


# ============================================================================ checking

def _candidate_specs(model: Optional[str], filename: str) -> list:
    if model:
        spec = registry.get_spec(model)
        if not spec.needs_weights:
            raise ImportWeightsError(f"{spec.title} needs no weights")
        return [spec]
    specs = [s for s in registry.list_models() if s.needs_weights]
    low = filename.lower()
    return sorted(specs, key=lambda s: (s.name not in low, specs.index(s)))


def _option_sets(spec) -> "list[tuple]":
    """Distinct constructor options of the model's weight sets: variants first, default last."""
    seen: list = []
    for ws in spec.weight_sets:
        opts = tuple(ws.options)
        if opts not in seen:
            seen.append(opts)
    if () in seen:
        seen.remove(())
    return seen + [()]


def _try_loader(spec, state, options: tuple) -> Optional[str]:
    """None if ``spec``'s loader accepts ``state`` with ``options``; else the reason."""
    try:
        model = registry.get_adapter(spec).load(spec, weights=state, device="cpu",
                                                precision="fp32", **dict(options))
    except W.CheckpointFormatError as exc:
        return _Unreadable(str(exc))  # the reader's own words are plain (safe_unpickle)
    except W.WeightsError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - anything else means "does not fit"
        return f"{spec.name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    try:
        model.close()
    except Exception:  # noqa: BLE001
        pass
    return None


class _Unreadable(str):
    """A :func:`_try_loader` reason meaning "the file cannot be read" (not "does not fit")."""


def _pick_slot(spec, options: tuple, sha: str, source_name: str):
    """The weight set to store the file under (same variant; sha256-pinned sets only take
    their exact file)."""
    same = [ws for ws in spec.weight_sets if tuple(ws.options) == tuple(options)] or list(spec.weight_sets)
    for ws in same:  # the file keeps a registered name: keep that slot
        if ws.filename == source_name:
            if ws.sha256 and ws.sha256 != sha:
                raise ImportWeightsError(
                    f"{source_name} should be {spec.title}'s {ws.name!r} weights, but its sha256 "
                    f"{sha[:12]}… differs from the published {ws.sha256[:12]}… (corrupt or "
                    "different file)")
            return ws
    for kind in ("imported", "official", "starter"):
        for ws in same:
            if ws.kind == kind and not ws.sha256:
                return ws
    pinned = ", ".join(ws.name for ws in same)
    raise ImportWeightsError(
        f"the file fits {spec.title}, but its weight sets ({pinned}) only accept the released "
        f"files (sha256 {sha[:12]}… matches none of them)")


def _read_for_import(src: Path):
    """The file's contents, read without executing code from it."""
    from .safe_unpickle import read_checkpoint_any
    try:
        return read_checkpoint_any(src)
    except W.WeightsError as exc:
        raise ImportWeightsError(f"{exc}. Choose a PyTorch checkpoint (.pth/.pt) holding the "
                                 "model's state dict; a download that stopped early is "
                                 "truncated and cannot be read.") from None


def _check_file(src: Path) -> None:
    if not src.is_file():
        raise ImportWeightsError(f"{src} does not exist or is not a file")
    if src.stat().st_size == 0:
        raise ImportWeightsError(f"{src.name} is empty")


def inspect_weight_file(path, model: Optional[str] = None) -> WeightCheck:
    """Validate ``path`` for import, detecting its model and weight set (see the module doc);
    raises :class:`ImportWeightsError`."""
    src = Path(path)
    _check_file(src)
    try:
        specs = _candidate_specs(model, src.name)
    except registry.UnknownModelError as exc:
        raise ImportWeightsError(str(exc)) from None
    if not specs:
        raise ImportWeightsError("no registered model takes weight files")
    sha = W.sha256_file(src)
    obj = _read_for_import(src)

    # a known released file: its own slot, only its model
    for spec in specs:
        for ws in spec.weight_sets:
            if ws.sha256 and ws.sha256 == sha:
                why = _try_loader(spec, obj, tuple(ws.options))
                if why is not None:
                    raise ImportWeightsError(f"{src.name} matches {spec.title}'s {ws.name!r} "
                                             f"checksum but does not load: {why}")
                return WeightCheck(spec, ws, sha, src, W.user_models_dir() / ws.filename, True,
                                   f"{src.name}: {spec.title}, {ws.name} ({ws.kind}, checksum verified)")

    reasons = []
    for spec in specs:
        for options in _option_sets(spec):
            why = _try_loader(spec, obj, options)
            if why is None:
                ws = _pick_slot(spec, options, sha, src.name)
                variant = f", {ws.variant} variant" if ws.variant and ws.variant != "official" else ""
                return WeightCheck(spec, ws, sha, src, W.user_models_dir() / ws.filename, False,
                                   f"{src.name}: {spec.title}{variant}, stored as {ws.filename}")
            reasons.append(why)
    if model:
        detail = reasons[-1] if reasons else "no loader"
        raise ImportWeightsError(f"{src.name} does not fit {specs[0].title}: {detail}")
    names = ", ".join(s.title for s in specs)
    raise ImportWeightsError(f"{src.name} fits none of the models ({names}); its keys match no "
                             f"known architecture (e.g. {reasons[0] if reasons else 'no loader'})")


def is_tf_checkpoint(path) -> bool:
    """A TensorFlow checkpoint (``snap-N.index``, ``snap-N.data-…``, its ``checkpoint`` file
    or folder): the official SRN format."""
    p = Path(path)
    if p.is_dir():
        return (p / "checkpoint").is_file() or any(p.glob("*.index"))
    return p.suffix == ".index" or ".data-" in p.name or p.name == "checkpoint"


def _convert_tf(src: Path) -> Path:
    """Convert an SRN TensorFlow checkpoint to a temporary ``.pt`` (see :mod:`.nets.srn`)."""
    from .nets.srn import convert_srn_checkpoint
    from .tfckpt import TFCheckpointError
    prefix = src
    if src.is_file() and src.name == "checkpoint":
        prefix = src.parent
    elif src.is_file() and ".data-" in src.name:
        prefix = src.with_name(src.name.split(".data-", 1)[0])
    tmpdir = Path(tempfile.mkdtemp(prefix="inpaint-convert-"))
    out = tmpdir / "converted.pt"
    try:
        convert_srn_checkpoint(prefix, out)
    except (TFCheckpointError, W.WeightsError, OSError, ValueError, KeyError) as exc:
        shutil.rmtree(tmpdir, ignore_errors=True)
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImportWeightsError(f"{src.name} is not a usable SRN TensorFlow checkpoint: "
                                 f"{msg}") from None
    return out


def inspect_for_weight_set(path, model: str, weight_set: str) -> WeightCheck:
    """Validate ``path`` as the weight set ``weight_set`` of ``model`` (the user says which
    file it is, e.g. from the *Get official weights* list); raises :class:`ImportWeightsError`.

    SRN's official TensorFlow checkpoints are converted first (the ``.index`` file, a
    ``.data-…`` shard, the ``checkpoint`` file or their folder may be given)."""
    try:
        spec = registry.get_spec(model)
    except registry.UnknownModelError as exc:
        raise ImportWeightsError(str(exc)) from None
    ws = spec.weight_set(weight_set)
    if ws is None:
        raise ImportWeightsError(f"{spec.title} has no weight set {weight_set!r}")
    src = Path(path)
    converted_from = None
    if registry.get_adapter(spec).converts_tensorflow and is_tf_checkpoint(src):
        converted_from, src = src, _convert_tf(src)
    else:
        _check_file(src)
    check = None
    try:
        sha = W.sha256_file(src)
        if ws.sha256 and ws.sha256 != sha:
            raise ImportWeightsError(
                f"{src.name} is not {spec.title}'s {ws.name!r} file: its sha256 {sha[:12]}… "
                f"differs from the published {ws.sha256[:12]}… (a different or damaged file)")
        # the adapter reads the file itself, exactly as it will when the model runs
        why = _try_loader(spec, str(src), tuple(ws.options))
        if isinstance(why, _Unreadable):
            raise ImportWeightsError(str(why))
        if why is not None:
            raise ImportWeightsError(f"{(converted_from or src).name} does not fit "
                                     f"{spec.title}: {why}")
        shown = (converted_from or src).name
        how = "checksum verified" if ws.sha256 else "loads into the network; no published checksum"
        conv = ", converted from TensorFlow" if converted_from else ""
        check = WeightCheck(spec, ws, sha, src, W.user_models_dir() / ws.filename,
                            bool(ws.sha256),
                            f"{shown}: {spec.title}, {ws.name}{conv} ({how}), stored as "
                            f"{ws.filename}", converted_from)
        return check
    finally:
        if check is None and converted_from is not None:
            shutil.rmtree(src.parent, ignore_errors=True)


# ============================================================================ installing

def install_checked(check: WeightCheck, overwrite: bool = False) -> WeightCheck:
    """Copy a file checked by :func:`inspect_weight_file` / :func:`inspect_for_weight_set` to
    its destination, atomically. An existing different file is replaced only with
    ``overwrite=True`` (otherwise :class:`ImportWeightsError`); the same file is left alone."""
    dest = check.target
    try:
        if dest.exists() and not overwrite:
            if dest.is_file() and W.sha256_file(dest) == check.sha256:
                check.message += " (already installed)"
                return check
            raise ImportWeightsError(f"{dest.name} already exists in {dest.parent}; remove it "
                                     "first or confirm replacing it")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ImportWeightsError(f"cannot write to {dest.parent}: {exc}") from None

        def copy(out) -> None:
            with open(check.source, "rb") as inp:
                shutil.copyfileobj(inp, out, 1 << 20)

        def unchanged(tmp: Path) -> None:
            if W.sha256_file(tmp) != check.sha256:
                raise ImportWeightsError(f"{check.source.name} changed while it was being "
                                         "copied; nothing was installed")
        try:  # no-clobber unless overwrite: fails if a file appeared there meanwhile
            atomic_write(dest, copy, overwrite=overwrite, verify=unchanged)
        except FileExistsError:
            raise ImportWeightsError(f"{dest.name} appeared in {dest.parent} meanwhile; "
                                     "nothing was replaced") from None
        except OSError as exc:
            raise ImportWeightsError(f"could not copy to {dest}: {exc}") from None
        fsync_dir(dest.parent)
    finally:
        check.cleanup()
    return check


def install_unless_kept(check: WeightCheck, replace: "Callable[[WeightCheck], bool]"
                        ) -> Optional[WeightCheck]:
    """Install ``check``; a different file already at its destination is replaced only when
    ``replace(check)`` (the user's answer) is True. Returns the installed check, or None when
    the existing file was kept; the temporary file of a conversion is removed either way."""
    overwrite = target_differs(check)
    if overwrite and not replace(check):
        check.cleanup()
        return None
    return install_checked(check, overwrite=overwrite)


def import_weight_file(path, model: Optional[str] = None, overwrite: bool = False) -> WeightCheck:
    """Check (detecting the model) and install ``path``; returns the check.

    Raises :class:`ImportWeightsError` (also when the destination exists and not ``overwrite``)."""
    return install_checked(inspect_weight_file(path, model), overwrite)


def import_for_weight_set(path, model: str, weight_set: str,
                          overwrite: bool = False) -> WeightCheck:
    """Check ``path`` as ``model``'s ``weight_set`` and install it under its expected name."""
    return install_checked(inspect_for_weight_set(path, model, weight_set), overwrite)


def target_differs(check: WeightCheck) -> bool:
    """The destination exists and holds a different file (installing would replace it)."""
    dest = check.target
    return dest.exists() and not (dest.is_file() and W.sha256_file(dest) == check.sha256)


# ============================================================================ listing

@dataclass(frozen=True)
class InstalledSet:
    """One weight set of a registered model and the file the app would use for it."""

    spec: object         # ModelSpec
    weight_set: object   # WeightSet
    path: Optional[Path]  # None: not installed

    @property
    def tag(self) -> str:
        return W.weight_tag(self.spec, self.weight_set)

    @property
    def where(self) -> str:
        """"not installed", "imported" (in the user models folder: removable) or "bundled"."""
        if self.path is None:
            return "not installed"
        return "imported" if removable(self.path) else "bundled"


def weight_sets() -> "list[InstalledSet]":
    """Every weight set of every registered model (registry order), with its installed file."""
    return [InstalledSet(spec, ws, W.find_weight_file(ws))
            for spec in registry.list_models() for ws in spec.weight_sets]


def user_files() -> "list[Path]":
    """The files in the user models folder (hidden ones left out)."""
    d = W.user_models_dir()
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.is_file() and not p.name.startswith("."))


def other_files() -> "list[Path]":
    """Files in the user models folder that no registered weight set is named after."""
    known = {ws.filename for spec in registry.list_models() for ws in spec.weight_sets}
    return [p for p in user_files() if p.name not in known]


def installed_file(ref) -> "tuple[Optional[InstalledSet], Path]":
    """``(its weight set or None, path)`` of an installed file named by a tag
    ``"<model>:<set>"`` or a path; raises :class:`ImportWeightsError` when there is none."""
    tag = W.parse_tag(ref) if isinstance(ref, str) else None
    if tag is not None:
        spec, ws = tag
        path = W.find_weight_file(ws)
        if path is None:
            raise ImportWeightsError(f"{ref} is not installed (expected {ws.filename} in "
                                     f"{W.user_models_dir()})")
        return InstalledSet(spec, ws, path), path
    path = Path(ref)
    if not path.is_file():
        raise ImportWeightsError(f"{path} does not exist or is not a file")
    for item in weight_sets():
        if item.path is not None and item.path.resolve() == path.resolve():
            return item, path
    return None, path


# ============================================================================ removing

def removable(path) -> bool:
    """Only files inside the user models folder may be removed (never bundled ones)."""
    try:
        p = Path(path).resolve()
        return p.is_file() and W.user_models_dir().resolve() in p.parents
    except OSError:
        return False


def remove_weight_file(ref) -> Path:
    """Delete an imported file, named by its tag or its path; returns the path. Bundled files
    and files outside the user models folder are refused (:class:`ImportWeightsError`)."""
    _item, path = installed_file(ref)
    if not removable(path):
        raise ImportWeightsError(f"{path} is not an imported file in {W.user_models_dir()} "
                                 "(bundled files cannot be removed)")
    path.unlink()
    return path


# ============================================================================ verifying

@dataclass(frozen=True)
class Verification:
    """An installed file checked: ``sha256`` against ``expected`` (the published sha256, None
    when none is), and ``problem`` (why it cannot be used: empty, cut short, code in its pickle
    ...; None when it looks whole)."""

    path: Path
    tag: Optional[str]  # the weight set it is installed as (None: not a registered name)
    sha256: str
    expected: Optional[str] = None
    problem: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.problem is None and (self.expected is None or self.sha256 == self.expected)

    @property
    def message(self) -> str:
        name = f"{self.tag} ({self.path})" if self.tag else str(self.path)
        if self.problem:
            return f"broken: {name}: {self.problem}"
        if self.expected is None:
            return f"ok: {name}: sha256 {self.sha256} (no published checksum)"
        if self.sha256 != self.expected:
            return (f"MISMATCH: {name}: sha256 {self.sha256} is not the published "
                    f"{self.expected} (a damaged or different file)")
        return f"ok: {name}: sha256 matches the published {self.expected}"


def verify(refs=None) -> "list[Verification]":
    """Check installed files (``refs``: tags or paths; None: every installed weight set and
    every other file in the user models folder): their sha256 against the published one and
    whether they are whole. Raises :class:`ImportWeightsError` for a ref with no file."""
    if refs is None:
        items = [(item, item.path) for item in weight_sets() if item.path is not None]
        items += [(None, p) for p in other_files()]
    else:
        items = [installed_file(ref) for ref in refs]
    out = []
    for item, path in items:
        sha = W.sha256_file(path)
        if item is None:  # no model known: only whether the file is whole
            out.append(Verification(path, None, sha, None, W.check_weight_file(path, tolerant=True)))
            continue
        ws = item.weight_set
        problem = W.check_weight_file(path, tolerant=W.tolerant_reader(item.spec))
        out.append(Verification(path, item.tag, sha, ws.sha256, problem))
    return out
