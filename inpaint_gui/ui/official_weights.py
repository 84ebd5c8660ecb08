"""*Models → Get official weights…*: where each official checkpoint comes from, and importing it.

For every official weight set of the registry: its source page(s), the file name the app
expects, the size and sha256 where known, whether it is installed, the model card, and an
**Import…** button. Importing checks the chosen file and copies it into the user models folder
under the expected name (:func:`inpaint_gui.engine.weight_store.inspect_for_weight_set` and
``install_checked``); an existing different file is replaced only after the user agrees.
The app never downloads anything itself.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QFrame, QGridLayout,
                               QGroupBox, QHBoxLayout, QLabel, QMessageBox, QPushButton,
                               QScrollArea, QTextBrowser, QVBoxLayout, QWidget)

from inpaint_gui.engine import weight_store as S
from inpaint_gui.engine import weights as W

INTRO = ("The app never downloads anything. Open a source page in your browser, download the "
         "file, then press <b>Import\u2026</b> next to it. The file is checked (read without "
         "running code from it, loaded into the network, compared with the published sha256 "
         "where there is one) and copied into your models folder under the name the app "
         "expects. The better weights are then used automatically.")

OK_COLOUR, ERROR_COLOUR = "#3b9b5b", "#d04545"


def ask_over_wait_cursor(confirm: Callable[[str, str], bool], title: str, text: str) -> bool:
    """``confirm(title, text)`` asked while the wait cursor is shown (a long import): the
    normal cursor comes back for the question."""
    QGuiApplication.restoreOverrideCursor()
    try:
        return confirm(title, text)
    finally:
        QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)


def import_with_feedback(inspect: Callable[[], "S.WeightCheck"], confirm: Callable[[str, str], bool],
                         replace_question: Callable[["S.WeightCheck"], str],
                         report: Callable[[str, bool], None]) -> bool:
    """The import flow both weight dialogs run: ``inspect()`` checks the file (the store's
    inspect call), an existing different file is replaced only if ``confirm`` agrees to
    ``replace_question(check)``, and ``report(text, error)`` hears the outcome in plain words.
    Returns whether the file was installed; the wait cursor shows meanwhile."""
    QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
    try:
        try:
            check = inspect()
            installed = S.install_unless_kept(check, lambda c: ask_over_wait_cursor(
                confirm, "Replace weights?", replace_question(c)))
        except S.ImportWeightsError as exc:
            report(f"Not imported: {exc}", True)
            return False
        if installed is None:
            report(f"Not imported: kept the existing {check.target.name}.", True)
            return False
    finally:
        QGuiApplication.restoreOverrideCursor()
    report(f"Imported {installed.message}.", False)
    return True


def reveal_models_folder(report: Callable[[str], None]) -> bool:
    """Open the user model folder in the file manager (created first); ``report`` hears why
    not, in plain words. Returns whether a file manager opened."""
    d = W.user_models_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        report(f"Cannot create {d}: {exc}")
        return False
    ok = QDesktopServices.openUrl(QUrl.fromLocalFile(str(d)))
    if not ok:
        report(f"Could not open a file manager; the folder is {d}")
    return ok


class _Row:
    """The widgets of one official weight set."""

    def __init__(self, info: S.OfficialWeights, status: QLabel, button: QPushButton) -> None:
        self.info = info
        self.status = status
        self.import_button = button


class OfficialWeightsDialog(QDialog):
    """Lists the official checkpoints; ``weights_changed()`` after an import.

    ``choose_file(info) -> path | None`` and ``confirm(title, text) -> bool`` are attributes so
    tests (or other front ends) can replace the modal parts."""

    weights_changed = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Get official weights")
        self.setObjectName("OfficialWeightsDialog")
        self.resize(860, 640)
        self.choose_file: Callable[[S.OfficialWeights], Optional[str]] = self._open_file_dialog
        self.confirm: Callable[[str, str], bool] = self._ask
        self.rows: Dict[Tuple[str, str], _Row] = {}
        self.card_buttons: Dict[str, QPushButton] = {}
        self.last_message = ""
        self.last_error = False
        self._card_windows: list = []

        lay = QVBoxLayout(self)
        intro = QLabel(INTRO, self)
        intro.setWordWrap(True)
        lay.addWidget(intro)

        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        body = QWidget(scroll)
        self.body_layout = QVBoxLayout(body)
        self.body_layout.setContentsMargins(0, 0, 0, 0)
        scroll.setWidget(body)
        lay.addWidget(scroll, 1)
        self._build_models(body)
        self.body_layout.addStretch(1)

        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setObjectName("officialMessage")
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.message)
        row = QHBoxLayout()
        self.folder_label = QLabel(self)
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.addWidget(self.folder_label, 1)
        self.folder_button = QPushButton("Open models folder", self)
        self.folder_button.clicked.connect(self.reveal_folder)
        row.addWidget(self.folder_button)
        lay.addLayout(row)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        box.rejected.connect(self.reject)
        lay.addWidget(box)
        self.refresh()

    # ------------------------------------------------------------------ construction
    def _build_models(self, body: QWidget) -> None:
        try:
            entries = S.official_weights()
        except Exception as exc:  # noqa: BLE001 - a broken adapter must not hide the rest
            self._show(f"The model list could not be read: {exc}", error=True)
            return
        groups: Dict[str, QGroupBox] = {}
        for info in entries:
            spec = info.spec
            box = groups.get(spec.name)
            if box is None:
                box = groups[spec.name] = QGroupBox(spec.title, body)
                box.setObjectName(f"official_{spec.name}")
                QVBoxLayout(box)
                head = QHBoxLayout()
                desc = QLabel(spec.description, box)
                desc.setWordWrap(True)
                head.addWidget(desc, 1)
                if info.card is not None:
                    b = QPushButton("Model card\u2026", box)
                    b.setToolTip(str(info.card))
                    b.clicked.connect(lambda _=False, p=info.card, t=spec.title:
                                      self.show_card(p, t))
                    head.addWidget(b, 0, Qt.AlignmentFlag.AlignTop)
                    self.card_buttons[spec.name] = b
                box.layout().addLayout(head)
                self.body_layout.addWidget(box)
            box.layout().addWidget(self._weight_row(box, info))

    def _weight_row(self, parent: QWidget, info: S.OfficialWeights) -> QWidget:
        ws = info.weight_set
        frame = QFrame(parent)
        frame.setFrameShape(QFrame.Shape.StyledPanel)
        grid = QGridLayout(frame)
        grid.setColumnStretch(0, 1)
        title = QLabel(f"<b>{html.escape(ws.name)}</b> \u2014 {html.escape(ws.training_data)}",
                       frame)
        title.setTextFormat(Qt.TextFormat.RichText)
        title.setWordWrap(True)
        grid.addWidget(title, 0, 0)
        status = QLabel(frame)
        grid.addWidget(status, 0, 1)
        button = QPushButton("Import\u2026", frame)
        button.setToolTip(f"Choose the downloaded file; it is checked and installed as "
                          f"{ws.filename}")
        button.clicked.connect(lambda _=False, m=info.model, n=ws.name: self.import_for(m, n))
        grid.addWidget(button, 0, 2)

        links = " \u00b7 ".join(f'<a href="{html.escape(u, quote=True)}">{html.escape(u)}</a>'
                                for u in info.urls) or html.escape(ws.source)
        source = QLabel(f"Source: {links}", frame)
        source.setTextFormat(Qt.TextFormat.RichText)
        source.setWordWrap(True)
        source.setOpenExternalLinks(True)
        source.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        source.setToolTip(ws.source)
        grid.addWidget(source, 1, 0, 1, 3)

        names = f"<code>{html.escape(ws.filename)}</code>"
        if info.also_accepted:
            names += " (also accepted: " + ", ".join(
                f"<code>{html.escape(n)}</code>" for n in info.also_accepted) + ")"
        facts = (f"Expected file: {names} \u00b7 Size: {html.escape(info.size)} \u00b7 "
                 f"sha256: {html.escape(info.sha256)}")
        if info.needs_conversion:
            facts += ("<br>The download is a TensorFlow checkpoint: import its <code>.index"
                      "</code> file; it is converted on import.")
        elif any(u.lower().endswith(".zip") for u in info.urls):
            facts += ("<br>The download is a .zip archive: unpack it and import the checkpoint "
                      "inside (the model card says which file).")
        detail = QLabel(facts, frame)
        detail.setTextFormat(Qt.TextFormat.RichText)
        detail.setWordWrap(True)
        detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        grid.addWidget(detail, 2, 0, 1, 3)
        licence = QLabel(f"Licence: {ws.licence}", frame)
        licence.setTextFormat(Qt.TextFormat.PlainText)
        licence.setWordWrap(True)
        licence.setEnabled(False)  # secondary text
        grid.addWidget(licence, 3, 0, 1, 3)
        self.rows[(info.model, ws.name)] = _Row(info, status, button)
        return frame

    # ------------------------------------------------------------------ state
    def refresh(self) -> None:
        """Re-read which files are installed."""
        fresh = {(o.model, o.weight_set.name): o for o in S.official_weights()}
        for key, row in self.rows.items():
            info = fresh.get(key, row.info)
            row.info = info
            if info.installed is not None:
                row.status.setText("Installed \u2713")
                row.status.setStyleSheet(f"color: {OK_COLOUR}; font-weight: bold")
                row.status.setToolTip(str(info.installed))
            else:
                row.status.setText("Not installed")
                row.status.setStyleSheet("")
                row.status.setToolTip(f"expected in {W.user_models_dir()}")
        self.folder_label.setText(f"Models folder: {W.user_models_dir()}")

    def status_text(self, model: str, weight_set: str) -> str:
        return self.rows[(model, weight_set)].status.text()

    def _show(self, text: str, error: bool = False) -> None:
        self.last_message, self.last_error = text, error
        self.message.setText(text)
        self.message.setStyleSheet(f"color: {ERROR_COLOUR if error else OK_COLOUR};")

    # ------------------------------------------------------------------ modal parts
    def _ask(self, title: str, text: str) -> bool:
        r = QMessageBox.question(self, title, text,
                                 QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                 QMessageBox.StandardButton.No)
        return r == QMessageBox.StandardButton.Yes

    def _open_file_dialog(self, info: S.OfficialWeights) -> Optional[str]:
        if info.needs_conversion:
            flt = ("TensorFlow checkpoint index (*.index);;PyTorch checkpoints (*.pt *.pth);;"
                   "All files (*)")
        else:
            pattern = " ".join(f"*{s}" for s in S.WEIGHT_SUFFIXES)
            flt = f"PyTorch checkpoints ({pattern});;All files (*)"
        path, _ = QFileDialog.getOpenFileName(
            self, f"Import {info.spec.title} \u2014 {info.weight_set.name}",
            str(Path.home() / "Downloads") if (Path.home() / "Downloads").is_dir()
            else str(Path.home()), flt)
        return path or None

    # ------------------------------------------------------------------ actions
    def import_for(self, model: str, weight_set: str, path: Optional[str] = None) -> bool:
        """Check ``path`` (asked for when None) as ``model``'s ``weight_set`` and install it."""
        row = self.rows.get((model, weight_set))
        if row is None:
            self._show(f"No official weight set {model}/{weight_set}", error=True)
            return False
        if path is None:
            path = self.choose_file(row.info)
            if not path:
                return False
        ok = import_with_feedback(
            lambda: S.inspect_for_weight_set(path, model, weight_set), self.confirm,
            lambda c: (f"{c.target.name} already exists in {c.target.parent} and is a different "
                       f"file.\n\nReplace it with {Path(path).name}?"),
            lambda text, error: self._show(text, error=error))
        if ok:
            self.refresh()
            self.weights_changed.emit()
        return ok

    def show_card(self, path: Path, title: str = "") -> Optional[QDialog]:
        """The model card (Markdown, with its pictures) in a window of its own."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            self._show(f"Cannot read the model card {path}: {exc}", error=True)
            return None
        dlg = QDialog(self)
        dlg.setWindowTitle(f"Model card \u2014 {title}" if title else "Model card")
        dlg.resize(820, 700)
        lay = QVBoxLayout(dlg)
        view = QTextBrowser(dlg)
        view.setOpenExternalLinks(True)
        view.setSearchPaths([str(Path(path).parent)])
        view.setMarkdown(text)
        lay.addWidget(view)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, dlg)
        box.rejected.connect(dlg.reject)
        lay.addWidget(box)
        dlg.card_view = view
        self._card_windows.append(dlg)
        dlg.show()
        return dlg

    def reveal_folder(self) -> bool:
        return reveal_models_folder(lambda text: self._show(text, error=True))
