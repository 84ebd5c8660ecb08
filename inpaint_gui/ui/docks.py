"""Dock panels: tool options, mask, canvas (outpaint margins), layers/results."""
from __future__ import annotations

import itertools
import math
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPixmap
from PySide6.QtWidgets import (QCheckBox, QColorDialog, QComboBox, QFormLayout, QGridLayout,
                               QGroupBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                               QPushButton, QSlider, QSpinBox, QToolButton, QVBoxLayout,
                               QWidget)

from inpaint_gui.core.margins import PRESETS, Margins, preset_margins

from .document import Document
from .tools import MAX_BRUSH, MIN_BRUSH, ToolSettings

_merge_keys = itertools.count(1)


def _busy(fn):
    """Run ``fn`` with a wait cursor (mask operations on 24 MP take a fraction of a second)."""
    def wrapper(*a, **k):
        QGuiApplication.setOverrideCursor(Qt.WaitCursor)
        try:
            return fn(*a, **k)
        finally:
            QGuiApplication.restoreOverrideCursor()
    return wrapper


class _SliderSpin(QWidget):
    """A slider and a spin box bound together; ``log`` gives a logarithmic slider."""

    valueChanged = Signal(float)

    def __init__(self, lo: float, hi: float, suffix: str = "", log: bool = False,
                 parent=None) -> None:
        super().__init__(parent)
        self.lo, self.hi, self.log = lo, hi, log
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setRange(0, 1000)
        self.spin = QSpinBox()
        self.spin.setRange(int(lo), int(hi))
        self.spin.setSuffix(suffix)
        self.spin.setKeyboardTracking(False)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.slider, 1)
        lay.addWidget(self.spin)
        self.slider.valueChanged.connect(self._from_slider)
        self.spin.valueChanged.connect(self._from_spin)

    def _to_t(self, v: float) -> int:
        if self.log:
            t = (math.log(max(v, self.lo)) - math.log(self.lo)) / (math.log(self.hi) - math.log(self.lo))
        else:
            t = (v - self.lo) / (self.hi - self.lo)
        return int(round(min(max(t, 0.0), 1.0) * 1000))

    def _from_t(self, t: int) -> float:
        t = t / 1000.0
        if self.log:
            return math.exp(math.log(self.lo) + t * (math.log(self.hi) - math.log(self.lo)))
        return self.lo + t * (self.hi - self.lo)

    def _from_slider(self, t: int) -> None:
        v = round(self._from_t(t))
        self.spin.blockSignals(True)
        self.spin.setValue(int(v))
        self.spin.blockSignals(False)
        self.valueChanged.emit(float(v))

    def _from_spin(self, v: int) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(self._to_t(v))
        self.slider.blockSignals(False)
        self.valueChanged.emit(float(v))

    def setValue(self, v: float) -> None:  # noqa: N802
        for w in (self.slider, self.spin):
            w.blockSignals(True)
        self.spin.setValue(int(round(v)))
        self.slider.setValue(self._to_t(v))
        for w in (self.slider, self.spin):
            w.blockSignals(False)

    def value(self) -> float:
        return float(self.spin.value())


