"""Comparison grid: the results of several models side by side, zoomed and panned together.

``CompareGrid.set_results(results)`` takes :class:`~.worker.FillResult` objects. Each cell is
labelled "model · weights · time" (or "failed"). Wheel zooms every view about the cursor; dragging pans
every view. A click selects a cell (``selection_changed(index)``); the cell's "Use this"
button or a double click emits ``chosen(index)``.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

from PySide6.QtCore import QPointF, Signal
from PySide6.QtGui import QPainter, QPixmap, QTransform
from PySide6.QtWidgets import (QFrame, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView,
                               QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout,
                               QWidget)

from .qimage import to_qimage

MIN_ZOOM, MAX_ZOOM = 0.02, 64.0


def result_caption(res) -> str:
    """"model · weights · time" of a :class:`~.worker.FillResult` ("failed" for a failure)."""
    return f"{res.model} · {res.weights or 'default'} · failed" if res.error else res.label


class _CellView(QGraphicsView):
    def __init__(self, grid: "CompareGrid", index: int, parent=None) -> None:
        super().__init__(parent)
        self.grid = grid
        self.index = index
        self.setScene(QGraphicsScene(self))
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.item = QGraphicsPixmapItem()
        self.scene().addItem(self.item)
        self._press = None
        self.horizontalScrollBar().valueChanged.connect(lambda v: grid._sync_scroll(self))
        self.verticalScrollBar().valueChanged.connect(lambda v: grid._sync_scroll(self))

    def set_pixmap(self, pm: QPixmap) -> None:
        self.item.setPixmap(pm)
        self.scene().setSceneRect(self.item.boundingRect())

    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt API
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.grid.zoom_by(1.25 ** steps, self, event.position())
        event.accept()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        self._press = event.position()
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        super().mouseReleaseEvent(event)
        if self._press is not None and (event.position() - self._press).manhattanLength() < 4:
            self.grid.select(self.index)
        self._press = None

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802
        self.grid.choose(self.index)


class CompareGrid(QWidget):
    """Signals: chosen(index) - the user picked this result; selection_changed(index)."""

    chosen = Signal(int)
    selection_changed = Signal(int)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(2, 2, 2, 2)
        self._grid.setSpacing(4)
        self._cells: "list[QFrame]" = []
        self._views: "list[_CellView]" = []
        self._labels: "list[QLabel]" = []
        self._results: list = []
        self._zoom = 1.0
        self._syncing = False
        self._selected = -1

    # ------------------------------------------------------------------ content
    def set_results(self, results: Sequence, original=None) -> None:
        """Show ``results`` (FillResult-like). ``original``: optional array shown for failed ones."""
        self.clear()
        self._results = list(results)
        n = len(self._results)
        if n == 0:
            return
        cols = max(1, math.ceil(math.sqrt(n)))
        for i, res in enumerate(self._results):
            cell = QFrame(self)
            cell.setFrameShape(QFrame.Shape.StyledPanel)
            cell.setLineWidth(2)
            lay = QVBoxLayout(cell)
            lay.setContentsMargins(3, 3, 3, 3)
            top = QHBoxLayout()
            label = QLabel(result_caption(res), cell)
            label.setToolTip(res.error or "; ".join(res.notes))
            button = QPushButton("Use this", cell)
            button.clicked.connect(lambda _=False, k=i: self.choose(k))
            arr = res.array
            button.setEnabled(arr is not None)
            top.addWidget(label, 1)
            top.addWidget(button)
            lay.addLayout(top)
            view = _CellView(self, i, cell)
            shown = arr if arr is not None else original
            if shown is not None:
                view.set_pixmap(QPixmap.fromImage(to_qimage(shown)))
            lay.addWidget(view, 1)
            self._grid.addWidget(cell, i // cols, i % cols)
            self._cells.append(cell)
            self._views.append(view)
            self._labels.append(label)
        self.fit_all()

    def clear(self) -> None:
        for cell in self._cells:
            self._grid.removeWidget(cell)
            cell.setParent(None)
            cell.deleteLater()
        self._cells, self._views, self._labels, self._results = [], [], [], []
        self._selected = -1

    def count(self) -> int:
        return len(self._views)

    def views(self) -> "list[QGraphicsView]":
        return list(self._views)

    def labels(self) -> "list[str]":
        return [lb.text() for lb in self._labels]

    def result(self, index: int):
        return self._results[index]

    # ------------------------------------------------------------------ selection
    def select(self, index: int) -> None:
        if not 0 <= index < len(self._cells):
            return
        self._selected = index
        for i, cell in enumerate(self._cells):
            cell.setStyleSheet("QFrame { border: 2px solid palette(highlight); }" if i == index else "")
        self.selection_changed.emit(index)

    def selected_index(self) -> int:
        return self._selected

    def choose(self, index: int) -> None:
        """Select ``index`` and emit ``chosen(index)`` (failed results cannot be chosen)."""
        if not 0 <= index < len(self._results) or self._results[index].array is None:
            return
        self.select(index)
        self.chosen.emit(index)

    # ------------------------------------------------------------------ zoom and pan
    def zoom(self) -> float:
        return self._zoom

    def set_zoom(self, zoom: float, anchor_view: Optional[QGraphicsView] = None,
                 anchor: Optional[QPointF] = None) -> None:
        """Set the same scale in every view; ``anchor`` (viewport point of ``anchor_view``)
        stays over the same image point."""
        zoom = float(min(MAX_ZOOM, max(MIN_ZOOM, zoom)))
        if not self._views:
            self._zoom = zoom
            return
        src = anchor_view or self._views[0]
        if anchor is None:
            anchor = QPointF(src.viewport().rect().center())
        scene_pt = src.mapToScene(anchor.toPoint())
        self._zoom = zoom
        self._syncing = True
        try:
            for v in self._views:
                v.setTransform(QTransform.fromScale(zoom, zoom))
            # keep the anchored scene point under the cursor, then copy the scroll position
            moved = src.mapFromScene(scene_pt) - anchor.toPoint()
            hbar, vbar = src.horizontalScrollBar(), src.verticalScrollBar()
            hbar.setValue(hbar.value() + moved.x())
            vbar.setValue(vbar.value() + moved.y())
            for v in self._views:
                if v is not src:
                    v.horizontalScrollBar().setValue(hbar.value())
                    v.verticalScrollBar().setValue(vbar.value())
        finally:
            self._syncing = False

    def zoom_by(self, factor: float, view: Optional[QGraphicsView] = None,
                anchor: Optional[QPointF] = None) -> None:
        self.set_zoom(self._zoom * factor, view, anchor)

    def fit_all(self) -> None:
        """Zoom so the whole image fits the smallest cell."""
        if not self._views:
            return
        fits = []
        for v in self._views:
            r = v.item.boundingRect()
            vp = v.viewport().rect()
            if r.width() > 0 and r.height() > 0 and vp.width() > 1 and vp.height() > 1:
                fits.append(min(vp.width() / r.width(), vp.height() / r.height()))
        self.set_zoom(min(fits) if fits else 1.0)
        for v in self._views:
            v.centerOn(v.item)

    def scroll_positions(self) -> "list[tuple[int, int]]":
        return [(v.horizontalScrollBar().value(), v.verticalScrollBar().value()) for v in self._views]

    def _sync_scroll(self, src: QGraphicsView) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            hs, vs = src.horizontalScrollBar().value(), src.verticalScrollBar().value()
            for v in self._views:
                if v is not src:
                    v.horizontalScrollBar().setValue(hs)
                    v.verticalScrollBar().setValue(vs)
        finally:
            self._syncing = False
