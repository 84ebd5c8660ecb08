"""The "Models" dock: pick a model (or Auto), its weights, HD strategy, seams, device; run.

The dock only *asks*: it emits ``run_requested(RunSettings)``, ``compare_requested(list)``
and ``cancel_requested()``; the main window runs the job (:class:`~.worker.FillRunner`) and
feeds progress back with :meth:`ModelsDock.set_running` / :meth:`ModelsDock.set_progress`.
"""
from __future__ import annotations

import json
import time
from typing import Optional

from PySide6.QtCore import QSignalBlocker, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QStandardItemModel
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDockWidget, QFormLayout, QHBoxLayout,
                               QHeaderView, QLabel, QProgressBar, QPushButton, QSizePolicy,
                               QSpinBox, QTabWidget, QTreeWidget, QTreeWidgetItem, QVBoxLayout,
                               QWidget)

from inpaint_gui.engine import devices, registry, weights
from inpaint_gui.engine.pipeline import STRATEGIES, HDStrategy
from inpaint_gui.engine.blending import BLEND_MODES
from inpaint_gui.engine.devices import PRECISIONS
from inpaint_gui.engine.settings import AUTO_MODEL, RunSettings

MODEL_COL, WEIGHTS_COL, COMPARE_COL = 0, 1, 2
ROLE_NAME = Qt.ItemDataRole.UserRole
ROLE_OUTPAINT = Qt.ItemDataRole.UserRole + 1  # the model can extend a canvas (spec.can_outpaint)
ROLE_TIP = Qt.ItemDataRole.UserRole + 2       # the model row's own tooltip
STATUS_TEXT = {"none needed": "built-in", "starter": "starter", "official": "official",
               "imported": "imported", "missing": "missing", "broken": "broken",
               "unavailable": "unavailable"}
STATUS_COLOUR = {"missing": QColor(200, 60, 60), "broken": QColor(200, 60, 60),
                 "starter": QColor(200, 140, 0),
                 "official": QColor(40, 150, 60), "imported": QColor(40, 110, 190),
                 "unavailable": QColor(200, 60, 60)}
UNAVAILABLE_TITLE_COLOUR = QColor(130, 130, 130)
BLEND_TITLES = {"none": "None", "feather": "Feather", "poisson": "Poisson", "color": "Colour match"}


def status_text(status: str, tip: str) -> str:
    """The Weights column: the status, plus how many installed files are broken
    (``model_status``'s tooltip lists each with its reason)."""
    text = STATUS_TEXT.get(status, status)
    n = sum(1 for line in tip.splitlines() if line.startswith("broken: "))
    return f"{text} ({n} broken)" if n and status != "broken" else text


def model_status(spec) -> "tuple[str, str]":
    """(status key, tooltip) of a model's weights: see :func:`weights.weight_status`; the
    tooltip has one "broken: <file>: <reason>" line per broken file."""
    try:
        status, ws, path = weights.weight_status(spec)
    except Exception as exc:  # noqa: BLE001 - a broken file must not break the list
        return "missing", str(exc)
    if status == "unavailable":
        return status, f"unavailable: {registry.unavailable_reason(spec)}"
    if status == "none needed":
        return status, "no weights needed"
    if path is None:
        files = ", ".join(w.filename for w in spec.weight_sets) or "(no weight sets registered)"
        return status, f"no weights found; expected {files} in {weights.user_models_dir()}"
    broken = [f"broken: {f.path.name}: {f.problem}" for f in weights.weight_files(spec)
              if not f.usable]
    if status == "broken":
        return status, "no usable weight file\n" + "\n".join(broken)
    return status, "\n".join([f"{ws.name} ({ws.kind}): {path}"] + broken)


