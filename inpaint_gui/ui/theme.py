"""The dark theme: Fusion with a dark palette, and check boxes that stay visible.

Fusion draws the frame of a check box in its *window* colour darkened by 40 %. On a dark
palette that colour is almost the *base* colour the box is filled with, so an unticked box
(the Models panel's Compare column, "Run on stroke release", ...) disappeared until ticked.
:class:`DarkStyle` draws that frame again in a colour halfway between base and text.
"""
from __future__ import annotations

from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QPalette, QPen
from PySide6.QtWidgets import QProxyStyle, QStyle, QStyleFactory

# how far the check box frame goes from the base colour towards the text colour
FRAME_MIX = 0.55
FRAME_MIX_DISABLED = 0.30


def dark_palette() -> QPalette:
    p = QPalette()
    base, window, text = QColor(35, 35, 38), QColor(50, 50, 54), QColor(225, 225, 225)
    p.setColor(QPalette.Window, window)
    p.setColor(QPalette.WindowText, text)
    p.setColor(QPalette.Base, base)
    p.setColor(QPalette.AlternateBase, window)
    p.setColor(QPalette.ToolTipBase, QColor(60, 60, 64))
    p.setColor(QPalette.ToolTipText, text)
    p.setColor(QPalette.Text, text)
    p.setColor(QPalette.Button, window)
    p.setColor(QPalette.ButtonText, text)
    p.setColor(QPalette.BrightText, QColor(255, 80, 80))
    p.setColor(QPalette.Highlight, QColor(64, 128, 210))
    p.setColor(QPalette.HighlightedText, QColor(255, 255, 255))
    p.setColor(QPalette.Link, QColor(100, 160, 240))
    for role in (QPalette.WindowText, QPalette.Text, QPalette.ButtonText):
        p.setColor(QPalette.Disabled, role, QColor(120, 120, 120))
    return p


def _mix(a: QColor, b: QColor, t: float) -> QColor:
    return QColor(round(a.red() + (b.red() - a.red()) * t),
                  round(a.green() + (b.green() - a.green()) * t),
                  round(a.blue() + (b.blue() - a.blue()) * t))


def check_frame_colour(palette: QPalette, enabled: bool = True) -> QColor:
    group = QPalette.Active if enabled else QPalette.Disabled
    return _mix(palette.color(group, QPalette.Base), palette.color(group, QPalette.Text),
                FRAME_MIX if enabled else FRAME_MIX_DISABLED)


class DarkStyle(QProxyStyle):
    """Fusion, with a visible frame around check boxes (plain ones and item-view check
    boxes: Fusion draws the latter through ``PE_IndicatorCheckBox`` too)."""

    def __init__(self) -> None:
        super().__init__(QStyleFactory.create("Fusion"))
        self.setObjectName("inpaint-dark")

    def drawPrimitive(self, element, option, painter, widget=None) -> None:  # noqa: N802 - Qt API
        super().drawPrimitive(element, option, painter, widget)
        if element != QStyle.PrimitiveElement.PE_IndicatorCheckBox:
            return
        if option.state & QStyle.StateFlag.State_HasFocus and \
                option.state & QStyle.StateFlag.State_KeyboardFocusChange:
            return  # Fusion draws its highlighted (focus) frame there: keep it
        enabled = bool(option.state & QStyle.StateFlag.State_Enabled)
        painter.save()
        painter.setRenderHint(painter.RenderHint.Antialiasing, False)
        painter.setBrush(QColor(0, 0, 0, 0))
        painter.setPen(QPen(check_frame_colour(option.palette, enabled), 1))
        r = QRectF(option.rect).adjusted(1.5, 1.5, -1.5, -1.5)  # a gap between stacked rows
        painter.drawRect(r)
        painter.restore()


def apply_dark_theme(app) -> None:
    """Fusion + dark palette + :class:`DarkStyle` on ``app`` (a QApplication)."""
    style = DarkStyle()
    app.setStyle(style)  # the application takes ownership
    app._inpaint_dark_style = style  # and Python keeps the wrapper alive with it
    app.setPalette(dark_palette())
