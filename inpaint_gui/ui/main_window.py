"""Main window: canvas in the centre, tools toolbar, docks, menus, files, settings.

Plug-in points for the model-running GUI (see :class:`MainWindow`): ``document``,
``canvas`` (``add_overlay_item``), ``add_dock`` / ``set_models_panel``, ``menus``,
``main_toolbar``, ``status_message``, ``busy``.
"""
from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from typing import Dict, Iterable, List, Optional

import numpy as np
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QColor, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QFrame, QLabel, QMainWindow,
                               QMenu, QMessageBox, QScrollArea, QToolBar, QUndoView, QWidget)

from inpaint_gui.core.margins import PRESETS
from inpaint_gui.core.project import ProjectError
from inpaint_gui.core.project import save_project as _write_project
from inpaint_gui.core.recovery import (Autosaver, Leftover, delete_leftover, find_leftovers,
                                       snapshot)

from . import fileio
from .canvas import CanvasView
from .docks import CanvasPanel, LayersPanel, MaskPanel, ToolOptionsPanel
from .document import Document
from .icons import icon
from .qimage import arrays_from_qimage, to_qimage
from .recovery import RecoveryDialog
from .tools import TOOL_CLASSES, ToolSettings

APP_TITLE = "Inpaint"
MAX_RECENT = 10


def _as_list(v) -> List[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v] if v else []
    return [str(x) for x in v]


def _as_bool(v, default: bool) -> bool:
    if v is None:
        return default
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "on")
    return bool(v)


