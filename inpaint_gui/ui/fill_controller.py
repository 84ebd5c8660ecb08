"""The model-running GUI wired into the main window: ``install(window) -> FillController``.

It joins the tested components:

* :class:`~.models_dock.ModelsDock` (model list with weight status, Auto with its one-line
  reason, HD strategy, seams, device, precision; Run / Compare / Cancel, progress, elapsed
  time) in the window's models slot, its settings persisted in the window's QSettings;
* :class:`~.worker.FillRunner` (fills off the GUI thread; cancel; OOM retries reported as
  notices, shown in the status bar);
* the result layer: :class:`~.result_layer.ResultItem` above the image on the canvas, the
  :class:`~.result_layer.ResultControls` bar (show, opacity, split view, Accept, Discard),
  :class:`~.result_layer.PeekKeyFilter` (hold ``\\`` to see the original);
* :class:`~.compare.CompareGrid` in a dialog for side-by-side comparisons;
* :class:`~.model_manager.ModelManagerDialog` (Models > Manage weights..., and the dock's
  button) and :class:`~.official_weights.OfficialWeightsDialog` (Models > Get official
  weights...); importing/removing weights refreshes the dock and the Auto choice.

Runs use the document as it is when Run is pressed: ``document.image`` + ``mask``, and when
the canvas is extended (margins > 0) the worker outpaints the image by the margins (the
result then has the canvas size). A result is kept in ``document.results`` (the Layers dock
lists it) and shown as the pending layer; **Accept** hands it to ``Document.accept_result``
(ONE undo item: same size, an image patch limited to the run's mask + clearing that mask;
outpainting, the canvas replaced), **Discard** drops it. A cancelled or failed run leaves the
document untouched.

Dialogs are attributes (``ask_missing_weights``) so tests can script them.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QLabel, QMessageBox, QPushButton,
                               QScrollArea, QSizePolicy, QToolBar, QVBoxLayout, QWidget)

from inpaint_gui.core.margins import Margins
from inpaint_gui.core.project import ResultEntry
from inpaint_gui.core.result import ResultLayer
from inpaint_gui.engine.settings import RunSettings

from .compare import CompareGrid
from .document import Document
from .models_dock import ModelsDock, bind_runner
from .result_layer import PeekKeyFilter, ResultControls, ResultItem
from .worker import BAD_WEIGHTS, MISSING_WEIGHTS, FillResult, FillRunner

log = logging.getLogger(__name__)

FALLBACK_MODEL = "telea"
# answers of ask_missing_weights
FALLBACK, MANAGE = "fallback", "manage"
SETTINGS_PREFIX = "models_dock"


@dataclass
class _Job:
    kind: str                # "run" | "compare"
    image: np.ndarray        # document.image when the run started (treated as immutable)
    mask: np.ndarray         # copy of the mask when the run started
    margins: Margins
    settings: List[RunSettings]


@dataclass
class Pending:
    """The result layer being shown (not yet accepted or discarded)."""

    entry: ResultEntry
    margins: Margins
    item: ResultItem
    run_mask: Optional[np.ndarray]  # where the fill was asked for (same-size results)

    @property
    def outpaint(self) -> bool:
        return not self.margins.is_zero()


class CompareDialog(QDialog):
    """Non-modal window holding a :class:`CompareGrid`."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compare models")
        self.setObjectName("CompareDialog")
        self.setModal(False)
        self.resize(1100, 760)
        lay = QVBoxLayout(self)
        hint = QLabel("Wheel zooms and dragging pans every view together. "
                      "Double-click a result or press \u201cUse this\u201d to keep it as the "
                      "result layer.", self)
        hint.setWordWrap(True)
        lay.addWidget(hint)
        self.grid = CompareGrid(self)
        lay.addWidget(self.grid, 1)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.fit_button = QPushButton("Fit", self)
        self.fit_button.clicked.connect(self.grid.fit_all)
        box.addButton(self.fit_button, QDialogButtonBox.ButtonRole.ActionRole)
        box.rejected.connect(self.reject)
        lay.addWidget(box)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        QTimer.singleShot(0, self.grid.fit_all)  # cells have their real size now


