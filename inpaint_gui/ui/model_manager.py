"""Model manager: which weights are installed, where they come from, importing and removing.

Listing, checking, installing and removing files is the Qt-free
:mod:`inpaint_gui.engine.weight_store`; this module is only the :class:`ModelManagerDialog`. The official checkpoints
and their sources are listed by :class:`~.official_weights.OfficialWeightsDialog`
(*Models → Get official weights…*).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QHBoxLayout,
                               QHeaderView, QLabel, QMessageBox, QPushButton, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

from inpaint_gui.engine import registry, weights as W
from inpaint_gui.engine import weight_store as S

from .official_weights import import_with_feedback, reveal_models_folder


# ============================================================================ dialog

ROLE_PATH = Qt.ItemDataRole.UserRole
COLUMNS = ("Model / weights", "Kind", "Status", "File", "Licence", "Source", "sha256")


class ModelManagerDialog(QDialog):
    """Lists models and weight sets; imports, reveals and removes weight files.

    Signal ``weights_changed()`` after an import or removal (refresh the models dock);
    ``official_requested()`` asks for the *Get official weights* dialog.
    ``confirm(title, text) -> bool`` and ``choose_file() -> path | None`` are attributes so
    tests (or other front ends) can replace the modal parts."""

    weights_changed = Signal()
    official_requested = Signal()  # "Get official weights..." clicked

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
        self.official_button = QPushButton("Get official weights\u2026", self)
        self.official_button.setToolTip("Where each model's official checkpoints come from, "
                                        "and importing them")
        self.official_button.clicked.connect(self.official_requested)
        row.addWidget(self.import_button)
        row.addWidget(self.official_button)
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
        sets = S.weight_sets()
        for spec in registry.list_models():
            status, _ws, _p = W.weight_status(spec)
            top = QTreeWidgetItem([spec.title, spec.task, status, "", "", "", ""])
            top.setToolTip(0, spec.description)
            self.tree.addTopLevelItem(top)
            if spec.needs_weights:
                self.model_combo.addItem(spec.title, spec.name)
            for item in (i for i in sets if i.spec is spec):
                ws, path = item.weight_set, item.path
                child = QTreeWidgetItem([ws.name, ws.kind, item.where, ws.filename, ws.licence,
                                         ws.source, ws.sha256 or "unknown"])
                child.setData(0, ROLE_PATH, str(path) if path else "")
                child.setToolTip(3, str(path) if path else f"expected in {W.user_models_dir()}")
                child.setToolTip(5, ws.source)
                child.setToolTip(6, ws.sha256 or "no published checksum")
                child.setToolTip(0, f"{item.tag}: trained on {ws.training_data}"
                                 if ws.training_data else item.tag)
                top.addChild(child)
            top.setExpanded(True)
        others = S.other_files()
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
        self.remove_button.setEnabled(S.removable(self._selected_path()) if self._selected_path() else False)

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
        pattern = " ".join(f"*{s}" for s in S.WEIGHT_SUFFIXES)
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
        ok = import_with_feedback(
            lambda: S.inspect_weight_file(path, model), self.confirm,
            lambda c: (f"{c.target.name} already exists in the models folder. Replace it with the "
                       "imported file?"),
            lambda text, error: self._show(text, error=error))
        if ok:
            self.refresh()
            self.weights_changed.emit()
        return ok

    @Slot()
    def remove_selected(self) -> bool:
        path = self._selected_path()
        if not path or not S.removable(path):
            self._show("Select an imported file to remove (bundled files cannot be removed).", error=True)
            return False
        if not self.confirm("Remove weights?", f"Delete {Path(path).name} from {W.user_models_dir()}?"):
            return False
        try:
            S.remove_weight_file(path)
        except (S.ImportWeightsError, OSError) as exc:
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
        return reveal_models_folder(lambda text: self._show(text, error=True))
