"""The canvas: a QGraphicsView showing the document's image, mask overlay and margins.

Scene coordinates are image pixel coordinates (pixel (c, r) covers [c, c+1) x [r, r+1));
the outpaint margins extend the canvas to negative coordinates / beyond the image size.

Large images stay smooth: items paint only their exposed rectangle straight from QImages
that wrap the numpy buffers (no copies, :func:`.qimage.view_qimage`; the mask overlay is an
Indexed8 view of ``document.mask`` whose colour table gives colour/opacity), and a mipmap
pyramid gives smooth downscaling when zoomed out. Mask edits repaint only their dirty
rectangle.
"""
from __future__ import annotations

import math
from typing import List, Optional

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (QBrush, QColor, QCursor, QImage, QKeySequence, QPainter,
                           QPainterPath, QPen, QPixmap, QPointingDevice, QTransform)
from PySide6.QtWidgets import (QFrame, QGraphicsItem, QGraphicsScene,
                               QGraphicsView, QStyleOptionGraphicsItem)

from .document import Document
from .qimage import display8, view_qimage
from .tools import BrushTool, Tool, ToolSettings

Z_FRAME_UNDER = -10   # checkerboard under the canvas
Z_IMAGE = 0
Z_RESULTS = 0.5       # result layers of the models GUI go here (between image and mask)
Z_MASK = 1
Z_FRAME_OVER = 2      # margin tint + borders
Z_PREVIEW = 10
Z_HANDLES = 20
Z_CURSOR = 30

MIN_ZOOM, MAX_ZOOM = 1 / 128, 64.0
WHEEL_STEP = 1.25


# --------------------------------------------------------------------------- helpers
def checker_brush(cell: int = 8, dark: str = "#9a9a9a", light: str = "#c8c8c8") -> QBrush:
    pm = QPixmap(2 * cell, 2 * cell)
    pm.fill(QColor(light))
    p = QPainter(pm)
    p.fillRect(0, 0, cell, cell, QColor(dark))
    p.fillRect(cell, cell, cell, cell, QColor(dark))
    p.end()
    return QBrush(pm)


def _scale_of(painter: QPainter) -> float:
    t = painter.worldTransform()
    s = math.hypot(t.m11(), t.m12())
    dev = painter.device()
    try:
        s *= dev.devicePixelRatioF()
    except AttributeError:
        pass
    return s


class _ExposedItem(QGraphicsItem):
    def __init__(self) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.ItemUsesExtendedStyleOption, True)
        self._w = self._h = 0

    def boundingRect(self) -> QRectF:  # noqa: N802
        return QRectF(0, 0, self._w, self._h)

    def _source_rect(self, option: QStyleOptionGraphicsItem) -> Optional[QRectF]:
        r = option.exposedRect.intersected(self.boundingRect())
        if r.isEmpty():
            return None
        x0, y0 = math.floor(r.left()), math.floor(r.top())
        x1 = min(math.ceil(r.right()), self._w)
        y1 = min(math.ceil(r.bottom()), self._h)
        if x1 <= x0 or y1 <= y0:
            return None
        return QRectF(x0, y0, x1 - x0, y1 - y0)


