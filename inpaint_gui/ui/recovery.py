"""The crash-recovery dialog: every leftover recovery file, newest first, with its date and
image name. The user recovers one, deletes the ones they choose, or keeps them all for later.

The files themselves (autosave, finding leftovers, deleting) are handled by the Qt-free
:mod:`inpaint_gui.core.recovery`.
"""
from __future__ import annotations

import os
from typing import Callable, List, Optional, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QHBoxLayout, QHeaderView, QLabel,
                               QMessageBox, QPushButton, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)

from inpaint_gui.core.recovery import Leftover, delete_leftover

COLUMNS = ("Saved", "Image", "Size", "Results")
ROLE_INDEX = Qt.ItemDataRole.UserRole


def _human_bytes(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n:.1f} GB"


class RecoveryDialog(QDialog):
    """Offers ``leftovers`` (newest first). After ``exec()``: ``chosen`` is the one to recover
    (or None: keep everything for later); ``deleted`` lists the files the user deleted.

    ``confirm(title, text) -> bool`` is an attribute so tests can answer it."""

    def __init__(self, leftovers: Sequence[Leftover], parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Recover unsaved work")
        self.setObjectName("RecoveryDialog")
        self.resize(640, 320)
        self.leftovers: List[Leftover] = list(leftovers)
        self.chosen: Optional[Leftover] = None
        self.deleted: List[str] = []
        self.confirm: Callable[[str, str], bool] = self._ask

        lay = QVBoxLayout(self)
        n = len(self.leftovers)
        self.intro = QLabel(
            "The app did not close normally. "
            + ("This unsaved work was kept:" if n == 1 else
               f"These {n} pieces of unsaved work were kept, newest first:"), self)
        self.intro.setWordWrap(True)
        lay.addWidget(self.intro)

        self.tree = QTreeWidget(self)
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setAlternatingRowColors(True)
        hdr = self.tree.header()
        hdr.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        hdr.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        hdr.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        hdr.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        for i, item in enumerate(self.leftovers):
            size = (f"{item.image_size[0]}\u00d7{item.image_size[1]}" if item.image_size
                    else _human_bytes(item.size_bytes))
            image = item.image_name + (f" \u2014 damaged: {item.problem}" if item.problem else "")
            row = QTreeWidgetItem([item.when, image, size, str(item.results)])
            row.setData(0, ROLE_INDEX, i)
            tip = f"Recovery file: {item.path}"
            if item.source_path:
                tip = f"Image: {item.source_path}\n{tip}"
            for col in range(len(COLUMNS)):
                row.setToolTip(col, tip)
            self.tree.addTopLevelItem(row)
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        self.tree.itemDoubleClicked.connect(lambda *_: self.recover_selected())
        lay.addWidget(self.tree, 1)

        self.note = QLabel("Work you neither recover nor delete is kept and offered again at "
                           "the next start (or with File \u2192 Recover Unsaved Work\u2026).",
                           self)
        self.note.setWordWrap(True)
        lay.addWidget(self.note)
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setObjectName("recoveryMessage")
        lay.addWidget(self.message)

        row = QHBoxLayout()
        self.delete_button = QPushButton("Delete\u2026", self)
        self.delete_button.setToolTip("Delete the selected files for good (asks first)")
        self.delete_button.clicked.connect(self.delete_selected)
        self.later_button = QPushButton("Keep for Later", self)
        self.later_button.clicked.connect(self.reject)
        self.recover_button = QPushButton("Recover", self)
        self.recover_button.setDefault(True)
        self.recover_button.clicked.connect(self.recover_selected)
        row.addWidget(self.delete_button)
        row.addStretch(1)
        row.addWidget(self.later_button)
        row.addWidget(self.recover_button)
        lay.addLayout(row)

        if self.tree.topLevelItemCount():
            self.tree.setCurrentItem(self.tree.topLevelItem(0))  # the newest
        self._update_buttons()

    # ------------------------------------------------------------------ helpers
    def rows(self) -> List[Leftover]:
        """The leftovers still listed, top to bottom."""
        return [self.leftovers[self.tree.topLevelItem(i).data(0, ROLE_INDEX)]
                for i in range(self.tree.topLevelItemCount())]

    def selected(self) -> List[Leftover]:
        rows = sorted(self.tree.selectedItems(), key=self.tree.indexOfTopLevelItem)
        return [self.leftovers[r.data(0, ROLE_INDEX)] for r in rows]

    def select(self, *indices: int) -> None:
        """Select the listed rows ``indices`` (tests, keyboard-free use)."""
        self.tree.clearSelection()
        for i in indices:
            self.tree.topLevelItem(i).setSelected(True)
        self._update_buttons()

    def _update_buttons(self) -> None:
        sel = self.selected()
        self.recover_button.setEnabled(len(sel) == 1 and sel[0].problem is None)
        self.delete_button.setEnabled(bool(sel))

    def _ask(self, title: str, text: str) -> bool:
        r = QMessageBox.question(self, title, text,
                                 QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                 QMessageBox.StandardButton.No)
        return r == QMessageBox.StandardButton.Yes

    # ------------------------------------------------------------------ actions
    def recover_selected(self) -> bool:
        sel = self.selected()
        if len(sel) != 1 or sel[0].problem is not None:
            return False
        self.chosen = sel[0]
        self.accept()
        return True

    def delete_selected(self) -> bool:
        sel = self.selected()
        if not sel:
            return False
        names = "\n".join(f"\u2022 {it.describe()}" for it in sel)
        what = "this unsaved work" if len(sel) == 1 else f"these {len(sel)} pieces of unsaved work"
        if not self.confirm("Delete unsaved work?",
                            f"Delete {what} for good?\n\n{names}\n\nThis cannot be undone."):
            return False
        failed = []
        for it in sel:
            try:
                delete_leftover(it.path)
            except (OSError, ValueError) as exc:
                failed.append(f"{os.path.basename(it.path)}: {exc}")
                continue
            self.deleted.append(it.path)
            for i in range(self.tree.topLevelItemCount()):
                row = self.tree.topLevelItem(i)
                if self.leftovers[row.data(0, ROLE_INDEX)] is it:
                    self.tree.takeTopLevelItem(i)
                    break
        if failed:
            self.message.setText("Could not delete: " + "; ".join(failed))
        else:
            self.message.setText(f"Deleted {len(sel)} file{'s' if len(sel) > 1 else ''}.")
        if not self.tree.topLevelItemCount():
            self.reject()  # nothing left to offer
        elif not self.tree.selectedItems():
            self.tree.setCurrentItem(self.tree.topLevelItem(0))
        self._update_buttons()
        return not failed