class ToolOptionsPanel(QWidget):
    """Brush size/hardness/spacing/pressure and the rectangle/lasso default mode."""

    def __init__(self, settings: ToolSettings, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings
        form = QFormLayout(self)
        self.size = _SliderSpin(MIN_BRUSH, MAX_BRUSH, " px", log=True)
        self.size.setToolTip("Brush diameter in image pixels  ( [  and  ] )")
        self.hardness = _SliderSpin(0, 100, " %")
        self.hardness.setToolTip("Edge hardness  ( Shift+[  and  Shift+] )")
        self.spacing = _SliderSpin(1, 200, " %")
        self.spacing.setToolTip("Distance between dabs, in % of the diameter")
        self.pressure = QCheckBox("Pen pressure sets the size")
        self.mode = QComboBox()
        for m in ("replace", "add", "subtract", "intersect"):
            self.mode.addItem(m.capitalize(), m)
        self.mode.setToolTip("Rectangle / lasso mode without modifiers. "
                             "Shift adds, Alt subtracts, Shift+Alt intersects")
        form.addRow("Size", self.size)
        form.addRow("Hardness", self.hardness)
        form.addRow("Spacing", self.spacing)
        form.addRow("", self.pressure)
        form.addRow("Shape mode", self.mode)
        self.size.valueChanged.connect(lambda v: settings.set("brush_size", v))
        self.hardness.valueChanged.connect(lambda v: settings.set("hardness", v / 100.0))
        self.spacing.valueChanged.connect(lambda v: settings.set("spacing", v / 100.0))
        self.pressure.toggled.connect(lambda on: settings.set("pressure_size", on))
        self.mode.currentIndexChanged.connect(
            lambda i: settings.set("selection_mode", self.mode.itemData(i)))
        settings.changed.connect(self.sync)
        self.sync()

    def sync(self, _name: Optional[str] = None) -> None:
        s = self.settings
        self.size.setValue(s.brush_size)
        self.hardness.setValue(s.hardness * 100)
        self.spacing.setValue(s.spacing * 100)
        self.pressure.blockSignals(True)
        self.pressure.setChecked(s.pressure_size)
        self.pressure.blockSignals(False)
        self.mode.blockSignals(True)
        self.mode.setCurrentIndex(max(0, self.mode.findData(s.selection_mode)))
        self.mode.blockSignals(False)


class ColorButton(QToolButton):
    colorChanged = Signal(QColor)

    def __init__(self, color: QColor, parent=None) -> None:
        super().__init__(parent)
        self._color = QColor(color)
        self.clicked.connect(self._pick)
        self._paint()

    def color(self) -> QColor:
        return QColor(self._color)

    def setColor(self, c: QColor) -> None:  # noqa: N802
        self._color = QColor(c)
        self._paint()

    def _paint(self) -> None:
        pm = QPixmap(28, 16)
        pm.fill(self._color)
        self.setIcon(QIcon(pm))

    def _pick(self) -> None:
        c = QColorDialog.getColor(self._color, self, "Mask overlay colour")
        if c.isValid():
            self.setColor(c)
            self.colorChanged.emit(c)


class MaskPanel(QWidget):
    """Overlay colour/opacity/visibility and the mask operations."""

    def __init__(self, document: Document, view, parent=None) -> None:
        super().__init__(parent)
        self.document, self.view = document, view
        color, opacity, visible = view.mask_style()
        lay = QVBoxLayout(self)
        disp = QGroupBox("Overlay")
        f = QFormLayout(disp)
        self.color = ColorButton(color)
        self.opacity = _SliderSpin(0, 100, " %")
        self.opacity.setValue(opacity * 100)
        self.visible = QCheckBox("Show mask")
        self.visible.setChecked(visible)
        f.addRow("Colour", self.color)
        f.addRow("Opacity", self.opacity)
        f.addRow("", self.visible)
        lay.addWidget(disp)

        ops = QGroupBox("Operations")
        g = QGridLayout(ops)
        self.px = QSpinBox()
        self.px.setRange(1, 500)
        self.px.setValue(8)
        self.px.setSuffix(" px")
        g.addWidget(QLabel("Amount"), 0, 0)
        g.addWidget(self.px, 0, 1, 1, 2)
        self.buttons = {}
        for i, (key, label, tip) in enumerate([
                ("grow", "Grow", "Dilate the mask by the amount"),
                ("shrink", "Shrink", "Erode the mask by the amount"),
                ("feather", "Feather", "Soften the mask edge by the amount"),
                ("invert", "Invert", "Fill what was kept and keep what was filled"),
                ("clear", "Clear", "Empty the mask"),
                ("fill", "Fill all", "Mark the whole image for filling")]):
            b = QPushButton(label)
            b.setToolTip(tip)
            b.clicked.connect(lambda _=False, k=key: self.run(k))
            g.addWidget(b, 1 + i // 3, i % 3)
            self.buttons[key] = b
        lay.addWidget(ops)
        lay.addStretch(1)

        view.mask_style_changed.connect(self.sync_from_view)
        self.color.colorChanged.connect(lambda c: view.set_mask_style(color=c))
        self.opacity.valueChanged.connect(lambda v: view.set_mask_style(opacity=v / 100.0))
        self.visible.toggled.connect(lambda on: view.set_mask_style(visible=on))

    def sync_from_view(self) -> None:
        color, opacity, visible = self.view.mask_style()
        self.color.setColor(color)
        self.opacity.setValue(opacity * 100)
        self.visible.blockSignals(True)
        self.visible.setChecked(visible)
        self.visible.blockSignals(False)

    @_busy
    def run(self, key: str) -> None:
        self.document.mask_operation(key, self.px.value())


class CanvasPanel(QWidget):
    """Outpaint margins: numeric entry, presets, canvas size readout."""

    def __init__(self, document: Document, parent=None) -> None:
        super().__init__(parent)
        self.document = document
        lay = QVBoxLayout(self)
        box = QGroupBox("Extend canvas (outpaint)")
        g = QGridLayout(box)
        self.spins = {}
        for key, label, r, c in (("top", "Top", 0, 1), ("left", "Left", 1, 0),
                                 ("right", "Right", 1, 2), ("bottom", "Bottom", 2, 1)):
            s = QSpinBox()
            s.setRange(0, 30000)
            s.setSuffix(" px")
            s.setKeyboardTracking(False)
            s.setToolTip(f"{label} margin in pixels")
            s.valueChanged.connect(self._from_spins)
            s.editingFinished.connect(self._new_session)
            self.spins[key] = s
            w = QWidget()
            h = QVBoxLayout(w)
            h.setContentsMargins(0, 0, 0, 0)
            h.setSpacing(0)
            lab = QLabel(label)
            lab.setAlignment(Qt.AlignCenter)
            h.addWidget(lab)
            h.addWidget(s)
            g.addWidget(w, r, c)
        self.size_label = QLabel()
        self.size_label.setAlignment(Qt.AlignCenter)
        g.addWidget(self.size_label, 1, 1)
        lay.addWidget(box)

        pbox = QGroupBox("Presets")
        pg = QGridLayout(pbox)
        self.preset_buttons = {}
        for i, (key, label) in enumerate(PRESETS):
            b = QPushButton(label)
            b.clicked.connect(lambda _=False, k=key: self.apply_preset(k))
            pg.addWidget(b, i // 3, i % 3)
            self.preset_buttons[key] = b
        lay.addWidget(pbox)
        hint = QLabel("Tip: use the Extend canvas tool (C) to drag the borders; "
                      "Shift-drag extends both sides.")
        hint.setWordWrap(True)
        hint.setStyleSheet("color: gray")
        lay.addWidget(hint)
        lay.addStretch(1)
        self._session = next(_merge_keys)
        document.margins_changed.connect(self.sync)
        document.image_changed.connect(self.sync)
        self.sync()

    def _new_session(self) -> None:
        self._session = next(_merge_keys)

    def _from_spins(self, _v=None) -> None:
        s = self.spins
        m = Margins(s["top"].value(), s["left"].value(), s["bottom"].value(), s["right"].value())
        self.document.set_margins(m, "Extend canvas (numeric)", merge_key=self._session)

    def apply_preset(self, key: str) -> None:
        d = self.document
        if d.is_empty():
            return
        label = dict(PRESETS)[key]
        d.set_margins(preset_margins(key, d.height, d.width), f"Extend canvas: {label}")
        self._new_session()

    def sync(self, _m=None) -> None:
        d = self.document
        m = d.margins
        for key, s in self.spins.items():
            s.blockSignals(True)
            s.setValue(getattr(m, key))
            s.blockSignals(False)
            s.setEnabled(not d.is_empty())
        for b in self.preset_buttons.values():
            b.setEnabled(not d.is_empty())
        if d.is_empty():
            self.size_label.setText("")
        else:
            ch, cw = d.canvas_shape()
            self.size_label.setText(f"{cw} \u00d7 {ch}")


class LayersPanel(QWidget):
    """Layers / results list (placeholder: the models GUI fills ``document.results``)."""

    result_activated = Signal(object)  # ResultEntry

    def __init__(self, document: Document, parent=None) -> None:
        super().__init__(parent)
        self.document = document
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        self.list = QListWidget()
        lay.addWidget(self.list)
        self.list.itemDoubleClicked.connect(self._activated)
        for sig in (document.results_changed, document.image_changed, document.margins_changed):
            sig.connect(self.refresh)
        self.refresh()

    def _activated(self, item: QListWidgetItem) -> None:
        entry = item.data(Qt.UserRole)
        if entry is not None:
            self.result_activated.emit(entry)

    def refresh(self, *_a) -> None:
        d = self.document
        self.list.clear()
        for r in reversed(d.results):
            it = QListWidgetItem(("\u2714 " if r.accepted else "\u25cb ") + r.name)
            it.setData(Qt.UserRole, r)
            it.setToolTip("Accepted result" if r.accepted else "Result (not applied)")
            self.list.addItem(it)
        if d.is_empty():
            return
        if not d.margins.is_zero():
            ch, cw = d.canvas_shape()
            self.list.addItem(QListWidgetItem(f"Canvas extension  {cw}\u00d7{ch}"))
        self.list.addItem(QListWidgetItem("Mask"))
        depth = f"{d.bit_depth}-bit" + (" + alpha" if d.alpha is not None else "")
        self.list.addItem(QListWidgetItem(f"Image  {d.width}\u00d7{d.height}, {depth}"))