def scrollable(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless vertical scroll area, so a dock can be shorter than it."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
    area.setWidget(widget)
    return area


def _same_file(a: Optional[str], b: Optional[str]) -> bool:
    if not a or not b:
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


class MainWindow(QMainWindow):
    """The editor window.

    Public API for the model-running GUI:

    * ``document`` (:class:`~.document.Document`): ``image``/``alpha``/``mask``/``margins``,
      ``canvas_arrays()``, ``add_result(ResultEntry)``, ``accept_result(entry)``, signals
      ``reset``, ``image_changed``, ``mask_changed(bbox)``, ``mask_committed(bbox)`` (a
      stroke/shape/mask operation finished: auto-run hook), ``margins_changed(Margins)``,
      ``results_changed``, ``modified_changed(bool)``; ``undo_stack``.
    * ``canvas`` (:class:`~.canvas.CanvasView`): ``add_overlay_item(item, z)`` (image pixel
      coordinates, ``canvas.Z_RESULTS`` sits between image and mask), ``fit()``, signals.
    * ``add_dock(widget, title, area, name)`` / ``set_models_panel(widget)``.
    * ``menus`` (dict: file, edit, view, mask, canvas, tools, help; ``add_menu`` inserts one
      before Help), ``main_toolbar``, ``actions`` (dict by name; ``add_action`` creates one),
      ``status_message(text)``, ``busy()`` context manager,
      ``layers_panel.result_activated(ResultEntry)``.
    * signals ``settings_saving(QSettings)`` (persist plug-in state there) and ``closing()``
      (the window is about to close for good: stop background work).
    """

    settings_saving = Signal(object)  # QSettings, from save_settings()
    closing = Signal()                # closeEvent accepted: shut down workers

    def __init__(self, settings: Optional[QSettings] = None, parent: Optional[QWidget] = None,
                 recovery_dir: Optional[str] = None, autosave_interval_s: float = 60.0,
                 extra_recovery_dirs: Iterable[str] = ()):
        """``settings``: where window state, recent files and tool options live (tests pass
        a temporary file). ``recovery_dir``: enables crash-recovery autosave there;
        ``extra_recovery_dirs``: older folders whose leftover files are offered too."""
        super().__init__(parent)
        self.settings = settings if settings is not None else QSettings()
        self.setWindowIcon(icon("app"))
        self.setObjectName("MainWindow")
        self.setDockNestingEnabled(True)
        self.setAcceptDrops(True)
        self.document = Document(self)
        self.tool_settings = ToolSettings(self)
        self.canvas = CanvasView(self.document, self.tool_settings, self)
        self.setCentralWidget(self.canvas)
        self.tools = {cls.name: cls(self.tool_settings) for cls in TOOL_CLASSES}
        self.canvas.set_tool(self.tools["brush"])
        self.actions: Dict[str, QAction] = {}
        self.menus: Dict[str, QMenu] = {}
        self.docks: Dict[str, QDockWidget] = {}
        self.models_dock: Optional[QDockWidget] = None
        self._restoring = False

        self._create_actions()
        self._create_menus()
        self._create_toolbars()
        self._create_docks()
        self._create_statusbar()
        self._restore_settings()

        d = self.document
        d.path_changed.connect(self._update_title)
        d.modified_changed.connect(self._update_title)
        d.image_changed.connect(self._update_info)
        d.margins_changed.connect(self._update_info)
        d.reset.connect(self._update_actions)
        d.image_changed.connect(self._update_actions)
        self.canvas.files_dropped.connect(self.open_paths)
        self.canvas.zoom_changed.connect(self._update_zoom_label)
        self.canvas.cursor_moved.connect(self._update_cursor_label)
        self.canvas.tool_changed.connect(self._on_tool_changed)
        self._update_title()
        self._update_info()
        self._update_actions()

        self.autosaver: Optional[Autosaver] = (Autosaver(recovery_dir, _write_project)
                                               if recovery_dir else None)
        self.recovery_dirs: List[str] = ([recovery_dir] if recovery_dir else []) + [
            d for d in extra_recovery_dirs if d and d != recovery_dir]
        self._autosaved_rev: Optional[int] = None
        self._autosave_timer = QTimer(self)
        self._autosave_timer.setInterval(int(autosave_interval_s * 1000))
        self._autosave_timer.timeout.connect(self.autosave_now)
        if self.autosaver is not None:
            self._autosave_timer.start()
            d.modified_changed.connect(self._on_modified_changed)

    # ================================================================== crash recovery
    def autosave_now(self, wait: bool = False) -> bool:
        """Write the recovery file in the background if there is new unsaved work."""
        d = self.document
        if (self.autosaver is None or d.is_empty() or not d.is_modified()
                or self.canvas.tool.active or d.revision == self._autosaved_rev):
            return False
        started = self.autosaver.save_async(snapshot(d.to_project_state()))
        if started:
            self._autosaved_rev = d.revision
            if wait:
                self.autosaver.wait()
        return started

    def _discard_autosave(self) -> None:
        if self.autosaver is not None:
            self.autosaver.discard()
        self._autosaved_rev = None

    def _on_modified_changed(self, modified: bool) -> None:
        if not modified:
            self._discard_autosave()  # saved, or undone back to the saved state

    def check_recovery(self, interactive: bool = False) -> bool:
        """Offer the work left by sessions that did not close normally (every file, newest
        first); recover the one the user picks. Files the user neither recovers nor deletes
        are kept. ``interactive``: asked for from the menu (say when there is nothing)."""
        if self.autosaver is None:
            if interactive:
                self.status_message("Crash recovery is off in this window", 5000)
            return False
        leftovers = find_leftovers(self.recovery_dirs, exclude=[self.autosaver.path])
        if not leftovers:
            if interactive:
                self.status_message("No unsaved work to recover", 5000)
            return False
        chosen = self.ask_recovery(leftovers)
        if chosen is None:
            return False
        return self.recover_file(chosen.path)

    def recover_file(self, path: str) -> bool:
        """Open the recovery file ``path`` as unsaved work. It is deleted only once this
        session's own recovery file holds the work; on any failure it is kept."""
        if not self.maybe_save():
            return False
        try:
            self.document.load_project(path)
        except (ProjectError, OSError) as exc:
            self.show_error("Cannot recover",
                            f"{exc}\n\nThe recovery file is kept:\n{path}")
            return False
        d = self.document
        d.project_path = None
        d.name = "Recovered \u2014 " + (os.path.basename(d.source_path) if d.source_path
                                       else "untitled")
        d.mark_modified()
        d.path_changed.emit()
        self._autosaved_rev = None
        saved = self.autosave_now(wait=True) and self.autosaver.last_error is None \
            and os.path.exists(self.autosaver.path)
        if saved:
            try:
                delete_leftover(path)
            except (OSError, ValueError):
                pass
        else:
            self.status_message(f"Recovered; the recovery file is kept: {path}", 10000)
        return True

    # ================================================================== dialogs (patchable)
    def ask_open_path(self, caption: str, filter_: str) -> Optional[str]:
        path, _ = QFileDialog.getOpenFileName(self, caption, self._last_dir(), filter_)
        return path or None

    def ask_save_path(self, caption: str, suggested: str, filter_: str) -> Optional[str]:
        # we confirm overwrites ourselves (with a clearer message for the original image)
        path, _ = QFileDialog.getSaveFileName(self, caption, suggested, filter_,
                                              options=QFileDialog.DontConfirmOverwrite)
        return path or None

    def ask_recovery(self, leftovers: List[Leftover]) -> Optional[Leftover]:
        """The leftover to recover, or None (the dialog may also delete files the user
        chose)."""
        dlg = RecoveryDialog(leftovers, self)
        dlg.exec()
        return dlg.chosen

    def ask_question(self, title: str, text: str, buttons, default):
        box = QMessageBox(QMessageBox.Warning, title, text, buttons, self)
        box.setDefaultButton(default)
        return QMessageBox.StandardButton(box.exec())

    def show_error(self, title: str, text: str) -> None:
        QMessageBox.critical(self, title, text)

    # ================================================================== actions
    def _act(self, name: str, text: str, slot=None, shortcut=None, icon_name: str = "",
             tip: str = "", checkable: bool = False) -> QAction:
        a = QAction(text, self)
        if icon_name:
            a.setIcon(icon(icon_name))
        if isinstance(shortcut, QKeySequence.StandardKey):
            a.setShortcuts(shortcut)  # all the platform's bindings (e.g. Ctrl+Shift+Z)
        elif shortcut:
            seqs = shortcut if isinstance(shortcut, (list, tuple)) else [shortcut]
            a.setShortcuts([QKeySequence(s) for s in seqs])
        if tip:
            a.setStatusTip(tip)
            a.setToolTip(f"{text.replace('&', '')} ({a.shortcut().toString()})"
                         if shortcut else text.replace("&", ""))
        a.setCheckable(checkable)
        if slot is not None:
            a.triggered.connect(slot)
        self.addAction(a)  # shortcuts work even when the menu bar is hidden
        self.actions[name] = a
        return a

    def add_action(self, name: str, text: str, slot=None, shortcut=None, icon_name: str = "",
                   tip: str = "", checkable: bool = False) -> QAction:
        """Create a window action (shortcut active everywhere; kept in ``actions[name]``)."""
        return self._act(name, text, slot, shortcut, icon_name, tip, checkable)

    def add_menu(self, key: str, title: str, before: str = "help") -> QMenu:
        """Add a menu bar menu before ``menus[before]`` (or at the end)."""
        menu = QMenu(title, self)
        ref = self.menus.get(before)
        if ref is not None:
            self.menuBar().insertMenu(ref.menuAction(), menu)
        else:
            self.menuBar().addMenu(menu)
        self.menus[key] = menu
        return menu

    def _create_actions(self) -> None:
        A = self._act
        d = self.document
        A("open", "&Open\u2026", self.open_dialog, QKeySequence.Open, "open",
          "Open an image or an .inpaint project")
        A("save", "&Save Image", self.save_result, QKeySequence.Save, "save",
          "Save the result image (asks where the first time)")
        A("save_as", "Save Image &As\u2026", self.save_result_as, "Ctrl+Shift+S", "",
          "Save the result image under a new name")
        A("save_project", "Save &Project", self.save_project, "Ctrl+Alt+S", "",
          "Save image, mask, canvas extension and results to resume later")
        A("save_project_as", "Save Project As\u2026", self.save_project_as, None)
        A("import_mask", "Import &Mask\u2026", self.import_mask_dialog, None, "",
          "Load a mask image (white = fill)")
        A("import_mask_alpha", "Import Mask from Image &Alpha\u2026",
          lambda: self.import_mask_dialog(use_alpha=True), None, "",
          "Transparent pixels of another image become the fill region")
        A("mask_from_alpha", "Mask from This Image's Alpha", self.mask_from_alpha, None)
        A("export_mask", "&Export Mask\u2026", self.export_mask_dialog, "Ctrl+Shift+E", "",
          "Save the mask as a PNG (255 = fill)")
        A("recover", "Recover Unsaved &Work\u2026", lambda: self.check_recovery(interactive=True),
          None, "", "Work left by a session that did not close normally")
        A("quit", "&Quit", self.close, QKeySequence.Quit)

        # own undo/redo actions: an in-progress gesture is cancelled first
        st = d.undo_stack
        undo = A("undo", "&Undo", self.undo, QKeySequence.Undo, "undo")
        redo = A("redo", "&Redo", self.redo, ["Ctrl+Shift+Z", "Ctrl+Y"], "redo")
        undo.setEnabled(False)
        redo.setEnabled(False)
        st.canUndoChanged.connect(undo.setEnabled)
        st.canRedoChanged.connect(redo.setEnabled)
        st.undoTextChanged.connect(lambda t: undo.setText(f"&Undo {t}".strip()))
        st.redoTextChanged.connect(lambda t: redo.setText(f"&Redo {t}".strip()))
        A("copy", "&Copy Image", self.copy_image, QKeySequence.Copy)
        A("paste", "&Paste Image", self.paste, QKeySequence.Paste, "",
          "Open the image on the clipboard")

        c = self.canvas
        A("zoom_in", "Zoom &In", c.zoom_in, ["Ctrl++", "Ctrl+=", "+"], "zoom-in")
        A("zoom_out", "Zoom &Out", c.zoom_out, ["Ctrl+-", "-"], "zoom-out")
        A("zoom_fit", "&Fit in Window", c.fit, ["Ctrl+0"], "zoom-fit")
        A("zoom_100", "&Actual Pixels (100 %)", c.actual_size, ["Ctrl+1"], "zoom-100")
        show = A("show_mask", "Show &Mask", lambda on: c.set_mask_style(visible=on),
                 "Ctrl+H", "mask", "Show or hide the mask overlay", checkable=True)
        show.setChecked(True)
        c.mask_style_changed.connect(lambda: show.setChecked(c.mask_style()[2]))

        A("mask_grow", "&Grow", lambda: self.mask_panel.run("grow"), None)
        A("mask_shrink", "&Shrink", lambda: self.mask_panel.run("shrink"), None)
        A("mask_feather", "&Feather", lambda: self.mask_panel.run("feather"), None)
        A("mask_invert", "&Invert", lambda: self.mask_panel.run("invert"), "Ctrl+I")
        A("mask_clear", "&Clear", lambda: self.mask_panel.run("clear"), ["Ctrl+D", "Del"])
        A("mask_fill", "Fill &All", lambda: self.mask_panel.run("fill"), "Ctrl+A")

        for key, label in PRESETS:
            A(f"preset_{key}", label, lambda _=False, k=key: self.canvas_panel.apply_preset(k))

        group = QActionGroup(self)
        group.setExclusive(True)
        for name, tool in self.tools.items():
            a = A(f"tool_{name}", tool.label, lambda _=False, t=tool: self.canvas.set_tool(t),
                  tool.shortcut, tool.icon, tool.tip, checkable=True)
            group.addAction(a)
        self.actions["tool_brush"].setChecked(True)
        s = self.tool_settings
        A("brush_smaller", "Smaller Brush", lambda: s.step_brush_size(False), "[")
        A("brush_bigger", "Bigger Brush", lambda: s.step_brush_size(True), "]")
        A("brush_softer", "Softer Brush", lambda: s.step_hardness(False), ["Shift+[", "{"])
        A("brush_harder", "Harder Brush", lambda: s.step_hardness(True), ["Shift+]", "}"])
        A("swap_brush", "Swap Brush/Eraser", self._swap_brush, "X")
        A("about", "&About", self._about)

    def undo(self) -> None:
        if self.canvas.tool.active:
            self.canvas.tool.cancel(self.canvas)  # Ctrl+Z mid-stroke drops the stroke
            return
        self.document.undo_stack.undo()

    def redo(self) -> None:
        if self.canvas.tool.active:
            return
        self.document.undo_stack.redo()

    def _swap_brush(self) -> None:
        name = "eraser" if self.canvas.tool.name == "brush" else "brush"
        self.canvas.set_tool(self.tools[name])

    def _on_tool_changed(self, name: str) -> None:
        a = self.actions.get(f"tool_{name}")
        if a is not None and not a.isChecked():
            a.setChecked(True)

    def _create_menus(self) -> None:
        mb = self.menuBar()
        a = self.actions
        m = self.menus["file"] = mb.addMenu("&File")
        m.addAction(a["open"])
        self.recent_menu = m.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        m.addAction(a["paste"])
        m.addSeparator()
        for n in ("save", "save_as", None, "save_project", "save_project_as", None,
                  "import_mask", "import_mask_alpha", "mask_from_alpha", "export_mask", None,
                  "recover", None, "quit"):
            m.addSeparator() if n is None else m.addAction(a[n])
        m = self.menus["edit"] = mb.addMenu("&Edit")
        for n in ("undo", "redo", None, "copy", "paste"):
            m.addSeparator() if n is None else m.addAction(a[n])
        m = self.menus["view"] = mb.addMenu("&View")
        for n in ("zoom_in", "zoom_out", "zoom_fit", "zoom_100", None, "show_mask"):
            m.addSeparator() if n is None else m.addAction(a[n])
        m.addSeparator()
        self.panels_menu = m.addMenu("&Panels")
        m = self.menus["mask"] = mb.addMenu("&Mask")
        for n in ("mask_grow", "mask_shrink", "mask_feather", None, "mask_invert", "mask_clear",
                  "mask_fill", None, "import_mask", "import_mask_alpha", "mask_from_alpha",
                  "export_mask"):
            m.addSeparator() if n is None else m.addAction(a[n])
        m = self.menus["canvas"] = mb.addMenu("&Canvas")
        m.addAction(a["tool_extend"])
        m.addSeparator()
        for key, _ in PRESETS:
            m.addAction(a[f"preset_{key}"])
        m = self.menus["tools"] = mb.addMenu("&Tools")
        for name in self.tools:
            m.addAction(a[f"tool_{name}"])
        m.addSeparator()
        for n in ("brush_smaller", "brush_bigger", "brush_softer", "brush_harder", "swap_brush"):
            m.addAction(a[n])
        m = self.menus["help"] = mb.addMenu("&Help")
        m.addAction(a["about"])

    def _create_toolbars(self) -> None:
        a = self.actions
        tb = self.main_toolbar = QToolBar("Main toolbar", self)
        tb.setObjectName("main_toolbar")
        for n in ("open", "save", None, "undo", "redo", None, "zoom_fit", "zoom_100",
                  "zoom_in", "zoom_out", None, "show_mask"):
            tb.addSeparator() if n is None else tb.addAction(a[n])
        self.addToolBar(Qt.TopToolBarArea, tb)
        tt = self.tools_toolbar = QToolBar("Tools", self)
        tt.setObjectName("tools_toolbar")
        for name in self.tools:
            tt.addAction(a[f"tool_{name}"])
        self.addToolBar(Qt.LeftToolBarArea, tt)
        self.panels_menu.addAction(tb.toggleViewAction())
        self.panels_menu.addAction(tt.toggleViewAction())
        self.panels_menu.addSeparator()

    def add_dock(self, widget: QWidget, title: str, area=Qt.RightDockWidgetArea,
                 name: Optional[str] = None, tabify_with: Optional[QDockWidget] = None
                 ) -> QDockWidget:
        """Add a dock panel (listed in View > Panels; position remembered across runs).

        ``widget`` may itself be a QDockWidget (it is then added as is)."""
        if isinstance(widget, QDockWidget):
            dock = widget
            dock.setParent(self)
            if name or not dock.objectName():
                dock.setObjectName(name or "dock_" + title.lower().replace(" ", "_"))
        else:
            dock = QDockWidget(title, self)
            dock.setObjectName(name or "dock_" + title.lower().replace(" ", "_"))
            dock.setWidget(widget)
        self.addDockWidget(area, dock)
        if tabify_with is not None:
            self.tabifyDockWidget(tabify_with, dock)
        self.panels_menu.addAction(dock.toggleViewAction())
        self.docks[dock.objectName()] = dock
        if not self._restoring:
            self.restoreDockWidget(dock)  # for docks added after the window state was restored
        return dock

    def set_models_panel(self, widget: QWidget, title: str = "Models") -> QDockWidget:
        """The reserved slot for the model-running panel (right side, raised)."""
        if self.models_dock is not None and not isinstance(widget, QDockWidget):
            self.models_dock.setWidget(widget)
            return self.models_dock
        name = None if isinstance(widget, QDockWidget) and widget.objectName() else "models_dock"
        self.models_dock = self.add_dock(widget, title, Qt.RightDockWidgetArea, name)
        if not self._state_has_dock(self.models_dock.objectName()):
            self._default_models_layout()  # first start with it: else the user's layout stays
        self.models_dock.raise_()
        return self.models_dock

    def _state_has_dock(self, name: str) -> bool:
        """Whether the window state saved last time places the dock ``name``."""
        state = self.settings.value("window/state")
        if not isinstance(state, QByteArray) or state.isEmpty():
            return False
        return name.encode("utf-16-be") in bytes(state.data())

    def _default_models_layout(self) -> None:
        """First start with the models panel: Models on top of the right column, the editing
        panels (tool options, mask, canvas, layers, history) tabbed below it."""
        models, tool = self.models_dock, self.docks["tool_options_dock"]
        others = [self.docks[k] for k in ("mask_dock", "canvas_dock", "layers_dock",
                                          "history_dock")]
        for d in [models, tool] + others:
            self.removeDockWidget(d)
        self.addDockWidget(Qt.RightDockWidgetArea, models)
        self.addDockWidget(Qt.RightDockWidgetArea, tool)
        for d in others:
            self.tabifyDockWidget(tool, d)
        for d in [models, tool] + others:
            d.show()
        tool.raise_()

        def content_height(dock) -> int:
            """The dock's height with its content at its size hint (inside a scroll area: the
            scrolled widget's)."""
            body = dock.widget()
            inner = body.widget() if isinstance(body, QScrollArea) else body
            return inner.sizeHint().height() + dock.sizeHint().height() - body.sizeHint().height()

        def sizes():
            # the column's height: the two docks as laid out, or the central area before that
            h = max(400, models.height() + tool.height() if models.height() > 50
                    else self.centralWidget().height())
            # the Models panel as tall as its content plus what is added once an image is open
            # and a model chosen (Auto's reason wraps to four lines; a model's own options add
            # up to two rows of about two lines each), so Run, the progress bar and the run's
            # status show without scrolling; the editing panels below keep what their content
            # needs, or at least 30 % in a short window
            need = content_height(models) + 7 * models.fontMetrics().lineSpacing()
            tool_need = content_height(tool) + 2 * tool.fontMetrics().lineSpacing()  # + its tab bar
            m = max(int(h * 0.5), min(need, h - min(tool_need, int(h * 0.3))))
            self.resizeDocks([models, tool], [m, h - m], Qt.Vertical)
            self.resizeDocks([models], [370], Qt.Horizontal)
        sizes()
        QTimer.singleShot(0, sizes)  # again once the window is shown and laid out

    def _create_docks(self) -> None:
        self._restoring = True
        self.tool_options_panel = ToolOptionsPanel(self.tool_settings)
        self.mask_panel = MaskPanel(self.document, self.canvas)
        self.canvas_panel = CanvasPanel(self.document)
        self.layers_panel = LayersPanel(self.document)
        self.history_view = QUndoView(self.document.undo_stack)
        self.history_view.setEmptyLabel("Opened image")
        t = self.add_dock(scrollable(self.tool_options_panel), "Tool Options",
                          name="tool_options_dock")
        m = self.add_dock(scrollable(self.mask_panel), "Mask", name="mask_dock")
        c = self.add_dock(scrollable(self.canvas_panel), "Canvas", name="canvas_dock",
                          tabify_with=m)
        lay = self.add_dock(self.layers_panel, "Layers", name="layers_dock")
        h = self.add_dock(self.history_view, "History", name="history_dock", tabify_with=lay)
        m.raise_()
        lay.raise_()
        del t, c, h
        self._restoring = False

    def _create_statusbar(self) -> None:
        sb = self.statusBar()
        self.cursor_label = QLabel()
        self.info_label = QLabel()
        self.zoom_label = QLabel()
        self.cursor_label.setMinimumWidth(220)
        for w in (self.cursor_label, self.info_label, self.zoom_label):
            sb.addPermanentWidget(w)

    # ================================================================== status
    def status_message(self, text: str, ms: int = 4000) -> None:
        self.statusBar().showMessage(text, ms)

    @contextmanager
    def busy(self, text: str = ""):
        """Wait cursor (and a status message) around a long operation."""
        if text:
            self.status_message(text, 0)
        QGuiApplication.setOverrideCursor(Qt.WaitCursor)
        try:
            yield
        finally:
            QGuiApplication.restoreOverrideCursor()
            if text:
                self.statusBar().clearMessage()

    def _update_title(self, *_a) -> None:
        d = self.document
        if d.is_empty():
            self.setWindowTitle(APP_TITLE)
            self.setWindowModified(False)
            return
        self.setWindowTitle(f"{d.name}[*] \u2014 {APP_TITLE}")
        self.setWindowModified(d.is_modified())

    def _update_info(self, *_a) -> None:
        d = self.document
        if d.is_empty():
            self.info_label.setText("")
            return
        txt = f"{d.width}\u00d7{d.height}  {d.bit_depth}-bit"
        if d.alpha is not None:
            txt += " +alpha"
        if not d.margins.is_zero():
            ch, cw = d.canvas_shape()
            txt += f"  \u2192 canvas {cw}\u00d7{ch}"
        self.info_label.setText(txt)

    def _update_zoom_label(self, z: float) -> None:
        self.zoom_label.setText(f"{z * 100:.0f} %" if z >= 0.1 else f"{z * 100:.1f} %")

    def _update_cursor_label(self, pos) -> None:
        d = self.document
        if pos is None or d.is_empty():
            self.cursor_label.setText("")
            return
        x, y = int(np.floor(pos[0])), int(np.floor(pos[1]))
        if 0 <= x < d.width and 0 <= y < d.height:
            px = d.image[y, x]
            self.cursor_label.setText(f"{x}, {y}   RGB {int(px[0])} {int(px[1])} {int(px[2])}"
                                      f"   mask {int(d.mask[y, x])}")
        else:
            self.cursor_label.setText(f"{x}, {y}")

    def _update_actions(self, *_a) -> None:
        has = not self.document.is_empty()
        for n in ("save", "save_as", "save_project", "save_project_as", "import_mask",
                  "import_mask_alpha", "export_mask", "copy", "mask_grow", "mask_shrink",
                  "mask_feather", "mask_invert", "mask_clear", "mask_fill"):
            self.actions[n].setEnabled(has)
        self.actions["mask_from_alpha"].setEnabled(has and self.document.alpha is not None)

    # ================================================================== settings
    def _last_dir(self) -> str:
        return str(self.settings.value("files/last_dir", "") or "")

    def _remember_dir(self, path: str) -> None:
        self.settings.setValue("files/last_dir", os.path.dirname(os.path.abspath(path)))

    def recent_files(self) -> List[str]:
        return _as_list(self.settings.value("files/recent"))

    def add_recent_file(self, path: str) -> None:
        path = os.path.abspath(path)
        files = [p for p in self.recent_files() if os.path.abspath(p) != path]
        files.insert(0, path)
        self.settings.setValue("files/recent", files[:MAX_RECENT])
        self._remember_dir(path)

    def _fill_recent_menu(self) -> None:
        m = self.recent_menu
        m.clear()
        files = self.recent_files()
        for i, p in enumerate(files):
            a = m.addAction(f"&{(i + 1) % 10}  {os.path.basename(p)}")
            a.setToolTip(p)
            a.setStatusTip(p)
            a.setEnabled(os.path.exists(p))
            a.triggered.connect(lambda _=False, path=p: self.open_path(path))
        if not files:
            m.addAction("(empty)").setEnabled(False)
        m.addSeparator()
        m.addAction("Clear List", lambda: self.settings.setValue("files/recent", []))

    def _restore_settings(self) -> None:
        st = self.settings
        geo = st.value("window/geometry")
        if isinstance(geo, QByteArray) and not geo.isEmpty():
            self.restoreGeometry(geo)
        else:
            self.resize(1400, 900)
        state = st.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
        ts = self.tool_settings
        for name in ts.names():
            v = st.value(f"tools/{name}")
            if v is None:
                continue
            try:
                if name == "pressure_size":
                    v = _as_bool(v, True)
                elif name != "selection_mode":
                    v = float(v)
                ts.set(name, v)
            except (TypeError, ValueError):
                pass
        color = st.value("mask/color")
        opacity = st.value("mask/opacity")
        kwargs = {}
        if color and QColor(str(color)).isValid():
            kwargs["color"] = QColor(str(color))
        try:
            if opacity is not None:
                kwargs["opacity"] = float(opacity)
        except (TypeError, ValueError):
            pass
        if kwargs:
            self.canvas.set_mask_style(**kwargs)
            self.mask_panel.sync_from_view()

    def save_settings(self) -> None:
        st = self.settings
        st.setValue("window/geometry", self.saveGeometry())
        st.setValue("window/state", self.saveState())
        for name in self.tool_settings.names():
            st.setValue(f"tools/{name}", self.tool_settings.get(name))
        color, opacity, _visible = self.canvas.mask_style()
        st.setValue("mask/color", color.name())
        st.setValue("mask/opacity", opacity)
        self.settings_saving.emit(st)
        st.sync()

    # ================================================================== open
    def maybe_save(self) -> bool:
        """Ask to save unsaved work; False means the caller must not continue."""
        d = self.document
        if d.is_empty() or not d.is_modified():
            return True
        ret = self.ask_question(
            "Unsaved changes",
            f"\u201c{d.name}\u201d has unsaved changes.\n\nSave them as a project "
            f"(image, mask, canvas extension and results) before continuing?",
            QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Save)
        if ret == QMessageBox.Save:
            return self.save_project()
        return ret == QMessageBox.Discard

    def open_dialog(self) -> bool:
        path = self.ask_open_path("Open Image or Project", fileio.OPEN_FILTER)
        return self.open_path(path) if path else False

    def open_paths(self, paths: Iterable[str]) -> bool:
        for p in paths:
            if os.path.isfile(p):
                return self.open_path(p)
        return False

    def open_path(self, path: str, check_modified: bool = True) -> bool:
        if check_modified and not self.maybe_save():
            return False
        try:
            with self.busy(f"Opening {os.path.basename(path)}\u2026"):
                if fileio.is_project_path(path):
                    self.document.load_project(path)
                else:
                    self.document.load_image(path)
        except (ProjectError,) + fileio.io_error_types() as exc:
            self.show_error("Cannot open file", f"{os.path.basename(path)}:\n{exc}")
            return False
        self._discard_autosave()  # the previous work was saved or deliberately discarded
        self.add_recent_file(path)
        self.status_message(f"Opened {path}")
        return True

    def open_arrays(self, rgb: np.ndarray, alpha: Optional[np.ndarray] = None,
                    name: str = "Pasted image") -> bool:
        if not self.maybe_save():
            return False
        self.document.set_image_data(rgb, alpha, name=name)
        self._discard_autosave()
        return True

    def paste(self) -> bool:
        cb = QGuiApplication.clipboard()
        md = cb.mimeData()
        if md is not None and md.hasImage():
            img = cb.image()
            if not img.isNull():
                rgb, alpha = arrays_from_qimage(img)
                return self.open_arrays(rgb, alpha, "Pasted image")
        if md is not None and md.hasUrls():
            paths = [u.toLocalFile() for u in md.urls() if u.isLocalFile()]
            if paths:
                return self.open_paths(paths)
        self.status_message("The clipboard holds no image")
        return False

    def copy_image(self) -> None:
        d = self.document
        if d.is_empty():
            return
        QGuiApplication.clipboard().setImage(to_qimage(d.image, d.alpha))
        self.status_message("Image copied to the clipboard")

    # drag & drop anywhere on the window
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            QTimer.singleShot(0, lambda: self.open_paths(paths))

    # ================================================================== save
    def _confirm_replace(self, path: str) -> bool:
        d = self.document
        if _same_file(path, d.source_path):
            text = (f"\u201c{os.path.basename(path)}\u201d is the ORIGINAL image you opened.\n\n"
                    "Overwrite it with the edited image? The original pixels will be lost.")
        else:
            text = f"\u201c{os.path.basename(path)}\u201d already exists.\n\nReplace it?"
        ret = self.ask_question("Replace file?", text, QMessageBox.Yes | QMessageBox.No,
                                QMessageBox.No)
        return ret == QMessageBox.Yes

    def _suggest_result_path(self) -> str:
        d = self.document
        src = d.result_path or d.source_path
        if src:
            folder, base = os.path.split(src)
            stem, ext = os.path.splitext(base)
            if d.result_path:
                return d.result_path
        else:
            folder, stem, ext = self._last_dir() or os.path.expanduser("~"), "untitled", ".png"
        ext = ext.lower()
        if ext not in fileio.IMAGE_EXTENSIONS or ext == ".bmp":
            ext = ".png"
        if ext in (".jpg", ".jpeg", ".webp", ".bmp") and (d.bit_depth == 16 or d.alpha is not None):
            ext = ".png"  # keep 16 bit / transparency
        cand = os.path.join(folder, f"{stem}_inpainted{ext}")
        i = 2
        while os.path.exists(cand):
            cand = os.path.join(folder, f"{stem}_inpainted_{i}{ext}")
            i += 1
        return cand

    def save_result(self) -> bool:
        """Ctrl+S: save the result image; asks where the first time; never silently
        overwrites the original image."""
        d = self.document
        if d.is_empty():
            return False
        if d.result_path is None:
            return self.save_result_as()
        return self._write_result(d.result_path, confirm=_same_file(d.result_path,
                                                                     d.source_path))

    def save_result_as(self) -> bool:
        d = self.document
        if d.is_empty():
            return False
        path = self.ask_save_path("Save Image As", self._suggest_result_path(),
                                  fileio.SAVE_FILTER)
        if not path:
            return False
        if not os.path.splitext(path)[1]:
            path += ".png"
        return self._write_result(path, confirm=True)

    def _write_result(self, path: str, confirm: bool) -> bool:
        overwrite = False
        if os.path.exists(path):
            if confirm and not self._confirm_replace(path):
                return False
            overwrite = True
        try:
            with self.busy(f"Saving {os.path.basename(path)}\u2026"), \
                    warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", fileio.ImageIOWarning)
                self.document.save_result(path, overwrite=overwrite)
        except FileExistsError:
            self.show_error("Not saved", f"{path} already exists.")
            return False
        except fileio.io_error_types() as exc:
            self.show_error("Cannot save image", f"{os.path.basename(path)}:\n{exc}")
            return False
        self.add_recent_file(path)
        notes = [str(w.message) for w in caught if issubclass(w.category, fileio.ImageIOWarning)]
        lossy = fileio.lossy_note(path)
        if lossy and not getattr(self, "_lossy_noted", False):  # once per session
            self._lossy_noted = True
            notes.append(lossy)
        self.status_message(f"Saved {path}" + (" \u2014 " + "; ".join(notes) if notes else ""),
                            10000 if notes else 4000)
        return True

    def save_project(self) -> bool:
        d = self.document
        if d.is_empty():
            return False
        if d.project_path:
            return self._write_project(d.project_path)
        return self.save_project_as()

    def save_project_as(self) -> bool:
        d = self.document
        if d.is_empty():
            return False
        src = d.project_path or d.source_path
        if src:
            suggested = os.path.splitext(src)[0] + fileio.PROJECT_EXTENSION
        else:
            suggested = os.path.join(self._last_dir() or os.path.expanduser("~"),
                                     "untitled" + fileio.PROJECT_EXTENSION)
        path = self.ask_save_path("Save Project As", suggested, fileio.PROJECT_FILTER)
        if not path:
            return False
        if not path.lower().endswith(fileio.PROJECT_EXTENSION):
            path += fileio.PROJECT_EXTENSION
        if os.path.exists(path) and not _same_file(path, d.project_path):
            if not self._confirm_replace(path):
                return False
        return self._write_project(path)

    def _write_project(self, path: str) -> bool:
        try:
            with self.busy(f"Saving project {os.path.basename(path)}\u2026"):
                self.document.save_project(path)
        except (ProjectError, OSError) as exc:
            self.show_error("Cannot save project", str(exc))
            return False
        self.add_recent_file(path)
        self.status_message(f"Project saved: {path}")
        return True

    # ================================================================== mask files
    def import_mask_dialog(self, use_alpha: bool = False) -> bool:
        if self.document.is_empty():
            return False
        cap = "Import Mask from Image Alpha" if use_alpha else "Import Mask"
        path = self.ask_open_path(cap, fileio.MASK_FILTER)
        if not path:
            return False
        try:
            try:
                self.document.import_mask(path, use_alpha=use_alpha)
            except fileio.MaskSizeError as exc:
                ret = self.ask_question("Mask size differs", f"{exc}\n\nScale it to the image?",
                                        QMessageBox.Yes | QMessageBox.No, QMessageBox.Yes)
                if ret != QMessageBox.Yes:
                    return False
                self.document.import_mask(path, use_alpha=use_alpha, resize=True)
        except fileio.io_error_types() as exc:
            self.show_error("Cannot import mask", f"{os.path.basename(path)}:\n{exc}")
            return False
        self._remember_dir(path)
        return True

    def mask_from_alpha(self) -> None:
        if self.document.mask_from_alpha() is None and self.document.alpha is None:
            self.status_message("This image has no alpha channel")

    def export_mask_dialog(self) -> bool:
        d = self.document
        if d.is_empty():
            return False
        base = os.path.splitext(d.source_path or os.path.join(self._last_dir(), "untitled"))[0]
        path = self.ask_save_path("Export Mask", base + "_mask.png", fileio.MASK_FILTER)
        if not path:
            return False
        if not os.path.splitext(path)[1]:
            path += ".png"
        overwrite = False
        if os.path.exists(path):
            if not self._confirm_replace(path):
                return False
            overwrite = True
        try:
            d.export_mask(path, overwrite=overwrite)
        except fileio.io_error_types() as exc:
            self.show_error("Cannot export mask", str(exc))
            return False
        self.status_message(f"Mask saved: {path}")
        return True

    # ================================================================== misc
    def _about(self) -> None:
        from inpaint_gui import __version__
        QMessageBox.about(self, f"About {APP_TITLE}",
                          f"<b>{APP_TITLE}</b> {__version__}<br>Offline image inpainting and "
                          "outpainting.<br><br>B brush, E eraser, M rectangle, L lasso, "
                          "C extend canvas, H / Space pan, [ ] brush size, wheel zoom.")

    def closeEvent(self, event) -> None:  # noqa: N802
        if self.canvas.tool.active:
            self.canvas.tool.cancel(self.canvas)
        if not self.maybe_save():
            event.ignore()
            return
        self.closing.emit()
        self.save_settings()
        self._autosave_timer.stop()
        self._discard_autosave()
        if self.autosaver is not None:
            self.autosaver.close()
        event.accept()
