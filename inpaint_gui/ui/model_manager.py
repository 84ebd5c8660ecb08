"""Model manager: which weights are installed, where they come from, importing and removing.

Qt-free helpers first (:func:`inspect_weight_file`, :func:`import_weight_file`,
:func:`remove_weight_file`), then the :class:`ModelManagerDialog`.

Importing a file:

1. it must exist and be readable without executing code from it: ``torch.load(weights_only=True)``,
   or the engine's restricted unpickler for Lightning checkpoints / TorchScript archives;
2. its sha256 is computed; a match with a registered weight set identifies it directly;
3. the architecture is detected by *trying the model's loader* with the file's state dict
   (``weights.load_into`` is strict, so only a fitting model loads it), for the chosen model
   or for every model that needs weights (models whose name appears in the file name first;
   small variants of a model before its default configuration);
4. the destination is the registered file name of the matching weight set (that is where
   ``weights.weight_status`` looks); a weight set with a published sha256 only accepts that
   exact file ("checks sha256 when known");
5. the file is copied atomically into :func:`weights.user_models_dir`.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QHBoxLayout,
                               QHeaderView, QLabel, QMessageBox, QPushButton, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

from inpaint_gui.engine import registry, weights as W

WEIGHT_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".tar")


class ImportWeightsError(Exception):
    """The file cannot be imported; the message says why (shown to the user)."""


@dataclass
class WeightCheck:
    spec: object  # ModelSpec
    weight_set: object  # WeightSet (destination slot)
    sha256: str
    source: Path
    target: Path
    known_file: bool  # sha256 matched a registered weight set
    message: str = ""


# ============================================================================ Qt-free logic

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
        loader = registry.resolve_loader(spec)
    except Exception as exc:  # noqa: BLE001 - adapter missing or broken
        return f"{spec.name}: loader unavailable ({exc})"
    try:
        model = loader(spec, weights=state, device="cpu", precision="fp32", **dict(options))
    except W.WeightsError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - anything else means "does not fit"
        return f"{spec.name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    try:
        model.close()
    except Exception:  # noqa: BLE001
        pass
    return None


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


def _read(path: Path):
    """The file's contents without executing code from it: ``torch.load(weights_only=True)``,
    or for Lightning checkpoints / TorchScript archives the engine's restricted unpickler."""
    try:
        from inpaint_gui.engine.safe_unpickle import read_checkpoint_any
    except ImportError:  # pragma: no cover - older engine
        return W.read_checkpoint(path)
    return read_checkpoint_any(path)


def inspect_weight_file(path, model: Optional[str] = None) -> WeightCheck:
    """Validate ``path`` for import (see the module doc); raises :class:`ImportWeightsError`."""
    src = Path(path)
    if not src.is_file():
        raise ImportWeightsError(f"{src} does not exist or is not a file")
    if src.stat().st_size == 0:
        raise ImportWeightsError(f"{src.name} is empty")
    try:
        specs = _candidate_specs(model, src.name)
    except registry.UnknownModelError as exc:
        raise ImportWeightsError(str(exc)) from None
    if not specs:
        raise ImportWeightsError("no registered model takes weight files")
    sha = W.sha256_file(src)
    try:
        obj = _read(src)
    except W.WeightsError as exc:
        raise ImportWeightsError(f"{exc}. Choose a PyTorch checkpoint (.pth/.pt) holding the "
                                 "model's state dict.") from None

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


def import_weight_file(path, model: Optional[str] = None, overwrite: bool = False) -> WeightCheck:
    """Validate and copy ``path`` into the user models folder; returns the check.

    Raises :class:`ImportWeightsError` (also when the destination exists and not ``overwrite``)."""
    return install_checked(inspect_weight_file(path, model), overwrite)


