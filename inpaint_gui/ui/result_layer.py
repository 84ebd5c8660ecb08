"""A fill result shown above the original, before the user accepts or discards it.

Qt-free part (numpy only): :class:`ResultLayer` (array, opacity, visibility, split position,
"peek" = show the original while a key is held), the display math :func:`composite_view`,
and Accept/Discard as functions producing an undo patch :class:`ImagePatch` (bbox + old/new
pixels of that bbox) for the document's undo stack.

Qt part: :class:`ResultItem` (a ``QGraphicsPixmapItem`` drawn above the image item: opacity,
visibility, split view — left of the split shows the original, right the result),
:class:`PeekKeyFilter` (hold a key to see the original) and :class:`ResultControls` (the
small toolbar: show, opacity, split, Accept, Discard).

Conventions: bbox = (x0, y0, x1, y1), half-open pixels (as in :mod:`.brush`); ``split`` is a
fraction of the width in [0, 1]: columns ``x < round(split * width)`` show the original
(0 = the whole result is shown, 1 = only the original).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPen, QPixmap
from PySide6.QtWidgets import (QCheckBox, QGraphicsItem, QGraphicsPixmapItem, QHBoxLayout,
                               QLabel, QPushButton, QSlider, QWidget)

BBox = Tuple[int, int, int, int]


# ============================================================================ Qt-free model

def split_column(width: int, split: float) -> int:
    """First column that shows the result for a split fraction (clamped to [0, width])."""
    return int(min(width, max(0, round(float(split) * width))))


def blend(original: np.ndarray, result: np.ndarray, opacity: float) -> np.ndarray:
    """``result`` over ``original`` at ``opacity`` (0..1), rounded, in their dtype."""
    if original.shape != result.shape:
        raise ValueError(f"result {result.shape} and original {original.shape} differ in shape")
    a = float(min(1.0, max(0.0, opacity)))
    if a >= 1.0:
        return result.copy()
    if a <= 0.0:
        return original.copy()
    mix = original.astype(np.float32) * (1.0 - a) + result.astype(np.float32) * a
    if np.issubdtype(original.dtype, np.integer):
        info = np.iinfo(original.dtype)
        return np.clip(np.rint(mix), info.min, info.max).astype(original.dtype)
    return mix.astype(original.dtype)


def composite_view(original: np.ndarray, result: np.ndarray, opacity: float = 1.0,
                   visible: bool = True, split: float = 0.0, peek: bool = False) -> np.ndarray:
    """What the canvas shows: the original where the result is hidden/peeked/left of the
    split, elsewhere the result blended over the original at ``opacity``."""
    if not visible or peek:
        return original.copy()
    out = blend(original, result, opacity)
    x = split_column(original.shape[1], split)
    if x > 0:
        out[:, :x] = original[:, :x]
    return out


def diff_bbox(a: np.ndarray, b: np.ndarray) -> Optional[BBox]:
    """Smallest (x0, y0, x1, y1) containing every pixel where ``a`` and ``b`` differ."""
    d = a != b
    if d.ndim == 3:
        d = d.any(axis=2)
    ys = np.flatnonzero(d.any(axis=1))
    if ys.size == 0:
        return None
    xs = np.flatnonzero(d.any(axis=0))
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


class ImagePatch:
    """Undo data of an image edit: ``bbox`` = (x0, y0, x1, y1) and the old/new pixels there."""

    __slots__ = ("bbox", "old", "new")

    def __init__(self, bbox: BBox, old: np.ndarray, new: np.ndarray) -> None:
        x0, y0, x1, y1 = (int(v) for v in bbox)
        if old.shape != new.shape or old.shape[:2] != (y1 - y0, x1 - x0):
            raise ValueError("patch arrays must match the bbox")
        self.bbox = (x0, y0, x1, y1)
        self.old = old
        self.new = new

    @property
    def nbytes(self) -> int:
        return int(self.old.nbytes + self.new.nbytes)

    def _write(self, image: np.ndarray, values: np.ndarray, inplace: bool) -> np.ndarray:
        out = image if inplace else image.copy()
        x0, y0, x1, y1 = self.bbox
        out[y0:y1, x0:x1] = values
        return out

    def apply(self, image: np.ndarray, inplace: bool = False) -> np.ndarray:
        """``image`` with the new pixels (a copy unless ``inplace``): redo."""
        return self._write(image, self.new, inplace)

    def revert(self, image: np.ndarray, inplace: bool = False) -> np.ndarray:
        """``image`` with the old pixels back (a copy unless ``inplace``): undo."""
        return self._write(image, self.old, inplace)


def accept_patch(image: np.ndarray, result: np.ndarray, opacity: float = 1.0,
                 mask: Optional[np.ndarray] = None) -> Optional[ImagePatch]:
    """Accept: the patch that turns ``image`` into the result blended at ``opacity``.

    Only pixels that change are covered (the bbox of the differences, further limited to
    ``mask > 0`` when a mask is given). Returns None when nothing would change. The result
    must have the image's shape (an outpainting result changes the canvas size: accept it
    with ``Document.accept_result`` instead)."""
    if result.shape != image.shape:
        raise ValueError(f"result {result.shape[1]}x{result.shape[0]} does not match the image "
                         f"{image.shape[1]}x{image.shape[0]} (outpainting results replace the "
                         "whole canvas)")
    if result.dtype != image.dtype:
        raise ValueError(f"result dtype {result.dtype} differs from the image's {image.dtype}")
    new_full = blend(image, result, opacity)
    if mask is not None:
        sel = np.asarray(mask) > 0
        if sel.shape != image.shape[:2]:
            raise ValueError("mask shape does not match the image")
        new_full = np.where(sel[..., None] if new_full.ndim == 3 else sel, new_full, image)
    bbox = diff_bbox(image, new_full)
    if bbox is None:
        return None
    x0, y0, x1, y1 = bbox
    return ImagePatch(bbox, image[y0:y1, x0:x1].copy(), new_full[y0:y1, x0:x1].copy())


def discard_patch(*_args, **_kwargs) -> None:
    """Discard: the image does not change, so there is no undo patch (always None)."""
    return None


@dataclass
class ResultLayer:
    """State of the result shown above the original (no Qt)."""

    original: np.ndarray
    result: np.ndarray
    opacity: float = 1.0
    visible: bool = True
    split: float = 0.0
    peek: bool = False
    name: str = "Result"

    def __post_init__(self) -> None:
        self.opacity = float(min(1.0, max(0.0, self.opacity)))
        self.split = float(min(1.0, max(0.0, self.split)))

    @property
    def same_size(self) -> bool:
        return self.original.shape == self.result.shape

    @property
    def showing_result(self) -> bool:
        return self.visible and not self.peek and self.opacity > 0 and self.split < 1.0

    def split_column(self) -> int:
        return split_column(self.result.shape[1], self.split)

    def composite(self) -> np.ndarray:
        """The pixels the canvas shows (same-size results only)."""
        return composite_view(self.original, self.result, self.opacity, self.visible,
                              self.split, self.peek)

    def accept(self, mask: Optional[np.ndarray] = None) -> Optional[ImagePatch]:
        """Accept at the current opacity (visibility, split and peek do not matter)."""
        return accept_patch(self.original, self.result, self.opacity, mask)

    def discard(self) -> None:
        return discard_patch()


# ============================================================================ Qt part

def rgb_to_qimage(rgb: np.ndarray, alpha: Optional[np.ndarray] = None) -> QImage:
    """HxWx3 RGB (uint8/uint16/float [0,1]) → an owning QImage (8 bit per channel)."""
    a = np.asarray(rgb)
    if a.dtype == np.uint16:
        a = (a >> 8).astype(np.uint8)
    elif a.dtype != np.uint8:
        a = np.clip(np.rint(a.astype(np.float32) * 255), 0, 255).astype(np.uint8)
    h, w = a.shape[:2]
    if alpha is not None:
        al = np.asarray(alpha)
        al = (al >> 8).astype(np.uint8) if al.dtype == np.uint16 else al.astype(np.uint8)
        buf = np.ascontiguousarray(np.dstack([a[..., :3], al]))
        img = QImage(buf.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
    else:
        buf = np.ascontiguousarray(a[..., :3])
        img = QImage(buf.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return img.copy()  # detach from the numpy buffer


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
        self.setPixmap(QPixmap.fromImage(rgb_to_qimage(layer.result)))
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
        self.setPixmap(QPixmap.fromImage(rgb_to_qimage(result)))

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
    The window turns accept into an undo item with :meth:`ResultLayer.accept` (or
    ``Document.accept_result`` for outpainting)."""

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