class ImageItem(_ExposedItem):
    """The working image, drawn from a mipmap pyramid (nearest when zoomed in)."""

    def __init__(self) -> None:
        super().__init__()
        self.setZValue(Z_IMAGE)
        self._levels: List[np.ndarray] = []
        self._qimages: List[QImage] = []

    def set_image(self, image: np.ndarray, alpha: Optional[np.ndarray] = None) -> None:
        self.prepareGeometryChange()
        # 8-bit display copy (none for an 8-bit image without alpha: the pyramid's first
        # level is then a view of the document's own array)
        rgb = np.ascontiguousarray(display8(image, alpha))
        self._h, self._w = rgb.shape[:2]
        self._levels = [rgb]
        self._qimages = [view_qimage(rgb)] if rgb.size else []
        self.update()

    def _level(self, k: int) -> int:
        """Build pyramid levels lazily up to ``k``; returns the level actually available."""
        import cv2
        while len(self._levels) <= k:
            prev = self._levels[-1]
            h, w = prev.shape[:2]
            if h < 64 or w < 64:
                break
            nxt = cv2.resize(prev, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
            nxt = np.ascontiguousarray(nxt)
            self._levels.append(nxt)
            self._qimages.append(view_qimage(nxt))
        return min(k, len(self._levels) - 1)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        if not self._qimages:
            return
        src = self._source_rect(option)
        if src is None:
            return
        scale = _scale_of(painter)
        if scale >= 1.0:
            painter.setRenderHint(QPainter.SmoothPixmapTransform, False)
            painter.drawImage(src, self._qimages[0], src)
            return
        k = self._level(max(0, int(math.floor(math.log2(1.0 / scale)))))
        painter.setRenderHint(QPainter.SmoothPixmapTransform, True)
        if k == 0:
            painter.drawImage(src, self._qimages[0], src)
            return
        lvl = self._levels[k]
        fx, fy = lvl.shape[1] / self._w, lvl.shape[0] / self._h
        s = QRectF(src.x() * fx, src.y() * fy, src.width() * fx, src.height() * fy)
        painter.drawImage(src, self._qimages[k], s)


class MaskItem(_ExposedItem):
    """Indexed8 view of ``document.mask``; colour/opacity via the colour table."""

    def __init__(self) -> None:
        super().__init__()
        self.setZValue(Z_MASK)
        self._arr: Optional[np.ndarray] = None
        self._qimage: Optional[QImage] = None
        self._color = QColor(255, 40, 90)
        self._opacity = 0.5
        self._table: List[int] = []
        self._make_table()

    def _make_table(self) -> None:
        r, g, b = self._color.red(), self._color.green(), self._color.blue()
        self._table = [(int(round(i * self._opacity)) << 24) | (r << 16) | (g << 8) | b
                       for i in range(256)]
        if self._qimage is not None:
            self._qimage.setColorTable(self._table)

    def set_style(self, color: QColor, opacity: float) -> None:
        self._color, self._opacity = QColor(color), float(min(max(opacity, 0.0), 1.0))
        self._make_table()
        self.update()

    def set_mask(self, mask: np.ndarray) -> None:
        self.prepareGeometryChange()
        self._arr = mask  # keep the buffer alive; edits happen in place
        self._h, self._w = mask.shape
        if mask.size:
            self._qimage = view_qimage(mask)  # edits of the mask show without a copy
            self._qimage.setColorTable(self._table)
        else:
            self._qimage = None
        self.update()

    def paint(self, painter: QPainter, option, widget=None) -> None:
        if self._qimage is None:
            return
        src = self._source_rect(option)
        if src is None:
            return
        painter.setRenderHint(QPainter.SmoothPixmapTransform, _scale_of(painter) < 1.0)
        painter.drawImage(src, self._qimage, src)


class FrameItem(QGraphicsItem):
    """Canvas frame. Under the image: checkerboard over margins (and under transparency).
    Over the image (``over=True``): fill-region tint on the margins and the borders."""

    def __init__(self, over: bool) -> None:
        super().__init__()
        self.over = over
        self.setZValue(Z_FRAME_OVER if over else Z_FRAME_UNDER)
        self._canvas = QRectF()
        self._image = QRectF()
        self._checker = checker_brush()
        self._has_alpha = False
        self._tint = QColor(255, 40, 90, 70)
        self._show_tint = True

    def set_geometry(self, canvas: QRectF, image: QRectF, has_alpha: bool) -> None:
        self.prepareGeometryChange()
        self._canvas, self._image, self._has_alpha = QRectF(canvas), QRectF(image), has_alpha
        self.update()

    def set_tint(self, color: QColor, opacity: float, visible: bool) -> None:
        c = QColor(color)
        c.setAlphaF(max(0.12, min(1.0, opacity * 0.6)))
        self._tint, self._show_tint = c, visible
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802
        return self._canvas.adjusted(-2, -2, 2, 2) if not self._canvas.isEmpty() else QRectF()

    def _margin_rects(self) -> List[QRectF]:
        c, i = self._canvas, self._image
        rects = [QRectF(c.left(), c.top(), c.width(), i.top() - c.top()),
                 QRectF(c.left(), i.bottom(), c.width(), c.bottom() - i.bottom()),
                 QRectF(c.left(), i.top(), i.left() - c.left(), i.height()),
                 QRectF(i.right(), i.top(), c.right() - i.right(), i.height())]
        return [r for r in rects if r.width() > 0 and r.height() > 0]

    def paint(self, painter: QPainter, option, widget=None) -> None:
        if self._canvas.isEmpty():
            return
        scale = max(_scale_of(painter), 1e-6)
        margins = self._margin_rects()
        if not self.over:
            b = QBrush(self._checker)
            b.setTransform(QTransform.fromScale(1 / scale, 1 / scale))
            for r in margins + ([self._image] if self._has_alpha else []):
                painter.fillRect(r, b)
            return
        if self._show_tint:
            for r in margins:
                painter.fillRect(r, self._tint)
        painter.setRenderHint(QPainter.Antialiasing, False)
        if margins:
            pen = QPen(QColor(255, 255, 255, 200), 0)
            painter.setPen(pen)
            painter.drawRect(self._image)
            pen = QPen(QColor(0, 0, 0, 220), 0, Qt.DashLine)
            painter.setPen(pen)
            painter.drawRect(self._canvas)


class OutlineItem(QGraphicsItem):
    """Two-tone (white + dashed black) cosmetic outline: selection previews."""

    def __init__(self) -> None:
        super().__init__()
        self.setZValue(Z_PREVIEW)
        self._path = QPainterPath()

    def set_path(self, path: QPainterPath) -> None:
        self.prepareGeometryChange()
        self._path = QPainterPath(path)
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802
        return self._path.boundingRect().adjusted(-50, -50, 50, 50) if not self._path.isEmpty() \
            else QRectF()

    def paint(self, painter, option, widget=None):
        painter.setPen(QPen(QColor(255, 255, 255), 0))
        painter.drawPath(self._path)
        painter.setPen(QPen(QColor(0, 0, 0), 0, Qt.DashLine))
        painter.drawPath(self._path)


class BrushCursorItem(QGraphicsItem):
    """Round outline showing the real brush size at any zoom (plus a crosshair when tiny)."""

    def __init__(self) -> None:
        super().__init__()
        self.setZValue(Z_CURSOR)
        self.setAcceptedMouseButtons(Qt.NoButton)
        self._r = 10.0
        self._pad = 10.0

    def set_radius(self, r: float, zoom: float) -> None:
        pad = 8.0 / max(zoom, 1e-6)
        if r != self._r or pad != self._pad:
            self.prepareGeometryChange()
            self._r, self._pad = float(r), pad

    @property
    def radius(self) -> float:
        return self._r

    def boundingRect(self) -> QRectF:  # noqa: N802
        e = self._r + self._pad
        return QRectF(-e, -e, 2 * e, 2 * e)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        scale = max(_scale_of(painter), 1e-6)
        painter.setRenderHint(QPainter.Antialiasing, True)
        r = self._r
        painter.setBrush(Qt.NoBrush)
        painter.setPen(QPen(QColor(255, 255, 255, 230), 0))
        painter.drawEllipse(QPointF(0, 0), r, r)
        painter.setPen(QPen(QColor(0, 0, 0, 230), 0, Qt.DashLine))
        painter.drawEllipse(QPointF(0, 0), r, r)
        if r * scale < 6:  # tiny brush: a crosshair so the cursor stays visible
            c = 5.0 / scale
            for pen in (QPen(QColor(255, 255, 255), 3.0 / scale), QPen(QColor(0, 0, 0), 0)):
                painter.setPen(pen)
                painter.drawLine(QPointF(-c, 0), QPointF(c, 0))
                painter.drawLine(QPointF(0, -c), QPointF(0, c))


class HandleItem(QGraphicsItem):
    """A square handle on the canvas border (constant screen size)."""

    SIZE = 9

    def __init__(self, edges: str) -> None:
        super().__init__()
        self.edges = edges
        self.setZValue(Z_HANDLES)
        self.setFlag(QGraphicsItem.ItemIgnoresTransformations, True)
        self.setAcceptedMouseButtons(Qt.NoButton)

    def boundingRect(self) -> QRectF:  # noqa: N802
        s = self.SIZE / 2 + 1
        return QRectF(-s, -s, 2 * s, 2 * s)

    def paint(self, painter, option, widget=None):
        s = self.SIZE / 2
        painter.setPen(QPen(QColor(0, 0, 0), 1))
        painter.setBrush(QColor(255, 255, 255))
        painter.drawRect(QRectF(-s, -s, 2 * s, 2 * s))


# --------------------------------------------------------------------------- the view
class CanvasView(QGraphicsView):
    """Editor view of a :class:`Document`.

    Zoom: wheel (around the cursor), :meth:`zoom_in`/:meth:`zoom_out`, :meth:`fit`,
    :meth:`actual_size`. Pan: Space+drag, middle button, the hand tool, Shift/Alt+wheel.
    """

    FIT_PAD_EXTEND = 0.2  # fraction of the canvas left free on each side by fit() (extend tool)

    zoom_changed = Signal(float)
    mask_style_changed = Signal()      # overlay colour / opacity / visibility
    cursor_moved = Signal(object)      # (x, y) image coordinates as floats, or None
    tool_changed = Signal(str)
    files_dropped = Signal(list)       # local file paths dropped on the canvas

    def __init__(self, document: Document, settings: Optional[ToolSettings] = None,
                 parent=None) -> None:
        super().__init__(parent)
        self.document = document
        self.settings = settings or ToolSettings(self)
        self._scene = QGraphicsScene(self)
        self.setScene(self._scene)
        self.setFrameShape(QFrame.NoFrame)
        self.setBackgroundBrush(QColor(43, 43, 46))
        self.setTransformationAnchor(QGraphicsView.NoAnchor)
        self.setResizeAnchor(QGraphicsView.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.MinimalViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.DontAdjustForAntialiasing, True)
        self.setDragMode(QGraphicsView.NoDrag)
        self.setMouseTracking(True)
        self.viewport().setMouseTracking(True)
        self.viewport().setAttribute(Qt.WA_TabletTracking, True)
        self.setFocusPolicy(Qt.StrongFocus)
        self.setAcceptDrops(True)

        self.frame_under = FrameItem(over=False)
        self.image_item = ImageItem()
        self.mask_item = MaskItem()
        self.frame_over = FrameItem(over=True)
        self.preview_item = OutlineItem()
        self.cursor_item = BrushCursorItem()
        self.handles = [HandleItem(e) for e in ("tl", "t", "tr", "r", "br", "b", "bl", "l")]
        for it in [self.frame_under, self.image_item, self.mask_item, self.frame_over,
                   self.preview_item, self.cursor_item] + self.handles:
            self._scene.addItem(it)
        self.preview_item.setVisible(False)
        self.cursor_item.setVisible(False)
        for h in self.handles:
            h.setVisible(False)

        self._tools = {}
        self.tool: Tool = BrushTool(self.settings)
        self._tools[self.tool.name] = self.tool
        self._mask_visible = True
        self._mask_color = QColor(255, 40, 90)
        self._mask_opacity = 0.5
        self._pan_anchor: Optional[QPointF] = None
        self._space = False
        self._fit_mode = True
        self._last_view_pos: Optional[QPointF] = None
        self._tablet_down = False

        document.image_changed.connect(self._on_image_changed)
        document.mask_changed.connect(self._on_mask_changed)
        document.margins_changed.connect(self._on_margins_changed)
        document.reset.connect(self.fit)
        self.settings.changed.connect(self._on_settings_changed)
        self._on_image_changed()
        self.apply_tool_cursor()

    # ------------------------------------------------------------------ document sync
    def _on_image_changed(self) -> None:
        doc = self.document
        if self.tool.active:
            self.tool.abort(self)  # e.g. a result was accepted in the middle of a stroke
        # accepting an outpainting result (or undoing it) moves the image origin to the old
        # canvas corner: scroll along so the content does not jump on screen
        old = getattr(self, "_geom", None)
        m = doc.margins
        new = (doc.canvas_shape(), m)
        anchor = None
        if old is not None and old[0] == new[0] and old[1] != m and not self._fit_mode:
            vc = QPointF(self.viewport().width() / 2, self.viewport().height() / 2)
            p = self.map_to_scene_f(vc)
            anchor = (QPointF(p.x() + old[1].left - m.left, p.y() + old[1].top - m.top), vc)
        self._geom = new
        self.image_item.set_image(doc.image, doc.alpha)
        self.mask_item.set_mask(doc.mask)
        self._on_margins_changed(doc.margins)
        if anchor is not None:
            self._scroll_scene_point_to(*anchor)

    def _on_mask_changed(self, bbox) -> None:
        if bbox is None:
            self.mask_item.update()
            return
        y0, x0, y1, x1 = bbox
        self.mask_item.update(QRectF(x0, y0, x1 - x0, y1 - y0))

    def canvas_rect(self) -> QRectF:
        doc = self.document
        m = doc.margins
        return QRectF(-m.left, -m.top, doc.width + m.left + m.right,
                      doc.height + m.top + m.bottom)

    def _on_margins_changed(self, _m=None) -> None:
        doc = self.document
        self._geom = (doc.canvas_shape(), doc.margins)
        canvas = self.canvas_rect()
        self.frame_under.set_geometry(canvas, QRectF(0, 0, doc.width, doc.height),
                                      doc.alpha is not None)
        self.frame_over.set_geometry(canvas, QRectF(0, 0, doc.width, doc.height), False)
        self.frame_over.set_tint(self._mask_color, self._mask_opacity, self._mask_visible)
        c = canvas
        pos = {"tl": c.topLeft(), "t": QPointF(c.center().x(), c.top()), "tr": c.topRight(),
               "r": QPointF(c.right(), c.center().y()), "br": c.bottomRight(),
               "b": QPointF(c.center().x(), c.bottom()), "bl": c.bottomLeft(),
               "l": QPointF(c.left(), c.center().y())}
        for h in self.handles:
            h.setPos(pos[h.edges])
        if self._fit_mode and not self.tool.active and not doc.is_empty():
            self.fit()  # still "fit in window": keep the whole canvas visible (presets)
        else:
            self._update_scene_rect()

    def _update_scene_rect(self) -> None:
        """Canvas plus one viewport of slack on every side, so any canvas point can be
        brought under the cursor (zoom around the cursor is exact everywhere)."""
        z = self.zoom()
        vw, vh = self.viewport().width() / z, self.viewport().height() / z
        self.setSceneRect(self.canvas_rect().adjusted(-vw, -vh, vw, vh))

    # ------------------------------------------------------------------ mask style
    def set_mask_style(self, color: Optional[QColor] = None, opacity: Optional[float] = None,
                       visible: Optional[bool] = None) -> None:
        if color is not None:
            self._mask_color = QColor(color)
        if opacity is not None:
            self._mask_opacity = float(opacity)
        if visible is not None:
            self._mask_visible = bool(visible)
        self.mask_item.set_style(self._mask_color, self._mask_opacity)
        self.mask_item.setVisible(self._mask_visible)
        self.frame_over.set_tint(self._mask_color, self._mask_opacity, self._mask_visible)
        self.mask_style_changed.emit()

    def mask_style(self):
        return QColor(self._mask_color), self._mask_opacity, self._mask_visible

    # ------------------------------------------------------------------ tools
    def set_tool(self, tool: Tool) -> None:
        if tool is self.tool:
            return
        self.tool.deactivate(self)
        was_extend = self.tool.name == "extend"
        self.tool = tool
        self._tools[tool.name] = tool
        tool.activate(self)
        if self._fit_mode and (was_extend or tool.name == "extend"):
            self.fit()  # make (or take back) room around the canvas for its handles
        self.apply_tool_cursor()
        self._update_brush_cursor()
        self.tool_changed.emit(tool.name)

    def set_preview_path(self, path: Optional[QPainterPath]) -> None:
        if path is None:
            self.preview_item.setVisible(False)
            self.preview_item.set_path(QPainterPath())
        else:
            self.preview_item.set_path(path)
            self.preview_item.setVisible(True)

    def set_handles_visible(self, on: bool) -> None:
        for h in self.handles:
            h.setVisible(on)

    def apply_tool_cursor(self) -> None:
        if self._pan_anchor is not None:
            self.viewport().setCursor(Qt.ClosedHandCursor)
        elif self._space:
            self.viewport().setCursor(Qt.OpenHandCursor)
        else:
            self.viewport().setCursor(self.tool.cursor())

    def _on_settings_changed(self, name: str) -> None:
        if name == "brush_size":
            self._update_brush_cursor()

    def _update_brush_cursor(self, scene_pos: Optional[QPointF] = None) -> None:
        show = (self.tool.brush_cursor and not self._space and self._pan_anchor is None
                and not self.document.is_empty())
        if scene_pos is not None:
            self.cursor_item.setPos(scene_pos)
        self.cursor_item.set_radius(self.settings.brush_size / 2.0, self.zoom())
        if show and scene_pos is None and self._last_view_pos is None:
            show = False
        self.cursor_item.setVisible(show)

    # ------------------------------------------------------------------ zoom
    def zoom(self) -> float:
        t = self.transform()
        return math.hypot(t.m11(), t.m12()) or 1.0

    def map_to_scene_f(self, view_pos: QPointF) -> QPointF:
        """Exact (float) viewport -> scene mapping."""
        inv, _ = self.viewportTransform().inverted()
        return inv.map(QPointF(view_pos))

    def map_from_scene_f(self, scene_pos: QPointF) -> QPointF:
        return self.viewportTransform().map(QPointF(scene_pos))

    def set_zoom(self, z: float, anchor: Optional[QPointF] = None, _fit: bool = False) -> None:
        """Zoom to ``z`` keeping the scene point under ``anchor`` (viewport pos) fixed."""
        z = float(min(max(z, MIN_ZOOM), MAX_ZOOM))
        if anchor is None:
            anchor = QPointF(self.viewport().width() / 2, self.viewport().height() / 2)
        anchor = QPointF(anchor)
        scene_pt = self.map_to_scene_f(anchor)
        self.setTransform(QTransform.fromScale(z, z))
        self._update_scene_rect()
        self._scroll_scene_point_to(scene_pt, anchor)
        self._fit_mode = _fit
        self._update_brush_cursor()
        self.zoom_changed.emit(z)

    def _scroll_scene_point_to(self, scene_pt: QPointF, view_pt: QPointF) -> None:
        for _ in range(2):
            now = self.map_from_scene_f(scene_pt)
            dx, dy = now.x() - view_pt.x(), now.y() - view_pt.y()
            h, v = self.horizontalScrollBar(), self.verticalScrollBar()
            h.setValue(h.value() + int(round(dx)))
            v.setValue(v.value() + int(round(dy)))

    def keep_view(self) -> None:
        """Leave "fit in window" mode: later canvas changes no longer re-fit the view."""
        self._fit_mode = False

    def zoom_by(self, factor: float, anchor: Optional[QPointF] = None) -> None:
        self.set_zoom(self.zoom() * factor, anchor)

    def zoom_in(self) -> None:
        self.zoom_by(math.sqrt(2), self._keyboard_anchor())

    def zoom_out(self) -> None:
        self.zoom_by(1 / math.sqrt(2), self._keyboard_anchor())

    def _keyboard_anchor(self) -> Optional[QPointF]:
        p = self.viewport().mapFromGlobal(QCursor.pos())
        if self.viewport().rect().contains(p):
            return QPointF(p)
        return None

    def actual_size(self) -> None:
        """100 %: one image pixel per screen pixel (around the cursor when over the canvas)."""
        dpr = self.devicePixelRatioF() or 1.0
        self.set_zoom(1.0 / dpr, self._keyboard_anchor())

    def fit(self) -> None:
        """Fit the whole canvas (image + margins) in the view, centred."""
        doc = self.document
        if doc.is_empty():
            return
        c = self.canvas_rect()
        vw, vh = max(self.viewport().width(), 1), max(self.viewport().height(), 1)
        # with the extend-canvas tool, leave room around the canvas to drag its borders
        pad = 1.0 + 2 * self.FIT_PAD_EXTEND if self.tool.name == "extend" else 1.0
        z = min((vw - 24) / (c.width() * pad), (vh - 24) / (c.height() * pad))
        z = max(z, MIN_ZOOM)
        self.setTransform(QTransform.fromScale(z, z))
        self._update_scene_rect()
        self._scroll_scene_point_to(c.center(), QPointF(vw / 2, vh / 2))
        self._fit_mode = True
        self._update_brush_cursor()
        self.zoom_changed.emit(z)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit()
        else:
            self._update_scene_rect()

    # ------------------------------------------------------------------ events
    def wheelEvent(self, event) -> None:  # noqa: N802
        mods = event.modifiers()
        d = event.angleDelta()
        if mods & Qt.ShiftModifier or mods & Qt.AltModifier:
            # Shift: horizontal scroll, Alt: vertical (Alt swaps the axes on some systems)
            delta = d.y() or d.x()
            bar = self.horizontalScrollBar() if mods & Qt.ShiftModifier else \
                self.verticalScrollBar()
            bar.setValue(bar.value() - int(delta / 2))
            event.accept()
            return
        steps = d.y() / 120.0
        if steps == 0:
            event.ignore()
            return
        self.zoom_by(WHEEL_STEP ** steps, event.position())
        event.accept()

    def _start_pan(self, pos: QPointF) -> None:
        self._pan_anchor = QPointF(pos)
        self.apply_tool_cursor()
        self.cursor_item.setVisible(False)

    def _pan_to(self, pos: QPointF) -> None:
        d = pos - self._pan_anchor
        self._pan_anchor = QPointF(pos)
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() - int(round(d.x())))
        v.setValue(v.value() - int(round(d.y())))
        self._fit_mode = False

    def _end_pan(self) -> None:
        self._pan_anchor = None
        self.apply_tool_cursor()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        pos = event.position()
        self.setFocus(Qt.MouseFocusReason)
        if event.button() == Qt.MiddleButton or (
                event.button() == Qt.LeftButton and (self._space or self.tool.name == "hand")):
            self._start_pan(pos)
            event.accept()
            return
        if event.button() == Qt.LeftButton:
            self._tool_press(pos, event.modifiers(), 1.0, False)
            event.accept()
            return
        if event.button() == Qt.RightButton and self.tool.active:
            self.tool.cancel(self)  # right click while dragging aborts (Krita habit)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        pos = event.position()
        self._last_view_pos = QPointF(pos)
        if self._pan_anchor is not None:
            self._pan_to(pos)
            event.accept()
            return
        self._tool_move(pos, event.modifiers(), 1.0)
        event.accept()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        pos = event.position()
        if self._pan_anchor is not None and event.button() in (Qt.MiddleButton, Qt.LeftButton):
            self._end_pan()
            self._update_brush_cursor(self.map_to_scene_f(pos))
            event.accept()
            return
        if event.button() == Qt.LeftButton:
            self._tool_release(pos, event.modifiers(), 1.0)
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802
        # a fast second click is just another click for painting tools
        self.mousePressEvent(event)

    def _tool_press(self, vpos: QPointF, mods, pressure: float, invert: bool) -> None:
        sp = self.map_to_scene_f(vpos)
        self.tool.press(self, sp, mods, pressure, invert)
        self._update_brush_cursor(sp)

    def _tool_move(self, vpos: QPointF, mods, pressure: float) -> None:
        sp = self.map_to_scene_f(vpos)
        self._last_view_pos = QPointF(vpos)
        if self.tool.active:
            self.tool.move(self, sp, mods, pressure)
        else:
            self.tool.hover(self, sp, mods)
        self._update_brush_cursor(sp)
        doc = self.document
        if not doc.is_empty():
            self.cursor_moved.emit((sp.x(), sp.y()))

    def _tool_release(self, vpos: QPointF, mods, pressure: float) -> None:
        sp = self.map_to_scene_f(vpos)
        if self.tool.active:
            self.tool.release(self, sp, mods, pressure)
        self._update_brush_cursor(sp)

    def viewportEvent(self, event) -> bool:  # noqa: N802
        t = event.type()
        if t in (QEvent.TabletPress, QEvent.TabletMove, QEvent.TabletRelease):
            return self._tablet_event(event)
        if t == QEvent.Leave:
            self._last_view_pos = None
            self.cursor_item.setVisible(False)
            self.cursor_moved.emit(None)
        return super().viewportEvent(event)

    def _tablet_event(self, event) -> bool:
        pos = event.position()
        pressure = float(event.pressure())
        t = event.type()
        if self._space or self.tool.name == "hand" or self._pan_anchor is not None:
            return False  # let Qt synthesise mouse events: panning works as with a mouse
        invert = event.pointerType() == QPointingDevice.PointerType.Eraser
        if t == QEvent.TabletPress and event.button() == Qt.LeftButton:
            self._tablet_down = True
            self._tool_press(pos, event.modifiers(), pressure, invert)
        elif t == QEvent.TabletMove:
            self._tool_move(pos, event.modifiers(), pressure)
        elif t == QEvent.TabletRelease and self._tablet_down:
            self._tablet_down = False
            self._tool_release(pos, event.modifiers(), pressure)
        else:
            return False
        event.accept()
        return True

    def keyPressEvent(self, event) -> None:  # noqa: N802
        if event.key() == Qt.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.apply_tool_cursor()
            self.cursor_item.setVisible(False)
            event.accept()
            return
        if event.key() == Qt.Key_Space:
            event.accept()
            return
        if self.tool.active and (event.key() == Qt.Key_Escape
                                 or event.matches(QKeySequence.Undo)):
            self.tool.cancel(self)  # (Ctrl+Z reaches us when there is nothing to undo)
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:  # noqa: N802
        if event.key() == Qt.Key_Space and not event.isAutoRepeat():
            self._space = False  # a pan in progress continues until the button is released
            self.apply_tool_cursor()
            self._update_brush_cursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event) -> None:  # noqa: N802
        if self._space:
            self._space = False
            self.apply_tool_cursor()
        super().focusOutEvent(event)

    def enterEvent(self, event) -> None:  # noqa: N802
        super().enterEvent(event)
        self.apply_tool_cursor()

    def scrollContentsBy(self, dx: int, dy: int) -> None:  # noqa: N802
        super().scrollContentsBy(dx, dy)
        if self._last_view_pos is not None and self.cursor_item.isVisible():
            self.cursor_item.setPos(self.map_to_scene_f(self._last_view_pos))

    # drag & drop of files: forwarded to the main window
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.files_dropped.emit(paths)
        else:
            event.ignore()

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802
        if not self.document.is_empty():
            return
        painter.save()
        painter.resetTransform()
        painter.setPen(QColor(150, 150, 155))
        f = painter.font()
        f.setPointSizeF(f.pointSizeF() * 1.3)
        painter.setFont(f)
        painter.drawText(self.viewport().rect(), Qt.AlignCenter,
                         "Open an image (Ctrl+O), drop a file here or paste one (Ctrl+V)")
        painter.restore()

    # ------------------------------------------------------------------ plug-in points
    def add_overlay_item(self, item: QGraphicsItem, z: float = Z_RESULTS) -> None:
        """Add a scene item in image pixel coordinates (e.g. a result layer)."""
        item.setZValue(z)
        self._scene.addItem(item)

    def render_to_image(self) -> QImage:
        """Screenshot of the viewport (used by tests and for debugging)."""
        return self.viewport().grab().toImage()