def install_checked(check: WeightCheck, overwrite: bool = False) -> WeightCheck:
    """Copy a file already validated by :func:`inspect_weight_file` to its destination."""
    dest = check.target
    if dest.exists() and not overwrite:
        if dest.is_file() and W.sha256_file(dest) == check.sha256:
            check.message += " (already installed)"
            return check
        raise ImportWeightsError(f"{dest.name} already exists in {dest.parent}; remove it first "
                                 "or confirm replacing it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".import-", suffix=dest.suffix, dir=str(dest.parent))
    os.close(fd)
    try:
        shutil.copyfile(check.source, tmp)
        os.replace(tmp, dest)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise ImportWeightsError(f"could not copy to {dest}: {exc}") from None
    return check


def removable(path) -> bool:
    """Only files inside the user models folder may be removed (never bundled ones)."""
    try:
        p = Path(path).resolve()
        return p.is_file() and W.user_models_dir().resolve() in p.parents
    except OSError:
        return False


def remove_weight_file(path) -> None:
    if not removable(path):
        raise ImportWeightsError(f"{path} is not an imported file in {W.user_models_dir()}")
    Path(path).unlink()


def user_files() -> "list[Path]":
    d = W.user_models_dir()
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.is_file() and not p.name.startswith("."))


# ============================================================================ dialog

ROLE_PATH = Qt.ItemDataRole.UserRole
COLUMNS = ("Model / weights", "Kind", "Status", "File", "Licence", "Source", "sha256")