def result_name(res: FillResult) -> str:
    from inpaint_gui.engine.registry import short_title
    title = short_title(res.model)
    w = "" if res.weights in ("", "default") else f" ({res.weights})"
    return f"{title}{w} \u00b7 {res.seconds:.1f} s"


class FillController(QObject):
    """Owns the runner, the models dock, the pending result layer and the compare dialog.

    Signals: ``result_shown(ResultEntry)``, ``result_cleared()``.
    """

    result_shown = Signal(object)
    result_cleared = Signal()

    def __init__(self, window, runner: Optional[FillRunner] = None) -> None:
        super().__init__(window)
        self.window = window
        self.document: Document = window.document
        self.canvas = window.canvas
        self.runner = runner if runner is not None else FillRunner(self)
        if self.runner.parent() is None:
            self.runner.setParent(self)
        self.pending: Optional[Pending] = None
        self.compare_dialog: Optional[CompareDialog] = None
        self.manager_dialog = None
        self.official_dialog = None
        self.last_results: List[FillResult] = []
        self._job: Optional[_Job] = None
        self._compare_job: Optional[_Job] = None
        self._last_settings: Optional[RunSettings] = None
        self._run_masks: Dict[str, np.ndarray] = {}  # entry id -> mask of its run
        self._mask_was_visible: Optional[bool] = None
        self._busy_accepting = False
        self._available: Optional[set] = None
        # dialog hook (tests replace it): (message, kind) -> FALLBACK | MANAGE | ""
        self.ask_missing_weights = self._ask_missing_weights

        self._build_dock()
        self._build_result_bar()
        self._build_actions()
        self.peek = PeekKeyFilter(None, parent=self)
        self.canvas.installEventFilter(self.peek)
        window.installEventFilter(self.peek)  # also when a dock has the focus

        self._auto_timer = QTimer(self)
        self._auto_timer.setSingleShot(True)
        self._auto_timer.setInterval(150)
        self._auto_timer.timeout.connect(self.update_auto_choice)

        d = self.document
        d.reset.connect(self._on_reset)
        d.image_changed.connect(self._on_image_changed)
        d.margins_changed.connect(self._on_margins_changed)
        d.mask_changed.connect(self._on_mask_changed)
        d.mask_committed.connect(self._on_mask_committed)
        window.layers_panel.result_activated.connect(self.show_entry)
        window.settings_saving.connect(self.save_state)
        window.closing.connect(self.shutdown)

        r = self.runner
        r.finished.connect(self._on_finished)
        r.compare_finished.connect(self._on_compare_finished)
        r.failed.connect(self._on_failed)
        r.cancelled.connect(self._on_cancelled)
        r.notice.connect(self._on_notice)
        r.cancelling.connect(lambda text: self.window.status_message(text, 0))
        r.running_changed.connect(self._on_running_changed)
        self.restore_state()
        self._on_running_changed(False)
        self.update_auto_choice()

    # ================================================================== construction
    def _build_dock(self) -> None:
        dock = self.dock = ModelsDock(self.window)
        dock.setObjectName("models_dock")
        body = dock.widget()
        scroll = QScrollArea(dock)  # the panel stays usable in a short window
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        dock.setWidget(scroll)
        self.window.set_models_panel(dock)
        bind_runner(dock, self.runner)
        dock.run_requested.connect(self.run)
        dock.compare_requested.connect(self.compare)
        dock.manage_models_requested.connect(self.open_model_manager)
        dock.auto_run_toggled.connect(self._sync_auto_run_action)

    def _build_result_bar(self) -> None:
        w = self.window
        bar = self.result_bar = QToolBar("Result", w)
        bar.setObjectName("result_toolbar")
        bar.setMovable(False)
        self.result_label = QLabel(bar)
        self.result_label.setObjectName("resultName")
        self.result_label.setContentsMargins(6, 0, 8, 0)
        self.result_label.setStyleSheet("font-weight: bold")
        self.controls = ResultControls(bar)
        for slider in (self.controls.opacity_slider, self.controls.split_slider):
            slider.setMinimumWidth(110)
            slider.setMaximumWidth(200)
        self.controls.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Preferred)
        self.controls.accept_button.setToolTip("Merge the result into the image "
                                               "(one undo step; Ctrl+Shift+Enter)")
        self.controls.discard_button.setToolTip("Drop the result")
        bar.addWidget(self.result_label)
        bar.addWidget(self.controls)
        self.controls.accept_requested.connect(self.accept)
        self.controls.discard_requested.connect(self.discard)
        w.addToolBarBreak(Qt.ToolBarArea.TopToolBarArea)
        w.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        bar.toggleViewAction().setVisible(False)  # shown only while a result is pending
        bar.setVisible(False)

    def _build_actions(self) -> None:
        w = self.window
        A = w.add_action
        self.act_run = A("fill_run", "&Run", self.dock.request_run,
                         ["Ctrl+Return", "Ctrl+Enter"], "run",
                         "Fill the masked area with the selected model")
        self.act_compare = A("fill_compare", "&Compare Checked Models", self.dock.request_compare,
                             "Ctrl+Shift+M", "compare", "Run every checked model and compare")
        self.act_cancel = A("fill_cancel", "&Cancel Run", self.cancel, None, "stop",
                            "Stop the running fill (the image is left untouched)")
        self.act_accept = A("result_accept", "&Accept Result", self.accept,
                            ["Ctrl+Shift+Return", "Ctrl+Shift+Enter"], "",
                            "Merge the result into the image (one undo step)")
        self.act_discard = A("result_discard", "&Discard Result", self.discard, None, "",
                             "Drop the result layer")
        self.act_auto_run = A("fill_auto_run", "Run on Stroke &Release",
                              lambda on: self.dock.set_auto_run(on), None, "",
                              "Fill automatically after every mask stroke", checkable=True)
        self.act_manage = A("models_manage", "&Manage weights\u2026", self.open_model_manager,
                            None, "", "Import, inspect or remove model weights")
        self.act_official = A("models_official", "&Get official weights\u2026",
                              self.open_official_weights, None, "",
                              "Where each model's official checkpoints come from; import them")
        m = self.menu = w.add_menu("models", "M&odels")
        for a in (self.act_run, self.act_compare, self.act_cancel, None, self.act_accept,
                  self.act_discard, None, self.act_auto_run, None, self.act_manage,
                  self.act_official):
            m.addSeparator() if a is None else m.addAction(a)
        tb = w.main_toolbar
        tb.addSeparator()
        tb.addAction(self.act_run)
        tb.addAction(self.act_cancel)
        tb.addAction(self.act_compare)
        self._update_result_actions()

    # ================================================================== persistence
    def restore_state(self) -> None:
        try:
            self.dock.restore_state(self.window.settings, SETTINGS_PREFIX)
        except Exception:  # noqa: BLE001 - bad settings must not stop the app
            log.exception("could not restore the models dock settings")
        self._sync_auto_run_action(self.dock.auto_run())

    def save_state(self, qsettings=None) -> None:
        self.dock.save_state(qsettings if qsettings is not None else self.window.settings,
                             SETTINGS_PREFIX)

    def shutdown(self) -> None:
        """Window closing: stop runs, close helper windows."""
        self.runner.shutdown()
        for dlg in (self.compare_dialog, self.manager_dialog, self.official_dialog):
            if dlg is not None:
                dlg.close()

    def _sync_auto_run_action(self, on: bool) -> None:
        if self.act_auto_run.isChecked() != bool(on):
            self.act_auto_run.blockSignals(True)
            self.act_auto_run.setChecked(bool(on))
            self.act_auto_run.blockSignals(False)

    # ================================================================== auto choice
    def available_models(self) -> set:
        if self._available is None:
            from inpaint_gui.engine.auto import available_models
            self._available = available_models()
        return self._available

    def schedule_auto_update(self) -> None:
        self._auto_timer.start()

    def update_auto_choice(self) -> None:
        """Recompute the Auto entry's one-line explanation for the current mask/margins."""
        self._auto_timer.stop()
        d = self.document
        if d.is_empty():
            self.dock.set_auto_choice(None)
            return
        from inpaint_gui.engine.auto import choose_model
        try:
            choice = choose_model(d.image.shape, d.mask, tuple(d.margins),
                                  available=self.available_models(), image=d.image)
        except Exception as exc:  # noqa: BLE001 - the label must never break editing
            log.warning("auto choice failed: %s", exc)
            choice = None
        self.dock.set_auto_choice(choice)

    # ================================================================== document events
    def _on_reset(self) -> None:
        """Another document: stop the run, drop the layer (its entry went with the old doc)."""
        self.dock.set_outpainting(not self.document.margins.is_zero())
        self._job = None
        if self.runner.is_running():
            self.runner.cancel()
        self._clear_pending(remove_entry=False)
        self._run_masks.clear()
        if self.compare_dialog is not None:
            self.compare_dialog.grid.clear()
            self.compare_dialog.hide()
        self.schedule_auto_update()

    def _on_image_changed(self) -> None:
        self.schedule_auto_update()
        p = self.pending
        if p is None or self._busy_accepting:
            return
        d = self.document
        if p.outpaint:
            if p.entry.image.shape[:2] != d.canvas_shape() or d.margins != p.margins:
                self._drop_stale()
            return
        if p.entry.image.shape != d.image.shape:
            self._drop_stale()
            return
        # same size, other pixels (undo/redo): show the fill over the current image
        if p.run_mask is not None and p.item.layer is not None \
                and p.item.layer.original is not d.image:
            sel = (p.run_mask > 0)[..., None]
            shown = np.where(sel, p.entry.image, d.image)
            p.item.set_result(shown, original=d.image)

    def _on_margins_changed(self, _m=None) -> None:
        self.dock.set_outpainting(not self.document.margins.is_zero())
        self.schedule_auto_update()
        p = self.pending
        if p is not None and p.outpaint and not self._busy_accepting \
                and self.document.margins != p.margins:
            self._drop_stale()

    def _on_mask_changed(self, _bbox=None) -> None:
        if not self.document.editing_mask:  # undo/redo, mask operations; strokes: on commit
            self.schedule_auto_update()

    def _on_mask_committed(self, _bbox=None) -> None:
        self.schedule_auto_update()
        if self._busy_accepting or not self.dock.auto_run():
            return
        d = self.document
        if d.is_empty() or (d.mask_is_empty() and d.margins.is_zero()):
            return
        self.dock.request_run()

    def _drop_stale(self) -> None:
        self._clear_pending(remove_entry=False)
        self.window.status_message("The result layer no longer fits the image and was hidden "
                                   "(it stays in the Layers list)", 6000)

    # ================================================================== running
    def _can_start(self) -> bool:
        d = self.document
        if d.is_empty():
            self._say("Open an image first", error=True)
            return False
        if self.canvas.tool.active:
            return False  # mid-gesture (e.g. Ctrl+Enter while dragging)
        if d.mask_is_empty() and d.margins.is_zero():
            self._say("Paint over what to remove (or extend the canvas) first", error=True)
            return False
        return True

    def _say(self, text: str, error: bool = False, ms: int = 6000) -> None:
        self.dock.show_message(text, error=error)
        self.window.status_message(text, ms)

    def _start_job(self, kind: str, runs: List[RunSettings]) -> int:
        d = self.document
        image, mask, margins = d.image, d.mask.copy(), d.margins
        self._job = _Job(kind, image, mask, margins, list(runs))
        m = tuple(margins)
        if kind == "compare":
            job_id = self.runner.compare(image, mask, runs, margins=m)
        else:
            job_id = self.runner.run(image, mask, runs[0], margins=m)
        what = "Outpainting" if not margins.is_zero() else "Filling"
        names = ", ".join(s.model for s in runs)
        self.window.status_message(f"{what} with {names}\u2026 (Cancel stops it)", 0)
        if not margins.is_zero() and not d.mask_is_empty():
            self.dock.show_message("outpainting fills the canvas extension; the mask inside "
                                   "the image is kept for a later run")
        return job_id

    def run(self, settings: Optional[RunSettings] = None) -> bool:
        """Start a fill with ``settings`` (default: the dock's current settings)."""
        if settings is None:
            try:
                settings = self.dock.settings()
            except ValueError as exc:
                self._say(str(exc), error=True)
                return False
        if not self._can_start():
            return False
        self._last_settings = settings
        self._start_job("run", [settings])
        return True

    def compare(self, runs: Optional[List[RunSettings]] = None) -> bool:
        """Run several models on the same input and show them side by side."""
        if runs is None:
            try:
                runs = self.dock.compare_settings()
            except ValueError as exc:
                self._say(str(exc), error=True)
                return False
        runs = list(runs)
        if not runs:
            self._say("Tick the Compare box of at least one model", error=True)
            return False
        if not self._can_start():
            return False
        self._last_settings = runs[0]
        self._start_job("compare", runs)
        return True

    def cancel(self) -> None:
        if self.runner.is_running():
            self.runner.cancel()  # ``cancelling`` puts what happens meanwhile in the status bar

    def is_running(self) -> bool:
        return self.runner.is_running()

    def _on_running_changed(self, running: bool) -> None:
        self.act_cancel.setEnabled(bool(running))

    def _on_notice(self, text: str) -> None:
        self.window.status_message(text, 10000)

    def _job_still_fits(self, job: _Job) -> bool:
        d = self.document
        return (not d.is_empty() and d.image.shape == job.image.shape
                and d.margins == job.margins)

    def _on_finished(self, res: FillResult) -> None:
        job, self._job = self._job, None
        if job is None:
            return
        if not self._job_still_fits(job):
            self._say("The image or canvas changed during the run: result dropped "
                      "(run again)", error=True)
            return
        self.show_fill_result(res, job)
        extra = f" \u2014 {'; '.join(res.notes)}" if res.notes else ""
        self.window.status_message(f"{result_name(res)}: Accept (Ctrl+Shift+Enter) or "
                                   f"Discard; hold \\ to see the original{extra}", 10000)

    def _on_compare_finished(self, results: list) -> None:
        job, self._job = self._job, None
        if job is None:
            return
        self.last_results = list(results)
        dlg = self.compare_dialog
        if dlg is None:
            dlg = self.compare_dialog = CompareDialog(self.window)
            dlg.grid.chosen.connect(self._on_compare_chosen)
        self._compare_job = job
        # failed models show the input instead (same-size runs only)
        dlg.grid.set_results(results, original=job.image if job.margins.is_zero() else None)
        dlg.show()
        dlg.raise_()
        ok = sum(1 for r in results if r.ok)
        self.window.status_message(f"Compared {ok} of {len(results)} models: pick one in the "
                                   "comparison window", 8000)

    def _on_compare_chosen(self, index: int) -> None:
        dlg = self.compare_dialog
        job = self._compare_job
        if dlg is None or job is None:
            return
        res = dlg.grid.result(index)
        if not self._job_still_fits(job):
            self._say("The image or canvas changed since the comparison: run it again",
                      error=True)
            return
        self.show_fill_result(res, job)
        dlg.hide()

    def _on_failed(self, message: str, kind: str) -> None:
        self._job = None
        self.window.status_message(f"Fill failed: {message}", 10000)
        if kind not in (MISSING_WEIGHTS, BAD_WEIGHTS):
            return
        answer = self.ask_missing_weights(message, kind)
        if answer == FALLBACK:
            base = self._last_settings or RunSettings()
            self.run(base.with_model(FALLBACK_MODEL, None))
        elif answer == MANAGE:
            self.open_model_manager()

    def _ask_missing_weights(self, message: str, kind: str) -> str:
        box = QMessageBox(self.window)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Model weights missing" if kind == MISSING_WEIGHTS
                           else "Model weights unusable")
        box.setText(message)
        box.setInformativeText("Fill with the classical Telea method instead, or open the "
                               "model manager to import the weights?")
        telea = box.addButton("Use Telea (classical)", QMessageBox.ButtonRole.AcceptRole)
        manage = box.addButton("Manage weights\u2026", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(telea)
        box.exec()
        clicked = box.clickedButton()
        if clicked is telea:
            return FALLBACK
        if clicked is manage:
            return MANAGE
        return ""

    def _on_cancelled(self) -> None:
        self._job = None
        self.window.status_message("Run cancelled \u2014 the image is unchanged", 5000)

    # ================================================================== result layer
    def show_fill_result(self, res: FillResult, job: _Job) -> Optional[ResultEntry]:
        """Keep ``res`` in the document's results and show it as the pending layer."""
        if not getattr(res, "ok", True) or res.array is None:
            return None
        meta = {"model": res.model, "weights": res.weights, "seconds": round(res.seconds, 3),
                "reason": res.reason, "notes": list(res.notes)}
        if res.settings is not None:
            try:
                meta["settings"] = res.settings.to_dict()
            except Exception:  # noqa: BLE001
                pass
        entry = ResultEntry(image=np.ascontiguousarray(res.array), name=result_name(res),
                            meta=meta, margins=job.margins)
        if job.margins.is_zero():
            self._run_masks[entry.id] = job.mask
        self._clear_pending(remove_entry=True)
        self.document.add_result(entry)
        self._show(entry, job.margins, job.mask if job.margins.is_zero() else None)
        return entry

    def show_entry(self, entry: ResultEntry) -> bool:
        """Show a kept result again (Layers dock double click) if it fits the canvas."""
        d = self.document
        if self.pending is not None and self.pending.entry is entry:
            return True
        m = Margins.coerce(entry.margins)
        img = entry.image
        if img.shape == d.image.shape:
            m = Margins()
        elif not (m == d.margins and img.shape[:2] == d.canvas_shape()):
            self.window.status_message(f"\u201c{entry.name}\u201d does not fit the current "
                                       "canvas", 5000)
            return False
        if img.dtype != d.image.dtype:
            return False
        self._clear_pending(remove_entry=True)
        self._show(entry, m, self._run_masks.get(entry.id) if m.is_zero() else None)
        return True

    def _show(self, entry: ResultEntry, margins: Margins, run_mask) -> None:
        d = self.document
        if margins.is_zero():
            original = d.image
            shown = entry.image
            if run_mask is not None and run_mask.shape == d.image.shape[:2]:
                shown = np.where((run_mask > 0)[..., None], entry.image, d.image)
            else:
                run_mask = None
        else:
            original = d.canvas_arrays()[0]
            shown = entry.image
        layer = ResultLayer(original=original, result=shown, name=entry.name)
        item = ResultItem(layer)
        item.setPos(-margins.left, -margins.top)
        self.canvas.add_overlay_item(item)
        self.pending = Pending(entry, margins, item, run_mask)
        self.peek.item = item
        self.controls.bind(item)
        if not margins.is_zero():
            # opacity would blend the new area with nothing: accept takes the full result
            self.controls.opacity_slider.setEnabled(False)
        self.result_label.setText(entry.name)
        self.result_label.setToolTip(entry.meta.get("reason", "") or entry.name)
        # the red mask overlay would hide the fill: hide it while the result is shown
        _c, _o, visible = self.canvas.mask_style()
        if self._mask_was_visible is None:
            self._mask_was_visible = visible
        if visible:
            self.canvas.set_mask_style(visible=False)
        self.result_bar.setVisible(True)
        self._update_result_actions()
        self.result_shown.emit(entry)

    def _clear_pending(self, remove_entry: bool) -> None:
        p, self.pending = self.pending, None
        if p is None:
            return
        scene = p.item.scene()
        if scene is not None:
            scene.removeItem(p.item)
        self.peek.item = None
        self.controls.bind(None)
        self.result_label.setText("")
        self.result_bar.setVisible(False)
        if self._mask_was_visible is not None:
            if self._mask_was_visible and not self.canvas.mask_style()[2]:
                self.canvas.set_mask_style(visible=True)
            self._mask_was_visible = None
        if remove_entry and not p.entry.accepted and \
                any(r is p.entry for r in self.document.results):
            self.document.remove_result(p.entry)
            self._run_masks.pop(p.entry.id, None)
        self._update_result_actions()
        self.result_cleared.emit()

    def _update_result_actions(self) -> None:
        has = self.pending is not None
        self.act_accept.setEnabled(has)
        self.act_discard.setEnabled(has)

    def discard(self) -> None:
        """Drop the pending result (the image is unchanged)."""
        if self.pending is None:
            return
        name = self.pending.entry.name
        self._clear_pending(remove_entry=True)
        self.window.status_message(f"Discarded {name}", 3000)

    def accept(self) -> bool:
        """Merge the pending result into the image as one undo item
        (:meth:`Document.accept_result`)."""
        p = self.pending
        if p is None:
            return False
        d = self.document
        entry = p.entry
        fits = entry.image.shape == d.image.shape or (
            p.outpaint and d.margins == p.margins and entry.image.shape[:2] == d.canvas_shape())
        if not fits:
            self._drop_stale()
            return False
        opacity = p.item.layer.opacity if p.item.layer is not None else 1.0
        self._busy_accepting = True  # the layer stays shown until the document has changed
        try:
            ok = d.accept_result(entry, opacity, p.run_mask)
        except ValueError as exc:
            self.window.show_error("Cannot accept the result", str(exc))
            return False
        finally:
            self._busy_accepting = False
        self._clear_pending(remove_entry=False)
        self.schedule_auto_update()
        if ok:
            self.window.status_message(f"Accepted {entry.name} (Ctrl+Z undoes it)", 4000)
        else:
            self.window.status_message("The result does not change the image", 4000)
        return ok

    # ================================================================== model manager
    def open_model_manager(self):
        """Show the model manager (non-modal); importing/removing weights refreshes the dock."""
        from .model_manager import ModelManagerDialog
        created = self.manager_dialog is None
        if created:
            self.manager_dialog = ModelManagerDialog(self.window)
            self.manager_dialog.weights_changed.connect(self._on_weights_changed)
            self.manager_dialog.official_requested.connect(self.open_official_weights)
        return self._present(self.manager_dialog, created)

    def open_official_weights(self):
        """Show *Get official weights* (non-modal); an import refreshes the dock and the
        model manager."""
        from .official_weights import OfficialWeightsDialog
        created = self.official_dialog is None
        if created:
            self.official_dialog = OfficialWeightsDialog(self.window)
            self.official_dialog.weights_changed.connect(self._on_weights_changed)
        return self._present(self.official_dialog, created)

    @staticmethod
    def _present(dlg, created: bool):
        """Show a non-modal dialog in front, re-read unless it was just made."""
        if not created:
            dlg.refresh()
        dlg.show()
        dlg.raise_()
        dlg.activateWindow()
        return dlg

    def _on_weights_changed(self) -> None:
        self._available = None
        if self.manager_dialog is not None:
            self.manager_dialog.refresh()
        self.dock.refresh_models()
        self.update_auto_choice()


def install(window, runner: Optional[FillRunner] = None) -> FillController:
    """Add the model-running GUI to ``window`` (idempotent); returns the controller, also
    kept as ``window.fill_controller``."""
    ctl = getattr(window, "fill_controller", None)
    if ctl is not None:
        return ctl
    ctl = FillController(window, runner)
    window.fill_controller = ctl
    return ctl
