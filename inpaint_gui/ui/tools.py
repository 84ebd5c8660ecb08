"""Canvas tools: brush, eraser, rectangle, lasso, extend canvas (outpaint margins), hand.

A tool receives pointer events from :class:`~.canvas.CanvasView` in scene (= image pixel)
coordinates and edits the view's document; one gesture = one undo item.
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QPainterPath

from inpaint_gui.core import brush as B
from inpaint_gui.core.margins import Margins, canvas_edges_at, dragged_margins

MIN_BRUSH, MAX_BRUSH = 1, 5000


class ToolSettings(QObject):
    """Shared, persistent tool options (the tool options dock edits them)."""

    changed = Signal(str)  # name of the option that changed

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._v = {
            "brush_size": 60.0,        # diameter in image pixels
            "hardness": 1.0,           # 0..1
            "spacing": 0.1,            # fraction of the diameter
            "pressure_size": True,     # tablet pressure scales the size
            "selection_mode": "replace",  # default mode of rectangle/lasso
        }

    def get(self, name: str):
        return self._v[name]

    def set(self, name: str, value) -> None:
        if name == "brush_size":
            value = float(min(max(value, MIN_BRUSH), MAX_BRUSH))
        elif name == "hardness":
            value = float(min(max(value, 0.0), 1.0))
        elif name == "spacing":
            value = float(min(max(value, 0.01), 2.0))
        elif name == "pressure_size":
            value = bool(value)
        elif name == "selection_mode" and value not in B.MODES:
            raise ValueError(value)
        if self._v.get(name) == value:
            return
        self._v[name] = value
        self.changed.emit(name)

    def names(self):
        return list(self._v)

    # convenience properties
    brush_size = property(lambda self: self._v["brush_size"],
                          lambda self, v: self.set("brush_size", v))
    hardness = property(lambda self: self._v["hardness"], lambda self, v: self.set("hardness", v))
    spacing = property(lambda self: self._v["spacing"], lambda self, v: self.set("spacing", v))
    pressure_size = property(lambda self: self._v["pressure_size"],
                             lambda self, v: self.set("pressure_size", v))
    selection_mode = property(lambda self: self._v["selection_mode"],
                              lambda self, v: self.set("selection_mode", v))

    def step_brush_size(self, up: bool) -> None:
        """``]`` / ``[``: about 15 % per step, at least 1 px."""
        s = self.brush_size
        new = max(s * 1.15, s + 1) if up else min(s / 1.15, s - 1)
        self.brush_size = round(new)

    def step_hardness(self, up: bool) -> None:
        self.hardness = round(self.hardness + (0.1 if up else -0.1), 2)


def mode_for(modifiers, default: str) -> str:
    """Shift adds, Alt subtracts, Shift+Alt intersects (Photoshop/GIMP habits)."""
    shift = bool(modifiers & Qt.ShiftModifier)
    alt = bool(modifiers & Qt.AltModifier)
    if shift and alt:
        return "intersect"
    if shift:
        return "add"
    if alt:
        return "subtract"
    return default


class Tool:
    name = "tool"
    label = "Tool"
    shortcut = ""
    icon = ""
    tip = ""
    brush_cursor = False  # show the round brush outline

    def __init__(self, settings: ToolSettings) -> None:
        self.settings = settings

    def cursor(self):
        return Qt.ArrowCursor

    def activate(self, view) -> None:
        pass

    def deactivate(self, view) -> None:
        self.cancel(view)

    def press(self, view, pos: QPointF, mods, pressure: float = 1.0, invert: bool = False):
        pass

    def move(self, view, pos: QPointF, mods, pressure: float = 1.0):
        pass

    def hover(self, view, pos: QPointF, mods) -> None:
        pass

    def release(self, view, pos: QPointF, mods, pressure: float = 1.0):
        pass

    def cancel(self, view) -> None:
        pass

    def abort(self, view) -> None:
        """Drop the gesture without touching the document (its arrays were replaced)."""
        self.cancel(view)

    @property
    def active(self) -> bool:
        return False


class BrushTool(Tool):
    name = "brush"
    label = "Brush"
    shortcut = "B"
    icon = "brush"
    tip = "Paint the area to fill. [ ] size, Shift+[ ] hardness, Shift+click draws a line"
    brush_cursor = True
    erase = False
    stroke_text = "Brush stroke"

    def __init__(self, settings: ToolSettings) -> None:
        super().__init__(settings)
        self._interp: Optional[B.StrokeInterpolator] = None
        self._erase = self.erase
        self._last_end: Optional[Tuple[float, float]] = None
        self._doc = None

    def cursor(self):
        return Qt.BlankCursor

    @property
    def active(self) -> bool:
        return self._interp is not None

    def press(self, view, pos, mods, pressure=1.0, invert=False):
        doc = view.document
        if doc.is_empty() or self._interp is not None:
            return
        s = self.settings
        self._erase = self.erase ^ bool(invert)
        self._interp = B.StrokeInterpolator(s.brush_size / 2.0, s.spacing,
                                            pressure_size=s.pressure_size)
        self._doc = doc
        doc.begin_mask_edit()
        x, y = pos.x(), pos.y()
        if mods & Qt.ShiftModifier and self._last_end is not None:
            dabs = self._interp.start(*self._last_end, pressure) + self._interp.move_to(x, y,
                                                                                        pressure)
        else:
            dabs = self._interp.start(x, y, pressure)
        doc.paint_dabs(dabs, s.hardness, self._erase)

    def move(self, view, pos, mods, pressure=1.0):
        if self._interp is None:
            return
        dabs = self._interp.move_to(pos.x(), pos.y(), pressure)
        if dabs:
            self._doc.paint_dabs(dabs, self.settings.hardness, self._erase)

    def release(self, view, pos, mods, pressure=1.0):
        if self._interp is None:
            return
        dabs = self._interp.finish(pos.x(), pos.y(), pressure)
        if dabs:
            self._doc.paint_dabs(dabs, self.settings.hardness, self._erase)
        self._interp = None
        self._last_end = (pos.x(), pos.y())
        doc, self._doc = self._doc, None
        doc.end_mask_edit("Erase stroke" if self._erase else "Brush stroke")

    def cancel(self, view):
        if self._interp is not None:
            self._interp = None
            doc, self._doc = self._doc, None
            doc.cancel_mask_edit()

    def abort(self, view):
        self._interp = None
        self._doc = None


class EraserTool(BrushTool):
    name = "eraser"
    label = "Eraser"
    shortcut = "E"
    icon = "eraser"
    tip = "Remove paint from the mask. [ ] size, Shift+[ ] hardness"
    erase = True


class _ShapeTool(Tool):
    """Common part of rectangle and lasso: mode from modifiers, outline preview."""

    text = "Shape"

    def __init__(self, settings: ToolSettings) -> None:
        super().__init__(settings)
        self._mode: Optional[str] = None

    def cursor(self):
        return Qt.CrossCursor

    @property
    def active(self) -> bool:
        return self._mode is not None

    def _commit(self, view, bbox, coverage) -> None:
        doc = view.document
        bbox, coverage = B.clip_shape(bbox, coverage, doc.mask.shape)
        mode = self._mode
        if mode in ("add", "subtract") and bbox is None:
            return
        b, region = B.combine(doc.mask, bbox, coverage, mode)
        if b is not None:
            doc.apply_mask_region(b, region, f"{self.text} ({mode})")

    def cancel(self, view):
        self._mode = None
        view.set_preview_path(None)


class RectTool(_ShapeTool):
    name = "rect"
    label = "Rectangle"
    shortcut = "M"
    icon = "rect"
    tip = "Drag a rectangle. Shift adds, Alt subtracts, Shift+Alt intersects"
    text = "Rectangle"

    def __init__(self, settings):
        super().__init__(settings)
        self._start: Optional[QPointF] = None

    def press(self, view, pos, mods, pressure=1.0, invert=False):
        if view.document.is_empty():
            return
        self._mode = mode_for(mods, self.settings.selection_mode)
        self._start = QPointF(round(pos.x()), round(pos.y()))
        self._update(view, pos)

    def _update(self, view, pos):
        p = QPainterPath()
        end = QPointF(round(pos.x()), round(pos.y()))
        p.addRect(QRectF(self._start, end).normalized())
        view.set_preview_path(p)

    def move(self, view, pos, mods, pressure=1.0):
        if self._mode is not None:
            self._update(view, pos)

    def release(self, view, pos, mods, pressure=1.0):
        if self._mode is None:
            return
        bbox = B.rect_bbox((self._start.x(), self._start.y()), (pos.x(), pos.y()))
        view.set_preview_path(None)
        if bbox[2] > bbox[0] and bbox[3] > bbox[1]:
            cov = np.full((bbox[2] - bbox[0], bbox[3] - bbox[1]), 255, np.uint8)
            self._commit(view, bbox, cov)
        self._mode = None


class LassoTool(_ShapeTool):
    name = "lasso"
    label = "Lasso"
    shortcut = "L"
    icon = "lasso"
    tip = "Draw a freehand outline. Shift adds, Alt subtracts, Shift+Alt intersects"
    text = "Lasso"

    def __init__(self, settings):
        super().__init__(settings)
        self._pts: List[Tuple[float, float]] = []

    def press(self, view, pos, mods, pressure=1.0, invert=False):
        if view.document.is_empty():
            return
        self._mode = mode_for(mods, self.settings.selection_mode)
        self._pts = [(pos.x(), pos.y())]

    def move(self, view, pos, mods, pressure=1.0):
        if self._mode is None:
            return
        lx, ly = self._pts[-1]
        if math.hypot(pos.x() - lx, pos.y() - ly) * view.zoom() >= 1.5:
            self._pts.append((pos.x(), pos.y()))
            p = QPainterPath(QPointF(*self._pts[0]))
            for x, y in self._pts[1:]:
                p.lineTo(x, y)
            p.closeSubpath()
            view.set_preview_path(p)

    def release(self, view, pos, mods, pressure=1.0):
        if self._mode is None:
            return
        self._pts.append((pos.x(), pos.y()))
        view.set_preview_path(None)
        pts, self._pts = self._pts, []
        if len(pts) >= 3:
            bbox = B.polygon_bbox(pts)
            self._commit(view, bbox, B.polygon_coverage(pts, bbox))
        self._mode = None


class ExtendTool(Tool):
    """Drag the canvas edges/corners outward to add outpaint margins (Shift: symmetric)."""

    name = "extend"
    label = "Extend canvas"
    shortcut = "C"
    icon = "extend"
    tip = "Drag the edges or corners of the canvas outward to outpaint. Shift: symmetric"
    GRAB_PX = 8  # screen pixels around an edge that grab it

    def __init__(self, settings):
        super().__init__(settings)
        self._edges: Optional[str] = None
        self._start: Optional[Margins] = None

    @property
    def active(self) -> bool:
        return self._edges is not None

    def activate(self, view):
        view.set_handles_visible(True)

    def deactivate(self, view):
        self.cancel(view)
        view.set_handles_visible(False)

    def edges_at(self, view, pos: QPointF) -> str:
        """Which canvas edges ('t', 'l', 'b', 'r' combined) are within grabbing distance."""
        doc = view.document
        if doc.is_empty():
            return ""
        return canvas_edges_at(pos.x(), pos.y(), doc.height, doc.width, doc.margins,
                               self.GRAB_PX / max(view.zoom(), 1e-6))

    @staticmethod
    def cursor_for(edges: str):
        if edges in ("tl", "br"):
            return Qt.SizeFDiagCursor
        if edges in ("tr", "bl"):
            return Qt.SizeBDiagCursor
        if edges in ("t", "b"):
            return Qt.SizeVerCursor
        if edges in ("l", "r"):
            return Qt.SizeHorCursor
        return Qt.ArrowCursor

    def hover(self, view, pos, mods):
        if self._edges is None:
            view.viewport().setCursor(self.cursor_for(self.edges_at(view, pos)))

    def press(self, view, pos, mods, pressure=1.0, invert=False):
        edges = self.edges_at(view, pos)
        if not edges:
            return
        self._edges = edges
        self._start = view.document.margins
        view.keep_view()  # the canvas must not jump (re-fit) under the pointer while dragging

    def margins_for(self, view, pos: QPointF, mods) -> Margins:
        doc = view.document
        return dragged_margins(self._start, self._edges, pos.x(), pos.y(), doc.height,
                               doc.width, symmetric=bool(mods & Qt.ShiftModifier))

    def move(self, view, pos, mods, pressure=1.0):
        if self._edges is None:
            return
        view.document.preview_margins(self.margins_for(view, pos, mods))

    def release(self, view, pos, mods, pressure=1.0):
        if self._edges is None:
            return
        view.document.preview_margins(self.margins_for(view, pos, mods))
        start, self._edges = self._start, None
        view.document.commit_margins(start, "Extend canvas (drag)")
        self.hover(view, pos, mods)

    def cancel(self, view):
        if self._edges is not None:
            view.document.preview_margins(self._start)
            self._edges = None

    def abort(self, view):
        self._edges = None


class HandTool(Tool):
    name = "hand"
    label = "Pan"
    shortcut = "H"
    icon = "hand"
    tip = "Drag to pan (also Space+drag or the middle button anywhere)"

    def cursor(self):
        return Qt.OpenHandCursor


TOOL_CLASSES = (BrushTool, EraserTool, RectTool, LassoTool, ExtendTool, HandTool)