class _PageTabs(QTabWidget):
    """Tabs as tall as the page shown (a QTabWidget is as tall as its tallest page): the
    Model page, the one usually open, is shorter than HD strategy's, and the panel's Run,
    progress and status keep that room."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.currentChanged.connect(lambda _index: self.updateGeometry())

    def sizeHint(self) -> QSize:
        return self._fit(super().sizeHint(), QWidget.sizeHint)

    def minimumSizeHint(self) -> QSize:
        return self._fit(super().minimumSizeHint(), QWidget.minimumSizeHint)

    def _fit(self, hint: QSize, page_hint) -> QSize:
        """``hint`` (the tallest page's) with the current page's height instead."""
        page = self.currentWidget()
        if page is None:
            return hint
        tallest = max(page_hint(self.widget(i)).height() for i in range(self.count()))
        return QSize(hint.width(), hint.height() - tallest + page_hint(page).height())


class ModelsDock(QDockWidget):
    """Signals:

    run_requested(RunSettings)        - Run clicked (or :meth:`request_run`, for Ctrl+Enter).
    compare_requested(list)           - Compare clicked: one RunSettings per checked model.
    cancel_requested()                - Cancel clicked.
    auto_run_toggled(bool)            - "Run on stroke release" changed.
    manage_models_requested()         - "Manage models…" clicked (open the model manager).
    model_changed(str)                - the selected model changed (window may refresh Auto).
    settings_changed(RunSettings)     - any setting changed (persist with :meth:`save_state`).
    """

    run_requested = Signal(object)
    compare_requested = Signal(list)
    cancel_requested = Signal()
    auto_run_toggled = Signal(bool)
    manage_models_requested = Signal()
    model_changed = Signal(str)
    settings_changed = Signal(object)

    def __init__(self, parent: Optional[QWidget] = None, title: str = "Models") -> None:
        super().__init__(title, parent)
        self.setObjectName("ModelsDock")
        self._running = False
        self._outpainting = False
        self._t0 = 0.0
        self._auto_reason = ""
        self._stage = ""
        self._cancel_note = ""
        self._built = False
        self._build()
        self.refresh_models()
        self._built = True
        self._tick = QTimer(self)
        self._tick.setInterval(100)
        self._tick.timeout.connect(self._update_elapsed)

    # ------------------------------------------------------------------ construction
    def _build(self) -> None:
        body = QWidget(self)
        lay = QVBoxLayout(body)
        lay.setContentsMargins(6, 6, 6, 6)

        self.tree = QTreeWidget(body)
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Model", "Weights", "Compare"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QTreeWidget.SelectionMode.SingleSelection)
        hdr = self.tree.header()
        hdr.setSectionResizeMode(MODEL_COL, QHeaderView.ResizeMode.Stretch)
        hdr.setSectionResizeMode(WEIGHTS_COL, QHeaderView.ResizeMode.ResizeToContents)
        hdr.setSectionResizeMode(COMPARE_COL, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.currentItemChanged.connect(self._on_current_changed)
        self.tree.itemChanged.connect(self._on_item_changed)
        lay.addWidget(self.tree)  # as tall as its rows (see _fit_tree_height)

        self.auto_label = QLabel(body)
        self.auto_label.setWordWrap(True)
        self.auto_label.setObjectName("autoReason")
        # a line even while empty (no image open yet): the first-start layout sizes the panel
        # from its size hint
        self.auto_label.setMinimumHeight(self.auto_label.fontMetrics().lineSpacing())
        lay.addWidget(self.auto_label)

        # why the selected model cannot run here (e.g. a native library that did not load)
        self.unavailable_label = QLabel(body)
        self.unavailable_label.setWordWrap(True)
        self.unavailable_label.setObjectName("modelUnavailable")
        self.unavailable_label.setStyleSheet("color: #c33;")
        self.unavailable_label.setVisible(False)
        lay.addWidget(self.unavailable_label)

        # settings in tabs so the model list and Run/progress stay visible in a short dock
        self.settings_tabs = _PageTabs(body)
        page = QWidget(self.settings_tabs)
        form = QFormLayout(page)
        self.weights_combo = QComboBox(body)
        self.weights_combo.setToolTip("Weight set of the selected model")
        self.weights_combo.currentIndexChanged.connect(self._emit_settings)
        form.addRow("Weights", self.weights_combo)
        self.device_combo = QComboBox(body)
        avail = set(devices.available_devices())
        for d in devices.DEVICES:
            self.device_combo.addItem(d.upper() if d != "auto" else "Auto", d)
            if d not in ("auto",) and d not in avail:
                self._disable_item(self.device_combo, self.device_combo.count() - 1,
                                   f"{d} is not available on this computer")
        self.device_combo.currentIndexChanged.connect(self._emit_settings)
        form.addRow("Device", self.device_combo)
        self.precision_combo = QComboBox(body)
        for p in PRECISIONS:
            self.precision_combo.addItem(p, p)
        self.precision_combo.setToolTip(
            "fp32 gives the reference result. fp16/bf16 are faster and differ slightly: both "
            "apply on CUDA, bf16 also on CPUs with native bf16"
            + (" (this one has it)" if devices.cpu_has_native_bf16() else " (this one does not: fp32 is used)"))
        self.precision_combo.currentIndexChanged.connect(self._emit_settings)
        form.addRow("Precision", self.precision_combo)
        # the selected model's own options (ModelSpec.user_options), e.g. PatchMatch's
        self.options_box = QWidget(page)
        self.options_form = QFormLayout(self.options_box)
        self.options_form.setContentsMargins(0, 0, 0, 0)
        self.option_spins: "dict[str, QSpinBox]" = {}
        self._option_values: "dict[str, dict]" = {}
        form.addRow(self.options_box)
        self.manage_button = QPushButton("Manage models…", body)
        self.manage_button.clicked.connect(self.manage_models_requested)
        form.addRow("", self.manage_button)
        self.settings_tabs.addTab(page, "Model")

        hd = QWidget(self.settings_tabs)
        hd.setToolTip("How images larger than the model's native size are processed")
        hform = QFormLayout(hd)
        self.strategy_combo = QComboBox(hd)
        self.strategy_combo.addItem("Model default", "")
        for s in STRATEGIES:
            self.strategy_combo.addItem(s.capitalize(), s)
        self.strategy_combo.currentIndexChanged.connect(self._on_strategy_changed)
        hform.addRow("Strategy", self.strategy_combo)
        d = HDStrategy()
        self.resize_limit = self._spin(16, 16384, d.resize_limit, " px", "Longest side the model sees (resize)")
        self.crop_trigger = self._spin(16, 16384, d.crop_trigger, " px", "Crop only images larger than this")
        self.crop_margin = self._spin(0, 4096, d.crop_margin, " px", "Context around each hole (crop)")
        self.tile_size = self._spin(0, 8192, d.tile_size, " px", "Tile side (tile); 0 = automatic")
        self.tile_size.setSpecialValueText("automatic")
        self.tile_overlap = self._spin(0, 2048, d.tile_overlap, " px", "Overlap of neighbouring tiles")
        hform.addRow("Resize limit", self.resize_limit)
        hform.addRow("Crop trigger", self.crop_trigger)
        hform.addRow("Crop margin", self.crop_margin)
        hform.addRow("Tile size", self.tile_size)
        hform.addRow("Tile overlap", self.tile_overlap)
        self.settings_tabs.addTab(hd, "HD strategy")

        seam = QWidget(self.settings_tabs)
        seam.setToolTip("Treatment of the border between the fill and the kept pixels")
        sform = QFormLayout(seam)
        self.blend_combo = QComboBox(seam)
        for b in BLEND_MODES:
            self.blend_combo.addItem(BLEND_TITLES.get(b, b), b)
        self.blend_combo.currentIndexChanged.connect(self._emit_settings)
        self.blend_radius = self._spin(0, 512, 8, " px", "Width of the seam treatment")
        sform.addRow("Blend", self.blend_combo)
        sform.addRow("Radius", self.blend_radius)
        self.settings_tabs.addTab(seam, "Seams")
        lay.addWidget(self.settings_tabs)

        self.auto_run_check = QCheckBox("Run on stroke release", body)
        self.auto_run_check.toggled.connect(self.auto_run_toggled)
        lay.addWidget(self.auto_run_check)

        row = QHBoxLayout()
        self.run_button = QPushButton("Run", body)
        self.run_button.setToolTip("Fill the masked area (Ctrl+Enter)")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.request_run)
        self.compare_button = QPushButton("Compare", body)
        self.compare_button.setToolTip("Run every checked model on the same input")
        self.compare_button.clicked.connect(self.request_compare)
        self.cancel_button = QPushButton("Cancel", body)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_requested)
        row.addWidget(self.run_button)
        row.addWidget(self.compare_button)
        row.addWidget(self.cancel_button)
        lay.addLayout(row)

        self.progress_bar = QProgressBar(body)
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setValue(0)
        self.progress_bar.setTextVisible(False)
        lay.addWidget(self.progress_bar)
        self.status_label = QLabel("", body)
        self.status_label.setObjectName("runStatus")
        self.status_label.setWordWrap(True)
        self.status_label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        # a line even while empty: the panel's size hint has room for the run's status
        self.status_label.setMinimumHeight(self.status_label.fontMetrics().lineSpacing())
        lay.addWidget(self.status_label)
        lay.addStretch(1)
        self.setWidget(body)
        self._on_strategy_changed()
        self._update_compare_button()

    def _spin(self, lo: int, hi: int, value: int, suffix: str, tip: str) -> QSpinBox:
        s = QSpinBox(self)
        s.setRange(lo, hi)
        s.setValue(value)
        s.setSuffix(suffix)
        s.setToolTip(tip)
        s.setSingleStep(16 if hi > 600 else 1)
        s.valueChanged.connect(self._emit_settings)
        return s

    @staticmethod
    def _disable_item(combo: QComboBox, index: int, tip: str) -> None:
        model = combo.model()
        if isinstance(model, QStandardItemModel):
            item = model.item(index)
            item.setEnabled(False)
            item.setToolTip(tip)

    # ------------------------------------------------------------------ model list
    def refresh_models(self) -> None:
        """Re-read the registry and weight status (after importing/removing weights)."""
        current = self.selected_model()
        checked = set(self.compare_models())
        blocker = QSignalBlocker(self.tree)
        self.tree.clear()
        auto = QTreeWidgetItem(["Auto", "", ""])
        auto.setData(MODEL_COL, ROLE_NAME, AUTO_MODEL)
        auto.setToolTip(MODEL_COL, "Choose a model from the mask and image size")
        self.tree.addTopLevelItem(auto)
        try:
            specs = registry.list_models()
        except Exception as exc:  # noqa: BLE001
            specs = []
            self.show_message(f"model registry error: {exc}", error=True)
        for spec in specs:
            status, tip = model_status(spec)
            item = QTreeWidgetItem([spec.title, status_text(status, tip), ""])
            item.setData(MODEL_COL, ROLE_NAME, spec.name)
            item.setData(WEIGHTS_COL, ROLE_NAME, status)
            item.setToolTip(MODEL_COL, f"{spec.name} ({spec.task}): {spec.description}")
            item.setToolTip(WEIGHTS_COL, tip)
            colour = STATUS_COLOUR["broken"] if "broken: " in tip else STATUS_COLOUR.get(status)
            if colour is not None:
                item.setForeground(WEIGHTS_COL, colour)
            if status == "unavailable":  # listed with its reason; it cannot run or be compared
                item.setForeground(MODEL_COL, UNAVAILABLE_TITLE_COLOUR)
                item.setToolTip(MODEL_COL, f"{spec.title}: {tip}")
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsUserCheckable)
                item.setData(COMPARE_COL, Qt.ItemDataRole.CheckStateRole, None)
            else:
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(COMPARE_COL, Qt.CheckState.Checked if spec.name in checked
                                   else Qt.CheckState.Unchecked)
            item.setData(MODEL_COL, ROLE_OUTPAINT, bool(spec.can_outpaint))
            item.setData(MODEL_COL, ROLE_TIP, item.toolTip(MODEL_COL))
            self.tree.addTopLevelItem(item)
        del blocker
        self._apply_outpainting()
        self._fit_tree_height()
        self.select_model(current or AUTO_MODEL)
        self._update_auto_row()
        self._update_compare_button()

    def _fit_tree_height(self) -> None:
        """Make room for every model row (up to 12) so the list needs no scrolling."""
        n = min(12, max(1, self.tree.topLevelItemCount()))
        row = self.tree.sizeHintForRow(0) if self.tree.topLevelItemCount() else 0
        row = max(row, self.tree.fontMetrics().height() + 2)
        head = self.tree.header().sizeHint().height()
        self.tree.setFixedHeight(head + n * row + 2 * self.tree.frameWidth() + 2)

    def model_names(self) -> "list[str]":
        """Names listed, in order ("auto" first)."""
        return [self.tree.topLevelItem(i).data(MODEL_COL, ROLE_NAME)
                for i in range(self.tree.topLevelItemCount())]

    def item_for(self, name: str) -> Optional[QTreeWidgetItem]:
        for i in range(self.tree.topLevelItemCount()):
            it = self.tree.topLevelItem(i)
            if it.data(MODEL_COL, ROLE_NAME) == name:
                return it
        return None

    def weight_status_text(self, name: str) -> str:
        it = self.item_for(name)
        return it.text(WEIGHTS_COL) if it is not None else ""

    def selected_model(self) -> str:
        it = self.tree.currentItem() if hasattr(self, "tree") else None
        return it.data(MODEL_COL, ROLE_NAME) if it is not None else ""

    def select_model(self, name: str) -> bool:
        it = self.item_for(name) or self.item_for(AUTO_MODEL)
        if it is None:
            return False
        self.tree.setCurrentItem(it)
        return it.data(MODEL_COL, ROLE_NAME) == name

    def compare_models(self) -> "list[str]":
        out = []
        if not hasattr(self, "tree"):
            return out
        for i in range(self.tree.topLevelItemCount()):
            it = self.tree.topLevelItem(i)
            name = it.data(MODEL_COL, ROLE_NAME)
            if name != AUTO_MODEL and self.is_available(name) \
                    and it.checkState(COMPARE_COL) == Qt.CheckState.Checked:
                out.append(name)
        return out

    def set_compare_models(self, names) -> None:
        names = set(names)
        for i in range(self.tree.topLevelItemCount()):
            it = self.tree.topLevelItem(i)
            name = it.data(MODEL_COL, ROLE_NAME)
            if name != AUTO_MODEL and self.is_available(name):
                it.setCheckState(COMPARE_COL, Qt.CheckState.Checked if name in names
                                 else Qt.CheckState.Unchecked)
        self._update_compare_button()

    def is_available(self, name: str) -> bool:
        """False for a listed model that cannot run on this installation, or cannot extend a
        canvas while the canvas is extended."""
        return not self.blocked_reason(name)

    def blocked_reason(self, name: str) -> str:
        """Why the listed model ``name`` cannot run now ("" when it can)."""
        it = self.item_for(name)
        if it is None or name == AUTO_MODEL:
            return ""
        if it.data(WEIGHTS_COL, ROLE_NAME) == "unavailable":
            return f"{it.text(MODEL_COL)} cannot run here: " + \
                it.toolTip(WEIGHTS_COL).removeprefix("unavailable: ")
        if self._outpainting and not it.data(MODEL_COL, ROLE_OUTPAINT):
            return (f"{it.text(MODEL_COL)} fills holes inside a photo and cannot extend a canvas; "
                    "use Auto, SRN, Telea, Navier-Stokes or PatchMatch")
        return ""

    def set_outpainting(self, on: bool) -> None:
        """The canvas is extended (``on``): offer only the models that can extend it. A
        selected model that cannot moves to Auto; Compare skips those models meanwhile."""
        on = bool(on)
        if on == self._outpainting:
            return
        self._outpainting = on
        self._apply_outpainting()
        if not self.is_available(self.selected_model()):
            self.select_model(AUTO_MODEL)
        self._update_unavailable()
        self._update_compare_button()

    def _apply_outpainting(self) -> None:
        """Grey the rows that cannot extend a canvas while outpainting (and restore them)."""
        for i in range(self.tree.topLevelItemCount()):
            it = self.tree.topLevelItem(i)
            name = it.data(MODEL_COL, ROLE_NAME)
            if name == AUTO_MODEL or it.data(WEIGHTS_COL, ROLE_NAME) == "unavailable":
                continue
            blocked = self._outpainting and not it.data(MODEL_COL, ROLE_OUTPAINT)
            it.setForeground(MODEL_COL, UNAVAILABLE_TITLE_COLOUR if blocked
                             else self.tree.palette().text().color())
            it.setToolTip(MODEL_COL, self.blocked_reason(name) if blocked else it.data(MODEL_COL, ROLE_TIP))

    @Slot()
    def _on_current_changed(self, *_a) -> None:
        self._fill_weights_combo()
        self._build_option_widgets()
        self._update_unavailable()
        self.model_changed.emit(self.selected_model())
        self._emit_settings()

    def _update_unavailable(self) -> None:
        """Show why the selected model cannot run, and keep Run from starting it."""
        name = self.selected_model()
        text = self.blocked_reason(name) if name else ""
        self.unavailable_label.setText(text)
        self.unavailable_label.setVisible(bool(text))
        self.run_button.setEnabled(not text)
        self.options_box.setVisible(bool(self.option_spins) and not text)

    # ------------------------------------------------------------------ model options
    def _spec_of(self, name: str):
        if not name or name == AUTO_MODEL:
            return None
        try:
            return registry.get_spec(name)
        except registry.UnknownModelError:
            return None

    def _build_option_widgets(self) -> None:
        """Spin boxes for the selected model's ``user_options`` (none for most models)."""
        while self.options_form.rowCount():
            self.options_form.removeRow(0)
        self.option_spins = {}
        name = self.selected_model()
        spec = self._spec_of(name)
        for opt in (spec.user_options if spec is not None else ()):
            spin = QSpinBox(self.options_box)
            spin.setRange(opt.minimum, opt.maximum)
            if opt.special:
                spin.setSpecialValueText(opt.special)  # shown at the minimum
            spin.setValue(int(self.model_option_values(name).get(opt.key, opt.default)))
            spin.setToolTip(opt.tooltip)
            spin.setObjectName(f"option_{opt.key}")
            spin.valueChanged.connect(lambda v, n=name, k=opt.key: self._on_option_changed(n, k, v))
            self.options_form.addRow(opt.label, spin)
            self.option_spins[opt.key] = spin
        self.options_box.setVisible(bool(self.option_spins))

    def _on_option_changed(self, name: str, key: str, value: int) -> None:
        self._option_values.setdefault(name, {})[key] = int(value)
        self._emit_settings()

    def model_option_values(self, name: str) -> dict:
        """The options ``name`` runs with: its declared defaults, overridden by the user's."""
        spec = self._spec_of(name)
        if spec is None or not spec.user_options:
            return {}
        vals = {o.key: o.default for o in spec.user_options}
        for k, v in self._option_values.get(name, {}).items():
            o = next((o for o in spec.user_options if o.key == k), None)
            if o is not None and isinstance(v, int) and not isinstance(v, bool) \
                    and o.minimum <= v <= o.maximum:
                vals[k] = v
        return vals

    def set_model_option(self, name: str, key: str, value: int) -> None:
        """Set one option of ``name`` (updates the spin box when that model is selected)."""
        self._option_values.setdefault(name, {})[key] = int(value)
        spin = self.option_spins.get(key) if name == self.selected_model() else None
        if spin is not None:
            spin.setValue(int(value))
        self._emit_settings()

    @Slot()
    def _on_item_changed(self, item, column) -> None:
        if column == COMPARE_COL:
            self._update_compare_button()

    def _update_compare_button(self) -> None:
        n = len(self.compare_models())
        self.compare_button.setText(f"Compare ({n})" if n else "Compare")
        self.compare_button.setEnabled(n >= 1)

    def _fill_weights_combo(self) -> None:
        blocker = QSignalBlocker(self.weights_combo)
        self.weights_combo.clear()
        self.weights_combo.addItem("Best available", None)
        name = self.selected_model()
        spec = None
        if name and name != AUTO_MODEL:
            try:
                spec = registry.get_spec(name)
            except registry.UnknownModelError:
                spec = None
        if spec is not None:
            broken = {f.ws.name: f.problem for f in weights.weight_files(spec) if not f.usable}
            for ws in spec.weight_sets:
                present = weights.find_weight_file(ws) is not None
                state = "" if present and ws.name not in broken else \
                    ", broken" if present else ", missing"
                self.weights_combo.addItem(f"{ws.name} ({ws.kind}{state})",
                                           weights.weight_tag(spec, ws))
                if not present:
                    self._disable_item(self.weights_combo, self.weights_combo.count() - 1,
                                       f"{ws.filename} is not installed")
                elif ws.name in broken:
                    self._disable_item(self.weights_combo, self.weights_combo.count() - 1,
                                       f"{ws.filename}: {broken[ws.name]}")
        self.weights_combo.setEnabled(spec is not None and spec.needs_weights)
        del blocker

    # ------------------------------------------------------------------ auto entry
    def set_auto_choice(self, choice) -> None:
        """Show the current Auto choice (an :class:`~inpaint_gui.engine.auto.AutoChoice` or None)."""
        if choice is None:
            self._auto_reason = ""
        else:
            self._auto_reason = f"{choice.model}: {choice.reason}"
        self._update_auto_row()

    def auto_reason(self) -> str:
        return self._auto_reason

    def _update_auto_row(self) -> None:
        it = self.item_for(AUTO_MODEL)
        if it is not None:
            model = self._auto_reason.split(":", 1)[0] if self._auto_reason else ""
            it.setText(MODEL_COL, f"Auto → {model}" if model else "Auto")
            it.setToolTip(MODEL_COL, self._auto_reason or "Choose a model from the mask and image size")
        self.auto_label.setText(f"Auto: {self._auto_reason}" if self._auto_reason else "")
        self.auto_label.setVisible(bool(self._auto_reason))

    # ------------------------------------------------------------------ settings
    @Slot()
    def _on_strategy_changed(self, *_a) -> None:
        name = self.strategy_combo.currentData() or ""
        self.resize_limit.setEnabled(name in ("", "resize", "crop"))
        self.crop_trigger.setEnabled(name in ("", "crop"))
        self.crop_margin.setEnabled(name in ("", "crop"))
        self.tile_size.setEnabled(name in ("", "tile"))
        self.tile_overlap.setEnabled(name in ("", "tile"))
        self._emit_settings()

    def _strategy(self) -> HDStrategy:
        name = self.strategy_combo.currentData() or "crop"
        return HDStrategy(name=name, resize_limit=self.resize_limit.value(),
                          crop_trigger=self.crop_trigger.value(), crop_margin=self.crop_margin.value(),
                          tile_size=self.tile_size.value(), tile_overlap=self.tile_overlap.value())

    def settings(self, model: Optional[str] = None) -> RunSettings:
        """The settings for running ``model`` (default: the selected one). May raise SettingsError."""
        name = model or self.selected_model() or AUTO_MODEL
        w = self.weights_combo.currentData() if name == self.selected_model() else None
        return RunSettings(model=name, weights=w, strategy=self._strategy(),
                           model_strategy=not self.strategy_combo.currentData(),
                           blend=self.blend_combo.currentData(), blend_radius=self.blend_radius.value(),
                           device=self.device_combo.currentData(),
                           precision=self.precision_combo.currentData(),
                           model_options=self.model_option_values(name))

    def compare_settings(self) -> "list[RunSettings]":
        return [self.settings(name) for name in self.compare_models()]

    def set_settings(self, s: RunSettings) -> None:
        """Show ``s`` in the widgets (e.g. restored from QSettings)."""
        if s.model_options and self._spec_of(s.model) is not None:
            self._option_values.setdefault(s.model, {}).update(dict(s.model_options))
        self.select_model(s.model)
        self._build_option_widgets()
        if s.weights:
            i = self.weights_combo.findData(s.weights)
            if i >= 0:
                self.weights_combo.setCurrentIndex(i)
        self.strategy_combo.setCurrentIndex(0 if s.model_strategy
                                            else max(0, self.strategy_combo.findData(s.strategy.name)))
        for k in ("resize_limit", "crop_trigger", "crop_margin", "tile_size", "tile_overlap"):
            getattr(self, k).setValue(getattr(s.strategy, k))
        self.blend_combo.setCurrentIndex(max(0, self.blend_combo.findData(s.blend)))
        self.blend_radius.setValue(s.blend_radius)
        i = self.device_combo.findData(s.device.split(":")[0])
        self.device_combo.setCurrentIndex(max(0, i))
        self.precision_combo.setCurrentIndex(max(0, self.precision_combo.findData(s.precision)))

    @Slot()
    def _emit_settings(self, *_a) -> None:
        if not self._built:
            return
        try:
            self.settings_changed.emit(self.settings())
        except ValueError:
            pass  # e.g. tile overlap >= tile size while typing; reported on Run

    def auto_run(self) -> bool:
        return self.auto_run_check.isChecked()

    def set_auto_run(self, on: bool) -> None:
        self.auto_run_check.setChecked(bool(on))

    # ------------------------------------------------------------------ persistence
    def save_state(self, qsettings, prefix: str = "models_dock") -> None:
        """Store settings, auto-run and compare selection in a QSettings (JSON string)."""
        try:
            d = self.settings().to_dict()
        except ValueError:
            d = RunSettings().to_dict()
        qsettings.setValue(f"{prefix}/run_settings", json.dumps(d))
        qsettings.setValue(f"{prefix}/auto_run", bool(self.auto_run()))
        qsettings.setValue(f"{prefix}/compare", json.dumps(self.compare_models()))
        qsettings.setValue(f"{prefix}/model_options", json.dumps(self._option_values))

    def restore_state(self, qsettings, prefix: str = "models_dock") -> None:
        raw = qsettings.value(f"{prefix}/run_settings", "")
        try:
            opts = json.loads(qsettings.value(f"{prefix}/model_options", "") or "{}")
            if isinstance(opts, dict):
                self._option_values = {str(k): dict(v) for k, v in opts.items() if isinstance(v, dict)}
        except (ValueError, TypeError):
            pass
        try:
            if raw:
                self.set_settings(RunSettings.from_dict(json.loads(raw), strict=False))
            cmp = qsettings.value(f"{prefix}/compare", "")
            if cmp:
                self.set_compare_models(json.loads(cmp))
        except (ValueError, TypeError):
            pass
        v = qsettings.value(f"{prefix}/auto_run", False)
        self.set_auto_run(v in (True, "true", "1", 1))

    # ------------------------------------------------------------------ actions
    @Slot()
    def request_run(self) -> None:
        """Emit ``run_requested`` with the current settings (connect Ctrl+Enter here)."""
        if not self.is_available(self.selected_model()):  # Ctrl+Enter while one is selected
            self.show_message(self.unavailable_label.text(), error=True)
            return
        try:
            s = self.settings()
        except ValueError as exc:
            self.show_message(str(exc), error=True)
            return
        self.run_requested.emit(s)

    @Slot()
    def request_compare(self) -> None:
        try:
            runs = self.compare_settings()
        except ValueError as exc:
            self.show_message(str(exc), error=True)
            return
        if not runs:
            self.show_message("tick the Compare box of at least one model", error=True)
            return
        self.compare_requested.emit(runs)

    # ------------------------------------------------------------------ progress
    def set_cancelling(self, note: str) -> None:
        """A cancel was asked: show ``note`` until the run ends (it replaces the stage line;
        a model that cannot stop mid-call keeps running meanwhile)."""
        if not self._running:
            return
        self._cancel_note = note
        self.cancel_button.setEnabled(False)
        self._update_elapsed()

    def set_running(self, running: bool) -> None:
        """Switch between idle and running (Cancel enabled, elapsed time ticking)."""
        self._running = bool(running)
        self._cancel_note = ""
        self.cancel_button.setEnabled(self._running)
        if self._running:
            self._t0 = time.perf_counter()
            self.progress_bar.setValue(0)
            self.status_label.setText("starting…")
            self.status_label.setStyleSheet("")
            self._tick.start()
        else:
            self._tick.stop()

    def is_running(self) -> bool:
        return self._running

    @Slot(str, float, float)
    def set_progress(self, stage: str, fraction: float, elapsed: float) -> None:
        self.progress_bar.setValue(int(round(max(0.0, min(1.0, fraction)) * 1000)))
        self._stage = stage
        self._t0 = time.perf_counter() - elapsed
        self._update_elapsed()

    def _update_elapsed(self) -> None:
        stage = self._cancel_note or self._stage or "running"
        self.status_label.setText(f"{stage} · {time.perf_counter() - self._t0:.1f} s")

    def show_message(self, text: str, error: bool = False) -> None:
        """A one-line status (result time, notices, errors) under the progress bar."""
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #c33;" if error else "")

    def finish(self, text: str = "", error: bool = False) -> None:
        """End of a run: stop the clock, fill (or clear) the bar, show ``text``."""
        self.set_running(False)
        self._stage = ""
        self.progress_bar.setValue(0 if error else 1000)
        self.show_message(text, error=error)


def bind_runner(dock: ModelsDock, runner) -> None:
    """Wire a :class:`~.worker.FillRunner`'s feedback into the dock (progress, elapsed time,
    Cancel, outcome line). Starting jobs stays with the window, which owns the document:
    ``dock.run_requested.connect(lambda s: runner.run(image, mask, s, margins))``."""
    runner.running_changed.connect(dock.set_running)
    runner.progress.connect(dock.set_progress)
    runner.notice.connect(lambda text: dock.show_message(text))
    dock.cancel_requested.connect(runner.cancel)
    if hasattr(runner, "cancelling"):
        runner.cancelling.connect(dock.set_cancelling)

    def on_finished(res) -> None:
        extra = f" ({'; '.join(res.notes)})" if getattr(res, "notes", ()) else ""
        dock.finish(f"{res.model} · {res.weights} · {res.seconds:.1f} s{extra}")

    def on_compare(results) -> None:
        ok = [r for r in results if r.ok]
        dock.finish(f"compared {len(ok)} of {len(results)} models")

    runner.finished.connect(on_finished)
    runner.compare_finished.connect(on_compare)
    runner.failed.connect(lambda msg, kind: dock.finish(msg, error=True))
    runner.cancelled.connect(lambda: dock.finish("cancelled"))
