"""Icons from ``resources/icons/*.svg``.

The SVGs are drawn for a dark theme (light strokes, ``#e6e6e6``); with a light palette the
strokes are recoloured dark. A missing file gives an empty icon.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QGuiApplication, QIcon, QPainter, QPixmap

ICON_DIR = Path(__file__).resolve().parents[2] / "resources" / "icons"
LIGHT_STROKE = "#e6e6e6"
DARK_STROKE = "#3c3c3c"
DISABLED_STROKE = {True: "#6e6e72", False: "#a8a8a8"}
SIZES = (16, 20, 24, 32, 48, 64)


def _dark_theme() -> bool:
    app = QGuiApplication.instance()
    if app is None:
        return True
    return app.palette().window().color().lightness() < 128


def _render(data: str, ic: QIcon, mode) -> None:
    from PySide6.QtSvg import QSvgRenderer
    renderer = QSvgRenderer(QByteArray(data.encode("utf-8")))
    for s in SIZES:
        pm = QPixmap(s, s)
        pm.fill(Qt.transparent)
        painter = QPainter(pm)
        renderer.render(painter)
        painter.end()
        ic.addPixmap(pm, mode)


@lru_cache(maxsize=None)
def _icon(name: str, dark: bool) -> QIcon:
    p = ICON_DIR / f"{name}.svg"
    if not p.is_file():
        return QIcon()
    svg = p.read_text(encoding="utf-8")
    ic = QIcon()
    _render(svg if dark else svg.replace(LIGHT_STROKE, DARK_STROKE), ic, QIcon.Normal)
    _render(svg.replace(LIGHT_STROKE, DISABLED_STROKE[dark]), ic, QIcon.Disabled)
    return ic


def icon(name: str) -> QIcon:
    return _icon(name, _dark_theme())
