"""A fill result shown above the original, before the user accepts or discards it (Qt part).

The layer's state and display math are Qt-free (:class:`inpaint_gui.core.result.ResultLayer`);
accepting is the document's (``Document.accept_result``). Here:
:class:`ResultItem` (a ``QGraphicsPixmapItem`` drawn above the image item: opacity,
visibility, split view — left of the split shows the original, right the result),
:class:`PeekKeyFilter` (hold a key to see the original) and :class:`ResultControls` (the
small toolbar: show, opacity, split, Accept, Discard).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen, QPixmap
from PySide6.QtWidgets import (QCheckBox, QGraphicsItem, QGraphicsPixmapItem, QHBoxLayout,
                               QLabel, QPushButton, QSlider, QWidget)

from inpaint_gui.core.result import ResultLayer

from .qimage import to_qimage


class ResultItem(QGraphicsPixmapItem):
    """The result drawn above the image item.

    Add it to the canvas scene at the image's position (``setPos``; for outpainting at the
    canvas origin). It ignores the mouse so the canvas tools keep working underneath.
    """

    SPLIT_PEN = QColor(255, 255, 255, 220)

    def __init__(self, layer: Optional[ResultLayer] = None, parent: Optional[QGraphicsItem] = None) -> None:
        super().__init__(parent)
        self.layer: Optional[ResultLayer] = None
        self.setZValue(10)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setAcceptHoverEvents(False)
        self.setTransformationMode(Qt.TransformationMode.FastTransformation)
        self.setShapeMode(QGraphicsPixmapItem.ShapeMode.BoundingRectShape)
        if layer is not None:
            self.set_layer(layer)

    def set_layer(self, layer: ResultLayer) -> None:
        self.layer = layer
        self.setPixmap(QPixmap.fromImage(to_qimage(layer.result)))
        self.setOpacity(layer.opacity)
        self.update()

    def set_result(self, result: np.ndarray, original: Optional[np.ndarray] = None) -> None:
        """Replace the shown array (keeps opacity/visibility/split)."""
        if self.layer is None:
            self.set_layer(ResultLayer(original if original is not None else result, result))
            return
        self.layer.result = result
        if original is not None:
            self.layer.original = original
        self.setPixmap(QPixmap.fromImage(to_qimage(result)))

    # --- state -----------------------------------------------------------------------
    def set_result_opacity(self, opacity: float) -> None:
        if self.layer is not None:
            self.layer.opacity = float(min(1.0, max(0.0, opacity)))
            self.setOpacity(self.layer.opacity)

    def set_result_visible(self, visible: bool) -> None:
        if self.layer is not None:
            self.layer.visible = bool(visible)
            self.update()

    def set_split(self, split: float) -> None:
        if self.layer is not None:
            self.layer.split = float(min(1.0, max(0.0, split)))
            self.update()

    def set_peek(self, peek: bool) -> None:
        """True while the "see original" key is held."""
        if self.layer is not None and self.layer.peek != bool(peek):
            self.layer.peek = bool(peek)
            self.update()

    def visible_rect(self) -> QRectF:
        """Part of the item where the result is painted (empty when hidden)."""
        r = self.boundingRect()
        if self.layer is None or not self.layer.showing_result:
            return QRectF()
        x = float(self.layer.split_column())
        return QRectF(QPointF(r.left() + x, r.top()), r.bottomRight())

    def paint(self, painter, option, widget=None) -> None:  # noqa: D401 - Qt API
        rect = self.visible_rect()
        if rect.isEmpty():
            return
        painter.save()
        painter.setClipRect(rect)
        super().paint(painter, option, widget)
        painter.restore()
        if self.layer is not None and self.layer.split > 0:
            painter.save()
            painter.setOpacity(1.0)
            pen = QPen(self.SPLIT_PEN)
            pen.setCosmetic(True)
            pen.setWidth(2)
            painter.setPen(pen)
            painter.drawLine(QPointF(rect.left(), rect.top()), QPointF(rect.left(), rect.bottom()))
            painter.restore()


class PeekKeyFilter(QObject):
    """Event filter: while ``key`` is held the original is shown (``ResultItem.set_peek``).

    Install on the canvas view (or the window): ``view.installEventFilter(PeekKeyFilter(item))``.
    The key is swallowed only while a result item is set."""

    def __init__(self, item: Optional[ResultItem] = None, key=Qt.Key.Key_Backslash,
                 parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.item = item
        self.key = key

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt API
        if self.item is None:
            return False
        et = event.type()
        if et in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease) and event.key() == self.key:
            if not event.isAutoRepeat():
                self.item.set_peek(et == QEvent.Type.KeyPress)
            return True
        if et in (QEvent.Type.FocusOut, QEvent.Type.WindowDeactivate):
            self.item.set_peek(False)
        return False


class ResultControls(QWidget):
    """Show / opacity / split / Accept / Discard for one :class:`ResultItem`.

    Signals: accept_requested(), discard_requested(), changed() (opacity/visibility/split).
    The window turns accept into an undo item with ``Document.accept_result``."""

    accept_requested = Signal()
    discard_requested = Signal()
    changed = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.item: Optional[ResultItem] = None
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        self.show_check = QCheckBox("Result", self)
        self.show_check.setChecked(True)
        self.show_check.setToolTip("Show the result (hold \\ to see the original)")
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(100)
        self.opacity_slider.setToolTip("Opacity of the result (also used when accepting)")
        self.split_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.split_slider.setRange(0, 100)
        self.split_slider.setValue(0)
        self.split_slider.setToolTip("Split view: left of the line shows the original")
        self.accept_button = QPushButton("Accept", self)
        self.discard_button = QPushButton("Discard", self)
        lay.addWidget(self.show_check)
        lay.addWidget(QLabel("Opacity", self))
        lay.addWidget(self.opacity_slider, 1)
        lay.addWidget(QLabel("Split", self))
        lay.addWidget(self.split_slider, 1)
        lay.addWidget(self.accept_button)
        lay.addWidget(self.discard_button)
        self.show_check.toggled.connect(self._on_show)
        self.opacity_slider.valueChanged.connect(self._on_opacity)
        self.split_slider.valueChanged.connect(self._on_split)
        self.accept_button.clicked.connect(self.accept_requested)
        self.discard_button.clicked.connect(self.discard_requested)
        self.bind(None)

    def bind(self, item: Optional[ResultItem]) -> None:
        """Control ``item`` (None disables the controls)."""
        self.item = item
        enabled = item is not None and item.layer is not None
        for w in (self.show_check, self.opacity_slider, self.split_slider, self.accept_button,
                  self.discard_button):
            w.setEnabled(enabled)
        if enabled:
            layer = item.layer
            self.show_check.setChecked(layer.visible)
            self.opacity_slider.setValue(int(round(layer.opacity * 100)))
            self.split_slider.setValue(int(round(layer.split * 100)))
            # split view only makes sense when result and original line up
            self.split_slider.setEnabled(layer.same_size)

    def _on_show(self, on: bool) -> None:
        if self.item is not None:
            self.item.set_result_visible(on)
            self.changed.emit()

    def _on_opacity(self, v: int) -> None:
        if self.item is not None:
            self.item.set_result_opacity(v / 100.0)
            self.changed.emit()

    def _on_split(self, v: int) -> None:
        if self.item is not None:
            self.item.set_split(v / 100.0)
            self.changed.emit()