class ModelManagerDialog(QDialog):
    """Lists models and weight sets; imports, reveals and removes weight files.

    Signal ``weights_changed()`` after an import or removal (refresh the models dock).
    ``confirm(title, text) -> bool`` and ``choose_file() -> path | None`` are attributes so
    tests (or other front ends) can replace the modal parts."""

    weights_changed = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models and weights")
        self.resize(900, 480)
        self.confirm: Callable[[str, str], bool] = self._ask
        self.choose_file: Callable[[], Optional[str]] = self._open_file_dialog
        self.last_message = ""
        self.last_error = False

        lay = QVBoxLayout(self)
        self.tree = QTreeWidget(self)
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setAlternatingRowColors(True)
        hdr = self.tree.header()
        hdr.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for col, width in enumerate((190, 70, 90, 190, 200, 260, 140)):
            hdr.resizeSection(col, width)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.tree.currentItemChanged.connect(self._update_buttons)
        lay.addWidget(self.tree, 1)

        self.folder_label = QLabel(self)
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.folder_label)
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setObjectName("importMessage")
        lay.addWidget(self.message)

        row = QHBoxLayout()
        row.addWidget(QLabel("Import for", self))
        self.model_combo = QComboBox(self)
        row.addWidget(self.model_combo)
        self.import_button = QPushButton("Import weights…", self)
        self.import_button.clicked.connect(self.import_clicked)
        self.reveal_button = QPushButton("Reveal folder", self)
        self.reveal_button.clicked.connect(self.reveal_folder)
        self.remove_button = QPushButton("Remove imported file", self)
        self.remove_button.clicked.connect(self.remove_selected)
        row.addWidget(self.import_button)
        row.addStretch(1)
        row.addWidget(self.reveal_button)
        row.addWidget(self.remove_button)
        lay.addLayout(row)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        box.rejected.connect(self.reject)
        lay.addWidget(box)
        self.refresh()

    # ------------------------------------------------------------------ listing
    def refresh(self) -> None:
        self.tree.clear()
        current = self.model_combo.currentData()
        self.model_combo.clear()
        self.model_combo.addItem("Detect automatically", None)
        known_files = set()
        try:
            specs = registry.list_models()
        except Exception as exc:  # noqa: BLE001
            specs = []
            self._show(f"model registry error: {exc}", error=True)
        for spec in specs:
            status, _ws, _p = W.weight_status(spec)
            top = QTreeWidgetItem([spec.title, spec.task, status, "", "", "", ""])
            top.setToolTip(0, spec.description)
            self.tree.addTopLevelItem(top)
            if spec.needs_weights:
                self.model_combo.addItem(spec.title, spec.name)
            for ws in spec.weight_sets:
                known_files.add(ws.filename)
                path = W.find_weight_file(ws)
                where = ("not installed" if path is None else
                         "imported" if removable(path) else "bundled")
                child = QTreeWidgetItem([ws.name, ws.kind, where, ws.filename, ws.licence,
                                         ws.source, ws.sha256 or "unknown"])
                child.setData(0, ROLE_PATH, str(path) if path else "")
                child.setToolTip(3, str(path) if path else f"expected in {W.user_models_dir()}")
                child.setToolTip(5, ws.source)
                child.setToolTip(6, ws.sha256 or "no published checksum")
                if ws.training_data:
                    child.setToolTip(0, f"trained on {ws.training_data}")
                top.addChild(child)
            top.setExpanded(True)
        others = [p for p in user_files() if p.name not in known_files]
        if others:
            top = QTreeWidgetItem(["Other files in the models folder", "", "", "", "", "", ""])
            self.tree.addTopLevelItem(top)
            for p in others:
                child = QTreeWidgetItem([p.stem, "unknown", "imported", p.name, "", "", ""])
                child.setData(0, ROLE_PATH, str(p))
                top.addChild(child)
            top.setExpanded(True)
        i = self.model_combo.findData(current)
        self.model_combo.setCurrentIndex(max(0, i))
        self.folder_label.setText(f"User models folder: {W.user_models_dir()}")
        self._update_buttons()

    def find_items(self, text: str, column: int = 0) -> "list[QTreeWidgetItem]":
        return self.tree.findItems(text, Qt.MatchFlag.MatchExactly | Qt.MatchFlag.MatchRecursive, column)

    def _selected_path(self) -> str:
        it = self.tree.currentItem()
        return (it.data(0, ROLE_PATH) or "") if it is not None else ""

    @Slot()
    def _update_buttons(self, *_a) -> None:
        self.remove_button.setEnabled(removable(self._selected_path()) if self._selected_path() else False)

    def _show(self, text: str, error: bool = False) -> None:
        self.last_message, self.last_error = text, error
        self.message.setText(text)
        self.message.setStyleSheet("color: #c33;" if error else "color: #2a7;")

    # ------------------------------------------------------------------ actions
    def _ask(self, title: str, text: str) -> bool:
        r = QMessageBox.question(self, title, text,
                                 QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                 QMessageBox.StandardButton.No)
        return r == QMessageBox.StandardButton.Yes

    def _open_file_dialog(self) -> Optional[str]:
        pattern = " ".join(f"*{s}" for s in WEIGHT_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(self, "Import weights", str(Path.home()),
                                              f"PyTorch checkpoints ({pattern});;All files (*)")
        return path or None

    @Slot()
    def import_clicked(self) -> None:
        path = self.choose_file()
        if path:
            self.import_file(path, self.model_combo.currentData())

    def import_file(self, path, model: Optional[str] = None) -> bool:
        """Validate and import ``path`` (for ``model`` or detected); shows the outcome."""
        QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            try:
                check = inspect_weight_file(path, model)
            except ImportWeightsError as exc:
                self._show(f"Not imported: {exc}", error=True)
                return False
            overwrite = False
            if check.target.exists() and W.sha256_file(check.target) != check.sha256:
                QGuiApplication.restoreOverrideCursor()
                try:
                    if not self.confirm("Replace weights?",
                                        f"{check.target.name} already exists in the models folder. "
                                        "Replace it with the imported file?"):
                        self._show("Not imported: kept the existing file.", error=True)
                        return False
                finally:
                    QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
                overwrite = True
            try:
                check = install_checked(check, overwrite=overwrite)
            except ImportWeightsError as exc:
                self._show(f"Not imported: {exc}", error=True)
                return False
        finally:
            QGuiApplication.restoreOverrideCursor()
        self._show(f"Imported {check.message}.")
        self.refresh()
        self.weights_changed.emit()
        return True

    @Slot()
    def remove_selected(self) -> bool:
        path = self._selected_path()
        if not path or not removable(path):
            self._show("Select an imported file to remove (bundled files cannot be removed).", error=True)
            return False
        if not self.confirm("Remove weights?", f"Delete {Path(path).name} from {W.user_models_dir()}?"):
            return False
        try:
            remove_weight_file(path)
        except (ImportWeightsError, OSError) as exc:
            self._show(f"Not removed: {exc}", error=True)
            return False
        self._show(f"Removed {Path(path).name}.")
        self.refresh()
        self.weights_changed.emit()
        return True

    def select_path(self, path) -> bool:
        """Select the row of ``path`` (tests, "show in manager" links)."""
        target = str(path)
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            for j in range(top.childCount()):
                if top.child(j).data(0, ROLE_PATH) == target:
                    self.tree.setCurrentItem(top.child(j))
                    return True
        return False

    @Slot()
    def reveal_folder(self) -> bool:
        d = W.user_models_dir()
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._show(f"Cannot create {d}: {exc}", error=True)
            return False
        ok = QDesktopServices.openUrl(QUrl.fromLocalFile(str(d)))
        if not ok:
            self._show(f"Could not open a file manager; the folder is {d}", error=True)
        return ok
